//! Scale-out with real processes: two `quorate-server` replicas on one PostgreSQL database
//! and one S3-compatible store (s3s-fs), behind Debian's Caddy as the balancer, as
//! `infra/compose/compose.scale.yaml` runs them. The members enrol, are approved and sign in
//! through the balancer; a recording is being uploaded through it when the replica serving
//! the upload is killed (SIGKILL), and the member's command, run again, resumes through the
//! balancer on the other replica until the recording is complete. Then a node transcribes
//! and releases it: its claim waits on one replica and is woken by a quorum reached on the
//! other (PostgreSQL's NOTIFY), and the votes of the release race across the replicas.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use quorate_e2e::Device;
use quorate_e2e::background::Running;
use quorate_e2e::caddy::{Caddy, free_port};
use quorate_e2e::server_process::ServerProcess;
use quorate_server::test_support::{Backend, S3Server, TestDb};
use sqlx::Connection;

/// A replica as `infra/compose/compose.scale.yaml` runs it: its own process and data
/// folder, the shared database and bucket, the balancer trusted to name clients.
async fn replica(db: &TestDb, s3: &S3Server) -> ServerProcess {
    replica_at(
        format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        db,
        s3,
    )
    .await
}

/// As [`replica`], listening at `address`.
async fn replica_at(address: SocketAddr, db: &TestDb, s3: &S3Server) -> ServerProcess {
    let settings = [
        ("QUORATE_DATABASE_URL", db.url.expose_secret()),
        ("QUORATE_OBJECT_STORE", s3.url.expose_secret()),
        ("QUORATE_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    ServerProcess::start_at(address, &settings).await
}

/// Caddy on `port`, sending every request to the first replica while it answers and to the
/// next when it does not (so the test knows which replica an upload runs on): each replica's
/// `/readyz` checked every second, and a request that fails tried on another.
fn balancer(folder: &Path, port: u16, replicas: &[SocketAddr]) -> Caddy {
    let upstreams: Vec<String> = replicas.iter().map(ToString::to_string).collect();
    let config = format!(
        "{{\n\tadmin off\n\tauto_https off\n}}\n:{port} {{\n\treverse_proxy {} {{\n\
         \t\tlb_policy first\n\t\tlb_try_duration 10s\n\t\tfail_duration 30s\n\
         \t\thealth_uri /readyz\n\t\thealth_interval 1s\n\t}}\n}}\n",
        upstreams.join(" ")
    );
    Caddy::start(folder, &config, port)
}

/// A member invited by `admin`, enrolled and approved through the balancer at `url`.
async fn member(url: &str, admin: &Device, name: &str) -> Device {
    let (device, joined) = quorate_e2e::pending_member_at(url, admin, name).await;
    admin
        .ok(&[
            "members",
            "approve",
            joined["fingerprint"].as_str().unwrap(),
        ])
        .await;
    device
}

/// Whether a PATCH holds an upload in the shared database now.
async fn patch_under_way(db: &TestDb) -> bool {
    let mut connection = sqlx::PgConnection::connect(db.url.expose_secret())
        .await
        .unwrap();
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM uploads WHERE locked_until >= EXTRACT(EPOCH FROM now())::BIGINT",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    held > 0
}

#[tokio::test]
async fn postgres_replicas_behind_a_balancer_survive_one_killed_mid_upload() {
    let db = TestDb::new(Backend::Postgres).await;
    let s3 = S3Server::start().await;
    let mut first = replica(&db, &s3).await;
    let second = replica(&db, &s3).await;
    let code = second
        .code
        .clone()
        .expect("the last replica to start printed the first admin's code");
    let folder = tempfile::tempdir().unwrap();
    let port = free_port();
    let _balancer = balancer(folder.path(), port, &[first.address, second.address]);
    let url = format!("http://127.0.0.1:{port}");

    let ada = Device::at(&url);
    ada.ok(&["keygen"]).await;
    ada.ok(&["enroll", "--code", &code, "--name", "Ada"]).await;
    ada.ok(&["policy", "set", "--threshold", "2"]).await;
    let bo = member(&url, &ada, "Bo").await;
    let cy = member(&url, &ada, "Cy").await;

    // About 9.6 MiB, sent at 1 MiB/s: the upload is under way on the first replica when it
    // is killed.
    let file = bo.folder.path().join("Long meeting.wav");
    std::fs::write(&file, quorate_e2e::wav(300)).unwrap();
    let file = file.to_str().unwrap();
    let upload = [
        "--json",
        "upload",
        file,
        "--title",
        "Long meeting",
        "--limit-rate",
        "1M",
    ];
    let mut uploading = bo.command(&upload).spawn().unwrap();
    let mut waited = 0;
    while !patch_under_way(&db).await {
        waited += 1;
        assert!(waited < 300, "the upload never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.process.start_kill().unwrap();
    first.process.wait().await.unwrap();
    let interrupted = uploading.wait().await.unwrap();
    assert!(
        !interrupted.success(),
        "the upload ended before the replica was killed"
    );

    // The same command again resumes through the balancer, now on the second replica (once
    // the killed replica's hold on the upload lapses, within a minute).
    let mut completed = false;
    for _ in 0..30 {
        if completed {
            break;
        }
        completed = bo.run(&upload).await.code == 0;
        if !completed {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    assert!(
        completed,
        "the upload did not complete through the second replica"
    );
    let recordings = cy.ok(&["--json", "recordings"]).await.json();
    let listed = recordings.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{recordings}");
    assert_eq!(listed[0]["title"], "Long meeting");
    assert_eq!(listed[0]["status"], "complete", "{recordings}");

    // The killed replica is restarted where it was, and the rest of the flow runs.
    let first = replica_at(first.address, &db, &s3).await;
    minutes_across_replicas(&url, [&first, &second], [&ada, &bo, &cy]).await;
    // The audit log, written by both replicas, is one chain.
    ada.ok(&["audit", "verify"]).await;
    drop((first, second));
    db.drop_database().await;
}

/// The rest of the flow, with a node: a spoken recording through the balancer at `url`; the
/// node waits for jobs on the first replica while the approvals go through the second, so
/// that only the second's NOTIFY can wake it before its 50 s wait is up; then the two
/// approvals of the release race, one through each replica; the minutes are read and
/// searched through the balancer.
async fn minutes_across_replicas(
    url: &str,
    [first, second]: [&ServerProcess; 2],
    [ada, bo, cy]: [&Device; 3],
) {
    let (machine, node_id) = quorate_e2e::enrol_node_at(url, ada).await;
    let model = quorate_e2e::import_model(&machine).await;
    quorate_e2e::approve_node(ada, &machine, &node_id, &model).await;
    let spoken = "The council voted to repair the bridge over the river.";
    let (uploaded, _) = quorate_e2e::upload_speech(cy, spoken, "Bridge committee").await;
    let recording = uploaded["recording_id"].as_str().unwrap();
    let (at_first, at_second) = (
        format!("http://{}", first.address),
        format!("http://{}", second.address),
    );
    let mut node =
        Running::start(machine.command(&["--server", &at_first, "run", "--wait-seconds", "50"]));
    node.wait_for("waiting for jobs").await;

    let asked = quorate_e2e::ask(cy, recording, &node_id, "transcribe", "the minutes").await;
    ada.ok_at(&at_second, &["approve", &asked, "--yes"]).await;
    bo.ok_at(&at_second, &["approve", &asked, "--yes"]).await;
    tokio::time::timeout(Duration::from_secs(30), node.wait_for("Claimed job"))
        .await
        .expect("the node's waiting claim is woken by the other replica");
    node.wait_for("done: transcript").await;

    let asked = quorate_e2e::ask(cy, recording, &node_id, "release-transcript", "publish").await;
    let approve = ["--json", "approve", &asked, "--yes"];
    let (by_ada, by_bo) = tokio::join!(
        ada.ok_at(&at_first, &approve),
        bo.ok_at(&at_second, &approve)
    );
    let statuses = [
        by_ada.json()["status"].clone(),
        by_bo.json()["status"].clone(),
    ];
    assert!(
        statuses.contains(&"open".into()) && statuses.contains(&"quorate".into()),
        "the later of the racing votes saw both: {statuses:?}"
    );
    node.wait_for("released to").await;
    let minutes = cy
        .ok(&["transcript", recording, "--format", "txt"])
        .await
        .stdout
        .to_lowercase();
    assert!(minutes.contains("bridge"), "{minutes}");
    let searched = bo.ok(&["--json", "search", "bridge"]).await.json();
    assert_eq!(searched["total"], 1, "{searched}");
    let (code, said) = node.terminate().await;
    assert_eq!(code, Some(0), "{said}");
}
