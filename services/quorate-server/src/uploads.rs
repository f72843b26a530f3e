//! Resumable upload of a recording's ciphertext, in the manner of tus 1.0 (core, checksum
//! with `sha256`, expiration and termination).
//!
//! `HEAD` answers the stored offset; `PATCH` with `Upload-Offset` and
//! `application/offset+octet-stream` appends, and a mismatched offset is 409 with nothing
//! changed. A PATCH holds the upload with a renewed lock so two cannot interleave, even on two
//! servers. On a local folder the bytes are appended to a part file that is renamed into place
//! at the end; on S3 they become multipart parts of 8 MiB whose IDs are kept in the database,
//! with the remainder of a PATCH shorter than a part kept as a small tail object. Memory
//! stays flat: at most one part per upload in flight.
//!
//! When the last byte is stored the whole ciphertext's SHA-256 is compared with the
//! manifest's; only then is the recording complete and listed. A mismatch discards it.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::{MultipartId, PutPayload, multipart::MultipartStore, path::Path as ObjectPath};
use quorate_api::UploadState;
use quorate_crypto::statement::{RecordingManifest, SignedStatement};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::io::AsyncWriteExt;

use crate::paths::UploadPath;
use crate::{
    App,
    auth::Authenticated,
    error::ApiError,
    now,
    recordings::{object_name, parse_recording},
};

/// Size of a multipart part on S3 (every part but the last must be at least 5 MiB).
pub const PART_SIZE: usize = 8 << 20;
/// How long a PATCH holds its upload before renewing.
const LOCK_SECONDS: i64 = 60;
/// How often a long PATCH renews its lock.
const RENEW_EVERY: Duration = Duration::from_secs(20);

static UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
static UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
static UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
static UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
static TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");

/// The upload URL of a recording.
pub(crate) fn upload_url(recording: &str) -> String {
    format!("/api/v1/uploads/{recording}")
}

/// Running SHA-256 states of uploads in progress on this server, so that the ciphertext is
/// hashed while it streams. When a state is missing (another server took the previous chunk,
/// or this one restarted) the stored bytes are read back once at the end instead.
#[derive(Debug, Default)]
pub struct Hashers(Mutex<HashMap<String, (u64, Sha256)>>);

impl Hashers {
    /// The running hash of the bytes before `offset`: a fresh one at 0, the kept one if it
    /// stops exactly there, else none.
    fn take(&self, recording: &str, offset: u64) -> Option<Sha256> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match map.remove(recording) {
            Some((at, hasher)) if at == offset => Some(hasher),
            _ if offset == 0 => Some(Sha256::new()),
            _ => None,
        }
    }

    fn put(&self, recording: &str, offset: u64, hasher: Sha256) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.insert(recording.to_owned(), (offset, hasher));
    }

    fn forget(&self, recording: &str) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(recording);
    }
}

/// Where an upload stands, for a client that lost track.
pub(crate) async fn state(app: &App, recording: &str) -> Result<UploadState, ApiError> {
    let row = sqlx::query(
        "SELECT r.ciphertext_len, u.upload_offset, u.expires_at FROM recordings r
         LEFT JOIN uploads u ON u.recording_id = r.id WHERE r.id = $1",
    )
    .bind(recording)
    .fetch_one(app.db.pool())
    .await?;
    let length = row.try_get::<i64, _>("ciphertext_len")? as u64;
    Ok(UploadState {
        recording_id: recording.to_owned(),
        upload_url: upload_url(recording),
        upload_length: length,
        upload_offset: row
            .try_get::<Option<i64>, _>("upload_offset")?
            .map_or(length, |offset| offset as u64),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.unwrap_or(0),
    })
}

