//! Reference checks written against x509-parser and the fixed keys, not
//! against the code under test: what must hold of every chain the verifier
//! accepts, and of every CRL that revokes.
//!
//! They only state necessary conditions (the verifier may be stricter),
//! so a failure is always a real disagreement.

use mtls_core::{PeerRole, SpiffeId, MAX_CERTIFICATE_BYTES, MAX_CHAIN_LEN};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::fixtures;

/// A certificate with nothing after it, as mtls-core requires.
pub fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

/// The URI SANs of `cert` (none when its SAN extension does not parse).
pub fn uris<'a>(cert: &X509Certificate<'a>) -> Vec<&'a str> {
    sans(cert, |n| match n {
        GeneralName::URI(u) => Some(*u),
        _ => None,
    })
}

/// The DNS SANs of `cert`.
pub fn dns_names<'a>(cert: &X509Certificate<'a>) -> Vec<&'a str> {
    sans(cert, |n| match n {
        GeneralName::DNSName(d) => Some(*d),
        _ => None,
    })
}

/// The SANs of `cert` that `pick` keeps (none when its SAN extension does
/// not parse).
fn sans<'a>(
    cert: &X509Certificate<'a>,
    pick: impl Fn(&GeneralName<'a>) -> Option<&'a str>,
) -> Vec<&'a str> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().filter_map(pick).collect(),
        _ => Vec::new(),
    }
}

fn valid_at(cert: &X509Certificate<'_>, now: i64) -> bool {
    let v = cert.validity();
    v.not_before.timestamp() <= now && now <= v.not_after.timestamp()
}

/// A signing certificate (X509-SVID.md 4.1, 4.3): cA, keyCertSign, and no
/// SPIFFE ID with a path.
fn is_signing(cert: &X509Certificate<'_>) -> bool {
    let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let ku = matches!(cert.key_usage(), Ok(Some(ku)) if ku.value.key_cert_sign());
    let ids = uris(cert)
        .iter()
        .all(|u| SpiffeId::new(u).map_or(true, |id| id.is_trust_domain_id()));
    ca && ku && ids
}

fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Why the verifier should not have accepted `chain` (leaf first) at
/// `now` for `role` against the fixed bundle (the fixed root only), or
/// `None` when accepting it was right. `id` is the SPIFFE ID the verifier
/// reported.
pub fn accepted_chain_violation(
    chain: &[&[u8]],
    now: u64,
    role: PeerRole,
    id: &SpiffeId,
) -> Option<String> {
    let f = fixtures::get();
    let root = parse(&f.root).expect("the fixed root parses");
    let now = now as i64;
    if chain.is_empty() || chain.len() > MAX_CHAIN_LEN {
        return Some(format!("a chain of {} certificates", chain.len()));
    }
    if let Some(big) = chain.iter().find(|c| c.len() > MAX_CERTIFICATE_BYTES) {
        return Some(format!("a certificate of {} bytes", big.len()));
    }
    let Some(leaf) = parse(chain[0]) else {
        return Some("the leaf does not parse".into());
    };
    let leaf_uris = uris(&leaf);
    if leaf_uris.len() != 1 {
        return Some(format!("the leaf has {} URI SANs", leaf_uris.len()));
    }
    match SpiffeId::new(leaf_uris[0]) {
        Err(e) => return Some(format!("the leaf's URI is not a SPIFFE ID: {e}")),
        Ok(leaf_id) if &leaf_id != id => {
            return Some(format!("reported {id}, the leaf says {leaf_id}"))
        }
        Ok(leaf_id) if leaf_id.is_trust_domain_id() => {
            return Some("the leaf's SPIFFE ID has no path".into())
        }
        Ok(leaf_id) if leaf_id.trust_domain() != &f.trust_domain => {
            return Some(format!("{leaf_id} is not in the bundle's trust domain"))
        }
        Ok(_) => {}
    }
    if matches!(leaf.basic_constraints(), Ok(Some(bc)) if bc.value.ca) {
        return Some("the leaf is a CA".into());
    }
    match leaf.key_usage() {
        Ok(Some(ku))
            if ku.value.digital_signature()
                && !ku.value.key_cert_sign()
                && !ku.value.crl_sign() => {}
        other => return Some(format!("the leaf's keyUsage is wrong: {other:?}")),
    }
    if !valid_at(&leaf, now) {
        return Some(format!("the leaf is not valid at {now}"));
    }
    if let Ok(Some(eku)) = leaf.extended_key_usage() {
        let allowed = eku.value.any
            || match role {
                PeerRole::Client => eku.value.client_auth,
                PeerRole::Server => eku.value.server_auth,
                _ => true,
            };
        if !allowed {
            return Some(format!("the leaf's EKU does not allow {role:?}"));
        }
    }
    // Reachability from the leaf to the root through valid signing
    // certificates of the chain: a walk exists iff a simple path does.
    let pool: Vec<X509Certificate<'_>> = chain[1..].iter().filter_map(|c| parse(c)).collect();
    let mut reached = vec![false; pool.len()];
    let mut frontier = vec![&leaf];
    while let Some(cert) = frontier.pop() {
        if signed_by(cert, &root) {
            return None;
        }
        for (i, issuer) in pool.iter().enumerate() {
            if !reached[i] && is_signing(issuer) && valid_at(issuer, now) && signed_by(cert, issuer)
            {
                reached[i] = true;
                frontier.push(issuer);
            }
        }
    }
    Some("no path of valid signatures leads from the leaf to the bundle's root".into())
}

/// Whether some CRL of `crls` is, beyond doubt, a CRL of `issuer` that
/// revokes `serial`: v2, issued and signed by `issuer`, no extension but
/// the CRL number and authority key identifier, and an entry without
/// extensions for `serial`.
pub fn revokes(crls: &[&[u8]], issuer: &X509Certificate<'_>, serial: &[u8]) -> bool {
    const CRL_NUMBER: &str = "2.5.29.20";
    const AUTHORITY_KEY_ID: &str = "2.5.29.35";
    crls.iter().any(|der| {
        let Ok((rest, crl)) = CertificateRevocationList::from_der(der) else {
            return false;
        };
        rest.is_empty()
            && crl.version().map(|v| v.0) == Some(1)
            && crl.issuer().as_raw() == issuer.subject().as_raw()
            && crl.verify_signature(issuer.public_key()).is_ok()
            && crl.extensions().iter().all(|e| {
                let oid = e.oid.to_id_string();
                oid == CRL_NUMBER || oid == AUTHORITY_KEY_ID
            })
            && crl
                .iter_revoked_certificates()
                .any(|r| r.raw_serial() == serial && r.extensions().is_empty())
    })
}

/// Whether every CRL parses and none lists any of `serials` at all.
pub fn surely_lists_none(crls: &[&[u8]], serials: &[&[u8]]) -> bool {
    crls.iter()
        .all(|der| match CertificateRevocationList::from_der(der) {
            Ok((_, crl)) => !crl
                .iter_revoked_certificates()
                .any(|r| serials.contains(&r.raw_serial())),
            Err(_) => false,
        })
}
