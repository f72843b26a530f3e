//! The job queue in the database. A quorate request becomes a job for its node; the node
//! claims it with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer
//! makes the claiming statement atomic), reports progress (renewing the lease), and fails
//! it with a reason or completes it with the sealed transcript and its signed manifest,
//! once: a retried completion answers the same. An expired lease puts the job back in the
//! queue, up to [`MAX_ATTEMPTS`] claims.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use quorate_api::{
    JobClaim, JobCompletion, JobFailure, JobProgress, JobView, Lease, NodeShare, SealedShare,
    TranscriptView,
};
use quorate_crypto::{PublicIdentity, statement::TranscriptManifest};
use sha2::{Digest, Sha256};
use sqlx::{Row, any::AnyRow};

use crate::paths::{JobPath, TranscriptPath, VaultPath};
use crate::{
    App,
    auth::{Authenticated, Caller, NodeCaller},
    db::Backend,
    error::{ApiError, ApiJson},
    nodes::decode_statement,
    now,
    recordings::{may_read, stream_object, transcript_object_prefix},
};

/// How long a lease lasts unless renewed.
pub const LEASE_SECONDS: i64 = 120;
/// Claims of one job before it is failed for good.
pub const MAX_ATTEMPTS: i32 = 5;
/// Largest sealed transcript accepted (about 20 hours of speech, sealed).
pub const MAX_TRANSCRIPT_BYTES: usize = 16 << 20;

fn lease_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Refuses a node whose approval is not current.
async fn require_approved(app: &App, node: &NodeCaller) -> Result<(), ApiError> {
    let row = sqlx::query(
        "SELECT status, approval_expires_at FROM nodes WHERE vault_id = $1 AND id = $2",
    )
    .bind(node.vault_id.to_string())
    .bind(node.node_id.to_string())
    .fetch_one(app.db.pool())
    .await?;
    let current = row.try_get::<String, _>("status")? == "approved"
        && row
            .try_get::<Option<i64>, _>("approval_expires_at")?
            .unwrap_or(0)
            > now();
    if current {
        Ok(())
    } else {
        Err(ApiError::Client {
            status: StatusCode::FORBIDDEN,
            code: "node_not_approved",
            message: "this node has no current approval: ask an admin to approve it".into(),
        })
    }
}

