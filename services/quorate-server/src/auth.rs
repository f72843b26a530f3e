//! Sign-in (challenge-response with Ed25519) and the session extractor.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, State},
    http::{HeaderMap, StatusCode, request::Parts},
    response::IntoResponse,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use quorate_api::{Challenge, ChallengeRequest, Me, Session, SessionRequest};
use quorate_crypto::{NodeId, PublicIdentity, VaultId, identity::verify_challenge};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{
    App,
    config::Network,
    error::{ApiError, ApiJson},
    now,
};

/// How long a challenge may be answered.
const CHALLENGE_TTL: i64 = 60;
/// How long a session lasts.
pub const SESSION_TTL: i64 = 12 * 3600;
/// Unanswered challenges kept per member or node: the newest; older ones give way.
pub const MAX_OPEN_CHALLENGES: usize = 5;

/// The client's address. It is the peer's, unless the peer is a trusted proxy: then it is the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy. Each proxy
/// appends the address it was reached from, so the list is read from the right, and only as
/// far as trusted proxies wrote it: whatever the client put in the header itself is not
/// believed. A hop that does not parse ends the walk at the proxy that passed it on.
pub fn client_address(proxies: &[Network], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = |address: IpAddr| proxies.iter().any(|proxy| proxy.contains(address));
    let mut client = peer.to_canonical();
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or_default().split(','))
        .collect();
    for hop in hops.iter().rev() {
        if !trusted(client) {
            break;
        }
        let hop = hop.trim();
        match hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|address| address.ip()))
        {
            Ok(address) => client = address.to_canonical(),
            Err(_) => break,
        }
    }
    client
}

/// Microseconds since the Unix epoch: orders one member's challenges.
fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as i64)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand_core::Rng::fill_bytes(&mut rand_core::UnwrapErr(rand::rngs::SysRng), &mut bytes);
    bytes
}

fn parse_vault(text: &str) -> Result<VaultId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_vault_id", "vault_id must be a UUID"))
}

/// Starts a sign-in: a single-use nonce, valid for a short time.
#[utoipa::path(
    post, path = "/auth/challenge", tag = "sign-in", operation_id = "sign_in_challenge",
    request_body = quorate_api::ChallengeRequest,
    responses(
        (status = 201, description = "A single-use nonce to sign", body = quorate_api::Challenge),
        (status = 400, description = "Malformed vault ID or fingerprint", body = quorate_api::ErrorBody),
        (status = 401, description = "Not an active member or node of that vault", body = quorate_api::ErrorBody),
        (status = 429, description = "Too many failed sign-ins from this client address", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn challenge(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChallengeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let address = client_address(&app.config.trusted_proxies, peer.ip(), &headers);
    app.limits.check(address)?;
    let vault_id = parse_vault(&body.vault_id)?;
    let fingerprint = body.fingerprint.to_ascii_lowercase();
    let party = sqlx::query(
        "SELECT 'member' AS party FROM members WHERE vault_id = $1 AND fingerprint = $2 AND status = 'active'
         UNION ALL
         SELECT 'node' AS party FROM nodes WHERE vault_id = $1 AND fingerprint = $2 AND status <> 'revoked'",
    )
    .bind(vault_id.to_string())
    .bind(&fingerprint)
    .fetch_optional(app.db.pool())
    .await?;
    let Some(party) = party else {
        app.limits.record_failure(address);
        return Err(ApiError::unauthorized(
            "unknown_member",
            "no active member or node with that fingerprint in this vault",
        ));
    };
    let party: String = party.try_get("party")?;
    let id = uuid::Uuid::new_v4().to_string();
    let nonce: [u8; 32] = random_bytes();
    let now = now();
    let expires_at = now + CHALLENGE_TTL;
    let mut transaction = app.db.pool().begin().await?;
    // Anyone who knows a vault ID and a fingerprint may ask for challenges, so only the newest
    // few per member are kept (and expired ones go): the table stays bounded. The oldest give
    // way rather than new ones being refused, which would let anyone stop a member from
    // signing in. Concurrent requests may leave a few more for a moment; the next trims them.
    sqlx::query(
        "DELETE FROM sign_in_challenges WHERE vault_id = $1 AND fingerprint = $2 AND id NOT IN (
             SELECT id FROM sign_in_challenges WHERE vault_id = $1 AND fingerprint = $2 AND expires_at >= $3
             ORDER BY issued_micros DESC LIMIT $4)",
    )
    .bind(vault_id.to_string())
    .bind(&fingerprint)
    .bind(now)
    .bind(MAX_OPEN_CHALLENGES as i64 - 1)
    .execute(&mut *transaction)
    .await?;
    sqlx::query("INSERT INTO sign_in_challenges (id, vault_id, fingerprint, nonce, expires_at, party, issued_micros) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&id)
        .bind(vault_id.to_string())
        .bind(&fingerprint)
        .bind(nonce.to_vec())
        .bind(expires_at)
        .bind(&party)
        .bind(now_micros())
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Challenge {
            challenge_id: id,
            nonce: STANDARD.encode(nonce),
            expires_at,
        }),
    ))
}

