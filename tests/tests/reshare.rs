//! Re-sharing with the `quorate` command and a real node, on SQLite and on PostgreSQL
//! (issue 18, item 1): one member leaves and two join; `quorate reshare`, run by each
//! member in turn, moves the key of a recording made before to the new board without
//! anyone rebuilding it; then the two newcomers' approvals alone transcribe that recording
//! on the node, and its transcript, split among the new board, is released and read.

use quorate_e2e::{
    Backend, Server, Staffed, ask, heard, identity, pending_member, word_error_rate,
};

quorate_server::per_backend!(a_changed_board_transcribes_a_recording_made_before_it);

async fn a_changed_board_transcribes_a_recording_made_before_it(backend: Backend) {
    let server = Server::start(backend).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (ada, bo, cy) = (&staffed.admin, &staffed.members[0], &staffed.members[1]);
    let spoken =
        "The budget committee approved the new library and the repairs to the town hall roof.";
    let (recording, _) = staffed.upload(cy, spoken, "Budget").await;

    // Bo leaves; Dee and Eve join. Each change says what to run next.
    let removed = ada
        .ok(&["members", "remove", &identity(bo).fingerprint().to_hex()])
        .await;
    assert!(removed.stdout.contains("quorate reshare"), "{removed:?}");
    let mut newcomers = Vec::new();
    for name in ["Dee", "Eve"] {
        let (device, joined) = pending_member(&server, ada, name).await;
        let approved = ada
            .ok(&[
                "members",
                "approve",
                joined["fingerprint"].as_str().unwrap(),
            ])
            .await;
        assert!(approved.stdout.contains("quorate reshare"), "{approved:?}");
        newcomers.push(device);
    }
    let (dee, eve) = (&newcomers[0], &newcomers[1]);

    // A newcomer has nothing to deal and nothing to take before two holders dealt.
    let early = dee.ok(&["--json", "reshare"]).await.json();
    assert_eq!(
        (early["keys"].as_u64(), early["waiting"].as_u64()),
        (Some(1), Some(1))
    );
    // The two current holders deal their shares (k = 2).
    for holder in [ada, cy] {
        let dealt = holder.ok(&["--json", "reshare"]).await.json();
        assert_eq!(dealt["dealt"], 1, "{dealt}");
    }
    // Every member of the new board takes their new share; the last swaps them in.
    let mut completed = 0;
    for holder in [ada, cy, dee, eve] {
        let took = holder.ok(&["--json", "reshare"]).await.json();
        assert_eq!(took["accepted"], 1, "{took}");
        completed += took["completed"].as_u64().unwrap();
    }
    assert_eq!(completed, 1);
    let after = eve.ok(&["--json", "reshare"]).await.json();
    assert_eq!(after["keys"], 0, "{after}");

    // The two newcomers alone approve the transcription of a recording made before they
    // joined; the node rebuilds its key from their new shares.
    let request = ask(
        ada,
        &recording,
        &staffed.node_id,
        "transcribe",
        "the minutes",
    )
    .await;
    dee.ok(&["approve", &request, "--yes"]).await;
    let approved = eve
        .ok(&["--json", "approve", &request, "--yes"])
        .await
        .json();
    assert_eq!(approved["status"], "quorate");
    staffed.machine.ok(&["run", "--once"]).await;
    // The transcript's key went to the new board: the newcomers release it too.
    let release = ask(
        ada,
        &recording,
        &staffed.node_id,
        "release-transcript",
        "the minutes",
    )
    .await;
    dee.ok(&["approve", &release, "--yes"]).await;
    eve.ok(&["approve", &release, "--yes"]).await;
    staffed.machine.ok(&["run", "--once"]).await;
    let heard = heard(eve, &recording).await;
    let rate = word_error_rate(spoken, &heard);
    assert!(rate < 0.1, "word error rate {rate:.2}: heard {heard:?}");
}
