//! Checks every device makes the same way, whatever it is (the CLI, the node): one function
//! per statement that a lying server could forge, so that no device forgets a condition.
//! The browser mirrors these in `web-admin/src/device.ts`.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use quorate_crypto::{
    Fingerprint, NodeId, RecordingId,
    audit::AuditEntry,
    release::{ReleaseManifest, SearchKeyCommitment, SearchKeyRotation},
    retention::{LegalHold, RetentionRule, held, rule_for},
    roster::{Roster, RosterMember},
    statement::{
        NodeApproval, RecordingManifest, Role, RosterEntry, SignedStatement, StatementBody,
        StatementKind, TranscriptManifest, UnlockRequest, VaultPolicy, Verified, Vote,
    },
};

/// Why a statement the server sent is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckError {
    /// The signature, encoding or vault of the statement is wrong.
    #[error("the {what}: {reason}")]
    Invalid {
        /// What was checked.
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The statement is signed, but by a key that has no right to sign it.
    #[error("the {what} is not signed by {expected}")]
    WrongSigner {
        /// What was checked.
        what: &'static str,
        /// Who should have signed it.
        expected: &'static str,
    },
    /// The statement is about something other than what was asked for.
    #[error("the server sent the {what} of another {subject}")]
    OtherSubject {
        /// What was checked.
        what: &'static str,
        /// What it should have been about.
        subject: &'static str,
    },
}

/// A recording manifest, verified: a valid signature for this vault, made by the uploader
/// the manifest names, who is or was a member or recorder on the verified `roster` (an
/// uploader may have left since). With `recording`, the manifest must be that recording's.
///
/// Without the signer check a server could re-sign a real split with sealed metadata of its
/// own: voters would approve while reading a title the server chose.
pub fn recording_manifest(
    roster: &Roster,
    recording: Option<RecordingId>,
    signed: &SignedStatement,
) -> Result<RecordingManifest, CheckError> {
    const WHAT: &str = "recording manifest";
    let verified = signed
        .verify::<RecordingManifest>()
        .map_err(|error| CheckError::Invalid {
            what: WHAT,
            reason: error.to_string(),
        })?;
    let manifest = verified.statement;
    if manifest.vault_id != roster.vault_id()
        || recording.is_some_and(|recording| recording != manifest.recording_id)
    {
        return Err(CheckError::OtherSubject {
            what: WHAT,
            subject: "recording",
        });
    }
    let signed_by_uploader = roster
        .members()
        .iter()
        .chain(roster.recorders())
        .chain(roster.removed())
        .any(|member| {
            member.fingerprint == manifest.uploader
                && member.public.verifying_key == verified.signer
        });
    if !signed_by_uploader {
        return Err(CheckError::WrongSigner {
            what: WHAT,
            expected: "its uploader, a member or recorder of the roster",
        });
    }
    if !roster.has_entry(&manifest.roster_head) {
        return Err(CheckError::Invalid {
            what: WHAT,
            reason: "its key was split for a roster that is not this vault's chain: the server showed the uploader a forked roster".into(),
        });
    }
    Ok(manifest)
}

/// Whether an admin-signed node approval vouches for a statement its node signed at
/// `made_at`. A revocation vouches for nothing, whenever the statement claims to have been
/// made: the time is the node's own word, and a revoked key may be in a thief's hands, who
/// would simply backdate. An approval vouches for what was made before it lapsed (a renewal
/// replaces it with a later window, so the start of the window is not checked).
pub fn approval_vouches_for(approval: &NodeApproval, made_at: i64) -> Result<(), CheckError> {
    const WHAT: &str = "node approval";
    if approval.revoked {
        return Err(CheckError::Invalid {
            what: WHAT,
            reason: format!(
                "node {} was revoked, so nothing it signed is trusted: have another node make it again",
                approval.node_id
            ),
        });
    }
    if made_at > approval.expires_at {
        return Err(CheckError::Invalid {
            what: WHAT,
            reason: format!(
                "node {} made it at {made_at}, after its approval lapsed at {}",
                approval.node_id, approval.expires_at
            ),
        });
    }
    Ok(())
}

