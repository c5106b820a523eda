//! Authorizers: every built-in and combinator, on the allow and the deny
//! path; every deny names the peer and gives a reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use mtls_core::authorize::{
    self, any, exact, from_fn, member_of, member_of_any, one_of, path_prefix, path_prefixes,
};
use mtls_core::{Authorizer, AuthorizerExt, Denied, Rejection, SpiffeId, TrustDomain};
use mtls_testing::id;

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

/// One authorizer and the peers it must allow and deny.
struct Case {
    name: &'static str,
    authorizer: Arc<dyn Authorizer>,
    allow: &'static [&'static str],
    deny: &'static [&'static str],
    /// A fragment every deny reason must contain.
    reason: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "any",
            authorizer: any().shared(),
            allow: &[
                "spiffe://a.example/x",
                "spiffe://b.example/x/y/z",
                "spiffe://a.example",
            ],
            deny: &[],
            reason: "",
        },
        Case {
            name: "exact",
            authorizer: exact(id("spiffe://td/ns/a/sa/web")).shared(),
            allow: &["spiffe://td/ns/a/sa/web"],
            deny: &[
                "spiffe://td/ns/a/sa/web/x", // below it
                "spiffe://td/ns/a/sa",       // above it
                "spiffe://td/ns/a/sa/we",    // string prefix
                "spiffe://td/ns/a/sa/webx",  // string extension
                "spiffe://td/ns/a/sa/Web",   // paths are case sensitive
                "spiffe://td2/ns/a/sa/web",  // same path, another trust domain
                "spiffe://td",               // the trust domain itself
            ],
            reason: "spiffe://td/ns/a/sa/web",
        },
        Case {
            name: "one-of",
            authorizer: one_of([
                id("spiffe://td/a"),
                id("spiffe://td/b"),
                id("spiffe://other/a"),
            ])
            .shared(),
            allow: &["spiffe://td/a", "spiffe://td/b", "spiffe://other/a"],
            deny: &[
                "spiffe://td/c",
                "spiffe://other/b",
                "spiffe://td/a/x",
                "spiffe://td",
                "spiffe://td/A",
            ],
            reason: "not one of",
        },
        Case {
            name: "one-of-empty-denies-everything",
            authorizer: one_of([]).shared(),
            allow: &[],
            deny: &["spiffe://td/a", "spiffe://td"],
            reason: "not one of",
        },
        Case {
            name: "member-of",
            authorizer: member_of(td("td")).shared(),
            allow: &["spiffe://td/a", "spiffe://td/a/b/c", "spiffe://td"],
            deny: &[
                "spiffe://td.evil/a",
                "spiffe://evil.td/a",
                "spiffe://tdx/a",
                "spiffe://t/a",
                "spiffe://other/td",
            ],
            reason: "trust domain",
        },
        Case {
            name: "member-of-any",
            authorizer: member_of_any([td("a.example"), td("b.example")]).shared(),
            allow: &["spiffe://a.example/x", "spiffe://b.example/y/z"],
            deny: &[
                "spiffe://c.example/x",
                "spiffe://a.example.evil/x",
                "spiffe://example/x",
                "spiffe://aa.example/x",
            ],
            reason: "trust domain",
        },
        Case {
            name: "member-of-any-empty-denies-everything",
            authorizer: member_of_any([]).shared(),
            allow: &[],
            deny: &["spiffe://a.example/x"],
            reason: "trust domain",
        },
        Case {
            name: "path-prefix-on-segment-boundary",
            authorizer: path_prefix(id("spiffe://td/ns/a")).shared(),
            allow: &[
                "spiffe://td/ns/a",
                "spiffe://td/ns/a/x",
                "spiffe://td/ns/a/x/y/z",
                "spiffe://td/ns/a/a",
            ],
            deny: &[
                "spiffe://td/ns/ab",     // not a segment boundary
                "spiffe://td/ns/ab/x",   // not a segment boundary, deeper
                "spiffe://td/ns/a.b",    // '.' is not a boundary
                "spiffe://td/ns/a-b/x",  // neither is '-'
                "spiffe://td/ns",        // the parent
                "spiffe://td/ns/b/ns/a", // the prefix further down the path
                "spiffe://td/ns/A",      // case sensitive
                "spiffe://td",           // the trust domain itself
                "spiffe://td2/ns/a",     // same path, another trust domain
                "spiffe://other/ns/a/x", // same path, another trust domain
                "spiffe://td.evil/ns/a", // a trust domain extending td
            ],
            reason: "not under",
        },
        Case {
            name: "path-prefix-trust-domain-id-allows-the-trust-domain",
            authorizer: path_prefix(id("spiffe://td")).shared(),
            allow: &["spiffe://td/x", "spiffe://td/a/b/c", "spiffe://td"],
            deny: &[
                "spiffe://td.evil/x",
                "spiffe://tdx/x",
                "spiffe://evil.td/x",
                "spiffe://t/x",
                "spiffe://td.evil",
            ],
            reason: "not under",
        },
        Case {
            name: "path-prefix-single-segment",
            authorizer: path_prefix(id("spiffe://td/a")).shared(),
            allow: &["spiffe://td/a", "spiffe://td/a/b"],
            deny: &["spiffe://td/b/a", "spiffe://td/aa", "spiffe://td/b"],
            reason: "not under",
        },
        Case {
            name: "path-prefixes",
            authorizer: path_prefixes([
                id("spiffe://td/ns/a"),
                id("spiffe://td/ns/b/c"),
                id("spiffe://other"),
            ])
            .shared(),
            allow: &[
                "spiffe://td/ns/a/x",
                "spiffe://td/ns/b/c",
                "spiffe://td/ns/b/c/d",
                "spiffe://other/anything/at/all",
                "spiffe://other",
            ],
            deny: &[
                "spiffe://td/ns/b",
                "spiffe://td/ns/b/cd",
                "spiffe://td/ns",
                "spiffe://other.evil/x",
                "spiffe://td",
            ],
            reason: "not under",
        },
        Case {
            name: "path-prefixes-empty-denies-everything",
            authorizer: path_prefixes([]).shared(),
            allow: &[],
            deny: &["spiffe://td/a", "spiffe://td"],
            reason: "not under",
        },
        Case {
            name: "from-fn",
            authorizer: from_fn(|peer: &SpiffeId| {
                if peer.segments().any(|s| s == "debug") {
                    Err(Denied::new(peer, "debug workloads may not connect"))
                } else {
                    Ok(())
                }
            })
            .shared(),
            allow: &["spiffe://td/a", "spiffe://td/debugger", "spiffe://td"],
            deny: &["spiffe://td/debug", "spiffe://td/a/debug/b"],
            reason: "debug workloads may not connect",
        },
        Case {
            name: "and",
            authorizer: member_of(td("td"))
                .and(path_prefix(id("spiffe://td/ns/a")))
                .shared(),
            allow: &["spiffe://td/ns/a/x"],
            deny: &["spiffe://td/ns/b", "spiffe://other/ns/a/x"],
            reason: "",
        },
        Case {
            name: "and-first-deny-reason-wins",
            authorizer: member_of(td("td")).and(exact(id("spiffe://td/x"))).shared(),
            allow: &["spiffe://td/x"],
            deny: &["spiffe://other/x"],
            reason: "trust domain other is not allowed",
        },
        Case {
            name: "and-second-deny-reason",
            authorizer: member_of(td("td")).and(exact(id("spiffe://td/x"))).shared(),
            allow: &[],
            deny: &["spiffe://td/y"],
            reason: "is not spiffe://td/x",
        },
        Case {
            name: "or",
            authorizer: exact(id("spiffe://td/x"))
                .or(path_prefix(id("spiffe://td/ns")))
                .shared(),
            allow: &["spiffe://td/x", "spiffe://td/ns/y", "spiffe://td/ns"],
            deny: &["spiffe://td/y", "spiffe://other/x"],
            // Both reasons are kept.
            reason: "is not spiffe://td/x; and is not under",
        },
        Case {
            name: "not",
            authorizer: exact(id("spiffe://td/debug")).not().shared(),
            allow: &[
                "spiffe://td/x",
                "spiffe://td/debug/x",
                "spiffe://other/debug",
            ],
            deny: &["spiffe://td/debug"],
            reason: "excluded",
        },
        Case {
            name: "not-not-is-identity",
            authorizer: member_of(td("td")).not().not().shared(),
            allow: &["spiffe://td/x"],
            deny: &["spiffe://other/x"],
            reason: "excluded",
        },
        Case {
            name: "not-any-denies-everything",
            authorizer: any().not().shared(),
            allow: &[],
            deny: &["spiffe://td/x", "spiffe://td"],
            reason: "excluded",
        },
        Case {
            name: "policy-member-and-prefix-and-not-exact",
            authorizer: member_of(td("prod.example.org"))
                .and(path_prefix(id("spiffe://prod.example.org/ns/payments")))
                .and(exact(id("spiffe://prod.example.org/ns/payments/sa/debug")).not())
                .shared(),
            allow: &[
                "spiffe://prod.example.org/ns/payments/sa/web",
                "spiffe://prod.example.org/ns/payments",
            ],
            deny: &[
                "spiffe://prod.example.org/ns/payments/sa/debug",
                "spiffe://prod.example.org/ns/paymentsx/sa/web",
                "spiffe://dev.example.org/ns/payments/sa/web",
            ],
            reason: "",
        },
        Case {
            name: "combinators-over-shared-and-boxed",
            authorizer: {
                let a: Arc<dyn Authorizer> = exact(id("spiffe://td/a")).shared();
                let b: Box<dyn Authorizer> = Box::new(exact(id("spiffe://td/b")));
                a.or(b).and(member_of(td("td"))).shared()
            },
            allow: &["spiffe://td/a", "spiffe://td/b"],
            deny: &["spiffe://td/c"],
            reason: "",
        },
    ]
}

