//! One job, as the node carries it out: check everything the server handed over, rebuild
//! the recording key from the re-sealed shares, decrypt and decode piece by piece,
//! transcribe, seal the transcript under a fresh key split among the vault's current
//! members, and sign its manifest. Plaintext audio, the transcript and keys live only in
//! zeroizing memory; the one thing written to disk is the downloaded ciphertext, spooled to
//! an anonymous temporary file.

use quorate_api::JobClaim;
use quorate_client::{checks, reshare};
use quorate_crypto::{
    AgeSecretKey, Fingerprint, Identity, NodeId, PublicIdentity, TranscriptId, VaultId,
    blind::SearchKey,
    envelope,
    release::{self, Posting, ReleaseManifest},
    reshare::Sharing,
    rewrap::{self, Purpose},
    roster::Roster,
    statement::{
        Decision, NodeApproval, RecordingManifest, SignedStatement, SplitKey, TranscriptManifest,
        UnlockRequest, Vote,
    },
    threshold::{self, Subject, Threshold},
    vss::Secret,
};
use std::io::{Seek, Write};

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::secret::SecretVec;

/// Why a job failed: the reason kept with the job (never plaintext).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobFailure(pub String);

fn fail(message: impl Into<String>) -> JobFailure {
    JobFailure(message.into())
}

fn statement(bytes: &[u8], what: &str) -> Result<SignedStatement, JobFailure> {
    SignedStatement::from_bytes(bytes).map_err(|error| fail(format!("the {what}: {error}")))
}

/// A job whose every signature, binding and commitment checked out, with its key rebuilt:
/// the recording's (`M` = its manifest) or, for a release, the transcript's.
pub struct Unlocked<M = RecordingManifest> {
    /// The request.
    pub request: UnlockRequest,
    /// The subject's manifest.
    pub manifest: M,
    /// Digest of the signed subject manifest.
    pub manifest_digest: [u8; 32],
    /// The rebuilt key.
    pub key: AgeSecretKey,
    /// The subject's current sharing (its holders and k), replayed from the manifest.
    pub sharing: Sharing,
}

impl<M> std::fmt::Debug for Unlocked<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlocked")
            .field("request", &self.request.request_id)
            .field("subject", &self.request.subject)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The claim's request, verified: signed by the member it names, for this node and purpose.
fn verified_request(
    claim: &JobClaim,
    roster: &Roster,
    node_id: NodeId,
    purpose: Purpose,
) -> Result<(UnlockRequest, [u8; 32]), JobFailure> {
    let (verified_request, requester) = roster
        .verify_by_member::<UnlockRequest>(&statement(&claim.request, "request")?)
        .map_err(|error| fail(format!("the request: {error}")))?;
    let request = verified_request.statement;
    if request.requester != requester.fingerprint
        || request.request_id.to_string() != claim.request_id
        || request.node_id != node_id
        || request.purpose != purpose
    {
        return Err(fail(format!(
            "the request is not a {} request by its signer for this node",
            purpose.as_str()
        )));
    }
    Ok((request, verified_request.digest))
}

/// What the node checks a job's approvals against: the verified roster, and the newest
/// admin-signed vault policy it verified (never older than one it saw before).
#[derive(Debug, Clone, Copy)]
pub struct Board<'a> {
    /// The vault's roster, verified against the pinned genesis and head.
    pub roster: &'a Roster,
    /// The least number of approvals the vault's policy asks for.
    pub min_approvals: u8,
}

/// Checks a transcription claim against the board and opens it with the node's identity.
pub fn unlock(
    claim: &JobClaim,
    board: Board<'_>,
    node: &Identity,
    node_id: NodeId,
    now: i64,
    can_carry_out: impl FnOnce(&UnlockRequest) -> Result<(), String>,
) -> Result<Unlocked, JobFailure> {
    let roster = board.roster;
    let (request, request_digest) = verified_request(claim, roster, node_id, Purpose::Transcribe)?;
    let signed_manifest = statement(&claim.subject_manifest, "recording manifest")?;
    let manifest = checks::recording_manifest(roster, None, &signed_manifest)
        .map_err(|error| fail(error.to_string()))?;
    if request.subject != Subject::Recording(manifest.recording_id) {
        return Err(fail("the recording manifest is not the request's subject"));
    }
    // Asked of the verified request before any share is opened: a job this node cannot
    // carry out (a language its model lacks) fails without the key ever being rebuilt.
    can_carry_out(&request).map_err(JobFailure)?;
    let (sharing, key) = rebuild(
        claim,
        board,
        node,
        (&request, request_digest),
        (manifest.vault_id, manifest.subject(), &manifest.split),
        now,
    )?;
    Ok(Unlocked {
        request,
        manifest,
        manifest_digest: signed_manifest.digest(),
        key,
        sharing,
    })
}

