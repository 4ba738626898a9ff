//! Configuration: the raw YAML file (serde, unknown fields refused) compiled in one fallible step
//! into a [`Config`] whose invalid states cannot be represented.
//!
//! It must not open sockets or build TLS state; `tls` and `server` do that from a compiled config.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::identity::IdentityMatcher;
use crate::net::Networks;
use crate::policy::{self, Policy};

/// A compiled, valid configuration.
#[derive(Debug)]
pub struct Config {
    /// Where the config was read from (for messages).
    pub source: PathBuf,
    pub listen: SocketAddr,
    /// Path of the Docker socket to forward to.
    pub upstream: PathBuf,
    pub tls: TlsFiles,
    /// Peers outside these networks are dropped before the handshake.
    pub networks: Networks,
    pub log: LogConfig,
    pub shutdown_grace: Duration,
    /// Threads that serve connections, each with its own single-threaded runtime.
    pub workers: usize,
    pub limits: Limits,
    pub audit: AuditConfig,
    /// Identity → role rules, first match wins.
    pub identities: Vec<IdentityMatcher>,
    /// Union of the networks of every role an identity rule can reach; `None` when one of them
    /// is unrestricted. A peer outside it is dropped before the handshake.
    pub role_networks: Option<Networks>,
    pub policy: Policy,
}

/// The certificate and key files the TLS listener uses, already resolved against the config
/// file's directory.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Vec<PathBuf>,
}

impl TlsFiles {
    /// The name a client CA bundle goes by in identities and records: its path as listed
    /// (resolved against the config's directory).
    pub fn bundle_name(&self, index: usize) -> Option<String> {
        self.client_ca.get(index).map(|p| p.display().to_string())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body the policy will buffer to read; larger ones get 413.
    pub max_body_bytes: usize,
    /// Bytes all bodies being read for the policy may hold at once, across every connection;
    /// a body that would take more is refused (503), so slow senders cannot pin memory.
    pub max_buffered_body_bytes: usize,
    /// A TLS handshake that takes longer is abandoned.
    pub handshake_timeout: Duration,
    /// How long a client may take to send its request head.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a body the policy must read.
    pub body_read_timeout: Duration,
    /// Connections served at once (handshaking or established); more are dropped at accept.
    pub max_connections: usize,
    /// Connections one source address (an IPv6 one by its /64) may hold at once (0: no cap);
    /// more are dropped at accept, so one peer cannot take every slot.
    pub max_connections_per_source: usize,
    /// How long a transfer may wait on the client without progress (a response it stopped
    /// reading, a body it stopped sending) before the connection or hijacked stream is cut.
    pub stall_timeout: Duration,
    /// How long one lookup the policy makes in dockerd (the container, volume or network a
    /// request names) may take before the request is refused with 504.
    pub lookup_timeout: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct AuditConfig {
    /// JSON-lines audit file; `None` writes audit records to the log instead.
    pub path: Option<PathBuf>,
}

/// Every problem found while loading a configuration, one per line.
#[derive(Debug)]
pub struct ConfigErrors {
    pub source: PathBuf,
    pub problems: Vec<Problem>,
}

/// One problem: the field it concerns and what is wrong.
#[derive(Debug)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", self.source.display(), p)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Collects problems while compiling, so `dockgate check` can report all of them at once.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, field: impl Into<String>, message: impl fmt::Display) {
        self.0.push(Problem {
            field: field.into(),
            message: message.to_string(),
        });
    }
}

/// Overrides given on the command line; they win over the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub upstream: Option<String>,
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Reads and compiles the config file at `path`.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
        let fail = |field: &str, message: String| ConfigErrors {
            source: path.to_path_buf(),
            problems: vec![Problem {
                field: field.to_string(),
                message,
            }],
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail("", format!("cannot read the config file: {e}")))?;
        Config::from_yaml(&text, path, overrides)
    }

    /// Compiles YAML text; relative paths are resolved against the directory of `source`.
    pub fn from_yaml(
        text: &str,
        source: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigErrors> {
        let errors = |problems| ConfigErrors {
            source: source.to_path_buf(),
            problems,
        };
        let raw: RawConfig = serde_norway::from_str(text).map_err(|e| {
            errors(vec![Problem {
                field: String::new(),
                message: e.to_string(),
            }])
        })?;
        let base = source.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut problems = Problems::default();
        let config = raw.compile(source, &base, overrides, &mut problems);
        match config {
            Some(c) if problems.0.is_empty() => Ok(c),
            _ => Err(errors(problems.0)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The raw file.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    #[serde(default = "default_upstream")]
    upstream: String,
    tls: RawTls,
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default)]
    log: RawLog,
    #[serde(default = "default_grace")]
    shutdown_grace_secs: u64,
    /// 0 (the default): one per CPU.
    #[serde(default)]
    workers: usize,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    identities: Vec<crate::identity::RawIdentityRule>,
    #[serde(default)]
    roles: BTreeMap<String, policy::RawRole>,
    #[serde(default)]
    policy: policy::RawPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: OneOrMany<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    format: LogFormat,
    #[serde(default = "default_level")]
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::Text,
            level: default_level(),
        }
    }
}

