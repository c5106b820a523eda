//! SVIDs and bundles from the SPIFFE Workload API, as a SPIRE agent serves
//! it (feature `spire`).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use spiffe::x509_source::{
    MetricsErrorKind, MetricsRecorder, SvidPicker, X509Source, X509SourceError, X509SourceState,
    X509SourceUpdates,
};
use tokio::sync::watch;

use super::jwt::{CachedJwtSvids, JwtSourceError, JwtSvidFuture, JwtSvidSource};
use super::spire_jwt::{watch_bundles, SpireJwt, WorkloadApiJwt};
use crate::bundle::{BundleError, BundleSet, X509Bundle};
use crate::crl::CrlSet;
use crate::id::{SpiffeId, SpiffeIdError, TrustDomain};
use crate::jwt::JwtBundleSet;
use crate::source::{
    AbortOnDrop, BundleSource, JwtBundleSource, Published, SourceState, SourceStatus, SvidSource,
};
use crate::svid::{SvidError, X509Svid};
use crate::verify::{PeerRole, VerifyError};

/// The environment variable naming the Workload API endpoint, as the SPIFFE
/// Workload Endpoint specification defines it (`unix:///path/to/api.sock`).
pub const SPIFFE_ENDPOINT_SOCKET: &str = "SPIFFE_ENDPOINT_SOCKET";

/// How long [`SpireSource::connect`] waits for the first usable SVID unless
/// told otherwise.
pub const DEFAULT_INITIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a [`SpireSource`] does when the Workload API withdraws the
/// workload's material (answers `PermissionDenied`, as a SPIRE agent does
/// when the workload has no registration entry, or "no identity issued"
/// while it restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WithdrawalPolicy {
    /// Keep presenting the last good SVID and trusting the last good bundles
    /// until the agent serves again (as go-spiffe's `X509Source` does). The
    /// SVID still expires when its certificate says: peers reject it then.
    /// An agent that restarts answers "no identity issued" for a moment;
    /// this policy rides that out.
    #[default]
    KeepServing,
    /// Present no SVID and trust no bundle until the agent serves again (as
    /// the `spiffe` crate's `X509Source` does): every handshake fails
    /// meanwhile.
    FailClosed,
}

/// How to connect a [`SpireSource`]; from [`SpireSource::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SpireSourceBuilder {
    endpoint: Option<String>,
    initial_timeout: Option<Duration>,
    spiffe_id: Option<SpiffeId>,
    reconnect: Option<(Duration, Duration)>,
    withdrawal: WithdrawalPolicy,
    jwt_bundles: bool,
}

impl Default for SpireSourceBuilder {
    fn default() -> Self {
        Self {
            endpoint: None,
            initial_timeout: Some(DEFAULT_INITIAL_TIMEOUT),
            spiffe_id: None,
            reconnect: None,
            withdrawal: WithdrawalPolicy::default(),
            jwt_bundles: false,
        }
    }
}

impl SpireSourceBuilder {
    /// The Workload API endpoint, such as
    /// `unix:///run/spire/agent/public/api.sock` (the `spiffe` crate also
    /// takes `unix:/path` and `tcp://ip:port`). Default: the value of
    /// [`SPIFFE_ENDPOINT_SOCKET`].
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    crate::__setters! {
        /// How long [`connect`](Self::connect) waits for the first SVID that
        /// passes every check; `None` waits for ever. Default
        /// [`DEFAULT_INITIAL_TIMEOUT`].
        initial_timeout: Option<Duration>;
    }

    /// Serves the SVID of this SPIFFE ID when the Workload API hands out
    /// several; `connect` waits until it is among them. Default: the first
    /// SVID of each response, which the Workload API specification makes
    /// the default one.
    pub fn spiffe_id(mut self, id: SpiffeId) -> Self {
        self.spiffe_id = Some(id);
        self
    }

