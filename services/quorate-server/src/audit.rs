//! Appending to and reading the hash-chained audit log. Every state change appends its entry
//! inside the transaction that makes the change, so the log and the state never disagree.

use axum::extract::{Path, State};
use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::AuditEntryView;
use quorate_crypto::{VaultId, audit::AuditEntry};
use serde::Deserialize;
use sqlx::Row;

use crate::paths::VaultPath;
use crate::{
    App,
    auth::Authenticated,
    db::Backend,
    error::{ApiError, ApiQuery},
};

/// What happened, for one audit entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event<'a> {
    /// A fingerprint (hex) or `server`.
    pub actor: &'a str,
    /// What happened (`roster.added`, ...).
    pub action: &'a str,
    /// To what.
    pub subject: &'a str,
    /// The signed statement behind it, if any.
    pub statement: Option<&'a [u8]>,
}

/// Appends one entry to `vault_id`'s chain within `connection`'s transaction.
pub(crate) async fn append(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
    vault_id: VaultId,
    now: i64,
    event: Event<'_>,
) -> Result<(), sqlx::Error> {
    let Event {
        actor,
        action,
        subject,
        statement,
    } = event;
    let vault = vault_id.to_string();
    if backend == Backend::Postgres {
        // Appends to one vault's chain take turns (SQLite's single writer already does).
        sqlx::query("SELECT id FROM vaults WHERE id = $1 FOR UPDATE")
            .bind(&vault)
            .execute(&mut *connection)
            .await?;
    }
    let last = sqlx::query(
        "SELECT seq, hash FROM audit_log WHERE vault_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(&vault)
    .fetch_optional(&mut *connection)
    .await?;
    let (seq, prev_hash) = match last {
        Some(row) => {
            let seq: i64 = row.try_get("seq")?;
            let hash: Vec<u8> = row.try_get("hash")?;
            (
                seq as u64 + 1,
                hash.try_into()
                    .map_err(|_| sqlx::Error::Decode("audit hash is not 32 bytes".into()))?,
            )
        }
        None => (0, [0u8; 32]),
    };
    let mut entry = AuditEntry {
        vault_id,
        seq,
        time: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        statement: statement.map(<[u8]>::to_vec),
        prev_hash,
        hash: [0; 32],
    };
    entry.hash = entry.compute_hash();
    sqlx::query(
        "INSERT INTO audit_log (vault_id, seq, time, actor, action, subject, statement, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&vault)
    .bind(seq as i64)
    .bind(now)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(entry.statement)
    .bind(prev_hash.to_vec())
    .bind(entry.hash.to_vec())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// Entries after this sequence number (from the start without it).
    after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

/// Pages through the vault's audit log in chain order.
///
/// Entries after `after` (from the start without it), at most `limit` (default 100, at most
/// 1000).
#[utoipa::path(
    get, path = "/vaults/{vault}/audit", tag = "audit", security(("session" = [])), operation_id = "audit_log",
    params(VaultPath, Page),
    responses(
        (status = 200, description = "Entries in chain order", body = Vec<quorate_api::AuditEntryView>),
        (status = 400, description = "Limit out of range", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<Vec<AuditEntryView>>, ApiError> {
    who.member_of(&vault)?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 1000",
        ));
    }
    let rows = sqlx::query(
        "SELECT seq, time, actor, action, subject, statement, prev_hash, hash FROM audit_log
         WHERE vault_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(&vault)
    .bind(page.after.unwrap_or(-1))
    .bind(limit)
    .fetch_all(app.db.pool())
    .await?;
    let entries = rows
        .iter()
        .map(|row| {
            Ok(AuditEntryView {
                seq: row.try_get::<i64, _>("seq")? as u64,
                time: row.try_get("time")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                subject: row.try_get("subject")?,
                statement: row
                    .try_get::<Option<Vec<u8>>, _>("statement")?
                    .map(|bytes| STANDARD.encode(bytes)),
                prev_hash: hex::encode(row.try_get::<Vec<u8>, _>("prev_hash")?),
                hash: hex::encode(row.try_get::<Vec<u8>, _>("hash")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(axum::Json(entries))
}
