//! CRLs past their `nextUpdate` (issue 11, item 7): applied by default and
//! counted; refused per issuer with `CrlExpiry::Enforce`. Real handshakes
//! over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mtls_core::{
    authorize, verify, CrlExpiry, CrlSet, MtlsClientConfig, MtlsServerConfig, PeerRole, Rejection,
    VerifyError, X509Svid,
};
use mtls_testing::{call_hi, hours, now, serve_hi, TestCa, TestLeaf};

/// Taken by each test that reads counters: a snapshot may reset what
/// another test is counting.
static METRICS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn expired_crl_count(action: &str) -> u64 {
    mtls_testing::counted(mtls_core::metrics::EXPIRED_CRL, "action", action)
}

/// Whether `client` is served `hi` by the server at `addr`.
async fn served(client: &MtlsClientConfig, addr: SocketAddr) -> bool {
    let result = tokio::time::timeout(Duration::from_secs(10), call_hi(client, addr))
        .await
        .expect("bounded");
    result.is_ok_and(|(b, _)| b == b"hi")
}

struct World {
    root: TestCa,
    /// Its CRL expired an hour ago; it revokes `revoked_a`.
    stale: TestCa,
    /// Its CRL is current.
    fresh: TestCa,
    revoked_a: TestLeaf,
    good_a: TestLeaf,
    good_b: TestLeaf,
    crls: CrlSet,
}

fn world() -> World {
    let root = TestCa::root("example.org");
    let stale = root.intermediate();
    let fresh = root.intermediate();
    let revoked_a = stale.leaf("spiffe://example.org/a/revoked");
    let good_a = stale.leaf("spiffe://example.org/a/good");
    let good_b = fresh.leaf("spiffe://example.org/b/good");
    let mut crls = root.crl(&[]);
    crls.extend(&stale.crl_until(&[&revoked_a.serial], now() - hours(1)));
    crls.extend(&fresh.crl(&[]));
    World {
        root,
        stale,
        fresh,
        revoked_a,
        good_a,
        good_b,
        crls,
    }
}

fn server_svid(ca: &TestCa) -> X509Svid {
    ca.leaf("spiffe://example.org/server").svid()
}

fn client(w: &World, leaf: &TestLeaf) -> MtlsClientConfig {
    MtlsClientConfig::builder(leaf.svid(), w.root.bundle_set())
        .authorizer(authorize::any())
        .build()
        .unwrap()
}

impl World {
    /// Whether a client with `leaf` (authorizing any server) is served by
    /// the server at `addr`.
    async fn serves(&self, leaf: &TestLeaf, addr: SocketAddr) -> bool {
        served(&client(self, leaf), addr).await
    }
}

#[test]
fn a_crl_set_knows_its_first_next_update() {
    let w = world();
    let first = w.crls.next_update().unwrap();
    assert!(first < SystemTime::now(), "the stale CRL expires first");
    assert!(CrlSet::new().next_update().is_none());
}

/// By default an expired CRL keeps being applied: what it revokes stays
/// revoked (a stalled publisher must not un-revoke anything), the others
/// are accepted, and each use is counted.
#[tokio::test]
async fn by_default_an_expired_crl_is_applied_and_counted() {
    let _metrics = METRICS.lock().await;
    let w = world();
    let before = expired_crl_count("applied");
    let server = MtlsServerConfig::builder(server_svid(&w.fresh), w.root.bundle_set())
        .crls(w.crls.clone())
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let addr = serve_hi(&server).await;
    assert!(!w.serves(&w.revoked_a, addr).await, "still revoked");
    assert!(w.serves(&w.good_a, addr).await);
    let after_stale = expired_crl_count("applied");
    assert!(after_stale > before, "counted: {before} -> {after_stale}");
    assert!(w.serves(&w.good_b, addr).await);

    // The same through `verify`.
    let now = SystemTime::now();
    let bundles = w.root.bundle_set();
    assert!(matches!(
        verify(&w.revoked_a.chain, &bundles, now, &w.crls, PeerRole::Client),
        Err(VerifyError::Revoked { .. })
    ));
    verify(&w.good_a.chain, &bundles, now, &w.crls, PeerRole::Client).unwrap();
}

/// `CrlExpiry::Enforce` refuses the peers of the stale CRL's issuer, on
/// both sides, and only those.
#[tokio::test]
async fn enforce_refuses_the_peers_of_the_stale_issuer_only() {
    let _metrics = METRICS.lock().await;
    let w = world();
    let rejections = Arc::new(Mutex::new(Vec::new()));
    let seen = rejections.clone();
    let before = expired_crl_count("refused");
    let server = MtlsServerConfig::builder(server_svid(&w.fresh), w.root.bundle_set())
        .crls(w.crls.clone())
        .crl_expiry(CrlExpiry::Enforce)
        .on_rejection(move |e| seen.lock().unwrap().push(e.clone()))
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let addr = serve_hi(&server).await;
    assert!(!w.serves(&w.good_a, addr).await, "issuer's CRL expired");
    assert!(w.serves(&w.good_b, addr).await, "another issuer");
    let got = rejections.lock().unwrap().clone();
    assert!(
        got.iter().any(
            |e| matches!(e, Rejection::Verify(VerifyError::CrlExpired { id, next_update, .. })
            if id.as_str() == "spiffe://example.org/a/good" && *next_update < SystemTime::now())
        ),
        "{got:?}"
    );
    assert_eq!(got[0].kind(), "crl_expired");
    assert!(
        got[0].to_string().contains("CrlExpiry::Enforce"),
        "{}",
        got[0]
    );
    assert!(expired_crl_count("refused") > before);

    // The client side: a server whose issuer's CRL expired is refused.
    let stale_server = MtlsServerConfig::builder(server_svid(&w.stale), w.root.bundle_set())
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let stale_addr = serve_hi(&stale_server).await;
    let strict = |leaf: &TestLeaf, policy| {
        MtlsClientConfig::builder(leaf.svid(), w.root.bundle_set())
            .crls(w.crls.clone())
            .crl_expiry(policy)
            .authorizer(authorize::any())
            .build()
            .unwrap()
    };
    assert!(!served(&strict(&w.good_b, CrlExpiry::Enforce), stale_addr).await);
    assert!(served(&strict(&w.good_b, CrlExpiry::Apply), stale_addr).await);
}
