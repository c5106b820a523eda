//! A JWT-SVID issuer for tests: an ES256 key, its JWT bundle, tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mtls_core::{JwtBundle, JwtKey, JwtKeyType, TrustDomain};
use rcgen::{KeyPair, SigningKey, PKCS_ECDSA_P256_SHA256};

/// Signs JWT-SVIDs with a fresh P-256 key (ES256) published under one key
/// ID in one trust domain's JWT bundle.
///
/// ```
/// use mtls_core::{JwtBundleSet, JwtSvidValidator};
/// use mtls_testing::TestJwtIssuer;
///
/// let issuer = TestJwtIssuer::new("example.org", "k1");
/// let token = issuer.mint("spiffe://example.org/web", &["api"], std::time::Duration::from_secs(60));
/// let bundles = JwtBundleSet::from(issuer.bundle());
/// let svid = JwtSvidValidator::new("api").validate(&token, &bundles).unwrap();
/// assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/web");
/// ```
#[derive(Debug)]
pub struct TestJwtIssuer {
    trust_domain: TrustDomain,
    key_id: String,
    key: KeyPair,
}

impl TestJwtIssuer {
    /// An issuer of `trust_domain` signing under key ID `key_id`.
    pub fn new(trust_domain: &str, key_id: &str) -> Self {
        Self {
            trust_domain: TrustDomain::new(trust_domain).unwrap(),
            key_id: key_id.to_owned(),
            key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap(),
        }
    }

    /// The JWT bundle of the issuer's trust domain: its one key.
    pub fn bundle(&self) -> JwtBundle {
        let point = self.key.public_key_raw();
        let (x, y) = point[1..].split_at(32);
        let key = JwtKey::ec(&self.key_id, JwtKeyType::EcP256, &b64(x), &b64(y)).unwrap();
        JwtBundle::from_keys(self.trust_domain.clone(), [key]).unwrap()
    }

    /// A JWT-SVID for `sub` and `audience`, issued now, expiring in `ttl`.
    pub fn mint(&self, sub: &str, audience: &[&str], ttl: Duration) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let claims = claims_json(sub, audience, now.as_secs(), (now + ttl).as_secs());
        self.sign(&claims)
    }

    /// A compact JWS of `claims` (any text) with header
    /// `{"alg":"ES256","kid":<key ID>,"typ":"JWT"}`.
    pub fn sign(&self, claims: &str) -> String {
        let header = format!(r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#, self.key_id);
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let der = self.key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&raw_signature(&der)))
    }
}

fn claims_json(sub: &str, audience: &[&str], iat: u64, exp: u64) -> String {
    let aud: Vec<String> = audience.iter().map(|a| format!("{a:?}")).collect();
    format!(
        r#"{{"sub":{sub:?},"aud":[{}],"iat":{iat},"exp":{exp}}}"#,
        aud.join(",")
    )
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The JWS form (`r || s`, 32 bytes each) of a DER ECDSA P-256 signature.
fn raw_signature(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "an ECDSA signature");
    let mut out = Vec::with_capacity(64);
    let mut at = 2;
    for _ in 0..2 {
        assert_eq!(der[at], 0x02, "an INTEGER");
        let len = usize::from(der[at + 1]);
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0, 32 - int.len()));
        out.extend_from_slice(int);
        at += 2 + len;
    }
    out
}
