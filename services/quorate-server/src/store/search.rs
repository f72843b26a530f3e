//! The blind index and the vault's search key: `index_terms`, and the BM25 statistics of
//! `released_transcripts`; `search_keys`, `search_key_rotations`, `search_key_copies`.
//!
//! An index row holds one token's postings in one released transcript: its total term
//! frequency, and its (segment, tf) pairs packed as LEB128 varints in segment order.

use std::collections::BTreeMap;

use quorate_api::Base64;
use quorate_api::SearchKeyView;
use quorate_crypto::{blind::BlindToken, release::Posting};
use sqlx::AnyConnection;

/// Index rows written per statement.
const ROWS_PER_INSERT: usize = 200;

/// One token's entry in the index of one transcript.
#[derive(Debug, Default)]
struct Term {
    tf: i64,
    segments: Vec<u8>,
}

fn push_varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The (segment, tf) pairs packed in an index row, in segment order.
pub(crate) fn unpack_segments(packed: &[u8]) -> Vec<(u32, u32)> {
    let mut values = Vec::new();
    let (mut value, mut shift) = (0u32, 0u32);
    for byte in packed {
        value |= u32::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            values.push(value);
            (value, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    values
        .chunks_exact(2)
        .map(|pair| (pair[0], pair[1]))
        .collect()
}

/// Groups postings by token: total frequency and the packed (segment, tf) pairs.
fn terms(postings: &[Posting]) -> BTreeMap<BlindToken, Term> {
    let mut terms = BTreeMap::<BlindToken, Term>::new();
    for posting in postings {
        let term = terms.entry(posting.token).or_default();
        term.tf += i64::from(posting.tf);
        push_varint(&mut term.segments, posting.segment);
        push_varint(&mut term.segments, posting.tf);
    }
    terms
}

/// Indexes released document `doc` under `postings` (many rows per statement).
pub(crate) async fn index(
    connection: &mut AnyConnection,
    doc: i64,
    postings: &[Posting],
) -> Result<(), sqlx::Error> {
    let terms: Vec<_> = terms(postings).into_iter().collect();
    for chunk in terms.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|row| {
                let first = row * 3 + 2;
                format!("(${first}, $1, ${}, ${})", first + 1, first + 2)
            })
            .collect();
        let sql = format!(
            "INSERT INTO index_terms (token, doc, tf, segments) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(doc);
        for (token, term) in chunk {
            query = query
                .bind(token.0.to_vec())
                .bind(term.tf)
                .bind(term.segments.clone());
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A vault's released transcripts as BM25 counts them.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Corpus {
    pub documents: i64,
    /// Their total length in words.
    pub words: i64,
}

/// How many released transcripts `vault` has and how long they are together.
pub(crate) async fn corpus(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Corpus, sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*) AS documents, CAST(COALESCE(SUM(words), 0) AS BIGINT) AS words FROM released_transcripts WHERE vault_id = $1",
    )
    .bind(vault)
    .fetch_one(connection)
    .await
}

/// One token's postings in one document, with the document's length.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TermHit {
    pub token: Vec<u8>,
    pub doc: i64,
    pub tf: i64,
    pub words: i64,
}

/// The index rows of `tokens` in `vault`'s released transcripts.
pub(crate) async fn term_hits(
    connection: &mut AnyConnection,
    vault: &str,
    tokens: &[Vec<u8>],
) -> Result<Vec<TermHit>, sqlx::Error> {
    let sql = format!(
        "SELECT i.token, i.doc, i.tf, r.words FROM index_terms i
         JOIN released_transcripts r ON r.doc = i.doc
         WHERE i.token IN ({}) AND r.vault_id = $1",
        placeholders(2, tokens.len())
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(vault);
    for token in tokens {
        query = query.bind(token.clone());
    }
    query.fetch_all(connection).await
}

/// The IDs a released document is known by.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DocNames {
    pub doc: i64,
    pub transcript_id: String,
    pub recording_id: String,
}

