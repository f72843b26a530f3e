//! What the server's tests share beyond `quorate_server::test_support` (the fresh database
//! and the server on port 0, and a real S3-compatible server): a first admin, a board of members
//! and a recording made as a meeting client makes it.

#![allow(dead_code)]

pub mod flow;
pub mod resharing;

use quorate_server::test_support::TestServer;

/// The status and code of a refusal through the typed client; panics on success.
pub fn refused<T: std::fmt::Debug>(
    result: Result<T, quorate_client::ClientError>,
) -> (u16, String) {
    match result {
        Err(quorate_client::ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected a refusal from the server, got {other:?}"),
    }
}

/// A typed client signed in as the first admin of the server's bootstrap vault, and what the
/// admin's device pinned.
pub struct FirstAdmin {
    pub client: quorate_client::Client,
    pub vault: quorate_crypto::VaultId,
    pub identity: quorate_crypto::Identity,
    pub pin: [u8; 32],
}

impl FirstAdmin {
    /// The vault's roster as the server serves it now, verified against the pinned genesis.
    pub async fn roster(&self) -> quorate_crypto::roster::Roster {
        self.client.roster(self.vault, &self.pin).await.unwrap()
    }

    pub async fn enrol(server: &TestServer, name: &str) -> Self {
        let code = &server.codes[0];
        Self::enrol_at(&server.url(""), code.vault_id, code.code.as_str(), name).await
    }

    /// Enrols with the first-admin `code` for `vault` that the server at `url` printed (a
    /// server in another process, as the benches run it).
    pub async fn enrol_at(
        url: &str,
        vault: quorate_crypto::VaultId,
        code: &str,
        name: &str,
    ) -> Self {
        let identity = quorate_crypto::Identity::generate();
        let genesis =
            quorate_crypto::roster::Roster::genesis_entry(vault, &identity, name, 1_750_000_000)
                .unwrap();
        let mut client = quorate_client::Client::new(url);
        client.enrol_first_admin(code, &genesis).await.unwrap();
        client.sign_in(vault, &identity).await.unwrap();
        Self {
            client,
            vault,
            identity,
            pin: genesis.digest(),
        }
    }
}

/// A vault with a first admin, `members` more members (all active, each signed in on a
/// client of their own), and a policy of `min_threshold`.
pub struct Board {
    pub admin: FirstAdmin,
    pub members: Vec<(quorate_crypto::Identity, quorate_client::Client)>,
    pub roster: quorate_crypto::roster::Roster,
}

impl Board {
    pub async fn new(server: &TestServer, members: usize, min_threshold: u8) -> Self {
        let admin = FirstAdmin::enrol(server, "Ada").await;
        Self::around(&server.url(""), admin, members, min_threshold).await
    }

    /// A board around `admin`, already enrolled on the server at `url`.
    pub async fn around(url: &str, admin: FirstAdmin, members: usize, min_threshold: u8) -> Self {
        use quorate_crypto::statement::{SignedStatement, VaultPolicy};
        let vault = admin.vault;
        let mut joined = Vec::new();
        for index in 0..members {
            joined.push(join(url, &admin, &format!("Member {}", index + 1)).await);
        }
        let policy = VaultPolicy {
            vault_id: vault,
            sequence: 0,
            min_threshold,
            issued_at: 1_750_000_000,
        };
        admin
            .client
            .set_policy(vault, &SignedStatement::sign(&policy, &admin.identity))
            .await
            .unwrap();
        let roster = admin.client.roster(vault, &admin.pin).await.unwrap();
        Self {
            admin,
            members: joined,
            roster,
        }
    }

    /// Every active member's identity: the admin first.
    pub fn identities(&self) -> Vec<&quorate_crypto::Identity> {
        std::iter::once(&self.admin.identity)
            .chain(self.members.iter().map(|(identity, _)| identity))
            .collect()
    }
}

/// A newcomer enrolled with an invite and added to the roster by `admin` as a member, signed
/// in on a client of their own, on the server at `url`.
pub async fn join(
    url: &str,
    admin: &FirstAdmin,
    name: &str,
) -> (quorate_crypto::Identity, quorate_client::Client) {
    join_as(url, admin, name, quorate_crypto::statement::Role::Member).await
}

/// A newcomer enrolled with an invite for `role` (a member's or a recorder's) and added to
/// the roster by `admin` with `role`, signed in on a client of its own.
pub async fn join_as(
    url: &str,
    admin: &FirstAdmin,
    name: &str,
    role: quorate_crypto::statement::Role,
) -> (quorate_crypto::Identity, quorate_client::Client) {
    use quorate_crypto::statement::RosterChange;
    let vault = admin.vault;
    let purpose = if role.holds_shares() {
        quorate_api::InvitePurpose::Member
    } else {
        quorate_api::InvitePurpose::Recorder
    };
    let invite = admin.client.invite(vault, purpose).await.unwrap();
    let identity = quorate_crypto::Identity::generate();
    let mut client = quorate_client::Client::new(url);
    client
        .enrol_member(&invite.code, name, &identity.public())
        .await
        .unwrap();
    let roster = admin.client.roster(vault, &admin.pin).await.unwrap();
    let entry = roster
        .sign_change(
            &admin.identity,
            RosterChange::Add,
            identity.public(),
            name,
            role,
            1_750_000_000,
        )
        .unwrap();
    admin.client.append_roster(vault, &entry).await.unwrap();
    client.sign_in(vault, &identity).await.unwrap();
    (identity, client)
}

/// A recording as a meeting client makes it: ciphertext, the key split among every member
/// of `roster` under `k`, the shares sealed, the manifest signed by `uploader`.
pub struct MadeRecording {
    pub id: quorate_crypto::RecordingId,
    pub secret: quorate_crypto::vss::Secret,
    pub key: quorate_crypto::AgeSecretKey,
    pub manifest: quorate_crypto::statement::SignedStatement,
    pub shares: Vec<(quorate_crypto::Fingerprint, Vec<u8>)>,
    pub ciphertext: Vec<u8>,
}

pub fn make_recording(
    roster: &quorate_crypto::roster::Roster,
    uploader: &quorate_crypto::Identity,
    k: u8,
    plaintext: &[u8],
) -> MadeRecording {
    use quorate_crypto::{envelope, threshold::Subject, vss::Secret};
    let id = quorate_crypto::RecordingId::random();
    let secret = Secret::random();
    let key = secret.age_key(&Subject::Recording(id));
    let (writer, _) = envelope::encrypt(
        plaintext,
        envelope::HashingWriter::new(Vec::new()),
        &key.recipient(),
    )
    .unwrap();
    let (ciphertext, ciphertext_len, ciphertext_sha256) = writer.finish();
    let ciphertext_sums = (ciphertext_len, ciphertext_sha256);
    let signed = sign_recording(roster, uploader, k, (id, &secret), ciphertext_sums);
    MadeRecording {
        id,
        secret,
        key,
        manifest: signed.manifest,
        shares: signed.shares,
        ciphertext,
    }
}

/// What a meeting client sends before the ciphertext: a recording's manifest and its sealed
/// shares.
pub struct SignedRecording {
    pub id: quorate_crypto::RecordingId,
    pub manifest: quorate_crypto::statement::SignedStatement,
    pub shares: Vec<(quorate_crypto::Fingerprint, Vec<u8>)>,
}

/// Recording `id` of a ciphertext encrypted to the key `secret` gives it, of the length and
/// SHA-256 given: the secret split among every member of `roster` under `k`, the shares
/// sealed, the manifest signed by `uploader`.
pub fn sign_recording(
    roster: &quorate_crypto::roster::Roster,
    uploader: &quorate_crypto::Identity,
    k: u8,
    recording: (quorate_crypto::RecordingId, &quorate_crypto::vss::Secret),
    ciphertext: (u64, [u8; 32]),
) -> SignedRecording {
    let holders: Vec<_> = roster
        .members()
        .iter()
        .map(|member| member.public)
        .collect();
    sign_recording_for(roster, &holders, uploader, k, recording, ciphertext)
}

/// As [`sign_recording`], with the key split among `publics` rather than the members.
pub fn sign_recording_for(
    roster: &quorate_crypto::roster::Roster,
    publics: &[quorate_crypto::PublicIdentity],
    uploader: &quorate_crypto::Identity,
    k: u8,
    (id, secret): (quorate_crypto::RecordingId, &quorate_crypto::vss::Secret),
    (ciphertext_len, ciphertext_sha256): (u64, [u8; 32]),
) -> SignedRecording {
    use quorate_crypto::{
        statement::{RecordingManifest, RecordingMetadata, SignedStatement, SplitKey},
        threshold::{Subject, Threshold},
    };
    let n = u8::try_from(publics.len()).unwrap();
    let (split, sealed) = SplitKey::split_and_seal(
        roster.vault_id(),
        Subject::Recording(id),
        secret,
        Threshold::new(k.into(), n.into()).unwrap(),
        publics,
    )
    .unwrap();
    let metadata = RecordingMetadata {
        title: "Budget committee".into(),
        started_at: Some(1_750_000_000),
        ended_at: Some(1_750_003_600),
        media_type: "audio/wav".into(),
        attendees: vec!["Ada".into(), "Bo".into()],
        language: None,
    };
    let manifest = SignedStatement::sign(
        &RecordingManifest {
            vault_id: roster.vault_id(),
            recording_id: id,
            uploader: uploader.fingerprint(),
            roster_head: roster.head(),
            created_at: 1_750_003_700,
            ciphertext_len,
            ciphertext_sha256,
            sealed_metadata: metadata.seal(&roster.recipients()).unwrap(),
            split,
        },
        uploader,
    );
    let shares = publics
        .iter()
        .map(|public| public.fingerprint())
        .zip(sealed)
        .collect();
    SignedRecording {
        id,
        manifest,
        shares,
    }
}

/// The actions of `vault`'s audit log, oldest first.
pub async fn audit_actions(
    client: &quorate_client::Client,
    vault: quorate_crypto::VaultId,
) -> Vec<String> {
    client
        .audit_page(vault, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect()
}
