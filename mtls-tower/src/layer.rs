//! The per-request authorization layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use mtls_core::JwtSvid;
use pin_project_lite::pin_project;
use tower_layer::Layer;

use crate::authorize::{AuthorizeFn, AuthorizeRequest, Caller, Denial, RequestHead};
use crate::peer::peer_identity;
use crate::policy::RoutePolicy;

/// Authorizes every request by its authenticated caller and its head
/// (method, path, headers, extensions: a [`RequestHead`]) with an [`AuthorizeRequest`]: a
/// [`RoutePolicy`] (the default type), a closure, or any implementation.
///
/// Before the policy runs, whatever it is:
///
/// - a request path not in normal form (percent-encoded unreserved
///   characters or `/`, dot or empty segments, malformed encoding; see
///   [`RoutePolicy`]): **400** (gRPC: `INVALID_ARGUMENT`, 3), so the
///   policy always decides on the path the handlers see;
/// - no authenticated caller (neither an X.509 peer nor a JWT-SVID put
///   in the request by a [`JwtSvidLayer`](crate::JwtSvidLayer) outside this
///   layer), or an X.509 peer whose certificate path (leaf or any
///   intermediate, [`PeerIdentity::not_after`](mtls_core::PeerIdentity::not_after))
///   has expired since the connection opened: **401** (gRPC:
///   `UNAUTHENTICATED`, 16); for an expired peer the connection is also
///   ended (HTTP/1.1: `Connection: close`; HTTP/2: the transport ends once
///   the refusal is flushed), so a client that renewed its SVID reconnects
///   with it instead of being refused on a pooled connection.
///
/// Then:
///
/// - the policy denies (a [`RoutePolicy`] also when no rule matches):
///   **403** (gRPC: `PERMISSION_DENIED`, 7); the reason is logged at debug
///   level, not sent;
/// - allowed: the request goes on unchanged. Handlers read the caller with
///   [`PeerId`](crate::PeerId), [`Peer`](crate::Peer),
///   `tonic_peer` (feature `tonic`) or [`peer_identity`](crate::peer_identity),
///   which find the X.509 peer in the connect info the server put there (it
///   is not copied into a second extension: nothing is allocated per
///   request) and a JWT-SVID caller's `JwtSvid` where its layer put it.
///
/// gRPC requests (content type `application/grpc*`) get a gRPC status
/// instead of an HTTP error, so gRPC clients see a proper status code.
///
/// The policy is called directly (no boxing); the service clones it with
/// the layer, so make a policy cheap to clone (a [`RoutePolicy`] is an
/// `Arc`; a closure capturing `Arc`s or nothing is).
///
/// ```no_run
/// # fn app(policy: mtls_tower::RoutePolicy) {
/// use axum::{routing::get, Router};
/// use mtls_tower::{AuthorizeLayer, Denial};
///
/// // A route policy.
/// let app: Router = Router::new()
///     .route("/orders", get(|| async { "orders" }))
///     .layer(AuthorizeLayer::new(policy));
///
/// // A closure: the caller and the request's head.
/// let app: Router = Router::new()
///     .route("/orders", get(|| async { "orders" }))
///     .layer(AuthorizeLayer::from_fn(|caller, request| {
///         if caller.spiffe_id().path().starts_with("/ns/shop/")
///             && request.headers().contains_key("x-tenant")
///         {
///             Ok(())
///         } else {
///             Err(Denial::new("shop workloads only, with a tenant"))
///         }
///     }));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuthorizeLayer<P = RoutePolicy> {
    policy: P,
    require: Authentication,
    allowed: AllowedCounter,
}

/// The `allow` count of [`AUTHZ_DECISIONS`](crate::metrics::AUTHZ_DECISIONS),
/// registered with the `metrics` recorder at the layer's first allowed
/// request and kept, shared by the services the layer makes: no registry
/// lookup per request (install the recorder before serving).
#[derive(Clone, Default)]
struct AllowedCounter(std::sync::Arc<std::sync::OnceLock<::metrics::Counter>>);

impl AllowedCounter {
    #[inline]
    fn get(&self) -> &::metrics::Counter {
        self.0.get_or_init(
            || ::metrics::counter!(crate::metrics::AUTHZ_DECISIONS, "result" => "allow"),
        )
    }
}

impl std::fmt::Debug for AllowedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AllowedCounter")
    }
}

