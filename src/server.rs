//! The listener: accept loops on the worker threads, source-network check before TLS, the
//! mTLS handshake, identity and role resolution once per connection, HTTP/1.1 serving, and
//! graceful shutdown.
//!
//! It must not decide requests; every request goes to `proxy::handle`.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{Record, Who};
use crate::farewell::Farewell;
use crate::forward::{self, Upstream};
use crate::gulp::Gulp;
use crate::identity::{self, Identity};
use crate::idle::{Activity, Head, Tracked, Watched};
use crate::proxy::{self, Conn, State};
use crate::stall::WriteStall;

/// Serves connections from `listener` until `shutdown` completes, then drains: stops accepting,
/// lets in-flight requests and hijacked streams finish within the grace period, cuts what is
/// left, and flushes the audit log.
///
/// Each of `config.workers` threads accepts on the listener itself (a duplicate of its
/// descriptor in the thread's own runtime), screens the peer and serves the connection to the
/// end on that single-threaded runtime. A connection, its upstream exchange and its wake-ups
/// stay on one thread: no hand-off between threads, no work stealing, no cross-thread wake-ups.
/// A busy thread accepts less, since it comes back to the listener less often. This task waits
/// for `shutdown` and flushes the audit's refusal tallies; it accepts only when no worker
/// thread could.
pub async fn run(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let lifecycle = Lifecycle {
        connections: TaskTracker::new(),
        draining: CancellationToken::new(),
        kill: CancellationToken::new(),
    };
    // Accepted sockets inherit TCP_NODELAY and the keepalive settings from the listener on
    // Linux: one set of setsockopts for all.
    let nodelay_inherited = cfg!(target_os = "linux")
        && socket2::SockRef::from(&listener)
            .set_tcp_nodelay(true)
            .is_ok()
        && set_keepalive(socket2::SockRef::from(&listener)).is_ok();
    let admission = Arc::new(Admission {
        state: state.clone(),
        slots: Arc::new(tokio::sync::Semaphore::new(
            state.config.limits.max_connections,
        )),
        per_source: Arc::new(PerSource::new(
            state.config.limits.max_connections_per_source,
        )),
        nodelay_inherited,
        accept_error_logged: Default::default(),
    });
    let (mut stopped, accepting) = start_workers(&listener, &admission, &lifecycle).await;
    if accepting == 0 {
        tracing::warn!("no worker thread is accepting: serving connections on the main runtime");
        let serving = Serving {
            state: state.clone(),
            upstream: state.upstream.clone(),
            lifecycle: lifecycle.clone(),
        };
        let accepting = accept_loop(listener, admission.clone(), serving);
        lifecycle.connections.spawn(accepting);
    } else {
        // Only the accept loops' duplicates stay open: once they stop, the port is closed.
        drop(listener);
    }
    tokio::pin!(shutdown);
    // Summaries of refusals before authentication go out as their windows close.
    let tally_flush = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::audit::UNAUTHENTICATED_WINDOW);
            loop {
                tick.tick().await;
                state.audit.flush_unauthenticated(false);
            }
        })
    };
    let learning = tokio::spawn(crate::proxy::learn_joins(state.clone()));
    shutdown.await;
    learning.abort();
    tracing::info!(grace = ?state.config.shutdown_grace, "shutting down: draining connections");
    let deadline = tokio::time::Instant::now() + state.config.shutdown_grace;
    // Accept loops stop at this (and close their listeners); they are tracked like
    // connections, so no connection is accepted behind the drain's back.
    lifecycle.draining.cancel();
    lifecycle.connections.close();
    state.hijacks.close();
    let drained = tokio::time::timeout_at(deadline, async {
        lifecycle.connections.wait().await;
        state.hijacks.wait().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period over: closing remaining connections and hijacked streams");
    }
    lifecycle.kill.cancel();
    state.stop_hijacks.cancel();
    lifecycle.connections.wait().await;
    state.hijacks.wait().await;
    // Worker threads end once their accept loop and their tasks are done.
    while stopped.recv().await.is_some() {}
    tally_flush.abort();
    state.audit.close();
}

