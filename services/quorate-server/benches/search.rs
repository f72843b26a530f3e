//! Search benchmark (issue 7): 1,000 released synthetic transcripts of about 9,000 words
//! each (words drawn from a 20,000-word vocabulary with Zipf's law, in segments of 20 to 30
//! words), indexed as a release indexes them, then two-term searches through the HTTP API
//! as a member makes them: p50 and p95 latency, on SQLite and on PostgreSQL, and the index
//! size per transcript.
//!
//! Run: `cargo bench -p quorate-server --bench search` (`QUORATE_BENCH_TRANSCRIPTS` and
//! `QUORATE_BENCH_WORDS` to change the corpus, `QUORATE_BENCH_BACKENDS=postgres` for one). PostgreSQL at 127.0.0.1:5432
//! (`QUORATE_TEST_POSTGRES_URL` to change).

use std::time::Instant;

use quorate_crypto::{
    RecordingId, TranscriptId,
    blind::{BlindToken, SearchKey},
    release::postings,
};
use quorate_server::{
    release::seed_released,
    test_support::{Backend, TestApp},
};

// The server tests' helpers: the first admin of a fresh server.
#[path = "../tests/common/mod.rs"]
mod common;

use common::FirstAdmin;

const VOCABULARY: usize = 20_000;
const QUERIES: usize = 300;

/// xorshift64*: a small deterministic generator, so every run searches the same corpus.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws word ranks by Zipf's law (exponent 1).
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(size: usize) -> Self {
        let mut total = 0.0;
        Self(
            (1..=size)
                .map(|rank| {
                    total += 1.0 / rank as f64;
                    total
                })
                .collect(),
        )
    }

    fn draw(&self, random: &mut Random) -> usize {
        let target = random.unit() * self.0.last().unwrap();
        self.0.partition_point(|&cumulative| cumulative < target)
    }
}

fn word(rank: usize) -> String {
    format!("w{rank}")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

async fn bench(backend: Backend, transcripts: usize, words: usize) {
    let server = TestApp::start(backend).await;
    let app = &server.app;
    let admin = FirstAdmin::enrol(&server, "Ada").await;
    let (client, vault) = (&admin.client, admin.vault);
    let postgres = backend == Backend::Postgres;
    let label = if postgres { "PostgreSQL" } else { "SQLite" };
    eprintln!("==> {label}: indexing {transcripts} transcripts of {words} words");
    let key = SearchKey::generate();
    let zipf = Zipf::new(VOCABULARY);
    let mut random = Random(0x5eed_1234_abcd_ef01);
    let started = Instant::now();
    let mut postings_total = 0;
    for index in 0..transcripts {
        let mut segments = Vec::new();
        let mut left = words;
        while left > 0 {
            let length = (20 + random.next() % 11) as usize;
            let length = length.min(left);
            left -= length;
            segments.push(
                (0..length)
                    .map(|_| word(zipf.draw(&mut random) + 1))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        let found = postings(&key, segments.iter().map(String::as_str));
        postings_total += found.len();
        seed_released(
            &app.db,
            &vault.to_string(),
            &RecordingId::random().to_string(),
            &TranscriptId::random().to_string(),
            &found,
        )
        .await
        .unwrap();
        if (index + 1) % 100 == 0 {
            eprintln!(
                "    {} / {transcripts} indexed ({:.0} s)",
                index + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let indexing = started.elapsed().as_secs_f64();
    if postgres {
        // What autovacuum does after a bulk load: fresh statistics for the planner.
        sqlx::query("ANALYZE").execute(app.db.pool()).await.unwrap();
    }
    let index_bytes = if postgres {
        let row: (i64,) = sqlx::query_as(
            "SELECT CAST(pg_total_relation_size('index_terms') + pg_total_relation_size('released_transcripts') AS BIGINT)",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        row.0 as u64
    } else {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(app.db.pool())
            .await
            .unwrap();
        let row: (i64,) = sqlx::query_as(
            "SELECT CAST(SUM(pgsize) AS BIGINT) FROM dbstat WHERE name IN ('index_terms', 'index_terms_transcript', 'released_transcripts')",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap_or((std::fs::metadata(server.data_dir().join("quorate.db")).unwrap().len() as i64,));
        row.0 as u64
    };

    // Two-term queries: both terms drawn by the same law as the text, so common words come
    // up as often as people type them.
    let words: Vec<Vec<String>> = (0..QUERIES)
        .map(|_| (0..2).map(|_| word(zipf.draw(&mut random) + 1)).collect())
        .collect();
    let under = |key: &SearchKey| -> Vec<Vec<BlindToken>> {
        words
            .iter()
            .map(|query| query.iter().map(|word| key.token(word)).collect())
            .collect()
    };
    let queries = under(&key);
    for query in queries.iter().take(20) {
        client.search(vault, (query, None), 10, 0).await.unwrap();
    }
    let (latencies, hits) = timed(queries.iter().map(|query| (&query[..], None)), |tokens| {
        client.search(vault, tokens, 10, 0)
    })
    .await;
    // The same words during a search-key rotation: each query carries its tokens under the
    // new key (which nothing is indexed under yet) and under the old one, as a pair.
    let rotated = SearchKey::generate();
    let paired = under(&rotated);
    let (paired_latencies, paired_hits) = timed(
        paired
            .iter()
            .zip(&queries)
            .map(|(new, old)| (&new[..], Some(&old[..]))),
        |tokens| client.search(vault, tokens, 10, 0),
    )
    .await;
    assert_eq!(
        hits, paired_hits,
        "a paired query finds what the old key's tokens find"
    );
    println!(
        "{label}: {transcripts} transcripts, {postings_total} postings ({:.0} per transcript), indexed in {indexing:.1} s",
        postings_total as f64 / transcripts as f64
    );
    println!(
        "{label}: index size {:.1} MiB in all, {:.0} KiB per transcript",
        index_bytes as f64 / f64::from(1 << 20),
        index_bytes as f64 / 1024.0 / transcripts as f64
    );
    println!(
        "{label}: two-term searches through the HTTP API: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms (goal p95 < 20 ms); {:.0} matching transcripts per query on average",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().unwrap(),
        hits as f64 / QUERIES as f64
    );
    println!(
        "{label}: the same searches during a key rotation (each word's token under both keys): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        percentile(&paired_latencies, 0.5),
        percentile(&paired_latencies, 0.95),
        paired_latencies.last().unwrap(),
    );
    server.stop().await;
}

/// Runs each query in order, timed; returns the latencies (ms, sorted) and the hits in all.
async fn timed<'a, F, Fut>(
    queries: impl Iterator<Item = (&'a [BlindToken], Option<&'a [BlindToken]>)>,
    search: F,
) -> (Vec<f64>, u64)
where
    F: Fn((&'a [BlindToken], Option<&'a [BlindToken]>)) -> Fut,
    Fut: std::future::Future<
            Output = Result<quorate_api::SearchResults, quorate_client::ClientError>,
        >,
{
    let mut latencies = Vec::new();
    let mut hits = 0;
    for query in queries {
        let started = Instant::now();
        hits += search(query).await.unwrap().total;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, hits)
}

fn main() {
    let transcripts = env_usize("QUORATE_BENCH_TRANSCRIPTS", 1000);
    let words = env_usize("QUORATE_BENCH_WORDS", 9000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backends = std::env::var("QUORATE_BENCH_BACKENDS").unwrap_or_default();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backends.is_empty() || backends.contains(backend.name()) {
            runtime.block_on(bench(backend, transcripts, words));
        }
    }
}
