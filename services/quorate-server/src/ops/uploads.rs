//! Resumable upload of a recording's ciphertext, in the manner of tus 1.0 (the routes are in
//! [`crate::uploads`]).
//!
//! A PATCH holds the upload with a renewed lock so two cannot interleave, even on two
//! servers, and a mismatched offset changes nothing. On a local folder the bytes are appended
//! to a part file that is renamed into place at the end; on S3 they become multipart parts of
//! 8 MiB whose IDs are kept in the database, with the remainder of a PATCH shorter than a part
//! kept as a small tail object. Memory stays flat: at most one part per upload in flight.
//!
//! When the last byte is stored the whole ciphertext's SHA-256 is compared with the
//! manifest's; only then is the recording complete and listed. A mismatch discards it.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use object_store::{
    MultipartId, PutPayload,
    multipart::{MultipartStore, PartId},
    path::Path as ObjectPath,
};
use quorate_api::UploadState;
use quorate_crypto::{
    RecordingId, VaultId,
    statement::{RecordingManifest, SignedStatement},
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::{
    App,
    error::Refusal,
    now,
    ops::requests::Member,
    store::{
        self, Event,
        recordings::object_name,
        uploads::{Advance, Leftover},
    },
};

/// Size of a multipart part on S3 (every part but the last must be at least 5 MiB).
pub const PART_SIZE: usize = 8 << 20;
/// How long a PATCH holds its upload before renewing.
const LOCK_SECONDS: i64 = 60;
/// How often a long PATCH renews its lock.
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// Why an upload step was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("no such resource")]
    NotFound,
    #[error("the server has {stored} bytes, not {sent}: resume from Upload-Offset {stored}")]
    OffsetMismatch { stored: u64, sent: u64 },
    #[error("the upload moved on meanwhile: HEAD it and resume")]
    MovedOn,
    #[error("another PATCH of this upload is in progress: wait for it, then HEAD and resume")]
    Busy,
    #[error("a PATCH of this upload is in progress: wait for it to end")]
    PatchInProgress,
    #[error("this PATCH took too long and lost its hold on the upload: HEAD it and resume")]
    LostHold,
    #[error("the upload is {0} bytes long; this chunk went past it and was not kept")]
    BeyondLength(u64),
    #[error(
        "this server accepts recordings up to {0} bytes; this chunk went past it and was not kept"
    )]
    BeyondLimit(u64),
    #[error(
        "the chunk does not match its Upload-Checksum (or arrived incomplete); nothing of it was kept: send it again"
    )]
    ChecksumMismatch,
    #[error(
        "the uploaded bytes' length or SHA-256 differs from the manifest's; nothing was kept: create the recording again"
    )]
    CiphertextMismatch,
    #[error("storage failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Inconsistent(String),
    #[error("a stored manifest or vault ID does not parse: {0}")]
    Corrupt(#[from] quorate_crypto::Error),
    #[error("the PATCH's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl Refusal for UploadError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use UploadError::*;
        Some(match self {
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            OffsetMismatch { .. } | MovedOn => (StatusCode::CONFLICT, "offset_mismatch"),
            Busy | PatchInProgress | LostHold => (StatusCode::CONFLICT, "upload_busy"),
            BeyondLength(_) => (StatusCode::PAYLOAD_TOO_LARGE, "beyond_length"),
            BeyondLimit(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            // tus's status for a failed checksum; not a registered one, but within range.
            ChecksumMismatch => (
                StatusCode::from_u16(460).expect("460 is a valid status code"),
                "checksum_mismatch",
            ),
            CiphertextMismatch => (StatusCode::UNPROCESSABLE_ENTITY, "ciphertext_mismatch"),
            Storage(_) | Inconsistent(_) | Corrupt(_) | Task(_) | Store(_) => return None,
        })
    }
}

