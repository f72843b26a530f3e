//! `quorate-node run`: sign in, check this node's approval and model, then claim and carry
//! out jobs one at a time, renewing each lease while it works. A job that cannot be done
//! (a bad share, an unsupported format, a decoding error) fails with its reason; the node
//! goes on to the next.
//!
//! Every call to the server is tried again while it fails transiently (see [`retrying`]), so
//! a server that restarts or a network that drops does not end the node; a refused check or
//! a refusal by the server does, as before, but for a lost lease (the job is left to the
//! server) and a lapsed session (signed in again). SIGTERM or ctrl-c stops the node between jobs;
//! during a job it stops at the job's next step (whisper.cpp checks between its own) and
//! hands the job back, so the next run takes it at once; if the server cannot be reached
//! then, the job waits for its lease to lapse (two minutes, [`LEASE_NOTE`]).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicI32, Ordering},
    },
    time::Duration,
};

use quorate_client::{
    Client, ClientError, DeviceError,
    checks::printable,
    minutes::{ReleaseUpload, SearchKeys},
};
use quorate_crypto::{
    RecordingId, TranscriptId,
    roster::Roster,
    statement::{SignedStatement, StatementKind, UnlockRequest},
};
use quorate_node::{
    audio,
    job::{self, CheckedDownload, Ciphertext, DownloadError, JobFailure, Transcript},
    speakers,
    transcribe::{GPU_BACKEND, Settings, StreamError, Transcriber, free_cores},
};
use sha2::{Digest, Sha256};

use quorate_client::retry::{Halt, Stop, retrying};

use crate::{SignedIn, sign_in, verified_approval};

/// How long a stopping node waits for the server to take a job back.
const GIVE_BACK_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest time between two looks for a job that found none.
const MIN_LOOK_INTERVAL: Duration = Duration::from_secs(2);

/// What the node says of a job it leaves unfinished.
const LEASE_NOTE: &str = "the server gives it out again once its lease lapses (two minutes)";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// How `run` was asked to work.
pub(crate) struct Options {
    pub(crate) once: bool,
    pub(crate) threads: Option<usize>,
    /// The GPU to run Whisper on, in a build with a GPU backend.
    pub(crate) gpu_device: i32,
    pub(crate) wait_seconds: u64,
    pub(crate) max_bytes: u64,
}

/// What the node checked before it takes any job.
struct Ready {
    session: SignedIn,
    model: [u8; 32],
    transcriber: Transcriber,
    max_bytes: u64,
    stop: Stop,
}

async fn prepare(
    folder: &Path,
    server: Option<&str>,
    options: &Options,
    stop: Stop,
) -> Result<Ready, Halt> {
    let session = retrying("sign in", &stop, || sign_in(folder, server)).await?;
    let roster = retrying("fetch the roster", &stop, || session.roster()).await?;
    // Pinned now, not at the first job: a server choosing which job comes first cannot
    // then show this node an older policy.
    retrying("fetch the vault policy", &stop, || {
        session.policy_if_any(&roster)
    })
    .await?;
    let view = retrying("fetch this node's approval", &stop, || {
        session.client.node(session.vault, session.node)
    })
    .await?;
    let approval = view.approval.ok_or_else(|| {
        DeviceError::Usage("this node is not approved yet: an admin approves it first".into())
    })?;
    let (approval, _) = verified_approval(&roster, &approval, session.node, &session.identity)?;
    approval
        .check_active(now())
        .map_err(|error| DeviceError::Refused(format!("refusing to run: {error}")))?;
    let chosen = std::fs::read_to_string(folder.join("model")).map_err(|_| {
        DeviceError::Usage("no model imported: run `quorate-node models import PATH`".into())
    })?;
    let path = folder
        .join("models")
        .join(format!("{}.ggml", chosen.trim()));
    let file = std::fs::read(&path).map_err(|error| {
        DeviceError::Usage(format!("cannot read the model {}: {error}", path.display()))
    })?;
    let model: [u8; 32] = Sha256::digest(&file).into();
    drop(file);
    if model != approval.model_sha256 {
        return Err(DeviceError::Refused(format!(
            "the model {} is not the one this node's approval names ({}): refusing to run",
            hex::encode(model),
            hex::encode(approval.model_sha256)
        ))
        .into());
    }
    let settings = Settings {
        gpu: GPU_BACKEND.map(|_| options.gpu_device),
        ..Settings::for_threads(options.threads.unwrap_or_else(free_cores))
    };
    let transcriber = Transcriber::load_with(&path, settings).map_err(DeviceError::Local)?;
    let transcriber = match speech_detector(folder)? {
        Some(vad) => transcriber
            .with_speech_detection(&vad)
            .map_err(DeviceError::Local)?,
        None => transcriber,
    };
    Ok(Ready {
        session,
        model,
        transcriber,
        max_bytes: options.max_bytes,
        stop,
    })
}

