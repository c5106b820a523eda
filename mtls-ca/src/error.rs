//! Errors of the CA.

use std::path::PathBuf;
use std::time::SystemTime;

use mtls_core::{BundleError, SpiffeId, SvidError, TrustDomain};

use crate::key::KeyType;
use crate::time::Rfc3339;

/// Why the CA could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// An unknown key type name.
    #[error("ca: unknown key type {0:?}; use p256, p384 or ed25519")]
    UnknownKeyType(String),
    /// A key pair could not be generated.
    #[error("ca: cannot generate a {key_type} key: {reason}")]
    KeyGeneration {
        /// The key type asked for.
        key_type: KeyType,
        /// What the crypto library said.
        reason: String,
    },
    /// The system's random number generator failed.
    #[error("ca: the random number generator failed")]
    Randomness,
    /// A serial number is not valid hex.
    #[error("ca: {0:?} is not a hex serial number")]
    InvalidSerial(String),
    /// rcgen could not build or sign a certificate or CRL.
    #[error("ca: cannot build the {what}: {reason}")]
    Build {
        /// What was being built.
        what: &'static str,
        /// What rcgen said.
        reason: String,
    },
    /// A PEM document could not be read.
    #[error("ca: malformed PEM in the {what}: {reason}")]
    Pem {
        /// Which document.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A document held no certificate.
    #[error("ca: no certificate found in the {what}")]
    NoCertificate {
        /// Which document.
        what: &'static str,
    },
    /// A key document held no private key.
    #[error("ca: no private key found in the {what}")]
    NoPrivateKey {
        /// Which document.
        what: &'static str,
    },
    /// The private key does not belong to the CA certificate.
    #[error("ca: the private key does not match the CA certificate")]
    KeyMismatch,
    /// The certificate given as a CA cannot sign certificates.
    #[error("ca: the certificate is not a signing CA: {reason}")]
    NotACa {
        /// What is missing.
        reason: String,
    },
    /// The CA certificate has expired (or expires before anything useful
    /// could be issued).
    #[error("ca: the signing CA expired at {}, now {}", Rfc3339(*not_after), Rfc3339(*now))]
    CaExpired {
        /// When it expired.
        not_after: SystemTime,
        /// The current time.
        now: SystemTime,
    },
    /// The CA certificate is not valid yet.
    #[error("ca: the signing CA is not valid before {}, now {}", Rfc3339(*not_before), Rfc3339(*now))]
    CaNotYetValid {
        /// When it becomes valid.
        not_before: SystemTime,
        /// The current time.
        now: SystemTime,
    },
    /// The CA certificate carries no trust domain and none was given.
    #[error("ca: the CA certificate has no spiffe:// URI SAN; give the trust domain explicitly")]
    UnknownTrustDomain,
    /// A SPIFFE ID outside the CA's trust domain was asked for.
    #[error("ca: {id} is not in trust domain {trust_domain}, the only one this CA issues for")]
    WrongTrustDomain {
        /// The ID asked for.
        id: SpiffeId,
        /// The CA's trust domain.
        trust_domain: TrustDomain,
    },
    /// A trust domain ID (no path) was asked for a leaf.
    #[error("ca: {0} has no path; X.509-SVID leaves need a SPIFFE ID with a path")]
    TrustDomainIdAsLeaf(SpiffeId),
    /// The issuance policy refused the request.
    #[error("ca: policy refuses to issue {id}: {reason}")]
    PolicyDenied {
        /// The ID asked for.
        id: SpiffeId,
        /// Why.
        reason: String,
    },
    /// An issuance policy for another trust domain was given to a CA.
    #[error("ca: the policy is for trust domain {policy}, the CA issues for {ca}")]
    PolicyTrustDomain {
        /// The policy's trust domain.
        policy: TrustDomain,
        /// The CA's trust domain.
        ca: TrustDomain,
    },
    /// A DNS name is not valid.
    #[error("ca: {0:?} is not a valid DNS name")]
    InvalidDnsName(String),
    /// The TTL asked for reaches past the year 9999.
    #[error("ca: a TTL of {}s is too long", ttl.as_secs())]
    TtlTooLong {
        /// The TTL asked for.
        ttl: std::time::Duration,
    },
    /// The TTL asked for is zero.
    #[error("ca: the TTL must be positive")]
    ZeroTtl,
    /// The CSR is larger than allowed.
    #[error("ca: the CSR is {len} bytes, larger than the {max} bytes allowed")]
    CsrTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The CSR could not be parsed or its signature does not verify.
    #[error("ca: invalid CSR: {reason}")]
    InvalidCsr {
        /// What is wrong.
        reason: String,
    },
    /// The CSR asks for something the request does not grant.
    #[error("ca: the CSR asks for {asked}, which the request for {id} does not grant")]
    CsrMismatch {
        /// The ID the caller asked to issue.
        id: SpiffeId,
        /// What the CSR asked for.
        asked: String,
    },
    /// A file operation failed.
    #[error("ca: {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The CA directory's advisory lock (its `.lock` file) could not be
    /// opened or taken.
    #[error("ca: cannot lock the CA directory {}", path.display())]
    Lock {
        /// The CA directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A handle opened earlier signed a CRL while another handle (or
    /// process) signed CRLs in the same directory: its CRL number may
    /// already be in use, so its state is not saved and its CRL must not be
    /// published. Use [`CertificateAuthority::update`](crate::CertificateAuthority::update).
    #[error("ca: the CA in {} was changed since it was opened and this copy signed a CRL whose number may be in use; reopen it and sign again", path.display())]
    StaleState {
        /// The CA directory.
        path: PathBuf,
    },
    /// A CA already exists where a new one would be written.
    #[error("ca: {} already holds a CA; refusing to overwrite it without --force", path.display())]
    AlreadyExists {
        /// The directory.
        path: PathBuf,
    },
    /// The CA's state file is invalid.
    #[error("ca: invalid state file {}: {reason}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key type that does not sign JWT-SVIDs.
    #[error("ca: a {0} key cannot sign JWT-SVIDs; use p256 (ES256) or p384 (ES384)")]
    JwtKeyType(KeyType),
    /// The CA has no JWT signing key.
    #[error("ca: the CA has no JWT signing key (a CA directory from before JWT-SVIDs): run `mtls-ca jwt rotate --dir DIR` once")]
    NoJwtKey,
    /// A JWT-SVID request without an audience, or with an empty one.
    #[error("ca: a JWT-SVID needs at least one audience, and no audience may be empty")]
    InvalidAudience,
    /// A CA rotation step was taken out of order.
    #[error("ca: rotation: {0}")]
    Rotation(&'static str),
    /// A bundle could not be built.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// An issued SVID did not load (a bug: reported, never ignored).
    #[error(transparent)]
    Svid(#[from] SvidError),
}
