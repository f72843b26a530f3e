//! The vault's signed policies: `vault_policies`, one per sequence number.

use sqlx::AnyConnection;

/// `vault`'s newest signed policy, `None` before the first.
pub(crate) async fn newest(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT statement FROM vault_policies WHERE vault_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(vault)
    .fetch_optional(connection)
    .await
}

/// The sequence number `vault`'s next policy must carry.
pub(crate) async fn next_sequence(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(MAX(sequence) + 1, 0) AS next FROM vault_policies WHERE vault_id = $1",
    )
    .bind(vault)
    .fetch_one(connection)
    .await
}

/// Stores a policy at `sequence`; `false` when that place is taken.
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    vault: &str,
    sequence: i64,
    min_threshold: u8,
    statement: &[u8],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let stored = sqlx::query(
        "INSERT INTO vault_policies (vault_id, sequence, min_threshold, statement, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(vault)
    .bind(sequence)
    .bind(i32::from(min_threshold))
    .bind(statement)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(stored == 1)
}
