//! The last response of a connection leaves with its close_notify. When a request made hyper
//! close the connection after it (`Connection: close`, HTTP/1.0 without `keep-alive`) and
//! hyper has its whole response,
//! hyper's next step is to shut the connection down: the response's TLS records then stay in
//! rustls' queue and leave in the same write as the close_notify, one segment instead of two
//! (a client that opens a connection per request costs one write less). Only when nothing can
//! come between that response and the shutdown ([`Activity::last_response_out`]); anything
//! else (every keep-alive exchange, a streamed body while it streams, a request hyper still
//! reads a body of, an upgrade) is written as it comes. Should hyper read from the stream after
//! all, whatever is held is written out first.
//!
//! It must not look at or change the bytes: only when they are handed to the socket.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

use crate::idle::Activity;

/// A client's TLS stream whose last response waits for the close_notify (see the module docs).
pub struct Farewell<IO> {
    inner: TlsStream<IO>,
    activity: Arc<Activity>,
    /// Bytes were left in rustls' queue for the shutdown.
    held: bool,
}

impl<IO> Farewell<IO> {
    pub fn new(inner: TlsStream<IO>, activity: Arc<Activity>) -> Self {
        Farewell {
            inner,
            activity,
            held: false,
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

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Farewell<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // hyper reading again means the connection goes on after all: what was held goes out.
        if self.held && Pin::new(&mut self.inner).poll_flush(cx)?.is_ready() {
            self.held = false;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
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
                self.held = true;
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
                self.held = true;
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
            // Whatever is queued now (also what an earlier write left there) waits.
            self.held = true;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Queues the close_notify after whatever is held and writes them out together.
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{Ca, Subject};
    use crate::idle::Head;
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

    fn closing() -> Head {
        Head {
            closing: true,
            ..Head::default()
        }
    }

    /// Everything the client reads until the server's close_notify; an error if the stream
    /// was cut without one.
    async fn rest(client: &mut ClientStream<DuplexStream>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.map(|_| out)
    }

    #[tokio::test]
    async fn a_keep_alive_response_is_written_as_it_comes() {
        let activity = Arc::new(Activity::default());
        let (mut server, mut client) = pair(activity.clone()).await;
        drop(activity.started(Head::default()));
        server.write_all(b"answer").await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(waiting(&mut client).await, b"answer");
    }

    #[tokio::test]
    async fn the_last_response_leaves_with_the_close_notify() {
        let activity = Arc::new(Activity::default());
        let (mut server, mut client) = pair(activity.clone()).await;
        let exchange = activity.started(closing());
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
        assert_eq!(
            rest(&mut client).await.expect("a clean close_notify"),
            b"last"
        );
    }

    #[tokio::test]
    async fn a_read_after_a_held_response_writes_it_out_first() {
        // Were hyper to go on with the connection after all, the client must not wait for it.
        let activity = Arc::new(Activity::default());
        let (mut server, mut client) = pair(activity.clone()).await;
        drop(activity.started(closing()));
        server.write_all(b"held").await.unwrap();
        server.flush().await.unwrap();
        assert!(waiting(&mut client).await.is_empty());
        let quiet = std::time::Duration::from_millis(50);
        assert!(tokio::time::timeout(quiet, server.read(&mut [0u8; 8]))
            .await
            .is_err());
        assert_eq!(waiting(&mut client).await, b"held");
    }

    #[tokio::test]
    async fn a_last_response_larger_than_the_tls_queue_arrives_whole_and_in_order() {
        let activity = Arc::new(Activity::default());
        let (mut server, mut client) = pair(activity.clone()).await;
        server.get_mut().get_mut().1.set_buffer_limit(Some(1000));
        drop(activity.started(closing()));
        let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let reading = tokio::spawn(async move { rest(&mut client).await });
        server.write_all(&body).await.unwrap();
        server.flush().await.unwrap();
        server.shutdown().await.unwrap();
        assert!(reading.await.unwrap().expect("a clean close_notify") == body);
    }

    #[tokio::test]
    async fn nothing_is_held_when_something_may_come_before_the_shutdown() {
        for (head, why) in [
            (
                Head {
                    has_body: true,
                    ..closing()
                },
                "hyper reads or skips the request body before it closes",
            ),
            (
                Head {
                    upgrade: true,
                    ..closing()
                },
                "hyper hands an upgrade request's stream on, whatever the answer",
            ),
        ] {
            let activity = Arc::new(Activity::default());
            let (mut server, mut client) = pair(activity.clone()).await;
            drop(activity.started(head));
            server.write_all(b"answer").await.unwrap();
            server.flush().await.unwrap();
            assert_eq!(waiting(&mut client).await, b"answer", "{why}");
        }
        // `Connection: close, Upgrade` answered 101: the stream carries a session now.
        let activity = Arc::new(Activity::default());
        let (mut server, mut client) = pair(activity.clone()).await;
        drop(activity.started(closing()));
        activity.upgraded();
        server.write_all(b"session bytes").await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(waiting(&mut client).await, b"session bytes");
    }
}
