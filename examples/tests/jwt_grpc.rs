//! Run with: `cargo test -p examples --test jwt_grpc`
//!
//! JWT-SVIDs over gRPC with tonic, both sides: a tonic client whose channel
//! is wrapped in `JwtSvidClientLayer` (tokens minted by the embedded CA,
//! cached) calls a tonic server behind `JwtSvidLayer` (plain HTTP/2, as
//! behind a TLS-terminating proxy); the handler sees the caller's SPIFFE
//! ID. Without a token, or with one for another audience, the server
//! answers UNAUTHENTICATED; a source that cannot mint fails the call on the
//! client side, without sending it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use examples::identity_proto::identity_client::IdentityClient;
use examples::identity_proto::identity_server::{Identity, IdentityServer};
use examples::identity_proto::{AdminReply, AdminRequest, WhoAmIReply, WhoAmIRequest};
use mtls_ca::{CaJwtSource, CaOptions, CertificateAuthority};
use mtls_core::{
    CachedJwtSvids, JwtBundle, JwtBundleSet, JwtSvid, JwtSvidValidator, SharedJwtBundles, SpiffeId,
    TrustDomain,
};
use mtls_tower::{JwtSvidClientLayer, JwtSvidLayer};
use tonic::{Code, Request, Response, Status};
use tower::ServiceBuilder;

const API: &str = "spiffe://example.org/api";
const WEB: &str = "spiffe://example.org/web";

/// Answers the subject of the JWT-SVID the layer validated.
struct JwtIdentity;

#[tonic::async_trait]
impl Identity for JwtIdentity {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIReply>, Status> {
        let svid = request
            .extensions()
            .get::<JwtSvid>()
            .ok_or_else(|| Status::unauthenticated("no JWT-SVID"))?;
        Ok(Response::new(WhoAmIReply {
            spiffe_id: svid.spiffe_id().to_string(),
        }))
    }

    async fn admin(&self, _: Request<AdminRequest>) -> Result<Response<AdminReply>, Status> {
        Err(Status::permission_denied("no admins here"))
    }
}

#[tokio::test]
async fn a_tonic_client_sends_jwt_svids_and_a_tonic_server_checks_them() {
    let ca = Arc::new(
        CertificateAuthority::self_signed_for_development(
            TrustDomain::new("example.org").unwrap(),
            &CaOptions::default(),
        )
        .unwrap(),
    );
    let bundles = SharedJwtBundles::new(JwtBundleSet::from(JwtBundle::from(
        &ca.spiffe_bundle().unwrap(),
    )));

    // The server: tonic behind the JWT-SVID layer, on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(JwtSvidLayer::new(JwtSvidValidator::new(API), bundles))
            .add_service(IdentityServer::new(JwtIdentity))
            .serve_with_incoming(incoming),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();

    // With the client layer: the handler sees our SPIFFE ID.
    let tokens = Arc::new(CachedJwtSvids::new(CaJwtSource::new(
        ca.clone(),
        SpiffeId::new(WEB).unwrap(),
    )));
    let with_tokens = |audience: &str| {
        IdentityClient::new(
            ServiceBuilder::new()
                .layer(JwtSvidClientLayer::new(tokens.clone(), audience))
                .service(channel.clone()),
        )
    };
    for _ in 0..3 {
        let reply = with_tokens(API)
            .who_am_i(WhoAmIRequest::default())
            .await
            .unwrap();
        assert_eq!(reply.into_inner().spiffe_id, WEB);
    }

    // Without a token, or with one for another audience: UNAUTHENTICATED.
    let status = IdentityClient::new(channel.clone())
        .who_am_i(WhoAmIRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = with_tokens("spiffe://example.org/billing")
        .who_am_i(WhoAmIRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A source that cannot mint (a subject outside the CA's trust domain):
    // the call fails on our side and is never sent.
    let foreign = CachedJwtSvids::new(CaJwtSource::new(
        ca,
        SpiffeId::new("spiffe://other.org/web").unwrap(),
    ));
    let status = IdentityClient::new(
        ServiceBuilder::new()
            .layer(JwtSvidClientLayer::new(foreign, API))
            .service(channel),
    )
    .who_am_i(WhoAmIRequest::default())
    .await
    .unwrap_err();
    assert_ne!(status.code(), Code::Ok, "{status:?}");
    assert!(
        format!("{status:?}").contains("other.org"),
        "the client-side reason: {status:?}"
    );
}
