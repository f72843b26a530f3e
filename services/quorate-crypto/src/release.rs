//! Released minutes: what lets members read and search a transcript a quorum released.
//!
//! - [`SearchKeyCommitment`]: an admin's signed word on which search key the vault uses. A
//!   holder opens its sealed copy of the key and checks it against the commitment, so a
//!   server that seals a key of its own choosing (anyone can seal to a public recipient) is
//!   caught before a single token is computed under it.
//! - [`ReleaseManifest`]: the node's signed description of a released copy: the copy is an
//!   age file to a fresh release key R; R's secret is sealed to each member ([`seal_release_key`]),
//!   and the blind-index postings are fixed by their count and digest.
//! - [`postings`]: (token, segment, term frequency) for every word of every segment.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    AgeSecretKey, Error, Fingerprint, NodeId, Recipient, RecordingId, RequestId, SecretBytes,
    TranscriptId, VaultId,
    blind::{BlindToken, SearchKey, normalise},
    envelope,
    roster::Roster,
    statement::{Role, SignedStatement, StatementBody, StatementKind, decode_checked},
    wire::{Reader, Writer},
};

const KEY_CHECK_DOMAIN: &[u8] = b"quorate/search-key-check/v1";
const RELEASE_KEY_DOMAIN: &str = "quorate/release-key/v1";

impl SearchKey {
    /// A value that identifies the key without revealing it: SHA-256 of a domain string and
    /// the 32 secret bytes.
    pub fn check_value(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(KEY_CHECK_DOMAIN);
        hasher.update(self.expose_secret());
        hasher.finalize().into()
    }
}

/// An admin's signed word on the vault's search key (by its check value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchKeyCommitment {
    /// The vault.
    pub vault_id: VaultId,
    /// [`SearchKey::check_value`] of the key.
    pub key_check: [u8; 32],
    /// When signed, Unix seconds.
    pub issued_at: i64,
}

impl StatementBody for SearchKeyCommitment {
    const KIND: StatementKind = StatementKind::SearchKeyCommitment;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new("quorate/search-key-commitment/v1");
        writer
            .fixed(self.vault_id.as_bytes())
            .fixed(&self.key_check)
            .i64(self.issued_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            "quorate/search-key-commitment/v1",
            "search key commitment",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    key_check: reader.array()?,
                    issued_at: reader.i64()?,
                })
            },
            |_| Ok(()),
        )
    }
}

/// An admin's signed word that the vault's search key changed (after a member left, who held
/// the old one). Generation 0 is the [`SearchKeyCommitment`]; each rotation names the next
/// generation, the check value of the key it replaces (so rotations form one chain), and the
/// roster head it was made for: a device refuses a newest key made before a key holder's
/// removal, so a server that withholds a rotation is caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchKeyRotation {
    /// The vault.
    pub vault_id: VaultId,
    /// The new key's generation, from 1.
    pub generation: u64,
    /// [`SearchKey::check_value`] of the key it replaces (generation − 1).
    pub previous_check: [u8; 32],
    /// [`SearchKey::check_value`] of the new key.
    pub key_check: [u8; 32],
    /// The sequence number of the roster entry `roster_head` is the digest of.
    pub roster_sequence: u64,
    /// The roster head the new key was made for (its members hold it).
    pub roster_head: [u8; 32],
    /// When signed, Unix seconds.
    pub issued_at: i64,
}

const ROTATION_DOMAIN: &str = "quorate/search-key-rotation/v1";

impl StatementBody for SearchKeyRotation {
    const KIND: StatementKind = StatementKind::SearchKeyRotation;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new(ROTATION_DOMAIN);
        writer
            .fixed(self.vault_id.as_bytes())
            .u64(self.generation)
            .fixed(&self.previous_check)
            .fixed(&self.key_check)
            .u64(self.roster_sequence)
            .fixed(&self.roster_head)
            .i64(self.issued_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            ROTATION_DOMAIN,
            "search key rotation",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    generation: reader.u64()?,
                    previous_check: reader.array()?,
                    key_check: reader.array()?,
                    roster_sequence: reader.u64()?,
                    roster_head: reader.array()?,
                    issued_at: reader.i64()?,
                })
            },
            |rotation| {
                if rotation.generation == 0 {
                    return Err(Error::InvalidField {
                        field: "generation",
                        reason: "a rotation makes generation 1 or later",
                    });
                }
                if rotation.key_check == rotation.previous_check {
                    return Err(Error::InvalidField {
                        field: "key check",
                        reason: "a rotation must change the key",
                    });
                }
                Ok(())
            },
        )
    }
}

