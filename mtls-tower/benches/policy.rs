//! Run with: `cargo bench -p mtls-tower --bench policy`
//!
//! `RoutePolicy::decide` with 1, 100 and 10,000 rules (`/svc{i}`) whose
//! authorizers are exact IDs, trust domains, path prefixes, or a mix of
//! the three (half of the mixed rules restricted to GET and POST); the
//! request is matched by the last rule added and allowed.
//!
//! `CompiledPolicy::evaluate` (policy files) likewise: 1, 100 and 10,000
//! allow rules on `/svc{i}/...` with exact IDs, trust domains, ID
//! prefixes, a mix, or route templates (`/svc{i}/{id}/items`), plus one
//! deny rule and one audit rule; the request is allowed by the last rule.
//!
//! `PolicyFile::authorize_request` (enforce mode, a metrics recorder
//! installed, the caller and route already seen) against
//! `CompiledPolicy::evaluate` of the same query: the cost of the snapshot
//! load and of counting `mtls_requests_total{caller, route, decision}`.
//!
//! Then the per-request cost of `AuthorizeLayer`, in process, with no
//! network: the layer around a trivial tower service (with the route
//! policy, and with a closure deciding the same), and an axum router
//! with the layer and the connect-info extension axum adds to every
//! request, each against the same service without them.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{Method, Request, Response};
use http_body_util::Full;
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{authorize, Authorizer, CrlSet, PeerIdentity, PeerRole, SpiffeId, TrustDomain};
use mtls_testing::rules::{peer, prefix, td};
use mtls_tower::{
    AuthenticatedBy, AuthorizeLayer, AuthorizeRequest, Caller, CompiledPolicy, Denial,
    MtlsConnectInfo, PolicyFile, PolicyQuery, RoutePolicy,
};
use tower::{Layer, ServiceExt};

fn policy_file_text(kind: &str, n: usize) -> String {
    let mut text = String::from(
        "version = 1\n[[rule]]\naction = \"deny\"\ncallers = [\"spiffe://evil.example.org/x\"]\n[[rule]]\naction = \"audit\"\ncallers = [\"spiffe://audited.example.org/x\"]\npaths = [\"prefix:/svc0\"]\n",
    );
    for i in 0..n {
        let rule_kind = match kind {
            "mixed" => ["exact_ids", "trust_domains", "path_prefixes"][i % 3],
            other => other,
        };
        let caller = match rule_kind {
            "trust_domains" => format!("trust-domain:td{i}.example.org"),
            "path_prefixes" => format!("prefix:{}", prefix(i)),
            _ => peer(i).to_string(),
        };
        let path = if kind == "templates" {
            format!("/svc{i}/{{id}}/items")
        } else {
            format!("prefix:/svc{i}")
        };
        let methods = if kind == "mixed" && i % 2 == 0 {
            "methods = [\"GET\", \"POST\"]\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[[rule]]\naction = \"allow\"\ncallers = [\"{caller}\"]\n{methods}paths = [\"{path}\"]\n"
        ));
    }
    text
}

fn evaluate(c: &mut Criterion) {
    for kind in [
        "exact_ids",
        "trust_domains",
        "path_prefixes",
        "mixed",
        "templates",
    ] {
        let mut group = c.benchmark_group(format!("policy_file/{kind}"));
        for n in [1usize, 100, 10_000] {
            let policy = CompiledPolicy::from_toml(&policy_file_text(kind, n), "bench").unwrap();
            let path = format!("/svc{}/v1/items", n - 1);
            let allowed = peer(n - 1);
            let get = Method::GET;
            let query = PolicyQuery::new(&allowed, AuthenticatedBy::Mtls, &get, &path);
            assert!(policy.evaluate(&query).is_allowed());
            group.bench_with_input(BenchmarkId::new("allow", n), &path, |b, path| {
                b.iter(|| {
                    let query =
                        PolicyQuery::new(&allowed, AuthenticatedBy::Mtls, &get, black_box(path));
                    policy.evaluate(&query).is_allowed()
                })
            });
        }
        group.finish();
    }
}

fn policy_file_request(c: &mut Criterion) {
    // A recorder, so that counting costs what it costs in production.
    let _ = metrics::set_global_recorder(metrics_util::debugging::DebuggingRecorder::new());
    let peer = identity();
    let text = format!(
        "version = 1\n[[rule]]\naction = \"allow\"\ncallers = [\"{}\"]\npaths = [\"/orders/{{id}}\"]\n",
        peer.spiffe_id()
    );
    let policy = CompiledPolicy::from_toml(&text, "bench").unwrap();
    let file = PolicyFile::new(policy.clone());
    let request = Request::get("/orders/7").body(()).unwrap();
    assert!(file
        .authorize_request(Caller::X509(&peer), (&request).into())
        .is_ok());
    let mut group = c.benchmark_group("policy_file_request");
    group.bench_function("evaluate", |b| {
        b.iter(|| {
            let query = PolicyQuery::new(
                peer.spiffe_id(),
                AuthenticatedBy::Mtls,
                request.method(),
                black_box(request.uri().path()),
            );
            policy.evaluate(&query).is_allowed()
        })
    });
    group.bench_function("authorize_request", |b| {
        b.iter(|| {
            file.authorize_request(Caller::X509(&peer), black_box(&request).into())
                .is_ok()
        })
    });
    group.finish();
}

