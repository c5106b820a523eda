//! Certificate revocation lists consumed by the verifier.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use webpki::{CertRevocationList, OwnedCertRevocationList};

use crate::limits::MAX_CRL_BYTES;

/// A set of X.509 CRLs (RFC 5280 section 5) checked during verification.
///
/// Cloning is cheap (a reference count).
///
/// A certificate in the verified path (leaf or intermediate) whose serial is
/// listed by a CRL of its issuer is rejected. A CRL's signature is checked
/// against its issuer when it is used. CRLs of other issuers are ignored;
/// a certificate with no CRL from its issuer is accepted (CRLs are a
/// deny-list, as in rustls' `WebPkiClientVerifier`).
///
/// A CRL past its `nextUpdate` is still applied by default (its
/// revocations stay true; a CRL publisher that stalled must not un-revoke
/// anything), with a warning once per CRL and the
/// [`metrics::EXPIRED_CRL`](crate::metrics::EXPIRED_CRL) counter; with
/// [`CrlExpiry::Enforce`] the peers of its issuer are refused instead.
///
/// ```
/// use mtls_core::CrlSet;
///
/// let crls = CrlSet::new();
/// assert!(crls.is_empty());
/// assert!(CrlSet::from_pem(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n").is_err());
/// ```
#[derive(Clone, Default)]
pub struct CrlSet {
    // Shared, copy-on-write: a set is cloned at every handshake by sources.
    crls: Arc<Vec<Arc<CertRevocationList<'static>>>>,
    ders: Arc<Vec<CertificateRevocationListDer<'static>>>,
    /// `nextUpdate` of each CRL, in the same order, and whether its expiry
    /// was reported.
    info: Arc<Vec<Arc<CrlInfo>>>,
    /// The earliest `nextUpdate`: before it, no CRL of the set is expired.
    earliest: Option<SystemTime>,
}

/// What the verifier needs to know about one CRL beyond what rustls-webpki
/// exposes.
struct CrlInfo {
    next_update: SystemTime,
    /// Whether this CRL was reported expired (once per CRL).
    warned: AtomicBool,
}

/// What to do with a CRL past its `nextUpdate` (RFC 5280 section 5.1.2.5).
///
/// Set on either config builder with `crl_expiry`.
///
/// ```
/// use mtls_core::CrlExpiry;
/// assert_eq!(CrlExpiry::default(), CrlExpiry::Apply);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlExpiry {
    /// Keep applying it (the default): what it revokes stays revoked, and
    /// what it does not list is accepted. Each expired CRL is logged once
    /// (warning) and each verification that consults one counts in
    /// [`metrics::EXPIRED_CRL`](crate::metrics::EXPIRED_CRL) with
    /// `action = "applied"`. Revocation data that is late should not take
    /// a service down, but it must be visible.
    #[default]
    Apply,
    /// Refuse every peer whose path has a certificate issued by the
    /// issuer of an expired CRL ([`VerifyError::CrlExpired`]); peers of
    /// other issuers are unaffected. Fail closed, for deployments where a
    /// stalled CRL publisher must be noticed at once.
    ///
    /// [`VerifyError::CrlExpired`]: crate::VerifyError::CrlExpired
    Enforce,
}