/// The vault's search keys as a device verified them: generation 0's commitment, then each
/// rotation, every link signed by an admin of the roster it names and naming the key before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchKeyChain {
    /// The check value of each generation's key, from 0.
    checks: Vec<[u8; 32]>,
    /// The roster entry the newest key was made for (0, the genesis, for generation 0).
    made_for: u64,
}

impl SearchKeyChain {
    /// Verifies `commitment` (generation 0) and `rotations` (generations 1, 2, … in order)
    /// against `roster`.
    pub fn verify(
        roster: &Roster,
        commitment: &SignedStatement,
        rotations: &[SignedStatement],
    ) -> Result<Self, Error> {
        let first = commitment.verify::<SearchKeyCommitment>()?;
        let signed_by_an_admin = roster
            .members()
            .iter()
            .chain(roster.removed())
            .any(|member| {
                member.role == Role::Admin && member.public.verifying_key == first.signer
            });
        if first.statement.vault_id != roster.vault_id() {
            return Err(Error::BindingMismatch { field: "vault ID" });
        }
        if !signed_by_an_admin {
            return Err(not_authorised(
                StatementKind::SearchKeyCommitment,
                &first.signer,
            ));
        }
        let mut chain = Self {
            checks: vec![first.statement.key_check],
            made_for: 0,
        };
        for signed in rotations {
            chain.extend(roster, signed)?;
        }
        Ok(chain)
    }

    /// Checks one rotation as the next link and appends it.
    fn extend(&mut self, roster: &Roster, signed: &SignedStatement) -> Result<(), Error> {
        let verified = signed.verify::<SearchKeyRotation>()?;
        let rotation = verified.statement;
        if rotation.vault_id != roster.vault_id() {
            return Err(Error::BindingMismatch { field: "vault ID" });
        }
        if rotation.generation != self.generation() + 1 {
            return Err(Error::BindingMismatch {
                field: "search key generation (a rotation is missing or repeated)",
            });
        }
        if rotation.previous_check != self.checks[self.checks.len() - 1] {
            return Err(Error::BindingMismatch {
                field: "previous search key (the rotation replaces another key)",
            });
        }
        if !roster.contains(rotation.roster_sequence, &rotation.roster_head)
            || rotation.roster_sequence < self.made_for
        {
            return Err(Error::BindingMismatch {
                field: "roster head of a search key rotation",
            });
        }
        if roster
            .admin_at(&verified.signer, rotation.roster_sequence)
            .is_none()
        {
            return Err(not_authorised(
                StatementKind::SearchKeyRotation,
                &verified.signer,
            ));
        }
        self.checks.push(rotation.key_check);
        self.made_for = rotation.roster_sequence;
        Ok(())
    }

    /// The newest generation.
    pub fn generation(&self) -> u64 {
        self.checks.len() as u64 - 1
    }

    /// The check value of generation `generation`'s key.
    pub fn check_value(&self, generation: u64) -> Option<&[u8; 32]> {
        self.checks.get(usize::try_from(generation).ok()?)
    }

    /// Refuses a key other than generation `generation`'s.
    pub fn check_key(&self, generation: u64, key: &SearchKey) -> Result<(), Error> {
        if self.check_value(generation) == Some(&key.check_value()) {
            Ok(())
        } else {
            Err(Error::BindingMismatch {
                field: "search key (it is not the one an admin committed to)",
            })
        }
    }

    /// The sequence number of a roster entry that removed a key holder after the newest key
    /// was made: that key is known to someone who left, and must be rotated before anything
    /// new is indexed under it. `None` while the newest key is held by current members only.
    pub fn stale_since(&self, roster: &Roster) -> Option<u64> {
        roster
            .last_holder_removal()
            .filter(|removal| *removal > self.made_for)
    }
}

