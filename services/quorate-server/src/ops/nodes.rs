//! Transcription nodes (enrolment with a node invite, admin-signed approval and revocation)
//! and the vault's signed policy. The server verifies each statement against the roster it
//! holds before storing it; devices verify again against the roster they pinned.

use axum::http::StatusCode;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use quorate_api::{CodePurpose, NodeEnrolled, NodeStatus, NodeView};
use quorate_crypto::{
    NodeId, PublicIdentity,
    statement::{NodeApproval, SignedStatement, VaultPolicy},
};

use crate::{
    App,
    error::Refusal,
    ops::{
        members::{MemberError, finish_enrolment, redeem_invite},
        requests::Member,
        roster::RosterError,
    },
    store::{self, Event},
};

/// Why a node enrolment, approval or policy was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error("{0}")]
    InvalidStatement(#[from] quorate_crypto::Error),
    #[error("the approval's {0} differs from this node's")]
    Mismatch(&'static str),
    #[error("these keys are already enrolled in this vault: a node generates keys of its own")]
    AlreadyEnrolled,
    #[error("no such resource")]
    NotFound,
    #[error("this node was revoked; revocation is final: enrol the node again with new keys")]
    Revoked,
    #[error("a newer approval of this node is stored: sign a new one")]
    StaleApproval,
    #[error("the policy's sequence must be {0}: fetch the newest policy and sign again")]
    PolicyChanged(i64),
    #[error("a stored node or approval does not parse: {0}")]
    Corrupt(quorate_crypto::Error),
    #[error(transparent)]
    Enrolment(#[from] MemberError),
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl Refusal for NodeError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use NodeError::*;
        Some(match self {
            InvalidStatement(_) | Mismatch(_) => (StatusCode::BAD_REQUEST, "invalid_statement"),
            AlreadyEnrolled => (StatusCode::CONFLICT, "already_enrolled"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Revoked => (StatusCode::CONFLICT, "node_revoked"),
            StaleApproval => (StatusCode::CONFLICT, "stale_approval"),
            PolicyChanged(_) => (StatusCode::CONFLICT, "policy_changed"),
            Enrolment(error) => return error.refusal(),
            Corrupt(_) | Roster(_) | Store(_) => return None,
        })
    }
}

/// A node redeems a node invite with the keys it generated; it stays pending until an admin
/// signs its approval. Keys a member of the vault holds are refused.
pub(crate) async fn enrol(
    app: &App,
    code: &str,
    public: &PublicIdentity,
    name: &str,
    now: i64,
) -> Result<NodeEnrolled, NodeError> {
    let mut tx = app.db.begin().await?;
    let vault_id = redeem_invite(&mut tx, code, CodePurpose::Node, now).await?;
    let vault = vault_id.to_string();
    let node_id = NodeId::random().to_string();
    let node = store::nodes::NewNode {
        vault: &vault,
        id: &node_id,
        public,
        name,
        now,
    };
    if !store::nodes::insert(&mut tx, &node).await? {
        return Err(NodeError::AlreadyEnrolled);
    }
    let event = ("node.enrolled", node_id.as_str());
    let enrolled = finish_enrolment(tx, vault_id, public, event, now).await?;
    tracing::info!(vault = %vault, node = %node_id, "node enrolled, pending approval");
    Ok(NodeEnrolled {
        vault_id: enrolled.vault_id,
        node_id,
        fingerprint: enrolled.fingerprint,
        roster_genesis: enrolled.roster_genesis,
        genesis_entry: enrolled.genesis_entry,
    })
}

/// Stores `admin`'s signed approval (or revocation) of `node`: signed by a current admin,
/// for this node's enrolled keys, not older than the stored one, current unless it revokes;
/// a revoked node stays revoked.
pub(crate) async fn approve(
    app: &App,
    admin: Member<'_>,
    node: &str,
    signed: &SignedStatement,
    now: i64,
) -> Result<NodeView, NodeError> {
    let vault = admin.vault.to_string();
    let mut tx = app.db.begin().await?;
    let roster = app.rosters.verified(&mut tx, admin.vault).await?;
    let (verified, _) = roster.verify_by_admin::<NodeApproval>(signed)?;
    let approval = verified.statement;
    if approval.node_id.to_string() != node {
        return Err(NodeError::Mismatch("node ID"));
    }
    let enrolment = store::nodes::enrolment(&mut tx, &vault, node)
        .await?
        .ok_or(NodeError::NotFound)?;
    let keys = PublicIdentity::from_text(
        &enrolment.recipient,
        &URL_SAFE_NO_PAD.encode(&enrolment.verifying_key),
    )
    .map_err(NodeError::Corrupt)?;
    if approval.node != keys {
        return Err(NodeError::Mismatch("keys"));
    }
    if enrolment.status == NodeStatus::Revoked {
        return Err(NodeError::Revoked);
    }
    if let Some(previous) = &enrolment.approval {
        let previous = SignedStatement::from_bytes(previous)
            .and_then(|signed| signed.verify::<NodeApproval>())
            .map_err(NodeError::Corrupt)?;
        if approval.issued_at < previous.statement.issued_at {
            return Err(NodeError::StaleApproval);
        }
    }
    if !approval.revoked {
        approval.check_active(now)?;
    }
    let (status, action) = if approval.revoked {
        (NodeStatus::Revoked, "node.revoked")
    } else {
        (NodeStatus::Approved, "node.approved")
    };
    let statement = signed.to_bytes();
    let stored = store::nodes::Approval {
        status,
        statement: &statement,
        expires_at: approval.expires_at,
        model_sha256: &approval.model_sha256,
    };
    let fingerprint = keys.fingerprint().to_hex();
    store::nodes::set_approval(&mut tx, &vault, node, &fingerprint, &stored).await?;
    tx.audit(
        admin.vault,
        now,
        Event::by(admin.fingerprint, action, node, &statement),
    );
    let view = store::nodes::get(&mut tx, &vault, node)
        .await?
        .ok_or(NodeError::NotFound)?;
    tx.commit().await?;
    tracing::info!(vault = %vault, node = %node, %status, "node approval stored");
    Ok(view)
}

/// Stores `admin`'s signed policy: signed by a current admin, with the next sequence number.
pub(crate) async fn set_policy(
    app: &App,
    admin: Member<'_>,
    signed: &SignedStatement,
    now: i64,
) -> Result<(), NodeError> {
    let vault = admin.vault.to_string();
    let mut tx = app.db.begin().await?;
    let roster = app.rosters.verified(&mut tx, admin.vault).await?;
    let (verified, _) = roster.verify_by_admin::<VaultPolicy>(signed)?;
    let policy = verified.statement;
    let next = store::policies::next_sequence(&mut tx, &vault).await?;
    if policy.sequence != next as u64 {
        return Err(NodeError::PolicyChanged(next));
    }
    let statement = signed.to_bytes();
    let threshold = policy.min_threshold;
    if !store::policies::insert(&mut tx, &vault, next, threshold, &statement, now).await? {
        return Err(NodeError::PolicyChanged(next));
    }
    let subject = format!("min_threshold={threshold}");
    tx.audit(
        admin.vault,
        now,
        Event::by(admin.fingerprint, "policy.set", &subject, &statement),
    );
    tx.commit().await?;
    Ok(())
}
