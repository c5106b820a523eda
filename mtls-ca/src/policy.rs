//! What a CA may issue.

use std::time::Duration;

use mtls_core::{SpiffeId, TrustDomain};

use crate::error::CaError;

/// Decides which SVIDs a CA may issue, for [`issue`] and [`sign_csr`]
/// alike: the SPIFFE ID must be in the CA's trust domain and have a path,
/// must be under one of the allowed path prefixes if any are set, and the
/// TTL may not exceed the maximum (default 24 hours).
///
/// ```
/// use mtls_ca::IssuancePolicy;
/// use mtls_core::{SpiffeId, TrustDomain};
/// use std::time::Duration;
///
/// let policy = IssuancePolicy::new(TrustDomain::new("example.org")?)
///     .allow_prefix(SpiffeId::new("spiffe://example.org/ns/payments")?);
/// let hour = Duration::from_secs(3600);
/// assert!(policy.check(&SpiffeId::new("spiffe://example.org/ns/payments/web")?, hour).is_ok());
/// assert!(policy.check(&SpiffeId::new("spiffe://example.org/ns/paymentsx")?, hour).is_err());
/// assert!(policy.check(&SpiffeId::new("spiffe://other.org/ns/payments")?, hour).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`issue`]: crate::CertificateAuthority::issue
/// [`sign_csr`]: crate::CertificateAuthority::sign_csr
#[derive(Debug, Clone)]
pub struct IssuancePolicy {
    trust_domain: TrustDomain,
    prefixes: Vec<SpiffeId>,
    max_ttl: Duration,
    pub(crate) max_jwt_ttl: Duration,
}

/// The default longest SVID lifetime a policy allows.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// The default longest JWT-SVID lifetime a policy allows: one hour. Bearer
/// tokens are replayable by whoever holds them, so they live short.
pub const DEFAULT_MAX_JWT_TTL: Duration = Duration::from_secs(3600);

impl IssuancePolicy {
    /// Any path in `trust_domain`, TTL up to [`DEFAULT_MAX_TTL`].
    pub fn new(trust_domain: TrustDomain) -> Self {
        Self {
            trust_domain,
            prefixes: Vec::new(),
            max_ttl: DEFAULT_MAX_TTL,
            max_jwt_ttl: DEFAULT_MAX_JWT_TTL,
        }
    }

    /// Restricts issuance to IDs under `prefix` (segment boundaries), in
    /// addition to any prefix already allowed.
    pub fn allow_prefix(mut self, prefix: SpiffeId) -> Self {
        self.prefixes.push(prefix);
        self
    }

    mtls_core::__setters! {
        /// Sets the longest TTL allowed.
        max_ttl: Duration;
        /// Sets the longest JWT-SVID TTL allowed (default
        /// [`DEFAULT_MAX_JWT_TTL`]). Retired JWT keys stay published this long
        /// (plus clock skew) after a rotation.
        max_jwt_ttl: Duration;
    }

    /// The trust domain the policy issues for.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// Whether an SVID for `id` valid for `ttl` may be issued.
    pub fn check(&self, id: &SpiffeId, ttl: Duration) -> Result<(), CaError> {
        self.check_subject(id)?;
        check_ttl(id, ttl, self.max_ttl, "TTL")
    }

    /// Whether a JWT-SVID for `id` valid for `ttl` may be minted.
    pub(crate) fn check_jwt(&self, id: &SpiffeId, ttl: Duration) -> Result<(), CaError> {
        self.check_subject(id)?;
        check_ttl(id, ttl, self.max_jwt_ttl, "JWT-SVID TTL")
    }

    fn check_subject(&self, id: &SpiffeId) -> Result<(), CaError> {
        if !id.is_member_of(&self.trust_domain) {
            return Err(CaError::WrongTrustDomain {
                id: id.clone(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        if id.is_trust_domain_id() {
            return Err(CaError::TrustDomainIdAsLeaf(id.clone()));
        }
        if !self.prefixes.is_empty() && !self.prefixes.iter().any(|p| id.is_under(p)) {
            return Err(CaError::PolicyDenied {
                id: id.clone(),
                reason: "not under an allowed path prefix".into(),
            });
        }
        Ok(())
    }
}

fn check_ttl(id: &SpiffeId, ttl: Duration, max: Duration, what: &str) -> Result<(), CaError> {
    if ttl.is_zero() {
        return Err(CaError::ZeroTtl);
    }
    if ttl > max {
        return Err(CaError::PolicyDenied {
            id: id.clone(),
            reason: format!(
                "{what} {}s exceeds the maximum {}s",
                ttl.as_secs(),
                max.as_secs()
            ),
        });
    }
    Ok(())
}
