//! Members as the signed roster describes them: `members`, and their `sessions` when they
//! are removed.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use quorate_api::{MemberRole, MemberStatus, MemberView, PublicKeys};
use quorate_crypto::PublicIdentity;
use sqlx::AnyConnection;

/// A member to store.
#[derive(Debug)]
pub(crate) struct NewMember<'a> {
    pub vault: &'a str,
    pub public: &'a PublicIdentity,
    pub name: &'a str,
    pub role: MemberRole,
    /// `Pending` or `Active`.
    pub status: MemberStatus,
    pub now: i64,
}

/// Stores a member; `false` when these keys are enrolled in the vault already.
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    member: &NewMember<'_>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO members (vault_id, fingerprint, verifying_key, recipient, name, role, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(member.vault)
    .bind(member.public.fingerprint().to_hex())
    .bind(member.public.verifying_key.as_bytes().as_slice())
    .bind(member.public.recipient.to_string())
    .bind(member.name)
    .bind(member.role.as_str())
    .bind(member.status.as_str())
    .bind(member.now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The role `fingerprint` enrolled or was signed on with in `vault` (`None`: never enrolled).
pub(crate) async fn enrolled_role(
    connection: &mut AnyConnection,
    vault: &str,
    fingerprint: &str,
) -> Result<Option<MemberRole>, sqlx::Error> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM members WHERE vault_id = $1 AND fingerprint = $2")
            .bind(vault)
            .bind(fingerprint)
            .fetch_optional(connection)
            .await?;
    role.map(|role| {
        role.parse()
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))
    })
    .transpose()
}

/// Makes the pending or removed member `fingerprint` active with `role` and `name`; `false`
/// when nobody enrolled with those keys.
pub(crate) async fn activate(
    connection: &mut AnyConnection,
    vault: &str,
    fingerprint: &str,
    role: MemberRole,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE members SET status = 'active', role = $1, name = $2
         WHERE vault_id = $3 AND fingerprint = $4 AND status IN ('pending', 'removed')",
    )
    .bind(role.as_str())
    .bind(name)
    .bind(vault)
    .bind(fingerprint)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Marks member `fingerprint` removed and ends their sessions.
pub(crate) async fn remove(
    connection: &mut AnyConnection,
    vault: &str,
    fingerprint: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE members SET status = 'removed' WHERE vault_id = $1 AND fingerprint = $2")
        .bind(vault)
        .bind(fingerprint)
        .execute(&mut *connection)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE vault_id = $1 AND fingerprint = $2")
        .bind(vault)
        .bind(fingerprint)
        .execute(connection)
        .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct MemberRow {
    fingerprint: String,
    name: String,
    #[sqlx(try_from = "String")]
    role: MemberRole,
    #[sqlx(try_from = "String")]
    status: MemberStatus,
    recipient: String,
    verifying_key: Vec<u8>,
}

impl From<MemberRow> for MemberView {
    fn from(row: MemberRow) -> Self {
        Self {
            fingerprint: row.fingerprint,
            name: row.name,
            role: row.role,
            status: row.status,
            keys: PublicKeys {
                recipient: row.recipient,
                verifying_key: URL_SAFE_NO_PAD.encode(row.verifying_key),
            },
        }
    }
}

/// `vault`'s members (only those of `status`, if given), oldest first.
pub(crate) async fn list(
    connection: &mut AnyConnection,
    vault: &str,
    status: Option<MemberStatus>,
) -> Result<Vec<MemberView>, sqlx::Error> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT fingerprint, name, role, status, recipient, verifying_key FROM members
         WHERE vault_id = $1 AND ($2 = '' OR status = $2) ORDER BY created_at, fingerprint",
    )
    .bind(vault)
    .bind(status.map(MemberStatus::as_str).unwrap_or_default())
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(MemberView::from).collect())
}
