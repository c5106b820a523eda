//! Issuing X.509-SVIDs.

use std::time::{Duration, SystemTime};

use mtls_core::{BundleSet, CrlSet, PeerRole, SpiffeId, X509Svid};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    PublicKeyData, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use crate::authority::{build_err, CertificateAuthority, BACKDATE};
use crate::error::CaError;
use crate::key::KeyType;
use crate::serial::random_serial;
use crate::time::to_offset;

/// The default SVID lifetime (one hour, as `mtls_core::SvidSpec`'s).
pub const DEFAULT_SVID_TTL: Duration = mtls_core::SvidSpec::DEFAULT_TTL;

/// What to put in an SVID.
///
/// ```
/// use mtls_ca::{KeyType, SvidRequest};
/// use mtls_core::SpiffeId;
/// use std::time::Duration;
///
/// let request = SvidRequest::new(SpiffeId::new("spiffe://example.org/web")?)
///     .dns_name("web.example.org")
///     .ttl(Duration::from_secs(600))
///     .key_type(KeyType::Ed25519);
/// # Ok::<(), mtls_core::SpiffeIdError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SvidRequest {
    pub(crate) spiffe_id: SpiffeId,
    pub(crate) dns_names: Vec<String>,
    pub(crate) ttl: Duration,
    pub(crate) key_type: KeyType,
    pub(crate) common_name: Option<String>,
}

impl SvidRequest {
    /// An SVID for `spiffe_id`: empty subject, TTL 1 hour, P-256 key.
    pub fn new(spiffe_id: SpiffeId) -> Self {
        Self {
            spiffe_id,
            dns_names: Vec::new(),
            ttl: DEFAULT_SVID_TTL,
            key_type: KeyType::P256,
            common_name: None,
        }
    }

    /// Adds a DNS SAN beside the SPIFFE ID (for clients such as curl that
    /// check the server name).
    pub fn dns_name(mut self, name: impl Into<String>) -> Self {
        self.dns_names.push(name.into());
        self
    }

    mtls_core::__setters! {
        /// The lifetime (never beyond the CA's own expiry).
        ttl: Duration;
        /// The key type of the generated key (ignored when signing a CSR).
        key_type: KeyType;
    }

    /// A subject common name (default: an empty subject, which makes the
    /// URI SAN critical as X509-SVID.md recommends).
    pub fn common_name(mut self, cn: impl Into<String>) -> Self {
        self.common_name = Some(cn.into());
        self
    }

    /// The SPIFFE ID asked for.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }
}

impl CertificateAuthority {
    /// Issues an X.509-SVID with a fresh key, after the issuance policy
    /// allows it. The leaf has basicConstraints cA=false, keyUsage
    /// digitalSignature (critical), EKU serverAuth and clientAuth, exactly
    /// one URI SAN, a random serial, a `not_before` backdated for clock
    /// skew, and never outlives the CA. The chain holds the leaf then the
    /// intermediates (not the trust anchor).
    pub fn issue(&self, request: &SvidRequest) -> Result<X509Svid, CaError> {
        self.policy.check(&request.spiffe_id, request.ttl)?;
        self.issue_unchecked_policy(request)
    }

