//! The policy engine: given the caller's role and the classified request (route, query, and the
//! request body when a rule must read it), decide `Allow(permit)` or `Deny(denial)`.
//!
//! It is pure: no I/O, no clock, no logging. Default deny: a route no grant of the role names is
//! refused, and so is any route dockgate does not know.

pub mod baseline;
pub mod inspect;
pub mod query;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::config::{parse_networks, Problems};
use crate::net::Networks;
use crate::route::{self, Endpoint, Group, Route};
use baseline::{Baseline, Mode, RawBaseline, Unreadable};
use inspect::Json;
use query::Query;

/// The compiled policy: every role by name.
#[derive(Debug)]
pub struct Policy {
    roles: HashMap<String, Role>,
    /// Global rollout mode: every denial is turned into an allow recorded as "would deny".
    audit_only: bool,
}

/// A role: where its holders may connect from and what they may do.
#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub networks: Networks,
    grants: Vec<Grant>,
    /// Body and query rules; `None` for roles that do not extend `baseline` (e.g. admin).
    baseline: Option<Arc<Baseline>>,
    /// See [`Role::may_come_from_a_template`]; worked out once, when the config is compiled.
    templatable: bool,
}

/// One set of permissions: route groups and individual routes, optionally limited to reads.
#[derive(Debug, Clone)]
struct Grant {
    /// Where the grant came from, for the audit trail (`builtin:admin`, `roles.dev.allow`).
    source: String,
    everything: bool,
    groups: Vec<Group>,
    routes: Vec<&'static Route>,
    read_only: bool,
}

/// The outcome of one decision.
#[derive(Debug)]
pub enum Decision {
    Allow(Permit),
    Deny(Denial),
}

/// Why a request was allowed, and what the policy noted or changed on the way.
#[derive(Debug, Default)]
pub struct Permit {
    /// The grant that allowed the route.
    pub grant: String,
    /// Rules in warn mode (or global audit-only) that would have denied.
    pub warnings: Vec<String>,
    /// Human descriptions of changes made to the request (injected defaults).
    pub mutations: Vec<String>,
    /// The request body to forward instead of the one received, when the policy changed it.
    pub rewritten: Option<Json>,
}

/// Why a request was refused: the rule that refused it and a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: String,
    pub reason: String,
    pub role: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (rule {}, role {})",
            self.reason, self.rule, self.role
        )
    }
}

impl std::error::Error for Denial {}

/// What the policy needs to see of one request. `body` is present only when
/// [`Policy::reads_body`] said so (and `None` inside for an empty body).
#[derive(Debug)]
pub struct RequestView<'a> {
    pub endpoint: &'a Endpoint,
    pub query: &'a Query,
    /// Owned, so injected defaults rewrite it in place instead of copying it.
    pub body: Option<Json>,
}

/// Roles as written in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// Built-in roles whose permissions this role includes: `admin`, `read-only`, `baseline`.
    #[serde(default)]
    extends: Vec<String>,
    /// Route groups (`containers-read`, …) or single routes (`POST /containers/{id}/start`).
    #[serde(default)]
    allow: Vec<String>,
    /// Source networks this role may connect from (empty: any the listener accepts).
    #[serde(default)]
    networks: Vec<String>,
    /// Settings of the baseline rules (only for roles extending `baseline`).
    baseline: Option<RawBaseline>,
}

/// Policy-wide settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Allow everything but record what would have been denied (for rollout).
    #[serde(default)]
    audit_only: bool,
}

/// Built-in role names.
pub const BUILTINS: &[&str] = &["admin", "read-only", "baseline"];

