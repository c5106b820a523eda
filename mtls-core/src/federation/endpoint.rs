//! The bundle endpoint as a Tower service: renders the SPIFFE bundle of a
//! trust domain from a bundle source.

use std::convert::Infallible;
use std::fmt;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::bundle::{JwtKey, SpiffeBundle, X509Bundle};
use crate::id::TrustDomain;
use crate::source::BundleSource;

/// The `spiffe_refresh_hint` a [`BundleEndpoint`] publishes unless told
/// otherwise: five minutes, as SPIFFE_Federation.md 4 recommends.
pub const DEFAULT_REFRESH_HINT: Duration = Duration::from_secs(300);

type JwtHook = Arc<dyn Fn() -> Vec<JwtKey> + Send + Sync>;

/// Serves the SPIFFE bundle of one trust domain, read from a
/// [`BundleSource`] (SPIFFE_Federation.md 4 and 5.2): a
/// `tower_service::Service` answering `GET` and `HEAD` on any path with
/// `200`, `Content-Type: application/json` and the bundle document (`keys`
/// with `use: "x509-svid"` entries, `spiffe_sequence`,
/// `spiffe_refresh_hint`), and any other method with `405`. Mount it on a
/// path of an axum router with `route_service`, or serve it with
/// [`serve`](super::serve).
///
/// The document is rendered once per change of the source (by its
/// generation), not per request. Clones share the rendering.
///
/// **`spiffe_sequence`** increases at every change of the content (the
/// authorities, or the JWT authorities): the new sequence is the highest of
/// the previous one plus one, the current Unix time in seconds, and the
/// source bundle's own `spiffe_sequence` if it has one. The first document
/// of a process takes the Unix time (or the source's higher sequence), so
/// the sequence also increases across restarts, unless the previous process
/// published more than one change per second on average.
///
/// **JWT authorities**: give them with
/// [`jwt_authorities`](Self::jwt_authorities) (a closure called at each
/// request, its keys compared with the last rendered ones); they are
/// published as `jwt-svid` entries.
///
/// ```
/// use std::time::Duration;
/// use mtls_core::federation::BundleEndpoint;
/// use mtls_core::{BundleSet, SharedBundles, SpiffeBundle, TrustDomain, X509Bundle};
///
/// let td = TrustDomain::from_static("example.org");
/// let source = SharedBundles::new(BundleSet::from(X509Bundle::new(td.clone())));
/// let endpoint = BundleEndpoint::new(td.clone(), source.clone())
///     .refresh_hint(Duration::from_secs(60));
///
/// let first = endpoint.current_document();
/// let bundle = SpiffeBundle::from_jwks(td, &first).unwrap();
/// assert_eq!(bundle.refresh_hint(), Some(Duration::from_secs(60)));
/// assert!(bundle.sequence().is_some());
///
/// // With axum: Router::new().route_service("/bundle", endpoint.clone())
/// ```
#[derive(Clone)]
pub struct BundleEndpoint {
    inner: Arc<Inner>,
}

struct Inner {
    trust_domain: TrustDomain,
    source: Arc<dyn BundleSource>,
    refresh_hint: Duration,
    jwt: Option<JwtHook>,
    rendered: Mutex<Option<Rendered>>,
}

#[derive(Clone)]
struct Rendered {
    generation: Option<u64>,
    authorities: X509Bundle,
    jwt: Vec<JwtKey>,
    sequence: u64,
    body: Bytes,
}

impl BundleEndpoint {
    /// Publishes the bundle of `trust_domain` that `source` holds (an empty
    /// bundle while it holds none).
    pub fn new(trust_domain: TrustDomain, source: impl BundleSource + 'static) -> Self {
        Self {
            inner: Arc::new(Inner {
                trust_domain,
                source: Arc::new(source),
                refresh_hint: DEFAULT_REFRESH_HINT,
                jwt: None,
                rendered: Mutex::new(None),
            }),
        }
    }

