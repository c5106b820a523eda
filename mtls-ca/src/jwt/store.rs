//! `jwt.json` in a CA directory: the active JWT signing key (private, so the
//! file is mode 0600) and the retired public keys still published.
//!
//! One file, replaced atomically, so the key and its `kid` never disagree.

use std::path::Path;
use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mtls_core::{JwtKey, JwtKeyType};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{JwtKeys, JwtSigningKey, RetiredJwtKey};
use crate::error::CaError;
use crate::time::from_unix;

/// The JWT signing keys in a CA directory.
pub const JWT_KEYS_FILE: &str = "jwt.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    active: Option<Active>,
    #[serde(default)]
    retired: Vec<Retired>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Active {
    kid: String,
    /// PKCS#8 PEM.
    private_key: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Retired {
    kid: String,
    alg: Option<String>,
    crv: String,
    x: String,
    y: String,
    /// When it leaves the bundle, seconds since the Unix epoch.
    until: i64,
}

fn state_err(dir: &Path, reason: impl ToString) -> CaError {
    CaError::State {
        path: dir.join(JWT_KEYS_FILE),
        reason: reason.to_string(),
    }
}

/// Reads `DIR/jwt.json`; `Ok(None)` when there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<JwtKeys>, CaError> {
    let path = dir.join(JWT_KEYS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CaError::Io {
                action: "read",
                path,
                source,
            })
        }
    };
    let file: File = serde_json::from_slice(&bytes).map_err(|e| state_err(dir, e))?;
    let active = match file.active {
        Some(a) => {
            Some(JwtSigningKey::from_pem(&a.kid, &a.private_key).map_err(|e| state_err(dir, e))?)
        }
        None => None,
    };
    let mut retired = Vec::with_capacity(file.retired.len());
    for r in file.retired {
        let curve = match r.crv.as_str() {
            "P-256" => JwtKeyType::EcP256,
            "P-384" => JwtKeyType::EcP384,
            "P-521" => JwtKeyType::EcP521,
            other => return Err(state_err(dir, format!("unknown curve {other:?}"))),
        };
        let key = JwtKey::ec(&r.kid, curve, &r.x, &r.y).map_err(|e| state_err(dir, e))?;
        let key = match &r.alg {
            Some(alg) => key.with_algorithm(alg).map_err(|e| state_err(dir, e))?,
            None => key,
        };
        retired.push(RetiredJwtKey {
            key,
            until: from_unix(r.until),
        });
    }
    Ok(Some(JwtKeys { active, retired }))
}

/// Writes `keys` to `DIR/jwt.json` (atomically, mode 0600); the caller
/// holds the directory's exclusive lock.
pub(crate) fn write(dir: &Path, keys: &JwtKeys) -> Result<(), CaError> {
    let retired = keys
        .retired
        .iter()
        .filter_map(|r| {
            let (x, y) = r.key.ec_coordinates()?;
            let crv = match r.key.key_type() {
                JwtKeyType::EcP256 => "P-256",
                JwtKeyType::EcP384 => "P-384",
                JwtKeyType::EcP521 => "P-521",
                _ => return None,
            };
            Some(Retired {
                kid: r.key.key_id().to_owned(),
                alg: r.key.algorithm().map(str::to_owned),
                crv: crv.to_owned(),
                x: URL_SAFE_NO_PAD.encode(x),
                y: URL_SAFE_NO_PAD.encode(y),
                until: unix(r.until),
            })
        })
        .collect();
    let file = File {
        active: keys.active.as_ref().map(|k| Active {
            kid: k.key_id().to_owned(),
            private_key: k.private_key_pem(),
        }),
        retired,
    };
    let json = Zeroizing::new(serde_json::to_vec_pretty(&file).map_err(|e| state_err(dir, e))?);
    crate::fs::write_private(&dir.join(JWT_KEYS_FILE), &json)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
