//! Rotating the vault's search key when a member leaves, on SQLite and PostgreSQL: the new
//! key finds released minutes once a member's device re-indexed them, searches keep working
//! in between (a query carries both keys' tokens), and the old key's tokens find nothing
//! after. Devices refuse a key chain the server rewrote: a withheld rotation (the newest key
//! it admits to predates the removal), an old key's copy served as the new one's, and a
//! rotation signed by a member who is no admin. The server refuses rotations and re-indexes
//! that do not fit.

mod common;

use common::{
    Board, audit_actions,
    flow::{
        Node, approved_node, complete_release, make_release_under, member, release_approved,
        remove, transcribed, uploaded,
    },
    refused,
};
use quorate_api::Base64;
use quorate_client::{
    Client,
    minutes::{Reindexed, SearchKeyRole, SearchKeys},
};
use quorate_crypto::{
    VaultId,
    blind::{BlindToken, SearchKey},
    release::{SearchKeyRotation, postings},
    roster::Roster,
    statement::SignedStatement,
};
use quorate_server::test_support::{Backend, TestApp, TestServer};
use sqlx::Row;

/// A board of an admin and three members (k = 2) with an approved node, the vault's search
/// key made by the first admin and sealed to everyone, and one released transcript ("The
/// library budget is approved.") indexed under it. Returns the board, the node and the key.
async fn board_with_minutes(server: &TestServer) -> (Board, Node, SearchKeys) {
    let board = Board::new(server, 3, 2).await;
    let node = approved_node(&server.url(""), &board).await;
    let (vault, admin) = (board.admin.vault, &board.admin);
    let roster = admin.roster().await;
    admin
        .client
        .share_keys(vault, &roster, &admin.identity, SearchKeyRole::Make, None)
        .await
        .unwrap();
    let key = open_key(&board, 0, &roster).await;
    let (made, _) = uploaded(&board, 1, 2).await;
    let transcript = transcribed(&board, &node, &made, &[0, 2]).await;
    release_approved(&board, &node, &transcript, &[0, 2]).await;
    let claim = node.client.claim_job().await.unwrap().expect("the release");
    let release = make_release_under(&claim.request_id, &node, &transcript, &roster, &key.current);
    complete_release(&node, &claim, &release).await.unwrap();
    (board, node, key)
}

/// The admin's device rotates the search key for `roster`; returns the new generation.
async fn rotate(board: &Board, roster: &Roster) -> u64 {
    board
        .admin
        .client
        .rotate_search_key(board.admin.vault, roster, &board.admin.identity)
        .await
        .unwrap()
}

/// Member `index`'s search keys as their device opens them.
async fn open_key(board: &Board, index: usize, roster: &Roster) -> SearchKeys {
    let (identity, client) = member(board, index);
    client
        .open_search_key(board.admin.vault, roster, identity.age_key())
        .await
        .unwrap()
        .expect("a key sealed to them")
}

/// How many released transcripts `tokens` find.
async fn hits(
    client: &Client,
    vault: VaultId,
    tokens: (&[BlindToken], Option<&[BlindToken]>),
) -> u64 {
    client.search(vault, tokens, 10, 0).await.unwrap().total
}

