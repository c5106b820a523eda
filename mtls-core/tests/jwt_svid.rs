//! JWT-SVID validation (`JwtSvidValidator`) against tokens made by an
//! independent signer: `tests/jwt/sign.py`, Python's `cryptography`, run
//! from the tests. One row per defect, each rule both accepted and refused.
//!
//! Without `python3` and its `cryptography` package the tests print
//! `skipped: ...` and pass, except under `MTLS_REQUIRE_INTEROP=1` (as CI
//! sets it), where they fail: no signer, no pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mtls_core::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use mtls_core::rustls::pki_types::alg_id;
use mtls_core::{
    default_crypto_provider, JwsAlgorithm, JwsPart, JwtBundle, JwtBundleSet, JwtBundleSource,
    JwtSvidError, JwtSvidValidator, SharedJwtBundles, TrustDomain,
};
use serde_json::{json, Map, Value};

/// The time of every validation: 2027-01-15T08:00:00Z.
const NOW: u64 = 1_800_000_000;
const AUDIENCE: &str = "spiffe://example.org/reports";
const SUBJECT: &str = "spiffe://example.org/workload";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// The signer's keys: name (also the `kid` of its JWK) and kind.
const KEYS: &[(&str, &str)] = &[
    ("p256", "P-256"),
    ("p384", "P-384"),
    ("p521", "P-521"),
    ("rsa", "RSA-2048"),
    // In other.org's bundle only.
    ("other", "P-256"),
    // In no bundle.
    ("rogue", "P-256"),
];

// ---------------------------------------------------------------------
// The independent signer.

fn required() -> bool {
    std::env::var("MTLS_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// `None` (after a `skipped:` line) when the signer cannot run and it is
/// not required.
#[track_caller]
fn unavailable(test: &str, reason: &str) -> Option<Value> {
    assert!(
        !required(),
        "{test}: {reason}; MTLS_REQUIRE_INTEROP=1 needs python3 with the cryptography package"
    );
    println!("skipped: {test}: {reason} (install python3 and its cryptography package)");
    eprintln!("skipped: {test}: {reason} (install python3 and its cryptography package)");
    None
}

/// Runs `tests/jwt/sign.py` on `request`.
fn run_signer(test: &str, request: &Value) -> Option<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jwt/sign.py");
    let child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return unavailable(test, &format!("python3 cannot be run: {e}")),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(serde_json::from_slice(&out.stdout).unwrap()),
        Some(3) => unavailable(test, stderr.trim()),
        _ => panic!("{test}: sign.py failed ({}): {stderr}", out.status),
    }
}

/// The signer's public keys, as JWKs by name.
struct Keys(Map<String, Value>);

impl Keys {
    fn jwk(&self, name: &str) -> Value {
        self.0[name].clone()
    }

    /// example.org: p256, p384, p521 and rsa by their names; rsa again as
    /// `rsa-ps256`, restricted to PS256; p256 again as `x509only`, but with
    /// `use: x509-svid` (and no certificate). other.org: `other`.
    fn bundles(&self) -> JwtBundleSet {
        let mut restricted = self.jwk("rsa");
        restricted["kid"] = "rsa-ps256".into();
        restricted["alg"] = "PS256".into();
        let mut x509_only = self.jwk("p256");
        x509_only["kid"] = "x509only".into();
        x509_only["use"] = "x509-svid".into();
        let example = json!({"keys": [
            self.jwk("p256"), self.jwk("p384"), self.jwk("p521"), self.jwk("rsa"),
            restricted, x509_only,
        ]});
        let other = json!({"keys": [self.jwk("other")]});
        let bundle = |td: &'static str, doc: Value| {
            JwtBundle::from_jwks(TrustDomain::from_static(td), doc.to_string().as_bytes()).unwrap()
        };
        JwtBundleSet::from_bundles([bundle("example.org", example), bundle("other.org", other)])
            .unwrap()
    }
}

// ---------------------------------------------------------------------
// The table.

enum Body {
    Json(Map<String, Value>),
    Raw(String),
}

