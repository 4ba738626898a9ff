//! Idle keep-alive connections: what lets the listener drop hyper's HTTP buffers (8 KiB read and
//! 8 KiB write) between requests and keep only the TLS state of a client that is not talking.
//!
//! [`Watched`] wraps the client's stream under hyper and notes what hyper last did with it;
//! [`Activity`] counts the exchanges in progress. Together they say when hyper is provably
//! between two requests: every exchange is over, the last request had no body (so hyper is not
//! skipping unread body bytes), the whole response has been flushed, no byte has reached hyper
//! since the last request started, and hyper is waiting for bytes that have not come. Only then
//! may the listener take the stream back from hyper (`into_parts`). Bytes hyper had read ahead
//! (a pipelined request's start) are replayed to the next hyper connection; a client trickling a
//! request head keeps its hyper connection, and hyper's header timeout, until it is done. A
//! request after which hyper closes the connection (`Connection: close`, HTTP/1.0 without
//! `keep-alive`) is never followed by parking.
//!
//! This leans on hyper 1.x `into_parts` returning the unread bytes and an empty write buffer in
//! that state (hyper is pinned by Cargo.lock; the e2e tests in `raw.rs` cover each rule).
//!
//! It must not decide or change what is read or written: it passes every byte through.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a request's head says about the exchange it starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Head {
    /// It came with a body (hyper may still be reading or skipping it).
    pub has_body: bool,
    /// hyper closes the connection after its response (`Connection: close`, HTTP/1.0 without
    /// `keep-alive`).
    pub closing: bool,
    /// It asked to switch protocols (an `Upgrade` header, `CONNECT`): whatever the answer,
    /// hyper then hands the stream on instead of shutting it down.
    pub upgrade: bool,
}

/// The exchanges of one client connection, shared by its stream wrapper and its service.
#[derive(Debug, Default)]
pub struct Activity {
    /// Requests whose response has not been fully handed to hyper yet.
    in_flight: AtomicUsize,
    /// Requests started on this connection so far.
    started: AtomicU64,
    /// hyper closes the connection after the latest request (see [`Head::closing`]), so it must
    /// not be taken apart and served on.
    closing: AtomicBool,
    /// The latest request came with a body (hyper may still be reading or skipping it).
    had_body: AtomicBool,
    /// The latest request asked to switch protocols.
    asked_upgrade: AtomicBool,
    /// A response switched protocols: the stream belongs to the upgrade.
    upgraded: AtomicBool,
    /// hyper's latest read found nothing to read.
    read_pending: AtomicBool,
    /// Bytes reached hyper since the latest request started: they may be the start of the next
    /// request, which hyper's own header timeout then governs.
    fresh_bytes: AtomicBool,
    /// Every byte hyper wrote has been flushed, and nothing was written since.
    flushed: AtomicBool,
}

impl Activity {
    /// A request has arrived; the returned guard ends the exchange when dropped (hyper drops the
    /// response body once it has written all of it, or the service future if it gives up).
    pub fn started(self: &Arc<Self>, head: Head) -> Exchange {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        self.had_body.store(head.has_body, Ordering::Relaxed);
        self.closing.store(head.closing, Ordering::Relaxed);
        self.asked_upgrade.store(head.upgrade, Ordering::Relaxed);
        self.fresh_bytes.store(false, Ordering::Relaxed);
        Exchange(self.clone())
    }

    /// How many requests have started on this connection.
    pub fn requests(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    pub fn upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    /// Whether what hyper writes now is the connection's last and its shutdown certainly comes
    /// next: the latest request asked to close, its whole response has been handed to hyper,
    /// and hyper has nothing else to wait for first. Not when that request had a body (hyper
    /// finishes reading or skipping it before it closes), nor when it asked to switch protocols
    /// (hyper then hands the stream on, 101 or not).
    pub fn last_response_out(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
            && !self.had_body.load(Ordering::Relaxed)
            && !self.asked_upgrade.load(Ordering::Relaxed)
            && !self.upgraded.load(Ordering::Relaxed)
    }

    /// Whether hyper is between two requests and waiting for the next one (see the module doc).
    pub fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && !self.had_body.load(Ordering::Relaxed)
            && !self.closing.load(Ordering::Relaxed)
            && !self.upgraded.load(Ordering::Relaxed)
            && self.read_pending.load(Ordering::Relaxed)
            && !self.fresh_bytes.load(Ordering::Relaxed)
            && self.flushed.load(Ordering::Relaxed)
    }
}

