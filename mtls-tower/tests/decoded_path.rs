//! Regression: the route policy decided on the raw path while axum's `Path`
//! extractor percent-decodes it, so `/users/%61dmin` passed the `/users`
//! rule and reached the `/users/{name}` handler as `name = "admin"`. Now
//! paths not in normal form are refused before routing, and no spelling of
//! the admin path reaches an admin handler for a non-admin peer.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use mtls_core::authorize;
use mtls_tower::{AuthorizeLayer, RoutePolicy};
use tower::ServiceExt;

const ADMIN: &str = "spiffe://example.org/admin";

/// What a handler answers when it serves the admin resource, however it
/// was reached.
const ADMIN_SERVED: &str = "ADMIN RESOURCE";

async fn user(Path(name): Path<String>) -> String {
    // A typical handler: it trusts the name it is given.
    if name.trim_matches('/') == "admin" {
        ADMIN_SERVED.to_owned()
    } else {
        format!("user {name}")
    }
}

async fn file(Path(rest): Path<String>) -> String {
    if rest.trim_start_matches('/').starts_with("secret") || rest.contains("../secret") {
        ADMIN_SERVED.to_owned()
    } else {
        format!("file {rest}")
    }
}

fn routes() -> Router {
    Router::new()
        .route("/users/admin", get(|| async { ADMIN_SERVED }))
        .route("/users/{name}", get(user))
        .route("/users", get(|| async { "users" }))
        .route("/files/{*rest}", get(file))
        .route("/pkg.Admin/Reset", post(|| async { ADMIN_SERVED }))
        .route("/pkg.Users/List", post(|| async { "grpc users" }))
}

fn app() -> Router {
    let admin = authorize::exact(id(ADMIN));
    let policy = RoutePolicy::builder()
        .route("/users/admin", admin.clone())
        .route("/users", authorize::any())
        .route("/files/secret", admin.clone())
        .route("/files", authorize::any())
        .route("/pkg.Admin", admin)
        .route("/pkg.Users", authorize::any())
        .build()
        .unwrap();
    routes().layer(AuthorizeLayer::new(policy))
}

/// Every way of spelling (or approaching) the admin resources: none may
/// reach an admin handler for a non-admin peer.
const BYPASS_ATTEMPTS: &[(&str, &str)] = &[
    ("encoded-first-letter-lower-hex", "/users/%61dmin"),
    ("encoded-first-letter-upper-hex", "/users/%41dmin"),
    ("encoded-middle-letter-upper-hex", "/users/ad%6Din"),
    ("encoded-middle-letter-lower-hex", "/users/ad%6din"),
    ("all-encoded", "/users/%61%64%6d%69%6E"),
    ("double-encoded", "/users/%2561dmin"),
    ("trailing-slash", "/users/admin/"),
    ("empty-segment", "/users//admin"),
    ("leading-empty-segment", "//users/admin"),
    ("dot-segment", "/users/./admin"),
    ("dot-dot-segment", "/users/x/../admin"),
    ("encoded-dot-dot-lower-hex", "/users/%2e%2e/admin"),
    ("encoded-dot-dot-upper-hex", "/users/%2E%2E/admin"),
    ("encoded-slash-upper-hex", "/users/admin%2F"),
    ("encoded-slash-lower-hex", "/users/admin%2f"),
    ("encoded-slash-before", "/users/%2Fadmin"),
    ("encoded-backslash", "/users/admin%5C"),
    ("raw-backslash", "/users/admin\\"),
    ("malformed-encoding", "/users/admin%zz"),
    ("truncated-encoding", "/users/admin%4"),
    ("wildcard-encoded-letter", "/files/%73ecret"),
    ("wildcard-empty-segment", "/files//secret"),
    ("wildcard-dot-dot", "/files/public/../secret"),
    ("wildcard-encoded-dot-dot", "/files/public/%2e%2e/secret"),
    ("wildcard-trailing-slash", "/files/secret/"),
    ("wildcard-deeper", "/files/secret/key"),
];

