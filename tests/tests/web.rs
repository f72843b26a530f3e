//! The web UI end to end, in Debian's Chromium driven by playwright-core
//! (`web-admin/e2e/browser.mjs`), against a real server that serves the built UI, with the
//! vault, the members, the node and the speech set up by the real CLI and node:
//! - a member enrolled but not approved cannot sign in and is told why;
//! - an admin signs in and approves a pending member by typing the fingerprint they read out
//!   (the roster entry signed in the browser), and the CLI's devices accept the new roster;
//!   the admin approves the node for its model there too, typing the node's fingerprint, and
//!   the node runs on that approval;
//! - the server lies (Playwright's `page.route` rewrites its answers in the browser): it lists
//!   the pending member, then the node, with an attacker's keys beside the honest fingerprint,
//!   and the browser signs nothing; it answers `/me` for another vault, and sign-in is
//!   refused; it serves the audit log without the head the browser verified, and the log is
//!   refused;
//! - a member signs in, sees the request with every signature checked, approves it (share
//!   re-sealed to the node and vote signed in the browser); the server counts it, the node
//!   transcribes with it, and the CLI's `audit verify` accepts the log;
//! - the member approved in the browser searches released minutes and finds the meeting,
//!   using the search key the admin's browser sealed to them; a member approved in the
//!   browser after the release receives the copy's key from it and reads the minutes.
//!
//! Screenshots of every page go to `target/tmp/web-screenshots`.

use std::path::PathBuf;

use quorate_e2e::{Device, PASSPHRASE, Server, Staffed, ask, pending_member, web_admin};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots")
}

/// The vault a device enrolled in (its `config.toml`).
fn vault_of(device: &Device) -> String {
    let config = std::fs::read_to_string(device.folder.path().join("config.toml")).unwrap();
    config
        .lines()
        .find_map(|line| line.strip_prefix("vault = "))
        .map(|value| value.trim_matches('"').to_owned())
        .expect("the device's config names its vault")
}

/// Runs one browser story signed in as `device` (called `name`); returns what it printed.
async fn browser(
    story: &str,
    server: &Server,
    device: &Device,
    name: &str,
    extra: &[(&str, &str)],
) -> String {
    let identity = device.folder.path().join("identity.age");
    let identity = identity.to_str().unwrap();
    let vault = vault_of(device);
    let mut all = vec![
        ("QUORATE_VAULT", vault.as_str()),
        ("QUORATE_IDENTITY", identity),
    ];
    all.extend_from_slice(extra);
    story_run(story, server, name, &all).await
}

