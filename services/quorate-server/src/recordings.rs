//! Recordings: created with the uploader's signed manifest and the members' sealed shares,
//! uploaded through [`crate::uploads`], listed once complete, downloaded as ciphertext (with
//! HTTP ranges), and deleted by an admin together with every share (crypto-shredding).

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::{NewRecording, RecordingView, SealedShare, UploadState};
use quorate_crypto::{
    RecordingId,
    statement::{RecordingManifest, SignedStatement, VaultPolicy},
};
use sqlx::{Row, any::AnyRow};

use crate::paths::{RecordingPath, VaultPath};
use crate::{
    App,
    auth::{Authenticated, Caller},
    error::{ApiError, ApiJson},
    nodes::decode_statement,
    now,
};

/// Largest sealed share accepted (a share is a few hundred bytes of age file).
const MAX_SEALED_SHARE: usize = 4096;

/// The object holding a recording's ciphertext.
pub(crate) fn object_name(vault: &str, recording: &str) -> String {
    format!("recordings/{vault}/{recording}.age")
}

/// Where a sealed transcript's object is written, under a fresh name (see
/// [`crate::blobs::Blobs::put_fresh`]); its row names it.
pub(crate) fn transcript_object_prefix(vault: &str, transcript: &str) -> String {
    format!("transcripts/{vault}/{transcript}/")
}