impl Policy {
    /// Compiles the roles; problems are reported with their field path. `socket` is the
    /// upstream Docker socket, which the baseline always treats as a sensitive host path.
    pub fn compile(
        raw: BTreeMap<String, RawRole>,
        settings: RawPolicy,
        socket: &Path,
        problems: &mut Problems,
    ) -> Policy {
        let mut roles = HashMap::new();
        for (name, role) in raw {
            let field = format!("roles.{name}");
            let networks = parse_networks(&format!("{field}.networks"), &role.networks, problems);
            let mut grants = Vec::new();
            for (i, base) in role.extends.iter().enumerate() {
                match builtin_grant(base) {
                    Some(g) => grants.push(g),
                    None => problems.push(
                        format!("{field}.extends[{i}]"),
                        format_args!(
                            "unknown built-in role {base:?} (expected one of {BUILTINS:?})"
                        ),
                    ),
                }
            }
            if !role.allow.is_empty() {
                let mut grant = Grant::empty(format!("{field}.allow"));
                for (i, entry) in role.allow.iter().enumerate() {
                    if let Ok(group) = entry.parse::<Group>() {
                        grant.groups.push(group);
                    } else if entry == "all" {
                        grant.everything = true;
                    } else {
                        match route::parse_route_spec(entry) {
                            Ok(r) => grant.routes.push(r),
                            Err(e) => problems.push(
                                format!("{field}.allow[{i}]"),
                                format_args!(
                                    "{entry:?} is neither a route group nor a known route: {e}"
                                ),
                            ),
                        }
                    }
                }
                grants.push(grant);
            }
            if grants.is_empty() {
                problems.push(
                    field.clone(),
                    "the role allows nothing: give it `extends:` or `allow:`",
                );
            }
            let extends_baseline = role.extends.iter().any(|e| e == "baseline");
            let baseline = match (extends_baseline, role.baseline) {
                (true, raw) => Some(Arc::new(Baseline::compile(
                    raw.unwrap_or_default(),
                    &format!("{field}.baseline"),
                    socket,
                    problems,
                ))),
                (false, Some(_)) => {
                    problems.push(
                        format!("{field}.baseline"),
                        "baseline settings need `extends: [baseline]`",
                    );
                    None
                }
                (false, None) => None,
            };
            // A template never produces a built-in name (even redeclared), nor a role that may
            // do more than read without the baseline.
            let templatable = !BUILTINS.contains(&name.as_str())
                && (baseline.is_some() || within_read_only(&grants));
            roles.insert(
                name.clone(),
                Role {
                    name,
                    networks,
                    grants,
                    baseline,
                    templatable,
                },
            );
        }
        for builtin in BUILTINS {
            if roles.contains_key(*builtin) {
                continue;
            }
            let baseline = (*builtin == "baseline").then(|| {
                Arc::new(Baseline::compile(
                    RawBaseline::default(),
                    "roles.baseline",
                    socket,
                    problems,
                ))
            });
            roles.insert(
                builtin.to_string(),
                Role {
                    name: builtin.to_string(),
                    networks: Networks::default(),
                    grants: builtin_grant(builtin).into_iter().collect(),
                    baseline,
                    // Templates never produce built-in names.
                    templatable: false,
                },
            );
        }
        Policy {
            roles,
            audit_only: settings.audit_only,
        }
    }

