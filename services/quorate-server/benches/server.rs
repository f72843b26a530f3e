//! Server benchmarks, against the real `quorate-server` binary in its own process:
//!
//! 1. **Upload.** A 1 GiB ciphertext (`QUORATE_BENCH_UPLOAD_MIB` to change) uploaded through
//!    the server in 16 MiB tus chunks, against writing the same bytes straight into the same
//!    store (a local folder): the throughput ratio, and the server's peak RSS (`VmHWM`).
//! 2. **Approvals on PostgreSQL.** 100 requests, each approved by four members (the fourth
//!    approval makes it quorate and queues a job): approvals per second, one at a time and
//!    eight in flight. Votes and re-sealed shares are made beforehand, so only the server is
//!    timed.
//!
//! Run: `cargo bench -p quorate-server --bench server`. PostgreSQL at 127.0.0.1:5432
//! (`QUORATE_TEST_POSTGRES_URL` to change).

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures::StreamExt;
use quorate_crypto::{
    AgeSecretKey, RecordingId, VaultId, envelope, statement::UnlockRequest, vss::Secret,
};
use quorate_server::test_support::{Backend, TestDb};

// The server tests' helpers: a board of members, recordings, nodes, requests and votes made
// as the devices make them.
#[path = "../tests/common/mod.rs"]
mod common;

use common::{Board, FirstAdmin, flow};

/// The real `quorate-server` binary in its own process (so that its memory is its own), on
/// `db`, listening on a free port, with the first-admin code it printed.
struct Server {
    child: Child,
    url: String,
    vault: VaultId,
    code: String,
    objects: std::path::PathBuf,
}

impl Server {
    fn start(db: &TestDb) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_quorate-server"));
        command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--metrics-listen",
                "off",
            ])
            .arg("--data-dir")
            .arg(db.folder.path())
            .args(["--database-url", db.url.expose_secret()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut vault, mut code) = (None, None);
        while vault.is_none() || code.is_none() {
            let line = lines.next().expect("the server printed its code").unwrap();
            if let Some(rest) = line.strip_prefix("First-admin enrolment code for vault ") {
                vault = Some(rest.trim_end_matches(':').parse().unwrap());
            }
            if let Some((_, rest)) = line.split_once("--code ") {
                code = Some(rest.trim().to_owned());
            }
        }
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url,
            vault: vault.unwrap(),
            code: code.unwrap(),
            objects: db.folder.path().join("objects"),
        }
    }

    /// Peak resident memory of the server process, KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// A vault with its first admin and `members` more (all signed in), and a policy of `k`.
    async fn board(&self, members: usize, k: u8) -> Board {
        let admin = FirstAdmin::enrol_at(&self.url, self.vault, &self.code, "Ada").await;
        Board::around(&self.url, admin, members, k).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A generated "recording" of `len` bytes.
struct Generated(u64, u64);

impl Read for Generated {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = buffer.len().min((self.1 - self.0) as usize);
        for (i, byte) in buffer[..n].iter_mut().enumerate() {
            *byte = ((self.0 + i as u64) % 251) as u8;
        }
        self.0 += n as u64;
        Ok(n)
    }
}

/// A ciphertext on disk (ciphertext only) with its length and SHA-256.
struct Encrypted {
    len: u64,
    sha256: [u8; 32],
}

/// Encrypts `mib` MiB of generated audio into `path`.
fn encrypt(mib: usize, path: &std::path::Path) -> Encrypted {
    let key = AgeSecretKey::generate();
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let (writer, _) = envelope::encrypt(
        Generated(0, (mib as u64) << 20),
        envelope::HashingWriter::new(file),
        &key.recipient(),
    )
    .unwrap();
    let (mut file, len, sha256) = writer.finish();
    file.flush().unwrap();
    // Nothing of the source left to write back while the uploads are timed.
    file.get_ref().sync_all().unwrap();
    Encrypted { len, sha256 }
}