/// Parses a recording ID from a path, or 404 (an unparseable ID names nothing).
pub(crate) fn parse_recording(text: &str) -> Result<RecordingId, ApiError> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// The vault's newest policy as stored (the server verified it when it was set).
pub(crate) async fn current_policy(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
) -> Result<Option<VaultPolicy>, ApiError> {
    let row = sqlx::query(
        "SELECT statement FROM vault_policies WHERE vault_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(vault)
    .fetch_optional(&mut *connection)
    .await?;
    row.map(|row| {
        let bytes: Vec<u8> = row.try_get("statement")?;
        SignedStatement::from_bytes(&bytes)
            .and_then(|signed| signed.verify::<VaultPolicy>())
            .map(|verified| verified.statement)
            .map_err(|error| ApiError::Internal(Box::new(error)))
    })
    .transpose()
}

fn refuse(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// Creates a recording from its signed manifest and sealed shares, and opens its upload.
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
        (status = 403, description = "Nodes cannot upload", body = quorate_api::ErrorBody),
        (status = 409, description = "The roster or policy changed, there is no policy yet, or the ID is taken", body = quorate_api::ErrorBody),
        (status = 413, description = "Larger than the server accepts", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn create_recording(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiJson(body): ApiJson<NewRecording>,
) -> Result<Response, ApiError> {
    who.member_of(&vault)?;
    let signed = decode_statement(&body.manifest, "manifest")?;
    let now = now();
    let mut transaction = app.db.begin().await?;
    let roster = app.rosters.verified(&mut transaction, who.vault_id).await?;
    let (verified, signer) = roster
        .verify_by_member::<RecordingManifest>(&signed)
        .map_err(ApiError::invalid_statement)?;
    let manifest = verified.statement;
    if signer.fingerprint.to_hex() != who.fingerprint || manifest.uploader != signer.fingerprint {
        return Err(refuse(
            "invalid_statement",
            "the manifest must name and be signed by the member uploading it",
        ));
    }
    let recording = manifest.recording_id.to_string();

    // The same manifest again: the client lost the answer; tell it where the upload stands.
    if let Some(existing) =
        sqlx::query("SELECT vault_id, manifest_digest FROM recordings WHERE id = $1")
            .bind(&recording)
            .fetch_optional(&mut *transaction)
            .await?
    {
        let same = existing.try_get::<String, _>("vault_id")? == vault
            && existing.try_get::<Vec<u8>, _>("manifest_digest")? == verified.digest;
        if !same {
            return Err(ApiError::conflict(
                "recording_exists",
                "a different recording already has this ID: make a new manifest with a fresh ID",
            ));
        }
        drop(transaction);
        let state = crate::uploads::state(&app, &recording).await?;
        return Ok((StatusCode::OK, axum::Json(state)).into_response());
    }

    if manifest.roster_head != roster.head() {
        return Err(ApiError::conflict(
            "roster_changed",
            "the roster changed since the manifest was made: fetch and verify it, then split the key again",
        ));
    }
    let policy = current_policy(&mut transaction, &vault).await?.ok_or_else(|| {
        ApiError::conflict(
            "no_policy",
            "this vault has no policy yet: an admin must set the threshold before anything is uploaded",
        )
    })?;
    policy
        .allows(manifest.split.threshold)
        .map_err(ApiError::invalid_statement)?;
    if manifest.ciphertext_len == 0 {
        return Err(refuse(
            "invalid_statement",
            "the ciphertext cannot be empty",
        ));
    }
    if manifest.ciphertext_len > app.config.max_recording_bytes {
        return Err(ApiError::Client {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: format!(
                "this server accepts recordings up to {} bytes",
                app.config.max_recording_bytes
            ),
        });
    }
    let mut commitments: Vec<_> = manifest
        .split
        .shares
        .iter()
        .map(|share| share.commitment)
        .collect();
    commitments.sort();
    commitments.dedup();
    if commitments.len() != manifest.split.shares.len() {
        return Err(refuse(
            "invalid_statement",
            "two shares have the same commitment",
        ));
    }
    for share in &manifest.split.shares {
        if roster.member(&share.member).is_none() {
            return Err(refuse(
                "not_on_roster",
                format!(
                    "the manifest names {}, who is not a current member: fetch the roster again",
                    share.member.short()
                ),
            ));
        }
    }
    if body.shares.len() != manifest.split.shares.len() {
        return Err(refuse(
            "invalid_shares",
            "send exactly one sealed share per member the manifest names",
        ));
    }

    sqlx::query(
        "INSERT INTO recordings (id, vault_id, uploader, manifest, manifest_digest, ciphertext_len, threshold_k, threshold_n, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'uploading', $9)",
    )
    .bind(&recording)
    .bind(&vault)
    .bind(&who.fingerprint)
    .bind(signed.to_bytes())
    .bind(verified.digest.to_vec())
    .bind(manifest.ciphertext_len as i64)
    .bind(i32::from(manifest.split.threshold.k()))
    .bind(i32::from(manifest.split.threshold.n()))
    .bind(now)
    .execute(&mut *transaction)
    .await?;
    for upload in &body.shares {
        let member = upload.member.to_ascii_lowercase();
        let index = manifest
            .split
            .shares
            .iter()
            .position(|share| share.member.to_hex() == member)
            .ok_or_else(|| {
                refuse(
                    "invalid_shares",
                    format!("a share is for {member}, whom the manifest does not name"),
                )
            })?;
        let sealed = STANDARD
            .decode(&upload.sealed)
            .map_err(|_| refuse("invalid_shares", "a sealed share is not base64"))?;
        if sealed.is_empty() || sealed.len() > MAX_SEALED_SHARE {
            return Err(refuse(
                "invalid_shares",
                format!("a sealed share must be 1 to {MAX_SEALED_SHARE} bytes"),
            ));
        }
        let inserted = sqlx::query(
            "INSERT INTO recording_shares (recording_id, member, share_index, sealed)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&recording)
        .bind(&member)
        .bind(index as i32 + 1)
        .bind(sealed)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted != 1 {
            return Err(refuse(
                "invalid_shares",
                format!("two shares are for {member}"),
            ));
        }
    }
    let expires_at = now + app.config.upload_ttl;
    sqlx::query(
        "INSERT INTO uploads (recording_id, upload_offset, upload_length, expires_at) VALUES ($1, 0, $2, $3)",
    )
    .bind(&recording)
    .bind(manifest.ciphertext_len as i64)
    .bind(expires_at)
    .execute(&mut *transaction)
    .await?;
    transaction.audit(
        who.vault_id,
        now,
        crate::store::Event {
            actor: &who.fingerprint,
            action: "recording.created",
            subject: &recording,
            statement: Some(&signed.to_bytes()),
        },
    );
    transaction.commit().await?;
    tracing::info!(vault = %vault, recording = %recording, bytes = manifest.ciphertext_len, "recording created, upload open");
    let state = UploadState {
        upload_url: crate::uploads::upload_url(&recording),
        recording_id: recording,
        upload_length: manifest.ciphertext_len,
        upload_offset: 0,
        expires_at,
    };
    let mut response = (StatusCode::CREATED, axum::Json(&state)).into_response();
    if let Ok(location) = HeaderValue::from_str(&state.upload_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

const RECORDING_COLUMNS: &str = "id, uploader, status, manifest, ciphertext_len, threshold_k, threshold_n, created_at, completed_at";

fn recording_view(row: &AnyRow) -> Result<RecordingView, sqlx::Error> {
    Ok(RecordingView {
        recording_id: row.try_get("id")?,
        uploader: row.try_get("uploader")?,
        status: row.try_get("status")?,
        manifest: STANDARD.encode(row.try_get::<Vec<u8>, _>("manifest")?),
        ciphertext_len: row.try_get::<i64, _>("ciphertext_len")? as u64,
        threshold: row.try_get::<i32, _>("threshold_k")? as u8,
        shares: row.try_get::<i32, _>("threshold_n")? as u8,
        created_at: row.try_get("created_at")?,
        completed_at: row.try_get("completed_at")?,
    })
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
    Path(VaultPath { vault }): Path<VaultPath>,
) -> Result<axum::Json<Vec<RecordingView>>, ApiError> {
    who.member_of(&vault)?;
    let sql = format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings WHERE vault_id = $1 AND status = 'complete'
         ORDER BY created_at DESC, id"
    );
    Ok(axum::Json(
        app.db.vault_rows(sql, &vault, recording_view).await?,
    ))
}

/// Who may read a recording: the vault's members, and a node holding a live job on it.
pub(crate) async fn may_read(
    app: &App,
    who: &Caller,
    vault: &str,
    recording: &str,
) -> Result<(), ApiError> {
    if vault != who.vault_id.to_string() {
        return Err(ApiError::not_found());
    }
    let Some(node) = who.node_id else {
        return Ok(());
    };
    let job = sqlx::query(
        "SELECT 1 FROM jobs j JOIN unlock_requests r ON r.id = j.request_id
         WHERE j.node_id = $1 AND r.subject_id = $2 AND j.status = 'leased' AND j.lease_expires_at > $3",
    )
    .bind(node.to_string())
    .bind(recording)
    .bind(now())
    .fetch_optional(app.db.pool())
    .await?;
    job.map(drop).ok_or_else(ApiError::not_found)
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
    Path(RecordingPath { vault, recording }): Path<RecordingPath>,
) -> Result<axum::Json<RecordingView>, ApiError> {
    let recording = parse_recording(&recording)?.to_string();
    may_read(&app, &who, &vault, &recording).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings
         WHERE vault_id = $1 AND id = $2 AND (status = 'complete' OR uploader = $3)"
    )))
    .bind(&vault)
    .bind(&recording)
    .bind(&who.fingerprint)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(recording_view(&row)?))
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
    Path(RecordingPath { vault, recording }): Path<RecordingPath>,
) -> Result<axum::Json<SealedShare>, ApiError> {
    who.member_of(&vault)?;
    let recording = parse_recording(&recording)?.to_string();
    let row = sqlx::query(
        "SELECT s.share_index, s.sealed FROM recording_shares s JOIN recordings r ON r.id = s.recording_id
         WHERE r.vault_id = $1 AND s.recording_id = $2 AND s.member = $3 AND r.status = 'complete'",
    )
    .bind(&vault)
    .bind(&recording)
    .bind(&who.fingerprint)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(SealedShare {
        recording_id: recording,
        member: who.fingerprint,
        index: row.try_get::<i32, _>("share_index")? as u8,
        sealed: STANDARD.encode(row.try_get::<Vec<u8>, _>("sealed")?),
    }))
}

