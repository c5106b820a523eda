//! rustls configs: SPIFFE-authenticated servers and clients.

mod client;
mod common;
mod customize;
mod resolver;
mod server;
mod verifier;

pub use client::{ClientConfigBuilder, MtlsClientConfig};
pub use customize::{ClientTweaks, ServerTweaks};
pub use server::{MtlsServerConfig, ServerConfigBuilder};

/// Why a config could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No authorizer was chosen.
    #[error("config: no authorizer chosen; say who may connect, e.g. .authorizer(authorize::member_of(trust_domain)) or, deliberately, authorize::any()")]
    MissingAuthorizer,
    /// rustls refused the settings (protocol versions not supported by the
    /// crypto provider, ...).
    #[error("config: rustls refused the settings: {0}")]
    Rustls(#[from] rustls::Error),
    /// A customizer made a setting that resumes sessions (`setting`) while
    /// resumption is off.
    #[error("config: the customizer set {setting}, which resumes sessions, but resumption is off; call .resumption(true) and read identities with peer_identity, which verifies resumed sessions again")]
    ResumptionOff {
        /// The setting made.
        setting: &'static str,
    },
}

/// A callback told of every peer the verifier rejects, with the reason
/// (for logs and metrics: the peer only sees a TLS alert).
pub type RejectionHook = std::sync::Arc<dyn Fn(&crate::VerifyError) + Send + Sync>;
