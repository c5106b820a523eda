//! X.509-SVID shape checks that rustls-webpki does not make
//! (X509-SVID.md sections 2, 4.1 and 4.3), on top of x509-parser.

use std::sync::Mutex;
use std::time::SystemTime;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::id::{SpiffeId, SpiffeIdError};
use crate::limits::{MAX_QUOTED_CHARS, MAX_RSA_BITS, MIN_RSA_BITS};
use crate::time_fmt::system_time_from_unix;

/// Why a certificate breaks an X.509-SVID rule this module checks. The
/// verifier maps each case to the [`VerifyError`](crate::VerifyError)
/// variant of the same name (and the same message), so this type stays
/// inside the crate.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum X509Error {
    /// x509-parser could not read the certificate.
    #[error("x509svid: certificate #{index} is malformed: {reason}")]
    MalformedCertificate { index: usize, reason: String },
    /// The leaf has no URI SAN.
    #[error("x509svid: the leaf has no URI SAN, so no SPIFFE ID")]
    NoUriSan,
    /// Several URI SANs.
    #[error("x509svid: the leaf has {count} URI SANs; an SVID has exactly one")]
    MultipleUriSans { count: usize },
    /// A URI SAN that is not a SPIFFE ID.
    #[error("x509svid: the leaf's URI SAN \"{uri}\" is not a valid SPIFFE ID: {source}")]
    InvalidSpiffeId { uri: String, source: SpiffeIdError },
    /// A leaf carrying a trust domain's own ID.
    #[error("x509svid: the leaf's SPIFFE ID {id} has no path; only signing certificates carry a trust domain ID")]
    TrustDomainIdAsLeaf { id: SpiffeId },
    /// A leaf key no handshake accepts.
    #[error("x509svid: leaf {id} has an unacceptable public key: {reason}")]
    UnacceptableKey { id: SpiffeId, reason: String },
    /// A leaf with cA true.
    #[error("x509svid: leaf {id} has basicConstraints cA=true")]
    LeafIsCa { id: SpiffeId },
    /// A leaf without keyUsage.
    #[error("x509svid: leaf {id} has no keyUsage extension")]
    LeafMissingKeyUsage { id: SpiffeId },
    /// A leaf without digitalSignature.
    #[error("x509svid: leaf {id} keyUsage lacks digitalSignature")]
    LeafMissingDigitalSignature { id: SpiffeId },
    /// A leaf with keyCertSign.
    #[error("x509svid: leaf {id} keyUsage has keyCertSign")]
    LeafHasKeyCertSign { id: SpiffeId },
    /// A leaf with cRLSign.
    #[error("x509svid: leaf {id} keyUsage has cRLSign")]
    LeafHasCrlSign { id: SpiffeId },
    /// An intermediate that is no signing certificate.
    #[error("x509svid: certificate #{index} is not a valid signing certificate: {reason}")]
    BadSigningCertificate { index: usize, reason: &'static str },
}

/// What the verifier needs from a leaf that passed the shape checks.
#[derive(Debug, Clone)]
pub(crate) struct LeafInfo {
    pub(crate) spiffe_id: SpiffeId,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

pub(crate) fn parse(der: &[u8], index: usize) -> Result<X509Certificate<'_>, X509Error> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(X509Error::MalformedCertificate {
            index,
            reason: "trailing data after the certificate".into(),
        }),
        Err(e) => Err(X509Error::MalformedCertificate {
            index,
            reason: e.to_string(),
        }),
    }
}

/// The SPIFFE ID in the URI SANs of `cert`: `Ok(None)` when it has no URI
/// SAN; an error when it has several, or a URI that is not a SPIFFE ID.
fn uri_san_id(cert: &X509Certificate<'_>, index: usize) -> Result<Option<SpiffeId>, X509Error> {
    let malformed = |reason: String| X509Error::MalformedCertificate { index, reason };
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
            .map_err(|source| X509Error::InvalidSpiffeId {
                uri: escape_untrusted(u),
                source,
            }),
        (count, Some(_)) => Err(X509Error::MultipleUriSans { count }),
    }
}

