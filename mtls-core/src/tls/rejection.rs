//! Why a handshake's verifier turned a peer away: its chain failed
//! verification, or the authorizer refused it.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::{CertificateError, OtherError};

use crate::authorize::Denied;
use crate::id::SpiffeId;
use crate::verify::VerifyError;

/// Why the verifier of an [`MtlsServerConfig`](crate::MtlsServerConfig) or
/// [`MtlsClientConfig`](crate::MtlsClientConfig) rejected a peer: what the
/// [`on_rejection`](crate::ServerConfigBuilder::on_rejection) hook is told.
///
/// Verification never authorizes: [`verify`](crate::verify) answers with a
/// [`VerifyError`] or an identity, and the authorizer's [`Denied`] comes
/// after it, only in a handshake.
///
/// ```
/// use mtls_core::{Denied, Rejection, SpiffeId, VerifyError};
///
/// let peer = SpiffeId::from_static("spiffe://example.org/web");
/// let denied = Rejection::from(Denied::new(&peer, "not on the list"));
/// assert_eq!(denied.kind(), "denied");
/// assert_eq!(denied.spiffe_id(), Some(&peer));
///
/// let failed = Rejection::from(VerifyError::EmptyChain);
/// assert_eq!(failed.kind(), "empty_chain");
/// assert_eq!(failed.to_string(), VerifyError::EmptyChain.to_string());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The chain failed verification (the peer gets the alert that fits
    /// the failure: `unknown_ca`, `certificate_expired`, `bad_certificate`...).
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The chain verified, but the authorizer refused the peer (the peer
    /// gets `access_denied`).
    #[error(transparent)]
    Denied(#[from] Denied),
}

impl Rejection {
    /// The peer's SPIFFE ID, when it was read before the rejection.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        match self {
            Self::Verify(e) => e.spiffe_id(),
            Self::Denied(d) => Some(d.peer()),
        }
    }

    /// A short, stable label for metrics: `denied` for a refusal by the
    /// authorizer, else [`VerifyError::kind`] (`untrusted_issuer`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Verify(e) => e.kind(),
            Self::Denied(_) => "denied",
        }
    }

    /// The verification error, if that is why the peer was rejected.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            Self::Verify(e) => Some(e),
            Self::Denied(_) => None,
        }
    }

    /// The authorizer's refusal, if that is why the peer was rejected.
    pub fn denied(&self) -> Option<&Denied> {
        match self {
            Self::Verify(_) => None,
            Self::Denied(d) => Some(d),
        }
    }
}

thread_local! {
    /// The capture in progress on this thread, if any ([`Rejection::capture`]):
    /// `Some(last rejection so far)`.
    static CAPTURE: RefCell<Option<Option<Rejection>>> = const { RefCell::new(None) };
}

/// Restores the capture that was in progress before a nested
/// [`Rejection::capture`], even if the closure panics.
struct CaptureScope {
    /// The state before this capture; `None` once restored.
    previous: Option<Option<Option<Rejection>>>,
}

impl CaptureScope {
    fn restore(&mut self) -> Option<Rejection> {
        let previous = self.previous.take()?;
        CAPTURE
            .try_with(|c| {
                c.try_borrow_mut()
                    .ok()
                    .map(|mut c| std::mem::replace(&mut *c, previous))
            })
            .ok()
            .flatten()
            .flatten()
            .flatten()
    }
}

impl Drop for CaptureScope {
    fn drop(&mut self) {
        self.restore();
    }
}

