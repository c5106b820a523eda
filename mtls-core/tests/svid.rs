//! Our own X.509-SVID (`X509Svid`): loading from PEM, each defect its own
//! named case; PEM round trips; key types; verification against bundles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mtls_core::{
    BundleSet, CrlSet, PeerRole, SvidError, TrustDomain, VerifyError, X509Bundle, X509Svid,
    MAX_CHAIN_LEN,
};
use mtls_testing::{TestCa, TestLeaf};
use rcgen::{IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const TD: &str = "example.org";
const ID: &str = "spiffe://example.org/service/web";

/// One PEM block (written here, independently of the library's encoder).
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let body: String = (0..b64.len())
        .step_by(64)
        .map(|at| format!("{}\n", &b64[at..b64.len().min(at + 64)]))
        .collect();
    format!("-----BEGIN {label}-----\n{body}-----END {label}-----\n")
}

fn chain_pem(chain: &[CertificateDer<'_>]) -> String {
    chain.iter().map(|c| pem("CERTIFICATE", c)).collect()
}

fn key_pem(leaf: &TestLeaf) -> String {
    pem("PRIVATE KEY", leaf.key.secret_der())
}

/// A root whose key is of `ca_alg`, and a leaf for `ID` signed by it whose
/// key is of `leaf_alg` (the shared test CA only makes P-256 keys).
struct Pki {
    root: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    leaf: CertificateDer<'static>,
    leaf_key: KeyPair,
}

impl Pki {
    fn new(ca_alg: &'static SignatureAlgorithm, leaf_alg: &'static SignatureAlgorithm) -> Self {
        let ca_key = KeyPair::generate_for(ca_alg).unwrap();
        let params = mtls_testing::ca_params(TD);
        let root = params.self_signed(&ca_key).unwrap().der().clone();
        let issuer = Issuer::new(params, ca_key);
        let leaf_key = KeyPair::generate_for(leaf_alg).unwrap();
        let leaf = mtls_testing::leaf_params(ID)
            .signed_by(&leaf_key, &issuer)
            .unwrap()
            .der()
            .clone();
        Self {
            root,
            issuer,
            leaf,
            leaf_key,
        }
    }

    fn bundle_set(&self) -> BundleSet {
        BundleSet::from(
            X509Bundle::from_authorities(TrustDomain::from_static(TD), [self.root.clone()])
                .unwrap(),
        )
    }
}

const P256: &SignatureAlgorithm = &rcgen::PKCS_ECDSA_P256_SHA256;
const P384: &SignatureAlgorithm = &rcgen::PKCS_ECDSA_P384_SHA384;
const ED25519: &SignatureAlgorithm = &rcgen::PKCS_ED25519;
const RSA: &SignatureAlgorithm = &rcgen::PKCS_RSA_SHA256;

// ------------------------------------------------------------ loading ----

struct Case {
    name: &'static str,
    /// The chain PEM and the key PEM to load.
    input: Box<dyn Fn() -> (String, String)>,
    expect: fn(&Result<X509Svid, SvidError>) -> bool,
}

fn ok(r: &Result<X509Svid, SvidError>) -> bool {
    matches!(r, Ok(s) if s.spiffe_id().as_str() == ID)
}

/// A case whose chain is one leaf of the shared test CA, mutated.
fn leaf_case(
    name: &'static str,
    mutate: fn(&mut rcgen::CertificateParams),
    expect: fn(&Result<X509Svid, SvidError>) -> bool,
) -> Case {
    Case {
        name,
        input: Box::new(move || {
            let leaf = TestCa::root(TD).leaf_with(ID, mutate);
            (chain_pem(&leaf.chain), key_pem(&leaf))
        }),
        expect,
    }
}

fn key_type_case(
    name: &'static str,
    ca: &'static SignatureAlgorithm,
    leaf: &'static SignatureAlgorithm,
) -> Case {
    pki_case(name, (ca, leaf), |pki| pki.leaf_key.serialize_pem(), ok)
}

/// A case loading the leaf of a fresh [`Pki`] of `algs` (CA, leaf) with the
/// key PEM `key` gives.
fn pki_case(
    name: &'static str,
    (ca, leaf): (&'static SignatureAlgorithm, &'static SignatureAlgorithm),
    key: fn(&Pki) -> String,
    expect: fn(&Result<X509Svid, SvidError>) -> bool,
) -> Case {
    Case {
        name,
        input: Box::new(move || {
            let pki = Pki::new(ca, leaf);
            (pem("CERTIFICATE", &pki.leaf), key(&pki))
        }),
        expect,
    }
}

/// What verifying the leaf refused, if loading failed there.
fn leaf_defect(r: &Result<X509Svid, SvidError>) -> Option<&VerifyError> {
    if let Err(SvidError::Leaf(e)) = r {
        Some(e)
    } else {
        None
    }
}

fn key_mismatch(r: &Result<X509Svid, SvidError>) -> bool {
    matches!(r, Err(SvidError::KeyMismatch))
}

fn cases() -> Vec<Case> {
    vec![
        leaf_case("valid-leaf", |_| {}, ok),
        leaf_case(
            "valid-leaf-with-dns-san",
            |p| {
                p.subject_alt_names
                    .push(SanType::DnsName("web.example.org".try_into().unwrap()))
            },
            ok,
        ),
        leaf_case(
            "valid-leaf-without-basic-constraints",
            |p| p.is_ca = IsCa::NoCa,
            ok,
        ),
        leaf_case(
            "valid-leaf-expired-loads-verify-decides",
            |p| {
                p.not_before = mtls_testing::now() - mtls_testing::hours(3);
                p.not_after = mtls_testing::now() - mtls_testing::hours(2);
            },
            ok,
        ),
        Case {
            name: "valid-leaf-and-two-intermediates",
            input: Box::new(|| {
                let leaf = TestCa::root(TD).intermediate().intermediate().leaf(ID);
                (chain_pem(&leaf.chain), key_pem(&leaf))
            }),
            expect: |r| matches!(r, Ok(s) if s.chain().len() == 3),
        },
        Case {
            name: "valid-one-combined-file-for-both",
            input: Box::new(|| {
                let leaf = TestCa::root(TD).intermediate().leaf(ID);
                let both = format!("{}{}", key_pem(&leaf), chain_pem(&leaf.chain));
                (both.clone(), both)
            }),
            expect: |r| matches!(r, Ok(s) if s.chain().len() == 2),
        },
        key_type_case("valid-p256-leaf-p256-ca", P256, P256),
        key_type_case("valid-p384-leaf-p256-ca", P256, P384),
        key_type_case("valid-ed25519-leaf-p256-ca", P256, ED25519),
        key_type_case("valid-p256-leaf-p384-ca", P384, P256),
        key_type_case("valid-p384-leaf-ed25519-ca", ED25519, P384),
        key_type_case("valid-ed25519-leaf-ed25519-ca", ED25519, ED25519),
        key_type_case("valid-rsa-leaf-p256-ca", P256, RSA),
        // Missing pieces.
        Case {
            name: "wrong-empty-chain",
            input: Box::new(|| (String::new(), key_pem(&TestCa::root(TD).leaf(ID)))),
            expect: |r| matches!(r, Err(SvidError::NoCertificate)),
        },
        Case {
            name: "wrong-chain-pem-holds-only-a-key",
            input: Box::new(|| {
                let leaf = TestCa::root(TD).leaf(ID);
                (key_pem(&leaf), key_pem(&leaf))
            }),
            expect: |r| matches!(r, Err(SvidError::NoCertificate)),
        },
        Case {
            name: "wrong-no-key",
            input: Box::new(|| (chain_pem(&TestCa::root(TD).leaf(ID).chain), String::new())),
            expect: |r| matches!(r, Err(SvidError::NoPrivateKey)),
        },
        Case {
            name: "wrong-key-pem-holds-only-certificates",
            input: Box::new(|| {
                let chain = chain_pem(&TestCa::root(TD).leaf(ID).chain);
                (chain.clone(), chain)
            }),
            expect: |r| matches!(r, Err(SvidError::NoPrivateKey)),
        },
        // Garbage.
        Case {
            name: "wrong-garbage-between-key-markers",
            input: Box::new(|| {
                let chain = chain_pem(&TestCa::root(TD).leaf(ID).chain);
                (
                    chain,
                    "-----BEGIN PRIVATE KEY-----\n!!! not base64 !!!\n-----END PRIVATE KEY-----\n"
                        .into(),
                )
            }),
            expect: |r| {
                matches!(
                    r,
                    Err(SvidError::Pem {
                        what: "private key",
                        ..
                    })
                )
            },
        },
        Case {
            name: "wrong-key-block-of-random-bytes",
            input: Box::new(|| {
                let chain = chain_pem(&TestCa::root(TD).leaf(ID).chain);
                (chain, pem("PRIVATE KEY", b"definitely not a PKCS#8 key"))
            }),
            expect: |r| matches!(r, Err(SvidError::Key { reason }) if !reason.is_empty()),
        },
        Case {
            name: "wrong-rsa-key-label-holds-pkcs8",
            input: Box::new(|| {
                let leaf = TestCa::root(TD).leaf(ID);
                (
                    chain_pem(&leaf.chain),
                    pem("RSA PRIVATE KEY", leaf.key.secret_der()),
                )
            }),
            expect: |r| matches!(r, Err(SvidError::Key { .. })),
        },
        Case {
            name: "wrong-garbage-between-certificate-markers",
            input: Box::new(|| {
                let leaf = TestCa::root(TD).leaf(ID);
                (
                    "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n".into(),
                    key_pem(&leaf),
                )
            }),
            expect: |r| {
                matches!(
                    r,
                    Err(SvidError::Pem {
                        what: "certificate chain",
                        ..
                    })
                )
            },
        },
        Case {
            name: "wrong-certificate-block-of-random-bytes",
            input: Box::new(|| {
                let leaf = TestCa::root(TD).leaf(ID);
                (pem("CERTIFICATE", b"\x30\x03\x02\x01\x00"), key_pem(&leaf))
            }),
            expect: |r| {
                matches!(
                    r,
                    Err(SvidError::Leaf(VerifyError::MalformedCertificate {
                        index: 0,
                        ..
                    }))
                )
            },
        },
        Case {
            name: "wrong-chain-too-long",
            input: Box::new(|| {
                let leaf = TestCa::root(TD).leaf(ID);
                let chain = vec![leaf.chain[0].clone(); MAX_CHAIN_LEN + 1];
                (chain_pem(&chain), key_pem(&leaf))
            }),
            expect: |r| matches!(r, Err(SvidError::ChainTooLong { len }) if *len == MAX_CHAIN_LEN + 1),
        },
        // The key does not belong to the leaf.
        Case {
            name: "wrong-key-of-another-leaf",
            input: Box::new(|| {
                let ca = TestCa::root(TD);
                (chain_pem(&ca.leaf(ID).chain), key_pem(&ca.leaf(ID)))
            }),
            expect: |r| matches!(r, Err(SvidError::KeyMismatch)),
        },
        pki_case(
            "wrong-key-of-the-issuing-ca",
            (P256, P256),
            |pki| pki.issuer.key().serialize_pem(),
            key_mismatch,
        ),
        pki_case(
            "wrong-key-of-another-algorithm-p384-for-p256-leaf",
            (P256, P256),
            |_| KeyPair::generate_for(P384).unwrap().serialize_pem(),
            key_mismatch,
        ),
        pki_case(
            "wrong-key-of-another-algorithm-ed25519-for-p256-leaf",
            (P256, P256),
            |_| KeyPair::generate_for(ED25519).unwrap().serialize_pem(),
            key_mismatch,
        ),
        Case {
            name: "wrong-chain-order-intermediate-first",
            input: Box::new(|| {
                // Chain given root-first: the "leaf" is then the intermediate.
                let leaf = TestCa::root(TD).intermediate().leaf(ID);
                let swapped = [leaf.chain[1].clone(), leaf.chain[0].clone()];
                (chain_pem(&swapped), key_pem(&leaf))
            }),
            expect: |r| {
                matches!(
                    leaf_defect(r),
                    Some(VerifyError::TrustDomainIdAsLeaf { .. })
                )
            },
        },
        // The leaf is not an X.509-SVID.
        leaf_case(
            "wrong-leaf-ca-true",
            |p| p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
            |r| matches!(r, Err(SvidError::Leaf(VerifyError::LeafIsCa { .. }))),
        ),
        leaf_case(
            "wrong-leaf-two-uri-sans",
            |p| {
                p.subject_alt_names.push(SanType::URI(
                    "spiffe://example.org/other".try_into().unwrap(),
                ))
            },
            |r| {
                matches!(
                    r,
                    Err(SvidError::Leaf(VerifyError::MultipleUriSans { count: 2 }))
                )
            },
        ),
        leaf_case(
            "wrong-leaf-no-uri-san",
            |p| p.subject_alt_names = vec![SanType::DnsName("web.example.org".try_into().unwrap())],
            |r| matches!(r, Err(SvidError::Leaf(VerifyError::NoUriSan))),
        ),
        leaf_case(
            "wrong-leaf-no-san-at-all",
            |p| p.subject_alt_names = vec![],
            |r| matches!(r, Err(SvidError::Leaf(VerifyError::NoUriSan))),
        ),
        leaf_case(
            "wrong-leaf-uri-san-not-spiffe",
            |p| {
                p.subject_alt_names = vec![SanType::URI(
                    "https://example.org/service/web".try_into().unwrap(),
                )]
            },
            |r| matches!(r, Err(SvidError::Leaf(VerifyError::InvalidSpiffeId { .. }))),
        ),
        leaf_case(
            "wrong-leaf-trust-domain-id",
            |p| {
                p.subject_alt_names = vec![SanType::URI("spiffe://example.org".try_into().unwrap())]
            },
            |r| {
                matches!(
                    leaf_defect(r),
                    Some(VerifyError::TrustDomainIdAsLeaf { .. })
                )
            },
        ),
        leaf_case(
            "wrong-leaf-key-cert-sign",
            |p| p.key_usages.push(KeyUsagePurpose::KeyCertSign),
            |r| matches!(leaf_defect(r), Some(VerifyError::LeafHasKeyCertSign { .. })),
        ),
        leaf_case(
            "wrong-leaf-crl-sign",
            |p| p.key_usages.push(KeyUsagePurpose::CrlSign),
            |r| matches!(r, Err(SvidError::Leaf(VerifyError::LeafHasCrlSign { .. }))),
        ),
        leaf_case(
            "wrong-leaf-no-digital-signature",
            |p| p.key_usages = vec![KeyUsagePurpose::KeyEncipherment],
            |r| {
                matches!(
                    leaf_defect(r),
                    Some(VerifyError::LeafMissingDigitalSignature { .. })
                )
            },
        ),
        leaf_case(
            "wrong-leaf-no-key-usage",
            |p| p.key_usages = vec![],
            |r| {
                matches!(
                    leaf_defect(r),
                    Some(VerifyError::LeafMissingKeyUsage { .. })
                )
            },
        ),
        Case {
            name: "wrong-leaf-is-the-root-ca",
            input: Box::new(|| {
                let pki = Pki::new(P256, P256);
                (
                    pem("CERTIFICATE", &pki.root),
                    pki.issuer.key().serialize_pem(),
                )
            }),
            expect: |r| {
                matches!(
                    leaf_defect(r),
                    Some(VerifyError::TrustDomainIdAsLeaf { .. })
                )
            },
        },
    ]
}

#[test]
fn loading_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let (chain, key) = (case.input)();
        let result = X509Svid::from_pem(chain.as_bytes(), key.as_bytes());
        if !(case.expect)(&result) {
            failures.push(format!("{}: got {:?}", case.name, result));
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn new_checks_as_from_pem_does() {
    let leaf = TestCa::root(TD).leaf(ID);
    let other = TestCa::root(TD).leaf(ID);
    assert!(matches!(
        X509Svid::new(vec![], leaf.key.clone_key()),
        Err(SvidError::NoCertificate)
    ));
    assert!(matches!(
        X509Svid::new(leaf.chain.clone(), other.key.clone_key()),
        Err(SvidError::KeyMismatch)
    ));
    assert!(matches!(
        X509Svid::new(
            leaf.chain.clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(b"junk".to_vec()))
        ),
        Err(SvidError::Key { .. })
    ));
    let svid = X509Svid::new(leaf.chain.clone(), leaf.key.clone_key()).unwrap();
    assert_eq!(svid.spiffe_id().as_str(), ID);
    assert_eq!(svid.leaf(), &leaf.chain[0]);
}

// --------------------------------------------------------- round trip ----

#[test]
fn pem_round_trip() {
    let ca = TestCa::root(TD);
    let leaf = ca.intermediate().leaf(ID);
    let chain_in = chain_pem(&leaf.chain);
    let key_in = key_pem(&leaf);
    let svid = X509Svid::from_pem(chain_in.as_bytes(), key_in.as_bytes()).unwrap();

    assert_eq!(svid.spiffe_id().as_str(), ID);
    assert_eq!(svid.chain(), leaf.chain.as_slice());
    assert_eq!(svid.private_key().secret_der(), leaf.key.secret_der());
    // Emitted PEM is standard: byte for byte what an independent encoder writes.
    assert_eq!(svid.chain_pem(), chain_in);
    assert_eq!(svid.private_key_pem(), key_in);

    let again = X509Svid::from_pem(
        svid.chain_pem().as_bytes(),
        svid.private_key_pem().as_bytes(),
    )
    .unwrap();
    assert_eq!(again.chain(), svid.chain());
    assert_eq!(
        again.private_key().secret_der(),
        svid.private_key().secret_der()
    );
    assert_eq!(again.spiffe_id(), svid.spiffe_id());
    assert_eq!(again.not_before(), svid.not_before());
    assert_eq!(again.not_after(), svid.not_after());
    assert!(!again.ptr_eq(&svid));
    assert!(svid.ptr_eq(&svid.clone()));

    // The validity is read from the leaf (to the second).
    let now = SystemTime::now();
    assert!(svid.not_before() < now && now < svid.not_after());
    let lifetime = svid.not_after().duration_since(svid.not_before()).unwrap();
    assert_eq!(lifetime, Duration::from_secs(2 * 3600));

    // Debug never prints the key.
    let debug = format!("{svid:?}");
    assert!(debug.contains(ID), "{debug}");
    let key_b64 = STANDARD.encode(leaf.key.secret_der());
    assert!(!debug.contains(&key_b64[..16]), "{debug}");
}

#[test]
fn pem_round_trip_per_key_type() {
    for (name, alg) in [
        ("p256", P256),
        ("p384", P384),
        ("ed25519", ED25519),
        ("rsa", RSA),
    ] {
        let pki = Pki::new(P256, alg);
        let svid = X509Svid::from_pem(
            pem("CERTIFICATE", &pki.leaf).as_bytes(),
            pki.leaf_key.serialize_pem().as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            svid.private_key_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{name}"
        );
        let again = X509Svid::from_pem(
            svid.chain_pem().as_bytes(),
            svid.private_key_pem().as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            again.private_key().secret_der(),
            pki.leaf_key.serialized_der(),
            "{name}"
        );
        assert_eq!(again.leaf(), &pki.leaf, "{name}");
    }
}

// ------------------------------------------------------------- verify ----

#[test]
fn verify_against_right_and_wrong_bundles() {
    let ca = TestCa::root(TD);
    let svid = ca.intermediate().leaf(ID).svid();
    let now = SystemTime::now();
    let no_crls = CrlSet::new();

    let peer = svid
        .verify(&ca.bundle_set(), now, &no_crls, PeerRole::Client)
        .unwrap();
    assert_eq!(peer.spiffe_id().as_str(), ID);
    assert_eq!(peer.chain().len(), 2);

    // Same trust domain name, another CA.
    let impostor = TestCa::root(TD);
    let err = svid
        .verify(&impostor.bundle_set(), now, &no_crls, PeerRole::Client)
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::UntrustedIssuer { id, .. } if id.as_str() == ID),
        "{err:?}"
    );

    // The right CA, but filed under another trust domain.
    let other_td =
        X509Bundle::from_authorities(TrustDomain::from_static("other.org"), [ca.root.clone()])
            .unwrap();
    let err = svid
        .verify(&BundleSet::from(other_td), now, &no_crls, PeerRole::Client)
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::NoBundle { trust_domain, .. } if trust_domain.name() == TD),
        "{err:?}"
    );

    // No bundle at all; an empty bundle.
    assert!(matches!(
        svid.verify(&BundleSet::new(), now, &no_crls, PeerRole::Client),
        Err(VerifyError::NoBundle { .. })
    ));
    let empty = BundleSet::from(X509Bundle::new(TrustDomain::from_static(TD)));
    assert!(matches!(
        svid.verify(&empty, now, &no_crls, PeerRole::Client),
        Err(VerifyError::UntrustedIssuer { .. })
    ));

    // Time is a parameter.
    let later = now + Duration::from_secs(3 * 3600);
    assert!(matches!(
        svid.verify(&ca.bundle_set(), later, &no_crls, PeerRole::Client),
        Err(VerifyError::Expired { .. })
    ));
}

