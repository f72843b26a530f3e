//! Appending to and reading the hash-chained audit log. Every state change appends its entry
//! inside the transaction that makes the change, so the log and the state never disagree.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use quorate_api::{AuditEntryView, Base64};
use quorate_crypto::{VaultId, audit::AuditEntry};
use sqlx::AnyConnection;

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

/// A vault's chain, held by a transaction.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeldChain {
    /// Whether entries of committed changes wait to be linked into it.
    waiting: bool,
}

/// Takes `vault`'s chain for this transaction if no other transaction holds it: `None` when
/// one does (on PostgreSQL; SQLite's single writer always holds it). The lock on the
/// vault's row is the kind an update that keeps the key takes, so rows that merely refer to
/// the vault (a waiting entry, a new request) can still be inserted meanwhile.
///
/// The same statement says whether entries wait, saving a round trip when none do. An
/// entry whose change committed after this statement began is not seen: that change ran
/// alongside this transaction (had this one read anything of it, it would have committed
/// before), so linking it after this transaction's entries keeps the chain in an order the
/// changes could have taken effect in, and its own commit has it linked.
pub(super) async fn try_lock_chain(
    connection: &mut AnyConnection,
    backend: Backend,
    vault: &str,
) -> Result<Option<HeldChain>, sqlx::Error> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT (SELECT MIN(id) FROM audit_pending WHERE vault_id = $1) AS first_waiting
             FROM vaults WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED"
        }
        Backend::Sqlite => {
            "SELECT (SELECT MIN(id) FROM audit_pending WHERE vault_id = $1) AS first_waiting"
        }
    };
    let first_waiting: Option<Option<i64>> = sqlx::query_scalar(sql)
        .bind(vault)
        .fetch_optional(connection)
        .await?;
    Ok(first_waiting.map(|first| HeldChain {
        waiting: first.is_some(),
    }))
}

/// Takes `vault`'s chain for this transaction, waiting for another that holds it (a no-op
/// write on SQLite takes its write lock before anything is read).
async fn lock_chain(
    connection: &mut AnyConnection,
    backend: Backend,
    vault: &str,
) -> Result<(), sqlx::Error> {
    let sql = match backend {
        Backend::Postgres => "SELECT id FROM vaults WHERE id = $1 FOR NO KEY UPDATE",
        Backend::Sqlite => "UPDATE vaults SET name = name WHERE id = $1",
    };
    sqlx::query(sql).bind(vault).execute(connection).await?;
    Ok(())
}

