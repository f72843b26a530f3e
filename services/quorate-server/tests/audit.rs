//! The audit log through the typed client, on SQLite and on PostgreSQL: every state change
//! is in the chain, the chain verifies offline page by page (as `quorate audit verify` will),
//! and an edited or deleted row is detected and named.

mod common;

use quorate_client::Client;
use quorate_crypto::{
    Identity, VaultId,
    audit::{AuditError, verify_chain},
    roster::Roster,
    statement::{Role, RosterChange},
};
use quorate_server::test_support::{Backend, TestApp};

/// Fetches the whole chain two entries a page and verifies it page by page.
async fn verify_pages(client: &Client, vault: VaultId) -> Result<Vec<String>, AuditError> {
    let (mut after, mut previous, mut actions) = (None, [0u8; 32], Vec::new());
    loop {
        let page = client.audit_page(vault, after, 2).await.unwrap();
        let Some(last) = page.last() else {
            return Ok(actions);
        };
        previous = verify_chain(&page, previous)?;
        after = Some(last.seq);
        actions.extend(page.into_iter().map(|entry| entry.action));
    }
}

quorate_server::per_backend!(every_change_is_audited_and_an_edited_row_is_named);

async fn every_change_is_audited_and_an_edited_row_is_named(backend: Backend) {
    let server = TestApp::start(backend).await;
    let vault = server.codes[0].vault_id;
    let admin = Identity::generate();
    let genesis = Roster::genesis_entry(vault, &admin, "Ada", 1).unwrap();
    let mut client = Client::new(&server.url(""));
    client
        .enrol_first_admin(server.codes[0].code.as_str(), &genesis)
        .await
        .unwrap();
    client.sign_in(vault, &admin).await.unwrap();

    let invite = client
        .invite(vault, quorate_api::InvitePurpose::Member)
        .await
        .unwrap();
    let member = Identity::generate();
    client
        .enrol_member(&invite.code, "Bo", &member.public())
        .await
        .unwrap();
    let roster = client.roster(vault, &genesis.digest()).await.unwrap();
    let add = roster
        .sign_change(
            &admin,
            RosterChange::Add,
            member.public(),
            "Bo",
            Role::Member,
            2,
        )
        .unwrap();
    assert_eq!(client.append_roster(vault, &add).await.unwrap(), 1);

    let actions = verify_pages(&client, vault).await.unwrap();
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
    let error = client.audit_page(vault, None, 0).await.unwrap_err();
    assert_eq!(error.code(), Some("invalid_limit"));

    // Someone with database access rewrites history: the chain names the row.
    sqlx::query("UPDATE audit_log SET subject = 'someone else' WHERE seq = 3")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        verify_pages(&client, vault).await,
        Err(AuditError::Altered { seq: 3 })
    );
    // Deleting a row breaks the chain after it.
    sqlx::query("DELETE FROM audit_log WHERE seq = 3")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        verify_pages(&client, vault).await,
        Err(AuditError::Broken { seq: 4 })
    );

    server.stop().await;
}
