//! An SVID, bundles and CRLs read from files and watched for rotation
//! (feature `file-source`, on by default).

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::bundle::{BundleError, BundleSet, X509Bundle};
use crate::crl::{CrlError, CrlSet};
use crate::id::TrustDomain;
use crate::limits::MAX_SOURCE_FILE_BYTES;
use crate::source::{BundleSource, CrlSource, Published, SourceStatus, SvidSource};
use crate::svid::{SvidError, X509Svid};
use crate::verify::{PeerRole, VerifyError};

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

    /// The files `mtls-ca issue --dir CA_DIR --out PREFIX` writes and the
    /// CA directory holds: `PREFIX.pem` (the chain), `PREFIX.key`, and
    /// `CA_DIR/bundle.pem`. Re-running `mtls-ca issue` into the same prefix
    /// (or a renewal loop) rotates them; a [`FileSource`] follows.
    ///
    /// ```
    /// use std::path::Path;
    /// use mtls_core::FilePaths;
    ///
    /// let paths = FilePaths::mtls_ca("certs/web", "ca");
    /// assert_eq!(paths.chain, Path::new("certs/web.pem"));
    /// assert_eq!(paths.key, Path::new("certs/web.key"));
    /// assert_eq!(paths.bundle, Path::new("ca/bundle.pem"));
    /// ```
    pub fn mtls_ca(prefix: impl AsRef<Path>, ca_dir: impl AsRef<Path>) -> Self {
        let prefix = prefix.as_ref().as_os_str();
        let with = |suffix: &str| {
            let mut path = prefix.to_os_string();
            path.push(suffix);
            PathBuf::from(path)
        };
        Self::new(
            with(".pem"),
            with(".key"),
            ca_dir.as_ref().join("bundle.pem"),
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
    /// How long one read of every file may take (default 5 s). A read that
    /// takes longer (a hung network mount) is reported as
    /// [`FileSourceError::ReadTimeout`]; the last good set keeps serving and
    /// no other read starts until that one returns.
    pub read_timeout: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            debounce: Duration::from_millis(50),
            read_timeout: Duration::from_secs(5),
        }
    }
}

impl WatchOptions {
    crate::__setters! {
        /// Sets [`poll_interval`](Self::poll_interval).
        poll_interval: Duration;
        /// Sets [`debounce`](Self::debounce).
        debounce: Duration;
        /// Sets [`read_timeout`](Self::read_timeout).
        read_timeout: Duration;
    }
}

/// An SVID, its trust bundles and CRLs, read from files and, with
/// [`FileSource::watch`], reloaded whenever they change.
///
/// A new set of files is swapped in only when **every** file parses, the key
/// matches the leaf, and the SVID chains to the new bundle of its trust
/// domain. Otherwise the last good set keeps serving, and the failure is
/// logged and counted ([`FileSource::status`]): a half-written file, a
/// deleted file, a key from another certificate, a leaf pasted into a
/// bundle or an SVID from an unknown CA loses nothing.
///
/// New CRLs always apply to peers, **even when they also revoke this
/// service's own SVID** (or the intermediate that issued it): the revoked
/// SVID keeps serving until its replacement arrives in the files, with an
/// error log, the [`metrics::SVID_REVOKED`](crate::metrics::SVID_REVOKED)
/// gauge at 1 and [`SourceStatus::svid_revoked`] set. Peers that hold
/// the same CRLs refuse it, which is their decision to make; refusing the
/// CRLs instead would keep serving the peers they revoke.
///
/// Files are read only on threads of their own, never on a tokio worker:
/// a watched path that blocks (a FIFO, a hung network mount) cannot stall
/// the runtime. Only regular files (or symlinks to them) are read; a FIFO,
/// socket, device or directory is [`FileSourceError::NotARegularFile`].
///
/// It is an [`SvidSource`], a [`BundleSource`] and a [`CrlSource`], so one
/// `FileSource` feeds both rustls configs; new handshakes use the new files
/// with no restart. Clones share the files and the watch, which stops when
/// the last clone is dropped.
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use mtls_core::{authorize, FilePaths, FileSource, MtlsServerConfig, TrustDomain, WatchOptions};
///
/// // cert-manager's csi-driver-spiffe volume, mounted at /var/run/secrets/spiffe.io
/// let files = FileSource::watch(
///     FilePaths::cert_manager("/var/run/secrets/spiffe.io"),
///     WatchOptions::default(),
/// )?;
/// let server = MtlsServerConfig::builder(files.clone(), files.clone())
///     .crls(files.clone())
///     .authorizer(authorize::member_of(TrustDomain::new("example.org")?))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileSource {
    shared: Arc<Shared>,
    _watch: Option<Arc<WatchGuard>>,
}

