//! The member's device (the `quorate` command) against a server that lies: answers rewritten
//! by the hostile proxy, rows rewritten in the database. In each test the device must refuse
//! and say so (exit code 3, "refused"; 2 where what the user typed matches nothing the server
//! sent), and nothing the lie asked for may be signed or sent.
//! docs/PROTOCOL.md ("What a lying server can try, and what stops it") names these tests.

use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_crypto::{
    Identity, VaultId,
    audit::AuditEntry,
    roster::Roster,
    statement::{RecordingManifest, SignedStatement, UnlockRequest},
};
use quorate_e2e::{
    Backend, Device, Run, Server, Staffed, board, enrol_node,
    hostile::{HostileProxy, through},
    identity, pending_member, wav,
};
use sqlx::Row;

/// The device refused, as a device does when a check fails.
fn assert_refused(run: &Run, says: &str) {
    assert_eq!(run.code, 3, "expected a refusal: {run:?}");
    assert!(
        run.stderr
            .lines()
            .any(|line| line.starts_with("error: refused:"))
            && run.stderr.contains(says),
        "expected a refusal saying {says:?}: {run:?}"
    );
}

fn vault(server: &Server) -> VaultId {
    server.codes[0].vault_id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn count(server: &Server, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(server.app.db.pool())
        .await
        .unwrap()
}

/// A database writer swaps a freshly enrolled node's keys for their own (keeping the honest
/// fingerprint column): the admin types the fingerprint the node's operator read out, and the
/// CLI, computing the fingerprint from the keys it would sign, refuses.
#[tokio::test]
async fn a_node_approval_signs_only_keys_whose_fingerprint_was_read_out() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _) = board(&server).await;
    let (machine, node_id) = enrol_node(&server, &admin).await;
    let read_out = machine.identity().fingerprint().short();
    let mallory = Identity::generate().public();
    sqlx::query("UPDATE nodes SET verifying_key = $1, recipient = $2 WHERE id = $3")
        .bind(mallory.verifying_key.as_bytes().to_vec())
        .bind(mallory.recipient.to_string())
        .bind(&node_id)
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let model = "ab".repeat(32);
    let approve = |fingerprint: String| {
        let (admin, node_id, model) = (&admin, node_id.clone(), model.clone());
        async move {
            admin
                .run(&[
                    "nodes",
                    "approve",
                    &node_id,
                    "--fingerprint",
                    &fingerprint,
                    "--model-sha256",
                    &model,
                    "--hardware",
                    "test box",
                ])
                .await
        }
    };
    let refused = approve(read_out.clone()).await;
    assert_refused(
        &refused,
        "the fingerprint you typed is not that of the keys",
    );
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM nodes WHERE approval IS NOT NULL"
        )
        .await,
        0,
        "nothing was signed"
    );
    // The honest keys back in place: the same fingerprint approves.
    let honest = machine.identity().public();
    sqlx::query("UPDATE nodes SET verifying_key = $1, recipient = $2 WHERE id = $3")
        .bind(honest.verifying_key.as_bytes().to_vec())
        .bind(honest.recipient.to_string())
        .bind(&node_id)
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let approved = approve(read_out).await;
    assert_eq!(approved.code, 0, "{approved:?}");
    server.stop().await;
}

/// A database writer swaps a pending member's keys for their own, keeping the honest
/// fingerprint column: the admin's CLI matches the typed fingerprint against fingerprints it
/// computes from the keys, so it finds no one and signs nothing.
#[tokio::test]
async fn a_pending_member_whose_keys_were_swapped_is_not_approved() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _) = board(&server).await;
    let (_dee, joined) = pending_member(&server, &admin, "Dee").await;
    let read_out = joined["fingerprint"].as_str().unwrap().to_owned();
    let mallory = Identity::generate().public();
    sqlx::query("UPDATE members SET verifying_key = $1, recipient = $2 WHERE name = 'Dee'")
        .bind(mallory.verifying_key.as_bytes().to_vec())
        .bind(mallory.recipient.to_string())
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let refused = admin.run(&["members", "approve", &read_out]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("no one with fingerprint"),
        "{refused:?}"
    );
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM roster_entries").await,
        3,
        "the roster still holds Ada, Bo and Cy only"
    );
    server.stop().await;
}

