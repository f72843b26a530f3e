//! The job queue. A quorate request becomes a job for its node; the node claims it with a
//! lease, reports progress (renewing the lease), and fails it with a reason or completes it
//! with the sealed transcript and its signed manifest, once: a retried completion answers
//! the same. An expired lease puts the job back in the queue, up to [`MAX_ATTEMPTS`] claims.
//!
//! A completion (here, and a release's in [`super::release`]) follows one course: the lease
//! is checked, the node's signed manifest is checked against the job, the uploaded
//! ciphertext against the manifest, and then [`store_completion`] writes the object under a
//! fresh name and records it with the job's end in one transaction.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use quorate_api::Base64;
use quorate_api::{
    JobClaim, JobCompletion, JobStatus, NodeStatus, SealedShareUpload, TranscriptView,
};
use quorate_crypto::{
    NodeId, PublicIdentity, VaultId,
    statement::{SignedStatement, StatementBody, TranscriptManifest, Verified},
};
use sha2::{Digest, Sha256};

use crate::{
    App,
    blobs::BlobError,
    error::Refusal,
    store::{
        self, Event, Tx,
        jobs::{LeaseHolder, NewLease, NodeJob},
        recordings::TranscriptionSubject,
        transcripts::{Described, NewTranscript},
    },
};

/// How long a lease lasts unless renewed.
pub const LEASE_SECONDS: i64 = 120;
/// Claims of one job before it is failed for good.
pub const MAX_ATTEMPTS: i32 = 5;
/// Largest sealed transcript accepted (about 20 hours of speech, sealed).
pub const MAX_TRANSCRIPT_BYTES: usize = 16 << 20;
/// Longest failure reason kept.
const MAX_REASON: usize = 2000;
/// Longest stage name a node may report.
const MAX_STAGE: usize = 100;

/// What a node uploads to complete a job: the two kinds of completion differ only in the
/// words their refusals use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upload {
    /// A transcription's sealed transcript.
    SealedTranscript,
    /// A release's released copy.
    ReleasedCopy,
}

impl Upload {
    /// What the uploaded ciphertext is called.
    fn name(self) -> &'static str {
        match self {
            Self::SealedTranscript => "sealed transcript",
            Self::ReleasedCopy => "released copy",
        }
    }

    /// Its short name (in the base64 refusal, and in what a retry finds the job completed
    /// with).
    fn short_name(self) -> &'static str {
        match self {
            Self::SealedTranscript => "transcript",
            Self::ReleasedCopy => "released copy",
        }
    }

    /// The manifest that describes it.
    fn manifest(self) -> &'static str {
        match self {
            Self::SealedTranscript => "transcript manifest",
            Self::ReleasedCopy => "release manifest",
        }
    }

    /// Where its object is written, under a fresh name (see
    /// [`crate::blobs::Blobs::put_fresh`]); its row names it.
    fn object_prefix(self, vault: &str, transcript: &str) -> String {
        match self {
            Self::SealedTranscript => {
                crate::store::recordings::transcript_object_prefix(vault, transcript)
            }
            Self::ReleasedCopy => format!("released/{vault}/{transcript}/"),
        }
    }

    /// The audit action of a completion with it.
    fn action(self) -> &'static str {
        match self {
            Self::SealedTranscript => "transcript.stored",
            Self::ReleasedCopy => "transcript.released",
        }
    }

    /// Why a job of the other kind cannot be completed with it.
    fn wrong_job(self) -> &'static str {
        match self {
            Self::SealedTranscript => {
                "this job releases a transcript: complete it with POST /jobs/{request}/release"
            }
            Self::ReleasedCopy => {
                "this job transcribes a recording: complete it with POST /jobs/{request}/complete"
            }
        }
    }
}

