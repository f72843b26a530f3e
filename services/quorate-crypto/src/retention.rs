//! Records management (issue 18, item 4): how long recordings and minutes are kept, and the
//! legal holds that stop every deletion.
//!
//! - [`RetentionRule`]: an admin's signed rule for the vault, or an override for one
//!   recording. It says when a recording (its ciphertext and every sealed share) and its
//!   minutes (transcripts, released copies and their postings) are deleted, counted from the
//!   upload or from the release of the minutes.
//! - [`LegalHold`]: one member's signed vote to place or lift a hold. A hold is placed, or
//!   lifted, only by the votes of k distinct current members (k the vault policy's), all for
//!   the same hold, scope and reason ([`tally`]).
//!
//! These are the statements and the rules devices apply to them; the server's shredding and
//! its receipts are `quorate-server`'s `ops::retention`, checked on devices by
//! `quorate_client::checks::audit_records`.

use crate::{
    Error, HoldId, RecordingId, VaultId,
    roster::Roster,
    statement::{StatementBody, StatementKind, Verified, decode_checked},
    wire::{Reader, Writer},
};

const RULE_DOMAIN: &str = "quorate/retention-rule/v1";
const HOLD_DOMAIN: &str = "quorate/legal-hold/v1";

/// What a rule or a hold applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every recording of the vault (for a rule: those without an override of their own).
    Vault,
    /// One recording.
    Recording(RecordingId),
}

impl Scope {
    /// Whether this scope takes in `recording`.
    pub fn covers(&self, recording: RecordingId) -> bool {
        match self {
            Self::Vault => true,
            Self::Recording(id) => *id == recording,
        }
    }

    fn encode(&self, writer: &mut Writer) {
        match self {
            Self::Vault => writer.u8(1),
            Self::Recording(id) => writer.u8(2).fixed(id.as_bytes()),
        };
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        match reader.u8()? {
            1 => Ok(Self::Vault),
            2 => Ok(Self::Recording(RecordingId::from_bytes(reader.array()?))),
            _ => Err(reader.malformed()),
        }
    }
}

/// The moment a retention period is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// When the recording's signed manifest says it was made.
    Uploaded,
    /// When a quorum released its minutes; a recording never released is kept.
    Released,
}

/// How long something is kept: `seconds` after `anchor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    /// What it is counted from.
    pub anchor: Anchor,
    /// How long, at least one day.
    pub seconds: u64,
}

/// Shortest period a rule may set: a rule that deletes within the hour would leave no
/// time to place a hold.
pub const MIN_PERIOD_SECONDS: u64 = 86_400;

impl Period {
    /// When what it applies to is due for deletion, or `None` while its anchor has not
    /// happened (never released).
    pub fn due_at(&self, uploaded_at: i64, released_at: Option<i64>) -> Option<i64> {
        let start = match self.anchor {
            Anchor::Uploaded => uploaded_at,
            Anchor::Released => released_at?,
        };
        Some(start.saturating_add(i64::try_from(self.seconds).unwrap_or(i64::MAX)))
    }

    fn encode(period: Option<&Self>, writer: &mut Writer) {
        match period {
            None => writer.u8(0),
            Some(Self { anchor, seconds }) => writer
                .u8(match anchor {
                    Anchor::Uploaded => 1,
                    Anchor::Released => 2,
                })
                .u64(*seconds),
        };
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Option<Self>, Error> {
        let anchor = match reader.u8()? {
            0 => return Ok(None),
            1 => Anchor::Uploaded,
            2 => Anchor::Released,
            _ => return Err(reader.malformed()),
        };
        Ok(Some(Self {
            anchor,
            seconds: reader.u64()?,
        }))
    }
}

/// An admin's signed retention rule: for the vault, or an override for one recording.
/// Each scope has its own history: the rule with the highest `sequence` is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRule {
    /// The vault.
    pub vault_id: VaultId,
    /// The vault, or one recording (an override, set at upload or later by an admin).
    pub scope: Scope,
    /// Position in this scope's history of rules, from 0.
    pub sequence: u64,
    /// When a recording's ciphertext and every sealed share of its key are deleted; `None`:
    /// kept until an admin deletes it.
    pub recordings: Option<Period>,
    /// When its minutes are deleted (transcripts, their shares, released copies, postings).
    pub minutes: Option<Period>,
    /// When signed, Unix seconds.
    pub issued_at: i64,
}

