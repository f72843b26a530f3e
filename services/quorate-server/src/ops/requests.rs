//! Unlock requests and votes. A member asks (signed) for a recording's key to be unlocked for
//! one approved node; share holders other than the requester vote (signed), an approval
//! carrying their share re-sealed to that node. At k approvals the request is quorate and a
//! job is queued for the node; enough denials to make k unreachable reject it; its expiry
//! closes it. Each vote is checked against the request before it counts, and every
//! transition is audited.

use axum::http::StatusCode;
use quorate_api::{RequestStatus, RequestView, SubjectKind, VoteDecision};
use quorate_crypto::{
    RequestId, VaultId,
    rewrap::resealed_digest,
    statement::{Decision, SignedStatement, UnlockRequest, VaultPolicy, Vote},
    threshold::Subject,
};

use crate::{
    App,
    error::Refusal,
    ops::roster::RosterError,
    store::{self, Event, Tx, requests::RequestRow},
};

/// The longest a request may stay open.
const MAX_REQUEST_LIFETIME: i64 = 14 * 86_400;
/// How far ahead of the server's clock a device's `created_at` may be.
const CLOCK_SKEW: i64 = 300;
/// Largest re-sealed share accepted.
const MAX_RESEALED_SHARE: usize = 4096;

/// Why a request or vote was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("{0}")]
    InvalidStatement(#[from] quorate_crypto::Error),
    #[error("the request must name and be signed by the member sending it")]
    NotRequester,
    #[error(
        "a request must expire in the future and within 14 days of being made (check the device's clock)"
    )]
    InvalidExpiry,
    #[error("no {0} with that ID in this vault")]
    UnknownSubject(&'static str),
    #[error("this transcript is released already: members can read and search it")]
    AlreadyReleased,
    #[error(
        "a request to release this transcript is open or being carried out: vote on it, or wait until it ends"
    )]
    ReleasePending,
    #[error("no node with that ID in this vault")]
    UnknownNode,
    #[error("that node has no current approval: an admin must approve it first")]
    NodeNotApproved,
    #[error(
        "{threshold} approvals are needed but only {eligible} other share holders can give one"
    )]
    QuorumUnreachable { threshold: u8, eligible: u8 },
    #[error("a request with this ID exists: make a new one with a fresh ID")]
    RequestExists,
    #[error("no such resource")]
    NotFound,
    #[error("this request has expired: ask for a new one")]
    Expired,
    #[error("this request is {0}: votes are no longer taken")]
    Closed(RequestStatus),
    #[error("the vote's {0} does not match this request")]
    VoteMismatch(&'static str),
    #[error("the requester's own vote does not count: other members decide")]
    OwnRequest,
    #[error("only members who hold a share of this key vote on it")]
    NotAHolder,
    #[error("{0}")]
    InvalidShare(String),
    #[error("you have voted on this request already; a vote cannot be changed")]
    AlreadyVoted,
    #[error("the stored transcript manifest does not verify: {0}")]
    CorruptManifest(quorate_crypto::Error),
    #[error("a stored threshold (a re-share's or the vault policy's) does not parse")]
    CorruptThreshold,
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl Refusal for RequestError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use RequestError::*;
        Some(match self {
            InvalidStatement(_) | NotRequester | VoteMismatch(_) => {
                (StatusCode::BAD_REQUEST, "invalid_statement")
            }
            InvalidExpiry => (StatusCode::BAD_REQUEST, "invalid_expiry"),
            UnknownSubject(_) => (StatusCode::BAD_REQUEST, "unknown_subject"),
            AlreadyReleased => (StatusCode::CONFLICT, "already_released"),
            ReleasePending => (StatusCode::CONFLICT, "release_pending"),
            UnknownNode => (StatusCode::BAD_REQUEST, "unknown_node"),
            NodeNotApproved => (StatusCode::BAD_REQUEST, "node_not_approved"),
            QuorumUnreachable { .. } => (StatusCode::BAD_REQUEST, "quorum_unreachable"),
            RequestExists => (StatusCode::CONFLICT, "request_exists"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Expired | Closed(_) => (StatusCode::CONFLICT, "request_closed"),
            OwnRequest => (StatusCode::FORBIDDEN, "own_request"),
            NotAHolder => (StatusCode::FORBIDDEN, "not_a_holder"),
            InvalidShare(_) => (StatusCode::BAD_REQUEST, "invalid_share"),
            AlreadyVoted => (StatusCode::CONFLICT, "already_voted"),
            CorruptManifest(_) | CorruptThreshold | Roster(_) | Store(_) => return None,
        })
    }
}

