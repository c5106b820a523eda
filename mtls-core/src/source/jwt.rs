//! JWT-SVIDs to send, by audience: the [`JwtSvidSource`] trait, how it
//! fails ([`JwtSourceError`]) and the cache in front of it
//! ([`CachedJwtSvids`]).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::published::Published;
use super::status::SourceStatus;
use crate::id::SpiffeId;
use crate::jwt::{JwtSvidError, JwtToken};
use crate::time_fmt::Rfc3339;

/// The future a [`JwtSvidSource`] returns (boxed, so that the trait is
/// dyn-compatible: a client layer holds an `Arc<dyn JwtSvidSource>`).
pub type JwtSvidFuture<'a> =
    Pin<Box<dyn Future<Output = Result<JwtToken, JwtSourceError>> + Send + 'a>>;

/// Where this workload gets the JWT-SVIDs it sends: request-shaped, one
/// token per set of audiences (JWT-SVID.md section 3.2), unlike the X.509
/// sources that serve one snapshot.
///
/// Implementations: `SpireSource` (feature `spire`: the Workload API's
/// `FetchJWTSVID`, cached), mtls-ca's `CaJwtSource` (minted by an embedded
/// CA), or your own. An implementation may fetch at every call; put a
/// [`CachedJwtSvids`] in front of one that does, so that a token is reused
/// until part of its lifetime is left and concurrent callers share one
/// fetch.
///
/// Implementations box their future (`Box::pin(async move { .. })`); one
/// that does CPU-heavy work (signing) moves it off the runtime worker with
/// `tokio::task::spawn_blocking`.
///
/// ```
/// use mtls_core::{JwtSourceError, JwtSvidFuture, JwtSvidSource, JwtToken};
///
/// /// A token service that is always down.
/// struct Down;
///
/// impl JwtSvidSource for Down {
///     fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a> {
///         Box::pin(async move {
///             let down = std::io::Error::other("token service unreachable");
///             Err(JwtSourceError::upstream(audience, down))
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let source: std::sync::Arc<dyn JwtSvidSource> = std::sync::Arc::new(Down);
/// let err = source.fetch_jwt_svid(&["spiffe://example.org/api".into()]).await.unwrap_err();
/// let chain = mtls_core::ErrorChain(&err).to_string();
/// assert!(chain.contains("token service unreachable"));
/// # }
/// ```
pub trait JwtSvidSource: Send + Sync {
    /// A JWT-SVID whose `aud` holds every one of `audience` (at least
    /// one), valid now.
    fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a>;
}

impl<S: JwtSvidSource + ?Sized> JwtSvidSource for Arc<S> {
    fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a> {
        (**self).fetch_jwt_svid(audience)
    }
}

/// Why no JWT-SVID could be had for an audience. Cheap to clone: an
/// upstream's own error is shared, not copied.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSourceError {
    /// No audience was asked for: a JWT-SVID must name at least one
    /// (JWT-SVID.md section 3.2).
    #[error("jwt-svid source: no audience asked for; a JWT-SVID needs at least one")]
    NoAudience,
    /// The upstream (the Workload API, a CA) failed or refused, for a
    /// reason of its own ([`JwtSourceError::upstream_error`]).
    #[error("jwt-svid source: no JWT-SVID for audience [{}]", list(audience))]
    Upstream {
        /// The audience asked for.
        audience: Vec<String>,
        /// The upstream's own error.
        source: Arc<dyn StdError + Send + Sync>,
    },
    /// The upstream answered with a token that is not a well-formed
    /// JWT-SVID; it is not sent.
    #[error(
        "jwt-svid source: the token for audience [{}] is refused",
        list(audience)
    )]
    Malformed {
        /// The audience asked for.
        audience: Vec<String>,
        /// What is wrong with it.
        source: JwtSvidError,
    },
    /// The upstream answered with a token whose `aud` lacks an audience
    /// asked for; it is not sent.
    #[error(
        "jwt-svid source: asked for audience [{}], got a token for [{}]",
        list(requested),
        list(issued)
    )]
    WrongAudience {
        /// The audience asked for.
        requested: Vec<String>,
        /// The token's `aud` (at most eight, escaped).
        issued: Vec<String>,
    },
    /// The upstream answered with a token that has already expired; it is
    /// not sent.
    #[error("jwt-svid source: the token for {spiffe_id} expired at {}, now {}", Rfc3339(*expired_at), Rfc3339(*now))]
    Expired {
        /// The token's subject.
        spiffe_id: SpiffeId,
        /// Its `exp`.
        expired_at: SystemTime,
        /// The time it was checked.
        now: SystemTime,
    },
    /// Fetching needs a tokio runtime, and there is none.
    #[error("jwt-svid source: fetching JWT-SVIDs needs a tokio runtime")]
    NoRuntime,
}

