//! Numbered identities for authorizers and policies with many rules (the
//! authorization benches): rule `i` names the trust domain
//! `td{i}.example.org`, the path prefix `spiffe://td{i}.example.org/ns/team{i}`
//! or the ID [`peer(i)`](peer), and [`peer(i)`](peer) is allowed by rule
//! `i` whichever of the three it is.
//!
//! ```
//! use mtls_testing::rules::{peer, prefix, td};
//!
//! assert_eq!(peer(7).trust_domain(), &td(7));
//! assert!(peer(7).as_str().starts_with(prefix(7).as_str()));
//! ```

use mtls_core::{SpiffeId, TrustDomain};

use crate::id;

/// The trust domain of rule `i`: `td{i}.example.org`.
pub fn td(i: usize) -> TrustDomain {
    TrustDomain::new(&format!("td{i}.example.org")).unwrap()
}

/// The path prefix of rule `i`: `spiffe://td{i}.example.org/ns/team{i}`.
pub fn prefix(i: usize) -> SpiffeId {
    id(&format!("spiffe://td{i}.example.org/ns/team{i}"))
}

/// The peer rule `i` allows, whatever its kind:
/// `spiffe://td{i}.example.org/ns/team{i}/sa/svc{i}`.
pub fn peer(i: usize) -> SpiffeId {
    id(&format!("spiffe://td{i}.example.org/ns/team{i}/sa/svc{i}"))
}
