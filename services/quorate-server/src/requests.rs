//! Unlock requests and votes. A member asks (signed) for a recording's key to be unlocked for
//! one approved node; share holders other than the requester vote (signed), an approval
//! carrying their share re-sealed to that node. At k approvals the request is quorate and a
//! job is queued for the node; enough denials to make k unreachable reject it; its expiry
//! closes it. Each vote is checked against the request before it counts, and every
//! transition is audited.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::{NewUnlockRequest, RequestView, VoteUpload, VoteView};
use quorate_crypto::{
    RequestId,
    rewrap::resealed_digest,
    statement::{Decision, UnlockRequest, Vote},
    threshold::Subject,
};
use serde::Deserialize;
use sqlx::Row;

use crate::paths::{RequestPath, VaultPath};
use crate::{
    App,
    auth::Authenticated,
    enrol::load_roster,
    error::{ApiError, ApiJson, ApiQuery},
    nodes::decode_statement,
    now,
};

/// The longest a request may stay open.
const MAX_REQUEST_LIFETIME: i64 = 14 * 86_400;
/// How far ahead of the server's clock a device's `created_at` may be.
const CLOCK_SKEW: i64 = 300;
/// Largest re-sealed share accepted.
const MAX_RESEALED_SHARE: usize = 4096;

fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Client {
        status: StatusCode::FORBIDDEN,
        code,
        message: message.into(),
    }
}

/// The threshold of a subject's split and who holds its shares.
async fn subject_holders(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    subject: &Subject,
    now: i64,
) -> Result<(u8, Vec<String>), ApiError> {
    let recording = match subject {
        Subject::Recording(recording) => recording,
        Subject::Transcript(transcript) => {
            return transcript_holders(connection, vault, *transcript, now).await;
        }
    };
    let row = sqlx::query(
        "SELECT threshold_k FROM recordings WHERE vault_id = $1 AND id = $2 AND status = 'complete'",
    )
    .bind(vault)
    .bind(recording.to_string())
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(|| {
        ApiError::bad_request(
            "unknown_subject",
            "no complete recording with that ID in this vault",
        )
    })?;
    let holders = sqlx::query("SELECT member FROM recording_shares WHERE recording_id = $1")
        .bind(recording.to_string())
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(|row| row.try_get("member"))
        .collect::<Result<_, _>>()?;
    Ok((row.try_get::<i32, _>("threshold_k")? as u8, holders))
}

/// The threshold and share holders of a sealed transcript that is neither released nor being
/// released: one release request at a time, open or with its job waiting or running, so
/// that two jobs never make two released copies of one transcript. (A request that expired,
/// was rejected, or whose job failed leaves room for another.)
async fn transcript_holders(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    transcript: quorate_crypto::TranscriptId,
    now: i64,
) -> Result<(u8, Vec<String>), ApiError> {
    let row = sqlx::query(
        "SELECT t.manifest, r.transcript_id AS released FROM transcripts t
         LEFT JOIN released_transcripts r ON r.transcript_id = t.id
         WHERE t.vault_id = $1 AND t.id = $2",
    )
    .bind(vault)
    .bind(transcript.to_string())
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(|| {
        ApiError::bad_request(
            "unknown_subject",
            "no transcript with that ID in this vault",
        )
    })?;
    if row.try_get::<Option<String>, _>("released")?.is_some() {
        return Err(crate::release::already_released());
    }
    let pending = sqlx::query(
        "SELECT 1 FROM unlock_requests r LEFT JOIN jobs j ON j.request_id = r.id
         WHERE r.subject_id = $1 AND r.purpose = 'release-transcript'
           AND ((r.status = 'open' AND r.expires_at > $2) OR (r.status = 'quorate' AND j.status IN ('queued', 'leased')))",
    )
    .bind(transcript.to_string())
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    if pending.is_some() {
        return Err(ApiError::conflict(
            "release_pending",
            "a request to release this transcript is open or being carried out: vote on it, or wait until it ends",
        ));
    }
    let manifest = crate::release::transcript_manifest(&row.try_get::<Vec<u8>, _>("manifest")?)?;
    let holders = manifest
        .split
        .shares
        .iter()
        .map(|share| share.member.to_hex())
        .collect();
    Ok((manifest.split.threshold.k(), holders))
}

/// Whether `member` holds a share of the subject `subject` (a recording or transcript ID).
const HOLDS_SHARE: &str = "(EXISTS (SELECT 1 FROM recording_shares s WHERE s.recording_id = {subject} AND s.member = {member})
     OR EXISTS (SELECT 1 FROM transcript_shares s WHERE s.transcript_id = {subject} AND s.member = {member}))";

