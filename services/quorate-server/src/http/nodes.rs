//! Routes for transcription nodes (enrolment, listing, approval) and the vault's signed
//! policy.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use quorate_api::Base64;
use quorate_api::{NodeApprovalUpload, NodeEnrolment, NodeView, PolicyStatement};

use super::decode_statement;
use crate::http::paths::{ApiPath, NodePath, VaultPath};
use crate::{
    App,
    error::{ApiError, ApiJson},
    http::auth::{Authenticated, Caller},
    http::members::{check_name, parse_keys},
    now,
    ops::nodes,
    store,
};

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
    let enrolled = nodes::enrol(&app, &body.code, &public, name, now()).await?;
    Ok((StatusCode::CREATED, axum::Json(enrolled)))
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
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<Vec<NodeView>>, ApiError> {
    who.member_of(vault)?;
    let mut connection = app.db.connection().await?;
    Ok(axum::Json(
        store::nodes::list(&mut connection, &vault.to_string()).await?,
    ))
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
    ApiPath(NodePath { vault, node }): ApiPath<NodePath>,
) -> Result<axum::Json<NodeView>, ApiError> {
    if vault != who.vault_id {
        return Err(ApiError::not_found());
    }
    let mut connection = app.db.connection().await?;
    store::nodes::get(&mut connection, &vault.to_string(), &node.to_string())
        .await?
        .map(axum::Json)
        .ok_or_else(ApiError::not_found)
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
    ApiPath(NodePath { vault, node }): ApiPath<NodePath>,
    ApiJson(body): ApiJson<NodeApprovalUpload>,
) -> Result<axum::Json<NodeView>, ApiError> {
    who.admin_of(vault)?;
    let signed = decode_statement(&body.approval)?;
    let node = node.to_string();
    let view = nodes::approve(&app, who.member(), &node, &signed, now()).await?;
    Ok(axum::Json(view))
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
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
) -> Result<axum::Json<PolicyStatement>, ApiError> {
    if vault != who.vault_id {
        return Err(ApiError::not_found());
    }
    let mut connection = app.db.connection().await?;
    let statement = store::policies::newest(&mut connection, &vault.to_string())
        .await?
        .ok_or_else(|| ApiError::Client {
            status: StatusCode::NOT_FOUND,
            code: "no_policy",
            message: "this vault has no policy yet: an admin must set the threshold first".into(),
        })?;
    Ok(axum::Json(PolicyStatement {
        statement: Base64::from(statement),
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
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<PolicyStatement>,
) -> Result<axum::Json<PolicyStatement>, ApiError> {
    who.admin_of(vault)?;
    let signed = decode_statement(&body.statement)?;
    nodes::set_policy(&app, who.member(), &signed, now()).await?;
    Ok(axum::Json(body))
}
