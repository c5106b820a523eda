//! The signing certificate authority.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use mtls_core::{SpiffeId, TrustDomain, X509Bundle};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
use zeroize::Zeroizing;

use crate::error::CaError;
use crate::jwt::JwtKeys;
use crate::key::KeyType;
use crate::policy::IssuancePolicy;
use crate::serial::random_serial;
use crate::state::CaState;
use crate::time::{from_unix, to_offset};

/// How far back a certificate's `not_before` is set, for clock skew.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The `spiffe_refresh_hint` of exported bundles.
pub const BUNDLE_REFRESH_HINT: Duration = Duration::from_secs(5 * 60);

/// Settings for a new signing CA (a development root or an intermediate).
#[derive(Debug, Clone)]
pub struct CaOptions {
    /// The CA's key type (default P-256).
    pub key_type: KeyType,
    /// How long the CA certificate is valid (default 365 days), never
    /// beyond its parent's expiry.
    pub ttl: Duration,
    /// The subject common name (default: says what the CA is).
    pub common_name: Option<String>,
}

impl Default for CaOptions {
    fn default() -> Self {
        Self {
            key_type: KeyType::P256,
            ttl: Duration::from_secs(365 * 24 * 3600),
            common_name: None,
        }
    }
}

/// Settings for loading an existing CA from PEM.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The trust domain; taken from the CA certificate's `spiffe://` URI
    /// SAN when not given.
    pub trust_domain: Option<TrustDomain>,
    /// The roots peers trust (PEM); default: the last certificate of the
    /// chain.
    pub roots_pem: Option<Vec<u8>>,
}

/// An X.509-SVID certificate authority for one trust domain.
///
/// Production roots of trust live in an organisation's PKI: load an
/// intermediate CA issued by it with [`CertificateAuthority::from_pem`], and
/// optionally create per-cluster intermediates below it with
/// [`CertificateAuthority::intermediate`] (clusters sharing one root trust
/// each other). A self-signed root exists only for development, under a
/// name that says so: [`CertificateAuthority::self_signed_for_development`].
///
/// Its chain and key are verified end to end when it is created or loaded
/// (a probe SVID must pass `mtls_core::verify` against the CA's own bundle,
/// as a client's and as a server's), and every leaf it signs passes the
/// X.509-SVID leaf checks (`mtls_core::check_svid_leaf`) before it is
/// returned, so the CA never hands out a certificate its peers would
/// reject.
///
/// ```
/// use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
/// use mtls_core::{SpiffeId, TrustDomain};
///
/// let td = TrustDomain::new("example.org")?;
/// let root = CertificateAuthority::self_signed_for_development(td, &CaOptions::default())?;
/// let cluster = root.intermediate(&CaOptions::default())?;
/// let svid = cluster.issue(&SvidRequest::new(SpiffeId::new("spiffe://example.org/web")?))?;
/// assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/web");
/// assert_eq!(svid.chain().len(), 2); // leaf, then the cluster intermediate
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CertificateAuthority {
    pub(crate) trust_domain: TrustDomain,
    /// The signing certificate first, then its issuers.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// The trust anchors peers use (the bundle).
    pub(crate) anchors: Vec<CertificateDer<'static>>,
    /// Shared, so that an owned copy of the CA can sign off the runtime's
    /// workers (`SvidIssuer`).
    pub(crate) issuer: Arc<Issuer<'static, KeyPair>>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    pub(crate) policy: IssuancePolicy,
    pub(crate) state: Mutex<CaState>,
    /// The JWT-SVID signing keys.
    pub(crate) jwt: Mutex<JwtKeys>,
    /// Whether a certificate of its chain or a trust anchor has name
    /// constraints: a leaf's validity then depends on its names, and each
    /// one is verified in full before it is handed out.
    pub(crate) name_constrained: bool,
}

