//! `quorate-node` refusing what it must refuse: to run before an admin approves it, or with a
//! model other than the approved one; and a job whose re-sealed share was tampered with
//! fails with a reason that names whose share it was, without crashing the node.

use quorate_client::Client;
use quorate_crypto::{
    envelope,
    rewrap::{self, encode_node_share},
    statement::{Decision, RecordingManifest, SignedStatement, UnlockRequest, Vote},
    threshold::open_share,
    vss::ScalarShare,
};
use quorate_e2e::{Backend, Server, Staffed, identity};

#[tokio::test]
async fn a_node_refuses_to_run_unapproved_or_with_another_model_and_names_a_tampered_share() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    let (machine, bo) = (&staffed.machine, &staffed.members[0]);
    let model = staffed.import_model().await;

    // Not approved yet: the node refuses to run.
    let refused = machine.run(&["run", "--once"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("not approved"), "{refused:?}");

    // Approved for another model: it refuses too.
    staffed.approve_node(&"cd".repeat(32)).await;
    let refused = machine.run(&["run", "--once"]).await;
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("is not the one this node's approval names"),
        "{refused:?}"
    );
    staffed.approve_node(&model).await;

    // Cy uploads and asks; Ada approves honestly; Bo sends a share he altered, with a vote
    // that names exactly that share (so the server cannot tell).
    let request = staffed
        .half_approved_request("The minutes were approved.")
        .await;
    let node_id = staffed.node_id.clone();
    let vault = server.codes[0].vault_id;
    let bo_identity = identity(bo);
    let mut bo_client = Client::new(&server.url(""));
    bo_client.sign_in(vault, &bo_identity).await.unwrap();
    let request_id = request.parse().unwrap();
    let view = bo_client.request(vault, request_id).await.unwrap();
    let signed_request = SignedStatement::from_bytes(&view.statement).unwrap();
    let verified = signed_request.verify::<UnlockRequest>().unwrap();
    let recording_view = bo_client
        .recording(vault, view.subject_id.parse().unwrap())
        .await
        .unwrap();
    let manifest = SignedStatement::from_bytes(&recording_view.manifest)
        .unwrap()
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    let binding = manifest.share_binding(&bo_identity.fingerprint()).unwrap();
    let sealed = bo_client
        .recording_share(vault, manifest.recording_id)
        .await
        .unwrap();
    let share = open_share(&sealed.sealed, bo_identity.age_key(), &binding).unwrap();
    let mut altered = *share.to_bytes();
    altered[0] ^= 1;
    let altered = ScalarShare::from_bytes(share.index(), &altered).unwrap();
    let node_view = bo_client
        .node(vault, node_id.parse().unwrap())
        .await
        .unwrap();
    let node_recipient: quorate_crypto::Recipient = node_view.keys.recipient.parse().unwrap();
    let resealed = envelope::seal(
        &encode_node_share(&verified.statement.binding(), &binding, &altered),
        std::slice::from_ref(&node_recipient),
    )
    .unwrap();
    let vote = SignedStatement::sign(
        &Vote {
            vault_id: vault,
            request_id,
            request_digest: verified.digest,
            voter: bo_identity.fingerprint(),
            decision: Decision::Approve {
                resealed_share_sha256: rewrap::resealed_digest(&resealed),
            },
            comment: String::new(),
            issued_at: quorate_server::now(),
        },
        &bo_identity,
    );
    let counted = bo_client
        .vote(vault, request_id, &vote, Some(&resealed))
        .await
        .unwrap();
    assert_eq!(
        counted.status,
        quorate_api::RequestStatus::Quorate,
        "the server cannot see inside a share"
    );

    // The node checks the share against the signed commitment and fails the job, naming Bo.
    machine.ok(&["run", "--once"]).await;
    let jobs = bo_client.jobs(vault).await.unwrap();
    assert_eq!(jobs[0].status, quorate_api::JobStatus::Failed);
    let reason = jobs[0].failure.clone().unwrap();
    assert!(
        reason.contains(&bo_identity.fingerprint().short()),
        "the failure names whose share it was: {reason}"
    );
    assert!(bo_client.transcripts(vault).await.unwrap().is_empty());
    server.stop().await;
}

// PostgreSQL only: the test is named for it, so that `--skip postgres` leaves it out.
quorate_server::per_backend!(
    a_node_killed_mid_job_leaves_it_to_the_next_run_and_one_transcript,
    postgres()
);

async fn a_node_killed_mid_job_leaves_it_to_the_next_run_and_one_transcript() {
    let server = Server::start(Backend::Postgres).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let spoken = "The council met on Tuesday. The treasurer presented the accounts, the members \
        discussed the new bridge over the river, and the chair closed the meeting at nine.";
    let request = staffed.half_approved_request(spoken).await;
    staffed.members[0].ok(&["approve", &request, "--yes"]).await;

    let vault = server.codes[0].vault_id;
    let mut watcher = Client::new(&server.url(""));
    watcher
        .sign_in(vault, &identity(&staffed.admin))
        .await
        .unwrap();
    let mut first = staffed.machine.command(&["run", "--once"]).spawn().unwrap();
    let mut waited = 0;
    while watcher.jobs(vault).await.unwrap()[0].status != quorate_api::JobStatus::Leased {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 1500, "the node never claimed the job");
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert!(
        watcher.transcripts(vault).await.unwrap().is_empty(),
        "killed before it finished"
    );

    // Time passes: the lease lapses, and the next run takes the job up again.
    sqlx::query("UPDATE jobs SET lease_expires_at = $1")
        .bind(quorate_server::now() - 1)
        .execute(server.app.db.pool())
        .await
        .unwrap();
    staffed.machine.ok(&["run", "--once"]).await;
    let jobs = watcher.jobs(vault).await.unwrap();
    assert_eq!(
        (jobs[0].status, jobs[0].attempts),
        (quorate_api::JobStatus::Done, 2)
    );
    assert_eq!(
        watcher.transcripts(vault).await.unwrap().len(),
        1,
        "exactly one transcript"
    );
    assert!(
        staffed
            .machine
            .ok(&["run", "--once"])
            .await
            .stderr
            .contains("No job")
    );
    server.stop().await;
}
