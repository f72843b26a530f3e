-- Append-only, hash-chained audit log: one chain per vault (see quorate_crypto::audit).
CREATE TABLE audit_log (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    statement BYTEA,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (vault_id, seq)
);