/// What every connection task watches: the tracker the drain waits on, the signal to finish
/// in-flight requests and close, and the signal to stop at once.
#[derive(Clone)]
struct Lifecycle {
    connections: TaskTracker,
    draining: CancellationToken,
    kill: CancellationToken,
}

/// A connection's place under `limits.max_connections` and, when that is set, under
/// `limits.max_connections_per_source` (an IPv6 source counts by its /64): held from accept
/// until the connection (or the hijacked stream it turned into) ends.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    source: Option<(Arc<PerSource>, IpAddr)>,
}

impl Slot {
    /// The slot, or `None` when `source` already holds its share.
    fn take(
        permit: OwnedSemaphorePermit,
        per_source: &Arc<PerSource>,
        source: IpAddr,
    ) -> Option<Slot> {
        if per_source.max == 0 {
            return Some(Slot {
                _permit: permit,
                source: None,
            });
        }
        let mut counts = per_source.counts.lock().ok()?;
        let held = counts.entry(source).or_insert(0);
        if *held >= per_source.max {
            return None;
        }
        *held += 1;
        Some(Slot {
            _permit: permit,
            source: Some((per_source.clone(), source)),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((per_source, source)) = &self.source else {
            return;
        };
        if let Ok(mut counts) = per_source.counts.lock() {
            if let Some(held) = counts.get_mut(source) {
                *held -= 1;
                if *held == 0 {
                    counts.remove(source);
                }
            }
        }
    }
}

/// Connections held per source address (0: no cap).
#[derive(Debug)]
pub struct PerSource {
    max: usize,
    counts: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
}

impl PerSource {
    fn new(max: usize) -> PerSource {
        PerSource {
            max,
            counts: Default::default(),
        }
    }
}

/// What screening a peer at accept needs: the networks, the connection limits and the audit.
struct Admission {
    state: Arc<State>,
    slots: Arc<tokio::sync::Semaphore>,
    per_source: Arc<PerSource>,
    /// The listener's TCP_NODELAY is passed on to accepted sockets; when it could not be set
    /// there, each accepted socket gets it.
    nodelay_inherited: bool,
    /// When an accept error was last logged: every worker hits the same EMFILE at once, and
    /// the log says so once a second, not once per worker per back-off.
    accept_error_logged: std::sync::Mutex<Option<Instant>>,
}

impl Admission {
    /// Logs an accept error, at most once a second across the workers.
    fn accept_failed(&self, error: &std::io::Error) {
        if self.log_due() {
            tracing::warn!(%error, "accept failed; backing off 50 ms (logged at most once a second)");
        }
    }

    /// Whether a warning about refused or failed connections may be logged now: at most one a
    /// second across the workers, so a flood of peers cannot flood the log (each refusal is
    /// in the audit, tallied per source).
    fn log_due(&self) -> bool {
        let Ok(mut last) = self.accept_error_logged.lock() else {
            return false;
        };
        let now = Instant::now();
        let due = last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if due {
            *last = Some(now);
        }
        due
    }

    /// The connection's slot, or `None` (recorded) when the peer's network is not allowed or a
    /// connection limit is reached: the peer is then dropped before TLS.
    fn admit(&self, peer: SocketAddr) -> Option<Slot> {
        let state = &self.state;
        let refuse = |rule: &str, reason: &str| {
            let mut r = Record::new("connection", peer);
            r.decision = "deny";
            r.rule = Some(rule.into());
            r.reason = Some(reason.into());
            state.audit.write_unauthenticated(peer.ip(), r);
        };
        if !admissible(state, peer.ip()) {
            tracing::debug!(%peer, "connection dropped before TLS: source network not allowed");
            refuse(
                "networks",
                "source network allowed by neither the listener nor any role",
            );
            return None;
        }
        // A connection slot is held from accept to close; past the limit, new peers are
        // dropped at once rather than left to pile up in handshakes.
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            if self.log_due() {
                tracing::warn!(%peer, limit = state.config.limits.max_connections, "connection dropped: limits.max_connections reached (logged at most once a second; every drop is audited)");
            }
            refuse("max-connections", "limits.max_connections reached");
            return None;
        };
        // Nor may one source address hold more than its share of them.
        let Some(slot) = Slot::take(permit, &self.per_source, crate::net::source_of(peer.ip()))
        else {
            if self.log_due() {
                tracing::warn!(%peer, limit = state.config.limits.max_connections_per_source, "connection dropped: limits.max_connections_per_source reached (logged at most once a second; every drop is audited)");
            }
            refuse(
                "max-connections-per-source",
                "limits.max_connections_per_source reached for this address",
            );
            return None;
        };
        Some(slot)
    }
}

/// Starts `config.workers` worker threads, each with a duplicate of `listener`, and returns once
/// each has its accept loop running or has failed: with the number accepting, and a
/// receiver that yields `None` once every thread has ended.
async fn start_workers(
    listener: &TcpListener,
    admission: &Arc<Admission>,
    lifecycle: &Lifecycle,
) -> (mpsc::Receiver<()>, usize) {
    let state = &admission.state;
    let (done, stopped) = mpsc::channel(1);
    let (ready, mut readiness) = mpsc::unbounded_channel();
    for n in 0..state.config.workers {
        let own = match duplicate(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "worker thread {n} not started: could not duplicate the listener");
                continue;
            }
        };
        let worker = Worker {
            listener: own,
            admission: admission.clone(),
            serving: Serving {
                state: state.clone(),
                upstream: state.upstream.with_own_idle(),
                lifecycle: lifecycle.clone(),
            },
            ready: ready.clone(),
            done: done.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("dockgate-worker-{n}"))
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start worker thread {n}");
        }
    }
    // Every worker says whether it is accepting, or drops its sender (a panic) first.
    drop(ready);
    let mut accepting = 0;
    while let Some(ok) = readiness.recv().await {
        accepting += usize::from(ok);
    }
    (stopped, accepting)
}