    /// The delays between reconnection attempts to the Workload API,
    /// growing from `min` to `max` (default: the `spiffe` crate's, 200 ms
    /// to 10 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect = Some((min, max));
        self
    }

    /// What to do when the Workload API withdraws the material (default
    /// [`WithdrawalPolicy::KeepServing`]).
    pub fn on_withdrawal(mut self, policy: WithdrawalPolicy) -> Self {
        self.withdrawal = policy;
        self
    }

    crate::__setters! {
        /// Also follows the Workload API's JWT bundles (`FetchJWTBundles`), so
        /// that the source is a [`JwtBundleSource`] for validating JWT-SVIDs:
        /// [`connect`](Self::connect) then waits (within the initial timeout)
        /// for the first JWT bundles too. Off by default: the source then
        /// serves no JWT bundle (and validates no token), and opens no JWT
        /// bundle stream. Fetching JWT-SVIDs to send needs no option.
        jwt_bundles: bool;
    }

    /// Connects, waits for the first SVID and bundles that pass every
    /// check, and keeps following the Workload API's updates from a task on
    /// the current tokio runtime.
    pub async fn connect(self) -> Result<SpireSource, SpireSourceError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SpireSourceError::NoRuntime);
        }
        let endpoint = match self.endpoint {
            Some(endpoint) => endpoint,
            None => {
                std::env::var(SPIFFE_ENDPOINT_SOCKET).map_err(|_| SpireSourceError::NoEndpoint)?
            }
        };
        if endpoint.trim().is_empty() {
            return Err(SpireSourceError::NoEndpoint);
        }
        // A timeout too large to add to the clock is no deadline at all.
        let deadline = self
            .initial_timeout
            .and_then(|timeout| tokio::time::Instant::now().checked_add(timeout));

        let api_errors = Arc::new(AtomicU64::new(0));
        let mut builder = X509Source::builder()
            .endpoint(&endpoint)
            .metrics(Arc::new(ErrorCounter(api_errors.clone())));
        if let Some(id) = &self.spiffe_id {
            builder = builder.picker(IdPicker(id.as_str().to_owned()));
        }
        if let Some((min, max)) = self.reconnect {
            builder = builder.reconnect_backoff(min, max);
        }
        if let Some(timeout) = self.initial_timeout {
            builder = builder.initial_sync_timeout(timeout);
        }
        let x509 = builder
            .build()
            .await
            .map_err(|e| initial_error(e, &endpoint, self.initial_timeout))?;

        // Subscribe before reading the state, so no update falls in between.
        let mut updates = x509.updated();
        let mut failures = 0u64;
        let mut last_error = None;
        let (material, revision) = loop {
            let state = x509.state();
            match convert(&state) {
                Ok(material) => break (material, state.revision()),
                Err(e) => {
                    tracing::warn!(endpoint = %endpoint, error = %crate::ErrorChain(&e), "mtls: the first SVID from the Workload API is refused; waiting for another");
                    failures += 1;
                    last_error = Some(e);
                }
            }
            match until(deadline, updates.changed()).await {
                Some(Ok(_)) => {}
                Some(Err(_)) => return Err(last_error.unwrap_or(SpireSourceError::Closed)),
                None => {
                    return Err(last_error.unwrap_or(SpireSourceError::Timeout {
                        endpoint,
                        timeout: self.initial_timeout.unwrap_or_default(),
                    }))
                }
            }
        };

        if let Some(svid) = &material.svid {
            tracing::info!(endpoint = %endpoint, spiffe_id = %svid.spiffe_id(), "mtls: SVID and bundles received from the Workload API");
        }
        let published = Published::new(material);
        for _ in 0..failures {
            if let Some(e) = &last_error {
                published.refuse(e.clone());
            }
        }
        let shared = Arc::new(Shared {
            endpoint,
            withdrawal_policy: self.withdrawal,
            published,
            withdrawal: Mutex::new(None),
            api_errors,
        });
        let task = tokio::spawn(follow(shared.clone(), x509.clone(), updates, revision));
        let jwt = connect_jwt(
            &shared.endpoint,
            self.spiffe_id.clone(),
            self.jwt_bundles,
            self.withdrawal,
        );
        let source = SpireSource {
            inner: Arc::new(Inner {
                shared,
                _x509: x509,
                _task: AbortOnDrop(task.abort_handle()),
                jwt,
            }),
        };
        source
            .first_jwt_bundles(deadline, self.initial_timeout)
            .await?;
        Ok(source)
    }
}

