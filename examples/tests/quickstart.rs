//! Run with: `cargo test -p examples --test quickstart`
//!
//! The README's first command must keep working: run it and check every
//! step behaved as shown.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

#[test]
fn quickstart_runs_and_every_check_passes() {
    let out = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "quickstart failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.matches("[ok]").count(), 6, "{stdout}");
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    for line in [
        "DEVELOPMENT root",
        "HTTP 200: orders for spiffe://example.org/frontend",
        "HTTP 403",
        "not signed by an authority of trust domain example.org",
        "CertificateRequired",
        "new serial",
        "zero-trust mTLS with SPIFFE IDs works",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
