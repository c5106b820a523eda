//! The `mtls-ca` binary end to end: every command, its exit status (0
//! success, 1 failed or rejected, 2 usage), its files (keys 0600), its
//! output, and interoperability with the OpenSSL command line tool.
//!
//! The OpenSSL tests need the `openssl` binary and fail loudly without it
//! (CI installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mtls_core::to_pem;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

mod common;
use common::{mode, run, s, Out};

/// A development root CA for `td` in `tmp/name`.
fn root(tmp: &Path, name: &str, td: &str) -> PathBuf {
    let dir = tmp.join(name);
    run(init_self_signed(&dir, td, &[])).ok();
    dir
}

/// `init --trust-domain td --dir dir --self-signed` and `extra`.
fn init_self_signed<'a>(dir: &'a Path, td: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "init",
        "--trust-domain",
        td,
        "--dir",
        s(dir),
        "--self-signed",
    ];
    args.extend_from_slice(extra);
    args
}

/// `init --dir dir --from-cert cert --from-key key` and `extra`.
fn init_from<'a>(dir: &'a Path, cert: &'a Path, key: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "init",
        "--dir",
        s(dir),
        "--from-cert",
        s(cert),
        "--from-key",
        s(key),
    ];
    args.extend_from_slice(extra);
    args
}

/// `intermediate --dir parent --out dir` and `extra`.
fn intermediate_cmd<'a>(parent: &'a Path, dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["intermediate", "--dir", s(parent), "--out", s(dir)];
    args.extend_from_slice(extra);
    args
}

/// A temporary directory with a development root for example.org in
/// `name`; returns both.
fn dev_root(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let ca = root(tmp.path(), name, "example.org");
    (tmp, ca)
}

/// Writes `contents` to `dir/name`; returns its path.
fn write_file(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// An intermediate of the CA in `parent`, in `tmp/name`.
fn intermediate(parent: &Path, tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    run(intermediate_cmd(parent, &dir, &[])).ok();
    dir
}

/// Issues `id` from the CA in `dir` to `tmp/prefix.{pem,key}`; returns the
/// chain file and the serial.
fn issue(dir: &Path, tmp: &Path, prefix: &str, id: &str) -> (PathBuf, String) {
    let prefix = tmp.join(prefix);
    let out = run(issue_cmd(dir, id, &prefix, &[])).ok();
    assert_eq!(out.field("spiffe_id"), id);
    (prefix.with_extension("pem"), out.field("serial"))
}

/// A temporary directory with a development root for example.org in `ca`
/// and `spiffe://example.org/web` issued from it to `web.{pem,key}`; returns
/// the directory, the CA's and the chain's paths.
fn web_svid() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (tmp, ca) = dev_root("ca");
    let (chain, _) = issue(&ca, tmp.path(), "web", "spiffe://example.org/web");
    (tmp, ca, chain)
}

/// `issue --dir dir --spiffe-id id --out prefix` and `extra`.
fn issue_cmd(dir: &Path, id: &str, prefix: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "issue",
        "--dir",
        s(dir),
        "--spiffe-id",
        id,
        "--out",
        s(prefix),
    ]
    .map(str::to_owned)
    .into();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

/// `mtls-ca verify` with the bundle of `dir` for trust domain `td`.
fn verify(td: &str, bundle: &Path, chain: &Path, extra: &[&str]) -> Out {
    let mut args = vec![
        "verify".to_owned(),
        "--trust-domain".to_owned(),
        td.to_owned(),
        "--bundle".to_owned(),
        s(bundle).to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args.push(s(chain).to_owned());
    run(args)
}

fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn write_certs(path: &Path, certs: &[CertificateDer<'_>]) {
    let pem: String = certs.iter().map(|c| to_pem("CERTIFICATE", c)).collect();
    std::fs::write(path, pem).unwrap();
}

fn inspect_json(path: &Path) -> serde_json::Value {
    let out = run(["inspect", "--json", s(path)]).ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:#?}"))
}

fn rfc3339_plus(t: &str, delta: i64) -> String {
    let t = rfc3339(t).unwrap();
    let t = if delta >= 0 {
        t + Duration::from_secs(delta as u64)
    } else {
        t - Duration::from_secs(delta.unsigned_abs())
    };
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

// ---------------------------------------------------------------- init

#[test]
fn init_self_signed_writes_the_ca_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let extra = ["--key-type", "p384", "--ttl", "30d"];
    let out = run(init_self_signed(&dir, "example.org", &extra)).ok();
    assert_eq!(out.field("trust_domain"), "example.org");
    assert!(
        out.stderr.contains("development only"),
        "a self-signed root is flagged as development only: {out:#?}"
    );
    for file in ["ca.pem", "ca.key", "bundle.pem", "state.json"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["trust_domain"], "example.org");

    let ca = inspect_json(&dir.join("ca.pem"));
    assert_eq!(ca["is_ca"], true);
    assert_eq!(ca["public_key"], "ECDSA P-384");
    assert_eq!(ca["spiffe_id"], "spiffe://example.org");
    assert_eq!(ca["svid_signing_certificate"]["valid"], true);
    // --ttl 30d: not_after is about 30 days after not_before (+ backdating).
    let nb = rfc3339(ca["not_before"].as_str().unwrap()).unwrap();
    let na = rfc3339(ca["not_after"].as_str().unwrap()).unwrap();
    let days = na.duration_since(nb).unwrap().as_secs() / 86400;
    assert_eq!(days, 30);
}

#[test]
fn init_without_a_mode_explains_why_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    run(["init", "--trust-domain", "example.org", "--dir", s(&dir)])
        .status(2)
        .says(&[
            "development only",
            "organisation's PKI",
            "--from-cert",
            "--from-key",
            "--self-signed",
        ]);
    assert!(!dir.join("ca.key").exists(), "nothing is written");
}

#[test]
fn init_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let a = root(tmp.path(), "a", "example.org");
    let cert = a.join("ca.pem");
    let key = a.join("ca.key");
    let cases = [
        (
            "self-signed without a trust domain",
            vec!["init", "--dir", s(&dir), "--self-signed"],
        ),
        // --from-cert and --from-key go together.
        (
            "from-cert without from-key",
            vec!["init", "--dir", s(&dir), "--from-cert", s(&cert)],
        ),
        (
            "from-key without from-cert",
            vec!["init", "--dir", s(&dir), "--from-key", s(&key)],
        ),
        (
            "both modes at once",
            init_self_signed(
                &dir,
                "example.org",
                &["--from-cert", s(&cert), "--from-key", s(&key)],
            ),
        ),
        (
            "bad trust domain",
            init_self_signed(&dir, "Example.ORG", &[]),
        ),
        (
            "bad key type",
            init_self_signed(&dir, "example.org", &["--key-type", "rsa"]),
        ),
        (
            "ttl without a unit",
            init_self_signed(&dir, "example.org", &["--ttl", "10"]),
        ),
        (
            "zero ttl",
            init_self_signed(&dir, "example.org", &["--ttl", "0s"]),
        ),
        (
            "ttl in years",
            init_self_signed(&dir, "example.org", &["--ttl", "5y"]),
        ),
        (
            "no dir",
            vec!["init", "--trust-domain", "example.org", "--self-signed"],
        ),
    ];
    for (name, args) in &cases {
        let out = run(args).status(2);
        assert!(!out.stderr.is_empty(), "{name}: {args:?}: no message");
    }
    assert!(!dir.exists(), "usage errors write nothing");
    // The duration parser says what is wrong.
    run(init_self_signed(&dir, "example.org", &["--ttl", "10"]))
        .status(2)
        .says(&["no unit", "10d"]);
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = root(tmp.path(), "ca", "example.org");
    let before = std::fs::read(dir.join("ca.pem")).unwrap();
    let key_before = std::fs::read(dir.join("ca.key")).unwrap();
    run(init_self_signed(&dir, "example.org", &[]))
        .status(1)
        .says(&["already holds a CA", "--force"]);
    assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
    assert_eq!(std::fs::read(dir.join("ca.key")).unwrap(), key_before);

    run(init_self_signed(&dir, "example.org", &["--force"])).ok();
    assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
}

