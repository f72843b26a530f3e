//! Re-sharing on SQLite and on PostgreSQL (issue 18, item 1): a board of five where two
//! leave and two join; three current holders deal, every new holder takes a new share, and
//! the server swaps them for the old ones. The new board rebuilds the old recording's key;
//! the leavers' old shares with new ones rebuild nothing. A server that swaps a sealed
//! sub-share is caught by the new holder's device, and so is a dealer who deals a bad one.

mod common;

use common::{
    Board, audit_actions, flow, join, refused,
    resharing::{deal, item},
};
use quorate_api::OpenReshare;
use quorate_client::{
    Client,
    reshare::{self, Board as NewBoard, SharedKey},
};
use quorate_crypto::{
    Identity, RecordingId,
    roster::Roster,
    statement::{RecordingManifest, SignedStatement},
    threshold::{self, Subject},
    vss::ScalarShare,
};
use quorate_server::test_support::{Backend, TestDb, TestServer};

/// What a new holder's device is given: the key replayed and the open re-share.
async fn offered(
    client: &Client,
    roster: &Roster,
    recording: RecordingId,
) -> (SharedKey, OpenReshare) {
    let vault = roster.vault_id();
    let item = item(client, vault, recording).await;
    let key = client.shared_key(vault, roster, &item).await.unwrap();
    (key, item.open.expect("a re-share is open"))
}

/// Each of `holders` takes their new share of `recording` from its open re-share to
/// `new_board`, in turn; returns the state the last one was answered with.
async fn take_new_shares(
    holders: &[(&Identity, &Client)],
    roster: &Roster,
    new_board: &NewBoard,
    recording: RecordingId,
) -> quorate_api::ReshareState {
    let mut last = None;
    for (identity, client) in holders {
        let (key, open) = offered(client, roster, recording).await;
        assert!(reshare::should_accept(
            &open,
            new_board,
            &identity.fingerprint()
        ));
        let acceptance = reshare::accept(identity, &key, new_board, roster, &open).unwrap();
        last = Some(
            client
                .accept_reshare(roster.vault_id(), &open.reshare_id, &acceptance)
                .await
                .unwrap(),
        );
    }
    last.expect("at least one holder")
}

/// `identity`'s share of `recording` now, opened and checked against the manifest.
async fn current_share(
    identity: &Identity,
    client: &Client,
    manifest: &RecordingManifest,
) -> (threshold::ShareBinding, ScalarShare) {
    let sealed = client
        .recording_share(manifest.vault_id, manifest.recording_id)
        .await
        .unwrap();
    manifest
        .split
        .open_current_share(
            &sealed.sealed.0,
            identity.age_key(),
            manifest.vault_id,
            manifest.subject(),
            &identity.fingerprint(),
        )
        .unwrap()
}

quorate_server::per_backend!(two_leave_two_join_and_the_new_board_holds_the_old_recording);

