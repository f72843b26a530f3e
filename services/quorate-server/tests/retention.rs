//! Records management on SQLite and on PostgreSQL (issue 18, item 4): an admin's signed
//! retention rule shreds a recording's key, then its minutes, each when its period ends,
//! with a receipt in the audit log that a device checks; a legal hold placed by k members'
//! votes stops every deletion, by rule or by an admin, until k members lift it. A server
//! that rewrites its log (and re-hashes the chain, as one that owns the database can) to
//! shred early, under a rule not in force, or under a hold, is caught by the device's check.

mod common;

use common::{
    Board,
    flow::{self, Node},
    join, refused,
    resharing::deal,
};
use quorate_client::checks::audit_records;
use quorate_crypto::{
    HoldId, RecordingId,
    audit::{AuditEntry, verify_chain},
    retention::{Anchor, HoldAction, LegalHold, Period, RetentionRule, Scope},
    statement::SignedStatement,
};
use quorate_server::test_support::Backend;

const DAY: i64 = 86_400;
/// When the test manifests say they were made (`common::sign_recording`).
const MADE_AT: i64 = 1_750_003_700;

/// The whole audit log, its chain verified.
async fn whole_log(board: &Board) -> Vec<AuditEntry> {
    let (mut after, mut previous, mut entries) = (None, [0u8; 32], Vec::new());
    loop {
        let page = board
            .admin
            .client
            .audit_page(board.admin.vault, after, 500)
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return entries;
        };
        after = Some(last.seq);
        previous = verify_chain(&page, previous).unwrap();
        entries.extend(page);
    }
}

/// The log as a server that rewrote it would serve it: renumbered and re-hashed, so that
/// the chain verifies and only the device's reading of what it says can refuse it.
fn rechained(mut entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
    let mut previous = [0u8; 32];
    for (seq, entry) in entries.iter_mut().enumerate() {
        entry.seq = seq as u64;
        entry.prev_hash = previous;
        entry.hash = entry.compute_hash();
        previous = entry.hash;
    }
    verify_chain(&entries, [0; 32]).unwrap();
    entries
}

fn period(anchor: Anchor, days: i64) -> Option<Period> {
    Some(Period {
        anchor,
        seconds: (days * DAY) as u64,
    })
}

/// The admin signs rule `sequence` for `scope`.
async fn set_rule(
    board: &Board,
    scope: Scope,
    sequence: u64,
    (recordings, minutes): (Option<Period>, Option<Period>),
) -> SignedStatement {
    let rule = RetentionRule {
        vault_id: board.admin.vault,
        scope,
        sequence,
        recordings,
        minutes,
        issued_at: quorate_server::now(),
    };
    let signed = SignedStatement::sign(&rule, &board.admin.identity);
    board
        .admin
        .client
        .set_retention_rule(board.admin.vault, &signed)
        .await
        .unwrap();
    signed
}

/// Member `voter` votes to `action` hold `hold` on `scope`; answers whether it decided it.
async fn vote(
    board: &Board,
    voter: usize,
    (hold, action, scope): (HoldId, HoldAction, Scope),
    reason: &str,
) -> Result<bool, quorate_client::ClientError> {
    let (identity, client) = flow::member(board, voter);
    let vote = LegalHold {
        vault_id: board.admin.vault,
        hold_id: hold,
        action,
        scope,
        reason: reason.into(),
        roster_head: board.roster.head(),
        issued_at: quorate_server::now(),
    };
    client
        .vote_hold(board.admin.vault, &SignedStatement::sign(&vote, identity))
        .await
}

async fn is_listed(board: &Board, recording: RecordingId) -> bool {
    let listed = board
        .admin
        .client
        .recordings(board.admin.vault)
        .await
        .unwrap();
    listed
        .iter()
        .any(|view| view.recording_id == recording.to_string())
}

quorate_server::per_backend!(a_rule_shreds_the_key_then_the_minutes_with_receipts_devices_check);

