//! The load generator: mTLS (or plain Unix-socket) HTTP/1.1 clients, keep-alive and
//! connection-per-request loops, streaming in both directions, and idle connections.
//!
//! It must not know which front it drives: a [`Target`] is an address and a client identity.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinSet;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Where requests go.
#[derive(Clone)]
pub enum Target {
    /// Plain HTTP over a Unix socket (the bare-socket baseline).
    Unix(PathBuf),
    /// HTTP over TLS 1.3 with a client certificate; with several, each new connection takes
    /// the next one (round robin).
    Tls {
        addr: SocketAddr,
        connectors: Arc<[TlsConnector]>,
        next: Arc<std::sync::atomic::AtomicUsize>,
    },
}

/// A TLS 1.3 client configuration with a client certificate, X25519 only and no session
/// resumption, so every new connection is the same full handshake whatever the front.
///
/// Like wrk and h2load, it does not verify the server's certificate chain or its
/// CertificateVerify signature: that is the load generator's own work (two P-256 verifies), it
/// would share the CPUs with the front under test, and it tells nothing about the front. The
/// front's side is untouched: it signs, does the key exchange and verifies the client chain.
pub fn client_config(cert: &str, key: &str) -> Result<Arc<ClientConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("client certificate PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| format!("client key PEM: {e}"))?;
    let provider = rustls::crypto::CryptoProvider {
        // What OpenSSL 3.0 (nginx, HAProxy) can do: no post-quantum hybrid.
        kx_groups: vec![rustls::crypto::aws_lc_rs::kx_group::X25519],
        ..(*dockgate::tls::provider()).clone()
    };
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unverified(schemes)))
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("client certificate: {e}"))?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts any server certificate (see [`client_config`]).
#[derive(Debug)]
struct Unverified(Vec<rustls::SignatureScheme>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.clone()
    }
}

impl Target {
    pub fn tls(addr: SocketAddr, config: Arc<ClientConfig>) -> Target {
        Target::tls_rotating(addr, vec![config])
    }

    /// A target whose new connections present `configs`' client certificates in turn.
    pub fn tls_rotating(addr: SocketAddr, configs: Vec<Arc<ClientConfig>>) -> Target {
        assert!(
            !configs.is_empty(),
            "a TLS target needs a client configuration"
        );
        Target::Tls {
            addr,
            connectors: configs.into_iter().map(TlsConnector::from).collect(),
            next: Arc::default(),
        }
    }

    pub async fn connect(&self, buf_size: usize) -> io::Result<Client> {
        let stream = match self {
            Target::Unix(path) => Stream::Unix(UnixStream::connect(path).await?),
            Target::Tls {
                addr,
                connectors,
                next,
            } => {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let connector = &connectors[n % connectors.len()];
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let name = ServerName::try_from("localhost").expect("static name");
                Stream::Tls(Box::new(connector.connect(name, tcp).await?))
            }
        };
        Ok(Client {
            stream,
            buf: vec![0; buf_size].into_boxed_slice(),
            pos: 0,
            end: 0,
        })
    }
}

/// The negotiated cipher suite and key exchange of a fresh connection, for the report.
pub async fn negotiated(target: &Target) -> io::Result<String> {
    let client = target.connect(4096).await?;
    Ok(match &client.stream {
        Stream::Unix(_) => "plain".into(),
        Stream::Tls(tls) => {
            let (_, conn) = tls.get_ref();
            let suite = conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default();
            let kx = conn
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))
                .unwrap_or_default();
            format!("{suite}/{kx}")
        }
    })
}

pub enum Stream {
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, b),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One HTTP/1.1 client connection with its own read buffer.
pub struct Client {
    stream: Stream,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

/// What a response said, with its body counted and discarded.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body_bytes: u64,
    /// The first bytes of the body, for error messages.
    pub body_start: String,
}

enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl Client {
    /// Sends prebuilt request bytes (head and any small body) and reads the whole response.
    pub async fn request(&mut self, raw: &[u8]) -> io::Result<Response> {
        self.stream.write_all(raw).await?;
        self.stream.flush().await?;
        self.read_response().await
    }

    /// Sends `head` (which must carry `Content-Length: len`), then `len` bytes of filler.
    pub async fn upload(&mut self, head: &[u8], len: u64, chunk: &[u8]) -> io::Result<Response> {
        self.stream.write_all(head).await?;
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            self.stream.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        self.stream.flush().await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            if self.end == self.buf.len() {
                return Err(io::Error::other(
                    "response line or head larger than the buffer",
                ));
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head_len = loop {
            if let Some(i) = find(&self.buf[self.pos..self.end], b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = &self.buf[self.pos..self.pos + head_len];
        let (status, framing) = parse_head(head)?;
        self.pos += head_len;
        let mut body_start = Vec::new();
        let body_bytes = match framing {
            _ if status == 204 || status == 304 || (100..200).contains(&status) => 0,
            Framing::Length(n) => self.skip(n, &mut body_start).await?,
            Framing::Chunked => self.skip_chunked(&mut body_start).await?,
            Framing::UntilClose => self.skip(u64::MAX, &mut body_start).await?,
        };
        Ok(Response {
            status,
            body_bytes,
            body_start: String::from_utf8_lossy(&body_start).into_owned(),
        })
    }

    /// Discards up to `n` body bytes (to EOF when `n` is `u64::MAX`); returns how many.
    async fn skip(&mut self, n: u64, start: &mut Vec<u8>) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            if self.pos == self.end && self.fill().await? == 0 {
                if n == u64::MAX {
                    break;
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let take = ((self.end - self.pos) as u64).min(left) as usize;
            if start.len() < 200 {
                let k = take.min(200 - start.len());
                start.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            }
            self.pos += take;
            left -= take as u64;
        }
        Ok(n - left)
    }

    async fn line(&mut self) -> io::Result<(usize, usize)> {
        loop {
            if let Some(i) = find(&self.buf[self.pos..self.end], b"\r\n") {
                let l = (self.pos, self.pos + i);
                self.pos += i + 2;
                return Ok(l);
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn skip_chunked(&mut self, start: &mut Vec<u8>) -> io::Result<u64> {
        let mut total = 0;
        loop {
            let (a, b) = self.line().await?;
            let size_text = &self.buf[a..b];
            let size_text = size_text.split(|&c| c == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size_text)
                .ok()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| io::Error::other("bad chunk size line"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let (a, b) = self.line().await?;
                    if a == b {
                        return Ok(total);
                    }
                }
            }
            total += self.skip(size, start).await?;
            let (a, b) = self.line().await?;
            if a != b {
                return Err(io::Error::other("chunk not followed by CRLF"));
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &[u8]) -> io::Result<(u16, Framing)> {
    let text = std::str::from_utf8(head).map_err(|_| io::Error::other("non-UTF-8 head"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut framing = Framing::UntilClose;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            if let (Framing::UntilClose, Ok(n)) = (&framing, value.parse()) {
                framing = Framing::Length(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked;
        }
    }
    Ok((status, framing))
}

/// A GET (or other body-less) request, keep-alive.
pub fn get(method: &str, path: &str, close: bool) -> Vec<u8> {
    let conn = if close { "Connection: close\r\n" } else { "" };
    format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockgate-bench\r\n{conn}\r\n")
        .into_bytes()
}

/// A request with a JSON body, the way the docker CLI sends it.
pub fn post_json(path: &str, body: &str) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    r
}

/// The head of a request whose body (`len` bytes) follows separately.
pub fn upload_head(method: &str, path: &str, len: u64) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// Throughput and latency of one run.
#[derive(Debug, Default)]
pub struct Load {
    pub per_sec: f64,
    /// Latencies, sorted, in nanoseconds.
    pub latencies: Vec<u64>,
    /// When the timed run started and when its last request ended.
    pub window: Option<(Instant, Instant)>,
}

impl Load {
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i] as f64 / 1000.0
    }
}

fn check(resp: &Response, want: u16, what: &str) -> Result<(), String> {
    if resp.status == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: status {} (wanted {want}): {}",
            resp.status,
            resp.body_start.trim()
        ))
    }
}

/// Threads the request loops are spread over, each with a single-threaded runtime: with no work
/// stealing the load generator's own cost per request is small, and the same whatever the front.
const LOAD_THREADS: usize = 2;

/// Runs `load(share, start)` on [`LOAD_THREADS`] threads, `conns` split between them, and
/// merges what they measured. Each thread waits at `start` (after warming up) so the timed
/// windows line up; the rate is all requests over the span from the first start to the last end.
async fn spread<F, Fut>(conns: usize, load: F) -> Result<Load, String>
where
    F: Fn(usize, Arc<tokio::sync::Barrier>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Load, String>>,
{
    let shares: Vec<usize> = (0..LOAD_THREADS)
        .map(|t| conns / LOAD_THREADS + usize::from(t < conns % LOAD_THREADS))
        .filter(|&share| share > 0)
        .collect();
    let start = Arc::new(tokio::sync::Barrier::new(shares.len()));
    let mut threads = Vec::new();
    for share in shares {
        let (load, start) = (load.clone(), start.clone());
        threads.push(tokio::task::spawn_blocking(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("load thread runtime: {e}"))?
                .block_on(load(share, start))
        }));
    }
    let mut merged = Load::default();
    for t in threads {
        let part = t.await.map_err(|e| e.to_string())??;
        merged.window = match (merged.window, part.window) {
            (Some((s0, e0)), Some((s1, e1))) => Some((s0.min(s1), e0.max(e1))),
            (a, b) => a.or(b),
        };
        merged.latencies.extend(part.latencies);
    }
    merged.latencies.sort_unstable();
    if let Some((s, e)) = merged.window {
        merged.per_sec = merged.latencies.len() as f64 / (e - s).as_secs_f64().max(1e-9);
    }
    Ok(merged)
}

/// `conns` keep-alive connections, each sending `raw` back to back for `dur`.
pub async fn keepalive(
    target: &Target,
    conns: usize,
    raw: Arc<Vec<u8>>,
    want: u16,
    dur: Duration,
) -> Result<Load, String> {
    let target = target.clone();
    spread(conns, move |n, start| {
        let (target, raw) = (target.clone(), raw.clone());
        async move { keepalive_here(&target, n, raw, want, dur, &start).await }
    })
    .await
}

/// [`keepalive`] on the current runtime.
async fn keepalive_here(
    target: &Target,
    conns: usize,
    raw: Arc<Vec<u8>>,
    want: u16,
    dur: Duration,
    start: &tokio::sync::Barrier,
) -> Result<Load, String> {
    // Connect and warm every connection first: handshakes are not part of this measurement.
    let mut set = JoinSet::new();
    for _ in 0..conns {
        let (target, raw) = (target.clone(), raw.clone());
        set.spawn(async move {
            let mut c = target
                .connect(16 * 1024)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let r = c.request(&raw).await.map_err(|e| format!("warm-up: {e}"))?;
            check(&r, want, "warm-up")?;
            Ok::<_, String>(c)
        });
    }
    let clients = join_all(set).await?;
    start.wait().await;
    let start = Instant::now();
    let deadline = start + dur;
    let mut set = JoinSet::new();
    for mut c in clients {
        let raw = raw.clone();
        set.spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut now = Instant::now();
            while now < deadline {
                let r = c.request(&raw).await.map_err(|e| format!("request: {e}"))?;
                check(&r, want, "request")?;
                let t = Instant::now();
                lat.push((t - now).as_nanos() as u64);
                now = t;
            }
            Ok::<_, String>((lat, now))
        });
    }
    finish(set, start).await
}

/// `workers` loops of: new connection (a full TLS handshake), one request, close.
pub async fn per_connection(
    target: &Target,
    workers: usize,
    raw: Arc<Vec<u8>>,
    dur: Duration,
) -> Result<Load, String> {
    let target = target.clone();
    spread(workers, move |n, start| {
        let (target, raw) = (target.clone(), raw.clone());
        async move { per_connection_here(&target, n, raw, dur, &start).await }
    })
    .await
}

/// [`per_connection`] on the current runtime.
async fn per_connection_here(
    target: &Target,
    workers: usize,
    raw: Arc<Vec<u8>>,
    dur: Duration,
    start: &tokio::sync::Barrier,
) -> Result<Load, String> {
    start.wait().await;
    let start = Instant::now();
    let deadline = start + dur;
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (target, raw) = (target.clone(), raw.clone());
        set.spawn(async move {
            let mut lat = Vec::with_capacity(1 << 14);
            let mut now = Instant::now();
            while now < deadline {
                let mut c = target
                    .connect(4096)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let r = c.request(&raw).await.map_err(|e| format!("request: {e}"))?;
                check(&r, 200, "request")?;
                drop(c);
                let t = Instant::now();
                lat.push((t - now).as_nanos() as u64);
                now = t;
            }
            Ok::<_, String>((lat, now))
        });
    }
    finish(set, start).await
}

