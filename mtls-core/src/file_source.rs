//! An SVID, bundles and CRLs read from files and watched for rotation
//! (feature `file-source`, on by default).

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};

use crate::bundle::{BundleError, X509Bundle};
use crate::bundle_set::BundleSet;
use crate::crl::{CrlError, CrlSet};
use crate::source::{BundleSource, CrlSource, SvidSource};
use crate::svid::{SvidError, X509Svid};
use crate::trust_domain::TrustDomain;
use crate::verify::{PeerRole, VerifyError};

/// Largest file a [`FileSource`] reads, in bytes.
pub const MAX_SOURCE_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Which files make up an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePaths {
    /// The certificate chain, leaf first (PEM).
    pub chain: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
    /// The bundle of the SVID's own trust domain (PEM or SPIFFE JWKS).
    pub bundle: PathBuf,
    /// Bundles of federated trust domains.
    pub federated: Vec<(TrustDomain, PathBuf)>,
    /// CRLs (PEM or DER).
    pub crls: Vec<PathBuf>,
}

impl FilePaths {
    /// A chain, key and bundle at these paths.
    pub fn new(
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        bundle: impl Into<PathBuf>,
    ) -> Self {
        Self {
            chain: chain.into(),
            key: key.into(),
            bundle: bundle.into(),
            federated: Vec::new(),
            crls: Vec::new(),
        }
    }

    /// The files cert-manager's csi-driver-spiffe mounts in `dir`:
    /// `tls.crt`, `tls.key`, `ca.crt`.
    pub fn cert_manager(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self::new(dir.join("tls.crt"), dir.join("tls.key"), dir.join("ca.crt"))
    }

    /// The files spiffe-helper writes in `dir`: `svid.pem`, `svid_key.pem`,
    /// `svid_bundle.pem`.
    pub fn spiffe_helper(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self::new(
            dir.join("svid.pem"),
            dir.join("svid_key.pem"),
            dir.join("svid_bundle.pem"),
        )
    }

    /// Adds the bundle of a federated trust domain.
    pub fn federated(mut self, trust_domain: TrustDomain, path: impl Into<PathBuf>) -> Self {
        self.federated.push((trust_domain, path.into()));
        self
    }

    /// Adds a CRL file.
    pub fn crl(mut self, path: impl Into<PathBuf>) -> Self {
        self.crls.push(path.into());
        self
    }

    fn all(&self) -> impl Iterator<Item = &PathBuf> + '_ {
        [&self.chain, &self.key, &self.bundle]
            .into_iter()
            .chain(self.federated.iter().map(|(_, p)| p))
            .chain(self.crls.iter())
    }
}

/// How a [`FileSource`] watches its files.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WatchOptions {
    /// How often the files are read again even without a change
    /// notification (default 1 s). Some volume mounts, such as Kubernetes'
    /// atomic symlink swaps, defeat file watchers; this catches them.
    pub poll_interval: Duration,
    /// How long to wait after a change notification before reading, so that
    /// a burst of writes is read once (default 50 ms).
    pub debounce: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            debounce: Duration::from_millis(50),
        }
    }
}

impl WatchOptions {
    /// Sets [`poll_interval`](Self::poll_interval).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
}