async fn two_leave_two_join_and_the_new_board_holds_the_old_recording(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    // Five: the admin and four members, 3 of 5.
    let board = Board::new(&server, 4, 3).await;
    let vault = board.admin.vault;
    let (made, _) = flow::uploaded(&board, 1, 3).await;
    let manifest = SignedStatement::from_bytes(&made.manifest.to_bytes())
        .unwrap()
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    // What the two who will leave hold now.
    let mut leavers_shares = Vec::new();
    for index in [3, 4] {
        let (identity, client) = flow::member(&board, index);
        leavers_shares.push(current_share(identity, client, &manifest).await.1);
    }

    // Members 3 and 4 leave; two newcomers join.
    for index in [3, 4] {
        flow::remove(&board, index).await;
    }
    let newcomers = [
        join(&server.url(""), &board.admin, "Newcomer 1").await,
        join(&server.url(""), &board.admin, "Newcomer 2").await,
    ];
    let roster = board.admin.roster().await;
    assert_eq!(roster.members().len(), 5);

    // Three current holders deal; a newcomer holds nothing to deal.
    let (newcomer, newcomer_client) = (&newcomers[0].0, &newcomers[0].1);
    let listed = item(newcomer_client, vault, made.id).await;
    let key = newcomer_client
        .shared_key(vault, &roster, &listed)
        .await
        .unwrap();
    assert!(!reshare::should_deal(&key, None, &newcomer.fingerprint()));
    let mut state = None;
    for index in [0, 1, 2] {
        let (identity, client) = flow::member(&board, index);
        state = Some(deal(identity, client, &roster, made.id, 3).await);
    }
    let state = state.unwrap();
    assert_eq!((state.deals, state.needed, state.completed), (3, 3, false));

    // A new holder who is handed a sealed sub-share the server swapped refuses it, saying
    // it is the server's doing.
    let (key, mut open) = offered(newcomer_client, &roster, made.id).await;
    let new_board = NewBoard::of(&roster, 3).unwrap();
    open.subshares.swap(0, 1);
    let swapped = reshare::accept(newcomer, &key, &new_board, &roster, &open).unwrap_err();
    assert!(swapped.to_string().contains("server"), "{swapped}");

    // Every new holder takes their new share; the last one completes the re-share.
    let mut holders: Vec<(&Identity, &Client)> =
        (0..3).map(|index| flow::member(&board, index)).collect();
    holders.extend(
        newcomers
            .iter()
            .map(|(identity, client)| (identity, client)),
    );
    let last = take_new_shares(&holders, &roster, &new_board, made.id).await;
    assert!(last.completed);
    assert!(
        audit_actions(&board.admin.client, vault)
            .await
            .contains(&"reshare.completed".to_owned())
    );
    // The shares follow the roster now: nothing left to re-share.
    assert!(
        board
            .admin
            .client
            .reshare_work(vault)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // The two newcomers and one who stayed rebuild the key of a recording made before the
    // newcomers came.
    let mut new_shares = Vec::new();
    let mut commitments = None;
    for (identity, client) in [holders[1], holders[3], holders[4]] {
        let (binding, share) = current_share(identity, client, &manifest).await;
        assert_eq!(binding.threshold.k(), 3);
        commitments = Some(binding.commitments);
        new_shares.push(share);
    }
    let commitments = commitments.unwrap();
    let rebuilt = threshold::combine(
        &new_shares,
        &commitments,
        &Subject::Recording(made.id),
        &manifest.split.recipient,
    )
    .unwrap();
    assert_eq!(rebuilt, made.key);

    // The leavers' old shares with any new ones rebuild nothing, under either sharing.
    let mixed = [
        leavers_shares[0].clone(),
        leavers_shares[1].clone(),
        new_shares[0].clone(),
    ];
    for sharing in [&commitments, &manifest.split.commitments] {
        assert!(
            threshold::combine(
                &mixed,
                sharing,
                &Subject::Recording(made.id),
                &manifest.split.recipient
            )
            .is_err()
        );
    }
}

/// What a dishonest holder's device sends: a deal of their share whose sub-share for the
/// holder at `victim` (a position) is off the dealer's own commitments, sealed and signed
/// as an honest deal would be.
fn crooked_deal(
    identity: &Identity,
    key: &SharedKey,
    board: &NewBoard,
    roster: &Roster,
    share: &ScalarShare,
    victim: usize,
) -> quorate_api::NewDeal {
    use quorate_api::{Base64, SealedShareUpload};
    use quorate_crypto::{
        reshare::{ReshareDeal, SubShareBinding, commitments_sha256, seal_subshare},
        threshold::Threshold,
        vss,
    };
    use sha2::{Digest, Sha256};
    let new = Threshold::new(board.new_k.into(), board.holders.len()).unwrap();
    let mut dealt = vss::deal(share, &key.current.commitments, new).unwrap();
    let wrong = dealt.subshares[(victim + 1) % dealt.subshares.len()].to_bytes();
    dealt.subshares[victim] =
        ScalarShare::from_bytes(dealt.subshares[victim].index(), &wrong).unwrap();
    let dealt_commitments = dealt.commitments.to_bytes();
    let reshare_id = [0x5a; 16];
    let sealed: Vec<Vec<u8>> = board
        .holders
        .iter()
        .zip(&dealt.subshares)
        .map(|(holder, subshare)| {
            let binding = SubShareBinding {
                vault_id: key.vault,
                subject: key.subject,
                reshare_id,
                roster_head: board.roster_head,
                dealer: dealt.dealer,
                dealt_commitments_sha256: Sha256::digest(&dealt_commitments).into(),
                index: subshare.index(),
                holder: *holder,
            };
            let recipient = roster.member(holder).unwrap().public.recipient;
            seal_subshare(&binding, subshare, &recipient).unwrap()
        })
        .collect();
    let deal = ReshareDeal {
        vault_id: key.vault,
        subject: key.subject,
        reshare_id,
        current_commitments_sha256: commitments_sha256(&key.current.commitments),
        dealer: dealt.dealer,
        new_k: board.new_k,
        roster_head: board.roster_head,
        holders: board.holders.clone(),
        commitments: dealt_commitments,
        sealed_subshares_sha256: sealed
            .iter()
            .map(|file| Sha256::digest(file).into())
            .collect(),
        issued_at: quorate_server::now(),
    };
    quorate_api::NewDeal {
        deal: Base64::from(SignedStatement::sign(&deal, identity).to_bytes()),
        subshares: board
            .holders
            .iter()
            .zip(sealed)
            .map(|(holder, sealed)| SealedShareUpload {
                member: holder.to_hex(),
                sealed: Base64::from(sealed),
            })
            .collect(),
    }
}

quorate_server::per_backend!(a_holder_who_deals_a_bad_sub_share_is_named);

async fn a_holder_who_deals_a_bad_sub_share_is_named(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    // The admin and two members, 2 of 3; one more joins.
    let board = Board::new(&server, 2, 2).await;
    let vault = board.admin.vault;
    let (made, _) = flow::uploaded(&board, 1, 2).await;
    let (newcomer, newcomer_client) = join(&server.url(""), &board.admin, "Newcomer").await;
    let roster = board.admin.roster().await;
    let new_board = NewBoard::of(&roster, 2).unwrap();

    // Member 1 (share 2) deals first, crookedly for the newcomer (the last holder); the
    // admin then deals honestly into the same re-share.
    let (crook, crook_client) = flow::member(&board, 1);
    let listed = item(crook_client, vault, made.id).await;
    let key = crook_client
        .shared_key(vault, &roster, &listed)
        .await
        .unwrap();
    let sealed = crook_client.recording_share(vault, made.id).await.unwrap();
    let share = threshold::open_share(
        &sealed.sealed.0,
        crook.age_key(),
        &key.binding_for(&crook.fingerprint()).unwrap(),
    )
    .unwrap();
    let victim = new_board.holders.len() - 1;
    let crooked = crooked_deal(crook, &key, &new_board, &roster, &share, victim);
    crook_client.deal_reshare(vault, &crooked).await.unwrap();
    deal(
        &board.admin.identity,
        &board.admin.client,
        &roster,
        made.id,
        2,
    )
    .await;

    // The newcomer's device names the holder whose sub-share does not match.
    let (key, open) = offered(&newcomer_client, &roster, made.id).await;
    let named = reshare::accept(&newcomer, &key, &new_board, &roster, &open).unwrap_err();
    assert!(named.to_string().contains("holder 2"), "{named}");
    // Another new holder, whose sub-shares are good, takes their share.
    let (key, open) = offered(&board.admin.client, &roster, made.id).await;
    let admins_share =
        reshare::accept(&board.admin.identity, &key, &new_board, &roster, &open).unwrap();
    board
        .admin
        .client
        .accept_reshare(vault, &open.reshare_id, &admins_share)
        .await
        .unwrap();

    // The re-share cannot complete. The admin removes the crook: the roster it moved the key
    // to is gone, so the server drops it with its sub-shares (the crook's among them) and
    // takes no more shares for it.
    flow::remove(&board, 1).await;
    let roster = board.admin.roster().await;
    assert!(
        item(&board.admin.client, vault, made.id)
            .await
            .open
            .is_none()
    );
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM reshare_subshares WHERE reshare_id = $1")
            .bind(&open.reshare_id)
            .fetch_one(server.app.db.pool())
            .await
            .unwrap();
    assert_eq!(left, 0, "the dropped re-share's sub-shares are deleted");
    assert!(
        audit_actions(&board.admin.client, vault)
            .await
            .contains(&"reshare.dropped".to_owned())
    );
    let late = board
        .admin
        .client
        .accept_reshare(vault, &open.reshare_id, &admins_share)
        .await;
    assert_eq!(refused(late), (404, "not_found".into()));

    // The two honest holders deal to the new roster, and the new re-share completes.
    for index in [0, 2] {
        let (identity, client) = flow::member(&board, index);
        deal(identity, client, &roster, made.id, 2).await;
    }
    let new_board = NewBoard::of(&roster, 2).unwrap();
    let holders = [
        flow::member(&board, 0),
        flow::member(&board, 2),
        (&newcomer, &newcomer_client),
    ];
    let last = take_new_shares(&holders, &roster, &new_board, made.id).await;
    assert!(last.completed);
}
