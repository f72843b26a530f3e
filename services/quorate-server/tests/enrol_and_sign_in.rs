//! The first admin enrols with the bootstrap code and a self-signed genesis entry, signs in
//! by challenge-response, reads and verifies the roster, and logs out — on SQLite and on
//! PostgreSQL — plus the bad inputs of those steps, each refused with the right 4xx and
//! nothing stored.

mod common;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::{BACKENDS, TestDb, TestServer};
use quorate_api::{Challenge, Enrolled, ErrorBody, Me, RosterChain, Session};
use quorate_crypto::{Identity, VaultId, roster::Roster, statement::SignedStatement};
use serde_json::json;
use sqlx::Row;

struct Client {
    http: reqwest::Client,
    server: String,
}

impl Client {
    fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::new(),
            server: server.url(""),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1{path}", self.server))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1{path}", self.server))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn enrol(&self, code: &str, genesis: &SignedStatement) -> reqwest::Response {
        self.post(
            "/enrol/first-admin",
            json!({ "code": code, "genesis": STANDARD.encode(genesis.to_bytes()) }),
        )
        .await
    }

    async fn sign_in(&self, vault: &str, identity: &Identity) -> reqwest::Response {
        let challenge: Challenge = self
            .post(
                "/auth/challenge",
                json!({ "vault_id": vault, "fingerprint": identity.fingerprint().to_hex() }),
            )
            .await
            .json()
            .await
            .unwrap();
        let nonce = STANDARD.decode(&challenge.nonce).unwrap();
        let signature = identity.sign_challenge(&nonce);
        self.post("/auth/session", json!({ "challenge_id": challenge.challenge_id, "signature": STANDARD.encode(signature) }))
            .await
    }
}

/// A fresh server on `backend` with its bootstrap code, and a first admin who has not enrolled yet.
struct Fresh {
    db: TestDb,
    server: TestServer,
    client: Client,
    code: String,
    vault: VaultId,
    admin: Identity,
    genesis: SignedStatement,
}

impl Fresh {
    async fn new(backend: common::Backend) -> Self {
        let db = TestDb::new(backend).await;
        let server = TestServer::start(&db).await;
        let client = Client::new(&server);
        let code = server.codes[0].code.as_str().to_owned();
        let vault = server.codes[0].vault_id;
        let admin = Identity::generate();
        let genesis = Roster::genesis_entry(vault, &admin, "Ada Admin", 1_750_000_000).unwrap();
        Self {
            db,
            server,
            client,
            code,
            vault,
            admin,
            genesis,
        }
    }
}

async fn error_code(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    response.json::<ErrorBody>().await.unwrap().code
}

