//! The command-line plumbing of the network examples, written once: the
//! identity flags (`--cert`, `--key`, `--bundle [TD=]FILE`, `--crl`), the
//! server's authorization flags (`--allow`, `--allow-trust-domain`,
//! `--admin`), loading and checking the files they name, the configs built
//! from them, and how errors end the program (a message on stderr, exit 1).
//!
//! Shared by `axum-server`, `axum-client`, `tonic-server` and
//! `tonic-client` (`cargo run -p examples --bin axum-server -- --help`).
//!
//! ```
//! use examples::cli::parse_bundle_arg;
//!
//! // `--bundle FILE` is our own trust domain's bundle, `--bundle TD=FILE`
//! // a federated one's.
//! let own = parse_bundle_arg("bundle.pem")?;
//! assert!(own.trust_domain.is_none());
//! let partner = parse_bundle_arg("partner.org=partner.json")?;
//! assert_eq!(partner.trust_domain.map(|td| td.to_string()).as_deref(), Some("partner.org"));
//! # Ok::<(), String>(())
//! ```

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mtls_tower::{MtlsListener, PolicyFile, PolicyFileOptions, PolicyMode};

use crate::{error_chain, BoxError};
use mtls_core::authorize::{self, OneOf};
use mtls_core::{
    Authorizer, AuthorizerExt, BundleSet, BundleSource, CrlSet, FilePaths, FileSource,
    MtlsClientConfig, MtlsServerConfig, SpiffeId, TrustDomain, WatchOptions, X509Bundle, X509Svid,
};

/// A `--bundle` value: `FILE` (the bundle of our own trust domain) or
/// `TD=FILE` (the bundle of a federated trust domain).
#[derive(Debug, Clone)]
pub struct BundleArg {
    /// The trust domain before `=`, if any.
    pub trust_domain: Option<TrustDomain>,
    /// The bundle file: PEM certificates or a SPIFFE JWKS document.
    pub path: PathBuf,
}

/// Parses `FILE` or `TD=FILE`. The part before the first `=` counts as a
/// trust domain only if it is one (`example.org` or `spiffe://example.org`);
/// otherwise the whole value is a path, so a path containing `=` can be
/// written `./a=b.pem`.
pub fn parse_bundle_arg(s: &str) -> Result<BundleArg, String> {
    // The syntax of `mtls-ca verify --bundle`, parsed by the same code.
    let (trust_domain, path) = mtls_ca::cli::split_bundle_arg(s)?;
    Ok(BundleArg { trust_domain, path })
}

/// Parses a trust domain given as a name or as `spiffe://name`.
pub fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    TrustDomain::from_id_or_name(s).map_err(|e| e.to_string())
}

/// Parses a SPIFFE ID.
pub fn parse_spiffe_id(s: &str) -> Result<SpiffeId, String> {
    SpiffeId::new(s).map_err(|e| e.to_string())
}

/// Who we are and whom we trust: the flags every example takes.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// Our X.509-SVID: the certificate chain, PEM, leaf first.
    #[arg(long, value_name = "CHAIN.pem")]
    pub cert: PathBuf,
    /// The SVID's private key, PEM (PKCS#8, SEC1 or PKCS#1).
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// A trust bundle, PEM or SPIFFE JWKS (detected). `FILE` is the bundle
    /// of our own trust domain (the one of our SVID); `TD=FILE` is the
    /// bundle of another, federated trust domain. Repeatable, one bundle
    /// per trust domain.
    #[arg(long = "bundle", value_name = "[TD=]FILE", required = true, value_parser = parse_bundle_arg)]
    pub bundles: Vec<BundleArg>,
    /// A certificate revocation list, PEM or DER (repeatable).
    #[arg(long = "crl", value_name = "FILE")]
    pub crls: Vec<PathBuf>,
}

/// The files named by [`IdentityArgs`], loaded and checked.
#[derive(Debug)]
pub struct Material {
    /// Our SVID (the key matches the leaf; the leaf is a valid SVID).
    pub svid: X509Svid,
    /// One bundle per trust domain.
    pub bundles: BundleSet,
    /// The revocation lists, if any were given.
    pub crls: Option<CrlSet>,
}

