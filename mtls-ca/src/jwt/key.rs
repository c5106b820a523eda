//! The CA's JWT signing key: an ECDSA key that signs compact JWS tokens.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mtls_core::{JwtKey, JwtKeyType};
use rcgen::{KeyPair, SigningKey};
use zeroize::Zeroizing;

use crate::error::CaError;
use crate::key::KeyType;

/// A JWT-SVID signing key of the CA: its key ID (`kid`), algorithm and
/// private key. Only ECDSA keys sign JWT-SVIDs here: P-256 (`ES256`, the
/// default) or P-384 (`ES384`).
#[derive(Clone)]
pub struct JwtSigningKey {
    key_id: String,
    key_type: KeyType,
    key: Arc<KeyPair>,
}

impl JwtSigningKey {
    /// A fresh key of `key_type` (P-256 or P-384; Ed25519 is not a JWT-SVID
    /// algorithm) with a random key ID.
    pub fn generate(key_type: KeyType) -> Result<Self, CaError> {
        algorithm_of(key_type)?;
        let key = key_type.generate()?;
        Ok(Self {
            key_id: random_key_id()?,
            key_type,
            key: Arc::new(key),
        })
    }

    /// A key from its PKCS#8 PEM and key ID, as stored in the CA directory.
    pub(crate) fn from_pem(key_id: &str, pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(pem).map_err(|e| CaError::Pem {
            what: "JWT signing key",
            reason: e.to_string(),
        })?;
        let key_type = if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
            KeyType::P256
        } else if key.algorithm() == &rcgen::PKCS_ECDSA_P384_SHA384 {
            KeyType::P384
        } else {
            return Err(CaError::JwtKeyType(KeyType::Ed25519));
        };
        Ok(Self {
            key_id: key_id.to_owned(),
            key_type,
            key: Arc::new(key),
        })
    }

    /// The key ID (`kid`) tokens signed by this key carry.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The JWS algorithm: `ES256` or `ES384`.
    pub fn algorithm(&self) -> &'static str {
        // Checked at construction.
        algorithm_of(self.key_type).unwrap_or("ES256")
    }

    /// The public key as a bundle's JWT authority (`use: "jwt-svid"`).
    pub fn public_key(&self) -> Result<JwtKey, CaError> {
        let point = self.key.public_key_raw();
        let (curve, len) = match self.key_type {
            KeyType::P384 => (JwtKeyType::EcP384, 48),
            _ => (JwtKeyType::EcP256, 32),
        };
        // An uncompressed point: 0x04 || x || y.
        let coordinates = point
            .strip_prefix(&[0x04])
            .filter(|c| c.len() == 2 * len)
            .ok_or_else(|| CaError::Build {
                what: "JWT authority",
                reason: "the public key is not an uncompressed EC point".into(),
            })?;
        let (x, y) = coordinates.split_at(len);
        JwtKey::ec(
            &self.key_id,
            curve,
            &URL_SAFE_NO_PAD.encode(x),
            &URL_SAFE_NO_PAD.encode(y),
        )
        .and_then(|k| k.with_algorithm(self.algorithm()))
        .map_err(|e| CaError::Build {
            what: "JWT authority",
            reason: e.to_string(),
        })
    }

    /// The private key as PKCS#8 PEM (zeroized on drop).
    pub(crate) fn private_key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.key.serialize_pem())
    }

    /// Signs `header.claims` (both JSON objects) as a compact JWS.
    pub(crate) fn sign_compact(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, CaError> {
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let der = self
            .key
            .sign(token.as_bytes())
            .map_err(|e| crate::authority::build_err("JWT-SVID signature", e))?;
        let len = match self.key_type {
            KeyType::P384 => 48,
            _ => 32,
        };
        let raw = ecdsa_der_to_raw(&der, len).ok_or_else(|| CaError::Build {
            what: "JWT-SVID signature",
            reason: "the ECDSA signature is not DER SEQUENCE { r, s }".into(),
        })?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(raw));
        Ok(token)
    }
}

impl fmt::Debug for JwtSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigningKey")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// The JWS algorithm of a key type, if it signs JWT-SVIDs.
fn algorithm_of(key_type: KeyType) -> Result<&'static str, CaError> {
    match key_type {
        KeyType::P256 => Ok("ES256"),
        KeyType::P384 => Ok("ES384"),
        other => Err(CaError::JwtKeyType(other)),
    }
}

/// 16 random bytes, base64url: unguessable and unique per key.
fn random_key_id() -> Result<String, CaError> {
    let mut bytes = [0u8; 16];
    mtls_core::default_crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| CaError::Randomness)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// An ECDSA signature `SEQUENCE { INTEGER r, INTEGER s }` as JWS wants it
/// (RFC 7518 section 3.4): r and s big-endian, each left-padded to `len`
/// bytes.
fn ecdsa_der_to_raw(der: &[u8], len: usize) -> Option<Vec<u8>> {
    let (tag, body, rest) = der_tlv(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut raw = Vec::with_capacity(2 * len);
    let mut input = body;
    for _ in 0..2 {
        let (tag, integer, rest) = der_tlv(input)?;
        if tag != 0x02 {
            return None;
        }
        let start = integer
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(integer.len());
        let digits = &integer[start..];
        if digits.len() > len {
            return None;
        }
        raw.extend(std::iter::repeat_n(0, len - digits.len()));
        raw.extend_from_slice(digits);
        input = rest;
    }
    input.is_empty().then_some(raw)
}

/// One DER TLV: (tag, content, what follows). Short and one- or two-byte
/// long lengths only (ECDSA signatures are short).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&b, rest) = rest.split_first()?;
            (usize::from(b), rest)
        }
        0x82 => {
            let (b, rest) = rest.split_at_checked(2)?;
            (usize::from(b[0]) << 8 | usize::from(b[1]), rest)
        }
        _ => return None,
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_signatures_become_fixed_length_r_s() {
        // r with a leading zero (high bit set), s short (needs padding).
        let der = [
            0x30, 0x09, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x02, 0x7f, 0x02,
        ];
        let raw = ecdsa_der_to_raw(&der, 4).unwrap_or_default();
        assert_eq!(raw, [0, 0, 0x80, 0x01, 0, 0, 0x7f, 0x02]);
    }

    #[test]
    fn malformed_der_signatures_are_refused() {
        for der in [
            &[][..],
            &[0x30, 0x03, 0x02, 0x01][..], // truncated
            &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01][..], // SET
            &[0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x01][..], // not INTEGER
            &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00][..], // trailing
            &[0x30, 0x08, 0x02, 0x03, 0x01, 0x02, 0x03, 0x02, 0x01, 0x01][..], // r too long
        ] {
            assert_eq!(ecdsa_der_to_raw(der, 2), None, "{der:02x?}");
        }
    }
}
