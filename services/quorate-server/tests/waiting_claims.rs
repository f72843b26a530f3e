//! A node's claim that waits for a job (long polling), on SQLite and PostgreSQL: it is
//! answered as soon as a quorum queues the node's job, when a job is handed back, and when a
//! lease of the node's lapses, not when its wait runs out; a wait out of range is refused;
//! stopping the server ends the waits at once. (Waits on another replica, woken by
//! PostgreSQL's NOTIFY, are in `quorum.rs`'s two-server test.)

mod common;

use std::time::Duration;

use common::{
    flow::{approve, member, open_request, uploaded, voting},
    refused,
};
use quorate_api::JobClaim;
use quorate_client::{Client, ClientError};
use quorate_server::test_support::{Backend, TestServer};

/// Longer than any test here waits for an answer: a claim answered is one that was woken.
const WAIT: Duration = Duration::from_secs(50);

/// A claim by `node` that waits up to [`WAIT`], running on its own.
fn waiting_claim(node: &Client) -> tokio::task::JoinHandle<Result<Option<JobClaim>, ClientError>> {
    let node = node.clone();
    tokio::spawn(async move { node.claim_job_waiting(WAIT).await })
}

/// Returns once `server` holds a waiting claim (so that what the test does next happens
/// during the wait).
async fn until_waiting(server: &TestServer) {
    while server.app.db.job_bell().waiting() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What `claim` answers, which must come within half of its wait.
async fn answered(
    claim: tokio::task::JoinHandle<Result<Option<JobClaim>, ClientError>>,
) -> Option<JobClaim> {
    tokio::time::timeout(WAIT / 2, claim)
        .await
        .expect("the waiting claim is answered before its wait runs out")
        .unwrap()
        .unwrap()
}

quorate_server::per_backend!(a_waiting_claim_is_answered_as_soon_as_a_job_is_there);

async fn a_waiting_claim_is_answered_as_soon_as_a_job_is_there(backend: Backend) {
    let (db, server, board, node) = voting(backend).await;
    let vault = board.admin.vault;
    assert_eq!(
        refused(node.client.claim_job_waiting(Duration::from_secs(51)).await),
        (400, "invalid_wait".into())
    );
    let (made, _) = uploaded(&board, 1, 2).await;
    let (signed, request_id) = open_request(&board, 2, &made, node.id, 3600).await;
    let vote = |voter: usize| {
        let (board, made, signed, node) = (&board, &made, &signed, &node.identity);
        async move {
            let (share, vote) = approve(board, voter, made, signed, node).await;
            member(board, voter)
                .1
                .vote(vault, request_id, &vote, Some(&share))
                .await
                .unwrap();
        }
    };
    vote(0).await;

    // The node waits when the second approval makes the request quorate.
    let claim = waiting_claim(&node.client);
    until_waiting(&server).await;
    vote(3).await;
    let claimed = answered(claim).await.expect("the job just queued");
    assert_eq!(claimed.request_id, request_id.to_string());

    // Handed back (its node stopping), the job answers the next claim that waits.
    let claim = waiting_claim(&node.client);
    until_waiting(&server).await;
    node.client
        .return_job(&claimed.request_id, &claimed.lease_token)
        .await
        .unwrap();
    let again = answered(claim).await.expect("the job handed back");
    assert_eq!(again.request_id, claimed.request_id);

    // A lease about to lapse (its node died): the claim waits for the lapse.
    sqlx::query("UPDATE jobs SET lease_expires_at = $1")
        .bind(quorate_server::now() + 1)
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let retaken = answered(waiting_claim(&node.client))
        .await
        .expect("the job whose lease lapsed");
    assert_eq!(
        (retaken.request_id.as_str(), retaken.attempt),
        (claimed.request_id.as_str(), 2)
    );

    // Stopping the server answers the claims that wait, so the stop is not held back.
    let claim = waiting_claim(&node.client);
    until_waiting(&server).await;
    tokio::time::timeout(WAIT / 2, server.stop())
        .await
        .expect("the server stops without waiting out the claim");
    assert!(answered(claim).await.is_none());
    db.drop_database().await;
}
