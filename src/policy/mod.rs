//! The policy engine: given the caller's role and the classified request (route, query, and the
//! request body when a rule must read it), decide `Allow(permit)` or `Deny(denial)`.
//!
//! It is pure: no I/O, no clock, no logging. Default deny: a route no grant of the role names is
//! refused, and so is any route dockgate does not know.

pub mod inspect;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;

use crate::config::{parse_networks, Problems};
use crate::net::Networks;
use crate::route::{self, Endpoint, Group, Route};

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

/// What the policy needs to see of one request.
#[derive(Debug)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub endpoint: &'a Endpoint,
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
    /// Compiles the roles; problems are reported with their field path.
    pub fn compile(
        raw: BTreeMap<String, RawRole>,
        settings: RawPolicy,
        problems: &mut Problems,
    ) -> Option<Policy> {
        let before = problems.0.len();
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
            roles.insert(
                name.clone(),
                Role {
                    name,
                    networks,
                    grants,
                },
            );
        }
        for builtin in BUILTINS {
            roles.entry(builtin.to_string()).or_insert_with(|| Role {
                name: builtin.to_string(),
                networks: Networks::default(),
                grants: builtin_grant(builtin).into_iter().collect(),
            });
        }
        (problems.0.len() == before).then_some(Policy {
            roles,
            audit_only: settings.audit_only,
        })
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

    /// Decides one request for `role`.
    pub fn decide(&self, role: &Role, req: &RequestView<'_>) -> Decision {
        let decision = role.decide_route(req);
        match decision {
            Decision::Deny(denial) if self.audit_only => Decision::Allow(Permit {
                grant: "policy.audit_only".into(),
                warnings: vec![format!("would deny: {denial}")],
                mutations: Vec::new(),
            }),
            d => d,
        }
    }
}

impl Role {
    fn decide_route(&self, req: &RequestView<'_>) -> Decision {
        let route = req.endpoint.route;
        match self.grants.iter().find(|g| g.allows(route)) {
            Some(grant) => Decision::Allow(Permit {
                grant: grant.source.clone(),
                ..Permit::default()
            }),
            None => Decision::Deny(Denial {
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
