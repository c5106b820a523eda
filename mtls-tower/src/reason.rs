//! Why a connection failed, in words a person can act on: the verifier's
//! own reason for a refused handshake, and the errors of [`MtlsConnector`](crate::MtlsConnector).

use std::future::Future;
use std::pin::Pin;

use mtls_core::{Rejection, VerifyError};

/// Why [`MtlsConnector`](crate::MtlsConnector) could not connect, beyond
/// plain I/O: the `source()` of the [`std::io::Error`] it returns (and so
/// of hyper's and tonic's errors, down their `source()` chains).
///
/// ```
/// use std::error::Error as _;
/// use mtls_core::{Denied, Rejection, SpiffeId};
/// use mtls_tower::ConnectError;
///
/// let server = SpiffeId::from_static("spiffe://example.org/impostor");
/// let e = ConnectError::ServerRefused {
///     addr: "127.0.0.1:8443".into(),
///     rejection: Rejection::from(Denied::new(&server, "is not spiffe://example.org/backend")),
/// };
/// assert_eq!(e.to_string(), "mtls-tower: refused the server at 127.0.0.1:8443");
/// assert_eq!(
///     e.source().map(ToString::to_string).as_deref(),
///     Some("authorize: spiffe://example.org/impostor denied: is not spiffe://example.org/backend"),
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server's certificate was refused by the client's verifier: the
    /// source says which SPIFFE ID it presented and why it was refused (an
    /// authorizer's denial names the ID expected; a chain from an unknown
    /// authority names the trust domain).
    #[error("mtls-tower: refused the server at {addr}")]
    ServerRefused {
        /// The address dialled.
        addr: String,
        /// The verifier's reason.
        #[source]
        rejection: Rejection,
    },
    /// The client's own SVID has expired: every server would refuse it
    /// (TLS alert `certificate_expired`), so the connector does not dial.
    /// Its source stopped renewing it (an SVID file not rewritten, a
    /// Workload API agent unreachable).
    #[error(
        "mtls-tower: the client's own SVID has expired; renew it (the server would refuse it)"
    )]
    OwnSvidExpired(#[source] VerifyError),
}

/// Runs one connection's handshake future, capturing the last rejection
/// its verifier made ([`Rejection::capture`] around each poll).
pub(crate) async fn with_rejection<F>(mut handshake: F) -> (F::Output, Option<Rejection>)
where
    F: Future + Unpin,
{
    let mut last = None;
    let output = std::future::poll_fn(|cx| {
        let (poll, rejection) = Rejection::capture(|| Pin::new(&mut handshake).poll(cx));
        if rejection.is_some() {
            last = rejection;
        }
        poll
    })
    .await;
    (output, last)
}
