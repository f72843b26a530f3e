//! What the `quorate` command keeps on the device: settings and pins in `config.toml`, cached
//! session tokens, and the path of the identity file. All of it lives in the configuration
//! folder (`QUORATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/quorate`, else `~/.config/quorate`),
//! created private to the user.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use quorate_crypto::{
    Identity, IdentityFile, VaultId,
    secrecy::{ExposeSecret, SecretString},
};
use serde::{Deserialize, Serialize};

use super::DeviceError;

/// What a device pinned for one vault at enrolment, and the newest it has verified since.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pins {
    /// Hex digest of the genesis roster entry.
    pub genesis: String,
    /// Entries in the newest roster chain this device verified.
    #[serde(default)]
    pub roster_len: u64,
    /// Hex digest of that chain's head.
    #[serde(default)]
    pub roster_head: String,
    /// The newest policy sequence this device verified.
    #[serde(default)]
    pub policy_sequence: Option<u64>,
    /// The sequence number of the newest audit entry this device verified.
    #[serde(default)]
    pub audit_seq: Option<u64>,
    /// Hex hash of that entry: a log that no longer holds it was rewritten.
    #[serde(default)]
    pub audit_hash: String,
    /// Per node ID, when the newest approval (or revocation) of it this device verified was
    /// issued: an older one is refused.
    #[serde(default)]
    pub node_approvals: BTreeMap<String, i64>,
    /// Whether this device (the first admin's) has made or seen the vault's search key: from
    /// then on it never makes one, so a server that hides the key cannot fork it.
    #[serde(default)]
    pub search_key_made: bool,
}

/// `config.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The server, `http://host:port`.
    pub server: Option<String>,
    /// The identity file.
    pub identity: Option<PathBuf>,
    /// The vault commands act on.
    pub vault: Option<String>,
    /// Pins per vault.
    #[serde(default)]
    pub vaults: BTreeMap<String, Pins>,
}

/// The configuration folder and what is in it.
#[derive(Debug)]
pub struct State {
    pub folder: PathBuf,
    pub settings: Settings,
}

/// Creates `folder` (and parents) readable only by the user.
pub fn private_folder(folder: &Path) -> Result<(), DeviceError> {
    quorate_client::local::private_folder(folder).map_err(DeviceError::Local)
}

/// Writes `bytes` to `path` readable only by the user, replacing it atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DeviceError> {
    quorate_client::local::write_private(path, bytes).map_err(DeviceError::Local)
}

impl State {
    /// The configuration folder the environment names.
    pub fn default_folder() -> Result<PathBuf, DeviceError> {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        if let Some(folder) = var("QUORATE_CONFIG_DIR") {
            return Ok(PathBuf::from(folder));
        }
        if let Some(config) = var("XDG_CONFIG_HOME") {
            return Ok(PathBuf::from(config).join("quorate"));
        }
        var("HOME")
            .map(|home| PathBuf::from(home).join(".config/quorate"))
            .ok_or_else(|| {
                DeviceError::Local("no configuration folder: set QUORATE_CONFIG_DIR or HOME".into())
            })
    }

    /// Loads `config.toml` from `folder` (empty settings when there is none yet).
    pub fn load(folder: PathBuf) -> Result<Self, DeviceError> {
        let path = folder.join("config.toml");
        let settings = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|error| {
                DeviceError::Local(format!(
                    "{} is not a valid configuration: {}; fix or remove it",
                    path.display(),
                    error.message()
                ))
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Settings::default(),
            Err(error) => {
                return Err(DeviceError::Local(format!(
                    "cannot read {}: {error}",
                    path.display()
                )));
            }
        };
        Ok(Self { folder, settings })
    }

    /// Saves `config.toml`.
    pub fn save(&self) -> Result<(), DeviceError> {
        private_folder(&self.folder)?;
        let text = toml::to_string_pretty(&self.settings)
            .map_err(|error| DeviceError::Local(format!("cannot encode the settings: {error}")))?;
        write_private(&self.folder.join("config.toml"), text.as_bytes())
    }

    /// Where `keygen` writes the identity by default.
    pub fn default_identity_path(&self) -> PathBuf {
        self.folder.join("identity.age")
    }

    /// The pins of `vault`, or a message saying to enrol first.
    pub fn pins(&self, vault: VaultId) -> Result<&Pins, DeviceError> {
        self.settings.vaults.get(&vault.to_string()).ok_or_else(|| {
            DeviceError::Usage(format!(
                "this device has not enrolled in vault {vault}: run `quorate enroll --server URL --code CODE` first"
            ))
        })
    }

