//! JWT authorities: the `jwt-svid` keys of a SPIFFE bundle (JWT-SVID.md
//! section 6, RFC 7517 and RFC 7518 section 6), typed.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use serde_json::{Map, Value};

use crate::der;
use crate::limits::{MAX_RSA_BITS, MIN_RSA_BITS};

/// The type of a JWT authority's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtKeyType {
    /// ECDSA on NIST P-256 (`kty: "EC"`, `crv: "P-256"`), for `ES256`.
    EcP256,
    /// ECDSA on NIST P-384 (`crv: "P-384"`), for `ES384`.
    EcP384,
    /// ECDSA on NIST P-521 (`crv: "P-521"`), for `ES512`.
    EcP521,
    /// RSA (`kty: "RSA"`), for `RS256`/`RS384`/`RS512` and
    /// `PS256`/`PS384`/`PS512`.
    Rsa,
}

impl JwtKeyType {
    /// The JWK `crv` of an EC key type, `None` for RSA.
    pub(super) fn curve_name(self) -> Option<&'static str> {
        match self {
            Self::EcP256 => Some("P-256"),
            Self::EcP384 => Some("P-384"),
            Self::EcP521 => Some("P-521"),
            Self::Rsa => None,
        }
    }

    /// The length of each EC coordinate, in bytes (RFC 7518 section 6.2.1.2).
    fn coordinate_len(self) -> usize {
        match self {
            Self::EcP256 => 32,
            Self::EcP384 => 48,
            Self::EcP521 => 66,
            Self::Rsa => 0,
        }
    }

    /// The DER of the named curve's OID.
    fn curve_oid(self) -> &'static [u8] {
        match self {
            // 1.2.840.10045.3.1.7
            Self::EcP256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            // 1.3.132.0.34
            Self::EcP384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            // 1.3.132.0.35
            Self::EcP521 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
            Self::Rsa => &[],
        }
    }

    /// The EC key type of a named curve, from the content of its OID
    /// (the DER after tag and length), as in an SPKI's parameters.
    pub(super) fn from_curve_oid(oid: &[u8]) -> Option<Self> {
        [Self::EcP256, Self::EcP384, Self::EcP521]
            .into_iter()
            .find(|t| t.curve_oid().get(2..) == Some(oid))
    }

    /// Whether a JWS `alg` goes with this key type.
    fn allows(self, alg: &str) -> bool {
        match self {
            Self::EcP256 => alg == "ES256",
            Self::EcP384 => alg == "ES384",
            Self::EcP521 => alg == "ES512",
            Self::Rsa => matches!(
                alg,
                "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
            ),
        }
    }
}

impl fmt::Display for JwtKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EcP256 => "EC P-256",
            Self::EcP384 => "EC P-384",
            Self::EcP521 => "EC P-521",
            Self::Rsa => "RSA",
        })
    }
}

/// The JWS algorithms a JWT-SVID may use (JWT-SVID.md section 2.1).
const JWT_SVID_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
];

#[derive(Clone, PartialEq, Eq)]
enum Params {
    Ec { x: Vec<u8>, y: Vec<u8> },
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// A JWT authority of a trust domain: a `jwt-svid` key of its SPIFFE
/// bundle, by key ID, ready for JWT-SVID validation.
///
/// Only keys a JWT-SVID can be signed with exist: EC on P-256, P-384 or
/// P-521 (coordinates of the curve's exact length) and RSA of 2048 to 8192
/// bits. The public key is kept as a DER `SubjectPublicKeyInfo`
/// ([`subject_public_key_info`](Self::subject_public_key_info)) and as the
/// raw key ([`public_key`](Self::public_key): the uncompressed EC point or
/// the PKCS#1 `RSAPublicKey`), which is what a rustls crypto provider's
/// `SignatureVerificationAlgorithm::verify_signature` takes.
///
/// ```
/// use mtls_core::{JwtKey, JwtKeyType};
///
/// // The P-256 key of RFC 7517 appendix A.1.
/// let key = JwtKey::ec(
///     "1",
///     JwtKeyType::EcP256,
///     "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
///     "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
/// )?
/// .with_algorithm("ES256")?;
/// assert_eq!(key.key_id(), "1");
/// assert_eq!(key.key_type(), JwtKeyType::EcP256);
/// assert_eq!(key.public_key().len(), 65); // 0x04 || x || y
///
/// // The algorithm must fit the key.
/// assert!(key.clone().with_algorithm("RS256").is_err());
/// # Ok::<(), mtls_core::JwtKeyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct JwtKey {
    key_id: String,
    key_type: JwtKeyType,
    algorithm: Option<String>,
    params: Params,
    /// The raw public key (the subjectPublicKey bits).
    public_key: Vec<u8>,
    /// The DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
}

