//! What keeps a long-running device (`quorate-node run`, `quorate watch`) going through a
//! server that restarts or a network that drops, and stops it cleanly when asked: transient
//! failures are tried again with a capped exponential backoff and a log line each time;
//! SIGTERM or ctrl-c ends every wait at once.

use std::{future::Future, time::Duration};

use crate::{ClientError, DeviceError};
use tokio::sync::watch;

/// The first wait after a transient failure.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest wait: a server back after an outage is found within this long.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// Why the run ends before its work is done.
#[derive(Debug)]
pub enum Halt {
    /// SIGTERM or ctrl-c: what the operator asked for, not a failure.
    Stopped,
    /// A failure that trying again will not mend: the node stops with it.
    Failed(DeviceError),
}

impl From<DeviceError> for Halt {
    fn from(error: DeviceError) -> Self {
        Self::Failed(error)
    }
}

impl From<ClientError> for Halt {
    fn from(error: ClientError) -> Self {
        Self::Failed(error.into())
    }
}

/// Waits that double from [`FIRST_DELAY`] up to [`MAX_DELAY`].
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_DELAY }
    }
}

impl Backoff {
    /// The wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }
}

/// Whether the device was asked to stop: set once by SIGTERM or ctrl-c, and looked at between
/// jobs, during every wait and by a transcription in progress.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Listens for SIGTERM and ctrl-c from now on.
    pub fn on_signals() -> Self {
        let (asked, stop) = watch::channel(false);
        tokio::spawn(async move {
            signalled().await;
            eprintln!("Stopping: asked to (SIGTERM or ctrl-c).");
            let _ = asked.send(true);
        });
        Self(stop)
    }

    /// A stop that never comes (for tests).
    #[cfg(test)]
    fn never() -> (watch::Sender<bool>, Self) {
        let (asked, stop) = watch::channel(false);
        (asked, Self(stop))
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once a stop is asked for.
    pub async fn asked(&self) {
        let mut stop = self.0.clone();
        // The sender goes only after it said stop (or when the runtime ends): the value
        // read then is `true`, so an error here is a stop too.
        let _ = stop.wait_for(|asked| *asked).await;
    }

    /// Sleeps for `delay`, or less when a stop comes first.
    pub async fn sleep(&self, delay: Duration) -> Result<(), Halt> {
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            () = self.asked() => Err(Halt::Stopped),
        }
    }

    /// Runs `work` unless a stop comes first: then it is dropped where it waits.
    pub async fn unless_stopped<T>(
        &self,
        work: impl Future<Output = Result<T, Halt>>,
    ) -> Result<T, Halt> {
        tokio::select! {
            biased;
            () = self.asked() => Err(Halt::Stopped),
            done = work => done,
        }
    }
}

/// Completes on SIGTERM or ctrl-c. A signal that cannot be listened for is said once and
/// never completes this (the other still can).
async fn signalled() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            eprintln!("warning: cannot listen for ctrl-c ({error}); stop it with SIGTERM");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                eprintln!("warning: cannot listen for SIGTERM ({error}); stop it with ctrl-c");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Calls `call` until it succeeds, fails in a way that trying again will not mend (a refused
/// check, a 4xx), or the device is asked to stop. Each transient failure (the server down or
/// restarting, the network, a timeout, a 5xx) is logged and tried again after a backoff.
/// `what` names the step for the log, as in "could not {what}".
pub async fn retrying<T, E, F, Fut>(what: &str, stop: &Stop, mut call: F) -> Result<T, Halt>
where
    E: Into<DeviceError>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::default();
    loop {
        let error: DeviceError = match stop.unless_stopped(async { Ok(call().await) }).await? {
            Ok(done) => return Ok(done),
            Err(error) => error.into(),
        };
        if !error.is_transient() {
            return Err(Halt::Failed(error));
        }
        let delay = backoff.next_delay();
        eprintln!(
            "warning: could not {what}: {error}. Trying again in {} s.",
            delay.as_secs()
        );
        stop.sleep(delay).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..9).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_tried_again_until_one_succeeds() {
        let (_asked, stop) = Stop::never();
        let calls = AtomicUsize::new(0);
        let done = retrying("test", &stop, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(DeviceError::Unreachable("connection refused".into())),
                1 => Err(DeviceError::Server {
                    status: 503,
                    code: "unavailable".into(),
                    message: "restarting".into(),
                }),
                _ => Ok("claimed"),
            }
        })
        .await;
        assert_eq!(done.unwrap(), "claimed");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_not_tried_again() {
        let (_asked, stop) = Stop::never();
        let calls = AtomicUsize::new(0);
        let done: Result<(), Halt> = retrying("test", &stop, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(DeviceError::Refused("a bad signature".into()))
        })
        .await;
        assert!(matches!(done, Err(Halt::Failed(DeviceError::Refused(_)))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_retries() {
        let (asked, stop) = Stop::never();
        let calls = AtomicUsize::new(0);
        let done: Result<(), Halt> = retrying("test", &stop, || {
            if calls.fetch_add(1, Ordering::SeqCst) == 2 {
                asked.send(true).unwrap();
            }
            async { Err(DeviceError::Unreachable("connection refused".into())) }
        })
        .await;
        assert!(matches!(done, Err(Halt::Stopped)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
