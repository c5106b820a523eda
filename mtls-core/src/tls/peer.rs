//! Reading the authenticated peer from a rustls connection.

use std::sync::Arc;

use rustls::{CommonState, HandshakeKind};
use rustls_pki_types::CertificateDer;

use super::rejection::Rejection;
use super::verifier::SvidVerifier;
use crate::authorize::Denied;
use crate::peer::PeerIdentity;
use crate::verify::VerifyError;

impl PeerIdentity {
    /// The identity of the peer of a finished handshake made with this
    /// crate's configs, whose verifier checked the chain.
    ///
    /// This reads the chain rustls kept; it does not verify it again. So it
    /// refuses a *resumed* session ([`PeerIdentityError::ResumedSession`]):
    /// rustls restores a resumed peer's chain from the session ticket without
    /// calling the verifier, so the chain may since have been revoked or its
    /// CA removed from the bundle. Use `MtlsServerConfig::peer_identity` /
    /// `MtlsClientConfig::peer_identity`, which re-verify resumed sessions.
    ///
    /// Not knowing which certificates the verifier placed in the path, it
    /// takes [`not_after`](Self::not_after) as the earliest expiry of
    /// *every* certificate the peer presented: never later than the
    /// verified path's, possibly earlier.
    pub fn from_connection(conn: &CommonState) -> Result<Self, PeerIdentityError> {
        match conn.handshake_kind() {
            None => return Err(PeerIdentityError::HandshakeNotComplete),
            Some(HandshakeKind::Resumed) => return Err(PeerIdentityError::ResumedSession),
            Some(_) => {}
        }
        if conn.is_handshaking() {
            return Err(PeerIdentityError::HandshakeNotComplete);
        }
        let chain = peer_chain(conn)?;
        let (spiffe_id, leaf_not_after) = crate::x509::leaf_id_and_expiry(&chain[0])
            .map_err(|e| PeerIdentityError::Verify(e.into()))?;
        let mut not_after = leaf_not_after;
        for (index, der) in chain.iter().enumerate().skip(1) {
            let expiry =
                crate::x509::expiry(der, index).map_err(|e| PeerIdentityError::Verify(e.into()))?;
            not_after = not_after.min(expiry);
        }
        Ok(Self::new(spiffe_id, chain, not_after, leaf_not_after))
    }
}

/// The peer of a finished handshake, for `MtlsServerConfig::peer_identity`
/// and `MtlsClientConfig::peer_identity`: a resumed session's chain is
/// verified again (rustls restored it without calling the verifier); a
/// full handshake's identity is the one the verifier just produced.
pub(crate) fn reverify_if_resumed(
    verifier: &SvidVerifier,
    conn: &CommonState,
) -> Result<PeerIdentity, PeerIdentityError> {
    match conn.handshake_kind() {
        Some(HandshakeKind::Resumed) if !conn.is_handshaking() => {
            // The chain as rustls keeps it, by reference: copied only if
            // it must be verified for real (a cache hit copies nothing).
            match conn.peer_certificates() {
                Some(chain) if !chain.is_empty() => {
                    verifier.reverify(chain).map_err(PeerIdentityError::from)
                }
                _ => Err(PeerIdentityError::NoPeerCertificate),
            }
        }
        Some(_) if !conn.is_handshaking() => match conn.peer_certificates() {
            // The chain the verifier just checked: no need to parse it again.
            Some(chain) => match verifier.recent_identity(chain) {
                Some(peer) => Ok(peer),
                None => PeerIdentity::from_connection(conn),
            },
            None => PeerIdentity::from_connection(conn),
        },
        _ => PeerIdentity::from_connection(conn),
    }
}

/// The peer's chain as rustls kept it: never empty.
fn peer_chain(conn: &CommonState) -> Result<Arc<[CertificateDer<'static>]>, PeerIdentityError> {
    match conn.peer_certificates() {
        Some(certs) if !certs.is_empty() => {
            Ok(certs.iter().map(|c| c.clone().into_owned()).collect())
        }
        _ => Err(PeerIdentityError::NoPeerCertificate),
    }
}

/// Why the peer's identity could not be read from a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PeerIdentityError {
    /// The handshake has not finished.
    #[error("peer identity: the handshake is not complete")]
    HandshakeNotComplete,
    /// The peer presented no certificate.
    #[error("peer identity: the peer presented no certificate")]
    NoPeerCertificate,
    /// The session was resumed and must be verified again.
    #[error("peer identity: the session was resumed; its chain must be verified again (use MtlsServerConfig::peer_identity or MtlsClientConfig::peer_identity)")]
    ResumedSession,
    /// The chain failed (re-)verification.
    #[error(transparent)]
    Verify(VerifyError),
    /// The chain verified but the authorizer refused the peer (on
    /// re-verification of a resumed session).
    #[error(transparent)]
    Denied(Denied),
}

impl From<Rejection> for PeerIdentityError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Verify(e) => Self::Verify(e),
            Rejection::Denied(d) => Self::Denied(d),
        }
    }
}
