//! The recorder path end to end, with real parts: a recording machine enrols as a recorder
//! (its passphrase in a file, as systemd's credentials hand it over); Jibri's, BigBlueButton's
//! and Zoom's folders and a drop folder are built as each leaves them, with real media made
//! by ffmpeg from espeak-ng speech and the real hooks run on them; one `quorate watch` pass
//! uploads all four and removes their plaintext; the recorder holds no share and reads
//! nothing; the members see each recording titled from its source's metadata, and the node
//! transcribes each correctly.

use std::path::Path;

use quorate_e2e::{
    Backend, Device, Run, Server, Staffed,
    background::{Door, Running},
    board, speech, word_error_rate,
};

/// Runs `quorate ARGUMENTS` on the recording machine, its passphrase read from `secret`.
async fn unattended(recorder: &Device, secret: &Path, arguments: &[&str]) -> Run {
    let mut command = recorder.command(arguments);
    command
        .env_remove("QUORATE_PASSPHRASE")
        .env("QUORATE_PASSPHRASE_FILE", secret);
    command.output().await.unwrap().into()
}

/// `spoken`, as espeak-ng says it, encoded by ffmpeg into `output` with `codec_arguments`
/// (and, for `video`, a small black H.264 picture beside it, as a meeting recorder's MP4).
fn media(spoken: &str, output: &Path, codec_arguments: &[&str], video: bool) {
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let wav = folder.path().join("speech.wav");
    std::fs::write(&wav, speech(spoken)).unwrap();
    let mut command = std::process::Command::new("ffmpeg");
    command.args(["-y", "-loglevel", "error"]);
    if video {
        command.args(["-f", "lavfi", "-i", "color=c=black:s=64x64:r=5"]);
    }
    command.arg("-i").arg(&wav);
    if video {
        command.args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-shortest"]);
    }
    let status = command
        .args(codec_arguments)
        .arg(output)
        .status()
        .expect("ffmpeg is installed by scripts/install-test-deps.sh");
    assert!(
        status.success(),
        "ffmpeg could not make {}",
        output.display()
    );
}

fn hook(program: &str, arguments: &[&str], environment: &[(&str, &Path)]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/recorders");
    let mut command = std::process::Command::new(program);
    command.current_dir(&script).args(arguments);
    for (name, value) in environment {
        command.env(name, value);
    }
    let output = command.output().expect("the hook runs");
    assert!(
        output.status.success(),
        "{program} {arguments:?}: {output:?}"
    );
}

/// A recording machine enrolled as the recorder `name` and approved by `admin`: its
/// passphrase in a file only its user may read (a looser file is refused first).
async fn unattended_recorder(
    server: &str,
    admin: &Device,
    name: &str,
) -> (Device, std::path::PathBuf) {
    let recorder = Device::at(server);
    let secret = recorder.folder.path().join("passphrase");
    std::fs::write(&secret, "an unattended passphrase for the recorder\n").unwrap();
    let mode = |mode| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    mode(0o644);
    let loose = unattended(&recorder, &secret, &["keygen"]).await;
    assert_eq!(loose.code, 2, "{loose:?}");
    assert!(
        loose.stderr.contains("can be read by other users"),
        "{loose:?}"
    );
    mode(0o600);
    let made = unattended(&recorder, &secret, &["keygen"]).await;
    assert_eq!(made.code, 0, "{made:?}");

    // An admin invites it; it enrols; the admin compares its fingerprint and approves it.
    let invite = admin.ok(&["--json", "recorders", "invite"]).await.json();
    let code = invite["code"].as_str().unwrap();
    let enrol = ["--json", "enroll", "--code", code, "--name", name];
    let enrolled = unattended(&recorder, &secret, &enrol).await;
    assert_eq!(enrolled.code, 0, "{enrolled:?}");
    let fingerprint = enrolled.json()["fingerprint"].as_str().unwrap().to_owned();
    let pending = admin.ok(&["--json", "recorders"]).await.json();
    assert_eq!(pending["pending"][0]["fingerprint"], fingerprint.as_str());
    admin.ok(&["recorders", "approve", &fingerprint]).await;
    let listed = admin.ok(&["--json", "recorders"]).await.json();
    assert_eq!(listed["recorders"][0]["name"], name);
    (recorder, secret)
}