/// Whether a pinned roster head is damaged (the device's own file) or no longer held by
/// `roster` (what the server sent).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinError {
    /// The pin itself is not 64 hex digits: the device's file is damaged.
    #[error("the pinned roster head is damaged")]
    Damaged,
    /// The roster does not hold the pinned head.
    #[error(
        "the server's roster ({have} entries) does not contain the roster this device verified before ({pinned} entries): a rollback or a forked chain"
    )]
    RolledBack {
        /// Entries in the roster the server sent.
        have: u64,
        /// Entries in the roster the device pinned.
        pinned: u64,
    },
}

/// Refuses a roster that does not hold the head a device verified before (`pinned_len`
/// entries, head `pinned_head` in hex; nothing is pinned while `pinned_len` is 0): a server
/// that served an older prefix would count a removed admin's signatures again and have a
/// removed member sealed keys.
pub fn holds_pinned_head(
    roster: &Roster,
    pinned_len: u64,
    pinned_head: &str,
) -> Result<(), PinError> {
    let Some(last) = pinned_len.checked_sub(1) else {
        return Ok(());
    };
    let mut head = [0u8; 32];
    hex::decode_to_slice(pinned_head, &mut head).map_err(|_| PinError::Damaged)?;
    if roster.contains(last, &head) {
        Ok(())
    } else {
        Err(PinError::RolledBack {
            have: roster.len(),
            pinned: pinned_len,
        })
    }
}

/// The newest node approval (or revocation) a device has verified, per node ID: its
/// `issued_at`. Shared by a client and whoever keeps it between runs.
pub type ApprovalsSeen = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, i64>>>;

/// Refuses an approval older than the newest this device has verified for that node, and
/// remembers it otherwise. A server cannot forge a revocation away, but it can show the
/// approval from before it; a device that once saw the revocation is not fooled twice.
pub fn not_older_than_seen(
    seen: &ApprovalsSeen,
    approval: &NodeApproval,
) -> Result<(), CheckError> {
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let node = approval.node_id.to_string();
    match seen.get(&node) {
        Some(newest) if *newest > approval.issued_at => Err(CheckError::Invalid {
            what: "node approval",
            reason: format!(
                "the server shows an approval of node {node} older than one this device verified before: it is hiding a newer approval or a revocation"
            ),
        }),
        _ => {
            seen.insert(node, approval.issued_at);
            Ok(())
        }
    }
}

