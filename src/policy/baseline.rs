//! The container security baseline (the CIS Docker Benchmark's container-runtime controls and
//! dockgate's own): rules over request bodies and queries, each with an id and a mode, and the
//! safe defaults injected into container-create bodies.
//!
//! Pure: it reads the parsed request (see `inspect` and `query`) and returns findings and a
//! rewritten body; it never performs I/O and never reads a body it was not handed.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use serde::Deserialize;

use super::inspect::{Cursor, InspectError, Json, Object};
use super::query::{Query, QueryError};
use crate::config::Problems;

/// Every baseline rule. The id is what configs, denials and the audit log name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Privileged,
    ExecPrivileged,
    ExecRoot,
    HostNetwork,
    HostPid,
    HostIpc,
    HostUts,
    HostUserns,
    HostCgroupns,
    SharedNamespace,
    HostMounts,
    MountPropagation,
    Capabilities,
    SecurityOpt,
    MaskedPaths,
    NoNewPrivileges,
    Devices,
    Sysctls,
    CgroupParent,
    Runtime,
    OomKillDisable,
    PrivilegedPorts,
    PublishAll,
    HostIp,
    Resources,
    RestartPolicy,
    ReadonlyRootfs,
    Images,
    ImageImport,
    Build,
    VolumeDriver,
    NetworkDriver,
    LogDriver,
    Uninspectable,
}

impl Rule {
    pub const ALL: [Rule; 34] = [
        Rule::Privileged,
        Rule::ExecPrivileged,
        Rule::ExecRoot,
        Rule::HostNetwork,
        Rule::HostPid,
        Rule::HostIpc,
        Rule::HostUts,
        Rule::HostUserns,
        Rule::HostCgroupns,
        Rule::SharedNamespace,
        Rule::HostMounts,
        Rule::MountPropagation,
        Rule::Capabilities,
        Rule::SecurityOpt,
        Rule::MaskedPaths,
        Rule::NoNewPrivileges,
        Rule::Devices,
        Rule::Sysctls,
        Rule::CgroupParent,
        Rule::Runtime,
        Rule::OomKillDisable,
        Rule::PrivilegedPorts,
        Rule::PublishAll,
        Rule::HostIp,
        Rule::Resources,
        Rule::RestartPolicy,
        Rule::ReadonlyRootfs,
        Rule::Images,
        Rule::ImageImport,
        Rule::Build,
        Rule::VolumeDriver,
        Rule::NetworkDriver,
        Rule::LogDriver,
        Rule::Uninspectable,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::Privileged => "privileged",
            Rule::ExecPrivileged => "exec-privileged",
            Rule::ExecRoot => "exec-root",
            Rule::HostNetwork => "host-network",
            Rule::HostPid => "host-pid",
            Rule::HostIpc => "host-ipc",
            Rule::HostUts => "host-uts",
            Rule::HostUserns => "host-userns",
            Rule::HostCgroupns => "host-cgroupns",
            Rule::SharedNamespace => "shared-namespace",
            Rule::HostMounts => "host-mounts",
            Rule::MountPropagation => "mount-propagation",
            Rule::Capabilities => "capabilities",
            Rule::SecurityOpt => "security-opt",
            Rule::MaskedPaths => "masked-paths",
            Rule::NoNewPrivileges => "no-new-privileges",
            Rule::Devices => "devices",
            Rule::Sysctls => "sysctls",
            Rule::CgroupParent => "cgroup-parent",
            Rule::Runtime => "runtime",
            Rule::OomKillDisable => "oom-kill-disable",
            Rule::PrivilegedPorts => "privileged-ports",
            Rule::PublishAll => "publish-all",
            Rule::HostIp => "host-ip",
            Rule::Resources => "resources",
            Rule::RestartPolicy => "restart-policy",
            Rule::ReadonlyRootfs => "readonly-rootfs",
            Rule::Images => "images",
            Rule::ImageImport => "image-import",
            Rule::Build => "build",
            Rule::VolumeDriver => "volume-driver",
            Rule::NetworkDriver => "network-driver",
            Rule::LogDriver => "log-driver",
            Rule::Uninspectable => "uninspectable",
        }
    }

    fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

/// What a rule does when it finds a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny the request.
    Enforce,
    /// Allow it, and record "would deny" in the audit log.
    Warn,
    /// Ignore.
    Off,
}

/// Inject a setting when absent, require it, or leave it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Setting {
    Inject,
    Require,
    Off,
}

/// One rule's finding on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub mode: Mode,
    pub reason: String,
}

/// The result of checking one request: violations (already filtered by mode) and the rewritten
/// body when defaults were injected.
#[derive(Debug, Default)]
pub struct Outcome {
    pub violations: Vec<Violation>,
    pub mutations: Vec<String>,
    pub rewritten: Option<Json>,
}

/// Why a request cannot be judged at all: the proxy answers 400.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error(transparent)]
    Body(#[from] InspectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    Ambiguous(String),
}

/// The compiled baseline for one role.
#[derive(Debug, Clone)]
pub struct Baseline {
    modes: BTreeMap<Rule, Mode>,
    caps_allowed: Vec<String>,
    bind_allowed: Vec<String>,
    bind_writable: bool,
    bind_denied: Vec<String>,
    images: Vec<String>,
    runtimes: Vec<String>,
    sysctls_allowed: Vec<String>,
    devices_allowed: Vec<String>,
    volume_drivers: Vec<String>,
    network_drivers: Vec<String>,
    log_drivers: Vec<String>,
    host_ip: Option<IpAddr>,
    restart_max_retries: i64,
    restart_always: bool,
    memory_default: i64,
    memory_max: i64,
    nano_cpus_default: i64,
    nano_cpus_max: i64,
    pids_default: i64,
    pids_max: i64,
    ulimits: BTreeMap<String, UlimitSetting>,
    readonly_rootfs: Setting,
    no_new_privileges: Setting,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UlimitSetting {
    /// Injected when the request sets no such ulimit (`soft:hard`).
    pub default: Option<UlimitValue>,
    /// Largest soft/hard value a request may ask for.
    pub max: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UlimitValue {
    pub soft: i64,
    pub hard: i64,
}

/// The baseline as written under `roles.<name>.baseline`; everything has a safe default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBaseline {
    /// Per-rule modes, e.g. `exec-root: enforce`.
    #[serde(default)]
    rules: BTreeMap<String, Mode>,
    capabilities_allowed: Option<Vec<String>>,
    bind_allowed: Option<Vec<String>>,
    /// Allow writable binds of allowed paths (a container can then plant symlinks there).
    bind_writable: Option<bool>,
    bind_denied_extra: Option<Vec<String>>,
    images: Option<Vec<String>>,
    runtimes: Option<Vec<String>>,
    sysctls_allowed: Option<Vec<String>>,
    devices_allowed: Option<Vec<String>>,
    volume_drivers: Option<Vec<String>>,
    network_drivers: Option<Vec<String>>,
    /// Log drivers a container may use (default: json-file, local, journald, none); remote
    /// drivers (gelf, fluentd, syslog, …) send to addresses the request names.
    log_drivers: Option<Vec<String>>,
    host_ip: Option<IpAddr>,
    restart_max_retries: Option<i64>,
    restart_always: Option<bool>,
    memory_default: Option<ByteSize>,
    memory_max: Option<ByteSize>,
    cpus_default: Option<f64>,
    cpus_max: Option<f64>,
    pids_default: Option<i64>,
    pids_max: Option<i64>,
    ulimits: Option<BTreeMap<String, UlimitSetting>>,
    readonly_rootfs: Option<Setting>,
    no_new_privileges: Option<Setting>,
}

/// A byte count written as a number or with a k/m/g/t suffix (powers of 1024), e.g. `2g`.
#[derive(Debug, Clone, Copy)]
pub struct ByteSize(pub i64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => parse_bytes(&s).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid size {s:?}: expected a number of bytes or e.g. 512m, 2g"
                ))
            }),
        }
    }
}

fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k') => (&s[..i], 1i64 << 10),
        (i, 'm') => (&s[..i], 1 << 20),
        (i, 'g') => (&s[..i], 1 << 30),
        (i, 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.trim().parse::<i64>().ok()?.checked_mul(mult)
}

/// Host paths no container may bind, nor any parent of them (mounting `/var` exposes
/// `/var/run/docker.sock`). The configured upstream socket is added at compile time.
pub const DENIED_HOST_PATHS: &[&str] = &[
    "/",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/kubelet",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/var/log",
];

/// Sysctls that are namespaced per container (what dockerd itself accepts without host effect).
const NAMESPACED_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
    "fs.mqueue.*",
    "net.*",
];

/// Capabilities a baseline role may add without configuration (all in Docker's default set).
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "MKNOD",
    "AUDIT_WRITE",
    "SETFCAP",
];

/// The HostConfig field a top-level create-body key names under Go's key folding, if any.
fn host_config_field(key: &str) -> Option<&'static str> {
    static FOLDS: std::sync::LazyLock<Vec<u64>> = std::sync::LazyLock::new(|| {
        HOST_CONFIG_FIELDS
            .iter()
            .map(|f| super::inspect::fold_hash(f))
            .collect()
    });
    let want = super::inspect::fold_hash(key);
    HOST_CONFIG_FIELDS
        .iter()
        .zip(FOLDS.iter())
        .find(|(f, fold)| **fold == want && super::inspect::go_fold_eq(key, f))
        .map(|(f, _)| *f)
}

/// The longest stop timeout a create may set, in seconds (dockerd's default is 10).
const MAX_STOP_TIMEOUT_SECS: i64 = 300;

/// The shortest health-check interval or timeout a create may set, in nanoseconds.
const MIN_HEALTH_INTERVAL_NS: i64 = 1_000_000_000;

/// HostConfig fields dockerd (≤ 26) also reads at the top level of a create body.
const HOST_CONFIG_FIELDS: &[&str] = &[
    "AutoRemove",
    "Binds",
    "BlkioDeviceReadBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceWriteIOps",
    "BlkioWeight",
    "BlkioWeightDevice",
    "CapAdd",
    "CapDrop",
    "Capabilities",
    "Cgroup",
    "CgroupParent",
    "CgroupnsMode",
    "ConsoleSize",
    "ContainerIDFile",
    "CpuCount",
    "CpuPercent",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpuShares",
    "Cpuset",
    "CpusetCpus",
    "CpusetMems",
    "DeviceCgroupRules",
    "DeviceRequests",
    "Devices",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "IOMaximumBandwidth",
    "IOMaximumIOps",
    "Init",
    "IpcMode",
    "Isolation",
    "KernelMemory",
    "KernelMemoryTCP",
    "Links",
    "LogConfig",
    "MaskedPaths",
    "Memory",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "Mounts",
    "NanoCpus",
    "NetworkMode",
    "OomKillDisable",
    "OomScoreAdj",
    "PidMode",
    "PidsLimit",
    "PortBindings",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyPaths",
    "ReadonlyRootfs",
    "RestartPolicy",
    "Runtime",
    "SecurityOpt",
    "ShmSize",
    "StorageOpt",
    "Sysctls",
    "Tmpfs",
    "UTSMode",
    "Ulimits",
    "UsernsMode",
    "VolumeDriver",
    "VolumesFrom",
    "Annotations",
];

