//! JWT-SVIDs: the CA's JWT signing keys, minting, and rotation with overlap.
//!
//! A CA holds one active JWT signing key (ECDSA P-256, `ES256`, by
//! default). Its public key is a `jwt-svid` authority of the CA's SPIFFE
//! bundle ([`CertificateAuthority::spiffe_bundle`]); tokens it signs carry
//! its `kid`. [`rotate_jwt_key`](CertificateAuthority::rotate_jwt_key)
//! replaces it: the old public key stays in the bundle until every token
//! it signed has expired (the policy's longest JWT-SVID TTL, plus the
//! allowed clock skew), so validators never see a valid token whose key is
//! gone.
//!
//! For the mtls sources: [`CaJwtSource`] mints JWT-SVIDs for one SPIFFE ID
//! as a `mtls_core::JwtSvidSource` (what mtls-tower's client layer sends),
//! and the CA is a `mtls_core::JwtBundleSource` of its JWT authorities
//! (what the server layer validates against).
//!
//! ```
//! use mtls_ca::{CaOptions, CertificateAuthority, JwtSvidRequest};
//! use mtls_core::{SpiffeId, TrustDomain};
//!
//! let td = TrustDomain::new("example.org")?;
//! let ca = CertificateAuthority::self_signed_for_development(td, &CaOptions::default())?;
//! let token = ca.mint_jwt_svid(&JwtSvidRequest::new(
//!     SpiffeId::new("spiffe://example.org/web")?,
//!     "spiffe://example.org/api",
//! ))?;
//! assert_eq!(token.split('.').count(), 3); // a compact JWS
//!
//! // Validators find its key in the bundle, by `kid`.
//! let bundle = ca.spiffe_bundle()?;
//! assert_eq!(bundle.jwt_authorities().len(), 1);
//!
//! // Rotation: the new key signs, the old one stays published for a while.
//! let old_kid = ca.jwt_signing_key().map(|k| k.key_id().to_owned());
//! ca.rotate_jwt_key(Default::default())?;
//! assert_ne!(ca.jwt_signing_key().map(|k| k.key_id().to_owned()), old_kid);
//! assert_eq!(ca.spiffe_bundle()?.jwt_authorities().len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod key;
mod source;
pub(crate) mod store;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtls_core::{JwtKey, SpiffeBundle, SpiffeId};
use serde_json::json;

pub use key::JwtSigningKey;
pub use source::CaJwtSource;

use crate::authority::{CertificateAuthority, BACKDATE};
use crate::error::CaError;
use crate::key::KeyType;

/// The default lifetime of a JWT-SVID: 5 minutes, as SPIRE's.
pub const DEFAULT_JWT_SVID_TTL: Duration = Duration::from_secs(5 * 60);

/// A request for a JWT-SVID: the subject, one or more audiences, a lifetime.
#[derive(Debug, Clone)]
pub struct JwtSvidRequest {
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    ttl: Duration,
}

impl JwtSvidRequest {
    /// A token for `spiffe_id`, valid for `audience`, for
    /// [`DEFAULT_JWT_SVID_TTL`].
    pub fn new(spiffe_id: SpiffeId, audience: impl Into<String>) -> Self {
        Self {
            spiffe_id,
            audience: vec![audience.into()],
            ttl: DEFAULT_JWT_SVID_TTL,
        }
    }

    /// Adds an audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    mtls_core::__setters! {
        /// Sets the lifetime (at most the policy's
        /// [`max_jwt_ttl`](crate::IssuancePolicy::max_jwt_ttl)).
        ttl: Duration;
    }

    /// The subject.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }
}

/// The CA's JWT keys: the one that signs, and the retired ones still
/// published until the tokens they signed have expired.
#[derive(Debug, Clone, Default)]
pub(crate) struct JwtKeys {
    pub(crate) active: Option<JwtSigningKey>,
    pub(crate) retired: Vec<RetiredJwtKey>,
}

/// A retired JWT authority and when it leaves the bundle.
#[derive(Debug, Clone)]
pub(crate) struct RetiredJwtKey {
    pub(crate) key: JwtKey,
    pub(crate) until: SystemTime,
}

impl JwtKeys {
    pub(crate) fn generate() -> Result<Self, CaError> {
        Ok(Self {
            active: Some(JwtSigningKey::generate(KeyType::P256)?),
            retired: Vec::new(),
        })
    }

    /// The authorities to publish at `now`: the active key's, then every
    /// retired one not yet due to leave.
    fn authorities(&self, now: SystemTime) -> Result<Vec<JwtKey>, CaError> {
        let mut keys = Vec::new();
        if let Some(active) = &self.active {
            keys.push(active.public_key()?);
        }
        keys.extend(
            self.retired
                .iter()
                .filter(|r| r.until > now)
                .map(|r| r.key.clone()),
        );
        Ok(keys)
    }
}

