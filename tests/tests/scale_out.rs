//! Scale-out with real processes: two `quorate-server` replicas on one PostgreSQL database
//! and one S3-compatible store (s3s-fs), behind Debian's Caddy as the balancer, as
//! `infra/compose/compose.scale.yaml` runs them. The members enrol, are approved and sign in
//! through the balancer; a recording is being uploaded through it when the replica serving
//! the upload is killed (SIGKILL), and the member's command, run again, resumes through the
//! balancer on the other replica until the recording is complete.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use quorate_e2e::Device;
use quorate_e2e::caddy::{Caddy, free_port};
use quorate_server::test_support::{Backend, S3Server, TestDb};
use sqlx::Connection;
use tokio::io::AsyncBufReadExt;

/// A server replica as an operator runs it: its own process and data folder, the shared
/// database and bucket.
struct Replica {
    process: tokio::process::Child,
    address: SocketAddr,
    _folder: tempfile::TempDir,
}

/// Starts a replica on `db` and `s3`; returns it with the first-admin code it printed, if
/// any (each start replaces the code of a vault that has no admin yet).
async fn replica(db: &TestDb, s3: &S3Server) -> (Replica, Option<String>) {
    let folder = tempfile::tempdir().unwrap();
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut process =
        tokio::process::Command::new(quorate_e2e::binary("quorate-server", "quorate-server"))
            .arg("serve")
            .env("QUORATE_LISTEN", address.to_string())
            .env("QUORATE_DATA_DIR", folder.path())
            .env("QUORATE_DATABASE_URL", db.url.expose_secret())
            .env("QUORATE_OBJECT_STORE", s3.url.expose_secret())
            .env("QUORATE_TRUSTED_PROXIES", "127.0.0.1")
            .env("QUORATE_METRICS_LISTEN", "off")
            .env("QUORATE_WEB_DIR", "off")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
    // It prints its code (when it makes one), then where its API is once it listens.
    let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
    let mut code = None;
    let mut after_header = false;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the replica says where it listens within 30 s")
        .unwrap()
    {
        if line.starts_with("First-admin enrolment code") {
            after_header = true;
        } else if after_header && code.is_none() && line.starts_with("    ") {
            code = Some(line.trim().to_owned());
        } else if line.starts_with("API at") || line.starts_with("Web UI at") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    for _ in 0..200 {
        if let Ok(answer) = reqwest::get(format!("http://{address}/readyz")).await
            && answer.status() == 200
        {
            let replica = Replica {
                process,
                address,
                _folder: folder,
            };
            return (replica, code);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replica at {address} never became ready");
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
    let (mut first, _) = replica(&db, &s3).await;
    let (second, code) = replica(&db, &s3).await;
    let code = code.expect("the last replica to start printed the first admin's code");
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
    // The audit log, written by both replicas, is one chain.
    ada.ok(&["audit", "verify"]).await;
    drop(second);
    db.drop_database().await;
}
