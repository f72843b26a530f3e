//! Routes for re-sharing keys to a changed board: the work a device has, deals, and new
//! shares.

use axum::extract::State;
use quorate_api::{NewDeal, ReshareAcceptance, ReshareState, ReshareWork};

use super::decode_statement;
use crate::{
    App,
    error::{ApiError, ApiJson},
    http::auth::Authenticated,
    http::paths::{ApiPath, ResharePath, VaultPath},
    now,
    ops::reshares,
};

/// The recordings and transcripts whose shares do not follow the current roster, or that a
/// re-share is moving: each with its manifest, the deals of its completed re-shares (replay
/// them to find the current sharing) and its open re-share, with the sub-shares sealed to the
/// caller.
#[utoipa::path(
    get, path = "/vaults/{vault}/reshares", tag = "reshares", security(("session" = [])), operation_id = "list_reshare_work",
    params(VaultPath),
    responses(
        (status = 200, description = "What to re-share; verify everything on the device", body = quorate_api::ReshareWork),
    )
)]
pub(crate) async fn work(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<ReshareWork>, ApiError> {
    who.member_of(vault)?;
    Ok(axum::Json(reshares::work(&app, who.member()).await?))
}

/// A current holder's signed deal of their share to the current members, with the
/// sub-share sealed to each. The first deal opens the subject's re-share (for the current
/// roster head and members); it takes the current sharing's k deals.
#[utoipa::path(
    post, path = "/vaults/{vault}/reshares/deals", tag = "reshares", security(("session" = [])), operation_id = "deal_reshare",
    params(VaultPath),
    request_body = quorate_api::NewDeal,
    responses(
        (status = 200, description = "Stored; where the re-share stands", body = quorate_api::ReshareState),
        (status = 400, description = "Not signed by the caller, holders other than the current members, or sub-shares that are not the files the deal signs", body = quorate_api::ErrorBody),
        (status = 403, description = "The caller does not hold the share the deal deals", body = quorate_api::ErrorBody),
        (status = 404, description = "No such recording or transcript", body = quorate_api::ErrorBody),
        (status = 409, description = "The roster changed, another re-share is open, it differs from the open one, it has its deals, or the caller dealt already", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn deal(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<NewDeal>,
) -> Result<axum::Json<ReshareState>, ApiError> {
    who.member_of(vault)?;
    let signed = decode_statement(&body.deal)?;
    let subshares = body
        .subshares
        .into_iter()
        .map(|upload| (upload.member, upload.sealed.into_bytes()))
        .collect();
    let state = reshares::deal(&app, who.member(), &signed, subshares, now()).await?;
    Ok(axum::Json(state))
}

/// A new holder's new share, sealed to themselves, with the commitments they computed. When
/// every new holder's is in and all agree, the new shares replace the old ones (which are
/// deleted) and open requests on the subject close; if they disagree, the re-share is
/// dropped and the old shares kept.
#[utoipa::path(
    post, path = "/vaults/{vault}/reshares/{reshare}/accept", tag = "reshares", security(("session" = [])), operation_id = "accept_reshare",
    params(ResharePath),
    request_body = quorate_api::ReshareAcceptance,
    responses(
        (status = 200, description = "Stored; where the re-share stands", body = quorate_api::ReshareState),
        (status = 400, description = "A sealed share or commitments out of bounds", body = quorate_api::ErrorBody),
        (status = 403, description = "The caller is not a new holder", body = quorate_api::ErrorBody),
        (status = 404, description = "No such re-share", body = quorate_api::ErrorBody),
        (status = 409, description = "Fewer deals than it needs, the caller sent theirs already, or the holders' commitments disagree (the re-share is dropped)", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn accept(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(ResharePath { vault, reshare }): ApiPath<ResharePath>,
    ApiJson(body): ApiJson<ReshareAcceptance>,
) -> Result<axum::Json<ReshareState>, ApiError> {
    who.member_of(vault)?;
    let state = reshares::accept(
        &app,
        who.member(),
        &reshare.to_ascii_lowercase(),
        &body.sealed.0,
        &body.commitments.0,
        now(),
    )
    .await?;
    Ok(axum::Json(state))
}
