//! A validated JWT-SVID.

use std::fmt;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::token::Bearer;
use super::JwsAlgorithm;
use crate::id::SpiffeId;

/// A JWT-SVID that passed every check of
/// [`JwtSvidValidator`](crate::JwtSvidValidator): signed by a JWT
/// authority of its subject's trust domain, for the validator's audience,
/// within its validity period. It can only be had from a validator.
///
/// Its `Debug` output leaves out the token: a JWT-SVID is a bearer token,
/// and logs are no place for it.
#[derive(Clone, PartialEq)]
pub struct JwtSvid {
    pub(super) spiffe_id: SpiffeId,
    pub(super) audience: Vec<String>,
    pub(super) expiry: SystemTime,
    pub(super) issued_at: Option<SystemTime>,
    pub(super) not_before: Option<SystemTime>,
    pub(super) key_id: String,
    pub(super) algorithm: JwsAlgorithm,
    pub(super) token: Bearer,
    pub(super) claims: Map<String, Value>,
}

impl JwtSvid {
    super::claim_accessors!();

    /// When the token becomes valid (`nbf`), if it says.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.not_before
    }

    /// The key ID of the JWT authority that signed it (`kid`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The algorithm it is signed with (`alg`).
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.algorithm
    }

    /// The token in its compact serialization, as received.
    pub fn token(&self) -> &str {
        &self.token.0
    }

    /// Every claim, as JSON, for callers who need more than the typed
    /// accessors (private claims, `iss`, `jti`...). Only the claims above
    /// were checked.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

impl fmt::Debug for JwtSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("audience", &self.audience)
            .field("expiry", &self.expiry)
            .field("issued_at", &self.issued_at)
            .field("not_before", &self.not_before)
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}
