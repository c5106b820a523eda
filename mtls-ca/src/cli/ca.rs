//! The commands that use a CA directory: init, intermediate, issue,
//! sign-csr, bundle, revoke, crl.

use std::path::Path;

use crate::fs::{write_atomic, write_private};
use crate::{CaOptions, CertificateAuthority, LoadOptions};
use mtls_core::{to_pem, SpiffeId, TrustDomain};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;
use zeroize::Zeroizing;

use super::files::{self, note, print, with_suffix};
use super::inspect::{hex, rfc3339};
use super::{
    BundleArgs, BundleFormat, CrlArgs, Failure, InitArgs, IntermediateArgs, IssueArgs, RevokeArgs,
    SignCsrArgs,
};

const NO_MODE: &str = "\
init needs to know where the signing CA comes from.

A self-signed root CA is for development only: it is not anchored in your
organisation's PKI, so its one key becomes the root of trust of every peer
that trusts it, with nothing above it to revoke, rotate or audit it.

In production, load an intermediate CA issued by your organisation's PKI:
    mtls-ca init --dir DIR --from-cert CHAIN.pem --from-key KEY.pem [--from-roots ROOTS.pem]

For development or tests, ask for a self-signed root explicitly:
    mtls-ca init --dir DIR --trust-domain example.org --self-signed";

const DEVELOPMENT_WARNING: &str = "warning: this is a self-signed root CA, for development only; \
in production load an intermediate from your organisation's PKI with --from-cert/--from-key";

/// Opens the CA saved in `dir`.
pub(super) fn open(dir: &Path) -> Result<CertificateAuthority, Failure> {
    CertificateAuthority::open(dir).map_err(|e| opening(dir, e))
}

fn opening(dir: &Path, e: crate::CaError) -> Failure {
    Failure::from(e).context(format!("cannot open the CA in {}", dir.display()))
}

/// Runs `operation` on the CA in `dir` under the directory's lock, saving
/// its state before the lock is released (see [`CertificateAuthority::update`]).
fn update<T>(
    dir: &Path,
    operation: impl FnOnce(&CertificateAuthority) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut failure = None;
    let result = CertificateAuthority::update(dir, |ca| match operation(ca) {
        Ok(value) => Ok(Some(value)),
        Err(f) => {
            failure = Some(f);
            Ok(None)
        }
    });
    match (result, failure) {
        (_, Some(f)) => Err(f),
        (Ok(Some(value)), None) => Ok(value),
        (Ok(None), None) => Err(Failure::failed("the CA operation returned nothing")),
        (Err(e), None) => Err(opening(dir, e)),
    }
}

fn ca_summary(ca: &CertificateAuthority, dir: &Path) -> String {
    let not_after = match ca.not_after().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => rfc3339(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        Err(_) => "before 1970".to_owned(),
    };
    format!(
        "trust_domain: {}\ndir: {}\nnot_after: {not_after}\n",
        ca.trust_domain(),
        dir.display()
    )
}