/// The one rule for a leaf's public key, the same as the TLS handshake's
/// (which checks the peer's signature with that key): RSA of 2048 to 8192
/// bits, ECDSA on P-256 or P-384 (P-521 where the crypto provider verifies
/// it), or Ed25519. Anything else is refused, with the reason.
pub(crate) fn check_public_key(cert: &X509Certificate<'_>) -> Result<(), String> {
    check_spki(cert.public_key())
}

/// Why a public key may not be an SVID's: [`check_svid_public_key`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unacceptable SVID key: {reason}")]
pub struct UnacceptableKey {
    reason: String,
}

impl UnacceptableKey {
    /// What is wrong with the key.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Checks the X.509-SVID leaf rules on one certificate, without verifying
/// any chain: exactly one URI SAN holding a SPIFFE ID with a path,
/// basicConstraints cA false or absent, keyUsage with digitalSignature and
/// neither keyCertSign nor cRLSign, an acceptable key; returns its SPIFFE
/// ID. A CA uses it on what it just signed (its own chain was verified
/// when it was loaded); a peer's chain needs [`verify`](crate::verify).
///
/// ```
/// use mtls_core::{check_svid_leaf, VerifyError};
/// use mtls_core::rustls::pki_types::CertificateDer;
///
/// let err = check_svid_leaf(&CertificateDer::from(&b"garbage"[..])).unwrap_err();
/// assert!(matches!(err, VerifyError::MalformedCertificate { index: 0, .. }));
/// ```
pub fn check_svid_leaf(
    leaf: &rustls_pki_types::CertificateDer<'_>,
) -> Result<SpiffeId, crate::VerifyError> {
    Ok(inspect_leaf(leaf)?.spiffe_id)
}

/// Checks a DER `SubjectPublicKeyInfo` against the one key rule for SVIDs,
/// the same as the TLS handshake's and [`verify`](crate::verify)'s: RSA of
/// 2048 to 8192 bits, ECDSA on P-256 or P-384 (P-521 where the default
/// crypto provider verifies it), or Ed25519. A CA uses it on a CSR's key
/// before certifying it.
///
/// ```
/// let err = mtls_core::check_svid_public_key(b"not a key").unwrap_err();
/// assert!(err.reason().contains("does not parse"));
/// ```
pub fn check_svid_public_key(spki_der: &[u8]) -> Result<(), UnacceptableKey> {
    let unacceptable = |reason: String| UnacceptableKey { reason };
    let spki = match x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der) {
        Ok(([], spki)) => spki,
        Ok(_) => return Err(unacceptable("trailing data after the public key".into())),
        Err(e) => return Err(unacceptable(format!("the public key does not parse: {e}"))),
    };
    check_spki(&spki).map_err(unacceptable)
}

fn check_spki(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<(), String> {
    use x509_parser::oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
        OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
    };
    use x509_parser::public_key::PublicKey;
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err("the RSA public key does not parse".into());
        };
        let bits = rsa_modulus_bits(rsa.modulus);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(format!(
                "RSA key of {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} required"
            ));
        }
        return Ok(());
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 || c == OID_NIST_EC_P384 => Ok(()),
            Some(c) if c == OID_NIST_EC_P521 && provider_verifies_p521() => Ok(()),
            Some(c) => Err(format!(
                "ECDSA key on curve {c}, which the handshake does not accept"
            )),
            None => Err("ECDSA key without a named curve".into()),
        };
    }
    if *algorithm == OID_SIG_ED25519 {
        return Ok(());
    }
    Err(format!("public key algorithm {algorithm} is not accepted"))
}

/// The bit length of an RSA modulus given as DER integer bytes.
fn rsa_modulus_bits(modulus: &[u8]) -> usize {
    let digits = match modulus.iter().position(|&b| b != 0) {
        Some(first) => &modulus[first..],
        None => return 0,
    };
    digits.len() * 8 - digits[0].leading_zeros() as usize
}

/// Whether the default crypto provider verifies ECDSA P-521 signatures
/// (aws-lc-rs does, ring does not).
fn provider_verifies_p521() -> bool {
    crate::provider::default_crypto_provider()
        .signature_verification_algorithms
        .supported_schemes()
        .contains(&rustls::SignatureScheme::ECDSA_NISTP521_SHA512)
}

