-- Members as the signed roster describes them, the roster chain itself, and sign-in state.
CREATE TABLE members (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    verifying_key BLOB NOT NULL,
    recipient TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'removed')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, fingerprint)
);

CREATE INDEX members_key ON members (verifying_key);

-- Signed roster entries, in chain order. The server verifies each before storing it.
CREATE TABLE roster_entries (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    sequence BIGINT NOT NULL,
    statement BLOB NOT NULL,
    digest BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, sequence)
);

-- Single-use sign-in nonces.
CREATE TABLE sign_in_challenges (
    id TEXT PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    nonce BLOB NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Sessions, by the SHA-256 of their token.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
