//! The axum handlers the example servers share: `GET /whoami` and
//! `GET /admin` (`axum-server`, `spire-app`, and the demos' whoami server).
//!
//! ```
//! use axum::routing::get;
//! use axum::Router;
//! use examples::handlers::{admin, whoami};
//!
//! // Put an `AuthorizeLayer` on it that lets only the admins reach /admin.
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route("/admin", get(admin));
//! ```

use mtls_tower::PeerId;

/// `GET /whoami`: the caller's SPIFFE ID and a newline.
pub async fn whoami(PeerId(id): PeerId) -> String {
    format!("{id}\n")
}

/// `GET /admin`, for the admins only: the server's `AuthorizeLayer` answers
/// 403 to everyone else.
pub async fn admin() -> &'static str {
    "welcome, admin\n"
}
