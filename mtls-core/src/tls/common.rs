//! What the server and client builders share.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::SupportedProtocolVersion;

use super::rejection::RejectionHook;
use super::resolver::SvidResolver;
use super::verifier::SvidVerifier;
use crate::authorize::Authorizer;
use crate::source::{BundleSource, CrlSource, SvidSource};
use crate::verify::PeerRole;

/// Why a config could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No authorizer was chosen.
    #[error("config: no authorizer chosen; say who may connect, e.g. .authorizer(authorize::member_of(trust_domain)) or, deliberately, authorize::any()")]
    MissingAuthorizer,
    /// rustls refused the settings (protocol versions not supported by the
    /// crypto provider, ...).
    #[error("config: rustls refused the settings")]
    Rustls(#[from] rustls::Error),
    /// A customizer made a setting that resumes sessions (`setting`) while
    /// resumption is off.
    #[error("config: the customizer set {setting}, which resumes sessions, but resumption is off; call .resumption(true) and read identities with peer_identity, which verifies resumed sessions again")]
    ResumptionOff {
        /// The setting made.
        setting: &'static str,
    },
    /// [`require_fips`](crate::ServerConfigBuilder::require_fips) was set
    /// and the config is not FIPS-approved as a whole (rustls'
    /// `ServerConfig::fips()`/`ClientConfig::fips()` is false).
    #[error("config: FIPS required (.require_fips()) but {reason}")]
    NotFips {
        /// What is not approved.
        reason: String,
    },
}

/// Why `config` (whose provider is `provider`, requiring the extended
/// master secret or not) is not FIPS-approved; `None` when it is.
pub(crate) fn not_fips_reason(provider: &CryptoProvider, require_ems: bool) -> Option<String> {
    let mut reasons = Vec::new();
    if !provider.secure_random.fips() || !provider.key_provider.fips() {
        reasons.push("the crypto library is not aws-lc's FIPS module in FIPS mode (build with the `fips` feature of mtls-core, mtls-tower or mtls-ca)".to_owned());
    }
    let suites = unapproved(&provider.cipher_suites, |s| (s.fips(), s.suite()));
    let groups = unapproved(&provider.kx_groups, |g| (g.fips(), g.name()));
    for (what, names) in [("cipher suites", suites), ("key exchange groups", groups)] {
        if !names.is_empty() {
            reasons.push(format!("{what} not approved: {}", names.join(", ")));
        }
    }
    if !provider.signature_verification_algorithms.fips() {
        reasons.push("signature verification algorithms not all approved".to_owned());
    }
    if !require_ems {
        reasons.push("TLS 1.2 without the extended master secret is allowed".to_owned());
    }
    if reasons.is_empty() {
        None
    } else {
        Some(reasons.join("; "))
    }
}

/// The names of the `items` that `fips_and_name` says are not FIPS-approved.
fn unapproved<T, N: fmt::Debug>(
    items: &[T],
    fips_and_name: impl Fn(&T) -> (bool, N),
) -> Vec<String> {
    items
        .iter()
        .map(fips_and_name)
        .filter(|(fips, _)| !fips)
        .map(|(_, name)| format!("{name:?}"))
        .collect()
}

static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

pub(crate) struct Common {
    pub(crate) svid: Arc<dyn SvidSource>,
    pub(crate) bundles: Arc<dyn BundleSource>,
    pub(crate) crls: Option<Arc<dyn CrlSource>>,
    pub(crate) authorizer: Option<Arc<dyn Authorizer>>,
    pub(crate) provider: Option<Arc<CryptoProvider>>,
    pub(crate) alpn: Vec<Vec<u8>>,
    pub(crate) resumption: bool,
    pub(crate) tls13_only: bool,
    pub(crate) on_reject: Option<RejectionHook>,
    pub(crate) crl_expiry: crate::CrlExpiry,
    pub(crate) require_fips: bool,
}

pub(crate) struct Parts {
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) versions: &'static [&'static SupportedProtocolVersion],
    pub(crate) verifier: Arc<SvidVerifier>,
    pub(crate) resolver: Arc<SvidResolver>,
    pub(crate) require_fips: bool,
}

impl Parts {
    /// Refuses a built config that is not FIPS-approved (what rustls'
    /// `fips()` on it says) when FIPS was required.
    pub(crate) fn check_fips(
        &self,
        config_fips: bool,
        provider: &CryptoProvider,
        require_ems: bool,
    ) -> Result<(), ConfigError> {
        if !self.require_fips || config_fips {
            return Ok(());
        }
        let reason = not_fips_reason(provider, require_ems)
            .unwrap_or_else(|| "rustls does not judge it FIPS-approved".to_owned());
        Err(ConfigError::NotFips { reason })
    }
}

