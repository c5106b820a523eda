//! Saving a CA to a directory and opening it again.
//!
//! Layout: `ca.pem` (the CA's chain, its certificate first), `ca.key` (its
//! private key, mode 0600), `bundle.pem` (the trust anchors peers need),
//! `state.json` (trust domain, revocations, CRL and bundle sequence numbers),
//! `jwt.json` (the JWT-SVID signing key and the retired JWT keys still
//! published, mode 0600),
//! `.lock` (the directory's advisory lock, empty).
//!
//! # Concurrent use
//!
//! Several processes (or threads, each with its own handle) may use one CA
//! directory at once. Every write takes an exclusive advisory lock on
//! `DIR/.lock` ([`File::lock`](std::fs::File::lock)) for its whole
//! read-modify-write, and [`open`](CertificateAuthority::open) takes a
//! shared one, so no update is lost:
//!
//! - [`update`](CertificateAuthority::update) reads the CA afresh under the
//!   lock, runs the operation and saves the state before releasing it: the
//!   way to revoke, sign a CRL or issue from a directory shared with others.
//! - [`save_state`](CertificateAuthority::save_state) on a handle opened
//!   earlier re-reads the state under the lock and merges into it (every
//!   revocation of either, the larger sequence numbers), so a stale handle
//!   never overwrites newer state. If the stale handle signed a CRL while
//!   another one did too, it fails with [`CaError::StaleState`] instead of
//!   saving a CRL number that may be in use.
//!
//! The lock is advisory: it binds only code that takes it (this crate and
//! the `mtls-ca` tool), not other writers of the directory.

use std::fs::{File, OpenOptions};
use std::path::Path;

use mtls_core::TrustDomain;
use serde::{Deserialize, Serialize};

use crate::authority::{CertificateAuthority, LoadOptions};
use crate::error::CaError;
use crate::fs::{write_atomic, write_private};
use crate::jwt::store::{self as jwt_store, JWT_KEYS_FILE};
use crate::jwt::JwtSigningKey;
use crate::key::KeyType;
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
/// The advisory lock file of a CA directory (see the [`CertificateAuthority::update`] docs).
pub const LOCK_FILE: &str = ".lock";

/// Takes the exclusive lock of `dir` (held until the file is dropped).
fn lock_exclusive(dir: &Path) -> Result<File, CaError> {
    let err = |source| CaError::Lock {
        path: dir.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(err)?;
    file.lock().map_err(err)?;
    Ok(file)
}

/// Takes the shared lock of `dir`, for reading it. A directory the caller
/// may not write (so cannot create the lock file in) is read unlocked: no
/// one using this crate can be writing it either, and every file is
/// replaced atomically.
fn lock_shared(dir: &Path) -> Result<Option<File>, CaError> {
    let err = |source| CaError::Lock {
        path: dir.to_path_buf(),
        source,
    };
    let path = dir.join(LOCK_FILE);
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if is_read_only(&e) => match File::open(&path) {
            Ok(file) => file,
            Err(_) => return Ok(None),
        },
        Err(e) => return Err(err(e)),
    };
    file.lock_shared().map_err(err)?;
    Ok(Some(file))
}

fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

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
    /// the key with mode 0600. Holds the directory's exclusive lock
    /// throughout; saving the very CA already in `dir` keeps every update
    /// made there since (as [`save_state`](CertificateAuthority::save_state)
    /// does).
    pub fn save(&self, dir: &Path, overwrite: bool) -> Result<(), CaError> {
        std::fs::create_dir_all(dir).map_err(|source| CaError::Io {
            action: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let _lock = lock_exclusive(dir)?;
        if !overwrite && (dir.join(CA_CERT_FILE).exists() || dir.join(CA_KEY_FILE).exists()) {
            return Err(CaError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        let chain: String = self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        let same_ca = std::fs::read(dir.join(CA_CERT_FILE)).is_ok_and(|b| b == chain.as_bytes());
        let bundle: String = self.anchors.iter().map(|c| pem("CERTIFICATE", c)).collect();
        write_private(&dir.join(CA_KEY_FILE), self.private_key_pem().as_bytes())?;
        write_atomic(&dir.join(CA_CERT_FILE), chain.as_bytes())?;
        write_atomic(&dir.join(BUNDLE_FILE), bundle.as_bytes())?;
        // The JWT keys in the directory are newer than this copy's when
        // they were rotated since it was opened: keep them.
        let jwt = self.jwt().clone();
        if jwt.active.is_some() && !(same_ca && dir.join(JWT_KEYS_FILE).exists()) {
            jwt_store::write(dir, &jwt)?;
        }
        if same_ca {
            self.merge_state_locked(dir)
        } else {
            let state = self.state().clone();
            self.write_state_locked(dir, &state)
        }
    }

    /// Writes only `state.json` (after a revocation or a new CRL), under
    /// the directory's exclusive lock. The state in `dir` is re-read under
    /// the lock and this handle's changes merged into it, so state written
    /// since this handle was opened is kept; this handle then holds the
    /// merged state.
    ///
    /// Fails with [`CaError::StaleState`] (saving nothing) if this handle
    /// signed a [`crl`](CertificateAuthority::crl) while another handle
    /// signed one in `dir`: that CRL's number may be in use, so it must not
    /// be published. [`update`](CertificateAuthority::update) cannot fail so.
    pub fn save_state(&self, dir: &Path) -> Result<(), CaError> {
        let _lock = lock_exclusive(dir)?;
        self.merge_state_locked(dir)
    }

    /// Runs `operation` on the CA in `dir` as one atomic read-modify-write:
    /// takes the directory's exclusive lock, opens the CA afresh, runs
    /// `operation`, saves the state if it changed, then releases the lock.
    /// Other processes and threads doing the same wait for the lock, so
    /// none of their updates is lost (revocations, CRL numbers).
    ///
    /// ```
    /// use mtls_ca::{CaOptions, CertificateAuthority, DEFAULT_CRL_VALIDITY};
    /// use mtls_core::TrustDomain;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let td = TrustDomain::new("example.org")?;
    /// CertificateAuthority::self_signed_for_development(td, &CaOptions::default())?
    ///     .save(dir.path(), false)?;
    /// CertificateAuthority::update(dir.path(), |ca| ca.revoke_hex("4a01"))?;
    /// let crl = CertificateAuthority::update(dir.path(), |ca| ca.crl(DEFAULT_CRL_VALIDITY))?;
    /// assert_eq!(CertificateAuthority::open(dir.path())?.revoked(), ["4a01"]);
    /// # let _ = crl;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update<T>(
        dir: &Path,
        operation: impl FnOnce(&CertificateAuthority) -> Result<T, CaError>,
    ) -> Result<T, CaError> {
        let _lock = lock_exclusive(dir)?;
        let ca = Self::open_unlocked(dir)?;
        let before = ca.state().clone();
        let result = operation(&ca)?;
        let after = ca.state().clone();
        if after != before {
            ca.write_state_locked(dir, &after)?;
        }
        Ok(result)
    }

    /// Rotates the JWT signing key of the CA in `dir` (see
    /// [`rotate_jwt_key`](CertificateAuthority::rotate_jwt_key)) under the
    /// directory's exclusive lock, and saves the keys and the bundle's new
    /// sequence number. Also gives a JWT signing key to a CA directory
    /// written before JWT-SVIDs existed.
    pub fn rotate_jwt_key_in(dir: &Path, key_type: KeyType) -> Result<JwtSigningKey, CaError> {
        let _lock = lock_exclusive(dir)?;
        let ca = Self::open_unlocked(dir)?;
        let key = ca.rotate_jwt_key(key_type)?;
        jwt_store::write(dir, &ca.jwt())?;
        let state = ca.state().clone();
        ca.write_state_locked(dir, &state)?;
        Ok(key)
    }

    /// Merges this handle's state into the one in `dir` and writes it; the
    /// caller holds the exclusive lock.
    fn merge_state_locked(&self, dir: &Path) -> Result<(), CaError> {
        let merged = match read_state(dir)? {
            Some(file) if file.trust_domain == self.trust_domain => self
                .state()
                .merged_into(&file.state)
                .ok_or_else(|| CaError::StaleState {
                    path: dir.to_path_buf(),
                })?,
            _ => self.state().clone(),
        };
        self.write_state_locked(dir, &merged)?;
        let mut state = self.state();
        *state = merged;
        state.persisted_crl_number = state.crl_number;
        Ok(())
    }

    fn write_state_locked(&self, dir: &Path, state: &CaState) -> Result<(), CaError> {
        let file = StateFile {
            trust_domain: self.trust_domain.clone(),
            state: state.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| CaError::State {
            path: dir.join(STATE_FILE),
            reason: e.to_string(),
        })?;
        write_atomic(&dir.join(STATE_FILE), &json)?;
        self.state().persisted_crl_number = state.crl_number;
        Ok(())
    }

    /// Opens a CA saved with [`save`](CertificateAuthority::save), checking
    /// it as [`from_pem`](CertificateAuthority::from_pem) does. Reads under
    /// the directory's shared lock, so never half of a concurrent write. To
    /// change the CA in a directory others may use too, prefer
    /// [`update`](CertificateAuthority::update).
    pub fn open(dir: &Path) -> Result<Self, CaError> {
        let _lock = lock_shared(dir)?;
        Self::open_unlocked(dir)
    }

    fn open_unlocked(dir: &Path) -> Result<Self, CaError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| CaError::Io {
                action: "read",
                path,
                source,
            })
        };
        let state = read_state(dir)?;
        let options = LoadOptions {
            trust_domain: state.as_ref().map(|s| s.trust_domain.clone()),
            roots_pem: Some(read(BUNDLE_FILE)?),
        };
        let ca = Self::load_pem(&read(CA_CERT_FILE)?, &read(CA_KEY_FILE)?, &options)?;
        if let Some(keys) = jwt_store::read(dir)? {
            *ca.jwt() = keys;
        }
        if let Some(file) = state {
            let mut state = ca.state();
            *state = file.state;
            state.persisted_crl_number = state.crl_number;
        }
        Ok(ca)
    }
}

/// The state file in `dir`, if there is one.
fn read_state(dir: &Path) -> Result<Option<StateFile>, CaError> {
    let state_path = dir.join(STATE_FILE);
    match std::fs::read(&state_path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            CaError::State {
                path: state_path.clone(),
                reason: e.to_string(),
            }
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CaError::Io {
            action: "read",
            path: state_path,
            source,
        }),
    }
}
