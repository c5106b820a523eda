//! Policy files: parsing with `FILE:LINE:COLUMN` errors, Istio-style
//! evaluation (deny first, default deny, audit never decides), templates
//! against what axum routes, percent-encoded spellings, the index against
//! the rule-by-rule explanation, and the modes (in process).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::routing::{any, get};
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use mtls_core::{PeerIdentity, SpiffeId};
use mtls_testing::id;
use mtls_tower::{
    AuthenticatedBy, AuthorizeLayer, CompiledPolicy, PolicyFile, PolicyFileError,
    PolicyFileOptions, PolicyMode, PolicyProblem, PolicyQuery,
};
use tower::ServiceExt;

const WEB: &str = "spiffe://example.org/ns/shop/sa/web";
const BAD: &str = "spiffe://example.org/ns/shop/sa/bad";
const PARTNER: &str = "spiffe://partner.org/billing";

fn policy(text: &str) -> CompiledPolicy {
    CompiledPolicy::from_toml(text, "policy.toml").unwrap()
}

fn decide(policy: &CompiledPolicy, caller: &str, method: Method, path: &str) -> bool {
    decide_as(policy, caller, AuthenticatedBy::Mtls, method, path)
}

fn decide_as(
    policy: &CompiledPolicy,
    caller: &str,
    authn: AuthenticatedBy,
    method: Method,
    path: &str,
) -> bool {
    let caller = id(caller);
    let query = PolicyQuery::new(&caller, authn, &method, path);
    let (fast, slow) = (policy.evaluate(&query), policy.explain(&query));
    // The index and the rule-by-rule explanation always agree: on the
    // decision, and on the rule that made it.
    let (allowed, rule) = (fast.is_allowed(), fast.rule());
    assert_eq!(allowed, slow.is_allowed(), "{method} {path}: {slow}");
    assert_eq!(rule, slow.rule(), "{method} {path}: {slow}");
    allowed
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

#[test]
fn the_documented_example_parses() {
    let p = policy(
        r#"
version = 1

# Shop workloads read orders.
[[rule]]
name = "orders-read"
action = "allow"
callers = ["spiffe://example.org/ns/shop/sa/web", "trust-domain:partner.org",
           "prefix:spiffe://example.org/ns/shop/", "!spiffe://example.org/ns/shop/sa/bad"]
authenticated_by = ["mtls", "jwt-svid"]
methods = ["GET", "HEAD"]
paths = ["/orders", "/orders/{id}", "/static/{*rest}", "prefix:/api/"]

[[rule]]
action = "audit"
grpc = ["/pkg.Service/Method", "/pkg.Service"]
"#,
    );
    assert_eq!(p.len(), 2);
    assert_eq!(p.describe_rule(0), "rule \"orders-read\" (policy.toml:7)");
    assert_eq!(p.describe_rule(1), "rule #2 (policy.toml:15)");
}

/// Every TOML example of docs/policy.md is a valid policy.
#[test]
fn the_guide_examples_parse() {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md")).unwrap();
    let mut blocks = 0;
    for block in guide.split("```toml\n").skip(1) {
        let text = block.split("```").next().unwrap();
        CompiledPolicy::from_toml(text, "docs/policy.md").unwrap();
        blocks += 1;
    }
    assert!(blocks >= 1);
}

/// Each bad file: its error's line, column and problem.
#[test]
fn bad_files_are_refused_with_line_and_column() {
    let head = "version = 1\n[[rule]]\n";
    let cases: &[(&str, String, (usize, usize), &str)] = &[
        ("not-toml", "version = \n".into(), (1, 11), "policy file:"),
        ("missing-version", "[[rule]]\naction = \"allow\"\n".into(), (1, 1), "version"),
        ("version-2", "version = 2\n".into(), (1, 11), "unsupported version 2"),
        ("version-string", "version = \"1\"\n".into(), (1, 11), "policy file:"),
        ("unknown-top-field", "version = 1\nrules = []\n".into(), (2, 1), "rules"),
        ("unknown-rule-field", format!("{head}action = \"allow\"\npath = [\"/a\"]\n"), (4, 1), "path"),
        ("missing-action", format!("{head}paths = [\"/a\"]\n"), (2, 1), "action"),
        ("bad-action", format!("{head}action = \"permit\"\n"), (3, 10), "unknown action \"permit\""),
        ("bad-spiffe-id", format!("{head}action = \"allow\"\ncallers = [\"spiffe://Example.org/x\"]\n"), (4, 12), "invalid caller"),
        ("id-without-path", format!("{head}action = \"allow\"\ncallers = [\"spiffe://example.org\"]\n"), (4, 12), "trust-domain:example.org"),
        ("no-scheme", format!("{head}action = \"allow\"\ncallers = [\"example.org/x\"]\n"), (4, 12), "expected a SPIFFE ID"),
        ("bad-trust-domain", format!("{head}action = \"allow\"\ncallers = [\"a\", \"trust-domain:Bad_TD!\"]\n"), (4, 12), "invalid caller \"a\""),
        ("second-entry-bad", format!("{head}action = \"allow\"\ncallers = [\"*\", \"trust-domain:Bad!\"]\n"), (4, 17), "bad trust domain"),
        ("not-everyone", format!("{head}action = \"allow\"\ncallers = [\"!*\"]\n"), (4, 12), "excludes every caller"),
        ("empty-callers", format!("{head}action = \"allow\"\ncallers = []\n"), (4, 11), "empty callers list"),
        ("lowercase-method", format!("{head}action = \"allow\"\nmethods = [\"get\"]\n"), (4, 12), "unknown HTTP method \"get\""),
        ("unknown-method", format!("{head}action = \"allow\"\nmethods = [\"GET\", \"FETCH\"]\n"), (4, 19), "unknown HTTP method \"FETCH\""),
        ("relative-path", format!("{head}action = \"allow\"\npaths = [\"orders\"]\n"), (4, 10), "must start with '/'"),
        ("trailing-slash", format!("{head}action = \"allow\"\npaths = [\"/orders/\"]\n"), (4, 10), "must not end with '/'"),
        ("empty-segment", format!("{head}action = \"allow\"\npaths = [\"/a//b\"]\n"), (4, 10), "empty segment"),
        ("dot-segment", format!("{head}action = \"allow\"\npaths = [\"/a/../b\"]\n"), (4, 10), "'..'"),
        ("encoded-path", format!("{head}action = \"allow\"\npaths = [\"/%61dmin\"]\n"), (4, 10), "percent-encoded"),
        ("partial-capture", format!("{head}action = \"allow\"\npaths = [\"/files/{{name}}.txt\"]\n"), (4, 10), "whole segment"),
        ("old-capture", format!("{head}action = \"allow\"\npaths = [\"/users/:id\"]\n"), (4, 10), "{name}"),
        ("wildcard-not-last", format!("{head}action = \"allow\"\npaths = [\"/a/{{*rest}}/b\"]\n"), (4, 10), "last segment"),
        ("bad-capture-name", format!("{head}action = \"allow\"\npaths = [\"/a/{{1x}}\"]\n"), (4, 10), "capture"),
        ("capture-in-prefix", format!("{head}action = \"allow\"\npaths = [\"prefix:/a/{{id}}\"]\n"), (4, 10), "no captures"),
        ("space-in-path", format!("{head}action = \"allow\"\npaths = [\"/a b\"]\n"), (4, 10), "pchar"),
        ("paths-and-grpc", format!("{head}action = \"allow\"\npaths = [\"/a\"]\ngrpc = [\"/p.S/M\"]\n"), (5, 8), "either paths or grpc"),
        ("methods-and-grpc", format!("{head}action = \"allow\"\nmethods = [\"POST\"]\ngrpc = [\"/p.S/M\"]\n"), (5, 8), "no methods"),
        ("grpc-no-slash", format!("{head}action = \"allow\"\ngrpc = [\"p.S/M\"]\n"), (4, 9), "must start with '/'"),
        ("grpc-bad-method", format!("{head}action = \"allow\"\ngrpc = [\"/p.S/M/x\"]\n"), (4, 9), "method must be an identifier"),
        ("grpc-bad-service", format!("{head}action = \"allow\"\ngrpc = [\"/p..S/M\"]\n"), (4, 9), "service"),
        ("bad-authentication", format!("{head}action = \"allow\"\nauthenticated_by = [\"jwt\"]\n"), (4, 21), "unknown authentication \"jwt\""),
        ("duplicate-name", format!("{head}name = \"a\"\naction = \"allow\"\n[[rule]]\nname = \"a\"\naction = \"deny\"\n"), (6, 8), "duplicate rule name"),
        ("wrong-type", format!("{head}action = \"allow\"\npaths = \"/a\"\n"), (4, 9), "policy file:"),
        ("unicode-column", format!("{head}name = \"é\"\naction = \"allow\"\ncallers = [\"é\"]\n"), (5, 12), "invalid caller \"é\""),
    ];
    for (name, text, (line, column), needle) in cases {
        let e = CompiledPolicy::from_toml(text, "p.toml").expect_err(name);
        let shown = e.to_string();
        assert_eq!(e.position(), Some((*line, *column)), "{name}: {shown}");
        assert!(
            shown.starts_with(&format!("p.toml:{line}:{column}: ")),
            "{name}: {shown}"
        );
        assert!(shown.contains(needle), "{name}: {shown:?} lacks {needle:?}");
    }
}

#[test]
fn unreadable_and_non_utf8_files_are_typed_errors() {
    let dir = std::env::temp_dir().join(format!("mtls-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.toml");
    assert!(matches!(
        CompiledPolicy::from_file(&missing),
        Err(PolicyFileError::Read { .. })
    ));
    let latin1 = dir.join("latin1.toml");
    std::fs::write(&latin1, b"version = 1\n# caf\xe9\n").unwrap();
    let e = CompiledPolicy::from_file(&latin1).unwrap_err();
    assert_eq!(e.position(), Some((2, 6)), "{e}");
    assert!(matches!(e.problem(), Some(PolicyProblem::Syntax(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

#[test]
fn any_deny_wins_then_any_allow_then_default_deny() {
    // The deny rule comes after the allow rule: order does not matter.
    let p = policy(
        r#"
version = 1
[[rule]]
name = "shop"
action = "allow"
callers = ["prefix:spiffe://example.org/ns/shop"]

[[rule]]
name = "no-bad"
action = "deny"
callers = ["spiffe://example.org/ns/shop/sa/bad"]
paths = ["prefix:/admin"]

[[rule]]
name = "audit-all"
action = "audit"
"#,
    );
    assert!(decide(&p, WEB, Method::GET, "/admin/x"));
    assert!(decide(&p, BAD, Method::GET, "/orders"));
    assert!(!decide(&p, BAD, Method::GET, "/admin"));
    assert!(!decide(&p, BAD, Method::GET, "/admin/users/7"));
    // Not in the shop: no allow rule, default deny (the audit rule
    // matches but decides nothing).
    assert!(!decide(&p, PARTNER, Method::GET, "/orders"));
    let partner = id(PARTNER);
    let q = PolicyQuery::new(&partner, AuthenticatedBy::Mtls, &Method::GET, "/orders");
    let d = p.evaluate(&q);
    assert_eq!((d.rule(), d.audit_matches()), (None, &[2][..]));
    let explained = p.explain(&q).to_string();
    eprintln!("{explained}");
    assert!(
        explained.starts_with("deny: no allow rule matches (default deny)"),
        "{explained}"
    );
    let web = id(BAD);
    let q = PolicyQuery::new(&web, AuthenticatedBy::Mtls, &Method::GET, "/admin");
    assert!(p
        .explain(&q)
        .to_string()
        .starts_with("deny: denied by rule \"no-bad\" (policy.toml:10)"));

    // Deny rules apply even where no allow rule would.
    let empty = policy("version = 1\n");
    assert!(!decide(&empty, WEB, Method::GET, "/"));
}

#[test]
fn callers_ids_trust_domains_prefixes_and_negations() {
    let p = policy(
        r#"
version = 1
[[rule]]
action = "allow"
callers = ["spiffe://example.org/exact", "trust-domain:partner.org"]
paths = ["/a"]
[[rule]]
action = "allow"
callers = ["prefix:spiffe://example.org/ns/shop/", "!spiffe://example.org/ns/shop/sa/bad", "!prefix:spiffe://example.org/ns/shop/sa/bad2"]
paths = ["/b"]
[[rule]]
action = "allow"
callers = ["!trust-domain:partner.org"]
paths = ["/c"]
[[rule]]
action = "allow"
callers = ["*"]
paths = ["/d"]
"#,
    );
    for (caller, path, allowed) in [
        ("spiffe://example.org/exact", "/a", true),
        ("spiffe://example.org/exact/x", "/a", false),
        (PARTNER, "/a", true),
        ("spiffe://partner.org.evil/x", "/a", false),
        (WEB, "/b", true),
        ("spiffe://example.org/ns/shop", "/b", true),
        ("spiffe://example.org/ns/shopx/a", "/b", false),
        (BAD, "/b", false),
        ("spiffe://example.org/ns/shop/sa/bad1", "/b", true),
        ("spiffe://example.org/ns/shop/sa/bad2/x", "/b", false),
        (WEB, "/c", true),
        (PARTNER, "/c", false),
        (PARTNER, "/d", true),
    ] {
        let decided = decide(&p, caller, Method::GET, path);
        assert_eq!(decided, allowed, "{caller} GET {path}");
    }
}

#[test]
fn methods_and_authentication() {
    let p = policy(
        r#"
version = 1
[[rule]]
action = "allow"
methods = ["GET"]
authenticated_by = ["jwt-svid"]
paths = ["/jwt"]
[[rule]]
action = "allow"
methods = ["POST", "DELETE"]
paths = ["/w"]
"#,
    );
    let jwt = AuthenticatedBy::JwtSvid;
    assert!(decide_as(&p, WEB, jwt, Method::GET, "/jwt"));
    // A rule for GET governs HEAD (routers run GET handlers for HEAD).
    assert!(decide_as(&p, WEB, jwt, Method::HEAD, "/jwt"));
    assert!(!decide_as(&p, WEB, jwt, Method::POST, "/jwt"));
    assert!(!decide(&p, WEB, Method::GET, "/jwt"));
    assert!(decide(&p, WEB, Method::DELETE, "/w"));
    assert!(!decide(&p, WEB, Method::GET, "/w"));
    assert!(!decide(&p, WEB, Method::HEAD, "/w"));
    let purge = Method::from_bytes(b"PURGE").unwrap();
    assert!(!decide(&p, WEB, purge, "/w"));
}

#[test]
fn paths_exact_prefix_templates_and_grpc() {
    let p = policy(
        r#"
version = 1
[[rule]]
name = "exact"
action = "allow"
paths = ["/orders", "/"]
[[rule]]
name = "prefix"
action = "allow"
paths = ["prefix:/api/"]
[[rule]]
name = "one"
action = "allow"
paths = ["/users/{id}", "/users/{id}/orders/{order}"]
[[rule]]
name = "rest"
action = "allow"
paths = ["/static/{*rest}"]
[[rule]]
name = "grpc-method"
action = "allow"
grpc = ["/shop.Orders/Get"]
[[rule]]
name = "grpc-service"
action = "allow"
grpc = ["/shop.Admin"]
"#,
    );
    let yes = [
        "/",
        "/orders",
        "/orders/",
        "/api",
        "/api/",
        "/api/v1/x",
        "/users/7",
        "/users/7/",
        "/users/a%20b",
        "/users/7/orders/9",
        "/static/a",
        "/static/a/b/c",
        "/static/",
        "/shop.Orders/Get",
        "/shop.Admin/Reset",
        "/shop.Admin",
    ];
    let no = [
        "/ordersx",
        "/orders/7",
        "/apix",
        "/users",
        "/users/",
        "/users/7/x",
        "/users/7/orders",
        "/static",
        "/staticx/a",
        "/shop.Orders/List",
        "/shop.Orders",
        "/shop.AdminX/Reset",
        "/other",
    ];
    for path in yes {
        assert!(decide(&p, WEB, Method::GET, path), "{path}");
    }
    for path in no {
        assert!(!decide(&p, WEB, Method::GET, path), "{path}");
    }
}

/// No percent-encoded spelling of a denied resource escapes its deny rule,
/// and none reaches an allow rule it does not name.
#[test]
fn percent_encoded_tricks_do_not_escape_a_rule() {
    let p = policy(
        r#"
version = 1
[[rule]]
action = "allow"
paths = ["prefix:/"]
[[rule]]
action = "deny"
paths = ["/users/admin", "/users/admin/{*rest}", "prefix:/secret", "/v1:admin"]
"#,
    );
    let attempts = [
        "/users/admin",
        "/users/admin/",
        "/users/admin/x",
        "/users/%61dmin",
        "/users/%41dmin",
        "/users/ad%6Din",
        "/users/%2561dmin",
        "/users//admin",
        "/users/./admin",
        "/users/x/../admin",
        "/users%2Fadmin",
        "/users%2fadmin",
        "/users\\admin",
        "/users%5Cadmin",
        "/%73ecret",
        "/secret",
        "/secret/x",
        "/v1%3Aadmin",
        "/v1%3aadmin",
        "/users/admin%2F",
        "/users/admin%zz",
    ];
    for path in attempts {
        assert!(!decide(&p, WEB, Method::GET, path), "{path}");
    }
    // Other encoded octets stay encoded: another resource, allowed.
    assert!(decide(&p, WEB, Method::GET, "/users/admin%20"));
    assert!(decide(&p, WEB, Method::GET, "/users/x"));
}

/// A rule on a route template covers every path axum routes to that
/// route (and a deny rule on it denies them all).
#[tokio::test]
async fn templates_cover_what_axum_routes() {
    let routes = [
        "/users/{id}",
        "/users/{id}/orders/{order}",
        "/static/{*rest}",
        "/{*all}",
        "/v1/{id}/x",
        "/v1/a/{id}",
    ];
    let mut app = Router::new();
    for route in routes {
        app = app.route(
            route,
            any(|m: MatchedPath| async move { m.as_str().to_owned() }),
        );
    }
    let paths = [
        "/",
        "/users",
        "/users/",
        "/users/7",
        "/users/7/",
        "/users/%20",
        "/users/7/orders/9",
        "/users/7/orders/",
        "/static",
        "/static/",
        "/static/a",
        "/static/a/b",
        "/static/a/",
        "/v1/a/x",
        "/v1/b/x",
        "/v1/a/b",
        "/v1/a",
        "/x",
        "/x/y/",
        "/users/caf%C3%A9",
    ];
    for path in paths {
        let res = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        if res.status() != StatusCode::OK {
            continue;
        }
        let route = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        for action in ["allow", "deny"] {
            let p = policy(&format!(
                "version = 1\n[[rule]]\naction = \"{action}\"\npaths = [\"{route}\"]\n[[rule]]\naction = \"{other}\"\npaths = [\"prefix:/\"]\n",
                other = if action == "allow" { "audit" } else { "allow" }
            ));
            let allowed = decide(&p, WEB, Method::GET, path);
            assert_eq!(
                allowed,
                action == "allow",
                "axum routes {path} to {route}; a {action} rule on it must cover it"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Modes, through the layer, in process
// ---------------------------------------------------------------------------

fn peer(spiffe_id: &str) -> PeerIdentity {
    common::Pki::new("example.org").peer(spiffe_id)
}

fn app(policy: PolicyFile) -> Router {
    Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .route("/admin", get(|| async { "admin" }))
        .route_layer(AuthorizeLayer::new(policy))
}

async fn status(app: &Router, peer: &PeerIdentity, method: Method, path: &str) -> u16 {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(peer.clone());
    let res: Result<_, Infallible> = app.clone().oneshot(req).await;
    res.unwrap().status().as_u16()
}

const SHOP_ONLY: &str = r#"
version = 1
[[rule]]
action = "allow"
callers = ["spiffe://example.org/ns/shop/sa/web"]
paths = ["/orders/{id}"]
"#;

#[tokio::test]
async fn enforce_refuses_and_audit_never_refuses() {
    let web = peer(WEB);
    let bad = peer(BAD);
    let enforce = app(PolicyFile::new(policy(SHOP_ONLY)));
    assert_eq!(status(&enforce, &web, Method::GET, "/orders/7").await, 200);
    assert_eq!(status(&enforce, &bad, Method::GET, "/orders/7").await, 403);
    assert_eq!(status(&enforce, &web, Method::GET, "/admin").await, 403);

    let audit = PolicyFileOptions::new()
        .mode(PolicyMode::Audit)
        .serve(policy(SHOP_ONLY));
    assert_eq!(audit.mode(), PolicyMode::Audit);
    let audit = app(audit);
    for (peer, path) in [
        (&web, "/orders/7"),
        (&bad, "/orders/7"),
        (&web, "/admin"),
        (&bad, "/admin"),
    ] {
        assert_eq!(status(&audit, peer, Method::GET, path).await, 200, "{path}");
    }
}

#[tokio::test]
async fn learn_records_route_templates_then_the_learned_file_allows_exactly_them() {
    let web = peer(WEB);
    let bad = peer(BAD);
    let learning = PolicyFile::learn();
    let learn_app = app(learning.clone());
    for (peer, method, path) in [
        (&web, Method::GET, "/orders/7"),
        (&web, Method::GET, "/orders/8"),
        (&bad, Method::POST, "/orders/9"),
        (&web, Method::GET, "/admin"),
    ] {
        // Learn mode allows every authenticated caller (axum answers 405
        // for POST on a GET route, after the layer).
        assert_ne!(status(&learn_app, peer, method, path).await, 403);
    }
    let observed: Vec<(String, String, String)> = learning
        .observations()
        .iter()
        .map(|o| {
            (
                o.caller().to_string(),
                o.method().to_string(),
                o.route().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        observed,
        [
            (BAD.to_owned(), "POST".to_owned(), "/orders/{id}".to_owned()),
            (WEB.to_owned(), "GET".to_owned(), "/admin".to_owned()),
            (WEB.to_owned(), "GET".to_owned(), "/orders/{id}".to_owned()),
        ]
    );
    let learned = policy(&learning.learned_policy());
    // The learned file is also the record of the calls.
    assert_eq!(
        learned.learned_observations().unwrap(),
        learning.observations()
    );
    // No method: not the shape learn mode writes.
    assert!(policy(SHOP_ONLY).learned_observations().is_none());
    assert!(policy("version = 1\n[[rule]]\naction = \"allow\"\n")
        .learned_observations()
        .is_none());
    let enforce = app(PolicyFile::new(learned));
    assert_eq!(
        status(&enforce, &web, Method::GET, "/orders/100").await,
        200
    );
    assert_eq!(status(&enforce, &web, Method::GET, "/admin").await, 200);
    assert_eq!(status(&enforce, &bad, Method::GET, "/orders/1").await, 403);
    assert_eq!(status(&enforce, &bad, Method::GET, "/admin").await, 403);
    let stranger = peer("spiffe://example.org/stranger");
    assert_eq!(
        status(&enforce, &stranger, Method::GET, "/orders/1").await,
        403
    );
}

#[test]
fn learn_mode_is_bounded() {
    let learning = PolicyFileOptions::new()
        .mode(PolicyMode::Learn)
        .max_observations(2)
        .serve(CompiledPolicy::deny_all());
    let web = peer(WEB);
    for i in 0..5 {
        let req = Request::get(format!("/p{i}")).body(()).unwrap();
        assert!(common::allows(&learning, &web, &req));
    }
    assert_eq!(learning.observations().len(), 2);
    assert!(learning
        .learned_policy()
        .contains("3 calls were not recorded"));
}

#[test]
fn reload_from_toml_swaps_only_valid_policies() {
    let file = PolicyFile::new(policy(SHOP_ONLY));
    let before = file.current();
    assert_eq!(file.generation(), 1);
    let e = file
        .reload_from_toml("version = 1\n[[rule]]\naction = \"alow\"\n", "new.toml")
        .unwrap_err();
    assert_eq!(e.position(), Some((3, 10)));
    assert_eq!((file.generation(), file.failures()), (1, 1));
    assert_eq!(file.last_error().unwrap().to_string(), e.to_string());
    assert_eq!(file.current().len(), 1);
    file.reload_from_toml("version = 1\n", "new.toml").unwrap();
    assert_eq!(
        (file.generation(), file.failures(), file.current().len()),
        (2, 1, 0)
    );
    assert!(file.last_error().is_none());
    // A snapshot taken before keeps its policy.
    assert_eq!(before.len(), 1);
    let _ = id(WEB) == SpiffeId::new(WEB).unwrap();
}

#[test]
fn learn_records_grpc_methods_and_the_learned_file_names_them() {
    let web = peer(WEB);
    let learning = PolicyFile::learn();
    let call = |path: &str| {
        let req = Request::post(path)
            .header("content-type", "application/grpc+proto")
            .body(())
            .unwrap();
        assert!(common::allows(&learning, &web, &req));
    };
    call("/shop.Orders/Get");
    call("/shop.Orders/Get");
    call("/shop.Orders/List");
    let learned = learning.learned_policy();
    assert!(
        learned.contains("grpc = [\"/shop.Orders/Get\"]"),
        "{learned}"
    );
    let p = policy(&learned);
    assert_eq!(p.len(), 2);
    assert_eq!(p.learned_observations().unwrap(), learning.observations());
    assert!(decide(&p, WEB, Method::POST, "/shop.Orders/Get"));
    assert!(decide(&p, WEB, Method::POST, "/shop.Orders/List"));
    assert!(!decide(&p, WEB, Method::POST, "/shop.Orders/Delete"));
    assert!(!decide(&p, BAD, Method::POST, "/shop.Orders/Get"));
}

/// Random policies and requests (deterministic): the compiled index and
/// the rule-by-rule explanation always decide alike, by the same rule.
#[test]
fn index_agrees_with_rule_by_rule_evaluation_on_random_policies() {
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }
    let callers = [
        "spiffe://a.org/x",
        "spiffe://a.org/x/y",
        "spiffe://b.org/x",
        "trust-domain:a.org",
        "trust-domain:b.org",
        "prefix:spiffe://a.org/x",
        "*",
        "!spiffe://a.org/x/y",
        "!trust-domain:b.org",
    ];
    let paths = [
        "/",
        "/a",
        "/a/b",
        "/a/{id}",
        "/a/{id}/c",
        "/{x}",
        "/{x}/b",
        "/a/{*rest}",
        "/{*all}",
        "prefix:/",
        "prefix:/a",
        "prefix:/a/b",
        "/b/c:d",
    ];
    let grpc = ["/p.S", "/p.S/M", "/q.T/N"];
    let methods = ["GET", "HEAD", "POST", "DELETE"];
    let requests = [
        "/", "/a", "/a/", "/a/b", "/a/b/", "/a/x", "/a/x/c", "/a/b/c", "/a/b/c/d", "/b", "/b/b",
        "/b/c:d", "/b/c%3Ad", "/p.S", "/p.S/M", "/p.S/N", "/q.T/N", "/a%20/b", "/x/y/z/",
    ];
    let ids = [
        "spiffe://a.org/x",
        "spiffe://a.org/x/y",
        "spiffe://a.org/z",
        "spiffe://b.org/x",
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..300 {
        let mut text = String::from("version = 1\n");
        for _ in 0..1 + rng.below(8) {
            text.push_str("[[rule]]\n");
            text.push_str(&format!(
                "action = \"{}\"\n",
                rng.pick(&["allow", "allow", "deny", "audit"])
            ));
            if rng.below(3) > 0 {
                let n = 1 + rng.below(3);
                let list: Vec<String> = (0..n)
                    .map(|_| format!("{:?}", rng.pick(&callers)))
                    .collect();
                text.push_str(&format!("callers = [{}]\n", list.join(", ")));
            }
            if rng.below(3) == 0 {
                text.push_str(&format!(
                    "authenticated_by = [{:?}]\n",
                    rng.pick(&["mtls", "jwt-svid"])
                ));
            }
            if rng.below(4) == 0 {
                let n = 1 + rng.below(2);
                let list: Vec<String> = (0..n).map(|_| format!("{:?}", rng.pick(&grpc))).collect();
                text.push_str(&format!("grpc = [{}]\n", list.join(", ")));
            } else {
                if rng.below(2) == 0 {
                    text.push_str(&format!("methods = [{:?}]\n", rng.pick(&methods)));
                }
                if rng.below(4) > 0 {
                    let n = 1 + rng.below(3);
                    let list: Vec<String> =
                        (0..n).map(|_| format!("{:?}", rng.pick(&paths))).collect();
                    text.push_str(&format!("paths = [{}]\n", list.join(", ")));
                }
            }
        }
        let p = CompiledPolicy::from_toml(&text, "random.toml")
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{text}"));
        for caller in ids {
            for path in requests {
                for method in methods {
                    for authn in [AuthenticatedBy::Mtls, AuthenticatedBy::JwtSvid] {
                        let method = Method::from_bytes(method.as_bytes()).unwrap();
                        decide_as(&p, caller, authn, method, path);
                    }
                }
            }
        }
    }
}
