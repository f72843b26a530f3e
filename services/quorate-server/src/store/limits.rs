//! Failed sign-ins per client address: `sign_in_failures`, one row per address with the
//! window it is in, shared by every replica.

use sqlx::AnyConnection;

/// The failures counted for `address` in the window that began after `since`, with when that
/// window began; `None` when there are none.
pub(crate) async fn failures_since(
    connection: &mut AnyConnection,
    address: &str,
    since: i64,
) -> Result<Option<(i64, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT window_started, failures FROM sign_in_failures
         WHERE address = $1 AND window_started > $2",
    )
    .bind(address)
    .bind(since)
    .fetch_optional(connection)
    .await
}

/// Counts one failure for `address` at `now`, in its window if that began after `since`,
/// else in a new one beginning now. One statement, so replicas counting at once add up.
pub(crate) async fn record_failure(
    connection: &mut AnyConnection,
    address: &str,
    now: i64,
    since: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sign_in_failures (address, window_started, failures) VALUES ($1, $2, 1)
         ON CONFLICT (address) DO UPDATE SET
           failures = CASE WHEN sign_in_failures.window_started > $3
                           THEN sign_in_failures.failures + 1 ELSE 1 END,
           window_started = CASE WHEN sign_in_failures.window_started > $3
                                 THEN sign_in_failures.window_started ELSE $2 END",
    )
    .bind(address)
    .bind(now)
    .bind(since)
    .execute(connection)
    .await?;
    Ok(())
}

/// Removes windows that began at or before `since`; returns how many.
pub(crate) async fn sweep(
    connection: &mut AnyConnection,
    since: i64,
) -> Result<usize, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM sign_in_failures WHERE window_started <= $1")
        .bind(since)
        .execute(connection)
        .await?
        .rows_affected();
    Ok(removed as usize)
}
