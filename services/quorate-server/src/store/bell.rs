//! Word of new jobs, so that a node's claim can wait for one (long polling) instead of the
//! node asking again every few seconds. A transaction that queues a job or hands one back
//! rings the bell when it commits ([`super::Tx::ring_job_bell`]). On PostgreSQL the ring is
//! a `NOTIFY` sent with the commit, which every replica hears through a `LISTEN` connection
//! of its own; on SQLite, which one process serves, it rings in that process.
//!
//! The bell only says "look again": a claim that hears it claims as usual, so a ring heard
//! by many waiting claims hands out each job once, and a ring lost (a `LISTEN` connection
//! that broke) costs at most the rest of a wait.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, OnceCell};

use crate::config::SecretUrl;

/// Longest a claim waits for this replica's `LISTEN` connection to be made.
const LISTEN_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The PostgreSQL channel the bell rings on.
pub(super) const CHANNEL: &str = "quorate_jobs";

/// This process's bell: the claims waiting here, and on PostgreSQL the connection that
/// hears the other replicas' rings.
#[derive(Debug, Clone)]
pub struct JobBell(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    rung: Notify,
    rings: AtomicU64,
    waiting: AtomicUsize,
    stopped: AtomicBool,
    /// The database to `LISTEN` on; `None` on SQLite.
    postgres: Option<SecretUrl>,
    /// The task that listens, started by the first claim that waits.
    listening: OnceCell<tokio::task::AbortHandle>,
}

impl JobBell {
    /// A bell for one process; `postgres` names the database whose `NOTIFY`s it hears.
    pub(super) fn new(postgres: Option<SecretUrl>) -> Self {
        Self(Arc::new(Inner {
            rung: Notify::new(),
            rings: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            postgres,
            listening: OnceCell::new(),
        }))
    }

    /// Wakes every claim waiting in this process.
    pub(crate) fn ring(&self) {
        self.0.ring();
    }

    /// How often this process has heard of a job (from itself or, on PostgreSQL, from any
    /// replica) since it started.
    pub fn rings(&self) -> u64 {
        self.0.rings.load(Ordering::Relaxed)
    }

    /// How many claims wait in this process now.
    pub fn waiting(&self) -> usize {
        self.0.waiting.load(Ordering::Relaxed)
    }

    /// Ends every wait, now and from now on (the server is shutting down: a claim that
    /// waits would hold its shutdown back).
    pub(crate) fn stop_waits(&self) {
        self.0.stopped.store(true, Ordering::Relaxed);
        self.ring();
    }

    /// Whether waits have been ended.
    pub(crate) fn stopped(&self) -> bool {
        self.0.stopped.load(Ordering::Relaxed)
    }

    /// Counts a claim as waiting until the returned guard is dropped; on PostgreSQL, first
    /// makes sure this process hears the other replicas' rings (so that no ring sent from now
    /// on is missed).
    pub(crate) async fn wait_here(&self) -> Result<Waiting, sqlx::Error> {
        if let Some(url) = &self.0.postgres
            && !self.stopped()
        {
            // Bounded, so that a database that does not answer holds neither the claim nor
            // a shutdown for long.
            tokio::time::timeout(
                LISTEN_CONNECT_TIMEOUT,
                self.0
                    .listening
                    .get_or_try_init(|| listen(url, Arc::downgrade(&self.0))),
            )
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        }
        self.0.waiting.fetch_add(1, Ordering::Relaxed);
        Ok(Waiting(self.clone()))
    }

    /// The next ring, to be awaited after looking for a job: it is armed before the look,
    /// so a ring during the look is not lost.
    pub(crate) fn next_ring(&self) -> std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>> {
        let mut ring = Box::pin(self.0.rung.notified());
        ring.as_mut().enable();
        ring
    }

    /// Stops listening (the database is closing).
    pub(super) fn close(&self) {
        self.stop_waits();
        if let Some(task) = self.0.listening.get() {
            task.abort();
        }
    }
}

impl Inner {
    fn ring(&self) {
        self.rings.fetch_add(1, Ordering::Relaxed);
        self.rung.notify_waiters();
    }
}

/// A claim counted as waiting; dropping it stops counting.
#[derive(Debug)]
pub(crate) struct Waiting(JobBell);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connects to `url`, listens on [`CHANNEL`] and leaves a task ringing `bell` at each
/// notification until the bell is gone.
async fn listen(
    url: &SecretUrl,
    bell: std::sync::Weak<Inner>,
) -> Result<tokio::task::AbortHandle, sqlx::Error> {
    let mut listener = PgListener::connect(url.expose_secret()).await?;
    listener.listen(CHANNEL).await?;
    let task = tokio::spawn(async move {
        loop {
            let heard = listener.try_recv().await;
            let Some(bell) = bell.upgrade() else { return };
            match heard {
                Ok(Some(_)) => {}
                // The connection broke and was made again: rings sent meanwhile were lost,
                // so every waiting claim looks again.
                Ok(None) => {
                    tracing::warn!("the connection that hears of new jobs broke and was made again")
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot hear of new jobs; trying again in a second");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
            bell.ring();
        }
    });
    Ok(task.abort_handle())
}
