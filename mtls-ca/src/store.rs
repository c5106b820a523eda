//! Saving a CA to a directory and opening it again.
//!
//! Layout: `ca.pem` (the CA's chain, its certificate first), `ca.key` (its
//! private key, mode 0600), `bundle.pem` (the trust anchors peers need),
//! `state.json` (trust domain, revocations, CRL and bundle sequence numbers).

use std::path::Path;

use mtls_core::TrustDomain;
use serde::{Deserialize, Serialize};

use crate::authority::{CertificateAuthority, LoadOptions};
use crate::error::CaError;
use crate::fs::{write_atomic, write_private};
use crate::state::CaState;
use mtls_core::to_pem as pem;

/// The CA's certificate chain in a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's private key in a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// The trust bundle in a CA directory.
pub const BUNDLE_FILE: &str = "bundle.pem";
/// The CA's state in a CA directory.
pub const STATE_FILE: &str = "state.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    trust_domain: TrustDomain,
    #[serde(flatten)]
    state: CaState,
}

impl CertificateAuthority {
    /// Writes the CA into `dir` (created if missing). Refuses to replace an
    /// existing CA unless `overwrite`. Every file is written atomically;
    /// the key with mode 0600.
    pub fn save(&self, dir: &Path, overwrite: bool) -> Result<(), CaError> {
        std::fs::create_dir_all(dir).map_err(|source| CaError::Io {
            action: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        if !overwrite && (dir.join(CA_CERT_FILE).exists() || dir.join(CA_KEY_FILE).exists()) {
            return Err(CaError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        let chain: String = self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        let bundle: String = self.anchors.iter().map(|c| pem("CERTIFICATE", c)).collect();
        write_private(&dir.join(CA_KEY_FILE), self.private_key_pem().as_bytes())?;
        write_atomic(&dir.join(CA_CERT_FILE), chain.as_bytes())?;
        write_atomic(&dir.join(BUNDLE_FILE), bundle.as_bytes())?;
        self.save_state(dir)
    }

    /// Writes only `state.json` (after a revocation or a new CRL).
    pub fn save_state(&self, dir: &Path) -> Result<(), CaError> {
        let file = StateFile {
            trust_domain: self.trust_domain.clone(),
            state: self.state().clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| CaError::State {
            path: dir.join(STATE_FILE),
            reason: e.to_string(),
        })?;
        write_atomic(&dir.join(STATE_FILE), &json)
    }

    /// Opens a CA saved with [`save`](CertificateAuthority::save), checking
    /// it as [`from_pem`](CertificateAuthority::from_pem) does.
    pub fn open(dir: &Path) -> Result<Self, CaError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| CaError::Io {
                action: "read",
                path,
                source,
            })
        };
        let state_path = dir.join(STATE_FILE);
        let state: Option<StateFile> = match std::fs::read(&state_path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| CaError::State {
                path: state_path.clone(),
                reason: e.to_string(),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(CaError::Io {
                    action: "read",
                    path: state_path,
                    source,
                })
            }
        };
        let options = LoadOptions {
            trust_domain: state.as_ref().map(|s| s.trust_domain.clone()),
            roots_pem: Some(read(BUNDLE_FILE)?),
        };
        let ca = Self::from_pem(&read(CA_CERT_FILE)?, &read(CA_KEY_FILE)?, &options)?;
        if let Some(file) = state {
            *ca.state() = file.state;
        }
        Ok(ca)
    }
}
