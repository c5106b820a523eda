//! An mTLS connector for hyper and tonic clients.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use mtls_core::{MtlsClientConfig, PeerIdentity, VerifyError, X509Svid};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tower_service::Service;

use crate::reason::{with_rejection, ConnectError};
use crate::stream::on_bytes_written;

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
/// - For reqwest, use `reqwest_builder` (feature `reqwest`), which hands
///   reqwest the rustls config and reads the server's ID back.
///
/// The URI's host is dialled and sent as SNI; it is not compared with the
/// certificate (SPIFFE servers are identified by SPIFFE ID).
///
/// **Errors.** When the client refuses the server, or its own SVID has
/// expired (it then does not dial: the server would refuse it), the
/// [`io::Error`] has a [`ConnectError`] as its source, which names the SPIFFE
/// ID the server presented and why it was refused (hyper's and tonic's
/// errors have it down their `source()` chains). See
/// `docs/troubleshooting.md`.
///
/// **Renewal and pooled connections.** A connection is retired once the
/// SVID it presented has been replaced by the config's SVID source (a
/// renewal, a rotation), or shortly ([`RETIRE_BEFORE_EXPIRY`]) before the
/// SVID's chain or the server's verified path expires: when it is next idle
/// (no request awaiting its response, nothing read or written for a few
/// milliseconds), it reports end of input, so hyper's pool (and a tonic
/// channel) drops it and the next request connects with the current SVID.
/// A request already under way is not cut, except at the hard limit, when
/// the certificate path of either side expires. The connector checks its
/// connections a few times a second from one background task, which runs
/// only while it has connections.
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
    live: Arc<Live>,
}

/// How long before the presented SVID's chain (or the server's verified
/// path) expires [`MtlsConnector`] retires a connection: requests sent
/// afterwards go over a new connection.
pub const RETIRE_BEFORE_EXPIRY: Duration = Duration::from_secs(1);

/// How often the connector checks its connections.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// How long a retiring connection must have been quiet to count as idle.
const QUIET: Duration = Duration::from_millis(50);

/// The connections a connector made and still tracks.
#[derive(Debug, Default)]
struct Live {
    conns: Mutex<Vec<Weak<Tracked>>>,
    /// Whether the checking task runs.
    checking: AtomicBool,
}

/// What the connector knows of one of its connections.
#[derive(Debug)]
struct Tracked {
    /// The SVID the handshake presented (read just before it: a rotation
    /// during the handshake retires the connection, which is safe).
    presented: Option<X509Svid>,
    /// When neither side's certificate path is valid any more.
    valid_until: SystemTime,
    retiring: AtomicBool,
    activity: Mutex<Activity>,
}

#[derive(Debug)]
struct Activity {
    last: Instant,
    /// Bytes were written since the last read: a request awaits its
    /// response.
    awaiting: bool,
    /// The reader's waker, woken when the connection starts retiring.
    waker: Option<Waker>,
}