/// The server re-signs a real recording's manifest with another member's key (that member
/// could then put sealed metadata of their choosing in it, or the server with a key of its
/// own): every device refuses a manifest not signed by the uploader it names.
#[tokio::test]
async fn a_recording_manifest_not_signed_by_its_uploader_is_refused() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, members) = board(&server).await;
    let (bo, cy) = (&members[0], &members[1]);
    let file = cy.folder.path().join("meeting.wav");
    std::fs::write(&file, wav(1)).unwrap();
    cy.ok(&["upload", file.to_str().unwrap(), "--title", "Board"])
        .await;
    let proxy = HostileProxy::start(&server.url("")).await;
    let ada = identity(&admin);
    let resign = move |text: &str| -> String {
        let signed = SignedStatement::from_bytes(&STANDARD.decode(text).unwrap()).unwrap();
        let manifest = signed.verify::<RecordingManifest>().unwrap().statement;
        STANDARD.encode(SignedStatement::sign(&manifest, &ada).to_bytes())
    };
    let served = proxy.rewrite_json("GET", "/api/v1/vaults/*/recordings/*", move |view| {
        view["manifest"] = resign(view["manifest"].as_str().unwrap()).into();
    });
    let bo_via_proxy = through(bo, &proxy);
    let refused = bo_via_proxy.run(&["recordings"]).await;
    assert!(served.count() > 0, "the lie was served");
    assert_refused(&refused, "not signed by its uploader");

    // Signed by the uploader, but for a roster head outside the vault's chain: the uploader's
    // device was shown a forked roster, so the split may hold keys of the server's choosing.
    proxy.clear();
    let uploader = identity(cy);
    let forked = proxy.rewrite_json("GET", "/api/v1/vaults/*/recordings/*", move |view| {
        let text = view["manifest"].as_str().unwrap();
        let signed = SignedStatement::from_bytes(&STANDARD.decode(text).unwrap()).unwrap();
        let mut manifest = signed.verify::<RecordingManifest>().unwrap().statement;
        manifest.roster_head = [7; 32];
        view["manifest"] = STANDARD
            .encode(SignedStatement::sign(&manifest, &uploader).to_bytes())
            .into();
    });
    let refused = bo_via_proxy.run(&["recordings"]).await;
    assert!(forked.count() > 0, "the lie was served");
    assert_refused(&refused, "forked roster");

    // A manifest that is not base64, and a status outside its set: the answer does not
    // decode, and the device refuses it whole rather than acting on part of it.
    proxy.clear();
    let garbled = proxy.rewrite_json("GET", "/api/v1/vaults/*/recordings/*", |view| {
        view["manifest"] = "not base64!".into();
    });
    let refused = bo_via_proxy.run(&["recordings"]).await;
    assert!(garbled.count() > 0, "the lie was served");
    assert_refused(
        &refused,
        "the server's answer does not decode at `manifest`",
    );
    proxy.clear();
    let unknown = proxy.rewrite_json("GET", "/api/v1/vaults/*/recordings/*", |view| {
        view["status"] = "half-deleted".into();
    });
    let refused = bo_via_proxy.run(&["recordings"]).await;
    assert!(unknown.count() > 0, "the lie was served");
    assert_refused(
        &refused,
        "the server's answer does not decode at `status`: unknown variant `half-deleted`",
    );
    proxy.clear();
    bo_via_proxy.ok(&["recordings"]).await;
    server.stop().await;
}