    pub fn has_role(&self, name: &str) -> bool {
        self.roles.contains_key(name)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Every role, for the listener's pre-handshake network check.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// Whether deciding `endpoint` for `role` needs the request body (buffered, up to the
    /// limit). Only routes the role may call at all are read.
    pub fn reads_body(&self, role: &Role, endpoint: &Endpoint) -> bool {
        let route = endpoint.route;
        role.baseline.is_some()
            && Baseline::reads_body(route.method, route.template)
            && role.grants.iter().any(|g| g.allows(route))
    }

    /// Whether `role` has rules that read query strings and bodies (so requests dockerd could
    /// read differently from dockgate, such as form-encoded bodies, must be refused).
    pub fn inspects(&self, role: &Role) -> bool {
        role.baseline.is_some()
    }

    /// Whether a request on `route` by `role` has its query read: for roles with body rules,
    /// and for the routes [`host_reach`] judges when the role is not unrestricted.
    pub fn reads_query(&self, role: &Role, route: &'static Route) -> bool {
        self.inspects(role) || (HostReach::of(route).is_some() && !role.unrestricted_for(route))
    }

    /// Every rule that has something to say about a request, for `dockgate policy explain`:
    /// the grant (or its absence) and each baseline violation with its mode.
    pub fn trace(&self, role: &Role, req: &RequestView<'_>) -> Vec<String> {
        let mut lines = Vec::new();
        match role.decide_route(req.endpoint) {
            Ok(p) => lines.push(format!(
                "route {}: allowed by {}",
                req.endpoint.route, p.grant
            )),
            Err(d) => {
                lines.push(format!("route {}: {d}", req.endpoint.route));
                return lines;
            }
        }
        if !role.unrestricted_for(req.endpoint.route) {
            match host_reach(req.endpoint.route, req.query) {
                Ok(Some(reason)) => lines.push(format!("rule {HOST_REACH}: {reason}")),
                Ok(None) => {}
                Err(e) => lines.push(format!("request cannot be judged: {e}")),
            }
        }
        let Some(baseline) = &role.baseline else {
            lines.push("no body rules for this role".into());
            return lines;
        };
        let route = req.endpoint.route;
        match baseline.check(route.method, route.template, req.query, req.body.clone()) {
            Ok(outcome) if outcome.violations.is_empty() => {
                lines.push("baseline: no violations".into())
            }
            Ok(outcome) => {
                for v in outcome.violations {
                    lines.push(format!(
                        "baseline rule {} ({:?}): {}",
                        v.rule.id(),
                        v.mode,
                        v.reason
                    ));
                }
            }
            Err(e) => lines.push(format!("request cannot be judged: {e}")),
        }
        lines
    }

    /// Decides one request for `role`. `Err` means the request cannot be judged (400).
    pub fn decide(&self, role: &Role, req: RequestView<'_>) -> Result<Decision, Unreadable> {
        let decision = role.decide(req)?;
        Ok(match decision {
            Decision::Deny(denial) if self.audit_only => Decision::Allow(Permit {
                grant: "policy.audit_only".into(),
                warnings: vec![format!("would deny: {denial}")],
                ..Permit::default()
            }),
            d => d,
        })
    }
}

/// An existing object a request acts on, which the policy must see before it is let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A container, by the name or ID the request gives.
    Container(&'a str),
    /// An exec instance (its container is the one to judge).
    Exec(&'a str),
}

/// What a request on `endpoint` acts on, when that object's own settings matter: every
/// container route but the reads that cannot reach into it (inspect, logs, top, stats, changes,
/// wait), and starting or resizing an exec.
pub fn target_of(endpoint: &Endpoint) -> Option<Target<'_>> {
    let route = endpoint.route;
    let id = || endpoint.params.get("id");
    if route.template.starts_with("/containers/{id}") {
        let reads = matches!(
            (route.method, route.template),
            ("GET", "/containers/{id}/json")
                | ("GET", "/containers/{id}/logs")
                | ("GET", "/containers/{id}/top")
                | ("GET", "/containers/{id}/stats")
                | ("GET", "/containers/{id}/changes")
                | ("POST", "/containers/{id}/wait")
        );
        return if reads {
            None
        } else {
            id().map(Target::Container)
        };
    }
    if matches!(
        (route.method, route.template),
        ("POST", "/exec/{id}/start") | ("POST", "/exec/{id}/resize")
    ) {
        return id().map(Target::Exec);
    }
    None
}

impl Policy {
    /// Whether denials are only recorded (`policy.audit_only`), the request going on.
    pub fn audit_only(&self) -> bool {
        self.audit_only
    }

