//! Run with: `cargo test -p examples --test jwt_proxy`
//!
//! The `jwt-proxy` demo: a call through a TLS-terminating proxy is
//! authenticated by its JWT-SVID; without one, with one for another
//! audience, or for a workload the policy refuses, it is not.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

#[test]
fn a_jwt_svid_carries_the_callers_identity_through_a_tls_terminating_proxy() {
    let out = Command::new(env!("CARGO_BIN_EXE_jwt-proxy"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "jwt-proxy failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert_eq!(stdout.matches("[ok]").count(), 4, "{stdout}");
    for line in [
        "HTTP 200 OK: spiffe://example.org/frontend",
        "HTTP 401 Unauthorized: JWT-SVID required",
        "HTTP 401 Unauthorized: invalid JWT-SVID",
        "HTTP 403 Forbidden",
    ] {
        assert!(stdout.contains(line), "{line:?} missing:\n{stdout}");
    }
}
