//! Sign-in: challenge and response with Ed25519, then a session token.

use axum::http::StatusCode;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use quorate_api::Base64;
use quorate_api::{Challenge, Session, SessionRequest};
use quorate_crypto::{PublicIdentity, VaultId, identity::verify_challenge};
use sha2::{Digest, Sha256};

use crate::{App, error::Refusal, store};

/// How long a challenge may be answered.
const CHALLENGE_TTL: i64 = 60;
/// How long a session lasts.
pub const SESSION_TTL: i64 = 12 * 3600;
/// Unanswered challenges kept per member or node: the newest; older ones give way.
pub const MAX_OPEN_CHALLENGES: usize = 5;

/// Why a sign-in was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignInError {
    #[error("no active member or node with that fingerprint in this vault")]
    UnknownMember,
    #[error(
        "the challenge is unknown, used or expired, or the signature does not verify: ask for a new challenge"
    )]
    Failed,
    #[error("stored keys do not parse: {0}")]
    CorruptKeys(quorate_crypto::Error),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl SignInError {
    /// Whether this counts against the client address as a failed sign-in.
    pub(crate) fn is_failed_attempt(&self) -> bool {
        matches!(self, Self::UnknownMember | Self::Failed)
    }
}

impl Refusal for SignInError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        match self {
            Self::UnknownMember => Some((StatusCode::UNAUTHORIZED, "unknown_member")),
            Self::Failed => Some((StatusCode::UNAUTHORIZED, "sign_in_failed")),
            Self::CorruptKeys(_) | Self::Store(_) => None,
        }
    }
}

/// Microseconds since the Unix epoch: orders one member's challenges.
fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as i64)
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand_core::Rng::fill_bytes(&mut rand_core::UnwrapErr(rand::rngs::SysRng), &mut bytes);
    bytes
}

/// A single-use nonce for `fingerprint` (an active member or a node that is not revoked) of
/// `vault`, valid for a short time.
pub(crate) async fn challenge(
    app: &App,
    vault: VaultId,
    fingerprint: &str,
    now: i64,
) -> Result<Challenge, SignInError> {
    let vault = vault.to_string();
    let fingerprint = fingerprint.to_ascii_lowercase();
    let mut tx = app.db.begin().await?;
    let party = store::sessions::party_of(&mut tx, &vault, &fingerprint)
        .await?
        .ok_or(SignInError::UnknownMember)?;
    let id = uuid::Uuid::new_v4().to_string();
    let nonce: [u8; 32] = random_bytes();
    let expires_at = now + CHALLENGE_TTL;
    let challenge = store::sessions::NewChallenge {
        id: &id,
        vault: &vault,
        fingerprint: &fingerprint,
        nonce: &nonce,
        expires_at,
        party: &party,
        issued_micros: now_micros(),
    };
    store::sessions::insert_challenge(&mut tx, &challenge, now, MAX_OPEN_CHALLENGES - 1).await?;
    tx.commit().await?;
    Ok(Challenge {
        challenge_id: id,
        nonce: Base64::from(nonce.to_vec()),
        expires_at,
    })
}

/// Consumes the challenge whatever the outcome and checks the signature; a valid one starts
/// a session.
pub(crate) async fn answer(
    app: &App,
    answer: &SessionRequest,
    now: i64,
) -> Result<Session, SignInError> {
    let mut connection = app.db.connection().await?;
    let challenge = store::sessions::take_challenge(&mut connection, &answer.challenge_id)
        .await?
        .ok_or(SignInError::Failed)?;
    if challenge.expires_at < now {
        return Err(SignInError::Failed);
    }
    let keys = store::sessions::keys_of(
        &mut connection,
        &challenge.vault_id,
        &challenge.fingerprint,
        &challenge.party,
    )
    .await?
    .ok_or(SignInError::Failed)?;
    let public = PublicIdentity::from_text(
        &keys.recipient,
        &URL_SAFE_NO_PAD.encode(&keys.verifying_key),
    )
    .map_err(SignInError::CorruptKeys)?;
    if !verify_challenge(&public, &challenge.nonce, &answer.signature) {
        return Err(SignInError::Failed);
    }
    let token: [u8; 32] = random_bytes();
    let token = URL_SAFE_NO_PAD.encode(token);
    let expires_at = now + SESSION_TTL;
    let session = store::sessions::NewSession {
        token_hash: &token_hash(&token),
        vault: &challenge.vault_id,
        fingerprint: &challenge.fingerprint,
        party: &challenge.party,
        now,
        expires_at,
    };
    store::sessions::insert_session(&mut connection, &session).await?;
    Ok(Session { token, expires_at })
}

/// What a session is stored and found by: the SHA-256 of its token.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.trim().as_bytes()).to_vec()
}