/// The largest timeout or grace period accepted, in seconds.
const MAX_SECS: u64 = 86_400;
/// The largest `limits.max_connections` accepted.
const MAX_CONNECTIONS: usize = 1_000_000;
/// The largest `limits.max_body_bytes` accepted.
const MAX_BODY_BYTES: usize = 1 << 30;
/// The largest `limits.max_buffered_body_bytes` accepted.
const MAX_BUFFERED_BODY_BYTES: u64 = 1 << 34;
/// `limits.max_buffered_body_bytes` when absent (at least 4 × `max_body_bytes`).
const DEFAULT_MAX_BUFFERED_BODY_BYTES: usize = 64 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    /// Absent: [`DEFAULT_MAX_BUFFERED_BODY_BYTES`], or 4 bodies of the largest size if more.
    #[serde(default)]
    max_buffered_body_bytes: Option<usize>,
    #[serde(default = "default_handshake_timeout")]
    handshake_timeout_secs: u64,
    #[serde(default = "default_header_timeout")]
    header_read_timeout_secs: u64,
    #[serde(default = "default_body_timeout")]
    body_read_timeout_secs: u64,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_stall_timeout")]
    stall_timeout_secs: u64,
    #[serde(default = "default_max_connections_per_source")]
    max_connections_per_source: usize,
    #[serde(default = "default_lookup_timeout")]
    lookup_timeout_secs: u64,
}

