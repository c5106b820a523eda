//! `JwtSvidLayer` over real loopback HTTP: a plain-HTTP axum server, as
//! behind a TLS-terminating proxy, authenticating callers by the JWT-SVID
//! in `Authorization: Bearer`, with `PeerId` and an `AuthorizeLayer`
//! policy working unchanged on the JWT-SVID's subject.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_core::{JwtBundleSet, JwtSvidValidator, SharedJwtBundles};
use mtls_testing::{bounded, TestJwtIssuer};
use mtls_tower::{AuthorizeLayer, Denial, JwtSvidLayer, PeerId};
use tokio::net::TcpListener;

const AUDIENCE: &str = "spiffe://example.org/api";
const WEB: &str = "spiffe://example.org/web";
const ADMIN: &str = "spiffe://example.org/admin";

/// Serves `/whoami` (any caller) and `/admin` (the admin only) behind a
/// `JwtSvidLayer` and an `AuthorizeLayer`; returns its address.
async fn serve(bundles: SharedJwtBundles) -> SocketAddr {
    let app: Router = Router::new()
        .route(
            "/whoami",
            get(|PeerId(id): PeerId| async move { id.to_string() }),
        )
        .route("/admin", get(|| async { "admin" }))
        .layer(AuthorizeLayer::from_fn(|caller, request| {
            assert!(caller.x509().is_none(), "no X.509 peer on plain HTTP");
            let svid = caller.jwt_svid().expect("the JWT-SVID caller");
            assert_eq!(svid.spiffe_id(), caller.spiffe_id());
            if request.path() != "/admin" || caller.spiffe_id().as_str() == ADMIN {
                Ok(())
            } else {
                Err(Denial::new("admin only"))
            }
        }))
        .layer(JwtSvidLayer::new(JwtSvidValidator::new(AUDIENCE), bundles));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// What the server answered: status, `WWW-Authenticate`, `grpc-status`,
/// body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    grpc_status: Option<String>,
    body: String,
}

async fn call(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = bounded(client.request(request.body(Empty::new()).unwrap()))
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: response.status(),
        challenge: header("www-authenticate"),
        grpc_status: header("grpc-status"),
        body: String::new(),
    }
    .with_body(response.into_body().collect().await.unwrap().to_bytes())
}