impl JwtKey {
    /// An EC key from its JWK members: `x` and `y` in base64url without
    /// padding, each exactly as long as the curve requires.
    pub fn ec(key_id: &str, curve: JwtKeyType, x: &str, y: &str) -> Result<Self, JwtKeyError> {
        let x = decode("x", x)?;
        let y = decode("y", y)?;
        Self::from_ec(key_id, curve, x, y)
    }

    /// An RSA key from its JWK members `n` and `e` (base64url without
    /// padding, big-endian; leading zero bytes are dropped).
    pub fn rsa(key_id: &str, n: &str, e: &str) -> Result<Self, JwtKeyError> {
        let n = decode("n", n)?;
        let e = decode("e", e)?;
        Self::from_rsa(key_id, n, e)
    }

    /// The same key, for JWS algorithm `alg` only (the JWK `alg` member):
    /// one of the JWT-SVID algorithms that fits the key type.
    pub fn with_algorithm(mut self, alg: &str) -> Result<Self, JwtKeyError> {
        if !JWT_SVID_ALGORITHMS.contains(&alg) {
            return Err(JwtKeyError::UnsupportedAlgorithm {
                alg: crate::x509::escape_untrusted(alg),
            });
        }
        if !self.key_type.allows(alg) {
            return Err(JwtKeyError::AlgorithmMismatch {
                alg: alg.to_owned(),
                key_type: self.key_type,
            });
        }
        self.algorithm = Some(alg.to_owned());
        Ok(self)
    }

    fn from_ec(
        key_id: &str,
        key_type: JwtKeyType,
        x: Vec<u8>,
        y: Vec<u8>,
    ) -> Result<Self, JwtKeyError> {
        check_key_id(key_id)?;
        let expected = key_type.coordinate_len();
        if key_type == JwtKeyType::Rsa {
            return Err(JwtKeyError::UnsupportedCurve {
                crv: "RSA".to_owned(),
            });
        }
        for (member, coordinate) in [("x", &x), ("y", &y)] {
            if coordinate.len() != expected {
                return Err(JwtKeyError::WrongCoordinateLength {
                    member,
                    key_type,
                    expected,
                    len: coordinate.len(),
                });
            }
        }
        let mut point = Vec::with_capacity(1 + 2 * expected);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        // SEQUENCE { SEQUENCE { ecPublicKey, curve }, BIT STRING point }
        let mut algorithm = vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        algorithm.extend_from_slice(key_type.curve_oid());
        let spki = spki_der(&algorithm, &point);
        Ok(Self {
            key_id: key_id.to_owned(),
            key_type,
            algorithm: None,
            params: Params::Ec { x, y },
            public_key: point,
            spki,
        })
    }