/// A request and its votes, as stored.
async fn request_view(
    connection: &mut sqlx::AnyConnection,
    request: &str,
) -> Result<RequestView, ApiError> {
    let row = sqlx::query(
        "SELECT id, subject_kind, subject_id, purpose, node_id, requester, status, threshold_k, eligible,
                statement, created_at, expires_at
         FROM unlock_requests WHERE id = $1",
    )
    .bind(request)
    .fetch_one(&mut *connection)
    .await?;
    let votes = sqlx::query(
        "SELECT voter, decision, statement, created_at FROM votes WHERE request_id = $1 ORDER BY created_at, voter",
    )
    .bind(request)
    .fetch_all(&mut *connection)
    .await?
    .iter()
    .map(|vote| {
        Ok(VoteView {
            voter: vote.try_get("voter")?,
            decision: vote.try_get("decision")?,
            statement: STANDARD.encode(vote.try_get::<Vec<u8>, _>("statement")?),
            created_at: vote.try_get("created_at")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let count = |decision: &str| {
        votes
            .iter()
            .filter(|vote| vote.decision == decision)
            .count() as u8
    };
    Ok(RequestView {
        request_id: row.try_get("id")?,
        subject_kind: row.try_get("subject_kind")?,
        subject_id: row.try_get("subject_id")?,
        purpose: row.try_get("purpose")?,
        node_id: row.try_get("node_id")?,
        requester: row.try_get("requester")?,
        status: row.try_get("status")?,
        threshold: row.try_get::<i32, _>("threshold_k")? as u8,
        eligible: row.try_get::<i32, _>("eligible")? as u8,
        approvals: count("approve"),
        denials: count("deny"),
        statement: STANDARD.encode(row.try_get::<Vec<u8>, _>("statement")?),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        votes,
    })
}

/// Asks for a recording's key to be unlocked for one approved node.
///
/// The request must be signed by the caller, name a complete recording of the vault and a
/// node whose approval is current, and expire within 14 days. Members who hold a share,
/// other than the requester, vote on it.
#[utoipa::path(
    post, path = "/vaults/{vault}/requests", tag = "requests", security(("session" = [])), operation_id = "create_request",
    params(VaultPath),
    request_body = quorate_api::NewUnlockRequest,
    responses(
        (status = 201, description = "Open for votes", body = quorate_api::RequestView),
        (status = 400, description = "The request fails a check (signer, subject, node, expiry, reachable quorum)", body = quorate_api::ErrorBody),
        (status = 403, description = "Nodes cannot ask", body = quorate_api::ErrorBody),
        (status = 409, description = "A request with this ID exists, or the transcript is released or a release of it is pending", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn create_request(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiJson(body): ApiJson<NewUnlockRequest>,
) -> Result<(StatusCode, axum::Json<RequestView>), ApiError> {
    who.member_of(&vault)?;
    let signed = decode_statement(&body.request, "request")?;
    let now = now();
    let mut transaction = app.db.pool().begin().await?;
    // Requests in one vault are made one at a time: this write locks the vault's row on
    // PostgreSQL and takes SQLite's write lock before anything is read, so two requests to
    // release one transcript cannot both find that none is pending.
    sqlx::query("UPDATE vaults SET name = name WHERE id = $1")
        .bind(&vault)
        .execute(&mut *transaction)
        .await?;
    let roster = load_roster(&mut transaction, who.vault_id).await?;
    let (verified, signer) = roster
        .verify_by_member::<UnlockRequest>(&signed)
        .map_err(ApiError::invalid_statement)?;
    let request = verified.statement;
    if signer.fingerprint.to_hex() != who.fingerprint || request.requester != signer.fingerprint {
        return Err(ApiError::bad_request(
            "invalid_statement",
            "the request must name and be signed by the member sending it",
        ));
    }
    if request.created_at > now + CLOCK_SKEW
        || request.expires_at <= now
        || request.expires_at - request.created_at > MAX_REQUEST_LIFETIME
    {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "a request must expire in the future and within 14 days of being made (check the device's clock)",
        ));
    }
    let (threshold, holders) =
        subject_holders(&mut transaction, &vault, &request.subject, now).await?;
    let node = sqlx::query(
        "SELECT status, approval_expires_at FROM nodes WHERE vault_id = $1 AND id = $2",
    )
    .bind(&vault)
    .bind(request.node_id.to_string())
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or_else(|| ApiError::bad_request("unknown_node", "no node with that ID in this vault"))?;
    if node.try_get::<String, _>("status")? != "approved"
        || node
            .try_get::<Option<i64>, _>("approval_expires_at")?
            .unwrap_or(0)
            <= request.expires_at.min(now)
    {
        return Err(ApiError::bad_request(
            "node_not_approved",
            "that node has no current approval: an admin must approve it first",
        ));
    }
    let eligible = holders
        .iter()
        .filter(|holder| **holder != who.fingerprint)
        .count() as u8;
    if eligible < threshold {
        return Err(ApiError::bad_request(
            "quorum_unreachable",
            format!(
                "{threshold} approvals are needed but only {eligible} other share holders can give one"
            ),
        ));
    }
    let (kind, subject_id) = match request.subject {
        Subject::Recording(id) => ("recording", id.to_string()),
        Subject::Transcript(id) => ("transcript", id.to_string()),
    };
    let request_id = request.request_id.to_string();
    let inserted = sqlx::query(
        "INSERT INTO unlock_requests (id, vault_id, subject_kind, subject_id, purpose, node_id, requester, statement, digest,
                                      threshold_k, eligible, status, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $12, $13) ON CONFLICT DO NOTHING",
    )
    .bind(&request_id)
    .bind(&vault)
    .bind(kind)
    .bind(&subject_id)
    .bind(request.purpose.as_str())
    .bind(request.node_id.to_string())
    .bind(&who.fingerprint)
    .bind(signed.to_bytes())
    .bind(verified.digest.to_vec())
    .bind(i32::from(threshold))
    .bind(i32::from(eligible))
    .bind(now)
    .bind(request.expires_at)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if inserted != 1 {
        return Err(ApiError::conflict(
            "request_exists",
            "a request with this ID exists: make a new one with a fresh ID",
        ));
    }
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        who.vault_id,
        now,
        crate::audit::Event {
            actor: &who.fingerprint,
            action: "request.created",
            subject: &request_id,
            statement: Some(&signed.to_bytes()),
        },
    )
    .await?;
    let view = request_view(&mut transaction, &request_id).await?;
    transaction.commit().await?;
    tracing::info!(vault = %vault, request = %request_id, purpose = request.purpose.as_str(), "unlock request opened");
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RequestFilter {
    /// Only requests of this status (`open`, `quorate`, `rejected`, `expired`).
    status: Option<String>,
    /// `me`: only open requests the caller can still vote on.
    awaiting: Option<String>,
}

/// The vault's requests, newest first; `?awaiting=me` lists what awaits the caller's vote.
#[utoipa::path(
    get, path = "/vaults/{vault}/requests", tag = "requests", security(("session" = [])), operation_id = "list_requests",
    params(VaultPath, RequestFilter),
    responses(
        (status = 200, description = "Requests with their votes", body = Vec<quorate_api::RequestView>),
        (status = 400, description = "Unknown filter", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn list_requests(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiQuery(filter): ApiQuery<RequestFilter>,
) -> Result<axum::Json<Vec<RequestView>>, ApiError> {
    who.member_of(&vault)?;
    let awaiting = match filter.awaiting.as_deref() {
        None => false,
        Some("me") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "awaiting takes only \"me\"",
            ));
        }
    };
    let mut connection = app.db.pool().acquire().await?;
    let holds = HOLDS_SHARE
        .replace("{subject}", "r.subject_id")
        .replace("{member}", "$5");
    let ids: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT r.id FROM unlock_requests r
         WHERE r.vault_id = $1 AND ($2 = '' OR r.status = $2)
           AND ($3 = 0 OR (r.status = 'open' AND r.expires_at > $4 AND r.requester <> $5
                AND {holds}
                AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.request_id = r.id AND v.voter = $5)))
         ORDER BY r.created_at DESC, r.id"
    )))
    .bind(&vault)
    .bind(filter.status.unwrap_or_default())
    .bind(i32::from(awaiting))
    .bind(now())
    .bind(&who.fingerprint)
    .fetch_all(&mut *connection)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut views = Vec::with_capacity(ids.len());
    for id in &ids {
        views.push(request_view(&mut connection, id).await?);
    }
    Ok(axum::Json(views))
}