/// The member acting: their vault and fingerprint (hex).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member<'a> {
    pub vault: VaultId,
    pub fingerprint: &'a str,
}

/// Opens a signed unlock request by `member`: it must name and be signed by them, name a
/// complete recording (or a sealed transcript not released or being released) and a node
/// whose approval is current, expire within 14 days, and be reachable by the other holders.
pub(crate) async fn create(
    app: &App,
    member: Member<'_>,
    signed: &SignedStatement,
    now: i64,
) -> Result<RequestView, RequestError> {
    let vault = member.vault.to_string();
    let mut tx = app.db.begin().await?;
    // Requests in one vault are made one at a time, so two requests to release one
    // transcript cannot both find that none is pending.
    store::vaults::lock(&mut tx, &vault).await?;
    let roster = app.rosters.verified(&mut tx, member.vault).await?;
    let (verified, signer) = roster.verify_by_member::<UnlockRequest>(signed)?;
    let request = verified.statement;
    if signer.fingerprint.to_hex() != member.fingerprint || request.requester != signer.fingerprint
    {
        return Err(RequestError::NotRequester);
    }
    if request.created_at > now + CLOCK_SKEW
        || request.expires_at <= now
        || request.expires_at - request.created_at > MAX_REQUEST_LIFETIME
    {
        return Err(RequestError::InvalidExpiry);
    }
    let (threshold, holders) = subject_holders(&mut tx, &vault, &request.subject, now).await?;
    // A node takes no fewer approvals than the vault's policy asks, whatever k the key was
    // split with before the policy rose: the quorum waits for as many.
    let threshold = match store::policies::newest(&mut tx, &vault).await? {
        Some(bytes) => SignedStatement::from_bytes(&bytes)
            .and_then(|signed| signed.verify::<VaultPolicy>())
            .map_err(|_| RequestError::CorruptThreshold)?
            .statement
            .min_threshold
            .max(threshold),
        None => threshold,
    };
    check_node(&mut tx, &vault, &request, now).await?;
    let eligible = holders
        .iter()
        .filter(|holder| *holder != member.fingerprint)
        .count() as u8;
    if eligible < threshold {
        return Err(RequestError::QuorumUnreachable {
            threshold,
            eligible,
        });
    }
    let (subject_kind, subject_id) = match request.subject {
        Subject::Recording(id) => (SubjectKind::Recording, id.to_string()),
        Subject::Transcript(id) => (SubjectKind::Transcript, id.to_string()),
    };
    let id = request.request_id.to_string();
    let statement = signed.to_bytes();
    let stored = store::requests::NewRequest {
        id: &id,
        vault: &vault,
        subject_kind,
        subject_id: &subject_id,
        purpose: request.purpose.into(),
        node_id: &request.node_id.to_string(),
        requester: member.fingerprint,
        statement: &statement,
        digest: &verified.digest,
        threshold,
        eligible,
        created_at: now,
        expires_at: request.expires_at,
    };
    if !store::requests::insert(&mut tx, &stored).await? {
        return Err(RequestError::RequestExists);
    }
    tx.audit(
        member.vault,
        now,
        Event::by(member.fingerprint, "request.created", &id, &statement),
    );
    let view = store::requests::view(&mut tx, &vault, &id)
        .await?
        .ok_or(RequestError::NotFound)?;
    tx.commit().await?;
    tracing::info!(vault = %vault, request = %id, purpose = request.purpose.as_str(), "unlock request opened");
    Ok(view)
}

/// The request's node must be approved past the request's expiry (or now, if sooner).
async fn check_node(
    tx: &mut Tx,
    vault: &str,
    request: &UnlockRequest,
    now: i64,
) -> Result<(), RequestError> {
    let node = store::nodes::approval_state(tx, vault, &request.node_id.to_string())
        .await?
        .ok_or(RequestError::UnknownNode)?;
    if node.status != quorate_api::NodeStatus::Approved
        || node.approval_expires_at.unwrap_or(0) <= request.expires_at.min(now)
    {
        return Err(RequestError::NodeNotApproved);
    }
    Ok(())
}

