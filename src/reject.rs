//! The one place that turns a refusal (a policy denial, a request dockgate cannot read, an
//! unreachable upstream) into a Docker-style JSON error response `{"message": "…"}`.
//!
//! It must not decide whether to refuse; callers hand it the refusal they already have.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::policy::baseline::Unreadable;
use crate::policy::inspect::InspectError;
use crate::policy::Denial;
use crate::proxy::Body;
use crate::route::{PathError, PathErrorKind};

/// Why a request was not forwarded (or failed upstream). The status says whose fault it is:
/// 4xx the client's, 502 and 504 the upstream's, 503 a limit or the audit log's.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The policy said no.
    #[error("dockgate: {0}")]
    Denied(Denial),
    /// The certificate is valid but maps to no role.
    #[error("dockgate: certificate {name:?} (sha256 {fingerprint}) maps to no role; ask an administrator to add it to identities:")]
    NoRole { name: String, fingerprint: String },
    /// The client certificate expired after this connection's handshake.
    #[error("dockgate: certificate {name:?} (or an intermediate CA certificate it came with) has expired since this connection was opened; reconnect with a renewed certificate")]
    CertificateExpired { name: String },
    /// The client certificate expired while dockerd worked on a request it had been sent.
    #[error("dockgate: certificate {name:?} (or an intermediate CA certificate it came with) expired while dockerd worked on this request; its answer is not passed on, and dockerd may have acted on it")]
    ExpiredWhileForwarded { name: String },
    /// The role does not accept requests from this network.
    #[error("dockgate: role {role:?} may not connect from {peer}")]
    Network {
        role: String,
        peer: std::net::IpAddr,
    },
    #[error("dockgate: {0}")]
    Path(#[from] PathError),
    #[error("dockgate: request body refused: {0}")]
    Body(#[from] InspectError),
    #[error("dockgate: request refused: {0}")]
    Unreadable(#[from] Unreadable),
    /// A request dockgate cannot read unambiguously (headers, framing, encodings).
    #[error("dockgate: {0}")]
    BadRequest(String),
    #[error("dockgate: request body exceeds the {limit}-byte limit this route is inspected with (limits.max_body_bytes)")]
    TooLarge { limit: usize },
    /// A request target longer than the audit log records whole.
    #[error("dockgate: the request target is {len} bytes, more than the {limit} the audit log records whole; shorten the query")]
    TargetTooLong { len: usize, limit: usize },
    /// dockerd has more containers dockgate has not looked at than one request looks at.
    #[error("dockgate: dockerd has {left} more containers than the {per_request} dockgate has just looked at to know which share namespaces with this one; try again")]
    ContainersUnseen { left: usize, per_request: usize },
    /// Bodies being read for the policy already hold what they may (see `budget`).
    #[error("dockgate: request bodies being read already hold the {limit} bytes {whose} may (limits.max_buffered_body_bytes); try again shortly")]
    BodiesBusy { limit: usize, whose: &'static str },
    #[error("dockgate: reading the request body failed: {0}")]
    BodyRead(#[source] hyper::Error),
    #[error("dockgate: the Docker daemon answered out of protocol: {0}")]
    UpstreamProtocol(&'static str),
    /// The audit file has stopped taking records: nothing is served that cannot be audited.
    #[error("dockgate: the audit log is not being written (its file has fallen behind, or its disk refuses writes); requests are refused until it is, ask an administrator to check the audit disk")]
    AuditUnavailable,
    /// dockerd did not answer a lookup the decision needs in time.
    #[error("dockgate: the Docker daemon did not answer the lookup of {what} within {secs}s; the request was not sent (try again once dockerd responds)")]
    LookupTimeout { what: String, secs: u64 },
    /// The object a request acts on does not exist. It was looked up before deciding; sending
    /// the request on would let dockerd resolve the name again, to whatever is created (or
    /// renamed) under it in between.
    /// 404 when the request's path names it, as dockerd would answer; 400 when a create body
    /// names it (the docker CLI reads a create's 404 as a missing image, and would pull).
    #[error("dockgate: No such {kind}: {name} (looked up before deciding; create it first)")]
    NotFound {
        kind: &'static str,
        name: String,
        in_body: bool,
    },
    #[error("dockgate: the Docker daemon socket {socket} is unreachable: {source}")]
    Upstream {
        socket: PathBuf,
        #[source]
        source: crate::forward::UpstreamError,
    },
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Denied(_)
            | Refusal::NoRole { .. }
            | Refusal::Network { .. }
            | Refusal::CertificateExpired { .. }
            | Refusal::ExpiredWhileForwarded { .. } => StatusCode::FORBIDDEN,
            Refusal::Path(e) if e.kind() != PathErrorKind::Malformed => StatusCode::FORBIDDEN,
            Refusal::Path(_)
            | Refusal::Body(_)
            | Refusal::Unreadable(_)
            | Refusal::BadRequest(_)
            | Refusal::BodyRead(_) => StatusCode::BAD_REQUEST,
            Refusal::NotFound { in_body: false, .. } => StatusCode::NOT_FOUND,
            Refusal::NotFound { in_body: true, .. } => StatusCode::BAD_REQUEST,
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::TargetTooLong { .. } => StatusCode::URI_TOO_LONG,
            Refusal::Upstream { .. } | Refusal::UpstreamProtocol(_) => StatusCode::BAD_GATEWAY,
            Refusal::LookupTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Refusal::AuditUnavailable
            | Refusal::BodiesBusy { .. }
            | Refusal::ContainersUnseen { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The rule id to record in the audit log, when one applies.
    pub fn rule(&self) -> Option<String> {
        match self {
            Refusal::Denied(d) => Some(d.rule.to_string()),
            Refusal::NoRole { .. } => Some("identity-role".into()),
            Refusal::CertificateExpired { .. } | Refusal::ExpiredWhileForwarded { .. } => {
                Some("tls".into())
            }
            Refusal::Network { .. } => Some("role-networks".into()),
            Refusal::Path(e) if e.kind() != PathErrorKind::Malformed => Some("default-deny".into()),
            Refusal::Path(_) => Some("path".into()),
            Refusal::Body(_)
            | Refusal::Unreadable(_)
            | Refusal::TooLarge { .. }
            | Refusal::BodyRead(_) => Some("body".into()),
            Refusal::BadRequest(_) | Refusal::TargetTooLong { .. } => Some("request".into()),
            Refusal::NotFound { .. } => Some("not-found".into()),
            Refusal::Upstream { .. }
            | Refusal::UpstreamProtocol(_)
            | Refusal::LookupTimeout { .. } => None,
            Refusal::AuditUnavailable => Some("audit".into()),
            Refusal::BodiesBusy { .. } | Refusal::ContainersUnseen { .. } => Some("limits".into()),
        }
    }

    /// The same refusal, for an object a request body names rather than its path.
    pub fn named_in_body(self) -> Refusal {
        match self {
            Refusal::NotFound { kind, name, .. } => Refusal::NotFound {
                kind,
                name,
                in_body: true,
            },
            other => other,
        }
    }

    /// What went wrong, with its causes (`a: b: c`): the audit record's reason, and the
    /// response's message before its rule.
    pub fn message(&self) -> String {
        format_chain(self)
    }

    /// The Docker-style JSON response for this refusal; its message names the rule, as the
    /// audit record does.
    pub fn to_response(&self) -> Response<Body> {
        let mut message = self.message();
        // Denials say their rule (and role) in their own text.
        let named = matches!(self, Refusal::Denied(_));
        if let Some(rule) = self.rule().filter(|_| !named) {
            use std::fmt::Write as _;
            let _ = write!(message, " (rule {rule})");
        }
        json_error(self.status(), &message)
    }
}

/// `{"message": "…"}` with the given status, as dockerd answers errors.
pub fn json_error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The error and its sources on one line: `a: b: c`.
fn format_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        source = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn message(refusal: Refusal) -> String {
        use http_body_util::BodyExt;
        let body = refusal.to_response().into_body().collect().await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap();
        json["message"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn every_refusal_with_a_rule_names_it_once_in_its_message() {
        let m = message(Refusal::BadRequest("send the path only".into())).await;
        assert_eq!(m, "dockgate: send the path only (rule request)");
        let m = message(Refusal::AuditUnavailable).await;
        assert!(m.ends_with("(rule audit)"), "{m}");
        let m = message(Refusal::Network {
            role: "dev".into(),
            peer: [10, 0, 0, 1].into(),
        })
        .await;
        assert_eq!(
            m,
            "dockgate: role \"dev\" may not connect from 10.0.0.1 (rule role-networks)"
        );
        // A peer's text cannot talk the rule out of a message.
        let m = message(Refusal::BadRequest(
            "path \"/x(rule y)\" is ambiguous".into(),
        ))
        .await;
        assert!(m.ends_with(" (rule request)"), "{m}");
        // One whose fault is dockerd's names no rule.
        let m = message(Refusal::UpstreamProtocol("it sent nonsense")).await;
        assert!(!m.contains("(rule "), "{m}");
    }
}
