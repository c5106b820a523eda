//! The in-process test CA: roots, intermediates, leaves and CRLs built with
//! rcgen, each step open to a `mutate` closure that breaks one thing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use mtls_core::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use mtls_core::{
    authorize, BundleSet, ClientConfigBuilder, CrlSet, MtlsClientConfig, MtlsServerConfig,
    ServerConfigBuilder, TrustDomain, X509Bundle, X509Svid,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::OffsetDateTime;

static SERIAL: AtomicU64 = AtomicU64::new(0x1000);

/// A serial number no other certificate or CRL of this process has.
pub fn next_serial() -> SerialNumber {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    let mut bytes = vec![0x42];
    bytes.extend_from_slice(&n.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

/// The current time, for certificate validity.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `h` hours, for certificate validity.
pub fn hours(h: i64) -> time::Duration {
    time::Duration::hours(h)
}

/// The current time, for verification.
pub fn system_now() -> SystemTime {
    SystemTime::now()
}

/// `h` hours from now, for verification.
pub fn in_hours(h: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(h * 3600)
}

/// A signing CA: a root (self-signed) or an intermediate.
///
/// ```
/// use mtls_testing::{hours, now, TestCa};
///
/// let root = TestCa::root("example.org");
/// // An intermediate that expired an hour ago.
/// let expired = root.intermediate_with(|p| p.not_after = now() - hours(1));
/// let leaf = expired.leaf("spiffe://example.org/web");
/// assert_eq!(leaf.chain.len(), 2);
/// assert!(root.bundle_set().contains("example.org"));
/// ```
pub struct TestCa {
    /// The trust domain this CA signs for.
    pub trust_domain: TrustDomain,
    /// This CA's certificate.
    pub cert: CertificateDer<'static>,
    /// CA certificates below the root, this one first (empty for a root).
    pub chain: Vec<CertificateDer<'static>>,
    /// The root above this CA (itself for a root).
    pub root: CertificateDer<'static>,
    /// This CA certificate's serial, for CRLs that revoke it.
    pub serial: SerialNumber,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("trust_domain", &self.trust_domain)
            .field("depth", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// A leaf with its key and full chain (leaf first, up to but excluding the
/// root).
#[derive(Debug)]
pub struct TestLeaf {
    /// The leaf, then its intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's PKCS#8 private key.
    pub key: PrivateKeyDer<'static>,
    /// The leaf's serial, for CRLs that revoke it.
    pub serial: SerialNumber,
}

impl TestLeaf {
    /// This leaf as an SVID; panics when mtls-core refuses it (a broken
    /// leaf belongs in `chain` and `key`, not here).
    pub fn svid(&self) -> X509Svid {
        X509Svid::new(self.chain.clone(), self.key.clone_key()).expect("test leaf is a valid SVID")
    }
}

/// The parameters of a good signing CA for `td`: cA=true, keyCertSign and
/// cRLSign, the trust domain's SPIFFE ID, valid from a day ago for 30 days.
pub fn ca_params(td: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        format!("test CA {td} {:?}", SERIAL.load(Ordering::Relaxed)),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.subject_alt_names = vec![SanType::URI(format!("spiffe://{td}").try_into().unwrap())];
    p.not_before = now() - hours(24);
    p.not_after = now() + hours(24 * 30);
    p.serial_number = Some(next_serial());
    p.use_authority_key_identifier_extension = true;
    p
}

/// The parameters of a good X509-SVID leaf for `id`: empty subject, one URI
/// SAN, cA=false, digitalSignature, serverAuth + clientAuth, valid an hour
/// either side of now.
pub fn leaf_params(id: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.subject_alt_names = vec![SanType::URI(id.try_into().unwrap())];
    p.not_before = now() - hours(1);
    p.not_after = now() + hours(1);
    p.serial_number = Some(next_serial());
    p.use_authority_key_identifier_extension = true;
    p
}

impl TestCa {
    /// A self-signed root for `td`.
    pub fn root(td: &str) -> Self {
        Self::root_with(td, |_| {})
    }

    /// A self-signed root for `td`, its parameters changed by `mutate`.
    pub fn root_with(td: &str, mutate: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(td);
        mutate(&mut params);
        let cert = params.self_signed(&key).unwrap().der().clone();
        Self {
            serial: params.serial_number.clone().unwrap_or_else(next_serial),
            trust_domain: TrustDomain::new(td).unwrap(),
            root: cert.clone(),
            cert,
            chain: Vec::new(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this CA.
    pub fn intermediate(&self) -> Self {
        self.intermediate_with(|_| {})
    }

    /// An intermediate CA signed by this CA, its parameters changed by
    /// `mutate`.
    pub fn intermediate_with(&self, mutate: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(self.trust_domain.name());
        mutate(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        let mut chain = vec![cert.clone()];
        chain.extend(self.chain.iter().cloned());
        Self {
            serial: params.serial_number.clone().unwrap_or_else(next_serial),
            trust_domain: self.trust_domain.clone(),
            cert,
            chain,
            root: self.root.clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Builders of a server config with an SVID for `/backend` and a client
    /// config with one for `/frontend` of this trust domain, both trusting
    /// this CA's bundle and accepting any peer it authenticates.
    ///
    /// ```
    /// let ca = mtls_testing::TestCa::root("example.org");
    /// let (server, client) = ca.backend_and_frontend();
    /// assert!(server.build().is_ok() && client.build().is_ok());
    /// ```
    pub fn backend_and_frontend(&self) -> (ServerConfigBuilder, ClientConfigBuilder) {
        let svid = |name: &str| {
            self.leaf(&format!("spiffe://{}/{name}", self.trust_domain.name()))
                .svid()
        };
        let server = MtlsServerConfig::builder(svid("backend"), self.bundle_set())
            .authorizer(authorize::any());
        let client = MtlsClientConfig::builder(svid("frontend"), self.bundle_set())
            .authorizer(authorize::any());
        (server, client)
    }

    /// A valid SVID for `id` (which need not be in this CA's trust domain:
    /// tests use that to forge cross-domain leaves).
    pub fn leaf(&self, id: &str) -> TestLeaf {
        self.leaf_with(id, |_| {})
    }

    /// A leaf for `id`, its parameters changed by `mutate`.
    pub fn leaf_with(&self, id: &str, mutate: impl FnOnce(&mut CertificateParams)) -> TestLeaf {
        let key = KeyPair::generate().unwrap();
        let mut params = leaf_params(id);
        mutate(&mut params);
        let serial = params.serial_number.clone().unwrap_or_else(next_serial);
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        let mut chain = vec![cert];
        chain.extend(self.chain.iter().cloned());
        TestLeaf {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            serial,
        }
    }

    /// This CA's trust domain bundle: its root.
    pub fn bundle(&self) -> X509Bundle {
        X509Bundle::from_authorities(self.trust_domain.clone(), [self.root.clone()]).unwrap()
    }

    /// A bundle set holding [`TestCa::bundle`] only.
    pub fn bundle_set(&self) -> BundleSet {
        BundleSet::from(self.bundle())
    }

    /// A client config presenting a new leaf for `client_id`, trusting this
    /// CA's bundle, and expecting the server `server_id`.
    pub fn client_config(&self, client_id: &str, server_id: &str) -> MtlsClientConfig {
        MtlsClientConfig::builder(self.leaf(client_id).svid(), self.bundle_set())
            .authorizer(authorize::exact(crate::id(server_id)))
            .build()
            .unwrap()
    }

    /// A CRL signed by this CA revoking `serials`.
    pub fn crl(&self, serials: &[&SerialNumber]) -> CrlSet {
        self.crl_until(serials, now() + hours(24))
    }

    /// A CRL revoking `serials` whose `nextUpdate` is `next_update` (in the
    /// past: an expired CRL).
    pub fn crl_until(&self, serials: &[&SerialNumber], next_update: OffsetDateTime) -> CrlSet {
        let params = CertificateRevocationListParams {
            this_update: next_update.min(now()) - hours(1),
            next_update,
            crl_number: next_serial(),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: (*s).clone(),
                    revocation_time: now() - hours(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).unwrap();
        let mut set = CrlSet::new();
        set.add_der(crl.der().clone()).unwrap();
        set
    }
}
