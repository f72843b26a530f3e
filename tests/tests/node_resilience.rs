//! `quorate-node run` as a long-running service: the server stops and starts again (between
//! jobs and in the middle of one) and the node goes on and finishes its job under the lease
//! it holds; SIGTERM stops it cleanly, between jobs, or in the middle of one by handing the
//! job back (not failed, the attempt not counted) for its next run.

use std::{net::SocketAddr, time::Duration};

use quorate_client::Client;
use quorate_e2e::{Backend, NodeMachine, Server, Staffed, identity};
use quorate_server::test_support::{TestDb, TestServer};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::{TcpListener, TcpStream},
    process::Child,
    sync::mpsc,
    task::JoinHandle,
};

/// The one address the node and the devices know, in front of whichever server runs. Shut,
/// it refuses connections and cuts those open, as the port of a stopped server does.
struct Door {
    address: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Door {
    async fn open(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        Self {
            address,
            task: Some(forward(listener, upstream)),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Closes the port and every connection through it.
    async fn shut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Opens the same port again, in front of `upstream`.
    async fn reopen(&mut self, upstream: SocketAddr) {
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

/// `quorate-node run` in the background, its standard error read line by line.
struct Running {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    said: Vec<String>,
}

impl Running {
    fn start(machine: &NodeMachine) -> Self {
        let mut child = machine
            .command(&["run", "--poll-seconds", "1"])
            .spawn()
            .unwrap();
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

    /// Waits until the node says something containing `words`.
    async fn wait_for(&mut self, words: &str) {
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
            "the node never said {words:?} (it {}); it said:\n{}",
            if heard.is_ok() { "ended" } else { "went quiet" },
            self.said.join("\n")
        );
    }

    /// Sends SIGTERM and waits for the node to end; returns its exit code and all it said.
    async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the node stops within a minute of SIGTERM")
            .unwrap();
        while let Some(line) = self.lines.recv().await {
            self.said.push(line);
        }
        (status.code(), self.said.join("\n"))
    }
}

/// Stops `server` and starts another on the same database behind the shut `door`, which
/// opens again once the node has said it is trying again.
async fn restart_once_the_node_retries(
    server: TestServer,
    db: &TestDb,
    door: &mut Door,
    node: &mut Running,
) -> TestServer {
    door.shut().await;
    server.stop().await;
    node.wait_for("Trying again in").await;
    let restarted = TestServer::start(db).await;
    door.reopen(restarted.address).await;
    restarted
}

/// A vault with its node approved, every device and the node reaching the server through a
/// door; and a client of the admin's, through it too.
async fn staffed_behind_a_door(app: &Server) -> (Staffed, Door, Client) {
    let mut staffed = Staffed::new(app).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let door = Door::open(app.address).await;
    for device in std::iter::once(&mut staffed.admin).chain(&mut staffed.members) {
        device.server = door.url();
    }
    staffed.machine.server = door.url();
    let mut watcher = Client::new(&door.url());
    watcher
        .sign_in(app.codes[0].vault_id, &identity(&staffed.admin))
        .await
        .unwrap();
    (staffed, door, watcher)
}

#[tokio::test]
async fn a_node_finishes_its_job_through_server_restarts_and_stops_on_sigterm() {
    let app = Server::start(Backend::Sqlite).await;
    let vault = app.codes[0].vault_id;
    let (staffed, mut door, watcher) = staffed_behind_a_door(&app).await;
    let Server { mut server, db } = app;
    let mut node = Running::start(&staffed.machine);
    node.wait_for("waiting for jobs").await;

    // Between jobs: the server goes away; the node says so, tries again, and is back.
    server = restart_once_the_node_retries(server, &db, &mut door, &mut node).await;
    let request = staffed
        .half_approved_request("The committee agreed to repair the library roof in spring.")
        .await;
    staffed.members[0].ok(&["approve", &request, "--yes"]).await;

    // In the middle of the job: the server goes away again after the node claimed it.
    node.wait_for("Claimed job").await;
    server = restart_once_the_node_retries(server, &db, &mut door, &mut node).await;
    node.wait_for("done: transcript").await;
    let jobs = watcher.jobs(vault).await.unwrap();
    assert_eq!(
        (jobs[0].status.as_str(), jobs[0].attempts),
        ("done", 1),
        "finished under the lease it claimed"
    );
    assert_eq!(watcher.transcripts(vault).await.unwrap().len(), 1);

    // Between jobs, SIGTERM ends it cleanly.
    let (code, said) = node.terminate().await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("Stopped."), "{said}");
    door.shut().await;
    Server { server, db }.stop().await;
}

#[tokio::test]
async fn a_node_stopped_mid_job_hands_the_job_back_to_its_next_run() {
    let app = Server::start(Backend::Sqlite).await;
    let vault = app.codes[0].vault_id;
    let (staffed, _door, watcher) = staffed_behind_a_door(&app).await;
    let spoken = "The council met on Tuesday. The treasurer presented the accounts, the members \
        discussed the new bridge over the river, and the chair closed the meeting at nine.";
    let request = staffed.half_approved_request(spoken).await;
    staffed.members[0].ok(&["approve", &request, "--yes"]).await;

    let mut node = Running::start(&staffed.machine);
    node.wait_for("Claimed job").await;
    let (code, said) = node.terminate().await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("handed back unfinished"), "{said}");
    let jobs = watcher.jobs(vault).await.unwrap();
    assert_eq!(
        (jobs[0].status, jobs[0].attempts),
        (quorate_api::JobStatus::Queued, 0),
        "back in the queue, not failed, the attempt not counted: {:?}",
        jobs[0]
    );
    assert!(watcher.transcripts(vault).await.unwrap().is_empty());
    let audit = watcher.audit_page(vault, None, 1000).await.unwrap();
    assert!(audit.iter().any(|entry| entry.action == "job.returned"));

    // The next run takes the job at once, without waiting for a lease to lapse.
    staffed.machine.ok(&["run", "--once"]).await;
    let jobs = watcher.jobs(vault).await.unwrap();
    assert_eq!(
        (jobs[0].status, jobs[0].attempts),
        (quorate_api::JobStatus::Done, 1)
    );
    app.stop().await;
}
