//! The first admin enrols with the bootstrap code and a self-signed genesis entry, signs in
//! by challenge-response, reads and verifies the roster, and logs out — on SQLite and on
//! PostgreSQL, through the typed client — plus the bad inputs of those steps, each refused with
//! the right 4xx and nothing stored. Expiry is reached by moving a row's expiry into the past,
//! as the passing of time would.

mod common;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::refused;
use quorate_api::ErrorBody;
use quorate_client::Client;
use quorate_crypto::{Identity, VaultId, roster::Roster, statement::SignedStatement};
use quorate_server::test_support::{Backend, TestApp, TestServer};
use quorate_server::{config::Settings, limits::MAX_FAILURES_PER_ADDRESS};
use serde_json::json;
use sqlx::Row;

/// A fresh server on `backend` with its bootstrap code, and a first admin who has not enrolled yet.
struct Fresh {
    server: TestApp,
    client: Client,
    code: String,
    vault: VaultId,
    admin: Identity,
    genesis: SignedStatement,
}

impl Fresh {
    async fn new(backend: Backend) -> Self {
        Self::with(backend, |settings| settings).await
    }

    /// A fresh server whose settings `configure` adjusts.
    async fn with(backend: Backend, configure: impl FnOnce(Settings) -> Settings) -> Self {
        let server = TestApp::start_with(backend, configure).await;
        let client = Client::new(&server.url(""));
        let code = server.codes[0].code.as_str().to_owned();
        let vault = server.codes[0].vault_id;
        let admin = Identity::generate();
        let genesis = Roster::genesis_entry(vault, &admin, "Ada Admin", 1_750_000_000).unwrap();
        Self {
            server,
            client,
            code,
            vault,
            admin,
            genesis,
        }
    }

    /// Enrols the first admin and signs them in.
    async fn enrolled(backend: Backend) -> Self {
        Self::enrolled_with(backend, |settings| settings).await
    }

    /// [`Fresh::enrolled`] on a server whose settings `configure` adjusts.
    async fn enrolled_with(backend: Backend, configure: impl FnOnce(Settings) -> Settings) -> Self {
        let mut fresh = Self::with(backend, configure).await;
        fresh
            .client
            .enrol_first_admin(&fresh.code, &fresh.genesis)
            .await
            .unwrap();
        fresh
            .client
            .sign_in(fresh.vault, &fresh.admin)
            .await
            .unwrap();
        fresh
    }

