//! The SPIFFE ID alphabets and length rules (SPIFFE-ID.md sections 2.1 to
//! 2.3), shared by [`SpiffeId`](super::SpiffeId) and
//! [`TrustDomain`](super::TrustDomain).

use super::error::SpiffeIdError;
use crate::limits::{MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN};

/// Checks the length of a whole SPIFFE ID (SPIFFE-ID.md section 2.3).
pub(super) fn check_id_len(len: usize) -> Result<(), SpiffeIdError> {
    if len > MAX_SPIFFE_ID_LEN {
        return Err(SpiffeIdError::TooLong { len });
    }
    Ok(())
}

/// Checks the bytes of a trust domain name (SPIFFE-ID.md section 2.1 and 2.3).
pub(super) fn validate_trust_domain(name: &[u8]) -> Result<(), SpiffeIdError> {
    if name.is_empty() {
        return Err(SpiffeIdError::MissingTrustDomain);
    }
    for (index, &byte) in name.iter().enumerate() {
        if !is_trust_domain_byte(byte) {
            return Err(trust_domain_char_error(byte, index));
        }
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong { len: name.len() });
    }
    Ok(())
}

/// `[a-z0-9._-]`: the trust domain alphabet of SPIFFE-ID.md section 2.1.
const fn is_trust_domain_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

fn trust_domain_char_error(byte: u8, index: usize) -> SpiffeIdError {
    match byte {
        b':' => SpiffeIdError::PortNotAllowed,
        b'@' => SpiffeIdError::UserInfoNotAllowed,
        b'?' => SpiffeIdError::QueryNotAllowed,
        b'#' => SpiffeIdError::FragmentNotAllowed,
        b'%' => SpiffeIdError::PercentEncodingNotAllowed,
        b'A'..=b'Z' => SpiffeIdError::UppercaseTrustDomain { index },
        _ => SpiffeIdError::BadTrustDomainChar { byte, index },
    }
}

/// Checks an ID path: empty, or `/segment` parts (SPIFFE-ID.md section 2.2).
pub(super) fn validate_path(path: &[u8]) -> Result<(), SpiffeIdError> {
    if path.is_empty() {
        return Ok(());
    }
    if path[0] != b'/' {
        return Err(SpiffeIdError::BadPathChar {
            byte: path[0],
            index: 0,
        });
    }
    let mut segment_start = 1;
    for index in 1..=path.len() {
        let byte = path.get(index).copied();
        match byte {
            None | Some(b'/') => {
                let segment = &path[segment_start..index];
                match segment {
                    b"" if byte.is_none() => return Err(SpiffeIdError::TrailingSlash),
                    b"" => return Err(SpiffeIdError::EmptySegment),
                    b"." | b".." => return Err(SpiffeIdError::DotSegment),
                    _ => {}
                }
                segment_start = index + 1;
            }
            Some(b) if is_path_byte(b) => {}
            Some(b) => return Err(path_char_error(b, index)),
        }
    }
    Ok(())
}

/// `[a-zA-Z0-9._-]`: the path segment alphabet of SPIFFE-ID.md section 2.2.
const fn is_path_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

fn path_char_error(byte: u8, index: usize) -> SpiffeIdError {
    match byte {
        b'?' => SpiffeIdError::QueryNotAllowed,
        b'#' => SpiffeIdError::FragmentNotAllowed,
        b'%' => SpiffeIdError::PercentEncodingNotAllowed,
        _ => SpiffeIdError::BadPathChar { byte, index },
    }
}
