//! `quorate upload`: encrypt on this device, split the key among the verified roster, sign
//! the manifest, upload resumably.
//!
//! Before anything leaves the device the pending upload is written to a private folder: the
//! ciphertext and a state file with the signed manifest and the sealed shares. The recording
//! key itself is never written anywhere; it lives in memory until the shares are sealed.
//! Run again after an interruption, the command finds that state (by the file's path, size
//! and modification time) and resumes from the server's offset with the same ciphertext, so
//! the result is byte-identical to an uninterrupted upload. Both files are removed once the
//! server has the whole recording.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use indicatif::{ProgressBar, ProgressStyle};
use quorate_crypto::{
    Fingerprint, RecordingId, envelope,
    statement::{RecordingManifest, RecordingMetadata, SignedStatement, SplitKey},
    threshold::{Subject, Threshold},
    tracks::{TrackFile, Tracks},
    vss::Secret,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use super::{
    Context, DeviceError, UploadArgs,
    commands::verified_policy,
    state::{private_folder, write_private},
};

/// A pending upload, as kept on disk until done.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    source: PathBuf,
    source_len: u64,
    source_modified: i64,
    /// Each file's length and modification time, for a recording of several (empty in
    /// state written before those).
    #[serde(default)]
    sources: Vec<(u64, i64)>,
    /// A digest of the meeting details and the threshold the upload was made with ([`details`];
    /// none in state written before it).
    #[serde(default)]
    details: Option<String>,
    vault: String,
    recording: String,
    manifest: String,
    shares: Vec<(String, String)>,
}

/// The files `args` uploads as one recording, in order.
fn sources(args: &UploadArgs) -> impl Iterator<Item = &Path> {
    std::iter::once(args.file.as_path()).chain(args.more_files.iter().map(PathBuf::as_path))
}

/// Each of `args`' files' length and modification time: what a pending upload is resumed
/// by.
fn sources_modified(args: &UploadArgs) -> Result<Vec<(u64, i64)>, DeviceError> {
    sources(args).map(modified).collect()
}

/// A digest of what `args` states about the meeting (sealed in its metadata) and its
/// threshold: a pending upload made with other ones is not resumed as if they were these.
fn details(args: &UploadArgs) -> String {
    let stated = (
        &args.title,
        &args.meeting_time,
        &args.attendees,
        &args.language,
        args.threshold,
    );
    // JSON: unambiguous (quoted, escaped, delimited) and the same from one build to the next.
    let encoded = serde_json::to_vec(&stated).unwrap_or_default();
    hex::encode(sha2_digest(&encoded))
}

/// The total length and the newest modification time of files of `signatures`.
fn totals(signatures: &[(u64, i64)]) -> (u64, i64) {
    signatures
        .iter()
        .fold((0, 0), |(len, newest), (file_len, file_modified)| {
            (len + file_len, newest.max(*file_modified))
        })
}

/// The encoded header of a recording of several tracks, and the files' lengths it states.
type TracksHeader = (Zeroizing<Vec<u8>>, Vec<u64>);

/// The header naming each track's speaker (`quorate_crypto::tracks`), when `args` names
/// speakers, and the files' lengths it states: those in `signatures` (each file's length
/// and modification time, as the pending upload records them).
fn tracks_header(
    args: &UploadArgs,
    signatures: &[(u64, i64)],
) -> Result<Option<TracksHeader>, DeviceError> {
    let files: Vec<&Path> = sources(args).collect();
    if args.speakers.is_empty() {
        return match files.len() {
            1 => Ok(None),
            _ => Err(DeviceError::Usage(
                "several files are one track per participant: name who speaks on each with --speaker NAME, in the files' order".into(),
            )),
        };
    }
    // The lengths the pending upload records (one look at each file): a file that changes
    // after it no longer matches them, and the encryption reading it fails.
    let lens: Vec<u64> = signatures.iter().map(|(len, _)| *len).collect();
    let tracks = if files.len() == 1 {
        // One file: a name for each of its audio streams.
        vec![TrackFile {
            len: lens[0],
            speakers: args.speakers.clone(),
        }]
    } else if args.speakers.len() == files.len() {
        lens.iter()
            .zip(&args.speakers)
            .map(|(len, name)| TrackFile {
                len: *len,
                speakers: vec![name.clone()],
            })
            .collect()
    } else {
        return Err(DeviceError::Usage(format!(
            "{} files but {} --speaker names: give one name for each file, in order",
            files.len(),
            args.speakers.len()
        )));
    };
    let header = Tracks { files: tracks }
        .encode()
        .map_err(|error| DeviceError::Usage(format!("the speakers: {error}")))?;
    Ok(Some((header, lens)))
}

