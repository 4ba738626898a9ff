//! Forwarding: one request streamed to the Docker socket over the client connection's own
//! HTTP/1.1 upstream connection, and its response streamed back, with hop-by-hop headers
//! handled as RFC 9110 §7.6.1 says.
//!
//! It must not judge requests (the policy already did) nor buffer bodies: whatever body it is
//! handed is streamed as it arrives.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response};
use tokio::sync::mpsc::UnboundedSender;

use crate::reject::Refusal;

/// The body sent upstream: the client's own stream, or bytes the policy read (and maybe changed).
pub type UpstreamBody = Either<Incoming, Full<Bytes>>;

/// A future that drives one upstream connection; the downstream connection's task polls it.
pub type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why the Docker socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connecting: {0}")]
    Connect(#[source] std::io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The Docker socket, as configured.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub socket: Arc<Path>,
    /// `unix://<hex path>:0/`, how hyperlocal's connector is told which socket to open.
    target: hyper::Uri,
    /// Idle upstream connections left by client connections that ended, for the next new
    /// client connection (docker CLI calls are short connections: this saves a connect each).
    spare: Arc<Mutex<Vec<SendRequest<UpstreamBody>>>>,
}

/// Spare upstream connections kept at most.
const MAX_SPARE: usize = 32;

impl Upstream {
    /// `socket` must be an absolute path of at most 107 bytes (checked by the config).
    pub fn new(socket: &Path) -> Upstream {
        Upstream {
            socket: Arc::from(socket),
            target: hyperlocal::Uri::new(socket, "/").into(),
            spare: Arc::default(),
        }
    }

    /// The same socket with a spare pool of its own. Each worker thread keeps its own, so a
    /// spare's driver always runs on the thread of the connection that takes it.
    pub fn with_own_spares(&self) -> Upstream {
        Upstream {
            spare: Arc::default(),
            ..self.clone()
        }
    }
}

/// One downstream connection's way to the Docker socket: a dedicated HTTP/1.1 connection,
/// opened on first use and reopened when dockerd closed it.
///
/// HTTP/1.1 requests on a connection are sequential, so one upstream connection per downstream
/// connection is all a client can use (spares are kept only between short client
/// connections, see [`Link::release`]). Its driver future runs in the
/// downstream connection's own task (handed over through `drivers`), so a request and its
/// upstream exchange never cross tasks or threads.
pub struct Link {
    socket: Arc<Path>,
    spare: Arc<Mutex<Vec<SendRequest<UpstreamBody>>>>,
    /// `unix://<hex path>:0/`, how hyperlocal's connector is told which socket to open.
    target: hyper::Uri,
    /// The idle upstream connection, taken for the length of one exchange.
    idle: Mutex<Option<SendRequest<UpstreamBody>>>,
    drivers: UnboundedSender<Driver>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("socket", &self.socket)
            .finish()
    }
}

impl Link {
    pub fn new(upstream: &Upstream, drivers: UnboundedSender<Driver>) -> Link {
        Link {
            target: upstream.target.clone(),
            socket: upstream.socket.clone(),
            spare: upstream.spare.clone(),
            idle: Mutex::new(None),
            drivers,
        }
    }