impl Material {
    /// Our own trust domain: the one of our SVID.
    pub fn trust_domain(&self) -> TrustDomain {
        self.svid.spiffe_id().trust_domain().clone()
    }
}

/// Reads a file named by `flag`, saying which flag and file on error.
pub fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, BoxError> {
    std::fs::read(path).map_err(|e| format!("cannot read {flag} {}: {e}", path.display()).into())
}

impl IdentityArgs {
    /// Checks the files like [`IdentityArgs::load`], then watches them: a
    /// changed certificate, key, bundle or CRL is served by new handshakes
    /// without a restart, once the whole new set is good (the last good set
    /// keeps serving otherwise).
    pub fn watch(&self) -> Result<(Arc<FileSource>, TrustDomain), BoxError> {
        let material = self.load()?;
        let own = material.trust_domain();
        let own_bundle = self
            .bundles
            .iter()
            .find(|b| b.trust_domain.as_ref().is_none_or(|td| *td == own))
            .ok_or_else(|| format!("no --bundle for our own trust domain {own}"))?;
        let mut paths = FilePaths::new(&self.cert, &self.key, &own_bundle.path);
        for arg in &self.bundles {
            if let Some(td) = arg.trust_domain.as_ref().filter(|td| **td != own) {
                paths = paths.federated(td.clone(), &arg.path);
            }
        }
        for crl in &self.crls {
            paths = paths.crl(crl);
        }
        let source = FileSource::watch(paths, WatchOptions::default())
            .map_err(|e| format!("cannot watch the identity files: {e}"))?;
        Ok((Arc::new(source), own))
    }

    /// Reads and checks every file; the first problem is an error naming
    /// the flag and the file.
    pub fn load(&self) -> Result<Material, BoxError> {
        let chain = read_file("--cert", &self.cert)?;
        let key = read_file("--key", &self.key)?;
        let svid = X509Svid::from_pem(&chain, &key).map_err(|e| {
            format!(
                "--cert {} / --key {}: not a usable X.509-SVID: {e}",
                self.cert.display(),
                self.key.display()
            )
        })?;
        let own = svid.spiffe_id().trust_domain().clone();

        let mut bundles = BundleSet::new();
        for arg in &self.bundles {
            let td = arg.trust_domain.clone().unwrap_or_else(|| own.clone());
            let bytes = read_file("--bundle", &arg.path)?;
            let bundle = X509Bundle::from_pem_or_jwks(td.clone(), &bytes).map_err(|e| {
                format!(
                    "--bundle {}: not a trust bundle (PEM or SPIFFE JWKS) for {td}: {e}",
                    arg.path.display()
                )
            })?;
            if bundles.insert(bundle).is_some() {
                return Err(format!(
                    "two bundles for trust domain {td} (the last one is {}); give one bundle per \
                     trust domain (a --bundle without TD= is for {own}, the trust domain of --cert)",
                    arg.path.display()
                )
                .into());
            }
        }

        let crls = if self.crls.is_empty() {
            None
        } else {
            let mut set = CrlSet::new();
            for path in &self.crls {
                let bytes = read_file("--crl", path)?;
                let crl = CrlSet::from_pem_or_der(&bytes).map_err(|e| {
                    format!("--crl {}: not a CRL (PEM or DER): {e}", path.display())
                })?;
                set.extend(&crl);
            }
            Some(set)
        };
        Ok(Material {
            svid,
            bundles,
            crls,
        })
    }
}

/// The flags of both servers.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The address to listen on, such as 127.0.0.1:8443 (port 0: any free
    /// port; the real address is printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Our identity and the bundles we trust.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// A SPIFFE ID allowed to connect (repeatable). With neither --allow nor
    /// --allow-trust-domain, every member of our own trust domain may
    /// connect.
    #[arg(long = "allow", value_name = "ID", value_parser = parse_spiffe_id)]
    pub allow: Vec<SpiffeId>,
    /// A trust domain whose members may connect (repeatable); its bundle
    /// must be given with --bundle (TD=FILE for a federated one).
    #[arg(long = "allow-trust-domain", value_name = "TD", value_parser = parse_trust_domain)]
    pub allow_trust_domains: Vec<TrustDomain>,
    /// A SPIFFE ID that may call the admin endpoint (repeatable; default:
    /// nobody). It must also be allowed to connect.
    #[arg(long = "admin", value_name = "ID", value_parser = parse_spiffe_id)]
    pub admins: Vec<SpiffeId>,
    /// The policy file deciding every request instead, and its mode.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

