-- Sign-in rows are bounded and swept: a member's challenges are ordered by when they were
-- issued (microseconds) so that only the newest few are kept, and expired challenges and
-- sessions are deleted by expiry.
ALTER TABLE sign_in_challenges ADD COLUMN issued_micros BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sign_in_challenges_holder ON sign_in_challenges (vault_id, fingerprint, issued_micros);
CREATE INDEX sign_in_challenges_expiry ON sign_in_challenges (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Each sealed transcript and released copy names its object, written under a fresh name and
-- never overwritten. Rows stored before this migration keep the names they were written at.
ALTER TABLE transcripts ADD COLUMN object TEXT NOT NULL DEFAULT '';
UPDATE transcripts SET object = 'transcripts/' || vault_id || '/' || id || '.age';
ALTER TABLE released_transcripts ADD COLUMN object TEXT NOT NULL DEFAULT '';
UPDATE released_transcripts SET object = 'released/' || vault_id || '/' || transcript_id || '.age';
