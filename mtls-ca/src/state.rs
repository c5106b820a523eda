//! The CA's mutable state: revocations, CRL and bundle sequence numbers.

use serde::{Deserialize, Serialize};

/// Persisted beside the CA (`state.json`) by [`save`](crate::CertificateAuthority::save).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaState {
    /// The last CRL number used (0: no CRL yet).
    pub(crate) crl_number: u64,
    /// The bundle's `spiffe_sequence`.
    pub(crate) bundle_sequence: u64,
    /// Revoked serials.
    pub(crate) revoked: Vec<RevokedEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokedEntry {
    /// Lowercase hex of the serial's DER INTEGER content.
    pub(crate) serial: String,
    /// Seconds since the Unix epoch.
    pub(crate) revoked_at: i64,
}

impl Default for CaState {
    fn default() -> Self {
        Self {
            crl_number: 0,
            bundle_sequence: 1,
            revoked: Vec::new(),
        }
    }
}
