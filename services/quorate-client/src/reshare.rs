//! Re-sharing on a device (issue 18): finding a subject's current sharing by replaying its
//! signed re-shares from its manifest, dealing this member's share to the board the device
//! verified, and taking this member's new share from the deals, each checked.
//!
//! The server only carries what devices signed and sealed. Against a server that lies, a
//! dealer deals only a share that opens and verifies under the sharing replayed from signed
//! data, and only to the roster head, members and threshold its own device verified; a new
//! holder takes a share only from k deals that agree with the same, each signed by the
//! holder at its index, each sub-share the file its dealer signed and a point of the
//! dealer's commitments (a bad one names the dealer).

use ed25519_dalek::VerifyingKey;
use quorate_api::{
    Base64, NewDeal, OpenReshare, ReshareAcceptance, ReshareItem, ReshareState, ReshareWork,
    SealedShareUpload, SharedKind,
};
use quorate_crypto::{
    Fingerprint, Identity, Recipient, RecordingId, TranscriptId, VaultId,
    reshare::{
        self, Expected, ReshareDeal, Sharing, SubShareBinding, check_deals, check_sealed_subshare,
        commitments_sha256,
    },
    roster::Roster,
    statement::{SignedStatement, SplitKey, Verified},
    threshold::{self, ShareBinding, Subject, Threshold},
    vss::{self, Commitments, RistrettoPoint, ScalarShare},
};
use sha2::{Digest, Sha256};

use crate::{Client, ClientError, statement};

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Invalid(message.into())
}

/// A subject's key as a re-share sees it: what it opens, its public key and commitment to
/// the secret from the signed manifest, and its current sharing.
#[derive(Debug, Clone)]
pub struct SharedKey {
    /// The vault.
    pub vault: VaultId,
    /// What the key opens.
    pub subject: Subject,
    /// The key's public key, as the signed manifest gives it.
    pub recipient: Recipient,
    /// The commitment to the secret in the signed manifest; no re-share changes it.
    pub secret_commitment: RistrettoPoint,
    /// The k its signed manifest split it with: the uploader's choice, which no re-share
    /// goes below.
    pub first_k: u8,
    /// The current sharing, replayed from the manifest through every completed re-share.
    pub current: Sharing,
}

impl SharedKey {
    /// The binding of `member`'s share of the current sharing, if they hold one.
    pub fn binding_for(&self, member: &Fingerprint) -> Option<ShareBinding> {
        let index = self.current.index_of(member)?;
        Some(ShareBinding {
            vault_id: self.vault,
            subject: self.subject,
            recipient: self.recipient,
            threshold: Threshold::new(self.current.k(), self.current.holders.len()).ok()?,
            index,
            member: *member,
            commitments: self.current.commitments.clone(),
        })
    }
}

/// The board this device re-shares to: the roster head it verified and pinned, the current
/// members in roster order, and the policy's threshold.
#[derive(Debug, Clone)]
pub struct Board {
    /// The verified roster head.
    pub roster_head: [u8; 32],
    /// The members who will hold shares, in roster order.
    pub holders: Vec<Fingerprint>,
    /// Shares needed after the re-share.
    pub new_k: u8,
}

impl Board {
    /// The board of a verified roster under a verified policy's threshold.
    pub fn of(roster: &Roster, k: u8) -> Result<Self, ClientError> {
        let holders: Vec<Fingerprint> = roster
            .members()
            .iter()
            .map(|member| member.fingerprint)
            .collect();
        if k == 0 || usize::from(k) > holders.len() {
            return Err(invalid(format!(
                "the policy asks for {k} of {} members: an admin must lower the threshold or add members before re-sharing",
                holders.len()
            )));
        }
        Ok(Self {
            roster_head: roster.head(),
            holders,
            new_k: k,
        })
    }

    /// The board `key` moves to: the policy's k, or the k its uploader chose if higher (a
    /// re-share never lowers what the manifest asked for), among the same members.
    pub fn for_key(&self, key: &SharedKey) -> Result<Self, ClientError> {
        let new_k = self.new_k.max(key.first_k);
        if usize::from(new_k) > self.holders.len() {
            return Err(invalid(format!(
                "its manifest asks for {new_k} approvals and the roster has {} members: add members before re-sharing it",
                self.holders.len()
            )));
        }
        Ok(Self {
            new_k,
            ..self.clone()
        })
    }

