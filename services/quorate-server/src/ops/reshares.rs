//! Re-sharing a recording's or transcript's key to a changed board (issue 18): the server
//! collects the first k signed deals of current holders with the sub-shares they sealed,
//! hands each new holder theirs, and swaps the old sealed shares for the new ones once every
//! new holder sent one and all computed the same commitments.
//!
//! The server cannot deal, open a sub-share or make a share: it only keeps and hands over
//! what devices signed and sealed. Every check that protects a key is a device's
//! (`quorate_client::reshare`); the checks here keep an honest server's bookkeeping right
//! and refuse early what a device would refuse anyway.

use axum::http::StatusCode;
use quorate_api::{OpenReshare, ReshareItem, ReshareState, ReshareWork, SharedKind};
use quorate_crypto::{
    reshare::ReshareDeal,
    roster::Roster,
    statement::{RecordingManifest, SignedStatement, TranscriptManifest, VaultPolicy},
    threshold::Subject,
};
use sha2::{Digest, Sha256};

use crate::{
    App,
    error::Refusal,
    ops::{requests::Member, roster::RosterError},
    store::{
        self, Event,
        reshares::{Reshare, Shared},
    },
};

/// Most bytes of one sealed sub-share or new share (an age file of about 250 bytes).
const MAX_SEALED: usize = 4096;

/// Why a deal or a new share was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReshareError {
    #[error("{0}")]
    InvalidStatement(#[from] quorate_crypto::Error),
    #[error("a deal must be signed by the member sending it")]
    NotSigner,
    #[error("this vault has no such recording or transcript")]
    NotFound,
    #[error("you do not hold share {0} of this key: fetch the re-share work again")]
    NotHolder(u8),
    #[error(
        "the roster changed since this re-share began: fetch the roster and the work again (`quorate reshare`), then deal or take your share again"
    )]
    RosterChanged,
    #[error("a deal's new holders must be the current members, in roster order")]
    WrongHolders,
    #[error(
        "a re-share of this key must keep k at least {0} (the vault policy's, or the uploader's if higher)"
    )]
    ThresholdTooLow(u8),
    #[error("another re-share of this key is open ({0}): deal into that one")]
    OtherReshare(String),
    #[error("the deal's {0} differs from the open re-share's: fetch the work again")]
    Disagrees(&'static str),
    #[error("this re-share has the deals it needs")]
    EnoughDeals,
    #[error("you dealt into this re-share already")]
    AlreadyDealt,
    #[error("send one sealed sub-share per new holder, each the file the deal signs")]
    SubShares,
    #[error("you are not one of this re-share's new holders")]
    NotNewHolder,
    #[error("this re-share has fewer deals than it needs: wait for more holders to deal")]
    NotReady,
    #[error("you sent your new share for this re-share already")]
    AlreadyAccepted,
    #[error(
        "the new holders computed different commitments, so the re-share was dropped and the old shares kept: run the re-share again"
    )]
    Disagreed,
    #[error("a sealed share must be 1 to {MAX_SEALED} bytes, and commitments whole points")]
    BadUpload,
    #[error("the stored manifest does not verify: {0}")]
    CorruptManifest(quorate_crypto::Error),
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl Refusal for ReshareError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use ReshareError::*;
        Some(match self {
            InvalidStatement(_) | NotSigner | WrongHolders | ThresholdTooLow(_) => {
                (StatusCode::BAD_REQUEST, "invalid_statement")
            }
            SubShares | BadUpload => (StatusCode::BAD_REQUEST, "invalid_shares"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            NotHolder(_) | NotNewHolder => (StatusCode::FORBIDDEN, "not_holder"),
            RosterChanged => (StatusCode::CONFLICT, "roster_changed"),
            OtherReshare(_) => (StatusCode::CONFLICT, "reshare_open"),
            Disagrees(_) => (StatusCode::CONFLICT, "reshare_disagrees"),
            EnoughDeals => (StatusCode::CONFLICT, "enough_deals"),
            AlreadyDealt => (StatusCode::CONFLICT, "already_dealt"),
            NotReady => (StatusCode::CONFLICT, "reshare_not_ready"),
            AlreadyAccepted => (StatusCode::CONFLICT, "already_accepted"),
            Disagreed => (StatusCode::CONFLICT, "reshare_disagreed"),
            CorruptManifest(_) | Roster(_) | Store(_) => return None,
        })
    }
}

