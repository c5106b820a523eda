//! What a bundle endpoint client is configured with
//! (SPIFFE_Federation.md 5.1 and 5.2).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use super::{EndpointUrl, FederationError};
use crate::bundle::X509Bundle;
use crate::id::{SpiffeId, TrustDomain};
use crate::limits::{
    FEDERATION_CONNECT_TIMEOUT, FEDERATION_TOTAL_TIMEOUT, MAX_FEDERATION_REDIRECTS,
    MAX_FEDERATION_RESPONSE_BYTES,
};
use crate::source::BundleSource;

/// How the bundle endpoint is authenticated: always configured, never
/// inferred from the URL, and never a fallback from one to the other
/// (SPIFFE_Federation.md 7.2).
#[derive(Clone)]
#[non_exhaustive]
pub enum EndpointProfile {
    /// `https_spiffe` (5.2.2): the endpoint presents an X509-SVID for
    /// `endpoint_id`, verified against `bootstrap`, a bundle of the
    /// endpoint's trust domain.
    ///
    /// When the endpoint is **self-serving** (its SPIFFE ID is in the trust
    /// domain whose bundle it serves), `bootstrap` authenticates it until
    /// the first fetch succeeds; from then on a [`FederatedBundleSource`]
    /// authenticates it with the latest bundle it fetched, so the partner
    /// rotates its CA without breaking the relationship (5.2.2.4). (A
    /// single [`fetch`](super::fetch) uses `bootstrap`.) When it is not,
    /// `bootstrap` is a statically configured bundle of the endpoint's
    /// trust domain; for one that changes, use
    /// [`HttpsSpiffeVia`](Self::HttpsSpiffeVia).
    ///
    /// [`FederatedBundleSource`]: super::FederatedBundleSource
    HttpsSpiffe {
        /// The SPIFFE ID the endpoint must present.
        endpoint_id: SpiffeId,
        /// A bundle of `endpoint_id`'s trust domain.
        bootstrap: X509Bundle,
    },
    /// `https_spiffe` for an endpoint that is not self-serving: its
    /// X509-SVID for `endpoint_id` is verified against the bundle of its
    /// trust domain that `bundles` holds at each connection (another
    /// [`FederatedBundleSource`](super::FederatedBundleSource), SPIRE, a
    /// file...).
    HttpsSpiffeVia {
        /// The SPIFFE ID the endpoint must present.
        endpoint_id: SpiffeId,
        /// Where the bundle of `endpoint_id`'s trust domain comes from.
        bundles: Arc<dyn BundleSource>,
    },
    /// `https_web` (5.2.1): a web PKI certificate, validated per RFC 6125
    /// (chain to one of the roots, a DNS or IP SAN matching the URL's host)
    /// by rustls' `WebPkiServerVerifier`. `roots: None` takes the
    /// operating system's roots (through `rustls-native-certs`, read when
    /// the client is built).
    HttpsWeb {
        /// The trusted roots; `None`: the system's.
        roots: Option<Vec<CertificateDer<'static>>>,
    },
}

impl EndpointProfile {
    /// `https_spiffe` with a bootstrap bundle: see
    /// [`EndpointProfile::HttpsSpiffe`].
    pub fn https_spiffe(endpoint_id: SpiffeId, bootstrap: X509Bundle) -> Self {
        Self::HttpsSpiffe {
            endpoint_id,
            bootstrap,
        }
    }

    /// `https_web` trusting `roots` only.
    pub fn https_web(roots: Vec<CertificateDer<'static>>) -> Self {
        Self::HttpsWeb { roots: Some(roots) }
    }

    /// `https_web` trusting the operating system's roots.
    pub fn https_web_system_roots() -> Self {
        Self::HttpsWeb { roots: None }
    }

    /// The profile's name in the specification: `https_spiffe` or
    /// `https_web`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::HttpsSpiffe { .. } | Self::HttpsSpiffeVia { .. } => "https_spiffe",
            Self::HttpsWeb { .. } => "https_web",
        }
    }
}

impl fmt::Debug for EndpointProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HttpsSpiffe {
                endpoint_id,
                bootstrap,
            } => f
                .debug_struct("HttpsSpiffe")
                .field("endpoint_id", endpoint_id)
                .field("bootstrap", bootstrap)
                .finish(),
            Self::HttpsSpiffeVia { endpoint_id, .. } => f
                .debug_struct("HttpsSpiffeVia")
                .field("endpoint_id", endpoint_id)
                .finish_non_exhaustive(),
            Self::HttpsWeb { roots } => f
                .debug_struct("HttpsWeb")
                .field("roots", &roots.as_ref().map(Vec::len))
                .finish(),
        }
    }
}

