//! Re-shares: `reshares`, `reshare_deals`, `reshare_subshares` and `reshare_acceptances`,
//! and the swap of a subject's sealed shares (`recording_shares` or `transcript_shares`)
//! when a re-share completes.

use sqlx::AnyConnection;

/// What a re-share redistributes: a recording's key or a transcript's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shared<'a> {
    Recording(&'a str),
    Transcript(&'a str),
}

impl Shared<'_> {
    /// The subject's ID.
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Recording(id) | Self::Transcript(id) => id,
        }
    }

    /// Its column in `reshares`, and its share table with that table's subject column.
    fn tables(&self) -> (&'static str, &'static str) {
        match self {
            Self::Recording(_) => ("recording_id", "recording_shares"),
            Self::Transcript(_) => ("transcript_id", "transcript_shares"),
        }
    }
}

/// A re-share as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Reshare {
    pub id: String,
    pub roster_head: String,
    /// Fingerprints (hex), space-separated, in share order.
    pub holders: String,
    pub current_k: i32,
    pub new_k: i32,
    pub generation: i32,
    pub recording_id: Option<String>,
    pub transcript_id: Option<String>,
    pub completed_at: Option<i64>,
}

impl Reshare {
    /// The new holders in share order.
    pub(crate) fn holder_list(&self) -> Vec<String> {
        self.holders.split(' ').map(str::to_owned).collect()
    }

    /// What it redistributes.
    pub(crate) fn shared(&self) -> Shared<'_> {
        match (&self.recording_id, &self.transcript_id) {
            (Some(recording), _) => Shared::Recording(recording),
            (None, Some(transcript)) => Shared::Transcript(transcript),
            // The table's CHECK keeps exactly one set.
            (None, None) => Shared::Transcript(""),
        }
    }
}

const RESHARE_COLUMNS: &str = "id, roster_head, holders, current_k, new_k, generation, recording_id, transcript_id, completed_at";

/// Re-share `id` of `vault`, open or not.
pub(crate) async fn by_id(
    connection: &mut AnyConnection,
    vault: &str,
    id: &str,
) -> Result<Option<Reshare>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RESHARE_COLUMNS} FROM reshares WHERE vault_id = $1 AND id = $2"
    )))
    .bind(vault)
    .bind(id)
    .fetch_optional(connection)
    .await
}

/// The signed manifest of the subject, if `vault` has it (a complete, unshredded
/// recording, or a transcript).
pub(crate) async fn manifest(
    connection: &mut AnyConnection,
    vault: &str,
    subject: Shared<'_>,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let query = match subject {
        Shared::Recording(_) => {
            "SELECT manifest FROM recordings WHERE vault_id = $1 AND id = $2
               AND status = 'complete' AND shredded_at IS NULL"
        }
        Shared::Transcript(_) => "SELECT manifest FROM transcripts WHERE vault_id = $1 AND id = $2",
    };
    sqlx::query_scalar(query)
        .bind(vault)
        .bind(subject.id())
        .fetch_optional(connection)
        .await
}

/// The subject's open re-share, if one is.
pub(crate) async fn open(
    connection: &mut AnyConnection,
    subject: Shared<'_>,
) -> Result<Option<Reshare>, sqlx::Error> {
    let (column, _) = subject.tables();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RESHARE_COLUMNS} FROM reshares WHERE {column} = $1 AND completed_at IS NULL"
    )))
    .bind(subject.id())
    .fetch_optional(connection)
    .await
}

/// The deals of every completed re-share of the subject, one list per re-share, oldest
/// first; each list in dealer order.
pub(crate) async fn history(
    connection: &mut AnyConnection,
    subject: Shared<'_>,
) -> Result<Vec<Vec<Vec<u8>>>, sqlx::Error> {
    let (column, _) = subject.tables();
    let rows: Vec<(i32, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.generation, d.statement FROM reshares r JOIN reshare_deals d ON d.reshare_id = r.id
         WHERE r.{column} = $1 AND r.completed_at IS NOT NULL ORDER BY r.generation, d.dealer"
    )))
    .bind(subject.id())
    .fetch_all(connection)
    .await?;
    let mut generations: Vec<(i32, Vec<Vec<u8>>)> = Vec::new();
    for (generation, statement) in rows {
        match generations.last_mut() {
            Some((last, deals)) if *last == generation => deals.push(statement),
            _ => generations.push((generation, vec![statement])),
        }
    }
    Ok(generations.into_iter().map(|(_, deals)| deals).collect())
}