/// Downloads `total` bytes over `conns` connections (split evenly); returns MB/s (10^6).
pub async fn download(
    target: &Target,
    conns: usize,
    path: &str,
    total: u64,
) -> Result<f64, String> {
    let each = total / conns as u64;
    let raw = Arc::new(get("GET", &format!("{path}?bytes={each}"), false));
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(
            target
                .connect(256 * 1024)
                .await
                .map_err(|e| format!("connect: {e}"))?,
        );
    }
    let start = Instant::now();
    let mut set = JoinSet::new();
    for mut c in clients {
        let raw = raw.clone();
        set.spawn(async move {
            let r = c
                .request(&raw)
                .await
                .map_err(|e| format!("download: {e}"))?;
            check(&r, 200, "download")?;
            if r.body_bytes != each {
                return Err(format!("download: got {} of {each} bytes", r.body_bytes));
            }
            Ok(())
        });
    }
    join_all(set).await?;
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// Uploads `total` bytes over `conns` connections (split evenly); returns MB/s (10^6).
pub async fn upload(
    target: &Target,
    conns: usize,
    method: &str,
    path: &str,
    total: u64,
) -> Result<f64, String> {
    let each = total / conns as u64;
    let head = Arc::new(upload_head(method, path, each));
    let chunk: Arc<[u8]> = vec![0x5a; 64 * 1024].into();
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(
            target
                .connect(16 * 1024)
                .await
                .map_err(|e| format!("connect: {e}"))?,
        );
    }
    let start = Instant::now();
    let mut set = JoinSet::new();
    for mut c in clients {
        let (head, chunk) = (head.clone(), chunk.clone());
        set.spawn(async move {
            let r = c
                .upload(&head, each, &chunk)
                .await
                .map_err(|e| format!("upload: {e}"))?;
            check(&r, 200, "upload")?;
            let counted: u64 = r.body_start.trim().parse().unwrap_or(0);
            if counted != each {
                return Err(format!(
                    "upload: upstream counted {counted} of {each} bytes"
                ));
            }
            Ok(())
        });
    }
    join_all(set).await?;
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// Opens `n` connections (each completes one request, then stays idle) and returns them.
pub async fn idle(target: &Target, n: usize, raw: Arc<Vec<u8>>) -> Result<Vec<Client>, String> {
    let mut held = Vec::with_capacity(n);
    let mut set = JoinSet::new();
    let parallel = 32;
    let mut started = 0;
    while held.len() < n {
        while started < n && set.len() < parallel {
            let (target, raw) = (target.clone(), raw.clone());
            set.spawn(async move {
                let mut c = target
                    .connect(1024)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let r = c.request(&raw).await.map_err(|e| format!("request: {e}"))?;
                check(&r, 200, "idle request")?;
                Ok::<_, String>(c)
            });
            started += 1;
        }
        match set.join_next().await {
            Some(r) => held.push(r.map_err(|e| e.to_string())??),
            None => break,
        }
    }
    Ok(held)
}

async fn join_all<T: 'static>(mut set: JoinSet<Result<T, String>>) -> Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(r) = set.join_next().await {
        out.push(r.map_err(|e| e.to_string())??);
    }
    Ok(out)
}

async fn finish(
    set: JoinSet<Result<(Vec<u64>, Instant), String>>,
    start: Instant,
) -> Result<Load, String> {
    let parts = join_all(set).await?;
    let end = parts.iter().map(|p| p.1).max().unwrap_or(start);
    let mut latencies: Vec<u64> = parts.into_iter().flat_map(|p| p.0).collect();
    latencies.sort_unstable();
    let secs = (end - start).as_secs_f64().max(1e-9);
    Ok(Load {
        per_sec: latencies.len() as f64 / secs,
        latencies,
        window: Some((start, end)),
    })
}
