//! Test fixtures shared by the tests of the mtls crates (not published).
//!
//! - [`TestCa`] / [`TestLeaf`]: an in-process CA that builds good and
//!   deliberately broken X.509-SVIDs, intermediates and CRLs on demand
//!   (after go-spiffe's `internal/test/ca.go`);
//! - [`bounded`], [`bounded_by`], [`TEST_TIMEOUT`], [`eventually`],
//!   [`sleep_past`]: tests that fail instead of hanging;
//! - [`TestJwtIssuer`]: JWT-SVIDs (ES256) and the JWT bundle to check them;
//! - [`id`]: a [`SpiffeId`] from a literal;
//! - [`client_identity`]: the identity a chain proves to a server now;
//!   [`client_rejection`]: why a server refuses it;
//! - [`accept_any_server`]: a rustls verifier for raw clients whose test is
//!   about the server's view; [`ServerVerifier`]: any check of the server's
//!   chain beside rustls' handshake-signature checks;
//! - [`serve_hi`] / [`call_hi`]: a TLS server and client on loopback;
//!   [`loopback_handshake`]: one handshake between two configs;
//! - [`snapshotter`]: metrics-util's debugging recorder, installed once;
//!   [`counters`] and [`counted`]: the counters since the last snapshot;
//! - [`first_renewal_of_4s_svid`]: a `RenewingSvid`'s first renewal, timed;
//! - [`rules`]: numbered trust domains and IDs for many-rule authorizers;
//! - [`dns_names`]: the DNS names of a parsed certificate;
//! - [`error_lines`]: an error and its `source()` chain, one per line;
//!   [`assert_mentions`]: that a text says each of what it must.
//!
//! mtls-core's integration tests use this crate too (a dev-dependency
//! cycle): they link the same mtls-core library as this crate, so the
//! types unify. Unit tests inside mtls-core's `src/` would see a second copy
//! of mtls-core and cannot use it.
//!
//! ```
//! use mtls_testing::{id, TestCa};
//!
//! let ca = TestCa::root("example.org");
//! let leaf = ca.intermediate().leaf("spiffe://example.org/web");
//! let svid = leaf.svid();
//! assert_eq!(svid.spiffe_id(), &id("spiffe://example.org/web"));
//! assert_eq!(svid.chain().len(), 2);
//! ```

#![forbid(unsafe_code)]
// Fixtures: a panic is the failure of the test that asked for them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ca;
mod jwt;
mod loopback;
mod metrics;
mod renew;
pub mod rules;
mod text;
mod verifier;
mod wait;
mod x509;

pub use ca::{
    ca_params, hours, in_hours, leaf_params, next_serial, now, system_now, TestCa, TestLeaf,
};
pub use jwt::TestJwtIssuer;
pub use loopback::{call_hi, loopback_handshake, serve_hi};
pub use metrics::{counted, counters, snapshotter, Counter};
pub use renew::first_renewal_of_4s_svid;
pub use text::assert_mentions;
pub use verifier::{accept_any_server, ServerVerifier};
pub use wait::{bounded, bounded_by, eventually, sleep_past, TEST_TIMEOUT};
pub use x509::dns_names;

use std::time::SystemTime;

use mtls_core::rustls::pki_types::CertificateDer;
use mtls_core::{BundleSet, CrlSet, PeerIdentity, PeerRole, SpiffeId, VerifyError};

/// The messages of `e` and of every error down its `source()` chain, one
/// per line.
///
/// ```
/// let e = std::io::Error::other("outer");
/// assert_eq!(mtls_testing::error_lines(&e), "outer");
/// ```
pub fn error_lines(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(e) = next {
        text.push('\n');
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

/// The SPIFFE ID `s`; panics when `s` is not one.
///
/// ```
/// assert_eq!(mtls_testing::id("spiffe://example.org/a").path(), "/a");
/// ```
#[track_caller]
pub fn id(s: &str) -> SpiffeId {
    SpiffeId::new(s).unwrap_or_else(|e| panic!("test SPIFFE ID {s:?}: {e}"))
}

/// The identity `chain` proves as a client to a server trusting `bundles`,
/// now and with no CRLs; panics when the chain does not verify.
///
/// ```
/// let ca = mtls_testing::TestCa::root("example.org");
/// let svid = ca.leaf("spiffe://example.org/web").svid();
/// let peer = mtls_testing::client_identity(svid.chain(), &ca.bundle_set());
/// assert_eq!(peer.spiffe_id(), &mtls_testing::id("spiffe://example.org/web"));
/// ```
#[track_caller]
pub fn client_identity(chain: &[CertificateDer<'_>], bundles: &BundleSet) -> PeerIdentity {
    verify_as_client(chain, bundles)
        .unwrap_or_else(|e| panic!("a test client chain that does not verify: {e}"))
}

/// Why a server trusting `bundles` refuses `chain` as a client's, now and
/// with no CRLs; panics when the chain verifies.
///
/// ```
/// let ca = mtls_testing::TestCa::root("example.org");
/// let other = mtls_testing::TestCa::root("example.org");
/// let svid = ca.leaf("spiffe://example.org/web").svid();
/// let e = mtls_testing::client_rejection(svid.chain(), &other.bundle_set());
/// assert!(matches!(e, mtls_core::VerifyError::UntrustedIssuer { .. }));
/// ```
#[track_caller]
pub fn client_rejection(chain: &[CertificateDer<'_>], bundles: &BundleSet) -> VerifyError {
    match verify_as_client(chain, bundles) {
        Ok(peer) => panic!("a test client chain that should not verify proved {peer:?}"),
        Err(e) => e,
    }
}

fn verify_as_client(
    chain: &[CertificateDer<'_>],
    bundles: &BundleSet,
) -> Result<PeerIdentity, VerifyError> {
    mtls_core::verify(
        chain,
        bundles,
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Client,
    )
}
