//! The crypto provider used when none is given.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!(
    "mtls-core needs a crypto provider: enable the `aws-lc-rs` (default) or `ring` feature"
);

/// The crypto provider this crate uses when a builder is given none:
/// aws-lc-rs when the `aws-lc-rs` feature is on (the default), else ring.
///
/// This never touches rustls' process-wide default provider, so enabling
/// both features anywhere in a dependency graph cannot make it panic.
pub fn default_crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(build())).clone()
}

#[cfg(feature = "aws-lc-rs")]
fn build() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn build() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}
