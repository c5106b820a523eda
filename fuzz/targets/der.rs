//! Just enough DER to re-sign a mutated certificate, CSR or CRL.
//!
//! All three are `SEQUENCE { tbs, signatureAlgorithm, signature }`. A
//! mutation anywhere in `tbs` breaks the signature, so plain bytes never
//! get past the first signature check; re-signing the mutated `tbs` with
//! one of the fixed keys lets the fuzzer reach every check after it.

use mtls_core::der::tlv;
use rcgen::{KeyPair, SigningKey};

/// `AlgorithmIdentifier { id-Ed25519 }` (RFC 8410).
pub const ED25519_ALGORITHM: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

/// The header length and content length of the TLV at the start of `der`
/// (definite lengths of up to four bytes only).
pub fn header(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some((2, first.into()));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = der
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some((2 + n, len))
}

/// The first element (tag, length and content) inside the SEQUENCE that
/// starts `der`: the `tbs` part of a signed structure.
pub fn signed_part(der: &[u8]) -> Option<&[u8]> {
    if der.first() != Some(&0x30) {
        return None;
    }
    let (outer_header, outer_len) = header(der)?;
    let content = der.get(outer_header..outer_header.checked_add(outer_len)?)?;
    let (inner_header, inner_len) = header(content)?;
    content.get(..inner_header.checked_add(inner_len)?)
}

/// `der` with its signed part signed again by `key` (Ed25519), or `der`
/// unchanged when it is not shaped like a signed structure.
pub fn resign(der: &[u8], key: &KeyPair) -> Vec<u8> {
    let Some(tbs) = signed_part(der) else {
        return der.to_vec();
    };
    let signature = key.sign(tbs).expect("Ed25519 signing does not fail");
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut content = tbs.to_vec();
    content.extend_from_slice(&ED25519_ALGORITHM);
    content.extend_from_slice(&tlv(0x03, &bits));
    tlv(0x30, &content)
}
