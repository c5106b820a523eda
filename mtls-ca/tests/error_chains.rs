//! One error convention across the crates (Rust API guidelines): an error
//! that wraps another returns it from `source()` and does not repeat its
//! text. (mtls-core's errors: `mtls-core/tests/error_chains.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::error::Error;

use mtls_ca::{CaError, CertificateAuthority};
use mtls_core::ErrorChain;

#[test]
fn ca_errors_say_their_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("nowhere");
    let e = CertificateAuthority::open(&nowhere).unwrap_err();
    assert!(
        matches!(e, CaError::Io { .. } | CaError::Lock { .. }),
        "{e:?}"
    );
    let cause = e.source().expect("the OS error is the source").to_string();
    assert!(!e.to_string().contains(&cause), "{e} repeats {cause}");
    assert!(
        e.to_string().contains(&nowhere.display().to_string()),
        "{e}"
    );
    assert_eq!(ErrorChain(&e).to_string(), format!("{e}: {cause}"));
}
