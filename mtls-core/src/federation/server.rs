//! Serving a bundle endpoint over HTTPS (SPIFFE_Federation.md 5.2.1.3 and
//! 5.2.2.3).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::{BundleEndpoint, FederationError};
use crate::limits::{
    FEDERATION_CONNECTION_TIMEOUT, FEDERATION_HANDSHAKE_TIMEOUT, FEDERATION_MAX_CONNECTIONS,
};
use crate::source::SvidSource;
use crate::tls::SvidResolver;

/// How a bundle endpoint server authenticates itself. It never asks
/// clients for a certificate (SPIFFE_Federation.md 5.2.1.3, 5.2.2.3).
///
/// TLS: rustls' defaults, TLS 1.2 and 1.3 with ECDHE key exchange and AEAD
/// suites only (AES-GCM, ChaCha20-Poly1305), a subset of Mozilla's
/// "intermediate" compatibility that the specification asks for (5).
#[non_exhaustive]
pub enum ServerProfile {
    /// `https_spiffe`: presents the current X509-SVID of the source, read
    /// at every handshake (so a renewed SVID is served without restart).
    HttpsSpiffe(Arc<dyn SvidSource>),
    /// `https_web`: presents a web PKI certificate (`chain`, leaf first)
    /// holding the DNS name or IP address of the endpoint.
    HttpsWeb {
        /// The certificate chain, leaf first.
        chain: Vec<CertificateDer<'static>>,
        /// Its private key.
        key: PrivateKeyDer<'static>,
    },
}

impl ServerProfile {
    /// `https_spiffe` presenting the SVIDs of `svid`.
    pub fn https_spiffe(svid: impl SvidSource + 'static) -> Self {
        Self::HttpsSpiffe(Arc::new(svid))
    }

    /// `https_web` presenting `chain` with `key`.
    pub fn https_web(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self::HttpsWeb { chain, key }
    }

    fn rustls_config(self) -> Result<ServerConfig, FederationError> {
        let err = |e: rustls::Error| FederationError::Server {
            reason: format!("TLS settings refused: {e}"),
        };
        let provider = crate::provider::default_crypto_provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(err)?
            .with_no_client_auth();
        let mut config = match self {
            Self::HttpsSpiffe(svid) => {
                builder.with_cert_resolver(Arc::new(SvidResolver::new(svid, provider)))
            }
            Self::HttpsWeb { chain, key } => builder.with_single_cert(chain, key).map_err(err)?,
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl fmt::Debug for ServerProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HttpsSpiffe(_) => f.write_str("HttpsSpiffe"),
            Self::HttpsWeb { chain, .. } => f
                .debug_struct("HttpsWeb")
                .field("chain", &chain.len())
                .finish_non_exhaustive(),
        }
    }
}

/// The bounds of a bundle endpoint server.
///
/// ```
/// use std::time::Duration;
/// use mtls_core::federation::ServeOptions;
///
/// let options = ServeOptions::default().max_connections(64).handshake_timeout(Duration::from_secs(5));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    max_connections: usize,
    handshake_timeout: Duration,
    connection_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: FEDERATION_MAX_CONNECTIONS,
            handshake_timeout: FEDERATION_HANDSHAKE_TIMEOUT,
            connection_timeout: FEDERATION_CONNECTION_TIMEOUT,
        }
    }
}

impl ServeOptions {
    /// Connections served at once, at least 1 (default
    /// [`FEDERATION_MAX_CONNECTIONS`](crate::FEDERATION_MAX_CONNECTIONS));
    /// further ones wait in the listener's backlog.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    crate::__setters! {
        /// Time given to a client for the TLS handshake (default
        /// [`FEDERATION_HANDSHAKE_TIMEOUT`](crate::FEDERATION_HANDSHAKE_TIMEOUT)).
        #[must_use]
        handshake_timeout: Duration;

        /// Time a connection may last after its handshake (default
        /// [`FEDERATION_CONNECTION_TIMEOUT`](crate::FEDERATION_CONNECTION_TIMEOUT));
        /// one request is served per connection.
        #[must_use]
        connection_timeout: Duration;
    }
}

/// Serves `endpoint` over HTTPS on `listener` with `profile`: HTTP/1.1,
/// one request per connection, no client certificate requested, bounded
/// handshakes, connections and concurrency ([`ServeOptions::default`]).
/// Must be called inside a tokio runtime; the server runs on it until the
/// returned handle is [shut down](BundleServer::shutdown) or dropped.
///
/// ```no_run
/// use mtls_core::federation::{serve, BundleEndpoint, ServerProfile};
/// use mtls_core::{BundleSet, SharedBundles, SharedSvid, TrustDomain};
///
/// # async fn run(svid: SharedSvid, bundles: SharedBundles, stop: tokio::sync::oneshot::Receiver<()>) -> Result<(), Box<dyn std::error::Error>> {
/// let td = TrustDomain::from_static("example.org");
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
/// let server = serve(listener, BundleEndpoint::new(td, bundles), ServerProfile::https_spiffe(svid))?;
/// println!("bundle endpoint on https://{}", server.local_addr());
/// let _ = stop.await; // a signal, an admin request...
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub fn serve(
    listener: TcpListener,
    endpoint: BundleEndpoint,
    profile: ServerProfile,
) -> Result<BundleServer, FederationError> {
    serve_with(listener, endpoint, profile, ServeOptions::default())
}

/// [`serve`] with other bounds.
pub fn serve_with(
    listener: TcpListener,
    endpoint: BundleEndpoint,
    profile: ServerProfile,
    options: ServeOptions,
) -> Result<BundleServer, FederationError> {
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|_| FederationError::NoRuntime {
            what: "the bundle endpoint server",
        })?;
    let local_addr = listener.local_addr().map_err(|e| FederationError::Server {
        reason: format!("the listener has no address: {e}"),
    })?;
    let acceptor = TlsAcceptor::from(Arc::new(profile.rustls_config()?));
    let (stop, stopped) = watch::channel(false);
    let task = runtime.spawn(accept_loop(listener, acceptor, endpoint, options, stopped));
    Ok(BundleServer {
        local_addr,
        stop,
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    endpoint: BundleEndpoint,
    options: ServeOptions,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stopped.changed() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause, never spin.
                    tracing::warn!(error = %crate::ErrorChain(&e), "bundle endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Reap finished connections.
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let endpoint = endpoint.clone();
        let options = options.clone();
        connections.spawn(async move {
            let _permit = permit;
            serve_connection(tcp, peer, acceptor, endpoint, &options).await;
        });
    }
    drop(listener);
    // Graceful stop: connections in flight finish (each is bounded by the
    // handshake and connection timeouts).
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    endpoint: BundleEndpoint,
    options: &ServeOptions,
) {
    let tls = match tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %crate::ErrorChain(&e), "bundle endpoint: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "bundle endpoint: TLS handshake timed out");
            return;
        }
    };
    let service = service_fn(move |request| {
        let mut endpoint = endpoint.clone();
        tower_service::Service::call(&mut endpoint, request)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(options.handshake_timeout)
        .keep_alive(false)
        .serve_connection(TokioIo::new(tls), service);
    match tokio::time::timeout(options.connection_timeout, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %crate::ErrorChain(&e), "bundle endpoint: connection failed")
        }
        Err(_) => tracing::debug!(%peer, "bundle endpoint: connection timed out"),
    }
}

/// A running bundle endpoint server: its address, and the way to stop it.
/// Dropping it stops the server at once.
#[derive(Debug)]
pub struct BundleServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl BundleServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, and returns when the connections in
    /// flight have finished (each is bounded by the server's timeouts).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BundleServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
