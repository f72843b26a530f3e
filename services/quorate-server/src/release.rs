//! Released minutes: the vault's search key (sealed copies and an admin's commitment), the
//! completion of a release job (the released copy, the sealed release keys and the blind
//! index), and what members read of released transcripts. The server stores and checks
//! what it can (signatures, digests, who is named); it never holds a key to open any of it.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::{ReleaseCompletion, ReleasedView, SealedGrant, SearchKeyShares, SearchKeyView};
use quorate_crypto::{
    blind::BlindToken,
    release::{Posting, ReleaseManifest, SearchKeyCommitment, postings_digest},
    statement::TranscriptManifest,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::{Row, any::AnyRow};

use crate::paths::{JobPath, TranscriptPath, VaultPath};
use crate::{
    App,
    auth::{Authenticated, Caller, NodeCaller},
    error::{ApiError, ApiJson, ApiQuery},
    jobs::{MAX_TRANSCRIPT_BYTES, finish_job, leased, signed_by_node},
    nodes::decode_statement,
    now,
    recordings::stream_object,
};

/// Largest sealed key accepted (a sealed key is a few hundred bytes of age file).
const MAX_SEALED_KEY: usize = 4096;
/// Bytes of one posting as uploaded: token, segment, term frequency.
const POSTING_BYTES: usize = 24;
/// Most postings one released transcript may carry (a 20-hour meeting has fewer).
pub const MAX_POSTINGS: usize = 500_000;
/// Largest release completion body: the copy and the postings, base64, with room to spare.
pub const MAX_RELEASE_BODY: usize =
    (MAX_TRANSCRIPT_BYTES + MAX_POSTINGS * POSTING_BYTES) * 4 / 3 + (1 << 20);

/// Where a released copy's object is written, under a fresh name (see
/// [`crate::blobs::Blobs::put_fresh`]); its row names it.
fn released_object_prefix(vault: &str, transcript: &str) -> String {
    format!("released/{vault}/{transcript}/")
}

/// The refusal of anything that would release a transcript a second time.
pub(crate) fn already_released() -> ApiError {
    ApiError::conflict(
        "already_released",
        "this transcript is released already: members can read and search it",
    )
}

fn decode_sealed(text: &str) -> Result<Vec<u8>, ApiError> {
    let sealed = STANDARD
        .decode(text)
        .map_err(|_| ApiError::bad_request("invalid_grant", "a sealed key must be base64"))?;
    if sealed.is_empty() || sealed.len() > MAX_SEALED_KEY {
        return Err(ApiError::bad_request(
            "invalid_grant",
            format!("a sealed key is 1 to {MAX_SEALED_KEY} bytes"),
        ));
    }
    Ok(sealed)
}

async fn search_key_view(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    holder: &str,
) -> Result<SearchKeyView, ApiError> {
    let commitment = sqlx::query("SELECT commitment FROM search_keys WHERE vault_id = $1")
        .bind(vault)
        .fetch_optional(&mut *connection)
        .await?
        .map(|row| row.try_get::<Vec<u8>, _>("commitment"))
        .transpose()?;
    let grants = sqlx::query(
        "SELECT holder, sealed FROM search_key_grants WHERE vault_id = $1 ORDER BY holder",
    )
    .bind(vault)
    .fetch_all(&mut *connection)
    .await?;
    let mut sealed = None;
    let mut holders = Vec::with_capacity(grants.len());
    for grant in &grants {
        let name: String = grant.try_get("holder")?;
        if name == holder {
            sealed = Some(STANDARD.encode(grant.try_get::<Vec<u8>, _>("sealed")?));
        }
        holders.push(name);
    }
    Ok(SearchKeyView {
        commitment: commitment.map(|bytes| STANDARD.encode(bytes)),
        sealed,
        holders,
    })
}

/// The vault's search key as the caller sees it: the admin's commitment, the caller's own
/// sealed copy, and who holds one.
#[utoipa::path(
    get, path = "/vaults/{vault}/search-key", tag = "search", security(("session" = [])), operation_id = "get_search_key",
    params(VaultPath),
    responses(
        (status = 200, description = "The commitment, the caller's sealed copy and the holders", body = quorate_api::SearchKeyView),
    )
)]
pub(crate) async fn get_search_key(
    State(app): State<App>,
    who: Caller,
    Path(VaultPath { vault }): Path<VaultPath>,
) -> Result<axum::Json<SearchKeyView>, ApiError> {
    if vault != who.vault_id.to_string() {
        return Err(ApiError::not_found());
    }
    let holder = who
        .node_id
        .map_or_else(|| who.fingerprint.clone(), |node| node.to_string());
    let mut connection = app.db.pool().acquire().await?;
    Ok(axum::Json(
        search_key_view(&mut connection, &vault, &holder).await?,
    ))
}