/// Claims the oldest job waiting for this node, with a lease; 204 when there is none.
#[utoipa::path(
    post, path = "/jobs/claim", tag = "jobs", security(("session" = [])), operation_id = "claim_job",
    responses(
        (status = 200, description = "A job, with everything the node needs", body = quorate_api::JobClaim),
        (status = 204, description = "No job waits for this node"),
        (status = 403, description = "Only an approved node claims jobs", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn claim(State(app): State<App>, node: NodeCaller) -> Result<Response, ApiError> {
    require_approved(&app, &node).await?;
    let now = now();
    let token = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    let pick = match app.db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET status = 'leased', lease_token = $1, lease_expires_at = $2, attempts = attempts + 1, updated_at = $3
         WHERE request_id = (
             SELECT request_id FROM jobs
             WHERE node_id = $4 AND attempts < $5
               AND (status = 'queued' OR (status = 'leased' AND lease_expires_at < $3))
             ORDER BY created_at, request_id LIMIT 1 {pick})
         RETURNING request_id, vault_id, attempts"
    )))
    .bind(lease_hash(&token))
    .bind(now + LEASE_SECONDS)
    .bind(now)
    .bind(node.node_id.to_string())
    .bind(MAX_ATTEMPTS)
    .fetch_optional(app.db.pool())
    .await?;
    let Some(claimed) = claimed else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let request_id: String = claimed.try_get("request_id")?;
    let request = sqlx::query(
        "SELECT r.statement, COALESCE(m.manifest, t.manifest) AS manifest FROM unlock_requests r
         LEFT JOIN recordings m ON m.id = r.subject_id LEFT JOIN transcripts t ON t.id = r.subject_id
         WHERE r.id = $1",
    )
    .bind(&request_id)
    .fetch_one(app.db.pool())
    .await?;
    let approvals = sqlx::query(
        "SELECT voter, statement, resealed_share FROM votes WHERE request_id = $1 AND decision = 'approve' ORDER BY created_at, voter",
    )
    .bind(&request_id)
    .fetch_all(app.db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(NodeShare {
            voter: row.try_get("voter")?,
            vote: STANDARD.encode(row.try_get::<Vec<u8>, _>("statement")?),
            resealed_share: STANDARD.encode(row.try_get::<Vec<u8>, _>("resealed_share")?),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    audit_job(&app, &claimed, "job.leased", &node.fingerprint, now).await?;
    tracing::info!(request = %request_id, node = %node.node_id, "job leased");
    Ok(axum::Json(JobClaim {
        vault_id: claimed.try_get("vault_id")?,
        attempt: claimed.try_get::<i32, _>("attempts")? as u32,
        lease_token: token,
        lease_expires_at: now + LEASE_SECONDS,
        request: STANDARD.encode(request.try_get::<Vec<u8>, _>("statement")?),
        subject_manifest: STANDARD.encode(request.try_get::<Vec<u8>, _>("manifest")?),
        approvals,
        request_id,
    })
    .into_response())
}

async fn audit_job(
    app: &App,
    job: &AnyRow,
    action: &str,
    actor: &str,
    now: i64,
) -> Result<(), ApiError> {
    let vault: quorate_crypto::VaultId = job
        .try_get::<String, _>("vault_id")?
        .parse()
        .map_err(|error: quorate_crypto::Error| ApiError::Internal(Box::new(error)))?;
    let request: String = job.try_get("request_id")?;
    let mut transaction = app.db.begin().await?;
    transaction.audit(
        vault,
        now,
        crate::store::Event {
            actor,
            action,
            subject: &request,
            statement: None,
        },
    );
    transaction.commit().await?;
    Ok(())
}

pub(crate) fn lease_lost() -> ApiError {
    ApiError::conflict(
        "lease_lost",
        "this node no longer holds the job's lease (it lapsed, or the job ended): stop working on it",
    )
}

/// The job row this node holds a lease on, or 404 / 409 `lease_lost`.
pub(crate) async fn leased(
    connection: &mut sqlx::AnyConnection,
    node: &NodeCaller,
    request: &str,
    token: &str,
) -> Result<AnyRow, ApiError> {
    let row = sqlx::query(
        "SELECT request_id, vault_id, status, lease_token, transcript_id FROM jobs WHERE request_id = $1 AND node_id = $2",
    )
    .bind(request)
    .bind(node.node_id.to_string())
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(ApiError::not_found)?;
    let holds = row.try_get::<Option<Vec<u8>>, _>("lease_token")?.as_deref()
        == Some(lease_hash(token).as_slice());
    if !holds {
        return Err(lease_lost());
    }
    Ok(row)
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
    Path(JobPath { request }): Path<JobPath>,
    ApiJson(body): ApiJson<JobProgress>,
) -> Result<axum::Json<Lease>, ApiError> {
    if body.progress_permille > 1000 || body.stage.len() > 100 {
        return Err(ApiError::bad_request(
            "invalid_progress",
            "progress_permille is 0 to 1000 and stage at most 100 bytes",
        ));
    }
    let now = now();
    let expires = now + LEASE_SECONDS;
    let renewed = sqlx::query(
        "UPDATE jobs SET lease_expires_at = $1, progress_permille = $2, stage = $3, updated_at = $4
         WHERE request_id = $5 AND node_id = $6 AND status = 'leased' AND lease_token = $7",
    )
    .bind(expires)
    .bind(i32::from(body.progress_permille))
    .bind(&body.stage)
    .bind(now)
    .bind(&request)
    .bind(node.node_id.to_string())
    .bind(lease_hash(&body.lease_token))
    .execute(app.db.pool())
    .await?
    .rows_affected();
    if renewed != 1 {
        let mut connection = app.db.pool().acquire().await?;
        leased(&mut connection, &node, &request, &body.lease_token).await?;
        return Err(lease_lost());
    }
    Ok(axum::Json(Lease {
        lease_expires_at: expires,
    }))
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
    Path(JobPath { request }): Path<JobPath>,
    ApiJson(body): ApiJson<JobFailure>,
) -> Result<StatusCode, ApiError> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.len() > 2000 {
        return Err(ApiError::bad_request(
            "invalid_reason",
            "say why in 1 to 2000 bytes",
        ));
    }
    let now = now();
    let mut transaction = app.db.begin().await?;
    let row = leased(&mut transaction, &node, &request, &body.lease_token).await?;
    if row.try_get::<String, _>("status")? != "leased" {
        return Err(lease_lost());
    }
    sqlx::query(
        "UPDATE jobs SET status = 'failed', failure = $1, lease_token = NULL, updated_at = $2 WHERE request_id = $3",
    )
    .bind(reason)
    .bind(now)
    .bind(&request)
    .execute(&mut *transaction)
    .await?;
    let vault = row
        .try_get::<String, _>("vault_id")?
        .parse()
        .map_err(|error: quorate_crypto::Error| ApiError::Internal(Box::new(error)))?;
    transaction.audit(
        vault,
        now,
        crate::store::Event {
            actor: &node.fingerprint,
            action: "job.failed",
            subject: &request,
            statement: None,
        },
    );
    transaction.commit().await?;
    tracing::warn!(request = %request, reason, "job failed");
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
    Path(JobPath { request }): Path<JobPath>,
    ApiJson(body): ApiJson<JobCompletion>,
) -> Result<axum::Json<TranscriptView>, ApiError> {
    let signed = decode_statement(&body.manifest, "manifest")?;
    let refuse = |message: &str| ApiError::bad_request("invalid_statement", message.to_owned());
    let mut connection = app.db.pool().acquire().await?;
    let job = leased(&mut connection, &node, &request, &body.lease_token).await?;
    let vault: String = job.try_get("vault_id")?;
    if job.try_get::<String, _>("status")? == "done" {
        // A retry: the same manifest answers the same; another is refused.
        let transcript: String = job
            .try_get::<Option<String>, _>("transcript_id")?
            .unwrap_or_default();
        let stored = transcript_view(&mut connection, &transcript).await?;
        if stored.manifest == STANDARD.encode(signed.to_bytes()) {
            return Ok(axum::Json(stored));
        }
        return Err(ApiError::conflict(
            "already_done",
            "this job was completed with another transcript",
        ));
    }
    let (verified, approved_model) =
        signed_by_node::<TranscriptManifest>(&mut connection, &vault, &node, &signed).await?;
    let manifest = verified.statement;
    let recording = sqlx::query(
        "SELECT m.id, m.manifest_digest, m.threshold_k FROM unlock_requests r JOIN recordings m ON m.id = r.subject_id WHERE r.id = $1",
    )
    .bind(&request)
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(|| {
        ApiError::conflict(
            "wrong_completion",
            "this job releases a transcript: complete it with POST /jobs/{request}/release",
        )
    })?;
    let checks = [
        (manifest.vault_id.to_string() == vault, "vault"),
        (manifest.node_id == node.node_id, "node"),
        (manifest.request_id.to_string() == request, "request"),
        (
            manifest.recording_id.to_string() == recording.try_get::<String, _>("id")?,
            "recording",
        ),
        (
            manifest.recording_manifest_digest.as_slice()
                == recording
                    .try_get::<Vec<u8>, _>("manifest_digest")?
                    .as_slice(),
            "recording manifest digest",
        ),
        (
            approved_model.as_deref() == Some(manifest.model_sha256.as_slice()),
            "model (it must be the one the node's approval names)",
        ),
        (
            i32::from(manifest.split.threshold.k())
                == recording.try_get::<i32, _>("threshold_k")?,
            "threshold",
        ),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(ApiError::bad_request(
            "invalid_statement",
            format!("the transcript manifest's {what} does not match the job"),
        ));
    }
    let mut holders: Vec<String> =
        sqlx::query("SELECT member FROM recording_shares WHERE recording_id = $1")
            .bind(manifest.recording_id.to_string())
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(|row| row.try_get("member"))
            .collect::<Result<_, _>>()?;
    let mut named: Vec<String> = manifest
        .split
        .shares
        .iter()
        .map(|share| share.member.to_hex())
        .collect();
    holders.sort();
    named.sort();
    if holders != named {
        return Err(refuse(
            "the transcript key must be split among exactly the recording's share holders",
        ));
    }
    let transcript = STANDARD
        .decode(&body.transcript)
        .map_err(|_| refuse("the transcript must be base64"))?;
    if transcript.len() > MAX_TRANSCRIPT_BYTES {
        return Err(ApiError::Client {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: format!("a sealed transcript may be at most {MAX_TRANSCRIPT_BYTES} bytes"),
        });
    }
    if transcript.len() as u64 != manifest.ciphertext_len
        || <[u8; 32]>::from(Sha256::digest(&transcript)) != manifest.ciphertext_sha256
    {
        return Err(refuse(
            "the sealed transcript's length or SHA-256 differs from its manifest's",
        ));
    }
    if body.shares.len() != manifest.split.shares.len() {
        return Err(ApiError::bad_request(
            "invalid_shares",
            "send exactly one sealed share per member the manifest names",
        ));
    }
    let mut shares = std::collections::BTreeMap::new();
    for share in &body.shares {
        let member = share.member.to_ascii_lowercase();
        let index = manifest
            .split
            .shares
            .iter()
            .position(|named| named.member.to_hex() == member)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_shares",
                    format!("a share is for {member}, whom the manifest does not name"),
                )
            })?;
        let sealed = STANDARD
            .decode(&share.sealed)
            .map_err(|_| ApiError::bad_request("invalid_shares", "a sealed share is not base64"))?;
        if shares.insert(member.clone(), (index, sealed)).is_some() {
            return Err(ApiError::bad_request(
                "invalid_shares",
                format!("two shares are for {member}"),
            ));
        }
    }
    drop(connection);

    let transcript_id = manifest.transcript_id.to_string();
    let prefix = transcript_object_prefix(&vault, &transcript_id);
    let view = app
        .blobs
        .put_fresh(&prefix, transcript.into(), async |object| {
            let now = now();
            let mut transaction = app.db.begin().await?;
            finish_job(
                &mut transaction,
                &app,
                (&node, &request, &body.lease_token),
                (&transcript_id, "transcript.stored"),
                &signed.to_bytes(),
                now,
            )
            .await?;
            // The transcript's ID is the node's choice: one already stored is never replaced.
            let inserted = sqlx::query(
                "INSERT INTO transcripts (id, vault_id, recording_id, request_id, node_id, manifest, manifest_digest, ciphertext_len, created_at, object)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            )
            .bind(&transcript_id)
            .bind(&vault)
            .bind(manifest.recording_id.to_string())
            .bind(&request)
            .bind(node.node_id.to_string())
            .bind(signed.to_bytes())
            .bind(verified.digest.to_vec())
            .bind(manifest.ciphertext_len as i64)
            .bind(now)
            .bind(object)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if inserted != 1 {
                return Err(ApiError::conflict(
                    "transcript_exists",
                    "a transcript with this ID is stored already: seal the transcript under a fresh ID",
                ));
            }
            for (member, (index, sealed)) in shares {
                sqlx::query(
                    "INSERT INTO transcript_shares (transcript_id, member, share_index, sealed) VALUES ($1, $2, $3, $4)",
                )
                .bind(&transcript_id)
                .bind(member)
                .bind(index as i32 + 1)
                .bind(sealed)
                .execute(&mut *transaction)
                .await?;
            }
            let view = transcript_view(&mut transaction, &transcript_id).await?;
            transaction.commit().await?;
            Ok::<_, ApiError>(view)
        })
        .await?;
    tracing::info!(request = %request, transcript = %transcript_id, "job done, sealed transcript stored");
    Ok(axum::Json(view))
}

