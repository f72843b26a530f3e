//! Recordings: created with the uploader's signed manifest and the members' sealed shares
//! (which opens the upload, [`super::uploads`]), read by the vault's members and by a node
//! holding a job on them, downloaded as ciphertext (one HTTP range at most), and deleted by
//! an admin together with every share (crypto-shredding) and everything grown from them.

use std::ops::Range;

use axum::http::{HeaderValue, StatusCode};
use bytes::Bytes;
use futures::stream::BoxStream;
use quorate_api::{PartyRole, SealedShareUpload, UploadState};
use quorate_crypto::{
    RecordingId, VaultId,
    roster::Roster,
    statement::{RecordingManifest, SignedStatement, VaultPolicy, Verified},
};

use crate::{
    App,
    auth::Caller,
    blobs::{BlobError, Blobs},
    error::Refusal,
    now,
    ops::{
        requests::Member,
        retention,
        roster::RosterError,
        uploads::{self, UploadError},
    },
    store::{self, Event, Tx, recordings::Ciphertext},
};

/// Largest sealed share accepted (a share is a few hundred bytes of age file).
const MAX_SEALED_SHARE: usize = 4096;

/// Why a recording operation was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordingError {
    #[error("{0}")]
    InvalidStatement(#[from] quorate_crypto::Error),
    #[error("the manifest must name and be signed by the member uploading it")]
    NotUploader,
    #[error("a different recording already has this ID: make a new manifest with a fresh ID")]
    Exists,
    #[error(
        "the roster changed since the manifest was made: fetch and verify it, then split the key again"
    )]
    RosterChanged,
    #[error(
        "this vault has no policy yet: an admin must set the threshold before anything is uploaded"
    )]
    NoPolicy,
    #[error("the ciphertext cannot be empty")]
    Empty,
    #[error("this server accepts recordings up to {0} bytes")]
    TooLarge(u64),
    #[error("the manifest names {0}, who is not a current member: fetch the roster again")]
    NotOnRoster(String),
    #[error("send exactly one sealed share per member the manifest names")]
    ShareCount,
    #[error("a share is for {0}, whom the manifest does not name")]
    UnnamedHolder(String),
    #[error("a sealed share must be 1 to {MAX_SEALED_SHARE} bytes")]
    ShareSize,
    #[error("two shares are for {0}")]
    TwoShares(String),
    #[error("no such resource")]
    NotFound,
    #[error(
        "legal hold {0} covers this recording: nothing it covers is deleted until a quorum lifts it"
    )]
    Held(String),
    #[error("a recorder uploads recordings but reads none: use a member's device")]
    RecorderCannotRead,
    #[error("send one range within the {0} bytes, as bytes=START-END")]
    BadRange(u64),
    #[error("the stored policy does not verify: {0}")]
    CorruptPolicy(quorate_crypto::Error),
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error("reading the ciphertext failed: {0}")]
    Storage(#[from] BlobError),
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl Refusal for RecordingError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use RecordingError::*;
        Some(match self {
            InvalidStatement(_) | NotUploader | Empty => {
                (StatusCode::BAD_REQUEST, "invalid_statement")
            }
            Exists => (StatusCode::CONFLICT, "recording_exists"),
            RosterChanged => (StatusCode::CONFLICT, "roster_changed"),
            NoPolicy => (StatusCode::CONFLICT, "no_policy"),
            TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            NotOnRoster(_) => (StatusCode::BAD_REQUEST, "not_on_roster"),
            ShareCount | UnnamedHolder(_) | ShareSize | TwoShares(_) => {
                (StatusCode::BAD_REQUEST, "invalid_shares")
            }
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Held(_) => (StatusCode::CONFLICT, "held"),
            RecorderCannotRead => (StatusCode::FORBIDDEN, "members_only"),
            BadRange(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "bad_range"),
            Upload(error) => return error.refusal(),
            CorruptPolicy(_) | Storage(_) | Roster(_) | Store(_) => return None,
        })
    }
}

/// Who may read a recording or what grew from it (`subject`): the vault's members, and a
/// node holding a live job on it; never a recorder, which only uploads.
pub(crate) async fn may_read(
    app: &App,
    who: &Caller,
    vault: VaultId,
    subject: &str,
) -> Result<(), RecordingError> {
    if vault != who.vault_id {
        return Err(RecordingError::NotFound);
    }
    if who.role == PartyRole::Recorder {
        return Err(RecordingError::RecorderCannotRead);
    }
    let Some(node) = who.node_id else {
        return Ok(());
    };
    let mut connection = app.db.connection().await?;
    if store::jobs::leased_on(&mut connection, &node.to_string(), subject, now()).await? {
        Ok(())
    } else {
        Err(RecordingError::NotFound)
    }
}

