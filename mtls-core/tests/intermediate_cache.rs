//! The verified-intermediate cache (issue 14): a leaf whose issuer is an
//! intermediate already verified against the bundles and CRLs in force is
//! checked with that intermediate as its anchor. Each test proves one
//! safety rule of `tls/intermediates.rs` with real handshakes over
//! loopback, counting hits with the `mtls_verify_total` counter.
//!
//! The tests named `a_repeat_…` prove the rules of the verifier's memory of
//! whole chains (`tls/verifier.rs`): the very chain presented again, while
//! the sources serve what it was verified against and every certificate of
//! it is valid, is not verified again (`intermediates="chain"`), and only
//! the authorizer runs.
//!
//! The server presents an SVID straight from its root, so only the
//! server's verification of clients (which present leaf + intermediate)
//! can hit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use mtls_core::{
    authorize, Authorizer, BundleSet, CrlSet, Denied, MtlsClientConfig, MtlsServerConfig,
    SharedBundles, SharedCrls, X509Svid,
};
use mtls_testing::{call_hi, serve_hi, TestCa};
use rcgen::{GeneralSubtree, NameConstraints};

/// Taken by each test: a snapshot resets what another test counts.
static METRICS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Verifications counted as `result` (`hit` or `miss`) since the last call.
fn counted(result: &str) -> u64 {
    mtls_testing::counted(
        mtls_core::metrics::VERIFIED_INTERMEDIATES,
        "intermediates",
        result,
    )
}

/// A server for `root`'s trust domain whose bundles and CRLs the test sets.
struct Server {
    addr: SocketAddr,
    bundles: SharedBundles,
    crls: SharedCrls,
    root: TestCa,
}

async fn server(root: TestCa) -> Server {
    server_authorizing(root, authorize::any()).await
}

async fn server_authorizing(root: TestCa, authorizer: impl Authorizer + 'static) -> Server {
    let bundles = SharedBundles::new(root.bundle_set());
    let crls = SharedCrls::new(CrlSet::new());
    let config = MtlsServerConfig::builder(
        root.leaf("spiffe://example.org/server").svid(),
        bundles.clone(),
    )
    .crls(crls.clone())
    .authorizer(authorizer)
    .resumption(false)
    .build()
    .unwrap();
    let addr = serve_hi(&config).await;
    // Start every test from zero.
    counted("hit");
    Server {
        addr,
        bundles,
        crls,
        root,
    }
}

impl Server {
    /// Whether a client presenting `svid` is served.
    async fn accepts(&self, svid: X509Svid) -> bool {
        let client = MtlsClientConfig::builder(svid, self.root.bundle_set())
            .authorizer(authorize::any())
            .resumption(false)
            .build()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), call_hi(&client, self.addr))
            .await
            .expect("bounded")
            .is_ok_and(|(said, _)| said == b"hi")
    }
}

/// The metrics lock (the tests count hits of one shared recorder), then a
/// server of a new `example.org` root.
async fn locked_example_server() -> (tokio::sync::MutexGuard<'static, ()>, Server) {
    let lock = METRICS.lock().await;
    (lock, server(TestCa::root("example.org")).await)
}

impl Server {
    /// A new intermediate of the root, once a first leaf of it is accepted.
    async fn intermediate_accepted(&self) -> TestCa {
        let intermediate = self.root.intermediate();
        assert!(
            self.accepts(leaf(&intermediate, 1)).await,
            "the first leaf of a new intermediate"
        );
        intermediate
    }

    /// Asserts that the leaves numbered `leaves` of `ca` are accepted.
    async fn assert_accepts<const N: usize>(&self, ca: &TestCa, leaves: [usize; N]) {
        for n in leaves {
            assert!(self.accepts(leaf(ca, n)).await, "leaf {n}");
        }
    }
}

fn leaf(ca: &TestCa, n: usize) -> X509Svid {
    ca.leaf(&format!("spiffe://example.org/client/{n}")).svid()
}