    async fn count(&self, table: &'static str) -> i64 {
        let sql = match table {
            "members" => "SELECT COUNT(*) FROM members",
            "roster_entries" => "SELECT COUNT(*) FROM roster_entries",
            "sessions" => "SELECT COUNT(*) FROM sessions",
            _ => unreachable!(),
        };
        self.scalar(sql).await
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query(sql)
            .fetch_one(self.server.app.db.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    /// Moves every expiry in `table` one second into the past.
    async fn expire_all(&self, table: &'static str) {
        let sql = match table {
            "enrolment_codes" => "UPDATE enrolment_codes SET expires_at = $1",
            "sign_in_challenges" => "UPDATE sign_in_challenges SET expires_at = $1",
            "sessions" => "UPDATE sessions SET expires_at = $1",
            _ => unreachable!(),
        };
        sqlx::query(sql)
            .bind(quorate_server::now() - 1)
            .execute(self.server.app.db.pool())
            .await
            .unwrap();
    }

    async fn finish(self) {
        self.server.stop().await;
    }
}

quorate_server::per_backend!(first_admin_enrols_signs_in_and_verifies_the_roster);

async fn first_admin_enrols_signs_in_and_verifies_the_roster(backend: Backend) {
    let Fresh {
        server,
        mut client,
        code,
        vault,
        admin,
        genesis,
    } = Fresh::new(backend).await;

    // The code is accepted however a person types it.
    let enrolled = client
        .enrol_first_admin(&code.to_lowercase().replace('-', " "), &genesis)
        .await
        .unwrap();
    assert_eq!(enrolled.vault_id, vault.to_string(), "{backend:?}");
    assert_eq!(enrolled.fingerprint, admin.fingerprint().to_hex());

    // The code works once.
    assert_eq!(
        refused(client.enrol_first_admin(&code, &genesis).await),
        (400, "invalid_code".into())
    );

    let session = client.sign_in(vault, &admin).await.unwrap();
    assert!(session.expires_at > quorate_server::now());
    let me = client.me().await.unwrap();
    assert_eq!((me.name.as_str(), me.role.as_str()), ("Ada Admin", "admin"));

    // The device verifies the roster against the genesis it pinned.
    let mut pin = [0u8; 32];
    hex::decode_to_slice(&enrolled.roster_genesis, &mut pin).unwrap();
    let roster = client.roster(vault, &pin).await.unwrap();
    assert_eq!(roster.members()[0].fingerprint, admin.fingerprint());

    // Another vault's roster is not found; logging out ends the session.
    assert_eq!(
        refused(client.roster(VaultId::random(), &pin).await),
        (404, "not_found".into())
    );
    client.log_out().await.unwrap();
    let stale = Client::new(&server.url("")).with_token(session.token);
    assert_eq!(refused(stale.me().await), (401, "unauthenticated".into()));

    server.stop().await;
}

quorate_server::per_backend!(bad_enrolments_are_refused_and_store_nothing);

async fn bad_enrolments_are_refused_and_store_nothing(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let Fresh {
        client,
        code,
        admin,
        genesis,
        ..
    } = &fresh;

    // A wrong code.
    assert_eq!(
        refused(
            client
                .enrol_first_admin("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", genesis)
                .await
        ),
        (400, "invalid_code".into())
    );
    // A genesis for another vault.
    let elsewhere = Roster::genesis_entry(VaultId::random(), admin, "Ada", 1).unwrap();
    assert_eq!(
        refused(client.enrol_first_admin(code, &elsewhere).await),
        (400, "invalid_statement".into())
    );
    // A genesis whose signature was altered.
    let mut bytes = genesis.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let forged = SignedStatement::from_bytes(&bytes).unwrap();
    assert_eq!(
        refused(client.enrol_first_admin(code, &forged).await),
        (400, "invalid_statement".into())
    );

    // Malformed JSON, wrong types, unknown fields, not JSON, oversized: what no typed
    // client sends, so sent raw.
    let http = reqwest::Client::new();
    let url = fresh.server.url("/api/v1/enrol/first-admin");
    let raw = |content_type: &'static str, body: String| {
        let request = http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<ErrorBody>().await.unwrap().code)
        }
    };
    let json = "application/json";
    for (body, expected) in [
        ("{\"code\": ".to_owned(), (400, "invalid_json")),
        (
            "{\"code\": 5, \"genesis\": \"\"}".to_owned(),
            (422, "invalid_fields"),
        ),
        ("{\"code\": \"x\"}".to_owned(), (422, "invalid_fields")),
        (
            "{\"code\": \"x\", \"genesis\": \"\", \"role\": \"admin\"}".to_owned(),
            (422, "invalid_fields"),
        ),
        (
            // Base64 is decoded with the JSON: a field that is not is a malformed field.
            json!({ "code": code, "genesis": "not base64!" }).to_string(),
            (422, "invalid_fields"),
        ),
        (
            json!({ "code": code, "genesis": "A".repeat(2 << 20) }).to_string(),
            (413, "too_large"),
        ),
    ] {
        let (status, got) = raw(json, body.clone()).await;
        assert_eq!(
            (status, got.as_str()),
            expected,
            "{backend:?} {}",
            &body[..body.len().min(60)]
        );
    }
    assert_eq!(
        raw("text/plain", "code=x".into()).await,
        (415, "not_json".into())
    );

    assert_eq!(
        fresh.count("members").await,
        0,
        "{backend:?}: nothing stored"
    );
    assert_eq!(fresh.count("roster_entries").await, 0);
    // The code still works after all that.
    client.enrol_first_admin(code, genesis).await.unwrap();
    fresh.finish().await;
}

quorate_server::per_backend!(expired_codes_invites_challenges_and_sessions_are_refused);