#[test]
fn init_loads_an_existing_ca_from_pem() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // "The organisation's PKI": a root and an intermediate.
    let pki_root = root(t, "pki-root", "example.org");
    let pki_int = intermediate(&pki_root, t, "pki-int");

    // Load the intermediate (chain: intermediate, root), roots explicit.
    let loaded = t.join("loaded");
    let (cert, key) = (pki_int.join("ca.pem"), pki_int.join("ca.key"));
    let roots = pki_root.join("bundle.pem");
    let out = run(init_from(
        &loaded,
        &cert,
        &key,
        &["--from-roots", s(&roots)],
    ))
    .ok();
    // The trust domain comes from the certificate's URI SAN.
    assert_eq!(out.field("trust_domain"), "example.org");
    assert!(!out.stderr.contains("development only"), "{out:#?}");
    assert_eq!(mode(&loaded.join("ca.key")), 0o600);
    assert_eq!(
        std::fs::read(loaded.join("bundle.pem")).unwrap(),
        std::fs::read(pki_root.join("bundle.pem")).unwrap()
    );

    let (chain, _) = issue(&loaded, t, "web", "spiffe://example.org/web");
    assert_eq!(read_certs(&chain).len(), 2, "leaf and the intermediate");
    let out = verify("example.org", &pki_root.join("bundle.pem"), &chain, &[]).ok();
    assert_eq!(out.stdout, "spiffe://example.org/web\n");

    // Without --from-roots the last certificate of the chain is the root;
    // --trust-domain may be given explicitly.
    let loaded2 = t.join("loaded2");
    run(init_from(
        &loaded2,
        &cert,
        &key,
        &["--trust-domain", "example.org"],
    ))
    .ok();
    assert_eq!(
        std::fs::read(loaded2.join("bundle.pem")).unwrap(),
        std::fs::read(pki_root.join("bundle.pem")).unwrap()
    );

    // A self-signed root as the signing CA: refused (its key would sign
    // online) unless told it is for development, and then with a warning.
    let (root_cert, root_key) = (pki_root.join("ca.pem"), pki_root.join("ca.key"));
    let as_root = t.join("as-root");
    run(init_from(&as_root, &root_cert, &root_key, &[]))
        .status(1)
        .says(&["self-signed root", "--development"]);
    assert!(!as_root.join("ca.key").exists());
    let out = run(init_from(
        &as_root,
        &root_cert,
        &root_key,
        &["--development"],
    ))
    .ok();
    assert!(out.stderr.contains("development only"), "{out:#?}");
    // --development belongs with --from-cert only.
    run([
        "init",
        "--dir",
        s(&t.join("x")),
        "--self-signed",
        "--trust-domain",
        "example.org",
        "--development",
    ])
    .status(2);
}