impl ServerArgs {
    /// Who may connect at all: the `--allow` IDs or the members of the
    /// `--allow-trust-domain` trust domains; by default, the members of
    /// `own` (our SVID's trust domain).
    pub fn connection_authorizer(&self, own: &TrustDomain) -> Arc<dyn Authorizer> {
        let ids = (!self.allow.is_empty()).then(|| authorize::one_of(self.allow.iter().cloned()));
        let tds = (!self.allow_trust_domains.is_empty())
            .then(|| authorize::member_of_any(self.allow_trust_domains.iter().cloned()));
        match (ids, tds) {
            (Some(ids), Some(tds)) => ids.or(tds).shared(),
            (Some(ids), None) => ids.shared(),
            (None, Some(tds)) => tds.shared(),
            (None, None) => authorize::member_of(own.clone()).shared(),
        }
    }

    /// Who may call the admin endpoint: the `--admin` IDs (nobody if none).
    pub fn admin_authorizer(&self) -> OneOf {
        authorize::one_of(self.admins.iter().cloned())
    }

    /// Watches the files and builds the server's TLS config, offering
    /// `alpn`. Rejected peers are reported on stderr, prefixed by `program`.
    pub fn server_config(
        &self,
        program: &'static str,
        alpn: &[&[u8]],
    ) -> Result<MtlsServerConfig, BoxError> {
        self.server_config_with(program, alpn, Ok)
    }

    /// [`server_config`](Self::server_config) trusting the bundles that
    /// `bundles` makes of the watched files' (adding federated trust
    /// domains, say).
    pub fn server_config_with(
        &self,
        program: &'static str,
        alpn: &[&[u8]],
        bundles: impl FnOnce(Arc<dyn BundleSource>) -> Result<Arc<dyn BundleSource>, BoxError>,
    ) -> Result<MtlsServerConfig, BoxError> {
        // Watched: rotated files are picked up without a restart.
        let (files, own) = self.identity.watch()?;
        let bundles = bundles(files.clone())?;
        MtlsServerConfig::builder(files.clone(), bundles)
            .crls(files)
            .authorizer(self.connection_authorizer(&own))
            .alpn_protocols(alpn.iter().map(|p| p.to_vec()).collect())
            // Safe: mtls-tower's listener verifies resumed sessions again.
            .resumption(true)
            .on_rejection(move |e| eprintln!("{program}: rejected a client: {e}"))
            .build()
            .map_err(|e| format!("cannot build the TLS server config: {e}").into())
    }

    /// Binds `--listen` with `server` and [`announce`]s the real address.
    pub async fn bind(&self, server: MtlsServerConfig) -> Result<MtlsListener, BoxError> {
        let listener = MtlsListener::bind(&self.listen, server)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", self.listen))?;
        announce(listener.local_addr())?;
        Ok(listener)
    }
}

/// Parses `enforce`, `audit` or `learn`.
pub fn parse_policy_mode(s: &str) -> Result<PolicyMode, String> {
    s.parse()
}

/// The policy flags of both servers: a policy file deciding every request
/// (hot reloaded), its mode, and where learn mode writes what it learned.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// A policy file (TOML, see docs/policy.md) that decides every request,
    /// the admin endpoint included (--admin is then not used). Reloaded when
    /// it changes; a bad file is logged and the last good policy keeps
    /// serving.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// enforce (the default with --policy), audit (every decision is logged
    /// and counted, nothing is refused) or learn (every caller allowed to
    /// connect is allowed, and the distinct calls seen are written to
    /// --learn-out as a policy allowing exactly them; needs no --policy).
    #[arg(long = "policy-mode", value_name = "MODE", value_parser = parse_policy_mode)]
    pub policy_mode: Option<PolicyMode>,
    /// Learn mode: the file the learned policy is written to, atomically
    /// (a temporary file renamed over it), every --learn-interval seconds
    /// and on SIGINT/SIGTERM.
    #[arg(long = "learn-out", value_name = "FILE")]
    pub learn_out: Option<PathBuf>,
    /// Learn mode: seconds between two writes of --learn-out.
    #[arg(long = "learn-interval", value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub learn_interval: u64,
}

