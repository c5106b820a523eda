//! Run with: `cargo run -p examples --bin axum-server -- --help` (this module is shared by `axum-server`, `axum-client`, `tonic-server` and `tonic-client`).
//!
//! The command-line plumbing of the network examples, written once: the
//! identity flags (`--cert`, `--key`, `--bundle [TD=]FILE`, `--crl`), the
//! server's authorization flags (`--allow`, `--allow-trust-domain`,
//! `--admin`), loading and checking the files they name, the configs built
//! from them, and how errors end the program (a message on stderr, exit 1).
//!
//! Each binary includes this file with `#[path]` and uses its part of it.
#![allow(dead_code)]

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use mtls_core::authorize::{self, OneOf};
use mtls_core::{
    Authorizer, AuthorizerExt, BundleSet, CrlSet, FilePaths, FileSource, MtlsClientConfig,
    MtlsServerConfig, SpiffeId, TrustDomain, WatchOptions, X509Bundle, X509Svid,
};

/// Errors of the examples: any error, with a message that says which flag
/// and file it is about.
pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

/// A `--bundle` value: `FILE` (the bundle of our own trust domain) or
/// `TD=FILE` (the bundle of a federated trust domain).
#[derive(Debug, Clone)]
pub(crate) struct BundleArg {
    /// The trust domain before `=`, if any.
    pub(crate) trust_domain: Option<TrustDomain>,
    /// The bundle file: PEM certificates or a SPIFFE JWKS document.
    pub(crate) path: PathBuf,
}

/// Parses `FILE` or `TD=FILE`. The part before the first `=` counts as a
/// trust domain only if it is one (`example.org` or `spiffe://example.org`);
/// otherwise the whole value is a path, so a path containing `=` can be
/// written `./a=b.pem`.
pub(crate) fn parse_bundle_arg(s: &str) -> Result<BundleArg, String> {
    if let Some((td, path)) = s.split_once('=') {
        if let Ok(td) = TrustDomain::from_id_or_name(td) {
            if path.is_empty() {
                return Err(format!("{s:?}: no file after '='"));
            }
            return Ok(BundleArg {
                trust_domain: Some(td),
                path: PathBuf::from(path),
            });
        }
    }
    if s.is_empty() {
        return Err("empty bundle file name".into());
    }
    Ok(BundleArg {
        trust_domain: None,
        path: PathBuf::from(s),
    })
}

/// Parses a trust domain given as a name or as `spiffe://name`.
pub(crate) fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    TrustDomain::from_id_or_name(s).map_err(|e| e.to_string())
}

/// Parses a SPIFFE ID.
pub(crate) fn parse_spiffe_id(s: &str) -> Result<SpiffeId, String> {
    SpiffeId::new(s).map_err(|e| e.to_string())
}

/// Who we are and whom we trust: the flags every example takes.
#[derive(Debug, Args)]
pub(crate) struct IdentityArgs {
    /// Our X.509-SVID: the certificate chain, PEM, leaf first.
    #[arg(long, value_name = "CHAIN.pem")]
    pub(crate) cert: PathBuf,
    /// The SVID's private key, PEM (PKCS#8, SEC1 or PKCS#1).
    #[arg(long, value_name = "KEY.pem")]
    pub(crate) key: PathBuf,
    /// A trust bundle, PEM or SPIFFE JWKS (detected). `FILE` is the bundle
    /// of our own trust domain (the one of our SVID); `TD=FILE` is the
    /// bundle of another, federated trust domain. Repeatable, one bundle
    /// per trust domain.
    #[arg(long = "bundle", value_name = "[TD=]FILE", required = true, value_parser = parse_bundle_arg)]
    pub(crate) bundles: Vec<BundleArg>,
    /// A certificate revocation list, PEM or DER (repeatable).
    #[arg(long = "crl", value_name = "FILE")]
    pub(crate) crls: Vec<PathBuf>,
}

/// The files named by [`IdentityArgs`], loaded and checked.
#[derive(Debug)]
pub(crate) struct Material {
    /// Our SVID (the key matches the leaf; the leaf is a valid SVID).
    pub(crate) svid: X509Svid,
    /// One bundle per trust domain.
    pub(crate) bundles: BundleSet,
    /// The revocation lists, if any were given.
    pub(crate) crls: Option<CrlSet>,
}

impl Material {
    /// Our own trust domain: the one of our SVID.
    pub(crate) fn trust_domain(&self) -> TrustDomain {
        self.svid.spiffe_id().trust_domain().clone()
    }
}

