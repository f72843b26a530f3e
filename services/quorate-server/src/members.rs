//! Invites, member enrolment (pending until an admin signs), and roster changes.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::{
    CreatedVault, Enrolled, Invite, InviteRequest, MemberEnrolment, MemberView, NewVault,
    PublicKeys, RosterAppend, RosterAppended,
};
use quorate_crypto::{
    PublicIdentity, VaultId,
    statement::{Role, RosterChange, RosterEntry, SignedStatement},
};
use serde::Deserialize;
use sqlx::Row;

use crate::paths::VaultPath;
use crate::{
    App,
    auth::Authenticated,
    bootstrap::{code_hash, new_code},
    enrol::{load_roster, store_roster_entry},
    error::{ApiError, ApiJson, ApiQuery},
    now,
};

const DEFAULT_INVITE_TTL: i64 = 86_400;
const MAX_INVITE_TTL: i64 = 7 * 86_400;

/// A display name as people type it: trimmed, 1 to 200 bytes, no control characters.
pub(crate) fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 200 printable characters",
        ));
    }
    Ok(name)
}

/// Creates a one-time, expiring invite for a member or a node (admins).
#[utoipa::path(
    post, path = "/vaults/{vault}/invites", tag = "members", security(("session" = [])), operation_id = "create_invite",
    params(VaultPath),
    request_body = quorate_api::InviteRequest,
    responses(
        (status = 201, description = "A one-time invite code", body = quorate_api::Invite),
        (status = 400, description = "Unknown purpose or lifetime out of range", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins invite", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn create_invite(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiJson(body): ApiJson<InviteRequest>,
) -> Result<impl IntoResponse, ApiError> {
    who.admin_of(&vault)?;
    if !matches!(body.purpose.as_str(), "member" | "node") {
        return Err(ApiError::bad_request(
            "invalid_purpose",
            "purpose must be \"member\" or \"node\"",
        ));
    }
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_INVITE_TTL);
    if !(60..=MAX_INVITE_TTL).contains(&ttl) {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            "ttl_seconds must be between 60 and 604800",
        ));
    }
    let code = new_code();
    let now = now();
    let mut transaction = app.db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO enrolment_codes (code_hash, vault_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(code_hash(&code))
    .bind(&vault)
    .bind(&body.purpose)
    .bind(now)
    .bind(now + ttl)
    .execute(&mut *transaction)
    .await?;
    let action = format!("invite.created.{}", body.purpose);
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        who.vault_id,
        now,
        crate::audit::Event {
            actor: &who.fingerprint,
            action: &action,
            subject: "",
            statement: None,
        },
    )
    .await?;
    transaction.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Invite {
            code: code.to_string(),
            expires_at: now + ttl,
        }),
    ))
}

/// Redeems an invite with the member's public keys.
///
/// The member stays pending until an admin signs their roster entry after comparing
/// fingerprints.
#[utoipa::path(
    post, path = "/enrol/member", tag = "enrolment", operation_id = "enrol_member",
    request_body = quorate_api::MemberEnrolment,
    responses(
        (status = 201, description = "Enrolled, pending until an admin signs the roster entry; pin the genesis", body = quorate_api::Enrolled),
        (status = 400, description = "Unknown, used or expired invite, or invalid keys", body = quorate_api::ErrorBody),
        (status = 409, description = "These keys are already enrolled in the vault", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn enrol_member(
    State(app): State<App>,
    ApiJson(body): ApiJson<MemberEnrolment>,
) -> Result<impl IntoResponse, ApiError> {
    let public = parse_keys(&body.keys)?;
    let name = check_name(&body.name)?;
    let now = now();
    let mut transaction = app.db.pool().begin().await?;
    let vault_id = redeem_invite(&mut transaction, &body.code, "member", now).await?;
    let vault = vault_id.to_string();
    let fingerprint = public.fingerprint().to_hex();
    let inserted = sqlx::query(
        "INSERT INTO members (vault_id, fingerprint, verifying_key, recipient, name, role, status, created_at)
         VALUES ($1, $2, $3, $4, $5, 'member', 'pending', $6) ON CONFLICT DO NOTHING",
    )
    .bind(&vault)
    .bind(&fingerprint)
    .bind(public.verifying_key.as_bytes().to_vec())
    .bind(public.recipient.to_string())
    .bind(name)
    .bind(now)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if inserted != 1 {
        return Err(ApiError::conflict(
            "already_enrolled",
            "these keys are already enrolled in this vault",
        ));
    }
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        vault_id,
        now,
        crate::audit::Event {
            actor: &fingerprint,
            action: "member.enrolled",
            subject: &fingerprint,
            statement: None,
        },
    )
    .await?;
    let genesis = genesis(&mut transaction, &vault).await?;
    transaction.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Enrolled {
            vault_id: vault,
            roster_genesis: genesis.digest,
            genesis_entry: genesis.entry,
            fingerprint,
        }),
    ))
}