    /// Whether `role` may use an existing object, judged from dockerd's inspect of it as its
    /// create would have been (see [`Existing`]). Roles without a baseline may use any. Under
    /// `audit_only`, a denial comes back as a warning instead.
    pub fn decide_existing(
        &self,
        role: &Role,
        object: Existing<'_>,
        inspect: &Json,
    ) -> Result<Result<Vec<String>, Denial>, Unreadable> {
        let Some(baseline) = &role.baseline else {
            return Ok(Ok(Vec::new()));
        };
        let outcome = match object {
            Existing::Container(_) => baseline.check_target(inspect),
            Existing::VolumeUser { .. } => baseline.check_sharing(inspect, &[]),
            Existing::Joiner { group, .. } => baseline.check_sharing(inspect, group),
            Existing::Exec(_) => baseline.check_exec(inspect),
            Existing::ExecUser { user, .. } => baseline.check_exec_user(inspect, user),
            Existing::Volume(_) => baseline.check_volume(inspect),
            Existing::Network(_) => baseline.check_network(inspect),
        }?;
        let mut warnings = Vec::new();
        for v in outcome.violations {
            let reason = format!("{object} {}: {}", object.consequence(), v.reason);
            match v.mode {
                Mode::Enforce if !self.audit_only => {
                    return Ok(Err(Denial {
                        rule: v.rule.id().to_string(),
                        reason,
                        role: role.name.clone(),
                    }))
                }
                Mode::Enforce | Mode::Warn => {
                    warnings.push(format!("would deny (rule {}): {reason}", v.rule.id()))
                }
                Mode::Off => {}
            }
        }
        Ok(Ok(warnings))
    }
}

/// An existing object a request uses, named as the request names it: a container it acts on
/// ([`baseline::Baseline::check_target`]), a container sharing namespaces with one it works in
/// (`check_sharing`), an exec it starts (`check_exec`: the role could not have created a
/// privileged or root one), a named volume it mounts (`check_volume`) or a network it attaches
/// to (`check_network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing<'a> {
    Container(&'a str),
    /// A container (`name`) that shares namespaces with the container `of` a request acts on,
    /// within `group` (the containers sharing them: see [`crate::joins`]).
    Joiner {
        name: &'a str,
        of: &'a str,
        group: &'a [crate::joins::Listed],
    },
    Exec(&'a str),
    /// A container an exec runs in, as `user` (`""`: none given, the container's own).
    ExecUser {
        container: &'a str,
        user: &'a str,
    },
    Volume(&'a str),
    /// A container (`name`) that mounts the named `volume` a request mounts too: what it reads
    /// or runs from there, a container of this role could plant.
    VolumeUser {
        name: &'a str,
        volume: &'a str,
    },
    Network(&'a str),
}

impl Existing<'_> {
    /// Why its settings matter, after its name in a denial.
    fn consequence(self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            Existing::Container(_) => {
                "was created with settings this role may not use, so it may not act on it"
            }
            Existing::Joiner { of, .. } => {
                return std::borrow::Cow::Owned(format!(
                    "was created with settings this role may not use, so it may not work in container {of:?}, which shares namespaces with it"
                ))
            }
            Existing::Exec(_) => {
                "was created with settings this role may not use, so it may not start it"
            }
            Existing::ExecUser { .. } => "could run this exec as root, so this role may not run it",
            Existing::Volume(_) => {
                "was created with options this role may not use, so this role may not use it"
            }
            Existing::VolumeUser { volume, .. } => {
                return std::borrow::Cow::Owned(format!(
                    "was created with settings this role may not use and mounts volume {volume:?}, so this role may not use that volume (what it writes there, that container could read or run)"
                ))
            }
            Existing::Network(_) => {
                "was created with settings this role may not use, so it may not attach containers to it or remove it"
            }
        })
    }
}

impl fmt::Display for Existing<'_> {
    /// `container "web"`, `volume "data"`, …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Existing::Container(n) => write!(f, "container {n:?}"),
            Existing::Joiner { name, .. } | Existing::VolumeUser { name, .. } => {
                write!(f, "container {name:?}")
            }
            Existing::Exec(n) => write!(f, "exec {n:?}"),
            Existing::ExecUser { container, .. } => write!(f, "container {container:?}"),
            Existing::Volume(n) => write!(f, "volume {n:?}"),
            Existing::Network(n) => write!(f, "network {n:?}"),
        }
    }
}

impl Role {
    /// Whether a role template may produce this role: it extends `baseline`, or it allows
    /// nothing the built-in `read-only` does not. Any other route without the body rules
    /// (a write, a websocket attach, reading an admin container's files) is as good as root.
    pub fn may_come_from_a_template(&self) -> bool {
        self.templatable
    }

    /// Whether requests of this role are judged on their content (it extends `baseline`).
    pub fn has_baseline(&self) -> bool {
        self.baseline.is_some()
    }