/// Creates the vault's search key (its signed commitment and the admin's own sealed copy) or
/// shares it with more holders: current members and approved nodes. A copy once stored is
/// never replaced.
#[utoipa::path(
    post, path = "/vaults/{vault}/search-key", tag = "search", security(("session" = [])), operation_id = "share_search_key",
    params(VaultPath),
    request_body = quorate_api::SearchKeyShares,
    responses(
        (status = 200, description = "Stored; the key as the caller now sees it", body = quorate_api::SearchKeyView),
        (status = 400, description = "A commitment or copy fails a check", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins share the search key", body = quorate_api::ErrorBody),
        (status = 409, description = "The vault has another search key already", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn share_search_key(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiJson(body): ApiJson<SearchKeyShares>,
) -> Result<axum::Json<SearchKeyView>, ApiError> {
    who.admin_of(&vault)?;
    let now = now();
    let mut transaction = app.db.begin().await?;
    let roster = app.rosters.verified(&mut transaction, who.vault_id).await?;
    let stored = sqlx::query("SELECT commitment FROM search_keys WHERE vault_id = $1")
        .bind(&vault)
        .fetch_optional(&mut *transaction)
        .await?
        .map(|row| row.try_get::<Vec<u8>, _>("commitment"))
        .transpose()?;
    match (&body.commitment, &stored) {
        (None, None) => {
            return Err(ApiError::bad_request(
                "no_search_key",
                "the vault has no search key yet: send its signed commitment with the first copy",
            ));
        }
        (Some(text), stored) => {
            let signed = decode_statement(text, "commitment")?;
            if let Some(stored) = stored {
                if *stored != signed.to_bytes() {
                    return Err(ApiError::conflict(
                        "search_key_exists",
                        "the vault has another search key already: share that one",
                    ));
                }
            } else {
                let (verified, admin) = roster
                    .verify_by_admin::<SearchKeyCommitment>(&signed)
                    .map_err(ApiError::invalid_statement)?;
                if admin.fingerprint.to_hex() != who.fingerprint
                    || verified.statement.vault_id != who.vault_id
                {
                    return Err(ApiError::bad_request(
                        "invalid_statement",
                        "the commitment must be signed by the admin sending it, for this vault",
                    ));
                }
                sqlx::query(
                    "INSERT INTO search_keys (vault_id, commitment, created_at) VALUES ($1, $2, $3)",
                )
                .bind(&vault)
                .bind(signed.to_bytes())
                .bind(now)
                .execute(&mut *transaction)
                .await?;
                transaction.audit(
                    who.vault_id,
                    now,
                    crate::store::Event {
                        actor: &who.fingerprint,
                        action: "search_key.created",
                        subject: &vault,
                        statement: Some(&signed.to_bytes()),
                    },
                );
            }
        }
        (None, Some(_)) => {}
    }
    for grant in &body.grants {
        let holder = grant.holder.to_ascii_lowercase();
        let member = roster
            .members()
            .iter()
            .any(|member| member.fingerprint.to_hex() == holder);
        let node = sqlx::query(
            "SELECT 1 AS approved FROM nodes WHERE vault_id = $1 AND id = $2 AND status = 'approved'",
        )
        .bind(&vault)
        .bind(&holder)
        .fetch_optional(&mut *transaction)
        .await?
        .is_some();
        if !member && !node {
            return Err(ApiError::bad_request(
                "invalid_grant",
                format!("{holder} is neither a current member nor an approved node"),
            ));
        }
        store_grant(
            &mut transaction,
            (&app, &who, now),
            "INSERT INTO search_key_grants (vault_id, holder, sealed, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            (&vault, &holder, decode_sealed(&grant.sealed)?),
            ("search_key.shared", &holder),
        )
        .await?;
    }
    let view = search_key_view(&mut transaction, &vault, &who.fingerprint).await?;
    transaction.commit().await?;
    Ok(axum::Json(view))
}

/// Stores one sealed key with `insert` (its parameters: scope, holder, sealed, time; it
/// decides whether an existing copy is kept or replaced), and audits what it stored.
async fn store_grant(
    connection: &mut crate::store::Tx,
    (app, who, now): (&App, &Authenticated, i64),
    insert: &'static str,
    (scope, holder, sealed): (&str, &str, Vec<u8>),
    (action, subject): (&str, &str),
) -> Result<(), ApiError> {
    let inserted = sqlx::query(insert)
        .bind(scope)
        .bind(holder)
        .bind(sealed)
        .bind(now)
        .execute(&mut **connection)
        .await?
        .rows_affected();
    if inserted == 1 {
        connection.audit(
            who.vault_id,
            now,
            crate::store::Event {
                actor: &who.fingerprint,
                action,
                subject,
                statement: None,
            },
        );
    }
    Ok(())
}

/// Parses uploaded postings (24-byte records).
fn parse_postings(bytes: &[u8]) -> Result<Vec<Posting>, ApiError> {
    if !bytes.len().is_multiple_of(POSTING_BYTES) || bytes.len() / POSTING_BYTES > MAX_POSTINGS {
        return Err(ApiError::bad_request(
            "invalid_postings",
            format!(
                "postings are 24-byte records (token, segment, tf), at most {MAX_POSTINGS} of them"
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(POSTING_BYTES)
        .map(|record| Posting {
            token: BlindToken(record[..16].try_into().expect("16 bytes")),
            segment: u32::from_be_bytes(record[16..20].try_into().expect("4 bytes")),
            tf: u32::from_be_bytes(record[20..].try_into().expect("4 bytes")),
        })
        .collect())
}

/// One token's entry in the index of one transcript.
#[derive(Default)]
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

/// The (segment, tf) pairs packed in an index row: LEB128 varints, in segment order.
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

/// Stores a released transcript's row, naming its copy's `object`, and its index terms (many
/// rows per statement); returns its document number. 409 `already_released` when the
/// transcript has a released copy already: it is never replaced.
async fn insert_released(
    connection: &mut sqlx::AnyConnection,
    (vault, transcript, recording, request): (&str, &str, &str, &str),
    manifest: (Vec<u8>, Vec<u8>),
    ciphertext_len: u64,
    object: &str,
    postings: &[Posting],
    now: i64,
) -> Result<i64, ApiError> {
    let words: i64 = postings.iter().map(|posting| i64::from(posting.tf)).sum();
    let doc: i64 = sqlx::query(
        "INSERT INTO released_transcripts (transcript_id, vault_id, recording_id, request_id, manifest, manifest_digest, ciphertext_len, words, created_at, object)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING doc",
    )
    .bind(transcript)
    .bind(vault)
    .bind(recording)
    .bind(request)
    .bind(manifest.0)
    .bind(manifest.1)
    .bind(ciphertext_len as i64)
    .bind(words)
    .bind(now)
    .bind(object)
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(already_released)?
    .try_get("doc")?;
    const ROWS: usize = 200;
    let terms: Vec<_> = terms(postings).into_iter().collect();
    for chunk in terms.chunks(ROWS) {
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
    Ok(doc)
}

/// Completes a release job: the released copy, the release key sealed to every current
/// member, and the blind-index postings, all described by the node's signed manifest. A
/// retry with the same manifest answers the same.
///
/// The manifest must be signed by this node and name this request, its transcript (and that
/// transcript's manifest digest) and exactly the vault's current members; the copy and the
/// postings must have the manifest's lengths and digests.
#[utoipa::path(
    post, path = "/jobs/{request}/release", tag = "jobs", security(("session" = [])), operation_id = "complete_release",
    params(JobPath),
    request_body = quorate_api::ReleaseCompletion,
    responses(
        (status = 200, description = "Released (or released already by an earlier try)", body = quorate_api::ReleasedView),
        (status = 400, description = "The manifest, copy, keys or postings fail a check", body = quorate_api::ErrorBody),
        (status = 403, description = "Only nodes complete jobs", body = quorate_api::ErrorBody),
        (status = 404, description = "No job of this node's with this ID", body = quorate_api::ErrorBody),
        (status = 409, description = "The lease was lost, the job is not a release, another copy completed it, or the transcript is released already", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn complete_release(
    State(app): State<App>,
    node: NodeCaller,
    Path(JobPath { request }): Path<JobPath>,
    ApiJson(body): ApiJson<ReleaseCompletion>,
) -> Result<axum::Json<ReleasedView>, ApiError> {
    let signed = decode_statement(&body.manifest, "manifest")?;
    let mut connection = app.db.pool().acquire().await?;
    let job = leased(&mut connection, &node, &request, &body.lease_token).await?;
    let vault: String = job.try_get("vault_id")?;
    if job.try_get::<String, _>("status")? == "done" {
        let transcript: String = job
            .try_get::<Option<String>, _>("transcript_id")?
            .unwrap_or_default();
        let stored = released_view(&mut connection, &vault, &transcript).await?;
        if stored.manifest == STANDARD.encode(signed.to_bytes()) {
            return Ok(axum::Json(stored));
        }
        return Err(ApiError::conflict(
            "already_done",
            "this job was completed with another released copy",
        ));
    }
    let subject = sqlx::query(
        "SELECT t.id, t.recording_id, t.manifest_digest, d.transcript_id AS released FROM unlock_requests r
         JOIN transcripts t ON t.id = r.subject_id LEFT JOIN released_transcripts d ON d.transcript_id = t.id
         WHERE r.id = $1 AND r.purpose = 'release-transcript'",
    )
    .bind(&request)
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(|| {
        ApiError::conflict(
            "wrong_completion",
            "this job transcribes a recording: complete it with POST /jobs/{request}/complete",
        )
    })?;
    // Refused before anything is written; the row's insert below refuses a race all the same.
    if subject.try_get::<Option<String>, _>("released")?.is_some() {
        return Err(already_released());
    }
    let (verified, _) =
        signed_by_node::<ReleaseManifest>(&mut connection, &vault, &node, &signed).await?;
    let manifest = verified.statement;
    let roster = app.rosters.verified(&mut connection, node.vault_id).await?;
    let mut current: Vec<String> = roster
        .members()
        .iter()
        .map(|member| member.fingerprint.to_hex())
        .collect();
    let mut named: Vec<String> = manifest
        .members
        .iter()
        .map(|member| member.to_hex())
        .collect();
    current.sort();
    named.sort();
    let checks = [
        (manifest.vault_id.to_string() == vault, "vault"),
        (manifest.node_id == node.node_id, "node"),
        (manifest.request_id.to_string() == request, "request"),
        (
            manifest.transcript_id.to_string() == subject.try_get::<String, _>("id")?,
            "transcript",
        ),
        (
            manifest.recording_id.to_string() == subject.try_get::<String, _>("recording_id")?,
            "recording",
        ),
        (
            manifest.transcript_manifest_digest.as_slice()
                == subject.try_get::<Vec<u8>, _>("manifest_digest")?.as_slice(),
            "transcript manifest digest",
        ),
        (
            current == named,
            "members (they must be exactly the vault's current members)",
        ),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(ApiError::bad_request(
            "invalid_statement",
            format!("the release manifest's {what} does not match the job"),
        ));
    }
    let copy = STANDARD.decode(&body.copy).map_err(|_| {
        ApiError::bad_request("invalid_statement", "the released copy must be base64")
    })?;
    if copy.len() > MAX_TRANSCRIPT_BYTES {
        return Err(ApiError::Client {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: format!("a released copy may be at most {MAX_TRANSCRIPT_BYTES} bytes"),
        });
    }
    if copy.len() as u64 != manifest.ciphertext_len
        || <[u8; 32]>::from(Sha256::digest(&copy)) != manifest.ciphertext_sha256
    {
        return Err(ApiError::bad_request(
            "invalid_statement",
            "the released copy's length or SHA-256 differs from its manifest's",
        ));
    }
    let postings =
        parse_postings(&STANDARD.decode(&body.postings).map_err(|_| {
            ApiError::bad_request("invalid_postings", "the postings must be base64")
        })?)?;
    if postings.len() as u64 != manifest.postings_count
        || postings_digest(&postings) != manifest.postings_sha256
    {
        return Err(ApiError::bad_request(
            "invalid_postings",
            "the postings' count or digest differs from the manifest's",
        ));
    }
    let mut grants = BTreeMap::new();
    for grant in &body.grants {
        let member = grant.holder.to_ascii_lowercase();
        if !named.contains(&member) {
            return Err(ApiError::bad_request(
                "invalid_grant",
                format!("a release key is for {member}, whom the manifest does not name"),
            ));
        }
        if grants
            .insert(member.clone(), decode_sealed(&grant.sealed)?)
            .is_some()
        {
            return Err(ApiError::bad_request(
                "invalid_grant",
                format!("two release keys are for {member}"),
            ));
        }
    }
    if grants.len() != named.len() {
        return Err(ApiError::bad_request(
            "invalid_grant",
            "send exactly one sealed release key per member the manifest names",
        ));
    }
    drop(connection);

    let transcript = manifest.transcript_id.to_string();
    let prefix = released_object_prefix(&vault, &transcript);
    let view = app
        .blobs
        .put_fresh(&prefix, copy.into(), async |object| {
            let now = now();
            let mut transaction = app.db.begin().await?;
            finish_job(
                &mut transaction,
                &app,
                (&node, &request, &body.lease_token),
                (&transcript, "transcript.released"),
                &signed.to_bytes(),
                now,
            )
            .await?;
            insert_released(
                &mut transaction,
                (
                    &vault,
                    &transcript,
                    &manifest.recording_id.to_string(),
                    &request,
                ),
                (signed.to_bytes(), verified.digest.to_vec()),
                manifest.ciphertext_len,
                object,
                &postings,
                now,
            )
            .await?;
            for (member, sealed) in grants {
                sqlx::query(
                    "INSERT INTO release_grants (transcript_id, member, sealed, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&transcript)
                .bind(member)
                .bind(sealed)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            }
            let view = released_view(&mut transaction, &vault, &transcript).await?;
            transaction.commit().await?;
            Ok::<_, ApiError>(view)
        })
        .await?;
    tracing::info!(request = %request, transcript = %transcript, postings = postings.len(), "transcript released");
    Ok(axum::Json(view))
}

const RELEASED_COLUMNS: &str =
    "transcript_id, recording_id, request_id, manifest, ciphertext_len, created_at";

fn released_row(row: &AnyRow, members: Vec<String>) -> Result<ReleasedView, sqlx::Error> {
    Ok(ReleasedView {
        transcript_id: row.try_get("transcript_id")?,
        recording_id: row.try_get("recording_id")?,
        request_id: row.try_get("request_id")?,
        manifest: STANDARD.encode(row.try_get::<Vec<u8>, _>("manifest")?),
        ciphertext_len: row.try_get::<i64, _>("ciphertext_len")? as u64,
        members,
        created_at: row.try_get("created_at")?,
    })
}

async fn grant_holders(
    connection: &mut sqlx::AnyConnection,
    transcript: &str,
) -> Result<Vec<String>, ApiError> {
    Ok(
        sqlx::query("SELECT member FROM release_grants WHERE transcript_id = $1 ORDER BY member")
            .bind(transcript)
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(|row| row.try_get("member"))
            .collect::<Result<_, _>>()?,
    )
}

async fn released_view(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    transcript: &str,
) -> Result<ReleasedView, ApiError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RELEASED_COLUMNS} FROM released_transcripts WHERE vault_id = $1 AND transcript_id = $2"
    )))
    .bind(vault)
    .bind(transcript)
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(ApiError::not_found)?;
    let members = grant_holders(connection, transcript).await?;
    Ok(released_row(&row, members)?)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReleasedFilter {
    /// Only the released transcripts of this recording.
    recording: Option<String>,
}

/// The vault's released transcripts, newest first.
#[utoipa::path(
    get, path = "/vaults/{vault}/released", tag = "search", security(("session" = [])), operation_id = "list_released",
    params(VaultPath, ReleasedFilter),
    responses(
        (status = 200, description = "Released transcripts with their signed release manifests", body = Vec<quorate_api::ReleasedView>),
    )
)]
pub(crate) async fn list_released(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiQuery(filter): ApiQuery<ReleasedFilter>,
) -> Result<axum::Json<Vec<ReleasedView>>, ApiError> {
    who.member_of(&vault)?;
    let mut connection = app.db.pool().acquire().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RELEASED_COLUMNS} FROM released_transcripts WHERE vault_id = $1 AND ($2 = '' OR recording_id = $2)
         ORDER BY created_at DESC, transcript_id"
    )))
    .bind(&vault)
    .bind(filter.recording.unwrap_or_default().to_ascii_lowercase())
    .fetch_all(&mut *connection)
    .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in &rows {
        let members =
            grant_holders(&mut connection, &row.try_get::<String, _>("transcript_id")?).await?;
        views.push(released_row(row, members)?);
    }
    Ok(axum::Json(views))
}

