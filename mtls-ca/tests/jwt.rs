//! JWT-SVIDs from the CA: minted tokens are checked by an independent
//! verifier (Python's `cryptography`, `tests/jwt/verify_jws.py`) against
//! the CA's SPIFFE bundle; the policy refuses what it must; the signing key
//! rotates with overlap and survives the CA directory; `mtls-ca jwt` and
//! `mtls-ca bundle --format jwks` keep their contract.
//!
//! Needs `python3` with `cryptography` and fails loudly without them (CI
//! installs Debian's `python3-cryptography`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtls_ca::{
    CaError, CaOptions, CertificateAuthority, IssuancePolicy, JwtSvidRequest, KeyType,
    DEFAULT_MAX_JWT_TTL, JWT_KEYS_FILE,
};
use mtls_core::{SpiffeBundle, TrustDomain};
use mtls_testing::id;
use serde_json::Value;

mod common;
use common::{mode, run, run_with_stdin, s};

const WEB: &str = "spiffe://example.org/web";

fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

fn dev_ca() -> CertificateAuthority {
    CertificateAuthority::self_signed_for_development(td(), &CaOptions::default()).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The verdict of the independent verifier on `token` against `bundle`:
/// `Ok({"header", "claims"})` or `Err(reason)`.
fn python_verify(bundle: &str, token: &str) -> Result<Value, String> {
    let dir = tempfile::tempdir().unwrap();
    let bundle_path = dir.path().join("bundle.json");
    std::fs::write(&bundle_path, bundle).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jwt/verify_jws.py");
    let out = match Command::new("python3")
        .arg(script)
        .arg(&bundle_path)
        .arg(token)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run python3 ({e}): these tests need python3 with `cryptography` \
             (CI installs them; locally: apt-get install python3-cryptography)"
        ),
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "python3 lacks `cryptography` (apt-get install python3-cryptography): {stderr}"
    );
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(stderr)
    }
}

fn jwks(ca: &CertificateAuthority) -> String {
    ca.spiffe_bundle().unwrap().to_jwks().unwrap()
}

