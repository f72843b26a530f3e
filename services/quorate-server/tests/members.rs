//! Invites, pending members, admin-signed roster additions and removals, on SQLite and on
//! PostgreSQL: the member's device and the admin's device do their own checks with
//! quorate-crypto; the server refuses what the chain refuses.

mod common;

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use common::{BACKENDS, TestDb, TestServer};
use quorate_api::{Challenge, Enrolled, ErrorBody, Invite, MemberView, RosterChain, Session};
use quorate_crypto::{
    Identity, VaultId,
    roster::Roster,
    statement::{Role, RosterChange, SignedStatement},
};
use serde_json::{Value, json};

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn sign_in(&self, vault: VaultId, identity: &Identity) -> Result<String, String> {
        let response = self
            .post("/auth/challenge", None, json!({ "vault_id": vault.to_string(), "fingerprint": identity.fingerprint().to_hex() }))
            .await;
        if response.status() != 201 {
            return Err(response.json::<ErrorBody>().await.unwrap().code);
        }
        let challenge: Challenge = response.json().await.unwrap();
        let signature = identity.sign_challenge(&STANDARD.decode(&challenge.nonce).unwrap());
        let response = self
            .post("/auth/session", None, json!({ "challenge_id": challenge.challenge_id, "signature": STANDARD.encode(signature) }))
            .await;
        Ok(response.json::<Session>().await.unwrap().token)
    }

    /// What a device does before it signs a change: fetch the chain and verify it.
    async fn roster(&self, vault: VaultId, token: &str, pin: &[u8; 32]) -> Roster {
        let chain: RosterChain = self
            .get(&format!("/vaults/{vault}/roster"), token)
            .await
            .json()
            .await
            .unwrap();
        let entries: Vec<SignedStatement> = chain
            .entries
            .iter()
            .map(|entry| SignedStatement::from_bytes(&STANDARD.decode(entry).unwrap()).unwrap())
            .collect();
        Roster::verify(vault, &entries, Some(pin)).unwrap()
    }

    async fn append(
        &self,
        vault: VaultId,
        token: &str,
        entry: &SignedStatement,
    ) -> reqwest::Response {
        self.post(
            &format!("/vaults/{vault}/roster"),
            Some(token),
            json!({ "entry": STANDARD.encode(entry.to_bytes()) }),
        )
        .await
    }

    async fn invite(&self, vault: VaultId, token: &str) -> String {
        let response = self
            .post(
                &format!("/vaults/{vault}/invites"),
                Some(token),
                json!({ "purpose": "member" }),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json::<Invite>().await.unwrap().code
    }

    async fn enrol_member(&self, code: &str, identity: &Identity, name: &str) -> reqwest::Response {
        let public = identity.public();
        self.post(
            "/enrol/member",
            None,
            json!({ "code": code, "name": name, "keys": {
                "recipient": public.recipient.to_string(),
                "verifying_key": URL_SAFE_NO_PAD.encode(public.verifying_key.as_bytes()),
            }}),
        )
        .await
    }
}

async fn error_code(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    response.json::<ErrorBody>().await.unwrap().code
}

#[tokio::test]
async fn an_invited_member_joins_when_an_admin_signs_and_leaves_when_removed() {
    for backend in BACKENDS {
        let db = TestDb::new(backend).await;
        let server = TestServer::start(&db).await;
        let api = Api {
            http: reqwest::Client::new(),
            base: server.url(""),
        };
        let vault = server.codes[0].vault_id;
        let admin = Identity::generate();
        let genesis = Roster::genesis_entry(vault, &admin, "Ada", 1_750_000_000).unwrap();
        let enrolled = api
            .post("/enrol/first-admin", None, json!({ "code": server.codes[0].code.as_str(), "genesis": STANDARD.encode(genesis.to_bytes()) }))
            .await;
        assert_eq!(enrolled.status(), 201, "{backend:?}");
        let pin = genesis.digest();
        let admin_token = api.sign_in(vault, &admin).await.unwrap();

        // Invite; the member redeems it and is pending: not yet able to sign in.
        let code = api.invite(vault, &admin_token).await;
        let member = Identity::generate();
        let joined = api.enrol_member(&code, &member, "Bo").await;
        assert_eq!(joined.status(), 201);
        let joined: Enrolled = joined.json().await.unwrap();
        assert_eq!(
            joined.roster_genesis,
            hex::encode(pin),
            "the member pins the same genesis"
        );
        assert_eq!(
            api.sign_in(vault, &member).await.unwrap_err(),
            "unknown_member"
        );
        assert_eq!(
            error_code(
                api.enrol_member(&code, &Identity::generate(), "Cy").await,
                400
            )
            .await,
            "invalid_code"
        );

        // The admin compares fingerprints, then signs the entry on their device.
        let pending: Vec<MemberView> = api
            .get(
                &format!("/vaults/{vault}/members?status=pending"),
                &admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].fingerprint, member.fingerprint().to_hex());
        let roster = api.roster(vault, &admin_token, &pin).await;
        let add = roster
            .sign_change(
                &admin,
                RosterChange::Add,
                member.public(),
                "Bo",
                Role::Member,
                1_750_000_100,
            )
            .unwrap();
        assert_eq!(api.append(vault, &admin_token, &add).await.status(), 201);
        // The same entry again is a stale sequence: refused.
        assert_eq!(
            error_code(api.append(vault, &admin_token, &add).await, 400).await,
            "invalid_statement"
        );

        let member_token = api.sign_in(vault, &member).await.unwrap();
        let roster = api.roster(vault, &member_token, &pin).await;
        assert_eq!(roster.members().len(), 2);

        // A member cannot change the roster, and an entry a member signs is refused even
        // when an admin's session carries it.
        let intruder = Identity::generate();
        let by_member = roster.sign_change(
            &member,
            RosterChange::Add,
            intruder.public(),
            "Eve",
            Role::Admin,
            1,
        );
        assert!(
            by_member.is_err(),
            "the member's own device already refuses"
        );
        let forged = {
            let entry = quorate_crypto::statement::RosterEntry {
                vault_id: vault,
                sequence: roster.len(),
                previous: roster.head(),
                change: RosterChange::Add,
                role: Role::Admin,
                member: intruder.public(),
                name: "Eve".into(),
                issued_at: 1,
            };
            SignedStatement::sign(&entry, &member)
        };
        assert_eq!(
            error_code(api.append(vault, &member_token, &forged).await, 403).await,
            "admin_only"
        );
        assert_eq!(
            error_code(api.append(vault, &admin_token, &forged).await, 400).await,
            "invalid_statement"
        );
        assert_eq!(
            error_code(
                api.post(
                    &format!("/vaults/{vault}/invites"),
                    Some(&member_token),
                    json!({ "purpose": "member" })
                )
                .await,
                403
            )
            .await,
            "admin_only"
        );

        // Removal: the member's session stops working at once.
        let remove = roster
            .sign_change(
                &admin,
                RosterChange::Remove,
                member.public(),
                "Bo",
                Role::Member,
                1_750_000_200,
            )
            .unwrap();
        assert_eq!(api.append(vault, &admin_token, &remove).await.status(), 201);
        assert_eq!(
            error_code(api.get("/me", &member_token).await, 401).await,
            "unauthenticated"
        );
        assert_eq!(
            api.sign_in(vault, &member).await.unwrap_err(),
            "unknown_member"
        );
        let roster = api.roster(vault, &admin_token, &pin).await;
        assert_eq!(roster.members().len(), 1);
        assert_eq!(roster.removed().len(), 1);

        server.stop().await;
        db.drop_database().await;
    }
}

