//! A connection never outlives its peer's certificate path, and clients
//! that renew their SVID are never refused on a pooled connection.
//!
//! - A peer whose *intermediate* expired (the leaf still valid for hours) is
//!   refused per request like one whose leaf expired, and its connection
//!   is ended (HTTP/1.1 `Connection: close`, HTTP/2 transport end), on
//!   real HTTP/1.1 and HTTP/2 connections that stay open across the
//!   expiry.
//! - A client on `RenewingSvid` with a 3 s TTL calling every second for
//!   15 s through `MtlsConnector` and hyper's pool sees no failed request
//!   (HTTP/1.1 and HTTP/2).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mtls_core::{
    authorize, verify, BundleSet, CrlSet, MtlsServerConfig, PeerRole, RenewingSvid, SvidSpec,
    X509Svid,
};
use mtls_testing::{now, TestCa};
use mtls_tower::{AuthorizeLayer, MtlsConnectInfo, Peer, PeerId, RoutePolicy};
use time::OffsetDateTime;
use tower::ServiceExt;

/// A root for example.org and, under it, an intermediate valid from
/// `intermediate_from` to `intermediate_until`.
struct Kit {
    root: TestCa,
    intermediate: TestCa,
}

impl Kit {
    fn new(intermediate_from: OffsetDateTime, intermediate_until: OffsetDateTime) -> Self {
        let root = TestCa::root("example.org");
        let intermediate = root.intermediate_with(|p| {
            p.not_before = intermediate_from;
            p.not_after = intermediate_until;
        });
        Self { root, intermediate }
    }

    fn bundles(&self) -> BundleSet {
        self.root.bundle_set()
    }

    /// A leaf valid for two hours either side of now; under the
    /// intermediate, or directly under the root.
    fn leaf(&self, id: &str, under_intermediate: bool) -> X509Svid {
        let ca = if under_intermediate {
            &self.intermediate
        } else {
            &self.root
        };
        ca.leaf_with(id, |p| {
            p.not_before = now() - time::Duration::hours(2);
            p.not_after = now() + time::Duration::hours(2);
        })
        .svid()
    }
}

fn whoami_app() -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|PeerId(id): PeerId| async move { format!("{id}") }),
        )
        .route(
            "/expiry",
            get(|Peer(peer): Peer| async move {
                let secs =
                    |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
                format!("{} {}", secs(peer.not_after()), secs(peer.leaf_not_after()))
            }),
        )
        .layer(AuthorizeLayer::new(
            RoutePolicy::builder()
                .route(
                    "/",
                    authorize::member_of(mtls_core::TrustDomain::new("example.org").unwrap()),
                )
                .build()
                .unwrap(),
        ))
}

