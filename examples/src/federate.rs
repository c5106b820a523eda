//! The `--federate` flag of the example servers: a partner trust domain
//! whose bundle is fetched from its SPIFFE bundle endpoint and followed as
//! it changes (`mtls_core::federation::FederatedBundleSource`), composed
//! with the bundles of the identity files.
//!
//! ```text
//! --federate TD=URL,https_spiffe,ENDPOINT_ID,BOOTSTRAP_FILE
//! --federate TD=URL,https_web[,CA_FILE]
//! ```
//!
//! `BOOTSTRAP_FILE` is a bundle (PEM or SPIFFE JSON) of the endpoint ID's
//! trust domain that authenticates the endpoint until the first fetch;
//! `CA_FILE` holds the web PKI roots of an `https_web` endpoint (default:
//! the system's). Neither the URL nor the files may contain a comma.
//!
//! ```
//! use examples::federate::parse_federate_arg;
//!
//! let partner = parse_federate_arg(
//!     "partner.org=https://bundle.partner.org:8443,https_spiffe,spiffe://partner.org/bundle-endpoint,partner.pem",
//! )?;
//! assert_eq!(partner.trust_domain.to_string(), "partner.org");
//! assert!(parse_federate_arg("partner.org=http://x,https_web").is_err());
//! assert!(parse_federate_arg("partner.org=https://x,https_spiffe").is_err());
//! # Ok::<(), String>(())
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mtls_core::federation::{
    EndpointConfig, EndpointProfile, EndpointUrl, FederatedBundleSource, WatchOptions,
};
use mtls_core::{BundleSource, ComposedBundles, SpiffeId, TrustDomain, X509Bundle};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::cli::read_file;
use crate::BoxError;

/// How a `--federate` endpoint is authenticated.
#[derive(Debug, Clone)]
pub enum FederateProfile {
    /// `https_spiffe`: the endpoint's SPIFFE ID and the bootstrap bundle
    /// file.
    HttpsSpiffe {
        /// The SPIFFE ID the endpoint must present.
        endpoint_id: SpiffeId,
        /// A bundle of the endpoint ID's trust domain (PEM or SPIFFE JSON).
        bootstrap: PathBuf,
    },
    /// `https_web`: web PKI roots (`None`: the system's).
    HttpsWeb {
        /// A PEM file of roots.
        ca: Option<PathBuf>,
    },
}

/// One `--federate` value.
#[derive(Debug, Clone)]
pub struct FederateArg {
    /// The partner trust domain.
    pub trust_domain: TrustDomain,
    /// Its bundle endpoint.
    pub url: EndpointUrl,
    /// How the endpoint is authenticated.
    pub profile: FederateProfile,
}

/// Parses `TD=URL,https_spiffe,ENDPOINT_ID,BOOTSTRAP_FILE` or
/// `TD=URL,https_web[,CA_FILE]`.
pub fn parse_federate_arg(s: &str) -> Result<FederateArg, String> {
    const FORMS: &str =
        "expected TD=URL,https_spiffe,ENDPOINT_ID,BOOTSTRAP_FILE or TD=URL,https_web[,CA_FILE]";
    let (td, rest) = s.split_once('=').ok_or_else(|| format!("{s:?}: {FORMS}"))?;
    let trust_domain = TrustDomain::from_id_or_name(td).map_err(|e| format!("{s:?}: {e}"))?;
    let parts: Vec<&str> = rest.split(',').collect();
    let (url, profile, extra) = match parts.as_slice() {
        [url, profile, extra @ ..] => (*url, *profile, extra),
        _ => return Err(format!("{s:?}: {FORMS}")),
    };
    let url = EndpointUrl::new(url).map_err(|e| format!("{s:?}: {e}"))?;
    let profile = match (profile, extra) {
        ("https_spiffe", [id, bootstrap]) if !bootstrap.is_empty() => {
            FederateProfile::HttpsSpiffe {
                endpoint_id: SpiffeId::new(id).map_err(|e| format!("{s:?}: {e}"))?,
                bootstrap: PathBuf::from(bootstrap),
            }
        }
        ("https_web", []) => FederateProfile::HttpsWeb { ca: None },
        ("https_web", [ca]) if !ca.is_empty() => FederateProfile::HttpsWeb {
            ca: Some(PathBuf::from(ca)),
        },
        ("https_spiffe" | "https_web", _) => return Err(format!("{s:?}: {FORMS}")),
        (other, _) => {
            return Err(format!(
                "{s:?}: unknown profile {other:?} (https_spiffe or https_web)"
            ))
        }
    };
    Ok(FederateArg {
        trust_domain,
        url,
        profile,
    })
}

