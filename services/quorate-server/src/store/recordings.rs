//! Recordings and their sealed shares: `recordings`, `recording_shares`; the names of their
//! objects; a recording's deletion with every row grown from it, and its shredding by a
//! retention rule in two parts (the key's shares, then the minutes). A shredded recording is
//! neither listed nor read.

use quorate_api::Base64;
use quorate_api::{RecordingView, SealedShare};
use sqlx::AnyConnection;

/// The threshold of complete recording `recording` of `vault`, `None` when there is no
/// such complete recording, or a rule shredded its key or its minutes (a new transcript
/// would bring back what the rule deleted).
pub(crate) async fn complete_threshold(
    connection: &mut AnyConnection,
    vault: &str,
    recording: &str,
) -> Result<Option<u8>, sqlx::Error> {
    let threshold: Option<i32> = sqlx::query_scalar(
        "SELECT threshold_k FROM recordings WHERE vault_id = $1 AND id = $2 AND status = 'complete'
           AND shredded_at IS NULL AND minutes_shredded_at IS NULL",
    )
    .bind(vault)
    .bind(recording)
    .fetch_optional(connection)
    .await?;
    Ok(threshold.map(|k| k as u8))
}

/// The fingerprints of the members who hold a share of `recording`.
pub(crate) async fn share_holders(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT member FROM recording_shares WHERE recording_id = $1")
        .bind(recording)
        .fetch_all(connection)
        .await
}

/// The object holding a recording's ciphertext.
pub(crate) fn object_name(vault: &str, recording: &str) -> String {
    format!("recordings/{vault}/{recording}.age")
}

/// Where a sealed transcript's object is written, under a fresh name (see
/// [`crate::blobs::Blobs::put_fresh`]); its row names it.
pub(crate) fn transcript_object_prefix(vault: &str, transcript: &str) -> String {
    format!("transcripts/{vault}/{transcript}/")
}

/// A recording with this ID, in any vault.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Existing {
    pub vault_id: String,
    pub uploader: String,
    /// `None` while a live upload waits for its manifest.
    pub manifest_digest: Option<Vec<u8>>,
}

/// The recording with ID `recording` in any vault (IDs are global), `None` when there is none.
pub(crate) async fn existing(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<Option<Existing>, sqlx::Error> {
    sqlx::query_as("SELECT vault_id, uploader, manifest_digest FROM recordings WHERE id = $1")
        .bind(recording)
        .fetch_optional(connection)
        .await
}

/// A recording to store (its status is `uploading`).
#[derive(Debug)]
pub(crate) struct NewRecording<'a> {
    pub id: &'a str,
    pub vault: &'a str,
    pub uploader: &'a str,
    pub manifest: &'a [u8],
    pub manifest_digest: &'a [u8],
    pub ciphertext_len: u64,
    pub threshold_k: u8,
    pub threshold_n: u8,
    pub now: i64,
}

/// Stores a new recording, uploading.
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    recording: &NewRecording<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recordings (id, vault_id, uploader, manifest, manifest_digest, ciphertext_len, threshold_k, threshold_n, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'uploading', $9)",
    )
    .bind(recording.id)
    .bind(recording.vault)
    .bind(recording.uploader)
    .bind(recording.manifest)
    .bind(recording.manifest_digest)
    .bind(recording.ciphertext_len as i64)
    .bind(i32::from(recording.threshold_k))
    .bind(i32::from(recording.threshold_n))
    .bind(recording.now)
    .execute(connection)
    .await?;
    Ok(())
}

/// Stores a live recording, uploading without a manifest until recording stops; `false`
/// when a recording with this ID exists (one opened at the same moment, too).
pub(crate) async fn insert_live(
    connection: &mut AnyConnection,
    recording: &str,
    vault: &str,
    uploader: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO recordings (id, vault_id, uploader, status, created_at)
         VALUES ($1, $2, $3, 'uploading', $4) ON CONFLICT DO NOTHING",
    )
    .bind(recording)
    .bind(vault)
    .bind(uploader)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Gives live recording `recording.id` its manifest; `false` when it has one already.
