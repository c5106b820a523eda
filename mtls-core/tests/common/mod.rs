//! An in-process test CA that builds good and deliberately broken
//! X.509-SVIDs on demand (after go-spiffe's `internal/test/ca.go`).
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use mtls_core::{BundleSet, CrlSet, TrustDomain, X509Bundle, X509Svid};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

static SERIAL: AtomicU64 = AtomicU64::new(0x1000);

pub fn next_serial() -> SerialNumber {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    let mut bytes = vec![0x42];
    bytes.extend_from_slice(&n.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn hours(h: i64) -> time::Duration {
    time::Duration::hours(h)
}

/// A signing CA: a root (self-signed) or an intermediate.
pub struct TestCa {
    pub trust_domain: TrustDomain,
    pub cert: CertificateDer<'static>,
    /// CA certificates below the root, this one first (empty for a root).
    pub chain: Vec<CertificateDer<'static>>,
    pub root: CertificateDer<'static>,
    /// This CA certificate's serial, for CRLs that revoke it.
    #[allow(dead_code)]
    pub serial: SerialNumber,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf with its key and full chain (leaf first, up to but excluding the root).
pub struct TestLeaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub serial: SerialNumber,
}

impl TestLeaf {
    pub fn svid(&self) -> X509Svid {
        X509Svid::new(self.chain.clone(), self.key.clone_key()).expect("test leaf is a valid SVID")
    }
}

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

    pub fn root_with(td: &str, mutate: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(td);
        mutate(&mut params);
        let cert = params.self_signed(&key).unwrap().der().clone();
        Self {
            serial: params.serial_number.clone().unwrap(),
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

    pub fn intermediate_with(&self, mutate: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(self.trust_domain.name());
        mutate(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        let mut chain = vec![cert.clone()];
        chain.extend(self.chain.iter().cloned());
        Self {
            serial: params.serial_number.clone().unwrap(),
            trust_domain: self.trust_domain.clone(),
            cert,
            chain,
            root: self.root.clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A valid SVID for `id` (which need not be in this CA's trust domain:
    /// tests use that to forge cross-domain leaves).
    pub fn leaf(&self, id: &str) -> TestLeaf {
        self.leaf_with(id, |_| {})
    }

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

    pub fn bundle_set(&self) -> BundleSet {
        BundleSet::from(self.bundle())
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

pub fn system_now() -> SystemTime {
    SystemTime::now()
}

pub fn in_hours(h: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(h * 3600)
}

/// Serves `hi` with `server` on loopback to every peer it accepts; returns
/// the address.
pub async fn serve_hi(server: &mtls_core::MtlsServerConfig) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server.rustls_config());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"hi").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

/// What the server at `addr` answers `client`, and the leaf it presented;
/// an error when the handshake or the read fails (a TLS 1.3 server's
/// refusal of the client shows on the first read).
pub async fn call_hi(
    client: &mtls_core::MtlsClientConfig,
    addr: std::net::SocketAddr,
) -> std::io::Result<(Vec<u8>, CertificateDer<'static>)> {
    use tokio::io::AsyncReadExt;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(client.rustls_config());
    let server_name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(server_name, tcp).await?;
    let leaf = client
        .peer_identity(tls.get_ref().1)
        .map_err(std::io::Error::other)?
        .leaf()
        .clone();
    let mut buf = Vec::new();
    tls.read_to_end(&mut buf).await?;
    Ok((buf, leaf))
}