    fn from_rsa(key_id: &str, n: Vec<u8>, e: Vec<u8>) -> Result<Self, JwtKeyError> {
        check_key_id(key_id)?;
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = n
            .first()
            .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(JwtKeyError::RsaModulusSize { bits });
        }
        if e.is_empty() || e.len() > 8 || e.last().is_some_and(|b| b & 1 == 0) || e == [1] {
            return Err(JwtKeyError::BadRsaExponent);
        }
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let mut integers = der::unsigned_integer(&n);
        integers.extend(der::unsigned_integer(&e));
        let rsa_public_key = der::tlv(0x30, &integers);
        // rsaEncryption, NULL parameters
        let algorithm = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ];
        let spki = spki_der(&algorithm, &rsa_public_key);
        Ok(Self {
            key_id: key_id.to_owned(),
            key_type: JwtKeyType::Rsa,
            algorithm: None,
            params: Params::Rsa { n, e },
            public_key: rsa_public_key,
            spki,
        })
    }

    /// The key ID (`kid`), never empty: JWT-SVIDs name their key by it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key type.
    pub fn key_type(&self) -> JwtKeyType {
        self.key_type
    }

    /// The JWS algorithm the key is restricted to (its JWK `alg`), if any.
    pub fn algorithm(&self) -> Option<&str> {
        self.algorithm.as_deref()
    }

    /// The public key as a DER `SubjectPublicKeyInfo`.
    pub fn subject_public_key_info(&self) -> SubjectPublicKeyInfoDer<'_> {
        SubjectPublicKeyInfoDer::from(self.spki.as_slice())
    }

    /// The raw public key, as a rustls `SignatureVerificationAlgorithm`
    /// takes it: the uncompressed point `0x04 || x || y` of an EC key, the
    /// DER `RSAPublicKey` of an RSA key.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The coordinates `(x, y)` of an EC key, big-endian, full length.
    pub fn ec_coordinates(&self) -> Option<(&[u8], &[u8])> {
        match &self.params {
            Params::Ec { x, y } => Some((x, y)),
            Params::Rsa { .. } => None,
        }
    }

    /// The modulus and public exponent `(n, e)` of an RSA key, big-endian,
    /// without leading zero bytes.
    pub fn rsa_components(&self) -> Option<(&[u8], &[u8])> {
        match &self.params {
            Params::Rsa { n, e } => Some((n, e)),
            Params::Ec { .. } => None,
        }
    }

    /// Reads a `jwt-svid` JWK: `Ok(None)` for a key type this crate does not
    /// know (ignored, as SPIFFE_Trust_Domain_and_Bundle.md section 4.2.1
    /// says).
    pub(super) fn from_jwk(jwk: &Map<String, Value>) -> Result<Option<Self>, JwtKeyError> {
        let kty = member(jwk, "kty")?.ok_or(JwtKeyError::MissingMember { member: "kty" })?;
        if !matches!(kty, "EC" | "RSA") {
            return Ok(None);
        }
        let key_id = member(jwk, "kid")?.ok_or(JwtKeyError::MissingKeyId)?;
        check_key_id(key_id)?;
        let required = |name: &'static str| {
            member(jwk, name)?.ok_or(JwtKeyError::MissingMember { member: name })
        };
        let key = if kty == "EC" {
            let crv = required("crv")?;
            let curve = match crv {
                "P-256" => JwtKeyType::EcP256,
                "P-384" => JwtKeyType::EcP384,
                "P-521" => JwtKeyType::EcP521,
                other => {
                    return Err(JwtKeyError::UnsupportedCurve {
                        crv: crate::x509::escape_untrusted(other),
                    })
                }
            };
            Self::ec(key_id, curve, required("x")?, required("y")?)?
        } else {
            Self::rsa(key_id, required("n")?, required("e")?)?
        };
        match member(jwk, "alg")? {
            Some(alg) => key.with_algorithm(alg).map(Some),
            None => Ok(Some(key)),
        }
    }

    /// The JWK of this key, `use: "jwt-svid"`.
    pub(super) fn to_jwk(&self) -> Map<String, Value> {
        let b64 = |bytes: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = Map::new();
        jwk.insert("use".into(), super::jwks::USE_JWT.into());
        jwk.insert("kid".into(), self.key_id.clone().into());
        match &self.params {
            Params::Ec { x, y } => {
                jwk.insert("kty".into(), "EC".into());
                if let Some(crv) = self.key_type.curve_name() {
                    jwk.insert("crv".into(), crv.into());
                }
                jwk.insert("x".into(), b64(x));
                jwk.insert("y".into(), b64(y));
            }
            Params::Rsa { n, e } => {
                jwk.insert("kty".into(), "RSA".into());
                jwk.insert("n".into(), b64(n));
                jwk.insert("e".into(), b64(e));
            }
        }
        if let Some(alg) = &self.algorithm {
            jwk.insert("alg".into(), alg.clone().into());
        }
        jwk
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("key_id", &self.key_id)
            .field("key_type", &self.key_type)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A string member of a JWK: `Ok(None)` when absent.
fn member<'a>(
    jwk: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, JwtKeyError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwtKeyError::NotAString { member: name }),
    }
}

