//! The storage layer: every SQL statement the server runs is in this module, one submodule
//! per group of tables. Each query is written once for both backends (sqlx's `Any` driver,
//! `$N` placeholders); rows come back as `FromRow` types and leave as API views or plain
//! values. Nothing here decides whether something is allowed: that is the operations'.

pub(crate) mod audit;
pub mod bell;
pub(crate) mod codes;
pub mod db;
pub(crate) mod jobs;
pub(crate) mod limits;
pub(crate) mod members;
pub(crate) mod metrics;
pub(crate) mod nodes;
pub(crate) mod policies;
pub(crate) mod recordings;
pub(crate) mod release;
pub(crate) mod requests;
pub(crate) mod reshares;
pub(crate) mod retention;
pub(crate) mod roster;
pub(crate) mod search;
pub(crate) mod sessions;
pub(crate) mod transcripts;
pub(crate) mod uploads;
pub(crate) mod vaults;

use std::ops::{Deref, DerefMut};

use quorate_crypto::{VaultId, audit::AuditEntry};

pub(crate) use self::audit::Event;
use self::db::{Backend, Db};

/// A database transaction that knows its backend and collects the audit entries of the
/// changes it makes, so that auditing a change is one call and the entries are committed
/// with the change or not at all.
#[derive(Debug)]
pub(crate) struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    db: Db,
    audit: Vec<AuditEntry>,
    /// Whether the commit tells waiting claims that a job may be there for them.
    rings_job_bell: bool,
}

impl Tx {
    /// Records `event` for `vault`'s audit chain, appended when the transaction commits.
    pub(crate) fn audit(&mut self, vault: VaultId, now: i64, event: Event<'_>) {
        self.audit.push(event.unlinked(vault, now));
    }

    /// Rings the job bell when (and if) this transaction commits: it queued a job or handed
    /// one back, which a node's claim may be waiting for (see [`bell`]).
    pub(crate) fn ring_job_bell(&mut self) {
        self.rings_job_bell = true;
    }

    /// Appends the recorded audit entries and makes the changes durable.
    ///
    /// A vault's chain is appended to one transaction at a time, and a transaction that
    /// appends holds the chain until its commit is durable. So that changes do not queue
    /// behind each other's commits while they hold their own locks (a request's, say), a
    /// transaction that finds the chain taken does not wait: its entries are committed as
    /// waiting, with the change, and linked after the commit by a background task that links
    /// every entry waiting by then (readers of the chain link what waits first). Either way
    /// an entry exists exactly when its change does, and the chain follows the order in
    /// which changes took effect: waiting entries (whose changes committed) before those of
    /// the transaction that links them.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let backend = self.db.backend();
        let mut waiting = Vec::new();
        for (vault, entries) in by_vault(std::mem::take(&mut self.audit)) {
            if let Some(chain) = audit::try_lock_chain(&mut self.inner, backend, &vault).await? {
                audit::append(&mut self.inner, &vault, chain, entries).await?;
            } else {
                audit::defer(&mut self.inner, &vault, &entries).await?;
                waiting.push(vault);
            }
        }
        let rings_job_bell = self.rings_job_bell;
        if rings_job_bell && backend == Backend::Postgres {
            // Delivered to every listening replica when, and only if, the commit succeeds.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(bell::CHANNEL)
                .execute(&mut *self.inner)
                .await?;
        }
        self.inner.commit().await?;
        if rings_job_bell {
            self.db.job_bell().ring();
        }
        for vault in waiting {
            audit::link_in_background(&self.db, vault);
        }
        Ok(())
    }
}

/// `entries` grouped by vault, each group in the order recorded (a transaction almost
/// always touches one vault).
fn by_vault(entries: Vec<AuditEntry>) -> Vec<(String, Vec<AuditEntry>)> {
    let mut groups: Vec<(VaultId, Vec<AuditEntry>)> = Vec::new();
    for entry in entries {
        match groups
            .iter_mut()
            .find(|(vault, _)| *vault == entry.vault_id)
        {
            Some((_, group)) => group.push(entry),
            None => groups.push((entry.vault_id, vec![entry])),
        }
    }
    groups
        .into_iter()
        .map(|(vault, group)| (vault.to_string(), group))
        .collect()
}

impl Deref for Tx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl Db {
    /// Starts a transaction.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a transaction that
    /// read first would otherwise fail outright ("database is locked", with no wait) when it
    /// came to write after another connection had committed, as when the sweep deletes
    /// expired rows between a sign-in's read and its write.
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let inner = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        };
        Ok(Tx {
            inner,
            db: self.clone(),
            audit: Vec::new(),
            rings_job_bell: false,
        })
    }

    /// A connection from the pool, for reads that need several queries.
    pub(crate) async fn connection(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.pool().acquire().await
    }
}