#[test]
fn authorizer_table() {
    let mut failures = Vec::new();
    for case in cases() {
        for peer in case.allow {
            if let Err(d) = case.authorizer.authorize(&id(peer)) {
                failures.push(format!("{}: {peer} should be allowed, got {d}", case.name));
            }
        }
        for peer in case.deny {
            let peer = id(peer);
            match case.authorizer.authorize(&peer) {
                Ok(()) => failures.push(format!("{}: {peer} should be denied", case.name)),
                Err(d) => {
                    if d.peer() != &peer {
                        failures.push(format!("{}: deny of {peer} names {}", case.name, d.peer()));
                    }
                    if d.reason().trim().is_empty() {
                        failures.push(format!("{}: deny of {peer} has no reason", case.name));
                    }
                    if !d.reason().contains(case.reason) {
                        failures.push(format!(
                            "{}: deny of {peer}: reason {:?} lacks {:?}",
                            case.name,
                            d.reason(),
                            case.reason
                        ));
                    }
                    let shown = d.to_string();
                    if !shown.contains(peer.as_str()) || !shown.contains(d.reason()) {
                        failures.push(format!(
                            "{}: deny of {peer} displays as {shown:?}",
                            case.name
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn one_of_ten_thousand_ids() {
    let ids: Vec<SpiffeId> = (0..10_000)
        .map(|i| id(&format!("spiffe://td/svc/{i}")))
        .collect();
    let auth = one_of(ids.clone());
    for peer in &ids {
        auth.authorize(peer).unwrap();
    }
    for peer in [
        "spiffe://td/svc/10000",
        "spiffe://td/svc",
        "spiffe://other/svc/1",
        "spiffe://td/svc/1/x",
    ] {
        let d = auth.authorize(&id(peer)).unwrap_err();
        assert_eq!(d.peer().as_str(), peer);
    }
}

#[test]
fn path_prefixes_ten_thousand_prefixes() {
    let prefixes: Vec<SpiffeId> = (0..10_000)
        .map(|i| id(&format!("spiffe://td/ns/{i}")))
        .collect();
    let auth = path_prefixes(prefixes);
    for i in (0..10_000).step_by(97) {
        auth.authorize(&id(&format!("spiffe://td/ns/{i}/sa/web")))
            .unwrap();
    }
    assert!(auth.authorize(&id("spiffe://td/ns/10000/sa/web")).is_err());
    assert!(auth.authorize(&id("spiffe://td/ns/1x/sa/web")).is_err());
    assert!(auth.authorize(&id("spiffe://td/ns")).is_err());
}

#[test]
fn path_prefix_deep_peer_path() {
    // A peer path of many segments, near the ID length limit.
    let deep = format!("spiffe://td/ns/a{}", "/s".repeat(1000));
    let auth = path_prefix(id("spiffe://td/ns/a"));
    auth.authorize(&id(&deep)).unwrap();
    let deep_other = format!("spiffe://td/ns/ab{}", "/s".repeat(1000));
    assert!(auth.authorize(&id(&deep_other)).is_err());
}

#[test]
fn shared_authorizer_is_usable_across_threads() {
    let auth = member_of(td("td"))
        .and(exact(id("spiffe://td/x")).not())
        .shared();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let auth = Arc::clone(&auth);
            std::thread::spawn(move || {
                auth.authorize(&id(&format!("spiffe://td/w{i}"))).unwrap();
                auth.authorize(&id("spiffe://td/x")).unwrap_err();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn denied_carries_peer_and_reason() {
    let peer = id("spiffe://td/x");
    let d = Denied::new(&peer, "nope");
    assert_eq!(d.peer(), &peer);
    assert_eq!(d.reason(), "nope");
    assert_eq!(d.to_string(), "authorize: spiffe://td/x denied: nope");
    assert_eq!(d, Denied::new(&peer, String::from("nope")));
    // As a handshake rejection, it keeps the peer.
    let e = Rejection::from(d.clone());
    assert!(matches!(&e, Rejection::Denied(inner) if *inner == d));
    assert_eq!(e.spiffe_id(), Some(&peer));
    assert_eq!(e.kind(), "denied");
}

#[test]
fn module_paths_agree() {
    // The free functions are reachable through the module as well.
    let a = authorize::exact(id("spiffe://td/x"));
    assert!(a.authorize(&id("spiffe://td/x")).is_ok());
    assert!(authorize::any().authorize(&id("spiffe://td")).is_ok());
}

#[test]
fn allows_agrees_with_authorize() {
    use mtls_core::{authorize, Authorizer, AuthorizerExt, SpiffeId, TrustDomain};
    let id = |s: &str| SpiffeId::new(s).unwrap();
    let td = TrustDomain::new("example.org").unwrap();
    let authorizers: Vec<Box<dyn Authorizer>> = vec![
        Box::new(authorize::any()),
        Box::new(authorize::exact(id("spiffe://example.org/a"))),
        Box::new(authorize::one_of([
            id("spiffe://example.org/a"),
            id("spiffe://other.org/b"),
        ])),
        Box::new(authorize::member_of(td.clone())),
        Box::new(authorize::path_prefix(id("spiffe://example.org/ns"))),
        Box::new(
            authorize::exact(id("spiffe://example.org/a")).or(authorize::member_of(td.clone())),
        ),
        Box::new(
            authorize::member_of(td.clone())
                .and(authorize::exact(id("spiffe://example.org/a")).not()),
        ),
        Box::new(authorize::from_fn(|p: &SpiffeId| {
            if p.path().len() > 3 {
                Ok(())
            } else {
                Err(mtls_core::Denied::new(p, "short"))
            }
        })),
    ];
    let peers = [
        "spiffe://example.org/a",
        "spiffe://example.org/ns/x",
        "spiffe://other.org/b",
        "spiffe://other.org/ns",
    ];
    for (i, a) in authorizers.iter().enumerate() {
        for p in peers {
            let p = id(p);
            assert_eq!(
                a.allows(&p),
                a.authorize(&p).is_ok(),
                "authorizer #{i}, {p}"
            );
        }
    }
}