/// The store's name for a subject, with its ID as text.
fn shared_ids(subject: &Subject) -> (SharedKind, String) {
    match subject {
        Subject::Recording(id) => (SharedKind::Recording, id.to_string()),
        Subject::Transcript(id) => (SharedKind::Transcript, id.to_string()),
    }
}

fn shared(kind: SharedKind, id: &str) -> Shared<'_> {
    match kind {
        SharedKind::Recording => Shared::Recording(id),
        SharedKind::Transcript => Shared::Transcript(id),
    }
}

/// The k of the subject's current sharing: its last completed re-share's, else its
/// manifest's.
async fn current_k(
    connection: &mut sqlx::AnyConnection,
    subject: Shared<'_>,
    manifest: &[u8],
) -> Result<i32, ReshareError> {
    if let Some(k) = store::reshares::current_k(connection, subject).await? {
        return Ok(k);
    }
    Ok(i32::from(manifest_k(subject, manifest)?))
}

/// The k the subject's signed manifest split its key with.
fn manifest_k(subject: Shared<'_>, manifest: &[u8]) -> Result<u8, ReshareError> {
    let signed = SignedStatement::from_bytes(manifest).map_err(ReshareError::CorruptManifest)?;
    match subject {
        Shared::Recording(_) => signed
            .verify::<RecordingManifest>()
            .map(|verified| verified.statement.split.threshold.k()),
        Shared::Transcript(_) => signed
            .verify::<TranscriptManifest>()
            .map(|verified| verified.statement.split.threshold.k()),
    }
    .map_err(ReshareError::CorruptManifest)
}

/// The least k a re-share may move `subject`'s key to: the vault policy's, or the k its
/// uploader chose if higher.
async fn least_new_k(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    subject: Shared<'_>,
    manifest: &[u8],
) -> Result<u8, ReshareError> {
    let policy = match store::policies::newest(connection, vault).await? {
        Some(bytes) => {
            SignedStatement::from_bytes(&bytes)
                .and_then(|signed| signed.verify::<VaultPolicy>())
                .map_err(ReshareError::CorruptManifest)?
                .statement
                .min_threshold
        }
        None => 1,
    };
    Ok(policy.max(manifest_k(subject, manifest)?))
}

/// The current members' fingerprints (hex), in roster order: who holds shares after a
/// re-share to the roster as it is.
pub(crate) fn roster_holders(roster: &Roster) -> Vec<String> {
    roster
        .members()
        .iter()
        .map(|member| member.fingerprint.to_hex())
        .collect()
}

/// Every subject whose holders are not the current members, whose k is below the least a
/// re-share may move it to (the policy rose), or that a re-share is moving, with its
/// history, and for `member` the sub-shares sealed to them.
pub(crate) async fn work(app: &App, member: Member<'_>) -> Result<ReshareWork, ReshareError> {
    let vault = member.vault.to_string();
    let mut connection = app.db.connection().await?;
    let roster = app.rosters.verified(&mut connection, member.vault).await?;
    let members = roster_holders(&roster);
    let mut items = Vec::new();
    for (kind, id, manifest) in store::reshares::subjects(&mut connection, &vault).await? {
        let kind = if kind == "recording" {
            SharedKind::Recording
        } else {
            SharedKind::Transcript
        };
        let subject = shared(kind, &id);
        let holders: Vec<String> = store::reshares::current_holders(&mut connection, subject)
            .await?
            .into_iter()
            .map(|(_, holder)| holder)
            .collect();
        let open = open_for(&mut connection, &roster, subject).await?;
        if open.is_none()
            && holders == members
            && current_k(&mut connection, subject, &manifest).await?
                >= i32::from(least_new_k(&mut connection, &vault, subject, &manifest).await?)
        {
            continue;
        }
        let open = match open {
            Some(reshare) => Some(open_view(&mut connection, &reshare, member.fingerprint).await?),
            None => None,
        };
        items.push(ReshareItem {
            kind,
            subject_id: id.clone(),
            manifest: manifest.into(),
            history: store::reshares::history(&mut connection, subject)
                .await?
                .into_iter()
                .map(|deals| deals.into_iter().map(Into::into).collect())
                .collect(),
            open,
        });
    }
    Ok(ReshareWork { items })
}

