//! Loading an SVID or a bundle from files once, with the file's name in
//! every error (feature `file-source`). To follow the files as they rotate,
//! use a [`FileSource`](crate::FileSource).
//!
//! ```no_run
//! use mtls_core::{BundleSet, TrustDomain, X509Bundle, X509Svid};
//!
//! # fn main() -> Result<(), mtls_core::FileSourceError> {
//! // The layout `mtls-ca issue --out svid` and the CA directory write.
//! let svid = X509Svid::load("svid.pem", "svid.key")?;
//! let bundle = X509Bundle::load(TrustDomain::from_static("example.org"), "ca/bundle.pem")?;
//! // MtlsServerConfig::builder(svid, BundleSet::from(bundle))...
//! # let _ = (svid, BundleSet::from(bundle));
//! # Ok(()) }
//! ```

use std::path::Path;

use super::file::{read_file, FileSourceError};
use crate::bundle::X509Bundle;
use crate::id::TrustDomain;
use crate::svid::X509Svid;

impl X509Svid {
    /// Reads an SVID from a PEM chain file (leaf first) and a PEM private
    /// key file (PKCS#8, SEC1 or PKCS#1), as [`X509Svid::from_pem`] parses
    /// them. Errors name the file: unreadable, not a regular file, larger
    /// than [`MAX_SOURCE_FILE_BYTES`](crate::MAX_SOURCE_FILE_BYTES), or not
    /// an SVID.
    pub fn load(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, FileSourceError> {
        let (chain, key) = (chain.as_ref(), key.as_ref());
        let chain_pem = read_file(chain)?;
        let key_pem = read_file(key)?;
        X509Svid::from_pem(&chain_pem, &key_pem).map_err(|source| FileSourceError::Svid {
            chain: chain.to_path_buf(),
            source,
        })
    }
}

impl X509Bundle {
    /// Reads `trust_domain`'s bundle from a file, PEM certificates or the
    /// SPIFFE bundle format (JSON), told apart as
    /// [`X509Bundle::from_pem_or_jwks`] does. Errors name the file.
    pub fn load(
        trust_domain: TrustDomain,
        path: impl AsRef<Path>,
    ) -> Result<Self, FileSourceError> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        X509Bundle::from_pem_or_jwks(trust_domain, &bytes).map_err(|source| {
            FileSourceError::Bundle {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}
