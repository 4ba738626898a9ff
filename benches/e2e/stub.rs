//! A fast stub of the Docker Engine API on a Unix socket, so the benchmark measures the front and
//! not dockerd: `/_ping`, `/version`, `POST /containers/create`, a streaming download
//! (`GET /containers/{id}/export?bytes=N`) and an upload sink (`PUT /containers/{id}/archive`,
//! answering with the number of bytes it read).
//!
//! It must not judge requests: every front in front of it is what is being measured.

use std::convert::Infallible;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

const VERSION_JSON: &str = r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1","Details":{"ApiVersion":"1.41","Arch":"amd64","BuildTime":"2024-06-14T07:58:23.000000000+00:00","Experimental":"false","GitCommit":"5d6db84","GoVersion":"go1.19.8","KernelVersion":"6.1.0-28-amd64","MinAPIVersion":"1.12","Os":"linux"}},{"Name":"containerd","Version":"1.6.20~ds1","Details":{"GitCommit":"1.6.20~ds1-1+b1"}},{"Name":"runc","Version":"1.1.5+ds1","Details":{"GitCommit":"1.1.5+ds1-1+deb12u1"}},{"Name":"docker-init","Version":"0.19.0","Details":{"GitCommit":""}}],"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","Os":"linux","Arch":"amd64","KernelVersion":"6.1.0-28-amd64","BuildTime":"2024-06-14T07:58:23.000000000+00:00"}
"#;

const CREATED: &str =
    "{\"Id\":\"4f1c3a9e2b7d6c5a8e0f1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6\",\"Warnings\":[]}\n";

type StubBody = Either<Full<Bytes>, Repeat>;

/// Serves the stub API on `path` from a single-threaded runtime of its own (on its own thread),
/// forever. One thread, no work stealing: the stub's cost per request stays small.
pub fn spawn(path: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let std_listener = std::os::unix::net::UnixListener::bind(path)?;
    std_listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("stub-runtime".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match UnixListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => return eprintln!("stub: {e}"),
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service_fn(serve))
                            .await;
                    });
                }
            })
        })?;
    Ok(())
}

async fn serve(req: Request<Incoming>) -> Result<Response<StubBody>, Infallible> {
    let path = strip_version(req.uri().path());
    let method = req.method().as_str();
    Ok(match (method, path) {
        ("GET" | "HEAD", "/_ping") => ping(),
        ("GET", "/version") => json(StatusCode::OK, VERSION_JSON),
        ("GET", "/containers/json") => json(StatusCode::OK, "[]\n"),
        ("POST", "/containers/create") => {
            // Read the whole body, as dockerd does before answering.
            let _ = req.into_body().collect().await;
            json(StatusCode::CREATED, CREATED)
        }
        ("GET", p) if p.starts_with("/containers/") && p.ends_with("/export") => {
            let n = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("bytes=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut r = Response::new(Either::Right(Repeat::new(n)));
            r.headers_mut()
                .insert("content-type", "application/x-tar".parse().expect("static"));
            r
        }
        ("PUT", p) if p.starts_with("/containers/") && p.ends_with("/archive") => {
            let mut body = req.into_body();
            let mut n: u64 = 0;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => n += f.data_ref().map_or(0, |d| d.len() as u64),
                    Err(_) => break,
                }
            }
            Response::new(Either::Left(Full::new(Bytes::from(n.to_string()))))
        }
        _ => json(StatusCode::NOT_FOUND, "{\"message\":\"page not found\"}\n"),
    })
}

fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(i) = rest.find('/') {
            if rest[..i].bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return &rest[i..];
            }
        }
    }
    path
}

/// dockerd's `/_ping` answer, headers included.
fn ping() -> Response<StubBody> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from_static(b"OK"))));
    let h = r.headers_mut();
    for (k, v) in [
        ("api-version", "1.41"),
        ("builder-version", "2"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
        ("content-type", "text/plain; charset=utf-8"),
        ("docker-experimental", "false"),
        ("ostype", "linux"),
        ("pragma", "no-cache"),
        ("server", "Docker/20.10.24+dfsg1 (linux)"),
    ] {
        h.insert(k, v.parse().expect("static header"));
    }
    r
}

fn json(status: StatusCode, body: &'static str) -> Response<StubBody> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from_static(body.as_bytes()))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("content-type", "application/json".parse().expect("static"));
    h.insert("api-version", "1.41".parse().expect("static"));
    h.insert(
        "server",
        "Docker/20.10.24+dfsg1 (linux)".parse().expect("static"),
    );
    r
}

/// `n` bytes of filler in 64 KiB frames, sent chunked (like dockerd's export stream).
pub struct Repeat {
    left: u64,
    chunk: Bytes,
}

impl Repeat {
    fn new(n: u64) -> Repeat {
        Repeat {
            left: n,
            chunk: Bytes::from(vec![0x5a; 64 * 1024]),
        }
    }
}

impl Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let n = this.left.min(this.chunk.len() as u64) as usize;
        this.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(this.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown length on purpose: dockerd streams exports chunked.
        SizeHint::default()
    }
}