/// The subject's open re-share if it moves the key to the current roster; `None` when none
/// is open or the open one was opened for a roster head that is no longer the newest.
async fn open_for(
    connection: &mut sqlx::AnyConnection,
    roster: &Roster,
    subject: Shared<'_>,
) -> Result<Option<Reshare>, ReshareError> {
    let open = store::reshares::open(connection, subject).await?;
    Ok(open.filter(|reshare| reshare.roster_head == hex::encode(roster.head())))
}

async fn open_view(
    connection: &mut sqlx::AnyConnection,
    reshare: &Reshare,
    caller: &str,
) -> Result<OpenReshare, ReshareError> {
    let deals = store::reshares::deals(connection, &reshare.id).await?;
    let subshares = store::reshares::subshares_for(connection, &reshare.id, caller).await?;
    let accepted = store::reshares::acceptances(connection, &reshare.id).await?;
    Ok(OpenReshare {
        reshare_id: reshare.id.clone(),
        deals: deals.into_iter().map(|(_, deal)| deal.into()).collect(),
        needed: reshare.current_k as u8,
        subshares: subshares
            .into_iter()
            .map(|(_, sealed)| sealed.into())
            .collect(),
        accepted: accepted.into_iter().map(|(holder, ..)| holder).collect(),
    })
}

/// Where `reshare` stands.
async fn state(
    connection: &mut sqlx::AnyConnection,
    reshare: &Reshare,
    completed: bool,
) -> Result<ReshareState, ReshareError> {
    let deals = store::reshares::deals(connection, &reshare.id).await?.len();
    let accepted = if completed {
        reshare.holder_list().len()
    } else {
        store::reshares::acceptances(connection, &reshare.id)
            .await?
            .len()
    };
    Ok(ReshareState {
        reshare_id: reshare.id.clone(),
        deals: deals as u8,
        needed: reshare.current_k as u8,
        accepted: accepted as u8,
        holders: reshare.holder_list().len() as u8,
        completed,
    })
}

/// Stores `member`'s signed deal and its sealed sub-shares (holder, sealed), opening the
/// re-share if none is open: signed by them as the current holder at its dealer index, for
/// the current roster head and members (when it opens one), or agreeing with the open one.
pub(crate) async fn deal(
    app: &App,
    member: Member<'_>,
    signed: &SignedStatement,
    subshares: Vec<(String, Vec<u8>)>,
    now: i64,
) -> Result<ReshareState, ReshareError> {
    let vault = member.vault.to_string();
    let mut tx = app.db.begin().await?;
    // Deals, new shares and swaps of a vault take turns.
    store::vaults::lock(&mut tx, &vault).await?;
    let roster = app.rosters.verified(&mut tx, member.vault).await?;
    let (verified, signer) = roster.verify_by_member::<ReshareDeal>(signed)?;
    if signer.fingerprint.to_hex() != member.fingerprint {
        return Err(ReshareError::NotSigner);
    }
    let deal = verified.statement;
    let (kind, id) = shared_ids(&deal.subject);
    let subject = shared(kind, &id);
    let manifest = store::reshares::manifest(&mut tx, &vault, subject)
        .await?
        .ok_or(ReshareError::NotFound)?;
    let holds_dealt_share = store::reshares::current_holders(&mut tx, subject)
        .await?
        .iter()
        .any(|(index, holder)| *index == i32::from(deal.dealer) && holder == member.fingerprint);
    if !holds_dealt_share {
        return Err(ReshareError::NotHolder(deal.dealer));
    }
    let reshare = match open_for(&mut tx, &roster, subject).await? {
        Some(open) => {
            agrees_with_open(&mut tx, &open, &deal).await?;
            open
        }
        None => {
            // A re-share opened for a roster that has changed since can never complete (its
            // new holders are not the members): the first deal for the new roster drops it.
            if let Some(stale) = store::reshares::open(&mut tx, subject).await? {
                store::reshares::abandon(&mut tx, &stale.id).await?;
                tx.audit(
                    member.vault,
                    now,
                    Event::by(member.fingerprint, "reshare.dropped", &id, &[]),
                );
            }
            open_reshare(&mut tx, &vault, &roster, subject, &manifest, &deal, now).await?
        }
    };
    if store::reshares::deals(&mut tx, &reshare.id).await?.len() >= reshare.current_k as usize {
        return Err(ReshareError::EnoughDeals);
    }
    let sealed = checked_subshares(&deal, &reshare, subshares)?;
    let statement = signed.to_bytes();
    if !store::reshares::insert_deal(&mut tx, &reshare.id, deal.dealer, &statement, &sealed, now)
        .await?
    {
        return Err(ReshareError::AlreadyDealt);
    }
    tx.audit(
        member.vault,
        now,
        Event::by(member.fingerprint, "reshare.dealt", &id, &statement),
    );
    let state = state(&mut tx, &reshare, false).await?;
    tx.commit().await?;
    Ok(state)
}

