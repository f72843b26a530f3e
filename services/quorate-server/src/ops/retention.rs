//! Records management: admins' signed retention rules, members' signed votes on legal holds,
//! and the shredding a rule calls for once it is due, with a receipt in the audit log.
//!
//! The server keeps the rules it is given and shreds by them; it cannot make a rule (only
//! an admin's key signs one) and cannot place or lift a hold (only k members' votes do).
//! Devices check every receipt against the rule it names and the holds in the log
//! (`quorate audit verify`).

use axum::http::StatusCode;
use quorate_crypto::{
    RecordingId,
    retention::{HoldAction, LegalHold, Period, RetentionRule, Scope, rule_for, tally},
    statement::{RecordingManifest, SignedStatement, Verified},
};

use crate::{
    App,
    error::Refusal,
    ops::{
        recordings::{self, RecordingError},
        requests::Member,
        roster::RosterError,
        uploads,
    },
    store::{
        self, Event,
        retention::{HoldVote, Kept, VAULT_SCOPE},
    },
};

/// Why a rule or a vote was refused, or shredding failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RetentionError {
    #[error("{0}")]
    InvalidStatement(#[from] quorate_crypto::Error),
    #[error(
        "this rule's sequence must be {0}: fetch the rules, then sign the change again on top of the newest"
    )]
    RuleChanged(i64),
    #[error("the rule names a recording this vault does not have")]
    NoSuchRecording,
    #[error("a vote must be signed by the member sending it")]
    NotVoter,
    #[error("a rule must be signed by the admin sending it")]
    NotSigner,
    #[error("you already voted so on this hold")]
    AlreadyVoted,
    #[error("this hold is already placed: vote to lift it, or place a new hold")]
    AlreadyPlaced,
    #[error("a hold is lifted only once a quorum placed it, and only once")]
    NotPlaced,
    #[error(
        "the votes on a hold must agree on its scope and reason: vote with the first vote's, or place a new hold"
    )]
    Disagrees,
    #[error(
        "this vault has no policy yet: an admin must set the threshold, which is also a hold's quorum"
    )]
    NoPolicy,
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl Refusal for RetentionError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use RetentionError::*;
        Some(match self {
            InvalidStatement(_) | NotVoter | NotSigner => {
                (StatusCode::BAD_REQUEST, "invalid_statement")
            }
            RuleChanged(_) => (StatusCode::CONFLICT, "rule_changed"),
            NoSuchRecording => (StatusCode::NOT_FOUND, "not_found"),
            AlreadyVoted => (StatusCode::CONFLICT, "already_voted"),
            AlreadyPlaced => (StatusCode::CONFLICT, "hold_placed"),
            NotPlaced => (StatusCode::CONFLICT, "hold_not_placed"),
            Disagrees => (StatusCode::CONFLICT, "hold_disagrees"),
            NoPolicy => (StatusCode::CONFLICT, "no_policy"),
            Recording(error) => return error.refusal(),
            Roster(_) | Store(_) => return None,
        })
    }
}

/// How a scope is stored: [`VAULT_SCOPE`] or the recording's ID.
fn scope_name(scope: Scope) -> String {
    match scope {
        Scope::Vault => VAULT_SCOPE.to_owned(),
        Scope::Recording(recording) => recording.to_string(),
    }
}

/// Stores `admin`'s signed rule: signed by them as a current admin, for a recording of the
/// vault (or the vault), next in its scope's history.
pub(crate) async fn set_rule(
    app: &App,
    admin: Member<'_>,
    signed: &SignedStatement,
    now: i64,
) -> Result<(), RetentionError> {
    let vault = admin.vault.to_string();
    let mut tx = app.db.begin().await?;
    // Rules, holds, shredding and deletions of a vault take turns (see `shred_if_due`).
    store::vaults::lock(&mut tx, &vault).await?;
    let roster = app.rosters.verified(&mut tx, admin.vault).await?;
    let (verified, signer) = roster.verify_by_admin::<RetentionRule>(signed)?;
    if signer.fingerprint.to_hex() != admin.fingerprint {
        return Err(RetentionError::NotSigner);
    }
    let rule = verified.statement;
    let scope = scope_name(rule.scope);
    if let Scope::Recording(recording) = rule.scope
        && !store::recordings::exists(&mut tx, &vault, &recording.to_string()).await?
    {
        return Err(RetentionError::NoSuchRecording);
    }
    let next = store::retention::next_rule_sequence(&mut tx, &vault, &scope).await?;
    let statement = signed.to_bytes();
    if rule.sequence != next as u64
        || !store::retention::insert_rule(&mut tx, &vault, &scope, next, &statement, now).await?
    {
        return Err(RetentionError::RuleChanged(next));
    }
    tx.audit(
        admin.vault,
        now,
        Event::by(admin.fingerprint, "retention.set", &scope, &statement),
    );
    tx.commit().await?;
    Ok(())
}

/// Every rule of the vault, as signed.
pub(crate) async fn rules(app: &App, vault: &str) -> Result<Vec<Vec<u8>>, RetentionError> {
    let mut connection = app.db.connection().await?;
    Ok(store::retention::rules(&mut connection, vault).await?)
}

