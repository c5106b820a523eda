//! Trust bundles (SPIFFE_Trust_Domain_and_Bundle.md section 4): the SPIFFE
//! bundle of a trust domain ([`SpiffeBundle`]: X.509 and JWT authorities,
//! sequence, refresh hint), its X.509 view used for verification
//! ([`X509Bundle`]), one per trust domain in a [`BundleSet`], and the
//! SPIFFE bundle format (JWKS) they load from and emit to.
//!
//! ```
//! use mtls_core::{BundleSet, TrustDomain, X509Bundle};
//!
//! let td = TrustDomain::from_static("example.org");
//! let bundle = X509Bundle::from_jwks(td.clone(), br#"{"keys": [], "spiffe_sequence": 4}"#)?;
//! assert!(bundle.is_empty());
//! assert_eq!(bundle.sequence(), Some(4));
//! let set = BundleSet::from(bundle);
//! assert!(set.contains("example.org"));
//! # Ok::<(), mtls_core::BundleError>(())
//! ```

mod error;
mod jwks;
mod jwt;
mod set;
mod spiffe;
mod x509;

pub use error::BundleError;
pub(crate) use jwks::StrictValue;
pub use jwt::{JwtKey, JwtKeyError, JwtKeyType};
pub(crate) use set::trust_domain_set;
pub use set::BundleSet;
pub use spiffe::SpiffeBundle;
pub use x509::X509Bundle;
