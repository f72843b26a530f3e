-- Vaults and one-time enrolment codes. Codes are stored as SHA-256 hashes only.
CREATE TABLE vaults (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE enrolment_codes (
    code_hash BYTEA PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('first-admin', 'member', 'node')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE INDEX enrolment_codes_vault ON enrolment_codes (vault_id, purpose);

-- Guards start-up work that must happen once even when several servers start together.
CREATE TABLE server_once (
    name TEXT PRIMARY KEY NOT NULL,
    done_at BIGINT NOT NULL
);
