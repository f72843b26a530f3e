//! Configuration in layers: defaults, then a TOML file, then `QUORATE_*` environment
//! variables, then command-line flags. Nothing is written to disk to configure the server.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    str::FromStr,
};

use serde::Deserialize;

/// One layer: every setting optional, so layers merge field by field.
#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true)]
    pub listen: Option<SocketAddr>,
    /// Folder for the SQLite database and the local object store
    /// [default: $XDG_DATA_HOME/quorate, else ~/.local/share/quorate].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB` [default: SQLite in the data folder].
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// `file://PATH` or `s3://BUCKET` [default: the `objects` folder in the data folder].
    #[arg(long, global = true)]
    pub object_store: Option<String>,
    /// How long a first-admin enrolment code stays valid, in seconds [default: 86400].
    #[arg(long, global = true)]
    pub enrolment_code_ttl: Option<i64>,
    /// Address for Prometheus metrics, or `off` [default: 127.0.0.1:9464].
    #[arg(long, global = true)]
    pub metrics_listen: Option<String>,
    /// Largest recording ciphertext accepted, in bytes [default: 68719476736, 64 GiB].
    #[arg(long, global = true)]
    pub max_recording_bytes: Option<i64>,
    /// Seconds after its last stored chunk that an unfinished upload is discarded
    /// [default: 86400].
    #[arg(long, global = true)]
    pub upload_ttl: Option<i64>,
    /// Folder of the built web UI (`web-admin/dist`), served at `/`, or `off`
    /// [default: `web-admin/dist` when that folder exists].
    #[arg(long, global = true)]
    pub web_dir: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client: addresses or networks
    /// (`10.0.0.0/8`), comma-separated [default: none; the peer is the client].
    #[arg(long, global = true, value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
}

impl Settings {
    /// Reads a TOML layer.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::File(error.message().to_owned()))
    }

    /// Reads the `QUORATE_*` environment layer through `lookup` (the real environment in
    /// `main`, a map in tests).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let parse = |name: &'static str| lookup(name).filter(|value| !value.is_empty());
        let number = |name: &'static str| {
            parse(name)
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| ConfigError::Invalid { name, value: v })
                })
                .transpose()
        };
        Ok(Self {
            listen: parse("QUORATE_LISTEN")
                .map(|v| {
                    v.parse().map_err(|_| ConfigError::Invalid {
                        name: "QUORATE_LISTEN",
                        value: v,
                    })
                })
                .transpose()?,
            data_dir: parse("QUORATE_DATA_DIR").map(PathBuf::from),
            database_url: parse("QUORATE_DATABASE_URL"),
            object_store: parse("QUORATE_OBJECT_STORE"),
            metrics_listen: parse("QUORATE_METRICS_LISTEN"),
            enrolment_code_ttl: number("QUORATE_ENROLMENT_CODE_TTL")?,
            max_recording_bytes: number("QUORATE_MAX_RECORDING_BYTES")?,
            upload_ttl: number("QUORATE_UPLOAD_TTL")?,
            web_dir: parse("QUORATE_WEB_DIR"),
            trusted_proxies: parse("QUORATE_TRUSTED_PROXIES").map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        })
    }

    /// This layer with `over` on top.
    pub fn merge(self, over: Settings) -> Settings {
        Settings {
            listen: over.listen.or(self.listen),
            data_dir: over.data_dir.or(self.data_dir),
            database_url: over.database_url.or(self.database_url),
            object_store: over.object_store.or(self.object_store),
            enrolment_code_ttl: over.enrolment_code_ttl.or(self.enrolment_code_ttl),
            metrics_listen: over.metrics_listen.or(self.metrics_listen),
            max_recording_bytes: over.max_recording_bytes.or(self.max_recording_bytes),
            upload_ttl: over.upload_ttl.or(self.upload_ttl),
            web_dir: over.web_dir.or(self.web_dir),
            trusted_proxies: over.trusted_proxies.or(self.trusted_proxies),
        }
    }

    /// Fills in defaults and checks the result.
    pub fn resolve(
        self,
        home: Option<PathBuf>,
        xdg_data_home: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let data_dir = match self.data_dir {
            Some(dir) => dir,
            None => xdg_data_home
                .or_else(|| home.map(|home| home.join(".local/share")))
                .ok_or(ConfigError::NoDataDir)?
                .join("quorate"),
        };
        let database_url = self
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("quorate.db").display()));
        let object_store = self
            .object_store
            .unwrap_or_else(|| format!("file://{}", data_dir.join("objects").display()));
        let positive = |name: &'static str, value: Option<i64>, default: i64| match value {
            Some(value) if value <= 0 => Err(ConfigError::Invalid {
                name,
                value: value.to_string(),
            }),
            other => Ok(other.unwrap_or(default)),
        };
        let enrolment_code_ttl = positive("enrolment-code-ttl", self.enrolment_code_ttl, 86_400)?;
        let max_recording_bytes =
            positive("max-recording-bytes", self.max_recording_bytes, 64 << 30)? as u64;
        let upload_ttl = positive("upload-ttl", self.upload_ttl, 86_400)?;
        let metrics_listen = match self.metrics_listen.as_deref() {
            Some("off") => None,
            Some(text) => Some(text.parse().map_err(|_| ConfigError::Invalid {
                name: "metrics-listen",
                value: text.to_owned(),
            })?),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        };
        let web_dir = match self.web_dir.as_deref() {
            Some("off") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => Some(PathBuf::from(DEFAULT_WEB_DIR)).filter(|dir| dir.is_dir()),
        };
        let trusted_proxies = self
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                entry.parse().map_err(|_| ConfigError::Invalid {
                    name: "trusted-proxies",
                    value: entry.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Config {
            metrics_listen,
            trusted_proxies,
            web_dir,
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            database_url: SecretUrl(database_url),
            object_store: SecretUrl(object_store),
            enrolment_code_ttl,
            max_recording_bytes,
            upload_ttl,
        })
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The database URL (its password is never printed).
    pub database_url: SecretUrl,
    /// The object store URL (its credentials are never printed).
    pub object_store: SecretUrl,
    /// Lifetime of first-admin enrolment codes, seconds.
    pub enrolment_code_ttl: i64,
    /// Where Prometheus metrics are served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Largest recording ciphertext accepted, bytes.
    pub max_recording_bytes: u64,
    /// Seconds an unfinished upload is kept after its last stored chunk.
    pub upload_ttl: i64,
    /// The built web UI served at `/`, if any.
    pub web_dir: Option<PathBuf>,
    /// Reverse proxies trusted to name the client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<Network>,
}

