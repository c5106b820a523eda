//! The embedded CA (DESIGN.md sections 3 "rcgen" and 5): the shape of the
//! SVIDs it issues, its issuance policy, CSR signing, loading an
//! organisation's CA, revocation and CRLs, and saving it to disk.
//!
//! Organisation PKIs are built on demand with rcgen (the go-spiffe
//! "in-process CA for mutated certificates" approach); every error is
//! checked by its exact `CaError` / `VerifyError` variant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtls_ca::{
    CaError, CaOptions, CertificateAuthority, IssuancePolicy, KeyType, LoadOptions, SvidRequest,
    BACKDATE, BUNDLE_FILE, CA_CERT_FILE, CA_KEY_FILE, DEFAULT_CRL_VALIDITY, DEFAULT_MAX_TTL,
    DEFAULT_SVID_TTL, LOCK_FILE, MAX_CSR_BYTES, STATE_FILE,
};
use mtls_core::{verify, BundleSet, CrlSet, PeerRole, SpiffeId, TrustDomain, VerifyError};
use mtls_testing::{dns_names, id};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, PublicKeyData,
    SanType, SignatureAlgorithm,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::prelude::{
    CertificateRevocationList, FromDer, GeneralName, ParsedExtension, X509Certificate,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const TD: &str = "example.org";
const WEB: &str = "spiffe://example.org/web";

fn td() -> TrustDomain {
    TrustDomain::new(TD).unwrap()
}

fn dev_root() -> CertificateAuthority {
    CertificateAuthority::self_signed_for_development(td(), &CaOptions::default()).unwrap()
}

fn ca_with(key_type: KeyType, ttl: Duration) -> CertificateAuthority {
    let options = CaOptions {
        key_type,
        ttl,
        common_name: None,
    };
    CertificateAuthority::self_signed_for_development(td(), &options).unwrap()
}

/// A day-long root of `key_type` and an intermediate below it with a key
/// of the same type.
fn root_and_intermediate(key_type: KeyType) -> (CertificateAuthority, CertificateAuthority) {
    let root = ca_with(key_type, Duration::from_secs(24 * 3600));
    let options = CaOptions {
        key_type,
        ..CaOptions::default()
    };
    let inter = root.intermediate(&options).unwrap();
    (root, inter)
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty(), "trailing data after the certificate");
    cert
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn bundles(ca: &CertificateAuthority) -> BundleSet {
    BundleSet::from(ca.bundle().unwrap())
}

fn pem_chain(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| mtls_core::to_pem("CERTIFICATE", c))
        .collect()
}

/// Verifies `chain` as a client and as a server; both must agree.
fn verify_both(
    chain: &[CertificateDer<'_>],
    bundles: &BundleSet,
    crls: &CrlSet,
) -> Result<(), VerifyError> {
    let now = SystemTime::now();
    let client = verify(chain, bundles, now, crls, PeerRole::Client).map(|_| ());
    let server = verify(chain, bundles, now, crls, PeerRole::Server).map(|_| ());
    assert_eq!(
        client.is_ok(),
        server.is_ok(),
        "client {client:?} / server {server:?}"
    );
    client
}

/// Asserts `result` is an error matching `pattern` (with an optional
/// guard), showing the actual error otherwise.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)? $(, $($ctx:tt)+)?) => {{
        let ctx = String::new() $(+ &format!($($ctx)+))?;
        match $result {
            Err(e) => assert!(
                matches!(&e, $pattern $(if $guard)?),
                "{ctx}: expected {}, got {e:?}",
                stringify!($pattern)
            ),
            Ok(_) => panic!("{ctx}: expected {}, got Ok", stringify!($pattern)),
        }
    }};
}

/// What a table case expects.
#[derive(Clone, Copy)]
enum Expect {
    Ok,
    Err(&'static str, fn(&CaError) -> bool),
}

fn check_expect<T>(name: &str, result: Result<T, CaError>, expect: Expect) {
    match (result, expect) {
        (Ok(_), Expect::Ok) => {}
        (Err(e), Expect::Ok) => panic!("{name}: expected Ok, got {e:?}"),
        (Ok(_), Expect::Err(want, _)) => panic!("{name}: expected {want}, got Ok"),
        (Err(e), Expect::Err(want, matches)) => {
            assert!(matches(&e), "{name}: expected {want}, got {e:?}")
        }
    }
}

const KEY_TYPES: [(KeyType, &SignatureAlgorithm); 3] = [
    (KeyType::P256, &rcgen::PKCS_ECDSA_P256_SHA256),
    (KeyType::P384, &rcgen::PKCS_ECDSA_P384_SHA384),
    (KeyType::Ed25519, &rcgen::PKCS_ED25519),
];

// --- An organisation's PKI, built with rcgen --------------------------------

/// A CA of an organisation's PKI (no SPIFFE involved unless asked).
struct OrgCa {
    der: CertificateDer<'static>,
    pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// CA parameters as an organisation would set them: valid from yesterday
/// for 30 days, keyCertSign + cRLSign, no SAN.
fn org_ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = OffsetDateTime::now_utc() + time::Duration::days(30);
    p
}

fn spiffe_uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

fn org_root_with(params: CertificateParams, alg: &'static SignatureAlgorithm) -> OrgCa {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = params.self_signed(&key).unwrap();
    OrgCa {
        der: cert.der().clone(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        issuer: Issuer::new(params, key),
    }
}

fn org_root() -> OrgCa {
    org_root_with(
        org_ca_params("Example Org Root CA"),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    )
}

fn org_sign_with(
    parent: &OrgCa,
    mut params: CertificateParams,
    alg: &'static SignatureAlgorithm,
) -> OrgCa {
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = params.signed_by(&key, &parent.issuer).unwrap();
    OrgCa {
        der: cert.der().clone(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        issuer: Issuer::new(params, key),
    }
}

/// An intermediate for SPIFFE issued by the organisation's root, with
/// `customize` applied to its parameters.
fn org_intermediate(parent: &OrgCa, customize: impl FnOnce(&mut CertificateParams)) -> OrgCa {
    let mut params = org_ca_params("Example Org SPIFFE intermediate");
    customize(&mut params);
    org_sign_with(parent, params, &rcgen::PKCS_ECDSA_P256_SHA256)
}

fn load_opts(td: Option<TrustDomain>, roots: &OrgCa) -> LoadOptions {
    LoadOptions {
        trust_domain: td,
        roots_pem: Some(roots.pem.clone().into_bytes()),
    }
}

/// Loads `int` (issued by `root`) as the production CA would.
fn load_org(int: &OrgCa, root: &OrgCa) -> CertificateAuthority {
    CertificateAuthority::from_pem(
        int.pem.as_bytes(),
        int.key_pem.as_bytes(),
        &load_opts(Some(td()), root),
    )
    .unwrap()
}

/// A DER length (short or long form).
fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// A critical nameConstraints extension permitting one URI host, which rcgen
/// cannot express (its `GeneralSubtree` has no URI variant).
fn uri_name_constraints(host: &str) -> CustomExtension {
    let general_name = der_tlv(0x86, host.as_bytes()); // [6] IA5String
    let subtree = der_tlv(0x30, &general_name); // GeneralSubtree
    let permitted = der_tlv(0xa0, &subtree); // [0] GeneralSubtrees
    let content = der_tlv(0x30, &permitted); // NameConstraints
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], content);
    ext.set_criticality(true);
    ext
}

// ---------------------------------------------------------------------------
// 1. Issued leaves
// ---------------------------------------------------------------------------

/// The URI SANs of `cert`; Err when it has no SAN extension or it does not
/// parse.
fn uri_sans<'a>(cert: &X509Certificate<'a>) -> Result<Vec<&'a str>, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
        .ok_or("no SAN")?;
    Ok(san.value.general_names.iter().filter_map(uri_of).collect())
}

fn uri_of<'a>(name: &GeneralName<'a>) -> Option<&'a str> {
    if let GeneralName::URI(uri) = name {
        Some(uri)
    } else {
        None
    }
}

type LeafCheck = (&'static str, fn(&X509Certificate<'_>) -> Result<(), String>);