/// A bundle endpoint to fetch: its URL, the trust domain whose bundle it
/// serves, and how it is authenticated (SPIFFE_Federation.md 5.1), with
/// the bounds of a fetch.
///
/// ```
/// use mtls_core::federation::{EndpointConfig, EndpointProfile};
/// use mtls_core::{SpiffeId, TrustDomain, X509Bundle};
///
/// let partner = TrustDomain::from_static("partner.example");
/// let config = EndpointConfig::new(
///     "https://bundle.partner.example/bundle.json".parse()?,
///     partner.clone(),
///     EndpointProfile::https_spiffe(
///         SpiffeId::from_static("spiffe://partner.example/bundle-endpoint"),
///         X509Bundle::new(partner), // the operator-supplied bootstrap bundle
///     ),
/// )?;
/// assert_eq!(config.profile().name(), "https_spiffe");
/// # Ok::<(), mtls_core::federation::FederationError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub(crate) url: EndpointUrl,
    pub(crate) trust_domain: TrustDomain,
    pub(crate) profile: EndpointProfile,
    pub(crate) connect_timeout: Duration,
    pub(crate) total_timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) max_redirects: usize,
}

impl EndpointConfig {
    /// The endpoint at `url` serving the bundle of `trust_domain`,
    /// authenticated per `profile`. An `https_spiffe` bootstrap bundle must
    /// be of the endpoint's trust domain.
    pub fn new(
        url: EndpointUrl,
        trust_domain: TrustDomain,
        profile: EndpointProfile,
    ) -> Result<Self, FederationError> {
        if let EndpointProfile::HttpsSpiffe {
            endpoint_id,
            bootstrap,
        } = &profile
        {
            if bootstrap.trust_domain() != endpoint_id.trust_domain() {
                return Err(FederationError::Config {
                    reason: format!(
                        "the bootstrap bundle is of {}, but the endpoint {endpoint_id} is in {}",
                        bootstrap.trust_domain(),
                        endpoint_id.trust_domain()
                    ),
                });
            }
        }
        Ok(Self {
            url,
            trust_domain,
            profile,
            connect_timeout: FEDERATION_CONNECT_TIMEOUT,
            total_timeout: FEDERATION_TOTAL_TIMEOUT,
            max_body: MAX_FEDERATION_RESPONSE_BYTES,
            max_redirects: MAX_FEDERATION_REDIRECTS,
        })
    }

    crate::__setters! {
        /// Bound on the TCP connection and TLS handshake of each hop (default
        /// [`FEDERATION_CONNECT_TIMEOUT`](crate::FEDERATION_CONNECT_TIMEOUT)).
        #[must_use]
        connect_timeout: Duration;

        /// Bound on a whole fetch, redirects and body included (default
        /// [`FEDERATION_TOTAL_TIMEOUT`](crate::FEDERATION_TOTAL_TIMEOUT)).
        #[must_use]
        total_timeout: Duration;
    }

    /// Bound on the response body, at most
    /// [`MAX_FEDERATION_RESPONSE_BYTES`](crate::MAX_FEDERATION_RESPONSE_BYTES)
    /// (the default): a larger value is lowered to it.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes.min(MAX_FEDERATION_RESPONSE_BYTES);
        self
    }

    /// How many temporary redirects a fetch follows, at most
    /// [`MAX_FEDERATION_REDIRECTS`](crate::MAX_FEDERATION_REDIRECTS) (the
    /// default); 0 follows none (SPIFFE_Federation.md 7.5.1 suggests it
    /// where the endpoint's hosting is known).
    #[must_use]
    pub fn max_redirects(mut self, redirects: usize) -> Self {
        self.max_redirects = redirects.min(MAX_FEDERATION_REDIRECTS);
        self
    }

    /// The endpoint URL.
    pub fn url(&self) -> &EndpointUrl {
        &self.url
    }

    /// The trust domain whose bundle the endpoint serves.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// How the endpoint is authenticated.
    pub fn profile(&self) -> &EndpointProfile {
        &self.profile
    }
}