async fn a_rule_shreds_the_key_then_the_minutes_with_receipts_devices_check(backend: Backend) {
    let (_db, server, board, node) = flow::voting(backend).await;
    let vault = board.admin.vault;
    let minutes = flow::released(&board, &node).await;
    let recording = minutes.made.id;
    let short = flow::released(&board, &node).await.made.id;
    let (unreleased, _) = flow::uploaded(&board, 1, 2).await;
    let released_at = quorate_server::now();

    // Only an admin's signature makes a rule, each scope's history in order, and no period
    // is under a day.
    let rule = RetentionRule {
        vault_id: vault,
        scope: Scope::Vault,
        sequence: 1,
        recordings: period(Anchor::Released, 90),
        minutes: period(Anchor::Released, 7 * 365),
        issued_at: released_at,
    };
    let (member, member_client) = flow::member(&board, 1);
    let by_member = member_client
        .set_retention_rule(vault, &SignedStatement::sign(&rule, member))
        .await;
    assert_eq!(refused(by_member), (403, "admin_only".into()));
    let out_of_order = board
        .admin
        .client
        .set_retention_rule(vault, &SignedStatement::sign(&rule, &board.admin.identity))
        .await;
    assert_eq!(refused(out_of_order), (409, "rule_changed".into()));
    let hasty = RetentionRule {
        sequence: 0,
        recordings: Some(Period {
            anchor: Anchor::Uploaded,
            seconds: 3600,
        }),
        ..rule.clone()
    };
    let hasty = board
        .admin
        .client
        .set_retention_rule(vault, &SignedStatement::sign(&hasty, &board.admin.identity))
        .await;
    assert_eq!(refused(hasty), (400, "invalid_statement".into()));
    let signed_rule = set_rule(&board, Scope::Vault, 0, (rule.recordings, rule.minutes)).await;
    let rules = board
        .admin
        .client
        .retention_rules(&board.roster)
        .await
        .unwrap();
    assert_eq!(rules.len(), 1);

    // Not yet due: nothing goes.
    assert_eq!(
        server.app.shred_due(released_at + 89 * DAY).await.unwrap(),
        0
    );
    assert!(is_listed(&board, recording).await);

    // One recording's own rule keeps its minutes a month and its key 90 days: the minutes go
    // first, and the key's period still counts from their release once they are gone.
    set_rule(
        &board,
        Scope::Recording(short),
        0,
        (period(Anchor::Released, 90), period(Anchor::Released, 30)),
    )
    .await;
    assert_eq!(
        server.app.shred_due(released_at + 31 * DAY).await.unwrap(),
        1
    );
    let kept = board
        .admin
        .client
        .released(vault, Some(short))
        .await
        .unwrap();
    assert!(kept.is_empty(), "{kept:?}");
    assert!(is_listed(&board, short).await);

    // Due: the key of each released recording goes (the unreleased one is kept, its period
    // never started); its minutes stay, readable and searchable.
    let key_day = released_at + 91 * DAY;
    assert_eq!(
        server.app.shred_due(key_day).await.unwrap(),
        2,
        "{backend:?}"
    );
    assert!(!is_listed(&board, short).await);
    assert_eq!(server.app.shred_due(key_day).await.unwrap(), 0, "done once");
    assert!(!is_listed(&board, recording).await);
    assert!(is_listed(&board, unreleased.id).await);
    let share = board.admin.client.recording_share(vault, recording).await;
    assert_eq!(refused(share), (404, "not_found".into()));
    let mut sink = Vec::new();
    let download = board
        .admin
        .client
        .download_recording(vault, recording, None, 1 << 30, &mut sink)
        .await;
    assert_eq!(refused(download), (404, "not_found".into()));
    let released = board
        .admin
        .client
        .released(vault, Some(recording))
        .await
        .unwrap();
    assert_eq!(released.len(), 1, "the minutes are kept 7 years");

    let log = whole_log(&board).await;
    let receipt = log
        .iter()
        .find(|entry| {
            entry.action == "recording.shredded" && entry.subject == recording.to_string()
        })
        .expect("a receipt");
    assert_eq!(receipt.subject, recording.to_string());
    assert_eq!(receipt.actor, "server");
    assert_eq!(
        receipt.statement.as_deref(),
        Some(&signed_rule.to_bytes()[..])
    );
    audit_records(&board.roster, &log, key_day).unwrap();

    // A server that dates the receipt before the period ended, or drops the rule from its
    // log, or names a rule an admin never signed, is caught by the device.
    let receipt_at = log
        .iter()
        .position(|entry| {
            entry.action == "recording.shredded" && entry.subject == recording.to_string()
        })
        .unwrap();
    let mut early = log.clone();
    early[receipt_at].time = released_at + 10 * DAY;
    let refusal = audit_records(&board.roster, &rechained(early), key_day).unwrap_err();
    assert!(
        refusal
            .to_string()
            .contains("before its rule's period ended"),
        "{refusal}"
    );
    let ruleless: Vec<_> = log
        .iter()
        .filter(|entry| entry.action != "retention.set")
        .cloned()
        .collect();
    let refusal = audit_records(&board.roster, &rechained(ruleless), key_day).unwrap_err();
    assert!(
        refusal.to_string().contains("not the one in force"),
        "{refusal}"
    );
    let mut forged = log.clone();
    forged[receipt_at].statement = Some(SignedStatement::sign(&rule, member).to_bytes());
    let refusal = audit_records(&board.roster, &rechained(forged), key_day).unwrap_err();
    assert!(
        refusal.to_string().contains("not signed by an admin"),
        "{refusal}"
    );
    let mut future = log.clone();
    future[receipt_at].time = key_day + DAY;
    assert!(audit_records(&board.roster, &rechained(future), key_day).is_err());

    // Seven years on, the minutes go too: the released copy, its index, the transcript.
    let minutes_day = released_at + (7 * 365 + 1) * DAY;
    assert_eq!(server.app.shred_due(minutes_day).await.unwrap(), 1);
    let released = board
        .admin
        .client
        .released(vault, Some(recording))
        .await
        .unwrap();
    assert!(released.is_empty(), "{released:?}");
    let log = whole_log(&board).await;
    assert!(log.iter().any(|entry| entry.action == "minutes.shredded"));
    audit_records(&board.roster, &log, minutes_day).unwrap();
    drop(node);
}

