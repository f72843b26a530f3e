-- Search-key rotation (issue 18): when a member leaves, an admin replaces the vault's search
-- key with a new generation, signed (search_key_rotations; generation 0 is search_keys'
-- commitment) and sealed to each current holder: a sealed copy now belongs to one
-- generation. Each released transcript records the generation its postings were made
-- under; a member's device re-indexes it under the newest key, which replaces its postings.
CREATE TABLE search_key_rotations (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    statement BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, generation)
);

CREATE TABLE search_key_copies (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    holder TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, generation, holder)
);

INSERT INTO search_key_copies (vault_id, generation, holder, sealed, created_at)
SELECT vault_id, 0, holder, sealed, created_at FROM search_key_grants;

DROP TABLE search_key_grants;

ALTER TABLE released_transcripts ADD COLUMN key_generation BIGINT NOT NULL DEFAULT 0;

CREATE INDEX released_transcripts_key_generation ON released_transcripts (vault_id, key_generation);