/// A deal into an open re-share must name it and agree with its first deal on everything
/// the new holders check alike.
async fn agrees_with_open(
    connection: &mut sqlx::AnyConnection,
    open: &Reshare,
    deal: &ReshareDeal,
) -> Result<(), ReshareError> {
    if open.id != hex::encode(deal.reshare_id) {
        return Err(ReshareError::OtherReshare(open.id.clone()));
    }
    let Some((_, first)) = store::reshares::deals(connection, &open.id)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let first = SignedStatement::from_bytes(&first)?
        .verify::<ReshareDeal>()?
        .statement;
    let fields = [
        ("roster head", first.roster_head == deal.roster_head),
        ("new holders", first.holders == deal.holders),
        ("new threshold", first.new_k == deal.new_k),
        (
            "current commitments",
            first.current_commitments_sha256 == deal.current_commitments_sha256,
        ),
    ];
    match fields.iter().find(|(_, same)| !same) {
        Some((field, _)) => Err(ReshareError::Disagrees(field)),
        None => Ok(()),
    }
}

/// Opens the subject's next re-share with `deal`'s terms, which must be the current roster's.
async fn open_reshare(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    roster: &Roster,
    subject: Shared<'_>,
    manifest: &[u8],
    deal: &ReshareDeal,
    now: i64,
) -> Result<Reshare, ReshareError> {
    if deal.roster_head != roster.head() {
        return Err(ReshareError::RosterChanged);
    }
    let holders: Vec<String> = deal.holders.iter().map(|holder| holder.to_hex()).collect();
    if holders != roster_holders(roster) {
        return Err(ReshareError::WrongHolders);
    }
    let least = least_new_k(connection, vault, subject, manifest).await?;
    if deal.new_k < least {
        return Err(ReshareError::ThresholdTooLow(least));
    }
    let reshare = Reshare {
        id: hex::encode(deal.reshare_id),
        roster_head: hex::encode(deal.roster_head),
        holders: holders.join(" "),
        current_k: current_k(connection, subject, manifest).await?,
        new_k: i32::from(deal.new_k),
        generation: store::reshares::next_generation(connection, subject).await?,
        recording_id: None,
        transcript_id: None,
        completed_at: None,
    };
    if !store::reshares::insert(connection, vault, subject, &reshare, now).await? {
        return Err(ReshareError::OtherReshare(reshare.id));
    }
    Ok(reshare)
}