/// Why a job operation was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error("this node has no current approval: ask an admin to approve it")]
    NodeNotApproved,
    #[error("progress_permille is 0 to 1000 and stage at most {MAX_STAGE} bytes")]
    InvalidProgress,
    #[error("say why in 1 to {MAX_REASON} bytes")]
    InvalidReason,
    #[error("no such resource")]
    NotFound,
    #[error(
        "this node no longer holds the job's lease (it lapsed, or the job ended): stop working on it"
    )]
    LeaseLost,
    #[error("this job was completed with another {}", .0.short_name())]
    AlreadyDone(Upload),
    #[error("{}", .0.wrong_job())]
    WrongCompletion(Upload),
    #[error("{0}")]
    InvalidStatement(#[from] quorate_crypto::Error),
    #[error("the manifest must be signed by this node's key")]
    NotSignedByNode,
    #[error("the {}'s {what} does not match the job", .upload.manifest())]
    Mismatch { upload: Upload, what: &'static str },
    #[error(
        "the key must go to exactly the vault's current members, and the roster changed while the job ran: ask again"
    )]
    NotTheMembers,
    #[error("a {} may be at most {MAX_TRANSCRIPT_BYTES} bytes", .0.name())]
    TooLarge(Upload),
    #[error("the {}'s length or SHA-256 differs from its manifest's", .0.name())]
    NotAsDescribed(Upload),
    #[error("{0}")]
    InvalidShares(String),
    #[error("a transcript with this ID is stored already: seal the transcript under a fresh ID")]
    TranscriptExists,
    #[error("the node's stored keys do not parse: {0}")]
    CorruptNodeKeys(quorate_crypto::Error),
    #[error("a stored vault ID does not parse: {0}")]
    CorruptVaultId(quorate_crypto::Error),
    #[error("the node's row vanished")]
    NodeVanished,
    #[error(transparent)]
    Roster(#[from] crate::ops::roster::RosterError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

impl Refusal for JobError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use JobError::*;
        Some(match self {
            NodeNotApproved => (StatusCode::FORBIDDEN, "node_not_approved"),
            InvalidProgress => (StatusCode::BAD_REQUEST, "invalid_progress"),
            InvalidReason => (StatusCode::BAD_REQUEST, "invalid_reason"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            LeaseLost => (StatusCode::CONFLICT, "lease_lost"),
            AlreadyDone(_) => (StatusCode::CONFLICT, "already_done"),
            WrongCompletion(_) => (StatusCode::CONFLICT, "wrong_completion"),
            InvalidStatement(_) | NotSignedByNode | Mismatch { .. } | NotAsDescribed(_) => {
                (StatusCode::BAD_REQUEST, "invalid_statement")
            }
            NotTheMembers => (StatusCode::CONFLICT, "roster_changed"),
            TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            InvalidShares(_) => (StatusCode::BAD_REQUEST, "invalid_shares"),
            TranscriptExists => (StatusCode::CONFLICT, "transcript_exists"),
            CorruptNodeKeys(_) | CorruptVaultId(_) | NodeVanished | Roster(_) | Store(_)
            | Blob(_) => {
                return None;
            }
        })
    }
}

/// The node acting: its vault, ID and fingerprint (hex).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'a> {
    pub vault: VaultId,
    pub id: NodeId,
    pub fingerprint: &'a str,
}

/// A node's lease on request `request`'s job, proven by its token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease<'a> {
    pub node: Node<'a>,
    pub request: &'a str,
    pub token: &'a str,
}

impl Lease<'_> {
    /// The lease as the store matches it (only the token's hash is stored).
    fn holder(&self) -> LeaseHolder<'_> {
        LeaseHolder {
            node: self.node.id.to_string(),
            request: self.request,
            token_hash: token_hash(self.token),
        }
    }
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn parse_vault(text: &str) -> Result<VaultId, JobError> {
    text.parse().map_err(JobError::CorruptVaultId)
}

