//! `mtls-ca serve-bundle` and `mtls-ca fetch-bundle`: SPIFFE federation
//! (the bundle endpoint, server and client).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use mtls_core::federation::{
    fetch, serve, BundleEndpoint, EndpointConfig, EndpointProfile, EndpointUrl, ServerProfile,
};
use mtls_core::{
    BundleSet, IssueError, JwtKey, RenewingSvid, SharedBundles, SpiffeId, SvidIssuer, SvidSpec,
    X509Bundle, X509Svid,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use super::files::{self, note, print};
use super::{Failure, FetchBundleArgs, ProfileArg, ServeBundleArgs};
use crate::fs::write_atomic;
use crate::{CaError, CertificateAuthority, BUNDLE_FILE, CA_CERT_FILE, CA_KEY_FILE, STATE_FILE};

/// The path of the SPIFFE ID `serve-bundle` presents with `https_spiffe`,
/// in the CA's trust domain.
pub(crate) const ENDPOINT_PATH: &str = "/mtls-ca/bundle-endpoint";

/// How often `serve-bundle` looks at the CA directory.
const POLL: Duration = Duration::from_secs(1);

/// The files of a CA directory whose change `serve-bundle` follows.
const WATCHED: [&str; 5] = [
    CA_CERT_FILE,
    CA_KEY_FILE,
    BUNDLE_FILE,
    STATE_FILE,
    crate::JWT_KEYS_FILE,
];

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}

// ---------------------------------------------------------------------------
// serve-bundle

/// Issues the endpoint's SVID from whichever CA the cell holds when asked.
struct CurrentCa(Arc<ArcSwap<CertificateAuthority>>);

impl SvidIssuer for CurrentCa {
    async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
        let ca = self.0.load_full();
        ca.issue_svid(spec).await
    }
}

/// What identifies a version of a watched file: its size, modification
/// time and (on Unix) inode, which every atomic rewrite changes. `None`:
/// absent or unreadable. (Metadata only: the CA key is not read every
/// second.)
type FileStamp = Option<(u64, Option<SystemTime>, u64)>;

fn stamp(path: &Path) -> FileStamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), meta.modified().ok(), inode))
}

/// The stamps of the watched files, to notice a change.
fn snapshot(dir: &Path) -> Vec<FileStamp> {
    WATCHED.iter().map(|name| stamp(&dir.join(name))).collect()
}

/// What the endpoint publishes from a CA: its bundle (the X.509
/// authorities) and its JWT authorities.
fn published(ca: &CertificateAuthority) -> Result<(X509Bundle, Vec<JwtKey>), CaError> {
    Ok((ca.bundle()?, ca.jwt_authorities()?))
}

/// Whether an SVID issued by `ca` is verified by a peer holding `bundle`:
/// a certificate of `ca`'s chain is one of `bundle`'s authorities.
fn anchored_in(ca: &CertificateAuthority, bundle: &X509Bundle) -> bool {
    ca.chain().iter().any(|c| bundle.authorities().contains(c))
}

pub(crate) fn serve_bundle(a: ServeBundleArgs) -> Result<(), Failure> {
    // Usage first, before any file is read.
    let web = match (a.profile, &a.cert, &a.key) {
        (ProfileArg::HttpsSpiffe, None, None) => None,
        (ProfileArg::HttpsSpiffe, _, _) => {
            return Err(Failure::usage(
                "--cert and --key are for --profile https_web; with https_spiffe the endpoint presents an X509-SVID issued by the CA in --dir",
            ))
        }
        (ProfileArg::HttpsWeb, Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (ProfileArg::HttpsWeb, _, _) => {
            return Err(Failure::usage(
                "--profile https_web needs --cert CHAIN.pem and --key KEY.pem (a web PKI certificate for the endpoint's host name or address)",
            ))
        }
    };
    let hint = a.refresh_hint.max(Duration::from_secs(1));
    // Stamped before opening: a change in between is seen at the first poll.
    let seen = snapshot(&a.dir);
    let ca = super::ca::open(&a.dir)?;
    let web = match web {
        Some((cert, key)) => {
            let chain = files::read_certificates(&cert, "certificate chain")?;
            let key_pem = zeroize::Zeroizing::new(files::read(&key, "private key")?);
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| Failure::failed(format!("private key {}: {e}", key.display())))?;
            Some((chain, key))
        }
        None => None,
    };
    runtime()?.block_on(serve_bundle_async(a.dir, seen, a.listen, hint, ca, web))
}