fn not_authorised(kind: StatementKind, signer: &ed25519_dalek::VerifyingKey) -> Error {
    Error::NotAuthorised {
        kind,
        signer: hex::encode(&signer.as_bytes()[..8]),
    }
}

/// A node's signed description of a released transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseManifest {
    /// The vault.
    pub vault_id: VaultId,
    /// The transcript released.
    pub transcript_id: TranscriptId,
    /// The recording it transcribes.
    pub recording_id: RecordingId,
    /// Digest of the transcript's signed manifest.
    pub transcript_manifest_digest: [u8; 32],
    /// The quorate release request.
    pub request_id: RequestId,
    /// The node that released it.
    pub node_id: NodeId,
    /// The recipient of the release key R the copy is encrypted to.
    pub release_recipient: Recipient,
    /// The members R was sealed to, in roster order.
    pub members: Vec<Fingerprint>,
    /// Exact length of the released copy (age ciphertext).
    pub ciphertext_len: u64,
    /// SHA-256 of the released copy.
    pub ciphertext_sha256: [u8; 32],
    /// How many postings the blind index holds for it.
    pub postings_count: u64,
    /// [`postings_digest`] of those postings.
    pub postings_sha256: [u8; 32],
    /// When made, Unix seconds.
    pub created_at: i64,
}

impl StatementBody for ReleaseManifest {
    const KIND: StatementKind = StatementKind::ReleaseManifest;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new("quorate/release-manifest/v1");
        writer
            .fixed(self.vault_id.as_bytes())
            .fixed(self.transcript_id.as_bytes())
            .fixed(self.recording_id.as_bytes())
            .fixed(&self.transcript_manifest_digest)
            .fixed(self.request_id.as_bytes())
            .fixed(self.node_id.as_bytes())
            .fixed(self.release_recipient.as_bytes())
            .list(&self.members, |writer, member| {
                writer.fixed(member.as_bytes());
            })
            .u64(self.ciphertext_len)
            .fixed(&self.ciphertext_sha256)
            .u64(self.postings_count)
            .fixed(&self.postings_sha256)
            .i64(self.created_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            "quorate/release-manifest/v1",
            "release manifest",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    transcript_id: TranscriptId::from_bytes(reader.array()?),
                    recording_id: RecordingId::from_bytes(reader.array()?),
                    transcript_manifest_digest: reader.array()?,
                    request_id: RequestId::from_bytes(reader.array()?),
                    node_id: NodeId::from_bytes(reader.array()?),
                    release_recipient: Recipient::from_bytes(reader.array()?),
                    members: reader.list(|reader| Ok(Fingerprint::from_bytes(reader.array()?)))?,
                    ciphertext_len: reader.u64()?,
                    ciphertext_sha256: reader.array()?,
                    postings_count: reader.u64()?,
                    postings_sha256: reader.array()?,
                    created_at: reader.i64()?,
                })
            },
            |manifest| {
                let mut members = manifest.members.clone();
                members.sort();
                members.dedup();
                if manifest.members.is_empty() || members.len() != manifest.members.len() {
                    return Err(Error::InvalidField {
                        field: "members",
                        reason: "must name at least one member, each once",
                    });
                }
                Ok(())
            },
        )
    }
}

/// Seals the release key R's secret to one member, bound to the vault and transcript.
pub fn seal_release_key(
    vault_id: VaultId,
    transcript_id: TranscriptId,
    key: &AgeSecretKey,
    member: &Recipient,
) -> Result<Vec<u8>, Error> {
    let mut writer = Writer::new(RELEASE_KEY_DOMAIN);
    writer
        .fixed(vault_id.as_bytes())
        .fixed(transcript_id.as_bytes())
        .fixed(key.expose_secret());
    envelope::seal(
        &Zeroizing::new(writer.finish()),
        std::slice::from_ref(member),
    )
}