#[tokio::test]
async fn a_recorder_uploads_from_jibri_bigbluebutton_zoom_and_a_drop_folder_and_the_node_transcribes_each()
 {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (admin, bo) = (&staffed.admin, &staffed.members[0]);

    let (recorder, secret) = unattended_recorder(&server.url(""), admin, "jibri-1").await;

    // Each source's folder, as it leaves it, with its hook run.
    let spool = tempfile::tempdir().unwrap();
    let [jibri, bbb, zoom, drop] = ["jibri", "bbb", "zoom", "drop"].map(|name| {
        let folder = spool.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        folder
    });
    let said = [
        (
            "Budget Committee",
            "The budget committee approved the new library for the town.",
        ),
        (
            "Council & Cabinet",
            "The council voted to repair the bridge over the river.",
        ),
        (
            "Planning board (2026-11-24 10:00)",
            "The planning board agreed to build more houses.",
        ),
        (
            "Harbour review",
            "The harbor review found that the old road is safe to use.",
        ),
    ];
    let session = jibri.join("ab12cd34ef");
    media(
        said[0].1,
        &session.join("budgetcommittee_2026-11-24-10-00-00.mp4"),
        &["-c:a", "aac"],
        true,
    );
    std::fs::write(
        session.join("metadata.json"),
        r#"{"meeting_url":"https://meet.example.org/Budget%20Committee","participants":[{"displayName":"Ada"},{"displayName":"Bo"}]}"#,
    )
    .unwrap();
    hook("sh", &["jibri-finalize.sh", session.to_str().unwrap()], &[]);
    let meeting_id = "183f0d4e2a9b6c7d8e9f0a1b2c3d4e5f6a7b8c9d-1764000000000";
    let raw = bbb.join(meeting_id);
    media(
        said[1].1,
        &raw.join(format!("audio/{meeting_id}-1.opus")),
        &["-c:a", "libopus"],
        false,
    );
    std::fs::write(
        raw.join("events.xml"),
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><recording meeting_id="{meeting_id}" bbb_version="2.7"><metadata isBreakout="false" meetingName="Council &amp; Cabinet" meetingId="council"/><event timestamp="1" module="PARTICIPANT" eventname="ParticipantJoinEvent"><userId>w_1</userId><name>Ada</name><role>MODERATOR</role></event></recording>"#
        ),
    )
    .unwrap();
    hook(
        "ruby",
        &["bbb-post-archive.rb", "-m", meeting_id],
        &[("QUORATE_BBB_RAW", &bbb)],
    );
    let meeting = zoom.join("2026-11-24 10.00.00 Planning board 81234567890");
    media(
        said[2].1,
        &meeting.join("audio_only.m4a"),
        &["-c:a", "aac"],
        false,
    );
    let dropped = drop.join("Harbour review.mkv");
    media(said[3].1, &dropped, &["-c:a", "libopus"], false);

    // One pass uploads all four and removes their plaintext.
    let folders = [
        ("jibri", &jibri),
        ("bbb", &bbb),
        ("zoom", &zoom),
        ("drop", &drop),
    ]
    .map(|(kind, folder)| format!("{kind}={}", folder.display()));
    let mut watch = vec!["watch", "--once", "--settle", "0", "--remove-plaintext"];
    for folder in &folders {
        watch.extend(["--folder", folder.as_str()]);
    }
    let watched = unattended(&recorder, &secret, &watch).await;
    assert_eq!(watched.code, 0, "{watched:?}");
    assert!(!session.exists(), "Jibri's folder is removed");
    assert!(!meeting.exists(), "Zoom's folder is removed");
    assert!(!dropped.exists(), "the dropped file is removed");
    assert!(
        !raw.join(format!("audio/{meeting_id}-1.opus")).exists(),
        "BigBlueButton's audio is removed"
    );
    assert!(
        raw.join("events.xml").exists(),
        "the rest of BigBlueButton's raw folder is its own"
    );
    let status = unattended(&recorder, &secret, &["--json", "watch", "--status"]).await;
    let stages: Vec<_> = status.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["stage"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stages, ["uploaded"; 4], "{status:?}");
    let again = unattended(&recorder, &secret, &watch).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        !again.stderr.contains("Uploading"),
        "nothing is sent twice: {again:?}"
    );

    // Kept plaintext is never sent twice; a refused recording is logged and left alone.
    let kept = drop.join("Kept.wav");
    std::fs::write(&kept, quorate_e2e::wav(1)).unwrap();
    let drop_folder = format!("drop={}", drop.display());
    let keep = [
        "watch",
        "--once",
        "--settle",
        "0",
        "--folder",
        drop_folder.as_str(),
    ];
    let first = unattended(&recorder, &secret, &keep).await;
    assert!(first.stderr.contains("Uploaded"), "{first:?}");
    let second = unattended(&recorder, &secret, &keep).await;
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        !second.stderr.contains("Uploading"),
        "sent twice: {second:?}"
    );
    assert!(kept.exists(), "kept without --remove-plaintext");
    let refused = drop.join("Refused.wav");
    std::fs::write(&refused, quorate_e2e::wav(1)).unwrap();
    let too_many = [&keep[..], &["--threshold", "9"]].concat();
    let failed = unattended(&recorder, &secret, &too_many).await;
    assert_eq!(
        failed.code, 0,
        "one refusal does not stop the watcher: {failed:?}"
    );
    assert!(
        failed
            .stderr
            .contains("Refused.wav was not uploaded: --threshold must be between"),
        "{failed:?}"
    );
    assert!(refused.exists(), "a refused recording is left as it is");
    let status = unattended(&recorder, &secret, &["--json", "watch", "--status"]).await;
    let failed_items: Vec<_> = status.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["stage"] == "failed")
        .map(|item| item["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(failed_items, ["Refused"], "{status:?}");
    std::fs::remove_file(&refused).unwrap();

    // The recorder reads nothing, not even the titles of what it uploaded.
    let refused = unattended(&recorder, &secret, &["recordings"]).await;
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(refused.stderr.contains("members_only"), "{refused:?}");

    // The members see the four, titled from their sources, uploaded by the recorder and
    // split among the three members only; the node transcribes each.
    let recordings = bo.ok(&["--json", "recordings"]).await.json();
    let recordings = recordings.as_array().unwrap();
    assert_eq!(recordings.len(), 5, "{recordings:?}");
    for (title, spoken) in said {
        let recording = recordings
            .iter()
            .find(|recording| recording["title"] == title)
            .unwrap_or_else(|| panic!("no recording titled {title:?}: {recordings:?}"));
        assert_eq!(recording["uploader"], "jibri-1");
        assert_eq!(recording["shares"], 3, "no share for the recorder");
        let id = recording["recording_id"].as_str().unwrap();
        let heard = staffed.transcribed(bo, id).await;
        let rate = word_error_rate(spoken, &heard);
        assert!(
            rate < 0.1,
            "{title}: word error rate {rate:.2}: heard {heard:?}"
        );
    }
}

/// Started while the server cannot be reached, the watcher says so and tries again with a
/// backoff; once the server is back it uploads what waited, and SIGTERM stops it cleanly.
#[tokio::test]
async fn the_watcher_rides_out_a_server_that_is_down_and_stops_on_sigterm() {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, members) = board(&server).await;
    let mut door = Door::open(server.address).await;
    let (recorder, secret) = unattended_recorder(&door.url(), &admin, "obs-1").await;
    let drop = tempfile::tempdir().unwrap();
    std::fs::write(drop.path().join("Standup.wav"), quorate_e2e::wav(1)).unwrap();
    let folder = format!("drop={}", drop.path().display());

    // A machine signed on as a member (a lying server's listing can get an admin to do
    // that) holds shares: it refuses to run unattended, and uploads nothing.
    let as_member = members[0]
        .run(&["watch", "--once", "--settle", "0", "--folder", &folder])
        .await;
    assert_eq!(as_member.code, 2, "{as_member:?}");
    assert!(
        as_member.stderr.contains("is not a recorder"),
        "{as_member:?}"
    );
    assert!(drop.path().join("Standup.wav").exists());

    door.shut().await;
    let mut command = recorder.command(&[
        "watch",
        "--settle",
        "0",
        "--poll",
        "1",
        "--remove-plaintext",
        "--folder",
        &folder,
    ]);
    command
        .env_remove("QUORATE_PASSPHRASE")
        .env("QUORATE_PASSPHRASE_FILE", &secret);
    let mut watcher = Running::start(command);
    watcher.wait_for("Trying again in").await;
    door.reopen(server.address).await;
    watcher.wait_for("Uploaded").await;
    let (code, said) = watcher.terminate().await;
    assert_eq!(code, Some(0), "{said}");
    assert!(!drop.path().join("Standup.wav").exists(), "{said}");
    let recordings = admin.ok(&["--json", "recordings"]).await.json();
    assert_eq!(recordings[0]["title"], "Standup");
    assert_eq!(recordings[0]["uploader"], "obs-1");
}

