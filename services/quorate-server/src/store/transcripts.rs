//! Sealed transcripts and their shares: `transcripts`, `transcript_shares`.

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