fn tus_headers(response: &mut Response, offset: u64, length: u64, expires_at: Option<i64>) {
    let headers = response.headers_mut();
    headers.insert(TUS_RESUMABLE.clone(), HeaderValue::from_static("1.0.0"));
    headers.insert(UPLOAD_OFFSET.clone(), HeaderValue::from(offset));
    headers.insert(UPLOAD_LENGTH.clone(), HeaderValue::from(length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(expires) = expires_at.and_then(http_date) {
        headers.insert(UPLOAD_EXPIRES.clone(), expires);
    }
}

/// An RFC 9110 date for `Upload-Expires`.
fn http_date(unix: i64) -> Option<HeaderValue> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let text = format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    HeaderValue::from_str(&text).ok()
}

/// The uploader's open upload, or 404 (for anyone else too).
struct OpenUpload {
    vault: String,
    offset: u64,
    length: u64,
    expires_at: i64,
    locked_until: i64,
}

async fn open_upload(
    app: &App,
    who: &Authenticated,
    recording: &str,
) -> Result<OpenUpload, ApiError> {
    let row = sqlx::query(
        "SELECT r.vault_id, u.upload_offset, u.upload_length, u.expires_at, u.locked_until
         FROM uploads u JOIN recordings r ON r.id = u.recording_id
         WHERE u.recording_id = $1 AND r.vault_id = $2 AND r.uploader = $3",
    )
    .bind(recording)
    .bind(who.vault_id.to_string())
    .bind(&who.fingerprint)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(OpenUpload {
        vault: row.try_get("vault_id")?,
        offset: row.try_get::<i64, _>("upload_offset")? as u64,
        length: row.try_get::<i64, _>("upload_length")? as u64,
        expires_at: row.try_get("expires_at")?,
        locked_until: row.try_get("locked_until")?,
    })
}

/// How far an upload is (tus `HEAD`): `Upload-Offset` and `Upload-Length`.
#[utoipa::path(
    head, path = "/uploads/{recording}", tag = "recordings", security(("session" = [])), operation_id = "upload_offset",
    params(UploadPath),
    responses(
        (status = 200, description = "`Upload-Offset` is the number of bytes stored"),
        (status = 404, description = "No open upload of the caller's with this ID", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn head_upload(
    State(app): State<App>,
    who: Authenticated,
    Path(UploadPath { recording }): Path<UploadPath>,
) -> Result<Response, ApiError> {
    let recording = parse_recording(&recording)?.to_string();
    let upload = open_upload(&app, &who, &recording).await?;
    let mut response = StatusCode::OK.into_response();
    tus_headers(
        &mut response,
        upload.offset,
        upload.length,
        Some(upload.expires_at),
    );
    Ok(response)
}

fn patch_refusal(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Client {
        status,
        code,
        message: message.into(),
    }
}

/// Reads the tus headers of a PATCH: the offset and an optional `sha256` checksum.
fn patch_headers(headers: &HeaderMap) -> Result<(u64, Option<[u8; 32]>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if content_type != "application/offset+octet-stream" {
        return Err(patch_refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_offset_octet_stream",
            "send the bytes as Content-Type: application/offset+octet-stream",
        ));
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
    let checksum = match headers.get(&UPLOAD_CHECKSUM) {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            let (algorithm, digest) = text.split_once(' ').unwrap_or((text, ""));
            if algorithm != "sha256" {
                return Err(ApiError::bad_request(
                    "unsupported_checksum",
                    "Upload-Checksum must be \"sha256 BASE64\"",
                ));
            }
            let bytes = STANDARD.decode(digest.trim()).ok();
            Some(
                bytes
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "unsupported_checksum",
                            "the Upload-Checksum digest must be 32 bytes of base64",
                        )
                    })?,
            )
        }
    };
    Ok((offset, checksum))
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
        (status = 413, description = "More bytes than the manifest's length; nothing of this chunk was kept", body = quorate_api::ErrorBody),
        (status = 415, description = "Not `application/offset+octet-stream`", body = quorate_api::ErrorBody),
        (status = 422, description = "The complete ciphertext's SHA-256 differs from the manifest's; the recording was discarded", body = quorate_api::ErrorBody),
        (status = 460, description = "The chunk does not match `Upload-Checksum`; nothing of it was kept", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn patch_upload(
    State(app): State<App>,
    who: Authenticated,
    Path(UploadPath { recording }): Path<UploadPath>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let recording = parse_recording(&recording)?.to_string();
    let (offset, checksum) = patch_headers(&headers)?;
    let upload = open_upload(&app, &who, &recording).await?;
    let now = now();
    let token = uuid::Uuid::new_v4().to_string();
    let locked = sqlx::query(
        "UPDATE uploads SET lock_token = $1, locked_until = $2
         WHERE recording_id = $3 AND upload_offset = $4 AND locked_until < $5",
    )
    .bind(&token)
    .bind(now + LOCK_SECONDS)
    .bind(&recording)
    .bind(offset as i64)
    .bind(now)
    .execute(app.db.pool())
    .await?
    .rows_affected();
    if locked != 1 {
        let error = if upload.offset != offset {
            ApiError::conflict(
                "offset_mismatch",
                format!(
                    "the server has {} bytes, not {offset}: resume from Upload-Offset {}",
                    upload.offset, upload.offset
                ),
            )
        } else if upload.locked_until >= now {
            ApiError::conflict(
                "upload_busy",
                "another PATCH of this upload is in progress: wait for it, then HEAD and resume",
            )
        } else {
            ApiError::conflict(
                "offset_mismatch",
                "the upload moved on meanwhile: HEAD it and resume",
            )
        };
        return Err(error);
    }
    let chunk = Chunk {
        app: app.clone(),
        vault: upload.vault,
        recording,
        token,
        start: offset,
        length: upload.length,
        checksum,
    };
    // Run to the end even if the client goes away, so what arrived is recorded and the lock
    // released at once rather than when it lapses.
    tokio::spawn(chunk.receive(body))
        .await
        .map_err(|error| ApiError::Internal(Box::new(error)))?
}

/// One PATCH in progress, holding the upload's lock.
struct Chunk {
    app: App,
    vault: String,
    recording: String,
    token: String,
    start: u64,
    length: u64,
    checksum: Option<[u8; 32]>,
}

/// Where a chunk's bytes go.
enum Sink {
    /// Appending to the part file (a buffered writer over it).
    Local {
        file: tokio::io::BufWriter<tokio::fs::File>,
        path: std::path::PathBuf,
    },
    /// Multipart parts on S3: `buffer` holds the tail and what has not filled a part yet.
    S3 {
        multipart: MultipartId,
        first_part: usize,
        new_parts: Vec<String>,
        buffer: BytesMut,
    },
}

impl Chunk {
    async fn receive(self, body: Body) -> Result<Response, ApiError> {
        let outcome = self.store(body).await;
        if outcome.is_err() {
            // Nothing changed: free the upload for the next PATCH.
            let _ = sqlx::query(
                "UPDATE uploads SET lock_token = NULL, locked_until = 0 WHERE recording_id = $1 AND lock_token = $2",
            )
            .bind(&self.recording)
            .bind(&self.token)
            .execute(self.app.db.pool())
            .await;
        }
        outcome
    }

    async fn store(&self, body: Body) -> Result<Response, ApiError> {
        let internal = |error: Box<dyn std::error::Error + Send + Sync>| ApiError::Internal(error);
        let mut sink = self.open_sink().await?;
        let mut hasher = self.app.hashers.take(&self.recording, self.start);
        let mut chunk_hasher = self.checksum.map(|_| Sha256::new());
        let remaining = self.length - self.start;
        let (mut received, mut interrupted, mut too_long) = (0u64, false, false);
        let mut renewed = Instant::now();
        let mut stream = body.into_data_stream();
        while let Some(next) = stream.next().await {
            let Ok(bytes) = next else {
                interrupted = true;
                break;
            };
            if received + bytes.len() as u64 > remaining {
                too_long = true;
                break;
            }
            self.write(&mut sink, bytes.clone()).await?;
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&bytes);
            }
            if let Some(chunk_hasher) = chunk_hasher.as_mut() {
                chunk_hasher.update(&bytes);
            }
            received += bytes.len() as u64;
            if renewed.elapsed() > RENEW_EVERY {
                self.renew().await?;
                renewed = Instant::now();
            }
        }
        if too_long {
            self.discard(sink).await;
            return Err(patch_refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "beyond_length",
                format!(
                    "the upload is {} bytes long; this chunk went past it and was not kept",
                    self.length
                ),
            ));
        }
        if let (Some(expected), Some(chunk_hasher)) = (self.checksum, chunk_hasher)
            && (interrupted || <[u8; 32]>::from(chunk_hasher.finalize()) != expected)
        {
            self.discard(sink).await;
            return Err(patch_refusal(
                StatusCode::from_u16(460).map_err(|error| internal(Box::new(error)))?,
                "checksum_mismatch",
                "the chunk does not match its Upload-Checksum (or arrived incomplete); nothing of it was kept: send it again",
            ));
        }
        let offset = self.start + received;
        let complete = offset == self.length;
        let tail_len = self.persist(&mut sink, complete).await?;
        let expires_at = now() + self.app.config.upload_ttl;
        let mut transaction = self.app.db.begin().await?;
        if let Sink::S3 {
            first_part,
            new_parts,
            ..
        } = &sink
        {
            for (index, part) in new_parts.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO upload_parts (recording_id, part_number, part_id) VALUES ($1, $2, $3)",
                )
                .bind(&self.recording)
                .bind((first_part + index) as i32)
                .bind(part)
                .execute(&mut *transaction)
                .await?;
            }
        }
        let updated = sqlx::query(
            "UPDATE uploads SET upload_offset = $1, tail_len = $2, expires_at = $3, lock_token = NULL, locked_until = 0
             WHERE recording_id = $4 AND lock_token = $5",
        )
        .bind(offset as i64)
        .bind(tail_len as i64)
        .bind(expires_at)
        .bind(&self.recording)
        .bind(&self.token)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(ApiError::conflict(
                "upload_busy",
                "this PATCH took too long and lost its hold on the upload: HEAD it and resume",
            ));
        }
        transaction.commit().await?;
        if let Sink::S3 {
            first_part,
            new_parts,
            ..
        } = &sink
            && !new_parts.is_empty()
        {
            // The old tail went into a part.
            let _ = self.app.blobs.delete(&self.tail_name(*first_part)).await;
        }
        if let Some(hasher) = hasher {
            self.app.hashers.put(&self.recording, offset, hasher);
        }
        if complete {
            self.complete(sink).await?;
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        tus_headers(
            &mut response,
            offset,
            self.length,
            (!complete).then_some(expires_at),
        );
        Ok(response)
    }

    fn part_file(&self) -> Option<std::path::PathBuf> {
        self.app
            .blobs
            .local_file(&format!("uploads/{}.part", self.recording))
    }

    async fn open_sink(&self) -> Result<Sink, ApiError> {
        let internal = |error: Box<dyn std::error::Error + Send + Sync>| ApiError::Internal(error);
        if let Some(path) = self.part_file() {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|error| internal(Box::new(error)))?;
            }
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .await
                .map_err(|error| internal(Box::new(error)))?;
            let on_disk = file
                .metadata()
                .await
                .map_err(|error| internal(Box::new(error)))?
                .len();
            if on_disk < self.start {
                return Err(internal(
                    format!(
                        "the part file of {} is shorter than its recorded offset",
                        self.recording
                    )
                    .into(),
                ));
            }
            // Bytes past the offset are from a PATCH that never recorded them: drop them.
            file.set_len(self.start)
                .await
                .map_err(|error| internal(Box::new(error)))?;
            let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
            tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(self.start))
                .await
                .map_err(|error| internal(Box::new(error)))?;
            return Ok(Sink::Local { file, path });
        }
        let store = self.s3()?;
        let row = sqlx::query(
            "SELECT multipart_id, tail_len, (SELECT COUNT(*) FROM upload_parts p WHERE p.recording_id = u.recording_id) AS parts
             FROM uploads u WHERE recording_id = $1",
        )
        .bind(&self.recording)
        .fetch_one(self.app.db.pool())
        .await?;
        let multipart = match row.try_get::<Option<String>, _>("multipart_id")? {
            Some(id) => id,
            None => {
                let id = store
                    .create_multipart(&self.object())
                    .await
                    .map_err(|error| internal(Box::new(error)))?;
                sqlx::query("UPDATE uploads SET multipart_id = $1 WHERE recording_id = $2")
                    .bind(&id)
                    .bind(&self.recording)
                    .execute(self.app.db.pool())
                    .await?;
                id
            }
        };
        let first_part = row.try_get::<i64, _>("parts")? as usize;
        let tail_len = row.try_get::<i64, _>("tail_len")? as usize;
        let mut buffer = BytesMut::with_capacity(PART_SIZE);
        if tail_len > 0 {
            // A PATCH that failed after writing a longer tail for the same part left the
            // recorded bytes as its prefix: read only those.
            let tail = self
                .app
                .blobs
                .get(&self.tail_name(first_part))
                .await
                .map_err(|error| internal(Box::new(error)))?;
            let recorded = tail.get(..tail_len).ok_or_else(|| {
                internal(format!("the tail of {} is shorter than recorded", self.recording).into())
            })?;
            buffer.extend_from_slice(recorded);
        }
        Ok(Sink::S3 {
            multipart,
            first_part,
            new_parts: Vec::new(),
            buffer,
        })
    }

    fn s3(&self) -> Result<&object_store::aws::AmazonS3, ApiError> {
        self.app.blobs.multipart().ok_or_else(|| {
            ApiError::Internal(
                "the object store offers neither a folder nor multipart uploads".into(),
            )
        })
    }

    fn object(&self) -> ObjectPath {
        ObjectPath::from(object_name(&self.vault, &self.recording))
    }

    fn tail_name(&self, part: usize) -> String {
        tail_name(&self.recording, part)
    }

    async fn write(&self, sink: &mut Sink, bytes: Bytes) -> Result<(), ApiError> {
        let internal = |error: Box<dyn std::error::Error + Send + Sync>| ApiError::Internal(error);
        match sink {
            Sink::Local { file, .. } => file
                .write_all(&bytes)
                .await
                .map_err(|error| internal(Box::new(error))),
            Sink::S3 {
                multipart,
                first_part,
                new_parts,
                buffer,
            } => {
                buffer.extend_from_slice(&bytes);
                while buffer.len() >= PART_SIZE {
                    let part = buffer.split_to(PART_SIZE).freeze();
                    let id = self
                        .s3()?
                        .put_part(
                            &self.object(),
                            multipart,
                            *first_part + new_parts.len(),
                            PutPayload::from(part),
                        )
                        .await
                        .map_err(|error| internal(Box::new(error)))?;
                    new_parts.push(id.content_id);
                }
                Ok(())
            }
        }
    }

    /// Makes what arrived durable; returns the tail length to record (S3).
    async fn persist(&self, sink: &mut Sink, complete: bool) -> Result<u64, ApiError> {
        let internal = |error: Box<dyn std::error::Error + Send + Sync>| ApiError::Internal(error);
        match sink {
            Sink::Local { file, .. } => {
                file.flush()
                    .await
                    .map_err(|error| internal(Box::new(error)))?;
                file.get_ref()
                    .sync_data()
                    .await
                    .map_err(|error| internal(Box::new(error)))?;
                Ok(0)
            }
            Sink::S3 {
                multipart,
                first_part,
                new_parts,
                buffer,
            } => {
                if complete {
                    if !buffer.is_empty() {
                        let id = self
                            .s3()?
                            .put_part(
                                &self.object(),
                                multipart,
                                *first_part + new_parts.len(),
                                PutPayload::from(buffer.split().freeze()),
                            )
                            .await
                            .map_err(|error| internal(Box::new(error)))?;
                        new_parts.push(id.content_id);
                    }
                    return Ok(0);
                }
                let tail = buffer.clone().freeze();
                let length = tail.len() as u64;
                if length > 0 {
                    self.app
                        .blobs
                        .put(&self.tail_name(*first_part + new_parts.len()), tail)
                        .await
                        .map_err(|error| internal(Box::new(error)))?;
                }
                Ok(length)
            }
        }
    }

    /// Drops what this PATCH wrote: the part file back to its start; on S3 the parts it put
    /// are not recorded and will be overwritten.
    async fn discard(&self, sink: Sink) {
        if let Sink::Local { file, path } = sink {
            drop(file);
            let truncated = async {
                tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .await?
                    .set_len(self.start)
                    .await
            };
            if let Err(error) = truncated.await {
                tracing::warn!(%error, recording = %self.recording, "could not truncate a refused chunk; the next PATCH will");
            }
        }
        self.app.hashers.forget(&self.recording);
    }

    async fn renew(&self) -> Result<(), ApiError> {
        sqlx::query(
            "UPDATE uploads SET locked_until = $1 WHERE recording_id = $2 AND lock_token = $3",
        )
        .bind(now() + LOCK_SECONDS)
        .bind(&self.recording)
        .bind(&self.token)
        .execute(self.app.db.pool())
        .await?;
        Ok(())
    }

    /// Puts the whole ciphertext in place, checks it against the manifest, and makes the
    /// recording complete, or discards it.
    async fn complete(&self, sink: Sink) -> Result<(), ApiError> {
        let internal = |error: Box<dyn std::error::Error + Send + Sync>| ApiError::Internal(error);
        let name = object_name(&self.vault, &self.recording);
        match sink {
            Sink::Local { file, path } => {
                drop(file);
                let target = self
                    .app
                    .blobs
                    .local_file(&name)
                    .ok_or_else(|| internal("no local folder".into()))?;
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(|error| internal(Box::new(error)))?;
                }
                tokio::fs::rename(&path, &target)
                    .await
                    .map_err(|error| internal(Box::new(error)))?;
            }
            Sink::S3 { multipart, .. } => {
                let parts = sqlx::query(
                    "SELECT part_id FROM upload_parts WHERE recording_id = $1 ORDER BY part_number",
                )
                .bind(&self.recording)
                .fetch_all(self.app.db.pool())
                .await?
                .iter()
                .map(|row| {
                    row.try_get::<String, _>("part_id")
                        .map(|content_id| object_store::multipart::PartId { content_id })
                })
                .collect::<Result<Vec<_>, _>>()?;
                self.s3()?
                    .complete_multipart(&self.object(), &multipart, parts)
                    .await
                    .map_err(|error| internal(Box::new(error)))?;
                remove_tails(&self.app, &self.recording).await;
            }
        }
        let digest = match self.app.hashers.take(&self.recording, self.length) {
            Some(hasher) => <[u8; 32]>::from(hasher.finalize()),
            None => self.read_back(&name).await?,
        };
        let row = sqlx::query("SELECT manifest FROM recordings WHERE id = $1")
            .bind(&self.recording)
            .fetch_one(self.app.db.pool())
            .await?;
        let manifest = SignedStatement::from_bytes(&row.try_get::<Vec<u8>, _>("manifest")?)
            .and_then(|signed| signed.verify::<RecordingManifest>())
            .map_err(|error| internal(Box::new(error)))?
            .statement;
        let size = self
            .app
            .blobs
            .size(&name)
            .await
            .map_err(|error| internal(Box::new(error)))?;
        let matches = size == manifest.ciphertext_len && digest == manifest.ciphertext_sha256;
        let now = now();
        let mut transaction = self.app.db.begin().await?;
        forget(&mut transaction, &self.recording).await?;
        let uploader: String = sqlx::query("SELECT uploader FROM recordings WHERE id = $1")
            .bind(&self.recording)
            .fetch_one(&mut *transaction)
            .await?
            .try_get("uploader")?;
        if matches {
            sqlx::query(
                "UPDATE recordings SET status = 'complete', completed_at = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(&self.recording)
            .execute(&mut *transaction)
            .await?;
        } else {
            for sql in [
                "DELETE FROM recording_shares WHERE recording_id = $1",
                "DELETE FROM recordings WHERE id = $1",
            ] {
                sqlx::query(sql)
                    .bind(&self.recording)
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        transaction.audit(
            manifest.vault_id,
            now,
            crate::store::Event {
                actor: &uploader,
                action: if matches {
                    "recording.uploaded"
                } else {
                    "recording.rejected"
                },
                subject: &self.recording,
                statement: None,
            },
        );
        transaction.commit().await?;
        if !matches {
            let _ = self.app.blobs.delete(&name).await;
            tracing::warn!(recording = %self.recording, "uploaded ciphertext differs from its manifest; discarded");
            return Err(ApiError::Client {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "ciphertext_mismatch",
                message: "the uploaded bytes' length or SHA-256 differs from the manifest's; nothing was kept: create the recording again".into(),
            });
        }
        tracing::info!(recording = %self.recording, bytes = size, "recording complete");
        Ok(())
    }

    /// Hashes a stored object by reading it back (when no running hash was kept).
    async fn read_back(&self, name: &str) -> Result<[u8; 32], ApiError> {
        let internal = |error: Box<dyn std::error::Error + Send + Sync>| ApiError::Internal(error);
        let (mut stream, _) = self
            .app
            .blobs
            .get_stream(name, None)
            .await
            .map_err(|error| internal(Box::new(error)))?;
        let mut hasher = Sha256::new();
        while let Some(bytes) = stream.next().await {
            hasher.update(bytes.map_err(|error| internal(Box::new(error)))?);
        }
        Ok(hasher.finalize().into())
    }
}

/// What an upload left in storage, to discard after its rows are gone.
#[derive(Debug)]
pub(crate) struct Leftover {
    multipart_id: Option<String>,
}

/// Deletes an upload's rows (inside the caller's transaction); returns what to discard from
/// storage once the transaction commits.
pub(crate) async fn forget(
    connection: &mut sqlx::AnyConnection,
    recording: &str,
) -> Result<Option<Leftover>, sqlx::Error> {
    sqlx::query("DELETE FROM upload_parts WHERE recording_id = $1")
        .bind(recording)
        .execute(&mut *connection)
        .await?;
    let row = sqlx::query("DELETE FROM uploads WHERE recording_id = $1 RETURNING multipart_id")
        .bind(recording)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(|row| {
        Ok(Leftover {
            multipart_id: row.try_get("multipart_id")?,
        })
    })
    .transpose()
}

/// Removes an abandoned or deleted upload's bytes: the part file, or the S3 multipart upload
/// and its tail. Failures are logged: nothing refers to these bytes any more.
pub(crate) async fn discard_storage(
    app: &App,
    vault: &str,
    recording: &str,
    leftover: Option<Leftover>,
) {
    app.hashers.forget(recording);
    let Some(leftover) = leftover else {
        return;
    };
    if let Some(path) = app.blobs.local_file(&format!("uploads/{recording}.part"))
        && let Err(error) = tokio::fs::remove_file(&path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%error, recording, "could not remove an abandoned part file");
    }
    if let (Some(store), Some(id)) = (app.blobs.multipart(), leftover.multipart_id) {
        let path = ObjectPath::from(object_name(vault, recording));
        if let Err(error) = store.abort_multipart(&path, &id).await {
            tracing::warn!(%error, recording, "could not abort an abandoned multipart upload");
        }
        remove_tails(app, recording).await;
    }
}

