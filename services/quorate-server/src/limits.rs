//! Limits on failed sign-ins per client address: after too many failures from one address in
//! a window, that address gets no new challenge (429) until the window passes. Failures are
//! never counted against a member: anyone who knows a vault ID and a fingerprint can answer
//! that member's challenges wrongly, and a limit per member would let them lock the member
//! out. A valid signature always signs in, so the limit only slows a client down; guessing
//! an Ed25519 signature gains nothing anyway. Counts are kept in memory per server instance.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::StatusCode;

use crate::error::ApiError;

/// Failures allowed per client address in one window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 50;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failure counters by client address.
#[derive(Debug, Default)]
pub struct FailureLimits {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

/// What an address is counted as: an IPv6 address by its /64, the block one host is
/// usually given, so that walking through it does not escape the limit.
fn counted_as(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

impl FailureLimits {
    /// Refuses when `address` has used up its failures in the current window.
    pub fn check(&self, address: IpAddr) -> Result<(), ApiError> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        windows.retain(|_, window| now.duration_since(window.started) < WINDOW);
        match windows.get(&counted_as(address)) {
            Some(window) if window.failures >= MAX_FAILURES_PER_ADDRESS => {
                let wait = WINDOW
                    .saturating_sub(now.duration_since(window.started))
                    .as_secs()
                    .max(1);
                Err(ApiError::Client {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "too_many_attempts",
                    message: format!(
                        "too many failed sign-ins from this address: try again in {wait} seconds"
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure for `address`.
    pub fn record_failure(&self, address: IpAddr) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let window = windows.entry(counted_as(address)).or_insert(Window {
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
    fn refuses_after_the_limit_per_address_and_ipv6_block() {
        let limits = FailureLimits::default();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_ADDRESS {
            limits.check(one).unwrap();
            limits.record_failure(one);
        }
        assert!(limits.check(one).is_err());
        assert!(
            limits.check("2001:db8:1:2::ffff".parse().unwrap()).is_err(),
            "the same /64"
        );
        assert!(limits.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
        assert!(limits.check("192.0.2.1".parse().unwrap()).is_ok());
    }
}