    /// Sends `parts` + `body` upstream. `upgrade` carries the client's `Upgrade` header value when
    /// the request asks to hijack the connection; it is passed on with `Connection: Upgrade`.
    pub async fn send(
        &self,
        parts: hyper::http::request::Parts,
        body: UpstreamBody,
        upgrade: Option<HeaderValue>,
    ) -> Result<Response<Incoming>, Refusal> {
        let upgrading = upgrade.is_some();
        let req = request(parts, body, upgrade);
        let fail = |source| Refusal::Upstream {
            socket: self.socket.to_path_buf(),
            source,
        };
        let kept = self.take_idle();
        let reused = kept.is_some();
        let mut sender = match kept {
            Some(s) => s,
            None => self.connect().await.map_err(fail)?,
        };
        // A kept connection dockerd has closed is replaced.
        if sender.ready().await.is_err() {
            sender = self.connect().await.map_err(fail)?;
            sender.ready().await.map_err(|e| fail(e.into()))?;
        }
        let resp = match sender.try_send_request(req).await {
            Ok(resp) => resp,
            // A request a kept connection never started to send goes once more on a new one.
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => {
                    sender = self.connect().await.map_err(fail)?;
                    sender.ready().await.map_err(|e| fail(e.into()))?;
                    sender
                        .send_request(unsent)
                        .await
                        .map_err(|e| fail(e.into()))?
                }
                _ => return Err(fail(e.into_error().into())),
            },
        };
        if !upgrading {
            self.put_idle(sender);
        }
        Ok(resp)
    }

    /// Hands this link's idle upstream connection to the spares when the client connection
    /// ends. Returns whether it did (its driver must then outlive the client's task).
    pub fn release(&self) -> bool {
        let Some(sender) = self.take_idle() else {
            return false;
        };
        match self.spare.lock() {
            Ok(mut spare) if spare.len() < MAX_SPARE => {
                spare.push(sender);
                true
            }
            _ => false,
        }
    }

    fn take_idle(&self) -> Option<SendRequest<UpstreamBody>> {
        let own = self
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.take())
            .filter(|s| !s.is_closed());
        own.or_else(|| {
            let mut spare = self.spare.lock().ok()?;
            while let Some(s) = spare.pop() {
                if !s.is_closed() {
                    return Some(s);
                }
            }
            None
        })
    }

    fn put_idle(&self, sender: SendRequest<UpstreamBody>) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some(sender);
        }
    }

    async fn connect(&self) -> Result<SendRequest<UpstreamBody>, UpstreamError> {
        use tower_service::Service;
        let stream = hyperlocal::UnixConnector
            .call(self.target.clone())
            .await
            .map_err(UpstreamError::Connect)?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(stream)
            .await?;
        let driver: Driver = Box::pin(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        // The receiver lives as long as the downstream connection's task; if it is gone the
        // connection is closing and this request fails with it.
        let _ = self.drivers.send(driver);
        Ok(sender)
    }
}

/// The upstream request: origin-form target, hop-by-hop headers removed, framing left to hyper.
fn request(
    mut parts: hyper::http::request::Parts,
    body: UpstreamBody,
    upgrade: Option<HeaderValue>,
) -> Request<UpstreamBody> {
    if let Some(pq) = parts.uri.path_and_query().cloned() {
        parts.uri = hyper::Uri::from(pq);
    }
    strip_hop_by_hop(&mut parts.headers);
    // Framing is hyper's job: it sets Content-Length or chunked from the body.
    parts.headers.remove(header::CONTENT_LENGTH);
    if !parts.headers.contains_key(header::HOST) {
        parts
            .headers
            .insert(header::HOST, HeaderValue::from_static("docker"));
    }
    if let Some(proto) = upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        parts.headers.insert(header::UPGRADE, proto);
    }
    parts.version = hyper::Version::HTTP_11;
    Request::from_parts(parts, body)
}

/// The comma-separated tokens of every `Connection` header, trimmed.
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Removes the hop-by-hop headers: those RFC 9110 names, and any named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// The upstream response made ready for the client: hop-by-hop headers removed (except the
/// upgrade pair on a 101), body streamed as is.
pub fn to_client<B>(resp: Response<Incoming>) -> Response<Either<Incoming, B>> {
    let (mut parts, body) = resp.into_parts();
    let upgrade = (parts.status == hyper::StatusCode::SWITCHING_PROTOCOLS)
        .then(|| parts.headers.get(header::UPGRADE).cloned())
        .flatten();
    strip_hop_by_hop(&mut parts.headers);
    if let Some(proto) = upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        parts.headers.insert(header::UPGRADE, proto);
    }
    Response::from_parts(parts, Either::Left(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-registry-auth", HeaderValue::from_static("e30="));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-registry-auth"));
    }
}
