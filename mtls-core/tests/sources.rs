//! The source layer (issue 12): generations, settable cells, bundles
//! composed per trust domain, and the configs' caches keyed on
//! generations. Real handshakes over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mtls_core::rustls::pki_types::ServerName;
use mtls_core::rustls::HandshakeKind;
use mtls_core::{
    authorize, BundleSet, BundleSource, ComposeError, ComposedBundles, MtlsClientConfig,
    MtlsServerConfig, PeerIdentity, SharedBundles, SharedSvid, SourceState, SvidSource,
    TrustDomain, X509Svid,
};
use mtls_testing::{serve_hi, TestCa};
use tokio::io::AsyncReadExt;

/// Counts the reads of a bundle source; forwards its generation.
struct CountedBundles {
    inner: SharedBundles,
    reads: Arc<AtomicUsize>,
}

impl BundleSource for CountedBundles {
    fn current_bundles(&self) -> BundleSet {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.current_bundles()
    }

    fn generation(&self) -> Option<u64> {
        BundleSource::generation(&self.inner)
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        BundleSource::changes(&self.inner)
    }
}

/// Counts the reads of an SVID source; forwards its generation.
struct CountedSvid {
    inner: SharedSvid,
    reads: Arc<AtomicUsize>,
}

impl SvidSource for CountedSvid {
    fn current_svid(&self) -> Option<X509Svid> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.current_svid()
    }

    fn generation(&self) -> Option<u64> {
        SvidSource::generation(&self.inner)
    }
}

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

