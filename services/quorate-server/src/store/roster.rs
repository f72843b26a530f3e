//! The roster chain as stored: `roster_entries`, one signed entry per sequence number.

use sqlx::AnyConnection;

/// The last entry of a vault's chain: its sequence number and digest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct Head {
    pub sequence: i64,
    pub digest: Vec<u8>,
}

/// One stored entry.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EntryRow {
    pub statement: Vec<u8>,
    pub digest: Vec<u8>,
}

/// The head of `vault`'s chain, `None` before its genesis.
pub(crate) async fn head(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Option<Head>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sequence, digest FROM roster_entries WHERE vault_id = $1
         ORDER BY sequence DESC LIMIT 1",
    )
    .bind(vault)
    .fetch_optional(connection)
    .await
}

/// `vault`'s entries from `from` on, in chain order.
pub(crate) async fn entries_from(
    connection: &mut AnyConnection,
    vault: &str,
    from: i64,
) -> Result<Vec<EntryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT statement, digest FROM roster_entries
         WHERE vault_id = $1 AND sequence >= $2 ORDER BY sequence",
    )
    .bind(vault)
    .bind(from)
    .fetch_all(connection)
    .await
}

/// Stores an entry at `sequence`; `false` when that place is already taken (someone else
/// appended first).
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    vault: &str,
    sequence: u64,
    statement: &[u8],
    digest: &[u8; 32],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let stored = sqlx::query(
        "INSERT INTO roster_entries (vault_id, sequence, statement, digest, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(vault)
    .bind(sequence as i64)
    .bind(statement)
    .bind(digest.as_slice())
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// `vault`'s genesis entry, `None` before the first admin enrols.
pub(crate) async fn genesis(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Option<EntryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT statement, digest FROM roster_entries WHERE vault_id = $1 AND sequence = 0",
    )
    .bind(vault)
    .fetch_optional(connection)
    .await
}