impl JwtSourceError {
    /// An upstream's own error, for `audience`.
    pub fn upstream(
        audience: &[String],
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::Upstream {
            audience: audience.to_vec(),
            source: Arc::from(source.into()),
        }
    }

    /// A token an upstream returned for `audience` that
    /// [`JwtToken::from_compact`] refused.
    pub fn malformed(audience: &[String], source: JwtSvidError) -> Self {
        Self::Malformed {
            audience: audience.to_vec(),
            source,
        }
    }

    /// The upstream's own error, if that is what this is; downcast it to
    /// the upstream's type.
    pub fn upstream_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        match self {
            Self::Upstream { source, .. } => Some(&**source),
            _ => None,
        }
    }

    /// Refuses a token returned for `audience` whose `aud` lacks one of
    /// them, or that has expired at `now`.
    pub fn check(audience: &[String], token: &JwtToken, now: SystemTime) -> Result<(), Self> {
        if audience.is_empty() {
            return Err(Self::NoAudience);
        }
        if !audience.iter().all(|a| token.audience().contains(a)) {
            return Err(Self::WrongAudience {
                requested: audience.to_vec(),
                issued: token
                    .audience()
                    .iter()
                    .take(8)
                    .map(|a| crate::escape_untrusted(a))
                    .collect(),
            });
        }
        if token.expiry() <= now {
            return Err(Self::Expired {
                spiffe_id: token.spiffe_id().clone(),
                expired_at: token.expiry(),
                now,
            });
        }
        Ok(())
    }
}

/// `"a", "b"` for a message.
fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fraction of a token's lifetime left at which [`CachedJwtSvids`]
/// fetches a new one unless told otherwise: one half (as go-spiffe's and
/// SPIRE's agent caches do for JWT-SVIDs).
pub const DEFAULT_REFRESH_REMAINING: f64 = 0.5;

/// How many audience sets a [`CachedJwtSvids`] keeps a token for unless
/// told otherwise.
pub const DEFAULT_MAX_AUDIENCE_SETS: usize = 64;