/// The threshold of a subject's split and who holds its shares.
async fn subject_holders(
    tx: &mut Tx,
    vault: &str,
    subject: &Subject,
    now: i64,
) -> Result<(u8, Vec<String>), RequestError> {
    match subject {
        Subject::Recording(recording) => {
            let recording = recording.to_string();
            let threshold = store::recordings::complete_threshold(tx, vault, &recording)
                .await?
                .ok_or(RequestError::UnknownSubject("complete recording"))?;
            let holders = store::recordings::share_holders(tx, &recording).await?;
            Ok((threshold, holders))
        }
        Subject::Transcript(transcript) => {
            transcript_holders(tx, vault, &transcript.to_string(), now).await
        }
    }
}

/// The threshold and share holders of a sealed transcript that is neither released nor being
/// released: one release request at a time, open or with its job waiting or running, so
/// that two jobs never make two released copies of one transcript. (A request that expired,
/// was rejected, or whose job failed leaves room for another.)
async fn transcript_holders(
    tx: &mut Tx,
    vault: &str,
    transcript: &str,
    now: i64,
) -> Result<(u8, Vec<String>), RequestError> {
    let subject = store::transcripts::release_subject(tx, vault, transcript)
        .await?
        .ok_or(RequestError::UnknownSubject("transcript"))?;
    if subject.released.is_some() {
        return Err(RequestError::AlreadyReleased);
    }
    if store::requests::release_pending(tx, transcript, now).await? {
        return Err(RequestError::ReleasePending);
    }
    // After a re-share the holders and k are those of its sharing, not the manifest's.
    let shared = store::reshares::Shared::Transcript(transcript);
    let holders = store::reshares::current_holders(tx, shared)
        .await?
        .into_iter()
        .map(|(_, holder)| holder)
        .collect();
    let k = match store::reshares::current_k(tx, shared).await? {
        Some(k) => u8::try_from(k).map_err(|_| RequestError::CorruptThreshold)?,
        None => crate::ops::release::transcript_manifest(&subject.manifest)
            .map_err(RequestError::CorruptManifest)?
            .split
            .threshold
            .k(),
    };
    Ok((k, holders))
}

/// A signed vote with, for an approval, the share re-sealed to the request's node.
#[derive(Debug)]
pub(crate) struct Ballot<'a> {
    pub request: RequestId,
    pub signed: &'a SignedStatement,
    pub resealed_share: Option<&'a [u8]>,
}

/// Counts `member`'s vote: signed by them (a current member who holds a share and did not
/// ask), bound to this request's exact digest, one per member. At k approvals the request is
/// quorate and its job queued; when k can no longer be reached it is rejected.
pub(crate) async fn vote(
    app: &App,
    member: Member<'_>,
    ballot: Ballot<'_>,
    now: i64,
) -> Result<RequestView, RequestError> {
    let vault = member.vault.to_string();
    let id = ballot.request.to_string();
    let mut tx = app.db.begin().await?;
    let locked = store::requests::lock(&mut tx, &vault, &id, member.fingerprint)
        .await?
        .ok_or(RequestError::NotFound)?;
    let holds_share = locked.voter_holds_share();
    let mut request = locked.request;
    if request.status == RequestStatus::Open && request.expires_at <= now {
        close(&mut tx, member.vault, &id, RequestStatus::Expired, now).await?;
        tx.commit().await?;
        return Err(RequestError::Expired);
    }
    if request.status != RequestStatus::Open {
        return Err(RequestError::Closed(request.status));
    }
    let roster = app.rosters.verified(&mut tx, member.vault).await?;
    let (verified, signer) = roster.verify_by_member::<Vote>(ballot.signed)?;
    let vote = verified.statement;
    check_vote_binding(&request, &vote, signer.fingerprint.to_hex(), member)?;
    if !holds_share {
        return Err(RequestError::NotAHolder);
    }
    let decision = decision(&vote.decision, ballot.resealed_share)?;
    let statement = ballot.signed.to_bytes();
    let stored = store::requests::NewVote {
        request: &id,
        voter: member.fingerprint,
        decision,
        statement: &statement,
        resealed_share: ballot.resealed_share,
        created_at: now,
    };
    if !store::requests::insert_vote(&mut tx, &stored).await? {
        return Err(RequestError::AlreadyVoted);
    }
    let action = match decision {
        VoteDecision::Approve => "vote.approve",
        VoteDecision::Deny => "vote.deny",
    };
    tx.audit(
        member.vault,
        now,
        Event::by(member.fingerprint, action, &id, &statement),
    );
    let votes = store::requests::votes(&mut tx, &id).await?;
    let count = |decision| votes.iter().filter(|v| v.decision == decision).count();
    let (approvals, denials) = (count(VoteDecision::Approve), count(VoteDecision::Deny));
    let (threshold, eligible) = (request.threshold_k as usize, request.eligible as usize);
    if approvals >= threshold {
        close(&mut tx, member.vault, &id, RequestStatus::Quorate, now).await?;
        store::jobs::queue(&mut tx, &id, &vault, &request.node_id, now).await?;
        tx.audit(member.vault, now, Event::server("job.queued", &id));
        tx.ring_job_bell();
        request.status = RequestStatus::Quorate;
    } else if eligible.saturating_sub(denials) < threshold {
        close(&mut tx, member.vault, &id, RequestStatus::Rejected, now).await?;
        request.status = RequestStatus::Rejected;
    }
    tx.commit().await?;
    tracing::info!(request = %id, %decision, status = %request.status, "vote counted");
    Ok(request.view(votes))
}

