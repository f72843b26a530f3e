//! The `quorate` command end to end, against a real server on port 0, on SQLite and on
//! PostgreSQL: an admin bootstraps, invites and approves two members (2-of-3), a member
//! uploads a real audio file, another asks for it to be transcribed, two others approve, the
//! request is quorate and a job waits for the node — which can rebuild the key and hear the
//! exact recording. Plus the refusals a member's device must make on its own.

use quorate_client::Client;
use quorate_crypto::{Identity, envelope};

use quorate_e2e::{Backend, Device, Server, wav};

/// An enrolled board: the admin and two members, policy 2.
struct Board {
    admin: Device,
    bo: Device,
    cy: Device,
}

async fn board(server: &Server) -> Board {
    let (admin, mut members) = quorate_e2e::board(server).await;
    let cy = members.pop().unwrap();
    let bo = members.pop().unwrap();
    Board { admin, bo, cy }
}

quorate_server::per_backend!(from_nothing_to_a_quorate_request_with_the_command);

async fn from_nothing_to_a_quorate_request_with_the_command(backend: Backend) {
    let server = Server::start(backend).await;
    let Board { admin, bo, cy } = board(&server).await;
    let listed = admin.ok(&["--json", "members"]).await.json();
    assert_eq!(
        listed["members"].as_array().unwrap().len(),
        3,
        "{backend:?}"
    );

    // A node makes its keys and enrols; the admin approves it; the node sees it.
    let (machine, node_id) = quorate_e2e::enrol_node(&server, &admin).await;
    assert_eq!(
        machine.ok(&["--json", "status"]).await.json()["state"],
        "pending approval"
    );
    let imported = machine
        .ok(&[
            "--json",
            "models",
            "import",
            quorate_e2e::model_wheel().to_str().unwrap(),
        ])
        .await
        .json();
    let model = imported["sha256"].as_str().unwrap().to_owned();
    admin
        .ok(&[
            "nodes",
            "approve",
            &node_id,
            "--fingerprint",
            &machine.identity().fingerprint().short(),
            "--model-sha256",
            &model,
            "--hardware",
            "rack 3, 2-core EPYC",
        ])
        .await;
    let status = machine.ok(&["--json", "status"]).await.json();
    assert_eq!(
        (status["state"].as_str(), status["model_sha256"].as_str()),
        (Some("approved by Ada"), Some(model.as_str()))
    );

    // Bo uploads a real audio file.
    let spoken =
        "The budget committee approved the new library and the repairs to the town hall roof.";
    let (uploaded, _) = quorate_e2e::upload_speech(&bo, spoken, "Budget committee").await;
    let recording = uploaded["recording_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (uploaded["threshold"].as_u64(), uploaded["shares"].as_u64()),
        (Some(2), Some(3))
    );
    let listed = cy.ok(&["--json", "recordings"]).await.json();
    assert_eq!(
        listed[0]["title"], "Budget committee",
        "members open the sealed title"
    );
    assert!(
        std::fs::read_dir(bo.folder.path().join("uploads"))
            .unwrap()
            .next()
            .is_none(),
        "nothing of a finished upload stays on the device"
    );

    // Cy asks; Ada and Bo approve on their devices.
    let asked = cy
        .ok(&[
            "--json",
            "request",
            &recording,
            "--node",
            &node_id,
            "--reason",
            "minutes of the budget meeting",
        ])
        .await
        .json();
    let request = asked["request_id"].as_str().unwrap().to_owned();
    let awaiting = admin.ok(&["--json", "requests"]).await.json();
    assert_eq!(awaiting[0]["reason"], "minutes of the budget meeting");
    assert!(
        cy.ok(&["--json", "requests"])
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    let own = cy.run(&["approve", &request, "--yes"]).await;
    assert_eq!(own.code, 4, "the requester's own vote: {own:?}");
    assert!(own.stderr.contains("own_request"), "{own:?}");
    let first = admin
        .ok(&["--json", "approve", &request, "--yes"])
        .await
        .json();
    assert_eq!(
        (first["status"].as_str(), first["approvals"].as_u64()),
        (Some("open"), Some(1))
    );
    let second = bo
        .ok(&["--json", "approve", &request, "--yes"])
        .await
        .json();
    assert_eq!(second["status"], "quorate");

    // The node carries out the job: it rebuilds the key from the two re-sealed shares,
    // decrypts and transcribes in memory, and stores the transcript sealed again.
    machine.ok(&["run", "--once"]).await;
    let jobs = admin.ok(&["--json", "requests", "--all"]).await.json();
    assert_eq!(jobs[0]["status"], "quorate");
    let vault = server.codes[0].vault_id;
    let mut reader = Client::new(&server.url(""));
    reader
        .sign_in(vault, &quorate_e2e::identity(&admin))
        .await
        .unwrap();
    let transcripts = reader.transcripts(vault).await.unwrap();
    assert_eq!(transcripts.len(), 1, "{backend:?}: one transcript");

    // Two members open their shares of the transcript key on their devices and read it.
    let transcript_id = transcripts[0].transcript_id.parse().unwrap();
    let signed =
        quorate_crypto::statement::SignedStatement::from_bytes(&transcripts[0].manifest).unwrap();
    let manifest = signed
        .verify::<quorate_crypto::statement::TranscriptManifest>()
        .unwrap()
        .statement;
    assert_eq!(manifest.model_sha256.to_vec(), hex_decode(&model));
    let mut shares = Vec::new();
    for device in [&admin, &bo] {
        let identity = quorate_e2e::identity(device);
        let mut client = Client::new(&server.url(""));
        client.sign_in(vault, &identity).await.unwrap();
        let share = client.transcript_share(vault, transcript_id).await.unwrap();
        let binding = manifest
            .split
            .binding_for(
                vault,
                quorate_crypto::threshold::Subject::Transcript(transcript_id),
                &identity.fingerprint(),
            )
            .unwrap();
        shares.push(
            quorate_crypto::threshold::open_share(&share.sealed, identity.age_key(), &binding)
                .unwrap(),
        );
    }
    let key = manifest
        .split
        .rebuild_key(&manifest.subject(), &shares)
        .unwrap();
    let mut sealed = Vec::new();
    reader
        .download_transcript(vault, transcript_id, u64::MAX, &mut sealed)
        .await
        .unwrap();
    let mut text = Vec::new();
    envelope::decrypt(&sealed[..], &mut text, &key).unwrap();
    let transcript: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let heard: Vec<&str> = transcript["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|segment| segment["text"].as_str().unwrap())
        .collect();
    let rate = quorate_e2e::word_error_rate(spoken, &heard.join(" "));
    assert!(
        rate < 0.1,
        "{backend:?}: word error rate {rate:.2}: {heard:?}"
    );

    let verified = cy.ok(&["--json", "audit", "verify"]).await.json();
    assert!(verified["entries"].as_u64().unwrap() > 15);
    server.stop().await;
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn a_roster_with_an_injected_member_makes_upload_refuse() {
    let server = Server::start(Backend::Sqlite).await;
    let Board { admin, bo, .. } = board(&server).await;
    // The server (or whoever holds its database) appends an entry adding its own key,
    // signed by a key of its own: every device refuses the chain.
    let eve = Identity::generate();
    let vault: quorate_crypto::VaultId = server.codes[0].vault_id;
    let forged = quorate_crypto::statement::SignedStatement::sign(
        &quorate_crypto::statement::RosterEntry {
            vault_id: vault,
            sequence: 3,
            previous: [0; 32],
            change: quorate_crypto::statement::RosterChange::Add,
            role: quorate_crypto::statement::Role::Admin,
            member: eve.public(),
            name: "Eve".into(),
            issued_at: 1,
        },
        &eve,
    );
    sqlx::query(
        "INSERT INTO roster_entries (vault_id, sequence, statement, digest, created_at) VALUES ($1, 3, $2, $3, 1)",
    )
    .bind(vault.to_string())
    .bind(forged.to_bytes())
    .bind(forged.digest().to_vec())
    .execute(server.app.db.pool())
    .await
    .unwrap();
    let file = bo.folder.path().join("meeting.wav");
    std::fs::write(&file, wav(1)).unwrap();
    let refused = bo
        .run(&["upload", file.to_str().unwrap(), "--title", "Board"])
        .await;
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(refused.stderr.starts_with("error: refused:"), "{refused:?}");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recordings")
        .fetch_one(server.app.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was uploaded");
    assert_eq!(
        admin.run(&["members"]).await.code,
        3,
        "every device refuses it"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_upload_killed_half_way_resumes_to_the_same_recording() {
    use quorate_crypto::{
        IdentityFile, secrecy::SecretString, statement::RecordingManifest, threshold,
    };
    let server = Server::start(Backend::Sqlite).await;
    let Board { admin, bo, .. } = board(&server).await;
    let audio = wav(60);
    let file = bo.folder.path().join("long-meeting.wav");
    std::fs::write(&file, &audio).unwrap();
    let pool = server.app.db.pool().clone();
    let in_flight = || async {
        sqlx::query_as::<_, (i64, i64)>("SELECT upload_offset, locked_until FROM uploads")
            .fetch_optional(&pool)
            .await
            .unwrap()
    };

    // Slowly, then killed while the PATCH is streaming.
    let mut slow = bo
        .command(&[
            "upload",
            file.to_str().unwrap(),
            "--title",
            "Long meeting",
            "--limit-rate",
            "256K",
        ])
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !matches!(in_flight().await, Some((_, locked)) if locked > 0) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 400, "the upload never started");
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    slow.start_kill().unwrap();
    slow.wait().await.unwrap();
    let mut stored = None;
    for _ in 0..200 {
        if let Some((offset, 0)) = in_flight().await {
            stored = Some(offset);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the server recorded what arrived");
    assert!(stored > 0, "part of it arrived before the kill");

    // A run with other meeting details does not resume it as if they were these.
    let other_title = bo
        .run(&[
            "upload",
            file.to_str().unwrap(),
            "--title",
            "Another meeting",
        ])
        .await;
    assert!(
        other_title.code == 2
            && other_title
                .stderr
                .contains("was started with other meeting details"),
        "{other_title:?}"
    );

    // The next run resumes the same recording from the server's offset.
    let resumed = bo
        .ok(&[
            "--json",
            "upload",
            file.to_str().unwrap(),
            "--title",
            "Long meeting",
        ])
        .await;
    assert!(resumed.stderr.contains("Resuming"), "{resumed:?}");
    let recording = resumed.json()["recording_id"].as_str().unwrap().to_owned();
    let created: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recordings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(created, 1, "one recording, not a second one");

    // Two members rebuild the key from their own shares: the ciphertext on the server is
    // the one the first run made, and it opens to exactly the audio.
    let mut shares = Vec::new();
    let mut manifest = None;
    let mut ciphertext = Vec::new();
    for device in [&admin, &bo] {
        let identity = IdentityFile::read(
            &std::fs::read(device.folder.path().join("identity.age")).unwrap(),
            Some(&SecretString::from(quorate_e2e::PASSPHRASE.to_owned())),
        )
        .unwrap();
        let mut client = Client::new(&server.url(""));
        let vault = server.codes[0].vault_id;
        client.sign_in(vault, &identity).await.unwrap();
        let id = recording.parse().unwrap();
        let view = client.recording(vault, id).await.unwrap();
        let signed =
            quorate_crypto::statement::SignedStatement::from_bytes(&view.manifest).unwrap();
        let parsed = signed.verify::<RecordingManifest>().unwrap().statement;
        let share = client.recording_share(vault, id).await.unwrap();
        let binding = parsed.share_binding(&identity.fingerprint()).unwrap();
        shares.push(threshold::open_share(&share.sealed, identity.age_key(), &binding).unwrap());
        if ciphertext.is_empty() {
            client
                .download_recording(vault, id, None, u64::MAX, &mut ciphertext)
                .await
                .unwrap();
        }
        manifest = Some(parsed);
    }
    let manifest = manifest.unwrap();
    let key = manifest
        .split
        .rebuild_key(&manifest.subject(), &shares)
        .unwrap();
    let mut heard = Vec::new();
    envelope::decrypt(&ciphertext[..], &mut heard, &key).unwrap();
    assert!(heard == audio, "byte-identical to the file");
    server.stop().await;
}

/// Replaces what differs between runs (folders, the server's port) in command output.
fn normalise(text: &str, device: &Device) -> String {
    text.replace(&device.folder.path().display().to_string(), "<config>")
        .replace(&device.server, "<server>")
}

#[tokio::test]
async fn help_and_error_messages_are_stable() {
    let server = Server::start(Backend::Sqlite).await;
    let device = Device::new(&server);
    let mut transcript = String::new();
    let mut record = |title: &str, run: &quorate_e2e::Run| {
        transcript.push_str(&format!(
            "$ quorate {title}\nexit {}\n{}{}\n",
            run.code,
            normalise(&run.stdout, &device),
            normalise(&run.stderr, &device)
        ));
    };
    for arguments in [
        vec!["--help"],
        vec!["upload", "--help"],
        vec!["members"],
        vec!["members", "approve", "ABCD"],
        vec!["upload", "missing.wav", "--title", "x"],
        vec!["approve", "not-a-request", "--yes"],
        vec!["search", "--help"],
        vec!["search", " ,.; "],
        vec!["transcript", "not-a-recording", "--format", "docx"],
    ] {
        let run = device.run(&arguments).await;
        record(&arguments.join(" "), &run);
    }
    device.ok(&["keygen"]).await;
    let refused = device
        .run(&[
            "enroll",
            "--code",
            "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF",
            "--name",
            "X",
        ])
        .await;
    assert_eq!(refused.code, 4);
    record(
        "enroll --code AAAA-BBBB-CCCC-DDDD-EEEE-FFFF --name X",
        &refused,
    );
    let again = device.run(&["keygen"]).await;
    assert_eq!(again.code, 2);
    record("keygen (again)", &again);
    let unreachable = device
        .run(&[
            "--server",
            "http://127.0.0.1:9",
            "enroll",
            "--code",
            "X",
            "--name",
            "X",
        ])
        .await;
    assert_eq!(unreachable.code, 5, "{unreachable:?}");

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/cli.txt");
    if std::env::var_os("QUORATE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &transcript).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .expect("tests/snapshots/cli.txt exists (QUORATE_BLESS=1 writes it)");
    assert!(
        expected == transcript,
        "the command's help or messages changed; review and bless with QUORATE_BLESS=1:\n{transcript}"
    );
    server.stop().await;
}
