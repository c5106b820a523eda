//! An SVID that renews itself from a CA, in the background.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mtls_core::{Published, SourceStatus, SvidSource, X509Svid};
use tokio::sync::watch;

use crate::authority::CertificateAuthority;
use crate::error::CaError;
use crate::issue::SvidRequest;

/// Anything that issues SVIDs: a [`CertificateAuthority`], or a
/// [`RotatingCa`](crate::RotatingCa) that issues with whichever CA is active.
pub trait SvidIssuer: Send + Sync {
    /// Issues an SVID for `request`.
    fn issue_svid(&self, request: &SvidRequest) -> Result<X509Svid, CaError>;
}

impl SvidIssuer for CertificateAuthority {
    fn issue_svid(&self, request: &SvidRequest) -> Result<X509Svid, CaError> {
        self.issue(request)
    }
}

impl<T: SvidIssuer + ?Sized> SvidIssuer for Arc<T> {
    fn issue_svid(&self, request: &SvidRequest) -> Result<X509Svid, CaError> {
        (**self).issue_svid(request)
    }
}

/// The fraction of an SVID's lifetime after which it is renewed (before
/// jitter), as Istio does (Linkerd uses 70 %).
pub const RENEW_AT: f64 = 0.5;

/// The jitter around [`RENEW_AT`], as a fraction of the lifetime (± 10 %),
/// so that a fleet issued at once does not renew at once.
pub const RENEW_JITTER: f64 = 0.1;

/// Longest wait between two attempts after a failed renewal.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The app's own SVID, issued by a CA and renewed in the background at
/// about half its lifetime, with jitter. It is an
/// [`SvidSource`](mtls_core::SvidSource): hand it to
/// `MtlsServerConfig::builder` or `MtlsClientConfig::builder` and every new
/// handshake presents the current SVID, with no restart.
///
/// A failed renewal is retried with backoff (at most
/// [`MAX_RETRY_DELAY`] apart) while the current SVID keeps serving; failures
/// are counted and logged. Dropping the value stops the renewal task.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use mtls_ca::{CaOptions, CertificateAuthority, RenewingSvid, SvidRequest};
/// use mtls_core::{SpiffeId, SvidSource, TrustDomain};
///
/// let ca = Arc::new(CertificateAuthority::self_signed_for_development(
///     TrustDomain::new("example.org")?,
///     &CaOptions::default(),
/// )?);
/// let svid = RenewingSvid::start(ca, SvidRequest::new(SpiffeId::new("spiffe://example.org/web")?))?;
/// let mut updates = svid.changes();
/// svid.renew_now()?;
/// updates.changed().await?;
/// assert_eq!(svid.generation(), 1);
/// assert_eq!(svid.status().failures, 0);
/// assert_eq!(svid.current_svid().unwrap().spiffe_id().as_str(), "spiffe://example.org/web");
/// # Ok(()) }
/// ```
pub struct RenewingSvid {
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

struct Shared {
    issuer: Arc<dyn SvidIssuer>,
    request: SvidRequest,
    /// The current SVID and when it was received.
    published: Published<(X509Svid, SystemTime), Arc<CaError>>,
}

impl RenewingSvid {
    /// Issues the first SVID now (an error if that fails) and starts
    /// renewing it on the current tokio runtime.
    pub fn start(issuer: Arc<dyn SvidIssuer>, request: SvidRequest) -> Result<Self, CaError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| CaError::NoRuntime)?;
        let first = issuer.issue_svid(&request)?;
        let shared = Arc::new(Shared {
            issuer,
            request,
            published: Published::new((first, SystemTime::now())),
        });
        let task = runtime.spawn(renew_loop(shared.clone())).abort_handle();
        Ok(Self { shared, task })
    }

    /// The current SVID.
    pub fn svid(&self) -> X509Svid {
        self.shared.published.load().0.clone()
    }

    /// Bumped at every renewal.
    pub fn generation(&self) -> u64 {
        self.shared.published.generation()
    }

    /// A receiver of the generation, woken at every renewal.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.published.changes()
    }

    /// Renews now (the background schedule restarts from the new SVID).
    /// The error is the one [`status`](Self::status) records.
    pub fn renew_now(&self) -> Result<(), Arc<CaError>> {
        self.shared.renew()
    }

    /// Generation, failed renewals, the last failure (typed) and state.
    pub fn status(&self) -> SourceStatus<Arc<CaError>> {
        self.shared.published.status()
    }
}

impl Shared {
    fn renew(&self) -> Result<(), Arc<CaError>> {
        match self.issuer.issue_svid(&self.request) {
            Ok(svid) => {
                self.published.publish((svid, SystemTime::now()));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(spiffe_id = %self.request.spiffe_id, error = %e, "SVID renewal failed; the current SVID keeps serving");
                let e = Arc::new(e);
                self.published.refuse(e.clone());
                Err(e)
            }
        }
    }
}

async fn renew_loop(shared: Arc<Shared>) {
    let mut changes = shared.published.changes();
    let mut retry = Duration::from_secs(1);
    loop {
        let current = shared.published.load();
        let delay = renewal_delay(&current.0, current.1, SystemTime::now(), jitter());
        changes.borrow_and_update();
        tokio::select! {
            // Renewed from elsewhere (renew_now): recompute the schedule.
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = tokio::time::sleep(delay) => {}
        }
        match shared.renew() {
            Ok(()) => retry = Duration::from_secs(1),
            Err(_) => {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

/// How long to wait before renewing `svid`, received at `received`: until
/// `RENEW_AT ± jitter` of its validity from then has passed, at least one
/// second. (Counting from `not_before` would be skewed by backdating.)
pub(crate) fn renewal_delay(
    svid: &X509Svid,
    received: SystemTime,
    now: SystemTime,
    jitter: f64,
) -> Duration {
    let start = received.max(svid.not_before());
    let lifetime = svid.not_after().duration_since(start).unwrap_or_default();
    let at = start + lifetime.mul_f64((RENEW_AT + jitter).clamp(0.05, 0.95));
    at.duration_since(now)
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}

/// A uniform value in `[-RENEW_JITTER, RENEW_JITTER]`.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = mtls_core::default_crypto_provider()
        .secure_random
        .fill(&mut b);
    (f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 2.0 - 1.0) * RENEW_JITTER
}

impl SvidSource for RenewingSvid {
    fn current_svid(&self) -> Option<X509Svid> {
        Some(self.svid())
    }

    fn generation(&self) -> Option<u64> {
        Some(self.shared.published.generation())
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.shared.published.changes())
    }
}

impl Drop for RenewingSvid {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for RenewingSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenewingSvid")
            .field("current", &self.shared.published.load().0)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}
