//! Released minutes: the vault's search key (sealed copies and an admin's commitment), the
//! completion of a release job (the released copy, the sealed release keys and the blind
//! index), and the sealed release keys members add for each other. The server stores and
//! checks what it can (signatures, digests, who is named); it never holds a key to open any
//! of it.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use quorate_api::{
    NodeStatus, Reindex, ReleaseCompletion, ReleasedView, SealedGrant, SearchKeyView,
};
use quorate_crypto::{
    blind::BlindToken,
    release::{
        Posting, ReleaseManifest, SearchKeyChain, SearchKeyCommitment, SearchKeyRotation,
        postings_digest,
    },
    roster::Roster,
    statement::{SignedStatement, TranscriptManifest},
};

use super::jobs::{
    self, Checked, Completing, Completion, JobError, Lease, MAX_TRANSCRIPT_BYTES, Upload,
    require_match, same_members,
};
use crate::{
    ApiError, App,
    blobs::BlobError,
    db::Db,
    error::Refusal,
    ops::{requests::Member, roster::RosterError},
    store::{
        self, Event, Tx,
        release::{GrantMode, NewRelease},
        transcripts::{Described, NewTranscript, ReleaseTarget},
    },
};

/// Largest sealed key accepted (a sealed key is a few hundred bytes of age file).
const MAX_SEALED_KEY: usize = 4096;
/// Bytes of one posting as uploaded: token, segment, term frequency.
const POSTING_BYTES: usize = 24;
/// Most postings one released transcript may carry (a 20-hour meeting has fewer).
pub const MAX_POSTINGS: usize = 500_000;
/// Largest release completion body: the copy and the postings, base64, with room to spare.
pub const MAX_RELEASE_BODY: usize =
    (MAX_TRANSCRIPT_BYTES + MAX_POSTINGS * POSTING_BYTES) * 4 / 3 + (1 << 20);

/// Why a release, a sealed key or a search key was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReleaseError {
    #[error("this transcript is released already: members can read and search it")]
    AlreadyReleased,
    #[error("{0}")]
    InvalidStatement(#[from] quorate_crypto::Error),
    #[error("the commitment must be signed by the admin sending it, for this vault")]
    NotTheCommitter,
    #[error("{0}")]
    InvalidPostings(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("the vault has no search key yet: send its signed commitment with the first copy")]
    NoSearchKey,
    #[error("the vault has another search key already: share that one")]
    SearchKeyExists,
    #[error(
        "the vault's search key is at generation {current}, not {sent}: fetch the newest (it was rotated) and try again"
    )]
    SearchKeyRotated { current: i64, sent: u64 },
    #[error("{0}")]
    StaleRotation(String),
    #[error("this transcript is indexed under the newest search key already")]
    AlreadyIndexed,
    #[error("no such resource")]
    NotFound,
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

impl Refusal for ReleaseError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use ReleaseError::*;
        Some(match self {
            AlreadyReleased => (StatusCode::CONFLICT, "already_released"),
            InvalidStatement(_) | NotTheCommitter => (StatusCode::BAD_REQUEST, "invalid_statement"),
            InvalidPostings(_) => (StatusCode::BAD_REQUEST, "invalid_postings"),
            InvalidGrant(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
            NoSearchKey => (StatusCode::BAD_REQUEST, "no_search_key"),
            SearchKeyExists => (StatusCode::CONFLICT, "search_key_exists"),
            SearchKeyRotated { .. } => (StatusCode::CONFLICT, "search_key_rotated"),
            StaleRotation(_) => (StatusCode::CONFLICT, "stale_rotation"),
            AlreadyIndexed => (StatusCode::CONFLICT, "already_indexed"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Job(error) => return error.refusal(),
            Roster(_) | Store(_) | Blob(_) => return None,
        })
    }
}

