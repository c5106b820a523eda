//! Our own identity: an X.509-SVID and its private key.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::id::SpiffeId;
use crate::limits::{MAX_CERTIFICATE_BYTES, MAX_CHAIN_LEN};
use crate::verify::VerifyError;

/// An X.509-SVID with its private key: the identity a service presents.
///
/// Checked on construction: the chain is non-empty (leaf first, then
/// intermediates), the leaf has the shape X509-SVID.md requires (one SPIFFE
/// ID URI SAN with a path, not a CA, digitalSignature), and the private key
/// matches the leaf's public key. Whether the chain leads to a trusted root
/// is for the bundle to say: see [`X509Svid::verify`].
///
/// Cloning is cheap (a reference count).
///
/// ```
/// use mtls_core::{SvidError, X509Svid};
///
/// let err = X509Svid::from_pem(b"", b"").unwrap_err();
/// assert!(matches!(err, SvidError::NoCertificate));
/// ```
#[derive(Clone)]
pub struct X509Svid {
    inner: Arc<Inner>,
}

struct Inner {
    spiffe_id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    not_before: SystemTime,
    not_after: SystemTime,
    /// The earliest notAfter of the chain, computed when first asked.
    valid_until: std::sync::OnceLock<SystemTime>,
}

impl X509Svid {
    /// An SVID from its chain (leaf first) and private key, checked with the
    /// default crypto provider.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, SvidError> {
        Self::with_provider(chain, key, &crate::provider::default_crypto_provider())
    }

    /// As [`X509Svid::new`], with the provider that loads the key.
    pub fn with_provider(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        provider: &CryptoProvider,
    ) -> Result<Self, SvidError> {
        if chain.is_empty() {
            return Err(SvidError::NoCertificate);
        }
        if chain.len() > MAX_CHAIN_LEN {
            return Err(SvidError::ChainTooLong { len: chain.len() });
        }
        // Peers refuse larger certificates; an SVID they would all refuse
        // is not loaded.
        if let Some((index, cert)) = chain
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() > MAX_CERTIFICATE_BYTES)
        {
            return Err(SvidError::CertificateTooLarge {
                index,
                len: cert.len(),
            });
        }
        let info = crate::x509::inspect_leaf(&chain[0]).map_err(|e| SvidError::Leaf(e.into()))?;
        certified_key(&chain, &key, provider)?;
        Ok(Self {
            inner: Arc::new(Inner {
                spiffe_id: info.spiffe_id,
                chain,
                key,
                not_before: info.not_before,
                not_after: info.not_after,
                valid_until: std::sync::OnceLock::new(),
            }),
        })
    }

    /// An SVID from a PEM chain (leaf first) and a PEM private key
    /// (PKCS#8, SEC1 or PKCS#1).
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, SvidError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SvidError::Pem {
                what: "certificate chain",
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(SvidError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => SvidError::NoPrivateKey,
            e => SvidError::Pem {
                what: "private key",
                reason: e.to_string(),
            },
        })?;
        Self::new(chain, key)
    }

    /// The SVID's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.inner.spiffe_id
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.inner.chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.inner.chain[0]
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKeyDer<'static> {
        &self.inner.key
    }

    /// When the leaf becomes valid.
    pub fn not_before(&self) -> SystemTime {
        self.inner.not_before
    }

    /// When the leaf expires.
    pub fn not_after(&self) -> SystemTime {
        self.inner.not_after
    }

    /// When the chain presented stops being usable: the earliest notAfter
    /// of the leaf and of every intermediate in the chain (peers refuse a
    /// path with an expired intermediate, however long the leaf lives).
    pub fn valid_until(&self) -> SystemTime {
        *self.inner.valid_until.get_or_init(|| {
            self.inner
                .chain
                .iter()
                .enumerate()
                .skip(1)
                .filter_map(|(index, der)| crate::x509::expiry(der, index).ok())
                .fold(self.inner.not_after, SystemTime::min)
        })
    }

    /// The chain as PEM, leaf first.
    pub fn chain_pem(&self) -> String {
        self.inner
            .chain
            .iter()
            .map(|c| crate::pem::encode("CERTIFICATE", c))
            .collect()
    }

    /// The private key as PEM. Handle with care.
    pub fn private_key_pem(&self) -> String {
        let label = match &self.inner.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        crate::pem::encode(label, self.inner.key.secret_der())
    }

    /// Verifies this SVID's chain against `bundles`, as a peer would, for
    /// the TLS role `role` (which decides the extended key usage needed).
    pub fn verify(
        &self,
        bundles: &crate::BundleSet,
        now: SystemTime,
        crls: &crate::CrlSet,
        role: crate::PeerRole,
    ) -> Result<crate::PeerIdentity, VerifyError> {
        crate::verify(self.chain(), bundles, now, crls, role)
    }

    /// Whether `self` and `other` are the same value (not merely equal).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn certified_key(
        &self,
        provider: &CryptoProvider,
    ) -> Result<Arc<CertifiedKey>, SvidError> {
        certified_key(&self.inner.chain, &self.inner.key, provider).map(Arc::new)
    }
}

fn certified_key(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, SvidError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| SvidError::Key {
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain.to_vec(), signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(SvidError::KeyMismatch)
        }
        Err(e) => Err(SvidError::Key {
            reason: format!("cannot check that the key matches the certificate: {e}"),
        }),
    }
}

impl fmt::Debug for X509Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.inner.spiffe_id)
            .field("chain_len", &self.inner.chain.len())
            .field(
                "not_after",
                &crate::time_fmt::Rfc3339(self.inner.not_after).to_string(),
            )
            .finish_non_exhaustive()
    }
}

/// Why an SVID could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SvidError {
    /// No certificate was given.
    #[error("svid: no certificate found")]
    NoCertificate,
    /// No private key was given.
    #[error("svid: no private key found")]
    NoPrivateKey,
    /// The chain is longer than allowed.
    #[error("svid: the chain has {len} certificates, more than the {MAX_CHAIN_LEN} allowed")]
    ChainTooLong {
        /// The number of certificates.
        len: usize,
    },
    /// A certificate is larger than peers accept.
    #[error("svid: certificate #{index} is {len} bytes, larger than the {MAX_CERTIFICATE_BYTES} bytes peers accept")]
    CertificateTooLarge {
        /// Position in the chain.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A PEM document could not be decoded.
    #[error("svid: malformed PEM in the {what}: {reason}")]
    Pem {
        /// Which document.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The leaf is not a valid X.509-SVID.
    #[error("svid: the leaf is not a valid X.509-SVID: {0}")]
    Leaf(VerifyError),
    /// The private key could not be loaded.
    #[error("svid: unusable private key: {reason}")]
    Key {
        /// What the crypto provider said.
        reason: String,
    },
    /// The private key does not belong to the leaf certificate.
    #[error("svid: the private key does not match the leaf certificate's public key")]
    KeyMismatch,
}