#[test]
fn minted_tokens_verify_independently_with_the_claims_asked_for() {
    let ca = dev_ca();
    let before = now();
    let token = ca
        .mint_jwt_svid(
            &JwtSvidRequest::new(id(WEB), "spiffe://example.org/api")
                .audience("billing")
                .ttl(Duration::from_secs(120)),
        )
        .unwrap();
    let seen = python_verify(&jwks(&ca), &token).unwrap();
    let key = ca.jwt_signing_key().unwrap();
    assert_eq!(seen["header"]["alg"], "ES256");
    assert_eq!(seen["header"]["typ"], "JWT");
    assert_eq!(seen["header"]["kid"], key.key_id());
    let claims = &seen["claims"];
    assert_eq!(claims["sub"], WEB);
    assert_eq!(
        claims["aud"],
        serde_json::json!(["spiffe://example.org/api", "billing"])
    );
    let iat = claims["iat"].as_u64().unwrap();
    assert!((before..=now()).contains(&iat), "{claims}");
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 120);

    // The verifier is a real judge: a tampered payload fails it.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = base64_url(&claims.to_string().replace("/web", "/admin"));
    parts[1] = &forged;
    assert!(python_verify(&jwks(&ca), &parts.join(".")).is_err());
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn the_policy_refuses_what_a_jwt_svid_must_not_be() {
    let mut ca = dev_ca();
    ca.set_policy(
        IssuancePolicy::new(td())
            .allow_prefix(id("spiffe://example.org/ns/prod"))
            .max_jwt_ttl(Duration::from_secs(600)),
    )
    .unwrap();
    let ok = || JwtSvidRequest::new(id("spiffe://example.org/ns/prod/web"), "api");
    assert!(ca.mint_jwt_svid(&ok()).is_ok());
    type Case = (&'static str, JwtSvidRequest, fn(&CaError) -> bool);
    let cases: [Case; 6] = [
        (
            "other trust domain",
            JwtSvidRequest::new(id("spiffe://other.org/ns/prod/web"), "api"),
            |e| matches!(e, CaError::WrongTrustDomain { .. }),
        ),
        (
            "trust domain ID",
            JwtSvidRequest::new(id("spiffe://example.org"), "api"),
            |e| matches!(e, CaError::TrustDomainIdAsLeaf(_)),
        ),
        (
            "outside the allowed prefix",
            JwtSvidRequest::new(id("spiffe://example.org/ns/dev/web"), "api"),
            |e| matches!(e, CaError::PolicyDenied { .. }),
        ),
        ("zero TTL", ok().ttl(Duration::ZERO), |e| {
            matches!(e, CaError::ZeroTtl)
        }),
        (
            "TTL above the JWT maximum",
            ok().ttl(Duration::from_secs(601)),
            |e| matches!(e, CaError::PolicyDenied { reason, .. } if reason.contains("JWT-SVID TTL 601s")),
        ),
        ("an empty audience", ok().audience(""), |e| {
            matches!(e, CaError::InvalidAudience)
        }),
    ];
    for (name, request, expected) in cases {
        let err = ca.mint_jwt_svid(&request).unwrap_err();
        assert!(expected(&err), "{name}: {err:?}");
    }
    // The X.509 limit does not apply to JWT-SVIDs, nor the JWT one to SVIDs.
    assert!(IssuancePolicy::new(td())
        .max_jwt_ttl(DEFAULT_MAX_JWT_TTL)
        .check(&id(WEB), Duration::from_secs(2 * 3600))
        .is_ok());
}

#[test]
fn rotation_publishes_old_and_new_keys_and_the_new_one_signs() {
    let ca = dev_ca();
    let old = ca.jwt_signing_key().unwrap();
    let old_token = ca
        .mint_jwt_svid(&JwtSvidRequest::new(id(WEB), "api"))
        .unwrap();
    let sequence = ca.spiffe_bundle().unwrap().sequence();

    let new = ca.rotate_jwt_key(KeyType::P384).unwrap();
    assert_eq!(new.algorithm(), "ES384");
    assert_ne!(new.key_id(), old.key_id());
    let bundle = ca.spiffe_bundle().unwrap();
    let kids: Vec<&str> = bundle
        .jwt_authorities()
        .iter()
        .map(|k| k.key_id())
        .collect();
    assert_eq!(kids, [new.key_id(), old.key_id()]);
    assert!(bundle.sequence() > sequence, "rotation bumps the sequence");

    // Tokens of both keys verify against the published bundle.
    let new_token = ca
        .mint_jwt_svid(&JwtSvidRequest::new(id(WEB), "api"))
        .unwrap();
    let seen = python_verify(&jwks(&ca), &new_token).unwrap();
    assert_eq!(seen["header"]["alg"], "ES384");
    assert_eq!(seen["header"]["kid"], new.key_id());
    python_verify(&jwks(&ca), &old_token).unwrap();

    // Ed25519 is not a JWT-SVID algorithm: refused, and nothing changes.
    assert!(matches!(
        ca.rotate_jwt_key(KeyType::Ed25519),
        Err(CaError::JwtKeyType(KeyType::Ed25519))
    ));
    assert_eq!(ca.jwt_signing_key().unwrap().key_id(), new.key_id());
}

#[test]
fn the_jwt_keys_live_in_the_ca_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dev_ca();
    ca.save(dir.path(), false).unwrap();
    let file = dir.path().join(JWT_KEYS_FILE);
    assert_eq!(mode(&file), 0o600, "jwt.json holds a private key");
    let kid = ca.jwt_signing_key().unwrap().key_id().to_owned();
    let opened = CertificateAuthority::open(dir.path()).unwrap();
    assert_eq!(opened.jwt_signing_key().unwrap().key_id(), kid);
    // A token minted by the reopened CA verifies against the first copy's bundle.
    let token = opened
        .mint_jwt_svid(&JwtSvidRequest::new(id(WEB), "api"))
        .unwrap();
    python_verify(&jwks(&ca), &token).unwrap();

    // Rotation in the directory keeps the old key published; a stale
    // handle saving later does not undo it.
    let sequence = ca.bundle().unwrap().sequence();
    let new = CertificateAuthority::rotate_jwt_key_in(dir.path(), KeyType::P256).unwrap();
    ca.save(dir.path(), true).unwrap();
    let reopened = CertificateAuthority::open(dir.path()).unwrap();
    assert_eq!(reopened.jwt_signing_key().unwrap().key_id(), new.key_id());
    let kids: Vec<String> = reopened
        .jwt_authorities()
        .unwrap()
        .iter()
        .map(|k| k.key_id().to_owned())
        .collect();
    assert_eq!(kids, [new.key_id().to_owned(), kid]);
    assert!(reopened.bundle().unwrap().sequence() > sequence);
}

