-- Recorders: machines on the roster that upload recordings and hold nothing, enrolled with
-- a recorder invite. SQLite cannot change a CHECK constraint in place, so both tables are
-- rebuilt with the same columns (nothing refers to them).
CREATE TABLE members_new (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    verifying_key BLOB NOT NULL,
    recipient TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'recorder')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'removed')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, fingerprint)
);
INSERT INTO members_new SELECT vault_id, fingerprint, verifying_key, recipient, name, role,
    status, created_at FROM members;
DROP TABLE members;
ALTER TABLE members_new RENAME TO members;
CREATE INDEX members_key ON members (verifying_key);

CREATE TABLE enrolment_codes_new (
    code_hash BLOB PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('first-admin', 'member', 'recorder', 'node')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
INSERT INTO enrolment_codes_new SELECT code_hash, vault_id, purpose, created_at, expires_at,
    used_at FROM enrolment_codes;
DROP TABLE enrolment_codes;
ALTER TABLE enrolment_codes_new RENAME TO enrolment_codes;
CREATE INDEX enrolment_codes_vault ON enrolment_codes (vault_id, purpose);