async fn expired_codes_invites_challenges_and_sessions_are_refused(backend: Backend) {
    // An expired bootstrap code.
    let fresh = Fresh::new(backend).await;
    fresh.expire_all("enrolment_codes").await;
    assert_eq!(
        refused(
            fresh
                .client
                .enrol_first_admin(&fresh.code, &fresh.genesis)
                .await
        ),
        (400, "invalid_code".into()),
        "{backend:?}"
    );
    assert_eq!(fresh.count("members").await, 0);
    fresh.finish().await;

    let mut fresh = Fresh::enrolled(backend).await;
    let (vault, fingerprint) = (fresh.vault, fresh.admin.fingerprint().to_hex());

    // An expired invite.
    let invite = fresh
        .client
        .invite(vault, quorate_api::InvitePurpose::Member)
        .await
        .unwrap();
    fresh.expire_all("enrolment_codes").await;
    let newcomer = Identity::generate();
    assert_eq!(
        refused(
            fresh
                .client
                .enrol_member(&invite.code, "Bo", &newcomer.public())
                .await
        ),
        (400, "invalid_code".into())
    );
    assert_eq!(fresh.count("members").await, 1);

    // An expired challenge, answered with a good signature.
    let challenge = fresh.client.challenge(vault, &fingerprint).await.unwrap();
    fresh.expire_all("sign_in_challenges").await;
    let signature = fresh.admin.sign_challenge(&challenge.nonce);
    assert_eq!(
        refused(
            fresh
                .client
                .answer(&challenge.challenge_id, &signature)
                .await
        ),
        (401, "sign_in_failed".into())
    );

    // An expired session; signing in again gives a new one.
    fresh.expire_all("sessions").await;
    assert_eq!(
        refused(fresh.client.me().await),
        (401, "unauthenticated".into())
    );
    fresh.client.sign_in(vault, &fresh.admin).await.unwrap();
    fresh.client.me().await.unwrap();
    fresh.finish().await;
}

quorate_server::per_backend!(sign_in_refuses_bad_and_replayed_signatures);

async fn sign_in_refuses_bad_and_replayed_signatures(backend: Backend) {
    let fresh = Fresh::enrolled(backend).await;
    let vault = fresh.vault;
    let fingerprint = fresh.admin.fingerprint().to_hex();
    let mut client = Client::new(&fresh.server.url(""));

    // Someone else's key signs the challenge.
    let challenge = client.challenge(vault, &fingerprint).await.unwrap();
    let wrong = Identity::generate().sign_challenge(&challenge.nonce);
    assert_eq!(
        refused(client.answer(&challenge.challenge_id, &wrong).await),
        (401, "sign_in_failed".into()),
        "{backend:?}"
    );
    // The right key signs something other than the sign-in message for the nonce.
    let challenge = client.challenge(vault, &fingerprint).await.unwrap();
    let unbound = fresh.admin.sign_challenge(b"another nonce");
    assert_eq!(
        refused(client.answer(&challenge.challenge_id, &unbound).await),
        (401, "sign_in_failed".into())
    );

    // A correct answer works once; replaying it fails.
    let challenge = client.challenge(vault, &fingerprint).await.unwrap();
    let signature = fresh.admin.sign_challenge(&challenge.nonce);
    client
        .answer(&challenge.challenge_id, &signature)
        .await
        .unwrap();
    assert_eq!(
        refused(client.answer(&challenge.challenge_id, &signature).await),
        (401, "sign_in_failed".into())
    );

    // Unknown members get no challenge; garbage tokens get no access.
    assert_eq!(
        refused(
            client
                .challenge(vault, &Identity::generate().fingerprint().to_hex())
                .await
        ),
        (401, "unknown_member".into())
    );
    assert_eq!(
        refused(
            Client::new(&fresh.server.url(""))
                .with_token("not-a-token")
                .me()
                .await
        ),
        (401, "unauthenticated".into())
    );
    assert_eq!(fresh.count("sessions").await, 2, "the admin's and one more");
    fresh.finish().await;
}

/// A wrong answer to a fresh challenge for `fingerprint`, from the test's address.
async fn fail_once(client: &mut Client, vault: VaultId, fingerprint: &str) {
    let challenge = client.challenge(vault, fingerprint).await.unwrap();
    let wrong = Identity::generate().sign_challenge(&challenge.nonce);
    assert_eq!(
        refused(client.answer(&challenge.challenge_id, &wrong).await),
        (401, "sign_in_failed".into())
    );
}

quorate_server::per_backend!(bad_answers_never_lock_a_member_out_of_a_valid_sign_in);

