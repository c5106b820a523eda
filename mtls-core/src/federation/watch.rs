//! Watching a bundle endpoint: a bundle source that follows a partner
//! trust domain's bundle (SPIFFE_Federation.md 4.1, 4.2 and 6.2).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::client::Fetcher;
use super::{EndpointConfig, FederationError};
use crate::bundle::{BundleSet, SpiffeBundle};
use crate::jwt::{JwtBundle, JwtBundleSet};
use crate::source::{
    tracked_source, AbortOnDrop, BundleSource, JwtBundleSource, Published, SourceStatus,
};

/// The refresh interval used while the bundle held has no
/// `spiffe_refresh_hint` (SPIFFE_Federation.md 4.1 recommends five
/// minutes).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// The lowest refresh interval a [`FederatedBundleSource`] polls at by
/// default, whatever hint the endpoint gives.
pub const MIN_REFRESH: Duration = Duration::from_secs(30);

/// The highest refresh interval a [`FederatedBundleSource`] polls at, by
/// default, however large the hint: a partner's rotation is noticed within
/// this time.
pub const MAX_REFRESH: Duration = Duration::from_secs(3600);

/// The floor of every refresh and retry interval: no setting polls an
/// endpoint more often.
const HARD_FLOOR: Duration = Duration::from_secs(1);

/// How a [`FederatedBundleSource`] polls.
///
/// ```
/// use std::time::Duration;
/// use mtls_core::federation::WatchOptions;
///
/// let options = WatchOptions::default().min_refresh(Duration::from_secs(5));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct WatchOptions {
    min_refresh: Duration,
    max_refresh: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            min_refresh: MIN_REFRESH,
            max_refresh: MAX_REFRESH,
        }
    }
}

impl WatchOptions {
    /// The lowest refresh interval (default [`MIN_REFRESH`]; never below
    /// one second): a smaller `spiffe_refresh_hint` is raised to it. It is
    /// also the first retry delay after a failure.
    #[must_use]
    pub fn min_refresh(mut self, min: Duration) -> Self {
        self.min_refresh = min.max(HARD_FLOOR);
        self
    }

    /// The highest refresh interval (default [`MAX_REFRESH`]).
    #[must_use]
    pub fn max_refresh(mut self, max: Duration) -> Self {
        self.max_refresh = max.max(HARD_FLOOR);
        self
    }

    /// The interval to poll at after a success, for a bundle with `hint`.
    fn interval(&self, hint: Option<Duration>) -> Duration {
        let max = self.max_refresh.max(self.min_refresh);
        hint.unwrap_or(DEFAULT_REFRESH).clamp(self.min_refresh, max)
    }

    /// The delay before retry `failures` (1 for the first), backing off
    /// from the lowest interval up to `interval`, with jitter: the delay is
    /// drawn between three quarters of it and all of it.
    fn retry_delay(&self, failures: u32, interval: Duration) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let base = self.min_refresh.saturating_mul(1u32 << exp).min(interval);
        base.mul_f64(1.0 - 0.25 * jitter()).max(HARD_FLOOR)
    }
}

/// A number in [0, 1), different at each call (for jitter, not for
/// cryptography).
fn jitter() -> f64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What a [`FederatedBundleSource`] serves.
#[derive(Debug, Default)]
struct Held {
    bundle: Option<Arc<SpiffeBundle>>,
    set: BundleSet,
    /// The bundle's JWT authorities, built once per bundle.
    jwt: JwtBundleSet,
}