/// The audit log as its rows stand in the database, in order.
async fn audit_rows(server: &Server) -> Vec<AuditEntry> {
    let rows = sqlx::query(
        "SELECT seq, time, actor, action, subject, statement, prev_hash, hash FROM audit_log WHERE vault_id = $1 ORDER BY seq",
    )
    .bind(vault(server).to_string())
    .fetch_all(server.app.db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|row| AuditEntry {
            vault_id: vault(server),
            seq: row.get::<i64, _>("seq") as u64,
            time: row.get("time"),
            actor: row.get("actor"),
            action: row.get("action"),
            subject: row.get("subject"),
            statement: row.get("statement"),
            prev_hash: row.get::<Vec<u8>, _>("prev_hash").try_into().unwrap(),
            hash: row.get::<Vec<u8>, _>("hash").try_into().unwrap(),
        })
        .collect()
}

async fn insert_audit(server: &Server, entry: &AuditEntry) {
    sqlx::query(
        "INSERT INTO audit_log (vault_id, seq, time, actor, action, subject, statement, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.vault_id.to_string())
    .bind(entry.seq as i64)
    .bind(entry.time)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.subject)
    .bind(entry.statement.clone())
    .bind(entry.prev_hash.to_vec())
    .bind(entry.hash.to_vec())
    .execute(server.app.db.pool())
    .await
    .unwrap();
}

/// A database writer (1) appends a well-chained entry carrying a statement signed by a key of
/// its own, and (2) deletes an entry from the middle and re-hashes everything after it, so
/// the chain is whole again. `audit verify` refuses the first because the signer is no one
/// the roster knows, and the second because the device kept the head it verified before.
#[tokio::test]
async fn an_audit_log_rewritten_in_the_database_is_refused() {
    let server = Server::start(Backend::Sqlite).await;
    let (_admin, members) = board(&server).await;
    let (bo, cy) = (&members[0], &members[1]);
    bo.ok(&["audit", "verify"]).await;

    // (1) A forged statement, well chained.
    let entries = audit_rows(&server).await;
    let last = entries.last().unwrap().clone();
    let eve = Identity::generate();
    let forged = Roster::genesis_entry(vault(&server), &eve, "Eve", last.time).unwrap();
    let mut appended = AuditEntry {
        seq: last.seq + 1,
        action: "roster.add".into(),
        subject: "Eve".into(),
        statement: Some(forged.to_bytes()),
        prev_hash: last.hash,
        ..last.clone()
    };
    appended.hash = appended.compute_hash();
    insert_audit(&server, &appended).await;
    assert_refused(
        &cy.run(&["audit", "verify"]).await,
        "signed by a key that has no right to sign it",
    );
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(appended.seq as i64)
        .execute(server.app.db.pool())
        .await
        .unwrap();

    // (2) An entry deleted from the middle, the rest re-hashed.
    let mut entries = audit_rows(&server).await;
    entries.remove(2);
    let mut previous = entries[1].hash;
    for (seq, entry) in entries.iter_mut().enumerate().skip(2) {
        entry.seq = seq as u64;
        entry.prev_hash = previous;
        entry.hash = entry.compute_hash();
        previous = entry.hash;
    }
    sqlx::query("DELETE FROM audit_log WHERE seq >= 2")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    for entry in &entries[2..] {
        insert_audit(&server, entry).await;
    }
    assert_refused(&bo.run(&["audit", "verify"]).await, "no longer holds entry");
    server.stop().await;
}