/// Checks that a transcript manifest is well formed (used where a stored one is read back).
pub(crate) fn transcript_manifest(
    bytes: &[u8],
) -> Result<TranscriptManifest, quorate_crypto::Error> {
    SignedStatement::from_bytes(bytes)
        .and_then(|signed| signed.verify::<TranscriptManifest>())
        .map(|verified| verified.statement)
}

/// Decodes an uploaded sealed key (base64, 1 to [`MAX_SEALED_KEY`] bytes).
fn checked_sealed(sealed: &[u8]) -> Result<&[u8], ReleaseError> {
    if sealed.is_empty() || sealed.len() > MAX_SEALED_KEY {
        return Err(ReleaseError::InvalidGrant(format!(
            "a sealed key is 1 to {MAX_SEALED_KEY} bytes"
        )));
    }
    Ok(sealed)
}

/// The fingerprints (hex) of the roster's current members.
fn current_members(roster: &Roster) -> Vec<String> {
    roster
        .members()
        .iter()
        .map(|member| member.fingerprint.to_hex())
        .collect()
}

/// Creates the vault's search key (with `commitment`, its admin-signed commitment) or
/// shares it with more holders: current members and approved nodes. A copy once stored is
/// never replaced. Returns the key as `admin` now sees it.
pub(crate) async fn share_search_key(
    app: &App,
    admin: Member<'_>,
    commitment: Option<&SignedStatement>,
    shared: Shared<'_>,
    now: i64,
) -> Result<SearchKeyView, ReleaseError> {
    let vault = admin.vault.to_string();
    let mut tx = app.db.begin().await?;
    // Under the lock a rotation takes: a copy of the key it replaces is never stored after.
    store::vaults::lock(&mut tx, &vault).await?;
    let roster = app.rosters.verified(&mut tx, admin.vault).await?;
    let current = store::search::generation(&mut tx, &vault).await?;
    if i64::try_from(shared.generation).ok() != Some(current) {
        return Err(ReleaseError::SearchKeyRotated {
            current,
            sent: shared.generation,
        });
    }
    let stored = store::search::commitment(&mut tx, &vault).await?;
    match (commitment, stored) {
        (None, None) => return Err(ReleaseError::NoSearchKey),
        (None, Some(_)) => {}
        (Some(signed), Some(stored)) => {
            if stored != signed.to_bytes() {
                return Err(ReleaseError::SearchKeyExists);
            }
        }
        (Some(signed), None) => create_search_key(&mut tx, &roster, admin, signed, now).await?,
    }
    let members = current_members(&roster);
    for grant in shared.grants {
        share_search_key_with(&mut tx, admin, &members, (current, grant), now).await?;
    }
    let view = store::search::key_view(&mut tx, &vault, admin.fingerprint).await?;
    tx.commit().await?;
    Ok(view)
}

/// Sealed copies of one generation of the search key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shared<'a> {
    pub generation: u64,
    pub grants: &'a [SealedGrant],
}

/// Stores one holder's sealed copy of the search key, audited when it is new: the holder
/// must be one of the current `members` or an approved node.
async fn share_search_key_with(
    tx: &mut Tx,
    admin: Member<'_>,
    members: &[String],
    (generation, grant): (i64, &SealedGrant),
    now: i64,
) -> Result<(), ReleaseError> {
    let vault = admin.vault.to_string();
    let holder = grant.holder.to_ascii_lowercase();
    if !members.contains(&holder) && !is_approved_node(tx, &vault, &holder).await? {
        return Err(ReleaseError::InvalidGrant(format!(
            "{holder} is neither a current member nor an approved node"
        )));
    }
    let sealed = checked_sealed(&grant.sealed)?;
    let copy = store::search::CopyOf {
        vault: &vault,
        generation,
        holder: &holder,
    };
    if store::search::insert_grant(tx, copy, sealed, now).await? {
        tx.audit(
            admin.vault,
            now,
            member_event(admin, "search_key.shared", &holder),
        );
    }
    Ok(())
}