fn check_key_id(key_id: &str) -> Result<(), JwtKeyError> {
    if key_id.is_empty() {
        return Err(JwtKeyError::EmptyKeyId);
    }
    Ok(())
}

fn decode(member: &'static str, b64: &str) -> Result<Vec<u8>, JwtKeyError> {
    URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|e| JwtKeyError::BadBase64Url {
            member,
            reason: e.to_string(),
        })
}

fn strip_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.drain(..start);
    bytes
}

/// `SEQUENCE { SEQUENCE { algorithm }, BIT STRING key }`.
fn spki_der(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(key);
    let mut content = der::tlv(0x30, algorithm);
    content.extend(der::tlv(0x03, &bits));
    der::tlv(0x30, &content)
}

/// Why a `jwt-svid` key of a SPIFFE bundle is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtKeyError {
    /// The key has no `kid` (JWT-SVID.md section 6 requires one).
    #[error("\"kid\" is required on a jwt-svid key")]
    MissingKeyId,
    /// The key's `kid` is empty.
    #[error("\"kid\" is empty")]
    EmptyKeyId,
    /// A member the key type requires is missing.
    #[error("\"{member}\" is required")]
    MissingMember {
        /// The member's name.
        member: &'static str,
    },
    /// A member is not a JSON string.
    #[error("\"{member}\" is not a string")]
    NotAString {
        /// The member's name.
        member: &'static str,
    },
    /// A member is not base64url without padding.
    #[error("\"{member}\" is not base64url without padding: {reason}")]
    BadBase64Url {
        /// The member's name.
        member: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// An EC coordinate is not exactly as long as the curve requires.
    #[error("\"{member}\" is {len} bytes; a {key_type} coordinate is {expected}")]
    WrongCoordinateLength {
        /// `x` or `y`.
        member: &'static str,
        /// The key's type.
        key_type: JwtKeyType,
        /// The length the curve requires.
        expected: usize,
        /// The decoded length.
        len: usize,
    },
    /// An EC key on a curve JWT-SVIDs do not use.
    #[error("curve \"{crv}\" is not supported (P-256, P-384 or P-521)")]
    UnsupportedCurve {
        /// The `crv`, escaped and truncated.
        crv: String,
    },
    /// An RSA modulus outside 2048..=8192 bits.
    #[error("RSA modulus of {bits} bits; 2048 to 8192 required")]
    RsaModulusSize {
        /// The modulus length.
        bits: usize,
    },
    /// An RSA exponent that is zero, one, even or longer than 8 bytes.
    #[error("RSA exponent \"e\" is not an odd number above 1 of at most 8 bytes")]
    BadRsaExponent,
    /// An `alg` that is no JWT-SVID algorithm.
    #[error("\"alg\" {alg} is not a JWT-SVID algorithm (RS, ES or PS 256/384/512)")]
    UnsupportedAlgorithm {
        /// The `alg`, escaped and truncated.
        alg: String,
    },
    /// An `alg` that does not fit the key type.
    #[error("\"alg\" {alg} does not fit a {key_type} key")]
    AlgorithmMismatch {
        /// The `alg`.
        alg: String,
        /// The key's type.
        key_type: JwtKeyType,
    },
    /// Another key of the bundle has the same `kid`.
    #[error("another jwt-svid key has the same \"kid\"")]
    DuplicateKeyId,
}