/// How callers must authenticate to pass an [`AuthorizeLayer`]: by mutual
/// TLS (an X.509-SVID), by a JWT-SVID (validated by a
/// [`JwtSvidLayer`](crate::JwtSvidLayer) outside the layer), either, or
/// both. A caller without what is required gets **401** (gRPC
/// `UNAUTHENTICATED`).
///
/// ```
/// use mtls_tower::{AuthorizeLayer, Authentication, RoutePolicy};
///
/// # fn f(policy: RoutePolicy) {
/// // Behind a proxy that keeps the mTLS connection to us but forwards
/// // the original caller's JWT-SVID: both identities must be allowed.
/// let layer = AuthorizeLayer::new(policy).require(Authentication::Both);
/// # let _ = layer; }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Authentication {
    /// An X.509 peer or, without one, a JWT-SVID (the default). With both,
    /// the X.509 peer is the caller.
    #[default]
    Either,
    /// Mutual TLS only: a JWT-SVID alone does not authenticate.
    Mtls,
    /// A JWT-SVID, whatever the connection: the policy decides on its
    /// subject (an X.509 peer, such as a proxy's, is not the caller).
    JwtSvid,
    /// Both an X.509 peer and a JWT-SVID, and the policy must allow each
    /// of them: the request is refused unless both are allowed.
    Both,
}

impl<P: AuthorizeRequest> AuthorizeLayer<P> {
    /// A layer enforcing `policy` on callers authenticated by mutual TLS
    /// or a JWT-SVID ([`Authentication::Either`]).
    pub fn new(policy: P) -> Self {
        Self {
            policy,
            require: Authentication::Either,
            allowed: AllowedCounter::default(),
        }
    }

    /// Sets how callers must authenticate.
    pub fn require(mut self, authentication: Authentication) -> Self {
        self.require = authentication;
        self
    }
}

impl<F> AuthorizeLayer<AuthorizeFn<F>>
where
    F: Fn(Caller<'_>, RequestHead<'_>) -> Result<(), Denial> + Send + Sync,
{
    /// A layer enforcing a closure (its argument types are inferred); see
    /// [`authorize_fn`](crate::authorize_fn).
    pub fn from_fn(f: F) -> Self {
        Self::new(crate::authorize::authorize_fn(f))
    }
}

impl<S, P: Clone> Layer<S> for AuthorizeLayer<P> {
    type Service = Authorize<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            policy: self.policy.clone(),
            require: self.require,
            allowed: self.allowed.clone(),
        }
    }
}

/// The service of [`AuthorizeLayer`].
#[derive(Debug, Clone)]
pub struct Authorize<S, P = RoutePolicy> {
    inner: S,
    policy: P,
    require: Authentication,
    allowed: AllowedCounter,
}

impl<S, P> Authorize<S, P> {
    inner_service_accessors!();
}

#[derive(Clone, Copy)]
enum Refusal {
    Unauthenticated,
    Expired,
    Denied,
}

refusing_service!(Authorize<S, P> where P: AuthorizeRequest);

impl<S, P: AuthorizeRequest> Authorize<S, P> {
    /// Lets `req` through, or refuses it: not in normal form,
    /// unauthenticated, expired, or denied by the policy.
    // The refusal goes as it is into the response future (as tower-http's
    // `ValidateRequest` returns it): not worth a box.
    #[allow(clippy::result_large_err)]
    fn check<B>(&self, req: &mut Request<B>) -> Result<(), Response<Full<Bytes>>> {
        // Whether to answer with a gRPC status: read on refusal only.
        let grpc = |req: &Request<B>| is_grpc(req);
        // Before any policy: whatever implements it never sees a path
        // handlers would decode into another one.
        let normal = match crate::path::check(req.uri().path()) {
            Ok(normal) => normal,
            Err(invalid) => return Err(crate::path::refusal(&invalid, grpc(req))),
        };
        // A JWT-SVID is put there by a `JwtSvidLayer` outside this layer,
        // which validated it for this very request.
        let x509 = peer_identity(req.extensions());
        let (caller, second) = match (self.require, x509) {
            (Authentication::Either | Authentication::Mtls, Some(peer)) => {
                (Caller::X509(peer), None)
            }
            // The JWT-SVID is looked up only when it can decide.
            (require, x509) => match (require, x509, req.extensions().get::<JwtSvid>()) {
                (Authentication::Either | Authentication::JwtSvid, _, Some(svid)) => {
                    (Caller::Jwt(svid), None)
                }
                (Authentication::Both, Some(peer), Some(svid)) => {
                    (Caller::X509(peer), Some(Caller::Jwt(svid)))
                }
                _ => {
                    if x509.is_none() {
                        crate::peer::report_missing_connect_info(req.extensions());
                    }
                    return Err(refusal(Refusal::Unauthenticated, grpc(req)));
                }
            },
        };
        if let Some(peer) = caller.x509().filter(|p| p.is_expired_at(SystemTime::now())) {
            tracing::info!(peer = %peer.spiffe_id(), "mtls: request refused, the peer's certificate has expired; ending the connection");
            crate::peer::end_expired_connection(req.extensions());
            let mut response = refusal(Refusal::Expired, grpc(req));
            if req.version() <= http::Version::HTTP_11 {
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            return Err(response);
        }
        // The request's head by reference: nothing copied or allocated.
        let mut head = RequestHead::from(&*req);
        head.path_checked = Some(normal);
        let decision = self
            .policy
            .authorize_request(caller, head)
            .and_then(|()| match second {
                Some(second) => self.policy.authorize_request(second, head),
                None => Ok(()),
            });
        match decision {
            Ok(()) => {
                self.allowed.get().increment(1);
                // The X.509 caller is already in the request (connect info
                // or a `PeerIdentity` extension), where `PeerId`, `Peer`,
                // `tonic_peer` and `peer_identity` find it: not copied again.
                if caller.x509().is_none() && x509.is_some() {
                    // The JWT-SVID's subject is the caller, not the X.509
                    // peer (`Authentication::JwtSvid`): `PeerId` says so.
                    req.extensions_mut().insert(crate::peer::JwtCaller);
                }
                Ok(())
            }
            Err(denial) => {
                tracing::debug!(method = %req.method(), path = req.uri().path(), peer = %caller.spiffe_id(), jwt_svid = second.map(|c| tracing::field::display(c.spiffe_id())), reason = %denial, "mtls: request denied");
                Err(refusal(Refusal::Denied, grpc(req)))
            }
        }
    }
}

pub(crate) fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.len() >= 16 && v[..16].eq_ignore_ascii_case(b"application/grpc")
        })
}

