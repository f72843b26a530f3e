//! Records management: `retention_rules` (one history per scope, `vault` or a recording ID),
//! `hold_votes` and `holds`, and the recordings a rule may be due to shred.

use sqlx::AnyConnection;

/// The scope name of a rule or hold that covers the whole vault; a recording's scope is
/// its ID.
pub(crate) const VAULT_SCOPE: &str = "vault";

/// The sequence number the next rule of `scope` in `vault` must carry.
pub(crate) async fn next_rule_sequence(
    connection: &mut AnyConnection,
    vault: &str,
    scope: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(MAX(sequence) + 1, 0) AS next FROM retention_rules
         WHERE vault_id = $1 AND scope = $2",
    )
    .bind(vault)
    .bind(scope)
    .fetch_one(connection)
    .await
}

/// Stores a rule at `sequence` of `scope`; `false` when that place is taken.
pub(crate) async fn insert_rule(
    connection: &mut AnyConnection,
    vault: &str,
    scope: &str,
    sequence: i64,
    statement: &[u8],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let stored = sqlx::query(
        "INSERT INTO retention_rules (vault_id, scope, sequence, statement, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(vault)
    .bind(scope)
    .bind(sequence)
    .bind(statement)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// Every rule of `vault`, each scope's history in order.
pub(crate) async fn rules(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT statement FROM retention_rules WHERE vault_id = $1 ORDER BY scope, sequence",
    )
    .bind(vault)
    .fetch_all(connection)
    .await
}

/// The newest rule of `vault` for the vault and for `recording`, those there are.
pub(crate) async fn newest_rules(
    connection: &mut AnyConnection,
    vault: &str,
    recording: &str,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT r.statement FROM retention_rules r
         WHERE r.vault_id = $1 AND r.scope IN ('vault', $2)
           AND r.sequence = (SELECT MAX(sequence) FROM retention_rules
                             WHERE vault_id = r.vault_id AND scope = r.scope)",
    )
    .bind(vault)
    .bind(recording)
    .fetch_all(connection)
    .await
}

/// A vote on a hold, as stored.
pub(crate) struct HoldVote<'a> {
    pub vault: &'a str,
    pub hold: &'a str,
    /// `place` or `lift`.
    pub action: &'a str,
    /// The voter's fingerprint.
    pub voter: &'a str,
    pub statement: &'a [u8],
}

/// Stores a vote; `false` when this voter already voted so on this hold.
pub(crate) async fn insert_hold_vote(
    connection: &mut AnyConnection,
    vote: &HoldVote<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let stored = sqlx::query(
        "INSERT INTO hold_votes (vault_id, hold_id, action, voter, statement, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(vote.vault)
    .bind(vote.hold)
    .bind(vote.action)
    .bind(vote.voter)
    .bind(vote.statement)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// The votes to `action` (`place` or `lift`) hold `hold` of `vault`, oldest first.
pub(crate) async fn hold_votes_on(
    connection: &mut AnyConnection,
    vault: &str,
    hold: &str,
    action: &str,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT statement FROM hold_votes WHERE vault_id = $1 AND hold_id = $2 AND action = $3
         ORDER BY created_at, voter",
    )
    .bind(vault)
    .bind(hold)
    .bind(action)
    .fetch_all(connection)
    .await
}

/// Every vote on every hold of `vault`, oldest first.
pub(crate) async fn hold_votes(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT statement FROM hold_votes WHERE vault_id = $1 ORDER BY created_at, hold_id, voter",
    )
    .bind(vault)
    .fetch_all(connection)
    .await
}

/// A hold a quorum placed, and whether one lifted it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Hold {
    pub scope: String,
    pub lifted_at: Option<i64>,
}

/// Hold `hold` of `vault`, `None` until a quorum placed it.
pub(crate) async fn hold(
    connection: &mut AnyConnection,
    vault: &str,
    hold: &str,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as("SELECT scope, lifted_at FROM holds WHERE vault_id = $1 AND hold_id = $2")
        .bind(vault)
        .bind(hold)
        .fetch_optional(connection)
        .await
}

/// Records that a quorum placed `hold` on `scope`.
pub(crate) async fn place_hold(
    connection: &mut AnyConnection,
    vault: &str,
    hold: &str,
    scope: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO holds (vault_id, hold_id, scope, placed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(vault)
    .bind(hold)
    .bind(scope)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// Records that a quorum lifted `hold`.
pub(crate) async fn lift_hold(
    connection: &mut AnyConnection,
    vault: &str,
    hold: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE holds SET lifted_at = $3 WHERE vault_id = $1 AND hold_id = $2 AND lifted_at IS NULL",
    )
    .bind(vault)
    .bind(hold)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// A hold in force on `recording` of `vault` (on it, or on the whole vault), if any.
pub(crate) async fn hold_on(
    connection: &mut AnyConnection,
    vault: &str,
    recording: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT hold_id FROM holds WHERE vault_id = $1 AND scope IN ('vault', $2)
           AND lifted_at IS NULL ORDER BY placed_at, hold_id LIMIT 1",
    )
    .bind(vault)
    .bind(recording)
    .fetch_optional(connection)
    .await
}

/// A complete recording that a rule may shred, in part or whole.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Kept {
    pub id: String,
    pub vault_id: String,
    /// Its signed manifest, whose time the `uploaded` anchor counts from.
    pub manifest: Vec<u8>,
    pub shredded_at: Option<i64>,
    pub minutes_shredded_at: Option<i64>,
    /// When its first minutes were released.
    pub released_at: Option<i64>,
}

/// Complete recordings, in vaults with a rule, of which something is still kept; at most
/// `limit` after `after` (by ID).
pub(crate) async fn kept(
    connection: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<Kept>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.vault_id, r.manifest, r.shredded_at, r.minutes_shredded_at,
                r.first_released_at AS released_at
         FROM recordings r
         WHERE r.status = 'complete' AND r.id > $1
           AND (r.shredded_at IS NULL OR r.minutes_shredded_at IS NULL)
           AND EXISTS (SELECT 1 FROM retention_rules x WHERE x.vault_id = r.vault_id)
         ORDER BY r.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// Marks `recording`'s key (`minutes: false`) or its minutes shredded at `now`; `false`
/// when it already was.
pub(crate) async fn mark_shredded(
    connection: &mut AnyConnection,
    recording: &str,
    minutes: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = if minutes {
        "UPDATE recordings SET minutes_shredded_at = $2 WHERE id = $1 AND minutes_shredded_at IS NULL"
    } else {
        "UPDATE recordings SET shredded_at = $2 WHERE id = $1 AND shredded_at IS NULL"
    };
    let changed = sqlx::query(sql)
        .bind(recording)
        .bind(now)
        .execute(connection)
        .await?
        .rows_affected();
    Ok(changed == 1)
}
