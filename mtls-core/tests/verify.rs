//! X.509-SVID verification: a table of valid and defective chains, each
//! named by its defect, built on demand by the test CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mtls_core::{verify, BundleSet, CrlSet, PeerRole, SpiffeIdError, VerifyError};
use mtls_testing::{hours, now, TestCa, TestLeaf};
use rcgen::{IsCa, KeyUsagePurpose, SanType};
use std::time::SystemTime;

const ID: &str = "spiffe://example.org/service/web";

struct Case {
    name: &'static str,
    /// The chain presented (leaf first), the bundles and CRLs to use.
    setup: Box<
        dyn Fn() -> (
            Vec<rustls::pki_types::CertificateDer<'static>>,
            BundleSet,
            CrlSet,
        ),
    >,
    expect: fn(&Result<mtls_core::PeerIdentity, VerifyError>) -> bool,
}

fn simple(
    name: &'static str,
    leaf: impl Fn(&TestCa) -> TestLeaf + 'static,
    expect: fn(&Result<mtls_core::PeerIdentity, VerifyError>) -> bool,
) -> Case {
    Case {
        name,
        setup: Box::new(move || {
            let ca = TestCa::root("example.org");
            let leaf = leaf(&ca);
            (leaf.chain, ca.bundle_set(), CrlSet::new())
        }),
        expect,
    }
}

/// The SPIFFE ID defect a verification failed on, if it failed on one.
fn spiffe_id_defect(r: &Result<mtls_core::PeerIdentity, VerifyError>) -> Option<&SpiffeIdError> {
    if let Err(VerifyError::InvalidSpiffeId { source, .. }) = r {
        Some(source)
    } else {
        None
    }
}

/// Bundles of `a.example` and `b.example` both loaded, and a chain for
/// `spiffe://b.example/web` signed by the CA of `signer` (`"a"` or `"b"`).
fn b_web_with_both_bundles_signed_by(
    signer: &'static str,
) -> Box<
    dyn Fn() -> (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        BundleSet,
        CrlSet,
    ),
> {
    Box::new(move || {
        let a = TestCa::root("a.example");
        let b = TestCa::root("b.example");
        let set = BundleSet::from_bundles([a.bundle(), b.bundle()]).unwrap();
        let ca = if signer == "a" { &a } else { &b };
        (ca.leaf("spiffe://b.example/web").chain, set, CrlSet::new())
    })
}

/// A leaf for `ID` whose only SAN is the URI `uri`.
fn leaf_with_uri(ca: &TestCa, uri: &str) -> TestLeaf {
    ca.leaf_with(ID, |p| {
        p.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())]
    })
}

fn ok_id(r: &Result<mtls_core::PeerIdentity, VerifyError>) -> bool {
    matches!(r, Ok(p) if p.spiffe_id().as_str() == ID)
}