thread_local! {
    /// How many chain verifications reading the identity of the last
    /// connection took (on a resumed one, 0: answered from the verifier's
    /// cache).
    static LAST_REVERIFICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// What `read` returns, and the chain verifications it ran
/// (`mtls_verify_total`), counted by a recorder local to this thread.
fn verifications<T>(read: impl FnOnce() -> T) -> (T, u64) {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let value = metrics::with_local_recorder(&recorder, read);
    let count = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == mtls_core::metrics::VERIFIED_INTERMEDIATES)
        .map(|(.., value)| match value {
            metrics_util::debugging::DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    (value, count)
}

/// One connection: its handshake kind and the server's identity as the
/// client config reads it (verified again on a resumed session).
async fn connect(client: &MtlsClientConfig, addr: SocketAddr) -> (HandshakeKind, PeerIdentity) {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(client.rustls_config());
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let kind = tls.get_ref().1.handshake_kind().unwrap();
        let (peer, verified) = verifications(|| client.peer_identity(tls.get_ref().1).unwrap());
        LAST_REVERIFICATIONS.with(|n| n.set(verified));
        // Reading takes in the session tickets sent before the data.
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"hi");
        (kind, peer)
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .expect("bounded")
}

/// The composed source answers every handshake from its cache, and the
/// resolver's key cache and the verifier's resumption cache keep hitting,
/// all keyed on generations: the parts are not read again, the SVID
/// source is read once, and a resumed session reuses the identity of the
/// full handshake.
#[tokio::test]
async fn a_composed_source_keeps_both_caches_hitting() {
    let example = TestCa::root("example.org");
    let partner = TestCa::root("partner.org");
    let (own_reads, partner_reads, svid_reads) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let partner_cell = SharedBundles::new(partner.bundle_set());
    let composed = ComposedBundles::builder()
        .trust_domain(
            td("example.org"),
            CountedBundles {
                inner: SharedBundles::new(example.bundle_set()),
                reads: own_reads.clone(),
            },
        )
        .trust_domain(
            td("partner.org"),
            CountedBundles {
                inner: partner_cell.clone(),
                reads: partner_reads.clone(),
            },
        )
        .build()
        .unwrap();
    assert_eq!(
        (
            own_reads.load(Ordering::Relaxed),
            partner_reads.load(Ordering::Relaxed)
        ),
        (1, 1)
    );
    let svid = CountedSvid {
        inner: SharedSvid::new(example.leaf("spiffe://example.org/client").svid()),
        reads: svid_reads.clone(),
    };
    let svid = Arc::new(svid);
    let client = |resumption| {
        MtlsClientConfig::builder(svid.clone(), composed.clone())
            .authorizer(authorize::any())
            .resumption(resumption)
            .build()
            .unwrap()
    };
    let server = MtlsServerConfig::builder(
        partner.leaf("spiffe://partner.org/api").svid(),
        example.bundle_set(),
    )
    .authorizer(authorize::any())
    .resumption(true)
    .build()
    .unwrap();
    let addr = serve_hi(&server).await;

    // Full handshakes: the parts are never read again, the SVID once.
    let full = client(false);
    // Building read the SVID once, to check it against its bundle.
    let svid_reads_at_build = svid_reads.load(Ordering::Relaxed);
    let mut peers = Vec::new();
    for _ in 0..5 {
        let (kind, peer) = connect(&full, addr).await;
        assert_eq!(kind, HandshakeKind::Full);
        assert_eq!(peer.spiffe_id().as_str(), "spiffe://partner.org/api");
        peers.push(peer);
    }
    // Five connections to one peer keep its chain once (memory per
    // connection), each verified in full.
    assert!(peers
        .iter()
        .all(|p| std::ptr::eq(p.chain().as_ptr(), peers[0].chain().as_ptr())));
    assert_eq!(own_reads.load(Ordering::Relaxed), 1, "composed set cached");
    assert_eq!(
        partner_reads.load(Ordering::Relaxed),
        1,
        "composed set cached"
    );
    assert_eq!(
        svid_reads.load(Ordering::Relaxed),
        svid_reads_at_build + 1,
        "signing key cached"
    );

    // A resumed session is verified again from the verifier's cache: the
    // identity of the full handshake, not a new verification.
    let resuming = client(true);
    let (kind, first) = connect(&resuming, addr).await;
    assert_eq!(kind, HandshakeKind::Full);
    let (kind, again) = connect(&resuming, addr).await;
    assert_eq!(kind, HandshakeKind::Resumed, "resumption did not happen");
    assert!(
        std::ptr::eq(first.chain().as_ptr(), again.chain().as_ptr()),
        "the resumed session's identity is the full handshake's"
    );
    assert_eq!(
        LAST_REVERIFICATIONS.with(|n| n.get()),
        0,
        "the resumed session was verified from scratch"
    );
    assert_eq!(own_reads.load(Ordering::Relaxed), 1);

    // A change of one part: the set is recomputed once, with a new
    // generation, and the resumed session is verified again for real.
    let generation = composed.generation();
    let mut changes = composed.changes();
    let mut widened = partner.bundle_set();
    let mut bundle = widened.get("partner.org").unwrap().clone();
    bundle
        .add_authority(TestCa::root("partner.org").root)
        .unwrap();
    widened.insert(bundle);
    partner_cell.set(widened);
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("a part's change wakes the composed source's subscribers")
        .unwrap();
    assert_eq!(composed.generation(), generation + 1);
    assert_eq!(
        composed.current_bundles().get("partner.org").unwrap().len(),
        2
    );
    let reads = own_reads.load(Ordering::Relaxed);
    let (kind, third) = connect(&resuming, addr).await;
    assert_eq!(kind, HandshakeKind::Resumed);
    assert_eq!(
        LAST_REVERIFICATIONS.with(|n| n.get()),
        1,
        "the resumed session was not verified again after the change"
    );
    // Verified again, it still shares the chain the verifier already held
    // for that peer.
    assert!(std::ptr::eq(first.chain().as_ptr(), third.chain().as_ptr()));
    assert_eq!(
        own_reads.load(Ordering::Relaxed),
        reads,
        "recomputed once only"
    );

    // A new SVID in the cell: presented from the next handshake on.
    let next = example.leaf("spiffe://example.org/client-2").svid();
    // (Each config has its own resolver: the resuming one read it once too.)
    let svid_reads_before = svid_reads.load(Ordering::Relaxed);
    svid.inner.set(next.clone());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_server = seen.clone();
    let observing = MtlsServerConfig::builder(
        partner.leaf("spiffe://partner.org/api").svid(),
        example.bundle_set(),
    )
    .authorizer(authorize::from_fn(move |id: &mtls_core::SpiffeId| {
        seen_by_server.lock().unwrap().push(id.to_string());
        Ok(())
    }))
    .build()
    .unwrap();
    let observed = serve_hi(&observing).await;
    connect(&full, observed).await;
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["spiffe://example.org/client-2"]
    );
    assert_eq!(svid_reads.load(Ordering::Relaxed), svid_reads_before + 1);
}

