//! [`PolicyFile`]: a compiled policy served to an
//! [`AuthorizeLayer`](crate::AuthorizeLayer), hot reloaded, in enforce,
//! audit or learn mode.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::learn::{self, Learner, Observation};
use super::traffic::{Traffic, Verdict};
use super::{read, CompiledPolicy, PolicyFileError, PolicyQuery};
use crate::authorize::{AuthorizeRequest, Caller, Denial, RequestHead};

/// What a [`PolicyFile`] does with its policy's decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyMode {
    /// Denied requests are refused (403, gRPC `PERMISSION_DENIED`).
    #[default]
    Enforce,
    /// Every decision is computed, logged and counted, and nothing is
    /// refused: to roll a policy out safely, watching what it would deny.
    Audit,
    /// Every authenticated caller is allowed, and the distinct (caller,
    /// method, route) seen are recorded (bounded in memory), so that
    /// [`PolicyFile::learned_policy`] writes the policy allowing exactly
    /// them.
    Learn,
}

impl PolicyMode {
    /// `enforce`, `audit` or `learn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Audit => "audit",
            Self::Learn => "learn",
        }
    }
}

impl std::str::FromStr for PolicyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Self::Enforce),
            "audit" => Ok(Self::Audit),
            "learn" => Ok(Self::Learn),
            other => Err(format!(
                "unknown policy mode {other:?} (enforce, audit or learn)"
            )),
        }
    }
}

/// How a [`PolicyFile`] runs: its mode, how often its file is polled, how
/// many calls learn mode records.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PolicyFileOptions {
    /// The mode (default: enforce).
    pub mode: PolicyMode,
    /// How often the file is read again to see whether it changed
    /// (default: 1 s).
    pub poll_interval: Duration,
    /// The most distinct calls learn mode records (default: 10,000);
    /// calls beyond are allowed, not recorded, and counted.
    pub max_observations: usize,
    /// The most distinct callers, and the most distinct routes, that get
    /// their own `caller` and `route` label values in
    /// [`REQUESTS`](crate::metrics::REQUESTS) (default: 100 each); later
    /// ones are counted under `other`. This bounds the counter's series to
    /// `(limit + 1)² × 3`.
    pub label_limit: usize,
}

impl Default for PolicyFileOptions {
    fn default() -> Self {
        Self {
            mode: PolicyMode::Enforce,
            poll_interval: Duration::from_secs(1),
            max_observations: 10_000,
            label_limit: 100,
        }
    }
}

impl PolicyFileOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    mtls_core::__setters! {
        /// Sets [`mode`](Self::mode).
        mode: PolicyMode;
        /// Sets [`poll_interval`](Self::poll_interval) (at least 10 ms).
        poll_interval: Duration;
        /// Sets [`max_observations`](Self::max_observations).
        max_observations: usize;
        /// Sets [`label_limit`](Self::label_limit).
        label_limit: usize;
    }

    /// Loads the policy file at `path` (it must be valid now), and
    /// watches it: a thread reads it every [`poll_interval`](Self::poll_interval)
    /// and, when it changed, swaps in the new policy if it parses and
    /// validates completely; otherwise it logs the error (warn), counts it
    /// (`mtls_policy_reloads_total{result="error"}`) and keeps serving the
    /// last good policy. The thread ends with the last clone of the
    /// `PolicyFile`. Needs no tokio runtime.
    pub fn open(self, path: impl AsRef<Path>) -> Result<PolicyFile, PolicyFileError> {
        let path = path.as_ref().to_path_buf();
        let origin = path.display().to_string();
        let text = read(&path, &origin)?;
        let policy = CompiledPolicy::from_toml(&text, &origin)?;
        let poll = self.poll_interval.max(Duration::from_millis(10));
        let file = self.serve(policy);
        let weak = Arc::downgrade(&file.shared);
        let spawned = std::thread::Builder::new()
            .name("mtls-policy-watch".into())
            .spawn(move || watch(&weak, &path, &origin, poll, text.into_bytes()));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "mtls: cannot start the policy file watcher; the policy will not be reloaded");
        }
        Ok(file)
    }

    /// Serves `policy` (from any source: replace it with
    /// [`PolicyFile::replace`] or [`PolicyFile::reload_from_toml`]).
    pub fn serve(self, policy: CompiledPolicy) -> PolicyFile {
        PolicyFile {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(policy),
                mode: self.mode,
                learner: (self.mode == PolicyMode::Learn)
                    .then(|| Learner::new(self.max_observations)),
                traffic: Traffic::new(self.label_limit),
                decisions: [OnceLock::new(), OnceLock::new()],
                generation: AtomicU64::new(1),
                failures: AtomicU64::new(0),
                last_error: Mutex::new(None),
            }),
        }
    }
}