fn cases() -> Vec<Case> {
    vec![
        simple("valid-leaf", |ca| ca.leaf(ID), ok_id),
        Case {
            name: "valid-leaf-and-intermediate",
            setup: Box::new(|| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate();
                (inter.leaf(ID).chain, root.bundle_set(), CrlSet::new())
            }),
            expect: |r| ok_id(r) && r.as_ref().unwrap().chain().len() == 2,
        },
        Case {
            name: "valid-leaf-and-two-intermediates",
            setup: Box::new(|| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate().intermediate();
                (inter.leaf(ID).chain, root.bundle_set(), CrlSet::new())
            }),
            expect: ok_id,
        },
        simple(
            "valid-leaf-with-dns-san",
            |ca| {
                ca.leaf_with(ID, |p| {
                    p.subject_alt_names
                        .push(SanType::DnsName("web.example.org".try_into().unwrap()))
                })
            },
            ok_id,
        ),
        simple(
            "valid-empty-subject-critical-uri-san",
            |ca| ca.leaf(ID),
            |r| {
                // The test CA leaves the subject empty; check the SAN is critical.
                let Ok(p) = r else { return false };
                let (_, cert) = <x509_parser::certificate::X509Certificate<'_> as x509_parser::prelude::FromDer<'_, _>>::from_der(p.leaf()).unwrap();
                let san = cert.subject_alternative_name().unwrap().unwrap();
                cert.subject().iter().count() == 0 && san.critical && ok_id(r)
            },
        ),
        Case {
            name: "wrong-untrusted-ca-same-trust-domain-name",
            setup: Box::new(|| {
                let trusted = TestCa::root("example.org");
                let impostor = TestCa::root("example.org");
                (impostor.leaf(ID).chain, trusted.bundle_set(), CrlSet::new())
            }),
            expect: |r| matches!(r, Err(VerifyError::UntrustedIssuer { id, .. }) if id.as_str() == ID),
        },
        simple(
            "wrong-expired",
            |ca| {
                ca.leaf_with(ID, |p| {
                    p.not_before = now() - hours(3);
                    p.not_after = now() - hours(2);
                })
            },
            |r| matches!(r, Err(VerifyError::Expired { not_after, now, .. }) if not_after < now),
        ),
        simple(
            "wrong-not-yet-valid",
            |ca| {
                ca.leaf_with(ID, |p| {
                    p.not_before = now() + hours(2);
                    p.not_after = now() + hours(3);
                })
            },
            |r| matches!(r, Err(VerifyError::NotYetValid { .. })),
        ),
        simple(
            "wrong-leaf-ca-true",
            |ca| {
                ca.leaf_with(ID, |p| {
                    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained)
                })
            },
            |r| matches!(r, Err(VerifyError::LeafIsCa { .. })),
        ),
        simple(
            "wrong-leaf-key-cert-sign",
            |ca| ca.leaf_with(ID, |p| p.key_usages.push(KeyUsagePurpose::KeyCertSign)),
            |r| matches!(r, Err(VerifyError::LeafHasKeyCertSign { .. })),
        ),
        simple(
            "wrong-leaf-crl-sign",
            |ca| ca.leaf_with(ID, |p| p.key_usages.push(KeyUsagePurpose::CrlSign)),
            |r| matches!(r, Err(VerifyError::LeafHasCrlSign { .. })),
        ),
        simple(
            "wrong-leaf-no-digital-signature",
            |ca| {
                ca.leaf_with(ID, |p| {
                    p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]
                })
            },
            |r| matches!(r, Err(VerifyError::LeafMissingDigitalSignature { .. })),
        ),
        simple(
            "wrong-leaf-no-key-usage",
            |ca| ca.leaf_with(ID, |p| p.key_usages = vec![]),
            |r| matches!(r, Err(VerifyError::LeafMissingKeyUsage { .. })),
        ),
        simple(
            "wrong-two-uri-sans",
            |ca| {
                ca.leaf_with(ID, |p| {
                    p.subject_alt_names.push(SanType::URI(
                        "spiffe://example.org/other".try_into().unwrap(),
                    ))
                })
            },
            |r| matches!(r, Err(VerifyError::MultipleUriSans { count: 2 })),
        ),
        simple(
            "wrong-no-uri-san",
            |ca| {
                ca.leaf_with(ID, |p| {
                    p.subject_alt_names =
                        vec![SanType::DnsName("web.example.org".try_into().unwrap())]
                })
            },
            |r| matches!(r, Err(VerifyError::NoUriSan)),
        ),
        simple(
            "wrong-no-san-at-all",
            |ca| {
                ca.leaf_with(ID, |p| {
                    p.subject_alt_names = vec![];
                    p.distinguished_name.push(rcgen::DnType::CommonName, "web");
                })
            },
            |r| matches!(r, Err(VerifyError::NoUriSan)),
        ),
        simple(
            "wrong-non-spiffe-uri",
            |ca| leaf_with_uri(ca, "https://example.org/web"),
            |r| matches!(spiffe_id_defect(r), Some(SpiffeIdError::WrongScheme)),
        ),
        simple(
            "wrong-uppercase-trust-domain",
            |ca| leaf_with_uri(ca, "spiffe://Example.org/web"),
            |r| {
                matches!(
                    spiffe_id_defect(r),
                    Some(SpiffeIdError::UppercaseTrustDomain { .. })
                )
            },
        ),
        simple(
            "wrong-trust-domain-id-without-path",
            |ca| ca.leaf("spiffe://example.org"),
            |r| matches!(r, Err(VerifyError::TrustDomainIdAsLeaf { .. })),
        ),
        Case {
            name: "wrong-peer-of-b-signed-by-a-both-bundles-loaded",
            setup: b_web_with_both_bundles_signed_by("a"),
            expect: |r| matches!(r, Err(VerifyError::UntrustedIssuer { trust_domain, .. }) if trust_domain.name() == "b.example"),
        },
        Case {
            name: "valid-federated-peer-of-b-signed-by-b",
            setup: b_web_with_both_bundles_signed_by("b"),
            expect: |r| matches!(r, Ok(p) if p.trust_domain().name() == "b.example"),
        },
        Case {
            name: "wrong-trust-domain-without-bundle",
            setup: Box::new(|| {
                let a = TestCa::root("a.example");
                let c = TestCa::root("c.example");
                (
                    c.leaf("spiffe://c.example/web").chain,
                    a.bundle_set(),
                    CrlSet::new(),
                )
            }),
            expect: |r| matches!(r, Err(VerifyError::NoBundle { trust_domain, .. }) if trust_domain.name() == "c.example"),
        },
        Case {
            name: "wrong-empty-bundle",
            setup: Box::new(|| {
                let a = TestCa::root("example.org");
                let set = BundleSet::from(mtls_core::X509Bundle::new(a.trust_domain.clone()));
                (a.leaf(ID).chain, set, CrlSet::new())
            }),
            expect: |r| matches!(r, Err(VerifyError::UntrustedIssuer { .. })),
        },
        Case {
            name: "wrong-intermediate-not-ca",
            setup: Box::new(|| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate_with(|p| p.is_ca = IsCa::ExplicitNoCa);
                (inter.leaf(ID).chain, root.bundle_set(), CrlSet::new())
            }),
            expect: |r| {
                matches!(
                    r,
                    Err(VerifyError::Chain { .. }
                        | VerifyError::UntrustedIssuer { .. }
                        | VerifyError::BadSigningCertificate { .. })
                )
            },
        },
        Case {
            name: "wrong-intermediate-no-key-cert-sign",
            setup: Box::new(|| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate_with(|p| {
                    p.key_usages = vec![KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature]
                });
                (inter.leaf(ID).chain, root.bundle_set(), CrlSet::new())
            }),
            expect: |r| matches!(r, Err(VerifyError::BadSigningCertificate { index: 1, reason }) if reason.contains("keyCertSign")),
        },
        Case {
            name: "wrong-intermediate-spiffe-id-with-path",
            setup: Box::new(|| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate_with(|p| {
                    p.subject_alt_names =
                        vec![SanType::URI("spiffe://example.org/ca".try_into().unwrap())]
                });
                (inter.leaf(ID).chain, root.bundle_set(), CrlSet::new())
            }),
            expect: |r| matches!(r, Err(VerifyError::BadSigningCertificate { index: 1, .. })),
        },
        Case {
            name: "wrong-revoked-leaf",
            setup: Box::new(|| {
                let ca = TestCa::root("example.org");
                let leaf = ca.leaf(ID);
                let crls = ca.crl(&[&leaf.serial]);
                (leaf.chain, ca.bundle_set(), crls)
            }),
            expect: |r| matches!(r, Err(VerifyError::Revoked { .. })),
        },
        Case {
            name: "valid-crl-revoking-another-serial",
            setup: Box::new(|| {
                let ca = TestCa::root("example.org");
                let leaf = ca.leaf(ID);
                let other = ca.leaf("spiffe://example.org/other");
                let crls = ca.crl(&[&other.serial]);
                (leaf.chain, ca.bundle_set(), crls)
            }),
            expect: ok_id,
        },
        Case {
            name: "wrong-revoked-intermediate",
            setup: Box::new(|| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate_with(|p| {
                    p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x7e, 0x57]))
                });
                let crls = root.crl(&[&rcgen::SerialNumber::from_slice(&[0x7e, 0x57])]);
                (inter.leaf(ID).chain, root.bundle_set(), crls)
            }),
            expect: |r| matches!(r, Err(VerifyError::Revoked { .. })),
        },
        Case {
            name: "wrong-leaf-only-server-auth-eku-as-client",
            setup: Box::new(|| {
                let ca = TestCa::root("example.org");
                let leaf = ca.leaf_with(ID, |p| {
                    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth]
                });
                (leaf.chain, ca.bundle_set(), CrlSet::new())
            }),
            expect: |r| {
                matches!(
                    r,
                    Err(VerifyError::WrongExtendedKeyUsage {
                        role: PeerRole::Client,
                        ..
                    })
                )
            },
        },
        simple(
            "valid-leaf-without-eku",
            |ca| ca.leaf_with(ID, |p| p.extended_key_usages = vec![]),
            ok_id,
        ),
        simple(
            "valid-leaf-without-basic-constraints",
            |ca| ca.leaf_with(ID, |p| p.is_ca = IsCa::NoCa),
            ok_id,
        ),
        Case {
            name: "wrong-garbage-leaf",
            setup: Box::new(|| {
                let ca = TestCa::root("example.org");
                (
                    vec![vec![0x30, 0x03, 0x02, 0x01, 0x01].into()],
                    ca.bundle_set(),
                    CrlSet::new(),
                )
            }),
            expect: |r| matches!(r, Err(VerifyError::MalformedCertificate { index: 0, .. })),
        },
        Case {
            name: "wrong-chain-too-long",
            setup: Box::new(|| {
                let ca = TestCa::root("example.org");
                let chain = std::iter::repeat_n(ca.leaf(ID).chain[0].clone(), 17).collect();
                (chain, ca.bundle_set(), CrlSet::new())
            }),
            expect: |r| matches!(r, Err(VerifyError::ChainTooLong { len: 17 })),
        },
        Case {
            name: "wrong-empty-chain",
            setup: Box::new(|| (vec![], BundleSet::new(), CrlSet::new())),
            expect: |r| matches!(r, Err(VerifyError::EmptyChain)),
        },
    ]
}

