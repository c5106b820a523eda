//! Shared fixtures of the mtls-tower integration tests: a development CA,
//! server and client configs, an axum server on loopback, and a few raw
//! TLS helpers for hostile clients. The helpers every crate's tests share
//! (timeouts, polling, `id`, the accept-any-server verifier) come from
//! `mtls-testing` and are re-exported here.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::rustls;
use mtls_core::{
    authorize, BundleSet, MtlsClientConfig, MtlsServerConfig, PeerIdentity, SvidSource,
    TrustDomain, X509Svid,
};
use mtls_tower::{
    AuthorizeRequest, Caller, ListenerConfig, ListenerStats, MtlsConnector, MtlsListener, PeerId,
};
use tokio::net::TcpListener;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use mtls_testing::{
    accept_any_server, bounded, bounded_by, eventually, id, sleep_past, TEST_TIMEOUT,
};

pub const BACKEND: &str = "spiffe://example.org/backend";
pub const FRONTEND: &str = "spiffe://example.org/frontend";
pub const INTRUDER: &str = "spiffe://example.org/intruder";

/// A development CA for one trust domain.
pub struct Pki {
    pub td: TrustDomain,
    pub ca: Arc<CertificateAuthority>,
}

impl Pki {
    pub fn new(trust_domain: &str) -> Self {
        let td = TrustDomain::new(trust_domain).unwrap();
        let ca = Arc::new(
            CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())
                .unwrap(),
        );
        Self { td, ca }
    }

    pub fn bundles(&self) -> BundleSet {
        BundleSet::from(self.ca.bundle().unwrap())
    }

    pub fn svid(&self, spiffe_id: &str) -> X509Svid {
        self.ca.issue(&SvidRequest::new(id(spiffe_id))).unwrap()
    }

    pub fn svid_ttl(&self, spiffe_id: &str, ttl: Duration) -> X509Svid {
        self.ca
            .issue(&SvidRequest::new(id(spiffe_id)).ttl(ttl))
            .unwrap()
    }

    /// What a fresh SVID for `spiffe_id` proves as a client to a server
    /// trusting this CA, now (see `mtls_testing::client_identity`).
    pub fn peer(&self, spiffe_id: &str) -> PeerIdentity {
        mtls_testing::client_identity(self.svid(spiffe_id).chain(), &self.bundles())
    }

    /// The backend's server config: members of the trust domain may
    /// connect; ALPN h2 and http/1.1.
    pub fn server_config(&self) -> MtlsServerConfig {
        MtlsServerConfig::builder(self.svid(BACKEND), self.bundles())
            .authorizer(authorize::member_of(self.td.clone()))
            .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
            .build()
            .unwrap()
    }

    /// A client config presenting `svid`, expecting the backend.
    pub fn client_config(&self, svid: X509Svid, alpn: &[&[u8]]) -> MtlsClientConfig {
        client_config(svid, self.bundles(), alpn)
    }

    /// An HTTP client presenting a fresh SVID for `spiffe_id`, offering
    /// `alpn`, expecting the backend.
    pub fn http_client(&self, spiffe_id: &str, alpn: &[&[u8]]) -> HttpClient {
        http_client(self.client_config(self.svid(spiffe_id), alpn))
    }
}

/// A development CA for example.org, and the backend serving `app` on
/// loopback with its [`Pki::server_config`].
pub async fn backend(app: Router) -> (Pki, Server) {
    let pki = Pki::new("example.org");
    let server = serve(pki.server_config(), app).await;
    (pki, server)
}

pub fn client_config(
    svid: impl SvidSource + 'static,
    bundles: BundleSet,
    alpn: &[&[u8]],
) -> MtlsClientConfig {
    MtlsClientConfig::builder(svid, bundles)
        .authorizer(authorize::exact(id(BACKEND)))
        .alpn_protocols(alpn.iter().map(|p| p.to_vec()).collect())
        .build()
        .unwrap()
}

/// A client config presenting `svid` with resumption on (ALPN http/1.1,
/// expecting the backend), as a `TlsConnector`: one connector shares its
/// session cache across connections.
pub fn resuming_connector(pki: &Pki, svid: X509Svid) -> tokio_rustls::TlsConnector {
    let config = MtlsClientConfig::builder(svid, pki.bundles())
        .authorizer(authorize::exact(id(BACKEND)))
        .alpn_protocols(vec![b"http/1.1".to_vec()])
        .resumption(true)
        .build()
        .unwrap();
    tokio_rustls::TlsConnector::from(config.rustls_config())
}