/// What is encrypted: the file, or the tracks' header and every file after it, each read
/// for exactly the length the header states.
fn plaintext(
    args: &UploadArgs,
    header: Option<TracksHeader>,
) -> Result<Box<dyn Read + Send>, DeviceError> {
    let open = |path: &Path| {
        std::fs::File::open(path)
            .map(|file| std::io::BufReader::with_capacity(1 << 20, file))
            .map_err(|error| DeviceError::Usage(format!("cannot read {}: {error}", path.display())))
    };
    let Some((header, lens)) = header else {
        return Ok(Box::new(open(&args.file)?));
    };
    let mut reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(header));
    for (path, len) in sources(args).zip(lens) {
        let exactly = Exactly {
            file: open(path)?,
            left: len,
            path: path.to_owned(),
        };
        reader = Box::new(reader.chain(exactly));
    }
    Ok(reader)
}

/// A file of a recording of several tracks, read for exactly the length its header states:
/// one that grows or shrinks while it is encrypted fails the upload, rather than making a
/// recording whose tracks do not line up.
struct Exactly<R> {
    file: R,
    left: u64,
    path: PathBuf,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let changed = |how: &str| {
            std::io::Error::other(format!(
                "{} {how} while it was encrypted: upload again once it is complete",
                self.path.display()
            ))
        };
        if self.left == 0 {
            let mut more = [0u8; 1];
            return match self.file.read(&mut more)? {
                0 => Ok(0),
                _ => Err(changed("grew")),
            };
        }
        let wanted = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.file.read(&mut buf[..wanted])?;
        if read == 0 {
            return Err(changed("shrank"));
        }
        self.left -= read as u64;
        Ok(read)
    }
}

fn modified(path: &Path) -> Result<(u64, i64), DeviceError> {
    let meta = std::fs::metadata(path)
        .map_err(|error| DeviceError::Usage(format!("cannot read {}: {error}", path.display())))?;
    if !meta.is_file() {
        return Err(DeviceError::Usage(format!(
            "{} is not a file",
            path.display()
        )));
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    Ok((meta.len(), modified))
}

/// The media type sealed in the details of a recording of one track per participant.
const TRACKS_MEDIA_TYPE: &str = "application/x-quorate-tracks";

fn media_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("wav") => "audio/wav",
        Some("flac") => "audio/flac",
        Some("mp3") => "audio/mpeg",
        Some("m4a" | "mp4" | "aac") => "audio/mp4",
        Some("ogg" | "oga") => "audio/ogg",
        Some("opus") => "audio/opus",
        Some("webm") => "audio/webm",
        Some("mkv") => "video/x-matroska",
        _ => "application/octet-stream",
    }
}

/// Unix seconds, or `YYYY-MM-DDTHH:MM[:SS][Z]` in UTC.
fn parse_time(text: &str) -> Result<i64, DeviceError> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    let bad = || {
        DeviceError::Usage(format!(
            "--meeting-time {text}: give 2026-11-24T10:00:00Z (UTC) or Unix seconds"
        ))
    };
    let text = text.trim_end_matches('Z');
    let (date, time) = text.split_once(['T', ' ']).ok_or_else(bad)?;
    let numbers = |part: &str, count: usize| -> Result<Vec<i64>, DeviceError> {
        let values: Vec<i64> = part
            .split([':', '-'])
            .map(|value| value.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if values.len() < count || values.len() > 3 {
            return Err(bad());
        }
        Ok(values)
    };
    let date = numbers(date, 3)?;
    let time = numbers(time, 2)?;
    let (year, month, day) = (date[0], date[1], date[2]);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + time[0] * 3600 + time[1] * 60 + time.get(2).copied().unwrap_or(0))
}

/// `4M`, `512K`, `1000000`: bytes per second.
fn parse_rate(text: &str) -> Result<u64, DeviceError> {
    let bad = || {
        DeviceError::Usage(format!(
            "--limit-rate {text}: give bytes per second, e.g. 4M"
        ))
    };
    let (number, scale) = match text.trim().to_ascii_uppercase().strip_suffix('M') {
        Some(number) => (number.to_owned(), 1 << 20),
        None => match text.trim().to_ascii_uppercase().strip_suffix('K') {
            Some(number) => (number.to_owned(), 1 << 10),
            None => (text.trim().to_owned(), 1),
        },
    };
    let value: u64 = number.parse().map_err(|_| bad())?;
    (value > 0).then_some(value * scale).ok_or_else(bad)
}