    fn decide(&self, req: RequestView<'_>) -> Result<Decision, Unreadable> {
        let mut permit = match self.decide_route(req.endpoint) {
            Ok(p) => p,
            Err(d) => return Ok(Decision::Deny(d)),
        };
        if !self.unrestricted_for(req.endpoint.route) {
            if let Some(reason) = host_reach(req.endpoint.route, req.query)? {
                return Ok(Decision::Deny(Denial {
                    rule: HOST_REACH.to_string(),
                    reason,
                    role: self.name.clone(),
                }));
            }
        }
        let Some(baseline) = &self.baseline else {
            return Ok(Decision::Allow(permit));
        };
        let route = req.endpoint.route;
        let outcome = baseline.check(route.method, route.template, req.query, req.body)?;
        let mut denial = None;
        for v in outcome.violations {
            match v.mode {
                Mode::Enforce if denial.is_none() => {
                    denial = Some(Denial {
                        rule: v.rule.id().to_string(),
                        reason: v.reason,
                        role: self.name.clone(),
                    })
                }
                Mode::Enforce => permit.warnings.push(format!(
                    "also denied by rule {}: {}",
                    v.rule.id(),
                    v.reason
                )),
                Mode::Warn => permit.warnings.push(format!(
                    "would deny (rule {}, warn): {}",
                    v.rule.id(),
                    v.reason
                )),
                Mode::Off => {}
            }
        }
        if let Some(d) = denial {
            return Ok(Decision::Deny(d));
        }
        permit.mutations = outcome.mutations;
        permit.rewritten = outcome.rewritten;
        Ok(Decision::Allow(permit))
    }

    /// Whether this role is unrestricted on `route`: it has no body rules and an `everything`
    /// grant (`admin`'s) allows it, whatever order its grants come in.
    fn unrestricted_for(&self, route: &'static Route) -> bool {
        self.baseline.is_none() && self.grants.iter().any(|g| g.everything && g.allows(route))
    }

    fn decide_route(&self, endpoint: &Endpoint) -> Result<Permit, Denial> {
        let route = endpoint.route;
        match self.grants.iter().find(|g| g.allows(route)) {
            Some(grant) => Ok(Permit {
                grant: grant.source.clone(),
                ..Permit::default()
            }),
            None => Err(Denial {
                rule: format!("route:{}", route.group.as_str()),
                reason: format!(
                    "{} {} (group {}) is not allowed for this role",
                    route.method,
                    route.template,
                    route.group.as_str()
                ),
                role: self.name.clone(),
            }),
        }
    }
}

impl Grant {
    fn empty(source: String) -> Grant {
        Grant {
            source,
            everything: false,
            groups: Vec::new(),
            routes: Vec::new(),
            read_only: false,
        }
    }

    fn allows(&self, route: &'static Route) -> bool {
        if self.read_only && !matches!(route.method, "GET" | "HEAD") {
            return false;
        }
        self.everything
            || self.groups.contains(&route.group)
            || self.routes.iter().any(|r| std::ptr::eq(*r, route))
    }
}

/// The rule id of [`host_reach`]'s refusals.
pub const HOST_REACH: &str = "host-reach";

/// The query parameter through which a route reaches past the container or the daemon
/// (see [`host_reach`]): such a route's query is parsed for every role that is not
/// unrestricted, not only for those with body rules.
#[derive(Clone, Copy)]
enum HostReach {
    /// `top`'s `ps_args`.
    PsArgs,
    /// `images/search`'s `term`.
    SearchTerm,
    /// The checkpoint routes' `dir`.
    CheckpointDir,
    /// An archive upload's `copyUIDGID`.
    CopyUidGid,
}

impl HostReach {
    fn of(route: &Route) -> Option<HostReach> {
        match (route.method, route.template) {
            ("GET", "/containers/{id}/top") => Some(HostReach::PsArgs),
            ("GET", "/images/search") => Some(HostReach::SearchTerm),
            ("GET", "/containers/{id}/checkpoints")
            | ("DELETE", "/containers/{id}/checkpoints/{checkpoint}") => {
                Some(HostReach::CheckpointDir)
            }
            ("PUT", "/containers/{id}/archive") => Some(HostReach::CopyUidGid),
            _ => None,
        }
    }
}