/// Stops the watch thread when the last [`FileSource`] clone goes.
struct WatchGuard {
    wake: std::sync::mpsc::Sender<Wake>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let _ = self.wake.send(Wake::Stop);
    }
}

/// What wakes the watch thread.
enum Wake {
    Changed,
    Stop,
}

struct Shared {
    paths: FilePaths,
    published: Published<Material, FileSourceError>,
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
    /// Why the CRLs loaded with the SVID revoke it, if they do.
    svid_revoked: Option<VerifyError>,
}

impl FileSource {
    /// Reads the files once, on the calling thread; [`reload`](Self::reload)
    /// reads them again. In async code prefer [`watch`](Self::watch), which
    /// reads on a thread of its own with a time limit.
    pub fn load(paths: FilePaths) -> Result<Self, FileSourceError> {
        let (material, fingerprint) = load_material(&paths)?;
        Ok(Self::from_material(paths, material, fingerprint))
    }

    fn from_material(paths: FilePaths, material: Material, fingerprint: u64) -> Self {
        report_revocation(&paths, &material);
        Self {
            shared: Arc::new(Shared {
                paths,
                published: Published::new(material),
                seen: Mutex::new(Seen {
                    good: fingerprint,
                    bad: None,
                }),
            }),
            _watch: None,
        }
    }

    /// Reads the files now (an error if the first read fails or takes
    /// longer than `read_timeout`) and keeps watching them from a thread of
    /// its own: change notifications from the OS, plus a read every
    /// `poll_interval`. Needs no tokio runtime, and blocks no runtime
    /// worker for longer than `read_timeout`.
    pub fn watch(paths: FilePaths, options: WatchOptions) -> Result<Self, FileSourceError> {
        let timeout = options.read_timeout;
        let first = {
            let paths = paths.clone();
            run_bounded(timeout, move || load_material(&paths))
        };
        let (material, fingerprint) = match first {
            Bounded::Done(result) => result?,
            Bounded::TimedOut(_) => return Err(FileSourceError::ReadTimeout { after: timeout }),
            Bounded::Failed(reason) => return Err(FileSourceError::Thread { reason }),
        };
        let mut source = Self::from_material(paths, material, fingerprint);
        let (wake, events) = std::sync::mpsc::channel();
        let watcher = start_watcher(&source.shared.paths, wake.clone());
        let shared = source.shared.clone();
        std::thread::Builder::new()
            .name("mtls-file-watch".into())
            .spawn(move || watch_loop(&shared, &events, &options))
            .map_err(|e| FileSourceError::Thread {
                reason: e.to_string(),
            })?;
        source._watch = Some(Arc::new(WatchGuard {
            wake,
            _watcher: watcher,
        }));
        Ok(source)
    }

    /// Reads the files again, on the calling thread, and swaps them in if
    /// they changed and are good. `Ok(true)`: a new set is serving;
    /// `Ok(false)`: nothing changed; `Err`: the new files were refused and
    /// the last good set keeps serving. It blocks while it reads: in async
    /// code call it from `spawn_blocking`.
    pub fn reload(&self) -> Result<bool, FileSourceError> {
        self.shared.reload()
    }

    /// Bumped at every swap of a new set of files (0: the first set).
    pub fn generation(&self) -> u64 {
        self.shared.published.generation()
    }

    /// A receiver of the generation, woken at every swap.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.published.changes()
    }

    /// What is serving and how the last reads went: generation, refused
    /// updates, the last refusal, and whether the CRLs serving revoke the
    /// SVID serving.
    pub fn status(&self) -> SourceStatus<FileSourceError> {
        let mut status = self.shared.published.status();
        status.svid_revoked = self.shared.published.load().svid_revoked.clone();
        status
    }

    /// The SVID serving now.
    pub fn svid(&self) -> X509Svid {
        self.shared.published.load().svid.clone()
    }

    /// The bundles serving now.
    pub fn bundles(&self) -> BundleSet {
        self.shared.published.load().bundles.clone()
    }

    /// The CRLs serving now.
    pub fn crls(&self) -> CrlSet {
        self.shared.published.load().crls.clone()
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
                let key = error_key(&e);
                return Err(self.refuse(e, key));
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
                report_revocation(&self.paths, &material);
                *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Seen {
                    good: fingerprint,
                    bad: None,
                };
                self.published.publish(material);
                ::metrics::counter!(crate::metrics::FILE_SOURCE_UPDATES, "result" => "loaded")
                    .increment(1);
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
            ::metrics::counter!(crate::metrics::FILE_SOURCE_UPDATES, "result" => "refused")
                .increment(1);
            tracing::warn!(error = %crate::ErrorChain(&error), "mtls: new files refused; the last good SVID and bundle keep serving");
            self.published.refuse(error.clone());
        }
        seen.bad = Some((key, error.clone()));
        error
    }
}