/// The server answers an enrolment with a genesis of its own (a vault it controls): a device
/// given the genesis out of band refuses and pins nothing; given the right one, it enrols.
#[tokio::test]
async fn enrolment_refuses_a_genesis_other_than_the_one_read_out() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _) = board(&server).await;
    let genesis = admin.ok(&["--json", "members"]).await.json()["genesis"]
        .as_str()
        .unwrap()
        .to_owned();
    // The forger's genesis is well made: its own admin key, named Ada.
    let mallory = Identity::generate();
    let forged = Roster::genesis_entry(vault(&server), &mallory, "Ada", 1).unwrap();
    let mallory = mallory.public();
    let proxy = HostileProxy::start(&server.url("")).await;
    let served = proxy.rewrite_json("POST", "/api/v1/enrol/member", move |answer| {
        answer["roster_genesis"] = hex(&forged.digest()).into();
        answer["genesis_entry"] = STANDARD.encode(forged.to_bytes()).into();
    });
    let invite = admin.ok(&["--json", "members", "invite"]).await.json();
    let dee = Device::at(&proxy.url);
    dee.ok(&["keygen"]).await;
    let code = invite["code"].as_str().unwrap();
    let refused = dee
        .run(&[
            "enroll",
            "--code",
            code,
            "--name",
            "Dee",
            "--genesis",
            &genesis,
        ])
        .await;
    assert!(served.count() > 0, "the lie was served");
    assert_refused(&refused, "nothing was pinned");
    assert!(
        !dee.folder.path().join("config.toml").exists()
            || !std::fs::read_to_string(dee.folder.path().join("config.toml"))
                .unwrap()
                .contains("genesis"),
        "nothing was pinned"
    );
    // Without `--genesis` the device cannot know, but it shows the forger's first admin,
    // whose fingerprint is not the one Ada reads out: what it tells its user to compare.
    let invite = admin.ok(&["--json", "members", "invite"]).await.json();
    let fay = Device::at(&proxy.url);
    fay.ok(&["keygen"]).await;
    let shown = fay
        .ok(&[
            "--json",
            "enroll",
            "--code",
            invite["code"].as_str().unwrap(),
            "--name",
            "Fay",
        ])
        .await
        .json();
    assert_eq!(
        shown["first_admin"]["fingerprint"].as_str(),
        Some(mallory.fingerprint().short().as_str())
    );
    assert_ne!(
        shown["first_admin"]["fingerprint"].as_str(),
        Some(identity(&admin).fingerprint().short().as_str())
    );
    // Through the honest server, someone else given the same genesis enrols.
    proxy.clear();
    let invite = admin.ok(&["--json", "members", "invite"]).await.json();
    let eve = Device::new(&server);
    eve.ok(&["keygen"]).await;
    let enrolled = eve
        .ok(&[
            "--json",
            "enroll",
            "--code",
            invite["code"].as_str().unwrap(),
            "--name",
            "Eve",
            "--genesis",
            &genesis,
        ])
        .await
        .json();
    assert_eq!(enrolled["roster_genesis"], genesis);
    assert_eq!(
        enrolled["first_admin"]["fingerprint"].as_str(),
        Some(identity(&admin).fingerprint().short().as_str()),
        "the first admin shown is the one whose fingerprint Ada reads out"
    );
    server.stop().await;
}

