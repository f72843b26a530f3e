//! Uploads in progress: `uploads` (one per recording still uploading, with its offset and
//! the lock a PATCH holds) and `upload_parts` (the S3 multipart parts stored so far).

use sqlx::AnyConnection;

/// Opens the upload of a new recording of `length` bytes (`None`: deferred until its
/// manifest comes), at offset 0.
pub(crate) async fn open(
    connection: &mut AnyConnection,
    recording: &str,
    length: Option<u64>,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO uploads (recording_id, upload_offset, upload_length, expires_at) VALUES ($1, 0, $2, $3)",
    )
    .bind(recording)
    .bind(length.map(|length| length as i64))
    .bind(expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Sets the length of a live upload that has not got one, held with `token`; `false` when
/// the hold was lost or the length is set.
pub(crate) async fn set_length(
    connection: &mut AnyConnection,
    recording: &str,
    token: &str,
    length: u64,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE uploads SET upload_length = $1
         WHERE recording_id = $2 AND lock_token = $3 AND upload_length IS NULL",
    )
    .bind(length as i64)
    .bind(recording)
    .bind(token)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Where a recording's upload stands; the upload columns are `None` once it is complete, and
/// the length while a live upload waits for its manifest.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Progress {
    pub ciphertext_len: Option<i64>,
    pub upload_offset: Option<i64>,
    pub expires_at: Option<i64>,
}

/// The progress of recording `recording`'s upload (which must exist).
pub(crate) async fn progress(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<Progress, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.ciphertext_len, u.upload_offset, u.expires_at FROM recordings r
         LEFT JOIN uploads u ON u.recording_id = r.id WHERE r.id = $1",
    )
    .bind(recording)
    .fetch_one(connection)
    .await
}

/// An open upload as its uploader sees it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OpenUpload {
    pub vault_id: String,
    pub upload_offset: i64,
    /// `None` while a live upload waits for its manifest.
    pub upload_length: Option<i64>,
    pub expires_at: i64,
    pub locked_until: i64,
}

/// The open upload of `recording` in `vault` by `uploader`, `None` when there is none.
pub(crate) async fn open_by(
    connection: &mut AnyConnection,
    recording: &str,
    vault: &str,
    uploader: &str,
) -> Result<Option<OpenUpload>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.vault_id, u.upload_offset, u.upload_length, u.expires_at, u.locked_until
         FROM uploads u JOIN recordings r ON r.id = u.recording_id
         WHERE u.recording_id = $1 AND r.vault_id = $2 AND r.uploader = $3",
    )
    .bind(recording)
    .bind(vault)
    .bind(uploader)
    .fetch_optional(connection)
    .await
}

/// Takes the upload's lock with `token` until `until`, if it stands at `offset` and no
/// lock is live at `now`; `false` otherwise.
pub(crate) async fn lock(
    connection: &mut AnyConnection,
    recording: &str,
    offset: u64,
    token: &str,
    until: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let locked = sqlx::query(
        "UPDATE uploads SET lock_token = $1, locked_until = $2
         WHERE recording_id = $3 AND upload_offset = $4 AND locked_until < $5",
    )
    .bind(token)
    .bind(until)
    .bind(recording)
    .bind(offset as i64)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(locked == 1)
}

/// Extends the lock held with `token` to `until`.
pub(crate) async fn renew(
    connection: &mut AnyConnection,
    recording: &str,
    token: &str,
    until: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE uploads SET locked_until = $1 WHERE recording_id = $2 AND lock_token = $3")
        .bind(until)
        .bind(recording)
        .bind(token)
        .execute(connection)
        .await?;
    Ok(())
}

/// Releases the lock held with `token`, leaving the upload as it was.
pub(crate) async fn unlock(
    connection: &mut AnyConnection,
    recording: &str,
    token: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE uploads SET lock_token = NULL, locked_until = 0 WHERE recording_id = $1 AND lock_token = $2",
    )
    .bind(recording)
    .bind(token)
    .execute(connection)
    .await?;
    Ok(())
}