#[cfg(test)]
mod tests {
    use quorate_crypto::audit::verify_chain;

    use super::*;
    use crate::test_support::{Backend, TestDb};

    /// A migrated database on `backend` with one vault.
    async fn database(backend: Backend, vault: VaultId) -> (Db, TestDb) {
        let test_db = TestDb::new(backend).await;
        let db = Db::connect(&test_db.url).await.unwrap();
        db.migrate().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        vaults::insert(&mut tx, &vault.to_string(), "v", 0)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (db, test_db)
    }

    fn event(action: &str) -> Event<'_> {
        Event::server(action, "subject")
    }

    #[tokio::test]
    async fn postgres_a_change_that_finds_the_chain_taken_commits_and_its_entries_follow() {
        let vault = VaultId::random();
        let (db, test_db) = database(Backend::Postgres, vault).await;
        let mut first = db.begin().await.unwrap();
        first.audit(vault, 1, event("first"));
        assert!(
            audit::try_lock_chain(&mut first, db.backend(), &vault.to_string())
                .await
                .unwrap()
                .is_some()
        );

        // The second change commits while the first holds the chain, without waiting for
        // it: its entry waits, and is linked once the first has committed.
        let mut second = db.begin().await.unwrap();
        second.audit(vault, 2, event("second"));
        tokio::time::timeout(std::time::Duration::from_secs(5), second.commit())
            .await
            .expect("a change does not wait for the chain another holds")
            .unwrap();
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            waiting, 1,
            "the second change committed with its entry waiting"
        );
        first.commit().await.unwrap();

        let entries = audit::page(&db, &vault.to_string(), -1, 10).await.unwrap();
        let actions: Vec<&str> = entries.iter().map(|entry| entry.action.as_str()).collect();
        // The second change committed first, so its entry comes first: the chain follows the
        // order in which changes took effect.
        assert_eq!(actions, ["second", "first"]);
        let rows: Vec<AuditEntry> = entries
            .iter()
            .map(|entry| AuditEntry {
                vault_id: vault,
                seq: entry.seq,
                time: entry.time,
                actor: entry.actor.clone(),
                action: entry.action.clone(),
                subject: entry.subject.clone(),
                statement: None,
                prev_hash: hex::decode(&entry.prev_hash).unwrap().try_into().unwrap(),
                hash: hex::decode(&entry.hash).unwrap().try_into().unwrap(),
            })
            .collect();
        verify_chain(&rows, [0; 32]).unwrap();
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(waiting, 0);

        db.close().await;
        test_db.drop_database().await;
    }

    #[tokio::test]
    async fn postgres_entries_that_waited_are_linked_in_the_background_once_the_chain_is_free() {
        let vault = VaultId::random();
        let (db, test_db) = database(Backend::Postgres, vault).await;
        let mut holder = db.begin().await.unwrap();
        assert!(
            audit::try_lock_chain(&mut holder, db.backend(), &vault.to_string())
                .await
                .unwrap()
                .is_some()
        );
        let mut change = db.begin().await.unwrap();
        change.audit(vault, 2, event("change"));
        change.commit().await.unwrap();

        // The holder appends nothing: only the background task can link the waiting entry.
        holder.commit().await.unwrap();
        let mut waiting = 1;
        for _ in 0..100 {
            waiting = sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
                .fetch_one(db.pool())
                .await
                .unwrap();
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(waiting, 0, "the waiting entry was linked");
        let entries = audit::page(&db, &vault.to_string(), -1, 10).await.unwrap();
        let actions: Vec<&str> = entries.iter().map(|entry| entry.action.as_str()).collect();
        assert_eq!(actions, ["change"]);

        db.close().await;
        test_db.drop_database().await;
    }

    #[tokio::test]
    async fn sqlite_a_transaction_that_read_first_still_writes_after_another_commits() {
        let vault = VaultId::random();
        let (db, test_db) = database(Backend::Sqlite, vault).await;
        let mut reads_first = db.begin().await.unwrap();
        let vaults: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vaults")
            .fetch_one(&mut *reads_first)
            .await
            .unwrap();
        assert_eq!(vaults, 1);

        // Another connection writes meanwhile (the sweep, say): it waits for this
        // transaction rather than committing under it.
        let other = db.clone();
        let writes = tokio::spawn(async move {
            let mut tx = other.begin().await?;
            vaults::insert(&mut tx, &VaultId::random().to_string(), "other", 0).await?;
            tx.commit().await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        vaults::insert(&mut reads_first, &VaultId::random().to_string(), "mine", 0)
            .await
            .expect("the write of a transaction that read first is not refused");
        reads_first.commit().await.unwrap();
        writes.await.unwrap().unwrap();

        let vaults: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vaults")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(vaults, 3);
        db.close().await;
        test_db.drop_database().await;
    }
}
