-- The vault's signed policy history (the newest sequence rules), transcription nodes, and
-- sessions that belong to a node rather than a member.
CREATE TABLE vault_policies (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    sequence BIGINT NOT NULL,
    min_threshold INTEGER NOT NULL,
    statement BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, sequence)
);

-- A node enrols with its own keys (generated on the node) and stays pending until an admin
-- signs its approval; `approval` is the newest signed approval or revocation.
CREATE TABLE nodes (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    verifying_key BLOB NOT NULL,
    recipient TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'revoked')),
    approval BLOB,
    approval_expires_at BIGINT,
    model_sha256 BLOB,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, id),
    UNIQUE (vault_id, fingerprint)
);

ALTER TABLE sessions ADD COLUMN party TEXT NOT NULL DEFAULT 'member' CHECK (party IN ('member', 'node'));
ALTER TABLE sign_in_challenges ADD COLUMN party TEXT NOT NULL DEFAULT 'member' CHECK (party IN ('member', 'node'));
