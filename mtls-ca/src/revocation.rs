//! Revocation by serial and signed CRLs.

use std::time::{Duration, SystemTime};

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use rustls_pki_types::CertificateRevocationListDer;

use crate::authority::{build_err, CertificateAuthority};
use crate::error::CaError;
use crate::serial::{canonical, decode_hex, from_hex, to_hex};
use crate::state::RevokedEntry;
use crate::time::{from_unix, to_offset};

/// How long a CRL is valid by default (its `nextUpdate`).
pub const DEFAULT_CRL_VALIDITY: Duration = Duration::from_secs(24 * 3600);

impl CertificateAuthority {
    /// Revokes the certificate with this serial (the DER INTEGER content,
    /// as in `X509Certificate::raw_serial`). Returns whether it was new.
    pub fn revoke(&self, serial: &[u8]) -> bool {
        let hex = to_hex(&canonical(serial.to_vec()));
        let mut state = self.state();
        if state.revoked.iter().any(|r| r.serial == hex) {
            return false;
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        state.revoked.push(RevokedEntry {
            serial: hex,
            revoked_at: now,
        });
        true
    }

    /// Revokes by a hex serial (`0x` prefix and `:` separators allowed).
    pub fn revoke_hex(&self, serial: &str) -> Result<bool, CaError> {
        Ok(self.revoke(&from_hex(serial)?))
    }

    /// The revoked serials, as lowercase hex.
    pub fn revoked(&self) -> Vec<String> {
        self.state()
            .revoked
            .iter()
            .map(|r| r.serial.clone())
            .collect()
    }

    /// A CRL signed by this CA listing every revoked serial, valid from now
    /// for `validity`. Each call uses the next CRL number.
    pub fn crl(
        &self,
        validity: Duration,
    ) -> Result<CertificateRevocationListDer<'static>, CaError> {
        let now = SystemTime::now();
        self.check_valid(now)?;
        let mut state = self.state();
        let revoked_certs = state
            .revoked
            .iter()
            .map(|r| {
                let serial = decode_hex(r.serial.as_bytes())
                    .ok_or_else(|| CaError::InvalidSerial(r.serial.clone()))?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial),
                    revocation_time: to_offset(from_unix(r.revoked_at)),
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let number = state.crl_number + 1;
        let params = CertificateRevocationListParams {
            this_update: to_offset(now - crate::authority::BACKDATE),
            next_update: to_offset(crate::authority::add_ttl(now, validity)?),
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(|e| build_err("CRL", e))?;
        state.crl_number = number;
        Ok(crl.der().clone())
    }
}