#[tokio::test]
async fn a_second_leaf_of_a_verified_intermediate_is_a_hit() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.intermediate_accepted().await;
    assert_eq!(counted("hit"), 0, "the first chain verifies in full");
    s.assert_accepts(&intermediate, [2, 3]).await;
    assert_eq!(counted("hit"), 2);
}

#[tokio::test]
async fn a_revoked_leaf_is_refused_on_a_hit() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.root.intermediate();
    let revoked = intermediate.leaf("spiffe://example.org/revoked");
    s.crls.set(intermediate.crl(&[&revoked.serial]));
    assert!(s.accepts(leaf(&intermediate, 1)).await);
    assert!(
        !s.accepts(revoked.svid()).await,
        "revoked by its issuer's CRL"
    );
    assert!(s.accepts(leaf(&intermediate, 2)).await);
    assert_eq!(counted("hit"), 1, "the cache was in force throughout");
}

#[tokio::test]
async fn a_crl_revoking_the_intermediate_ends_its_hits() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.intermediate_accepted().await;
    s.crls.set(s.root.crl(&[&intermediate.serial]));
    assert!(!s.accepts(leaf(&intermediate, 2)).await);
    assert_eq!(counted("hit"), 0);
}

#[tokio::test]
async fn a_bundle_change_invalidates() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.intermediate_accepted().await;

    // The root leaves the bundle: its intermediate is trusted no more.
    s.bundles
        .set(BundleSet::from(TestCa::root("example.org").bundle()));
    assert!(!s.accepts(leaf(&intermediate, 2)).await);

    // Back, in a new snapshot: verified in full once, then hits again.
    s.bundles.set(s.root.bundle_set());
    s.assert_accepts(&intermediate, [3, 4]).await;
    assert_eq!(counted("hit"), 1);
}

#[tokio::test]
async fn an_expired_intermediate_is_refused_after_being_cached() {
    let (_m, s) = locked_example_server().await;
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let short = s.root.intermediate_with(|p| p.not_after = expiry);
    // Leaves that outlive their issuer, as a careless CA makes them.
    s.assert_accepts(&short, [1, 2]).await;
    assert_eq!(counted("hit"), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(
        !s.accepts(leaf(&short, 3)).await,
        "the intermediate expired"
    );
    assert_eq!(counted("hit"), 0);
}

#[tokio::test]
async fn name_constraints_on_the_path_disable_the_cache() {
    let _m = METRICS.lock().await;
    let constraints = || NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName("example.org".into())],
        excluded_subtrees: vec![],
    };
    // On the intermediate.
    let s = server(TestCa::root("example.org")).await;
    let constrained = s
        .root
        .intermediate_with(|p| p.name_constraints = Some(constraints()));
    for n in 0..3 {
        assert!(s.accepts(leaf(&constrained, n)).await);
    }
    assert_eq!(counted("hit"), 0);
    // Above it: on the anchor itself.
    let s = server(TestCa::root_with("example.org", |p| {
        p.name_constraints = Some(constraints())
    }))
    .await;
    let intermediate = s.root.intermediate();
    for n in 0..3 {
        assert!(s.accepts(leaf(&intermediate, n)).await);
    }
    assert_eq!(counted("hit"), 0);
}

#[tokio::test]
async fn another_key_under_the_same_issuer_name_misses() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.root.intermediate();
    // The test CAs of a trust domain share one subject name.
    let twin = s.root.intermediate();
    assert!(s.accepts(leaf(&intermediate, 1)).await);

    // The twin's own chain: another intermediate, verified in full.
    assert!(s.accepts(leaf(&twin, 2)).await);
    assert_eq!(counted("hit"), 0);

    // A twin's leaf presented with the cached intermediate: the issuer's
    // name matches, its key does not.
    let forged = twin.leaf("spiffe://example.org/forged");
    let chain = vec![forged.chain[0].clone(), intermediate.cert.clone()];
    let svid = X509Svid::new(chain, forged.key.clone_key()).unwrap();
    assert!(!s.accepts(svid).await);
    assert_eq!(counted("hit"), 0);
}

