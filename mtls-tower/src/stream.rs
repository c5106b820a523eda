//! An accepted, authenticated mTLS connection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use mtls_core::PeerIdentity;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A server-side TLS connection whose client was authenticated by its
/// X.509-SVID (and, for a resumed session, verified again).
///
/// It reads and writes like the underlying stream, inside a `tracing` span
/// carrying the peer's SPIFFE ID, and counts itself in the
/// `mtls_connections_open` gauge while it lives.
#[derive(Debug)]
pub struct MtlsStream {
    inner: TlsStream<TcpStream>,
    info: MtlsConnectInfo,
    span: tracing::Span,
}

impl MtlsStream {
    pub(crate) fn new(
        inner: TlsStream<TcpStream>,
        info: MtlsConnectInfo,
        span: tracing::Span,
    ) -> Self {
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).increment(1.0);
        Self { inner, info, span }
    }

    /// The authenticated peer.
    pub fn peer_identity(&self) -> &PeerIdentity {
        &self.info.peer
    }

    /// The peer's address and identity.
    pub fn connect_info(&self) -> &MtlsConnectInfo {
        &self.info
    }

    /// The underlying TLS stream.
    pub fn get_ref(&self) -> &TlsStream<TcpStream> {
        &self.inner
    }
}

impl Drop for MtlsStream {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// Who is on the other end of a connection: its verified identity and its
/// address. Put in each request's extensions by axum
/// (`into_make_service_with_connect_info::<MtlsConnectInfo>()`, as
/// `ConnectInfo<MtlsConnectInfo>`) and by tonic (`serve_with_incoming`).
#[derive(Debug, Clone)]
pub struct MtlsConnectInfo {
    /// The authenticated peer.
    pub peer: PeerIdentity,
    /// The peer's socket address.
    pub remote_addr: SocketAddr,
}

impl AsyncRead for MtlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for MtlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
}

#[cfg(feature = "axum")]
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::MtlsListener>>
    for MtlsConnectInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::MtlsListener>) -> Self {
        stream.io().info.clone()
    }
}

#[cfg(feature = "tonic")]
impl tonic::transport::server::Connected for MtlsStream {
    type ConnectInfo = MtlsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}