async fn bad_answers_never_lock_a_member_out_of_a_valid_sign_in(backend: Backend) {
    let mut fresh = Fresh::enrolled(backend).await;
    let vault = fresh.vault;
    let fingerprint = fresh.admin.fingerprint().to_hex();
    // Anyone who knows the vault and the admin's fingerprint answers her challenges
    // wrongly, many times over (from the same address, to be the worst case).
    let mut attacker = Client::new(&fresh.server.url(""));
    for _ in 1..MAX_FAILURES_PER_ADDRESS {
        fail_once(&mut attacker, vault, &fingerprint).await;
    }
    // The admin still signs in: only a client's own bad answers count against it.
    fresh
        .client
        .sign_in(vault, &fresh.admin)
        .await
        .unwrap_or_else(|error| panic!("{backend:?}: {error}"));

    // Its last allowed failure: this address gets no more challenges for a while, but a
    // challenge it holds is still answered by a valid signature.
    let held = attacker.challenge(vault, &fingerprint).await.unwrap();
    fail_once(&mut attacker, vault, &fingerprint).await;
    assert_eq!(
        refused(attacker.challenge(vault, &fingerprint).await),
        (429, "too_many_attempts".into())
    );
    let right = fresh.admin.sign_challenge(&held.nonce);
    fresh
        .client
        .answer(&held.challenge_id, &right)
        .await
        .unwrap();
    fresh.finish().await;
}

quorate_server::per_backend!(the_limit_holds_across_replicas_on_one_database);

/// Two replicas on one database, as behind a balancer: failures counted by either count
/// for both, and the sweep forgets them once their window has passed.
async fn the_limit_holds_across_replicas_on_one_database(backend: Backend) {
    let fresh = Fresh::enrolled(backend).await;
    let other = TestServer::start(&fresh.server.db).await;
    let vault = fresh.vault;
    let fingerprint = fresh.admin.fingerprint().to_hex();
    let mut at_first = Client::new(&fresh.server.url(""));
    let mut at_second = Client::new(&other.url(""));
    for attempt in 0..MAX_FAILURES_PER_ADDRESS {
        let replica = if attempt % 2 == 0 {
            &mut at_first
        } else {
            &mut at_second
        };
        fail_once(replica, vault, &fingerprint).await;
    }
    for replica in [&at_first, &at_second] {
        assert_eq!(
            refused(replica.challenge(vault, &fingerprint).await),
            (429, "too_many_attempts".into()),
            "{backend:?}"
        );
    }
    let later = quorate_server::now() + quorate_server::limits::WINDOW_SECONDS + 1;
    other.app.sweep(later).await.unwrap();
    at_first.challenge(vault, &fingerprint).await.unwrap();
    other.stop().await;
    fresh.finish().await;
}

/// Asks for a challenge for `fingerprint` as a request forwarded for `forwarded_for`;
/// answers it with `signer`'s signature. Returns both statuses.
async fn sign_in_via(
    fresh: &Fresh,
    forwarded_for: Option<&str>,
    signer: &Identity,
) -> (u16, Option<u16>) {
    let http = reqwest::Client::new();
    let send = |path: &str, body: serde_json::Value| {
        let mut request = http.post(fresh.server.url(path)).json(&body);
        if let Some(address) = forwarded_for {
            request = request.header("X-Forwarded-For", address);
        }
        request.send()
    };
    let response = send(
        "/api/v1/auth/challenge",
        json!({ "vault_id": fresh.vault.to_string(), "fingerprint": fresh.admin.fingerprint().to_hex() }),
    )
    .await
    .unwrap();
    let status = response.status().as_u16();
    if status != 201 {
        return (status, None);
    }
    let challenge: quorate_api::Challenge = response.json().await.unwrap();
    let signature = signer.sign_challenge(&challenge.nonce);
    let answered = send(
        "/api/v1/auth/session",
        json!({ "challenge_id": challenge.challenge_id, "signature": STANDARD.encode(signature) }),
    )
    .await
    .unwrap();
    (status, Some(answered.status().as_u16()))
}

quorate_server::per_backend!(behind_a_trusted_proxy_each_client_address_has_its_own_limit);