/// The server claims more bytes of an upload than the upload has: the CLI says so instead
/// of computing a negative remainder.
#[tokio::test]
async fn an_upload_offset_past_its_length_is_refused() {
    let server = Server::start(Backend::Sqlite).await;
    let (_admin, members) = board(&server).await;
    let proxy = HostileProxy::start(&server.url("")).await;
    let served = proxy.rewrite("HEAD", "/api/v1/uploads/*", |_, answer| {
        answer
            .headers
            .insert("upload-offset", "999999999".parse().unwrap());
    });
    let bo = through(&members[0], &proxy);
    let file = bo.folder.path().join("meeting.wav");
    std::fs::write(&file, wav(1)).unwrap();
    let refused = bo
        .run(&["upload", file.to_str().unwrap(), "--title", "Board"])
        .await;
    assert!(served.count() > 0, "the lie was served");
    assert_refused(
        &refused,
        "the server claims 999999999 bytes of an upload of",
    );

    // "Nothing of nothing": an upload that would look finished, so the device would drop its
    // only copy of the ciphertext. The device knows the length it made, and refuses.
    proxy.clear();
    let empty = proxy.rewrite("HEAD", "/api/v1/uploads/*", |_, answer| {
        answer.headers.insert("upload-offset", "0".parse().unwrap());
        answer.headers.insert("upload-length", "0".parse().unwrap());
    });
    let refused = bo
        .run(&["upload", file.to_str().unwrap(), "--title", "Board"])
        .await;
    assert!(empty.count() > 0, "the lie was served");
    assert_refused(&refused, "the server says the upload is 0 bytes");

    // A length "deferred", as for a live upload, where the device's own manifest names it:
    // with no length to hold the server to, the device refuses rather than guess.
    proxy.clear();
    let deferred = proxy.rewrite("HEAD", "/api/v1/uploads/*", |_, answer| {
        answer.headers.remove("upload-length");
        answer
            .headers
            .insert("upload-defer-length", "1".parse().unwrap());
    });
    let refused = bo
        .run(&["upload", file.to_str().unwrap(), "--title", "Board"])
        .await;
    assert!(deferred.count() > 0, "the lie was served");
    assert_refused(&refused, "the server says this upload's length is deferred");

    // The pending upload is still on the device: through an honest server, it completes.
    proxy.clear();
    bo.ok(&["upload", file.to_str().unwrap(), "--title", "Board"])
        .await;
    server.stop().await;
}

/// Names the server controls (a pending member's) carry terminal escape sequences: the CLI
/// prints them escaped, never raw.
#[tokio::test]
async fn server_text_is_printed_escaped() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _) = board(&server).await;
    pending_member(&server, &admin, "Dee").await;
    sqlx::query("UPDATE members SET name = $1 WHERE name = 'Dee'")
        .bind("Dee\u{1b}]0;owned\u{7}\u{1b}[2J")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let listed = admin.ok(&["members"]).await;
    assert!(!listed.stdout.contains('\u{1b}'), "{listed:?}");
    assert!(listed.stdout.contains("Dee\\u{1b}]0;owned"), "{listed:?}");
    server.stop().await;
}

/// A vault with a node approved for the real model, and a recording of speech it
/// transcribed by quorum; returns the vault, the model's SHA-256 and the recording's ID.
async fn transcribed(server: &Server) -> (Staffed, String, String) {
    let staffed = Staffed::new(server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (recording, _) = staffed
        .upload(
            &staffed.members[1],
            "the bridge committee met on tuesday",
            "Bridge",
        )
        .await;
    staffed.quorum(&recording, "transcribe").await;
    (staffed, model, recording)
}

/// A node is revoked after it made a transcript. The revocation names the node's keys and is
/// signed by an admin, but it must vouch for nothing: asking to release that transcript (to
/// another, approved node) is refused on the device. A server that then shows the approval
/// from before the revocation is refused by a device that saw the revocation.
#[tokio::test]
async fn a_revoked_node_vouches_for_no_transcript() {
    let server = Server::start(Backend::Sqlite).await;
    let (staffed, model, recording) = transcribed(&server).await;
    let (second, second_id) = enrol_node(&server, &staffed.admin).await;
    staffed
        .admin
        .ok(&[
            "nodes",
            "approve",
            &second_id,
            "--fingerprint",
            &second.identity().fingerprint().short(),
            "--model-sha256",
            &model,
            "--hardware",
            "second box",
        ])
        .await;
    let cy = &staffed.members[1];
    let release = |node: String| {
        let (cy, recording) = (cy, recording.clone());
        async move {
            cy.run(&[
                "request",
                &recording,
                "--node",
                &node,
                "--purpose",
                "release-transcript",
                "--reason",
                "publish",
            ])
            .await
        }
    };
    let approval: Vec<u8> = sqlx::query_scalar("SELECT approval FROM nodes WHERE id = $1")
        .bind(&staffed.node_id)
        .fetch_one(server.app.db.pool())
        .await
        .unwrap();
    staffed
        .admin
        .ok(&["nodes", "revoke", &staffed.node_id])
        .await;
    assert_refused(&release(second_id.clone()).await, "was revoked");

    // The server then hides the revocation behind the approval from before it: Cy's device
    // saw the revocation, and refuses the older statement.
    let proxy = HostileProxy::start(&server.url("")).await;
    let old = STANDARD.encode(&approval);
    let revoked_node = format!("/api/v1/vaults/*/nodes/{}", staffed.node_id);
    let hidden = proxy.rewrite_json("GET", &revoked_node, move |view| {
        view["approval"] = old.clone().into();
        view["status"] = "approved".into();
    });
    let refused = through(cy, &proxy)
        .run(&[
            "request",
            &recording,
            "--node",
            &second_id,
            "--purpose",
            "release-transcript",
            "--reason",
            "publish",
        ])
        .await;
    assert!(hidden.count() > 0, "the lie was served");
    assert_refused(&refused, "older than one this device verified");
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM unlock_requests WHERE purpose = 'release-transcript'"
        )
        .await,
        0
    );
    server.stop().await;
}

