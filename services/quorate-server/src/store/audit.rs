//! Appending to and reading the hash-chained audit log. Every state change appends its entry
//! inside the transaction that makes the change, so the log and the state never disagree.

use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::AuditEntryView;
use quorate_crypto::{VaultId, audit::AuditEntry};

use super::db::Backend;

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

impl<'a> Event<'a> {
    /// `actor` (a fingerprint) did `action` to `subject`, as `statement` they signed says.
    pub(crate) fn by(
        actor: &'a str,
        action: &'a str,
        subject: &'a str,
        statement: &'a [u8],
    ) -> Self {
        Self {
            actor,
            action,
            subject,
            statement: Some(statement),
        }
    }

    /// The server did `action` to `subject` (a transition that time or a count made).
    pub(crate) fn server(action: &'a str, subject: &'a str) -> Self {
        Self {
            actor: "server",
            action,
            subject,
            statement: None,
        }
    }

    /// An entry of `vault_id`'s chain for this event at `now`, not yet linked (its sequence
    /// number and hashes are set when it is appended).
    pub(super) fn unlinked(&self, vault_id: VaultId, now: i64) -> AuditEntry {
        AuditEntry {
            vault_id,
            seq: 0,
            time: now,
            actor: self.actor.to_owned(),
            action: self.action.to_owned(),
            subject: self.subject.to_owned(),
            statement: self.statement.map(<[u8]>::to_vec),
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }
}

/// Appends `entries` (all of `vault`'s chain, in order) within `connection`'s transaction:
/// links each to the one before and stores them in one statement.
pub(super) async fn append(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
    vault: &str,
    entries: &mut [AuditEntry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    if backend == Backend::Postgres {
        // Appends to one vault's chain take turns (SQLite's single writer already does).
        sqlx::query("SELECT id FROM vaults WHERE id = $1 FOR UPDATE")
            .bind(vault)
            .execute(&mut *connection)
            .await?;
    }
    let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_log WHERE vault_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(vault)
    .fetch_optional(&mut *connection)
    .await?;
    let (mut seq, mut prev_hash) = match last {
        Some((seq, hash)) => (
            seq as u64 + 1,
            hash.try_into()
                .map_err(|_| sqlx::Error::Decode("audit hash is not 32 bytes".into()))?,
        ),
        None => (0, [0u8; 32]),
    };
    for entry in entries.iter_mut() {
        entry.seq = seq;
        entry.prev_hash = prev_hash;
        entry.hash = entry.compute_hash();
        seq += 1;
        prev_hash = entry.hash;
    }
    let rows = (0..entries.len())
        .map(|row| {
            let first = row * 9;
            let places: Vec<String> = (1..=9)
                .map(|column| format!("${}", first + column))
                .collect();
            format!("({})", places.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO audit_log (vault_id, seq, time, actor, action, subject, statement, prev_hash, hash)
         VALUES {rows}"
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for entry in entries.iter() {
        insert = insert
            .bind(vault)
            .bind(entry.seq as i64)
            .bind(entry.time)
            .bind(entry.actor.as_str())
            .bind(entry.action.as_str())
            .bind(entry.subject.as_str())
            .bind(entry.statement.as_deref())
            .bind(entry.prev_hash.as_slice())
            .bind(entry.hash.as_slice());
    }
    insert.execute(&mut *connection).await?;
    Ok(())
}

/// One stored entry.
#[derive(Debug, sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    time: i64,
    actor: String,
    action: String,
    subject: String,
    statement: Option<Vec<u8>>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl From<AuditRow> for AuditEntryView {
    fn from(row: AuditRow) -> Self {
        Self {
            seq: row.seq as u64,
            time: row.time,
            actor: row.actor,
            action: row.action,
            subject: row.subject,
            statement: row.statement.map(|bytes| STANDARD.encode(bytes)),
            prev_hash: hex::encode(row.prev_hash),
            hash: hex::encode(row.hash),
        }
    }
}

/// Up to `limit` entries of `vault`'s chain after `after` (from the start with -1), in order.
pub(crate) async fn page(
    db: &super::Db,
    vault: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditEntryView>, sqlx::Error> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT seq, time, actor, action, subject, statement, prev_hash, hash FROM audit_log
         WHERE vault_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(vault)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(AuditEntryView::from).collect())
}
