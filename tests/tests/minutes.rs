//! Approved minutes end to end, with the real node and real speech: a recording is
//! transcribed, then released by a second quorum; members search it (the query is blinded
//! on the device: the HTTP traffic of a search carries none of its words) and export it in
//! every format; a member approved later receives the keys from the admin's device; an
//! unreleased transcript is never found. Then the zero-knowledge check: every byte the
//! server keeps (its database files and its object folder) is read, and none of the
//! transcript's words, no run of the audio and no key (members', the node's, the search key,
//! and the meeting's recording, transcript and release keys) is found in them.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use quorate_client::Client;
use quorate_e2e::{Backend, Device, Server, Staffed, identity, pending_member};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP proxy in front of `upstream` that keeps every byte clients send through it.
async fn recording_proxy(upstream: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let log = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 << 10];
                while let Ok(read) = client_read.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buffer[..read]);
                    if server_write.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    (url, log)
}

/// Every file under `folder`, recursively.
fn files(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn released_minutes_are_searched_and_exported_and_the_server_keeps_no_word_of_them() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (ada, bo) = (&staffed.admin, &staffed.members[0]);

    let spoken =
        "The river bridge repairs will cost eleven million pounds and finish before winter.";
    let (recording, audio) = staffed
        .upload(&staffed.members[1], spoken, "Bridge committee")
        .await;
    staffed.quorum(&recording, "transcribe").await;
    // Transcribed but not released: nothing is searchable yet, and there is no export.
    let found = bo.ok(&["--json", "search", "bridge repairs"]).await.json();
    assert_eq!(found["total"], 0, "{found}");
    let refused = bo.run(&["transcript", &recording]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("no released transcript"),
        "{refused:?}"
    );

    staffed.quorum(&recording, "release-transcript").await;
    let again = staffed.members[1]
        .run(&[
            "request",
            &recording,
            "--node",
            &staffed.node_id,
            "--purpose",
            "release-transcript",
            "--reason",
            "twice",
        ])
        .await;
    assert!(again.stderr.contains("already_released"), "{again:?}");

    // A second meeting is transcribed but never released.
    let hidden = "The orchard tenancy was discussed in private.";
    let (unreleased, _) = staffed.upload(&staffed.members[1], hidden, "Orchard").await;
    staffed.quorum(&unreleased, "transcribe").await;

    // Search, through a proxy that keeps what the device sends.
    let (proxy, sent) = recording_proxy(&server.url("")).await;
    let found = bo
        .ok(&["--server", &proxy, "--json", "search", "Bridge REPAIRS"])
        .await
        .json();
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["hits"][0]["title"], "Bridge committee");
    assert_eq!(found["hits"][0]["recording_id"], recording.as_str());
    assert_eq!(found["hits"][0]["date"], "2026-11-24 10:00 UTC");
    let snippet = found["hits"][0]["snippets"][0]["text"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(snippet.contains("bridge"), "{found}");
    let sent = String::from_utf8_lossy(&sent.lock().unwrap()).to_lowercase();
    assert!(
        sent.contains("/search"),
        "the search went through the proxy"
    );
    for word in ["bridge", "repairs"] {
        assert!(!sent.contains(word), "the search request carried {word:?}");
    }
    let shown = bo.ok(&["search", "bridge"]).await.stdout;
    assert!(
        shown.contains("Bridge committee") && shown.contains("**"),
        "{shown}"
    );
    let orchard = bo.ok(&["--json", "search", "orchard tenancy"]).await.json();
    assert_eq!(
        orchard["total"], 0,
        "an unreleased transcript is never found"
    );

    // Exports.
    let minutes = bo
        .ok(&["transcript", &recording, "--format", "md"])
        .await
        .stdout;
    assert!(minutes.starts_with("# Bridge committee\n"), "{minutes}");
    assert!(minutes.contains("Ada, Bo") && minutes.contains("2026-11-24 10:00 UTC"));
    assert!(minutes.to_lowercase().contains("bridge"), "{minutes}");
    let srt = bo
        .ok(&["transcript", &recording, "--format", "srt"])
        .await
        .stdout;
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    let vtt = bo
        .ok(&["transcript", &recording, "--format", "vtt"])
        .await
        .stdout;
    assert!(vtt.starts_with("WEBVTT\n\n00:00:0"), "{vtt}");
    let txt = bo
        .ok(&["transcript", &recording, "--format", "txt"])
        .await
        .stdout;
    assert!(txt.starts_with("[0:0"), "{txt}");
    let json: serde_json::Value = serde_json::from_str(
        &bo.ok(&["transcript", &recording, "--format", "json"])
            .await
            .stdout,
    )
    .unwrap();
    let heard: Vec<String> = json["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|segment| segment["text"].as_str().unwrap().to_owned())
        .collect();
    let rate = quorate_e2e::word_error_rate(spoken, &heard.join(" "));
    assert!(rate < 0.2, "word error rate {rate:.2}: {heard:?}");
    let bad = bo
        .run(&["transcript", &recording, "--format", "docx"])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");

    // Dee joins after the release; approving her seals her the search key and the copy.
    let (dee, joined) = pending_member(&server, ada, "Dee").await;
    ada.ok(&[
        "members",
        "approve",
        joined["fingerprint"].as_str().unwrap(),
    ])
    .await;
    let found = dee.ok(&["--json", "search", "bridge"]).await.json();
    assert_eq!(found["total"], 1, "{found}");
    assert!(
        dee.ok(&["transcript", &recording, "--format", "txt"])
            .await
            .stdout
            .to_lowercase()
            .contains("bridge")
    );

    // Dee leaves. She held the search key, so Ada's device replaces it and re-indexes the
    // released minutes: they are still found, and the old key's tokens find nothing.
    let vault = server.codes[0].vault_id;
    let mut client = Client::new(&server.url(""));
    let bo_identity = identity(bo);
    client.sign_in(vault, &bo_identity).await.unwrap();
    let before = client.roster(vault, &pinned_genesis(bo)).await.unwrap();
    let old_key = client
        .open_search_key(vault, &before, bo_identity.age_key())
        .await
        .unwrap()
        .unwrap()
        .current;
    let removed = ada
        .ok(&["members", "remove", joined["fingerprint"].as_str().unwrap()])
        .await;
    assert!(
        removed
            .stderr
            .contains("The search key is replaced. 1 released minutes re-indexed"),
        "{removed:?}"
    );
    let found = bo.ok(&["--json", "search", "bridge"]).await.json();
    assert_eq!(found["total"], 1, "{found}");
    let old_tokens = [old_key.token("bridge")];
    let old_found = client
        .search(vault, (&old_tokens, None), 10, 0)
        .await
        .unwrap();
    assert_eq!(old_found.total, 0, "the old key's tokens find nothing");
    assert!(ada.ok(&["--json", "audit", "verify"]).await.json()["entries"].as_u64() > Some(40));

    // The zero-knowledge check. What the server must never hold:
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for text in heard.iter().map(String::as_str).chain([hidden]) {
        for word in text
            .split(|c: char| !c.is_alphabetic())
            .filter(|word| word.chars().count() > 3)
        {
            let lower = word.to_lowercase();
            let capital = lower[..1].to_uppercase() + &lower[1..];
            for form in [lower.clone(), capital, lower.to_uppercase()] {
                needles.push((format!("the word {form:?}"), form.into_bytes()));
            }
        }
    }
    for offset in (44..audio.len().saturating_sub(32)).step_by(1000) {
        let run = &audio[offset..offset + 32];
        let distinct: std::collections::HashSet<_> = run.iter().collect();
        if distinct.len() >= 12 {
            needles.push((format!("audio bytes at {offset}"), run.to_vec()));
        }
    }
    let roster = client.roster(vault, &pinned_genesis(bo)).await.unwrap();
    let search_key = client
        .open_search_key(vault, &roster, bo_identity.age_key())
        .await
        .unwrap()
        .unwrap()
        .current;
    for (name, key) in [
        ("the search key", &search_key),
        ("the old search key", &old_key),
    ] {
        needles.push((name.into(), key.expose_secret().to_vec()));
        needles.push((
            format!("{name} (hex)"),
            hex(key.expose_secret()).into_bytes(),
        ));
    }
    for (name, secret) in meeting_keys(&server, &[ada, bo], &recording, &roster).await {
        needles.push((name.to_owned(), secret.expose_secret().to_vec()));
        needles.push((
            format!("{name} (age form)"),
            secret.to_age_string().as_bytes().to_vec(),
        ));
    }
    let mut keys = vec![
        ("Ada's key", identity(ada)),
        ("Bo's key", identity(bo)),
        ("Cy's key", identity(&staffed.members[1])),
        ("the node's key", staffed.machine.identity()),
    ];
    keys.push(("Dee's key", identity(&dee)));
    for (name, identity) in &keys {
        let secret = identity.age_key();
        needles.push((name.to_string(), secret.expose_secret().to_vec()));
        needles.push((
            format!("{name} (age form)"),
            secret.to_age_string().as_bytes().to_vec(),
        ));
    }
    let stored = files(server.data_dir());
    assert!(
        stored.len() >= 3,
        "the database and the objects: {stored:?}"
    );
    assert!(
        stored.iter().any(|(name, _)| name.contains("released")),
        "a released copy is among the objects"
    );
    for (name, bytes) in &stored {
        for (what, needle) in &needles {
            assert!(!contains(bytes, needle), "{name} holds {what}");
        }
    }
    server.stop().await;
}

/// The meeting's keys, rebuilt as members' devices can: the recording key X and the
/// transcript key T from the shares of `devices`, and the release key R from the first one's
/// sealed copy.
async fn meeting_keys(
    server: &Server,
    devices: &[&Device],
    recording: &str,
    roster: &quorate_crypto::roster::Roster,
) -> Vec<(&'static str, quorate_crypto::AgeSecretKey)> {
    use quorate_crypto::{
        statement::{RecordingManifest, SignedStatement, TranscriptManifest},
        threshold::open_share,
    };
    let vault = server.codes[0].vault_id;
    let recording: quorate_crypto::RecordingId = recording.parse().unwrap();
    let mut clients = Vec::new();
    for device in devices {
        let identity = identity(device);
        let mut client = Client::new(&server.url(""));
        client.sign_in(vault, &identity).await.unwrap();
        clients.push((identity, client));
    }
    let view = clients[0].1.recording(vault, recording).await.unwrap();
    let manifest = SignedStatement::from_bytes(&view.manifest)
        .unwrap()
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    let released = clients[0].1.released(vault, Some(recording)).await.unwrap();
    let transcript_view = clients[0]
        .1
        .transcripts(vault)
        .await
        .unwrap()
        .into_iter()
        .find(|view| view.transcript_id == released[0].transcript_id)
        .unwrap();
    let transcript = SignedStatement::from_bytes(&transcript_view.manifest)
        .unwrap()
        .verify::<TranscriptManifest>()
        .unwrap()
        .statement;
    let (mut recording_shares, mut transcript_shares) = (Vec::new(), Vec::new());
    for (identity, client) in &clients {
        let me = identity.fingerprint();
        let sealed = client.recording_share(vault, recording).await.unwrap();
        let binding = manifest.share_binding(&me).unwrap();
        recording_shares.push(open_share(&sealed.sealed, identity.age_key(), &binding).unwrap());
        let sealed = client
            .transcript_share(vault, transcript.transcript_id)
            .await
            .unwrap();
        let binding = transcript.share_binding(&me).unwrap();
        transcript_shares.push(open_share(&sealed.sealed, identity.age_key(), &binding).unwrap());
    }
    let x = manifest
        .split
        .rebuild_key(&manifest.subject(), &recording_shares)
        .unwrap();
    let t = transcript
        .split
        .rebuild_key(&transcript.subject(), &transcript_shares)
        .unwrap();
    let (identity, client) = &clients[0];
    let release = client
        .release_manifest(vault, roster, &released[0])
        .await
        .unwrap();
    let r = client
        .release_key(vault, &release, identity.age_key())
        .await
        .unwrap();
    vec![
        ("the recording key X", x),
        ("the transcript key T", t),
        ("the release key R", r),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The roster genesis `device` pinned when it enrolled (from its config.toml).
fn pinned_genesis(device: &Device) -> [u8; 32] {
    let config = std::fs::read_to_string(device.folder.path().join("config.toml")).unwrap();
    let line = config
        .lines()
        .find(|line| line.trim_start().starts_with("genesis = "))
        .unwrap();
    let text = line.split('"').nth(1).unwrap();
    let mut genesis = [0u8; 32];
    for (index, byte) in genesis.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).unwrap();
    }
    genesis
}