/// Marks the job `node` holds under `lease_token` done with the transcript it produced, and
/// audits that as `action` by the node, with its signed manifest; 404 / 409 `lease_lost`
/// when the node does not hold it.
///
/// It is the first write of a completion's transaction, so the job's row stays held (a row
/// lock on PostgreSQL, the write lock on SQLite) until the transaction ends: a concurrent
/// completion of the same job, or a deletion of its recording, waits and then finds the job
/// done or gone.
pub(crate) async fn finish_job(
    connection: &mut crate::store::Tx,
    app: &App,
    (node, request, lease_token): (&NodeCaller, &str, &str),
    (transcript, action): (&str, &str),
    manifest: &[u8],
    now: i64,
) -> Result<(), ApiError> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'done', transcript_id = $1, progress_permille = 1000, stage = 'done', updated_at = $2
         WHERE request_id = $3 AND node_id = $4 AND status = 'leased' AND lease_token = $5",
    )
    .bind(transcript)
    .bind(now)
    .bind(request)
    .bind(node.node_id.to_string())
    .bind(lease_hash(lease_token))
    .execute(&mut **connection)
    .await?
    .rows_affected();
    if done != 1 {
        leased(connection, node, request, lease_token).await?;
        return Err(lease_lost());
    }
    connection.audit(
        node.vault_id,
        now,
        crate::store::Event {
            actor: &node.fingerprint,
            action,
            subject: transcript,
            statement: Some(manifest),
        },
    );
    Ok(())
}