fn parse_request(text: &str) -> Result<RequestId, ApiError> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// One request with its votes.
#[utoipa::path(
    get, path = "/vaults/{vault}/requests/{request}", tag = "requests", security(("session" = [])), operation_id = "get_request",
    params(RequestPath),
    responses(
        (status = 200, description = "The request and its votes", body = quorate_api::RequestView),
    )
)]
pub(crate) async fn get_request(
    State(app): State<App>,
    who: Authenticated,
    Path(RequestPath { vault, request }): Path<RequestPath>,
) -> Result<axum::Json<RequestView>, ApiError> {
    who.member_of(&vault)?;
    let request = parse_request(&request)?.to_string();
    let mut connection = app.db.pool().acquire().await?;
    sqlx::query("SELECT 1 FROM unlock_requests WHERE id = $1 AND vault_id = $2")
        .bind(&request)
        .bind(&vault)
        .fetch_optional(&mut *connection)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(request_view(&mut connection, &request).await?))
}

/// Casts the caller's signed vote. An approval carries the caller's share re-sealed to the
/// request's node, and the SHA-256 of that re-sealed share is inside the signed vote.
///
/// The vote must be signed by the caller (a current member who holds a share and is not the
/// requester) and bound to this request's exact digest; one vote per member.
#[utoipa::path(
    post, path = "/vaults/{vault}/requests/{request}/votes", tag = "requests", security(("session" = [])), operation_id = "vote",
    params(RequestPath),
    request_body = quorate_api::VoteUpload,
    responses(
        (status = 200, description = "Counted; the request as it now stands", body = quorate_api::RequestView),
        (status = 400, description = "The vote fails a check (signer, binding, re-sealed share)", body = quorate_api::ErrorBody),
        (status = 403, description = "The caller requested it, or holds no share", body = quorate_api::ErrorBody),
        (status = 409, description = "Already voted, or the request is closed", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn vote(
    State(app): State<App>,
    who: Authenticated,
    Path(RequestPath { vault, request }): Path<RequestPath>,
    ApiJson(body): ApiJson<VoteUpload>,
) -> Result<axum::Json<RequestView>, ApiError> {
    who.member_of(&vault)?;
    let request = parse_request(&request)?.to_string();
    let signed = decode_statement(&body.vote, "vote")?;
    let now = now();
    let mut transaction = app.db.pool().begin().await?;
    // Votes on one request take turns: this write locks the row on PostgreSQL and takes
    // SQLite's write lock before anything is read.
    let locked =
        sqlx::query("UPDATE unlock_requests SET status = status WHERE id = $1 AND vault_id = $2")
            .bind(&request)
            .bind(&vault)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
    if locked != 1 {
        return Err(ApiError::not_found());
    }
    let row = sqlx::query(
        "SELECT subject_id, node_id, requester, status, digest, threshold_k, eligible, expires_at FROM unlock_requests WHERE id = $1",
    )
    .bind(&request)
    .fetch_one(&mut *transaction)
    .await?;
    let status: String = row.try_get("status")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    if status == "open" && expires_at <= now {
        close(
            &mut transaction,
            &app,
            who.vault_id,
            &request,
            "expired",
            now,
        )
        .await?;
        transaction.commit().await?;
        return Err(ApiError::conflict(
            "request_closed",
            "this request has expired: ask for a new one",
        ));
    }
    if status != "open" {
        return Err(ApiError::conflict(
            "request_closed",
            format!("this request is {status}: votes are no longer taken"),
        ));
    }
    let roster = load_roster(&mut transaction, who.vault_id).await?;
    let (verified, signer) = roster
        .verify_by_member::<Vote>(&signed)
        .map_err(ApiError::invalid_statement)?;
    let vote = verified.statement;
    let mismatch = |what: &str| {
        ApiError::bad_request(
            "invalid_statement",
            format!("the vote's {what} does not match this request"),
        )
    };
    if signer.fingerprint.to_hex() != who.fingerprint || vote.voter != signer.fingerprint {
        return Err(mismatch("voter"));
    }
    if vote.request_id.to_string() != request {
        return Err(mismatch("request ID"));
    }
    if vote.request_digest.as_slice() != row.try_get::<Vec<u8>, _>("digest")?.as_slice() {
        return Err(mismatch("request digest"));
    }
    if row.try_get::<String, _>("requester")? == who.fingerprint {
        return Err(forbidden(
            "own_request",
            "the requester's own vote does not count: other members decide",
        ));
    }
    let holds = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 AS holds WHERE {}",
        HOLDS_SHARE
            .replace("{subject}", "$1")
            .replace("{member}", "$2")
    )))
    .bind(row.try_get::<String, _>("subject_id")?)
    .bind(&who.fingerprint)
    .fetch_optional(&mut *transaction)
    .await?;
    if holds.is_none() {
        return Err(forbidden(
            "not_a_holder",
            "only members who hold a share of this key vote on it",
        ));
    }
    let (decision, resealed) = match (vote.decision, &body.resealed_share) {
        (
            Decision::Approve {
                resealed_share_sha256,
            },
            Some(text),
        ) => {
            let resealed = STANDARD.decode(text).map_err(|_| {
                ApiError::bad_request("invalid_share", "resealed_share must be base64")
            })?;
            if resealed.is_empty() || resealed.len() > MAX_RESEALED_SHARE {
                return Err(ApiError::bad_request(
                    "invalid_share",
                    format!("a re-sealed share must be 1 to {MAX_RESEALED_SHARE} bytes"),
                ));
            }
            if resealed_digest(&resealed) != resealed_share_sha256 {
                return Err(ApiError::bad_request(
                    "invalid_share",
                    "the re-sealed share is not the one the signed vote names",
                ));
            }
            ("approve", Some(resealed))
        }
        (Decision::Approve { .. }, None) => {
            return Err(ApiError::bad_request(
                "invalid_share",
                "an approval must carry the share re-sealed to the node",
            ));
        }
        (Decision::Deny, None) => ("deny", None),
        (Decision::Deny, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_share",
                "a denial carries no share",
            ));
        }
    };
    let inserted = sqlx::query(
        "INSERT INTO votes (request_id, voter, decision, statement, resealed_share, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(&request)
    .bind(&who.fingerprint)
    .bind(decision)
    .bind(signed.to_bytes())
    .bind(resealed)
    .bind(now)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if inserted != 1 {
        return Err(ApiError::conflict(
            "already_voted",
            "you have voted on this request already; a vote cannot be changed",
        ));
    }
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        who.vault_id,
        now,
        crate::audit::Event {
            actor: &who.fingerprint,
            action: if decision == "approve" {
                "vote.approve"
            } else {
                "vote.deny"
            },
            subject: &request,
            statement: Some(&signed.to_bytes()),
        },
    )
    .await?;
    let view = request_view(&mut transaction, &request).await?;
    if view.approvals >= view.threshold {
        close(
            &mut transaction,
            &app,
            who.vault_id,
            &request,
            "quorate",
            now,
        )
        .await?;
        sqlx::query(
            "INSERT INTO jobs (request_id, vault_id, node_id, status, created_at, updated_at)
             VALUES ($1, $2, $3, 'queued', $4, $4)",
        )
        .bind(&request)
        .bind(&vault)
        .bind(row.try_get::<String, _>("node_id")?)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        crate::audit::append(
            &mut transaction,
            app.db.backend(),
            who.vault_id,
            now,
            crate::audit::Event {
                actor: "server",
                action: "job.queued",
                subject: &request,
                statement: None,
            },
        )
        .await?;
    } else if view.eligible.saturating_sub(view.denials) < view.threshold {
        close(
            &mut transaction,
            &app,
            who.vault_id,
            &request,
            "rejected",
            now,
        )
        .await?;
    }
    let view = request_view(&mut transaction, &request).await?;
    transaction.commit().await?;
    tracing::info!(request = %request, decision, status = %view.status, "vote counted");
    Ok(axum::Json(view))
}