/// The SVID and trust bundles a SPIRE agent (or any SPIFFE Workload API
/// server) hands this workload, kept current as it rotates them.
///
/// Built on the `spiffe` crate's [`X509Source`], which connects to the
/// Workload API, reconnects with backoff, and streams updates. Each update
/// is converted to this crate's types and checked again before it serves:
/// the SVID must pass [`X509Svid::new`] (exactly one SPIFFE ID URI SAN with
/// a path, not a CA, digitalSignature, private key matching the leaf), every
/// bundle must be a set of valid authorities, and the SVID must verify
/// against the bundle of its own trust domain now. An update that fails is
/// refused: it is logged (`tracing`), counted ([`status`](Self::status)),
/// and the last good SVID and bundles
/// keep serving. The `spiffe` crate refuses some malformed updates itself
/// before this source sees them (two URI SANs, a bad key encoding...): it
/// then reconnects, and [`workload_api_errors`](Self::workload_api_errors)
/// counts it.
///
/// - **Bundles**: one [`X509Bundle`] per trust domain of the response, its
///   own and each federated one; never merged (a peer is verified only
///   against the bundle of its own trust domain). A federated trust domain
///   that leaves the response leaves the set. The names come through the
///   `spiffe` crate, which folds them to lowercase, and which lets a
///   federated entry for the workload's own trust domain replace that
///   domain's bundle (the SVID must then still verify against it).
/// - **Which SVID**: the first of the response (the default one of the
///   Workload API specification), or the one of
///   [`SpireSourceBuilder::spiffe_id`].
/// - **CRLs**: not carried. The `spiffe` crate drops the Workload API's
///   `crl` field, so this is no [`CrlSource`](crate::CrlSource); give the
///   config builders CRLs from elsewhere with `.crls(..)` if needed.
/// - **Withdrawal** by the agent: see [`WithdrawalPolicy`].
///
/// - **JWT-SVIDs**: it is a [`JwtSvidSource`] (tokens by audience from
///   `FetchJWTSVID`, cached and refreshed at half their lifetime) for
///   mtls-tower's client layer, and, with
///   [`SpireSourceBuilder::jwt_bundles`], a [`JwtBundleSource`] (the
///   `FetchJWTBundles` stream) for validating tokens.
///
/// It is an [`SvidSource`] and a [`BundleSource`]; the rustls configs read
/// it at every handshake, so a rotation needs no new config. Cloning is
/// cheap and clones share one connection; the background task stops when
/// the last clone is dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use mtls_core::{authorize, MtlsServerConfig, SpireSource, TrustDomain};
///
/// // SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/agent/public/api.sock
/// let spire = SpireSource::connect().await?;
/// let server = MtlsServerConfig::builder(spire.clone(), spire.clone())
///     .authorizer(authorize::member_of(TrustDomain::new("example.org")?))
///     .build()?;
///
/// // Or with options:
/// let spire = SpireSource::builder()
///     .endpoint("unix:///run/spire/agent/public/api.sock")
///     .initial_timeout(Some(std::time::Duration::from_secs(5)))
///     .connect()
///     .await?;
/// let mut rotations = spire.changes();
/// rotations.changed().await?;
/// if let Some(svid) = spire.svid() {
///     println!("now serving {}", svid.spiffe_id());
/// }
///
/// // JWT-SVIDs to send, by audience (cached, fetched again at half life),
/// // and the JWT bundles to validate received ones.
/// use mtls_core::{JwtSvidSource, JwtSvidValidator};
/// let spire = SpireSource::builder().jwt_bundles(true).connect().await?;
/// let token = spire.fetch_jwt_svid(&["spiffe://example.org/api".into()]).await?;
/// println!("Authorization: Bearer {}", token.token());
/// let caller = JwtSvidValidator::new("spiffe://example.org/reports")
///     .validate_from(token.token(), &spire);
/// # let _ = caller;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SpireSource {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// Kept so the connection lives as long as a clone of the source does,
    /// even once the task is gone.
    _x509: X509Source,
    /// The task holds the other handle of the `X509Source`; once both are
    /// dropped the `spiffe` crate cancels its supervisor.
    _task: AbortOnDrop,
    /// JWT-SVIDs (cached) and JWT bundles (if watched).
    jwt: SpireJwt,
}

struct Shared {
    endpoint: String,
    withdrawal_policy: WithdrawalPolicy,
    published: Published<Material, SpireSourceError>,
    withdrawal: Mutex<Option<String>>,
    api_errors: Arc<AtomicU64>,
}

