//! A TLS listener that handshakes concurrently, with timeouts, off the
//! accept path.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mtls_core::{MtlsServerConfig, PeerIdentityError, Rejection};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::metrics;
use crate::reason;
use crate::stream::{MtlsConnectInfo, MtlsStream};

/// Settings of an [`MtlsListener`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// How long a client may take to complete its handshake (default 10 s).
    pub handshake_timeout: Duration,
    /// How many handshakes may be in progress at once (default 2048); past
    /// that, new TCP connections wait in the kernel's backlog.
    pub max_concurrent_handshakes: usize,
    /// How many authenticated connections may wait for the server to take
    /// them (default 128).
    pub ready_queue: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_concurrent_handshakes: 2048,
            ready_queue: 128,
        }
    }
}

impl ListenerConfig {
    mtls_core::__setters! {
        /// Sets [`handshake_timeout`](Self::handshake_timeout).
        handshake_timeout: Duration;
    }

    /// Sets [`max_concurrent_handshakes`](Self::max_concurrent_handshakes) (at least 1).
    pub fn max_concurrent_handshakes(mut self, max: usize) -> Self {
        self.max_concurrent_handshakes = max.max(1);
        self
    }
}

/// Counters of a listener, readable while it runs.
#[derive(Debug, Default)]
pub struct ListenerStats {
    in_flight: AtomicUsize,
    accepted: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
}

impl ListenerStats {
    /// Handshakes in progress now.
    pub fn handshakes_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Connections authenticated so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Handshakes that failed (rejected peers, TLS errors) so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Handshakes dropped at the timeout so far.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// A TCP listener that performs mTLS handshakes with an
/// [`MtlsServerConfig`] and yields only authenticated connections.
///
/// Each handshake runs in its own task under a timeout, with a cap on how
/// many run at once, so a client that stalls mid-handshake never blocks
/// anyone else; finished connections are handed over through a queue. TCP
/// accept errors (such as running out of file descriptors) are logged,
/// counted and retried with a short backoff instead of ending the server.
/// Resumed sessions are verified again against the current bundles, CRLs
/// and authorizer before they are admitted, so the config may enable
/// resumption safely.
///
/// It is an axum [`Listener`](axum::serve::Listener) (feature `axum`) and a
/// `Stream` of connections for tonic's `serve_with_incoming` (feature
/// `tonic`).
///
/// ```no_run
/// # async fn run(server: mtls_core::MtlsServerConfig) -> std::io::Result<()> {
/// use axum::{routing::get, Router};
/// use mtls_tower::{MtlsConnectInfo, MtlsListener, PeerId};
///
/// let app = Router::new().route("/whoami", get(|PeerId(id): PeerId| async move { format!("{id}\n") }));
/// let listener = MtlsListener::bind("127.0.0.1:8443", server).await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<MtlsConnectInfo>()).await
/// # }
/// ```
pub struct MtlsListener {
    ready: mpsc::Receiver<MtlsStream>,
    local_addr: SocketAddr,
    stats: Arc<ListenerStats>,
    accept_task: tokio::task::AbortHandle,
}

impl MtlsListener {
    /// Binds `addr` with the default [`ListenerConfig`].
    pub async fn bind(
        addr: impl ToSocketAddrs + fmt::Debug,
        server: MtlsServerConfig,
    ) -> io::Result<Self> {
        let tcp = TcpListener::bind(&addr).await.map_err(|e| {
            // The address in the error: "Address already in use" alone does
            // not say which.
            io::Error::new(
                e.kind(),
                format!("mtls-tower: cannot listen on {addr:?}: {e}"),
            )
        })?;
        Self::new(tcp, server, ListenerConfig::default())
    }

