//! Enrolment of the first admin, and the roster chain.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::{Enrolled, FirstAdminEnrolment, RosterChain};
use quorate_crypto::{
    VaultId,
    roster::Roster,
    statement::{Role, SignedStatement},
};
use sqlx::Row;

use crate::paths::VaultPath;
use crate::{App, auth::Caller, bootstrap::code_hash, error::ApiError, error::ApiJson, now};

/// Redeems the bootstrap code with the first admin's self-signed genesis roster entry.
///
/// In one transaction: the code is marked used, the genesis entry stored, the admin made an
/// active member.
#[utoipa::path(
    post, path = "/enrol/first-admin", tag = "enrolment", operation_id = "enrol_first_admin",
    request_body = quorate_api::FirstAdminEnrolment,
    responses(
        (status = 201, description = "The first admin is enrolled; pin the genesis", body = quorate_api::Enrolled),
        (status = 400, description = "Unknown, used or expired code, or an invalid genesis entry", body = quorate_api::ErrorBody),
        (status = 409, description = "The vault already has its first admin", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn first_admin(
    State(app): State<App>,
    ApiJson(body): ApiJson<FirstAdminEnrolment>,
) -> Result<impl IntoResponse, ApiError> {
    let invalid_code = || {
        ApiError::bad_request(
            "invalid_code",
            "the enrolment code is unknown, used or expired: ask the operator to restart the server for a new one",
        )
    };
    let bytes = STANDARD
        .decode(&body.genesis)
        .map_err(|_| ApiError::bad_request("invalid_statement", "genesis must be base64"))?;
    let genesis = SignedStatement::from_bytes(&bytes).map_err(ApiError::invalid_statement)?;
    let now = now();
    let hash = code_hash(&body.code);

    let mut transaction = app.db.pool().begin().await?;
    let code = sqlx::query(
        "SELECT vault_id FROM enrolment_codes
         WHERE code_hash = $1 AND purpose = 'first-admin' AND used_at IS NULL AND expires_at > $2",
    )
    .bind(&hash)
    .bind(now)
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or_else(invalid_code)?;
    let vault_text: String = code.try_get("vault_id")?;
    let vault_id: VaultId = vault_text
        .parse()
        .map_err(|error| ApiError::Internal(Box::new(error)))?;

    let roster = Roster::verify(vault_id, std::slice::from_ref(&genesis), None)
        .map_err(ApiError::invalid_statement)?;
    let admin = &roster.members()[0];
    debug_assert_eq!(admin.role, Role::Admin);

    let used = sqlx::query(
        "UPDATE enrolment_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(&hash)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if used != 1 {
        return Err(invalid_code());
    }
    if !store_roster_entry(&mut transaction, &vault_text, 0, &genesis, now).await? {
        return Err(ApiError::conflict(
            "already_enrolled",
            "this vault already has its first admin",
        ));
    }
    sqlx::query(
        "INSERT INTO members (vault_id, fingerprint, verifying_key, recipient, name, role, status, created_at)
         VALUES ($1, $2, $3, $4, $5, 'admin', 'active', $6)",
    )
    .bind(&vault_text)
    .bind(admin.fingerprint.to_hex())
    .bind(admin.public.verifying_key.as_bytes().to_vec())
    .bind(admin.public.recipient.to_string())
    .bind(&admin.name)
    .bind(now)
    .execute(&mut *transaction)
    .await?;
    let admin_hex = admin.fingerprint.to_hex();
    crate::audit::append(
        &mut transaction,
        app.db.backend(),
        vault_id,
        now,
        crate::audit::Event {
            actor: &admin_hex,
            action: "roster.genesis",
            subject: &admin_hex,
            statement: Some(&genesis.to_bytes()),
        },
    )
    .await?;
    transaction.commit().await?;
    tracing::info!(vault = %vault_id, "first admin enrolled");

    Ok((
        StatusCode::CREATED,
        axum::Json(Enrolled {
            vault_id: vault_text,
            roster_genesis: hex::encode(genesis.digest()),
            genesis_entry: STANDARD.encode(genesis.to_bytes()),
            fingerprint: admin.fingerprint.to_hex(),
        }),
    ))
}

/// The vault's roster chain as stored, verified from its genesis (inside `connection`'s
/// transaction, so a concurrent append is seen or refused).
pub(crate) async fn load_roster(
    connection: &mut sqlx::AnyConnection,
    vault_id: VaultId,
) -> Result<Roster, ApiError> {
    let rows =
        sqlx::query("SELECT statement FROM roster_entries WHERE vault_id = $1 ORDER BY sequence")
            .bind(vault_id.to_string())
            .fetch_all(&mut *connection)
            .await?;
    let entries = rows
        .iter()
        .map(|row| {
            let bytes: Vec<u8> = row.try_get("statement")?;
            SignedStatement::from_bytes(&bytes).map_err(|error| ApiError::Internal(Box::new(error)))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Roster::verify(vault_id, &entries, None).map_err(|error| ApiError::Internal(Box::new(error)))
}

/// Stores a verified roster entry at `sequence`; `false` when that place is already taken
/// (someone else appended first).
pub(crate) async fn store_roster_entry(
    connection: &mut sqlx::AnyConnection,
    vault: &str,
    sequence: u64,
    signed: &SignedStatement,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let stored = sqlx::query(
        "INSERT INTO roster_entries (vault_id, sequence, statement, digest, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(vault)
    .bind(sequence as i64)
    .bind(signed.to_bytes())
    .bind(signed.digest().to_vec())
    .bind(now)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// The vault's signed roster chain, for the device to verify against its pinned genesis.
#[utoipa::path(
    get, path = "/vaults/{vault}/roster", tag = "members", security(("session" = [])), operation_id = "roster",
    params(VaultPath),
    responses(
        (status = 200, description = "The signed roster chain; verify it against the pinned genesis", body = quorate_api::RosterChain),
    )
)]
pub(crate) async fn roster(
    State(app): State<App>,
    who: Caller,
    Path(VaultPath { vault }): Path<VaultPath>,
) -> Result<axum::Json<RosterChain>, ApiError> {
    // Members and nodes alike: a node checks the admins' signatures on what it is given.
    if vault != who.vault_id.to_string() {
        return Err(ApiError::not_found());
    }
    let rows =
        sqlx::query("SELECT statement FROM roster_entries WHERE vault_id = $1 ORDER BY sequence")
            .bind(&vault)
            .fetch_all(app.db.pool())
            .await?;
    let entries = rows
        .iter()
        .map(|row| {
            row.try_get::<Vec<u8>, _>("statement")
                .map(|bytes| STANDARD.encode(bytes))
        })
        .collect::<Result<_, _>>()?;
    Ok(axum::Json(RosterChain {
        vault_id: vault,
        entries,
    }))
}

/// Says what an unused, unexpired code is for (its vault and purpose) without using it, so
/// a device knows which enrolment to make: a first admin signs a genesis entry for that vault.
#[utoipa::path(
    post, path = "/enrol/lookup", tag = "enrolment", operation_id = "lookup_code",
    request_body = quorate_api::CodeLookup,
    responses(
        (status = 200, description = "The code's vault and purpose", body = quorate_api::CodeInfo),
    )
)]
pub(crate) async fn lookup(
    State(app): State<App>,
    ApiJson(body): ApiJson<quorate_api::CodeLookup>,
) -> Result<axum::Json<quorate_api::CodeInfo>, ApiError> {
    let row = sqlx::query(
        "SELECT vault_id, purpose, expires_at FROM enrolment_codes
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(code_hash(&body.code))
    .bind(now())
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(|| {
        ApiError::bad_request(
            "invalid_code",
            "the code is unknown, used or expired: ask for a new one",
        )
    })?;
    Ok(axum::Json(quorate_api::CodeInfo {
        vault_id: row.try_get("vault_id")?,
        purpose: row.try_get("purpose")?,
        expires_at: row.try_get("expires_at")?,
    }))
}
