//! Records management with the `quorate` command, on SQLite and on PostgreSQL (issue 18,
//! item 4): an admin signs a retention rule; members place a legal hold by k votes, which
//! stops the rule; they lift it, and the recording is shredded with a receipt that
//! `audit verify` checks. The shredding here runs on a clock a month fast, which to a device
//! is a server shredding early, and is refused; so is a server that rewrites the receipt in
//! its log (re-hashing the chain, as one that owns the database can) to look in time. The
//! receipt that verifies is checked in `services/quorate-server/tests/retention.rs`.

use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_crypto::audit::AuditEntry;
use quorate_e2e::{
    Backend, Device, Server,
    hostile::{HostileProxy, through},
    wav,
};

const DAY: i64 = 86_400;

/// Re-hashes an audit page (JSON, as the API serves it) from entry `from` on, as a server
/// that rewrote entry `from` would, so that the chain still verifies.
fn rehash(page: &mut serde_json::Value, vault: quorate_crypto::VaultId, from: usize) {
    let entries = page.as_array_mut().unwrap();
    for index in from..entries.len() {
        let previous = entries[index - 1]["hash"].as_str().unwrap().to_owned();
        let view = &mut entries[index];
        let mut entry = AuditEntry {
            vault_id: vault,
            seq: view["seq"].as_u64().unwrap(),
            time: view["time"].as_i64().unwrap(),
            actor: view["actor"].as_str().unwrap().into(),
            action: view["action"].as_str().unwrap().into(),
            subject: view["subject"].as_str().unwrap().into(),
            statement: view["statement"]
                .as_str()
                .map(|text| STANDARD.decode(text).unwrap()),
            prev_hash: [0; 32],
            hash: [0; 32],
        };
        let mut prev_hash = [0u8; 32];
        for (byte, pair) in prev_hash.iter_mut().zip(previous.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
        }
        entry.prev_hash = prev_hash;
        let hash: String = entry
            .compute_hash()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        view["prev_hash"] = previous.into();
        view["hash"] = hash.into();
    }
}

/// How many recordings `device` lists.
async fn listed(device: &Device) -> usize {
    let listed = device.ok(&["--json", "recordings"]).await.json();
    listed.as_array().unwrap().len()
}

quorate_server::per_backend!(a_hold_stops_a_rule_until_lifted_and_the_receipt_is_checked);

