//! The `quorate` command: arguments, errors and exit codes, and the context every command
//! runs in (settings, identity, a signed-in client). Every check of the protocol is made
//! here, on the member's device, with `quorate-crypto`; the server is never trusted with one.

mod commands;
mod minutes;
mod quorum;
mod recorders;
mod records;
mod reshare;
mod sources;
mod state;
mod upload;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use quorate_client::{Client, ClientError, DeviceError};
use quorate_crypto::{Identity, VaultId, roster::Roster};

pub use state::State;

/// The `quorate` command line.
#[derive(Debug, Parser)]
#[command(
    name = "quorate",
    version,
    about = "Quorate's meeting client and member tool: every check is made on this device.",
    after_help = "Settings, pins and sessions live in the configuration folder \
                  (QUORATE_CONFIG_DIR, else $XDG_CONFIG_HOME/quorate, else ~/.config/quorate). \
                  The identity's passphrase is asked for, or taken from QUORATE_PASSPHRASE."
)]
pub struct Cli {
    /// The server, e.g. http://127.0.0.1:8080 [default: the one you enrolled with].
    #[arg(long, global = true, env = "QUORATE_SERVER")]
    pub server: Option<String>,
    /// The identity file [default: the one `keygen` made].
    #[arg(long, global = true, env = "QUORATE_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// The vault (UUID) [default: the one you enrolled in last].
    #[arg(long, global = true, env = "QUORATE_VAULT")]
    pub vault: Option<String>,
    /// A PEM file of certificate authorities to trust beside the system's, for a server
    /// whose certificate a private authority signed.
    #[arg(long, global = true, env = "QUORATE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a new identity (passphrase-protected) and print its fingerprint.
    Keygen {
        /// Where to write it [default: identity.age in the configuration folder].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Redeem a bootstrap code or an invite; pin the vault's genesis.
    Enroll {
        /// The one-time code.
        #[arg(long)]
        code: String,
        /// Your name, as the admins will see it [default: $USER].
        #[arg(long)]
        name: Option<String>,
        /// The vault's genesis digest (64 hex digits), as an admin's `quorate members` shows
        /// it: enrolment is refused, and nothing pinned, when the server's differs.
        #[arg(long)]
        genesis: Option<String>,
    },
    /// Use an identity made elsewhere (the web UI's Join page) on this device.
    ///
    /// Pins the vault's genesis as it was shown to you; give --server, --vault and
    /// --identity too.
    Connect {
        /// The vault's genesis digest (64 hex digits), as the Join page or an admin's
        /// `quorate members` shows it: refused, and nothing kept, when the server's differs.
        #[arg(long)]
        genesis: String,
    },
    /// The roster (verified against the pinned genesis), and its changes.
    Members {
        #[command(subcommand)]
        action: Option<MembersAction>,
    },
    /// Recorders: machines that record meetings and upload them unattended, holding no
    /// share and reading nothing.
    Recorders {
        #[command(subcommand)]
        action: Option<RecordersAction>,
    },
    /// The vault's policy: the least number of approvals that unlock a recording.
    Policy {
        #[command(subcommand)]
        action: Option<PolicyAction>,
    },
    /// How long the vault keeps recordings and minutes; an admin signs the rule.
    Retention {
        #[command(subcommand)]
        action: Option<records::RetentionAction>,
    },
    /// Legal holds: placed and lifted by k members' votes; while one is in force, nothing
    /// it covers is deleted.
    Holds {
        #[command(subcommand)]
        action: Option<records::HoldsAction>,
    },
    /// Move the shares of every recording and transcript to the current members, without
    /// rebuilding any key: deal your share, or take your new one. Run it after the roster
    /// changes, until nothing waits.
    Reshare,
    /// Transcription nodes and their approvals.
    Nodes {
        #[command(subcommand)]
        action: Option<NodesAction>,
    },
    /// Encrypt a recording on this device, split its key among the members, and upload it
    /// (resumable: run it again after an interruption).
    Upload(UploadArgs),
    /// Run as a recorder: watch the folders meeting software records into, and upload each
    /// finished recording (resumably, through restarts and network loss).
    Watch(watch::WatchArgs),
    /// The vault's recordings, manifests verified.
    Recordings,
    /// Ask for a recording to be transcribed, or its transcript released to the members, by
    /// one approved node.
    Request {
        /// The recording ID.
        recording: String,
        /// The approved node that would receive the key.
        #[arg(long)]
        node: String,
        /// What the node may do with the key.
        #[arg(long, value_enum, default_value_t = RequestPurpose::Transcribe)]
        purpose: RequestPurpose,
        /// Why, for the voters (the server sees it: keep it general).
        #[arg(long)]
        reason: String,
        /// Hours the request stays open.
        #[arg(long, default_value_t = 48)]
        hours: i64,
        /// The language the meeting is spoken in, as a Whisper language code (en, fr, nl,
        /// de, ...); signed into the request. Without it, the one the uploader stated, or
        /// else the node detects it.
        #[arg(long, value_name = "CODE")]
        language: Option<String>,
    },
    /// Requests awaiting your vote, signatures verified.
    Requests {
        /// Every request, not only those awaiting you.
        #[arg(long)]
        all: bool,
    },
    /// Approve a request: check everything, re-seal your share to its node, sign your vote.
    Approve {
        /// The request ID.
        request: String,
        /// Do not ask to confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Deny a request, with a signed vote.
    Deny {
        /// The request ID.
        request: String,
        /// Why (shown to the others).
        #[arg(long, default_value = "")]
        reason: String,
        /// Do not ask to confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Search approved minutes: the words are blinded on this device, the server sees
    /// tokens only; snippets are built here from the released copies.
    Search {
        /// The words to look for.
        query: String,
        /// Meetings per page.
        #[arg(long, default_value_t = 10)]
        limit: u32,
        /// The page, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
    },
    /// Export a recording's released transcript: txt, srt, vtt, json, or md (minutes).
    Transcript {
        /// The recording ID.
        recording: String,
        /// txt, srt, vtt, json or md.
        #[arg(long, default_value = "md")]
        format: String,
        /// A file [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The vault's search key: replace it after a member left (`members remove` does), or
    /// re-index released minutes under the newest.
    SearchKey {
        #[command(subcommand)]
        action: SearchKeyAction,
    },
    /// Seal the search key (admins) and the released minutes you can open to the members and
    /// nodes that lack them (run after approving members or nodes; approving does it too).
    ShareKeys {
        /// Seal every released key to this member again, replacing what they hold (admins):
        /// for a member whose key does not open (their fingerprint).
        #[arg(long)]
        member: Option<String>,
    },
    /// The audit log: verify it, or export it.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

/// `quorate audit …`
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Recompute the hash chain and check every signature in it, on this device.
    Verify,
    /// Write the verified log as JSON lines.
    Export {
        /// A file [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `quorate upload …`
#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The recording (WAV, FLAC, MP3, M4A, Ogg, Opus, WebM, Matroska).
    pub file: PathBuf,
    /// More files of the same meeting, one per participant (each named with --speaker):
    /// uploaded as one recording, transcribed track by track.
    pub more_files: Vec<PathBuf>,
    /// Who speaks on each track, in order (repeat): one name for each file, or, for one
    /// file with several audio streams (one per participant), one for each stream (the
    /// node refuses a file whose streams the names do not match). Sealed inside the
    /// recording; the transcript names the speaker of every segment.
    #[arg(long = "speaker", value_name = "NAME")]
    pub speakers: Vec<String>,
    /// The meeting's title (sealed to the members; the server never sees it).
    #[arg(long)]
    pub title: String,
    /// When the meeting started: RFC 3339 (2026-11-24T10:00:00Z) or Unix seconds.
    #[arg(long)]
    pub meeting_time: Option<String>,
    /// Someone who attended (repeat for each).
    #[arg(long = "attendee")]
    pub attendees: Vec<String>,
    /// The language the meeting was held in, as a Whisper code (en, fr, nl, ...): sealed
    /// with the details, and signed into a transcription request by default (the server
    /// sees a request's language, as it sees a transcript's). Without it the node detects
    /// the language.
    #[arg(long, value_name = "CODE")]
    pub language: Option<String>,
    /// Approvals needed to unlock it [default: the vault's policy].
    #[arg(long)]
    pub threshold: Option<u8>,
    /// Send at most this many bytes per second (suffixes K, M: 4M).
    #[arg(long)]
    pub limit_rate: Option<String>,
    /// Give this recording a retention rule of its own (admins), overriding the vault's:
    /// when its ciphertext and key shares are deleted (`uploaded+90d`, `released+90d`,
    /// `keep`). Needs --keep-minutes.
    #[arg(long, requires = "keep_minutes")]
    pub keep_recording: Option<String>,
    /// With --keep-recording: when its minutes are deleted (`released+7y`, `keep`, ...).
    #[arg(long, requires = "keep_recording")]
    pub keep_minutes: Option<String>,
}

/// `quorate search-key …`
#[derive(Debug, Subcommand)]
pub enum SearchKeyAction {
    /// Replace the search key with a fresh one sealed to the current members and nodes
    /// (admins), then re-index the released minutes under it: a member who left cannot
    /// compute the new tokens.
    Rotate,
    /// Re-index the released minutes still under an older search key (any member who can
    /// read them): searches find them by the newest key's tokens only once this is done.
    Reindex,
}

/// `quorate members …`
#[derive(Debug, Subcommand)]
pub enum MembersAction {
    /// Create a one-time member invite (admins).
    Invite {
        /// Hours it stays valid.
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Add a pending member after comparing their fingerprint with them (admins).
    Approve {
        /// Their fingerprint (the grouped form, or hex).
        fingerprint: String,
        /// Make them an admin.
        #[arg(long)]
        admin: bool,
        /// The fingerprint of a member whose identity this one replaces (a lost device or
        /// identity file): the new identity takes their role, the old one is removed, and
        /// `quorate reshare` gives the new one their shares.
        #[arg(long, value_name = "OLD_FINGERPRINT", conflicts_with = "admin")]
        replaces: Option<String>,
    },
    /// Remove a member (admins).
    Remove {
        /// Their fingerprint (the grouped form, or hex).
        fingerprint: String,
    },
}

/// `quorate recorders …`
#[derive(Debug, Subcommand)]
pub enum RecordersAction {
    /// Create a one-time recorder invite (admins).
    Invite {
        /// Hours it stays valid.
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Add a pending recorder after comparing its fingerprint with the one its machine
    /// showed (admins).
    Approve {
        /// Its fingerprint (the grouped form, or hex).
        fingerprint: String,
    },
    /// Remove a recorder (admins): its sessions end and its new uploads are refused.
    Remove {
        /// Its fingerprint (the grouped form, or hex).
        fingerprint: String,
    },
}

/// `quorate policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Set the least threshold k (admins).
    Set {
        /// Approvals needed to unlock anything in the vault.
        #[arg(long)]
        threshold: u8,
    },
}

/// `quorate nodes …`
#[derive(Debug, Subcommand)]
pub enum NodesAction {
    /// Create a one-time node invite (admins).
    Invite {
        /// Hours it stays valid.
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Approve a node for one model after checking its hardware and comparing its
    /// fingerprint with the one the node's operator reads out (admins).
    Approve {
        /// The node ID.
        node: String,
        /// The node's fingerprint, as `quorate-node status` shows it on the node (read out of
        /// band: the server's copy of the node's keys is not trusted).
        #[arg(long)]
        fingerprint: String,
        /// SHA-256 of the model file it must load (`quorate-node models import` prints it).
        #[arg(long)]
        model_sha256: String,
        /// What the hardware is, as you checked it.
        #[arg(long)]
        hardware: String,
        /// Days the approval lasts.
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
    /// Revoke a node, for good (admins).
    Revoke {
        /// The node ID.
        node: String,
    },
}

/// What a command runs with.
pub struct Context {
    pub state: State,
    pub server: Option<String>,
    pub identity_path: Option<PathBuf>,
    pub vault: Option<String>,
    pub json: bool,
    /// The newest node approvals verified, shared with every session's client and saved to
    /// the vault's pins when the command ends.
    pub approvals_seen: quorate_client::checks::ApprovalsSeen,
}

/// A signed-in client for the current vault, with the identity and the verified roster.
pub struct Session {
    pub client: Client,
    pub identity: Identity,
    pub vault: VaultId,
}

impl Context {
    /// The server URL, or a message saying how to name one.
    pub fn server(&self) -> Result<String, DeviceError> {
        self.server
            .clone()
            .or_else(|| self.state.settings.server.clone())
            .ok_or_else(|| {
                DeviceError::Usage("no server: give --server URL (or enroll first)".into())
            })
    }

    /// The identity file's path.
    pub fn identity_path(&self) -> PathBuf {
        self.identity_path
            .clone()
            .or_else(|| self.state.settings.identity.clone())
            .unwrap_or_else(|| self.state.default_identity_path())
    }

    /// The vault commands act on.
    pub fn vault(&self) -> Result<VaultId, DeviceError> {
        let text = self
            .vault
            .clone()
            .or_else(|| self.state.settings.vault.clone())
            .ok_or_else(|| {
                DeviceError::Usage(
                    "no vault: enroll first (`quorate enroll --server URL --code CODE`) or give --vault"
                        .into(),
                )
            })?;
        text.parse()
            .map_err(|_| DeviceError::Usage(format!("{text} is not a vault ID (a UUID)")))
    }

    /// Signs in (reusing a cached session while it works).
    pub async fn session(&self) -> Result<Session, DeviceError> {
        let vault = self.vault()?;
        let pins = self.state.pins(vault)?;
        {
            let mut seen = self
                .approvals_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (node, issued_at) in &pins.node_approvals {
                let newest = seen.entry(node.clone()).or_insert(*issued_at);
                *newest = (*newest).max(*issued_at);
            }
        }
        let identity = state::read_identity(&self.identity_path())?;
        let fingerprint = identity.fingerprint().to_hex();
        let server = self.server()?;
        if let Some(token) = self.state.session(vault, &fingerprint) {
            let client = Client::new(&server)
                .with_token(token)
                .with_approvals_seen(self.approvals_seen.clone());
            match client.me().await {
                Ok(_) => {
                    return Ok(Session {
                        client,
                        identity,
                        vault,
                    });
                }
                Err(ClientError::Api { status: 401, .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        let mut client = Client::new(&server).with_approvals_seen(self.approvals_seen.clone());
        let session = client.sign_in(vault, &identity).await?;
        self.state
            .save_session(vault, &fingerprint, &session.token)?;
        Ok(Session {
            client,
            identity,
            vault,
        })
    }

    /// Fetches the roster and verifies it against the pinned genesis and the newest head this
    /// device has seen (a shorter or different chain is a rollback); remembers the new head.
    pub async fn verified_roster(&mut self, session: &Session) -> Result<Roster, DeviceError> {
        let pins = self.state.pins(session.vault)?.clone();
        let mut genesis = [0u8; 32];
        hex::decode_to_slice(&pins.genesis, &mut genesis).map_err(|_| {
            DeviceError::Local("the pinned genesis in config.toml is damaged".into())
        })?;
        let roster = session.client.roster(session.vault, &genesis).await?;
        quorate_client::checks::holds_pinned_head(&roster, pins.roster_len, &pins.roster_head)
            .map_err(|error| match error {
                quorate_client::checks::PinError::Damaged => {
                    DeviceError::Local("the pinned roster head in config.toml is damaged".into())
                }
                refused => DeviceError::Refused(format!(
                    "{refused}; do not upload or vote, and tell an admin"
                )),
            })?;
        let entry = self
            .state
            .settings
            .vaults
            .entry(session.vault.to_string())
            .or_default();
        entry.roster_len = roster.len();
        entry.roster_head = hex::encode(roster.head());
        self.state.save()?;
        Ok(roster)
    }

    /// Saves the node approvals verified during this command into the vault's pins.
    fn save_approvals_seen(&mut self) -> Result<(), DeviceError> {
        let seen = self
            .approvals_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Ok(vault) = self.vault() else {
            return Ok(());
        };
        match self.state.settings.vaults.get_mut(&vault.to_string()) {
            Some(pins) if !seen.is_empty() && pins.node_approvals != seen => {
                pins.node_approvals = seen;
                self.state.save()
            }
            _ => Ok(()),
        }
    }

    /// Prints `value` as JSON when `--json`, else `text`.
    pub fn print(&self, text: &str, value: &serde_json::Value) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), DeviceError> {
    if let Some(authorities) = &cli.ca_file {
        quorate_client::trust_ca_file(authorities)?;
    }
    let state = State::load(State::default_folder()?)?;
    let mut context = Context {
        state,
        server: cli
            .server
            .map(|server| server.trim_end_matches('/').to_owned()),
        identity_path: cli.identity,
        vault: cli.vault,
        json: cli.json,
        approvals_seen: Default::default(),
    };
    let result = commands::run(&mut context, cli.command).await;
    // Kept even when the command was refused: the refusal may be what the pin is for.
    context.save_approvals_seen()?;
    result
}

/// What an unlock request lets its node do, as `quorate request --purpose` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RequestPurpose {
    /// Transcribe the recording.
    Transcribe,
    /// Release the recording's sealed transcript to the members.
    ReleaseTranscript,
}

impl From<RequestPurpose> for quorate_crypto::rewrap::Purpose {
    fn from(purpose: RequestPurpose) -> Self {
        match purpose {
            RequestPurpose::Transcribe => Self::Transcribe,
            RequestPurpose::ReleaseTranscript => Self::ReleaseTranscript,
        }
    }
}

/// Parses the ID of a `what` (a recording, a node, ...) given on the command line; when it
/// is not one, says where the IDs are listed (`listed_by`).
pub(crate) fn parse_id<T: std::str::FromStr>(
    text: &str,
    what: &str,
    listed_by: &str,
) -> Result<T, DeviceError> {
    text.parse().map_err(|_| {
        DeviceError::Usage(format!(
            "{text} is not a {what} ID (a UUID): see `{listed_by}`"
        ))
    })
}
