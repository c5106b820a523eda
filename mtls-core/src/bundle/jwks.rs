//! The SPIFFE bundle format: a JWKS document
//! (SPIFFE_Trust_Domain_and_Bundle.md section 4).

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rustls_pki_types::CertificateDer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use x509_parser::public_key::PublicKey;

use super::{BundleError, JwtKeyType};

const USE_X509: &str = "x509-svid";
pub(super) const USE_JWT: &str = "jwt-svid";

/// A SPIFFE bundle document, read but not yet interpreted: the X.509
/// authorities' DER (not yet checked as authorities) and the `jwt-svid`
/// entries as they are, each with its position in `keys`.
pub(super) struct Document {
    pub(super) x509: Vec<(usize, CertificateDer<'static>)>,
    pub(super) jwt: Vec<(usize, Map<String, Value>)>,
    pub(super) sequence: Option<u64>,
    pub(super) refresh_hint: Option<Duration>,
}

/// Reads a SPIFFE bundle document (the caller checked its size).
pub(super) fn parse(json: &[u8]) -> Result<Document, BundleError> {
    let json_err = |reason: String| BundleError::Json { reason };
    // RFC 8259 section 8.1: a parser may ignore a byte order mark.
    let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
    let StrictValue(doc) = serde_json::from_slice(json).map_err(|e| json_err(e.to_string()))?;
    let Value::Object(mut doc) = doc else {
        return Err(json_err("the document is not a JSON object".into()));
    };
    let keys = match doc.remove("keys") {
        Some(Value::Array(keys)) => keys,
        Some(_) => return Err(json_err("\"keys\" is not an array".into())),
        None => return Err(json_err("\"keys\" is required".into())),
    };
    let mut out = Document {
        x509: Vec::new(),
        jwt: Vec::new(),
        sequence: None,
        refresh_hint: None,
    };
    match doc.get("spiffe_sequence") {
        None | Some(Value::Null) => {}
        Some(v) => {
            out.sequence = Some(v.as_u64().ok_or_else(|| {
                json_err("\"spiffe_sequence\" is not a non-negative integer".into())
            })?)
        }
    }
    match doc.get("spiffe_refresh_hint") {
        None | Some(Value::Null) => {}
        Some(v) => {
            out.refresh_hint = Some(Duration::from_secs(v.as_u64().ok_or_else(|| {
                json_err("\"spiffe_refresh_hint\" is not a non-negative integer".into())
            })?))
        }
    }
    for (index, key) in keys.into_iter().enumerate() {
        let invalid = |reason: &str| BundleError::InvalidKey {
            index,
            reason: reason.to_owned(),
        };
        let Value::Object(key) = key else {
            return Err(invalid("not a JSON object"));
        };
        match key.get("use").and_then(Value::as_str) {
            Some(USE_X509) => {}
            Some(USE_JWT) => {
                out.jwt.push((index, key));
                continue;
            }
            // Unknown or missing `use`: ignored, as the bundle spec says.
            _ => continue,
        }
        match key.get("kty") {
            Some(Value::String(kty)) if matches!(kty.as_str(), "EC" | "RSA" | "OKP") => {}
            // An unknown key type is ignored, as the bundle spec says.
            Some(Value::String(_)) => continue,
            Some(_) => return Err(invalid("\"kty\" is not a string")),
            None => return Err(invalid("\"kty\" is required")),
        }
        // X509-SVID.md section 6.2: an entry whose `x5c` is missing or empty
        // MUST be ignored, and only the first of several values is used.
        let b64 = match key.get("x5c") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(x5c)) => match x5c.first() {
                None => continue,
                Some(Value::String(b64)) => b64,
                Some(_) => return Err(invalid("the first \"x5c\" value is not a string")),
            },
            Some(_) => return Err(invalid("\"x5c\" is not an array")),
        };
        let der = STANDARD
            .decode(b64)
            .map_err(|e| invalid(&format!("\"x5c\" is not valid base64: {e}")))?;
        out.x509.push((index, CertificateDer::from(der)));
    }
    Ok(out)
}

/// Writes a SPIFFE bundle document: the X.509 authorities, then the
/// `jwt-svid` entries, then `spiffe_sequence` and `spiffe_refresh_hint`
/// when set.
pub(super) fn emit(
    authorities: &[CertificateDer<'static>],
    jwt: impl Iterator<Item = Map<String, Value>>,
    sequence: Option<u64>,
    refresh_hint: Option<Duration>,
) -> Result<String, BundleError> {
    let mut keys = Vec::with_capacity(authorities.len());
    for (index, der) in authorities.iter().enumerate() {
        let mut key = public_jwk(der, index)?;
        key.insert("use".into(), USE_X509.into());
        key.insert(
            "x5c".into(),
            Value::Array(vec![STANDARD.encode(der).into()]),
        );
        keys.push(Value::Object(key));
    }
    keys.extend(jwt.map(Value::Object));
    let mut doc = Map::new();
    doc.insert("keys".into(), Value::Array(keys));
    if let Some(seq) = sequence {
        doc.insert("spiffe_sequence".into(), seq.into());
    }
    if let Some(hint) = refresh_hint {
        doc.insert("spiffe_refresh_hint".into(), hint.as_secs().into());
    }
    serde_json::to_string_pretty(&Value::Object(doc)).map_err(|e| BundleError::Json {
        reason: e.to_string(),
    })
}

/// The JWK public key members (`kty`, `crv`, `x`, `y`, `n`, `e`) of a certificate.
fn public_jwk(der: &[u8], index: usize) -> Result<Map<String, Value>, BundleError> {
    let unsupported = |reason: String| BundleError::InvalidCertificate { index, reason };
    let cert = crate::x509::parse(der, index).map_err(|e| unsupported(e.to_string()))?;
    let spki = cert.public_key();
    let b64 = |bytes: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(bytes));
    let mut jwk = Map::new();
    match spki.parsed() {
        Ok(PublicKey::EC(point)) => {
            let crv = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .and_then(|oid| JwtKeyType::from_curve_oid(oid.as_bytes()))
                .and_then(JwtKeyType::curve_name)
                .ok_or_else(|| unsupported("unsupported elliptic curve".into()))?;
            let data = point.data();
            if data.len() < 3 || data[0] != 4 || data.len() % 2 == 0 {
                return Err(unsupported("EC point is not uncompressed".into()));
            }
            let (x, y) = data[1..].split_at((data.len() - 1) / 2);
            jwk.insert("kty".into(), "EC".into());
            jwk.insert("crv".into(), crv.into());
            jwk.insert("x".into(), b64(x));
            jwk.insert("y".into(), b64(y));
        }
        Ok(PublicKey::RSA(rsa)) => {
            jwk.insert("kty".into(), "RSA".into());
            jwk.insert("n".into(), b64(strip_zeros(rsa.modulus)));
            jwk.insert("e".into(), b64(strip_zeros(rsa.exponent)));
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            jwk.insert("kty".into(), "OKP".into());
            jwk.insert("crv".into(), "Ed25519".into());
            jwk.insert("x".into(), b64(&spki.subject_public_key.data));
        }
        _ => return Err(unsupported("unsupported public key algorithm".into())),
    }
    Ok(jwk)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

/// A JSON value whose objects may not repeat a member name (the bundle
/// spec forbids duplicate members; `serde_json::Value` keeps the last one).
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate member {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}
