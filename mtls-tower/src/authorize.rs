//! Request authorization: what [`AuthorizeLayer`](crate::AuthorizeLayer)
//! decides with.
//!
//! An [`AuthorizeRequest`] sees the authenticated [`Caller`] and the
//! request's head (method, URI, headers, extensions: a [`RequestHead`]) and
//! answers `Ok(())` or a [`Denial`] with the reason.
//! [`RoutePolicy`](crate::RoutePolicy) is one; a closure is another:
//!
//! ```
//! use http::{Method, Request};
//! use mtls_tower::{AuthorizeRequest, Caller, Denial, RequestHead};
//!
//! // Read-only access for everyone in the trust domain, writes for the admin.
//! let policy = |caller: Caller<'_>, request: RequestHead<'_>| {
//!     let id = caller.spiffe_id();
//!     if request.method() == Method::GET || id.path() == "/admin" {
//!         Ok(())
//!     } else {
//!         Err(Denial::new(format!("{id} may only read {}", request.path())))
//!     }
//! };
//!
//! # let pki = mtls_ca::CertificateAuthority::self_signed_for_development(
//! #     mtls_core::TrustDomain::new("example.org")?, &Default::default())?;
//! # let svid = pki.issue(&mtls_ca::SvidRequest::new(mtls_core::SpiffeId::new("spiffe://example.org/web")?))?;
//! # let peer = mtls_core::verify(svid.chain(), &pki.bundle()?.into(), std::time::SystemTime::now(),
//! #     &mtls_core::CrlSet::new(), mtls_core::PeerRole::Client)?;
//! let get = Request::get("/orders/7").body(())?;
//! let post = Request::post("/orders").body(())?;
//! assert!(policy.authorize_request(Caller::X509(&peer), (&get).into()).is_ok());
//! let denial = policy.authorize_request(Caller::X509(&peer), (&post).into()).unwrap_err();
//! assert_eq!(denial.reason(), "spiffe://example.org/web may only read /orders");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Request, Uri, Version};
use mtls_core::{Denied, JwtSvid, PeerIdentity, SpiffeId};

/// Decides whether an authenticated caller may make a request.
///
/// [`AuthorizeLayer`](crate::AuthorizeLayer) calls it only for requests
/// whose path is in normal form (see [`RoutePolicy`](crate::RoutePolicy):
/// others get 400 before any policy runs) and whose caller is
/// authenticated and unexpired (others get 401), so an implementation
/// judges the path the handlers will see.
///
/// Implemented by [`RoutePolicy`](crate::RoutePolicy), by [`AuthorizeFn`],
/// by closures `Fn(Caller<'_>, RequestHead<'_>) -> Result<(), Denial>`, and
/// by `Arc<P>` of any of them (`Arc<dyn AuthorizeRequest>` too, to choose
/// a policy at run time).
/// It runs on every request: allocate only to explain a denial.
pub trait AuthorizeRequest: Send + Sync {
    /// `Ok(())` to let `caller` make `request`, or a [`Denial`] with the
    /// reason (the caller gets 403, or gRPC `PERMISSION_DENIED`).
    fn authorize_request(&self, caller: Caller<'_>, request: RequestHead<'_>)
        -> Result<(), Denial>;
}

/// Who makes a request, as authenticated before any policy runs.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Caller<'a> {
    /// The peer of the mutual TLS connection, by its verified X.509-SVID.
    X509(&'a PeerIdentity),
    /// The subject of a JWT-SVID validated by a
    /// [`JwtSvidLayer`](crate::JwtSvidLayer), on a request without an X.509
    /// peer.
    Jwt(&'a JwtSvid),
}

impl<'a> Caller<'a> {
    /// The caller's SPIFFE ID.
    #[inline]
    pub fn spiffe_id(&self) -> &'a SpiffeId {
        match self {
            Caller::X509(peer) => peer.spiffe_id(),
            Caller::Jwt(svid) => svid.spiffe_id(),
        }
    }

    /// The caller's X.509 identity (chain, expiry), when it authenticated
    /// with an X.509-SVID.
    #[inline]
    pub fn x509(&self) -> Option<&'a PeerIdentity> {
        match self {
            Caller::X509(peer) => Some(peer),
            Caller::Jwt(_) => None,
        }
    }

    /// The caller's JWT-SVID, when it authenticated with one.
    #[inline]
    pub fn jwt_svid(&self) -> Option<&'a JwtSvid> {
        match self {
            Caller::X509(_) => None,
            Caller::Jwt(svid) => Some(svid),
        }
    }
}

/// The head of a request (method, URI, version, headers, extensions), by
/// reference: what an [`AuthorizeRequest`] decides on. Built from a
/// `&Request<B>` or a `&http::request::Parts` with `From`, without copying.
///
/// From [`AuthorizeLayer`](crate::AuthorizeLayer), its [`path`](Self::path)
/// is in normal form.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
    /// Set by `AuthorizeLayer`, which refused the request already unless
    /// its path is in normal form: a policy need not check it again.
    pub(crate) path_checked: Option<crate::path::Normal>,
}

