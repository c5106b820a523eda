//! RenewingSvid and RotatingCa: renewal on schedule, failures keep the last
//! good SVID, and a CA rotation where every step keeps handshakes working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mtls_ca::{
    CaError, CaOptions, CertificateAuthority, RenewingSvid, RotatingCa, RotationPhase, SvidIssuer,
    SvidRequest,
};
use mtls_core::{BundleSource, CrlSet, PeerRole, SpiffeId, SvidSource, TrustDomain, X509Svid};

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
    let request = SvidRequest::new(web()).ttl(Duration::from_secs(4));
    let svid = RenewingSvid::start(ca.clone(), request).unwrap();
    let first = svid.svid();
    let mut updates = svid.changes();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), updates.changed())
        .await
        .expect("renewed within 10 s")
        .unwrap();
    let elapsed = started.elapsed();
    // 4 s lifetime, renewal at 50 % ± 10 % (and never sooner than 1 s).
    assert!(
        elapsed >= Duration::from_millis(1000),
        "renewed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(3900),
        "renewed too late: {elapsed:?}"
    );
    let second = svid.svid();
    assert_ne!(first.leaf(), second.leaf());
    assert_eq!(second.spiffe_id(), &web());
    assert!(svid.current_svid().unwrap().ptr_eq(&second));
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
    fn issue_svid(&self, request: &SvidRequest) -> Result<X509Svid, CaError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(CaError::Rotation("the test CA is down"));
        }
        self.ca.issue(request)
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
        SvidRequest::new(web()).ttl(Duration::from_secs(3)),
    )
    .unwrap();
    let first = svid.svid();
    issuer.fail.store(true, Ordering::SeqCst);
    assert!(svid.renew_now().is_err());
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
    assert!(svid
        .status()
        .last_error
        .unwrap()
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
    let err = RenewingSvid::start(Arc::new(dev_ca()), SvidRequest::new(web())).unwrap_err();
    assert!(matches!(err, CaError::NoRuntime), "{err}");
}

#[tokio::test]
async fn first_issuance_failure_is_returned() {
    let issuer = Arc::new(Flaky {
        ca: dev_ca(),
        fail: AtomicBool::new(true),
    });
    let err = RenewingSvid::start(issuer, SvidRequest::new(web())).unwrap_err();
    assert!(matches!(err, CaError::Rotation(_)), "{err}");
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
    let old_svid = ca.issue_svid(&SvidRequest::new(web())).unwrap();
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
    let staged_svid = ca.issue_svid(&SvidRequest::new(web())).unwrap();
    assert_eq!(staged_svid.chain().len(), old_svid.chain().len());
    assert!(verifies(&old_svid) && verifies(&staged_svid));

    // 2. Activate: the new CA issues; old SVIDs still verify.
    ca.activate().unwrap();
    assert_eq!(ca.phase(), RotationPhase::Activated);
    let new_svid = ca.issue_svid(&SvidRequest::new(web())).unwrap();
    assert!(verifies(&old_svid) && verifies(&new_svid));

    // 3. Retire: the old anchors leave; old SVIDs no longer verify.
    ca.retire().unwrap();
    assert_eq!(ca.phase(), RotationPhase::Steady);
    assert_eq!(ca.bundle().unwrap().len(), 1);
    assert!(verifies(&new_svid));
    assert!(!verifies(&old_svid));
    assert_eq!(ca.bundle().unwrap().sequence().unwrap(), seq0 + 3);
}