/// Verifies that `signed` is a `T` signed by this node's key; returns it with the model hash
/// the node's approval names.
pub(crate) async fn signed_by_node<T: quorate_crypto::statement::StatementBody>(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    node: &NodeCaller,
    signed: &quorate_crypto::statement::SignedStatement,
) -> Result<(quorate_crypto::statement::Verified<T>, Option<Vec<u8>>), ApiError> {
    let node_row = sqlx::query(
        "SELECT verifying_key, recipient, model_sha256 FROM nodes WHERE vault_id = $1 AND id = $2",
    )
    .bind(vault)
    .bind(node.node_id.to_string())
    .fetch_one(&mut *connection)
    .await?;
    let keys = PublicIdentity::from_text(
        &node_row.try_get::<String, _>("recipient")?,
        &URL_SAFE_NO_PAD.encode(node_row.try_get::<Vec<u8>, _>("verifying_key")?),
    )
    .map_err(|error| ApiError::Internal(Box::new(error)))?;
    let verified = signed.verify::<T>().map_err(ApiError::invalid_statement)?;
    if verified.signer != keys.verifying_key {
        return Err(ApiError::bad_request(
            "invalid_statement",
            "the manifest must be signed by this node's key",
        ));
    }
    Ok((verified, node_row.try_get("model_sha256")?))
}