/// The caller's sealed copy of a released transcript's key.
#[utoipa::path(
    get, path = "/vaults/{vault}/released/{transcript}/grant", tag = "search", security(("session" = [])), operation_id = "get_release_grant",
    params(TranscriptPath),
    responses(
        (status = 200, description = "The release key sealed to the caller", body = quorate_api::SealedGrant),
    )
)]
pub(crate) async fn get_release_grant(
    State(app): State<App>,
    who: Authenticated,
    Path(TranscriptPath { vault, transcript }): Path<TranscriptPath>,
) -> Result<axum::Json<SealedGrant>, ApiError> {
    who.member_of(&vault)?;
    let row = sqlx::query(
        "SELECT g.sealed FROM release_grants g JOIN released_transcripts r ON r.transcript_id = g.transcript_id
         WHERE r.vault_id = $1 AND g.transcript_id = $2 AND g.member = $3",
    )
    .bind(&vault)
    .bind(transcript.to_ascii_lowercase())
    .bind(&who.fingerprint)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(|| ApiError::Client {
        status: StatusCode::NOT_FOUND,
        code: "no_grant",
        message: "this released transcript's key is not sealed to you yet: a member who can read it shares it (`quorate share-keys`)".into(),
    })?;
    Ok(axum::Json(SealedGrant {
        holder: who.fingerprint,
        sealed: STANDARD.encode(row.try_get::<Vec<u8>, _>("sealed")?),
    }))
}

