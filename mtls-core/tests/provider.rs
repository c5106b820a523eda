//! The crypto provider follows the crate's features, and a real handshake
//! runs on it. `.ci/run` runs this file in a `ring`-only build
//! (`--no-default-features --features ring`, where `cargo tree` shows no
//! aws-lc-sys in the library's graph) as well as in the default one
//! (aws-lc-rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mtls_core::rustls::crypto::CryptoProvider;
use mtls_core::{authorize, default_crypto_provider, MtlsClientConfig, MtlsServerConfig};
use mtls_testing::{call_hi, serve_hi, TestCa};

/// The provider the features select: aws-lc-rs when its feature is on, else
/// ring.
fn expected() -> CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    return mtls_core::rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws-lc-rs"))]
    return mtls_core::rustls::crypto::ring::default_provider();
}

#[test]
fn the_default_provider_is_the_one_the_features_select() {
    let ours = default_crypto_provider();
    // The key provider's type names the library (`Ring` / `AwsLcRs`).
    assert_eq!(
        format!("{:?}", ours.key_provider),
        format!("{:?}", expected().key_provider)
    );
    #[cfg(not(feature = "aws-lc-rs"))]
    assert!(format!("{:?}", ours.key_provider).contains("Ring"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_mtls_handshake_runs_on_the_selected_provider() {
    let ca = TestCa::root("example.org");
    let server = MtlsServerConfig::builder(
        ca.leaf("spiffe://example.org/backend").svid(),
        ca.bundle_set(),
    )
    .authorizer(authorize::exact(
        "spiffe://example.org/frontend".parse().unwrap(),
    ))
    .build()
    .unwrap();
    let client = MtlsClientConfig::builder(
        ca.leaf("spiffe://example.org/frontend").svid(),
        ca.bundle_set(),
    )
    .authorizer(authorize::exact(
        "spiffe://example.org/backend".parse().unwrap(),
    ))
    .build()
    .unwrap();
    let addr = serve_hi(&server).await;
    let (answer, _) = tokio::time::timeout(Duration::from_secs(10), call_hi(&client, addr))
        .await
        .expect("handshake timed out")
        .expect("handshake failed");
    assert_eq!(answer, b"hi");

    // A client the server does not authorize is refused on this provider too.
    let stranger = MtlsClientConfig::builder(
        ca.leaf("spiffe://example.org/stranger").svid(),
        ca.bundle_set(),
    )
    .authorizer(authorize::any())
    .build()
    .unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(10), call_hi(&stranger, addr))
        .await
        .expect("handshake timed out");
    assert!(refused.is_err(), "an unauthorized client was served");
}