/// A failure of the object store or the local folder.
fn storage(error: impl std::error::Error + Send + Sync + 'static) -> UploadError {
    UploadError::Storage(Box::new(error))
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

/// The upload URL of a recording.
pub(crate) fn upload_url(recording: &str) -> String {
    format!("/api/v1/uploads/{recording}")
}

/// Where the upload of `recording` (which must exist) stands, for a client that lost track.
pub(crate) async fn state(app: &App, recording: &str) -> Result<UploadState, UploadError> {
    let mut connection = app.db.connection().await?;
    let progress = store::uploads::progress(&mut connection, recording).await?;
    let length = progress.ciphertext_len.map(|length| length as u64);
    Ok(UploadState {
        recording_id: recording.to_owned(),
        upload_url: upload_url(recording),
        upload_length: length,
        // No upload row: it is complete.
        upload_offset: progress
            .upload_offset
            .map_or(length.unwrap_or(0), |offset| offset as u64),
        expires_at: progress.expires_at.unwrap_or(0),
    })
}

/// An open upload, as its uploader sees it.
#[derive(Debug)]
pub(crate) struct OpenUpload {
    pub vault: String,
    pub offset: u64,
    /// `None` while a live upload waits for its manifest.
    pub length: Option<u64>,
    pub expires_at: i64,
    locked_until: i64,
}

/// `uploader`'s open upload of `recording`; not found for anyone else, too.
pub(crate) async fn find(
    app: &App,
    uploader: Member<'_>,
    recording: &RecordingId,
) -> Result<OpenUpload, UploadError> {
    let mut connection = app.db.connection().await?;
    open_upload(&mut connection, uploader, &recording.to_string()).await
}

async fn open_upload(
    connection: &mut sqlx::AnyConnection,
    uploader: Member<'_>,
    recording: &str,
) -> Result<OpenUpload, UploadError> {
    let vault = uploader.vault.to_string();
    let row = store::uploads::open_by(connection, recording, &vault, uploader.fingerprint)
        .await?
        .ok_or(UploadError::NotFound)?;
    Ok(OpenUpload {
        vault: row.vault_id,
        offset: row.upload_offset as u64,
        length: row.upload_length.map(|length| length as u64),
        expires_at: row.expires_at,
        locked_until: row.locked_until,
    })
}

/// A PATCH as its headers describe it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patch {
    /// Where the client says the upload stands (`Upload-Offset`).
    pub offset: u64,
    /// The SHA-256 the client says the chunk has (`Upload-Checksum`).
    pub checksum: Option<[u8; 32]>,
}

/// Where an upload stands after a PATCH.
#[derive(Debug)]
pub(crate) struct Appended {
    pub offset: u64,
    /// `None` while a live upload waits for its manifest.
    pub length: Option<u64>,
    /// When the upload expires unless continued; `None` once it is complete.
    pub expires_at: Option<i64>,
}

/// Appends `body` to `uploader`'s upload of `recording` at `patch.offset`. With a checksum
/// the chunk is kept only if it matches. The last byte completes the recording, once its
/// SHA-256 equals the manifest's.
pub(crate) async fn append<E: Send + 'static>(
    app: &App,
    uploader: Member<'_>,
    recording: &RecordingId,
    patch: Patch,
    body: impl Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    now: i64,
) -> Result<Appended, UploadError> {
    let recording = recording.to_string();
    let (upload, token) = hold(app, uploader, &recording, patch.offset, now).await?;
    let chunk = Chunk {
        app: app.clone(),
        vault: upload.vault,
        recording,
        token,
        start: patch.offset,
        length: upload.length,
        checksum: patch.checksum,
    };
    // Run to the end even if the client goes away, so what arrived is recorded and the lock
    // released at once rather than when it lapses.
    tokio::spawn(chunk.receive(body)).await?
}

/// An upload held at its end (no PATCH can run): a live upload while its manifest is stored,
/// or one whose bytes are all stored and wait to be completed.
#[derive(Debug)]
pub(crate) struct HeldAtEnd {
    vault: String,
    recording: String,
    token: String,
    /// The bytes stored, which the manifest must name as the ciphertext's length.
    length: u64,
}

impl HeldAtEnd {
    /// The lock's token, for the statement that sets the upload's length.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Lets the upload go on unchanged (its manifest was refused).
    pub(crate) async fn release(self, app: &App) {
        if let Ok(mut connection) = app.db.connection().await {
            let _ = store::uploads::unlock(&mut connection, &self.recording, &self.token).await;
        }
    }
}

/// Holds `uploader`'s live upload of `recording` for its manifest, which names `length`
/// bytes: refused unless the server stores exactly that many and no PATCH is running.
pub(crate) async fn hold_live(
    app: &App,
    uploader: Member<'_>,
    recording: &str,
    length: u64,
    now: i64,
) -> Result<HeldAtEnd, UploadError> {
    let (upload, token) = hold(app, uploader, recording, length, now).await?;
    let held = HeldAtEnd {
        vault: upload.vault,
        recording: recording.to_owned(),
        token,
        length,
    };
    if upload.length.is_some() {
        held.release(app).await;
        return Err(UploadError::NotFound);
    }
    Ok(held)
}

