//! What long-running devices are tested with: a door in front of the server that can be
//! shut and opened again (a server that restarts, a network that drops), and a command in
//! the background whose standard error is read line by line.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::{TcpListener, TcpStream},
    process::Child,
    sync::mpsc,
    task::JoinHandle,
};

/// The one address devices know, in front of whichever server runs. Shut, it refuses
/// connections and cuts those open, as the port of a stopped server does.
#[derive(Debug)]
pub struct Door {
    address: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Door {
    /// A door open in front of `upstream`.
    pub async fn open(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        Self {
            address,
            task: Some(forward(listener, upstream)),
        }
    }

    /// Its address as a URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Closes the port and every connection through it.
    pub async fn shut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Opens the same port again, in front of `upstream`.
    pub async fn reopen(&mut self, upstream: SocketAddr) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.task = Some(forward(listener, upstream));
    }
}

/// Passes every connection to `listener` on to `upstream`, until aborted (which drops the
/// listener and, with the set, every connection).
fn forward(listener: TcpListener, upstream: SocketAddr) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

/// A long-running command (`quorate-node run`, `quorate watch`) in the background, its
/// standard error read line by line.
#[derive(Debug)]
pub struct Running {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    said: Vec<String>,
}

impl Running {
    /// Starts `command`.
    pub fn start(mut command: tokio::process::Command) -> Self {
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = sender.send(line);
            }
        });
        Self {
            child,
            lines,
            said: Vec::new(),
        }
    }

    /// Waits until it says something containing `words`.
    pub async fn wait_for(&mut self, words: &str) {
        let said = async {
            while let Some(line) = self.lines.recv().await {
                self.said.push(line);
                if self.said.last().unwrap().contains(words) {
                    return true;
                }
            }
            false
        };
        let heard = tokio::time::timeout(Duration::from_secs(180), said).await;
        assert!(
            heard == Ok(true),
            "it never said {words:?} (it {}); it said:\n{}",
            if heard.is_ok() { "ended" } else { "went quiet" },
            self.said.join("\n")
        );
    }

    /// Sends SIGTERM and waits for it to end; returns its exit code and all it said.
    pub async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("it stops within a minute of SIGTERM")
            .unwrap();
        while let Some(line) = self.lines.recv().await {
            self.said.push(line);
        }
        (status.code(), self.said.join("\n"))
    }
}
