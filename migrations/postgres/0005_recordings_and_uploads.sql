-- Recordings: the uploader's signed manifest, the members' sealed shares, and the resumable
-- upload of the ciphertext. A recording is listed only once `status` is 'complete', which
-- happens when the whole ciphertext is stored and its length and SHA-256 equal the manifest's.
CREATE TABLE recordings (
    id TEXT PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    uploader TEXT NOT NULL,
    manifest BYTEA NOT NULL,
    manifest_digest BYTEA NOT NULL,
    ciphertext_len BIGINT NOT NULL,
    threshold_k INTEGER NOT NULL,
    threshold_n INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('uploading', 'complete')),
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);

CREATE INDEX recordings_vault ON recordings (vault_id, status, created_at);

-- One sealed share per member named in the manifest; only that member may fetch it.
CREATE TABLE recording_shares (
    recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    member TEXT NOT NULL,
    share_index INTEGER NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (recording_id, member)
);

-- An upload in progress. `upload_offset` counts the bytes durably stored. On S3 the bytes
-- are multipart parts (`upload_parts`) plus a tail object shorter than a part; on a local
-- folder, a part file. A PATCH holds the upload (`lock_token`) until `locked_until`,
-- renewing as it goes.
CREATE TABLE uploads (
    recording_id TEXT PRIMARY KEY NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    upload_offset BIGINT NOT NULL,
    upload_length BIGINT NOT NULL,
    multipart_id TEXT,
    tail_len BIGINT NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);

CREATE TABLE upload_parts (
    recording_id TEXT NOT NULL REFERENCES uploads (recording_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    part_id TEXT NOT NULL,
    PRIMARY KEY (recording_id, part_number)
);
