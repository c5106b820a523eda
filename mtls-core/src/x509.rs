//! X.509-SVID shape checks that rustls-webpki does not make
//! (X509-SVID.md sections 2, 4.1 and 4.3), on top of x509-parser.

use std::sync::Mutex;
use std::time::SystemTime;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::spiffe_id::SpiffeId;
use crate::time_fmt::system_time_from_unix;
use crate::verify::VerifyError;

/// Longest URI SAN quoted in an error message.
const MAX_QUOTED_URI: usize = 128;

/// What the verifier needs from a leaf that passed the shape checks.
#[derive(Debug, Clone)]
pub(crate) struct LeafInfo {
    pub(crate) spiffe_id: SpiffeId,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

pub(crate) fn parse(der: &[u8], index: usize) -> Result<X509Certificate<'_>, VerifyError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(VerifyError::MalformedCertificate {
            index,
            reason: "trailing data after the certificate".into(),
        }),
        Err(e) => Err(VerifyError::MalformedCertificate {
            index,
            reason: e.to_string(),
        }),
    }
}

/// The SPIFFE ID in the URI SANs of `cert`: `Ok(None)` when it has no URI
/// SAN; an error when it has several, or a URI that is not a SPIFFE ID.
fn uri_san_id(cert: &X509Certificate<'_>, index: usize) -> Result<Option<SpiffeId>, VerifyError> {
    let malformed = |reason: String| VerifyError::MalformedCertificate { index, reason };
    let san = cert
        .subject_alternative_name()
        .map_err(|e| malformed(format!("subjectAltName: {e}")))?;
    let Some(san) = san else {
        return Ok(None);
    };
    let mut uri = None;
    let mut count = 0usize;
    for name in &san.value.general_names {
        match name {
            GeneralName::URI(u) => {
                count += 1;
                uri.get_or_insert(*u);
            }
            GeneralName::Invalid(_, _) => {
                return Err(malformed("subjectAltName has an undecodable name".into()))
            }
            _ => {}
        }
    }
    match (count, uri) {
        (0, _) | (_, None) => Ok(None),
        (1, Some(u)) => SpiffeId::new(u)
            .map(Some)
            .map_err(|source| VerifyError::InvalidSpiffeId {
                uri: quote(u),
                source,
            }),
        (count, Some(_)) => Err(VerifyError::MultipleUriSans { count }),
    }
}

/// Checks the leaf rules of X509-SVID.md sections 2, 4.1 and 4.3.
pub(crate) fn inspect_leaf(der: &[u8]) -> Result<LeafInfo, VerifyError> {
    let cert = parse(der, 0)?;
    let spiffe_id = uri_san_id(&cert, 0)?.ok_or(VerifyError::NoUriSan)?;
    if spiffe_id.is_trust_domain_id() {
        return Err(VerifyError::TrustDomainIdAsLeaf { id: spiffe_id });
    }
    let malformed = |reason: String| VerifyError::MalformedCertificate { index: 0, reason };
    let bc = cert
        .basic_constraints()
        .map_err(|e| malformed(format!("basicConstraints: {e}")))?;
    // RFC 5280: an absent basicConstraints extension means "not a CA", which
    // is what X509-SVID.md 4.1 asks of a leaf.
    if bc.is_some_and(|bc| bc.value.ca) {
        return Err(VerifyError::LeafIsCa { id: spiffe_id });
    }
    let ku = cert
        .key_usage()
        .map_err(|e| malformed(format!("keyUsage: {e}")))?
        .ok_or_else(|| VerifyError::LeafMissingKeyUsage {
            id: spiffe_id.clone(),
        })?;
    if !ku.value.digital_signature() {
        return Err(VerifyError::LeafMissingDigitalSignature { id: spiffe_id });
    }
    if ku.value.key_cert_sign() {
        return Err(VerifyError::LeafHasKeyCertSign { id: spiffe_id });
    }
    if ku.value.crl_sign() {
        return Err(VerifyError::LeafHasCrlSign { id: spiffe_id });
    }
    let validity = cert.validity();
    Ok(LeafInfo {
        spiffe_id,
        not_before: system_time_from_unix(validity.not_before.timestamp()),
        not_after: system_time_from_unix(validity.not_after.timestamp()),
    })
}

