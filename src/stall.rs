//! A client that stops making progress: a write to it that waits too long (it stopped reading),
//! or a request body it started and stopped sending, fails, so the connection (or hijacked
//! stream) does not hold its slot, its dockerd connection and its buffers for ever.
//!
//! It must not touch the bytes, nor time anything but a transfer that is waiting on the client.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a transfer has waited on the client without progress.
struct Stall {
    limit: Duration,
    /// Allocated at the first stall and reused; `stalled` says whether it is running.
    deadline: Option<Pin<Box<Sleep>>>,
    stalled: bool,
}

impl Stall {
    fn new(limit: Duration) -> Stall {
        Stall {
            limit,
            deadline: None,
            stalled: false,
        }
    }

    /// The transfer moved: any stall is over.
    fn progressed(&mut self) {
        self.stalled = false;
    }

    /// The transfer is waiting on the client: starts a stall, or says whether it has now lasted
    /// `limit` (the task is woken when it does).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.stalled {
            self.stalled = true;
            let at = Instant::now() + self.limit;
            match self.deadline.as_mut() {
                Some(deadline) => deadline.as_mut().reset(at),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        self.deadline
            .as_mut()
            .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready())
    }
}

/// `S`, whose writes fail with `TimedOut` once one has waited `limit` without progress.
pub struct WriteStall<S> {
    inner: S,
    stall: Stall,
}

impl<S> WriteStall<S> {
    pub fn new(inner: S, limit: Duration) -> WriteStall<S> {
        WriteStall {
            inner,
            stall: Stall::new(limit),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Notes how a write went: progress ends a stall; waiting starts one or checks its deadline.
    fn judge<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stall.progressed();
            return polled;
        }
        if self.stall.expired(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client has read nothing for {}s (limits.stall_timeout_secs)",
                    self.stall.limit.as_secs()
                ),
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.judge(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.judge(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.judge(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.judge(cx, polled)
    }
}

/// A request body streamed to dockerd, which fails once the client has sent nothing of it for
/// `limit` while dockgate waited for more (a body dockerd is slow to take is not counted).
pub struct BodyStall {
    inner: hyper::body::Incoming,
    stall: Stall,
    /// The client certificate's expiry: the body fails there too ([`BodyStall::ending_at`]).
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Why a streamed request body was cut.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the request body: {0}")]
    Read(#[from] hyper::Error),
    #[error("the client sent no request body bytes for {0}s (limits.stall_timeout_secs)")]
    Stalled(u64),
    #[error("the client certificate expired while the request body was being sent")]
    CertificateExpired,
}

impl BodyStall {
    pub fn new(inner: hyper::body::Incoming, limit: Duration) -> BodyStall {
        BodyStall {
            inner,
            stall: Stall::new(limit),
            expiry: None,
        }
    }

    /// Fails the body at `expiry` (the client certificate's end), however it flows: an upload
    /// does not outlive the certificate that sent it.
    pub fn ending_at(mut self, expiry: tokio::time::Instant) -> BodyStall {
        self.expiry = Some(Box::pin(tokio::time::sleep_until(expiry)));
        self
    }
}

impl hyper::body::Body for BodyStall {
    type Data = bytes::Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(expiry) = this.expiry.as_mut() {
            if expiry.as_mut().poll(cx).is_ready() && !this.inner.is_end_stream() {
                return Poll::Ready(Some(Err(BodyError::CertificateExpired)));
            }
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.stall.progressed();
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::from)));
        }
        if this.stall.expired(cx) {
            return Poll::Ready(Some(Err(BodyError::Stalled(this.stall.limit.as_secs()))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_the_reader_never_takes_fails_after_the_limit() {
        let (client, _reader_that_never_reads) = tokio::io::duplex(1024);
        let mut w = WriteStall::new(client, Duration::from_secs(300));
        let started = Instant::now();
        let err = w.write_all(&vec![0u8; 64 * 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_never_cut() {
        let (client, mut reader) = tokio::io::duplex(1024);
        let mut w = WriteStall::new(client, Duration::from_secs(10));
        let slow = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 512];
            while got < 64 * 1024 {
                // Each read comes well within the limit; the whole transfer takes far longer.
                tokio::time::sleep(Duration::from_secs(5)).await;
                got += reader.read(&mut buf).await.unwrap();
            }
            got
        });
        w.write_all(&vec![0u8; 64 * 1024]).await.unwrap();
        assert_eq!(slow.await.unwrap(), 64 * 1024);
    }
}