/// Runs one browser story as `name` with the settings `extra`; returns what it printed.
async fn story_run(story: &str, server: &Server, name: &str, extra: &[(&str, &str)]) -> String {
    let output = tokio::process::Command::new("node")
        .arg("e2e/browser.mjs")
        .arg(story)
        .current_dir(web_admin())
        .env("QUORATE_URL", server.url(""))
        .env("QUORATE_PASSPHRASE", PASSPHRASE)
        .env("QUORATE_NAME", name)
        .env("QUORATE_SCREENSHOTS", screenshots())
        .envs(extra.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (the test command installs web-admin's packages with npm ci)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser story {story} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn an_admin_approves_a_member_a_member_votes_and_searches_in_the_browser() {
    let server = quorate_e2e::server_with_web_ui().await;

    // The UI is served at / under a strict Content-Security-Policy; unknown paths are still
    // the API's JSON 404.
    let index = reqwest::get(server.url("")).await.unwrap();
    assert_eq!(index.status(), 200);
    let policy = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(
        index
            .text()
            .await
            .unwrap()
            .contains("<title>Quorate</title>")
    );
    let missing = reqwest::get(server.url("/api/v1/nothing-here"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<serde_json::Value>().await.unwrap()["code"],
        "not_found"
    );

    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    let (ada, bo, cy) = (&staffed.admin, &staffed.members[0], &staffed.members[1]);

    // Dee enrols and waits; Ada approves her in the browser with the fingerprint Dee reads
    // out, and the node with the fingerprint its machine shows, each after refusing the keys
    // a lying server swapped in.
    let (dee, joined) = pending_member(&server, ada, "Dee").await;
    browser("refused-while-pending", &server, &dee, "Dee", &[]).await;
    // A recording machine enrols with a recorder invite and waits too.
    let (_machine, recorder) = quorate_e2e::pending_recorder(&server, ada, "jibri-1").await;
    let node_fingerprint = staffed.machine.identity().fingerprint().short();
    let approved = browser(
        "admin-approves-member",
        &server,
        ada,
        "Ada",
        &[
            ("QUORATE_PENDING", "Dee"),
            ("QUORATE_PENDING_RECORDER", "jibri-1"),
            (
                "QUORATE_PENDING_RECORDER_FINGERPRINT",
                recorder["fingerprint"].as_str().unwrap(),
            ),
            ("QUORATE_NODE", "gpu-1"),
            ("QUORATE_NODE_FINGERPRINT", &node_fingerprint),
            ("QUORATE_MODEL", &model),
            (
                "QUORATE_PENDING_FINGERPRINT",
                joined["fingerprint"].as_str().unwrap(),
            ),
        ],
    )
    .await;
    assert!(
        approved.contains("refused the keys the server swapped in for Dee; nothing sent"),
        "{approved}"
    );
    assert!(
        approved.contains("refused the keys the server swapped in for node gpu-1; nothing sent"),
        "{approved}"
    );
    assert!(
        approved.contains("recorder jibri-1 approved as a recorder"),
        "{approved}"
    );
    let recorders = ada.ok(&["--json", "recorders"]).await.json();
    assert_eq!(recorders["recorders"][0]["name"], "jibri-1");
    // The CLI replays the roster with the browser's entry in it: Dee's own keys, once.
    let listed = cy.ok(&["--json", "members"]).await.json();
    let dees: Vec<_> = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|member| member["name"] == "Dee")
        .collect();
    assert_eq!(dees.len(), 1, "{listed}");
    assert_eq!(dees[0]["fingerprint"], joined["fingerprint"], "{listed}");

    // Cy uploads his own track, naming himself its speaker, and asks for a transcription;
    // Ada approves with the CLI, Bo in the browser.
    let spoken =
        "The river bridge repairs will cost eleven million pounds and finish before winter.";
    let file = cy.folder.path().join("bridge.wav");
    std::fs::write(&file, quorate_e2e::speech(spoken)).unwrap();
    let uploaded = cy
        .ok(&[
            "--json",
            "upload",
            file.to_str().unwrap(),
            "--title",
            "Bridge committee",
            "--speaker",
            "Cy",
        ])
        .await
        .json();
    let recording = uploaded["recording_id"].as_str().unwrap().to_owned();
    let request = ask(
        cy,
        &recording,
        &staffed.node_id,
        "transcribe",
        "the minutes",
    )
    .await;
    let request = request.as_str();
    ada.ok(&["approve", request, "--yes"]).await;
    let voted = browser("member-votes", &server, bo, "Bo", &[]).await;
    assert!(voted.contains("the request is quorate"), "{voted}");

    // The server counted a valid vote: the request is quorate, the audit log verifies with
    // the CLI, and the node accepts Bo's re-sealed share and transcribes.
    let requests = cy.ok(&["--json", "requests", "--all"]).await.json();
    let counted = requests
        .as_array()
        .unwrap()
        .iter()
        .find(|view| view["request_id"] == request)
        .unwrap();
    assert_eq!(counted["status"], "quorate", "{requests}");
    assert_eq!(counted["approvals"], 2);
    let verified = ada.ok(&["--json", "audit", "verify"]).await.json();
    assert!(verified["entries"].as_u64().unwrap() > 20, "{verified}");
    staffed.machine.ok(&["run", "--once"]).await;

    // Released by a second quorum (CLI), then Dee, approved in the browser, searches there.
    staffed.quorum(&recording, "release-transcript").await;
    finds_the_bridge_minutes_in_the_browser(&server, &dee).await;

    // Eve joins after the release; Ada's browser approves her and seals her the search key
    // and the released copy's key, so her CLI searches and exports the minutes.
    let (eve, joined) = pending_member(&server, ada, "Eve").await;
    let approved = browser(
        "admin-approves-late-member",
        &server,
        ada,
        "Ada",
        &[
            ("QUORATE_PENDING", "Eve"),
            (
                "QUORATE_PENDING_FINGERPRINT",
                joined["fingerprint"].as_str().unwrap(),
            ),
        ],
    )
    .await;
    assert!(approved.contains("2 keys sealed to them"), "{approved}");
    let searched = eve.ok(&["--json", "search", "bridge repairs"]).await.json();
    assert_eq!(searched["total"], 1, "{searched}");
    let minutes = eve.ok(&["transcript", &recording, "--format", "txt"]).await;
    assert!(
        minutes.stdout.to_lowercase().contains("bridge"),
        "{minutes:?}"
    );

    // Ada removes Eve in the browser: the page replaces the search key Eve held and
    // re-indexes the released minutes under the new one. Dee (in the browser) and Cy (CLI)
    // still find them; Eve's session is over.
    let removed = browser(
        "admin-removes-member",
        &server,
        ada,
        "Ada",
        &[("QUORATE_REMOVE", "Eve")],
    )
    .await;
    assert!(
        removed.contains("1 released minutes re-indexed"),
        "{removed}"
    );
    finds_the_bridge_minutes_in_the_browser(&server, &dee).await;
    let searched = cy.ok(&["--json", "search", "bridge repairs"]).await.json();
    assert_eq!(searched["total"], 1, "{searched}");
    let rotated = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM search_key_rotations")
        .fetch_one(server.app.db.pool())
        .await
        .unwrap();
    assert_eq!(rotated, 1);
    assert_ne!(eve.run(&["search", "bridge"]).await.code, 0, "Eve left");
    println!("screenshots in {}", screenshots().display());
    server.stop().await;
}

/// Dee searches the released minutes in the browser and finds the bridge committee's.
async fn finds_the_bridge_minutes_in_the_browser(server: &Server, dee: &Device) {
    let found = browser(
        "search",
        server,
        dee,
        "Dee",
        &[
            ("QUORATE_QUERY", "bridge repairs"),
            ("QUORATE_EXPECT_TITLE", "Bridge committee"),
            ("QUORATE_EXPECT_SPEAKER", "Cy"),
        ],
    )
    .await;
    assert!(found.contains("hit Bridge committee"), "{found}");
    assert!(
        found
            .lines()
            .any(|line| line.starts_with("minutes ") && line.contains(" Cy: ")),
        "the minutes name their speaker: {found}"
    );
}

/// The value a story printed on a line `key value`.
fn reported<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("the story printed no {key}:\n{output}"))
}