/// The server tells an admin's device that the vault has no search key, hoping it makes a
/// second one (two valid commitments would split devices between two keys). Only the first
/// admin makes the key, at enrolment: the device refuses and sends nothing.
#[tokio::test]
async fn a_hidden_search_key_is_not_made_again() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _) = board(&server).await;
    let proxy = HostileProxy::start(&server.url("")).await;
    let served = proxy.rewrite_json("GET", "/api/v1/vaults/*/search-key", |view| {
        view["commitment"] = serde_json::Value::Null;
        view["sealed"] = serde_json::Value::Null;
        view["holders"] = serde_json::json!([]);
    });
    let sent = proxy.watch("POST", "/api/v1/vaults/*/search-key");
    let refused = through(&admin, &proxy).run(&["share-keys"]).await;
    assert!(served.count() > 0, "the lie was served");
    assert_refused(&refused, "the server is hiding it");
    assert_eq!(sent.count(), 0, "no second key was sent");
    server.stop().await;
}

/// A member seals a bad release key to a newcomer before any admin's good one is stored (the
/// server dropped the approving admin's grants). The newcomer's device refuses the bad key
/// and says what to do; an admin's `share-keys --member` replaces it, and the minutes open.
#[tokio::test]
async fn a_release_key_squatted_by_a_member_is_replaced_by_an_admin() {
    use quorate_crypto::{AgeSecretKey, release::seal_release_key};
    let server = Server::start(Backend::Sqlite).await;
    let (staffed, _, recording) = transcribed(&server).await;
    staffed.quorum(&recording, "release-transcript").await;
    let (ada, bo) = (&staffed.admin, &staffed.members[0]);
    let (dee, joined) = pending_member(&server, ada, "Dee").await;
    let dee_print = joined["fingerprint"].as_str().unwrap().to_owned();

    // The server drops the admin's grants: Dee is on the roster with no key to the minutes.
    let proxy = HostileProxy::start(&server.url("")).await;
    let dropped = proxy.drop_requests("POST", "/api/v1/vaults/*/released/*/grants", 503);
    through(ada, &proxy)
        .run(&["members", "approve", &dee_print])
        .await;
    assert!(dropped.count() > 0, "the admin's grant was dropped");

    // Bo seals Dee a key that is not the release key.
    let vault = vault(&server);
    let mut client = quorate_client::Client::new(&server.url(""));
    client.sign_in(vault, &identity(bo)).await.unwrap();
    let released = client.released(vault, None).await.unwrap().remove(0);
    let transcript = released.transcript_id.parse().unwrap();
    let dee_recipient = identity(&dee).public().recipient;
    let bad =
        seal_release_key(vault, transcript, &AgeSecretKey::generate(), &dee_recipient).unwrap();
    client
        .add_release_grants(
            vault,
            transcript,
            vec![quorate_api::SealedGrant {
                holder: identity(&dee).fingerprint().to_hex(),
                sealed: bad.into(),
            }],
        )
        .await
        .unwrap();
    let refused = dee
        .run(&["transcript", &recording, "--format", "txt"])
        .await;
    assert_refused(&refused, "quorate share-keys --member");

    // Plain `share-keys` sees Dee listed and passes her by; `--member` seals her a good key
    // again, and an admin's grant replaces a member's.
    ada.ok(&["share-keys"]).await;
    assert_refused(
        &dee.run(&["transcript", &recording, "--format", "txt"])
            .await,
        "does not open them",
    );
    ada.ok(&["share-keys", "--member", &dee_print]).await;
    let text = dee.ok(&["transcript", &recording, "--format", "txt"]).await;
    assert!(text.stdout.to_lowercase().contains("bridge"), "{text:?}");

    // A released copy longer than its manifest signs is refused as it arrives.
    let longer = proxy.rewrite(
        "GET",
        "/api/v1/vaults/*/released/*/ciphertext",
        |_, answer| {
            answer.body.extend_from_slice(&[0; 4096]);
        },
    );
    let refused = through(bo, &proxy)
        .run(&["transcript", &recording, "--format", "txt"])
        .await;
    assert!(longer.count() > 0, "the lie was served");
    assert_refused(&refused, "more than the");
    server.stop().await;
}