fn bar(length: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// Encrypts the file into the pending folder and makes the signed manifest and shares.
async fn prepare(
    context: &mut Context,
    session: &super::Session,
    args: &UploadArgs,
    folder: &Path,
    signatures: Vec<(u64, i64)>,
) -> Result<Pending, DeviceError> {
    let (source_len, source_modified) = totals(&signatures);
    let roster = context.verified_roster(session).await?;
    let policy = verified_policy(context, session, &roster).await?.ok_or_else(|| {
        DeviceError::Usage(
            "this vault has no policy yet: an admin must set one (`quorate policy set --threshold K`)"
                .into(),
        )
    })?;
    let members: Vec<_> = roster
        .members()
        .iter()
        .map(|member| member.public)
        .collect();
    let k = args.threshold.unwrap_or(policy.min_threshold);
    if k < policy.min_threshold || usize::from(k) > members.len() {
        return Err(DeviceError::Usage(format!(
            "--threshold must be between the policy's {} and the {} members",
            policy.min_threshold,
            members.len()
        )));
    }
    let threshold = Threshold::new(k.into(), members.len())
        .map_err(|error| DeviceError::Usage(error.to_string()))?;
    let started_at = args.meeting_time.as_deref().map(parse_time).transpose()?;
    let header = tracks_header(args, &signatures)?;
    let metadata = RecordingMetadata {
        title: args.title.clone(),
        started_at,
        ended_at: None,
        media_type: if header.is_some() {
            TRACKS_MEDIA_TYPE
        } else {
            media_type(&args.file)
        }
        .into(),
        attendees: args.attendees.clone(),
        language: args
            .language
            .as_deref()
            .map(super::quorum::language_code)
            .transpose()?,
    };
    let sealed_metadata = metadata
        .seal(&roster.recipients())
        .map_err(|error| DeviceError::Usage(format!("the meeting details: {error}")))?;

    let recording = RecordingId::random();
    let secret = Secret::random();
    let key = secret.age_key(&Subject::Recording(recording));
    let ciphertext_path = folder.join(format!("{recording}.age"));
    let encrypted = {
        let input = plaintext(args, header)?;
        let output = std::fs::File::create(&ciphertext_path).map_err(|error| {
            DeviceError::Local(format!(
                "cannot write {}: {error}",
                ciphertext_path.display()
            ))
        })?;
        let progress = bar(source_len, "encrypting");
        let reader = progress.wrap_read(input);
        let recipient = key.recipient();
        let written = tokio::task::spawn_blocking(move || {
            let writer =
                envelope::HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, output));
            envelope::encrypt(reader, writer, &recipient).and_then(|(writer, _)| {
                let (mut file, len, sha256) = writer.finish();
                std::io::Write::flush(&mut file)?;
                file.get_ref().sync_all()?;
                Ok((len, sha256))
            })
        })
        .await
        .map_err(|error| DeviceError::Local(format!("encryption stopped: {error}")))?
        .map_err(|error| DeviceError::Local(format!("encryption failed: {error}")))?;
        progress.finish_and_clear();
        written
    };
    let (split, sealed) = SplitKey::split_and_seal(
        session.vault,
        Subject::Recording(recording),
        &secret,
        threshold,
        &members,
    )
    .map_err(|error| DeviceError::Refused(format!("splitting the key: {error}")))?;
    drop((secret, key));
    let manifest = SignedStatement::sign(
        &RecordingManifest {
            vault_id: session.vault,
            recording_id: recording,
            uploader: session.identity.fingerprint(),
            roster_head: roster.head(),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs() as i64),
            ciphertext_len: encrypted.0,
            ciphertext_sha256: encrypted.1,
            split,
            sealed_metadata,
        },
        &session.identity,
    );
    Ok(Pending {
        source: args.file.clone(),
        source_len,
        source_modified,
        sources: signatures,
        details: Some(details(args)),
        vault: session.vault.to_string(),
        recording: recording.to_string(),
        manifest: STANDARD.encode(manifest.to_bytes()),
        shares: members
            .iter()
            .map(|member| member.fingerprint().to_hex())
            .zip(sealed.iter().map(|share| STANDARD.encode(share)))
            .collect(),
    })
}

