//! dockgate: an authenticating mTLS reverse proxy and policy engine for the Docker Engine API.
//!
//! # Layout
//! - [`cli`]: command-line arguments → one library call per subcommand.
//! - [`config`]: the YAML file compiled into a [`config::Config`] in one fallible step.
//! - [`tls`]: the rustls server configuration and client-certificate verifier.
//! - [`identity`]: a verified leaf certificate → [`identity::Identity`], and identity → role rules.
//! - [`net`]: source-network (CIDR) allowlists.
//! - [`gulp`]: large socket reads under TLS while an upload is flowing.
//! - [`idle`]: when a keep-alive connection is between requests, so hyper's buffers can go.
//! - [`stall`]: writes to a client that stopped reading fail after a while.
//! - [`farewell`]: a closing connection's last response leaves with its close_notify.
//! - [`server`]: worker threads each accepting on the listener, pre-TLS network check,
//!   handshake, HTTP/1.1 serving, shutdown.
//! - [`proxy`]: the life of one request, top to bottom.
//! - [`budget`]: the memory bodies read for the policy may hold, in all and per certificate.
//! - [`joins`]: which containers share namespaces, so acting on one is judged with the others.
//! - [`route`]: the exact request path → a known Engine API route and its group, or a refusal.
//! - [`policy`]: pure decisions; [`policy::inspect`] reads JSON bodies the way dockerd does.
//! - [`forward`] / [`upgrade`]: streaming to the Docker socket; hijacked (101) streams.
//! - [`reject`]: the one place refusals become Docker-style JSON error responses.
//! - [`audit`]: one audit record per request and per refused handshake.
//! - [`certs`]: CA, server and client certificate generation (examples and tests).
#![forbid(unsafe_code)]

pub mod audit;
pub mod budget;
pub mod certs;
pub mod cli;
pub mod config;
pub mod farewell;
pub mod forward;
pub mod gulp;
pub mod identity;
pub mod idle;
pub mod joins;
pub mod net;
pub mod policy;
pub mod proxy;
pub mod reject;
pub mod route;
pub mod server;
pub mod stall;
pub mod tls;
pub mod upgrade;

use std::sync::Arc;

use config::{Config, ConfigErrors, Problems};
use proxy::State;

/// Builds everything `serve` needs from a compiled config: TLS state, the upstream socket and
/// the audit sink. Every problem is reported, one per entry.
pub fn build_state(config: Config) -> Result<Arc<State>, ConfigErrors> {
    let mut problems = Problems::default();
    let tls = tls::server_config(&config.tls, &mut problems);
    let upstream = forward::Upstream::new(&config.upstream);
    let audit = match audit::Audit::open(config.audit.path.as_deref()) {
        Ok(a) => Some(a),
        Err(e) => {
            problems.push("", e);
            None
        }
    };
    match (tls, audit) {
        (Some(tls), Some(audit)) if problems.0.is_empty() => Ok(Arc::new(State {
            tls,
            upstream,
            audit,
            hijacks: tokio_util::task::TaskTracker::new(),
            stop_hijacks: tokio_util::sync::CancellationToken::new(),
            joins: joins::Joins::default(),
            bodies: budget::BodyBudget::new(
                config.limits.max_buffered_body_bytes,
                config.limits.max_body_bytes,
            ),
            config,
        })),
        _ => Err(ConfigErrors {
            source: config.source,
            problems: problems.0,
        }),
    }
}
