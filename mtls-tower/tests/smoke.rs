#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{
    authorize, BundleSet, MtlsClientConfig, MtlsServerConfig, PeerIdentity, SpiffeId, TrustDomain,
};
use mtls_tower::{AuthorizeLayer, MtlsConnector, MtlsListener, PeerId, RoutePolicy};

#[tokio::test]
async fn axum_end_to_end() {
    let td = TrustDomain::new("example.org").unwrap();
    let ca = Arc::new(
        CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())
            .unwrap(),
    );
    let bundles = BundleSet::from(ca.bundle().unwrap());
    let id = |s: &str| SpiffeId::new(s).unwrap();
    let server_svid = ca
        .issue(&SvidRequest::new(id("spiffe://example.org/backend")))
        .unwrap();
    let server = MtlsServerConfig::builder(server_svid, bundles.clone())
        .authorizer(authorize::member_of(td.clone()))
        .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        .resumption(true)
        .build()
        .unwrap();
    let policy = RoutePolicy::builder()
        .route(
            "/orders",
            authorize::exact(id("spiffe://example.org/frontend")),
        )
        .route("/whoami", authorize::any())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/whoami",
            get(|PeerId(id): PeerId| async move { format!("{id}\n") }),
        )
        .route("/orders", get(|| async { "orders\n" }))
        .layer(AuthorizeLayer::new(policy));
    let listener = MtlsListener::bind("127.0.0.1:0", server).await.unwrap();
    let addr = listener.local_addr();
    tokio::spawn(async move { mtls_tower::serve(listener, app).await.unwrap() });

    for (who, path, status) in [
        ("frontend", "/whoami", 200),
        ("frontend", "/orders", 200),
        ("intruder", "/orders", 403),
        ("intruder", "/nothing", 403),
    ] {
        let svid = ca
            .issue(&SvidRequest::new(id(&format!(
                "spiffe://example.org/{who}"
            ))))
            .unwrap();
        let client_config = MtlsClientConfig::builder(svid, bundles.clone())
            .authorizer(authorize::exact(id("spiffe://example.org/backend")))
            .alpn_protocols(vec![b"h2".to_vec()])
            .build()
            .unwrap();
        let client = Client::builder(TokioExecutor::new())
            .build::<_, Empty<Bytes>>(MtlsConnector::new(client_config));
        let res = client
            .get(format!("https://{addr}{path}").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{who} {path}");
        assert_eq!(res.version(), http::Version::HTTP_2);
        let server_id = res
            .extensions()
            .get::<PeerIdentity>()
            .unwrap()
            .spiffe_id()
            .clone();
        assert_eq!(server_id.as_str(), "spiffe://example.org/backend");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        if path == "/whoami" {
            assert_eq!(body, format!("spiffe://example.org/{who}\n"));
        }
    }
}
