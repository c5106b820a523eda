//! Every size limit of this crate, in one place (re-exported flat from the
//! crate root).
//!
//! Anything a peer or a file controls is bounded before it is parsed:
//!
//! ```
//! use mtls_core::{MAX_CERTIFICATE_BYTES, MAX_CHAIN_LEN, MAX_SPIFFE_ID_LEN};
//!
//! assert_eq!(MAX_SPIFFE_ID_LEN, 2048);
//! assert_eq!(MAX_CHAIN_LEN, 16);
//! assert_eq!(MAX_CERTIFICATE_BYTES, 64 * 1024);
//! ```

/// Longest SPIFFE ID accepted, in bytes, scheme included (SPIFFE-ID.md 2.3).
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// Longest trust domain name accepted, in bytes (SPIFFE-ID.md 2.3).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// Longest chain (leaf and intermediates) accepted from a peer, or loaded
/// as our own SVID.
pub const MAX_CHAIN_LEN: usize = 16;

/// Largest single certificate accepted, in bytes (DER): in a peer's chain,
/// in our own SVID's chain and as a bundle authority.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// Largest bundle document accepted, PEM or JWKS, in bytes.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// Largest CRL document accepted, in bytes.
pub const MAX_CRL_BYTES: usize = 16 * 1024 * 1024;

/// Longest JWT-SVID accepted, in bytes of its compact serialization
/// (SPIRE's are well under 1 KiB; HTTP servers commonly cap a whole header
/// section at 8 to 16 KiB).
pub const MAX_JWT_SVID_BYTES: usize = 16 * 1024;

/// Largest JOSE header of a JWT-SVID accepted, in bytes once decoded.
pub const MAX_JWT_HEADER_BYTES: usize = 1024;

/// Largest claims set of a JWT-SVID accepted, in bytes once decoded.
pub const MAX_JWT_CLAIMS_BYTES: usize = 8 * 1024;

/// Largest file a `FileSource` reads, in bytes: whatever the file holds
/// (chain, key, bundle or CRLs), so it is the largest of the document
/// limits above, and no document that parses is cut short by the read.
#[cfg(feature = "file-source")]
pub const MAX_SOURCE_FILE_BYTES: u64 = if MAX_BUNDLE_BYTES > MAX_CRL_BYTES {
    MAX_BUNDLE_BYTES as u64
} else {
    MAX_CRL_BYTES as u64
};

/// The smallest RSA modulus a handshake accepts (rustls-webpki's
/// `RSA_*_2048_8192_*` algorithms), in bits.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// The largest RSA modulus a handshake accepts, in bits.
pub(crate) const MAX_RSA_BITS: usize = 8192;

/// Longest peer-controlled string (a URI SAN, a subject) quoted in an error
/// message, in characters.
pub(crate) const MAX_QUOTED_CHARS: usize = 128;

/// Federation (feature `federation`): the bounds of a bundle endpoint
/// client and server (SPIFFE_Federation.md).
#[cfg(feature = "federation")]
mod federation {
    use std::time::Duration;

    /// Largest bundle endpoint response body a federation client reads, in
    /// bytes; a larger one is refused before it is parsed. A bundle of a
    /// hundred RSA-4096 authorities is under 300 KiB.
    pub const MAX_FEDERATION_RESPONSE_BYTES: usize = 1024 * 1024;

    /// How many redirects a federation client follows in one fetch (only
    /// temporary ones: 302, 303, 307).
    pub const MAX_FEDERATION_REDIRECTS: usize = 3;

    /// How long a federation client waits for a TCP connection and the TLS
    /// handshake of each hop, by default.
    pub const FEDERATION_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// How long a whole fetch may take (every hop, headers and body), by
    /// default.
    pub const FEDERATION_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

    /// A bundle endpoint server's bound on concurrent connections, by default.
    pub const FEDERATION_MAX_CONNECTIONS: usize = 256;

    /// How long a bundle endpoint server gives a client for the TLS handshake,
    /// by default.
    pub const FEDERATION_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// How long a bundle endpoint server keeps one connection at most (request
    /// headers, answer), by default.
    pub const FEDERATION_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
}
#[cfg(feature = "federation")]
pub use federation::*;
