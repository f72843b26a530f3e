-- Re-sharing (issue 18): a subject's shares redistributed to a changed board without its key
-- ever being rebuilt. A re-share of one recording's or transcript's shares opens with its
-- first deal; the first k deals (of the current sharing's k) are kept with the sub-shares
-- they sealed to each new holder; each new holder then sends their new share, sealed to
-- themselves, with the commitments they computed. When every new holder's is in and all
-- agree, the new shares replace the old ones in one transaction and the sub-shares go. The
-- deals of completed re-shares stay: devices replay them to find the current sharing.
CREATE TABLE reshares (
    id TEXT PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    recording_id TEXT REFERENCES recordings (id) ON DELETE CASCADE,
    transcript_id TEXT REFERENCES transcripts (id) ON DELETE CASCADE,
    roster_head TEXT NOT NULL,
    holders TEXT NOT NULL,
    current_k INTEGER NOT NULL,
    new_k INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    commitments BLOB,
    created_at BIGINT NOT NULL,
    completed_at BIGINT,
    CHECK ((recording_id IS NULL) <> (transcript_id IS NULL))
);

-- At most one open re-share per subject, and one per generation.
CREATE UNIQUE INDEX reshares_recording ON reshares (recording_id, generation);
CREATE UNIQUE INDEX reshares_transcript ON reshares (transcript_id, generation);

CREATE TABLE reshare_deals (
    reshare_id TEXT NOT NULL REFERENCES reshares (id) ON DELETE CASCADE,
    dealer INTEGER NOT NULL,
    statement BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (reshare_id, dealer)
);

CREATE TABLE reshare_subshares (
    reshare_id TEXT NOT NULL REFERENCES reshares (id) ON DELETE CASCADE,
    dealer INTEGER NOT NULL,
    holder TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (reshare_id, dealer, holder)
);

CREATE TABLE reshare_acceptances (
    reshare_id TEXT NOT NULL REFERENCES reshares (id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    share_index INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    commitments BLOB NOT NULL,
    PRIMARY KEY (reshare_id, holder)
);
