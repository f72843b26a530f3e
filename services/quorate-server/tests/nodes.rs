//! Transcription nodes and the vault policy, on SQLite and on PostgreSQL, through the typed
//! client: a node enrols with a node invite and its own keys, signs in while pending, and is
//! approved or revoked only by a statement an admin signed for exactly its keys.

mod common;

use common::{FirstAdmin, refused};
use quorate_client::Client;
use quorate_crypto::{
    Identity, NodeId,
    statement::{NodeApproval, SignedStatement, VaultPolicy},
};
use quorate_server::test_support::{Backend, TestApp};

fn approval(
    vault: quorate_crypto::VaultId,
    node_id: NodeId,
    node: &Identity,
    issued_at: i64,
    revoked: bool,
) -> NodeApproval {
    NodeApproval {
        vault_id: vault,
        node_id,
        node: node.public(),
        hardware: "rack 3, 2-core EPYC, no GPU".into(),
        model_sha256: [0x42; 32],
        attestation: Vec::new(),
        issued_at,
        expires_at: issued_at + 30 * 86_400,
        revoked,
    }
}

quorate_server::per_backend!(a_node_is_approved_and_revoked_by_admin_signed_statements);

async fn a_node_is_approved_and_revoked_by_admin_signed_statements(backend: Backend) {
    let server = TestApp::start(backend).await;
    let FirstAdmin {
        client: admin_client,
        vault,
        identity: admin,
        pin,
    } = FirstAdmin::enrol(&server, "Ada").await;
    let now = quorate_server::now();

    // A member invite does not enrol a node, and a node invite works once.
    let member_invite = admin_client
        .invite(vault, quorate_api::InvitePurpose::Member)
        .await
        .unwrap();
    let node = Identity::generate();
    let mut node_client = Client::new(&server.url(""));
    assert_eq!(
        refused(
            node_client
                .enrol_node(&member_invite.code, "gpu-1", &node.public())
                .await
        ),
        (400, "invalid_code".into()),
        "{backend:?}"
    );
    let invite = admin_client
        .invite(vault, quorate_api::InvitePurpose::Node)
        .await
        .unwrap();
    let enrolled = node_client
        .enrol_node(&invite.code, "gpu-1", &node.public())
        .await
        .unwrap();
    assert_eq!(enrolled.roster_genesis, hex::encode(pin));
    assert_eq!(enrolled.fingerprint, node.fingerprint().to_hex());
    let node_id: NodeId = enrolled.node_id.parse().unwrap();
    assert_eq!(
        refused(
            node_client
                .enrol_node(&invite.code, "gpu-2", &Identity::generate().public())
                .await
        ),
        (400, "invalid_code".into())
    );

    // Pending, the node can sign in and read its own status, and nothing of the members'.
    node_client.sign_in(vault, &node).await.unwrap();
    let me = node_client.me().await.unwrap();
    assert_eq!(
        (me.role.as_str(), me.node_id.as_deref()),
        ("node", Some(enrolled.node_id.as_str()))
    );
    assert_eq!(
        node_client.node(vault, node_id).await.unwrap().status,
        quorate_api::NodeStatus::Pending
    );
    assert_eq!(
        refused(node_client.members(vault, None).await),
        (403, "members_only".into())
    );
    assert_eq!(
        refused(node_client.node(vault, NodeId::random()).await),
        (404, "not_found".into())
    );

    // Approvals that fail a check are refused and change nothing.
    let wrong_keys = approval(vault, node_id, &Identity::generate(), now, false);
    let mut expired = approval(vault, node_id, &node, now - 100 * 86_400, false);
    expired.expires_at = now - 86_400;
    let other_node = approval(vault, NodeId::random(), &node, now, false);
    for (bad, what) in [
        (SignedStatement::sign(&wrong_keys, &admin), "other keys"),
        (SignedStatement::sign(&expired, &admin), "expired"),
        (SignedStatement::sign(&other_node, &admin), "another node"),
        (
            SignedStatement::sign(&approval(vault, node_id, &node, now, false), &node),
            "signed by the node itself",
        ),
    ] {
        assert_eq!(
            refused(admin_client.approve_node(vault, node_id, &bad).await),
            (400, "invalid_statement".into()),
            "{backend:?}: {what}"
        );
    }
    assert_eq!(
        refused(
            node_client
                .approve_node(
                    vault,
                    node_id,
                    &SignedStatement::sign(&approval(vault, node_id, &node, now, false), &admin)
                )
                .await
        ),
        (403, "members_only".into())
    );
    assert_eq!(
        admin_client.node(vault, node_id).await.unwrap().status,
        quorate_api::NodeStatus::Pending
    );

    // The admin's approval: every member sees it with its statement.
    let approved = SignedStatement::sign(&approval(vault, node_id, &node, now, false), &admin);
    let view = admin_client
        .approve_node(vault, node_id, &approved)
        .await
        .unwrap();
    assert_eq!(view.status, quorate_api::NodeStatus::Approved);
    assert_eq!(
        view.model_sha256.as_deref(),
        Some(hex::encode([0x42; 32]).as_str())
    );
    let listed = admin_client.nodes(vault).await.unwrap();
    assert_eq!(listed.len(), 1);
    let statement = listed[0].approval.as_deref().unwrap();
    assert_eq!(statement, approved.to_bytes());
    // An older approval does not replace a newer one.
    let older = SignedStatement::sign(&approval(vault, node_id, &node, now - 10, false), &admin);
    assert_eq!(
        refused(admin_client.approve_node(vault, node_id, &older).await),
        (409, "stale_approval".into())
    );

    // Revocation ends the node's session and is final.
    let revoked = SignedStatement::sign(&approval(vault, node_id, &node, now + 1, true), &admin);
    assert_eq!(
        admin_client
            .approve_node(vault, node_id, &revoked)
            .await
            .unwrap()
            .status,
        quorate_api::NodeStatus::Revoked
    );
    assert_eq!(
        refused(node_client.me().await),
        (401, "unauthenticated".into())
    );
    assert_eq!(
        refused(node_client.sign_in(vault, &node).await),
        (401, "unknown_member".into())
    );
    let again = SignedStatement::sign(&approval(vault, node_id, &node, now + 2, false), &admin);
    assert_eq!(
        refused(admin_client.approve_node(vault, node_id, &again).await),
        (409, "node_revoked".into())
    );
    let actions: Vec<String> = admin_client
        .audit_page(vault, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    assert!(
        actions.ends_with(&[
            "node.enrolled".into(),
            "node.approved".into(),
            "node.revoked".into()
        ]),
        "{actions:?}"
    );

    server.stop().await;
}

quorate_server::per_backend!(the_policy_is_signed_by_an_admin_and_follows_its_sequence);

async fn the_policy_is_signed_by_an_admin_and_follows_its_sequence(backend: Backend) {
    let server = TestApp::start(backend).await;
    let FirstAdmin {
        client,
        vault,
        identity: admin,
        pin,
    } = FirstAdmin::enrol(&server, "Ada").await;
    let roster = client.roster(vault, &pin).await.unwrap();
    assert_eq!(
        refused(client.policy(&roster).await),
        (404, "no_policy".into())
    );
    let policy = |sequence, min_threshold| VaultPolicy {
        vault_id: vault,
        sequence,
        min_threshold,
        issued_at: 1_750_000_000 + sequence as i64,
    };
    // Out of sequence, or signed by someone not on the roster: refused.
    assert_eq!(
        refused(
            client
                .set_policy(vault, &SignedStatement::sign(&policy(1, 2), &admin))
                .await
        ),
        (409, "policy_changed".into()),
        "{backend:?}"
    );
    assert_eq!(
        refused(
            client
                .set_policy(
                    vault,
                    &SignedStatement::sign(&policy(0, 2), &Identity::generate())
                )
                .await
        ),
        (400, "invalid_statement".into())
    );
    client
        .set_policy(vault, &SignedStatement::sign(&policy(0, 2), &admin))
        .await
        .unwrap();
    client
        .set_policy(vault, &SignedStatement::sign(&policy(1, 3), &admin))
        .await
        .unwrap();
    assert_eq!(
        refused(
            client
                .set_policy(vault, &SignedStatement::sign(&policy(1, 1), &admin))
                .await
        ),
        (409, "policy_changed".into()),
        "a replayed sequence"
    );
    let newest = client.policy(&roster).await.unwrap();
    assert_eq!((newest.sequence, newest.min_threshold), (1, 3));
    server.stop().await;
}
