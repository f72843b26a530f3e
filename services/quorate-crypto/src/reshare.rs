//! The signed half of a redistribution ([`crate::vss`]): each dealing holder signs what they
//! dealt, bound to the sharing it replaces and the roster it moves to, and a new holder
//! accepts a new share only from k such statements that agree.
//!
//! Any k current holders may deal: the first k deals the server collected make the
//! redistribution, and every new holder is handed the same k (their acceptances must agree
//! on the new commitments before the old shares go).
//!
//! What the binding stops: a server that replays a redistribution onto another roster (the
//! new roster head and holders are signed), that mixes dealers of two redistributions (all
//! must name the same re-share, current commitments and new holders), that passes a holder's
//! deal off as another's (each dealer is checked against the current holder at their
//! index), or that swaps sealed sub-shares to frame an honest dealer (each sealed sub-share's
//! SHA-256 is signed, so a swap is the server's fault and is said to be).

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::{
    Error, Fingerprint, VaultId,
    statement::{StatementBody, StatementKind, Verified, decode_checked},
    threshold::Subject,
    vss::{Commitments, ScalarShare},
    wire::Writer,
};

const DOMAIN: &str = "quorate/reshare-deal/v1";

/// One current holder's signed deal of their share to the new holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareDeal {
    /// The vault.
    pub vault_id: VaultId,
    /// What the shared secret opens.
    pub subject: Subject,
    /// This re-share, chosen by whoever starts it: every deal of one re-share names it, so
    /// deals of a retried re-share cannot be mixed with the first's.
    pub reshare_id: [u8; 16],
    /// SHA-256 of the current commitments (their bytes), which this deal replaces.
    pub current_commitments_sha256: [u8; 32],
    /// The dealer's index among the current holders.
    pub dealer: u8,
    /// Shares needed after the re-share (the vault policy the dealer verified).
    pub new_k: u8,
    /// The roster head the new holders belong to.
    pub roster_head: [u8; 32],
    /// The new holders: new share `i` is `holders[i - 1]`'s.
    pub holders: Vec<Fingerprint>,
    /// The dealer's commitments (their length is the new k).
    pub commitments: Vec<u8>,
    /// SHA-256 of the sealed sub-share for each new holder, in holder order.
    pub sealed_subshares_sha256: Vec<[u8; 32]>,
    /// When signed, Unix seconds.
    pub issued_at: i64,
}

impl StatementBody for ReshareDeal {
    const KIND: StatementKind = StatementKind::ReshareDeal;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new(DOMAIN);
        writer.fixed(self.vault_id.as_bytes());
        self.subject.encode(&mut writer);
        writer
            .fixed(&self.reshare_id)
            .fixed(&self.current_commitments_sha256)
            .u8(self.dealer)
            .u8(self.new_k)
            .fixed(&self.roster_head)
            .list(&self.holders, |writer, holder| {
                writer.fixed(holder.as_bytes());
            })
            .bytes(&self.commitments)
            .list(&self.sealed_subshares_sha256, |writer, digest| {
                writer.fixed(digest);
            })
            .i64(self.issued_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            DOMAIN,
            "reshare deal",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    subject: Subject::decode(reader)?,
                    reshare_id: reader.array()?,
                    current_commitments_sha256: reader.array()?,
                    dealer: reader.u8()?,
                    new_k: reader.u8()?,
                    roster_head: reader.array()?,
                    holders: reader.list(|reader| Ok(Fingerprint::from_bytes(reader.array()?)))?,
                    commitments: reader.bytes()?.to_vec(),
                    sealed_subshares_sha256: reader.list(|reader| reader.array())?,
                    issued_at: reader.i64()?,
                })
            },
            ReshareDeal::check,
        )
    }
}

impl ReshareDeal {
    /// The shape every deal must have: a dealer index, one sealed sub-share per new
    /// holder, commitments that parse and no more of them than holders.
    fn check(&self) -> Result<(), Error> {
        let invalid = |reason| {
            Err(Error::InvalidField {
                field: "reshare deal",
                reason,
            })
        };
        if self.dealer == 0 {
            return invalid("the dealer must be a share index (1 to 255)");
        }
        if self.holders.is_empty()
            || self.holders.len() > 255
            || self.sealed_subshares_sha256.len() != self.holders.len()
        {
            return invalid("one sealed sub-share for each of 1 to 255 new holders");
        }
        let unique: std::collections::BTreeSet<_> = self.holders.iter().collect();
        if unique.len() != self.holders.len() {
            return invalid("each new holder once");
        }
        if self.new_k == 0 || usize::from(self.new_k) > self.holders.len() {
            return invalid("the new threshold must be 1 to the number of new holders");
        }
        if self.dealt_commitments()?.k() != usize::from(self.new_k) {
            return invalid("one commitment per coefficient of the new threshold");
        }
        Ok(())
    }

