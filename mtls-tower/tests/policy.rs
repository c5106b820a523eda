//! `RoutePolicy` semantics: first match wins, segment boundaries, method
//! restrictions, prefix validation, decisions on the normal form of the
//! path, and correctness with many rules.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use http::Method;
use mtls_core::{authorize, SpiffeId};
use mtls_testing::id;
use mtls_tower::{PolicyError, RoutePolicy};

fn admin() -> SpiffeId {
    id("spiffe://example.org/admin")
}

fn frontend() -> SpiffeId {
    id("spiffe://example.org/frontend")
}

fn allows(policy: &RoutePolicy, method: &Method, path: &str, peer: &SpiffeId) -> bool {
    policy.decide(method, path, peer).is_ok()
}

/// Two rules: `admin_prefix` for the admin only and `any_prefix` for
/// anyone, the admin's rule first when `admin_first`, else second.
fn admin_and_any(admin_prefix: &str, any_prefix: &str, admin_first: bool) -> RoutePolicy {
    let builder = RoutePolicy::builder();
    let builder = if admin_first {
        builder
            .route(admin_prefix, authorize::exact(admin()))
            .route(any_prefix, authorize::any())
    } else {
        builder
            .route(any_prefix, authorize::any())
            .route(admin_prefix, authorize::exact(admin()))
    };
    builder.build().unwrap()
}

/// Whether a policy with one rule, `prefix` for anyone, builds.
fn any_route_builds(prefix: &str) -> bool {
    RoutePolicy::builder()
        .route(prefix, authorize::any())
        .build()
        .is_ok()
}

#[test]
fn first_matching_rule_wins_not_the_longest() {
    // (the admin's prefix, anyone's prefix, whether the admin's rule comes
    // first, paths served to the frontend, paths refused to it); the paths
    // are space-separated.
    let cases = [
        // An earlier `/orders` rule beats a later `/` rule.
        ("/orders", "/", true, "/other /", "/orders /orders/7"),
        // Reversed: `/` comes first and decides everything.
        ("/orders", "/", false, "/orders", ""),
        // A deeper rule first decides its subtree; the shallower one the rest.
        ("/a/b", "/a", true, "/a/bc /a/c /a", "/a/b /a/b/c"),
        // The shallower rule first: it decides the deeper paths too.
        ("/a/b", "/a", false, "/a/b/c", ""),
        // Two rules with the same prefix: the first decides.
        ("/x", "/x", true, "", "/x"),
    ];
    let get = Method::GET;
    for (admin_prefix, any_prefix, admin_first, served, refused) in cases {
        let policy = admin_and_any(admin_prefix, any_prefix, admin_first);
        let case = format!("admin {admin_prefix}, any {any_prefix}, admin first: {admin_first}");
        for path in served.split_whitespace() {
            assert!(allows(&policy, &get, path, &frontend()), "{case}: {path}");
        }
        for path in refused.split_whitespace() {
            assert!(!allows(&policy, &get, path, &frontend()), "{case}: {path}");
        }
    }
    // The admin's rule serves the admin.
    let policy = admin_and_any("/orders", "/", true);
    assert!(allows(&policy, &get, "/orders/7", &admin()));
}

#[test]
fn prefixes_match_whole_segments() {
    let policy = RoutePolicy::builder()
        .route("/orders", authorize::any())
        .build()
        .unwrap();
    let get = Method::GET;
    for path in ["/orders", "/orders/", "/orders/7", "/orders/7/items"] {
        assert!(allows(&policy, &get, path, &frontend()), "{path}");
    }
    for path in [
        "/ordersx",
        "/order",
        "/orders.json",
        "/",
        "/x/orders",
        "/Orders",
        "/orders%2F7",
        "",
        // Not in normal form (an empty segment): denied whatever the rules.
        "/orders//7",
    ] {
        assert!(!allows(&policy, &get, path, &frontend()), "{path}");
    }
    // gRPC: a service prefix covers its methods only.
    let policy = RoutePolicy::builder()
        .route("/pkg.Orders", authorize::any())
        .build()
        .unwrap();
    assert!(allows(
        &policy,
        &Method::POST,
        "/pkg.Orders/Get",
        &frontend()
    ));
    assert!(!allows(
        &policy,
        &Method::POST,
        "/pkg.OrdersAdmin/Get",
        &frontend()
    ));
    // `/` matches everything.
    let policy = RoutePolicy::allow_all_paths(authorize::any());
    for path in ["/", "/a", "/a/b/c", "/a/"] {
        assert!(allows(&policy, &get, path, &frontend()), "{path}");
    }
}

