//! Configuration in layers: defaults, then a TOML file, then `QUORATE_*` environment
//! variables, then command-line flags. Nothing is written to disk to configure the server.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    str::FromStr,
};

use serde::Deserialize;

pub use crate::tls::TlsFiles;

/// Declares every setting once: its documentation (which `--help` and the example file
/// show), its type, its name in the TOML file and as a flag (`data-dir`, `--data-dir`), its
/// environment variable, and either its default (a TOML value) or, where the default is
/// worked out at start-up, an example value. From this one list come the layer type
/// [`Settings`], the `QUORATE_*` layer, the merging of layers, the defaults layer and the
/// documented [`EXAMPLE`].
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $field:ident: $ty:ty, $name:literal, $env:literal,
            $(default = $default:literal)? $(example = $example:literal)?;
    )+) => {
        /// One layer: every setting optional, so layers merge field by field.
        #[derive(Debug, Default, Clone, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                $(#[doc = concat!("[default: ", $default, "]")])?
                #[arg(long = $name, global = true)]
                pub $field: Option<$ty>,
            )+
        }

        impl Settings {
            /// Reads the `QUORATE_*` environment layer through `lookup` (the real
            /// environment in `main`, a map in tests). An empty variable counts as unset.
            pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
                Ok(Self {
                    $(
                        $field: lookup($env)
                            .filter(|value| !value.is_empty())
                            .map(|value| FromEnv::from_env($env, value))
                            .transpose()?,
                    )+
                })
            }

            /// This layer with `over` on top.
            pub fn merge(self, over: Settings) -> Settings {
                Settings {
                    $( $field: over.$field.or(self.$field), )+
                }
            }

            /// The layer of fixed defaults (those worked out at start-up are filled in by
            /// [`Settings::resolve`]).
            pub fn defaults() -> Settings {
                const DEFAULTS: &str = concat!($($($name, " = ", $default, "\n",)?)+);
                toml::from_str(DEFAULTS).expect("the declared defaults are valid TOML")
            }
        }

        /// The documented example printed by `quorate-server default-config`.
        pub const EXAMPLE: &str = concat!(
            "# Quorate server configuration. Every setting is optional; each can also be set with\n",
            "# the QUORATE_* environment variable named with it, or the flag of the same name\n",
            "# (--listen, --data-dir, ...). Flags win over the environment, which wins over this file.\n",
            $(
                "\n",
                $("#", $doc, "\n",)+
                "# Environment: ", $env, "\n",
                $($name, " = ", $default, "\n",)?
                $("# ", $name, " = ", $example, "\n",)?
            )+
        );
    };
}