/// A duplicate of the listener's descriptor, non-blocking, for another runtime to register.
fn duplicate(listener: &TcpListener) -> std::io::Result<std::net::TcpListener> {
    let own = socket2::SockRef::from(listener).try_clone()?;
    own.set_nonblocking(true)?;
    Ok(own.into())
}

/// One worker thread: its runtime accepts on its duplicate of the listener until draining
/// starts, and serves what it accepted until it has all ended.
struct Worker {
    listener: std::net::TcpListener,
    admission: Arc<Admission>,
    serving: Serving,
    /// Told (once) whether this worker's accept loop is running.
    ready: mpsc::UnboundedSender<bool>,
    /// Dropped when the thread ends.
    done: mpsc::Sender<()>,
}

impl Worker {
    fn run(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "worker thread could not start its runtime");
                let _ = self.ready.send(false);
                return;
            }
        };
        let Worker {
            listener,
            admission,
            serving,
            ready,
            done,
        } = self;
        runtime.block_on(async move {
            // Reported (and the sender let go) before anything else: startup waits for it.
            let registered = TcpListener::from_std(listener);
            let _ = ready.send(registered.is_ok());
            drop(ready);
            match registered {
                Ok(listener) => {
                    let lifecycle = serving.lifecycle.clone();
                    let accepting = accept_loop(listener, admission, serving.clone());
                    lifecycle.connections.track_future(accepting).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "worker thread could not register the listener")
                }
            }
            serving.lifecycle.connections.wait().await;
            serving.state.hijacks.wait().await;
        });
        drop(done);
    }
}