#[test]
fn method_restrictions_make_a_rule_match_only_those_methods() {
    let policy = RoutePolicy::builder()
        .route_methods([Method::GET], "/health", authorize::any())
        .route_methods(
            [Method::POST, Method::DELETE],
            "/orders",
            authorize::exact(admin()),
        )
        .route("/orders", authorize::any())
        .build()
        .unwrap();
    assert!(allows(&policy, &Method::GET, "/health", &frontend()));
    // No other rule covers POST /health: default deny, for everyone.
    assert!(!allows(&policy, &Method::POST, "/health", &frontend()));
    assert!(!allows(&policy, &Method::POST, "/health", &admin()));
    // A rule whose methods do not match is skipped; the next one decides.
    assert!(allows(&policy, &Method::GET, "/orders/7", &frontend()));
    assert!(!allows(&policy, &Method::POST, "/orders/7", &frontend()));
    assert!(!allows(&policy, &Method::DELETE, "/orders", &frontend()));
    assert!(allows(&policy, &Method::DELETE, "/orders", &admin()));
    // Extension methods compare exactly.
    let purge = Method::from_bytes(b"PURGE").unwrap();
    let policy = RoutePolicy::builder()
        .route_methods([purge.clone()], "/cache", authorize::any())
        .build()
        .unwrap();
    assert!(allows(&policy, &purge, "/cache", &frontend()));
    assert!(!allows(&policy, &Method::GET, "/cache", &frontend()));
    // An empty method list matches nothing.
    let policy = RoutePolicy::builder()
        .route_methods([], "/", authorize::any())
        .build()
        .unwrap();
    assert!(!allows(&policy, &Method::GET, "/", &frontend()));
}

#[test]
fn default_deny_and_reason() {
    let empty = RoutePolicy::builder().build().unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    let denied = empty.decide(&Method::GET, "/", &frontend()).unwrap_err();
    assert_eq!(denied.peer(), &frontend());
    assert_eq!(denied.reason(), "no route rule matches");

    let policy = RoutePolicy::builder()
        .route("/a", authorize::any())
        .route_shared(
            Some(vec![Method::GET]),
            "/b",
            std::sync::Arc::new(authorize::any()),
        )
        .build()
        .unwrap();
    assert_eq!(policy.len(), 2);
    assert!(!policy.is_empty());
    assert!(allows(&policy, &Method::GET, "/b", &frontend()));
    assert!(!allows(&policy, &Method::PUT, "/b", &frontend()));
    let debug = format!("{policy:?}");
    assert!(debug.contains("/a") && debug.contains("/b"), "{debug}");
}

#[test]
fn invalid_prefixes_are_rejected_by_build() {
    for bad in [
        "",
        "orders",
        "*",
        "/orders/",
        "//",
        "//orders",
        "/a//b",
        "/a?b",
        "/a?",
        "/a#frag",
        "/a b",
        "/a\n",
        "/a\0",
        "/a\u{7f}",
        "/a/%2F",
        "/%61dmin",
        "/a%20b",
        "/100%",
        "/a/./b",
        "/a/..",
        "/.",
        "/a\\b",
        "/a\"b",
        "/a<b>",
        "/a[0]",
        "/a^b",
        "/a`b",
        "/a|b",
        "/caf\u{e9}",
    ] {
        let err = RoutePolicy::builder()
            .route("/fine", authorize::any())
            .route(bad, authorize::any())
            .route("/fine/too", authorize::any())
            .build()
            .unwrap_err();
        let PolicyError::InvalidPrefix { prefix, reason } = &err else {
            panic!("{bad:?}: {err:?}");
        };
        assert_eq!(prefix, bad);
        assert!(!reason.is_empty());
        assert!(err.to_string().contains("invalid path prefix"), "{err}");
    }
    // The first invalid one is reported.
    let err = RoutePolicy::builder()
        .route("first", authorize::any())
        .route("/second/", authorize::any())
        .build()
        .unwrap_err();
    assert!(matches!(&err, PolicyError::InvalidPrefix { prefix, .. } if prefix == "first"));
    // A very long bad prefix is truncated in the error.
    let long = "x".repeat(10_000);
    let err = RoutePolicy::builder()
        .route(&long, authorize::any())
        .build()
        .unwrap_err();
    assert!(matches!(&err, PolicyError::InvalidPrefix { prefix, .. } if prefix.len() == 128));

    for good in [
        "/",
        "/a",
        "/a.b/C-d_e~",
        "/pkg.Svc/Method",
        "/v1:batch",
        "/users/@me",
        "/a*b/c:d/e+f/g=h;i,j/!$&'()",
        "/...",
        "/.well-known",
    ] {
        assert!(any_route_builds(good), "{good:?}");
    }
}

