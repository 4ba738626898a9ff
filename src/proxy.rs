//! The life of one request, top to bottom: role → source network → route → policy (reading the
//! body only when a rule needs it) → forward or upgrade → respond → audit.
//!
//! It must not hold protocol details of its own: classification is `route`, decisions are
//! `policy`, bytes on the wire are `forward`/`upgrade`, error responses are `reject`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{Audit, Record};
use crate::config::Config;
use crate::forward::Upstream;
use crate::identity::Identity;
use crate::policy::{Decision, RequestView};
use crate::reject::Refusal;
use crate::{route, upgrade};

/// The body of every response dockgate sends: upstream's stream, or bytes of its own.
pub type Body = Either<Incoming, Full<Bytes>>;

/// Everything a request needs, shared by all connections.
pub struct State {
    pub config: Config,
    pub tls: Arc<ServerConfig>,
    pub upstream: Upstream,
    pub audit: Audit,
    /// Hijacked streams outlive their HTTP connection; they are tracked so shutdown can wait
    /// for them through the grace period...
    pub hijacks: TaskTracker,
    /// ...and then cut them.
    pub stop_hijacks: CancellationToken,
}

/// What is known about a connection once its handshake is done.
#[derive(Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    pub identity: Identity,
    /// The role the identity maps to, resolved once per connection.
    pub role: Option<String>,
}

/// Serves one request and records it in the audit log, whatever happens.
pub async fn handle(state: &State, conn: &Conn, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let mut record = Record::new("request", conn.peer);
    record.cn = conn.identity.cn.clone();
    record.fingerprint = Some(conn.identity.fingerprint.clone());
    record.serial = Some(conn.identity.serial.clone());
    record.role = conn.role.clone();
    record.method = Some(req.method().to_string());
    record.path = Some(req.uri().to_string());
    let response = match serve(state, conn, req, &mut record).await {
        Ok(resp) => resp,
        Err(refusal) => {
            record.decision = if refusal.status().is_client_error() {
                "deny"
            } else {
                "error"
            };
            record.rule = refusal.rule();
            record.reason = Some(refusal.to_string());
            refusal.to_response()
        }
    };
    record.status = Some(response.status().as_u16());
    record.duration_us = started.elapsed().as_micros();
    state.audit.write(record);
    response
}

async fn serve(
    state: &State,
    conn: &Conn,
    mut req: Request<Incoming>,
    record: &mut Record,
) -> Result<Response<Body>, Refusal> {
    let policy = &state.config.policy;
    let role = conn
        .role
        .as_deref()
        .and_then(|r| policy.role(r))
        .ok_or_else(|| Refusal::NoRole {
            name: conn.identity.display_name().to_string(),
            fingerprint: conn.identity.fingerprint.clone(),
        })?;
    if !role.networks.allows(conn.peer.ip()) {
        return Err(Refusal::Network {
            role: role.name.clone(),
            peer: conn.peer.ip().to_canonical(),
        });
    }
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        return Err(Refusal::BadRequest(
            "absolute-form request targets are not accepted; send the path only".into(),
        ));
    }
    let endpoint = route::classify(req.method().as_str(), req.uri().path())?;
    record.route = Some(endpoint.route.to_string());
    record.group = Some(endpoint.route.group.as_str());
    record.api_version = endpoint.version.map(|v| v.to_string());

    let view = RequestView {
        method: req.method().as_str(),
        endpoint: &endpoint,
    };
    let permit = match policy.decide(role, &view) {
        Decision::Allow(permit) => permit,
        Decision::Deny(denial) => return Err(Refusal::Denied(denial)),
    };
    record.decision = "allow";
    record.rule = Some(permit.grant);
    record.warnings = permit.warnings;
    record.mutations = permit.mutations;

    let upgrade = upgrade::requested(&req);
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let resp = state
        .upstream
        .send(parts, Either::Left(body), upgrade)
        .await?;
    if resp.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            record.upgraded = true;
            let mut resp = resp;
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let stop = state.stop_hijacks.clone();
            let peer = conn.peer;
            state.hijacks.spawn(async move {
                match upgrade::splice(client_upgrade, upstream_upgrade, stop).await {
                    Ok((up, down)) => {
                        tracing::debug!(%peer, bytes_in = up, bytes_out = down, "hijacked stream closed")
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "hijacked stream ended"),
                }
            });
            return Ok(crate::forward::to_client(resp));
        }
    }
    Ok(crate::forward::to_client(resp))
}