struct Material {
    /// `None` only while withdrawn under [`WithdrawalPolicy::FailClosed`].
    svid: Option<X509Svid>,
    bundles: BundleSet,
}

impl SpireSource {
    /// Connects to the endpoint of `SPIFFE_ENDPOINT_SOCKET` with the default
    /// options (see [`SpireSource::builder`]).
    pub async fn connect() -> Result<Self, SpireSourceError> {
        Self::builder().connect().await
    }

    /// Connects to `endpoint` (`unix:///path/to/api.sock`) with the default
    /// options.
    pub async fn connect_to(endpoint: impl Into<String>) -> Result<Self, SpireSourceError> {
        Self::builder().endpoint(endpoint).connect().await
    }

    /// Options: endpoint, first-SVID timeout, SPIFFE ID to serve, backoff,
    /// withdrawal policy.
    pub fn builder() -> SpireSourceBuilder {
        SpireSourceBuilder::default()
    }

    /// The SVID serving now (`None` only while the material is withdrawn
    /// under [`WithdrawalPolicy::FailClosed`]).
    pub fn svid(&self) -> Option<X509Svid> {
        self.inner.shared.published.load().svid.clone()
    }

    /// The bundles serving now, one per trust domain.
    pub fn bundles(&self) -> BundleSet {
        self.inner.shared.published.load().bundles.clone()
    }

    /// Bumped each time new material starts serving (or, under
    /// [`WithdrawalPolicy::FailClosed`], stops) and when the state changes.
    pub fn generation(&self) -> u64 {
        self.inner.shared.published.generation()
    }

    /// A receiver of the generation, woken at every change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.shared.published.changes()
    }

    /// Generation, refused updates, the last refusal, and the state:
    /// ready, withdrawn (see [`withdrawal`](Self::withdrawal)) or closed
    /// (the `spiffe` crate's source stopped for good; the last good
    /// material keeps serving until it expires).
    pub fn status(&self) -> SourceStatus<SpireSourceError> {
        self.inner.shared.published.status()
    }

    /// How many errors the `spiffe` crate's client reported: failed
    /// connections, streams that broke or ended, responses it could not
    /// parse. Each is followed by a reconnection with backoff.
    pub fn workload_api_errors(&self) -> u64 {
        self.inner.shared.api_errors.load(Ordering::Relaxed)
    }

    /// Why the Workload API withdrew the material, while it is withdrawn.
    pub fn withdrawal(&self) -> Option<String> {
        self.inner
            .shared
            .withdrawal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The Workload API endpoint.
    pub fn endpoint(&self) -> &str {
        &self.inner.shared.endpoint
    }
}

/// The JWT half: JWT-SVIDs to send, by audience, and the JWT bundles.
impl SpireSource {
    /// The JWT bundles serving now, one per trust domain: empty unless
    /// [`SpireSourceBuilder::jwt_bundles`] was set.
    pub fn jwt_bundles(&self) -> JwtBundleSet {
        match &self.inner.jwt.bundles {
            Some(published) => (*published.load()).clone(),
            None => JwtBundleSet::new(),
        }
    }

    /// Generation, refused updates, the last refusal and the state of the
    /// JWT bundles, if they are watched.
    pub fn jwt_bundles_status(&self) -> Option<SourceStatus<SpireSourceError>> {
        self.inner.jwt.bundles.as_ref().map(Published::status)
    }

    /// A receiver of the JWT bundles' generation, if they are watched.
    pub fn jwt_bundles_changes(&self) -> Option<watch::Receiver<u64>> {
        self.inner.jwt.bundles.as_ref().map(Published::changes)
    }

    /// The JWT-SVID cache: its generation moves at every token fetched;
    /// failed fetches are counted with the last error (a typed
    /// [`JwtSourceError`], whose upstream error is a
    /// [`SpireSourceError`]).
    pub fn jwt_svid_status(&self) -> SourceStatus<JwtSourceError> {
        self.inner.jwt.svids.status()
    }