pub(crate) fn init(a: InitArgs) -> Result<(), Failure> {
    let ca = match (&a.from_cert, &a.from_key, a.self_signed) {
        (Some(cert), Some(key), false) => {
            let chain = files::read(cert, "CA certificate chain")?;
            if let (Some(td), Some(cert_td)) = (&a.trust_domain, cert_trust_domain(&chain)) {
                if *td != cert_td {
                    return Err(Failure::failed(format!(
                        "the CA certificate in {} is for trust domain {cert_td} (its spiffe:// URI SAN), not {td}; \
                         omit --trust-domain, or load a CA of {td}",
                        cert.display()
                    )));
                }
            }
            if is_self_signed_root(&chain) && !a.development {
                return Err(Failure::failed(format!(
                    "the CA certificate in {} is a self-signed root: signing SVIDs with it puts the root's key online. \
                     Load an intermediate it issued (mtls-ca intermediate, or your PKI), \
                     or add --development to accept it for development",
                    cert.display()
                )));
            }
            let key_pem = Zeroizing::new(files::read(key, "CA private key")?);
            let roots_pem = match &a.from_roots {
                Some(path) => Some(files::read(path, "roots")?),
                None => None,
            };
            let options = LoadOptions {
                trust_domain: a.trust_domain.clone(),
                roots_pem,
            };
            CertificateAuthority::from_pem(&chain, &key_pem, &options).map_err(|e| {
                Failure::from(e).context(format!(
                    "cannot load the CA from {} and {}",
                    cert.display(),
                    key.display()
                ))
            })?
        }
        (None, None, true) => {
            // clap makes --self-signed require --trust-domain.
            let Some(td) = a.trust_domain.clone() else {
                return Err(Failure::usage("--self-signed needs --trust-domain"));
            };
            let options = CaOptions {
                key_type: a.key_type.into(),
                ttl: a.ttl,
                common_name: None,
            };
            CertificateAuthority::self_signed_for_development(td, &options)?
        }
        _ => return Err(Failure::usage(NO_MODE)),
    };
    ca.save(&a.dir, a.force)?;
    if a.self_signed || a.development {
        note(DEVELOPMENT_WARNING);
    }
    print(&ca_summary(&ca, &a.dir))
}

/// Whether the first certificate of `chain_pem` is a self-signed root
/// (subject and issuer the same name); anything unreadable is for the
/// library to report when it loads the chain.
fn is_self_signed_root(chain_pem: &[u8]) -> bool {
    CertificateDer::pem_slice_iter(chain_pem)
        .next()
        .and_then(Result::ok)
        .and_then(|der| {
            X509Certificate::from_der(&der)
                .ok()
                .map(|(_, cert)| cert.subject().as_raw() == cert.issuer().as_raw())
        })
        .unwrap_or(false)
}

/// The trust domain of the `spiffe://` URI SAN of the first certificate in
/// `chain_pem`, if it has a valid one (anything else is for the library to
/// report when it loads the chain).
fn cert_trust_domain(chain_pem: &[u8]) -> Option<TrustDomain> {
    let der = CertificateDer::pem_slice_iter(chain_pem).next()?.ok()?;
    let (_, cert) = X509Certificate::from_der(&der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        GeneralName::URI(uri) if uri.starts_with("spiffe://") => {
            SpiffeId::new(uri).ok().map(|id| id.trust_domain().clone())
        }
        _ => None,
    })
}

pub(crate) fn intermediate(a: IntermediateArgs) -> Result<(), Failure> {
    if let (Ok(parent), Ok(out)) = (a.dir.canonicalize(), a.out.canonicalize()) {
        if parent == out {
            return Err(Failure::usage(
                "--out is the parent CA's own directory; the intermediate needs a directory of its own",
            ));
        }
    }
    let parent = open(&a.dir)?;
    let options = CaOptions {
        key_type: a.key_type.into(),
        ttl: a.ttl,
        common_name: None,
    };
    let child = parent.intermediate(&options)?;
    child.save(&a.out, a.force)?;
    print(&ca_summary(&child, &a.out))
}

/// The lines `issue` and `sign-csr` print about a new leaf.
pub(super) fn issued_summary(id: &SpiffeId, leaf: &[u8]) -> Result<String, Failure> {
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| Failure::failed(format!("cannot read back the issued certificate: {e}")))?;
    Ok(format!(
        "spiffe_id: {id}\nserial: {}\nnot_after: {}\n",
        hex(cert.raw_serial()),
        rfc3339(cert.validity().not_after.timestamp())
    ))
}

pub(super) fn check_prefix(prefix: &Path) -> Result<(), Failure> {
    let s = prefix.as_os_str();
    if s.is_empty() || s.to_string_lossy().ends_with(std::path::MAIN_SEPARATOR) || prefix.is_dir() {
        return Err(Failure::usage(format!(
            "--out {:?} must be a file name prefix (PREFIX.pem and PREFIX.key are written), not a directory",
            prefix.display().to_string()
        )));
    }
    Ok(())
}

