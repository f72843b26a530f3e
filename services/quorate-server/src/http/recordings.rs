//! The recording routes: created with the uploader's signed manifest and the members' sealed
//! shares, uploaded through [`crate::uploads`], listed once complete, downloaded as ciphertext
//! (with HTTP ranges), and deleted by an admin together with every share (crypto-shredding).
//! Each extracts, checks who may, and calls one operation of [`crate::ops::recordings`].

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use quorate_api::{NewRecording, RecordingView, SealedShare};

use crate::http::paths::{ApiPath, RecordingPath, VaultPath};
use crate::{
    App,
    error::{ApiError, ApiJson},
    http::auth::{Authenticated, Caller, Uploader},
    http::decode_statement,
    now,
    ops::recordings::{self, Created, Download},
    store,
};

// For the transcript routes in `jobs`, until they move to the operations.

/// Creates a recording from its signed manifest and sealed shares, and opens its upload; for
/// the caller's live upload with the manifest's ID, completes it instead (201 with the
/// upload's offset at its length).
///
/// The server checks the manifest's signature (by the caller, a current member), that it was
/// made against the current roster, that every member it names is on the roster and gets
/// exactly one sealed share, the vault's policy, and the size limit. Sending the same
/// manifest again answers the upload's state, so a client can resume after losing it.
#[utoipa::path(
    post, path = "/vaults/{vault}/recordings", tag = "recordings", security(("session" = [])), operation_id = "create_recording",
    params(VaultPath),
    request_body = quorate_api::NewRecording,
    responses(
        (status = 201, description = "Created; upload the ciphertext to `upload_url` (tus 1.0)", body = quorate_api::UploadState),
        (status = 200, description = "This manifest was already created; the upload's state", body = quorate_api::UploadState),
        (status = 400, description = "The manifest or the shares fail a check", body = quorate_api::ErrorBody),
        (status = 403, description = "Only members and recorders upload", body = quorate_api::ErrorBody),
        (status = 409, description = "The roster or policy changed, there is no policy yet, or the ID is taken; for a live upload, the server stores another length than the manifest names (`offset_mismatch`), or a PATCH is in progress", body = quorate_api::ErrorBody),
        (status = 413, description = "Larger than the server accepts", body = quorate_api::ErrorBody),
        (status = 422, description = "A live upload's stored bytes differ from the manifest's SHA-256; the recording was discarded", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn create_recording(
    State(app): State<App>,
    Uploader(who): Uploader,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<NewRecording>,
) -> Result<Response, ApiError> {
    who.member_of(vault)?;
    let signed = decode_statement(&body.manifest)?;
    let created = recordings::create(&app, who.member(), &signed, &body.shares, now()).await?;
    Ok(created_response(created))
}

/// 201 with the upload's state and its URL as `Location`, or 200 for one created before.
pub(crate) fn created_response(created: Created) -> Response {
    match created {
        Created::Again(state) => (StatusCode::OK, axum::Json(state)).into_response(),
        Created::New(state) => {
            let location = HeaderValue::from_str(&state.upload_url).ok();
            let mut response = (StatusCode::CREATED, axum::Json(state)).into_response();
            if let Some(location) = location {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}

/// The vault's complete recordings, newest first, with their signed manifests.
#[utoipa::path(
    get, path = "/vaults/{vault}/recordings", tag = "recordings", security(("session" = [])), operation_id = "list_recordings",
    params(VaultPath),
    responses(
        (status = 200, description = "Complete recordings, newest first", body = Vec<quorate_api::RecordingView>),
    )
)]
pub(crate) async fn list_recordings(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<Vec<RecordingView>>, ApiError> {
    who.member_of(vault)?;
    let mut connection = app.db.connection().await?;
    Ok(axum::Json(
        store::recordings::list_complete(&mut connection, &vault.to_string()).await?,
    ))
}

/// One recording: its signed manifest and status (the uploader also sees it while uploading).
#[utoipa::path(
    get, path = "/vaults/{vault}/recordings/{recording}", tag = "recordings", security(("session" = [])), operation_id = "get_recording",
    params(RecordingPath),
    responses(
        (status = 200, description = "The recording", body = quorate_api::RecordingView),
    )
)]
pub(crate) async fn get_recording(
    State(app): State<App>,
    who: Caller,
    ApiPath(RecordingPath { vault, recording }): ApiPath<RecordingPath>,
) -> Result<axum::Json<RecordingView>, ApiError> {
    let recording = recording.to_string();
    recordings::may_read(&app, &who, vault, &recording).await?;
    let vault = vault.to_string();
    let mut connection = app.db.connection().await?;
    store::recordings::visible(&mut connection, &vault, &recording, &who.fingerprint)
        .await?
        .map(axum::Json)
        .ok_or_else(ApiError::not_found)
}

/// The caller's own sealed share of a recording's key (404 for anyone the manifest does not
/// name).
#[utoipa::path(
    get, path = "/vaults/{vault}/recordings/{recording}/share", tag = "recordings", security(("session" = [])), operation_id = "get_recording_share",
    params(RecordingPath),
    responses(
        (status = 200, description = "The caller's sealed share", body = quorate_api::SealedShare),
    )
)]
pub(crate) async fn get_share(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(RecordingPath { vault, recording }): ApiPath<RecordingPath>,
) -> Result<axum::Json<SealedShare>, ApiError> {
    who.member_of(vault)?;
    let (vault, recording) = (vault.to_string(), recording.to_string());
    let mut connection = app.db.connection().await?;
    store::recordings::complete_share(&mut connection, &vault, &recording, &who.fingerprint)
        .await?
        .map(axum::Json)
        .ok_or_else(ApiError::not_found)
}