/// What creating a recording answers: where its upload stands.
#[derive(Debug)]
pub(crate) enum Created {
    /// A new recording; its upload is open at 0.
    New(UploadState),
    /// This manifest was created before (the client lost the answer).
    Again(UploadState),
}

/// Creates a recording from `uploader`'s signed manifest and the members' sealed `shares`,
/// and opens its upload; or, for the uploader's live upload with this ID, completes it.
///
/// The manifest must be signed by the uploader, a current member or recorder, and made
/// against the current roster; every holder it names must be a current member (never a
/// recorder) and get exactly one sealed share; the threshold must meet the vault's policy
/// and the length this server's limit. The same manifest again answers the upload's state,
/// so a client can resume after losing it.
pub(crate) async fn create(
    app: &App,
    uploader: Member<'_>,
    signed: &SignedStatement,
    shares: &[SealedShareUpload],
    now: i64,
) -> Result<Created, RecordingError> {
    let vault = uploader.vault.to_string();
    let mut tx = app.db.begin().await?;
    let roster = app.rosters.verified(&mut tx, uploader.vault).await?;
    let verified = uploaders_manifest(&roster, uploader, signed)?;
    let recording = verified.statement.recording_id.to_string();
    if let Some(existing) = store::recordings::existing(&mut tx, &recording).await? {
        drop(tx);
        return match existing.manifest_digest {
            Some(digest) if existing.vault_id == vault && digest == verified.digest => {
                // Every byte stored but never completed (the server failed on the way): now.
                if let Some(held) = uploads::hold_stored(app, uploader, &recording, now).await? {
                    uploads::finish(app, held).await?;
                }
                Ok(Created::Again(uploads::state(app, &recording).await?))
            }
            None if existing.vault_id == vault && existing.uploader == uploader.fingerprint => {
                complete_live(app, uploader, signed, shares, now).await
            }
            _ => Err(RecordingError::Exists),
        };
    }
    let expires_at = now + app.config.upload_ttl;
    let statement = signed.to_bytes();
    let new = recording_row(uploader, &vault, &recording, &statement, &verified, now);
    check_new(app, &mut tx, &roster, &new, &verified.statement, shares).await?;
    store::recordings::insert(&mut tx, &new).await?;
    store_shares(&mut tx, &recording, &verified.statement, shares).await?;
    store::uploads::open(&mut tx, &recording, Some(new.ciphertext_len), expires_at).await?;
    audit_created(&mut tx, uploader, &new);
    tx.commit().await?;
    let length = new.ciphertext_len;
    tracing::info!(vault = %vault, recording = %recording, bytes = length, "recording created, upload open");
    Ok(Created::New(UploadState {
        upload_url: uploads::upload_url(&recording),
        recording_id: recording,
        upload_length: Some(length),
        upload_offset: 0,
        expires_at,
    }))
}

/// Opens `uploader`'s live upload of `recording`: its ciphertext is uploaded as it is made,
/// and its manifest, sent to [`create`] when recording stops, completes it. Opening the same
/// live upload again answers its state.
pub(crate) async fn open_live(
    app: &App,
    uploader: Member<'_>,
    recording: RecordingId,
    now: i64,
) -> Result<Created, RecordingError> {
    let vault = uploader.vault.to_string();
    let recording = recording.to_string();
    let mut tx = app.db.begin().await?;
    // Refused now rather than when recording stops, with the meeting over.
    newest_policy(&mut tx, &vault)
        .await?
        .ok_or(RecordingError::NoPolicy)?;
    let expires_at = now + app.config.upload_ttl;
    if !store::recordings::insert_live(&mut tx, &recording, &vault, uploader.fingerprint, now)
        .await?
    {
        drop(tx);
        return live_again(app, uploader, &recording).await;
    }
    store::uploads::open(&mut tx, &recording, None, expires_at).await?;
    tx.audit(
        uploader.vault,
        now,
        Event {
            actor: uploader.fingerprint,
            action: "recording.opened",
            subject: &recording,
            statement: None,
        },
    );
    tx.commit().await?;
    tracing::info!(vault = %vault, recording = %recording, "live upload open");
    Ok(Created::New(UploadState {
        upload_url: uploads::upload_url(&recording),
        recording_id: recording,
        upload_length: None,
        upload_offset: 0,
        expires_at,
    }))
}

