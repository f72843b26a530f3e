//! The roster as a device checks it: a hash chain of admin-signed entries, rooted in a
//! genesis entry that the device pinned when it enrolled. A server that injects a key, drops
//! an entry from the middle or swaps the chain is refused.

use ed25519_dalek::VerifyingKey;

use crate::statement::{StatementBody, Verified};

use crate::{
    Error, Fingerprint, Identity, PublicIdentity, Recipient, VaultId,
    statement::{Role, RosterChange, RosterEntry, SignedStatement, StatementKind},
};

/// One member as the verified roster holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterMember {
    /// Their public keys.
    pub public: PublicIdentity,
    /// Their fingerprint.
    pub fingerprint: Fingerprint,
    /// Their display name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// The sequence number of the entry that added them.
    pub added_in: u64,
}

/// A verified roster: who is a member now, and the chain it was built from.
///
/// Members (admins and members) hold shares; recorders are kept apart, so that everything
/// that seals to, splits among or accepts a vote from "the members" leaves them out unless
/// it asks for them.
#[derive(Debug, Clone)]
pub struct Roster {
    vault_id: VaultId,
    digests: Vec<[u8; 32]>,
    active: Vec<RosterMember>,
    recorders: Vec<RosterMember>,
    removed: Vec<RosterMember>,
    /// The sequence number of the entry that removed each of `removed`, in the same order.
    removed_in: Vec<u64>,
}

impl Roster {
    /// An empty roster for `vault_id`, awaiting its genesis entry.
    pub fn empty(vault_id: VaultId) -> Self {
        Self {
            vault_id,
            digests: Vec::new(),
            active: Vec::new(),
            recorders: Vec::new(),
            removed: Vec::new(),
            removed_in: Vec::new(),
        }
    }

    /// Verifies a whole chain, in order. With `pinned_genesis`, the chain must start at the
    /// genesis entry the device pinned at enrolment.
    pub fn verify(
        vault_id: VaultId,
        entries: &[SignedStatement],
        pinned_genesis: Option<&[u8; 32]>,
    ) -> Result<Self, Error> {
        let mut roster = Self::empty(vault_id);
        for entry in entries {
            roster.apply(entry)?;
        }
        if let Some(pinned) = pinned_genesis
            && roster.genesis() != Some(pinned)
        {
            return Err(Error::BindingMismatch {
                field: "roster genesis",
            });
        }
        if roster.digests.is_empty() {
            return Err(Error::InvalidField {
                field: "roster",
                reason: "has no entries",
            });
        }
        Ok(roster)
    }

    /// The genesis entry a vault's first admin signs for themself.
    pub fn genesis_entry(
        vault_id: VaultId,
        admin: &Identity,
        name: &str,
        now: i64,
    ) -> Result<SignedStatement, Error> {
        Self::empty(vault_id).sign_change(
            admin,
            RosterChange::Add,
            admin.public(),
            name,
            Role::Admin,
            now,
        )
    }

    /// Builds, signs and checks the next entry. The roster itself is not changed: apply the
    /// entry once the server has accepted it.
    pub fn sign_change(
        &self,
        signer: &Identity,
        change: RosterChange,
        member: PublicIdentity,
        name: &str,
        role: Role,
        now: i64,
    ) -> Result<SignedStatement, Error> {
        let entry = RosterEntry {
            vault_id: self.vault_id,
            sequence: self.digests.len() as u64,
            previous: self.head(),
            change,
            role,
            member,
            name: name.to_owned(),
            issued_at: now,
        };
        let signed = SignedStatement::sign(&entry, signer);
        self.clone().apply(&signed)?;
        Ok(signed)
    }