    /// The dealer's commitments, parsed.
    pub fn dealt_commitments(&self) -> Result<Commitments, Error> {
        Commitments::from_bytes(&self.commitments)
    }
}

/// SHA-256 of a sharing's commitments, as deals name the sharing they replace.
pub fn commitments_sha256(commitments: &Commitments) -> [u8; 32] {
    Sha256::digest(commitments.to_bytes()).into()
}

/// What a new holder expects of a redistribution: the sharing it replaces, who holds that
/// sharing's shares now (the key of the holder at each index), and the roster head and new
/// holders its own device verified.
pub struct Expected<'a> {
    /// The vault.
    pub vault_id: VaultId,
    /// What the secret opens.
    pub subject: Subject,
    /// The current commitments, as the server gives them.
    pub current: &'a Commitments,
    /// The commitment to the secret in the subject's signed manifest, which no re-share
    /// changes: with `current_k` it pins `current` to the true sharing.
    pub secret_commitment: curve25519_dalek::ristretto::RistrettoPoint,
    /// Shares needed now: the signed manifest's k, or the signed `new_k` of the re-share
    /// that made the current sharing.
    pub current_k: usize,
    /// Shares needed after the re-share: the vault policy the device verified.
    pub new_k: usize,
    /// The key of the current holder of share `index`, if there is one.
    pub current_holder: &'a dyn Fn(u8) -> Option<VerifyingKey>,
    /// The roster head the device verified and pinned.
    pub roster_head: [u8; 32],
    /// The new holders, in order, as the device derives them from that roster.
    pub holders: &'a [Fingerprint],
}

impl std::fmt::Debug for Expected<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expected")
            .field("vault_id", &self.vault_id)
            .field("subject", &self.subject)
            .field("roster_head", &hex::encode(self.roster_head))
            .field("holders", &self.holders.len())
            .finish_non_exhaustive()
    }
}

/// Checks that the current commitments the server gave are the subject's true sharing: the
/// signed commitment to the secret and the signed k. A dealer checks this before dealing
/// and a new holder before accepting: against made-up commitments that only the dealers'
/// shares satisfy, a re-share would share another secret and lose the key.
pub fn check_current(expected: &Expected<'_>) -> Result<(), Error> {
    if expected.current.secret() != expected.secret_commitment
        || expected.current.k() != expected.current_k
    {
        return Err(Error::BindingMismatch {
            field: "current commitments (not the sharing the signed manifest and re-shares describe)",
        });
    }
    Ok(())
}

