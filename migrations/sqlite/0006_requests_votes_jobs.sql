-- Unlock requests, the votes on them (an approval carries the voter's share re-sealed to the
-- request's node), the job queue that hands a quorate request to its node, and the sealed
-- transcripts nodes produce.
CREATE TABLE unlock_requests (
    id TEXT PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('recording', 'transcript')),
    subject_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    node_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    statement BLOB NOT NULL,
    digest BLOB NOT NULL,
    threshold_k INTEGER NOT NULL,
    eligible INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'quorate', 'rejected', 'expired')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    closed_at BIGINT
);

CREATE INDEX unlock_requests_vault ON unlock_requests (vault_id, status, created_at);
CREATE INDEX unlock_requests_subject ON unlock_requests (subject_id);

CREATE TABLE votes (
    request_id TEXT NOT NULL REFERENCES unlock_requests (id) ON DELETE CASCADE,
    voter TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    statement BLOB NOT NULL,
    resealed_share BLOB,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, voter)
);

-- One job per quorate request. A node claims it with a lease; an expired lease re-queues.
CREATE TABLE jobs (
    request_id TEXT PRIMARY KEY NOT NULL REFERENCES unlock_requests (id) ON DELETE CASCADE,
    vault_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'leased', 'done', 'failed')),
    lease_token BLOB,
    lease_expires_at BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    progress_permille INTEGER NOT NULL DEFAULT 0,
    stage TEXT,
    failure TEXT,
    transcript_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX jobs_queue ON jobs (node_id, status, created_at);

CREATE TABLE transcripts (
    id TEXT PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    recording_id TEXT NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    node_id TEXT NOT NULL,
    manifest BLOB NOT NULL,
    manifest_digest BLOB NOT NULL,
    ciphertext_len BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX transcripts_recording ON transcripts (recording_id);

CREATE TABLE transcript_shares (
    transcript_id TEXT NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
    member TEXT NOT NULL,
    share_index INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (transcript_id, member)
);