/// Accepts, screens and serves connections on the current runtime until draining starts.
async fn accept_loop(listener: TcpListener, admission: Arc<Admission>, serving: Serving) {
    let draining = serving.lifecycle.draining.clone();
    loop {
        // Draining first: once it starts, nothing more is taken from the backlog.
        let accepted = tokio::select! {
            biased;
            _ = draining.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                admission.accept_failed(&e);
                tokio::select! {
                    _ = draining.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let Some(slot) = admission.admit(peer) else {
            continue;
        };
        if !admission.nodelay_inherited {
            let _ = tcp.set_nodelay(true);
            let _ = set_keepalive(socket2::SockRef::from(&tcp));
        }
        serving.spawn(tcp, peer, slot);
        // Let this runtime start on what it has before it takes more: during a burst, the
        // other workers (woken by the same readiness) accept the rest.
        tokio::task::yield_now().await;
    }
}

/// What serving connections on one runtime needs.
#[derive(Clone)]
struct Serving {
    state: Arc<State>,
    /// The Docker socket, with this runtime's idle upstream connections.
    upstream: Upstream,
    lifecycle: Lifecycle,
}

impl Serving {
    /// Serves one connection in a task of the current runtime, tracked for the drain.
    fn spawn(&self, tcp: TcpStream, peer: SocketAddr, slot: Slot) {
        let this = self.clone();
        self.lifecycle.connections.spawn(async move {
            tokio::select! {
                _ = serve_connection(tcp, peer, slot, &this) => {}
                _ = this.lifecycle.kill.cancelled() => {}
            }
        });
    }
}

/// How long a keep-alive connection stays quiet between requests before its HTTP buffers go.
const PARK_AFTER: Duration = Duration::from_millis(100);

/// How long closing a quiet connection may wait for its TLS close_notify to be sent.
const CLOSE_NOTIFY_WAIT: Duration = Duration::from_secs(1);

/// Most outgoing TLS bytes queued per connection: room for two 32 KiB or one 64 KiB body frame
/// with their chunk framing.
const SEND_BUFFER_LIMIT: usize = 72 * 1024;

/// hyper's buffer limit: about the most of a request it reads ahead (it checks as its buffer
/// fills, so a head of up to about twice this can get through; a larger one is answered 431,
/// and recorded), and of a response it queues. hyper's default (~400 KiB)
/// would let every authenticated connection hold that much with one unfinished head; Docker
/// clients' heads are a few KiB, up to tens with many registries' credentials (a build's
/// X-Registry-Config). Upload chunks are read up to this size too.
const MAX_READ_BUFFER: usize = 256 * 1024;

/// TCP keepalive on client connections: a client that vanished without a FIN or RST (a NAT
/// that forgot it, a laptop gone to sleep) is noticed within about two minutes even when
/// nothing is being sent (`docker events`, a quiet `logs -f` or `attach`), and its slot and
/// upstream connection are given back.
fn set_keepalive(socket: socket2::SockRef<'_>) -> std::io::Result<()> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(6);
    socket.set_tcp_keepalive(&keepalive)
}

/// A peer is let through to the handshake only if the listener allows its network and at least
/// one role could accept it.
fn admissible(state: &State, ip: IpAddr) -> bool {
    state.config.networks.allows(ip)
        && state
            .config
            .role_networks
            .as_ref()
            .is_none_or(|n| n.allows(ip))
}

/// `slot` is the connection's place under the connection limits: held until the connection
/// closes, or handed on to the hijacked stream it turns into.
async fn serve_connection(tcp: TcpStream, peer: SocketAddr, slot: Slot, serving: &Serving) {
    let state = &serving.state;
    let draining = &serving.lifecycle.draining;
    let acceptor = TlsAcceptor::from(state.tls.config.clone());
    let limits = state.config.limits;
    // Boxed, like the HTTP connection below: the task's own size is what an idle client costs.
    let handshake = Box::pin(acceptor.accept(Gulp::new(tcp)));
    crate::tls::forget_refused();
    let mut tls = match tokio::time::timeout(limits.handshake_timeout, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let refused = crate::tls::take_refused(&e);
            return handshake_refused(state, peer, &e.to_string(), refused);
        }
        Err(_) => return handshake_refused(state, peer, "handshake timed out", None),
    };
    // rustls queues at most this much outgoing TLS per connection (default 64 KiB). A 64 KiB
    // upstream body frame plus its chunk framing is just over 64 KiB: with the default, the
    // last bytes of every such frame went out as a separate 9-byte record and write.
    tls.get_mut().1.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
    let Some(identity) = client_identity(&tls, state, peer) else {
        return;
    };
    let role = identity::resolve_role(&state.config.identities, &identity, &state.config.policy);
    tracing::debug!(%peer, cn = identity.display_name(), role = role.as_deref().unwrap_or("-"), "client connected");
    let who = Who::of(peer, &identity, role.as_deref());
    let conn = Arc::new(Conn {
        peer,
        identity,
        who,
        upstream: serving.upstream.clone(),
        slot: std::sync::Mutex::new(Some(slot)),
    });
    let activity = Arc::new(Activity::default());
    let mut stream = Watched::new(
        WriteStall::new(Farewell::new(tls, activity.clone()), limits.stall_timeout),
        activity.clone(),
    );
    // A quiet client has one header timeout to send its next request head, counted from when it
    // went quiet: however often its connection is taken apart and rebuilt meanwhile, and
    // whatever TLS bytes without a request it sends.
    let mut head_deadline = Instant::now() + limits.header_read_timeout;
    let mut requests_then = activity.requests();
    // One hyper connection per burst of requests: while the client is quiet between requests
    // it holds no HTTP buffers, only its TLS state (see `idle`).
    loop {
        if !stream.has_replay() && !request_arriving(&mut stream, head_deadline, draining).await {
            if activity.requests() == 0 {
                no_request(state, &conn.who, "it sent no request");
            }
            // A TLS close_notify, so the client sees a clean close rather than a cut.
            let _ = tokio::time::timeout(CLOSE_NOTIFY_WAIT, stream.shutdown()).await;
            return;
        }
        let service = {
            let (state, conn, activity) = (state.clone(), conn.clone(), activity.clone());
            service_fn(move |req: Request<Incoming>| {
                let exchange = activity.started(Head {
                    has_body: !req.body().is_end_stream(),
                    closing: closes_after(&req),
                    upgrade: req.method() == Method::CONNECT
                        || req.headers().contains_key(hyper::header::UPGRADE),
                });
                let (state, conn, activity) = (state.clone(), conn.clone(), activity.clone());
                async move {
                    let resp = proxy::handle(&state, &conn, req).await;
                    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                        activity.upgraded();
                    }
                    Ok::<_, Infallible>(resp.map(|body| Tracked::new(body, exchange)))
                }
            })
        };
        // Boxed: the connection task keeps only the TLS state inline while the client is quiet.
        let mut http = Box::new(
            http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(MAX_READ_BUFFER)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades(),
        );
        // Ends when hyper is done, when the quiet client's head deadline passes, when draining,
        // or when the client has been quiet between requests for PARK_AFTER (a client's requests
        // usually come back to back; taking hyper apart after each would cost more than it
        // saves).
        let mut drain = std::pin::pin!(draining.cancelled());
        let mut park = std::pin::pin!(tokio::time::sleep(PARK_AFTER));
        let mut head_timeout = std::pin::pin!(tokio::time::sleep_until(head_deadline));
        let mut parking_after = None;
        let turn = poll_fn(|cx| {
            if let Poll::Ready(r) = Pin::new(&mut *http).poll(cx) {
                return Poll::Ready(Turn::Done(r));
            }
            if drain.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Turn::Drain);
            }
            let requests = activity.requests();
            if requests == requests_then && head_timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Turn::HeadDeadline);
            }
            if !activity.idle() {
                parking_after = None;
                return Poll::Pending;
            }
            // Quiet since the latest request: (re)start the wait whenever that request changes.
            if parking_after != Some(requests) {
                parking_after = Some(requests);
                park.as_mut().reset(Instant::now() + PARK_AFTER);
            }
            park.as_mut().poll(cx).map(|()| Turn::Park)
        })
        .await;
        match turn {
            Turn::Done(Ok(())) => {
                if activity.requests() == 0 {
                    no_request(state, &conn.who, "the client closed it");
                }
                return;
            }
            Turn::HeadDeadline => {
                if activity.requests() == 0 {
                    no_request(state, &conn.who, "it sent no request");
                }
                return;
            }
            Turn::Done(Err(e)) => {
                if e.is_parse() {
                    malformed_request(state, &conn.who, &e);
                } else if activity.requests() == 0 {
                    no_request(
                        state,
                        &conn.who,
                        &format!("its first request head did not complete: {e}"),
                    );
                }
                return tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            Turn::Drain => {
                Pin::new(&mut *http).graceful_shutdown();
                if let Err(e) = http.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            Turn::Park => {
                // Between requests: take the stream back and let hyper's buffers go.
                let Some(parts) = (*http).into_parts() else {
                    return;
                };
                stream = parts.io.into_inner();
                stream.replay(&parts.read_buf);
                if activity.requests() != requests_then {
                    requests_then = activity.requests();
                    head_deadline = Instant::now() + limits.header_read_timeout;
                }
            }
        }
    }
}

