-- Released minutes and the blind index. The vault's search key exists here only sealed, one
-- copy per holder (member fingerprint or node ID), next to the admin's signed commitment to
-- it. A released copy is an age file to a release key R whose secret is sealed to each member
-- (release_grants). The index holds, per blind token and released transcript (by its
-- number, doc), the term frequency and the segments it occurs in, packed as LEB128 pairs
-- (segment, tf). Which vault a token's rows belong to is the vault of their doc.
CREATE TABLE search_keys (
    vault_id TEXT PRIMARY KEY NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    commitment BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE search_key_grants (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, holder)
);

CREATE TABLE released_transcripts (
    doc INTEGER PRIMARY KEY,
    transcript_id TEXT NOT NULL UNIQUE REFERENCES transcripts (id) ON DELETE CASCADE,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    recording_id TEXT NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    manifest BLOB NOT NULL,
    manifest_digest BLOB NOT NULL,
    ciphertext_len BIGINT NOT NULL,
    words BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX released_transcripts_vault ON released_transcripts (vault_id, created_at);
CREATE INDEX released_transcripts_recording ON released_transcripts (recording_id);

CREATE TABLE release_grants (
    transcript_id TEXT NOT NULL REFERENCES released_transcripts (transcript_id) ON DELETE CASCADE,
    member TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (transcript_id, member)
);

CREATE TABLE index_terms (
    token BLOB NOT NULL,
    doc BIGINT NOT NULL REFERENCES released_transcripts (doc) ON DELETE CASCADE,
    tf INTEGER NOT NULL,
    segments BLOB NOT NULL,
    PRIMARY KEY (token, doc)
) WITHOUT ROWID;

CREATE INDEX index_terms_doc ON index_terms (doc);