/// A recording machine with a drop folder holding `Standup.wav` (a minute of audio), whose
/// upload was begun by hand with another title than the folder gives ("Standup"): the
/// server, its database, the admin, the recorder, its passphrase file and the drop folder.
/// The hand upload is stopped half-way, or, with `finished`, let finish with its pending
/// state put back, as a crash leaves it between the server's last answer and the
/// recorder's ledger.
async fn begun_by_hand(
    finished: bool,
) -> (
    Server,
    Device,
    Device,
    std::path::PathBuf,
    tempfile::TempDir,
) {
    let server = Server::start(Backend::Sqlite).await;
    let (admin, _) = board(&server).await;
    let (recorder, secret) = unattended_recorder(&server.url(""), &admin, "obs-1").await;
    let drop = tempfile::tempdir().unwrap();
    let file = drop.path().join("Standup.wav");
    std::fs::write(&file, quorate_e2e::wav(60)).unwrap();

    let mut begun = recorder.command(&[
        "upload",
        file.to_str().unwrap(),
        "--title",
        "Begun by hand",
        "--limit-rate",
        "256K",
    ]);
    begun
        .env_remove("QUORATE_PASSPHRASE")
        .env("QUORATE_PASSPHRASE_FILE", &secret);
    let mut begun = begun.spawn().unwrap();
    let pool = server.app.db.pool().clone();
    let mut waited = 0;
    while sqlx::query_scalar::<_, i64>("SELECT locked_until FROM uploads")
        .fetch_optional(&pool)
        .await
        .unwrap()
        .is_none_or(|locked| locked == 0)
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 400, "the upload never started");
    }
    if finished {
        let pending = recorder.folder.path().join("uploads");
        let kept = tempfile::tempdir().unwrap();
        copy_folder(&pending, kept.path());
        let status = begun.wait().await.unwrap();
        assert!(status.success());
        copy_folder(kept.path(), &pending);
    } else {
        begun.start_kill().unwrap();
        begun.wait().await.unwrap();
    }
    (server, admin, recorder, secret, drop)
}

