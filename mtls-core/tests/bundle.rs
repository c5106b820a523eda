//! Bundles (DESIGN.md section 5): PEM and SPIFFE-bundle JWKS loading, each
//! defect its own named case; JWKS emission; `BundleSet` (federation, never
//! merged); CRL loading; `SpiffeBundle` with typed JWT authorities.
//!
//! Every certificate is built on demand by the in-process test CA (or by
//! rcgen directly, for roots of other key types).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use mtls_core::{
    check_svid_public_key, verify, BundleError, BundleSet, CrlError, CrlSet, JwtKey, JwtKeyError,
    JwtKeyType, PeerRole, SpiffeBundle, TrustDomain, VerifyError, X509Bundle, MAX_BUNDLE_BYTES,
    MAX_CERTIFICATE_BYTES, MAX_CRL_BYTES,
};
use mtls_testing::{client_identity, client_rejection, TestCa};
use rcgen::{Issuer, KeyPair};
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};

const TD: &str = "example.org";
const ID: &str = "spiffe://example.org/service/web";

fn td() -> TrustDomain {
    TrustDomain::from_static(TD)
}

/// One PEM block, 64-column lines (written here, independently of the
/// library's encoder).
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A self-signed CA certificate of `td` with a key of `alg`, and its issuer.
fn root_of(
    td: &str,
    alg: &'static rcgen::SignatureAlgorithm,
) -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate_for(alg).unwrap();
    let params = mtls_testing::ca_params(td);
    let cert = params.self_signed(&key).unwrap();
    (cert.der().clone(), Issuer::new(params, key))
}

fn roots(n: usize) -> Vec<CertificateDer<'static>> {
    (0..n).map(|_| TestCa::root(TD).root).collect()
}

fn private_key_pem() -> String {
    KeyPair::generate().unwrap().serialize_pem()
}

/// The failed cases of a table, reported together (each by its name) at the
/// end, so one run shows every defect.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn add(&mut self, case: &str, what: impl std::fmt::Display) {
        self.0.push(format!("{case}: {what}"));
    }

    fn assert_none(self) {
        assert!(self.0.is_empty(), "failed cases:\n{}", self.0.join("\n"));
    }
}

// ---------------------------------------------------------------- PEM ----