async fn count(server: &TestServer, table: &'static str) -> i64 {
    let sql = match table {
        "members" => "SELECT COUNT(*) FROM members",
        "roster_entries" => "SELECT COUNT(*) FROM roster_entries",
        "sessions" => "SELECT COUNT(*) FROM sessions",
        _ => unreachable!(),
    };
    sqlx::query(sql)
        .fetch_one(server.app.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

#[tokio::test]
async fn first_admin_enrols_signs_in_and_verifies_the_roster() {
    for backend in BACKENDS {
        let Fresh {
            db,
            server,
            client,
            code,
            vault,
            admin,
            genesis,
        } = Fresh::new(backend).await;

        let enrolled = client
            .enrol(&code.to_lowercase().replace('-', " "), &genesis)
            .await;
        assert_eq!(enrolled.status(), 201, "{backend:?}");
        let enrolled: Enrolled = enrolled.json().await.unwrap();
        assert_eq!(enrolled.vault_id, vault.to_string());
        assert_eq!(enrolled.fingerprint, admin.fingerprint().to_hex());

        // The code works once.
        assert_eq!(
            error_code(client.enrol(&code, &genesis).await, 400).await,
            "invalid_code"
        );

        let session: Session = {
            let response = client.sign_in(&enrolled.vault_id, &admin).await;
            assert_eq!(response.status(), 201);
            response.json().await.unwrap()
        };
        let me: Me = client
            .get("/me", &session.token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!((me.name.as_str(), me.role.as_str()), ("Ada Admin", "admin"));

        // The device verifies the roster against the genesis it pinned.
        let chain: RosterChain = client
            .get(&format!("/vaults/{vault}/roster"), &session.token)
            .await
            .json()
            .await
            .unwrap();
        let entries: Vec<SignedStatement> = chain
            .entries
            .iter()
            .map(|entry| SignedStatement::from_bytes(&STANDARD.decode(entry).unwrap()).unwrap())
            .collect();
        let mut pin = [0u8; 32];
        hex::decode_to_slice(&enrolled.roster_genesis, &mut pin).unwrap();
        let roster = Roster::verify(vault, &entries, Some(&pin)).unwrap();
        assert_eq!(roster.members()[0].fingerprint, admin.fingerprint());

        // Another vault's roster is not found; logging out ends the session.
        let other = client
            .get(
                &format!("/vaults/{}/roster", VaultId::random()),
                &session.token,
            )
            .await;
        assert_eq!(error_code(other, 404).await, "not_found");
        let logout = client
            .http
            .delete(format!("{}/api/v1/auth/session", client.server))
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), 204);
        assert_eq!(
            error_code(client.get("/me", &session.token).await, 401).await,
            "unauthenticated"
        );

        server.stop().await;
        db.drop_database().await;
    }
}

#[tokio::test]
async fn bad_enrolments_are_refused_and_store_nothing() {
    for backend in BACKENDS {
        let Fresh {
            db,
            server,
            client,
            code,
            vault: _,
            admin,
            genesis,
        } = Fresh::new(backend).await;

        // A wrong code.
        assert_eq!(
            error_code(
                client
                    .enrol("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", &genesis)
                    .await,
                400
            )
            .await,
            "invalid_code"
        );
        // A genesis for another vault.
        let elsewhere = Roster::genesis_entry(VaultId::random(), &admin, "Ada", 1).unwrap();
        assert_eq!(
            error_code(client.enrol(&code, &elsewhere).await, 400).await,
            "invalid_statement"
        );
        // A genesis whose signature was altered.
        let mut bytes = genesis.to_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let forged = client
            .post(
                "/enrol/first-admin",
                json!({ "code": code, "genesis": STANDARD.encode(&bytes) }),
            )
            .await;
        assert_eq!(error_code(forged, 400).await, "invalid_statement");
        // Malformed JSON, wrong types, unknown fields, not JSON, oversized.
        let raw = |body: &'static str| {
            client
                .http
                .post(format!("{}/api/v1/enrol/first-admin", client.server))
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        assert_eq!(
            error_code(raw("{\"code\": ").await.unwrap(), 400).await,
            "invalid_json"
        );
        assert_eq!(
            error_code(raw("{\"code\": 5, \"genesis\": \"\"}").await.unwrap(), 422).await,
            "invalid_fields"
        );
        assert_eq!(
            error_code(
                raw("{\"code\": \"x\", \"genesis\": \"\", \"role\": \"admin\"}")
                    .await
                    .unwrap(),
                422
            )
            .await,
            "invalid_fields"
        );
        let text = client
            .http
            .post(format!("{}/api/v1/enrol/first-admin", client.server))
            .body("code=x")
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(text, 415).await, "not_json");
        let huge = json!({ "code": code, "genesis": "A".repeat(2 << 20) });
        assert_eq!(
            error_code(client.post("/enrol/first-admin", huge).await, 413).await,
            "too_large"
        );

        assert_eq!(
            count(&server, "members").await,
            0,
            "{backend:?}: nothing stored"
        );
        assert_eq!(count(&server, "roster_entries").await, 0);
        // The code still works after all that.
        assert_eq!(client.enrol(&code, &genesis).await.status(), 201);
        server.stop().await;
        db.drop_database().await;
    }
}

