//! The job queue: `jobs`, one per quorate request.

use sqlx::AnyConnection;

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
