//! The unlock request routes: extract, check who may, call the operation, answer its view.

use axum::{extract::State, http::StatusCode};
use quorate_api::{NewUnlockRequest, RequestStatus, RequestView, VoteUpload};
use serde::Deserialize;

use crate::http::paths::{ApiPath, RequestPath, VaultPath};
use crate::{
    App,
    error::{ApiError, ApiJson, ApiQuery},
    http::auth::Authenticated,
    http::decode_statement,
    now,
    ops::requests::{self, Ballot, Member},
    store,
};

impl Authenticated {
    /// The caller as the operations know a member.
    pub(crate) fn member(&self) -> Member<'_> {
        Member {
            vault: self.vault_id,
            fingerprint: &self.fingerprint,
        }
    }
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
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<NewUnlockRequest>,
) -> Result<(StatusCode, axum::Json<RequestView>), ApiError> {
    who.member_of(vault)?;
    let signed = decode_statement(&body.request)?;
    let view = requests::create(&app, who.member(), &signed, now()).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RequestFilter {
    /// Only requests of this status.
    status: Option<RequestStatus>,
    /// `me`: only open requests the caller can still vote on.
    #[param(inline)]
    awaiting: Option<Awaiting>,
}

/// Whose vote a listed request awaits.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Awaiting {
    /// The caller's.
    Me,
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
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiQuery(filter): ApiQuery<RequestFilter>,
) -> Result<axum::Json<Vec<RequestView>>, ApiError> {
    who.member_of(vault)?;
    let awaiting = filter.awaiting.map(|Awaiting::Me| who.fingerprint.as_str());
    let filter = store::requests::Filter {
        status: filter.status,
        awaiting,
        now: now(),
    };
    Ok(axum::Json(
        store::requests::list(&app.db, &vault.to_string(), &filter).await?,
    ))
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
    ApiPath(RequestPath { vault, request }): ApiPath<RequestPath>,
) -> Result<axum::Json<RequestView>, ApiError> {
    who.member_of(vault)?;
    let (vault, request) = (vault.to_string(), request.to_string());
    let mut connection = app.db.connection().await?;
    store::requests::view(&mut connection, &vault, &request)
        .await?
        .map(axum::Json)
        .ok_or_else(ApiError::not_found)
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
    ApiPath(RequestPath { vault, request }): ApiPath<RequestPath>,
    ApiJson(body): ApiJson<VoteUpload>,
) -> Result<axum::Json<RequestView>, ApiError> {
    who.member_of(vault)?;
    let signed = decode_statement(&body.vote)?;
    let ballot = Ballot {
        request,
        signed: &signed,
        resealed_share: body.resealed_share.as_deref(),
    };
    Ok(axum::Json(
        requests::vote(&app, who.member(), ballot, now()).await?,
    ))
}