/// A recording the server now holds whole. Its pending state stays until
/// [`forget_pending`]: a recorder first notes the upload in its ledger, so that a crash in
/// between resumes (and finds it done) rather than uploading it again.
pub(super) struct Uploaded {
    pub recording: RecordingId,
    pub ciphertext_len: u64,
    pub threshold: u8,
    pub shares: usize,
}

/// Where the pending upload of `files` (with `speakers` named) is kept: the folder and its
/// state file, named by the files' canonical paths and the speakers, so that other files,
/// another order or other names make a new upload rather than resume one made otherwise.
fn pending_paths(
    context: &Context,
    files: &[&Path],
    speakers: &[String],
) -> Result<(PathBuf, PathBuf), DeviceError> {
    let mut named = Vec::new();
    for file in files {
        let source = std::fs::canonicalize(file)
            .map_err(|error| DeviceError::Usage(format!("{}: {error}", file.display())))?;
        if !named.is_empty() {
            named.push(0);
        }
        named.extend_from_slice(source.to_string_lossy().as_bytes());
    }
    // A single file without speakers keeps the name it always had.
    for speaker in speakers {
        named.extend_from_slice(b"\0speaker\0");
        named.extend_from_slice(speaker.as_bytes());
    }
    let folder = context.state.folder.join("uploads");
    let state_path = folder.join(format!("{}.toml", hex::encode(&sha2_digest(&named)[..12])));
    Ok((folder, state_path))
}

/// [`pending_paths`] of what `args` uploads.
fn pending_paths_of(
    context: &Context,
    args: &UploadArgs,
) -> Result<(PathBuf, PathBuf), DeviceError> {
    let files: Vec<&Path> = sources(args).collect();
    pending_paths(context, &files, &args.speakers)
}

/// Forgets the pending upload of `files` with `speakers` (its state and ciphertext): once
/// the server holds it whole, or so that the next upload splits the key again (after the
/// roster changed, say; the server drops the abandoned upload when it expires).
pub(super) fn forget_pending(
    context: &Context,
    files: &[&Path],
    speakers: &[String],
) -> Result<(), DeviceError> {
    let (folder, state_path) = pending_paths(context, files, speakers)?;
    if let Ok(text) = std::fs::read_to_string(&state_path)
        && let Ok(pending) = toml::from_str::<Pending>(&text)
    {
        let _ = std::fs::remove_file(folder.join(format!("{}.age", pending.recording)));
    }
    match std::fs::remove_file(&state_path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(DeviceError::Local(
            format!("cannot remove {}: {error}", state_path.display()),
        )),
        _ => Ok(()),
    }
}

/// [`forget_pending`] of what `args` uploads.
pub(super) fn forget_pending_of(context: &Context, args: &UploadArgs) -> Result<(), DeviceError> {
    let files: Vec<&Path> = sources(args).collect();
    forget_pending(context, &files, &args.speakers)
}

/// `quorate upload`.
pub(super) async fn upload(context: &mut Context, args: UploadArgs) -> Result<(), DeviceError> {
    // Checked before anything is sent, so that a typo or a member's try uploads nothing.
    let keep = match (&args.keep_recording, &args.keep_minutes) {
        (Some(recordings), Some(minutes)) => {
            Some(super::records::own_rule_terms(context, recordings, minutes).await?)
        }
        _ => None,
    };
    let sent = send(context, &args, ChangedDetails::Refuse).await.map_err(|error| {
        if error.server_code() == Some("roster_changed") {
            let state = pending_paths_of(context, &args)
                .map_or_else(|_| "its pending state".into(), |(_, path)| path.display().to_string());
            DeviceError::Usage(format!(
                "the roster changed before the upload began: remove {state} and run the command again to split the key for the new roster"
            ))
        } else {
            error
        }
    })?;
    forget_pending_of(context, &args)?;
    let Uploaded {
        recording,
        ciphertext_len,
        threshold: k,
        shares,
    } = sent;
    let kept = match keep {
        Some(terms) => super::records::set_own_rule(context, recording, terms)
            .await
            .map_err(|error| {
                DeviceError::Local(format!(
                    "uploaded as recording {recording}, but its own retention rule was not set ({error}): set it with `quorate retention set --recording {recording} …`"
                ))
            })?,
        None => String::new(),
    };
    context.print(
        &format!(
            "Uploaded {} as recording {recording} ({ciphertext_len} bytes of ciphertext).\nIts key is split {k}-of-{shares} among the members: nobody hears it without {k} approvals.{kept}",
            args.file.display(),
        ),
        &json!({ "recording_id": recording.to_string(), "ciphertext_len": ciphertext_len, "threshold": k, "shares": shares }),
    );
    Ok(())
}