#[tokio::test]
async fn the_cache_is_bounded_and_only_verified_chains_enter_it() {
    let (_m, s) = locked_example_server().await;
    let first = s.root.intermediate();
    assert!(s.accepts(leaf(&first, 0)).await);

    // Chains that do not verify never enter: the first stays cached.
    let stranger = TestCa::root("example.org");
    for n in 0..40 {
        assert!(!s.accepts(leaf(&stranger.intermediate(), n)).await);
    }
    assert!(s.accepts(leaf(&first, 1)).await);
    assert_eq!(counted("hit"), 1);

    // Verified chains do, up to the bound: the oldest leaves first.
    let others: Vec<TestCa> = (0..40).map(|_| s.root.intermediate()).collect();
    for (n, ca) in others.iter().enumerate() {
        assert!(s.accepts(leaf(ca, n)).await);
    }
    assert_eq!(counted("hit"), 0);
    assert!(
        s.accepts(leaf(&first, 2)).await,
        "evicted, verified in full"
    );
    assert!(s.accepts(leaf(&others[39], 3)).await, "still cached");
    assert_eq!(counted("hit"), 1);
}

/// Full verifications (`miss`), intermediate-cache hits (`hit`) and repeats
/// of a whole chain (`chain`) since the last call.
fn tally() -> [u64; 3] {
    let mut counts = [0; 3];
    for (name, labels, count) in mtls_testing::counters() {
        if name != mtls_core::metrics::VERIFIED_INTERMEDIATES {
            continue;
        }
        for (key, value) in labels {
            let at = match (key.as_str(), value.as_str()) {
                ("intermediates", "miss") => 0,
                ("intermediates", "hit") => 1,
                ("intermediates", "chain") => 2,
                _ => continue,
            };
            counts[at] += count;
        }
    }
    counts
}

#[tokio::test]
async fn a_repeat_of_a_chain_is_not_verified_again() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.root.intermediate();
    let svid = leaf(&intermediate, 1);
    for _ in 0..3 {
        assert!(s.accepts(svid.clone()).await);
    }
    // Misses: the server's first verification, and each client's of the
    // server's SVID (every client is a new config, so a new verifier).
    assert_eq!(
        tally(),
        [1 + 3, 0, 2],
        "verified in full once, then repeated"
    );
    // Without intermediates (the leaf straight from the root) too.
    let direct = s.root.leaf("spiffe://example.org/direct").svid();
    for _ in 0..2 {
        assert!(s.accepts(direct.clone()).await);
    }
    assert_eq!(tally(), [1 + 2, 0, 1]);
}

#[tokio::test]
async fn a_repeat_is_refused_once_the_leaf_is_revoked() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.root.intermediate();
    let revoked = intermediate.leaf("spiffe://example.org/revoked");
    assert!(s.accepts(revoked.svid()).await);
    assert!(s.accepts(revoked.svid()).await);
    assert_eq!(tally()[2], 1);
    s.crls.set(intermediate.crl(&[&revoked.serial]));
    assert!(!s.accepts(revoked.svid()).await, "revoked since");
    assert_eq!(tally()[2], 0);
}

#[tokio::test]
async fn a_repeat_is_refused_once_its_bundle_is_gone() {
    let (_m, s) = locked_example_server().await;
    let svid = leaf(&s.root.intermediate(), 1);
    assert!(s.accepts(svid.clone()).await);
    s.bundles
        .set(BundleSet::from(TestCa::root("example.org").bundle()));
    assert!(!s.accepts(svid.clone()).await, "its root left the bundle");
    // Back, in a new snapshot: verified in full once, then repeated.
    s.bundles.set(s.root.bundle_set());
    assert!(s.accepts(svid.clone()).await);
    assert!(s.accepts(svid).await);
    assert_eq!(tally()[2], 1);
}

