//! The fixed trust domain every target checks against: fixed Ed25519 keys
//! and the certificates built from them. Ed25519 signatures are
//! deterministic, so these are the same bytes in every run on every
//! machine, and a crash replays exactly.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtls_core::{BundleSet, TrustDomain, X509Bundle};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::frame::byte_coded;

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

// The seeds of PKCS#8 v1 Ed25519 keys, made once with
// `openssl genpkey -algorithm ed25519`, in hex: root, intermediate,
// stranger, leaf, CSR.
const SEEDS: [&str; 5] = [
    "8b6a20ed0c8002335c9cc3e85932498dc17b1b1f1e12817295101cfcfb2568b6",
    "76a751fef186212f31c68c5130f9aba2e0116da62bf2e126e4a989e43354a3d7",
    "51ca2f1b9bcc4a4634d21ba1fdd61dafccc93ab3dfd38e884cfa5fac09f84088",
    "fea85bfb6d212933ab58f6e262567c9ef14de65f3c8b03e5c7ccce9895de9526",
    "325b3efd45bce7cd231221e094bb80e5abb9f2fe933fe5748f3843bc16d82514",
];
const ROOT_KEY: [u8; 48] = pkcs8(SEEDS[0]);
const INTERMEDIATE_KEY: [u8; 48] = pkcs8(SEEDS[1]);
const STRANGER_KEY: [u8; 48] = pkcs8(SEEDS[2]);
const LEAF_KEY: [u8; 48] = pkcs8(SEEDS[3]);
const CSR_KEY: [u8; 48] = pkcs8(SEEDS[4]);

/// The PKCS#8 v1 document of the Ed25519 key whose seed is `seed_hex`
/// (64 lower-case hex digits; anything else fails the build).
const fn pkcs8(seed_hex: &str) -> [u8; 48] {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let hex = seed_hex.as_bytes();
    assert!(hex.len() == 64, "an Ed25519 seed is 32 bytes");
    let mut out = [0u8; 48];
    let mut i = 0;
    while i < 16 {
        out[i] = PREFIX[i];
        i += 1;
    }
    while i < 48 {
        let at = 2 * (i - 16);
        out[i] = nibble(hex[at]) << 4 | nibble(hex[at + 1]);
        i += 1;
    }
    out
}

const fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => panic!("a seed is lower-case hex"),
    }
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

byte_coded! {
    /// Who re-signs a mutated structure.
    pub enum Signer {
        /// Nobody: the bytes are used as they are.
        Keep,
        Root,
        Intermediate,
        Stranger,
        Leaf,
        Csr,
    }
}

impl Signer {
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

    // A good X509-SVID leaf, as the tests build them, at fixed dates and serial.
    let mut leaf_params = mtls_testing::leaf_params(LEAF_ID);
    leaf_params.not_before = date(2020);
    leaf_params.not_after = date(2100);
    leaf_params.serial_number = Some(SerialNumber::from_slice(&LEAF_SERIAL));
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
