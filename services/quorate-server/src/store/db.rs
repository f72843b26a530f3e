//! The database: SQLite (WAL) or PostgreSQL, chosen by the URL's scheme, reached through
//! sqlx's `Any` driver so each query is written once (with `$N` placeholders, which both
//! accept). Migrations live per backend under `migrations/`, with the same version numbers.

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::AnyPoolOptions,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode},
};

use super::{audit::Linking, bell::JobBell};
use crate::config::SecretUrl;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A connection pool with its backend.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    linking: Arc<Linking>,
    bell: JobBell,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The URL's scheme is neither SQLite nor PostgreSQL.
    #[error("unsupported database URL {0}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(SecretUrl),
    /// The SQLite file's folder could not be created.
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl Db {
    /// Connects to `url`. For SQLite the file (and its folder) is created when missing.
    pub async fn connect(url: &SecretUrl) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let text = url.expose_secret();
        let backend = if text.starts_with("sqlite:") {
            Backend::Sqlite
        } else if text.starts_with("postgres:") || text.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.clone()));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => {
                let sqlite = SqliteConnectOptions::from_str(text)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                if let Some(folder) = sqlite
                    .get_filename()
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(folder).map_err(|source| DbError::Folder {
                        path: folder.display().to_string(),
                        source,
                    })?;
                }
                // Opening once with the SQLite options creates the file in WAL mode; the Any
                // pool then reuses it, with the pragmas set again on every connection.
                sqlx::SqlitePool::connect_with(sqlite).await?.close().await;
                options
                    .max_connections(4)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(text)
                    .await?
            }
            Backend::Postgres => options.max_connections(16).connect(text).await?,
        };
        let bell = JobBell::new((backend == Backend::Postgres).then(|| url.clone()));
        Ok(Self {
            pool,
            backend,
            linking: Arc::default(),
            bell,
        })
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Which vaults' waiting audit entries are being linked in the background.
    pub(super) fn linking(&self) -> &Arc<Linking> {
        &self.linking
    }

    /// Word of new jobs for claims that wait (see [`super::bell`]).
    pub fn job_bell(&self) -> &JobBell {
        &self.bell
    }

    /// Closes every connection, ending the claims that wait.
    pub async fn close(&self) {
        self.bell.close();
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 0011 rebuilds `recordings` and `uploads` on SQLite; with foreign keys on,
    /// dropping the old tables would have deleted every share and upload part with them.
    #[tokio::test]
    async fn rebuilding_the_recording_tables_keeps_what_refers_to_them() {
        let folder = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/quorate.db", folder.path().display());
        let db = Db::connect(&SecretUrl::new(url)).await.unwrap();
        let before_live_uploads = Migrator {
            migrations: SQLITE_MIGRATIONS
                .migrations
                .iter()
                .filter(|migration| migration.version < 11)
                .cloned()
                .collect(),
            ..Migrator::DEFAULT
        };
        before_live_uploads.run(db.pool()).await.unwrap();
        for sql in [
            "INSERT INTO vaults (id, name, created_at) VALUES ('v', 'Board', 1)",
            "INSERT INTO recordings (id, vault_id, uploader, manifest, manifest_digest, ciphertext_len,
             threshold_k, threshold_n, status, created_at) VALUES ('r', 'v', 'u', x'01', x'02', 10, 1, 1, 'uploading', 1)",
            "INSERT INTO recording_shares (recording_id, member, share_index, sealed) VALUES ('r', 'm', 1, x'03')",
            "INSERT INTO uploads (recording_id, upload_offset, upload_length, expires_at) VALUES ('r', 0, 10, 5)",
            "INSERT INTO upload_parts (recording_id, part_number, part_id) VALUES ('r', 1, 'p')",
        ] {
            sqlx::query(sql).execute(db.pool()).await.unwrap();
        }
        db.migrate().await.unwrap();
        for table in ["recordings", "recording_shares", "uploads", "upload_parts"] {
            let count: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            assert_eq!(count, 1, "{table} lost its row");
        }
        let violations: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(db.pool())
                .await
                .unwrap_or_default();
        assert!(violations.is_empty(), "{violations:?}");
        // The rebuilt tables keep their cascade: deleting the recording removes the rest.
        sqlx::query("DELETE FROM recordings WHERE id = 'r'")
            .execute(db.pool())
            .await
            .unwrap();
        let parts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM upload_parts")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(parts, 0);
        db.close().await;
    }
}