/// An IP network (`10.0.0.0/8`, `fd00::/8`), or one address (a network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `address` is in this network. An IPv4 address written as IPv6
    /// (`::ffff:10.0.0.1`, as a dual-stack listener reports it) counts as IPv4.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address = address
            .trim()
            .parse::<IpAddr>()
            .map_err(drop)?
            .to_canonical();
        let longest = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(drop)?,
            None => longest,
        };
        if prefix > longest {
            return Err(());
        }
        Ok(Self { address, prefix })
    }
}

/// Where the web UI is built, relative to a checkout (`scripts/run.sh` builds it there).
pub const DEFAULT_WEB_DIR: &str = "web-admin/dist";

/// A URL that may hold a password: `Debug` and `Display` show it with the password masked.
#[derive(Clone)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, password included.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&masked(&self.0))
    }
}

/// `url` with its secrets replaced by `***`: the password of `user:password@`, and the value
/// of every query parameter whose name speaks of one (`password=`, `sslpassword=`, …), the
/// name percent-decoded first as drivers decode it (`pass%77ord=` is a password too).
fn masked(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let start = scheme_end + 3;
    // The authority ends where the path, query or fragment begins (RFC 3986): an `@` after
    // that (in a query parameter's value, say) does not end the credentials.
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |offset| start + offset);
    let mut shown = url[..start].to_owned();
    match url[start..end].rsplit_once('@') {
        Some((credentials, host)) => {
            match credentials.split_once(':') {
                Some((user, _)) => shown.push_str(&format!("{user}:***")),
                None => shown.push_str(credentials),
            }
            shown.push('@');
            shown.push_str(host);
        }
        None => shown.push_str(&url[start..end]),
    }
    let rest = &url[end..];
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    match rest.split_once('?') {
        Some((path, query)) => {
            shown.push_str(path);
            shown.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if names_a_secret(name) => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            shown.push_str(&pairs.join("&"));
        }
        None => shown.push_str(rest),
    }
    if let Some(fragment) = fragment {
        shown.push('#');
        shown.push_str(fragment);
    }
    shown
}

/// Whether a query parameter's name (still percent-encoded) names a secret.
fn names_a_secret(name: &str) -> bool {
    let mut decoded = Vec::with_capacity(name.len());
    let mut bytes = name.bytes();
    while let Some(byte) = bytes.next() {
        let hex = |digit: Option<u8>| char::from(digit?).to_digit(16);
        decoded.push(match byte {
            b'%' => {
                let (high, low) = (hex(bytes.next()), hex(bytes.next()));
                match high.zip(low) {
                    Some((high, low)) => (high * 16 + low) as u8,
                    // Not an escape: the driver refuses the URL, so nothing is hidden here.
                    None => b'%',
                }
            }
            b'+' => b' ',
            other => other,
        });
    }
    let decoded = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
    ["pass", "secret", "token"]
        .iter()
        .any(|secret| decoded.contains(secret))
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML file does not parse or has an unknown setting.
    #[error("configuration file: {0}")]
    File(String),
    /// A value does not parse.
    #[error("{name}: {value:?} is not valid")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: String,
    },
    /// No data folder given and no home folder to put one in.
    #[error("no data folder: set --data-dir or QUORATE_DATA_DIR")]
    NoDataDir,
}

/// The documented example printed by `quorate-server default-config`.
pub const EXAMPLE: &str = r#"# Quorate server configuration. Every setting is optional; each can also be set with a
# QUORATE_* environment variable (QUORATE_LISTEN, QUORATE_DATA_DIR, ...) or a flag
# (--listen, --data-dir, ...). Flags win over the environment, which wins over this file.