#[tokio::test]
async fn a_repeat_is_refused_once_a_certificate_of_it_expires() {
    let (_m, s) = locked_example_server().await;
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    // The leaf, then (with a longer-lived leaf) the intermediate.
    let short_leaf = s
        .root
        .intermediate()
        .leaf_with("spiffe://example.org/short", |p| p.not_after = expiry)
        .svid();
    let short_intermediate = s.root.intermediate_with(|p| p.not_after = expiry);
    let outliving = leaf(&short_intermediate, 1);
    for svid in [&short_leaf, &outliving] {
        assert!(s.accepts(svid.clone()).await);
        assert!(s.accepts(svid.clone()).await);
    }
    assert_eq!(tally()[2], 2);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(!s.accepts(short_leaf).await, "the leaf expired");
    assert!(!s.accepts(outliving).await, "the intermediate expired");
    assert_eq!(tally()[2], 0);
}

#[tokio::test]
async fn a_repeat_is_not_made_while_a_crl_is_stale() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.root.intermediate();
    let next_update = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    s.crls.set(intermediate.crl_until(&[], next_update));
    let svid = leaf(&intermediate, 1);
    assert!(s.accepts(svid.clone()).await);
    assert!(s.accepts(svid.clone()).await);
    assert_eq!(tally()[2], 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    // Applied by default, and reported each time: verified in full.
    assert!(s.accepts(svid.clone()).await);
    assert!(s.accepts(svid).await);
    let stale = mtls_testing::counted(mtls_core::metrics::EXPIRED_CRL, "action", "applied");
    assert_eq!(stale, 2, "each verification reported the stale CRL");
    assert_eq!(tally()[2], 0);
}

#[tokio::test]
async fn a_repeat_is_another_chain_with_other_intermediates() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.root.intermediate();
    let first = intermediate.leaf("spiffe://example.org/client");
    assert!(s.accepts(first.svid()).await);
    // The same leaf and key, with the root appended to its chain.
    let mut chain = first.chain.clone();
    chain.push(s.root.cert.clone());
    let longer = X509Svid::new(chain, first.key.clone_key()).unwrap();
    assert!(s.accepts(longer).await);
    assert_eq!(tally()[2], 0, "not the chain verified first");
}

#[tokio::test]
async fn a_repeat_still_asks_the_authorizer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _m = METRICS.lock().await;
    let open = Arc::new(AtomicBool::new(true));
    let gate = open.clone();
    let s = server_authorizing(
        TestCa::root("example.org"),
        authorize::from_fn(move |peer| {
            if gate.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(Denied::new(peer, "closed"))
            }
        }),
    )
    .await;
    let svid = leaf(&s.root.intermediate(), 1);
    assert!(s.accepts(svid.clone()).await);
    open.store(false, Ordering::SeqCst);
    assert!(!s.accepts(svid.clone()).await, "the authorizer said no");
    open.store(true, Ordering::SeqCst);
    assert!(s.accepts(svid).await);
    assert_eq!(tally()[2], 2, "both repeats, the refused one too");
}

#[tokio::test]
async fn repeats_are_bounded() {
    let (_m, s) = locked_example_server().await;
    let intermediate = s.root.intermediate();
    let first = leaf(&intermediate, 0);
    assert!(s.accepts(first.clone()).await);
    // 64 other chains verified since: the first is forgotten.
    let others: Vec<X509Svid> = (1..=64).map(|n| leaf(&intermediate, n)).collect();
    for svid in &others {
        assert!(s.accepts(svid.clone()).await);
    }
    assert_eq!(tally()[2], 0);
    assert!(s.accepts(first).await);
    assert_eq!(tally()[2], 0, "forgotten, verified again");
    assert!(s.accepts(others[63].clone()).await);
    assert_eq!(tally()[2], 1, "the newest are remembered");
}