impl StatementBody for RetentionRule {
    const KIND: StatementKind = StatementKind::RetentionRule;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new(RULE_DOMAIN);
        writer.fixed(self.vault_id.as_bytes());
        self.scope.encode(&mut writer);
        writer.u64(self.sequence);
        Period::encode(self.recordings.as_ref(), &mut writer);
        Period::encode(self.minutes.as_ref(), &mut writer);
        writer.i64(self.issued_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            RULE_DOMAIN,
            "retention rule",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    scope: Scope::decode(reader)?,
                    sequence: reader.u64()?,
                    recordings: Period::decode(reader)?,
                    minutes: Period::decode(reader)?,
                    issued_at: reader.i64()?,
                })
            },
            Self::check,
        )
    }
}

impl RetentionRule {
    /// Field rules that hold for every rule.
    pub fn check(&self) -> Result<(), Error> {
        let too_short = [self.recordings, self.minutes]
            .iter()
            .flatten()
            .any(|period| period.seconds < MIN_PERIOD_SECONDS);
        if too_short {
            return Err(Error::InvalidField {
                field: "retention period",
                reason: "must be at least one day, so that a hold can be placed in time",
            });
        }
        Ok(())
    }
}

/// The rule in force for `recording`: the newest override for it if there is one, else
/// the vault's newest rule. `rules` must be verified as signed by admins of the roster.
pub fn rule_for(
    rules: &[Verified<RetentionRule>],
    recording: RecordingId,
) -> Option<&Verified<RetentionRule>> {
    let newest = |scope: Scope| {
        rules
            .iter()
            .filter(|rule| rule.statement.scope == scope)
            .max_by_key(|rule| rule.statement.sequence)
    };
    newest(Scope::Recording(recording)).or_else(|| newest(Scope::Vault))
}

/// Whether a hold vote places or lifts the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldAction {
    /// Stop every deletion of what the scope covers.
    Place,
    /// Let deletions go on.
    Lift,
}

/// One member's signed vote on a legal hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    /// The vault.
    pub vault_id: VaultId,
    /// The hold, chosen by whoever proposes it; every vote on it names it.
    pub hold_id: HoldId,
    /// Place or lift.
    pub action: HoldAction,
    /// What it covers.
    pub scope: Scope,
    /// Why, in words the audit log shows (a case name and number, say).
    pub reason: String,
    /// The roster head the voter's device verified: a vote made on a forked roster is
    /// refused by devices on the real one.
    pub roster_head: [u8; 32],
    /// When signed, Unix seconds.
    pub issued_at: i64,
}

impl StatementBody for LegalHold {
    const KIND: StatementKind = StatementKind::LegalHold;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new(HOLD_DOMAIN);
        writer
            .fixed(self.vault_id.as_bytes())
            .fixed(self.hold_id.as_bytes());
        writer.u8(match self.action {
            HoldAction::Place => 1,
            HoldAction::Lift => 2,
        });
        self.scope.encode(&mut writer);
        writer
            .str(&self.reason)
            .fixed(&self.roster_head)
            .i64(self.issued_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            HOLD_DOMAIN,
            "legal hold",
            |reader| {
                let vault_id = VaultId::from_bytes(reader.array()?);
                let hold_id = HoldId::from_bytes(reader.array()?);
                let action = match reader.u8()? {
                    1 => HoldAction::Place,
                    2 => HoldAction::Lift,
                    _ => return Err(reader.malformed()),
                };
                Ok(Self {
                    vault_id,
                    hold_id,
                    action,
                    scope: Scope::decode(reader)?,
                    reason: reader.str()?.to_owned(),
                    roster_head: reader.array()?,
                    issued_at: reader.i64()?,
                })
            },
            Self::check,
        )
    }
}