/// Intermediates that passed [`check_signing_cert`], by DER. Peers present
/// the same few CA certificates over and over, and the check is a pure
/// function of the bytes: remembering the good ones saves an x509-parser
/// parse (about 2.5 µs) per peer chain.
static GOOD_SIGNING_CERTS: Mutex<Vec<(Box<[u8]>, SystemTime)>> = Mutex::new(Vec::new());
const GOOD_SIGNING_CERTS_MAX: usize = 32;

/// [`check_signing_cert`], remembering the certificates that pass; returns
/// the certificate's `notAfter`.
pub(crate) fn check_signing_cert_memo(der: &[u8], index: usize) -> Result<SystemTime, VerifyError> {
    if let Ok(good) = GOOD_SIGNING_CERTS.lock() {
        if let Some((_, not_after)) = good.iter().find(|(g, _)| **g == *der) {
            return Ok(*not_after);
        }
    }
    let not_after = check_signing_cert(der, index)?;
    if let Ok(mut good) = GOOD_SIGNING_CERTS.lock() {
        if good.len() >= GOOD_SIGNING_CERTS_MAX {
            good.remove(0);
        }
        good.push((der.into(), not_after));
    }
    Ok(not_after)
}

/// Checks the signing-certificate rules of X509-SVID.md sections 3.2, 4.1
/// and 4.3 on an intermediate that rustls-webpki placed in the path.
pub(crate) fn check_signing_cert(der: &[u8], index: usize) -> Result<SystemTime, VerifyError> {
    let cert = parse(der, index)?;
    let not_signing = |reason: &'static str| VerifyError::BadSigningCertificate { index, reason };
    let malformed = |reason: String| VerifyError::MalformedCertificate { index, reason };
    let bc = cert
        .basic_constraints()
        .map_err(|e| malformed(format!("basicConstraints: {e}")))?;
    if !bc.is_some_and(|bc| bc.value.ca) {
        return Err(not_signing("basicConstraints cA is not true"));
    }
    let ku = cert
        .key_usage()
        .map_err(|e| malformed(format!("keyUsage: {e}")))?
        .ok_or(not_signing("keyUsage is missing"))?;
    if !ku.value.key_cert_sign() {
        return Err(not_signing("keyUsage lacks keyCertSign"));
    }
    if let Some(id) = uri_san_id(&cert, index)? {
        if !id.is_trust_domain_id() {
            return Err(not_signing("its SPIFFE ID has a path"));
        }
    }
    Ok(system_time_from_unix(cert.validity().not_after.timestamp()))
}

/// The notAfter of a certificate of a chain (`index` in the chain, for
/// errors).
pub(crate) fn expiry(der: &[u8], index: usize) -> Result<SystemTime, VerifyError> {
    let cert = parse(der, index)?;
    Ok(system_time_from_unix(cert.validity().not_after.timestamp()))
}

/// The SPIFFE ID and expiry of a leaf that was already verified.
pub(crate) fn leaf_id_and_expiry(der: &[u8]) -> Result<(SpiffeId, SystemTime), VerifyError> {
    let cert = parse(der, 0)?;
    let id = uri_san_id(&cert, 0)?.ok_or(VerifyError::NoUriSan)?;
    let not_after = system_time_from_unix(cert.validity().not_after.timestamp());
    Ok((id, not_after))
}

/// A peer-controlled string made safe to print: escaped and truncated.
pub(crate) fn quote(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_QUOTED_URI)
        .flat_map(char::escape_default)
        .collect();
    if s.chars().count() > MAX_QUOTED_URI {
        out.push_str("...");
    }
    out
}
