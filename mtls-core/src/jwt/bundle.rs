//! The JWT bundle of one trust domain: its JWT authorities.

use crate::bundle::{BundleError, JwtKey, JwtKeyError, SpiffeBundle};
use crate::id::TrustDomain;

/// The JWT authorities of one trust domain: the `jwt-svid` keys of its
/// SPIFFE bundle (SPIFFE_Trust_Domain_and_Bundle.md section 4.2.2), by key
/// ID. JWT-SVIDs whose subject is in this trust domain are checked against
/// these keys and no others.
///
/// Only keys with `use: "jwt-svid"` become JWT authorities: an X.509
/// authority of the same document never verifies a token.
///
/// ```
/// use mtls_core::{JwtBundle, TrustDomain};
///
/// let doc = br#"{"keys": [{
///     "use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": "k1",
///     "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
///     "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
/// }]}"#;
/// let bundle = JwtBundle::from_jwks(TrustDomain::from_static("example.org"), doc)?;
/// assert!(bundle.authority("k1").is_some());
/// assert!(bundle.authority("k2").is_none());
/// # Ok::<(), mtls_core::BundleError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JwtBundle {
    trust_domain: TrustDomain,
    keys: Vec<JwtKey>,
}

impl JwtBundle {
    /// A bundle of `trust_domain` without keys: it trusts no token.
    pub fn new(trust_domain: TrustDomain) -> Self {
        Self {
            trust_domain,
            keys: Vec::new(),
        }
    }

    /// A bundle of `trust_domain` holding `keys`; two keys with one key ID
    /// are an error.
    pub fn from_keys<I>(trust_domain: TrustDomain, keys: I) -> Result<Self, BundleError>
    where
        I: IntoIterator<Item = JwtKey>,
    {
        let mut bundle = Self::new(trust_domain);
        for key in keys {
            bundle.add_authority(key)?;
        }
        Ok(bundle)
    }

    /// The JWT authorities of a SPIFFE bundle document (JWKS), read as
    /// strictly as [`SpiffeBundle::from_jwks`] reads them.
    pub fn from_jwks(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, BundleError> {
        SpiffeBundle::from_jwks(trust_domain, json).map(Self::from)
    }

    /// The trust domain whose tokens these keys verify.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The JWT authorities, in the order they were added.
    pub fn authorities(&self) -> &[JwtKey] {
        &self.keys
    }

    /// The JWT authority of key ID `key_id`.
    pub fn authority(&self, key_id: &str) -> Option<&JwtKey> {
        self.keys.iter().find(|k| k.key_id() == key_id)
    }

    /// Adds a JWT authority; one with the same key ID is an error.
    pub fn add_authority(&mut self, key: JwtKey) -> Result<(), BundleError> {
        if self.authority(key.key_id()).is_some() {
            return Err(BundleError::InvalidJwtKey {
                index: self.keys.len(),
                key_id: Some(crate::x509::escape_untrusted(key.key_id())),
                source: JwtKeyError::DuplicateKeyId,
            });
        }
        self.keys.push(key);
        Ok(())
    }

    /// Removes the JWT authority of key ID `key_id`, returning it.
    pub fn remove_authority(&mut self, key_id: &str) -> Option<JwtKey> {
        let index = self.keys.iter().position(|k| k.key_id() == key_id)?;
        Some(self.keys.remove(index))
    }

    /// The number of JWT authorities.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the bundle has no JWT authority (and so trusts no token).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl From<SpiffeBundle> for JwtBundle {
    fn from(bundle: SpiffeBundle) -> Self {
        Self::from(&bundle)
    }
}

impl From<&SpiffeBundle> for JwtBundle {
    fn from(bundle: &SpiffeBundle) -> Self {
        bundle.jwt_bundle().clone()
    }
}
