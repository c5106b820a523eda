//! The server side: client certificates required and SPIFFE-verified.

use std::sync::Arc;

use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::ServerConfig;

use super::common::{common_builder_methods, config_methods, Common, ConfigError};
use super::customize::{Customizers, ServerCustomizer, ServerTweaks};
use super::verifier::SvidVerifier;
use crate::verify::PeerRole;

/// A rustls `ServerConfig` that requires a client certificate and admits
/// only peers whose X.509-SVID verifies against the bundle of their own
/// trust domain and whom the authorizer allows.
///
/// The SVID presented and the bundles and CRLs used are read from their
/// sources at every handshake, so rotation needs no new config.
///
/// ```no_run
/// # fn run(svid: mtls_core::X509Svid, bundles: mtls_core::BundleSet) -> Result<(), Box<dyn std::error::Error>> {
/// use mtls_core::{authorize, MtlsServerConfig, TrustDomain};
///
/// let server = MtlsServerConfig::builder(svid, bundles)
///     .authorizer(authorize::member_of(TrustDomain::from_static("example.org")))
///     .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
///     .build()?;
/// let acceptor = tokio_rustls::TlsAcceptor::from(server.rustls_config());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MtlsServerConfig {
    config: Arc<ServerConfig>,
    verifier: Arc<SvidVerifier>,
}

impl MtlsServerConfig {
    config_methods! {
        /// Starts a builder presenting the SVIDs of `svid` and verifying clients
        /// against the bundles of `bundles`.
        builder() -> ServerConfigBuilder;

        /// The rustls config, for `tokio_rustls::TlsAcceptor` and the like.
        rustls_config() -> ServerConfig;

        /// The authenticated client of a finished handshake made with this
        /// config. A resumed session is verified again against the current
        /// bundles, CRLs and authorizer, because rustls restores a resumed
        /// peer's chain without calling the verifier: a resumed handshake never
        /// admits a peer a full handshake would reject.
        peer_identity();
    }
}

/// Builds an [`MtlsServerConfig`]; see [`MtlsServerConfig::builder`].
#[derive(Debug)]
pub struct ServerConfigBuilder {
    common: Common,
    customizers: Customizers<ServerCustomizer>,
}

impl ServerConfigBuilder {
    common_builder_methods! {
        /// Allows TLS session resumption (default: off). With it, the server
        /// keeps up to 1024 sessions in memory and sends one TLS 1.3 ticket
        /// per handshake (change either with [`customize`](Self::customize)).
        ///
        /// On resumption rustls restores the client's chain from the session and
        /// does not run the verifier, so a client revoked or whose CA was removed
        /// since could be admitted by code that trusts the connection blindly.
        /// Turn this on only if every connection's identity is read with
        /// [`MtlsServerConfig::peer_identity`] (mtls-tower's listener does),
        /// which verifies resumed sessions again.
        resumption;

        /// Changes the rest of the rustls config: key log, session storage and
        /// tickets, certificate compression, ALPN, record size, ... through a
        /// [`ServerTweaks`], which offers no way to replace the client
        /// verifier, the certificate resolver or the clock, so a customized
        /// config admits exactly the clients an uncustomized one does.
        /// Customizers run in the order given, at [`build`](Self::build), after
        /// the builder's own settings. A setting that resumes sessions
        /// (session storage, ticketer, TLS 1.3 tickets) needs
        /// [`resumption(true)`](Self::resumption), or `build` fails.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use mtls_core::rustls::{server::ServerSessionMemoryCache, KeyLogFile};
        /// use mtls_core::{authorize, BundleSet, MtlsServerConfig, SharedSvid, TrustDomain};
        ///
        /// let server = MtlsServerConfig::builder(SharedSvid::empty(), BundleSet::new())
        ///     .authorizer(authorize::member_of(TrustDomain::from_static("example.org")))
        ///     .resumption(true)
        ///     .customize(|tweaks| {
        ///         // SSLKEYLOGFILE, for decrypting captures while debugging.
        ///         tweaks
        ///             .key_log(Arc::new(KeyLogFile::new()))
        ///             .session_storage(ServerSessionMemoryCache::new(4096))
        ///             .max_fragment_size(Some(4096));
        ///     })
        ///     .build()?;
        /// assert_eq!(server.rustls_config().max_fragment_size, Some(4096));
        ///
        /// // Resuming sessions is a choice made on the builder, not in a customizer.
        /// let refused = MtlsServerConfig::builder(SharedSvid::empty(), BundleSet::new())
        ///     .authorizer(authorize::any())
        ///     .customize(|tweaks| {
        ///         tweaks.session_storage(ServerSessionMemoryCache::new(4096));
        ///     })
        ///     .build();
        /// assert!(refused.is_err());
        /// # Ok::<(), mtls_core::ConfigError>(())
        /// ```
        customize(ServerTweaks);
    }

    /// Builds the config; fails if no authorizer was chosen.
    pub fn build(self) -> Result<MtlsServerConfig, ConfigError> {
        let (parts, alpn, resumption) = self.common.parts(PeerRole::Client)?;
        let mut config = ServerConfig::builder_with_provider(parts.provider.clone())
            .with_protocol_versions(parts.versions)?
            .with_client_cert_verifier(parts.verifier.clone())
            .with_cert_resolver(parts.resolver.clone());
        config.alpn_protocols = alpn;
        if resumption {
            config.session_storage = ServerSessionMemoryCache::new(1024);
            // One TLS 1.3 ticket per handshake, as Go's crypto/tls (so
            // go-spiffe and SPIRE) sends, where rustls and OpenSSL send two:
            // a resumption uses its ticket up and gets a fresh one, so a
            // client that replaces its connections always has one, and each
            // handshake does half the ticket work (and fills half the
            // session cache) on both sides.
            config.send_tls13_tickets = 1;
        } else {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        self.customizers.apply(&mut config, resumption)?;
        parts.check_fips(config.fips(), config.crypto_provider(), config.require_ems)?;
        Ok(MtlsServerConfig {
            config: Arc::new(config),
            verifier: parts.verifier,
        })
    }
}