impl CertificateAuthority {
    /// The key that signs JWT-SVIDs now; `None` for a CA directory written
    /// before JWT-SVIDs existed (run `mtls-ca jwt rotate` on it once).
    pub fn jwt_signing_key(&self) -> Option<JwtSigningKey> {
        self.jwt().active.clone()
    }

    /// The `jwt-svid` authorities peers use to validate this CA's
    /// JWT-SVIDs: the active key, then retired keys still within their
    /// overlap.
    pub fn jwt_authorities(&self) -> Result<Vec<JwtKey>, CaError> {
        self.jwt().authorities(SystemTime::now())
    }

    /// The CA's SPIFFE bundle: X.509 authorities (the trust anchors) and
    /// JWT authorities, with its sequence number and refresh hint.
    pub fn spiffe_bundle(&self) -> Result<SpiffeBundle, CaError> {
        Ok(SpiffeBundle::from_parts(
            self.bundle()?,
            self.jwt_authorities()?,
        )?)
    }

    /// Mints a JWT-SVID (a compact JWS signed with the active JWT key) after
    /// the issuance policy allows its subject and lifetime. The claims are
    /// `sub`, `aud` (an array), `exp` and `iat`; the header names `alg`,
    /// `kid` and `typ: "JWT"`.
    pub fn mint_jwt_svid(&self, request: &JwtSvidRequest) -> Result<String, CaError> {
        self.policy.check_jwt(&request.spiffe_id, request.ttl)?;
        if request.audience.is_empty() || request.audience.iter().any(String::is_empty) {
            return Err(CaError::InvalidAudience);
        }
        let key = self.jwt_signing_key().ok_or(CaError::NoJwtKey)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| CaError::Build {
                what: "JWT-SVID",
                reason: "the clock is before 1970".into(),
            })?
            .as_secs();
        let header = json!({ "alg": key.algorithm(), "kid": key.key_id(), "typ": "JWT" });
        let claims = json!({
            "sub": request.spiffe_id.as_str(),
            "aud": request.audience,
            "exp": now.saturating_add(request.ttl.as_secs()),
            "iat": now,
        });
        key.sign_compact(&header, &claims)
    }

    /// Replaces the JWT signing key by a fresh one of `key_type` (P-256 or
    /// P-384). The old public key stays among the
    /// [`jwt_authorities`](Self::jwt_authorities) until every token it may
    /// have signed has expired; keys already past that leave now. Increases
    /// the bundle's sequence number. To rotate the key of a CA directory,
    /// use [`rotate_jwt_key_in`](Self::rotate_jwt_key_in).
    pub fn rotate_jwt_key(&self, key_type: KeyType) -> Result<JwtSigningKey, CaError> {
        let next = JwtSigningKey::generate(key_type)?;
        let now = SystemTime::now();
        let until = now + self.policy.max_jwt_ttl + BACKDATE;
        let mut jwt = self.jwt();
        let retiring = jwt.active.replace(next.clone());
        jwt.retired.retain(|r| r.until > now);
        if let Some(old) = retiring {
            jwt.retired.push(RetiredJwtKey {
                key: old.public_key()?,
                until,
            });
        }
        drop(jwt);
        let mut state = self.state();
        state.bundle_sequence = state.bundle_sequence.saturating_add(1);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaOptions;

    #[test]
    fn a_retired_key_leaves_the_bundle_once_its_tokens_have_expired() {
        let td = mtls_core::TrustDomain::new("example.org").unwrap_or_else(|e| panic!("{e}"));
        let ca = CertificateAuthority::self_signed_for_development(td, &CaOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let rotated_at = SystemTime::now();
        let new = ca
            .rotate_jwt_key(KeyType::P256)
            .unwrap_or_else(|e| panic!("{e}"));
        let kids = |at: SystemTime| -> Vec<String> {
            let keys = ca.jwt().authorities(at).unwrap_or_else(|e| panic!("{e}"));
            keys.iter().map(|k| k.key_id().to_owned()).collect()
        };
        // Every token of the old key expires within the longest TTL; the
        // key stays for that plus the clock skew allowance.
        let last_expiry = rotated_at + ca.policy.max_jwt_ttl;
        assert_eq!(kids(last_expiry).len(), 2);
        assert_eq!(
            kids(last_expiry + BACKDATE + Duration::from_secs(1)),
            [new.key_id()]
        );
        // A second rotation keeps the first retired key: it is still due.
        let _ = ca.rotate_jwt_key(KeyType::P256);
        assert_eq!(
            ca.jwt().retired.len(),
            2,
            "the first retired key is still due"
        );
    }
}