/// Closes an open request as `quorate`, `rejected` or `expired`, with its audit entry (no
/// change when it was closed meanwhile).
async fn close(
    connection: &mut sqlx::AnyConnection,
    app: &App,
    vault: quorate_crypto::VaultId,
    request: &str,
    status: &'static str,
    now: i64,
) -> Result<(), ApiError> {
    let closed = sqlx::query(
        "UPDATE unlock_requests SET status = $1, closed_at = $2 WHERE id = $3 AND status = 'open'",
    )
    .bind(status)
    .bind(now)
    .bind(request)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if closed != 1 {
        return Ok(());
    }
    crate::audit::append(
        &mut *connection,
        app.db.backend(),
        vault,
        now,
        crate::audit::Event {
            actor: "server",
            action: match status {
                "quorate" => "request.quorate",
                "rejected" => "request.rejected",
                _ => "request.expired",
            },
            subject: request,
            statement: None,
        },
    )
    .await?;
    Ok(())
}

/// Closes open requests past their expiry; returns how many.
pub(crate) async fn expire(app: &App, now: i64) -> Result<usize, ApiError> {
    let rows = sqlx::query(
        "SELECT id, vault_id FROM unlock_requests WHERE status = 'open' AND expires_at <= $1",
    )
    .bind(now)
    .fetch_all(app.db.pool())
    .await?;
    for row in &rows {
        let request: String = row.try_get("id")?;
        let vault: quorate_crypto::VaultId = row
            .try_get::<String, _>("vault_id")?
            .parse()
            .map_err(|error: quorate_crypto::Error| ApiError::Internal(Box::new(error)))?;
        let mut transaction = app.db.pool().begin().await?;
        close(&mut transaction, app, vault, &request, "expired", now).await?;
        transaction.commit().await?;
    }
    Ok(rows.len())
}
