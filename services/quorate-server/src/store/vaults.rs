//! Vaults: `vaults`.

use sqlx::AnyConnection;

/// Locks `vault`'s row until the transaction ends, so that changes that must see each
/// other take turns (a no-op write: the row lock on PostgreSQL, the write lock on SQLite,
/// before anything is read).
pub(crate) async fn lock(connection: &mut AnyConnection, vault: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE vaults SET name = name WHERE id = $1")
        .bind(vault)
        .execute(connection)
        .await?;
    Ok(())
}

/// Stores a new vault.
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    vault: &str,
    name: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO vaults (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(vault)
        .bind(name)
        .bind(now)
        .execute(connection)
        .await?;
    Ok(())
}

/// Claims the one-time server step `name`: `true` for the first caller ever, across every
/// server sharing the database.
pub(crate) async fn claim_once(
    connection: &mut AnyConnection,
    name: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO server_once (name, done_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// The vaults whose first admin has not enrolled, oldest first.
pub(crate) async fn awaiting_first_admin(
    connection: &mut AnyConnection,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM vaults v WHERE NOT EXISTS (
             SELECT 1 FROM enrolment_codes c
             WHERE c.vault_id = v.id AND c.purpose = 'first-admin' AND c.used_at IS NOT NULL)
         ORDER BY created_at",
    )
    .fetch_all(connection)
    .await
}