/// Opens a sealed release key with the member's own key and checks it is the key of
/// `manifest`'s copy (its vault, transcript and recipient).
pub fn open_release_key(
    sealed: &[u8],
    own: &AgeSecretKey,
    manifest: &ReleaseManifest,
) -> Result<AgeSecretKey, Error> {
    let plaintext = envelope::open(sealed, own, "sealed release key")?;
    let mut reader = Reader::new(&plaintext, RELEASE_KEY_DOMAIN, "sealed release key")?;
    if reader.array::<16>()? != *manifest.vault_id.as_bytes() {
        return Err(Error::BindingMismatch { field: "vault ID" });
    }
    if reader.array::<16>()? != *manifest.transcript_id.as_bytes() {
        return Err(Error::BindingMismatch {
            field: "transcript ID",
        });
    }
    let key = AgeSecretKey::from_secret(SecretBytes::new(reader.array()?));
    reader.finish()?;
    if key.recipient() != manifest.release_recipient {
        return Err(Error::BindingMismatch {
            field: "release key (it does not open this copy)",
        });
    }
    Ok(key)
}

/// One blind-index posting: a token occurs `tf` times in segment `segment` (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Posting {
    /// The blind token.
    pub token: BlindToken,
    /// The segment's position in the transcript, from 0.
    pub segment: u32,
    /// How often the word occurs in that segment.
    pub tf: u32,
}

/// The postings of a transcript's segments, ordered by segment then token.
pub fn postings<'a>(key: &SearchKey, segments: impl IntoIterator<Item = &'a str>) -> Vec<Posting> {
    let mut all = Vec::new();
    for (segment, text) in segments.into_iter().enumerate() {
        let mut counts = std::collections::BTreeMap::<BlindToken, u32>::new();
        // The words are plaintext: wiped when dropped.
        for word in Zeroizing::new(normalise(text)).iter() {
            *counts.entry(key.token(word)).or_default() += 1;
        }
        all.extend(counts.into_iter().map(|(token, tf)| Posting {
            token,
            segment: segment as u32,
            tf,
        }));
    }
    all
}

