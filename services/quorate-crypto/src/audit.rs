//! The audit log's hash chain: every state change the server makes is an entry whose hash
//! covers the previous entry's hash, so an edited, dropped or reordered row breaks the chain
//! for anyone who recomputes it (the CLI's `audit verify`). Entries that carry a signed
//! statement are also checked against it.

use sha2::{Digest, Sha256};

use crate::{Error, VaultId, statement::verify_any, wire::Writer};

/// One audit entry as stored and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The vault.
    pub vault_id: VaultId,
    /// Position in the vault's chain, from 0.
    pub seq: u64,
    /// When, Unix seconds.
    pub time: i64,
    /// Who: a fingerprint in hex, or `server`.
    pub actor: String,
    /// What: `vault.created`, `roster.appended`, ...
    pub action: String,
    /// What it was done to (an ID or fingerprint).
    pub subject: String,
    /// The signed statement behind the change, when there is one.
    pub statement: Option<Vec<u8>>,
    /// The previous entry's hash (zeros for the first).
    pub prev_hash: [u8; 32],
    /// This entry's hash.
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// The hash of every other field.
    pub fn compute_hash(&self) -> [u8; 32] {
        let statement_hash: [u8; 32] = self
            .statement
            .as_deref()
            .map_or([0; 32], |statement| Sha256::digest(statement).into());
        let mut writer = Writer::new("quorate/audit-entry/v1");
        writer
            .fixed(self.vault_id.as_bytes())
            .u64(self.seq)
            .i64(self.time)
            .str(&self.actor)
            .str(&self.action)
            .str(&self.subject)
            .u8(u8::from(self.statement.is_some()))
            .fixed(&statement_hash)
            .fixed(&self.prev_hash);
        Sha256::digest(writer.finish()).into()
    }
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An entry's hash is not the hash of its contents: it was edited.
    #[error("audit entry {seq} was altered: its hash does not match its contents")]
    Altered {
        /// The entry.
        seq: u64,
    },
    /// An entry does not follow the one before it: entries were dropped, reordered or
    /// inserted.
    #[error(
        "audit entry {seq} does not follow the entry before it (dropped, reordered or inserted entries)"
    )]
    Broken {
        /// The entry.
        seq: u64,
    },
    /// An entry's signed statement does not verify.
    #[error("audit entry {seq} carries a statement that does not verify: {reason}")]
    BadStatement {
        /// The entry.
        seq: u64,
        /// Why.
        reason: String,
    },
}

/// Recomputes a chain given in order from `first_prev` (zeros when starting at entry 0) and
/// checks every statement's signature. Returns the last hash, to continue with the next page.
pub fn verify_chain(entries: &[AuditEntry], first_prev: [u8; 32]) -> Result<[u8; 32], AuditError> {
    let mut previous = first_prev;
    let first_seq = entries.first().map_or(0, |entry| entry.seq);
    for (expected_seq, entry) in (first_seq..).zip(entries) {
        if entry.seq != expected_seq || entry.prev_hash != previous {
            return Err(AuditError::Broken { seq: entry.seq });
        }
        if entry.compute_hash() != entry.hash {
            return Err(AuditError::Altered { seq: entry.seq });
        }
        if let Some(statement) = &entry.statement {
            verify_any(statement).map_err(|error: Error| AuditError::BadStatement {
                seq: entry.seq,
                reason: error.to_string(),
            })?;
        }
        previous = entry.hash;
    }
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(len: u64) -> Vec<AuditEntry> {
        let vault_id = VaultId::random();
        let mut previous = [0; 32];
        (0..len)
            .map(|seq| {
                let mut entry = AuditEntry {
                    vault_id,
                    seq,
                    time: 1_750_000_000 + seq as i64,
                    actor: "server".into(),
                    action: "test".into(),
                    subject: format!("thing {seq}"),
                    statement: None,
                    prev_hash: previous,
                    hash: [0; 32],
                };
                entry.hash = entry.compute_hash();
                previous = entry.hash;
                entry
            })
            .collect()
    }

    #[test]
    fn a_chain_verifies_and_any_edit_is_named() {
        let entries = chain(5);
        assert_eq!(verify_chain(&entries, [0; 32]).unwrap(), entries[4].hash);
        let mut edited = entries.clone();
        edited[2].action = "something else".into();
        assert_eq!(
            verify_chain(&edited, [0; 32]),
            Err(AuditError::Altered { seq: 2 })
        );
        let mut dropped = entries.clone();
        dropped.remove(3);
        assert_eq!(
            verify_chain(&dropped, [0; 32]),
            Err(AuditError::Broken { seq: 4 })
        );
        // Pages continue from the previous page's last hash.
        let last = verify_chain(&entries[..2], [0; 32]).unwrap();
        assert!(verify_chain(&entries[2..], last).is_ok());
    }
}