    fn with_inner(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            trust_domain: self.inner.trust_domain.clone(),
            source: self.inner.source.clone(),
            refresh_hint: self.inner.refresh_hint,
            jwt: self.inner.jwt.clone(),
            rendered: Mutex::new(None),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The `spiffe_refresh_hint` published (default
    /// [`DEFAULT_REFRESH_HINT`], whole seconds).
    #[must_use]
    pub fn refresh_hint(self, hint: Duration) -> Self {
        self.with_inner(|inner| inner.refresh_hint = hint)
    }

    /// Publishes the JWT authorities `keys` returns, next to the X.509
    /// ones. Called at every request; the document is rendered again only
    /// when the keys differ from the last rendered ones.
    #[must_use]
    pub fn jwt_authorities(self, keys: impl Fn() -> Vec<JwtKey> + Send + Sync + 'static) -> Self {
        self.with_inner(|inner| inner.jwt = Some(Arc::new(keys)))
    }

    /// The trust domain published.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.inner.trust_domain
    }

    /// The document served now (rendered if the source changed).
    pub fn current_document(&self) -> Bytes {
        self.current().map(|r| r.body).unwrap_or_default()
    }

    /// The `spiffe_sequence` served now.
    pub fn current_sequence(&self) -> Option<u64> {
        self.current().map(|r| r.sequence)
    }

    /// The rendering of the source's current bundle: the cached one while
    /// the source's generation and the JWT keys are the same; `None` only
    /// if the first rendering failed.
    fn current(&self) -> Option<Rendered> {
        let inner = &*self.inner;
        let jwt = inner.jwt.as_ref().map(|keys| keys()).unwrap_or_default();
        let mut rendered = inner
            .rendered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = inner.source.generation();
        if let Some(r) = &*rendered {
            if generation.is_some() && r.generation == generation && r.jwt == jwt {
                return Some(r.clone());
            }
        }
        let set = inner.source.current_bundles();
        let authorities = set
            .get(inner.trust_domain.name())
            .cloned()
            .unwrap_or_else(|| X509Bundle::new(inner.trust_domain.clone()));
        let previous = rendered.as_ref();
        if let Some(r) = previous {
            if same_authorities(&r.authorities, &authorities) && r.jwt == jwt {
                let mut same = r.clone();
                same.generation = generation;
                *rendered = Some(same.clone());
                return Some(same);
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let sequence = previous
            .map_or(0, |r| r.sequence.saturating_add(1))
            .max(now)
            .max(authorities.sequence().unwrap_or(0));
        match render(&authorities, &jwt, sequence, inner.refresh_hint) {
            Ok(body) => {
                let new = Rendered {
                    generation,
                    authorities,
                    jwt,
                    sequence,
                    body,
                };
                *rendered = Some(new.clone());
                Some(new)
            }
            Err(e) => {
                // Keep serving the last good document.
                tracing::error!(trust_domain = %inner.trust_domain, error = %crate::ErrorChain(&e), "bundle endpoint: cannot render the bundle; serving the last good one");
                previous.cloned()
            }
        }
    }

    fn respond(&self, method: &Method) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let Some(rendered) = self.current() else {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return response;
        };
        let len = rendered.body.len();
        let body = if method == Method::HEAD {
            Bytes::new()
        } else {
            rendered.body
        };
        let mut response = Response::new(Full::new(body));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        response
    }
}

/// Whether two X.509 views hold the same authorities (sequence and hint
/// aside).
fn same_authorities(a: &X509Bundle, b: &X509Bundle) -> bool {
    a.authorities() == b.authorities()
}

fn render(
    authorities: &X509Bundle,
    jwt: &[JwtKey],
    sequence: u64,
    refresh_hint: Duration,
) -> Result<Bytes, crate::BundleError> {
    let mut bundle = SpiffeBundle::from_parts(authorities.clone(), jwt.iter().cloned())?;
    bundle.set_sequence(Some(sequence));
    bundle.set_refresh_hint(Some(refresh_hint));
    Ok(Bytes::from(bundle.to_jwks()?))
}

impl<B> tower_service::Service<Request<B>> for BundleEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.respond(request.method())))
    }
}

impl fmt::Debug for BundleEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleEndpoint")
            .field("trust_domain", &self.inner.trust_domain)
            .field("refresh_hint", &self.inner.refresh_hint)
            .field("jwt_authorities", &self.inner.jwt.is_some())
            .finish_non_exhaustive()
    }
}