/// Refuses a node whose approval is not current.
async fn require_approved(app: &App, node: Node<'_>, now: i64) -> Result<(), JobError> {
    let mut connection = app.db.connection().await?;
    let state = store::nodes::approval_state(
        &mut connection,
        &node.vault.to_string(),
        &node.id.to_string(),
    )
    .await?
    .ok_or(JobError::NodeNotApproved)?;
    if state.status == NodeStatus::Approved && state.approval_expires_at.unwrap_or(0) > now {
        Ok(())
    } else {
        Err(JobError::NodeNotApproved)
    }
}

/// Leases the oldest job waiting for `node` and hands over what it needs to carry it out;
/// `None` when no job waits.
pub(crate) async fn claim(
    app: &App,
    node: Node<'_>,
    now: i64,
) -> Result<Option<JobClaim>, JobError> {
    require_approved(app, node, now).await?;
    let token = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    let lease = NewLease {
        node: &node.id.to_string(),
        token_hash: &token_hash(&token),
        expires_at: now + LEASE_SECONDS,
        max_attempts: MAX_ATTEMPTS,
        now,
    };
    let mut tx = app.db.begin().await?;
    let Some(claimed) = store::jobs::claim(&mut tx, &lease).await? else {
        return Ok(None);
    };
    tx.audit(
        parse_vault(&claimed.vault_id)?,
        now,
        Event {
            actor: node.fingerprint,
            action: "job.leased",
            subject: &claimed.request_id,
            statement: None,
        },
    );
    tx.commit().await?;
    tracing::info!(request = %claimed.request_id, node = %node.id, "job leased");
    let mut connection = app.db.connection().await?;
    let order = store::jobs::work_order(&mut connection, &claimed.request_id).await?;
    let (kind, id) = &order.subject;
    let shared = if kind == "recording" {
        store::reshares::Shared::Recording(id)
    } else {
        store::reshares::Shared::Transcript(id)
    };
    let subject_history = store::reshares::history(&mut connection, shared).await?;
    Ok(Some(JobClaim {
        subject_history: subject_history
            .into_iter()
            .map(|deals| deals.into_iter().map(Base64::from).collect())
            .collect(),
        vault_id: claimed.vault_id,
        attempt: claimed.attempts as u32,
        lease_token: token,
        lease_expires_at: lease.expires_at,
        request: Base64::from(order.request),
        subject_manifest: Base64::from(order.subject_manifest),
        approvals: order.approvals,
        request_id: claimed.request_id,
    }))
}

/// As [`claim`], but when no job waits, waits up to `wait` for one: a job queued for this
/// node or handed back rings the job bell (on any replica), and a lapsing lease of the
/// node's is waited for too. `None` when the wait ends without a job, or the server is
/// shutting down.
pub(crate) async fn claim_waiting(
    app: &App,
    node: Node<'_>,
    wait: std::time::Duration,
) -> Result<Option<JobClaim>, JobError> {
    let deadline = tokio::time::Instant::now() + wait;
    let bell = app.db.job_bell();
    let _counted = bell.wait_here().await?;
    loop {
        let ring = bell.next_ring();
        if let Some(claim) = claim(app, node, crate::now()).await? {
            return Ok(Some(claim));
        }
        // A claim that came in while the server was stopping heard the last ring already.
        if bell.stopped() {
            return Ok(None);
        }
        let lapse = {
            let mut connection = app.db.connection().await?;
            store::jobs::next_lapse(&mut connection, &node.id.to_string(), MAX_ATTEMPTS).await?
        };
        // A lease lapsed already whose job another claim holds locked: look again in a
        // second, not at once.
        let look_again = lapse.map_or(deadline, |lapse| {
            let after = u64::try_from(lapse + 1 - crate::now()).unwrap_or(0).max(1);
            deadline.min(tokio::time::Instant::now() + std::time::Duration::from_secs(after))
        });
        tokio::select! {
            () = ring => {}
            () = tokio::time::sleep_until(look_again) => {}
        }
        // No claim once the wait is over: its answer would come after the time the node
        // (and any balancer in between) was told to wait.
        if bell.stopped() || tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
    }
}

