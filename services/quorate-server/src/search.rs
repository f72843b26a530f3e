//! Search over the blind index: BM25 over tokens, with released transcripts as documents.
//! The server sees only blind tokens (HMAC outputs under a key it never holds); it ranks
//! the caller's vault's released transcripts and says which segments hold the tokens. The
//! client decrypts the released copies and builds snippets itself.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use quorate_api::{SearchHit, SearchQuery, SearchResults};
use sqlx::Row;

use crate::paths::VaultPath;
use crate::{
    App,
    auth::Authenticated,
    error::{ApiError, ApiJson},
};

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// BM25's length normalisation.
const B: f64 = 0.75;
/// Most tokens in one query.
pub const MAX_QUERY_TOKENS: usize = 32;
/// Segments named per hit.
const SEGMENTS_PER_HIT: usize = 5;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// The distinct 16-byte tokens of a query, in the order given.
fn parse_tokens(tokens: &[String]) -> Result<Vec<Vec<u8>>, ApiError> {
    if tokens.is_empty() || tokens.len() > MAX_QUERY_TOKENS {
        return Err(invalid(format!(
            "send 1 to {MAX_QUERY_TOKENS} blind tokens"
        )));
    }
    let mut parsed: Vec<Vec<u8>> = Vec::with_capacity(tokens.len());
    for token in tokens {
        let bytes = hex::decode(token)
            .ok()
            .filter(|bytes| bytes.len() == 16)
            .ok_or_else(|| invalid("a blind token is 16 bytes in hex (32 hex digits)"))?;
        if !parsed.contains(&bytes) {
            parsed.push(bytes);
        }
    }
    Ok(parsed)
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The BM25 weight of one term in one document.
pub fn bm25(tf: f64, df: f64, documents: f64, length: f64, average_length: f64) -> f64 {
    let idf = (1.0 + (documents - df + 0.5) / (df + 0.5)).ln();
    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / average_length.max(1.0)))
}