/// SHA-256 over the postings in the order given (token, segment and tf, big-endian).
pub fn postings_digest(postings: &[Posting]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"quorate/postings/v1");
    for posting in postings {
        hasher.update(posting.token.0);
        hasher.update(posting.segment.to_be_bytes());
        hasher.update(posting.tf.to_be_bytes());
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, statement::SignedStatement};

    #[test]
    fn postings_count_words_per_segment() {
        let key = SearchKey::generate();
        let found = postings(&key, ["Budget, budget and more", "", "budget"]);
        let budget = key.token("budget");
        assert!(found.contains(&Posting {
            token: budget,
            segment: 0,
            tf: 2
        }));
        assert!(found.contains(&Posting {
            token: budget,
            segment: 2,
            tf: 1
        }));
        assert_eq!(found.len(), 4);
        assert_ne!(
            postings_digest(&found),
            postings_digest(&found[..3]),
            "the digest covers every posting"
        );
    }

    #[test]
    fn release_key_opens_only_for_its_copy() {
        let member = AgeSecretKey::generate();
        let release = AgeSecretKey::generate();
        let signer = Identity::generate();
        let manifest = ReleaseManifest {
            vault_id: VaultId::random(),
            transcript_id: TranscriptId::random(),
            recording_id: RecordingId::random(),
            transcript_manifest_digest: [1; 32],
            request_id: RequestId::random(),
            node_id: NodeId::random(),
            release_recipient: release.recipient(),
            members: vec![Fingerprint::from_bytes([7; 32])],
            ciphertext_len: 10,
            ciphertext_sha256: [2; 32],
            postings_count: 0,
            postings_sha256: [3; 32],
            created_at: 1,
        };
        let signed = SignedStatement::sign(&manifest, &signer);
        assert_eq!(
            signed.verify::<ReleaseManifest>().unwrap().statement,
            manifest
        );
        let sealed = seal_release_key(
            manifest.vault_id,
            manifest.transcript_id,
            &release,
            &member.recipient(),
        )
        .unwrap();
        let opened = open_release_key(&sealed, &member, &manifest).unwrap();
        assert_eq!(opened.recipient(), release.recipient());
        let other = ReleaseManifest {
            transcript_id: TranscriptId::random(),
            ..manifest.clone()
        };
        assert!(open_release_key(&sealed, &member, &other).is_err());
        let wrong_key = ReleaseManifest {
            release_recipient: AgeSecretKey::generate().recipient(),
            ..manifest
        };
        assert!(open_release_key(&sealed, &member, &wrong_key).is_err());
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;
    use crate::{Identity, statement::RosterChange};

    struct Board {
        roster: Roster,
        admin: Identity,
        member: Identity,
    }

    /// Ada (admin) and Bo (member).
    fn board() -> Board {
        let admin = Identity::generate();
        let member = Identity::generate();
        let mut roster = Roster::empty(VaultId::random());
        roster
            .apply(&Roster::genesis_entry(roster.vault_id(), &admin, "Ada", 1).unwrap())
            .unwrap();
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
        roster.apply(&add).unwrap();
        Board {
            roster,
            admin,
            member,
        }
    }

    fn commitment(board: &Board, key: &SearchKey) -> SignedStatement {
        let body = SearchKeyCommitment {
            vault_id: board.roster.vault_id(),
            key_check: key.check_value(),
            issued_at: 1,
        };
        SignedStatement::sign(&body, &board.admin)
    }

    fn rotation(
        board: &Board,
        generation: u64,
        from: &SearchKey,
        to: &SearchKey,
    ) -> SearchKeyRotation {
        SearchKeyRotation {
            vault_id: board.roster.vault_id(),
            generation,
            previous_check: from.check_value(),
            key_check: to.check_value(),
            roster_sequence: board.roster.len() - 1,
            roster_head: board.roster.head(),
            issued_at: 3,
        }
    }

    fn remove_member(board: &mut Board) {
        let remove = board
            .roster
            .sign_change(
                &board.admin,
                RosterChange::Remove,
                board.member.public(),
                "Bo",
                Role::Member,
                3,
            )
            .unwrap();
        board.roster.apply(&remove).unwrap();
    }

    #[test]
    fn a_rotation_after_a_removal_makes_the_key_fresh_again() {
        let mut board = board();
        let (old, new) = (SearchKey::generate(), SearchKey::generate());
        let first = commitment(&board, &old);
        let chain = SearchKeyChain::verify(&board.roster, &first, &[]).unwrap();
        assert_eq!(
            (chain.generation(), chain.stale_since(&board.roster)),
            (0, None)
        );
        remove_member(&mut board);
        let chain = SearchKeyChain::verify(&board.roster, &first, &[]).unwrap();
        assert_eq!(
            chain.stale_since(&board.roster),
            Some(2),
            "Bo holds the old key"
        );
        let rotated = SignedStatement::sign(&rotation(&board, 1, &old, &new), &board.admin);
        let chain = SearchKeyChain::verify(&board.roster, &first, &[rotated]).unwrap();
        assert_eq!(
            (chain.generation(), chain.stale_since(&board.roster)),
            (1, None)
        );
        assert!(chain.check_key(1, &new).is_ok());
        assert!(chain.check_key(1, &old).is_err());
        assert!(chain.check_key(0, &old).is_ok());
    }

    #[test]
    fn a_broken_or_unauthorised_rotation_is_refused() {
        let mut board = board();
        let (old, new) = (SearchKey::generate(), SearchKey::generate());
        let first = commitment(&board, &old);
        let stale_head = rotation(&board, 1, &old, &new);
        remove_member(&mut board);
        let good = rotation(&board, 1, &old, &new);
        let verify = |body: &SearchKeyRotation, signer: &Identity| {
            SearchKeyChain::verify(
                &board.roster,
                &first,
                &[SignedStatement::sign(body, signer)],
            )
        };
        assert!(verify(&good, &board.admin).is_ok());
        assert!(
            matches!(
                verify(&good, &board.member),
                Err(Error::NotAuthorised { .. })
            ),
            "Bo was never an admin"
        );
        let skipped = SearchKeyRotation {
            generation: 2,
            ..good.clone()
        };
        assert!(verify(&skipped, &board.admin).is_err());
        let other_key = SearchKeyRotation {
            previous_check: SearchKey::generate().check_value(),
            ..good.clone()
        };
        assert!(verify(&other_key, &board.admin).is_err());
        let made_up_head = SearchKeyRotation {
            roster_head: [9; 32],
            ..good.clone()
        };
        assert!(verify(&made_up_head, &board.admin).is_err());
        // Valid when made, but before Bo left: still stale.
        let chain = verify(&stale_head, &board.admin).unwrap();
        assert_eq!(chain.stale_since(&board.roster), Some(2));
    }
}