/// Normal paths and who gets what: (name, path, admin's status, intruder's
/// status, body for an allowed peer).
const NORMAL: &[(&str, &str, u16, u16, &str)] = &[
    ("admin-path", "/users/admin", 200, 403, ADMIN_SERVED),
    ("user-path", "/users/alice", 200, 200, "user alice"),
    ("users-root", "/users", 200, 200, "users"),
    ("encoded-space-passes", "/users/a%20b", 200, 200, "user a b"),
    (
        "encoded-reserved-passes",
        "/users/a%3Fb",
        200,
        200,
        "user a?b",
    ),
    (
        "encoded-non-ascii-passes",
        "/users/caf%C3%A9",
        200,
        200,
        "user café",
    ),
    (
        "literal-percent-passes",
        "/users/100%25",
        200,
        200,
        "user 100%",
    ),
    (
        "wildcard-public",
        "/files/public/a.txt",
        200,
        200,
        "file public/a.txt",
    ),
    ("wildcard-secret", "/files/secret", 200, 403, ADMIN_SERVED),
    ("no-rule", "/other", 403, 403, ""),
];

/// The backend serving `app()`, and clients of the admin and the intruder
/// offering `alpn`.
async fn start(alpn: &[&[u8]]) -> (Server, HttpClient, HttpClient) {
    let (pki, server) = backend(app()).await;
    let clients = (
        pki.http_client(ADMIN, alpn),
        pki.http_client(INTRUDER, alpn),
    );
    (server, clients.0, clients.1)
}

#[tokio::test]
async fn no_spelling_of_the_admin_path_reaches_the_admin_handler() {
    bounded(async {
        let (server, admin, intruder) = start(H2).await;

        for (name, path) in BYPASS_ATTEMPTS {
            let got = fetch(&intruder, server.url(path)).await.unwrap();
            assert!(
                got.status == 400 || got.status == 403,
                "{name}: {path}: {} {:?}",
                got.status,
                got.body
            );
            assert_ne!(got.body, ADMIN_SERVED, "{name}: {path}");
            // Whoever asks: a path not in normal form is a bad request, and
            // a normal one the admin may not be refused with 400.
            let got = fetch(&admin, server.url(path)).await.unwrap();
            assert!(
                got.status == 400 || got.status == 404 || got.status == 200,
                "{name}: {path}: {}",
                got.status
            );
        }
        for (name, path, for_admin, for_intruder, body) in NORMAL {
            for (who, client, status) in [
                ("admin", &admin, for_admin),
                ("intruder", &intruder, for_intruder),
            ] {
                let got = fetch(client, server.url(path)).await.unwrap();
                assert_eq!(
                    got.status, *status,
                    "{name}: {path} as {who}: {:?}",
                    got.body
                );
                if got.status == 200 {
                    assert_eq!(got.body, *body, "{name}: {path} as {who}");
                }
            }
        }
    })
    .await;
}

/// The exact refusals: which attempts are bad requests (400, whoever asks)
/// and which are normal paths the policy governs (403 for the intruder).
#[tokio::test]
async fn non_normal_paths_get_400_and_normal_ones_the_policy() {
    bounded(async {
        let (server, admin, intruder) = start(H1).await;
        let governed_by_the_admin_rule = [
            "trailing-slash",
            "wildcard-trailing-slash",
            "wildcard-deeper",
        ];
        for (name, path) in BYPASS_ATTEMPTS {
            let normal = governed_by_the_admin_rule.contains(name);
            let got = fetch(&intruder, server.url(path)).await.unwrap();
            if normal {
                assert_eq!(got.status, 403, "{name}: {path}");
                assert_eq!(got.body, "permission denied\n", "{name}");
            } else {
                assert_eq!(got.status, 400, "{name}: {path}");
                assert_eq!(got.body, "invalid request path\n", "{name}");
                assert_eq!(
                    got.parts.headers[http::header::CONTENT_TYPE],
                    "text/plain; charset=utf-8"
                );
                let got = fetch(&admin, server.url(path)).await.unwrap();
                assert_eq!(got.status, 400, "{name}: {path} as admin");
            }
        }
    })
    .await;
}

async fn grpc_call(client: &HttpClient, uri: http::Uri) -> http::response::Parts {
    let req = Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = client.request(req).await.unwrap();
    let (parts, body) = res.into_parts();
    body.collect().await.unwrap();
    parts
}

