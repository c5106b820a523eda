//! Rustls server-certificate verifiers for raw clients: [`ServerVerifier`]
//! puts any check of the server's chain beside rustls' own
//! handshake-signature checks, and [`accept_any_server`] checks nothing of
//! the chain.
//!
//! ```
//! use mtls_core::rustls;
//! use mtls_testing::accept_any_server;
//!
//! let provider = mtls_core::default_crypto_provider();
//! let config = rustls::ClientConfig::builder_with_provider(provider.clone())
//!     .with_safe_default_protocol_versions()
//!     .unwrap()
//!     .dangerous()
//!     .with_custom_certificate_verifier(accept_any_server(&provider))
//!     .with_no_client_auth();
//! # drop(config);
//! ```

use std::fmt;
use std::sync::Arc;

use mtls_core::rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use mtls_core::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use mtls_core::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use mtls_core::rustls::Error;

/// A server-certificate verifier whose decision on the server's chain
/// (leaf, intermediates, time) is `check`; the server's handshake
/// signature is checked by rustls with `algs`, as any verifier does.
pub struct ServerVerifier<F> {
    check: F,
    algs: WebPkiSupportedAlgorithms,
}

impl<F> ServerVerifier<F>
where
    F: Fn(&CertificateDer<'_>, &[CertificateDer<'_>], UnixTime) -> Result<(), Error> + Send + Sync,
{
    /// A verifier deciding on chains with `check`.
    pub fn new(algs: WebPkiSupportedAlgorithms, check: F) -> Self {
        Self { check, algs }
    }
}

/// Accepts any server certificate, for raw clients whose test is about the
/// server's view (a hostile or certificate-less client). The handshake
/// signature is still checked with the provider's algorithms.
pub fn accept_any_server(provider: &CryptoProvider) -> Arc<dyn ServerCertVerifier> {
    Arc::new(ServerVerifier::new(
        provider.signature_verification_algorithms,
        |_: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: UnixTime| Ok(()),
    ))
}

impl<F> ServerCertVerifier for ServerVerifier<F>
where
    F: Fn(&CertificateDer<'_>, &[CertificateDer<'_>], UnixTime) -> Result<(), Error> + Send + Sync,
{
    fn verify_server_cert(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        (self.check)(leaf, intermediates, now).map(|()| ServerCertVerified::assertion())
    }

    mtls_core::__handshake_signature_methods!();
}

impl<F> fmt::Debug for ServerVerifier<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerVerifier").finish_non_exhaustive()
    }
}
