//! `quorate watch`: the recorder's daemon. It watches the folders meeting software records
//! into, takes each recording once it is finished (see [`super::sources`]), and encrypts,
//! splits and uploads it exactly as `quorate upload` does, resuming a pending upload after
//! a restart or a lost network. Once the server holds a recording whole, its plaintext is
//! removed when `--remove-plaintext` says so, and a ledger keeps it from being sent twice.
//!
//! Transient failures (the server down, the network) are tried again with a backoff; a
//! refusal (a check, a 4xx) is logged and the file left alone until it changes. The queue
//! is written to `recorder/status.json` in the configuration folder after every change, for
//! `quorate watch --status`.

use std::{
    collections::{HashMap, HashSet},
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use quorate_client::retry::{Backoff, Halt, Stop};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    Context, DeviceError, UploadArgs,
    sources::{self, Found, SourceKind},
    state::private_folder,
    upload::{self, Uploaded},
};

/// `quorate watch …`
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// A folder to watch, as KIND=FOLDER: jibri (Jibri's recordings directory), bbb
    /// (BigBlueButton's raw recordings), zoom (Zoom's local recordings) or drop (media
    /// files put there, by OBS or anything else). Repeat for each.
    #[arg(long = "folder", value_parser = parse_watched, required_unless_present = "status")]
    pub folders: Vec<(SourceKind, PathBuf)>,
    /// Remove each recording's plaintext (its file, or its source folder) once the server
    /// holds it whole. See docs/RECORDERS.md for what removing does not guarantee.
    #[arg(long)]
    pub remove_plaintext: bool,
    /// Seconds a file must have been left unchanged before it is taken.
    #[arg(long, default_value_t = 30)]
    pub settle: u64,
    /// Seconds between looks at the folders.
    #[arg(long, default_value_t = 10)]
    pub poll: u64,
    /// Upload what is ready now, then stop (for a hook or a timer).
    #[arg(long)]
    pub once: bool,
    /// Show the queue a running watcher last wrote, then stop.
    #[arg(long)]
    pub status: bool,
    /// Approvals needed to unlock each recording [default: the vault's policy].
    #[arg(long)]
    pub threshold: Option<u8>,
    /// Send at most this many bytes per second (suffixes K, M: 4M).
    #[arg(long)]
    pub limit_rate: Option<String>,
    /// The language the meetings are held in (a Whisper code: en, fr, nl, ...), sealed
    /// with each recording's details; without it the node detects it.
    #[arg(long, value_name = "CODE")]
    pub language: Option<String>,
}

fn parse_watched(text: &str) -> Result<(SourceKind, PathBuf), String> {
    let (kind, folder) = text
        .split_once('=')
        .ok_or_else(|| format!("{text}: give KIND=FOLDER, as in drop=/srv/recordings"))?;
    let kind = <SourceKind as clap::ValueEnum>::from_str(kind, true)
        .map_err(|_| format!("{kind}: the kinds are jibri, bbb, zoom and drop"))?;
    Ok((kind, PathBuf::from(folder)))
}

/// Where a recording stands, as `--status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Stage {
    /// Found, waiting to be left unchanged for the settle time.
    Settling,
    /// Being encrypted and uploaded.
    Uploading,
    /// Waiting to be tried again after a transient failure.
    Retrying,
    /// Refused; left alone until the file changes.
    Failed,
    /// The server holds it whole.
    Uploaded,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueueItem {
    file: PathBuf,
    title: String,
    stage: Stage,
    detail: String,
    since: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Queue {
    updated_at: i64,
    items: Vec<QueueItem>,
}

/// The recordings this recorder has uploaded, by [`ledger_key`], kept across restarts so a
/// file whose plaintext stays is never sent twice.
struct Ledger {
    path: PathBuf,
    keys: HashSet<String>,
}

impl Ledger {
    /// The ledger in `folder`; empty only when there is none yet (a ledger that cannot be
    /// read would have every kept file uploaded again).
    fn open(folder: &Path) -> Result<Self, DeviceError> {
        let path = folder.join("uploaded");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return Err(DeviceError::Local(format!(
                    "cannot read the ledger {}: {error}",
                    path.display()
                )));
            }
        };
        let keys = text.lines().map(str::to_owned).collect();
        Ok(Self { path, keys })
    }

    fn has(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// Adds `key`, durably, before the plaintext may be removed.
    fn add(&mut self, key: String) -> Result<(), DeviceError> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| {
                writeln!(file, "{key}")?;
                file.sync_all()
            })
            .map_err(|error| {
                DeviceError::Local(format!("cannot write {}: {error}", self.path.display()))
            })?;
        self.keys.insert(key);
        Ok(())
    }
}

/// Names a file as it is now (its canonical path, size, modification time): the same file
/// changed is another recording.
fn ledger_key(file: &Path, (len, modified): (u64, SystemTime)) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let mut hasher = Sha256::new();
    hasher.update(path.as_os_str().as_encoded_bytes());
    hasher.update(len.to_be_bytes());
    hasher.update(nanos.to_be_bytes());
    hex::encode(&hasher.finalize()[..16])
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// What one look at the folders found to do.
struct Watcher {
    args: WatchArgs,
    folder: PathBuf,
    ledger: Ledger,
    /// Files refused, with the signature they had: left alone until it changes.
    refused: HashMap<PathBuf, (u64, SystemTime)>,
    queue: Queue,
}