/// Public keys as a client sends them, or 400 `invalid_keys`.
pub(crate) fn parse_keys(keys: &PublicKeys) -> Result<PublicIdentity, ApiError> {
    PublicIdentity::from_text(&keys.recipient, &keys.verifying_key)
        .map_err(|error| ApiError::bad_request("invalid_keys", error.to_string()))
}

/// Marks an unused, unexpired invite for `purpose` used; returns its vault. Inside the
/// enrolment's transaction, so a failed enrolment leaves the invite usable.
pub(crate) async fn redeem_invite(
    connection: &mut sqlx::AnyConnection,
    code: &str,
    purpose: &str,
    now: i64,
) -> Result<VaultId, ApiError> {
    let vault: String = sqlx::query(
        "UPDATE enrolment_codes SET used_at = $1
         WHERE code_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
         RETURNING vault_id",
    )
    .bind(now)
    .bind(code_hash(code))
    .bind(purpose)
    .fetch_optional(&mut *connection)
    .await?
    .ok_or_else(|| {
        ApiError::bad_request(
            "invalid_code",
            format!(
                "the {purpose} invite code is unknown, used or expired: ask an admin for a new one"
            ),
        )
    })?
    .try_get("vault_id")?;
    vault
        .parse()
        .map_err(|error: quorate_crypto::Error| ApiError::Internal(Box::new(error)))
}

/// Hex digest of the vault's genesis roster entry, which enrolling devices pin.
pub(crate) async fn genesis(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
) -> Result<Genesis, ApiError> {
    let row = sqlx::query(
        "SELECT digest, statement FROM roster_entries WHERE vault_id = $1 AND sequence = 0",
    )
    .bind(vault)
    .fetch_one(&mut *connection)
    .await?;
    Ok(Genesis {
        digest: hex::encode(row.try_get::<Vec<u8>, _>("digest")?),
        entry: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            row.try_get::<Vec<u8>, _>("statement")?,
        ),
    })
}