/// The identity carries the path's earliest expiry; the layer, the
/// extractors and the connect info act on it (no sockets: the time is
/// moved by verifying in the past).
#[tokio::test]
async fn layer_refuses_a_peer_whose_intermediate_expired_and_ends_its_connection() {
    // The intermediate expired a minute ago; the leaf is valid for 2 h.
    let kit = Kit::new(
        now() - time::Duration::hours(3),
        now() - time::Duration::minutes(1),
    );
    let leaf = kit.leaf(FRONTEND, true);
    let then = SystemTime::now() - Duration::from_secs(30 * 60);
    let peer = verify(
        leaf.chain(),
        &kit.bundles(),
        then,
        &CrlSet::new(),
        PeerRole::Client,
    )
    .unwrap();
    assert!(
        peer.not_after() < SystemTime::now(),
        "the path's expiry is the intermediate's"
    );
    assert!(peer.leaf_not_after() > SystemTime::now() + Duration::from_secs(3600));
    assert!(peer.is_expired_at(SystemTime::now()));
    // A new handshake (verification now) refuses it too.
    assert!(verify(
        leaf.chain(),
        &kit.bundles(),
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Client
    )
    .is_err());

    let remote: SocketAddr = "127.0.0.1:4242".parse().unwrap();
    for (version, grpc) in [
        (http::Version::HTTP_11, false),
        (http::Version::HTTP_2, false),
        (http::Version::HTTP_2, true),
    ] {
        let info = MtlsConnectInfo::new(peer.clone(), remote);
        let mut builder = Request::get("/whoami").version(version);
        if grpc {
            builder = builder.header(http::header::CONTENT_TYPE, "application/grpc");
        }
        let mut req = builder.body(axum::body::Body::empty()).unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(info.clone()));
        let res = whoami_app().oneshot(req).await.unwrap();
        if grpc {
            assert_eq!(res.headers()["grpc-status"], "16");
        } else {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{version:?}");
        }
        let close = res.headers().get(http::header::CONNECTION);
        if version == http::Version::HTTP_11 {
            assert_eq!(close.unwrap(), "close");
        } else {
            assert!(close.is_none(), "no connection header in HTTP/2");
        }
        assert!(
            info.is_ending(),
            "the connection is asked to end ({version:?}, grpc {grpc})"
        );
    }

    // The extractors alone (no layer) refuse it and end the connection.
    let info = MtlsConnectInfo::new(peer.clone(), remote);
    let app = Router::new().route("/", get(|PeerId(id): PeerId| async move { id.to_string() }));
    let mut req = Request::get("/").body(axum::body::Body::empty()).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(info.clone()));
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(info.is_ending());

    // tonic's helper too (feature `tonic`; `cargo test --workspace` has it).
    #[cfg(feature = "tonic")]
    {
        let info = MtlsConnectInfo::new(peer.clone(), remote);
        let mut req = tonic::Request::new(());
        req.extensions_mut().insert(info.clone());
        let status = mtls_tower::tonic_peer(&req).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(info.is_ending());
    }

    // A peer whose path is valid is served and its connection kept.
    let fresh = Kit::new(
        now() - time::Duration::hours(1),
        now() + time::Duration::hours(1),
    );
    let good = fresh.leaf(FRONTEND, true);
    let peer = mtls_testing::client_identity(good.chain(), &fresh.bundles());
    let info = MtlsConnectInfo::new(peer, remote);
    let mut req = Request::get("/whoami")
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(info.clone()));
    let res = whoami_app().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!info.is_ending());
}

/// How long the short-lived intermediate of the socket tests lives.
const INTERMEDIATE_TTL: i64 = 3;

/// A server for example.org whose own SVID sits under the root, and a
/// client SVID valid for 2 h under an intermediate that expires in 3 s.
async fn short_intermediate_setup() -> (Server, X509Svid, SystemTime, Kit) {
    let kit = Kit::new(
        now() - time::Duration::hours(1),
        now() + time::Duration::seconds(INTERMEDIATE_TTL),
    );
    let client = kit.leaf(FRONTEND, true);
    let intermediate_expiry = client.valid_until();
    assert!(client.not_after() > intermediate_expiry + Duration::from_secs(3600));
    let server = MtlsServerConfig::builder(kit.leaf(BACKEND, false), kit.bundles())
        .authorizer(authorize::member_of(
            mtls_core::TrustDomain::new("example.org").unwrap(),
        ))
        .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        .build()
        .unwrap();
    (
        serve(server, whoami_app()).await,
        client,
        intermediate_expiry,
        kit,
    )
}

/// Opens one raw TLS connection presenting `svid` (no pool, no retirement
/// by a connector: the server's behaviour alone is under test).
async fn raw_tls(
    addr: SocketAddr,
    svid: &X509Svid,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let config = raw_client_config(Some(svid), &[&rustls::version::TLS13], alpn);
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect("localhost".try_into().unwrap(), tcp)
        .await?;
    Ok(tls)
}

/// What a request on a connection that stayed open across the expiry got.
async fn status_or_error<B>(
    res: Result<http::Response<B>, hyper::Error>,
) -> Result<StatusCode, String> {
    res.map(|r| r.status()).map_err(|e| e.to_string())
}

