//! Invites, pending members, admin-signed roster additions and removals, on SQLite and on
//! PostgreSQL, through the typed client: the member's device and the admin's device do their
//! own checks with quorate-crypto; the server refuses what the chain refuses.

mod common;

use common::{FirstAdmin, refused};
use quorate_client::Client;
use quorate_crypto::{
    Identity, VaultId,
    roster::Roster,
    statement::{Role, RosterChange, RosterEntry, SignedStatement},
};
use quorate_server::test_support::{Backend, TestApp};

quorate_server::per_backend!(an_invited_member_joins_when_an_admin_signs_and_leaves_when_removed);

async fn an_invited_member_joins_when_an_admin_signs_and_leaves_when_removed(backend: Backend) {
    let server = TestApp::start(backend).await;
    let FirstAdmin {
        client: admin_client,
        vault,
        identity: admin,
        pin,
    } = FirstAdmin::enrol(&server, "Ada").await;

    // Invite; the member redeems it and is pending: not yet able to sign in.
    let invite = admin_client
        .invite(vault, quorate_api::InvitePurpose::Member)
        .await
        .unwrap();
    let member = Identity::generate();
    let mut member_client = Client::new(&server.url(""));
    let joined = member_client
        .enrol_member(&invite.code, "Bo", &member.public())
        .await
        .unwrap();
    assert_eq!(
        joined.roster_genesis,
        hex::encode(pin),
        "{backend:?}: the member pins the same genesis"
    );
    assert_eq!(
        refused(member_client.sign_in(vault, &member).await),
        (401, "unknown_member".into())
    );
    assert_eq!(
        refused(
            member_client
                .enrol_member(&invite.code, "Cy", &Identity::generate().public())
                .await
        ),
        (400, "invalid_code".into()),
        "an invite works once"
    );

    // The admin compares fingerprints, then signs the entry on their device.
    let pending = admin_client
        .members(vault, Some(quorate_api::MemberStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].fingerprint, member.fingerprint().to_hex());
    let roster = admin_client.roster(vault, &pin).await.unwrap();
    let add = roster
        .sign_change(
            &admin,
            RosterChange::Add,
            member.public(),
            "Bo",
            Role::Member,
            1_750_000_100,
        )
        .unwrap();
    assert_eq!(admin_client.append_roster(vault, &add).await.unwrap(), 1);
    // The same entry again is a stale sequence: refused.
    assert_eq!(
        refused(admin_client.append_roster(vault, &add).await),
        (400, "invalid_statement".into())
    );

    member_client.sign_in(vault, &member).await.unwrap();
    let roster = member_client.roster(vault, &pin).await.unwrap();
    assert_eq!(roster.members().len(), 2);
    assert_eq!(
        admin_client
            .members(vault, Some(quorate_api::MemberStatus::Active))
            .await
            .unwrap()
            .len(),
        2
    );

    // A member cannot change the roster, and an entry a member signs is refused even
    // when an admin's session carries it.
    let intruder = Identity::generate();
    assert!(
        roster
            .sign_change(
                &member,
                RosterChange::Add,
                intruder.public(),
                "Eve",
                Role::Admin,
                1
            )
            .is_err(),
        "the member's own device already refuses"
    );
    let forged = SignedStatement::sign(
        &RosterEntry {
            vault_id: vault,
            sequence: roster.len(),
            previous: roster.head(),
            change: RosterChange::Add,
            role: Role::Admin,
            member: intruder.public(),
            name: "Eve".into(),
            issued_at: 1,
        },
        &member,
    );
    assert_eq!(
        refused(member_client.append_roster(vault, &forged).await),
        (403, "admin_only".into())
    );
    assert_eq!(
        refused(admin_client.append_roster(vault, &forged).await),
        (400, "invalid_statement".into())
    );
    assert_eq!(
        refused(
            member_client
                .invite(vault, quorate_api::InvitePurpose::Member)
                .await
        ),
        (403, "admin_only".into())
    );
    assert_eq!(
        refused(member_client.create_vault("Shadow board").await),
        (403, "admin_only".into())
    );

    // Removal: the member's session stops working at once, and so does signing in.
    let remove = roster
        .sign_change(
            &admin,
            RosterChange::Remove,
            member.public(),
            "Bo",
            Role::Member,
            1_750_000_200,
        )
        .unwrap();
    assert_eq!(admin_client.append_roster(vault, &remove).await.unwrap(), 2);
    assert_eq!(
        refused(member_client.me().await),
        (401, "unauthenticated".into())
    );
    assert_eq!(
        refused(member_client.sign_in(vault, &member).await),
        (401, "unknown_member".into())
    );
    let roster = admin_client.roster(vault, &pin).await.unwrap();
    assert_eq!(roster.members().len(), 1);
    assert_eq!(roster.removed().len(), 1);
    assert_eq!(
        admin_client
            .members(vault, Some(quorate_api::MemberStatus::Removed))
            .await
            .unwrap()[0]
            .fingerprint,
        member.fingerprint().to_hex()
    );

    server.stop().await;
}

