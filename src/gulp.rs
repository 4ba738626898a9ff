//! Bulk reads under TLS: rustls asks its socket for at most one record (16 KiB) per read, so an
//! upload (`docker build`, `docker cp`, image loads) cost one syscall per 16 KiB. [`Gulp`]
//! notices when a read filled what rustls asked for, reads up to [`GULP`] bytes at once while
//! data keeps coming, and hands them out to rustls from memory.
//!
//! It must not look at or change the bytes: it only changes how many arrive per syscall. The
//! buffer exists only while bytes are flowing: it is freed once the socket has been drained, so
//! a quiet connection holds none. Worst case: a connection whose reader stopped (a slow
//! upstream) holds up to [`GULP`] bytes here that would otherwise wait in the kernel.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

/// Most bytes read from the socket at once while a stream is flowing.
pub const GULP: usize = 64 * 1024;

/// A byte stream whose reads are coalesced while data keeps coming (see the module docs).
pub struct Gulp<S> {
    inner: S,
    /// Read ahead from `inner`; `buf[pos..]` is not yet handed out. No allocation unless the
    /// stream is flowing; read into without zeroing it first.
    buf: BytesMut,
    pos: usize,
    /// The latest read filled the caller's buffer: more is probably waiting in the socket.
    flowing: bool,
}

impl<S> Gulp<S> {
    pub fn new(inner: S) -> Self {
        Gulp {
            inner,
            buf: BytesMut::new(),
            pos: 0,
            flowing: false,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Bytes read ahead and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gulp<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.buffered() == 0 && (!this.flowing || out.remaining() >= GULP) {
            this.release();
            // Read straight into the caller's buffer.
            let want = out.remaining();
            let before = out.filled().len();
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
            let got = out.filled().len() - before;
            this.flowing = got == want;
            return Poll::Ready(Ok(()));
        }
        if this.buffered() == 0 {
            // Flowing: one large read for the next few records.
            this.buf.clear();
            this.pos = 0;
            this.buf.reserve(GULP);
            let polled = poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf);
            let got = match polled {
                Poll::Ready(Ok(got)) => got,
                Poll::Ready(Err(e)) => {
                    this.flowing = false;
                    this.release();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    this.flowing = false;
                    this.release();
                    return Poll::Pending;
                }
            };
            // A short read drained the socket: hand out what came, then read directly again.
            this.flowing = got >= GULP;
            if got == 0 {
                this.release();
                return Poll::Ready(Ok(()));
            }
        }
        let n = this.buffered().min(out.remaining());
        out.put_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        if this.buffered() == 0 && !this.flowing {
            this.release();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S> std::fmt::Debug for Gulp<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gulp")
            .field("buffered", &self.buffered())
            .field("flowing", &self.flowing)
            .finish_non_exhaustive()
    }
}

impl<S> Gulp<S> {
    /// Frees the read-ahead buffer (it is empty).
    fn release(&mut self) {
        self.buf = BytesMut::new();
        self.pos = 0;
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gulp<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Reads everything through a `Gulp` in `ask`-byte reads, as rustls does.
    async fn read_all(gulp: &mut Gulp<tokio::io::DuplexStream>, ask: usize) -> Vec<u8> {
        let mut all = Vec::new();
        let mut chunk = vec![0; ask];
        loop {
            let n = gulp.read(&mut chunk).await.unwrap();
            if n == 0 {
                return all;
            }
            all.extend_from_slice(&chunk[..n]);
        }
    }

    #[tokio::test]
    async fn every_byte_arrives_once_and_in_order() {
        let (mut tx, rx) = tokio::io::duplex(256 * 1024);
        let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                for piece in sent.chunks(7_000) {
                    tx.write_all(piece).await.unwrap();
                }
            })
        };
        let mut gulp = Gulp::new(rx);
        let got = read_all(&mut gulp, 16_406).await;
        writer.await.unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(got == sent);
    }

    #[tokio::test]
    async fn a_full_read_switches_to_large_reads_and_a_drained_socket_frees_the_buffer() {
        let (mut tx, rx) = tokio::io::duplex(GULP * 4);
        tx.write_all(&vec![1u8; GULP * 2]).await.unwrap();
        let mut gulp = Gulp::new(rx);
        let mut chunk = vec![0; 16_406];
        // Fills the caller's buffer: from now on the socket is read in large gulps.
        assert_eq!(gulp.read(&mut chunk).await.unwrap(), 16_406);
        assert_eq!(gulp.read(&mut chunk).await.unwrap(), 16_406);
        assert_eq!(gulp.buffered(), GULP - 16_406);
        // Drain what is left; the final short gulp leaves no buffer behind.
        let mut left = GULP * 2 - 2 * 16_406;
        while left > 0 {
            left -= gulp.read(&mut chunk).await.unwrap();
        }
        assert_eq!(gulp.buffered(), 0);
        assert_eq!(
            gulp.buf.capacity(),
            0,
            "a drained connection keeps no buffer"
        );
    }

    #[tokio::test]
    async fn a_large_direct_read_frees_a_kept_buffer_and_an_empty_read_reads_nothing() {
        let (mut tx, rx) = tokio::io::duplex(GULP * 4);
        tx.write_all(&vec![1u8; GULP * 3]).await.unwrap();
        let mut gulp = Gulp::new(rx);
        let mut chunk = vec![0; 16_406];
        assert_eq!(gulp.read(&mut chunk).await.unwrap(), 16_406);
        // One full gulp, handed out in two reads.
        let mut most = vec![0; GULP - 16_406];
        assert_eq!(gulp.read(&mut most).await.unwrap(), GULP - 16_406);
        assert_eq!(gulp.read(&mut chunk).await.unwrap(), 16_406);
        assert_eq!(gulp.buffered(), 0);
        assert!(
            gulp.buf.capacity() > 0,
            "a full gulp keeps its buffer for the next"
        );
        let mut big = vec![0; GULP];
        assert_eq!(gulp.read(&mut big).await.unwrap(), GULP);
        assert_eq!(gulp.buf.capacity(), 0, "a direct read lets the buffer go");
        assert_eq!(gulp.read(&mut []).await.unwrap(), 0);
        assert_eq!(gulp.buffered(), 0);
    }

    #[tokio::test]
    async fn small_reads_go_straight_through() {
        let (mut tx, rx) = tokio::io::duplex(4096);
        tx.write_all(b"GET /_ping HTTP/1.1\r\n\r\n").await.unwrap();
        drop(tx);
        let mut gulp = Gulp::new(rx);
        assert_eq!(read_all(&mut gulp, 16_406).await.len(), 23);
        assert_eq!(gulp.buf.capacity(), 0);
    }
}