/// Query parameters with which a read reaches past the container or the daemon, refused for
/// every role without an unrestricted grant:
/// - `top`'s `ps_args` are passed to the host's `ps`, which dockerd retries without its own
///   container filter when they fail: with `-p` and an `-o` layout, its parse errors echo any
///   host process's command line and environment. Only dockerd's default and the usual
///   spellings are accepted.
/// - `images/search`'s `term` may name a registry (`host[:port]/name`), which dockerd then
///   queries from the host's network (loopback and internal addresses included). Only
///   Docker Hub is accepted.
/// - The checkpoint routes' `dir` (dockerd with experimental features) is any host directory,
///   which dockerd lists (or deletes in): only dockerd's own is accepted.
/// - An archive upload's `copyUIDGID` makes dockerd look the container's user up by name in
///   the host's accounts (passwd, then `getent`): refused.
pub fn host_reach(route: &Route, query: &query::Query) -> Result<Option<String>, Unreadable> {
    let Some(reach) = HostReach::of(route) else {
        return Ok(None);
    };
    Ok(match reach {
        HostReach::PsArgs => {
            const PS_ARGS: [&str; 4] = ["", "-ef", "aux", "-aux"];
            query.get("ps_args")?.filter(|a| !PS_ARGS.contains(a)).map(|a| {
                format!("top options {a:?} are not allowed: dockerd hands them to the host's ps; use the default or one of -ef, aux")
            })
        }
        HostReach::SearchTerm => {
            let term = query.get("term")?.unwrap_or("");
            baseline::registry_of(term)
                .filter(|r| !matches!(*r, "docker.io" | "index.docker.io"))
                .map(|r| {
                    format!("searching registry {r:?} is not allowed: dockerd would query it from the host's network; search Docker Hub only")
                })
        }
        HostReach::CheckpointDir => query.get("dir")?.filter(|d| !d.is_empty()).map(|d| {
            format!("checkpoint directory {d:?} is not allowed: dockerd would list (or delete in) that host directory; use dockerd's own")
        }),
        HostReach::CopyUidGid => query.bool("copyUIDGID")?.then(|| {
            "copying with the container user's ids is not allowed (docker cp -a): dockerd looks the user's name up in the host's accounts (its passwd file and getent), which tells which exist; copy without -a".to_string()
        }),
    })
}

/// Whether `grants` allow no route the built-in `read-only` role does not.
fn within_read_only(grants: &[Grant]) -> bool {
    let read_only = builtin_grant("read-only");
    route::routes().iter().all(|r| {
        !grants.iter().any(|g| g.allows(r)) || read_only.as_ref().is_some_and(|g| g.allows(r))
    })
}

fn builtin_grant(name: &str) -> Option<Grant> {
    let mut g = Grant::empty(format!("builtin:{name}"));
    match name {
        "admin" => g.everything = true,
        "read-only" => {
            g.read_only = true;
            g.groups = vec![
                Group::SystemRead,
                Group::ContainersRead,
                Group::ImagesRead,
                Group::Events,
                Group::Volumes,
                Group::Networks,
            ];
        }
        "baseline" => {
            g.groups = vec![
                Group::SystemRead,
                Group::Events,
                Group::ContainersRead,
                Group::ContainersWrite,
                Group::Exec,
                Group::Attach,
                Group::Logs,
                Group::Archive,
                Group::ImagesRead,
                Group::ImagesPull,
                Group::Volumes,
                Group::Networks,
            ];
        }
        _ => return None,
    }
    Some(g)
}

#[cfg(test)]
mod host_reach_tests {
    use super::*;

    fn policy_with(extends: &str) -> Policy {
        let mut problems = crate::config::Problems::default();
        let raw = serde_norway::from_str(&format!("r:\n  extends: {extends}\n")).unwrap();
        let policy = Policy::compile(
            raw,
            Default::default(),
            Path::new("/var/run/docker.sock"),
            &mut problems,
        );
        assert!(problems.0.is_empty(), "{:?}", problems.0.len());
        policy
    }