    async fn first_jwt_bundles(
        &self,
        deadline: Option<tokio::time::Instant>,
        timeout: Option<Duration>,
    ) -> Result<(), SpireSourceError> {
        let Some(published) = &self.inner.jwt.bundles else {
            return Ok(());
        };
        let mut changes = published.changes();
        while published.load().is_empty() {
            match until(deadline, changes.changed()).await {
                Some(Ok(())) => {}
                Some(Err(_)) => return Err(SpireSourceError::Closed),
                None => {
                    return Err(published.last_error().unwrap_or_else(|| {
                        SpireSourceError::Timeout {
                            endpoint: self.endpoint().to_owned(),
                            timeout: timeout.unwrap_or_default(),
                        }
                    }))
                }
            }
        }
        Ok(())
    }
}

/// The output of `wait`, or `None` when `deadline` (if any) comes first.
async fn until<F: Future>(deadline: Option<tokio::time::Instant>, wait: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, wait).await.ok(),
        None => Some(wait.await),
    }
}

/// The JWT half of a source connected to `endpoint`.
fn connect_jwt(
    endpoint: &str,
    spiffe_id: Option<SpiffeId>,
    watch_bundles_too: bool,
    policy: WithdrawalPolicy,
) -> SpireJwt {
    let svids = CachedJwtSvids::new(WorkloadApiJwt::new(endpoint.to_owned(), spiffe_id));
    let (bundles, task) = if watch_bundles_too {
        let published = Published::new(JwtBundleSet::new());
        let task = watch_bundles(endpoint.to_owned(), policy, published.clone());
        (Some(published), Some(task))
    } else {
        (None, None)
    };
    SpireJwt {
        svids,
        bundles,
        _task: task,
    }
}

/// JWT-SVIDs from the Workload API (`FetchJWTSVID`, for the SPIFFE ID of
/// [`SpireSourceBuilder::spiffe_id`] if set, else the default identity),
/// behind a [`CachedJwtSvids`]: one token per audience set, fetched again
/// when half its lifetime is left, one fetch at a time. Each token is read
/// with [`JwtToken::from_compact`](crate::JwtToken::from_compact): a
/// malformed one is refused ([`JwtSourceError::Malformed`]) and the last
/// good token keeps serving while it is valid. The connection is opened
/// at the first fetch and again after an error.
impl JwtSvidSource for SpireSource {
    fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a> {
        self.inner.jwt.svids.fetch_jwt_svid(audience)
    }
}

/// The Workload API's JWT bundles (`FetchJWTBundles`), when
/// [`SpireSourceBuilder::jwt_bundles`] is set; an empty set otherwise.
/// Each update is read again with this crate's rules (every key a valid
/// JWT authority, one bundle per trust domain); a refused one keeps the
/// last good set serving. The generation moves when the set changes.
impl JwtBundleSource for SpireSource {
    fn current_jwt_bundles(&self) -> JwtBundleSet {
        self.jwt_bundles()
    }

    fn generation(&self) -> Option<u64> {
        Some(
            self.inner
                .jwt
                .bundles
                .as_ref()
                .map_or(0, Published::generation),
        )
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        self.jwt_bundles_changes()
    }
}

tracked_source!(SpireSource, SvidSource, fn current_svid(this) -> Option<X509Svid> {
    this.svid()
});

tracked_source!(SpireSource, BundleSource, fn current_bundles(this) -> BundleSet {
    this.bundles()
});

impl fmt::Debug for SpireSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.inner.shared.published.load();
        f.debug_struct("SpireSource")
            .field("endpoint", &self.inner.shared.endpoint)
            .field("svid", &current.svid)
            .field("trust_domains", &current.bundles.len())
            .field("status", &self.status())
            .field("withdrawal", &self.withdrawal())
            .finish_non_exhaustive()
    }
}

/// Follows the `spiffe` crate's update notifications until it closes.
async fn follow(
    shared: Arc<Shared>,
    x509: X509Source,
    mut updates: X509SourceUpdates,
    mut revision: u64,
) {
    loop {
        if updates.changed().await.is_err() {
            shared.published.set_state(SourceState::Closed);
            tracing::warn!(endpoint = %shared.endpoint, "mtls: the Workload API source closed; the last good SVID and bundles keep serving");
            return;
        }
        let state = x509.state();
        if state.revision() == revision {
            continue;
        }
        revision = state.revision();
        shared.apply(&state);
    }
}

