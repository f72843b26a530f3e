//! Recorders: machines on the roster that upload recordings unattended. A recorder enrols
//! with a recorder invite and is signed on as a recorder only; it uploads a recording whose
//! key is split among the members, holds no share, and every other member's route refuses
//! it; removed, it can do nothing. On SQLite and on PostgreSQL.

mod common;

use common::{Board, flow, make_recording, refused, sign_recording_for};
use quorate_api::{InvitePurpose, MemberRole, MemberStatus, RecordingStatus};
use quorate_client::Client;
use quorate_crypto::{
    Identity, RecordingId,
    statement::{Role, RosterChange},
    vss::Secret,
};
use quorate_server::test_support::{Backend, TestApp};

quorate_server::per_backend!(a_recorder_uploads_for_the_members_and_can_do_nothing_else);

async fn a_recorder_uploads_for_the_members_and_can_do_nothing_else(backend: Backend) {
    let server = TestApp::start(backend).await;
    let board = Board::new(&server, 2, 2).await;
    let (admin, vault) = (&board.admin, board.admin.vault);

    // A recorder invite enrols a pending recorder, which is signed on as a recorder only.
    let invite = admin
        .client
        .invite(vault, InvitePurpose::Recorder)
        .await
        .unwrap();
    let recorder = Identity::generate();
    let mut machine = Client::new(&server.url(""));
    machine
        .enrol_member(&invite.code, "Jibri", &recorder.public())
        .await
        .unwrap();
    let pending = admin
        .client
        .members(vault, Some(MemberStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].role, MemberRole::Recorder);
    let roster = admin.client.roster(vault, &admin.pin).await.unwrap();
    let sign_on = |role| {
        roster
            .sign_change(
                &admin.identity,
                RosterChange::Add,
                recorder.public(),
                "Jibri",
                role,
                1_750_000_000,
            )
            .unwrap()
    };
    assert_eq!(
        refused(
            admin
                .client
                .append_roster(vault, &sign_on(Role::Member))
                .await
        ),
        (409, "role_mismatch".into()),
        "{backend:?}: a recording machine never becomes a share holder by an admin's slip"
    );
    admin
        .client
        .append_roster(vault, &sign_on(Role::Recorder))
        .await
        .unwrap();
    machine.sign_in(vault, &recorder).await.unwrap();

    // It uploads: the key is split among the three members, none sealed to the recorder.
    let roster = machine.roster(vault, &admin.pin).await.unwrap();
    assert_eq!((roster.members().len(), roster.recorders().len()), (3, 1));
    let made = make_recording(&roster, &recorder, 2, &[7u8; 50_000]);
    flow::upload(&machine, vault, &made).await;
    let listed = admin.client.recordings(vault).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, RecordingStatus::Complete);
    assert_eq!(listed[0].uploader, recorder.fingerprint().to_hex());
    board.members[0]
        .1
        .recording_share(vault, made.id)
        .await
        .unwrap();

    // A split that seals a share to the recorder is refused.
    let mut holders: Vec<_> = roster
        .members()
        .iter()
        .map(|member| member.public)
        .collect();
    holders.push(recorder.public());
    let another = (RecordingId::random(), &Secret::random());
    let greedy = sign_recording_for(&roster, &holders, &recorder, 2, another, (10, [0; 32]));
    assert_eq!(
        refused(
            machine
                .create_recording(vault, &greedy.manifest, &greedy.shares)
                .await
        ),
        (400, "not_on_roster".into())
    );

    // Nothing else: not reading, not requesting, not voting.
    let members_only = (403, "members_only".to_owned());
    assert_eq!(refused(machine.recordings(vault).await), members_only);
    assert_eq!(
        refused(machine.recording(vault, made.id).await),
        members_only
    );
    assert_eq!(
        refused(machine.recording_share(vault, made.id).await),
        members_only
    );
    assert_eq!(
        refused(
            machine
                .download_recording(vault, made.id, None, 1 << 20, &mut Vec::new())
                .await
        ),
        members_only
    );
    assert_eq!(refused(machine.members(vault, None).await), members_only);
    assert_eq!(refused(machine.requests(vault, false).await), members_only);
    assert_eq!(refused(machine.released(vault, None).await), members_only);
    let node = flow::approved_node(&server.url(""), &board).await;
    let request = flow::request(&board, 1, &made, node.id, 3600);
    assert_eq!(
        refused(machine.create_request(vault, &request).await),
        members_only
    );
    let request_id = flow::send_request(&board, 1, &request).await;
    let (resealed, vote) = flow::approve(&board, 1, &made, &request, &node.identity).await;
    assert_eq!(
        refused(
            machine
                .vote(vault, request_id, &vote, Some(&resealed))
                .await
        ),
        members_only
    );

    // Removed, its session ends and it cannot sign in again.
    let roster = admin.client.roster(vault, &admin.pin).await.unwrap();
    let removal = roster
        .sign_change(
            &admin.identity,
            RosterChange::Remove,
            recorder.public(),
            "Jibri",
            Role::Recorder,
            1_750_000_001,
        )
        .unwrap();
    admin.client.append_roster(vault, &removal).await.unwrap();
    assert_eq!(refused(machine.me().await).0, 401);
    assert_eq!(refused(machine.sign_in(vault, &recorder).await).0, 401);
}

quorate_server::per_backend!(a_member_invite_never_makes_a_recorder);

async fn a_member_invite_never_makes_a_recorder(backend: Backend) {
    let server = TestApp::start(backend).await;
    let board = Board::new(&server, 0, 1).await;
    let (admin, vault) = (&board.admin, board.admin.vault);
    let invite = admin
        .client
        .invite(vault, InvitePurpose::Member)
        .await
        .unwrap();
    let person = Identity::generate();
    Client::new(&server.url(""))
        .enrol_member(&invite.code, "Bo", &person.public())
        .await
        .unwrap();
    let roster = admin.client.roster(vault, &admin.pin).await.unwrap();
    let as_recorder = roster
        .sign_change(
            &admin.identity,
            RosterChange::Add,
            person.public(),
            "Bo",
            Role::Recorder,
            1_750_000_000,
        )
        .unwrap();
    assert_eq!(
        refused(admin.client.append_roster(vault, &as_recorder).await),
        (409, "role_mismatch".into()),
        "{backend:?}"
    );
}
