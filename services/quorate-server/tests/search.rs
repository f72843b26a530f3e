//! Search over the blind index through the HTTP API, on SQLite and PostgreSQL: BM25 ranks a
//! fixture corpus whose right answers are known, pages through it, names the segments that
//! hold the words, never returns another vault's transcripts, and refuses malformed queries.
//! (The corpus is put into the index directly; the e2e tests release real transcripts.)

mod common;

use common::{Board, refused};
use quorate_crypto::{
    RecordingId, TranscriptId, VaultId,
    blind::{BlindToken, SearchKey, normalise},
    release::postings,
};
use quorate_server::release::seed_released;
use quorate_server::test_support::{Backend, TestApp};

/// Meetings and their segments.
const CORPUS: [(&str, &[&str]); 4] = [
    (
        "harbour",
        &[
            "The harbour bridge needs repairs.",
            "Repairs to the harbour bridge cost eleven million.",
            "The harbour master spoke.",
        ],
    ),
    (
        "library",
        &[
            "The new library opens in spring.",
            "The library budget was approved.",
        ],
    ),
    (
        "budget",
        &[
            "The budget was approved.",
            "Budget, budget, budget: the treasurer repeated the budget.",
            "Harbour fees feed the budget.",
        ],
    ),
    ("weather", &["It rained all week, the whole week."]),
];

fn tokens(key: &SearchKey, query: &str) -> Vec<BlindToken> {
    normalise(query)
        .iter()
        .map(|word| key.token(word))
        .collect()
}

quorate_server::per_backend!(bm25_ranks_the_fixture_corpus_within_the_callers_vault);

async fn bm25_ranks_the_fixture_corpus_within_the_callers_vault(backend: Backend) {
    let server = TestApp::start(backend).await;
    let board = Board::new(&server, 1, 1).await;
    let (vault, client) = (board.admin.vault, &board.admin.client);
    let key = SearchKey::generate();
    let mut names = std::collections::HashMap::new();
    for (name, segments) in CORPUS {
        let transcript = TranscriptId::random().to_string();
        seed_released(
            &server.app.db,
            &vault.to_string(),
            &RecordingId::random().to_string(),
            &transcript,
            &postings(&key, segments.iter().copied()),
        )
        .await
        .unwrap();
        names.insert(transcript, name);
    }
    // Another vault holds a meeting about the harbour too, under the same key.
    let other = VaultId::random().to_string();
    sqlx::query("INSERT INTO vaults (id, name, created_at) VALUES ($1, 'other', 0)")
        .bind(&other)
        .execute(server.app.db.pool())
        .await
        .unwrap();
    seed_released(
        &server.app.db,
        &other,
        &RecordingId::random().to_string(),
        &TranscriptId::random().to_string(),
        &postings(&key, ["harbour harbour harbour bridge"]),
    )
    .await
    .unwrap();

    let search = |query: &'static str, limit: u32, offset: u32| {
        let tokens = tokens(&key, query);
        async move {
            client
                .search(vault, (&tokens, None), limit, offset)
                .await
                .unwrap()
        }
    };
    let ranked = |results: &quorate_api::SearchResults| -> Vec<&str> {
        results
            .hits
            .iter()
            .map(|hit| *names.get(&hit.transcript_id).expect("only this vault's"))
            .collect()
    };

    let found = search("Harbour bridge", 10, 0).await;
    assert_eq!(ranked(&found), ["harbour", "budget"], "{backend:?}");
    assert_eq!(found.total, 2);
    assert_eq!(found.hits[0].segments, [0, 1, 2], "both words first");
    assert_eq!(found.hits[1].segments, [2]);
    assert!(found.hits[0].score > found.hits[1].score);

    let found = search("BUDGET", 10, 0).await;
    assert_eq!(ranked(&found), ["budget", "library"], "{backend:?}");
    assert_eq!(found.hits[0].segments[0], 1, "the segment saying it most");

    assert_eq!(ranked(&search("rained", 10, 0).await), ["weather"]);
    assert_eq!(search("submarine", 10, 0).await.total, 0);

    // Every meeting says "the": four hits, two pages of two, none repeated.
    let first = search("the", 2, 0).await;
    let second = search("the", 2, 2).await;
    assert_eq!((first.total, second.total), (4, 4));
    let mut all = ranked(&first);
    all.extend(ranked(&second));
    all.sort_unstable();
    assert_eq!(all, ["budget", "harbour", "library", "weather"]);

    // Malformed queries are refused, saying what is wrong.
    for (tokens, limit) in [(vec![], 10), (tokens(&key, "harbour"), 0)] {
        let (status, code) = refused(client.search(vault, (&tokens, None), limit, 0).await);
        assert_eq!((status, code.as_str()), (400, "invalid_query"));
    }
    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/vaults/{vault}/search")))
        .bearer_auth(client.token().unwrap())
        .json(&serde_json::json!({ "tokens": ["not hex"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Another vault's path is not found.
    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/vaults/{other}/search")))
        .bearer_auth(client.token().unwrap())
        .json(&serde_json::json!({ "tokens": [tokens(&key, "harbour")[0].to_string()] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}