/// Checks the leaf rules of X509-SVID.md sections 2, 4.1 and 4.3.
pub(crate) fn inspect_leaf(der: &[u8]) -> Result<LeafInfo, X509Error> {
    let cert = parse(der, 0)?;
    let spiffe_id = uri_san_id(&cert, 0)?.ok_or(X509Error::NoUriSan)?;
    if spiffe_id.is_trust_domain_id() {
        return Err(X509Error::TrustDomainIdAsLeaf { id: spiffe_id });
    }
    let malformed = |reason: String| X509Error::MalformedCertificate { index: 0, reason };
    let bc = cert
        .basic_constraints()
        .map_err(|e| malformed(format!("basicConstraints: {e}")))?;
    // RFC 5280: an absent basicConstraints extension means "not a CA", which
    // is what X509-SVID.md 4.1 asks of a leaf.
    if bc.is_some_and(|bc| bc.value.ca) {
        return Err(X509Error::LeafIsCa { id: spiffe_id });
    }
    let ku = cert
        .key_usage()
        .map_err(|e| malformed(format!("keyUsage: {e}")))?
        .ok_or_else(|| X509Error::LeafMissingKeyUsage {
            id: spiffe_id.clone(),
        })?;
    if !ku.value.digital_signature() {
        return Err(X509Error::LeafMissingDigitalSignature { id: spiffe_id });
    }
    if ku.value.key_cert_sign() {
        return Err(X509Error::LeafHasKeyCertSign { id: spiffe_id });
    }
    if ku.value.crl_sign() {
        return Err(X509Error::LeafHasCrlSign { id: spiffe_id });
    }
    if let Err(reason) = check_public_key(&cert) {
        return Err(X509Error::UnacceptableKey {
            id: spiffe_id,
            reason,
        });
    }
    let validity = cert.validity();
    Ok(LeafInfo {
        spiffe_id,
        not_before: system_time_from_unix(validity.not_before.timestamp()),
        not_after: system_time_from_unix(validity.not_after.timestamp()),
    })
}

/// What verification keeps of an intermediate that passed
/// [`check_signing_cert`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SigningCert {
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    /// Whether it has a nameConstraints extension (which constrains the
    /// names of every certificate below it).
    pub(crate) name_constraints: bool,
}

/// Intermediates that passed [`check_signing_cert`], by DER. Peers present
/// the same few intermediates over and over; this spares parsing them again.
static GOOD_SIGNING_CERTS: Mutex<Vec<(Box<[u8]>, SigningCert)>> = Mutex::new(Vec::new());
const GOOD_SIGNING_CERTS_MAX: usize = 32;

/// [`check_signing_cert`], remembering the certificates that pass.
pub(crate) fn check_signing_cert_memo(der: &[u8], index: usize) -> Result<SigningCert, X509Error> {
    if let Ok(good) = GOOD_SIGNING_CERTS.lock() {
        if let Some((_, info)) = good.iter().find(|(g, _)| **g == *der) {
            return Ok(*info);
        }
    }
    let info = check_signing_cert(der, index)?;
    if let Ok(mut good) = GOOD_SIGNING_CERTS.lock() {
        if good.len() >= GOOD_SIGNING_CERTS_MAX {
            good.remove(0);
        }
        good.push((der.into(), info));
    }
    Ok(info)
}

/// Checks the signing-certificate rules of X509-SVID.md sections 3.2, 4.1
/// and 4.3 on an intermediate that rustls-webpki placed in the path.
pub(crate) fn check_signing_cert(der: &[u8], index: usize) -> Result<SigningCert, X509Error> {
    let cert = parse(der, index)?;
    let not_signing = |reason: &'static str| X509Error::BadSigningCertificate { index, reason };
    let malformed = |reason: String| X509Error::MalformedCertificate { index, reason };
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
    let validity = cert.validity();
    Ok(SigningCert {
        not_before: system_time_from_unix(validity.not_before.timestamp()),
        not_after: system_time_from_unix(validity.not_after.timestamp()),
        name_constraints: cert
            .extensions()
            .iter()
            .any(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_NAME_CONSTRAINTS),
    })
}

