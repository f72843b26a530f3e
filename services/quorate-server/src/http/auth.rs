//! Sign-in (challenge-response with Ed25519) and the session extractor.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, State},
    http::{HeaderMap, StatusCode, request::Parts},
    response::IntoResponse,
};
use quorate_api::{ChallengeRequest, Me, MemberRole, PartyRole, SessionRequest};
use quorate_crypto::{NodeId, VaultId};

pub use crate::ops::sign_in::{MAX_OPEN_CHALLENGES, SESSION_TTL};
use crate::{
    App,
    config::Network,
    error::{ApiError, ApiJson},
    limits, now,
    ops::sign_in::{self, SignInError},
    store,
};

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

fn parse_vault(text: &str) -> Result<VaultId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_vault_id", "vault_id must be a UUID"))
}

/// Counts a refused sign-in against the client's address.
async fn count_failure(app: &App, peer: SocketAddr, headers: &HeaderMap, error: &SignInError) {
    if error.is_failed_attempt() {
        app.metrics.sign_in_failed();
        let address = client_address(&app.config.trusted_proxies, peer.ip(), headers);
        if let Err(failed) = limits::record_failure(app, address).await {
            // The refusal stands; only this failure goes uncounted.
            tracing::warn!(error = %failed, "could not count a failed sign-in");
        }
    }
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
    limits::check(
        &app,
        client_address(&app.config.trusted_proxies, peer.ip(), &headers),
    )
    .await?;
    let vault_id = parse_vault(&body.vault_id)?;
    let challenge = match sign_in::challenge(&app, vault_id, &body.fingerprint, now()).await {
        Ok(challenge) => challenge,
        Err(error) => {
            count_failure(&app, peer, &headers, &error).await;
            return Err(error.into());
        }
    };
    Ok((StatusCode::CREATED, axum::Json(challenge)))
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
    let session = match sign_in::answer(&app, &body, now()).await {
        Ok(session) => session,
        Err(error) => {
            count_failure(&app, peer, &headers, &error).await;
            return Err(error.into());
        }
    };
    Ok((StatusCode::CREATED, axum::Json(session)))
}

/// Deletes challenges and sessions past their expiry; returns how many.
pub(crate) async fn sweep(app: &App, now: i64) -> Result<usize, ApiError> {
    let mut connection = app.db.connection().await?;
    let sessions = store::sessions::sweep(&mut connection, now).await?;
    drop(connection);
    Ok(sessions + limits::sweep(app, now).await?)
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
    /// What they are.
    pub role: PartyRole,
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
        let token_hash = sign_in::token_hash(token);
        let mut connection = app.db.connection().await?;
        let row = store::sessions::session(&mut connection, &token_hash, now())
            .await?
            .ok_or_else(unauthenticated)?;
        let internal = |error: quorate_crypto::Error| ApiError::Internal(Box::new(error));
        Ok(Self {
            vault_id: row.vault_id.parse().map_err(internal)?,
            fingerprint: row.fingerprint,
            name: row.name,
            role: row.role,
            node_id: row
                .node_id
                .map(|id| id.parse())
                .transpose()
                .map_err(internal)?,
            token_hash,
        })
    }
}

/// A request made with a valid session of an active member or admin (not a recorder, not a
/// node): the default for every member's route.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The vault.
    pub vault_id: VaultId,
    /// The member's fingerprint (hex).
    pub fingerprint: String,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: MemberRole,
}

impl FromRequestParts<App> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        Self::from_caller(caller, false)
    }
}

/// A request made with a valid session of a member, an admin or a recorder: who may upload
/// recordings. Only the routes an upload needs take this; every other member's route takes
/// [`Authenticated`], which refuses recorders.
#[derive(Debug, Clone)]
pub struct Uploader(pub Authenticated);

impl FromRequestParts<App> for Uploader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        Authenticated::from_caller(caller, true).map(Self)
    }
}

/// 403 for a party that may not use a member's route.
fn members_only(message: &str) -> ApiError {
    ApiError::Client {
        status: StatusCode::FORBIDDEN,
        code: "members_only",
        message: message.into(),
    }
}

impl Authenticated {
    /// The member `caller` is; a recorder only if `recorders` allows one; never a node.
    fn from_caller(caller: Caller, recorders: bool) -> Result<Self, ApiError> {
        let role = match caller.role {
            PartyRole::Admin => MemberRole::Admin,
            PartyRole::Member => MemberRole::Member,
            PartyRole::Recorder if recorders => MemberRole::Recorder,
            PartyRole::Recorder => {
                return Err(members_only(
                    "a recorder can only upload recordings: a member's device does the rest",
                ));
            }
            PartyRole::Node => return Err(members_only("only members can do that, not nodes")),
        };
        Ok(Self {
            vault_id: caller.vault_id,
            fingerprint: caller.fingerprint,
            name: caller.name,
            role,
        })
    }

    /// Refuses a member of another vault (404: another vault's resources are not found).
    pub fn member_of(&self, vault: VaultId) -> Result<(), ApiError> {
        if vault == self.vault_id {
            Ok(())
        } else {
            Err(ApiError::not_found())
        }
    }

    /// Refuses anyone but an admin of `vault` (another vault's path is 404).
    pub fn admin_of(&self, vault: VaultId) -> Result<(), ApiError> {
        self.member_of(vault)?;
        if self.role != MemberRole::Admin {
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
    let mut connection = app.db.connection().await?;
    store::sessions::end(&mut connection, &who.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}
