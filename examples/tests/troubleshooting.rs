//! Run with: `cargo test -p examples --test troubleshooting`
//!
//! The errors a user meets, produced for real in-process (tonic and axum
//! on loopback, mtls-ca certificates), and `docs/troubleshooting.md`
//! checked against their texts.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use examples::identity_proto::identity_client::IdentityClient;
use examples::identity_proto::identity_server::{Identity, IdentityServer};
use examples::identity_proto::{AdminReply, AdminRequest, WhoAmIReply, WhoAmIRequest};
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{
    authorize, BundleSet, MtlsClientConfig, MtlsServerConfig, SpiffeId, TrustDomain, X509Svid,
};
use mtls_tower::{tonic_peer, MtlsConnector, MtlsListener};
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status};

const BACKEND: &str = "spiffe://example.org/backend";
const FRONTEND: &str = "spiffe://example.org/frontend";

fn id(s: &str) -> SpiffeId {
    s.parse().unwrap()
}

/// The messages of `e` and its `source()` chain, one per line.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(e) = next {
        text.push('\n');
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

struct Ca {
    td: TrustDomain,
    ca: CertificateAuthority,
}

impl Ca {
    fn new(td: &str) -> Self {
        let td = TrustDomain::new(td).unwrap();
        let ca =
            CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())
                .unwrap();
        Self { td, ca }
    }

    fn bundles(&self) -> BundleSet {
        BundleSet::from(self.ca.bundle().unwrap())
    }

    fn svid(&self, spiffe_id: &str, ttl: Duration) -> X509Svid {
        self.ca
            .issue(&SvidRequest::new(id(spiffe_id)).ttl(ttl))
            .unwrap()
    }
}

#[derive(Debug, Default)]
struct IdentityService;

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIReply>, Status> {
        let peer = tonic_peer(&request)?;
        Ok(Response::new(WhoAmIReply {
            spiffe_id: peer.spiffe_id().to_string(),
        }))
    }

    async fn admin(&self, _: Request<AdminRequest>) -> Result<Response<AdminReply>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

/// A tonic server on loopback; the task serving it.
async fn tonic_server(ca: &Ca) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let config =
        MtlsServerConfig::builder(ca.svid(BACKEND, Duration::from_secs(3600)), ca.bundles())
            .authorizer(authorize::member_of(ca.td.clone()))
            .alpn_protocols(vec![b"h2".to_vec()])
            .build()
            .unwrap();
    let listener = MtlsListener::bind("127.0.0.1:0", config).await.unwrap();
    let addr = listener.local_addr();
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(IdentityServer::new(IdentityService))
            .serve_with_incoming(listener)
            .await;
    });
    (addr, task)
}

fn client_config(ca: &Ca, svid: X509Svid) -> MtlsClientConfig {
    MtlsClientConfig::builder(svid, ca.bundles())
        .authorizer(authorize::exact(id(BACKEND)))
        .alpn_protocols(vec![b"h2".to_vec()])
        .build()
        .unwrap()
}

/// What a tonic client whose SVID has expired is told: the connect error
/// (eager channel) and the call's status (lazy channel), as chains.
async fn tonic_client_with_expired_svid() -> (String, String) {
    let ca = Ca::new("example.org");
    let (addr, _server) = tonic_server(&ca).await;
    let svid = ca.svid(FRONTEND, Duration::from_secs(1));
    let not_after = svid.not_after();
    let config = client_config(&ca, svid);
    if let Ok(wait) = (not_after + Duration::from_millis(1100)).duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let eager = endpoint
        .connect_with_connector(MtlsConnector::grpc(config.clone()))
        .await
        .err()
        .unwrap();
    let channel = endpoint.connect_with_connector_lazy(MtlsConnector::grpc(config));
    let status = IdentityClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .err()
        .unwrap();
    (chain(&eager), format!("{status}\n{}", chain(&status)))
}

#[tokio::test]
async fn a_tonic_client_whose_svid_expired_is_told_why() {
    let (eager, lazy) = tonic_client_with_expired_svid().await;
    for text in [&eager, &lazy] {
        assert!(
            text.contains("mtls-tower: the client's own SVID has expired"),
            "{text}"
        );
        assert!(
            text.contains(&format!("x509svid: the chain of {FRONTEND} expired at")),
            "{text}"
        );
    }
}

/// What a tonic client with its own rustls connector (no check of its own
/// SVID) is told when the server refuses its expired SVID after the TLS
/// 1.3 handshake: the call's status, as a chain.
async fn tonic_refused_after_handshake() -> String {
    let ca = Ca::new("example.org");
    let (addr, _server) = tonic_server(&ca).await;
    let svid = ca.svid(FRONTEND, Duration::from_secs(1));
    let not_after = svid.not_after();
    let rustls = client_config(&ca, svid).rustls_config();
    if let Ok(wait) = (not_after + Duration::from_millis(1100)).duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let connector = tower::service_fn(move |uri: http::Uri| {
        let rustls = rustls.clone();
        async move {
            let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
            let tcp = tokio::net::TcpStream::connect(authority).await?;
            let tls = tokio_rustls::TlsConnector::from(rustls)
                .connect("localhost".try_into().unwrap(), tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector_lazy(connector);
    let status = IdentityClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .err()
        .unwrap();
    format!("{status}\n{}", chain(&status))
}

#[tokio::test]
async fn a_refusal_after_the_handshake_names_the_alert() {
    let text = tonic_refused_after_handshake().await;
    assert!(
        text.starts_with("code: 'Unknown error', message: \"transport error\""),
        "{text}"
    );
    assert!(
        text.contains("received fatal alert: CertificateExpired"),
        "{text}"
    );
}
