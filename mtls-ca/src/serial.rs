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
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: Vec<u8> = t.bytes().filter(|b| *b != b':').collect();
    // ASCII hex only: slicing a `str` between the bytes of a multi-byte
    // character would panic.
    if digits.is_empty()
        || !digits.len().is_multiple_of(2)
        || !digits.iter().all(u8::is_ascii_hexdigit)
    {
        return Err(bad());
    }
    let serial = canonical(decode_hex(&digits).ok_or_else(bad)?);
    // RFC 5280 allows 20 octets; one more for the sign byte of a 20-octet
    // value with its high bit set, which exists in the wild.
    if serial.len() > 21 {
        return Err(bad());
    }
    Ok(serial)
}

/// Decodes ASCII hex digits (an even number of them).
pub(crate) fn decode_hex(digits: &[u8]) -> Option<Vec<u8>> {
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// The minimal DER INTEGER content of a positive serial: no redundant
/// leading zero, and a zero in front of a high first byte.
pub(crate) fn canonical(mut v: Vec<u8>) -> Vec<u8> {
    if v.is_empty() {
        // No DER INTEGER is empty; read it as zero rather than store a
        // serial no CRL can hold.
        v.push(0);
    }
    while v.len() > 1 && v[0] == 0 && v[1] < 0x80 {
        v.remove(0);
    }
    if v.first().is_some_and(|b| *b >= 0x80) {
        v.insert(0, 0);
    }
    v
}
