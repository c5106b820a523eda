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
    let svid = |name: &str| ca.leaf(&format!("spiffe://example.org/{name}")).svid();
    let only =
        |name: &str| authorize::exact(format!("spiffe://example.org/{name}").parse().unwrap());
    let server = MtlsServerConfig::builder(svid("backend"), ca.bundle_set())
        .authorizer(only("frontend"))
        .build()
        .unwrap();
    let client = MtlsClientConfig::builder(svid("frontend"), ca.bundle_set())
        .authorizer(only("backend"))
        .build()
        .unwrap();
    let addr = serve_hi(&server).await;
    // Each call bounded: a hung handshake fails the test.
    let call = |client| async move {
        tokio::time::timeout(Duration::from_secs(10), call_hi(&client, addr))
            .await
            .expect("handshake timed out")
    };
    let (answer, _) = call(client).await.expect("handshake failed");
    assert_eq!(answer, b"hi");

    // A client the server does not authorize is refused on this provider too.
    let stranger = MtlsClientConfig::builder(svid("stranger"), ca.bundle_set())
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let refused = call(stranger).await;
    assert!(refused.is_err(), "an unauthorized client was served");
}