/// A CLI device that holds `file`, an identity the browser made and downloaded.
fn device_with(server: &Server, file: &std::path::Path) -> Device {
    let device = Device::new(server);
    std::fs::copy(file, device.folder.path().join("identity.age")).unwrap();
    device
}

/// Issue 18, item 5: someone who ran the server starts the vault in the browser alone, a
/// member joins from the invite link there, and both downloaded identity files work in the
/// CLI. The server lies to each enrolment once (the genesis swapped, then forged), and the
/// page refuses and pins nothing.
#[tokio::test]
async fn a_newcomer_starts_a_vault_in_the_browser_and_a_member_joins_there() {
    let server = quorate_e2e::server_with_web_ui().await;
    let files = tempfile::tempdir().unwrap();
    let (ada_file, dee_file) = (files.path().join("ada.age"), files.path().join("dee.age"));

    let started = story_run(
        "first-admin-joins",
        &server,
        "Ada",
        &[
            ("QUORATE_CODE", server.codes[0].code.as_str()),
            ("QUORATE_IDENTITY_OUT", ada_file.to_str().unwrap()),
        ],
    )
    .await;
    assert!(
        started.contains("refused a genesis the server swapped; nothing pinned"),
        "{started}"
    );
    let (vault, genesis) = (reported(&started, "vault"), reported(&started, "genesis"));

    // The file the page made opens in the CLI (the age crate, with the passphrase) to the
    // vault's first admin. A genesis other than the one the page showed is refused first,
    // and nothing is kept.
    let ada = device_with(&server, &ada_file);
    let wrong = ada
        .run(&["--vault", vault, "connect", "--genesis", &"ab".repeat(32)])
        .await;
    assert_ne!(wrong.code, 0, "{wrong:?}");
    assert!(wrong.stderr.contains("genesis"), "{wrong:?}");
    assert!(!ada.folder.path().join("config.toml").exists(), "{wrong:?}");
    let connected = ada
        .ok(&["--json", "--vault", vault, "connect", "--genesis", genesis])
        .await
        .json();
    assert_eq!(connected["roster_genesis"], genesis);
    assert_eq!(connected["fingerprint"], reported(&started, "fingerprint"));
    let policy = ada.ok(&["--json", "policy"]).await.json();
    assert_eq!(policy["min_threshold"], 1, "{policy}");
    // The browser made the search key, so this device never makes one: a server that later
    // says there is none is lying to it.
    let config = std::fs::read_to_string(ada.folder.path().join("config.toml")).unwrap();
    assert!(config.contains("search_key_made = true"), "{config}");

    // Dee joins from the invite link the browser made, with the genesis Ada reads to her.
    let joined = story_run(
        "member-joins",
        &server,
        "Dee",
        &[
            ("QUORATE_CODE", reported(&started, "invite")),
            ("QUORATE_GENESIS", genesis),
            ("QUORATE_VAULT", vault),
            ("QUORATE_IDENTITY_OUT", dee_file.to_str().unwrap()),
        ],
    )
    .await;
    assert!(
        joined.contains("refused a genesis entry the server forged; nothing pinned"),
        "{joined}"
    );
    assert_eq!(reported(&joined, "genesis"), genesis);
    let dee = device_with(&server, &dee_file);
    let pending = dee
        .ok(&["--vault", vault, "connect", "--genesis", genesis])
        .await;
    assert!(
        pending.stdout.contains("not active in this vault yet"),
        "{pending:?}"
    );

    // Ada's CLI approves Dee by the fingerprint she reads out, and seals her the search key
    // that Ada's browser made: Dee's CLI opens it and checks it against the commitment the
    // browser signed.
    ada.ok(&["members", "approve", reported(&joined, "fingerprint")])
        .await;
    let members = dee.ok(&["--json", "members"]).await.json();
    assert_eq!(members["members"].as_array().unwrap().len(), 2, "{members}");
    let searched = dee.ok(&["--json", "search", "anything"]).await.json();
    assert_eq!(searched["total"], 0, "{searched}");
    server.stop().await;
}