#[test]
fn composition_never_merges_trust_domains() {
    let example = TestCa::root("example.org");
    let partner = TestCa::root("partner.org");
    let rogue = TestCa::root("partner.org");
    // A part that holds both trust domains, given for example.org only,
    // contributes only example.org.
    let both = BundleSet::from_bundles([example.bundle(), rogue.bundle()]).unwrap();
    let composed = ComposedBundles::builder()
        .trust_domain(td("example.org"), both.clone())
        .trust_domain(td("partner.org"), partner.bundle_set())
        .build()
        .unwrap();
    let set = composed.current_bundles();
    assert_eq!(set.get("partner.org").unwrap(), &partner.bundle());
    assert_eq!(set.len(), 2);

    // A catch-all part fills only the trust domains nobody claims.
    let other = TestCa::root("other.org");
    let catch_all = BundleSet::from_bundles([rogue.bundle(), other.bundle()]).unwrap();
    let composed = ComposedBundles::builder()
        .all_trust_domains_of(catch_all)
        .trust_domain(td("partner.org"), partner.bundle_set())
        .build()
        .unwrap();
    let set = composed.current_bundles();
    assert_eq!(
        set.get("partner.org").unwrap(),
        &partner.bundle(),
        "the explicit part wins"
    );
    assert_eq!(set.get("other.org").unwrap(), &other.bundle());

    // A part without a bundle for its trust domain: that trust domain is
    // absent (its peers are refused), the others stay.
    let composed = ComposedBundles::builder()
        .trust_domain(td("example.org"), example.bundle_set())
        .trust_domain(td("partner.org"), SharedBundles::new(BundleSet::new()))
        .build()
        .unwrap();
    assert!(!composed.current_bundles().contains("partner.org"));
    assert!(composed.current_bundles().contains("example.org"));

    // Two parts for one trust domain, or none: builder errors.
    let err = ComposedBundles::builder()
        .trust_domain(td("example.org"), example.bundle_set())
        .trust_domain(td("example.org"), both)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ComposeError::DuplicateTrustDomain { .. }),
        "{err}"
    );
    assert!(matches!(
        ComposedBundles::builder().build().unwrap_err(),
        ComposeError::NoParts
    ));
}

#[test]
fn cells_and_fixed_values_report_generations() {
    let ca = TestCa::root("example.org");
    let svid = ca.leaf("spiffe://example.org/a").svid();
    assert_eq!(
        SvidSource::generation(&svid),
        Some(0),
        "a fixed value never changes"
    );
    let cell = SharedSvid::empty();
    assert!(cell.current_svid().is_none());
    let changes = cell.changes();
    cell.set(svid.clone());
    assert!(changes.has_changed().unwrap());
    assert_eq!(cell.generation(), 1);
    assert!(cell.current_svid().unwrap().ptr_eq(&svid));
    // The same value until the generation changes.
    assert!(cell
        .current_svid()
        .unwrap()
        .ptr_eq(&cell.current_svid().unwrap()));
    cell.clear();
    assert_eq!(cell.generation(), 2);
    assert!(cell.current_svid().is_none());
    let status = cell.status();
    assert_eq!(
        (status.generation, status.failures, status.state),
        (2, 0, SourceState::Ready)
    );
}
