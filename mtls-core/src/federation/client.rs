//! Fetching a bundle from a bundle endpoint (SPIFFE_Federation.md 5.2.1.4
//! and 5.2.2.4).

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{parse_bundle, EndpointConfig, EndpointProfile, EndpointUrl, FederationError};
use crate::authorize;
use crate::bundle::{BundleSet, SpiffeBundle};
use crate::id::TrustDomain;
use crate::source::{AbortOnDrop, BundleSource, SharedSvid};
use crate::tls::{MtlsClientConfig, Rejection};
use crate::x509::escape_untrusted;

/// Fetches the bundle of `config`'s trust domain from its endpoint, once:
/// connects (https only, with the profile's TLS rules, within the connect
/// timeout), sends `GET`, follows temporary redirects (302, 303, 307) to
/// valid bundle endpoint URLs with the same TLS rules, refuses permanent
/// ones (301, 308) and any other non-2xx status, reads at most the body
/// bound, and reads the body with [`parse_bundle`]. An `https_spiffe`
/// endpoint is authenticated with the profile's bootstrap bundle (a
/// [`FederatedBundleSource`](super::FederatedBundleSource) uses the latest
/// fetched one once it has one).
///
/// ```no_run
/// use mtls_core::federation::{fetch, EndpointConfig, EndpointProfile};
/// use mtls_core::TrustDomain;
///
/// # async fn run() -> Result<(), mtls_core::federation::FederationError> {
/// let config = EndpointConfig::new(
///     "https://bundles.partner.example/td".parse()?,
///     TrustDomain::from_static("partner.example"),
///     EndpointProfile::https_web_system_roots(),
/// )?;
/// let bundle = fetch(&config).await?;
/// println!("{} authorities, sequence {:?}", bundle.x509().len(), bundle.sequence());
/// # Ok(()) }
/// ```
pub async fn fetch(config: &EndpointConfig) -> Result<SpiffeBundle, FederationError> {
    Fetcher::new(config, None)?.fetch().await
}

/// A configured client of one endpoint: its TLS config, built once.
pub(crate) struct Fetcher {
    config: EndpointConfig,
    tls: TlsConnector,
    /// Why the verifier last refused the endpoint (`https_spiffe`).
    rejection: Arc<Mutex<Option<Rejection>>>,
}

/// The bundles an `https_spiffe` self-serving endpoint is verified
/// against: the latest fetched bundle once there is one, else the
/// bootstrap bundle.
struct SelfServing {
    trust_domain: TrustDomain,
    bootstrap: BundleSet,
    latest: Arc<dyn BundleSource>,
}

impl BundleSource for SelfServing {
    fn current_bundles(&self) -> BundleSet {
        let latest = self.latest.current_bundles();
        if latest.contains(self.trust_domain.name()) {
            latest
        } else {
            self.bootstrap.clone()
        }
    }

    fn generation(&self) -> Option<u64> {
        self.latest.generation()
    }
}

enum Outcome {
    Body(Bytes),
    Redirect(EndpointUrl),
}

impl Fetcher {
    /// A fetcher of `config`; `latest` (for a watcher) is the source of the
    /// latest fetched bundle, which authenticates a self-serving
    /// `https_spiffe` endpoint once it holds one.
    pub(crate) fn new(
        config: &EndpointConfig,
        latest: Option<Arc<dyn BundleSource>>,
    ) -> Result<Self, FederationError> {
        let rejection = Arc::new(Mutex::new(None));
        let tls = match &config.profile {
            EndpointProfile::HttpsSpiffe {
                endpoint_id,
                bootstrap,
            } => {
                let bootstrap = BundleSet::from(bootstrap.clone());
                let self_serving = endpoint_id.trust_domain() == &config.trust_domain;
                let bundles: Arc<dyn BundleSource> = match latest {
                    Some(latest) if self_serving => Arc::new(SelfServing {
                        trust_domain: config.trust_domain.clone(),
                        bootstrap,
                        latest,
                    }),
                    _ => Arc::new(bootstrap),
                };
                spiffe_client(endpoint_id, bundles, &rejection)?
            }
            EndpointProfile::HttpsSpiffeVia {
                endpoint_id,
                bundles,
            } => spiffe_client(endpoint_id, bundles.clone(), &rejection)?,
            EndpointProfile::HttpsWeb { roots } => web_client(roots.as_deref())?,
        };
        Ok(Self {
            config: config.clone(),
            tls: TlsConnector::from(tls),
            rejection,
        })
    }

    pub(crate) fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// One fetch, within the total timeout.
    pub(crate) async fn fetch(&self) -> Result<SpiffeBundle, FederationError> {
        let url = &self.config.url;
        match tokio::time::timeout(self.config.total_timeout, self.fetch_following()).await {
            Ok(result) => result,
            Err(_) => Err(FederationError::Timeout {
                url: url.to_string(),
                stage: "fetch",
                after: self.config.total_timeout,
            }),
        }
    }