/// Sleeps past `expiry`, then asserts that the connection behind `send`
/// (an HTTP/1 or HTTP/2 `SendRequest`: no trait joins them) does not serve
/// `request` with a 200: it is closed, fails, or answers otherwise.
macro_rules! assert_not_served_after {
    ($expiry:expr, $send:ident, $request:expr) => {{
        sleep_past($expiry, Duration::from_millis(1100)).await;
        let after = if $send.ready().await.is_ok() {
            status_or_error($send.send_request($request).await).await
        } else {
            Err("connection closed".into())
        };
        assert_ne!(
            after,
            Ok(StatusCode::OK),
            "served after the intermediate expired"
        );
    }};
}

#[tokio::test]
async fn http1_connection_open_across_an_intermediate_expiry_is_not_served() {
    bounded(async {
        let (server, client, expiry, _kit) = short_intermediate_setup().await;
        let tls = raw_tls(server.addr, &client, H1).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let get = |path: &str| {
            Request::get(path)
                .header(http::header::HOST, "localhost")
                .body(Empty::<Bytes>::new())
                .unwrap()
        };
        let res = send.send_request(get("/expiry")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(
            body,
            format!("{} {}", secs(expiry), secs(client.not_after())),
            "the identity carries the intermediate's expiry, and the leaf's"
        );

        // The same connection: ended by the server at the expiry, or a 401.
        assert_not_served_after!(expiry, send, get("/whoami"));
        // The server ended the connection.
        bounded_by(Duration::from_secs(5), conn).await.unwrap().ok();
        // And a new handshake is refused.
        let refused = match raw_tls(server.addr, &client, H1).await {
            Err(_) => true,
            Ok(tls) => {
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                send.send_request(get("/whoami")).await.is_err()
            }
        };
        assert!(
            refused,
            "a new handshake with the expired intermediate succeeded"
        );
    })
    .await;
}

#[tokio::test]
async fn http2_connection_open_across_an_intermediate_expiry_is_not_served() {
    bounded(async {
        let (server, client, expiry, _kit) = short_intermediate_setup().await;
        let tls = raw_tls(server.addr, &client, H2).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        let get = |path: &str| {
            Request::get(format!("https://localhost{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap()
        };
        let res = send.send_request(get("/whoami")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);

        assert_not_served_after!(expiry, send, get("/whoami"));
        bounded_by(Duration::from_secs(5), conn).await.unwrap().ok();
    })
    .await;
}

/// A server on a long-lived SVID, and a client whose SVID (3 s TTL) renews
/// itself at about half its life; it calls once a second for 15 s through
/// the pool.
async fn renewal_under_pool(alpn: &[&[u8]], version: http::Version) {
    let pki = Pki::new("example.org");
    let server = serve(pki.server_config(), whoami_app()).await;
    let svid = RenewingSvid::start(
        pki.ca.clone(),
        SvidSpec::new(id(FRONTEND)).ttl(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    let svid = Arc::new(svid);
    let client = http_client(client_config(svid.clone(), pki.bundles(), alpn));
    let mut failures = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..15 {
        let leaf = svid.svid().leaf().clone();
        if !leaves.contains(&leaf) {
            leaves.push(leaf);
        }
        match fetch(&client, server.url("/whoami")).await {
            Ok(got) if got.status == 200 && got.version == version => {}
            Ok(got) => failures.push(format!(
                "call {i}: {} {:?} {}",
                got.status,
                got.version,
                got.body.trim()
            )),
            Err(e) => failures.push(format!("call {i}: {e}")),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    assert!(
        leaves.len() >= 4,
        "the SVID renewed only {} times",
        leaves.len() - 1
    );
    assert!(
        server.stats.accepted() >= 4,
        "connections were not replaced after renewals ({} handshakes)",
        server.stats.accepted()
    );
}

/// [`renewal_under_pool`], bounded by a minute.
async fn bounded_renewal_under_pool(alpn: &[&[u8]], version: http::Version) {
    bounded_by(Duration::from_secs(60), renewal_under_pool(alpn, version)).await;
}

#[tokio::test]
async fn renewing_client_over_http1_pool_never_fails() {
    bounded_renewal_under_pool(H1, http::Version::HTTP_11).await;
}

#[tokio::test]
async fn renewing_client_over_http2_pool_never_fails() {
    bounded_renewal_under_pool(H2, http::Version::HTTP_2).await;
}