/// Every vote on every hold of the vault, as signed.
pub(crate) async fn hold_votes(app: &App, vault: &str) -> Result<Vec<Vec<u8>>, RetentionError> {
    let mut connection = app.db.connection().await?;
    Ok(store::retention::hold_votes(&mut connection, vault).await?)
}

fn action_name(action: HoldAction) -> &'static str {
    match action {
        HoldAction::Place => "place",
        HoldAction::Lift => "lift",
    }
}

/// Stores `member`'s signed vote on a hold, and places or lifts the hold once k distinct
/// current members voted for the same hold, action, scope and reason (k the policy's).
/// Returns whether this vote decided it.
pub(crate) async fn vote_hold(
    app: &App,
    member: Member<'_>,
    signed: &SignedStatement,
    now: i64,
) -> Result<bool, RetentionError> {
    let vault = member.vault.to_string();
    let mut tx = app.db.begin().await?;
    // Two k-th votes at once must see each other, and a shredding must see the hold.
    store::vaults::lock(&mut tx, &vault).await?;
    let roster = app.rosters.verified(&mut tx, member.vault).await?;
    let (verified, signer) = roster.verify_by_member::<LegalHold>(signed)?;
    if signer.fingerprint.to_hex() != member.fingerprint {
        return Err(RetentionError::NotVoter);
    }
    let vote = &verified.statement;
    let hold = vote.hold_id.to_string();
    let action = action_name(vote.action);
    let standing = store::retention::hold(&mut tx, &vault, &hold).await?;
    match (vote.action, &standing) {
        (HoldAction::Place, Some(_)) => return Err(RetentionError::AlreadyPlaced),
        (HoldAction::Lift, None) => return Err(RetentionError::NotPlaced),
        (HoldAction::Lift, Some(placed)) if placed.lifted_at.is_some() => {
            return Err(RetentionError::NotPlaced);
        }
        _ => {}
    }
    if let Some(placed) = &standing
        && placed.scope != scope_name(vote.scope)
    {
        return Err(RetentionError::Disagrees);
    }
    let mut votes = Vec::new();
    for bytes in store::retention::hold_votes_on(&mut tx, &vault, &hold, action).await? {
        let earlier = SignedStatement::from_bytes(&bytes)?.verify::<LegalHold>()?;
        // A vote by someone since removed no longer counts.
        if roster.member_by_key(&earlier.signer).is_some() {
            votes.push(earlier);
        }
    }
    if votes
        .first()
        .is_some_and(|first| !same_question(&first.statement, vote))
    {
        return Err(RetentionError::Disagrees);
    }
    let statement = signed.to_bytes();
    let stored = HoldVote {
        vault: &vault,
        hold: &hold,
        action,
        voter: member.fingerprint,
        statement: &statement,
    };
    if !store::retention::insert_hold_vote(&mut tx, &stored, now).await? {
        return Err(RetentionError::AlreadyVoted);
    }
    let voted = format!("hold.vote.{action}");
    tx.audit(
        member.vault,
        now,
        Event::by(member.fingerprint, &voted, &hold, &statement),
    );
    votes.push(verified.clone());
    let k = recordings::newest_policy(&mut tx, &vault)
        .await?
        .ok_or(RetentionError::NoPolicy)?
        .min_threshold;
    let decided = tally(&votes, &roster, k).is_ok();
    if decided {
        match vote.action {
            HoldAction::Place => {
                let scope = scope_name(vote.scope);
                store::retention::place_hold(&mut tx, &vault, &hold, &scope, now).await?;
                tx.audit(member.vault, now, Event::server("hold.placed", &hold));
            }
            HoldAction::Lift => {
                store::retention::lift_hold(&mut tx, &vault, &hold, now).await?;
                tx.audit(member.vault, now, Event::server("hold.lifted", &hold));
            }
        }
    }
    tx.commit().await?;
    Ok(decided)
}

/// Whether two votes are on the same question (they count together).
fn same_question(first: &LegalHold, other: &LegalHold) -> bool {
    (first.hold_id, first.action, first.scope, &first.reason)
        == (other.hold_id, other.action, other.scope, &other.reason)
}

/// The hold in force on `recording`, if any: no deletion may touch it.
pub(crate) async fn hold_on(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    recording: &str,
) -> Result<Option<String>, sqlx::Error> {
    store::retention::hold_on(connection, vault, recording).await
}

