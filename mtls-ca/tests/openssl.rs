//! OpenSSL interoperability: what the CA issues passes `openssl verify
//! -x509_strict` for TLS clients and servers, CSRs made by `openssl req` are
//! signed, CRLs parse with `openssl crl` and make `openssl verify
//! -crl_check` reject revoked certificates, and an organisation CA made
//! with OpenSSL (its usual key formats) loads.
//!
//! These tests need the `openssl` command; without it they fail (CI
//! installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use mtls_ca::{
    CaOptions, CertificateAuthority, KeyType, LoadOptions, SvidRequest, DEFAULT_CRL_VALIDITY,
};
use mtls_core::{verify, BundleSet, CrlSet, PeerRole, TrustDomain, X509Svid};
use mtls_testing::id;
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

const TD: &str = "example.org";
const WEB: &str = "spiffe://example.org/web";
const KEY_TYPES: [KeyType; 3] = [KeyType::P256, KeyType::P384, KeyType::Ed25519];

fn td() -> TrustDomain {
    TrustDomain::new(TD).unwrap()
}

fn pem(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| mtls_core::to_pem("CERTIFICATE", c))
        .collect()
}

fn options(key_type: KeyType, cn: &str) -> CaOptions {
    CaOptions {
        key_type,
        common_name: Some(cn.into()),
        ..CaOptions::default()
    }
}

/// Runs `openssl args...` in `dir`; a missing `openssl` fails the test.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "the `openssl` command is not installed: these interop tests need it \
             (CI installs it; locally: apt-get install openssl)"
        ),
        Err(e) => panic!("cannot run openssl: {e}"),
    }
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs openssl and asserts it succeeded; returns its stdout.
fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        show(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).unwrap();
}

/// The serial number of the certificate `der`, as its raw bytes.
fn serial_of(der: &[u8]) -> Vec<u8> {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.raw_serial().to_vec()
}

/// Writes `ca`'s current CRL to `dir/file` as PEM.
fn write_crl(dir: &Path, file: &str, ca: &CertificateAuthority) {
    write(
        dir,
        file,
        mtls_core::to_pem("X509 CRL", &ca.crl(DEFAULT_CRL_VALIDITY).unwrap()),
    );
}