/// Checks who signed each statement the audit log carries, in log order: manifests by the
/// member or recorder they name, requests and votes by the member they name (never a
/// recorder), each on the verified `roster` now or before; roster
/// entries, node approvals, policies and search-key commitments by an admin of it; transcript and
/// release manifests by a node whose key an admin's approval earlier in the log names. The
/// hash chain alone only shows that the server kept its own log consistently: without this
/// a database writer could insert statements signed by keys of its own.
pub fn audit_signers(roster: &Roster, entries: &[AuditEntry]) -> Result<(), CheckError> {
    let ever: Vec<&RosterMember> = roster
        .members()
        .iter()
        .chain(roster.recorders())
        .chain(roster.removed())
        .collect();
    let on_roster = |key: &VerifyingKey, admin: bool| {
        ever.iter().any(|member| {
            member.public.verifying_key == *key && (!admin || member.role == Role::Admin)
        })
    };
    // A member's statement must be signed by the very member it names; only a manifest may
    // be a recorder's.
    let named = |fingerprint: &Fingerprint, key: &VerifyingKey, recorder_may: bool| {
        ever.iter().any(|member| {
            member.fingerprint == *fingerprint
                && member.public.verifying_key == *key
                && (recorder_may || member.role.holds_shares())
        })
    };
    let mut nodes: HashMap<NodeId, VerifyingKey> = HashMap::new();
    for entry in entries {
        let Some(bytes) = &entry.statement else {
            continue;
        };
        let refuse = |reason: String| CheckError::Invalid {
            what: "audit log",
            reason: format!("entry {}: {reason}", entry.seq),
        };
        let signed =
            SignedStatement::from_bytes(bytes).map_err(|error| refuse(error.to_string()))?;
        let signer = *signed.signer();
        let allowed = match signed.kind() {
            StatementKind::RosterEntry => {
                in_vault::<RosterEntry>(roster, &signed).map_err(refuse)?;
                on_roster(&signer, true)
            }
            StatementKind::RecordingManifest => {
                let manifest = in_vault::<RecordingManifest>(roster, &signed).map_err(refuse)?;
                named(&manifest.uploader, &signer, true)
            }
            StatementKind::UnlockRequest => {
                let request = in_vault::<UnlockRequest>(roster, &signed).map_err(refuse)?;
                named(&request.requester, &signer, false)
            }
            StatementKind::Vote => {
                let vote = in_vault::<Vote>(roster, &signed).map_err(refuse)?;
                named(&vote.voter, &signer, false)
            }
            StatementKind::VaultPolicy => {
                in_vault::<VaultPolicy>(roster, &signed).map_err(refuse)?;
                on_roster(&signer, true)
            }
            StatementKind::SearchKeyCommitment => {
                in_vault::<SearchKeyCommitment>(roster, &signed).map_err(refuse)?;
                on_roster(&signer, true)
            }
            StatementKind::SearchKeyRotation => {
                let rotation = in_vault::<SearchKeyRotation>(roster, &signed).map_err(refuse)?;
                roster.admin_at(&signer, rotation.roster_sequence).is_some()
            }
            StatementKind::NodeApproval => {
                let approval = in_vault::<NodeApproval>(roster, &signed).map_err(refuse)?;
                let by_admin = on_roster(&signer, true);
                if by_admin {
                    nodes.insert(approval.node_id, approval.node.verifying_key);
                }
                by_admin
            }
            StatementKind::TranscriptManifest => {
                let manifest = in_vault::<TranscriptManifest>(roster, &signed).map_err(refuse)?;
                nodes.get(&manifest.node_id) == Some(&signer)
            }
            StatementKind::ReleaseManifest => {
                let manifest = in_vault::<ReleaseManifest>(roster, &signed).map_err(refuse)?;
                nodes.get(&manifest.node_id) == Some(&signer)
            }
            StatementKind::RetentionRule => by_admin_ever::<RetentionRule>(roster, &signed).is_ok(),
            StatementKind::LegalHold => {
                in_vault::<LegalHold>(roster, &signed).map_err(refuse)?;
                held_shares(roster, &signer)
            }
            // A kind this device does not know: it cannot say who may sign it.
            _ => false,
        };
        if !allowed {
            return Err(refuse(format!(
                "a {} is signed by a key that has no right to sign it",
                signed.kind().as_str()
            )));
        }
    }
    Ok(())
}

/// A statement an admin must have signed, verified: a valid signature for `roster`'s
/// vault, by a key that is or was an admin on it (what an admin signed stays in force when
/// they leave: a retention rule, say).
pub fn by_admin_ever<T: StatementBody>(
    roster: &Roster,
    signed: &SignedStatement,
) -> Result<Verified<T>, String> {
    let verified = signed.verify::<T>().map_err(|error| error.to_string())?;
    if verified.statement.vault_id() != roster.vault_id() {
        return Err("a statement of another vault".into());
    }
    let admin = roster
        .members()
        .iter()
        .chain(roster.removed())
        .any(|member| member.public.verifying_key == verified.signer && member.role == Role::Admin);
    if !admin {
        return Err("not signed by an admin of this vault".into());
    }
    Ok(verified)
}

/// Whether `key` is or was a share-holding member's on `roster`.
fn held_shares(roster: &Roster, key: &VerifyingKey) -> bool {
    roster
        .members()
        .iter()
        .chain(roster.removed())
        .any(|member| member.public.verifying_key == *key && member.role.holds_shares())
}

/// Slack for a server clock a little ahead of this device's.
const CLOCK_SLACK_SECONDS: i64 = 300;

/// Checks every shredding the audit log records against the signed statements before it,
/// in log order: a receipt (`recording.shredded`, `minutes.shredded`) must carry the
/// retention rule in force for its recording at that point (its newest override, else the
/// vault's newest rule), that rule must set a period for what was shredded, the period must
/// have ended by the receipt's time (counted from the uploader's signed manifest, or from
/// the first release of its minutes in the log), and the receipt must not be dated after
/// `now`. No deletion, by rule or by an admin (`recording.deleted`), may touch a recording
/// that a hold placed by k members' votes (k the policy's at the time), and not yet lifted
/// by k votes, covers. Signers are [`audit_signers`]'s to check; a vote counts if its
/// signer held shares at any time (see `Records::count_vote`).
///
/// Without this, a server could shred a recording early, under a forged or superseded rule,
/// or under a hold, and the log would only say that it did.
pub fn audit_records(roster: &Roster, entries: &[AuditEntry], now: i64) -> Result<(), CheckError> {
    let mut records = Records::default();
    for entry in entries {
        records
            .follow(roster, entry, now)
            .map_err(|reason| CheckError::Invalid {
                what: "audit log",
                reason: format!("entry {}: {reason}", entry.seq),
            })?;
    }
    Ok(())
}

