//! What renews an SVID: the async [`SvidIssuer`] trait, what it is asked
//! for ([`SvidSpec`]) and how it fails ([`IssueError`]).

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::time_fmt::Rfc3339;
use crate::{SpiffeId, X509Svid};

/// Anything that issues X.509-SVIDs for a [`RenewingSvid`](crate::RenewingSvid):
/// mtls-ca's embedded CA, or a remote one (a CA service, Vault's PKI
/// engine, cert-manager's CertificateRequest flow, istiod's CSR API). An
/// implementation needs neither mtls-ca nor rcgen: it gets a [`SvidSpec`]
/// and returns an [`X509Svid`], or an [`IssueError`] that carries its own
/// error ([`IssueError::issuer`]).
///
/// Implementations write an `async fn`. Issuing is awaited on a tokio
/// worker: an implementation that does CPU-heavy work (generating a key,
/// signing) moves it off the worker, with `tokio::task::spawn_blocking`, as
/// mtls-ca's does; one that waits on the network just awaits.
///
/// ```
/// use mtls_core::{IssueError, SvidIssuer, SvidSpec, X509Svid};
///
/// /// Asks a remote CA (here: a stub that is always down).
/// struct RemoteCa {
///     url: String,
/// }
///
/// impl SvidIssuer for RemoteCa {
///     async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
///         let down = std::io::Error::other(format!("{} is unreachable", self.url));
///         Err(IssueError::issuer(&spec.spiffe_id, down))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ca = RemoteCa { url: "https://ca.example.org".into() };
/// let spec = SvidSpec::new(mtls_core::SpiffeId::new("spiffe://example.org/web")?);
/// let err = ca.issue_svid(&spec).await.unwrap_err();
/// // The cause is the source, not repeated in the message.
/// let chain = mtls_core::ErrorChain(&err).to_string();
/// assert!(chain.contains("https://ca.example.org is unreachable"));
/// assert!(err.issuer_error().unwrap().downcast_ref::<std::io::Error>().is_some());
/// # Ok(()) }
/// ```
pub trait SvidIssuer: Send + Sync {
    /// Issues an SVID for `spec.spiffe_id`, valid for about `spec.ttl`
    /// (an issuer may grant less). A renewal that fails keeps the current
    /// SVID serving and is retried.
    fn issue_svid(
        &self,
        spec: &SvidSpec,
    ) -> impl Future<Output = Result<X509Svid, IssueError>> + Send;
}

impl<T: SvidIssuer> SvidIssuer for Arc<T> {
    fn issue_svid(
        &self,
        spec: &SvidSpec,
    ) -> impl Future<Output = Result<X509Svid, IssueError>> + Send {
        (**self).issue_svid(spec)
    }
}

/// The algorithm of the key an issuer generates for an SVID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

/// What an [`SvidIssuer`] is asked for: the SPIFFE ID, the lifetime, DNS
/// SANs and the key algorithm. Built with [`SvidSpec::new`] and its
/// setters.
///
/// ```
/// use std::time::Duration;
/// use mtls_core::{KeyAlgorithm, SpiffeId, SvidSpec};
///
/// let spec = SvidSpec::new(SpiffeId::new("spiffe://example.org/web")?)
///     .ttl(Duration::from_secs(600))
///     .dns_name("web.example.org")
///     .key_algorithm(KeyAlgorithm::Ed25519);
/// assert_eq!(spec.ttl, Duration::from_secs(600));
/// assert_eq!(spec.dns_names, ["web.example.org"]);
/// # Ok::<(), mtls_core::SpiffeIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SvidSpec {
    /// The SPIFFE ID of the SVID (X509-SVID.md section 2: its one URI SAN).
    pub spiffe_id: SpiffeId,
    /// The lifetime asked for (default [`SvidSpec::DEFAULT_TTL`]).
    pub ttl: Duration,
    /// DNS SANs beside the SPIFFE ID (for clients, such as curl, that check
    /// the server name); none by default.
    pub dns_names: Vec<String>,
    /// The algorithm of the key, for issuers that generate it (default
    /// ECDSA P-256).
    pub key_algorithm: KeyAlgorithm,
}