impl<'a> RequestHead<'a> {
    /// The method.
    #[inline]
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The URI (as the request holds it: for HTTP/1.1 usually only the path
    /// and query).
    #[inline]
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The path, without query (percent-encoded as received).
    #[inline]
    pub fn path(&self) -> &'a str {
        self.uri.path()
    }

    /// The HTTP version.
    #[inline]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    #[inline]
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The extensions (what earlier layers attached, such as the
    /// connection's information).
    #[inline]
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

impl<'a, B> From<&'a Request<B>> for RequestHead<'a> {
    #[inline]
    fn from(request: &'a Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            version: request.version(),
            headers: request.headers(),
            extensions: request.extensions(),
            path_checked: None,
        }
    }
}

impl<'a> From<&'a Parts> for RequestHead<'a> {
    #[inline]
    fn from(parts: &'a Parts) -> Self {
        Self {
            method: &parts.method,
            uri: &parts.uri,
            version: parts.version,
            headers: &parts.headers,
            extensions: &parts.extensions,
            path_checked: None,
        }
    }
}

/// A refusal by an [`AuthorizeRequest`], with the reason (logged, never
/// sent to the caller).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Denial(Reason);

#[derive(Debug, Clone)]
enum Reason {
    Text(Cow<'static, str>),
    Authorizer(Denied),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Text(reason) => write!(f, "authorize request: denied: {reason}"),
            Reason::Authorizer(denied) => denied.fmt(f),
        }
    }
}

impl Denial {
    /// A refusal for `reason`.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self(Reason::Text(reason.into()))
    }

    /// Why the request was refused.
    pub fn reason(&self) -> &str {
        match &self.0 {
            Reason::Text(reason) => reason,
            Reason::Authorizer(denied) => denied.reason(),
        }
    }

    /// The authorizer's refusal this denial carries, if it came from one.
    pub fn denied(&self) -> Option<&Denied> {
        match &self.0 {
            Reason::Text(_) => None,
            Reason::Authorizer(denied) => Some(denied),
        }
    }
}

/// An [`Authorizer`](mtls_core::Authorizer)'s refusal, so that closures can
/// use authorizers with `?`.
impl From<Denied> for Denial {
    fn from(denied: Denied) -> Self {
        Self(Reason::Authorizer(denied))
    }
}

/// A shared policy decides as the policy itself. `Arc<dyn
/// AuthorizeRequest>` chooses a policy at run time, for instance from
/// configuration, without an enum of the candidates:
///
/// ```
/// use std::sync::Arc;
/// use mtls_tower::{authorize_fn, AuthorizeLayer, AuthorizeRequest, Denial, RoutePolicy};
///
/// # fn f(routes: RoutePolicy, read_only: bool) {
/// let policy: Arc<dyn AuthorizeRequest> = if read_only {
///     Arc::new(authorize_fn(|_caller, request| match *request.method() {
///         http::Method::GET | http::Method::HEAD => Ok(()),
///         _ => Err(Denial::new("read-only service")),
///     }))
/// } else {
///     Arc::new(routes)
/// };
/// let layer = AuthorizeLayer::new(policy);
/// # let _ = layer; }
/// ```
impl<P: AuthorizeRequest + ?Sized> AuthorizeRequest for Arc<P> {
    fn authorize_request(
        &self,
        caller: Caller<'_>,
        request: RequestHead<'_>,
    ) -> Result<(), Denial> {
        (**self).authorize_request(caller, request)
    }
}

impl<F> AuthorizeRequest for F
where
    F: Fn(Caller<'_>, RequestHead<'_>) -> Result<(), Denial> + Send + Sync,
{
    fn authorize_request(
        &self,
        caller: Caller<'_>,
        request: RequestHead<'_>,
    ) -> Result<(), Denial> {
        self(caller, request)
    }
}

/// A closure as an [`AuthorizeRequest`], with a `Debug` implementation;
/// see [`authorize_fn`] and [`AuthorizeLayer::from_fn`](crate::AuthorizeLayer::from_fn).
#[derive(Clone, Copy)]
pub struct AuthorizeFn<F>(F);

/// Wraps `f` as an [`AuthorizeRequest`]; the closure's argument types are
/// inferred.
///
/// ```
/// use mtls_tower::{authorize_fn, Denial};
///
/// let only_reads = authorize_fn(|_caller, request| match *request.method() {
///     http::Method::GET | http::Method::HEAD => Ok(()),
///     _ => Err(Denial::new("read-only service")),
/// });
/// # let _ = only_reads;
/// ```
pub fn authorize_fn<F>(f: F) -> AuthorizeFn<F>
where
    F: Fn(Caller<'_>, RequestHead<'_>) -> Result<(), Denial> + Send + Sync,
{
    AuthorizeFn(f)
}

/// The closure's own decision (closures are [`AuthorizeRequest`]s
/// themselves; the wrapper only names them and adds `Debug`).
impl<F: AuthorizeRequest> AuthorizeRequest for AuthorizeFn<F> {
    fn authorize_request(
        &self,
        caller: Caller<'_>,
        request: RequestHead<'_>,
    ) -> Result<(), Denial> {
        self.0.authorize_request(caller, request)
    }
}

impl<F> fmt::Debug for AuthorizeFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorizeFn({})", std::any::type_name::<F>())
    }
}
