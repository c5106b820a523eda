//! Serving an axum router on an [`MtlsListener`] with the peer wired in.
//!
//! ```no_run
//! # async fn run(server: mtls_core::MtlsServerConfig) -> std::io::Result<()> {
//! use axum::{routing::get, Router};
//! use mtls_tower::{MtlsListener, PeerId};
//!
//! let app = Router::new().route("/whoami", get(|PeerId(id): PeerId| async move { format!("{id}\n") }));
//! let listener = MtlsListener::bind("127.0.0.1:8443", server).await?;
//! let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! mtls_tower::serve(listener, app)
//!     .with_graceful_shutdown(async { let _ = stopped.await; })
//!     .await
//! # }
//! ```

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::extract::ConnectInfo;
use axum::middleware::AddExtension;
use axum::Router;

use crate::listener::MtlsListener;
use crate::stream::MtlsConnectInfo;

/// What [`serve`] returns: axum's [`Serve`](axum::serve::Serve) future
/// (`.await` it), with
/// [`with_graceful_shutdown`](axum::serve::Serve::with_graceful_shutdown).
pub type MtlsServe = axum::serve::Serve<
    MtlsListener,
    IntoMakeServiceWithConnectInfo<Router, MtlsConnectInfo>,
    AddExtension<Router, ConnectInfo<MtlsConnectInfo>>,
>;

/// Serves `router` on `listener`, putting each connection's
/// [`MtlsConnectInfo`] (the verified peer, the remote address) into every
/// request, where [`AuthorizeLayer`](crate::AuthorizeLayer),
/// [`PeerId`](crate::PeerId) and [`Peer`](crate::Peer) read it.
///
/// The same as `axum::serve(listener,
/// router.into_make_service_with_connect_info::<MtlsConnectInfo>())`, which
/// cannot be forgotten this way: without the connect info every caller is
/// refused with 401. It returns axum's future: `.await` it, or call
/// `.with_graceful_shutdown(signal)` first to stop accepting when `signal`
/// completes and wait for the open connections to finish.
///
/// For tonic no helper is needed: `Server::builder()` with
/// `serve_with_incoming(listener)` gets the [`MtlsConnectInfo`] from each
/// connection by itself.
pub fn serve(listener: MtlsListener, router: Router) -> MtlsServe {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<MtlsConnectInfo>(),
    )
}
