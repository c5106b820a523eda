//! The JWT-SVID target: `JwtSvidValidator::validate_at` against a fixed
//! JWT bundle (a fixed P-256 key, `kid` `fuzz-p256`, in `example.org`'s and,
//! as `other`, in `other.org`'s bundle).
//!
//! Input: a token as text, or `0x00` + a framed description (signing mode,
//! header JSON, claims JSON) that the target signs with the fixed key, so
//! the fuzzer reaches the checks after the signature.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mtls_core::{
    JwtBundle, JwtBundleSet, JwtKey, JwtKeyType, JwtSvidError, JwtSvidValidator, TrustDomain,
};
use rcgen::{KeyPair, SigningKey, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde_json::Value;

use super::fixtures::{at, FIXED_NOW};
use super::frame::{byte_coded, Reader, Writer};

/// The audience of the target's validator.
pub const AUDIENCE: &str = "spiffe://example.org/fuzz";

/// The fixed key's ID in `example.org`'s bundle.
pub const KEY_ID: &str = "fuzz-p256";

// The fixed P-256 key, made once with `openssl genpkey`: its scalar and
// its public point (x||y).
const KEY_D: [u8; 32] = [
    0x53, 0x4b, 0xee, 0xba, 0xac, 0x59, 0x29, 0x0c, 0xd7, 0x9c, 0xa7, 0xfa, 0x51, 0xec, 0x03, 0x73,
    0x50, 0x2b, 0xfa, 0xb8, 0x21, 0x2e, 0xe5, 0x56, 0xd1, 0x64, 0x1c, 0x49, 0x01, 0xfc, 0x03, 0x62,
];
const KEY_XY: [u8; 64] = [
    0x5e, 0xe3, 0xd9, 0x54, 0x58, 0x46, 0xc9, 0xaf, 0xce, 0xaf, 0x4c, 0x3b, 0x99, 0x59, 0x32, 0x98,
    0xbe, 0x7c, 0xb3, 0x48, 0x19, 0x6d, 0xc4, 0xdf, 0xf2, 0x94, 0x7a, 0x90, 0xbf, 0x60, 0xcd, 0x4a,
    0xda, 0xde, 0x1a, 0x00, 0x82, 0x33, 0x9e, 0xe2, 0xb3, 0x70, 0x46, 0xbb, 0x42, 0xe2, 0x7a, 0xae,
    0xdc, 0xf0, 0xd6, 0x52, 0x25, 0xfb, 0x3b, 0x1c, 0xb8, 0x3e, 0x9a, 0x5d, 0x40, 0xbd, 0xb8, 0xf9,
];

/// A PKCS#8 `ECPrivateKey` on P-256 from its scalar and public point (x||y).
fn pkcs8_p256(d: &[u8; 32], xy: &[u8; 64]) -> Vec<u8> {
    const PREFIX: [u8; 36] = [
        0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
        0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30,
        0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
    ];
    const MIDDLE: [u8; 6] = [0xa1, 0x44, 0x03, 0x42, 0x00, 0x04];
    [&PREFIX[..], d, &MIDDLE, xy].concat()
}

struct Jwt {
    key: KeyPair,
    stranger: KeyPair,
    bundles: JwtBundleSet,
    validator: JwtSvidValidator,
}

fn get() -> &'static Jwt {
    static JWT: OnceLock<Jwt> = OnceLock::new();
    JWT.get_or_init(|| {
        let key = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8_p256(&KEY_D, &KEY_XY)),
            &PKCS_ECDSA_P256_SHA256,
        )
        .unwrap();
        let point = key.public_key_raw();
        let (x, y) = point[1..].split_at(32);
        let jwk = |kid: &str| JwtKey::ec(kid, JwtKeyType::EcP256, &b64(x), &b64(y)).unwrap();
        let bundle = |td: &'static str, kid: &str| {
            JwtBundle::from_keys(TrustDomain::from_static(td), [jwk(kid)]).unwrap()
        };
        let bundles = JwtBundleSet::from_bundles([
            bundle("example.org", KEY_ID),
            bundle("other.org", "other"),
        ])
        .unwrap();
        Jwt {
            key,
            stranger: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap(),
            bundles,
            validator: JwtSvidValidator::new(AUDIENCE),
        }
    })
}

/// The fixed JWT bundles the target validates against.
pub fn bundles() -> JwtBundleSet {
    get().bundles.clone()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

byte_coded! {
    /// How a framed input is signed.
    pub enum Signing {
        /// ES256, `r || s`, by the fixed key: the only mode that may pass.
        Good,
        /// ES256 in DER, by the fixed key.
        Der,
        /// No signature.
        Empty,
        /// ES256, `r || s`, by a key in no bundle.
        Stranger,
    }
}

/// A compact JWS of `header` and `claims` (taken as bytes, valid JSON or
/// not), signed as `signing` says.
pub fn sign(signing: Signing, header: &[u8], claims: &[u8]) -> String {
    let jwt = get();
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = match signing {
        Signing::Good => raw(&jwt.key.sign(input.as_bytes()).unwrap()),
        Signing::Der => jwt.key.sign(input.as_bytes()).unwrap(),
        Signing::Empty => Vec::new(),
        Signing::Stranger => raw(&jwt.stranger.sign(input.as_bytes()).unwrap()),
    };
    format!("{input}.{}", b64(&signature))
}

/// `r || s` (32 bytes each) of a DER `Ecdsa-Sig-Value` that rcgen made.
fn raw(der: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(der);
    assert_eq!(r.u8(), 0x30);
    let _len = r.u8();
    let mut out = Vec::with_capacity(64);
    for _ in 0..2 {
        assert_eq!(r.u8(), 0x02);
        let n = r.u8();
        let int = r.bytes(n.into());
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0, 32 - int.len()));
        out.extend_from_slice(int);
    }
    out
}

