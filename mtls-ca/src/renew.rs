//! The CA as an [`SvidIssuer`], for `mtls_core::RenewingSvid`.

use std::sync::Mutex;

use mtls_core::{IssueError, KeyAlgorithm, SvidIssuer, SvidSpec, X509Svid};

use crate::authority::CertificateAuthority;
use crate::error::CaError;
use crate::issue::SvidRequest;
use crate::key::KeyType;
use crate::rotation::RotatingCa;
use crate::state::CaState;

/// Issues with the CA's [`issue`](CertificateAuthority::issue), under its
/// issuance policy, on a blocking thread (`tokio::task::spawn_blocking`):
/// key generation and signing never run on a runtime worker. An error of
/// the CA is carried as the issuer's own ([`IssueError::issuer_error`],
/// a [`CaError`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use mtls_ca::{CaOptions, CertificateAuthority};
/// use mtls_core::{RenewingSvid, SpiffeId, SvidSource, SvidSpec, TrustDomain};
///
/// let ca = Arc::new(CertificateAuthority::self_signed_for_development(
///     TrustDomain::new("example.org")?,
///     &CaOptions::default(),
/// )?);
/// let svid = RenewingSvid::start(ca, SvidSpec::new(SpiffeId::new("spiffe://example.org/web")?)).await?;
/// let mut updates = svid.changes();
/// svid.renew_now().await?;
/// updates.changed().await?;
/// assert_eq!(svid.generation(), 1);
/// assert_eq!(svid.status().failures, 0);
/// assert_eq!(svid.current_svid().unwrap().spiffe_id().as_str(), "spiffe://example.org/web");
/// # Ok(()) }
/// ```
impl SvidIssuer for CertificateAuthority {
    async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
        let request = svid_request(spec)?;
        let ca = self.signing_copy();
        issue_blocking(spec, move || ca.issue(&request)).await
    }
}

/// Issues with whichever CA is active when asked, as
/// [`CertificateAuthority`] does: a `RenewingSvid` started from a
/// `RotatingCa` follows the rotation.
impl SvidIssuer for RotatingCa {
    async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
        let request = svid_request(spec)?;
        let ca = self.active();
        issue_blocking(spec, move || ca.issue(&request)).await
    }
}

/// The CA's request for `spec`: the same SPIFFE ID, TTL, DNS names and key
/// algorithm, an empty subject.
pub(crate) fn svid_request(spec: &SvidSpec) -> Result<SvidRequest, IssueError> {
    let key_type = match spec.key_algorithm {
        KeyAlgorithm::EcdsaP256 => KeyType::P256,
        KeyAlgorithm::EcdsaP384 => KeyType::P384,
        KeyAlgorithm::Ed25519 => KeyType::Ed25519,
        other => {
            return Err(IssueError::issuer(
                &spec.spiffe_id,
                CaError::UnknownKeyType(format!("{other:?}")),
            ))
        }
    };
    let request = spec
        .dns_names
        .iter()
        .fold(SvidRequest::new(spec.spiffe_id.clone()), |r, name| {
            r.dns_name(name.clone())
        })
        .ttl(spec.ttl)
        .key_type(key_type);
    Ok(request)
}

/// Runs `issue` on tokio's blocking pool.
pub(crate) async fn issue_blocking(
    spec: &SvidSpec,
    issue: impl FnOnce() -> Result<X509Svid, CaError> + Send + 'static,
) -> Result<X509Svid, IssueError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| IssueError::NoRuntime)?;
    match runtime.spawn_blocking(issue).await {
        Ok(issued) => issued.map_err(|e| IssueError::issuer(&spec.spiffe_id, e)),
        Err(e) => Err(IssueError::issuer(&spec.spiffe_id, e)),
    }
}

impl CertificateAuthority {
    /// A copy of the CA that can issue (same key, chain and policy), to
    /// move to a blocking thread. Its state holds only what issuance reads
    /// (the bundle sequence), not the revocations.
    fn signing_copy(&self) -> Self {
        let state = CaState {
            bundle_sequence: self.state().bundle_sequence,
            ..CaState::default()
        };
        Self {
            trust_domain: self.trust_domain.clone(),
            chain: self.chain.clone(),
            anchors: self.anchors.clone(),
            issuer: self.issuer.clone(),
            not_before: self.not_before,
            not_after: self.not_after,
            policy: self.policy.clone(),
            state: Mutex::new(state),
            jwt: Mutex::new(self.jwt().clone()),
            name_constrained: self.name_constrained,
        }
    }
}