/// Replays the re-shares of `subject`'s key in `vault` (split by `split`) to its current sharing, and
/// rebuilds the key from the claim's approvals of `request` (with its digest).
fn rebuild(
    claim: &JobClaim,
    board: Board<'_>,
    node: &Identity,
    (request, request_digest): (&UnlockRequest, [u8; 32]),
    (vault, subject, split): (VaultId, Subject, &SplitKey),
    now: i64,
) -> Result<(Sharing, AgeSecretKey), JobFailure> {
    let sharing =
        reshare::current_sharing(vault, board.roster, subject, split, &claim.subject_history)
            .map_err(|error| fail(format!("the key's re-shares: {error}")))?;
    let key = open_shares(
        claim,
        board,
        node,
        request,
        request_digest,
        split,
        &sharing,
        now,
    )?;
    Ok((sharing, key))
}

/// How many approvals a key in `sharing` needs: its own k, and never fewer than the vault's
/// policy asks for (a server that kept shares from before a re-share raised k, and served
/// the history without that re-share, would otherwise have it rebuilt at the old k).
fn approvals_needed(board: Board<'_>, sharing: &Sharing) -> usize {
    sharing.k().max(usize::from(board.min_approvals))
}

/// Opens every approval's re-sealed share, checks each binding, vote and commitment, and
/// rebuilds the key the split protects. Every share must be the voter's own share of the
/// key's current sharing (`current`, replayed from its re-shares), at the voter's index in
/// it, one per voter, and there must be as many as [`approvals_needed`].
#[allow(clippy::too_many_arguments)]
fn open_shares(
    claim: &JobClaim,
    board: Board<'_>,
    node: &Identity,
    request: &UnlockRequest,
    request_digest: [u8; 32],
    split: &SplitKey,
    current: &Sharing,
    now: i64,
) -> Result<AgeSecretKey, JobFailure> {
    let mut shares = Vec::new();
    let mut voters = std::collections::BTreeSet::new();
    for approval in &claim.approvals {
        let (verified_vote, voter) = board
            .roster
            .verify_by_member::<Vote>(&statement(&approval.vote, "vote")?)
            .map_err(|error| fail(format!("a vote: {error}")))?;
        let vote = verified_vote.statement;
        let who = voter.fingerprint.short();
        let resealed = &approval.resealed_share;
        let digest_matches = matches!(
            vote.decision,
            Decision::Approve { resealed_share_sha256 } if resealed_share_sha256 == rewrap::resealed_digest(resealed)
        );
        if vote.voter != voter.fingerprint
            || vote.request_digest != request_digest
            || vote.voter == request.requester
            || !digest_matches
        {
            return Err(fail(format!(
                "the approval of {who} does not bind this request and its share"
            )));
        }
        if !voters.insert(vote.voter) {
            return Err(fail(format!("{who} approved twice")));
        }
        let (binding, share) =
            rewrap::open_node_share(resealed, node.age_key(), &request.binding(), now)
                .map_err(|error| fail(format!("the share of {who}: {error}")))?;
        if binding.member != vote.voter {
            return Err(fail(format!("{who} sent a share that is not theirs")));
        }
        split
            .check_share(&binding, &share)
            .map_err(|error| fail(format!("the share of {who}: {error}")))?;
        // A share of an earlier sharing commits to the same secret, but a re-share may have
        // raised k since, or moved the share to someone else.
        if binding.commitments != current.commitments
            || Some(share.index()) != current.index_of(&vote.voter)
        {
            return Err(fail(format!(
                "the share of {who} is not their share of the key's current sharing (one from before a re-share, which the server should have deleted): ask them to vote again"
            )));
        }
        shares.push(share);
    }
    let needed = approvals_needed(board, current);
    if shares.len() < needed {
        return Err(fail(format!(
            "the job carries {} approvals and the key needs {needed} (its sharing's k and the vault's policy)",
            shares.len()
        )));
    }
    threshold::combine(
        &shares,
        &current.commitments,
        &request.subject,
        &split.recipient,
    )
    .map_err(|error| fail(format!("rebuilding the key: {error}")))
}