pub(crate) async fn set_manifest(
    connection: &mut AnyConnection,
    recording: &NewRecording<'_>,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE recordings SET manifest = $1, manifest_digest = $2, ciphertext_len = $3,
         threshold_k = $4, threshold_n = $5
         WHERE id = $6 AND vault_id = $7 AND uploader = $8 AND manifest IS NULL",
    )
    .bind(recording.manifest)
    .bind(recording.manifest_digest)
    .bind(recording.ciphertext_len as i64)
    .bind(i32::from(recording.threshold_k))
    .bind(i32::from(recording.threshold_n))
    .bind(recording.id)
    .bind(recording.vault)
    .bind(recording.uploader)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Stores `member`'s sealed share (number `index`, from 1); `false` when they have one.
pub(crate) async fn insert_share(
    connection: &mut AnyConnection,
    recording: &str,
    member: &str,
    index: usize,
    sealed: &[u8],
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO recording_shares (recording_id, member, share_index, sealed)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(recording)
    .bind(member)
    .bind(index as i32)
    .bind(sealed)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

#[derive(Debug, sqlx::FromRow)]
struct RecordingRow {
    id: String,
    uploader: String,
    #[sqlx(try_from = "String")]
    status: quorate_api::RecordingStatus,
    manifest: Vec<u8>,
    ciphertext_len: i64,
    threshold_k: i32,
    threshold_n: i32,
    created_at: i64,
    completed_at: Option<i64>,
}

const RECORDING_COLUMNS: &str = "id, uploader, status, manifest, ciphertext_len, threshold_k, \
     threshold_n, created_at, completed_at";

impl From<RecordingRow> for RecordingView {
    fn from(row: RecordingRow) -> Self {
        Self {
            recording_id: row.id,
            uploader: row.uploader,
            status: row.status,
            manifest: Base64::from(row.manifest),
            ciphertext_len: row.ciphertext_len as u64,
            threshold: row.threshold_k as u8,
            shares: row.threshold_n as u8,
            created_at: row.created_at,
            completed_at: row.completed_at,
        }
    }
}

/// `vault`'s complete recordings, newest first.
pub(crate) async fn list_complete(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<RecordingView>, sqlx::Error> {
    let rows: Vec<RecordingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings WHERE vault_id = $1 AND status = 'complete'
           AND shredded_at IS NULL ORDER BY created_at DESC, id"
    )))
    .bind(vault)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(RecordingView::from).collect())
}

/// Recording `recording` of `vault` if it is complete or `viewer` is uploading it (once it
/// has its manifest), else `None`.
pub(crate) async fn visible(
    connection: &mut AnyConnection,
    vault: &str,
    recording: &str,
    viewer: &str,
) -> Result<Option<RecordingView>, sqlx::Error> {
    let row: Option<RecordingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings
         WHERE vault_id = $1 AND id = $2 AND manifest IS NOT NULL
           AND (status = 'complete' OR uploader = $3) AND shredded_at IS NULL"
    )))
    .bind(vault)
    .bind(recording)
    .bind(viewer)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(RecordingView::from))
}

#[derive(Debug, sqlx::FromRow)]
struct ShareRow {
    share_index: i32,
    sealed: Vec<u8>,
}

/// `member`'s sealed share of complete recording `recording` of `vault`, `None` when they
/// hold none (or there is no such complete recording).
pub(crate) async fn complete_share(
    connection: &mut AnyConnection,
    vault: &str,
    recording: &str,
    member: &str,
) -> Result<Option<SealedShare>, sqlx::Error> {
    let row: Option<ShareRow> = sqlx::query_as(
        "SELECT s.share_index, s.sealed FROM recording_shares s JOIN recordings r ON r.id = s.recording_id
         WHERE r.vault_id = $1 AND s.recording_id = $2 AND s.member = $3 AND r.status = 'complete'
           AND r.shredded_at IS NULL",
    )
    .bind(vault)
    .bind(recording)
    .bind(member)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|row| SealedShare {
        recording_id: recording.to_owned(),
        member: member.to_owned(),
        index: row.share_index as u8,
        sealed: Base64::from(row.sealed),
    }))
}

/// A stored ciphertext as a download needs it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Ciphertext {
    pub ciphertext_len: i64,
    /// The digest of its signed manifest: its ETag.
    pub manifest_digest: Vec<u8>,
}