/// The job `lease` names, when its node holds that lease: 404 when the node has no such
/// job, `lease_lost` when the token is not the job's current one.
async fn leased(
    connection: &mut sqlx::AnyConnection,
    lease: Lease<'_>,
) -> Result<NodeJob, JobError> {
    let job = store::jobs::of_node(connection, &lease.node.id.to_string(), lease.request)
        .await?
        .ok_or(JobError::NotFound)?;
    if job.lease_token.as_deref() != Some(token_hash(lease.token).as_slice()) {
        return Err(JobError::LeaseLost);
    }
    Ok(job)
}

/// Why a write conditional on `lease` changed nothing: the job is not the node's, or the
/// lease is lost.
async fn explain_lost_lease(connection: &mut sqlx::AnyConnection, lease: Lease<'_>) -> JobError {
    match leased(connection, lease).await {
        Ok(_) => JobError::LeaseLost,
        Err(error) => error,
    }
}

/// Records how far the job is and renews its lease; returns the lease's new end.
pub(crate) async fn report_progress(
    app: &App,
    lease: Lease<'_>,
    permille: u16,
    stage: &str,
    now: i64,
) -> Result<i64, JobError> {
    if permille > 1000 || stage.len() > MAX_STAGE {
        return Err(JobError::InvalidProgress);
    }
    let progress = store::jobs::Progress {
        permille,
        stage,
        lease_expires_at: now + LEASE_SECONDS,
        now,
    };
    let mut connection = app.db.connection().await?;
    if !store::jobs::renew(&mut connection, &lease.holder(), &progress).await? {
        return Err(explain_lost_lease(&mut connection, lease).await);
    }
    Ok(progress.lease_expires_at)
}

/// Hands the job `lease` holds back to the queue (its node is stopping): the next claim by
/// the node takes it at once, and the attempt does not count towards [`MAX_ATTEMPTS`].
pub(crate) async fn give_back(app: &App, lease: Lease<'_>, now: i64) -> Result<(), JobError> {
    end_lease(app, lease, LeaseEnd::GivenBack, now).await?;
    tracing::info!(request = %lease.request, "job handed back by its node");
    Ok(())
}

/// Fails the job `lease` holds with the node's reason; it is not retried.
pub(crate) async fn fail(
    app: &App,
    lease: Lease<'_>,
    reason: &str,
    now: i64,
) -> Result<(), JobError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON {
        return Err(JobError::InvalidReason);
    }
    end_lease(app, lease, LeaseEnd::Failed { reason }, now).await?;
    tracing::warn!(request = %lease.request, reason, "job failed");
    Ok(())
}

/// How a node ends its lease short of completing the job.
#[derive(Debug, Clone, Copy)]
enum LeaseEnd<'a> {
    /// The job cannot be done, for this reason.
    Failed { reason: &'a str },
    /// The node stops; the job goes back to the queue.
    GivenBack,
}

/// Ends the lease as `end` says, with the node's audit entry; `lease_lost` when the node no
/// longer holds it.
async fn end_lease(
    app: &App,
    lease: Lease<'_>,
    end: LeaseEnd<'_>,
    now: i64,
) -> Result<(), JobError> {
    let mut tx = app.db.begin().await?;
    let job = leased(&mut tx, lease).await?;
    if job.status != JobStatus::Leased {
        return Err(JobError::LeaseLost);
    }
    let (ended, action) = match end {
        LeaseEnd::Failed { reason } => (
            store::jobs::fail(&mut tx, lease.request, reason, now).await?,
            "job.failed",
        ),
        LeaseEnd::GivenBack => {
            // Back in the queue: the node may already wait for its next job.
            tx.ring_job_bell();
            (
                store::jobs::give_back(&mut tx, &lease.holder(), now).await?,
                "job.returned",
            )
        }
    };
    if !ended {
        return Err(JobError::LeaseLost);
    }
    tx.audit(
        parse_vault(&job.vault_id)?,
        now,
        Event {
            actor: lease.node.fingerprint,
            action,
            subject: lease.request,
            statement: None,
        },
    );
    tx.commit().await?;
    Ok(())
}