/// The names of released documents `docs`.
pub(crate) async fn doc_names(
    connection: &mut AnyConnection,
    docs: &[i64],
) -> Result<Vec<DocNames>, sqlx::Error> {
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT doc, transcript_id, recording_id FROM released_transcripts WHERE doc IN ({})",
        placeholders(1, docs.len())
    )));
    for doc in docs {
        query = query.bind(*doc);
    }
    query.fetch_all(connection).await
}

#[derive(Debug, sqlx::FromRow)]
struct PackedSegments {
    doc: i64,
    segments: Vec<u8>,
}

/// For each of `docs` and each of `tokens` it holds: the document and the token's
/// (segment, tf) pairs.
pub(crate) async fn segments(
    connection: &mut AnyConnection,
    docs: &[i64],
    tokens: &[Vec<u8>],
) -> Result<Vec<(i64, Vec<(u32, u32)>)>, sqlx::Error> {
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT doc, segments FROM index_terms WHERE doc IN ({}) AND token IN ({})",
        placeholders(1, docs.len()),
        placeholders(1 + docs.len(), tokens.len())
    )));
    for doc in docs {
        query = query.bind(*doc);
    }
    for token in tokens {
        query = query.bind(token.clone());
    }
    let rows: Vec<PackedSegments> = query.fetch_all(connection).await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.doc, unpack_segments(&row.segments)))
        .collect())
}

/// `vault`'s signed search key commitment, `None` until it has a search key.
pub(crate) async fn commitment(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT commitment FROM search_keys WHERE vault_id = $1")
        .bind(vault)
        .fetch_optional(connection)
        .await
}

/// Stores `vault`'s signed search key commitment.
pub(crate) async fn insert_commitment(
    connection: &mut AnyConnection,
    vault: &str,
    commitment: &[u8],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO search_keys (vault_id, commitment, created_at) VALUES ($1, $2, $3)")
        .bind(vault)
        .bind(commitment)
        .bind(now)
        .execute(connection)
        .await?;
    Ok(())
}

/// `vault`'s signed search key rotations, generation 1 first.
pub(crate) async fn rotations(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT statement FROM search_key_rotations WHERE vault_id = $1 ORDER BY generation",
    )
    .bind(vault)
    .fetch_all(connection)
    .await
}

/// The generation of `vault`'s newest search key (0 until it is rotated).
pub(crate) async fn generation(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(MAX(generation), 0) AS BIGINT) FROM search_key_rotations WHERE vault_id = $1",
    )
    .bind(vault)
    .fetch_one(connection)
    .await
}