/// What ended one hyper connection's turn at serving a client connection.
enum Turn {
    /// hyper is done with the connection.
    Done(Result<(), hyper::Error>),
    /// A quiet client sent no request head by its deadline.
    HeadDeadline,
    /// The server is draining.
    Drain,
    /// The client has been quiet between requests: hyper is taken apart until it talks again.
    Park,
}

/// Whether hyper closes the connection after this request's exchange, as hyper decides it: an
/// HTTP/1.1 request saying `Connection: close`, an HTTP/1.0 one not saying `keep-alive`.
fn closes_after<B>(req: &Request<B>) -> bool {
    let says = |token: &str| {
        forward::connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case(token))
    };
    match req.version() {
        Version::HTTP_11 => says("close"),
        Version::HTTP_10 => says("close") || !says("keep-alive"),
        _ => true,
    }
}

/// The verified client certificate's identity; a refusal is audited when there is none.
fn client_identity(
    tls: &TlsStream<Gulp<TcpStream>>,
    state: &State,
    peer: SocketAddr,
) -> Option<Identity> {
    let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
    let Some(leaf) = chain.first() else {
        handshake_refused(state, peer, "no client certificate", None);
        return None;
    };
    match Identity::from_der(leaf) {
        Ok(mut id) => {
            if let Some(end) = crate::tls::intermediates_not_after(&chain[1..]) {
                id.not_after = id.not_after.min(end);
            }
            // With several bundles, a chain the verifier has forgotten since the handshake is
            // verified again; one that no longer verifies must not be left to the rules that
            // name no bundle.
            let Some(bundle) = state.tls.client_cas.which(chain) else {
                let why = "its chain no longer verifies to any tls.client_ca bundle";
                verified_peer_refused(state, peer, leaf, why.into());
                return None;
            };
            id.client_ca = state.config.tls.bundle_name(bundle).into_iter().collect();
            Some(id)
        }
        Err(e) => {
            verified_peer_refused(state, peer, leaf, e.to_string());
            None
        }
    }
}

