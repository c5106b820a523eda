//! Reading the authenticated peer from a request.

use std::sync::atomic::{AtomicBool, Ordering};

use http::Extensions;
use mtls_core::PeerIdentity;

use crate::stream::MtlsConnectInfo;

/// The authenticated peer of a request, wherever the integration put it:
/// axum's `ConnectInfo<MtlsConnectInfo>` or tonic's `MtlsConnectInfo` (the
/// peer the listener's handshake verified, preferred when present), else a
/// `PeerIdentity` extension (a custom integration or a test may insert one).
pub fn peer_identity(extensions: &Extensions) -> Option<&PeerIdentity> {
    // The listener's connect info first: the peer its handshake verified.
    if let Some(info) = connect_info(extensions) {
        return Some(&info.peer);
    }
    extensions.get::<PeerIdentity>()
}

/// The connection information of a request, wherever the integration put
/// it (tonic: `MtlsConnectInfo`; axum: `ConnectInfo<MtlsConnectInfo>`).
pub(crate) fn connect_info(extensions: &Extensions) -> Option<&MtlsConnectInfo> {
    // axum's first: the common case of an axum service (a server puts one
    // or the other, never both).
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(info)) =
        extensions.get::<axum::extract::ConnectInfo<MtlsConnectInfo>>()
    {
        return Some(info);
    }
    extensions.get::<MtlsConnectInfo>()
}

/// Whether [`report_missing_connect_info`] has logged already.
static MISSING_CONNECT_INFO_REPORTED: AtomicBool = AtomicBool::new(false);

/// What [`report_missing_connect_info`] logs: the symptom and the fix.
pub(crate) const MISSING_CONNECT_INFO: &str = "mtls: a request carries no connection \
information (neither `ConnectInfo<MtlsConnectInfo>` nor `MtlsConnectInfo` nor a `PeerIdentity` \
extension), so every caller is refused as unauthenticated (401 / UNAUTHENTICATED). Serve the \
router with `mtls_tower::serve(listener, router)`, or with `axum::serve(listener, \
router.into_make_service_with_connect_info::<MtlsConnectInfo>())`; tonic: \
`Server::builder()...serve_with_incoming(mtls_listener)`. (Logged once per process.)";

/// Called when a request is refused for want of an authenticated peer:
/// if the request has no connection information at all, the server was
/// almost certainly set up without it (a silent 401 for everyone), so log
/// the fix, once per process. The request is refused all the same.
pub(crate) fn report_missing_connect_info(extensions: &Extensions) {
    if extensions.get::<PeerIdentity>().is_some() || connect_info(extensions).is_some() {
        return;
    }
    if !MISSING_CONNECT_INFO_REPORTED.swap(true, Ordering::Relaxed) {
        tracing::error!("{MISSING_CONNECT_INFO}");
    }
}

/// Asks the request's connection to end (its peer's identity expired), so
/// that the client reconnects with its renewed SVID instead of being
/// refused forever on a pooled connection.
pub(crate) fn end_expired_connection(extensions: &Extensions) {
    if let Some(info) = connect_info(extensions) {
        info.end_connection();
    }
}

#[cfg(feature = "axum")]
mod axum_extract {
    use axum::extract::FromRequestParts;
    use axum::response::{IntoResponse, Response};
    use http::request::Parts;
    use http::StatusCode;
    use mtls_core::{JwtSvid, PeerIdentity, SpiffeId};

    /// Extracts the caller's SPIFFE ID; rejects with 401 when the request
    /// has no authenticated, unexpired peer (expired: some certificate of
    /// its verified path, leaf or intermediate, has expired; the connection
    /// is then ended so the client reconnects).
    ///
    /// The caller is the X.509 peer of the connection, or, on a request
    /// without one, the subject of the JWT-SVID a
    /// [`JwtSvidLayer`](crate::JwtSvidLayer) validated.
    ///
    /// ```no_run
    /// use mtls_tower::PeerId;
    ///
    /// async fn whoami(PeerId(id): PeerId) -> String {
    ///     format!("{id}\n")
    /// }
    /// ```
    #[derive(Debug, Clone)]
    pub struct PeerId(pub SpiffeId);

    /// Extracts the caller's whole [`PeerIdentity`] (ID, chain, expiry);
    /// rejects with 401 like [`PeerId`]. X.509 peers only: a JWT-SVID
    /// caller has no chain (extract `Extension<JwtSvid>` for its token).
    #[derive(Debug, Clone)]
    pub struct Peer(pub PeerIdentity);

    /// The rejection of [`PeerId`] and [`Peer`]: 401 Unauthorized.
    #[derive(Debug, Clone, Copy)]
    #[non_exhaustive]
    pub struct Unauthenticated;

    impl IntoResponse for Unauthenticated {
        fn into_response(self) -> Response {
            (StatusCode::UNAUTHORIZED, "unauthenticated\n").into_response()
        }
    }

    fn current(parts: &Parts) -> Result<PeerIdentity, Unauthenticated> {
        match super::peer_identity(&parts.extensions) {
            Some(peer) if !peer.is_expired_at(std::time::SystemTime::now()) => Ok(peer.clone()),
            Some(_) => {
                super::end_expired_connection(&parts.extensions);
                Err(Unauthenticated)
            }
            None => {
                super::report_missing_connect_info(&parts.extensions);
                Err(Unauthenticated)
            }
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for PeerId {
        type Rejection = Unauthenticated;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            if super::peer_identity(&parts.extensions).is_none()
                || parts.extensions.get::<super::JwtCaller>().is_some()
            {
                // No X.509 peer, or an `AuthorizeLayer` that took the
                // JWT-SVID's subject as the caller: the subject of the
                // JWT-SVID a `JwtSvidLayer` validated for this request.
                if let Some(svid) = parts.extensions.get::<JwtSvid>() {
                    return Ok(PeerId(svid.spiffe_id().clone()));
                }
            }
            current(parts).map(|p| PeerId(p.spiffe_id().clone()))
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for Peer {
        type Rejection = Unauthenticated;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            current(parts).map(Peer)
        }
    }
}

#[cfg(feature = "axum")]
pub use axum_extract::{Peer, PeerId, Unauthenticated};

/// The caller of a tonic request, or `UNAUTHENTICATED` when the request has
/// no authenticated, unexpired peer (expired: some certificate of its
/// verified path, leaf or intermediate, has expired; the connection is then
/// ended so the client reconnects with a renewed SVID).
///
/// ```no_run
/// # async fn handler(request: tonic::Request<()>) -> Result<tonic::Response<String>, tonic::Status> {
/// let peer = mtls_tower::tonic_peer(&request)?;
/// Ok(tonic::Response::new(peer.spiffe_id().to_string()))
/// # }
/// ```
#[cfg(feature = "tonic")]
pub fn tonic_peer<T>(request: &tonic::Request<T>) -> Result<&PeerIdentity, tonic::Status> {
    match peer_identity(request.extensions()) {
        Some(peer) if !peer.is_expired_at(std::time::SystemTime::now()) => Ok(peer),
        Some(_) => {
            end_expired_connection(request.extensions());
            Err(tonic::Status::unauthenticated("peer certificate expired"))
        }
        None => {
            report_missing_connect_info(request.extensions());
            Err(tonic::Status::unauthenticated("no authenticated peer"))
        }
    }
}

/// Put in a request's extensions by an
/// [`AuthorizeLayer`](crate::AuthorizeLayer) requiring
/// [`Authentication::JwtSvid`](crate::Authentication::JwtSvid) when the
/// request also has an X.509 peer: the caller is the JWT-SVID's subject.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwtCaller;
