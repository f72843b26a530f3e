//! Routes for invites, member enrolment, the member list and roster changes.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use quorate_api::{
    InviteRequest, MemberEnrolment, MemberStatus, MemberView, NewVault, PublicKeys, RosterAppend,
    RosterAppended,
};
use quorate_crypto::PublicIdentity;
use serde::Deserialize;

use crate::http::paths::{ApiPath, VaultPath};
use crate::{
    App,
    error::{ApiError, ApiJson, ApiQuery},
    http::auth::Authenticated,
    http::decode_statement,
    now,
    ops::members,
    store,
};

/// A display name as people type it: trimmed, 1 to 200 bytes, no control characters.
pub(crate) fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 200 printable characters",
        ));
    }
    Ok(name)
}

/// Public keys as a client sends them, or 400 `invalid_keys`.
pub(crate) fn parse_keys(keys: &PublicKeys) -> Result<PublicIdentity, ApiError> {
    PublicIdentity::from_text(&keys.recipient, &keys.verifying_key)
        .map_err(|error| ApiError::bad_request("invalid_keys", error.to_string()))
}

/// Creates a one-time, expiring invite for a member or a node (admins).
#[utoipa::path(
    post, path = "/vaults/{vault}/invites", tag = "members", security(("session" = [])), operation_id = "create_invite",
    params(VaultPath),
    request_body = quorate_api::InviteRequest,
    responses(
        (status = 201, description = "A one-time invite code", body = quorate_api::Invite),
        (status = 400, description = "Lifetime out of range", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins invite", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn create_invite(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<InviteRequest>,
) -> Result<impl IntoResponse, ApiError> {
    who.admin_of(vault)?;
    let invite = members::invite(&app, who.member(), body.purpose, body.ttl_seconds, now()).await?;
    Ok((StatusCode::CREATED, axum::Json(invite)))
}

/// Redeems an invite with the member's public keys.
///
/// The member stays pending until an admin signs their roster entry after comparing
/// fingerprints.
#[utoipa::path(
    post, path = "/enrol/member", tag = "enrolment", operation_id = "enrol_member",
    request_body = quorate_api::MemberEnrolment,
    responses(
        (status = 201, description = "Enrolled, pending until an admin signs the roster entry; pin the genesis", body = quorate_api::Enrolled),
        (status = 400, description = "Unknown, used or expired invite, or invalid keys", body = quorate_api::ErrorBody),
        (status = 409, description = "These keys are already enrolled in the vault", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn enrol_member(
    State(app): State<App>,
    ApiJson(body): ApiJson<MemberEnrolment>,
) -> Result<impl IntoResponse, ApiError> {
    let public = parse_keys(&body.keys)?;
    let name = check_name(&body.name)?;
    let enrolled = members::enrol_member(&app, &body.code, &public, name, now()).await?;
    Ok((StatusCode::CREATED, axum::Json(enrolled)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MemberFilter {
    /// Only members of this status.
    status: Option<MemberStatus>,
}

/// Lists the vault's members, optionally of one status.
///
/// A view for convenience: the signed roster chain is the authority.
#[utoipa::path(
    get, path = "/vaults/{vault}/members", tag = "members", security(("session" = [])), operation_id = "list_members",
    params(VaultPath, MemberFilter),
    responses(
        (status = 200, description = "Members, oldest first", body = Vec<quorate_api::MemberView>),
    )
)]
pub(crate) async fn list_members(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiQuery(filter): ApiQuery<MemberFilter>,
) -> Result<axum::Json<Vec<MemberView>>, ApiError> {
    who.member_of(vault)?;
    let mut connection = app.db.connection().await?;
    let members = store::members::list(&mut connection, &vault.to_string(), filter.status).await?;
    Ok(axum::Json(members))
}

/// Appends an admin-signed roster entry (add or remove).
///
/// The server replays the whole chain with the new entry (the same check every device
/// makes), then applies it to its member table. A removal ends the member's sessions.
#[utoipa::path(
    post, path = "/vaults/{vault}/roster", tag = "members", security(("session" = [])), operation_id = "append_roster",
    params(VaultPath),
    request_body = quorate_api::RosterAppend,
    responses(
        (status = 201, description = "The entry is appended to the chain", body = quorate_api::RosterAppended),
        (status = 400, description = "The entry fails verification against the chain", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins sign roster entries", body = quorate_api::ErrorBody),
        (status = 409, description = "The chain moved on: fetch the roster and sign again", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn append_roster(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<RosterAppend>,
) -> Result<impl IntoResponse, ApiError> {
    who.admin_of(vault)?;
    let signed = decode_statement(&body.entry)?;
    let sequence = members::append_roster(&app, who.member(), &signed, now()).await?;
    Ok((StatusCode::CREATED, axum::Json(RosterAppended { sequence })))
}

/// Creates another vault (admins of any vault).
///
/// The answer carries the one-time code for its first admin, who then enrols with a genesis
/// entry for the new vault.
#[utoipa::path(
    post, path = "/vaults", tag = "members", security(("session" = [])), operation_id = "create_vault",
    request_body = quorate_api::NewVault,
    responses(
        (status = 201, description = "The vault and its first-admin code", body = quorate_api::CreatedVault),
        (status = 400, description = "Empty or overlong name", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins create vaults", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn create_vault(
    State(app): State<App>,
    who: Authenticated,
    ApiJson(body): ApiJson<NewVault>,
) -> Result<impl IntoResponse, ApiError> {
    who.admin_of(who.vault_id)?;
    let name = check_name(&body.name)?;
    let created = members::create_vault(&app, who.member(), name, now()).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}