/// A policy the server serves per request, from [`PolicyArgs`].
#[derive(Debug, Clone)]
pub struct ServedPolicy {
    /// The policy (enforce, audit or learn mode), for an
    /// [`AuthorizeLayer`](mtls_tower::AuthorizeLayer).
    pub file: PolicyFile,
    learn_out: Option<PathBuf>,
    interval: Duration,
}

impl PolicyArgs {
    /// Checks that the flags go together: `Err` is a usage error, to be
    /// reported like clap's (exit 2). `admins` are the `--admin` IDs,
    /// which a policy replaces.
    pub fn validate(&self, admins: &[SpiffeId]) -> Result<(), String> {
        let learn = self.policy_mode == Some(PolicyMode::Learn);
        if self.learn_out.is_some() && !learn {
            return Err("--learn-out is only used with --policy-mode learn".into());
        }
        if learn && self.learn_out.is_none() {
            return Err(
                "--policy-mode learn needs --learn-out FILE (where the learned policy is written)"
                    .into(),
            );
        }
        if learn && self.policy.is_some() {
            return Err(
                "--policy is not used in learn mode (every caller allowed to connect is \
                        allowed and recorded); drop it, or use --policy-mode audit to try a policy \
                        without enforcing it"
                    .into(),
            );
        }
        if let (Some(mode), None, false) = (self.policy_mode, &self.policy, learn) {
            return Err(format!(
                "--policy-mode {} needs --policy FILE",
                mode.as_str()
            ));
        }
        if (learn || self.policy.is_some()) && !admins.is_empty() {
            return Err(
                "--admin is not used with --policy or --policy-mode learn: the policy \
                        decides who may call the admin endpoint"
                    .into(),
            );
        }
        Ok(())
    }

    /// [`validate`](Self::validate), exiting with the usage error of the
    /// program's command line `C` (status 2) when the flags do not go
    /// together.
    pub fn validate_or_exit<C: clap::CommandFactory>(&self, admins: &[SpiffeId]) {
        if let Err(e) = self.validate(admins) {
            C::command()
                .error(clap::error::ErrorKind::ArgumentConflict, e)
                .exit();
        }
    }

    /// The policy the flags ask for, loaded (the file must be valid now)
    /// and watched; `None` without `--policy` or learn mode. Call
    /// [`validate`](Self::validate) first.
    pub fn load(&self) -> Result<Option<ServedPolicy>, BoxError> {
        let mode = self.policy_mode.unwrap_or_default();
        let file = match (&self.policy, mode) {
            (_, PolicyMode::Learn) => PolicyFileOptions::new()
                .mode(PolicyMode::Learn)
                .serve(mtls_tower::CompiledPolicy::deny_all()),
            (Some(path), mode) => PolicyFileOptions::new()
                .mode(mode)
                .open(path)
                .map_err(|e| format!("--policy: {e}"))?,
            (None, _) => return Ok(None),
        };
        Ok(Some(ServedPolicy {
            file,
            learn_out: self.learn_out.clone(),
            interval: Duration::from_secs(self.learn_interval),
        }))
    }
}

impl ServedPolicy {
    /// Whether the policy is in learn mode (then the layer must run after
    /// routing, to see axum's route templates).
    pub fn is_learning(&self) -> bool {
        self.file.mode() == PolicyMode::Learn
    }

    /// Learn mode: a task writing the learned policy every
    /// `--learn-interval` (abort it at shutdown, then call
    /// [`write_learned`](Self::write_learned) once more); `None` in the
    /// other modes.
    pub fn spawn_writer(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.learn_out.as_ref()?;
        let me = self.clone();
        Some(tokio::spawn(async move { me.write_periodically().await }))
    }

