//! Hijacked streams: Docker's `Upgrade: tcp` (attach, exec start) and `Upgrade: h2c` (BuildKit
//! `/session`, `/grpc`) relayed as raw bytes both ways once both sides have switched protocols.
//!
//! It must not look inside the relayed bytes. A half-close from either side is passed on as a
//! write shutdown while the other direction keeps flowing (`echo hi | docker run -i … cat`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

/// The `Upgrade` header value when the request asks to switch protocols (`Connection` carries
/// the `upgrade` token). Only `tcp` and `h2c` are relayed; anything else is not an upgrade.
pub fn requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants =
        crate::forward::connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"));
    if !wants {
        return None;
    }
    let proto = headers.get(header::UPGRADE)?;
    let p = proto.to_str().ok()?.trim();
    (p.eq_ignore_ascii_case("tcp") || p.eq_ignore_ascii_case("h2c")).then(|| proto.clone())
}

/// How long the client may keep sending once dockerd has closed its side of the stream (the
/// container or exec ended): enough for bytes in flight, then the stream is closed. A client
/// that half-closes first is not rushed: dockerd's output (`echo hi | docker exec -i … cat`)
/// keeps flowing until dockerd ends it.
pub const CLIENT_GRACE_AFTER_UPSTREAM_CLOSE: Duration = Duration::from_secs(10);

/// Why a hijacked stream ended before both sides were done.
#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("dockgate is shutting down")]
    ShuttingDown,
    /// The client's certificate (or an intermediate it came with) expired while the stream
    /// ran: the stream is cut then, as a new request would be refused.
    #[error("cut when the client certificate expired")]
    CertificateExpired,
}

/// Waits for both upgrades, then copies bytes both ways until both directions are done, `stop`
/// fires (shutdown after the grace period) or `expiry` comes (the client certificate's end).
/// Returns the bytes copied each way.
pub async fn splice(
    client: OnUpgrade,
    upstream: OnUpgrade,
    stop: CancellationToken,
    expiry: tokio::time::Instant,
) -> Result<(u64, u64), SpliceError> {
    let (client, upstream) = tokio::try_join!(client, upstream).map_err(std::io::Error::other)?;
    let client = ClientSide::new(TokioIo::new(client), CLIENT_GRACE_AFTER_UPSTREAM_CLOSE);
    relay(client, TokioIo::new(upstream), stop, expiry).await
}

/// [`splice`] once both sides have switched protocols.
async fn relay<C, U>(
    mut client: C,
    mut upstream: U,
    stop: CancellationToken,
    expiry: tokio::time::Instant,
) -> Result<(u64, u64), SpliceError>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => Ok(r?),
        _ = stop.cancelled() => Err(SpliceError::ShuttingDown),
        _ = tokio::time::sleep_until(expiry) => Err(SpliceError::CertificateExpired),
    }
}

/// The client's side of a hijacked stream. `copy_bidirectional` shuts its write side down when
/// dockerd's side has ended; from then on, reading from the client ends (as at end of stream)
/// once `grace` has passed, which ends the splice.
struct ClientSide<T> {
    io: T,
    grace: Duration,
    read_until: Option<Pin<Box<Sleep>>>,
}

impl<T> ClientSide<T> {
    fn new(io: T, grace: Duration) -> ClientSide<T> {
        ClientSide {
            io,
            grace,
            read_until: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClientSide<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(deadline) = self.read_until.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClientSide<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.read_until.is_none() {
            let grace = self.grace;
            self.read_until = Some(Box::pin(tokio::time::sleep(grace)));
            // The read side is waiting on the client only; poll it again so that it waits on
            // the deadline too.
            cx.waker().wake_by_ref();
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Splice = tokio::task::JoinHandle<std::io::Result<(u64, u64)>>;

    /// A splice between a client and dockerd with a 10 s grace, as `splice` runs it; returns the
    /// client's and dockerd's ends, and the splice.
    fn spliced() -> (tokio::io::DuplexStream, tokio::io::DuplexStream, Splice) {
        let (client, client_peer) = tokio::io::duplex(1024);
        let (mut upstream, dockerd) = tokio::io::duplex(1024);
        let mut client = ClientSide::new(client, Duration::from_secs(10));
        let splice =
            tokio::spawn(
                async move { tokio::io::copy_bidirectional(&mut client, &mut upstream).await },
            );
        (client_peer, dockerd, splice)
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_left_open_after_dockerd_closed_is_closed_after_the_grace() {
        let started = tokio::time::Instant::now();
        let (mut client_peer, mut dockerd, splice) = spliced();
        dockerd.write_all(b"bye").await.unwrap();
        dockerd.shutdown().await.unwrap();
        let mut got = Vec::new();
        client_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
        // The client neither sends nor closes; the splice ends once the grace has passed.
        let copied = splice.await.unwrap().unwrap();
        assert_eq!(copied, (0, 3));
        assert!(started.elapsed() >= Duration::from_secs(10));
        // ...and dockerd sees its stream end too.
        let mut rest = Vec::new();
        dockerd.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_is_cut_when_the_client_certificate_expires() {
        let started = tokio::time::Instant::now();
        let (client, mut client_peer) = tokio::io::duplex(1024);
        let (upstream, mut dockerd) = tokio::io::duplex(1024);
        let client = ClientSide::new(client, Duration::from_secs(10));
        let expiry = started + Duration::from_secs(30);
        let splice = tokio::spawn(relay(client, upstream, CancellationToken::new(), expiry));
        // Both sides talk, and keep the stream open.
        client_peer.write_all(b"ls\n").await.unwrap();
        let mut buf = [0u8; 3];
        dockerd.read_exact(&mut buf).await.unwrap();
        dockerd.write_all(b"bin\n").await.unwrap();
        let mut out = [0u8; 4];
        client_peer.read_exact(&mut out).await.unwrap();
        let ended = splice.await.unwrap();
        assert!(
            matches!(ended, Err(SpliceError::CertificateExpired)),
            "{ended:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        // Both ends see their stream close.
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).await.unwrap();
        dockerd.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_closes_first_still_gets_all_of_dockerds_output() {
        let (mut client_peer, mut dockerd, splice) = spliced();
        client_peer.write_all(b"hi").await.unwrap();
        client_peer.shutdown().await.unwrap();
        let mut stdin = Vec::new();
        dockerd.read_to_end(&mut stdin).await.unwrap();
        assert_eq!(stdin, b"hi");
        // Long after the grace, dockerd's output still flows.
        tokio::time::sleep(Duration::from_secs(60)).await;
        dockerd.write_all(b"HI").await.unwrap();
        dockerd.shutdown().await.unwrap();
        let mut out = Vec::new();
        client_peer.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"HI");
        assert_eq!(splice.await.unwrap().unwrap(), (2, 2));
    }
}
