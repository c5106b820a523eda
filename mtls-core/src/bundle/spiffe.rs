//! The SPIFFE bundle of a trust domain: X.509 and JWT authorities, sequence
//! number and refresh hint (SPIFFE_Trust_Domain_and_Bundle.md section 4).

use std::time::Duration;

use rustls_pki_types::CertificateDer;

use super::jwt::{JwtKey, JwtKeyError};
use super::x509::check_size;
use super::{BundleError, X509Bundle};
use crate::id::TrustDomain;
use crate::jwt::JwtBundle;

/// The SPIFFE bundle of one trust domain, as the SPIFFE bundle format
/// (a JWKS document) defines it: its X.509 authorities, its JWT authorities
/// (typed [`JwtKey`]s, by key ID), `spiffe_sequence` and
/// `spiffe_refresh_hint`.
///
/// Verification of X.509-SVIDs uses the [`x509`](Self::x509) view, an
/// [`X509Bundle`]; JWT-SVID validation will use the
/// [`jwt_authorities`](Self::jwt_authorities).
///
/// Reading is strict where [`X509Bundle::from_jwks`] is lenient: every
/// `jwt-svid` entry must be a key a JWT-SVID can be checked with (a
/// non-empty `kid` unique in the bundle, `kty` `EC` on P-256, P-384 or
/// P-521 with coordinates of the exact length, or `RSA` of 2048 to 8192
/// bits, an `alg` that fits if any), else the document is refused with a
/// [`BundleError::InvalidJwtKey`] naming the entry and its `kid`. Entries of
/// unknown `use` or `kty` are ignored, as the specification says. Emitting
/// and reading again gives the same bundle.
///
/// ```
/// use mtls_core::{JwtKeyType, SpiffeBundle, TrustDomain};
///
/// let doc = br#"{
///     "keys": [{
///         "use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": "k1",
///         "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
///         "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
///     }],
///     "spiffe_sequence": 7,
///     "spiffe_refresh_hint": 300
/// }"#;
/// let td = TrustDomain::from_static("example.org");
/// let bundle = SpiffeBundle::from_jwks(td.clone(), doc)?;
/// assert_eq!(bundle.jwt_authority("k1").map(|k| k.key_type()), Some(JwtKeyType::EcP256));
/// assert!(bundle.x509().is_empty());
/// assert_eq!(bundle.sequence(), Some(7));
///
/// let again = SpiffeBundle::from_jwks(td, bundle.to_jwks()?.as_bytes())?;
/// assert_eq!(again, bundle);
/// # Ok::<(), mtls_core::BundleError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SpiffeBundle {
    /// The X.509 authorities, sequence and refresh hint (with no untyped
    /// JWT entries: the typed ones are below).
    x509: X509Bundle,
    /// The JWT authorities, of the same trust domain.
    jwt: JwtBundle,
}

impl SpiffeBundle {
    /// An empty bundle (trusts nothing) of `trust_domain`.
    pub fn new(trust_domain: TrustDomain) -> Self {
        Self {
            jwt: JwtBundle::new(trust_domain.clone()),
            x509: X509Bundle::new(trust_domain),
        }
    }

    /// A bundle of X.509 authorities (with the sequence and refresh hint of
    /// `x509`) and JWT authorities; two JWT authorities with one key ID are
    /// an error. `jwt-svid` entries `x509` kept untyped from a JWKS document
    /// are not carried over: give them as [`JwtKey`]s, or read the
    /// document with [`SpiffeBundle::from_jwks`].
    pub fn from_parts<I>(x509: X509Bundle, jwt_authorities: I) -> Result<Self, BundleError>
    where
        I: IntoIterator<Item = JwtKey>,
    {
        Ok(Self {
            jwt: JwtBundle::from_keys(x509.trust_domain().clone(), jwt_authorities)?,
            x509: x509.without_untyped_jwt_keys(),
        })
    }