impl Baseline {
    /// Compiles a role's baseline over the built-in defaults. `socket` (the upstream Docker
    /// socket) is always a denied host path.
    pub fn compile(
        raw: RawBaseline,
        field: &str,
        socket: &std::path::Path,
        problems: &mut Problems,
    ) -> Baseline {
        let mut modes: BTreeMap<Rule, Mode> =
            Rule::ALL.iter().map(|r| (*r, Mode::Enforce)).collect();
        modes.insert(Rule::ExecRoot, Mode::Warn);
        for (id, mode) in raw.rules {
            match Rule::from_id(&id) {
                Some(rule) => {
                    modes.insert(rule, mode);
                }
                None => problems.push(
                    format!("{field}.rules.{id}"),
                    format_args!(
                        "unknown rule (known: {})",
                        Rule::ALL.map(Rule::id).join(", ")
                    ),
                ),
            }
        }
        let strings = |v: Option<Vec<String>>, d: &[&str]| {
            v.unwrap_or_else(|| d.iter().map(|s| s.to_string()).collect())
        };
        let mut normalise_list = |list: Vec<String>, name: &str| -> Vec<String> {
            list.into_iter()
                .enumerate()
                .filter_map(|(i, p)| match clean_host_path(&p) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        problems.push(format!("{field}.{name}[{i}]"), e);
                        None
                    }
                })
                .collect()
        };
        // Extras are normalised on their own so a problem names its index in the setting.
        let mut bind_denied: Vec<String> =
            DENIED_HOST_PATHS.iter().map(|s| s.to_string()).collect();
        bind_denied.extend(normalise_list(
            raw.bind_denied_extra.unwrap_or_default(),
            "bind_denied_extra",
        ));
        let bind_allowed = normalise_list(raw.bind_allowed.unwrap_or_default(), "bind_allowed");
        match clean_host_path(&socket.to_string_lossy()) {
            Ok(socket) => bind_denied.push(socket),
            // Empty: the config's `upstream` was invalid and has reported its own problem.
            Err(_) if socket.as_os_str().is_empty() => {}
            Err(e) => problems.push("upstream", e),
        }
        let caps_allowed = strings(raw.capabilities_allowed, DEFAULT_CAPS)
            .iter()
            .map(|c| normalise_cap(c))
            .collect();
        let cpus = |c: f64| (c * 1e9) as i64;
        let b = Baseline {
            modes,
            caps_allowed,
            bind_allowed,
            bind_writable: raw.bind_writable.unwrap_or(false),
            bind_denied,
            images: raw.images.unwrap_or_default(),
            runtimes: strings(raw.runtimes, &["runc"]),
            sysctls_allowed: strings(raw.sysctls_allowed, NAMESPACED_SYSCTLS),
            devices_allowed: raw.devices_allowed.unwrap_or_default(),
            volume_drivers: strings(raw.volume_drivers, &["local"]),
            network_drivers: strings(raw.network_drivers, &["bridge"]),
            log_drivers: strings(raw.log_drivers, &["json-file", "local", "journald", "none"]),
            host_ip: raw.host_ip,
            restart_max_retries: raw.restart_max_retries.unwrap_or(5),
            restart_always: raw.restart_always.unwrap_or(false),
            memory_default: raw.memory_default.map_or(2 << 30, |b| b.0),
            memory_max: raw.memory_max.map_or(8 << 30, |b| b.0),
            nano_cpus_default: raw.cpus_default.map_or(1_000_000_000, cpus),
            nano_cpus_max: raw.cpus_max.map_or(2_000_000_000, cpus),
            pids_default: raw.pids_default.unwrap_or(512),
            pids_max: raw.pids_max.unwrap_or(4096),
            ulimits: raw.ulimits.unwrap_or_default(),
            readonly_rootfs: raw.readonly_rootfs.unwrap_or(Setting::Off),
            no_new_privileges: raw.no_new_privileges.unwrap_or(Setting::Inject),
        };
        for (name, v, max) in [
            ("memory_default", b.memory_default, b.memory_max),
            ("cpus_default", b.nano_cpus_default, b.nano_cpus_max),
            ("pids_default", b.pids_default, b.pids_max),
        ] {
            if v <= 0 || v > max {
                problems.push(
                    format!("{field}.{name}"),
                    "must be greater than 0 and at most the maximum",
                );
            }
        }
        b
    }

    /// The ulimit setting for a request's ulimit `name`, matched the way dockerd names the
    /// rlimit (`"RLIMIT_" + strings.ToUpper(name)`), so `NOFILE` is `nofile`.
    fn ulimit_setting(&self, name: &str) -> Option<&UlimitSetting> {
        let want = go_to_upper(name);
        self.ulimits
            .iter()
            .find(|(configured, _)| go_to_upper(configured) == want)
            .map(|(_, setting)| setting)
    }

    /// Whether `route` (method + template) carries a body this baseline must read.
    pub fn reads_body(method: &str, template: &str) -> bool {
        matches!(
            (method, template),
            ("POST", "/containers/create")
                | ("POST", "/containers/{id}/update")
                | ("POST", "/containers/{id}/exec")
                | ("POST", "/containers/{id}/start")
                | ("POST", "/volumes/create")
                | ("POST", "/networks/create")
                | ("POST", "/networks/{id}/connect")
                | ("POST", "/networks/{id}/disconnect")
        )
    }

    /// Checks one request. `body` is the parsed JSON body for routes where [`reads_body`] is
    /// true (`None` for an empty body).
    ///
    /// [`reads_body`]: Baseline::reads_body
    pub fn check(
        &self,
        method: &str,
        template: &str,
        query: &Query,
        body: Option<Json>,
    ) -> Result<Outcome, Unreadable> {
        let mut f = Findings::new(self);
        if (method, template) == ("POST", "/containers/create") {
            let mut doc = match body {
                Some(Json::Object(o)) => Json::Object(o),
                Some(Json::Null) | None => Json::Object(Object::new()),
                Some(other) => {
                    return Err(InspectError::WrongType {
                        path: super::inspect::Path::root(),
                        expected: "object",
                        found: other.type_name(),
                    }
                    .into())
                }
            };
            f.container_create(&doc)?;
            if f.inject_create_defaults(&mut doc)? {
                f.out.rewritten = Some(doc);
            }
            return Ok(f.out);
        }
        let body = body.as_ref();
        // A start from a checkpoint restores a CRIU dump from any host directory.
        if (method, template) == ("POST", "/containers/{id}/start")
            && (query.get("checkpoint")?.is_some_and(|v| !v.is_empty())
                || query.get("checkpoint-dir")?.is_some_and(|v| !v.is_empty()))
        {
            f.violation(
                Rule::HostMounts,
                "starting from a checkpoint is not allowed: checkpoint-dir names any host directory (docker start --checkpoint)",
            );
        }
        match (method, template) {
            ("POST", "/containers/{id}/update") => {
                if let Some(b) = body {
                    f.container_update(b.cursor())?;
                }
            }
            ("POST", "/containers/{id}/exec") => {
                if let Some(b) = body {
                    f.exec_create(b.cursor())?;
                }
            }
            ("POST", "/containers/{id}/start") if body.is_some_and(|b| !is_empty_json(b)) => {
                return Err(Unreadable::Ambiguous(
                    "a container start body is a HostConfig on old API versions; send no body and put settings in the create request".into(),
                ));
            }
            ("POST", "/volumes/create") => {
                if let Some(b) = body {
                    f.volume_create(b.cursor())?;
                }
            }
            ("POST", "/networks/create") => {
                if let Some(b) = body {
                    f.network_create(b.cursor())?;
                }
            }
            ("POST", "/images/create") => f.images_create(query)?,
            ("POST", "/containers/{id}/stop") | ("POST", "/containers/{id}/restart") => {
                // Read as Go's strconv.Atoi reads it; a negative wait never kills, and dockerd
                // keeps waiting after the client hangs up.
                if let Some(t) = query.get("t")?.filter(|t| !t.is_empty()) {
                    f.stop_timeout(format_args!("{t:?}"), t.parse().ok(), "--time");
                }
            }
            ("POST", "/containers/prune") => f.violation(
                Rule::Uninspectable,
                "pruning removes every stopped container, also those this role may not act on; remove containers by name (docker rm)",
            ),
            ("POST", "/volumes/prune") => f.violation(
                Rule::Uninspectable,
                "pruning removes every unused volume and its data, also those this role may not act on; remove volumes by name (docker volume rm)",
            ),
            ("POST", "/networks/prune") => f.violation(
                Rule::Uninspectable,
                "pruning removes every unused network, also those this role may not act on; remove networks by name (docker network rm)",
            ),
            ("POST", "/build") => f.build(query)?,
            ("POST", "/services/create")
            | ("POST", "/services/{id}/update")
            | ("POST", "/plugins/pull")
            | ("POST", "/plugins/{name}/upgrade")
            | ("POST", "/plugins/{name}/set")
            | ("POST", "/plugins/create")
            | ("POST", "/swarm/init")
            | ("POST", "/swarm/join") => f.violation(
                Rule::Uninspectable,
                format!("{method} {template} carries container settings the baseline does not inspect yet; use an unrestricted role"),
            ),
            // Every other swarm route (matched as a whole, so none added later slips by), and
            // the node writes.
            (m, t)
                if t == "/swarm"
                    || t.starts_with("/swarm/")
                    || matches!((m, t), ("POST", "/nodes/{id}/update") | ("DELETE", "/nodes/{id}")) =>
            {
                f.violation(
                    Rule::Uninspectable,
                    format!("{method} {template} reads or changes the swarm itself (its join tokens and unlock key let any machine manage it, and a manager schedules containers on this host unjudged); use an unrestricted role"),
                )
            }
            ("GET", "/containers/{id}/checkpoints")
            | ("POST", "/containers/{id}/checkpoints")
            | ("DELETE", "/containers/{id}/checkpoints/{checkpoint}") => f.violation(
                Rule::HostMounts,
                "checkpoints are CRIU dumps in host directories (the dir parameter and CheckpointDir name any host path, and deleting one removes it); use an unrestricted role",
            ),
            ("POST", "/session") | ("POST", "/grpc") => f.violation(
                Rule::Build,
                "BuildKit sessions carry build settings the policy cannot read (entitlements such as network.host and devices); build with the classic builder (DOCKER_BUILDKIT=0) or use an unrestricted role",
            ),
            ("POST", "/images/{name}/tag") | ("POST", "/commit") => {
                if let Some(repo) = query.get("repo")?.filter(|s| !s.is_empty()) {
                    let tag = query.get("tag")?.unwrap_or("");
                    let name = join_reference(repo, tag, "repo")?;
                    f.image_name_free(&name, "repo");
                }
            }
            ("POST", "/images/load") if !f.b.images.is_empty() => f.violation(
                Rule::Images,
                "loading images from a tar archive is not allowed while an image allow-list applies: the archive names its own tags, which could replace an allowed image",
            ),
            ("POST", "/networks/{id}/connect") => {
                if let Some(b) = body {
                    let endpoint = b.cursor().field("EndpointConfig")?;
                    f.endpoint_settings(&endpoint, format_args!("docker network connect"))?;
                }
            }
            _ => {}
        }
        Ok(f.out)
    }
}

/// The rules whose settings make a container a way onto the host. A baseline role may act on
/// an existing container (exec, attach, copy, start, update, stop, …) only when none of them
/// fires on the container's own settings: whoever created it, the role could not have.
/// Resource, restart and logging settings are not counted, nor the cgroup namespace (the
/// host's is the daemon default on cgroup v1 hosts).
const TARGET_RULES: [Rule; 14] = [
    Rule::Images,
    Rule::Privileged,
    Rule::HostNetwork,
    Rule::HostPid,
    Rule::HostIpc,
    Rule::HostUts,
    Rule::HostUserns,
    Rule::SharedNamespace,
    Rule::HostMounts,
    Rule::MountPropagation,
    Rule::Capabilities,
    Rule::SecurityOpt,
    Rule::Devices,
    Rule::MaskedPaths,
];

/// The system paths dockerd masks and makes read-only in every container that is not
/// privileged (dockerd 20.10's defaults; later versions add to them). An existing container must
/// keep each: without `/proc/sys` read-only, root in it writes host-wide kernel settings
/// (`kernel/core_pattern` runs a program on the host).
const DEFAULT_MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

impl Baseline {
    /// Checks an existing container, from dockerd's inspect of it (`GET /containers/{id}/json`),
    /// against [`TARGET_RULES`]: its image, its host config, its system paths and its working
    /// directory.
    /// Not its `Config.Volumes`: dockerd merges the image's `VOLUME`s into them, which a create
    /// is not judged by either (a systemd image's `/sys/fs/cgroup`).
    pub fn check_target(&self, inspect: &Json) -> Result<Outcome, Unreadable> {
        self.check_container(inspect, &[], true)
    }

    /// Checks a container that shares namespaces with one a request works in (`group`: the
    /// containers sharing them, that one included) as [`Baseline::check_target`] does, bar its
    /// joins within the group: what it holds, the other is a way to.
    /// Not its image: what it runs from there, a container of this role reaches only through
    /// what its settings give (an admin's backup container of another image is no way onto
    /// the host).
    pub fn check_sharing(
        &self,
        inspect: &Json,
        group: &[crate::joins::Listed],
    ) -> Result<Outcome, Unreadable> {
        self.check_container(inspect, group, false)
    }