/// A [`BundleSource`] that follows a partner trust domain's bundle through
/// its bundle endpoint (SPIFFE_Federation.md 4 and 6.2): a task polls the
/// endpoint at the bundle's `spiffe_refresh_hint` (five minutes when it
/// has none; bounded by [`WatchOptions`]), and after a failure retries with
/// exponential backoff and jitter, from the lowest interval up to the
/// refresh interval (never a tight loop).
///
/// - **Empty until the first fetch succeeds**: the set holds no bundle of
///   the trust domain (so its peers are refused) and
///   [`current_bundle`](Self::current_bundle) is `None`. An `https_spiffe`
///   bootstrap bundle authenticates the endpoint only; it is not served,
///   since it is the operator's copy, not the partner's published bundle.
/// - **Sequence numbers** (4.2): a bundle whose content changed is taken
///   when its `spiffe_sequence` is higher than the held one's, or when
///   either has none (the latest retrieved is then up to date); with an
///   equal or lower sequence it is refused
///   ([`FederationError::StaleSequence`]). The same content with the same
///   or a lower sequence is no change: no new generation (a higher
///   sequence with the same content is taken, as a new generation).
/// - **Every failure keeps the last good bundle**, and is counted with its
///   typed error in [`status`](Self::status).
/// - A self-serving `https_spiffe` endpoint is authenticated with the
///   latest bundle fetched, once there is one (5.2.2.4).
///
/// It composes with the local trust domain's source through
/// [`ComposedBundles`](crate::ComposedBundles) (`.trust_domain(partner,
/// federated)`). Clones share the watch; the task stops when the last
/// clone is dropped.
///
/// ```no_run
/// use mtls_core::federation::{EndpointConfig, EndpointProfile, FederatedBundleSource, WatchOptions};
/// use mtls_core::{ComposedBundles, SharedBundles, SpiffeId, TrustDomain, X509Bundle};
///
/// # async fn run(own: SharedBundles, bootstrap: X509Bundle) -> Result<(), Box<dyn std::error::Error>> {
/// let partner = TrustDomain::from_static("partner.example");
/// let config = EndpointConfig::new(
///     "https://bundle.partner.example:8443/".parse()?,
///     partner.clone(),
///     EndpointProfile::https_spiffe(SpiffeId::from_static("spiffe://partner.example/bundle-endpoint"), bootstrap),
/// )?;
/// let federated = FederatedBundleSource::spawn(config, WatchOptions::default())?;
/// let bundles = ComposedBundles::builder()
///     .trust_domain(TrustDomain::from_static("example.org"), own)
///     .trust_domain(partner, federated.clone())
///     .build()?;
/// // MtlsServerConfig::builder(svid, bundles)...
/// # let _ = bundles;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FederatedBundleSource {
    shared: Arc<Shared>,
}

struct Shared {
    published: Published<Held, FederationError>,
    refresh: Arc<Notify>,
    /// The polling task, stopped with the last clone.
    _task: AbortOnDrop,
    config: EndpointConfig,
}

/// The held bundle as a bundle source, for the fetcher's verifier.
struct HeldSource(Published<Held, FederationError>);

impl BundleSource for HeldSource {
    fn current_bundles(&self) -> BundleSet {
        self.0.load().set.clone()
    }

    fn generation(&self) -> Option<u64> {
        Some(self.0.generation())
    }
}

impl FederatedBundleSource {
    /// Starts watching the endpoint of `config` (the first fetch starts at
    /// once). Must be called inside a tokio runtime.
    pub fn spawn(config: EndpointConfig, options: WatchOptions) -> Result<Self, FederationError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| FederationError::NoRuntime {
                what: "a FederatedBundleSource",
            })?;
        let published = Published::new(Held::default());
        let fetcher = Fetcher::new(&config, Some(Arc::new(HeldSource(published.clone()))))?;
        let refresh = Arc::new(Notify::new());
        let task = runtime.spawn(poll(fetcher, published.clone(), refresh.clone(), options));
        Ok(Self {
            shared: Arc::new(Shared {
                published,
                refresh,
                _task: AbortOnDrop(task.abort_handle()),
                config,
            }),
        })
    }

    /// The full bundle held (X.509 and JWT authorities, sequence, hint),
    /// `None` until the first fetch succeeds.
    pub fn current_bundle(&self) -> Option<Arc<SpiffeBundle>> {
        self.shared.published.load().bundle.clone()
    }

    /// Fetches now instead of at the next interval (an operator's
    /// "refresh", a test).
    pub fn refresh_now(&self) {
        self.shared.refresh.notify_one();
    }

    /// Bumped whenever the bundle held changes.
    pub fn generation(&self) -> u64 {
        self.shared.published.generation()
    }

    /// A receiver woken whenever the bundle held changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.published.changes()
    }

    /// Generation, failed fetches and refused bundles (`failures`, with the
    /// last error), state.
    pub fn status(&self) -> SourceStatus<FederationError> {
        self.shared.published.status()
    }

    /// What this source watches.
    pub fn config(&self) -> &EndpointConfig {
        &self.shared.config
    }
}

/// What to do with a fetched bundle, given the one held.
#[derive(Debug, PartialEq)]
enum Verdict {
    Take,
    Same,
    Refuse { current: u64, received: u64 },
}

/// SPIFFE_Federation.md 4.2: sequence numbers order bundles; without one,
/// the latest retrieved is up to date.
fn judge(held: Option<&SpiffeBundle>, fetched: &SpiffeBundle) -> Verdict {
    let Some(held) = held else {
        return Verdict::Take;
    };
    let same_content = held.x509().authorities() == fetched.x509().authorities()
        && held.jwt_authorities() == fetched.jwt_authorities()
        && held.refresh_hint() == fetched.refresh_hint();
    match (held.sequence(), fetched.sequence()) {
        (Some(current), Some(received)) if received <= current => {
            if same_content {
                Verdict::Same
            } else {
                Verdict::Refuse { current, received }
            }
        }
        (Some(_), Some(_)) if same_content => Verdict::Take,
        _ if same_content && held.sequence() == fetched.sequence() => Verdict::Same,
        _ => Verdict::Take,
    }
}

