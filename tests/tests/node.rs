//! `quorate-node` refusing what it must refuse: to run before an admin approves it, or with a
//! model other than the approved one; and a job whose re-sealed share was tampered with
//! fails with a reason that names whose share it was, without crashing the node.

use quorate_client::Client;
use quorate_crypto::{
    SecretBytes, envelope,
    rewrap::{self, encode_node_share},
    statement::{Decision, RecordingManifest, SignedStatement, UnlockRequest, Vote},
    threshold::{Share, open_share},
};
use quorate_e2e::{Device, NodeMachine, Server, identity, model_wheel, speech};

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn a_node_refuses_to_run_unapproved_or_with_another_model_and_names_a_tampered_share() {
    let server = Server::start(false).await;
    let admin = Device::new(&server);
    admin.ok(&["keygen"]).await;
    admin
        .ok(&[
            "enroll",
            "--code",
            server.codes[0].code.as_str(),
            "--name",
            "Ada",
        ])
        .await;
    admin.ok(&["policy", "set", "--threshold", "2"]).await;
    let mut members = Vec::new();
    for name in ["Bo", "Cy"] {
        let invite = admin.ok(&["--json", "members", "invite"]).await.json();
        let device = Device::new(&server);
        device.ok(&["keygen"]).await;
        let joined = device
            .ok(&[
                "--json",
                "enroll",
                "--code",
                invite["code"].as_str().unwrap(),
                "--name",
                name,
            ])
            .await
            .json();
        admin
            .ok(&[
                "members",
                "approve",
                joined["fingerprint"].as_str().unwrap(),
            ])
            .await;
        members.push(device);
    }
    let (bo, cy) = (&members[0], &members[1]);

    // Not approved yet: the node refuses to run.
    let invite = admin.ok(&["--json", "nodes", "invite"]).await.json();
    let machine = NodeMachine::new(&server);
    machine.ok(&["init"]).await;
    let enrolled = machine
        .ok(&[
            "--json",
            "enroll",
            "--code",
            invite["code"].as_str().unwrap(),
            "--name",
            "gpu-1",
        ])
        .await
        .json();
    let node_id = enrolled["node_id"].as_str().unwrap().to_owned();
    let imported = machine
        .ok(&[
            "--json",
            "models",
            "import",
            model_wheel().to_str().unwrap(),
        ])
        .await
        .json();
    let model = imported["sha256"].as_str().unwrap().to_owned();
    let refused = machine.run(&["run", "--once"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("not approved"), "{refused:?}");

    // Approved for another model: it refuses too.
    admin
        .ok(&[
            "nodes",
            "approve",
            &node_id,
            "--model-sha256",
            &"cd".repeat(32),
            "--hardware",
            "test box",
        ])
        .await;
    let refused = machine.run(&["run", "--once"]).await;
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("is not the one this node's approval names"),
        "{refused:?}"
    );
    admin
        .ok(&[
            "nodes",
            "approve",
            &node_id,
            "--model-sha256",
            &model,
            "--hardware",
            "test box",
        ])
        .await;

    // Cy uploads; Ada approves honestly; Bo sends a share he altered, with a vote that
    // names exactly that share (so the server cannot tell).
    let file = cy.folder.path().join("meeting.wav");
    std::fs::write(&file, speech("The minutes were approved.")).unwrap();
    let recording = cy
        .ok(&[
            "--json",
            "upload",
            file.to_str().unwrap(),
            "--title",
            "Board",
        ])
        .await
        .json()["recording_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = cy
        .ok(&[
            "--json", "request", &recording, "--node", &node_id, "--reason", "minutes",
        ])
        .await
        .json()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.ok(&["approve", &request, "--yes"]).await;

    let vault = server.codes[0].vault_id;
    let bo_identity = identity(bo);
    let mut bo_client = Client::new(&server.url);
    bo_client.sign_in(vault, &bo_identity).await.unwrap();
    let request_id = request.parse().unwrap();
    let view = bo_client.request(vault, request_id).await.unwrap();
    let signed_request = SignedStatement::from_bytes(&base64_decode(&view.statement)).unwrap();
    let verified = signed_request.verify::<UnlockRequest>().unwrap();
    let recording_view = bo_client
        .recording(vault, recording.parse().unwrap())
        .await
        .unwrap();
    let manifest = SignedStatement::from_bytes(&base64_decode(&recording_view.manifest))
        .unwrap()
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    let binding = manifest.share_binding(&bo_identity.fingerprint()).unwrap();
    let sealed = bo_client
        .recording_share(vault, manifest.recording_id)
        .await
        .unwrap();
    let share = open_share(
        &base64_decode(&sealed.sealed),
        bo_identity.age_key(),
        &binding,
    )
    .unwrap();
    let mut altered = *share.expose_secret();
    altered[0] ^= 1;
    let altered = Share::new(share.index(), SecretBytes::new(altered)).unwrap();
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
        counted.status, "quorate",
        "the server cannot see inside a share"
    );

    // The node checks the share against the signed commitment and fails the job, naming Bo.
    machine.ok(&["run", "--once"]).await;
    let jobs = bo_client.jobs(vault).await.unwrap();
    assert_eq!(jobs[0].status, "failed");
    let reason = jobs[0].failure.clone().unwrap();
    assert!(
        reason.contains(&bo_identity.fingerprint().short()),
        "the failure names whose share it was: {reason}"
    );
    assert!(bo_client.transcripts(vault).await.unwrap().is_empty());
    server.stop().await;
}