    /// Serves on an already bound TCP listener. Must be called within a
    /// tokio runtime.
    pub fn new(
        tcp: TcpListener,
        server: MtlsServerConfig,
        config: ListenerConfig,
    ) -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            io::Error::other(format!(
                "mtls-tower: the listener needs a tokio runtime: {e}"
            ))
        })?;
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(config.ready_queue.max(1));
        let stats = Arc::new(ListenerStats::default());
        let accept_task = runtime
            .spawn(accept_loop(tcp, server, config, tx, stats.clone()))
            .abort_handle();
        Ok(Self {
            ready,
            local_addr,
            stats,
            accept_task,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The listener's counters.
    pub fn stats(&self) -> Arc<ListenerStats> {
        self.stats.clone()
    }

    /// The next authenticated connection.
    pub async fn accept(&mut self) -> io::Result<MtlsStream> {
        self.ready
            .recv()
            .await
            .ok_or_else(|| io::Error::other("mtls-tower: the accept task stopped"))
    }
}

impl Drop for MtlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl fmt::Debug for MtlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsListener")
            .field("local_addr", &self.local_addr)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

async fn accept_loop(
    tcp: TcpListener,
    server: MtlsServerConfig,
    config: ListenerConfig,
    ready: mpsc::Sender<MtlsStream>,
    stats: Arc<ListenerStats>,
) {
    let acceptor = TlsAcceptor::from(server.rustls_config());
    let permits = Arc::new(Semaphore::new(config.max_concurrent_handshakes));
    let mut backoff = Duration::from_millis(5);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, remote_addr) = match tcp.accept().await {
            Ok(accepted) => {
                backoff = Duration::from_millis(5);
                accepted
            }
            Err(e) => {
                if ready.is_closed() {
                    return;
                }
                ::metrics::counter!(metrics::ACCEPT_ERRORS).increment(1);
                tracing::warn!(error = %mtls_core::ErrorChain(&e), retry_in = ?backoff, "mtls: TCP accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if ready.is_closed() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let span = tracing::info_span!("mtls.connection", remote = %remote_addr, peer = tracing::field::Empty);
        let handshake = Handshake {
            acceptor: acceptor.clone(),
            server: server.clone(),
            timeout: config.handshake_timeout,
            ready: ready.clone(),
            stats: stats.clone(),
            span: span.clone(),
        };
        tokio::spawn(handshake.run(stream, remote_addr, permit).instrument(span));
    }
}

struct Handshake {
    acceptor: TlsAcceptor,
    server: MtlsServerConfig,
    timeout: Duration,
    ready: mpsc::Sender<MtlsStream>,
    stats: Arc<ListenerStats>,
    span: tracing::Span,
}

impl Handshake {
    async fn run(self, stream: TcpStream, remote_addr: SocketAddr, permit: OwnedSemaphorePermit) {
        let start = Instant::now();
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        ::metrics::gauge!(metrics::HANDSHAKES_IN_FLIGHT).increment(1.0);
        let result = tokio::time::timeout(
            self.timeout,
            reason::with_rejection(self.acceptor.accept(stream)),
        )
        .await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        ::metrics::gauge!(metrics::HANDSHAKES_IN_FLIGHT).decrement(1.0);
        drop(permit);
        let elapsed = start.elapsed().as_secs_f64();
        let tls = match result {
            Err(_) => {
                self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                record(elapsed, "error", "timeout");
                tracing::debug!(timeout = ?self.timeout, "mtls: handshake timed out; connection dropped");
                return;
            }
            Ok((Err(e), Some(rejection))) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.refused(elapsed, &rejection, &e);
                return;
            }
            Ok((Err(e), None)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let reason = failure_reason(&e);
                record(elapsed, "error", reason);
                tracing::info!(error = %mtls_core::ErrorChain(&e), reason, "mtls: handshake failed");
                return;
            }
            Ok((Ok(tls), _)) => tls,
        };
        let peer = match self.server.peer_identity(tls.get_ref().1) {
            Ok(peer) => peer,
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                match e {
                    PeerIdentityError::Verify(v) => {
                        self.refused(
                            elapsed,
                            &Rejection::Verify(v),
                            &"resumed session: re-verification failed",
                        );
                    }
                    PeerIdentityError::Denied(d) => {
                        self.refused(
                            elapsed,
                            &Rejection::Denied(d),
                            &"resumed session: re-verification failed",
                        );
                    }
                    e => {
                        record(elapsed, "error", "peer_identity");
                        tracing::warn!(error = %mtls_core::ErrorChain(&e), "mtls: no peer identity; connection dropped");
                    }
                }
                return;
            }
        };
        self.span
            .record("peer", tracing::field::display(peer.spiffe_id()));
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        record(elapsed, "ok", "ok");
        tracing::debug!(kind = ?tls.get_ref().1.handshake_kind(), "mtls: peer authenticated");
        let info = MtlsConnectInfo::new(peer, remote_addr);
        // If the server is gone, the connection is simply dropped.
        let _ = self
            .ready
            .send(MtlsStream::new(tls, info, self.span.clone()))
            .await;
    }
}

