//! A JWT-SVID this workload holds, to send.

use std::fmt;
use std::time::SystemTime;

use super::validator::{audiences, check_header, numeric_date, subject};
use super::{compact, JwtSvid, JwtSvidError};
use crate::id::SpiffeId;

/// A JWT-SVID this workload holds to present to others: the compact token
/// to put in `Authorization: Bearer`, with what the caller needs to know
/// about it (its subject, audiences and expiry). What a
/// [`JwtSvidSource`](crate::JwtSvidSource) returns.
///
/// A `JwtToken` is **not** a [`JwtSvid`]: it is read from the issuer's
/// answer ([`from_compact`](Self::from_compact)) with the form, header and
/// claim rules of JWT-SVID.md, but its signature is not checked here. The
/// receiver checks it: tokens received from peers go through a
/// [`JwtSvidValidator`](crate::JwtSvidValidator), never through this type.
///
/// Its `Debug` output shows `<redacted>` in place of the token (a bearer
/// credential).
///
/// ```
/// use mtls_core::JwtToken;
///
/// // {"alg":"ES256","kid":"k1"}.{"sub":"spiffe://example.org/web","aud":"api","exp":4102444800}.<sig>
/// let token = JwtToken::from_compact(
///     "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.\
///      eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy93ZWIiLCJhdWQiOiJhcGkiLCJleHAiOjQxMDI0NDQ4MDB9.\
///      AAAA",
/// )?;
/// assert_eq!(token.spiffe_id().as_str(), "spiffe://example.org/web");
/// assert_eq!(token.audience(), ["api"]);
/// let shown = format!("{token:?}");
/// assert!(!shown.contains("eyJ") && shown.contains("<redacted>"), "Debug never shows the token");
///
/// // {"alg":"none"}: refused, as a validator would.
/// assert!(JwtToken::from_compact("eyJhbGciOiJub25lIn0.e30.").is_err());
/// # Ok::<(), mtls_core::JwtSvidError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtToken {
    token: Bearer,
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    expiry: SystemTime,
    issued_at: Option<SystemTime>,
}

impl JwtToken {
    /// Reads a JWT-SVID in its compact serialization, as an issuer (the
    /// Workload API, a CA) handed it out: the rules of
    /// [`JwtSvidValidator`](crate::JwtSvidValidator) steps 1 to 3 (size,
    /// form, header: `alg` among the nine, no `crit`, `typ`, `kid`), and
    /// the claims `sub` (a SPIFFE ID), `aud` (a string or non-empty array)
    /// and `exp` (required), `iat` if present. **The signature is not
    /// verified**: this is for tokens the workload sends, not tokens it
    /// accepts.
    pub fn from_compact(token: &str) -> Result<Self, JwtSvidError> {
        let parts = compact::split(token)?;
        check_header(&parts.header)?;
        let claims = compact::claims(parts.claims_b64)?;
        let spiffe_id = subject(&claims)?;
        compact::signature(parts.signature_b64)?;
        let audience = audiences(&claims)?;
        let expiry = numeric_date(&claims, "exp")?.ok_or(JwtSvidError::MissingExpiry)?;
        numeric_date(&claims, "nbf")?;
        let issued_at = numeric_date(&claims, "iat")?;
        Ok(Self {
            token: Bearer(token.to_owned()),
            spiffe_id,
            audience,
            expiry,
            issued_at,
        })
    }

    /// The token, in its compact serialization: what goes after `Bearer `.
    pub fn token(&self) -> &str {
        &self.token.0
    }

    super::claim_accessors!();
}

impl From<JwtSvid> for JwtToken {
    /// A validated JWT-SVID, to send on (its checks were a superset).
    fn from(svid: JwtSvid) -> Self {
        Self {
            token: svid.token,
            spiffe_id: svid.spiffe_id,
            audience: svid.audience,
            expiry: svid.expiry,
            issued_at: svid.issued_at,
        }
    }
}

/// A token in its compact serialization: a bearer credential, which
/// `Debug` never shows (logs are no place for it).
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Bearer(pub(super) String);

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