    /// Verifies `signed` as the next link and applies it.
    pub fn apply(&mut self, signed: &SignedStatement) -> Result<(), Error> {
        let verified = signed.verify::<RosterEntry>()?;
        let entry = verified.statement;
        if entry.vault_id != self.vault_id {
            return Err(Error::BindingMismatch { field: "vault ID" });
        }
        if entry.sequence != self.digests.len() as u64 {
            return Err(Error::BindingMismatch {
                field: "roster sequence",
            });
        }
        if entry.previous != self.head() {
            return Err(Error::BindingMismatch {
                field: "previous roster entry",
            });
        }
        self.check_signer(&entry, &verified.signer)?;
        let fingerprint = entry.member.fingerprint();
        match entry.change {
            RosterChange::Add => {
                let clash = self.active.iter().chain(&self.recorders).any(|member| {
                    member.fingerprint == fingerprint
                        || member.public.recipient == entry.member.recipient
                        || member.public.verifying_key == entry.member.verifying_key
                });
                if clash {
                    return Err(Error::InvalidField {
                        field: "member",
                        reason: "already on the roster",
                    });
                }
                let added = RosterMember {
                    public: entry.member,
                    fingerprint,
                    name: entry.name,
                    role: entry.role,
                    added_in: entry.sequence,
                };
                if entry.role.holds_shares() {
                    self.active.push(added);
                } else {
                    self.recorders.push(added);
                }
            }
            RosterChange::Remove => {
                let removed = self.take_out(&fingerprint)?;
                self.removed.push(removed);
                self.removed_in.push(entry.sequence);
            }
        }
        self.digests.push(verified.digest);
        Ok(())
    }

    /// Takes the member or recorder `fingerprint` off the current roster, unless they are
    /// not on it or are its last admin.
    fn take_out(&mut self, fingerprint: &Fingerprint) -> Result<RosterMember, Error> {
        let not_on_roster = Error::InvalidField {
            field: "member",
            reason: "is not on the roster",
        };
        if let Some(position) = self
            .recorders
            .iter()
            .position(|recorder| recorder.fingerprint == *fingerprint)
        {
            return Ok(self.recorders.remove(position));
        }
        let position = self
            .active
            .iter()
            .position(|member| member.fingerprint == *fingerprint)
            .ok_or(not_on_roster)?;
        let admins = self
            .active
            .iter()
            .filter(|member| member.role == Role::Admin)
            .count();
        if self.active[position].role == Role::Admin && admins == 1 {
            return Err(Error::InvalidField {
                field: "member",
                reason: "is the last admin",
            });
        }
        Ok(self.active.remove(position))
    }

    fn check_signer(&self, entry: &RosterEntry, signer: &VerifyingKey) -> Result<(), Error> {
        let authorised = if entry.sequence == 0 {
            entry.change == RosterChange::Add
                && entry.role == Role::Admin
                && entry.member.verifying_key == *signer
        } else {
            self.admin_by_key(signer).is_some()
        };
        if authorised {
            Ok(())
        } else {
            Err(Error::NotAuthorised {
                kind: StatementKind::RosterEntry,
                signer: hex::encode(&signer.as_bytes()[..8]),
            })
        }
    }

    /// The vault.
    pub fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    /// Digest of the genesis entry, which a device pins.
    pub fn genesis(&self) -> Option<&[u8; 32]> {
        self.digests.first()
    }

    /// Digest of the last entry (zeros for an empty roster).
    pub fn head(&self) -> [u8; 32] {
        self.digests.last().copied().unwrap_or([0; 32])
    }

