//! SPIFFE IDs and trust domains (SPIFFE-ID.md section 2): one alphabet
//! and length rule set (`chars`), one error ([`SpiffeIdError`]).
//!
//! ```
//! use mtls_core::{SpiffeId, TrustDomain};
//!
//! let id = SpiffeId::new("spiffe://example.org/web")?;
//! assert_eq!(id.trust_domain(), &TrustDomain::new("example.org")?);
//! assert_eq!(TrustDomain::from_id_or_name("spiffe://example.org")?, *id.trust_domain());
//! # Ok::<(), mtls_core::SpiffeIdError>(())
//! ```

mod chars;
mod error;
#[cfg(feature = "spiffe-types")]
mod interop;
mod spiffe_id;
mod trust_domain;

pub use error::SpiffeIdError;
pub use spiffe_id::SpiffeId;
pub use trust_domain::TrustDomain;