/// What the log has said so far that a shredding is checked against.
#[derive(Default)]
struct Records {
    rules: Vec<Verified<RetentionRule>>,
    uploaded: HashMap<RecordingId, i64>,
    released: HashMap<RecordingId, i64>,
    k: u8,
    votes: Vec<Verified<LegalHold>>,
    decided: Vec<LegalHold>,
}

impl Records {
    fn follow(&mut self, roster: &Roster, entry: &AuditEntry, now: i64) -> Result<(), String> {
        if let Some(bytes) = &entry.statement {
            let signed = SignedStatement::from_bytes(bytes).map_err(|error| error.to_string())?;
            match signed.kind() {
                StatementKind::RecordingManifest => {
                    let manifest = in_vault::<RecordingManifest>(roster, &signed)?;
                    self.uploaded
                        .entry(manifest.recording_id)
                        .or_insert(manifest.created_at);
                }
                StatementKind::ReleaseManifest => {
                    let manifest = in_vault::<ReleaseManifest>(roster, &signed)?;
                    self.released
                        .entry(manifest.recording_id)
                        .or_insert(entry.time);
                }
                StatementKind::VaultPolicy => {
                    self.k = in_vault::<VaultPolicy>(roster, &signed)?.min_threshold;
                }
                StatementKind::RetentionRule if entry.action == "retention.set" => {
                    self.rules.push(by_admin_ever(roster, &signed)?);
                }
                StatementKind::LegalHold => self.count_vote(roster, &signed)?,
                _ => {}
            }
        }
        let shredded = match entry.action.as_str() {
            "recording.shredded" => Some(false),
            "minutes.shredded" => Some(true),
            _ => None,
        };
        if let Some(minutes) = shredded {
            self.check_receipt(roster, entry, minutes, now)?;
        }
        if matches!(
            entry.action.as_str(),
            "recording.shredded" | "minutes.shredded" | "recording.deleted"
        ) {
            let recording: RecordingId = entry
                .subject
                .parse()
                .map_err(|_| "a deletion that names no recording".to_owned())?;
            let decided: Vec<&LegalHold> = self.decided.iter().collect();
            if let Some(hold) = held(&decided, recording) {
                return Err(format!(
                    "recording {recording} was deleted while legal hold {hold} covered it"
                ));
            }
        }
        Ok(())
    }

    /// Adds a hold vote; once k distinct members agree with the first vote on its hold and
    /// action (same scope and reason, each made on a roster head of this chain), the hold is
    /// placed (or lifted). A member counts if they held shares at any time: removing a
    /// voter later neither hides a hold nor undoes a lift. A vote that disagrees with the
    /// first is not counted, and cancels nothing.
    fn count_vote(&mut self, roster: &Roster, signed: &SignedStatement) -> Result<(), String> {
        in_vault::<LegalHold>(roster, signed)?;
        let vote = signed
            .verify::<LegalHold>()
            .map_err(|error| error.to_string())?;
        let asked = (vote.statement.hold_id, vote.statement.action);
        self.votes.push(vote);
        let question = |hold: &LegalHold| (hold.hold_id, hold.action);
        if self.k == 0 || self.decided.iter().any(|hold| question(hold) == asked) {
            return Ok(());
        }
        let Some(first) = self
            .votes
            .iter()
            .find(|vote| question(&vote.statement) == asked)
        else {
            return Ok(());
        };
        let agrees = |other: &LegalHold| {
            (other.scope, &other.reason) == (first.statement.scope, &first.statement.reason)
        };
        let mut voters: Vec<&VerifyingKey> = self
            .votes
            .iter()
            .filter(|vote| {
                question(&vote.statement) == asked
                    && agrees(&vote.statement)
                    && roster.has_entry(&vote.statement.roster_head)
                    && held_shares(roster, &vote.signer)
            })
            .map(|vote| &vote.signer)
            .collect();
        voters.sort_by_key(|key| key.to_bytes());
        voters.dedup();
        if voters.len() >= usize::from(self.k) {
            self.decided.push(first.statement.clone());
        }
        Ok(())
    }