/// An SVID, its trust bundles and CRLs, read from files and, with
/// [`FileSource::watch`], reloaded whenever they change.
///
/// A new set of files is swapped in only when **every** file parses, the key
/// matches the leaf, and the SVID verifies against the new bundles and CRLs.
/// Otherwise the last good set keeps serving, and the failure is logged and
/// counted ([`FileSource::failures`], [`FileSource::last_error`]): a
/// half-written file, a deleted file, a key from another certificate or an
/// SVID from an unknown CA loses nothing.
///
/// It is an [`SvidSource`], a [`BundleSource`] and a [`CrlSource`], so one
/// `FileSource` feeds both rustls configs; new handshakes use the new files
/// with no restart.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use mtls_core::{authorize, FilePaths, FileSource, MtlsServerConfig, TrustDomain, WatchOptions};
///
/// // cert-manager's csi-driver-spiffe volume, mounted at /var/run/secrets/spiffe.io
/// let files = Arc::new(FileSource::watch(
///     FilePaths::cert_manager("/var/run/secrets/spiffe.io"),
///     WatchOptions::default(),
/// )?);
/// let server = MtlsServerConfig::builder(files.clone(), files.clone())
///     .crls(files.clone())
///     .authorizer(authorize::member_of(TrustDomain::new("example.org")?))
///     .build()?;
/// # Ok(()) }
/// ```
pub struct FileSource {
    shared: Arc<Shared>,
    task: Option<tokio::task::AbortHandle>,
    _watcher: Option<notify::RecommendedWatcher>,
}

struct Shared {
    paths: FilePaths,
    current: ArcSwap<Material>,
    updates: watch::Sender<u64>,
    failures: AtomicU64,
    last_error: Mutex<Option<FileSourceError>>,
    /// Fingerprint of the files last loaded, and of the last bad set seen
    /// with its error (so one bad set is reported once, not at every poll).
    seen: Mutex<Seen>,
}

struct Seen {
    good: u64,
    bad: Option<(u64, FileSourceError)>,
}

struct Material {
    svid: X509Svid,
    bundles: BundleSet,
    crls: CrlSet,
}

impl FileSource {
    /// Reads the files once; [`reload`](Self::reload) reads them again.
    pub fn load(paths: FilePaths) -> Result<Self, FileSourceError> {
        let (material, fingerprint) = load_material(&paths)?;
        let (updates, _) = watch::channel(0);
        Ok(Self {
            shared: Arc::new(Shared {
                paths,
                current: ArcSwap::from_pointee(material),
                updates,
                failures: AtomicU64::new(0),
                last_error: Mutex::new(None),
                seen: Mutex::new(Seen {
                    good: fingerprint,
                    bad: None,
                }),
            }),
            task: None,
            _watcher: None,
        })
    }

    /// Reads the files now (an error if the first read fails) and keeps
    /// watching them from a task on the current tokio runtime: change
    /// notifications from the OS, plus a read every `poll_interval`.
    pub fn watch(paths: FilePaths, options: WatchOptions) -> Result<Self, FileSourceError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| FileSourceError::NoRuntime)?;
        let mut source = Self::load(paths)?;
        let (tx, rx) = mpsc::unbounded_channel();
        source._watcher = start_watcher(&source.shared.paths, tx);
        let task = runtime.spawn(watch_loop(source.shared.clone(), rx, options));
        source.task = Some(task.abort_handle());
        Ok(source)
    }

    /// Reads the files again and swaps them in if they changed and are
    /// good. `Ok(true)`: a new set is serving; `Ok(false)`: nothing changed;
    /// `Err`: the new files were refused and the last good set keeps
    /// serving.
    pub fn reload(&self) -> Result<bool, FileSourceError> {
        self.shared.reload()
    }

    /// A receiver of the generation number, bumped at every swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.updates.subscribe()
    }

    /// How many times new files were refused.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// Why new files were last refused.
    pub fn last_error(&self) -> Option<FileSourceError> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The SVID serving now.
    pub fn svid(&self) -> X509Svid {
        self.shared.current.load().svid.clone()
    }

    /// The bundles serving now.
    pub fn bundles(&self) -> BundleSet {
        self.shared.current.load().bundles.clone()
    }

    /// The CRLs serving now.
    pub fn crls(&self) -> CrlSet {
        self.shared.current.load().crls.clone()
    }

    /// The files watched.
    pub fn paths(&self) -> &FilePaths {
        &self.shared.paths
    }
}