    fn session_path(&self, vault: VaultId, fingerprint: &str) -> PathBuf {
        self.folder
            .join("sessions")
            .join(format!("{vault}-{}.token", &fingerprint[..16]))
    }

    /// The cached session token, if any.
    pub fn session(&self, vault: VaultId, fingerprint: &str) -> Option<String> {
        std::fs::read_to_string(self.session_path(vault, fingerprint))
            .ok()
            .map(|token| token.trim().to_owned())
            .filter(|token| !token.is_empty())
    }

    /// Caches a session token.
    pub fn save_session(
        &self,
        vault: VaultId,
        fingerprint: &str,
        token: &str,
    ) -> Result<(), DeviceError> {
        let path = self.session_path(vault, fingerprint);
        if let Some(parent) = path.parent() {
            private_folder(parent)?;
        }
        write_private(&path, token.as_bytes())
    }
}

/// The name of the systemd credential (`LoadCredential=quorate-passphrase:…`) that holds an
/// unattended device's passphrase.
pub const PASSPHRASE_CREDENTIAL: &str = "quorate-passphrase";

/// The passphrase, for a person or an unattended machine (a recorder), never from the
/// command line (which other users can read in the process list): the file
/// `QUORATE_PASSPHRASE_FILE` names, else systemd's credential [`PASSPHRASE_CREDENTIAL`],
/// else `QUORATE_PASSPHRASE`, else asked for on the terminal.
pub fn passphrase(prompt: &str, confirm: bool) -> Result<SecretString, DeviceError> {
    if let Some(path) = std::env::var_os("QUORATE_PASSPHRASE_FILE") {
        return passphrase_from_file(Path::new(&path));
    }
    if let Some(folder) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&folder).join(PASSPHRASE_CREDENTIAL);
        if path.exists() {
            return passphrase_from_file(&path);
        }
    }
    if let Ok(value) = std::env::var("QUORATE_PASSPHRASE") {
        return Ok(SecretString::from(value));
    }
    let first = rpassword::prompt_password(prompt).map_err(|error| {
        DeviceError::Usage(format!(
            "cannot ask for the passphrase ({error}): run in a terminal or set QUORATE_PASSPHRASE"
        ))
    })?;
    if confirm {
        let again = rpassword::prompt_password("The same passphrase again: ").map_err(|error| {
            DeviceError::Usage(format!("cannot ask for the passphrase: {error}"))
        })?;
        if again != first {
            return Err(DeviceError::Usage(
                "the two passphrases differ: run the command again".into(),
            ));
        }
    }
    if first.is_empty() {
        return Err(DeviceError::Usage(
            "an empty passphrase protects nothing: choose one".into(),
        ));
    }
    Ok(SecretString::from(first))
}

/// A passphrase kept in a file: its first line, which must not be empty. The file must be
/// readable by its owner only, as systemd's credentials are.
fn passphrase_from_file(path: &Path) -> Result<SecretString, DeviceError> {
    use std::io::Read;
    let unreadable = |error: std::io::Error| {
        DeviceError::Usage(format!(
            "cannot read the passphrase file {}: {error}",
            path.display()
        ))
    };
    // The mode is checked on the file opened, so that the file read is the file checked.
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(unreadable)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(DeviceError::Usage(format!(
                "the passphrase file {} can be read by other users: `chmod 600` it (or use systemd's LoadCredential=) and run again",
                path.display()
            )));
        }
    }
    let mut buffer = String::new();
    file.read_to_string(&mut buffer).map_err(unreadable)?;
    // Moved, not copied, into a type that wipes it.
    let text = SecretString::from(buffer);
    let line = text.expose_secret().lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(DeviceError::Usage(format!(
            "the passphrase file {} is empty: write the passphrase on its first line",
            path.display()
        )));
    }
    Ok(SecretString::from(line.to_owned()))
}

/// Reads the identity file at `path`, asking for its passphrase when it has one.
pub fn read_identity(path: &Path) -> Result<Identity, DeviceError> {
    let bytes = std::fs::read(path).map_err(|error| {
        DeviceError::Usage(format!(
            "cannot read the identity file {}: {error}; make one with `quorate keygen` or name it with --identity",
            path.display()
        ))
    })?;
    let passphrase = if IdentityFile::is_protected(&bytes) {
        Some(passphrase(
            &format!("Passphrase for {}: ", path.display()),
            false,
        )?)
    } else {
        None
    };
    IdentityFile::read(&bytes, passphrase.as_ref()).map_err(|error| match error {
        quorate_crypto::Error::WrongPassphrase => DeviceError::Usage(format!(
            "the passphrase does not open {}: try again",
            path.display()
        )),
        other => DeviceError::Refused(format!("{}: {other}", path.display())),
    })
}