/// Ranks the caller's vault's released transcripts for the query's blind tokens (BM25; a
/// transcript matches when it holds any of them), a page at a time, with the segments
/// that hold them. Repeated tokens count once.
#[utoipa::path(
    post, path = "/vaults/{vault}/search", tag = "search", security(("session" = [])), operation_id = "search",
    params(VaultPath),
    request_body = quorate_api::SearchQuery,
    responses(
        (status = 200, description = "Ranked hits, best first", body = quorate_api::SearchResults),
        (status = 400, description = "Malformed tokens or paging", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn search(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiJson(body): ApiJson<SearchQuery>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    who.member_of(&vault)?;
    let tokens = parse_tokens(&body.tokens)?;
    let limit = body.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(invalid("limit is 1 to 100"));
    }
    let offset = body.offset.unwrap_or(0) as usize;
    let mut connection = app.db.pool().acquire().await?;
    let totals = sqlx::query(
        "SELECT COUNT(*) AS documents, CAST(COALESCE(SUM(words), 0) AS BIGINT) AS words FROM released_transcripts WHERE vault_id = $1",
    )
    .bind(&vault)
    .fetch_one(&mut *connection)
    .await?;
    let documents = totals.try_get::<i64, _>("documents")? as f64;
    if documents == 0.0 {
        return Ok(axum::Json(SearchResults {
            total: 0,
            hits: Vec::new(),
        }));
    }
    let average_length = totals.try_get::<i64, _>("words")? as f64 / documents;
    let sql = format!(
        "SELECT i.token, i.transcript_id, i.tf, r.words, r.recording_id FROM index_terms i
         JOIN released_transcripts r ON r.transcript_id = i.transcript_id
         WHERE i.vault_id = $1 AND r.vault_id = $1 AND i.token IN ({})",
        placeholders(2, tokens.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&vault);
    for token in &tokens {
        query = query.bind(token.clone());
    }
    let rows = query.fetch_all(&mut *connection).await?;
    let mut frequencies: HashMap<Vec<u8>, f64> = HashMap::new();
    for row in &rows {
        *frequencies
            .entry(row.try_get::<Vec<u8>, _>("token")?)
            .or_default() += 1.0;
    }
    let mut scores: BTreeMap<String, (f64, String)> = BTreeMap::new();
    for row in &rows {
        let df = frequencies[&row.try_get::<Vec<u8>, _>("token")?];
        let weight = bm25(
            row.try_get::<i64, _>("tf")? as f64,
            df,
            documents,
            row.try_get::<i64, _>("words")? as f64,
            average_length,
        );
        let entry = scores
            .entry(row.try_get("transcript_id")?)
            .or_insert_with(|| (0.0, String::new()));
        entry.0 += weight;
        entry.1 = row.try_get("recording_id")?;
    }
    let total = scores.len() as u64;
    let mut ranked: Vec<(String, f64, String)> = scores
        .into_iter()
        .map(|(transcript, (score, recording))| (transcript, score, recording))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let page: Vec<_> = ranked
        .into_iter()
        .skip(offset)
        .take(limit as usize)
        .collect();
    let mut segments = segments_of(&mut connection, &vault, &tokens, &page).await?;
    let hits = page
        .into_iter()
        .map(|(transcript, score, recording)| SearchHit {
            segments: segments.remove(&transcript).unwrap_or_default(),
            transcript_id: transcript,
            recording_id: recording,
            score,
        })
        .collect();
    Ok(axum::Json(SearchResults { total, hits }))
}

/// For each transcript of the page, its segments that hold query tokens: those with the most
/// distinct tokens first, then the most occurrences, then the earliest.
async fn segments_of(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    tokens: &[Vec<u8>],
    page: &[(String, f64, String)],
) -> Result<HashMap<String, Vec<u32>>, ApiError> {
    if page.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT transcript_id, segments FROM index_terms WHERE vault_id = $1 AND token IN ({}) AND transcript_id IN ({})",
        placeholders(2, tokens.len()),
        placeholders(2 + tokens.len(), page.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(vault);
    for token in tokens {
        query = query.bind(token.clone());
    }
    for (transcript, _, _) in page {
        query = query.bind(transcript.clone());
    }
    // Per transcript, per segment: (distinct tokens, occurrences).
    let mut matches: HashMap<String, BTreeMap<u32, (u32, u64)>> = HashMap::new();
    for row in query.fetch_all(&mut *connection).await? {
        let packed: Vec<u8> = row.try_get("segments")?;
        let segments = matches.entry(row.try_get("transcript_id")?).or_default();
        for pair in packed.chunks_exact(8) {
            let segment = u32::from_be_bytes(pair[..4].try_into().expect("4 bytes"));
            let tf = u32::from_be_bytes(pair[4..].try_into().expect("4 bytes"));
            let entry = segments.entry(segment).or_default();
            entry.0 += 1;
            entry.1 += u64::from(tf);
        }
    }
    Ok(matches
        .into_iter()
        .map(|(transcript, segments)| {
            let mut ordered: Vec<(u32, (u32, u64))> = segments.into_iter().collect();
            ordered.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            (
                transcript,
                ordered
                    .into_iter()
                    .take(SEGMENTS_PER_HIT)
                    .map(|(segment, _)| segment)
                    .collect(),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rarer_terms_and_denser_documents_score_higher() {
        let common = bm25(1.0, 90.0, 100.0, 100.0, 100.0);
        let rare = bm25(1.0, 2.0, 100.0, 100.0, 100.0);
        assert!(rare > common);
        let short = bm25(1.0, 2.0, 100.0, 50.0, 100.0);
        assert!(
            short > rare,
            "the same count in a shorter document weighs more"
        );
        let twice = bm25(2.0, 2.0, 100.0, 100.0, 100.0);
        assert!(
            twice > rare && twice < 2.0 * rare,
            "term frequency saturates"
        );
    }

    #[test]
    fn tokens_are_checked_and_deduplicated() {
        let token = "00".repeat(16);
        assert_eq!(parse_tokens(&[token.clone(), token]).unwrap().len(), 1);
        assert!(parse_tokens(&[]).is_err());
        assert!(parse_tokens(&["zz".repeat(16)]).is_err());
        assert!(parse_tokens(&["00".repeat(15)]).is_err());
    }
}
