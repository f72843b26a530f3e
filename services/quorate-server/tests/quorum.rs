//! Unlock requests, votes and the job queue through the HTTP API, on SQLite and PostgreSQL
//! and on both stores: members vote with their share re-sealed to an approved node, the
//! request turns quorate at k valid approvals, the node claims the job with a lease, opens
//! the shares, reads the recording, and stores a sealed transcript once. Bad votes are
//! refused and change nothing. Two servers on one PostgreSQL and one s3s-fs serve one flow.

mod common;

use quorate_server::test_support::S3Server;

use common::{
    Board,
    flow::{
        MODEL, approve, approved_node, deny, member, open_request, request, seal_transcript,
        unlock, uploaded, voting,
    },
    make_recording, refused,
};
use quorate_api::JobStatus;
use quorate_client::Client;
use quorate_crypto::{
    Identity, RequestId, TranscriptId, envelope,
    statement::{Decision, SignedStatement, TranscriptManifest, UnlockRequest, Vote},
    threshold::{self, Subject},
};
use quorate_server::test_support::{Backend, TestDb, TestServer};
use sqlx::Row;

/// Request `request`'s job, as the vault's jobs list shows it.
async fn job(
    client: &Client,
    vault: quorate_crypto::VaultId,
    request: &str,
) -> quorate_api::JobView {
    client
        .jobs(vault)
        .await
        .unwrap()
        .into_iter()
        .find(|job| job.request_id == request)
        .expect("the request's job")
}

quorate_server::per_backend!(
    a_request_turns_quorate_and_its_node_transcribes_once,
    sqlite_local(Backend::Sqlite, false),
    postgres_s3(Backend::Postgres, true)
);

