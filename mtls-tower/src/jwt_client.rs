//! The client side of JWT-SVID authentication: every request goes out
//! with `Authorization: Bearer <JWT-SVID>` (JWT-SVID.md section 5.2) for
//! the audience of the service it calls.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use mtls_core::{JwtSourceError, JwtSvidSource};
use tower_layer::Layer;
use tower_service::Service;

/// Attaches a JWT-SVID for a configured audience to every request of a
/// hyper, tonic or any `Service<http::Request<B>>` client, as
/// `Authorization: Bearer <token>`, for calls whose X.509 identity a
/// TLS-terminating hop would strip. The server side is
/// [`JwtSvidLayer`](crate::JwtSvidLayer).
///
/// - The token comes from a [`JwtSvidSource`] at each request. Give it a
///   caching one: `SpireSource` caches, and any other goes behind a
///   [`CachedJwtSvids`](mtls_core::CachedJwtSvids), which reuses a token
///   until half its lifetime is left and then fetches the next, so the
///   token rotates before it expires.
/// - **Fails closed**: when no token can be had, the request is not sent;
///   the call fails with [`JwtClientError::Token`] (and the source's
///   typed [`JwtSourceError`]).
/// - An `Authorization` header already on the request is replaced: the
///   request carries the JWT-SVID and nothing else. The header value is
///   marked sensitive (never indexed by HTTP/2 header compression).
///
/// The inner service must be `Clone` (hyper's and tonic's clients are):
/// the ready service is moved into the request's future while the token
/// is fetched.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use mtls_ca::{CaJwtSource, CaOptions, CertificateAuthority};
/// use mtls_core::{CachedJwtSvids, SpiffeId, TrustDomain};
/// use mtls_tower::JwtSvidClientLayer;
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// // The tokens: here minted by an embedded CA, cached; with SPIRE, a
/// // `SpireSource` (feature `spire` of mtls-core) instead.
/// let ca = Arc::new(CertificateAuthority::self_signed_for_development(
///     TrustDomain::new("example.org")?,
///     &CaOptions::default(),
/// )?);
/// let tokens = CachedJwtSvids::new(CaJwtSource::new(ca, SpiffeId::new("spiffe://example.org/web")?));
///
/// let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
/// let mut client = ServiceBuilder::new()
///     .layer(JwtSvidClientLayer::new(tokens, "spiffe://example.org/api"))
///     .service(client);
/// let request = http::Request::get("http://api.internal/whoami").body(Empty::new())?;
/// let response = client.ready().await?.call(request).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwtSvidClientLayer {
    source: Arc<dyn JwtSvidSource>,
    audience: Arc<[String]>,
}

impl JwtSvidClientLayer {
    /// Requests carry a token of `source` for `audience`.
    pub fn new(source: impl JwtSvidSource + 'static, audience: impl Into<String>) -> Self {
        Self::from_arc(Arc::new(source), audience)
    }

    /// [`new`](Self::new) with a source already shared.
    pub fn from_arc(source: Arc<dyn JwtSvidSource>, audience: impl Into<String>) -> Self {
        Self {
            source,
            audience: Arc::from([audience.into()]),
        }
    }

    /// Asks for tokens valid for `audience` too (a token for several
    /// audiences, in this order).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        let mut all = self.audience.to_vec();
        all.push(audience.into());
        self.audience = Arc::from(all);
        self
    }

    /// The audience of the tokens.
    pub fn audience(&self) -> &[String] {
        &self.audience
    }
}

impl fmt::Debug for JwtSvidClientLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvidClientLayer")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for JwtSvidClientLayer {
    type Service = JwtSvidClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtSvidClient {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`JwtSvidClientLayer`].
#[derive(Clone, Debug)]
pub struct JwtSvidClient<S> {
    inner: S,
    layer: JwtSvidClientLayer,
}

impl<S> JwtSvidClient<S> {
    inner_service_accessors!();
}

/// Why a call through [`JwtSvidClient`] failed: no token (the request was
/// not sent), or the inner service's own error.
#[derive(Debug)]
#[non_exhaustive]
pub enum JwtClientError<E> {
    /// No JWT-SVID could be had for the audience: the request was not
    /// sent.
    Token(JwtSourceError),
    /// The inner service failed.
    Inner(E),
}

impl<E> JwtClientError<E> {
    /// The source's error, if no token could be had.
    pub fn token_error(&self) -> Option<&JwtSourceError> {
        match self {
            Self::Token(e) => Some(e),
            Self::Inner(_) => None,
        }
    }

    /// The inner service's error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Token(_) => None,
            Self::Inner(e) => Some(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for JwtClientError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("mtls: request not sent, no JWT-SVID"),
            Self::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: StdError + 'static> StdError for JwtClientError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Token(e) => Some(e),
            Self::Inner(e) => e.source(),
        }
    }
}

/// The future of [`JwtSvidClient`]: the token, then the inner call.
pub type JwtClientFuture<R, E> =
    Pin<Box<dyn Future<Output = Result<R, JwtClientError<E>>> + Send + 'static>>;

impl<S, B> Service<Request<B>> for JwtSvidClient<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = JwtClientError<S::Error>;
    type Future = JwtClientFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(JwtClientError::Inner)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The ready service goes with the request; a fresh clone waits for
        // the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let token = layer
                .source
                .fetch_jwt_svid(&layer.audience)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %mtls_core::ErrorChain(&e), "mtls: request not sent, no JWT-SVID");
                    JwtClientError::Token(e)
                })?;
            let mut value =
                HeaderValue::try_from(format!("Bearer {}", token.token())).map_err(|_| {
                    JwtClientError::Token(JwtSourceError::malformed(
                        &layer.audience,
                        mtls_core::JwtSvidError::BadBase64 {
                            part: mtls_core::JwsPart::Token,
                            reason: "not a valid HTTP header value".into(),
                        },
                    ))
                })?;
            value.set_sensitive(true);
            if request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value)
                .is_some()
            {
                tracing::debug!(
                    "mtls: the request's Authorization header replaced by the JWT-SVID"
                );
            }
            inner.call(request).await.map_err(JwtClientError::Inner)
        })
    }
}
