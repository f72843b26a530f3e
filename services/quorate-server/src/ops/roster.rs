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
