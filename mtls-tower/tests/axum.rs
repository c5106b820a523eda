//! axum end to end over loopback with real mTLS handshakes: the listener,
//! the authorization layer, the extractors and the client connector.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use mtls_core::{authorize, MtlsClientConfig, PeerIdentity};
use mtls_tower::{AuthorizeLayer, MtlsConnector, Peer, PeerId, RoutePolicy};

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn whoami(PeerId(id): PeerId) -> String {
    format!("{id}\n")
}

async fn peer(Peer(p): Peer) -> String {
    format!(
        "{} {} {}",
        p.spiffe_id(),
        unix(p.not_after()),
        p.chain().len()
    )
}

/// `/whoami` and `/peer`: anyone; `/orders`: the frontend only; `/nothing`
/// has a handler but no rule (default deny).
fn app() -> Router {
    let policy = RoutePolicy::builder()
        .route("/whoami", authorize::any())
        .route("/peer", authorize::any())
        .route("/orders", authorize::exact(id(FRONTEND)))
        .build()
        .unwrap();
    Router::new()
        .route("/whoami", get(whoami))
        .route("/peer", get(peer))
        .route("/orders", get(|| async { "orders\n" }))
        .route("/nothing", get(|| async { "nothing\n" }))
        .layer(AuthorizeLayer::new(policy))
}

#[tokio::test]
async fn allowed_peer_gets_its_id_over_h2_and_http1() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        for (alpn, version) in [(H2, http::Version::HTTP_2), (H1, http::Version::HTTP_11)] {
            let client = pki.http_client(FRONTEND, alpn);
            let got = fetch(&client, server.url("/whoami")).await.unwrap();
            assert_eq!(got.status, 200);
            assert_eq!(got.version, version, "ALPN {alpn:?}");
            assert_eq!(got.body, format!("{FRONTEND}\n"));
            // The connector puts the server's verified identity in the
            // response's extensions.
            let server_id = got.parts.extensions.get::<PeerIdentity>().unwrap();
            assert_eq!(server_id.spiffe_id().as_str(), BACKEND);

            let got = fetch(&client, server.url("/orders")).await.unwrap();
            assert_eq!(got.status, 200);
            assert_eq!(got.body, "orders\n");
        }
        assert_eq!(server.stats.accepted(), 2);
        assert_eq!(server.stats.failed(), 0);
    })
    .await;
}

#[tokio::test]
async fn peer_extractor_gives_the_whole_identity() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        let svid = pki.svid(FRONTEND);
        let expected = format!(
            "{FRONTEND} {} {}",
            unix(svid.not_after()),
            svid.chain().len()
        );
        let client = http_client(pki.client_config(svid, H2));
        let got = fetch(&client, server.url("/peer")).await.unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body, expected);
    })
    .await;
}

#[tokio::test]
async fn peer_not_allowed_by_route_policy_gets_403() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        for alpn in [H2, H1] {
            let client = pki.http_client(INTRUDER, alpn);
            let got = fetch(&client, server.url("/orders")).await.unwrap();
            assert_eq!(got.status, 403, "ALPN {alpn:?}");
            // A short body that tells nothing about the policy.
            assert_eq!(got.body, "permission denied\n");
            assert!(got.body.len() < 64);
            assert!(!got.body.contains("frontend"));
            // The intruder is still a member of the trust domain: it may
            // call the routes open to anyone on the same client.
            let got = fetch(&client, server.url("/whoami")).await.unwrap();
            assert_eq!(got.status, 200);
            assert_eq!(got.body, format!("{INTRUDER}\n"));
        }
        // Denied requests are not failed handshakes.
        assert_eq!(server.stats.accepted(), 2);
        assert_eq!(server.stats.failed(), 0);
    })
    .await;
}

#[tokio::test]
async fn route_without_rule_is_denied() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        let client = pki.http_client(FRONTEND, H2);
        // A handler exists, but no rule matches: default deny.
        let got = fetch(&client, server.url("/nothing")).await.unwrap();
        assert_eq!(got.status, 403);
        assert_eq!(got.body, "permission denied\n");
        // No handler and no rule: the layer answers before the router.
        let got = fetch(&client, server.url("/missing")).await.unwrap();
        assert_eq!(got.status, 403);
        // `/ordersx` is not under `/orders`.
        let got = fetch(&client, server.url("/ordersx")).await.unwrap();
        assert_eq!(got.status, 403);
    })
    .await;
}

#[tokio::test]
async fn peer_of_another_trust_domain_fails_the_handshake() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        let other = Pki::new("other.org");
        // The client trusts the server (it has the server's bundle), so
        // only the server can be the one refusing.
        let client = http_client(client_config(
            other.svid("spiffe://other.org/frontend"),
            pki.bundles(),
            H2,
        ));
        server.assert_refuses(&client, 1).await;

        // Even a server that trusts other.org's bundle refuses it when the
        // authorizer admits only example.org.
        let both = mtls_core::BundleSet::from_bundles([
            pki.ca.bundle().unwrap(),
            other.ca.bundle().unwrap(),
        ])
        .unwrap();
        let config = mtls_core::MtlsServerConfig::builder(pki.svid(BACKEND), both)
            .authorizer(authorize::member_of(pki.td.clone()))
            .alpn_protocols(vec![b"h2".to_vec()])
            .build()
            .unwrap();
        let server = serve(config, app()).await;
        server.assert_refuses(&client, 1).await;
    })
    .await;
}

#[tokio::test]
async fn client_without_certificate_fails_the_handshake() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        for (alpn, failed) in [(H2, 1), (H1, 2)] {
            let client = http_client(client_config(NoSvid, pki.bundles(), alpn));
            server.assert_refuses(&client, failed).await;
        }
    })
    .await;
}

