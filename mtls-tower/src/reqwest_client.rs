//! reqwest (feature `reqwest`): calling an mTLS SPIFFE service with
//! mtls-core's handshake, and seeing who answered (examples on
//! [`reqwest_builder`]).

use mtls_core::rustls::client::Resumption;
use mtls_core::rustls::pki_types::CertificateDer;
use mtls_core::{MtlsClientConfig, SpiffeId};

/// A `reqwest::ClientBuilder` whose every connection makes mtls-core's
/// handshake with `config`: it presents the SVID `config`'s source holds
/// at that moment (a renewed or rotated SVID is used from the next
/// connection on) and admits only servers whose chain verifies against
/// `config`'s bundles and whose SPIFFE ID its authorizer allows.
///
/// On top of `config`'s rustls settings:
/// - ALPN `h2` then `http/1.1` when `config` names no protocols (reqwest
///   takes the ALPN list from the config as it is);
/// - TLS session resumption off: reqwest does not let us verify a resumed
///   session again, so every connection verifies the server's chain;
/// - `https_only(true)`: an `http://` URL is an error, never a plaintext
///   request;
/// - `tls_info(true)`, for [`reqwest_server_id`].
///
/// reqwest must be built on rustls 0.23 (as mtls-core), which this
/// feature's reqwest 0.13 is; otherwise `build()` fails ("Unknown TLS
/// backend passed to `use_preconfigured_tls`") rather than fall back to
/// another verifier. [`reqwest_client`] builds it and says so in its error.
///
/// ```no_run
/// use mtls_core::{authorize, MtlsClientConfig, SpiffeId};
///
/// # async fn run(svid: mtls_core::SharedSvid, bundles: mtls_core::SharedBundles) -> Result<(), Box<dyn std::error::Error>> {
/// // Any sources: a `FileSource` on what `mtls-ca issue --ca ca --out
/// // certs/frontend` writes (`FilePaths::mtls_ca("certs/frontend", "ca")`,
/// // kept fresh by `mtls-ca renew`), a `SpireSource`, the embedded CA.
/// let config = MtlsClientConfig::builder(svid, bundles)
///     .authorizer(authorize::exact(SpiffeId::new("spiffe://example.org/backend")?))
///     .build()?;
/// let client = mtls_tower::reqwest_builder(&config)
///     // Idle pooled connections keep the SVID they were opened with.
///     .pool_idle_timeout(std::time::Duration::from_secs(30))
///     .build()?;
/// let response = client.get("https://backend.internal:8443/whoami").send().await?;
/// println!("served by {:?}", mtls_tower::reqwest_server_id(&response));
/// # Ok(()) }
/// ```
///
/// Pooled connections keep the SVID they were opened with: to have a
/// renewed SVID presented promptly, bound how long idle connections live
/// (`pool_idle_timeout`) well below the SVID's remaining lifetime at
/// renewal, or disable pooling (`pool_max_idle_per_host(0)`).
pub fn reqwest_builder(config: &MtlsClientConfig) -> reqwest::ClientBuilder {
    let mut tls = (*config.rustls_config()).clone();
    if tls.alpn_protocols.is_empty() {
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    tls.resumption = Resumption::disabled();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .tls_info(true)
}

/// [`reqwest_builder`]`(config).build()`, with an error that names the
/// likely cause.
pub fn reqwest_client(config: &MtlsClientConfig) -> Result<reqwest::Client, ReqwestError> {
    reqwest_builder(config).build().map_err(ReqwestError::Build)
}

/// The SPIFFE ID of the server that answered `response`, from the leaf
/// certificate it presented (reqwest's `TlsInfo`; the client must have
/// `tls_info(true)`, as [`reqwest_builder`] sets). The handshake already
/// verified the chain and the ID with the config's bundles and authorizer;
/// `None` when the response carries no TLS information.
pub fn reqwest_server_id(response: &reqwest::Response) -> Option<SpiffeId> {
    let info = response.extensions().get::<reqwest::tls::TlsInfo>()?;
    let leaf = CertificateDer::from(info.peer_certificate()?);
    mtls_core::check_svid_leaf(&leaf).ok()
}

/// A reqwest client that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReqwestError {
    /// reqwest refused the configuration (its cause is the source); with
    /// [`reqwest_builder`]'s settings, the likely reason is a reqwest built
    /// on another rustls than mtls-core's 0.23, which cannot take our TLS
    /// config.
    #[error(
        "mtls-tower: cannot build the reqwest client with mtls-core's TLS config \
         (reqwest must use rustls 0.23, as mtls-core does)"
    )]
    Build(#[source] reqwest::Error),
}
