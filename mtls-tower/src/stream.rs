//! An accepted, authenticated mTLS connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use mtls_core::PeerIdentity;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;

/// A server-side TLS connection whose client was authenticated by its
/// X.509-SVID (and, for a resumed session, verified again).
///
/// It reads and writes like the underlying stream, inside a `tracing` span
/// carrying the peer's SPIFFE ID, and counts itself in the
/// `mtls_connections_open` gauge while it lives.
///
/// A connection never outlives its peer's identity: when the verified path
/// of the peer's SVID expires ([`PeerIdentity::not_after`], the earliest
/// notAfter of leaf and intermediates), the stream ends (the server sees
/// end of input and closes the connection), so a client holding a renewed
/// SVID reconnects with it. The same happens after
/// [`MtlsConnectInfo::end_connection`], once the responses written since
/// are flushed.
#[derive(Debug)]
pub struct MtlsStream {
    inner: TlsStream<TcpStream>,
    info: MtlsConnectInfo,
    span: tracing::Span,
    /// Fires when the peer's verified path expires.
    expiry: Pin<Box<Sleep>>,
    /// Set once the stream has reported end of input.
    ended: bool,
}

impl MtlsStream {
    pub(crate) fn new(
        inner: TlsStream<TcpStream>,
        info: MtlsConnectInfo,
        span: tracing::Span,
    ) -> Self {
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).increment(1.0);
        let left = info
            .peer
            .not_after()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        // A far-off expiry is capped so the deadline never overflows.
        let left = left.min(std::time::Duration::from_secs(100 * 365 * 24 * 3600));
        let expiry = Box::pin(tokio::time::sleep(left));
        Self {
            inner,
            info,
            span,
            expiry,
            ended: false,
        }
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

/// Whether the connection must end now: the peer's path has expired, or an
/// end was asked for and the responses since are flushed.
fn must_end(
    ended: &mut bool,
    expiry: &mut Pin<Box<Sleep>>,
    info: &MtlsConnectInfo,
    cx: &mut Context<'_>,
) -> bool {
    if *ended {
        return true;
    }
    if expiry.as_mut().poll(cx).is_ready() {
        tracing::info!(peer = %info.peer.spiffe_id(), "mtls: the peer's certificate path expired, ending the connection");
        *ended = true;
        return true;
    }
    if info.ending.should_end(cx.waker()) {
        tracing::debug!(peer = %info.peer.spiffe_id(), "mtls: ending the connection as asked");
        *ended = true;
        return true;
    }
    false
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
    /// Shared with the connection's [`MtlsStream`].
    ending: Arc<Ending>,
}

impl MtlsConnectInfo {
    /// Connection information for `peer` at `remote_addr` (the listener
    /// makes these; tests and custom servers may too).
    pub fn new(peer: PeerIdentity, remote_addr: SocketAddr) -> Self {
        Self {
            peer,
            remote_addr,
            ending: Arc::default(),
        }
    }

    /// Asks the connection to end once the responses written from now on
    /// are flushed: the server then sees end of input and closes it, and
    /// the client reconnects. [`AuthorizeLayer`](crate::AuthorizeLayer)
    /// does this when it refuses a peer whose certificate path has expired,
    /// so that a client which renewed its SVID is not refused forever on a
    /// pooled connection (HTTP/1.1 responses also carry
    /// `Connection: close`). Without an [`MtlsStream`] behind it (a
    /// hand-made value), this does nothing.
    pub fn end_connection(&self) {
        self.ending.request();
    }

    /// Whether [`end_connection`](Self::end_connection) was called.
    pub fn is_ending(&self) -> bool {
        self.ending.state.load(Ordering::Acquire) != Ending::RUNNING
    }
}

/// A request to end a connection, shared by its connect info (which asks)
/// and its stream (which ends once what was written since is flushed).
#[derive(Debug, Default)]
struct Ending {
    state: AtomicU8,
    /// The stream's read waker, woken when the end becomes due.
    waker: Mutex<Option<Waker>>,
}

impl Ending {
    const RUNNING: u8 = 0;
    /// Asked; nothing written since.
    const ASKED: u8 = 1;
    /// Asked, and a response was written since.
    const WRITTEN: u8 = 2;
    /// Asked, and what was written since is flushed: end now.
    const DUE: u8 = 3;

    fn request(&self) {
        let _ = self.state.compare_exchange(
            Self::RUNNING,
            Self::ASKED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    fn wrote(&self) {
        let _ = self.state.compare_exchange(
            Self::ASKED,
            Self::WRITTEN,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    fn flushed(&self) {
        if self
            .state
            .compare_exchange(
                Self::WRITTEN,
                Self::DUE,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            if let Some(waker) = self.waker.lock().ok().and_then(|mut w| w.take()) {
                waker.wake();
            }
        }
    }

    /// Whether the end is due; if it was asked for but is not due yet,
    /// remembers `waker` to be woken when it is.
    fn should_end(&self, waker: &Waker) -> bool {
        match self.state.load(Ordering::Acquire) {
            Self::RUNNING => false,
            Self::DUE => true,
            _ => {
                if let Ok(mut slot) = self.waker.lock() {
                    *slot = Some(waker.clone());
                }
                // Flushed between the load and storing the waker.
                self.state.load(Ordering::Acquire) == Self::DUE
            }
        }
    }
}

/// Calls `wrote` if the write `written` sent any bytes, and passes it on
/// (shared by the server and client streams, which track writes to decide
/// when a connection may end).
pub(crate) fn on_bytes_written(
    written: Poll<io::Result<usize>>,
    wrote: impl FnOnce(),
) -> Poll<io::Result<usize>> {
    if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
        wrote();
    }
    written
}

impl AsyncRead for MtlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        if must_end(&mut this.ended, &mut this.expiry, &this.info, cx) {
            return Poll::Ready(Ok(()));
        }
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
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        on_bytes_written(written, || this.info.ending.wrote())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            self.info.ending.flushed();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        on_bytes_written(written, || self.info.ending.wrote())
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