impl Shared {
    fn reload(&self) -> Result<bool, FileSourceError> {
        // Read every file once: the fingerprint and the checks are about the
        // same bytes, so a set torn by a concurrent writer is refused under
        // its own fingerprint and never poisons the good set it resembles.
        let files = match read_files(&self.paths) {
            Ok(files) => files,
            Err(e) => {
                let mut hasher = DefaultHasher::new();
                e.to_string().hash(&mut hasher);
                return Err(self.refuse(e, hasher.finish()));
            }
        };
        let fingerprint = files.fingerprint;
        {
            let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.good == fingerprint {
                return Ok(false);
            }
            if let Some((bad, error)) = &seen.bad {
                if *bad == fingerprint {
                    // The same bad files as last time: already reported.
                    return Err(error.clone());
                }
            }
        }
        match parse_files(&self.paths, files) {
            Ok(material) => {
                self.current.store(Arc::new(material));
                *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Seen {
                    good: fingerprint,
                    bad: None,
                };
                self.updates.send_modify(|generation| *generation += 1);
                tracing::info!(chain = %self.paths.chain.display(), "mtls: new SVID and bundle files loaded");
                Ok(true)
            }
            Err(e) => Err(self.refuse(e, fingerprint)),
        }
    }

    /// Records refused files (once per distinct bad state) and returns the
    /// error.
    fn refuse(&self, error: FileSourceError, key: u64) -> FileSourceError {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.bad.as_ref().is_none_or(|(bad, _)| *bad != key) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %error, "mtls: new files refused; the last good SVID and bundle keep serving");
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
        }
        seen.bad = Some((key, error.clone()));
        error
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, FileSourceError> {
    let io = |e: std::io::Error| FileSourceError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SOURCE_FILE_BYTES {
        return Err(FileSourceError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// The bytes of every file, read once, and their fingerprint.
struct Files {
    chain: Vec<u8>,
    key: Vec<u8>,
    bundle: Vec<u8>,
    federated: Vec<(TrustDomain, PathBuf, Vec<u8>)>,
    crls: Vec<(PathBuf, Vec<u8>)>,
    fingerprint: u64,
}

fn load_material(paths: &FilePaths) -> Result<(Material, u64), FileSourceError> {
    let files = read_files(paths)?;
    let fingerprint = files.fingerprint;
    Ok((parse_files(paths, files)?, fingerprint))
}

fn read_files(paths: &FilePaths) -> Result<Files, FileSourceError> {
    let mut hasher = DefaultHasher::new();
    let mut read = |path: &Path| {
        let bytes = read_file(path)?;
        bytes.hash(&mut hasher);
        Ok::<_, FileSourceError>(bytes)
    };
    let chain = read(&paths.chain)?;
    let key = read(&paths.key)?;
    let bundle = read(&paths.bundle)?;
    let federated = paths
        .federated
        .iter()
        .map(|(td, p)| Ok((td.clone(), p.clone(), read(p)?)))
        .collect::<Result<Vec<_>, FileSourceError>>()?;
    let crl_files = paths
        .crls
        .iter()
        .map(|p| Ok((p.clone(), read(p)?)))
        .collect::<Result<Vec<_>, FileSourceError>>()?;
    Ok(Files {
        chain,
        key,
        bundle,
        federated,
        crls: crl_files,
        fingerprint: hasher.finish(),
    })
}

/// Parses and checks files read together: what is checked is exactly what
/// was fingerprinted, even if the files change meanwhile.
fn parse_files(paths: &FilePaths, files: Files) -> Result<Material, FileSourceError> {
    let Files {
        chain,
        key,
        bundle,
        federated,
        crls: crl_files,
        ..
    } = files;
    let svid = X509Svid::from_pem(&chain, &key).map_err(|source| FileSourceError::Svid {
        chain: paths.chain.clone(),
        source,
    })?;
    let own = svid.spiffe_id().trust_domain().clone();
    let mut bundles = BundleSet::new();
    let bundle_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FileSourceError::Bundle { path, source }
    };
    bundles.insert(
        X509Bundle::from_pem_or_jwks(own.clone(), &bundle).map_err(bundle_err(&paths.bundle))?,
    );
    let mut seen = BTreeSet::from([own]);
    for (td, path, bytes) in federated {
        if !seen.insert(td.clone()) {
            return Err(bundle_err(&path)(BundleError::DuplicateTrustDomain {
                trust_domain: td,
            }));
        }
        bundles.insert(X509Bundle::from_pem_or_jwks(td, &bytes).map_err(bundle_err(&path))?);
    }
    let mut crls = CrlSet::new();
    for (path, bytes) in crl_files {
        let set = CrlSet::from_pem_or_der(&bytes)
            .map_err(|source| FileSourceError::Crl { path, source })?;
        crls.extend(&set);
    }
    let now = SystemTime::now();
    let verified = match svid.verify(&bundles, now, &crls, PeerRole::Client) {
        Err(VerifyError::WrongExtendedKeyUsage { .. }) => {
            svid.verify(&bundles, now, &crls, PeerRole::Server)
        }
        other => other,
    };
    verified.map_err(|source| FileSourceError::Unverified {
        chain: paths.chain.clone(),
        source,
    })?;
    Ok(Material {
        svid,
        bundles,
        crls,
    })
}

fn start_watcher(
    paths: &FilePaths,
    tx: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "mtls: cannot watch files; polling only");
                return None;
            }
        };
    // Watch the directories: writers replace files (and Kubernetes swaps a
    // symlinked directory), which a watch on the file itself would miss.
    let dirs: BTreeSet<PathBuf> = paths
        .all()
        .map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    for dir in dirs {
        if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "mtls: cannot watch directory; polling it");
        }
    }
    Some(watcher)
}

