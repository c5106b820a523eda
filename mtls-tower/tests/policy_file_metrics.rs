//! Policy file metrics: reloads and their failures, decisions by mode,
//! audit rule matches, calls learn mode could not record.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use mtls_testing::{counters, Counter};
use mtls_tower::metrics as names;
use mtls_tower::{CompiledPolicy, PolicyFile, PolicyFileOptions, PolicyMode};

const POLICY: &str = r#"
version = 1
[[rule]]
action = "allow"
paths = ["/ok"]
[[rule]]
action = "audit"
paths = ["/ok", "/no"]
"#;

fn count(all: &[Counter], name: &str, labels: &[(&str, &str)]) -> u64 {
    all.iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(.., c)| c)
        .sum()
}

#[test]
fn reloads_decisions_audits_and_learning_are_counted() {
    let _ = counters();
    let pki = common::Pki::new("example.org");
    let peer = pki.peer(common::FRONTEND);
    let ask = |file: &PolicyFile, path: &str| {
        common::allows(file, &peer, &http::Request::get(path).body(()).unwrap())
    };
    let policy = CompiledPolicy::from_toml(POLICY, "p.toml").unwrap();
    let enforce = PolicyFile::new(policy.clone());
    assert!(ask(&enforce, "/ok"));
    assert!(!ask(&enforce, "/no"));
    assert!(!ask(&enforce, "/other"));
    let audit = PolicyFileOptions::new()
        .mode(PolicyMode::Audit)
        .serve(policy);
    assert!(ask(&audit, "/no"));
    enforce
        .reload_from_toml("version = 3\n", "p.toml")
        .unwrap_err();
    enforce.reload_from_toml(POLICY, "p.toml").unwrap();
    let learn = PolicyFileOptions::new()
        .mode(PolicyMode::Learn)
        .max_observations(1)
        .serve(CompiledPolicy::deny_all());
    assert!(ask(&learn, "/a"));
    assert!(ask(&learn, "/b"));

    let all = counters();
    let decisions = names::POLICY_DECISIONS;
    assert_eq!(
        count(
            &all,
            decisions,
            &[("mode", "enforce"), ("decision", "allow")]
        ),
        1
    );
    assert_eq!(
        count(
            &all,
            decisions,
            &[("mode", "enforce"), ("decision", "deny")]
        ),
        2
    );
    assert_eq!(
        count(&all, decisions, &[("mode", "audit"), ("decision", "deny")]),
        1
    );
    assert_eq!(
        count(&all, decisions, &[("mode", "learn"), ("decision", "allow")]),
        2
    );
    // /ok and /no in enforce mode, /no in audit mode.
    assert_eq!(count(&all, names::POLICY_AUDIT_MATCHES, &[]), 3);
    assert_eq!(
        count(&all, names::POLICY_RELOADS, &[("result", "error")]),
        1
    );
    assert_eq!(count(&all, names::POLICY_RELOADS, &[("result", "ok")]), 1);
    assert_eq!(count(&all, names::POLICY_LEARN_DROPPED, &[]), 1);
}