impl Common {
    pub(crate) fn new(svid: Arc<dyn SvidSource>, bundles: Arc<dyn BundleSource>) -> Self {
        Self {
            svid,
            bundles,
            crls: None,
            authorizer: None,
            provider: None,
            alpn: Vec::new(),
            resumption: false,
            tls13_only: false,
            on_reject: None,
            crl_expiry: crate::CrlExpiry::default(),
            require_fips: false,
        }
    }

    /// Warns, once at build, when the SVID the config will present (as
    /// `own_role`) is missing, expired, or does not verify against its own
    /// trust domain's bundle in the config: every peer of that trust
    /// domain would refuse it, and nothing else would say so. A warning,
    /// not a refusal: sources may start empty or be about to rotate, and
    /// tests and demos build impostors on purpose.
    fn check_own_svid(&self, own_role: PeerRole) {
        let Some(svid) = self.svid.current_svid() else {
            tracing::warn!(
                "mtls: the config's SVID source has no SVID yet; handshakes fail until it has one"
            );
            return;
        };
        let id = svid.spiffe_id();
        let now = std::time::SystemTime::now();
        if now > svid.not_after() {
            tracing::warn!(%id, not_after = %crate::time_fmt::Rfc3339(svid.not_after()), "mtls: the SVID this config presents has expired; every peer will refuse it");
            return;
        }
        let bundles = self.bundles.current_bundles();
        if !bundles.contains(id.trust_domain().name()) {
            tracing::warn!(%id, "mtls: the config holds no bundle of its own SVID's trust domain; peers of that trust domain cannot be verified");
            return;
        }
        let crls = self
            .crls
            .as_ref()
            .map(|c| c.current_crls())
            .unwrap_or_default();
        if let Err(e) = crate::verify(svid.chain(), &bundles, now, &crls, own_role) {
            tracing::warn!(%id, reason = %crate::ErrorChain(&e), "mtls: the SVID this config presents does not verify against its own trust domain's bundle; peers holding that bundle will refuse it");
        }
    }

    pub(crate) fn parts(
        self,
        peer_role: PeerRole,
    ) -> Result<(Parts, Vec<Vec<u8>>, bool), ConfigError> {
        let own_role = match peer_role {
            PeerRole::Client => PeerRole::Server,
            _ => PeerRole::Client,
        };
        if self.authorizer.is_none() {
            return Err(ConfigError::MissingAuthorizer);
        }
        self.check_own_svid(own_role);
        let authorizer = self.authorizer.ok_or(ConfigError::MissingAuthorizer)?;
        let provider = self
            .provider
            .unwrap_or_else(crate::provider::default_crypto_provider);
        let versions: &'static [&'static SupportedProtocolVersion] = if self.tls13_only {
            TLS13_ONLY
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let verifier = Arc::new(SvidVerifier::new(
            self.bundles,
            self.crls,
            authorizer,
            &provider,
            peer_role,
            self.on_reject,
            self.crl_expiry,
        ));
        let resolver = Arc::new(SvidResolver::new(self.svid, provider.clone()));
        Ok((
            Parts {
                provider,
                versions,
                verifier,
                resolver,
                require_fips: self.require_fips,
            },
            self.alpn,
            self.resumption,
        ))
    }
}

impl fmt::Debug for Common {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("has_authorizer", &self.authorizer.is_some())
            .field("has_crls", &self.crls.is_some())
            .field("alpn", &self.alpn)
            .field("resumption", &self.resumption)
            .field("tls13_only", &self.tls13_only)
            .field("crl_expiry", &self.crl_expiry)
            .field("require_fips", &self.require_fips)
            .finish_non_exhaustive()
    }
}