#[tokio::test]
async fn sign_in_refuses_bad_and_replayed_signatures() {
    for backend in BACKENDS {
        let Fresh {
            db,
            server,
            client,
            code,
            vault,
            admin,
            genesis,
        } = Fresh::new(backend).await;
        assert_eq!(client.enrol(&code, &genesis).await.status(), 201);
        let vault = vault.to_string();

        // Someone else's key signs the challenge.
        let impostor = client
            .post(
                "/auth/challenge",
                json!({ "vault_id": vault, "fingerprint": admin.fingerprint().to_hex() }),
            )
            .await
            .json::<Challenge>()
            .await
            .unwrap();
        let wrong = Identity::generate().sign_challenge(&STANDARD.decode(&impostor.nonce).unwrap());
        let refused = client
            .post("/auth/session", json!({ "challenge_id": impostor.challenge_id, "signature": STANDARD.encode(wrong) }))
            .await;
        assert_eq!(
            error_code(refused, 401).await,
            "sign_in_failed",
            "{backend:?}"
        );

        // A correct answer works once; replaying it fails.
        let challenge = client
            .post(
                "/auth/challenge",
                json!({ "vault_id": vault, "fingerprint": admin.fingerprint().to_hex() }),
            )
            .await
            .json::<Challenge>()
            .await
            .unwrap();
        let signature =
            STANDARD.encode(admin.sign_challenge(&STANDARD.decode(&challenge.nonce).unwrap()));
        let answer = json!({ "challenge_id": challenge.challenge_id, "signature": signature });
        assert_eq!(
            client.post("/auth/session", answer.clone()).await.status(),
            201
        );
        assert_eq!(
            error_code(client.post("/auth/session", answer).await, 401).await,
            "sign_in_failed"
        );

        // Unknown members get no challenge; garbage tokens get no access.
        let stranger = client
            .post("/auth/challenge", json!({ "vault_id": vault, "fingerprint": Identity::generate().fingerprint().to_hex() }))
            .await;
        assert_eq!(error_code(stranger, 401).await, "unknown_member");
        assert_eq!(
            error_code(client.get("/me", "not-a-token").await, 401).await,
            "unauthenticated"
        );
        assert_eq!(count(&server, "sessions").await, 1);
        server.stop().await;
        db.drop_database().await;
    }
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_refused_for_a_while() {
    for backend in BACKENDS {
        let Fresh {
            db,
            server,
            client,
            code,
            vault,
            admin,
            genesis,
        } = Fresh::new(backend).await;
        assert_eq!(client.enrol(&code, &genesis).await.status(), 201);
        let vault = vault.to_string();
        let ask = || {
            client.post(
                "/auth/challenge",
                json!({ "vault_id": vault, "fingerprint": admin.fingerprint().to_hex() }),
            )
        };
        for _ in 0..quorate_server::limits::MAX_FAILURES_PER_KEY {
            let challenge: Challenge = ask().await.json().await.unwrap();
            let wrong =
                Identity::generate().sign_challenge(&STANDARD.decode(&challenge.nonce).unwrap());
            let refused = client
                .post("/auth/session", json!({ "challenge_id": challenge.challenge_id, "signature": STANDARD.encode(wrong) }))
                .await;
            assert_eq!(error_code(refused, 401).await, "sign_in_failed");
        }
        // Now even the right signature is refused, with a hint when to try again.
        let challenge: Challenge = ask().await.json().await.unwrap();
        let right = admin.sign_challenge(&STANDARD.decode(&challenge.nonce).unwrap());
        let limited = client
            .post("/auth/session", json!({ "challenge_id": challenge.challenge_id, "signature": STANDARD.encode(right) }))
            .await;
        assert_eq!(
            error_code(limited, 429).await,
            "too_many_attempts",
            "{backend:?}"
        );
        server.stop().await;
        db.drop_database().await;
    }
}
