//! Forwarding: one request streamed to the Docker socket over an idle (or new) HTTP/1.1
//! upstream connection, and its response streamed back, with hop-by-hop headers handled as
//! RFC 9110 §7.6.1 says.
//!
//! It must not judge requests (the policy already did) nor buffer bodies: whatever body it is
//! handed is streamed as it arrives.

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response};

use crate::reject::Refusal;

/// The body sent upstream: the client's own stream, or bytes the policy read (and maybe changed).
pub type UpstreamBody = Either<crate::stall::BodyStall, Full<Bytes>>;

/// Why the Docker socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connecting: {0}")]
    Connect(#[source] std::io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

type Sender = SendRequest<Sent>;
type Idle = Arc<Mutex<Vec<Sender>>>;

/// A request body on its way to dockerd, saying once hyper has taken all of it. dockerd may
/// answer before it has read a body (a `/_ping` sent with one, an upload it refused early); the
/// connection is still busy sending it then, and a request given that connection would wait
/// behind a client that may trickle its body for ever. Such a connection never goes back to
/// the idle list.
pub struct Sent {
    body: UpstreamBody,
    /// Only for a body streamed from the client: a buffered one is all there from the start.
    done: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Sent {
    fn new(body: UpstreamBody) -> Sent {
        use hyper::body::Body as _;
        let done = match &body {
            Either::Left(streamed) if !streamed.is_end_stream() => {
                Some(Arc::new(std::sync::atomic::AtomicBool::new(false)))
            }
            _ => None,
        };
        Sent { body, done }
    }
}

impl hyper::body::Body for Sent {
    type Data = Bytes;
    type Error = <UpstreamBody as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        if frame.is_none() || self.body.is_end_stream() {
            if let Some(done) = &self.done {
                done.store(true, std::sync::atomic::Ordering::Release);
            }
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The Docker socket, as configured, and the idle HTTP/1.1 connections to it.
///
/// An upstream connection is held only for one exchange: from sending a request until its
/// response body has ended. Then it goes back to the idle list for the next request of any
/// client connection, so an idle client connection holds no upstream connection. Each
/// connection is driven by a task of its own on the runtime that opened it; every worker thread
/// keeps its own list ([`Upstream::with_own_idle`]), so a request and its upstream exchange stay
/// on one thread.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub socket: Arc<Path>,
    /// `unix://<hex path>:0/`, how hyperlocal's connector is told which socket to open.
    target: hyper::Uri,
    idle: Idle,
}

/// Idle upstream connections kept at most per list; more are closed.
const MAX_IDLE: usize = 256;

impl Upstream {
    /// `socket` must be an absolute path of at most 107 bytes (checked by the config).
    pub fn new(socket: &Path) -> Upstream {
        Upstream {
            socket: Arc::from(socket),
            target: hyperlocal::Uri::new(socket, "/").into(),
            idle: Idle::default(),
        }
    }

    /// The same socket with an idle list of its own (one per worker thread).
    pub fn with_own_idle(&self) -> Upstream {
        Upstream {
            idle: Idle::default(),
            ..self.clone()
        }
    }

    /// Sends `parts` + `body` upstream. `upgrade` carries the client's `Upgrade` header value when
    /// the request asks to hijack the connection; it is passed on with `Connection: Upgrade`.
    pub async fn send(
        &self,
        parts: hyper::http::request::Parts,
        body: UpstreamBody,
        upgrade: Option<HeaderValue>,
    ) -> Result<Response<Returning>, Refusal> {
        let upgrading = upgrade.is_some();
        let body = Sent::new(body);
        let sent = body.done.clone();
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
                _ => return Err(client_or_upstream(e.into_error(), fail)),
            },
        };
        // An upgraded connection becomes the hijacked stream; it never goes back. Nor does one
        // that switched protocols unasked (the proxy refuses that answer).
        let switched = resp.status() == hyper::StatusCode::SWITCHING_PROTOCOLS;
        let back = (!upgrading && !switched).then(|| Back {
            sender,
            idle: self.idle.clone(),
            sent,
        });
        Ok(resp.map(|body| Returning {
            body,
            back,
            watch: None,
            end_at: None,
        }))
    }

    /// `GET path` on the Docker socket, for the policy to see an object a request acts on: the
    /// JSON body, or `None` when dockerd has no such object (404). At most `limit` bytes.
    pub async fn get_json(&self, path: &str, limit: usize) -> Result<Option<Bytes>, Refusal> {
        use http_body_util::BodyExt;
        let parts = Request::get(path)
            .body(())
            .map_err(|_| Refusal::BadRequest(format!("{path:?} is not a request target")))?
            .into_parts()
            .0;
        let resp = self
            .send(parts, Either::Right(Full::new(Bytes::new())), None)
            .await?;
        match resp.status() {
            hyper::StatusCode::NOT_FOUND => {
                // Read to its end, so the connection goes back to the pool instead of being
                // closed (a new one per lookup doubled the cost of a create naming a volume
                // that does not exist yet).
                short_body(resp).await;
                Ok(None)
            }
            s if s.is_success() => {
                let body = http_body_util::Limited::new(resp.into_body(), limit);
                let bytes = body.collect().await.map_err(|_| {
                    Refusal::UpstreamProtocol("its answer to a lookup was unreadable or too large")
                })?;
                Ok(Some(bytes.to_bytes()))
            }
            s if s.is_client_error() => {
                // dockerd's own answer (an ambiguous ID prefix, a bad name) is the client's.
                let text = short_body(resp).await;
                let message = serde_json::from_slice::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| s.to_string());
                Err(Refusal::BadRequest(format!(
                    "looking up {path} before deciding: dockerd answered: {message}"
                )))
            }
            _ => Err(Refusal::UpstreamProtocol(
                "it refused a lookup of the object the request acts on",
            )),
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Sender, UpstreamError> {
        use tower_service::Service;
        let stream = hyperlocal::UnixConnector
            .call(self.target.clone())
            .await
            .map_err(UpstreamError::Connect)?;
        // Through its tokio traits: hyperlocal's own hyper `Write` does not pass on that the
        // socket takes vectored writes, and hyper would then copy every body chunk it forwards
        // into one flat buffer before writing (an upload's bytes copied once more).
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// A failed exchange is the client's doing when the body it was streaming failed (it stopped
/// sending, or broke off); otherwise dockerd's.
fn client_or_upstream(e: hyper::Error, upstream: impl FnOnce(UpstreamError) -> Refusal) -> Refusal {
    let from_body = std::error::Error::source(&e)
        .is_some_and(|s| s.downcast_ref::<crate::stall::BodyError>().is_some());
    if from_body {
        Refusal::BodyRead(e)
    } else {
        upstream(e.into())
    }
}

/// The body of an error answer from dockerd (its `{"message": …}`), read to its end so the
/// connection can go back to the pool; empty when it is unreadable or over 64 KiB.
async fn short_body(resp: Response<Returning>) -> Bytes {
    use http_body_util::BodyExt;
    http_body_util::Limited::new(resp.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// Why a response body from dockerd stopped before its end. The client is not given the end
/// of the body then (no last chunk): it sees the body cut, not a shorter one.
#[derive(Debug, thiserror::Error)]
pub enum BodyCut {
    #[error(transparent)]
    Upstream(hyper::Error),
    #[error("cut when the client certificate expired")]
    CertificateExpired,
}

/// An upstream response body that hands its connection back to the idle list once it has
/// ended. A body dropped before its end takes the connection with it (hyper closes it).
pub struct Returning {
    body: Incoming,
    back: Option<Back>,
    /// Told once how the body ended, when someone asked ([`Returning::on_end`]).
    watch: Option<Watch>,
    /// When to stop passing the body on ([`Returning::end_at`]).
    end_at: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Where a kept connection goes back to once its exchange is over.
struct Back {
    sender: Sender,
    idle: Idle,
    /// Whether the request's streamed body has all been sent (`None`: it was buffered).
    sent: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// How a watched response body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It ended as its framing says (the last chunk, or dockerd closing a body that runs until
    /// it closes), and all of it was handed to the client's connection. What dockerd wrote
    /// inside it (an error in a progress stream) is not read.
    Complete,
    /// dockerd's side failed mid-way (the connection broke, bad chunked framing).
    Failed(String),
    /// It was dropped before its end: the client went away, or the connection was cut at
    /// shutdown.
    Cut,
    /// The client's certificate expired while it streamed: it was cut there for the client
    /// ([`Returning::end_at`]) and dockerd's connection was closed.
    CertificateExpired,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Complete => f.write_str("complete"),
            Ending::Failed(e) => write!(f, "dockerd's side failed before the end: {e}"),
            Ending::Cut => f.write_str(
                "cut before the end: the client went away, or the connection was closed at shutdown",
            ),
            Ending::CertificateExpired => f.write_str("cut when the client certificate expired"),
        }
    }
}

/// The bytes passed so far, and whom to tell once the body ends.
struct Watch {
    bytes: u64,
    report: Box<dyn FnOnce(u64, Ending) + Send>,
}

impl Returning {
    /// Calls `report` exactly once, with the body bytes that went through and how the body
    /// ended, whether it ends, fails or is dropped.
    pub fn on_end(&mut self, report: impl FnOnce(u64, Ending) + Send + 'static) {
        debug_assert!(self.watch.is_none(), "one watch per body");
        self.watch = Some(Watch {
            bytes: 0,
            report: Box::new(report),
        });
    }

    /// Cuts the body at `deadline` (the client certificate's expiry), whatever dockerd still
    /// has to send: the client's connection is closed without the body's end (a download is
    /// seen to be cut, not taken for a shorter one), dockerd's connection is closed (it is not
    /// given back mid-body) and the ending is [`Ending::CertificateExpired`].
    pub fn end_at(&mut self, deadline: tokio::time::Instant) {
        self.end_at = Some(Box::pin(tokio::time::sleep_until(deadline)));
    }

    fn ended(&mut self, how: Ending) {
        if let Some(watch) = self.watch.take() {
            (watch.report)(watch.bytes, how);
        }
    }

    fn give_back(&mut self) {
        let Some(back) = self.back.take() else {
            return;
        };
        let sending = back.sent.as_ref();
        if sending.is_some_and(|done| !done.load(std::sync::atomic::Ordering::Acquire)) {
            return;
        }
        let Ok(mut idle) = back.idle.lock() else {
            return;
        };
        if idle.len() < MAX_IDLE {
            idle.push(back.sender);
        }
    }
}

impl hyper::body::Body for Returning {
    type Data = Bytes;
    type Error = BodyCut;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BodyCut>>> {
        if let Some(end) = self.end_at.as_mut() {
            if std::future::Future::poll(end.as_mut(), cx).is_ready() && !self.body.is_end_stream()
            {
                self.back = None;
                self.ended(Ending::CertificateExpired);
                return std::task::Poll::Ready(Some(Err(BodyCut::CertificateExpired)));
            }
        }
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx))
            .map(|f| f.map_err(BodyCut::Upstream));
        match &frame {
            None => {
                self.give_back();
                self.ended(Ending::Complete);
            }
            Some(Ok(f)) => {
                if let (Some(watch), Some(data)) = (self.watch.as_mut(), f.data_ref()) {
                    watch.bytes += data.len() as u64;
                }
            }
            Some(Err(e)) => {
                let e = e.to_string();
                self.ended(Ending::Failed(e));
            }
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        // A body with nothing left (an empty or fully read one) may be dropped unpolled.
        if self.body.is_end_stream() {
            self.give_back();
            self.ended(Ending::Complete);
        }
        self.ended(Ending::Cut);
    }
}

/// The upstream request: origin-form target, hop-by-hop headers removed, framing left to hyper.
fn request(
    mut parts: hyper::http::request::Parts,
    body: Sent,
    upgrade: Option<HeaderValue>,
) -> Request<Sent> {
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
    // Most messages carry none: one pass over the names instead of a lookup per name.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The hop-by-hop names of RFC 9110 (7.6.1), with the legacy `Keep-Alive` and
/// `Proxy-Connection`. `Connection` is among them, so a message naming others has it too.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// The upstream response made ready for the client: hop-by-hop headers removed (except the
/// upgrade pair on a 101), body streamed as is.
pub fn to_client<R, B>(resp: Response<R>) -> Response<Either<R, B>> {
    let (mut parts, body) = resp.into_parts();
    let upgrade = (parts.status == hyper::StatusCode::SWITCHING_PROTOCOLS)
        .then(|| parts.headers.get(header::UPGRADE).cloned())
        .flatten();
    // A message with both is framed by its Transfer-Encoding (RFC 9112 §6.3), which is
    // hop-by-hop: the Content-Length would misstate the body passed on.
    if parts.headers.contains_key(header::TRANSFER_ENCODING) {
        parts.headers.remove(header::CONTENT_LENGTH);
    }
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

    #[test]
    fn a_response_framed_by_transfer_encoding_loses_its_content_length_too() {
        let resp = Response::builder()
            .header(header::TRANSFER_ENCODING, "chunked")
            .header(header::CONTENT_LENGTH, "5")
            .header("docker-experimental", "false")
            .body(())
            .unwrap();
        let passed: Response<Either<(), ()>> = to_client(resp);
        assert!(!passed.headers().contains_key(header::CONTENT_LENGTH));
        assert!(!passed.headers().contains_key(header::TRANSFER_ENCODING));
        assert!(passed.headers().contains_key("docker-experimental"));
        let alone = Response::builder()
            .header(header::CONTENT_LENGTH, "5")
            .body(())
            .unwrap();
        let passed: Response<Either<(), ()>> = to_client(alone);
        assert_eq!(passed.headers()[header::CONTENT_LENGTH], "5");
    }

    #[test]
    fn each_hop_by_hop_header_is_removed_even_without_connection() {
        for name in [
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-authenticate",
            "proxy-authorization",
            "keep-alive",
            "proxy-connection",
        ] {
            let mut h = HeaderMap::new();
            h.insert("x-registry-auth", HeaderValue::from_static("e30="));
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("1"),
            );
            strip_hop_by_hop(&mut h);
            assert_eq!(h.len(), 1, "{name} kept");
            assert!(h.contains_key("x-registry-auth"));
        }
    }

    #[test]
    fn a_message_without_hop_by_hop_headers_is_left_as_it_is() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("api-version", HeaderValue::from_static("1.41"));
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
    }
}

#[cfg(test)]
mod pool_tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;
    use tokio::sync::mpsc;

    /// A Unix-socket upstream that answers every request on a connection with `response`, and
    /// reports each accepted connection and each connection's end (the peer closing it).
    fn upstream(
        dir: &Path,
        response: &'static [u8],
    ) -> (Upstream, mpsc::UnboundedReceiver<&'static str>) {
        let path = dir.join("up.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (events, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let events = events.clone();
                let _ = events.send("accepted");
                tokio::spawn(async move {
                    let mut buf = vec![0; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                if stream.write_all(response).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = events.send("closed");
                });
            }
        });
        (Upstream::new(&path), rx)
    }

    /// The upstream's next event, or `None` when none comes within 5 s.
    async fn next(events: &mut mpsc::UnboundedReceiver<&'static str>) -> Option<&'static str> {
        tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .ok()
            .flatten()
    }

    fn get() -> hyper::http::request::Parts {
        Request::get("/_ping").body(()).unwrap().into_parts().0
    }

    fn empty() -> UpstreamBody {
        Either::Right(Full::new(Bytes::new()))
    }

    #[tokio::test]
    async fn a_finished_exchange_leaves_its_connection_for_the_next_request() {
        let dir = tempfile::tempdir().unwrap();
        let (up, mut events) = upstream(
            dir.path(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
        );
        for _ in 0..3 {
            let resp = up.send(get(), empty(), None).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"OK");
        }
        assert_eq!(next(&mut events).await, Some("accepted"));
        assert!(
            events.try_recv().is_err(),
            "one connection served all three requests"
        );
        assert_eq!(up.idle.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_lookup_of_a_missing_object_leaves_its_connection_for_the_next_request() {
        let dir = tempfile::tempdir().unwrap();
        let (up, mut events) = upstream(
            dir.path(),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 39\r\n\r\n{\"message\":\"get myvol: no such volume\"}",
        );
        for _ in 0..3 {
            assert_eq!(up.get_json("/volumes/myvol", 1024).await.unwrap(), None);
        }
        assert_eq!(next(&mut events).await, Some("accepted"));
        assert!(
            events.try_recv().is_err(),
            "one connection served all three lookups"
        );
        assert_eq!(up.idle.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        // A chunked stream that never ends, like `logs -f` or `events`.
        let (up, mut events) = upstream(
            dir.path(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nevent\r\n",
        );
        let resp = up.send(get(), empty(), None).await.unwrap();
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"event");
        drop(body);
        assert_eq!(next(&mut events).await, Some("accepted"));
        assert_eq!(next(&mut events).await, Some("closed"));
        assert!(up.idle.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_connection_still_sending_a_clients_body_never_goes_back_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        // dockerd answers as soon as the head arrives, as it does to an upload it refuses early.
        let (up, mut events) = upstream(
            dir.path(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
        );
        // The client's side: a hyper server whose one request streams its body to `up`; the
        // client sends the head and 5 of the 1,000 bytes it announced, then goes quiet.
        let (client, server) = tokio::io::duplex(64 * 1024);
        let forwarded = {
            let up = up.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let up = up.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body =
                        crate::stall::BodyStall::new(body, std::time::Duration::from_secs(60));
                    let resp = up.send(parts, Either::Left(body), None).await.unwrap();
                    let answer = resp.into_body().collect().await.unwrap().to_bytes();
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(answer)))
                }
            })
        };
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(server), forwarded),
        );
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(b"POST /containers/x/archive HTTP/1.1\r\nHost: d\r\nContent-Length: 1000\r\n\r\nhello")
            .await
            .unwrap();
        let mut answer = vec![0; 1024];
        let n = client_read.read(&mut answer).await.unwrap();
        assert!(
            answer[..n].ends_with(b"OK"),
            "{:?}",
            String::from_utf8_lossy(&answer[..n])
        );
        assert_eq!(next(&mut events).await, Some("accepted"));
        assert!(
            up.idle.lock().unwrap().is_empty(),
            "the connection still carries the body"
        );
        assert!(events.try_recv().is_err(), "it is still open, not closed");
        // The next request gets a connection of its own instead of waiting behind that body.
        let resp = up.send(get(), empty(), None).await.unwrap();
        assert_eq!(
            &resp.into_body().collect().await.unwrap().to_bytes()[..],
            b"OK"
        );
        assert_eq!(next(&mut events).await, Some("accepted"));
        drop(client_write);
    }

    /// Sends one GET to an upstream answering `response`, watching the body's end.
    async fn watched(
        response: &'static [u8],
    ) -> (
        Returning,
        std::sync::mpsc::Receiver<(u64, Ending)>,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (up, _events) = upstream(dir.path(), response);
        let mut body = up.send(get(), empty(), None).await.unwrap().into_body();
        let (tx, rx) = std::sync::mpsc::channel();
        body.on_end(move |bytes, how| tx.send((bytes, how)).unwrap());
        (body, rx, dir)
    }

    #[tokio::test]
    async fn a_watched_body_read_to_its_end_reports_complete_with_its_bytes_once() {
        let (body, ended, _dir) =
            watched(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n")
                .await;
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"helloabc");
        assert_eq!(ended.try_recv(), Ok((8, Ending::Complete)));
        assert!(ended.try_recv().is_err(), "reported once");
    }

    #[tokio::test]
    async fn a_watched_body_that_runs_until_dockerd_closes_reports_complete_at_the_close() {
        // No Content-Length, no chunking: the body ends when dockerd closes the connection.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("up.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
                .await;
        });
        let up = Upstream::new(&path);
        let mut body = up.send(get(), empty(), None).await.unwrap().into_body();
        let (tx, ended) = std::sync::mpsc::channel();
        body.on_end(move |bytes, how| tx.send((bytes, how)).unwrap());
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"until close");
        assert_eq!(ended.try_recv(), Ok((11, Ending::Complete)));
    }

    #[tokio::test]
    async fn a_watched_body_dropped_mid_stream_reports_cut_with_the_bytes_so_far() {
        let (mut body, ended, _dir) =
            watched(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nevent\r\n").await;
        body.frame().await.unwrap().unwrap();
        assert!(ended.try_recv().is_err(), "not ended yet");
        drop(body);
        assert_eq!(ended.try_recv(), Ok((5, Ending::Cut)));
    }

    #[tokio::test]
    async fn a_streamed_body_is_cut_when_the_client_certificate_expires_and_its_connection_is_not_reused(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (up, mut events) = upstream(
            dir.path(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nevent\r\n",
        );
        let mut body = up.send(get(), empty(), None).await.unwrap().into_body();
        assert_eq!(next(&mut events).await, Some("accepted"));
        let (tx, ended) = std::sync::mpsc::channel();
        body.on_end(move |bytes, how| tx.send((bytes, how)).unwrap());
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(&first.into_data().unwrap()[..], b"event");
        // dockerd sends nothing more; the deadline cuts the body for the client.
        body.end_at(tokio::time::Instant::now());
        let cut = body.frame().await.unwrap();
        assert!(matches!(cut, Err(BodyCut::CertificateExpired)), "{cut:?}");
        assert_eq!(ended.try_recv(), Ok((5, Ending::CertificateExpired)));
        drop(body);
        assert_eq!(next(&mut events).await, Some("closed"));
        assert!(up.idle.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_watched_body_whose_upstream_breaks_its_framing_reports_the_failure() {
        let (body, ended, _dir) =
            watched(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nevent\r\nzz\r\n")
                .await;
        assert!(body.collect().await.is_err());
        let (bytes, how) = ended.try_recv().unwrap();
        assert_eq!(bytes, 5);
        assert!(matches!(how, Ending::Failed(_)), "{how:?}");
        assert!(ended.try_recv().is_err(), "reported once");
    }
}
