//! One job, as the node carries it out: check everything the server handed over, rebuild
//! the recording key from the re-sealed shares, decrypt and decode in memory, transcribe,
//! seal the transcript under a fresh key split among the recording's share holders, and
//! sign its manifest. Plaintext audio, the transcript and keys live only in zeroizing
//! memory; nothing is written to disk.

use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::JobClaim;
use quorate_crypto::{
    AgeSecretKey, Fingerprint, Identity, NodeId, PublicIdentity, TranscriptId,
    blind::SearchKey,
    envelope,
    release::{self, Posting, ReleaseManifest},
    rewrap::{self, Purpose},
    roster::Roster,
    statement::{
        Decision, NodeApproval, RecordingManifest, SignedStatement, SplitKey, TranscriptManifest,
        UnlockRequest, Vote,
    },
    threshold::{self, Subject},
};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

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

/// Checks a transcription claim against the roster and opens it with the node's identity.
pub fn unlock(
    claim: &JobClaim,
    roster: &Roster,
    node: &Identity,
    node_id: NodeId,
    now: i64,
) -> Result<Unlocked, JobFailure> {
    let (request, request_digest) = verified_request(claim, roster, node_id, Purpose::Transcribe)?;
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
    let key = open_shares(
        claim,
        roster,
        node,
        &request,
        request_digest,
        &manifest.split,
        now,
    )?;
    Ok(Unlocked {
        request,
        manifest,
        manifest_digest: signed_manifest.digest(),
        key,
    })
}

/// Opens every approval's re-sealed share, checks each binding, vote and commitment, and
/// rebuilds the key the split protects.
fn open_shares(
    claim: &JobClaim,
    roster: &Roster,
    node: &Identity,
    request: &UnlockRequest,
    request_digest: [u8; 32],
    split: &SplitKey,
    now: i64,
) -> Result<AgeSecretKey, JobFailure> {
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
            || vote.request_digest != request_digest
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
        split.check_share(&binding, &share).map_err(|error| {
            fail(format!(
                "the share of {}: {error}",
                voter.fingerprint.short()
            ))
        })?;
        shares.push(share);
    }
    threshold::combine(&shares, split.threshold, &split.recipient)
        .map_err(|error| fail(format!("rebuilding the key: {error}")))
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

pub use quorate_api::{TranscriptDocument as Transcript, TranscriptSegment as Segment};

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

/// Checks a release claim against the roster and the approval of the node that made the
/// transcript (`producer_approval`, a signed `NodeApproval`), and rebuilds the transcript key.
pub fn unlock_transcript(
    claim: &JobClaim,
    roster: &Roster,
    producer_approval: &str,
    node: &Identity,
    node_id: NodeId,
    now: i64,
) -> Result<ReleaseUnlocked, JobFailure> {
    let (request, request_digest) =
        verified_request(claim, roster, node_id, Purpose::ReleaseTranscript)?;
    let signed_manifest = statement(&claim.subject_manifest, "transcript manifest")?;
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
    if request.subject != Subject::Transcript(manifest.transcript_id) {
        return Err(fail("the transcript manifest is not the request's subject"));
    }
    let key = open_shares(
        claim,
        roster,
        node,
        &request,
        request_digest,
        &manifest.split,
        now,
    )?;
    Ok(ReleaseUnlocked {
        request,
        manifest,
        manifest_digest: signed_manifest.digest(),
        key,
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
    sealed: &[u8],
    search_key: &SearchKey,
    roster: &Roster,
    node: &Identity,
    node_id: NodeId,
    now: i64,
) -> Result<Release, JobFailure> {
    let manifest = &unlocked.manifest;
    if sealed.len() as u64 != manifest.ciphertext_len
        || <[u8; 32]>::from(Sha256::digest(sealed)) != manifest.ciphertext_sha256
    {
        return Err(fail(
            "the sealed transcript differs from the one its manifest describes",
        ));
    }
    let mut text = Zeroizing::new(Vec::with_capacity(sealed.len()));
    envelope::decrypt(sealed, &mut *text, &unlocked.key)
        .map_err(|error| fail(format!("opening the sealed transcript: {error}")))?;
    let mut transcript: Transcript = serde_json::from_slice(&text).map_err(|error| {
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
    // The parsed words are plaintext too: wiped before they are freed.
    for segment in &mut transcript.segments {
        segment.text.zeroize();
    }
    drop(transcript);
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
