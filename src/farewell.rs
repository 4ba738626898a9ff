//! How a client connection ends, at the least cost to both sides.
//!
//! - **The last response goes out with the close_notify.** When a request asked to close the
//!   connection (`Connection: close`, HTTP/1.0) and its whole response has been handed to
//!   hyper, hyper's next step is to shut the connection down. The response's TLS records then
//!   stay in rustls' queue and leave in the same write as the close_notify, one segment instead
//!   of two. Anything else (every keep-alive exchange, a streamed body while it streams) is
//!   written as it comes.
//! - **No goodbye to a client that hung up.** A client that dropped its TCP connection without a
//!   close_notify (or reset it) reads nothing more: a close_notify written to it only makes its
//!   kernel answer with a reset, and `shutdown(2)` after that fails. Once a read has found the
//!   peer gone, the TLS shutdown is skipped and the socket is simply closed when dropped (as
//!   nginx does). A client that closes cleanly, with its own close_notify, still gets ours.
//!
//! It must not look at or change the bytes: only when they are handed to the socket.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

use crate::idle::Activity;

/// A client's TLS stream that ends as the module docs say.
pub struct Farewell<IO> {
    inner: TlsStream<IO>,
    activity: Arc<Activity>,
    peer_gone: bool,
}

impl<IO> Farewell<IO> {
    pub fn new(inner: TlsStream<IO>, activity: Arc<Activity>) -> Self {
        Farewell {
            inner,
            activity,
            peer_gone: false,
        }
    }

    pub fn get_ref(&self) -> &TlsStream<IO> {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut TlsStream<IO> {
        &mut self.inner
    }

    /// Whether writes now stay queued in rustls until the shutdown.
    fn holding(&self) -> bool {
        self.activity.last_response_out()
    }
}

/// Read errors after which nothing written reaches the peer's TLS stack: it closed its socket
/// mid-stream (no close_notify) or reset the connection.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Farewell<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Err(e)) = &polled {
            self.peer_gone |= peer_gone(e);
        }
        polled
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Farewell<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.holding() {
            // rustls takes what fits under its buffer limit; a full queue is written out below.
            let queued = self.inner.get_mut().1.writer().write(buf)?;
            if queued > 0 || buf.is_empty() {
                return Poll::Ready(Ok(queued));
            }
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.holding() {
            let queued = self.inner.get_mut().1.writer().write_vectored(bufs)?;
            if queued > 0 || bufs.iter().all(|b| b.is_empty()) {
                return Poll::Ready(Ok(queued));
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.holding() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.peer_gone {
            return Poll::Ready(Ok(()));
        }
        // Queues the close_notify after whatever is held and writes them out together.
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{Ca, Subject};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_rustls::client::TlsStream as ClientStream;

    /// A TLS connection over an in-memory pipe: the server side in a [`Farewell`], the client
    /// side bare.
    async fn pair(activity: Arc<Activity>) -> (Farewell<DuplexStream>, ClientStream<DuplexStream>) {
        let ca = Ca::generate("farewell test CA").unwrap();
        let server = ca.issue(&Subject::server_localhost()).unwrap();
        let provider = crate::tls::provider();
        let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(server.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(server.key.as_bytes()).unwrap(),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.pem.cert.as_bytes()).unwrap())
            .unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let accept = tokio_rustls::TlsAcceptor::from(Arc::new(server_config)).accept(server_io);
        let connect = tokio_rustls::TlsConnector::from(Arc::new(client_config))
            .connect(ServerName::try_from("localhost").unwrap(), client_io);
        let (server, client) = tokio::join!(accept, connect);
        (Farewell::new(server.unwrap(), activity), client.unwrap())
    }

    /// The client's read of whatever is waiting for it now (nothing within 50 ms: empty).
    async fn waiting(client: &mut ClientStream<DuplexStream>) -> Vec<u8> {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(std::time::Duration::from_millis(50), client.read(&mut buf))
            .await
        {
            Ok(n) => buf[..n.unwrap()].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_keep_alive_response_is_written_as_it_comes() {
        let activity = Arc::new(Activity::default());
        let (mut server, mut client) = pair(activity.clone()).await;
        drop(activity.started(false, false));
        server.write_all(b"answer").await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(waiting(&mut client).await, b"answer");
    }

    #[tokio::test]
    async fn the_last_response_leaves_with_the_close_notify() {
        let activity = Arc::new(Activity::default());
        let (mut server, mut client) = pair(activity.clone()).await;
        let exchange = activity.started(false, true);
        server.write_all(b"streamed ").await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(
            waiting(&mut client).await,
            b"streamed ",
            "while the response is still being handed over, it streams"
        );
        drop(exchange);
        server.write_all(b"last").await.unwrap();
        server.flush().await.unwrap();
        assert!(
            waiting(&mut client).await.is_empty(),
            "held until the shutdown"
        );
        server.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client
            .read_to_end(&mut rest)
            .await
            .expect("a clean close_notify, not a cut");
        assert_eq!(rest, b"last");
    }

    #[tokio::test]
    async fn a_stream_that_switched_protocols_is_never_held() {
        let activity = Arc::new(Activity::default());
        let (mut server, mut client) = pair(activity.clone()).await;
        // `Connection: close, Upgrade` and a 101: the connection carries a session now.
        drop(activity.started(false, true));
        activity.upgraded();
        server.write_all(b"session bytes").await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(waiting(&mut client).await, b"session bytes");
    }

    #[tokio::test]
    async fn a_client_that_hung_up_gets_no_shutdown() {
        let (mut server, client) = pair(Arc::new(Activity::default())).await;
        // The client's socket goes without a close_notify: the server reads a cut.
        drop(client);
        let read = server.read(&mut [0u8; 16]).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        // Writing a close_notify into the closed pipe would fail; there is none to write.
        server
            .shutdown()
            .await
            .expect("nothing sent to a peer that left");
    }

    #[tokio::test]
    async fn a_client_that_closed_cleanly_gets_a_close_notify() {
        let (mut server, mut client) = pair(Arc::new(Activity::default())).await;
        client.shutdown().await.unwrap();
        assert_eq!(server.read(&mut [0u8; 16]).await.unwrap(), 0);
        server.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client
            .read_to_end(&mut rest)
            .await
            .expect("the server's close_notify");
        assert!(rest.is_empty());
    }
}