/// Parses a duration: a number and a unit, `s`, `m` or `h` (`1s`, `5m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let unit = s.trim_start_matches(|c: char| c.is_ascii_digit());
    let number: u64 = s[..s.len() - unit.len()]
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit (s, m, h), such as 30s"))?;
    let seconds = match unit {
        "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        _ => return Err(format!("{s:?}: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

/// The federation flags of the example servers.
#[derive(Debug, Args)]
pub struct FederationArgs {
    /// A partner trust domain followed through its SPIFFE bundle endpoint:
    /// `TD=URL,https_spiffe,ENDPOINT_ID,BOOTSTRAP_FILE` or
    /// `TD=URL,https_web[,CA_FILE]` (repeatable; not with a --bundle for
    /// the same trust domain). Its members still need --allow or
    /// --allow-trust-domain.
    #[arg(long = "federate", value_name = "TD=URL,PROFILE,...", value_parser = parse_federate_arg)]
    pub federate: Vec<FederateArg>,
    /// The lowest interval at which a --federate endpoint is polled,
    /// whatever refresh hint it publishes (at least 1s; for tests and
    /// demos, the default suits production).
    #[arg(long = "federation-min-refresh", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub min_refresh: Duration,
}

impl FederationArgs {
    /// Whether any partner is given.
    pub fn is_empty(&self) -> bool {
        self.federate.is_empty()
    }

    /// The bundles of `files` (every trust domain they hold) with a
    /// [`FederatedBundleSource`] per `--federate` partner. Must be called
    /// inside a tokio runtime.
    pub fn compose(&self, files: Arc<dyn BundleSource>) -> Result<ComposedBundles, BoxError> {
        let current = files.current_bundles();
        let mut builder = ComposedBundles::builder();
        for arg in &self.federate {
            if current.contains(arg.trust_domain.name()) {
                return Err(format!(
                    "--federate {}: a --bundle is already given for this trust domain; give one or the other",
                    arg.trust_domain
                )
                .into());
            }
            let profile = match &arg.profile {
                FederateProfile::HttpsSpiffe {
                    endpoint_id,
                    bootstrap,
                } => {
                    let bytes = read_file("--federate", bootstrap)?;
                    let td = endpoint_id.trust_domain().clone();
                    let bundle = X509Bundle::from_pem_or_jwks(td.clone(), &bytes).map_err(|e| {
                        format!(
                            "--federate {}: {} is not a bundle (PEM or SPIFFE JSON) of {td}: {e}",
                            arg.trust_domain,
                            bootstrap.display()
                        )
                    })?;
                    EndpointProfile::https_spiffe(endpoint_id.clone(), bundle)
                }
                FederateProfile::HttpsWeb { ca: None } => EndpointProfile::https_web_system_roots(),
                FederateProfile::HttpsWeb { ca: Some(path) } => {
                    let bytes = read_file("--federate", path)?;
                    let roots = CertificateDer::pem_slice_iter(&bytes)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| {
                            format!("--federate {}: {}: {e}", arg.trust_domain, path.display())
                        })?;
                    if roots.is_empty() {
                        return Err(format!(
                            "--federate {}: no CERTIFICATE in {}",
                            arg.trust_domain,
                            path.display()
                        )
                        .into());
                    }
                    EndpointProfile::https_web(roots)
                }
            };
            let config = EndpointConfig::new(arg.url.clone(), arg.trust_domain.clone(), profile)
                .map_err(|e| format!("--federate {}: {e}", arg.trust_domain))?;
            let source = FederatedBundleSource::spawn(
                config,
                WatchOptions::default().min_refresh(self.min_refresh),
            )
            .map_err(|e| format!("--federate {}: {e}", arg.trust_domain))?;
            builder = builder.trust_domain(arg.trust_domain.clone(), source);
        }
        Ok(builder.all_trust_domains_of(files).build()?)
    }
}
