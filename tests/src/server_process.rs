//! The `quorate-server` binary run as an operator runs it: a process with a data folder of
//! its own and its settings in `QUORATE_*` variables, whose log the test can read.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::io::AsyncBufReadExt;

/// A running `quorate-server serve`.
#[derive(Debug)]
pub struct ServerProcess {
    /// The process (killed when dropped).
    pub process: tokio::process::Child,
    /// Where it listens.
    pub address: SocketAddr,
    /// The first-admin code it printed, if it made one (each start replaces the code of a
    /// vault that has no admin yet).
    pub code: Option<String>,
    log: Arc<Mutex<String>>,
    _folder: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts a server on a free loopback port with `settings` (variable, value) on top of
    /// a fresh data folder, no metrics listener and no web UI; returns once it listens.
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        let address = format!("127.0.0.1:{}", crate::caddy::free_port());
        Self::start_at(address.parse().unwrap(), settings).await
    }

    /// As [`ServerProcess::start`], listening at `address`.
    pub async fn start_at(address: SocketAddr, settings: &[(&str, &str)]) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let mut process =
            tokio::process::Command::new(crate::binary("quorate-server", "quorate-server"))
                .arg("serve")
                .env("QUORATE_LISTEN", address.to_string())
                .env("QUORATE_DATA_DIR", folder.path())
                .env("QUORATE_METRICS_LISTEN", "off")
                .env("QUORATE_WEB_DIR", "off")
                .env("NO_COLOR", "1")
                .envs(settings.iter().copied())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut errors = tokio::io::BufReader::new(process.stderr.take().unwrap()).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        // It prints its code (when it makes one), then where its API is once it listens.
        let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
        let mut code = None;
        let mut after_header = false;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the server says where it listens within 30 s")
                .unwrap()
                .unwrap_or_else(|| {
                    panic!("the server stopped: {}", log.lock().unwrap());
                });
            if line.starts_with("First-admin enrolment code") {
                after_header = true;
            } else if after_header && code.is_none() && line.starts_with("    ") {
                code = Some(line.trim().to_owned());
            } else if line.starts_with("API at") || line.starts_with("Web UI at") {
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            process,
            address,
            code,
            log,
            _folder: folder,
        }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Returns once its log holds `words` (within 30 s).
    pub async fn wait_for_log(&self, words: &str) {
        for _ in 0..300 {
            if self.log().contains(words) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server never logged {words:?}: {}", self.log());
    }
}