/// Appends `entries` to `vault`'s chain, after the entries recorded earlier and still
/// waiting, within `connection`'s transaction, which must hold the chain (see
/// [`try_lock_chain`]). Returns whether it appended any.
pub(super) async fn append(
    connection: &mut AnyConnection,
    vault: &str,
    chain: HeldChain,
    entries: Vec<AuditEntry>,
) -> Result<bool, sqlx::Error> {
    let (mut all, linked_ids) = if chain.waiting {
        take_pending(connection, vault).await?
    } else {
        (Vec::new(), Vec::new())
    };
    all.extend(entries);
    if all.is_empty() {
        return Ok(false);
    }
    link(connection, vault, &mut all).await?;
    insert_linked(connection, vault, &all).await?;
    // Exactly the rows read: one that commits meanwhile, even with a lower ID, stays waiting.
    for ids in linked_ids.chunks(500) {
        let sql = format!(
            "DELETE FROM audit_pending WHERE id IN ({})",
            (1..=ids.len())
                .map(|place| format!("${place}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut delete = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            delete = delete.bind(*id);
        }
        delete.execute(&mut *connection).await?;
    }
    Ok(true)
}

/// Records `entries` of `vault`'s chain to be linked once the transaction has committed,
/// for a transaction that could not take the chain.
pub(super) async fn defer(
    connection: &mut AnyConnection,
    vault: &str,
    entries: &[AuditEntry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO audit_pending (vault_id, time, actor, action, subject, statement) VALUES {}",
        placeholders(entries.len(), 6)
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for entry in entries {
        insert = insert
            .bind(vault)
            .bind(entry.time)
            .bind(entry.actor.as_str())
            .bind(entry.action.as_str())
            .bind(entry.subject.as_str())
            .bind(entry.statement.as_deref());
    }
    insert.execute(connection).await?;
    Ok(())
}

/// Links `vault`'s waiting entries into its chain, in a transaction of its own that waits
/// for the chain: called by a change whose entries waited, after it committed, and by the
/// sweep (for entries a crash left waiting).
///
/// Several changes that committed at once each come here; the first to take the chain links
/// the entries of all, and the others find nothing left and let go of the chain without a
/// commit to wait for.
pub(crate) async fn link_waiting(db: &super::Db, vault: &str) -> Result<(), sqlx::Error> {
    let waiting = sqlx::query("SELECT 1 AS waiting FROM audit_pending WHERE vault_id = $1 LIMIT 1")
        .bind(vault)
        .fetch_optional(db.pool())
        .await?;
    if waiting.is_none() {
        return Ok(());
    }
    let mut tx = db.pool().begin().await?;
    lock_chain(&mut tx, db.backend(), vault).await?;
    if append(&mut tx, vault, HeldChain { waiting: true }, Vec::new()).await? {
        tx.commit().await
    } else {
        tx.rollback().await
    }
}

/// The vaults whose waiting entries a background task is linking, each with whether more
/// were committed since that task last looked, so that a burst of waiting changes costs one
/// task per vault rather than one per change.
#[derive(Debug, Default)]
pub(crate) struct Linking {
    vaults: Mutex<HashMap<String, bool>>,
}

impl Linking {
    fn vaults(&self) -> MutexGuard<'_, HashMap<String, bool>> {
        self.vaults
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Whether a task must be started for `vault` (none is linking it); otherwise the
    /// running one is told to look again.
    fn start(&self, vault: &str) -> bool {
        let mut vaults = self.vaults();
        match vaults.get_mut(vault) {
            Some(again) => {
                *again = true;
                false
            }
            None => {
                vaults.insert(vault.to_owned(), false);
                true
            }
        }
    }

    /// Whether the task linking `vault` must look again; if not, it is done.
    fn again(&self, vault: &str) -> bool {
        let mut vaults = self.vaults();
        match vaults.get_mut(vault) {
            Some(again @ true) => {
                *again = false;
                true
            }
            _ => {
                vaults.remove(vault);
                false
            }
        }
    }
}

/// Links `vault`'s waiting entries in a background task, after a change whose entries
/// waited has committed, so the change is answered without waiting for the chain.
/// A failure, or a shutdown in the middle, leaves the entries waiting, linked by the next
/// append to the chain, the next read of it, or the sweep.
pub(crate) fn link_in_background(db: &super::Db, vault: String) {
    if !db.linking().start(&vault) {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        loop {
            if let Err(error) = link_waiting(&db, &vault).await {
                tracing::warn!(%error, vault, "audit entries wait to be linked");
            }
            if !db.linking().again(&vault) {
                break;
            }
        }
    });
}

/// Links the entries waiting in every vault (a crash between a change's commit and the
/// linking leaves them waiting); returns in how many vaults.
pub(crate) async fn link_all_waiting(db: &super::Db) -> Result<usize, sqlx::Error> {
    let vaults: Vec<String> = sqlx::query_scalar("SELECT DISTINCT vault_id FROM audit_pending")
        .fetch_all(db.pool())
        .await?;
    for vault in &vaults {
        link_waiting(db, vault).await?;
    }
    Ok(vaults.len())
}

/// `vault`'s waiting entries in the order they were recorded, and their IDs.
async fn take_pending(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<(Vec<AuditEntry>, Vec<i64>), sqlx::Error> {
    let rows: Vec<PendingRow> = sqlx::query_as(
        "SELECT id, time, actor, action, subject, statement FROM audit_pending
         WHERE vault_id = $1 ORDER BY id",
    )
    .bind(vault)
    .fetch_all(&mut *connection)
    .await?;
    let ids = rows.iter().map(|row| row.id).collect();
    let vault_id = vault
        .parse()
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    let entries = rows
        .into_iter()
        .map(|row| AuditEntry {
            vault_id,
            seq: 0,
            time: row.time,
            actor: row.actor,
            action: row.action,
            subject: row.subject,
            statement: row.statement,
            prev_hash: [0; 32],
            hash: [0; 32],
        })
        .collect();
    Ok((entries, ids))
}

#[derive(Debug, sqlx::FromRow)]
struct PendingRow {
    id: i64,
    time: i64,
    actor: String,
    action: String,
    subject: String,
    statement: Option<Vec<u8>>,
}

/// Gives `entries` their sequence numbers and hashes, following `vault`'s last entry.
async fn link(
    connection: &mut AnyConnection,
    vault: &str,
    entries: &mut [AuditEntry],
) -> Result<(), sqlx::Error> {
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
    Ok(())
}

/// Stores linked entries in one statement.
async fn insert_linked(
    connection: &mut AnyConnection,
    vault: &str,
    entries: &[AuditEntry],
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO audit_log (vault_id, seq, time, actor, action, subject, statement, prev_hash, hash)
         VALUES {}",
        placeholders(entries.len(), 9)
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for entry in entries {
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
    insert.execute(connection).await?;
    Ok(())
}

/// `($1, ..., $columns), ...` for `rows` rows.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let places: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", places.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
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
            statement: row.statement.map(Base64::from),
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