quorate_server::per_backend!(a_hold_of_k_members_stops_every_deletion_until_k_lift_it);

async fn a_hold_of_k_members_stops_every_deletion_until_k_lift_it(backend: Backend) {
    let (_db, server, board, _node): (_, _, Board, Node) = flow::voting(backend).await;
    let vault = board.admin.vault;
    let (made, _) = flow::uploaded(&board, 1, 2).await;
    set_rule(
        &board,
        Scope::Vault,
        0,
        (period(Anchor::Uploaded, 3650), None),
    )
    .await;
    let due = MADE_AT + 3651 * DAY;

    // A hold on the recording: placed once k = 2 members agree on it. The server refuses a
    // vote on it that changes its reason, a second vote by the same member, and a vote
    // signed by someone other than the member sending it.
    let hold = HoldId::random();
    let place = (hold, HoldAction::Place, Scope::Recording(made.id));
    assert!(!vote(&board, 1, place, "Case 12-345").await.unwrap());
    assert_eq!(
        refused(vote(&board, 2, place, "another case").await),
        (409, "hold_disagrees".into())
    );
    assert_eq!(
        refused(vote(&board, 1, place, "Case 12-345").await),
        (409, "already_voted".into())
    );
    let (_, client_2) = flow::member(&board, 2);
    let (identity_3, _) = flow::member(&board, 3);
    let not_theirs = LegalHold {
        vault_id: vault,
        hold_id: hold,
        action: HoldAction::Place,
        scope: Scope::Recording(made.id),
        reason: "Case 12-345".into(),
        roster_head: board.roster.head(),
        issued_at: quorate_server::now(),
    };
    let sent = client_2
        .vote_hold(vault, &SignedStatement::sign(&not_theirs, identity_3))
        .await;
    assert_eq!(refused(sent), (400, "invalid_statement".into()));
    assert!(
        vote(&board, 2, place, "Case 12-345").await.unwrap(),
        "placed"
    );

    // Held: neither the rule nor an admin deletes it.
    assert_eq!(server.app.shred_due(due).await.unwrap(), 0, "{backend:?}");
    let deleted = board.admin.client.delete_recording(vault, made.id).await;
    assert_eq!(refused(deleted), (409, "held".into()));
    assert!(is_listed(&board, made.id).await);

    // One vote to lift is not enough; the second lifts it, and the rule goes on.
    let lift = (hold, HoldAction::Lift, Scope::Recording(made.id));
    assert!(!vote(&board, 3, lift, "Case 12-345 settled").await.unwrap());
    assert_eq!(server.app.shred_due(due).await.unwrap(), 0);
    assert!(
        vote(&board, 1, lift, "Case 12-345 settled").await.unwrap(),
        "lifted"
    );
    assert_eq!(
        refused(vote(&board, 2, lift, "Case 12-345 settled").await),
        (409, "hold_not_placed".into())
    );
    assert_eq!(server.app.shred_due(due).await.unwrap(), 1);
    assert!(!is_listed(&board, made.id).await);

    let log = whole_log(&board).await;
    let actions: Vec<_> = log.iter().map(|entry| entry.action.as_str()).collect();
    for action in [
        "hold.vote.place",
        "hold.placed",
        "hold.vote.lift",
        "hold.lifted",
        "recording.shredded",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    audit_records(&board.roster, &log, due).unwrap();
    // A server that shreds under the hold (its log without the votes that lifted it) is
    // caught by the device.
    let unlifted: Vec<_> = log
        .iter()
        .filter(|entry| !entry.action.starts_with("hold.vote.lift"))
        .cloned()
        .collect();
    let refusal = audit_records(&board.roster, &rechained(unlifted), due).unwrap_err();
    assert!(
        refusal
            .to_string()
            .contains(&format!("while legal hold {hold} covered it")),
        "{refusal}"
    );
}

/// The sealed sub-shares the server holds for re-shares of `recording`'s key.
async fn sub_shares_of(
    server: &quorate_server::test_support::TestServer,
    recording: RecordingId,
) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM reshare_subshares s JOIN reshares r ON r.id = s.reshare_id
         WHERE r.recording_id = $1",
    )
    .bind(recording.to_string())
    .fetch_one(server.app.db.pool())
    .await
    .unwrap()
}

