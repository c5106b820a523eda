//! `AuthorizeLayer` as a plain Tower layer: a synthetic inner service and
//! hand-built requests carrying a `PeerIdentity` obtained from
//! `mtls_core::verify` on an issued chain; and with other
//! `AuthorizeRequest`s than a `RoutePolicy` (closures, a struct), in
//! process and over real mTLS requests.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use mtls_core::{authorize, PeerIdentity, X509Svid};
use mtls_tower::{
    authorize_fn, peer_identity, AuthorizeLayer, AuthorizeRequest, Caller, Denial, MtlsConnectInfo,
    RequestHead, RoutePolicy,
};
use tower::{Layer, ServiceExt};

fn identity(pki: &Pki, svid: &X509Svid) -> PeerIdentity {
    mtls_testing::client_identity(svid.chain(), &pki.bundles())
}

/// The frontend's identity from an SVID valid for one more second,
/// verified while valid (as at the handshake).
fn expiring_frontend() -> PeerIdentity {
    let pki = Pki::new("example.org");
    let svid = pki.svid_ttl(FRONTEND, Duration::from_secs(1));
    let peer = identity(&pki, &svid);
    assert_eq!(peer.not_after(), svid.not_after());
    peer
}

/// How the peer is attached to a request.
#[derive(Clone)]
enum Attach {
    None,
    Identity(PeerIdentity),
    ConnectInfo(PeerIdentity),
    AxumConnectInfo(PeerIdentity),
}

fn request(method: Method, path: &str, grpc: bool, peer: Attach) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if grpc {
        builder = builder.header(http::header::CONTENT_TYPE, "application/grpc");
    }
    let mut req = builder.body(Full::new(Bytes::from_static(b"x"))).unwrap();
    let remote_addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
    match peer {
        Attach::None => {}
        Attach::Identity(p) => {
            req.extensions_mut().insert(p);
        }
        Attach::ConnectInfo(peer) => {
            req.extensions_mut()
                .insert(MtlsConnectInfo::new(peer, remote_addr));
        }
        Attach::AxumConnectInfo(peer) => {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(MtlsConnectInfo::new(
                    peer,
                    remote_addr,
                )));
        }
    }
    req
}

/// A plain HTTP `GET path` with `peer` attached.
fn get(path: &str, peer: Attach) -> Request<Full<Bytes>> {
    request(Method::GET, path, false, peer)
}

/// A gRPC call (`POST`, `application/grpc`) of `path` with `peer` attached.
fn grpc(path: &str, peer: Attach) -> Request<Full<Bytes>> {
    request(Method::POST, path, true, peer)
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
    size_hint: Option<u64>,
}

impl Answer {
    /// A gRPC status: HTTP 200 with `grpc-status: code` and
    /// `grpc-message: message` (`case` names the request on failure).
    #[track_caller]
    fn assert_grpc(&self, code: &str, message: &str, case: &str) {
        assert_eq!(self.status, StatusCode::OK, "{case}");
        assert_eq!(self.headers["grpc-status"], code, "{case}");
        assert_eq!(self.headers["grpc-message"], message, "{case}");
    }
}

/// Runs `req` through the layer with `policy` around a service that
/// echoes the `PeerIdentity` it finds; counts the calls reaching it.
async fn call<P: AuthorizeRequest + Clone>(
    policy: &P,
    req: Request<Full<Bytes>>,
    calls: &Arc<AtomicUsize>,
) -> Answer {
    let counter = calls.clone();
    let inner = tower::service_fn(move |req: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let who = mtls_tower::peer_identity(req.extensions())
            .map_or_else(|| "nobody".to_owned(), |p| p.spiffe_id().to_string());
        async move {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                "inner saw {who}"
            )))))
        }
    });
    let svc = AuthorizeLayer::new(policy.clone()).layer(inner);
    let res = svc.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let size_hint = body.size_hint().exact();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
        size_hint,
    }
}

