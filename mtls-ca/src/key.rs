//! Key types the CA generates.

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, SignatureAlgorithm};

use crate::error::CaError;

/// The key algorithm of a generated key pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256 (the default).
    #[default]
    P256,
    /// ECDSA on P-384 with SHA-384.
    P384,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            Self::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    pub(crate) fn generate(self) -> Result<KeyPair, CaError> {
        KeyPair::generate_for(self.algorithm()).map_err(|e| CaError::KeyGeneration {
            key_type: self,
            reason: e.to_string(),
        })
    }

    /// The name used on the command line: `p256`, `p384` or `ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "p256",
            Self::P384 => "p384",
            Self::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = CaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "p256" | "P256" | "P-256" => Ok(Self::P256),
            "p384" | "P384" | "P-384" => Ok(Self::P384),
            "ed25519" | "Ed25519" => Ok(Self::Ed25519),
            other => Err(CaError::UnknownKeyType(other.to_owned())),
        }
    }
}
