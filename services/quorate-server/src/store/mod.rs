//! The storage layer: every SQL statement the server runs is in this module, one submodule
//! per group of tables. Each query is written once for both backends (sqlx's `Any` driver,
//! `$N` placeholders); rows come back as `FromRow` types and leave as API views or plain
//! values. Nothing here decides whether something is allowed: that is the operations'.

pub(crate) mod audit;
pub(crate) mod codes;
pub mod db;
pub(crate) mod jobs;
pub(crate) mod members;
pub(crate) mod nodes;
pub(crate) mod policies;
pub(crate) mod recordings;
pub(crate) mod release;
pub(crate) mod requests;
pub(crate) mod roster;
pub(crate) mod search;
pub(crate) mod sessions;
pub(crate) mod transcripts;
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
    backend: Backend,
    audit: Vec<AuditEntry>,
}

impl Tx {
    /// Records `event` for `vault`'s audit chain. The entries are appended when the
    /// transaction commits, as its last statements: appending locks the vault's chain, and
    /// the lock is then held for the commit only, not while the change is checked and made.
    pub(crate) fn audit(&mut self, vault: VaultId, now: i64, event: Event<'_>) {
        self.audit.push(event.unlinked(vault, now));
    }

    /// Appends the recorded audit entries, then makes the changes durable.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let mut entries = std::mem::take(&mut self.audit);
        // Grouped by vault in the order they were recorded (a transaction almost always
        // touches one vault).
        let mut vaults: Vec<VaultId> = entries.iter().map(|entry| entry.vault_id).collect();
        vaults.dedup();
        for vault in vaults {
            let (mine, rest): (Vec<_>, Vec<_>) = entries
                .into_iter()
                .partition(|entry| entry.vault_id == vault);
            let mut mine = mine;
            audit::append(&mut self.inner, self.backend, &vault.to_string(), &mut mine).await?;
            entries = rest;
        }
        self.inner.commit().await
    }
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
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(Tx {
            inner: self.pool().begin().await?,
            backend: self.backend(),
            audit: Vec::new(),
        })
    }

    /// A connection from the pool, for reads that need several queries.
    pub(crate) async fn connection(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.pool().acquire().await
    }
}