fn policy() -> RoutePolicy {
    RoutePolicy::builder()
        .route("/orders", authorize::exact(id(FRONTEND)))
        .route("/pkg.Orders", authorize::exact(id(FRONTEND)))
        .route("/public", authorize::any())
        .build()
        .unwrap()
}

struct Fixture {
    frontend: PeerIdentity,
    intruder: PeerIdentity,
    calls: Arc<AtomicUsize>,
    policy: RoutePolicy,
}

impl Fixture {
    /// [`call`] of `policy` with `req`, counting in `self.calls`.
    async fn send<P: AuthorizeRequest + Clone>(
        &self,
        policy: &P,
        req: Request<Full<Bytes>>,
    ) -> Answer {
        call(policy, req, &self.calls).await
    }

    /// [`Fixture::send`] of a `GET path` from `peer` (as a `PeerIdentity`
    /// extension).
    async fn get_as<P: AuthorizeRequest + Clone>(
        &self,
        policy: &P,
        path: &str,
        peer: &PeerIdentity,
    ) -> Answer {
        self.send(policy, get(path, Attach::Identity(peer.clone())))
            .await
    }
}

fn fixture() -> Fixture {
    let pki = Pki::new("example.org");
    Fixture {
        frontend: pki.peer(FRONTEND),
        intruder: pki.peer(INTRUDER),
        calls: Arc::new(AtomicUsize::new(0)),
        policy: policy(),
    }
}

#[tokio::test]
async fn allowed_request_reaches_inner_service_with_the_peer() {
    bounded(async {
        let f = fixture();
        let attachments = [
            Attach::Identity(f.frontend.clone()),
            Attach::ConnectInfo(f.frontend.clone()),
            Attach::AxumConnectInfo(f.frontend.clone()),
        ];
        for (n, attach) in attachments.into_iter().enumerate() {
            for (path, grpc) in [("/orders/7", false), ("/pkg.Orders/Get", true)] {
                let a = f
                    .send(&f.policy, request(Method::POST, path, grpc, attach.clone()))
                    .await;
                assert_eq!(a.status, StatusCode::OK);
                // The layer put the `PeerIdentity` into the extensions,
                // whichever way the peer came in.
                assert_eq!(a.body, format!("inner saw {FRONTEND}"));
                assert!(a.headers.get("grpc-status").is_none());
                assert_eq!(
                    f.calls.load(Ordering::SeqCst),
                    2 * n + 1 + usize::from(grpc)
                );
            }
        }
        // Anyone may call the public routes.
        let a = f.get_as(&f.policy, "/public", &f.intruder).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, format!("inner saw {INTRUDER}"));
    })
    .await;
}