/// The new k of the subject's last completed re-share, if it has one.
pub(crate) async fn current_k(
    connection: &mut AnyConnection,
    subject: Shared<'_>,
) -> Result<Option<i32>, sqlx::Error> {
    let (column, _) = subject.tables();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT new_k FROM reshares WHERE {column} = $1 AND completed_at IS NOT NULL
         ORDER BY generation DESC LIMIT 1"
    )))
    .bind(subject.id())
    .fetch_optional(connection)
    .await
}

/// Opens a re-share of the subject as the next generation; `false` when one is open.
pub(crate) async fn insert(
    connection: &mut AnyConnection,
    vault: &str,
    subject: Shared<'_>,
    reshare: &Reshare,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (column, _) = subject.tables();
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO reshares (id, vault_id, {column}, roster_head, holders, current_k, new_k,
                               generation, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
    )))
    .bind(&reshare.id)
    .bind(vault)
    .bind(subject.id())
    .bind(&reshare.roster_head)
    .bind(&reshare.holders)
    .bind(reshare.current_k)
    .bind(reshare.new_k)
    .bind(reshare.generation)
    .bind(now)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The generation the subject's next re-share takes.
pub(crate) async fn next_generation(
    connection: &mut AnyConnection,
    subject: Shared<'_>,
) -> Result<i32, sqlx::Error> {
    let (column, _) = subject.tables();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COALESCE(MAX(generation) + 1, 1) AS next FROM reshares WHERE {column} = $1"
    )))
    .bind(subject.id())
    .fetch_one(connection)
    .await
}

/// The deals stored for a re-share, in dealer order.
pub(crate) async fn deals(
    connection: &mut AnyConnection,
    reshare: &str,
) -> Result<Vec<(i32, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT dealer, statement FROM reshare_deals WHERE reshare_id = $1 ORDER BY dealer",
    )
    .bind(reshare)
    .fetch_all(connection)
    .await
}

/// Stores a deal with the sub-shares it sealed (holder, sealed); `false` when the dealer
/// has dealt into this re-share already.
pub(crate) async fn insert_deal(
    connection: &mut AnyConnection,
    reshare: &str,
    dealer: u8,
    statement: &[u8],
    subshares: &[(String, Vec<u8>)],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO reshare_deals (reshare_id, dealer, statement, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(reshare)
    .bind(i32::from(dealer))
    .bind(statement)
    .bind(now)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if inserted != 1 {
        return Ok(false);
    }
    for (holder, sealed) in subshares {
        sqlx::query(
            "INSERT INTO reshare_subshares (reshare_id, dealer, holder, sealed) VALUES ($1, $2, $3, $4)",
        )
        .bind(reshare)
        .bind(i32::from(dealer))
        .bind(holder)
        .bind(sealed)
        .execute(&mut *connection)
        .await?;
    }
    Ok(true)
}

/// The sub-shares sealed to `holder` in a re-share: (dealer, sealed), in dealer order.
pub(crate) async fn subshares_for(
    connection: &mut AnyConnection,
    reshare: &str,
    holder: &str,
) -> Result<Vec<(i32, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT dealer, sealed FROM reshare_subshares WHERE reshare_id = $1 AND holder = $2
         ORDER BY dealer",
    )
    .bind(reshare)
    .bind(holder)
    .fetch_all(connection)
    .await
}