    /// [`Baseline::check_target`] (`image`) and [`Baseline::check_sharing`].
    fn check_container(
        &self,
        inspect: &Json,
        group: &[crate::joins::Listed],
        image: bool,
    ) -> Result<Outcome, Unreadable> {
        let mut f = Findings::new(self);
        f.sharing = group;
        let root = inspect.cursor();
        let hc = root.field("HostConfig")?;
        f.only = Some(&TARGET_RULES);
        // What it runs: an image outside the role's list is not the role's to run, export or
        // read (an admin's image with its own secrets in it).
        match root.field_path(&["Config", "Image"])?.as_str()? {
            _ if !image => {}
            Some(image) if !image.is_empty() => f.image_allowed(image, "the image it runs"),
            _ if !self.images.is_empty() => f.violation(
                Rule::Images,
                "it names no image, which this role could not have run while its images are listed",
            ),
            _ => {}
        }
        f.host_config(&hc)?;
        f.system_paths_kept(&hc)?;
        // The image's WORKDIR is merged in too, but no image needs one under /proc.
        if let Some(dir) = root.field_path(&["Config", "WorkingDir"])?.as_str()? {
            f.working_dir(dir, "its working directory")?;
        }
        f.out.mutations.clear();
        f.out.rewritten = None;
        Ok(f.out)
    }

    /// Checks an existing exec instance a request starts, from dockerd's inspect of it
    /// (`GET /exec/{id}/json`): its process settings, as at exec create.
    pub fn check_exec(&self, inspect: &Json) -> Result<Outcome, Unreadable> {
        let mut f = Findings::new(self);
        f.exec_create(inspect.cursor().field("ProcessConfig")?)?;
        Ok(f.out)
    }

    /// Checks the user an exec runs as in a container (from dockerd's inspect of it): `user`
    /// as given, or, when none is (`""`), the container's (`Config.User`: the create's
    /// `--user`, else the image's `USER`; root when empty). A user given by name is looked up
    /// in the container's `/etc/passwd` when the exec starts: unless its root filesystem is
    /// read-only, whoever may copy into it can make that name uid 0, so only numeric uids
    /// pass there.
    pub fn check_exec_user(&self, inspect: &Json, user: &str) -> Result<Outcome, Unreadable> {
        let mut f = Findings::new(self);
        let root = inspect.cursor();
        let hc = root.field("HostConfig")?;
        // First what no `-u` can mend: a non-root process becomes root through a setuid-root
        // file (one copied in with docker cp, or put in a volume by a root container) unless
        // the container forbids it.
        if !no_new_privileges(&hc)? {
            f.violation(
                Rule::ExecRoot,
                "the container runs without no-new-privileges, so an exec as any user can become root through a setuid file; it needs --security-opt no-new-privileges",
            );
            return Ok(f.out);
        }
        let own = root
            .field_path(&["Config", "User"])?
            .as_str()?
            .unwrap_or("");
        let runs_as = if user.is_empty() { own } else { user };
        if user.is_empty() && (own.is_empty() || is_root_user(own)) {
            let who = if own.is_empty() {
                "root (it sets no user)".to_string()
            } else {
                format!("{own:?}, root")
            };
            f.violation(
                Rule::ExecRoot,
                format!("an exec without a user runs as the container's user, {who}; give a non-root one (docker exec -u 1000)"),
            );
            return Ok(f.out);
        }
        let name = runs_as.split(':').next().unwrap_or("");
        let read_only = hc.field("ReadonlyRootfs")?.as_bool()?.unwrap_or(false);
        if !is_plain_uid(name) && (!read_only || passwd_mounted(&root)?) {
            f.violation(
                Rule::ExecRoot,
                format!("the exec's user {name:?} is a name (or no uid runc takes as one), looked up in the container's /etc/passwd, which a writable root filesystem or a mount over /etc lets others map to uid 0; give a numeric uid (docker exec -u 1000)"),
            );
        }
        Ok(f.out)
    }

    /// Checks an existing named volume a request mounts, from dockerd's inspect of it
    /// (`GET /volumes/{name}`): its driver and driver options, as at `docker volume create`.
    pub fn check_volume(&self, inspect: &Json) -> Result<Outcome, Unreadable> {
        let mut f = Findings::new(self);
        let v = inspect.cursor();
        let driver = v.field("Driver")?.as_str()?.unwrap_or("");
        let name = v.field("Name")?.as_str()?.unwrap_or("");
        f.volume_driver_options(driver, &v.field("Options")?, &format!("volume {name}"))?;
        Ok(f.out)
    }

    /// Checks an existing network, from dockerd's inspect of it (`GET /networks/{id}`), as its
    /// create would have been checked: a role attaches containers only to networks it could
    /// have created (an admin's macvlan would put them on the host's LAN).
    pub fn check_network(&self, inspect: &Json) -> Result<Outcome, Unreadable> {
        let mut f = Findings::new(self);
        f.network_settings(inspect.cursor(), true)?;
        Ok(f.out)
    }