/// Stores the vault's first search key commitment: signed by `admin`, for this vault.
async fn create_search_key(
    tx: &mut Tx,
    roster: &Roster,
    admin: Member<'_>,
    signed: &SignedStatement,
    now: i64,
) -> Result<(), ReleaseError> {
    let (verified, signer) = roster.verify_by_admin::<SearchKeyCommitment>(signed)?;
    if signer.fingerprint.to_hex() != admin.fingerprint
        || verified.statement.vault_id != admin.vault
    {
        return Err(ReleaseError::NotTheCommitter);
    }
    let vault = admin.vault.to_string();
    let statement = signed.to_bytes();
    store::search::insert_commitment(tx, &vault, &statement, now).await?;
    tx.audit(
        admin.vault,
        now,
        Event::by(admin.fingerprint, "search_key.created", &vault, &statement),
    );
    Ok(())
}

/// Replaces the vault's search key: stores `signed`, an admin's rotation to the next
/// generation, with the new key sealed to holders (every current member at least). The
/// rotation must name the current key and the current roster head, checked under the vault's
/// lock, which roster changes take too: so it is made for the board as it stands.
pub(crate) async fn rotate_search_key(
    app: &App,
    admin: Member<'_>,
    signed: &SignedStatement,
    grants: &[SealedGrant],
    now: i64,
) -> Result<SearchKeyView, ReleaseError> {
    let vault = admin.vault.to_string();
    let mut tx = app.db.begin().await?;
    store::vaults::lock(&mut tx, &vault).await?;
    let roster = app.rosters.verified(&mut tx, admin.vault).await?;
    let (verified, signer) = roster.verify_by_admin::<SearchKeyRotation>(signed)?;
    let rotation = verified.statement;
    if signer.fingerprint.to_hex() != admin.fingerprint || rotation.vault_id != admin.vault {
        return Err(ReleaseError::NotTheCommitter);
    }
    let current = store::search::generation(&mut tx, &vault).await?;
    let next = current + 1;
    if i64::try_from(rotation.generation).ok() != Some(next) {
        return Err(ReleaseError::SearchKeyRotated {
            current,
            sent: rotation.generation.saturating_sub(1),
        });
    }
    if rotation.previous_check != current_key_check(&mut tx, &roster, &vault).await? {
        return Err(ReleaseError::StaleRotation(
            "the rotation replaces a key other than the vault's current one".into(),
        ));
    }
    if rotation.roster_sequence.checked_add(1) != Some(roster.len())
        || rotation.roster_head != roster.head()
    {
        return Err(ReleaseError::StaleRotation(
            "the rotation was made for another roster head: the roster changed; fetch it and rotate again".into(),
        ));
    }
    let members = current_members(&roster);
    let holders: Vec<String> = grants
        .iter()
        .map(|grant| grant.holder.to_ascii_lowercase())
        .collect();
    if let Some(missing) = members.iter().find(|member| !holders.contains(member)) {
        return Err(ReleaseError::InvalidGrant(format!(
            "the new search key must be sealed to every current member: {missing} has no copy"
        )));
    }
    if !store::search::insert_rotation(&mut tx, &vault, next, &signed.to_bytes(), now).await? {
        return Err(ReleaseError::SearchKeyRotated {
            current: next,
            sent: rotation.generation,
        });
    }
    for grant in grants {
        share_search_key_with(&mut tx, admin, &members, (next, grant), now).await?;
    }
    drop_older_copies_when_none_behind(&mut tx, admin, next, now).await?;
    let statement = signed.to_bytes();
    tx.audit(
        admin.vault,
        now,
        Event::by(admin.fingerprint, "search_key.rotated", &vault, &statement),
    );
    let view = store::search::key_view(&mut tx, &vault, admin.fingerprint).await?;
    tx.commit().await?;
    tracing::info!(vault = %vault, generation = next, "search key rotated");
    Ok(view)
}

