//! First start: a server with no vault creates one, and any vault still waiting for its first
//! admin gets a fresh one-time enrolment code (the previous unused one is withdrawn, so the
//! code the operator last saw is the one that works). Codes are stored only as hashes.

use quorate_crypto::{VaultId, identity::grouped_base32};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    db::{Db, DbError},
    store::{self, Tx},
};

/// A code to print once for the operator: it is never stored in clear.
#[derive(Clone)]
pub struct EnrolmentCode {
    /// The vault it enrols the first admin of.
    pub vault_id: VaultId,
    /// The code, as people type it.
    pub code: Zeroizing<String>,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for EnrolmentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EnrolmentCode({}, [REDACTED], expires {})",
            self.vault_id, self.expires_at
        )
    }
}

/// The hash stored for a code: SHA-256 of its letters, upper-cased, without dashes or spaces.
pub fn code_hash(code: &str) -> Vec<u8> {
    let normalised: Zeroizing<String> = Zeroizing::new(
        code.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase(),
    );
    Sha256::digest(normalised.as_bytes()).to_vec()
}

/// A fresh one-time code: 120 random bits, grouped for typing.
pub(crate) fn new_code() -> Zeroizing<String> {
    let mut bytes = [0u8; 15];
    rand_core::Rng::fill_bytes(&mut rand_core::UnwrapErr(rand::rngs::SysRng), &mut bytes);
    let code = Zeroizing::new(grouped_base32(&bytes));
    zeroize::Zeroize::zeroize(&mut bytes);
    code
}

/// Inserts a vault and audits its creation by `actor`, inside the caller's transaction.
pub(crate) async fn create_vault(
    tx: &mut Tx,
    vault_id: VaultId,
    name: &str,
    now: i64,
    actor: &str,
) -> Result<(), sqlx::Error> {
    store::vaults::insert(tx, &vault_id.to_string(), name, now).await?;
    tx.audit(
        vault_id,
        now,
        store::Event {
            actor,
            action: "vault.created",
            subject: name,
            statement: None,
        },
    );
    Ok(())
}

/// Withdraws the vault's unused first-admin codes and issues a fresh one, inside the
/// caller's transaction.
pub(crate) async fn issue_first_admin_code(
    connection: &mut sqlx::AnyConnection,
    vault_id: VaultId,
    now: i64,
    code_ttl: i64,
) -> Result<EnrolmentCode, sqlx::Error> {
    let code = new_code();
    let expires_at = now + code_ttl;
    let vault = vault_id.to_string();
    store::codes::replace_first_admin(connection, &vault, &code_hash(&code), now, expires_at)
        .await?;
    Ok(EnrolmentCode {
        vault_id,
        code,
        expires_at,
    })
}

/// Creates the first vault if there is none (once, even with several servers starting),
/// then issues a fresh first-admin code for every vault that still has no admin.
pub async fn run(db: &Db, now: i64, code_ttl: i64) -> Result<Vec<EnrolmentCode>, DbError> {
    let mut tx = db.begin().await?;
    if store::vaults::claim_once(&mut tx, "first-vault", now).await? {
        create_vault(&mut tx, VaultId::random(), "First vault", now, "server").await?;
    }
    tx.commit().await?;

    let waiting = store::vaults::awaiting_first_admin(&mut *db.connection().await?).await?;
    let mut codes = Vec::new();
    for id in waiting {
        let vault_id: VaultId = id
            .parse()
            .map_err(|_| sqlx::Error::Decode("vault id is not a UUID".into()))?;
        let mut tx = db.begin().await?;
        codes.push(issue_first_admin_code(&mut tx, vault_id, now, code_ttl).await?);
        tx.commit().await?;
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_hash_the_same_however_typed() {
        assert_eq!(code_hash("ABCD-EFGH"), code_hash("abcd efgh"));
        assert_ne!(code_hash("ABCD-EFGH"), code_hash("ABCD-EFGI"));
        let code = new_code();
        assert_eq!(code.len(), 29);
        assert!(
            !format!(
                "{:?}",
                EnrolmentCode {
                    vault_id: VaultId::random(),
                    code: code.clone(),
                    expires_at: 0
                }
            )
            .contains(code.as_str())
        );
    }
}
