//! The Quorate API server as a library: `main` parses arguments, loads the configuration and
//! calls [`App::start`] then [`App::serve`]; tests call the same functions on port 0.
//!
//! The server stores ciphertext, sealed shares, signed statements and blind tokens. It holds
//! no key and sees no plaintext; every statement it stores it verifies with
//! `quorate-crypto`, but no client relies on that.

pub mod blobs;
pub mod bootstrap;
pub mod config;
pub mod error;
mod http;
pub mod limits;
pub mod metrics;
mod ops;
pub mod store;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod tls;

use std::future::Future;

use tokio::net::TcpListener;

pub use crate::store::db;
pub use crate::{
    bootstrap::EnrolmentCode, config::Config, db::Db, error::ApiError, http::openapi_document,
};
// Paths the tests and benches name.
pub use crate::http::{auth, release, search};

/// Shared state of a running server.
#[derive(Debug, Clone)]
pub struct App {
    /// The database.
    pub db: Db,
    /// The blob store (ciphertext only).
    pub blobs: blobs::Blobs,
    /// The configuration.
    pub config: Config,
    /// Prometheus counters.
    pub metrics: std::sync::Arc<metrics::Metrics>,
    /// Running hashes of uploads in progress on this instance.
    pub hashers: std::sync::Arc<ops::uploads::Hashers>,
    /// Verified rosters, by vault.
    pub rosters: std::sync::Arc<ops::roster::Rosters>,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The object store could not be opened.
    #[error(transparent)]
    Blobs(#[from] blobs::BlobError),
    /// The web UI's folder holds no `index.html`.
    #[error(
        "the web UI folder {0} has no index.html: build it (scripts/run.sh does) or pass --web-dir off"
    )]
    NoWebUi(std::path::PathBuf),
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(#[from] std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

impl App {
    /// Connects to the database, applies migrations and runs the first-start bootstrap.
    /// Returns the enrolment codes to show the operator.
    pub async fn start(config: Config) -> Result<(Self, Vec<EnrolmentCode>), StartError> {
        if let Some(dir) = &config.web_dir
            && !dir.join("index.html").is_file()
        {
            return Err(StartError::NoWebUi(dir.clone()));
        }
        if let Some(files) = &config.tls {
            // Refused before anything else starts, rather than once the codes are shown.
            tls::check(files)?;
        }
        let blobs = blobs::Blobs::open(&config.object_store)?;
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let codes = bootstrap::run(&db, now(), config.enrolment_code_ttl).await?;
        Ok((
            Self {
                db,
                blobs,
                config,
                metrics: Default::default(),
                hashers: Default::default(),
                rosters: Default::default(),
            },
            codes,
        ))
    }

    /// Housekeeping that time calls for: links audit entries a crash left waiting, discards
    /// uploads left alone past their expiry,
    /// closes requests past theirs, fails jobs whose request expired or whose lease was lost
    /// too often, deletes expired sign-in challenges and sessions, and shreds what retention
    /// rules say is due. `serve` runs it every
    /// few minutes; returns how many things it changed.
    pub async fn sweep(&self, now: i64) -> Result<usize, ApiError> {
        Ok(ops::uploads::sweep(self, now).await?
            + ops::requests::expire(self, now).await?
            + ops::jobs::sweep(self, now).await?
            + auth::sweep(self, now).await?
            + store::audit::link_all_waiting(&self.db).await?
            + self.shred_due(now).await?)
    }

    /// Shreds what the vaults' retention rules say is due at `now` and no legal hold
    /// covers, each with its receipt in the audit log (the sweep runs it); returns how many
    /// parts (a recording's key, or its minutes) it shredded.
    pub async fn shred_due(&self, now: i64) -> Result<usize, ApiError> {
        Ok(ops::retention::shred_due(self, now).await?)
    }

    /// Sweeps every five minutes until `stopped` says to stop; a sweep that has begun runs to
    /// its end first.
    async fn sweep_until(self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopped.changed() => return,
            }
            if let Err(error) = self.sweep(now()).await {
                tracing::warn!(%error, "housekeeping failed; it runs again in five minutes");
            }
        }
    }

    /// Serves Prometheus metrics (`GET /metrics`) on `listener` until `shutdown` completes.
    pub async fn serve_metrics(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        axum::serve(listener, metrics::router(self.clone()))
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }

    /// Serves the API on `listener` until `shutdown` completes, then finishes the requests
    /// in flight and closes the database. With [`Config::tls`] it serves HTTPS.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let db = self.db.clone();
        let (stop_sweeping, stopped) = tokio::sync::watch::channel(false);
        let sweeper = tokio::spawn(self.clone().sweep_until(stopped));
        // Claims waiting for a job end at once, so that they do not hold the shutdown back.
        let bell = db.job_bell().clone();
        let shutdown = async move {
            shutdown.await;
            bell.stop_waits();
        };
        let served = match self.config.tls.clone() {
            Some(files) => match tls::TlsListener::new(listener, files) {
                Ok(listener) => serve_on(listener, self, shutdown).await,
                Err(error) => Err(StartError::Tls(error)),
            },
            None => serve_on(listener, self, shutdown).await,
        };
        // A sweep in progress finishes its step (each of its changes is one transaction)
        // before the database closes.
        let _ = stop_sweeping.send(true);
        if let Err(error) = sweeper.await {
            tracing::warn!(%error, "housekeeping ended abnormally");
        }
        db.close().await;
        served
    }
}

/// Serves `app`'s API on `listener` (plain TCP or TLS) until `shutdown` completes.
async fn serve_on<L>(
    listener: L,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    use axum::serve::ListenerExt;
    // Tapped (to do nothing) because axum gives the peer's address, which the sign-in
    // limits need, for any tapped listener but for no untapped one besides `TcpListener`.
    let listener = listener.tap_io(|_| {});
    axum::serve(
        listener,
        http::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}