    /// The networks a container-create body attaches its container to (`--network name`),
    /// other than the daemon's own `bridge` and `none` (and `container:` modes, judged as
    /// namespaces).
    pub fn named_networks(body: &Json) -> Result<Vec<String>, Unreadable> {
        let root = body.cursor();
        let mut names = Vec::new();
        if let Some(mode) = root.field_path(&["HostConfig", "NetworkMode"])?.as_str()? {
            names.push(mode.to_string());
        }
        for (name, _) in root
            .field_path(&["NetworkingConfig", "EndpointsConfig"])?
            .entries()?
        {
            names.push(name.to_string());
        }
        names.retain(|n| joins_by_name(n));
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The containers a create body links to (`--link name:alias`), as dockerd's `ParseLink`
    /// reads each entry: `(name, alias)`. They are judged like the target of an exec.
    pub fn linked_containers(body: &Json) -> Result<Vec<(String, String)>, Unreadable> {
        let mut links = Vec::new();
        for link in body
            .cursor()
            .field_path(&["HostConfig", "Links"])?
            .items()?
        {
            let text = link.as_str()?.unwrap_or("");
            let (name, alias) = parse_link(text)
                .ok_or_else(|| Unreadable::Ambiguous(format!("link {text:?} is not name:alias")))?;
            // dockerd names the link parent/alias: an alias with '/' or '..' would name (and
            // take) a container name outside this container.
            if name.is_empty() || !is_container_name(&alias) {
                return Err(Unreadable::Ambiguous(format!(
                    "link {text:?} needs a container and an alias of letters, digits, '_', '.' and '-'"
                )));
            }
            links.push((name, alias));
        }
        Ok(links)
    }

    /// The named volumes a container-create body mounts (`-v name:/dst`, `--mount
    /// type=volume,source=name`), which may exist already with options of their own.
    pub fn named_volumes(body: &Json) -> Result<Vec<String>, Unreadable> {
        let hc = body.cursor().field("HostConfig")?;
        let mut names = Vec::new();
        for bind in hc.field("Binds")?.items()? {
            let Some(spec) = bind.as_str()? else { continue };
            let parts: Vec<&str> = spec.splitn(4, ':').collect();
            if let [src, _, ..] = parts.as_slice() {
                if !src.is_empty() && !src.starts_with('/') {
                    names.push(src.to_string());
                }
            }
        }
        for m in hc.field("Mounts")?.items()? {
            if m.field("Type")?.as_str()? == Some("volume") {
                if let Some(src) = m.field("Source")?.as_str()?.filter(|s| !s.is_empty()) {
                    names.push(src.to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Violations kept for one request; the rest are not recorded.
const MAX_VIOLATIONS: usize = 64;

/// Collects violations (by mode) and mutations while checking one request.
struct Findings<'b> {
    b: &'b Baseline,
    out: Outcome,
    /// The rules this check reports; `None` for all. Applied before the cap on how many are
    /// kept, so a violation that matters is never crowded out by ones that do not.
    only: Option<&'static [Rule]>,
    /// Containers whose namespaces this one may join without a violation: the group a
    /// container that joins another is judged with (see [`Baseline::check_sharing`]).
    sharing: &'b [crate::joins::Listed],
}

type R = Result<(), Unreadable>;

impl<'b> Findings<'b> {
    /// Findings of `b`'s rules, none yet.
    fn new(b: &'b Baseline) -> Self {
        Findings {
            b,
            out: Outcome::default(),
            only: None,
            sharing: &[],
        }
    }
}

impl Findings<'_> {
    fn violation(&mut self, rule: Rule, reason: impl Into<String>) {
        if self.only.is_some_and(|only| !only.contains(&rule)) {
            return;
        }
        let mode = self.b.modes.get(&rule).copied().unwrap_or(Mode::Enforce);
        // A body of thousands of bad entries is refused by its first; keeping them all would
        // turn 1 MiB of request into tens of MiB of messages (and of audit record). Past the
        // cap, only a first enforced violation is still kept: it decides the request.
        let room = self.out.violations.len() < MAX_VIOLATIONS
            || (mode == Mode::Enforce
                && !self.out.violations.iter().any(|v| v.mode == Mode::Enforce));
        if mode != Mode::Off && room {
            self.out.violations.push(Violation {
                rule,
                mode,
                reason: reason.into(),
            });
        }
    }

    /// Whether a `container:<other>` join stays within the group being judged.
    fn shares_with(&self, other: &str) -> bool {
        self.sharing
            .iter()
            .any(|c| crate::joins::refers_to(other, c))
    }

    fn enabled(&self, rule: Rule) -> bool {
        self.b.modes.get(&rule).copied().unwrap_or(Mode::Enforce) != Mode::Off
    }

    // ---- container create --------------------------------------------------------------

    fn container_create(&mut self, doc: &Json) -> R {
        let root = doc.cursor();
        for (key, _) in root.entries()? {
            if let Some(field) = host_config_field(key) {
                return Err(Unreadable::Ambiguous(format!(
                    "{key:?} at the top level of a create body is read by dockerd as HostConfig.{field} on some API versions; put it under \"HostConfig\""
                )));
            }
        }
        match root.field("Image")?.as_str()?.filter(|i| !i.is_empty()) {
            Some(image) => self.image_allowed(image, "Image"),
            // dockerd makes a container of nothing (scratch), to be filled by `docker cp`.
            None if !self.b.images.is_empty() => self.violation(
                Rule::Images,
                "a container without an image is not allowed while this role's images are listed; name one of them",
            ),
            None => {}
        }
        for (path, _) in root.field("Volumes")?.entries()? {
            if path.contains(':') {
                self.violation(Rule::HostMounts, format!("Volumes entry {path:?} has a ':', which dockerd's parsers can read as a source:destination bind; an anonymous volume takes a container path only (a named volume with options belongs in HostConfig.Binds or Mounts)"));
            } else {
                self.container_target(path, &format!("Volumes {path}"))?;
            }
        }
        if let Some(dir) = root.field("WorkingDir")?.as_str()? {
            self.working_dir(dir, "docker run -w")?;
        }
        self.stop_and_health(&root)?;
        let hc = root.field("HostConfig")?;
        self.host_config(&hc)?;
        for field in ["MaskedPaths", "ReadonlyPaths"] {
            if !hc.field(field)?.is_unset() {
                self.violation(Rule::MaskedPaths, format!("custom {field} are not allowed (--security-opt systempaths=unconfined empties them)"));
            }
        }
        self.blkio_devices(&hc)?;
        let endpoints = root.field_path(&["NetworkingConfig", "EndpointsConfig"])?;
        for (net, _) in endpoints.entries()? {
            self.network_mode(net, "NetworkingConfig.EndpointsConfig")?;
        }
        for (net, endpoint) in endpoints.entries()? {
            self.endpoint_settings(&endpoint, format_args!("network {net}"))?;
        }
        // The container's MAC on its first network (every API version).
        self.mac_address(&root, format_args!("docker run"))?;
        Ok(())
    }

    fn host_config(&mut self, hc: &Cursor<'_>) -> R {
        if hc.field("Privileged")?.as_bool()? == Some(true) {
            self.violation(
                Rule::Privileged,
                "privileged containers are not allowed (--privileged)",
            );
        }
        // dockerd copies these into the OCI spec, where runc and systemd read some of them
        // (org.systemd.property.*, org.criu.config).
        if hc.field("Annotations")?.entries()?.next().is_some() {
            self.violation(
                Rule::SecurityOpt,
                "OCI annotations are not allowed (HostConfig.Annotations): the runtime reads some of them as settings",
            );
        }
        if let Some(mode) = hc.field("NetworkMode")?.as_str()? {
            self.network_mode(mode, "HostConfig.NetworkMode")?;
        }
        for (field, rule, flag) in [
            ("PidMode", Rule::HostPid, "--pid"),
            ("IpcMode", Rule::HostIpc, "--ipc"),
            ("UTSMode", Rule::HostUts, "--uts"),
            ("UsernsMode", Rule::HostUserns, "--userns"),
            ("CgroupnsMode", Rule::HostCgroupns, "--cgroupns"),
        ] {
            if let Some(v) = hc.field(field)?.as_str()? {
                if v == "host" {
                    self.violation(
                        rule,
                        format!("sharing the host's namespace is not allowed ({flag} host)"),
                    );
                } else if let Some(other) = v.strip_prefix("container:") {
                    if self.shares_with(other) {
                        continue;
                    }
                    self.violation(
                        Rule::SharedNamespace,
                        format!(
                            "joining another container's namespace is not allowed ({flag} {v})"
                        ),
                    );
                } else if field == "UTSMode" || field == "UsernsMode" || field == "CgroupnsMode" {
                    // Anything else dockerd would reject or treat as private.
                }
            }
        }
        if let Some(v) = hc.field("Cgroup")?.as_str()? {
            if !v.is_empty() {
                self.violation(
                    Rule::SharedNamespace,
                    format!("joining another cgroup is not allowed (Cgroup {v:?})"),
                );
            }
        }
        self.mounts(hc)?;
        self.capabilities(hc)?;
        self.security_opts(hc)?;
        for item in hc.field("Devices")?.items()? {
            let path = item.field("PathOnHost")?.as_str()?.unwrap_or("");
            if !self.b.devices_allowed.iter().any(|a| a == path) {
                self.violation(
                    Rule::Devices,
                    format!("host device {path:?} is not allowed (--device)"),
                );
            }
            // Where the node appears: not over the kernel's /proc or /sys.
            if let Some(inside) = item.field("PathInContainer")?.as_str()? {
                let rooted = format!("/{}", inside.trim_start_matches('/'));
                let clean = clean_path(&rooted, "container path").map_err(|_| {
                    Unreadable::Ambiguous(format!(
                        "device path {inside:?} contains '..'; give the path without it"
                    ))
                })?;
                if is_under(&clean, "/proc") || is_under(&clean, "/sys") {
                    self.violation(
                        Rule::Devices,
                        format!("a device node at {clean} is not allowed: /proc and /sys are the kernel's (--device {path}:{inside})"),
                    );
                }
            }
        }
        // A size of 0 (or any size) replaces the daemon's per-container disk quota.
        if let Some((key, _)) = hc.field("StorageOpt")?.entries()?.next() {
            self.violation(
                Rule::Resources,
                format!("storage options ({key:?}) are not allowed: they replace the daemon's disk quota (--storage-opt)"),
            );
        }
        for (field, flag) in [
            ("DeviceCgroupRules", "--device-cgroup-rule"),
            ("DeviceRequests", "--gpus"),
        ] {
            if hc.field(field)?.items()?.next().is_some() {
                self.violation(
                    Rule::Devices,
                    format!("device access is not allowed ({field}, {flag})"),
                );
            }
        }
        for (name, _) in hc.field("Sysctls")?.entries()? {
            if !self.b.sysctls_allowed.iter().any(|p| glob(p, name)) {
                self.violation(
                    Rule::Sysctls,
                    format!("sysctl {name:?} is not in the namespaced allowlist"),
                );
            }
        }
        if let Some(p) = hc.field("CgroupParent")?.as_str()? {
            if !p.is_empty() {
                self.violation(
                    Rule::CgroupParent,
                    format!("a custom cgroup parent is not allowed (--cgroup-parent {p})"),
                );
            }
        }
        if let Some(rt) = hc.field("Runtime")?.as_str()? {
            if !rt.is_empty() && !self.b.runtimes.iter().any(|a| a == rt) {
                self.violation(
                    Rule::Runtime,
                    format!(
                        "runtime {rt:?} is not allowed (allowed: {})",
                        self.b.runtimes.join(", ")
                    ),
                );
            }
        }
        if hc.field("OomKillDisable")?.as_bool()? == Some(true) {
            self.violation(
                Rule::OomKillDisable,
                "disabling the OOM killer is not allowed (--oom-kill-disable)",
            );
        }
        if hc.field("OomScoreAdj")?.as_i64()?.unwrap_or(0) < 0 {
            self.violation(
                Rule::OomKillDisable,
                "a negative OOM score adjustment is not allowed (--oom-score-adj)",
            );
        }
        let shm = hc.field("ShmSize")?.as_i64()?.unwrap_or(0);
        self.shm_size(shm);
        // Options without a driver go to the daemon's default driver, which may be a remote
        // one: only options that say how much to keep and how to tag it (what json-file and
        // local take) are let through, not ones that say where logs go.
        const LOCAL_LOG_OPTIONS: [&str; 10] = [
            "max-size",
            "max-file",
            "compress",
            "mode",
            "max-buffer-size",
            "tag",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
        ];
        let log_driver = hc
            .field_path(&["LogConfig", "Type"])?
            .as_str()?
            .unwrap_or("");
        if log_driver.is_empty() {
            for (key, _) in hc.field_path(&["LogConfig", "Config"])?.entries()? {
                if !LOCAL_LOG_OPTIONS.contains(&key) {
                    self.violation(
                        Rule::LogDriver,
                        format!("log option {key:?} without a log driver is not allowed (--log-opt without --log-driver): dockerd applies it to its default driver, which may send logs elsewhere; name an allowed driver"),
                    );
                }
            }
        } else if !self.b.log_drivers.iter().any(|d| d == log_driver) {
            self.violation(
                Rule::LogDriver,
                format!(
                    "log driver {log_driver:?} is not allowed (allowed: {})",
                    self.b.log_drivers.join(", ")
                ),
            );
        }
        if hc.field("PublishAllPorts")?.as_bool()? == Some(true) {
            self.violation(
                Rule::PublishAll,
                "publishing every exposed port is not allowed (-P); publish ports explicitly",
            );
        }
        for (port, bindings) in hc.field("PortBindings")?.entries()? {
            // dockerd ≥ 25 back-fills an empty list with a wildcard binding on a random port.
            if self.b.host_ip.is_some() && bindings.as_array()?.is_none_or(|b| b.is_empty()) {
                self.violation(
                    Rule::HostIp,
                    format!("port {port} has an empty binding list, which newer dockerd publishes on every address; give -p {}::{port}", self.b.host_ip.map(|i| i.to_string()).unwrap_or_default()),
                );
            }
            for binding in bindings.items()? {
                // dockerd reads a null binding as an empty one: every address, a random port.
                if self.b.host_ip.is_some() && binding.value().is_none_or(Json::is_null) {
                    self.violation(
                        Rule::HostIp,
                        format!("port {port} has a null binding, which dockerd publishes on every address; give -p {}::{port}", self.b.host_ip.map(|i| i.to_string()).unwrap_or_default()),
                    );
                    continue;
                }
                self.port_binding(port, &binding)?;
            }
        }
        self.resources(hc, false)?;
        self.restart_policy(&hc.field("RestartPolicy")?)?;
        if self.b.readonly_rootfs == Setting::Require
            && hc.field("ReadonlyRootfs")?.as_bool()? != Some(true)
        {
            self.violation(
                Rule::ReadonlyRootfs,
                "the root filesystem must be read-only (--read-only)",
            );
        }
        if let Some(driver) = hc.field("VolumeDriver")?.as_str()? {
            if !driver.is_empty() && !self.b.volume_drivers.iter().any(|d| d == driver) {
                self.violation(
                    Rule::VolumeDriver,
                    format!("volume driver {driver:?} is not allowed"),
                );
            }
        }
        Ok(())
    }

    fn network_mode(&mut self, mode: &str, field: &str) -> R {
        if mode == "host" {
            self.violation(
                Rule::HostNetwork,
                format!("the host network is not allowed (--network host, {field})"),
            );
        } else if let Some(other) = mode.strip_prefix("container:") {
            if !self.shares_with(other) {
                self.violation(
                    Rule::SharedNamespace,
                    format!(
                        "joining another container's network is not allowed (--network {mode})"
                    ),
                );
            }
        }
        Ok(())
    }

    fn mounts(&mut self, hc: &Cursor<'_>) -> R {
        for bind in hc.field("Binds")?.items()? {
            let Some(spec) = bind.as_str()? else { continue };
            let parts: Vec<&str> = spec.splitn(4, ':').collect();
            let dest = match parts.as_slice() {
                [dest] | [_, dest] | [_, dest, _] => Some(*dest),
                _ => None,
            };
            if let Some(dest) = dest {
                self.container_target(dest, &format!("-v {spec}"))?;
            }
            let (source, mode) = match parts.as_slice() {
                [_dest] => continue,
                [src, _dst] => (*src, ""),
                [src, _dst, mode] => (*src, *mode),
                _ => {
                    return Err(Unreadable::Ambiguous(format!(
                        "{}: bind {spec:?} has too many ':' parts",
                        bind.path()
                    )))
                }
            };
            if source.starts_with('/') {
                let read_only = mode.split(',').any(|t| t == "ro");
                self.host_path(source, read_only, &format!("-v {spec}"))?;
            }
            for token in mode.split(',') {
                if matches!(token, "z" | "Z") && source.starts_with('/') {
                    self.violation(
                        Rule::HostMounts,
                        format!("relabelling a host path is not allowed (-v {spec}): :z and :Z change the SELinux labels of the host's files, even on a read-only bind"),
                    );
                }
                if is_shared_propagation(token) {
                    self.violation(
                        Rule::MountPropagation,
                        format!("shared mount propagation is not allowed (-v {spec})"),
                    );
                }
            }
        }
        for m in hc.field("Mounts")?.items()? {
            let ty = m.field("Type")?.as_str()?.unwrap_or("");
            let source = m.field("Source")?.as_str()?.unwrap_or("");
            if let Some(target) = m.field("Target")?.as_str()? {
                self.container_target(target, &format!("--mount target={target}"))?;
            }
            match ty {
                "bind" => {
                    let read_only = m.field("ReadOnly")?.as_bool()? == Some(true);
                    if m.field_path(&["BindOptions", "ReadOnlyNonRecursive"])?
                        .as_bool()?
                        == Some(true)
                    {
                        self.violation(Rule::HostMounts, format!("a non-recursive read-only bind leaves the mounts below it writable (--mount type=bind,source={source},readonly-non-recursive)"));
                    }
                    self.host_path(
                        source,
                        read_only,
                        &format!("--mount type=bind,source={source}"),
                    )?;
                    if let Some(p) = m.field_path(&["BindOptions", "Propagation"])?.as_str()? {
                        if is_shared_propagation(p) {
                            self.violation(Rule::MountPropagation, format!("shared mount propagation is not allowed (bind-propagation={p})"));
                        }
                    }
                }
                "volume" => {
                    let dc = m.field_path(&["VolumeOptions", "DriverConfig"])?;
                    let driver = dc.field("Name")?.as_str()?.unwrap_or("");
                    self.volume_driver_options(
                        driver,
                        &dc.field("Options")?,
                        &format!("--mount source={source}"),
                    )?;
                }
                "tmpfs" => {}
                other => self.violation(
                    Rule::HostMounts,
                    format!("mount type {other:?} is not allowed (bind, volume and tmpfs are)"),
                ),
            }
        }
        for (dest, _) in hc.field("Tmpfs")?.entries()? {
            self.container_target(dest, &format!("--tmpfs {dest}"))?;
        }
        if hc.field("VolumesFrom")?.items()?.next().is_some() {
            self.violation(
                Rule::HostMounts,
                "--volumes-from is not allowed: it inherits another container's mounts",
            );
        }
        Ok(())
    }

    fn volume_driver_options(&mut self, driver: &str, options: &Cursor<'_>, what: &str) -> R {
        if !driver.is_empty() && !self.b.volume_drivers.iter().any(|d| d == driver) {
            self.violation(
                Rule::VolumeDriver,
                format!("volume driver {driver:?} is not allowed ({what})"),
            );
        }
        // The local driver mounts `device` with `type` and `o` (mount(8) semantics): only a
        // plain bind of an allowed host path, or a tmpfs, is judged safe; overlay lowerdirs,
        // procfs, NFS and the like can expose any host path whatever `device` says.
        let Some(opts) = options.as_object()? else {
            return Ok(());
        };
        // Map keys, compared exactly; the path is rendered only for an error.
        let text = |key| -> Result<Option<&str>, Unreadable> { Ok(options.entry(key)?.as_str()?) };
        let (ty, o, device) = (text("type")?, text("o")?, text("device")?);
        if let Some((key, _)) = opts
            .entries()
            .find(|(k, _)| !matches!(*k, "type" | "o" | "device"))
        {
            self.violation(
                Rule::HostMounts,
                format!("volume driver option {key:?} is not allowed ({what})"),
            );
        }
        // Option words as mount(8) might take them, whatever their case or spacing: one that
        // could mean a bind is judged as one, and moving or remounting is no volume's business.
        let word = |t: &str| t.trim().to_ascii_lowercase();
        let words = || o.into_iter().flat_map(|o| o.split(',')).map(word);
        let binds = words().any(|t| t == "bind" || t == "rbind");
        if let Some(t) =
            words().find(|t| matches!(t.as_str(), "move" | "remount" | "rshared" | "shared"))
        {
            self.violation(
                Rule::HostMounts,
                format!("volume driver option o={t:?} is not allowed ({what})"),
            );
        }
        match (ty.unwrap_or(""), device) {
            ("tmpfs", _) if !binds && device.is_none_or(|d| d == "tmpfs") => {}
            ("" | "none", Some(device)) if binds && device.starts_with('/') => {
                // mount(8) and moby's parseOptions apply the flags in order: the last of
                // ro/rw decides (`bind,ro,rw` is writable). Read-only only when that is an
                // exact `ro` and no other spelling of `rw` (` RW`) is there at all.
                let read_only = o.is_some_and(|o| {
                    o.split(',').rfind(|t| matches!(*t, "ro" | "rw")) == Some("ro")
                        && !o.split(',').any(|t| t != "rw" && word(t) == "rw")
                });
                self.host_path(device, read_only, &format!("{what}, volume device {device}"))?;
            }
            (_, None) if ty.is_none() && o.is_none() => {}
            (ty, device) => self.violation(
                Rule::HostMounts,
                format!(
                    "volume driver options type={ty:?} o={:?} device={:?} are not allowed; only type=none,o=bind of an allowed host path or type=tmpfs ({what})",
                    o.unwrap_or(""),
                    device.unwrap_or("")
                ),
            ),
        }
        Ok(())
    }

    /// Where a mount lands in the container: not over the kernel's interfaces (/proc, /sys,
    /// /dev but /dev/shm), the setup of runc's mount-redirection escapes (CVE-2025-52565,
    /// CVE-2025-52881). A relative destination is judged from the root: dockerd refuses one in
    /// binds, mounts and tmpfs, but passes a legacy `Volumes` key on, and runc joins it to the
    /// container's root.
    fn container_target(&mut self, raw: &str, what: &str) -> R {
        let rooted = if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("/{raw}")
        };
        // Errors name the path as the client sent it.
        let path = clean_path(&rooted, "container path").map_err(|_| {
            Unreadable::Ambiguous(format!(
                "container path {raw:?} contains '..'; give the path without it"
            ))
        })?;
        if ["/proc", "/sys", "/dev"].iter().any(|d| is_under(&path, d)) && path != "/dev/shm" {
            self.violation(
                Rule::MaskedPaths,
                format!("mounting over {path} is not allowed: /proc, /sys and /dev are the kernel's ({what})"),
            );
        }
        Ok(())
    }

    /// An existing container's system paths: absent (dockerd's defaults apply at start), or
    /// lists that keep every default (dockerd fills them in at create; an admin may add more).
    /// A read-only default may be masked instead (that hides more), and `/proc/asound` may be
    /// read-only (dockerd 18.06 and 18.09 listed it so, and a container keeps the lists it was
    /// created with). Shortened lists leave the kernel's interfaces open to root in it.
    fn system_paths_kept(&mut self, hc: &Cursor<'_>) -> R {
        let masked_list = hc.field("MaskedPaths")?;
        let readonly_list = hc.field("ReadonlyPaths")?;
        let mut masked = Vec::new();
        for item in masked_list.items()? {
            masked.extend(item.as_str()?);
        }
        let mut readonly = Vec::new();
        for item in readonly_list.items()? {
            readonly.extend(item.as_str()?);
        }
        if !masked_list.is_unset() {
            let missing: Vec<&str> = DEFAULT_MASKED_PATHS
                .iter()
                .copied()
                .filter(|d| {
                    let kept = masked.contains(d) || (*d == "/proc/asound" && readonly.contains(d));
                    !kept
                })
                .collect();
            self.paths_missing("MaskedPaths", &missing);
        }
        if !readonly_list.is_unset() {
            let missing: Vec<&str> = DEFAULT_READONLY_PATHS
                .iter()
                .copied()
                .filter(|d| !readonly.contains(d) && !masked.contains(d))
                .collect();
            self.paths_missing("ReadonlyPaths", &missing);
        }
        Ok(())
    }

    fn paths_missing(&mut self, field: &str, missing: &[&str]) {
        if !missing.is_empty() {
            self.violation(
                Rule::MaskedPaths,
                format!(
                    "its system paths are unprotected ({field} lacks {})",
                    missing.join(", ")
                ),
            );
        }
    }

    /// A working directory under /proc lets a process start with a leaked host file descriptor
    /// as its cwd (/proc/self/fd/N, CVE-2024-21626). A relative one is judged from the root:
    /// dockerd refuses one at container create, but passes an exec's on to runc.
    fn working_dir(&mut self, dir: &str, what: &str) -> R {
        if dir.is_empty() {
            return Ok(());
        }
        let rooted = if dir.starts_with('/') {
            std::borrow::Cow::Borrowed(dir)
        } else {
            std::borrow::Cow::Owned(format!("/{dir}"))
        };
        let path = clean_path(&rooted, "working directory").map_err(Unreadable::Ambiguous)?;
        if path == "/proc" || path.starts_with("/proc/") {
            self.violation(
                Rule::MaskedPaths,
                format!("a working directory under /proc is not allowed ({what} {dir})"),
            );
        }
        Ok(())
    }

    /// Judges a bind source. `read_only` says whether the container gets it read-only: a
    /// writable bind lets a container plant a symlink that a later bind of a path under it
    /// would follow (the kernel resolves it at mount time), so writable binds need
    /// `bind_writable: true`.
    fn host_path(&mut self, raw: &str, read_only: bool, what: &str) -> R {
        let path = clean_host_path(raw).map_err(Unreadable::Ambiguous)?;
        let related = |d: &String| {
            path == *d
                || path.starts_with(&format!("{d}/"))
                || d.starts_with(&format!("{path}/"))
                || path == "/"
        };
        if let Some(d) = self.b.bind_denied.iter().find(|d| related(d)) {
            self.violation(
                Rule::HostMounts,
                format!("host path {path} is or contains the sensitive path {d} ({what})"),
            );
        } else if !self
            .b
            .bind_allowed
            .iter()
            .any(|a| path == *a || path.starts_with(&format!("{a}/")))
        {
            self.violation(
                Rule::HostMounts,
                format!(
                    "host path {path} is outside the allowed bind prefixes [{}] ({what})",
                    self.b.bind_allowed.join(", ")
                ),
            );
        } else if !read_only && !self.b.bind_writable {
            self.violation(
                Rule::HostMounts,
                format!("host path {path} must be bound read-only (:ro): a writable bind lets a container plant symlinks a later bind would follow ({what})"),
            );
        }
        Ok(())
    }

    fn capabilities(&mut self, hc: &Cursor<'_>) -> R {
        for cap in str_or_list(&hc.field("CapAdd")?)? {
            let norm = normalise_cap(&cap);
            if !self.b.caps_allowed.contains(&norm) {
                self.violation(
                    Rule::Capabilities,
                    format!("adding capability {norm} is not allowed (--cap-add {cap})"),
                );
            }
        }
        if !hc.field("Capabilities")?.is_unset() {
            self.violation(
                Rule::Capabilities,
                "the legacy Capabilities field is not allowed; use CapAdd/CapDrop",
            );
        }
        Ok(())
    }

    fn security_opts(&mut self, hc: &Cursor<'_>) -> R {
        // The no-new-privileges value dockerd ends with: the last entry naming it wins.
        let mut no_new_privileges = None;
        for item in hc.field("SecurityOpt")?.items()? {
            let Some(opt) = item.as_str()? else { continue };
            // dockerd: "no-new-privileges" and "disable" alone; else split at the first '=',
            // or at the first ':' when there is no '='.
            if opt == "no-new-privileges" {
                no_new_privileges = Some(true);
                continue;
            }
            if opt == "disable" {
                self.violation(
                    Rule::SecurityOpt,
                    "disabling SELinux labelling is not allowed (--security-opt label=disable)",
                );
                continue;
            }
            let split = opt.split_once('=').or_else(|| opt.split_once(':'));
            let Some((key, value)) = split else {
                self.violation(
                    Rule::SecurityOpt,
                    format!("security option {opt:?} is not understood"),
                );
                continue;
            };
            match key {
                // Any SELinux type, user or level can be one the host leaves unconfined
                // (spc_t, container_runtime_t, a level without categories): the daemon's
                // labelling is the only one judged safe.
                "label" => {
                    self.violation(
                        Rule::SecurityOpt,
                        format!(
                            "SELinux option {opt:?} is not allowed; the daemon labels containers"
                        ),
                    );
                }
                // Any other loaded profile may be a permissive one (flags=(unconfined)).
                "apparmor" => {
                    if value == "unconfined" {
                        self.violation(Rule::SecurityOpt, "running without AppArmor is not allowed (--security-opt apparmor=unconfined)");
                    } else if value != "docker-default" {
                        self.violation(
                            Rule::SecurityOpt,
                            format!(
                                "AppArmor profile {value:?} is not allowed; only docker-default is"
                            ),
                        );
                    }
                }
                "seccomp" => {
                    self.violation(Rule::SecurityOpt, if value == "unconfined" {
                        "running without seccomp is not allowed (--security-opt seccomp=unconfined)".to_string()
                    } else {
                        "custom seccomp profiles are not allowed (--security-opt seccomp=…)".to_string()
                    });
                }
                "no-new-privileges" => match go_parse_bool(value) {
                    Some(true) => no_new_privileges = Some(true),
                    Some(false) => {
                        no_new_privileges = Some(false);
                        self.violation(
                            Rule::NoNewPrivileges,
                            format!("turning no-new-privileges off is not allowed ({opt})"),
                        )
                    }
                    None => self.violation(
                        Rule::SecurityOpt,
                        format!("security option {opt:?} is not understood"),
                    ),
                },
                "systempaths" => self.violation(Rule::MaskedPaths, format!("{opt} is not allowed")),
                _ => self.violation(
                    Rule::SecurityOpt,
                    format!("security option {opt:?} is not understood"),
                ),
            }
        }
        if self.b.no_new_privileges == Setting::Require && no_new_privileges != Some(true) {
            self.violation(
                Rule::NoNewPrivileges,
                "no-new-privileges must be set (--security-opt no-new-privileges)",
            );
        }
        Ok(())
    }

    fn port_binding(&mut self, port: &str, binding: &Cursor<'_>) -> R {
        let host_port = binding.field("HostPort")?.as_str()?.unwrap_or("");
        if !host_port.is_empty() {
            let (lo, hi) = parse_port_range(host_port).ok_or_else(|| {
                Unreadable::Ambiguous(format!(
                    "{}: host port {host_port:?} is not a port or range",
                    binding.path()
                ))
            })?;
            if (lo, hi) != (0, 0) && lo < 1024 {
                self.violation(
                    Rule::PrivilegedPorts,
                    format!("host ports below 1024 are not allowed (-p {host_port}:{port})"),
                );
            }
        }
        if let Some(want) = self.b.host_ip {
            let ip = binding.field("HostIp")?.as_str()?.unwrap_or("");
            if !ip.is_empty() && ip.parse::<IpAddr>().ok() != Some(want) {
                self.violation(
                    Rule::HostIp,
                    format!("ports may only be published on {want}, not {ip} ({port})"),
                );
            }
        }
        Ok(())
    }

    fn resources(&mut self, r: &Cursor<'_>, update: bool) -> R {
        let b = self.b;
        let memory = r.field("Memory")?.as_i64()?.unwrap_or(0);
        if memory > b.memory_max {
            self.violation(
                Rule::Resources,
                format!(
                    "memory limit {memory} exceeds the maximum {} (--memory)",
                    b.memory_max
                ),
            );
        }
        if memory < 0 {
            self.violation(Rule::Resources, "a negative memory limit is not allowed");
        }
        let swap = r.field("MemorySwap")?.as_i64()?.unwrap_or(0);
        if swap > b.memory_max.saturating_mul(2) {
            self.violation(
                Rule::Resources,
                format!(
                    "memory+swap limit {swap} exceeds twice the memory maximum {} (--memory-swap)",
                    b.memory_max
                ),
            );
        }
        if r.field("MemorySwap")?.as_i64()? == Some(-1) {
            self.violation(
                Rule::Resources,
                "unlimited swap is not allowed (--memory-swap -1)",
            );
        }
        let nano = r.field("NanoCpus")?.as_i64()?.unwrap_or(0);
        if nano > b.nano_cpus_max || nano < 0 {
            self.violation(
                Rule::Resources,
                format!(
                    "CPU limit {nano} nano-CPUs exceeds the maximum {} (--cpus)",
                    b.nano_cpus_max
                ),
            );
        }
        let quota = r.field("CpuQuota")?.as_i64()?.unwrap_or(0);
        if quota != 0 {
            let period = r
                .field("CpuPeriod")?
                .as_i64()?
                .filter(|p| *p > 0)
                .unwrap_or(100_000);
            let nano = (quota as i128) * 1_000_000_000 / period as i128;
            if quota < 0 || nano > b.nano_cpus_max as i128 {
                self.violation(Rule::Resources, format!("CPU quota {quota}/{period} exceeds the maximum of {} nano-CPUs (--cpu-quota)", b.nano_cpus_max));
            }
        }
        let pids = r.field("PidsLimit")?;
        if let Some(p) = pids.as_i64()? {
            if p > b.pids_max || (update && p <= 0) {
                self.violation(
                    Rule::Resources,
                    format!(
                        "PIDs limit {p} is outside 1..={} (--pids-limit)",
                        b.pids_max
                    ),
                );
            }
        }
        for u in r.field("Ulimits")?.items()? {
            let name = u.field("Name")?.as_str()?.unwrap_or("");
            let soft = u.field("Soft")?.as_i64()?.unwrap_or(0);
            let hard = u.field("Hard")?.as_i64()?.unwrap_or(0);
            match b.ulimit_setting(name) {
                None => self.violation(
                    Rule::Resources,
                    format!(
                        "ulimit {name:?} is not allowed (configured: {})",
                        b.ulimits.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(setting) => {
                    if let Some(max) = setting.max {
                        if soft > max || hard > max || soft < 0 || hard < 0 {
                            self.violation(
                                Rule::Resources,
                                format!("ulimit {name}={soft}:{hard} exceeds the maximum {max} (--ulimit)"),
                            );
                        }
                    }
                }
            }
        }
        if r.field("KernelMemory")?.as_i64()?.unwrap_or(0) < 0 {
            self.violation(
                Rule::Resources,
                "a negative kernel memory limit is not allowed",
            );
        }
        // A reservation above any limit the role may set keeps the container from starting
        // (dockerd checks it against the memory limit then): on update, a way to stop one.
        for (field, flag) in [
            ("MemoryReservation", "--memory-reservation"),
            ("KernelMemory", "--kernel-memory"),
            ("KernelMemoryTCP", "KernelMemoryTCP"),
        ] {
            let v = r.field(field)?.as_i64()?.unwrap_or(0);
            if v > b.memory_max {
                self.violation(
                    Rule::Resources,
                    format!(
                        "{field} {v} exceeds the memory maximum {} ({flag})",
                        b.memory_max
                    ),
                );
            }
        }
        // A weight the kernel refuses keeps the container from starting (dockerd stores it on
        // a stopped container unchecked); 0 is the default.
        if let Some(v) = r.field("CpuShares")?.as_i64()?.filter(|v| *v != 0) {
            if !(2..=262_144).contains(&v) {
                self.violation(
                    Rule::Resources,
                    format!("CPU shares {v} are outside 2..=262144 (--cpu-shares)"),
                );
            }
        }
        // Real-time scheduling takes CPU time from the host's own real-time tasks.
        for (field, flag) in [
            ("CpuRealtimePeriod", "--cpu-rt-period"),
            ("CpuRealtimeRuntime", "--cpu-rt-runtime"),
        ] {
            if let Some(v) = r.field(field)?.as_i64()?.filter(|v| *v != 0) {
                self.violation(
                    Rule::Resources,
                    format!("real-time CPU scheduling is not allowed ({flag} {v})"),
                );
            }
        }
        Ok(())
    }

    fn restart_policy(&mut self, rp: &Cursor<'_>) -> R {
        let name = rp.field("Name")?.as_str()?.unwrap_or("");
        let retries = rp.field("MaximumRetryCount")?.as_i64()?.unwrap_or(0);
        match name {
            "" | "no" => {}
            "on-failure" => {
                let max = self.b.restart_max_retries;
                if retries <= 0 || retries > max {
                    self.violation(Rule::RestartPolicy, format!("restart policy on-failure needs 1 to {max} retries (--restart on-failure:N)"));
                }
            }
            "always" | "unless-stopped" if self.b.restart_always => {}
            other => self.violation(Rule::RestartPolicy, format!("restart policy {other:?} is not allowed; use on-failure with at most {} retries", self.b.restart_max_retries)),
        }
        Ok(())
    }

    /// Injects the configured safe defaults into a create body; true when anything changed.
    fn inject_create_defaults(&mut self, doc: &mut Json) -> Result<bool, Unreadable> {
        let b = self.b;
        let Json::Object(root) = doc else {
            return Ok(false);
        };
        // Taken out (leaving null in its place) and put back by set_field at the same position
        // under the canonical name: no copy of the HostConfig is made.
        let mut hc = match root.field_mut("HostConfig")? {
            Some(slot @ Json::Object(_)) => match std::mem::replace(slot, Json::Null) {
                Json::Object(o) => o,
                _ => Object::new(),
            },
            _ => Object::new(),
        };
        let hc_path = super::inspect::Path::of(&["HostConfig"]);
        let mut changes = Vec::new();
        let int = |o: &Object, f: &str| -> Result<i64, Unreadable> {
            Ok(o.field(f)?
                .map(|v| v.as_i64(&hc_path.field(f)))
                .transpose()?
                .flatten()
                .unwrap_or(0))
        };
        if self.enabled(Rule::Resources) {
            let memory = int(&hc, "Memory")?;
            if memory <= 0 {
                hc.set_field("Memory", Json::from(b.memory_default));
                changes.push(format!("HostConfig.Memory={}", b.memory_default));
            }
            let memory = memory
                .max(0)
                .max(if memory <= 0 { b.memory_default } else { 0 });
            if int(&hc, "MemorySwap")? == 0 {
                hc.set_field("MemorySwap", Json::from(memory));
                changes.push(format!("HostConfig.MemorySwap={memory}"));
            }
            if int(&hc, "NanoCpus")? <= 0 && int(&hc, "CpuQuota")? <= 0 {
                // dockerd refuses NanoCpus beside a CpuPeriod; give that period its quota instead
                // (at least the 1ms dockerd accepts).
                let period = int(&hc, "CpuPeriod")?;
                if period > 0 {
                    let quota =
                        i128::from(b.nano_cpus_default) * i128::from(period) / 1_000_000_000;
                    let quota = i64::try_from(quota).unwrap_or(i64::MAX).max(1000);
                    hc.set_field("CpuQuota", Json::from(quota));
                    changes.push(format!("HostConfig.CpuQuota={quota}"));
                } else {
                    hc.set_field("NanoCpus", Json::from(b.nano_cpus_default));
                    changes.push(format!("HostConfig.NanoCpus={}", b.nano_cpus_default));
                }
            }
            if int(&hc, "PidsLimit")? <= 0 {
                hc.set_field("PidsLimit", Json::from(b.pids_default));
                changes.push(format!("HostConfig.PidsLimit={}", b.pids_default));
            }
            let mut ulimits: Vec<Json> = match hc.field("Ulimits")? {
                Some(Json::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            let mut added = false;
            for (name, setting) in &b.ulimits {
                let Some(d) = setting.default else { continue };
                let present = ulimits.iter().any(|u| match u {
                    Json::Object(o) => {
                        matches!(o.field("Name"), Ok(Some(Json::String(n))) if go_to_upper(n) == go_to_upper(name))
                    }
                    _ => false,
                });
                if !present {
                    let mut o = Object::new();
                    o.set_field("Name", Json::String(name.as_str().into()));
                    o.set_field("Soft", Json::from(d.soft));
                    o.set_field("Hard", Json::from(d.hard));
                    ulimits.push(Json::Object(o));
                    changes.push(format!("HostConfig.Ulimits+={name}={}:{}", d.soft, d.hard));
                    added = true;
                }
            }
            if added {
                hc.set_field("Ulimits", Json::Array(ulimits));
            }
        }
        if self.enabled(Rule::NoNewPrivileges) && b.no_new_privileges == Setting::Inject {
            let mut opts: Vec<Json> = match hc.field("SecurityOpt")? {
                Some(Json::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            // Strip every spelling dockerd reads as no-new-privileges; append the final one.
            opts.retain(|o| !matches!(o, Json::String(s) if s == "no-new-privileges" || s.starts_with("no-new-privileges=") || s.starts_with("no-new-privileges:")));
            opts.push(Json::String("no-new-privileges=true".into()));
            hc.set_field("SecurityOpt", Json::Array(opts));
            changes.push("HostConfig.SecurityOpt+=no-new-privileges=true".into());
        }
        if self.enabled(Rule::ReadonlyRootfs)
            && b.readonly_rootfs == Setting::Inject
            && !matches!(hc.field("ReadonlyRootfs")?, Some(Json::Bool(true)))
        {
            hc.set_field("ReadonlyRootfs", Json::Bool(true));
            changes.push("HostConfig.ReadonlyRootfs=true".into());
        }
        // An unset cgroup namespace mode is the daemon's default, which is the host's on cgroup
        // v1 hosts (and on older API versions there): make it private.
        let cgroupns_unset = match hc.field("CgroupnsMode")? {
            None | Some(Json::Null) => true,
            Some(Json::String(mode)) => mode.is_empty(),
            Some(_) => false,
        };
        if self.enabled(Rule::HostCgroupns) && cgroupns_unset {
            hc.set_field("CgroupnsMode", Json::String("private".into()));
            changes.push("HostConfig.CgroupnsMode=private".into());
        }
        if let (true, Some(ip)) = (self.enabled(Rule::HostIp), b.host_ip) {
            if let Some(Json::Object(pb)) = hc.field_mut("PortBindings")? {
                for (_, bindings) in pb.entries_mut() {
                    if let Json::Array(list) = bindings {
                        for binding in list {
                            if let Json::Object(bo) = binding {
                                let empty = matches!(
                                    bo.field("HostIp"),
                                    Ok(None) | Ok(Some(Json::Null))
                                ) || matches!(bo.field("HostIp"), Ok(Some(Json::String(s))) if s.is_empty());
                                if empty {
                                    bo.set_field("HostIp", Json::String(ip.to_string().into()));
                                    changes.push(format!("PortBindings HostIp={ip}"));
                                }
                            }
                        }
                    }
                }
            }
        }
        root.set_field("HostConfig", Json::Object(hc));
        let changed = !changes.is_empty();
        self.out.mutations.extend(changes);
        Ok(changed)
    }

    // ---- other routes ------------------------------------------------------------------

    fn container_update(&mut self, body: Cursor<'_>) -> R {
        self.resources(&body, true)?;
        // The stored quota or period is not known here: changing one alone can turn a bounded
        // quota into many CPUs (period 100000 → 1000), so both must come together.
        let period = body.field("CpuPeriod")?.as_i64()?.unwrap_or(0);
        let quota = body.field("CpuQuota")?.as_i64()?.unwrap_or(0);
        if (period != 0) != (quota != 0) {
            self.violation(
                Rule::Resources,
                "on update, CpuPeriod and CpuQuota must be set together (--cpu-period with --cpu-quota, or --cpus)",
            );
        }
        // Newer dockerd stats block-IO device paths on update too.
        self.blkio_devices(&body)?;
        self.restart_policy(&body.field("RestartPolicy")?)
    }

    fn exec_create(&mut self, body: Cursor<'_>) -> R {
        if body.field("Privileged")?.as_bool()? == Some(true) {
            self.violation(
                Rule::ExecPrivileged,
                "privileged exec is not allowed (docker exec --privileged)",
            );
        }
        let user = body.field("User")?.as_str()?.unwrap_or("");
        if is_root_user(user) {
            self.violation(
                Rule::ExecRoot,
                format!("exec as root is not allowed (docker exec -u {user})"),
            );
        }
        if let Some(dir) = body.field("WorkingDir")?.as_str()? {
            self.working_dir(dir, "docker exec -w")?;
        }
        Ok(())
    }

    fn volume_create(&mut self, body: Cursor<'_>) -> R {
        let driver = body.field("Driver")?.as_str()?.unwrap_or("");
        self.volume_driver_options(driver, &body.field("DriverOpts")?, "docker volume create")
    }

    fn network_create(&mut self, body: Cursor<'_>) -> R {
        self.network_settings(body, false)
    }

    /// A network create body, or (`existing`) dockerd's inspect of a network, which carries
    /// the same Driver, Options and ConfigFrom fields.
    fn network_settings(&mut self, body: Cursor<'_>, existing: bool) -> R {
        let driver = body.field("Driver")?.as_str()?.unwrap_or("bridge");
        let driver = if driver.is_empty() { "bridge" } else { driver };
        if !self.b.network_drivers.iter().any(|d| d == driver) {
            self.violation(
                Rule::NetworkDriver,
                format!(
                    "network driver {driver:?} is not allowed (allowed: {})",
                    self.b.network_drivers.join(", ")
                ),
            );
        }
        // Driver options change how the host's network is wired (an existing host bridge,
        // gateway modes that expose every container port, trusted host interfaces): only
        // these, which do not, are accepted.
        const SAFE_OPTIONS: [&str; 4] = [
            "com.docker.network.bridge.enable_icc",
            "com.docker.network.bridge.enable_ip_masquerade",
            "com.docker.network.driver.mtu",
            "com.docker.network.container_iface_prefix",
        ];
        for (key, _) in body.field("Options")?.entries()? {
            if !SAFE_OPTIONS.contains(&key) {
                self.violation(
                    Rule::NetworkDriver,
                    format!(
                        "network option {key:?} is not allowed (allowed: {})",
                        SAFE_OPTIONS.join(", ")
                    ),
                );
            }
        }
        // A network built from another one's configuration gets options nobody checked here.
        // (An inspect always shows ConfigFrom, with an empty Network when there is none.)
        let from = body.field("ConfigFrom")?;
        let derived = if existing {
            from.field("Network")?
                .as_str()?
                .is_some_and(|n| !n.is_empty())
        } else {
            from.value().is_some_and(|v| !v.is_null())
        };
        if derived {
            self.violation(
                Rule::NetworkDriver,
                "a network may not take its configuration from another network (ConfigFrom)",
            );
        }
        if !existing {
            // (An inspect shows the subnet dockerd chose from its pools, so these are judged
            // on the create only.)
            self.network_addressing(&body)?;
        }
        Ok(())
    }

    /// A network create's addressing and scope. A subnet, range or gateway of the client's
    /// choosing is routed on the host: one naming the host's resolver, a LAN prefix or its
    /// router takes the host's own traffic to those addresses (dockerd checks only other
    /// networks for overlap). Left to dockerd, the subnet comes from its address pools, which
    /// the operator keeps apart from the host's networks (`default-address-pools`; dockerd
    /// before 27 does not skip the host's routes when it picks). An IPAM driver other than the
    /// default is a plugin dockerd loads by a name it joins into a path; IPv6 turns on
    /// forwarding for the whole host (and, without ip6tables, routes every container port);
    /// other scopes reach beyond this host.
    fn network_addressing(&mut self, body: &Cursor<'_>) -> R {
        let ipam = body.field("IPAM")?;
        let driver = ipam.field("Driver")?.as_str()?.unwrap_or("");
        if !driver.is_empty() && driver != "default" {
            self.violation(
                Rule::NetworkDriver,
                format!(
                    "IPAM driver {driver:?} is not allowed: only dockerd's default (--ipam-driver)"
                ),
            );
        }
        if ipam.field("Options")?.entries()?.next().is_some() {
            self.violation(
                Rule::NetworkDriver,
                "IPAM options are not allowed (--ipam-opt)",
            );
        }
        for config in ipam.field("Config")?.items()? {
            for (field, flag) in [
                ("Subnet", "--subnet"),
                ("IPRange", "--ip-range"),
                ("Gateway", "--gateway"),
            ] {
                if let Some(v) = config.field(field)?.as_str()?.filter(|v| !v.is_empty()) {
                    self.violation(
                        Rule::NetworkDriver,
                        format!("a network's addresses are dockerd's to choose from its pools; {field} {v:?} is not allowed ({flag})"),
                    );
                }
            }
            if config
                .field("AuxiliaryAddresses")?
                .entries()?
                .next()
                .is_some()
            {
                self.violation(
                    Rule::NetworkDriver,
                    "a network's addresses are dockerd's to choose from its pools; AuxiliaryAddresses are not allowed (--aux-address)",
                );
            }
        }
        if body.field("EnableIPv6")?.as_bool()? == Some(true) {
            self.violation(
                Rule::NetworkDriver,
                "IPv6 networks are not allowed (--ipv6): dockerd turns on IPv6 forwarding for the whole host",
            );
        }
        let scope = body.field("Scope")?.as_str()?.unwrap_or("");
        if !scope.is_empty() && scope != "local" {
            self.violation(
                Rule::NetworkDriver,
                format!("network scope {scope:?} is not allowed: only local networks (--scope)"),
            );
        }
        for (field, flag) in [("Ingress", "--ingress"), ("ConfigOnly", "--config-only")] {
            if body.field(field)?.as_bool()? == Some(true) {
                self.violation(
                    Rule::NetworkDriver,
                    format!("{field} networks are not allowed ({flag})"),
                );
            }
        }
        Ok(())
    }

    /// A container's settings on one network (create's `EndpointsConfig` entries, connect's
    /// `EndpointConfig`). A MAC address of the client's choosing can copy another container's
    /// on the same bridge and take its frames; a fixed IP address can take first one that
    /// another tenant's container expects; endpoint driver options go to the network driver
    /// unchecked (port maps, and on newer dockerd interface sysctls past the sysctl rule).
    fn endpoint_settings(&mut self, endpoint: &Cursor<'_>, what: fmt::Arguments<'_>) -> R {
        // dockerd attaches to the network an endpoint's NetworkID names in preference to the
        // name it is listed under, which is the one the policy looked up and judged.
        for field in ["NetworkID", "EndpointID"] {
            if let Some(id) = endpoint.field(field)?.as_str()?.filter(|v| !v.is_empty()) {
                self.violation(
                    Rule::NetworkDriver,
                    format!("{what}: {field} {id:?} is not allowed: name the network itself (dockerd would attach by the ID, not the name judged)"),
                );
            }
        }
        self.mac_address(endpoint, what)?;
        let ipam = endpoint.field("IPAMConfig")?;
        for (field, flag) in [("IPv4Address", "--ip"), ("IPv6Address", "--ip6")] {
            if let Some(ip) = ipam.field(field)?.as_str()?.filter(|v| !v.is_empty()) {
                self.violation(
                    Rule::NetworkDriver,
                    format!("{what}: a fixed address ({ip:?}) is not allowed ({flag}); dockerd assigns one"),
                );
            }
        }
        // dockerd puts these on the container's interface as they are: any address, a
        // link-local one included, can take the gateway's or a neighbour's place.
        if let Some(ip) = ipam.field("LinkLocalIPs")?.items()?.next() {
            let ip = ip.as_str()?.unwrap_or("");
            self.violation(
                Rule::NetworkDriver,
                format!("{what}: link-local addresses ({ip:?}) are not allowed (--link-local-ip); dockerd assigns the container's addresses"),
            );
        }
        if let Some((key, _)) = endpoint.field("DriverOpts")?.entries()?.next() {
            self.violation(
                Rule::NetworkDriver,
                format!("{what}: endpoint driver options ({key:?}) are not allowed (--driver-opt)"),
            );
        }
        Ok(())
    }

    /// Block-IO device settings of a create or an update. dockerd stats each path on the host,
    /// as root, when the container starts (and, from API 1.55, on update), and says whether it
    /// exists: only allowed devices may be named. Not judged on an existing container: there
    /// they are a resource setting, which does not make it a way onto the host.
    fn blkio_devices(&mut self, hc: &Cursor<'_>) -> R {
        for field in [
            "BlkioWeightDevice",
            "BlkioDeviceReadBps",
            "BlkioDeviceWriteBps",
            "BlkioDeviceReadIOps",
            "BlkioDeviceWriteIOps",
        ] {
            for item in hc.field(field)?.items()? {
                let path = item.field("Path")?.as_str()?.unwrap_or("");
                if !self.b.devices_allowed.iter().any(|a| a == path) {
                    self.violation(
                        Rule::Devices,
                        format!("{field} names host device {path:?}, which is not allowed (--blkio-weight-device, --device-read-bps, …)"),
                    );
                }
            }
        }
        Ok(())
    }

    /// A stop timeout (`shown` as the client wrote it, `secs` as dockerd reads it) must be 0 to
    /// 300 s.
    fn stop_timeout(&mut self, shown: impl std::fmt::Display, secs: Option<i64>, flag: &str) {
        if !secs.is_some_and(|t| (0..=MAX_STOP_TIMEOUT_SECS).contains(&t)) {
            self.violation(
                Rule::Resources,
                format!("a stop timeout of {shown} s is not allowed: 0 to {MAX_STOP_TIMEOUT_SECS} s ({flag})"),
            );
        }
    }

    /// A create's stop timeout and health-check timings. A negative stop timeout makes dockerd
    /// wait for ever when it stops the container, and when the daemon itself shuts down (it
    /// waits for the longest timeout of all); each health check is an exec, whose setting-up in
    /// dockerd, containerd and runc is outside the container's CPU limits, as often as every
    /// millisecond. (Timings an image carries are not looked up: see the README's limits.)
    fn stop_and_health(&mut self, root: &Cursor<'_>) -> R {
        if let Some(t) = root.field("StopTimeout")?.as_i64()? {
            self.stop_timeout(t, Some(t), "--stop-timeout");
        }
        let health = root.field("Healthcheck")?;
        for (field, flag) in [
            ("Interval", "--health-interval"),
            ("StartInterval", "--health-start-interval"),
            ("Timeout", "--health-timeout"),
        ] {
            if let Some(ns) = health.field(field)?.as_i64()? {
                // 0 is dockerd's default (30 s); it refuses negative values itself.
                if ns > 0 && ns < MIN_HEALTH_INTERVAL_NS {
                    self.violation(
                        Rule::Resources,
                        format!("a health-check {field} under 1 s is not allowed ({flag})"),
                    );
                }
            }
        }
        Ok(())
    }

    /// A `MacAddress` field of the object at `at` (see [`Findings::endpoint_settings`]).
    fn mac_address(&mut self, at: &Cursor<'_>, what: fmt::Arguments<'_>) -> R {
        if let Some(mac) = at.field("MacAddress")?.as_str()?.filter(|m| !m.is_empty()) {
            self.violation(
                Rule::NetworkDriver,
                format!("{what}: a fixed MAC address ({mac:?}) is not allowed (--mac-address)"),
            );
        }
        Ok(())
    }

    fn images_create(&mut self, q: &Query) -> R {
        if q.get("fromSrc")?.is_some_and(|s| !s.is_empty()) {
            self.violation(
                Rule::ImageImport,
                "importing images from a URL or stream is not allowed (docker import)",
            );
        }
        if let Some(image) = q.get("fromImage")?.filter(|s| !s.is_empty()) {
            let tag = q.get("tag")?.unwrap_or("");
            // dockerd trims a trailing ':' and pulls every tag of a name without tag or digest
            // (docker pull -a), whatever the allow-list's tags say.
            if tag.is_empty() && !has_tag_or_digest(image.trim_end_matches(':')) {
                self.violation(
                    Rule::Images,
                    format!("pulling every tag of {image:?} is not allowed (docker pull -a); name a tag or digest"),
                );
            }
            let full = join_reference(image, tag, "fromImage")?;
            self.image_allowed(&full, "fromImage");
        }
        Ok(())
    }

    fn build(&mut self, q: &Query) -> R {
        if let Some(remote) = q.get("remote")?.filter(|s| !s.is_empty()) {
            if remote != "client-session" {
                self.violation(
                    Rule::Build,
                    format!("building from a remote context is not allowed (remote={remote})"),
                );
            }
        }
        // Build containers join the network named as they are: only the daemon's own, since a
        // named network is not judged for them as a create's is.
        if let Some(mode) = q.get("networkmode")? {
            if !is_daemon_network(mode) {
                self.violation(
                    Rule::Build,
                    format!("build network mode {mode:?} is not allowed: build on the default bridge or none (--network)"),
                );
            }
        }
        if q.get("cgroupparent")?.is_some_and(|s| !s.is_empty()) {
            self.violation(
                Rule::CgroupParent,
                "a custom cgroup parent is not allowed for builds",
            );
        }
        // dockerd gives the build containers these security options (r.Form["securityopt"]).
        if q.all("securityopt").any(|s| !s.is_empty()) {
            self.violation(
                Rule::SecurityOpt,
                "security options for build containers are not allowed (securityopt)",
            );
        }
        for tag in q.all("t").filter(|s| !s.is_empty()) {
            self.image_name_free(tag, "t");
        }
        if q.get("version")? == Some("2") {
            self.violation(
                Rule::Build,
                "BuildKit builds (version=2) take their settings from a session the policy cannot read; build with the classic builder (DOCKER_BUILDKIT=0) or use an unrestricted role",
            );
        }
        self.build_resources(q)
    }

    /// A shared-memory size, held to the memory maximum.
    fn shm_size(&mut self, shm: i64) {
        if shm > self.b.memory_max || shm < 0 {
            self.violation(
                Rule::Resources,
                format!(
                    "shared memory size {shm} exceeds the memory maximum {} (--shm-size)",
                    self.b.memory_max
                ),
            );
        }
    }

    /// The build containers run with the request's resource settings (dockerd's
    /// `newImageBuildOptions`), judged as a container's are. Numbers are read as
    /// `httputils.Int64ValueOrZero` reads them: anything `ParseInt` refuses is 0.
    fn build_resources(&mut self, q: &Query) -> R {
        let int = |k: &str| -> Result<i64, QueryError> {
            Ok(q.get(k)?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
        };
        let mut settings = Object::new();
        for (param, field) in [
            ("memory", "Memory"),
            ("memswap", "MemorySwap"),
            ("cpuperiod", "CpuPeriod"),
            ("cpuquota", "CpuQuota"),
        ] {
            settings.set_field(field, Json::from(int(param)?));
        }
        if let Some(list) = q.get("ulimits")?.filter(|s| !s.is_empty()) {
            let list = super::inspect::parse(list.as_bytes()).map_err(|e| {
                Unreadable::Ambiguous(format!("ulimits is not JSON dockgate can read: {e}"))
            })?;
            settings.set_field("Ulimits", list);
        }
        let settings = Json::Object(settings);
        self.resources(&settings.cursor(), false)?;
        self.shm_size(int("shmsize")?);
        Ok(())
    }

    /// A name the request would give an image (build -t, tag, commit) must not be one the
    /// allow-list lets containers run: an image built or renamed there would replace the vetted
    /// one, which comes only from a pull.
    fn image_name_free(&mut self, image: &str, field: &str) {
        if self.b.images.is_empty() {
            return;
        }
        let full = normalise_image(image);
        if self.b.images.iter().any(|p| glob(p, &full)) {
            self.violation(
                Rule::Images,
                format!("naming an image {full} is not allowed: it matches the allowed images [{}], which only a pull may provide ({field})", self.b.images.join(", ")),
            );
        }
    }

    fn image_allowed(&mut self, image: &str, field: &str) {
        if self.b.images.is_empty() {
            return;
        }
        // dockerd reads `sha256:<hex>` (any length) and a 64-hex string as an image ID and runs
        // that image whatever its name, so no name pattern can vouch for it.
        // A bare all-hex name is also tried as an ID prefix (`imageStore.Search`).
        if image.starts_with("sha256:") || image.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.violation(
                Rule::Images,
                format!("image {image:?} is an image ID, which no allowed image pattern can vouch for; name the image ({field})"),
            );
            return;
        }
        let full = normalise_image(image);
        if !self.b.images.iter().any(|p| glob(p, &full)) {
            self.violation(
                Rule::Images,
                format!(
                    "image {full} is not in the allowed images [{}] ({field})",
                    self.b.images.join(", ")
                ),
            );
        }
    }
}

// ---- helpers ------------------------------------------------------------------------------

/// Lexically normalised absolute host path; `..` is refused (it cannot be judged without the
/// host's symlinks).
fn clean_host_path(raw: &str) -> Result<String, String> {
    clean_path(raw, "host path")
}

/// Lexically normalised absolute path (`what` names it in errors); `..` is refused.
fn clean_path(raw: &str, what: &str) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!("{what} {raw:?} is not absolute"));
    }
    let mut out = String::with_capacity(raw.len());
    for seg in raw.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "{what} {raw:?} contains '..'; give the path without it"
                ))
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Go's `strings.ToUpper` (simple case mapping), then the `CAP_` prefix dropped.
pub fn normalise_cap(raw: &str) -> String {
    let upper = go_to_upper(raw);
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
}

/// Go's `strings.ToUpper` (simple case mapping: `ſ` → `S`, `ß` unchanged).
fn go_to_upper(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

fn str_or_list(c: &Cursor<'_>) -> Result<Vec<String>, Unreadable> {
    match c.value() {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::String(s)) => Ok(vec![s.to_string()]),
        Some(_) => {
            let mut out = Vec::new();
            for item in c.items()? {
                if let Some(s) = item.as_str()? {
                    out.push(s.to_string());
                }
            }
            Ok(out)
        }
    }
}

/// An image reference from a repository parameter and a `tag` parameter, as dockerd joins them.
/// With a `tag`, dockerd drops any tag or digest the repository carries and sets the tag
/// (`reference.WithTag(TrimNamed(..))`): the docker CLI never sends both, and judging `repo:x`
/// with `tag` would judge a name dockerd does not use. Refused. A `tag` holding ':' is read as
/// a digest: `/images/create` parses it as one first; tag and commit refuse it (a tag has no
/// ':'), so there the reading is only stricter.
fn join_reference(repo: &str, tag: &str, param: &str) -> Result<String, Unreadable> {
    if tag.is_empty() {
        return Ok(repo.to_string());
    }
    if has_tag_or_digest(repo) {
        return Err(Unreadable::Ambiguous(format!(
            "{param}={repo:?} carries its own tag or digest and tag={tag:?} is set too; dockerd would drop the first, so send the repository alone in {param}"
        )));
    }
    Ok(if tag.contains(':') {
        format!("{repo}@{tag}")
    } else {
        format!("{repo}:{tag}")
    })
}

/// Whether an image reference names a tag or a digest.
fn has_tag_or_digest(reference: &str) -> bool {
    reference.contains('@') || split_tag(reference).1.is_some()
}

/// A reference (without digest) split into its name and tag: the tag follows a ':' in the
/// last path segment (a ':' before a '/' is a registry's port).
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].find(':') {
        Some(c) => (
            &reference[..last_slash + c],
            Some(&reference[last_slash + c + 1..]),
        ),
        None => (reference, None),
    }
}

/// Whether `path` is `dir` or below it.
fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A link entry as dockerd's `opts.ParseLink` reads it: `name`, `name:alias`, or the
/// `/name:/parent/alias` form of an inspect.
pub fn parse_link(text: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [""] => None,
        [name] => Some((name.to_string(), name.to_string())),
        [name, alias] => match name.strip_prefix('/') {
            Some(name) => {
                let alias = alias.rsplit('/').next().unwrap_or(alias);
                Some((name.to_string(), alias.to_string()))
            }
            None => Some((name.to_string(), alias.to_string())),
        },
        _ => None,
    }
}

/// dockerd's container-name pattern, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn is_container_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether a container's network mode (or a network it is listed under) names a network dockerd
/// finds by name when the container is created or started, to be looked up and judged: not the
/// daemon's own, not `host` (judged by its own rule) and not another container's namespace.
pub fn joins_by_name(name: &str) -> bool {
    !is_daemon_network(name) && name != "host" && !name.starts_with("container:")
}

/// The daemon's own networks a container may always join (`host` is judged as a namespace).
pub fn is_daemon_network(name: &str) -> bool {
    matches!(name, "" | "default" | "bridge" | "none")
}

fn is_shared_propagation(p: &str) -> bool {
    let p = p.trim();
    super::inspect::go_fold_eq(p, "shared") || super::inspect::go_fold_eq(p, "rshared")
}

fn is_empty_json(b: &Json) -> bool {
    match b {
        Json::Null => true,
        Json::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Whether runc takes `name` as a uid by itself: decimal, within its range (0 to 2^31 - 1).
/// Anything else is looked up in `/etc/passwd` (a name, or a number too large for Go's Atoi),
/// or matched there by a uid that Docker then narrows to 32 bits (4294967296 is 0).
fn is_plain_uid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 10
        && name.bytes().all(|b| b.is_ascii_digit())
        && name.parse::<u64>().is_ok_and(|n| n < (1 << 31))
}

/// Whether a container's `HostConfig.SecurityOpt` ends with no-new-privileges on (the last
/// entry naming it wins, as in dockerd).
fn no_new_privileges(hc: &Cursor<'_>) -> Result<bool, Unreadable> {
    let mut on = false;
    for item in hc.field("SecurityOpt")?.items()? {
        let Some(opt) = item.as_str()? else { continue };
        if opt == "no-new-privileges" {
            on = true;
            continue;
        }
        let split = opt.split_once('=').or_else(|| opt.split_once(':'));
        if let Some(("no-new-privileges", value)) = split {
            on = go_parse_bool(value) == Some(true);
        }
    }
    Ok(on)
}

/// Whether a mount of a container (from its inspect: `Mounts`, `HostConfig.Tmpfs`) covers
/// `/etc/passwd` or `/etc/group`, which user names are looked up in.
fn passwd_mounted(root: &Cursor<'_>) -> Result<bool, Unreadable> {
    let covers = |dest: &str| {
        let dest = dest.trim_end_matches('/');
        matches!(dest, "" | "/etc" | "/etc/passwd" | "/etc/group")
    };
    for mount in root.field("Mounts")?.items()? {
        if mount.field("Destination")?.as_str()?.is_some_and(covers) {
            return Ok(true);
        }
    }
    for (dest, _) in root.field_path(&["HostConfig", "Tmpfs"])?.entries()? {
        if covers(dest) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `root`, `0`, `00`, `+0`, `-0`, with or without a `:group`; and an empty user part (`:`,
/// `:0`, `:1000`), which runc's `GetExecUser` resolves to uid 0 (its default), not to the
/// container's user. Only the whole string being empty inherits the container's user.
fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or("");
    if name == "root" || (name.is_empty() && !user.is_empty()) {
        return true;
    }
    let digits = name.strip_prefix(['+', '-']).unwrap_or(name);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b == b'0')
}

fn parse_port_range(s: &str) -> Option<(u32, u32)> {
    let num = |p: &str| -> Option<u32> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5 {
            return None;
        }
        p.parse().ok().filter(|n| *n <= 65535)
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then_some((a, b))
        }
        None => num(s).map(|n| (n, n)),
    }
}

/// The registry a search term names, split as dockerd splits one (`splitReposSearchTerm`): a
/// first part holding a '.' or ':', or `localhost`, before a '/'. `None`: Docker Hub.
pub fn registry_of(name: &str) -> Option<&str> {
    name.split_once('/')
        .map(|(first, _)| first)
        .filter(|first| first.contains('.') || first.contains(':') || *first == "localhost")
}

/// `busybox` → `docker.io/library/busybox:latest`; `repo/x:tag`, digests kept.
pub fn normalise_image(image: &str) -> String {
    let (name, suffix) = match image.find('@') {
        // With a digest, dockerd drops the tag (`name:tag@digest` is `name@digest`): a pattern
        // on tags must not pass any image of the repository by its digest.
        Some(at) => (split_tag(&image[..at]).0, &image[at..]),
        None => {
            let name = split_tag(image).0;
            (name, &image[name.len()..])
        }
    };
    // As dockerd's reference parser splits a name (`splitDockerDomain`): a first part holding
    // a '.' or ':', `localhost`, or an upper-case letter, before a '/', is a registry;
    // `index.docker.io` is Docker Hub's old name; a one-part Docker Hub name is `library/`'s.
    let upper_case_first = || {
        name.split_once('/')
            .map(|(first, _)| first)
            // (Newer parsers; dockerd 20.10 refuses such a name outright.)
            // (Go's `strings.ToLower(first) != first`, without building the lower-case copy.)
            .filter(|first| first.chars().any(|c| c.to_lowercase().ne([c])))
    };
    let (domain, rest) = match registry_of(name).or_else(upper_case_first) {
        Some(domain) => (domain, &name[domain.len() + 1..]),
        None => ("docker.io", name),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let mut out = String::with_capacity(image.len() + 24);
    out.push_str(domain);
    out.push('/');
    if domain == "docker.io" && !rest.contains('/') {
        out.push_str("library/");
    }
    out.push_str(rest);
    if suffix.is_empty() {
        out.push_str(":latest");
    } else {
        let _ = write!(out, "{suffix}");
    }
    out
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

impl From<i64> for Json {
    fn from(n: i64) -> Json {
        Json::Number(serde_json::Number::from(n))
    }
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
