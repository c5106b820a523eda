//! The baseline of the client side: what a raw rustls client does for a
//! SPIFFE server, written once for every measurement and bench.

use std::sync::Arc;

use mtls_core::rustls;
use mtls_testing::ServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::ParsedCertificate;
use rustls::RootCertStore;

/// What a raw rustls client does for a SPIFFE server: the chain up to a
/// trust anchor with rustls' own function, and no name check (rustls'
/// handshake-signature checks beside it).
pub(crate) fn raw_server_verifier(
    roots: Arc<RootCertStore>,
    algs: WebPkiSupportedAlgorithms,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(ServerVerifier::new(
        algs,
        move |end_entity, intermediates, now| {
            let cert = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                &roots,
                intermediates,
                now,
                algs.all,
            )
        },
    ))
}