quorate_server::per_backend!(members_of_one_vault_cannot_reach_into_another);

async fn members_of_one_vault_cannot_reach_into_another(backend: Backend) {
    let server = TestApp::start(backend).await;
    let FirstAdmin {
        client,
        vault,
        identity: admin,
        pin,
    } = FirstAdmin::enrol(&server, "Ada").await;
    let elsewhere = VaultId::random();
    assert_eq!(
        refused(client.roster(elsewhere, &pin).await),
        (404, "not_found".into())
    );
    assert_eq!(
        refused(client.members(elsewhere, None).await),
        (404, "not_found".into())
    );
    assert_eq!(
        refused(
            client
                .invite(elsewhere, quorate_api::InvitePurpose::Member)
                .await
        ),
        (404, "not_found".into())
    );
    assert_eq!(
        refused(client.audit_page(elsewhere, None, 10).await),
        (404, "not_found".into())
    );

    // An admin creates a second vault; its first admin enrols with the code it returns, and
    // each vault's sessions see only their own vault.
    let created = client.create_vault("Audit committee").await.unwrap();
    let second: VaultId = created.vault_id.parse().unwrap();
    let chair = Identity::generate();
    let second_genesis = Roster::genesis_entry(second, &chair, "Chair", 1).unwrap();
    let mut chair_client = Client::new(&server.url(""));
    chair_client
        .enrol_first_admin(&created.first_admin_code, &second_genesis)
        .await
        .unwrap();
    chair_client.sign_in(second, &chair).await.unwrap();
    let second_pin = second_genesis.digest();
    assert_eq!(
        chair_client
            .roster(second, &second_pin)
            .await
            .unwrap()
            .members()[0]
            .fingerprint,
        chair.fingerprint()
    );
    assert_eq!(
        refused(client.roster(second, &second_pin).await),
        (404, "not_found".into())
    );
    assert_eq!(
        refused(chair_client.roster(vault, &pin).await),
        (404, "not_found".into())
    );
    assert_eq!(
        refused(Client::new(&server.url("")).sign_in(second, &admin).await),
        (401, "unknown_member".into())
    );
    // The first vault's roster, fetched by a device that pinned the second vault's
    // genesis, fails the device's check.
    assert!(matches!(
        client.roster(vault, &second_pin).await,
        Err(quorate_client::ClientError::Invalid(_))
    ));
    // Closed sets and IDs are typed at the edge: a purpose outside the set is refused while
    // the body is decoded, and a path whose ID is not a UUID names nothing.
    let http = reqwest::Client::new();
    let token = client.token().unwrap();
    let answer = http
        .post(server.url(&format!("/api/v1/vaults/{vault}/invites")))
        .bearer_auth(token)
        .json(&serde_json::json!({ "purpose": "overlord" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "invalid_fields");
    assert!(
        body["message"].as_str().unwrap().contains("overlord"),
        "{body}"
    );
    for path in [
        "/api/v1/vaults/not-a-uuid/members".to_owned(),
        format!("/api/v1/vaults/{vault}/recordings/42"),
        format!("/api/v1/vaults/{vault}/requests/x"),
    ] {
        let answer = http
            .get(server.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
    }
    server.stop().await;
}
