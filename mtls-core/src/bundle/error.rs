//! The one error of bundle loading and emission.

use super::jwt::JwtKeyError;
use crate::id::TrustDomain;
use crate::limits::{MAX_BUNDLE_BYTES, MAX_CERTIFICATE_BYTES};

/// Why a bundle could not be loaded or emitted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The document is larger than [`MAX_BUNDLE_BYTES`].
    #[error("bundle: {len} bytes, larger than the {MAX_BUNDLE_BYTES} bytes allowed")]
    TooLarge {
        /// The document's length.
        len: usize,
    },
    /// A PEM block could not be decoded.
    #[error("bundle: malformed PEM: {reason}")]
    Pem {
        /// What the PEM decoder said.
        reason: String,
    },
    /// A PEM document held no certificate.
    #[error("bundle: no CERTIFICATE block found for trust domain {trust_domain}")]
    NoCertificates {
        /// The trust domain being loaded.
        trust_domain: TrustDomain,
    },
    /// An authority is not a well-formed X.509 certificate.
    #[error("bundle: authority #{index} is not a valid X.509 certificate: {reason}")]
    InvalidCertificate {
        /// Position of the authority in the document.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// A certificate is not a CA certificate (basicConstraints cA is not
    /// true, or keyUsage lacks keyCertSign), so it may not be a trust
    /// anchor: a leaf SVID pasted into a bundle would otherwise let whoever
    /// holds its key mint any identity of the trust domain. The whole
    /// document is refused.
    #[error(
        "bundle for {trust_domain}: certificate #{index} (subject \"{subject}\"{}) may not be a trust anchor: {reason}; \
         a bundle holds CA certificates only (is this an SVID or a chain file?)",
        spiffe_id.as_ref().map(|id| format!(", SPIFFE ID {id}")).unwrap_or_default()
    )]
    NotAnAuthority {
        /// The trust domain being loaded.
        trust_domain: TrustDomain,
        /// Position of the certificate in the document (or in `keys`).
        index: usize,
        /// The certificate's subject.
        subject: String,
        /// The certificate's SPIFFE ID, if it has one.
        spiffe_id: Option<String>,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An authority is larger than [`MAX_CERTIFICATE_BYTES`].
    #[error("bundle: authority #{index} is {len} bytes, larger than the {MAX_CERTIFICATE_BYTES} bytes allowed")]
    CertificateTooLarge {
        /// Position of the authority in the document.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The document is not valid JSON, or not a JWKS object.
    #[error("bundle: malformed SPIFFE bundle JSON: {reason}")]
    Json {
        /// What the JSON parser said.
        reason: String,
    },
    /// A key entry of the SPIFFE bundle is invalid.
    #[error("bundle: key #{index}: {reason}")]
    InvalidKey {
        /// Position of the entry in `keys`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A `jwt-svid` key of a SPIFFE bundle is refused
    /// ([`SpiffeBundle`](crate::SpiffeBundle) reads them strictly).
    #[error(
        "bundle: jwt-svid key #{index}{} is refused",
        key_id.as_ref().map(|k| format!(" (kid \"{k}\")")).unwrap_or_default()
    )]
    InvalidJwtKey {
        /// Position of the entry in `keys`.
        index: usize,
        /// Its `kid`, escaped and truncated, if it has one.
        key_id: Option<String>,
        /// What is wrong with it.
        source: JwtKeyError,
    },
    /// Two bundles of one trust domain were given for one set.
    #[error("bundle: two bundles given for trust domain {trust_domain}; bundles are never merged")]
    DuplicateTrustDomain {
        /// The repeated trust domain.
        trust_domain: TrustDomain,
    },
    /// A bundle's trust domain differs from the one it was loaded for.
    #[error("bundle: expected trust domain {expected}, got {actual}")]
    TrustDomainMismatch {
        /// The trust domain asked for.
        expected: TrustDomain,
        /// The bundle's trust domain.
        actual: TrustDomain,
    },
}