/// Adds current members to a released copy: its key, sealed to each of them on the device of
/// a member who can open it. A member's grant is stored only for someone who has none; an
/// admin's replaces one.
#[utoipa::path(
    post, path = "/vaults/{vault}/released/{transcript}/grants", tag = "search", security(("session" = [])), operation_id = "add_release_grants",
    params(TranscriptPath),
    request_body = Vec<quorate_api::SealedGrant>,
    responses(
        (status = 200, description = "Stored; the released transcript as it now stands", body = quorate_api::ReleasedView),
        (status = 400, description = "A grant is not for a current member", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn add_release_grants(
    State(app): State<App>,
    who: Authenticated,
    Path(TranscriptPath { vault, transcript }): Path<TranscriptPath>,
    ApiJson(body): ApiJson<Vec<SealedGrant>>,
) -> Result<axum::Json<ReleasedView>, ApiError> {
    who.member_of(&vault)?;
    let transcript = transcript.to_ascii_lowercase();
    let now = now();
    let mut transaction = app.db.begin().await?;
    released_view(&mut transaction, &vault, &transcript).await?;
    let roster = app.rosters.verified(&mut transaction, who.vault_id).await?;
    // The server cannot tell a good sealed key from any other, and a member's device refuses
    // a bad one only when it opens it. So if the first grant always stood, any member could
    // seal some other key to a newcomer first and the newcomer would never get a good one.
    // An admin's grant therefore replaces an earlier one (admins approve newcomers, and their
    // devices seal the keys then); a member's only fills a gap, so it cannot undo an admin's.
    let insert = if who.role == "admin" {
        "INSERT INTO release_grants (transcript_id, member, sealed, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (transcript_id, member) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at"
    } else {
        "INSERT INTO release_grants (transcript_id, member, sealed, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
    };
    for grant in &body {
        let member = grant.holder.to_ascii_lowercase();
        if !roster
            .members()
            .iter()
            .any(|current| current.fingerprint.to_hex() == member)
        {
            return Err(ApiError::bad_request(
                "invalid_grant",
                format!("{member} is not a current member"),
            ));
        }
        store_grant(
            &mut transaction,
            (&app, &who, now),
            insert,
            (&transcript, &member, decode_sealed(&grant.sealed)?),
            ("release.shared", &format!("{transcript}/{member}")),
        )
        .await?;
    }
    let view = released_view(&mut transaction, &vault, &transcript).await?;
    transaction.commit().await?;
    Ok(axum::Json(view))
}

/// The released copy (an age file to the release key), streamed.
#[utoipa::path(
    get, path = "/vaults/{vault}/released/{transcript}/ciphertext", tag = "search", security(("session" = [])), operation_id = "download_released",
    params(TranscriptPath),
    responses(
        (status = 200, description = "The released copy", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream"),
    )
)]
pub(crate) async fn download_released(
    State(app): State<App>,
    who: Authenticated,
    Path(TranscriptPath { vault, transcript }): Path<TranscriptPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    who.member_of(&vault)?;
    let transcript = transcript.to_ascii_lowercase();
    stream_object(
        &app,
        "SELECT ciphertext_len, manifest_digest, object FROM released_transcripts WHERE vault_id = $1 AND transcript_id = $2",
        (&vault, &transcript),
        |row| row.try_get("object"),
        &headers,
    )
    .await
}

/// Checks that a transcript manifest is well formed (used where a stored one is read back).
pub(crate) fn transcript_manifest(
    bytes: &[u8],
) -> Result<TranscriptManifest, quorate_crypto::Error> {
    quorate_crypto::statement::SignedStatement::from_bytes(bytes)
        .and_then(|signed| signed.verify::<TranscriptManifest>())
        .map(|verified| verified.statement)
}

/// Puts a released transcript straight into the index, without a node, a copy or any key:
/// for tests of ranking and for the search benchmark only. The rows are those a release
/// stores (the sealed transcript's and the released copy's manifests are placeholders).
#[doc(hidden)]
pub async fn seed_released(
    db: &crate::db::Db,
    vault: &str,
    recording: &str,
    transcript: &str,
    postings: &[Posting],
) -> Result<(), ApiError> {
    let mut transaction = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO transcripts (id, vault_id, recording_id, request_id, node_id, manifest, manifest_digest, ciphertext_len, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, 0, 0)",
    )
    .bind(transcript)
    .bind(vault)
    .bind(recording)
    .bind(format!("seed-transcribe-{transcript}"))
    .bind("seed")
    .bind(Vec::<u8>::new())
    .execute(&mut *transaction)
    .await?;
    insert_released(
        &mut transaction,
        (
            vault,
            transcript,
            recording,
            &format!("seed-release-{transcript}"),
        ),
        (Vec::new(), Vec::new()),
        0,
        "",
        postings,
        0,
    )
    .await?;
    transaction.commit().await?;
    Ok(())
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
