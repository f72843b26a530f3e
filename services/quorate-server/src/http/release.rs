//! The routes of released minutes: the vault's search key, the completion of a release job,
//! and what members read of released transcripts (see [`crate::ops::release`]).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use quorate_api::Base64;
use quorate_api::{
    Reindex, ReleaseCompletion, ReleasedView, SealedGrant, SearchKeyRotationUpload,
    SearchKeyShares, SearchKeyView,
};
use serde::Deserialize;

use crate::http::paths::{ApiPath, JobPath, TranscriptPath, VaultPath};
use crate::{
    App,
    error::{ApiError, ApiJson, ApiQuery},
    http::auth::{Authenticated, Caller, NodeCaller},
    http::decode_statement,
    http::recordings::stream_stored,
    now,
    ops::release,
    store,
};

pub use crate::ops::release::{MAX_POSTINGS, MAX_RELEASE_BODY, seed_released};

/// The vault's search key as the caller sees it: the admin's commitment, the caller's own
/// sealed copy, and who holds one.
#[utoipa::path(
    get, path = "/vaults/{vault}/search-key", tag = "search", security(("session" = [])), operation_id = "get_search_key",
    params(VaultPath),
    responses(
        (status = 200, description = "The commitment, the caller's sealed copy and the holders", body = quorate_api::SearchKeyView),
    )
)]
pub(crate) async fn get_search_key(
    State(app): State<App>,
    who: Caller,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<SearchKeyView>, ApiError> {
    if vault != who.vault_id {
        return Err(ApiError::not_found());
    }
    let holder = who
        .node_id
        .map_or_else(|| who.fingerprint.clone(), |node| node.to_string());
    let mut connection = app.db.connection().await?;
    Ok(axum::Json(
        store::search::key_view(&mut connection, &vault.to_string(), &holder).await?,
    ))
}

/// Creates the vault's search key (its signed commitment and the admin's own sealed copy) or
/// shares it with more holders: current members and approved nodes. A copy once stored is
/// never replaced.
#[utoipa::path(
    post, path = "/vaults/{vault}/search-key", tag = "search", security(("session" = [])), operation_id = "share_search_key",
    params(VaultPath),
    request_body = quorate_api::SearchKeyShares,
    responses(
        (status = 200, description = "Stored; the key as the caller now sees it", body = quorate_api::SearchKeyView),
        (status = 400, description = "A commitment or copy fails a check", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins share the search key", body = quorate_api::ErrorBody),
        (status = 409, description = "The vault has another search key already", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn share_search_key(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<SearchKeyShares>,
) -> Result<axum::Json<SearchKeyView>, ApiError> {
    who.admin_of(vault)?;
    let commitment = body
        .commitment
        .as_deref()
        .map(decode_statement)
        .transpose()?;
    let shared = release::Shared {
        generation: body.generation,
        grants: &body.grants,
    };
    let view =
        release::share_search_key(&app, who.member(), commitment.as_ref(), shared, now()).await?;
    Ok(axum::Json(view))
}

/// Replaces the vault's search key with the next generation (after a member left, who held
/// the old one): an admin's signed rotation, naming the current key and roster head, with the
/// new key sealed to every current member (and to approved nodes). Released minutes stay
/// searchable under the old key until members' devices re-index them.
#[utoipa::path(
    post, path = "/vaults/{vault}/search-key/rotations", tag = "search", security(("session" = [])), operation_id = "rotate_search_key",
    params(VaultPath),
    request_body = quorate_api::SearchKeyRotationUpload,
    responses(
        (status = 200, description = "Rotated; the key as the caller now sees it", body = quorate_api::SearchKeyView),
        (status = 400, description = "The rotation or a copy fails a check, or a current member has no copy", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins rotate the search key", body = quorate_api::ErrorBody),
        (status = 409, description = "The key was rotated meanwhile, or the rotation names another key or roster head", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn rotate_search_key(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<SearchKeyRotationUpload>,
) -> Result<axum::Json<SearchKeyView>, ApiError> {
    who.admin_of(vault)?;
    let rotation = decode_statement(&body.rotation)?;
    let view =
        release::rotate_search_key(&app, who.member(), &rotation, &body.grants, now()).await?;
    Ok(axum::Json(view))
}

/// Re-indexes a released transcript under the newest search key: postings a member's device
/// made from the released copy, replacing those under the older key.
#[utoipa::path(
    put, path = "/vaults/{vault}/released/{transcript}/index", tag = "search", security(("session" = [])), operation_id = "reindex_released",
    params(TranscriptPath),
    request_body = quorate_api::Reindex,
    responses(
        (status = 200, description = "Re-indexed; the released transcript as it now stands", body = quorate_api::ReleasedView),
        (status = 400, description = "Malformed postings, or they do not count the transcript's words", body = quorate_api::ErrorBody),
        (status = 404, description = "No such released transcript", body = quorate_api::ErrorBody),
        (status = 409, description = "Not the newest generation, or indexed under it already", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn reindex_released(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(TranscriptPath { vault, transcript }): ApiPath<TranscriptPath>,
    ApiJson(body): ApiJson<Reindex>,
) -> Result<axum::Json<ReleasedView>, ApiError> {
    who.member_of(vault)?;
    let transcript = transcript.to_string();
    let view = release::reindex(&app, who.member(), &transcript, &body, now()).await?;
    Ok(axum::Json(view))
}

/// Completes a release job: the released copy, the release key sealed to every current
/// member, and the blind-index postings, all described by the node's signed manifest. A
/// retry with the same manifest answers the same.
///
/// The manifest must be signed by this node and name this request, its transcript (and that
/// transcript's manifest digest) and exactly the vault's current members; the copy and the
/// postings must have the manifest's lengths and digests.
#[utoipa::path(
    post, path = "/jobs/{request}/release", tag = "jobs", security(("session" = [])), operation_id = "complete_release",
    params(JobPath),
    request_body = quorate_api::ReleaseCompletion,
    responses(
        (status = 200, description = "Released (or released already by an earlier try)", body = quorate_api::ReleasedView),
        (status = 400, description = "The manifest, copy, keys or postings fail a check", body = quorate_api::ErrorBody),
        (status = 403, description = "Only nodes complete jobs", body = quorate_api::ErrorBody),
        (status = 404, description = "No job of this node's with this ID", body = quorate_api::ErrorBody),
        (status = 409, description = "The lease was lost, the job is not a release, another copy completed it, or the transcript is released already", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn complete_release(
    State(app): State<App>,
    node: NodeCaller,
    ApiPath(JobPath { request }): ApiPath<JobPath>,
    ApiJson(body): ApiJson<ReleaseCompletion>,
) -> Result<axum::Json<ReleasedView>, ApiError> {
    let signed = decode_statement(&body.manifest)?;
    let request = request.to_string();
    let lease = node.lease(&request, &body.lease_token);
    Ok(axum::Json(
        release::complete(&app, lease, &signed, &body).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReleasedFilter {
    /// Only the released transcripts of this recording.
    recording: Option<String>,
}

/// The vault's released transcripts, newest first.
#[utoipa::path(
    get, path = "/vaults/{vault}/released", tag = "search", security(("session" = [])), operation_id = "list_released",
    params(VaultPath, ReleasedFilter),
    responses(
        (status = 200, description = "Released transcripts with their signed release manifests", body = Vec<quorate_api::ReleasedView>),
    )
)]
pub(crate) async fn list_released(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiQuery(filter): ApiQuery<ReleasedFilter>,
) -> Result<axum::Json<Vec<ReleasedView>>, ApiError> {
    who.member_of(vault)?;
    let recording = filter.recording.map(|id| id.to_ascii_lowercase());
    let mut connection = app.db.connection().await?;
    Ok(axum::Json(
        store::release::list(&mut connection, &vault.to_string(), recording.as_deref()).await?,
    ))
}

/// The caller's sealed copy of a released transcript's key.
#[utoipa::path(
    get, path = "/vaults/{vault}/released/{transcript}/grant", tag = "search", security(("session" = [])), operation_id = "get_release_grant",
    params(TranscriptPath),
    responses(
        (status = 200, description = "The release key sealed to the caller", body = quorate_api::SealedGrant),
    )
)]
pub(crate) async fn get_release_grant(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(TranscriptPath { vault, transcript }): ApiPath<TranscriptPath>,
) -> Result<axum::Json<SealedGrant>, ApiError> {
    who.member_of(vault)?;
    let (vault, transcript) = (vault.to_string(), transcript.to_string());
    let mut connection = app.db.connection().await?;
    let sealed = store::release::grant(&mut connection, &vault, &transcript, &who.fingerprint)
        .await?
        .ok_or_else(|| ApiError::Client {
            status: StatusCode::NOT_FOUND,
            code: "no_grant",
            message: "this released transcript's key is not sealed to you yet: a member who can read it shares it (`quorate share-keys`)".into(),
        })?;
    Ok(axum::Json(SealedGrant {
        holder: who.fingerprint,
        sealed: Base64::from(sealed),
    }))
}

/// Adds current members to a released copy: its key, sealed to each of them on the device of
/// a member who can open it. A member's grant is stored only for someone who has none; an
/// admin's replaces one.
#[utoipa::path(
    post, path = "/vaults/{vault}/released/{transcript}/grants", tag = "search", security(("session" = [])), operation_id = "add_release_grants",
    params(TranscriptPath),
    request_body = Vec<quorate_api::SealedGrant>,
    responses(
        (status = 200, description = "Stored; the released transcript as it now stands", body = quorate_api::ReleasedView),
        (status = 400, description = "A grant is not for a current member", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn add_release_grants(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(TranscriptPath { vault, transcript }): ApiPath<TranscriptPath>,
    ApiJson(body): ApiJson<Vec<SealedGrant>>,
) -> Result<axum::Json<ReleasedView>, ApiError> {
    who.member_of(vault)?;
    let transcript = transcript.to_string();
    let is_admin = who.role == quorate_api::MemberRole::Admin;
    let view = release::add_grants(&app, who.member(), is_admin, &transcript, &body, now()).await?;
    Ok(axum::Json(view))
}

/// The released copy (an age file to the release key), streamed.
#[utoipa::path(
    get, path = "/vaults/{vault}/released/{transcript}/ciphertext", tag = "search", security(("session" = [])), operation_id = "download_released",
    params(TranscriptPath),
    responses(
        (status = 200, description = "The released copy", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream"),
    )
)]
pub(crate) async fn download_released(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(TranscriptPath { vault, transcript }): ApiPath<TranscriptPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    who.member_of(vault)?;
    let (vault, transcript) = (vault.to_string(), transcript.to_string());
    let mut connection = app.db.connection().await?;
    let stored = store::release::object(&mut connection, &vault, &transcript)
        .await?
        .ok_or_else(ApiError::not_found)?;
    drop(connection);
    let ciphertext = store::recordings::Ciphertext {
        ciphertext_len: stored.ciphertext_len,
        manifest_digest: stored.manifest_digest,
    };
    stream_stored(&app, &stored.object, &ciphertext, &headers).await
}