fn words(text: &str) -> Vec<String> {
    quorate_crypto::blind::normalise(text)
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(server.app.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

quorate_server::per_backend!(a_rotated_key_finds_released_minutes_and_the_old_key_finds_nothing);

async fn a_rotated_key_finds_released_minutes_and_the_old_key_finds_nothing(backend: Backend) {
    let server = TestApp::start(backend).await;
    let (board, _node, old) = board_with_minutes(&server).await;
    let vault = board.admin.vault;
    let library = words("library");
    let (reader_identity, reader) = member(&board, 2);
    let (old_tokens, _) = old.query(&library);
    assert_eq!(hits(reader, vault, (&old_tokens, None)).await, 1);

    // Member 3 leaves holding the key: every device now sees it as stale.
    remove(&board, 3).await;
    let roster = board.admin.roster().await;
    let stale = open_key(&board, 2, &roster).await;
    assert_eq!(stale.stale_since, Some(roster.len() - 1), "{backend:?}");
    let refusal = reader
        .reindex(vault, &roster, reader_identity, |_, _| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(refusal.contains("rotates it first"), "{refusal}");

    assert_eq!(rotate(&board, &roster).await, 1);
    let keys = open_key(&board, 2, &roster).await;
    assert_eq!(
        (keys.generation, keys.reindexing, keys.stale_since),
        (1, 1, None)
    );
    assert_eq!(
        keys.previous.as_ref().map(SearchKey::check_value),
        Some(old.current.check_value()),
        "the previous key comes along while minutes are under it"
    );

    // Searches keep working through the rotation: the query carries both keys' tokens.
    let (new_tokens, previous) = keys.query(&library);
    assert_eq!(
        hits(reader, vault, (&new_tokens, previous.as_deref())).await,
        1
    );
    assert_eq!(hits(reader, vault, (&new_tokens, None)).await, 0);

    // A member (not an admin) re-indexes on their device, with progress.
    let mut seen = Vec::new();
    let done = reader
        .reindex(vault, &roster, reader_identity, |done, total| {
            seen.push((done, total));
        })
        .await
        .unwrap();
    assert_eq!(
        done,
        Reindexed {
            reindexed: 1,
            ..Reindexed::default()
        }
    );
    assert_eq!(seen, [(1, 1)]);

    assert_eq!(hits(reader, vault, (&new_tokens, None)).await, 1);
    assert_eq!(
        hits(reader, vault, (&old_tokens, None)).await,
        0,
        "the old key's tokens find nothing"
    );
    for word in words("The library budget is approved.") {
        let (tokens, _) = old.query(&[word]);
        assert_eq!(hits(reader, vault, (&tokens, None)).await, 0);
    }
    // Only the new key's postings are left (five words), and the old key's sealed copies
    // are gone.
    assert_eq!(count(&server, "SELECT COUNT(*) FROM index_terms").await, 5);
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM search_key_copies WHERE generation = 0"
        )
        .await,
        0
    );
    let after = open_key(&board, 1, &roster).await;
    assert_eq!((after.reindexing, after.previous.is_none()), (0, true));
    let actions = audit_actions(&board.admin.client, vault).await;
    for action in [
        "search_key.rotated",
        "released.reindexed",
        "search_key.older_copies_deleted",
    ] {
        assert!(actions.iter().any(|seen| seen == action), "{action}");
    }
    // Nothing is left to re-index: another run does nothing.
    let again = board
        .admin
        .client
        .reindex(vault, &roster, &board.admin.identity, |_, _| {})
        .await
        .unwrap();
    assert_eq!(again, Reindexed::default());
}

quorate_server::per_backend!(a_device_refuses_a_search_key_chain_the_server_rewrote);

async fn a_device_refuses_a_search_key_chain_the_server_rewrote(backend: Backend) {
    let server = TestApp::start(backend).await;
    let (board, _node, old) = board_with_minutes(&server).await;
    let vault = board.admin.vault;
    let pool = server.app.db.pool();
    remove(&board, 3).await;
    let roster = board.admin.roster().await;
    rotate(&board, &roster).await;
    let (reader_identity, reader) = member(&board, 2);
    let rotation: Vec<u8> = sqlx::query("SELECT statement FROM search_key_rotations")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0);

    // The server withholds the rotation: the newest key it admits to is the one member 3
    // holds, and the device says so rather than index or re-index under it.
    sqlx::query("DELETE FROM search_key_rotations")
        .execute(pool)
        .await
        .unwrap();
    let withheld = open_key(&board, 2, &roster).await;
    assert_eq!(
        (withheld.generation, withheld.stale_since),
        (0, Some(roster.len() - 1)),
        "{backend:?}"
    );
    let refusal = reader
        .reindex(vault, &roster, reader_identity, |_, _| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refusal.contains("removed a member who holds it"),
        "{refusal}"
    );
    sqlx::query(
        "INSERT INTO search_key_rotations (vault_id, generation, statement, created_at) VALUES ($1, 1, $2, 0)",
    )
    .bind(vault.to_string())
    .bind(rotation)
    .execute(pool)
    .await
    .unwrap();

    // The server serves member 2's copy of the old key as their copy of the new one.
    let holder = reader_identity.fingerprint().to_hex();
    let old_copy: Vec<u8> =
        sqlx::query("SELECT sealed FROM search_key_copies WHERE generation = 0 AND holder = $1")
            .bind(&holder)
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
    let new_copy: Vec<u8> =
        sqlx::query("SELECT sealed FROM search_key_copies WHERE generation = 1 AND holder = $1")
            .bind(&holder)
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
    let set_copy = |sealed: Vec<u8>| {
        sqlx::query("UPDATE search_key_copies SET sealed = $1 WHERE generation = 1 AND holder = $2")
            .bind(sealed)
            .bind(holder.clone())
            .execute(pool)
    };
    set_copy(old_copy).await.unwrap();
    let refusal = reader
        .open_search_key(vault, &roster, reader_identity.age_key())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refusal.contains("not the one an admin committed to"),
        "{refusal}"
    );
    set_copy(new_copy).await.unwrap();

    // The server puts in a rotation of its own, to a key it chose, signed by member 1 (who
    // is no admin) and sealed to member 2.
    let chosen = SearchKey::generate();
    let forged = SignedStatement::sign(
        &SearchKeyRotation {
            vault_id: vault,
            generation: 1,
            previous_check: old.current.check_value(),
            key_check: chosen.check_value(),
            roster_sequence: roster.len() - 1,
            roster_head: roster.head(),
            issued_at: 1,
        },
        member(&board, 1).0,
    );
    sqlx::query("UPDATE search_key_rotations SET statement = $1")
        .bind(forged.to_bytes())
        .execute(pool)
        .await
        .unwrap();
    set_copy(
        chosen
            .seal(vault, &[reader_identity.public().recipient])
            .unwrap(),
    )
    .await
    .unwrap();
    let refusal = reader
        .open_search_key(vault, &roster, reader_identity.age_key())
        .await
        .unwrap_err()
        .to_string();
    assert!(refusal.contains("who may not sign it"), "{refusal}");
}