#[test]
fn init_rejects_bad_ca_material() {
    let (tmp, a) = dev_root("a");
    let t = tmp.path();
    let b = root(t, "b", "example.org");
    let garbage = write_file(t, "garbage.pem", "this is not a certificate\n");
    let bad_b64 = write_file(
        t,
        "bad-b64.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let dir = t.join("new");
    let (a_cert, a_key) = (a.join("ca.pem"), a.join("ca.key"));
    let (leaf, _) = issue(&a, t, "leaf", "spiffe://example.org/leaf");
    let leaf_key = t.join("leaf.key");
    let missing = t.join("missing.pem");
    let other_td = ["--trust-domain", "other.org"];
    // a's certificate is a development root: accepted as one, so that the
    // checks after that one are reached.
    let dev: &[&str] = &["--development"];
    // Name, --from-cert, --from-key, extra arguments, what stderr says.
    type Case<'a> = (&'a str, &'a Path, &'a Path, &'a [&'a str], &'a [&'a str]);
    let cases: [Case<'_>; 7] = [
        (
            "garbage certificate",
            &garbage,
            &a_key,
            &[],
            &["no certificate"],
        ),
        ("bad base64", &bad_b64, &a_key, &[], &["PEM"]),
        ("garbage key", &a_cert, &garbage, dev, &["private key"]),
        (
            "key of another CA",
            &a_cert,
            &b.join("ca.key"),
            dev,
            &["does not match"],
        ),
        (
            "leaf is not a CA",
            &leaf,
            &leaf_key,
            &[],
            &["not a signing CA"],
        ),
        // A trust domain that contradicts the certificate's SPIFFE ID.
        (
            "contradicting trust domain",
            &a_cert,
            &a_key,
            &other_td,
            &["example.org", "other.org"],
        ),
        (
            "missing file",
            &missing,
            &a_key,
            &[],
            &["cannot read", "missing.pem"],
        ),
    ];
    for (name, cert, key, extra, needles) in cases {
        let out = run(init_from(&dir, cert, key, extra));
        let said = needles.iter().all(|n| out.stderr.contains(n));
        assert!(out.code == Some(1) && said, "{name}: {out:#?}");
        out.says(needles);
    }
    assert!(!dir.join("ca.key").exists());
}

// ---------------------------------------------------------------- issue

#[test]
fn issue_writes_chain_and_private_key() {
    let (tmp, ca) = dev_root("ca");
    let t = tmp.path();
    let prefix = t.join("web");
    let out = run(issue_cmd(
        &ca,
        "spiffe://example.org/ns/prod/web",
        &prefix,
        &[
            "--dns",
            "web.example.org",
            "--dns",
            "web",
            "--ttl",
            "10m",
            "--key-type",
            "ed25519",
            "--common-name",
            "web",
        ],
    ))
    .ok();
    assert_eq!(out.field("spiffe_id"), "spiffe://example.org/ns/prod/web");
    let serial = out.field("serial");
    assert!(
        serial.len() >= 2 && serial.chars().all(|c| c.is_ascii_hexdigit()),
        "serial is hex: {serial}"
    );
    let cert = t.join("web.pem");
    let key = t.join("web.key");
    assert_eq!(mode(&key), 0o600);
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("PRIVATE KEY"));
    assert_eq!(
        read_certs(&cert).len(),
        1,
        "a root CA serves no intermediate"
    );
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(t)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains(".tmp")),
        "temporary files left: {names:?}"
    );

    // The files form a working SVID.
    let svid = mtls_core::X509Svid::from_pem(
        &std::fs::read(&cert).unwrap(),
        &std::fs::read(&key).unwrap(),
    )
    .unwrap();
    assert_eq!(
        svid.spiffe_id().as_str(),
        "spiffe://example.org/ns/prod/web"
    );

    let info = inspect_json(&cert);
    assert_eq!(info["serial"], serial.as_str());
    assert_eq!(info["public_key"], "Ed25519");
    assert_eq!(info["subject"], "CN=web");
    assert_eq!(
        info["dns_sans"],
        serde_json::json!(["web.example.org", "web"])
    );
    let nb = rfc3339(info["not_before"].as_str().unwrap()).unwrap();
    let na = rfc3339(info["not_after"].as_str().unwrap()).unwrap();
    let lifetime = na.duration_since(nb).unwrap();
    // 10 minutes, plus the CA's backdating for clock skew.
    assert!(lifetime >= Duration::from_secs(600) && lifetime <= Duration::from_secs(600 + 3600));

    // Issuing again to the same prefix replaces both files atomically.
    let again = run(issue_cmd(
        &ca,
        "spiffe://example.org/ns/prod/web",
        &prefix,
        &[],
    ))
    .ok();
    assert_ne!(again.field("serial"), serial, "serials are never reused");
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn issue_refuses_what_the_ca_may_not_issue() {
    let (tmp, ca) = dev_root("ca");
    let t = tmp.path();
    let x = t.join("x");
    let issue_args = |id: &str, extra: &[&str]| run(issue_cmd(&ca, id, &x, extra));
    issue_args("spiffe://other.org/web", &[])
        .status(1)
        .says(&["other.org", "not in trust domain"]);
    issue_args("spiffe://example.org", &[])
        .status(1)
        .says(&["no path"]);
    issue_args("spiffe://example.org/web", &["--ttl", "30d"])
        .status(1)
        .says(&["exceeds the maximum"]);
    // Usage errors.
    issue_args("spiffe://example.org/web/", &[]).status(2);
    issue_args("https://example.org/web", &[]).status(2);
    issue_args("spiffe://example.org/web", &["--dns", "not a name"])
        .status(2)
        .says(&["not a valid DNS name"]);
    issue_args("spiffe://example.org/web", &["--key-type", "rsa"]).status(2);
    // A directory as the prefix.
    run(issue_cmd(&ca, "spiffe://example.org/web", t, &[]))
        .status(2)
        .says(&["prefix"]);
    // A directory that holds no CA.
    run(issue_cmd(
        &t.join("nothing"),
        "spiffe://example.org/web",
        &t.join("y"),
        &[],
    ))
    .status(1)
    .says(&["cannot open the CA"]);
    assert!(!t.join("x.key").exists() && !t.join("y.key").exists());
}

// ---------------------------------------------------------------- verify

#[test]
fn verify_accepts_an_issued_svid() {
    let (tmp, ca, chain) = web_svid();
    let t = tmp.path();
    let out = verify("example.org", &ca.join("bundle.pem"), &chain, &[]).ok();
    assert_eq!(out.stdout, "spiffe://example.org/web\n");
    // The trust domain may be given as its SPIFFE ID.
    verify("spiffe://example.org", &ca.join("bundle.pem"), &chain, &[]).ok();
    // A DER leaf is accepted too.
    let der = write_file(t, "web.der", read_certs(&chain)[0].as_ref());
    verify("example.org", &ca.join("bundle.pem"), &der, &[]).ok();
}

