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
    release::unpack_segments,
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
        "SELECT i.token, i.doc, i.tf, r.words FROM index_terms i
         JOIN released_transcripts r ON r.doc = i.doc
         WHERE i.token IN ({}) AND r.vault_id = $1",
        placeholders(2, tokens.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&vault);
    for token in &tokens {
        query = query.bind(token.clone());
    }
    let rows = query.fetch_all(&mut *connection).await?;
    let mut postings = Vec::with_capacity(rows.len());
    let mut frequencies: HashMap<Vec<u8>, f64> = HashMap::new();
    for row in &rows {
        let token: Vec<u8> = row.try_get("token")?;
        *frequencies.entry(token.clone()).or_default() += 1.0;
        postings.push((
            token,
            row.try_get::<i64, _>("doc")?,
            row.try_get::<i64, _>("tf")? as f64,
            row.try_get::<i64, _>("words")? as f64,
        ));
    }
    let mut scores: HashMap<i64, f64> = HashMap::new();
    for (token, doc, tf, words) in postings {
        *scores.entry(doc).or_default() +=
            bm25(tf, frequencies[&token], documents, words, average_length);
    }
    let total = scores.len() as u64;
    let mut ranked: Vec<(i64, f64)> = scores.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let page: Vec<(i64, f64)> = ranked
        .into_iter()
        .skip(offset)
        .take(limit as usize)
        .collect();
    let hits = hits(&mut connection, &tokens, &page).await?;
    Ok(axum::Json(SearchResults { total, hits }))
}

/// The page's hits: each transcript's IDs, and its segments that hold query tokens (those
/// with the most distinct tokens first, then the most occurrences, then the earliest).
async fn hits(
    connection: &mut sqlx::AnyConnection,
    tokens: &[Vec<u8>],
    page: &[(i64, f64)],
) -> Result<Vec<SearchHit>, ApiError> {
    if page.is_empty() {
        return Ok(Vec::new());
    }
    let docs = placeholders(1, page.len());
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT doc, transcript_id, recording_id FROM released_transcripts WHERE doc IN ({docs})"
    )));
    for (doc, _) in page {
        query = query.bind(*doc);
    }
    let mut names = HashMap::new();
    for row in query.fetch_all(&mut *connection).await? {
        names.insert(
            row.try_get::<i64, _>("doc")?,
            (
                row.try_get::<String, _>("transcript_id")?,
                row.try_get::<String, _>("recording_id")?,
            ),
        );
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT doc, segments FROM index_terms WHERE doc IN ({docs}) AND token IN ({})",
        placeholders(1 + page.len(), tokens.len())
    )));
    for (doc, _) in page {
        query = query.bind(*doc);
    }
    for token in tokens {
        query = query.bind(token.clone());
    }
    // Per doc, per segment: (distinct tokens, occurrences).
    let mut matches: HashMap<i64, BTreeMap<u32, (u32, u64)>> = HashMap::new();
    for row in query.fetch_all(&mut *connection).await? {
        let segments = matches.entry(row.try_get("doc")?).or_default();
        for (segment, tf) in unpack_segments(&row.try_get::<Vec<u8>, _>("segments")?) {
            let entry = segments.entry(segment).or_default();
            entry.0 += 1;
            entry.1 += u64::from(tf);
        }
    }
    page.iter()
        .map(|(doc, score)| {
            let (transcript, recording) = names
                .remove(doc)
                .ok_or_else(|| ApiError::Internal("a ranked document vanished".into()))?;
            let mut ordered: Vec<(u32, (u32, u64))> = matches
                .remove(doc)
                .unwrap_or_default()
                .into_iter()
                .collect();
            ordered.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            Ok(SearchHit {
                transcript_id: transcript,
                recording_id: recording,
                score: *score,
                segments: ordered
                    .into_iter()
                    .take(SEGMENTS_PER_HIT)
                    .map(|(segment, _)| segment)
                    .collect(),
            })
        })
        .collect()
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