async fn poll(
    fetcher: Fetcher,
    published: Published<Held, FederationError>,
    refresh: Arc<Notify>,
    options: WatchOptions,
) {
    let trust_domain = fetcher.config().trust_domain.clone();
    let mut failures: u32 = 0;
    loop {
        let held = published.load().bundle.clone();
        let outcome = fetcher.fetch().await;
        let ok = match outcome {
            Ok(fetched) => match judge(held.as_deref(), &fetched) {
                Verdict::Take => {
                    tracing::info!(trust_domain = %trust_domain, sequence = ?fetched.sequence(), authorities = fetched.x509().len(), "federation: new bundle");
                    let set = BundleSet::from(fetched.x509().clone());
                    let jwt = JwtBundleSet::from(JwtBundle::from(&fetched));
                    published.publish(Held {
                        bundle: Some(Arc::new(fetched)),
                        set,
                        jwt,
                    });
                    true
                }
                Verdict::Same => true,
                Verdict::Refuse { current, received } => {
                    let error = FederationError::StaleSequence {
                        trust_domain: trust_domain.clone(),
                        current,
                        received,
                    };
                    tracing::warn!(error = %crate::ErrorChain(&error), "federation: bundle refused; keeping the last good one");
                    published.refuse(error);
                    // The endpoint answered: poll at the normal interval.
                    true
                }
            },
            Err(error) => {
                tracing::warn!(trust_domain = %trust_domain, error = %crate::ErrorChain(&error), "federation: fetch failed; keeping the last good bundle");
                published.refuse(error);
                false
            }
        };
        let hint = published
            .load()
            .bundle
            .as_ref()
            .and_then(|b| b.refresh_hint());
        let interval = options.interval(hint);
        let delay = if ok {
            failures = 0;
            interval
        } else {
            failures = failures.saturating_add(1);
            options.retry_delay(failures, interval)
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = refresh.notified() => {}
        }
    }
}

tracked_source!(FederatedBundleSource, BundleSource, fn current_bundles(this) -> BundleSet {
    this.shared.published.load().set.clone()
});
tracked_source!(
    /// The partner's JWT authorities, for validating its workloads' JWT-SVIDs
    /// (empty until the first fetch succeeds); the same generation as the
    /// X.509 side.
    FederatedBundleSource,
    JwtBundleSource,
    fn current_jwt_bundles(this) -> JwtBundleSet {
        this.shared.published.load().jwt.clone()
    }
);

impl fmt::Debug for FederatedBundleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederatedBundleSource")
            .field("url", &self.shared.config.url)
            .field("trust_domain", &self.shared.config.trust_domain)
            .field("generation", &self.shared.published.generation())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::TrustDomain;

    fn bundle(seq: Option<u64>, hint: u64) -> SpiffeBundle {
        let mut b = SpiffeBundle::new(TrustDomain::from_static("partner.example"));
        b.set_sequence(seq);
        b.set_refresh_hint(Some(Duration::from_secs(hint)));
        b
    }

    #[test]
    fn sequence_rules() {
        let held = bundle(Some(5), 60);
        assert_eq!(judge(None, &held), Verdict::Take);
        assert_eq!(judge(Some(&held), &bundle(Some(5), 60)), Verdict::Same);
        assert_eq!(judge(Some(&held), &bundle(Some(4), 60)), Verdict::Same);
        assert_eq!(judge(Some(&held), &bundle(Some(6), 60)), Verdict::Take);
        assert_eq!(
            judge(Some(&held), &bundle(Some(5), 30)),
            Verdict::Refuse {
                current: 5,
                received: 5
            }
        );
        assert_eq!(
            judge(Some(&held), &bundle(Some(4), 30)),
            Verdict::Refuse {
                current: 5,
                received: 4
            }
        );
        assert_eq!(judge(Some(&held), &bundle(None, 30)), Verdict::Take);
        assert_eq!(
            judge(Some(&bundle(None, 60)), &bundle(None, 60)),
            Verdict::Same
        );
    }

    #[test]
    fn intervals_are_bounded_and_retries_back_off() {
        let options = WatchOptions::default();
        assert_eq!(options.interval(None), DEFAULT_REFRESH);
        assert_eq!(options.interval(Some(Duration::ZERO)), MIN_REFRESH);
        assert_eq!(
            options.interval(Some(Duration::from_secs(86400))),
            MAX_REFRESH
        );
        let interval = DEFAULT_REFRESH;
        let first = options.retry_delay(1, interval);
        assert!(first <= MIN_REFRESH && first >= MIN_REFRESH.mul_f64(0.75));
        let later = options.retry_delay(30, interval);
        assert!(later <= interval && later >= interval.mul_f64(0.75));
        let tiny = WatchOptions::default().min_refresh(Duration::ZERO);
        assert!(tiny.retry_delay(1, Duration::ZERO) >= HARD_FLOOR);
    }
}
