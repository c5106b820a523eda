//! Key types the CA generates.

use std::fmt;
use std::str::FromStr;

use mtls_core::der::tlv;
use rcgen::{KeyPair, SignatureAlgorithm};
use zeroize::Zeroizing;

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

/// The PKCS#8 document of `key`, in the form every consumer reads.
///
/// aws-lc-rs and ring generate Ed25519 keys as PKCS#8 v2 (RFC 5958, with
/// the public key in `[1]`), which OpenSSL 3.0 refuses ("unsupported"), so
/// nginx, curl and `openssl` could not use our key files. Such a document
/// is rewritten as PKCS#8 v1 (RFC 8410 section 7), the form OpenSSL writes;
/// rcgen and rustls read it (`from_pkcs8_maybe_unchecked`). Other keys are
/// returned as they are.
pub(crate) fn pkcs8_der(key: &KeyPair) -> Zeroizing<Vec<u8>> {
    // SEQUENCE { INTEGER 1, SEQUENCE { OID 1.3.101.112 },
    //            OCTET STRING { OCTET STRING (32) }, [1] BIT STRING (32) }
    const V2_HEAD: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    const V1_HEAD: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let der = Zeroizing::new(key.serialize_der());
    if der.len() == 83 && der[..16] == V2_HEAD && der[48..51] == [0x81, 0x21, 0x00] {
        let mut v1 = Zeroizing::new(Vec::with_capacity(48));
        v1.extend_from_slice(&V1_HEAD);
        v1.extend_from_slice(&der[16..48]);
        return v1;
    }
    der
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

/// A SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) key wrapped as a
/// PKCS#8 PrivateKeyInfo (RFC 5208, RFC 5915 section 3); `None` for a key
/// that is PKCS#8 already.
pub(crate) fn wrap_pkcs8(
    key: &rustls_pki_types::PrivateKeyDer<'_>,
    alg: &'static SignatureAlgorithm,
) -> Option<Vec<u8>> {
    use rustls_pki_types::PrivateKeyDer;
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
    const RSA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let (algorithm, inner): (Vec<u8>, &[u8]) = match key {
        PrivateKeyDer::Sec1(k) => {
            let curve = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
                P256
            } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
                P384
            } else {
                P521
            };
            ([EC_PUBLIC_KEY, curve].concat(), k.secret_sec1_der())
        }
        PrivateKeyDer::Pkcs1(k) => (RSA.to_vec(), k.secret_pkcs1_der()),
        _ => return None,
    };
    let body = [
        &[0x02, 0x01, 0x00][..],
        &tlv(0x30, &algorithm),
        &tlv(0x04, inner),
    ]
    .concat();
    Some(tlv(0x30, &body))
}
