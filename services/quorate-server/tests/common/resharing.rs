//! Re-sharing as a member's device does it, for tests that need a re-share under way.

use quorate_api::ReshareItem;
use quorate_client::{
    Client,
    reshare::{self, Board as NewBoard},
};
use quorate_crypto::{Identity, RecordingId, roster::Roster};

/// The re-share work item of `recording` as `client` sees it.
pub async fn item(
    client: &Client,
    vault: quorate_crypto::VaultId,
    recording: RecordingId,
) -> ReshareItem {
    client
        .reshare_work(vault)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|item| item.subject_id == recording.to_string())
        .expect("the recording is listed for re-sharing")
}

/// `identity` deals their share of `recording` to the board of `roster` under k.
pub async fn deal(
    identity: &Identity,
    client: &Client,
    roster: &Roster,
    recording: RecordingId,
    k: u8,
) -> quorate_api::ReshareState {
    let vault = roster.vault_id();
    let item = item(client, vault, recording).await;
    let key = client.shared_key(vault, roster, &item).await.unwrap();
    assert!(reshare::should_deal(
        &key,
        item.open.as_ref(),
        &identity.fingerprint()
    ));
    let sealed = client.recording_share(vault, recording).await.unwrap();
    let board = NewBoard::of(roster, k).unwrap();
    let dealt = reshare::deal(
        identity,
        &key,
        &board,
        roster,
        item.open.as_ref(),
        &sealed.sealed.0,
        quorate_server::now(),
    )
    .unwrap();
    client.deal_reshare(vault, &dealt).await.unwrap()
}