# Address the API listens on.
listen = "127.0.0.1:8080"

# Folder for the default SQLite database and local object store.
# Default: $XDG_DATA_HOME/quorate, else ~/.local/share/quorate.
# data-dir = "/var/lib/quorate"

# Database: sqlite://PATH (default, in the data folder) or postgres://USER:PASSWORD@HOST/DB.
# The password is never logged.
# database-url = "postgres://quorate:secret@127.0.0.1/quorate"

# Object store for recordings and transcripts: file://PATH (default) or s3://BUCKET.
# object-store = "file:///var/lib/quorate/objects"

# How long the first admin's one-time enrolment code stays valid, in seconds.
enrolment-code-ttl = 86400

# Prometheus metrics, on their own listener ("off" to disable).
metrics-listen = "127.0.0.1:9464"

# Largest recording (its age ciphertext) accepted, in bytes.
max-recording-bytes = 68719476736

# An unfinished upload is discarded this many seconds after its last stored chunk.
upload-ttl = 86400

# The built web UI, served at / ("off" to serve the API only). Default: web-admin/dist
# when that folder exists (scripts/run.sh builds it there).
# web-dir = "/usr/share/quorate/web"

# Reverse proxies in front of the server, as addresses or networks. Only for a request
# whose peer is one of them is the client address taken from X-Forwarded-For (the nearest
# address there that is not itself a trusted proxy); any other request's client is its
# peer, whatever the header says. Failed sign-ins are counted per client address, so behind
# a proxy list it here, or every client shares the proxy's address.
# QUORATE_TRUSTED_PROXIES and --trusted-proxies take a comma-separated list. Default: none.
# trusted-proxies = ["127.0.0.1", "10.0.0.0/8"]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_merge_in_order() {
        let file =
            Settings::from_toml("listen = \"127.0.0.1:9000\"\nenrolment-code-ttl = 60\n").unwrap();
        let env = Settings::from_env(|name| {
            (name == "QUORATE_LISTEN").then(|| "127.0.0.1:9001".to_owned())
        })
        .unwrap();
        let flags = Settings {
            data_dir: Some("/tmp/q".into()),
            ..Settings::default()
        };
        let config = Settings::default()
            .merge(file)
            .merge(env)
            .merge(flags)
            .resolve(None, None)
            .unwrap();
        assert_eq!(config.listen.port(), 9001);
        assert_eq!(config.enrolment_code_ttl, 60);
        assert_eq!(
            config.database_url.expose_secret(),
            "sqlite:///tmp/q/quorate.db"
        );
    }

    #[test]
    fn the_example_parses_and_unknown_settings_are_refused() {
        Settings::from_toml(EXAMPLE).unwrap();
        assert!(Settings::from_toml("lisen = \"x\"").is_err());
    }

    #[test]
    fn passwords_never_print() {
        let url = SecretUrl::new("postgres://quorate:hunter2@db/quorate");
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("quorate:***@db"));
        for (url, expected) in [
            (
                "postgres://quorate@db:5432/q?password=hunter2&application_name=x",
                "postgres://quorate@db:5432/q?password=***&application_name=x",
            ),
            (
                "postgres://db/q?sslmode=require&PASS%77ORD=hunter2#frag",
                "postgres://db/q?sslmode=require&PASS%77ORD=***#frag",
            ),
            (
                "postgres://quorate@db/q?password=hun@ter2",
                "postgres://quorate@db/q?password=***",
            ),
            (
                "s3://key:hunter2@bucket?endpoint=http://127.0.0.1:9000&region=x",
                "s3://key:***@bucket?endpoint=http://127.0.0.1:9000&region=x",
            ),
            (
                "sqlite:///var/lib/quorate.db",
                "sqlite:///var/lib/quorate.db",
            ),
            ("postgres://quorate@db/q", "postgres://quorate@db/q"),
        ] {
            assert_eq!(SecretUrl::new(url).to_string(), expected);
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let network = |text: &str| text.parse::<Network>().unwrap();
        let address = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(network("10.0.0.0/8").contains(address("10.200.1.2")));
        assert!(!network("10.0.0.0/8").contains(address("11.0.0.1")));
        assert!(network("127.0.0.1").contains(address("::ffff:127.0.0.1")));
        assert!(!network("127.0.0.1").contains(address("127.0.0.2")));
        assert!(network("fd00::/8").contains(address("fd12::1")));
        assert!(network("0.0.0.0/0").contains(address("203.0.113.9")));
        assert!(!network("0.0.0.0/0").contains(address("::1")));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        let env = Settings::from_env(|name| {
            (name == "QUORATE_TRUSTED_PROXIES").then(|| "127.0.0.1, 10.0.0.0/8".to_owned())
        })
        .unwrap();
        let config = env.resolve(None, Some("/tmp".into())).unwrap();
        assert_eq!(
            config.trusted_proxies,
            [network("127.0.0.1"), network("10.0.0.0/8")]
        );
        let refused = Settings::from_toml("trusted-proxies = [\"10.0.0.0/99\"]")
            .unwrap()
            .resolve(None, Some("/tmp".into()));
        assert!(refused.is_err());
    }
}
