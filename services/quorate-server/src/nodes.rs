//! Transcription nodes (enrolment with a node invite, admin-signed approval and revocation)
//! and the vault's signed policy. The server verifies each statement against the roster it
//! holds before storing it; devices verify again against the roster they pinned.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use quorate_api::{
    NodeApprovalUpload, NodeEnrolled, NodeEnrolment, NodeView, PolicyStatement, PublicKeys,
};
use quorate_crypto::{
    NodeId, PublicIdentity,
    statement::{NodeApproval, SignedStatement, VaultPolicy},
};
use sqlx::{Row, any::AnyRow};

use crate::paths::{NodePath, VaultPath};
use crate::{
    App,
    auth::{Authenticated, Caller},
    enrol::load_roster,
    error::{ApiError, ApiJson},
    members::{check_name, genesis, parse_keys, redeem_invite},
    now,
};

/// Decodes a base64 signed statement from a request body, or 400 `invalid_statement`.
pub(crate) fn decode_statement(text: &str, field: &str) -> Result<SignedStatement, ApiError> {
    let bytes = STANDARD.decode(text).map_err(|_| {
        ApiError::bad_request("invalid_statement", format!("{field} must be base64"))
    })?;
    SignedStatement::from_bytes(&bytes).map_err(ApiError::invalid_statement)
}

/// A node redeems a node invite with the keys it generated; it stays pending until an admin
/// signs its approval.
#[utoipa::path(
    post, path = "/enrol/node", tag = "nodes", operation_id = "enrol_node",
    request_body = quorate_api::NodeEnrolment,
    responses(
        (status = 201, description = "Enrolled, pending approval; pin the genesis and give the admin the node ID", body = quorate_api::NodeEnrolled),
        (status = 409, description = "These keys are already enrolled in the vault", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn enrol_node(
    State(app): State<App>,
    ApiJson(body): ApiJson<NodeEnrolment>,
) -> Result<impl IntoResponse, ApiError> {
    let public = parse_keys(&body.keys)?;
    let name = check_name(&body.name)?;
    let now = now();
    let mut transaction = app.db.pool().begin().await?;
    let vault_id = redeem_invite(&mut transaction, &body.code, "node", now).await?;
    let vault = vault_id.to_string();
    let node_id = NodeId::random();
    let fingerprint = public.fingerprint().to_hex();
    let known_member =
        sqlx::query("SELECT 1 FROM members WHERE vault_id = $1 AND fingerprint = $2")
            .bind(&vault)
            .bind(&fingerprint)
            .fetch_optional(&mut *transaction)
            .await?;
    let inserted = if known_member.is_some() {
        0
    } else {
        sqlx::query(
            "INSERT INTO nodes (vault_id, id, fingerprint, verifying_key, recipient, name, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) ON CONFLICT DO NOTHING",
        )
        .bind(&vault)
        .bind(node_id.to_string())
        .bind(&fingerprint)
        .bind(public.verifying_key.as_bytes().to_vec())
        .bind(public.recipient.to_string())
        .bind(name)
        .bind(now)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
    };
    if inserted != 1 {
        return Err(ApiError::conflict(
            "already_enrolled",
            "these keys are already enrolled in this vault: a node generates keys of its own",
        ));
    }
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        vault_id,
        now,
        crate::audit::Event {
            actor: &fingerprint,
            action: "node.enrolled",
            subject: &node_id.to_string(),
            statement: None,
        },
    )
    .await?;
    let genesis = genesis(&mut transaction, &vault).await?;
    transaction.commit().await?;
    tracing::info!(vault = %vault, node = %node_id, "node enrolled, pending approval");
    Ok((
        StatusCode::CREATED,
        axum::Json(NodeEnrolled {
            vault_id: vault,
            node_id: node_id.to_string(),
            fingerprint,
            roster_genesis: genesis.digest,
            genesis_entry: genesis.entry,
        }),
    ))
}

const NODE_COLUMNS: &str = "id, name, fingerprint, verifying_key, recipient, status, approval, approval_expires_at, model_sha256";

fn node_view(row: &AnyRow) -> Result<NodeView, sqlx::Error> {
    Ok(NodeView {
        node_id: row.try_get("id")?,
        name: row.try_get("name")?,
        fingerprint: row.try_get("fingerprint")?,
        keys: PublicKeys {
            recipient: row.try_get("recipient")?,
            verifying_key: URL_SAFE_NO_PAD.encode(row.try_get::<Vec<u8>, _>("verifying_key")?),
        },
        status: row.try_get("status")?,
        approval: row
            .try_get::<Option<Vec<u8>>, _>("approval")?
            .map(|bytes| STANDARD.encode(bytes)),
        approval_expires_at: row.try_get("approval_expires_at")?,
        model_sha256: row
            .try_get::<Option<Vec<u8>>, _>("model_sha256")?
            .map(hex::encode),
    })
}

/// The vault's transcription nodes, with their signed approvals.
#[utoipa::path(
    get, path = "/vaults/{vault}/nodes", tag = "nodes", security(("session" = [])), operation_id = "list_nodes",
    params(VaultPath),
    responses(
        (status = 200, description = "Nodes, oldest first", body = Vec<quorate_api::NodeView>),
    )
)]
pub(crate) async fn list_nodes(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
) -> Result<axum::Json<Vec<NodeView>>, ApiError> {
    who.member_of(&vault)?;
    let sql =
        format!("SELECT {NODE_COLUMNS} FROM nodes WHERE vault_id = $1 ORDER BY created_at, id");
    Ok(axum::Json(app.db.vault_rows(sql, &vault, node_view).await?))
}