/// Deletes the sealed copies of the vault's search keys older than `generation` once no
/// released transcript is indexed under one (audited as the act of `by`, whose change made it
/// so): nothing needs them any more, and a copy kept is a key kept.
async fn drop_older_copies_when_none_behind(
    tx: &mut Tx,
    by: Member<'_>,
    generation: i64,
    now: i64,
) -> Result<(), ReleaseError> {
    let vault = by.vault.to_string();
    if store::search::behind(tx, &vault, generation).await? > 0 {
        return Ok(());
    }
    if store::search::delete_older_copies(tx, &vault, generation).await? > 0 {
        tx.audit(
            by.vault,
            now,
            member_event(by, "search_key.older_copies_deleted", &vault),
        );
    }
    Ok(())
}

/// The check value of `vault`'s newest search key: the stored commitment and rotations,
/// verified as a device verifies them ([`SearchKeyChain`]).
async fn current_key_check(
    tx: &mut Tx,
    roster: &Roster,
    vault: &str,
) -> Result<[u8; 32], ReleaseError> {
    let commitment = store::search::commitment(tx, vault)
        .await?
        .ok_or(ReleaseError::NoSearchKey)?;
    let rotations = store::search::rotations(tx, vault)
        .await?
        .iter()
        .map(|bytes| SignedStatement::from_bytes(bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let chain = SearchKeyChain::verify(
        roster,
        &SignedStatement::from_bytes(&commitment)?,
        &rotations,
    )?;
    Ok(*chain
        .check_value(chain.generation())
        .expect("a chain holds its newest generation"))
}

/// Replaces a released transcript's postings with `upload`'s, made on a member's device under
/// the newest search key. The server cannot check tokens it cannot compute; it checks the
/// generation, the records, and that they count exactly the transcript's words. When no
/// released transcript is left under an older key, the older keys' sealed copies are deleted.
pub(crate) async fn reindex(
    app: &App,
    member: Member<'_>,
    transcript: &str,
    upload: &Reindex,
    now: i64,
) -> Result<ReleasedView, ReleaseError> {
    let vault = member.vault.to_string();
    let postings = parse_postings(&upload.postings)?;
    let mut tx = app.db.begin().await?;
    store::vaults::lock(&mut tx, &vault).await?;
    let indexed = store::search::indexed(&mut tx, &vault, transcript)
        .await?
        .ok_or(ReleaseError::NotFound)?;
    let current = store::search::generation(&mut tx, &vault).await?;
    if i64::try_from(upload.generation).ok() != Some(current) {
        return Err(ReleaseError::SearchKeyRotated {
            current,
            sent: upload.generation,
        });
    }
    if indexed.key_generation >= current {
        return Err(ReleaseError::AlreadyIndexed);
    }
    if words(&postings) != indexed.words {
        return Err(ReleaseError::InvalidPostings(format!(
            "the postings count {} words; the transcript has {}",
            words(&postings),
            indexed.words
        )));
    }
    store::search::reindex(&mut tx, indexed.doc, current, &postings).await?;
    tx.audit(
        member.vault,
        now,
        member_event(member, "released.reindexed", transcript),
    );
    drop_older_copies_when_none_behind(&mut tx, member, current, now).await?;
    let view = store::release::view(&mut tx, &vault, transcript)
        .await?
        .ok_or(ReleaseError::NotFound)?;
    tx.commit().await?;
    Ok(view)
}

async fn is_approved_node(tx: &mut Tx, vault: &str, node: &str) -> Result<bool, sqlx::Error> {
    let state = store::nodes::approval_state(tx, vault, node).await?;
    Ok(state.is_some_and(|state| state.status == NodeStatus::Approved))
}

/// An unsigned audit event by a member.
fn member_event<'a>(member: Member<'a>, action: &'a str, subject: &'a str) -> Event<'a> {
    Event {
        actor: member.fingerprint,
        action,
        subject,
        statement: None,
    }
}

