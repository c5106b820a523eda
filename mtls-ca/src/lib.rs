//! `mtls-ca`: an embedded certificate authority that issues, renews and
//! revokes X.509-SVIDs for [`mtls_core`].
//!
//! This crate is being built; see the project README for its status.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use mtls_core;
