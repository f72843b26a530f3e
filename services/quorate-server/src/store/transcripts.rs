//! Sealed transcripts and their shares: `transcripts`, `transcript_shares`.

use quorate_api::Base64;
use quorate_api::TranscriptView;
use sqlx::AnyConnection;

/// A sealed transcript as a release request needs it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ReleaseSubject {
    /// The signed transcript manifest.
    pub manifest: Vec<u8>,
    /// Whether a released copy exists.
    pub released: Option<String>,
}

/// Transcript `transcript` of `vault` with whether it is released, `None` when there is
/// no such transcript.
pub(crate) async fn release_subject(
    connection: &mut AnyConnection,
    vault: &str,
    transcript: &str,
) -> Result<Option<ReleaseSubject>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.manifest, r.transcript_id AS released FROM transcripts t
         LEFT JOIN released_transcripts r ON r.transcript_id = t.id
         WHERE t.vault_id = $1 AND t.id = $2",
    )
    .bind(vault)
    .bind(transcript)
    .fetch_optional(connection)
    .await
}

/// The sealed transcript a release job releases.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ReleaseTarget {
    pub id: String,
    pub recording_id: String,
    /// The digest of its signed manifest.
    pub manifest_digest: Vec<u8>,
    /// Whether a released copy exists.
    pub released: Option<String>,
}

/// The transcript request `request` asks to release, `None` when it is no release request.
pub(crate) async fn release_target(
    connection: &mut AnyConnection,
    request: &str,
) -> Result<Option<ReleaseTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, t.recording_id, t.manifest_digest, d.transcript_id AS released FROM unlock_requests r
         JOIN transcripts t ON t.id = r.subject_id LEFT JOIN released_transcripts d ON d.transcript_id = t.id
         WHERE r.id = $1 AND r.purpose = 'release-transcript'",
    )
    .bind(request)
    .fetch_optional(connection)
    .await
}

#[derive(Debug, sqlx::FromRow)]
struct TranscriptRow {
    id: String,
    recording_id: String,
    request_id: String,
    node_id: String,
    manifest: Vec<u8>,
    ciphertext_len: i64,
    created_at: i64,
}

const TRANSCRIPT_COLUMNS: &str =
    "id, recording_id, request_id, node_id, manifest, ciphertext_len, created_at";

impl From<TranscriptRow> for TranscriptView {
    fn from(row: TranscriptRow) -> Self {
        Self {
            transcript_id: row.id,
            recording_id: row.recording_id,
            request_id: row.request_id,
            node_id: row.node_id,
            manifest: Base64::from(row.manifest),
            ciphertext_len: row.ciphertext_len as u64,
            created_at: row.created_at,
        }
    }
}

/// Transcript `transcript`, `None` when there is none.
pub(crate) async fn get(
    connection: &mut AnyConnection,
    transcript: &str,
) -> Result<Option<TranscriptView>, sqlx::Error> {
    let row: Option<TranscriptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSCRIPT_COLUMNS} FROM transcripts WHERE id = $1"
    )))
    .bind(transcript)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(TranscriptView::from))
}

/// `vault`'s sealed transcripts, newest first.
pub(crate) async fn list(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<TranscriptView>, sqlx::Error> {
    let rows: Vec<TranscriptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSCRIPT_COLUMNS} FROM transcripts WHERE vault_id = $1 ORDER BY created_at DESC, id"
    )))
    .bind(vault)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(TranscriptView::from).collect())
}

/// What a sealed transcript and a released copy both store: which transcript it is, where
/// it comes from, the node's signed manifest that describes it, and the object holding it.
#[derive(Debug)]
pub(crate) struct Described<'a> {
    pub transcript: &'a str,
    pub vault: &'a str,
    pub recording: &'a str,
    pub request: &'a str,
    pub manifest: &'a [u8],
    pub manifest_digest: &'a [u8],
    pub ciphertext_len: u64,
    pub object: &'a str,
    pub now: i64,
}

/// A sealed transcript to store, made by `node`.
#[derive(Debug)]
pub(crate) struct NewTranscript<'a> {
    pub described: Described<'a>,
    pub node: &'a str,
}

/// Stores a sealed transcript; `false` when one with its ID exists (it is never replaced).
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    transcript: &NewTranscript<'_>,
) -> Result<bool, sqlx::Error> {
    let described = &transcript.described;
    let inserted = sqlx::query(
        "INSERT INTO transcripts (id, vault_id, recording_id, request_id, node_id, manifest, manifest_digest, ciphertext_len, created_at, object)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(described.transcript)
    .bind(described.vault)
    .bind(described.recording)
    .bind(described.request)
    .bind(transcript.node)
    .bind(described.manifest)
    .bind(described.manifest_digest)
    .bind(described.ciphertext_len as i64)
    .bind(described.now)
    .bind(described.object)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Stores `member`'s sealed share (at 0-based `index` in the manifest's split).
pub(crate) async fn insert_share(
    connection: &mut AnyConnection,
    transcript: &str,
    member: &str,
    index: usize,
    sealed: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO transcript_shares (transcript_id, member, share_index, sealed) VALUES ($1, $2, $3, $4)",
    )
    .bind(transcript)
    .bind(member)
    .bind(index as i32 + 1)
    .bind(sealed)
    .execute(connection)
    .await?;
    Ok(())
}

/// A member's sealed share of a transcript's key.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Share {
    /// 1-based, as in the manifest.
    pub share_index: i32,
    pub sealed: Vec<u8>,
}

/// `member`'s share of transcript `transcript` of `vault`, `None` when they hold none.
pub(crate) async fn share(
    connection: &mut AnyConnection,
    vault: &str,
    transcript: &str,
    member: &str,
) -> Result<Option<Share>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.share_index, s.sealed FROM transcript_shares s JOIN transcripts t ON t.id = s.transcript_id
         WHERE t.vault_id = $1 AND s.transcript_id = $2 AND s.member = $3",
    )
    .bind(vault)
    .bind(transcript)
    .bind(member)
    .fetch_optional(connection)
    .await
}

/// A stored ciphertext as a download needs it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredObject {
    pub ciphertext_len: i64,
    /// The digest of the signed manifest that describes it (its ETag).
    pub manifest_digest: Vec<u8>,
    /// The object's name.
    pub object: String,
}

/// The object of sealed transcript `transcript` of `vault`, `None` when there is none.
pub(crate) async fn object(
    connection: &mut AnyConnection,
    vault: &str,
    transcript: &str,
) -> Result<Option<StoredObject>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ciphertext_len, manifest_digest, object FROM transcripts WHERE vault_id = $1 AND id = $2",
    )
    .bind(vault)
    .bind(transcript)
    .fetch_optional(connection)
    .await
}