impl RawLimits {
    fn buffered_body_bytes(&self) -> usize {
        self.max_buffered_body_bytes.unwrap_or_else(|| {
            DEFAULT_MAX_BUFFERED_BODY_BYTES.max(self.max_body_bytes.saturating_mul(4))
        })
    }
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_body_bytes: default_max_body(),
            max_buffered_body_bytes: None,
            handshake_timeout_secs: default_handshake_timeout(),
            header_read_timeout_secs: default_header_timeout(),
            body_read_timeout_secs: default_body_timeout(),
            max_connections: default_max_connections(),
            stall_timeout_secs: default_stall_timeout(),
            max_connections_per_source: default_max_connections_per_source(),
            lookup_timeout_secs: default_lookup_timeout(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    path: Option<PathBuf>,
}

fn default_upstream() -> String {
    "unix:///var/run/docker.sock".into()
}
fn default_grace() -> u64 {
    10
}
fn default_level() -> String {
    "info".into()
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_handshake_timeout() -> u64 {
    10
}
fn default_header_timeout() -> u64 {
    30
}
fn default_body_timeout() -> u64 {
    30
}
/// Most worker threads a config may ask for.
const MAX_WORKERS: usize = 1024;

fn default_max_connections() -> usize {
    10_000
}

fn default_max_connections_per_source() -> usize {
    1_000
}

fn default_lookup_timeout() -> u64 {
    30
}

fn default_stall_timeout() -> u64 {
    300
}

impl RawConfig {
    fn compile(
        self,
        source: &Path,
        base: &Path,
        overrides: &Overrides,
        problems: &mut Problems,
    ) -> Option<Config> {
        let listen = match overrides.listen {
            Some(l) => Some(l),
            None => match self.listen.parse::<SocketAddr>() {
                Ok(l) => Some(l),
                Err(e) => {
                    problems.push(
                        "listen",
                        format_args!(
                            "invalid address {:?}: {e} (expected ADDR:PORT)",
                            self.listen
                        ),
                    );
                    None
                }
            },
        };
        let upstream_raw = overrides.upstream.as_deref().unwrap_or(&self.upstream);
        let upstream = match parse_upstream(upstream_raw) {
            Ok(p) => Some(p),
            Err(msg) => {
                problems.push("upstream", msg);
                None
            }
        };
        let client_ca = match self.tls.client_ca {
            OneOrMany::One(p) => vec![p],
            OneOrMany::Many(v) => v,
        };
        if client_ca.is_empty() {
            problems.push("tls.client_ca", "at least one CA bundle is required");
        }
        let tls = TlsFiles {
            cert: base.join(self.tls.cert),
            key: base.join(self.tls.key),
            client_ca: client_ca.into_iter().map(|p| base.join(p)).collect(),
        };
        let networks = parse_networks("networks", &self.networks, problems);
        let level = self.log.level.clone();
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            problems.push(
                "log.level",
                format_args!(
                    "invalid level {level:?} (expected error, warn, info, debug or trace)"
                ),
            );
        }
        if self.limits.max_body_bytes == 0 {
            problems.push("limits.max_body_bytes", "must be greater than 0");
        }
        // Past these, deadlines overflow the clock (a panic in every connection task) and the
        // connection semaphore refuses its size: say so here instead.
        for (field, secs) in [
            (
                "limits.handshake_timeout_secs",
                self.limits.handshake_timeout_secs,
            ),
            (
                "limits.header_read_timeout_secs",
                self.limits.header_read_timeout_secs,
            ),
            (
                "limits.body_read_timeout_secs",
                self.limits.body_read_timeout_secs,
            ),
            ("limits.stall_timeout_secs", self.limits.stall_timeout_secs),
            (
                "limits.lookup_timeout_secs",
                self.limits.lookup_timeout_secs,
            ),
            ("shutdown_grace_secs", self.shutdown_grace_secs),
        ] {
            if secs > MAX_SECS {
                problems.push(
                    field,
                    format_args!("{secs} is more than {MAX_SECS} (a day)"),
                );
            }
        }
        if self.limits.max_connections > MAX_CONNECTIONS {
            problems.push(
                "limits.max_connections",
                format_args!(
                    "{} is more than {MAX_CONNECTIONS}",
                    self.limits.max_connections
                ),
            );
        }
        let buffered = self.limits.buffered_body_bytes();
        if buffered < self.limits.max_body_bytes {
            problems.push(
                "limits.max_buffered_body_bytes",
                format_args!(
                    "{buffered} is less than limits.max_body_bytes ({}): one body of the largest size must fit; raise it, or leave it out for the default",
                    self.limits.max_body_bytes
                ),
            );
        }
        if buffered as u64 > MAX_BUFFERED_BODY_BYTES {
            problems.push(
                "limits.max_buffered_body_bytes",
                format_args!("{buffered} is more than {MAX_BUFFERED_BODY_BYTES} (16 GiB)"),
            );
        }
        if self.limits.max_body_bytes > MAX_BODY_BYTES {
            problems.push(
                "limits.max_body_bytes",
                format_args!(
                    "{} is more than {MAX_BODY_BYTES} (1 GiB): bodies the policy reads are held in memory",
                    self.limits.max_body_bytes
                ),
            );
        }
        if self.workers > MAX_WORKERS {
            problems.push(
                "workers",
                format_args!(
                    "{} is more than {MAX_WORKERS}; use 0 for one per CPU",
                    self.workers
                ),
            );
        }
        let socket = upstream.clone().unwrap_or_default();
        let policy = Policy::compile(self.roles, self.policy, &socket, problems);
        let identities =
            crate::identity::compile_rules(self.identities, &policy, &tls, base, problems);
        let role_networks = crate::identity::reachable_networks(&identities, &policy);
        Some(Config {
            role_networks,
            source: source.to_path_buf(),
            listen: listen?,
            upstream: upstream?,
            tls,
            networks,
            log: LogConfig {
                format: overrides.log_format.unwrap_or(self.log.format),
                level,
            },
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            workers: match self.workers {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            },
            limits: Limits {
                max_body_bytes: self.limits.max_body_bytes,
                max_buffered_body_bytes: self.limits.buffered_body_bytes(),
                handshake_timeout: Duration::from_secs(self.limits.handshake_timeout_secs.max(1)),
                header_read_timeout: Duration::from_secs(
                    self.limits.header_read_timeout_secs.max(1),
                ),
                body_read_timeout: Duration::from_secs(self.limits.body_read_timeout_secs.max(1)),
                max_connections: self.limits.max_connections.max(1),
                max_connections_per_source: self.limits.max_connections_per_source,
                stall_timeout: Duration::from_secs(self.limits.stall_timeout_secs.max(1)),
                lookup_timeout: Duration::from_secs(self.limits.lookup_timeout_secs.max(1)),
            },
            audit: AuditConfig {
                path: self.audit.path.map(|p| base.join(p)),
            },
            identities,
            policy,
        })
    }
}

/// `unix:///path/docker.sock` → `/path/docker.sock`.
pub fn parse_upstream(raw: &str) -> Result<PathBuf, String> {
    match raw.strip_prefix("unix://") {
        Some(path) if path.starts_with('/') && path.len() > 107 => Err(format!(
            "invalid upstream {raw:?}: Unix socket paths are limited to 107 bytes"
        )),
        Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
        _ => Err(format!(
            "invalid upstream {raw:?}: expected unix:///absolute/path/docker.sock"
        )),
    }
}

/// Parses a list of CIDRs (a bare address means a single host), reporting each bad entry with
/// its index.
pub fn parse_networks(field: &str, raw: &[String], problems: &mut Problems) -> Networks {
    let mut nets = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let parsed = s.parse::<IpNet>().or_else(|e| {
            s.parse::<std::net::IpAddr>()
                .map(IpNet::from)
                .map_err(|_| e)
        });
        match parsed {
            Ok(n) => nets.push(n),
            Err(e) => problems.push(
                format!("{field}[{i}]"),
                format_args!("invalid CIDR {s:?}: {e}"),
            ),
        }
    }
    Networks::new(nets)
}
