//! The verified roster of each vault, kept between requests. Every statement the server
//! stores is checked against the roster, and replaying the chain (one signature per entry)
//! on every vote cost more than the rest of the vote. The cache is keyed by the chain's head
//! as read inside the caller's transaction: the same head is the same chain, a longer chain
//! whose entry at the cached head's place is that head extends the cached one entry by entry,
//! and anything else (a rewritten or shorter chain) is replayed in full from the genesis.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use quorate_crypto::{VaultId, roster::Roster, statement::SignedStatement};
use sqlx::AnyConnection;

use crate::{error::Refusal, store};

/// Why a vault's roster could not be loaded: both are the server's failures.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RosterError {
    /// The database failed.
    #[error("reading the roster failed: {0}")]
    Store(#[from] sqlx::Error),
    /// The stored chain does not verify: the database was changed outside the server.
    #[error("the stored roster chain does not verify: {0}")]
    Corrupt(#[from] quorate_crypto::Error),
}

impl Refusal for RosterError {
    fn refusal(&self) -> Option<(axum::http::StatusCode, &'static str)> {
        None
    }
}

/// Verified rosters by vault.
#[derive(Debug, Default)]
pub struct Rosters {
    verified: Mutex<HashMap<VaultId, Arc<Roster>>>,
}

impl Rosters {
    /// `vault`'s roster as the chain stands in `connection`'s transaction, verified from its
    /// genesis (once; later calls check the head and verify only new entries).
    pub(crate) async fn verified(
        &self,
        connection: &mut AnyConnection,
        vault: VaultId,
    ) -> Result<Arc<Roster>, RosterError> {
        let vault_text = vault.to_string();
        let head = store::roster::head(connection, &vault_text).await?;
        let cached = self.cached(vault);
        if let (Some(roster), Some(head)) = (&cached, &head)
            && roster.len() == (head.sequence + 1) as u64
            && roster.head().as_slice() == head.digest
        {
            return Ok(Arc::clone(roster));
        }
        let extended = match cached {
            Some(roster) if !roster.is_empty() => {
                let from = roster.len() as i64 - 1;
                let rows = store::roster::entries_from(connection, &vault_text, from).await?;
                extend(&roster, &rows)?
            }
            _ => None,
        };
        let roster = match extended {
            Some(roster) => roster,
            None => {
                let rows = store::roster::entries_from(connection, &vault_text, 0).await?;
                let entries = parse(&rows)?;
                Roster::verify(vault, &entries, None)?
            }
        };
        let roster = Arc::new(roster);
        self.keep(vault, &roster);
        Ok(roster)
    }

    fn cached(&self, vault: VaultId) -> Option<Arc<Roster>> {
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        verified.get(&vault).cloned()
    }

    /// Keeps `roster` unless a longer one was kept meanwhile (a slower request that read an
    /// older head must not push a newer roster out).
    fn keep(&self, vault: VaultId, roster: &Arc<Roster>) {
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let newer_kept = verified
            .get(&vault)
            .is_some_and(|kept| kept.len() > roster.len());
        if !newer_kept {
            verified.insert(vault, Arc::clone(roster));
        }
    }
}

/// `roster` extended by `rows`, the stored entries from `roster`'s last one on; `None` when
/// the stored entry in that place is not `roster`'s head (the chain was rewritten).
fn extend(
    roster: &Roster,
    rows: &[store::roster::EntryRow],
) -> Result<Option<Roster>, RosterError> {
    let Some((first, new)) = rows.split_first() else {
        return Ok(None);
    };
    if first.digest != roster.head().as_slice() {
        return Ok(None);
    }
    let mut extended = roster.clone();
    for entry in parse(new)? {
        extended.apply(&entry)?;
    }
    Ok(Some(extended))
}

fn parse(rows: &[store::roster::EntryRow]) -> Result<Vec<SignedStatement>, RosterError> {
    rows.iter()
        .map(|row| SignedStatement::from_bytes(&row.statement).map_err(RosterError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use quorate_crypto::{
        Identity,
        statement::{Role, RosterChange},
    };

    use super::*;
    use crate::{
        store::db::Db,
        test_support::{Backend, TestDb},
    };

    /// A migrated SQLite database with one vault.
    async fn database(test_db: &TestDb, vault: VaultId) -> Db {
        let db = Db::connect(&test_db.url).await.unwrap();
        db.migrate().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        store::vaults::insert(&mut tx, &vault.to_string(), "v", 0)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        db
    }

    /// Stores `roster`'s next entry adding a member; returns the roster with it.
    async fn add_member(db: &Db, roster: &Roster, admin: &Identity) -> Roster {
        let member = Identity::generate();
        let signed = roster
            .sign_change(
                admin,
                RosterChange::Add,
                member.public(),
                "m",
                Role::Member,
                0,
            )
            .unwrap();
        let (vault, sequence) = (roster.vault_id().to_string(), roster.len());
        let mut tx = db.begin().await.unwrap();
        store::roster::insert(
            &mut tx,
            &vault,
            sequence,
            &signed.to_bytes(),
            &signed.digest(),
            0,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut next = roster.clone();
        next.apply(&signed).unwrap();
        next
    }

    async fn genesis(db: &Db, vault: VaultId, admin: &Identity) -> Roster {
        let signed = Roster::genesis_entry(vault, admin, "admin", 0).unwrap();
        let mut tx = db.begin().await.unwrap();
        store::roster::insert(
            &mut tx,
            &vault.to_string(),
            0,
            &signed.to_bytes(),
            &signed.digest(),
            0,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        Roster::verify(vault, &[signed], None).unwrap()
    }

    async fn load(rosters: &Rosters, db: &Db, vault: VaultId) -> Arc<Roster> {
        let mut connection = db.connection().await.unwrap();
        rosters.verified(&mut connection, vault).await.unwrap()
    }

    #[tokio::test]
    async fn sqlite_the_cache_follows_the_stored_chain_however_it_changes() {
        let test_db = TestDb::new(Backend::Sqlite).await;
        let vault = VaultId::random();
        let db = database(&test_db, vault).await;
        let admin = Identity::generate();
        let rosters = Rosters::default();

        let first = genesis(&db, vault, &admin).await;
        assert_eq!(load(&rosters, &db, vault).await.head(), first.head());
        // The same head: the very roster kept.
        let kept = load(&rosters, &db, vault).await;
        assert!(Arc::ptr_eq(&kept, &load(&rosters, &db, vault).await));

        // A longer chain extends the kept roster.
        let second = add_member(&db, &first, &admin).await;
        let third = add_member(&db, &second, &admin).await;
        let loaded = load(&rosters, &db, vault).await;
        assert_eq!((loaded.len(), loaded.head()), (3, third.head()));

        // The stored chain rolled back (its last entry deleted): the shorter chain is what
        // counts, not the longer one kept.
        sqlx::query("DELETE FROM roster_entries WHERE sequence = 2")
            .execute(db.pool())
            .await
            .unwrap();
        let loaded = load(&rosters, &db, vault).await;
        assert_eq!((loaded.len(), loaded.head()), (2, second.head()));

        // Rewritten from the genesis on by another admin: replayed in full, not extended.
        sqlx::query("DELETE FROM roster_entries")
            .execute(db.pool())
            .await
            .unwrap();
        let other = Identity::generate();
        let rewritten = add_member(&db, &genesis(&db, vault, &other).await, &other).await;
        let loaded = load(&rosters, &db, vault).await;
        assert_eq!((loaded.len(), loaded.head()), (2, rewritten.head()));
        assert!(loaded.admin_by_key(&other.public().verifying_key).is_some());
        assert!(loaded.admin_by_key(&admin.public().verifying_key).is_none());
    }
}