/// A peer whose chain verified at the handshake but who is refused after it: a CA vouched for
/// it, so the refusal is recorded in full, with the certificate's fingerprint, never folded
/// into a tally.
fn verified_peer_refused(state: &State, peer: SocketAddr, leaf: &[u8], reason: String) {
    let mut r = handshake_denial(peer, reason);
    r.fingerprint = Some(crate::identity::fingerprint_of(leaf).into());
    state.audit.write(r);
}

/// The record of a refused handshake (rule `tls`).
fn handshake_denial(peer: SocketAddr, reason: String) -> Record {
    let mut r = Record::new("handshake", peer);
    r.decision = "deny";
    r.rule = Some("tls".into());
    r.reason = Some(reason);
    r
}

/// Waits, holding no HTTP buffers, until the client sends bytes. False when it does not by
/// `deadline`, closes, or the server is draining.
async fn request_arriving(
    stream: &mut Watched<WriteStall<Farewell<Gulp<TcpStream>>>>,
    deadline: Instant,
    draining: &CancellationToken,
) -> bool {
    // Bytes rustls already decrypted mean a request is here.
    let buffered = stream
        .get_mut()
        .get_mut()
        .get_mut()
        .get_mut()
        .1
        .process_new_packets()
        .map(|io| io.plaintext_bytes_to_read() > 0)
        .unwrap_or(true);
    if buffered {
        return true;
    }
    // So do ciphertext bytes read ahead below rustls: right after the handshake, a client whose
    // certificate flight filled rustls' read may have its first request waiting there.
    let gulp = stream.get_ref().get_ref().get_ref().get_ref().0;
    if gulp.buffered() > 0 {
        return true;
    }
    let readable = gulp.get_ref().readable();
    tokio::select! {
        ready = tokio::time::timeout_at(deadline, readable) => matches!(ready, Ok(Ok(()))),
        _ = draining.cancelled() => false,
    }
}