/// Checks that `deals` (verified statements) are one redistribution of `expected.current`
/// onto exactly the expected roster and holders: exactly the current k of them, by distinct
/// dealers, each signed by the current holder at its dealer index, all naming the same
/// re-share, subject, sharing, roster head and holders, and each dealing its own share.
/// Returns the new commitments, which every party given the same deals computes alike.
pub fn check_deals(
    expected: &Expected<'_>,
    deals: &[Verified<ReshareDeal>],
) -> Result<Commitments, Error> {
    let mismatch = |field| Err(Error::BindingMismatch { field });
    let Some(first) = deals.first() else {
        return Err(Error::NotEnoughShares {
            have: 0,
            need: expected.current.k(),
        });
    };
    check_current(expected)?;
    if deals.len() != expected.current_k {
        return mismatch("dealers (exactly the current k of them)");
    }
    let current_sha256 = commitments_sha256(expected.current);
    for verified in deals {
        let deal = &verified.statement;
        if deal.vault_id != expected.vault_id {
            return mismatch("vault");
        }
        if deal.subject != expected.subject {
            return mismatch("subject");
        }
        if deal.current_commitments_sha256 != current_sha256 {
            return mismatch("current commitments");
        }
        if deal.roster_head != expected.roster_head {
            return mismatch("roster head");
        }
        if deal.holders != expected.holders {
            return mismatch("new holders");
        }
        if deal.reshare_id != first.statement.reshare_id {
            return mismatch("re-share");
        }
        if usize::from(deal.new_k) != expected.new_k {
            return mismatch("new threshold");
        }
        // Not the holder's fault: anyone (the server too) can sign a deal in their name.
        if (expected.current_holder)(deal.dealer) != Some(verified.signer) {
            return mismatch("signer of a deal (not the current holder at its index)");
        }
    }
    let parsed = deals
        .iter()
        .map(|verified| {
            Ok((
                verified.statement.dealer,
                verified.statement.dealt_commitments()?,
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let dealt: Vec<(u8, &Commitments)> = parsed
        .iter()
        .map(|(dealer, commitments)| (*dealer, commitments))
        .collect();
    crate::vss::redistributed_commitments(expected.current, expected.new_k, &dealt)
}

/// A sharing of one subject's secret as devices follow it: its commitments and who holds
/// share `i` (`holders[i - 1]`). The first is the signed manifest's; each completed re-share
/// makes the next, and any device replays them from public data alone ([`Sharing::after`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharing {
    /// The Feldman commitments; their number is the sharing's k.
    pub commitments: Commitments,
    /// The holders in share order.
    pub holders: Vec<Fingerprint>,
}

impl Sharing {
    /// The sharing a signed manifest made.
    pub fn first(split: &crate::statement::SplitKey) -> Self {
        Self {
            commitments: split.commitments.clone(),
            holders: split.holders.clone(),
        }
    }

    /// Shares needed.
    pub fn k(&self) -> usize {
        self.commitments.k()
    }

    /// The 1-based share index of `member` in this sharing, if they hold one.
    pub fn index_of(&self, member: &Fingerprint) -> Option<u8> {
        let position = self.holders.iter().position(|holder| holder == member)?;
        u8::try_from(position + 1).ok()
    }

    /// The sharing that the completed re-share `deals` made of this one, every deal checked
    /// as a new holder checks it ([`check_deals`]): signed by the holder of this sharing at
    /// its index (`key_of` gives a member's signing key from the verified roster, removed
    /// members included), onto a roster head `known_head` accepts and the holders and
    /// threshold the deals name. `secret_commitment` is the manifest's.
    pub fn after(
        &self,
        vault_id: VaultId,
        subject: Subject,
        secret_commitment: curve25519_dalek::ristretto::RistrettoPoint,
        deals: &[Verified<ReshareDeal>],
        key_of: &dyn Fn(&Fingerprint) -> Option<VerifyingKey>,
        known_head: &dyn Fn(&[u8; 32]) -> bool,
    ) -> Result<Self, Error> {
        let Some(first) = deals.first() else {
            return Err(Error::NotEnoughShares {
                have: 0,
                need: self.k(),
            });
        };
        if !known_head(&first.statement.roster_head) {
            return Err(Error::BindingMismatch {
                field: "roster head of a re-share (not in the verified roster chain)",
            });
        }
        let current_holder = |index: u8| {
            let holder = self.holders.get(usize::from(index).checked_sub(1)?)?;
            key_of(holder)
        };
        let expected = Expected {
            vault_id,
            subject,
            current: &self.commitments,
            secret_commitment,
            current_k: self.k(),
            new_k: usize::from(first.statement.new_k),
            current_holder: &current_holder,
            roster_head: first.statement.roster_head,
            holders: &first.statement.holders,
        };
        Ok(Self {
            commitments: check_deals(&expected, deals)?,
            holders: first.statement.holders.clone(),
        })
    }
}

/// Checks that `sealed` is the sub-share `deal` signed for new holder `position` (0-based)
/// before it is opened: a mismatch is the server's doing (it stores and serves the sealed
/// files), not the dealer's.
pub fn check_sealed_subshare(
    deal: &ReshareDeal,
    position: usize,
    sealed: &[u8],
) -> Result<(), Error> {
    let digest: [u8; 32] = Sha256::digest(sealed).into();
    if deal.sealed_subshares_sha256.get(position) == Some(&digest) {
        Ok(())
    } else {
        Err(Error::BindingMismatch {
            field: "sealed sub-share signed by its dealer (the server altered or swapped it)",
        })
    }
}

const SUBSHARE_DOMAIN: &str = "quorate/reshare-subshare/v1";

/// Where a sealed sub-share belongs: sealed inside it, and checked by the new holder who
/// opens it, so that one dealt for another subject, roster, dealer or holder is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubShareBinding {
    /// The vault.
    pub vault_id: VaultId,
    /// What the shared secret opens.
    pub subject: Subject,
    /// The re-share.
    pub reshare_id: [u8; 16],
    /// The roster head the new holders belong to.
    pub roster_head: [u8; 32],
    /// Who dealt it (their current share index).
    pub dealer: u8,
    /// SHA-256 of the dealer's commitments, which the sub-share must satisfy.
    pub dealt_commitments_sha256: [u8; 32],
    /// The new holder's share index.
    pub index: u8,
    /// The new holder.
    pub holder: Fingerprint,
}

impl SubShareBinding {
    fn encode(&self, writer: &mut Writer) {
        writer.fixed(self.vault_id.as_bytes());
        self.subject.encode(writer);
        writer
            .fixed(&self.reshare_id)
            .fixed(&self.roster_head)
            .u8(self.dealer)
            .fixed(&self.dealt_commitments_sha256)
            .u8(self.index)
            .fixed(self.holder.as_bytes());
    }

    fn decode(reader: &mut crate::wire::Reader<'_>) -> Result<Self, Error> {
        Ok(Self {
            vault_id: VaultId::from_bytes(reader.array()?),
            subject: Subject::decode(reader)?,
            reshare_id: reader.array()?,
            roster_head: reader.array()?,
            dealer: reader.u8()?,
            dealt_commitments_sha256: reader.array()?,
            index: reader.u8()?,
            holder: Fingerprint::from_bytes(reader.array()?),
        })
    }
}

/// Seals `subshare` (whose index must be the binding's) with its binding to the new
/// holder's recipient.
pub fn seal_subshare(
    binding: &SubShareBinding,
    subshare: &ScalarShare,
    holder: &crate::Recipient,
) -> Result<Vec<u8>, Error> {
    if binding.index != subshare.index() {
        return Err(Error::BindingMismatch {
            field: "sub-share index",
        });
    }
    let plaintext = encode_subshare(binding, subshare);
    crate::envelope::seal(&plaintext, std::slice::from_ref(holder))
}

/// The plaintext of a sealed sub-share: the domain, its binding, the sub-share (exposed for
/// golden vectors that the browser reproduces).
pub fn encode_subshare(
    binding: &SubShareBinding,
    subshare: &ScalarShare,
) -> zeroize::Zeroizing<Vec<u8>> {
    let mut writer = Writer::new(SUBSHARE_DOMAIN);
    binding.encode(&mut writer);
    writer.fixed(&*subshare.to_bytes());
    zeroize::Zeroizing::new(writer.finish())
}

/// Opens a sealed sub-share with the new holder's key and checks its binding against
/// `expected`, field by field.
pub fn open_subshare(
    sealed: &[u8],
    key: &crate::AgeSecretKey,
    expected: &SubShareBinding,
) -> Result<ScalarShare, Error> {
    let plaintext = crate::envelope::open(sealed, key, "sealed sub-share")?;
    let mut reader = crate::wire::Reader::new(&plaintext, SUBSHARE_DOMAIN, "sealed sub-share")?;
    let binding = SubShareBinding::decode(&mut reader)?;
    let value = zeroize::Zeroizing::new(reader.array::<32>()?);
    reader.finish()?;
    Error::first_mismatch(&[
        ("vault", binding.vault_id == expected.vault_id),
        ("subject", binding.subject == expected.subject),
        ("re-share", binding.reshare_id == expected.reshare_id),
        ("roster head", binding.roster_head == expected.roster_head),
        ("dealer", binding.dealer == expected.dealer),
        (
            "dealer's commitments",
            binding.dealt_commitments_sha256 == expected.dealt_commitments_sha256,
        ),
        ("share index", binding.index == expected.index),
        ("holder", binding.holder == expected.holder),
    ])?;
    ScalarShare::from_bytes(binding.index, &value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, RecordingId, statement::SignedStatement, threshold::Threshold, vss};

    struct Board {
        vault: VaultId,
        subject: Subject,
        identities: Vec<Identity>,
        shares: Vec<ScalarShare>,
        commitments: Commitments,
    }

    fn board(k: usize, n: usize) -> Board {
        let (shares, commitments) =
            vss::split(&vss::random_scalar(), Threshold::new(k, n).unwrap());
        Board {
            vault: VaultId::random(),
            subject: Subject::Recording(RecordingId::random()),
            identities: (0..n).map(|_| Identity::generate()).collect(),
            shares,
            commitments,
        }
    }

    /// Holder at `position` deals to `holders` under k = `new_k`.
    fn signed_deal(
        board: &Board,
        position: usize,
        holders: &[Fingerprint],
        new_k: usize,
        roster_head: [u8; 32],
    ) -> Verified<ReshareDeal> {
        let new = Threshold::new(new_k, holders.len()).unwrap();
        let dealt = vss::deal(&board.shares[position], &board.commitments, new).unwrap();
        let deal = ReshareDeal {
            vault_id: board.vault,
            subject: board.subject,
            reshare_id: [5; 16],
            current_commitments_sha256: commitments_sha256(&board.commitments),
            dealer: dealt.dealer,
            new_k: new.k(),
            roster_head,
            holders: holders.to_vec(),
            commitments: dealt.commitments.to_bytes(),
            sealed_subshares_sha256: holders.iter().map(|_| [7; 32]).collect(),
            issued_at: 1_800_000_000,
        };
        let signed = SignedStatement::sign(&deal, &board.identities[position]);
        let back = SignedStatement::from_bytes(&signed.to_bytes()).unwrap();
        back.verify::<ReshareDeal>().unwrap()
    }

    fn check(
        board: &Board,
        deals: &[Verified<ReshareDeal>],
        head: [u8; 32],
        holders: &[Fingerprint],
    ) -> Result<Commitments, Error> {
        check_against(board, &board.commitments, deals, head, holders)
    }

    /// As [`check`], with `current` as the commitments the server gave.
    fn check_against(
        board: &Board,
        current: &Commitments,
        deals: &[Verified<ReshareDeal>],
        head: [u8; 32],
        holders: &[Fingerprint],
    ) -> Result<Commitments, Error> {
        let keys: Vec<VerifyingKey> = board
            .identities
            .iter()
            .map(|identity| identity.public().verifying_key)
            .collect();
        let current_holder = |index: u8| keys.get(usize::from(index).checked_sub(1)?).copied();
        let new_k = deals
            .first()
            .map_or(1, |deal| usize::from(deal.statement.new_k));
        let expected = Expected {
            vault_id: board.vault,
            subject: board.subject,
            current,
            secret_commitment: board.commitments.secret(),
            current_k: board.commitments.k(),
            new_k,
            current_holder: &current_holder,
            roster_head: head,
            holders,
        };
        check_deals(&expected, deals)
    }

    #[test]
    fn agreeing_deals_give_the_new_commitments_to_the_same_secret() {
        let board = board(2, 3);
        let holders: Vec<Fingerprint> =
            (0..4).map(|_| Identity::generate().fingerprint()).collect();
        let deals = [
            signed_deal(&board, 0, &holders, 3, [1; 32]),
            signed_deal(&board, 2, &holders, 3, [1; 32]),
        ];
        let new = check(&board, &deals, [1; 32], &holders).unwrap();
        assert_eq!(new.k(), 3);
        assert_eq!(new.secret(), board.commitments.secret());
    }

    #[test]
    fn a_replay_onto_another_roster_or_a_mix_of_redistributions_is_refused() {
        let board = board(2, 3);
        let holders: Vec<Fingerprint> =
            (0..3).map(|_| Identity::generate().fingerprint()).collect();
        let deals = [
            signed_deal(&board, 0, &holders, 2, [1; 32]),
            signed_deal(&board, 1, &holders, 2, [1; 32]),
        ];
        // Another roster head than the device pinned.
        assert!(matches!(
            check(&board, &deals, [2; 32], &holders),
            Err(Error::BindingMismatch {
                field: "roster head"
            })
        ));
        // Other holders.
        let mut others = holders.clone();
        others.swap(0, 1);
        assert!(matches!(
            check(&board, &deals, [1; 32], &others),
            Err(Error::BindingMismatch {
                field: "new holders"
            })
        ));
        // One dealer's deal twice in place of two dealers'.
        assert!(matches!(
            check(
                &board,
                &[deals[0].clone(), deals[0].clone()],
                [1; 32],
                &holders
            ),
            Err(Error::DuplicateShare { index: 1 })
        ));
        // A deal of a retried re-share (another ID) mixed in.
        let mut retried = signed_deal(&board, 1, &holders, 2, [1; 32]);
        retried.statement.reshare_id = [6; 16];
        assert!(matches!(
            check(&board, &[deals[0].clone(), retried], [1; 32], &holders),
            Err(Error::BindingMismatch { field: "re-share" })
        ));
        // Too few deals for the current k.
        assert!(matches!(
            check(&board, &deals[..1], [1; 32], &holders),
            Err(Error::BindingMismatch { field }) if field.starts_with("dealers")
        ));
    }

    #[test]
    fn a_deal_signed_by_anyone_but_the_holder_at_its_index_is_refused_without_blaming_them() {
        let board = board(2, 3);
        let holders: Vec<Fingerprint> =
            (0..3).map(|_| Identity::generate().fingerprint()).collect();
        let honest = signed_deal(&board, 0, &holders, 2, [1; 32]);
        // Holder 3 signs a deal that claims to be holder 2's.
        let mut stolen = signed_deal(&board, 1, &holders, 2, [1; 32]);
        stolen.signer = board.identities[2].public().verifying_key;
        // Not holder 2's fault (anyone can sign in their name): the signature is refused.
        assert!(matches!(
            check(&board, &[honest, stolen], [1; 32], &holders),
            Err(Error::BindingMismatch { field }) if field.starts_with("signer of a deal")
        ));
    }

    #[test]
    fn current_commitments_the_server_made_up_are_refused() {
        // k = 3, but the server offers another sharing: a re-share of it would share
        // another secret, and the key would be lost once the old shares are deleted.
        let board = board(3, 3);
        let holders: Vec<Fingerprint> =
            (0..3).map(|_| Identity::generate().fingerprint()).collect();
        let deals = [
            signed_deal(&board, 0, &holders, 2, [1; 32]),
            signed_deal(&board, 1, &holders, 2, [1; 32]),
            signed_deal(&board, 2, &holders, 2, [1; 32]),
        ];
        check(&board, &deals, [1; 32], &holders).unwrap();
        let (_, made_up) = vss::split(&vss::random_scalar(), Threshold::new(2, 3).unwrap());
        assert!(matches!(
            check_against(&board, &made_up, &deals, [1; 32], &holders),
            Err(Error::BindingMismatch { field }) if field.starts_with("current commitments")
        ));
    }

    #[test]
    fn a_sealed_sub_share_swapped_by_the_server_is_its_fault() {
        let board = board(2, 3);
        let holders: Vec<Fingerprint> =
            (0..2).map(|_| Identity::generate().fingerprint()).collect();
        let mut deal = signed_deal(&board, 0, &holders, 2, [1; 32]).statement;
        deal.sealed_subshares_sha256[1] = Sha256::digest(b"sealed for the second").into();
        check_sealed_subshare(&deal, 1, b"sealed for the second").unwrap();
        let refused = check_sealed_subshare(&deal, 1, b"sealed for someone else").unwrap_err();
        assert!(refused.to_string().contains("server"), "{refused}");
    }

    #[test]
    fn a_changed_board_rebuilds_the_key_from_sealed_sub_shares_and_the_old_one_cannot() {
        // 2-of-3; holders 1 and 3 deal to a new 2-of-3 board: holder 3 stays, two join.
        let secret = vss::random_scalar();
        let (shares, commitments) = vss::split(&secret, Threshold::new(2, 3).unwrap());
        let mut board = board(2, 3);
        board.shares = shares;
        board.commitments = commitments;
        let key = vss::age_key(&secret, &board.subject);
        let sealed_recording = crate::envelope::seal(b"the meeting", &[key.recipient()]).unwrap();
        let new_board = [
            board.identities[2].clone(),
            Identity::generate(),
            Identity::generate(),
        ];
        let holders: Vec<Fingerprint> = new_board.iter().map(Identity::fingerprint).collect();
        let head = [9; 32];
        let new = Threshold::new(2, 3).unwrap();
        let mut deals = Vec::new();
        let mut sealed = Vec::new();
        for position in [0, 2] {
            let dealt = vss::deal(&board.shares[position], &board.commitments, new).unwrap();
            let files: Vec<Vec<u8>> = dealt
                .subshares
                .iter()
                .zip(&new_board)
                .map(|(subshare, holder)| {
                    let binding = SubShareBinding {
                        vault_id: board.vault,
                        subject: board.subject,
                        reshare_id: [5; 16],
                        roster_head: head,
                        dealer: dealt.dealer,
                        dealt_commitments_sha256: commitments_sha256(&dealt.commitments),
                        index: subshare.index(),
                        holder: holder.fingerprint(),
                    };
                    seal_subshare(&binding, subshare, &holder.public().recipient).unwrap()
                })
                .collect();
            let deal = ReshareDeal {
                vault_id: board.vault,
                subject: board.subject,
                reshare_id: [5; 16],
                current_commitments_sha256: commitments_sha256(&board.commitments),
                dealer: dealt.dealer,
                new_k: 2,
                roster_head: head,
                holders: holders.clone(),
                commitments: dealt.commitments.to_bytes(),
                sealed_subshares_sha256: files
                    .iter()
                    .map(|file| Sha256::digest(file).into())
                    .collect(),
                issued_at: 1_800_000_000,
            };
            let signed = SignedStatement::sign(&deal, &board.identities[position]);
            deals.push(signed.verify::<ReshareDeal>().unwrap());
            sealed.push(files);
        }
        let new_commitments = check(&board, &deals, head, &holders).unwrap();

        // Each new holder opens what was sealed to them, checks it, and combines.
        let mut new_shares = Vec::new();
        for (position, holder) in new_board.iter().enumerate() {
            let mut received = Vec::new();
            for (deal, files) in deals.iter().zip(&sealed) {
                check_sealed_subshare(&deal.statement, position, &files[position]).unwrap();
                let expected = SubShareBinding {
                    vault_id: board.vault,
                    subject: board.subject,
                    reshare_id: deal.statement.reshare_id,
                    roster_head: head,
                    dealer: deal.statement.dealer,
                    dealt_commitments_sha256: Sha256::digest(&deal.statement.commitments).into(),
                    index: position as u8 + 1,
                    holder: holder.fingerprint(),
                };
                received
                    .push(open_subshare(&files[position], holder.age_key(), &expected).unwrap());
            }
            let parsed: Vec<Commitments> = deals
                .iter()
                .map(|deal| deal.statement.dealt_commitments().unwrap())
                .collect();
            let inputs: Vec<(u8, &Commitments, &ScalarShare)> = deals
                .iter()
                .zip(&parsed)
                .zip(&received)
                .map(|((deal, commitments), subshare)| {
                    (deal.statement.dealer, commitments, subshare)
                })
                .collect();
            let (share, commitments) = vss::receive(&board.commitments, 2, &inputs).unwrap();
            assert_eq!(commitments, new_commitments);
            new_shares.push(share);
        }
        // The two who joined rebuild the key and open the recording made before they came.
        let rebuilt = vss::recover(&new_shares[1..], &new_commitments).unwrap();
        let heard = crate::envelope::open(
            &sealed_recording,
            &vss::age_key(&rebuilt, &board.subject),
            "recording",
        )
        .unwrap();
        assert_eq!(&heard[..], b"the meeting");
        // The leaver's old share with one new share rebuilds nothing.
        let mixed = [board.shares[0].clone(), new_shares[1].clone()];
        assert!(vss::recover(&mixed, &new_commitments).is_err());
        // A sub-share opened as if from another dealer is refused by its binding.
        let wrong = SubShareBinding {
            vault_id: board.vault,
            subject: board.subject,
            reshare_id: [5; 16],
            roster_head: head,
            dealer: 2,
            dealt_commitments_sha256: Sha256::digest(&deals[0].statement.commitments).into(),
            index: 1,
            holder: holders[0],
        };
        assert!(matches!(
            open_subshare(&sealed[0][0], new_board[0].age_key(), &wrong),
            Err(Error::BindingMismatch { field: "dealer" })
        ));
    }

    /// The deals of `dealers` (identity, share) of the sharing `current` to `holders`, and
    /// the new shares those holders would receive.
    fn redistribute(
        board: &Board,
        current: &Commitments,
        dealers: &[(&Identity, &ScalarShare)],
        holders: &[Fingerprint],
        new_k: usize,
        head: [u8; 32],
    ) -> (Vec<Verified<ReshareDeal>>, Vec<ScalarShare>) {
        let new = Threshold::new(new_k, holders.len()).unwrap();
        let dealt: Vec<vss::Deal> = dealers
            .iter()
            .map(|(_, share)| vss::deal(share, current, new).unwrap())
            .collect();
        let deals = dealers
            .iter()
            .zip(&dealt)
            .map(|((identity, _), dealt)| {
                let deal = ReshareDeal {
                    vault_id: board.vault,
                    subject: board.subject,
                    reshare_id: head[..16].try_into().unwrap(),
                    current_commitments_sha256: commitments_sha256(current),
                    dealer: dealt.dealer,
                    new_k: new.k(),
                    roster_head: head,
                    holders: holders.to_vec(),
                    commitments: dealt.commitments.to_bytes(),
                    sealed_subshares_sha256: holders.iter().map(|_| [7; 32]).collect(),
                    issued_at: 1_800_000_000,
                };
                SignedStatement::sign(&deal, identity)
                    .verify::<ReshareDeal>()
                    .unwrap()
            })
            .collect();
        let shares = (0..holders.len())
            .map(|position| {
                let received: Vec<(u8, &Commitments, &ScalarShare)> = dealt
                    .iter()
                    .map(|deal| (deal.dealer, &deal.commitments, &deal.subshares[position]))
                    .collect();
                vss::receive(current, new_k, &received).unwrap().0
            })
            .collect();
        (deals, shares)
    }

    #[test]
    fn any_device_replays_the_re_shares_to_the_current_sharing() {
        let board = board(2, 3);
        let first = Sharing {
            commitments: board.commitments.clone(),
            holders: board.identities.iter().map(Identity::fingerprint).collect(),
        };
        let joiners: Vec<Identity> = (0..2).map(|_| Identity::generate()).collect();
        let mut everyone: Vec<&Identity> = board.identities.iter().collect();
        everyone.extend(&joiners);
        let key_of = |member: &Fingerprint| {
            everyone
                .iter()
                .find(|identity| identity.fingerprint() == *member)
                .map(|identity| identity.public().verifying_key)
        };
        let heads = [[1; 32], [2; 32]];
        let known = |head: &[u8; 32]| heads.contains(head);

        // Generation 1: holders 2 and 3 deal to {3, joiner 1, joiner 2}, 2-of-3.
        let second_holders = vec![
            board.identities[2].fingerprint(),
            joiners[0].fingerprint(),
            joiners[1].fingerprint(),
        ];
        let dealers = [
            (&board.identities[1], &board.shares[1]),
            (&board.identities[2], &board.shares[2]),
        ];
        let (deals, shares) = redistribute(
            &board,
            &first.commitments,
            &dealers,
            &second_holders,
            2,
            heads[0],
        );
        let secret = board.commitments.secret();
        let second = first
            .after(board.vault, board.subject, secret, &deals, &key_of, &known)
            .unwrap();
        assert_eq!(second.holders, second_holders);
        assert_eq!(second.commitments.secret(), secret);
        for share in &shares {
            second.commitments.verify(share).unwrap();
        }

        // Generation 2, dealt by the joiners with their new shares, 1-of-2.
        let third_holders = vec![joiners[0].fingerprint(), joiners[1].fingerprint()];
        let dealers = [(&joiners[0], &shares[1]), (&joiners[1], &shares[2])];
        let (later, _) = redistribute(
            &board,
            &second.commitments,
            &dealers,
            &third_holders,
            1,
            heads[1],
        );
        let third = second
            .after(board.vault, board.subject, secret, &later, &key_of, &known)
            .unwrap();
        assert_eq!((third.k(), third.index_of(&third_holders[1])), (1, Some(2)));

        // Replayed out of order, the second generation's dealers are not the first
        // sharing's holders at their indices.
        assert!(matches!(
            first.after(board.vault, board.subject, secret, &later, &key_of, &known),
            Err(Error::BindingMismatch { .. })
        ));
        // A head the device's roster never had is refused.
        let unknown = |_: &[u8; 32]| false;
        assert!(matches!(
            first.after(board.vault, board.subject, secret, &deals, &key_of, &unknown),
            Err(Error::BindingMismatch { field }) if field.starts_with("roster head")
        ));
    }

    #[test]
    fn malformed_deals_do_not_decode() {
        let board = board(2, 3);
        let holders: Vec<Fingerprint> =
            (0..2).map(|_| Identity::generate().fingerprint()).collect();
        let good = signed_deal(&board, 0, &holders, 2, [1; 32]).statement;
        assert_eq!(ReshareDeal::decode(&good.encode()).unwrap(), good);
        let broken = [
            ReshareDeal {
                dealer: 0,
                ..good.clone()
            },
            ReshareDeal {
                sealed_subshares_sha256: vec![[0; 32]],
                ..good.clone()
            },
            ReshareDeal {
                holders: vec![holders[0], holders[0]],
                ..good.clone()
            },
            ReshareDeal {
                commitments: vec![0xff; 32],
                ..good.clone()
            },
            ReshareDeal {
                new_k: 1,
                ..good.clone()
            },
            ReshareDeal {
                new_k: 3,
                ..good.clone()
            },
        ];
        for deal in broken {
            assert!(ReshareDeal::decode(&deal.encode()).is_err(), "{deal:?}");
        }
    }
}