/// Where a download goes: an anonymous temporary file (the ciphertext is encrypted, and the
/// file has no name, so it goes when the node does), hashed as it arrives. The client
/// refuses the first byte past the length its signed manifest gives
/// ([`Client::download_recording`](quorate_client::Client::download_recording)), and nothing
/// reaches a decrypter or a decoder until [`CheckedDownload::finish`] has compared the length
/// and SHA-256 with the manifest's: the recording's recipient is public, so a server could
/// encrypt any audio to it.
pub struct CheckedDownload {
    what: &'static str,
    expected_len: u64,
    expected_sha256: [u8; 32],
    /// The first [`HEAD_LEN`] bytes, kept in memory as well: see [`SpooledCiphertext`].
    head: Vec<u8>,
    spool: std::io::BufWriter<std::fs::File>,
    received: u64,
    hasher: Sha256,
    /// Why the spool could not be written, when it could not.
    spool_failed: Option<String>,
}

impl std::fmt::Debug for CheckedDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedDownload")
            .field("what", &self.what)
            .field("expected_len", &self.expected_len)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

/// How much of the start of a download is also kept in memory: the age header (the wrapped
/// file key, a few hundred bytes for a recording) and the payload nonce are well within it.
const HEAD_LEN: usize = 64 * 1024;

/// Why a download cannot be used.
#[derive(Debug)]
pub enum DownloadError {
    /// The job's fault: too long for this node, or not the ciphertext its manifest signs.
    Job(JobFailure),
    /// This machine's: its temporary folder cannot take the spool. Not the job's failure;
    /// the job is handed back for another node (or this one once fixed).
    Local(String),
}

/// Ciphertext whose length and SHA-256 are those its signed manifest names: the only input
/// [`decrypt`] and [`release`] take.
#[derive(Debug)]
pub struct Ciphertext(SpooledCiphertext);

/// The checked ciphertext, read from the spool file except for its first bytes, which are
/// read from the copy kept in memory while they were hashed. Whoever could write the file
/// after the check (another process of the same user, a shared TMPDIR) could otherwise swap
/// in a header wrapping another file key to the public recipient, with audio of its own;
/// with the header fixed, the payload key is fixed, and any changed chunk fails its
/// authentication.
#[derive(Debug)]
struct SpooledCiphertext {
    head: Vec<u8>,
    file: std::fs::File,
    len: u64,
    position: u64,
}

impl std::io::Read for SpooledCiphertext {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = match usize::try_from(self.position)
            .ok()
            .and_then(|at| self.head.get(at..))
        {
            Some(rest) if !rest.is_empty() => {
                let read = rest.len().min(buffer.len());
                buffer[..read].copy_from_slice(&rest[..read]);
                read
            }
            _ => {
                self.file.seek(std::io::SeekFrom::Start(self.position))?;
                self.file.read(buffer)?
            }
        };
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for SpooledCiphertext {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(offset) => Some(offset),
            std::io::SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
            std::io::SeekFrom::End(delta) => self.len.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.position)
    }
}

/// What a refused download means, and what to do about it.
const NOT_AS_SIGNED: &str = "the stored object is not the one that was signed (replaced or damaged in the object store, or changed on the way); refused before decrypting. Restore it from a backup, or upload it again";

impl CheckedDownload {
    /// Ready to receive `what` (e.g. "recording"), which its manifest says is `len` bytes with
    /// SHA-256 `sha256`, into an anonymous temporary file; refused when longer than `limit`,
    /// the most this node takes.
    pub fn new(
        what: &'static str,
        len: u64,
        sha256: [u8; 32],
        limit: u64,
    ) -> Result<Self, DownloadError> {
        if len > limit {
            return Err(DownloadError::Job(fail(format!(
                "the {what} is {len} bytes, more than this node takes ({limit}): run the node with a larger --max-bytes, with that much free space in its temporary folder"
            ))));
        }
        let file = tempfile::tempfile().map_err(|error| {
            DownloadError::Local(format!(
                "this node cannot make a temporary file for the {what}: {error}; set TMPDIR to a writable folder with room for the recordings it takes"
            ))
        })?;
        Ok(Self {
            what,
            expected_len: len,
            expected_sha256: sha256,
            head: Vec::new(),
            spool: std::io::BufWriter::with_capacity(1 << 20, file),
            received: 0,
            hasher: Sha256::new(),
            spool_failed: None,
        })
    }

    /// Why the server's answer was refused while it arrived (`reason`: e.g. more bytes than
    /// the manifest's length), or why the spool could not take it.
    pub fn refused(self, reason: &str) -> DownloadError {
        match self.spool_failed {
            Some(ref error) => self.spool_full(error),
            None => DownloadError::Job(fail(format!(
                "the {}: {reason}: {NOT_AS_SIGNED}",
                self.what
            ))),
        }
    }

    fn spool_full(&self, error: &str) -> DownloadError {
        DownloadError::Local(format!(
            "this node could not write the {} ({} bytes) to its temporary folder: {error}; free space there (TMPDIR), or lower --max-bytes so such jobs are refused at once",
            self.what, self.expected_len
        ))
    }

