//! `mtls-tower`: TLS listener, per-request authorization layer and mTLS client
//! connector for axum, tonic and hyper, built on [`mtls_core`].
//!
//! This crate is being built; see the project README for its status.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use mtls_core;
