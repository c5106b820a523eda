//! The fuzz target of this crate's code (CSR signing, `fuzz/targets/ca.rs`)
//! on stable: every committed seed and regression input, and deterministic
//! mutations of each seed (harness: `fuzz/targets/replay.rs`); the targets
//! of mtls-core's parsers replay in `mtls-core/tests/fuzz_replay.rs`.
//!
//! The seeds of every target are made here, by our CA (the fixed keys
//! loaded into mtls-ca); to write them again:
//!
//! ```sh
//! cargo test -p mtls-ca --test fuzz_replay -- --ignored generate_seeds
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/targets/mod.rs"]
mod targets;

#[path = "../../fuzz/targets/ca.rs"]
mod ca;

#[macro_use]
#[path = "../../fuzz/targets/replay.rs"]
mod replay;

use std::time::{Duration, UNIX_EPOCH};

use mtls_ca::{CaOptions, CertificateAuthority, KeyType, SvidRequest};
use mtls_core::{to_pem, TrustDomain};
use mtls_testing::id;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use rustls_pki_types::CertificateDer;

use replay::{files, fuzz_dir};
use targets::fixtures::{self, Signer, FIXED_NOW};
use targets::frame::Writer;

/// Regression inputs (`target/name`) of bugs whose library fix is not in
/// yet, with the bug (see `replay::replay_inputs`).
const AWAITING_FIX: &[(&str, &str)] = &[];

replay_tests!(ca::CA_TARGETS, awaiting_fix: AWAITING_FIX);

/// The names of every target, mtls-core's and the CA's, in seed order.
fn all_targets() -> Vec<&'static str> {
    let mut names: Vec<&str> = targets::TARGETS.iter().map(|(n, _)| *n).collect();
    names.extend(ca::CA_TARGETS.iter().map(|(n, _)| *n));
    names
}

#[test]
fn fuzz_binaries_match_the_targets() {
    replay::check_binaries(ca::CA_TARGETS);
    replay::check_directories(&all_targets());
}

// ---------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------