/// What [`send`] does with a pending upload made with other meeting details than it is
/// given now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChangedDetails {
    /// Refuse, saying what to do: a person may have mistyped them.
    Refuse,
    /// Forget it and upload again with these: a recorder's details come from its source,
    /// whose newest word is right.
    StartAgain,
}

/// What [`resumable`] found for this run.
enum Found {
    /// No pending upload: make one.
    Nothing,
    /// A pending upload made with these details: resume it.
    Pending(Pending),
    /// A pending upload made with other details, which this run starts again
    /// ([`ChangedDetails::StartAgain`]) unless the server already holds it whole.
    MadeOtherwise(Pending),
}

/// The pending upload of `args` at `state_path`, if any: refused if its files changed
/// since, and, if it was made with other meeting details, refused or handed back to start
/// again as `changed` says.
fn resumable(
    args: &UploadArgs,
    state_path: &Path,
    (signatures, vault): (&[(u64, i64)], &str),
    changed: ChangedDetails,
) -> Result<Found, DeviceError> {
    let Ok(text) = std::fs::read_to_string(state_path) else {
        return Ok(Found::Nothing);
    };
    let pending: Pending = toml::from_str(&text).map_err(|error| {
        DeviceError::Local(format!(
            "{} is damaged ({}); remove it to start the upload again",
            state_path.display(),
            error.message()
        ))
    })?;
    if (pending.source_len, pending.source_modified) != totals(signatures)
        || (!pending.sources.is_empty() && pending.sources != signatures)
        || pending.vault != vault
    {
        return Err(DeviceError::Usage(format!(
            "an unfinished upload of {} exists, but the file changed since; remove {} to upload the new file",
            args.file.display(),
            state_path.display()
        )));
    }
    let made_otherwise = pending
        .details
        .as_ref()
        .is_some_and(|made_with| *made_with != details(args));
    match (made_otherwise, changed) {
        (false, _) => {
            eprintln!("Resuming the unfinished upload of {}.", args.file.display());
            Ok(Found::Pending(pending))
        }
        (true, ChangedDetails::Refuse) => Err(DeviceError::Usage(format!(
            "an unfinished upload of {} was started with other meeting details (--title, --meeting-time, --attendee, --language or --threshold); run it again with the same ones to resume it, or remove {} to start again with these",
            args.file.display(),
            state_path.display()
        ))),
        (true, ChangedDetails::StartAgain) => Ok(Found::MadeOtherwise(pending)),
    }
}

/// A pending upload's manifest (as signed, and its statement), shares and recording.
struct Opened {
    manifest: SignedStatement,
    signed: RecordingManifest,
    shares: Vec<(Fingerprint, Vec<u8>)>,
    recording: RecordingId,
}

/// Reads back what `pending` keeps.
fn opened(pending: &Pending) -> Result<Opened, DeviceError> {
    let manifest = SignedStatement::from_bytes(
        &STANDARD
            .decode(&pending.manifest)
            .map_err(|_| DeviceError::Local("the pending upload's manifest is damaged".into()))?,
    )
    .map_err(|error| DeviceError::Local(format!("the pending upload's manifest: {error}")))?;
    // This device's own manifest: its length, not the server's, says when the upload is done.
    let signed = manifest
        .verify::<RecordingManifest>()
        .map_err(|error| DeviceError::Local(format!("the pending upload's manifest: {error}")))?
        .statement;
    let shares = pending
        .shares
        .iter()
        .map(|(member, sealed)| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(member, &mut bytes).map_err(|_| {
                DeviceError::Local("the pending upload's shares are damaged".into())
            })?;
            let sealed = STANDARD.decode(sealed).map_err(|_| {
                DeviceError::Local("the pending upload's shares are damaged".into())
            })?;
            Ok((Fingerprint::from_bytes(bytes), sealed))
        })
        .collect::<Result<Vec<_>, DeviceError>>()?;
    let recording: RecordingId = pending
        .recording
        .parse()
        .map_err(|_| DeviceError::Local("the pending upload's recording ID is damaged".into()))?;
    Ok(Opened {
        manifest,
        signed,
        shares,
        recording,
    })
}

