//! `quorate retention` and `quorate holds`: how long the vault keeps recordings and minutes,
//! and the legal holds that stop every deletion. Rules are signed by an admin here; holds
//! are placed and lifted by the votes of k members, each signed on their own device.

use clap::Subcommand;
use quorate_crypto::{
    HoldId, RecordingId,
    retention::{Anchor, HoldAction, LegalHold, Period, RetentionRule, Scope, tally},
    roster::Roster,
    statement::{SignedStatement, Verified},
};
use serde_json::json;

use super::{Context, DeviceError, Session, commands::verified_policy, parse_id};

/// `quorate retention …`
#[derive(Debug, Subcommand)]
pub enum RetentionAction {
    /// Sign the rule for the vault, or an override for one recording (admins). From then on
    /// the server shreds by it, each shredding with a receipt that `audit verify` checks.
    Set {
        /// When a recording's ciphertext and every share of its key are deleted:
        /// `uploaded+90d`, `released+90d` (after its minutes are released) or `keep`.
        #[arg(long)]
        recordings: String,
        /// When its minutes (transcripts, released copies and their index) are deleted:
        /// the same forms, with `y` for years of 365 days (`released+7y`), or `keep`.
        #[arg(long)]
        minutes: String,
        /// Set an override for this recording instead of the vault's rule.
        #[arg(long)]
        recording: Option<String>,
    },
}

/// `quorate holds …`
#[derive(Debug, Subcommand)]
pub enum HoldsAction {
    /// Propose a legal hold and cast the first vote to place it; it is placed once k
    /// members have voted for it (`quorate holds second HOLD`).
    Place {
        /// Why, as the audit log will show it (a case name and number, say).
        #[arg(long)]
        reason: String,
        /// Hold one recording instead of the whole vault.
        #[arg(long)]
        recording: Option<String>,
    },
    /// Vote for what is asked of a hold now: to place it, or, once placed, to lift it.
    Second {
        /// The hold ID.
        hold: String,
    },
    /// Propose lifting a placed hold and cast the first vote to lift it.
    Lift {
        /// The hold ID.
        hold: String,
        /// Why, as the audit log will show it.
        #[arg(long)]
        reason: String,
    },
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// A period as typed: `keep`, or `uploaded+N[d|y]` / `released+N[d|y]`.
fn parse_period(text: &str, what: &str) -> Result<Option<Period>, DeviceError> {
    let usage = || {
        DeviceError::Usage(format!(
            "--{what} {text:?}: write `keep`, or `uploaded+90d`, `released+7y` (days or years of 365 days, at least 1d)"
        ))
    };
    if text == "keep" {
        return Ok(None);
    }
    let (anchor, length) = text.split_once('+').ok_or_else(usage)?;
    let anchor = match anchor {
        "uploaded" => Anchor::Uploaded,
        "released" => Anchor::Released,
        _ => return Err(usage()),
    };
    let unit = match length.chars().last() {
        Some('d') => 86_400,
        Some('y') => 365 * 86_400,
        _ => return Err(usage()),
    };
    let count: u64 = length[..length.len() - 1].parse().map_err(|_| usage())?;
    let seconds = count.checked_mul(unit).filter(|seconds| *seconds > 0);
    Ok(Some(Period {
        anchor,
        seconds: seconds.ok_or_else(usage)?,
    }))
}

/// A period as `quorate retention` shows it.
fn describe(period: Option<Period>) -> String {
    let Some(period) = period else {
        return "kept".to_owned();
    };
    let anchor = match period.anchor {
        Anchor::Uploaded => "upload",
        Anchor::Released => "release of the minutes",
    };
    let days = period.seconds / 86_400;
    if days % 365 == 0 {
        format!("deleted {} year(s) after {anchor}", days / 365)
    } else {
        format!("deleted {days} day(s) after {anchor}")
    }
}

fn anchor_name(anchor: Anchor) -> &'static str {
    match anchor {
        Anchor::Uploaded => "uploaded",
        Anchor::Released => "released",
    }
}

fn scope_text(scope: Scope) -> String {
    match scope {
        Scope::Vault => "vault".to_owned(),
        Scope::Recording(recording) => recording.to_string(),
    }
}

pub(super) async fn retention(
    context: &mut Context,
    action: Option<RetentionAction>,
) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let rules = session.client.retention_rules(&roster).await?;
    match action {
        None => show_rules(context, &rules),
        Some(RetentionAction::Set {
            recordings,
            minutes,
            recording,
        }) => {
            set_rule(
                context,
                &session,
                &roster,
                &rules,
                (&recordings, &minutes, recording.as_deref()),
            )
            .await
        }
    }
}

