//! Configuration in layers: defaults, then a TOML file, then `QUORATE_*` environment
//! variables, then command-line flags. Nothing is written to disk to configure the server.

use std::{fmt, net::SocketAddr, path::PathBuf};

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
        Ok(Config {
            metrics_listen,
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
        // scheme://user:password@host... -> scheme://user:***@host...
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let credentials = &self.0[scheme_end + 3..at];
                let user = credentials.split(':').next().unwrap_or_default();
                let masked = if credentials.contains(':') {
                    format!("{user}:***")
                } else {
                    user.to_owned()
                };
                write!(f, "{}{masked}{}", &self.0[..scheme_end + 3], &self.0[at..])
            }
            _ => f.write_str(&self.0),
        }
    }
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
    }
}