impl Opened {
    /// What the server holds of it: the same manifest again is answered with where its
    /// upload stands.
    async fn offset(&self, session: &super::Session) -> Result<u64, DeviceError> {
        let state = session
            .client
            .create_recording(session.vault, &self.manifest, &self.shares)
            .await?;
        Ok(state.upload_offset)
    }

    fn uploaded(&self) -> Uploaded {
        Uploaded {
            recording: self.recording,
            ciphertext_len: self.signed.ciphertext_len,
            threshold: self.signed.split.threshold.k(),
            shares: self.shares.len(),
        }
    }
}

/// Encrypts, splits and uploads `args.file`, or resumes its pending upload (see
/// [`ChangedDetails`]); the server's refusals come back as they are (a `roster_changed`
/// means: discard the pending upload and send again).
pub(super) async fn send(
    context: &mut Context,
    args: &UploadArgs,
    changed: ChangedDetails,
) -> Result<Uploaded, DeviceError> {
    let rate = args.limit_rate.as_deref().map(parse_rate).transpose()?;
    let signatures = sources_modified(args)?;
    let (folder, state_path) = pending_paths_of(context, args)?;
    let session = context.session().await?;
    private_folder(&folder)?;
    let vault = session.vault.to_string();
    let pending = match resumable(args, &state_path, (&signatures, &vault), changed)? {
        Found::Pending(pending) => pending,
        Found::Nothing => {
            record_new(context, &session, args, (&folder, &state_path), signatures).await?
        }
        Found::MadeOtherwise(pending) => {
            // Whole on the server already (the answer saying so was lost before the
            // recorder noted it): done, not uploaded twice.
            let begun = opened(&pending)?;
            if begun.offset(&session).await? == begun.signed.ciphertext_len {
                return Ok(begun.uploaded());
            }
            eprintln!(
                "The meeting details of {} changed since its upload began: uploading it again.",
                args.file.display()
            );
            forget_pending_of(context, args)?;
            record_new(context, &session, args, (&folder, &state_path), signatures).await?
        }
    };
    let pending = opened(&pending)?;
    let offset = pending.offset(&session).await?;
    let ciphertext_path = folder.join(format!("{}.age", pending.recording));
    let ciphertext = std::fs::File::open(&ciphertext_path).map_err(|error| {
        DeviceError::Local(format!(
            "the pending ciphertext {} is missing ({error}); remove {} and upload again",
            ciphertext_path.display(),
            state_path.display()
        ))
    })?;
    // All of this device's own length means the last answer was lost after the upload
    // completed (the server then holds no open upload to ask about).
    let len = pending.signed.ciphertext_len;
    if offset != len {
        let progress = bar(len, "uploading");
        progress.set_position(offset);
        let shown = progress.clone();
        session
            .client
            .resume_upload_limited(
                pending.recording,
                ciphertext,
                rate,
                Some(len),
                move |sent, _| shown.set_position(sent),
            )
            .await?;
        progress.finish_and_clear();
    }
    Ok(pending.uploaded())
}

/// Encrypts and splits `args`' recording anew ([`prepare`]) and records it as pending at
/// `state_path` before anything is sent.
async fn record_new(
    context: &mut Context,
    session: &super::Session,
    args: &UploadArgs,
    (folder, state_path): (&Path, &Path),
    signatures: Vec<(u64, i64)>,
) -> Result<Pending, DeviceError> {
    let pending = prepare(context, session, args, folder, signatures).await?;
    let text = toml::to_string(&pending)
        .map_err(|error| DeviceError::Local(format!("cannot record the upload: {error}")))?;
    write_private(state_path, text.as_bytes())?;
    Ok(pending)
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_exactly(bytes: &[u8], len: u64) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Exactly {
            file: bytes,
            left: len,
            path: PathBuf::from("bo.flac"),
        }
        .read_to_end(&mut out)
        .map(|_| out)
    }

    #[test]
    fn a_track_that_grows_or_shrinks_while_it_is_encrypted_fails_the_upload() {
        assert_eq!(read_exactly(b"abcdef", 6).unwrap(), b"abcdef");
        let grew = read_exactly(b"abcdefg", 6).unwrap_err().to_string();
        assert!(
            grew.contains("bo.flac grew") && grew.contains("upload again"),
            "{grew}"
        );
        let shrank = read_exactly(b"abcde", 6).unwrap_err().to_string();
        assert!(shrank.contains("bo.flac shrank"), "{shrank}");
    }
}
