//! Routes for the first admin's enrolment, code lookup, and the roster chain.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use quorate_api::Base64;
use quorate_api::{FirstAdminEnrolment, RosterChain};

use crate::http::paths::{ApiPath, VaultPath};
use crate::{
    App,
    bootstrap::code_hash,
    error::{ApiError, ApiJson},
    http::auth::Caller,
    http::decode_statement,
    now,
    ops::members,
    store,
};

/// Redeems the bootstrap code with the first admin's self-signed genesis roster entry.
///
/// In one transaction: the code is marked used, the genesis entry stored, the admin made an
/// active member.
#[utoipa::path(
    post, path = "/enrol/first-admin", tag = "enrolment", operation_id = "enrol_first_admin",
    request_body = quorate_api::FirstAdminEnrolment,
    responses(
        (status = 201, description = "The first admin is enrolled; pin the genesis", body = quorate_api::Enrolled),
        (status = 400, description = "Unknown, used or expired code, or an invalid genesis entry", body = quorate_api::ErrorBody),
        (status = 409, description = "The vault already has its first admin", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn first_admin(
    State(app): State<App>,
    ApiJson(body): ApiJson<FirstAdminEnrolment>,
) -> Result<impl IntoResponse, ApiError> {
    let genesis = decode_statement(&body.genesis)?;
    let enrolled = members::enrol_first_admin(&app, &body.code, &genesis, now()).await?;
    Ok((StatusCode::CREATED, axum::Json(enrolled)))
}

/// The vault's signed roster chain, for the device to verify against its pinned genesis.
#[utoipa::path(
    get, path = "/vaults/{vault}/roster", tag = "members", security(("session" = [])), operation_id = "roster",
    params(VaultPath),
    responses(
        (status = 200, description = "The signed roster chain; verify it against the pinned genesis", body = quorate_api::RosterChain),
    )
)]
pub(crate) async fn roster(
    State(app): State<App>,
    who: Caller,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<RosterChain>, ApiError> {
    // Members and nodes alike: a node checks the admins' signatures on what it is given.
    if vault != who.vault_id {
        return Err(ApiError::not_found());
    }
    let mut connection = app.db.connection().await?;
    let entries = store::roster::entries_from(&mut connection, &vault.to_string(), 0)
        .await?
        .into_iter()
        .map(|entry| Base64::from(entry.statement))
        .collect();
    Ok(axum::Json(RosterChain {
        vault_id: vault.to_string(),
        entries,
    }))
}

/// Says what an unused, unexpired code is for (its vault and purpose) without using it, so
/// a device knows which enrolment to make: a first admin signs a genesis entry for that vault.
#[utoipa::path(
    post, path = "/enrol/lookup", tag = "enrolment", operation_id = "lookup_code",
    request_body = quorate_api::CodeLookup,
    responses(
        (status = 200, description = "The code's vault and purpose", body = quorate_api::CodeInfo),
    )
)]
pub(crate) async fn lookup(
    State(app): State<App>,
    ApiJson(body): ApiJson<quorate_api::CodeLookup>,
) -> Result<axum::Json<quorate_api::CodeInfo>, ApiError> {
    let mut connection = app.db.connection().await?;
    let code = store::codes::lookup(&mut connection, &code_hash(&body.code), now())
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_code",
                "the code is unknown, used or expired: ask for a new one",
            )
        })?;
    Ok(axum::Json(quorate_api::CodeInfo {
        vault_id: code.vault_id,
        purpose: code.purpose,
        expires_at: code.expires_at,
    }))
}