/// A policy served to an [`AuthorizeLayer`](crate::AuthorizeLayer): from a
/// file, hot reloaded (see [`PolicyFileOptions::open`]), or from any
/// source; in enforce, audit or learn mode ([`PolicyMode`]). Cheap to
/// clone; every clone serves the same policy.
///
/// Each request is decided on one snapshot of the policy: a reload while
/// it is in flight does not change its decision. The swap is atomic
/// (`arc-swap`), and a decision costs what
/// [`CompiledPolicy::evaluate`] costs. (With
/// [`Authentication::Both`](crate::Authentication::Both) the layer asks
/// twice, once per identity, each time of the policy then current.)
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use mtls_tower::{AuthorizeLayer, PolicyFile, PolicyFileOptions, PolicyMode};
///
/// # fn f() -> Result<(), Box<dyn std::error::Error>> {
/// // Enforced, reloaded when the file changes.
/// let policy = PolicyFile::open("/etc/orders/policy.toml")?;
/// let app: Router = Router::new()
///     .route("/orders/{id}", get(|| async { "order" }))
///     .layer(AuthorizeLayer::new(policy));
///
/// // Learn mode: `route_layer`, so that the layer runs after routing and
/// // sees the route template (axum's `MatchedPath`).
/// let learning = PolicyFile::learn();
/// let app: Router = Router::new()
///     .route("/orders/{id}", get(|| async { "order" }))
///     .route_layer(AuthorizeLayer::new(learning.clone()));
/// // ... later:
/// learning.write_learned("learned-policy.toml")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PolicyFile {
    shared: Arc<Shared>,
}

struct Shared {
    current: ArcSwap<CompiledPolicy>,
    mode: PolicyMode,
    learner: Option<Learner>,
    traffic: Traffic,
    /// `mtls_policy_decisions_total{mode, decision}` for allow and deny,
    /// registered at the first request (not per request).
    decisions: [OnceLock<::metrics::Counter>; 2],
    generation: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<PolicyFileError>>,
}

impl PolicyFile {
    /// Enforces the policy file at `path`, reloaded when it changes; see
    /// [`PolicyFileOptions::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PolicyFileError> {
        PolicyFileOptions::new().open(path)
    }

    /// Enforces `policy` (from any source).
    pub fn new(policy: CompiledPolicy) -> Self {
        PolicyFileOptions::new().serve(policy)
    }

    /// Learn mode, without a policy: every authenticated caller is
    /// allowed and recorded.
    pub fn learn() -> Self {
        PolicyFileOptions::new()
            .mode(PolicyMode::Learn)
            .serve(CompiledPolicy::deny_all())
    }

    /// The policy now (a snapshot: later reloads do not change it).
    pub fn current(&self) -> CompiledPolicy {
        CompiledPolicy::clone(&self.shared.current.load())
    }

    /// The mode.
    pub fn mode(&self) -> PolicyMode {
        self.shared.mode
    }

    /// Serves `policy` from now on.
    pub fn replace(&self, policy: CompiledPolicy) {
        self.shared.swap(policy);
    }

    /// Parses and validates `text`; serves it from now on if it is valid,
    /// otherwise logs, counts and returns the error and keeps the current
    /// policy.
    pub fn reload_from_toml(&self, text: &str, origin: &str) -> Result<(), PolicyFileError> {
        match CompiledPolicy::from_toml(text, origin) {
            Ok(policy) => {
                self.shared.swap(policy);
                Ok(())
            }
            Err(e) => {
                self.shared.failed(&e);
                Err(e)
            }
        }
    }

    /// How many policies were served: 1 at first, plus one per
    /// successful reload or replacement.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// How many reloads failed.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Acquire)
    }

    /// The error of the last failed reload, until a reload succeeds.
    pub fn last_error(&self) -> Option<PolicyFileError> {
        lock(&self.shared.last_error).clone()
    }

    /// The distinct calls recorded in learn mode (empty otherwise),
    /// sorted.
    pub fn observations(&self) -> Vec<Observation> {
        self.shared
            .learner
            .as_ref()
            .map(Learner::observations)
            .unwrap_or_default()
    }

    /// The policy file (TOML) allowing exactly the calls recorded in learn
    /// mode, and denying the rest.
    pub fn learned_policy(&self) -> String {
        let dropped = self.shared.learner.as_ref().map_or(0, Learner::dropped);
        learn::policy_toml(&self.observations(), dropped)
    }

    /// Writes [`learned_policy`](Self::learned_policy) to `path`,
    /// atomically (a temporary file renamed over it).
    pub fn write_learned(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let path = path.as_ref();
        let mut tmp = PathBuf::from(path);
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        tmp.set_file_name(name);
        std::fs::write(&tmp, self.learned_policy())?;
        std::fs::rename(&tmp, path)
    }
}