    fn threshold(&self) -> Threshold {
        Threshold::new(self.new_k.into(), self.holders.len())
            .expect("checked when the board was made")
    }
}

/// The signing key of a member of the roster, removed members included.
fn key_of(roster: &Roster) -> impl Fn(&Fingerprint) -> Option<VerifyingKey> + '_ {
    |member| {
        roster
            .members()
            .iter()
            .chain(roster.removed())
            .find(|entry| entry.fingerprint == *member)
            .map(|entry| entry.public.verifying_key)
    }
}

fn verified_deals(deals: &[Base64]) -> Result<Vec<Verified<ReshareDeal>>, ClientError> {
    deals
        .iter()
        .map(|bytes| {
            statement(bytes)?
                .verify::<ReshareDeal>()
                .map_err(|error| invalid(format!("a re-share deal: {error}")))
        })
        .collect()
}

impl Client {
    /// The recordings and transcripts to re-share, as the server lists them.
    pub async fn reshare_work(&self, vault: VaultId) -> Result<ReshareWork, ClientError> {
        self.get(&format!("/vaults/{vault}/reshares")).await
    }

    /// Sends a deal.
    pub async fn deal_reshare(
        &self,
        vault: VaultId,
        deal: &NewDeal,
    ) -> Result<ReshareState, ClientError> {
        self.post(&format!("/vaults/{vault}/reshares/deals"), deal)
            .await
    }

    /// Sends this member's new share of re-share `reshare`.
    pub async fn accept_reshare(
        &self,
        vault: VaultId,
        reshare: &str,
        acceptance: &ReshareAcceptance,
    ) -> Result<ReshareState, ClientError> {
        self.post(
            &format!("/vaults/{vault}/reshares/{reshare}/accept"),
            acceptance,
        )
        .await
    }

    /// The key of `item`, its manifest verified against `roster` and its completed re-shares
    /// replayed to the current sharing.
    pub async fn shared_key(
        &self,
        vault: VaultId,
        roster: &Roster,
        item: &ReshareItem,
    ) -> Result<SharedKey, ClientError> {
        let (subject, split) =
            match item.kind {
                SharedKind::Recording => {
                    let id: RecordingId = item.subject_id.parse().map_err(|_| {
                        invalid("a re-share names a recording ID that does not parse")
                    })?;
                    let manifest = crate::checks::recording_manifest(
                        roster,
                        Some(id),
                        &statement(&item.manifest)?,
                    )
                    .map_err(|error| invalid(error.to_string()))?;
                    (manifest.subject(), manifest.split)
                }
                SharedKind::Transcript => {
                    let id: TranscriptId = item.subject_id.parse().map_err(|_| {
                        invalid("a re-share names a transcript ID that does not parse")
                    })?;
                    let manifest = self
                        .transcript_manifest_of(vault, roster, &item.manifest, &item.subject_id)
                        .await?;
                    (Subject::Transcript(id), manifest.split)
                }
            };
        replayed(vault, roster, subject, &split, &item.history)
    }
}

/// The current sharing of the key of `subject` that `split` first shared, `history` (the
/// deals of each completed re-share, oldest first) replayed from it against `roster`.
pub fn current_sharing(
    vault: VaultId,
    roster: &Roster,
    subject: Subject,
    split: &SplitKey,
    history: &[Vec<Base64>],
) -> Result<Sharing, ClientError> {
    Ok(replayed(vault, roster, subject, split, history)?.current)
}

/// The key of `subject` split by `split`, with `history` (the deals of each completed
/// re-share, oldest first) replayed from it.
fn replayed(
    vault: VaultId,
    roster: &Roster,
    subject: Subject,
    split: &SplitKey,
    history: &[Vec<Base64>],
) -> Result<SharedKey, ClientError> {
    let secret_commitment = split.commitments.secret();
    let mut current = Sharing::first(split);
    let key_of = key_of(roster);
    let known_head = |head: &[u8; 32]| roster.has_entry(head);
    for (generation, deals) in history.iter().enumerate() {
        let deals = verified_deals(deals)?;
        current = current
            .after(
                vault,
                subject,
                secret_commitment,
                &deals,
                &key_of,
                &known_head,
            )
            .map_err(|error| invalid(format!("re-share {} of its key: {error}", generation + 1)))?;
    }
    Ok(SharedKey {
        vault,
        subject,
        recipient: split.recipient,
        secret_commitment,
        first_k: split.threshold.k(),
        current,
    })
}