/// The server drops the search key the first admin's device makes at enrolment: the vault has
/// none, and that device (which has not seen one yet) makes it later with `share-keys`. It is
/// the only device that ever makes one.
#[tokio::test]
async fn a_search_key_lost_at_enrolment_is_made_by_the_first_admin_only() {
    let server = Server::start(Backend::Sqlite).await;
    let proxy = HostileProxy::start(&server.url("")).await;
    let dropped = proxy.drop_requests("POST", "/api/v1/vaults/*/search-key", 503);
    let ada = Device::at(&proxy.url);
    ada.ok(&["keygen"]).await;
    let enrolled = ada
        .run(&[
            "enroll",
            "--code",
            server.codes[0].code.as_str(),
            "--name",
            "Ada",
        ])
        .await;
    assert_ne!(enrolled.code, 0, "{enrolled:?}");
    assert!(dropped.count() > 0, "the key was dropped");
    assert_eq!(count(&server, "SELECT COUNT(*) FROM search_keys").await, 0);

    let ada = Device {
        folder: ada.folder,
        server: server.url(""),
    };
    ada.ok(&["policy", "set", "--threshold", "1"]).await;
    let (_bo, joined) = pending_member(&server, &ada, "Bo").await;
    ada.ok(&[
        "members",
        "approve",
        joined["fingerprint"].as_str().unwrap(),
    ])
    .await;
    assert_eq!(count(&server, "SELECT COUNT(*) FROM search_keys").await, 1);
    server.stop().await;
}

/// The server names a pending member after someone already on the roster, so that every
/// device would later show "Bo asks to…" for a stranger: the admin's CLI signs nothing.
#[tokio::test]
async fn a_pending_member_named_like_a_member_is_not_signed_on() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _) = board(&server).await;
    let (_dee, joined) = pending_member(&server, &admin, "Dee").await;
    sqlx::query("UPDATE members SET name = 'bo' WHERE name = 'Dee'")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let refused = admin
        .run(&[
            "members",
            "approve",
            joined["fingerprint"].as_str().unwrap(),
        ])
        .await;
    assert_refused(&refused, "a name already on the roster");
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM roster_entries").await,
        3
    );
    server.stop().await;
}

