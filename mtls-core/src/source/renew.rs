//! An SVID that renews itself from an [`SvidIssuer`], in the background.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::issuer::{IssueError, SvidIssuer, SvidSpec};
use super::published::Published;
use super::status::SourceStatus;
use super::{AbortOnDrop, SvidSource};
use crate::X509Svid;

/// The fraction of an SVID's lifetime after which it is renewed (before
/// jitter), as Istio does (Linkerd uses 70 %).
pub const RENEW_AT: f64 = 0.5;

/// The jitter around [`RENEW_AT`], as a fraction of the lifetime (± 10 %),
/// so that a fleet issued at once does not renew at once.
pub const RENEW_JITTER: f64 = 0.1;

/// Longest wait between two attempts after a failed renewal.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The first wait after a failed renewal; it doubles at every failure up to
/// [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The app's own SVID, issued by an [`SvidIssuer`] and renewed in the
/// background at about half its lifetime ([`RENEW_AT`] ± [`RENEW_JITTER`]).
/// It is an [`SvidSource`]: hand it to `MtlsServerConfig::builder` or
/// `MtlsClientConfig::builder` and every new handshake presents the current
/// SVID, with no restart.
///
/// A failed renewal is retried with backoff (from 1 s, doubling, at most
/// [`MAX_RETRY_DELAY`] apart) while the current SVID keeps serving;
/// failures are logged and counted in [`status`](Self::status) with the
/// last [`IssueError`]. An SVID the issuer returns for another SPIFFE ID,
/// or already expired, is refused the same way. Dropping the value stops
/// the renewal task.
///
/// The issuer is anything that implements [`SvidIssuer`]: mtls-ca's
/// `CertificateAuthority` and `RotatingCa` (or an `Arc` of them), or an
/// issuer of your own, as here one that signs with rcgen:
///
/// ```
/// # use rcgen::{CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, Issuer,
/// #     KeyPair, KeyUsagePurpose, SanType, BasicConstraints};
/// # use mtls_core::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
/// use std::time::Duration;
/// use mtls_core::{IssueError, RenewingSvid, SpiffeId, SvidIssuer, SvidSource, SvidSpec, X509Svid};
///
/// struct MyCa {
///     issuer: Issuer<'static, KeyPair>,
/// }
///
/// impl SvidIssuer for MyCa {
///     async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
///         // Key generation and signing are cheap here (P-256); a CA doing
///         // heavier work would move it to `tokio::task::spawn_blocking`.
///         sign(&self.issuer, spec).map_err(|e| IssueError::issuer(&spec.spiffe_id, e))
///     }
/// }
/// # fn sign(issuer: &Issuer<'static, KeyPair>, spec: &SvidSpec)
/// #     -> Result<X509Svid, Box<dyn std::error::Error + Send + Sync>> {
/// #     let key = KeyPair::generate()?;
/// #     let mut p = CertificateParams::default();
/// #     p.distinguished_name = DistinguishedName::new();
/// #     p.is_ca = IsCa::ExplicitNoCa;
/// #     p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
/// #     p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
/// #     p.subject_alt_names = vec![SanType::URI(spec.spiffe_id.as_str().try_into()?)];
/// #     p.not_after = time::OffsetDateTime::now_utc() + spec.ttl;
/// #     let cert = p.signed_by(&key, issuer)?.der().clone();
/// #     let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
/// #     Ok(X509Svid::new(vec![cert], key)?)
/// # }
/// # fn my_ca() -> Result<MyCa, Box<dyn std::error::Error>> {
/// #     let key = KeyPair::generate()?;
/// #     let mut p = CertificateParams::default();
/// #     p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
/// #     p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
/// #     p.self_signed(&key)?;
/// #     Ok(MyCa { issuer: Issuer::new(p, key) })
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let spec = SvidSpec::new(SpiffeId::new("spiffe://example.org/web")?).ttl(Duration::from_secs(600));
/// let svid = RenewingSvid::start(my_ca()?, spec).await?;
/// let mut updates = svid.changes();
/// svid.renew_now().await?;
/// updates.changed().await?;
/// assert_eq!(svid.generation(), 1);
/// assert_eq!(svid.status().failures, 0);
/// assert_eq!(svid.current_svid().unwrap().spiffe_id().as_str(), "spiffe://example.org/web");
/// # Ok(()) }
/// ```
pub struct RenewingSvid {
    shared: Arc<Shared>,
    _task: AbortOnDrop,
}

/// The future of an erased issuer.
type IssueFuture<'a> = Pin<Box<dyn Future<Output = Result<X509Svid, IssueError>> + Send + 'a>>;

/// [`SvidIssuer`] with its future boxed, so that one `RenewingSvid` type
/// holds any issuer.
trait ErasedIssuer: Send + Sync {
    fn issue_boxed<'a>(&'a self, spec: &'a SvidSpec) -> IssueFuture<'a>;
}

impl<I: SvidIssuer> ErasedIssuer for I {
    fn issue_boxed<'a>(&'a self, spec: &'a SvidSpec) -> IssueFuture<'a> {
        Box::pin(self.issue_svid(spec))
    }
}

struct Shared {
    issuer: Box<dyn ErasedIssuer>,
    spec: SvidSpec,
    /// The current SVID and when it was received.
    published: Published<(X509Svid, SystemTime), IssueError>,
}

