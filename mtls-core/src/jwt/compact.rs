//! The compact JWS serialization (RFC 7515 section 7.1), bounded and
//! strict: three base64url parts without padding, a header and claims that
//! are JSON objects without duplicate members.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::{JwsPart, JwtSvidError};
use crate::bundle::StrictValue;
use crate::limits::{MAX_JWT_CLAIMS_BYTES, MAX_JWT_HEADER_BYTES, MAX_JWT_SVID_BYTES};

/// A compact JWS cut into its parts, header and claims parsed, nothing
/// checked yet but form and size.
pub(super) struct Compact<'a> {
    /// The JOSE header.
    pub(super) header: Map<String, Value>,
    /// The encoded claims, decoded later (after the header is checked).
    pub(super) claims_b64: &'a str,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, what is signed.
    pub(super) signing_input: &'a str,
    /// The encoded signature.
    pub(super) signature_b64: &'a str,
}

/// Cuts `token` into its parts and parses the header.
pub(super) fn split(token: &str) -> Result<Compact<'_>, JwtSvidError> {
    if token.len() > MAX_JWT_SVID_BYTES {
        return Err(JwtSvidError::TooLarge {
            part: JwsPart::Token,
            len: token.len(),
            max: MAX_JWT_SVID_BYTES,
        });
    }
    if token.trim_start().starts_with('{') {
        return Err(JwtSvidError::JsonSerialization);
    }
    let parts = token.split('.').count();
    match parts {
        3 => {}
        5 => return Err(JwtSvidError::Encrypted),
        _ => return Err(JwtSvidError::NotCompactJws { parts }),
    }
    let Some((signing_input, signature_b64)) = token.rsplit_once('.') else {
        return Err(JwtSvidError::NotCompactJws { parts });
    };
    let Some((header_b64, claims_b64)) = signing_input.split_once('.') else {
        return Err(JwtSvidError::NotCompactJws { parts });
    };
    let header = object(JwsPart::Header, header_b64, MAX_JWT_HEADER_BYTES)?;
    Ok(Compact {
        header,
        claims_b64,
        signing_input,
        signature_b64,
    })
}

/// Decodes a base64url part of at most `max` decoded bytes.
pub(super) fn decode(part: JwsPart, b64: &str, max: usize) -> Result<Vec<u8>, JwtSvidError> {
    // Four characters carry three bytes: refuse before decoding.
    let at_least = b64.len() / 4 * 3;
    if at_least > max {
        return Err(JwtSvidError::TooLarge {
            part,
            len: at_least,
            max,
        });
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|e| JwtSvidError::BadBase64 {
            part,
            reason: e.to_string(),
        })?;
    if bytes.len() > max {
        return Err(JwtSvidError::TooLarge {
            part,
            len: bytes.len(),
            max,
        });
    }
    Ok(bytes)
}

/// Decodes a base64url part holding a JSON object without duplicate
/// members (at any depth).
pub(super) fn object(
    part: JwsPart,
    b64: &str,
    max: usize,
) -> Result<Map<String, Value>, JwtSvidError> {
    let json = decode(part, b64, max)?;
    let malformed = |reason: String| JwtSvidError::MalformedJson { part, reason };
    let StrictValue(value) = serde_json::from_slice(&json).map_err(|e| malformed(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(malformed("not a JSON object".into())),
    }
}

/// Decodes the claims.
pub(super) fn claims(b64: &str) -> Result<Map<String, Value>, JwtSvidError> {
    object(JwsPart::Claims, b64, MAX_JWT_CLAIMS_BYTES)
}

/// Decodes the signature (its size is bounded by the token's).
pub(super) fn signature(b64: &str) -> Result<Vec<u8>, JwtSvidError> {
    decode(JwsPart::Signature, b64, MAX_JWT_SVID_BYTES)
}
