//! The CA as a source of JWT-SVIDs ([`CaJwtSource`]) and of its JWT
//! bundle (`JwtBundleSource` for [`CertificateAuthority`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mtls_core::{
    JwtBundle, JwtBundleSet, JwtBundleSource, JwtSourceError, JwtSvidFuture, JwtSvidSource,
    JwtToken, SpiffeId,
};

use super::{JwtSvidRequest, DEFAULT_JWT_SVID_TTL};
use crate::authority::CertificateAuthority;
use crate::rotation::RotatingCa;

/// JWT-SVIDs for one SPIFFE ID, minted by an embedded CA (or whichever CA
/// of a [`RotatingCa`] is active at each fetch): a
/// [`JwtSvidSource`] for the client layer of mtls-tower, for an app that
/// embeds its CA (tests, a single-binary deployment).
///
/// Each fetch mints a new token ([`CertificateAuthority::mint_jwt_svid`],
/// under the CA's issuance policy) on a blocking thread
/// (`tokio::task::spawn_blocking`), never on a runtime worker; put a
/// [`CachedJwtSvids`](mtls_core::CachedJwtSvids) in front of it to reuse
/// tokens. An error of the CA is carried as the upstream's own
/// ([`JwtSourceError::upstream_error`], a [`CaError`](crate::CaError)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use mtls_ca::{CaJwtSource, CaOptions, CertificateAuthority};
/// use mtls_core::{CachedJwtSvids, JwtSvidSource, JwtSvidValidator, SpiffeId, TrustDomain};
///
/// let ca = Arc::new(CertificateAuthority::self_signed_for_development(
///     TrustDomain::new("example.org")?,
///     &CaOptions::default(),
/// )?);
/// let tokens = CachedJwtSvids::new(CaJwtSource::new(ca.clone(), SpiffeId::new("spiffe://example.org/web")?));
/// let token = tokens.fetch_jwt_svid(&["spiffe://example.org/api".into()]).await?;
///
/// // The receiving side validates it against the CA's JWT bundle.
/// let svid = JwtSvidValidator::new("spiffe://example.org/api").validate_from(token.token(), &ca)?;
/// assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/web");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CaJwtSource {
    ca: Minter,
    spiffe_id: SpiffeId,
    ttl: Duration,
}

/// Which CA mints.
#[derive(Debug, Clone)]
enum Minter {
    Ca(Arc<CertificateAuthority>),
    Rotating(Arc<RotatingCa>),
}

impl CaJwtSource {
    /// Tokens for `spiffe_id` from `ca`, valid for
    /// [`DEFAULT_JWT_SVID_TTL`].
    pub fn new(ca: Arc<CertificateAuthority>, spiffe_id: SpiffeId) -> Self {
        Self {
            ca: Minter::Ca(ca),
            spiffe_id,
            ttl: DEFAULT_JWT_SVID_TTL,
        }
    }

    /// Tokens for `spiffe_id` from the CA of `rotating` active at each
    /// fetch (validators take its JWT bundles from the `RotatingCa`
    /// itself, which holds every CA of the rotation's keys).
    pub fn rotating(rotating: Arc<RotatingCa>, spiffe_id: SpiffeId) -> Self {
        Self {
            ca: Minter::Rotating(rotating),
            spiffe_id,
            ttl: DEFAULT_JWT_SVID_TTL,
        }
    }

    mtls_core::__setters! {
        /// Sets the lifetime of the tokens (at most the policy's
        /// [`max_jwt_ttl`](crate::IssuancePolicy::max_jwt_ttl): a longer one
        /// is refused by the CA).
        ttl: Duration;
    }

    /// The SPIFFE ID the tokens speak for.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The CA that mints now.
    pub fn ca(&self) -> Arc<CertificateAuthority> {
        match &self.ca {
            Minter::Ca(ca) => ca.clone(),
            Minter::Rotating(rotating) => rotating.active(),
        }
    }
}

