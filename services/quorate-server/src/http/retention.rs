//! Routes for records management: the vault's signed retention rules and the votes on legal
//! holds.

use axum::{extract::State, http::StatusCode};
use quorate_api::{Base64, HoldVoteCounted, HoldVotes, RetentionRules, StatementUpload};

use super::decode_statement;
use crate::{
    App,
    error::{ApiError, ApiJson},
    http::auth::Authenticated,
    http::paths::{ApiPath, VaultPath},
    now,
    ops::retention,
};

/// Every signed retention rule of the vault: for a recording, its newest override is in
/// force, else the vault's newest rule.
#[utoipa::path(
    get, path = "/vaults/{vault}/retention", tag = "retention", security(("session" = [])), operation_id = "list_retention_rules",
    params(VaultPath),
    responses(
        (status = 200, description = "The rules; verify each against the roster", body = quorate_api::RetentionRules),
    )
)]
pub(crate) async fn list_rules(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<RetentionRules>, ApiError> {
    who.member_of(vault)?;
    let rules = retention::rules(&app, &vault.to_string()).await?;
    Ok(axum::Json(RetentionRules {
        rules: rules.into_iter().map(Base64::from).collect(),
    }))
}

/// Stores an admin-signed retention rule, for the vault or one recording, whose sequence
/// follows the newest of its scope. From then on the server shreds by it: the recording's
/// ciphertext with every share of its key, and its minutes, each when its period ends,
/// unless a legal hold covers it; each with a receipt in the audit log.
#[utoipa::path(
    put, path = "/vaults/{vault}/retention", tag = "retention", security(("session" = [])), operation_id = "set_retention_rule",
    params(VaultPath),
    request_body = quorate_api::StatementUpload,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Not signed by the admin sending it, or malformed (a period under a day)", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins set rules", body = quorate_api::ErrorBody),
        (status = 404, description = "The rule names a recording this vault does not have", body = quorate_api::ErrorBody),
        (status = 409, description = "The sequence does not follow the newest rule of its scope: fetch them and sign again", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn set_rule(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<StatementUpload>,
) -> Result<StatusCode, ApiError> {
    who.admin_of(vault)?;
    let signed = decode_statement(&body.statement)?;
    retention::set_rule(&app, who.member(), &signed, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every signed vote on every legal hold of the vault, oldest first.
#[utoipa::path(
    get, path = "/vaults/{vault}/holds", tag = "retention", security(("session" = [])), operation_id = "list_hold_votes",
    params(VaultPath),
    responses(
        (status = 200, description = "The votes; count them against the roster and the policy's k", body = quorate_api::HoldVotes),
    )
)]
pub(crate) async fn list_hold_votes(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<HoldVotes>, ApiError> {
    who.member_of(vault)?;
    let votes = retention::hold_votes(&app, &vault.to_string()).await?;
    Ok(axum::Json(HoldVotes {
        votes: votes.into_iter().map(Base64::from).collect(),
    }))
}

/// Casts the caller's signed vote to place or lift a legal hold. A hold is placed, or
/// lifted, once k distinct current members (k the policy's) voted for the same hold,
/// action, scope and reason; while placed, no deletion (by rule or by an admin) touches
/// what it covers.
#[utoipa::path(
    post, path = "/vaults/{vault}/holds", tag = "retention", security(("session" = [])), operation_id = "vote_hold",
    params(VaultPath),
    request_body = quorate_api::StatementUpload,
    responses(
        (status = 200, description = "Counted; whether this vote decided the hold (placed or lifted)", body = quorate_api::HoldVoteCounted),
        (status = 400, description = "Not signed by the member sending it, or malformed", body = quorate_api::ErrorBody),
        (status = 409, description = "Already voted; the hold is already placed (or not placed, for a lift); or the vote disagrees with the first on scope or reason", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn vote_hold(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<StatementUpload>,
) -> Result<axum::Json<HoldVoteCounted>, ApiError> {
    who.member_of(vault)?;
    let signed = decode_statement(&body.statement)?;
    let decided = retention::vote_hold(&app, who.member(), &signed, now()).await?;
    Ok(axum::Json(HoldVoteCounted { decided }))
}