/// The recording's ciphertext, streamed; one HTTP range (`Range: bytes=START-END`) may be
/// asked for.
#[utoipa::path(
    get, path = "/vaults/{vault}/recordings/{recording}/ciphertext", tag = "recordings", security(("session" = [])), operation_id = "download_recording",
    params(RecordingPath),
    responses(
        (status = 200, description = "The whole age ciphertext", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream"),
        (status = 416, description = "The range is outside the ciphertext", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn download(
    State(app): State<App>,
    who: Caller,
    ApiPath(RecordingPath { vault, recording }): ApiPath<RecordingPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let recording = recording.to_string();
    recordings::may_read(&app, &who, vault, &recording).await?;
    let vault = vault.to_string();
    let range = headers.get(header::RANGE);
    let ciphertext = recordings::download(&app, &vault, &recording, range).await?;
    Ok(ciphertext.into_response())
}

/// Deletes a recording (admins) and everything grown from it, rows and objects: its
/// ciphertext, every sealed share (without k shares the key is gone: crypto-shredding), its
/// upload, its transcripts with their shares, their released copies with the sealed release
/// keys and the index, and every request on any of them with its votes and job.
#[utoipa::path(
    delete, path = "/vaults/{vault}/recordings/{recording}", tag = "recordings", security(("session" = [])), operation_id = "delete_recording",
    params(RecordingPath),
    responses(
        (status = 204, description = "Deleted, with an audit entry"),
        (status = 403, description = "Only admins delete recordings", body = quorate_api::ErrorBody),
        (status = 409, description = "A legal hold covers the recording (`held`): nothing it covers is deleted until a quorum lifts it", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn delete_recording(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(RecordingPath { vault, recording }): ApiPath<RecordingPath>,
) -> Result<StatusCode, ApiError> {
    who.admin_of(vault)?;
    recordings::delete(&app, who.member(), &recording, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Streams object `name`, whose ciphertext `ciphertext` describes, or the one range
/// `headers` ask for (recordings, sealed transcripts and released copies alike).
pub(crate) async fn stream_stored(
    app: &App,
    name: &str,
    ciphertext: &store::recordings::Ciphertext,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let range = headers.get(header::RANGE);
    let download = recordings::open_download(&app.blobs, name, ciphertext, range).await?;
    Ok(download.into_response())
}

/// The ciphertext's bytes with its length, type, ETag and range.
impl IntoResponse for Download {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from_stream(self.stream));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Ok(value) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, value);
        }
        let length = match &self.range {
            Some(range) => {
                let content_range =
                    format!("bytes {}-{}/{}", range.start, range.end - 1, self.size);
                if let Ok(value) = HeaderValue::from_str(&content_range) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                range.end - range.start
            }
            None => self.size,
        };
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        response
    }
}