/// A framed input: signing mode, header, claims.
pub fn framed(signing: Signing, header: &str, claims: &str) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(
        Writer::new()
            .u8(signing.byte())
            .chunk16(header.as_bytes())
            .bytes(claims.as_bytes())
            .finish(),
    );
    out
}

/// The target.
pub fn jwt_svid(data: &[u8]) {
    let (token, signing) = match data.split_first() {
        Some((0, rest)) => {
            let mut r = Reader::new(rest);
            let signing = Signing::from_byte(r.u8());
            let header = r.chunk16();
            let claims = r.rest();
            (sign(signing, header, claims), Some(signing))
        }
        _ => match std::str::from_utf8(data) {
            Ok(token) => (token.to_owned(), None),
            Err(_) => return,
        },
    };
    let jwt = get();
    let now = at(FIXED_NOW);
    let result = jwt.validator.validate_at(&token, &jwt.bundles, now);
    assert_eq!(
        jwt.validator.validate_at(&token, &jwt.bundles, now),
        result,
        "validation is not deterministic"
    );
    let svid = match result {
        Ok(svid) => svid,
        Err(e) => {
            check_message(&e);
            return;
        }
    };
    assert!(
        signing.is_none_or(|s| s == Signing::Good),
        "accepted a token signed as {signing:?}"
    );
    // What was accepted holds every rule, checked again from the token.
    assert_eq!(svid.token(), token);
    let mut parts = token.split('.');
    let header = json_part(parts.next());
    let claims = json_part(parts.next());
    assert_eq!(header["alg"], svid.algorithm().as_str());
    assert_eq!(header["kid"], svid.key_id());
    assert!(matches!(
        header.get("typ").and_then(Value::as_str),
        None | Some("JWT" | "JOSE")
    ));
    assert!(header
        .as_object()
        .unwrap()
        .keys()
        .all(|k| ["alg", "kid", "typ"].contains(&k.as_str())));
    assert_eq!(claims["sub"], svid.spiffe_id().as_str());
    assert_eq!(&claims, &Value::Object(svid.claims().clone()));
    let bundle = jwt
        .bundles
        .get(svid.spiffe_id().trust_domain().name())
        .expect("accepted from a trust domain without a bundle");
    let key = bundle
        .authority(svid.key_id())
        .expect("accepted with a key not in the subject's bundle");
    assert!(svid.algorithm().fits(key.key_type()));
    assert!(svid.audience().iter().any(|a| a == AUDIENCE));
    let leeway = jwt.validator.leeway();
    assert!(svid.expiry() + leeway >= now, "accepted an expired token");
    assert!(svid.not_before().is_none_or(|t| t <= now + leeway));
    assert!(svid.issued_at().is_none_or(|t| t <= now + leeway));
    assert!(svid.expiry() <= at(super::fixtures::MAX_NOW));
}

fn json_part(part: Option<&str>) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.expect("a part"))
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// Every refusal says where it comes from, on one line, bounded.
fn check_message(e: &JwtSvidError) {
    let shown = e.to_string();
    assert!(shown.starts_with("jwt-svid: "), "{shown}");
    assert!(!shown.contains('\n'), "{shown:?}");
    assert!(
        shown.len() < 16 * 1024,
        "a message of {} bytes",
        shown.len()
    );
}

/// The seeds: framed inputs for every signing mode and rule, and signed
/// tokens as text.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let exp = FIXED_NOW + 300;
    let header = format!(r#"{{"alg":"ES256","kid":"{KEY_ID}","typ":"JWT"}}"#);
    let claims = format!(
        r#"{{"sub":"spiffe://example.org/w","aud":["{AUDIENCE}"],"exp":{exp},"iat":{}}}"#,
        FIXED_NOW - 10
    );
    let other = format!(
        r#"{{"sub":"spiffe://other.org/w","aud":"{AUDIENCE}","exp":{exp},"nbf":{}}}"#,
        FIXED_NOW - 10
    );
    let s = |name: &str, bytes: Vec<u8>| (name.to_owned(), bytes);
    vec![
        s("framed-good", framed(Signing::Good, &header, &claims)),
        s("framed-der", framed(Signing::Der, &header, &claims)),
        s(
            "framed-empty-signature",
            framed(Signing::Empty, &header, &claims),
        ),
        s(
            "framed-stranger",
            framed(Signing::Stranger, &header, &claims),
        ),
        s(
            "framed-other-trust-domain",
            framed(Signing::Good, r#"{"alg":"ES256","kid":"other"}"#, &other),
        ),
        s(
            "framed-alg-none",
            framed(
                Signing::Empty,
                r#"{"alg":"none","kid":"fuzz-p256"}"#,
                &claims,
            ),
        ),
        s(
            "framed-expired",
            framed(
                Signing::Good,
                &header,
                &claims.replace(&exp.to_string(), "1"),
            ),
        ),
        s(
            "framed-crit",
            framed(
                Signing::Good,
                r#"{"alg":"ES256","kid":"fuzz-p256","crit":["b64"]}"#,
                &claims,
            ),
        ),
        s(
            "token-good",
            sign(Signing::Good, header.as_bytes(), claims.as_bytes()).into_bytes(),
        ),
        s(
            "token-other-trust-domain",
            sign(
                Signing::Good,
                br#"{"alg":"ES256","kid":"other","typ":"JOSE"}"#,
                other.as_bytes(),
            )
            .into_bytes(),
        ),
    ]
}