/// The vote must be signed by the member sending it, name them, this request and its digest,
/// and not come from the requester.
fn check_vote_binding(
    request: &RequestRow,
    vote: &Vote,
    signer: String,
    member: Member<'_>,
) -> Result<(), RequestError> {
    if signer != member.fingerprint || vote.voter.to_hex() != member.fingerprint {
        return Err(RequestError::VoteMismatch("voter"));
    }
    if vote.request_id.to_string() != request.id {
        return Err(RequestError::VoteMismatch("request ID"));
    }
    if vote.request_digest.as_slice() != request.digest.as_slice() {
        return Err(RequestError::VoteMismatch("request digest"));
    }
    if request.requester == member.fingerprint {
        return Err(RequestError::OwnRequest);
    }
    Ok(())
}

/// The stored decision: an approval carries the re-sealed share its signed vote names, a
/// denial carries none.
fn decision(decision: &Decision, resealed: Option<&[u8]>) -> Result<VoteDecision, RequestError> {
    match (decision, resealed) {
        (
            Decision::Approve {
                resealed_share_sha256,
            },
            Some(resealed),
        ) => {
            if resealed.is_empty() || resealed.len() > MAX_RESEALED_SHARE {
                return Err(RequestError::InvalidShare(format!(
                    "a re-sealed share must be 1 to {MAX_RESEALED_SHARE} bytes"
                )));
            }
            if resealed_digest(resealed) != *resealed_share_sha256 {
                return Err(RequestError::InvalidShare(
                    "the re-sealed share is not the one the signed vote names".into(),
                ));
            }
            Ok(VoteDecision::Approve)
        }
        (Decision::Approve { .. }, None) => Err(RequestError::InvalidShare(
            "an approval must carry the share re-sealed to the node".into(),
        )),
        (Decision::Deny, None) => Ok(VoteDecision::Deny),
        (Decision::Deny, Some(_)) => Err(RequestError::InvalidShare(
            "a denial carries no share".into(),
        )),
    }
}

/// Closes an open request as `quorate`, `rejected` or `expired`, with its audit entry (no
/// change when it was closed meanwhile).
async fn close(
    tx: &mut Tx,
    vault: VaultId,
    request: &str,
    status: RequestStatus,
    now: i64,
) -> Result<(), sqlx::Error> {
    if store::requests::close(tx, request, status, now).await? {
        let action = match status {
            RequestStatus::Quorate => "request.quorate",
            RequestStatus::Rejected => "request.rejected",
            RequestStatus::Open | RequestStatus::Expired => "request.expired",
        };
        tx.audit(vault, now, Event::server(action, request));
    }
    Ok(())
}

/// Closes open requests past their expiry; returns how many.
pub(crate) async fn expire(app: &App, now: i64) -> Result<usize, RequestError> {
    let expired = store::requests::past_expiry(&mut *app.db.connection().await?, now).await?;
    for (request, vault) in &expired {
        let vault: VaultId = vault
            .parse()
            .map_err(|error| RequestError::Store(sqlx::Error::Decode(Box::new(error))))?;
        let mut tx = app.db.begin().await?;
        close(&mut tx, vault, request, RequestStatus::Expired, now).await?;
        tx.commit().await?;
    }
    Ok(expired.len())
}
