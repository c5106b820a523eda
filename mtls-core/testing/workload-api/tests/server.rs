//! The test server speaks the Workload API as a SPIRE agent does, checked
//! with a plain tonic client generated from the same `workload.proto`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mtls_core::rustls::pki_types::CertificateDer;
use mtls_core::{SpiffeId, TrustDomain};
use mtls_testing::bounded;
use mtls_workload_api_testing::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use mtls_workload_api_testing::proto::{
    JwtBundlesRequest, JwtsvidRequest, ValidateJwtsvidRequest, X509BundlesRequest, X509svidRequest,
    X509svidResponse,
};
use mtls_workload_api_testing::{WorkloadApiServer, MISSING_HEADER_MESSAGE, SECURITY_HEADER};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

async fn client(agent: &WorkloadApiServer) -> SpiffeWorkloadApiClient<Channel> {
    let channel = Endpoint::from_shared(agent.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    SpiffeWorkloadApiClient::new(channel)
}

fn with_header<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(SECURITY_HEADER, "true".parse().unwrap());
    request
}

fn cert(byte: u8) -> CertificateDer<'static> {
    // The server checks nothing: any bytes do.
    CertificateDer::from(vec![byte; 4])
}

/// A running agent holding the material of [`push`] 1, and a client of it.
async fn agent_with_first_push() -> (WorkloadApiServer, SpiffeWorkloadApiClient<Channel>) {
    let agent = WorkloadApiServer::start().await.unwrap();
    push(&agent, 1);
    let client = client(&agent).await;
    (agent, client)
}

/// An open `FetchX509SVID` stream of `client`.
async fn svid_stream(
    client: &mut SpiffeWorkloadApiClient<Channel>,
) -> tonic::Streaming<X509svidResponse> {
    client
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner()
}

fn push(agent: &WorkloadApiServer, leaf: u8) {
    agent.set_x509(
        vec![(
            SpiffeId::new("spiffe://example.org/web").unwrap(),
            vec![cert(leaf), cert(0xCA)],
            vec![0x30, leaf],
        )],
        vec![cert(0xB1), cert(0xB2)],
        vec![(TrustDomain::new("partner.org").unwrap(), vec![cert(0xF1)])],
    );
}

#[tokio::test]
async fn calls_without_the_security_header_are_invalid_arguments() {
    bounded(async {
        let (agent, mut client) = agent_with_first_push().await;

        let status = client
            .fetch_x509svid(Request::new(X509svidRequest {}))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), MISSING_HEADER_MESSAGE);

        let mut wrong = Request::new(X509BundlesRequest {});
        wrong
            .metadata_mut()
            .insert(SECURITY_HEADER, "false".parse().unwrap());
        let status = client.fetch_x509_bundles(wrong).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(agent.x509_svid_calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn x509_streams_carry_every_push_and_end_on_close() {
    bounded(async {
        let (agent, mut client) = agent_with_first_push().await;

        let mut svids = svid_stream(&mut client).await;
        let mut bundles = client
            .fetch_x509_bundles(with_header(X509BundlesRequest {}))
            .await
            .unwrap()
            .into_inner();

        let first = svids.message().await.unwrap().unwrap();
        assert_eq!(first.svids.len(), 1);
        let svid = &first.svids[0];
        assert_eq!(svid.spiffe_id, "spiffe://example.org/web");
        assert_eq!(&svid.x509_svid[..], &[1, 1, 1, 1, 0xCA, 0xCA, 0xCA, 0xCA]);
        assert_eq!(&svid.x509_svid_key[..], &[0x30, 1]);
        assert_eq!(svid.bundle.len(), 8);
        assert_eq!(
            first.federated_bundles.keys().collect::<Vec<_>>(),
            ["spiffe://partner.org"]
        );

        let set = bundles.message().await.unwrap().unwrap();
        let mut keys: Vec<_> = set.bundles.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["spiffe://example.org", "spiffe://partner.org"]);

        // A push reaches the open streams.
        push(&agent, 2);
        let second = svids.message().await.unwrap().unwrap();
        assert_eq!(second.svids[0].x509_svid[0], 2);
        // (The bundles did not change: the bundles stream stays quiet.)
        assert_eq!(agent.open_streams(), 2);

        // An agent restart ends them cleanly; a new stream gets the current material.
        agent.close_streams();
        assert!(svids.message().await.unwrap().is_none());
        assert!(bundles.message().await.unwrap().is_none());
        let mut again = svid_stream(&mut client).await;
        assert_eq!(again.message().await.unwrap().unwrap(), second);
        assert_eq!(agent.x509_svid_calls(), 2);
    })
    .await;
}

#[tokio::test]
async fn denial_answers_permission_denied() {
    bounded(async {
        let (agent, mut client) = agent_with_first_push().await;
        let mut open = svid_stream(&mut client).await;
        assert!(open.message().await.unwrap().is_some());

        agent.deny(Some("no identity issued"));
        let status = open.message().await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        let status = client
            .fetch_x509svid(with_header(X509svidRequest {}))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "no identity issued");

        agent.deny(None);
        let mut served = svid_stream(&mut client).await;
        assert!(served.message().await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn jwt_rpcs_serve_what_the_test_sets() {
    bounded(async {
        let agent = WorkloadApiServer::start().await.unwrap();
        let mut client = client(&agent).await;
        let ask = || {
            with_header(JwtsvidRequest {
                audience: vec!["x".into()],
                spiffe_id: String::new(),
            })
        };
        // No minter yet: Unimplemented, as before JWT-SVIDs were served.
        let status = client.fetch_jwtsvid(ask()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(agent.jwt_svid_calls(), 1);

        agent.set_jwt_svids(|audience, spiffe_id| {
            assert_eq!(audience, ["x"]);
            assert_eq!(spiffe_id, "");
            Ok(vec![("spiffe://example.org/web".into(), "a.b.c".into())])
        });
        let served = client.fetch_jwtsvid(ask()).await.unwrap().into_inner();
        assert_eq!(served.svids.len(), 1);
        assert_eq!(served.svids[0].svid, "a.b.c");
        agent.set_jwt_svids(|_, _| Err(mtls_workload_api_testing::Status::unavailable("down")));
        let status = client.fetch_jwtsvid(ask()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        agent.deny(Some("no identity issued"));
        let status = client.fetch_jwtsvid(ask()).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        agent.deny(None);

        // JWT bundles: streamed as set, each change sent.
        let td = mtls_core::TrustDomain::new("example.org").unwrap();
        agent.set_jwt_bundles(vec![(td.clone(), b"{\"keys\":[]}".to_vec())]);
        let mut stream = client
            .fetch_jwt_bundles(with_header(JwtBundlesRequest {}))
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.bundles["spiffe://example.org"], b"{\"keys\":[]}");
        agent.set_jwt_bundles(vec![(td, b"{\"keys\":[{}]}".to_vec())]);
        let second = stream.message().await.unwrap().unwrap();
        assert_eq!(second.bundles["spiffe://example.org"], b"{\"keys\":[{}]}");

        let status = client
            .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
                audience: "x".into(),
                svid: "a.b.c".into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    })
    .await;
}

#[tokio::test]
async fn the_socket_is_removed_on_drop() {
    let agent = WorkloadApiServer::start().await.unwrap();
    let path = agent.socket_path().to_path_buf();
    assert!(path.exists());
    assert!(agent.endpoint().starts_with("unix:///"));
    drop(agent);
    assert!(!path.exists());
}
