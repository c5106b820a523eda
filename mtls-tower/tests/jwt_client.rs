//! `JwtSvidClientLayer` over real loopback HTTP against a server behind
//! `JwtSvidLayer` (as behind a TLS-terminating proxy): calls succeed and
//! the server sees the caller's SPIFFE ID, the token rotates before it
//! expires, and without a token the request is never sent; the header is
//! sensitive and replaces any other `Authorization`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::Extension;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_ca::{CaError, CaJwtSource, CaOptions, CertificateAuthority};
use mtls_core::{CachedJwtSvids, JwtSourceError, JwtSvid, JwtSvidValidator, SpiffeId, TrustDomain};
use mtls_testing::bounded;
use mtls_tower::{JwtClientError, JwtSvidClientLayer, PeerId};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};

const AUDIENCE: &str = "spiffe://example.org/api";
const WEB: &str = "spiffe://example.org/web";

fn ca() -> Arc<CertificateAuthority> {
    Arc::new(
        CertificateAuthority::self_signed_for_development(
            TrustDomain::new("example.org").unwrap(),
            &CaOptions::default(),
        )
        .unwrap(),
    )
}

/// Serves `/whoami`, answering `<caller SPIFFE ID> <token expiry>`, behind
/// a `JwtSvidLayer` trusting `ca`'s JWT bundle; counts the requests that
/// reach the server at all.
async fn serve(ca: Arc<CertificateAuthority>) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app: Router = Router::new()
        .route(
            "/whoami",
            get(
                |PeerId(id): PeerId, Extension(svid): Extension<JwtSvid>| async move {
                    let exp = svid
                        .expiry()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    format!("{id} {exp}")
                },
            ),
        )
        .layer(mtls_tower::JwtSvidLayer::new(
            JwtSvidValidator::new(AUDIENCE),
            ca,
        ))
        .layer(tower::util::MapRequestLayer::new(
            move |r: Request<axum::body::Body>| {
                counted.fetch_add(1, Ordering::SeqCst);
                r
            },
        ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn whoami<S>(client: &mut S, addr: SocketAddr) -> Result<(StatusCode, String), S::Error>
where
    S: Service<Request<Empty<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
{
    let request = Request::get(format!("http://{addr}/whoami"))
        .header("authorization", "Basic d2ViOnB3")
        .body(Empty::new())
        .unwrap();
    let response = bounded(client.ready().await?.call(request)).await?;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, String::from_utf8(body.to_vec()).unwrap()))
}

#[tokio::test]
async fn calls_carry_the_callers_jwt_svid_and_it_rotates_before_expiry() {
    let ca = ca();
    let (addr, hits) = serve(ca.clone()).await;
    // 4-second tokens, refreshed once half their lifetime is left.
    let tokens = Arc::new(CachedJwtSvids::new(
        CaJwtSource::new(ca, SpiffeId::new(WEB).unwrap()).ttl(Duration::from_secs(4)),
    ));
    let mut client = ServiceBuilder::new()
        .layer(JwtSvidClientLayer::new(tokens.clone(), AUDIENCE))
        .service(http_client());

    // The Basic header the request had is replaced by the JWT-SVID.
    let (status, body) = whoami(&mut client, addr).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let (id, first_exp) = body.split_once(' ').unwrap();
    assert_eq!(id, WEB, "the server sees the caller's SPIFFE ID");
    let (_, again) = whoami(&mut client, addr).await.unwrap();
    assert_eq!(again, body, "the same token, cached");
    assert_eq!(tokens.generation(), 1);

    // Past half its lifetime (at least 3 s from receipt, `exp` being in
    // whole seconds): a new token, while the old one is still valid.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let first_exp: u64 = first_exp.parse().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now < first_exp, "the first token has not expired yet");
    let (status, rotated) = whoami(&mut client, addr).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(tokens.generation(), 2, "rotated before expiry");
    let (id, new_exp) = rotated.split_once(' ').unwrap();
    assert_eq!(id, WEB);
    assert!(new_exp.parse::<u64>().unwrap() > first_exp);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn without_a_token_the_request_is_never_sent() {
    let ca = ca();
    let (addr, hits) = serve(ca.clone()).await;
    let ca_for_later = ca.clone();
    // The CA refuses to mint for another trust domain.
    let tokens = CachedJwtSvids::new(CaJwtSource::new(
        ca,
        SpiffeId::new("spiffe://other.org/web").unwrap(),
    ));
    let mut client = ServiceBuilder::new()
        .layer(JwtSvidClientLayer::new(tokens, AUDIENCE))
        .service(http_client());
    let err = whoami(&mut client, addr).await.unwrap_err();
    let Some(JwtSourceError::Upstream { .. }) = err.token_error() else {
        panic!("{err:?}");
    };
    assert!(matches!(
        err.token_error()
            .and_then(JwtSourceError::upstream_error)
            .and_then(|e| e.downcast_ref::<CaError>()),
        Some(CaError::WrongTrustDomain { .. })
    ));
    assert!(
        err.to_string()
            .starts_with("mtls: request not sent, no JWT-SVID"),
        "{err}"
    );
    assert!(matches!(err, JwtClientError::Token(_)));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");

    // A token for another audience than the server's: sent (the client
    // cannot know), and refused there with 401.
    let tokens = CachedJwtSvids::new(CaJwtSource::new(ca_for_later, SpiffeId::new(WEB).unwrap()));
    let mut client = ServiceBuilder::new()
        .layer(JwtSvidClientLayer::new(
            tokens,
            "spiffe://example.org/elsewhere",
        ))
        .service(http_client());
    let (status, _) = whoami(&mut client, addr).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_header_is_set_sensitive_and_replaces_any_other() {
    let ca = ca();
    let tokens = CachedJwtSvids::new(CaJwtSource::new(ca.clone(), SpiffeId::new(WEB).unwrap()));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let inner = tower::service_fn(move |request: Request<Empty<Bytes>>| {
        let record = record.clone();
        async move {
            let values: Vec<_> = request
                .headers()
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .cloned()
                .collect();
            record.lock().unwrap().extend(values);
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }
    });
    let mut client = ServiceBuilder::new()
        .layer(JwtSvidClientLayer::new(tokens, AUDIENCE).with_audience("spiffe://example.org/b"))
        .service(inner);
    let mut request = Request::get("http://api/x").body(Empty::new()).unwrap();
    request
        .headers_mut()
        .append("authorization", "Basic d2ViOnB3".parse().unwrap());
    request
        .headers_mut()
        .append("authorization", "Bearer someone-elses".parse().unwrap());
    bounded(client.ready().await.unwrap().call(request))
        .await
        .unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one Authorization header: the JWT-SVID");
    assert!(seen[0].is_sensitive());
    let token = seen[0].to_str().unwrap().strip_prefix("Bearer ").unwrap();
    let svid = JwtSvidValidator::new("spiffe://example.org/b")
        .validate_from(token, &ca)
        .unwrap();
    assert_eq!(svid.audience(), [AUDIENCE, "spiffe://example.org/b"]);
}