/// Reads a file named by `flag`, saying which flag and file on error.
pub(crate) fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, BoxError> {
    std::fs::read(path).map_err(|e| format!("cannot read {flag} {}: {e}", path.display()).into())
}

impl IdentityArgs {
    /// Checks the files like [`IdentityArgs::load`], then watches them: a
    /// changed certificate, key, bundle or CRL is served by new handshakes
    /// without a restart, once the whole new set is good (the last good set
    /// keeps serving otherwise).
    pub(crate) fn watch(&self) -> Result<(Arc<FileSource>, TrustDomain), BoxError> {
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
    pub(crate) fn load(&self) -> Result<Material, BoxError> {
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
pub(crate) struct ServerArgs {
    /// The address to listen on, such as 127.0.0.1:8443 (port 0: any free
    /// port; the real address is printed).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: String,
    #[command(flatten)]
    pub(crate) identity: IdentityArgs,
    /// A SPIFFE ID allowed to connect (repeatable). With neither --allow nor
    /// --allow-trust-domain, every member of our own trust domain may
    /// connect.
    #[arg(long = "allow", value_name = "ID", value_parser = parse_spiffe_id)]
    pub(crate) allow: Vec<SpiffeId>,
    /// A trust domain whose members may connect (repeatable); its bundle
    /// must be given with --bundle (TD=FILE for a federated one).
    #[arg(long = "allow-trust-domain", value_name = "TD", value_parser = parse_trust_domain)]
    pub(crate) allow_trust_domains: Vec<TrustDomain>,
    /// A SPIFFE ID that may call the admin endpoint (repeatable; default:
    /// nobody). It must also be allowed to connect.
    #[arg(long = "admin", value_name = "ID", value_parser = parse_spiffe_id)]
    pub(crate) admins: Vec<SpiffeId>,
}

impl ServerArgs {
    /// Who may connect at all: the `--allow` IDs or the members of the
    /// `--allow-trust-domain` trust domains; by default, the members of
    /// `own` (our SVID's trust domain).
    pub(crate) fn connection_authorizer(&self, own: &TrustDomain) -> Arc<dyn Authorizer> {
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
    pub(crate) fn admin_authorizer(&self) -> OneOf {
        authorize::one_of(self.admins.iter().cloned())
    }

    /// Watches the files and builds the server's TLS config, offering
    /// `alpn`. Rejected peers are reported on stderr, prefixed by `program`.
    pub(crate) fn server_config(
        &self,
        program: &'static str,
        alpn: &[&[u8]],
    ) -> Result<MtlsServerConfig, BoxError> {
        // Watched: rotated files are picked up without a restart.
        let (files, own) = self.identity.watch()?;
        MtlsServerConfig::builder(files.clone(), files.clone())
            .crls(files)
            .authorizer(self.connection_authorizer(&own))
            .alpn_protocols(alpn.iter().map(|p| p.to_vec()).collect())
            // Safe: mtls-tower's listener verifies resumed sessions again.
            .resumption(true)
            .on_rejection(move |e| eprintln!("{program}: rejected a client: {e}"))
            .build()
            .map_err(|e| format!("cannot build the TLS server config: {e}").into())
    }
}

/// The flags of both clients, besides the server's address.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    pub(crate) identity: IdentityArgs,
    /// The SPIFFE ID the server must present; any other server is refused
    /// during the handshake.
    #[arg(long = "server-id", value_name = "ID", value_parser = parse_spiffe_id)]
    pub(crate) server_id: SpiffeId,
}

impl ClientArgs {
    /// Loads the files and builds the client's TLS config, offering `alpn`.
    /// A rejected server is reported on stderr, prefixed by `program`, with
    /// the full reason (the TLS error alone only says the kind).
    pub(crate) fn client_config(
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
pub(crate) fn announce(addr: SocketAddr) -> Result<(), BoxError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    Ok(())
}

/// Resolves on Ctrl-C (and SIGTERM on Unix): the servers stop cleanly.
pub(crate) async fn shutdown_signal() {
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

/// An error and its sources on one line, without repeating a source whose
/// text the message already holds.
pub(crate) fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !part.is_empty() && !text.contains(&part) {
            let _ = write!(text, ": {part}");
        }
        source = e.source();
    }
    text
}

/// Ends the program: the exit status `run` chose; on error,
/// `program: <message>` on stderr and exit 1.
pub(crate) fn exit(program: &str, result: Result<ExitCode, BoxError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{program}: {}", error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}