/// Adds current members to released transcript `transcript`: its key, sealed to each of
/// them on the device of `member`, who can open it. Returns the released transcript as it
/// now stands.
pub(crate) async fn add_grants(
    app: &App,
    member: Member<'_>,
    is_admin: bool,
    transcript: &str,
    grants: &[SealedGrant],
    now: i64,
) -> Result<ReleasedView, ReleaseError> {
    let vault = member.vault.to_string();
    let mut tx = app.db.begin().await?;
    store::release::view(&mut tx, &vault, transcript)
        .await?
        .ok_or(ReleaseError::NotFound)?;
    let roster = app.rosters.verified(&mut tx, member.vault).await?;
    let members = current_members(&roster);
    // The server cannot tell a good sealed key from any other, and a member's device refuses
    // a bad one only when it opens it. So if the first grant always stood, any member could
    // seal some other key to a newcomer first and the newcomer would never get a good one.
    // An admin's grant therefore replaces an earlier one (admins approve newcomers, and their
    // devices seal the keys then); a member's only fills a gap, so it cannot undo an admin's.
    let mode = if is_admin {
        GrantMode::Replace
    } else {
        GrantMode::FillGap
    };
    for grant in grants {
        let holder = grant.holder.to_ascii_lowercase();
        if !members.contains(&holder) {
            return Err(ReleaseError::InvalidGrant(format!(
                "{holder} is not a current member"
            )));
        }
        let sealed = checked_sealed(&grant.sealed)?;
        let key = (transcript, holder.as_str());
        if store::release::insert_grant(&mut tx, key, sealed, mode, now).await? {
            let subject = format!("{transcript}/{holder}");
            tx.audit(
                member.vault,
                now,
                member_event(member, "release.shared", &subject),
            );
        }
    }
    let view = store::release::view(&mut tx, &vault, transcript)
        .await?
        .ok_or(ReleaseError::NotFound)?;
    tx.commit().await?;
    Ok(view)
}

/// Parses uploaded postings (base64 of 24-byte records: token, segment, tf).
fn parse_postings(bytes: &[u8]) -> Result<Vec<Posting>, ReleaseError> {
    if !bytes.len().is_multiple_of(POSTING_BYTES) || bytes.len() / POSTING_BYTES > MAX_POSTINGS {
        return Err(ReleaseError::InvalidPostings(format!(
            "postings are 24-byte records (token, segment, tf), at most {MAX_POSTINGS} of them"
        )));
    }
    Ok(bytes
        .chunks_exact(POSTING_BYTES)
        .map(|record| Posting {
            token: BlindToken(record[..16].try_into().expect("16 bytes")),
            segment: u32::from_be_bytes(record[16..20].try_into().expect("4 bytes")),
            tf: u32::from_be_bytes(record[20..].try_into().expect("4 bytes")),
        })
        .collect())
}

/// Completes a release job: the released copy, the release key sealed to every current
/// member, and the blind-index postings, all described by the node's signed manifest. A
/// retry with the same manifest answers the same.
pub(crate) async fn complete(
    app: &App,
    lease: Lease<'_>,
    signed: &SignedStatement,
    upload: &ReleaseCompletion,
) -> Result<ReleasedView, ReleaseError> {
    let (vault, verified) = match checked_release(app, lease, signed).await? {
        Checked::Retry(stored) => return Ok(stored),
        Checked::Fresh { vault, verified } => (vault, *verified),
    };
    let manifest = &verified.statement;
    let copy = jobs::described_ciphertext(
        Upload::ReleasedCopy,
        &upload.copy,
        manifest.ciphertext_len,
        &manifest.ciphertext_sha256,
    )?;
    let postings = described_postings(manifest, &upload.postings)?;
    let grants = release_keys(manifest, &upload.grants)?;
    let transcript = manifest.transcript_id.to_string();
    let completion = Completion {
        upload: Upload::ReleasedCopy,
        vault: &vault,
        transcript: &transcript,
        recording: &manifest.recording_id.to_string(),
        manifest: &signed.to_bytes(),
        manifest_digest: &verified.digest,
        ciphertext: copy,
    };
    let words = words(&postings);
    let generation = upload.search_key_generation;
    let named: Vec<String> = manifest
        .members
        .iter()
        .map(|member| member.to_hex())
        .collect();
    let view = jobs::store_completion(app, lease, completion, async |tx: &mut Tx, described| {
        if !jobs::still_the_members(app, tx, described.vault, named).await? {
            return Err(JobError::NotTheMembers.into());
        }
        let current = store::search::generation(tx, described.vault).await?;
        if i64::try_from(generation).ok() != Some(current) {
            return Err(ReleaseError::SearchKeyRotated {
                current,
                sent: generation,
            });
        }
        let release = NewRelease {
            described,
            words,
            key_generation: current,
        };
        store_release(tx, &release, &postings, grants).await
    })
    .await?;
    tracing::info!(request = %lease.request, transcript = %transcript, postings = postings.len(), "transcript released");
    Ok(view)
}