#[test]
fn a_bad_or_missing_jwt_key_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    dev_ca().save(dir.path(), false).unwrap();
    let file = dir.path().join(JWT_KEYS_FILE);
    for garbage in [
        &b"not json"[..],
        br#"{"active":{"kid":"k","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}}"#,
        br#"{"active":null,"retired":[{"kid":"k","alg":"ES256","crv":"P-256","x":"AA","y":"AA","until":0}]}"#,
        br#"{"active":null,"surprise":1}"#,
    ] {
        std::fs::write(&file, garbage).unwrap();
        let err = CertificateAuthority::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CaError::State { path, .. } if path == &file),
            "{}: {err:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    // A directory from before JWT-SVIDs: no key, a clear error, then one
    // rotation gives it a key.
    std::fs::remove_file(&file).unwrap();
    let ca = CertificateAuthority::open(dir.path()).unwrap();
    assert!(ca.jwt_signing_key().is_none());
    assert!(matches!(
        ca.mint_jwt_svid(&JwtSvidRequest::new(id(WEB), "api")),
        Err(CaError::NoJwtKey)
    ));
    assert!(ca.spiffe_bundle().unwrap().jwt_authorities().is_empty());
    CertificateAuthority::rotate_jwt_key_in(dir.path(), KeyType::P256).unwrap();
    let ca = CertificateAuthority::open(dir.path()).unwrap();
    let token = ca
        .mint_jwt_svid(&JwtSvidRequest::new(id(WEB), "api"))
        .unwrap();
    python_verify(&jwks(&ca), &token).unwrap();
}

#[test]
fn the_command_line_mints_rotates_and_publishes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    run([
        "init",
        "--dir",
        s(&dir),
        "--self-signed",
        "--trust-domain",
        "example.org",
    ])
    .ok();
    let bundle = || {
        run(["bundle", "--dir", s(&dir), "--format", "jwks"])
            .ok()
            .stdout
    };
    let mint = |extra: &[&str]| {
        let mut args = vec!["jwt", "mint", "--dir", s(&dir), "--spiffe-id", WEB];
        args.extend_from_slice(extra);
        run(args)
    };

    let out = mint(&["--audience", "api", "--audience", "db", "--ttl", "90s"]).ok();
    let token = out.stdout.trim();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    let seen = python_verify(&bundle(), token).unwrap();
    assert_eq!(seen["claims"]["aud"], serde_json::json!(["api", "db"]));
    let claims = &seen["claims"];
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        90
    );
    // The JWKS bundle parses as a SPIFFE bundle with both kinds of keys.
    let parsed = SpiffeBundle::from_jwks(td(), bundle().as_bytes()).unwrap();
    assert_eq!(parsed.jwt_authorities().len(), 1);
    assert_eq!(parsed.x509().len(), 1);

    let out = run(["jwt", "rotate", "--dir", s(&dir), "--key-type", "p384"]).ok();
    assert_eq!(out.field("alg"), "ES384");
    let kid = out.field("kid");
    let token = mint(&["--audience", "api"]).ok().stdout;
    let seen = python_verify(&bundle(), token.trim()).unwrap();
    assert_eq!(seen["header"]["kid"], kid.as_str());
    let parsed = SpiffeBundle::from_jwks(td(), bundle().as_bytes()).unwrap();
    assert_eq!(parsed.jwt_authorities().len(), 2, "old key still published");

    // Refusals: usage errors exit 2, policy refusals exit 1.
    mint(&[]).status(2);
    mint(&["--audience", ""]).status(2).says(&["audience"]);
    mint(&["--audience", "api", "--ttl", "2h"])
        .status(1)
        .says(&["JWT-SVID TTL 7200s exceeds the maximum 3600s"]);
    run([
        "jwt",
        "mint",
        "--dir",
        s(&dir),
        "--spiffe-id",
        "spiffe://other.org/web",
        "--audience",
        "api",
    ])
    .status(1)
    .says(&["other.org"]);
    run(["jwt", "rotate", "--dir", s(&dir), "--key-type", "ed25519"])
        .status(1)
        .says(&["cannot sign JWT-SVIDs"]);
    run([
        "jwt",
        "mint",
        "--dir",
        s(&tmp.path().join("nothing")),
        "--spiffe-id",
        WEB,
        "--audience",
        "a",
    ])
    .status(1);
}