/// A router with `GET /whoami`, answering the caller's SPIFFE ID and a
/// newline (no authorization layer).
pub fn whoami_router() -> Router {
    Router::new().route(
        "/whoami",
        axum::routing::get(|PeerId(id): PeerId| async move { format!("{id}\n") }),
    )
}

/// Whether `policy` lets `peer`, authenticated by mTLS, make `req`.
pub fn allows<B>(
    policy: &impl AuthorizeRequest,
    peer: &PeerIdentity,
    req: &http::Request<B>,
) -> bool {
    policy
        .authorize_request(Caller::X509(peer), req.into())
        .is_ok()
}

pub const H2: &[&[u8]] = &[b"h2"];
pub const H1: &[&[u8]] = &[b"http/1.1"];

/// An SVID source with nothing to present: the client sends an empty
/// Certificate message.
pub struct NoSvid;

impl SvidSource for NoSvid {
    fn current_svid(&self) -> Option<X509Svid> {
        None
    }
}

/// A running axum server on an `MtlsListener`.
pub struct Server {
    pub addr: SocketAddr,
    pub stats: Arc<ListenerStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn url(&self, path: &str) -> http::Uri {
        format!("https://{}{path}", self.addr).parse().unwrap()
    }

    /// The status of `client`'s GET of `path` (which must be answered).
    pub async fn status(&self, client: &HttpClient, path: &str) -> u16 {
        fetch(client, self.url(path)).await.unwrap().status
    }

    /// `client`'s GET of `/whoami` fails at the handshake: this server has
    /// then failed `failed` handshakes in all, and accepted none.
    pub async fn assert_refuses(&self, client: &HttpClient, failed: u64) {
        let err = fetch(client, self.url("/whoami")).await.err();
        assert!(err.is_some(), "the handshake must fail");
        assert!(eventually(TEST_TIMEOUT, || self.stats.failed() == failed).await);
        assert_eq!(self.stats.accepted(), 0);
    }
}

/// Serves `app` on loopback with connect info (the normal setup).
pub async fn serve(server: MtlsServerConfig, app: Router) -> Server {
    serve_with(server, ListenerConfig::default(), app).await
}

pub async fn serve_with(server: MtlsServerConfig, config: ListenerConfig, app: Router) -> Server {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(tcp, server, config, app)
}

pub fn serve_on(
    tcp: TcpListener,
    server: MtlsServerConfig,
    config: ListenerConfig,
    app: Router,
) -> Server {
    let listener = MtlsListener::new(tcp, server, config).unwrap();
    let addr = listener.local_addr();
    let stats = listener.stats();
    let task = tokio::spawn(async move {
        mtls_tower::serve(listener, app).await.unwrap();
    });
    Server { addr, stats, task }
}

/// Serves `app` WITHOUT connect info: requests carry no peer.
pub async fn serve_without_connect_info(server: MtlsServerConfig, app: Router) -> Server {
    let listener = MtlsListener::bind("127.0.0.1:0", server).await.unwrap();
    let addr = listener.local_addr();
    let stats = listener.stats();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, stats, task }
}

pub type HttpClient = Client<MtlsConnector, Empty<Bytes>>;

pub fn http_client(config: MtlsClientConfig) -> HttpClient {
    Client::builder(TokioExecutor::new()).build(MtlsConnector::new(config))
}

/// GETs `uri`: status, version, body and the response (minus the body).
pub struct Got {
    pub status: u16,
    pub version: http::Version,
    pub body: String,
    pub parts: http::response::Parts,
}

pub async fn fetch(client: &HttpClient, uri: http::Uri) -> Result<Got, String> {
    let res = client.get(uri).await.map_err(|e| format!("{e:?}"))?;
    let (parts, body) = res.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    Ok(Got {
        status: parts.status.as_u16(),
        version: parts.version,
        body: String::from_utf8_lossy(&body).into_owned(),
        parts,
    })
}

/// A plain rustls client config presenting `svid` (if any), with the given
/// protocol versions, trusting any server.
pub fn raw_client_config(
    svid: Option<&X509Svid>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let provider = mtls_core::default_crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(accept_any_server(&provider));
    let mut config = match svid {
        Some(svid) => builder
            .with_client_auth_cert(svid.chain().to_vec(), svid.private_key().clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// The first bytes a rustls client sends: a real ClientHello record.
pub fn client_hello_bytes(config: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}
