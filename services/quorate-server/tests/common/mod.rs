//! Test harness: a real server on port 0 over a fresh database — a SQLite file in a
//! temporary folder, or a new PostgreSQL database on 127.0.0.1:5432 (override with
//! `QUORATE_TEST_POSTGRES_URL`, which must name a database the tests may create others from).

#![allow(dead_code)]

pub mod flow;

use std::net::SocketAddr;

use quorate_server::{
    App, EnrolmentCode,
    config::{SecretUrl, Settings},
};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

fn postgres_admin_url() -> String {
    std::env::var("QUORATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database of its own for one test; [`TestDb::drop_database`] removes a PostgreSQL one.
pub struct TestDb {
    pub backend: Backend,
    pub url: SecretUrl,
    pub folder: tempfile::TempDir,
    postgres_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let folder = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", folder.path().join("quorate.db").display());
                Self {
                    backend,
                    url: SecretUrl::new(url),
                    folder,
                    postgres_name: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("quorate_test_{}", uuid::Uuid::new_v4().simple());
                let mut connection =
                    sqlx::PgConnection::connect(&admin)
                        .await
                        .unwrap_or_else(|error| {
                            panic!("PostgreSQL at {admin} is needed for these tests: {error}")
                        });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').unwrap().0;
                Self {
                    backend,
                    url: SecretUrl::new(format!("{base}/{name}")),
                    folder,
                    postgres_name: Some(name),
                }
            }
        }
    }

    pub fn settings(&self) -> Settings {
        Settings {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(self.folder.path().to_owned()),
            database_url: Some(self.url.expose_secret().to_owned()),
            ..Settings::default()
        }
    }

    pub async fn drop_database(self) {
        if let Some(name) = &self.postgres_name {
            let mut connection = sqlx::PgConnection::connect(&postgres_admin_url())
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut connection)
            .await
            .unwrap();
        }
    }
}

/// A running server.
pub struct TestServer {
    pub address: SocketAddr,
    pub codes: Vec<EnrolmentCode>,
    pub app: App,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db.settings()).await
    }

    /// A server on `db` with its objects on `store` (a `file://` or `s3://` URL).
    pub async fn start_on(db: &TestDb, store: &SecretUrl) -> Self {
        Self::start_with(Settings {
            object_store: Some(store.expose_secret().to_owned()),
            ..db.settings()
        })
        .await
    }

    pub async fn start_with(settings: Settings) -> Self {
        let config = settings.resolve(None, None).unwrap();
        let (app, codes) = App::start(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = app.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            address,
            codes,
            app,
            stop,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A real S3-compatible server (s3s-fs, installed by the test command) on a free loopback
/// port, serving one bucket from a temporary folder; stopped when dropped.
pub struct S3Server {
    pub url: SecretUrl,
    child: std::process::Child,
    _folder: tempfile::TempDir,
}

impl S3Server {
    pub async fn start() -> Self {
        let binary = std::env::var("QUORATE_S3S_FS").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            format!("{home}/.cache/quorate/bin/s3s-fs")
        });
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("quorate")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&binary)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                "test-key",
                "--secret-key",
                "test-secret",
            ])
            .arg(folder.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("s3s-fs is needed at {binary} (the test command installs it): {error}")
            });
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let url = format!(
            "s3://test-key:test-secret@quorate?endpoint=http://127.0.0.1:{port}&region=us-east-1"
        );
        Self {
            url: SecretUrl::new(url),
            child,
            _folder: folder,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    pub async fn enrol(server: &TestServer, name: &str) -> Self {
        let vault = server.codes[0].vault_id;
        let identity = quorate_crypto::Identity::generate();
        let genesis =
            quorate_crypto::roster::Roster::genesis_entry(vault, &identity, name, 1_750_000_000)
                .unwrap();
        let mut client = quorate_client::Client::new(&server.url(""));
        client
            .enrol_first_admin(server.codes[0].code.as_str(), &genesis)
            .await
            .unwrap();
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
        use quorate_crypto::statement::{SignedStatement, VaultPolicy};
        let admin = FirstAdmin::enrol(server, "Ada").await;
        let vault = admin.vault;
        let mut joined = Vec::new();
        for index in 0..members {
            joined.push(join(server, &admin, &format!("Member {}", index + 1)).await);
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
/// in on a client of their own.
pub async fn join(
    server: &TestServer,
    admin: &FirstAdmin,
    name: &str,
) -> (quorate_crypto::Identity, quorate_client::Client) {
    use quorate_crypto::statement::{Role, RosterChange};
    let vault = admin.vault;
    let invite = admin.client.invite(vault, "member").await.unwrap();
    let identity = quorate_crypto::Identity::generate();
    let mut client = quorate_client::Client::new(&server.url(""));
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
            Role::Member,
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
    use quorate_crypto::{
        envelope,
        statement::{RecordingManifest, RecordingMetadata, SignedStatement, SplitKey},
        threshold::{Subject, Threshold},
    };
    let key = quorate_crypto::AgeSecretKey::generate();
    let (writer, _) = envelope::encrypt(
        plaintext,
        envelope::HashingWriter::new(Vec::new()),
        &key.recipient(),
    )
    .unwrap();
    let (ciphertext, ciphertext_len, ciphertext_sha256) = writer.finish();
    let id = quorate_crypto::RecordingId::random();
    let publics: Vec<_> = roster
        .members()
        .iter()
        .map(|member| member.public)
        .collect();
    let n = u8::try_from(publics.len()).unwrap();
    let (split, sealed) = SplitKey::split_and_seal(
        roster.vault_id(),
        Subject::Recording(id),
        &key,
        Threshold::new(k.into(), n.into()).unwrap(),
        &publics,
    )
    .unwrap();
    let metadata = RecordingMetadata {
        title: "Budget committee".into(),
        started_at: Some(1_750_000_000),
        ended_at: Some(1_750_003_600),
        media_type: "audio/wav".into(),
        attendees: vec!["Ada".into(), "Bo".into()],
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
    MadeRecording {
        id,
        key,
        manifest,
        shares,
        ciphertext,
    }
}