    pub(crate) fn issue_unchecked_policy(
        &self,
        request: &SvidRequest,
    ) -> Result<X509Svid, CaError> {
        let key = request.key_type.generate()?;
        let chain = self.sign_leaf(request, &key, "SVID")?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            crate::key::pkcs8_der(&key).to_vec(),
        ));
        // The key was generated here and the leaf signed over it: it is not
        // loaded again to compare. `issued` checks the leaf's SVID shape.
        let svid = X509Svid::issued(chain, key)?;
        same_id(svid.spiffe_id(), request, "SVID")?;
        Ok(svid)
    }

    /// Checks the X.509-SVID leaf rules on a chain this CA signed (see
    /// [`sign_leaf`](Self::sign_leaf)).
    pub(crate) fn check_leaf(
        chain: &[CertificateDer<'static>],
        request: &SvidRequest,
        what: &'static str,
    ) -> Result<(), CaError> {
        let leaf = chain.first().ok_or_else(|| build_err(what, "no leaf"))?;
        let id = mtls_core::check_svid_leaf(leaf).map_err(|e| CaError::Build {
            what: "SVID (it breaks the X.509-SVID leaf rules)",
            reason: e.to_string(),
        })?;
        same_id(&id, request, what)
    }

    /// Signs a leaf for `request` over `public_key` and returns its chain
    /// (`what` names it in errors). When name constraints above it make
    /// its validity depend on its names, the chain is verified as peers
    /// will; otherwise the caller checks the leaf's shape
    /// ([`X509Svid::issued`], [`check_leaf`](Self::check_leaf)): nothing
    /// above it depends on the leaf, and this CA's chain and key were
    /// verified end to end with a leaf of the same form when it was loaded
    /// (`probe`, both roles). The tests and the `csr_sign` fuzz target
    /// verify what it signs.
    pub(crate) fn sign_leaf(
        &self,
        request: &SvidRequest,
        public_key: &impl PublicKeyData,
        what: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        let params = self.leaf_params(request)?;
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(|e| build_err(what, e))?
            .der()
            .clone();
        let chain = self.leaf_chain(cert);
        if self.name_constrained {
            self.self_check_roles(&chain, &[PeerRole::Client, PeerRole::Server])?;
        }
        Ok(chain)
    }

    fn leaf_chain(&self, leaf: CertificateDer<'static>) -> Vec<CertificateDer<'static>> {
        std::iter::once(leaf)
            .chain(self.served_chain().cloned())
            .collect()
    }

    /// Verifies an issued chain as a peer would, so that the CA never hands
    /// out a certificate its own trust bundle rejects. Once, as a client's:
    /// every leaf carries both EKUs (`leaf_params`), and what could make
    /// the roles differ (an issuer's EKU restriction) is a property of the
    /// CA chain, checked for both roles when the CA is built (`probe`).
    pub(crate) fn self_check_roles(
        &self,
        chain: &[CertificateDer<'static>],
        roles: &[PeerRole],
    ) -> Result<(), CaError> {
        let bundles = BundleSet::from(self.bundle()?);
        for &role in roles {
            mtls_core::verify(chain, &bundles, SystemTime::now(), &CrlSet::new(), role).map_err(
                |e| CaError::Build {
                    what: "SVID (it fails verification against the CA's own bundle)",
                    reason: e.to_string(),
                },
            )?;
        }
        Ok(())
    }

    pub(crate) fn leaf_params(&self, request: &SvidRequest) -> Result<CertificateParams, CaError> {
        let now = SystemTime::now();
        self.check_valid(now)?;
        let not_after = crate::authority::add_ttl(now, request.ttl)?.min(self.not_after);
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = &request.common_name {
            dn.push(DnType::CommonName, cn.as_str());
        }
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let mut sans = vec![SanType::URI(
            request
                .spiffe_id
                .as_str()
                .try_into()
                .map_err(|e| build_err("SVID URI SAN", e))?,
        )];
        for name in &request.dns_names {
            match ServerName::try_from(name.as_str()) {
                Ok(ServerName::DnsName(_)) => {}
                _ => return Err(CaError::InvalidDnsName(name.clone())),
            }
            sans.push(SanType::DnsName(
                name.as_str()
                    .try_into()
                    .map_err(|_| CaError::InvalidDnsName(name.clone()))?,
            ));
        }
        p.subject_alt_names = sans;
        p.serial_number = Some(random_serial()?);
        p.not_before = to_offset((now - BACKDATE).max(self.not_before));
        p.not_after = to_offset(not_after);
        p.use_authority_key_identifier_extension = true;
        Ok(p)
    }
}

/// The leaf names the SPIFFE ID asked for.
fn same_id(id: &SpiffeId, request: &SvidRequest, what: &'static str) -> Result<(), CaError> {
    if *id == request.spiffe_id {
        Ok(())
    } else {
        Err(CaError::Build {
            what,
            reason: format!("the leaf names {id}, not {}", request.spiffe_id),
        })
    }
}
