//! The upload routes: resumable upload of a recording's ciphertext, in the manner of tus 1.0
//! (core, checksum with `sha256`, expiration and termination). The uploads themselves are
//! [`crate::ops::uploads`]'s.
//!
//! `HEAD` answers the stored offset; `PATCH` with `Upload-Offset` and
//! `application/offset+octet-stream` appends, and a mismatched offset is 409 with nothing
//! changed; `DELETE` abandons the upload. A live upload (opened here, before its length is
//! known) answers `Upload-Defer-Length: 1` until its manifest sets the length.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};

use crate::http::paths::{ApiPath, UploadPath, VaultPath};
use crate::{
    App,
    auth::Uploader,
    error::{ApiError, ApiJson},
    http::recordings::created_response,
    now,
    ops::{
        recordings,
        uploads::{self, Patch},
    },
};

static UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
static UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
static UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
static UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
static UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
static TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");

/// An empty answer with the tus headers of an upload at `offset` of `length` (deferred when
/// `None`).
fn tus_response(
    status: StatusCode,
    offset: u64,
    length: Option<u64>,
    expires_at: Option<i64>,
) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(TUS_RESUMABLE.clone(), HeaderValue::from_static("1.0.0"));
    headers.insert(UPLOAD_OFFSET.clone(), HeaderValue::from(offset));
    match length {
        Some(length) => headers.insert(UPLOAD_LENGTH.clone(), HeaderValue::from(length)),
        None => headers.insert(UPLOAD_DEFER_LENGTH.clone(), HeaderValue::from_static("1")),
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(expires) = expires_at.and_then(http_date) {
        headers.insert(UPLOAD_EXPIRES.clone(), expires);
    }
    response
}

/// An RFC 9110 date for `Upload-Expires`.
fn http_date(unix: i64) -> Option<HeaderValue> {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).ok()?);
    HeaderValue::from_str(&httpdate::fmt_http_date(time)).ok()
}

/// How far an upload is (tus `HEAD`): `Upload-Offset` and `Upload-Length`.
#[utoipa::path(
    head, path = "/uploads/{recording}", tag = "recordings", security(("session" = [])), operation_id = "upload_offset",
    params(UploadPath),
    responses(
        (status = 200, description = "`Upload-Offset` is the number of bytes stored; `Upload-Length` the whole, or `Upload-Defer-Length: 1` for a live upload without its manifest"),
        (status = 404, description = "No open upload of the caller's with this ID", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn head_upload(
    State(app): State<App>,
    Uploader(who): Uploader,
    ApiPath(UploadPath { recording }): ApiPath<UploadPath>,
) -> Result<Response, ApiError> {
    let upload = uploads::find(&app, who.member(), &recording).await?;
    Ok(tus_response(
        StatusCode::OK,
        upload.offset,
        upload.length,
        Some(upload.expires_at),
    ))
}

/// Reads the tus headers of a PATCH: the offset and an optional `sha256` checksum.
fn patch_headers(headers: &HeaderMap) -> Result<Patch, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if content_type != "application/offset+octet-stream" {
        return Err(ApiError::Client {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "not_offset_octet_stream",
            message: "send the bytes as Content-Type: application/offset+octet-stream".into(),
        });
    }
    let offset = headers
        .get(&UPLOAD_OFFSET)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_offset",
                "send Upload-Offset: the number of bytes the server has (HEAD tells it)",
            )
        })?;
    let checksum = headers
        .get(&UPLOAD_CHECKSUM)
        .map(parse_checksum)
        .transpose()?;
    Ok(Patch { offset, checksum })
}

/// Parses `Upload-Checksum: sha256 BASE64`, the one algorithm supported.
fn parse_checksum(value: &HeaderValue) -> Result<[u8; 32], ApiError> {
    let text = value.to_str().unwrap_or("");
    let (algorithm, digest) = text.split_once(' ').unwrap_or((text, ""));
    if algorithm != "sha256" {
        return Err(ApiError::bad_request(
            "unsupported_checksum",
            "Upload-Checksum must be \"sha256 BASE64\"",
        ));
    }
    STANDARD
        .decode(digest.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "unsupported_checksum",
                "the Upload-Checksum digest must be 32 bytes of base64",
            )
        })
}