    async fn write_periodically(&self) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(e) = self.write_learned() {
                tracing::warn!("{e}");
            }
        }
    }

    /// Learn mode: writes the learned policy to `--learn-out` (atomically)
    /// and says so on stderr; nothing in the other modes.
    pub fn write_learned(&self) -> Result<(), BoxError> {
        let Some(out) = &self.learn_out else {
            return Ok(());
        };
        self.file
            .write_learned(out)
            .map_err(|e| format!("cannot write --learn-out {}: {e}", out.display()))?;
        tracing::info!(
            file = %out.display(),
            calls = self.file.observations().len(),
            "learned policy written"
        );
        Ok(())
    }
}

/// Runs `server` to its end with learn mode's periodic writer (see
/// [`ServedPolicy::spawn_writer`]) beside it, then writes the learned
/// policy once more; `served` is what [`PolicyArgs::load`] returned.
pub async fn serve_policy<S, E>(
    served: Option<&ServedPolicy>,
    server: S,
) -> Result<ExitCode, BoxError>
where
    S: std::future::IntoFuture<Output = Result<(), E>>,
    E: Into<BoxError>,
{
    let writer = served.and_then(ServedPolicy::spawn_writer);
    server.await.map_err(Into::into)?;
    if let Some(writer) = writer {
        writer.abort();
    }
    if let Some(served) = served {
        served.write_learned()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The `main` of both servers: parses their command line `C`, exits with
/// its usage error (status 2) when the policy flags do not go together
/// ([`PolicyArgs::validate`]), installs tracing, then runs `run` and ends
/// as [`exit`] does. `server` finds the [`ServerArgs`] in `C`.
pub async fn server_main<C, F>(
    program: &str,
    server: fn(&C) -> &ServerArgs,
    run: impl FnOnce(C) -> F,
) -> ExitCode
where
    C: clap::Parser,
    F: std::future::Future<Output = Result<ExitCode, BoxError>>,
{
    let cli = C::parse();
    let args = server(&cli);
    args.policy.validate_or_exit::<C>(&args.admins);
    init_tracing();
    exit(program, run(cli).await)
}

/// Installs a tracing subscriber writing to stderr, filtered by `RUST_LOG`
/// (default `info`), so that the libraries' log lines (policy reloads,
/// audit decisions, handshake failures) are visible.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The flags of both clients, besides the server's address.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Our identity and the bundles we trust.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// The SPIFFE ID the server must present; any other server is refused
    /// during the handshake.
    #[arg(long = "server-id", value_name = "ID", value_parser = parse_spiffe_id)]
    pub server_id: SpiffeId,
}

impl ClientArgs {
    /// Loads the files and builds the client's TLS config, offering `alpn`.
    /// A rejected server is reported on stderr, prefixed by `program`, with
    /// the full reason (the TLS error alone only says the kind).
    pub fn client_config(
        &self,
        program: &'static str,
        alpn: &[&[u8]],
    ) -> Result<MtlsClientConfig, BoxError> {
        let material = self.identity.load()?;
        let mut builder = MtlsClientConfig::builder(material.svid, material.bundles)
            .authorizer(authorize::exact(self.server_id.clone()))
            .alpn_protocols(alpn.iter().map(|p| p.to_vec()).collect())
            .on_rejection(move |e| eprintln!("{program}: rejected the server: {e}"));
        if let Some(crls) = material.crls {
            builder = builder.crls(crls);
        }
        builder
            .build()
            .map_err(|e| format!("cannot build the TLS client config: {e}").into())
    }
}

/// Prints `listening on ADDR` on stdout and flushes it: the line scripts
/// wait for before they connect.
pub fn announce(addr: SocketAddr) -> Result<(), BoxError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    Ok(())
}

/// Resolves on Ctrl-C (and SIGTERM on Unix): the servers stop cleanly.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Ends the program: the exit status `run` chose; on error,
/// `program: <message>` on stderr and exit 1.
pub fn exit(program: &str, result: Result<ExitCode, BoxError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{program}: {}", error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}
