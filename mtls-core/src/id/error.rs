//! The one error of SPIFFE ID and trust domain parsing.

use crate::limits::{MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN};

/// Why a string is not a valid SPIFFE ID or trust domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// The input is empty.
    #[error("spiffe id: empty")]
    Empty,
    /// The input is longer than 2048 bytes.
    #[error("spiffe id: {len} bytes, longer than the {MAX_SPIFFE_ID_LEN} bytes allowed")]
    TooLong {
        /// Length of the input, in bytes.
        len: usize,
    },
    /// The input does not start with the lowercase `spiffe://`.
    #[error("spiffe id: scheme must be \"spiffe://\" (lowercase)")]
    WrongScheme,
    /// There is no trust domain.
    #[error("spiffe id: trust domain is missing")]
    MissingTrustDomain,
    /// The trust domain is longer than 255 bytes.
    #[error("spiffe id: trust domain is {len} bytes, longer than the {MAX_TRUST_DOMAIN_LEN} bytes allowed")]
    TrustDomainTooLong {
        /// Length of the trust domain, in bytes.
        len: usize,
    },
    /// The trust domain has an uppercase letter (never folded to lowercase).
    #[error("spiffe id: trust domain has an uppercase letter at byte {index}; trust domains are lowercase")]
    UppercaseTrustDomain {
        /// Offset of the letter within the trust domain.
        index: usize,
    },
    /// The trust domain has a byte outside `[a-z0-9._-]`.
    #[error("spiffe id: trust domain has byte 0x{byte:02x} at {index}; only a-z, 0-9, '.', '-' and '_' are allowed")]
    BadTrustDomainChar {
        /// The offending byte.
        byte: u8,
        /// Its offset within the trust domain.
        index: usize,
    },
    /// The authority has a port (`:`).
    #[error("spiffe id: a port is not allowed")]
    PortNotAllowed,
    /// The authority has userinfo (`@`).
    #[error("spiffe id: userinfo is not allowed")]
    UserInfoNotAllowed,
    /// The input has a query (`?`).
    #[error("spiffe id: a query is not allowed")]
    QueryNotAllowed,
    /// The input has a fragment (`#`).
    #[error("spiffe id: a fragment is not allowed")]
    FragmentNotAllowed,
    /// The input has percent-encoding (`%`).
    #[error("spiffe id: percent-encoding is not allowed")]
    PercentEncodingNotAllowed,
    /// The path has an empty segment (`//`).
    #[error("spiffe id: path has an empty segment")]
    EmptySegment,
    /// The path has a `.` or `..` segment.
    #[error("spiffe id: path has a '.' or '..' segment")]
    DotSegment,
    /// The path ends with `/`.
    #[error("spiffe id: path has a trailing '/'")]
    TrailingSlash,
    /// The path has a byte outside `[a-zA-Z0-9._-]` and `/`.
    #[error("spiffe id: path has byte 0x{byte:02x} at {index}; only a-z, A-Z, 0-9, '.', '-', '_' and '/' are allowed")]
    BadPathChar {
        /// The offending byte.
        byte: u8,
        /// Its offset within the path.
        index: usize,
    },
    /// A trust domain was given as a SPIFFE ID with a path.
    #[error("spiffe id: a trust domain cannot have a path")]
    TrustDomainWithPath,
    /// A bare trust domain name was expected, and a `spiffe://` ID came.
    #[error("trust domain: {0:?} is a SPIFFE ID, not a trust domain name; give the name alone (example.org), or parse it with TrustDomain::from_id_or_name (or SpiffeId::new for a workload's ID)")]
    TrustDomainIsAnId(String),
}