/// `spoken` as espeak-ng says it, after `lead` seconds of silence (the fake microphone plays
/// from when the page asks for it, a moment before recording starts), written to `path`;
/// returns how long it plays, in seconds.
fn padded_speech(spoken: &str, lead: f64, path: &std::path::Path) -> f64 {
    let raw = path.with_extension("raw.wav");
    std::fs::write(&raw, quorate_e2e::speech(spoken)).unwrap();
    let delay = format!("adelay={}:all=1", (lead * 1000.0) as u64);
    let padded = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&raw)
        .args(["-af", &delay])
        .arg(path)
        .status()
        .expect("ffmpeg is installed by scripts/install-test-deps.sh");
    assert!(padded.success());
    let probed = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&probed.stdout)
        .trim()
        .parse()
        .unwrap()
}

/// Bo records a meeting in Chromium from a fake microphone that plays espeak-ng's speech
/// once: the audio is encrypted in the page and uploaded while recording, the key split
/// among the three members and the manifest signed there when he stops. He then uploads a
/// WAV file from the page. The CLI accepts both manifests and opens their sealed titles; the
/// node, given the members' shares, transcribes each (word error rate under 10 %).
#[tokio::test]
async fn a_member_records_in_the_browser_and_the_node_transcribes_it() {
    let server = quorate_e2e::server_with_web_ui().await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (bo, cy) = (&staffed.members[0], &staffed.members[1]);
    let folder = tempfile::tempdir().unwrap();
    let spoken = "The council voted to repair the bridge over the river.";
    let microphone = folder.path().join("microphone.wav");
    let playing = padded_speech(spoken, 1.5, &microphone);
    let filed = "The planning board agreed to build more houses.";
    let file = folder.path().join("Library hours.wav");
    std::fs::write(&file, quorate_e2e::speech(filed)).unwrap();

    let seconds = format!("{:.1}", playing + 1.0);
    let recorded = browser(
        "member-records",
        &server,
        bo,
        "Bo",
        &[
            ("QUORATE_FAKE_MIC", microphone.to_str().unwrap()),
            ("QUORATE_RECORD_SECONDS", &seconds),
            ("QUORATE_RECORD_TITLE", "Harbour committee"),
            ("QUORATE_UPLOAD_FILE", file.to_str().unwrap()),
        ],
    )
    .await;
    let id_after = |prefix: &str| {
        recorded
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {recorded}"))
            .trim()
            .to_owned()
    };
    let (live, uploaded) = (id_after("recorded "), id_after("uploaded "));

    // The CLI verifies both manifests (signed by Bo, split among the three members) and
    // opens their sealed titles.
    let listed = cy.ok(&["--json", "recordings"]).await.json();
    for (id, title) in [(&live, "Harbour committee"), (&uploaded, "Library hours")] {
        let recording = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|recording| recording["recording_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} is not listed: {listed}"));
        assert_eq!(recording["title"], title, "{recording}");
        assert_eq!(recording["uploader"], "Bo", "{recording}");
        assert_eq!(recording["shares"], 3, "{recording}");
    }
    for (id, said) in [(&live, spoken), (&uploaded, filed)] {
        let heard = staffed.transcribed(cy, id).await;
        let rate = quorate_e2e::word_error_rate(said, &heard);
        assert!(rate < 0.1, "word error rate {rate:.2}: heard {heard:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_member_does_their_part_of_a_re_share_in_the_browser() {
    let server = quorate_e2e::server_with_web_ui().await;
    let (ada, members) = quorate_e2e::board(&server).await;
    let (bo, cy) = (&members[0], &members[1]);
    quorate_e2e::upload_speech(cy, "The council approved the library budget.", "Budget").await;
    let (dee, joined) = pending_member(&server, &ada, "Dee").await;
    ada.ok(&[
        "members",
        "approve",
        joined["fingerprint"].as_str().unwrap(),
    ])
    .await;

    // Bo deals his share in the browser, Cy with the command (k = 2).
    browser(
        "member-reshares",
        &server,
        bo,
        "Bo",
        &[("QUORATE_EXPECT", "Dealt your share of 1")],
    )
    .await;
    let dealt = cy.ok(&["--json", "reshare"]).await.json();
    assert_eq!(dealt["dealt"], 1, "{dealt}");
    // The others take their new shares with the command; Bo, last, in the browser, which
    // completes the re-share.
    for member in [&ada, cy, &dee] {
        let took = member.ok(&["--json", "reshare"]).await.json();
        assert_eq!(took["accepted"], 1, "{took}");
    }
    browser(
        "member-reshares",
        &server,
        bo,
        "Bo",
        &[("QUORATE_EXPECT", "took your new share of 1 (1 now held")],
    )
    .await;
    let after = dee.ok(&["--json", "reshare"]).await.json();
    assert_eq!(after["keys"], 0, "{after}");
}
