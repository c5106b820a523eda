//! RenewingSvid over an issuer written here, which is not mtls-ca: it signs
//! with the rcgen test CA of `mtls-testing`. The SvidIssuer trait stands alone:
//! renewal at about half the lifetime, failures that keep the last SVID
//! serving and are counted with the typed error, recovery, refused SVIDs,
//! the task stopping on drop, and handshakes presenting each renewed SVID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use mtls_core::{
    authorize, IssueError, MtlsClientConfig, MtlsServerConfig, PeerRole, RenewingSvid, SourceState,
    SpiffeId, SvidIssuer, SvidSource, SvidSpec, X509Svid,
};
use mtls_testing::{call_hi, eventually, first_renewal_of_4s_svid, serve_hi, TestCa};

const WEB: &str = "spiffe://example.org/web";

/// How long a background task gets to do what a test waits for.
const SETTLE: Duration = Duration::from_secs(10);

fn web() -> SpiffeId {
    SpiffeId::new(WEB).unwrap()
}

/// The test issuer's own error type.
#[derive(Debug, thiserror::Error)]
#[error("test issuer: the CA is down (call {call})")]
struct Down {
    call: u64,
}

/// What the test issuer hands out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Good,
    Down,
    /// An SVID for another SPIFFE ID than asked for.
    WrongId,
    /// An SVID that expired already.
    Expired,
}

/// Signs SVIDs with an rcgen CA; its mode is switched by the tests.
struct TestIssuer {
    ca: TestCa,
    mode: Mutex<Mode>,
    calls: AtomicU64,
}

impl TestIssuer {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            ca: TestCa::root("example.org"),
            mode: Mutex::new(Mode::Good),
            calls: AtomicU64::new(0),
        })
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl SvidIssuer for TestIssuer {
    async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        // An issuer that waits on something (a remote CA) before answering.
        tokio::task::yield_now().await;
        let mode = *self.mode.lock().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let ttl = time::Duration::try_from(spec.ttl).unwrap();
        let (id, not_after) = match mode {
            Mode::Down => return Err(IssueError::issuer(&spec.spiffe_id, Down { call })),
            Mode::Good => (spec.spiffe_id.as_str().to_string(), now + ttl),
            Mode::WrongId => ("spiffe://example.org/intruder".to_string(), now + ttl),
            Mode::Expired => (spec.spiffe_id.as_str().to_string(), now - ttl),
        };
        let leaf = self.ca.leaf_with(&id, |p| {
            p.not_before = now - time::Duration::hours(2);
            p.not_after = not_after;
        });
        Ok(leaf.svid())
    }
}

/// A renewing SVID for `web()` of `ttl`, from `issuer`.
async fn start_for_web(issuer: &Arc<TestIssuer>, ttl: Duration) -> RenewingSvid {
    RenewingSvid::start(issuer.clone(), SvidSpec::new(web()).ttl(ttl))
        .await
        .unwrap()
}

#[tokio::test]
async fn renews_at_about_half_its_lifetime() {
    let issuer = TestIssuer::new();
    let spec = SvidSpec::new(web()).ttl(Duration::from_secs(4));
    let svid = RenewingSvid::start(issuer.clone(), spec.clone())
        .await
        .unwrap();
    assert_eq!(svid.spec(), &spec);
    let second = first_renewal_of_4s_svid(&svid, &web()).await;
    assert_eq!(SvidSource::generation(&svid), Some(1));
    second
        .verify(
            &issuer.ca.bundle_set(),
            SystemTime::now(),
            &mtls_core::CrlSet::new(),
            PeerRole::Server,
        )
        .unwrap();
    let status = svid.status();
    assert_eq!(status.failures, 0);
    assert_eq!(status.generation, 1);
    assert_eq!(status.state, SourceState::Ready);
    assert!(status.last_error.is_none());
}

#[tokio::test]
async fn a_failing_issuer_keeps_the_last_svid_and_counts_typed_failures_then_recovers() {
    let issuer = TestIssuer::new();
    let svid = start_for_web(&issuer, Duration::from_secs(3)).await;
    let first = svid.svid();
    issuer.set(Mode::Down);
    let err = svid.renew_now().await.unwrap_err();
    assert!(err.issuer_error().unwrap().downcast_ref::<Down>().is_some());
    assert!(err.to_string().contains(WEB), "{err}");
    // The background schedule retries (3 s lifetime: first attempt within
    // about 1.8 s, the next 2 s later).
    assert!(
        eventually(SETTLE, || svid.status().failures >= 3).await,
        "timed out waiting for: two more failed renewals"
    );
    assert!(
        svid.svid().ptr_eq(&first),
        "the last good SVID keeps serving"
    );
    let status = svid.status();
    assert_eq!(status.generation, 0, "a failure publishes nothing");
    let last = status.last_error.unwrap();
    let down = last
        .issuer_error()
        .and_then(|e| e.downcast_ref::<Down>())
        .expect("the issuer's own error, typed");
    assert!(down.call >= 2, "the last error is the latest: {down:?}");
    assert!(matches!(last, IssueError::Issuer { ref spiffe_id, .. } if spiffe_id == &web()));

    // The CA comes back: the next retry succeeds.
    issuer.set(Mode::Good);
    let mut updates = svid.changes();
    let renewed = tokio::time::timeout(Duration::from_secs(40), updates.changed()).await;
    renewed.expect("renewed after recovery").unwrap();
    assert!(!svid.svid().ptr_eq(&first));
    assert_eq!(svid.svid().spiffe_id(), &web());
}

