//! Run with: `cargo run -p examples --bin jwt-proxy`
//!
//! A call through a TLS-terminating proxy, authenticated by a JWT-SVID.
//!
//! ```text
//! frontend --HTTPS--> proxy (terminates TLS) --HTTP--> backend
//!          Authorization: Bearer <JWT-SVID>  (forwarded as is)
//! ```
//!
//! The proxy ends the TLS connection, so the backend never sees the
//! frontend's X.509-SVID; the frontend proves who it is with a JWT-SVID
//! minted by its trust domain's CA for the backend's audience. The backend
//! validates it (`JwtSvidLayer`) against the JWT authorities of the CA's
//! SPIFFE bundle and authorizes its subject (`AuthorizeLayer`), exactly as
//! it would an mTLS peer. Exits 0 when every call behaved as shown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use examples::demo;
use examples::BoxError;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mtls_ca::{CaOptions, CertificateAuthority, JwtSvidRequest, SvidRequest};
use mtls_core::{
    JwtBundle, JwtBundleSet, JwtSvidValidator, SharedJwtBundles, SpiffeId, TrustDomain,
};
use mtls_tower::{AuthorizeLayer, Denial, JwtSvidLayer, PeerId};
use rustls::pki_types::ServerName;
use tokio::net::TcpListener;

const BACKEND: &str = "spiffe://example.org/backend";
const FRONTEND: &str = "spiffe://example.org/frontend";
const INTRUDER: &str = "spiffe://example.org/intruder";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    demo::exit("jwt-proxy", run().await)
}

async fn run() -> Result<bool, BoxError> {
    let td = TrustDomain::new("example.org")?;
    // A development root (never in production); it also holds the trust
    // domain's JWT signing key.
    let ca = CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())?;

    // The backend: plain HTTP, as behind the proxy. The JWT authorities come
    // from the CA's SPIFFE bundle, as a partner would fetch them.
    let jwt_bundle = JwtBundle::from(&ca.spiffe_bundle()?);
    let bundles = SharedJwtBundles::new(JwtBundleSet::from(jwt_bundle));
    let backend = Router::new()
        .route(
            "/whoami",
            get(|PeerId(id): PeerId| async move { id.to_string() }),
        )
        .layer(AuthorizeLayer::from_fn(|caller, _request| {
            if caller.spiffe_id().as_str() == FRONTEND {
                Ok(())
            } else {
                Err(Denial::new("only the frontend may call"))
            }
        }))
        .layer(JwtSvidLayer::new(JwtSvidValidator::new(BACKEND), bundles));
    let backend_listener = TcpListener::bind("127.0.0.1:0").await?;
    let backend_addr = backend_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(backend_listener, backend).await });

    // The proxy: terminates TLS with a web certificate for `localhost`,
    // forwards each request to the backend over plain HTTP.
    let proxy_cert = ca.issue(
        &SvidRequest::new(SpiffeId::new("spiffe://example.org/proxy")?).dns_name("localhost"),
    )?;
    let proxy_addr = proxy(proxy_cert, backend_addr).await?;
    println!("frontend --HTTPS--> proxy {proxy_addr} --HTTP--> backend {backend_addr}\n");

    // The frontend trusts the proxy's certificate through the CA's root
    // (web PKI style: it checks the name `localhost`).
    let tls = Arc::new(demo::web_pki_client_config(&ca)?);

    let mint = |id: &str, audience: &str| -> Result<String, BoxError> {
        Ok(ca.mint_jwt_svid(
            &JwtSvidRequest::new(SpiffeId::new(id)?, audience).ttl(Duration::from_secs(300)),
        )?)
    };
    let cases = [
        (
            "the frontend's JWT-SVID for the backend",
            Some(mint(FRONTEND, BACKEND)?),
            StatusCode::OK,
        ),
        (
            "no JWT-SVID: the proxy hop took the X.509 identity",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a JWT-SVID for another audience",
            Some(mint(FRONTEND, "spiffe://example.org/billing")?),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a valid JWT-SVID of a workload the policy does not allow",
            Some(mint(INTRUDER, BACKEND)?),
            StatusCode::FORBIDDEN,
        ),
    ];
    let mut all_ok = true;
    for (what, token, expected) in cases {
        let (status, body) = call(&tls, proxy_addr, token.as_deref()).await?;
        let as_expected = status == expected && (status != StatusCode::OK || body == FRONTEND);
        all_ok &= as_expected;
        println!(
            "{} {what}\n    HTTP {status}: {}",
            if as_expected { "[ok]  " } else { "[FAIL]" },
            body.trim()
        );
    }
    Ok(all_ok)
}

/// Starts the TLS-terminating proxy in front of `backend`; returns its
/// address.
async fn proxy(cert: mtls_core::X509Svid, backend: SocketAddr) -> Result<SocketAddr, BoxError> {
    let config = rustls::ServerConfig::builder_with_provider(mtls_core::default_crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(cert.chain().to_vec(), cert.private_key().clone_key())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let upstream: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let forward =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let upstream = upstream.clone();
                        async move {
                            // An unreachable backend is a 502, as a proxy says it.
                            Ok::<_, std::convert::Infallible>(
                                forward(&upstream, backend, req).await.unwrap_or_else(|e| {
                                    let mut r = Response::new(Full::new(Bytes::from(format!(
                                        "bad gateway: {e}\n"
                                    ))));
                                    *r.status_mut() = StatusCode::BAD_GATEWAY;
                                    r
                                }),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), forward)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Forwards one request to the backend, headers (the `Authorization`
/// header among them) as they came.
async fn forward(
    upstream: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    backend: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{backend}{path}").parse()?;
    let body = body.collect().await?.to_bytes();
    let response = upstream
        .request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        Full::new(body.collect().await?.to_bytes()),
    ))
}

/// GET /whoami through the proxy, with `token` as a bearer credential.
async fn call(
    tls: &Arc<rustls::ClientConfig>,
    proxy: SocketAddr,
    token: Option<&str>,
) -> Result<(StatusCode, String), BoxError> {
    let tcp = tokio::net::TcpStream::connect(proxy).await?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = Request::get("/whoami").header(http::header::HOST, "localhost");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new())?)
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