impl CrlSet {
    /// An empty set: revokes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `self` and `other` are the same set (not merely equal).
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.crls, &other.crls)
    }

    /// Loads every `X509 CRL` block of a PEM document. A document without
    /// any CRL is an error.
    pub fn from_pem(pem: &[u8]) -> Result<Self, CrlError> {
        if pem.len() > MAX_CRL_BYTES {
            return Err(CrlError::TooLarge { len: pem.len() });
        }
        let mut set = Self::new();
        for item in CertificateRevocationListDer::pem_slice_iter(pem) {
            let der = item.map_err(|e| CrlError::Pem {
                reason: e.to_string(),
            })?;
            set.add_der(der)?;
        }
        if set.is_empty() {
            return Err(CrlError::NoCrl);
        }
        Ok(set)
    }

    /// Loads one CRL from DER or any number from PEM, telling them apart by
    /// the first byte (DER starts with a SEQUENCE tag, `0x30`).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CrlError> {
        if bytes.first() == Some(&0x30) {
            let mut set = Self::new();
            set.add_der(CertificateRevocationListDer::from(bytes.to_vec()))?;
            Ok(set)
        } else {
            Self::from_pem(bytes)
        }
    }

    /// Adds one DER-encoded CRL.
    pub fn add_der(&mut self, der: CertificateRevocationListDer<'static>) -> Result<(), CrlError> {
        if der.len() > MAX_CRL_BYTES {
            return Err(CrlError::TooLarge { len: der.len() });
        }
        let index = self.crls.len();
        let crl = OwnedCertRevocationList::from_der(&der).map_err(|e| CrlError::Invalid {
            index,
            reason: format!("{e:?}"),
        })?;
        let next_update =
            next_update(&der).map_err(|reason| CrlError::Invalid { index, reason })?;
        Arc::make_mut(&mut self.crls).push(Arc::new(crl.into()));
        Arc::make_mut(&mut self.ders).push(der);
        Arc::make_mut(&mut self.info).push(Arc::new(CrlInfo {
            next_update,
            warned: AtomicBool::new(false),
        }));
        self.earliest = Some(self.earliest.map_or(next_update, |e| e.min(next_update)));
        Ok(())
    }

    /// Adds every CRL of `other`.
    pub fn extend(&mut self, other: &CrlSet) {
        Arc::make_mut(&mut self.crls).extend(other.crls.iter().cloned());
        Arc::make_mut(&mut self.ders).extend(other.ders.iter().cloned());
        Arc::make_mut(&mut self.info).extend(other.info.iter().cloned());
        self.earliest = match (self.earliest, other.earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// The earliest `nextUpdate` of the set: when its first CRL expires
    /// (`None` for an empty set).
    pub fn next_update(&self) -> Option<SystemTime> {
        self.earliest
    }

    /// Whether a CRL issued by `issuer` (a DER name, as rustls-webpki gives
    /// it) is expired at `now`; the first time one is seen expired it is
    /// logged. Cheap when no CRL of the set is expired.
    pub(crate) fn expired_for(&self, issuers: &[&[u8]], now: SystemTime) -> bool {
        if self.earliest.is_none_or(|earliest| now < earliest) {
            return false;
        }
        let mut found = false;
        for (crl, info) in self.crls.iter().zip(self.info.iter()) {
            if now < info.next_update || !issuers.contains(&crl.issuer()) {
                continue;
            }
            if !info.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    next_update = %crate::time_fmt::Rfc3339(info.next_update),
                    "mtls: a CRL is past its nextUpdate; its publisher may have stalled"
                );
            }
            found = true;
        }
        found
    }

    /// The CRLs, DER-encoded.
    pub fn ders(&self) -> &[CertificateRevocationListDer<'static>] {
        &self.ders
    }

    /// The number of CRLs.
    pub fn len(&self) -> usize {
        self.crls.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.crls.is_empty()
    }

    pub(crate) fn webpki_crls(&self) -> &[Arc<CertRevocationList<'static>>] {
        &self.crls
    }
}

/// The `nextUpdate` of a DER CRL (rustls-webpki requires one and keeps it
/// private).
fn next_update(der: &[u8]) -> Result<SystemTime, String> {
    use x509_parser::prelude::FromDer;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .map_err(|e| e.to_string())?;
    let next = crl
        .next_update()
        .ok_or_else(|| "no nextUpdate".to_string())?;
    Ok(crate::time_fmt::system_time_from_unix(next.timestamp()))
}

impl fmt::Debug for CrlSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlSet")
            .field("crls", &self.crls.len())
            .finish()
    }
}

/// Why a CRL could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The document is larger than [`MAX_CRL_BYTES`].
    #[error("crl: {len} bytes, larger than the {MAX_CRL_BYTES} bytes allowed")]
    TooLarge {
        /// The document's length.
        len: usize,
    },
    /// A PEM block could not be decoded.
    #[error("crl: malformed PEM: {reason}")]
    Pem {
        /// What the PEM decoder said.
        reason: String,
    },
    /// A PEM document held no `X509 CRL` block.
    #[error("crl: no X509 CRL block found")]
    NoCrl,
    /// A CRL is malformed or uses an unsupported feature (delta CRLs, ...).
    #[error("crl: CRL #{index} is invalid: {reason}")]
    Invalid {
        /// Position of the CRL in the document.
        index: usize,
        /// What the parser said.
        reason: String,
    },
}
