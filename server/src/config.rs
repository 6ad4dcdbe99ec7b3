//! Server configuration: a TOML file, or `--dev` defaults for a first run.
//!
//! ```toml
//! listen = "127.0.0.1:50051"     # address to listen on (TLS only; there is no plaintext port)
//! data_dir = "data"              # log, bodies, views (embedded engine) and keys
//! keys_dir = "data/keys"         # optional: log signing, pseudonym and body keys (default <data_dir>/keys)
//! trust_domain = "infoshare.dev" # SPIFFE trust domain of client identities
//! log_origin = "infoshare.dev/log" # audit log origin (checkpoint first line, signing key name)
//!
//! [tls]
//! ca = "certs/ca.pem"            # CA bundle client certificates must chain to
//! cert = "certs/server/cert.pem" # the server's certificate chain
//! key = "certs/server/key.pem"   # the server's private key
//! crl = ["certs/revoked.pem"]    # optional CRLs for client certificates (reloaded on SIGHUP)
//!
//! [registry]
//! agencies = "registry.toml"     # the agency registry
//!
//! [storage]                      # optional: the embedded engine in data_dir by default
//! backend = "postgres"           # or "embedded"
//! url = "postgresql://infoshare@db.internal:5432/infoshare"  # never with a password
//! password_file = "pg-password"  # optional; else PGPASSWORD, if set
//! ca = "db-ca.pem"               # optional: TLS 1.3 to the database, its certificate checked
//! ```
//!
//! Optional sections, each read by one part of the broker: `[limits]` (per-principal calls and
//! streams: the broker), `[transport]` (connections and streams before authentication: the
//! transport), `[retention]` (the retention task), `[ledger]` (the log writer's batching),
//! `[calendar]` (`holidays = "nz-holidays.toml"`: the public holidays working days skip),
//! `[deadlines]` (the deadline task, and the collection window of protocols that set none).
//!
//! Relative paths are relative to the directory of the configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The broker's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The keys (log signing, pseudonyms, bodies); `<data_dir>/keys` if unset. Every replica of
    /// one log is given the same keys.
    #[serde(default)]
    pub keys_dir: Option<PathBuf>,
    /// SPIFFE trust domain.
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// The audit log's origin: the first line of its checkpoints and the name of its signing
    /// key. Unique per deployment.
    #[serde(default = "default_log_origin")]
    pub log_origin: String,
    /// TLS files.
    pub tls: TlsFiles,
    /// Registry files.
    pub registry: RegistryFiles,
    /// Per-principal limits.
    #[serde(default)]
    pub limits: crate::limits::Limits,
    /// The retention task.
    #[serde(default)]
    pub retention: Retention,
    /// Connection, stream and answer-memory bounds.
    #[serde(default)]
    pub transport: crate::transport::TransportConfig,
    /// The log writer's batching.
    #[serde(default)]
    pub ledger: LedgerTuning,
    /// Which engine keeps the log.
    #[serde(default)]
    pub storage: Storage,
    /// The public holidays that working days skip.
    #[serde(default)]
    pub calendar: CalendarFiles,
    /// The deadline task, and the collection window of protocols that set none.
    #[serde(default)]
    pub deadlines: Deadlines,
}

/// `[deadlines]`: how often the broker marks overdue requests and expires unacknowledged
/// ones, and how long a request may wait unacknowledged when its protocol does not say.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// Seconds between runs of the deadline task (the first runs right after start).
    #[serde(default = "default_deadlines_interval")]
    pub interval_secs: u64,
    /// The collection window of protocols that set none, e.g. `{ working_days = 5 }` or
    /// `{ hours = 72 }`.
    #[serde(default = "default_collection_window")]
    pub collection_window: crate::deadline::ResponseTime,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            interval_secs: default_deadlines_interval(),
            collection_window: default_collection_window(),
        }
    }
}

fn default_deadlines_interval() -> u64 {
    60
}

fn default_collection_window() -> crate::deadline::ResponseTime {
    crate::deadline::DEFAULT_COLLECTION_WINDOW
}

impl Config {
    /// What deadlines are computed with: the holiday list (see [`CalendarFiles::load`]) and the
    /// default collection window, checked.
    pub fn calendar(&self) -> Result<crate::deadline::Calendar, String> {
        self.deadlines
            .collection_window
            .check("deadlines.collection_window")
            .map_err(|e| e.to_string())?;
        Ok(crate::deadline::Calendar {
            holidays: self.calendar.load()?,
            collection_window: self.deadlines.collection_window,
        })
    }
}