/// A setting's value read from its environment variable.
trait FromEnv: Sized {
    fn from_env(name: &'static str, value: String) -> Result<Self, ConfigError>;
}

macro_rules! from_env_by_parsing {
    ($($ty:ty),+) => {$(
        impl FromEnv for $ty {
            fn from_env(name: &'static str, value: String) -> Result<Self, ConfigError> {
                value.parse().map_err(|_| ConfigError::Invalid { name, value })
            }
        }
    )+};
}

from_env_by_parsing!(SocketAddr, PathBuf, String, i64);

/// A list: comma-separated, as the flag takes it.
impl FromEnv for Vec<String> {
    fn from_env(_: &'static str, value: String) -> Result<Self, ConfigError> {
        Ok(value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

settings! {
    /// Address the API listens on.
    listen: SocketAddr, "listen", "QUORATE_LISTEN", default = "\"127.0.0.1:8080\"";
    /// Folder for the default SQLite database and local object store.
    /// Default: $XDG_DATA_HOME/quorate, else ~/.local/share/quorate.
    data_dir: PathBuf, "data-dir", "QUORATE_DATA_DIR", example = "\"/var/lib/quorate\"";
    /// Database: sqlite://PATH (default, in the data folder) or
    /// postgres://USER:PASSWORD@HOST/DB. The password is never logged.
    database_url: String, "database-url", "QUORATE_DATABASE_URL",
        example = "\"postgres://quorate:secret@127.0.0.1/quorate\"";
    /// Object store for recordings and transcripts: file://PATH (default: the `objects`
    /// folder in the data folder) or s3://BUCKET.
    object_store: String, "object-store", "QUORATE_OBJECT_STORE",
        example = "\"file:///var/lib/quorate/objects\"";
    /// How long the first admin's one-time enrolment code stays valid, in seconds.
    enrolment_code_ttl: i64, "enrolment-code-ttl", "QUORATE_ENROLMENT_CODE_TTL", default = "86400";
    /// Prometheus metrics, on their own listener ("off" to disable).
    metrics_listen: String, "metrics-listen", "QUORATE_METRICS_LISTEN", default = "\"127.0.0.1:9464\"";
    /// Largest recording (its age ciphertext) accepted, in bytes (64 GiB).
    max_recording_bytes: i64, "max-recording-bytes", "QUORATE_MAX_RECORDING_BYTES",
        default = "68719476736";
    /// An unfinished upload is discarded this many seconds after its last stored chunk.
    upload_ttl: i64, "upload-ttl", "QUORATE_UPLOAD_TTL", default = "86400";
    /// The built web UI, served at / ("off" to serve the API only). Default: web-admin/dist
    /// when that folder exists (scripts/run.sh builds it there).
    web_dir: String, "web-dir", "QUORATE_WEB_DIR", example = "\"/usr/share/quorate/web\"";
    /// Reverse proxies in front of the server, as addresses or networks. Only for a request
    /// whose peer is one of them is the client address taken from X-Forwarded-For (the
    /// nearest address there that is not itself a trusted proxy); any other request's
    /// client is its peer, whatever the header says. Failed sign-ins are counted per client
    /// address, so behind a proxy list it here, or every client shares the proxy's address.
    /// The environment variable and the flag take a comma-separated list. Default: none.
    trusted_proxies: Vec<String>, "trusted-proxies", "QUORATE_TRUSTED_PROXIES",
        example = "[\"127.0.0.1\", \"10.0.0.0/8\"]";
    /// Serve HTTPS with this certificate chain (PEM: the certificate, then its
    /// intermediates), for an install with no TLS terminator in front. Set with tls-key; both
    /// files are read again when they change, so a renewal needs no restart. Default: plain
    /// HTTP, for loopback or behind a terminator.
    tls_certificate: PathBuf, "tls-certificate", "QUORATE_TLS_CERTIFICATE",
        example = "\"/etc/quorate/tls/fullchain.pem\"";
    /// The private key of tls-certificate (PEM).
    tls_key: PathBuf, "tls-key", "QUORATE_TLS_KEY", example = "\"/etc/quorate/tls/privkey.pem\"";
}

impl Settings {
    /// Reads a TOML layer.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::File(error.message().to_owned()))
    }

    /// Fills in defaults (the declared ones, then those worked out from the data folder
    /// and the checkout) and checks the result.
    pub fn resolve(
        self,
        home: Option<PathBuf>,
        xdg_data_home: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let settings = Settings::defaults().merge(self);
        let data_dir = match settings.data_dir {
            Some(dir) => dir,
            None => xdg_data_home
                .or_else(|| home.map(|home| home.join(".local/share")))
                .ok_or(ConfigError::NoDataDir)?
                .join("quorate"),
        };
        let database_url = settings
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("quorate.db").display()));
        let object_store = settings
            .object_store
            .unwrap_or_else(|| format!("file://{}", data_dir.join("objects").display()));
        let metrics_listen = match declared(settings.metrics_listen)?.as_str() {
            "off" => None,
            text => Some(text.parse().map_err(|_| ConfigError::Invalid {
                name: "metrics-listen",
                value: text.to_owned(),
            })?),
        };
        let web_dir = match settings.web_dir.as_deref() {
            Some("off") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => Some(PathBuf::from(DEFAULT_WEB_DIR)).filter(|dir| dir.is_dir()),
        };
        let trusted_proxies = settings
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
        let tls = match (settings.tls_certificate, settings.tls_key) {
            (Some(certificate), Some(key)) => Some(TlsFiles { certificate, key }),
            (None, None) => None,
            _ => return Err(ConfigError::HalfTls),
        };
        Ok(Config {
            tls,
            metrics_listen,
            trusted_proxies,
            web_dir,
            listen: declared(settings.listen)?,
            data_dir,
            database_url: SecretUrl(database_url),
            object_store: SecretUrl(object_store),
            enrolment_code_ttl: positive("enrolment-code-ttl", settings.enrolment_code_ttl)?,
            max_recording_bytes: positive("max-recording-bytes", settings.max_recording_bytes)?
                as u64,
            upload_ttl: positive("upload-ttl", settings.upload_ttl)?,
        })
    }
}

/// A setting with a declared default, which [`Settings::defaults`] always fills in.
fn declared<T>(value: Option<T>) -> Result<T, ConfigError> {
    value.ok_or(ConfigError::File(
        "a setting's declared default is missing".into(),
    ))
}

/// A count or duration with a declared default, which must be above zero.
fn positive(name: &'static str, value: Option<i64>) -> Result<i64, ConfigError> {
    match declared(value)? {
        value if value <= 0 => Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
        }),
        value => Ok(value),
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
    /// The certificate and key to serve HTTPS with, if the server serves it itself.
    pub tls: Option<TlsFiles>,
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
    /// One of the TLS certificate and key without the other.
    #[error("HTTPS needs both tls-certificate and tls-key: set both, or neither for plain HTTP")]
    HalfTls,
}

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
    fn the_example_names_every_setting_and_its_variable() {
        let commented_out: String = EXAMPLE
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .collect::<Vec<_>>()
            .join("\n");
        // Every setting appears (commented out where its default is worked out at start-up),
        // so the example with its comment marks removed sets every field.
        let every = Settings::from_toml(
            &commented_out
                .lines()
                .filter(|line| line.contains(" = "))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .unwrap();
        let all_set = format!("{every:?}");
        assert!(!all_set.contains("None"), "{all_set}");
        for variable in [
            "QUORATE_LISTEN",
            "QUORATE_TRUSTED_PROXIES",
            "QUORATE_UPLOAD_TTL",
        ] {
            assert!(EXAMPLE.contains(variable), "{variable}");
        }
    }

    #[test]
    fn declared_defaults_apply_beneath_every_layer() {
        let config = Settings::default()
            .resolve(None, Some("/tmp".into()))
            .unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(config.enrolment_code_ttl, 86_400);
        assert_eq!(config.max_recording_bytes, 64 << 30);
        assert_eq!(
            config.metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        let env =
            Settings::from_env(|name| (name == "QUORATE_UPLOAD_TTL").then(|| "60".to_owned()))
                .unwrap();
        assert_eq!(
            env.resolve(None, Some("/tmp".into())).unwrap().upload_ttl,
            60
        );
        let refused = Settings::from_env(|name| (name == "QUORATE_UPLOAD_TTL").then(|| "x".into()));
        assert!(refused.is_err());
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