async fn behind_a_trusted_proxy_each_client_address_has_its_own_limit(backend: Backend) {
    let fresh = Fresh::enrolled_with(backend, |settings| Settings {
        trusted_proxies: Some(vec!["127.0.0.1".into(), "10.0.0.0/8".into()]),
        ..settings
    })
    .await;
    let attacker = Identity::generate();
    for _ in 0..MAX_FAILURES_PER_ADDRESS {
        assert_eq!(
            sign_in_via(&fresh, Some("203.0.113.7"), &attacker).await,
            (201, Some(401)),
            "{backend:?}"
        );
    }
    // The attacker's address is refused, however the hops before its own are forged,
    // and through a chain of trusted proxies.
    for forwarded in [
        "203.0.113.7",
        "198.51.100.2, 203.0.113.7",
        "203.0.113.7, 10.1.2.3",
    ] {
        assert_eq!(
            sign_in_via(&fresh, Some(forwarded), &attacker).await,
            (429, None),
            "{backend:?}: {forwarded}"
        );
    }
    // Another client behind the same proxy, and the proxy's own address, are not.
    assert_eq!(
        sign_in_via(&fresh, Some("198.51.100.2"), &fresh.admin).await,
        (201, Some(201))
    );
    assert_eq!(
        sign_in_via(&fresh, None, &fresh.admin).await,
        (201, Some(201))
    );
    fresh.finish().await;

    // Without trusted proxies the header is the client's to write, so it is ignored:
    // changing it does not escape the limit.
    let fresh = Fresh::enrolled(backend).await;
    for index in 0..MAX_FAILURES_PER_ADDRESS {
        let forged = format!("198.51.100.{index}");
        assert_eq!(
            sign_in_via(&fresh, Some(&forged), &attacker).await,
            (201, Some(401))
        );
    }
    assert_eq!(
        sign_in_via(&fresh, Some("192.0.2.1"), &fresh.admin).await,
        (429, None),
        "{backend:?}"
    );
    fresh.finish().await;
}

quorate_server::per_backend!(challenges_are_capped_per_member_and_expired_rows_are_swept);

async fn challenges_are_capped_per_member_and_expired_rows_are_swept(backend: Backend) {
    let cap = quorate_server::auth::MAX_OPEN_CHALLENGES;
    let mut fresh = Fresh::enrolled(backend).await;
    let vault = fresh.vault;
    let fingerprint = fresh.admin.fingerprint().to_hex();
    // Anyone who knows the vault and a fingerprint asks for many challenges: only the
    // newest few are kept, and the newest is answered.
    let mut challenges = Vec::new();
    for _ in 0..cap * 3 {
        challenges.push(fresh.client.challenge(vault, &fingerprint).await.unwrap());
    }
    assert_eq!(
        fresh
            .scalar("SELECT COUNT(*) FROM sign_in_challenges")
            .await,
        cap as i64,
        "{backend:?}"
    );
    let sign = |challenge: &quorate_api::Challenge| fresh.admin.sign_challenge(&challenge.nonce);
    let (oldest, newest) = (&challenges[0], challenges.last().unwrap());
    assert_eq!(
        refused(
            fresh
                .client
                .answer(&oldest.challenge_id, &sign(oldest))
                .await
        ),
        (401, "sign_in_failed".into())
    );
    let (id, signature) = (newest.challenge_id.clone(), sign(newest));
    fresh.client.answer(&id, &signature).await.unwrap();

    // Expired challenges and sessions are swept; live ones stay.
    fresh.client.challenge(vault, &fingerprint).await.unwrap();
    fresh.expire_all("sign_in_challenges").await;
    fresh.expire_all("sessions").await;
    let live = fresh.client.challenge(vault, &fingerprint).await.unwrap();
    fresh.client.sign_in(vault, &fresh.admin).await.unwrap();
    fresh.server.app.sweep(quorate_server::now()).await.unwrap();
    assert_eq!(
        (
            fresh
                .scalar("SELECT COUNT(*) FROM sign_in_challenges")
                .await,
            fresh.count("sessions").await
        ),
        (1, 1),
        "{backend:?}: the live challenge and the live session"
    );
    let (id, signature) = (live.challenge_id.clone(), sign(&live));
    fresh.client.answer(&id, &signature).await.unwrap();
    fresh.finish().await;
}