/// Parses a single `bytes=` range against `size`: `None` for the whole object.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<std::ops::Range<u64>>, ApiError> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let unsatisfiable = || ApiError::Client {
        status: StatusCode::RANGE_NOT_SATISFIABLE,
        code: "bad_range",
        message: format!("send one range within the {size} bytes, as bytes=START-END"),
    };
    let text = value.to_str().map_err(|_| unsatisfiable())?;
    let spec = text.strip_prefix("bytes=").ok_or_else(unsatisfiable)?;
    if spec.contains(',') {
        return Err(unsatisfiable());
    }
    let (start, end) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let length: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            size.saturating_sub(length)..size
        }
        (start, "") => start.parse().map_err(|_| unsatisfiable())?..size,
        (start, end) => {
            let start: u64 = start.parse().map_err(|_| unsatisfiable())?;
            let end: u64 = end.parse().map_err(|_| unsatisfiable())?;
            start..end.saturating_add(1).min(size)
        }
    };
    if range.start >= range.end || range.start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
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
    Path(RecordingPath { vault, recording }): Path<RecordingPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let recording = parse_recording(&recording)?.to_string();
    may_read(&app, &who, &vault, &recording).await?;
    stream_object(
        &app,
        "SELECT ciphertext_len, manifest_digest FROM recordings WHERE vault_id = $1 AND id = $2 AND status = 'complete'",
        (&vault, &recording),
        |_| Ok(object_name(&vault, &recording)),
        &headers,
    )
    .await
}

/// Streams a stored object, or the one range `headers` ask for; `describe` selects its row by
/// vault (`$1`) and ID (`$2`): its `ciphertext_len`, and its `manifest_digest`, which is its
/// ETag; `name` gives the object's name from that row. 404 when there is no such row.
pub(crate) async fn stream_object(
    app: &App,
    describe: &'static str,
    (vault, id): (&str, &str),
    name: impl FnOnce(&AnyRow) -> Result<String, sqlx::Error>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let row = sqlx::query(describe)
        .bind(vault)
        .bind(id)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(ApiError::not_found)?;
    let name = name(&row)?;
    let size = row.try_get::<i64, _>("ciphertext_len")? as u64;
    let manifest_digest: Vec<u8> = row.try_get("manifest_digest")?;
    stream_stored(app, &name, size, &manifest_digest, headers).await
}

