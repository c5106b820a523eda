//! Why a JWT-SVID is refused.

use std::time::{Duration, SystemTime};

use super::JwsAlgorithm;
use crate::bundle::JwtKeyType;
use crate::id::{SpiffeIdError, TrustDomain};
use crate::time_fmt::Rfc3339;

/// A part of a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsPart {
    /// The whole token.
    Token,
    /// The JOSE header (first part).
    Header,
    /// The claims (second part, the JWS payload).
    Claims,
    /// The signature (third part).
    Signature,
}

impl std::fmt::Display for JwsPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Token => "token",
            Self::Header => "header",
            Self::Claims => "claims",
            Self::Signature => "signature",
        })
    }
}

/// Why a JWT-SVID is refused, one variant per rule, in the order
/// [`JwtSvidValidator`](crate::JwtSvidValidator) checks them. Strings that
/// come from the token are escaped and truncated
/// ([`escape_untrusted`](crate::escape_untrusted)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSvidError {
    /// A part (or the whole token) is larger than its limit
    /// ([`MAX_JWT_SVID_BYTES`](crate::MAX_JWT_SVID_BYTES),
    /// [`MAX_JWT_HEADER_BYTES`](crate::MAX_JWT_HEADER_BYTES),
    /// [`MAX_JWT_CLAIMS_BYTES`](crate::MAX_JWT_CLAIMS_BYTES)).
    #[error("jwt-svid: {part} of {len} bytes, larger than the {max} bytes allowed")]
    TooLarge {
        /// The part.
        part: JwsPart,
        /// Its length (encoded for the token, decoded for header and
        /// claims, or at least this much).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is a JWS JSON serialization; JWT-SVIDs use the compact
    /// one (JWT-SVID.md section 5.1).
    #[error("jwt-svid: a JWS JSON serialization; only the compact serialization is accepted")]
    JsonSerialization,
    /// The token has five parts: a JWE (encrypted), which JWT-SVIDs never
    /// are (JWT-SVID.md section 2).
    #[error("jwt-svid: a JWE (five parts); only a signed compact JWS (three parts) is accepted")]
    Encrypted,
    /// The token is not three parts separated by dots.
    #[error("jwt-svid: {parts} part(s); a compact JWS has exactly three")]
    NotCompactJws {
        /// The number of dot-separated parts.
        parts: usize,
    },
    /// A part is not base64url without padding (RFC 7515 section 2).
    #[error("jwt-svid: {part} is not base64url without padding: {reason}")]
    BadBase64 {
        /// The part.
        part: JwsPart,
        /// What the decoder said.
        reason: String,
    },
    /// The header or claims are not a JSON object, or repeat a member
    /// (RFC 7515 section 4 and RFC 7519 section 4: duplicate names are
    /// refused rather than resolved).
    #[error("jwt-svid: {part} is not a JSON object without duplicate members: {reason}")]
    MalformedJson {
        /// The part.
        part: JwsPart,
        /// What is wrong, with the parser's words.
        reason: String,
    },
    /// The header has no `alg`.
    #[error("jwt-svid: the header has no \"alg\"")]
    MissingAlgorithm,
    /// The header's `alg` is not a JWT-SVID algorithm: `none`, HMAC or any
    /// other (JWT-SVID.md section 2.1). Checked before any other header
    /// member.
    #[error("jwt-svid: \"alg\" {alg} is not a JWT-SVID algorithm (RS, ES or PS 256/384/512)")]
    UnsupportedAlgorithm {
        /// The `alg` (a JSON string, or the JSON text of another value),
        /// escaped and truncated.
        alg: String,
    },
    /// The header has a `crit` member: no extension is understood, so a
    /// critical one is refused (RFC 7515 section 4.1.11).
    #[error("jwt-svid: the header has \"crit\"; no critical extension is supported")]
    CriticalHeader,
    /// The header's `typ` is present and neither `JWT` nor `JOSE`
    /// (JWT-SVID.md section 2.3).
    #[error("jwt-svid: \"typ\" {typ} is neither JWT nor JOSE")]
    BadType {
        /// The `typ`, escaped and truncated.
        typ: String,
    },
    /// The header has a member JWT-SVID.md section 2 does not allow (only
    /// `alg`, `kid` and `typ` may appear).
    #[error("jwt-svid: header member {name} is not allowed in a JWT-SVID (only alg, kid and typ)")]
    UnexpectedHeader {
        /// The member's name, escaped and truncated.
        name: String,
    },
    /// The header has no `kid`, or an empty one: keys are found by key ID.
    #[error("jwt-svid: the header has no \"kid\"; keys are looked up by key ID")]
    MissingKeyId,
    /// A header member or claim this crate reads has the wrong JSON type.
    #[error("jwt-svid: {part} member \"{member}\" is not {expected}")]
    WrongType {
        /// Header or claims.
        part: JwsPart,
        /// The member.
        member: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The claims have no `sub` (JWT-SVID.md section 3.1).
    #[error("jwt-svid: the claims have no \"sub\"")]
    MissingSubject,
    /// The `sub` is not a SPIFFE ID.
    #[error("jwt-svid: \"sub\" {sub} is not a SPIFFE ID")]
    InvalidSubject {
        /// The `sub`, escaped and truncated.
        sub: String,
        /// Why it is not a SPIFFE ID.
        source: SpiffeIdError,
    },
    /// No JWT bundle is trusted for the subject's trust domain.
    #[error("jwt-svid: no JWT bundle for trust domain {trust_domain} of the subject")]
    UntrustedTrustDomain {
        /// The subject's trust domain.
        trust_domain: TrustDomain,
    },
    /// The subject's trust domain bundle has no JWT authority of this key ID.
    #[error("jwt-svid: no JWT authority with \"kid\" {key_id} in the bundle of {trust_domain}")]
    UnknownKeyId {
        /// The `kid`, escaped and truncated.
        key_id: String,
        /// The subject's trust domain.
        trust_domain: TrustDomain,
    },
    /// The key found is of a type that cannot sign with the token's `alg`.
    #[error("jwt-svid: \"alg\" {alg} does not fit key {key_id}, a {key_type} key")]
    AlgorithmKeyMismatch {
        /// The token's `alg`.
        alg: JwsAlgorithm,
        /// The key's ID, escaped and truncated.
        key_id: String,
        /// The key's type.
        key_type: JwtKeyType,
    },
    /// The key found is restricted (by its JWK `alg`) to another algorithm.
    #[error("jwt-svid: \"alg\" {alg}, but key {key_id} is for {key_alg} only")]
    AlgorithmNotAllowedForKey {
        /// The token's `alg`.
        alg: JwsAlgorithm,
        /// The key's ID, escaped and truncated.
        key_id: String,
        /// The key's own `alg`.
        key_alg: String,
    },
    /// The crypto provider in use cannot verify this algorithm (ring has no
    /// P-521, for one).
    #[error("jwt-svid: \"alg\" {alg} is not supported by this crypto provider")]
    UnsupportedByProvider {
        /// The token's `alg`.
        alg: JwsAlgorithm,
    },
    /// An ECDSA signature that is not `r || s` of exactly twice the
    /// coordinate length (RFC 7518 section 3.4; a DER signature is refused).
    #[error(
        "jwt-svid: {alg} signature of {len} bytes; r || s of exactly {expected} bytes required"
    )]
    MalformedSignature {
        /// The token's `alg`.
        alg: JwsAlgorithm,
        /// The decoded signature's length.
        len: usize,
        /// The length required.
        expected: usize,
    },
    /// The signature does not verify with the key.
    #[error("jwt-svid: the {alg} signature does not verify with key {key_id} of {trust_domain}")]
    BadSignature {
        /// The token's `alg`.
        alg: JwsAlgorithm,
        /// The key's ID, escaped and truncated.
        key_id: String,
        /// The subject's trust domain.
        trust_domain: TrustDomain,
    },
    /// The claims have no `aud` (JWT-SVID.md section 3.2).
    #[error("jwt-svid: the claims have no \"aud\"")]
    MissingAudience,
    /// The `aud` is an empty array.
    #[error("jwt-svid: \"aud\" is an empty array")]
    EmptyAudience,
    /// The `aud` does not hold the validator's audience.
    #[error("jwt-svid: audience \"{expected}\" not in \"aud\" [{}]", quoted(found))]
    AudienceMismatch {
        /// The validator's audience.
        expected: String,
        /// The token's audiences (at most eight), each escaped and truncated.
        found: Vec<String>,
    },
    /// The claims have no `exp` (JWT-SVID.md section 3.3).
    #[error("jwt-svid: the claims have no \"exp\"")]
    MissingExpiry,
    /// A time claim (`exp`, `nbf`, `iat`) is not a number of seconds between
    /// 0 and the year 9999.
    #[error("jwt-svid: \"{claim}\" is not a NumericDate between 1970 and 9999")]
    BadNumericDate {
        /// The claim.
        claim: &'static str,
    },
    /// The token expired (with the leeway).
    #[error(
        "jwt-svid: expired at {}, now {} (leeway {}s)",
        Rfc3339(*expired_at), Rfc3339(*now), leeway.as_secs()
    )]
    Expired {
        /// The token's `exp`.
        expired_at: SystemTime,
        /// The time of validation.
        now: SystemTime,
        /// The leeway allowed.
        leeway: Duration,
    },
    /// The token is not valid yet (`nbf`, with the leeway).
    #[error(
        "jwt-svid: not valid before {}, now {} (leeway {}s)",
        Rfc3339(*not_before), Rfc3339(*now), leeway.as_secs()
    )]
    NotYetValid {
        /// The token's `nbf`.
        not_before: SystemTime,
        /// The time of validation.
        now: SystemTime,
        /// The leeway allowed.
        leeway: Duration,
    },
    /// The token says it was issued in the future (`iat`, with the leeway).
    #[error(
        "jwt-svid: issued at {}, in the future: now {} (leeway {}s)",
        Rfc3339(*issued_at), Rfc3339(*now), leeway.as_secs()
    )]
    IssuedInFuture {
        /// The token's `iat`.
        issued_at: SystemTime,
        /// The time of validation.
        now: SystemTime,
        /// The leeway allowed.
        leeway: Duration,
    },
}

/// `"a", "b"`: the token's audiences, already escaped, for a message.
fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