/// One node: for the vault's members and its nodes. A node reads its own status, and the
/// approval of the node that made a transcript it is asked to release (approvals are signed
/// statements that every device checks; they are no secret).
#[utoipa::path(
    get, path = "/vaults/{vault}/nodes/{node}", tag = "nodes", security(("session" = [])), operation_id = "get_node",
    params(NodePath),
    responses(
        (status = 200, description = "The node", body = quorate_api::NodeView),
    )
)]
pub(crate) async fn get_node(
    State(app): State<App>,
    who: Caller,
    Path(NodePath { vault, node }): Path<NodePath>,
) -> Result<axum::Json<NodeView>, ApiError> {
    if vault != who.vault_id.to_string() {
        return Err(ApiError::not_found());
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {NODE_COLUMNS} FROM nodes WHERE vault_id = $1 AND id = $2"
    )))
    .bind(&vault)
    .bind(node.to_ascii_lowercase())
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(node_view(&row)?))
}

/// Stores an admin-signed approval or revocation of a node.
///
/// The statement must name this node and the keys it enrolled with, and be newer than the
/// approval it replaces. An approval must not have expired. Revocation is final: the node's
/// sessions end at once, and a revoked node must enrol again with new keys.
#[utoipa::path(
    post, path = "/vaults/{vault}/nodes/{node}/approval", tag = "nodes", security(("session" = [])), operation_id = "approve_node",
    params(NodePath),
    request_body = quorate_api::NodeApprovalUpload,
    responses(
        (status = 200, description = "Stored; the node is approved or revoked", body = quorate_api::NodeView),
        (status = 400, description = "The statement fails a check (signer, node, keys, expiry)", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins approve nodes", body = quorate_api::ErrorBody),
        (status = 409, description = "The node is revoked, or a newer approval is stored", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn approve_node(
    State(app): State<App>,
    who: Authenticated,
    Path(NodePath { vault, node }): Path<NodePath>,
    ApiJson(body): ApiJson<NodeApprovalUpload>,
) -> Result<axum::Json<NodeView>, ApiError> {
    who.admin_of(&vault)?;
    let signed = decode_statement(&body.approval, "approval")?;
    let node = node.to_ascii_lowercase();
    let now = now();
    let mut transaction = app.db.pool().begin().await?;
    let roster = load_roster(&mut transaction, who.vault_id).await?;
    let (verified, _) = roster
        .verify_by_admin::<NodeApproval>(&signed)
        .map_err(ApiError::invalid_statement)?;
    let approval = verified.statement;
    let mismatch = |what: &str| {
        ApiError::bad_request(
            "invalid_statement",
            format!("the approval's {what} differs from this node's"),
        )
    };
    if approval.node_id.to_string() != node {
        return Err(mismatch("node ID"));
    }
    let row = sqlx::query(
        "SELECT verifying_key, recipient, status, approval FROM nodes WHERE vault_id = $1 AND id = $2",
    )
    .bind(&vault)
    .bind(&node)
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or_else(ApiError::not_found)?;
    let enrolled = PublicIdentity::from_text(
        &row.try_get::<String, _>("recipient")?,
        &URL_SAFE_NO_PAD.encode(row.try_get::<Vec<u8>, _>("verifying_key")?),
    )
    .map_err(|error| ApiError::Internal(Box::new(error)))?;
    if approval.node != enrolled {
        return Err(mismatch("keys"));
    }
    if row.try_get::<String, _>("status")? == "revoked" {
        return Err(ApiError::conflict(
            "node_revoked",
            "this node was revoked; revocation is final: enrol the node again with new keys",
        ));
    }
    if let Some(previous) = row.try_get::<Option<Vec<u8>>, _>("approval")? {
        let previous = SignedStatement::from_bytes(&previous)
            .and_then(|signed| signed.verify::<NodeApproval>())
            .map_err(|error| ApiError::Internal(Box::new(error)))?;
        if approval.issued_at < previous.statement.issued_at {
            return Err(ApiError::conflict(
                "stale_approval",
                "a newer approval of this node is stored: sign a new one",
            ));
        }
    }
    if !approval.revoked {
        approval
            .check_active(now)
            .map_err(ApiError::invalid_statement)?;
    }
    let (status, action) = if approval.revoked {
        ("revoked", "node.revoked")
    } else {
        ("approved", "node.approved")
    };
    sqlx::query(
        "UPDATE nodes SET status = $1, approval = $2, approval_expires_at = $3, model_sha256 = $4
         WHERE vault_id = $5 AND id = $6",
    )
    .bind(status)
    .bind(signed.to_bytes())
    .bind(approval.expires_at)
    .bind(approval.model_sha256.to_vec())
    .bind(&vault)
    .bind(&node)
    .execute(&mut *transaction)
    .await?;
    if approval.revoked {
        sqlx::query(
            "DELETE FROM sessions WHERE vault_id = $1 AND party = 'node' AND fingerprint = $2",
        )
        .bind(&vault)
        .bind(enrolled.fingerprint().to_hex())
        .execute(&mut *transaction)
        .await?;
    }
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        who.vault_id,
        now,
        crate::audit::Event {
            actor: &who.fingerprint,
            action,
            subject: &node,
            statement: Some(&signed.to_bytes()),
        },
    )
    .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {NODE_COLUMNS} FROM nodes WHERE vault_id = $1 AND id = $2"
    )))
    .bind(&vault)
    .bind(&node)
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    tracing::info!(vault = %vault, node = %node, status, "node approval stored");
    Ok(axum::Json(node_view(&row)?))
}