impl Handshake {
    /// Counts and logs (at warn) a handshake our verifier refused, full or
    /// resumed alike: the metrics label is [`Rejection::kind`], the log
    /// has the verifier's own reason and the peer's SPIFFE ID when it could
    /// be read; `tls` is what rustls (or the resumption check) said.
    fn refused(&self, elapsed: f64, rejection: &Rejection, tls: &dyn fmt::Display) {
        let reason = rejection.kind();
        record(elapsed, "error", reason);
        match rejection.spiffe_id() {
            Some(peer) => {
                self.span.record("peer", tracing::field::display(peer));
                tracing::warn!(%peer, reason, error = %mtls_core::ErrorChain(rejection), tls = %tls, "mtls: handshake refused");
            }
            None => {
                tracing::warn!(reason, error = %mtls_core::ErrorChain(rejection), tls = %tls, "mtls: handshake refused");
            }
        }
    }
}

fn record(elapsed: f64, result: &'static str, reason: &'static str) {
    ::metrics::counter!(metrics::HANDSHAKES, "result" => result, "reason" => reason).increment(1);
    ::metrics::histogram!(metrics::HANDSHAKE_DURATION, "result" => result).record(elapsed);
}

/// A short, stable label for why a handshake failed without a rejection
/// from our verifier (then [`Rejection::kind`] is the label): from the
/// rustls error, in the same vocabulary.
fn failure_reason(e: &io::Error) -> &'static str {
    use rustls::{CertificateError as C, Error as E};
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<E>()) else {
        return "io";
    };
    match tls {
        E::NoCertificatesPresented => "no_certificate",
        E::InvalidCertificate(C::ApplicationVerificationFailure) => "denied",
        E::InvalidCertificate(C::UnknownIssuer) => "untrusted_issuer",
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "expired",
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => "not_yet_valid",
        E::InvalidCertificate(C::Revoked) => "revoked",
        E::InvalidCertificate(C::BadEncoding) => "bad_certificate",
        E::InvalidCertificate(C::BadSignature) => "bad_signature",
        E::InvalidCertificate(C::InvalidPurpose | C::InvalidPurposeContext { .. }) => {
            "wrong_extended_key_usage"
        }
        E::InvalidCertificate(C::Other(other)) => other
            .0
            .downcast_ref::<mtls_core::VerifyError>()
            .map_or("invalid_certificate", mtls_core::VerifyError::kind),
        E::InvalidCertificate(_) => "invalid_certificate",
        E::AlertReceived(_) => "alert_received",
        E::PeerIncompatible(_) => "incompatible",
        _ => "tls",
    }
}

impl futures_core::Stream for MtlsListener {
    type Item = io::Result<MtlsStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ready.poll_recv(cx).map(|s| s.map(Ok))
    }
}

#[cfg(feature = "axum")]
impl axum::serve::Listener for MtlsListener {
    type Io = MtlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(stream) => {
                let addr = stream.connect_info().remote_addr;
                (stream, addr)
            }
            // The accept task only stops when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
