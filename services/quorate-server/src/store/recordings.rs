//! Recordings and their sealed shares: `recordings`, `recording_shares`.

use sqlx::AnyConnection;

/// The threshold of complete recording `recording` of `vault`, `None` when there is no
/// such complete recording.
pub(crate) async fn complete_threshold(
    connection: &mut AnyConnection,
    vault: &str,
    recording: &str,
) -> Result<Option<u8>, sqlx::Error> {
    let threshold: Option<i32> = sqlx::query_scalar(
        "SELECT threshold_k FROM recordings WHERE vault_id = $1 AND id = $2 AND status = 'complete'",
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
