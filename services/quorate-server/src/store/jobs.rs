//! The job queue: `jobs`, one per quorate request, and what a node receives with one.

use quorate_api::Base64;
use quorate_api::{JobStatus, JobView, NodeShare};
use sqlx::AnyConnection;

use super::{Tx, db::Backend};

/// Whether `node` holds a live lease (at `now`) on a job whose request is about `subject`.
pub(crate) async fn leased_on(
    connection: &mut AnyConnection,
    node: &str,
    subject: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let job = sqlx::query(
        "SELECT 1 FROM jobs j JOIN unlock_requests r ON r.id = j.request_id
         WHERE j.node_id = $1 AND r.subject_id = $2 AND j.status = 'leased' AND j.lease_expires_at > $3",
    )
    .bind(node)
    .bind(subject)
    .bind(now)
    .fetch_optional(connection)
    .await?;
    Ok(job.is_some())
}

/// Queues the job that carries out quorate request `request` on `node`.
pub(crate) async fn queue(
    connection: &mut AnyConnection,
    request: &str,
    vault: &str,
    node: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO jobs (request_id, vault_id, node_id, status, created_at, updated_at)
         VALUES ($1, $2, $3, 'queued', $4, $4)",
    )
    .bind(request)
    .bind(vault)
    .bind(node)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// A lease to take: who takes it, under which token (hashed), until when.
#[derive(Debug)]
pub(crate) struct NewLease<'a> {
    pub node: &'a str,
    pub token_hash: &'a [u8],
    pub expires_at: i64,
    /// Jobs claimed this many times already are left to the sweeper.
    pub max_attempts: i32,
    pub now: i64,
}

/// A job just leased.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Claimed {
    pub request_id: String,
    pub vault_id: String,
    pub attempts: i32,
}

/// Leases the oldest job waiting for the lease's node (queued, or leased under a lease that
/// lapsed), `None` when there is none. On PostgreSQL concurrent claims skip a row another
/// claim holds (`FOR UPDATE SKIP LOCKED`); SQLite's single writer makes the statement atomic.
pub(crate) async fn claim(
    tx: &mut Tx,
    lease: &NewLease<'_>,
) -> Result<Option<Claimed>, sqlx::Error> {
    let pick = match tx.db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET status = 'leased', lease_token = $1, lease_expires_at = $2, attempts = attempts + 1, updated_at = $3
         WHERE request_id = (
             SELECT request_id FROM jobs
             WHERE node_id = $4 AND attempts < $5
               AND (status = 'queued' OR (status = 'leased' AND lease_expires_at < $3))
             ORDER BY created_at, request_id LIMIT 1 {pick})
         RETURNING request_id, vault_id, attempts"
    )))
    .bind(lease.token_hash)
    .bind(lease.expires_at)
    .bind(lease.now)
    .bind(lease.node)
    .bind(lease.max_attempts)
    .fetch_optional(&mut **tx)
    .await
}

/// When the first lease `node` holds on a job it may claim again lapses (the claim's
/// `lease_expires_at < now` holds from the second after); `None` when it holds none.
pub(crate) async fn next_lapse(
    connection: &mut AnyConnection,
    node: &str,
    max_attempts: i32,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(lease_expires_at) FROM jobs
         WHERE node_id = $1 AND status = 'leased' AND attempts < $2",
    )
    .bind(node)
    .bind(max_attempts)
    .fetch_one(connection)
    .await
}

/// What a node needs to carry out a job: the signed request, the signed manifest of its
/// subject (a recording or a sealed transcript), and the approvals with their re-sealed shares.
#[derive(Debug)]
pub(crate) struct WorkOrder {
    pub request: Vec<u8>,
    pub subject_manifest: Vec<u8>,
    pub approvals: Vec<NodeShare>,
    /// The subject's kind (`recording` or `transcript`) and ID.
    pub subject: (String, String),
}

#[derive(Debug, sqlx::FromRow)]
struct RequestAndSubject {
    statement: Vec<u8>,
    manifest: Vec<u8>,
    subject_kind: String,
    subject_id: String,
}

#[derive(Debug, sqlx::FromRow)]
struct Approval {
    voter: String,
    statement: Vec<u8>,
    resealed_share: Vec<u8>,
}

/// The work order of request `request`'s job.
pub(crate) async fn work_order(
    connection: &mut AnyConnection,
    request: &str,
) -> Result<WorkOrder, sqlx::Error> {
    let subject: RequestAndSubject = sqlx::query_as(
        "SELECT r.statement, COALESCE(m.manifest, t.manifest) AS manifest, r.subject_kind,
                r.subject_id FROM unlock_requests r
         LEFT JOIN recordings m ON m.id = r.subject_id LEFT JOIN transcripts t ON t.id = r.subject_id
         WHERE r.id = $1",
    )
    .bind(request)
    .fetch_one(&mut *connection)
    .await?;
    let approvals: Vec<Approval> = sqlx::query_as(
        "SELECT voter, statement, resealed_share FROM votes WHERE request_id = $1 AND decision = 'approve' ORDER BY created_at, voter",
    )
    .bind(request)
    .fetch_all(connection)
    .await?;
    Ok(WorkOrder {
        subject: (subject.subject_kind, subject.subject_id),
        request: subject.statement,
        subject_manifest: subject.manifest,
        approvals: approvals
            .into_iter()
            .map(|approval| NodeShare {
                voter: approval.voter,
                vote: Base64::from(approval.statement),
                resealed_share: Base64::from(approval.resealed_share),
            })
            .collect(),
    })
}

/// A job as its node sees it when it reports on it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NodeJob {
    pub vault_id: String,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    pub lease_token: Option<Vec<u8>>,
    pub transcript_id: Option<String>,
}

