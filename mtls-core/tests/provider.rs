//! The crypto provider follows the crate's features, and a real handshake
//! runs on it. `.ci/run` runs this file in a `ring`-only build
//! (`--no-default-features --features ring`, where `cargo tree` shows no
//! aws-lc-sys in the library's graph) as well as in the default one
//! (aws-lc-rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mtls_core::rustls::crypto::CryptoProvider;
use mtls_core::rustls::NamedGroup;
use mtls_core::{authorize, default_crypto_provider, MtlsClientConfig, MtlsServerConfig};
use mtls_testing::{call_hi, loopback_handshake, serve_hi, TestCa};

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

/// The key exchange group two peers with these providers negotiate, over a
/// real handshake on loopback.
async fn negotiated_group(
    server_provider: Arc<CryptoProvider>,
    client_provider: Arc<CryptoProvider>,
) -> NamedGroup {
    let ca = TestCa::root("example.org");
    let (server, client) = ca.backend_and_frontend();
    let server = server.crypto_provider(server_provider).build().unwrap();
    let client = client.crypto_provider(client_provider).build().unwrap();
    let (tls, server_saw) = loopback_handshake(&server, &client, |conn| {
        conn.negotiated_key_exchange_group().map(|g| g.name())
    })
    .await;
    let client_saw = tls
        .get_ref()
        .1
        .negotiated_key_exchange_group()
        .unwrap()
        .name();
    assert_eq!(server_saw, Some(client_saw));
    client_saw
}

#[tokio::test]
async fn our_peers_negotiate_post_quantum_key_exchange_where_the_provider_has_it() {
    let ours = default_crypto_provider();
    let group = negotiated_group(ours.clone(), ours.clone()).await;
    #[cfg(feature = "aws-lc-rs")]
    assert_eq!(group, NamedGroup::X25519MLKEM768);
    #[cfg(not(feature = "aws-lc-rs"))]
    assert_eq!(group, NamedGroup::X25519, "ring has no ML-KEM");

    // Choosing the groups: a client that offers one classical group only
    // gets it (X25519; secp256r1 under `fips`, where X25519 is not approved).
    let only = if cfg!(feature = "fips") {
        NamedGroup::secp256r1
    } else {
        NamedGroup::X25519
    };
    let mut classical = (*ours).clone();
    classical.kx_groups.retain(|g| g.name() == only);
    let group = negotiated_group(ours, Arc::new(classical)).await;
    assert_eq!(group, only);
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