/// Opening a live upload whose ID is taken: its state when it is the caller's live upload
/// (opened before, the answer lost), else refused.
async fn live_again(
    app: &App,
    uploader: Member<'_>,
    recording: &str,
) -> Result<Created, RecordingError> {
    let mut connection = app.db.connection().await?;
    let existing = store::recordings::existing(&mut connection, recording).await?;
    drop(connection);
    let live = existing.is_some_and(|existing| {
        existing.vault_id == uploader.vault.to_string()
            && existing.uploader == uploader.fingerprint
            && existing.manifest_digest.is_none()
    });
    if !live {
        return Err(RecordingError::Exists);
    }
    Ok(Created::Again(uploads::state(app, recording).await?))
}

/// Completes `uploader`'s live upload with its manifest and sealed shares, checked as a new
/// recording's are: the manifest must name exactly the bytes stored, and the ciphertext's
/// SHA-256 must be the manifest's (else the recording is discarded, as after a last PATCH).
/// No PATCH runs meanwhile; a refused manifest leaves the upload as it was.
async fn complete_live(
    app: &App,
    uploader: Member<'_>,
    signed: &SignedStatement,
    shares: &[SealedShareUpload],
    now: i64,
) -> Result<Created, RecordingError> {
    let vault = uploader.vault.to_string();
    let statement = signed.to_bytes();
    let claimed = signed.verify::<RecordingManifest>()?.statement;
    let recording = claimed.recording_id.to_string();
    let held = uploads::hold_live(app, uploader, &recording, claimed.ciphertext_len, now).await?;
    let stored = async {
        let mut tx = app.db.begin().await?;
        let roster = app.rosters.verified(&mut tx, uploader.vault).await?;
        let verified = uploaders_manifest(&roster, uploader, signed)?;
        let new = recording_row(uploader, &vault, &recording, &statement, &verified, now);
        check_new(app, &mut tx, &roster, &new, &verified.statement, shares).await?;
        if !store::recordings::set_manifest(&mut tx, &new).await? {
            return Err(RecordingError::Exists);
        }
        store_shares(&mut tx, &recording, &verified.statement, shares).await?;
        if !store::uploads::set_length(&mut tx, &recording, held.token(), new.ciphertext_len)
            .await?
        {
            return Err(UploadError::LostHold.into());
        }
        audit_created(&mut tx, uploader, &new);
        tx.commit().await?;
        Ok(new.ciphertext_len)
    }
    .await;
    let length = match stored {
        Ok(length) => length,
        Err(refused) => {
            held.release(app).await;
            return Err(refused);
        }
    };
    uploads::finish(app, held).await?;
    tracing::info!(vault = %vault, recording = %recording, bytes = length, "live recording complete");
    Ok(Created::New(UploadState {
        upload_url: uploads::upload_url(&recording),
        recording_id: recording,
        upload_length: Some(length),
        upload_offset: length,
        expires_at: 0,
    }))
}

/// The row a verified manifest makes.
fn recording_row<'a>(
    uploader: Member<'a>,
    vault: &'a str,
    id: &'a str,
    statement: &'a [u8],
    verified: &'a Verified<RecordingManifest>,
    now: i64,
) -> store::recordings::NewRecording<'a> {
    let manifest = &verified.statement;
    store::recordings::NewRecording {
        id,
        vault,
        uploader: uploader.fingerprint,
        manifest: statement,
        manifest_digest: &verified.digest,
        ciphertext_len: manifest.ciphertext_len,
        threshold_k: manifest.split.threshold.k(),
        threshold_n: manifest.split.threshold.n(),
        now,
    }
}

/// Checks a new recording against the vault ([`check_manifest`]) and its sealed shares'
/// count.
async fn check_new(
    app: &App,
    tx: &mut Tx,
    roster: &Roster,
    new: &store::recordings::NewRecording<'_>,
    manifest: &RecordingManifest,
    shares: &[SealedShareUpload],
) -> Result<(), RecordingError> {
    check_manifest(app, tx, roster, new.vault, manifest).await?;
    if shares.len() != manifest.split.holders.len() {
        return Err(RecordingError::ShareCount);
    }
    Ok(())
}

