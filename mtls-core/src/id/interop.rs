//! Conversions to and from the `spiffe` crate's identity types
//! (feature `spiffe-types`).
//!
//! The `spiffe` crate accepts SPIFFE IDs longer than the 2048 bytes the
//! specification allows, so a conversion from its types validates again.
//! Conversions both ways are fallible, so that neither crate's rules can
//! ever turn into a panic.
//!
//! ```
//! use mtls_core::SpiffeId;
//!
//! let ours = SpiffeId::from_static("spiffe://example.org/web");
//! let theirs = spiffe::SpiffeId::try_from(&ours).expect("valid in both crates");
//! assert_eq!(SpiffeId::try_from(&theirs)?, ours);
//! # Ok::<(), mtls_core::SpiffeIdError>(())
//! ```

use super::TrustDomain;
use super::{SpiffeId, SpiffeIdError};

impl TryFrom<&spiffe::SpiffeId> for SpiffeId {
    type Error = SpiffeIdError;

    fn try_from(id: &spiffe::SpiffeId) -> Result<Self, Self::Error> {
        SpiffeId::new(&id.to_string())
    }
}

impl TryFrom<&spiffe::TrustDomain> for TrustDomain {
    type Error = SpiffeIdError;

    fn try_from(td: &spiffe::TrustDomain) -> Result<Self, Self::Error> {
        TrustDomain::new(td.as_str())
    }
}

impl TryFrom<&SpiffeId> for spiffe::SpiffeId {
    type Error = spiffe::SpiffeIdError;

    fn try_from(id: &SpiffeId) -> Result<Self, Self::Error> {
        spiffe::SpiffeId::new(id.as_str())
    }
}

impl TryFrom<&TrustDomain> for spiffe::TrustDomain {
    type Error = spiffe::SpiffeIdError;

    fn try_from(td: &TrustDomain) -> Result<Self, Self::Error> {
        spiffe::TrustDomain::new(td.name())
    }
}