/// The vault's newest signed policy (the least threshold uploads must use).
#[utoipa::path(
    get, path = "/vaults/{vault}/policy", tag = "members", security(("session" = [])), operation_id = "get_policy",
    params(VaultPath),
    responses(
        (status = 200, description = "The newest signed policy; verify it against the roster", body = quorate_api::PolicyStatement),
    )
)]
pub(crate) async fn get_policy(
    State(app): State<App>,
    who: Caller,
    Path(VaultPath { vault }): Path<VaultPath>,
) -> Result<axum::Json<PolicyStatement>, ApiError> {
    if vault != who.vault_id.to_string() {
        return Err(ApiError::not_found());
    }
    let row = sqlx::query(
        "SELECT statement FROM vault_policies WHERE vault_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&vault)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(|| ApiError::Client {
        status: StatusCode::NOT_FOUND,
        code: "no_policy",
        message: "this vault has no policy yet: an admin must set the threshold first".into(),
    })?;
    Ok(axum::Json(PolicyStatement {
        statement: STANDARD.encode(row.try_get::<Vec<u8>, _>("statement")?),
    }))
}

/// Sets the vault's policy with an admin-signed statement whose sequence follows the newest.
#[utoipa::path(
    put, path = "/vaults/{vault}/policy", tag = "members", security(("session" = [])), operation_id = "set_policy",
    params(VaultPath),
    request_body = quorate_api::PolicyStatement,
    responses(
        (status = 200, description = "Stored", body = quorate_api::PolicyStatement),
        (status = 400, description = "Not signed by an admin of this vault, or malformed", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins set the policy", body = quorate_api::ErrorBody),
        (status = 409, description = "The sequence does not follow the newest policy: fetch it and sign again", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn set_policy(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiJson(body): ApiJson<PolicyStatement>,
) -> Result<axum::Json<PolicyStatement>, ApiError> {
    who.admin_of(&vault)?;
    let signed = decode_statement(&body.statement, "statement")?;
    let now = now();
    let mut transaction = app.db.pool().begin().await?;
    let roster = load_roster(&mut transaction, who.vault_id).await?;
    let (verified, _) = roster
        .verify_by_admin::<VaultPolicy>(&signed)
        .map_err(ApiError::invalid_statement)?;
    let policy = verified.statement;
    let next: i64 = sqlx::query(
        "SELECT COALESCE(MAX(sequence) + 1, 0) AS next FROM vault_policies WHERE vault_id = $1",
    )
    .bind(&vault)
    .fetch_one(&mut *transaction)
    .await?
    .try_get("next")?;
    let stale = || {
        ApiError::conflict(
            "policy_changed",
            format!("the policy's sequence must be {next}: fetch the newest policy and sign again"),
        )
    };
    if policy.sequence != next as u64 {
        return Err(stale());
    }
    let stored = sqlx::query(
        "INSERT INTO vault_policies (vault_id, sequence, min_threshold, statement, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(&vault)
    .bind(next)
    .bind(i32::from(policy.min_threshold))
    .bind(signed.to_bytes())
    .bind(now)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if stored != 1 {
        return Err(stale());
    }
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        who.vault_id,
        now,
        crate::audit::Event {
            actor: &who.fingerprint,
            action: "policy.set",
            subject: &format!("min_threshold={}", policy.min_threshold),
            statement: Some(&signed.to_bytes()),
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(axum::Json(body))
}