/// Finishes a sign-in with the signed nonce; returns a session token.
///
/// The challenge is consumed whatever the outcome. A valid signature always signs in; a bad
/// answer counts against the client address (limits in `crate::limits`), which then gets no
/// new challenge for a while.
#[utoipa::path(
    post, path = "/auth/session", tag = "sign-in", operation_id = "sign_in",
    request_body = quorate_api::SessionRequest,
    responses(
        (status = 201, description = "A session token", body = quorate_api::Session),
        (status = 401, description = "Bad signature, or an unknown, used or expired challenge", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn create_session(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SessionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let (vault_id, fingerprint, party) = verify_answer(&app, &body).await.inspect_err(|error| {
        if matches!(
            error,
            ApiError::Client {
                code: SIGN_IN_FAILED,
                ..
            }
        ) {
            app.limits.record_failure(client_address(
                &app.config.trusted_proxies,
                peer.ip(),
                &headers,
            ));
        }
    })?;
    let token: [u8; 32] = random_bytes();
    let token_text = URL_SAFE_NO_PAD.encode(token);
    let expires_at = now() + SESSION_TTL;
    sqlx::query("INSERT INTO sessions (token_hash, vault_id, fingerprint, created_at, expires_at, party) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(Sha256::digest(token_text.as_bytes()).to_vec())
        .bind(&vault_id)
        .bind(&fingerprint)
        .bind(now())
        .bind(expires_at)
        .bind(&party)
        .execute(app.db.pool())
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Session {
            token: token_text,
            expires_at,
        }),
    ))
}

const SIGN_IN_FAILED: &str = "sign_in_failed";

/// Consumes the challenge and checks the signature. Returns the vault, fingerprint and party
/// (`member` or `node`) signed in.
async fn verify_answer(
    app: &App,
    body: &SessionRequest,
) -> Result<(String, String, String), ApiError> {
    let refused = || {
        ApiError::unauthorized(
            SIGN_IN_FAILED,
            "the challenge is unknown, used or expired, or the signature does not verify: ask for a new challenge",
        )
    };
    let row = sqlx::query("DELETE FROM sign_in_challenges WHERE id = $1 RETURNING vault_id, fingerprint, nonce, expires_at, party")
        .bind(&body.challenge_id)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(refused)?;
    let vault_id: String = row.try_get("vault_id")?;
    let fingerprint: String = row.try_get("fingerprint")?;
    let nonce: Vec<u8> = row.try_get("nonce")?;
    let party: String = row.try_get("party")?;
    if row.try_get::<i64, _>("expires_at")? < now() {
        return Err(refused());
    }
    let keys_of = if party == "node" {
        "SELECT verifying_key, recipient FROM nodes WHERE vault_id = $1 AND fingerprint = $2 AND status <> 'revoked'"
    } else {
        "SELECT verifying_key, recipient FROM members WHERE vault_id = $1 AND fingerprint = $2 AND status = 'active'"
    };
    let member = sqlx::query(keys_of)
        .bind(&vault_id)
        .bind(&fingerprint)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(refused)?;
    let verifying_key: Vec<u8> = member.try_get("verifying_key")?;
    let recipient: String = member.try_get("recipient")?;
    let public = PublicIdentity::from_text(&recipient, &URL_SAFE_NO_PAD.encode(&verifying_key))
        .map_err(|error| ApiError::Internal(Box::new(error)))?;
    let signature = STANDARD.decode(&body.signature).map_err(|_| refused())?;
    if !verify_challenge(&public, &nonce, &signature) {
        return Err(refused());
    }
    Ok((vault_id, fingerprint, party))
}

/// Deletes challenges and sessions past their expiry (nothing else ever would); returns how
/// many.
pub(crate) async fn sweep(app: &App, now: i64) -> Result<usize, ApiError> {
    let mut removed = 0;
    // The same bounds the checks use: a challenge is answered until its expiry second ends, a
    // session works before its expiry.
    for sql in [
        "DELETE FROM sign_in_challenges WHERE expires_at < $1",
        "DELETE FROM sessions WHERE expires_at <= $1",
    ] {
        removed += sqlx::query(sql)
            .bind(now)
            .execute(app.db.pool())
            .await?
            .rows_affected() as usize;
    }
    Ok(removed)
}

/// A request made with a valid session: of an active member, or of a node that is not
/// revoked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The vault.
    pub vault_id: VaultId,
    /// The fingerprint (hex).
    pub fingerprint: String,
    /// The member's or node's name.
    pub name: String,
    /// `admin`, `member` or `node`.
    pub role: String,
    /// The node's ID, for a node.
    pub node_id: Option<NodeId>,
    token_hash: Vec<u8>,
}

