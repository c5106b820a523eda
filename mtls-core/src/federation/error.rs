//! The one error of the federation module.

use std::time::Duration;

use crate::bundle::BundleError;
use crate::id::{SpiffeId, TrustDomain};
use crate::tls::Rejection;

/// Why a bundle endpoint could not be fetched, served or watched, or why a
/// fetched bundle was refused.
///
/// Every variant that concerns a fetch names the URL it was fetching (after
/// redirects, the URL of the hop that failed).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// The URL is not a valid bundle endpoint URL (SPIFFE_Federation.md
    /// 5.2.1.1 and 5.2.2.1: scheme `https`, no userinfo, a host).
    #[error("federation: endpoint URL {url:?} refused: {reason}")]
    InvalidUrl {
        /// The URL, escaped and truncated.
        url: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The endpoint's configuration is inconsistent (a bootstrap bundle of
    /// another trust domain than the endpoint's SPIFFE ID, a web profile
    /// with no root, ...).
    #[error("federation: endpoint configuration refused: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// No TCP connection could be made.
    #[error("federation: cannot connect to {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// What the system said.
        reason: String,
    },
    /// The TLS handshake failed: the endpoint's certificate was refused
    /// (`rejection` says why for the `https_spiffe` profile: not the
    /// expected SPIFFE ID, or not verified by the endpoint's bundle;
    /// `tls_error` what rustls said, e.g. a web certificate not valid for
    /// the host), or the connection broke.
    #[error("federation: TLS handshake with {url} failed: {reason}")]
    Handshake {
        /// The URL.
        url: String,
        /// Why, as text.
        reason: String,
        /// The rustls error, if the handshake failed on one.
        tls_error: Option<Box<rustls::Error>>,
        /// Why the endpoint's SVID was refused (`https_spiffe` profile).
        rejection: Option<Box<Rejection>>,
    },
    /// A stage of the fetch took too long.
    #[error("federation: {stage} of {url} took longer than {after:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// What was under way: `connect` (TCP and TLS) or `fetch` (the
        /// whole fetch, redirects and body included).
        stage: &'static str,
        /// The bound.
        after: Duration,
    },
    /// The HTTP exchange failed (malformed response, connection closed).
    #[error("federation: HTTP exchange with {url} failed: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What hyper said.
        reason: String,
    },
    /// The endpoint answered with a status that is neither a success nor
    /// a temporary redirect.
    #[error("federation: {url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The endpoint answered with a permanent redirect (301, 308). A
    /// permanent redirect is a migration of the endpoint URL, which must be
    /// made out of band, in the configuration (SPIFFE_Federation.md 7.5.1).
    #[error("federation: {url} answered a permanent redirect (HTTP {status}) to {location:?}; an endpoint URL is changed in the configuration, never by redirect")]
    PermanentRedirect {
        /// The URL.
        url: String,
        /// 301 or 308.
        status: u16,
        /// Where it pointed, escaped and truncated.
        location: String,
    },
    /// A redirect without a usable `Location`, or to a URL that is not a
    /// valid bundle endpoint URL.
    #[error("federation: {url} redirected to {location:?}, refused: {reason}")]
    BadRedirect {
        /// The URL.
        url: String,
        /// Where it pointed, escaped and truncated.
        location: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// More redirects than [`MAX_FEDERATION_REDIRECTS`](crate::MAX_FEDERATION_REDIRECTS).
    #[error("federation: more than {limit} redirects from {url}")]
    TooManyRedirects {
        /// The configured URL.
        url: String,
        /// The bound.
        limit: usize,
    },
    /// The response body is larger than allowed.
    #[error("federation: the response of {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The bound.
        limit: usize,
    },
    /// The body is not a valid SPIFFE bundle (bad JSON, missing `keys`, an
    /// authority that is not a CA certificate, ...).
    #[error("federation: the bundle of {trust_domain} is refused")]
    Bundle {
        /// The trust domain the bundle was fetched for.
        trust_domain: TrustDomain,
        /// Why.
        source: BundleError,
    },
    /// An `x509-svid` entry's `x5c` holds more than one certificate
    /// (SPIFFE_Trust_Domain_and_Bundle.md 4.2.1 and X509-SVID.md 6.2: it
    /// holds the one authority).
    #[error("federation: the bundle of {trust_domain} is refused: key #{index} has {count} certificates in \"x5c\", where one authority is expected")]
    MultipleCertificates {
        /// The trust domain the bundle was fetched for.
        trust_domain: TrustDomain,
        /// Position of the entry in `keys`.
        index: usize,
        /// How many certificates it holds.
        count: usize,
    },
    /// An authority of the bundle carries the SPIFFE ID of another trust
    /// domain: the bundle says it is another trust domain's.
    #[error("federation: the bundle fetched for {trust_domain} is refused: authority #{index} is {spiffe_id}, of another trust domain")]
    ForeignTrustDomain {
        /// The trust domain the bundle was fetched for.
        trust_domain: TrustDomain,
        /// Position of the authority.
        index: usize,
        /// The SPIFFE ID it carries.
        spiffe_id: SpiffeId,
    },
    /// A fetched bundle has different content but a sequence number not
    /// higher than the bundle held (SPIFFE_Federation.md 4.2): the held
    /// bundle keeps serving.
    #[error("federation: the bundle fetched for {trust_domain} is refused: its content changed but its spiffe_sequence {received} is not above {current}")]
    StaleSequence {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The sequence of the bundle held.
        current: u64,
        /// The sequence received.
        received: u64,
    },
    /// No tokio runtime to run the server or the watching task on.
    #[error("federation: {what} must be started inside a tokio runtime")]
    NoRuntime {
        /// What was started.
        what: &'static str,
    },
    /// The server could not be started (a TLS setting refused, ...).
    #[error("federation: bundle endpoint server: {reason}")]
    Server {
        /// What went wrong.
        reason: String,
    },
}

impl FederationError {
    /// A short, stable label for logs and metrics (`invalid_url`,
    /// `handshake`, `stale_sequence`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::Config { .. } => "config",
            Self::Connect { .. } => "connect",
            Self::Handshake { .. } => "handshake",
            Self::Timeout { .. } => "timeout",
            Self::Http { .. } => "http",
            Self::Status { .. } => "status",
            Self::PermanentRedirect { .. } => "permanent_redirect",
            Self::BadRedirect { .. } => "bad_redirect",
            Self::TooManyRedirects { .. } => "too_many_redirects",
            Self::TooLarge { .. } => "too_large",
            Self::Bundle { .. } => "bundle",
            Self::MultipleCertificates { .. } => "multiple_certificates",
            Self::ForeignTrustDomain { .. } => "foreign_trust_domain",
            Self::StaleSequence { .. } => "stale_sequence",
            Self::NoRuntime { .. } => "no_runtime",
            Self::Server { .. } => "server",
        }
    }
}
