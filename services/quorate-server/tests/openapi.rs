//! The OpenAPI document: served at `/api/v1/openapi.json`, equal to the committed
//! `docs/openapi.json` (the contract the web client is generated from; regenerate with
//! `QUORATE_BLESS=1`), and true to the server: every operation it marks as needing a session
//! answers 401 without one, and every operation it does not mark answers without asking for one.

mod common;

use quorate_server::test_support::{Backend, TestApp};
use serde_json::Value;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_committed_document_is_current() {
    let current = quorate_server::openapi_document().to_pretty_json().unwrap() + "\n";
    let path = committed_path();
    if std::env::var_os("QUORATE_BLESS").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .expect("docs/openapi.json exists (QUORATE_BLESS=1 cargo test -p quorate-server --test openapi writes it)");
    assert!(
        committed == current,
        "docs/openapi.json is out of date: run QUORATE_BLESS=1 cargo test -p quorate-server --test openapi and commit it"
    );
}

#[tokio::test]
async fn the_served_document_describes_the_server() {
    let server = TestApp::start(Backend::Sqlite).await;
    let http = reqwest::Client::new();
    let served: Value = http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let built = serde_json::to_value(quorate_server::openapi_document()).unwrap();
    assert_eq!(served, built);

    let vault = uuid::Uuid::new_v4().to_string();
    let mut operations = 0;
    for (path, item) in served["paths"].as_object().unwrap() {
        let url = server.url(
            &path
                .replace("{vault}", &vault)
                .replace("{node}", &uuid::Uuid::new_v4().to_string())
                .replace("{recording}", &uuid::Uuid::new_v4().to_string()),
        );
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let id = &operation["operationId"];
            assert!(
                operation["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|status| status.starts_with('2')),
                "{id} documents a success"
            );
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let mut request = http.request(method.clone(), &url);
            if operation.get("requestBody").is_some() {
                request = request.json(&serde_json::json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = if method == reqwest::Method::HEAD {
                serde_json::json!({ "code": "unauthenticated" })
            } else {
                response.json().await.unwrap()
            };
            let needs_session = operation.get("security").is_some();
            if needs_session {
                assert_eq!(
                    (status, body["code"].as_str()),
                    (401, Some("unauthenticated")),
                    "{id}"
                );
            } else {
                assert!(
                    (400..500).contains(&status) && status != 401,
                    "{id}: {status} {body}"
                );
            }
            assert!(
                operation["responses"].get(status.to_string()).is_some(),
                "{id} answered {status}, which its description does not list"
            );
        }
    }
    assert!(operations >= 12, "{operations} operations");
    server.stop().await;
}
