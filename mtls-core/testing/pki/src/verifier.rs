//! A rustls server-certificate verifier that accepts any server.
//!
//! ```
//! use std::sync::Arc;
//! use mtls_core::rustls;
//! use mtls_testing::AcceptAnyServer;
//!
//! let provider = mtls_core::default_crypto_provider();
//! let config = rustls::ClientConfig::builder_with_provider(provider.clone())
//!     .with_safe_default_protocol_versions()
//!     .unwrap()
//!     .dangerous()
//!     .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
//!     .with_no_client_auth();
//! # drop(config);
//! ```

use std::sync::Arc;

use mtls_core::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use mtls_core::rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use mtls_core::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use mtls_core::rustls::{DigitallySignedStruct, Error, SignatureScheme};

/// Accepts any server certificate, for raw clients whose test is about the
/// server's view (a hostile or certificate-less client). The handshake
/// signature is still checked with the provider's algorithms.
#[derive(Debug)]
pub struct AcceptAnyServer(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