/// Stores `vault`'s rotation to `generation`; `false` when that generation exists already.
pub(crate) async fn insert_rotation(
    connection: &mut AnyConnection,
    vault: &str,
    generation: i64,
    statement: &[u8],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO search_key_rotations (vault_id, generation, statement, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(vault)
    .bind(generation)
    .bind(statement)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Which of a vault's search keys a sealed copy is of, and for whom.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyOf<'a> {
    pub vault: &'a str,
    pub generation: i64,
    pub holder: &'a str,
}

/// Stores a sealed copy of a search key; `false` when the holder has one of that generation
/// already (a copy once stored is never replaced).
pub(crate) async fn insert_grant(
    connection: &mut AnyConnection,
    copy: CopyOf<'_>,
    sealed: &[u8],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO search_key_copies (vault_id, generation, holder, sealed, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(copy.vault)
    .bind(copy.generation)
    .bind(copy.holder)
    .bind(sealed)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

#[derive(Debug, sqlx::FromRow)]
struct Grant {
    holder: String,
    sealed: Vec<u8>,
}

/// The sealed copies of `vault`'s search key of `generation`, by holder.
async fn copies(
    connection: &mut AnyConnection,
    vault: &str,
    generation: i64,
) -> Result<Vec<Grant>, sqlx::Error> {
    sqlx::query_as(
        "SELECT holder, sealed FROM search_key_copies WHERE vault_id = $1 AND generation = $2 ORDER BY holder",
    )
    .bind(vault)
    .bind(generation)
    .fetch_all(connection)
    .await
}

/// How many of `vault`'s released transcripts are indexed under a key older than
/// `generation`.
pub(crate) async fn behind(
    connection: &mut AnyConnection,
    vault: &str,
    generation: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM released_transcripts WHERE vault_id = $1 AND key_generation < $2",
    )
    .bind(vault)
    .bind(generation)
    .fetch_one(connection)
    .await
}

/// `vault`'s search key as `holder` sees it: the commitment and rotations, their own sealed
/// copy of the newest key (and of the one before while minutes are still indexed under it),
/// and who holds the newest.
pub(crate) async fn key_view(
    connection: &mut AnyConnection,
    vault: &str,
    holder: &str,
) -> Result<SearchKeyView, sqlx::Error> {
    let commitment = commitment(connection, vault).await?;
    let rotations = rotations(connection, vault).await?;
    let generation = rotations.len() as i64;
    let grants = copies(connection, vault, generation).await?;
    let reindexing = behind(connection, vault, generation).await?;
    let previous_sealed = if generation > 0 && reindexing > 0 {
        copies(connection, vault, generation - 1)
            .await?
            .into_iter()
            .find(|grant| grant.holder == holder)
            .map(|grant| Base64::from(grant.sealed))
    } else {
        None
    };
    let sealed = grants
        .iter()
        .find(|grant| grant.holder == holder)
        .map(|grant| Base64::from(grant.sealed.as_slice()));
    Ok(SearchKeyView {
        commitment: commitment.map(Base64::from),
        rotations: rotations.into_iter().map(Base64::from).collect(),
        sealed,
        holders: grants.into_iter().map(|grant| grant.holder).collect(),
        previous_sealed,
        reindexing: reindexing as u64,
    })
}

/// The document number, length in words and key generation of released transcript
/// `transcript` of `vault`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Indexed {
    pub doc: i64,
    pub words: i64,
    pub key_generation: i64,
}

/// How released transcript `transcript` of `vault` is indexed, `None` when it is not
/// released.
pub(crate) async fn indexed(
    connection: &mut AnyConnection,
    vault: &str,
    transcript: &str,
) -> Result<Option<Indexed>, sqlx::Error> {
    sqlx::query_as(
        "SELECT doc, words, key_generation FROM released_transcripts WHERE vault_id = $1 AND transcript_id = $2",
    )
    .bind(vault)
    .bind(transcript)
    .fetch_optional(connection)
    .await
}

/// Replaces document `doc`'s postings with `postings`, made under key `generation`.
pub(crate) async fn reindex(
    connection: &mut AnyConnection,
    doc: i64,
    generation: i64,
    postings: &[Posting],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM index_terms WHERE doc = $1")
        .bind(doc)
        .execute(&mut *connection)
        .await?;
    index(connection, doc, postings).await?;
    sqlx::query("UPDATE released_transcripts SET key_generation = $2 WHERE doc = $1")
        .bind(doc)
        .bind(generation)
        .execute(connection)
        .await?;
    Ok(())
}

/// Deletes the sealed copies of `vault`'s search keys older than `generation`; returns how
/// many went.
pub(crate) async fn delete_older_copies(
    connection: &mut AnyConnection,
    vault: &str,
    generation: i64,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM search_key_copies WHERE vault_id = $1 AND generation < $2")
            .bind(vault)
            .bind(generation)
            .execute(connection)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_pack_and_unpack() {
        let token = BlindToken([1; 16]);
        let postings: Vec<Posting> = [(0, 1), (127, 2), (128, 300), (70_000, u32::MAX)]
            .into_iter()
            .map(|(segment, tf)| Posting { token, segment, tf })
            .collect();
        let packed = &terms(&postings)[&token].segments;
        assert_eq!(
            unpack_segments(packed),
            [(0, 1), (127, 2), (128, 300), (70_000, u32::MAX)]
        );
        assert_eq!(packed.len(), 16, "small numbers take a byte or two");
    }
}