/// The newest rule of each scope.
fn in_force(rules: &[Verified<RetentionRule>]) -> Vec<&RetentionRule> {
    let mut newest: Vec<&RetentionRule> = Vec::new();
    for rule in rules.iter().map(|rule| &rule.statement) {
        match newest.iter_mut().find(|kept| kept.scope == rule.scope) {
            Some(kept) if kept.sequence < rule.sequence => *kept = rule,
            Some(_) => {}
            None => newest.push(rule),
        }
    }
    newest
}

fn show_rules(context: &Context, rules: &[Verified<RetentionRule>]) -> Result<(), DeviceError> {
    let newest = in_force(rules);
    if newest.is_empty() {
        context.print(
            "No retention rule: everything is kept until an admin deletes it. An admin sets one with `quorate retention set --recordings released+90d --minutes released+7y`.",
            &json!({ "rules": [] }),
        );
        return Ok(());
    }
    let lines: Vec<String> = newest
        .iter()
        .map(|rule| {
            format!(
                "{} (rule {}): recordings {}; minutes {}",
                scope_text(rule.scope),
                rule.sequence,
                describe(rule.recordings),
                describe(rule.minutes)
            )
        })
        .collect();
    let values: Vec<_> = newest
        .iter()
        .map(|rule| {
            json!({
                "scope": scope_text(rule.scope),
                "sequence": rule.sequence,
                "recordings_seconds": rule.recordings.map(|period| period.seconds),
                "recordings_after": rule.recordings.map(|period| anchor_name(period.anchor)),
                "minutes_seconds": rule.minutes.map(|period| period.seconds),
                "minutes_after": rule.minutes.map(|period| anchor_name(period.anchor)),
            })
        })
        .collect();
    context.print(
        &format!(
            "Retention rules in force (signed by admins, verified):\n{}",
            lines.join("\n")
        ),
        &json!({ "rules": values }),
    );
    Ok(())
}

/// The periods of a rule, as typed, checked; and that this device's identity is an admin's.
fn rule_terms(
    session: &Session,
    roster: &Roster,
    recordings: &str,
    minutes: &str,
) -> Result<(Option<Period>, Option<Period>), DeviceError> {
    if roster
        .admin_by_key(&session.identity.public().verifying_key)
        .is_none()
    {
        return Err(DeviceError::Usage(
            "only an admin of this vault sets retention rules".into(),
        ));
    }
    Ok((
        parse_period(recordings, "recordings")?,
        parse_period(minutes, "minutes")?,
    ))
}

/// Signs and stores the next rule of `scope` with `periods`; returns it.
async fn sign_rule(
    session: &Session,
    rules: &[Verified<RetentionRule>],
    scope: Scope,
    (recordings, minutes): (Option<Period>, Option<Period>),
) -> Result<RetentionRule, DeviceError> {
    let sequence = rules
        .iter()
        .filter(|rule| rule.statement.scope == scope)
        .map(|rule| rule.statement.sequence + 1)
        .max()
        .unwrap_or(0);
    let rule = RetentionRule {
        vault_id: session.vault,
        scope,
        sequence,
        recordings,
        minutes,
        issued_at: now(),
    };
    rule.check()
        .map_err(|error| DeviceError::Usage(format!("{error}: use at least 1d")))?;
    session
        .client
        .set_retention_rule(
            session.vault,
            &SignedStatement::sign(&rule, &session.identity),
        )
        .await?;
    Ok(rule)
}

/// For `quorate upload --keep-recording … --keep-minutes …`: the periods, checked before
/// anything is uploaded.
pub(super) async fn own_rule_terms(
    context: &mut Context,
    recordings: &str,
    minutes: &str,
) -> Result<(Option<Period>, Option<Period>), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    rule_terms(&session, &roster, recordings, minutes)
}

/// Signs `recording`'s own rule once it is uploaded, unless its newest already says the
/// same (an upload resumed after the rule was set); returns a line for the upload's report.
pub(super) async fn set_own_rule(
    context: &mut Context,
    recording: RecordingId,
    periods: (Option<Period>, Option<Period>),
) -> Result<String, DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let rules = session.client.retention_rules(&roster).await?;
    let scope = Scope::Recording(recording);
    let newest = in_force(&rules)
        .into_iter()
        .find(|rule| rule.scope == scope)
        .map(|rule| (rule.recordings, rule.minutes));
    if newest != Some(periods) {
        sign_rule(&session, &rules, scope, periods).await?;
    }
    Ok(format!(
        "\nIts own retention rule: recording {}; minutes {}.",
        describe(periods.0),
        describe(periods.1)
    ))
}