impl RenewingSvid {
    /// Issues the first SVID now (an error if that fails, or if there is no
    /// tokio runtime) and keeps renewing it from a task on the current
    /// tokio runtime.
    pub async fn start<I>(issuer: I, spec: SvidSpec) -> Result<Self, IssueError>
    where
        I: SvidIssuer + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| IssueError::NoRuntime)?;
        let issuer: Box<dyn ErasedIssuer> = Box::new(issuer);
        let first = issue_checked(&*issuer, &spec).await?;
        let shared = Arc::new(Shared {
            issuer,
            spec,
            published: Published::new((first, SystemTime::now())),
        });
        let task = AbortOnDrop(runtime.spawn(renew_loop(shared.clone())).abort_handle());
        Ok(Self {
            shared,
            _task: task,
        })
    }

    /// The SVID serving now.
    pub fn svid(&self) -> X509Svid {
        self.shared.published.load().0.clone()
    }

    /// What the issuer is asked for at every renewal.
    pub fn spec(&self) -> &SvidSpec {
        &self.shared.spec
    }

    /// Bumped at every renewal (0: the first SVID).
    pub fn generation(&self) -> u64 {
        self.shared.published.generation()
    }

    /// A receiver of the generation, woken at every renewal.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.published.changes()
    }

    /// Renews now (the background schedule restarts from the new SVID).
    /// The error is the one [`status`](Self::status) records.
    pub async fn renew_now(&self) -> Result<(), IssueError> {
        self.shared.renew().await
    }

    /// Generation, failed renewals, the last failure (typed) and state.
    pub fn status(&self) -> SourceStatus<IssueError> {
        self.shared.published.status()
    }
}

/// Issues, and refuses an SVID that is not what was asked for.
async fn issue_checked(issuer: &dyn ErasedIssuer, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
    let svid = issuer.issue_boxed(spec).await?;
    IssueError::check(spec, &svid, SystemTime::now())?;
    Ok(svid)
}

impl Shared {
    async fn renew(&self) -> Result<(), IssueError> {
        match issue_checked(&*self.issuer, &self.spec).await {
            Ok(svid) => {
                self.published.publish((svid, SystemTime::now()));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(spiffe_id = %self.spec.spiffe_id, error = %crate::ErrorChain(&e), "mtls: SVID renewal failed; the current SVID keeps serving");
                self.published.refuse(e.clone());
                Err(e)
            }
        }
    }
}

async fn renew_loop(shared: Arc<Shared>) {
    let mut changes = shared.published.changes();
    let mut retry = FIRST_RETRY_DELAY;
    loop {
        let current = shared.published.load();
        let (svid, received) = &*current;
        let delay = renewal_delay(
            svid.not_before(),
            svid.not_after(),
            *received,
            SystemTime::now(),
            jitter(),
        );
        changes.borrow_and_update();
        // Renewed from elsewhere (renew_now) before the delay: recompute the
        // schedule from the new SVID.
        match tokio::time::timeout(delay, changes.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return,
            Err(_elapsed) => {}
        }
        match shared.renew().await {
            Ok(()) => retry = FIRST_RETRY_DELAY,
            Err(_) => {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

/// How long to wait before renewing an SVID valid from `not_before` to
/// `not_after`, received at `received`: until `RENEW_AT ± jitter` of its
/// validity from then has passed, at least one second. (Counting from
/// `not_before` would be skewed by backdating.)
fn renewal_delay(
    not_before: SystemTime,
    not_after: SystemTime,
    received: SystemTime,
    now: SystemTime,
    jitter: f64,
) -> Duration {
    let start = received.max(not_before);
    let lifetime = not_after.duration_since(start).unwrap_or_default();
    let at = start + lifetime.mul_f64((RENEW_AT + jitter).clamp(0.05, 0.95));
    at.duration_since(now)
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}

/// A uniform value in `[-RENEW_JITTER, RENEW_JITTER]`.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = crate::default_crypto_provider().secure_random.fill(&mut b);
    (f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 2.0 - 1.0) * RENEW_JITTER
}

tracked_source!(RenewingSvid, SvidSource, fn current_svid(this) -> Option<X509Svid> {
    Some(this.svid())
});

impl fmt::Debug for RenewingSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenewingSvid")
            .field("spec", &self.shared.spec)
            .field("current", &self.shared.published.load().0)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1_800_000_000);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs)
    }

    #[test]
    fn renewal_is_due_at_half_the_lifetime_within_the_jitter() {
        // Issued at 0 for 100 s, backdated 300 s: the backdating is ignored.
        let delay = |now, jitter| {
            renewal_delay(
                at(0) - Duration::from_secs(300),
                at(100),
                at(0),
                now,
                jitter,
            )
        };
        assert_eq!(delay(at(0), 0.0), Duration::from_secs(50));
        assert_eq!(delay(at(0), RENEW_JITTER), Duration::from_secs(60));
        assert_eq!(delay(at(0), -RENEW_JITTER), Duration::from_secs(40));
        assert_eq!(delay(at(20), 0.0), Duration::from_secs(30));
        // Past due, or expired: retried one second later, never at once.
        assert_eq!(delay(at(70), 0.0), Duration::from_secs(1));
        assert_eq!(delay(at(500), 0.0), Duration::from_secs(1));
    }

    #[test]
    fn an_svid_received_late_counts_from_its_receipt() {
        // Valid from 0 to 100, received at 60: due at 80.
        assert_eq!(
            renewal_delay(at(0), at(100), at(60), at(60), 0.0),
            Duration::from_secs(20)
        );
        // Received after it expired: one second.
        assert_eq!(
            renewal_delay(at(0), at(100), at(200), at(200), 0.0),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((-RENEW_JITTER..=RENEW_JITTER).contains(&j), "{j}");
        }
    }
}
