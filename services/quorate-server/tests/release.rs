//! Releasing a transcript through the HTTP API, on SQLite and PostgreSQL: one release request
//! per transcript is open at a time, a completion never overwrites a stored copy or sealed
//! transcript (one sent twice at once, a second job's, one reusing a transcript's ID), and a release key
//! sealed to a newcomer by a member can be replaced only by an admin's.

mod common;

use common::{
    Board,
    flow::{
        MODEL, Node, Transcribed, approve, approve_release, approved_node, ask_and_approve,
        complete_release, complete_release_with, make_release, member, release_approved,
        release_request, released, request, seal_transcript_as, transcribed, unlock, uploaded,
    },
    join, refused,
};
use quorate_api::SealedGrant;
use quorate_crypto::{
    AgeSecretKey, RequestId, release::ReleaseManifest, release::seal_release_key,
    statement::UnlockRequest,
};
use quorate_server::test_support::{Backend, TestApp, TestDb, TestServer};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// A board of an admin and two members (k = 2) with an approved node.
async fn board_and_node(server: &TestServer) -> (Board, Node) {
    let board = Board::new(server, 2, 2).await;
    let node = approved_node(&server.url(""), &board).await;
    (board, node)
}

async fn count(server: &TestServer, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(server.app.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

/// The released copy as a member downloads it.
async fn released_copy(server: &TestServer, board: &Board, transcript: &Transcribed) -> Vec<u8> {
    let response = reqwest::Client::new()
        .get(server.url(&format!(
            "/api/v1/vaults/{}/released/{}/ciphertext",
            board.admin.vault, transcript.id
        )))
        .bearer_auth(board.admin.client.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

quorate_server::per_backend!(a_transcript_has_one_release_request_open_at_a_time);

async fn a_transcript_has_one_release_request_open_at_a_time(backend: Backend) {
    let server = TestApp::start(backend).await;
    let (board, node) = board_and_node(&server).await;
    let vault = board.admin.vault;
    let (made, _) = uploaded(&board, 1, 2).await;
    let transcript = transcribed(&board, &node, &made, &[0, 2]).await;

    // Two members ask at the same moment: one request is opened, the other refused.
    let first = release_request(&board, 1, transcript.id, node.id);
    let second = release_request(&board, 2, transcript.id, node.id);
    let (a, b) = tokio::join!(
        member(&board, 1).1.create_request(vault, &first),
        member(&board, 2).1.create_request(vault, &second),
    );
    let (opened, requester, refusal) = match (a, b) {
        (Ok(_), refusal) => (&first, 1, refusal),
        (refusal, Ok(_)) => (&second, 2, refusal),
        other => panic!("{backend:?}: one of the two must be opened: {other:?}"),
    };
    assert_eq!(
        refused(refusal),
        (409, "release_pending".into()),
        "{backend:?}"
    );
    let voters: Vec<usize> = [0, 1, 2].into_iter().filter(|v| *v != requester).collect();
    let id = opened
        .verify::<UnlockRequest>()
        .unwrap()
        .statement
        .request_id;

    // While it is open, and while its job waits or runs, no other is taken.
    let (share, vote) =
        approve_release(&board, voters[0], &transcript, opened, &node.identity).await;
    member(&board, voters[0])
        .1
        .vote(vault, id, &vote, Some(&share))
        .await
        .unwrap();
    let again = release_request(&board, 0, transcript.id, node.id);
    assert_eq!(
        refused(board.admin.client.create_request(vault, &again).await),
        (409, "release_pending".into())
    );
    let (share, vote) =
        approve_release(&board, voters[1], &transcript, opened, &node.identity).await;
    let view = member(&board, voters[1])
        .1
        .vote(vault, id, &vote, Some(&share))
        .await
        .unwrap();
    assert_eq!(view.status, quorate_api::RequestStatus::Quorate);
    assert_eq!(
        refused(board.admin.client.create_request(vault, &again).await),
        (409, "release_pending".into()),
        "its job is queued"
    );
    let claim = node.client.claim_job().await.unwrap().expect("the job");
    assert_eq!(
        refused(board.admin.client.create_request(vault, &again).await),
        (409, "release_pending".into()),
        "its job is leased"
    );

    // The job fails: another release may be asked for, and once it is done, none.
    node.client
        .fail_job(&claim.request_id, &claim.lease_token, "out of memory")
        .await
        .unwrap();
    release_approved(&board, &node, &transcript, &[0, 2]).await;
    let claim = node.client.claim_job().await.unwrap().expect("the job");
    let release = make_release(&claim.request_id, &node, &transcript, &board.roster);
    complete_release(&node, &claim, &release).await.unwrap();
    let late = release_request(&board, 2, transcript.id, node.id);
    assert_eq!(
        refused(member(&board, 2).1.create_request(vault, &late).await),
        (409, "already_released".into())
    );
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM unlock_requests WHERE purpose = 'release-transcript'"
        )
        .await,
        2,
        "{backend:?}: only the two requests taken were stored"
    );
    server.stop().await;
}

quorate_server::per_backend!(a_completion_never_overwrites_a_stored_copy_or_transcript);

async fn a_completion_never_overwrites_a_stored_copy_or_transcript(backend: Backend) {
    let server = TestApp::start(backend).await;
    let (board, node) = board_and_node(&server).await;
    let vault = board.admin.vault;
    let (made, _) = uploaded(&board, 1, 2).await;
    let transcript = transcribed(&board, &node, &made, &[0, 2]).await;

    // A node reusing a stored transcript's ID for another job's transcript is refused,
    // and the stored transcript keeps its bytes.
    let signed = request(&board, 1, &made, node.id, 3600);
    ask_and_approve(&board, 1, &signed, &[0, 2], async |voter| {
        approve(&board, voter, &made, &signed, &node.identity).await
    })
    .await;
    let claim = node.client.claim_job().await.unwrap().expect("a job");
    let (_, manifest, signed_manifest) = unlock(&claim, &node.identity);
    let (reused, sealed, shares, _) = seal_transcript_as(
        transcript.id,
        &claim,
        &node,
        (&manifest, &signed_manifest),
        &board.roster,
        b"other minutes",
        MODEL,
    );
    assert_eq!(
        refused(
            node.client
                .complete_job(
                    &claim.request_id,
                    &claim.lease_token,
                    &reused,
                    &sealed,
                    &shares
                )
                .await
        ),
        (409, "transcript_exists".into()),
        "{backend:?}"
    );
    let mut stored = Vec::new();
    board
        .admin
        .client
        .download_transcript(vault, transcript.id, u64::MAX, &mut stored)
        .await
        .unwrap();
    assert!(
        stored == transcript.sealed,
        "{backend:?}: the transcript kept its bytes"
    );
    assert_eq!(
        server.app.blobs.list("transcripts").await.unwrap().len(),
        1,
        "the refused transcript left no object"
    );

    // The node sends its completion twice at once (a retry after a timeout), each with
    // another copy: one is stored, the other refused, and the stored copy is the one its
    // stored manifest describes.
    release_approved(&board, &node, &transcript, &[0, 2]).await;
    let claim = node.client.claim_job().await.unwrap().expect("the release");
    let (one, two) = (
        make_release(&claim.request_id, &node, &transcript, &board.roster),
        make_release(&claim.request_id, &node, &transcript, &board.roster),
    );
    let (first, second) = tokio::join!(
        complete_release(&node, &claim, &one),
        complete_release(&node, &claim, &two)
    );
    let (kept, refusal) = match (first, second) {
        (Ok(_), refusal) => (&one, refusal),
        (refusal, Ok(_)) => (&two, refusal),
        other => panic!("{backend:?}: one of the two must be stored: {other:?}"),
    };
    // Which refusal the loser gets depends on how far the winner got: its lease taken, the
    // job done, or the copy stored already.
    let (status, code) = refused(refusal);
    assert!(
        status == 409
            && ["lease_lost", "already_done", "already_released"].contains(&code.as_str()),
        "{backend:?}: {status} {code}"
    );
    let described = |copy: &[u8]| {
        let manifest = kept.manifest.verify::<ReleaseManifest>().unwrap().statement;
        copy.len() as u64 == manifest.ciphertext_len
            && <[u8; 32]>::from(Sha256::digest(copy)) == manifest.ciphertext_sha256
    };
    assert!(
        described(&released_copy(&server, &board, &transcript).await),
        "{backend:?}: the stored copy is the one its manifest describes"
    );

    // A second release job for the same transcript (a database an older server left with
    // two quorate requests) completes with yet another copy: refused, copy untouched.
    let legacy = RequestId::random().to_string();
    for sql in [
            "INSERT INTO unlock_requests (id, vault_id, subject_kind, subject_id, purpose, node_id, requester, statement, digest,
                                          threshold_k, eligible, status, created_at, expires_at)
             SELECT $1, vault_id, subject_kind, subject_id, purpose, node_id, requester, statement, digest,
                    threshold_k, eligible, 'quorate', created_at, expires_at FROM unlock_requests WHERE id = $2",
            "INSERT INTO jobs (request_id, vault_id, node_id, status, created_at, updated_at)
             SELECT $1, vault_id, node_id, 'queued', created_at, updated_at FROM jobs WHERE request_id = $2",
        ] {
            sqlx::query(sql)
                .bind(&legacy)
                .bind(&claim.request_id)
                .execute(server.app.db.pool())
                .await
                .unwrap();
        }
    let second = node.client.claim_job().await.unwrap().expect("the second");
    assert_eq!(second.request_id, legacy);
    let other = make_release(&legacy, &node, &transcript, &board.roster);
    assert_eq!(
        refused(complete_release(&node, &second, &other).await),
        (409, "already_released".into()),
        "{backend:?}"
    );
    assert!(described(
        &released_copy(&server, &board, &transcript).await
    ));
    assert_eq!(
        server.app.blobs.list("released").await.unwrap().len(),
        1,
        "{backend:?}: the refused copies left no object"
    );
    // The job that completed answers the same to a retry of the completion it stored.
    complete_release_with(&node, &claim.request_id, &claim.lease_token, kept)
        .await
        .unwrap();
    server.stop().await;
}

quorate_server::per_backend!(
    a_release_key_a_member_sealed_to_a_newcomer_is_replaced_only_by_an_admins
);

async fn a_release_key_a_member_sealed_to_a_newcomer_is_replaced_only_by_an_admins(
    backend: Backend,
) {
    let server = TestApp::start(backend).await;
    let (board, node) = board_and_node(&server).await;
    let vault = board.admin.vault;
    let minutes = released(&board, &node).await;
    let manifest = minutes
        .release
        .manifest
        .verify::<ReleaseManifest>()
        .unwrap()
        .statement;
    let (newcomer, newcomer_client) = join(&server.url(""), &board.admin, "Newcomer").await;
    let grant_for_newcomer = |key: &AgeSecretKey| {
        vec![SealedGrant {
            holder: newcomer.fingerprint().to_hex(),
            sealed: seal_release_key(
                vault,
                minutes.transcript.id,
                key,
                &newcomer.public().recipient,
            )
            .unwrap()
            .into(),
        }]
    };

    // A member seals some other key to the newcomer first: the newcomer's device refuses
    // it. A second member's grant does not replace it either.
    let squatted = grant_for_newcomer(&AgeSecretKey::generate());
    member(&board, 2)
        .1
        .add_release_grants(vault, minutes.transcript.id, squatted.clone())
        .await
        .unwrap();
    newcomer_client
        .release_key(vault, &manifest, newcomer.age_key())
        .await
        .expect_err("the newcomer's device refuses a key for another copy");
    let good = grant_for_newcomer(&minutes.release.key);
    member(&board, 1)
        .1
        .add_release_grants(vault, minutes.transcript.id, good.clone())
        .await
        .unwrap();
    newcomer_client
        .release_key(vault, &manifest, newcomer.age_key())
        .await
        .expect_err("a member's grant never replaces another's");

    // The admin's grant replaces it: the newcomer opens the copy.
    board
        .admin
        .client
        .add_release_grants(vault, minutes.transcript.id, good)
        .await
        .unwrap();
    let key = newcomer_client
        .release_key(vault, &manifest, newcomer.age_key())
        .await
        .unwrap_or_else(|error| panic!("{backend:?}: {error}"));
    assert_eq!(key.recipient(), manifest.release_recipient);

    // Nor can a member replace the admin's grant afterwards.
    member(&board, 2)
        .1
        .add_release_grants(vault, minutes.transcript.id, squatted)
        .await
        .unwrap();
    newcomer_client
        .release_key(vault, &manifest, newcomer.age_key())
        .await
        .unwrap();
    let replaced = board
        .admin
        .client
        .audit_page(vault, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == "release.shared")
        .map(|entry| entry.actor)
        .collect::<Vec<_>>();
    assert_eq!(
        replaced,
        [
            member(&board, 2).0.fingerprint().to_hex(),
            board.admin.identity.fingerprint().to_hex()
        ],
        "{backend:?}: the squat and its replacement are audited, the ignored grants not"
    );
    server.stop().await;
}

quorate_server::per_backend!(rows_stored_before_fresh_object_names_keep_naming_their_objects);

async fn rows_stored_before_fresh_object_names_keep_naming_their_objects(backend: Backend) {
    // A database as the server left it before objects had fresh names (migration 7).
    let db = TestDb::new(backend).await;
    let migrations = sqlx::migrate::Migrator::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(backend.name()),
    )
    .await
    .unwrap();
    let old = quorate_server::Db::connect(&db.url).await.unwrap();
    migrations.run_to(7, old.pool()).await.unwrap();
    let (vault, transcript) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for sql in [
            "INSERT INTO vaults (id, name, created_at) VALUES ($1, 'v', 0)",
            "INSERT INTO transcripts (id, vault_id, recording_id, request_id, node_id, manifest, manifest_digest, ciphertext_len, created_at)
             VALUES ($2, $1, 'r', 'q1', 'n', $3, $3, 0, 0)",
            "INSERT INTO released_transcripts (transcript_id, vault_id, recording_id, request_id, manifest, manifest_digest, ciphertext_len, words, created_at)
             VALUES ($2, $1, 'r', 'q2', $3, $3, 0, 0, 0)",
        ] {
            sqlx::query(sql)
                .bind(vault.to_string())
                .bind(transcript.to_string())
                .bind(Vec::<u8>::new())
                .execute(old.pool())
                .await
                .unwrap();
        }
    old.migrate().await.unwrap();
    let objects: Vec<String> = sqlx::query(
        "SELECT object FROM transcripts UNION ALL SELECT object FROM released_transcripts",
    )
    .fetch_all(old.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get("object").unwrap())
    .collect();
    assert_eq!(
        objects,
        [
            format!("transcripts/{vault}/{transcript}.age"),
            format!("released/{vault}/{transcript}.age")
        ],
        "{backend:?}: the names those rows' objects were written at"
    );
    old.close().await;
    db.drop_database().await;
}