fn audit_created(tx: &mut Tx, uploader: Member<'_>, new: &store::recordings::NewRecording<'_>) {
    tx.audit(
        uploader.vault,
        new.now,
        Event::by(
            uploader.fingerprint,
            "recording.created",
            new.id,
            new.manifest,
        ),
    );
}

/// The manifest `signed`, verified against the roster: signed by `uploader` (a member or a
/// recorder) and naming them as its uploader.
fn uploaders_manifest(
    roster: &Roster,
    uploader: Member<'_>,
    signed: &SignedStatement,
) -> Result<Verified<RecordingManifest>, RecordingError> {
    let (verified, signer) = roster.verify_by_uploader::<RecordingManifest>(signed)?;
    if signer.fingerprint.to_hex() != uploader.fingerprint
        || verified.statement.uploader != signer.fingerprint
    {
        return Err(RecordingError::NotUploader);
    }
    Ok(verified)
}

/// Checks a new recording's manifest against the vault: made against the current roster,
/// with a threshold the vault's policy allows, a length this server accepts, and a share for
/// current members only.
async fn check_manifest(
    app: &App,
    tx: &mut Tx,
    roster: &Roster,
    vault: &str,
    manifest: &RecordingManifest,
) -> Result<(), RecordingError> {
    if manifest.roster_head != roster.head() {
        return Err(RecordingError::RosterChanged);
    }
    let policy = newest_policy(tx, vault)
        .await?
        .ok_or(RecordingError::NoPolicy)?;
    policy.allows(manifest.split.threshold)?;
    if manifest.ciphertext_len == 0 {
        return Err(RecordingError::Empty);
    }
    let limit = app.config.max_recording_bytes;
    if manifest.ciphertext_len > limit {
        return Err(RecordingError::TooLarge(limit));
    }
    check_split(roster, manifest)
}

/// The vault's newest policy as stored (the server verified it when it was set).
pub(crate) async fn newest_policy(
    tx: &mut Tx,
    vault: &str,
) -> Result<Option<VaultPolicy>, RecordingError> {
    let Some(bytes) = store::policies::newest(tx, vault).await? else {
        return Ok(None);
    };
    SignedStatement::from_bytes(&bytes)
        .and_then(|signed| signed.verify::<VaultPolicy>())
        .map(|verified| Some(verified.statement))
        .map_err(RecordingError::CorruptPolicy)
}

/// Every holder of a share is a current member (the crypto crate has checked they are
/// distinct and number n).
fn check_split(roster: &Roster, manifest: &RecordingManifest) -> Result<(), RecordingError> {
    match manifest
        .split
        .holders
        .iter()
        .find(|holder| roster.member(holder).is_none())
    {
        Some(stranger) => Err(RecordingError::NotOnRoster(stranger.short())),
        None => Ok(()),
    }
}

/// Stores the sealed shares, each for a member the manifest names (its share's number is
/// their place in the manifest), one per member.
async fn store_shares(
    tx: &mut Tx,
    recording: &str,
    manifest: &RecordingManifest,
    shares: &[SealedShareUpload],
) -> Result<(), RecordingError> {
    for upload in shares {
        let member = upload.member.to_ascii_lowercase();
        let Some(place) = manifest
            .split
            .holders
            .iter()
            .position(|holder| holder.to_hex() == member)
        else {
            return Err(RecordingError::UnnamedHolder(member));
        };
        let sealed = checked_sealed(&upload.sealed)?;
        if !store::recordings::insert_share(tx, recording, &member, place + 1, sealed).await? {
            return Err(RecordingError::TwoShares(member));
        }
    }
    Ok(())
}

fn checked_sealed(sealed: &[u8]) -> Result<&[u8], RecordingError> {
    if sealed.is_empty() || sealed.len() > MAX_SEALED_SHARE {
        return Err(RecordingError::ShareSize);
    }
    Ok(sealed)
}

/// Complete recording `recording` of `vault`'s ciphertext, or the one range `range` (a
/// `Range` header's value) asks for.
pub(crate) async fn download(
    app: &App,
    vault: &str,
    recording: &str,
    range: Option<&HeaderValue>,
) -> Result<Download, RecordingError> {
    let mut connection = app.db.connection().await?;
    let ciphertext = store::recordings::complete_ciphertext(&mut connection, vault, recording)
        .await?
        .ok_or(RecordingError::NotFound)?;
    drop(connection);
    let name = store::recordings::object_name(vault, recording);
    open_download(&app.blobs, &name, &ciphertext, range).await
}