/// `[calendar]`: the public holidays that response times in working days skip.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarFiles {
    /// A holiday file in the shipped file's form (`core/data/nz-public-holidays.toml`); unset,
    /// the list shipped with the broker. A new year's dates need a new file, not a release.
    #[serde(default)]
    pub holidays: Option<PathBuf>,
}

/// The days within which the holiday list must run out before the broker warns.
pub const HOLIDAYS_WARN_DAYS: i64 = 180;

impl CalendarFiles {
    /// The configured holiday list, or the shipped one. Errors name the file and the entry.
    pub fn load(&self) -> Result<crate::deadline::Holidays, String> {
        let Some(path) = &self.holidays else {
            return Ok(crate::deadline::Holidays::shipped());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("calendar.holidays: {}: {e}", path.display()))?;
        crate::deadline::Holidays::from_toml(&text)
            .map_err(|e| format!("calendar.holidays: {}: {e}", path.display()))
    }
}

/// Which engine keeps the log (`[storage]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// The engine.
    #[serde(default)]
    pub backend: BackendKind,
    /// The PostgreSQL database (`postgresql://user@host:port/db`), without a password.
    pub url: Option<String>,
    /// A file whose first line is the database password.
    pub password_file: Option<PathBuf>,
    /// Connections to the database, 1 to 256.
    pub pool_size: Option<usize>,
    /// The CA bundle the database's certificate must chain to: TLS to the database, checked.
    pub ca: Option<PathBuf>,
}

/// The storage engines a broker can serve from.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Segment files and views in `data_dir` (the default).
    #[default]
    Embedded,
    /// A PostgreSQL database.
    Postgres,
}

impl Storage {
    /// The PostgreSQL settings, if the log is in PostgreSQL; an error naming the field if the
    /// section is inconsistent.
    pub fn postgres(&self) -> Result<Option<infoshare_store::postgres::PgSettings>, String> {
        match (self.backend, &self.url) {
            (BackendKind::Embedded, None) if self.password_file.is_none() && self.ca.is_none() => {
                Ok(None)
            }
            (BackendKind::Embedded, _) => {
                Err("storage: url, password_file and ca are for backend = \"postgres\"".into())
            }
            (BackendKind::Postgres, None) => {
                Err("storage: backend = \"postgres\" needs url".into())
            }
            (BackendKind::Postgres, Some(url)) => {
                let mut settings = infoshare_store::postgres::PgSettings::new(url.clone());
                settings.password_file = self.password_file.clone();
                settings.ca = self.ca.clone();
                if let Some(n) = self.pool_size {
                    if !(1..=256).contains(&n) {
                        return Err(format!("storage: pool_size must be 1 to 256 (found {n})"));
                    }
                    settings.pool_size = n;
                }
                // Checked now: a password in the URL, or a CA that does not load, is refused
                // before anything connects.
                settings.check()?;
                Ok(Some(settings))
            }
        }
    }
}

/// The log writer's batching (`[ledger]`): most changes per batch (one fdatasync and one
/// checkpoint signature each), and how many may queue for the writer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerTuning {
    /// Most changes in one batch, 1 to 65,536.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Changes that may wait for the writer, 1 to 1,048,576; callers beyond wait to enqueue.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// MiB of view pages cached in memory, 8 to 65,536 (the views are B-trees on disk).
    #[serde(default = "default_view_cache_mib")]
    pub view_cache_mib: usize,
}

impl Default for LedgerTuning {
    fn default() -> Self {
        Self {
            max_batch: default_max_batch(),
            queue: default_queue(),
            view_cache_mib: default_view_cache_mib(),
        }
    }
}