/// Whether this member should deal into `open` (or open a re-share): they hold a share of
/// the current sharing, it still wants deals, and they have not dealt.
pub fn should_deal(key: &SharedKey, open: Option<&OpenReshare>, me: &Fingerprint) -> bool {
    let Some(index) = key.current.index_of(me) else {
        return false;
    };
    let Some(open) = open else {
        return true;
    };
    let dealt = verified_deals(&open.deals).unwrap_or_default();
    dealt.len() < usize::from(open.needed)
        && !dealt.iter().any(|deal| deal.statement.dealer == index)
}

/// Deals `identity`'s current share (sealed in `sealed_share`) to `board`: into `open` if
/// it is open for the same board, else opening a new re-share.
pub fn deal(
    identity: &Identity,
    key: &SharedKey,
    board: &Board,
    roster: &Roster,
    open: Option<&OpenReshare>,
    sealed_share: &[u8],
    now: i64,
) -> Result<NewDeal, ClientError> {
    let me = identity.fingerprint();
    let expected = key
        .binding_for(&me)
        .ok_or_else(|| invalid("you hold no share of the current sharing of this key"))?;
    let share = threshold::open_share(sealed_share, identity.age_key(), &expected)
        .map_err(|error| invalid(format!("your share: {error}")))?;
    let reshare_id = match open {
        Some(open) => open_terms(open, board)?,
        None => quorate_crypto::SecretBytes::<16>::random()
            .expose_secret()
            .to_owned(),
    };
    let dealt = vss::deal(&share, &key.current.commitments, board.threshold())
        .map_err(|error| invalid(format!("dealing your share: {error}")))?;
    let dealt_commitments = dealt.commitments.to_bytes();
    let mut subshares = Vec::with_capacity(board.holders.len());
    for (holder, subshare) in board.holders.iter().zip(&dealt.subshares) {
        let recipient = roster
            .member(holder)
            .ok_or_else(|| invalid("a new holder is not on the roster"))?
            .public
            .recipient;
        let binding = SubShareBinding {
            vault_id: key.vault,
            subject: key.subject,
            reshare_id,
            roster_head: board.roster_head,
            dealer: dealt.dealer,
            dealt_commitments_sha256: Sha256::digest(&dealt_commitments).into(),
            index: subshare.index(),
            holder: *holder,
        };
        let sealed = reshare::seal_subshare(&binding, subshare, &recipient)
            .map_err(|error| invalid(format!("sealing a sub-share: {error}")))?;
        subshares.push((holder.to_hex(), sealed));
    }
    let statement = ReshareDeal {
        vault_id: key.vault,
        subject: key.subject,
        reshare_id,
        current_commitments_sha256: commitments_sha256(&key.current.commitments),
        dealer: dealt.dealer,
        new_k: board.new_k,
        roster_head: board.roster_head,
        holders: board.holders.clone(),
        commitments: dealt_commitments,
        sealed_subshares_sha256: subshares
            .iter()
            .map(|(_, sealed)| Sha256::digest(sealed).into())
            .collect(),
        issued_at: now,
    };
    Ok(NewDeal {
        deal: Base64::from(SignedStatement::sign(&statement, identity).to_bytes()),
        subshares: subshares
            .into_iter()
            .map(|(member, sealed)| SealedShareUpload {
                member,
                sealed: Base64::from(sealed),
            })
            .collect(),
    })
}

/// The ID of an open re-share, refused unless its deals so far move the key to `board`.
fn open_terms(open: &OpenReshare, board: &Board) -> Result<[u8; 16], ClientError> {
    let id: [u8; 16] = hex::decode(&open.reshare_id)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| invalid("an open re-share has an ID that is not 32 hex digits"))?;
    for deal in verified_deals(&open.deals)? {
        let deal = deal.statement;
        if deal.reshare_id != id
            || deal.roster_head != board.roster_head
            || deal.holders != board.holders
            || deal.new_k != board.new_k
        {
            return Err(invalid(
                "the open re-share moves the key to another board than the roster and policy this device verified: fetch the roster again, or wait for it to finish",
            ));
        }
    }
    Ok(id)
}