impl Answer {
    fn with_body(mut self, body: Bytes) -> Self {
        self.body = String::from_utf8(body.to_vec()).unwrap();
        self
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn bearer_jwt_svids_authenticate_callers_over_loopback_http() {
    let issuer = TestJwtIssuer::new("example.org", "k1");
    let bundles = SharedJwtBundles::new(JwtBundleSet::from(issuer.bundle()));
    let addr = serve(bundles.clone()).await;
    let minute = Duration::from_secs(60);
    let web = issuer.mint(WEB, &[AUDIENCE], minute);
    let admin = issuer.mint(ADMIN, &[AUDIENCE], minute);

    // No credentials, or another scheme: a bare Bearer challenge.
    for headers in [&[][..], &[("authorization", "Basic d2ViOnB3")][..]] {
        let answer = call(addr, "/whoami", headers).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
        assert_eq!(answer.challenge.as_deref(), Some("Bearer"));
    }

    // A valid JWT-SVID: PeerId is its subject; the scheme is case-insensitive.
    for value in [bearer(&web), format!("bearer  {web}")] {
        let answer = call(addr, "/whoami", &[("authorization", &value)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_eq!(answer.body, WEB);
    }

    // The policy decides on the JWT-SVID's subject.
    let answer = call(addr, "/admin", &[("authorization", &bearer(&web))]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
    let answer = call(addr, "/admin", &[("authorization", &bearer(&admin))]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");

    // Invalid tokens: invalid_token, whatever the reason.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = issuer.sign(&format!(
        r#"{{"sub":"{WEB}","aud":"{AUDIENCE}","exp":{}}}"#,
        now - 3600
    ));
    let rogue = TestJwtIssuer::new("example.org", "k1").mint(WEB, &[AUDIENCE], minute);
    let elsewhere = issuer.mint(WEB, &["spiffe://example.org/other"], minute);
    for (what, value) in [
        ("garbage", bearer("not.a.token")),
        ("expired", bearer(&expired)),
        ("signed by another key", bearer(&rogue)),
        ("for another audience", bearer(&elsewhere)),
        (
            "alg none",
            bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy94In0."),
        ),
        ("empty", "Bearer ".to_owned()),
    ] {
        let answer = call(addr, "/whoami", &[("authorization", &value)]).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {answer:?}"
        );
        assert_eq!(
            answer.challenge.as_deref(),
            Some(r#"Bearer error="invalid_token""#),
            "{what}"
        );
        assert!(
            !answer.body.contains("jwt-svid:"),
            "{what}: the reason is sent: {answer:?}"
        );
    }
    let answer = call(
        addr,
        "/whoami",
        &[
            ("authorization", &bearer(&web)),
            ("authorization", &bearer(&admin)),
        ],
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "two tokens: {answer:?}"
    );

    // gRPC: UNAUTHENTICATED.
    let answer = call(addr, "/whoami", &[("content-type", "application/grpc")]).await;
    assert_eq!(answer.grpc_status.as_deref(), Some("16"), "{answer:?}");
    let answer = call(
        addr,
        "/whoami",
        &[
            ("content-type", "application/grpc+proto"),
            ("authorization", &bearer(&rogue)),
        ],
    )
    .await;
    assert_eq!(answer.grpc_status.as_deref(), Some("16"), "{answer:?}");

    // The bundles are read at every request: without them, nothing passes.
    bundles.set(JwtBundleSet::new());
    let answer = call(addr, "/whoami", &[("authorization", &bearer(&web))]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    bundles.set(JwtBundleSet::from(issuer.bundle()));
    let answer = call(addr, "/whoami", &[("authorization", &bearer(&web))]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
}

/// In process: a request with both an X.509 peer and a JWT-SVID needs both,
/// and the X.509 peer is the caller; a JWT-SVID caller gets no
/// `PeerIdentity`.
#[tokio::test]
async fn with_an_x509_peer_too_both_must_pass_and_the_x509_peer_is_the_caller() {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use http::Response;
    use http_body_util::Full;
    use mtls_core::PeerIdentity;
    use mtls_testing::TestCa;
    use tower::{Layer, ServiceExt};

    let ca = TestCa::root("example.org");
    let proxy = ca.leaf("spiffe://example.org/proxy").svid();
    let peer = mtls_testing::client_identity(proxy.chain(), &ca.bundle_set());
    let issuer = TestJwtIssuer::new("example.org", "k1");
    let bundles = JwtBundleSet::from(issuer.bundle());
    let web = issuer.mint(WEB, &[AUDIENCE], Duration::from_secs(60));

    let seen = Arc::new(Mutex::new(Vec::new()));
    let policy = {
        let seen = seen.clone();
        move |caller: mtls_tower::Caller<'_>, _: mtls_tower::RequestHead<'_>| {
            seen.lock()
                .unwrap()
                .push((caller.spiffe_id().to_string(), caller.x509().is_some()));
            Ok(())
        }
    };
    let inner = tower::service_fn(|req: Request<Empty<Bytes>>| async move {
        let has_peer = req.extensions().get::<PeerIdentity>().is_some();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(has_peer.to_string()))))
    });
    let service = JwtSvidLayer::new(JwtSvidValidator::new(AUDIENCE), bundles)
        .layer(AuthorizeLayer::from_fn(policy).layer(inner));
    let request = |peer: Option<&PeerIdentity>, token: Option<&str>| {
        let mut builder = Request::get("/x");
        if let Some(token) = token {
            builder = builder.header("authorization", bearer(token));
        }
        let mut req = builder.body(Empty::new()).unwrap();
        if let Some(peer) = peer {
            req.extensions_mut().insert(peer.clone());
        }
        req
    };

    // Both: the X.509 peer is the caller.
    let response = service
        .clone()
        .oneshot(request(Some(&peer), Some(&web)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "true");
    // The X.509 peer alone is not enough for the JWT-SVID layer.
    let response = service
        .clone()
        .oneshot(request(Some(&peer), None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The JWT-SVID alone: its subject is the caller, with no PeerIdentity.
    let response = service
        .clone()
        .oneshot(request(None, Some(&web)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "false");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("spiffe://example.org/proxy".to_owned(), true),
            (WEB.to_owned(), false)
        ]
    );
}

async fn body<B>(response: http::Response<B>) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}