async fn a_hold_stops_a_rule_until_lifted_and_the_receipt_is_checked(backend: Backend) {
    let server = Server::start(backend).await;
    let (admin, mut members) = quorate_e2e::board(&server).await;
    let (cy, bo) = (members.pop().unwrap(), members.pop().unwrap());
    let file = bo.folder.path().join("meeting.wav");
    std::fs::write(&file, wav(1)).unwrap();
    let uploaded = bo
        .ok(&[
            "--json",
            "upload",
            file.to_str().unwrap(),
            "--title",
            "Board",
        ])
        .await
        .json();
    let recording = uploaded["recording_id"].as_str().unwrap().to_owned();
    let made_at = quorate_server::now();

    // Only an admin signs a rule; a malformed period says how to write one.
    let by_member = bo
        .run(&[
            "retention",
            "set",
            "--recordings",
            "uploaded+30d",
            "--minutes",
            "keep",
        ])
        .await;
    assert_ne!(by_member.code, 0);
    assert!(by_member.stderr.contains("only an admin"), "{by_member:?}");
    let typo = admin
        .run(&[
            "retention",
            "set",
            "--recordings",
            "30 days",
            "--minutes",
            "keep",
        ])
        .await;
    assert_ne!(typo.code, 0);
    assert!(typo.stderr.contains("uploaded+90d"), "{typo:?}");
    admin
        .ok(&[
            "retention",
            "set",
            "--recordings",
            "uploaded+30d",
            "--minutes",
            "keep",
        ])
        .await;

    // A recording may carry a rule of its own from its upload: an admin's; a member's try is
    // refused before anything is sent.
    let keep = [
        "--keep-recording",
        "uploaded+400d",
        "--keep-minutes",
        "keep",
    ];
    let path = file.to_str().unwrap();
    let by_member = bo
        .run(&[&["upload", path, "--title", "Own"][..], &keep].concat())
        .await;
    assert!(by_member.stderr.contains("only an admin"), "{by_member:?}");
    let own = admin
        .ok(&[&["--json", "upload", path, "--title", "Own"][..], &keep].concat())
        .await
        .json();
    let own = own["recording_id"].as_str().unwrap().to_owned();
    let shown = cy.ok(&["--json", "retention"]).await.json();
    let rules = shown["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{shown}");
    let seconds = |scope: &str| {
        rules
            .iter()
            .find(|rule| rule["scope"] == scope)
            .map(|rule| rule["recordings_seconds"].clone())
    };
    assert_eq!(seconds("vault"), Some((30 * DAY).into()), "{shown}");
    assert_eq!(seconds(&own), Some((400 * DAY).into()), "{shown}");

    // Bo proposes a hold on the recording; Cy seconds it: k = 2 places it.
    let placed = bo
        .ok(&[
            "--json",
            "holds",
            "place",
            "--reason",
            "Case 12-345",
            "--recording",
            &recording,
        ])
        .await
        .json();
    assert_eq!(placed["decided"], false);
    let hold = placed["hold_id"].as_str().unwrap().to_owned();
    let seconded = cy.ok(&["--json", "holds", "second", &hold]).await.json();
    assert_eq!(seconded["decided"], true, "{seconded}");
    let holds = admin.ok(&["--json", "holds"]).await.json();
    assert_eq!(holds["holds"][0]["state"], "in force", "{holds}");

    // Held: the rule, due, shreds nothing.
    let due = made_at + 31 * DAY;
    assert_eq!(server.app.shred_due(due).await.unwrap(), 0, "{backend:?}");
    assert_eq!(listed(&bo).await, 2);

    // Lifted by two votes; then the rule shreds it, with a receipt every device checks.
    admin
        .ok(&["holds", "lift", &hold, "--reason", "Case 12-345 settled"])
        .await;
    let early = bo.run(&["holds", "lift", &hold, "--reason", "again"]).await;
    assert!(early.stderr.contains("already proposed"), "{early:?}");
    let lifted = bo.ok(&["--json", "holds", "second", &hold]).await.json();
    assert_eq!(lifted["decided"], true, "{lifted}");
    assert_eq!(server.app.shred_due(due).await.unwrap(), 1);
    assert_eq!(
        listed(&bo).await,
        1,
        "the recording with a rule of its own is kept"
    );

    // This server's sweep ran with a clock 31 days fast: to every device, it shredded a
    // month before the rule allowed, and its receipt, dated by its own clock, lies in the
    // future. The device refuses the log.
    let ahead = cy.run(&["audit", "verify"]).await;
    assert_eq!(ahead.code, 3, "a refusal: {ahead:?}");
    assert!(ahead.stderr.contains("is dated after now"), "{ahead:?}");

    // A server that backdates the receipt instead (and re-hashes the rest of its log) is
    // refused too: the signed manifest's time says the period had not ended.
    let proxy = HostileProxy::start(&server.url("")).await;
    let vault = server.codes[0].vault_id;
    let lie = proxy.rewrite_json("GET", "/api/v1/vaults/*/audit", move |page| {
        let entries = page.as_array_mut().unwrap();
        let Some(at) = entries
            .iter()
            .position(|entry| entry["action"] == "recording.shredded")
        else {
            return;
        };
        entries[at]["time"] = (made_at + 5 * DAY).into();
        rehash(page, vault, at);
    });
    let refused = through(&cy, &proxy).run(&["audit", "verify"]).await;
    assert!(lie.count() > 0, "the lie was served");
    assert_eq!(refused.code, 3, "a refusal: {refused:?}");
    assert!(
        refused.stderr.contains("before its rule's period ended"),
        "{refused:?}"
    );
    server.stop().await;
}
