//! `mtls-ca jwt ...`: JWT-SVIDs.

use std::io::Read;
use std::time::SystemTime;

use mtls_core::{JwtBundle, JwtBundleSet, JwtSvidValidator, MAX_JWT_SVID_BYTES};

use super::files::{note, print};
use super::verify::bundle_targets;
use super::{Failure, JwtMintArgs, JwtRotateArgs, JwtVerifyArgs};
use crate::{CertificateAuthority, JwtSvidRequest};

pub(crate) fn mint(a: JwtMintArgs) -> Result<(), Failure> {
    let ca = super::ca::open(&a.dir)?;
    let mut audiences = a.audiences.into_iter();
    let first = audiences.next().unwrap_or_default();
    let request = audiences
        .fold(JwtSvidRequest::new(a.spiffe_id, first), |r, aud| {
            r.audience(aud)
        })
        .ttl(a.ttl);
    let token = ca.mint_jwt_svid(&request)?;
    print(&format!("{token}\n"))
}

pub(crate) fn rotate(a: JwtRotateArgs) -> Result<(), Failure> {
    let key = CertificateAuthority::rotate_jwt_key_in(&a.dir, a.key_type.into()).map_err(|e| {
        Failure::from(e).context(format!("rotating the JWT key in {}", a.dir.display()))
    })?;
    print(&format!(
        "kid: {}\nalg: {}\n",
        key.key_id(),
        key.algorithm()
    ))?;
    note("the previous JWT key stays in the bundle until the tokens it signed have expired; publish the new bundle (mtls-ca bundle --format jwks)");
    Ok(())
}

pub(crate) fn verify(a: JwtVerifyArgs) -> Result<(), Failure> {
    let targets = bundle_targets(&a.bundles, a.trust_domain.as_ref())?;
    if a.audience.is_empty() {
        return Err(Failure::usage("--audience must not be empty"));
    }
    let token = if a.token == "-" {
        read_stdin_token()?
    } else {
        a.token.clone()
    };
    let mut bundles = JwtBundleSet::new();
    for (td, arg) in targets {
        let bundle = JwtBundle::from_jwks(td.clone(), &arg.read()?)
            .map_err(|e| arg.failure(&td, mtls_core::ErrorChain(&e)))?;
        bundles.insert(bundle);
    }
    let validator = JwtSvidValidator::new(a.audience);
    let now = a.at.unwrap_or_else(SystemTime::now);
    match validator.validate_at(token.trim(), &bundles, now) {
        Ok(svid) => print(&format!("{}\n", svid.spiffe_id())),
        Err(e) => Err(Failure::failed(format!(
            "invalid JWT-SVID: {}",
            mtls_core::ErrorChain(&e)
        ))),
    }
}

/// The token on stdin (one line, surrounding white space ignored), read up
/// to a bound so that a stream cannot exhaust memory.
fn read_stdin_token() -> Result<String, Failure> {
    let limit = MAX_JWT_SVID_BYTES + 64;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::failed(format!("reading the token from stdin: {e}")))?;
    if bytes.len() > limit {
        return Err(Failure::failed(format!(
            "the token on stdin is longer than {MAX_JWT_SVID_BYTES} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|_| Failure::failed("the token on stdin is not UTF-8 text"))
}