/// A vault's genesis roster entry, as an enrolment answer carries it.
pub(crate) struct Genesis {
    /// Hex digest, which the device pins.
    pub(crate) digest: String,
    /// The signed entry, base64.
    pub(crate) entry: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MemberFilter {
    /// Only members of this status: `pending`, `active` or `removed`.
    status: Option<String>,
}

/// Lists the vault's members, optionally of one status.
///
/// A view for convenience: the signed roster chain is the authority.
#[utoipa::path(
    get, path = "/vaults/{vault}/members", tag = "members", security(("session" = [])), operation_id = "list_members",
    params(VaultPath, MemberFilter),
    responses(
        (status = 200, description = "Members, oldest first", body = Vec<quorate_api::MemberView>),
    )
)]
pub(crate) async fn list_members(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiQuery(filter): ApiQuery<MemberFilter>,
) -> Result<axum::Json<Vec<MemberView>>, ApiError> {
    who.member_of(&vault)?;
    let rows = sqlx::query(
        "SELECT fingerprint, name, role, status, recipient, verifying_key FROM members
         WHERE vault_id = $1 AND ($2 = '' OR status = $2) ORDER BY created_at, fingerprint",
    )
    .bind(&vault)
    .bind(filter.status.unwrap_or_default())
    .fetch_all(app.db.pool())
    .await?;
    let members = rows
        .iter()
        .map(|row| {
            Ok(MemberView {
                fingerprint: row.try_get("fingerprint")?,
                name: row.try_get("name")?,
                role: row.try_get("role")?,
                status: row.try_get("status")?,
                keys: PublicKeys {
                    recipient: row.try_get("recipient")?,
                    verifying_key: base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(row.try_get::<Vec<u8>, _>("verifying_key")?),
                },
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(axum::Json(members))
}

/// Appends an admin-signed roster entry (add or remove).
///
/// The server replays the whole chain with the new entry (the same check every device
/// makes), then applies it to its member table. A removal ends the member's sessions.
#[utoipa::path(
    post, path = "/vaults/{vault}/roster", tag = "members", security(("session" = [])), operation_id = "append_roster",
    params(VaultPath),
    request_body = quorate_api::RosterAppend,
    responses(
        (status = 201, description = "The entry is appended to the chain", body = quorate_api::RosterAppended),
        (status = 400, description = "The entry fails verification against the chain", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins sign roster entries", body = quorate_api::ErrorBody),
        (status = 409, description = "The chain moved on: fetch the roster and sign again", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn append_roster(
    State(app): State<App>,
    who: Authenticated,
    Path(VaultPath { vault }): Path<VaultPath>,
    ApiJson(body): ApiJson<RosterAppend>,
) -> Result<impl IntoResponse, ApiError> {
    who.admin_of(&vault)?;
    let bytes = STANDARD
        .decode(&body.entry)
        .map_err(|_| ApiError::bad_request("invalid_statement", "entry must be base64"))?;
    let signed = SignedStatement::from_bytes(&bytes).map_err(ApiError::invalid_statement)?;
    let mut transaction = app.db.pool().begin().await?;
    let mut roster = load_roster(&mut transaction, who.vault_id).await?;
    let sequence = roster.len();
    roster.apply(&signed).map_err(ApiError::invalid_statement)?;
    let entry: RosterEntry = signed
        .verify::<RosterEntry>()
        .map_err(ApiError::invalid_statement)?
        .statement;
    let fingerprint = entry.member.fingerprint().to_hex();
    let now = now();

    match entry.change {
        RosterChange::Add => {
            // Only someone who enrolled with exactly these keys can be added.
            let updated = sqlx::query(
                "UPDATE members SET status = 'active', role = $1, name = $2
                 WHERE vault_id = $3 AND fingerprint = $4 AND status IN ('pending', 'removed')",
            )
            .bind(match entry.role {
                Role::Admin => "admin",
                Role::Member => "member",
            })
            .bind(&entry.name)
            .bind(&vault)
            .bind(&fingerprint)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(ApiError::bad_request(
                    "not_enrolled",
                    "nobody enrolled with those keys: the member must redeem an invite first",
                ));
            }
        }
        RosterChange::Remove => {
            sqlx::query(
                "UPDATE members SET status = 'removed' WHERE vault_id = $1 AND fingerprint = $2",
            )
            .bind(&vault)
            .bind(&fingerprint)
            .execute(&mut *transaction)
            .await?;
            sqlx::query("DELETE FROM sessions WHERE vault_id = $1 AND fingerprint = $2")
                .bind(&vault)
                .bind(&fingerprint)
                .execute(&mut *transaction)
                .await?;
        }
    }
    if !store_roster_entry(&mut transaction, &vault, sequence, &signed, now).await? {
        return Err(ApiError::conflict(
            "roster_changed",
            "the roster changed meanwhile: fetch it, verify it and sign again",
        ));
    }
    let action = match entry.change {
        RosterChange::Add => "roster.added",
        RosterChange::Remove => "roster.removed",
    };
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        who.vault_id,
        now,
        crate::audit::Event {
            actor: &who.fingerprint,
            action,
            subject: &fingerprint,
            statement: Some(&signed.to_bytes()),
        },
    )
    .await?;
    transaction.commit().await?;
    tracing::info!(vault = %vault, sequence, "roster entry appended");
    Ok((
        StatusCode::CREATED,
        axum::Json(RosterAppended {
            sequence: sequence as u64,
        }),
    ))
}

/// Creates another vault (admins of any vault).
///
/// The answer carries the one-time code for its first admin, who then enrols with a genesis
/// entry for the new vault.
#[utoipa::path(
    post, path = "/vaults", tag = "members", security(("session" = [])), operation_id = "create_vault",
    request_body = quorate_api::NewVault,
    responses(
        (status = 201, description = "The vault and its first-admin code", body = quorate_api::CreatedVault),
        (status = 400, description = "Empty or overlong name", body = quorate_api::ErrorBody),
        (status = 403, description = "Only admins create vaults", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn create_vault(
    State(app): State<App>,
    who: Authenticated,
    ApiJson(body): ApiJson<NewVault>,
) -> Result<impl IntoResponse, ApiError> {
    who.admin_of(&who.vault_id.to_string())?;
    let name = check_name(&body.name)?;
    let vault_id = quorate_crypto::VaultId::random();
    let now = now();
    let mut transaction = app.db.pool().begin().await?;
    crate::bootstrap::create_vault(
        &mut transaction,
        app.db.backend(),
        vault_id,
        name,
        now,
        &who.fingerprint,
    )
    .await?;
    let code = crate::bootstrap::issue_first_admin_code(
        &mut transaction,
        vault_id,
        now,
        app.config.enrolment_code_ttl,
    )
    .await?;
    transaction.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedVault {
            vault_id: vault_id.to_string(),
            first_admin_code: code.code.to_string(),
            expires_at: code.expires_at,
        }),
    ))
}