/// The X509-SVID shape of a default leaf, each property a named check.
const DEFAULT_LEAF_CHECKS: &[LeafCheck] = &[
    ("version-is-v3", |c| {
        (c.version() == x509_parser::x509::X509Version::V3)
            .then_some(())
            .ok_or(format!("{:?}", c.version()))
    }),
    ("basic-constraints-present-ca-false", |c| {
        match c.basic_constraints().map_err(|e| e.to_string())? {
            Some(bc) if !bc.value.ca && bc.value.path_len_constraint.is_none() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }),
    ("key-usage-digital-signature-only-critical", |c| {
        match c.key_usage().map_err(|e| e.to_string())? {
            Some(ku) if ku.critical && ku.value.flags == 1 && ku.value.digital_signature() => {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    }),
    ("eku-server-auth-and-client-auth-only", |c| {
        match c.extended_key_usage().map_err(|e| e.to_string())? {
            Some(eku)
                if eku.value.server_auth
                    && eku.value.client_auth
                    && !eku.value.any
                    && !eku.value.code_signing
                    && !eku.value.email_protection
                    && !eku.value.time_stamping
                    && !eku.value.ocsp_signing
                    && eku.value.other.is_empty() =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    }),
    ("exactly-one-uri-san-equal-to-the-request", |c| {
        let uris = uri_sans(c)?;
        (uris == [WEB]).then_some(()).ok_or(format!("{uris:?}"))
    }),
    ("no-other-san-by-default", |c| {
        let san = c
            .subject_alternative_name()
            .map_err(|e| e.to_string())?
            .ok_or("no SAN")?;
        (san.value.general_names.len() == 1)
            .then_some(())
            .ok_or(format!("{:?}", san.value.general_names))
    }),
    ("empty-subject-by-default", |c| {
        (c.subject().iter().count() == 0)
            .then_some(())
            .ok_or(c.subject().to_string())
    }),
    ("san-critical-with-empty-subject", |c| {
        let san = c
            .subject_alternative_name()
            .map_err(|e| e.to_string())?
            .ok_or("no SAN")?;
        san.critical.then_some(()).ok_or("not critical".into())
    }),
    ("serial-16-bytes-positive", |c| {
        let s = c.raw_serial();
        (s.len() == 16 && s[0] & 0x80 == 0 && s[0] != 0)
            .then_some(())
            .ok_or(format!("{s:02x?}"))
    }),
    ("authority-key-identifier-present", |c| {
        c.extensions()
            .iter()
            .any(|e| {
                matches!(
                    e.parsed_extension(),
                    ParsedExtension::AuthorityKeyIdentifier(_)
                )
            })
            .then_some(())
            .ok_or("no AKI".into())
    }),
    ("no-name-constraints", |c| match c.name_constraints() {
        Ok(None) => Ok(()),
        other => Err(format!("{other:?}")),
    }),
];

#[test]
fn default_leaf_has_the_x509_svid_shape() {
    let root = dev_root();
    let inter = root.intermediate(&CaOptions::default()).unwrap();
    for (ca_name, ca) in [("root", &root), ("intermediate", &inter)] {
        let svid = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
        assert_eq!(svid.spiffe_id().as_str(), WEB);
        let cert = parse(svid.leaf());
        let failures: Vec<String> = DEFAULT_LEAF_CHECKS
            .iter()
            .filter_map(|(name, check)| check(&cert).err().map(|e| format!("{name}: {e}")))
            .collect();
        assert!(failures.is_empty(), "{ca_name}: {failures:#?}");
    }
}

#[test]
fn leaf_carries_the_dns_names_and_common_name_asked_for() {
    struct Case {
        name: &'static str,
        dns: &'static [&'static str],
        cn: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "one-dns-name",
            dns: &["web.example.org"],
            cn: None,
        },
        Case {
            name: "two-dns-names",
            dns: &["web.example.org", "web.internal"],
            cn: None,
        },
        Case {
            name: "common-name",
            dns: &[],
            cn: Some("web"),
        },
        Case {
            name: "dns-and-common-name",
            dns: &["web.example.org"],
            cn: Some("web.example.org"),
        },
    ];
    let ca = dev_root();
    for case in cases {
        let mut req = SvidRequest::new(id(WEB));
        for d in case.dns {
            req = req.dns_name(*d);
        }
        if let Some(cn) = case.cn {
            req = req.common_name(cn);
        }
        let svid = ca.issue(&req).unwrap();
        let cert = parse(svid.leaf());
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let uris = uri_sans(&cert).unwrap();
        let dns = dns_names(&cert);
        assert_eq!(uris, [WEB], "{}", case.name);
        assert_eq!(dns, case.dns, "{}", case.name);
        let cns: Vec<&str> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            cns,
            case.cn.into_iter().collect::<Vec<_>>(),
            "{}",
            case.name
        );
        if case.cn.is_none() {
            assert!(san.critical, "{}: SAN not critical", case.name);
        }
        verify_both(svid.chain(), &bundles(&ca), &CrlSet::new())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
}

#[test]
fn serials_differ_across_issuances_for_one_request() {
    let ca = dev_root();
    let req = SvidRequest::new(id(WEB));
    let mut serials = HashSet::new();
    for _ in 0..100 {
        let svid = ca.issue(&req).unwrap();
        let serial = parse(svid.leaf()).raw_serial().to_vec();
        assert_eq!(serial.len(), 16, "{serial:02x?}");
        assert!(serial[0] & 0x80 == 0, "negative serial {serial:02x?}");
        assert!(serials.insert(serial), "serial repeated");
    }
}

#[test]
fn validity_is_backdated_and_never_outlives_the_ca() {
    struct Case {
        name: &'static str,
        ca: CertificateAuthority,
        ttl: Option<Duration>,
        /// Whether the leaf's not_after must equal the CA's.
        clamped: bool,
    }
    let org = org_root();
    // An organisation intermediate valid only from 10 s ago: the leaf's
    // backdating must stop at the CA's not_before.
    let recent = org_intermediate(&org, |p| {
        p.not_before = OffsetDateTime::now_utc() - time::Duration::seconds(10);
        p.subject_alt_names = vec![spiffe_uri("spiffe://example.org")];
    });
    let recent_ca = load_org(&recent, &org);
    let recent_cluster = recent_ca.intermediate(&CaOptions::default()).unwrap();
    let cases = [
        Case {
            name: "default-ttl-is-one-hour",
            ca: dev_root(),
            ttl: None,
            clamped: false,
        },
        Case {
            name: "explicit-ttl",
            ca: dev_root(),
            ttl: Some(Duration::from_secs(600)),
            clamped: false,
        },
        Case {
            name: "ttl-clamped-to-a-short-lived-ca",
            ca: ca_with(KeyType::P256, Duration::from_secs(30 * 60)),
            ttl: None,
            clamped: true,
        },
        Case {
            name: "ttl-clamped-to-a-short-lived-intermediate",
            ca: dev_root()
                .intermediate(&CaOptions {
                    ttl: Duration::from_secs(20 * 60),
                    ..CaOptions::default()
                })
                .unwrap(),
            ttl: Some(Duration::from_secs(3600)),
            clamped: true,
        },
        Case {
            name: "backdating-stops-at-a-recent-ca-not-before",
            ca: recent_ca,
            ttl: None,
            clamped: false,
        },
        Case {
            name: "backdating-stops-at-a-recent-cluster-ca-not-before",
            ca: recent_cluster,
            ttl: None,
            clamped: false,
        },
    ];
    for case in cases {
        let ca_cert = parse(case.ca.certificate());
        let ca_nb = ca_cert.validity().not_before.timestamp();
        let ca_na = ca_cert.validity().not_after.timestamp();
        assert_eq!(ca_na, unix(case.ca.not_after()), "{}", case.name);
        let ttl = case.ttl.unwrap_or(DEFAULT_SVID_TTL);
        let mut req = SvidRequest::new(id(WEB));
        if let Some(ttl) = case.ttl {
            req = req.ttl(ttl);
        }
        let now = unix(SystemTime::now());
        let svid = case.ca.issue(&req).unwrap();
        let leaf = parse(svid.leaf());
        let nb = leaf.validity().not_before.timestamp();
        let na = leaf.validity().not_after.timestamp();
        assert!(
            nb >= ca_nb,
            "{}: not_before {nb} before the CA's {ca_nb}",
            case.name
        );
        assert!(nb <= now, "{}: not_before {nb} in the future", case.name);
        assert!(
            nb <= now - 4 * 60 || nb == ca_nb,
            "{}: not_before {nb} not backdated (now {now}, CA {ca_nb})",
            case.name
        );
        assert!(
            nb >= now - BACKDATE.as_secs() as i64 - 5,
            "{}: backdated too far",
            case.name
        );
        assert!(na <= ca_na, "{}: outlives the CA", case.name);
        if case.clamped {
            assert_eq!(na, ca_na, "{}: not clamped to the CA", case.name);
        } else {
            let want = now + ttl.as_secs() as i64;
            assert!(
                (na - want).abs() <= 5,
                "{}: not_after {na}, want {want} +-5s",
                case.name
            );
        }
        assert_eq!(unix(svid.not_after()), na, "{}", case.name);
        verify_both(svid.chain(), &bundles(&case.ca), &CrlSet::new())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
}

#[test]
fn chain_is_the_leaf_then_the_intermediates_without_the_root() {
    let root = dev_root();
    let int1 = root.intermediate(&CaOptions::default()).unwrap();
    let int2 = int1.intermediate(&CaOptions::default()).unwrap();
    let org = org_root();
    let org_int = org_intermediate(&org, |_| {});
    // The org intermediate loaded with the root in its chain file.
    let with_root = CertificateAuthority::from_pem(
        format!("{}{}", org_int.pem, org.pem).as_bytes(),
        org_int.key_pem.as_bytes(),
        &LoadOptions {
            trust_domain: Some(td()),
            roots_pem: None,
        },
    )
    .unwrap();
    let org_loaded = load_org(&org_int, &org);
    let cluster = org_loaded.intermediate(&CaOptions::default()).unwrap();
    let cases: [(&str, &CertificateAuthority, Vec<&CertificateDer<'static>>); 6] = [
        ("self-signed-root", &root, vec![]),
        ("one-intermediate", &int1, vec![int1.certificate()]),
        (
            "two-intermediates",
            &int2,
            vec![int2.certificate(), int1.certificate()],
        ),
        ("org-intermediate", &org_loaded, vec![&org_int.der]),
        (
            "org-intermediate-root-in-chain-file",
            &with_root,
            vec![&org_int.der],
        ),
        (
            "cluster-under-org-intermediate",
            &cluster,
            vec![cluster.certificate(), &org_int.der],
        ),
    ];
    for (name, ca, intermediates) in cases {
        let svid = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
        let chain = svid.chain();
        assert_eq!(chain.len(), 1 + intermediates.len(), "{name}");
        assert_eq!(parse(&chain[0]).subject().iter().count(), 0, "{name}");
        for (got, want) in chain[1..].iter().zip(&intermediates) {
            assert_eq!(got, *want, "{name}");
        }
        for anchor in ca.trust_anchors() {
            assert!(!chain.contains(anchor), "{name}: the chain holds a root");
        }
        verify_both(chain, &bundles(ca), &CrlSet::new()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn every_key_type_issues_and_verifies_as_client_and_server() {
    for (ca_key, _) in KEY_TYPES {
        let root = ca_with(ca_key, Duration::from_secs(24 * 3600));
        for (int_key, _) in KEY_TYPES {
            let inter = root
                .intermediate(&CaOptions {
                    key_type: int_key,
                    ..CaOptions::default()
                })
                .unwrap();
            for (leaf_key, _) in KEY_TYPES {
                for (shape, ca) in [("root", &root), ("intermediate", &inter)] {
                    let name = format!("ca-{ca_key}-int-{int_key}-leaf-{leaf_key}-{shape}");
                    let svid = ca
                        .issue(&SvidRequest::new(id(WEB)).key_type(leaf_key))
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    for role in [PeerRole::Client, PeerRole::Server] {
                        let peer = verify(
                            svid.chain(),
                            &bundles(ca),
                            SystemTime::now(),
                            &CrlSet::new(),
                            role,
                        )
                        .unwrap_or_else(|e| panic!("{name} {role:?}: {e}"));
                        assert_eq!(peer.spiffe_id().as_str(), WEB, "{name}");
                    }
                }
            }
        }
    }
}

#[test]
fn ca_certificates_are_signing_certificates_without_name_constraints() {
    let root = dev_root();
    let inter = root.intermediate(&CaOptions::default()).unwrap();
    let named = CertificateAuthority::self_signed_for_development(
        td(),
        &CaOptions {
            common_name: Some("Custom Root".into()),
            ..CaOptions::default()
        },
    )
    .unwrap();
    for (name, ca) in [("root", &root), ("intermediate", &inter), ("named", &named)] {
        let cert = parse(ca.certificate());
        assert!(
            matches!(cert.name_constraints(), Ok(None)),
            "{name}: has name constraints"
        );
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.value.ca && bc.critical, "{name}: {bc:?}");
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(
            ku.value.key_cert_sign() && ku.value.crl_sign() && !ku.value.digital_signature(),
            "{name}: {ku:?}"
        );
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let uris: Vec<_> = san.value.general_names.iter().collect();
        assert!(
            matches!(uris.as_slice(), [GeneralName::URI("spiffe://example.org")]),
            "{name}: {uris:?}"
        );
        assert_eq!(ca.trust_domain(), &td(), "{name}");
        assert_eq!(ca.chain()[0], *ca.certificate(), "{name}");
    }
    let cn: Vec<_> = parse(named.certificate())
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cn, ["Custom Root"]);
    // The intermediate's chain holds its issuer; the anchors are the root.
    assert_eq!(inter.chain().len(), 2);
    assert_eq!(inter.chain()[1], *root.certificate());
    assert_eq!(inter.trust_anchors(), root.trust_anchors());
    assert_eq!(
        root.trust_anchors(),
        std::slice::from_ref(root.certificate())
    );
    // The intermediate's validity stays within the root's.
    let (r, i) = (parse(root.certificate()), parse(inter.certificate()));
    assert!(i.validity().not_before.timestamp() >= r.validity().not_before.timestamp());
    assert!(i.validity().not_after.timestamp() <= r.validity().not_after.timestamp());
}

#[test]
fn intermediate_is_clamped_to_its_parent() {
    let root = ca_with(KeyType::P256, Duration::from_secs(3600));
    let inter = root
        .intermediate(&CaOptions {
            ttl: Duration::from_secs(10 * 24 * 3600),
            ..CaOptions::default()
        })
        .unwrap();
    let clamped = unix(inter.not_after());
    assert_eq!(clamped, unix(root.not_after()), "clamped to the parent");
}

#[test]
fn bundle_holds_the_anchors_with_sequence_and_refresh_hint() {
    let root = dev_root();
    let inter = root.intermediate(&CaOptions::default()).unwrap();
    for ca in [&root, &inter] {
        let bundle = ca.bundle().unwrap();
        assert_eq!(bundle.trust_domain(), &td());
        assert_eq!(bundle.authorities(), root.trust_anchors());
        assert_eq!(bundle.sequence(), Some(1));
        assert_eq!(bundle.refresh_hint(), Some(mtls_ca::BUNDLE_REFRESH_HINT));
    }
}

// ---------------------------------------------------------------------------
// 2. Issuance policy
// ---------------------------------------------------------------------------

#[test]
fn policy_decides_what_may_be_issued() {
    fn prefixes() -> IssuancePolicy {
        IssuancePolicy::new(td())
            .allow_prefix(id("spiffe://example.org/ns/a"))
            .allow_prefix(id("spiffe://example.org/ns/b"))
    }
    fn any() -> IssuancePolicy {
        IssuancePolicy::new(td())
    }
    fn short_max() -> IssuancePolicy {
        IssuancePolicy::new(td()).max_ttl(Duration::from_secs(600))
    }
    struct Case {
        name: &'static str,
        policy: fn() -> IssuancePolicy,
        id: &'static str,
        ttl: Duration,
        dns: &'static [&'static str],
        expect: Expect,
    }
    const HOUR: Duration = Duration::from_secs(3600);
    const OK: Expect = Expect::Ok;
    let wrong_td = Expect::Err("WrongTrustDomain", |e| {
        matches!(e, CaError::WrongTrustDomain { .. })
    });
    let denied = Expect::Err("PolicyDenied", |e| {
        matches!(e, CaError::PolicyDenied { .. })
    });
    let bad_dns = Expect::Err("InvalidDnsName", |e| {
        matches!(e, CaError::InvalidDnsName(_))
    });
    type Row<T> = (&'static str, fn() -> IssuancePolicy, T, Expect);
    // SPIFFE IDs, issued for an hour without DNS names.
    let ids: [Row<&'static str>; 10] = [
        (
            "ok-any-path-by-default",
            any,
            "spiffe://example.org/any/path",
            OK,
        ),
        (
            "wrong-trust-domain",
            any,
            "spiffe://other.org/web",
            wrong_td,
        ),
        (
            "wrong-trust-domain-sharing-a-suffix",
            any,
            "spiffe://sub.example.org/web",
            wrong_td,
        ),
        (
            "trust-domain-id-as-leaf",
            any,
            "spiffe://example.org",
            Expect::Err("TrustDomainIdAsLeaf", |e| {
                matches!(e, CaError::TrustDomainIdAsLeaf(_))
            }),
        ),
        (
            "prefix-allows-itself",
            prefixes,
            "spiffe://example.org/ns/a",
            OK,
        ),
        (
            "prefix-allows-a-child",
            prefixes,
            "spiffe://example.org/ns/a/x",
            OK,
        ),
        (
            "second-prefix-allows",
            prefixes,
            "spiffe://example.org/ns/b/y/z",
            OK,
        ),
        (
            "prefix-refuses-a-longer-segment",
            prefixes,
            "spiffe://example.org/ns/ab",
            denied,
        ),
        (
            "prefix-refuses-the-parent",
            prefixes,
            "spiffe://example.org/ns",
            denied,
        ),
        (
            "prefix-refuses-elsewhere",
            prefixes,
            "spiffe://example.org/web",
            denied,
        ),
    ];
    let ids = ids.into_iter().chain([(
        "prefix-still-checks-the-trust-domain",
        prefixes as fn() -> IssuancePolicy,
        "spiffe://other.org/ns/a",
        wrong_td,
    )]);
    // Lifetimes of WEB.
    let ttls: [Row<Duration>; 5] = [
        (
            "zero-ttl",
            any,
            Duration::ZERO,
            Expect::Err("ZeroTtl", |e| matches!(e, CaError::ZeroTtl)),
        ),
        ("ttl-at-the-default-max", any, DEFAULT_MAX_TTL, OK),
        (
            "ttl-over-the-default-max",
            any,
            DEFAULT_MAX_TTL + Duration::from_secs(1),
            denied,
        ),
        (
            "ttl-over-a-custom-max",
            short_max,
            Duration::from_secs(601),
            denied,
        ),
        (
            "ttl-at-a-custom-max",
            short_max,
            Duration::from_secs(600),
            OK,
        ),
    ];
    // DNS names of WEB, by the default policy.
    const LONG_LABEL: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org";
    let dns: [(&'static str, &'static [&'static str], Expect); 8] = [
        (
            "valid-dns-names",
            &[
                "web.example.org",
                "WEB.Example.ORG",
                "localhost",
                "a-b.c_d.io",
            ],
            OK,
        ),
        (
            "invalid-dns-with-spaces",
            &["not a name"],
            Expect::Err(
                "InvalidDnsName",
                |e| matches!(e, CaError::InvalidDnsName(n) if n == "not a name"),
            ),
        ),
        ("invalid-dns-wildcard", &["*.x"], bad_dns),
        ("invalid-dns-empty-label", &["a..b"], bad_dns),
        ("invalid-dns-empty", &[""], bad_dns),
        ("invalid-dns-ip-address", &["127.0.0.1"], bad_dns),
        (
            "invalid-dns-after-a-valid-one",
            &["ok.example.org", "bad_\u{e9}.example.org"],
            bad_dns,
        ),
        ("invalid-dns-too-long-label", &[LONG_LABEL], bad_dns),
    ];
    let case = |name, policy, id, ttl, dns, expect| Case {
        name,
        policy,
        id,
        ttl,
        dns,
        expect,
    };
    let cases = (ids.map(|(name, policy, id, expect)| case(name, policy, id, HOUR, &[], expect)))
        .chain(ttls.map(|(name, policy, ttl, expect)| case(name, policy, WEB, ttl, &[], expect)))
        .chain(dns.map(|(name, dns, expect)| case(name, any, WEB, HOUR, dns, expect)));
    let mut ca = dev_root();
    for case in cases {
        ca.set_policy((case.policy)()).unwrap();
        let mut req = SvidRequest::new(id(case.id)).ttl(case.ttl);
        for d in case.dns {
            req = req.dns_name(*d);
        }
        let result = ca.issue(&req);
        if let Ok(svid) = &result {
            verify_both(svid.chain(), &bundles(&ca), &CrlSet::new())
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        }
        check_expect(case.name, result, case.expect);
        // The policy alone agrees (DNS names are checked at issuance).
        if case.dns.is_empty() {
            check_expect(
                case.name,
                ca.policy().check(&id(case.id), case.ttl),
                case.expect,
            );
        }
    }
}

#[test]
fn set_policy_refuses_another_trust_domain() {
    let mut ca = dev_root();
    let other = IssuancePolicy::new(TrustDomain::new("other.org").unwrap());
    assert_err!(ca.set_policy(other), CaError::PolicyTrustDomain { .. });
    // The old policy still applies.
    assert_eq!(ca.policy().trust_domain(), &td());
    ca.issue(&SvidRequest::new(id(WEB))).unwrap();
}

#[test]
fn intermediates_inherit_the_policy() {
    let mut root = dev_root();
    root.set_policy(IssuancePolicy::new(td()).allow_prefix(id("spiffe://example.org/ns/a")))
        .unwrap();
    let inter = root.intermediate(&CaOptions::default()).unwrap();
    inter
        .issue(&SvidRequest::new(id("spiffe://example.org/ns/a/x")))
        .unwrap();
    assert_err!(
        inter.issue(&SvidRequest::new(id("spiffe://example.org/ns/ab"))),
        CaError::PolicyDenied { .. }
    );
}

// ---------------------------------------------------------------------------
// 3. CSR signing
// ---------------------------------------------------------------------------

/// A CSR signed by `key`, with rcgen's default subject ("rcgen self signed
/// cert") unless `customize` changes it.
fn make_csr(key: &KeyPair, customize: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
    let mut params = CertificateParams::default();
    customize(&mut params);
    params.serialize_request(key).unwrap().der().to_vec()
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

#[test]
fn csr_is_signed_with_only_its_public_key_taken() {
    let root = dev_root();
    let inter = root.intermediate(&CaOptions::default()).unwrap();
    for (key_type, alg) in KEY_TYPES {
        for (shape, ca) in [("root", &root), ("intermediate", &inter)] {
            let name = format!("{key_type}-{shape}");
            let key = KeyPair::generate_for(alg).unwrap();
            let csr = make_csr(&key, |p| {
                p.distinguished_name = dn("evil-subject");
                p.distinguished_name.push(DnType::OrganizationName, "Evil");
            });
            // DER and PEM alike.
            let pem = mtls_core::to_pem("CERTIFICATE REQUEST", &csr);
            for (encoding, input) in [("der", csr.clone()), ("pem", pem.into_bytes())] {
                let chain = ca
                    .sign_csr(&input, &SvidRequest::new(id(WEB)))
                    .unwrap_or_else(|e| panic!("{name} {encoding}: {e}"));
                assert_eq!(
                    chain.len(),
                    ca.chain().len(),
                    "{name}: leaf + intermediates"
                );
                let leaf = parse(&chain[0]);
                assert_eq!(
                    leaf.tbs_certificate.subject_pki.raw,
                    key.subject_public_key_info().as_slice(),
                    "{name}: not the CSR's key"
                );
                assert_eq!(
                    leaf.subject().iter().count(),
                    0,
                    "{name}: CSR subject copied: {}",
                    leaf.subject()
                );
                let failures: Vec<String> = DEFAULT_LEAF_CHECKS
                    .iter()
                    .filter_map(|(n, check)| check(&leaf).err().map(|e| format!("{n}: {e}")))
                    .collect();
                assert!(failures.is_empty(), "{name}: {failures:#?}");
                verify_both(&chain, &bundles(ca), &CrlSet::new())
                    .unwrap_or_else(|e| panic!("{name} {encoding}: {e}"));
            }
        }
    }
}

#[test]
fn csr_takes_lifetime_and_names_from_the_request() {
    let ca = dev_root();
    let key = p256();
    let csr = make_csr(&key, |p| {
        p.subject_alt_names = vec![
            spiffe_uri(WEB),
            SanType::DnsName("WEB.example.org".try_into().unwrap()),
        ];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    });
    let req = SvidRequest::new(id(WEB))
        .dns_name("web.example.org")
        .dns_name("web.internal")
        .common_name("web")
        .ttl(Duration::from_secs(300));
    let now = unix(SystemTime::now());
    let chain = ca.sign_csr(&csr, &req).unwrap();
    let leaf = parse(&chain[0]);
    let dns = dns_names(&leaf);
    assert_eq!(dns, ["web.example.org", "web.internal"]);
    let na = leaf.validity().not_after.timestamp();
    assert!((na - (now + 300)).abs() <= 5, "not_after {na}");
    let cn: Vec<_> = leaf
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(cn, ["web"]);
}

#[test]
fn csr_defects_are_refused() {
    struct Case {
        name: &'static str,
        csr: Vec<u8>,
        request: SvidRequest,
        expect: Expect,
    }
    let key = p256();
    let web = || SvidRequest::new(id(WEB));
    let csr_with = |customize: fn(&mut CertificateParams)| make_csr(&key, customize);
    let csr_sans = |sans: Vec<SanType>| make_csr(&key, |p| p.subject_alt_names = sans);
    let dns = |name: &str| SanType::DnsName(name.try_into().unwrap());
    let valid = csr_with(|_| {});
    let mut tampered = valid.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    let mut trailing = valid.clone();
    trailing.extend_from_slice(&[0, 0]);
    let invalid_csr = Expect::Err("InvalidCsr", |e| matches!(e, CaError::InvalidCsr { .. }));
    let mismatch = Expect::Err("CsrMismatch", |e| matches!(e, CaError::CsrMismatch { .. }));
    let cases = vec![
        Case {
            name: "ok-no-extensions",
            csr: valid.clone(),
            request: web(),
            expect: Expect::Ok,
        },
        Case {
            name: "empty",
            csr: vec![],
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "garbage-bytes",
            csr: b"\x30\x03\x01\x02\x03 definitely not a CSR".to_vec(),
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "garbage-text",
            csr: b"hello, CA".to_vec(),
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "garbage-pem",
            csr: b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n"
                .to_vec(),
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "pem-of-a-certificate-not-a-csr",
            csr: mtls_core::to_pem("CERTIFICATE", dev_root().certificate()).into_bytes(),
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "certificate-der-not-a-csr",
            csr: dev_root().certificate().to_vec(),
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "tampered-signature",
            csr: tampered,
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "trailing-data-after-der",
            csr: trailing,
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "truncated-der",
            csr: valid[..valid.len() - 10].to_vec(),
            request: web(),
            expect: invalid_csr,
        },
        Case {
            name: "oversized",
            csr: vec![b'-'; MAX_CSR_BYTES + 1],
            request: web(),
            expect: Expect::Err("CsrTooLarge", |e| {
                matches!(e, CaError::CsrTooLarge { len, max }
                    if *len == MAX_CSR_BYTES + 1 && *max == MAX_CSR_BYTES)
            }),
        },
        Case {
            name: "uri-matching-the-request-is-ok",
            csr: csr_sans(vec![spiffe_uri(WEB)]),
            request: web(),
            expect: Expect::Ok,
        },
        Case {
            name: "another-uri-san",
            csr: csr_sans(vec![spiffe_uri("spiffe://example.org/admin")]),
            request: web(),
            expect: mismatch,
        },
        Case {
            name: "another-trust-domain-uri",
            csr: csr_sans(vec![spiffe_uri("spiffe://other.org/web")]),
            request: web(),
            expect: mismatch,
        },
        Case {
            name: "non-spiffe-uri",
            csr: csr_sans(vec![spiffe_uri("https://example.org/web")]),
            request: web(),
            expect: mismatch,
        },
        Case {
            name: "second-uri",
            csr: csr_sans(vec![
                spiffe_uri(WEB),
                spiffe_uri("spiffe://example.org/admin"),
            ]),
            request: web(),
            expect: mismatch,
        },
        Case {
            name: "dns-not-granted",
            csr: csr_sans(vec![dns("evil.example.org")]),
            request: web().dns_name("web.example.org"),
            expect: mismatch,
        },
        Case {
            name: "dns-granted-is-ok",
            csr: csr_sans(vec![spiffe_uri(WEB), dns("web.example.org")]),
            request: web().dns_name("web.example.org"),
            expect: Expect::Ok,
        },
        Case {
            name: "ip-san",
            csr: csr_sans(vec![SanType::IpAddress("10.0.0.1".parse().unwrap())]),
            request: web(),
            expect: mismatch,
        },
        Case {
            name: "email-san",
            csr: csr_sans(vec![SanType::Rfc822Name(
                "a@example.org".try_into().unwrap(),
            )]),
            request: web(),
            expect: mismatch,
        },
        Case {
            name: "basic-constraints-ca-true",
            csr: csr_with(|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)),
            request: web(),
            expect: mismatch,
        },
        Case {
            name: "basic-constraints-ca-false-is-ok",
            csr: csr_with(|p| p.is_ca = IsCa::ExplicitNoCa),
            request: web(),
            expect: Expect::Ok,
        },
        Case {
            name: "policy-wrong-trust-domain",
            csr: valid.clone(),
            request: SvidRequest::new(id("spiffe://other.org/web")),
            expect: Expect::Err("WrongTrustDomain", |e| {
                matches!(e, CaError::WrongTrustDomain { .. })
            }),
        },
        Case {
            name: "policy-trust-domain-id",
            csr: valid.clone(),
            request: SvidRequest::new(id("spiffe://example.org")),
            expect: Expect::Err("TrustDomainIdAsLeaf", |e| {
                matches!(e, CaError::TrustDomainIdAsLeaf(_))
            }),
        },
        Case {
            name: "policy-ttl-over-max",
            csr: valid.clone(),
            request: web().ttl(DEFAULT_MAX_TTL * 2),
            expect: Expect::Err("PolicyDenied", |e| {
                matches!(e, CaError::PolicyDenied { .. })
            }),
        },
        Case {
            name: "policy-zero-ttl",
            csr: valid.clone(),
            request: web().ttl(Duration::ZERO),
            expect: Expect::Err("ZeroTtl", |e| matches!(e, CaError::ZeroTtl)),
        },
        Case {
            name: "invalid-dns-in-request",
            csr: valid.clone(),
            request: web().dns_name("a..b"),
            expect: Expect::Err("InvalidDnsName", |e| {
                matches!(e, CaError::InvalidDnsName(_))
            }),
        },
    ];
    let ca = dev_root();
    for case in cases {
        let result = ca.sign_csr(&case.csr, &case.request);
        if let Ok(chain) = &result {
            verify_both(chain, &bundles(&ca), &CrlSet::new())
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(
                parse(&chain[0]).tbs_certificate.subject_pki.raw,
                key.subject_public_key_info().as_slice(),
                "{}",
                case.name
            );
        }
        check_expect(case.name, result, case.expect);
    }
}

#[test]
fn csr_is_refused_by_a_prefix_policy() {
    let mut ca = dev_root();
    ca.set_policy(IssuancePolicy::new(td()).allow_prefix(id("spiffe://example.org/ns/a")))
        .unwrap();
    let key = p256();
    let csr = make_csr(&key, |_| {});
    ca.sign_csr(&csr, &SvidRequest::new(id("spiffe://example.org/ns/a/x")))
        .unwrap();
    assert_err!(
        ca.sign_csr(&csr, &SvidRequest::new(id("spiffe://example.org/ns/ab"))),
        CaError::PolicyDenied { .. }
    );
}

// ---------------------------------------------------------------------------
// 4. Loading an organisation's CA
// ---------------------------------------------------------------------------

#[test]
fn org_intermediate_loads_and_its_leaves_verify_against_the_org_root() {
    let org = org_root();
    let org_bundle =
        BundleSet::from(mtls_core::X509Bundle::from_pem(td(), org.pem.as_bytes()).unwrap());
    struct Case {
        name: &'static str,
        int: OrgCa,
        /// The chain file: the intermediate, then maybe the root.
        with_root: bool,
        options: LoadOptions,
    }
    let with_san = |p: &mut CertificateParams| {
        p.subject_alt_names = vec![spiffe_uri("spiffe://example.org")];
    };
    let path_len_one = |p: &mut CertificateParams| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    };
    let dns_constrained = |p: &mut CertificateParams| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.org".into())],
            excluded_subtrees: vec![],
        });
    };
    let plain = || org_intermediate(&org, |_| {});
    let signed_with = |cn, alg| org_sign_with(&org, org_ca_params(cn), alg);
    let given = || load_opts(Some(td()), &org);
    let no_roots = LoadOptions {
        trust_domain: Some(td()),
        roots_pem: None,
    };
    let p384 = signed_with("P-384 intermediate", &rcgen::PKCS_ECDSA_P384_SHA384);
    let ed25519 = signed_with("Ed25519 intermediate", &rcgen::PKCS_ED25519);
    let case = |name, int, with_root, options| Case {
        name,
        int,
        with_root,
        options,
    };
    let san = || org_intermediate(&org, with_san);
    let no_td = load_opts(None, &org);
    let len1 = org_intermediate(&org, path_len_one);
    let dns_nc = org_intermediate(&org, dns_constrained);
    let cases = [
        case("no-spiffe-san-trust-domain-given", plain(), false, given()),
        case("spiffe-san-trust-domain-given", san(), false, given()),
        case("spiffe-san-trust-domain-from-the-san", san(), false, no_td),
        case("root-in-the-chain-file-and-roots", plain(), true, given()),
        case(
            "roots-default-to-the-last-certificate-of-the-chain",
            plain(),
            true,
            no_roots,
        ),
        case("path-length-one", len1, false, given()),
        case("dns-name-constraints-are-fine", dns_nc, false, given()),
        case("p384-key", p384, false, given()),
        case("ed25519-key", ed25519, false, given()),
    ];
    for case in cases {
        let chain_pem = if case.with_root {
            format!("{}{}", case.int.pem, org.pem)
        } else {
            case.int.pem.clone()
        };
        let ca = CertificateAuthority::from_pem(
            chain_pem.as_bytes(),
            case.int.key_pem.as_bytes(),
            &case.options,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(ca.trust_domain(), &td(), "{}", case.name);
        assert_eq!(ca.certificate(), &case.int.der, "{}", case.name);
        assert_eq!(
            ca.trust_anchors(),
            std::slice::from_ref(&org.der),
            "{}",
            case.name
        );
        let svid = ca
            .issue(&SvidRequest::new(id(WEB)).dns_name("web.example.org"))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(svid.chain().len(), 2, "{}", case.name);
        verify_both(svid.chain(), &org_bundle, &CrlSet::new())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // A per-cluster intermediate below it verifies against the same root.
        let cluster = ca
            .intermediate(&CaOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let svid = cluster.issue(&SvidRequest::new(id(WEB))).unwrap();
        assert_eq!(svid.chain().len(), 3, "{}", case.name);
        verify_both(svid.chain(), &org_bundle, &CrlSet::new())
            .unwrap_or_else(|e| panic!("{} cluster: {e}", case.name));
    }
}

#[test]
fn clusters_under_one_org_root_trust_each_other() {
    let org = org_root();
    let int_a = org_intermediate(&org, |_| {});
    let int_b = org_intermediate(&org, |_| {});
    let region_a = load_org(&int_a, &org);
    let region_b = load_org(&int_b, &org);
    let clusters = [
        ("a1", region_a.intermediate(&CaOptions::default()).unwrap()),
        ("a2", region_a.intermediate(&CaOptions::default()).unwrap()),
        (
            "b1",
            region_b
                .intermediate(&CaOptions {
                    key_type: KeyType::Ed25519,
                    ..CaOptions::default()
                })
                .unwrap(),
        ),
    ];
    for (issuer_name, issuer) in &clusters {
        let svid = issuer.issue(&SvidRequest::new(id(WEB))).unwrap();
        for (peer_name, peer) in &clusters {
            verify_both(svid.chain(), &bundles(peer), &CrlSet::new())
                .unwrap_or_else(|e| panic!("{issuer_name} leaf in {peer_name}'s bundle: {e}"));
        }
    }
    // Another organisation's root is another matter.
    // (A distinct name: with the same name webpki reports BadSignature.)
    let stranger_root = org_root_with(
        org_ca_params("Stranger Org Root CA"),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    );
    let stranger = load_org(&org_intermediate(&stranger_root, |_| {}), &stranger_root);
    let svid = clusters[0].1.issue(&SvidRequest::new(id(WEB))).unwrap();
    let stranger_bundles = bundles(&stranger);
    let result = verify_both(svid.chain(), &stranger_bundles, &CrlSet::new());
    assert_err!(
        result,
        VerifyError::UntrustedIssuer { .. },
        "a stranger's bundle"
    );
}

#[test]
fn loading_a_bad_ca_is_refused() {
    let org = org_root();
    let good = org_intermediate(&org, |_| {});
    let other = org_intermediate(&org, |_| {});
    let opts = || load_opts(Some(td()), &org);
    let not_a_ca = Expect::Err("NotACa", |e| matches!(e, CaError::NotACa { .. }));
    let leaf = dev_root().issue(&SvidRequest::new(id(WEB))).unwrap();
    let no_ca_leaf = org_intermediate(&org, |p| p.is_ca = IsCa::NoCa);
    let no_key_cert_sign = org_intermediate(&org, |p| {
        p.key_usages = vec![KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature]
    });
    let no_key_usage = org_intermediate(&org, |p| p.key_usages = vec![]);
    let uri_nc = org_intermediate(&org, |p| {
        p.custom_extensions = vec![uri_name_constraints("example.org")]
    });
    let uri_nc_above = {
        let mut params = org_ca_params("URI-constrained org CA");
        params.custom_extensions = vec![uri_name_constraints("example.org")];
        let constrained = org_sign_with(&org, params, &rcgen::PKCS_ECDSA_P256_SHA256);
        let below = org_intermediate(&constrained, |_| {});
        (constrained, below)
    };
    let other_td_san = org_intermediate(&org, |p| {
        p.subject_alt_names = vec![spiffe_uri("spiffe://other.org")]
    });
    let path_in_san = org_intermediate(&org, |p| {
        p.subject_alt_names = vec![spiffe_uri("spiffe://example.org/ca")]
    });
    let expired = org_intermediate(&org, |p| {
        p.not_before = OffsetDateTime::now_utc() - time::Duration::days(2);
        p.not_after = OffsetDateTime::now_utc() - time::Duration::days(1);
    });
    let not_yet_valid = org_intermediate(&org, |p| {
        p.not_before = OffsetDateTime::now_utc() + time::Duration::days(1);
        p.not_after = OffsetDateTime::now_utc() + time::Duration::days(2);
    });
    let leaf_path_len_zero = org_intermediate(&org, |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    });
    let cluster_ca = load_org(&good, &org)
        .intermediate(&CaOptions::default())
        .unwrap();
    let cluster_pem = pem_chain(&cluster_ca.chain()[..1]);
    let cluster_key = cluster_ca.private_key_pem().as_str().to_owned();
    let other_org = org_root();
    let ok = Expect::Ok;
    let mismatch = Expect::Err("KeyMismatch", |e| matches!(e, CaError::KeyMismatch));
    let no_cert = Expect::Err("NoCertificate", |e| {
        matches!(e, CaError::NoCertificate { .. })
    });
    let no_key = Expect::Err("NoPrivateKey", |e| {
        matches!(e, CaError::NoPrivateKey { .. })
    });
    let bad_pem = Expect::Err("Pem", |e| matches!(e, CaError::Pem { .. }));
    let is_expired = Expect::Err("CaExpired", |e| matches!(e, CaError::CaExpired { .. }));
    let too_early = Expect::Err("CaNotYetValid", |e| {
        matches!(e, CaError::CaNotYetValid { .. })
    });
    let unknown_td = Expect::Err("UnknownTrustDomain", |e| {
        matches!(e, CaError::UnknownTrustDomain)
    });
    // A CA of the org PKI, loaded with its own key, the trust domain and
    // the org root.
    let whole: [(&'static str, &OrgCa, Expect); 10] = [
        ("ok", &good, ok),
        ("no-basic-constraints", &no_ca_leaf, not_a_ca),
        ("ca-without-key-cert-sign", &no_key_cert_sign, not_a_ca),
        ("ca-without-key-usage", &no_key_usage, not_a_ca),
        ("uri-name-constraints", &uri_nc, not_a_ca),
        (
            "trust-domain-conflicting-with-the-spiffe-san",
            &other_td_san,
            not_a_ca,
        ),
        ("spiffe-id-with-a-path", &path_in_san, not_a_ca),
        (
            "path-length-zero-still-issues-leaves",
            &leaf_path_len_zero,
            ok,
        ),
        ("expired", &expired, is_expired),
        ("not-yet-valid", &not_yet_valid, too_early),
    ];
    // Name, chain PEM, key PEM, options, expected.
    type Row = (&'static str, String, String, LoadOptions, Expect);
    let (g, gk) = (|| good.pem.clone(), || good.key_pem.clone());
    let no_td = || load_opts(None, &org);
    let issuer_first = format!("{}{}", org.pem, good.pem);
    let (above, above_key) = (
        format!("{}{}", uri_nc_above.1.pem, uri_nc_above.0.pem),
        uri_nc_above.1.key_pem.clone(),
    );
    let (sp, sk) = (other_td_san.pem.clone(), other_td_san.key_pem.clone());
    let garbage_chain = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_owned();
    let garbage_key = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_owned();
    let not_a_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned();
    let garbage_roots = LoadOptions {
        trust_domain: Some(td()),
        roots_pem: Some(b"no roots here".to_vec()),
    };
    let no_roots = LoadOptions {
        trust_domain: Some(td()),
        roots_pem: None,
    };
    let unrelated_last = format!("{}{}", good.pem, other_org.pem);
    let wrong_roots = load_opts(Some(td()), &other_org);
    let rest: [Row; 18] = [
        (
            "key-of-another-certificate",
            g(),
            other.key_pem.clone(),
            opts(),
            mismatch,
        ),
        (
            "chain-with-the-issuer-first",
            issuer_first,
            gk(),
            opts(),
            mismatch,
        ),
        (
            "an-svid-leaf",
            leaf.chain_pem(),
            leaf.private_key_pem(),
            opts(),
            not_a_ca,
        ),
        (
            "uri-name-constraints-on-an-issuer-above",
            above,
            above_key,
            opts(),
            not_a_ca,
        ),
        (
            "trust-domain-from-a-san-of-another-domain-is-that-domain",
            sp,
            sk,
            no_td(),
            ok,
        ),
        (
            "no-trust-domain-and-no-spiffe-san",
            g(),
            gk(),
            no_td(),
            unknown_td,
        ),
        ("garbage-chain-pem", garbage_chain, gk(), opts(), bad_pem),
        ("chain-not-pem", "hello".into(), gk(), opts(), no_cert),
        ("empty-chain", String::new(), gk(), opts(), no_cert),
        ("chain-holding-only-a-key", gk(), gk(), opts(), no_cert),
        ("empty-key", g(), String::new(), opts(), no_key),
        ("key-file-holding-a-certificate", g(), g(), opts(), no_key),
        ("garbage-key-pem", g(), garbage_key, opts(), bad_pem),
        ("key-pem-not-a-key", g(), not_a_key, opts(), bad_pem),
        ("garbage-roots", g(), gk(), garbage_roots, no_cert),
        ("wrong-roots", g(), gk(), wrong_roots, not_a_ca),
        (
            "roots-default-to-an-unrelated-last-certificate",
            unrelated_last,
            gk(),
            no_roots,
            not_a_ca,
        ),
        (
            "cluster-chain-missing-the-org-intermediate",
            cluster_pem,
            cluster_key,
            opts(),
            not_a_ca,
        ),
    ];
    let whole = whole.map(|(name, ca, expect)| -> Row {
        (name, ca.pem.clone(), ca.key_pem.clone(), opts(), expect)
    });
    for (name, chain, key, options, expect) in whole.into_iter().chain(rest) {
        let result = CertificateAuthority::from_pem(chain.as_bytes(), key.as_bytes(), &options);
        check_expect(name, result, expect);
    }
}

#[test]
fn self_check_refuses_a_leaf_the_chain_would_reject() {
    // A CA whose organisation limits it to DNS names under example.org: a
    // leaf with another DNS name would fail every peer's verification, so
    // the CA refuses to hand it out.
    let org = org_root();
    let int = org_intermediate(&org, |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.org".into())],
            excluded_subtrees: vec![],
        });
    });
    let ca = load_org(&int, &org);
    ca.issue(&SvidRequest::new(id(WEB)).dns_name("web.example.org"))
        .unwrap();
    assert_err!(
        ca.issue(&SvidRequest::new(id(WEB)).dns_name("web.other.com")),
        CaError::Build { .. }
    );
}

#[test]
fn loaded_ca_round_trips_through_its_own_pem() {
    for (key_type, _) in KEY_TYPES {
        let (root, inter) = root_and_intermediate(key_type);
        let reloaded = CertificateAuthority::from_pem(
            pem_chain(inter.chain()).as_bytes(),
            inter.private_key_pem().as_bytes(),
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{key_type}: {e}"));
        assert_eq!(reloaded.trust_domain(), &td(), "{key_type}");
        assert_eq!(reloaded.chain(), inter.chain(), "{key_type}");
        assert_eq!(reloaded.trust_anchors(), root.trust_anchors(), "{key_type}");
        let svid = reloaded.issue(&SvidRequest::new(id(WEB))).unwrap();
        verify_both(svid.chain(), &bundles(&root), &CrlSet::new())
            .unwrap_or_else(|e| panic!("{key_type}: {e}"));
    }
}

// ---------------------------------------------------------------------------
// 5. Revocation
// ---------------------------------------------------------------------------

fn crl_set(ca: &CertificateAuthority) -> CrlSet {
    let mut crls = CrlSet::new();
    crls.add_der(ca.crl(DEFAULT_CRL_VALIDITY).unwrap()).unwrap();
    crls
}

fn serial_of(der: &[u8]) -> Vec<u8> {
    parse(der).raw_serial().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn revoked_leaves_are_rejected_and_others_still_verify() {
    type Revoke = fn(&CertificateAuthority, &[u8]) -> bool;
    let cases: [(&str, Revoke); 4] = [
        ("raw-serial", |ca, s| ca.revoke(s)),
        ("hex", |ca, s| ca.revoke_hex(&hex(s)).unwrap()),
        ("hex-0x-prefix-colons", |ca, s| {
            let colons: Vec<String> = s.iter().map(|b| format!("{b:02X}")).collect();
            ca.revoke_hex(&format!("0x{}", colons.join(":"))).unwrap()
        }),
        ("hex-redundant-leading-zero", |ca, s| {
            ca.revoke_hex(&format!("00{}", hex(s))).unwrap()
        }),
    ];
    let root = dev_root();
    let inter = root.intermediate(&CaOptions::default()).unwrap();
    for (name, revoke) in cases {
        for (shape, ca) in [("root", &root), ("intermediate", &inter)] {
            let bad = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
            let good = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
            assert!(
                revoke(ca, &serial_of(bad.leaf())),
                "{name} {shape}: not new"
            );
            assert!(
                ca.revoked().contains(&hex(&serial_of(bad.leaf()))),
                "{name} {shape}: {:?}",
                ca.revoked()
            );
            let crls = crl_set(ca);
            assert_err!(
                verify_both(bad.chain(), &bundles(ca), &crls),
                VerifyError::Revoked { .. },
                "{name} {shape}"
            );
            verify_both(good.chain(), &bundles(ca), &crls)
                .unwrap_or_else(|e| panic!("{name} {shape}: {e}"));
            // Without the CRL the revoked leaf would verify.
            verify_both(bad.chain(), &bundles(ca), &CrlSet::new()).unwrap();
        }
    }
}

fn named(cn: &str) -> CaOptions {
    CaOptions {
        common_name: Some(cn.into()),
        ..CaOptions::default()
    }
}

#[test]
fn revoking_an_intermediate_rejects_the_leaves_under_it() {
    let root = dev_root();
    // Distinct names: see bug_sibling_cas_share_a_subject_so_their_crls_collide.
    let bad_int = root.intermediate(&named("cluster bad")).unwrap();
    let good_int = root.intermediate(&named("cluster good")).unwrap();
    let bad_leaf = bad_int.issue(&SvidRequest::new(id(WEB))).unwrap();
    let good_leaf = good_int.issue(&SvidRequest::new(id(WEB))).unwrap();
    assert!(root.revoke(&serial_of(bad_int.certificate())));
    let mut crls = crl_set(&root);
    // The intermediates' own (empty) CRLs alongside.
    crls.extend(&crl_set(&bad_int));
    crls.extend(&crl_set(&good_int));
    assert_err!(
        verify_both(bad_leaf.chain(), &bundles(&root), &crls),
        VerifyError::Revoked { .. }
    );
    verify_both(good_leaf.chain(), &bundles(&root), &crls).unwrap();
    // The root's CRL alone is enough.
    assert_err!(
        verify_both(bad_leaf.chain(), &bundles(&root), &crl_set(&root)),
        VerifyError::Revoked { .. }
    );
}

#[test]
fn crl_of_another_ca_revokes_nothing_here() {
    let a = CertificateAuthority::self_signed_for_development(td(), &named("root a")).unwrap();
    let b = CertificateAuthority::self_signed_for_development(td(), &named("root b")).unwrap();
    let leaf = a.issue(&SvidRequest::new(id(WEB))).unwrap();
    // B "revokes" A's serial: B's CRL does not speak for A.
    assert!(b.revoke(&serial_of(leaf.leaf())));
    verify_both(leaf.chain(), &bundles(&a), &crl_set(&b)).unwrap();
}

#[test]
fn development_roots_of_one_trust_domain_are_told_apart() {
    // Default names: each root's subject is its own, so one root's CRL is
    // never taken for the other's, and a stranger's leaf is untrusted.
    let a = dev_root();
    let b = dev_root();
    let subject = |ca: &CertificateAuthority| parse(ca.certificate()).subject().to_string();
    assert_ne!(subject(&a), subject(&b));
    let leaf_a = a.issue(&SvidRequest::new(id(WEB))).unwrap();
    let leaf_b = b.issue(&SvidRequest::new(id(WEB))).unwrap();
    assert!(b.revoke(&serial_of(leaf_a.leaf())));
    let mut crls = crl_set(&a);
    crls.extend(&crl_set(&b));
    verify_both(leaf_a.chain(), &bundles(&a), &crls).unwrap();
    verify_both(leaf_b.chain(), &bundles(&b), &crls).unwrap();
    assert_err!(
        verify_both(leaf_a.chain(), &bundles(&b), &CrlSet::new()),
        VerifyError::UntrustedIssuer { .. }
    );
}

#[test]
fn crl_numbers_increase_and_times_are_sane() {
    let ca = dev_root();
    let leaf = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
    ca.revoke(&serial_of(leaf.leaf()));
    let ca_cert = parse(ca.certificate());
    for (n, validity) in [
        (1u64, DEFAULT_CRL_VALIDITY),
        (2, Duration::from_secs(600)),
        (3, Duration::from_secs(7 * 24 * 3600)),
    ] {
        let now = unix(SystemTime::now());
        let der = ca.crl(validity).unwrap();
        let (rest, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert!(rest.is_empty());
        let number = crl.crl_number().expect("CRL number").to_bytes_be();
        let number = number.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
        assert_eq!(number, n);
        let this = crl.last_update().timestamp();
        let next = crl.next_update().expect("nextUpdate").timestamp();
        assert!(this <= now, "thisUpdate {this} after now {now}");
        assert!(
            this >= now - BACKDATE.as_secs() as i64 - 5,
            "thisUpdate {this} too old"
        );
        assert!(this >= ca_cert.validity().not_before.timestamp());
        let want = now + validity.as_secs() as i64;
        assert!((next - want).abs() <= 5, "nextUpdate {next}, want {want}");
        assert_eq!(crl.issuer(), ca_cert.subject());
        let listed: Vec<&[u8]> = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial())
            .collect();
        assert_eq!(listed, [serial_of(leaf.leaf()).as_slice()]);
        crl.verify_signature(ca_cert.public_key()).unwrap();
    }
}

#[test]
fn empty_crl_is_valid() {
    let ca = dev_root();
    let der = ca.crl(DEFAULT_CRL_VALIDITY).unwrap();
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    let leaf = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
    verify_both(leaf.chain(), &bundles(&ca), &crl_set(&ca)).unwrap();
}

#[test]
fn revoking_twice_reports_not_new() {
    let ca = dev_root();
    let leaf = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
    let serial = serial_of(leaf.leaf());
    assert!(ca.revoke(&serial));
    assert!(!ca.revoke(&serial));
    // The same serial spelt in hex is the same entry.
    assert!(!ca.revoke_hex(&hex(&serial)).unwrap());
    assert!(!ca.revoke_hex(&format!("0x{}", hex(&serial))).unwrap());
    let mut with_zero = vec![0u8];
    with_zero.extend(&serial);
    assert!(!ca.revoke(&with_zero));
    assert_eq!(ca.revoked(), [hex(&serial)]);
}

#[test]
fn revoke_hex_accepts_the_usual_spellings() {
    // Spellings of one serial, stored as "4a0b1c".
    let spellings = [
        ("plain", "4a0b1c"),
        ("uppercase", "4A0B1C"),
        ("0x-prefix", "0x4a0b1c"),
        ("colons", "4a:0b:1c"),
        ("0x-and-colons", "0x4A:0B:1C"),
        ("surrounding-space", " 4a0b1c\n"),
        ("redundant-leading-zeros", "00004a0b1c"),
    ];
    let twenty_bytes = "7fffffffffffffffffffffffffffffffffffffff";
    let cases = spellings
        .map(|(name, input)| (name, input, "4a0b1c"))
        .into_iter()
        .chain([
            ("high-bit-gets-a-sign-byte", "8a0b1c", "008a0b1c"),
            ("twenty-bytes", twenty_bytes, twenty_bytes),
            ("zero", "00", "00"),
        ]);
    for (name, input, stored) in cases {
        let ca = dev_root();
        assert!(ca.revoke_hex(input).unwrap(), "{name}");
        assert_eq!(ca.revoked(), [stored], "{name}");
        // And the CRL can list it.
        let der = ca
            .crl(DEFAULT_CRL_VALIDITY)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        let listed: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| hex(r.raw_serial()))
            .collect();
        assert_eq!(listed, [stored], "{name}");
    }
}

#[test]
fn revoke_hex_refuses_what_is_not_hex() {
    let cases = [
        ("empty", ""),
        ("only-0x", "0x"),
        ("only-colons", ":::"),
        ("odd-length", "abc"),
        ("not-hex-digits", "zz"),
        ("sign", "-4a"),
        ("inner-space", "4a 0"),
        (
            "more-than-21-bytes",
            "0102030405060708090a0b0c0d0e0f10111213141516",
        ),
        ("non-ascii-pair", "\u{e9}\u{e9}"),
    ];
    let ca = dev_root();
    for (name, input) in cases {
        assert_err!(ca.revoke_hex(input), CaError::InvalidSerial(s) if s == input, "{name}");
    }
    assert!(ca.revoked().is_empty());
}

// ---------------------------------------------------------------------------
// 6. Store
// ---------------------------------------------------------------------------

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn save_then_open_round_trips() {
    let org = org_root();
    let org_int = org_intermediate(&org, |_| {});
    let root = dev_root();
    let cases = [
        (
            "self-signed-root",
            ca_with(KeyType::P384, Duration::from_secs(24 * 3600)),
        ),
        (
            "intermediate",
            root.intermediate(&CaOptions {
                key_type: KeyType::Ed25519,
                ..CaOptions::default()
            })
            .unwrap(),
        ),
        (
            "org-intermediate-without-spiffe-san",
            load_org(&org_int, &org),
        ),
    ];
    for (name, ca) in cases {
        let dir = tempfile::tempdir().unwrap();
        let leaf = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
        let other = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
        ca.revoke(&serial_of(leaf.leaf()));
        ca.crl(DEFAULT_CRL_VALIDITY).unwrap();
        ca.crl(DEFAULT_CRL_VALIDITY).unwrap();
        ca.save(dir.path(), false).unwrap();

        let opened =
            CertificateAuthority::open(dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.trust_domain(), ca.trust_domain(), "{name}");
        assert_eq!(opened.chain(), ca.chain(), "{name}");
        assert_eq!(opened.trust_anchors(), ca.trust_anchors(), "{name}");
        assert_eq!(opened.revoked(), ca.revoked(), "{name}");
        assert_eq!(opened.not_after(), ca.not_after(), "{name}");
        assert_eq!(
            opened.bundle().unwrap().sequence(),
            ca.bundle().unwrap().sequence(),
            "{name}"
        );
        assert_eq!(
            opened.private_key_pem().as_str(),
            ca.private_key_pem().as_str(),
            "{name}"
        );
        // The CRL number carries on from where it was.
        let der = opened.crl(DEFAULT_CRL_VALIDITY).unwrap();
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert_eq!(crl.crl_number().unwrap().to_bytes_be(), [3], "{name}");
        // The reopened CA signs, and its CRL still rejects the old leaf.
        let mut crls = CrlSet::new();
        crls.add_der(der).unwrap();
        assert_err!(
            verify_both(leaf.chain(), &bundles(&ca), &crls),
            VerifyError::Revoked { .. },
            "{name}"
        );
        verify_both(other.chain(), &bundles(&ca), &crls).unwrap();
        let fresh = opened.issue(&SvidRequest::new(id(WEB))).unwrap();
        verify_both(fresh.chain(), &bundles(&ca), &crls).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The files are what the layout says.
        let bundle_pem = std::fs::read(dir.path().join(BUNDLE_FILE)).unwrap();
        assert_eq!(
            bundle_pem,
            pem_chain(ca.trust_anchors()).into_bytes(),
            "{name}"
        );
        let chain_pem = std::fs::read(dir.path().join(CA_CERT_FILE)).unwrap();
        assert_eq!(chain_pem, pem_chain(ca.chain()).into_bytes(), "{name}");
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(state["trust_domain"], TD, "{name}");
        assert_eq!(state["crl_number"], 2, "{name}");
    }
}

#[test]
fn save_state_persists_revocations_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dev_root();
    ca.save(dir.path(), false).unwrap();
    ca.revoke_hex("4a0b").unwrap();
    ca.crl(DEFAULT_CRL_VALIDITY).unwrap();
    ca.save_state(dir.path()).unwrap();
    let opened = CertificateAuthority::open(dir.path()).unwrap();
    assert_eq!(opened.revoked(), ["4a0b"]);
    let der = opened.crl(DEFAULT_CRL_VALIDITY).unwrap();
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    assert_eq!(crl.crl_number().unwrap().to_bytes_be(), [2]);
}

/// Threads, each opening the CA directory on its own (as separate processes
/// would), revoke, issue and sign CRLs at once: the directory lock keeps
/// every update.
#[test]
fn concurrent_handles_on_one_directory_lose_no_update() {
    const THREADS: usize = 8;
    const EACH: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    dev_root().save(dir.path(), false).unwrap();
    let id = SpiffeId::new(&format!("spiffe://{TD}/web")).unwrap();
    let results: Vec<(Vec<String>, Vec<u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (dir, id) = (dir.path(), id.clone());
                scope.spawn(move || {
                    let mut serials = Vec::new();
                    let mut crl_numbers = Vec::new();
                    for i in 0..EACH {
                        let svid = CertificateAuthority::update(dir, |ca| {
                            ca.issue(&SvidRequest::new(id.clone()))
                        })
                        .unwrap();
                        let (_, cert) = X509Certificate::from_der(svid.leaf()).unwrap();
                        let serial: String = cert
                            .raw_serial()
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        if (t + i) % 2 == 0 {
                            // Through update...
                            assert!(
                                CertificateAuthority::update(dir, |ca| ca.revoke_hex(&serial))
                                    .unwrap()
                            );
                        } else {
                            // ...or a handle of its own and save_state.
                            let ca = CertificateAuthority::open(dir).unwrap();
                            assert!(ca.revoke_hex(&serial).unwrap());
                            ca.save_state(dir).unwrap();
                        }
                        let der =
                            CertificateAuthority::update(dir, |ca| ca.crl(DEFAULT_CRL_VALIDITY))
                                .unwrap();
                        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
                        let number = crl.crl_number().unwrap().to_u64_digits();
                        crl_numbers.push(number.first().copied().unwrap_or(0));
                        serials.push(serial);
                    }
                    (serials, crl_numbers)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let serials: HashSet<String> = results.iter().flat_map(|r| r.0.clone()).collect();
    let numbers: HashSet<u64> = results.iter().flat_map(|r| r.1.clone()).collect();
    assert_eq!(serials.len(), THREADS * EACH, "serials repeat");
    assert_eq!(numbers.len(), THREADS * EACH, "CRL numbers reused");
    let ca = CertificateAuthority::open(dir.path()).unwrap();
    let revoked: HashSet<String> = ca.revoked().into_iter().collect();
    assert_eq!(revoked, serials, "revocations lost");
    let der = ca.crl(DEFAULT_CRL_VALIDITY).unwrap();
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), THREADS * EACH);
    assert_eq!(
        crl.crl_number().unwrap().to_u64_digits(),
        [(THREADS * EACH + 1) as u64]
    );
    assert!(dir.path().join(LOCK_FILE).exists());
}

/// A handle opened earlier never overwrites newer state with its stale
/// copy: its changes are merged in, and a CRL it signed while another one
/// was signed is refused rather than its number reused.
#[test]
fn a_stale_handle_merges_its_state_and_never_reuses_a_crl_number() {
    let dir = tempfile::tempdir().unwrap();
    dev_root().save(dir.path(), false).unwrap();
    let early = CertificateAuthority::open(dir.path()).unwrap();
    let late = CertificateAuthority::open(dir.path()).unwrap();
    late.revoke_hex("4a01").unwrap();
    late.crl(DEFAULT_CRL_VALIDITY).unwrap();
    late.save_state(dir.path()).unwrap();
    early.revoke_hex("4a02").unwrap();
    early.save_state(dir.path()).unwrap();
    let opened = CertificateAuthority::open(dir.path()).unwrap();
    assert_eq!(opened.revoked(), ["4a01", "4a02"]);
    // The stale handle now holds the merged state too.
    assert_eq!(early.revoked(), ["4a01", "4a02"]);

    // Both sign CRL number 2 from the same state: the second save refuses.
    let other = CertificateAuthority::open(dir.path()).unwrap();
    early.crl(DEFAULT_CRL_VALIDITY).unwrap();
    other.crl(DEFAULT_CRL_VALIDITY).unwrap();
    early.save_state(dir.path()).unwrap();
    assert_err!(other.save_state(dir.path()), CaError::StaleState { .. });
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
    assert_eq!(state["crl_number"], 2);
}

#[cfg(unix)]
#[test]
fn a_lock_failure_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    // A directory in place of the lock file: it cannot be opened for writing.
    std::fs::create_dir(dir.path().join(LOCK_FILE)).unwrap();
    let err = dev_root().save(dir.path(), false).unwrap_err();
    assert!(matches!(err, CaError::Lock { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn saved_key_is_private_and_nothing_is_world_writable() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dev_root();
    ca.save(dir.path(), false).unwrap();
    assert_eq!(mode(&dir.path().join(CA_KEY_FILE)), 0o600);
    for name in [CA_CERT_FILE, BUNDLE_FILE, STATE_FILE] {
        let m = mode(&dir.path().join(name));
        assert_eq!(m & 0o022, 0, "{name}: mode {m:o}");
    }
    // Overwriting keeps the key private, even over a looser file.
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.path().join(CA_KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    ca.save(dir.path(), true).unwrap();
    assert_eq!(mode(&dir.path().join(CA_KEY_FILE)), 0o600);
}

#[test]
fn save_refuses_to_replace_a_ca_unless_asked() {
    let cases = [
        ("both-files", &[CA_CERT_FILE, CA_KEY_FILE][..]),
        ("certificate-only", &[CA_CERT_FILE][..]),
        ("key-only", &[CA_KEY_FILE][..]),
    ];
    for (name, present) in cases {
        let dir = tempfile::tempdir().unwrap();
        for file in present {
            std::fs::write(dir.path().join(file), b"existing").unwrap();
        }
        let ca = dev_root();
        assert_err!(
            ca.save(dir.path(), false),
            CaError::AlreadyExists { path } if path == dir.path(),
            "{name}"
        );
        for file in present {
            assert_eq!(
                std::fs::read(dir.path().join(file)).unwrap(),
                b"existing",
                "{name}"
            );
        }
        ca.save(dir.path(), true).unwrap();
        let opened = CertificateAuthority::open(dir.path()).unwrap();
        assert_eq!(opened.chain(), ca.chain(), "{name}");
    }
    // A directory with other files (or none yet) is fine.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), b"x").unwrap();
    dev_root()
        .save(&dir.path().join("new/nested"), false)
        .unwrap();
    dev_root().save(dir.path(), false).unwrap();
}

/// Sets `key` of the JSON state file in `dir` to `value`.
fn edit_state(dir: &Path, key: &str, value: serde_json::Value) {
    let path = dir.join(STATE_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v[key] = value;
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn open_refuses_a_broken_ca_directory() {
    struct Case {
        name: &'static str,
        damage: fn(&Path),
        expect: Expect,
    }
    let state = Expect::Err("State", |e| matches!(e, CaError::State { .. }));
    let io = Expect::Err("Io", |e| matches!(e, CaError::Io { .. }));
    let cases = [
        Case {
            name: "intact",
            damage: |_| {},
            expect: Expect::Ok,
        },
        Case {
            name: "state-missing-falls-back-to-the-ca-san",
            damage: |d| std::fs::remove_file(d.join(STATE_FILE)).unwrap(),
            expect: Expect::Ok,
        },
        Case {
            name: "state-not-json",
            damage: |d| std::fs::write(d.join(STATE_FILE), b"{ not json").unwrap(),
            expect: state,
        },
        Case {
            name: "state-empty",
            damage: |d| std::fs::write(d.join(STATE_FILE), b"").unwrap(),
            expect: state,
        },
        Case {
            name: "state-an-array",
            damage: |d| std::fs::write(d.join(STATE_FILE), b"[]").unwrap(),
            expect: state,
        },
        Case {
            name: "state-unknown-field",
            damage: |d| edit_state(d, "surprise", serde_json::json!(1)),
            expect: state,
        },
        Case {
            name: "state-negative-crl-number",
            damage: |d| edit_state(d, "crl_number", serde_json::json!(-1)),
            expect: state,
        },
        Case {
            name: "state-invalid-trust-domain",
            damage: |d| edit_state(d, "trust_domain", serde_json::json!("Not A Trust Domain")),
            expect: state,
        },
        Case {
            name: "certificate-missing",
            damage: |d| std::fs::remove_file(d.join(CA_CERT_FILE)).unwrap(),
            expect: io,
        },
        Case {
            name: "key-missing",
            damage: |d| std::fs::remove_file(d.join(CA_KEY_FILE)).unwrap(),
            expect: io,
        },
        Case {
            name: "bundle-missing",
            damage: |d| std::fs::remove_file(d.join(BUNDLE_FILE)).unwrap(),
            expect: io,
        },
        Case {
            name: "everything-missing",
            damage: |d| {
                for f in [CA_CERT_FILE, CA_KEY_FILE, BUNDLE_FILE, STATE_FILE] {
                    std::fs::remove_file(d.join(f)).unwrap();
                }
            },
            expect: io,
        },
        Case {
            name: "key-replaced-by-another",
            damage: |d| {
                let other = dev_root().private_key_pem();
                std::fs::write(d.join(CA_KEY_FILE), other.as_bytes()).unwrap();
            },
            expect: Expect::Err("KeyMismatch", |e| matches!(e, CaError::KeyMismatch)),
        },
        Case {
            name: "key-empty",
            damage: |d| std::fs::write(d.join(CA_KEY_FILE), b"").unwrap(),
            expect: Expect::Err("NoPrivateKey", |e| {
                matches!(e, CaError::NoPrivateKey { .. })
            }),
        },
        Case {
            name: "bundle-of-another-ca",
            damage: |d| {
                let other = mtls_core::to_pem("CERTIFICATE", dev_root().certificate());
                std::fs::write(d.join(BUNDLE_FILE), other).unwrap();
            },
            expect: Expect::Err("NotACa", |e| matches!(e, CaError::NotACa { .. })),
        },
    ];
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dev_root();
        let ca = root.intermediate(&CaOptions::default()).unwrap();
        ca.save(dir.path(), false).unwrap();
        (case.damage)(dir.path());
        check_expect(
            case.name,
            CertificateAuthority::open(dir.path()),
            case.expect,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    assert_err!(
        CertificateAuthority::open(&dir.path().join("does-not-exist")),
        CaError::Io { .. }
    );
}

// ---------------------------------------------------------------------------
// Library bugs found by this suite (ignored until fixed; see the report).
// ---------------------------------------------------------------------------

/// Runs `f`, turning a panic into `Err`.
fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn bug_revoke_hex_panics_on_non_ascii() {
    let ca = dev_root();
    // 'a', then a two-byte character, then 'b': four bytes, an even count,
    // and byte 2 is inside the 'é'.
    let result = no_panic(|| ca.revoke_hex("a\u{e9}b")).unwrap_or_else(|p| panic!("panicked: {p}"));
    assert_err!(result, CaError::InvalidSerial(_));
}

#[test]
fn bug_revoked_high_bit_20_byte_serial_breaks_the_crl() {
    let ca = dev_root();
    assert!(ca.revoke_hex(&"ff".repeat(20)).unwrap());
    ca.crl(DEFAULT_CRL_VALIDITY).unwrap();
}

#[test]
fn bug_revoking_an_empty_serial_breaks_the_crl() {
    let ca = dev_root();
    ca.revoke(&[]);
    ca.crl(DEFAULT_CRL_VALIDITY).unwrap();
}

#[test]
fn ttls_past_year_9999_are_refused_not_panics() {
    let huge = Duration::from_secs(u64::MAX / 2);
    let ten_thousand_years = Duration::from_secs(10_000 * 366 * 24 * 3600);
    let with_ttl = |ttl| CaOptions {
        ttl,
        ..CaOptions::default()
    };
    let mut ca = dev_root();
    ca.set_policy(IssuancePolicy::new(td()).max_ttl(Duration::MAX))
        .unwrap();
    let too_long = |r: Result<Result<(), CaError>, String>| match r {
        Ok(Err(CaError::TtlTooLong { .. })) => Ok(()),
        other => Err(format!("{other:?}")),
    };
    for ttl in [huge, ten_thousand_years, Duration::MAX] {
        let results = [
            ("crl", no_panic(|| ca.crl(ttl).map(|_| ()))),
            (
                "intermediate",
                no_panic(|| ca.intermediate(&with_ttl(ttl)).map(|_| ())),
            ),
            (
                "root",
                no_panic(|| {
                    CertificateAuthority::self_signed_for_development(td(), &with_ttl(ttl))
                        .map(|_| ())
                }),
            ),
            (
                "leaf",
                no_panic(|| ca.issue(&SvidRequest::new(id(WEB)).ttl(ttl)).map(|_| ())),
            ),
        ];
        let failures: Vec<String> = results
            .into_iter()
            .filter_map(|(name, r)| too_long(r).err().map(|e| format!("{name}: {e}")))
            .collect();
        assert!(failures.is_empty(), "ttl {}s: {failures:#?}", ttl.as_secs());
    }
    // A long TTL that fits is clamped to the CA, not refused.
    let svid = ca
        .issue(&SvidRequest::new(id(WEB)).ttl(Duration::from_secs(1000 * 366 * 24 * 3600)))
        .unwrap();
    assert_eq!(unix(svid.not_after()), unix(ca.not_after()));
}

#[test]
fn bug_sibling_cas_share_a_subject_so_their_crls_collide() {
    // Two per-cluster intermediates under one root, as the docs suggest;
    // a peer that trusts both clusters loads both clusters' CRLs.
    let root = dev_root();
    let cluster_a = root.intermediate(&CaOptions::default()).unwrap();
    let cluster_b = root.intermediate(&CaOptions::default()).unwrap();
    let mut crls = crl_set(&cluster_a);
    crls.extend(&crl_set(&cluster_b));
    for (name, ca) in [("a", &cluster_a), ("b", &cluster_b)] {
        let svid = ca.issue(&SvidRequest::new(id(WEB))).unwrap();
        // Today one of the two fails with BadSignature: webpki takes the
        // first CRL whose issuer name matches.
        verify_both(svid.chain(), &bundles(&root), &crls)
            .unwrap_or_else(|e| panic!("cluster {name}: {e:?}"));
    }
    let subject = |ca: &CertificateAuthority| parse(ca.certificate()).subject().to_string();
    assert_ne!(
        subject(&cluster_a),
        subject(&cluster_b),
        "sibling CAs share a subject"
    );
}

#[test]
fn bug_csr_with_a_harmless_extension_is_called_invalid() {
    let key = p256();
    let cases: [(&str, CustomExtension); 2] = [
        (
            "subject-key-identifier",
            CustomExtension::from_oid_content(&[2, 5, 29, 14], der_tlv(0x04, &[7; 20])),
        ),
        (
            "private-oid",
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], der_tlv(0x05, &[])),
        ),
    ];
    let ca = dev_root();
    let mut failures = Vec::new();
    for (name, ext) in cases {
        let csr = make_csr(&key, |p| p.custom_extensions = vec![ext]);
        if let Err(e) = ca.sign_csr(&csr, &SvidRequest::new(id(WEB))) {
            failures.push(format!("{name}: {e:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn bug_intermediate_under_a_path_length_zero_ca_is_not_checked() {
    let org = org_root();
    let int = org_intermediate(&org, |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    });
    let ca = load_org(&int, &org);
    // The child is useless: every leaf fails the self-check...
    let child = ca.intermediate(&CaOptions::default());
    if let Ok(child) = &child {
        assert_err!(
            child.issue(&SvidRequest::new(id(WEB))),
            CaError::Build { .. }
        );
    }
    // ...so creating it should have failed.
    assert_err!(child, CaError::NotACa { .. });
}

#[test]
fn every_issued_svid_verifies_as_client_and_server_without_a_per_svid_check() {
    // Issuance checks only the leaf's shape when nothing above it depends
    // on its names: every CA shape, key type and request form must still
    // give SVIDs that peers accept in both roles.
    let mut cas = Vec::new();
    for (key_type, _) in KEY_TYPES {
        let (root, inter) = root_and_intermediate(key_type);
        let below = inter.intermediate(&CaOptions::default()).unwrap();
        cas.extend([root, inter, below]);
    }
    let org = org_root();
    cas.push(load_org(&org_intermediate(&org, |_| {}), &org));
    for ca in &cas {
        let bundles = BundleSet::from(ca.bundle().unwrap());
        for (key_type, _) in KEY_TYPES {
            let requests = [
                SvidRequest::new(id(WEB)).key_type(key_type),
                SvidRequest::new(id("spiffe://example.org/ns/a/sa/b"))
                    .key_type(key_type)
                    .dns_name("web.example.org")
                    .common_name("web")
                    .ttl(Duration::from_secs(90)),
            ];
            for request in requests {
                let svid = ca.issue(&request).unwrap();
                for role in [PeerRole::Client, PeerRole::Server] {
                    let peer = mtls_core::verify(
                        svid.chain(),
                        &bundles,
                        SystemTime::now(),
                        &CrlSet::new(),
                        role,
                    )
                    .unwrap_or_else(|e| panic!("{ca:?} {request:?} {role:?}: {e}"));
                    assert_eq!(peer.spiffe_id(), request.spiffe_id());
                }
            }
        }
    }
}