/// `quorate watch`.
pub(super) async fn watch(context: &mut Context, args: WatchArgs) -> Result<(), DeviceError> {
    let folder = context.state.folder.join("recorder");
    if args.status {
        return show_status(context, &folder);
    }
    private_folder(&folder)?;
    for (kind, watched) in &args.folders {
        if !watched.is_dir() {
            return Err(DeviceError::Usage(format!(
                "{} is not a folder: give the folder {kind:?} records into",
                watched.display()
            )));
        }
    }
    let mut watcher = Watcher {
        ledger: Ledger::open(&folder)?,
        folder,
        args,
        refused: HashMap::new(),
        queue: Queue::default(),
    };
    let stop = Stop::on_signals();
    let mut backoff = Backoff::default();
    eprintln!(
        "Watching {} folder(s); plaintext is {} once uploaded.",
        watcher.args.folders.len(),
        if watcher.args.remove_plaintext {
            "removed"
        } else {
            "kept"
        }
    );
    loop {
        match watcher.pass(context, &stop).await {
            Ok(()) => backoff = Backoff::default(),
            Err(Halt::Stopped) => return Ok(()),
            Err(Halt::Failed(error)) if error.is_transient() && !watcher.args.once => {
                let delay = backoff.next_delay();
                eprintln!(
                    "warning: {error}. Trying again in {} s; nothing is lost meanwhile.",
                    delay.as_secs()
                );
                if stop.sleep(delay).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            Err(Halt::Failed(error)) => return Err(error),
        }
        if watcher.args.once {
            return Ok(());
        }
        if stop
            .sleep(Duration::from_secs(watcher.args.poll))
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

impl Watcher {
    /// One look at every folder: uploads each finished recording not yet uploaded. A
    /// transient failure ends the pass (the server is likely down for the others too).
    async fn pass(&mut self, context: &mut Context, stop: &Stop) -> Result<(), Halt> {
        let found: Vec<Found> = self
            .args
            .folders
            .iter()
            .flat_map(|(kind, folder)| sources::scan(*kind, folder))
            .collect();
        self.queue
            .items
            .retain(|item| item.stage == Stage::Uploaded || item.stage == Stage::Failed);
        for recording in found {
            let Some(signature) = sources::signature(&recording.file) else {
                continue;
            };
            let key = ledger_key(&recording.file, signature);
            if self.ledger.has(&key) || self.refused.get(&recording.file) == Some(&signature) {
                continue;
            }
            let age = SystemTime::now()
                .duration_since(signature.1)
                .unwrap_or_default();
            if age < Duration::from_secs(self.args.settle) {
                self.note(
                    &recording,
                    Stage::Settling,
                    "being written, or just finished",
                );
                continue;
            }
            if stop.requested() {
                return Err(Halt::Stopped);
            }
            self.take(context, stop, recording, signature, key).await?;
        }
        self.save_queue();
        Ok(())
    }

    /// Uploads one finished recording, then removes its plaintext if configured.
    async fn take(
        &mut self,
        context: &mut Context,
        stop: &Stop,
        recording: Found,
        signature: (u64, SystemTime),
        key: String,
    ) -> Result<(), Halt> {
        self.note(&recording, Stage::Uploading, "encrypting and uploading");
        self.save_queue();
        is_recorder(context).await?;
        // The title is not logged: the journal outlives the plaintext.
        eprintln!(
            "Uploading {} ({} bytes).",
            recording.file.display(),
            signature.0
        );
        let sent = match self.send(context, stop, &recording).await {
            Ok(sent) => sent,
            Err(Halt::Failed(error)) if error.is_transient() => {
                self.note(&recording, Stage::Retrying, &error.to_string());
                self.save_queue();
                return Err(Halt::Failed(error));
            }
            Err(Halt::Failed(error)) => {
                eprintln!(
                    "error: {} was not uploaded: {error}. It is left as it is until it changes.",
                    recording.file.display()
                );
                self.note(&recording, Stage::Failed, &error.to_string());
                self.refused.insert(recording.file.clone(), signature);
                return Ok(());
            }
            Err(stopped) => return Err(stopped),
        };
        let mut detail = format!(
            "recording {} ({} bytes of ciphertext, {}-of-{})",
            sent.recording, sent.ciphertext_len, sent.threshold, sent.shares
        );
        // Noted in the ledger before the pending upload is forgotten: a crash in between
        // resumes it, finds it done, and uploads nothing twice. A ledger that cannot be
        // written leaves the pending upload for the next pass to find done.
        if let Err(error) = self.ledger.add(key) {
            eprintln!("warning: {error}; the next pass notes it again");
            return Ok(());
        }
        upload::forget_pending(context, &[recording.file.as_path()], &[])?;
        let unchanged = sources::signature(&recording.file) == Some(signature);
        if self.args.remove_plaintext && unchanged {
            remove_plaintext(&recording.plaintext);
            detail.push_str("; plaintext removed");
        } else if self.args.remove_plaintext {
            detail.push_str("; the file changed while it was uploaded, so it is kept");
        }
        eprintln!("Uploaded {}: {detail}.", recording.file.display());
        let mut uploaded = recording;
        // What the meeting was called is the members' to know, not the machine's.
        uploaded.title.clear();
        self.note(&uploaded, Stage::Uploaded, &detail);
        Ok(())
    }

    /// `quorate upload` for `recording`; a roster that changed since its key was split
    /// splits it again, once.
    async fn send(
        &self,
        context: &mut Context,
        stop: &Stop,
        recording: &Found,
    ) -> Result<Uploaded, Halt> {
        let args = UploadArgs {
            file: recording.file.clone(),
            more_files: Vec::new(),
            speakers: Vec::new(),
            title: recording.title.clone(),
            meeting_time: recording.started_at.map(|seconds| seconds.to_string()),
            attendees: recording.attendees.clone(),
            language: self.args.language.clone(),
            threshold: self.args.threshold,
            limit_rate: self.args.limit_rate.clone(),
            // A recorder signs no rule: the vault's applies, or an admin sets one later.
            keep_recording: None,
            keep_minutes: None,
        };
        let first = stop
            .unless_stopped(async {
                Ok(upload::send(context, &args, upload::ChangedDetails::StartAgain).await)
            })
            .await?;
        match first {
            Err(error) if error.server_code() == Some("roster_changed") => {
                eprintln!(
                    "The roster changed: splitting the key of {} again.",
                    args.file.display()
                );
                upload::forget_pending_of(context, &args)?;
                let again = stop
                    .unless_stopped(async {
                        Ok(upload::send(context, &args, upload::ChangedDetails::StartAgain).await)
                    })
                    .await?;
                Ok(again?)
            }
            other => Ok(other?),
        }
    }

    /// Records where `recording` stands for `--status`.
    fn note(&mut self, recording: &Found, stage: Stage, detail: &str) {
        self.queue.items.retain(|item| item.file != recording.file);
        self.queue.items.push(QueueItem {
            file: recording.file.clone(),
            title: recording.title.clone(),
            stage,
            detail: detail.to_owned(),
            since: now(),
        });
        // The newest 200 are enough to say what happened lately.
        let excess = self.queue.items.len().saturating_sub(200);
        self.queue.items.drain(..excess);
    }

    fn save_queue(&mut self) {
        self.queue.updated_at = now();
        let written = serde_json::to_vec_pretty(&self.queue)
            .map_err(|error| error.to_string())
            .and_then(|bytes| {
                quorate_client::local::write_private(&self.folder.join("status.json"), &bytes)
            });
        if let Err(error) = written {
            eprintln!("warning: the queue for --status was not written: {error}");
        }
    }
}

/// Refuses to upload unless this identity is a recorder on the verified roster: a machine
/// that records unattended keeps its passphrase beside its identity, so it must hold no
/// share (a lying server could have had it signed on as a member).
async fn is_recorder(context: &mut Context) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let me = session.identity.fingerprint();
    if roster
        .recorders()
        .iter()
        .any(|recorder| recorder.fingerprint == me)
    {
        return Ok(());
    }
    Err(DeviceError::Usage(format!(
        "this identity ({}) is not a recorder on the vault's roster: a machine that records unattended must be one, holding no share. Have an admin remove it if it was signed on as a member, and approve its enrolment with `quorate recorders approve`",
        me.short()
    )))
}

/// Removes each path (a file, or a folder with everything in it), saying what it removed.
/// A failure is logged, not fatal: the recording is uploaded either way.
fn remove_plaintext(paths: &[PathBuf]) {
    for path in paths {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        match removed {
            Ok(()) => eprintln!("Removed the plaintext {}.", path.display()),
            Err(error) => eprintln!(
                "warning: could not remove the plaintext {}: {error}; remove it by hand",
                path.display()
            ),
        }
    }
}

/// `quorate watch --status`: the queue a running watcher last wrote.
fn show_status(context: &Context, folder: &Path) -> Result<(), DeviceError> {
    let path = folder.join("status.json");
    let queue: Queue = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
            DeviceError::Local(format!("{} is damaged ({error})", path.display()))
        })?,
        Err(_) => {
            return Err(DeviceError::Usage(
                "no watcher has run with this configuration folder yet: start `quorate watch --folder KIND=FOLDER`".into(),
            ));
        }
    };
    let mut text = format!("Queue as of {} (Unix seconds):\n", queue.updated_at);
    if queue.items.is_empty() {
        text.push_str("  nothing waiting, nothing uploaded yet\n");
    }
    for item in &queue.items {
        text.push_str(&format!(
            "  {:<9}  {}  \"{}\"  {}\n",
            serde_json::to_value(&item.stage)
                .ok()
                .and_then(|stage| stage.as_str().map(str::to_owned))
                .unwrap_or_default(),
            item.file.display(),
            item.title,
            item.detail
        ));
    }
    let value = serde_json::to_value(&queue).unwrap_or_default();
    context.print(text.trim_end(), &value);
    Ok(())
}
