//! The client side: the server verified by its SPIFFE ID.

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::ClientConfig;

use super::common::{common_builder_methods, config_methods, Common, ConfigError};
use super::customize::{ClientCustomizer, ClientTweaks, Customizers};
use super::verifier::SvidVerifier;
use crate::source::SvidSource;
use crate::svid::X509Svid;
use crate::verify::PeerRole;

/// A rustls `ClientConfig` that presents an X.509-SVID and admits only
/// servers whose SVID verifies against the bundle of their own trust domain
/// and whom the authorizer allows (typically the exact SPIFFE ID expected).
///
/// The server name dialled is not checked against the certificate: a
/// SPIFFE server is identified by its SPIFFE ID, not by a DNS name. Any
/// `ServerName` may be passed to `connect` (it is sent as SNI).
///
/// ```no_run
/// # fn run(svid: mtls_core::X509Svid, bundles: mtls_core::BundleSet) -> Result<(), Box<dyn std::error::Error>> {
/// use mtls_core::{authorize, MtlsClientConfig, SpiffeId};
///
/// let client = MtlsClientConfig::builder(svid, bundles)
///     .authorizer(authorize::exact(SpiffeId::from_static("spiffe://example.org/backend")))
///     .build()?;
/// let connector = tokio_rustls::TlsConnector::from(client.rustls_config());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MtlsClientConfig {
    config: Arc<ClientConfig>,
    verifier: Arc<SvidVerifier>,
    svid: Arc<dyn SvidSource>,
}

impl MtlsClientConfig {
    config_methods! {
        /// Starts a builder presenting the SVIDs of `svid` and verifying servers
        /// against the bundles of `bundles`.
        builder() -> ClientConfigBuilder;

        /// The rustls config, for `tokio_rustls::TlsConnector`, hyper or reqwest
        /// (`use_preconfigured_tls`).
        rustls_config() -> ClientConfig;

        /// The authenticated server of a finished handshake made with this
        /// config; a resumed session is verified again (see
        /// [`MtlsServerConfig::peer_identity`](crate::MtlsServerConfig::peer_identity)).
        peer_identity();
    }

    /// The SVID this config presents now (what its SVID source returns), so
    /// that connection pools can tell connections made with an SVID that
    /// has since been replaced or has expired.
    pub fn current_svid(&self) -> Option<X509Svid> {
        self.svid.current_svid()
    }
}

impl std::fmt::Debug for MtlsClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsClientConfig")
            .field("config", &self.config)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

/// Builds an [`MtlsClientConfig`]; see [`MtlsClientConfig::builder`].
#[derive(Debug)]
pub struct ClientConfigBuilder {
    common: Common,
    customizers: Customizers<ClientCustomizer>,
}

impl ClientConfigBuilder {
    common_builder_methods! {
        /// Allows TLS session resumption (default: off). See
        /// [`ServerConfigBuilder::resumption`](crate::ServerConfigBuilder::resumption):
        /// read identities with [`MtlsClientConfig::peer_identity`] if it is on.
        resumption;

        /// Changes the rest of the rustls config: key log, session storage,
        /// certificate compression, ALPN, SNI, record size, ... through a
        /// [`ClientTweaks`], which offers no way to replace the server
        /// verifier, the client certificate resolver or the clock, so a
        /// customized config admits exactly the servers an uncustomized one
        /// does. Customizers run in the order given, at [`build`](Self::build),
        /// after the builder's own settings. A setting that resumes sessions
        /// needs [`resumption(true)`](Self::resumption), or `build` fails.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use mtls_core::rustls::{client::ClientSessionMemoryCache, KeyLogFile};
        /// use mtls_core::{authorize, BundleSet, MtlsClientConfig, SharedSvid, SpiffeId};
        ///
        /// let client = MtlsClientConfig::builder(SharedSvid::empty(), BundleSet::new())
        ///     .authorizer(authorize::exact(SpiffeId::from_static("spiffe://example.org/backend")))
        ///     .resumption(true)
        ///     .customize(|tweaks| {
        ///         // SSLKEYLOGFILE, for decrypting captures while debugging.
        ///         tweaks
        ///             .key_log(Arc::new(KeyLogFile::new()))
        ///             .session_storage(Arc::new(ClientSessionMemoryCache::new(64)))
        ///             .enable_sni(false);
        ///     })
        ///     .build()?;
        /// assert!(!client.rustls_config().enable_sni);
        /// # Ok::<(), mtls_core::ConfigError>(())
        /// ```
        customize(ClientTweaks);
    }

    /// Builds the config; fails if no authorizer was chosen.
    pub fn build(self) -> Result<MtlsClientConfig, ConfigError> {
        let svid = self.common.svid.clone();
        let (parts, alpn, resumption) = self.common.parts(PeerRole::Server)?;
        let mut config = ClientConfig::builder_with_provider(parts.provider.clone())
            .with_protocol_versions(parts.versions)?
            .dangerous()
            .with_custom_certificate_verifier(parts.verifier.clone())
            .with_client_cert_resolver(parts.resolver.clone());
        config.alpn_protocols = alpn;
        if !resumption {
            config.resumption = Resumption::disabled();
        }
        self.customizers.apply(&mut config, resumption)?;
        parts.check_fips(config.fips(), config.crypto_provider(), config.require_ems)?;
        Ok(MtlsClientConfig {
            config: Arc::new(config),
            verifier: parts.verifier,
            svid,
        })
    }
}