/// An authenticated connection that ends without a request still leaves a record: who
/// completed a handshake, from where, and that nothing was asked (a certificate being tried
/// out, a health check, a client that gave up).
fn no_request(state: &State, who: &Who, why: &str) {
    let mut r = Record::about("connection", who);
    r.decision = "allow";
    r.reason = Some(format!(
        "handshake completed; the connection closed without a request ({why})"
    ));
    state.audit.write(r);
}

/// A request hyper refused to read (malformed head, conflicting framing, a head over the size
/// limit): it never reached `proxy::handle`, and hyper answered it with an empty 4xx.
fn malformed_request(state: &State, who: &Who, error: &hyper::Error) {
    tracing::info!(peer = &*who.peer, %error, "request refused before routing: not readable HTTP/1.1");
    let mut r = Record::about("request", who);
    r.decision = "deny";
    r.rule = Some("http".into());
    r.reason = Some(format!(
        "not readable as HTTP/1.1, refused by the HTTP parser: {error}"
    ));
    // What hyper answered: 414 for a request target over its limit, 431 for a head over it,
    // nothing to an HTTP/2 preface, else 400.
    r.status = if error.is_parse_version_h2() {
        None
    } else if error.is_parse_too_large() {
        Some(if error.to_string().contains("URI too long") {
            414
        } else {
            431
        })
    } else {
        Some(400)
    };
    state.audit.write(r);
}

/// A refused handshake; `presented` is the client certificate the verifier refused, if it was
/// about one.
fn handshake_refused(
    state: &State,
    peer: SocketAddr,
    reason: &str,
    presented: Option<crate::tls::Refused>,
) {
    // Audited (tallied per source); the log line is for debugging, not for every peer.
    tracing::debug!(%peer, reason, "TLS handshake refused");
    let mut r = handshake_denial(peer, reason.to_string());
    r.presented = presented.map(Box::new);
    state.audit.write_unauthenticated(peer.ip(), r);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `run` relies on: on Linux an accepted socket inherits TCP_NODELAY and the keepalive
    /// settings of its listener.
    #[cfg(target_os = "linux")]
    #[test]
    fn accepted_sockets_inherit_nodelay_and_keepalive_from_the_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = socket2::SockRef::from(&listener);
        sock.set_tcp_nodelay(true).unwrap();
        set_keepalive(sock).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let accepted = socket2::SockRef::from(&accepted);
        assert!(accepted.tcp_nodelay().unwrap());
        assert!(accepted.keepalive().unwrap());
        assert_eq!(
            accepted.tcp_keepalive_time().unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            accepted.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(accepted.tcp_keepalive_retries().unwrap(), 6);
    }
}