fn copy_folder(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The recordings' titles, as the admin lists them, and `watch --once` over `drop`'s
/// stderr.
async fn watch_once(
    admin: &Device,
    recorder: &Device,
    secret: &Path,
    drop: &tempfile::TempDir,
) -> (Vec<String>, String) {
    let folder = format!("drop={}", drop.path().display());
    let watched = unattended(
        recorder,
        secret,
        &["watch", "--once", "--settle", "0", "--folder", &folder],
    )
    .await;
    assert_eq!(watched.code, 0, "{watched:?}");
    let recordings = admin.ok(&["--json", "recordings"]).await.json();
    let titles = recordings
        .as_array()
        .unwrap()
        .iter()
        .map(|recording| recording["title"].as_str().unwrap().to_owned())
        .collect();
    (titles, watched.stderr)
}

/// A recorder's meeting details come from its source. An upload of a file begun with other
/// ones is not resumed under the old details, nor refused as it would be for a person: the
/// watcher forgets it and uploads the file again under the details its source gives now.
#[tokio::test]
async fn a_recorder_uploads_again_when_the_details_changed_since_its_upload_began() {
    let (_server, admin, recorder, secret, drop) = begun_by_hand(false).await;
    let (titles, said) = watch_once(&admin, &recorder, &secret, &drop).await;
    assert!(said.contains("changed since its upload began"), "{said}");
    assert_eq!(titles, ["Standup"]);
}

/// ... unless the server already holds that upload whole: then it is done, and the same
/// recording is not uploaded twice.
#[tokio::test]
async fn a_recorder_never_uploads_twice_a_recording_the_server_holds_whole() {
    let (_server, admin, recorder, secret, drop) = begun_by_hand(true).await;
    let (titles, said) = watch_once(&admin, &recorder, &secret, &drop).await;
    assert!(!said.contains("uploading it again"), "{said}");
    assert_eq!(titles, ["Begun by hand"]);
}
