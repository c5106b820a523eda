//! SPIFFE federation (feature `federation`): publishing a trust domain's
//! bundle at a bundle endpoint, and fetching and following a partner
//! trust domain's bundle from its endpoint (SPIFFE_Federation.md, with
//! SPIFFE_Trust_Domain_and_Bundle.md).
//!
//! - Server: [`BundleEndpoint`] renders the SPIFFE bundle of a trust
//!   domain from any [`BundleSource`](crate::BundleSource) and is a Tower
//!   service (mount it in axum with `route_service`); [`serve`] runs it
//!   over HTTPS with the `https_spiffe` or `https_web` [`ServerProfile`].
//! - Client: an [`EndpointConfig`] (URL, trust domain and
//!   [`EndpointProfile`], always explicit), [`fetch`] for one fetch, and
//!   [`FederatedBundleSource`], a bundle source that polls the endpoint
//!   and composes next to the local trust domain's source in
//!   [`ComposedBundles`](crate::ComposedBundles).
//!
//! Both ends on loopback, `https_spiffe`:
//!
//! ```
//! use mtls_core::federation::{fetch, serve, BundleEndpoint, EndpointConfig, EndpointProfile, ServerProfile};
//! use mtls_core::{BundleSet, SpiffeId, TrustDomain, X509Bundle, X509Svid};
//! # use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
//! # use mtls_core::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let ca_key = KeyPair::generate()?;
//! # let mut ca = CertificateParams::default();
//! # ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//! # ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
//! # let root = ca.self_signed(&ca_key)?.der().clone();
//! # let issuer = Issuer::new(ca, ca_key);
//! # let key = KeyPair::generate()?;
//! # let mut p = CertificateParams::default();
//! # p.distinguished_name = DistinguishedName::new();
//! # p.is_ca = IsCa::ExplicitNoCa;
//! # p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
//! # p.subject_alt_names = vec![SanType::URI("spiffe://partner.example/bundle-endpoint".try_into()?)];
//! # let cert = p.signed_by(&key, &issuer)?.der().clone();
//! # let endpoint_svid = X509Svid::new(vec![cert], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))?;
//! let td = TrustDomain::new("partner.example")?;
//! let bundle = X509Bundle::from_authorities(td.clone(), [root])?;
//!
//! // The partner publishes its bundle, presenting an SVID of its trust domain.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = serve(
//!     listener,
//!     BundleEndpoint::new(td.clone(), BundleSet::from(bundle.clone())),
//!     ServerProfile::https_spiffe(endpoint_svid),
//! )?;
//!
//! // We fetch it, authenticating the endpoint with a bootstrap bundle.
//! let config = EndpointConfig::new(
//!     format!("https://{}/bundle", server.local_addr()).parse()?,
//!     td.clone(),
//!     EndpointProfile::https_spiffe(SpiffeId::new("spiffe://partner.example/bundle-endpoint")?, bundle.clone()),
//! )?;
//! let fetched = fetch(&config).await?;
//! assert_eq!(fetched.x509().authorities(), bundle.authorities());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod endpoint;
mod error;
mod response;
mod server;
mod url;
mod watch;

pub use client::fetch;
pub use config::{EndpointConfig, EndpointProfile};
pub use endpoint::{BundleEndpoint, DEFAULT_REFRESH_HINT};
pub use error::FederationError;
pub use response::parse_bundle;
pub use server::{serve, serve_with, BundleServer, ServeOptions, ServerProfile};
pub use url::EndpointUrl;
pub use watch::{FederatedBundleSource, WatchOptions, DEFAULT_REFRESH, MAX_REFRESH, MIN_REFRESH};