async fn serve_bundle_async(
    dir: PathBuf,
    seen: Vec<FileStamp>,
    listen: std::net::SocketAddr,
    hint: Duration,
    ca: CertificateAuthority,
    web: Option<(
        Vec<rustls_pki_types::CertificateDer<'static>>,
        PrivateKeyDer<'static>,
    )>,
) -> Result<(), Failure> {
    let td = ca.trust_domain().clone();
    let (bundle, jwt) = published(&ca)?;
    let bundles = SharedBundles::new(BundleSet::from(bundle.clone()));
    let jwt_cell = Arc::new(ArcSwap::from_pointee(jwt));
    let hook = jwt_cell.clone();
    let endpoint = BundleEndpoint::new(td.clone(), bundles.clone())
        .refresh_hint(hint)
        .jwt_authorities(move || hook.load().as_ref().clone());

    let signing = Arc::new(ArcSwap::from_pointee(ca));
    let (profile, svid, id) = match web {
        Some((chain, key)) => (ServerProfile::https_web(chain, key), None, None),
        None => {
            let id = SpiffeId::new(&format!("spiffe://{}{ENDPOINT_PATH}", td.name()))
                .map_err(|e| Failure::failed(format!("the endpoint's SPIFFE ID: {e}")))?;
            let svid = RenewingSvid::start(CurrentCa(signing.clone()), SvidSpec::new(id.clone()))
                .await
                .map_err(|e| {
                    Failure::failed(format!(
                        "cannot issue the endpoint's SVID ({id}): {}",
                        mtls_core::ErrorChain(&e)
                    ))
                })?;
            let svid = Arc::new(svid);
            (
                ServerProfile::https_spiffe(svid.clone()),
                Some(svid),
                Some(id),
            )
        }
    };

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on {listen}: {e}")))?;
    let server = serve(listener, endpoint, profile).map_err(|e| {
        Failure::failed(format!(
            "cannot serve the bundle endpoint: {}",
            mtls_core::ErrorChain(&e)
        ))
    })?;
    // Listening for signals before the line is printed: whoever reads it
    // may stop the server at once.
    let mut stop = StopSignals::new()?;
    let url = format!("https://{}", server.local_addr());
    match &id {
        Some(id) => print(&format!("serving {url} {id}\n"))?,
        None => print(&format!("serving {url}\n"))?,
    }

    let mut watch = DirWatch {
        dir,
        seen,
        failed: None,
        bundle,
        bundles,
        jwt: jwt_cell,
        signing,
        svid,
        pending: None,
        // Partners poll at the hint: two of them cover a poll that was
        // just missed.
        grace: hint.saturating_mul(2),
    };
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.recv() => break,
            _ = tick.tick() => watch.poll().await,
        }
    }
    server.shutdown().await;
    Ok(())
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), listened for from creation on.
#[cfg(unix)]
pub(super) struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    pub(super) fn new() -> Result<Self, Failure> {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind: SignalKind| {
            signal(kind).map_err(|e| Failure::failed(format!("cannot listen for signals: {e}")))
        };
        Ok(Self {
            int: listen(SignalKind::interrupt())?,
            term: listen(SignalKind::terminate())?,
        })
    }

    /// Resolves at the first signal.
    pub(super) async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

