//! The job routes: a node claims a job, reports progress, fails or completes it (see
//! [`crate::ops::jobs`]); members list jobs and sealed transcripts, and read their shares.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use quorate_api::Base64;
use quorate_api::{
    JobCompletion, JobFailure, JobProgress, JobReturn, JobView, Lease, SealedShare, TranscriptView,
};

use crate::http::paths::{ApiPath, JobPath, TranscriptPath, VaultPath};
use crate::{
    App,
    error::{ApiError, ApiJson, ApiQuery},
    http::auth::{Authenticated, Caller, NodeCaller},
    http::decode_statement,
    http::recordings::stream_stored,
    now,
    ops::jobs::{self, Node},
    ops::recordings::may_read,
    store,
};

impl NodeCaller {
    /// The caller as the operations know a node.
    pub(crate) fn node(&self) -> Node<'_> {
        Node {
            vault: self.vault_id,
            id: self.node_id,
            fingerprint: &self.fingerprint,
        }
    }

    /// The caller's lease on request `request`'s job, proven by `token`.
    pub(crate) fn lease<'a>(&'a self, request: &'a str, token: &'a str) -> jobs::Lease<'a> {
        jobs::Lease {
            node: self.node(),
            request,
            token,
        }
    }
}

/// How long a claim may wait for a job.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ClaimWait {
    /// Seconds to wait for a job when none waits now (0 to 50, default 0): the claim answers
    /// as soon as one is queued for this node, on whichever server replica, or 204 when the
    /// time is up.
    wait: Option<u64>,
}

/// Longest wait a claim may ask for: well below the read timeouts of common balancers (60 s),
/// so that no balancer cuts a claim that is answered at the end of its wait.
const MAX_CLAIM_WAIT_SECONDS: u64 = 50;