/// The ciphertext of complete recording `recording` of `vault`, `None` when there is none.
pub(crate) async fn complete_ciphertext(
    connection: &mut AnyConnection,
    vault: &str,
    recording: &str,
) -> Result<Option<Ciphertext>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ciphertext_len, manifest_digest FROM recordings
         WHERE vault_id = $1 AND id = $2 AND status = 'complete' AND shredded_at IS NULL",
    )
    .bind(vault)
    .bind(recording)
    .fetch_optional(connection)
    .await
}

/// A recording being completed: its signed manifest and uploader.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Uploaded {
    pub manifest: Vec<u8>,
    pub uploader: String,
}

/// The manifest and uploader of recording `recording` (which must exist).
pub(crate) async fn uploaded(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<Uploaded, sqlx::Error> {
    sqlx::query_as("SELECT manifest, uploader FROM recordings WHERE id = $1")
        .bind(recording)
        .fetch_one(connection)
        .await
}

/// Marks recording `recording` complete at `now`.
pub(crate) async fn mark_complete(
    connection: &mut AnyConnection,
    recording: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE recordings SET status = 'complete', completed_at = $1 WHERE id = $2")
        .bind(now)
        .bind(recording)
        .execute(connection)
        .await?;
    Ok(())
}

/// Deletes recording `recording` if it is still uploading, with its sealed shares.
pub(crate) async fn delete_unfinished(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<(), sqlx::Error> {
    for sql in [
        "DELETE FROM recording_shares WHERE recording_id = $1",
        "DELETE FROM recordings WHERE id = $1 AND status = 'uploading'",
    ] {
        sqlx::query(sql)
            .bind(recording)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// The requests on a recording (`$1`) and on its transcripts.
const REQUESTS_ON: &str = "SELECT id FROM unlock_requests WHERE subject_id = $1
     OR subject_id IN (SELECT id FROM transcripts WHERE recording_id = $1)";

/// Deletes the jobs of every request on `recording` or its transcripts.
///
/// A recording's deletion does this first. A completion holds its job's row from its first
/// write to its commit (`jobs::finish_job`), so this waits for one in flight and makes any
/// later one find its job gone: no transcript or released copy can be stored for the
/// recording after this. (It is also the first write, which SQLite needs before reads.)
pub(crate) async fn delete_jobs(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM jobs WHERE request_id IN ({REQUESTS_ON})"
    )))
    .bind(recording)
    .execute(connection)
    .await?;
    Ok(())
}

/// Whether `vault` has a recording `recording`, in any state.
pub(crate) async fn exists(
    connection: &mut AnyConnection,
    vault: &str,
    recording: &str,
) -> Result<bool, sqlx::Error> {
    let found = sqlx::query("SELECT 1 FROM recordings WHERE vault_id = $1 AND id = $2")
        .bind(vault)
        .bind(recording)
        .fetch_optional(connection)
        .await?;
    Ok(found.is_some())
}

/// The objects of `recording`'s sealed transcripts and released copies (an empty name for
/// a row whose object was never written).
pub(crate) async fn transcript_objects(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT object FROM transcripts WHERE recording_id = $1
         UNION ALL SELECT object FROM released_transcripts WHERE recording_id = $1",
    )
    .bind(recording)
    .fetch_all(connection)
    .await
}

