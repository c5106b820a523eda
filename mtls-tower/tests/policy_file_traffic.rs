//! `mtls_requests_total{caller, route, decision}`: who calls what and what
//! is denied, with bounded label sets.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;

use mtls_core::PeerIdentity;
use mtls_tower::metrics as names;
use mtls_tower::{CompiledPolicy, PolicyFile, PolicyFileOptions, PolicyMode};

const POLICY: &str = r#"
version = 1
[[rule]]
action = "allow"
callers = ["spiffe://example.org/frontend"]
paths = ["/ok", "/items/{id}"]
[[rule]]
action = "allow"
grpc = ["/shop.Orders/Get"]
"#;

/// `mtls_requests_total` series since the last snapshot: (caller, route,
/// decision) -> count.
fn requests() -> Vec<((String, String, String), u64)> {
    mtls_testing::counters()
        .into_iter()
        .filter(|(name, _, c)| name == names::REQUESTS && *c > 0)
        .map(|(_, labels, c)| {
            let label = |k: &str| {
                labels
                    .iter()
                    .find(|(lk, _)| lk == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            ((label("caller"), label("route"), label("decision")), c)
        })
        .collect()
}

fn count(all: &[((String, String, String), u64)], c: &str, r: &str, d: &str) -> u64 {
    all.iter()
        .filter(|((ac, ar, ad), _)| ac == c && ar == r && ad == d)
        .map(|(_, n)| n)
        .sum()
}

fn ask(file: &PolicyFile, peer: &PeerIdentity, path: &str, grpc: bool) -> bool {
    let mut req = http::Request::post(path);
    if grpc {
        req = req.header("content-type", "application/grpc");
    }
    common::allows(file, peer, &req.body(()).unwrap())
}

// One test: the recorder is global and snapshots reset what they read.
#[test]
fn requests_are_counted_by_caller_route_and_decision_with_bounded_labels() {
    let _ = requests();
    let pki = common::Pki::new("example.org");
    let frontend = pki.peer(common::FRONTEND);
    let backend = pki.peer(common::BACKEND);
    let policy = CompiledPolicy::from_toml(POLICY, "p.toml").unwrap();

    // Labels: caller, route (gRPC method or path), decision.
    let enforce = PolicyFile::new(policy.clone());
    assert!(ask(&enforce, &frontend, "/ok", false));
    assert!(ask(&enforce, &frontend, "/ok", false));
    assert!(!ask(&enforce, &backend, "/ok", false));
    assert!(ask(&enforce, &backend, "/shop.Orders/Get", true));
    // A path not in normal form: route `other`.
    assert!(!ask(&enforce, &frontend, "/a/../ok", false));
    let audit = PolicyFileOptions::new()
        .mode(PolicyMode::Audit)
        .serve(policy.clone());
    assert!(ask(&audit, &backend, "/ok", false));
    let learn = PolicyFile::learn();
    assert!(ask(&learn, &backend, "/anything", false));

    let all = requests();
    let (f, b) = (common::FRONTEND, common::BACKEND);
    assert_eq!(count(&all, f, "/ok", "allow"), 2, "{all:?}");
    assert_eq!(count(&all, b, "/ok", "deny"), 1, "{all:?}");
    assert_eq!(count(&all, b, "/shop.Orders/Get", "allow"), 1, "{all:?}");
    assert_eq!(count(&all, f, "other", "deny"), 1, "{all:?}");
    assert_eq!(count(&all, b, "/ok", "audit-deny"), 1, "{all:?}");
    assert_eq!(count(&all, b, "/anything", "allow"), 1, "{all:?}");

    // Bounded: with a limit of 3, the fourth and later distinct callers
    // and routes are `other`, and every request is still counted.
    let bounded = PolicyFileOptions::new().label_limit(3).serve(policy);
    let callers: Vec<PeerIdentity> = (0..6)
        .map(|i| pki.peer(&format!("spiffe://example.org/caller-{i}")))
        .collect();
    let mut total = 0;
    for caller in &callers {
        for item in 0..10 {
            ask(&bounded, caller, &format!("/items/{item}"), false);
            total += 1;
        }
    }
    let all = requests();
    let callers_seen: BTreeSet<&str> = all.iter().map(|((c, ..), _)| c.as_str()).collect();
    let routes_seen: BTreeSet<&str> = all.iter().map(|((_, r, _), _)| r.as_str()).collect();
    assert_eq!(callers_seen.len(), 4, "{callers_seen:?}");
    assert!(callers_seen.contains("other"));
    assert!(callers_seen.contains("spiffe://example.org/caller-0"));
    assert!(!callers_seen.contains("spiffe://example.org/caller-5"));
    assert_eq!(routes_seen.len(), 4, "{routes_seen:?}");
    assert!(routes_seen.contains("other"));
    assert_eq!(all.iter().map(|(_, n)| n).sum::<u64>(), total);
}