impl Tracked {
    /// Marks the connection retiring if its SVID was replaced or its
    /// certificates are about to expire; wakes its reader to end it.
    fn check(&self, current: Option<&X509Svid>, now: SystemTime) {
        let replaced = match (&self.presented, current) {
            (Some(presented), Some(current)) => {
                !presented.ptr_eq(current) && presented.chain() != current.chain()
            }
            (None, Some(_)) => true,
            _ => false,
        };
        let expiring = now + RETIRE_BEFORE_EXPIRY >= self.valid_until;
        if replaced || expiring {
            if !self.retiring.swap(true, Ordering::AcqRel) {
                tracing::debug!(replaced, expiring, "mtls: retiring a client connection");
            }
            let waker = self
                .activity
                .lock()
                .ok()
                .and_then(|mut activity| activity.waker.take());
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Whether the connection must report end of input now.
    fn must_end(&self, waker: &Waker) -> bool {
        if SystemTime::now() >= self.valid_until {
            return true;
        }
        let retiring = self.retiring.load(Ordering::Acquire);
        let Ok(mut activity) = self.activity.lock() else {
            return retiring;
        };
        if retiring && !activity.awaiting && activity.last.elapsed() >= QUIET {
            return true;
        }
        activity.waker = Some(waker.clone());
        false
    }

    fn read(&self) {
        if let Ok(mut activity) = self.activity.lock() {
            activity.last = Instant::now();
            activity.awaiting = false;
        }
    }

    fn wrote(&self) {
        if let Ok(mut activity) = self.activity.lock() {
            activity.last = Instant::now();
            activity.awaiting = true;
        }
    }
}

impl Live {
    /// Tracks `conn`, starting the checking task if it is not running.
    fn track(self: &Arc<Self>, conn: &Arc<Tracked>, config: &MtlsClientConfig) {
        if let Ok(mut conns) = self.conns.lock() {
            conns.push(Arc::downgrade(conn));
        }
        if !self.checking.swap(true, Ordering::AcqRel) {
            let live = Arc::downgrade(self);
            let config = config.clone();
            tokio::spawn(check_connections(live, config));
        }
    }
}

/// Checks the connector's connections until it has none (or is gone).
async fn check_connections(live: Weak<Live>, config: MtlsClientConfig) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(live) = live.upgrade() else { return };
        let current = config.current_svid();
        let now = SystemTime::now();
        let Ok(mut conns) = live.conns.lock() else {
            return;
        };
        conns.retain(|conn| match conn.upgrade() {
            Some(conn) => {
                conn.check(current.as_ref(), now);
                true
            }
            None => false,
        });
        if conns.is_empty() {
            // Under the lock, so a connection tracked after this restarts
            // the task.
            live.checking.store(false, Ordering::Release);
            return;
        }
    }
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
            live: Arc::default(),
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
            live: Arc::default(),
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
        // The SVID the handshake will present (a rotation from here on
        // retires the connection, which is safe).
        let presented = self.config.current_svid();
        if let Some(svid) = &presented {
            let now = SystemTime::now();
            if svid.valid_until() <= now {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    ConnectError::OwnSvidExpired(VerifyError::Expired {
                        id: svid.spiffe_id().clone(),
                        not_after: svid.valid_until(),
                        now,
                    }),
                ));
            }
        }
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        let tls = match with_rejection(self.tls.connect(server_name, tcp)).await {
            (Ok(tls), _) => tls,
            (Err(e), Some(rejection)) => {
                tracing::debug!(error = %mtls_core::ErrorChain(&e), "mtls: server refused by the client's verifier");
                return Err(io::Error::new(
                    e.kind(),
                    ConnectError::ServerRefused {
                        addr: format!("{host}:{port}"),
                        rejection,
                    },
                ));
            }
            (Err(e), None) => return Err(e),
        };
        let peer = self
            .config
            .peer_identity(tls.get_ref().1)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let valid_until = presented.as_ref().map_or(peer.not_after(), |svid| {
            svid.valid_until().min(peer.not_after())
        });
        let tracked = Arc::new(Tracked {
            presented,
            valid_until,
            retiring: AtomicBool::new(false),
            activity: Mutex::new(Activity {
                last: Instant::now(),
                awaiting: false,
                waker: None,
            }),
        });
        self.live.track(&tracked, &self.config);
        Ok(MtlsClientStream {
            io: TokioIo::new(tls),
            peer,
            h2,
            tracked,
            ended: false,
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
    tracked: Arc<Tracked>,
    /// Set once the stream has reported end of input (retired).
    ended: bool,
}

impl MtlsClientStream {
    /// The server's verified identity.
    pub fn peer_identity(&self) -> &PeerIdentity {
        &self.peer
    }

    /// Whether the connector has retired this connection (its SVID was
    /// replaced, or a certificate path is about to expire): it ends when
    /// next idle.
    pub fn is_retiring(&self) -> bool {
        self.tracked.retiring.load(Ordering::Acquire)
    }

    /// The TLS stream, as tokio I/O (no longer retired by the connector).
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
        let this = &mut *self;
        if this.ended || this.tracked.must_end(cx.waker()) {
            // End of input: hyper closes the connection and its pool
            // drops it.
            this.ended = true;
            return Poll::Ready(Ok(()));
        }
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) {
            this.tracked.read();
        }
        read
    }
}

impl hyper::rt::Write for MtlsClientStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        on_bytes_written(written, || self.tracked.wrote())
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
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        on_bytes_written(written, || self.tracked.wrote())
    }
}
