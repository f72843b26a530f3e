//! The one test harness (cargo feature `test-support`), shared by this crate's tests and
//! benches and by the end-to-end tests: a fresh database per test — a SQLite file in a
//! temporary folder, or a new PostgreSQL database on 127.0.0.1:5432 (override with
//! `QUORATE_TEST_POSTGRES_URL`, which must name a database the tests may create others
//! from) — and a real server on it, listening on port 0.
//!
//! A story that holds on both backends is written once, as `async fn story(backend: Backend)`,
//! and [`per_backend!`](crate::per_backend) turns it into the tests `story::sqlite` and
//! `story::postgres`, so that `cargo test sqlite` runs without PostgreSQL and
//! `cargo test postgres` runs the PostgreSQL half alone.

use std::{net::SocketAddr, ops::Deref, path::Path};

use sqlx::Connection;

use crate::{
    App, EnrolmentCode,
    config::{SecretUrl, Settings},
};

/// Where a test's database lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's temporary folder.
    Sqlite,
    /// A database of its own on the test PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend's name as the migrations folder and the test names spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Turns `async fn story(backend: Backend)` into a module `story` of two tests, `sqlite` and
/// `postgres`, so that each backend can be chosen by name (`cargo test sqlite`). With a list
/// of `test(arguments)` instead, each named test calls the story with those arguments (for
/// stories that take more than a backend, such as the object store to use).
///
/// The calling crate needs `tokio` (with its `macros` feature) for `#[tokio::test]`.
#[macro_export]
macro_rules! per_backend {
    ($story:ident) => {
        $crate::per_backend!(
            $story,
            sqlite($crate::test_support::Backend::Sqlite),
            postgres($crate::test_support::Backend::Postgres)
        );
    };
    ($story:ident, $($test:ident($($argument:expr),* $(,)?)),+ $(,)?) => {
        mod $story {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    super::$story($($argument),*).await
                }
            )+
        }
    };
}

/// The PostgreSQL database new test databases are created from.
fn postgres_admin_url() -> String {
    std::env::var("QUORATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Runs one statement on the administrative PostgreSQL database.
async fn run_on_postgres(sql: String) {
    let admin = postgres_admin_url();
    let mut connection = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL at {admin} is needed for this test: {error}"));
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut connection)
        .await
        .unwrap();
}

/// A database of its own for one test, and a temporary data folder (the SQLite file, the
/// local object store); [`TestDb::drop_database`] removes a PostgreSQL one.
#[derive(Debug)]
pub struct TestDb {
    /// Which backend.
    pub backend: Backend,
    /// The database's URL.
    pub url: SecretUrl,
    /// The server's data folder, removed when dropped.
    pub folder: tempfile::TempDir,
    postgres_name: Option<String>,
}

impl TestDb {
    /// A fresh, empty database on `backend`.
    pub async fn new(backend: Backend) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let (url, postgres_name) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", folder.path().join("quorate.db").display()),
                None,
            ),
            Backend::Postgres => {
                let name = format!("quorate_test_{}", uuid::Uuid::new_v4().simple());
                run_on_postgres(format!("CREATE DATABASE {name}")).await;
                let admin = postgres_admin_url();
                let base = admin.rsplit_once('/').unwrap().0;
                (format!("{base}/{name}"), Some(name))
            }
        };
        Self {
            backend,
            url: SecretUrl::new(url),
            folder,
            postgres_name,
        }
    }

    /// Settings for a server on this database and folder, listening on port 0, with no
    /// metrics listener and no web UI (a test asks for those itself).
    pub fn settings(&self) -> Settings {
        Settings {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(self.folder.path().to_owned()),
            database_url: Some(self.url.expose_secret().to_owned()),
            metrics_listen: Some("off".into()),
            web_dir: Some("off".into()),
            ..Settings::default()
        }
    }

    /// Removes the database when it is a PostgreSQL one (the folder goes when dropped).
    pub async fn drop_database(self) {
        if let Some(name) = &self.postgres_name {
            run_on_postgres(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

/// A running server on port 0, in this process.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub address: SocketAddr,
    /// The first-admin codes it printed at start.
    pub codes: Vec<EnrolmentCode>,
    /// Its state, for reaching into the database or the object store as an attacker would.
    pub app: App,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// A server on `db`.
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

    /// A server with `settings`, whatever they say, listening on a free loopback port.
    pub async fn start_with(settings: Settings) -> Self {
        // A failing test then shows the server's warnings and errors, such as the cause
        // behind a 500 (libtest keeps them to itself while tests pass).
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .try_init();
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

    /// The URL of `path` on this server (`""` for the server's own URL).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops serving and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A server on a fresh database of its own: what a story with one server needs. It derefs
/// to its [`TestServer`]; [`TestApp::stop`] stops it and drops the database.
#[derive(Debug)]
pub struct TestApp {
    /// The server.
    pub server: TestServer,
    /// Its database and data folder.
    pub db: TestDb,
}

impl TestApp {
    /// A server on a fresh database on `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |settings| settings).await
    }

    /// A server on a fresh database on `backend`, with the settings `configure` adjusts.
    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(Settings) -> Settings,
    ) -> Self {
        let db = TestDb::new(backend).await;
        let server = TestServer::start_with(configure(db.settings())).await;
        Self { server, db }
    }

    /// The server's data folder (its SQLite database and its local object folder).
    pub fn data_dir(&self) -> &Path {
        self.db.folder.path()
    }

    /// Stops the server, then drops its database.
    pub async fn stop(self) {
        self.server.stop().await;
        self.db.drop_database().await;
    }
}

impl Deref for TestApp {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

/// A real S3-compatible server (s3s-fs, installed by the test command) on a free loopback
/// port, serving one bucket from a temporary folder; stopped when dropped.
#[derive(Debug)]
pub struct S3Server {
    /// Its URL as the server takes it (`s3://KEY:SECRET@quorate?endpoint=…`).
    pub url: SecretUrl,
    child: std::process::Child,
    _folder: tempfile::TempDir,
}

impl S3Server {
    /// Starts one, waiting until it answers.
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