    /// The ciphertext, once its length and SHA-256 are the manifest's.
    pub fn finish(mut self) -> Result<Ciphertext, DownloadError> {
        let what = self.what;
        if let Err(error) = self.spool.flush() {
            return Err(self.spool_full(&error.to_string()));
        }
        if self.received != self.expected_len {
            return Err(DownloadError::Job(fail(format!(
                "the server sent {} bytes of the {what}, not the {} its signed manifest says: {NOT_AS_SIGNED}",
                self.received, self.expected_len
            ))));
        }
        let sha256: [u8; 32] = self.hasher.finalize().into();
        if sha256 != self.expected_sha256 {
            return Err(DownloadError::Job(fail(format!(
                "the {what}'s SHA-256 {} is not the one its signed manifest names ({}): {NOT_AS_SIGNED}",
                hex::encode(sha256),
                hex::encode(self.expected_sha256)
            ))));
        }
        let file = self.spool.into_inner().map_err(|error| {
            DownloadError::Local(format!(
                "this node could not finish the {what}'s temporary file: {}; check the disk behind TMPDIR",
                error.error()
            ))
        })?;
        Ok(Ciphertext(SpooledCiphertext {
            head: self.head,
            file,
            len: self.received,
            position: 0,
        }))
    }
}

impl std::io::Write for CheckedDownload {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Err(error) = self.spool.write_all(bytes) {
            self.spool_failed = Some(error.to_string());
            return Err(error);
        }
        let room = HEAD_LEN.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.hasher.update(bytes);
        self.received += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The recording's plaintext, decrypted chunk by chunk as it is read, at any position.
pub type Plaintext = envelope::SeekablePlaintext<std::io::BufReader<Ciphertext>>;

impl std::io::Read for Ciphertext {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buffer)
    }
}

impl Seek for Ciphertext {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(to)
    }
}

/// What a failed read of the spooled ciphertext means once it was checked: the disk under
/// the node changed it or lost it.
pub const SPOOL_CHANGED: &str = "the recording's temporary file no longer reads as the checked ciphertext (changed or damaged on this node's disk after the download was checked); check the disk and who can write TMPDIR, then let the job run again";

/// Opens the recording's checked ciphertext for reading its plaintext, which is never held
/// whole: only the 64 KiB chunk being read is in memory (and wiped when passed). The spool
/// file goes with the reader.
pub fn decrypt(mut ciphertext: Ciphertext, key: &AgeSecretKey) -> Result<Plaintext, JobFailure> {
    ciphertext
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|error| fail(format!("{SPOOL_CHANGED}: {error}")))?;
    envelope::decrypt_seekable(std::io::BufReader::new(ciphertext), key)
        .map_err(|error| fail(format!("decrypting the recording: {error}")))
}

pub use quorate_api::{TranscriptDocument as Transcript, TranscriptSegment as Segment};

/// The transcript as JSON, in a buffer that is wiped when dropped. serde_json grows its output
/// as it writes, so it writes into a [`SecretVec`], which wipes every allocation it leaves.
pub fn transcript_json(transcript: &Transcript) -> Result<SecretVec<u8>, JobFailure> {
    let mut text = SecretVec::default();
    serde_json::to_writer(&mut text, transcript)
        .map_err(|error| fail(format!("the transcript: {error}")))?;
    Ok(text)
}

/// Wipes a transcript's words before they are freed (the strings are plaintext; the type is
/// the API's, so it cannot wipe itself on drop).
pub fn wipe(mut transcript: Transcript) {
    wipe_segments(&mut transcript.segments);
}

/// Overwrites the words and speakers of `segments` before they are freed.
pub fn wipe_segments(segments: &mut [Segment]) {
    for segment in segments {
        segment.text.zeroize();
        if let Some(speaker) = &mut segment.speaker {
            speaker.zeroize();
        }
    }
}

/// Segments heard so far: wiped when dropped, so that a chunk or a stream failing (or the
/// node stopping) after others were transcribed leaves none of their words or names in
/// freed memory. Take them out with `std::mem::take(&mut heard.0)` once all is done.
#[derive(Default)]
pub struct Heard(pub Vec<Segment>);

impl std::fmt::Debug for Heard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The words are the meeting's: only how many.
        write!(f, "Heard({} segments)", self.0.len())
    }
}

impl Drop for Heard {
    fn drop(&mut self) {
        wipe_segments(&mut self.0);
    }
}

/// The sealed transcript, its signed manifest and the sealed shares of its key.
#[derive(Debug)]
pub struct Sealed {
    /// The signed `TranscriptManifest`.
    pub manifest: SignedStatement,
    /// The age file.
    pub ciphertext: Vec<u8>,
    /// One sealed share per holder.
    pub shares: Vec<(Fingerprint, Vec<u8>)>,
}