#[tokio::test]
async fn http_denied_gets_403_with_a_short_body() {
    bounded(async {
        let f = fixture();
        for path in ["/orders", "/orders/7", "/nothing", "/", "/ordersx"] {
            let a = f.get_as(&f.policy, path, &f.intruder).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(a.body, "permission denied\n");
            assert_eq!(
                a.headers[http::header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
            assert!(a.headers.get(http::header::WWW_AUTHENTICATE).is_none());
            assert!(a.headers.get("grpc-status").is_none());
        }
        // No rule matches: denied even for the frontend.
        let a = f.get_as(&f.policy, "/nothing", &f.frontend).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(
            f.calls.load(Ordering::SeqCst),
            0,
            "denied requests never reach the service"
        );
    })
    .await;
}

#[tokio::test]
async fn http_unauthenticated_gets_401() {
    bounded(async {
        let f = fixture();
        for path in ["/public", "/orders", "/nothing"] {
            let a = f.send(&f.policy, get(path, Attach::None)).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(a.body, "unauthenticated\n");
            assert_eq!(a.headers[http::header::WWW_AUTHENTICATE], "mTLS");
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn grpc_denied_gets_permission_denied_trailers_only() {
    bounded(async {
        let f = fixture();
        for content_type in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc-web",
        ] {
            let mut req = request(
                Method::POST,
                "/pkg.Orders/Get",
                false,
                Attach::Identity(f.intruder.clone()),
            );
            req.headers_mut()
                .insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
            let a = call(&f.policy, req, &f.calls).await;
            a.assert_grpc("7", "permission denied", content_type);
            assert_eq!(a.headers[http::header::CONTENT_TYPE], "application/grpc");
            assert!(a.body.is_empty(), "no body: {:?}", a.body);
            assert_eq!(a.size_hint, Some(0));
            assert!(a.headers.get(http::header::WWW_AUTHENTICATE).is_none());
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn grpc_unauthenticated_gets_unauthenticated() {
    bounded(async {
        let f = fixture();
        let a = f
            .send(&f.policy, grpc("/pkg.Orders/Get", Attach::None))
            .await;
        a.assert_grpc("16", "unauthenticated", "");
        assert!(a.body.is_empty());
        assert!(a.headers.get(http::header::WWW_AUTHENTICATE).is_none());
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn expired_peer_is_refused_per_request() {
    bounded(async {
        let peer = expiring_frontend();
        let calls = Arc::new(AtomicUsize::new(0));
        let policy = policy();
        let get_orders = || {
            call(
                &policy,
                get("/orders", Attach::Identity(peer.clone())),
                &calls,
            )
        };
        assert_eq!(get_orders().await.status, StatusCode::OK);

        sleep_past(peer.not_after(), Duration::from_millis(1100)).await;

        let a = get_orders().await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.body, "peer certificate expired\n");
        assert_eq!(a.headers[http::header::WWW_AUTHENTICATE], "mTLS");
        let a = call(
            &policy,
            grpc("/pkg.Orders/Get", Attach::ConnectInfo(peer)),
            &calls,
        )
        .await;
        a.assert_grpc("16", "peer certificate expired", "");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn inner_errors_pass_through() {
    bounded(async {
        let f = fixture();
        let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
            Err::<Response<Full<Bytes>>, _>("inner failed")
        });
        let svc = AuthorizeLayer::new(f.policy.clone()).layer(inner);
        let err = svc
            .clone()
            .oneshot(get("/orders", Attach::Identity(f.frontend.clone())))
            .await
            .err();
        assert_eq!(err, Some("inner failed"));
        // A refusal is a response, not an error.
        let res = svc
            .oneshot(get("/orders", Attach::Identity(f.intruder.clone())))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    })
    .await;
}

#[test]
fn peer_identity_reads_every_place_integrations_put_it() {
    let f = fixture();
    assert!(peer_identity(get("/", Attach::None).extensions()).is_none());
    for attach in [
        Attach::Identity(f.frontend.clone()),
        Attach::ConnectInfo(f.frontend.clone()),
        Attach::AxumConnectInfo(f.frontend.clone()),
    ] {
        let req = request(Method::GET, "/", false, attach);
        assert_eq!(peer_identity(req.extensions()), Some(&f.frontend));
    }
    // The listener's connect info (the peer its handshake verified) comes
    // before a `PeerIdentity` extension something else in the app put there.
    let mut req = get("/", Attach::ConnectInfo(f.frontend.clone()));
    req.extensions_mut().insert(f.intruder.clone());
    assert_eq!(peer_identity(req.extensions()), Some(&f.frontend));
}

// ---------------------------------------------------------------------------
// Other request authorizers than a `RoutePolicy`.

/// Non-normal paths, each named by its defect: all must get 400 (gRPC:
/// INVALID_ARGUMENT) before any policy runs.
const NON_NORMAL_PATHS: &[(&str, &str)] = &[
    ("encoded-letter", "/orders/%61dmin"),
    ("double-encoded", "/orders/%2561dmin"),
    ("empty-segment", "/orders//7"),
    ("dot-segment", "/orders/./7"),
    ("dot-dot-segment", "/public/../orders"),
    ("encoded-dot-dot", "/public/%2e%2e/orders"),
    ("encoded-slash", "/orders%2F7"),
    ("encoded-backslash", "/orders%5C7"),
    ("malformed-encoding", "/orders/%zz"),
];

#[tokio::test]
async fn a_closure_sees_only_normal_form_paths() {
    bounded(async {
        let f = fixture();
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let record = seen.clone();
        let policy = authorize_fn(move |_caller, request| {
            record.lock().unwrap().push(request.path().to_owned());
            Ok(())
        });
        for &(defect, path) in NON_NORMAL_PATHS {
            let a = f.get_as(&policy, path, &f.frontend).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{defect}");
            assert_eq!(a.body, "invalid request path\n", "{defect}");
            let a = f
                .send(&policy, grpc(path, Attach::Identity(f.frontend.clone())))
                .await;
            assert_eq!(a.status, StatusCode::OK, "{defect}");
            assert_eq!(a.headers["grpc-status"], "3", "{defect}");
        }
        assert!(
            seen.lock().unwrap().is_empty(),
            "{:?}",
            seen.lock().unwrap()
        );
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);

        // A normal path reaches the closure as it is.
        let a = f.get_as(&policy, "/orders/7", &f.frontend).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(seen.lock().unwrap().as_slice(), ["/orders/7"]);
    })
    .await;
}

#[tokio::test]
async fn a_closure_never_runs_for_unauthenticated_or_expired_callers() {
    bounded(async {
        let peer = expiring_frontend();
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let policy = authorize_fn(move |_caller, _request| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let calls = Arc::new(AtomicUsize::new(0));
        let a = call(&policy, get("/orders", Attach::None), &calls).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(asked.load(Ordering::SeqCst), 0);

        sleep_past(peer.not_after(), Duration::from_millis(1100)).await;
        let a = call(&policy, get("/orders", Attach::Identity(peer)), &calls).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.body, "peer certificate expired\n");
        assert_eq!(a.headers[http::header::CONNECTION], "close");
        assert_eq!(asked.load(Ordering::SeqCst), 0);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

/// A policy as a struct: callers may call the gRPC methods listed for
/// them, by exact SPIFFE ID and gRPC path.
#[derive(Clone)]
struct GrpcMethods(Arc<Vec<(mtls_core::SpiffeId, &'static str)>>);

impl AuthorizeRequest for GrpcMethods {
    fn authorize_request(
        &self,
        caller: Caller<'_>,
        request: RequestHead<'_>,
    ) -> Result<(), Denial> {
        let (id, path) = (caller.spiffe_id(), request.path());
        if self.0.iter().any(|(who, p)| who == id && *p == path) {
            Ok(())
        } else {
            Err(Denial::new(format!("{id} may not call {path}")))
        }
    }
}

#[tokio::test]
async fn a_struct_policy_answers_grpc_permission_denied() {
    bounded(async {
        let f = fixture();
        let policy = GrpcMethods(Arc::new(vec![(id(FRONTEND), "/pkg.Orders/Get")]));
        let denial = policy
            .authorize_request(
                Caller::X509(&f.intruder),
                (&grpc("/pkg.Orders/Get", Attach::None)).into(),
            )
            .unwrap_err();
        assert_eq!(
            denial.reason(),
            format!("{INTRUDER} may not call /pkg.Orders/Get")
        );

        let a = f
            .send(
                &policy,
                grpc("/pkg.Orders/Get", Attach::ConnectInfo(f.intruder.clone())),
            )
            .await;
        a.assert_grpc("7", "permission denied", "");
        assert!(a.body.is_empty());
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);

        let a = f
            .send(
                &policy,
                grpc("/pkg.Orders/Get", Attach::ConnectInfo(f.frontend.clone())),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.headers.get("grpc-status").is_none());
        assert_eq!(a.body, format!("inner saw {FRONTEND}"));
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// A policy chosen at run time, as `Arc<dyn AuthorizeRequest>` (here the
/// route policy or the struct policy): each decides as itself, with its
/// own reasons.
#[tokio::test]
async fn a_shared_policy_chosen_at_run_time_decides_as_itself() {
    bounded(async {
        let f = fixture();
        let methods = GrpcMethods(Arc::new(vec![(id(INTRUDER), "/orders")]));
        let choices: [(Arc<dyn AuthorizeRequest>, StatusCode, StatusCode); 2] = [
            (
                Arc::new(f.policy.clone()),
                StatusCode::OK,
                StatusCode::FORBIDDEN,
            ),
            (Arc::new(methods), StatusCode::FORBIDDEN, StatusCode::OK),
        ];
        for (policy, frontend, intruder) in &choices {
            let a = f.get_as(policy, "/orders", &f.frontend).await;
            assert_eq!(a.status, *frontend);
            let a = f.get_as(policy, "/orders", &f.intruder).await;
            assert_eq!(a.status, *intruder);
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);

        let request = get("/orders", Attach::None);
        let denial = choices[1]
            .0
            .authorize_request(Caller::X509(&f.frontend), (&request).into())
            .unwrap_err();
        assert_eq!(denial.reason(), format!("{FRONTEND} may not call /orders"));
    })
    .await;
}

#[tokio::test]
async fn a_closure_allows_and_denies_real_mtls_requests() {
    bounded(async {
        let pki = Pki::new("example.org");
        let seen = Arc::new(Mutex::new(Vec::<(String, String, Option<String>)>::new()));
        let record = seen.clone();
        let app = axum::Router::new()
            .route("/orders", axum::routing::get(|| async { "orders\n" }))
            .route("/orders/{id}", axum::routing::get(|| async { "order\n" }))
            .layer(AuthorizeLayer::from_fn(move |caller, request| {
                // The whole verified identity is there, not only the ID.
                let chain_len = caller.x509().map_or(0, |p| p.chain().len());
                assert!(chain_len >= 1);
                record.lock().unwrap().push((
                    caller.spiffe_id().to_string(),
                    request.path().to_owned(),
                    request
                        .headers()
                        .get(http::header::HOST)
                        .map(|h| h.to_str().unwrap().to_owned()),
                ));
                if caller.spiffe_id().as_str() == FRONTEND || request.path() == "/orders" {
                    Ok(())
                } else {
                    // An authorizer's refusal converts with `?`.
                    mtls_core::Authorizer::authorize(
                        &authorize::exact(id(FRONTEND)),
                        caller.spiffe_id(),
                    )?;
                    Err(Denial::new("unreachable"))
                }
            }));
        let server = serve(pki.server_config(), app).await;

        let frontend = pki.http_client(FRONTEND, H2);
        let intruder = pki.http_client(INTRUDER, H1);
        let got = fetch(&frontend, server.url("/orders/7")).await.unwrap();
        assert_eq!((got.status, got.body.as_str()), (200, "order\n"));
        let got = fetch(&intruder, server.url("/orders")).await.unwrap();
        assert_eq!((got.status, got.body.as_str()), (200, "orders\n"));
        let got = fetch(&intruder, server.url("/orders/7")).await.unwrap();
        assert_eq!(
            (got.status, got.body.as_str()),
            (403, "permission denied\n")
        );
        // Not normal: refused before the closure.
        let got = fetch(&frontend, server.url("/orders/%37")).await.unwrap();
        assert_eq!(got.status, 400);

        let seen = seen.lock().unwrap();
        let paths: Vec<_> = seen
            .iter()
            .map(|(who, path, _)| (who.as_str(), path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                (FRONTEND, "/orders/7"),
                (INTRUDER, "/orders"),
                (INTRUDER, "/orders/7")
            ]
        );
        // HTTP/1.1 requests carry a Host header the closure can read.
        assert!(seen[1].2.is_some(), "{seen:?}");
    })
    .await;
}