async fn set_rule(
    context: &mut Context,
    session: &Session,
    roster: &Roster,
    rules: &[Verified<RetentionRule>],
    (recordings, minutes, recording): (&str, &str, Option<&str>),
) -> Result<(), DeviceError> {
    let periods = rule_terms(session, roster, recordings, minutes)?;
    let scope = match recording {
        Some(text) => Scope::Recording(parse_id(text, "recording", "quorate recordings")?),
        None => Scope::Vault,
    };
    let rule = sign_rule(session, rules, scope, periods).await?;
    let sequence = rule.sequence;
    context.print(
        &format!(
            "Rule {sequence} for {} signed: recordings {}; minutes {}. Each deletion by it is written to the audit log with this rule; `quorate audit verify` checks them.",
            scope_text(scope),
            describe(rule.recordings),
            describe(rule.minutes)
        ),
        &json!({ "scope": scope_text(scope), "sequence": sequence }),
    );
    Ok(())
}

/// One hold as the votes say it stands.
struct HoldState {
    hold_id: HoldId,
    /// The first vote to place it: its scope and reason.
    proposed: LegalHold,
    placed: bool,
    lifted: bool,
    /// The pending question (place, or lift once placed) and its first vote, if any.
    pending: Option<LegalHold>,
    /// Distinct current members who voted on the pending question.
    pending_votes: usize,
}

/// Every hold's state from the verified votes: a question is decided once k current members
/// voted for it ([`tally`]).
fn hold_states(votes: &[Verified<LegalHold>], roster: &Roster, k: u8) -> Vec<HoldState> {
    let mut ids: Vec<HoldId> = Vec::new();
    for vote in votes {
        if !ids.contains(&vote.statement.hold_id) {
            ids.push(vote.statement.hold_id);
        }
    }
    let on = |hold_id: HoldId, action: HoldAction| -> Vec<Verified<LegalHold>> {
        votes
            .iter()
            .filter(|vote| {
                vote.statement.hold_id == hold_id
                    && vote.statement.action == action
                    && roster.member_by_key(&vote.signer).is_some()
            })
            .cloned()
            .collect()
    };
    ids.into_iter()
        .filter_map(|hold_id| {
            let places = on(hold_id, HoldAction::Place);
            let lifts = on(hold_id, HoldAction::Lift);
            let proposed = places.first()?.statement.clone();
            let placed = tally(&places, roster, k).is_ok();
            let lifted = placed && tally(&lifts, roster, k).is_ok();
            let pending_on = if placed { &lifts } else { &places };
            let pending = (!lifted)
                .then(|| pending_on.first().map(|vote| vote.statement.clone()))
                .flatten();
            let mut voters: Vec<_> = pending_on.iter().map(|vote| vote.signer).collect();
            voters.sort_by_key(|key| key.to_bytes());
            voters.dedup();
            Some(HoldState {
                hold_id,
                proposed,
                placed,
                lifted,
                pending,
                pending_votes: voters.len(),
            })
        })
        .collect()
}