#[test]
fn verify_rejects_a_tampered_signature() {
    let (tmp, ca, chain) = web_svid();
    let t = tmp.path();
    let mut certs = read_certs(&chain);
    // The signature BIT STRING ends the certificate: flip its last byte.
    let mut leaf = certs[0].as_ref().to_vec();
    *leaf.last_mut().unwrap() ^= 0x01;
    certs[0] = CertificateDer::from(leaf);
    let tampered = t.join("tampered.pem");
    write_certs(&tampered, &certs);
    let out = verify("example.org", &ca.join("bundle.pem"), &tampered, &[])
        .status(1)
        .says(&["rejected", "signature"]);
    assert!(out.stdout.is_empty(), "nothing on stdout when rejected");
}

#[test]
fn verify_checks_validity_at_the_given_time() {
    let (_tmp, ca, chain) = web_svid();
    let info = inspect_json(&chain);
    let not_after = info["not_after"].as_str().unwrap();
    let not_before = info["not_before"].as_str().unwrap();
    let bundle = ca.join("bundle.pem");

    let after = rfc3339_plus(not_after, 60);
    verify("example.org", &bundle, &chain, &["--at", &after])
        .status(1)
        .says(&["expired"]);
    let before = rfc3339_plus(not_before, -60);
    verify("example.org", &bundle, &chain, &["--at", &before])
        .status(1)
        .says(&["not valid before"]);
    let during = rfc3339_plus(not_before, 120);
    verify("example.org", &bundle, &chain, &["--at", &during]).ok();
    // Not a time: usage error.
    verify("example.org", &bundle, &chain, &["--at", "tomorrow"])
        .status(2)
        .says(&["RFC 3339"]);
}

#[test]
fn revoked_certificates_are_rejected_with_the_crl() {
    let (tmp, ca) = dev_root("ca");
    let t = tmp.path();
    let (revoked, serial) = issue(&ca, t, "revoked", "spiffe://example.org/revoked");
    let (kept, _) = issue(&ca, t, "kept", "spiffe://example.org/kept");
    let bundle = ca.join("bundle.pem");

    // Colons and upper case are accepted, as printed by other tools.
    let colons: Vec<String> = serial
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let out = run(["revoke", "--dir", s(&ca), "--serial", &colons.join(":")]).ok();
    assert!(out.stdout.starts_with("revoked: "), "{out:#?}");
    // Revoking twice is fine.
    let out = run(["revoke", "--dir", s(&ca), "--serial", &serial]).ok();
    assert!(out.stdout.starts_with("already revoked: "), "{out:#?}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ca.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["revoked"][0]["serial"], serial.as_str());

    let crl = t.join("crl.pem");
    let out = run(["crl", "--dir", s(&ca), "--out", s(&crl), "--validity", "2h"]).ok();
    assert_eq!(out.field("crl_number"), "1");
    assert_eq!(out.field("revoked"), "1");
    assert!(std::fs::read_to_string(&crl)
        .unwrap()
        .starts_with("-----BEGIN X509 CRL-----\n"));

    let crl_arg = s(&crl).to_owned();
    verify("example.org", &bundle, &revoked, &["--crl", &crl_arg])
        .status(1)
        .says(&["revoked"]);
    verify("example.org", &bundle, &kept, &["--crl", &crl_arg]).ok();
    // Without the CRL the verifier cannot know.
    verify("example.org", &bundle, &revoked, &[]).ok();

    // The CRL as DER works too.
    let der = CertificateRevocationListDer::from_pem_file(&crl).unwrap();
    let crl_der = write_file(t, "crl.der", der.as_ref());
    verify("example.org", &bundle, &revoked, &["--crl", s(&crl_der)])
        .status(1)
        .says(&["revoked"]);

    // The CRL number is persisted: the next CRL has the next number.
    let out = run(["crl", "--dir", s(&ca), "--out", s(&crl)]).ok();
    assert_eq!(out.field("crl_number"), "2");

    // Bad input.
    run(["revoke", "--dir", s(&ca), "--serial", "xyz"])
        .status(2)
        .says(&["not a hex serial"]);
    let garbage = write_file(t, "garbage.crl", "garbage");
    verify("example.org", &bundle, &kept, &["--crl", s(&garbage)])
        .status(1)
        .says(&["CRL", "garbage.crl"]);
    run(["crl", "--dir", s(&ca), "--out", s(&crl), "--validity", "1x"]).status(2);
}

#[test]
fn verify_rejects_a_chain_from_another_ca() {
    let (tmp, ours) = dev_root("ours");
    let t = tmp.path();
    let theirs = root(t, "theirs", "example.org");
    let (chain, _) = issue(&theirs, t, "web", "spiffe://example.org/web");
    // Every development root of one trust domain has the same subject, so
    // the verifier may find "our" root as the issuer by name and then fail
    // on the signature; either way the reason is given.
    let out = verify("example.org", &ours.join("bundle.pem"), &chain, &[]).status(1);
    assert!(
        out.stderr
            .contains("not signed by an authority of trust domain example.org")
            || out.stderr.contains("signature in the chain"),
        "{out:#?}"
    );
}

#[test]
fn verify_accepts_a_jwks_bundle() {
    let (tmp, ca, chain) = web_svid();
    let t = tmp.path();
    let out = run(["bundle", "--dir", s(&ca), "--format", "jwks"]).ok();
    let jwks: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(jwks["keys"][0]["use"], "x509-svid");
    assert!(jwks["spiffe_sequence"].is_u64());
    let file = write_file(t, "bundle.json", &out.stdout);
    let out = verify("example.org", &file, &chain, &[]).ok();
    assert_eq!(out.stdout, "spiffe://example.org/web\n");

    // `bundle --format pem` (the default) prints bundle.pem.
    let out = run(["bundle", "--dir", s(&ca)]).ok();
    assert_eq!(
        out.stdout,
        std::fs::read_to_string(ca.join("bundle.pem")).unwrap()
    );
    run(["bundle", "--dir", s(&ca), "--format", "der"]).status(2);
}

#[test]
fn verify_uses_federated_bundles_per_trust_domain() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = root(t, "a", "a.example");
    let b = root(t, "b", "b.example");
    let (chain_b, _) = issue(&b, t, "b-web", "spiffe://b.example/web");
    let (chain_a, _) = issue(&a, t, "a-web", "spiffe://a.example/web");
    let (a_pem, b_pem) = (a.join("bundle.pem"), b.join("bundle.pem"));
    let b_bundle = format!("b.example={}", s(&b_pem));

    // A peer of b.example, verified with b.example's bundle.
    let out = verify("a.example", &a_pem, &chain_b, &["--bundle", &b_bundle]).ok();
    assert_eq!(out.stdout, "spiffe://b.example/web\n");
    // And our own trust domain still works beside it.
    verify("a.example", &a_pem, &chain_a, &["--bundle", &b_bundle]).ok();
    // Without b.example's bundle: rejected.
    verify("a.example", &a_pem, &chain_b, &[])
        .status(1)
        .says(&["no bundle for trust domain b.example"]);
    // Bundles are never merged: a.example's CA does not vouch for
    // b.example, even when given as b.example's bundle.
    let wrong = format!("b.example={}", s(&a_pem));
    let (forged, _) = issue(&a, t, "a-db", "spiffe://a.example/db");
    verify("b.example", &b_pem, &forged, &[])
        .status(1)
        .says(&["no bundle for trust domain a.example"]);
    verify("a.example", &b_pem, &chain_b, &["--bundle", &wrong])
        .status(1)
        .says(&["not signed by an authority of trust domain b.example"]);

    // A JWKS file for the federated trust domain.
    let jwks = run(["bundle", "--dir", s(&b), "--format", "jwks"])
        .ok()
        .stdout;
    let jwks_file = write_file(t, "b.json", jwks);
    let b_jwks = format!("spiffe://b.example={}", s(&jwks_file));
    verify("a.example", &a_pem, &chain_b, &["--bundle", &b_jwks]).ok();

    // Every --bundle named: --trust-domain is optional.
    let a_bundle = format!("a.example={}", s(&a_pem));
    let out = run([
        "verify",
        "--bundle",
        &a_bundle,
        "--bundle",
        &b_bundle,
        s(&chain_b),
    ])
    .ok();
    assert_eq!(out.stdout, "spiffe://b.example/web\n");
    // A bare --bundle without --trust-domain: usage error.
    run(["verify", "--bundle", s(&a_pem), s(&chain_a)])
        .status(2)
        .says(&["--trust-domain"]);
    // Two bundles for one trust domain: usage error (never merged).
    verify("b.example", &a_pem, &chain_b, &["--bundle", &b_bundle])
        .status(2)
        .says(&["two bundles for trust domain b.example"]);
    // No --bundle at all: usage error.
    run(["verify", "--trust-domain", "a.example", s(&chain_a)]).status(2);
}

