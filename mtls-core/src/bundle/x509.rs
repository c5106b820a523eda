//! X.509 bundles: the trusted authorities of one trust domain
//! (SPIFFE_Trust_Domain_and_Bundle.md section 4, X509-SVID.md section 6).

use std::fmt;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor};

use super::BundleError;
use crate::id::TrustDomain;
use crate::limits::{MAX_BUNDLE_BYTES, MAX_CERTIFICATE_BYTES};

/// The X.509 authorities (root or intermediate CA certificates) trusted to
/// issue SVIDs for one trust domain.
///
/// A bundle belongs to exactly one trust domain; a [`BundleSet`] holds one
/// bundle per trust domain and never merges them, so a peer is checked only
/// against the authorities of its own trust domain.
///
/// An empty bundle is valid and trusts nothing (SPIFFE bundle format: an
/// empty `keys` array).
///
/// ```
/// use mtls_core::{TrustDomain, X509Bundle};
///
/// let td = TrustDomain::from_static("example.org");
/// let bundle = X509Bundle::new(td.clone());
/// assert!(bundle.is_empty());
///
/// // Garbage is a typed error, never a panic.
/// assert!(X509Bundle::from_pem(td.clone(), b"not a pem file").is_err());
/// assert!(X509Bundle::from_jwks(td, b"{\"keys\": 3}").is_err());
/// ```
///
/// [`BundleSet`]: crate::BundleSet
#[derive(Clone)]
pub struct X509Bundle {
    trust_domain: TrustDomain,
    authorities: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    sequence: Option<u64>,
    refresh_hint: Option<Duration>,
    /// The `jwt-svid` entries of the document this bundle was read from,
    /// kept as they were so that emitting it again drops none (the X.509
    /// view does not interpret them; [`SpiffeBundle`](crate::SpiffeBundle)
    /// does).
    jwt_keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl X509Bundle {
    /// An empty bundle (trusts nothing) for `trust_domain`.
    pub fn new(trust_domain: TrustDomain) -> Self {
        Self {
            trust_domain,
            authorities: Vec::new(),
            anchors: Vec::new(),
            sequence: None,
            refresh_hint: None,
            jwt_keys: Vec::new(),
        }
    }

    /// A bundle of the given DER certificates.
    pub fn from_authorities<I>(
        trust_domain: TrustDomain,
        authorities: I,
    ) -> Result<Self, BundleError>
    where
        I: IntoIterator<Item = CertificateDer<'static>>,
    {
        let mut bundle = Self::new(trust_domain);
        for (index, der) in authorities.into_iter().enumerate() {
            bundle.add_authority_at(der, index)?;
        }
        Ok(bundle)
    }

    /// Loads a bundle from PEM: one or more `CERTIFICATE` blocks (other block
    /// types, such as keys, are skipped). A document with no certificate is
    /// an error: an empty PEM file is far more often a mistake (a file still
    /// being written, the wrong path) than a wish to trust nothing.
    pub fn from_pem(trust_domain: TrustDomain, pem: &[u8]) -> Result<Self, BundleError> {
        check_size(pem.len())?;
        // A UTF-8 byte order mark, as some editors write, is not content.
        let pem = pem.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(pem);
        let mut bundle = Self::new(trust_domain);
        for (index, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let der = item.map_err(|e| BundleError::Pem {
                reason: e.to_string(),
            })?;
            bundle.add_authority_at(der, index)?;
        }
        if bundle.authorities.is_empty() {
            return Err(BundleError::NoCertificates {
                trust_domain: bundle.trust_domain,
            });
        }
        Ok(bundle)
    }

    /// Loads a bundle in the SPIFFE bundle format (a JWKS document).
    ///
    /// Per SPIFFE_Trust_Domain_and_Bundle.md section 4: `keys` is required
    /// (an empty array trusts nothing); each `use: "x509-svid"` entry's
    /// authority is the first DER certificate of its `x5c` (an entry with no
    /// `x5c` or an empty one is ignored, further values too, as X509-SVID.md
    /// section 6.2 says); entries of unknown `use` or
    /// `kty` are ignored; `jwt-svid` entries are kept as they are, not
    /// interpreted, so that emitting the bundle again does not drop them
    /// (read the document with [`SpiffeBundle::from_jwks`] for typed, checked
    /// JWT authorities); `spiffe_sequence` and `spiffe_refresh_hint` are
    /// kept. Duplicate members are rejected.
    ///
    /// [`SpiffeBundle::from_jwks`]: crate::SpiffeBundle::from_jwks
    pub fn from_jwks(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, BundleError> {
        check_size(json.len())?;
        let doc = super::jwks::parse(json)?;
        let mut bundle = Self::from_jwks_authorities(trust_domain, doc.x509)?;
        bundle.sequence = doc.sequence;
        bundle.refresh_hint = doc.refresh_hint;
        bundle.jwt_keys = doc.jwt.into_iter().map(|(_, key)| key).collect();
        Ok(bundle)
    }

    /// A bundle of the X.509 authorities of a SPIFFE bundle document, each
    /// named in errors by its position in `keys`.
    pub(super) fn from_jwks_authorities(
        trust_domain: TrustDomain,
        authorities: Vec<(usize, CertificateDer<'static>)>,
    ) -> Result<Self, BundleError> {
        let mut bundle = Self::new(trust_domain);
        for (index, der) in authorities {
            let invalid = |reason: String| BundleError::InvalidKey { index, reason };
            bundle.add_authority(der).map_err(|e| match e {
                BundleError::InvalidCertificate { reason, .. } => invalid(format!(
                    "\"x5c\" is not a valid X.509 certificate: {reason}"
                )),
                BundleError::CertificateTooLarge { len, .. } => invalid(format!(
                    "\"x5c\" certificate is {len} bytes, larger than allowed"
                )),
                // Name the entry of `keys`, not the position among authorities.
                BundleError::NotAnAuthority {
                    trust_domain,
                    subject,
                    spiffe_id,
                    reason,
                    ..
                } => BundleError::NotAnAuthority {
                    trust_domain,
                    index,
                    subject,
                    spiffe_id,
                    reason,
                },
                other => other,
            })?;
        }
        Ok(bundle)
    }

    /// Loads a bundle from PEM or SPIFFE JWKS, telling them apart by the first
    /// non-blank byte (`{` means JWKS).
    pub fn from_pem_or_jwks(trust_domain: TrustDomain, bytes: &[u8]) -> Result<Self, BundleError> {
        let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match start.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Self::from_jwks(trust_domain, bytes),
            _ => Self::from_pem(trust_domain, bytes),
        }
    }

    /// Adds an authority; adding one already present does nothing.
    pub fn add_authority(&mut self, der: CertificateDer<'static>) -> Result<(), BundleError> {
        let index = self.authorities.len();
        self.add_authority_at(der, index)
    }

    fn add_authority_at(
        &mut self,
        der: CertificateDer<'static>,
        index: usize,
    ) -> Result<(), BundleError> {
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(BundleError::CertificateTooLarge {
                index,
                len: der.len(),
            });
        }
        if self.contains(&der) {
            return Ok(());
        }
        let anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| BundleError::InvalidCertificate {
                index,
                reason: format!("{e:?}"),
            })?
            .to_owned();
        // x509-parser is stricter about trailing data and field encodings.
        // A bundle entry is an authority: a leaf there would let whoever
        // holds its key mint any SPIFFE ID of the trust domain.
        crate::x509::check_authority(&der, index)
            .map_err(|e| BundleError::InvalidCertificate {
                index,
                reason: e.to_string(),
            })?
            .map_err(|refused| BundleError::NotAnAuthority {
                trust_domain: self.trust_domain.clone(),
                index,
                subject: refused.subject,
                spiffe_id: refused.spiffe_id,
                reason: refused.reason,
            })?;
        self.anchors.push(anchor);
        self.authorities.push(der);
        Ok(())
    }