const WEB: &str = "spiffe://example.org/web";

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A chain for the x509_verify target: time, flags, then each
/// certificate with its signer.
fn verify_input(now: u64, server: bool, chain: &[(Signer, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new().u64(now).u8(server.into());
    for (signer, der) in chain {
        w = w.u8(signer.byte()).chunk16(der);
    }
    w.finish()
}

/// A CSR and request for the csr_sign target.
fn csr_input(signer: Signer, id: &str, ttl: u32, dns: &[&str], csr: &[u8]) -> Vec<u8> {
    let mut w = Writer::new()
        .u8(signer.byte())
        .chunk8(id.as_bytes())
        .u32(ttl)
        .u8(dns.len() as u8);
    for name in dns {
        w = w.chunk8(name.as_bytes());
    }
    w.chunk8(b"").bytes(csr).finish()
}

fn csr(key: &KeyPair, customize: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
    let mut params = CertificateParams::default();
    customize(&mut params);
    params.serialize_request(key).unwrap().der().to_vec()
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

fn dev_root(key_type: KeyType) -> CertificateAuthority {
    let options = CaOptions {
        key_type,
        ..CaOptions::default()
    };
    CertificateAuthority::self_signed_for_development(
        TrustDomain::new("example.org").unwrap(),
        &options,
    )
    .unwrap()
}

/// Named inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;

fn seed_set() -> Vec<(&'static str, Seeds)> {
    let f = fixtures::get();
    let root_ca = ca::load_root_ca();
    let int_ca = ca::load_intermediate_ca();
    let root_pem = to_pem("CERTIFICATE", &f.root);
    let int_pem = to_pem("CERTIFICATE", &f.intermediate);
    let key_pem = KeyPair::generate().unwrap().serialize_pem();
    let dev_roots: Vec<(KeyType, CertificateAuthority)> =
        [KeyType::P256, KeyType::P384, KeyType::Ed25519]
            .into_iter()
            .map(|k| (k, dev_root(k)))
            .collect();
    let s = |name: &str, bytes: Vec<u8>| (name.to_owned(), bytes);

    let long_id = format!("spiffe://example.org/{}", "a".repeat(2048 - 21));
    let spiffe_id = vec![
        s("web", WEB.into()),
        s("trust-domain-id", b"spiffe://example.org".to_vec()),
        s("k8s", b"spiffe://example.org/ns/prod/sa/web".to_vec()),
        s(
            "all-path-chars",
            b"spiffe://a-b_c.9/AZaz09.-_/x..y".to_vec(),
        ),
        s("2048-bytes", long_id.clone().into_bytes()),
        s("2049-bytes", format!("{long_id}a").into_bytes()),
        s("uppercase-td", b"spiffe://Example.org/web".to_vec()),
        s("uppercase-scheme", b"SPIFFE://example.org/web".to_vec()),
        s("trailing-slash", b"spiffe://example.org/web/".to_vec()),
        s("dot-segment", b"spiffe://example.org/a/../b".to_vec()),
        s("port", b"spiffe://example.org:443/web".to_vec()),
        s("userinfo", b"spiffe://u@example.org/web".to_vec()),
        s("percent", b"spiffe://example.org/a%2Fb".to_vec()),
        s("query-fragment", b"spiffe://example.org/a?b#c".to_vec()),
        s("nul", b"spiffe://example.org/a\0b".to_vec()),
        s("invalid-utf8", b"spiffe://example.org/\xff\xfe".to_vec()),
        s("no-trust-domain", b"spiffe:///web".to_vec()),
    ];

    let trust_domain = vec![
        s("name", b"example.org".to_vec()),
        s("id", b"spiffe://example.org".to_vec()),
        s("id-with-path", b"spiffe://example.org/web".to_vec()),
        s("uppercase", b"Example.org".to_vec()),
        s("port", b"example.org:8443".to_vec()),
        s("255-bytes", "a".repeat(255).into_bytes()),
        s("256-bytes", "a".repeat(256).into_bytes()),
        s("punycode", b"xn--bcher-kva.example".to_vec()),
        s("wrong-scheme", b"https://example.org".to_vec()),
    ];

    let mut pem_bundle = vec![
        s("fixed-root", root_pem.clone().into_bytes()),
        s(
            "fixed-root-and-intermediate",
            format!("{root_pem}{int_pem}").into_bytes(),
        ),
        s("ca-bundle", root_ca.bundle().unwrap().to_pem().into_bytes()),
        s(
            "stranger-root",
            to_pem("CERTIFICATE", &f.stranger_root).into_bytes(),
        ),
        s(
            "key-block-first",
            format!("{key_pem}{root_pem}").into_bytes(),
        ),
        s(
            "text-between-blocks-crlf",
            format!(
                "subject=root\r\n{}\r\nmore text\r\n{int_pem}",
                root_pem.replace('\n', "\r\n")
            )
            .into_bytes(),
        ),
        s(
            "truncated",
            root_pem.as_bytes()[..root_pem.len() / 2].to_vec(),
        ),
        s(
            "bad-base64",
            b"-----BEGIN CERTIFICATE-----\nMII!!!\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        s("no-certificate", key_pem.clone().into_bytes()),
        s("bom", format!("\u{feff}{root_pem}").into_bytes()),
    ];
    for (k, ca) in &dev_roots {
        pem_bundle.push((
            format!("dev-root-{}", k.name()),
            ca.bundle().unwrap().to_pem().into_bytes(),
        ));
    }

    let jwks_of = |certs: &[&CertificateDer<'static>]| -> Vec<u8> {
        let mut b = mtls_core::X509Bundle::from_authorities(
            f.trust_domain.clone(),
            certs.iter().map(|c| (*c).clone()),
        )
        .unwrap();
        b.set_sequence(Some(7));
        b.to_jwks().unwrap().into_bytes()
    };
    let root_b64 = {
        let jwks: serde_json::Value = serde_json::from_slice(&jwks_of(&[&f.root])).unwrap();
        jwks["keys"][0]["x5c"][0].as_str().unwrap().to_owned()
    };
    let mut jwks_bundle = vec![
        s("ca-bundle", root_ca.bundle().unwrap().to_jwks().unwrap().into_bytes()),
        s("fixed-root-and-intermediate", jwks_of(&[&f.root, &f.intermediate])),
        s("empty-keys", br#"{"keys": []}"#.to_vec()),
        s(
            "jwt-svid-key-kept",
            format!(
                r#"{{"keys": [{{"use": "x509-svid", "kty": "OKP", "x5c": ["{root_b64}"]}},
                    {{"use": "jwt-svid", "kty": "EC", "kid": "k1", "crv": "P-256", "x": "AA", "y": "AA"}}],
                  "spiffe_refresh_hint": 300, "spiffe_sequence": 1}}"#
            )
            .into_bytes(),
        ),
        s(
            "duplicate-member",
            format!(r#"{{"keys": [{{"use": "x509-svid", "kty": "OKP", "x5c": ["{root_b64}"]}}], "keys": []}}"#)
                .into_bytes(),
        ),
        s(
            "unknown-kty-and-use",
            format!(r#"{{"keys": [{{"use": "x509-svid", "kty": "oct", "x5c": ["{root_b64}"]}}, {{"use": "?"}}]}}"#)
                .into_bytes(),
        ),
        s("x5c-empty", br#"{"keys": [{"use": "x509-svid", "kty": "EC", "x5c": []}]}"#.to_vec()),
        s(
            "nested",
            format!(r#"{{"keys": [], "x": {}{}}}"#, "[".repeat(200), "]".repeat(200)).into_bytes(),
        ),
        s(
            "structured-root-intermediate-jwt",
            Writer::new()
                .u8(0)
                .u8(3)
                .u64(42)
                .u64(300)
                .u8(0b0000_1000)
                .chunk16(&f.root)
                .u8(0b1000_0001)
                .chunk16(&f.intermediate)
                .finish(),
        ),
        s(
            "structured-two-x5c-and-stranger",
            Writer::new()
                .u8(0)
                .u8(4)
                .u64(0)
                .u64(0)
                .u8(0b0010_0100)
                .chunk16(&f.stranger_root)
                .u8(0b0000_0000)
                .chunk16(b"\x30\x03\x02\x01\x01")
                .finish(),
        ),
    ];
    for (k, ca) in &dev_roots {
        jwks_bundle.push((
            format!("dev-root-{}", k.name()),
            ca.bundle().unwrap().to_jwks().unwrap().into_bytes(),
        ));
    }

    // x509_verify: chains made by the CAs, at a time inside their validity.
    let from_root = root_ca.issue(&SvidRequest::new(id(WEB))).unwrap();
    let from_int = int_ca
        .issue(
            &SvidRequest::new(id("spiffe://example.org/ns/prod/sa/api"))
                .dns_name("api.example.org")
                .key_type(KeyType::P384),
        )
        .unwrap();
    let t_root = unix(from_root.not_before()) + 600;
    let t_int = unix(from_int.not_before()) + 600;
    let root_leaf: &[u8] = from_root.leaf();
    let int_leaf: &[u8] = from_int.leaf();
    let (keep, root, stranger, leaf_key) =
        (Signer::Keep, Signer::Root, Signer::Stranger, Signer::Leaf);
    // The fixed certificates, as the chains below list them.
    let fixed_leaf: &[u8] = &f.leaf;
    let fixed_int: &[u8] = &f.intermediate;
    let fixed_root: &[u8] = &f.root;
    let stranger_root: &[u8] = &f.stranger_root;
    let fixed_chain = [(keep, fixed_leaf), (keep, fixed_int)];
    let mut seventeen = vec![(keep, fixed_leaf)];
    seventeen.extend(std::iter::repeat_n((keep, fixed_int), 16));
    let x509_verify = vec![
        s(
            "root-leaf",
            verify_input(t_root, false, &[(keep, root_leaf)]),
        ),
        s(
            "root-leaf-resigned-by-root",
            verify_input(t_root, false, &[(root, root_leaf)]),
        ),
        s(
            "root-leaf-resigned-by-stranger",
            verify_input(t_root, false, &[(stranger, root_leaf)]),
        ),
        s(
            "intermediate-chain-server",
            verify_input(t_int, true, &[(keep, int_leaf), (keep, fixed_int)]),
        ),
        s(
            "intermediate-chain-with-root",
            verify_input(
                t_int,
                false,
                &[(keep, int_leaf), (keep, fixed_int), (keep, fixed_root)],
            ),
        ),
        s(
            "intermediate-chain-with-stranger-root",
            verify_input(
                t_int,
                false,
                &[(keep, int_leaf), (keep, fixed_int), (keep, stranger_root)],
            ),
        ),
        s(
            "intermediate-leaf-signed-by-root-key",
            verify_input(t_int, false, &[(root, int_leaf), (keep, fixed_int)]),
        ),
        s(
            "intermediate-missing",
            verify_input(t_int, false, &[(keep, int_leaf)]),
        ),
        s(
            "reversed",
            verify_input(t_int, false, &[(keep, fixed_int), (keep, int_leaf)]),
        ),
        s("fixed-chain", verify_input(FIXED_NOW, false, &fixed_chain)),
        s(
            "fixed-chain-before-2020",
            verify_input(1_500_000_000, false, &fixed_chain),
        ),
        s(
            "fixed-chain-after-2100",
            verify_input(4_200_000_000, false, &fixed_chain),
        ),
        s(
            "fixed-leaf-self-signed",
            verify_input(
                FIXED_NOW,
                false,
                &[(leaf_key, fixed_leaf), (keep, fixed_int)],
            ),
        ),
        s(
            "intermediate-as-leaf",
            verify_input(FIXED_NOW, false, &[(keep, fixed_int)]),
        ),
        s("chain-of-17", verify_input(FIXED_NOW, false, &seventeen)),
        s(
            "garbage-leaf",
            verify_input(FIXED_NOW, false, &[(root, b"\x30\x03\x30\x01\x00")]),
        ),
    ];

    // csr_sign: CSRs for the fixed intermediate to sign.
    let p256 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let plain = csr(&f.csr_key, |_| {});
    let with_uri = csr(&f.csr_key, |p| p.subject_alt_names = vec![uri(WEB)]);
    let with_dns = csr(&f.csr_key, |p| {
        p.subject_alt_names = vec![
            uri(WEB),
            SanType::DnsName("web.example.org".try_into().unwrap()),
        ]
    });
    let hour = 3600;
    let csr_sign = vec![
        s("ed25519", csr_input(Signer::Keep, WEB, hour, &[], &plain)),
        s(
            "ed25519-resigned",
            csr_input(Signer::Csr, WEB, hour, &[], &plain),
        ),
        s(
            "ed25519-signed-by-stranger",
            csr_input(Signer::Stranger, WEB, hour, &[], &plain),
        ),
        s(
            "pem",
            csr_input(
                Signer::Keep,
                WEB,
                hour,
                &[],
                to_pem("CERTIFICATE REQUEST", &plain).as_bytes(),
            ),
        ),
        s(
            "p256",
            csr_input(Signer::Keep, WEB, hour, &[], &csr(&p256, |_| {})),
        ),
        s(
            "p384",
            csr_input(Signer::Keep, WEB, hour, &[], &csr(&p384, |_| {})),
        ),
        s(
            "uri-matching",
            csr_input(Signer::Csr, WEB, hour, &[], &with_uri),
        ),
        s(
            "uri-of-another-id",
            csr_input(
                Signer::Csr,
                "spiffe://example.org/admin",
                hour,
                &[],
                &with_uri,
            ),
        ),
        s(
            "dns-granted",
            csr_input(
                Signer::Csr,
                WEB,
                hour,
                &["web.example.org", "web"],
                &with_dns,
            ),
        ),
        s(
            "dns-not-granted",
            csr_input(Signer::Csr, WEB, hour, &[], &with_dns),
        ),
        s(
            "ca-true",
            csr_input(
                Signer::Csr,
                WEB,
                hour,
                &[],
                &csr(&f.csr_key, |p| {
                    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)
                }),
            ),
        ),
        s("zero-ttl", csr_input(Signer::Keep, WEB, 0, &[], &plain)),
        s(
            "ttl-over-max",
            csr_input(Signer::Keep, WEB, 90_000, &[], &plain),
        ),
        s(
            "other-trust-domain",
            csr_input(Signer::Keep, "spiffe://other.org/web", hour, &[], &plain),
        ),
        s(
            "truncated",
            csr_input(Signer::Csr, WEB, hour, &[], &plain[..plain.len() / 2]),
        ),
    ];

    // crl: CRLs made by the CAs.
    let crl_ca = ca::load_intermediate_ca();
    let empty_int_crl = crl_ca.crl(Duration::from_secs(3600)).unwrap();
    crl_ca.revoke(&fixtures::LEAF_SERIAL);
    let leaf_crl = crl_ca.crl(Duration::from_secs(3600)).unwrap();
    let other_ca = ca::load_intermediate_ca();
    other_ca.revoke(&[0x42, 0x42]);
    let other_crl = other_ca.crl(Duration::from_secs(3600)).unwrap();
    let root_crl_ca = ca::load_root_ca();
    let empty_root_crl = root_crl_ca.crl(Duration::from_secs(3600)).unwrap();
    root_crl_ca.revoke(&fixtures::INTERMEDIATE_SERIAL);
    let int_revoked_crl = root_crl_ca.crl(Duration::from_secs(3600)).unwrap();
    let crl_input =
        |signer: Signer, doc: &[u8]| Writer::new().u8(signer.byte()).bytes(doc).finish();
    let crl = vec![
        s("leaf-revoked-der", crl_input(Signer::Keep, &leaf_crl)),
        s(
            "leaf-revoked-pem",
            crl_input(Signer::Keep, to_pem("X509 CRL", &leaf_crl).as_bytes()),
        ),
        s(
            "leaf-revoked-resigned",
            crl_input(Signer::Intermediate, &leaf_crl),
        ),
        s(
            "leaf-revoked-signed-by-stranger",
            crl_input(Signer::Stranger, &leaf_crl),
        ),
        s(
            "leaf-revoked-signed-by-root",
            crl_input(Signer::Root, &leaf_crl),
        ),
        s("empty-der", crl_input(Signer::Keep, &empty_int_crl)),
        s("other-serial", crl_input(Signer::Keep, &other_crl)),
        s("root-empty", crl_input(Signer::Keep, &empty_root_crl)),
        s(
            "intermediate-revoked",
            crl_input(Signer::Keep, &int_revoked_crl),
        ),
        s(
            "two-in-pem",
            crl_input(
                Signer::Keep,
                format!(
                    "{}{}",
                    to_pem("X509 CRL", &empty_root_crl),
                    to_pem("X509 CRL", &other_crl)
                )
                .as_bytes(),
            ),
        ),
        s(
            "truncated",
            crl_input(Signer::Keep, &leaf_crl[..leaf_crl.len() - 9]),
        ),
        s(
            "garbage-pem",
            crl_input(
                Signer::Keep,
                b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
            ),
        ),
    ];

    // svid_pem: SVIDs made by the CAs.
    let svid_input = |chain: &str, key: &str| {
        Writer::new()
            .chunk16(chain.as_bytes())
            .bytes(key.as_bytes())
            .finish()
    };
    let mut svid_pem = Vec::new();
    for k in [KeyType::P256, KeyType::P384, KeyType::Ed25519] {
        let svid = int_ca
            .issue(&SvidRequest::new(id(WEB)).key_type(k))
            .unwrap();
        svid_pem.push((
            format!("intermediate-{}", k.name()),
            svid_input(&svid.chain_pem(), &svid.private_key_pem()),
        ));
    }
    svid_pem.push(s(
        "root-issued",
        svid_input(&from_root.chain_pem(), &from_root.private_key_pem()),
    ));
    svid_pem.push(s(
        "key-of-another-svid",
        svid_input(&from_root.chain_pem(), &from_int.private_key_pem()),
    ));
    svid_pem.push(s(
        "leaf-only",
        svid_input(
            &to_pem("CERTIFICATE", from_int.leaf()),
            &from_int.private_key_pem(),
        ),
    ));
    svid_pem.push(s("no-key", svid_input(&from_int.chain_pem(), "")));

    vec![
        ("spiffe_id", spiffe_id),
        ("trust_domain", trust_domain),
        ("pem_bundle", pem_bundle),
        ("jwks_bundle", jwks_bundle),
        ("x509_verify", x509_verify),
        ("csr_sign", csr_sign),
        ("crl", crl),
        ("svid_pem", svid_pem),
        ("jwt_svid", targets::jwt::seeds()),
    ]
}

/// Writes the seed corpus (replacing the old `seed-*` files).
#[test]
#[ignore = "writes fuzz/corpus; run by hand to regenerate the seeds"]
fn generate_seeds() {
    let set = seed_set();
    let mut names: Vec<&str> = set.iter().map(|(t, _)| *t).collect();
    let mut all = all_targets();
    names.sort_unstable();
    all.sort_unstable();
    assert_eq!(names, all, "a seed set per target");
    let mut total = 0;
    for (target, seeds) in set {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, _) in files(&dir, "seed-") {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
        for (name, bytes) in seeds {
            total += bytes.len();
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    eprintln!("{total} bytes of seeds");
}
