//! Transcription nodes: `nodes`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use quorate_api::Base64;
use quorate_api::{NodeStatus, NodeView, PublicKeys};
use quorate_crypto::PublicIdentity;
use sqlx::AnyConnection;

/// A node's approval state.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ApprovalState {
    #[sqlx(try_from = "String")]
    pub status: NodeStatus,
    pub approval_expires_at: Option<i64>,
}

/// Node `node` of `vault`'s approval state, `None` when there is no such node.
pub(crate) async fn approval_state(
    connection: &mut AnyConnection,
    vault: &str,
    node: &str,
) -> Result<Option<ApprovalState>, sqlx::Error> {
    sqlx::query_as("SELECT status, approval_expires_at FROM nodes WHERE vault_id = $1 AND id = $2")
        .bind(vault)
        .bind(node)
        .fetch_optional(connection)
        .await
}

/// A node to store (pending until an admin approves it).
#[derive(Debug)]
pub(crate) struct NewNode<'a> {
    pub vault: &'a str,
    pub id: &'a str,
    pub public: &'a PublicIdentity,
    pub name: &'a str,
    pub now: i64,
}

/// Stores a pending node; `false` when its keys are a member's or another node's in the vault.
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    node: &NewNode<'_>,
) -> Result<bool, sqlx::Error> {
    let fingerprint = node.public.fingerprint().to_hex();
    let inserted = sqlx::query(
        "INSERT INTO nodes (vault_id, id, fingerprint, verifying_key, recipient, name, status, created_at)
         SELECT $1, $2, $3, $4, $5, $6, 'pending', $7
         WHERE NOT EXISTS (SELECT 1 FROM members WHERE vault_id = $1 AND fingerprint = $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(node.vault)
    .bind(node.id)
    .bind(&fingerprint)
    .bind(node.public.verifying_key.as_bytes().as_slice())
    .bind(node.public.recipient.to_string())
    .bind(node.name)
    .bind(node.now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

#[derive(Debug, sqlx::FromRow)]
struct NodeRow {
    id: String,
    name: String,
    fingerprint: String,
    verifying_key: Vec<u8>,
    recipient: String,
    #[sqlx(try_from = "String")]
    status: NodeStatus,
    approval: Option<Vec<u8>>,
    approval_expires_at: Option<i64>,
    model_sha256: Option<Vec<u8>>,
}

const NODE_COLUMNS: &str = "id, name, fingerprint, verifying_key, recipient, status, approval, \
     approval_expires_at, model_sha256";

impl From<NodeRow> for NodeView {
    fn from(row: NodeRow) -> Self {
        Self {
            node_id: row.id,
            name: row.name,
            fingerprint: row.fingerprint,
            keys: PublicKeys {
                recipient: row.recipient,
                verifying_key: URL_SAFE_NO_PAD.encode(row.verifying_key),
            },
            status: row.status,
            approval: row.approval.map(Base64::from),
            approval_expires_at: row.approval_expires_at,
            model_sha256: row.model_sha256.map(hex::encode),
        }
    }
}

/// `vault`'s nodes, oldest first.
pub(crate) async fn list(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<NodeView>, sqlx::Error> {
    let rows: Vec<NodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NODE_COLUMNS} FROM nodes WHERE vault_id = $1 ORDER BY created_at, id"
    )))
    .bind(vault)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(NodeView::from).collect())
}

/// Node `node` of `vault`, `None` when there is none.
pub(crate) async fn get(
    connection: &mut AnyConnection,
    vault: &str,
    node: &str,
) -> Result<Option<NodeView>, sqlx::Error> {
    let row: Option<NodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NODE_COLUMNS} FROM nodes WHERE vault_id = $1 AND id = $2"
    )))
    .bind(vault)
    .bind(node)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(NodeView::from))
}

/// What an approval is checked against: the node's enrolled keys, status and stored approval.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Enrolment {
    pub verifying_key: Vec<u8>,
    pub recipient: String,
    #[sqlx(try_from = "String")]
    pub status: NodeStatus,
    pub approval: Option<Vec<u8>>,
}

/// Node `node` of `vault` as enrolled, `None` when there is none.
pub(crate) async fn enrolment(
    connection: &mut AnyConnection,
    vault: &str,
    node: &str,
) -> Result<Option<Enrolment>, sqlx::Error> {
    sqlx::query_as(
        "SELECT verifying_key, recipient, status, approval FROM nodes WHERE vault_id = $1 AND id = $2",
    )
    .bind(vault)
    .bind(node)
    .fetch_optional(connection)
    .await
}

/// A node's new approval (or revocation).
#[derive(Debug)]
pub(crate) struct Approval<'a> {
    /// `Approved` or `Revoked`.
    pub status: NodeStatus,
    pub statement: &'a [u8],
    pub expires_at: i64,
    pub model_sha256: &'a [u8; 32],
}

/// Stores node `node`'s approval; a revocation also ends the node's sessions.
pub(crate) async fn set_approval(
    connection: &mut AnyConnection,
    vault: &str,
    node: &str,
    fingerprint: &str,
    approval: &Approval<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE nodes SET status = $1, approval = $2, approval_expires_at = $3, model_sha256 = $4
         WHERE vault_id = $5 AND id = $6",
    )
    .bind(approval.status.as_str())
    .bind(approval.statement)
    .bind(approval.expires_at)
    .bind(approval.model_sha256.as_slice())
    .bind(vault)
    .bind(node)
    .execute(&mut *connection)
    .await?;
    if approval.status == NodeStatus::Revoked {
        sqlx::query(
            "DELETE FROM sessions WHERE vault_id = $1 AND party = 'node' AND fingerprint = $2",
        )
        .bind(vault)
        .bind(fingerprint)
        .execute(connection)
        .await?;
    }
    Ok(())
}