#[tokio::test]
async fn members_of_one_vault_cannot_reach_into_another() {
    for backend in BACKENDS {
        let db = TestDb::new(backend).await;
        let server = TestServer::start(&db).await;
        let api = Api {
            http: reqwest::Client::new(),
            base: server.url(""),
        };
        let vault = server.codes[0].vault_id;
        let admin = Identity::generate();
        let genesis = Roster::genesis_entry(vault, &admin, "Ada", 1).unwrap();
        api.post("/enrol/first-admin", None, json!({ "code": server.codes[0].code.as_str(), "genesis": STANDARD.encode(genesis.to_bytes()) }))
            .await;
        let token = api.sign_in(vault, &admin).await.unwrap();
        let elsewhere = VaultId::random();
        for path in [
            format!("/vaults/{elsewhere}/roster"),
            format!("/vaults/{elsewhere}/members"),
        ] {
            assert_eq!(
                error_code(api.get(&path, &token).await, 404).await,
                "not_found",
                "{backend:?} {path}"
            );
        }
        let invite = api
            .post(
                &format!("/vaults/{elsewhere}/invites"),
                Some(&token),
                json!({ "purpose": "member" }),
            )
            .await;
        assert_eq!(error_code(invite, 404).await, "not_found");
        let malformed = api
            .get(&format!("/vaults/{vault}/audit?limit=abc"), &token)
            .await;
        assert_eq!(error_code(malformed, 400).await, "invalid_query");

        // An admin creates a second vault; its first admin enrols with the code it returns, and
        // each vault's sessions see only their own vault.
        let created = api
            .post(
                "/vaults",
                Some(&token),
                json!({ "name": "Audit committee" }),
            )
            .await;
        assert_eq!(created.status(), 201, "{backend:?}");
        let created: quorate_api::CreatedVault = created.json().await.unwrap();
        let second: VaultId = created.vault_id.parse().unwrap();
        let chair = Identity::generate();
        let second_genesis = Roster::genesis_entry(second, &chair, "Chair", 1).unwrap();
        let enrolled = api
            .post(
                "/enrol/first-admin",
                None,
                json!({ "code": created.first_admin_code, "genesis": STANDARD.encode(second_genesis.to_bytes()) }),
            )
            .await;
        assert_eq!(enrolled.status(), 201);
        let chair_token = api.sign_in(second, &chair).await.unwrap();
        assert_eq!(
            api.get(&format!("/vaults/{second}/roster"), &chair_token)
                .await
                .status(),
            200
        );
        assert_eq!(
            error_code(
                api.get(&format!("/vaults/{second}/roster"), &token).await,
                404
            )
            .await,
            "not_found"
        );
        assert_eq!(
            error_code(
                api.get(&format!("/vaults/{vault}/roster"), &chair_token)
                    .await,
                404
            )
            .await,
            "not_found"
        );
        assert_eq!(
            api.sign_in(second, &admin).await.unwrap_err(),
            "unknown_member"
        );

        let bad = api
            .post(
                &format!("/vaults/{vault}/invites"),
                Some(&token),
                json!({ "purpose": "overlord" }),
            )
            .await;
        assert_eq!(error_code(bad, 400).await, "invalid_purpose");
        server.stop().await;
        db.drop_database().await;
    }
}
