//! What the metrics endpoint reads from the database: the state every replica shares (uploads
//! open, jobs by status, the queue's oldest job, leases that lapsed). Counts only, no IDs.

use sqlx::AnyConnection;

/// The shared state at one moment.
#[derive(Debug, Default, sqlx::FromRow)]
pub(crate) struct Snapshot {
    /// Uploads not yet complete: those with a length, and live ones still without one.
    pub uploads_sized: i64,
    pub uploads_live: i64,
    pub jobs_queued: i64,
    pub jobs_leased: i64,
    pub jobs_done: i64,
    pub jobs_failed: i64,
    /// When the oldest queued job was queued, Unix seconds (`None` when none waits).
    pub oldest_queued_at: Option<i64>,
    /// Leased jobs whose lease lapsed at `now` (their node stopped renewing it).
    pub leases_lapsed: i64,
}

/// The shared state at `now`.
pub(crate) async fn snapshot(
    connection: &mut AnyConnection,
    now: i64,
) -> Result<Snapshot, sqlx::Error> {
    sqlx::query_as(
        "SELECT
           (SELECT COUNT(*) FROM uploads WHERE upload_length IS NOT NULL) AS uploads_sized,
           (SELECT COUNT(*) FROM uploads WHERE upload_length IS NULL) AS uploads_live,
           (SELECT COUNT(*) FROM jobs WHERE status = 'queued') AS jobs_queued,
           (SELECT COUNT(*) FROM jobs WHERE status = 'leased') AS jobs_leased,
           (SELECT COUNT(*) FROM jobs WHERE status = 'done') AS jobs_done,
           (SELECT COUNT(*) FROM jobs WHERE status = 'failed') AS jobs_failed,
           (SELECT MIN(created_at) FROM jobs WHERE status = 'queued') AS oldest_queued_at,
           (SELECT COUNT(*) FROM jobs WHERE status = 'leased' AND lease_expires_at < $1)
             AS leases_lapsed",
    )
    .bind(now)
    .fetch_one(connection)
    .await
}