/// The sealed sub-shares in the re-share's holder order, each the file the deal signs.
fn checked_subshares(
    deal: &ReshareDeal,
    reshare: &Reshare,
    subshares: Vec<(String, Vec<u8>)>,
) -> Result<Vec<(String, Vec<u8>)>, ReshareError> {
    let holders = reshare.holder_list();
    if subshares.len() != holders.len() {
        return Err(ReshareError::SubShares);
    }
    let mut ordered = Vec::with_capacity(holders.len());
    for (position, holder) in holders.iter().enumerate() {
        let Some((_, sealed)) = subshares
            .iter()
            .find(|(named, _)| named.eq_ignore_ascii_case(holder))
        else {
            return Err(ReshareError::SubShares);
        };
        let digest: [u8; 32] = Sha256::digest(sealed).into();
        if sealed.is_empty()
            || sealed.len() > MAX_SEALED
            || deal.sealed_subshares_sha256.get(position) != Some(&digest)
        {
            return Err(ReshareError::SubShares);
        }
        ordered.push((holder.clone(), sealed.clone()));
    }
    Ok(ordered)
}

/// Stores `member`'s new share of re-share `id`, sealed to themselves, with the
/// commitments they computed; once every new holder's is in, swaps them for the old shares
/// (or drops the re-share if the commitments disagree).
pub(crate) async fn accept(
    app: &App,
    member: Member<'_>,
    id: &str,
    sealed: &[u8],
    commitments: &[u8],
    now: i64,
) -> Result<ReshareState, ReshareError> {
    let vault = member.vault.to_string();
    if sealed.is_empty()
        || sealed.len() > MAX_SEALED
        || commitments.is_empty()
        || !commitments.len().is_multiple_of(32)
        || commitments.len() > 255 * 32
    {
        return Err(ReshareError::BadUpload);
    }
    let mut tx = app.db.begin().await?;
    store::vaults::lock(&mut tx, &vault).await?;
    let reshare = store::reshares::by_id(&mut tx, &vault, id)
        .await?
        .ok_or(ReshareError::NotFound)?;
    if reshare.completed_at.is_some() {
        return Err(ReshareError::AlreadyAccepted);
    }
    // Its new holders are no longer the members: the next deal drops it and opens another.
    let roster = app.rosters.verified(&mut tx, member.vault).await?;
    if reshare.roster_head != hex::encode(roster.head()) {
        return Err(ReshareError::RosterChanged);
    }
    let holders = reshare.holder_list();
    let position = holders
        .iter()
        .position(|holder| holder == member.fingerprint)
        .ok_or(ReshareError::NotNewHolder)?;
    if store::reshares::deals(&mut tx, id).await?.len() < reshare.current_k as usize {
        return Err(ReshareError::NotReady);
    }
    let stored = store::reshares::insert_acceptance(
        &mut tx,
        id,
        member.fingerprint,
        position + 1,
        sealed,
        commitments,
    )
    .await?;
    if !stored {
        return Err(ReshareError::AlreadyAccepted);
    }
    let accepted = store::reshares::acceptances(&mut tx, id).await?;
    if accepted.len() < holders.len() {
        let state = state(&mut tx, &reshare, false).await?;
        tx.commit().await?;
        return Ok(state);
    }
    let subject = reshare.shared();
    let subject_id = subject.id().to_owned();
    if accepted
        .iter()
        .any(|(_, _, _, theirs)| theirs != commitments)
    {
        store::reshares::abandon(&mut tx, id).await?;
        tx.audit(
            member.vault,
            now,
            Event::by(member.fingerprint, "reshare.dropped", &subject_id, &[]),
        );
        tx.commit().await?;
        return Err(ReshareError::Disagreed);
    }
    store::reshares::complete(&mut tx, subject, id, commitments, now).await?;
    // Votes cast with old shares cannot be combined with new ones: open requests on the
    // subject close, and members ask again.
    store::requests::expire_open_on(&mut tx, &subject_id, now).await?;
    if let Shared::Recording(recording) = subject {
        store::recordings::set_threshold(&mut tx, recording, reshare.new_k, holders.len() as i32)
            .await?;
    }
    tx.audit(
        member.vault,
        now,
        Event::by(
            member.fingerprint,
            "reshare.completed",
            &subject_id,
            commitments,
        ),
    );
    let state = state(&mut tx, &reshare, true).await?;
    tx.commit().await?;
    Ok(state)
}