#[tokio::test]
async fn grpc_shaped_requests_still_work_and_bad_paths_get_invalid_argument() {
    bounded(async {
        let (server, admin, intruder) = start(H2).await;

        let parts = grpc_call(&intruder, server.url("/pkg.Users/List")).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert!(parts.headers.get("grpc-status").is_none());
        let parts = grpc_call(&admin, server.url("/pkg.Admin/Reset")).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert!(parts.headers.get("grpc-status").is_none());

        let parts = grpc_call(&intruder, server.url("/pkg.Admin/Reset")).await;
        assert_eq!(parts.headers["grpc-status"], "7");

        for (name, path) in [
            ("encoded-letter", "/pkg.%41dmin/Reset"),
            ("empty-segment", "//pkg.Admin/Reset"),
            ("dot-dot", "/pkg.Users/../pkg.Admin/Reset"),
            ("encoded-slash", "/pkg.Users%2F..%2Fpkg.Admin/Reset"),
        ] {
            for client in [&admin, &intruder] {
                let parts = grpc_call(client, server.url(path)).await;
                assert_eq!(parts.status, StatusCode::OK, "{name}");
                assert_eq!(parts.headers["grpc-status"], "3", "{name}");
                assert_eq!(parts.headers["grpc-message"], "invalid request path");
                assert_eq!(
                    parts.headers[http::header::CONTENT_TYPE],
                    "application/grpc"
                );
            }
        }
    })
    .await;
}

/// What axum 0.8 itself does with the tricky paths, without our layer: the
/// behaviour the refusals above are designed against. If an axum upgrade
/// changes one of these, revisit `mtls-tower/src/path.rs`.
#[tokio::test]
async fn axum_routing_facts() {
    // (name, path, status, body)
    let facts: &[(&str, &str, u16, &str)] = &[
        // The router matches the raw path, but `Path` decodes captures.
        (
            "encoded-letter-hits-the-capture",
            "/users/%61dmin",
            200,
            ADMIN_SERVED,
        ),
        ("encoded-mid-letter", "/users/ad%6Din", 200, ADMIN_SERVED),
        // Decoded once: a handler decoding again would see `admin`.
        (
            "double-encoded-decoded-once",
            "/users/%2561dmin",
            200,
            "user %61dmin",
        ),
        (
            "encoded-slash-decoded-into-the-capture",
            "/users/admin%2F",
            200,
            ADMIN_SERVED,
        ),
        (
            "encoded-slash-lower-hex",
            "/users/admin%2f",
            200,
            ADMIN_SERVED,
        ),
        ("encoded-backslash-decoded", "/users/x%5C", 200, "user x\\"),
        // No trailing-slash redirect or normalization of dot/empty segments.
        ("trailing-slash-is-another-route", "/users/admin/", 404, ""),
        ("empty-segment-not-collapsed", "/users//admin", 404, ""),
        ("dot-segment-not-resolved", "/users/./admin", 404, ""),
        ("dot-dot-not-resolved", "/users/x/../admin", 404, ""),
        // A wildcard takes all of it, decoded: `..`, empty segments and all.
        (
            "wildcard-keeps-empty-segments",
            "/files//secret",
            200,
            ADMIN_SERVED,
        ),
        (
            "wildcard-decodes-dot-dot",
            "/files/public/%2e%2e/secret",
            200,
            ADMIN_SERVED,
        ),
        (
            "wildcard-keeps-dot-dot",
            "/files/public/../secret",
            200,
            ADMIN_SERVED,
        ),
        // Malformed encodings are passed through as they are.
        ("malformed-passed-through", "/users/a%zz", 200, "user a%zz"),
        ("truncated-passed-through", "/users/a%4", 200, "user a%4"),
        ("encoded-space", "/users/a%20b", 200, "user a b"),
        ("case-sensitive", "/USERS/admin", 404, ""),
    ];
    let app = routes();
    for (name, path, status, body) in facts {
        let req = Request::get(*path).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let got_status = res.status().as_u16();
        let got = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got_status, *status, "{name}: {path}");
        if *status == 200 {
            assert_eq!(got, body.as_bytes(), "{name}: {path}");
        }
    }
    // matchit lets a capture be empty: `/{a}/{b}` matches `//b`.
    let two = Router::new().route(
        "/two/{a}/{b}",
        get(|Path((a, b)): Path<(String, String)>| async move { format!("{a:?} {b:?}") }),
    );
    let res = two
        .oneshot(Request::get("/two//b").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got, "\"\" \"b\"");
}
