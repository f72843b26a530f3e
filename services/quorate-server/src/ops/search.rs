//! Search over the blind index: BM25 over tokens, with released transcripts as documents.
//! The server sees only blind tokens (HMAC outputs under a key it never holds); it ranks
//! the caller's vault's released transcripts and says which segments hold the tokens. The
//! client decrypts the released copies and builds snippets itself.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use quorate_api::{SearchHit, SearchQuery, SearchResults};

use crate::{App, error::Refusal, store};

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// BM25's length normalisation.
const B: f64 = 0.75;
/// Most tokens in one query.
pub const MAX_QUERY_TOKENS: usize = 32;
/// Segments named per hit.
const SEGMENTS_PER_HIT: usize = 5;
/// Hits per page unless the query says.
const DEFAULT_LIMIT: u32 = 20;
/// Most hits per page.
const MAX_LIMIT: u32 = 100;

/// Why a search was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SearchError {
    #[error("{0}")]
    InvalidQuery(String),
    #[error("a ranked document vanished")]
    Vanished,
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl Refusal for SearchError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        match self {
            Self::InvalidQuery(_) => Some((StatusCode::BAD_REQUEST, "invalid_query")),
            Self::Vanished | Self::Store(_) => None,
        }
    }
}

fn invalid(message: impl Into<String>) -> SearchError {
    SearchError::InvalidQuery(message.into())
}

/// One 16-byte token from hex.
fn parse_token(token: &str) -> Result<Vec<u8>, SearchError> {
    hex::decode(token)
        .ok()
        .filter(|bytes| bytes.len() == 16)
        .ok_or_else(|| invalid("a blind token is 16 bytes in hex (32 hex digits)"))
}

/// The query's terms, one per distinct word in the order given: its token under the newest
/// search key, and under the previous key when the query sends one (while released minutes
/// are re-indexed, each is indexed under one key or the other).
fn parse_terms(
    tokens: &[String],
    previous: Option<&[String]>,
) -> Result<Vec<Vec<Vec<u8>>>, SearchError> {
    if tokens.is_empty() || tokens.len() > MAX_QUERY_TOKENS {
        return Err(invalid(format!(
            "send 1 to {MAX_QUERY_TOKENS} blind tokens"
        )));
    }
    if previous.is_some_and(|previous| previous.len() != tokens.len()) {
        return Err(invalid(
            "send one previous-key token per token, in the same order",
        ));
    }
    let mut terms: Vec<Vec<Vec<u8>>> = Vec::with_capacity(tokens.len());
    for (position, token) in tokens.iter().enumerate() {
        let mut term = vec![parse_token(token)?];
        if let Some(previous) = previous {
            term.push(parse_token(&previous[position])?);
        }
        if !terms.iter().any(|seen| seen[0] == term[0]) {
            terms.push(term);
        }
    }
    Ok(terms)
}

/// The BM25 weight of one term in one document.
pub fn bm25(tf: f64, df: f64, documents: f64, length: f64, average_length: f64) -> f64 {
    let idf = (1.0 + (documents - df + 0.5) / (df + 0.5)).ln();
    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / average_length.max(1.0)))
}

/// Ranks `vault`'s released transcripts for the query's blind tokens (BM25; a transcript
/// matches when it holds any of them), a page at a time, with the segments that hold them.
/// Repeated tokens count once.
pub(crate) async fn search(
    app: &App,
    vault: &str,
    query: &SearchQuery,
) -> Result<SearchResults, SearchError> {
    let terms = parse_terms(&query.tokens, query.previous_tokens.as_deref())?;
    let tokens: Vec<Vec<u8>> = terms.iter().flatten().cloned().collect();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid(format!("limit is 1 to {MAX_LIMIT}")));
    }
    let offset = query.offset.unwrap_or(0) as usize;
    let mut connection = app.db.connection().await?;
    let ranked = rank(&mut connection, vault, &terms).await?;
    let total = ranked.len() as u64;
    let page: Vec<(i64, f64)> = ranked
        .into_iter()
        .skip(offset)
        .take(limit as usize)
        .collect();
    let hits = hits(&mut connection, &tokens, &page).await?;
    Ok(SearchResults { total, hits })
}