/// `uploader`'s upload of `recording` held for completion, if every byte of its length is
/// stored but it was not completed (the server failed after storing the last byte, or
/// after a live upload's manifest); `None` otherwise.
pub(crate) async fn hold_stored(
    app: &App,
    uploader: Member<'_>,
    recording: &str,
    now: i64,
) -> Result<Option<HeldAtEnd>, UploadError> {
    let upload = find_open(app, uploader, recording).await?;
    let Some(length) =
        upload.and_then(|upload| upload.length.filter(|&length| length == upload.offset))
    else {
        return Ok(None);
    };
    let (upload, token) = hold(app, uploader, recording, length, now).await?;
    Ok(Some(HeldAtEnd {
        vault: upload.vault,
        recording: recording.to_owned(),
        token,
        length,
    }))
}

/// `uploader`'s open upload of `recording`, `None` when there is none.
async fn find_open(
    app: &App,
    uploader: Member<'_>,
    recording: &str,
) -> Result<Option<OpenUpload>, UploadError> {
    let mut connection = app.db.connection().await?;
    match open_upload(&mut connection, uploader, recording).await {
        Ok(upload) => Ok(Some(upload)),
        Err(UploadError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Completes an upload held at its end, whose length is set: the whole ciphertext is put in
/// place and compared with the manifest, as after a last PATCH.
pub(crate) async fn finish(app: &App, held: HeldAtEnd) -> Result<(), UploadError> {
    let chunk = Chunk {
        app: app.clone(),
        vault: held.vault,
        recording: held.recording,
        token: held.token,
        start: held.length,
        length: Some(held.length),
        checksum: None,
    };
    let nothing_more = futures::stream::empty::<Result<Bytes, std::convert::Infallible>>();
    tokio::spawn(chunk.receive(nothing_more)).await??;
    Ok(())
}

/// Locks `uploader`'s upload of `recording` for one PATCH at `offset`; returns it with the
/// lock's token.
async fn hold(
    app: &App,
    uploader: Member<'_>,
    recording: &str,
    offset: u64,
    now: i64,
) -> Result<(OpenUpload, String), UploadError> {
    let mut connection = app.db.connection().await?;
    let upload = open_upload(&mut connection, uploader, recording).await?;
    let token = uuid::Uuid::new_v4().to_string();
    let until = now + LOCK_SECONDS;
    if store::uploads::lock(&mut connection, recording, offset, &token, until, now).await? {
        // Read again under the lock: a live upload's length may have been set meanwhile.
        let held = open_upload(&mut connection, uploader, recording).await?;
        return Ok((held, token));
    }
    Err(if upload.offset != offset {
        UploadError::OffsetMismatch {
            stored: upload.offset,
            sent: offset,
        }
    } else if upload.locked_until >= now {
        UploadError::Busy
    } else {
        UploadError::MovedOn
    })
}

/// One PATCH in progress, holding the upload's lock.
struct Chunk {
    app: App,
    vault: String,
    recording: String,
    token: String,
    start: u64,
    /// `None` for a live upload, whose manifest will say.
    length: Option<u64>,
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

/// What arrived of a chunk's body.
struct Received {
    bytes: u64,
    /// The body broke off before its end.
    interrupted: bool,
    /// The body went past the upload's length (the rest was not read).
    too_long: bool,
    /// The SHA-256 of what arrived, when the client sent a checksum to compare it with.
    digest: Option<[u8; 32]>,
}

impl Chunk {
    async fn receive<E>(
        self,
        body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    ) -> Result<Appended, UploadError> {
        let outcome = self.store(body).await;
        if outcome.is_err() {
            // Nothing changed: free the upload for the next PATCH.
            if let Ok(mut connection) = self.app.db.connection().await {
                let _ = store::uploads::unlock(&mut connection, &self.recording, &self.token).await;
            }
        }
        outcome
    }

    async fn store<E>(
        &self,
        body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    ) -> Result<Appended, UploadError> {
        let mut sink = self.open_sink().await?;
        let mut hasher = self.app.hashers.take(&self.recording, self.start);
        let received = self.copy(body, &mut sink, hasher.as_mut()).await?;
        if let Err(refusal) = self.check(&received) {
            self.discard(sink).await;
            return Err(refusal);
        }
        let offset = self.start + received.bytes;
        let complete = self.length == Some(offset);
        let tail_len = self.persist(&mut sink, complete).await?;
        let expires_at = now() + self.app.config.upload_ttl;
        let advance = Advance {
            token: &self.token,
            offset,
            tail_len,
            expires_at,
        };
        self.record(&sink, &advance).await?;
        if let Some(hasher) = hasher {
            self.app.hashers.put(&self.recording, offset, hasher);
        }
        if complete {
            self.complete(sink).await?;
        }
        Ok(Appended {
            offset,
            length: self.length,
            expires_at: (!complete).then_some(expires_at),
        })
    }

    /// Streams `body` into `sink`, hashing as it goes, until it ends, breaks off or goes past
    /// the upload's length; renews the lock on the way.
    async fn copy<E>(
        &self,
        mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
        sink: &mut Sink,
        mut hasher: Option<&mut Sha256>,
    ) -> Result<Received, UploadError> {
        let mut chunk_hasher = self.checksum.map(|_| Sha256::new());
        // A limit lowered below a live upload's offset leaves no room, rather than wrapping.
        let remaining = self.bound().saturating_sub(self.start);
        let (mut received, mut interrupted, mut too_long) = (0u64, false, false);
        let mut renewed = Instant::now();
        while let Some(next) = body.next().await {
            let Ok(bytes) = next else {
                interrupted = true;
                break;
            };
            if received + bytes.len() as u64 > remaining {
                too_long = true;
                break;
            }
            self.write(sink, bytes.clone()).await?;
            if let Some(hasher) = hasher.as_deref_mut() {
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
        Ok(Received {
            bytes: received,
            interrupted,
            too_long,
            digest: chunk_hasher.map(|hasher| hasher.finalize().into()),
        })
    }

    /// How long the upload may grow: its length, or for a live upload the server's limit.
    fn bound(&self) -> u64 {
        self.length.unwrap_or(self.app.config.max_recording_bytes)
    }

    /// Refuses a chunk that went past the upload's length (or a live upload's limit), or that
    /// does not match its checksum (a chunk that broke off cannot).
    fn check(&self, received: &Received) -> Result<(), UploadError> {
        if received.too_long {
            return Err(match self.length {
                Some(length) => UploadError::BeyondLength(length),
                None => UploadError::BeyondLimit(self.bound()),
            });
        }
        if self.checksum.is_some() && (received.interrupted || received.digest != self.checksum) {
            return Err(UploadError::ChecksumMismatch);
        }
        Ok(())
    }

    /// Records what this PATCH stored and releases the lock, in one transaction; then removes
    /// the tail object a new part took in (S3).
    async fn record(&self, sink: &Sink, advance: &Advance<'_>) -> Result<(), UploadError> {
        let mut tx = self.app.db.begin().await?;
        if let Sink::S3 {
            first_part,
            new_parts,
            ..
        } = sink
        {
            store::uploads::add_parts(&mut tx, &self.recording, *first_part, new_parts).await?;
        }
        if !store::uploads::advance(&mut tx, &self.recording, advance).await? {
            return Err(UploadError::LostHold);
        }
        tx.commit().await?;
        if let Sink::S3 {
            first_part,
            new_parts,
            ..
        } = sink
            && !new_parts.is_empty()
        {
            // The old tail went into a part.
            let _ = self.app.blobs.delete(&self.tail_name(*first_part)).await;
        }
        Ok(())
    }

    fn part_file(&self) -> Option<std::path::PathBuf> {
        self.app.blobs.local_file(&part_file_name(&self.recording))
    }

    async fn open_sink(&self) -> Result<Sink, UploadError> {
        match self.part_file() {
            Some(path) => self.open_part_file(path).await,
            None => self.open_multipart().await,
        }
    }

    /// Opens the part file at the recorded offset.
    async fn open_part_file(&self, path: std::path::PathBuf) -> Result<Sink, UploadError> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(storage)?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .await
            .map_err(storage)?;
        let on_disk = file.metadata().await.map_err(storage)?.len();
        if on_disk < self.start {
            return Err(UploadError::Inconsistent(format!(
                "the part file of {} is shorter than its recorded offset",
                self.recording
            )));
        }
        // Bytes past the offset are from a PATCH that never recorded them: drop them.
        file.set_len(self.start).await.map_err(storage)?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(self.start))
            .await
            .map_err(storage)?;
        Ok(Sink::Local { file, path })
    }

    /// Continues the S3 multipart upload (starting it at the first PATCH), with the recorded
    /// tail in the buffer.
    async fn open_multipart(&self) -> Result<Sink, UploadError> {
        let s3 = self.s3()?;
        let mut connection = self.app.db.connection().await?;
        let state = store::uploads::multipart(&mut connection, &self.recording).await?;
        let multipart = match state.multipart_id {
            Some(id) => id,
            None => {
                let id = s3.create_multipart(&self.object()).await.map_err(storage)?;
                store::uploads::set_multipart(&mut connection, &self.recording, &id).await?;
                id
            }
        };
        drop(connection);
        let first_part = state.parts as usize;
        let tail_len = state.tail_len as usize;
        let mut buffer = BytesMut::with_capacity(PART_SIZE);
        if tail_len > 0 {
            // A PATCH that failed after writing a longer tail for the same part left the
            // recorded bytes as its prefix: read only those.
            let tail = self
                .app
                .blobs
                .get(&self.tail_name(first_part))
                .await
                .map_err(storage)?;
            let recorded = tail.get(..tail_len).ok_or_else(|| {
                UploadError::Inconsistent(format!(
                    "the tail of {} is shorter than recorded",
                    self.recording
                ))
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

    fn s3(&self) -> Result<&object_store::aws::AmazonS3, UploadError> {
        self.app.blobs.multipart().ok_or_else(|| {
            UploadError::Inconsistent(
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

    async fn write(&self, sink: &mut Sink, bytes: Bytes) -> Result<(), UploadError> {
        match sink {
            Sink::Local { file, .. } => file.write_all(&bytes).await.map_err(storage),
            Sink::S3 {
                multipart,
                first_part,
                new_parts,
                buffer,
            } => {
                buffer.extend_from_slice(&bytes);
                while buffer.len() >= PART_SIZE {
                    let part = buffer.split_to(PART_SIZE).freeze();
                    self.put_part(multipart, *first_part, new_parts, part)
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// Puts `bytes` as the next part of the multipart upload (whose parts before this PATCH's
    /// number `first_part`) and notes its ID in `new_parts`.
    async fn put_part(
        &self,
        multipart: &MultipartId,
        first_part: usize,
        new_parts: &mut Vec<String>,
        bytes: Bytes,
    ) -> Result<(), UploadError> {
        let number = first_part + new_parts.len();
        let id = self
            .s3()?
            .put_part(&self.object(), multipart, number, PutPayload::from(bytes))
            .await
            .map_err(storage)?;
        new_parts.push(id.content_id);
        Ok(())
    }

    /// Makes what arrived durable; returns the tail length to record (S3).
    async fn persist(&self, sink: &mut Sink, complete: bool) -> Result<u64, UploadError> {
        match sink {
            Sink::Local { file, .. } => {
                file.flush().await.map_err(storage)?;
                file.get_ref().sync_data().await.map_err(storage)?;
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
                        let last = buffer.split().freeze();
                        self.put_part(multipart, *first_part, new_parts, last)
                            .await?;
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
                        .map_err(storage)?;
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

    async fn renew(&self) -> Result<(), UploadError> {
        let mut connection = self.app.db.connection().await?;
        let until = now() + LOCK_SECONDS;
        store::uploads::renew(&mut connection, &self.recording, &self.token, until).await?;
        Ok(())
    }

    /// Puts the whole ciphertext in place, checks it against the manifest, and makes the
    /// recording complete, or discards it.
    async fn complete(&self, sink: Sink) -> Result<(), UploadError> {
        let name = object_name(&self.vault, &self.recording);
        self.assemble(sink, &name).await?;
        let digest = match self.app.hashers.take(&self.recording, self.bound()) {
            Some(hasher) => <[u8; 32]>::from(hasher.finalize()),
            None => self.read_back(&name).await?,
        };
        let size = self.app.blobs.size(&name).await.map_err(storage)?;
        if !self.settle(size, digest).await? {
            let _ = self.app.blobs.delete(&name).await;
            tracing::warn!(recording = %self.recording, "uploaded ciphertext differs from its manifest; discarded");
            return Err(UploadError::CiphertextMismatch);
        }
        tracing::info!(recording = %self.recording, bytes = size, "recording complete");
        Ok(())
    }

    /// Puts the whole ciphertext at `name`: renames the part file into place, or completes
    /// the multipart upload.
    async fn assemble(&self, sink: Sink, name: &str) -> Result<(), UploadError> {
        match sink {
            Sink::Local { file, path } => {
                drop(file);
                let target = self
                    .app
                    .blobs
                    .local_file(name)
                    .ok_or_else(|| UploadError::Inconsistent("no local folder".into()))?;
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(storage)?;
                }
                tokio::fs::rename(&path, &target).await.map_err(storage)?;
            }
            Sink::S3 { multipart, .. } => {
                let mut connection = self.app.db.connection().await?;
                let parts = store::uploads::parts(&mut connection, &self.recording).await?;
                drop(connection);
                let parts = parts
                    .into_iter()
                    .map(|content_id| PartId { content_id })
                    .collect();
                self.s3()?
                    .complete_multipart(&self.object(), &multipart, parts)
                    .await
                    .map_err(storage)?;
                remove_tails(&self.app, &self.recording).await;
            }
        }
        Ok(())
    }

    /// Ends the upload: the recording becomes complete if the stored ciphertext's `size` and
    /// `digest` are the manifest's (`true`), else it is deleted (`false`); audited either way.
    async fn settle(&self, size: u64, digest: [u8; 32]) -> Result<bool, UploadError> {
        let now = now();
        let mut tx = self.app.db.begin().await?;
        store::uploads::delete(&mut tx, &self.recording).await?;
        let uploaded = store::recordings::uploaded(&mut tx, &self.recording).await?;
        let manifest = SignedStatement::from_bytes(&uploaded.manifest)
            .and_then(|signed| signed.verify::<RecordingManifest>())?
            .statement;
        let matches = size == manifest.ciphertext_len && digest == manifest.ciphertext_sha256;
        let action = if matches {
            store::recordings::mark_complete(&mut tx, &self.recording, now).await?;
            "recording.uploaded"
        } else {
            store::recordings::delete_unfinished(&mut tx, &self.recording).await?;
            "recording.rejected"
        };
        tx.audit(
            manifest.vault_id,
            now,
            Event {
                actor: &uploaded.uploader,
                action,
                subject: &self.recording,
                statement: None,
            },
        );
        tx.commit().await?;
        Ok(matches)
    }

    /// Hashes a stored object by reading it back (when no running hash was kept).
    async fn read_back(&self, name: &str) -> Result<[u8; 32], UploadError> {
        let (mut stream, _) = self
            .app
            .blobs
            .get_stream(name, None)
            .await
            .map_err(storage)?;
        let mut hasher = Sha256::new();
        while let Some(bytes) = stream.next().await {
            hasher.update(bytes.map_err(storage)?);
        }
        Ok(hasher.finalize().into())
    }
}

fn part_file_name(recording: &str) -> String {
    format!("uploads/{recording}.part")
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
    if let Some(path) = app.blobs.local_file(&part_file_name(recording))
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

/// Abandons `uploader`'s upload of `recording` (tus termination): the recording and its
/// shares are removed, unless a PATCH holds it at `now`.
pub(crate) async fn abandon(
    app: &App,
    uploader: Member<'_>,
    recording: &RecordingId,
    now: i64,
) -> Result<(), UploadError> {
    let upload = find(app, uploader, recording).await?;
    if upload.locked_until >= now {
        return Err(UploadError::PatchInProgress);
    }
    let recording = recording.to_string();
    let event = Event {
        actor: uploader.fingerprint,
        action: "recording.abandoned",
        subject: &recording,
        statement: None,
    };
    remove(app, &upload.vault, &recording, event).await
}

/// Discards uploads left alone past their expiry at `now`; returns how many.
pub(crate) async fn sweep(app: &App, now: i64) -> Result<usize, UploadError> {
    let mut connection = app.db.connection().await?;
    let expired = store::uploads::expired(&mut connection, now).await?;
    drop(connection);
    for upload in &expired {
        let recording = &upload.recording_id;
        let event = Event::server("recording.expired", recording);
        remove(app, &upload.vault_id, recording, event).await?;
        tracing::info!(recording = %recording, "unfinished upload expired and was discarded");
    }
    Ok(expired.len())
}

/// Removes an unfinished recording with its shares and upload, audited as `event`.
async fn remove(
    app: &App,
    vault: &str,
    recording: &str,
    event: Event<'_>,
) -> Result<(), UploadError> {
    let vault_id: VaultId = vault.parse()?;
    let mut tx = app.db.begin().await?;
    let leftover = store::uploads::delete(&mut tx, recording).await?;
    store::recordings::delete_unfinished(&mut tx, recording).await?;
    // The entry bears the clock's time even when a sweep is asked about another moment, so
    // the chain's times keep their order.
    tx.audit(vault_id, now(), event);
    tx.commit().await?;
    discard_storage(app, vault, recording, leftover).await;
    Ok(())
}
