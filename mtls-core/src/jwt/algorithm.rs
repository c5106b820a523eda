//! The JWS algorithms a JWT-SVID may be signed with (JWT-SVID.md section
//! 2.1, RFC 7518 sections 3.3 to 3.5).

use std::fmt;
use std::str::FromStr;

use rustls_pki_types::{alg_id, AlgorithmIdentifier};

use crate::bundle::JwtKeyType;

/// A JWS `alg` a JWT-SVID may use (JWT-SVID.md section 2.1): RSASSA-PKCS1
/// v1.5, ECDSA or RSASSA-PSS with SHA-256, SHA-384 or SHA-512. Nothing else
/// parses: `none`, the HMAC algorithms and every other name are refused.
///
/// ```
/// use mtls_core::JwsAlgorithm;
///
/// let alg: JwsAlgorithm = "ES256".parse()?;
/// assert_eq!(alg, JwsAlgorithm::Es256);
/// assert_eq!(alg.as_str(), "ES256");
/// assert!("none".parse::<JwsAlgorithm>().is_err());
/// assert!("HS256".parse::<JwsAlgorithm>().is_err());
/// assert!("es256".parse::<JwsAlgorithm>().is_err(), "names are case-sensitive");
/// # Ok::<(), mtls_core::UnsupportedJwsAlgorithm>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// `RS256`: RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// `RS384`: RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// `RS512`: RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// `ES256`: ECDSA on P-256 with SHA-256.
    Es256,
    /// `ES384`: ECDSA on P-384 with SHA-384.
    Es384,
    /// `ES512`: ECDSA on P-521 with SHA-512.
    Es512,
    /// `PS256`: RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    Ps256,
    /// `PS384`: RSASSA-PSS with SHA-384 and MGF1 with SHA-384.
    Ps384,
    /// `PS512`: RSASSA-PSS with SHA-512 and MGF1 with SHA-512.
    Ps512,
}

impl JwsAlgorithm {
    /// Every algorithm, in the order of JWT-SVID.md section 2.1.
    pub const ALL: [Self; 9] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
    ];

    /// The JWS name (`"ES256"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
        }
    }

    /// Whether a key of type `key_type` signs with this algorithm: each EC
    /// curve with its one ECDSA algorithm, RSA with the RS and PS ones.
    pub fn fits(self, key_type: JwtKeyType) -> bool {
        match self {
            Self::Es256 => key_type == JwtKeyType::EcP256,
            Self::Es384 => key_type == JwtKeyType::EcP384,
            Self::Es512 => key_type == JwtKeyType::EcP521,
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                key_type == JwtKeyType::Rsa
            }
        }
    }

    /// For ECDSA, the length of each of `r` and `s` in a JWS signature
    /// (RFC 7518 section 3.4); `None` for RSA.
    pub(super) fn ecdsa_coordinate_len(self) -> Option<usize> {
        match self {
            Self::Es256 => Some(32),
            Self::Es384 => Some(48),
            Self::Es512 => Some(66),
            _ => None,
        }
    }

    /// The X.509 algorithm identifiers of the key and of the signature, as
    /// a rustls crypto provider's verification algorithms name them.
    pub(super) fn webpki_ids(self) -> (AlgorithmIdentifier, AlgorithmIdentifier) {
        match self {
            Self::Rs256 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA256),
            Self::Rs384 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA384),
            Self::Rs512 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA512),
            Self::Es256 => (alg_id::ECDSA_P256, alg_id::ECDSA_SHA256),
            Self::Es384 => (alg_id::ECDSA_P384, alg_id::ECDSA_SHA384),
            Self::Es512 => (alg_id::ECDSA_P521, alg_id::ECDSA_SHA512),
            Self::Ps256 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA256),
            Self::Ps384 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA384),
            Self::Ps512 => (alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA512),
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JwsAlgorithm {
    type Err = UnsupportedJwsAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| UnsupportedJwsAlgorithm {
                alg: crate::x509::escape_untrusted(s),
            })
    }
}

/// A JWS `alg` that is not a JWT-SVID algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("jwt-svid: \"alg\" {alg} is not a JWT-SVID algorithm (RS, ES or PS 256/384/512)")]
pub struct UnsupportedJwsAlgorithm {
    alg: String,
}

impl UnsupportedJwsAlgorithm {
    /// The name refused, escaped and truncated.
    pub fn alg(&self) -> &str {
        &self.alg
    }
}