    fn reach(path: &str, query: &str) -> Result<Option<String>, String> {
        let endpoint = route::classify("GET", path).unwrap();
        let q = query::Query::parse(Some(query)).map_err(|e| e.to_string())?;
        host_reach(endpoint.route, &q).map_err(|e| e.to_string())
    }

    #[test]
    fn top_takes_only_the_default_and_the_usual_ps_options() {
        for ok in [
            "",
            "ps_args=",
            "ps_args=-ef",
            "ps_args=aux",
            "ps_args=-aux",
            "ps%5Fargs=%2Def",
        ] {
            assert_eq!(reach("/containers/c/top", ok), Ok(None), "{ok}");
        }
        for refused in ["ps_args=e+-o+args+-p+1", "ps_args=-ef+", "ps_args=-o%20pid"] {
            assert!(
                reach("/v1.41/containers/c/top", refused).unwrap().is_some(),
                "{refused}"
            );
        }
        assert!(reach("/containers/c/top", "ps_args=-ef&ps_args=-o+args").is_err());
    }

    #[test]
    fn checkpoint_routes_take_only_dockerds_own_directory() {
        for path in ["/containers/c/checkpoints", "/containers/c/checkpoints/k"] {
            let method = if path.ends_with("/k") {
                "DELETE"
            } else {
                "GET"
            };
            let endpoint = route::classify(method, path).unwrap();
            for (query, refused) in [("", false), ("dir=", false), ("dir=%2Froot", true)] {
                let q = query::Query::parse(Some(query)).unwrap();
                let verdict = host_reach(endpoint.route, &q).unwrap();
                assert_eq!(verdict.is_some(), refused, "{method} {path}?{query}");
            }
        }
    }

    #[test]
    fn archive_uploads_take_no_copy_uid_gid() {
        let endpoint = route::classify("PUT", "/v1.41/containers/c/archive").unwrap();
        for (query, refused) in [
            ("path=%2Ftmp", false),
            ("path=%2Ftmp&copyUIDGID=0", false),
            ("path=%2Ftmp&copyUIDGID=false", false),
            ("path=%2Ftmp&copyUIDGID=1", true),
            ("path=%2Ftmp&copyUIDGID=true", true),
            ("path=%2Ftmp&copyUIDGID=%20yes", true),
        ] {
            let q = query::Query::parse(Some(query)).unwrap();
            let verdict = host_reach(endpoint.route, &q).unwrap();
            assert_eq!(verdict.is_some(), refused, "{query}");
        }
    }

    #[test]
    fn search_takes_docker_hub_terms_only() {
        for ok in [
            "term=busybox",
            "term=library%2Fbusybox",
            "term=docker.io%2Fx",
            "term=index.docker.io%2Fx",
            "term=LOCALHOST%2Fx",
        ] {
            assert_eq!(reach("/images/search", ok), Ok(None), "{ok}");
        }
        for refused in [
            "term=localhost%2Fx",
            "term=127.0.0.1:2375%2Fx",
            "term=%5B::1%5D:5000%2Fx",
            "term=registry.internal%2Fx",
            "term=DOCKER.IO%2Fx",
        ] {
            assert!(
                reach("/images/search", refused).unwrap().is_some(),
                "{refused}"
            );
        }
    }

    #[test]
    fn only_a_role_without_body_rules_and_with_an_everything_grant_is_unrestricted() {
        let top = route::classify("GET", "/containers/c/top").unwrap().route;
        for (extends, unrestricted) in [
            ("[admin]", true),
            ("[read-only, admin]", true),
            ("[admin, baseline]", false),
            ("[read-only]", false),
            ("[baseline]", false),
        ] {
            let policy = policy_with(extends);
            let role = policy.role("r").unwrap();
            assert_eq!(role.unrestricted_for(top), unrestricted, "{extends}");
            assert_eq!(policy.reads_query(role, top), !unrestricted, "{extends}");
        }
    }
}