impl SvidSpec {
    /// The default lifetime: one hour.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

    /// An SVID for `spiffe_id`, valid one hour, with a P-256 key and no DNS
    /// name.
    pub fn new(spiffe_id: SpiffeId) -> Self {
        Self {
            spiffe_id,
            ttl: Self::DEFAULT_TTL,
            dns_names: Vec::new(),
            key_algorithm: KeyAlgorithm::default(),
        }
    }

    crate::__setters! {
        /// Sets the lifetime asked for.
        ttl: Duration;
    }

    /// Adds a DNS SAN.
    pub fn dns_name(mut self, name: impl Into<String>) -> Self {
        self.dns_names.push(name.into());
        self
    }

    crate::__setters! {
        /// Sets the key algorithm.
        key_algorithm: KeyAlgorithm;
    }
}

/// Why an SVID was not issued, or an issued one was refused. Cheap to
/// clone: an issuer's own error is shared, not copied.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The issuer failed or refused, for a reason of its own (see
    /// [`IssueError::issuer_error`]).
    #[error("svid issuer: cannot issue an SVID for {spiffe_id}")]
    Issuer {
        /// The SPIFFE ID asked for.
        spiffe_id: SpiffeId,
        /// The issuer's own error.
        source: Arc<dyn StdError + Send + Sync>,
    },
    /// The issuer returned an SVID for another SPIFFE ID than the one asked
    /// for; it is not served.
    #[error("svid issuer: asked for an SVID for {requested}, got one for {issued}")]
    WrongSpiffeId {
        /// The SPIFFE ID asked for.
        requested: SpiffeId,
        /// The SPIFFE ID of the SVID returned.
        issued: SpiffeId,
    },
    /// The issuer returned an SVID (or chain) that has already expired; it
    /// is not served.
    #[error("svid issuer: the SVID issued for {spiffe_id} expired at {}, now {}", Rfc3339(*valid_until), Rfc3339(*now))]
    Expired {
        /// The SPIFFE ID asked for.
        spiffe_id: SpiffeId,
        /// The earliest `notAfter` of the chain returned.
        valid_until: SystemTime,
        /// The current time.
        now: SystemTime,
    },
    /// Issuing or renewing needs a tokio runtime, and there is none.
    #[error("svid issuer: issuing and renewing SVIDs needs a tokio runtime")]
    NoRuntime,
}

impl IssueError {
    /// An issuer's own error, for the SVID of `spiffe_id`.
    pub fn issuer(
        spiffe_id: &SpiffeId,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::Issuer {
            spiffe_id: spiffe_id.clone(),
            source: Arc::from(source.into()),
        }
    }

    /// The issuer's own error, if that is what this is; downcast it to the
    /// issuer's type (`err.issuer_error()?.downcast_ref::<CaError>()`).
    pub fn issuer_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        match self {
            Self::Issuer { source, .. } => Some(&**source),
            _ => None,
        }
    }

    /// Refuses an SVID that an issuer returned for `spec` when it is not
    /// for the SPIFFE ID asked for, or already expired at `now`.
    pub(crate) fn check(spec: &SvidSpec, svid: &X509Svid, now: SystemTime) -> Result<(), Self> {
        if svid.spiffe_id() != &spec.spiffe_id {
            return Err(Self::WrongSpiffeId {
                requested: spec.spiffe_id.clone(),
                issued: svid.spiffe_id().clone(),
            });
        }
        let valid_until = svid.valid_until();
        if valid_until <= now {
            return Err(Self::Expired {
                spiffe_id: spec.spiffe_id.clone(),
                valid_until,
                now,
            });
        }
        Ok(())
    }
}