type Matcher = fn(&JwtSvidError) -> bool;

struct Case {
    name: &'static str,
    key: &'static str,
    header: Body,
    claims: Body,
    sign: Option<&'static str>,
    mutate: Option<fn(&str) -> String>,
    expect: Option<Matcher>,
}

fn good_claims() -> Map<String, Value> {
    let Value::Object(claims) = json!({
        "sub": SUBJECT,
        "aud": [AUDIENCE],
        "exp": NOW + 300,
        "iat": NOW - 10,
    }) else {
        unreachable!()
    };
    claims
}

/// A good token of `alg`, signed by `key` (its `kid`).
fn ok(name: &'static str, key: &'static str, alg: &str) -> Case {
    let Value::Object(header) = json!({"alg": alg, "kid": key, "typ": "JWT"}) else {
        unreachable!()
    };
    Case {
        name,
        key,
        header: Body::Json(header),
        claims: Body::Json(good_claims()),
        sign: None,
        mutate: None,
        expect: None,
    }
}

/// A good ES256 token by p256.
fn es256(name: &'static str) -> Case {
    ok(name, "p256", "ES256")
}

impl Case {
    fn header(mut self, edit: impl FnOnce(&mut Map<String, Value>)) -> Self {
        let Body::Json(header) = &mut self.header else {
            panic!("{}: raw header", self.name)
        };
        edit(header);
        self
    }

    fn claims(mut self, edit: impl FnOnce(&mut Map<String, Value>)) -> Self {
        let Body::Json(claims) = &mut self.claims else {
            panic!("{}: raw claims", self.name)
        };
        edit(claims);
        self
    }

    fn raw_header(mut self, json: &str) -> Self {
        self.header = Body::Raw(json.to_owned());
        self
    }

    fn raw_claims(mut self, json: &str) -> Self {
        self.claims = Body::Raw(json.to_owned());
        self
    }

    fn sign(mut self, mode: &'static str) -> Self {
        self.sign = Some(mode);
        self
    }

    fn mutate(mut self, f: fn(&str) -> String) -> Self {
        self.mutate = Some(f);
        self
    }

    fn rejects(mut self, matcher: Matcher) -> Self {
        self.expect = Some(matcher);
        self
    }

    fn request(&self) -> Value {
        let mut spec = Map::new();
        spec.insert("key".into(), self.key.into());
        match &self.header {
            Body::Json(h) => spec.insert("header".into(), Value::Object(h.clone())),
            Body::Raw(h) => spec.insert("header_raw".into(), h.clone().into()),
        };
        match &self.claims {
            Body::Json(c) => spec.insert("claims".into(), Value::Object(c.clone())),
            Body::Raw(c) => spec.insert("claims_raw".into(), c.clone().into()),
        };
        if let Some(mode) = self.sign {
            spec.insert("sign".into(), mode.into());
        }
        Value::Object(spec)
    }
}

fn set<V: Into<Value>>(name: &'static str, value: V) -> impl FnOnce(&mut Map<String, Value>) {
    move |m| {
        m.insert(name.into(), value.into());
    }
}

fn remove(name: &'static str) -> impl FnOnce(&mut Map<String, Value>) {
    move |m| {
        m.remove(name);
    }
}

// Mutations of a signed token.

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn tamper_claims(token: &str) -> String {
    let p = parts(token);
    let claims = String::from_utf8(unb64(&p[1])).unwrap();
    let forged = claims.replace("/workload", "/admin");
    assert_ne!(claims, forged);
    format!("{}.{}.{}", p[0], b64(forged.as_bytes()), p[2])
}

fn drop_signature_byte(token: &str) -> String {
    let p = parts(token);
    let mut sig = unb64(&p[2]);
    sig.pop();
    format!("{}.{}.{}", p[0], p[1], b64(&sig))
}

fn flip_signature_bit(token: &str) -> String {
    let p = parts(token);
    let mut sig = unb64(&p[2]);
    sig[10] ^= 1;
    format!("{}.{}.{}", p[0], p[1], b64(&sig))
}

