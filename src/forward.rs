//! Forwarding: one request streamed to the Docker socket over a pooled HTTP/1.1 client, and its
//! response streamed back, with hop-by-hop headers handled as RFC 9110 §7.6.1 says.
//!
//! It must not judge requests (the policy already did) nor buffer bodies: whatever body it is
//! handed is streamed as it arrives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;

use crate::reject::Refusal;

/// The body sent upstream: the client's own stream, or bytes the policy read (and maybe changed).
pub type UpstreamBody = Either<Incoming, Full<Bytes>>;

/// A pooled HTTP/1.1 client for one Docker socket.
pub struct Upstream {
    client: Client<UnixConnector, UpstreamBody>,
    socket: PathBuf,
    /// `unix://<hex path>:0`, the authority hyperlocal's connector reads the socket path from.
    authority: Authority,
}

impl Upstream {
    pub fn new(socket: &Path) -> Result<Upstream, hyper::http::Error> {
        let hex: String = socket
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let authority = Authority::try_from(format!("{hex}:0"))?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(UnixConnector);
        Ok(Upstream {
            client,
            socket: socket.to_path_buf(),
            authority,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends `parts` + `body` upstream. `upgrade` carries the client's `Upgrade` header value when
    /// the request asks to hijack the connection; it is passed on with `Connection: Upgrade`.
    pub async fn send(
        &self,
        parts: hyper::http::request::Parts,
        body: UpstreamBody,
        upgrade: Option<HeaderValue>,
    ) -> Result<Response<Incoming>, Refusal> {
        let req = self.request(parts, body, upgrade)?;
        self.client
            .request(req)
            .await
            .map_err(|source| Refusal::Upstream {
                socket: self.socket.clone(),
                source,
            })
    }

    fn request(
        &self,
        mut parts: hyper::http::request::Parts,
        body: UpstreamBody,
        upgrade: Option<HeaderValue>,
    ) -> Result<Request<UpstreamBody>, Refusal> {
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut uri = Uri::builder()
            .scheme(Scheme::try_from("unix").map_err(bad_uri)?)
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(bad_uri)?;
        std::mem::swap(&mut parts.uri, &mut uri);
        strip_hop_by_hop(&mut parts.headers);
        // Framing is hyper's job: it sets Content-Length or chunked from the body.
        parts.headers.remove(header::CONTENT_LENGTH);
        if let Some(proto) = upgrade {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            parts.headers.insert(header::UPGRADE, proto);
        }
        parts.version = hyper::Version::HTTP_11;
        Ok(Request::from_parts(parts, body))
    }
}

fn bad_uri(e: impl std::fmt::Display) -> Refusal {
    Refusal::BadRequest(format!("request target cannot be forwarded: {e}"))
}

/// Removes the hop-by-hop headers: those RFC 9110 names, and any named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
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
