#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod authorize;
mod bundle;
mod bundle_set;
mod crl;
#[cfg(feature = "spiffe-types")]
mod interop;
mod jwks;
pub mod metrics;
mod peer;
mod pem;
mod provider;
pub mod source;
mod spiffe_id;
mod svid;
mod time_fmt;
mod tls;
mod trust_domain;
mod verify;
mod x509;

pub use authorize::{Authorizer, AuthorizerExt, Denied};
pub use bundle::{BundleError, X509Bundle, MAX_BUNDLE_BYTES, MAX_CERTIFICATE_BYTES};
pub use bundle_set::BundleSet;
pub use crl::{CrlError, CrlExpiry, CrlSet, MAX_CRL_BYTES};
pub use peer::{PeerIdentity, PeerIdentityError};
pub use pem::encode as to_pem;
pub use provider::default_crypto_provider;
#[cfg(feature = "file-source")]
pub use source::file::{
    FilePaths, FileSource, FileSourceError, WatchOptions, MAX_SOURCE_FILE_BYTES,
};
#[cfg(feature = "spire")]
pub use source::spire::{
    SpireSource, SpireSourceBuilder, SpireSourceError, WithdrawalPolicy, DEFAULT_INITIAL_TIMEOUT,
    SPIFFE_ENDPOINT_SOCKET,
};
pub use source::{
    BundleSource, ComposeError, ComposedBundles, ComposedBundlesBuilder, CrlSource, Published,
    SharedBundles, SharedCrls, SharedSvid, SourceState, SourceStatus, SvidSource,
};
pub use spiffe_id::{SpiffeId, SpiffeIdError, MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN};
pub use svid::{SvidError, X509Svid};
pub use tls::{
    ClientConfigBuilder, ClientTweaks, ConfigError, MtlsClientConfig, MtlsServerConfig,
    RejectionHook, ServerConfigBuilder, ServerTweaks,
};
pub use trust_domain::TrustDomain;
pub use verify::{verify, PeerRole, VerifyError, MAX_CHAIN_LEN, MAX_PEER_CERTIFICATE_BYTES};
pub use x509::{check_svid_public_key, UnacceptableKey};

/// Re-exported so users name the same rustls the configs are built with.
pub use rustls;