/// `node`'s job for request `request`, `None` when the node has no such job.
pub(crate) async fn of_node(
    connection: &mut AnyConnection,
    node: &str,
    request: &str,
) -> Result<Option<NodeJob>, sqlx::Error> {
    sqlx::query_as(
        "SELECT vault_id, status, lease_token, transcript_id FROM jobs WHERE request_id = $1 AND node_id = $2",
    )
    .bind(request)
    .bind(node)
    .fetch_optional(connection)
    .await
}

/// The holder of a lease on request `request`'s job: the node and its token (hashed).
#[derive(Debug)]
pub(crate) struct LeaseHolder<'a> {
    pub node: String,
    pub request: &'a str,
    pub token_hash: Vec<u8>,
}

/// How far a job is.
#[derive(Debug)]
pub(crate) struct Progress<'a> {
    pub permille: u16,
    pub stage: &'a str,
    /// The renewed lease's end.
    pub lease_expires_at: i64,
    pub now: i64,
}

/// Runs `UPDATE jobs SET {set}` on the job `holder` holds a live lease on (its placeholders
/// start at `$4`, bound by `bind`); whether there was such a job.
async fn update_leased<'q>(
    connection: &mut AnyConnection,
    holder: &'q LeaseHolder<'_>,
    set: &str,
    bind: impl FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE jobs SET {set}
         WHERE request_id = $1 AND node_id = $2 AND status = 'leased' AND lease_token = $3"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(holder.request)
        .bind(&holder.node)
        .bind(&holder.token_hash);
    let updated = bind(query).execute(connection).await?.rows_affected();
    Ok(updated == 1)
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Records progress and renews the lease; `false` when `holder` holds no live lease on it.
pub(crate) async fn renew(
    connection: &mut AnyConnection,
    holder: &LeaseHolder<'_>,
    progress: &Progress<'_>,
) -> Result<bool, sqlx::Error> {
    let set = "lease_expires_at = $4, progress_permille = $5, stage = $6, updated_at = $7";
    update_leased(connection, holder, set, |query| {
        query
            .bind(progress.lease_expires_at)
            .bind(i32::from(progress.permille))
            .bind(progress.stage)
            .bind(progress.now)
    })
    .await
}

/// Puts the job `holder` leases back in the queue, as if this claim had not been made (the
/// attempt is not counted: the node stopped, the job did not fail); `false` when `holder`
/// holds no live lease on it.
pub(crate) async fn give_back(
    connection: &mut AnyConnection,
    holder: &LeaseHolder<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let set =
        "status = 'queued', lease_token = NULL, lease_expires_at = NULL, attempts = attempts - 1,
               progress_permille = 0, stage = NULL, updated_at = $4";
    update_leased(connection, holder, set, |query| query.bind(now)).await
}

/// Marks the job `holder` leases done with `transcript`; `false` when `holder` holds no live
/// lease on it. As a transaction's first write it holds the job's row until the end.
pub(crate) async fn finish(
    connection: &mut AnyConnection,
    holder: &LeaseHolder<'_>,
    transcript: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let set = "status = 'done', transcript_id = $4, progress_permille = 1000, stage = 'done', updated_at = $5";
    update_leased(connection, holder, set, |query| {
        query.bind(transcript).bind(now)
    })
    .await
}

/// Fails request `request`'s job with `reason` if it is still queued or leased; `false` when
/// it had ended meanwhile.
pub(crate) async fn fail(
    connection: &mut AnyConnection,
    request: &str,
    reason: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let failed = sqlx::query(
        "UPDATE jobs SET status = 'failed', failure = $1, lease_token = NULL, updated_at = $2
         WHERE request_id = $3 AND status IN ('queued', 'leased')",
    )
    .bind(reason)
    .bind(now)
    .bind(request)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(failed == 1)
}

/// A job that time has run out on.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Overdue {
    pub request_id: String,
    pub vault_id: String,
    /// Its request's expiry.
    pub expires_at: i64,
}

/// Unfinished jobs whose request expired, or whose lease lapsed after `max_attempts` claims.
pub(crate) async fn overdue(
    connection: &mut AnyConnection,
    now: i64,
    max_attempts: i32,
) -> Result<Vec<Overdue>, sqlx::Error> {
    sqlx::query_as(
        "SELECT j.request_id, j.vault_id, r.expires_at FROM jobs j JOIN unlock_requests r ON r.id = j.request_id
         WHERE j.status IN ('queued', 'leased') AND (r.expires_at <= $1 OR (j.status = 'leased' AND j.lease_expires_at < $1 AND j.attempts >= $2))",
    )
    .bind(now)
    .bind(max_attempts)
    .fetch_all(connection)
    .await
}

#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    request_id: String,
    node_id: String,
    #[sqlx(try_from = "String")]
    status: JobStatus,
    attempts: i32,
    progress_permille: i32,
    stage: Option<String>,
    failure: Option<String>,
    transcript_id: Option<String>,
    updated_at: i64,
}

impl From<JobRow> for JobView {
    fn from(row: JobRow) -> Self {
        Self {
            request_id: row.request_id,
            node_id: row.node_id,
            status: row.status,
            attempts: row.attempts as u32,
            progress_permille: row.progress_permille as u16,
            stage: row.stage,
            failure: row.failure,
            transcript_id: row.transcript_id,
            updated_at: row.updated_at,
        }
    }
}

/// `vault`'s jobs, newest first.
pub(crate) async fn list(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<JobView>, sqlx::Error> {
    let rows: Vec<JobRow> = sqlx::query_as(
        "SELECT request_id, node_id, status, attempts, progress_permille, stage, failure, transcript_id, updated_at
         FROM jobs WHERE vault_id = $1 ORDER BY created_at DESC, request_id",
    )
    .bind(vault)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(JobView::from).collect())
}
