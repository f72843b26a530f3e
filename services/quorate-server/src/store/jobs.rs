//! The job queue: `jobs`, one per quorate request.

use sqlx::AnyConnection;

/// Whether `node` holds a live lease (at `now`) on a job whose request is about `subject`.
pub(crate) async fn leased_on(
    connection: &mut AnyConnection,
    node: &str,
    subject: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let job = sqlx::query(
        "SELECT 1 FROM jobs j JOIN unlock_requests r ON r.id = j.request_id
         WHERE j.node_id = $1 AND r.subject_id = $2 AND j.status = 'leased' AND j.lease_expires_at > $3",
    )
    .bind(node)
    .bind(subject)
    .bind(now)
    .fetch_optional(connection)
    .await?;
    Ok(job.is_some())
}

/// Queues the job that carries out quorate request `request` on `node`.
pub(crate) async fn queue(
    connection: &mut AnyConnection,
    request: &str,
    vault: &str,
    node: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO jobs (request_id, vault_id, node_id, status, created_at, updated_at)
         VALUES ($1, $2, $3, 'queued', $4, $4)",
    )
    .bind(request)
    .bind(vault)
    .bind(node)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}