impl JwtSvidSource for CaJwtSource {
    fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a> {
        Box::pin(async move {
            let Some((first, rest)) = audience.split_first() else {
                return Err(JwtSourceError::NoAudience);
            };
            let request = rest.iter().fold(
                JwtSvidRequest::new(self.spiffe_id.clone(), first.clone()).ttl(self.ttl),
                |request, aud| request.audience(aud.clone()),
            );
            let runtime =
                tokio::runtime::Handle::try_current().map_err(|_| JwtSourceError::NoRuntime)?;
            let ca = self.ca();
            let minted = runtime
                .spawn_blocking(move || ca.mint_jwt_svid(&request))
                .await
                .map_err(|e| JwtSourceError::upstream(audience, e))?
                .map_err(|e| JwtSourceError::upstream(audience, e))?;
            JwtToken::from_compact(&minted).map_err(|e| JwtSourceError::malformed(audience, e))
        })
    }
}

/// The CA's JWT bundle: its [`jwt_authorities`](CertificateAuthority::jwt_authorities)
/// (the active key, then retired keys within their overlap), as the one
/// bundle of its trust domain. The generation moves when the JWT key
/// rotates (the bundle sequence grows) and when a retired key leaves.
/// Should the keys not make a bundle (never expected), the set is empty:
/// no token is trusted.
///
/// ```
/// use mtls_ca::{CaOptions, CertificateAuthority, KeyType};
/// use mtls_core::{JwtBundleSource, TrustDomain};
///
/// let ca = CertificateAuthority::self_signed_for_development(
///     TrustDomain::new("example.org")?,
///     &CaOptions::default(),
/// )?;
/// let before = ca.generation();
/// assert_eq!(ca.current_jwt_bundles().get("example.org").map(|b| b.len()), Some(1));
/// ca.rotate_jwt_key(KeyType::P256)?;
/// assert_ne!(ca.generation(), before);
/// assert_eq!(ca.current_jwt_bundles().get("example.org").map(|b| b.len()), Some(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl JwtBundleSource for CertificateAuthority {
    fn current_jwt_bundles(&self) -> JwtBundleSet {
        let bundle = self.jwt_authorities().and_then(|keys| {
            JwtBundle::from_keys(self.trust_domain().clone(), keys).map_err(Into::into)
        });
        match bundle {
            Ok(bundle) => JwtBundleSet::from(bundle),
            Err(e) => {
                tracing::error!(trust_domain = %self.trust_domain(), error = %mtls_core::ErrorChain(&e), "mtls-ca: the JWT authorities do not make a bundle; trusting no token");
                JwtBundleSet::new()
            }
        }
    }

    fn generation(&self) -> Option<u64> {
        Some(self.jwt_generation(SystemTime::now()))
    }
}

impl CertificateAuthority {
    /// The bundle sequence in the high bits, the retired keys gone by
    /// `now` in the low 16: it grows at every rotation (the sequence
    /// grows, and the count restarts as gone keys are dropped) and every
    /// time a retired key leaves.
    fn jwt_generation(&self, now: SystemTime) -> u64 {
        let sequence = self.state().bundle_sequence;
        let gone = self.jwt().retired.iter().filter(|r| r.until <= now).count();
        let gone = u64::try_from(gone).unwrap_or(u64::MAX).min(0xffff);
        sequence.saturating_mul(0x1_0000).saturating_add(gone)
    }
}

/// The JWT authorities of every CA of the rotation (the previous, the
/// active and the staged one, each with its own retired keys within their
/// overlap), as the one bundle of the trust domain: a token of any CA the
/// X.509 bundle trusts validates. A key ID found twice keeps its first
/// key. No generation is offered (`None`): the keys change with each CA's
/// own JWT key rotation too, so validators read the set each time.
impl JwtBundleSource for RotatingCa {
    fn current_jwt_bundles(&self) -> JwtBundleSet {
        let trust_domain = self.active().trust_domain().clone();
        let mut bundle = JwtBundle::new(trust_domain.clone());
        for ca in self.cas() {
            match ca.jwt_authorities() {
                Ok(keys) => {
                    for key in keys {
                        if bundle.authority(key.key_id()).is_none() {
                            // Cannot fail: the key ID is not in the bundle.
                            let _ = bundle.add_authority(key);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(trust_domain = %trust_domain, error = %mtls_core::ErrorChain(&e), "mtls-ca: a CA's JWT authorities are unreadable; trusting no token");
                    return JwtBundleSet::new();
                }
            }
        }
        JwtBundleSet::from(bundle)
    }
}