/// Checks a release's lease and manifest. The manifest must be signed by this node and
/// name this request, its transcript (not released yet, and that transcript's manifest
/// digest) and exactly the vault's current members.
async fn checked_release(
    app: &App,
    lease: Lease<'_>,
    signed: &SignedStatement,
) -> Result<Checked<ReleasedView, ReleaseManifest>, ReleaseError> {
    let mut connection = app.db.connection().await?;
    let vault = match jobs::completing(&mut connection, lease).await? {
        Completing::Leased { vault } => vault,
        Completing::Done { vault, transcript } => {
            let stored = store::release::view(&mut connection, &vault, &transcript)
                .await?
                .ok_or(ReleaseError::NotFound)?;
            let manifest = stored.manifest.clone();
            let retry = jobs::retried(stored, &manifest, signed, Upload::ReleasedCopy)?;
            return Ok(Checked::Retry(retry));
        }
    };
    let subject = store::transcripts::release_target(&mut connection, lease.request)
        .await?
        .ok_or(JobError::WrongCompletion(Upload::ReleasedCopy))?;
    // Refused before anything is written; the row's insert refuses a race all the same.
    if subject.released.is_some() {
        return Err(ReleaseError::AlreadyReleased);
    }
    let (verified, _) =
        jobs::signed_by_node::<ReleaseManifest>(&mut connection, &vault, lease.node, signed)
            .await?;
    let roster = app
        .rosters
        .verified(&mut connection, lease.node.vault)
        .await?;
    check_release_manifest(&verified.statement, lease, &vault, &subject)?;
    let named = verified
        .statement
        .members
        .iter()
        .map(|member| member.to_hex())
        .collect();
    if !same_members(current_members(&roster), named) {
        return Err(JobError::NotTheMembers.into());
    }
    Ok(Checked::Fresh {
        vault,
        verified: Box::new(verified),
    })
}

/// The release manifest must name this job (vault, node, request), and its transcript with
/// that transcript's recording and manifest digest.
fn check_release_manifest(
    manifest: &ReleaseManifest,
    lease: Lease<'_>,
    vault: &str,
    subject: &ReleaseTarget,
) -> Result<(), JobError> {
    require_match(
        Upload::ReleasedCopy,
        &[
            (manifest.vault_id.to_string() == vault, "vault"),
            (manifest.node_id == lease.node.id, "node"),
            (manifest.request_id.to_string() == lease.request, "request"),
            (
                manifest.transcript_id.to_string() == subject.id,
                "transcript",
            ),
            (
                manifest.recording_id.to_string() == subject.recording_id,
                "recording",
            ),
            (
                manifest.transcript_manifest_digest.as_slice() == subject.manifest_digest,
                "transcript manifest digest",
            ),
        ],
    )
}

/// The uploaded postings, checked against the count and digest the manifest names.
fn described_postings(
    manifest: &ReleaseManifest,
    bytes: &[u8],
) -> Result<Vec<Posting>, ReleaseError> {
    let postings = parse_postings(bytes)?;
    if postings.len() as u64 != manifest.postings_count
        || postings_digest(&postings) != manifest.postings_sha256
    {
        return Err(ReleaseError::InvalidPostings(
            "the postings' count or digest differs from the manifest's".into(),
        ));
    }
    Ok(postings)
}

