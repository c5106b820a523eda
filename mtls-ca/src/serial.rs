//! Random certificate serial numbers.

use rcgen::SerialNumber;

use crate::error::CaError;

/// A fresh random serial: 16 bytes, positive, 126 random bits, so that
/// re-issuing for one key never repeats a serial (CRLs depend on it).
pub(crate) fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    mtls_core::default_crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| CaError::Randomness)?;
    // Positive and of a fixed length: top bit clear, next bit set.
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Lowercase hex of a serial's bytes.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex (with optional `0x` and `:` separators) into serial bytes.
pub(crate) fn from_hex(s: &str) -> Result<Vec<u8>, CaError> {
    let bad = || CaError::InvalidSerial(s.to_owned());
    let digits: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if digits.is_empty() || digits.len() > 40 || !digits.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, _>>()
        .map(canonical)
}

/// The minimal DER INTEGER content of a positive serial: no redundant
/// leading zero, and a zero in front of a high first byte.
pub(crate) fn canonical(mut v: Vec<u8>) -> Vec<u8> {
    while v.len() > 1 && v[0] == 0 && v[1] < 0x80 {
        v.remove(0);
    }
    if v.first().is_some_and(|b| *b >= 0x80) {
        v.insert(0, 0);
    }
    v
}