#[cfg(not(unix))]
pub(super) struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    pub(super) fn new() -> Result<Self, Failure> {
        Ok(Self)
    }

    pub(super) async fn recv(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// `serve-bundle` following its CA directory.
struct DirWatch {
    dir: PathBuf,
    /// The watched files as last opened successfully (or tried).
    seen: Vec<FileStamp>,
    /// The snapshot that last failed to open (logged once).
    failed: Option<Vec<FileStamp>>,
    /// The X.509 bundle published now.
    bundle: X509Bundle,
    bundles: SharedBundles,
    jwt: Arc<ArcSwap<Vec<JwtKey>>>,
    /// The CA the endpoint's SVID is issued by.
    signing: Arc<ArcSwap<CertificateAuthority>>,
    svid: Option<Arc<RenewingSvid>>,
    /// A new CA whose bundle is published, not yet signing the endpoint's
    /// SVID, and when it will.
    pending: Option<(Arc<CertificateAuthority>, Instant)>,
    grace: Duration,
}

impl DirWatch {
    async fn poll(&mut self) {
        let now = snapshot(&self.dir);
        if now != self.seen && self.failed.as_ref() != Some(&now) {
            let dir = self.dir.clone();
            let opened = tokio::task::spawn_blocking(move || {
                CertificateAuthority::open(&dir).and_then(|ca| {
                    let published = published(&ca)?;
                    Ok((ca, published))
                })
            })
            .await;
            match opened {
                Ok(Ok((ca, (bundle, jwt)))) => {
                    self.seen = now;
                    self.failed = None;
                    self.changed(ca, bundle, jwt).await;
                }
                Ok(Err(e)) => {
                    note(&format!(
                        "cannot open the CA in {} ({}); still serving the last good bundle",
                        self.dir.display(),
                        e
                    ));
                    self.failed = Some(now);
                }
                Err(e) => {
                    note(&format!(
                        "cannot open the CA in {}: {}",
                        self.dir.display(),
                        mtls_core::ErrorChain(&e)
                    ));
                }
            }
        } else {
            // Retired JWT keys leave the bundle when their overlap ends.
            let ca = self.pending_or_signing();
            if let Ok(jwt) = ca.jwt_authorities() {
                if **self.jwt.load() != jwt {
                    self.jwt.store(Arc::new(jwt));
                }
            }
        }
        self.activate_pending().await;
    }

    /// The newest CA opened.
    fn pending_or_signing(&self) -> Arc<CertificateAuthority> {
        match &self.pending {
            Some((ca, _)) => ca.clone(),
            None => self.signing.load_full(),
        }
    }

    async fn changed(&mut self, ca: CertificateAuthority, bundle: X509Bundle, jwt: Vec<JwtKey>) {
        if **self.jwt.load() != jwt {
            self.jwt.store(Arc::new(jwt));
        }
        let previous = std::mem::replace(&mut self.bundle, bundle.clone());
        if previous != bundle {
            self.bundles.set(BundleSet::from(bundle));
        }
        let ca = Arc::new(ca);
        let same_ca = self.signing.load().chain() == ca.chain();
        if same_ca || self.svid.is_none() {
            // Same signing CA (a revocation, a JWT key, a new root in
            // bundle.pem): take its new state, the SVID stays valid.
            self.pending = None;
            self.signing.store(ca);
        } else if anchored_in(&ca, &previous) {
            // Peers holding the previous bundle verify an SVID of the new
            // CA: re-issue now.
            self.pending = Some((ca, Instant::now()));
        } else {
            note(&format!(
                "the CA in {} changed; its bundle is published now, and the endpoint's SVID is issued by the new CA in {:?}, once partners holding the previous bundle have fetched the new one",
                self.dir.display(),
                self.grace
            ));
            self.pending = Some((ca, Instant::now() + self.grace));
        }
    }

    async fn activate_pending(&mut self) {
        let Some((ca, due)) = &self.pending else {
            return;
        };
        if Instant::now() < *due {
            return;
        }
        self.signing.store(ca.clone());
        self.pending = None;
        if let Some(svid) = &self.svid {
            if let Err(e) = svid.renew_now().await {
                note(&format!(
                    "cannot issue the endpoint's SVID from the new CA ({}); retrying",
                    mtls_core::ErrorChain(&e)
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// fetch-bundle

pub(crate) fn parse_url(s: &str) -> Result<EndpointUrl, String> {
    EndpointUrl::new(s).map_err(|e| e.to_string())
}

pub(crate) fn fetch_bundle(a: FetchBundleArgs) -> Result<(), Failure> {
    let profile = match a.profile {
        ProfileArg::HttpsSpiffe => {
            if a.ca.is_some() {
                return Err(Failure::usage(
                    "--ca is for --profile https_web; https_spiffe authenticates the endpoint with --endpoint-bundle",
                ));
            }
            let (Some(id), Some(file)) = (&a.endpoint_id, &a.endpoint_bundle) else {
                return Err(Failure::usage(
                    "--profile https_spiffe needs --endpoint-id ID (the SPIFFE ID the endpoint presents) and --endpoint-bundle FILE (a bundle of that ID's trust domain, PEM or SPIFFE JSON)",
                ));
            };
            let bytes = files::read(file, "endpoint bundle")?;
            let bootstrap = X509Bundle::from_pem_or_jwks(id.trust_domain().clone(), &bytes)
                .map_err(|e| {
                    Failure::failed(format!(
                        "endpoint bundle {} (trust domain {}): {}",
                        file.display(),
                        id.trust_domain(),
                        mtls_core::ErrorChain(&e)
                    ))
                })?;
            EndpointProfile::https_spiffe(id.clone(), bootstrap)
        }
        ProfileArg::HttpsWeb => {
            if a.endpoint_id.is_some() || a.endpoint_bundle.is_some() {
                return Err(Failure::usage(
                    "--endpoint-id and --endpoint-bundle are for --profile https_spiffe; https_web validates the endpoint's web certificate against --ca or the system's roots",
                ));
            }
            match &a.ca {
                Some(path) => {
                    EndpointProfile::https_web(files::read_certificates(path, "CA certificates")?)
                }
                None => EndpointProfile::https_web_system_roots(),
            }
        }
    };
    let config = EndpointConfig::new(a.url.clone(), a.trust_domain.clone(), profile)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let bundle = runtime()?.block_on(fetch(&config)).map_err(|e| {
        Failure::failed(format!(
            "fetching the bundle of {} from {} ({}): {}",
            a.trust_domain,
            a.url,
            e.kind(),
            mtls_core::ErrorChain(&e)
        ))
    })?;
    let mut json = bundle
        .to_jwks()
        .map_err(|e| Failure::failed(format!("cannot render the fetched bundle: {e}")))?;
    if !json.ends_with('\n') {
        json.push('\n');
    }
    match &a.out {
        Some(out) => {
            write_atomic(out, json.as_bytes())?;
            note(&format!(
                "bundle of {} (sequence {}) written to {}",
                a.trust_domain,
                bundle
                    .sequence()
                    .map_or_else(|| "none".to_owned(), |s| s.to_string()),
                out.display()
            ));
            Ok(())
        }
        None => print(&json),
    }
}