#[test]
fn verify_reports_unusable_input_files() {
    let (tmp, ca, chain) = web_svid();
    let t = tmp.path();
    let bundle = ca.join("bundle.pem");
    let garbage = write_file(t, "garbage.pem", "garbage, not PEM\n");
    let bad_pem = write_file(
        t,
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
    );
    let not_x509 = write_file(
        t,
        "not-x509.pem",
        to_pem("CERTIFICATE", b"\x30\x03\x02\x01\x01"),
    );
    let random_der = write_file(t, "random.der", [0x30, 0x82, 0xff, 0xff, 1, 2, 3]);

    let bad_json = write_file(t, "bad.json", "{\"keys\": 3}");
    let empty = write_file(t, "empty.json", "{\"keys\": []}");
    let (missing, ca_cert) = (t.join("missing.pem"), ca.join("ca.pem"));
    // Name, bundle, chain, what stderr says; each is rejected (status 1).
    let cases: [(&str, &Path, &Path, &[&str]); 9] = [
        (
            "garbage chain",
            &bundle,
            &garbage,
            &["no CERTIFICATE block", "garbage.pem"],
        ),
        ("malformed PEM chain", &bundle, &bad_pem, &["malformed PEM"]),
        ("not X.509", &bundle, &not_x509, &["rejected", "malformed"]),
        ("random DER", &bundle, &random_der, &["rejected"]),
        (
            "missing chain",
            &bundle,
            &missing,
            &["cannot read chain", "missing.pem"],
        ),
        (
            "garbage bundle",
            &garbage,
            &chain,
            &["bundle", "garbage.pem"],
        ),
        ("bad JWKS bundle", &bad_json, &chain, &["bad.json"]),
        // An empty JWKS trusts nothing: a rejection, not an input error.
        ("empty JWKS bundle", &empty, &chain, &["rejected"]),
        // A CA certificate is never a peer identity.
        (
            "CA certificate as the chain",
            &bundle,
            &ca_cert,
            &["rejected"],
        ),
    ];
    for (name, bundle, chain, needles) in cases {
        let out = verify("example.org", bundle, chain, &[]);
        let said = needles.iter().all(|n| out.stderr.contains(n));
        assert!(out.code == Some(1) && said, "{name}: {out:#?}");
        out.says(needles);
    }
}

// ---------------------------------------------------------------- intermediate

