-- Records management (issue 18): admins' signed retention rules, one history per scope
-- ('vault', or a recording ID for an override), the newest sequence in force; members'
-- signed votes on legal holds; the holds a quorum of votes decided; and when the rule
-- shredded a recording (its ciphertext and every share of its key) and its minutes
-- (transcripts with their shares, released copies, their postings). A shredded recording's
-- row stays, as the parent of minutes kept longer and the subject of its receipts.
CREATE TABLE retention_rules (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    statement BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, scope, sequence)
);

CREATE TABLE hold_votes (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    hold_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('place', 'lift')),
    voter TEXT NOT NULL,
    statement BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, hold_id, action, voter)
);

CREATE TABLE holds (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    hold_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    lifted_at BIGINT,
    PRIMARY KEY (vault_id, hold_id)
);

ALTER TABLE recordings ADD COLUMN shredded_at BIGINT;
ALTER TABLE recordings ADD COLUMN minutes_shredded_at BIGINT;
-- When its first minutes were released: a release-anchored period counts from it, also
-- once the minutes themselves are shredded.
ALTER TABLE recordings ADD COLUMN first_released_at BIGINT;