/// Seals `transcript` under a fresh key split among the vault's current members (their keys
/// from the roster) with the recording's current threshold, and signs the manifest.
pub fn seal(
    unlocked: &Unlocked,
    transcript: &Transcript,
    roster: &Roster,
    node: &Identity,
    node_id: NodeId,
    model_sha256: [u8; 32],
    now: i64,
) -> Result<Sealed, JobFailure> {
    let text = transcript_json(transcript)?;
    let transcript_id = TranscriptId::random();
    let secret = Secret::random();
    let key = secret.age_key(&Subject::Transcript(transcript_id));
    let (writer, _) = envelope::encrypt(
        &text[..],
        envelope::HashingWriter::new(Vec::new()),
        &key.recipient(),
    )
    .map_err(|error| fail(format!("sealing the transcript: {error}")))?;
    let (ciphertext, ciphertext_len, ciphertext_sha256) = writer.finish();
    // The current members, whatever re-share of the recording is still to come: a removed
    // member never gets a share of a new transcript.
    let holders: Vec<PublicIdentity> = roster
        .members()
        .iter()
        .filter(|member| member.role.holds_shares())
        .map(|member| member.public)
        .collect();
    let (split, sealed) = SplitKey::split_and_seal(
        unlocked.manifest.vault_id,
        Subject::Transcript(transcript_id),
        &secret,
        Threshold::new(unlocked.sharing.k(), holders.len()).map_err(|error| {
            fail(format!(
                "the recording's threshold among the {} current members: {error}",
                holders.len()
            ))
        })?,
        &holders,
    )
    .map_err(|error| fail(format!("splitting the transcript key: {error}")))?;
    let manifest = SignedStatement::sign(
        &TranscriptManifest {
            vault_id: unlocked.manifest.vault_id,
            transcript_id,
            recording_id: unlocked.manifest.recording_id,
            recording_manifest_digest: unlocked.manifest_digest,
            request_id: unlocked.request.request_id,
            node_id,
            model_sha256,
            language: transcript.language.clone(),
            created_at: now,
            ciphertext_len,
            ciphertext_sha256,
            split,
        },
        node,
    );
    Ok(Sealed {
        manifest,
        ciphertext,
        shares: holders
            .iter()
            .map(PublicIdentity::fingerprint)
            .zip(sealed)
            .collect(),
    })
}

/// A release job whose every signature, binding and commitment checked out, with the
/// transcript key rebuilt.
pub type ReleaseUnlocked = Unlocked<TranscriptManifest>;

/// The node that made a sealed transcript, by the approval an admin signed for it: the
/// transcript manifest must carry that node's signature.
pub fn transcript_producer(claim: &JobClaim) -> Result<NodeId, JobFailure> {
    let signed = statement(&claim.subject_manifest, "transcript manifest")?;
    let manifest = signed
        .verify::<TranscriptManifest>()
        .map_err(|error| fail(format!("the transcript manifest: {error}")))?;
    Ok(manifest.statement.node_id)
}

/// A transcript manifest, verified: signed by the node that an admin's approval
/// (`producer_approval`, a signed `NodeApproval`) names, and made before that approval
/// lapsed. A revocation names the node's keys too, and a lying server would offer it as the
/// producer's approval: it vouches for nothing ([`checks::approval_vouches_for`]).
fn produced_by_approved_node(
    roster: &Roster,
    producer_approval: &[u8],
    signed_manifest: &SignedStatement,
) -> Result<TranscriptManifest, JobFailure> {
    let verified = signed_manifest
        .verify::<TranscriptManifest>()
        .map_err(|error| fail(format!("the transcript manifest: {error}")))?;
    let (approval, _) = roster
        .verify_by_admin::<NodeApproval>(&statement(producer_approval, "node approval")?)
        .map_err(|error| fail(format!("the transcribing node's approval: {error}")))?;
    let manifest = verified.statement;
    if approval.statement.node_id != manifest.node_id
        || approval.statement.node.verifying_key != verified.signer
    {
        return Err(fail(
            "the transcript manifest is not signed by the approved node it names",
        ));
    }
    checks::approval_vouches_for(&approval.statement, manifest.created_at)
        .map_err(|error| fail(format!("the transcript's maker: {error}")))?;
    Ok(manifest)
}