impl Shared {
    fn apply(&self, state: &X509SourceState) {
        if let Some(reason) = state.withdrawal() {
            let reason = reason.to_string();
            tracing::warn!(endpoint = %self.endpoint, reason = %reason, policy = ?self.withdrawal_policy, "mtls: the Workload API withdrew this workload's SVID and bundles");
            *self
                .withdrawal
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(reason);
            if self.withdrawal_policy == WithdrawalPolicy::FailClosed {
                self.published.publish(Material {
                    svid: None,
                    bundles: BundleSet::new(),
                });
            }
            self.published.set_state(SourceState::Withdrawn);
            return;
        }
        match convert(state) {
            Ok(material) => {
                if let Some(svid) = &material.svid {
                    tracing::info!(endpoint = %self.endpoint, spiffe_id = %svid.spiffe_id(), trust_domains = material.bundles.len(), "mtls: new SVID and bundles from the Workload API");
                }
                *self
                    .withdrawal
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                self.published.publish(material);
                self.published.set_state(SourceState::Ready);
            }
            Err(error) => {
                tracing::warn!(endpoint = %self.endpoint, error = %crate::ErrorChain(&error), "mtls: update from the Workload API refused; the last good SVID and bundles keep serving");
                self.published.refuse(error);
            }
        }
    }
}

/// Converts one observation of the `spiffe` crate's source into ours, with
/// every check of this crate.
fn convert(state: &X509SourceState) -> Result<Material, SpireSourceError> {
    if let Some(reason) = state.withdrawal() {
        return Err(SpireSourceError::Withdrawn {
            reason: reason.to_string(),
        });
    }
    let context = state.context().map_err(|e| SpireSourceError::NoSvid {
        reason: e.to_string(),
    })?;
    let selected = state.svid().map_err(|e| SpireSourceError::NoSvid {
        reason: e.to_string(),
    })?;

    let chain = selected
        .cert_chain()
        .iter()
        .map(|cert| CertificateDer::from(cert.as_bytes().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        selected.private_key().as_bytes().to_vec(),
    ));
    let svid = X509Svid::new(chain, key).map_err(|source| SpireSourceError::Svid {
        spiffe_id: selected.spiffe_id().to_string(),
        source,
    })?;

    let mut bundles = BundleSet::new();
    for (name, theirs) in context.bundle_set().iter() {
        let trust_domain =
            TrustDomain::new(name.as_str()).map_err(|source| SpireSourceError::TrustDomain {
                name: name.to_string(),
                source,
            })?;
        let authorities = theirs
            .authorities()
            .iter()
            .map(|cert| CertificateDer::from(cert.as_bytes().to_vec()));
        let bundle =
            X509Bundle::from_authorities(trust_domain.clone(), authorities).map_err(|source| {
                SpireSourceError::Bundle {
                    trust_domain: trust_domain.clone(),
                    source,
                }
            })?;
        if bundles.insert(bundle).is_some() {
            return Err(SpireSourceError::Bundle {
                trust_domain: trust_domain.clone(),
                source: BundleError::DuplicateTrustDomain { trust_domain },
            });
        }
    }

    // The SVID must verify against the bundle of its own trust domain, as a
    // peer will check it. Either TLS role will do: an SVID made for one only
    // (serverAuth or clientAuth alone) is still an SVID.
    let now = SystemTime::now();
    let crls = CrlSet::new();
    let verified = match svid.verify(&bundles, now, &crls, PeerRole::Client) {
        Err(VerifyError::WrongExtendedKeyUsage { .. }) => {
            svid.verify(&bundles, now, &crls, PeerRole::Server)
        }
        other => other,
    };
    verified.map_err(|source| SpireSourceError::Unverified {
        spiffe_id: svid.spiffe_id().clone(),
        source,
    })?;
    Ok(Material {
        svid: Some(svid),
        bundles,
    })
}