#[test]
fn verify_revoked_svid() {
    let ca = TestCa::root(TD);
    let leaf = ca.leaf(ID);
    let svid = leaf.svid();
    let crls = ca.crl(&[&leaf.serial]);
    let err = svid
        .verify(&ca.bundle_set(), SystemTime::now(), &crls, PeerRole::Client)
        .unwrap_err();
    assert!(matches!(err, VerifyError::Revoked { .. }), "{err:?}");
}

#[test]
fn verify_per_key_type() {
    for (ca_alg, leaf_alg) in [
        (P256, P384),
        (P256, ED25519),
        (P384, P256),
        (ED25519, ED25519),
        (P384, P384),
        (RSA, P256),
        (P256, RSA),
    ] {
        let pki = Pki::new(ca_alg, leaf_alg);
        let name = format!("{:?} signing {:?}", ca_alg, leaf_alg);
        let svid = X509Svid::from_pem(
            pem("CERTIFICATE", &pki.leaf).as_bytes(),
            pki.leaf_key.serialize_pem().as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (crls, role) = (CrlSet::new(), PeerRole::Client);
        let verify_against = |p: &Pki| svid.verify(&p.bundle_set(), SystemTime::now(), &crls, role);
        let peer = verify_against(&pki).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(peer.spiffe_id().as_str(), ID, "{name}");
        // And never against another root of the same key type.
        let err = verify_against(&Pki::new(ca_alg, leaf_alg)).unwrap_err();
        assert!(
            matches!(err, VerifyError::UntrustedIssuer { .. }),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn verify_checks_the_extended_key_usage_of_the_role_asked_for() {
    let ca = TestCa::root("example.org");
    let leaf = ca.leaf_with("spiffe://example.org/server-only", |p| {
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth]
    });
    let svid = leaf.svid();
    let now = SystemTime::now();
    svid.verify(&ca.bundle_set(), now, &CrlSet::new(), PeerRole::Server)
        .unwrap();
    let err = svid
        .verify(&ca.bundle_set(), now, &CrlSet::new(), PeerRole::Client)
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::WrongExtendedKeyUsage {
                role: PeerRole::Client,
                ..
            }
        ),
        "{err}"
    );
}