#[test]
fn jwt_verify_accepts_what_the_ca_mints_and_says_why_it_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let other = tmp.path().join("other");
    for (d, td) in [(&dir, "example.org"), (&other, "other.org")] {
        run(["init", "--dir", s(d), "--self-signed", "--trust-domain", td]).ok();
    }
    let write_bundle = |d: &Path, name: &str| {
        let json = run(["bundle", "--dir", s(d), "--format", "jwks"])
            .ok()
            .stdout;
        let path = tmp.path().join(name);
        std::fs::write(&path, json).unwrap();
        path
    };
    let bundle = write_bundle(&dir, "example.json");
    let other_bundle = write_bundle(&other, "other.json");
    let token = run([
        "jwt",
        "mint",
        "--dir",
        s(&dir),
        "--spiffe-id",
        WEB,
        "--audience",
        "api",
        "--ttl",
        "10m",
    ])
    .ok()
    .stdout
    .trim()
    .to_owned();
    let verify = |extra: &[&str], token: &str| {
        let mut args = vec!["jwt", "verify"];
        args.extend_from_slice(extra);
        args.push(token);
        run(args)
    };
    let td_bundle = ["--trust-domain", "example.org", "--bundle", s(&bundle)];
    let mut with_audience = td_bundle.to_vec();
    with_audience.extend(["--audience", "api"]);

    // Valid: the SPIFFE ID on stdout, also with the token on stdin and
    // with the bundle named TD=FILE next to another trust domain's.
    assert_eq!(
        verify(&with_audience, &token).ok().stdout,
        format!("{WEB}\n")
    );
    let mut stdin_args = vec!["jwt", "verify"];
    stdin_args.extend_from_slice(&with_audience);
    stdin_args.push("-");
    let out = run_with_stdin(stdin_args, format!("{token}\n").as_bytes()).ok();
    assert_eq!(out.stdout, format!("{WEB}\n"));
    let named = format!("example.org={}", s(&bundle));
    let named_other = format!("other.org={}", s(&other_bundle));
    verify(
        &[
            "--bundle",
            &named_other,
            "--bundle",
            &named,
            "--audience",
            "api",
        ],
        &token,
    )
    .ok();

    // Invalid: exit 1, the reason on stderr.
    let at_later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut expired = with_audience.clone();
    expired.extend(["--at", &at_later]);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let tampered = parts.join(".");
    let mut wrong_audience = td_bundle.to_vec();
    wrong_audience.extend(["--audience", "billing"]);
    let other_only = [
        "--trust-domain",
        "example.org",
        "--bundle",
        s(&other_bundle),
        "--audience",
        "api",
    ];
    let cases: [(&str, &[&str], &str, &str); 5] = [
        ("wrong audience", &wrong_audience, &token, "billing"),
        ("expired", &expired, &token, "expired"),
        ("tampered signature", &with_audience, &tampered, "signature"),
        ("another trust domain's keys", &other_only, &token, "kid"),
        ("not a token", &with_audience, "not-a-jwt", "JWT-SVID"),
    ];
    for (name, args, token, reason) in cases {
        let out = verify(args, token);
        assert_eq!(out.code, Some(1), "{name}: {out:#?}");
        assert!(out.stdout.is_empty(), "{name}: {out:#?}");
        assert!(
            out.stderr.starts_with("mtls-ca: invalid JWT-SVID") && out.stderr.contains(reason),
            "{name}: {out:#?}"
        );
    }
    // A bundle that is not a SPIFFE bundle: exit 1, naming the file.
    let garbage = tmp.path().join("garbage.json");
    std::fs::write(&garbage, "{").unwrap();
    verify(
        &[
            "--trust-domain",
            "example.org",
            "--bundle",
            s(&garbage),
            "--audience",
            "api",
        ],
        &token,
    )
    .status(1)
    .says(&["garbage.json", "example.org"]);

    // Usage errors: exit 2.
    verify(&["--bundle", s(&bundle), "--audience", "api"], &token)
        .status(2)
        .says(&["does not say its trust domain"]);
    verify(
        &["--bundle", &named, "--bundle", &named, "--audience", "api"],
        &token,
    )
    .status(2)
    .says(&["two bundles"]);
    verify(&td_bundle, &token).status(2);
    let mut empty_audience = td_bundle.to_vec();
    empty_audience.extend(["--audience", ""]);
    verify(&empty_audience, &token).status(2);
}
