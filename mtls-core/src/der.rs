//! Writing DER (X.690), for the few structures this crate builds itself:
//! the SubjectPublicKeyInfo of a JWK and the `Ecdsa-Sig-Value` of a JWS
//! signature. Not API: public (and hidden) so that mtls-ca and the fuzz
//! targets write DER with the same code.
//!
//! ```
//! use mtls_core::der;
//!
//! // SEQUENCE { INTEGER 128 }
//! let seq = der::tlv(0x30, &der::unsigned_integer(&[0x00, 0x80]));
//! assert_eq!(seq, [0x30, 0x04, 0x02, 0x02, 0x00, 0x80]);
//! ```

/// A TLV: `tag`, the definite length of `content` (short form below 128
/// bytes, else the long form in as few bytes as the length needs), then
/// `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let len_bytes = len.to_be_bytes();
    let skip = len_bytes.iter().take_while(|&&b| b == 0).count();
    let mut out = Vec::with_capacity(content.len() + 2 + len_bytes.len() - skip);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.push(0x80 | (len_bytes.len() - skip) as u8);
        out.extend_from_slice(&len_bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of the non-negative big-endian number `magnitude`:
/// leading zero bytes dropped, one zero byte put back when the first
/// remaining bit is set (or the number is zero), so the value stays
/// positive and minimal.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let magnitude = &magnitude[start..];
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    tlv(0x02, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_take_the_shortest_form() {
        for (len, header) in [
            (0, &[0x04, 0x00][..]),
            (0x7f, &[0x04, 0x7f]),
            (0x80, &[0x04, 0x81, 0x80]),
            (0xff, &[0x04, 0x81, 0xff]),
            (0x100, &[0x04, 0x82, 0x01, 0x00]),
            (0x1_0000, &[0x04, 0x83, 0x01, 0x00, 0x00]),
        ] {
            let content = vec![0xab; len];
            let out = tlv(0x04, &content);
            assert_eq!(&out[..header.len()], header, "length {len}");
            assert_eq!(&out[header.len()..], &content[..], "length {len}");
        }
    }

    #[test]
    fn integers_are_positive_and_minimal() {
        for (magnitude, der) in [
            (&[][..], &[0x02, 0x01, 0x00][..]),
            (&[0x00, 0x00], &[0x02, 0x01, 0x00]),
            (&[0x00, 0x01], &[0x02, 0x01, 0x01]),
            (&[0x7f], &[0x02, 0x01, 0x7f]),
            (&[0x80], &[0x02, 0x02, 0x00, 0x80]),
            (&[0x00, 0xff, 0x01], &[0x02, 0x03, 0x00, 0xff, 0x01]),
        ] {
            assert_eq!(unsigned_integer(magnitude), der, "{magnitude:02x?}");
        }
    }
}