/// After a failed refresh, how long a token still valid keeps serving
/// before the next attempt.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// A cache in front of a [`JwtSvidSource`]: one token per audience set,
/// reused until less than a fraction of its lifetime is left
/// ([`DEFAULT_REFRESH_REMAINING`], one half), then fetched again.
///
/// - **Single flight**: concurrent callers for one audience set share one
///   fetch; while a refresh is in flight, callers get the current token if
///   it is still valid, and wait otherwise. A failed fetch is the answer
///   of every caller that waited on it (the upstream is not asked once per
///   waiting caller).
/// - **Checked**: a token whose `aud` lacks an audience asked for, or
///   that has expired, is refused ([`JwtSourceError::check`]).
/// - **Failures**: a failed refresh while the current token is still
///   valid keeps serving it (retried a second later at the earliest);
///   with no valid token the error is returned. Each failure is counted
///   in [`status`](Self::status), with the last error.
/// - **Bounded**: at most [`DEFAULT_MAX_AUDIENCE_SETS`] audience sets (see
///   [`max_audience_sets`](Self::max_audience_sets)); past that, the least
///   recently used one is dropped. An audience set is its list as given:
///   `["a", "b"]` and `["b", "a"]` are two entries.
///
/// The lifetime is counted from when the token was received (not its
/// `iat`): an upstream that hands out a cached token halfway through its
/// life (a SPIRE agent does) is not asked again at once.
///
/// The [`generation`](Self::generation) moves at every token fetched.
///
/// ```
/// # use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// # use std::sync::atomic::{AtomicUsize, Ordering};
/// use mtls_core::{CachedJwtSvids, JwtSvidFuture, JwtSvidSource, JwtToken};
///
/// /// Counts how often it is asked.
/// #[derive(Default)]
/// struct Counting(AtomicUsize);
///
/// impl JwtSvidSource for Counting {
///     fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a> {
///         self.0.fetch_add(1, Ordering::SeqCst);
///         Box::pin(async move { Ok(mint(audience)) })
///     }
/// }
/// # fn mint(audience: &[String]) -> JwtToken {
/// #     use base64::Engine;
/// #     let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
/// #     let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 300;
/// #     let claims = format!(r#"{{"sub":"spiffe://example.org/web","aud":{audience:?},"exp":{exp}}}"#);
/// #     let token = format!("{}.{}.AAAA", b64(r#"{"alg":"ES256","kid":"k1"}"#), b64(&claims));
/// #     JwtToken::from_compact(&token).unwrap()
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mtls_core::JwtSourceError> {
/// let cache = CachedJwtSvids::new(Counting::default());
/// let api = vec!["spiffe://example.org/api".to_string()];
/// let first = cache.fetch_jwt_svid(&api).await?;
/// let again = cache.fetch_jwt_svid(&api).await?;
/// assert_eq!(first, again, "reused: most of its lifetime is left");
/// assert_eq!(cache.get_ref().0.load(Ordering::SeqCst), 1);
/// assert_eq!(cache.generation(), 1);
/// # Ok(()) }
/// ```
pub struct CachedJwtSvids<S> {
    source: S,
    refresh_remaining: f64,
    max_entries: usize,
    entries: Mutex<HashMap<Vec<String>, Arc<Entry>>>,
    clock: AtomicU64,
    published: Published<(), JwtSourceError>,
}

/// The cache of one audience set.
struct Entry {
    slot: Mutex<Slot>,
    /// Held by the one caller fetching.
    fetching: tokio::sync::Mutex<()>,
    /// When it was last asked for (the cache's clock), for eviction.
    last_used: AtomicU64,
}

#[derive(Default)]
struct Slot {
    token: Option<Held>,
    /// Bumped at every fetch, whatever its outcome.
    attempts: u64,
    /// The outcome of the last fetch, if it failed.
    failure: Option<JwtSourceError>,
    /// No new attempt before this while a valid token serves.
    retry_at: Option<Instant>,
}

#[derive(Clone)]
struct Held {
    token: JwtToken,
    refresh_at: SystemTime,
}

/// What a caller finds in a slot.
enum Found {
    /// A token to return now.
    Serve(JwtToken),
    /// Nothing usable: fetch.
    Fetch,
}

impl Slot {
    /// The token if it is not due for a refresh, or is due but a recent
    /// failure defers the retry.
    fn fresh(&self, now: SystemTime) -> Found {
        match &self.token {
            Some(held) if now < held.refresh_at => Found::Serve(held.token.clone()),
            Some(held)
                if held.token.expiry() > now
                    && self.retry_at.is_some_and(|at| Instant::now() < at) =>
            {
                Found::Serve(held.token.clone())
            }
            _ => Found::Fetch,
        }
    }

    /// The token if it has not expired.
    fn valid(&self, now: SystemTime) -> Option<JwtToken> {
        self.token
            .as_ref()
            .filter(|held| held.token.expiry() > now)
            .map(|held| held.token.clone())
    }
}

impl<S> CachedJwtSvids<S> {
    /// A cache in front of `source`, refreshing at
    /// [`DEFAULT_REFRESH_REMAINING`] of a token's lifetime left, for at most
    /// [`DEFAULT_MAX_AUDIENCE_SETS`] audience sets.
    pub fn new(source: S) -> Self {
        Self {
            source,
            refresh_remaining: DEFAULT_REFRESH_REMAINING,
            max_entries: DEFAULT_MAX_AUDIENCE_SETS,
            entries: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
            published: Published::new(()),
        }
    }

    /// Fetches a new token when less than `fraction` of its lifetime is
    /// left (from 0, at expiry, to 0.95; default one half).
    pub fn refresh_when_remaining(mut self, fraction: f64) -> Self {
        self.refresh_remaining = if fraction.is_nan() {
            DEFAULT_REFRESH_REMAINING
        } else {
            fraction.clamp(0.0, 0.95)
        };
        self
    }

    /// Keeps tokens for at most `max` audience sets (at least one).
    pub fn max_audience_sets(mut self, max: usize) -> Self {
        self.max_entries = max.max(1);
        self
    }

    /// The source behind the cache.
    pub fn get_ref(&self) -> &S {
        &self.source
    }

    /// How many audience sets have an entry now.
    pub fn len(&self) -> usize {
        self.lock_entries().len()
    }

    /// Whether no audience set has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cached token: the next call of each audience set
    /// fetches.
    pub fn clear(&self) {
        self.lock_entries().clear();
    }

    /// Bumped at every token fetched (0: none yet).
    pub fn generation(&self) -> u64 {
        self.published.generation()
    }

    /// A receiver of the generation, woken at every token fetched.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.published.changes()
    }

    /// Generation, failed fetches and the last failure (typed).
    pub fn status(&self) -> SourceStatus<JwtSourceError> {
        self.published.status()
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<String>, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `audience`, made (evicting the least recently used
    /// one past the bound) if there is none.
    fn entry(&self, audience: &[String]) -> Arc<Entry> {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.lock_entries();
        if let Some(entry) = entries.get(audience) {
            entry.last_used.store(tick, Ordering::Relaxed);
            return entry.clone();
        }
        while entries.len() >= self.max_entries {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => {
                    entries.remove(&key);
                }
                None => break,
            }
        }
        let entry = Arc::new(Entry {
            slot: Mutex::new(Slot::default()),
            fetching: tokio::sync::Mutex::new(()),
            last_used: AtomicU64::new(tick),
        });
        entries.insert(audience.to_vec(), entry.clone());
        entry
    }
}

impl Entry {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: JwtSvidSource> CachedJwtSvids<S> {
    /// A token for `audience`: the cached one, or a new one.
    pub async fn get(&self, audience: &[String]) -> Result<JwtToken, JwtSourceError> {
        self.get_with_clock(audience, SystemTime::now).await
    }

    async fn get_with_clock(
        &self,
        audience: &[String],
        clock: impl Fn() -> SystemTime,
    ) -> Result<JwtToken, JwtSourceError> {
        if audience.is_empty() {
            return Err(JwtSourceError::NoAudience);
        }
        let entry = self.entry(audience);
        let (attempts, valid) = {
            let slot = entry.slot();
            let now = clock();
            if let Found::Serve(token) = slot.fresh(now) {
                return Ok(token);
            }
            (slot.attempts, slot.valid(now))
        };
        let _fetching = match entry.fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // A refresh is in flight: a valid token serves meanwhile.
                if let Some(token) = valid {
                    return Ok(token);
                }
                entry.fetching.lock().await
            }
        };
        {
            // Another caller fetched while this one waited: its outcome is
            // this one's too.
            let slot = entry.slot();
            if slot.attempts != attempts {
                let now = clock();
                if let Found::Serve(token) = slot.fresh(now) {
                    return Ok(token);
                }
                if let Some(token) = slot.valid(now) {
                    return Ok(token);
                }
                if let Some(failure) = &slot.failure {
                    return Err(failure.clone());
                }
            }
        }
        let fetched = self
            .source
            .fetch_jwt_svid(audience)
            .await
            .and_then(|token| {
                JwtSourceError::check(audience, &token, clock())?;
                Ok(token)
            });
        let now = clock();
        let mut slot = entry.slot();
        slot.attempts = slot.attempts.wrapping_add(1);
        match fetched {
            Ok(token) => {
                let refresh_at = refresh_at(now, token.expiry(), self.refresh_remaining);
                slot.token = Some(Held {
                    token: token.clone(),
                    refresh_at,
                });
                slot.failure = None;
                slot.retry_at = None;
                drop(slot);
                self.published.publish(());
                Ok(token)
            }
            Err(error) => {
                slot.failure = Some(error.clone());
                slot.retry_at = Instant::now().checked_add(RETRY_DELAY);
                let valid = slot.valid(now);
                drop(slot);
                self.published.refuse(error.clone());
                match valid {
                    Some(token) => {
                        tracing::warn!(error = %crate::ErrorChain(&error), audience = ?audience, "mtls: JWT-SVID refresh failed; the current token keeps serving until it expires");
                        Ok(token)
                    }
                    None => {
                        tracing::warn!(error = %crate::ErrorChain(&error), audience = ?audience, "mtls: no JWT-SVID");
                        Err(error)
                    }
                }
            }
        }
    }
}

