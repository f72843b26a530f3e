//! Limits on failed sign-ins per client address: after too many failures from one address in
//! a window, that address gets no new challenge (429) until the window passes. Failures are
//! never counted against a member: anyone who knows a vault ID and a fingerprint can answer
//! that member's challenges wrongly, and a limit per member would let them lock the member
//! out. A valid signature always signs in, so the limit only slows a client down; guessing
//! an Ed25519 signature gains nothing anyway. The counts are in the database
//! (`store::limits`), so the limit holds across replicas behind a balancer.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::StatusCode;

use crate::{App, error::ApiError, now, store};

/// Failures allowed per client address in one window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 50;
/// The window, in seconds.
pub const WINDOW_SECONDS: i64 = 15 * 60;

/// What an address is counted as: an IPv6 address by its /64, the block one host is
/// usually given, so that walking through it does not escape the limit.
fn counted_as(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
    .to_string()
}

/// Refuses when `address` has used up its failures in the current window.
pub async fn check(app: &App, address: IpAddr) -> Result<(), ApiError> {
    let now = now();
    let mut connection = app.db.connection().await?;
    let counted =
        store::limits::failures_since(&mut connection, &counted_as(address), now - WINDOW_SECONDS)
            .await?;
    match counted {
        Some((started, failures)) if failures as u32 >= MAX_FAILURES_PER_ADDRESS => {
            let wait = (started + WINDOW_SECONDS - now).max(1);
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
pub async fn record_failure(app: &App, address: IpAddr) -> Result<(), ApiError> {
    let now = now();
    let mut connection = app.db.connection().await?;
    store::limits::record_failure(
        &mut connection,
        &counted_as(address),
        now,
        now - WINDOW_SECONDS,
    )
    .await?;
    Ok(())
}

/// Removes the counts of windows that have passed at `now`; returns how many.
pub async fn sweep(app: &App, now: i64) -> Result<usize, ApiError> {
    let mut connection = app.db.connection().await?;
    Ok(store::limits::sweep(&mut connection, now - WINDOW_SECONDS).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_address_counts_as_its_64_block() {
        assert_eq!(
            counted_as("2001:db8:1:2::1".parse().unwrap()),
            "2001:db8:1:2::"
        );
        assert_eq!(
            counted_as("2001:db8:1:2::ffff".parse().unwrap()),
            counted_as("2001:db8:1:2::1".parse().unwrap())
        );
        assert_ne!(
            counted_as("2001:db8:1:3::1".parse().unwrap()),
            counted_as("2001:db8:1:2::1".parse().unwrap())
        );
        assert_eq!(counted_as("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