pub(crate) fn issue(a: IssueArgs) -> Result<(), Failure> {
    let IssueArgs {
        svid: args,
        common_name,
    } = a;
    check_prefix(&args.out)?;
    let mut request = args.leaf.request().key_type(args.key_type.into());
    if let Some(cn) = common_name {
        request = request.common_name(cn);
    }
    let svid = update(&args.dir, |ca| Ok(ca.issue(&request)?))?;
    let key_pem = Zeroizing::new(svid.private_key_pem());
    // The key first: whoever watches the certificate file finds its key
    // already in place.
    write_private(&with_suffix(&args.out, ".key"), key_pem.as_bytes())?;
    write_atomic(&with_suffix(&args.out, ".pem"), svid.chain_pem().as_bytes())?;
    print(&issued_summary(svid.spiffe_id(), svid.leaf())?)
}

pub(crate) fn sign_csr(a: SignCsrArgs) -> Result<(), Failure> {
    let csr = files::read(&a.csr, "CSR")?;
    let request = a.leaf.request();
    let chain = update(&a.dir, |ca| {
        ca.sign_csr(&csr, &request)
            .map_err(|e| Failure::from(e).context(format!("cannot sign {}", a.csr.display())))
    })?;
    let Some(leaf) = chain.first() else {
        return Err(Failure::failed("the CA returned an empty chain"));
    };
    let pem: String = chain.iter().map(|c| to_pem("CERTIFICATE", c)).collect();
    write_atomic(&a.out, pem.as_bytes())?;
    print(&issued_summary(request.spiffe_id(), leaf)?)
}

pub(crate) fn bundle(a: BundleArgs) -> Result<(), Failure> {
    let ca = open(&a.dir)?;
    match a.format {
        BundleFormat::Pem => print(&ca.bundle()?.to_pem()),
        BundleFormat::Jwks => {
            let mut json = ca
                .spiffe_bundle()?
                .to_jwks()
                .map_err(|e| Failure::failed(e.to_string()))?;
            if !json.ends_with('\n') {
                json.push('\n');
            }
            print(&json)
        }
    }
}

pub(crate) fn revoke(a: RevokeArgs) -> Result<(), Failure> {
    let new = update(&a.dir, |ca| Ok(ca.revoke_hex(&a.serial)?))?;
    let serial = a.serial.trim();
    if new {
        print(&format!("revoked: {serial}\n"))?;
    } else {
        print(&format!("already revoked: {serial}\n"))?;
    }
    note(&format!(
        "peers see revocations only in a CRL: run `mtls-ca crl --dir {} --out FILE` and publish it",
        a.dir.display()
    ));
    Ok(())
}

pub(crate) fn crl(a: CrlArgs) -> Result<(), Failure> {
    // The CRL number is persisted (under the directory's lock) before the
    // CRL is published: a crash in between skips a number, which is
    // harmless; reusing one is not.
    let der = update(&a.dir, |ca| Ok(ca.crl(a.validity)?))?;
    write_atomic(&a.out, to_pem("X509 CRL", &der).as_bytes())?;
    let (_, parsed) = CertificateRevocationList::from_der(&der)
        .map_err(|e| Failure::failed(format!("cannot read back the CRL: {e}")))?;
    let number = parsed
        .crl_number()
        .map_or_else(|| "none".to_owned(), ToString::to_string);
    let next_update = parsed
        .next_update()
        .map_or_else(|| "none".to_owned(), |t| rfc3339(t.timestamp()));
    print(&format!(
        "crl_number: {number}\nrevoked: {}\nnext_update: {next_update}\nout: {}\n",
        parsed.iter_revoked_certificates().count(),
        a.out.display()
    ))
}