/// When a token received at `received` and expiring at `expiry` is due
/// for a refresh: when `remaining` of that lifetime is left.
fn refresh_at(received: SystemTime, expiry: SystemTime, remaining: f64) -> SystemTime {
    let lifetime = expiry.duration_since(received).unwrap_or_default();
    expiry
        .checked_sub(lifetime.mul_f64(remaining))
        .unwrap_or(received)
}

impl<S: JwtSvidSource> JwtSvidSource for CachedJwtSvids<S> {
    fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a> {
        Box::pin(self.get(audience))
    }
}

impl<S> fmt::Debug for CachedJwtSvids<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedJwtSvids")
            .field("refresh_remaining", &self.refresh_remaining)
            .field("max_audience_sets", &self.max_entries)
            .field("audience_sets", &self.len())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use std::sync::atomic::AtomicUsize;
    use std::time::UNIX_EPOCH;

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn token(audience: &[String], exp: SystemTime) -> JwtToken {
        let exp = exp.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims =
            format!(r#"{{"sub":"spiffe://example.org/web","aud":{audience:?},"exp":{exp}}}"#);
        let compact = format!(
            "{}.{}.AAAA",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        );
        JwtToken::from_compact(&compact).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Mints tokens valid 100 s from the test clock, or fails, counting.
    struct Fake {
        calls: AtomicUsize,
        now: Arc<AtomicU64>,
        fail: std::sync::atomic::AtomicBool,
        /// Audience to put in the token instead of the one asked for.
        audience: Option<Vec<String>>,
        gate: tokio::sync::Semaphore,
    }

    impl Fake {
        fn new(now: Arc<AtomicU64>) -> Self {
            Self {
                calls: AtomicUsize::new(0),
                now,
                fail: false.into(),
                audience: None,
                gate: tokio::sync::Semaphore::new(1000),
            }
        }
    }

    impl JwtSvidSource for Fake {
        fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                let _permit = self.gate.acquire().await;
                if self.fail.load(Ordering::SeqCst) {
                    return Err(JwtSourceError::upstream(
                        audience,
                        std::io::Error::other("down"),
                    ));
                }
                let aud = self.audience.clone().unwrap_or_else(|| audience.to_vec());
                Ok(token(&aud, at(self.now.load(Ordering::SeqCst) + 100)))
            })
        }
    }

    fn aud(a: &str) -> Vec<String> {
        vec![a.to_owned()]
    }

    fn clock(now: &Arc<AtomicU64>) -> impl Fn() -> SystemTime + '_ {
        move || at(now.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_token_is_reused_until_half_its_lifetime_is_left() {
        let now = Arc::new(AtomicU64::new(0));
        let cache = CachedJwtSvids::new(Fake::new(now.clone()));
        let first = cache.get_with_clock(&aud("a"), clock(&now)).await;
        let first = first.unwrap_or_else(|e| panic!("{e}"));
        now.store(49, Ordering::SeqCst);
        let again = cache.get_with_clock(&aud("a"), clock(&now)).await;
        assert_eq!(again.ok(), Some(first.clone()));
        assert_eq!(cache.get_ref().calls.load(Ordering::SeqCst), 1);
        now.store(51, Ordering::SeqCst);
        let renewed = cache.get_with_clock(&aud("a"), clock(&now)).await;
        let renewed = renewed.unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(renewed, first);
        assert_eq!(cache.get_ref().calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.generation(), 2);
        // Another audience set: its own token.
        let other = cache.get_with_clock(&aud("b"), clock(&now)).await;
        assert_eq!(other.map(|t| t.audience().to_vec()).ok(), Some(aud("b")));
    }

    #[tokio::test]
    async fn the_fraction_is_configurable() {
        let now = Arc::new(AtomicU64::new(0));
        let cache = CachedJwtSvids::new(Fake::new(now.clone())).refresh_when_remaining(0.2);
        let _ = cache.get_with_clock(&aud("a"), clock(&now)).await;
        now.store(79, Ordering::SeqCst);
        let _ = cache.get_with_clock(&aud("a"), clock(&now)).await;
        assert_eq!(cache.get_ref().calls.load(Ordering::SeqCst), 1);
        now.store(81, Ordering::SeqCst);
        let _ = cache.get_with_clock(&aud("a"), clock(&now)).await;
        assert_eq!(cache.get_ref().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_valid_token_and_an_expired_one_is_never_served() {
        let now = Arc::new(AtomicU64::new(0));
        let cache = CachedJwtSvids::new(Fake::new(now.clone()));
        let first = cache.get_with_clock(&aud("a"), clock(&now)).await.ok();
        cache.get_ref().fail.store(true, Ordering::SeqCst);
        now.store(60, Ordering::SeqCst);
        let kept = cache.get_with_clock(&aud("a"), clock(&now)).await.ok();
        assert_eq!(kept, first, "still valid: kept");
        let status = cache.status();
        assert_eq!(status.failures, 1);
        assert!(matches!(
            status.last_error,
            Some(JwtSourceError::Upstream { .. })
        ));
        now.store(100, Ordering::SeqCst);
        let err = cache.get_with_clock(&aud("a"), clock(&now)).await;
        assert!(
            matches!(err, Err(JwtSourceError::Upstream { .. })),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_token_for_another_audience_is_refused() {
        let now = Arc::new(AtomicU64::new(0));
        let mut fake = Fake::new(now.clone());
        fake.audience = Some(aud("other"));
        let cache = CachedJwtSvids::new(fake);
        let err = cache.get_with_clock(&aud("a"), clock(&now)).await;
        assert!(
            matches!(err, Err(JwtSourceError::WrongAudience { .. })),
            "{err:?}"
        );
        let err = cache.get_with_clock(&[], clock(&now)).await;
        assert!(matches!(err, Err(JwtSourceError::NoAudience)), "{err:?}");
    }

    #[tokio::test]
    async fn an_expired_token_from_the_source_is_refused() {
        let now = Arc::new(AtomicU64::new(0));
        let cache = CachedJwtSvids::new(Fake::new(now.clone()));
        // The source mints at its clock (0); the cache checks at 200.
        let err = cache.get_with_clock(&aud("a"), || at(200)).await;
        assert!(
            matches!(err, Err(JwtSourceError::Expired { .. })),
            "{err:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_fetch() {
        let now = Arc::new(AtomicU64::new(0));
        let fake = Fake::new(now.clone());
        // Hold the fetch until every caller is waiting on it.
        fake.gate.forget_permits(1000);
        let cache = Arc::new(CachedJwtSvids::new(fake));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get(&aud("a")).await })
            })
            .collect();
        while cache.get_ref().calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.get_ref().gate.add_permits(1000);
        let mut tokens = Vec::new();
        for caller in callers {
            let token = caller.await.unwrap_or_else(|e| panic!("{e}"));
            tokens.push(token.unwrap_or_else(|e| panic!("{e}")));
        }
        assert_eq!(cache.get_ref().calls.load(Ordering::SeqCst), 1);
        assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    }

    #[tokio::test]
    async fn the_number_of_audience_sets_is_bounded() {
        let now = Arc::new(AtomicU64::new(0));
        let cache = CachedJwtSvids::new(Fake::new(now.clone())).max_audience_sets(2);
        for a in ["a", "b", "a", "c"] {
            let _ = cache.get_with_clock(&aud(a), clock(&now)).await;
        }
        assert_eq!(cache.len(), 2);
        // "b" was the least recently used: gone; "a" stayed.
        let calls = cache.get_ref().calls.load(Ordering::SeqCst);
        let _ = cache.get_with_clock(&aud("a"), clock(&now)).await;
        assert_eq!(cache.get_ref().calls.load(Ordering::SeqCst), calls);
        let _ = cache.get_with_clock(&aud("b"), clock(&now)).await;
        assert_eq!(cache.get_ref().calls.load(Ordering::SeqCst), calls + 1);
    }

    #[test]
    fn refresh_is_due_when_the_fraction_is_left() {
        assert_eq!(refresh_at(at(0), at(100), 0.5), at(50));
        assert_eq!(refresh_at(at(0), at(100), 0.0), at(100));
        // Received after expiry: due at once.
        assert_eq!(refresh_at(at(200), at(100), 0.5), at(100));
    }
}
