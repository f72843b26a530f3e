//! Unlock requests and their votes: `unlock_requests` and `votes`.

use quorate_api::Base64;
use quorate_api::{
    RequestPurpose, RequestStatus, RequestView, SubjectKind, VoteDecision, VoteView,
};
use sqlx::AnyConnection;

/// A stored request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RequestRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    #[sqlx(try_from = "String")]
    pub purpose: RequestPurpose,
    pub node_id: String,
    pub requester: String,
    #[sqlx(try_from = "String")]
    pub status: RequestStatus,
    pub threshold_k: i32,
    pub eligible: i32,
    pub statement: Vec<u8>,
    pub digest: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

const REQUEST_COLUMNS: &str = "id, subject_kind, subject_id, purpose, node_id, requester, status, \
     threshold_k, eligible, statement, digest, created_at, expires_at";

/// A stored vote.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct VoteRow {
    pub voter: String,
    #[sqlx(try_from = "String")]
    pub decision: VoteDecision,
    pub statement: Vec<u8>,
    pub created_at: i64,
}

impl RequestRow {
    /// The request as the API shows it, with `votes` (oldest first).
    pub(crate) fn view(self, votes: Vec<VoteRow>) -> RequestView {
        let count = |decision| votes.iter().filter(|v| v.decision == decision).count() as u8;
        let (approvals, denials) = (count(VoteDecision::Approve), count(VoteDecision::Deny));
        RequestView {
            request_id: self.id,
            subject_kind: self.subject_kind,
            subject_id: self.subject_id,
            purpose: self.purpose,
            node_id: self.node_id,
            requester: self.requester,
            status: self.status,
            threshold: self.threshold_k as u8,
            eligible: self.eligible as u8,
            approvals,
            denials,
            statement: Base64::from(self.statement),
            created_at: self.created_at,
            expires_at: self.expires_at,
            votes: votes
                .into_iter()
                .map(|vote| VoteView {
                    voter: vote.voter,
                    decision: vote.decision,
                    statement: Base64::from(vote.statement),
                    created_at: vote.created_at,
                })
                .collect(),
        }
    }
}

/// A request to store (its status is `open`).
#[derive(Debug)]
pub(crate) struct NewRequest<'a> {
    pub id: &'a str,
    pub vault: &'a str,
    pub subject_kind: SubjectKind,
    pub subject_id: &'a str,
    pub purpose: RequestPurpose,
    pub node_id: &'a str,
    pub requester: &'a str,
    pub statement: &'a [u8],
    pub digest: &'a [u8],
    pub threshold: u8,
    pub eligible: u8,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Stores a new open request; `false` when one with its ID exists.
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    request: &NewRequest<'_>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO unlock_requests (id, vault_id, subject_kind, subject_id, purpose, node_id, requester, statement, digest,
                                      threshold_k, eligible, status, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $12, $13) ON CONFLICT DO NOTHING",
    )
    .bind(request.id)
    .bind(request.vault)
    .bind(request.subject_kind.as_str())
    .bind(request.subject_id)
    .bind(request.purpose.as_str())
    .bind(request.node_id)
    .bind(request.requester)
    .bind(request.statement)
    .bind(request.digest)
    .bind(i32::from(request.threshold))
    .bind(i32::from(request.eligible))
    .bind(request.created_at)
    .bind(request.expires_at)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Request `id` of `vault`, `None` when there is none.
pub(crate) async fn get(
    connection: &mut AnyConnection,
    vault: &str,
    id: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM unlock_requests WHERE id = $1 AND vault_id = $2"
    )))
    .bind(id)
    .bind(vault)
    .fetch_optional(connection)
    .await
}

/// A request locked for a vote, and whether the voter holds a share of its subject.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LockedRequest {
    #[sqlx(flatten)]
    pub request: RequestRow,
    voter_holds_share: i64,
}

impl LockedRequest {
    /// Whether the voter holds a share of the request's subject.
    pub(crate) fn voter_holds_share(&self) -> bool {
        self.voter_holds_share != 0
    }
}

/// Request `id` of `vault`, locked until the transaction ends so that votes on one request
/// take turns (the no-op write takes the row lock on PostgreSQL and SQLite's write lock
/// before anything is read), with whether `voter` holds a share of its subject, in the same
/// round trip.
pub(crate) async fn lock(
    connection: &mut AnyConnection,
    vault: &str,
    id: &str,
    voter: &str,
) -> Result<Option<LockedRequest>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE unlock_requests SET status = status WHERE id = $1 AND vault_id = $2
         RETURNING {REQUEST_COLUMNS}, CAST(CASE WHEN {} THEN 1 ELSE 0 END AS BIGINT) AS voter_holds_share",
        holds_share("unlock_requests.subject_id", "$3")
    )))
    .bind(id)
    .bind(vault)
    .bind(voter)
    .fetch_optional(connection)
    .await
}

/// The votes on request `id`, oldest first.
pub(crate) async fn votes(
    connection: &mut AnyConnection,
    id: &str,
) -> Result<Vec<VoteRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT voter, decision, statement, created_at FROM votes WHERE request_id = $1
         ORDER BY created_at, voter",
    )
    .bind(id)
    .fetch_all(connection)
    .await
}

