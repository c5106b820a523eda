#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod authority;
#[cfg(feature = "cli")]
pub mod cli;
mod csr;
mod error;
mod fs;
mod issue;
mod jwt;
mod key;
mod policy;
mod renew;
mod revocation;
mod rotation;
mod serial;
mod state;
mod store;
mod time;

pub use authority::{CaOptions, CertificateAuthority, LoadOptions, BACKDATE, BUNDLE_REFRESH_HINT};
pub use csr::MAX_CSR_BYTES;
pub use error::CaError;
pub use issue::{SvidRequest, DEFAULT_SVID_TTL};
pub use jwt::store::JWT_KEYS_FILE;
pub use jwt::{CaJwtSource, JwtSigningKey, JwtSvidRequest, DEFAULT_JWT_SVID_TTL};
pub use key::KeyType;
pub use policy::{IssuancePolicy, DEFAULT_MAX_JWT_TTL, DEFAULT_MAX_TTL};
pub use revocation::DEFAULT_CRL_VALIDITY;
pub use rotation::{RotatingCa, RotationPhase};
pub use store::{BUNDLE_FILE, CA_CERT_FILE, CA_KEY_FILE, LOCK_FILE, STATE_FILE};

pub use mtls_core;
