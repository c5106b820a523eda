//! rustls configs: SPIFFE-authenticated servers and clients.

mod client;
mod common;
mod customize;
mod intermediates;
mod peer;
mod rejection;
mod resolver;
mod server;
mod verifier;

pub use client::{ClientConfigBuilder, MtlsClientConfig};
pub use common::ConfigError;
pub use customize::{ClientTweaks, ServerTweaks};
pub use peer::PeerIdentityError;
pub use rejection::{Rejection, RejectionHook};
#[cfg(feature = "federation")]
pub(crate) use resolver::SvidResolver;
pub use server::{MtlsServerConfig, ServerConfigBuilder};