async fn transcript_view(
    connection: &mut sqlx::AnyConnection,
    transcript: &str,
) -> Result<TranscriptView, ApiError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSCRIPT_COLUMNS} FROM transcripts WHERE id = $1"
    )))
    .bind(transcript)
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(transcript_row(&row)?)
}

fn job_view(row: &AnyRow) -> Result<JobView, sqlx::Error> {
    Ok(JobView {
        request_id: row.try_get("request_id")?,
        node_id: row.try_get("node_id")?,
        status: row.try_get("status")?,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        progress_permille: row.try_get::<i32, _>("progress_permille")? as u16,
        stage: row.try_get("stage")?,
        failure: row.try_get("failure")?,
        transcript_id: row.try_get("transcript_id")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const TRANSCRIPT_COLUMNS: &str =
    "id, recording_id, request_id, node_id, manifest, ciphertext_len, created_at";

fn transcript_row(row: &AnyRow) -> Result<TranscriptView, sqlx::Error> {
    Ok(TranscriptView {
        transcript_id: row.try_get("id")?,
        recording_id: row.try_get("recording_id")?,
        request_id: row.try_get("request_id")?,
        node_id: row.try_get("node_id")?,
        manifest: STANDARD.encode(row.try_get::<Vec<u8>, _>("manifest")?),
        ciphertext_len: row.try_get::<i64, _>("ciphertext_len")? as u64,
        created_at: row.try_get("created_at")?,
    })
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
    Path(VaultPath { vault }): Path<VaultPath>,
) -> Result<axum::Json<Vec<JobView>>, ApiError> {
    who.member_of(&vault)?;
    let sql = "SELECT request_id, node_id, status, attempts, progress_permille, stage, failure, transcript_id, updated_at
         FROM jobs WHERE vault_id = $1 ORDER BY created_at DESC, request_id";
    Ok(axum::Json(
        app.db.vault_rows(sql.to_owned(), &vault, job_view).await?,
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
    Path(VaultPath { vault }): Path<VaultPath>,
) -> Result<axum::Json<Vec<TranscriptView>>, ApiError> {
    who.member_of(&vault)?;
    let sql = format!(
        "SELECT {TRANSCRIPT_COLUMNS} FROM transcripts WHERE vault_id = $1 ORDER BY created_at DESC, id"
    );
    Ok(axum::Json(
        app.db.vault_rows(sql, &vault, transcript_row).await?,
    ))
}

/// Time's work on jobs: a lease lost [`MAX_ATTEMPTS`] times fails the job for good, and a
/// job whose request expired before it was done fails. Returns how many failed.
pub(crate) async fn sweep(app: &App, now: i64) -> Result<usize, ApiError> {
    let rows = sqlx::query(
        "SELECT j.request_id, j.vault_id, j.attempts, r.expires_at FROM jobs j JOIN unlock_requests r ON r.id = j.request_id
         WHERE j.status IN ('queued', 'leased') AND (r.expires_at <= $1 OR (j.status = 'leased' AND j.lease_expires_at < $1 AND j.attempts >= $2))",
    )
    .bind(now)
    .bind(MAX_ATTEMPTS)
    .fetch_all(app.db.pool())
    .await?;
    for row in &rows {
        let reason = if row.try_get::<i64, _>("expires_at")? <= now {
            "the request expired before the job was done".to_owned()
        } else {
            format!("the node lost its lease {MAX_ATTEMPTS} times")
        };
        let request: String = row.try_get("request_id")?;
        sqlx::query(
            "UPDATE jobs SET status = 'failed', failure = $1, lease_token = NULL, updated_at = $2
             WHERE request_id = $3 AND status IN ('queued', 'leased')",
        )
        .bind(&reason)
        .bind(now)
        .bind(&request)
        .execute(app.db.pool())
        .await?;
        audit_job(app, row, "job.failed", "server", now).await?;
        tracing::warn!(request = %request, reason, "job failed");
    }
    Ok(rows.len())
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
    Path(TranscriptPath { vault, transcript }): Path<TranscriptPath>,
) -> Result<axum::Json<SealedShare>, ApiError> {
    who.member_of(&vault)?;
    let transcript = transcript.to_ascii_lowercase();
    let row = sqlx::query(
        "SELECT s.share_index, s.sealed FROM transcript_shares s JOIN transcripts t ON t.id = s.transcript_id
         WHERE t.vault_id = $1 AND s.transcript_id = $2 AND s.member = $3",
    )
    .bind(&vault)
    .bind(&transcript)
    .bind(&who.fingerprint)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(SealedShare {
        recording_id: transcript,
        member: who.fingerprint,
        index: row.try_get::<i32, _>("share_index")? as u8,
        sealed: STANDARD.encode(row.try_get::<Vec<u8>, _>("sealed")?),
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
    Path(TranscriptPath { vault, transcript }): Path<TranscriptPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let transcript = transcript.to_ascii_lowercase();
    may_read(&app, &who, &vault, &transcript).await?;
    stream_object(
        &app,
        "SELECT ciphertext_len, manifest_digest, object FROM transcripts WHERE vault_id = $1 AND id = $2",
        (&vault, &transcript),
        |row| row.try_get("object"),
        &headers,
    )
    .await
}
