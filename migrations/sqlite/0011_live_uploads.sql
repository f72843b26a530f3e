-- no-transaction
-- Live uploads: a recording made while it streams (the browser's Record page, a recorder
-- that uploads during the meeting) opens its upload before its ciphertext's length and
-- SHA-256 are known, and signs its manifest when recording stops. Until then the
-- recording has no manifest and its upload no length (tus `Upload-Defer-Length`).
--
-- SQLite cannot drop NOT NULL in place, so both tables are rebuilt. Other tables refer to
-- them, and dropping a table with foreign keys on would delete its children: keys are off
-- for the rebuild (which is why this migration runs outside sqlx's transaction, with its
-- own).
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE recordings_new (
    id TEXT PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    uploader TEXT NOT NULL,
    manifest BLOB,
    manifest_digest BLOB,
    ciphertext_len BIGINT,
    threshold_k INTEGER,
    threshold_n INTEGER,
    status TEXT NOT NULL CHECK (status IN ('uploading', 'complete')),
    created_at BIGINT NOT NULL,
    completed_at BIGINT,
    CHECK (status = 'uploading' OR manifest IS NOT NULL)
);
INSERT INTO recordings_new SELECT id, vault_id, uploader, manifest, manifest_digest,
    ciphertext_len, threshold_k, threshold_n, status, created_at, completed_at FROM recordings;
DROP TABLE recordings;
ALTER TABLE recordings_new RENAME TO recordings;
CREATE INDEX recordings_vault ON recordings (vault_id, status, created_at);

CREATE TABLE uploads_new (
    recording_id TEXT PRIMARY KEY NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    upload_offset BIGINT NOT NULL,
    upload_length BIGINT,
    multipart_id TEXT,
    tail_len BIGINT NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);
INSERT INTO uploads_new SELECT recording_id, upload_offset, upload_length, multipart_id,
    tail_len, lock_token, locked_until, expires_at FROM uploads;
DROP TABLE uploads;
ALTER TABLE uploads_new RENAME TO uploads;

COMMIT;
PRAGMA foreign_keys = ON;