/// Time's work on jobs: a lease lost [`MAX_ATTEMPTS`] times fails the job for good, and a
/// job whose request expired before it was done fails. Returns how many failed.
pub(crate) async fn sweep(app: &App, now: i64) -> Result<usize, JobError> {
    let overdue = {
        let mut connection = app.db.connection().await?;
        store::jobs::overdue(&mut connection, now, MAX_ATTEMPTS).await?
    };
    let mut failed = 0;
    for job in overdue {
        let reason = if job.expires_at <= now {
            "the request expired before the job was done".to_owned()
        } else {
            format!("the node lost its lease {MAX_ATTEMPTS} times")
        };
        let mut tx = app.db.begin().await?;
        // A job that ended since it was read is left as it ended.
        if store::jobs::fail(&mut tx, &job.request_id, &reason, now).await? {
            tx.audit(
                parse_vault(&job.vault_id)?,
                now,
                Event::server("job.failed", &job.request_id),
            );
            tx.commit().await?;
            tracing::warn!(request = %job.request_id, reason, "job failed");
            failed += 1;
        }
    }
    Ok(failed)
}

/// Where a completion's job stands.
#[derive(Debug)]
pub(crate) enum Completing {
    /// Leased to the node: the completion goes ahead, for the job's vault.
    Leased { vault: String },
    /// Done already, with this transcript (or released copy) in the job's vault: the
    /// completion is a retry.
    Done { vault: String, transcript: String },
}

/// The job a completion completes, if the node holds its lease.
pub(crate) async fn completing(
    connection: &mut sqlx::AnyConnection,
    lease: Lease<'_>,
) -> Result<Completing, JobError> {
    let job = leased(connection, lease).await?;
    Ok(if job.status == JobStatus::Done {
        Completing::Done {
            vault: job.vault_id,
            transcript: job.transcript_id.unwrap_or_default(),
        }
    } else {
        Completing::Leased {
            vault: job.vault_id,
        }
    })
}

/// The answer to a retried completion: what was stored, when it was stored under the same
/// signed manifest (`stored_manifest`, base64); another manifest is refused.
pub(crate) fn retried<V>(
    stored: V,
    stored_manifest: &[u8],
    signed: &SignedStatement,
    upload: Upload,
) -> Result<V, JobError> {
    if stored_manifest == signed.to_bytes() {
        Ok(stored)
    } else {
        Err(JobError::AlreadyDone(upload))
    }
}

/// The node's approved model (hex), with `signed` verified as a `T` signed by this node's
/// key.
pub(crate) async fn signed_by_node<T: StatementBody>(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    node: Node<'_>,
    signed: &SignedStatement,
) -> Result<(Verified<T>, Option<String>), JobError> {
    let stored = store::nodes::get(connection, vault, &node.id.to_string())
        .await?
        .ok_or(JobError::NodeVanished)?;
    let keys = PublicIdentity::from_text(&stored.keys.recipient, &stored.keys.verifying_key)
        .map_err(JobError::CorruptNodeKeys)?;
    let verified = signed.verify::<T>()?;
    if verified.signer != keys.verifying_key {
        return Err(JobError::NotSignedByNode);
    }
    Ok((verified, stored.model_sha256))
}