pub(super) async fn holds(
    context: &mut Context,
    action: Option<HoldsAction>,
) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let k = verified_policy(context, &session, &roster)
        .await?
        .ok_or_else(|| {
            DeviceError::Refused(
                "this vault has no policy yet: an admin sets the threshold, which is also a hold's quorum".into(),
            )
        })?
        .min_threshold;
    let votes = session.client.hold_votes(session.vault).await?;
    let states = hold_states(&votes, &roster, k);
    let vote = match action {
        None => return show_holds(context, &states, k),
        Some(HoldsAction::Place { reason, recording }) => {
            let scope = match recording {
                Some(text) => Scope::Recording(parse_id::<RecordingId>(
                    &text,
                    "recording",
                    "quorate recordings",
                )?),
                None => Scope::Vault,
            };
            question(
                &session,
                &roster,
                HoldId::random(),
                HoldAction::Place,
                scope,
                reason,
            )
        }
        Some(HoldsAction::Second { hold }) => {
            let state = find(&states, &hold)?;
            let pending = state.pending.as_ref().ok_or_else(|| {
                DeviceError::Usage(format!(
                    "nothing is asked of hold {hold}: {}",
                    if state.lifted {
                        "it was lifted"
                    } else {
                        "propose lifting it with `quorate holds lift`"
                    }
                ))
            })?;
            question(
                &session,
                &roster,
                state.hold_id,
                pending.action,
                pending.scope,
                pending.reason.clone(),
            )
        }
        Some(HoldsAction::Lift { hold, reason }) => {
            let state = find(&states, &hold)?;
            if !state.placed || state.lifted {
                return Err(DeviceError::Usage(format!(
                    "hold {hold} is not in force: only a placed hold is lifted"
                )));
            }
            if let Some(pending) = &state.pending {
                return Err(DeviceError::Usage(format!(
                    "lifting hold {hold} is already proposed ({:?}): vote for it with `quorate holds second {hold}`",
                    pending.reason
                )));
            }
            question(
                &session,
                &roster,
                state.hold_id,
                HoldAction::Lift,
                state.proposed.scope,
                reason,
            )
        }
    }?;
    let signed = SignedStatement::sign(&vote, &session.identity);
    let decided = session.client.vote_hold(session.vault, &signed).await?;
    let (verb, done) = match vote.action {
        HoldAction::Place => (
            "place",
            "placed: nothing it covers is deleted until a quorum lifts it",
        ),
        HoldAction::Lift => ("lift", "lifted: deletions go on by rule"),
    };
    // What this member signed, in full: the scope and reason came from the first vote.
    let signed_for = format!(
        "You signed: {verb} hold {} on {} ({}).",
        vote.hold_id,
        scope_text(vote.scope),
        quorate_client::checks::printable(&vote.reason)
    );
    let text = if decided {
        format!("{signed_for}\nHold {} is {done}.", vote.hold_id)
    } else {
        format!(
            "{signed_for}\nYour vote is counted; {k} votes in all decide it: ask the other members to run `quorate holds second {}`.",
            vote.hold_id
        )
    };
    context.print(
        &text,
        &json!({ "hold_id": vote.hold_id.to_string(), "action": verb, "decided": decided }),
    );
    Ok(())
}

fn find<'a>(states: &'a [HoldState], hold: &str) -> Result<&'a HoldState, DeviceError> {
    let id: HoldId = parse_id(hold, "hold", "quorate holds")?;
    states
        .iter()
        .find(|state| state.hold_id == id)
        .ok_or_else(|| {
            DeviceError::Usage(format!("no hold {hold} was proposed: see `quorate holds`"))
        })
}

/// This member's vote on a hold question, made on the roster they verified.
fn question(
    session: &Session,
    roster: &Roster,
    hold_id: HoldId,
    action: HoldAction,
    scope: Scope,
    reason: String,
) -> Result<LegalHold, DeviceError> {
    let vote = LegalHold {
        vault_id: session.vault,
        hold_id,
        action,
        scope,
        reason,
        roster_head: roster.head(),
        issued_at: now(),
    };
    vote.check()
        .map_err(|error| DeviceError::Usage(format!("{error}: give --reason")))?;
    Ok(vote)
}

fn show_holds(context: &Context, states: &[HoldState], k: u8) -> Result<(), DeviceError> {
    if states.is_empty() {
        context.print(
            "No legal hold was proposed. Any member proposes one with `quorate holds place --reason …`.",
            &json!({ "holds": [] }),
        );
        return Ok(());
    }
    let state_name = |state: &HoldState| match (state.placed, state.lifted) {
        (_, true) => "lifted",
        (true, false) => "in force",
        (false, false) => "proposed",
    };
    let lines: Vec<String> = states
        .iter()
        .map(|state| {
            let pending = state.pending.as_ref().map_or_else(String::new, |pending| {
                format!(
                    "; {} of {k} vote(s) to {}",
                    state.pending_votes,
                    if pending.action == HoldAction::Place {
                        "place"
                    } else {
                        "lift"
                    }
                )
            });
            format!(
                "{} on {}: {}{pending} ({})",
                state.hold_id,
                scope_text(state.proposed.scope),
                state_name(state),
                quorate_client::checks::printable(&state.proposed.reason)
            )
        })
        .collect();
    let values: Vec<_> = states
        .iter()
        .map(|state| {
            json!({
                "hold_id": state.hold_id.to_string(),
                "scope": scope_text(state.proposed.scope),
                "state": state_name(state),
                "reason": state.proposed.reason,
                "pending_votes": state.pending_votes,
            })
        })
        .collect();
    context.print(
        &format!(
            "Legal holds (votes verified against the roster; {k} place or lift one):\n{}",
            lines.join("\n")
        ),
        &json!({ "holds": values }),
    );
    Ok(())
}
