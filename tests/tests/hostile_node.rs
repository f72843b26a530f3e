//! The transcription node facing a server that lies (issue 14). Each test makes the server,
//! its database or its object store forge something, as an attacker holding them would, and
//! shows the node refusing it with a reason that says what went wrong:
//! - a recording's ciphertext replaced in the object store by other audio encrypted to the
//!   manifest's public recipient, as long as the original (only the SHA-256 tells);
//! - a server that sends more ciphertext than the signed manifest says (the node stops at the
//!   first byte too many, before decrypting anything);
//! - a recording manifest re-signed by a key other than its uploader's;
//! - a roster rolled back in the database below the head the node verified;
//! - a release whose transcript was made by a node an admin has since revoked;
//! - an enrolment answered with another vault's genesis: `--genesis` refuses it, and without
//!   it the node shows the admins' fingerprints its operator compares.

use base64::Engine;
use quorate_client::Client;
use quorate_crypto::{
    Identity, Recipient, RecordingId, VaultId, envelope,
    roster::Roster,
    statement::{RecordingManifest, SignedStatement, StatementBody, UnlockRequest},
};
use quorate_e2e::{
    Backend, Device, NodeMachine, Server, Staffed, approve_node, ask, board, enrol_node,
    hostile::HostileProxy, identity, speech,
};

/// Words nobody said in the meeting: what a forger would have the node transcribe.
const FORGED: &str = "The board agreed to move the whole reserve to the treasurer's own account.";

/// `device`'s client, signed in to the server's first vault.
async fn signed_in(server: &Server, device: &Device) -> (Client, VaultId) {
    let vault = server.codes[0].vault_id;
    let mut client = Client::new(&server.url(""));
    client.sign_in(vault, &identity(device)).await.unwrap();
    (client, vault)
}

/// The recording a request is for, and its signed manifest.
async fn manifest_of(client: &Client, vault: VaultId, request: &str) -> RecordingManifest {
    let view = client
        .request(vault, request.parse().unwrap())
        .await
        .unwrap();
    let recording: RecordingId = view.subject_id.parse().unwrap();
    let recording = client.recording(vault, recording).await.unwrap();
    SignedStatement::from_bytes(&recording.manifest)
        .unwrap()
        .verify::<RecordingManifest>()
        .unwrap()
        .statement
}

/// The job of `request`, as the vault's jobs list shows it.
async fn job_of(client: &Client, vault: VaultId, request: &str) -> quorate_api::JobView {
    client
        .jobs(vault)
        .await
        .unwrap()
        .into_iter()
        .find(|job| job.request_id == request)
        .expect("the request has a job")
}

/// `wav` (16-bit PCM) as an 8-bit WAV of exactly `len` bytes: 8-bit samples make any length a
/// whole number of frames, and silence pads a short one.
fn wav_of_length(wav: &[u8], len: usize) -> Vec<u8> {
    let rate = u32::from_le_bytes(wav[24..28].try_into().unwrap());
    let data = wav
        .windows(4)
        .position(|window| window == b"data")
        .expect("a data chunk")
        + 8;
    let data_len = len - 44;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(len as u32 - 8).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    out.extend(
        wav[data..]
            .chunks_exact(2)
            .map(|sample| ((i16::from_le_bytes([sample[0], sample[1]]) >> 8) + 128) as u8)
            .chain(std::iter::repeat(128))
            .take(data_len),
    );
    out
}

/// A valid age file of `spoken` encrypted to `recipient` (anyone can: it is public). With
/// `like`, the honest ciphertext's length and its plaintext's, the forged plaintext is cut or
/// padded to that plaintext length, so the age file is exactly as long as the honest one
/// whenever its header is; age adds a "grease" stanza of random length to every header, so
/// encrypting again until the lengths match takes some tries.
fn forged_ciphertext(recipient: &Recipient, spoken: &str, like: Option<(u64, usize)>) -> Vec<u8> {
    let wav = speech(spoken);
    let encrypt = |plaintext: &[u8]| {
        envelope::encrypt(plaintext, Vec::new(), recipient)
            .unwrap()
            .0
    };
    let Some((len, plaintext_len)) = like else {
        return encrypt(&wav);
    };
    let plaintext = wav_of_length(&wav, plaintext_len);
    // The grease stanza's length is spread over a few hundred values: ten thousand tries make
    // missing the honest header's length vanishingly unlikely.
    (0..10_000)
        .map(|_| encrypt(&plaintext))
        .find(|forged| forged.len() as u64 == len)
        .unwrap_or_else(|| {
            panic!("no encryption of {plaintext_len} bytes gives a {len}-byte age file")
        })
}