/// Whether this member should take their new share from `open`: they are a new holder, the
/// deals are in, and they have not sent theirs.
pub fn should_accept(open: &OpenReshare, board: &Board, me: &Fingerprint) -> bool {
    board.holders.contains(me)
        && open.deals.len() >= usize::from(open.needed)
        && !open.accepted.contains(&me.to_hex())
}

/// Takes `identity`'s new share from the k deals of `open` and the sub-shares sealed to
/// them, every check made, and seals it to themselves with the new commitments.
pub fn accept(
    identity: &Identity,
    key: &SharedKey,
    board: &Board,
    roster: &Roster,
    open: &OpenReshare,
) -> Result<ReshareAcceptance, ClientError> {
    let me = identity.fingerprint();
    let position = board
        .holders
        .iter()
        .position(|holder| *holder == me)
        .ok_or_else(|| invalid("you are not one of this re-share's new holders"))?;
    let reshare_id = open_terms(open, board)?;
    let deals = verified_deals(&open.deals)?;
    let key_of = key_of(roster);
    let current_holder = |index: u8| {
        let holder = key
            .current
            .holders
            .get(usize::from(index).checked_sub(1)?)?;
        key_of(holder)
    };
    let expected = Expected {
        vault_id: key.vault,
        subject: key.subject,
        current: &key.current.commitments,
        secret_commitment: key.secret_commitment,
        current_k: key.current.k(),
        new_k: board.new_k.into(),
        current_holder: &current_holder,
        roster_head: board.roster_head,
        holders: &board.holders,
    };
    let new_commitments =
        check_deals(&expected, &deals).map_err(|error| invalid(format!("the deals: {error}")))?;
    if open.subshares.len() != deals.len() {
        return Err(invalid(
            "the server sent a sub-share count that does not match the deals",
        ));
    }
    let mut received: Vec<(u8, Commitments, ScalarShare)> = Vec::with_capacity(deals.len());
    for (deal, sealed) in deals.iter().zip(&open.subshares) {
        let deal = &deal.statement;
        check_sealed_subshare(deal, position, sealed).map_err(|error| {
            invalid(format!("the sub-share of dealer {}: {error}", deal.dealer))
        })?;
        let binding = SubShareBinding {
            vault_id: key.vault,
            subject: key.subject,
            reshare_id,
            roster_head: board.roster_head,
            dealer: deal.dealer,
            dealt_commitments_sha256: Sha256::digest(&deal.commitments).into(),
            index: u8::try_from(position + 1).expect("at most 255 holders"),
            holder: me,
        };
        let subshare =
            reshare::open_subshare(sealed, identity.age_key(), &binding).map_err(|error| {
                invalid(format!("the sub-share of dealer {}: {error}", deal.dealer))
            })?;
        let commitments = deal
            .dealt_commitments()
            .map_err(|error| invalid(format!("a deal: {error}")))?;
        received.push((deal.dealer, commitments, subshare));
    }
    let inputs: Vec<(u8, &Commitments, &ScalarShare)> = received
        .iter()
        .map(|(dealer, commitments, subshare)| (*dealer, commitments, subshare))
        .collect();
    let (share, commitments) = vss::receive(&key.current.commitments, board.new_k.into(), &inputs)
        .map_err(|error| invalid(format!("taking your new share: {error}")))?;
    if commitments != new_commitments {
        return Err(invalid("the new share does not lie on the new sharing"));
    }
    let binding = ShareBinding {
        vault_id: key.vault,
        subject: key.subject,
        recipient: key.recipient,
        threshold: board.threshold(),
        index: share.index(),
        member: me,
        commitments: commitments.clone(),
    };
    let sealed = threshold::seal_share(&binding, &share, &identity.public().recipient)
        .map_err(|error| invalid(format!("sealing your new share: {error}")))?;
    Ok(ReshareAcceptance {
        sealed: Base64::from(sealed),
        commitments: Base64::from(commitments.to_bytes()),
    })
}
