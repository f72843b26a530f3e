//! The audit log over HTTP, on SQLite and on PostgreSQL: every state change is in the chain,
//! the chain verifies offline page by page (as `quorate audit verify` will), and an edited
//! row is detected and named.

mod common;

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use common::{BACKENDS, TestDb, TestServer};
use quorate_api::{AuditEntryView, Challenge, Invite, Session};
use quorate_crypto::{
    Identity, VaultId,
    audit::{AuditEntry, AuditError, verify_chain},
    roster::Roster,
    statement::{Role, RosterChange},
};
use serde_json::json;

fn to_entry(vault_id: VaultId, view: &AuditEntryView) -> AuditEntry {
    let hash = |text: &str| {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).unwrap();
        bytes
    };
    AuditEntry {
        vault_id,
        seq: view.seq,
        time: view.time,
        actor: view.actor.clone(),
        action: view.action.clone(),
        subject: view.subject.clone(),
        statement: view
            .statement
            .as_ref()
            .map(|text| STANDARD.decode(text).unwrap()),
        prev_hash: hash(&view.prev_hash),
        hash: hash(&view.hash),
    }
}

/// Fetches the whole chain two entries a page and verifies it page by page.
async fn verify_over_http(
    http: &reqwest::Client,
    base: &str,
    vault: VaultId,
    token: &str,
) -> Result<Vec<String>, AuditError> {
    let mut after: Option<u64> = None;
    let mut previous = [0u8; 32];
    let mut actions = Vec::new();
    loop {
        let mut url = format!("{base}/api/v1/vaults/{vault}/audit?limit=2");
        if let Some(after) = after {
            url.push_str(&format!("&after={after}"));
        }
        let page: Vec<AuditEntryView> = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page.is_empty() {
            return Ok(actions);
        }
        let entries: Vec<AuditEntry> = page.iter().map(|view| to_entry(vault, view)).collect();
        previous = verify_chain(&entries, previous)?;
        after = Some(page.last().unwrap().seq);
        actions.extend(page.into_iter().map(|view| view.action));
    }
}

#[tokio::test]
async fn every_change_is_audited_and_an_edited_row_is_named() {
    for backend in BACKENDS {
        let db = TestDb::new(backend).await;
        let server = TestServer::start(&db).await;
        let http = reqwest::Client::new();
        let base = server.url("");
        let api = |path: &str| format!("{base}/api/v1{path}");
        let vault = server.codes[0].vault_id;
        let admin = Identity::generate();
        let genesis = Roster::genesis_entry(vault, &admin, "Ada", 1).unwrap();
        let response = http
            .post(api("/enrol/first-admin"))
            .json(&json!({ "code": server.codes[0].code.as_str(), "genesis": STANDARD.encode(genesis.to_bytes()) }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let challenge: Challenge = http
            .post(api("/auth/challenge"))
            .json(&json!({ "vault_id": vault.to_string(), "fingerprint": admin.fingerprint().to_hex() }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let signature = admin.sign_challenge(&STANDARD.decode(&challenge.nonce).unwrap());
        let session: Session = http
            .post(api("/auth/session"))
            .json(&json!({ "challenge_id": challenge.challenge_id, "signature": STANDARD.encode(signature) }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = session.token;
        let invite: Invite = http
            .post(api(&format!("/vaults/{vault}/invites")))
            .bearer_auth(&token)
            .json(&json!({ "purpose": "member" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let member = Identity::generate();
        let public = member.public();
        let enrolled = http
            .post(api("/enrol/member"))
            .json(&json!({ "code": invite.code, "name": "Bo", "keys": {
                "recipient": public.recipient.to_string(),
                "verifying_key": URL_SAFE_NO_PAD.encode(public.verifying_key.as_bytes()) } }))
            .send()
            .await
            .unwrap();
        assert_eq!(enrolled.status(), 201);
        let mut roster = Roster::empty(vault);
        roster.apply(&genesis).unwrap();
        let add = roster
            .sign_change(&admin, RosterChange::Add, public, "Bo", Role::Member, 2)
            .unwrap();
        let appended = http
            .post(api(&format!("/vaults/{vault}/roster")))
            .bearer_auth(&token)
            .json(&json!({ "entry": STANDARD.encode(add.to_bytes()) }))
            .send()
            .await
            .unwrap();
        assert_eq!(appended.status(), 201);

        let actions = verify_over_http(&http, &base, vault, &token).await.unwrap();
        assert_eq!(
            actions,
            [
                "vault.created",
                "roster.genesis",
                "invite.created.member",
                "member.enrolled",
                "roster.added"
            ],
            "{backend:?}"
        );

        // Bad paging parameters are JSON errors too.
        for (query, code) in [("limit=abc", "invalid_query"), ("limit=0", "invalid_limit")] {
            let response = http
                .get(api(&format!("/vaults/{vault}/audit?{query}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400);
            assert_eq!(
                response
                    .json::<quorate_api::ErrorBody>()
                    .await
                    .unwrap()
                    .code,
                code
            );
        }

        // Someone with database access rewrites history: the chain names the row.
        sqlx::query("UPDATE audit_log SET subject = 'someone else' WHERE seq = 3")
            .execute(server.app.db.pool())
            .await
            .unwrap();
        assert_eq!(
            verify_over_http(&http, &base, vault, &token).await,
            Err(AuditError::Altered { seq: 3 })
        );
        // Deleting a row breaks the chain after it.
        sqlx::query("DELETE FROM audit_log WHERE seq = 3")
            .execute(server.app.db.pool())
            .await
            .unwrap();
        assert_eq!(
            verify_over_http(&http, &base, vault, &token).await,
            Err(AuditError::Broken { seq: 4 })
        );

        server.stop().await;
        db.drop_database().await;
    }
}
