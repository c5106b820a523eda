//! Authentication by JWT-SVID: `Authorization: Bearer <JWT-SVID>`
//! (JWT-SVID.md section 5), for calls whose X.509 identity a
//! TLS-terminating hop (a proxy, a load balancer) took away.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use mtls_core::{JwtBundleSource, JwtSvidValidator};
use tower_layer::Layer;

use crate::layer::{is_grpc, refusal_response};

/// Authenticates every request by the JWT-SVID in its `Authorization:
/// Bearer` header, validated by a [`JwtSvidValidator`] (its audience, its
/// leeway) against the JWT bundles a [`JwtBundleSource`] serves at that
/// moment.
///
/// - no `Authorization` header, or another scheme than `Bearer`: **401**
///   with `WWW-Authenticate: Bearer` (RFC 6750 section 3);
/// - several `Authorization` headers, or a token the validator refuses
///   (any [`JwtSvidError`](mtls_core::JwtSvidError), logged at debug level,
///   never sent): **401** with `WWW-Authenticate: Bearer
///   error="invalid_token"`;
/// - gRPC requests (content type `application/grpc*`) get a trailers-only
///   `UNAUTHENTICATED` (16) instead;
/// - valid: the request goes on with the [`JwtSvid`](mtls_core::JwtSvid) in
///   its extensions. [`PeerId`](crate::PeerId) then extracts its SPIFFE ID,
///   and an [`AuthorizeLayer`](crate::AuthorizeLayer) placed inside this
///   layer authorizes it as [`Caller::Jwt`](crate::Caller::Jwt), so route
///   policies and authorizers work unchanged.
///
/// tonic handlers read the caller's token with
/// `request.extensions().get::<mtls_core::JwtSvid>()`
/// (`tonic_peer` returns X.509 peers only).
///
/// When a request also has an X.509 peer (a JWT-SVID sent over mutual
/// TLS), both must pass, and the X.509 peer is the caller that
/// [`PeerId`](crate::PeerId) and [`AuthorizeLayer`](crate::AuthorizeLayer)
/// see.
///
/// ```no_run
/// # fn app() {
/// use axum::{routing::get, Router};
/// use mtls_core::{JwtBundleSet, JwtSvidValidator, SharedJwtBundles};
/// use mtls_tower::{JwtSvidLayer, PeerId};
///
/// let bundles = SharedJwtBundles::new(JwtBundleSet::new()); // filled by the application
/// let app: Router = Router::new()
///     .route("/whoami", get(|PeerId(id): PeerId| async move { id.to_string() }))
///     .layer(JwtSvidLayer::new(JwtSvidValidator::new("spiffe://example.org/api"), bundles));
/// # }
/// ```
#[derive(Clone)]
pub struct JwtSvidLayer {
    validator: Arc<JwtSvidValidator>,
    bundles: Arc<dyn JwtBundleSource>,
    optional: bool,
}

impl JwtSvidLayer {
    /// A layer accepting the tokens `validator` accepts against the
    /// bundles `bundles` serves.
    pub fn new(validator: JwtSvidValidator, bundles: impl JwtBundleSource + 'static) -> Self {
        Self {
            validator: Arc::new(validator),
            bundles: Arc::new(bundles),
            optional: false,
        }
    }

    /// The same layer, letting requests without an `Authorization` header
    /// through without a JWT-SVID (a token that is there is still
    /// validated, and refused with 401 when invalid). For a service some of
    /// whose callers use mutual TLS and others JWT-SVIDs: an
    /// [`AuthorizeLayer`](crate::AuthorizeLayer) inside this layer then
    /// decides, with its [`Authentication`](crate::Authentication)
    /// requirement, which callers are authenticated enough.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The validator.
    pub fn validator(&self) -> &JwtSvidValidator {
        &self.validator
    }
}

impl fmt::Debug for JwtSvidLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvidLayer")
            .field("validator", &self.validator)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for JwtSvidLayer {
    type Service = JwtSvidAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtSvidAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`JwtSvidLayer`].
#[derive(Clone, Debug)]
pub struct JwtSvidAuth<S> {
    inner: S,
    layer: JwtSvidLayer,
}

impl<S> JwtSvidAuth<S> {
    inner_service_accessors!();
}

/// What the `Authorization` header holds.
enum Credentials<'a> {
    /// No header, or another scheme.
    None,
    /// Several headers, or a value that is not visible ASCII.
    Malformed,
    /// A bearer token (not yet validated).
    Bearer(&'a str),
}

/// The bearer token of `headers` (RFC 6750 section 2.1: the scheme is
/// case-insensitive, then one or more spaces, then the token).
fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credentials::None;
    };
    if values.next().is_some() {
        return Credentials::Malformed;
    }
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            match token.trim_start_matches(' ') {
                "" => Credentials::Malformed,
                token => Credentials::Bearer(token),
            }
        }
        // The scheme alone (a trailing space is trimmed in transit).
        None if value.eq_ignore_ascii_case("bearer") => Credentials::Malformed,
        _ => Credentials::None,
    }
}

refusing_service!(JwtSvidAuth<S>);

impl<S> JwtSvidAuth<S> {
    /// Lets `req` through with its validated JWT-SVID in its extensions
    /// (or, optional, without an `Authorization` header), or refuses it.
    // The refusal goes as it is into the response future (as tower-http's
    // `ValidateRequest` returns it): not worth a box.
    #[allow(clippy::result_large_err)]
    fn check<B>(&self, req: &mut Request<B>) -> Result<(), Response<Full<Bytes>>> {
        let grpc = is_grpc(req);
        let result = match credentials(req.headers()) {
            Credentials::None if self.layer.optional => return Ok(()),
            Credentials::None => return Err(refusal(false, grpc)),
            Credentials::Malformed => {
                tracing::debug!("mtls: request refused, malformed Authorization header");
                return Err(refusal(true, grpc));
            }
            Credentials::Bearer(token) => self
                .layer
                .validator
                .validate_from(token, &*self.layer.bundles),
        };
        match result {
            Ok(svid) => {
                req.extensions_mut().insert(svid);
                Ok(())
            }
            Err(e) => {
                tracing::debug!(reason = %mtls_core::ErrorChain(&e), "mtls: request refused, invalid JWT-SVID");
                Err(refusal(true, grpc))
            }
        }
    }
}

/// 401 with a `Bearer` challenge (`error="invalid_token"` when a token was
/// given), or gRPC `UNAUTHENTICATED`.
fn refusal(invalid_token: bool, grpc: bool) -> Response<Full<Bytes>> {
    let message = if invalid_token {
        "invalid JWT-SVID"
    } else {
        "JWT-SVID required"
    };
    let mut r = refusal_response(grpc, StatusCode::UNAUTHORIZED, "16", message);
    if !grpc {
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(if invalid_token {
                r#"Bearer error="invalid_token""#
            } else {
                "Bearer"
            }),
        );
    }
    r
}