/// Builder methods shared by both builders, written once. The two whose
/// documentation differs per side (`resumption`, `customize`) take it from
/// the caller, with the side's tweaks type.
macro_rules! common_builder_methods {
    (
        $(#[$resumption_doc:meta])* resumption;
        $(#[$customize_doc:meta])* customize($tweaks:ident);
    ) => {
        $(#[$resumption_doc])*
        pub fn resumption(mut self, enabled: bool) -> Self {
            self.common.resumption = enabled;
            self
        }

        $(#[$customize_doc])*
        pub fn customize(
            mut self,
            customizer: impl FnOnce(&mut $tweaks<'_>) + Send + Sync + 'static,
        ) -> Self {
            self.customizers.push(Box::new(customizer));
            self
        }

        /// Who may connect: **required**. Applied after the chain and the
        /// SPIFFE checks pass; a denial aborts the handshake with the
        /// `access_denied` alert.
        pub fn authorizer(mut self, authorizer: impl $crate::Authorizer + 'static) -> Self {
            self.common.authorizer = Some(std::sync::Arc::new(authorizer));
            self
        }

        /// Revocation lists checked for every certificate of the peer's path.
        pub fn crls(mut self, crls: impl $crate::CrlSource + 'static) -> Self {
            self.common.crls = Some(std::sync::Arc::new(crls));
            self
        }

        /// What to do when a CRL is past its `nextUpdate` (default
        /// [`CrlExpiry::Apply`](crate::CrlExpiry::Apply): keep applying it,
        /// log and count it; [`CrlExpiry::Enforce`](crate::CrlExpiry::Enforce):
        /// refuse the peers of its issuer).
        pub fn crl_expiry(mut self, policy: $crate::CrlExpiry) -> Self {
            self.common.crl_expiry = policy;
            self
        }

        /// The crypto provider (default: [`default_crypto_provider`](crate::default_crypto_provider)).
        pub fn crypto_provider(
            mut self,
            provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
        ) -> Self {
            self.common.provider = Some(provider);
            self
        }

        /// ALPN protocols, most preferred first (`b"h2"`, `b"http/1.1"`).
        pub fn alpn_protocols(mut self, protocols: Vec<Vec<u8>>) -> Self {
            self.common.alpn = protocols;
            self
        }

        /// Refuses to [`build`](Self::build) a config that is not
        /// FIPS-approved as a whole (rustls' `fips()` on the config: crypto
        /// from aws-lc's FIPS module in FIPS mode, approved cipher suites,
        /// key exchange groups and signature algorithms only, extended
        /// master secret required for TLS 1.2), with
        /// [`ConfigError::NotFips`](crate::ConfigError::NotFips) naming what
        /// is not. Needs the `fips` feature; see docs/fips.md.
        ///
        /// ```
        /// use mtls_core::{authorize, BundleSet, ConfigError, MtlsServerConfig, SharedSvid};
        ///
        /// let built = MtlsServerConfig::builder(SharedSvid::empty(), BundleSet::new())
        ///     .authorizer(authorize::any())
        ///     .require_fips()
        ///     .build();
        /// if cfg!(feature = "fips") {
        ///     assert!(built?.rustls_config().fips());
        /// } else {
        ///     assert!(matches!(built, Err(ConfigError::NotFips { .. })));
        /// }
        /// # Ok::<(), ConfigError>(())
        /// ```
        pub fn require_fips(mut self) -> Self {
            self.common.require_fips = true;
            self
        }

        /// Accept TLS 1.3 only (default: TLS 1.3 and 1.2).
        pub fn tls13_only(mut self) -> Self {
            self.common.tls13_only = true;
            self
        }

        /// Called with the full reason whenever the verifier rejects a peer
        /// ([`Rejection::Verify`](crate::Rejection::Verify): its chain;
        /// [`Rejection::Denied`](crate::Rejection::Denied): the authorizer)
        /// — the peer itself only sees a TLS alert — including when a
        /// resumed session fails re-verification in `peer_identity`. A
        /// client presenting no certificate at all is refused by rustls
        /// before the verifier runs and is not reported here.
        pub fn on_rejection(
            mut self,
            hook: impl Fn(&$crate::Rejection) + Send + Sync + 'static,
        ) -> Self {
            self.common.on_reject = Some(std::sync::Arc::new(hook));
            self
        }
    };
}

pub(crate) use common_builder_methods;

/// The methods both configs offer, written once: starting a builder, the
/// rustls config, and the peer of a finished handshake. Their documentation
/// differs per side and comes from the caller, with the side's types.
macro_rules! config_methods {
    (
        $(#[$builder_doc:meta])* builder() -> $builder:ident;
        $(#[$rustls_doc:meta])* rustls_config() -> $config:ty;
        $(#[$peer_doc:meta])* peer_identity();
    ) => {
        $(#[$builder_doc])*
        pub fn builder(
            svid: impl $crate::SvidSource + 'static,
            bundles: impl $crate::BundleSource + 'static,
        ) -> $builder {
            $builder {
                common: Common::new(Arc::new(svid), Arc::new(bundles)),
                customizers: Customizers::new(),
            }
        }

        $(#[$rustls_doc])*
        pub fn rustls_config(&self) -> Arc<$config> {
            self.config.clone()
        }

        $(#[$peer_doc])*
        pub fn peer_identity(
            &self,
            conn: &rustls::CommonState,
        ) -> Result<$crate::PeerIdentity, $crate::PeerIdentityError> {
            super::peer::reverify_if_resumed(&self.verifier, conn)
        }
    };
}

pub(crate) use config_methods;
