//! Re-sharing with the `quorate` command and a real node, on SQLite and on PostgreSQL
//! (issue 18, items 1 and 2): one member loses his identity and an admin signs his new one
//! on in its place, and one joins; `quorate reshare`, run by each member in turn, moves the
//! key of a recording made before to the new board without anyone rebuilding it; then the
//! two new identities' approvals alone transcribe that recording on the node, and its
//! transcript, split among the new board, is released and read.

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

    // Bo loses his identity file: his new one enrols, and the admin signs it on in place of
    // the old (issue 18, item 2). Dee joins. Each change says what to run next.
    let mut newcomers = Vec::new();
    for (name, replaces) in [("Bo, new laptop", Some(identity(bo))), ("Dee", None)] {
        let (device, joined) = pending_member(&server, ada, name).await;
        let fingerprint = joined["fingerprint"].as_str().unwrap();
        let approved = match &replaces {
            Some(old) => {
                let old = old.fingerprint().to_hex();
                ada.ok(&["members", "approve", fingerprint, "--replaces", &old])
                    .await
            }
            None => ada.ok(&["members", "approve", fingerprint]).await,
        };
        assert!(approved.stdout.contains("quorate reshare"), "{approved:?}");
        newcomers.push(device);
    }
    let lost = bo.run(&["requests"]).await;
    assert_ne!(
        lost.code, 0,
        "the replaced identity signs in no more: {lost:?}"
    );
    let (new_bo, dee) = (&newcomers[0], &newcomers[1]);

    // A newcomer has nothing to deal and nothing to take before two holders dealt.
    let early = new_bo.ok(&["--json", "reshare"]).await.json();
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
    for holder in [ada, cy, new_bo, dee] {
        let took = holder.ok(&["--json", "reshare"]).await.json();
        assert_eq!(took["accepted"], 1, "{took}");
        completed += took["completed"].as_u64().unwrap();
    }
    assert_eq!(completed, 1);
    let after = dee.ok(&["--json", "reshare"]).await.json();
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
    new_bo.ok(&["approve", &request, "--yes"]).await;
    let approved = dee
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
    new_bo.ok(&["approve", &release, "--yes"]).await;
    dee.ok(&["approve", &release, "--yes"]).await;
    staffed.machine.ok(&["run", "--once"]).await;
    let heard = heard(dee, &recording).await;
    let rate = word_error_rate(spoken, &heard);
    assert!(rate < 0.1, "word error rate {rate:.2}: heard {heard:?}");
}