fn policy(kind: &str, n: usize) -> RoutePolicy {
    let mut builder = RoutePolicy::builder();
    for i in 0..n {
        let rule_kind = match kind {
            "mixed" => ["exact_ids", "trust_domains", "path_prefixes"][i % 3],
            other => other,
        };
        let authorizer: Arc<dyn Authorizer> = match rule_kind {
            "exact_ids" => Arc::new(authorize::exact(peer(i))),
            "trust_domains" => Arc::new(authorize::member_of(td(i))),
            _ => Arc::new(authorize::path_prefix(prefix(i))),
        };
        let methods = (kind == "mixed" && i % 2 == 0).then(|| vec![Method::GET, Method::POST]);
        builder = builder.route_shared(methods, &format!("/svc{i}"), authorizer);
    }
    builder.build().unwrap()
}

fn decide(c: &mut Criterion) {
    for kind in ["exact_ids", "trust_domains", "path_prefixes", "mixed"] {
        let mut group = c.benchmark_group(format!("route_policy/{kind}"));
        for n in [1usize, 100, 10_000] {
            let policy = policy(kind, n);
            let path = format!("/svc{}/v1/items", n - 1);
            let allowed = peer(n - 1);
            policy.decide(&Method::GET, &path, &allowed).unwrap();
            group.bench_with_input(BenchmarkId::new("allow", n), &path, |b, path| {
                b.iter(|| {
                    policy
                        .decide(&Method::GET, black_box(path), &allowed)
                        .is_ok()
                })
            });
        }
        group.finish();
    }
}

/// Polls a future that completes without waiting (every service here).
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the service did not answer at once"),
    }
}

fn identity() -> PeerIdentity {
    let td = TrustDomain::new("bench.example.org").unwrap();
    let root =
        CertificateAuthority::self_signed_for_development(td, &CaOptions::default()).unwrap();
    let ca = root.intermediate(&CaOptions::default()).unwrap();
    let svid = ca
        .issue(&SvidRequest::new(
            SpiffeId::new("spiffe://bench.example.org/ns/prod/sa/frontend").unwrap(),
        ))
        .unwrap();
    mtls_core::verify(
        svid.chain(),
        &mtls_core::BundleSet::from(ca.bundle().unwrap()),
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Client,
    )
    .unwrap()
}

fn request_policy(peer: &SpiffeId) -> RoutePolicy {
    RoutePolicy::builder()
        .route_methods([Method::GET], "/health", authorize::any())
        .route("/admin", authorize::exact(prefix(0)))
        .route("/hello", authorize::one_of([peer.clone(), prefix(1)]))
        .build()
        .unwrap()
}

fn layer(c: &mut Criterion) {
    let peer = identity();
    let policy = request_policy(peer.spiffe_id());
    let info = MtlsConnectInfo::new(peer.clone(), SocketAddr::from(([127, 0, 0, 1], 40000)));
    let mut group = c.benchmark_group("request");

    // The layer alone, around a trivial tower service.
    let inner = tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
    });
    let layered = AuthorizeLayer::new(policy.clone()).layer(inner);
    let with_peer = || {
        let mut req = Request::get("/hello").body(()).unwrap();
        req.extensions_mut().insert(peer.clone());
        req
    };
    assert!(now_or_never(layered.clone().oneshot(with_peer()))
        .unwrap()
        .status()
        .is_success());
    group.bench_function("tower/bare", |b| {
        b.iter(|| now_or_never(inner.oneshot(black_box(with_peer()))))
    });
    group.bench_function("tower/authorize_layer", |b| {
        b.iter(|| now_or_never(layered.clone().oneshot(black_box(with_peer()))))
    });
    // The same decision as a closure (static dispatch, like the policy).
    let allowed = peer.spiffe_id().clone();
    let closure = AuthorizeLayer::from_fn(move |caller, request| {
        if request.path() == "/hello" && *caller.spiffe_id() == allowed {
            Ok(())
        } else {
            Err(Denial::new("only the frontend may say hello"))
        }
    })
    .layer(inner);
    assert!(now_or_never(closure.clone().oneshot(with_peer()))
        .unwrap()
        .status()
        .is_success());
    group.bench_function("tower/authorize_layer_closure", |b| {
        b.iter(|| now_or_never(closure.clone().oneshot(black_box(with_peer()))))
    });

    // axum: what a request costs through the router, with the extension
    // `into_make_service_with_connect_info` adds and the layer, or neither.
    let app = || Router::new().route("/hello", get(|| async { "hello\n" }));
    let ours = app().layer(AuthorizeLayer::new(policy));
    let bare = app();
    let request = |with_info: bool| {
        let mut req = Request::get("/hello")
            .body(axum::body::Body::empty())
            .unwrap();
        if with_info {
            req.extensions_mut().insert(ConnectInfo(info.clone()));
        }
        req
    };
    assert!(now_or_never(ours.clone().oneshot(request(true)))
        .unwrap()
        .status()
        .is_success());
    group.bench_function("axum/bare", |b| {
        b.iter(|| now_or_never(bare.clone().oneshot(black_box(request(false)))))
    });
    group.bench_function("axum/connect_info_and_authorize_layer", |b| {
        b.iter(|| now_or_never(ours.clone().oneshot(black_box(request(true)))))
    });
    // Pieces of the layer's work.
    group.bench_function("piece/connect_info_clone_insert", |b| {
        b.iter(|| {
            let mut req = Request::get("/hello").body(()).unwrap();
            req.extensions_mut().insert(ConnectInfo(info.clone()));
            req
        })
    });
    group.bench_function("piece/request_build", |b| {
        b.iter(|| Request::get("/hello").body(()).unwrap())
    });
    group.bench_function("piece/system_time_now", |b| b.iter(SystemTime::now));
    group.finish();
}

criterion_group!(benches, decide, evaluate, policy_file_request, layer);
criterion_main!(benches);