/// Checks a release claim against the board and the approval of the node that made the
/// transcript (`producer_approval`, a signed `NodeApproval`), and rebuilds the transcript key.
pub fn unlock_transcript(
    claim: &JobClaim,
    board: Board<'_>,
    producer_approval: &[u8],
    node: &Identity,
    node_id: NodeId,
    now: i64,
) -> Result<ReleaseUnlocked, JobFailure> {
    let roster = board.roster;
    let (request, request_digest) =
        verified_request(claim, roster, node_id, Purpose::ReleaseTranscript)?;
    let signed_manifest = statement(&claim.subject_manifest, "transcript manifest")?;
    let manifest = produced_by_approved_node(roster, producer_approval, &signed_manifest)?;
    if request.subject != Subject::Transcript(manifest.transcript_id) {
        return Err(fail("the transcript manifest is not the request's subject"));
    }
    let (sharing, key) = rebuild(
        claim,
        board,
        node,
        (&request, request_digest),
        (manifest.vault_id, manifest.subject(), &manifest.split),
        now,
    )?;
    Ok(ReleaseUnlocked {
        request,
        manifest,
        manifest_digest: signed_manifest.digest(),
        key,
        sharing,
    })
}

/// A released copy, the release key sealed to each member, the postings, and the signed
/// manifest over all of them.
#[derive(Debug)]
pub struct Release {
    /// The signed `ReleaseManifest`.
    pub manifest: SignedStatement,
    /// The age file to the release key.
    pub copy: Vec<u8>,
    /// The release key sealed to each current member.
    pub grants: Vec<(Fingerprint, Vec<u8>)>,
    /// The blind-index postings.
    pub postings: Vec<Posting>,
}

