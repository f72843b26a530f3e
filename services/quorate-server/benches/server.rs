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

use quorate_client::Client;
use quorate_crypto::{
    AgeSecretKey, Identity, NodeId, RecordingId, RequestId, VaultId, envelope,
    rewrap::{self, Purpose},
    roster::Roster,
    statement::{
        Decision, NodeApproval, RecordingManifest, RecordingMetadata, Role, RosterChange,
        SignedStatement, SplitKey, UnlockRequest, VaultPolicy, Vote,
    },
    threshold::{Subject, Threshold},
};
use sqlx::Connection;

struct Server {
    child: Child,
    url: String,
    vault: VaultId,
    code: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(database_url: Option<&str>) -> Self {
        let data = tempfile::tempdir().unwrap();
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
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
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
            _data: data,
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

    fn objects(&self) -> std::path::PathBuf {
        self._data.path().join("objects")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A vault with an admin and `members` more (all signed in), and a policy of `k`.
struct Board {
    vault: VaultId,
    people: Vec<(Identity, Client)>,
    roster: Roster,
}

async fn board(server: &Server, members: usize, k: u8) -> Board {
    let vault = server.vault;
    let admin = Identity::generate();
    let genesis = Roster::genesis_entry(vault, &admin, "Ada", 1).unwrap();
    let mut admin_client = Client::new(&server.url);
    admin_client
        .enrol_first_admin(&server.code, &genesis)
        .await
        .unwrap();
    admin_client.sign_in(vault, &admin).await.unwrap();
    let pin = genesis.digest();
    let mut people = Vec::new();
    for index in 0..members {
        let invite = admin_client.invite(vault, "member").await.unwrap();
        let identity = Identity::generate();
        let mut client = Client::new(&server.url);
        client
            .enrol_member(&invite.code, "M", &identity.public())
            .await
            .unwrap();
        let roster = admin_client.roster(vault, &pin).await.unwrap();
        let entry = roster
            .sign_change(
                &admin,
                RosterChange::Add,
                identity.public(),
                &format!("Member {index}"),
                Role::Member,
                2,
            )
            .unwrap();
        admin_client.append_roster(vault, &entry).await.unwrap();
        client.sign_in(vault, &identity).await.unwrap();
        people.push((identity, client));
    }
    let policy = VaultPolicy {
        vault_id: vault,
        sequence: 0,
        min_threshold: k,
        issued_at: 3,
    };
    admin_client
        .set_policy(vault, &SignedStatement::sign(&policy, &admin))
        .await
        .unwrap();
    let roster = admin_client.roster(vault, &pin).await.unwrap();
    people.insert(0, (admin, admin_client));
    Board {
        vault,
        people,
        roster,
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

/// A ciphertext on disk (ciphertext only) with its key, length and SHA-256.
struct Encrypted {
    key: AgeSecretKey,
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
    Encrypted { key, len, sha256 }
}

type Shares = Vec<(quorate_crypto::Fingerprint, Vec<u8>)>;

/// A fresh recording (its own ID and split) for an encrypted file, by the board's admin.
fn recording(
    board: &Board,
    k: u8,
    encrypted: &Encrypted,
) -> (RecordingId, SignedStatement, Shares) {
    let id = RecordingId::random();
    let publics: Vec<_> = board
        .roster
        .members()
        .iter()
        .map(|member| member.public)
        .collect();
    let (split, sealed) = SplitKey::split_and_seal(
        board.vault,
        Subject::Recording(id),
        &encrypted.key,
        Threshold::new(k.into(), publics.len()).unwrap(),
        &publics,
    )
    .unwrap();
    let metadata = RecordingMetadata {
        title: "Bench".into(),
        started_at: None,
        ended_at: None,
        media_type: "audio/wav".into(),
        attendees: Vec::new(),
    };
    let uploader = &board.people[0].0;
    let manifest = SignedStatement::sign(
        &RecordingManifest {
            vault_id: board.vault,
            recording_id: id,
            uploader: uploader.fingerprint(),
            roster_head: board.roster.head(),
            created_at: 4,
            ciphertext_len: encrypted.len,
            ciphertext_sha256: encrypted.sha256,
            split,
            sealed_metadata: metadata.seal(&board.roster.recipients()).unwrap(),
        },
        uploader,
    );
    let shares = publics
        .iter()
        .map(|public| public.fingerprint())
        .zip(sealed)
        .collect();
    (id, manifest, shares)
}

async fn upload_bench() {
    let mib: usize = std::env::var("QUORATE_BENCH_UPLOAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let server = Server::start(None);
    let board = board(&server, 1, 1).await;
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("ciphertext.age");
    let encrypted = encrypt(mib, &source);
    let client = &board.people[0].1;
    let rss_before = server.peak_rss_kib();

    // Straight into the same store: read the file in 16 MiB pieces, write them to a new file
    // in the server's object folder, sync at the end (as the server does).
    let straight_copy = || {
        let target = server.objects().join("straight.bin");
        std::fs::create_dir_all(server.objects()).unwrap();
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
        let (id, manifest, shares) = recording(&board, 1, &encrypted);
        let started = Instant::now();
        client
            .create_recording(board.vault, &manifest, &shares)
            .await
            .unwrap();
        client
            .resume_upload(id, std::fs::File::open(&source).unwrap(), |_, _| {})
            .await
            .unwrap();
        through.push(started.elapsed());
    }
    assert_eq!(client.recordings(board.vault).await.unwrap().len(), 3);
    straight.sort();
    through.sort();
    let (straight, through) = (straight[1], through[1]);
    let rate = |elapsed: Duration| encrypted.len as f64 / elapsed.as_secs_f64() / (1 << 20) as f64;
    println!(
        "upload of {} bytes ({mib} MiB of audio), local folder, median of 3:",
        encrypted.len
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
    let admin_url = std::env::var("QUORATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let name = format!("quorate_bench_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    {
        let server = Server::start(Some(&url));
        let board = board(&server, 4, 4).await;
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("small.age");
        let encrypted = encrypt(1, &source);
        let (id, manifest, shares) = recording(&board, 4, &encrypted);
        let uploader = &board.people[0].1;
        uploader
            .create_recording(board.vault, &manifest, &shares)
            .await
            .unwrap();
        uploader
            .resume_upload(id, std::fs::File::open(&source).unwrap(), |_, _| {})
            .await
            .unwrap();
        // A node for the requests.
        let node = Identity::generate();
        let invite = uploader.invite(board.vault, "node").await.unwrap();
        let enrolled = Client::new(&server.url)
            .enrol_node(&invite.code, "bench", &node.public())
            .await
            .unwrap();
        let node_id: NodeId = enrolled.node_id.parse().unwrap();
        let approval = NodeApproval {
            vault_id: board.vault,
            node_id,
            node: node.public(),
            hardware: "bench".into(),
            model_sha256: [1; 32],
            attestation: Vec::new(),
            issued_at: quorate_server::now(),
            expires_at: quorate_server::now() + 86_400,
            revoked: false,
        };
        uploader
            .approve_node(
                board.vault,
                node_id,
                &SignedStatement::sign(&approval, &board.people[0].0),
            )
            .await
            .unwrap();
        let recording = manifest.verify::<RecordingManifest>().unwrap().statement;

        for (label, in_flight) in [("one at a time", 1usize), ("eight in flight", 8)] {
            // 100 requests by the admin; each member 1..=4 approves each.
            let mut prepared = Vec::new();
            for _ in 0..100 {
                let now = quorate_server::now();
                let request = SignedStatement::sign(
                    &UnlockRequest {
                        vault_id: board.vault,
                        request_id: RequestId::random(),
                        subject: Subject::Recording(id),
                        purpose: Purpose::Transcribe,
                        node_id,
                        requester: board.people[0].0.fingerprint(),
                        reason: "bench".into(),
                        created_at: now,
                        expires_at: now + 3600,
                    },
                    &board.people[0].0,
                );
                uploader
                    .create_request(board.vault, &request)
                    .await
                    .unwrap();
                let verified = request.verify::<UnlockRequest>().unwrap();
                for (identity, _) in &board.people[1..] {
                    let share = board
                        .people
                        .iter()
                        .find(|(i, _)| i.fingerprint() == identity.fingerprint())
                        .unwrap();
                    let sealed = share.1.recording_share(board.vault, id).await.unwrap();
                    let binding = recording.share_binding(&identity.fingerprint()).unwrap();
                    let resealed = rewrap::rewrap(
                        &base64::Engine::decode(
                            &base64::engine::general_purpose::STANDARD,
                            &sealed.sealed,
                        )
                        .unwrap(),
                        identity.age_key(),
                        &binding,
                        &verified.statement.binding(),
                        &node.public().recipient,
                    )
                    .unwrap();
                    let vote = SignedStatement::sign(
                        &Vote {
                            vault_id: board.vault,
                            request_id: verified.statement.request_id,
                            request_digest: verified.digest,
                            voter: identity.fingerprint(),
                            decision: Decision::Approve {
                                resealed_share_sha256: rewrap::resealed_digest(&resealed),
                            },
                            comment: String::new(),
                            issued_at: now,
                        },
                        identity,
                    );
                    prepared.push((
                        verified.statement.request_id,
                        share.1.clone(),
                        vote,
                        resealed,
                    ));
                }
            }
            let started = Instant::now();
            let total = prepared.len();
            let mut pending = prepared.into_iter();
            loop {
                let batch: Vec<_> = pending.by_ref().take(in_flight).collect();
                if batch.is_empty() {
                    break;
                }
                let calls = batch.iter().map(|(request, client, vote, resealed)| {
                    client.vote(board.vault, *request, vote, Some(resealed))
                });
                for result in futures::future::join_all(calls).await {
                    result.unwrap();
                }
            }
            let elapsed = started.elapsed();
            println!(
                "approvals on PostgreSQL, {label}: {total} in {:.2} s = {:.0} per second",
                elapsed.as_secs_f64(),
                total as f64 / elapsed.as_secs_f64()
            );
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut connection)
    .await
    .unwrap();
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
