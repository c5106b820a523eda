//! The body of the bundle endpoint response check (mtls-core feature
//! `federation`): `mtls_core::federation::parse_bundle` on the inputs of
//! `jwks_bundle`. Kept out of `mod.rs` so that crates without the feature
//! compile the other targets unchanged: the `jwks_bundle` fuzz binary runs
//! it after `jwks_bundle`, and `mtls-core/tests/fuzz_replay.rs` replays the
//! `jwks_bundle` seeds, regressions and mutations through it when the
//! feature is on.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mtls_core::federation::{parse_bundle, FederationError};
use mtls_core::{SpiffeBundle, TrustDomain};

/// A bundle endpoint's response body: `parse_bundle` reads exactly what
/// `SpiffeBundle::from_jwks` reads, except documents it refuses for one of
/// its own two rules (an `x5c` of several certificates, an authority of
/// another trust domain), which `from_jwks` must then accept; its other
/// refusals are `from_jwks`'s, unchanged. What it reads emits a document it
/// reads again to an equal bundle.
pub fn bundle_response(data: &[u8]) {
    let td = TrustDomain::new("example.org").expect("trust domain");
    let fetched = parse_bundle(&td, data);
    let local = SpiffeBundle::from_jwks(td.clone(), data);
    match fetched {
        Ok(bundle) => {
            assert_eq!(
                local.as_ref().ok(),
                Some(&bundle),
                "parse_bundle read what from_jwks did not"
            );
            if let Ok(emitted) = bundle.to_jwks() {
                let again = parse_bundle(&td, emitted.as_bytes())
                    .unwrap_or_else(|e| panic!("an emitted bundle is refused: {e}\n{emitted}"));
                assert_eq!(again, bundle, "round trip changed the bundle");
            }
        }
        Err(FederationError::Bundle {
            trust_domain,
            source,
        }) => {
            assert_eq!(trust_domain, td);
            let local = local.expect_err("parse_bundle refused what from_jwks read, as from_jwks");
            assert_eq!(source.to_string(), local.to_string());
        }
        Err(e @ FederationError::MultipleCertificates { .. })
        | Err(e @ FederationError::ForeignTrustDomain { .. }) => {
            assert!(local.is_ok(), "{e}: from_jwks refused it too: {local:?}");
            let _ = e.to_string();
        }
        Err(e) => panic!("parse_bundle answered an error of a fetch: {e:?}"),
    }
}