#[test]
fn ten_thousand_rules_decide_correctly() {
    const N: usize = 10_000;
    let worker = |i: usize| id(&format!("spiffe://example.org/w{i}"));
    let mut builder = RoutePolicy::builder();
    for i in 0..N {
        builder = builder.route(&format!("/svc{i}"), authorize::exact(worker(i)));
    }
    let policy = builder
        // Later rules for prefixes already covered never decide.
        .route("/svc42", authorize::any())
        .route("/svc42/open", authorize::any())
        .route("/", authorize::exact(admin()))
        .build()
        .unwrap();
    assert_eq!(policy.len(), N + 3);
    let get = Method::GET;
    for i in (0..N).step_by(7).chain([N - 1]) {
        let path = format!("/svc{i}");
        assert!(allows(&policy, &get, &path, &worker(i)), "{path}");
        assert!(allows(&policy, &get, &format!("{path}/x/y"), &worker(i)));
        assert!(!allows(&policy, &get, &path, &worker(i + 1)), "{path}");
        assert!(
            !allows(&policy, &get, &path, &admin()),
            "{path}: the first rule decides"
        );
        // `/svc1` does not cover `/svc10`: segment boundaries.
        assert!(!allows(&policy, &get, &format!("{path}0"), &worker(i)));
    }
    assert!(!allows(&policy, &get, "/svc42", &frontend()));
    assert!(!allows(&policy, &get, "/svc42/open", &frontend()));
    // Paths no `/svcN` rule covers fall to the `/` rule.
    assert!(allows(&policy, &get, "/unlisted", &admin()));
    assert!(allows(&policy, &get, &format!("/svc{N}"), &admin()));
    assert!(!allows(&policy, &get, "/unlisted", &worker(0)));
}

#[test]
fn deeply_nested_prefixes_decide_by_order() {
    const DEPTH: usize = 1_000;
    let prefix = |k: usize| "/n".repeat(k);
    let worker = |k: usize| id(&format!("spiffe://example.org/w{k}"));
    // Deepest first, so the deepest matching prefix is the first match.
    let mut builder = RoutePolicy::builder();
    for k in (1..=DEPTH).rev() {
        builder = builder.route(&prefix(k), authorize::exact(worker(k)));
    }
    let policy = builder.build().unwrap();
    let get = Method::GET;
    for k in [1, 2, 500, DEPTH] {
        let path = format!("{}/leaf", prefix(k));
        assert!(allows(&policy, &get, &path, &worker(k)), "depth {k}");
        assert!(!allows(&policy, &get, &path, &worker(k - 1)), "depth {k}");
    }
    // Deeper than any rule: the deepest rule decides.
    let path = prefix(DEPTH + 50);
    assert!(allows(&policy, &get, &path, &worker(DEPTH)));

    // Shallowest first: `/n` decides every path under it.
    let mut builder = RoutePolicy::builder();
    for k in 1..=DEPTH {
        builder = builder.route(&prefix(k), authorize::exact(worker(k)));
    }
    let policy = builder.build().unwrap();
    assert!(allows(&policy, &get, &prefix(DEPTH), &worker(1)));
    assert!(!allows(&policy, &get, &prefix(DEPTH), &worker(DEPTH)));
}

