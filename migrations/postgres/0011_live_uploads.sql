-- Live uploads: a recording made while it streams (the browser's Record page, a recorder
-- that uploads during the meeting) opens its upload before its ciphertext's length and
-- SHA-256 are known, and signs its manifest when recording stops. Until then the
-- recording has no manifest and its upload no length (tus `Upload-Defer-Length`).
ALTER TABLE recordings ALTER COLUMN manifest DROP NOT NULL;
ALTER TABLE recordings ALTER COLUMN manifest_digest DROP NOT NULL;
ALTER TABLE recordings ALTER COLUMN ciphertext_len DROP NOT NULL;
ALTER TABLE recordings ALTER COLUMN threshold_k DROP NOT NULL;
ALTER TABLE recordings ALTER COLUMN threshold_n DROP NOT NULL;
ALTER TABLE uploads ALTER COLUMN upload_length DROP NOT NULL;
-- A complete recording always has its manifest.
ALTER TABLE recordings ADD CONSTRAINT recordings_manifest_when_complete
    CHECK (status = 'uploading' OR manifest IS NOT NULL);
