//! The fuzz target of mtls-tower's policy file parser, replayed on stable
//! by `mtls-tower/tests/fuzz_replay.rs` (the other targets' crates do not
//! depend on mtls-tower).
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::Method;
use mtls_core::SpiffeId;
use mtls_tower::{AuthenticatedBy, CompiledPolicy, PolicyFileError, PolicyQuery};

/// A target: its name (also its corpus and regression directory) and its
/// body.
pub type Target = (&'static str, fn(&[u8]));

/// The targets of mtls-tower (their names are also in
/// `replay::OTHER_CRATES_TARGETS`).
pub const POLICY_TARGETS: &[Target] = &[("policy_file", policy_file)];

/// Policy file parsing never panics; an invalid file is a typed error at
/// a line and column inside the text; a valid one decides every query the
/// same through its index and rule by rule.
pub fn policy_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match CompiledPolicy::from_toml(text, "fuzz.toml") {
        Ok(policy) => policy,
        Err(e) => {
            let PolicyFileError::Invalid { line, column, .. } = &e else {
                panic!("not an Invalid error: {e}");
            };
            let lines = text.split('\n').count();
            assert!(*line >= 1 && *line <= lines, "line {line} of {lines}: {e}");
            assert!(*column >= 1, "{e}");
            assert!(e
                .to_string()
                .starts_with(&format!("fuzz.toml:{line}:{column}: ")));
            return;
        }
    };
    let callers = [
        "spiffe://example.org/a",
        "spiffe://example.org/ns/shop/sa/web",
        "spiffe://partner.org/x",
        "spiffe://example.org/admin/b",
    ];
    let paths = [
        "/",
        "/a",
        "/a/",
        "/a/b",
        "/orders/7",
        "/users/admin",
        "/static/x/y",
        "/pkg.S/M",
        "/api/v1",
        "/a%20b",
        "/%61",
        "/x/y/z/",
        "/v1:batch",
    ];
    for caller in callers {
        let caller = SpiffeId::new(caller).unwrap();
        for path in paths {
            for method in [Method::GET, Method::HEAD, Method::POST] {
                for authn in [AuthenticatedBy::Mtls, AuthenticatedBy::JwtSvid] {
                    let query = PolicyQuery::new(&caller, authn, &method, path);
                    let fast = policy.evaluate(&query);
                    let slow = policy.explain(&query);
                    assert_eq!(
                        fast.is_allowed(),
                        slow.is_allowed(),
                        "{method} {path}: {slow}"
                    );
                    assert_eq!(fast.rule(), slow.rule(), "{method} {path}: {slow}");
                }
            }
        }
    }
}
