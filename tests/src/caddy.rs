//! Debian's Caddy as the balancer or TLS terminator in front of servers under test, as an
//! operator runs it (`infra/compose/Caddyfile`): started on a Caddyfile, killed and reaped
//! when dropped.

use std::path::Path;
use std::time::Duration;

/// A running Caddy.
#[derive(Debug)]
pub struct Caddy(std::process::Child);

impl Caddy {
    /// Runs Caddy on `config` (a Caddyfile, written into `folder` with its state) and waits
    /// until it listens on `port`.
    pub fn start(folder: &Path, config: &str, port: u16) -> Self {
        std::fs::write(folder.join("Caddyfile"), config).unwrap();
        let caddy = Self(
            std::process::Command::new("caddy")
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(folder.join("Caddyfile"))
                .env("HOME", folder)
                .env("XDG_DATA_HOME", folder.join("data"))
                .env("XDG_CONFIG_HOME", folder.join("config"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("caddy is installed by scripts/install-test-deps.sh"),
        );
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return caddy;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("caddy did not listen on {port}");
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