fn initial_error(
    error: X509SourceError,
    endpoint: &str,
    timeout: Option<Duration>,
) -> SpireSourceError {
    match error {
        X509SourceError::InitialSyncTimeout => SpireSourceError::Timeout {
            endpoint: endpoint.to_owned(),
            timeout: timeout.unwrap_or_default(),
        },
        X509SourceError::Source(spiffe::WorkloadApiError::Endpoint(e)) => {
            SpireSourceError::InvalidEndpoint {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            }
        }
        X509SourceError::Closed => SpireSourceError::Closed,
        other => SpireSourceError::WorkloadApi {
            endpoint: endpoint.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Picks the SVID of one SPIFFE ID.
struct IdPicker(String);

impl SvidPicker for IdPicker {
    fn pick_svid(&self, svids: &[Arc<spiffe::X509Svid>]) -> Option<usize> {
        svids
            .iter()
            .position(|svid| svid.spiffe_id().to_string() == self.0)
    }
}

/// Counts the errors the `spiffe` crate reports.
struct ErrorCounter(Arc<AtomicU64>);

impl MetricsRecorder for ErrorCounter {
    fn record_update(&self) {}

    fn record_reconnect(&self) {}

    fn record_error(&self, kind: MetricsErrorKind) {
        self.0.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(kind = %kind, "mtls: Workload API client error");
    }
}

/// Why a [`SpireSource`] could not connect, or refused an update.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpireSourceError {
    /// No endpoint was given and `SPIFFE_ENDPOINT_SOCKET` is unset, empty
    /// or not UTF-8.
    #[error("spire source: no Workload API endpoint: SPIFFE_ENDPOINT_SOCKET is not set and none was given")]
    NoEndpoint,
    /// The endpoint is not a valid Workload API address.
    #[error("spire source: invalid Workload API endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint.
        endpoint: String,
        /// What the `spiffe` crate said.
        reason: String,
    },
    /// No SVID came within the initial timeout (no agent listening, the
    /// workload not registered yet...).
    #[error("spire source: no SVID from the Workload API at {endpoint} within {timeout:?}")]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The Workload API failed in a way retrying will not mend (it answered
    /// `InvalidArgument` or `Unimplemented`...).
    #[error("spire source: the Workload API at {endpoint} failed: {reason}")]
    WorkloadApi {
        /// The endpoint.
        endpoint: String,
        /// What the `spiffe` crate said.
        reason: String,
    },
    /// The response holds no usable SVID: none of the wanted SPIFFE ID, or
    /// the selected one has expired.
    #[error("spire source: no usable SVID in the Workload API response: {reason}")]
    NoSvid {
        /// What the `spiffe` crate said.
        reason: String,
    },
    /// The selected SVID fails this crate's checks.
    #[error("spire source: the SVID for {spiffe_id} is refused")]
    Svid {
        /// The SPIFFE ID the `spiffe` crate read from the SVID.
        spiffe_id: String,
        /// Why.
        source: SvidError,
    },
    /// A bundle is keyed by a name that is not a valid trust domain here.
    #[error("spire source: the bundle of trust domain {name:?} is refused")]
    TrustDomain {
        /// The name as the `spiffe` crate gave it.
        name: String,
        /// Why.
        source: SpiffeIdError,
    },
    /// A bundle fails this crate's checks.
    #[error("spire source: the bundle of {trust_domain} is refused")]
    Bundle {
        /// The bundle's trust domain.
        trust_domain: TrustDomain,
        /// Why.
        source: BundleError,
    },
    /// The selected SVID does not verify against the bundle of its trust
    /// domain.
    #[error("spire source: the SVID for {spiffe_id} does not verify against the bundle of its trust domain")]
    Unverified {
        /// The SVID's SPIFFE ID.
        spiffe_id: SpiffeId,
        /// Why.
        source: VerifyError,
    },
    /// The Workload API withdrew the workload's material (`PermissionDenied`).
    #[error("spire source: the Workload API withdrew this workload's SVID: {reason}")]
    Withdrawn {
        /// What the Workload API said.
        reason: String,
    },
    /// The Workload API answered with a JWT-SVID for another SPIFFE ID than
    /// the one of [`SpireSourceBuilder::spiffe_id`]; it is not sent.
    #[error("spire source: asked for a JWT-SVID for {requested}, got one for {issued}")]
    WrongJwtSubject {
        /// The SPIFFE ID asked for.
        requested: SpiffeId,
        /// The token's subject.
        issued: SpiffeId,
    },
    /// `connect` was called outside a tokio runtime.
    #[error("spire source: connecting needs a tokio runtime")]
    NoRuntime,
    /// The `spiffe` crate's source closed before an SVID came.
    #[error("spire source: the Workload API source closed")]
    Closed,
}