impl CertificateAuthority {
    /// A new self-signed root CA, **for development only**: peers that trust
    /// it trust nothing else about your organisation. In production, load
    /// an intermediate from your PKI with [`CertificateAuthority::from_pem`].
    pub fn self_signed_for_development(
        trust_domain: TrustDomain,
        options: &CaOptions,
    ) -> Result<Self, CaError> {
        let key = options.key_type.generate()?;
        let now = SystemTime::now();
        let not_after = add_ttl(now, options.ttl)?;
        // A distinct subject per root, so that two development roots of one
        // trust domain are told apart (path building matches on subjects).
        let tag = crate::serial::to_hex(&random_serial()?.to_bytes()[..4]);
        let cn = options
            .common_name
            .clone()
            .unwrap_or_else(|| format!("mtls DEVELOPMENT root CA for {trust_domain} ({tag})"));
        let params = ca_params(&trust_domain, &cn, now - BACKDATE, not_after)?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| build_err("root CA certificate", e))?
            .der()
            .clone();
        Self::assemble(trust_domain, vec![cert.clone()], vec![cert], key)?.with_new_jwt_key()
    }

    /// Loads an existing CA: its certificate chain (the CA's certificate
    /// first, then its issuers) and private key, both PEM.
    ///
    /// The CA certificate must be a CA (basicConstraints cA, keyUsage
    /// keyCertSign), valid now, without URI name constraints (rustls-webpki
    /// rejects chains that have them), and the key must match it. The
    /// chain is checked end to end by issuing a probe SVID and verifying it.
    pub fn from_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        options: &LoadOptions,
    ) -> Result<Self, CaError> {
        Self::load_pem(chain_pem, key_pem, options)?.with_new_jwt_key()
    }

    /// [`from_pem`](Self::from_pem) without a JWT signing key.
    pub(crate) fn load_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        options: &LoadOptions,
    ) -> Result<Self, CaError> {
        let chain = certs_from_pem(chain_pem, "CA certificate chain")?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => CaError::NoPrivateKey { what: "CA key" },
            e => CaError::Pem {
                what: "CA key",
                reason: e.to_string(),
            },
        })?;
        let key = KeyPair::try_from(&key_der)
            .and_then(|key| {
                // Keep the key as PKCS#8 whatever its file's format (SEC1,
                // PKCS#1), so that `private_key_pem` is what its label says.
                match crate::key::wrap_pkcs8(&key_der, key.algorithm()) {
                    Some(pkcs8) => KeyPair::try_from(&PrivateKeyDer::Pkcs8(pkcs8.into())),
                    None => Ok(key),
                }
            })
            .map_err(|e| CaError::Pem {
                what: "CA key",
                reason: e.to_string(),
            })?;
        let anchors = match &options.roots_pem {
            Some(pem) => certs_from_pem(pem, "roots")?,
            None => chain.last().cloned().into_iter().collect(),
        };
        let info = inspect_ca(&chain[0])?;
        if info.spki != key.subject_public_key_info() {
            return Err(CaError::KeyMismatch);
        }
        let trust_domain = match (&options.trust_domain, info.trust_domain) {
            (Some(td), Some(cert_td)) if *td != cert_td => {
                return Err(CaError::NotACa {
                    reason: format!("its SPIFFE ID is of trust domain {cert_td}, not {td}"),
                })
            }
            (Some(td), _) => td.clone(),
            (None, Some(td)) => td,
            (None, None) => return Err(CaError::UnknownTrustDomain),
        };
        let ca = Self::assemble(trust_domain, chain, anchors, key)?;
        ca.probe()?;
        Ok(ca)
    }

    /// End-to-end check: the chain order, the anchors, the key and the
    /// constraints of every issuer have to be right for a probe leaf to
    /// verify.
    fn probe(&self) -> Result<(), CaError> {
        let probe = SpiffeId::from_path(&self.trust_domain, "/mtls-ca/probe").map_err(|_| {
            CaError::NotACa {
                reason: "cannot build a probe ID".into(),
            }
        })?;
        let svid = self
            .issue_unchecked_policy(&crate::SvidRequest::new(probe).ttl(Duration::from_secs(60)))
            .and_then(|svid| {
                self.self_check_roles(
                    svid.chain(),
                    &[mtls_core::PeerRole::Client, mtls_core::PeerRole::Server],
                )
            })
            .map_err(|e| CaError::NotACa {
                reason: format!("a probe SVID issued with this chain and key does not verify: {e}"),
            });
        svid.map(drop)
    }

    /// A new intermediate CA signed by this one, for the same trust domain
    /// (for example one per cluster, so that clusters sharing the root
    /// trust each other while each signs with its own key).
    pub fn intermediate(&self, options: &CaOptions) -> Result<Self, CaError> {
        let key = options.key_type.generate()?;
        let now = SystemTime::now();
        self.check_valid(now)?;
        let not_after = add_ttl(now, options.ttl)?.min(self.not_after);
        // A distinct subject per intermediate: sibling CAs with one name
        // cannot be told apart by CRL issuer (rustls-webpki takes the first
        // CRL whose issuer name matches, and fails on its signature).
        let tag = crate::serial::to_hex(&random_serial()?.to_bytes()[..4]);
        let cn = options
            .common_name
            .clone()
            .unwrap_or_else(|| format!("mtls intermediate CA for {} ({tag})", self.trust_domain));
        let params = ca_params(
            &self.trust_domain,
            &cn,
            (now - BACKDATE).max(self.not_before),
            not_after,
        )?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| build_err("intermediate CA certificate", e))?
            .der()
            .clone();
        let mut chain = vec![cert];
        chain.extend(self.chain.iter().cloned());
        let mut child =
            Self::assemble(self.trust_domain.clone(), chain, self.anchors.clone(), key)?;
        child.policy = self.policy.clone();
        // The parent's constraints (a path length of 0, name constraints)
        // may forbid the child: find out now, not at the first issuance.
        child.probe()?;
        child.with_new_jwt_key()
    }

    fn assemble(
        trust_domain: TrustDomain,
        chain: Vec<CertificateDer<'static>>,
        anchors: Vec<CertificateDer<'static>>,
        key: KeyPair,
    ) -> Result<Self, CaError> {
        let info = inspect_ca(&chain[0])?;
        let issuer = Issuer::from_ca_cert_der(&chain[0], key).map_err(|e| CaError::NotACa {
            reason: e.to_string(),
        })?;
        let name_constrained = chain
            .iter()
            .chain(&anchors)
            .any(|c| has_name_constraints(c));
        let ca = Self {
            policy: IssuancePolicy::new(trust_domain.clone()),
            trust_domain,
            chain,
            anchors,
            issuer: Arc::new(issuer),
            not_before: info.not_before,
            not_after: info.not_after,
            state: Mutex::new(CaState::default()),
            jwt: Mutex::new(JwtKeys::default()),
            name_constrained,
        };
        ca.check_valid(SystemTime::now())?;
        Ok(ca)
    }

    pub(crate) fn check_valid(&self, now: SystemTime) -> Result<(), CaError> {
        if now < self.not_before {
            return Err(CaError::CaNotYetValid {
                not_before: self.not_before,
                now,
            });
        }
        if now >= self.not_after {
            return Err(CaError::CaExpired {
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }

    /// The trust domain this CA issues for.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA's own certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The CA's chain: its certificate first, then its issuers.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The trust anchors peers must trust for this CA's SVIDs.
    pub fn trust_anchors(&self) -> &[CertificateDer<'static>] {
        &self.anchors
    }

    /// When the CA certificate expires; SVIDs never outlive it.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The certificates sent after an issued leaf: the chain without the
    /// trust anchors.
    pub(crate) fn served_chain(&self) -> impl Iterator<Item = &CertificateDer<'static>> + '_ {
        self.chain.iter().filter(|c| !self.anchors.contains(c))
    }

    /// The issuance policy.
    pub fn policy(&self) -> &IssuancePolicy {
        &self.policy
    }

    /// Replaces the issuance policy; its trust domain must be this CA's.
    pub fn set_policy(&mut self, policy: IssuancePolicy) -> Result<(), CaError> {
        if policy.trust_domain() != &self.trust_domain {
            return Err(CaError::PolicyTrustDomain {
                policy: policy.trust_domain().clone(),
                ca: self.trust_domain.clone(),
            });
        }
        self.policy = policy;
        Ok(())
    }

    /// The trust bundle peers need: the trust anchors, with the bundle
    /// sequence number and refresh hint set.
    pub fn bundle(&self) -> Result<X509Bundle, CaError> {
        let mut bundle =
            X509Bundle::from_authorities(self.trust_domain.clone(), self.anchors.iter().cloned())?;
        bundle.set_sequence(Some(self.state().bundle_sequence));
        bundle.set_refresh_hint(Some(BUNDLE_REFRESH_HINT));
        Ok(bundle)
    }

    /// The CA's private key as PKCS#8 PEM (zeroized on drop).
    pub fn private_key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(mtls_core::to_pem(
            "PRIVATE KEY",
            &crate::key::pkcs8_der(self.issuer.key()),
        ))
    }

    /// The same CA with a fresh JWT signing key (P-256).
    fn with_new_jwt_key(self) -> Result<Self, CaError> {
        *self.jwt() = JwtKeys::generate()?;
        Ok(self)
    }

    pub(crate) fn jwt(&self) -> MutexGuard<'_, JwtKeys> {
        self.jwt.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, CaState> {
        // The state holds plain data; a panic elsewhere cannot leave it
        // half-updated in a way that matters, so poisoning is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("trust_domain", &self.trust_domain)
            .field("chain_len", &self.chain.len())
            .field("anchors", &self.anchors.len())
            .field(
                "not_after",
                &crate::time::Rfc3339(self.not_after).to_string(),
            )
            .finish_non_exhaustive()
    }
}

fn ca_params(
    td: &TrustDomain,
    cn: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // The CA's own SPIFFE ID has no path (X509-SVID.md 3.2). No name
    // constraints: rustls-webpki rejects chains with URI name constraints.
    p.subject_alt_names = vec![SanType::URI(
        td.id()
            .as_str()
            .try_into()
            .map_err(|e| build_err("CA SPIFFE ID", e))?,
    )];
    p.serial_number = Some(random_serial()?);
    p.not_before = to_offset(not_before);
    p.not_after = to_offset(not_after);
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// `now + ttl`, or an error when that is not a representable time.
pub(crate) fn add_ttl(now: SystemTime, ttl: Duration) -> Result<SystemTime, CaError> {
    now.checked_add(ttl)
        .filter(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|d| d.as_secs() < 253_402_300_799)
        })
        .ok_or(CaError::TtlTooLong { ttl })
}