impl Shared {
    fn decision_counter(&self, allowed: bool) -> &::metrics::Counter {
        let mode = self.mode.as_str();
        let (slot, decision) = if allowed {
            (&self.decisions[0], "allow")
        } else {
            (&self.decisions[1], "deny")
        };
        slot.get_or_init(|| {
            ::metrics::counter!(crate::metrics::POLICY_DECISIONS, "mode" => mode, "decision" => decision)
        })
    }

    fn swap(&self, policy: CompiledPolicy) {
        let rules = policy.len();
        let origin = policy.origin().to_owned();
        self.current.store(Arc::new(policy));
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        *lock(&self.last_error) = None;
        ::metrics::counter!(crate::metrics::POLICY_RELOADS, "result" => "ok").increment(1);
        tracing::info!(%origin, rules, generation, "mtls: policy loaded");
    }

    fn failed(&self, error: &PolicyFileError) {
        self.failures.fetch_add(1, Ordering::AcqRel);
        *lock(&self.last_error) = Some(error.clone());
        ::metrics::counter!(crate::metrics::POLICY_RELOADS, "result" => "error").increment(1);
        tracing::warn!(%error, "mtls: policy not reloaded; the last good policy keeps serving");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The watch thread: reads the file every `poll`; a change is compiled
/// and swapped in, or reported once.
fn watch(shared: &Weak<Shared>, path: &Path, origin: &str, poll: Duration, mut seen: Vec<u8>) {
    let mut last_read_error: Option<String> = None;
    loop {
        std::thread::sleep(poll);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                // Reported once (a file being replaced may be missing for
                // a moment; it is read again at the next poll).
                let text = e.to_string();
                if last_read_error.as_deref() != Some(&text) {
                    shared.failed(&PolicyFileError::Read {
                        origin: origin.to_owned(),
                        source: Arc::new(e),
                    });
                    last_read_error = Some(text);
                }
                continue;
            }
        };
        last_read_error = None;
        if bytes == seen {
            continue;
        }
        let result = match String::from_utf8(bytes.clone()) {
            Ok(text) => CompiledPolicy::from_toml(&text, origin),
            Err(e) => Err(super::not_utf8(
                &bytes,
                e.utf8_error().valid_up_to(),
                origin,
            )),
        };
        seen = bytes;
        match result {
            Ok(policy) => shared.swap(policy),
            Err(e) => shared.failed(&e),
        }
    }
}

/// Decides by the policy now, in the mode: enforce refuses what the
/// policy denies; audit logs and counts it and refuses nothing; learn
/// records the call and allows it.
impl AuthorizeRequest for PolicyFile {
    fn authorize_request(
        &self,
        caller: Caller<'_>,
        request: RequestHead<'_>,
    ) -> Result<(), Denial> {
        let shared = &*self.shared;
        let mode = shared.mode;
        if let Some(learner) = &shared.learner {
            learner.record(caller, request);
            shared.traffic.count(caller, request, Verdict::Allow);
            shared.decision_counter(true).increment(1);
            return Ok(());
        }
        let policy = shared.current.load();
        let query = PolicyQuery::new(
            caller.spiffe_id(),
            caller.into(),
            request.method(),
            request.path(),
        );
        let decision = policy.evaluate(&query);
        for &i in decision.audit_matches() {
            ::metrics::counter!(crate::metrics::POLICY_AUDIT_MATCHES).increment(1);
            tracing::info!(rule = %policy.describe_rule(i), caller = %caller.spiffe_id(), method = %request.method(), path = request.path(), "mtls: policy audit rule matched");
        }
        if decision.is_allowed() {
            shared.traffic.count(caller, request, Verdict::Allow);
            shared.decision_counter(true).increment(1);
            return Ok(());
        }
        shared.decision_counter(false).increment(1);
        let reason = match decision.rule() {
            Some(i) => format!("denied by {}", policy.describe_rule(i)),
            None if decision.path_refused() => "the request path is not in normal form".to_owned(),
            None => "no allow rule matches (default deny)".to_owned(),
        };
        if mode == PolicyMode::Audit {
            shared.traffic.count(caller, request, Verdict::AuditDeny);
            tracing::info!(caller = %caller.spiffe_id(), method = %request.method(), path = request.path(), %reason, "mtls: policy audit mode: would deny");
            return Ok(());
        }
        shared.traffic.count(caller, request, Verdict::Deny);
        Err(Denial::new(reason))
    }
}

impl fmt::Debug for PolicyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyFile")
            .field("mode", &self.shared.mode)
            .field("policy", &**self.shared.current.load())
            .field("generation", &self.generation())
            .field("failures", &self.failures())
            .finish()
    }
}