/// The imported voice activity detector, if any, after checking the file is the one
/// imported (its name is its SHA-256): a changed file is refused, not run.
fn speech_detector(folder: &Path) -> Result<Option<std::path::PathBuf>, DeviceError> {
    let Ok(chosen) = std::fs::read_to_string(folder.join(quorate_node::vad::POINTER)) else {
        return Ok(None);
    };
    let chosen = chosen.trim();
    let path = folder.join("models").join(format!("{chosen}.ggml"));
    let file = std::fs::read(&path).map_err(|error| {
        DeviceError::Usage(format!(
            "cannot read the VAD model {}: {error}; import it again (`quorate-node models import`)",
            path.display()
        ))
    })?;
    let found = hex::encode(Sha256::digest(&file));
    if found != chosen {
        return Err(DeviceError::Refused(format!(
            "the VAD model {} has changed since it was imported (SHA-256 {found}): refusing to run; import it again",
            path.display()
        )));
    }
    Ok(Some(path))
}

/// What a job downloads: a recording's or a sealed transcript's ciphertext.
enum Object {
    Recording(RecordingId),
    Transcript(TranscriptId),
}

/// Downloads `object` checked against the length and SHA-256 of its signed manifest, from
/// the start again after each transient failure. A server answer that breaks the protocol
/// (more bytes than that length) or other bytes are the job's failure.
async fn download(
    ready: &Ready,
    object: Object,
    len: u64,
    sha256: [u8; 32],
) -> Result<Result<Ciphertext, JobFailure>, Halt> {
    let step = match object {
        Object::Recording(_) => "download the recording",
        Object::Transcript(_) => "download the sealed transcript",
    };
    retrying(step, &ready.stop, || {
        download_once(ready, &object, len, sha256)
    })
    .await
}

/// One try of [`download`]: a connection that fails is the node's failure (tried again), not
/// the job's.
async fn download_once(
    ready: &Ready,
    object: &Object,
    len: u64,
    sha256: [u8; 32],
) -> Result<Result<Ciphertext, JobFailure>, DeviceError> {
    let what = match object {
        Object::Recording(_) => "recording",
        Object::Transcript(_) => "sealed transcript",
    };
    let mut sink = match CheckedDownload::new(what, len, sha256, ready.max_bytes) {
        Ok(sink) => sink,
        Err(refused) => return downloaded(Err(refused)),
    };
    let (client, vault) = (&ready.session.client, ready.session.vault);
    let fetched = match *object {
        Object::Recording(recording) => {
            client
                .download_recording(vault, recording, None, len, &mut sink)
                .await
        }
        Object::Transcript(transcript) => {
            client
                .download_transcript(vault, transcript, len, &mut sink)
                .await
        }
    };
    match fetched {
        Ok(_) => downloaded(sink.finish()),
        Err(ClientError::Invalid(reason)) => downloaded(Err(sink.refused(&reason))),
        Err(error) => Err(error.into()),
    }
}

/// A download's outcome as the job's (a refused download fails the job) or this node's (a
/// temporary folder that cannot take it stops the node, and the job is handed back).
fn downloaded(
    outcome: Result<Ciphertext, DownloadError>,
) -> Result<Result<Ciphertext, JobFailure>, DeviceError> {
    match outcome {
        Ok(ciphertext) => Ok(Ok(ciphertext)),
        Err(DownloadError::Job(failure)) => Ok(Err(failure)),
        Err(DownloadError::Local(reason)) => Err(DeviceError::Local(reason)),
    }
}