#[test]
fn verification_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let (chain, bundles, crls) = (case.setup)();
        let result = verify(&chain, &bundles, SystemTime::now(), &crls, PeerRole::Client);
        if !(case.expect)(&result) {
            failures.push(format!(
                "{}: got {:?}",
                case.name,
                result.as_ref().map(|p| p.spiffe_id().clone())
            ));
        }
        if let Err(e) = &result {
            // Every error has a message and a stable metric label.
            assert!(!e.to_string().is_empty() && !e.kind().is_empty());
        }
    }
    assert!(
        failures.is_empty(),
        "cases failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn verification_time_is_a_parameter() {
    let ca = TestCa::root("example.org");
    let leaf = ca.leaf(ID);
    let bundles = ca.bundle_set();
    let crls = CrlSet::new();
    let later = SystemTime::now() + std::time::Duration::from_secs(3 * 3600);
    let err = verify(&leaf.chain, &bundles, later, &crls, PeerRole::Server).unwrap_err();
    assert!(matches!(err, VerifyError::Expired { .. }), "{err}");
    assert!(err.to_string().contains("expired at"), "{err}");
    let earlier = SystemTime::now() - std::time::Duration::from_secs(3 * 3600);
    let err = verify(&leaf.chain, &bundles, earlier, &crls, PeerRole::Server).unwrap_err();
    assert!(matches!(err, VerifyError::NotYetValid { .. }), "{err}");
    verify(
        &leaf.chain,
        &bundles,
        SystemTime::now(),
        &crls,
        PeerRole::Server,
    )
    .unwrap();
}