fn tail_name(recording: &str, part: usize) -> String {
    format!("uploads/{recording}.tail.{part}")
}

/// Removes every tail object an upload left (best effort: they are a few MiB at most).
async fn remove_tails(app: &App, recording: &str) {
    let prefix = format!("uploads/{recording}.tail.");
    if let Ok(names) = app.blobs.list("uploads").await {
        for name in names.iter().filter(|name| name.starts_with(&prefix)) {
            let _ = app.blobs.delete(name).await;
        }
    }
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
    who: Authenticated,
    Path(UploadPath { recording }): Path<UploadPath>,
) -> Result<StatusCode, ApiError> {
    let recording = parse_recording(&recording)?.to_string();
    let upload = open_upload(&app, &who, &recording).await?;
    if upload.locked_until >= now() {
        return Err(ApiError::conflict(
            "upload_busy",
            "a PATCH of this upload is in progress: wait for it to end",
        ));
    }
    remove(
        &app,
        &upload.vault,
        &recording,
        &who.fingerprint,
        "recording.abandoned",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an unfinished recording with its shares and upload, with an audit entry.
async fn remove(
    app: &App,
    vault: &str,
    recording: &str,
    actor: &str,
    action: &str,
) -> Result<(), ApiError> {
    let mut transaction = app.db.begin().await?;
    let leftover = forget(&mut transaction, recording).await?;
    for sql in [
        "DELETE FROM recording_shares WHERE recording_id = $1",
        "DELETE FROM recordings WHERE id = $1 AND status = 'uploading'",
    ] {
        sqlx::query(sql)
            .bind(recording)
            .execute(&mut *transaction)
            .await?;
    }
    let vault_id = vault
        .parse()
        .map_err(|error: quorate_crypto::Error| ApiError::Internal(Box::new(error)))?;
    transaction.audit(
        vault_id,
        now(),
        crate::store::Event {
            actor,
            action,
            subject: recording,
            statement: None,
        },
    );
    transaction.commit().await?;
    discard_storage(app, vault, recording, leftover).await;
    Ok(())
}

/// Discards uploads left alone past their expiry; returns how many.
pub(crate) async fn sweep(app: &App, now: i64) -> Result<usize, ApiError> {
    let rows = sqlx::query(
        "SELECT u.recording_id, r.vault_id FROM uploads u JOIN recordings r ON r.id = u.recording_id
         WHERE u.expires_at < $1 AND u.locked_until < $1",
    )
    .bind(now)
    .fetch_all(app.db.pool())
    .await?;
    for row in &rows {
        let recording: String = row.try_get("recording_id")?;
        let vault: String = row.try_get("vault_id")?;
        remove(app, &vault, &recording, "server", "recording.expired").await?;
        tracing::info!(recording = %recording, "unfinished upload expired and was discarded");
    }
    Ok(rows.len())
}