/// Deletes `recording` and every row grown from it: its sealed shares, its transcripts with
/// their shares, their released copies with the sealed release keys and the index, and every
/// request on any of them with its votes. (The jobs go first: [`delete_jobs`]; the upload
/// with [`super::uploads::delete`].)
pub(crate) async fn delete_with_descendants(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<(), sqlx::Error> {
    shred_minutes(connection, recording).await?;
    shred_key(connection, recording).await?;
    run_each(
        connection,
        recording,
        &["DELETE FROM recordings WHERE id = $1"],
    )
    .await
}

/// Deletes every sealed share of `recording`'s key (those of an open re-share too) and every
/// request on the recording itself, with its votes and job. Its transcripts and released
/// copies stay.
pub(crate) async fn shred_key(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<(), sqlx::Error> {
    let [jobs, votes, requests] =
        requests_and_grown("SELECT id FROM unlock_requests WHERE subject_id = $1");
    let reshares = reshares_and_grown("SELECT id FROM reshares WHERE recording_id = $1");
    let mut statements = vec![jobs.as_str(), votes.as_str(), requests.as_str()];
    statements.extend(reshares.iter().map(String::as_str));
    statements.push("DELETE FROM recording_shares WHERE recording_id = $1");
    run_each(connection, recording, &statements).await
}

/// The deletions of the re-shares `reshares` selects (by ID, with `recording` as `$1`) with
/// everything dealt and sent into them, in the order they must run: an open re-share's
/// sub-shares and new shares are shares of the same key, so they go with the key's shares.
fn reshares_and_grown(reshares: &str) -> [String; 4] {
    [
        format!("DELETE FROM reshare_subshares WHERE reshare_id IN ({reshares})"),
        format!("DELETE FROM reshare_acceptances WHERE reshare_id IN ({reshares})"),
        format!("DELETE FROM reshare_deals WHERE reshare_id IN ({reshares})"),
        format!("DELETE FROM reshares WHERE id IN ({reshares})"),
    ]
}

/// Deletes `recording`'s minutes: its transcripts with their shares (and their re-shares),
/// their released copies with the sealed release keys and their postings, and every request
/// on a transcript with its votes and job.
pub(crate) async fn shred_minutes(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<(), sqlx::Error> {
    let [jobs, votes, requests] = requests_and_grown(
        "SELECT id FROM unlock_requests WHERE subject_id IN \
         (SELECT id FROM transcripts WHERE recording_id = $1)",
    );
    let [subshares, acceptances, deals, reshares] = reshares_and_grown(
        "SELECT id FROM reshares WHERE transcript_id IN \
         (SELECT id FROM transcripts WHERE recording_id = $1)",
    );
    run_each(
        connection,
        recording,
        &[
            jobs.as_str(),
            votes.as_str(),
            requests.as_str(),
            subshares.as_str(),
            acceptances.as_str(),
            deals.as_str(),
            reshares.as_str(),
            "DELETE FROM index_terms WHERE doc IN (SELECT doc FROM released_transcripts WHERE recording_id = $1)",
            "DELETE FROM release_grants WHERE transcript_id IN (SELECT transcript_id FROM released_transcripts WHERE recording_id = $1)",
            "DELETE FROM released_transcripts WHERE recording_id = $1",
            "DELETE FROM transcript_shares WHERE transcript_id IN (SELECT id FROM transcripts WHERE recording_id = $1)",
            "DELETE FROM transcripts WHERE recording_id = $1",
        ],
    )
    .await
}

/// The deletions of the requests `requests` selects (by ID, with `recording` as `$1`) with
/// their jobs and votes, in the order they must run.
fn requests_and_grown(requests: &str) -> [String; 3] {
    [
        format!("DELETE FROM jobs WHERE request_id IN ({requests})"),
        format!("DELETE FROM votes WHERE request_id IN ({requests})"),
        format!("DELETE FROM unlock_requests WHERE id IN ({requests})"),
    ]
}

/// Runs each of `statements`, in order, with `recording` as `$1`.
async fn run_each(
    connection: &mut AnyConnection,
    recording: &str,
    statements: &[&str],
) -> Result<(), sqlx::Error> {
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .bind(recording)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

// Used by jobs and release.

/// The recording a transcription job transcribes.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TranscriptionSubject {
    pub id: String,
    /// The digest of its signed manifest.
    pub manifest_digest: Vec<u8>,
    pub threshold_k: i32,
}

/// The recording request `request` unlocks, `None` when its subject is no recording.
pub(crate) async fn transcription_subject(
    connection: &mut AnyConnection,
    request: &str,
) -> Result<Option<TranscriptionSubject>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.id, m.manifest_digest, m.threshold_k FROM unlock_requests r JOIN recordings m ON m.id = r.subject_id WHERE r.id = $1",
    )
    .bind(request)
    .fetch_optional(connection)
    .await
}

/// Records the threshold of a recording's current sharing (after a re-share).
pub(crate) async fn set_threshold(
    connection: &mut AnyConnection,
    recording: &str,
    k: i32,
    n: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE recordings SET threshold_k = $1, threshold_n = $2 WHERE id = $3")
        .bind(k)
        .bind(n)
        .bind(recording)
        .execute(connection)
        .await?;
    Ok(())
}
