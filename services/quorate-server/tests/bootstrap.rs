//! First start, health, restart and concurrent start, on SQLite and on PostgreSQL.

mod common;

use quorate_server::bootstrap::code_hash;
use quorate_server::test_support::{Backend, TestDb, TestServer};
use sqlx::Row;

async fn count(server: &TestServer, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(server.app.db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

quorate_server::per_backend!(first_start_creates_one_vault_and_a_code_that_a_restart_replaces);

async fn first_start_creates_one_vault_and_a_code_that_a_restart_replaces(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    assert_eq!(server.codes.len(), 1, "{backend:?}");
    let first = server.codes[0].clone();
    assert_eq!(count(&server, "SELECT COUNT(*) FROM vaults").await, 1);
    assert!(
        db.folder.path().join("objects").is_dir(),
        "the default object store is a local folder"
    );

    // Only the hash is stored.
    let stored = sqlx::query("SELECT code_hash FROM enrolment_codes")
        .fetch_all(server.app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].try_get::<Vec<u8>, _>(0).unwrap(),
        code_hash(&first.code)
    );

    let client = reqwest::Client::new();
    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        health.headers().contains_key("x-request-id"),
        "every response carries a request ID"
    );
    let traced = client
        .get(server.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        traced.headers()["x-request-id"],
        "abc-123",
        "a client's request ID is kept"
    );
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let missing = client
        .get(server.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    server.stop().await;

    let again = TestServer::start(&db).await;
    assert_eq!(
        count(&again, "SELECT COUNT(*) FROM vaults").await,
        1,
        "{backend:?}: no second vault"
    );
    assert_eq!(again.codes.len(), 1);
    assert_eq!(again.codes[0].vault_id, first.vault_id);
    assert_ne!(again.codes[0].code.as_str(), first.code.as_str());
    assert_eq!(
        count(&again, "SELECT COUNT(*) FROM enrolment_codes").await,
        1,
        "the old code is withdrawn"
    );
    again.stop().await;
    db.drop_database().await;
}

quorate_server::per_backend!(servers_starting_together_create_exactly_one_vault);

async fn servers_starting_together_create_exactly_one_vault(backend: Backend) {
    let db = TestDb::new(backend).await;
    // The first start migrates; then four servers race their bootstrap on it.
    let config = || db.settings().resolve(None, None).unwrap();
    let (app, _) = quorate_server::App::start(config()).await.unwrap();
    sqlx::query("DELETE FROM enrolment_codes")
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM vaults")
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM server_once")
        .execute(app.db.pool())
        .await
        .unwrap();
    let starts = (0..4).map(|_| quorate_server::App::start(config()));
    let results = futures_join_all(starts).await;
    for result in &results {
        assert!(result.is_ok(), "{backend:?}: {:?}", result.as_ref().err());
    }
    let vaults: i64 = sqlx::query("SELECT COUNT(*) FROM vaults")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(vaults, 1, "{backend:?}");
    app.db.close().await;
    for (started, _) in results.into_iter().flatten() {
        started.db.close().await;
    }
    db.drop_database().await;
}

/// Runs the futures concurrently on the runtime and collects their results in order.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

quorate_server::per_backend!(metrics_count_requests_by_route_on_their_own_listener);

async fn metrics_count_requests_by_route_on_their_own_listener(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = server.app.clone();
    let task = tokio::spawn(async move {
        app.serve_metrics(listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });

    let client = reqwest::Client::new();
    for _ in 0..3 {
        client.get(server.url("/healthz")).send().await.unwrap();
    }
    let vault = server.codes[0].vault_id;
    client
        .get(server.url(&format!("/api/v1/vaults/{vault}/roster")))
        .send()
        .await
        .unwrap();
    // The API port does not serve metrics.
    assert_eq!(
        client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let text = client
        .get(format!("http://{metrics_address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("quorate_http_requests_total{route=\"/healthz\",status=\"2xx\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("route=\"/api/v1/vaults/{vault}/roster\",status=\"4xx\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains(&vault.to_string()),
        "labels carry route templates, never IDs"
    );
    assert!(text.contains("quorate_sign_in_failures_total 0"));
    // The state every replica shares, from the database: a member's live upload counts.
    let board = common::Board::new(&server, 1, 1).await;
    board.members[0]
        .1
        .open_live_upload(board.admin.vault, quorate_crypto::RecordingId::random())
        .await
        .unwrap();
    // One wrong answer to a sign-in challenge.
    let mut stranger = quorate_client::Client::new(&server.url(""));
    let fingerprint = board.admin.identity.fingerprint().to_hex();
    let challenge = stranger
        .challenge(board.admin.vault, &fingerprint)
        .await
        .unwrap();
    let wrong = quorate_crypto::Identity::generate().sign_challenge(&challenge.nonce);
    assert!(
        stranger
            .answer(&challenge.challenge_id, &wrong)
            .await
            .is_err()
    );
    let text = client
        .get(format!("http://{metrics_address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains(&board.admin.vault.to_string()),
        "no IDs in labels"
    );
    for line in [
        "quorate_database_up 1",
        "quorate_sign_in_failures_total 1",
        "quorate_uploads_open{kind=\"sized\"} 0",
        "quorate_uploads_open{kind=\"live\"} 1",
        "quorate_jobs{status=\"queued\"} 0",
        "quorate_job_queue_oldest_seconds 0",
        "quorate_job_leases_lapsed 0",
        "quorate_job_claims_waiting 0",
        "quorate_job_bell_rings_total 0",
    ] {
        assert!(
            text.lines().any(|shown| shown == line),
            "no {line} in {text}"
        );
    }

    // Every metric the Grafana dashboard (infra/grafana) queries is one the server exposes.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../infra/grafana/quorate-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let exposed: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 9);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let queried: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("quorate_"))
                .collect();
            assert!(!queried.is_empty(), "{expr}");
            for metric in queried {
                assert!(
                    exposed.contains(metric),
                    "the dashboard queries {metric}, which the server does not expose"
                );
            }
        }
    }

    let _ = stop.send(());
    task.await.unwrap();
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_web_ui_is_served_from_its_folder_under_a_strict_policy_or_its_absence_explained() {
    let db = TestDb::new(Backend::Sqlite).await;

    // No UI folder (none here, and not asked for): `/` says how to get one.
    let server = TestServer::start(&db).await;
    let answer = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("scripts/run.sh"));
    server.stop().await;

    // A built UI: its files at `/`, unknown paths still the API's JSON 404.
    let web = tempfile::tempdir().unwrap();
    std::fs::create_dir(web.path().join("assets")).unwrap();
    std::fs::write(web.path().join("index.html"), "<title>Quorate</title>").unwrap();
    std::fs::write(web.path().join("assets/app.js"), "console.log(1)").unwrap();
    let server = TestServer::start_with(quorate_server::config::Settings {
        web_dir: Some(web.path().display().to_string()),
        ..db.settings()
    })
    .await;
    let index = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(index.status(), 200);
    let headers = index.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(index.text().await.unwrap(), "<title>Quorate</title>");
    let script = reqwest::get(server.url("/assets/app.js")).await.unwrap();
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(
        script.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(script.text().await.unwrap(), "console.log(1)");
    // The build's gzip copy goes to a browser that accepts gzip, with the file's type.
    std::fs::write(web.path().join("assets/app.js.gz"), b"gzip bytes").unwrap();
    let compressed = reqwest::Client::new()
        .get(server.url("/assets/app.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    assert!(
        compressed.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(compressed.bytes().await.unwrap().as_ref(), b"gzip bytes");
    for missing in ["/api/v1/nothing", "/assets/missing.js"] {
        let answer = reqwest::get(server.url(missing)).await.unwrap();
        assert_eq!(answer.status(), 404, "{missing}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{missing}");
    }
    // The API is unchanged beside it.
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    server.stop().await;

    // A folder without index.html is refused at start, with what to do.
    let empty = tempfile::tempdir().unwrap();
    let config = quorate_server::config::Settings {
        web_dir: Some(empty.path().display().to_string()),
        ..db.settings()
    }
    .resolve(None, None)
    .unwrap();
    let error = quorate_server::App::start(config).await.unwrap_err();
    assert!(error.to_string().contains("has no index.html"), "{error}");
    db.drop_database().await;
}

// PostgreSQL only: the test is named for it, so that `--skip postgres` leaves it out.
quorate_server::per_backend!(
    a_database_password_is_never_printed_wherever_the_url_holds_it,
    postgres()
);

async fn a_database_password_is_never_printed_wherever_the_url_holds_it() {
    // PostgreSQL takes its password in the URL's user part or as a `password` parameter
    // (trust authentication here ignores it, so the URL still connects).
    let db = TestDb::new(Backend::Postgres).await;
    let base = db.url.expose_secret().to_owned();
    let (scheme, rest) = base.split_once("://").unwrap();
    let (_, host_and_db) = rest.split_once('@').unwrap();
    for url in [
        format!("{scheme}://postgres:pw-in-user-part@{host_and_db}"),
        format!("{base}?password=pw-in-query"),
        format!("{base}?application_name=quorate&pass%77ord=pw-encoded"),
        format!("{scheme}://postgres@{host_and_db}?password=pw@with-at"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_quorate-server"))
            .args(["migrate", "--database-url", &url, "--web-dir", "off"])
            .args(["--data-dir", db.folder.path().to_str().unwrap()])
            .env_remove("QUORATE_CONFIG")
            .output()
            .unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{url}: {shown}");
        assert!(shown.contains("migrations applied to"), "{shown}");
        assert!(
            !shown.contains("pw-") && !shown.contains("with-at"),
            "{shown}"
        );
        assert!(shown.contains("***"), "{shown}");
    }
    db.drop_database().await;
}