/// Streams object `name` of `size` bytes, or the one range `headers` ask for; the digest of
/// the manifest that describes it is its ETag.
pub(crate) async fn stream_stored(
    app: &App,
    name: &str,
    size: u64,
    manifest_digest: &[u8],
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let etag = format!("\"{}\"", hex::encode(manifest_digest));
    let range = parse_range(headers, size)?;
    let (stream, _) = app
        .blobs
        .get_stream(name, range.clone())
        .await
        .map_err(|error| ApiError::Internal(Box::new(error)))?;
    let mut response = Response::new(Body::from_stream(stream));
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    let length = match &range {
        Some(range) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {}-{}/{size}", range.start, range.end - 1);
            if let Ok(value) = HeaderValue::from_str(&content_range) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            range.end - range.start
        }
        None => size,
    };
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
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
    )
)]
pub(crate) async fn delete_recording(
    State(app): State<App>,
    who: Authenticated,
    Path(RecordingPath { vault, recording }): Path<RecordingPath>,
) -> Result<StatusCode, ApiError> {
    who.admin_of(&vault)?;
    let recording = parse_recording(&recording)?.to_string();
    let now = now();
    // The requests on the recording and on its transcripts.
    const REQUESTS: &str = "SELECT id FROM unlock_requests WHERE subject_id = $1
         OR subject_id IN (SELECT id FROM transcripts WHERE recording_id = $1)";
    let mut transaction = app.db.begin().await?;
    // The jobs go first. A completion holds its job's row from its first write to its commit
    // (`jobs::finish_job`), so this waits for one in flight and makes any later one find its
    // job gone: no transcript or released copy can be stored for this recording after the
    // rows below are read. (It is also the first write, which SQLite needs before reads.)
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM jobs WHERE request_id IN ({REQUESTS})"
    )))
    .bind(&recording)
    .execute(&mut *transaction)
    .await?;
    let exists = sqlx::query("SELECT 1 FROM recordings WHERE vault_id = $1 AND id = $2")
        .bind(&vault)
        .bind(&recording)
        .fetch_optional(&mut *transaction)
        .await?;
    if exists.is_none() {
        return Err(ApiError::not_found());
    }
    let upload = crate::uploads::forget(&mut transaction, &recording).await?;
    let objects: Vec<String> = sqlx::query(
        "SELECT object FROM transcripts WHERE recording_id = $1
         UNION ALL SELECT object FROM released_transcripts WHERE recording_id = $1",
    )
    .bind(&recording)
    .fetch_all(&mut *transaction)
    .await?
    .iter()
    .map(|row| row.try_get("object"))
    .collect::<Result<_, _>>()?;
    let votes = format!("DELETE FROM votes WHERE request_id IN ({REQUESTS})");
    let requests = format!("DELETE FROM unlock_requests WHERE id IN ({REQUESTS})");
    for sql in [
        votes.as_str(),
        requests.as_str(),
        "DELETE FROM index_terms WHERE doc IN (SELECT doc FROM released_transcripts WHERE recording_id = $1)",
        "DELETE FROM release_grants WHERE transcript_id IN (SELECT transcript_id FROM released_transcripts WHERE recording_id = $1)",
        "DELETE FROM released_transcripts WHERE recording_id = $1",
        "DELETE FROM transcript_shares WHERE transcript_id IN (SELECT id FROM transcripts WHERE recording_id = $1)",
        "DELETE FROM transcripts WHERE recording_id = $1",
        "DELETE FROM recording_shares WHERE recording_id = $1",
        "DELETE FROM recordings WHERE id = $1",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&recording)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.audit(
        who.vault_id,
        now,
        crate::store::Event {
            actor: &who.fingerprint,
            action: "recording.deleted",
            subject: &recording,
            statement: None,
        },
    );
    transaction.commit().await?;
    // The rows are gone first: if removing the bytes fails now, nothing refers to them and
    // the operator's log says which object to remove.
    crate::uploads::discard_storage(&app, &vault, &recording, upload).await;
    let objects = std::iter::once(object_name(&vault, &recording))
        .chain(objects.into_iter().filter(|object| !object.is_empty()));
    for object in objects {
        if let Err(error) = app.blobs.delete(&object).await {
            tracing::error!(%error, object = %object, "recording deleted, but this object could not be removed; remove it by hand");
        }
    }
    tracing::info!(vault = %vault, recording = %recording, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}