impl LedgerTuning {
    /// Whether both values are in range.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=65_536).contains(&self.max_batch) || !(1..=1 << 20).contains(&self.queue) {
            return Err(format!(
                "ledger: max_batch must be 1 to 65536 and queue 1 to 1048576 (found {} and {})",
                self.max_batch, self.queue
            ));
        }
        if !(8..=65_536).contains(&self.view_cache_mib) {
            return Err(format!(
                "ledger: view_cache_mib must be 8 to 65536 (found {})",
                self.view_cache_mib
            ));
        }
        Ok(())
    }

    /// The ledger's options for a log of `origin`.
    pub fn options(&self, origin: &str) -> infoshare_store::ledger::LedgerOptions {
        let mut options = infoshare_store::ledger::LedgerOptions::new(origin);
        options.max_batch = self.max_batch;
        options.queue = self.queue;
        options.view_cache_bytes = self.view_cache_mib << 20;
        options
    }
}

fn default_max_batch() -> usize {
    infoshare_store::ledger::LedgerOptions::new("").max_batch
}

fn default_queue() -> usize {
    infoshare_store::ledger::LedgerOptions::new("").queue
}

fn default_view_cache_mib() -> usize {
    infoshare_store::ledger::LedgerOptions::new("").view_cache_bytes >> 20
}

/// The retention task: how often it looks for bodies whose protocol's retention has ended.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Seconds between runs (the first runs a minute after start).
    #[serde(default = "default_retention_interval")]
    pub interval_secs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            interval_secs: default_retention_interval(),
        }
    }
}

fn default_retention_interval() -> u64 {
    3600
}

/// TLS file paths.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA bundle for client certificates.
    pub ca: PathBuf,
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
    /// Certificate revocation lists (PEM) for client certificates; reloaded on SIGHUP.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
}

/// Registry file paths.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFiles {
    /// The agency registry.
    pub agencies: PathBuf,
}

pub(crate) fn default_log_origin() -> String {
    "infoshare.dev/log".to_string()
}

/// The trust domain when the configuration names none (the development PKI's).
pub const DEFAULT_TRUST_DOMAIN: &str = "infoshare.dev";

pub(crate) fn default_trust_domain() -> String {
    DEFAULT_TRUST_DOMAIN.to_string()
}

/// Why configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The development defaults could not be set up (`--dev`).
    #[error("development setup: {0}")]
    Dev(String),
}

impl Config {
    /// Where the keys are.
    pub fn keys_dir(&self) -> PathBuf {
        self.keys_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }

    /// Reads a configuration file, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.data_dir,
            &mut config.tls.ca,
            &mut config.tls.cert,
            &mut config.tls.key,
            &mut config.registry.agencies,
        ]
        .into_iter()
        .chain(config.tls.crl.iter_mut())
        .chain(config.keys_dir.as_mut())
        .chain(config.storage.password_file.as_mut())
        .chain(config.storage.ca.as_mut())
        .chain(config.calendar.holidays.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }
}

/// Loads and checks the agency registry file.
pub fn load_registry(
    path: &Path,
) -> Result<crate::registry::Registry, crate::registry::RegistryError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| crate::registry::RegistryError::Io {
            path: path.display().to_string(),
            source,
        })?;
    crate::registry::Registry::from_toml(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented production configuration parses, with every section it shows.
    #[test]
    fn the_deployment_example_is_a_valid_configuration() {
        let config: Config = toml::from_str(include_str!("../../deploy/server.toml")).unwrap();
        assert_eq!(config.transport.handshake_timeout_secs, 10);
        assert_eq!(config.transport.max_connections_per_identity, 64);
        assert_eq!(config.limits.audit_scan_budget, 20_000);
        assert_eq!((config.ledger.max_batch, config.ledger.queue), (512, 4096));
        assert!(config.ledger.check().is_ok());
    }

    #[test]
    fn ledger_tuning_is_bounded_and_reaches_the_ledger() {
        for (max_batch, queue) in [(0, 10), (10, 0), (65_537, 10), (10, (1 << 20) + 1)] {
            let tuning = LedgerTuning {
                max_batch,
                queue,
                ..LedgerTuning::default()
            };
            assert!(tuning.check().is_err());
        }
        for view_cache_mib in [7, 65_537] {
            let tuning = LedgerTuning {
                view_cache_mib,
                ..LedgerTuning::default()
            };
            assert!(tuning.check().is_err());
        }
        let options = LedgerTuning {
            max_batch: 7,
            queue: 9,
            view_cache_mib: 32,
        }
        .options("x/log");
        assert_eq!(options.view_cache_bytes, 32 << 20);
        assert_eq!(
            (options.origin.as_str(), options.max_batch, options.queue),
            ("x/log", 7, 9)
        );
    }
}