quorate_server::per_backend!(a_shredded_key_takes_its_open_re_share_with_it);

async fn a_shredded_key_takes_its_open_re_share_with_it(backend: Backend) {
    let (_db, server, board, _node): (_, _, Board, Node) = flow::voting(backend).await;
    let vault = board.admin.vault;
    let (made, _) = flow::uploaded(&board, 1, 2).await;
    set_rule(
        &board,
        Scope::Vault,
        0,
        (period(Anchor::Uploaded, 30), None),
    )
    .await;
    // A newcomer joins and the admin deals their share: sub-shares of the key, sealed to the
    // new board, wait on the server.
    join(&server.url(""), &board.admin, "Newcomer").await;
    let roster = board.admin.roster().await;
    deal(
        &board.admin.identity,
        &board.admin.client,
        &roster,
        made.id,
        2,
    )
    .await;
    assert!(sub_shares_of(&server, made.id).await > 0);

    // The rule shreds the key: the sub-shares are shares of it too, and go with it.
    assert_eq!(server.app.shred_due(MADE_AT + 31 * DAY).await.unwrap(), 1);
    assert_eq!(sub_shares_of(&server, made.id).await, 0);
    assert!(
        board
            .admin
            .client
            .reshare_work(vault)
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing is left to re-share"
    );
}
