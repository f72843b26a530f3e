//! One job, as the node carries it out: check everything the server handed over, rebuild
//! the recording key from the re-sealed shares, decrypt and decode in memory, transcribe,
//! seal the transcript under a fresh key split among the recording's share holders, and
//! sign its manifest. Plaintext audio, the transcript and keys live only in zeroizing
//! memory; nothing is written to disk.

use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::JobClaim;
use quorate_crypto::{
    AgeSecretKey, Fingerprint, Identity, NodeId, PublicIdentity, TranscriptId, envelope,
    rewrap::{self, Purpose},
    roster::Roster,
    statement::{
        Decision, RecordingManifest, SignedStatement, SplitKey, TranscriptManifest, UnlockRequest,
        Vote,
    },
    threshold::{self, Subject},
};
use serde::Serialize;
use zeroize::Zeroizing;

/// Why a job failed: the reason kept with the job (never plaintext).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobFailure(pub String);

fn fail(message: impl Into<String>) -> JobFailure {
    JobFailure(message.into())
}

fn statement(text: &str, what: &str) -> Result<SignedStatement, JobFailure> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| fail(format!("the {what} is not base64")))?;
    SignedStatement::from_bytes(&bytes).map_err(|error| fail(format!("the {what}: {error}")))
}

/// A job whose every signature, binding and commitment checked out, with its key rebuilt.
pub struct Unlocked {
    /// The request.
    pub request: UnlockRequest,
    /// The recording's manifest and its digest.
    pub manifest: RecordingManifest,
    /// Digest of the signed recording manifest.
    pub manifest_digest: [u8; 32],
    /// The rebuilt recording key.
    pub key: AgeSecretKey,
}

impl std::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlocked")
            .field("request", &self.request.request_id)
            .field("recording", &self.manifest.recording_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Checks a claim against the roster and opens it with the node's identity.
pub fn unlock(
    claim: &JobClaim,
    roster: &Roster,
    node: &Identity,
    node_id: NodeId,
    now: i64,
) -> Result<Unlocked, JobFailure> {
    let (verified_request, requester) = roster
        .verify_by_member::<UnlockRequest>(&statement(&claim.request, "request")?)
        .map_err(|error| fail(format!("the request: {error}")))?;
    let request = verified_request.statement;
    if request.requester != requester.fingerprint
        || request.request_id.to_string() != claim.request_id
        || request.node_id != node_id
        || request.purpose != Purpose::Transcribe
    {
        return Err(fail(
            "the request is not a transcription request by its signer for this node",
        ));
    }
    let signed_manifest = statement(&claim.subject_manifest, "recording manifest")?;
    let verified_manifest = signed_manifest
        .verify::<RecordingManifest>()
        .map_err(|error| fail(format!("the recording manifest: {error}")))?;
    let manifest = verified_manifest.statement;
    let uploader_known = roster
        .members()
        .iter()
        .chain(roster.removed())
        .any(|member| {
            member.fingerprint == manifest.uploader
                && member.public.verifying_key == verified_manifest.signer
        });
    if !uploader_known || request.subject != Subject::Recording(manifest.recording_id) {
        return Err(fail(
            "the recording manifest is not signed by its uploader, or not the request's subject",
        ));
    }
    let mut shares = Vec::new();
    for approval in &claim.approvals {
        let (verified_vote, voter) = roster
            .verify_by_member::<Vote>(&statement(&approval.vote, "vote")?)
            .map_err(|error| fail(format!("a vote: {error}")))?;
        let vote = verified_vote.statement;
        let resealed = STANDARD
            .decode(&approval.resealed_share)
            .map_err(|_| fail("a re-sealed share is not base64"))?;
        let digest_matches = matches!(
            vote.decision,
            Decision::Approve { resealed_share_sha256 } if resealed_share_sha256 == rewrap::resealed_digest(&resealed)
        );
        if vote.voter != voter.fingerprint
            || vote.request_digest != verified_request.digest
            || vote.voter == request.requester
            || !digest_matches
        {
            return Err(fail(format!(
                "the approval of {} does not bind this request and its share",
                voter.fingerprint.short()
            )));
        }
        let (binding, share) =
            rewrap::open_node_share(&resealed, node.age_key(), &request.binding(), now).map_err(
                |error| {
                    fail(format!(
                        "the share of {}: {error}",
                        voter.fingerprint.short()
                    ))
                },
            )?;
        if binding.member != vote.voter {
            return Err(fail(format!(
                "{} sent a share that is not theirs",
                voter.fingerprint.short()
            )));
        }
        manifest
            .split
            .check_share(&binding, &share)
            .map_err(|error| {
                fail(format!(
                    "the share of {}: {error}",
                    voter.fingerprint.short()
                ))
            })?;
        shares.push(share);
    }
    let key = threshold::combine(&shares, manifest.split.threshold, &manifest.split.recipient)
        .map_err(|error| fail(format!("rebuilding the key: {error}")))?;
    Ok(Unlocked {
        request,
        manifest,
        manifest_digest: signed_manifest.digest(),
        key,
    })
}

/// Decrypts the recording's ciphertext in memory.
pub fn decrypt(ciphertext: &[u8], key: &AgeSecretKey) -> Result<Zeroizing<Vec<u8>>, JobFailure> {
    // The plaintext is never longer than the ciphertext: reserving that much up front means
    // the buffer is never moved, so no unzeroized copy is left behind in freed memory.
    let mut plaintext = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    envelope::decrypt(ciphertext, &mut *plaintext, key)
        .map_err(|error| fail(format!("decrypting the recording: {error}")))?;
    Ok(plaintext)
}

/// One stretch of speech.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The words.
    pub text: String,
}

/// The transcript as it is sealed.
#[derive(Debug, Serialize)]
pub struct Transcript {
    /// The language (ISO 639-1).
    pub language: String,
    /// SHA-256 of the model, hex.
    pub model_sha256: String,
    /// The node.
    pub node_id: String,
    /// The recording.
    pub recording_id: String,
    /// The speech.
    pub segments: Vec<Segment>,
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

/// Seals `transcript` under a fresh key split among the recording's share holders (their
/// keys from the roster) with the recording's threshold, and signs the manifest.
pub fn seal(
    unlocked: &Unlocked,
    transcript: &Transcript,
    roster: &Roster,
    node: &Identity,
    node_id: NodeId,
    model_sha256: [u8; 32],
    now: i64,
) -> Result<Sealed, JobFailure> {
    let text = Zeroizing::new(
        serde_json::to_vec(transcript).map_err(|error| fail(format!("the transcript: {error}")))?,
    );
    let key = AgeSecretKey::generate();
    let (writer, _) = envelope::encrypt(
        &text[..],
        envelope::HashingWriter::new(Vec::new()),
        &key.recipient(),
    )
    .map_err(|error| fail(format!("sealing the transcript: {error}")))?;
    let (ciphertext, ciphertext_len, ciphertext_sha256) = writer.finish();
    let holders: Vec<PublicIdentity> = unlocked
        .manifest
        .split
        .shares
        .iter()
        .map(|share| {
            roster
                .members()
                .iter()
                .chain(roster.removed())
                .find(|member| member.fingerprint == share.member)
                .map(|member| member.public)
                .ok_or_else(|| fail("a share holder of the recording is not on the roster"))
        })
        .collect::<Result<_, _>>()?;
    let transcript_id = TranscriptId::random();
    let (split, sealed) = SplitKey::split_and_seal(
        unlocked.manifest.vault_id,
        Subject::Transcript(transcript_id),
        &key,
        unlocked.manifest.split.threshold,
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
