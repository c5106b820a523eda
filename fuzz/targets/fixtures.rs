//! The fixed trust domain every target checks against: fixed Ed25519 keys
//! and the certificates built from them. Ed25519 signatures are
//! deterministic, so these are the same bytes in every run on every
//! machine, and a crash replays exactly.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtls_core::{BundleSet, TrustDomain, X509Bundle};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

pub const TRUST_DOMAIN: &str = "example.org";

/// The SPIFFE ID of the fixed leaf.
pub const LEAF_ID: &str = "spiffe://example.org/fixed";

/// 2030-01-01T00:00:00Z, inside the validity of every fixed certificate.
pub const FIXED_NOW: u64 = 1_893_456_000;

/// Latest verification time a target uses (9999-12-31T23:59:59Z).
pub const MAX_NOW: u64 = 253_402_300_799;

/// The fixed leaf's serial.
pub const LEAF_SERIAL: [u8; 2] = [0x10, 0x01];

/// The intermediate's serial.
pub const INTERMEDIATE_SERIAL: [u8; 1] = [0x02];

// PKCS#8 v1 Ed25519 keys, made once with `openssl genpkey -algorithm ed25519`.
const ROOT_KEY: [u8; 48] = pkcs8([
    0x8b, 0x6a, 0x20, 0xed, 0x0c, 0x80, 0x02, 0x33, 0x5c, 0x9c, 0xc3, 0xe8, 0x59, 0x32, 0x49, 0x8d,
    0xc1, 0x7b, 0x1b, 0x1f, 0x1e, 0x12, 0x81, 0x72, 0x95, 0x10, 0x1c, 0xfc, 0xfb, 0x25, 0x68, 0xb6,
]);
const INTERMEDIATE_KEY: [u8; 48] = pkcs8([
    0x76, 0xa7, 0x51, 0xfe, 0xf1, 0x86, 0x21, 0x2f, 0x31, 0xc6, 0x8c, 0x51, 0x30, 0xf9, 0xab, 0xa2,
    0xe0, 0x11, 0x6d, 0xa6, 0x2b, 0xf2, 0xe1, 0x26, 0xe4, 0xa9, 0x89, 0xe4, 0x33, 0x54, 0xa3, 0xd7,
]);
const STRANGER_KEY: [u8; 48] = pkcs8([
    0x51, 0xca, 0x2f, 0x1b, 0x9b, 0xcc, 0x4a, 0x46, 0x34, 0xd2, 0x1b, 0xa1, 0xfd, 0xd6, 0x1d, 0xaf,
    0xcc, 0xc9, 0x3a, 0xb3, 0xdf, 0xd3, 0x8e, 0x88, 0x4c, 0xfa, 0x5f, 0xac, 0x09, 0xf8, 0x40, 0x88,
]);
const LEAF_KEY: [u8; 48] = pkcs8([
    0xfe, 0xa8, 0x5b, 0xfb, 0x6d, 0x21, 0x29, 0x33, 0xab, 0x58, 0xf6, 0xe2, 0x62, 0x56, 0x7c, 0x9e,
    0xf1, 0x4d, 0xe6, 0x5f, 0x3c, 0x8b, 0x03, 0xe5, 0xc7, 0xcc, 0xce, 0x98, 0x95, 0xde, 0x95, 0x26,
]);
const CSR_KEY: [u8; 48] = pkcs8([
    0x32, 0x5b, 0x3e, 0xfd, 0x45, 0xbc, 0xe7, 0xcd, 0x23, 0x12, 0x21, 0xe0, 0x94, 0xbb, 0x80, 0xe5,
    0xab, 0xb9, 0xf2, 0xfe, 0x93, 0x3f, 0xe5, 0x74, 0x8f, 0x38, 0x43, 0xbc, 0x16, 0xd8, 0x25, 0x14,
]);

const fn pkcs8(seed: [u8; 32]) -> [u8; 48] {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut out = [0u8; 48];
    let mut i = 0;
    while i < 16 {
        out[i] = PREFIX[i];
        i += 1;
    }
    while i < 48 {
        out[i] = seed[i - 16];
        i += 1;
    }
    out
}

/// The fixed keys and certificates.
#[derive(Debug)]
pub struct Fixtures {
    pub trust_domain: TrustDomain,
    /// Self-signed root, the only authority of [`Fixtures::bundle`].
    pub root: CertificateDer<'static>,
    /// An intermediate CA signed by the root.
    pub intermediate: CertificateDer<'static>,
    /// A root with the real root's subject but another key: whatever it
    /// signs names the real root as issuer and must never be trusted.
    pub stranger_root: CertificateDer<'static>,
    /// A valid SVID for [`LEAF_ID`] signed by the intermediate.
    pub leaf: CertificateDer<'static>,
    pub root_key: KeyPair,
    pub intermediate_key: KeyPair,
    pub stranger_key: KeyPair,
    pub leaf_key: KeyPair,
    /// The key of CSRs that [`Signer::Csr`] re-signs.
    pub csr_key: KeyPair,
    /// A bundle set holding only the root.
    pub bundle: BundleSet,
}