    /// Removes an authority; returns whether it was present.
    pub fn remove_authority(&mut self, der: &CertificateDer<'_>) -> bool {
        match self.authorities.iter().position(|a| a == der) {
            Some(i) => {
                self.authorities.remove(i);
                self.anchors.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether `der` is one of this bundle's authorities.
    pub fn contains(&self, der: &CertificateDer<'_>) -> bool {
        self.authorities.iter().any(|a| a == der)
    }

    /// The trust domain this bundle belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The authorities, DER-encoded, in the order they were added.
    pub fn authorities(&self) -> &[CertificateDer<'static>] {
        &self.authorities
    }

    /// Whether the bundle has no authority (and so trusts nothing).
    pub fn is_empty(&self) -> bool {
        self.authorities.is_empty()
    }

    /// The number of authorities.
    pub fn len(&self) -> usize {
        self.authorities.len()
    }

    /// The bundle's `spiffe_sequence`, if it has one.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// Sets the `spiffe_sequence` emitted in the SPIFFE bundle format.
    pub fn set_sequence(&mut self, sequence: Option<u64>) {
        self.sequence = sequence;
    }

    /// The bundle's `spiffe_refresh_hint`, if it has one.
    pub fn refresh_hint(&self) -> Option<Duration> {
        self.refresh_hint
    }

    /// Sets the `spiffe_refresh_hint` (whole seconds are emitted).
    pub fn set_refresh_hint(&mut self, hint: Option<Duration>) {
        self.refresh_hint = hint;
    }

    /// The authorities as PEM `CERTIFICATE` blocks.
    pub fn to_pem(&self) -> String {
        self.authorities
            .iter()
            .map(|der| crate::pem::encode("CERTIFICATE", der))
            .collect()
    }

    /// The bundle in the SPIFFE bundle format (a JWKS document).
    pub fn to_jwks(&self) -> Result<String, BundleError> {
        super::jwks::emit(
            &self.authorities,
            self.jwt_keys.iter().cloned(),
            self.sequence,
            self.refresh_hint,
        )
    }

    /// The same bundle without the `jwt-svid` entries kept from a JWKS
    /// document.
    pub(super) fn without_untyped_jwt_keys(mut self) -> Self {
        self.jwt_keys = Vec::new();
        self
    }

    pub(crate) fn trust_anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }
}

impl PartialEq for X509Bundle {
    fn eq(&self, other: &Self) -> bool {
        self.trust_domain == other.trust_domain
            && self.authorities == other.authorities
            && self.sequence == other.sequence
            && self.refresh_hint == other.refresh_hint
            && self.jwt_keys == other.jwt_keys
    }
}

impl fmt::Debug for X509Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Bundle")
            .field("trust_domain", &self.trust_domain)
            .field("authorities", &self.authorities.len())
            .field("sequence", &self.sequence)
            .field("refresh_hint", &self.refresh_hint)
            .finish()
    }
}

pub(super) fn check_size(len: usize) -> Result<(), BundleError> {
    if len > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge { len });
    }
    Ok(())
}