/// Renews the lease every 30 seconds with the latest progress until dropped.
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn renew(
    client: Client,
    request: String,
    lease: String,
    progress: Arc<AtomicI32>,
    stage: &'static str,
) -> Renewal {
    Renewal(tokio::spawn(async move {
        loop {
            let permille = (progress.load(Ordering::Relaxed).clamp(0, 100) * 10) as u16;
            if let Err(error) = client.job_progress(&request, &lease, permille, stage).await {
                eprintln!("warning: could not renew the lease of job {request}: {error}");
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }))
}

/// Carries out one claimed job; a `JobFailure` is the job's fault, a `Halt` the node's (or a
/// stop).
async fn process(
    ready: &Ready,
    claim: &quorate_api::JobClaim,
) -> Result<Result<(), JobFailure>, Halt> {
    let releases = SignedStatement::from_bytes(&claim.subject_manifest)
        .ok()
        .is_some_and(|signed| signed.kind() == StatementKind::TranscriptManifest);
    if releases {
        release(ready, claim).await
    } else {
        transcribe(ready, claim).await
    }
}

/// Releases a sealed transcript: opens it with the rebuilt key, publishes a copy for every
/// current member and the blind-index postings.
async fn release(
    ready: &Ready,
    claim: &quorate_api::JobClaim,
) -> Result<Result<(), JobFailure>, Halt> {
    let (session, stop) = (&ready.session, &ready.stop);
    let (roster, min_approvals) = match roster_and_policy(ready).await? {
        Ok(found) => found,
        Err(failure) => return Ok(Err(failure)),
    };
    let board = job::Board {
        roster: &roster,
        min_approvals,
    };
    let producer = match job::transcript_producer(claim) {
        Ok(producer) => producer,
        Err(failure) => return Ok(Err(failure)),
    };
    let producer_view = retrying("fetch the transcript's node", stop, || {
        session.client.node(session.vault, producer)
    })
    .await?;
    let Some(approval) = producer_view.approval else {
        return Ok(Err(JobFailure(
            "the node that made the transcript was never approved".into(),
        )));
    };
    let unlocked = match job::unlock_transcript(
        claim,
        board,
        &approval,
        &session.identity,
        session.node,
        now(),
    ) {
        Ok(unlocked) => unlocked,
        Err(failure) => return Ok(Err(failure)),
    };
    let search_key = match search_keys(ready, &roster).await? {
        Ok(keys) => keys,
        Err(failure) => return Ok(Err(failure)),
    };
    let sealed = match download(
        ready,
        Object::Transcript(unlocked.manifest.transcript_id),
        unlocked.manifest.ciphertext_len,
        unlocked.manifest.ciphertext_sha256,
    )
    .await?
    {
        Ok(sealed) => sealed,
        Err(failure) => return Ok(Err(failure)),
    };
    let release = match job::release(
        &unlocked,
        sealed,
        &search_key.current,
        &roster,
        &session.identity,
        session.node,
        now(),
    ) {
        Ok(release) => release,
        Err(failure) => return Ok(Err(failure)),
    };
    // A completion tried again after a lost answer is answered the same by the server.
    let stored = retrying("send the release", stop, || {
        session.client.complete_release(
            &claim.request_id,
            &claim.lease_token,
            ReleaseUpload {
                manifest: &release.manifest,
                copy: &release.copy,
                grants: &release.grants,
                postings: &release.postings,
                search_key_generation: search_key.generation,
            },
        )
    })
    .await?;
    eprintln!(
        "Job {} done: transcript {} released to {} members, {} postings indexed.",
        printable(&claim.request_id),
        printable(&stored.transcript_id),
        release.grants.len(),
        release.postings.len()
    );
    Ok(Ok(()))
}

/// The verified roster, and the least approvals the vault policy asks of a job's key. A
/// policy this node must refuse (rolled back, missing, not an admin's) fails the job with the
/// reason; the node goes on.
async fn roster_and_policy(ready: &Ready) -> Result<Result<(Roster, u8), JobFailure>, Halt> {
    let (session, stop) = (&ready.session, &ready.stop);
    let roster = retrying("fetch the roster", stop, || session.roster()).await?;
    let policy = retrying("fetch the vault policy", stop, || async {
        match session.policy(&roster).await {
            Ok(policy) => Ok(Ok(policy.min_threshold)),
            Err(DeviceError::Refused(reason)) => Ok(Err(JobFailure(reason))),
            Err(other) => Err(other),
        }
    })
    .await?;
    Ok(policy.map(|min_approvals| (roster, min_approvals)))
}

/// The vault's search keys for indexing released minutes. A key that does not open or check
/// against the admins' chain, none sealed to this node, or a newest key a removed member
/// holds is the job's failure, not the node's.
async fn search_keys(
    ready: &Ready,
    roster: &Roster,
) -> Result<Result<SearchKeys, JobFailure>, Halt> {
    let (session, stop) = (&ready.session, &ready.stop);
    let opened = retrying("fetch the search key", stop, || async {
        match session
            .client
            .open_search_key(session.vault, roster, session.identity.age_key())
            .await
        {
            Err(ClientError::Invalid(reason)) => Ok(Err(JobFailure(reason))),
            fetched => fetched.map(Ok),
        }
    })
    .await?;
    Ok(match opened {
        Err(failure) => Err(failure),
        Ok(None) => Err(JobFailure(
            "this node holds no copy of the vault's newest search key: an admin shares it (`quorate share-keys`), then ask again".into(),
        )),
        // Tokens under a key a removed member holds would let them (with the server) read the
        // minutes' words by trying a dictionary: a server that withholds the rotation is
        // caught here, since the newest key it admits to predates the removal.
        Ok(Some(keys)) => match keys.stale_since {
            Some(removal) => Err(JobFailure(format!(
                "the vault's newest search key was made before roster entry {removal} removed a member who holds it: an admin rotates it (`quorate search-key rotate`), then ask again"
            ))),
            None => Ok(keys),
        },
    })
}

/// What a decoding failure means for the job. The plaintext is read from a spool checked
/// against the manifest, so a read that fails means the disk changed it.
fn audio_failure(error: audio::AudioError) -> String {
    match error {
        audio::AudioError::Unreadable(reason) => format!("{}: {reason}", job::SPOOL_CHANGED),
        other => other.to_string(),
    }
}

/// Transcribes a recording and seals the transcript.
async fn transcribe(
    ready: &Ready,
    claim: &quorate_api::JobClaim,
) -> Result<Result<(), JobFailure>, Halt> {
    let (session, stop) = (&ready.session, &ready.stop);
    let (roster, min_approvals) = match roster_and_policy(ready).await? {
        Ok(found) => found,
        Err(failure) => return Ok(Err(failure)),
    };
    let board = job::Board {
        roster: &roster,
        min_approvals,
    };
    // The language the members signed into the request, if any: one this model cannot
    // transcribe fails the job before the key is rebuilt or the recording fetched.
    let transcribes_language = |request: &UnlockRequest| {
        request
            .language
            .as_deref()
            .map_or(Ok(()), |code| ready.transcriber.check_language(code))
    };
    let unlocked = match job::unlock(
        claim,
        board,
        &session.identity,
        session.node,
        now(),
        transcribes_language,
    ) {
        Ok(unlocked) => unlocked,
        Err(failure) => return Ok(Err(failure)),
    };
    let language = unlocked.request.language.clone();
    // Checked against the manifest before a byte of it reaches the decrypter, and so the
    // audio decoders: the recipient is public, so a server could encrypt any audio to it.
    let ciphertext = match download(
        ready,
        Object::Recording(unlocked.manifest.recording_id),
        unlocked.manifest.ciphertext_len,
        unlocked.manifest.ciphertext_sha256,
    )
    .await?
    {
        Ok(ciphertext) => ciphertext,
        Err(failure) => return Ok(Err(failure)),
    };
    let progress = Arc::new(AtomicI32::new(0));
    let renewal = renew(
        session.client.clone(),
        claim.request_id.clone(),
        claim.lease_token.clone(),
        Arc::clone(&progress),
        "transcribing",
    );
    let shown = Arc::clone(&progress);
    let stopping = stop.clone();
    // Decrypting, decoding and transcribing go together, a chunk at a time: the plaintext is
    // read from the spooled ciphertext as the decoder needs it and never held whole.
    // A recording of one track per participant is transcribed track by track, each segment
    // named by its speaker.
    let transcribed = tokio::task::block_in_place(|| {
        let plaintext = job::decrypt(ciphertext, &unlocked.key).map_err(|failure| failure.0)?;
        speakers::transcribe_recording(
            &ready.transcriber,
            plaintext,
            language.as_deref(),
            move |percent| shown.store(percent, Ordering::Relaxed),
            move || stopping.requested(),
        )
        .map_err(|error| match error {
            StreamError::Audio(error) => audio_failure(error),
            StreamError::Transcription(reason) => reason,
        })
    });
    drop(renewal);
    let (language, segments) = match transcribed {
        Ok(result) => result,
        // Given up because the node is stopping: not the job's failure.
        Err(_) if stop.requested() => return Err(Halt::Stopped),
        Err(error) => return Ok(Err(JobFailure(error))),
    };
    let transcript = Transcript {
        language,
        model_sha256: hex::encode(ready.model),
        node_id: session.node.to_string(),
        recording_id: unlocked.manifest.recording_id.to_string(),
        segments,
    };
    // The members now, not when the job began: the server takes the transcript only if its
    // key is split among the current members.
    let roster = match retrying("fetch the roster", stop, || session.roster()).await {
        Ok(roster) => roster,
        Err(halt) => {
            job::wipe(transcript);
            return Err(halt);
        }
    };
    let sealed = job::seal(
        &unlocked,
        &transcript,
        &roster,
        &session.identity,
        session.node,
        ready.model,
        now(),
    );
    job::wipe(transcript);
    let sealed = match sealed {
        Ok(sealed) => sealed,
        Err(failure) => return Ok(Err(failure)),
    };
    // A completion tried again after a lost answer is answered the same by the server.
    let stored = retrying("send the transcript", stop, || {
        session.client.complete_job(
            &claim.request_id,
            &claim.lease_token,
            &sealed.manifest,
            &sealed.ciphertext,
            &sealed.shares,
        )
    })
    .await?;
    eprintln!(
        "Job {} done: transcript {} sealed to the recording's {} share holders.",
        printable(&claim.request_id),
        printable(&stored.transcript_id),
        sealed.shares.len()
    );
    Ok(Ok(()))
}

pub(crate) async fn run(
    folder: &Path,
    server: Option<&str>,
    options: Options,
) -> Result<(), DeviceError> {
    // Before any key or plaintext exists in this process.
    let hardened = quorate_node::hardening::harden().map_err(DeviceError::Local)?;
    if !hardened.memory_locked {
        eprintln!(
            "note: memory is not locked (the memory-lock limit is not unlimited); keys and audio may be swapped out. Run with LimitMEMLOCK=infinity to lock it."
        );
    }
    match work(folder, server, &options, Stop::on_signals()).await {
        Ok(()) => Ok(()),
        Err(Halt::Stopped) => {
            eprintln!("Stopped.");
            Ok(())
        }
        Err(Halt::Failed(error)) => Err(error),
    }
}

/// Prepares, then claims and carries out jobs until told to stop (or after one, `--once`).
async fn work(
    folder: &Path,
    server: Option<&str>,
    options: &Options,
    stop: Stop,
) -> Result<(), Halt> {
    let mut ready = prepare(folder, server, options, stop).await?;
    eprintln!(
        "Node {} is approved and loaded model {}; waiting for jobs.",
        ready.session.node,
        hex::encode(ready.model)
    );
    loop {
        if ready.stop.requested() {
            return Err(Halt::Stopped);
        }
        // `--once` looks once; a running node waits on the server for its next job.
        let wait = Duration::from_secs(if options.once {
            0
        } else {
            options.wait_seconds
        });
        let asked = tokio::time::Instant::now();
        let claimed = retrying("look for a job", &ready.stop, || {
            ready.session.client.claim_job_waiting(wait)
        })
        .await;
        let claim = match claimed {
            // The session lapsed (they last hours): sign in again, as at the start.
            Err(Halt::Failed(DeviceError::Server { status: 401, .. })) => {
                eprintln!("The session ended; signing in again.");
                ready.session =
                    retrying("sign in", &ready.stop, || sign_in(folder, server)).await?;
                continue;
            }
            claimed => claimed?,
        };
        let Some(claim) = claim else {
            if options.once {
                eprintln!("No job waits for this node.");
                return Ok(());
            }
            // A server that answers at once (one shutting down, or one that does not wait)
            // is asked again after a pause, not in a tight loop.
            let since = asked.elapsed();
            if since < MIN_LOOK_INTERVAL {
                ready.stop.sleep(MIN_LOOK_INTERVAL - since).await?;
            }
            continue;
        };
        carry_out(&ready, &claim).await?;
        if options.once {
            return Ok(());
        }
    }
}

/// Carries out a claimed job and reports its own failure to the server. A job whose lease
/// was lost (it lapsed while the server was away) is left: the server gives it out again.
async fn carry_out(ready: &Ready, claim: &quorate_api::JobClaim) -> Result<(), Halt> {
    // The server's words are shown escaped (they could carry terminal escape sequences).
    let job = printable(&claim.request_id);
    eprintln!("Claimed job {job} (attempt {}).", claim.attempt);
    let done = ready.stop.unless_stopped(process(ready, claim)).await;
    let outcome = match done {
        Err(Halt::Stopped) => {
            give_back(ready, claim, &job).await;
            return Err(Halt::Stopped);
        }
        Err(Halt::Failed(error)) if lease_lost(&error) => {
            eprintln!("Job {job} left: {error}");
            return Ok(());
        }
        Err(Halt::Failed(error)) if board_moved_on(&error) => Err(JobFailure(error.to_string())),
        // This machine cannot do it (its temporary folder, say): not the job's failure. It
        // goes back to the queue at once, and the node stops with the reason.
        Err(Halt::Failed(DeviceError::Local(reason))) => {
            give_back(ready, claim, &job).await;
            return Err(Halt::Failed(DeviceError::Local(reason)));
        }
        done => done?,
    };
    let Err(failure) = outcome else {
        return Ok(());
    };
    eprintln!("Job {job} failed: {}", printable(&failure.0));
    let client = &ready.session.client;
    match retrying("report the job's failure", &ready.stop, || {
        client.fail_job(&claim.request_id, &claim.lease_token, &failure.0)
    })
    .await
    {
        Err(Halt::Failed(error)) if lease_lost(&error) => {
            eprintln!("Job {job} left: {error}");
            Ok(())
        }
        reported => reported,
    }
}

/// Hands a job the node is stopping in the middle of back to the server, so that the next
/// run takes it at once; tried once, briefly, since the operator asked the node to stop.
async fn give_back(ready: &Ready, claim: &quorate_api::JobClaim, job: &str) {
    let handed = tokio::time::timeout(
        GIVE_BACK_TIMEOUT,
        ready
            .session
            .client
            .return_job(&claim.request_id, &claim.lease_token),
    )
    .await;
    match handed {
        Ok(Ok(())) => eprintln!("Job {job} handed back unfinished: the next run takes it."),
        Ok(Err(error)) => eprintln!(
            "Job {job} left unfinished ({}): {LEASE_NOTE}.",
            printable(&error.to_string())
        ),
        Err(_) => eprintln!("Job {job} left unfinished (the server did not answer): {LEASE_NOTE}."),
    }
}

/// Whether the server refused a completion because the board moved on while the job ran (a
/// member added or removed, the search key rotated): the job's failure, asked for again by
/// the members, not the node's.
fn board_moved_on(error: &DeviceError) -> bool {
    matches!(
        error.server_code(),
        Some("roster_changed" | "search_key_rotated")
    )
}

/// Whether the server says this node no longer holds the job's lease.
fn lease_lost(error: &DeviceError) -> bool {
    error.server_code() == Some("lease_lost")
}