/// Refuses a manifest when one of `checks` (does it match, what) fails, naming the first.
pub(crate) fn require_match(
    upload: Upload,
    checks: &[(bool, &'static str)],
) -> Result<(), JobError> {
    match checks.iter().find(|(matches, _)| !matches) {
        Some((_, what)) => Err(JobError::Mismatch { upload, what }),
        None => Ok(()),
    }
}

/// Whether two lists of fingerprints name the same members, in any order.
pub(crate) fn same_members(mut some: Vec<String>, mut others: Vec<String>) -> bool {
    some.sort();
    others.sort();
    some == others
}

/// Decodes an uploaded ciphertext and checks it is the one its manifest describes.
pub(crate) fn described_ciphertext(
    upload: Upload,
    bytes: &[u8],
    length: u64,
    sha256: &[u8; 32],
) -> Result<Vec<u8>, JobError> {
    if bytes.len() > MAX_TRANSCRIPT_BYTES {
        return Err(JobError::TooLarge(upload));
    }
    if bytes.len() as u64 != length || <[u8; 32]>::from(Sha256::digest(bytes)) != *sha256 {
        return Err(JobError::NotAsDescribed(upload));
    }
    Ok(bytes.to_vec())
}

/// What a completion stores: the ciphertext the node uploaded, of `upload`'s kind, as the
/// node's verified manifest describes it.
#[derive(Debug)]
pub(crate) struct Completion<'a> {
    pub upload: Upload,
    pub vault: &'a str,
    pub transcript: &'a str,
    pub recording: &'a str,
    /// The node's signed manifest, and its digest.
    pub manifest: &'a [u8],
    pub manifest_digest: &'a [u8],
    pub ciphertext: Vec<u8>,
}

/// Writes the completion's ciphertext under a fresh name, then in one transaction marks the
/// job done (audited, with the node's manifest) and lets `record` store the rows that
/// describe the object. When anything fails the object is removed again, so no row ever
/// names a missing object and no object outlives a failed completion.
///
/// Marking the job done is the transaction's first write, so the job's row stays held (a row
/// lock on PostgreSQL, the write lock on SQLite) until it ends: a concurrent completion of
/// the same job, or a deletion of its recording, waits and then finds the job done or gone.
pub(crate) async fn store_completion<V, E>(
    app: &App,
    lease: Lease<'_>,
    completion: Completion<'_>,
    record: impl AsyncFnOnce(&mut Tx, Described<'_>) -> Result<V, E>,
) -> Result<V, E>
where
    E: From<JobError> + From<BlobError> + From<sqlx::Error>,
{
    let Completion {
        upload,
        vault,
        transcript,
        ..
    } = completion;
    let prefix = upload.object_prefix(vault, transcript);
    let ciphertext_len = completion.ciphertext.len() as u64;
    app.blobs
        .put_fresh(&prefix, completion.ciphertext.into(), async move |object| {
            let now = crate::now();
            let mut tx = app.db.begin().await?;
            // The vault's lock first, as roster changes and shredding take it before they
            // touch jobs: a completion that locked its job row first could deadlock them.
            store::vaults::lock(&mut tx, vault).await?;
            finish(
                &mut tx,
                lease,
                upload,
                (transcript, completion.manifest),
                now,
            )
            .await?;
            let described = Described {
                transcript,
                vault,
                recording: completion.recording,
                request: lease.request,
                manifest: completion.manifest,
                manifest_digest: completion.manifest_digest,
                ciphertext_len,
                object,
                now,
            };
            let stored = record(&mut tx, described).await?;
            tx.commit().await?;
            Ok(stored)
        })
        .await
}

/// Marks the job done with `transcript` and audits that as the node's, with its signed
/// `manifest`.
async fn finish(
    tx: &mut Tx,
    lease: Lease<'_>,
    upload: Upload,
    (transcript, manifest): (&str, &[u8]),
    now: i64,
) -> Result<(), JobError> {
    if !store::jobs::finish(tx, &lease.holder(), transcript, now).await? {
        return Err(explain_lost_lease(tx, lease).await);
    }
    tx.audit(
        lease.node.vault,
        now,
        Event::by(
            lease.node.fingerprint,
            upload.action(),
            transcript,
            manifest,
        ),
    );
    Ok(())
}

/// Where a completion stands once its lease and manifest are checked.
pub(crate) enum Checked<V, T> {
    /// A retry of a stored completion: its answer.
    Retry(V),
    /// A new completion, for the job's vault, with the node's verified manifest.
    Fresh {
        vault: String,
        verified: Box<Verified<T>>,
    },
}

/// Completes a transcription job with the sealed transcript, the node's signed manifest
/// and the sealed shares of the transcript key; a retry with the same manifest answers the
/// same.
pub(crate) async fn complete(
    app: &App,
    lease: Lease<'_>,
    signed: &SignedStatement,
    upload: &JobCompletion,
) -> Result<TranscriptView, JobError> {
    let (vault, verified) = match checked_transcript(app, lease, signed).await? {
        Checked::Retry(stored) => return Ok(stored),
        Checked::Fresh { vault, verified } => (vault, *verified),
    };
    let manifest = &verified.statement;
    let transcript = described_ciphertext(
        Upload::SealedTranscript,
        &upload.transcript,
        manifest.ciphertext_len,
        &manifest.ciphertext_sha256,
    )?;
    let shares = sealed_shares(manifest, &upload.shares)?;
    let id = manifest.transcript_id.to_string();
    let completion = Completion {
        upload: Upload::SealedTranscript,
        vault: &vault,
        transcript: &id,
        recording: &manifest.recording_id.to_string(),
        manifest: &signed.to_bytes(),
        manifest_digest: &verified.digest,
        ciphertext: transcript,
    };
    let node = lease.node.id.to_string();
    let holders = split_members(manifest);
    let view = store_completion(app, lease, completion, async |tx: &mut Tx, described| {
        if !still_the_members(app, tx, described.vault, holders).await? {
            return Err(JobError::NotTheMembers);
        }
        let transcript = NewTranscript {
            described,
            node: &node,
        };
        store_transcript(tx, &transcript, shares).await
    })
    .await?;
    tracing::info!(request = %lease.request, transcript = %id, "job done, sealed transcript stored");
    Ok(view)
}

/// Whether `named` are exactly the vault's current members, checked again in the
/// transaction that stores what was made for them, under the vault's lock (which roster
/// changes take too): the first check ran before the upload, and a member added or removed
/// since must not end up with a key split or sealed for the board before.
pub(crate) async fn still_the_members(
    app: &App,
    tx: &mut Tx,
    vault: &str,
    named: Vec<String>,
) -> Result<bool, JobError> {
    // Taken already by `store_completion`; taken again here (a no-op) so that this check
    // holds wherever it is called from.
    store::vaults::lock(tx, vault).await?;
    let roster = app.rosters.verified(tx, parse_vault(vault)?).await?;
    Ok(same_members(
        crate::ops::reshares::roster_holders(&roster),
        named,
    ))
}

/// Checks a transcription's lease and manifest. The manifest must be signed by this node,
/// name this request, its recording (and that recording's manifest digest), the model the
/// node's approval names, and split the key among the vault's current members with the
/// recording's threshold.
async fn checked_transcript(
    app: &App,
    lease: Lease<'_>,
    signed: &SignedStatement,
) -> Result<Checked<TranscriptView, TranscriptManifest>, JobError> {
    let mut connection = app.db.connection().await?;
    let vault = match completing(&mut connection, lease).await? {
        Completing::Leased { vault } => vault,
        Completing::Done { transcript, .. } => {
            let stored = store::transcripts::get(&mut connection, &transcript)
                .await?
                .ok_or(JobError::NotFound)?;
            let manifest = stored.manifest.clone();
            return retried(stored, &manifest, signed, Upload::SealedTranscript)
                .map(Checked::Retry);
        }
    };
    let (verified, approved_model) =
        signed_by_node::<TranscriptManifest>(&mut connection, &vault, lease.node, signed).await?;
    let manifest = &verified.statement;
    let recording = store::recordings::transcription_subject(&mut connection, lease.request)
        .await?
        .ok_or(JobError::WrongCompletion(Upload::SealedTranscript))?;
    check_transcript_manifest(manifest, lease, &vault, &recording, approved_model)?;
    let roster = app
        .rosters
        .verified(&mut connection, parse_vault(&vault)?)
        .await?;
    let members = crate::ops::reshares::roster_holders(&roster);
    if !same_members(members, split_members(manifest)) {
        return Err(JobError::NotTheMembers);
    }
    Ok(Checked::Fresh {
        vault,
        verified: Box::new(verified),
    })
}

/// The transcript manifest must name this job (vault, node, request), its recording and
/// that recording's manifest digest and threshold, and the model the node's approval names.
fn check_transcript_manifest(
    manifest: &TranscriptManifest,
    lease: Lease<'_>,
    vault: &str,
    recording: &TranscriptionSubject,
    approved_model: Option<String>,
) -> Result<(), JobError> {
    require_match(
        Upload::SealedTranscript,
        &[
            (manifest.vault_id.to_string() == vault, "vault"),
            (manifest.node_id == lease.node.id, "node"),
            (manifest.request_id.to_string() == lease.request, "request"),
            (
                manifest.recording_id.to_string() == recording.id,
                "recording",
            ),
            (
                manifest.recording_manifest_digest.as_slice() == recording.manifest_digest,
                "recording manifest digest",
            ),
            (
                approved_model == Some(hex::encode(manifest.model_sha256)),
                "model (it must be the one the node's approval names)",
            ),
            (
                i32::from(manifest.split.threshold.k()) == recording.threshold_k,
                "threshold",
            ),
        ],
    )
}

/// The members the manifest splits the transcript key among (hex fingerprints).
fn split_members(manifest: &TranscriptManifest) -> Vec<String> {
    manifest
        .split
        .holders
        .iter()
        .map(|holder| holder.to_hex())
        .collect()
}

/// The uploaded sealed shares by member, with each one's place in the manifest's split:
/// exactly one for each member the manifest names.
fn sealed_shares(
    manifest: &TranscriptManifest,
    uploaded: &[SealedShareUpload],
) -> Result<BTreeMap<String, (usize, Vec<u8>)>, JobError> {
    if uploaded.len() != manifest.split.holders.len() {
        return Err(JobError::InvalidShares(
            "send exactly one sealed share per member the manifest names".into(),
        ));
    }
    let named = split_members(manifest);
    let mut shares = BTreeMap::new();
    for share in uploaded {
        let member = share.member.to_ascii_lowercase();
        let index = named
            .iter()
            .position(|named| *named == member)
            .ok_or_else(|| {
                JobError::InvalidShares(format!(
                    "a share is for {member}, whom the manifest does not name"
                ))
            })?;
        if shares
            .insert(member.clone(), (index, share.sealed.to_vec()))
            .is_some()
        {
            return Err(JobError::InvalidShares(format!(
                "two shares are for {member}"
            )));
        }
    }
    Ok(shares)
}

/// Stores the sealed transcript's row and its shares; returns its view.
async fn store_transcript(
    tx: &mut Tx,
    transcript: &NewTranscript<'_>,
    shares: BTreeMap<String, (usize, Vec<u8>)>,
) -> Result<TranscriptView, JobError> {
    // The transcript's ID is the node's choice: one already stored is never replaced.
    let id = transcript.described.transcript;
    if !store::transcripts::insert(tx, transcript).await? {
        return Err(JobError::TranscriptExists);
    }
    for (member, (index, sealed)) in shares {
        store::transcripts::insert_share(tx, id, &member, index, &sealed).await?;
    }
    store::transcripts::get(tx, id)
        .await?
        .ok_or(JobError::NotFound)
}