async fn watch_loop(
    shared: Arc<Shared>,
    mut events: mpsc::UnboundedReceiver<()>,
    options: WatchOptions,
) {
    let mut tick = tokio::time::interval(options.poll_interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events_open = true;
    loop {
        tokio::select! {
            event = events.recv(), if events_open => {
                if event.is_none() {
                    events_open = false;
                    continue;
                }
                tokio::time::sleep(options.debounce).await;
                while events.try_recv().is_ok() {}
            }
            _ = tick.tick() => {}
        }
        // Errors were logged and counted; the last good set keeps serving.
        let _ = shared.reload();
    }
}

impl SvidSource for FileSource {
    fn current_svid(&self) -> Option<X509Svid> {
        Some(self.svid())
    }
}

impl BundleSource for FileSource {
    fn current_bundles(&self) -> BundleSet {
        self.bundles()
    }
}

impl CrlSource for FileSource {
    fn current_crls(&self) -> CrlSet {
        self.crls()
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("paths", &self.shared.paths)
            .field("svid", &self.svid())
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

/// Why files were refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FileSourceError {
    /// A file could not be read (missing, permission denied, a dangling
    /// symlink...).
    #[error("file source: cannot read {}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// A file is larger than [`MAX_SOURCE_FILE_BYTES`].
    #[error("file source: {} is larger than {MAX_SOURCE_FILE_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The chain and key do not make a valid SVID.
    #[error("file source: {}: {source}", chain.display())]
    Svid {
        /// The chain file.
        chain: PathBuf,
        /// Why.
        source: SvidError,
    },
    /// A bundle file is invalid.
    #[error("file source: {}: {source}", path.display())]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// Why.
        source: BundleError,
    },
    /// A CRL file is invalid.
    #[error("file source: {}: {source}", path.display())]
    Crl {
        /// The CRL file.
        path: PathBuf,
        /// Why.
        source: CrlError,
    },
    /// The SVID does not verify against the bundles and CRLs read with it.
    #[error("file source: the SVID in {} does not verify against its bundle: {source}", chain.display())]
    Unverified {
        /// The chain file.
        chain: PathBuf,
        /// Why.
        source: VerifyError,
    },
    /// `watch` was called outside a tokio runtime.
    #[error("file source: watching needs a tokio runtime")]
    NoRuntime,
}