quorate_server::per_backend!(the_server_refuses_rotations_and_re_indexes_that_do_not_fit);

async fn the_server_refuses_rotations_and_re_indexes_that_do_not_fit(backend: Backend) {
    let server = TestApp::start(backend).await;
    let (board, node, old) = board_with_minutes(&server).await;
    let vault = board.admin.vault;
    let before = board.admin.roster().await;
    // A second transcript's release is claimed before member 3 leaves.
    let (made, _) = uploaded(&board, 1, 2).await;
    let second = transcribed(&board, &node, &made, &[0, 2]).await;
    release_approved(&board, &node, &second, &[0, 2]).await;
    let claim = node.client.claim_job().await.unwrap().expect("the release");
    remove(&board, 3).await;
    let roster = board.admin.roster().await;
    let post = |client: &Client, path: String, body: serde_json::Value| {
        answered(
            reqwest::Client::new()
                .post(server.url(&format!("/api/v1/vaults/{vault}/{path}")))
                .bearer_auth(client.token().unwrap())
                .json(&body),
        )
    };
    let rotation = |head: &Roster, generation: u64| {
        SignedStatement::sign(
            &SearchKeyRotation {
                vault_id: vault,
                generation,
                previous_check: old.current.check_value(),
                key_check: SearchKey::generate().check_value(),
                roster_sequence: head.len() - 1,
                roster_head: head.head(),
                issued_at: 1,
            },
            &board.admin.identity,
        )
    };
    let grants = |key: &SearchKey| -> serde_json::Value {
        roster
            .members()
            .iter()
            .map(|holder| {
                serde_json::json!({
                    "holder": holder.fingerprint.to_hex(),
                    "sealed": Base64::from(key.seal(vault, &[holder.public.recipient]).unwrap()),
                })
            })
            .collect()
    };
    let key = SearchKey::generate();
    let upload = |signed: &SignedStatement, grants: serde_json::Value| serde_json::json!({ "rotation": Base64::from(signed.to_bytes()), "grants": grants });

    let cases = [
        (
            "made for the roster before member 3 left",
            upload(&rotation(&before, 1), grants(&key)),
            (409, "stale_rotation"),
        ),
        (
            "skips a generation",
            upload(&rotation(&roster, 2), grants(&key)),
            (409, "search_key_rotated"),
        ),
        (
            "leaves a current member without a copy",
            upload(&rotation(&roster, 1), serde_json::json!([])),
            (400, "invalid_grant"),
        ),
    ];
    for (case, body, expected) in cases {
        let (status, code) = post(&board.admin.client, "search-key/rotations".into(), body).await;
        assert_eq!((status, code.as_str()), expected, "{case} ({backend:?})");
    }
    let (status, code) = post(
        member(&board, 1).1,
        "search-key/rotations".into(),
        upload(&rotation(&roster, 1), grants(&key)),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (403, "admin_only"),
        "members do not rotate"
    );
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM search_key_rotations").await,
        0,
        "nothing stored half-way"
    );

    rotate(&board, &roster).await;
    let keys = open_key(&board, 2, &roster).await;

    // Sealing an old generation's key as the newest's is refused.
    let (status, code) = post(
        &board.admin.client,
        "search-key".into(),
        serde_json::json!({ "commitment": null, "generation": 0, "grants": grants(&old.current) }),
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "search_key_rotated"));

    // A re-index must count the transcript's words, under the newest generation.
    let transcript = reader_released(&board).await;
    let transcript = transcript.as_str();
    let put = |body: serde_json::Value| {
        answered(
            reqwest::Client::new()
                .put(server.url(&format!(
                    "/api/v1/vaults/{vault}/released/{transcript}/index"
                )))
                .bearer_auth(member(&board, 2).1.token().unwrap())
                .json(&body),
        )
    };
    let packed = |text: &str| -> Base64 {
        let mut bytes = Vec::new();
        for posting in postings(&keys.current, [text]) {
            bytes.extend(posting.token.0);
            bytes.extend(posting.segment.to_be_bytes());
            bytes.extend(posting.tf.to_be_bytes());
        }
        Base64::from(bytes)
    };
    let short = packed("The library budget.");
    let whole = packed("The library budget is approved.");
    let (status, code) = put(serde_json::json!({ "generation": 1, "postings": short })).await;
    assert_eq!((status, code.as_str()), (400, "invalid_postings"));
    let (status, code) = put(serde_json::json!({ "generation": 0, "postings": whole })).await;
    assert_eq!((status, code.as_str()), (409, "search_key_rotated"));
    let (status, _) = put(serde_json::json!({ "generation": 1, "postings": whole })).await;
    assert_eq!(status, 200);
    let (status, code) = put(serde_json::json!({ "generation": 1, "postings": whole })).await;
    assert_eq!((status, code.as_str()), (409, "already_indexed"));

    // A node that indexed new minutes under the old key is refused.
    let stale = make_release_under(&claim.request_id, &node, &second, &roster, &old.current);
    let (status, code) = refused(complete_release(&node, &claim, &stale).await);
    assert_eq!((status, code.as_str()), (409, "search_key_rotated"));
}

/// Sends `request`; returns the answer's status and error code (empty when there is none).
async fn answered(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

/// The released transcript's ID, as member 2 lists it.
async fn reader_released(board: &Board) -> String {
    let released = member(board, 2)
        .1
        .released(board.admin.vault, None)
        .await
        .unwrap();
    released[0].transcript_id.clone()
}