fn json_serialization(token: &str) -> String {
    let p = parts(token);
    json!({"protected": p[0], "payload": p[1], "signature": p[2]}).to_string()
}

/// Whether the default crypto provider verifies P-521 signatures (ring
/// does not).
fn provider_verifies_p521() -> bool {
    default_crypto_provider()
        .signature_verification_algorithms
        .all
        .iter()
        .any(|alg| alg.public_key_alg_id() == alg_id::ECDSA_P521)
}

fn table() -> Vec<Case> {
    use JwtSvidError as E;
    let big = "x".repeat(20 * 1024);
    let over_claims = "x".repeat(9 * 1024);
    let long_kid = "k".repeat(1100);
    vec![
        // Accepted: every algorithm, every form a rule allows.
        ok("es256", "p256", "ES256"),
        ok("es384", "p384", "ES384"),
        if provider_verifies_p521() {
            ok("es512", "p521", "ES512")
        } else {
            ok("es512-unsupported-by-this-provider", "p521", "ES512")
                .rejects(|e| matches!(e, E::UnsupportedByProvider { alg: JwsAlgorithm::Es512 }))
        },
        ok("rs256", "rsa", "RS256"),
        ok("rs384", "rsa", "RS384"),
        ok("rs512", "rsa", "RS512"),
        ok("ps256", "rsa", "PS256"),
        ok("ps384", "rsa", "PS384"),
        ok("ps512", "rsa", "PS512"),
        ok("ps256-key-restricted-to-ps256", "rsa", "PS256").header(set("kid", "rsa-ps256")),
        es256("typ-absent").header(remove("typ")),
        es256("typ-jose").header(set("typ", "JOSE")),
        es256("aud-string").claims(set("aud", AUDIENCE)),
        es256("aud-among-several").claims(set("aud", json!(["a", AUDIENCE, "b"]))),
        es256("iat-absent").claims(remove("iat")),
        es256("exp-fractional").claims(set("exp", NOW as f64 + 0.5)),
        es256("exp-within-leeway").claims(set("exp", NOW - 30)),
        es256("nbf-past").claims(set("nbf", NOW - 60)),
        es256("nbf-within-leeway").claims(set("nbf", NOW + 30)),
        es256("iat-within-leeway").claims(set("iat", NOW + 30)),
        es256("private-claims-kept").claims(set("jti", "abc")),
        es256("sub-trust-domain-id").claims(set("sub", "spiffe://example.org")),
        ok("other-trust-domain-own-key", "other", "ES256")
            .claims(set("sub", "spiffe://other.org/workload")),
        // Form.
        es256("empty").mutate(|_| String::new()).rejects(|e| matches!(e, E::NotCompactJws { parts: 1 })),
        es256("two-parts")
            .mutate(|t| t.rsplit_once('.').unwrap().0.to_owned())
            .rejects(|e| matches!(e, E::NotCompactJws { parts: 2 })),
        es256("four-parts")
            .mutate(|t| format!("{t}.AAAA"))
            .rejects(|e| matches!(e, E::NotCompactJws { parts: 4 })),
        es256("five-parts-jwe")
            .mutate(|t| format!("{t}.AAAA.AAAA"))
            .rejects(|e| matches!(e, E::Encrypted)),
        es256("json-serialization")
            .mutate(json_serialization)
            .rejects(|e| matches!(e, E::JsonSerialization)),
        es256("oversize-token")
            .claims(set("pad", big))
            .rejects(|e| matches!(e, E::TooLarge { part: JwsPart::Token, .. })),
        es256("oversize-claims")
            .claims(set("pad", over_claims))
            .rejects(|e| matches!(e, E::TooLarge { part: JwsPart::Claims, .. })),
        es256("oversize-header")
            .header(set("kid", long_kid))
            .rejects(|e| matches!(e, E::TooLarge { part: JwsPart::Header, .. })),
        es256("bad-base64-header")
            .mutate(|t| format!("+{}", &t[1..]))
            .rejects(|e| matches!(e, E::BadBase64 { part: JwsPart::Header, .. })),
        es256("padded-signature")
            .mutate(|t| format!("{t}="))
            .rejects(|e| matches!(e, E::BadBase64 { part: JwsPart::Signature, .. })),
        es256("bearer-prefix-kept")
            .mutate(|t| format!("Bearer {t}"))
            .rejects(|e| matches!(e, E::BadBase64 { part: JwsPart::Header, .. })),
        es256("trailing-newline")
            .mutate(|t| format!("{t}\n"))
            .rejects(|e| matches!(e, E::BadBase64 { part: JwsPart::Signature, .. })),
        es256("header-not-an-object")
            .raw_header(r#"["ES256"]"#)
            .sign("ES256")
            .rejects(|e| matches!(e, E::MalformedJson { part: JwsPart::Header, .. })),
        es256("header-duplicate-alg")
            .raw_header(r#"{"alg":"none","alg":"ES256","kid":"p256"}"#)
            .sign("ES256")
            .rejects(|e| matches!(e, E::MalformedJson { part: JwsPart::Header, .. })),
        es256("claims-duplicate-sub")
            .raw_claims(&format!(
                r#"{{"sub":"spiffe://evil.org/x","sub":"{SUBJECT}","aud":"{AUDIENCE}","exp":{}}}"#,
                NOW + 300
            ))
            .rejects(|e| matches!(e, E::MalformedJson { part: JwsPart::Claims, .. })),
        es256("claims-not-json")
            .raw_claims("not json")
            .rejects(|e| matches!(e, E::MalformedJson { part: JwsPart::Claims, .. })),
        // Header: alg first.
        es256("alg-none")
            .header(set("alg", "none"))
            .rejects(|e| matches!(e, E::UnsupportedAlgorithm { alg } if alg == "none")),
        es256("alg-hs256-public-key-as-secret")
            .header(set("alg", "HS256"))
            .sign("HS256-PEM")
            .rejects(|e| matches!(e, E::UnsupportedAlgorithm { alg } if alg == "HS256")),
        es256("alg-lowercase")
            .header(set("alg", "es256"))
            .sign("ES256")
            .rejects(|e| matches!(e, E::UnsupportedAlgorithm { .. })),
        es256("alg-eddsa")
            .header(set("alg", "EdDSA"))
            .sign("ES256")
            .rejects(|e| matches!(e, E::UnsupportedAlgorithm { .. })),
        es256("alg-not-a-string")
            .header(set("alg", 256))
            .sign("ES256")
            .rejects(|e| matches!(e, E::UnsupportedAlgorithm { alg } if alg == "256")),
        es256("alg-missing")
            .header(remove("alg"))
            .sign("ES256")
            .rejects(|e| matches!(e, E::MissingAlgorithm)),
        es256("alg-none-before-crit")
            .header(set("alg", "none"))
            .header(set("crit", json!(["exp"])))
            .rejects(|e| matches!(e, E::UnsupportedAlgorithm { .. })),
        // Header: the rest.
        es256("crit")
            .header(set("crit", json!(["exp"])))
            .rejects(|e| matches!(e, E::CriticalHeader)),
        es256("typ-jws")
            .header(set("typ", "JWS"))
            .rejects(|e| matches!(e, E::BadType { typ } if typ == "JWS")),
        es256("typ-lowercase")
            .header(set("typ", "jwt"))
            .rejects(|e| matches!(e, E::BadType { .. })),
        es256("typ-not-a-string")
            .header(set("typ", 1))
            .rejects(|e| matches!(e, E::WrongType { member: "typ", .. })),
        es256("header-jku")
            .header(set("jku", "https://evil.example/keys"))
            .rejects(|e| matches!(e, E::UnexpectedHeader { name } if name == "jku")),
        es256("header-embedded-jwk")
            .header(set("jwk", json!({"kty": "EC"})))
            .rejects(|e| matches!(e, E::UnexpectedHeader { name } if name == "jwk")),
        es256("kid-missing")
            .header(remove("kid"))
            .rejects(|e| matches!(e, E::MissingKeyId)),
        es256("kid-empty")
            .header(set("kid", ""))
            .rejects(|e| matches!(e, E::MissingKeyId)),
        es256("kid-not-a-string")
            .header(set("kid", 1))
            .rejects(|e| matches!(e, E::WrongType { member: "kid", .. })),
        // Subject.
        es256("sub-missing")
            .claims(remove("sub"))
            .rejects(|e| matches!(e, E::MissingSubject)),
        es256("sub-not-a-spiffe-id")
            .claims(set("sub", "https://example.org/workload"))
            .rejects(|e| matches!(e, E::InvalidSubject { .. })),
        es256("sub-uppercase-trust-domain")
            .claims(set("sub", "spiffe://Example.org/workload"))
            .rejects(|e| matches!(e, E::InvalidSubject { .. })),
        es256("sub-not-a-string")
            .claims(set("sub", json!([SUBJECT])))
            .rejects(|e| matches!(e, E::WrongType { member: "sub", .. })),
        es256("sub-trust-domain-without-bundle")
            .claims(set("sub", "spiffe://nobundle.org/workload"))
            .rejects(|e| matches!(e, E::UntrustedTrustDomain { trust_domain } if trust_domain.name() == "nobundle.org")),
        // Key lookup.
        es256("kid-unknown")
            .header(set("kid", "nope"))
            .rejects(|e| matches!(e, E::UnknownKeyId { key_id, .. } if key_id == "nope")),
        ok("kid-in-other-trust-domain-bundle-only", "other", "ES256")
            .rejects(|e| matches!(e, E::UnknownKeyId { trust_domain, .. } if trust_domain.name() == "example.org")),
        es256("sub-other-trust-domain-signed-by-this-one")
            .claims(set("sub", "spiffe://other.org/workload"))
            .rejects(|e| matches!(e, E::UnknownKeyId { trust_domain, .. } if trust_domain.name() == "other.org")),
        es256("kid-of-an-x509-svid-key-only")
            .header(set("kid", "x509only"))
            .rejects(|e| matches!(e, E::UnknownKeyId { .. })),
        es256("alg-es384-for-p256-key")
            .header(set("alg", "ES384"))
            .sign("ES256")
            .rejects(|e| matches!(e, E::AlgorithmKeyMismatch { alg: JwsAlgorithm::Es384, .. })),
        es256("alg-rs256-for-ec-key")
            .header(set("alg", "RS256"))
            .sign("ES256")
            .rejects(|e| matches!(e, E::AlgorithmKeyMismatch { alg: JwsAlgorithm::Rs256, .. })),
        ok("alg-es256-for-rsa-key", "rsa", "ES256")
            .sign("RS256")
            .rejects(|e| matches!(e, E::AlgorithmKeyMismatch { .. })),
        ok("alg-rs256-for-key-restricted-to-ps256", "rsa", "RS256")
            .header(set("kid", "rsa-ps256"))
            .rejects(|e| matches!(e, E::AlgorithmNotAllowedForKey { .. })),
        // Signature.
        es256("tampered-claims")
            .mutate(tamper_claims)
            .rejects(|e| matches!(e, E::BadSignature { .. })),
        es256("signature-bit-flipped")
            .mutate(flip_signature_bit)
            .rejects(|e| matches!(e, E::BadSignature { .. })),
        ok("signed-by-a-key-not-in-the-bundle", "rogue", "ES256")
            .header(set("kid", "p256"))
            .rejects(|e| matches!(e, E::BadSignature { .. })),
        es256("es256-der-signature")
            .sign("ES256-DER")
            .rejects(|e| matches!(e, E::MalformedSignature { .. })),
        ok("es384-der-signature", "p384", "ES384")
            .sign("ES384-DER")
            .rejects(|e| matches!(e, E::MalformedSignature { .. })),
        es256("es256-signature-one-byte-short")
            .mutate(drop_signature_byte)
            .rejects(|e| matches!(e, E::MalformedSignature { len: 63, expected: 64, .. })),
        ok("ps256-header-pkcs1-signature", "rsa", "PS256")
            .sign("RS256")
            .rejects(|e| matches!(e, E::BadSignature { .. })),
        ok("rs256-header-pss-signature", "rsa", "RS256")
            .sign("PS256")
            .rejects(|e| matches!(e, E::BadSignature { .. })),
        ok("rs256-header-rs512-signature", "rsa", "RS256")
            .sign("RS512")
            .rejects(|e| matches!(e, E::BadSignature { .. })),
        ok("rsa-signature-bit-flipped", "rsa", "RS256")
            .mutate(flip_signature_bit)
            .rejects(|e| matches!(e, E::BadSignature { .. })),
        // Audience.
        es256("aud-missing")
            .claims(remove("aud"))
            .rejects(|e| matches!(e, E::MissingAudience)),
        es256("aud-empty-array")
            .claims(set("aud", json!([])))
            .rejects(|e| matches!(e, E::EmptyAudience)),
        es256("aud-wrong")
            .claims(set("aud", json!(["spiffe://example.org/billing"])))
            .rejects(|e| matches!(e, E::AudienceMismatch { found, .. } if found == &["spiffe://example.org/billing"])),
        es256("aud-prefix-only")
            .claims(set("aud", "spiffe://example.org/report"))
            .rejects(|e| matches!(e, E::AudienceMismatch { .. })),
        es256("aud-not-a-string")
            .claims(set("aud", 1))
            .rejects(|e| matches!(e, E::WrongType { member: "aud", .. })),
        es256("aud-array-with-a-number")
            .claims(set("aud", json!([AUDIENCE, 1])))
            .rejects(|e| matches!(e, E::WrongType { member: "aud", .. })),
        // Times.
        es256("exp-missing")
            .claims(remove("exp"))
            .rejects(|e| matches!(e, E::MissingExpiry)),
        es256("exp-a-string")
            .claims(set("exp", (NOW + 300).to_string()))
            .rejects(|e| matches!(e, E::BadNumericDate { claim: "exp" })),
        es256("exp-negative")
            .claims(set("exp", -1))
            .rejects(|e| matches!(e, E::BadNumericDate { claim: "exp" })),
        es256("exp-beyond-year-9999")
            .claims(set("exp", 1e20))
            .rejects(|e| matches!(e, E::BadNumericDate { claim: "exp" })),
        es256("expired")
            .claims(set("exp", NOW - 3600))
            .rejects(|e| matches!(e, E::Expired { .. })),
        es256("expired-just-beyond-leeway")
            .claims(set("exp", NOW - 31))
            .rejects(|e| matches!(e, E::Expired { .. })),
        es256("nbf-in-future")
            .claims(set("nbf", NOW + 3600))
            .rejects(|e| matches!(e, E::NotYetValid { .. })),
        es256("nbf-just-beyond-leeway")
            .claims(set("nbf", NOW + 31))
            .rejects(|e| matches!(e, E::NotYetValid { .. })),
        es256("nbf-a-string")
            .claims(set("nbf", "soon"))
            .rejects(|e| matches!(e, E::BadNumericDate { claim: "nbf" })),
        es256("iat-in-future")
            .claims(set("iat", NOW + 3600))
            .rejects(|e| matches!(e, E::IssuedInFuture { .. })),
        es256("iat-a-bool")
            .claims(set("iat", true))
            .rejects(|e| matches!(e, E::BadNumericDate { claim: "iat" })),
    ]
}

/// Signs `cases` and returns the keys and each case's final token.
fn sign_all(test: &str, cases: &[Case]) -> Option<(Keys, Vec<String>)> {
    let keys: Map<String, Value> = KEYS
        .iter()
        .map(|(n, k)| ((*n).into(), (*k).into()))
        .collect();
    let request = json!({
        "keys": keys,
        "tokens": cases.iter().map(Case::request).collect::<Vec<_>>(),
    });
    let response = run_signer(test, &request)?;
    let Value::Object(jwks) = response["jwks"].clone() else {
        panic!("no jwks: {response}")
    };
    let tokens = response["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cases)
        .map(|(token, case)| {
            let token = token.as_str().unwrap();
            case.mutate.map_or_else(|| token.to_owned(), |f| f(token))
        })
        .collect();
    Some((Keys(jwks), tokens))
}

#[test]
fn every_rule_accepts_and_refuses_tokens_of_an_independent_signer() {
    let cases = table();
    let Some((keys, tokens)) = sign_all("jwt_svid table", &cases) else {
        return;
    };
    let bundles = keys.bundles();
    let validator = JwtSvidValidator::new(AUDIENCE);
    let mut failures = Vec::new();
    for (case, token) in cases.iter().zip(&tokens) {
        let result = validator.validate_at(token, &bundles, now());
        match (result, case.expect) {
            (Ok(svid), None) => {
                let Body::Json(claims) = &case.claims else {
                    unreachable!()
                };
                let Body::Json(header) = &case.header else {
                    unreachable!()
                };
                let checks = [
                    (svid.spiffe_id().as_str() == claims["sub"], "spiffe_id"),
                    (svid.audience().iter().any(|a| a == AUDIENCE), "audience"),
                    (svid.key_id() == header["kid"], "key_id"),
                    (svid.algorithm().as_str() == header["alg"], "algorithm"),
                    (svid.token() == token, "token"),
                    (svid.claims() == claims, "claims"),
                    (svid.expiry() > now() - Duration::from_secs(31), "expiry"),
                ];
                for (ok, what) in checks {
                    if !ok {
                        failures.push(format!("{}: accepted, but {what} is wrong", case.name));
                    }
                }
            }
            (Err(e), None) => failures.push(format!("{}: refused: {e}", case.name)),
            (Ok(_), Some(_)) => failures.push(format!("{}: accepted", case.name)),
            (Err(e), Some(matcher)) => {
                if !matcher(&e) {
                    failures.push(format!("{}: refused for another reason: {e:?}", case.name));
                }
                let shown = e.to_string();
                if !shown.starts_with("jwt-svid: ") || shown.contains('\n') {
                    failures.push(format!("{}: message {shown:?}", case.name));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Tokens for the other tests: ES256 and ES512, good, and ES256 expired a
/// second ago.
fn few(test: &str) -> Option<(JwtBundleSet, [String; 3])> {
    let cases = [
        es256("good"),
        ok("es512", "p521", "ES512"),
        es256("expired-1s-ago").claims(set("exp", NOW - 1)),
    ];
    let (keys, tokens) = sign_all(test, &cases)?;
    Some((keys.bundles(), tokens.try_into().unwrap()))
}

#[test]
fn errors_say_which_key_audience_and_time() {
    let Some((bundles, [good, _, expired])) = few("jwt_svid messages") else {
        return;
    };
    let strict = JwtSvidValidator::new(AUDIENCE).with_leeway(Duration::ZERO);
    assert_eq!(
        strict
            .validate_at(&expired, &bundles, now())
            .unwrap_err()
            .to_string(),
        "jwt-svid: expired at 2027-01-15T07:59:59Z, now 2027-01-15T08:00:00Z (leeway 0s)"
    );
    let other = JwtSvidValidator::new("spiffe://example.org/billing");
    assert_eq!(
        other
            .validate_at(&good, &bundles, now())
            .unwrap_err()
            .to_string(),
        format!(
            "jwt-svid: audience \"spiffe://example.org/billing\" not in \"aud\" [\"{AUDIENCE}\"]"
        )
    );
    let mut without_p256 = JwtBundle::new(TrustDomain::from_static("example.org"));
    for key in bundles.get("example.org").unwrap().authorities() {
        if key.key_id() != "p256" {
            without_p256.add_authority(key.clone()).unwrap();
        }
    }
    assert_eq!(
        strict
            .validate_at(&good, &JwtBundleSet::from(without_p256), now())
            .unwrap_err()
            .to_string(),
        "jwt-svid: no JWT authority with \"kid\" p256 in the bundle of example.org"
    );
}

#[test]
fn leeway_is_configurable_and_bounded() {
    let Some((bundles, [good, _, expired])) = few("jwt_svid leeway") else {
        return;
    };
    let default = JwtSvidValidator::new(AUDIENCE);
    assert_eq!(default.leeway(), JwtSvidValidator::DEFAULT_LEEWAY);
    assert!(default.validate_at(&expired, &bundles, now()).is_ok());
    let strict = default.clone().with_leeway(Duration::ZERO);
    assert!(matches!(
        strict.validate_at(&expired, &bundles, now()),
        Err(JwtSvidError::Expired { .. })
    ));
    assert!(strict.validate_at(&good, &bundles, now()).is_ok());
    let lax = default.with_leeway(Duration::from_secs(24 * 3600));
    assert_eq!(lax.leeway(), JwtSvidValidator::MAX_LEEWAY);
    let much_later = now() + Duration::from_secs(3600);
    assert!(lax.validate_at(&good, &bundles, much_later).is_err());
}

#[test]
fn an_algorithm_the_crypto_provider_lacks_is_a_typed_error() {
    let Some((bundles, [good, es512, _])) = few("jwt_svid provider") else {
        return;
    };
    // A provider that verifies no P-521 signature (as ring's).
    let default = default_crypto_provider();
    let without_p521: Vec<_> = default
        .signature_verification_algorithms
        .all
        .iter()
        .copied()
        .filter(|alg| alg.public_key_alg_id() != alg_id::ECDSA_P521)
        .collect();
    let provider = CryptoProvider {
        signature_verification_algorithms: WebPkiSupportedAlgorithms {
            all: Box::leak(without_p521.into_boxed_slice()),
            mapping: default.signature_verification_algorithms.mapping,
        },
        ..(*default).clone()
    };
    let validator = JwtSvidValidator::new(AUDIENCE).with_crypto_provider(Arc::new(provider));
    assert!(validator.validate_at(&good, &bundles, now()).is_ok());
    assert_eq!(
        validator.validate_at(&es512, &bundles, now()),
        Err(JwtSvidError::UnsupportedByProvider {
            alg: JwsAlgorithm::Es512
        })
    );
}

#[test]
fn validation_follows_a_shared_jwt_bundle_source() {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cases = [
        es256("good"),
        es256("good-now")
            .claims(set("exp", wall + 600))
            .claims(set("iat", wall)),
    ];
    let Some((keys, tokens)) = sign_all("jwt_svid source", &cases) else {
        return;
    };
    let [good, good_now]: [String; 2] = tokens.try_into().unwrap();
    let cell = SharedJwtBundles::new(JwtBundleSet::new());
    let validator = JwtSvidValidator::new(AUDIENCE);
    let at = |source: &SharedJwtBundles| {
        validator.validate_at(&good, &source.current_jwt_bundles(), now())
    };
    assert!(matches!(
        at(&cell),
        Err(JwtSvidError::UntrustedTrustDomain { .. })
    ));
    let changes = cell.changes();
    cell.set(keys.bundles());
    assert!(changes.has_changed().unwrap());
    assert_eq!(JwtBundleSource::generation(&cell), Some(1));
    let svid = at(&cell).unwrap();
    assert_eq!(svid.spiffe_id().as_str(), SUBJECT);
    assert_eq!(svid.expiry(), now() + Duration::from_secs(300));
    assert_eq!(svid.issued_at(), Some(now() - Duration::from_secs(10)));
    assert_eq!(svid.not_before(), None);
    let shown = format!("{svid:?}");
    assert!(
        !shown.contains(&good),
        "Debug shows the bearer token: {shown}"
    );
    // validate_from reads the clock, and any source will do.
    let arc: Arc<dyn JwtBundleSource> = Arc::new(cell.clone());
    assert_eq!(
        validator.validate_from(&good_now, &arc).unwrap().token(),
        good_now
    );
    cell.set(JwtBundleSet::new());
    assert!(matches!(
        validator.validate_from(&good_now, &arc),
        Err(JwtSvidError::UntrustedTrustDomain { .. })
    ));
}
