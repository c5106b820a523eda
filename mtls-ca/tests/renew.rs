//! The CA as an `SvidIssuer` for `mtls_core::RenewingSvid`, and RotatingCa:
//! renewal on schedule, failures keep the last good SVID, issuance off the
//! runtime's workers, and a CA rotation where every step keeps handshakes
//! working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use mtls_ca::{
    CaError, CaOptions, CertificateAuthority, IssuancePolicy, RotatingCa, RotationPhase,
    SvidRequest,
};
use mtls_core::{
    BundleSource, CrlSet, IssueError, KeyAlgorithm, PeerRole, RenewingSvid, SpiffeId, SvidIssuer,
    SvidSpec, TrustDomain, X509Svid,
};
use mtls_testing::{dns_names, first_renewal_of_4s_svid};

fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

fn web() -> SpiffeId {
    SpiffeId::new("spiffe://example.org/web").unwrap()
}

fn dev_ca() -> CertificateAuthority {
    CertificateAuthority::self_signed_for_development(td(), &CaOptions::default()).unwrap()
}

#[tokio::test]
async fn renews_at_about_half_its_lifetime() {
    let ca = Arc::new(dev_ca());
    let request = SvidSpec::new(web()).ttl(Duration::from_secs(4));
    let svid = RenewingSvid::start(ca.clone(), request).await.unwrap();
    let second = first_renewal_of_4s_svid(&svid, &web()).await;
    second
        .verify(
            &ca.bundle().unwrap().into(),
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Server,
        )
        .unwrap();
    assert_eq!(svid.status().failures, 0);
}

/// Issues the first time, then fails until told otherwise.
struct Flaky {
    ca: CertificateAuthority,
    fail: AtomicBool,
}

impl SvidIssuer for Flaky {
    async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(IssueError::issuer(
                &spec.spiffe_id,
                CaError::Rotation("the test CA is down"),
            ));
        }
        self.ca.issue_svid(spec).await
    }
}

#[tokio::test]
async fn failed_renewals_keep_the_current_svid_and_are_counted() {
    let issuer = Arc::new(Flaky {
        ca: dev_ca(),
        fail: AtomicBool::new(false),
    });
    let svid = RenewingSvid::start(
        issuer.clone(),
        SvidSpec::new(web()).ttl(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    let first = svid.svid();
    issuer.fail.store(true, Ordering::SeqCst);
    assert!(svid.renew_now().await.is_err());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        svid.status().failures >= 2,
        "failures: {}",
        svid.status().failures
    );
    assert!(
        svid.svid().ptr_eq(&first),
        "the last good SVID keeps serving"
    );
    let last_error = svid.status().last_error.unwrap();
    assert!(mtls_core::ErrorChain(&last_error)
        .to_string()
        .contains("the test CA is down"));
    // The CA comes back: the next retry succeeds.
    issuer.fail.store(false, Ordering::SeqCst);
    let mut updates = svid.changes();
    tokio::time::timeout(Duration::from_secs(5), updates.changed())
        .await
        .expect("renewed after recovery")
        .unwrap();
    assert!(!svid.svid().ptr_eq(&first));
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let start = pin!(RenewingSvid::start(
        Arc::new(dev_ca()),
        SvidSpec::new(web())
    ));
    let Poll::Ready(Err(err)) = start.poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("started without a runtime");
    };
    assert!(matches!(err, IssueError::NoRuntime), "{err}");
}

#[tokio::test]
async fn first_issuance_failure_is_returned() {
    let issuer = Arc::new(Flaky {
        ca: dev_ca(),
        fail: AtomicBool::new(true),
    });
    let err = RenewingSvid::start(issuer, SvidSpec::new(web()))
        .await
        .unwrap_err();
    let ca_error = err.issuer_error().and_then(|e| e.downcast_ref::<CaError>());
    assert!(matches!(ca_error, Some(CaError::Rotation(_))), "{err}");
}

#[test]
fn rotation_keeps_every_svid_verifiable_at_every_step() {
    let ca = RotatingCa::new(dev_ca());
    let verifies = |svid: &X509Svid| {
        svid.verify(
            &ca.current_bundles(),
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Client,
        )
        .is_ok()
    };
    let seq0 = ca.bundle().unwrap().sequence().unwrap();
    let old_svid = ca.issue(&SvidRequest::new(web())).unwrap();
    assert_eq!(ca.phase(), RotationPhase::Steady);

    // Out-of-order steps are refused.
    assert!(matches!(ca.activate(), Err(CaError::Rotation(_))));
    assert!(matches!(ca.retire(), Err(CaError::Rotation(_))));
    let other_td = CertificateAuthority::self_signed_for_development(
        TrustDomain::new("other.org").unwrap(),
        &CaOptions::default(),
    )
    .unwrap();
    assert!(matches!(ca.stage(other_td), Err(CaError::Rotation(_))));

    // 1. Stage: both anchors published, the old CA still issues.
    let bundle_updates = ca.changes();
    ca.stage(dev_ca()).unwrap();
    assert!(bundle_updates.has_changed().unwrap());
    assert_eq!(ca.phase(), RotationPhase::Staged);
    assert_eq!(ca.bundle().unwrap().len(), 2);
    assert!(matches!(ca.stage(dev_ca()), Err(CaError::Rotation(_))));
    let staged_svid = ca.issue(&SvidRequest::new(web())).unwrap();
    assert_eq!(staged_svid.chain().len(), old_svid.chain().len());
    assert!(verifies(&old_svid) && verifies(&staged_svid));

    // 2. Activate: the new CA issues; old SVIDs still verify.
    ca.activate().unwrap();
    assert_eq!(ca.phase(), RotationPhase::Activated);
    let new_svid = ca.issue(&SvidRequest::new(web())).unwrap();
    assert!(verifies(&old_svid) && verifies(&new_svid));

    // 3. Retire: the old anchors leave; old SVIDs no longer verify.
    ca.retire().unwrap();
    assert_eq!(ca.phase(), RotationPhase::Steady);
    assert_eq!(ca.bundle().unwrap().len(), 1);
    assert!(verifies(&new_svid));
    assert!(!verifies(&old_svid));
    assert_eq!(ca.bundle().unwrap().sequence().unwrap(), seq0 + 3);
}