#[tokio::test]
async fn client_refuses_a_server_with_an_unexpected_id() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        let config = MtlsClientConfig::builder(pki.svid(FRONTEND), pki.bundles())
            .authorizer(authorize::exact(id("spiffe://example.org/someone-else")))
            .alpn_protocols(vec![b"h2".to_vec()])
            .build()
            .unwrap();
        // The client refuses the server, and its alert ends the server's
        // handshake too.
        server.assert_refuses(&http_client(config), 1).await;
    })
    .await;
}

#[tokio::test]
async fn without_connect_info_the_layer_answers_401() {
    bounded(async {
        let pki = Pki::new("example.org");
        let server = serve_without_connect_info(pki.server_config(), app()).await;
        for alpn in [H2, H1] {
            let client = pki.http_client(FRONTEND, alpn);
            let got = fetch(&client, server.url("/whoami")).await.unwrap();
            assert_eq!(got.status, 401, "ALPN {alpn:?}");
            assert_eq!(got.body, "unauthenticated\n");
            assert_eq!(
                got.parts
                    .headers
                    .get(http::header::WWW_AUTHENTICATE)
                    .unwrap(),
                "mTLS"
            );
        }
        // The handshakes themselves succeeded.
        assert_eq!(server.stats.accepted(), 2);

        // The extractors alone answer 401 too.
        let bare = Router::new().route("/whoami", get(whoami));
        let server = serve_without_connect_info(pki.server_config(), bare).await;
        let client = pki.http_client(FRONTEND, H2);
        let got = fetch(&client, server.url("/whoami")).await.unwrap();
        assert_eq!(got.status, 401);
    })
    .await;
}

/// Sends one GET on an existing HTTP/1.1 connection.
async fn http1_on_one_connection(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> (StatusCode, String) {
    sender.ready().await.unwrap();
    let req = Request::get(path)
        .header(http::header::HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn peer_whose_svid_expires_is_refused_on_the_same_connection() {
    bounded(async {
        let pki = Pki::new("example.org");
        // Two servers: one with the layer, one with only the extractor.
        let layered = serve(pki.server_config(), app()).await;
        let bare = serve(
            pki.server_config(),
            Router::new().route("/whoami", get(whoami)),
        )
        .await;

        // mtls-ca backdates not_before; not_after is now + 3 s (whole
        // seconds).
        let svid = pki.svid_ttl(FRONTEND, Duration::from_secs(3));
        let not_after = svid.not_after();
        assert!(not_after > SystemTime::now(), "the SVID must be valid now");

        // HTTP/1.1: one explicit connection per server.
        let connector = MtlsConnector::new(pki.client_config(svid.clone(), H1));
        let mut senders = Vec::new();
        for server in [&layered, &bare] {
            let stream = connector.connect(&server.url("/")).await.unwrap();
            let (sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
            tokio::spawn(conn);
            senders.push(sender);
        }
        // HTTP/2: the pooled client multiplexes on one connection.
        let h2 = http_client(pki.client_config(svid, H2));

        for sender in &mut senders {
            let (status, body) = http1_on_one_connection(sender, "/whoami").await;
            assert_eq!(status, 200);
            assert_eq!(body, format!("{FRONTEND}\n"));
        }
        let got = fetch(&h2, layered.url("/whoami")).await.unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.version, http::Version::HTTP_2);

        sleep_past(not_after, Duration::from_millis(1100)).await;

        // The connections end when the peer's certificate expires (the
        // server ends them, and the connector retires them before): no
        // request is served on them any more, by the layer or the extractor.
        for sender in &mut senders {
            let served = match sender.ready().await {
                Err(_) => None,
                Ok(()) => {
                    let req = Request::get("/whoami")
                        .header(http::header::HOST, "localhost")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    sender.send_request(req).await.ok().map(|r| r.status())
                }
            };
            assert_ne!(
                served,
                Some(StatusCode::OK),
                "served after the SVID expired"
            );
        }
        // The pooled h2 client reconnects, presenting the expired SVID:
        // refused at the handshake.
        let got = fetch(&h2, layered.url("/whoami")).await;
        assert!(
            got.as_ref().map_or(true, |g| g.status != 200),
            "{:?}",
            got.map(|g| g.status)
        );
        assert_eq!(bare.stats.accepted(), 1);

        // And a new connection with the expired SVID fails the handshake.
        let short = pki.svid_ttl(FRONTEND, Duration::from_secs(1));
        sleep_past(short.not_after(), Duration::from_millis(1100)).await;
        let expired = pki.client_config(short, H1);
        // The connector does not even dial with it...
        let early = MtlsConnector::new(expired.clone())
            .connect(&layered.url("/"))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(
                early
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<mtls_tower::ConnectError>()),
                Some(mtls_tower::ConnectError::OwnSvidExpired(_))
            ),
            "{early:?}"
        );
        // ...and the server refuses it from a client that does.
        let tcp = tokio::net::TcpStream::connect(layered.addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(expired.rustls_config())
            .connect("localhost".try_into().unwrap(), tcp)
            .await;
        if let Ok(stream) = stream {
            // TLS 1.3: the client finishes first; the refusal comes after.
            let stream = hyper_util::rt::TokioIo::new(stream);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
            tokio::spawn(conn);
            let req = Request::get("/whoami")
                .header(http::header::HOST, "localhost")
                .body(Empty::<Bytes>::new())
                .unwrap();
            assert!(sender.send_request(req).await.is_err());
        }
        assert!(eventually(TEST_TIMEOUT, || layered.stats.failed() == 1).await);
        assert_eq!(layered.stats.accepted(), 2);
    })
    .await;
}
