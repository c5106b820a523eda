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
    /// The CRL number as last read from or written to the CA directory:
    /// a `crl_number` beyond it was used by this copy only.
    #[serde(skip)]
    pub(crate) persisted_crl_number: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokedEntry {
    /// Lowercase hex of the serial's DER INTEGER content.
    pub(crate) serial: String,
    /// Seconds since the Unix epoch.
    pub(crate) revoked_at: i64,
}

impl CaState {
    /// Merges `self` (an in-memory copy) into `disk` (the state now in the
    /// directory): every revocation of either, the larger of each sequence
    /// number. `None` when this copy signed a CRL after another one did
    /// since this copy was read: its CRL number may be in use.
    pub(crate) fn merged_into(&self, disk: &CaState) -> Option<CaState> {
        let base = self.persisted_crl_number;
        if self.crl_number > base && disk.crl_number > base {
            return None;
        }
        let mut revoked = disk.revoked.clone();
        for entry in &self.revoked {
            if !revoked.iter().any(|r| r.serial == entry.serial) {
                revoked.push(entry.clone());
            }
        }
        let crl_number = self.crl_number.max(disk.crl_number);
        Some(CaState {
            crl_number,
            bundle_sequence: self.bundle_sequence.max(disk.bundle_sequence),
            revoked,
            persisted_crl_number: crl_number,
        })
    }
}

impl Default for CaState {
    fn default() -> Self {
        Self {
            crl_number: 0,
            bundle_sequence: 1,
            revoked: Vec::new(),
            persisted_crl_number: 0,
        }
    }
}
