//! JWS signature verification with the rustls crypto provider in use
//! (RFC 7515 section 5.2, RFC 7518 section 3): no second crypto stack.

use rustls::crypto::CryptoProvider;

use super::{JwsAlgorithm, JwtSvidError};
use crate::bundle::JwtKey;
use crate::der;
use crate::id::TrustDomain;

/// Checks `signature` over `message` with `key`, by `alg`, through the
/// provider's signature verification algorithms (those rustls verifies
/// certificate signatures with), matched by their key and signature
/// algorithm identifiers.
pub(super) fn verify(
    provider: &CryptoProvider,
    alg: JwsAlgorithm,
    key: &JwtKey,
    trust_domain: &TrustDomain,
    message: &[u8],
    signature: &[u8],
) -> Result<(), JwtSvidError> {
    let (key_id, sig_id) = alg.webpki_ids();
    let verifier = provider
        .signature_verification_algorithms
        .all
        .iter()
        .find(|v| v.public_key_alg_id() == key_id && v.signature_alg_id() == sig_id)
        .ok_or(JwtSvidError::UnsupportedByProvider { alg })?;
    let der;
    let signature = match alg.ecdsa_coordinate_len() {
        Some(n) => {
            // RFC 7518 section 3.4: r || s, each exactly n bytes; the
            // provider takes the DER `Ecdsa-Sig-Value`. A DER signature in
            // the token has another length, or else fails to verify when
            // read as r || s: it is never accepted.
            if signature.len() != 2 * n {
                return Err(JwtSvidError::MalformedSignature {
                    alg,
                    len: signature.len(),
                    expected: 2 * n,
                });
            }
            let (r, s) = signature.split_at(n);
            der = ecdsa_sig_value(r, s);
            &der[..]
        }
        None => signature,
    };
    verifier
        .verify_signature(key.public_key(), message, signature)
        .map_err(|_| JwtSvidError::BadSignature {
            alg,
            key_id: crate::x509::escape_untrusted(key.key_id()),
            trust_domain: trust_domain.clone(),
        })
}

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279
/// section 2.2.3) of big-endian `r` and `s`.
fn ecdsa_sig_value(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut integers = der::unsigned_integer(r);
    integers.extend(der::unsigned_integer(s));
    der::tlv(0x30, &integers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signature_values_are_minimal_der() {
        assert_eq!(
            ecdsa_sig_value(&[0, 1], &[0x80]),
            [0x30, 7, 2, 1, 1, 2, 2, 0, 0x80]
        );
        assert_eq!(ecdsa_sig_value(&[0, 0], &[]), [0x30, 6, 2, 1, 0, 2, 1, 0]);
        let long = ecdsa_sig_value(&[0xff; 66], &[0xff; 66]);
        assert_eq!(&long[..3], &[0x30, 0x81, 2 * 69]);
    }
}