impl LegalHold {
    /// Field rules that hold for every vote.
    pub fn check(&self) -> Result<(), Error> {
        // A hold says why it is placed or lifted, in printable text the audit log shows.
        crate::statement::text_field("reason", &self.reason, false)
    }

    /// What the vote is on: all fields but the voter's own time and roster head. Votes
    /// count together only when these are equal.
    fn question(&self) -> (VaultId, HoldId, HoldAction, Scope, &str) {
        let Self {
            vault_id,
            hold_id,
            action,
            scope,
            reason,
            ..
        } = self;
        (*vault_id, *hold_id, *action, *scope, reason)
    }
}

/// Counts the votes on one question (one hold, placed or lifted) and returns it once `k`
/// distinct current members of `roster` voted for it. Refuses votes by anyone else (an
/// admin's word alone places nothing), votes on another question, and votes made on a
/// roster head that is not in this chain.
pub fn tally<'a>(
    votes: &'a [Verified<LegalHold>],
    roster: &Roster,
    k: u8,
) -> Result<&'a LegalHold, Error> {
    let first = &votes
        .first()
        .ok_or(Error::InvalidField {
            field: "hold votes",
            reason: "there are none",
        })?
        .statement;
    let mut voters = Vec::new();
    for vote in votes {
        if vote.statement.question() != first.question() {
            return Err(Error::BindingMismatch {
                field: "hold (the votes are not all on the same hold, action, scope and reason)",
            });
        }
        if !roster.has_entry(&vote.statement.roster_head) {
            return Err(Error::BindingMismatch {
                field: "roster head (a hold vote was made on a roster outside this chain)",
            });
        }
        let voter = roster
            .member_by_key(&vote.signer)
            .filter(|member| member.role.holds_shares())
            .ok_or_else(|| Error::NotAuthorised {
                kind: StatementKind::LegalHold,
                signer: hex::encode(&vote.signer.as_bytes()[..8]),
            })?;
        if !voters.contains(&voter.fingerprint) {
            voters.push(voter.fingerprint);
        }
    }
    if voters.len() < usize::from(k) {
        return Err(Error::InvalidField {
            field: "hold votes",
            reason: "fewer distinct members voted than the vault's threshold",
        });
    }
    Ok(first)
}