/// The identity is valid until the earliest notAfter of the verified path:
/// a long-lived leaf under a short-lived intermediate expires with the
/// intermediate (a long-lived connection must not outlive it).
#[test]
fn identity_expires_with_the_earliest_certificate_of_its_path() {
    let root = TestCa::root("example.org");
    let intermediate = root.intermediate_with(|p| p.not_after = now() + hours(1));
    let leaf = intermediate.leaf_with(ID, |p| p.not_after = now() + hours(5));
    let peer = verify(
        &leaf.chain,
        &root.bundle_set(),
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Client,
    )
    .unwrap();
    let in_secs = |t: SystemTime| {
        t.duration_since(SystemTime::now())
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    assert!(
        (3590..=3600).contains(&in_secs(peer.not_after())),
        "the intermediate's expiry"
    );
    assert!((5 * 3600 - 10..=5 * 3600).contains(&in_secs(peer.leaf_not_after())));
    assert!(!peer.is_expired_at(SystemTime::now()));
    assert!(peer.is_expired_at(SystemTime::now() + std::time::Duration::from_secs(2 * 3600)));
    // The SVID itself says when its chain stops being usable.
    let svid = leaf.svid();
    assert_eq!(svid.valid_until(), peer.not_after());
    assert_eq!(svid.not_after(), peer.leaf_not_after());
}