struct PemCase {
    name: &'static str,
    /// The document, and the authorities it should load (if it loads).
    input: Box<dyn Fn() -> (Vec<u8>, Vec<CertificateDer<'static>>)>,
    expect: fn(&Result<X509Bundle, BundleError>) -> bool,
}

fn loaded(r: &Result<X509Bundle, BundleError>) -> bool {
    r.is_ok()
}

fn pem_cases() -> Vec<PemCase> {
    vec![
        PemCase {
            name: "valid-one-cert",
            input: Box::new(|| {
                let c = roots(1);
                (pem("CERTIFICATE", &c[0]).into_bytes(), c)
            }),
            expect: loaded,
        },
        PemCase {
            name: "valid-three-certs-order-kept",
            input: Box::new(|| {
                let c = roots(3);
                let doc: String = c.iter().map(|d| pem("CERTIFICATE", d)).collect();
                (doc.into_bytes(), c)
            }),
            expect: loaded,
        },
        PemCase {
            name: "valid-duplicate-cert-ignored",
            input: Box::new(|| {
                let c = roots(2);
                let doc = [&c[0], &c[1], &c[0], &c[1]]
                    .iter()
                    .map(|d| pem("CERTIFICATE", d))
                    .collect::<String>();
                (doc.into_bytes(), c)
            }),
            expect: loaded,
        },
        PemCase {
            name: "valid-key-block-skipped",
            input: Box::new(|| {
                let c = roots(2);
                let doc = format!(
                    "{}{}{}",
                    private_key_pem(),
                    pem("CERTIFICATE", &c[0]),
                    pem("CERTIFICATE", &c[1])
                );
                (doc.into_bytes(), c)
            }),
            expect: loaded,
        },
        PemCase {
            name: "valid-text-around-blocks-and-crlf",
            input: Box::new(|| {
                let c = roots(1);
                let doc = format!(
                    "subject=CN=test\r\n{}trailing words\r\n",
                    pem("CERTIFICATE", &c[0]).replace('\n', "\r\n")
                );
                (doc.into_bytes(), c)
            }),
            expect: loaded,
        },
        PemCase {
            name: "wrong-empty",
            input: Box::new(|| (Vec::new(), vec![])),
            expect: |r| matches!(r, Err(BundleError::NoCertificates { trust_domain }) if trust_domain.name() == TD),
        },
        PemCase {
            name: "wrong-whitespace-only",
            input: Box::new(|| (b" \n\t\r\n  \n".to_vec(), vec![])),
            expect: |r| matches!(r, Err(BundleError::NoCertificates { .. })),
        },
        PemCase {
            name: "wrong-only-a-private-key",
            input: Box::new(|| (private_key_pem().into_bytes(), vec![])),
            expect: |r| matches!(r, Err(BundleError::NoCertificates { .. })),
        },
        PemCase {
            name: "wrong-only-a-crl",
            input: Box::new(|| {
                let crl = TestCa::root(TD).crl(&[]);
                (pem("X509 CRL", &crl.ders()[0]).into_bytes(), vec![])
            }),
            expect: |r| matches!(r, Err(BundleError::NoCertificates { .. })),
        },
        PemCase {
            name: "wrong-text-without-markers",
            input: Box::new(|| (b"not a pem file at all".to_vec(), vec![])),
            expect: |r| matches!(r, Err(BundleError::NoCertificates { .. })),
        },
        PemCase {
            name: "wrong-garbage-between-markers",
            input: Box::new(|| {
                (b"-----BEGIN CERTIFICATE-----\n!!!! not base64 ****\n-----END CERTIFICATE-----\n".to_vec(), vec![])
            }),
            expect: |r| matches!(r, Err(BundleError::Pem { reason }) if !reason.is_empty()),
        },
        PemCase {
            name: "wrong-garbage-in-second-block",
            input: Box::new(|| {
                let c = roots(1);
                let doc = format!(
                    "{}-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
                    pem("CERTIFICATE", &c[0])
                );
                (doc.into_bytes(), vec![])
            }),
            expect: |r| matches!(r, Err(BundleError::Pem { .. })),
        },
        PemCase {
            name: "wrong-missing-end-marker",
            input: Box::new(|| {
                let c = roots(1);
                let doc = pem("CERTIFICATE", &c[0]);
                let cut = doc.find("-----END").unwrap();
                (doc.as_bytes()[..cut].to_vec(), vec![])
            }),
            expect: |r| matches!(r, Err(BundleError::Pem { .. })),
        },
        PemCase {
            name: "wrong-certificate-block-holds-a-private-key",
            input: Box::new(|| {
                let key = KeyPair::generate().unwrap();
                (
                    pem("CERTIFICATE", &key.serialize_der()).into_bytes(),
                    vec![],
                )
            }),
            expect: |r| matches!(r, Err(BundleError::InvalidCertificate { index: 0, .. })),
        },
        PemCase {
            name: "wrong-certificate-block-holds-random-bytes",
            input: Box::new(|| {
                (
                    pem("CERTIFICATE", b"\x30\x03\x02\x01\x00").into_bytes(),
                    vec![],
                )
            }),
            expect: |r| matches!(r, Err(BundleError::InvalidCertificate { index: 0, .. })),
        },
        PemCase {
            name: "wrong-second-certificate-invalid-index-1",
            input: Box::new(|| {
                let c = roots(1);
                let doc = format!(
                    "{}{}",
                    pem("CERTIFICATE", &c[0]),
                    pem("CERTIFICATE", b"garbage")
                );
                (doc.into_bytes(), vec![])
            }),
            expect: |r| matches!(r, Err(BundleError::InvalidCertificate { index: 1, .. })),
        },
        PemCase {
            name: "wrong-certificate-with-trailing-data",
            input: Box::new(|| {
                let mut der = roots(1)[0].to_vec();
                der.extend_from_slice(&[0x05, 0x00]);
                (pem("CERTIFICATE", &der).into_bytes(), vec![])
            }),
            expect: |r| matches!(r, Err(BundleError::InvalidCertificate { index: 0, .. })),
        },
        PemCase {
            name: "wrong-truncated-certificate",
            input: Box::new(|| {
                let der = roots(1)[0].to_vec();
                (
                    pem("CERTIFICATE", &der[..der.len() - 10]).into_bytes(),
                    vec![],
                )
            }),
            expect: |r| matches!(r, Err(BundleError::InvalidCertificate { index: 0, .. })),
        },
        PemCase {
            name: "wrong-certificate-larger-than-max",
            input: Box::new(|| {
                (
                    pem("CERTIFICATE", &vec![0x30; MAX_CERTIFICATE_BYTES + 1]).into_bytes(),
                    vec![],
                )
            }),
            expect: |r| matches!(r, Err(BundleError::CertificateTooLarge { index: 0, len }) if *len == MAX_CERTIFICATE_BYTES + 1),
        },
        PemCase {
            name: "wrong-document-larger-than-max",
            input: Box::new(|| {
                let c = roots(1);
                let mut doc = pem("CERTIFICATE", &c[0]).into_bytes();
                doc.resize(MAX_BUNDLE_BYTES + 1, b'\n');
                (doc, vec![])
            }),
            expect: |r| matches!(r, Err(BundleError::TooLarge { len }) if *len == MAX_BUNDLE_BYTES + 1),
        },
    ]
}

#[test]
fn pem_table() {
    let mut failures = Failures::default();
    for case in pem_cases() {
        let (doc, want) = (case.input)();
        let result = X509Bundle::from_pem(td(), &doc);
        if !(case.expect)(&result) {
            failures.add(case.name, format_args!("got {result:?}"));
            continue;
        }
        if let Ok(bundle) = result {
            if bundle.authorities() != want.as_slice() || bundle.trust_domain().name() != TD {
                failures.add(case.name, "loaded the wrong authorities");
            }
            // A loaded PEM bundle goes through the JWKS format unchanged.
            let again = X509Bundle::from_jwks(td(), bundle.to_jwks().unwrap().as_bytes()).unwrap();
            if again != bundle {
                failures.add(case.name, "changed through JWKS");
            }
        }
    }
    failures.assert_none();
}

#[test]
fn pem_document_of_exactly_max_bytes_is_not_too_large() {
    let c = roots(1);
    let mut doc = pem("CERTIFICATE", &c[0]).into_bytes();
    doc.resize(MAX_BUNDLE_BYTES, b'\n');
    let bundle = X509Bundle::from_pem(td(), &doc).unwrap();
    assert_eq!(bundle.authorities(), c.as_slice());
}

#[test]
fn to_pem_round_trips() {
    let c = roots(3);
    let bundle = X509Bundle::from_authorities(td(), c.clone()).unwrap();
    let again = X509Bundle::from_pem(td(), bundle.to_pem().as_bytes()).unwrap();
    assert_eq!(again, bundle);
    assert_eq!(again.authorities(), c.as_slice());
    // The encoder writes standard PEM: our own encoder agrees byte for byte.
    let ours: String = c.iter().map(|d| pem("CERTIFICATE", d)).collect();
    assert_eq!(bundle.to_pem(), ours);
}

#[test]
fn add_and_remove_authorities() {
    let c = roots(2);
    let mut bundle = X509Bundle::new(td());
    assert!(bundle.is_empty());
    bundle.add_authority(c[0].clone()).unwrap();
    bundle.add_authority(c[0].clone()).unwrap(); // duplicate: no-op
    bundle.add_authority(c[1].clone()).unwrap();
    assert_eq!(bundle.len(), 2);
    assert!(bundle.contains(&c[1]));
    assert!(matches!(
        bundle.add_authority(CertificateDer::from(b"junk".to_vec())),
        Err(BundleError::InvalidCertificate { .. })
    ));
    assert_eq!(bundle.len(), 2, "a rejected authority is not added");

    // Removing an authority stops trusting it (anchors kept in step).
    let ca = TestCa::root(TD);
    bundle.add_authority(ca.root.clone()).unwrap();
    let leaf = ca.leaf(ID);
    let set = |bundle: &X509Bundle| BundleSet::from(bundle.clone());
    client_identity(&leaf.chain, &set(&bundle));
    assert!(bundle.remove_authority(&c[0]));
    assert!(!bundle.remove_authority(&c[0]));
    client_identity(&leaf.chain, &set(&bundle));
    assert!(bundle.remove_authority(&ca.root));
    let err = client_rejection(&leaf.chain, &set(&bundle));
    assert!(
        matches!(err, VerifyError::UntrustedIssuer { .. }),
        "{err:?}"
    );
    assert_eq!(bundle.authorities(), &c[1..]);
}

// ------------------------------------------------------ JWKS emission ----

/// A root of each key type the SPIFFE bundle format carries.
fn algorithms() -> Vec<(&'static str, &'static rcgen::SignatureAlgorithm)> {
    vec![
        ("ec-p256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("ec-p384", &rcgen::PKCS_ECDSA_P384_SHA384),
        ("ed25519", &rcgen::PKCS_ED25519),
        ("rsa-2048", &rcgen::PKCS_RSA_SHA256),
    ]
}

#[test]
fn jwks_round_trip_per_key_type() {
    for (name, alg) in algorithms() {
        let (root, issuer) = root_of(TD, alg);
        let mut bundle = X509Bundle::from_pem(td(), pem("CERTIFICATE", &root).as_bytes()).unwrap();
        bundle.set_sequence(Some(42));
        bundle.set_refresh_hint(Some(Duration::from_secs(300)));
        let json = bundle.to_jwks().unwrap();
        let again =
            X509Bundle::from_jwks(td(), json.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again, bundle, "{name}");
        assert_eq!(again.authorities(), std::slice::from_ref(&root), "{name}");
        assert_eq!(again.sequence(), Some(42), "{name}");
        assert_eq!(
            again.refresh_hint(),
            Some(Duration::from_secs(300)),
            "{name}"
        );
        // And emitting again gives the same document.
        assert_eq!(again.to_jwks().unwrap(), json, "{name}");
        // The bundle loaded from JWKS verifies a leaf this root signed.
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = mtls_testing::leaf_params(ID)
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let set = BundleSet::from(again);
        let peer = verify(
            &[leaf.der().clone()],
            &set,
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Client,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(peer.spiffe_id().as_str(), ID, "{name}");
    }
}

#[test]
fn jwks_emitted_members_match_the_key() {
    for (name, alg) in algorithms() {
        let (root, issuer) = root_of(TD, alg);
        let key = issuer.key();
        let mut bundle = X509Bundle::from_authorities(td(), [root.clone()]).unwrap();
        bundle.set_sequence(Some(7));
        bundle.set_refresh_hint(Some(Duration::from_millis(60_900)));
        let doc: Value = serde_json::from_str(&bundle.to_jwks().unwrap()).unwrap();
        assert_eq!(doc["spiffe_sequence"], json!(7), "{name}");
        assert_eq!(
            doc["spiffe_refresh_hint"],
            json!(60),
            "{name}: whole seconds"
        );
        let keys = doc["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{name}");
        let k = &keys[0];
        assert_eq!(k["use"], "x509-svid", "{name}");
        let x5c = k["x5c"].as_array().unwrap();
        assert_eq!(x5c.len(), 1, "{name}");
        // Standard base64 (with padding), not base64url.
        assert_eq!(
            STANDARD.decode(x5c[0].as_str().unwrap()).unwrap(),
            root.to_vec(),
            "{name}"
        );
        let raw = key.public_key_raw();
        let b64 = |b: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(b));
        match name {
            "ec-p256" | "ec-p384" => {
                let crv = if name == "ec-p256" { "P-256" } else { "P-384" };
                assert_eq!(raw[0], 4, "uncompressed point");
                let (x, y) = raw[1..].split_at((raw.len() - 1) / 2);
                assert_eq!(k["kty"], "EC", "{name}");
                assert_eq!(k["crv"], crv, "{name}");
                assert_eq!(k["x"], b64(x), "{name}");
                assert_eq!(k["y"], b64(y), "{name}");
                assert!(k.get("n").is_none(), "{name}");
            }
            "ed25519" => {
                assert_eq!(k["kty"], "OKP", "{name}");
                assert_eq!(k["crv"], "Ed25519", "{name}");
                assert_eq!(k["x"], b64(raw), "{name}");
                assert!(k.get("y").is_none(), "{name}");
            }
            "rsa-2048" => {
                assert_eq!(k["kty"], "RSA", "{name}");
                assert_eq!(k["e"], "AQAB", "{name}");
                let n = URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap();
                assert_eq!(n.len(), 256, "{name}: no leading zero byte");
                assert!(n[0] & 0x80 != 0, "{name}");
                assert!(k.get("crv").is_none(), "{name}");
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn jwks_emits_no_optional_members_when_unset() {
    let bundle = X509Bundle::new(td());
    let doc: Value = serde_json::from_str(&bundle.to_jwks().unwrap()).unwrap();
    assert_eq!(doc, json!({ "keys": [] }));
}

#[test]
fn jwks_empty_keys_trusts_nothing() {
    let ca = TestCa::root(TD);
    let leaf = ca.leaf(ID);
    let bundle = X509Bundle::from_jwks(td(), br#"{"keys": []}"#).unwrap();
    assert!(bundle.is_empty());
    let set = BundleSet::from(bundle);
    let err = client_rejection(&leaf.chain, &set);
    assert!(
        matches!(&err, VerifyError::UntrustedIssuer { id, trust_domain } if id.as_str() == ID && trust_domain.name() == TD),
        "{err:?}"
    );
}

#[test]
fn jwks_bundle_verifies_leaves() {
    let ca = TestCa::root(TD);
    let json = ca.bundle().to_jwks().unwrap();
    let set = BundleSet::from(X509Bundle::from_jwks(td(), json.as_bytes()).unwrap());
    let peer = verify(
        &ca.leaf(ID).chain,
        &set,
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Server,
    )
    .unwrap();
    assert_eq!(peer.spiffe_id().as_str(), ID);
}

#[test]
fn jwks_jwt_svid_entries_are_kept_and_re_emitted() {
    let ca = TestCa::root(TD);
    let jwt = json!({
        "use": "jwt-svid",
        "kty": "EC",
        "kid": "C6vs25welZOx6WksNYfbMfiw9l96pMnD",
        "crv": "P-256",
        "x": "ngLYQnlfF6GsojUwqtcEE3WgTNG2RUlsGhK73RNEl5k",
        "y": "tKbiDSUSsQ3F1P7wteeHNXIcU-cx6CgSbroeQrQHTLM",
        "extra_member": { "nested": [1, 2, 3] }
    });
    let doc = json!({
        "keys": [jwt.clone(), x509_key(&STANDARD.encode(&ca.root))],
        "spiffe_sequence": 3
    });
    let bundle = X509Bundle::from_jwks(td(), doc.to_string().as_bytes()).unwrap();
    assert_eq!(bundle.authorities(), std::slice::from_ref(&ca.root));
    let out: Value = serde_json::from_str(&bundle.to_jwks().unwrap()).unwrap();
    let keys = out["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.contains(&jwt),
        "the jwt-svid entry is re-emitted unchanged: {out}"
    );
    assert_eq!(out["spiffe_sequence"], json!(3));
    let again = X509Bundle::from_jwks(td(), out.to_string().as_bytes()).unwrap();
    assert_eq!(again, bundle);
}

// ------------------------------------------------------- JWKS parsing ----

struct JwksCase {
    name: &'static str,
    /// Builds the document from a valid root certificate in standard base64.
    doc: fn(&str) -> Vec<u8>,
    expect: fn(&Result<X509Bundle, BundleError>) -> bool,
}

fn s(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// An `x509-svid` entry for the certificate `b64`: complete (`kty`, `crv`,
/// `x`, `y` matching the certificate, as RFC 7517 section 4.7 asks) when
/// `b64` is a certificate, else the bare minimum around `b64`.
fn x509_key(b64: &str) -> Value {
    let bare = json!({ "use": "x509-svid", "kty": "EC", "x5c": [b64] });
    let Ok(der) = STANDARD.decode(b64) else {
        return bare;
    };
    let Ok(bundle) = X509Bundle::from_authorities(td(), [CertificateDer::from(der)]) else {
        return bare;
    };
    let doc: Value = serde_json::from_str(&bundle.to_jwks().unwrap()).unwrap();
    doc["keys"][0].clone()
}

fn json_err(r: &Result<X509Bundle, BundleError>) -> bool {
    matches!(r, Err(BundleError::Json { reason }) if !reason.is_empty())
}

fn invalid_key_0(r: &Result<X509Bundle, BundleError>) -> bool {
    matches!(r, Err(BundleError::InvalidKey { index: 0, reason }) if !reason.is_empty())
}

fn one_authority(r: &Result<X509Bundle, BundleError>) -> bool {
    matches!(r, Ok(b) if b.len() == 1)
}

fn empty_bundle(r: &Result<X509Bundle, BundleError>) -> bool {
    matches!(r, Ok(b) if b.is_empty())
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

fn jwks_cases() -> Vec<JwksCase> {
    vec![
        // Valid documents.
        JwksCase {
            name: "valid-one-authority",
            doc: |c| s(json!({ "keys": [x509_key(c)] })),
            expect: one_authority,
        },
        JwksCase {
            name: "valid-empty-keys",
            doc: |_| s(json!({ "keys": [] })),
            expect: empty_bundle,
        },
        JwksCase {
            name: "valid-duplicate-authority-ignored",
            doc: |c| s(json!({ "keys": [x509_key(c), x509_key(c)] })),
            expect: one_authority,
        },
        JwksCase {
            name: "valid-unknown-use-ignored",
            doc: |c| {
                s(
                    json!({ "keys": [{ "use": "tls-sig", "kty": "EC", "x5c": ["!!garbage!!"] }, x509_key(c)] }),
                )
            },
            expect: one_authority,
        },
        JwksCase {
            name: "valid-missing-use-ignored",
            doc: |_| s(json!({ "keys": [{ "kty": "EC", "x5c": [] }] })),
            expect: empty_bundle,
        },
        JwksCase {
            name: "valid-unknown-kty-ignored",
            doc: |c| {
                s(json!({ "keys": [{ "use": "x509-svid", "kty": "oct", "x5c": [] }, x509_key(c)] }))
            },
            expect: one_authority,
        },
        JwksCase {
            name: "valid-jwt-svid-entry-not-an-authority",
            doc: |_| s(json!({ "keys": [{ "use": "jwt-svid", "kty": "EC", "kid": "k" }] })),
            expect: empty_bundle,
        },
        JwksCase {
            name: "valid-unknown-top-level-members-ignored",
            doc: |c| s(json!({ "keys": [x509_key(c)], "spiffe_other": { "a": [1, {"b": null}] } })),
            expect: one_authority,
        },
        JwksCase {
            name: "valid-sequence-and-refresh-hint-kept",
            doc: |c| {
                s(
                    json!({ "keys": [x509_key(c)], "spiffe_sequence": 12345, "spiffe_refresh_hint": 60 }),
                )
            },
            expect: |r| matches!(r, Ok(b) if b.sequence() == Some(12345) && b.refresh_hint() == Some(Duration::from_secs(60))),
        },
        JwksCase {
            name: "valid-sequence-max-u64",
            doc: |_| format!(r#"{{"keys": [], "spiffe_sequence": {}}}"#, u64::MAX).into_bytes(),
            expect: |r| matches!(r, Ok(b) if b.sequence() == Some(u64::MAX)),
        },
        JwksCase {
            name: "valid-sequence-zero",
            doc: |_| s(json!({ "keys": [], "spiffe_sequence": 0, "spiffe_refresh_hint": 0 })),
            expect: |r| matches!(r, Ok(b) if b.sequence() == Some(0) && b.refresh_hint() == Some(Duration::ZERO)),
        },
        JwksCase {
            name: "valid-no-sequence-no-hint",
            doc: |_| s(json!({ "keys": [] })),
            expect: |r| matches!(r, Ok(b) if b.sequence().is_none() && b.refresh_hint().is_none()),
        },
        // Document shape.
        JwksCase {
            name: "wrong-missing-keys",
            doc: |_| s(json!({ "spiffe_sequence": 1 })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-keys-null",
            doc: |_| s(json!({ "keys": null })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-keys-number",
            doc: |_| s(json!({ "keys": 3 })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-keys-object",
            doc: |c| s(json!({ "keys": { "0": x509_key(c) } })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-keys-string",
            doc: |_| s(json!({ "keys": "[]" })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-document-is-an-array",
            doc: |c| s(json!([x509_key(c)])),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-document-is-a-string",
            doc: |_| s(json!("keys")),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-document-empty",
            doc: |_| Vec::new(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-document-truncated",
            doc: |c| s(json!({ "keys": [x509_key(c)] })).split_at(40).0.to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-trailing-garbage",
            doc: |_| br#"{"keys": []} {"keys": []}"#.to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-non-utf8-in-string",
            doc: |_| b"{\"keys\": [], \"x\": \"\xff\xfe\"}".to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-non-utf8-bytes",
            doc: |_| b"\xff\xfe{\"keys\": []}".to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-utf16-document",
            doc: |_| {
                "{\"keys\": []}"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect()
            },
            expect: json_err,
        },
        // Key entries.
        JwksCase {
            name: "wrong-key-entry-number",
            doc: |_| s(json!({ "keys": [1] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-key-entry-string",
            doc: |c| s(json!({ "keys": [c] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-key-entry-array",
            doc: |c| s(json!({ "keys": [[x509_key(c)]] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-key-entry-null",
            doc: |_| s(json!({ "keys": [null] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-second-key-entry-index-1",
            doc: |c| s(json!({ "keys": [x509_key(c), 7] })),
            expect: |r| matches!(r, Err(BundleError::InvalidKey { index: 1, .. })),
        },
        JwksCase {
            name: "valid-x5c-empty-entry-ignored-x509-svid-6-2",
            doc: |_| s(json!({ "keys": [{ "use": "x509-svid", "kty": "EC", "x5c": [] }] })),
            expect: empty_bundle,
        },
        JwksCase {
            name: "valid-x5c-only-first-cert-used-x509-svid-6-2",
            doc: |c| {
                s(
                    json!({ "keys": [{ "use": "x509-svid", "kty": "EC", "x5c": [c, "!!not even base64!!"] }] }),
                )
            },
            expect: one_authority,
        },
        JwksCase {
            name: "valid-x5c-missing-entry-ignored-x509-svid-6-2",
            doc: |_| s(json!({ "keys": [{ "use": "x509-svid", "kty": "EC" }] })),
            expect: empty_bundle,
        },
        JwksCase {
            name: "wrong-x5c-not-an-array",
            doc: |c| s(json!({ "keys": [{ "use": "x509-svid", "kty": "EC", "x5c": c }] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-x5c-entry-not-a-string",
            doc: |_| s(json!({ "keys": [{ "use": "x509-svid", "kty": "EC", "x5c": [42] }] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-x5c-not-base64",
            doc: |_| s(json!({ "keys": [x509_key("not base64 at all!")] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-x5c-base64-with-line-breaks",
            doc: |c| {
                let broken = format!("{}\n{}", &c[..64], &c[64..]);
                s(json!({ "keys": [x509_key(&broken)] }))
            },
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-x5c-base64-of-garbage",
            doc: |_| {
                s(json!({ "keys": [x509_key(&STANDARD.encode(b"this is not a certificate"))] }))
            },
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-x5c-base64-of-a-private-key",
            doc: |_| {
                s(
                    json!({ "keys": [x509_key(&STANDARD.encode(KeyPair::generate().unwrap().serialize_der()))] }),
                )
            },
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-x5c-empty-string",
            doc: |_| s(json!({ "keys": [x509_key("")] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-kty-missing-for-x509-svid",
            doc: |c| s(json!({ "keys": [{ "use": "x509-svid", "x5c": [c] }] })),
            expect: invalid_key_0,
        },
        JwksCase {
            name: "wrong-kty-not-a-string",
            doc: |c| s(json!({ "keys": [{ "use": "x509-svid", "kty": 1, "x5c": [c] }] })),
            expect: invalid_key_0,
        },
        // spiffe_sequence and spiffe_refresh_hint.
        JwksCase {
            name: "wrong-sequence-negative",
            doc: |_| s(json!({ "keys": [], "spiffe_sequence": -1 })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-sequence-fraction",
            doc: |_| br#"{"keys": [], "spiffe_sequence": 1.5}"#.to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-sequence-float-notation",
            doc: |_| br#"{"keys": [], "spiffe_sequence": 1e3}"#.to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-sequence-string",
            doc: |_| s(json!({ "keys": [], "spiffe_sequence": "1" })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-sequence-bool",
            doc: |_| s(json!({ "keys": [], "spiffe_sequence": true })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-sequence-above-u64",
            doc: |_| br#"{"keys": [], "spiffe_sequence": 18446744073709551616}"#.to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-refresh-hint-negative",
            doc: |_| s(json!({ "keys": [], "spiffe_refresh_hint": -60 })),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-refresh-hint-fraction",
            doc: |_| br#"{"keys": [], "spiffe_refresh_hint": 0.5}"#.to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-refresh-hint-string",
            doc: |_| s(json!({ "keys": [], "spiffe_refresh_hint": "60s" })),
            expect: json_err,
        },
        // Duplicate member names (the bundle spec says reject).
        JwksCase {
            name: "wrong-duplicate-keys-member",
            doc: |c| format!(r#"{{"keys": [], "keys": [{}]}}"#, x509_key(c)).into_bytes(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-duplicate-keys-member-escaped",
            doc: |c| format!(r#"{{"keys": [{}], "k\u0065ys": []}}"#, x509_key(c)).into_bytes(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-duplicate-use-in-key",
            doc: |c| {
                format!(r#"{{"keys": [{{"use": "jwt-svid", "use": "x509-svid", "kty": "EC", "x5c": ["{c}"]}}]}}"#).into_bytes()
            },
            expect: json_err,
        },
        JwksCase {
            name: "wrong-duplicate-x5c-in-key",
            doc: |c| {
                format!(r#"{{"keys": [{{"use": "x509-svid", "kty": "EC", "x5c": ["{c}"], "x5c": []}}]}}"#).into_bytes()
            },
            expect: json_err,
        },
        JwksCase {
            name: "wrong-duplicate-sequence",
            doc: |_| br#"{"keys": [], "spiffe_sequence": 1, "spiffe_sequence": 2}"#.to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-duplicate-in-unknown-nested-member",
            doc: |_| br#"{"keys": [], "other": [{"a": {"b": 1, "b": 2}}]}"#.to_vec(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-duplicate-in-ignored-key-entry",
            doc: |_| br#"{"keys": [{"use": "unknown", "kid": "a", "kid": "b"}]}"#.to_vec(),
            expect: json_err,
        },
        // Nesting: an error, never a stack overflow.
        JwksCase {
            name: "wrong-10000-nested-arrays-in-unknown-member",
            doc: |_| format!(r#"{{"keys": [], "x": {}}}"#, nested("[", "]", 10_000)).into_bytes(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-10000-nested-objects-in-unknown-member",
            doc: |_| {
                format!(
                    r#"{{"keys": [], "x": {}1{}}}"#,
                    r#"{"a":"#.repeat(10_000),
                    "}".repeat(10_000)
                )
                .into_bytes()
            },
            expect: json_err,
        },
        JwksCase {
            name: "wrong-10000-nested-arrays-in-keys",
            doc: |_| format!(r#"{{"keys": {}}}"#, nested("[", "]", 10_000)).into_bytes(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-100000-nested-arrays-unterminated",
            doc: |_| "[".repeat(100_000).into_bytes(),
            expect: json_err,
        },
        JwksCase {
            name: "wrong-document-larger-than-max",
            doc: |_| {
                let mut doc = br#"{"keys": []}"#.to_vec();
                doc.resize(MAX_BUNDLE_BYTES + 1, b' ');
                doc
            },
            expect: |r| matches!(r, Err(BundleError::TooLarge { len }) if *len == MAX_BUNDLE_BYTES + 1),
        },
    ]
}

#[test]
fn jwks_table() {
    let root = TestCa::root(TD).root;
    let b64 = STANDARD.encode(&root);
    let mut failures = Failures::default();
    for case in jwks_cases() {
        let doc = (case.doc)(&b64);
        // Run each case on a small stack: deep nesting must fail by a
        // depth limit, not by luck with the main thread's stack.
        let result = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || X509Bundle::from_jwks(td(), &doc))
            .unwrap()
            .join();
        let Ok(result) = result else {
            failures.add(case.name, "panicked");
            continue;
        };
        if !(case.expect)(&result) {
            failures.add(case.name, format_args!("got {result:?}"));
            continue;
        }
        if let Ok(bundle) = &result {
            if !bundle.is_empty() && bundle.authorities() != [root.clone()] {
                failures.add(case.name, "loaded the wrong authority");
            }
        }
    }
    failures.assert_none();
}

#[test]
fn from_pem_or_jwks_detects_the_format() {
    let ca = TestCa::root(TD);
    let mut bundle = ca.bundle();
    bundle.set_sequence(Some(9));
    let jwks = bundle.to_jwks().unwrap();
    let pem_doc = bundle.to_pem();

    let from_json = X509Bundle::from_pem_or_jwks(td(), jwks.as_bytes()).unwrap();
    assert_eq!(from_json, bundle);
    let padded = format!(" \r\n\t{jwks}");
    assert_eq!(
        X509Bundle::from_pem_or_jwks(td(), padded.as_bytes()).unwrap(),
        bundle
    );
    let from_pem = X509Bundle::from_pem_or_jwks(td(), pem_doc.as_bytes()).unwrap();
    assert_eq!(from_pem.authorities(), bundle.authorities());
    assert_eq!(from_pem.sequence(), None);

    assert!(matches!(
        X509Bundle::from_pem_or_jwks(td(), b"  {\"keys\": 1}"),
        Err(BundleError::Json { .. })
    ));
    assert!(matches!(
        X509Bundle::from_pem_or_jwks(td(), b""),
        Err(BundleError::NoCertificates { .. })
    ));
    assert!(matches!(
        X509Bundle::from_pem_or_jwks(td(), b"   "),
        Err(BundleError::NoCertificates { .. })
    ));
    assert!(matches!(
        X509Bundle::from_pem_or_jwks(td(), br#"{"keys": []}"#),
        Ok(b) if b.is_empty()
    ));
}

// -------------------------------------------------------- BundleSet ----

#[test]
fn bundle_set_from_bundles_rejects_two_bundles_of_one_trust_domain() {
    let a1 = TestCa::root("a.example").bundle();
    let a2 = TestCa::root("a.example").bundle();
    let b = TestCa::root("b.example").bundle();
    let err = BundleSet::from_bundles([a1.clone(), b.clone(), a2]).unwrap_err();
    assert!(
        matches!(&err, BundleError::DuplicateTrustDomain { trust_domain } if trust_domain.name() == "a.example"),
        "{err:?}"
    );
    // Even two identical bundles: never merged, so never silently deduplicated.
    assert!(matches!(
        BundleSet::from_bundles([b.clone(), b.clone()]),
        Err(BundleError::DuplicateTrustDomain { .. })
    ));
    let set = BundleSet::from_bundles([a1, b]).unwrap();
    assert_eq!(set.len(), 2);
    let mut tds: Vec<_> = set.trust_domains().map(|t| t.name().to_owned()).collect();
    tds.sort();
    assert_eq!(tds, ["a.example", "b.example"]);
    assert!(BundleSet::from_bundles([]).unwrap().is_empty());
}

#[test]
fn bundle_set_insert_get_remove_contains_by_str() {
    let old = TestCa::root("a.example").bundle();
    let new = TestCa::root("a.example").bundle();
    let mut set = BundleSet::new();
    assert!(set.is_empty());
    assert!(set.insert(old.clone()).is_none());
    let snapshot = set.clone();
    // Insert replaces, returning the previous bundle of that trust domain.
    assert_eq!(set.insert(new.clone()), Some(old.clone()));
    assert_eq!(set.len(), 1);
    assert_eq!(set.get("a.example"), Some(&new));
    // Clones are copy-on-write: the snapshot still holds the old bundle.
    assert_eq!(snapshot.get("a.example"), Some(&old));
    assert!(set.contains("a.example"));
    assert!(!set.contains("b.example"));
    assert!(!set.contains("A.example"));
    assert!(!set.contains("spiffe://a.example"));
    assert!(set.get("a.example.").is_none());
    assert!(set.remove("b.example").is_none());
    assert_eq!(set.remove("a.example"), Some(new));
    assert!(!set.contains("a.example"));
    assert!(set.is_empty());
}

#[test]
fn bundle_set_never_merges_trust_domains() {
    let ca_a = TestCa::root("a.example");
    let ca_b = TestCa::root("b.example");
    // A leaf claiming b.example, signed by a.example's CA.
    let forged = ca_a.leaf("spiffe://b.example/workload");
    let genuine = ca_b.leaf("spiffe://b.example/workload");
    let now = SystemTime::now();
    let crls = CrlSet::new();

    let both = BundleSet::from_bundles([ca_a.bundle(), ca_b.bundle()]).unwrap();
    let err = verify(&forged.chain, &both, now, &crls, PeerRole::Client).unwrap_err();
    assert!(
        matches!(&err, VerifyError::UntrustedIssuer { trust_domain, .. } if trust_domain.name() == "b.example"),
        "{err:?}"
    );
    verify(&genuine.chain, &both, now, &crls, PeerRole::Client).unwrap();

    // Only a.example loaded: no bundle for b.example at all.
    let only_a = ca_a.bundle_set();
    let err = verify(&forged.chain, &only_a, now, &crls, PeerRole::Client).unwrap_err();
    assert!(
        matches!(&err, VerifyError::NoBundle { trust_domain, .. } if trust_domain.name() == "b.example"),
        "{err:?}"
    );

    // Control: the forged leaf does verify once a.example's root is placed
    // in b.example's own bundle, so the failure above is the separation.
    let mut b_bundle = ca_b.bundle();
    b_bundle.add_authority(ca_a.root.clone()).unwrap();
    let merged_by_hand = BundleSet::from_bundles([ca_a.bundle(), b_bundle]).unwrap();
    verify(&forged.chain, &merged_by_hand, now, &crls, PeerRole::Client).unwrap();
}

// -------------------------------------------------------------- CRL ----

struct CrlCase {
    name: &'static str,
    input: fn(&[u8]) -> Vec<u8>,
    load: fn(&[u8]) -> Result<CrlSet, CrlError>,
    expect: fn(&Result<CrlSet, CrlError>) -> bool,
}

fn from_pem(b: &[u8]) -> Result<CrlSet, CrlError> {
    CrlSet::from_pem(b)
}

fn from_either(b: &[u8]) -> Result<CrlSet, CrlError> {
    CrlSet::from_pem_or_der(b)
}

fn crls(n: usize) -> fn(&Result<CrlSet, CrlError>) -> bool {
    match n {
        1 => |r| matches!(r, Ok(s) if s.len() == 1),
        2 => |r| matches!(r, Ok(s) if s.len() == 2),
        _ => unreachable!(),
    }
}

fn crl_cases() -> Vec<CrlCase> {
    vec![
        CrlCase {
            name: "valid-pem",
            input: |d| pem("X509 CRL", d).into_bytes(),
            load: from_pem,
            expect: crls(1),
        },
        CrlCase {
            name: "valid-pem-via-from-pem-or-der",
            input: |d| pem("X509 CRL", d).into_bytes(),
            load: from_either,
            expect: crls(1),
        },
        CrlCase {
            name: "valid-der-via-from-pem-or-der",
            input: <[u8]>::to_vec,
            load: from_either,
            expect: crls(1),
        },
        CrlCase {
            name: "valid-two-pem-blocks-and-a-certificate-skipped",
            input: |d| {
                let cert = TestCa::root(TD).root;
                format!(
                    "{}{}{}",
                    pem("X509 CRL", d),
                    pem("CERTIFICATE", &cert),
                    pem("X509 CRL", d)
                )
                .into_bytes()
            },
            load: from_pem,
            expect: crls(2),
        },
        CrlCase {
            name: "wrong-empty",
            input: |_| Vec::new(),
            load: from_pem,
            expect: |r| matches!(r, Err(CrlError::NoCrl)),
        },
        CrlCase {
            name: "wrong-empty-either",
            input: |_| Vec::new(),
            load: from_either,
            expect: |r| matches!(r, Err(CrlError::NoCrl)),
        },
        CrlCase {
            name: "wrong-pem-without-crl",
            input: |_| pem("CERTIFICATE", &TestCa::root(TD).root).into_bytes(),
            load: from_either,
            expect: |r| matches!(r, Err(CrlError::NoCrl)),
        },
        CrlCase {
            name: "wrong-garbage-between-markers",
            input: |_| b"-----BEGIN X509 CRL-----\n%%%%\n-----END X509 CRL-----\n".to_vec(),
            load: from_pem,
            expect: |r| matches!(r, Err(CrlError::Pem { .. })),
        },
        CrlCase {
            name: "wrong-garbage-der",
            input: |_| vec![0x30, 0x03, 0x02, 0x01, 0x00],
            load: from_either,
            expect: |r| matches!(r, Err(CrlError::Invalid { index: 0, .. })),
        },
        CrlCase {
            name: "wrong-truncated-der",
            input: |d| d[..d.len() - 1].to_vec(),
            load: from_either,
            expect: |r| matches!(r, Err(CrlError::Invalid { index: 0, .. })),
        },
        CrlCase {
            name: "wrong-certificate-der-as-crl",
            input: |_| TestCa::root(TD).root.to_vec(),
            load: from_either,
            expect: |r| matches!(r, Err(CrlError::Invalid { index: 0, .. })),
        },
        CrlCase {
            name: "wrong-crl-block-holds-a-certificate",
            input: |_| pem("X509 CRL", &TestCa::root(TD).root).into_bytes(),
            load: from_pem,
            expect: |r| matches!(r, Err(CrlError::Invalid { index: 0, .. })),
        },
        CrlCase {
            name: "wrong-second-crl-invalid-index-1",
            input: |d| {
                format!("{}{}", pem("X509 CRL", d), pem("X509 CRL", b"\x30\x00")).into_bytes()
            },
            load: from_pem,
            expect: |r| matches!(r, Err(CrlError::Invalid { index: 1, .. })),
        },
        CrlCase {
            name: "wrong-document-larger-than-max",
            input: |d| {
                let mut doc = pem("X509 CRL", d).into_bytes();
                doc.resize(MAX_CRL_BYTES + 1, b'\n');
                doc
            },
            load: from_pem,
            expect: |r| matches!(r, Err(CrlError::TooLarge { len }) if *len == MAX_CRL_BYTES + 1),
        },
        CrlCase {
            name: "wrong-der-larger-than-max",
            input: |_| {
                let mut doc = vec![0x30];
                doc.resize(MAX_CRL_BYTES + 1, 0);
                doc
            },
            load: from_either,
            expect: |r| matches!(r, Err(CrlError::TooLarge { .. })),
        },
    ]
}

#[test]
fn crl_table() {
    let ca = TestCa::root(TD);
    let der = ca.crl(&[]).ders()[0].to_vec();
    let mut failures = Failures::default();
    for case in crl_cases() {
        let result = (case.load)(&(case.input)(&der));
        if !(case.expect)(&result) {
            failures.add(case.name, format_args!("got {result:?}"));
        }
    }
    failures.assert_none();
}

#[test]
fn crl_loaded_from_pem_or_der_revokes() {
    let ca = TestCa::root(TD);
    let revoked = ca.leaf(ID);
    let kept = ca.leaf("spiffe://example.org/service/other");
    let der = ca.crl(&[&revoked.serial]).ders()[0].to_vec();
    let bundles = ca.bundle_set();
    let now = SystemTime::now();
    for (name, set) in [
        (
            "pem",
            CrlSet::from_pem(pem("X509 CRL", &der).as_bytes()).unwrap(),
        ),
        ("der", CrlSet::from_pem_or_der(&der).unwrap()),
    ] {
        assert_eq!(set.ders()[0].as_ref(), der.as_slice(), "{name}");
        let err = verify(&revoked.chain, &bundles, now, &set, PeerRole::Client).unwrap_err();
        assert!(
            matches!(err, VerifyError::Revoked { .. }),
            "{name}: {err:?}"
        );
        verify(&kept.chain, &bundles, now, &set, PeerRole::Client).unwrap();
    }
}

// ------------------------------------------- authorities must be CAs ----

/// What `NotAnAuthority` says about a refused document.
fn not_an_authority(
    r: &Result<X509Bundle, BundleError>,
) -> Option<(usize, String, Option<String>)> {
    match r {
        Err(BundleError::NotAnAuthority {
            index,
            subject,
            spiffe_id,
            ..
        }) => Some((*index, subject.clone(), spiffe_id.clone())),
        _ => None,
    }
}

/// Issue 11, item 5: a leaf SVID pasted into a bundle (a bundle path
/// pointed at `svid.pem`, a chain pasted into `ca.crt`) must not become a
/// trust anchor, or whoever holds the leaf's key mints any identity.
#[test]
fn bug_a_leaf_in_a_bundle_is_refused_whole() {
    let ca = TestCa::root(TD);
    let leaf = ca.leaf(ID);

    // The whole SVID file (leaf, then nothing) as a bundle.
    let svid_pem = pem("CERTIFICATE", &leaf.chain[0]);
    let r = X509Bundle::from_pem(td(), svid_pem.as_bytes());
    let (index, _, id) = not_an_authority(&r).unwrap_or_else(|| panic!("{r:?}"));
    assert_eq!(index, 0);
    assert_eq!(id.as_deref(), Some(ID));
    let message = r.unwrap_err().to_string();
    assert!(message.contains(ID) && message.contains("#0"), "{message}");
    assert!(message.contains("cA is false"), "{message}");

    // The real root first, then a leaf: refused whole, naming the leaf.
    let doc = pem("CERTIFICATE", &ca.root) + &svid_pem;
    let r = X509Bundle::from_pem(td(), doc.as_bytes());
    assert_eq!(not_an_authority(&r).map(|(i, ..)| i), Some(1), "{r:?}");

    // A leaf in the SPIFFE bundle format, as the second `keys` entry.
    let doc = json!({"keys": [
        x509_key(&STANDARD.encode(&ca.root)),
        x509_key(&STANDARD.encode(&leaf.chain[0])),
    ]});
    let r = X509Bundle::from_jwks(td(), &s(doc));
    assert_eq!(not_an_authority(&r).map(|(i, ..)| i), Some(1), "{r:?}");

    // Added one by one, or from DER.
    let mut bundle = ca.bundle();
    assert!(not_an_authority(
        &bundle
            .add_authority(leaf.chain[0].clone())
            .map(|()| ca.bundle())
    )
    .is_some());
    assert_eq!(bundle.len(), 1, "a refused authority is not added");
    let r = X509Bundle::from_authorities(td(), [leaf.chain[0].clone()]);
    assert!(not_an_authority(&r).is_some(), "{r:?}");

    // Before the fix the leaf became an anchor: a certificate it signed
    // verified. Now the bundle never exists, so nothing verifies against it.
    let fake_root = TestCa::root_with(TD, |p| {
        p.is_ca = rcgen::IsCa::ExplicitNoCa;
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    });
    let forged = fake_root.leaf("spiffe://example.org/admin");
    assert!(X509Bundle::from_authorities(td(), [fake_root.root.clone()]).is_err());
    let honest = BundleSet::from(ca.bundle());
    client_rejection(&forged.chain, &honest);
}

#[test]
fn bundle_authorities_need_ca_true_and_key_cert_sign_when_key_usage_is_present() {
    // No basicConstraints at all.
    let no_bc = TestCa::root_with(TD, |p| p.is_ca = rcgen::IsCa::NoCa);
    let r = X509Bundle::from_authorities(td(), [no_bc.root.clone()]);
    let (_, subject, id) = not_an_authority(&r).unwrap_or_else(|| panic!("{r:?}"));
    assert!(subject.contains("test CA example.org"), "{subject}");
    assert_eq!(id.as_deref(), Some("spiffe://example.org"));
    assert!(r.unwrap_err().to_string().contains("no basicConstraints"));

    // cA true, but keyUsage without keyCertSign.
    let no_cert_sign = TestCa::root_with(TD, |p| {
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ]
    });
    let r = X509Bundle::from_authorities(td(), [no_cert_sign.root.clone()]);
    assert!(not_an_authority(&r).is_some(), "{r:?}");
    assert!(r.unwrap_err().to_string().contains("keyCertSign"));

    // cA true and no keyUsage at all (some long-lived enterprise roots):
    // accepted, as RFC 5280 allows.
    let no_ku = TestCa::root_with(TD, |p| p.key_usages = Vec::new());
    let bundle = X509Bundle::from_authorities(td(), [no_ku.root.clone()]).unwrap();
    assert_eq!(bundle.len(), 1);

    // An intermediate CA is a valid authority too.
    let ca = TestCa::root(TD);
    let inter = ca.intermediate();
    assert!(X509Bundle::from_authorities(td(), [inter.cert.clone()]).is_ok());
}

// ------------------------------------------- SPIFFE bundle, JWT keys ----

/// The P-256 key of RFC 7517 appendix A.1.
const EC_X: &str = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
const EC_Y: &str = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";
/// The 2048-bit RSA key of RFC 7517 appendix A.1.
const RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
const RSA_E: &str = "AQAB";

fn jwt_ec(kid: &str) -> Value {
    json!({ "use": "jwt-svid", "kty": "EC", "kid": kid, "crv": "P-256", "x": EC_X, "y": EC_Y })
}

fn jwt_rsa(kid: &str) -> Value {
    json!({ "use": "jwt-svid", "kty": "RSA", "kid": kid, "n": RSA_N, "e": RSA_E, "alg": "RS256" })
}

/// A document with an X.509 authority, an EC P-256 and an RSA JWT key.
fn spiffe_doc(root: &CertificateDer<'_>) -> Value {
    json!({
        "keys": [x509_key(&STANDARD.encode(root)), jwt_ec("ec-1"), jwt_rsa("rsa-1")],
        "spiffe_sequence": 12,
        "spiffe_refresh_hint": 300
    })
}

#[test]
fn spiffe_bundle_reads_x509_and_jwt_authorities() {
    let ca = TestCa::root(TD);
    let bundle = SpiffeBundle::from_jwks(td(), &s(spiffe_doc(&ca.root))).unwrap();
    assert_eq!(bundle.trust_domain(), &td());
    assert_eq!(bundle.x509().authorities(), std::slice::from_ref(&ca.root));
    assert_eq!(bundle.sequence(), Some(12));
    assert_eq!(bundle.refresh_hint(), Some(Duration::from_secs(300)));
    assert_eq!(bundle.jwt_authorities().len(), 2);

    let ec = bundle.jwt_authority("ec-1").unwrap();
    assert_eq!(ec.key_type(), JwtKeyType::EcP256);
    assert_eq!(ec.algorithm(), None);
    let (x, y) = ec.ec_coordinates().unwrap();
    assert_eq!(x, URL_SAFE_NO_PAD.decode(EC_X).unwrap());
    assert_eq!(y, URL_SAFE_NO_PAD.decode(EC_Y).unwrap());
    assert_eq!(ec.public_key()[0], 0x04);
    assert_eq!(&ec.public_key()[1..33], x);

    let rsa = bundle.jwt_authority("rsa-1").unwrap();
    assert_eq!(rsa.key_type(), JwtKeyType::Rsa);
    assert_eq!(rsa.algorithm(), Some("RS256"));
    let (n, e) = rsa.rsa_components().unwrap();
    assert_eq!(n.len(), 256);
    assert_eq!(e, [1, 0, 1]);

    // The SubjectPublicKeyInfo of each key parses, and as an acceptable
    // key (RSA 2048, EC P-256): the same parser that reads certificates.
    for key in bundle.jwt_authorities() {
        check_svid_public_key(key.subject_public_key_info().as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", key.key_id()));
    }
    assert!(bundle.jwt_authority("missing").is_none());
}

#[test]
fn spiffe_bundle_round_trips_with_jwt_keys() {
    let ca = TestCa::root(TD);
    let bundle = SpiffeBundle::from_jwks(td(), &s(spiffe_doc(&ca.root))).unwrap();
    let emitted = bundle.to_jwks().unwrap();
    let again = SpiffeBundle::from_jwks(td(), emitted.as_bytes()).unwrap();
    assert_eq!(again, bundle);
    assert_eq!(again.to_jwks().unwrap(), emitted, "emission is stable");

    // The emitted JWT entries are the JWK members, nothing else.
    let doc: Value = serde_json::from_str(&emitted).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[1], jwt_ec("ec-1"));
    assert_eq!(keys[2], jwt_rsa("rsa-1"));

    // Built from parts, with a P-384 key and an RSA modulus given with a
    // leading zero byte (dropped), it round-trips too.
    let mut n = vec![0u8];
    n.extend(URL_SAFE_NO_PAD.decode(RSA_N).unwrap());
    let p384 = JwtKey::ec(
        "p384",
        JwtKeyType::EcP384,
        &URL_SAFE_NO_PAD.encode([7u8; 48]),
        &URL_SAFE_NO_PAD.encode([9u8; 48]),
    )
    .unwrap()
    .with_algorithm("ES384")
    .unwrap();
    let rsa = JwtKey::rsa("rsa", &URL_SAFE_NO_PAD.encode(&n), RSA_E).unwrap();
    assert_eq!(rsa.rsa_components().unwrap().0.len(), 256);
    let mut built = SpiffeBundle::from_parts(ca.bundle(), [p384, rsa]).unwrap();
    built.set_sequence(Some(1));
    let again = SpiffeBundle::from_jwks(td(), built.to_jwks().unwrap().as_bytes()).unwrap();
    assert_eq!(again, built);

    // The X.509 view carries the authorities, sequence and hint, no JWT key.
    let x509 = X509Bundle::from(built.clone());
    assert_eq!(&x509, built.x509());
    let view: Value = serde_json::from_str(&x509.to_jwks().unwrap()).unwrap();
    assert_eq!(view["keys"].as_array().unwrap().len(), 1);
    assert_eq!(view["spiffe_sequence"], json!(1));
    // An empty bundle round-trips as well.
    let empty = SpiffeBundle::new(td());
    assert!(empty.is_empty());
    assert_eq!(
        SpiffeBundle::from_jwks(td(), empty.to_jwks().unwrap().as_bytes()).unwrap(),
        empty
    );
}

#[test]
fn spiffe_bundle_jwt_key_verifies_a_signature_of_its_private_key() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::SignatureScheme;

    let pair = KeyPair::generate().unwrap(); // ECDSA P-256
    let point = pair.public_key_raw();
    let (x, y) = point[1..].split_at(32);
    let key = JwtKey::ec(
        "signer",
        JwtKeyType::EcP256,
        &URL_SAFE_NO_PAD.encode(x),
        &URL_SAFE_NO_PAD.encode(y),
    )
    .unwrap();
    let provider = mtls_core::default_crypto_provider();
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            pair.serialize_der(),
        )))
        .unwrap();
    let signer = signing
        .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
        .unwrap();
    let message = b"header.payload";
    let signature = signer.sign(message).unwrap();
    let algorithms = provider
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == SignatureScheme::ECDSA_NISTP256_SHA256)
        .unwrap()
        .1;
    let verified = algorithms.iter().any(|alg| {
        alg.verify_signature(key.public_key(), message, &signature)
            .is_ok()
    });
    assert!(verified, "the JWT key verifies its private key's signature");
    let tampered = algorithms.iter().any(|alg| {
        alg.verify_signature(key.public_key(), b"header.payloaX", &signature)
            .is_ok()
    });
    assert!(!tampered);
}

struct JwtCase {
    name: &'static str,
    /// The `keys` array.
    keys: fn() -> Value,
    /// The entry refused, its `kid` and why.
    expect: fn(&BundleError) -> bool,
}

fn jwt_refused(
    e: &BundleError,
    index: usize,
    kid: Option<&str>,
    why: impl Fn(&JwtKeyError) -> bool,
) -> bool {
    matches!(e, BundleError::InvalidJwtKey { index: i, key_id, source }
        if *i == index && key_id.as_deref() == kid && why(source))
}

fn with(mut key: Value, member: &str, value: Value) -> Value {
    key[member] = value;
    key
}

fn without(mut key: Value, member: &str) -> Value {
    key.as_object_mut().unwrap().remove(member);
    key
}

fn jwt_cases() -> Vec<JwtCase> {
    vec![
        JwtCase {
            name: "wrong-missing-kid",
            keys: || json!([without(jwt_ec("k"), "kid")]),
            expect: |e| jwt_refused(e, 0, None, |s| *s == JwtKeyError::MissingKeyId),
        },
        JwtCase {
            name: "wrong-empty-kid",
            keys: || json!([jwt_ec("")]),
            expect: |e| jwt_refused(e, 0, Some(""), |s| *s == JwtKeyError::EmptyKeyId),
        },
        JwtCase {
            name: "wrong-kid-not-a-string",
            keys: || json!([with(jwt_ec("k"), "kid", json!(7))]),
            expect: |e| {
                jwt_refused(e, 0, None, |s| {
                    *s == JwtKeyError::NotAString { member: "kid" }
                })
            },
        },
        JwtCase {
            name: "wrong-x-not-base64url",
            keys: || {
                json!([
                    jwt_ec("ok"),
                    with(
                        jwt_ec("k"),
                        "x",
                        json!("MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D+")
                    )
                ])
            },
            expect: |e| {
                jwt_refused(e, 1, Some("k"), |s| {
                    matches!(s, JwtKeyError::BadBase64Url { member: "x", .. })
                })
            },
        },
        JwtCase {
            name: "wrong-y-padded-base64",
            keys: || json!([with(jwt_ec("k"), "y", json!(format!("{EC_Y}=")))]),
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    matches!(s, JwtKeyError::BadBase64Url { member: "y", .. })
                })
            },
        },
        JwtCase {
            name: "wrong-x-31-bytes",
            keys: || {
                json!([with(
                    jwt_ec("k"),
                    "x",
                    json!(URL_SAFE_NO_PAD.encode([1u8; 31]))
                )])
            },
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    matches!(
                        s,
                        JwtKeyError::WrongCoordinateLength {
                            member: "x",
                            expected: 32,
                            len: 31,
                            ..
                        }
                    )
                })
            },
        },
        JwtCase {
            name: "wrong-y-33-bytes",
            keys: || {
                json!([with(
                    jwt_ec("k"),
                    "y",
                    json!(URL_SAFE_NO_PAD.encode([1u8; 33]))
                )])
            },
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    matches!(
                        s,
                        JwtKeyError::WrongCoordinateLength {
                            member: "y",
                            expected: 32,
                            len: 33,
                            ..
                        }
                    )
                })
            },
        },
        JwtCase {
            name: "wrong-p384-with-p256-coordinates",
            keys: || json!([with(jwt_ec("k"), "crv", json!("P-384"))]),
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    matches!(
                        s,
                        JwtKeyError::WrongCoordinateLength {
                            expected: 48,
                            len: 32,
                            ..
                        }
                    )
                })
            },
        },
        JwtCase {
            name: "wrong-unsupported-curve",
            keys: || json!([with(jwt_ec("k"), "crv", json!("secp256k1"))]),
            expect: |e| {
                jwt_refused(
                    e,
                    0,
                    Some("k"),
                    |s| matches!(s, JwtKeyError::UnsupportedCurve { crv } if crv == "secp256k1"),
                )
            },
        },
        JwtCase {
            name: "wrong-missing-crv",
            keys: || json!([without(jwt_ec("k"), "crv")]),
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    *s == JwtKeyError::MissingMember { member: "crv" }
                })
            },
        },
        JwtCase {
            name: "wrong-missing-y",
            keys: || json!([without(jwt_ec("k"), "y")]),
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    *s == JwtKeyError::MissingMember { member: "y" }
                })
            },
        },
        JwtCase {
            name: "wrong-missing-kty",
            keys: || json!([without(jwt_ec("k"), "kty")]),
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    *s == JwtKeyError::MissingMember { member: "kty" }
                })
            },
        },
        JwtCase {
            name: "wrong-duplicate-kid",
            keys: || json!([jwt_ec("same"), jwt_rsa("other"), jwt_rsa("same")]),
            expect: |e| jwt_refused(e, 2, Some("same"), |s| *s == JwtKeyError::DuplicateKeyId),
        },
        JwtCase {
            name: "wrong-rsa-1024-bits",
            keys: || {
                json!([with(
                    jwt_rsa("k"),
                    "n",
                    json!(URL_SAFE_NO_PAD.encode([0xc5u8; 128]))
                )])
            },
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    *s == JwtKeyError::RsaModulusSize { bits: 1024 }
                })
            },
        },
        JwtCase {
            name: "wrong-rsa-even-exponent",
            keys: || json!([with(jwt_rsa("k"), "e", json!("AQAA"))]),
            expect: |e| jwt_refused(e, 0, Some("k"), |s| *s == JwtKeyError::BadRsaExponent),
        },
        JwtCase {
            name: "wrong-rsa-bad-base64url-n",
            keys: || json!([with(jwt_rsa("k"), "n", json!("not base64!"))]),
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    matches!(s, JwtKeyError::BadBase64Url { member: "n", .. })
                })
            },
        },
        JwtCase {
            name: "wrong-alg-for-key-type",
            keys: || json!([with(jwt_ec("k"), "alg", json!("RS256"))]),
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    matches!(
                        s,
                        JwtKeyError::AlgorithmMismatch {
                            key_type: JwtKeyType::EcP256,
                            ..
                        }
                    )
                })
            },
        },
        JwtCase {
            name: "wrong-alg-not-jwt-svid",
            keys: || json!([with(jwt_rsa("k"), "alg", json!("HS256"))]),
            expect: |e| {
                jwt_refused(e, 0, Some("k"), |s| {
                    matches!(s, JwtKeyError::UnsupportedAlgorithm { .. })
                })
            },
        },
    ]
}

#[test]
fn spiffe_bundle_refuses_malformed_jwt_keys() {
    let mut failures = Vec::new();
    for case in jwt_cases() {
        let doc = json!({ "keys": (case.keys)() });
        match SpiffeBundle::from_jwks(td(), &s(doc.clone())) {
            Err(e) if (case.expect)(&e) => {
                // Named in the message: entry and kid.
                assert!(
                    e.to_string().contains("jwt-svid key #"),
                    "{}: {e}",
                    case.name
                );
            }
            other => failures.push(format!("{}: {other:?}", case.name)),
        }
        // The X.509 view does not interpret JWT entries: it still loads.
        assert!(
            X509Bundle::from_jwks(td(), &s(doc)).is_ok(),
            "{}: X509Bundle::from_jwks",
            case.name
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn spiffe_bundle_ignores_unknown_use_and_kty() {
    let doc = json!({
        "keys": [
            { "use": "jwt-svid", "kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
            { "use": "jwt-svid", "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
            { "use": "future-svid", "kty": "EC", "kid": "f" },
            { "kty": "EC", "kid": "no-use", "crv": "P-256", "x": "?", "y": "?" },
            jwt_ec("kept"),
        ]
    });
    let bundle = SpiffeBundle::from_jwks(td(), &s(doc)).unwrap();
    let kids: Vec<&str> = bundle
        .jwt_authorities()
        .iter()
        .map(|k| k.key_id())
        .collect();
    assert_eq!(kids, ["kept"]);
    assert!(bundle.x509().is_empty());
}

#[test]
fn spiffe_bundle_add_and_remove_jwt_authorities() {
    let mut bundle = SpiffeBundle::new(td());
    let key = JwtKey::ec("k", JwtKeyType::EcP256, EC_X, EC_Y).unwrap();
    bundle.add_jwt_authority(key.clone()).unwrap();
    assert!(matches!(
        bundle.add_jwt_authority(key.clone()),
        Err(BundleError::InvalidJwtKey {
            index: 1,
            source: JwtKeyError::DuplicateKeyId,
            ..
        })
    ));
    assert!(matches!(
        SpiffeBundle::from_parts(X509Bundle::new(td()), [key.clone(), key.clone()]),
        Err(BundleError::InvalidJwtKey {
            source: JwtKeyError::DuplicateKeyId,
            ..
        })
    ));
    assert_eq!(bundle.remove_jwt_authority("k"), Some(key));
    assert!(bundle.remove_jwt_authority("k").is_none());
    assert!(bundle.is_empty());
    // Constructors check what the document reader checks.
    assert_eq!(
        JwtKey::ec("", JwtKeyType::EcP256, EC_X, EC_Y).unwrap_err(),
        JwtKeyError::EmptyKeyId
    );
    assert!(matches!(
        JwtKey::ec("k", JwtKeyType::Rsa, EC_X, EC_Y),
        Err(JwtKeyError::UnsupportedCurve { .. })
    ));
    // The whole document stays bounded.
    let mut doc = br#"{"keys": []}"#.to_vec();
    doc.resize(MAX_BUNDLE_BYTES + 1, b' ');
    assert!(matches!(
        SpiffeBundle::from_jwks(td(), &doc),
        Err(BundleError::TooLarge { .. })
    ));
}