    /// Reads a bundle in the SPIFFE bundle format (a JWKS document), at most
    /// [`MAX_BUNDLE_BYTES`](crate::MAX_BUNDLE_BYTES): the X.509 authorities
    /// as [`X509Bundle::from_jwks`] reads them, and every `jwt-svid` entry
    /// as a typed [`JwtKey`] (see the type's documentation for what is
    /// refused).
    pub fn from_jwks(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, BundleError> {
        check_size(json.len())?;
        let doc = super::jwks::parse(json)?;
        let mut x509 = X509Bundle::from_jwks_authorities(trust_domain, doc.x509)?;
        x509.set_sequence(doc.sequence);
        x509.set_refresh_hint(doc.refresh_hint);
        let mut bundle = Self {
            jwt: JwtBundle::new(x509.trust_domain().clone()),
            x509,
        };
        for (index, jwk) in doc.jwt {
            let key_id = match jwk.get("kid") {
                Some(serde_json::Value::String(kid)) => Some(crate::x509::escape_untrusted(kid)),
                _ => None,
            };
            let invalid = |source: JwtKeyError| BundleError::InvalidJwtKey {
                index,
                key_id: key_id.clone(),
                source,
            };
            if let Some(key) = JwtKey::from_jwk(&jwk).map_err(invalid)? {
                // Refused only for a key ID already there.
                bundle
                    .jwt
                    .add_authority(key)
                    .map_err(|_| invalid(JwtKeyError::DuplicateKeyId))?;
            }
        }
        Ok(bundle)
    }

    /// The bundle in the SPIFFE bundle format (a JWKS document): X.509
    /// authorities, then JWT authorities, then `spiffe_sequence` and
    /// `spiffe_refresh_hint` when set.
    pub fn to_jwks(&self) -> Result<String, BundleError> {
        super::jwks::emit(
            self.x509.authorities(),
            self.jwt.authorities().iter().map(JwtKey::to_jwk),
            self.x509.sequence(),
            self.x509.refresh_hint(),
        )
    }

    /// The trust domain this bundle belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        self.x509.trust_domain()
    }

    /// The X.509 view: the authorities X.509-SVIDs of this trust domain are
    /// verified against (with the sequence and refresh hint), as
    /// [`BundleSet`](crate::BundleSet) and the verifier use it.
    pub fn x509(&self) -> &X509Bundle {
        &self.x509
    }

    /// The X.509 view, by value.
    pub fn into_x509(self) -> X509Bundle {
        self.x509
    }

    /// Adds an X.509 authority; see [`X509Bundle::add_authority`].
    pub fn add_x509_authority(&mut self, der: CertificateDer<'static>) -> Result<(), BundleError> {
        self.x509.add_authority(der)
    }

    /// The JWT authorities, in document order.
    pub fn jwt_authorities(&self) -> &[JwtKey] {
        self.jwt.authorities()
    }

    /// The JWT authority of key ID `key_id`.
    pub fn jwt_authority(&self, key_id: &str) -> Option<&JwtKey> {
        self.jwt.authority(key_id)
    }

    /// Adds a JWT authority; one with the same key ID is an error.
    pub fn add_jwt_authority(&mut self, key: JwtKey) -> Result<(), BundleError> {
        self.jwt.add_authority(key)
    }

    /// Removes the JWT authority of key ID `key_id`, returning it.
    pub fn remove_jwt_authority(&mut self, key_id: &str) -> Option<JwtKey> {
        self.jwt.remove_authority(key_id)
    }

    /// The JWT view: the authorities JWT-SVIDs of this trust domain are
    /// validated against.
    pub(crate) fn jwt_bundle(&self) -> &JwtBundle {
        &self.jwt
    }

    /// Whether the bundle has no authority at all, X.509 or JWT (and so
    /// trusts nothing).
    pub fn is_empty(&self) -> bool {
        self.x509.is_empty() && self.jwt.is_empty()
    }

    /// The bundle's `spiffe_sequence`, if it has one.
    pub fn sequence(&self) -> Option<u64> {
        self.x509.sequence()
    }

    /// Sets the `spiffe_sequence`.
    pub fn set_sequence(&mut self, sequence: Option<u64>) {
        self.x509.set_sequence(sequence);
    }

    /// The bundle's `spiffe_refresh_hint`, if it has one.
    pub fn refresh_hint(&self) -> Option<Duration> {
        self.x509.refresh_hint()
    }

    /// Sets the `spiffe_refresh_hint` (whole seconds are emitted).
    pub fn set_refresh_hint(&mut self, hint: Option<Duration>) {
        self.x509.set_refresh_hint(hint);
    }
}

impl From<SpiffeBundle> for X509Bundle {
    fn from(bundle: SpiffeBundle) -> Self {
        bundle.into_x509()
    }
}
