//! `mtls-ca verify`: checks an X.509-SVID chain as a server checks a client.

use std::path::PathBuf;
use std::time::SystemTime;

use mtls_core::{verify, BundleSet, CrlSet, PeerRole, TrustDomain, X509Bundle};

use super::files::{self, print};
use super::{Failure, VerifyArgs};

/// One `--bundle` value: `FILE` or `TD=FILE`.
#[derive(Debug, Clone)]
pub(crate) struct BundleArg {
    trust_domain: Option<TrustDomain>,
    path: PathBuf,
}

/// Parses `TD=FILE` or `FILE` (see [`split_bundle_arg`]).
pub(crate) fn parse_bundle_arg(s: &str) -> Result<BundleArg, String> {
    let (trust_domain, path) = split_bundle_arg(s)?;
    Ok(BundleArg { trust_domain, path })
}

/// Splits a `--bundle` value: `TD=FILE` when the part before the first `=`
/// is a valid trust domain (`example.org` or `spiffe://example.org`),
/// otherwise `FILE` (so a path containing `=` can be written `./a=b.pem`).
///
/// Not public API: the `examples` crate parses its `--bundle` with it, so
/// that both tools take the same syntax.
#[doc(hidden)]
pub fn split_bundle_arg(s: &str) -> Result<(Option<TrustDomain>, PathBuf), String> {
    if let Some((td, path)) = s.split_once('=') {
        if let Ok(td) = TrustDomain::from_id_or_name(td) {
            if path.is_empty() {
                return Err(format!("{s:?}: no file after '='"));
            }
            return Ok((Some(td), PathBuf::from(path)));
        }
    }
    if s.is_empty() {
        return Err("empty bundle file name".into());
    }
    Ok((None, PathBuf::from(s)))
}

/// Each `--bundle` with its trust domain (its own `TD=`, else
/// `--trust-domain`), one per trust domain; a usage error otherwise. Checks
/// the command line before any file is read.
pub(crate) fn bundle_targets<'a>(
    bundles: &'a [BundleArg],
    default: Option<&TrustDomain>,
) -> Result<Vec<(TrustDomain, &'a BundleArg)>, Failure> {
    let mut targets: Vec<(TrustDomain, &BundleArg)> = Vec::with_capacity(bundles.len());
    for arg in bundles {
        let td = match (&arg.trust_domain, default) {
            (Some(td), _) | (None, Some(td)) => td.clone(),
            (None, None) => {
                return Err(Failure::usage(format!(
                    "--bundle {} does not say its trust domain: give --trust-domain TD, or write --bundle TD={}",
                    arg.path.display(),
                    arg.path.display()
                )))
            }
        };
        if let Some((_, first)) = targets.iter().find(|(t, _)| *t == td) {
            return Err(Failure::usage(format!(
                "two bundles for trust domain {td} ({} and {}); give one bundle per trust domain",
                first.path.display(),
                arg.path.display()
            )));
        }
        targets.push((td, arg));
    }
    Ok(targets)
}

impl BundleArg {
    /// The file, read.
    pub(crate) fn read(&self) -> Result<Vec<u8>, Failure> {
        files::read(&self.path, "bundle")
    }

    /// Names the file and its trust domain in an error about its content.
    pub(crate) fn failure(&self, td: &TrustDomain, e: impl std::fmt::Display) -> Failure {
        Failure::failed(format!(
            "bundle {} (trust domain {td}): {e}",
            self.path.display()
        ))
    }
}

pub(crate) fn run(a: VerifyArgs) -> Result<(), Failure> {
    let targets = bundle_targets(&a.bundles, a.trust_domain.as_ref())?;
    let mut bundles = BundleSet::new();
    for (td, arg) in targets {
        let bundle = X509Bundle::from_pem_or_jwks(td.clone(), &arg.read()?)
            .map_err(|e| arg.failure(&td, mtls_core::ErrorChain(&e)))?;
        bundles.insert(bundle);
    }

    let mut crls = CrlSet::new();
    for path in &a.crls {
        let bytes = files::read(path, "CRL")?;
        let set = CrlSet::from_pem_or_der(&bytes)
            .map_err(|e| Failure::failed(format!("CRL {}: {e}", path.display())))?;
        crls.extend(&set);
    }

    let chain = files::read_certificates(&a.chain, "chain")?;
    let now = a.at.unwrap_or_else(SystemTime::now);
    match verify(&chain, &bundles, now, &crls, PeerRole::Client) {
        Ok(peer) => print(&format!("{}\n", peer.spiffe_id())),
        Err(e) => Err(Failure::failed(format!(
            "rejected {}: {}",
            a.chain.display(),
            mtls_core::ErrorChain(&e)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_args() {
        let a = parse_bundle_arg("b.pem").unwrap_or_else(|e| panic!("{e}"));
        assert!(a.trust_domain.is_none());
        assert_eq!(a.path, PathBuf::from("b.pem"));

        let a = parse_bundle_arg("other.org=dir/b.json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.trust_domain.map(|t| t.to_string()).as_deref(),
            Some("other.org")
        );
        assert_eq!(a.path, PathBuf::from("dir/b.json"));

        let a = parse_bundle_arg("spiffe://other.org=b.pem").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.trust_domain.map(|t| t.to_string()).as_deref(),
            Some("other.org")
        );

        // Not a trust domain before '=': the whole value is a path.
        let a = parse_bundle_arg("./x=y.pem").unwrap_or_else(|e| panic!("{e}"));
        assert!(a.trust_domain.is_none());
        assert_eq!(a.path, PathBuf::from("./x=y.pem"));

        assert!(parse_bundle_arg("other.org=").is_err());
        assert!(parse_bundle_arg("").is_err());
    }
}
