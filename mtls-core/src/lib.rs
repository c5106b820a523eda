#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Modules in dependency order: each uses only those above it.
pub mod authorize;
mod bundle;
mod crl;
#[doc(hidden)]
pub mod der;
mod error_chain;
#[cfg(feature = "federation")]
pub mod federation;
mod id;
mod jwt;
mod limits;
pub mod metrics;
mod peer;
mod pem;
mod provider;
mod setters;
pub mod source;
mod svid;
mod time_fmt;
mod tls;
mod verify;
mod x509;

pub use authorize::{Authorizer, AuthorizerExt, Denied};
pub use bundle::{
    BundleError, BundleSet, JwtKey, JwtKeyError, JwtKeyType, SpiffeBundle, X509Bundle,
};
pub use crl::{CrlError, CrlExpiry, CrlSet};
pub use error_chain::ErrorChain;
pub use id::{SpiffeId, SpiffeIdError, TrustDomain};
pub use jwt::{
    JwsAlgorithm, JwsPart, JwtBundle, JwtBundleSet, JwtSvid, JwtSvidError, JwtSvidValidator,
    JwtToken, UnsupportedJwsAlgorithm,
};
#[cfg(feature = "file-source")]
pub use limits::MAX_SOURCE_FILE_BYTES;
#[cfg(feature = "federation")]
pub use limits::{
    FEDERATION_CONNECTION_TIMEOUT, FEDERATION_CONNECT_TIMEOUT, FEDERATION_HANDSHAKE_TIMEOUT,
    FEDERATION_MAX_CONNECTIONS, FEDERATION_TOTAL_TIMEOUT, MAX_FEDERATION_REDIRECTS,
    MAX_FEDERATION_RESPONSE_BYTES,
};
pub use limits::{
    MAX_BUNDLE_BYTES, MAX_CERTIFICATE_BYTES, MAX_CHAIN_LEN, MAX_CRL_BYTES, MAX_JWT_CLAIMS_BYTES,
    MAX_JWT_HEADER_BYTES, MAX_JWT_SVID_BYTES, MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN,
};
pub use peer::PeerIdentity;
pub use pem::encode as to_pem;
pub use provider::{default_crypto_provider, fips_mode};
#[cfg(feature = "file-source")]
pub use source::file::{FilePaths, FileSource, FileSourceError, WatchOptions};
#[cfg(feature = "spire")]
pub use source::spire::{
    SpireSource, SpireSourceBuilder, SpireSourceError, WithdrawalPolicy, DEFAULT_INITIAL_TIMEOUT,
    SPIFFE_ENDPOINT_SOCKET,
};
pub use source::{
    BundleSource, ComposeError, ComposedBundles, ComposedBundlesBuilder, CrlSource,
    JwtBundleSource, Published, SharedBundles, SharedCrls, SharedJwtBundles, SharedSvid,
    SourceState, SourceStatus, SvidSource,
};
pub use source::{
    CachedJwtSvids, JwtSourceError, JwtSvidFuture, JwtSvidSource, DEFAULT_MAX_AUDIENCE_SETS,
    DEFAULT_REFRESH_REMAINING,
};
pub use source::{
    IssueError, KeyAlgorithm, RenewingSvid, SvidIssuer, SvidSpec, MAX_RETRY_DELAY, RENEW_AT,
    RENEW_JITTER,
};
pub use svid::{SvidError, X509Svid};
pub use tls::{
    ClientConfigBuilder, ClientTweaks, ConfigError, MtlsClientConfig, MtlsServerConfig,
    PeerIdentityError, Rejection, RejectionHook, ServerConfigBuilder, ServerTweaks,
};
pub use verify::{verify, PeerRole, VerifyError};
pub use x509::{check_svid_leaf, check_svid_public_key, escape_untrusted, UnacceptableKey};

/// Re-exported so users name the same rustls the configs are built with.
pub use rustls;