/// One exchange in progress; see [`Activity::started`].
#[derive(Debug)]
pub struct Exchange(Arc<Activity>);

impl Drop for Exchange {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client's stream as hyper sees it: bytes hyper had read before it was taken back come
/// first, and every read, write and flush is noted in the connection's [`Activity`].
pub struct Watched<S> {
    inner: S,
    replay: Bytes,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched {
            inner,
            replay: Bytes::new(),
            activity,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Bytes a previous hyper connection read but did not use; the next one reads them first.
    /// They are copied out: `bytes` shares hyper's whole read buffer, which is to go.
    pub fn replay(&mut self, bytes: &[u8]) {
        self.replay = Bytes::copy_from_slice(bytes);
    }

    pub fn has_replay(&self) -> bool {
        !self.replay.is_empty()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.advance(n);
            if this.replay.is_empty() {
                this.replay = Bytes::new();
            }
            this.activity.read_pending.store(false, Ordering::Relaxed);
            this.activity.fresh_bytes.store(true, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let activity = &this.activity;
        activity
            .read_pending
            .store(polled.is_pending(), Ordering::Relaxed);
        if buf.filled().len() > before {
            activity.fresh_bytes.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity.flushed.store(false, Ordering::Relaxed);
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity.flushed.store(false, Ordering::Relaxed);
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.activity
            .flushed
            .store(matches!(polled, Poll::Ready(Ok(()))), Ordering::Relaxed);
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity.flushed.store(false, Ordering::Relaxed);
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// A response body that ends its [`Exchange`] when hyper drops it.
pub struct Tracked<B> {
    body: B,
    _exchange: Exchange,
}

impl<B> Tracked<B> {
    pub fn new(body: B, exchange: Exchange) -> Self {
        Tracked {
            body,
            _exchange: exchange,
        }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An activity after one bodiless exchange, flushed, with hyper waiting for bytes.
    fn quiet() -> Arc<Activity> {
        let a = Arc::new(Activity::default());
        drop(a.started(Head::default()));
        a.read_pending.store(true, Ordering::Relaxed);
        a.flushed.store(true, Ordering::Relaxed);
        a
    }

    #[test]
    fn idle_only_between_requests_with_everything_flushed_and_nothing_read_ahead() {
        assert!(quiet().idle());
        assert!(
            !Activity::default().idle(),
            "nothing flushed yet: before any response"
        );

        let a = quiet();
        let exchange = a.started(Head::default());
        a.read_pending.store(true, Ordering::Relaxed);
        assert!(!a.idle(), "an exchange in progress");
        drop(exchange);
        assert!(a.idle());

        let a = quiet();
        drop(a.started(Head {
            has_body: true,
            ..Head::default()
        }));
        assert!(
            !a.idle(),
            "hyper may still be reading the last request's body"
        );

        let a = quiet();
        a.upgraded();
        assert!(!a.idle(), "the stream belongs to an upgrade");

        let a = quiet();
        a.fresh_bytes.store(true, Ordering::Relaxed);
        assert!(!a.idle(), "bytes of the next request have arrived");

        let a = quiet();
        a.flushed.store(false, Ordering::Relaxed);
        assert!(!a.idle(), "response bytes not flushed");

        let a = quiet();
        a.read_pending.store(false, Ordering::Relaxed);
        assert!(!a.idle(), "hyper is not waiting for bytes");
    }
}