/// Whether `recording` is under a hold: of `decided` (each the result of [`tally`]), a
/// place whose hold no lift in `decided` ended.
pub fn held(decided: &[&LegalHold], recording: RecordingId) -> Option<HoldId> {
    decided
        .iter()
        .filter(|hold| hold.action == HoldAction::Place && hold.scope.covers(recording))
        .map(|hold| hold.hold_id)
        .find(|id| {
            !decided
                .iter()
                .any(|other| other.action == HoldAction::Lift && other.hold_id == *id)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, statement::Role, statement::SignedStatement};

    struct Board {
        vault: VaultId,
        roster: Roster,
        people: Vec<Identity>,
    }

    /// An admin and three members.
    fn board() -> Board {
        let vault = VaultId::random();
        let people: Vec<Identity> = (0..4).map(|_| Identity::generate()).collect();
        let mut roster = Roster::empty(vault);
        let genesis = Roster::genesis_entry(vault, &people[0], "Ada", 1).unwrap();
        roster.apply(&genesis).unwrap();
        for (person, name) in people[1..].iter().zip(["Bo", "Cy", "Dee"]) {
            let entry = roster
                .sign_change(
                    &people[0],
                    crate::statement::RosterChange::Add,
                    person.public(),
                    name,
                    Role::Member,
                    2,
                )
                .unwrap();
            roster.apply(&entry).unwrap();
        }
        Board {
            vault,
            roster,
            people,
        }
    }

    fn vote(board: &Board, who: usize, hold: HoldId, action: HoldAction) -> Verified<LegalHold> {
        let body = LegalHold {
            vault_id: board.vault,
            hold_id: hold,
            action,
            scope: Scope::Vault,
            reason: "Smith v. Council".into(),
            roster_head: board.roster.head(),
            issued_at: 100 + who as i64,
        };
        SignedStatement::sign(&body, &board.people[who])
            .verify::<LegalHold>()
            .unwrap()
    }

    #[test]
    fn a_rule_and_a_hold_round_trip_and_verify() {
        let board = board();
        let rule = RetentionRule {
            vault_id: board.vault,
            scope: Scope::Recording(RecordingId::random()),
            sequence: 3,
            recordings: Some(Period {
                anchor: Anchor::Released,
                seconds: 90 * 86_400,
            }),
            minutes: None,
            issued_at: 7,
        };
        let signed = SignedStatement::sign(&rule, &board.people[0]);
        let bytes = signed.to_bytes();
        assert_eq!(
            crate::verify_any(&bytes).unwrap(),
            StatementKind::RetentionRule
        );
        let again = SignedStatement::from_bytes(&bytes).unwrap();
        assert_eq!(again.verify::<RetentionRule>().unwrap().statement, rule);
        let hold = vote(&board, 1, HoldId::random(), HoldAction::Place);
        assert_eq!(
            RetentionRule::decode(&rule.encode()).unwrap().encode(),
            rule.encode()
        );
        assert_eq!(
            LegalHold::decode(&hold.statement.encode()).unwrap(),
            hold.statement
        );
    }

    #[test]
    fn a_rule_shorter_than_a_day_or_a_hold_without_reason_is_refused() {
        let rule = RetentionRule {
            vault_id: VaultId::random(),
            scope: Scope::Vault,
            sequence: 0,
            recordings: None,
            minutes: Some(Period {
                anchor: Anchor::Uploaded,
                seconds: 3600,
            }),
            issued_at: 0,
        };
        assert!(RetentionRule::decode(&rule.encode()).is_err());
        let board = board();
        let mut hold = vote(&board, 1, HoldId::random(), HoldAction::Place).statement;
        hold.reason = " ".into();
        assert!(LegalHold::decode(&hold.encode()).is_err());
    }

    #[test]
    fn periods_count_from_their_anchor_and_a_recording_never_released_is_kept() {
        let days = |n: u64| n * 86_400;
        let after_release = Period {
            anchor: Anchor::Released,
            seconds: days(90),
        };
        assert_eq!(after_release.due_at(1_000, None), None);
        assert_eq!(
            after_release.due_at(1_000, Some(5_000)),
            Some(5_000 + days(90) as i64)
        );
        let after_upload = Period {
            anchor: Anchor::Uploaded,
            seconds: days(7 * 365),
        };
        assert_eq!(
            after_upload.due_at(1_000, None),
            Some(1_000 + days(7 * 365) as i64)
        );
        assert_eq!(
            Period {
                anchor: Anchor::Uploaded,
                seconds: u64::MAX
            }
            .due_at(1, None),
            Some(i64::MAX)
        );
    }

    #[test]
    fn an_override_beats_the_vault_rule_and_the_newest_of_each_wins() {
        let board = board();
        let recording = RecordingId::random();
        let rule = |scope, sequence, days: u64| {
            let body = RetentionRule {
                vault_id: board.vault,
                scope,
                sequence,
                recordings: Some(Period {
                    anchor: Anchor::Uploaded,
                    seconds: days * 86_400,
                }),
                minutes: None,
                issued_at: 0,
            };
            SignedStatement::sign(&body, &board.people[0])
                .verify::<RetentionRule>()
                .unwrap()
        };
        let vault_rules = vec![rule(Scope::Vault, 1, 30), rule(Scope::Vault, 0, 10)];
        let days_of =
            |rule: &Verified<RetentionRule>| rule.statement.recordings.unwrap().seconds / 86_400;
        assert_eq!(days_of(rule_for(&vault_rules, recording).unwrap()), 30);
        let mut all = vault_rules.clone();
        all.push(rule(Scope::Recording(recording), 0, 400));
        all.push(rule(Scope::Recording(RecordingId::random()), 5, 1));
        assert_eq!(days_of(rule_for(&all, recording).unwrap()), 400);
        assert!(rule_for(&[], recording).is_none());
    }

    #[test]
    fn a_hold_takes_k_distinct_members_and_lifting_takes_k_again() {
        let board = board();
        let hold = HoldId::random();
        let two = [
            vote(&board, 1, hold, HoldAction::Place),
            vote(&board, 2, hold, HoldAction::Place),
        ];
        let placed = tally(&two, &board.roster, 2).unwrap();
        let recording = RecordingId::random();
        assert_eq!(held(&[placed], recording), Some(hold));
        // One member voting twice is one vote.
        let twice = [
            vote(&board, 1, hold, HoldAction::Place),
            vote(&board, 1, hold, HoldAction::Place),
        ];
        assert!(tally(&twice, &board.roster, 2).is_err());
        // A lift with fewer than k votes lifts nothing; with k it does.
        let one_lift = [vote(&board, 3, hold, HoldAction::Lift)];
        assert!(tally(&one_lift, &board.roster, 2).is_err());
        let lifts = [
            vote(&board, 3, hold, HoldAction::Lift),
            vote(&board, 0, hold, HoldAction::Lift),
        ];
        let lifted = tally(&lifts, &board.roster, 2).unwrap();
        assert_eq!(held(&[placed, lifted], recording), None);
    }

    #[test]
    fn votes_on_another_question_a_forked_roster_or_by_strangers_are_refused() {
        let board = board();
        let hold = HoldId::random();
        let place = vote(&board, 1, hold, HoldAction::Place);
        // A server that mixes in a vote for another reason (or another hold) places nothing.
        let mut changed = vote(&board, 2, hold, HoldAction::Place).statement;
        changed.reason = "something else".into();
        let changed = SignedStatement::sign(&changed, &board.people[2])
            .verify::<LegalHold>()
            .unwrap();
        assert!(tally(&[place.clone(), changed], &board.roster, 2).is_err());
        let lift = vote(&board, 2, hold, HoldAction::Lift);
        assert!(tally(&[place.clone(), lift], &board.roster, 2).is_err());
        // A vote made on a head outside the chain.
        let mut forked = vote(&board, 2, hold, HoldAction::Place).statement;
        forked.roster_head = [7; 32];
        let forked = SignedStatement::sign(&forked, &board.people[2])
            .verify::<LegalHold>()
            .unwrap();
        assert!(tally(&[place.clone(), forked], &board.roster, 2).is_err());
        // Someone not on the roster.
        let stranger = Identity::generate();
        let body = vote(&board, 2, hold, HoldAction::Place).statement;
        let by_stranger = SignedStatement::sign(&body, &stranger)
            .verify::<LegalHold>()
            .unwrap();
        assert!(matches!(
            tally(&[place, by_stranger], &board.roster, 2),
            Err(Error::NotAuthorised { .. })
        ));
    }

    #[test]
    fn a_hold_on_one_recording_leaves_the_others() {
        let board = board();
        let recording = RecordingId::random();
        let hold = HoldId::random();
        let mut body = vote(&board, 1, hold, HoldAction::Place).statement;
        body.scope = Scope::Recording(recording);
        let votes: Vec<_> = [1, 2]
            .iter()
            .map(|who| {
                SignedStatement::sign(&body, &board.people[*who])
                    .verify::<LegalHold>()
                    .unwrap()
            })
            .collect();
        let placed = tally(&votes, &board.roster, 2).unwrap();
        assert_eq!(held(&[placed], recording), Some(hold));
        assert_eq!(held(&[placed], RecordingId::random()), None);
    }
}
