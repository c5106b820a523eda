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

/// The string-like impls SPIFFE IDs and trust domains share: `Display`
/// and `Debug` of the text in `$field`, `AsRef<str>`, and parsing through
/// `Self::new` (`FromStr`, `TryFrom<&str>`, `TryFrom<String>`, serde).
macro_rules! validated_str_impls {
    ($ty:ident, $field:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.$field)
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($ty))
                    .field(&&*self.$field)
                    .finish()
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.$field
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::SpiffeIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $crate::SpiffeIdError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::SpiffeIdError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(&s)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.$field)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

mod chars;
mod error;
#[cfg(feature = "spiffe-types")]
mod interop;
mod spiffe_id;
mod trust_domain;

pub use error::SpiffeIdError;
pub use spiffe_id::SpiffeId;
pub use trust_domain::TrustDomain;