impl Rejection {
    /// Runs `f` and returns, with its result, the last rejection that the
    /// verifier of any [`MtlsServerConfig`](crate::MtlsServerConfig) or
    /// [`MtlsClientConfig`](crate::MtlsClientConfig) made while `f` ran
    /// on this thread.
    ///
    /// rustls verifies certificates synchronously, inside the call that
    /// processes the peer's handshake messages: wrap each poll of one
    /// connection's handshake (tokio-rustls' `Accept` or `Connect`
    /// future) in `capture` to learn why *that* connection was refused
    /// (the rustls error only says `UnknownIssuer` or
    /// `ApplicationVerificationFailure`, and the peer only gets an alert).
    /// Nothing is shared between threads or connections: the capture lives
    /// on the calling thread for the duration of `f`, and nested captures
    /// each see their own.
    ///
    /// ```
    /// use mtls_core::Rejection;
    ///
    /// // Outside a handshake nothing is captured.
    /// let (answer, rejection) = Rejection::capture(|| 42);
    /// assert_eq!(answer, 42);
    /// assert!(rejection.is_none());
    /// ```
    pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Option<Rejection>) {
        let previous = CAPTURE
            .try_with(|c| c.try_borrow_mut().ok().map(|mut c| c.replace(None)))
            .ok()
            .flatten();
        let Some(previous) = previous else {
            // The thread is shutting down or re-entered: nothing captured.
            return (f(), None);
        };
        let mut scope = CaptureScope {
            previous: Some(previous),
        };
        let result = f();
        let rejection = scope.restore();
        (result, rejection)
    }

    /// Hands this rejection to the capture in progress on this thread.
    pub(crate) fn note(&self) {
        let _ = CAPTURE.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                if let Some(slot) = c.as_mut() {
                    *slot = Some(self.clone());
                }
            }
        });
    }
}

/// A callback told of every peer the verifier rejects, with the reason
/// (for logs and metrics: the peer only sees a TLS alert).
pub type RejectionHook = Arc<dyn Fn(&Rejection) + Send + Sync>;

/// Maps a rejection to the rustls error that sends the right alert:
/// `access_denied` for an authorizer denial; `bad_certificate` for a chain
/// that breaks the X.509-SVID format rules; `unknown_ca`,
/// `certificate_expired`, `certificate_revoked`, `decrypt_error` or
/// `unsupported_certificate` where one fits; `certificate_unknown` (carrying
/// the [`VerifyError`]) for any other path validation failure. The full
/// reason always goes to the rejection hook.
pub(crate) fn to_rustls_error(rejection: Rejection) -> rustls::Error {
    use crate::time_fmt::pki_from_system_time as pki;
    let e = match rejection {
        Rejection::Denied(_) => {
            return rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )
        }
        Rejection::Verify(e) => e,
    };
    let ce = match &e {
        VerifyError::Expired { not_after, now, .. } => CertificateError::ExpiredContext {
            time: pki(*now),
            not_after: pki(*not_after),
        },
        VerifyError::NotYetValid {
            not_before, now, ..
        } => CertificateError::NotValidYetContext {
            time: pki(*now),
            not_before: pki(*not_before),
        },
        VerifyError::UntrustedIssuer { .. } | VerifyError::NoBundle { .. } => {
            CertificateError::UnknownIssuer
        }
        VerifyError::Revoked { .. } => CertificateError::Revoked,
        VerifyError::CrlExpired { .. } => CertificateError::ExpiredRevocationList,
        VerifyError::BadSignature { .. } => CertificateError::BadSignature,
        VerifyError::WrongExtendedKeyUsage { .. } => CertificateError::InvalidPurpose,
        VerifyError::EmptyChain
        | VerifyError::ChainTooLong { .. }
        | VerifyError::CertificateTooLarge { .. }
        | VerifyError::MalformedCertificate { .. }
        | VerifyError::NoUriSan
        | VerifyError::MultipleUriSans { .. }
        | VerifyError::InvalidSpiffeId { .. }
        | VerifyError::TrustDomainIdAsLeaf { .. }
        | VerifyError::LeafIsCa { .. }
        | VerifyError::UnacceptableKey { .. }
        | VerifyError::LeafMissingKeyUsage { .. }
        | VerifyError::LeafMissingDigitalSignature { .. }
        | VerifyError::LeafHasKeyCertSign { .. }
        | VerifyError::LeafHasCrlSign { .. }
        | VerifyError::BadSigningCertificate { .. } => CertificateError::BadEncoding,
        _ => CertificateError::Other(OtherError(Arc::new(e))),
    };
    rustls::Error::InvalidCertificate(ce)
}