#[test]
fn intermediate_issues_chains_that_verify_against_the_root() {
    let (tmp, root_dir) = dev_root("root");
    let int = tmp.path().join("cluster-1");
    let t = tmp.path();
    run(intermediate_cmd(
        &root_dir,
        &int,
        &["--ttl", "90d", "--key-type", "p384"],
    ))
    .ok();
    assert_eq!(mode(&int.join("ca.key")), 0o600);
    assert_eq!(
        read_certs(&int.join("ca.pem")).len(),
        2,
        "intermediate, root"
    );
    assert_eq!(
        std::fs::read(int.join("bundle.pem")).unwrap(),
        std::fs::read(root_dir.join("bundle.pem")).unwrap()
    );
    let info = inspect_json(&int.join("ca.pem"));
    assert_eq!(info["is_ca"], true);
    assert_eq!(info["public_key"], "ECDSA P-384");

    let (chain, _) = issue(&int, t, "web", "spiffe://example.org/web");
    assert_eq!(read_certs(&chain).len(), 2, "leaf, intermediate");
    let out = verify("example.org", &root_dir.join("bundle.pem"), &chain, &[]).ok();
    assert_eq!(out.stdout, "spiffe://example.org/web\n");

    // Without the intermediate, the leaf does not chain to the root.
    let leaf_only = t.join("leaf-only.pem");
    write_certs(&leaf_only, &read_certs(&chain)[..1]);
    verify("example.org", &root_dir.join("bundle.pem"), &leaf_only, &[])
        .status(1)
        .says(&["rejected"]);

    // Refuses to overwrite, and never the parent itself.
    run(intermediate_cmd(&root_dir, &int, &[]))
        .status(1)
        .says(&["--force"]);
    run(intermediate_cmd(&root_dir, &root_dir, &["--force"]))
        .status(2)
        .says(&["own directory"]);
    run(intermediate_cmd(&root_dir, &int, &["--force"])).ok();
}

// ---------------------------------------------------------------- inspect