async fn a_request_turns_quorate_and_its_node_transcribes_once(backend: Backend, s3: bool) {
    let s3_server = if s3 {
        Some(S3Server::start().await)
    } else {
        None
    };
    let db = TestDb::new(backend).await;
    let server = match &s3_server {
        Some(s3) => TestServer::start_on(&db, &s3.url).await,
        None => TestServer::start(&db).await,
    };
    let board = Board::new(&server, 3, 2).await;
    let vault = board.admin.vault;
    let node = approved_node(&server.url(""), &board).await;
    assert!(
        node.client.claim_job().await.unwrap().is_none(),
        "nothing queued yet"
    );
    let (made, plaintext) = uploaded(&board, 1, 2).await;

    // Member 2 asks; the others see it awaiting their vote, the requester does not.
    let signed = request(&board, 2, &made, node.id, 3600);
    let request_id = signed
        .verify::<UnlockRequest>()
        .unwrap()
        .statement
        .request_id;
    let opened = member(&board, 2)
        .1
        .create_request(vault, &signed)
        .await
        .unwrap();
    assert_eq!(
        (opened.status.as_str(), opened.threshold, opened.eligible),
        ("open", 2, 3)
    );
    for voter in [0, 1, 3] {
        assert_eq!(
            member(&board, voter)
                .1
                .requests(vault, true)
                .await
                .unwrap()
                .len(),
            1,
            "{backend:?}: member {voter}"
        );
    }
    assert!(
        member(&board, 2)
            .1
            .requests(vault, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        refused(member(&board, 2).1.create_request(vault, &signed).await),
        (409, "request_exists".into())
    );

    // Bad votes change nothing.
    let (own_share, own_vote) = approve(&board, 2, &made, &signed, &node.identity).await;
    assert_eq!(
        vote_refused(&board, 2, request_id, &own_vote, Some(&own_share)).await,
        (403, "own_request".into()),
        "the requester's own vote does not count"
    );
    let other = request(&board, 2, &made, node.id, 3600);
    member(&board, 2)
        .1
        .create_request(vault, &other)
        .await
        .unwrap();
    let (replay_share, replayed) = approve(&board, 3, &made, &other, &node.identity).await;
    assert_eq!(
        vote_refused(&board, 3, request_id, &replayed, Some(&replay_share)).await,
        (400, "invalid_statement".into()),
        "a vote for another request"
    );
    let (share0, vote0) = approve(&board, 0, &made, &signed, &node.identity).await;
    assert_eq!(
        vote_refused(&board, 3, request_id, &vote0, Some(&share0)).await,
        (400, "invalid_statement".into()),
        "someone else's vote"
    );
    assert_eq!(
        vote_refused(&board, 0, request_id, &vote0, Some(&replay_share)).await,
        (400, "invalid_share".into()),
        "a re-sealed share the vote does not name"
    );
    assert_eq!(
        vote_refused(&board, 0, request_id, &vote0, None).await,
        (400, "invalid_share".into())
    );
    let stranger = Identity::generate();
    let mut forged = signed.verify::<UnlockRequest>().unwrap();
    forged.statement.requester = stranger.fingerprint();
    let by_stranger = SignedStatement::sign(
        &Vote {
            vault_id: vault,
            request_id,
            request_digest: forged.digest,
            voter: stranger.fingerprint(),
            decision: Decision::Deny,
            comment: String::new(),
            issued_at: 1,
        },
        &stranger,
    );
    assert_eq!(
        vote_refused(&board, 0, request_id, &by_stranger, None).await,
        (400, "invalid_statement".into()),
        "a non-member's vote"
    );
    let view = member(&board, 0)
        .1
        .request(vault, request_id)
        .await
        .unwrap();
    assert_eq!((view.approvals, view.denials, view.votes.len()), (0, 0, 0));

    // Two valid approvals: quorate, and a job waits for the node.
    let after_one = member(&board, 0)
        .1
        .vote(vault, request_id, &vote0, Some(&share0))
        .await
        .unwrap();
    assert_eq!(
        (after_one.status.as_str(), after_one.approvals),
        ("open", 1)
    );
    assert_eq!(
        vote_refused(&board, 0, request_id, &vote0, Some(&share0)).await,
        (409, "already_voted".into())
    );
    let (share3, vote3) = approve(&board, 3, &made, &signed, &node.identity).await;
    let quorate = member(&board, 3)
        .1
        .vote(vault, request_id, &vote3, Some(&share3))
        .await
        .unwrap();
    assert_eq!((quorate.status.as_str(), quorate.approvals), ("quorate", 2));
    let (share1, vote1) = approve(&board, 1, &made, &signed, &node.identity).await;
    assert_eq!(
        vote_refused(&board, 1, request_id, &vote1, Some(&share1)).await,
        (409, "request_closed".into())
    );
    let jobs = board.admin.client.jobs(vault).await.unwrap();
    assert_eq!((jobs.len(), jobs[0].status.as_str()), (1, "queued"));

    // The node claims it, rebuilds the key from the two re-sealed shares, reads the
    // recording and decrypts it in memory.
    let claim = node.client.claim_job().await.unwrap().expect("a job");
    assert_eq!(
        (
            claim.request_id.as_str(),
            claim.attempt,
            claim.approvals.len()
        ),
        (request_id.to_string().as_str(), 1, 2)
    );
    let (key, manifest, signed_manifest) = unlock(&claim, &node.identity);
    let mut ciphertext = Vec::new();
    node.client
        .download_recording(vault, made.id, None, u64::MAX, &mut ciphertext)
        .await
        .unwrap();
    let mut heard = Vec::new();
    envelope::decrypt(&ciphertext[..], &mut heard, &key).unwrap();
    assert!(
        heard == plaintext,
        "{backend:?}: the node hears the recording"
    );
    node.client
        .job_progress(&claim.request_id, &claim.lease_token, 300, "transcribing")
        .await
        .unwrap();
    assert!(
        node.client.claim_job().await.unwrap().is_none(),
        "a leased job is not handed out twice"
    );

    // The lease lapses (the node died): the next claim gets the job again; the old lease
    // is dead.
    sqlx::query("UPDATE jobs SET lease_expires_at = $1")
        .bind(quorate_server::now() - 1)
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let again = node.client.claim_job().await.unwrap().expect("re-queued");
    assert_eq!(again.attempt, 2);
    assert_eq!(
        refused(
            node.client
                .job_progress(&claim.request_id, &claim.lease_token, 500, "transcribing")
                .await
        ),
        (409, "lease_lost".into())
    );

    // A manifest naming another model is refused; the right one is stored once.
    let words =
        b"{\"segments\":[{\"start\":0.0,\"end\":2.5,\"text\":\"The budget is approved.\"}]}";
    let (wrong_model, sealed, shares, _) = seal_transcript(
        &again,
        &node,
        &manifest,
        &signed_manifest,
        &board.roster,
        words,
        [7; 32],
    );
    assert_eq!(
        refused(
            node.client
                .complete_job(
                    &again.request_id,
                    &again.lease_token,
                    &wrong_model,
                    &sealed,
                    &shares
                )
                .await
        ),
        (400, "invalid_statement".into())
    );
    let (transcript_manifest, sealed, shares, transcript_key) = seal_transcript(
        &again,
        &node,
        &manifest,
        &signed_manifest,
        &board.roster,
        words,
        MODEL,
    );
    let stored = node
        .client
        .complete_job(
            &again.request_id,
            &again.lease_token,
            &transcript_manifest,
            &sealed,
            &shares,
        )
        .await
        .unwrap();
    let retried = node
        .client
        .complete_job(
            &again.request_id,
            &again.lease_token,
            &transcript_manifest,
            &sealed,
            &shares,
        )
        .await
        .unwrap();
    assert_eq!(stored, retried, "completion is idempotent");
    let transcripts = board.admin.client.transcripts(vault).await.unwrap();
    assert_eq!(transcripts.len(), 1, "{backend:?}: exactly one transcript");
    let jobs = board.admin.client.jobs(vault).await.unwrap();
    assert_eq!(
        (jobs[0].status.as_str(), jobs[0].transcript_id.as_deref()),
        ("done", Some(stored.transcript_id.as_str()))
    );
    assert!(node.client.claim_job().await.unwrap().is_none());

    // Members fetch their share of the transcript key and the sealed transcript.
    let transcript_id: TranscriptId = stored.transcript_id.parse().unwrap();
    let share = board
        .admin
        .client
        .transcript_share(vault, transcript_id)
        .await
        .unwrap();
    let tm = transcript_manifest
        .verify::<TranscriptManifest>()
        .unwrap()
        .statement;
    let binding = tm
        .split
        .binding_for(
            vault,
            Subject::Transcript(transcript_id),
            &board.admin.identity.fingerprint(),
        )
        .unwrap();
    threshold::open_share(&share.sealed, board.admin.identity.age_key(), &binding).unwrap();
    let mut sealed_copy = Vec::new();
    board
        .admin
        .client
        .download_transcript(vault, transcript_id, u64::MAX, &mut sealed_copy)
        .await
        .unwrap();
    let mut read = Vec::new();
    envelope::decrypt(&sealed_copy[..], &mut read, &transcript_key).unwrap();
    assert_eq!(read, words);

    // The node can no longer read the recording: its job is done.
    assert_eq!(
        refused(
            node.client
                .download_recording(vault, made.id, None, u64::MAX, &mut Vec::new())
                .await
        )
        .0,
        404
    );
    // A job the node cannot do fails with its reason, once, and is not handed out again.
    let (second, second_id) = open_request(&board, 2, &made, node.id, 3600).await;
    for voter in [0, 1] {
        let (share, vote) = approve(&board, voter, &made, &second, &node.identity).await;
        member(&board, voter)
            .1
            .vote(vault, second_id, &vote, Some(&share))
            .await
            .unwrap();
    }
    // A node that stops mid-job hands it back: queued again, the attempt not counted, and
    // the next claim takes it at once. Only the lease's holder can hand it back, once.
    let stopped = node
        .client
        .claim_job()
        .await
        .unwrap()
        .expect("the second job");
    assert_eq!(
        refused(
            node.client
                .return_job(&stopped.request_id, "not-the-token")
                .await
        ),
        (409, "lease_lost".into())
    );
    node.client
        .return_job(&stopped.request_id, &stopped.lease_token)
        .await
        .unwrap();
    assert_eq!(
        refused(
            node.client
                .return_job(&stopped.request_id, &stopped.lease_token)
                .await
        ),
        (409, "lease_lost".into())
    );
    let returned = job(&board.admin.client, vault, &stopped.request_id).await;
    assert_eq!((returned.status, returned.attempts), (JobStatus::Queued, 0));
    let doomed = node
        .client
        .claim_job()
        .await
        .unwrap()
        .expect("the second job, handed back");
    assert_eq!(
        (doomed.request_id.as_str(), doomed.attempt),
        (stopped.request_id.as_str(), 1)
    );
    node.client
        .fail_job(
            &doomed.request_id,
            &doomed.lease_token,
            "the audio is in a format this node cannot decode",
        )
        .await
        .unwrap();
    assert_eq!(
        refused(
            node.client
                .fail_job(&doomed.request_id, &doomed.lease_token, "again")
                .await
        ),
        (409, "lease_lost".into())
    );
    let failed = job(&board.admin.client, vault, &doomed.request_id).await;
    assert_eq!(
        (failed.status.as_str(), failed.failure.as_deref()),
        (
            "failed",
            Some("the audio is in a format this node cannot decode")
        )
    );
    assert!(node.client.claim_job().await.unwrap().is_none());

    let log = common::audit_actions(&board.admin.client, vault).await;
    for expected in [
        "request.created",
        "vote.approve",
        "request.quorate",
        "job.queued",
        "job.leased",
        "transcript.stored",
        "job.returned",
        "job.failed",
    ] {
        assert!(
            log.iter().any(|action| action == expected),
            "{backend:?}: no {expected} in {log:?}"
        );
    }
    let entries = board
        .admin
        .client
        .audit_page(vault, None, 1000)
        .await
        .unwrap();
    quorate_crypto::audit::verify_chain(&entries, [0; 32]).unwrap();

    server.stop().await;
    db.drop_database().await;
}

quorate_server::per_backend!(denials_expiry_removal_and_unapproved_nodes_are_refused);

async fn denials_expiry_removal_and_unapproved_nodes_are_refused(backend: Backend) {
    let (db, server, board, node) = voting(backend).await;
    let vault = board.admin.vault;
    let (made, _) = uploaded(&board, 1, 3).await;

    // k = 3 with 3 eligible voters: one denial makes it unreachable.
    let (signed, id) = open_request(&board, 1, &made, node.id, 3600).await;
    let rejected = member(&board, 2)
        .1
        .vote(vault, id, &deny(&board, 2, &signed), None)
        .await
        .unwrap();
    assert_eq!(
        rejected.status,
        quorate_api::RequestStatus::Rejected,
        "{backend:?}"
    );
    assert!(board.admin.client.jobs(vault).await.unwrap().is_empty());

    // A request whose quorum cannot be reached is refused at once: 4-of-4, asked by a
    // holder, leaves three who can approve.
    let (everyone, _) = uploaded(&board, 1, 4).await;
    let unreachable = request(&board, 1, &everyone, node.id, 3600);
    assert_eq!(
        refused(
            member(&board, 1)
                .1
                .create_request(vault, &unreachable)
                .await
        ),
        (400, "quorum_unreachable".into())
    );

    // Expiry closes a request: a vote after it is refused.
    let (short, short_id) = open_request(&board, 2, &made, node.id, 3600).await;
    sqlx::query("UPDATE unlock_requests SET expires_at = $1 WHERE id = $2")
        .bind(quorate_server::now() - 1)
        .bind(short_id.to_string())
        .execute(server.app.db.pool())
        .await
        .unwrap();
    let (share, vote) = approve(&board, 3, &made, &short, &node.identity).await;
    assert_eq!(
        vote_refused(&board, 3, short_id, &vote, Some(&share)).await,
        (409, "request_closed".into())
    );
    assert_eq!(
        board
            .admin
            .client
            .request(vault, short_id)
            .await
            .unwrap()
            .status,
        quorate_api::RequestStatus::Expired
    );

    // A removed member's session ends, and a vote they signed is refused through anyone.
    let (open, open_id) = open_request(&board, 2, &made, node.id, 3600).await;
    let (share3, vote3) = approve(&board, 3, &made, &open, &node.identity).await;
    let roster = board
        .admin
        .client
        .roster(vault, &board.admin.pin)
        .await
        .unwrap();
    let removal = roster
        .sign_change(
            &board.admin.identity,
            quorate_crypto::statement::RosterChange::Remove,
            member(&board, 3).0.public(),
            "Member 3",
            quorate_crypto::statement::Role::Member,
            1_750_000_100,
        )
        .unwrap();
    board
        .admin
        .client
        .append_roster(vault, &removal)
        .await
        .unwrap();
    assert_eq!(
        vote_refused(&board, 3, open_id, &vote3, Some(&share3)).await,
        (401, "unauthenticated".into())
    );
    assert_eq!(
        refused(
            board
                .admin
                .client
                .vote(vault, open_id, &vote3, Some(&share3))
                .await
        ),
        (400, "invalid_statement".into())
    );

    // A node without a current approval cannot be asked for, nor claim.
    let invite = board
        .admin
        .client
        .invite(vault, quorate_api::InvitePurpose::Node)
        .await
        .unwrap();
    let pending = Identity::generate();
    let mut pending_client = Client::new(&server.url(""));
    let enrolled = pending_client
        .enrol_node(&invite.code, "unapproved", &pending.public())
        .await
        .unwrap();
    pending_client.sign_in(vault, &pending).await.unwrap();
    let to_pending = request(&board, 2, &made, enrolled.node_id.parse().unwrap(), 3600);
    assert_eq!(
        refused(member(&board, 2).1.create_request(vault, &to_pending).await),
        (400, "node_not_approved".into())
    );
    assert_eq!(
        refused(pending_client.claim_job().await),
        (403, "node_not_approved".into())
    );
    assert_eq!(
        refused(member(&board, 2).1.claim_job().await),
        (403, "nodes_only".into())
    );

    // Sweeping closes what expired and fails nothing else.
    sqlx::query("UPDATE unlock_requests SET expires_at = $1 WHERE id = $2")
        .bind(quorate_server::now() - 1)
        .bind(open_id.to_string())
        .execute(server.app.db.pool())
        .await
        .unwrap();
    assert_eq!(server.app.sweep(quorate_server::now()).await.unwrap(), 1);
    assert_eq!(
        board
            .admin
            .client
            .request(vault, open_id)
            .await
            .unwrap()
            .status,
        quorate_api::RequestStatus::Expired
    );
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM votes")
        .fetch_one(server.app.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(count, 1, "only the one valid denial was stored");
    server.stop().await;
    db.drop_database().await;
}

/// What a claim that may wait up to 50 s for a job answers.
async fn wait_for_job(
    node: Client,
) -> Result<Option<quorate_api::JobClaim>, quorate_client::ClientError> {
    node.claim_job_waiting(std::time::Duration::from_secs(50))
        .await
}

/// The same client session, pointed at another server.
fn via(server: &TestServer, client: &Client) -> Client {
    Client::new(&server.url("")).with_token(client.token().unwrap())
}

// PostgreSQL only: the test is named for it, so that `--skip postgres` leaves it out.
quorate_server::per_backend!(
    two_servers_on_one_database_and_store_serve_one_flow,
    postgres()
);

async fn two_servers_on_one_database_and_store_serve_one_flow() {
    let s3 = S3Server::start().await;
    let db = TestDb::new(Backend::Postgres).await;
    // Each start replaces an unused first-admin code, so the board enrols with the code of
    // the server started last.
    let second = TestServer::start_on(&db, &s3.url).await;
    let first = TestServer::start_on(&db, &s3.url).await;
    assert_eq!(
        first.codes[0].vault_id, second.codes[0].vault_id,
        "one vault, made once"
    );
    let board = Board::new(&first, 3, 2).await;
    let vault = board.admin.vault;
    let node = approved_node(&first.url(""), &board).await;

    // The upload starts on one server and finishes on the other (which never saw its first
    // bytes, so it reads them back to check the SHA-256).
    let plaintext: Vec<u8> = (0..(18u32 << 20)).map(|i| (i % 239) as u8).collect();
    let (uploader, uploader_client) = member(&board, 1);
    let made = make_recording(&board.roster, uploader, 2, &plaintext);
    uploader_client
        .create_recording(vault, &made.manifest, &made.shares)
        .await
        .unwrap();
    let half = made.ciphertext.len() / 2;
    uploader_client
        .upload_chunk(made.id, 0, made.ciphertext[..half].to_vec().into())
        .await
        .unwrap();
    via(&second, uploader_client)
        .resume_upload(
            made.id,
            std::io::Cursor::new(made.ciphertext.clone()),
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(board.admin.client.recordings(vault).await.unwrap().len(), 1);

    // The request through the second server.
    let signed = request(&board, 2, &made, node.id, 3600);
    let request_id = signed
        .verify::<UnlockRequest>()
        .unwrap()
        .statement
        .request_id;
    via(&second, member(&board, 2).1)
        .create_request(vault, &signed)
        .await
        .unwrap();

    // The node waits for its job on both servers at once (long polling) while the two
    // approvals race, one through each server.
    let node_there = via(&second, &node.client);
    let mut waiting_here = tokio::spawn(wait_for_job(node.client.clone()));
    let mut waiting_there = tokio::spawn(wait_for_job(node_there.clone()));
    for server in [&first, &second] {
        while server.app.db.job_bell().waiting() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let (here, there) = (
        approve(&board, 0, &made, &signed, &node.identity).await,
        approve(&board, 3, &made, &signed, &node.identity).await,
    );
    let voter_there = via(&second, member(&board, 3).1);
    let (voted_here, voted_there) = tokio::join!(
        member(&board, 0)
            .1
            .vote(vault, request_id, &here.1, Some(&here.0)),
        voter_there.vote(vault, request_id, &there.1, Some(&there.0)),
    );
    // Each vote counted under the request's lock: the later one saw both and made it quorate.
    let statuses = [voted_here.unwrap().status, voted_there.unwrap().status];
    assert!(
        statuses.contains(&quorate_api::RequestStatus::Open)
            && statuses.contains(&quorate_api::RequestStatus::Quorate),
        "{statuses:?}"
    );
    assert_eq!(
        board.admin.client.jobs(vault).await.unwrap().len(),
        1,
        "one job queued"
    );
    // The job's NOTIFY reaches both servers, the one that did not count the quorum too.
    let heard = async {
        for server in [&first, &second] {
            while server.app.db.job_bell().rings() == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), heard)
        .await
        .expect("both servers hear of the job");
    // The claims wake: the first hands the job out long before the 50 s its node asked to
    // wait, the other finds none and waits on.
    let (woken, still_waiting) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        tokio::select! {
            claimed = &mut waiting_here => (claimed, waiting_there),
            claimed = &mut waiting_there => (claimed, waiting_here),
        }
    })
    .await
    .expect("a waiting claim is woken by the job's queueing");
    let claim = &woken
        .unwrap()
        .unwrap()
        .expect("the woken claim holds the job");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !still_waiting.is_finished(),
        "the other claim found no job and waits on"
    );
    still_waiting.abort();
    let (a, b) = tokio::join!(node.client.claim_job(), node_there.claim_job());
    assert!(
        a.unwrap().is_none() && b.unwrap().is_none(),
        "one lease, whichever server gave it"
    );
    let (key, manifest, signed_manifest) = unlock(claim, &node.identity);
    let mut ciphertext = Vec::new();
    node_there
        .download_recording(vault, made.id, None, u64::MAX, &mut ciphertext)
        .await
        .unwrap();
    let mut heard = Vec::new();
    envelope::decrypt(&ciphertext[..], &mut heard, &key).unwrap();
    assert!(heard == plaintext);
    let (transcript, sealed, shares, _) = seal_transcript(
        claim,
        &node,
        &manifest,
        &signed_manifest,
        &board.roster,
        b"minutes",
        MODEL,
    );
    node_there
        .complete_job(
            &claim.request_id,
            &claim.lease_token,
            &transcript,
            &sealed,
            &shares,
        )
        .await
        .unwrap();
    assert_eq!(
        board.admin.client.transcripts(vault).await.unwrap().len(),
        1
    );
    let entries = board
        .admin
        .client
        .audit_page(vault, None, 1000)
        .await
        .unwrap();
    quorate_crypto::audit::verify_chain(&entries, [0; 32]).unwrap();

    second.stop().await;
    first.stop().await;
    db.drop_database().await;
}

/// What the server answers member `voter` of `board` who sends `vote` (with `share`) on
/// `request`: the refusal's status and code.
async fn vote_refused(
    board: &Board,
    voter: usize,
    request: RequestId,
    vote: &SignedStatement,
    share: Option<&[u8]>,
) -> (u16, String) {
    refused(
        member(board, voter)
            .1
            .vote(board.admin.vault, request, vote, share)
            .await,
    )
}
