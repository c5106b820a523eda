//! `mtls-ca jwt ...`: JWT-SVIDs.

use super::files::{note, print};
use super::{Failure, JwtMintArgs, JwtRotateArgs};
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