#[test]
fn inspect_shows_an_svid_in_text_and_json() {
    let (tmp, ca) = dev_root("ca");
    let t = tmp.path();
    let int = intermediate(&ca, t, "int");
    let (chain, serial) = issue(&int, t, "web", "spiffe://example.org/web");

    let text = run(["inspect", s(&chain)]).ok().stdout;
    for needle in [
        "spiffe://example.org/web",
        &serial,
        "digitalSignature (critical)",
        "serverAuth, clientAuth",
        "mtls intermediate CA for example.org",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let line = |label: &str| {
        text.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in:\n{text}"))
            .to_owned()
    };
    assert!(line("X.509-SVID leaf:").ends_with("yes"), "{text}");
    assert!(line("CA:").ends_with("no"), "{text}");
    assert!(line("Not after:").contains('T'), "{text}");

    let j = inspect_json(&chain);
    assert_eq!(j["spiffe_id"], "spiffe://example.org/web");
    assert_eq!(j["serial"], serial.as_str());
    assert_eq!(j["is_ca"], false);
    assert_eq!(j["key_usage"], serde_json::json!(["digitalSignature"]));
    assert_eq!(j["key_usage_critical"], true);
    assert_eq!(
        j["extended_key_usage"],
        serde_json::json!(["serverAuth", "clientAuth"])
    );
    assert_eq!(j["svid_leaf"]["valid"], true);
    assert_eq!(j["svid_leaf"]["problems"], serde_json::json!([]));
    assert_eq!(j["certificates_in_file"], 2);
    assert_eq!(j["subject"], "");
    assert!(rfc3339(j["not_before"].as_str().unwrap()).is_ok());
    assert!(rfc3339(j["not_after"].as_str().unwrap()).is_ok());

    // A CA certificate: not a leaf, and inspect says which rules fail.
    let j = inspect_json(&int.join("ca.pem"));
    assert_eq!(j["is_ca"], true);
    assert_eq!(j["spiffe_id"], "spiffe://example.org");
    assert_eq!(j["svid_leaf"]["valid"], false);
    let problems = j["svid_leaf"]["problems"].to_string();
    for needle in [
        "no path",
        "cA is true",
        "lacks digitalSignature",
        "keyCertSign",
        "cRLSign",
    ] {
        assert!(problems.contains(needle), "{needle:?} missing: {problems}");
    }
    let text = run(["inspect", s(&int.join("ca.pem"))]).ok().stdout;
    assert!(
        text.contains("X.509-SVID leaf:") && text.contains("no: "),
        "{text}"
    );

    // Garbage.
    let garbage = write_file(t, "garbage.pem", "nothing here");
    run(["inspect", s(&garbage)])
        .status(1)
        .says(&["no CERTIFICATE block"]);
    let not_x509 = write_file(
        t,
        "not-x509.pem",
        to_pem("CERTIFICATE", b"\x30\x03\x02\x01\x01"),
    );
    run(["inspect", "--json", s(&not_x509)])
        .status(1)
        .says(&["not a valid X.509 certificate"]);
    run(["inspect"]).status(2);
}

#[test]
fn inspect_reports_why_a_plain_certificate_is_not_an_svid() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cert = t.join("plain.pem");
    let status = openssl()
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=plain"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "keyUsage=critical,keyEncipherment"])
        .arg("-keyout")
        .arg(t.join("plain.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let j = inspect_json(&cert);
    assert_eq!(j["spiffe_id"], serde_json::Value::Null);
    assert_eq!(j["subject"], "CN=plain");
    assert_eq!(j["key_usage"], serde_json::json!(["keyEncipherment"]));
    assert_eq!(j["svid_leaf"]["valid"], false);
    let problems = j["svid_leaf"]["problems"].to_string();
    assert!(problems.contains("no URI SAN"), "{problems}");
    assert!(problems.contains("lacks digitalSignature"), "{problems}");
    let text = run(["inspect", s(&cert)]).ok().stdout;
    assert!(
        text.contains("SPIFFE ID:") && text.contains("(none)"),
        "{text}"
    );
}

// ---------------------------------------------------------------- OpenSSL

/// The `openssl` command; fails the test loudly when it is not installed.
fn openssl() -> Command {
    let installed = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        installed,
        "the `openssl` command line tool is required by this test and was not found \
         (CI installs it: apt-get install openssl)"
    );
    Command::new("openssl")
}

/// Splits a chain file into `leaf.pem` and `intermediates.pem` in `dir`.
fn split_chain(chain: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let certs = read_certs(chain);
    assert!(certs.len() >= 2, "expected leaf and intermediates");
    let leaf = dir.join("leaf.pem");
    let rest = dir.join("intermediates.pem");
    write_certs(&leaf, &certs[..1]);
    write_certs(&rest, &certs[1..]);
    (leaf, rest)
}

/// `openssl verify -x509_strict` for TLS client and server use.
fn openssl_verify(bundle: &Path, intermediates: &Path, leaf: &Path) {
    for purpose in ["sslclient", "sslserver"] {
        let out = openssl()
            .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
            .arg(bundle)
            .arg("-untrusted")
            .arg(intermediates)
            .arg(leaf)
            .output()
            .unwrap();
        let (stdout, stderr) = (out.stdout.as_slice(), out.stderr.as_slice());
        let (stdout, stderr) = (
            String::from_utf8_lossy(stdout),
            String::from_utf8_lossy(stderr),
        );
        let verified = out.status.success() && stdout.contains(": OK");
        assert!(
            verified,
            "openssl verify -purpose {purpose} failed:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn openssl_accepts_issued_svids() {
    let (tmp, ca) = dev_root("root");
    let t = tmp.path();
    for key_type in ["p256", "p384", "ed25519"] {
        let int = t.join(format!("int-{key_type}"));
        run(intermediate_cmd(&ca, &int, &["--key-type", key_type])).ok();
        let prefix = t.join(format!("web-{key_type}"));
        run(issue_cmd(
            &int,
            "spiffe://example.org/web",
            &prefix,
            &["--dns", "web.example.org", "--key-type", key_type],
        ))
        .ok();
        let chain = prefix.with_extension("pem");
        let parts = t.join(format!("parts-{key_type}"));
        std::fs::create_dir(&parts).unwrap();
        let (leaf, intermediates) = split_chain(&chain, &parts);
        openssl_verify(&ca.join("bundle.pem"), &intermediates, &leaf);

        // OpenSSL reads the private key, and it matches the certificate.
        // (Ed25519: see `openssl_reads_ed25519_private_keys`.)
        if key_type != "ed25519" {
            assert_openssl_key_matches(&prefix.with_extension("key"), &leaf);
        }
    }
}

/// Ed25519 private keys are written as PKCS#8 v2 (RFC 5958, with the
/// public key), as aws-lc-rs generates them; OpenSSL 3.0 cannot read that
/// ("unsupported"). The library should write PKCS#8 v1 (RFC 8410), as
/// OpenSSL does; rustls and rcgen read both.
#[test]
fn openssl_reads_ed25519_private_keys() {
    let (tmp, ca) = dev_root("root");
    let t = tmp.path();
    let prefix = t.join("web");
    run(issue_cmd(
        &ca,
        "spiffe://example.org/web",
        &prefix,
        &["--key-type", "ed25519"],
    ))
    .ok();
    assert_openssl_key_matches(&prefix.with_extension("key"), &prefix.with_extension("pem"));
}

/// The public key `openssl args path` prints; fails when OpenSSL cannot
/// read `path`.
fn openssl_pubkey(args: &[&str], path: &Path) -> String {
    let out = openssl().args(args).arg(path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = path.display();
    assert!(
        out.status.success(),
        "openssl cannot read {shown}: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// OpenSSL reads `key`, and its public key is the one in `cert`.
fn assert_openssl_key_matches(key: &Path, cert: &Path) {
    let key_pub = openssl_pubkey(&["pkey", "-pubout", "-in"], key);
    let cert_pub = openssl_pubkey(&["x509", "-noout", "-pubkey", "-in"], cert);
    assert_eq!(
        key_pub,
        cert_pub,
        "{} does not hold the key of {}",
        key.display(),
        cert.display()
    );
}

/// `openssl req -new` with a new P-256 key written to `key`, subject
/// `/CN=x` and `extra` arguments; the CSR is written to `csr`.
fn openssl_csr(key: &Path, csr: &Path, extra: &[&str]) {
    let out = openssl()
        .args(["req", "-new", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(csr)
        .args(["-subj", "/CN=x"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn sign_csr_from_openssl_verifies_with_us_and_openssl() {
    let (tmp, ca) = dev_root("root");
    let t = tmp.path();
    let int = intermediate(&ca, t, "int");
    let req = t.join("req.pem");
    let key = t.join("k.pem");
    openssl_csr(&key, &req, &[]);

    let cert = t.join("cert.pem");
    let out = run([
        "sign-csr",
        "--dir",
        s(&int),
        "--csr",
        s(&req),
        "--spiffe-id",
        "spiffe://example.org/from-csr",
        "--dns",
        "csr.example.org",
        "--ttl",
        "2h",
        "--out",
        s(&cert),
    ])
    .ok();
    assert_eq!(out.field("spiffe_id"), "spiffe://example.org/from-csr");
    assert_eq!(read_certs(&cert).len(), 2, "leaf, intermediate");

    let out = verify("example.org", &ca.join("bundle.pem"), &cert, &[]).ok();
    assert_eq!(out.stdout, "spiffe://example.org/from-csr\n");
    let (leaf, intermediates) = split_chain(&cert, t);
    openssl_verify(&ca.join("bundle.pem"), &intermediates, &leaf);

    // The certificate carries the CSR's key, and nothing of its subject.
    let j = inspect_json(&leaf);
    assert_eq!(j["subject"], "");
    assert_eq!(j["svid_leaf"]["valid"], true);
    assert_openssl_key_matches(&key, &leaf);

    // A CSR asking for another SPIFFE ID is refused.
    let other = t.join("other.pem");
    openssl_csr(
        &t.join("k2.pem"),
        &other,
        &["-addext", "subjectAltName=URI:spiffe://example.org/admin"],
    );
    let refused = t.join("refused.pem");
    run([
        "sign-csr",
        "--dir",
        s(&int),
        "--csr",
        s(&other),
        "--spiffe-id",
        "spiffe://example.org/from-csr",
        "--out",
        s(&refused),
    ])
    .status(1)
    .says(&["spiffe://example.org/admin"]);
    assert!(!refused.exists());
}

#[test]
fn sign_csr_rejects_garbage() {
    let (tmp, ca) = dev_root("ca");
    let t = tmp.path();
    let out_file = t.join("cert.pem");
    let sign = |csr: &Path| {
        run([
            "sign-csr",
            "--dir",
            s(&ca),
            "--csr",
            s(csr),
            "--spiffe-id",
            "spiffe://example.org/web",
            "--out",
            s(&out_file),
        ])
    };
    let garbage = write_file(t, "garbage.csr", "this is not a CSR");
    sign(&garbage).status(1).says(&["invalid CSR"]);
    let bad_pem = write_file(
        t,
        "bad.csr",
        "-----BEGIN CERTIFICATE REQUEST-----\n@@@\n-----END CERTIFICATE REQUEST-----\n",
    );
    sign(&bad_pem).status(1).says(&["invalid CSR"]);
    // A certificate is not a CSR.
    sign(&ca.join("ca.pem")).status(1).says(&["invalid CSR"]);
    let empty = write_file(t, "empty.csr", "");
    sign(&empty).status(1).says(&["CSR"]);
    sign(&t.join("missing.csr"))
        .status(1)
        .says(&["cannot read CSR"]);
    assert!(!out_file.exists());
}

// ---------------------------------------------------------------- misc

#[test]
fn help_and_usage() {
    let out = run(["--help"]).ok();
    for cmd in [
        "init",
        "intermediate",
        "issue",
        "sign-csr",
        "bundle",
        "verify",
        "revoke",
        "crl",
        "inspect",
    ] {
        assert!(out.stdout.contains(cmd), "{cmd} missing from --help");
    }
    assert!(out.stdout.contains("Exit status"), "{}", out.stdout);
    let out = run(["verify", "--help"]).ok();
    assert!(out.stdout.contains("TD=FILE") || out.stdout.contains("[TD=]FILE"));
    run(["no-such-command"]).status(2);
    run(Vec::<String>::new()).status(2);
}

// ---------------------------------------------------------------- concurrency

/// Sixteen `revoke` runs in parallel with `issue` and `crl` runs on one CA
/// directory: the directory lock serialises their read-modify-writes, so no
/// revocation is lost, no serial repeats and no CRL number is reused.
#[test]
fn parallel_commands_on_one_ca_directory_lose_no_update() {
    const N: usize = 16;
    let (tmp, ca) = dev_root("ca");
    let t = tmp.path();
    let bundle = ca.join("bundle.pem");
    let issued: Vec<(PathBuf, String)> = (0..N)
        .map(|i| {
            issue(
                &ca,
                t,
                &format!("w{i}"),
                &format!("spiffe://example.org/w{i}"),
            )
        })
        .collect();

    let outs: Vec<(&str, Out)> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (_, serial) in &issued {
            let ca = &ca;
            handles.push(scope.spawn(move || {
                (
                    "revoke",
                    run(["revoke", "--dir", s(ca), "--serial", serial]),
                )
            }));
        }
        for i in 0..4 {
            let (ca, prefix) = (&ca, t.join(format!("p{i}")));
            handles.push(scope.spawn(move || {
                let id = format!("spiffe://example.org/p{i}");
                let args = [
                    "issue",
                    "--dir",
                    s(ca),
                    "--spiffe-id",
                    &id,
                    "--out",
                    s(&prefix),
                ];
                ("issue", run(args))
            }));
        }
        for i in 0..4 {
            let (ca, out) = (&ca, t.join(format!("crl{i}.pem")));
            handles
                .push(scope.spawn(move || ("crl", run(["crl", "--dir", s(ca), "--out", s(&out)]))));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut serials: Vec<String> = issued.iter().map(|(_, s)| s.clone()).collect();
    let mut crl_numbers = Vec::new();
    for (what, out) in outs {
        let out = out.ok();
        match what {
            "revoke" => assert!(out.stdout.starts_with("revoked: "), "{out:#?}"),
            "issue" => serials.push(out.field("serial")),
            _ => crl_numbers.push(out.field("crl_number")),
        }
    }
    let n = serials.len();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), n, "serials repeat");
    let crl = t.join("crl.pem");
    let out = run(["crl", "--dir", s(&ca), "--out", s(&crl)]).ok();
    assert_eq!(
        out.field("revoked"),
        N.to_string(),
        "revocations lost: {out:#?}"
    );
    crl_numbers.push(out.field("crl_number"));
    let n = crl_numbers.len();
    crl_numbers.sort();
    crl_numbers.dedup();
    assert_eq!(crl_numbers.len(), n, "CRL numbers reused: {crl_numbers:?}");

    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ca.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["revoked"].as_array().unwrap().len(), N);
    for (chain, _) in &issued {
        verify("example.org", &bundle, chain, &["--crl", s(&crl)])
            .status(1)
            .says(&["revoked"]);
    }
    verify(
        "example.org",
        &bundle,
        &t.join("p0.pem"),
        &["--crl", s(&crl)],
    )
    .ok();
}

/// Parses an RFC 3339 time as the CLI prints it.
fn rfc3339(s: &str) -> Result<std::time::SystemTime, time::error::Parse> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(std::time::SystemTime::from)
}
