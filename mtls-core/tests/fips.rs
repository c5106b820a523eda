//! FIPS: `.require_fips()` refuses any config rustls does not judge
//! FIPS-approved, and with the `fips` feature (aws-lc's FIPS module) the
//! default configs are approved and a real handshake runs on approved
//! algorithms only. `.ci/run` runs this file with `--features fips` as well
//! as in the default build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use mtls_core::rustls::crypto::CryptoProvider;
#[cfg(feature = "fips")]
use mtls_core::rustls::{CipherSuite, NamedGroup};
use mtls_core::{
    default_crypto_provider, fips_mode, ConfigError, MtlsClientConfig, MtlsServerConfig,
};
#[cfg(feature = "fips")]
use mtls_testing::loopback_handshake;
use mtls_testing::TestCa;

fn configs(
    ca: &TestCa,
    provider: Arc<CryptoProvider>,
) -> (
    Result<MtlsServerConfig, ConfigError>,
    Result<MtlsClientConfig, ConfigError>,
) {
    let (server, client) = ca.backend_and_frontend();
    let server = server.crypto_provider(provider.clone()).require_fips();
    let client = client.crypto_provider(provider).require_fips();
    (server.build(), client.build())
}

fn not_fips_reason<T: std::fmt::Debug>(built: Result<T, ConfigError>) -> String {
    match built {
        Err(e @ ConfigError::NotFips { .. }) => e.to_string(),
        other => panic!("expected NotFips, got {other:?}"),
    }
}

#[test]
fn fips_mode_follows_the_feature() {
    assert_eq!(fips_mode(), cfg!(feature = "fips"));
}

#[cfg(not(feature = "fips"))]
#[test]
fn without_the_feature_require_fips_refuses_and_names_the_feature() {
    let ca = TestCa::root("example.org");
    let (server, client) = configs(&ca, default_crypto_provider());
    for reason in [not_fips_reason(server), not_fips_reason(client)] {
        assert!(reason.contains("`fips` feature"), "{reason}");
    }
    // Without require_fips the same config builds (and is not FIPS).
    let plain = ca.backend_and_frontend().0.build().unwrap();
    assert!(!plain.rustls_config().fips());
}

#[test]
fn require_fips_names_unapproved_suites_and_groups() {
    use mtls_core::rustls::crypto::aws_lc_rs::{cipher_suite, kx_group};
    let ca = TestCa::root("example.org");
    let mut provider = (*default_crypto_provider()).clone();
    provider
        .cipher_suites
        .push(cipher_suite::TLS13_CHACHA20_POLY1305_SHA256);
    provider.kx_groups.push(kx_group::X25519);
    let (server, client) = configs(&ca, Arc::new(provider));
    for reason in [not_fips_reason(server), not_fips_reason(client)] {
        assert!(
            reason.contains("TLS13_CHACHA20_POLY1305_SHA256"),
            "{reason}"
        );
        assert!(reason.contains("X25519"), "{reason}");
    }
}

#[cfg(feature = "fips")]
#[test]
fn the_default_provider_offers_approved_algorithms_only() {
    let provider = default_crypto_provider();
    assert!(provider.fips());
    assert!(provider.cipher_suites.iter().all(|s| s.fips()));
    assert!(!provider
        .cipher_suites
        .iter()
        .any(|s| s.suite() == CipherSuite::TLS13_CHACHA20_POLY1305_SHA256));
    let groups: Vec<NamedGroup> = provider.kx_groups.iter().map(|g| g.name()).collect();
    assert!(!groups.contains(&NamedGroup::X25519), "{groups:?}");
    assert_eq!(groups.first(), Some(&NamedGroup::X25519MLKEM768));
}

/// A real mTLS handshake on loopback between two FIPS configs: both sides
/// report `fips()`, and what they negotiated is approved.
#[cfg(feature = "fips")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_handshake_between_fips_configs_uses_approved_algorithms() {
    let ca = TestCa::root("example.org");
    let (server, client) = configs(&ca, default_crypto_provider());
    let (server, client) = (server.unwrap(), client.unwrap());
    assert!(server.rustls_config().fips());
    assert!(client.rustls_config().fips());

    let (tls, (server_suite, server_saw_chain)) = loopback_handshake(&server, &client, |conn| {
        (
            conn.negotiated_cipher_suite().map(|s| s.suite()),
            conn.peer_certificates().map(|c| !c.is_empty()),
        )
    })
    .await;
    let conn = tls.get_ref().1;
    let suite = conn.negotiated_cipher_suite().unwrap();
    assert!(suite.fips(), "{:?}", suite.suite());
    let group = conn.negotiated_key_exchange_group().unwrap();
    assert!(group.fips(), "{:?}", group.name());
    assert_eq!(group.name(), NamedGroup::X25519MLKEM768);
    assert_eq!(server_suite, Some(suite.suite()));
    assert_eq!(server_saw_chain, Some(true), "the client authenticated");

    // The server side's identity check still runs under FIPS.
    let id = client.peer_identity(conn).unwrap();
    assert_eq!(id.spiffe_id().to_string(), "spiffe://example.org/backend");
}