fn unauthenticated() -> ApiError {
    ApiError::unauthorized(
        "unauthenticated",
        "sign in and send the session as Authorization: Bearer TOKEN",
    )
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(unauthenticated)?;
        let token_hash = Sha256::digest(token.trim().as_bytes()).to_vec();
        let row = sqlx::query(
            "SELECT s.vault_id, s.fingerprint, m.name, m.role, NULL AS node_id FROM sessions s
             JOIN members m ON m.vault_id = s.vault_id AND m.fingerprint = s.fingerprint
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.party = 'member' AND m.status = 'active'
             UNION ALL
             SELECT s.vault_id, s.fingerprint, n.name, 'node' AS role, n.id AS node_id FROM sessions s
             JOIN nodes n ON n.vault_id = s.vault_id AND n.fingerprint = s.fingerprint
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.party = 'node' AND n.status <> 'revoked'",
        )
        .bind(&token_hash)
        .bind(now())
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(unauthenticated)?;
        let internal = |error: quorate_crypto::Error| ApiError::Internal(Box::new(error));
        Ok(Self {
            vault_id: row
                .try_get::<String, _>("vault_id")?
                .parse()
                .map_err(internal)?,
            fingerprint: row.try_get("fingerprint")?,
            name: row.try_get("name")?,
            role: row.try_get("role")?,
            node_id: row
                .try_get::<Option<String>, _>("node_id")?
                .map(|id| id.parse())
                .transpose()
                .map_err(internal)?,
            token_hash,
        })
    }
}

/// A request made with a valid session of an active member.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The vault.
    pub vault_id: VaultId,
    /// The member's fingerprint (hex).
    pub fingerprint: String,
    /// Their name.
    pub name: String,
    /// `admin` or `member`.
    pub role: String,
}

impl FromRequestParts<App> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        if caller.node_id.is_some() {
            return Err(ApiError::Client {
                status: StatusCode::FORBIDDEN,
                code: "members_only",
                message: "only members can do that, not nodes".into(),
            });
        }
        Ok(Self {
            vault_id: caller.vault_id,
            fingerprint: caller.fingerprint,
            name: caller.name,
            role: caller.role,
        })
    }
}

impl Authenticated {
    /// Refuses a member of another vault (404: another vault's resources are not found).
    pub fn member_of(&self, vault: &str) -> Result<(), ApiError> {
        if vault == self.vault_id.to_string() {
            Ok(())
        } else {
            Err(ApiError::not_found())
        }
    }

    /// Refuses anyone but an admin of `vault` (another vault's path is 404).
    pub fn admin_of(&self, vault: &str) -> Result<(), ApiError> {
        self.member_of(vault)?;
        if self.role != "admin" {
            return Err(ApiError::Client {
                status: StatusCode::FORBIDDEN,
                code: "admin_only",
                message: "only an admin of this vault can do that".into(),
            });
        }
        Ok(())
    }
}

/// A request made with a valid session of a node (pending or approved, not revoked).
#[derive(Debug, Clone)]
pub struct NodeCaller {
    /// The vault.
    pub vault_id: VaultId,
    /// The node.
    pub node_id: NodeId,
    /// Its fingerprint (hex).
    pub fingerprint: String,
}

impl FromRequestParts<App> for NodeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        let node_id = caller.node_id.ok_or_else(|| ApiError::Client {
            status: StatusCode::FORBIDDEN,
            code: "nodes_only",
            message: "only a transcription node can do that".into(),
        })?;
        Ok(Self {
            vault_id: caller.vault_id,
            node_id,
            fingerprint: caller.fingerprint,
        })
    }
}

/// Who the session belongs to.
#[utoipa::path(
    get, path = "/me", tag = "sign-in", security(("session" = [])), operation_id = "me",
    responses(
        (status = 200, description = "Who the session belongs to", body = quorate_api::Me),
    )
)]
pub(crate) async fn me(who: Caller) -> axum::Json<Me> {
    axum::Json(Me {
        vault_id: who.vault_id.to_string(),
        fingerprint: who.fingerprint,
        name: who.name,
        role: who.role,
        node_id: who.node_id.map(|id| id.to_string()),
    })
}

/// Signs out: the session token stops working.
#[utoipa::path(
    delete, path = "/auth/session", tag = "sign-in", security(("session" = [])), operation_id = "sign_out",
    responses(
        (status = 204, description = "Signed out; the token no longer works"),
    )
)]
pub(crate) async fn delete_session(
    State(app): State<App>,
    who: Caller,
) -> Result<StatusCode, ApiError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(&who.token_hash)
        .execute(app.db.pool())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
