//! Helpers shared by the in-process demo examples (`federation`,
//! `renewing-identity`, `cert-manager-files`, `jwt-proxy`, `quickstart`:
//! programs that run a server and its clients in one process).
//!
//! ```no_run
//! use examples::demo::{serve_whoami, whoami};
//! use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
//! use mtls_core::{authorize, BundleSet, MtlsClientConfig, MtlsServerConfig, SpiffeId, TrustDomain};
//!
//! # async fn run() -> Result<(), examples::BoxError> {
//! let td = TrustDomain::new("example.org")?;
//! let ca = CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())?;
//! let bundles = BundleSet::from(ca.bundle()?);
//! let server_svid = ca.issue(&SvidRequest::new(SpiffeId::new("spiffe://example.org/server")?))?;
//! let client_svid = ca.issue(&SvidRequest::new(SpiffeId::new("spiffe://example.org/client")?))?;
//! let server = MtlsServerConfig::builder(server_svid, bundles.clone())
//!     .authorizer(authorize::member_of(td))
//!     .build()?;
//! let client = MtlsClientConfig::builder(client_svid, bundles)
//!     .authorizer(authorize::exact(SpiffeId::new("spiffe://example.org/server")?))
//!     .build()?;
//! let addr = serve_whoami(server).await?;
//! let answer = whoami(&client, addr).await?;
//! assert_eq!(answer.body, "spiffe://example.org/client");
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_ca::CertificateAuthority;
use mtls_core::{MtlsClientConfig, MtlsServerConfig, PeerIdentity};
use mtls_tower::{MtlsConnectInfo, MtlsConnector, MtlsListener};

use crate::BoxError;

/// A plain rustls client config, web PKI style: it trusts the roots of
/// `ca`, checks the server's DNS name, and presents no certificate.
pub fn web_pki_client_config(ca: &CertificateAuthority) -> Result<rustls::ClientConfig, BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    for anchor in ca.trust_anchors() {
        roots.add(anchor.clone())?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(mtls_core::default_crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Serves `GET /whoami` (the caller's SPIFFE ID) on a loopback port.
pub async fn serve_whoami(server: MtlsServerConfig) -> Result<SocketAddr, BoxError> {
    let app = Router::new().route("/whoami", get(crate::handlers::whoami));
    let listener = MtlsListener::bind("127.0.0.1:0", server).await?;
    let addr = listener.local_addr();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
        )
        .await
    });
    Ok(addr)
}

/// What one call returned: the status, the body and the server's identity.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body, trailing newline removed.
    pub body: String,
    /// The server's identity, as the connector verified it.
    pub server: Option<PeerIdentity>,
}

/// `GET https://addr/whoami` on a new connection.
pub async fn whoami(client: &MtlsClientConfig, addr: SocketAddr) -> Result<Answer, BoxError> {
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build::<_, Empty<Bytes>>(MtlsConnector::new(client.clone()));
    let response = http.get(format!("https://{addr}/whoami").parse()?).await?;
    let status = response.status().as_u16();
    let server = response.extensions().get::<PeerIdentity>().cloned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).trim_end().to_owned(),
        server,
    })
}

/// The leaf's serial number in hex.
pub fn serial(identity: &PeerIdentity) -> String {
    use x509_parser::prelude::FromDer;
    x509_parser::certificate::X509Certificate::from_der(identity.leaf())
        .map(|(_, c)| c.raw_serial_as_string())
        .unwrap_or_default()
}

/// Ends a demo: exit 0 when every check behaved as shown (`Ok(true)`),
/// 1 when one did not (`Ok(false)`) or on error (`program: <error>` on
/// stderr).
pub fn exit(program: &str, result: Result<bool, BoxError>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}