/// Issuing through `SvidIssuer` keeps the CA's policy: what the CA refuses
/// is refused, with the CA's error carried as the issuer's own.
#[tokio::test]
async fn the_issuer_keeps_the_issuance_policy() {
    let mut ca = dev_ca();
    ca.set_policy(
        IssuancePolicy::new(td()).allow_prefix(SpiffeId::new("spiffe://example.org/ns").unwrap()),
    )
    .unwrap();
    let err = ca.issue_svid(&SvidSpec::new(web())).await.unwrap_err();
    let ca_error = err.issuer_error().and_then(|e| e.downcast_ref::<CaError>());
    assert!(
        matches!(ca_error, Some(CaError::PolicyDenied { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("spiffe://example.org/web"),
        "{err}"
    );
    let other_td = SpiffeId::new("spiffe://other.org/web").unwrap();
    let err = ca.issue_svid(&SvidSpec::new(other_td)).await.unwrap_err();
    let ca_error = err.issuer_error().and_then(|e| e.downcast_ref::<CaError>());
    assert!(
        matches!(ca_error, Some(CaError::WrongTrustDomain { .. })),
        "{err}"
    );
}

/// The spec's TTL, DNS names and key algorithm reach the certificate.
#[tokio::test]
async fn the_spec_maps_to_the_ca_request() {
    let ca = dev_ca();
    let spec = SvidSpec::new(web())
        .ttl(Duration::from_secs(600))
        .dns_name("web.example.org")
        .key_algorithm(KeyAlgorithm::Ed25519);
    let svid = ca.issue_svid(&spec).await.unwrap();
    assert_eq!(svid.spiffe_id(), &web());
    let lifetime = svid.not_after().duration_since(svid.not_before()).unwrap();
    assert_eq!(lifetime, Duration::from_secs(600) + mtls_ca::BACKDATE);
    let (_, leaf) = x509_parser::parse_x509_certificate(svid.leaf()).unwrap();
    let dns = dns_names(&leaf);
    assert_eq!(dns, ["web.example.org"]);
    assert_eq!(
        leaf.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_SIG_ED25519
    );
}

/// Key generation and signing run on tokio's blocking pool, never on a
/// runtime worker. On a current_thread runtime the one worker is the test's
/// thread: while an issuance is in flight, another task on that worker
/// keeps running (it ticks). Had the issuer generated the key and signed
/// on the worker, each issuance would complete within one poll and the
/// ticker could not tick in between.
#[test]
fn issuance_never_runs_on_the_runtime_worker() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        });
        let ca = dev_ca();
        let rotating = RotatingCa::new(dev_ca());
        let spec = SvidSpec::new(web()).key_algorithm(KeyAlgorithm::EcdsaP384);
        let (mut ca_ticks, mut rotating_ticks) = (0, 0);
        for _ in 0..5 {
            let before = ticks.load(Ordering::SeqCst);
            ca.issue_svid(&spec).await.unwrap();
            ca_ticks += ticks.load(Ordering::SeqCst) - before;
            let before = ticks.load(Ordering::SeqCst);
            rotating.issue_svid(&spec).await.unwrap();
            rotating_ticks += ticks.load(Ordering::SeqCst) - before;
        }
        ticker.abort();
        assert!(
            ca_ticks > 0,
            "the worker was blocked during every CertificateAuthority issuance"
        );
        assert!(
            rotating_ticks > 0,
            "the worker was blocked during every RotatingCa issuance"
        );
    });
}

/// A RenewingSvid started from a RotatingCa renews from whichever CA is
/// active.
#[tokio::test]
async fn renewal_follows_the_rotation() {
    let ca = Arc::new(RotatingCa::new(dev_ca()));
    let svid = RenewingSvid::start(ca.clone(), SvidSpec::new(web()))
        .await
        .unwrap();
    let issued_by = |svid: &X509Svid, ca: &CertificateAuthority| {
        svid.verify(
            &ca.bundle().unwrap().into(),
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Client,
        )
        .is_ok()
    };
    let old = ca.active();
    assert!(issued_by(&svid.svid(), &old));
    ca.stage(dev_ca()).unwrap();
    ca.activate().unwrap();
    svid.renew_now().await.unwrap();
    assert!(issued_by(&svid.svid(), &ca.active()));
    assert!(!issued_by(&svid.svid(), &old));
}