/// The response of a refusal with `message`: for gRPC a trailers-only
/// response (HTTP 200, `grpc_status` and the message in its headers),
/// otherwise `status` with the message and a newline as plain text.
pub(crate) fn refusal_response(
    grpc: bool,
    status: StatusCode,
    grpc_status: &'static str,
    message: &'static str,
) -> Response<Full<Bytes>> {
    if grpc {
        let mut r = Response::new(Full::new(Bytes::new()));
        let headers = r.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from_static(grpc_status));
        headers.insert("grpc-message", HeaderValue::from_static(message));
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn refusal(kind: Refusal, grpc: bool) -> Response<Full<Bytes>> {
    let (status, grpc_status, message, label) = match kind {
        Refusal::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "16",
            "unauthenticated",
            "unauthenticated",
        ),
        Refusal::Expired => (
            StatusCode::UNAUTHORIZED,
            "16",
            "peer certificate expired",
            "unauthenticated",
        ),
        Refusal::Denied => (StatusCode::FORBIDDEN, "7", "permission denied", "deny"),
    };
    ::metrics::counter!(crate::metrics::AUTHZ_DECISIONS, "result" => label).increment(1);
    let mut response = refusal_response(grpc, status, grpc_status, message);
    if !grpc && status == StatusCode::UNAUTHORIZED {
        // No HTTP authentication scheme applies: identity comes from TLS.
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("mTLS"),
        );
    }
    response
}

pin_project! {
    /// The response future of [`Authorize`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: FutureKind<F>,
    }
}

pin_project! {
    #[project = FutureKindProj]
    enum FutureKind<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<Full<Bytes>>> },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: FutureKind::Inner { future },
        }
    }

    pub(crate) fn refused(response: Response<Full<Bytes>>) -> Self {
        Self {
            kind: FutureKind::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FutureKindProj::Inner { future } => future
                .poll(cx)
                .map(|r| r.map(|res| res.map(|body| ResponseBody::inner(body)))),
            FutureKindProj::Refused { response } => match response.take() {
                Some(res) => Poll::Ready(Ok(res.map(|body| ResponseBody {
                    kind: BodyKind::Refused { body },
                }))),
                None => Poll::Pending,
            },
        }
    }
}

pin_project! {
    /// The response body of [`Authorize`]: the inner service's, or a
    /// short refusal message.
    pub struct ResponseBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B },
        Refused { #[pin] body: Full<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    fn inner(body: B) -> Self {
        Self {
            kind: BodyKind::Inner { body },
        }
    }
}

#[cfg(feature = "axum")]
impl ResponseBody<axum::body::Body> {
    /// axum's body, for `axum::serve` around a layer wrapping the whole
    /// router: the inner service's body as it is (no second boxing on the
    /// allowed path), a refusal's message boxed.
    ///
    /// ```
    /// use axum::{extract::Request, Router};
    /// use mtls_tower::{AuthorizeLayer, ResponseBody, RoutePolicy};
    /// use tower::{Layer, ServiceExt};
    ///
    /// # fn app(policy: RoutePolicy) {
    /// let app = ServiceExt::<Request>::map_response(
    ///     AuthorizeLayer::new(policy).layer(Router::new()),
    ///     |response| response.map(ResponseBody::into_axum_body),
    /// );
    /// # drop(app);
    /// # }
    /// ```
    pub fn into_axum_body(self) -> axum::body::Body {
        match self.kind {
            BodyKind::Inner { body } => body,
            BodyKind::Refused { body } => axum::body::Body::new(body),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            BodyKindProj::Inner { body } => body.poll_frame(cx),
            BodyKindProj::Refused { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body } => body.is_end_stream(),
            BodyKind::Refused { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body } => body.size_hint(),
            BodyKind::Refused { body } => body.size_hint(),
        }
    }
}