/// The notAfter of a certificate of a chain (`index` in the chain, for
/// errors).
pub(crate) fn expiry(der: &[u8], index: usize) -> Result<SystemTime, X509Error> {
    let cert = parse(der, index)?;
    Ok(system_time_from_unix(cert.validity().not_after.timestamp()))
}

/// The SPIFFE ID and expiry of a leaf that was already verified.
pub(crate) fn leaf_id_and_expiry(der: &[u8]) -> Result<(SpiffeId, SystemTime), X509Error> {
    let cert = parse(der, 0)?;
    let id = uri_san_id(&cert, 0)?.ok_or(X509Error::NoUriSan)?;
    let not_after = system_time_from_unix(cert.validity().not_after.timestamp());
    Ok((id, not_after))
}

/// A string a peer or a file controls (a SAN, a subject, a key ID), made
/// safe to print in a message or a log line: escaped as
/// [`char::escape_default`] does (quotes, backslashes and everything
/// outside printable ASCII), and cut after 128 characters, with `...` to
/// say so.
///
/// ```
/// use mtls_core::escape_untrusted;
///
/// assert_eq!(escape_untrusted("spiffe://a/\u{1b}[2J"), "spiffe://a/\\u{1b}[2J");
/// assert_eq!(escape_untrusted(&"x".repeat(200)).len(), 128 + 3);
/// ```
pub fn escape_untrusted(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_QUOTED_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if s.chars().count() > MAX_QUOTED_CHARS {
        out.push_str("...");
    }
    out
}

/// Why a certificate may not be a trust bundle authority.
#[derive(Debug)]
pub(crate) struct NotAnAuthority {
    /// The certificate's subject, quoted for printing.
    pub(crate) subject: String,
    /// The certificate's SPIFFE ID, if it has one.
    pub(crate) spiffe_id: Option<String>,
    /// The rule it breaks.
    pub(crate) reason: &'static str,
}

/// Checks that a bundle entry is a CA certificate (X509-SVID.md sections
/// 4.1 and 6): basicConstraints present with cA true, and keyCertSign
/// when keyUsage is present. A v1 certificate has no extensions, so no
/// basicConstraints: it is refused too. `Ok(Err(..))` names the broken
/// rule; the outer error is a certificate x509-parser cannot read.
pub(crate) fn check_authority(
    der: &[u8],
    index: usize,
) -> Result<Result<(), NotAnAuthority>, X509Error> {
    let cert = parse(der, index)?;
    let malformed = |reason: String| X509Error::MalformedCertificate { index, reason };
    let refuse = |reason: &'static str| {
        let spiffe_id = uri_san_id(&cert, index)
            .ok()
            .flatten()
            .map(|id| id.to_string());
        Err(NotAnAuthority {
            subject: escape_untrusted(&cert.subject().to_string()),
            spiffe_id,
            reason,
        })
    };
    if cert.version() != x509_parser::x509::X509Version::V3 {
        return Ok(refuse(
            "it is not an X.509 v3 certificate, so it cannot be marked as a CA",
        ));
    }
    let bc = cert
        .basic_constraints()
        .map_err(|e| malformed(format!("basicConstraints: {e}")))?;
    match bc {
        None => {
            return Ok(refuse(
                "it has no basicConstraints, so it is not a CA certificate",
            ))
        }
        Some(bc) if !bc.value.ca => {
            return Ok(refuse(
                "basicConstraints cA is false: it is a leaf, not a CA certificate",
            ))
        }
        Some(_) => {}
    }
    let ku = cert
        .key_usage()
        .map_err(|e| malformed(format!("keyUsage: {e}")))?;
    if ku.is_some_and(|ku| !ku.value.key_cert_sign()) {
        return Ok(refuse("its keyUsage lacks keyCertSign"));
    }
    Ok(Ok(()))
}

/// The SPIFFE ID of a bundle authority (`index` in its bundle, for
/// errors), if it has one.
#[cfg(feature = "federation")]
pub(crate) fn authority_spiffe_id(der: &[u8], index: usize) -> Result<Option<SpiffeId>, X509Error> {
    uri_san_id(&parse(der, index)?, index)
}