/// A key for an error that has no file fingerprint (a read failed).
fn error_key(e: &FileSourceError) -> u64 {
    let mut hasher = DefaultHasher::new();
    e.to_string().hash(&mut hasher);
    hasher.finish()
}

/// Logs, and sets the gauge, when the CRLs of a set revoke its own SVID.
fn report_revocation(paths: &FilePaths, material: &Material) {
    let chain = paths.chain.display().to_string();
    match &material.svid_revoked {
        Some(why) => {
            tracing::error!(
                chain = %chain,
                spiffe_id = %material.svid.spiffe_id(),
                reason = %why,
                "mtls: the CRLs just loaded revoke this service's own SVID; it keeps serving until \
                 a replacement arrives in the files, and peers holding these CRLs refuse it"
            );
            ::metrics::gauge!(crate::metrics::SVID_REVOKED, "chain" => chain).set(1.0);
        }
        None => ::metrics::gauge!(crate::metrics::SVID_REVOKED, "chain" => chain).set(0.0),
    }
}

/// How a job given to [`run_bounded`] went.
enum Bounded<T> {
    Done(T),
    /// Still running; the receiver gets its result if it ever ends.
    TimedOut(std::sync::mpsc::Receiver<T>),
    /// The thread could not start, or panicked.
    Failed(String),
}

/// Runs `job` on a thread of its own and waits for it up to `timeout`. A
/// job that hangs (a read from a hung mount) costs one parked thread, not a
/// runtime worker, and does not keep the process from exiting.
fn run_bounded<T: Send + 'static>(
    timeout: Duration,
    job: impl FnOnce() -> T + Send + 'static,
) -> Bounded<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("mtls-file-read".into())
        .spawn(move || {
            let _ = tx.send(job());
        });
    if let Err(e) = spawned {
        return Bounded::Failed(format!("cannot start a reader thread: {e}"));
    }
    match rx.recv_timeout(timeout) {
        Ok(value) => Bounded::Done(value),
        Err(RecvTimeoutError::Timeout) => Bounded::TimedOut(rx),
        Err(RecvTimeoutError::Disconnected) => Bounded::Failed("the reader thread panicked".into()),
    }
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, FileSourceError> {
    let io = |e: std::io::Error| FileSourceError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    // Look before opening: opening a FIFO blocks until a writer comes, and
    // opening a device can have effects of its own.
    check_regular(path, &std::fs::metadata(path).map_err(io)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // If the path was swapped for a FIFO since, the open returns at once
        // and the check on the open file below refuses it.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    check_regular(path, &metadata)?;
    if metadata.len() > MAX_SOURCE_FILE_BYTES {
        return Err(FileSourceError::TooLarge {
            path: path.to_path_buf(),
        });
    }
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

/// Refuses anything but a regular file.
fn check_regular(path: &Path, metadata: &std::fs::Metadata) -> Result<(), FileSourceError> {
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let kind = if file_type.is_dir() {
        "a directory"
    } else {
        special_kind(&file_type)
    };
    Err(FileSourceError::NotARegularFile {
        path: path.to_path_buf(),
        kind,
    })
}

#[cfg(unix)]
fn special_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "not a regular file"
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
    let verify = |crls: &CrlSet| match svid.verify(&bundles, now, crls, PeerRole::Client) {
        Err(VerifyError::WrongExtendedKeyUsage { .. }) => {
            svid.verify(&bundles, now, crls, PeerRole::Server)
        }
        other => other,
    };
    // The SVID must chain to the new bundle: a chain from an unknown CA or
    // an expired one is refused and the last good set keeps serving.
    verify(&CrlSet::new()).map_err(|source| FileSourceError::Unverified {
        chain: paths.chain.clone(),
        source,
    })?;
    // The CRLs apply to peers whatever they say about our own SVID; that
    // they revoke it is reported, not a reason to keep serving the peers
    // they revoke.
    let svid_revoked = if crls.is_empty() {
        None
    } else {
        verify(&crls).err()
    };
    Ok(Material {
        svid,
        bundles,
        crls,
        svid_revoked,
    })
}

fn start_watcher(
    paths: &FilePaths,
    wake: std::sync::mpsc::Sender<Wake>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = wake.send(Wake::Changed);
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %crate::ErrorChain(&e), "mtls: cannot watch files; polling only");
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
            tracing::warn!(dir = %dir.display(), error = %crate::ErrorChain(&e), "mtls: cannot watch directory; polling it");
        }
    }
    Some(watcher)
}