/// The uploaded sealed release keys by member: exactly one for each member the manifest
/// names.
fn release_keys(
    manifest: &ReleaseManifest,
    uploaded: &[SealedGrant],
) -> Result<BTreeMap<String, Vec<u8>>, ReleaseError> {
    let named: Vec<String> = manifest
        .members
        .iter()
        .map(|member| member.to_hex())
        .collect();
    let mut grants = BTreeMap::new();
    for grant in uploaded {
        let member = grant.holder.to_ascii_lowercase();
        if !named.contains(&member) {
            return Err(ReleaseError::InvalidGrant(format!(
                "a release key is for {member}, whom the manifest does not name"
            )));
        }
        if grants
            .insert(member.clone(), checked_sealed(&grant.sealed)?.to_vec())
            .is_some()
        {
            return Err(ReleaseError::InvalidGrant(format!(
                "two release keys are for {member}"
            )));
        }
    }
    if grants.len() != named.len() {
        return Err(ReleaseError::InvalidGrant(
            "send exactly one sealed release key per member the manifest names".into(),
        ));
    }
    Ok(grants)
}

/// A released transcript's length in words: the sum of its postings' term frequencies.
fn words(postings: &[Posting]) -> i64 {
    postings.iter().map(|posting| i64::from(posting.tf)).sum()
}

/// Stores the released transcript's row, its index and its sealed release keys; returns its
/// view.
async fn store_release(
    tx: &mut Tx,
    release: &NewRelease<'_>,
    postings: &[Posting],
    grants: BTreeMap<String, Vec<u8>>,
) -> Result<ReleasedView, ReleaseError> {
    index_release(tx, release, postings).await?;
    for (member, sealed) in grants {
        let key = (release.described.transcript, member.as_str());
        let now = release.described.now;
        store::release::insert_grant(tx, key, &sealed, GrantMode::FillGap, now).await?;
    }
    store::release::view(tx, release.described.vault, release.described.transcript)
        .await?
        .ok_or(ReleaseError::NotFound)
}

/// Stores the released transcript's row and indexes it under its postings; refuses a
/// transcript that has a released copy already (it is never replaced).
async fn index_release(
    connection: &mut sqlx::AnyConnection,
    release: &NewRelease<'_>,
    postings: &[Posting],
) -> Result<(), ReleaseError> {
    let doc = store::release::insert(connection, release)
        .await?
        .ok_or(ReleaseError::AlreadyReleased)?;
    store::search::index(connection, doc, postings).await?;
    Ok(())
}

/// Puts a released transcript straight into the index, without a node, a copy or any key:
/// for tests of ranking and for the search benchmark only. The rows are those a release
/// stores (the sealed transcript's and the released copy's manifests are placeholders).
#[doc(hidden)]
pub async fn seed_released(
    db: &Db,
    vault: &str,
    recording: &str,
    transcript: &str,
    postings: &[Posting],
) -> Result<(), ApiError> {
    let (transcribe, release) = (
        format!("seed-transcribe-{transcript}"),
        format!("seed-release-{transcript}"),
    );
    let placeholder = |request| Described {
        transcript,
        vault,
        recording,
        request,
        manifest: &[],
        manifest_digest: &[],
        ciphertext_len: 0,
        object: "",
        now: 0,
    };
    let mut tx = db.begin().await?;
    let sealed = NewTranscript {
        described: placeholder(&transcribe),
        node: "seed",
    };
    store::transcripts::insert(&mut tx, &sealed).await?;
    let released = NewRelease {
        described: placeholder(&release),
        words: words(postings),
        key_generation: 0,
    };
    index_release(&mut tx, &released, postings).await?;
    tx.commit().await?;
    Ok(())
}