/// Appends bytes at `Upload-Offset` (tus `PATCH`). With `Upload-Checksum: sha256 …` the
/// chunk is kept only if it matches. The last byte completes the recording, once its SHA-256
/// equals the manifest's.
#[utoipa::path(
    patch, path = "/uploads/{recording}", tag = "recordings", security(("session" = [])), operation_id = "upload_chunk",
    params(UploadPath),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Stored; `Upload-Offset` is the new offset"),
        (status = 400, description = "Missing or malformed `Upload-Offset` or `Upload-Checksum`", body = quorate_api::ErrorBody),
        (status = 404, description = "No open upload of the caller's with this ID", body = quorate_api::ErrorBody),
        (status = 409, description = "`Upload-Offset` is not the stored offset, or another PATCH is in progress; nothing changed", body = quorate_api::ErrorBody),
        (status = 413, description = "More bytes than the manifest's length (a live upload: than the server accepts); nothing of this chunk was kept", body = quorate_api::ErrorBody),
        (status = 415, description = "Not `application/offset+octet-stream`", body = quorate_api::ErrorBody),
        (status = 422, description = "The complete ciphertext's SHA-256 differs from the manifest's; the recording was discarded", body = quorate_api::ErrorBody),
        (status = 460, description = "The chunk does not match `Upload-Checksum`; nothing of it was kept", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn patch_upload(
    State(app): State<App>,
    Uploader(who): Uploader,
    ApiPath(UploadPath { recording }): ApiPath<UploadPath>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let patch = patch_headers(&headers)?;
    let body = body.into_data_stream();
    let appended = uploads::append(&app, who.member(), &recording, patch, body, now()).await?;
    Ok(tus_response(
        StatusCode::NO_CONTENT,
        appended.offset,
        appended.length,
        appended.expires_at,
    ))
}

/// Abandons an upload (tus termination): the recording and its shares are removed.
#[utoipa::path(
    delete, path = "/uploads/{recording}", tag = "recordings", security(("session" = [])), operation_id = "abandon_upload",
    params(UploadPath),
    responses(
        (status = 204, description = "Abandoned; nothing of it is kept"),
        (status = 404, description = "No open upload of the caller's with this ID", body = quorate_api::ErrorBody),
        (status = 409, description = "A PATCH is in progress", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn abandon_upload(
    State(app): State<App>,
    Uploader(who): Uploader,
    ApiPath(UploadPath { recording }): ApiPath<UploadPath>,
) -> Result<StatusCode, ApiError> {
    uploads::abandon(&app, who.member(), &recording, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Opens a live upload: the ciphertext of a recording being made (the browser's Record page,
/// a recorder streaming a meeting) is uploaded while it grows, its length deferred (tus
/// `Upload-Defer-Length`). Sending the signed manifest and the sealed shares to
/// `POST /vaults/{vault}/recordings` when recording stops completes it, after the same checks
/// as a new recording's and a comparison of the stored bytes with the manifest.
#[utoipa::path(
    post, path = "/vaults/{vault}/live-uploads", tag = "recordings", security(("session" = [])), operation_id = "open_live_upload",
    params(VaultPath),
    request_body = quorate_api::NewLiveUpload,
    responses(
        (status = 201, description = "Open at 0, its length deferred; upload to `upload_url` (tus 1.0)", body = quorate_api::UploadState),
        (status = 200, description = "This live upload was open already; its state", body = quorate_api::UploadState),
        (status = 400, description = "The recording ID is not a UUID", body = quorate_api::ErrorBody),
        (status = 403, description = "Only members and recorders upload", body = quorate_api::ErrorBody),
        (status = 409, description = "There is no policy yet, or the ID is taken", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn open_live_upload(
    State(app): State<App>,
    Uploader(who): Uploader,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<quorate_api::NewLiveUpload>,
) -> Result<Response, ApiError> {
    who.member_of(vault)?;
    let recording = body.recording_id.parse().map_err(|_| {
        ApiError::bad_request(
            "bad_recording_id",
            "recording_id must be a UUID, the one the manifest will name",
        )
    })?;
    let opened = recordings::open_live(&app, who.member(), recording, now()).await?;
    Ok(created_response(opened))
}
