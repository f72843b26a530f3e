//! Limits on failed sign-ins, per key and per client address: after too many failures in a
//! window, further attempts are refused (429) until the window passes, even correct ones, so
//! guessing gains nothing. Counts are kept in memory per server instance.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::StatusCode;

use crate::error::ApiError;

/// Failures allowed per key in one window.
pub const MAX_FAILURES_PER_KEY: u32 = 10;
/// Failures allowed per client address in one window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 50;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failure counters by name (`key:<fingerprint>`, `address:<ip>`).
#[derive(Debug, Default)]
pub struct FailureLimits {
    windows: Mutex<HashMap<String, Window>>,
}

impl FailureLimits {
    /// Refuses when `name` has used up its `max` failures in the current window.
    pub fn check(&self, name: &str, max: u32) -> Result<(), ApiError> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        windows.retain(|_, window| now.duration_since(window.started) < WINDOW);
        match windows.get(name) {
            Some(window) if window.failures >= max => {
                let wait = WINDOW
                    .saturating_sub(now.duration_since(window.started))
                    .as_secs()
                    .max(1);
                Err(ApiError::Client {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "too_many_attempts",
                    message: format!("too many failed sign-ins: try again in {wait} seconds"),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure for `name`.
    pub fn record_failure(&self, name: &str) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let window = windows.entry(name.to_owned()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit() {
        let limits = FailureLimits::default();
        for _ in 0..3 {
            limits.check("key:a", 3).unwrap();
            limits.record_failure("key:a");
        }
        assert!(limits.check("key:a", 3).is_err());
        assert!(limits.check("key:b", 3).is_ok());
    }
}
