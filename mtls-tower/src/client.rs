//! An mTLS connector for hyper and tonic clients.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use mtls_core::{MtlsClientConfig, PeerIdentity};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tower_service::Service;

/// A `tower::Service<Uri>` that dials TCP, performs the mTLS handshake
/// with an [`MtlsClientConfig`] (whose authorizer decides which server
/// SPIFFE IDs are acceptable), and returns the connection with the server's
/// verified identity.
///
/// - With `hyper_util::client::legacy::Client`, the server's
///   [`PeerIdentity`] is in every response's extensions.
/// - With tonic, use [`MtlsConnector::grpc`] (ALPN `h2`) and
///   `Endpoint::from_static("http://host:port").connect_with_connector(..)`:
///   the `http` scheme keeps tonic from trying TLS of its own; this
///   connector always speaks TLS.
/// - For reqwest, hand it the rustls config instead:
///   `reqwest::Client::builder().use_preconfigured_tls((*client_config.rustls_config()).clone())`.
///
/// The URI's host is dialled and sent as SNI; it is not compared with the
/// certificate (SPIFFE servers are identified by SPIFFE ID).
///
/// ```no_run
/// # async fn run(config: mtls_core::MtlsClientConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use http_body_util::Empty;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use mtls_core::PeerIdentity;
/// use mtls_tower::MtlsConnector;
///
/// let client = Client::builder(TokioExecutor::new())
///     .build::<_, Empty<bytes::Bytes>>(MtlsConnector::new(config));
/// let response = client.get("https://127.0.0.1:8443/whoami".parse()?).await?;
/// let server = response.extensions().get::<PeerIdentity>().expect("set by the connector");
/// println!("served by {}", server.spiffe_id());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MtlsConnector {
    config: MtlsClientConfig,
    tls: TlsConnector,
    timeout: Option<Duration>,
}

/// How long [`MtlsConnector`] waits, by default, for the TCP connection and
/// the TLS handshake together.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl MtlsConnector {
    /// A connector using `config` as it is (its ALPN protocols included).
    pub fn new(config: MtlsClientConfig) -> Self {
        let tls = TlsConnector::from(config.rustls_config());
        Self {
            config,
            tls,
            timeout: Some(DEFAULT_CONNECT_TIMEOUT),
        }
    }

    /// Bounds the TCP connect and the TLS handshake together (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]; `None`: no bound), so a server that
    /// stalls mid-handshake cannot hang the client.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// A connector for gRPC: as [`new`](Self::new), offering only ALPN `h2`.
    pub fn grpc(config: MtlsClientConfig) -> Self {
        let mut rustls = (*config.rustls_config()).clone();
        rustls.alpn_protocols = vec![b"h2".to_vec()];
        Self {
            tls: TlsConnector::from(Arc::new(rustls)),
            config,
            timeout: Some(DEFAULT_CONNECT_TIMEOUT),
        }
    }

    /// Dials `uri` and returns the authenticated connection.
    pub async fn connect(&self, uri: &Uri) -> io::Result<MtlsClientStream> {
        let Some(limit) = self.timeout else {
            return self.connect_unbounded(uri).await;
        };
        tokio::time::timeout(limit, self.connect_unbounded(uri))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("mtls-tower: connecting to {uri} timed out after {limit:?}"),
                )
            })?
    }

    async fn connect_unbounded(&self, uri: &Uri) -> io::Result<MtlsClientStream> {
        let host = uri.host().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mtls-tower: no host in {uri}"),
            )
        })?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        let server_name = ServerName::try_from(host.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mtls-tower: bad host {host:?}: {e}"),
            )
        })?;
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        let tls = self.tls.connect(server_name, tcp).await?;
        let peer = self
            .config
            .peer_identity(tls.get_ref().1)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok(MtlsClientStream {
            io: TokioIo::new(tls),
            peer,
            h2,
        })
    }
}

impl std::fmt::Debug for MtlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsConnector")
            .field("config", &self.config)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Service<Uri> for MtlsConnector {
    type Response = MtlsClientStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<MtlsClientStream>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(&uri).await })
    }
}

/// A client connection made by [`MtlsConnector`]: hyper I/O plus the
/// server's verified identity.
#[derive(Debug)]
pub struct MtlsClientStream {
    io: TokioIo<TlsStream<TcpStream>>,
    peer: PeerIdentity,
    h2: bool,
}

impl MtlsClientStream {
    /// The server's verified identity.
    pub fn peer_identity(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The TLS stream, as tokio I/O.
    pub fn into_inner(self) -> TlsStream<TcpStream> {
        self.io.into_inner()
    }
}

impl Connection for MtlsClientStream {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(self.peer.clone());
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl hyper::rt::Read for MtlsClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for MtlsClientStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