/// The watch thread: waits for a change notification or the poll interval,
/// then reads on a reader thread, bounded by `read_timeout`.
fn watch_loop(
    shared: &Arc<Shared>,
    events: &std::sync::mpsc::Receiver<Wake>,
    options: &WatchOptions,
) {
    let poll = options.poll_interval.max(Duration::from_millis(10));
    // A read that outlived its time limit; no other starts until it ends.
    let mut stuck: Option<std::sync::mpsc::Receiver<Result<bool, FileSourceError>>> = None;
    let mut next_poll = Instant::now() + poll;
    loop {
        let wait = next_poll.saturating_duration_since(Instant::now());
        match events.recv_timeout(wait) {
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Wake::Changed) => {
                std::thread::sleep(options.debounce);
                loop {
                    match events.try_recv() {
                        Ok(Wake::Changed) => {}
                        Ok(Wake::Stop) | Err(TryRecvError::Disconnected) => return,
                        Err(TryRecvError::Empty) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => next_poll = Instant::now() + poll,
        }
        if let Some(pending) = &stuck {
            match pending.try_recv() {
                Err(TryRecvError::Empty) => continue,
                Ok(_) | Err(TryRecvError::Disconnected) => stuck = None,
            }
        }
        let job = shared.clone();
        // Errors are logged and counted by `reload`; the last good set keeps
        // serving.
        match run_bounded(options.read_timeout, move || job.reload()) {
            Bounded::Done(_) => {}
            Bounded::TimedOut(pending) => {
                let error = FileSourceError::ReadTimeout {
                    after: options.read_timeout,
                };
                let key = error_key(&error);
                shared.refuse(error, key);
                stuck = Some(pending);
            }
            Bounded::Failed(reason) => {
                let error = FileSourceError::Thread { reason };
                let key = error_key(&error);
                shared.refuse(error, key);
            }
        }
    }
}

tracked_source!(FileSource, SvidSource, fn current_svid(this) -> Option<X509Svid> {
    Some(this.svid())
});

tracked_source!(FileSource, BundleSource, fn current_bundles(this) -> BundleSet {
    this.bundles()
});

tracked_source!(FileSource, CrlSource, fn current_crls(this) -> CrlSet {
    this.crls()
});

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("paths", &self.shared.paths)
            .field("svid", &self.svid())
            .field("generation", &self.generation())
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
    #[error("file source: cannot load the SVID in {}", chain.display())]
    Svid {
        /// The chain file.
        chain: PathBuf,
        /// Why.
        source: SvidError,
    },
    /// A bundle file is invalid.
    #[error("file source: cannot load the bundle {}", path.display())]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// Why.
        source: BundleError,
    },
    /// A CRL file is invalid.
    #[error("file source: cannot load the CRL {}", path.display())]
    Crl {
        /// The CRL file.
        path: PathBuf,
        /// Why.
        source: CrlError,
    },
    /// The SVID does not verify against the bundles and CRLs read with it.
    #[error("file source: the SVID in {} does not verify against its bundle", chain.display())]
    Unverified {
        /// The chain file.
        chain: PathBuf,
        /// Why.
        source: VerifyError,
    },
    /// A watched path is not a regular file (or a symlink to one): a FIFO,
    /// a socket, a device or a directory. Such a path could block a read
    /// forever, so it is never opened for reading.
    #[error("file source: {} is {kind}, not a regular file; refusing to read it", path.display())]
    NotARegularFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// Reading the files took longer than [`WatchOptions::read_timeout`]
    /// (a hung network mount, for instance). The last good set keeps
    /// serving; no other read starts until that one returns.
    #[error("file source: reading the files took longer than {after:?}; the last good set keeps serving")]
    ReadTimeout {
        /// The time limit.
        after: Duration,
    },
    /// A reader or watch thread could not be started.
    #[error("file source: {reason}")]
    Thread {
        /// What failed.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read that hangs (a hung network mount cannot be produced in a
    /// test, a sleeping job can) is given up on after the time limit, and
    /// its late result still arrives.
    #[test]
    fn run_bounded_gives_up_on_a_hung_job_and_keeps_its_late_result() {
        let started = Instant::now();
        let outcome = run_bounded(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_millis(300));
            7
        });
        assert!(started.elapsed() < Duration::from_millis(250));
        let Bounded::TimedOut(late) = outcome else {
            panic!("not timed out");
        };
        assert_eq!(late.recv_timeout(Duration::from_secs(5)), Ok(7));
        assert!(matches!(
            run_bounded(Duration::from_secs(5), || 8),
            Bounded::Done(8)
        ));
        assert!(matches!(
            run_bounded(Duration::from_secs(5), || -> u8 { panic!("boom") }),
            Bounded::Failed(_)
        ));
    }
}