/// `openssl verify -x509_strict` of `leaf.pem` for both TLS purposes, with
/// `extra` arguments (CRLs, `-untrusted`); Ok(()) or OpenSSL's output.
fn openssl_verify(dir: &Path, extra: &[&str]) -> Result<(), String> {
    let mut failures = Vec::new();
    for purpose in ["sslclient", "sslserver"] {
        let mut args = vec![
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            "root.pem",
        ];
        args.extend_from_slice(extra);
        args.push("leaf.pem");
        let out = openssl(dir, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !(out.status.success() && stdout.contains("leaf.pem: OK")) {
            failures.push(format!("{purpose}: {}", show(&out)));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn verify_both(chain: &[CertificateDer<'_>], bundles: &BundleSet, crls: &CrlSet) {
    for role in [PeerRole::Client, PeerRole::Server] {
        verify(chain, bundles, SystemTime::now(), crls, role)
            .unwrap_or_else(|e| panic!("{role:?}: {e}"));
    }
}

/// A root and an intermediate of `key_type`, written as `root.pem` and
/// `intermediate.pem`.
fn root_and_intermediate(
    dir: &Path,
    key_type: KeyType,
) -> (CertificateAuthority, CertificateAuthority) {
    let root = CertificateAuthority::self_signed_for_development(td(), &options(key_type, "root"))
        .unwrap();
    let inter = root.intermediate(&options(key_type, "cluster")).unwrap();
    write(dir, "root.pem", pem(root.chain()));
    write(dir, "intermediate.pem", pem(&inter.chain()[..1]));
    (root, inter)
}

#[test]
fn openssl_verifies_issued_leaves_strictly() {
    for key_type in KEY_TYPES {
        let dir = tempfile::tempdir().unwrap();
        let (root, inter) = root_and_intermediate(dir.path(), key_type);
        // The CA certificates themselves pass strict checks.
        openssl_ok(
            dir.path(),
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                "root.pem",
                "intermediate.pem",
            ],
        );
        let requests = [
            ("default", SvidRequest::new(id(WEB))),
            (
                "dns-and-cn",
                SvidRequest::new(id(WEB))
                    .dns_name("web.example.org")
                    .common_name("web"),
            ),
        ];
        for (req_name, req) in &requests {
            for leaf_key in KEY_TYPES {
                let req = req.clone().key_type(leaf_key);
                for (shape, ca, extra) in [
                    (
                        "via-intermediate",
                        &inter,
                        &["-untrusted", "intermediate.pem"][..],
                    ),
                    ("direct-from-root", &root, &[][..]),
                ] {
                    let name = format!("ca-{key_type} leaf-{leaf_key} {req_name} {shape}");
                    let svid = ca.issue(&req).unwrap();
                    write(dir.path(), "leaf.pem", pem(&svid.chain()[..1]));
                    openssl_verify(dir.path(), extra).unwrap_or_else(|e| panic!("{name}:\n{e}"));
                }
            }
        }
    }
}

/// Makes `req.pem` (returned) and its key `k.pem` with `openssl req -new`
/// and the `newkey` arguments.
fn openssl_csr(dir: &Path, newkey: &[&str]) -> Vec<u8> {
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&[
        "-nodes", "-keyout", "k.pem", "-out", "req.pem", "-subj", "/CN=x",
    ]);
    openssl_ok(dir, &args);
    std::fs::read(dir.join("req.pem")).unwrap()
}

/// Makes `req.pem` and `k.pem` with `openssl req -new`, signs it with
/// `sign_csr`, and checks the result every way we can; Err with what failed.
fn sign_openssl_csr(newkey: &[&str]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let (root, inter) = root_and_intermediate(dir.path(), KeyType::P256);
    let csr = openssl_csr(dir.path(), newkey);
    let request = SvidRequest::new(id(WEB)).dns_name("web.example.org");
    let chain = inter
        .sign_csr(&csr, &request)
        .map_err(|e| format!("sign_csr: {e}"))?;
    assert_eq!(chain.len(), 2);
    write(dir.path(), "leaf.pem", pem(&chain[..1]));
    let mut failures = Vec::new();

    // mtls-core accepts the chain.
    let bundles = BundleSet::from(root.bundle().unwrap());
    for role in [PeerRole::Client, PeerRole::Server] {
        if let Err(e) = verify(&chain, &bundles, SystemTime::now(), &CrlSet::new(), role) {
            failures.push(format!("mtls_core::verify {role:?}: {e}"));
        }
    }
    // The certificate holds the CSR's key, not its subject.
    let cert_key = openssl(
        dir.path(),
        &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
    );
    let csr_key = openssl_ok(dir.path(), &["pkey", "-in", "k.pem", "-pubout"]);
    if String::from_utf8_lossy(&cert_key.stdout) != csr_key {
        failures.push(format!(
            "the certificate's key is not the CSR's: {}",
            show(&cert_key)
        ));
    }
    let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();
    if cert.subject().iter().count() != 0 {
        failures.push(format!("CSR subject copied: {}", cert.subject()));
    }
    // With the key OpenSSL generated, it is a usable SVID.
    let key = std::fs::read(dir.path().join("k.pem")).unwrap();
    if let Err(e) = X509Svid::from_pem(pem(&chain).as_bytes(), &key) {
        failures.push(format!("X509Svid::from_pem: {e}"));
    }
    // And OpenSSL verifies it.
    if let Err(e) = openssl_verify(dir.path(), &["-untrusted", "intermediate.pem"]) {
        failures.push(format!("openssl verify: {e}"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// `openssl req` CSRs of every key type and hash are signed and verify.
/// The `bug-hash-decides-key-algorithm` cases were
/// `bug_csr_signature_hash_decides_the_certificate_key_algorithm`: the CSR's
/// signature hash must not decide the certificate's key algorithm.
#[test]
fn openssl_csr_is_signed_and_verifies() {
    let cases: [(&str, &[&str]); 7] = [
        (
            "p256",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        (
            "p384-signed-with-sha384",
            &[
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-sha384",
            ],
        ),
        ("ed25519", &["-newkey", "ed25519"]),
        ("rsa-2048", &["-newkey", "rsa:2048"]),
        (
            "rsa-3072-signed-with-sha384",
            &["-newkey", "rsa:3072", "-sha384"],
        ),
        // `openssl req` signs with SHA-256 by default, whatever the curve.
        (
            "bug-hash-decides-key-algorithm p384-default-sha256",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
        (
            "bug-hash-decides-key-algorithm p256-signed-with-sha384",
            &[
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-sha384",
            ],
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, newkey)| {
            sign_openssl_csr(newkey)
                .err()
                .map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn openssl_parses_our_crls() {
    for key_type in KEY_TYPES {
        let dir = tempfile::tempdir().unwrap();
        let (root, inter) = root_and_intermediate(dir.path(), key_type);
        let serial = serial_of(inter.issue(&SvidRequest::new(id(WEB))).unwrap().leaf());
        inter.revoke(&serial);
        for number in 1..=2 {
            write_crl(dir.path(), "crl.pem", &inter);
            let text = openssl_ok(dir.path(), &["crl", "-in", "crl.pem", "-noout", "-text"]);
            let name = format!("{key_type} crl #{number}");
            let want_serial: String = serial.iter().map(|b| format!("{b:02X}")).collect();
            assert!(
                text.contains(&want_serial),
                "{name}: serial missing:\n{text}"
            );
            let crl_number = text
                .lines()
                .skip_while(|l| !l.contains("X509v3 CRL Number"))
                .nth(1)
                .map(str::trim);
            assert_eq!(
                crl_number,
                Some(number.to_string().as_str()),
                "{name}:\n{text}"
            );
            assert!(text.contains("Next Update"), "{name}:\n{text}");
            assert!(text.contains("Issuer: CN = cluster"), "{name}:\n{text}");
            // Its signature verifies with the issuing CA.
            let out = openssl(
                dir.path(),
                &[
                    "crl",
                    "-in",
                    "crl.pem",
                    "-noout",
                    "-CAfile",
                    "intermediate.pem",
                ],
            );
            assert!(
                out.status.success() && String::from_utf8_lossy(&out.stderr).contains("verify OK"),
                "{name}: {}",
                show(&out)
            );
        }
        // The root's CRL too, empty.
        write_crl(dir.path(), "root-crl.pem", &root);
        let text = openssl_ok(
            dir.path(),
            &["crl", "-in", "root-crl.pem", "-noout", "-text"],
        );
        assert!(
            text.contains("No Revoked Certificates"),
            "{key_type}:\n{text}"
        );
    }
}

#[test]
fn openssl_crl_check_rejects_revoked_certificates() {
    for key_type in KEY_TYPES {
        let dir = tempfile::tempdir().unwrap();
        let (root, inter) = root_and_intermediate(dir.path(), key_type);
        let revoked = inter.issue(&SvidRequest::new(id(WEB))).unwrap();
        let good = inter.issue(&SvidRequest::new(id(WEB))).unwrap();
        assert!(inter.revoke(&serial_of(revoked.leaf())));
        write_crl(dir.path(), "crl.pem", &inter);
        let crl_args = [
            "-crl_check",
            "-CRLfile",
            "crl.pem",
            "-untrusted",
            "intermediate.pem",
        ];

        write(dir.path(), "leaf.pem", pem(&revoked.chain()[..1]));
        let err = openssl_verify(dir.path(), &crl_args).expect_err("revoked leaf accepted");
        assert!(err.contains("certificate revoked"), "{key_type}: {err}");
        // Without the CRL check it would pass.
        openssl_verify(dir.path(), &["-untrusted", "intermediate.pem"]).unwrap();

        write(dir.path(), "leaf.pem", pem(&good.chain()[..1]));
        openssl_verify(dir.path(), &crl_args).unwrap_or_else(|e| panic!("{key_type}: {e}"));

        // Revoking the intermediate in the root's CRL rejects every leaf
        // below it under -crl_check_all.
        assert!(root.revoke(&serial_of(inter.certificate())));
        let crls = format!(
            "{}{}",
            mtls_core::to_pem("X509 CRL", &root.crl(DEFAULT_CRL_VALIDITY).unwrap()),
            mtls_core::to_pem("X509 CRL", &inter.crl(DEFAULT_CRL_VALIDITY).unwrap())
        );
        write(dir.path(), "crls.pem", crls);
        let err = openssl_verify(
            dir.path(),
            &[
                "-crl_check_all",
                "-CRLfile",
                "crls.pem",
                "-untrusted",
                "intermediate.pem",
            ],
        )
        .expect_err("leaf under a revoked intermediate accepted");
        assert!(err.contains("certificate revoked"), "{key_type}: {err}");
    }
}

const ORG_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[int_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org
";

/// An organisation PKI made with OpenSSL: an RSA root and an intermediate
/// whose key is made by `key_cmd` (in OpenSSL's own format), written as
/// root.pem, int.pem and int.key.
fn openssl_org(dir: &Path, key_cmd: &[&str]) {
    write(dir, "org.cnf", ORG_CNF);
    openssl_ok(
        dir,
        &[
            "req",
            "-x509",
            "-config",
            "org.cnf",
            "-extensions",
            "root_ext",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "30",
            "-subj",
            "/O=Example Org/CN=Example Org Root CA",
        ],
    );
    openssl_ok(dir, key_cmd);
    openssl_ok(
        dir,
        &[
            "req",
            "-new",
            "-config",
            "org.cnf",
            "-key",
            "int.key",
            "-out",
            "int.csr",
            "-subj",
            "/O=Example Org/CN=Example Org SPIFFE intermediate",
        ],
    );
    openssl_ok(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "0x7a3c19",
            "-days",
            "10",
            "-extfile",
            "org.cnf",
            "-extensions",
            "int_ext",
            "-out",
            "int.pem",
        ],
    );
}

type KeyCmd = (&'static str, &'static [&'static str], &'static str);

/// Intermediate keys in the formats OpenSSL writes, with their PEM labels.
const ORG_KEYS: [KeyCmd; 4] = [
    (
        "p256-sec1",
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "int.key",
        ],
        "EC PRIVATE KEY",
    ),
    (
        "p256-pkcs8",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "int.key",
        ],
        "PRIVATE KEY",
    ),
    (
        "rsa-pkcs1",
        &["genrsa", "-traditional", "-out", "int.key", "2048"],
        "RSA PRIVATE KEY",
    ),
    (
        "ed25519-pkcs8",
        &["genpkey", "-algorithm", "ed25519", "-out", "int.key"],
        "PRIVATE KEY",
    ),
];

#[test]
fn openssl_made_org_ca_loads_and_issues() {
    for (name, key_cmd, label) in ORG_KEYS {
        let dir = tempfile::tempdir().unwrap();
        openssl_org(dir.path(), key_cmd);
        let key = std::fs::read(dir.path().join("int.key")).unwrap();
        assert!(
            String::from_utf8_lossy(&key).contains(&format!("BEGIN {label}")),
            "{name}: unexpected key format"
        );
        let chain = std::fs::read(dir.path().join("int.pem")).unwrap();
        let roots = std::fs::read(dir.path().join("root.pem")).unwrap();
        let ca = CertificateAuthority::from_pem(
            &chain,
            &key,
            &LoadOptions {
                trust_domain: None, // from the intermediate's spiffe:// SAN
                roots_pem: Some(roots.clone()),
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ca.trust_domain(), &td(), "{name}");

        let bundle = BundleSet::from(mtls_core::X509Bundle::from_pem(td(), &roots).unwrap());
        let cluster = ca
            .intermediate(&options(KeyType::P256, &format!("cluster {name}")))
            .unwrap();
        for (shape, issuer) in [("org-intermediate", &ca), ("cluster", &cluster)] {
            let svid = issuer
                .issue(&SvidRequest::new(id(WEB)).ttl(Duration::from_secs(600)))
                .unwrap_or_else(|e| panic!("{name} {shape}: {e}"));
            verify_both(svid.chain(), &bundle, &CrlSet::new());
            write(dir.path(), "leaf.pem", pem(&svid.chain()[..1]));
            write(dir.path(), "untrusted.pem", pem(&svid.chain()[1..]));
            openssl_verify(dir.path(), &["-untrusted", "untrusted.pem"])
                .unwrap_or_else(|e| panic!("{name} {shape}:\n{e}"));
        }

        // Its CRL verifies with OpenSSL against the OpenSSL-made cert.
        write_crl(dir.path(), "crl.pem", &ca);
        let out = openssl(
            dir.path(),
            &["crl", "-in", "crl.pem", "-noout", "-CAfile", "int.pem"],
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("verify OK"),
            "{name}: {}",
            show(&out)
        );
    }
}

/// Whether `der` is a PKCS#8 PrivateKeyInfo: SEQUENCE { INTEGER,
/// AlgorithmIdentifier SEQUENCE, OCTET STRING, .. } (SEC1 and PKCS#1 have an
/// OCTET STRING or INTEGER second).
fn is_pkcs8(der: &[u8]) -> bool {
    use x509_parser::der_parser::ber::BerObjectContent;
    match x509_parser::der_parser::parse_der(der) {
        Ok(([], obj)) => match obj.content {
            BerObjectContent::Sequence(items) => {
                items.len() >= 3
                    && matches!(items[0].content, BerObjectContent::Integer(_))
                    && matches!(items[1].content, BerObjectContent::Sequence(_))
                    && matches!(items[2].content, BerObjectContent::OctetString(_))
            }
            _ => false,
        },
        _ => false,
    }
}

#[test]
fn bug_private_key_pem_of_a_sec1_or_pkcs1_key_is_mislabelled() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::PrivateKeyDer;
    let mut failures = Vec::new();
    for (name, key_cmd, _) in ORG_KEYS {
        let dir = tempfile::tempdir().unwrap();
        openssl_org(dir.path(), key_cmd);
        let ca = CertificateAuthority::from_pem(
            &std::fs::read(dir.path().join("int.pem")).unwrap(),
            &std::fs::read(dir.path().join("int.key")).unwrap(),
            &LoadOptions {
                trust_domain: None,
                roots_pem: Some(std::fs::read(dir.path().join("root.pem")).unwrap()),
            },
        )
        .unwrap();
        // What `save` writes as ca.key.
        ca.save(&dir.path().join("ca"), false).unwrap();
        let saved = std::fs::read(dir.path().join("ca/ca.key")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(&saved).unwrap();
        if let PrivateKeyDer::Pkcs8(der) = &key {
            if !is_pkcs8(der.secret_pkcs8_der()) {
                failures.push(format!(
                    "{name}: a \"PRIVATE KEY\" block that is not PKCS#8"
                ));
            }
        }
        if let Err(e) = mtls_core::default_crypto_provider()
            .key_provider
            .load_private_key(key)
        {
            failures.push(format!("{name}: rustls cannot load the saved key: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One key-size rule: a key the TLS handshake refuses (RSA under 2048
/// bits, a curve rustls does not verify) is refused when a CSR is signed,
/// and a leaf holding one is refused by `verify` (and so `mtls-ca verify`),
/// not only at the handshake.
#[test]
fn bug_weak_or_unsupported_keys_are_refused_everywhere() {
    let cases: [(&str, &[&str], &str); 2] = [
        ("rsa-1024", &["-newkey", "rsa:1024"], "1024 bits"),
        (
            "secp256k1",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
            "curve",
        ),
    ];
    for (name, newkey, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (root, inter) = root_and_intermediate(dir.path(), KeyType::P256);
        let csr = openssl_csr(dir.path(), newkey);
        // Refused by the key rule, with a message that names it.
        let err = inter
            .sign_csr(&csr, &SvidRequest::new(id(WEB)))
            .expect_err(name);
        let message = err.to_string();
        assert!(
            message.contains("unacceptable SVID key") && message.contains(reason),
            "{name}: {message}"
        );

        // A leaf with that key, made by OpenSSL with the intermediate's
        // key, as an attacker or a legacy tool could.
        write(dir.path(), "int.key", inter.private_key_pem().as_bytes());
        write(dir.path(), "int.pem", pem(&inter.chain()[..1]));
        write(
            dir.path(),
            "ext.cnf",
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=critical,URI:{WEB}\n"
            ),
        );
        openssl_ok(
            dir.path(),
            &[
                "x509", "-req", "-in", "req.pem", "-CA", "int.pem", "-CAkey", "int.key", "-days",
                "1", "-extfile", "ext.cnf", "-out", "leaf.pem",
            ],
        );
        let leaf = std::fs::read(dir.path().join("leaf.pem")).unwrap();
        let mut chain: Vec<CertificateDer<'static>> =
            rustls_pki_types::pem::PemObject::pem_slice_iter(&leaf)
                .collect::<Result<_, _>>()
                .unwrap();
        chain.extend(inter.chain().iter().cloned());
        let bundles = BundleSet::from(root.bundle().unwrap());
        let err = verify(
            &chain,
            &bundles,
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Client,
        )
        .expect_err(name);
        assert!(
            matches!(err, mtls_core::VerifyError::UnacceptableKey { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(reason), "{name}: {err}");
    }
}

/// Issue 11, item 5, with certificates OpenSSL makes: a v1 certificate
/// (no extensions, so no basicConstraints) and an OpenSSL leaf are refused
/// as bundle authorities, by the library and by `mtls-ca verify`, while an
/// OpenSSL CA root is accepted.
#[test]
fn bug_openssl_v1_certificates_and_leaves_are_not_bundle_authorities() {
    let dir = tempfile::tempdir().unwrap();
    let td = TrustDomain::new("example.org").unwrap();
    let newkey = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    // A v1 self-signed certificate: `x509 -req -signkey` with no extensions.
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(&newkey);
    args.extend_from_slice(&[
        "-keyout",
        "v1.key",
        "-out",
        "v1.csr",
        "-subj",
        "/CN=v1 root",
    ]);
    openssl_ok(dir.path(), &args);
    openssl_ok(
        dir.path(),
        &[
            "x509", "-req", "-in", "v1.csr", "-signkey", "v1.key", "-days", "1", "-out", "v1.pem",
        ],
    );
    let v1 = std::fs::read(dir.path().join("v1.pem")).unwrap();
    let der =
        <CertificateDer<'_> as rustls_pki_types::pem::PemObject>::from_pem_slice(&v1).unwrap();
    assert_eq!(
        X509Certificate::from_der(&der).unwrap().1.version().0,
        0,
        "a v1 certificate"
    );
    let err = mtls_core::X509Bundle::from_pem(td.clone(), &v1).unwrap_err();
    assert!(
        matches!(&err, mtls_core::BundleError::NotAnAuthority { subject, .. } if subject.contains("v1 root")),
        "{err}"
    );
    assert!(err.to_string().contains("v3"), "{err}");

    // An OpenSSL root CA (req -x509 adds basicConstraints CA:TRUE).
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(&newkey);
    args.extend_from_slice(&[
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=ca", "-days", "1",
    ]);
    openssl_ok(dir.path(), &args);
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    mtls_core::X509Bundle::from_pem(td.clone(), &ca).unwrap();

    // A leaf signed by it, with a SPIFFE ID.
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(&newkey);
    args.extend_from_slice(&[
        "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf",
    ]);
    openssl_ok(dir.path(), &args);
    write(
        dir.path(),
        "ext.cnf",
        format!("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=URI:{WEB}\n"),
    );
    openssl_ok(
        dir.path(),
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "1",
            "-extfile", "ext.cnf", "-out", "leaf.pem",
        ],
    );
    let leaf = std::fs::read(dir.path().join("leaf.pem")).unwrap();
    let mut both = ca.clone();
    both.extend_from_slice(&leaf);
    let err = mtls_core::X509Bundle::from_pem(td, &both).unwrap_err();
    assert!(
        matches!(&err, mtls_core::BundleError::NotAnAuthority { index: 1, spiffe_id: Some(id), .. } if id == WEB),
        "{err}"
    );

    // `mtls-ca verify` with the leaf as its bundle: refused, naming it.
    let out = Command::new(env!("CARGO_BIN_EXE_mtls-ca"))
        .args(["verify", "--trust-domain", "example.org", "--bundle"])
        .arg(dir.path().join("leaf.pem"))
        .arg(dir.path().join("leaf.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("may not be a trust anchor"), "{stderr}");
}
