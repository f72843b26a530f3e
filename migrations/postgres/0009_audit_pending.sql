-- Audit entries recorded by a change that committed while another transaction was appending
-- to its vault's chain. They are committed with the change, then linked into `audit_log` in
-- the order they were recorded by the next append (at once, by the change itself, after it
-- commits), so a change never waits for the chain while it holds its own locks.
CREATE TABLE audit_pending (
    id BIGSERIAL PRIMARY KEY,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    statement BYTEA
);

CREATE INDEX audit_pending_vault ON audit_pending (vault_id, id);
