//! Released transcripts and the sealed copies of their release keys:
//! `released_transcripts`, `release_grants`.

use quorate_api::Base64;
use quorate_api::ReleasedView;
use sqlx::AnyConnection;

use super::transcripts::{Described, StoredObject};

#[derive(Debug, sqlx::FromRow)]
struct ReleasedRow {
    transcript_id: String,
    recording_id: String,
    request_id: String,
    manifest: Vec<u8>,
    ciphertext_len: i64,
    created_at: i64,
    key_generation: i64,
}

const RELEASED_COLUMNS: &str =
    "transcript_id, recording_id, request_id, manifest, ciphertext_len, created_at, key_generation";

impl ReleasedRow {
    /// The released transcript as the API shows it, with the members holding its key.
    fn view(self, members: Vec<String>) -> ReleasedView {
        ReleasedView {
            transcript_id: self.transcript_id,
            recording_id: self.recording_id,
            request_id: self.request_id,
            manifest: Base64::from(self.manifest),
            ciphertext_len: self.ciphertext_len as u64,
            members,
            created_at: self.created_at,
            key_generation: self.key_generation as u64,
        }
    }
}

/// A released transcript to store.
#[derive(Debug)]
pub(crate) struct NewRelease<'a> {
    pub described: Described<'a>,
    /// Its length in words (the sum of its postings' term frequencies).
    pub words: i64,
    /// The search key generation its postings are under.
    pub key_generation: i64,
}

/// Stores a released transcript; returns its document number, `None` when the transcript
/// has a released copy already (it is never replaced).
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    release: &NewRelease<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    let described = &release.described;
    let doc = sqlx::query_scalar(
        "INSERT INTO released_transcripts (transcript_id, vault_id, recording_id, request_id, manifest, manifest_digest, ciphertext_len, words, created_at, object, key_generation)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING doc",
    )
    .bind(described.transcript)
    .bind(described.vault)
    .bind(described.recording)
    .bind(described.request)
    .bind(described.manifest)
    .bind(described.manifest_digest)
    .bind(described.ciphertext_len as i64)
    .bind(release.words)
    .bind(described.now)
    .bind(described.object)
    .bind(release.key_generation)
    .fetch_optional(&mut *connection)
    .await?;
    // A release-anchored retention period counts from the first release, which outlives
    // the released copies it counts for.
    sqlx::query(
        "UPDATE recordings SET first_released_at = COALESCE(first_released_at, $2) WHERE id = $1",
    )
    .bind(described.recording)
    .bind(described.now)
    .execute(connection)
    .await?;
    Ok(doc)
}

/// Whether a member's sealed release key replaces one they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantMode {
    /// Stored only when the member holds none.
    FillGap,
    /// Stored in place of any the member holds.
    Replace,
}

/// Stores `member`'s sealed copy of `transcript`'s release key as `mode` says; `false` when
/// it was not stored.
pub(crate) async fn insert_grant(
    connection: &mut AnyConnection,
    (transcript, member): (&str, &str),
    sealed: &[u8],
    mode: GrantMode,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let on_conflict = match mode {
        GrantMode::FillGap => "DO NOTHING",
        GrantMode::Replace => {
            "(transcript_id, member) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at"
        }
    };
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO release_grants (transcript_id, member, sealed, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT {on_conflict}"
    )))
    .bind(transcript)
    .bind(member)
    .bind(sealed)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// `member`'s sealed copy of released transcript `transcript`'s key in `vault`, `None` when
/// none is stored.
pub(crate) async fn grant(
    connection: &mut AnyConnection,
    vault: &str,
    transcript: &str,
    member: &str,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT g.sealed FROM release_grants g JOIN released_transcripts r ON r.transcript_id = g.transcript_id
         WHERE r.vault_id = $1 AND g.transcript_id = $2 AND g.member = $3",
    )
    .bind(vault)
    .bind(transcript)
    .bind(member)
    .fetch_optional(connection)
    .await
}

/// The members holding a sealed copy of `transcript`'s release key, in order.
async fn grant_holders(
    connection: &mut AnyConnection,
    transcript: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT member FROM release_grants WHERE transcript_id = $1 ORDER BY member")
        .bind(transcript)
        .fetch_all(connection)
        .await
}

/// Released transcript `transcript` of `vault`, `None` when there is none.
pub(crate) async fn view(
    connection: &mut AnyConnection,
    vault: &str,
    transcript: &str,
) -> Result<Option<ReleasedView>, sqlx::Error> {
    let row: Option<ReleasedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RELEASED_COLUMNS} FROM released_transcripts WHERE vault_id = $1 AND transcript_id = $2"
    )))
    .bind(vault)
    .bind(transcript)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let members = grant_holders(connection, transcript).await?;
    Ok(Some(row.view(members)))
}

/// `vault`'s released transcripts (of `recording` only, if given), newest first.
pub(crate) async fn list(
    connection: &mut AnyConnection,
    vault: &str,
    recording: Option<&str>,
) -> Result<Vec<ReleasedView>, sqlx::Error> {
    let rows: Vec<ReleasedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RELEASED_COLUMNS} FROM released_transcripts WHERE vault_id = $1 AND ($2 = '' OR recording_id = $2)
         ORDER BY created_at DESC, transcript_id"
    )))
    .bind(vault)
    .bind(recording.unwrap_or_default())
    .fetch_all(&mut *connection)
    .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let members = grant_holders(connection, &row.transcript_id).await?;
        views.push(row.view(members));
    }
    Ok(views)
}

/// The object of released transcript `transcript` of `vault`, `None` when there is none.
pub(crate) async fn object(
    connection: &mut AnyConnection,
    vault: &str,
    transcript: &str,
) -> Result<Option<StoredObject>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ciphertext_len, manifest_digest, object FROM released_transcripts WHERE vault_id = $1 AND transcript_id = $2",
    )
    .bind(vault)
    .bind(transcript)
    .fetch_optional(connection)
    .await
}