pub(crate) fn build_err(what: &'static str, e: impl fmt::Display) -> CaError {
    CaError::Build {
        what,
        reason: e.to_string(),
    }
}

/// Whether a certificate has a nameConstraints extension (one that does
/// not parse counts as one: the cautious answer).
fn has_name_constraints(der: &CertificateDer<'_>) -> bool {
    X509Certificate::from_der(der).map_or(true, |(_, cert)| {
        cert.extensions()
            .iter()
            .any(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_NAME_CONSTRAINTS)
    })
}

pub(crate) fn certs_from_pem(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CaError::NoCertificate { what });
    }
    Ok(certs)
}

struct CaInfo {
    spki: Vec<u8>,
    trust_domain: Option<TrustDomain>,
    not_before: SystemTime,
    not_after: SystemTime,
}

/// Checks that `der` is a signing CA and reads what the CA needs from it.
fn inspect_ca(der: &[u8]) -> Result<CaInfo, CaError> {
    let not_ca = |reason: &str| CaError::NotACa {
        reason: reason.to_owned(),
    };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CaError::NotACa {
        reason: format!("not a valid certificate: {e}"),
    })?;
    let bc = cert
        .basic_constraints()
        .map_err(|e| not_ca(&e.to_string()))?;
    if !bc.is_some_and(|bc| bc.value.ca) {
        return Err(not_ca("basicConstraints cA is not true"));
    }
    let ku = cert.key_usage().map_err(|e| not_ca(&e.to_string()))?;
    if !ku.is_some_and(|ku| ku.value.key_cert_sign()) {
        return Err(not_ca("keyUsage lacks keyCertSign"));
    }
    let mut trust_domain = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::NameConstraints(nc) => {
                let subtrees = nc
                    .permitted_subtrees
                    .iter()
                    .chain(nc.excluded_subtrees.iter())
                    .flatten();
                if subtrees
                    .into_iter()
                    .any(|s| matches!(s.base, GeneralName::URI(_)))
                {
                    return Err(not_ca(
                        "it has URI name constraints, which rustls-webpki rejects",
                    ));
                }
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    if let GeneralName::URI(uri) = name {
                        if uri.starts_with("spiffe://") {
                            let id = SpiffeId::new(uri).map_err(|e| CaError::NotACa {
                                reason: format!("its URI SAN is not a valid SPIFFE ID: {e}"),
                            })?;
                            if !id.is_trust_domain_id() {
                                return Err(not_ca(
                                    "its SPIFFE ID has a path; a signing CA's has none",
                                ));
                            }
                            trust_domain = Some(id.trust_domain().clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(CaInfo {
        spki: cert.tbs_certificate.subject_pki.raw.to_vec(),
        trust_domain,
        not_before: from_unix(cert.validity().not_before.timestamp()),
        not_after: from_unix(cert.validity().not_after.timestamp()),
    })
}