/// HEAD is GET without a body, and axum's `get` (like most routers) runs
/// the GET handler for HEAD. A rule restricted to GET must therefore govern
/// HEAD too; today a HEAD request skips it and falls through to the next
/// rule, so `HEAD /admin` runs the admin-only GET handler for anyone the
/// fallback allows (its side effects and response headers included).
#[test]
fn get_rule_governs_head() {
    let policy = RoutePolicy::builder()
        .route_methods([Method::GET], "/admin", authorize::exact(admin()))
        .route("/", authorize::any())
        .build()
        .unwrap();
    assert!(!allows(&policy, &Method::GET, "/admin", &frontend()));
    assert!(
        !allows(&policy, &Method::HEAD, "/admin", &frontend()),
        "HEAD sidesteps the GET-only rule"
    );
    assert!(allows(&policy, &Method::HEAD, "/admin", &admin()));
}

#[test]
fn route_syntax_in_a_prefix_is_a_typed_error() {
    for (name, bad, segment) in [
        ("axum-capture", "/users/{id}", "{id}"),
        (
            "axum-capture-mid-segment",
            "/files/{name}.txt",
            "{name}.txt",
        ),
        ("axum-wildcard", "/files/{*rest}", "{*rest}"),
        ("escaped-brace", "/a/{{b}}", "{{b}}"),
        ("lone-brace", "/a/b}", "b}"),
        ("colon-capture", "/users/:id", ":id"),
        ("colon-capture-first", "/:tenant/users", ":tenant"),
        ("star-wildcard", "/files/*rest", "*rest"),
        ("bare-star", "/files/*", "*"),
    ] {
        let err = RoutePolicy::builder()
            .route("/fine", authorize::any())
            .route(bad, authorize::any())
            .build()
            .unwrap_err();
        let PolicyError::RouteSyntax {
            prefix,
            segment: got,
        } = &err
        else {
            panic!("{name}: {bad:?}: {err:?}");
        };
        assert_eq!(prefix, bad, "{name}");
        assert_eq!(got, segment, "{name}");
        let message = err.to_string();
        assert!(
            message.starts_with("route policy:")
                && message.contains(bad)
                && message.contains("not route templates"),
            "{name}: {message}"
        );
    }
    // `:` and `*` inside a segment are literal characters, not syntax.
    for good in ["/v1/things:batchGet", "/a*"] {
        assert!(any_route_builds(good), "{good:?}");
    }
}

#[test]
fn decisions_are_on_the_normal_form_of_the_path() {
    let policy = RoutePolicy::builder()
        .route("/users/admin", authorize::exact(admin()))
        .route("/v1:batch", authorize::exact(admin()))
        .route("/users", authorize::any())
        .route("/", authorize::any())
        .build()
        .unwrap();
    let get = Method::GET;
    // Not in normal form: denied for everyone, admin included.
    for (name, path) in [
        ("encoded-letter", "/users/%61dmin"),
        ("encoded-letter-upper-hex", "/users/%41dmin"),
        ("encoded-mid-lower-hex", "/users/ad%6din"),
        ("encoded-mid-upper-hex", "/users/ad%6Din"),
        ("double-encoded", "/users/%2561dmin"),
        ("empty-segment", "/users//admin"),
        ("dot-segment", "/users/./admin"),
        ("dot-dot-segment", "/users/x/../admin"),
        ("encoded-dot-dot", "/users/%2e%2e/admin"),
        ("encoded-slash", "/users/admin%2F"),
        ("encoded-backslash", "/users/admin%5c"),
        ("malformed", "/users/%zz"),
        ("truncated", "/users/%4"),
        ("not-absolute", "users/admin"),
    ] {
        for peer in [admin(), frontend()] {
            let err = policy.decide(&get, path, &peer).unwrap_err();
            assert!(err.to_string().contains("request path"), "{name}: {err}");
        }
    }
    // A trailing `/` is governed by the rule without it.
    assert!(!allows(&policy, &get, "/users/admin/", &frontend()));
    assert!(allows(&policy, &get, "/users/admin/", &admin()));
    // Encoded rule characters are decided on decoded.
    assert!(!allows(&policy, &get, "/v1%3Abatch", &frontend()));
    assert!(!allows(&policy, &get, "/v1%3abatch", &frontend()));
    assert!(allows(&policy, &get, "/v1%3Abatch", &admin()));
    // Other encoded octets match no rule segment.
    assert!(allows(&policy, &get, "/users/admin%20", &frontend()));
    assert!(allows(&policy, &get, "/users/%C3%A9", &frontend()));
}