/// Opens the sealed transcript in memory and prepares its release to every current member of
/// `roster`, with the postings under the vault's search key.
pub fn release(
    unlocked: &ReleaseUnlocked,
    sealed: Ciphertext,
    search_key: &SearchKey,
    roster: &Roster,
    node: &Identity,
    node_id: NodeId,
    now: i64,
) -> Result<Release, JobFailure> {
    let manifest = &unlocked.manifest;
    // Never longer than the ciphertext: reserved once, so no unwiped copy is left behind.
    let mut text = Zeroizing::new(Vec::new());
    usize::try_from(sealed.0.len)
        .ok()
        .and_then(|len| text.try_reserve_exact(len).ok())
        .ok_or_else(|| {
            fail(format!(
                "this node cannot hold the {}-byte sealed transcript in memory: run the release on a node with more memory",
                sealed.0.len
            ))
        })?;
    let mut sealed = std::io::BufReader::new(sealed);
    sealed
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|error| fail(format!("{SPOOL_CHANGED}: {error}")))?;
    envelope::decrypt(sealed, &mut *text, &unlocked.key)
        .map_err(|error| fail(format!("opening the sealed transcript: {error}")))?;
    let transcript: Transcript = serde_json::from_slice(&text).map_err(|error| {
        fail(format!(
            "the sealed transcript is not a transcript: {error}"
        ))
    })?;
    let postings = release::postings(
        search_key,
        transcript
            .segments
            .iter()
            .map(|segment| segment.text.as_str()),
    );
    let same_recording = transcript.recording_id == manifest.recording_id.to_string();
    wipe(transcript);
    if !same_recording {
        return Err(fail("the sealed transcript names another recording"));
    }
    let key = AgeSecretKey::generate();
    let (writer, _) = envelope::encrypt(
        &text[..],
        envelope::HashingWriter::new(Vec::new()),
        &key.recipient(),
    )
    .map_err(|error| fail(format!("encrypting the released copy: {error}")))?;
    let (copy, ciphertext_len, ciphertext_sha256) = writer.finish();
    let grants = roster
        .members()
        .iter()
        .map(|member| {
            release::seal_release_key(
                manifest.vault_id,
                manifest.transcript_id,
                &key,
                &member.public.recipient,
            )
            .map(|sealed| (member.fingerprint, sealed))
            .map_err(|error| fail(format!("sealing the release key: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signed = SignedStatement::sign(
        &ReleaseManifest {
            vault_id: manifest.vault_id,
            transcript_id: manifest.transcript_id,
            recording_id: manifest.recording_id,
            transcript_manifest_digest: unlocked.manifest_digest,
            request_id: unlocked.request.request_id,
            node_id,
            release_recipient: key.recipient(),
            members: grants.iter().map(|(member, _)| *member).collect(),
            ciphertext_len,
            ciphertext_sha256,
            postings_count: postings.len() as u64,
            postings_sha256: release::postings_digest(&postings),
            created_at: now,
        },
        node,
    );
    Ok(Release {
        manifest: signed,
        copy,
        grants,
        postings,
    })
}

#[cfg(test)]
mod tests {
    use quorate_crypto::{RecordingId, RequestId, VaultId, threshold::Threshold};

    use super::*;
    use std::io::Read;

    /// A vault of one admin, a node, the admin's approval of it (`revoked`, in force from
    /// 1000 to 2000) and a transcript manifest the node signed at `made_at`.
    fn approval_and_manifest(revoked: bool, made_at: i64) -> (Roster, Vec<u8>, SignedStatement) {
        let vault = VaultId::random();
        let admin = Identity::generate();
        let genesis = Roster::genesis_entry(vault, &admin, "Ada", 900).unwrap();
        let roster = Roster::verify(vault, &[genesis], None).unwrap();
        let node = Identity::generate();
        let node_id = NodeId::random();
        let approval = SignedStatement::sign(
            &NodeApproval {
                vault_id: vault,
                node_id,
                node: node.public(),
                hardware: "rack 3".into(),
                model_sha256: [1; 32],
                attestation: Vec::new(),
                issued_at: 1000,
                expires_at: 2000,
                revoked,
            },
            &admin,
        );
        let transcript_id = TranscriptId::random();
        let (split, _) = SplitKey::split_and_seal(
            vault,
            Subject::Transcript(transcript_id),
            &Secret::random(),
            Threshold::new(1, 1).unwrap(),
            &[admin.public()],
        )
        .unwrap();
        let manifest = SignedStatement::sign(
            &TranscriptManifest {
                vault_id: vault,
                transcript_id,
                recording_id: RecordingId::random(),
                recording_manifest_digest: [2; 32],
                request_id: RequestId::random(),
                node_id,
                model_sha256: [1; 32],
                language: "en".into(),
                created_at: made_at,
                ciphertext_len: 100,
                ciphertext_sha256: [3; 32],
                split,
            },
            &node,
        );
        (roster, approval.to_bytes(), manifest)
    }

    /// A claim for `node_id` to transcribe a recording of a one-admin vault, the request
    /// naming `language`, with no approvals at all.
    fn claim_without_approvals(node_id: NodeId, language: &str) -> (Roster, JobClaim) {
        let vault = VaultId::random();
        let admin = Identity::generate();
        let genesis = Roster::genesis_entry(vault, &admin, "Ada", 900).unwrap();
        let roster = Roster::verify(vault, &[genesis], None).unwrap();
        let recording_id = RecordingId::random();
        let (split, _) = SplitKey::split_and_seal(
            vault,
            Subject::Recording(recording_id),
            &Secret::random(),
            Threshold::new(1, 1).unwrap(),
            &[admin.public()],
        )
        .unwrap();
        let manifest = SignedStatement::sign(
            &RecordingManifest {
                vault_id: vault,
                recording_id,
                uploader: admin.fingerprint(),
                roster_head: roster.head(),
                created_at: 950,
                ciphertext_len: 100,
                ciphertext_sha256: [3; 32],
                split,
                sealed_metadata: Vec::new(),
            },
            &admin,
        );
        let request_id = RequestId::random();
        let request = SignedStatement::sign(
            &UnlockRequest {
                vault_id: vault,
                request_id,
                subject: Subject::Recording(recording_id),
                purpose: Purpose::Transcribe,
                node_id,
                requester: admin.fingerprint(),
                reason: "minutes".into(),
                created_at: 960,
                expires_at: 5000,
                language: Some(language.into()),
            },
            &admin,
        );
        let claim = JobClaim {
            request_id: request_id.to_string(),
            vault_id: vault.to_string(),
            lease_token: "lease".into(),
            lease_expires_at: 2000,
            attempt: 1,
            request: request.to_bytes().into(),
            subject_manifest: manifest.to_bytes().into(),
            approvals: Vec::new(),
            subject_history: Vec::new(),
        };
        (roster, claim)
    }

    #[test]
    fn a_request_the_node_cannot_carry_out_fails_before_any_share_is_opened() {
        let (node, node_id) = (Identity::generate(), NodeId::random());
        let (roster, claim) = claim_without_approvals(node_id, "nl");
        let board = Board {
            roster: &roster,
            min_approvals: 1,
        };
        let refused = unlock(&claim, board, &node, node_id, 1000, |request| {
            Err(format!(
                "this model cannot transcribe {:?}",
                request.language
            ))
        })
        .unwrap_err();
        assert_eq!(refused.0, "this model cannot transcribe Some(\"nl\")");
        // Accepted, the same claim goes on to its shares, of which it has none.
        let unopened = unlock(&claim, board, &node, node_id, 1000, |_| Ok(())).unwrap_err();
        assert!(unopened.0.contains("0 approvals"), "{}", unopened.0);
    }

    #[test]
    fn a_revocation_or_a_lapsed_approval_never_vouches_for_a_transcript() {
        let (roster, approval, manifest) = approval_and_manifest(false, 1500);
        assert!(produced_by_approved_node(&roster, &approval, &manifest).is_ok());

        let (roster, revocation, manifest) = approval_and_manifest(true, 1500);
        let refused = produced_by_approved_node(&roster, &revocation, &manifest).unwrap_err();
        assert!(refused.0.contains("was revoked"), "{refused}");

        let (roster, approval, manifest) = approval_and_manifest(false, 2001);
        let refused = produced_by_approved_node(&roster, &approval, &manifest).unwrap_err();
        assert!(refused.0.contains("after its approval lapsed"), "{refused}");

        // Made before a renewal's window began: the approval it was made under was replaced.
        let (roster, approval, manifest) = approval_and_manifest(false, 999);
        assert!(produced_by_approved_node(&roster, &approval, &manifest).is_ok());
    }

    /// The job's failure a download was refused with.
    fn job_failure<T: std::fmt::Debug>(result: Result<T, DownloadError>) -> String {
        match result.unwrap_err() {
            DownloadError::Job(failure) => failure.0,
            local => panic!("not the job's failure: {local:?}"),
        }
    }

    #[test]
    fn a_download_is_cut_at_the_manifest_length_and_checked_before_use() {
        let bytes = b"an age file, as the uploader signed it";
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        let len = bytes.len() as u64;

        let mut download = CheckedDownload::new("recording", len, sha256, 1 << 20).unwrap();
        download.write_all(bytes).unwrap();
        let mut spooled = download.finish().unwrap();
        let mut read = Vec::new();
        spooled.read_to_end(&mut read).unwrap();
        assert_eq!(read, bytes);

        let longer = CheckedDownload::new("recording", len, sha256, 1 << 20).unwrap();
        let refused = longer.refused("the server sent more than the 38 bytes the manifest signs");
        let refused = job_failure::<()>(Err(refused));
        assert!(refused.contains("refused before decrypting"), "{refused}");

        let mut shorter = CheckedDownload::new("recording", len, sha256, 1 << 20).unwrap();
        shorter.write_all(&bytes[1..]).unwrap();
        assert!(
            job_failure(shorter.finish())
                .contains(&format!("not the {len} its signed manifest says"))
        );

        let mut other = CheckedDownload::new("recording", len, sha256, 1 << 20).unwrap();
        other.write_all(&vec![b'A'; bytes.len()]).unwrap();
        assert!(job_failure(other.finish()).contains("SHA-256"));

        let too_big = job_failure(CheckedDownload::new("recording", 2 << 20, sha256, 1 << 20));
        assert!(too_big.contains("more than this node takes"), "{too_big}");
    }

    /// The spool on disk is changed after the check, as another process of the node's user
    /// could: a new header there is never read (the header comes from memory), and a changed
    /// payload chunk fails its authentication instead of becoming other audio.
    #[test]
    fn a_spool_changed_on_disk_after_the_check_is_not_decrypted_as_other_audio() {
        let key = AgeSecretKey::generate();
        let plaintext = vec![7u8; 200_000];
        let (ciphertext, _) =
            envelope::encrypt(&plaintext[..], Vec::new(), &key.recipient()).unwrap();
        let spool = |ciphertext: &[u8]| {
            let sha256: [u8; 32] = Sha256::digest(ciphertext).into();
            let mut download =
                CheckedDownload::new("recording", ciphertext.len() as u64, sha256, 1 << 30)
                    .unwrap();
            download.write_all(ciphertext).unwrap();
            download.finish().unwrap()
        };

        // Another file to the same (public) recipient, written over the spool.
        let (forged, _) =
            envelope::encrypt(&vec![9u8; 200_000][..], Vec::new(), &key.recipient()).unwrap();
        let mut spooled = spool(&ciphertext);
        let mut file = &spooled.0.file;
        file.seek(std::io::SeekFrom::Start(0)).unwrap();
        file.write_all(&forged).unwrap();
        let mut read = Vec::new();
        let opened = decrypt(spooled, &key).unwrap().read_to_end(&mut read);
        assert!(!read.contains(&9), "the forged audio was decrypted");
        assert!(
            opened.is_err(),
            "the forged payload fails its authentication"
        );

        // One byte of a payload chunk changed: reading it fails.
        spooled = spool(&ciphertext);
        let mut file = &spooled.0.file;
        file.seek(std::io::SeekFrom::Start(ciphertext.len() as u64 - 1000))
            .unwrap();
        file.write_all(&[0x55]).unwrap();
        let mut read = Vec::new();
        assert!(
            decrypt(spooled, &key)
                .unwrap()
                .read_to_end(&mut read)
                .is_err()
        );
    }
}