    async fn fetch_following(&self) -> Result<SpiffeBundle, FederationError> {
        let mut url = self.config.url.clone();
        for _ in 0..=self.config.max_redirects {
            match self.get(&url).await? {
                Outcome::Body(body) => return parse_bundle(&self.config.trust_domain, &body),
                Outcome::Redirect(next) => {
                    tracing::info!(from = %url, to = %next, trust_domain = %self.config.trust_domain, "bundle endpoint: following a temporary redirect");
                    url = next;
                }
            }
        }
        Err(FederationError::TooManyRedirects {
            url: self.config.url.to_string(),
            limit: self.config.max_redirects,
        })
    }

    async fn connect(&self, url: &EndpointUrl) -> Result<TlsStream<TcpStream>, FederationError> {
        let server_name = ServerName::try_from(url.host().to_owned()).map_err(|_| {
            FederationError::InvalidUrl {
                url: escape_untrusted(&url.to_string()),
                reason: "the host is neither a DNS name nor an IP address",
            }
        })?;
        let tcp = TcpStream::connect((url.host(), url.port()))
            .await
            .map_err(|e| FederationError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        *self
            .rejection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.tls.connect(server_name, tcp).await.map_err(|e| {
            let tls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .cloned();
            let rejection = self
                .rejection
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let reason = match &rejection {
                Some(r) => format!("the endpoint's certificate was refused: {r}"),
                None => e.to_string(),
            };
            FederationError::Handshake {
                url: url.to_string(),
                reason,
                tls_error: tls_error.map(Box::new),
                rejection: rejection.map(Box::new),
            }
        })
    }

    /// One `GET` of `url`: its body, or where it redirects.
    async fn get(&self, url: &EndpointUrl) -> Result<Outcome, FederationError> {
        let connect = tokio::time::timeout(self.config.connect_timeout, self.connect(url));
        let tls = connect.await.map_err(|_| FederationError::Timeout {
            url: url.to_string(),
            stage: "connect",
            after: self.config.connect_timeout,
        })??;
        let http_err = |e: &dyn std::fmt::Display| FederationError::Http {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| http_err(&e))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let _driver = AbortOnDrop(driver.abort_handle());
        let request = Request::get(url.path_and_query())
            .header(header::HOST, url.authority().as_str())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "mtls-core-federation")
            .body(Empty::<Bytes>::new())
            .map_err(|e| http_err(&e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_err(&e))?;
        let status = response.status();
        if status.is_success() {
            let limit = self.config.max_body;
            let too_large = || FederationError::TooLarge {
                url: url.to_string(),
                limit,
            };
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > limit as u64) {
                return Err(too_large());
            }
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        too_large()
                    } else {
                        http_err(&e)
                    }
                })?;
            return Ok(Outcome::Body(body.to_bytes()));
        }
        let raw_location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.as_bytes().to_vec());
        let shown = |raw: &Option<Vec<u8>>| {
            raw.as_deref()
                .map(|v| escape_untrusted(&String::from_utf8_lossy(v)))
                .unwrap_or_default()
        };
        match status {
            StatusCode::FOUND | StatusCode::SEE_OTHER | StatusCode::TEMPORARY_REDIRECT => {
                let bad = |reason| FederationError::BadRedirect {
                    url: url.to_string(),
                    location: shown(&raw_location),
                    reason,
                };
                let Some(raw) = &raw_location else {
                    return Err(bad("no Location header"));
                };
                let location =
                    std::str::from_utf8(raw).map_err(|_| bad("the Location is not ASCII"))?;
                url.redirect(location.trim())
                    .map(Outcome::Redirect)
                    .map_err(bad)
            }
            StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT => {
                Err(FederationError::PermanentRedirect {
                    url: url.to_string(),
                    status: status.as_u16(),
                    location: shown(&raw_location),
                })
            }
            _ => Err(FederationError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            }),
        }
    }
}

/// The `https_spiffe` client: presents nothing, admits only `endpoint_id`
/// verified against the bundle of its trust domain in `bundles`.
fn spiffe_client(
    endpoint_id: &crate::SpiffeId,
    bundles: Arc<dyn BundleSource>,
    rejection: &Arc<Mutex<Option<Rejection>>>,
) -> Result<Arc<ClientConfig>, FederationError> {
    let slot = rejection.clone();
    let config = MtlsClientConfig::builder(SharedSvid::empty(), bundles)
        .authorizer(authorize::exact(endpoint_id.clone()))
        .on_rejection(move |r| {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(r.clone());
        })
        .alpn_protocols(vec![b"http/1.1".to_vec()])
        .build()
        .map_err(|e| FederationError::Config {
            reason: e.to_string(),
        })?;
    Ok(config.rustls_config())
}

/// The `https_web` client: RFC 6125 validation against `roots` or the
/// system's roots.
fn web_client(
    roots: Option<&[rustls_pki_types::CertificateDer<'static>]>,
) -> Result<Arc<ClientConfig>, FederationError> {
    let config_err = |reason: String| FederationError::Config { reason };
    let mut store = RootCertStore::empty();
    match roots {
        Some(roots) => {
            for (index, root) in roots.iter().enumerate() {
                store
                    .add(root.clone())
                    .map_err(|e| config_err(format!("https_web root #{index}: {e}")))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(config_err(format!(
                    "https_web: no system root certificate found ({} errors reading them)",
                    native.errors.len()
                )));
            }
        }
    }
    if store.is_empty() {
        return Err(config_err("https_web: no root certificate given".into()));
    }
    let provider = crate::provider::default_crypto_provider();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| config_err(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}
