//! `quorate-node run` as a long-running service: the server stops and starts again (between
//! jobs and in the middle of one) and the node goes on and finishes its job under the lease
//! it holds; SIGTERM stops it cleanly, between jobs, or in the middle of one by handing the
//! job back (not failed, the attempt not counted) for its next run.

use quorate_client::Client;
use quorate_e2e::{
    Backend, Server, Staffed,
    background::{Door, Running},
    identity,
};
use quorate_server::test_support::{TestDb, TestServer};

/// Stops `server` and starts another on the same database behind the shut `door`, which
/// opens again once the node has said it is trying again.
async fn restart_once_the_node_retries(
    server: TestServer,
    db: &TestDb,
    door: &mut Door,
    node: &mut Running,
) -> TestServer {
    door.shut().await;
    server.stop().await;
    node.wait_for("Trying again in").await;
    let restarted = TestServer::start(db).await;
    door.reopen(restarted.address).await;
    restarted
}

/// A vault with its node approved, every device and the node reaching the server through a
/// door; and a client of the admin's, through it too.
async fn staffed_behind_a_door(app: &Server) -> (Staffed, Door, Client) {
    let mut staffed = Staffed::new(app).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let door = Door::open(app.address).await;
    for device in std::iter::once(&mut staffed.admin).chain(&mut staffed.members) {
        device.server = door.url();
    }
    staffed.machine.server = door.url();
    let mut watcher = Client::new(&door.url());
    watcher
        .sign_in(app.codes[0].vault_id, &identity(&staffed.admin))
        .await
        .unwrap();
    (staffed, door, watcher)
}

#[tokio::test]
async fn a_node_finishes_its_job_through_server_restarts_and_stops_on_sigterm() {
    let app = Server::start(Backend::Sqlite).await;
    let vault = app.codes[0].vault_id;
    let (staffed, mut door, watcher) = staffed_behind_a_door(&app).await;
    let Server { mut server, db } = app;
    let mut node = Running::start(staffed.machine.command(&["run"]));
    node.wait_for("waiting for jobs").await;

    // Between jobs: the server goes away; the node says so, tries again, and is back.
    server = restart_once_the_node_retries(server, &db, &mut door, &mut node).await;
    let request = staffed
        .half_approved_request("The committee agreed to repair the library roof in spring.")
        .await;
    staffed.members[0].ok(&["approve", &request, "--yes"]).await;

    // In the middle of the job: the server goes away again after the node claimed it.
    node.wait_for("Claimed job").await;
    server = restart_once_the_node_retries(server, &db, &mut door, &mut node).await;
    node.wait_for("done: transcript").await;
    let jobs = watcher.jobs(vault).await.unwrap();
    assert_eq!(
        (jobs[0].status.as_str(), jobs[0].attempts),
        ("done", 1),
        "finished under the lease it claimed"
    );
    assert_eq!(watcher.transcripts(vault).await.unwrap().len(), 1);

    // Between jobs, SIGTERM ends it cleanly.
    let (code, said) = node.terminate().await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("Stopped."), "{said}");
    door.shut().await;
    Server { server, db }.stop().await;
}

#[tokio::test]
async fn a_node_stopped_mid_job_hands_the_job_back_to_its_next_run() {
    let app = Server::start(Backend::Sqlite).await;
    let vault = app.codes[0].vault_id;
    let (staffed, _door, watcher) = staffed_behind_a_door(&app).await;
    let spoken = "The council met on Tuesday. The treasurer presented the accounts, the members \
        discussed the new bridge over the river, and the chair closed the meeting at nine.";
    let request = staffed.half_approved_request(spoken).await;
    staffed.members[0].ok(&["approve", &request, "--yes"]).await;

    let mut node = Running::start(staffed.machine.command(&["run"]));
    node.wait_for("Claimed job").await;
    let (code, said) = node.terminate().await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("handed back unfinished"), "{said}");
    let jobs = watcher.jobs(vault).await.unwrap();
    assert_eq!(
        (jobs[0].status, jobs[0].attempts),
        (quorate_api::JobStatus::Queued, 0),
        "back in the queue, not failed, the attempt not counted: {:?}",
        jobs[0]
    );
    assert!(watcher.transcripts(vault).await.unwrap().is_empty());
    let audit = watcher.audit_page(vault, None, 1000).await.unwrap();
    assert!(audit.iter().any(|entry| entry.action == "job.returned"));

    // The next run takes the job at once, without waiting for a lease to lapse.
    staffed.machine.ok(&["run", "--once"]).await;
    let jobs = watcher.jobs(vault).await.unwrap();
    assert_eq!(
        (jobs[0].status, jobs[0].attempts),
        (quorate_api::JobStatus::Done, 1)
    );
    app.stop().await;
}