/// The server answers an enrolment for another vault than the code named: nothing is pinned.
#[tokio::test]
async fn an_enrolment_answered_for_another_vault_is_refused() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _) = board(&server).await;
    let proxy = HostileProxy::start(&server.url("")).await;
    let other = VaultId::random().to_string();
    let served = proxy.rewrite_json("POST", "/api/v1/enrol/member", move |answer| {
        answer["vault_id"] = other.clone().into();
    });
    let invite = admin.ok(&["--json", "members", "invite"]).await.json();
    let dee = Device::at(&proxy.url);
    dee.ok(&["keygen"]).await;
    let refused = dee
        .run(&[
            "enroll",
            "--code",
            invite["code"].as_str().unwrap(),
            "--name",
            "Dee",
        ])
        .await;
    assert!(served.count() > 0, "the lie was served");
    assert_refused(&refused, "another vault than the code names");
    server.stop().await;
}

/// A recorder's key (a recording machine, taken) signs a request, and the server passes it
/// off as a member's: the voter's device refuses it, for a recorder may only upload.
#[tokio::test]
async fn a_request_signed_by_a_recorder_is_refused_by_the_voter() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    staffed.approve_node(&"ab".repeat(32)).await;
    let (admin, bo, cy) = (&staffed.admin, &staffed.members[0], &staffed.members[1]);
    let recorder = quorate_e2e::recorder(&server, admin, "obs-1").await;
    let (recording, _) = staffed.upload(cy, "The board met.", "Board").await;
    let request = quorate_e2e::ask(cy, &recording, &staffed.node_id, "transcribe", "minutes").await;

    let proxy = HostileProxy::start(&server.url("")).await;
    let taken = identity(&recorder);
    let served = proxy.rewrite_json("GET", "/api/v1/vaults/*/requests/*", move |view| {
        let text = view["statement"].as_str().unwrap();
        let signed = SignedStatement::from_bytes(&STANDARD.decode(text).unwrap()).unwrap();
        let mut request = signed.verify::<UnlockRequest>().unwrap().statement;
        request.requester = taken.fingerprint();
        view["statement"] = STANDARD
            .encode(SignedStatement::sign(&request, &taken).to_bytes())
            .into();
    });
    let refused = through(bo, &proxy)
        .run(&["approve", &request, "--yes"])
        .await;
    assert!(served.count() > 0, "the lie was served");
    assert_refused(&refused, "who may not sign it");
    server.stop().await;
}

/// Right after Ada removes Cy, the server answers with the roster from before the removal
/// (still holding the entry her device pinned), hoping her device makes the new search key
/// for that roster and seals it to Cy, who just left. The device sees Cy still on it and
/// rotates nothing, saying what to run.
#[tokio::test]
async fn no_search_key_is_rotated_for_a_roster_from_before_the_removal() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, members) = board(&server).await;
    let cy = identity(&members[1]).fingerprint().to_hex();
    let proxy = HostileProxy::start(&server.url("")).await;
    // The roster as this device saw it before the removal: every later entry is cut.
    let seen = std::sync::Mutex::new(None::<usize>);
    let served = proxy.rewrite_json("GET", "/api/v1/vaults/*/roster", move |view| {
        let entries = view["entries"].as_array_mut().unwrap();
        let before = *seen.lock().unwrap().get_or_insert(entries.len());
        entries.truncate(before);
    });
    let removed = through(&admin, &proxy)
        .run(&["members", "remove", &cy])
        .await;
    assert!(served.count() >= 2, "the lie was served after the removal");
    assert!(
        removed.stderr.contains(
            "replacing the search key they held failed (refused: the server shows a roster that still holds the member just removed"
        ) && removed.stderr.contains("quorate search-key rotate"),
        "{removed:?}"
    );
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM search_key_rotations").await,
        0,
        "no key was made for the old roster"
    );
    // With honest answers, the admin rotates.
    proxy.clear();
    let rotated = through(&admin, &proxy).ok(&["search-key", "rotate"]).await;
    assert!(rotated.stdout.contains("generation 1"), "{rotated:?}");
    server.stop().await;
}