    fn check_receipt(
        &self,
        roster: &Roster,
        entry: &AuditEntry,
        minutes: bool,
        now: i64,
    ) -> Result<(), String> {
        if entry.actor != "server" {
            return Err("a shredding receipt not written by the server's sweep".into());
        }
        let bytes = entry
            .statement
            .as_ref()
            .ok_or("a shredding receipt that names no signed rule")?;
        let signed = SignedStatement::from_bytes(bytes).map_err(|error| error.to_string())?;
        let rule = by_admin_ever::<RetentionRule>(roster, &signed)
            .map_err(|error| format!("a shredding receipt's rule: {error}"))?;
        let recording: RecordingId = entry
            .subject
            .parse()
            .map_err(|_| "a shredding receipt that names no recording".to_owned())?;
        let in_force =
            rule_for(&self.rules, recording).is_some_and(|current| current.digest == rule.digest);
        if !in_force {
            return Err(format!(
                "recording {recording} was shredded under a rule that was not the one in force for it"
            ));
        }
        let period = if minutes {
            rule.statement.minutes
        } else {
            rule.statement.recordings
        }
        .ok_or_else(|| format!("recording {recording} was shredded under a rule that keeps it"))?;
        let uploaded = *self
            .uploaded
            .get(&recording)
            .ok_or_else(|| format!("recording {recording} was shredded before it was made"))?;
        let due = period
            .due_at(uploaded, self.released.get(&recording).copied())
            .filter(|due| *due <= entry.time)
            .ok_or_else(|| {
                format!("recording {recording} was shredded before its rule's period ended")
            })?;
        if entry.time > now + CLOCK_SLACK_SECONDS {
            return Err(format!(
                "the receipt for recording {recording} is dated after now (due {due})"
            ));
        }
        Ok(())
    }
}

/// A statement's signature and body, checked, and that it belongs to `roster`'s vault.
fn in_vault<T: StatementBody>(roster: &Roster, signed: &SignedStatement) -> Result<T, String> {
    let verified = signed.verify::<T>().map_err(|error| error.to_string())?;
    if verified.statement.vault_id() != roster.vault_id() {
        return Err("a statement of another vault".into());
    }
    Ok(verified.statement)
}

/// `text` from the server (a name, a reason, a status) made safe to print on a terminal:
/// control characters, escape sequences among them, are shown as `\u{…}` instead of being
/// obeyed. A server could otherwise move the cursor, rewrite earlier lines or retitle the
/// window to hide what a device prints.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{PinError, holds_pinned_head, printable};
    use quorate_crypto::{
        Identity, VaultId,
        roster::Roster,
        statement::{Role, RosterChange},
    };

    #[test]
    fn a_roster_without_the_pinned_head_is_refused() {
        let (vault, ada) = (VaultId::random(), Identity::generate());
        let genesis = Roster::genesis_entry(vault, &ada, "Ada", 1).unwrap();
        let short = Roster::verify(vault, std::slice::from_ref(&genesis), None).unwrap();
        let added = short
            .sign_change(
                &ada,
                RosterChange::Add,
                Identity::generate().public(),
                "Bo",
                Role::Member,
                2,
            )
            .unwrap();
        let long = Roster::verify(vault, &[genesis, added], None).unwrap();
        let head = hex::encode(long.head());
        assert_eq!(holds_pinned_head(&long, 2, &head), Ok(()));
        assert_eq!(
            holds_pinned_head(&short, 0, ""),
            Ok(()),
            "nothing pinned yet"
        );
        assert_eq!(
            holds_pinned_head(&short, 2, &head),
            Err(PinError::RolledBack { have: 1, pinned: 2 })
        );
        assert_eq!(holds_pinned_head(&long, 2, "zz"), Err(PinError::Damaged));
    }

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        assert_eq!(printable("Bo"), "Bo");
        assert_eq!(printable("Bo\u{1b}[2J\n"), "Bo\\u{1b}[2J\\u{a}");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
    }
}