/// A stored ciphertext on its way out: the whole of it or one range (the routes answer it,
/// [`crate::recordings`]).
pub(crate) struct Download {
    pub stream: BoxStream<'static, object_store::Result<Bytes>>,
    /// The whole ciphertext's length.
    pub size: u64,
    pub range: Option<Range<u64>>,
    pub etag: String,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("size", &self.size)
            .field("range", &self.range)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// Opens object `name`, which holds `ciphertext`, to send it whole or the one range `range`
/// (a `Range` header's value) asks for.
pub(crate) async fn open_download(
    blobs: &Blobs,
    name: &str,
    ciphertext: &Ciphertext,
    range: Option<&HeaderValue>,
) -> Result<Download, RecordingError> {
    let size = ciphertext.ciphertext_len as u64;
    let range = range
        .map(|value| parse_range(value, size).ok_or(RecordingError::BadRange(size)))
        .transpose()?;
    let (stream, _) = blobs.get_stream(name, range.clone()).await?;
    Ok(Download {
        stream,
        size,
        range,
        etag: format!("\"{}\"", hex::encode(&ciphertext.manifest_digest)),
    })
}

/// Parses a single `bytes=` range against `size`; `None` when it is malformed, not one
/// range, or outside the object.
fn parse_range(value: &HeaderValue, size: u64) -> Option<Range<u64>> {
    let ranges = http_range_header::parse_range_header(value.to_str().ok()?)
        .ok()?
        .validate(size)
        .ok()?;
    match ranges.as_slice() {
        // The crate clamps an end past the object to its last byte, even for an empty one.
        [range] if range.start() <= range.end() && *range.end() < size => {
            Some(*range.start()..range.end() + 1)
        }
        _ => None,
    }
}

/// Deletes `admin`'s vault's recording `recording` and everything grown from it, rows and
/// objects: its ciphertext, every sealed share (without k shares the key is gone:
/// crypto-shredding), its upload, its transcripts with their shares, their released copies
/// with the sealed release keys and the index, and every request on any of them with its
/// votes and job.
pub(crate) async fn delete(
    app: &App,
    admin: Member<'_>,
    recording: &RecordingId,
    now: i64,
) -> Result<(), RecordingError> {
    let vault = admin.vault.to_string();
    let recording = recording.to_string();
    let mut tx = app.db.begin().await?;
    // So that a hold placed meanwhile is seen (`retention::vote_hold` takes it too).
    store::vaults::lock(&mut tx, &vault).await?;
    // Then, so that no job can add a transcript once the rows below are read.
    store::recordings::delete_jobs(&mut tx, &recording).await?;
    if !store::recordings::exists(&mut tx, &vault, &recording).await? {
        return Err(RecordingError::NotFound);
    }
    if let Some(hold) = retention::hold_on(&mut tx, &vault, &recording).await? {
        return Err(RecordingError::Held(hold));
    }
    let upload = store::uploads::delete(&mut tx, &recording).await?;
    let transcripts = store::recordings::transcript_objects(&mut tx, &recording).await?;
    store::recordings::delete_with_descendants(&mut tx, &recording).await?;
    tx.audit(
        admin.vault,
        now,
        Event {
            actor: admin.fingerprint,
            action: "recording.deleted",
            subject: &recording,
            statement: None,
        },
    );
    tx.commit().await?;
    // The rows are gone first: if removing the bytes fails now, nothing refers to them and
    // the operator's log says which object to remove.
    uploads::discard_storage(app, &vault, &recording, upload).await;
    let objects = std::iter::once(store::recordings::object_name(&vault, &recording))
        .chain(transcripts)
        .collect();
    remove_objects(app, objects).await;
    tracing::info!(vault = %vault, recording = %recording, "recording deleted");
    Ok(())
}

/// Removes the objects of rows already deleted (an empty name is a row whose object was
/// never written). A failure is logged: nothing refers to the object any more, and the
/// operator's log says which to remove.
pub(crate) async fn remove_objects(app: &App, objects: Vec<String>) {
    for object in objects.into_iter().filter(|object| !object.is_empty()) {
        if let Err(error) = app.blobs.delete(&object).await {
            tracing::error!(%error, object = %object, "deleted, but this object could not be removed; remove it by hand");
        }
    }
}