/// Who re-signs a mutated structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// Nobody: the bytes are used as they are.
    Keep,
    Root,
    Intermediate,
    Stranger,
    Leaf,
    Csr,
}

impl Signer {
    pub const ALL: [Signer; 6] = [
        Signer::Keep,
        Signer::Root,
        Signer::Intermediate,
        Signer::Stranger,
        Signer::Leaf,
        Signer::Csr,
    ];

    pub fn from_byte(b: u8) -> Self {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }

    pub fn byte(self) -> u8 {
        Self::ALL.iter().position(|&s| s == self).unwrap_or(0) as u8
    }

    pub fn key(self) -> Option<&'static KeyPair> {
        let f = get();
        match self {
            Signer::Keep => None,
            Signer::Root => Some(&f.root_key),
            Signer::Intermediate => Some(&f.intermediate_key),
            Signer::Stranger => Some(&f.stranger_key),
            Signer::Leaf => Some(&f.leaf_key),
            Signer::Csr => Some(&f.csr_key),
        }
    }

    /// `der` re-signed by this signer (unchanged for [`Signer::Keep`]).
    pub fn apply(self, der: &[u8]) -> Vec<u8> {
        match self.key() {
            Some(key) => super::der::resign(der, key),
            None => der.to_vec(),
        }
    }
}

pub fn get() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(build)
}

pub fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix.min(MAX_NOW))
}

fn key(pkcs8: &[u8; 48]) -> KeyPair {
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(&pkcs8[..]),
        &rcgen::PKCS_ED25519,
    )
    .expect("fixed Ed25519 key")
}

fn date(y: i32) -> time::OffsetDateTime {
    time::Date::from_calendar_date(y, time::Month::January, 1)
        .expect("fixed date")
        .midnight()
        .assume_utc()
}

fn ca_params(cn: &str, serial: &[u8]) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "mtls fuzz");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    p.subject_alt_names = vec![SanType::URI(
        format!("spiffe://{TRUST_DOMAIN}").try_into().expect("URI"),
    )];
    p.not_before = date(2020);
    p.not_after = date(2100);
    p.serial_number = Some(SerialNumber::from_slice(serial));
    p.use_authority_key_identifier_extension = true;
    p
}

fn build() -> Fixtures {
    let root_key = key(&ROOT_KEY);
    let intermediate_key = key(&INTERMEDIATE_KEY);
    let stranger_key = key(&STRANGER_KEY);
    let leaf_key = key(&LEAF_KEY);
    let csr_key = key(&CSR_KEY);

    let mut root_params = ca_params("mtls fuzz root", &[0x01]);
    root_params.use_authority_key_identifier_extension = false;
    let root = root_params
        .self_signed(&root_key)
        .expect("root")
        .der()
        .clone();
    let root_issuer = Issuer::from_params(&root_params, &root_key);
    let stranger_root = root_params
        .self_signed(&stranger_key)
        .expect("stranger root")
        .der()
        .clone();

    let intermediate_params = ca_params("mtls fuzz intermediate", &INTERMEDIATE_SERIAL);
    let intermediate = intermediate_params
        .signed_by(&intermediate_key, &root_issuer)
        .expect("intermediate")
        .der()
        .clone();
    let intermediate_issuer = Issuer::from_params(&intermediate_params, &intermediate_key);

    let mut leaf_params = CertificateParams::default();
    leaf_params.distinguished_name = DistinguishedName::new();
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf_params.subject_alt_names = vec![SanType::URI(LEAF_ID.try_into().expect("URI"))];
    leaf_params.not_before = date(2020);
    leaf_params.not_after = date(2100);
    leaf_params.serial_number = Some(SerialNumber::from_slice(&LEAF_SERIAL));
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params
        .signed_by(&leaf_key, &intermediate_issuer)
        .expect("leaf")
        .der()
        .clone();

    let trust_domain = TrustDomain::new(TRUST_DOMAIN).expect("trust domain");
    let bundle = BundleSet::from(
        X509Bundle::from_authorities(trust_domain.clone(), [root.clone()]).expect("bundle"),
    );
    Fixtures {
        trust_domain,
        root,
        intermediate,
        stranger_root,
        leaf,
        root_key,
        intermediate_key,
        stranger_key,
        leaf_key,
        csr_key,
        bundle,
    }
}

/// `chain` as PEM `CERTIFICATE` blocks.
pub fn chain_pem(chain: &[&CertificateDer<'_>]) -> String {
    chain
        .iter()
        .map(|c| mtls_core::to_pem("CERTIFICATE", c))
        .collect()
}