/// What a PATCH stored, to record as it releases its lock.
#[derive(Debug)]
pub(crate) struct Advance<'a> {
    pub token: &'a str,
    pub offset: u64,
    /// Bytes of the tail object (S3) that belong to the upload.
    pub tail_len: u64,
    pub expires_at: i64,
}

/// Moves the upload to `advance.offset` and releases the lock; `false` when the lock is no
/// longer held with `advance.token` (nothing changed then).
pub(crate) async fn advance(
    connection: &mut AnyConnection,
    recording: &str,
    advance: &Advance<'_>,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE uploads SET upload_offset = $1, tail_len = $2, expires_at = $3, lock_token = NULL, locked_until = 0
         WHERE recording_id = $4 AND lock_token = $5",
    )
    .bind(advance.offset as i64)
    .bind(advance.tail_len as i64)
    .bind(advance.expires_at)
    .bind(recording)
    .bind(advance.token)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// An upload's S3 multipart state.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Multipart {
    pub multipart_id: Option<String>,
    pub tail_len: i64,
    /// How many parts are stored.
    pub parts: i64,
}

/// The multipart state of `recording`'s upload (which must exist).
pub(crate) async fn multipart(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<Multipart, sqlx::Error> {
    sqlx::query_as(
        "SELECT multipart_id, tail_len, (SELECT COUNT(*) FROM upload_parts p WHERE p.recording_id = u.recording_id) AS parts
         FROM uploads u WHERE recording_id = $1",
    )
    .bind(recording)
    .fetch_one(connection)
    .await
}

/// Records the S3 multipart upload started for `recording`.
pub(crate) async fn set_multipart(
    connection: &mut AnyConnection,
    recording: &str,
    multipart_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE uploads SET multipart_id = $1 WHERE recording_id = $2")
        .bind(multipart_id)
        .bind(recording)
        .execute(connection)
        .await?;
    Ok(())
}

/// Records the parts `part_ids`, numbered from `first_part`.
pub(crate) async fn add_parts(
    connection: &mut AnyConnection,
    recording: &str,
    first_part: usize,
    part_ids: &[String],
) -> Result<(), sqlx::Error> {
    for (index, part) in part_ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO upload_parts (recording_id, part_number, part_id) VALUES ($1, $2, $3)",
        )
        .bind(recording)
        .bind((first_part + index) as i32)
        .bind(part)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// The IDs of `recording`'s stored parts, in order.
pub(crate) async fn parts(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT part_id FROM upload_parts WHERE recording_id = $1 ORDER BY part_number",
    )
    .bind(recording)
    .fetch_all(connection)
    .await
}

/// What a deleted upload left in storage.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Leftover {
    /// The S3 multipart upload to abort, if one was started.
    pub multipart_id: Option<String>,
}

/// Deletes `recording`'s upload rows; returns what it left in storage, `None` when there
/// was no upload.
pub(crate) async fn delete(
    connection: &mut AnyConnection,
    recording: &str,
) -> Result<Option<Leftover>, sqlx::Error> {
    sqlx::query("DELETE FROM upload_parts WHERE recording_id = $1")
        .bind(recording)
        .execute(&mut *connection)
        .await?;
    sqlx::query_as("DELETE FROM uploads WHERE recording_id = $1 RETURNING multipart_id")
        .bind(recording)
        .fetch_optional(connection)
        .await
}

/// An upload left alone past its expiry.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Expired {
    pub recording_id: String,
    pub vault_id: String,
}

/// The uploads expired at `now` and not held by a PATCH.
pub(crate) async fn expired(
    connection: &mut AnyConnection,
    now: i64,
) -> Result<Vec<Expired>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.recording_id, r.vault_id FROM uploads u JOIN recordings r ON r.id = u.recording_id
         WHERE u.expires_at < $1 AND u.locked_until < $1",
    )
    .bind(now)
    .fetch_all(connection)
    .await
}