/// Claims the oldest job waiting for this node, with a lease; 204 when there is none.
///
/// With `wait`, a claim that finds no job waits up to that many seconds for one (long
/// polling), so that a node starts on a job as soon as its quorum is reached.
#[utoipa::path(
    post, path = "/jobs/claim", tag = "jobs", security(("session" = [])), operation_id = "claim_job",
    params(ClaimWait),
    responses(
        (status = 200, description = "A job, with everything the node needs", body = quorate_api::JobClaim),
        (status = 204, description = "No job waits for this node (after the wait, if one was asked for)"),
        (status = 400, description = "The wait is out of range", body = quorate_api::ErrorBody),
        (status = 403, description = "Only an approved node claims jobs", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn claim(
    State(app): State<App>,
    node: NodeCaller,
    ApiQuery(ClaimWait { wait }): ApiQuery<ClaimWait>,
) -> Result<Response, ApiError> {
    let wait = wait.unwrap_or(0);
    if wait > MAX_CLAIM_WAIT_SECONDS {
        return Err(ApiError::bad_request(
            "invalid_wait",
            format!("wait is 0 to {MAX_CLAIM_WAIT_SECONDS} seconds: ask again after each wait"),
        ));
    }
    let claimed = if wait == 0 {
        jobs::claim(&app, node.node(), now()).await?
    } else {
        jobs::claim_waiting(&app, node.node(), std::time::Duration::from_secs(wait)).await?
    };
    Ok(match claimed {
        Some(claim) => axum::Json(claim).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Reports progress and renews the lease.
#[utoipa::path(
    post, path = "/jobs/{request}/progress", tag = "jobs", security(("session" = [])), operation_id = "job_progress",
    params(JobPath),
    request_body = quorate_api::JobProgress,
    responses(
        (status = 200, description = "The renewed lease", body = quorate_api::Lease),
        (status = 403, description = "Only nodes report progress", body = quorate_api::ErrorBody),
        (status = 404, description = "No job of this node's with this ID", body = quorate_api::ErrorBody),
        (status = 409, description = "The lease was lost: stop working on the job", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn progress(
    State(app): State<App>,
    node: NodeCaller,
    ApiPath(JobPath { request }): ApiPath<JobPath>,
    ApiJson(body): ApiJson<JobProgress>,
) -> Result<axum::Json<Lease>, ApiError> {
    let request = request.to_string();
    let lease = node.lease(&request, &body.lease_token);
    let lease_expires_at =
        jobs::report_progress(&app, lease, body.progress_permille, &body.stage, now()).await?;
    Ok(axum::Json(Lease { lease_expires_at }))
}

/// Fails the job with a reason (a bad share, an unsupported format, ...); it is not retried.
#[utoipa::path(
    post, path = "/jobs/{request}/fail", tag = "jobs", security(("session" = [])), operation_id = "fail_job",
    params(JobPath),
    request_body = quorate_api::JobFailure,
    responses(
        (status = 204, description = "Failed, with the reason kept"),
        (status = 403, description = "Only nodes fail jobs", body = quorate_api::ErrorBody),
        (status = 404, description = "No job of this node's with this ID", body = quorate_api::ErrorBody),
        (status = 409, description = "The lease was lost", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn fail(
    State(app): State<App>,
    node: NodeCaller,
    ApiPath(JobPath { request }): ApiPath<JobPath>,
    ApiJson(body): ApiJson<JobFailure>,
) -> Result<StatusCode, ApiError> {
    let request = request.to_string();
    let lease = node.lease(&request, &body.lease_token);
    jobs::fail(&app, lease, &body.reason, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Hands the job back to the queue: the node is stopping before it could finish. Its next
/// claim takes the job again, and the attempt does not count.
#[utoipa::path(
    post, path = "/jobs/{request}/return", tag = "jobs", security(("session" = [])), operation_id = "return_job",
    params(JobPath),
    request_body = quorate_api::JobReturn,
    responses(
        (status = 204, description = "Back in the queue"),
        (status = 403, description = "Only nodes hand jobs back", body = quorate_api::ErrorBody),
        (status = 404, description = "No job of this node's with this ID", body = quorate_api::ErrorBody),
        (status = 409, description = "The lease was lost", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn give_back(
    State(app): State<App>,
    node: NodeCaller,
    ApiPath(JobPath { request }): ApiPath<JobPath>,
    ApiJson(body): ApiJson<JobReturn>,
) -> Result<StatusCode, ApiError> {
    let request = request.to_string();
    jobs::give_back(&app, node.lease(&request, &body.lease_token), now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Completes the job with the sealed transcript, the node's signed manifest and the sealed
/// shares of the transcript key. A retry with the same manifest answers the same.
///
/// The manifest must be signed by this node, name this request, its recording (and that
/// recording's manifest digest), the model the node's approval names, and split the key
/// among the recording's share holders with the recording's threshold; the transcript must
/// have the manifest's length and SHA-256.
#[utoipa::path(
    post, path = "/jobs/{request}/complete", tag = "jobs", security(("session" = [])), operation_id = "complete_job",
    params(JobPath),
    request_body = quorate_api::JobCompletion,
    responses(
        (status = 200, description = "Stored (or stored already by an earlier try)", body = quorate_api::TranscriptView),
        (status = 400, description = "The manifest, transcript or shares fail a check", body = quorate_api::ErrorBody),
        (status = 403, description = "Only nodes complete jobs", body = quorate_api::ErrorBody),
        (status = 404, description = "No job of this node's with this ID", body = quorate_api::ErrorBody),
        (status = 409, description = "The lease was lost, another transcript completed the job, or a transcript with this ID is stored already", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn complete(
    State(app): State<App>,
    node: NodeCaller,
    ApiPath(JobPath { request }): ApiPath<JobPath>,
    ApiJson(body): ApiJson<JobCompletion>,
) -> Result<axum::Json<TranscriptView>, ApiError> {
    let signed = decode_statement(&body.manifest)?;
    let request = request.to_string();
    let lease = node.lease(&request, &body.lease_token);
    Ok(axum::Json(
        jobs::complete(&app, lease, &signed, &body).await?,
    ))
}

/// The vault's jobs, newest first: status, progress and failures.
#[utoipa::path(
    get, path = "/vaults/{vault}/jobs", tag = "jobs", security(("session" = [])), operation_id = "list_jobs",
    params(VaultPath),
    responses(
        (status = 200, description = "Jobs, newest first", body = Vec<quorate_api::JobView>),
    )
)]
pub(crate) async fn list_jobs(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<Vec<JobView>>, ApiError> {
    who.member_of(vault)?;
    let mut connection = app.db.connection().await?;
    Ok(axum::Json(
        store::jobs::list(&mut connection, &vault.to_string()).await?,
    ))
}

/// The vault's sealed transcripts, newest first.
#[utoipa::path(
    get, path = "/vaults/{vault}/transcripts", tag = "jobs", security(("session" = [])), operation_id = "list_transcripts",
    params(VaultPath),
    responses(
        (status = 200, description = "Sealed transcripts with their signed manifests", body = Vec<quorate_api::TranscriptView>),
    )
)]
pub(crate) async fn list_transcripts(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<Vec<TranscriptView>>, ApiError> {
    who.member_of(vault)?;
    let mut connection = app.db.connection().await?;
    Ok(axum::Json(
        store::transcripts::list(&mut connection, &vault.to_string()).await?,
    ))
}

/// The caller's own sealed share of a transcript's key.
#[utoipa::path(
    get, path = "/vaults/{vault}/transcripts/{transcript}/share", tag = "jobs", security(("session" = [])), operation_id = "get_transcript_share",
    params(TranscriptPath),
    responses(
        (status = 200, description = "The caller's sealed share of the transcript key", body = quorate_api::SealedShare),
    )
)]
pub(crate) async fn transcript_share(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(TranscriptPath { vault, transcript }): ApiPath<TranscriptPath>,
) -> Result<axum::Json<SealedShare>, ApiError> {
    who.member_of(vault)?;
    let (vault, transcript) = (vault.to_string(), transcript.to_string());
    let mut connection = app.db.connection().await?;
    let share = store::transcripts::share(&mut connection, &vault, &transcript, &who.fingerprint)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(SealedShare {
        recording_id: transcript,
        member: who.fingerprint,
        index: share.share_index as u8,
        sealed: Base64::from(share.sealed),
    }))
}

/// The sealed transcript, streamed (one HTTP range may be asked for).
#[utoipa::path(
    get, path = "/vaults/{vault}/transcripts/{transcript}/ciphertext", tag = "jobs", security(("session" = [])), operation_id = "download_transcript",
    params(TranscriptPath),
    responses(
        (status = 200, description = "The sealed transcript (an age file)", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream"),
        (status = 416, description = "The range is outside the ciphertext", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn download_transcript(
    State(app): State<App>,
    who: Caller,
    ApiPath(TranscriptPath { vault, transcript }): ApiPath<TranscriptPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let transcript = transcript.to_string();
    may_read(&app, &who, vault, &transcript).await?;
    let vault = vault.to_string();
    let mut connection = app.db.connection().await?;
    let stored = store::transcripts::object(&mut connection, &vault, &transcript)
        .await?
        .ok_or_else(ApiError::not_found)?;
    drop(connection);
    let ciphertext = store::recordings::Ciphertext {
        ciphertext_len: stored.ciphertext_len,
        manifest_digest: stored.manifest_digest,
    };
    stream_stored(&app, &stored.object, &ciphertext, &headers).await
}