async fn upload_bench() {
    let mib: usize = std::env::var("QUORATE_BENCH_UPLOAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db);
    let board = server.board(1, 1).await;
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("ciphertext.age");
    let encrypted = encrypt(mib, &source);
    let (client, vault) = (&board.admin.client, board.admin.vault);
    let rss_before = server.peak_rss_kib();

    // Straight into the same store: read the file in 16 MiB pieces, write them to a new file
    // in the server's object folder, sync at the end (as the server does).
    let straight_copy = || {
        let target = server.objects.join("straight.bin");
        std::fs::create_dir_all(&server.objects).unwrap();
        let started = Instant::now();
        let mut input = std::fs::File::open(&source).unwrap();
        let mut output = std::fs::File::create(&target).unwrap();
        let mut buffer = vec![0u8; 16 << 20];
        loop {
            let n = input.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            output.write_all(&buffer[..n]).unwrap();
        }
        output.sync_data().unwrap();
        let elapsed = started.elapsed();
        std::fs::remove_file(&target).unwrap();
        elapsed
    };
    // Alternate, three rounds each, so that neither side is always timed while the other's
    // writes are still being flushed; the medians count.
    let (mut straight, mut through) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        straight.push(straight_copy());
        // A fresh recording each round, of the same ciphertext: the server never holds a
        // key, so that its manifest's key is not the one the bytes were encrypted to does
        // not change what is timed.
        let signed = common::sign_recording(
            &board.roster,
            &board.admin.identity,
            1,
            (RecordingId::random(), &Secret::random()),
            (encrypted.len, encrypted.sha256),
        );
        let started = Instant::now();
        client
            .create_recording(vault, &signed.manifest, &signed.shares)
            .await
            .unwrap();
        client
            .resume_upload(signed.id, std::fs::File::open(&source).unwrap(), |_, _| {})
            .await
            .unwrap();
        through.push(started.elapsed());
    }
    assert_eq!(client.recordings(vault).await.unwrap().len(), 3);
    straight.sort();
    through.sort();
    let (straight, through) = (straight[1], through[1]);
    let rate = |elapsed: Duration| encrypted.len as f64 / elapsed.as_secs_f64() / (1 << 20) as f64;
    println!(
        "upload of {} bytes ({mib} MiB of audio), local folder {} (TMPDIR chooses it: \
         /dev/shm measures the server's own cost without the disk), median of 3:",
        encrypted.len,
        db.folder.path().display()
    );
    println!(
        "  straight to the store: {:>8.2} s  {:>8.1} MiB/s",
        straight.as_secs_f64(),
        rate(straight)
    );
    println!(
        "  through the server:    {:>8.2} s  {:>8.1} MiB/s",
        through.as_secs_f64(),
        rate(through)
    );
    println!(
        "  ratio (server / straight): {:.2}",
        straight.as_secs_f64() / through.as_secs_f64()
    );
    println!(
        "  server peak RSS: {:.1} MiB before the uploads, {:.1} MiB after",
        rss_before as f64 / 1024.0,
        server.peak_rss_kib() as f64 / 1024.0
    );
}

async fn approvals_bench() {
    let db = TestDb::new(Backend::Postgres).await;
    {
        let server = Server::start(&db);
        let board = server.board(4, 4).await;
        let vault = board.admin.vault;
        let (made, _) = flow::uploaded(&board, 0, 4).await;
        let node = flow::approved_node(&server.url, &board).await;

        for (label, in_flight, interleaved) in [
            ("one at a time", 1usize, false),
            ("eight in flight", 8, false),
            ("eight in flight, on eight requests", 8, true),
        ] {
            // 100 requests by the admin; each member 1..=4 approves each.
            let mut prepared = Vec::new();
            for _ in 0..100 {
                let request = flow::request(&board, 0, &made, node.id, 3600);
                board
                    .admin
                    .client
                    .create_request(vault, &request)
                    .await
                    .unwrap();
                let request_id = request
                    .verify::<UnlockRequest>()
                    .unwrap()
                    .statement
                    .request_id;
                for voter in 1..=4 {
                    let (resealed, vote) =
                        flow::approve(&board, voter, &made, &request, &node.identity).await;
                    prepared.push((request_id, flow::member(&board, voter).1, vote, resealed));
                }
            }
            if interleaved {
                // Ordered by voter, eight consecutive votes are on eight different requests,
                // which do not take turns on one request's row as four votes on one do.
                prepared = (0..4)
                    .flat_map(|voter| prepared.iter().skip(voter).step_by(4).cloned())
                    .collect();
            }
            let started = Instant::now();
            let total = prepared.len();
            // A vote is sent as soon as one of the `in_flight` before it is answered.
            let mut answers =
                futures::stream::iter(prepared.iter().map(|(request, client, vote, resealed)| {
                    client.vote(vault, *request, vote, Some(resealed))
                }))
                .buffer_unordered(in_flight);
            while let Some(answer) = answers.next().await {
                answer.unwrap();
            }
            let elapsed = started.elapsed();
            println!(
                "approvals on PostgreSQL, {label}: {total} in {:.2} s = {:.0} per second",
                elapsed.as_secs_f64(),
                total as f64 / elapsed.as_secs_f64()
            );
        }
    }
    db.drop_database().await;
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let only = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    if only.as_deref().is_none_or(|name| "upload".contains(name)) {
        runtime.block_on(upload_bench());
    }
    if only
        .as_deref()
        .is_none_or(|name| "approvals".contains(name))
    {
        runtime.block_on(approvals_bench());
    }
}