/// Every `vault` document holding any of `terms`' tokens with its BM25 score, best first
/// (ties by document number). A term's document frequency counts the documents that hold
/// any of its tokens.
async fn rank(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    terms: &[Vec<Vec<u8>>],
) -> Result<Vec<(i64, f64)>, SearchError> {
    let corpus = store::search::corpus(connection, vault).await?;
    if corpus.documents == 0 {
        return Ok(Vec::new());
    }
    let documents = corpus.documents as f64;
    let average_length = corpus.words as f64 / documents;
    let term_of: HashMap<&[u8], usize> = terms
        .iter()
        .enumerate()
        .flat_map(|(term, tokens)| tokens.iter().map(move |token| (token.as_slice(), term)))
        .collect();
    let tokens: Vec<Vec<u8>> = term_of.keys().map(|token| token.to_vec()).collect();
    let term_hits = store::search::term_hits(connection, vault, &tokens).await?;
    // Per (document, term): its frequency there and the document's length. Ordered, so that
    // each document's score is summed in the same order every time (floating-point sums
    // depend on it, and ties decide the pages).
    let mut in_documents: BTreeMap<(i64, usize), (i64, i64)> = BTreeMap::new();
    for hit in &term_hits {
        let entry = in_documents
            .entry((hit.doc, term_of[hit.token.as_slice()]))
            .or_insert((0, hit.words));
        entry.0 += hit.tf;
    }
    // How many documents hold each term.
    let mut frequencies: HashMap<usize, f64> = HashMap::new();
    for (_, term) in in_documents.keys() {
        *frequencies.entry(*term).or_default() += 1.0;
    }
    let mut scores: HashMap<i64, f64> = HashMap::new();
    for ((doc, term), (tf, words)) in &in_documents {
        *scores.entry(*doc).or_default() += bm25(
            *tf as f64,
            frequencies[term],
            documents,
            *words as f64,
            average_length,
        );
    }
    let mut ranked: Vec<(i64, f64)> = scores.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(ranked)
}

/// The page's hits: each transcript's IDs, and its segments that hold query tokens (those
/// with the most distinct tokens first, then the most occurrences, then the earliest).
async fn hits(
    connection: &mut sqlx::AnyConnection,
    tokens: &[Vec<u8>],
    page: &[(i64, f64)],
) -> Result<Vec<SearchHit>, SearchError> {
    if page.is_empty() {
        return Ok(Vec::new());
    }
    let docs: Vec<i64> = page.iter().map(|(doc, _)| *doc).collect();
    let mut names: HashMap<i64, store::search::DocNames> =
        store::search::doc_names(connection, &docs)
            .await?
            .into_iter()
            .map(|names| (names.doc, names))
            .collect();
    // Per doc, per segment: (distinct tokens, occurrences).
    let mut matches: HashMap<i64, BTreeMap<u32, (u32, u64)>> = HashMap::new();
    for (doc, pairs) in store::search::segments(connection, &docs, tokens).await? {
        let segments = matches.entry(doc).or_default();
        for (segment, tf) in pairs {
            let entry = segments.entry(segment).or_default();
            entry.0 += 1;
            entry.1 += u64::from(tf);
        }
    }
    page.iter()
        .map(|(doc, score)| {
            let names = names.remove(doc).ok_or(SearchError::Vanished)?;
            let segments = matches.remove(doc).unwrap_or_default();
            Ok(SearchHit {
                transcript_id: names.transcript_id,
                recording_id: names.recording_id,
                score: *score,
                segments: best_segments(segments),
            })
        })
        .collect()
}

/// The segments that match best: the most distinct tokens, then the most occurrences, then
/// the earliest.
fn best_segments(segments: BTreeMap<u32, (u32, u64)>) -> Vec<u32> {
    let mut ordered: Vec<(u32, (u32, u64))> = segments.into_iter().collect();
    ordered.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ordered
        .into_iter()
        .take(SEGMENTS_PER_HIT)
        .map(|(segment, _)| segment)
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
        assert_eq!(parse_terms(&[token.clone(), token], None).unwrap().len(), 1);
        assert!(parse_terms(&[], None).is_err());
        assert!(parse_terms(&["zz".repeat(16)], None).is_err());
        assert!(parse_terms(&["00".repeat(15)], None).is_err());
    }

    #[test]
    fn previous_key_tokens_pair_with_the_query_s_tokens() {
        let (a, b) = ("00".repeat(16), "11".repeat(16));
        let terms = parse_terms(std::slice::from_ref(&a), Some(std::slice::from_ref(&b))).unwrap();
        assert_eq!(terms, [vec![vec![0; 16], vec![0x11; 16]]]);
        assert!(
            parse_terms(&[a.clone(), b], Some(&[a])).is_err(),
            "one each"
        );
    }
}
