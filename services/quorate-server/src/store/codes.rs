//! One-time enrolment codes, stored as hashes: `enrolment_codes`.

use quorate_api::CodePurpose;
use sqlx::AnyConnection;

/// Withdraws `vault`'s unused first-admin codes and stores the hash of a fresh one.
pub(crate) async fn replace_first_admin(
    connection: &mut AnyConnection,
    vault: &str,
    hash: &[u8],
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM enrolment_codes WHERE vault_id = $1 AND purpose = 'first-admin' AND used_at IS NULL",
    )
    .bind(vault)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO enrolment_codes (code_hash, vault_id, purpose, created_at, expires_at)
         VALUES ($1, $2, 'first-admin', $3, $4)",
    )
    .bind(hash)
    .bind(vault)
    .bind(now)
    .bind(expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Stores the hash of a one-time code for `purpose`.
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    hash: &[u8],
    vault: &str,
    purpose: CodePurpose,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO enrolment_codes (code_hash, vault_id, purpose, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(vault)
    .bind(purpose.as_str())
    .bind(now)
    .bind(expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Marks the unused, unexpired code with `hash` for `purpose` used; returns its vault, `None`
/// when there is no such code. Inside the enrolment's transaction, so a failed enrolment
/// leaves the code usable.
pub(crate) async fn redeem(
    connection: &mut AnyConnection,
    hash: &[u8],
    purpose: CodePurpose,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE enrolment_codes SET used_at = $1
         WHERE code_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
         RETURNING vault_id",
    )
    .bind(now)
    .bind(hash)
    .bind(purpose.as_str())
    .fetch_optional(connection)
    .await
}

/// What an unused, unexpired code with `hash` is for, without using it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CodeRow {
    pub vault_id: String,
    #[sqlx(try_from = "String")]
    pub purpose: CodePurpose,
    pub expires_at: i64,
}

/// The unused, unexpired code with `hash`, `None` when there is none.
pub(crate) async fn lookup(
    connection: &mut AnyConnection,
    hash: &[u8],
    now: i64,
) -> Result<Option<CodeRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT vault_id, purpose, expires_at FROM enrolment_codes
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(connection)
    .await
}