/// Shreds what every rule in force says is due at `now` and no hold covers; returns how
/// many parts (a recording's key, or its minutes) it shredded. A recording whose stored
/// statements no longer verify is logged and passed over, so that it stops no other.
pub(crate) async fn shred_due(app: &App, now: i64) -> Result<usize, RetentionError> {
    const BATCH: i64 = 200;
    let (mut after, mut shredded) = (String::new(), 0);
    loop {
        let batch = {
            let mut connection = app.db.connection().await?;
            store::retention::kept(&mut connection, &after, BATCH).await?
        };
        let Some(last) = batch.last() else {
            return Ok(shredded);
        };
        after = last.id.clone();
        for kept in batch {
            match shred_if_due(app, &kept, now).await {
                Ok(parts) => shredded += parts,
                Err(RetentionError::InvalidStatement(error)) => {
                    tracing::error!(vault = %kept.vault_id, recording = %kept.id, %error, "a stored manifest or rule does not verify: this recording is not shredded; restore the database from a backup");
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// A part of a recording that a rule shreds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Its ciphertext and every sealed share of its key.
    Key,
    /// Its transcripts with their shares, released copies and their postings.
    Minutes,
}

impl Part {
    fn action(self) -> &'static str {
        match self {
            Self::Key => "recording.shredded",
            Self::Minutes => "minutes.shredded",
        }
    }
}

/// Shreds the parts of `kept` that the rule in force says are due at `now`, unless a hold
/// covers it, in one transaction that holds the vault's lock (so that no hold, rule or
/// deletion comes in between) and writes a receipt per part. Returns how many it shredded.
async fn shred_if_due(app: &App, kept: &Kept, now: i64) -> Result<usize, RetentionError> {
    let (vault, recording) = (kept.vault_id.as_str(), kept.id.as_str());
    let vault_id = vault.parse()?;
    // A first look without the lock, so that a sweep over recordings with nothing due
    // writes nothing; what is due is read again under the lock.
    {
        let mut connection = app.db.connection().await?;
        if due_parts(&mut connection, kept, now).await?.is_empty() {
            return Ok(0);
        }
    }
    let mut tx = app.db.begin().await?;
    store::vaults::lock(&mut tx, vault).await?;
    let parts = due_parts(&mut tx, kept, now).await?;
    if parts.is_empty() {
        return Ok(0);
    }
    if let Some(hold) = hold_on(&mut tx, vault, recording).await? {
        tracing::info!(vault, recording, hold, "due for shredding, but held");
        return Ok(0);
    }
    if parts.iter().any(|(part, _)| *part == Part::Minutes) {
        // First, so that no job can add a transcript once the rows below are read.
        store::recordings::delete_jobs(&mut tx, recording).await?;
    }
    let (mut leftover, mut objects) = (None, Vec::new());
    for (part, rule) in &parts {
        if !store::retention::mark_shredded(&mut tx, recording, *part == Part::Minutes, now).await?
        {
            // Another replica's sweep got there first.
            return Ok(0);
        }
        match part {
            Part::Key => {
                leftover = store::uploads::delete(&mut tx, recording).await?;
                store::recordings::shred_key(&mut tx, recording).await?;
                objects.push(store::recordings::object_name(vault, recording));
            }
            Part::Minutes => {
                objects.extend(store::recordings::transcript_objects(&mut tx, recording).await?);
                store::recordings::shred_minutes(&mut tx, recording).await?;
            }
        }
        tx.audit(
            vault_id,
            now,
            Event {
                actor: "server",
                action: part.action(),
                subject: recording,
                statement: Some(rule),
            },
        );
    }
    tx.commit().await?;
    uploads::discard_storage(app, vault, recording, leftover).await;
    recordings::remove_objects(app, objects).await;
    tracing::info!(vault, recording, parts = parts.len(), "shredded by rule");
    Ok(parts.len())
}

/// The parts of `kept` due at `now` under the rule in force, each with that rule as signed.
async fn due_parts(
    tx: &mut sqlx::AnyConnection,
    kept: &Kept,
    now: i64,
) -> Result<Vec<(Part, Vec<u8>)>, RetentionError> {
    let manifest = SignedStatement::from_bytes(&kept.manifest)?.verify::<RecordingManifest>()?;
    let recording: RecordingId = manifest.statement.recording_id;
    let mut rules: Vec<(Verified<RetentionRule>, Vec<u8>)> = Vec::new();
    for bytes in store::retention::newest_rules(tx, &kept.vault_id, &kept.id).await? {
        let verified = SignedStatement::from_bytes(&bytes)?.verify::<RetentionRule>()?;
        rules.push((verified, bytes));
    }
    let verified: Vec<Verified<RetentionRule>> =
        rules.iter().map(|(rule, _)| rule.clone()).collect();
    let Some(rule) = rule_for(&verified, recording) else {
        return Ok(Vec::new());
    };
    let Some((_, bytes)) = rules
        .iter()
        .find(|(stored, _)| stored.digest == rule.digest)
    else {
        return Ok(Vec::new());
    };
    let uploaded = manifest.statement.created_at;
    let due = |period: Option<Period>, done: Option<i64>| {
        done.is_none()
            && period
                .and_then(|period| period.due_at(uploaded, kept.released_at))
                .is_some_and(|at| at <= now)
    };
    let mut parts = Vec::new();
    if due(rule.statement.recordings, kept.shredded_at) {
        parts.push((Part::Key, bytes.clone()));
    }
    if due(rule.statement.minutes, kept.minutes_shredded_at) {
        parts.push((Part::Minutes, bytes.clone()));
    }
    Ok(parts)
}
