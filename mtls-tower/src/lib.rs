#![doc = include_str!("../README.md")]
// The docs link to the axum integration (`serve`, `PeerId`, `Peer`); a
// build without feature `axum` has no such items and shows those links as
// plain text.
#![cfg_attr(not(feature = "axum"), allow(rustdoc::broken_intra_doc_links))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// `get_ref`, `get_mut` and `into_inner` for a middleware service whose
/// wrapped service is the field `inner` of type `S` (as tower-http's
/// services offer them).
macro_rules! inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// The inner service, consuming the wrapper.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

/// `Service` for a middleware service that lets each request through to
/// its field `inner` (of type `S`) or answers it itself: its method
/// `fn check<B>(&self, req: &mut Request<B>) -> Result<(), Response<Full<Bytes>>>`
/// decides, and a refusal is sent as the shared
/// [`ResponseFuture`](crate::ResponseFuture) and
/// [`ResponseBody`](crate::ResponseBody). Written once for
/// [`Authorize`](crate::Authorize) and [`JwtSvidAuth`](crate::JwtSvidAuth):
/// `refusing_service!(Authorize<S, P> where P: AuthorizeRequest);`.
macro_rules! refusing_service {
    ($service:ident<S $(, $param:ident)*> $(where $($bound:tt)+)?) => {
        impl<S, $($param,)* ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>>
            for $service<S $(, $param)*>
        where
            S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
            ResBody: http_body::Body<Data = bytes::Bytes>,
            $($($bound)+)?
        {
            type Response = http::Response<crate::layer::ResponseBody<ResBody>>;
            type Error = S::Error;
            type Future = crate::layer::ResponseFuture<S::Future>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
                match self.check(&mut req) {
                    Ok(()) => crate::layer::ResponseFuture::inner(self.inner.call(req)),
                    Err(refusal) => crate::layer::ResponseFuture::refused(refusal),
                }
            }
        }
    };
}

mod authorize;
mod client;
mod jwt;
mod jwt_client;
mod layer;
mod listener;
pub mod metrics;
mod path;
mod peer;
mod policy;
mod policy_file;
mod reason;
#[cfg(feature = "reqwest")]
mod reqwest_client;
#[cfg(feature = "axum")]
mod serve;
mod stream;

pub use authorize::{authorize_fn, AuthorizeFn, AuthorizeRequest, Caller, Denial, RequestHead};
pub use client::{MtlsClientStream, MtlsConnector, DEFAULT_CONNECT_TIMEOUT, RETIRE_BEFORE_EXPIRY};
pub use jwt::{JwtSvidAuth, JwtSvidLayer};
pub use jwt_client::{JwtClientError, JwtClientFuture, JwtSvidClient, JwtSvidClientLayer};
pub use layer::{Authentication, Authorize, AuthorizeLayer, ResponseBody, ResponseFuture};
pub use listener::{ListenerConfig, ListenerStats, MtlsListener};
pub use peer::peer_identity;
#[cfg(feature = "tonic")]
pub use peer::tonic_peer;
#[cfg(feature = "axum")]
pub use peer::{Peer, PeerId, Unauthenticated};
pub use policy::{PolicyError, RoutePolicy, RoutePolicyBuilder};
pub use policy_file::{
    Action, AuthenticatedBy, CompiledPolicy, Explanation, Observation, PolicyDecision, PolicyFile,
    PolicyFileError, PolicyFileOptions, PolicyMode, PolicyProblem, PolicyQuery,
};
pub use reason::ConnectError;
#[cfg(feature = "reqwest")]
pub use reqwest_client::{reqwest_builder, reqwest_client, reqwest_server_id, ReqwestError};
#[cfg(feature = "axum")]
pub use serve::{serve, MtlsServe};
pub use stream::{MtlsConnectInfo, MtlsStream};

pub use mtls_core;
