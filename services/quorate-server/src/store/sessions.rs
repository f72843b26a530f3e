//! Sign-in state: single-use `sign_in_challenges` and `sessions` (stored by the SHA-256 of
//! their token).

use sqlx::AnyConnection;

/// Whether `fingerprint` in `vault` is an active member (`member`) or a node that is not
/// revoked (`node`); `None` when neither.
pub(crate) async fn party_of(
    connection: &mut AnyConnection,
    vault: &str,
    fingerprint: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT 'member' AS party FROM members WHERE vault_id = $1 AND fingerprint = $2 AND status = 'active'
         UNION ALL
         SELECT 'node' AS party FROM nodes WHERE vault_id = $1 AND fingerprint = $2 AND status <> 'revoked'",
    )
    .bind(vault)
    .bind(fingerprint)
    .fetch_optional(connection)
    .await
}

/// A challenge to store.
#[derive(Debug)]
pub(crate) struct NewChallenge<'a> {
    pub id: &'a str,
    pub vault: &'a str,
    pub fingerprint: &'a str,
    pub nonce: &'a [u8],
    pub expires_at: i64,
    pub party: &'a str,
    /// Orders one party's challenges.
    pub issued_micros: i64,
}

/// Stores a challenge, keeping only the newest `keep` unexpired others of its party: anyone
/// who knows a vault ID and a fingerprint may ask, so the table stays bounded, and the oldest
/// give way rather than new ones being refused (which would let anyone stop a member from
/// signing in). Concurrent requests may leave a few more for a moment; the next trims them.
pub(crate) async fn insert_challenge(
    connection: &mut AnyConnection,
    challenge: &NewChallenge<'_>,
    now: i64,
    keep: usize,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM sign_in_challenges WHERE vault_id = $1 AND fingerprint = $2 AND id NOT IN (
             SELECT id FROM sign_in_challenges WHERE vault_id = $1 AND fingerprint = $2 AND expires_at >= $3
             ORDER BY issued_micros DESC LIMIT $4)",
    )
    .bind(challenge.vault)
    .bind(challenge.fingerprint)
    .bind(now)
    .bind(keep as i64)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO sign_in_challenges (id, vault_id, fingerprint, nonce, expires_at, party, issued_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(challenge.id)
    .bind(challenge.vault)
    .bind(challenge.fingerprint)
    .bind(challenge.nonce)
    .bind(challenge.expires_at)
    .bind(challenge.party)
    .bind(challenge.issued_micros)
    .execute(connection)
    .await?;
    Ok(())
}

/// A challenge as taken back to check its answer.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ChallengeRow {
    pub vault_id: String,
    pub fingerprint: String,
    pub nonce: Vec<u8>,
    pub expires_at: i64,
    pub party: String,
}

/// Deletes challenge `id` and returns it: a challenge is used once, whatever the answer.
pub(crate) async fn take_challenge(
    connection: &mut AnyConnection,
    id: &str,
) -> Result<Option<ChallengeRow>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM sign_in_challenges WHERE id = $1
         RETURNING vault_id, fingerprint, nonce, expires_at, party",
    )
    .bind(id)
    .fetch_optional(connection)
    .await
}

/// Enrolled keys: the verifying key and the age recipient.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct KeysRow {
    pub verifying_key: Vec<u8>,
    pub recipient: String,
}

/// The keys of `fingerprint`, an active member or a node that is not revoked as `party`
/// says, in `vault`.
pub(crate) async fn keys_of(
    connection: &mut AnyConnection,
    vault: &str,
    fingerprint: &str,
    party: &str,
) -> Result<Option<KeysRow>, sqlx::Error> {
    let sql = if party == "node" {
        "SELECT verifying_key, recipient FROM nodes WHERE vault_id = $1 AND fingerprint = $2 AND status <> 'revoked'"
    } else {
        "SELECT verifying_key, recipient FROM members WHERE vault_id = $1 AND fingerprint = $2 AND status = 'active'"
    };
    sqlx::query_as(sql)
        .bind(vault)
        .bind(fingerprint)
        .fetch_optional(connection)
        .await
}

/// A session to store.
#[derive(Debug)]
pub(crate) struct NewSession<'a> {
    pub token_hash: &'a [u8],
    pub vault: &'a str,
    pub fingerprint: &'a str,
    pub party: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Stores a session.
pub(crate) async fn insert_session(
    connection: &mut AnyConnection,
    session: &NewSession<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, vault_id, fingerprint, created_at, expires_at, party)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session.token_hash)
    .bind(session.vault)
    .bind(session.fingerprint)
    .bind(session.now)
    .bind(session.expires_at)
    .bind(session.party)
    .execute(connection)
    .await?;
    Ok(())
}

/// Who a session token belongs to.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub vault_id: String,
    pub fingerprint: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: quorate_api::PartyRole,
    pub node_id: Option<String>,
}

/// The unexpired session with `token_hash`, of an active member or a node that is not
/// revoked.
pub(crate) async fn session(
    connection: &mut AnyConnection,
    token_hash: &[u8],
    now: i64,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.vault_id, s.fingerprint, m.name, m.role, NULL AS node_id FROM sessions s
         JOIN members m ON m.vault_id = s.vault_id AND m.fingerprint = s.fingerprint
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.party = 'member' AND m.status = 'active'
         UNION ALL
         SELECT s.vault_id, s.fingerprint, n.name, 'node' AS role, n.id AS node_id FROM sessions s
         JOIN nodes n ON n.vault_id = s.vault_id AND n.fingerprint = s.fingerprint
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.party = 'node' AND n.status <> 'revoked'",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(connection)
    .await
}

/// Ends the session with `token_hash`.
pub(crate) async fn end(
    connection: &mut AnyConnection,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(connection)
        .await?;
    Ok(())
}

/// Deletes challenges and sessions past their expiry (nothing else ever would); returns how
/// many. The same bounds the checks use: a challenge is answered until its expiry second
/// ends, a session works before its expiry.
pub(crate) async fn sweep(connection: &mut AnyConnection, now: i64) -> Result<usize, sqlx::Error> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM sign_in_challenges WHERE expires_at < $1",
        "DELETE FROM sessions WHERE expires_at <= $1",
    ] {
        removed += sqlx::query(sql)
            .bind(now)
            .execute(&mut *connection)
            .await?
            .rows_affected() as usize;
    }
    Ok(removed)
}