/// What an issuer returns is checked: an SVID for another SPIFFE ID, or one
/// already expired, is refused like a failure, and the current SVID keeps
/// serving.
#[tokio::test]
async fn svids_that_are_not_what_was_asked_for_are_refused() {
    let issuer = TestIssuer::new();
    let svid = RenewingSvid::start(issuer.clone(), SvidSpec::new(web()))
        .await
        .unwrap();
    let first = svid.svid();

    issuer.set(Mode::WrongId);
    let err = svid.renew_now().await.unwrap_err();
    assert!(
        matches!(&err, IssueError::WrongSpiffeId { requested, issued }
            if requested == &web() && issued.as_str() == "spiffe://example.org/intruder"),
        "{err}"
    );
    issuer.set(Mode::Expired);
    let err = svid.renew_now().await.unwrap_err();
    assert!(matches!(err, IssueError::Expired { .. }), "{err}");
    assert!(svid.svid().ptr_eq(&first));
    assert_eq!(svid.status().failures, 2);
    assert_eq!(svid.generation(), 0);

    // The same checks apply to the first SVID.
    let err = RenewingSvid::start(issuer.clone(), SvidSpec::new(web()))
        .await
        .unwrap_err();
    assert!(matches!(err, IssueError::Expired { .. }), "{err}");
    issuer.set(Mode::Down);
    let err = RenewingSvid::start(issuer.clone(), SvidSpec::new(web()))
        .await
        .unwrap_err();
    assert!(err.issuer_error().unwrap().downcast_ref::<Down>().is_some());
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let issuer = TestIssuer::new();
    let start = pin!(RenewingSvid::start(issuer.clone(), SvidSpec::new(web())));
    let Poll::Ready(Err(err)) = start.poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("started without a runtime");
    };
    assert!(matches!(err, IssueError::NoRuntime), "{err}");
    assert_eq!(issuer.calls(), 0, "nothing was asked of the issuer");
}

#[tokio::test]
async fn dropping_stops_the_renewal_task() {
    let issuer = TestIssuer::new();
    // Renewed about every second (2 s lifetime, at least 1 s apart).
    let svid = start_for_web(&issuer, Duration::from_secs(2)).await;
    assert!(
        eventually(SETTLE, || issuer.calls() >= 2).await,
        "timed out waiting for: a background renewal"
    );
    drop(svid);
    // The task, and the issuer it holds, are gone.
    assert!(
        eventually(SETTLE, || { Arc::strong_count(&issuer) == 1 }).await,
        "timed out waiting for: the task to release the issuer"
    );
    let calls = issuer.calls();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(issuer.calls(), calls, "no renewal after the drop");
}

/// Handshakes present each renewed SVID, with no new config.
#[tokio::test]
async fn handshakes_present_the_renewed_svid() {
    let issuer = TestIssuer::new();
    let svid = Arc::new(
        RenewingSvid::start(issuer.clone(), SvidSpec::new(web()))
            .await
            .unwrap(),
    );
    let bundles = issuer.ca.bundle_set();
    let server = MtlsServerConfig::builder(svid.clone(), bundles.clone())
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let addr = serve_hi(&server).await;
    let client_svid = issuer.ca.leaf("spiffe://example.org/client").svid();
    let client = MtlsClientConfig::builder(client_svid, bundles)
        .authorizer(authorize::exact(web()))
        .build()
        .unwrap();

    let (body, presented) = call_hi(&client, addr).await.unwrap();
    assert_eq!(body, b"hi");
    assert_eq!(&presented, svid.svid().leaf());
    let before = presented;
    svid.renew_now().await.unwrap();
    let (_, presented) = call_hi(&client, addr).await.unwrap();
    assert_ne!(presented, before);
    assert_eq!(&presented, svid.svid().leaf());
}

/// An issuer can be shared: `Arc<I>` is an issuer, and one issuer serves
/// several renewing SVIDs.
#[tokio::test]
async fn one_issuer_for_several_svids() {
    let issuer = TestIssuer::new();
    let api = SpiffeId::new("spiffe://example.org/api").unwrap();
    let a = RenewingSvid::start(issuer.clone(), SvidSpec::new(web()))
        .await
        .unwrap();
    let b = RenewingSvid::start(issuer.clone(), SvidSpec::new(api.clone()))
        .await
        .unwrap();
    assert_eq!(a.svid().spiffe_id(), &web());
    assert_eq!(b.svid().spiffe_id(), &api);
    assert_eq!(issuer.calls(), 2);
    drop((a, b));
    assert!(
        eventually(SETTLE, || { Arc::strong_count(&issuer) == 1 }).await,
        "timed out waiting for: both tasks to release the issuer"
    );
}