/// Stores a new holder's new share; `false` when they sent one already.
pub(crate) async fn insert_acceptance(
    connection: &mut AnyConnection,
    reshare: &str,
    holder: &str,
    index: usize,
    sealed: &[u8],
    commitments: &[u8],
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO reshare_acceptances (reshare_id, holder, share_index, sealed, commitments)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(reshare)
    .bind(holder)
    .bind(index as i32)
    .bind(sealed)
    .bind(commitments)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The new shares sent so far: (holder, index, sealed, commitments).
pub(crate) async fn acceptances(
    connection: &mut AnyConnection,
    reshare: &str,
) -> Result<Vec<(String, i32, Vec<u8>, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT holder, share_index, sealed, commitments FROM reshare_acceptances
         WHERE reshare_id = $1 ORDER BY share_index",
    )
    .bind(reshare)
    .fetch_all(connection)
    .await
}

/// Replaces the subject's sealed shares with a completed re-share's new ones, marks it
/// complete with the commitments every new holder computed, and deletes its sub-shares and
/// the new shares' staging rows. Call inside the transaction that checked them.
pub(crate) async fn complete(
    connection: &mut AnyConnection,
    subject: Shared<'_>,
    reshare: &str,
    commitments: &[u8],
    now: i64,
) -> Result<(), sqlx::Error> {
    // A share table's subject column is named as in `reshares`.
    let (subject_column, shares) = subject.tables();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {shares} WHERE {subject_column} = $1"
    )))
    .bind(subject.id())
    .execute(&mut *connection)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {shares} ({subject_column}, member, share_index, sealed)
         SELECT $1, holder, share_index, sealed FROM reshare_acceptances WHERE reshare_id = $2"
    )))
    .bind(subject.id())
    .bind(reshare)
    .execute(&mut *connection)
    .await?;
    sqlx::query("UPDATE reshares SET completed_at = $1, commitments = $2 WHERE id = $3")
        .bind(now)
        .bind(commitments)
        .bind(reshare)
        .execute(&mut *connection)
        .await?;
    for table in ["reshare_subshares", "reshare_acceptances"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE reshare_id = $1"
        )))
        .bind(reshare)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// The open re-shares of `vault`: (re-share, its subject's ID).
pub(crate) async fn open_in_vault(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, COALESCE(recording_id, transcript_id) FROM reshares
         WHERE vault_id = $1 AND completed_at IS NULL ORDER BY id",
    )
    .bind(vault)
    .fetch_all(connection)
    .await
}

/// Deletes an open re-share with everything dealt and sent into it.
pub(crate) async fn abandon(
    connection: &mut AnyConnection,
    reshare: &str,
) -> Result<(), sqlx::Error> {
    for table in ["reshare_subshares", "reshare_acceptances", "reshare_deals"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE reshare_id = $1"
        )))
        .bind(reshare)
        .execute(&mut *connection)
        .await?;
    }
    sqlx::query("DELETE FROM reshares WHERE id = $1 AND completed_at IS NULL")
        .bind(reshare)
        .execute(connection)
        .await?;
    Ok(())
}

/// The current holders of the subject's shares by index: (index, member).
pub(crate) async fn current_holders(
    connection: &mut AnyConnection,
    subject: Shared<'_>,
) -> Result<Vec<(i32, String)>, sqlx::Error> {
    let (column, shares) = subject.tables();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT share_index, member FROM {shares} WHERE {column} = $1 ORDER BY share_index"
    )))
    .bind(subject.id())
    .fetch_all(connection)
    .await
}

/// The complete, unshredded recordings and the transcripts of `vault`, each with its
/// signed manifest: what a re-share may redistribute.
pub(crate) async fn subjects(
    connection: &mut AnyConnection,
    vault: &str,
) -> Result<Vec<(String, String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT 'recording' AS kind, id, manifest FROM recordings
         WHERE vault_id = $1 AND status = 'complete' AND shredded_at IS NULL
         UNION ALL
         SELECT 'transcript' AS kind, id, manifest FROM transcripts WHERE vault_id = $1
         ORDER BY kind, id",
    )
    .bind(vault)
    .fetch_all(connection)
    .await
}