/// A vault with its node approved for the real model, and a recording of `spoken` whose
/// transcription two members approved: the job waits for the node.
async fn quorate_transcription(server: &Server, spoken: &str) -> (Staffed, String) {
    let staffed = Staffed::new(server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let request = staffed.half_approved_request(spoken).await;
    staffed.members[0].ok(&["approve", &request, "--yes"]).await;
    (staffed, request)
}

#[tokio::test]
async fn a_node_refuses_a_recording_replaced_in_the_object_store() {
    let server = Server::start(Backend::Sqlite).await;
    const SPOKEN: &str = "The council approved the library budget.";
    let (staffed, request) = quorate_transcription(&server, SPOKEN).await;
    let (client, vault) = signed_in(&server, &staffed.admin).await;
    let manifest = manifest_of(&client, vault, &request).await;

    // Whoever holds the object store swaps the ciphertext for other audio encrypted to the
    // manifest's (public) recipient, byte for byte as long: the length alone cannot tell.
    let object = server
        .data_dir()
        .join("objects/recordings")
        .join(vault.to_string())
        .join(format!("{}.age", manifest.recording_id));
    assert!(object.is_file(), "recordings are stored at {object:?}");
    // The honest plaintext is the speech the member uploaded (espeak-ng is deterministic).
    let honest_plaintext = speech(SPOKEN).len();
    let forged = forged_ciphertext(
        &manifest.split.recipient,
        FORGED,
        Some((manifest.ciphertext_len, honest_plaintext)),
    );
    std::fs::write(&object, &forged).unwrap();

    staffed.machine.ok(&["run", "--once"]).await;
    let job = job_of(&client, vault, &request).await;
    assert_eq!(job.status, quorate_api::JobStatus::Failed, "{job:?}");
    let reason = job.failure.unwrap();
    assert!(
        reason.contains("SHA-256") && reason.contains("not the one its signed manifest names"),
        "the reason says what is wrong: {reason}"
    );
    assert!(
        client.transcripts(vault).await.unwrap().is_empty(),
        "no transcript of the forged audio"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_node_stops_downloading_past_the_length_the_manifest_signed() {
    let server = Server::start(Backend::Sqlite).await;
    let (mut staffed, request) =
        quorate_transcription(&server, "The meeting closed at nine.").await;
    let (client, vault) = signed_in(&server, &staffed.admin).await;
    let manifest = manifest_of(&client, vault, &request).await;

    // The server sends a longer age file of other audio, encrypted to the same recipient.
    let forged = forged_ciphertext(&manifest.split.recipient, FORGED, None);
    assert!(forged.len() as u64 > manifest.ciphertext_len);
    let proxy = HostileProxy::start(&server.url("")).await;
    let served = proxy.rewrite(
        "GET",
        "/api/v1/vaults/*/recordings/*/ciphertext",
        move |_, answer| answer.body.clone_from(&forged),
    );
    staffed.machine.server = proxy.url.clone();

    staffed.machine.ok(&["run", "--once"]).await;
    assert_eq!(served.count(), 1, "the node downloaded through the proxy");
    let job = job_of(&client, vault, &request).await;
    assert_eq!(job.status, quorate_api::JobStatus::Failed, "{job:?}");
    let reason = job.failure.unwrap();
    assert!(
        reason.contains(&format!(
            "more than the {} bytes the manifest signs",
            manifest.ciphertext_len
        )) && reason.contains("refused before decrypting"),
        "the reason says what is wrong: {reason}"
    );
    assert!(client.transcripts(vault).await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_node_refuses_a_recording_manifest_not_signed_by_its_uploader() {
    let server = Server::start(Backend::Sqlite).await;
    let (mut staffed, request) =
        quorate_transcription(&server, "The hall will be repainted in spring.").await;
    let (client, vault) = signed_in(&server, &staffed.admin).await;
    let manifest = manifest_of(&client, vault, &request).await;

    // The server hands the node the real split re-signed by a key of its own: its sealed
    // metadata (title, attendees) would then be the server's to choose.
    let forger = Identity::generate();
    let forged = base64::engine::general_purpose::STANDARD
        .encode(SignedStatement::sign(&manifest, &forger).to_bytes());
    let proxy = HostileProxy::start(&server.url("")).await;
    let served = proxy.rewrite_json("POST", "/api/v1/jobs/claim", move |claim| {
        claim["subject_manifest"] = forged.clone().into();
    });
    staffed.machine.server = proxy.url.clone();

    staffed.machine.ok(&["run", "--once"]).await;
    assert_eq!(served.count(), 1);
    let job = job_of(&client, vault, &request).await;
    assert_eq!(job.status, quorate_api::JobStatus::Failed, "{job:?}");
    let reason = job.failure.unwrap();
    assert!(
        reason.contains("not signed by its uploader"),
        "the reason says what is wrong: {reason}"
    );
    assert!(client.transcripts(vault).await.unwrap().is_empty());
    server.stop().await;
}

/// Why the job for `request` failed when the node ran once against a server that hands
/// it the request rewritten by `forge` (the signed request's wire bytes in, the server's
/// out); no transcript was made.
async fn failure_with_forged_request(
    server: &Server,
    staffed: &mut Staffed,
    request: &str,
    forge: impl Fn(Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
) -> String {
    let (client, vault) = signed_in(server, &staffed.admin).await;
    let proxy = HostileProxy::start(&server.url("")).await;
    let served = proxy.rewrite_json("POST", "/api/v1/jobs/claim", move |claim| {
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes = engine.decode(claim["request"].as_str().unwrap()).unwrap();
        claim["request"] = engine.encode(forge(bytes)).into();
    });
    staffed.machine.server = proxy.url.clone();

    staffed.machine.ok(&["run", "--once"]).await;
    assert_eq!(served.count(), 1);
    let job = job_of(&client, vault, request).await;
    assert_eq!(job.status, quorate_api::JobStatus::Failed, "{job:?}");
    assert!(client.transcripts(vault).await.unwrap().is_empty());
    job.failure.unwrap()
}

/// The request in `bytes` (a signed statement's wire form), as its signer signed it.
fn signed_request(bytes: &[u8]) -> UnlockRequest {
    let signed = SignedStatement::from_bytes(bytes).unwrap();
    signed.verify::<UnlockRequest>().unwrap().statement
}

/// A recorder's key (its machine taken) signs the request the server hands the node: the
/// node refuses it, for a recorder may only upload, and no key is rebuilt.
#[tokio::test]
async fn a_node_refuses_a_request_signed_by_a_recorder() {
    let server = Server::start(Backend::Sqlite).await;
    let (mut staffed, request) =
        quorate_transcription(&server, "The library opens on Sunday.").await;
    let recorder = quorate_e2e::recorder(&server, &staffed.admin, "obs-1").await;

    let taken = identity(&recorder);
    let reason = failure_with_forged_request(&server, &mut staffed, &request, move |bytes| {
        let mut request = signed_request(&bytes);
        request.requester = taken.fingerprint();
        SignedStatement::sign(&request, &taken).to_bytes()
    })
    .await;
    assert!(reason.contains("who may not sign it"), "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn a_node_refuses_a_request_whose_language_the_server_changed() {
    let server = Server::start(Backend::Sqlite).await;
    let (mut staffed, request) =
        quorate_transcription(&server, "The library opens on Sunday.").await;

    // The server names another language in the request the members signed (so that the
    // node mistranscribes it), keeping the requester's signature: it has no other.
    let reason = failure_with_forged_request(&server, &mut staffed, &request, |bytes| {
        let mut request = signed_request(&bytes);
        let body = request.encode();
        request.language = Some("fr".into());
        let changed = request.encode();
        // The wire form ends with the body and its u32 length: replace both.
        let mut forged = bytes[..bytes.len() - body.len() - 4].to_vec();
        forged.extend_from_slice(&(changed.len() as u32).to_be_bytes());
        forged.extend_from_slice(&changed);
        forged
    })
    .await;
    assert!(reason.contains("does not verify"), "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn a_node_refuses_a_roster_rolled_back_below_the_head_it_saw() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    // The node sees the roster grow to four entries (Ada, Bo, Cy, then Dee).
    staffed.machine.ok(&["status"]).await;
    let (_dee, joined) = quorate_e2e::pending_member(&server, &staffed.admin, "Dee").await;
    staffed
        .admin
        .ok(&[
            "members",
            "approve",
            joined["fingerprint"].as_str().unwrap(),
        ])
        .await;
    staffed.machine.ok(&["status"]).await;

    // Whoever writes the database deletes the newest entry: an older, valid prefix of the chain.
    sqlx::query("DELETE FROM roster_entries WHERE sequence = 3")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    for command in [&["status"][..], &["run", "--once"]] {
        let refused = staffed.machine.run(command).await;
        assert_eq!(refused.code, 3, "{command:?} must refuse: {refused:?}");
        assert!(
            refused
                .stderr
                .contains("does not contain the roster this device verified before")
                && refused.stderr.contains("4 entries"),
            "{refused:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_node_refuses_to_release_a_transcript_made_by_a_revoked_node() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (ada, bo, cy) = (&staffed.admin, &staffed.members[0], &staffed.members[1]);
    let (recording, _) = staffed
        .upload(
            cy,
            "The orchard lease was renewed for five years.",
            "Orchard",
        )
        .await;
    staffed.quorum(&recording, "transcribe").await;

    // A second node, approved for the same model, is asked to release the transcript.
    let (second, second_id) = enrol_node(&server, ada).await;
    let ggml = staffed
        .machine
        .folder
        .path()
        .join("models")
        .join(format!("{model}.ggml"));
    second
        .ok(&["models", "import", ggml.to_str().unwrap()])
        .await;
    approve_node(ada, &second, &second_id, &model).await;
    let request = ask(cy, &recording, &second_id, "release-transcript", "publish").await;
    ada.ok(&["approve", &request, "--yes"]).await;
    bo.ok(&["approve", &request, "--yes"]).await;

    // Then the node that made the transcript is revoked (its key may be stolen). Asked for
    // the approval of the node that made the transcript, the server answers with that node's
    // newest statement: its revocation, which names its keys too.
    ada.ok(&["nodes", "revoke", &staffed.node_id]).await;
    let (client, vault) = signed_in(&server, ada).await;
    second.ok(&["run", "--once"]).await;
    let job = job_of(&client, vault, &request).await;
    assert_eq!(job.status, quorate_api::JobStatus::Failed, "{job:?}");
    let reason = job.failure.unwrap();
    assert!(
        reason.contains("was revoked") && reason.contains(&staffed.node_id),
        "the reason says what is wrong: {reason}"
    );
    let refused = bo.run(&["transcript", &recording]).await;
    assert_ne!(refused.code, 0, "nothing was released: {refused:?}");
    server.stop().await;
}

/// A node invite code from `admin`.
async fn node_invite(admin: &Device) -> String {
    admin.ok(&["--json", "nodes", "invite"]).await.json()["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The genesis digest the admin's device pinned (its `config.toml`).
fn pinned_genesis(admin: &Device) -> String {
    let config = std::fs::read_to_string(admin.folder.path().join("config.toml")).unwrap();
    config
        .lines()
        .find_map(|line| line.strip_prefix("genesis = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("the admin's device pinned a genesis")
        .to_owned()
}

#[tokio::test]
async fn node_enrolment_shows_the_admins_and_refuses_a_genesis_other_than_the_one_given() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _members) = board(&server).await;
    let genesis = pinned_genesis(&admin);
    let ada = identity(&admin).fingerprint().short();

    // Honest: `--genesis` matches; the output names the admins to compare and the node's own
    // fingerprint for the admin to type.
    let machine = NodeMachine::new(&server);
    machine.ok(&["init"]).await;
    let code = node_invite(&admin).await;
    let enrolled = machine
        .ok(&[
            "enroll",
            "--code",
            &code,
            "--name",
            "gpu-1",
            "--genesis",
            &genesis,
        ])
        .await
        .stdout;
    let own = machine.identity().fingerprint().short();
    for shown in [&ada, &own, "Ada", "--fingerprint", "matches"] {
        assert!(enrolled.contains(shown), "{shown} in: {enrolled}");
    }
    let status = machine.ok(&["status"]).await.stdout;
    assert!(
        status.contains(&ada) && status.contains(&own),
        "status shows both: {status}"
    );

    // A server that answers with a chain of its own (its genesis, an admin key it holds).
    let vault = server.codes[0].vault_id;
    let mallory = Identity::generate();
    let forged = Roster::genesis_entry(vault, &mallory, "Ada", quorate_server::now()).unwrap();
    let forged_digest: String = forged
        .digest()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let forged_entry = base64::engine::general_purpose::STANDARD.encode(forged.to_bytes());
    let proxy = HostileProxy::start(&server.url("")).await;
    let enrol_lie = proxy.rewrite_json("POST", "/api/v1/enrol/node", move |answer| {
        answer["roster_genesis"] = forged_digest.clone().into();
    });
    proxy.rewrite_json("GET", "/api/v1/vaults/*/roster", move |answer| {
        answer["entries"] = serde_json::json!([forged_entry.clone()]);
    });

    // With the genesis read from an admin's device, the node refuses it and keeps nothing.
    let mut scripted = NodeMachine::new(&server);
    scripted.server = proxy.url.clone();
    scripted.ok(&["init"]).await;
    let code = node_invite(&admin).await;
    let refused = scripted
        .run(&[
            "enroll",
            "--code",
            &code,
            "--name",
            "gpu-2",
            "--genesis",
            &genesis,
        ])
        .await;
    assert_eq!(enrol_lie.count(), 1);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("not the genesis given with --genesis"),
        "{refused:?}"
    );
    assert!(!scripted.folder.path().join("node.toml").exists());

    // Without it, the node enrols but shows the forger's admin: not the fingerprint Ada reads
    // out, which is what its operator is told to compare.
    let mut trusting = NodeMachine::new(&server);
    trusting.server = proxy.url.clone();
    trusting.ok(&["init"]).await;
    let code = node_invite(&admin).await;
    let shown = trusting
        .ok(&["--json", "enroll", "--code", &code, "--name", "gpu-3"])
        .await
        .json();
    assert_eq!(
        shown["admins"][0]["fingerprint"],
        mallory.fingerprint().short()
    );
    assert_ne!(shown["admins"][0]["fingerprint"], ada.as_str());
    server.stop().await;
}

/// The sealed shares of `recording` as the database holds them: (member, index, sealed).
async fn stored_shares(server: &Server, recording: &str) -> Vec<(String, i32, Vec<u8>)> {
    sqlx::query_as(
        "SELECT member, share_index, sealed FROM recording_shares WHERE recording_id = $1",
    )
    .bind(recording)
    .fetch_all(server.app.db.pool())
    .await
    .unwrap()
}

/// Whoever writes the database puts back `shares` (from before a re-share) in place of the
/// recording's current ones.
async fn restore_old_shares(server: &Server, recording: &str, shares: &[(String, i32, Vec<u8>)]) {
    let pool = server.app.db.pool();
    sqlx::query("DELETE FROM recording_shares WHERE recording_id = $1")
        .bind(recording)
        .execute(pool)
        .await
        .unwrap();
    for (member, index, sealed) in shares {
        sqlx::query(
            "INSERT INTO recording_shares (recording_id, member, share_index, sealed) VALUES ($1, $2, $3, $4)",
        )
        .bind(recording)
        .bind(member)
        .bind(index)
        .bind(sealed)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// Ada and Cy approve a transcription of `recording` that `asker` asks for, with whatever
/// shares the server serves them, and the server counts a quorum at two; the node runs
/// once. Returns why the job failed.
async fn two_approvals_with_served_shares(
    server: &Server,
    staffed: &Staffed,
    asker: &Device,
    recording: &str,
) -> String {
    let (ada, cy) = (&staffed.admin, &staffed.members[1]);
    let (client, vault) = signed_in(server, ada).await;
    let request = ask(
        asker,
        recording,
        &staffed.node_id,
        "transcribe",
        "the minutes",
    )
    .await;
    sqlx::query("UPDATE unlock_requests SET threshold_k = 2 WHERE id = $1")
        .bind(&request)
        .execute(server.app.db.pool())
        .await
        .unwrap();
    ada.ok(&["approve", &request, "--yes"]).await;
    let approved = cy
        .ok(&["--json", "approve", &request, "--yes"])
        .await
        .json();
    assert_eq!(approved["status"], "quorate", "the lying server counts 2");
    staffed.machine.ok(&["run", "--once"]).await;
    let job = job_of(&client, vault, &request).await;
    assert_eq!(job.status, quorate_api::JobStatus::Failed, "{job:?}");
    job.failure.unwrap()
}

#[tokio::test]
async fn a_node_refuses_shares_from_before_a_re_share_that_raised_k() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (ada, cy) = (&staffed.admin, &staffed.members[1]);
    let (recording, _) = staffed
        .upload(cy, "The council approved the library budget.", "Budget")
        .await;
    let two_of_three = stored_shares(&server, &recording).await;

    // Dee joins and the policy rises to 3; the members re-share the recording's key to 3 of 4.
    let (dee, joined) = quorate_e2e::pending_member(&server, ada, "Dee").await;
    ada.ok(&[
        "members",
        "approve",
        joined["fingerprint"].as_str().unwrap(),
    ])
    .await;
    ada.ok(&["policy", "set", "--threshold", "3"]).await;
    staffed.machine.ok(&["status"]).await;
    let everyone = [ada, &staffed.members[0], cy, &dee];
    for member in everyone.iter().chain(&everyone) {
        member.ok(&["reshare"]).await;
    }
    assert_eq!(stored_shares(&server, &recording).await.len(), 4);

    // The server puts the old 2-of-3 shares back and counts two approvals as a quorum.
    let (client, vault) = signed_in(&server, ada).await;
    restore_old_shares(&server, &recording, &two_of_three).await;
    let reason = two_approvals_with_served_shares(&server, &staffed, &dee, &recording).await;
    assert!(
        reason.contains("not their share of the key's current sharing"),
        "the node names the stale share: {reason}"
    );

    // It also hides the re-share, so that the old sharing looks current: the vault's policy,
    // which the node pinned, still asks for 3.
    sqlx::query("DELETE FROM reshare_deals")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM reshares")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let reason = two_approvals_with_served_shares(&server, &staffed, &dee, &recording).await;
    assert!(
        reason.contains("carries 2 approvals and the key needs 3"),
        "the node counts against the policy: {reason}"
    );
    assert!(client.transcripts(vault).await.unwrap().is_empty());

    // Nor can it show the node the older policy: the node pinned the newer one (when it
    // looked at its status, before any job) and refuses to go back.
    sqlx::query("DELETE FROM vault_policies WHERE min_threshold = 3")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let rolled_back = staffed.machine.run(&["status"]).await;
    assert_eq!(rolled_back.code, 3, "{rolled_back:?}");
    assert!(rolled_back.stderr.contains("a rollback"), "{rolled_back:?}");
    server.stop().await;
}

/// A key holder leaves and the admin's `members remove` rotates the search key; then the
/// database serves the node the old key as the newest (the rotation withheld, the node's
/// old copy put back). The node refuses to index released minutes under a key the leaver
/// holds: the release job fails saying why, and nothing is released.
#[tokio::test]
async fn a_node_will_not_index_minutes_under_a_search_key_a_removed_member_holds() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (ada, bo, cy) = (&staffed.admin, &staffed.members[0], &staffed.members[1]);
    let (recording, _) = staffed
        .upload(cy, "The ferry timetable changes in May.", "Ferry")
        .await;
    staffed.quorum(&recording, "transcribe").await;
    let pool = server.app.db.pool();
    let node_copy: (Vec<u8>,) =
        sqlx::query_as("SELECT sealed FROM search_key_copies WHERE holder = $1 AND generation = 0")
            .bind(&staffed.node_id)
            .fetch_one(pool)
            .await
            .unwrap();

    // Dee joins (and is sealed the search key), then leaves: the admin's device rotates it.
    let (_dee, joined) = quorate_e2e::pending_member(&server, ada, "Dee").await;
    let dee = joined["fingerprint"].as_str().unwrap();
    ada.ok(&["members", "approve", dee]).await;
    let removed = ada.ok(&["members", "remove", dee]).await;
    assert!(
        removed.stderr.contains("The search key is replaced"),
        "{removed:?}"
    );

    // The server withholds the rotation and serves the node its copy of the old key.
    sqlx::query("DELETE FROM search_key_rotations")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM search_key_copies")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO search_key_copies (vault_id, generation, holder, sealed, created_at) VALUES ($1, 0, $2, $3, 0)",
    )
    .bind(server.codes[0].vault_id.to_string())
    .bind(&staffed.node_id)
    .bind(node_copy.0)
    .execute(pool)
    .await
    .unwrap();

    let request = ask(
        cy,
        &recording,
        &staffed.node_id,
        "release-transcript",
        "publish",
    )
    .await;
    ada.ok(&["approve", &request, "--yes"]).await;
    bo.ok(&["approve", &request, "--yes"]).await;
    staffed.machine.ok(&["run", "--once"]).await;
    let (client, vault) = signed_in(&server, ada).await;
    let job = job_of(&client, vault, &request).await;
    assert_eq!(job.status, quorate_api::JobStatus::Failed, "{job:?}");
    let reason = job.failure.unwrap();
    assert!(
        reason.contains("removed a member who holds it")
            && reason.contains("quorate search-key rotate"),
        "the reason says what is wrong and what to do: {reason}"
    );
    let refused = bo.run(&["transcript", &recording]).await;
    assert_ne!(refused.code, 0, "nothing was released: {refused:?}");
    server.stop().await;
}
