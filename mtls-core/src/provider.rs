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
/// Key exchange: with aws-lc-rs, the post-quantum hybrid `X25519MLKEM768`
/// comes first (as Linkerd and SPIRE now do), then `X25519`, `secp256r1`
/// and `secp384r1`; two of our peers negotiate the hybrid. ring has no
/// ML-KEM: a ring build offers `X25519`, `secp256r1`, `secp384r1`. To
/// choose the groups yourself, give the builders a provider whose
/// `kx_groups` you set (`.crypto_provider(...)`):
///
/// ```
/// use std::sync::Arc;
/// use mtls_core::default_crypto_provider;
/// use mtls_core::rustls::NamedGroup;
///
/// let mut provider = (*default_crypto_provider()).clone();
/// provider.kx_groups.retain(|g| g.name() == NamedGroup::secp256r1);
/// let provider = Arc::new(provider); // for `.crypto_provider(provider)`
/// # assert_eq!(provider.kx_groups.len(), 1);
/// ```
///
/// This never touches rustls' process-wide default provider, so enabling
/// both features anywhere in a dependency graph cannot make it panic.
pub fn default_crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(build())).clone()
}

#[cfg(feature = "aws-lc-rs")]
fn build() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    // rustls puts the hybrid first only with its `prefer-post-quantum`
    // feature, which this workspace's `default-features = false` drops.
    provider
        .kx_groups
        .retain(|g| g.name() != X25519MLKEM768.name());
    provider.kx_groups.insert(0, X25519MLKEM768);
    // With `fips`, rustls' aws-lc-rs provider already offers only approved
    // cipher suites (AES-GCM) and groups; the hybrid is approved through its
    // ML-KEM half (SP 800-56C: the first share decides), X25519 alone is not.
    #[cfg(feature = "fips")]
    provider.kx_groups.retain(|g| g.fips());
    provider
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn build() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Whether [`default_crypto_provider`] is backed by a FIPS-approved
/// implementation in FIPS mode: true only in a build with the `fips`
/// feature, once aws-lc's FIPS module passed its power-on self tests.
///
/// This says the crypto is the validated module's; a config also needs
/// TLS 1.2's extended master secret required (our builders leave rustls'
/// default, which requires it under `fips`). To check a whole config, use
/// `rustls_config().fips()` on what the builders make, or have them refuse
/// to build anything else with `.require_fips()`.
///
/// ```
/// let fips = mtls_core::fips_mode();
/// assert_eq!(fips, cfg!(feature = "fips"));
/// ```
pub fn fips_mode() -> bool {
    default_crypto_provider().fips()
}

/// The code blocks of `docs/fips.md`, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/fips.md")]
struct FipsGuideDoctests;