    /// Number of entries in the chain.
    pub fn len(&self) -> u64 {
        self.digests.len() as u64
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The sequence number of the newest entry that removed a member who held keys (an
    /// admin or member, not a recorder): anything sealed to the board before it is known to
    /// someone who has left.
    pub fn last_holder_removal(&self) -> Option<u64> {
        self.removed
            .iter()
            .zip(&self.removed_in)
            .filter(|(member, _)| member.role.holds_shares())
            .map(|(_, sequence)| *sequence)
            .max()
    }

    /// The admin with key `key` as the roster stood after entry `sequence`: added at or
    /// before it, and not removed by then.
    pub fn admin_at(&self, key: &VerifyingKey, sequence: u64) -> Option<&RosterMember> {
        let current = self.active.iter().map(|member| (member, None));
        let former = self
            .removed
            .iter()
            .zip(&self.removed_in)
            .map(|(member, removed_in)| (member, Some(*removed_in)));
        current
            .chain(former)
            .find(|(member, removed_in)| {
                member.public.verifying_key == *key
                    && member.role == Role::Admin
                    && member.added_in <= sequence
                    && removed_in.is_none_or(|removed_in| removed_in > sequence)
            })
            .map(|(member, _)| member)
    }

    /// Whether this chain contains the entry `digest` at `sequence`: a device that saw that
    /// head before refuses a roster that does not (a rollback).
    pub fn contains(&self, sequence: u64, digest: &[u8; 32]) -> bool {
        usize::try_from(sequence)
            .ok()
            .and_then(|index| self.digests.get(index))
            == Some(digest)
    }

    /// Whether `digest` is the digest of one of this chain's entries: a manifest names the
    /// head its uploader verified, and a head outside the chain means the uploader was shown
    /// another (forked) chain.
    pub fn has_entry(&self, digest: &[u8; 32]) -> bool {
        self.digests.contains(digest)
    }

    /// Current members (admins and members: those who hold shares), in the order they were
    /// added. Recorders are not among them.
    pub fn members(&self) -> &[RosterMember] {
        &self.active
    }

    /// Current recorders, in the order they were added.
    pub fn recorders(&self) -> &[RosterMember] {
        &self.recorders
    }

    /// Members and recorders who were removed.
    pub fn removed(&self) -> &[RosterMember] {
        &self.removed
    }

    /// A current member (not a recorder) by fingerprint.
    pub fn member(&self, fingerprint: &Fingerprint) -> Option<&RosterMember> {
        self.active
            .iter()
            .find(|member| member.fingerprint == *fingerprint)
    }

    /// A current member (not a recorder) by their signing key.
    pub fn member_by_key(&self, key: &VerifyingKey) -> Option<&RosterMember> {
        self.active
            .iter()
            .find(|member| member.public.verifying_key == *key)
    }

    /// A current admin by their signing key.
    pub fn admin_by_key(&self, key: &VerifyingKey) -> Option<&RosterMember> {
        self.member_by_key(key)
            .filter(|member| member.role == Role::Admin)
    }

    /// Verifies a statement that a current admin of this vault must have signed (a node
    /// approval, a policy): its signature, its signer's role and its vault.
    pub fn verify_by_admin<T: StatementBody>(
        &self,
        signed: &SignedStatement,
    ) -> Result<(Verified<T>, &RosterMember), Error> {
        let (verified, signer) = self.verify_by_member::<T>(signed)?;
        if signer.role != Role::Admin {
            return Err(not_authorised(signed));
        }
        Ok((verified, signer))
    }

    /// Verifies a statement that a current member of this vault must have signed (a
    /// request, a vote): its signature, that its signer is a member on the roster (a
    /// recorder is refused), and its vault.
    pub fn verify_by_member<T: StatementBody>(
        &self,
        signed: &SignedStatement,
    ) -> Result<(Verified<T>, &RosterMember), Error> {
        self.verify_signed_by(signed, &[])
    }

    /// Verifies a recording manifest's signature, that its signer is a current member or
    /// recorder, and its vault.
    pub fn verify_by_uploader<T: StatementBody>(
        &self,
        signed: &SignedStatement,
    ) -> Result<(Verified<T>, &RosterMember), Error> {
        self.verify_signed_by(signed, &self.recorders)
    }

    /// Verifies `signed` as signed by a current member or one of `also`.
    fn verify_signed_by<'a, T: StatementBody>(
        &'a self,
        signed: &SignedStatement,
        also: &'a [RosterMember],
    ) -> Result<(Verified<T>, &'a RosterMember), Error> {
        let verified = signed.verify::<T>()?;
        if verified.statement.vault_id() != self.vault_id {
            return Err(Error::BindingMismatch { field: "vault" });
        }
        let signer = self
            .active
            .iter()
            .chain(also)
            .find(|member| member.public.verifying_key == verified.signer)
            .ok_or_else(|| not_authorised(signed))?;
        Ok((verified, signer))
    }

    /// Every current member's recipient (for sealing metadata and released copies); no
    /// recorder's.
    pub fn recipients(&self) -> Vec<Recipient> {
        self.active
            .iter()
            .map(|member| member.public.recipient)
            .collect()
    }
}

fn not_authorised(signed: &SignedStatement) -> Error {
    Error::NotAuthorised {
        kind: signed.kind(),
        signer: hex::encode(&signed.signer().as_bytes()[..8]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> (VaultId, Identity, Identity, Vec<SignedStatement>) {
        let vault = VaultId::random();
        let admin = Identity::generate();
        let member = Identity::generate();
        let genesis = Roster::genesis_entry(vault, &admin, "Ada", 1).unwrap();
        let mut roster = Roster::empty(vault);
        roster.apply(&genesis).unwrap();
        let add = roster
            .sign_change(
                &admin,
                RosterChange::Add,
                member.public(),
                "Bo",
                Role::Member,
                2,
            )
            .unwrap();
        (vault, admin, member, vec![genesis, add])
    }

    #[test]
    fn verifies_a_chain_and_pins_its_genesis() {
        let (vault, admin, member, entries) = chain();
        let roster = Roster::verify(vault, &entries, Some(&entries[0].digest())).unwrap();
        assert_eq!(roster.members().len(), 2);
        assert!(roster.admin_by_key(&admin.public().verifying_key).is_some());
        assert_eq!(
            roster.member(&member.fingerprint()).unwrap().role,
            Role::Member
        );
        assert!(roster.contains(1, &entries[1].digest()));
        assert!(matches!(
            Roster::verify(vault, &entries, Some(&[7; 32])),
            Err(Error::BindingMismatch {
                field: "roster genesis"
            })
        ));
        assert!(Roster::verify(VaultId::random(), &entries, None).is_err());
    }

    #[test]
    fn admin_statements_need_a_current_admin_of_the_vault() {
        use crate::statement::VaultPolicy;
        let (vault, admin, member, entries) = chain();
        let roster = Roster::verify(vault, &entries, None).unwrap();
        let policy = |vault_id| VaultPolicy {
            vault_id,
            sequence: 0,
            min_threshold: 2,
            issued_at: 3,
        };
        let (verified, signer) = roster
            .verify_by_admin::<VaultPolicy>(&SignedStatement::sign(&policy(vault), &admin))
            .unwrap();
        assert_eq!(verified.statement.min_threshold, 2);
        assert_eq!(signer.fingerprint, admin.fingerprint());
        let by_member = SignedStatement::sign(&policy(vault), &member);
        assert!(matches!(
            roster.verify_by_admin::<VaultPolicy>(&by_member),
            Err(Error::NotAuthorised { .. })
        ));
        assert!(roster.verify_by_member::<VaultPolicy>(&by_member).is_ok());
        assert!(matches!(
            roster.verify_by_admin::<VaultPolicy>(&SignedStatement::sign(
                &policy(VaultId::random()),
                &admin
            )),
            Err(Error::BindingMismatch { field: "vault" })
        ));
        let stranger = SignedStatement::sign(&policy(vault), &Identity::generate());
        assert!(matches!(
            roster.verify_by_member::<VaultPolicy>(&stranger),
            Err(Error::NotAuthorised { .. })
        ));
    }

    #[test]
    fn a_non_admin_cannot_add_anyone() {
        let (vault, _admin, member, entries) = chain();
        let roster = Roster::verify(vault, &entries, None).unwrap();
        let intruder = Identity::generate();
        assert!(matches!(
            roster.sign_change(
                &member,
                RosterChange::Add,
                intruder.public(),
                "Eve",
                Role::Admin,
                3
            ),
            Err(Error::NotAuthorised { .. })
        ));
        // A server forging the genesis of a second chain is caught by the pin.
        let forged = Roster::genesis_entry(vault, &intruder, "Eve", 1).unwrap();
        assert!(Roster::verify(vault, &[forged], Some(&entries[0].digest())).is_err());
    }

    #[test]
    fn dropping_or_reordering_entries_is_refused() {
        let (vault, admin, member, mut entries) = chain();
        let roster = Roster::verify(vault, &entries, None).unwrap();
        let removal = roster
            .sign_change(
                &admin,
                RosterChange::Remove,
                member.public(),
                "Bo",
                Role::Member,
                3,
            )
            .unwrap();
        entries.push(removal);
        let full = Roster::verify(vault, &entries, None).unwrap();
        assert!(full.member(&member.fingerprint()).is_none());
        assert_eq!(full.removed().len(), 1);
        let skipped = [entries[0].clone(), entries[2].clone()];
        assert!(matches!(
            Roster::verify(vault, &skipped, None),
            Err(Error::BindingMismatch {
                field: "roster sequence"
            })
        ));
    }

    #[test]
    fn the_last_admin_cannot_be_removed() {
        let (vault, admin, _member, entries) = chain();
        let roster = Roster::verify(vault, &entries, None).unwrap();
        assert!(matches!(
            roster.sign_change(
                &admin,
                RosterChange::Remove,
                admin.public(),
                "Ada",
                Role::Admin,
                3
            ),
            Err(Error::InvalidField {
                reason: "is the last admin",
                ..
            })
        ));
    }

    #[test]
    fn a_recorder_uploads_but_holds_nothing_and_signs_no_member_statement() {
        use crate::statement::VaultPolicy;
        let (vault, admin, _member, mut entries) = chain();
        let recorder = Identity::generate();
        let roster = Roster::verify(vault, &entries, None).unwrap();
        entries.push(
            roster
                .sign_change(
                    &admin,
                    RosterChange::Add,
                    recorder.public(),
                    "Jibri",
                    Role::Recorder,
                    3,
                )
                .unwrap(),
        );
        let roster = Roster::verify(vault, &entries, None).unwrap();
        assert_eq!(
            roster.members().len(),
            2,
            "a recorder is not a share holder"
        );
        assert_eq!(roster.recorders()[0].fingerprint, recorder.fingerprint());
        assert!(roster.member(&recorder.fingerprint()).is_none());
        assert!(!roster.recipients().contains(&recorder.public().recipient));

        let statement = VaultPolicy {
            vault_id: vault,
            sequence: 0,
            min_threshold: 2,
            issued_at: 3,
        };
        let by_recorder = SignedStatement::sign(&statement, &recorder);
        let (_, signer) = roster
            .verify_by_uploader::<VaultPolicy>(&by_recorder)
            .unwrap();
        assert_eq!(signer.role, Role::Recorder);
        assert!(matches!(
            roster.verify_by_member::<VaultPolicy>(&by_recorder),
            Err(Error::NotAuthorised { .. })
        ));
        let stranger = SignedStatement::sign(&statement, &Identity::generate());
        assert!(roster.verify_by_uploader::<VaultPolicy>(&stranger).is_err());
        assert!(
            roster
                .sign_change(
                    &recorder,
                    RosterChange::Add,
                    Identity::generate().public(),
                    "Eve",
                    Role::Member,
                    4
                )
                .is_err(),
            "a recorder signs no roster entry"
        );

        let removal = roster
            .sign_change(
                &admin,
                RosterChange::Remove,
                recorder.public(),
                "Jibri",
                Role::Recorder,
                4,
            )
            .unwrap();
        entries.push(removal);
        let roster = Roster::verify(vault, &entries, None).unwrap();
        assert!(roster.recorders().is_empty());
        assert_eq!(roster.removed()[0].role, Role::Recorder);
        assert!(
            roster
                .verify_by_uploader::<VaultPolicy>(&by_recorder)
                .is_err()
        );
    }
}