/// Request `id` with its votes, as the API shows it.
pub(crate) async fn view(
    connection: &mut AnyConnection,
    vault: &str,
    id: &str,
) -> Result<Option<RequestView>, sqlx::Error> {
    let Some(request) = get(connection, vault, id).await? else {
        return Ok(None);
    };
    let votes = votes(connection, id).await?;
    Ok(Some(request.view(votes)))
}

/// Whether `member` holds a share of the subject `subject` (a recording or transcript ID),
/// as SQL with the two placeholders given.
fn holds_share(subject: &str, member: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM recording_shares s WHERE s.recording_id = {subject} AND s.member = {member})
          OR EXISTS (SELECT 1 FROM transcript_shares s WHERE s.transcript_id = {subject} AND s.member = {member}))"
    )
}

/// Which of a vault's requests a listing shows.
#[derive(Debug)]
pub(crate) struct Filter<'a> {
    /// Only this status (any when `None`).
    pub status: Option<RequestStatus>,
    /// Only open requests this member can still vote on.
    pub awaiting: Option<&'a str>,
    /// The time, for what is still open.
    pub now: i64,
}

/// The IDs of `vault`'s requests that pass `filter`, newest first.
async fn ids(
    connection: &mut AnyConnection,
    vault: &str,
    filter: &Filter<'_>,
) -> Result<Vec<String>, sqlx::Error> {
    let holds = holds_share("r.subject_id", "$5");
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT r.id FROM unlock_requests r
         WHERE r.vault_id = $1 AND ($2 = '' OR r.status = $2)
           AND ($3 = 0 OR (r.status = 'open' AND r.expires_at > $4 AND r.requester <> $5
                AND {holds}
                AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.request_id = r.id AND v.voter = $5)))
         ORDER BY r.created_at DESC, r.id"
    )))
    .bind(vault)
    .bind(filter.status.map(RequestStatus::as_str).unwrap_or_default())
    .bind(i32::from(filter.awaiting.is_some()))
    .bind(filter.now)
    .bind(filter.awaiting.unwrap_or_default())
    .fetch_all(connection)
    .await
}

/// A vote to store.
#[derive(Debug)]
pub(crate) struct NewVote<'a> {
    pub request: &'a str,
    pub voter: &'a str,
    pub decision: VoteDecision,
    pub statement: &'a [u8],
    pub resealed_share: Option<&'a [u8]>,
    pub created_at: i64,
}

/// Stores a vote; `false` when the voter has voted on this request already.
pub(crate) async fn insert_vote(
    connection: &mut AnyConnection,
    vote: &NewVote<'_>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO votes (request_id, voter, decision, statement, resealed_share, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(vote.request)
    .bind(vote.voter)
    .bind(vote.decision.as_str())
    .bind(vote.statement)
    .bind(vote.resealed_share)
    .bind(vote.created_at)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Closes request `id` as `status` if it is still open; `false` when it was closed meanwhile.
pub(crate) async fn close(
    connection: &mut AnyConnection,
    id: &str,
    status: RequestStatus,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let closed = sqlx::query(
        "UPDATE unlock_requests SET status = $1, closed_at = $2 WHERE id = $3 AND status = 'open'",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(id)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(closed == 1)
}

/// Open requests past their expiry: (request, vault) pairs.
pub(crate) async fn past_expiry(
    connection: &mut AnyConnection,
    now: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, vault_id FROM unlock_requests WHERE status = 'open' AND expires_at <= $1",
    )
    .bind(now)
    .fetch_all(connection)
    .await
}

/// Whether a request to release `transcript` is open or being carried out (its job queued or
/// leased).
pub(crate) async fn release_pending(
    connection: &mut AnyConnection,
    transcript: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let pending = sqlx::query(
        "SELECT 1 FROM unlock_requests r LEFT JOIN jobs j ON j.request_id = r.id
         WHERE r.subject_id = $1 AND r.purpose = 'release-transcript'
           AND ((r.status = 'open' AND r.expires_at > $2) OR (r.status = 'quorate' AND j.status IN ('queued', 'leased')))",
    )
    .bind(transcript)
    .bind(now)
    .fetch_optional(connection)
    .await?;
    Ok(pending.is_some())
}

/// `vault`'s requests that pass `filter`, newest first, with their votes.
pub(crate) async fn list(
    db: &super::Db,
    vault: &str,
    filter: &Filter<'_>,
) -> Result<Vec<RequestView>, sqlx::Error> {
    let mut connection = db.connection().await?;
    let mut views = Vec::new();
    for id in ids(&mut connection, vault, filter).await? {
        views.extend(view(&mut connection, vault, &id).await?);
    }
    Ok(views)
}

/// Closes every open request on `subject` (a recording or transcript ID) as expired.
pub(crate) async fn expire_open_on(
    connection: &mut AnyConnection,
    subject: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE unlock_requests SET status = 'expired', closed_at = $1
         WHERE subject_id = $2 AND status = 'open'",
    )
    .bind(now)
    .bind(subject)
    .execute(connection)
    .await?
    .rows_affected())
}
