//! The authenticated peer of a connection.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::{CommonState, HandshakeKind};
use rustls_pki_types::CertificateDer;

use crate::spiffe_id::SpiffeId;
use crate::trust_domain::TrustDomain;
use crate::verify::VerifyError;

/// A peer authenticated by its X.509-SVID: its SPIFFE ID, its certificate
/// chain (leaf first) and when the verified path expires.
///
/// Cloning is cheap. Obtain one from [`verify`](crate::verify), from
/// [`MtlsServerConfig::peer_identity`](crate::MtlsServerConfig::peer_identity)
/// or [`MtlsClientConfig::peer_identity`](crate::MtlsClientConfig::peer_identity)
/// after a handshake, or (with care) from [`PeerIdentity::from_connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    spiffe_id: SpiffeId,
    chain: Arc<[CertificateDer<'static>]>,
    /// The earliest notAfter of the verified path (leaf and
    /// intermediates).
    not_after: SystemTime,
    leaf_not_after: SystemTime,
}

impl PeerIdentity {
    /// `not_after` is the earliest notAfter of the path, `leaf_not_after`
    /// the leaf's own (never earlier than `not_after`).
    pub(crate) fn new(
        spiffe_id: SpiffeId,
        chain: Arc<[CertificateDer<'static>]>,
        not_after: SystemTime,
        leaf_not_after: SystemTime,
    ) -> Self {
        Self {
            spiffe_id,
            chain,
            not_after: not_after.min(leaf_not_after),
            leaf_not_after,
        }
    }

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
        let (spiffe_id, leaf_not_after) =
            crate::x509::leaf_id_and_expiry(&chain[0]).map_err(PeerIdentityError::Verify)?;
        let mut not_after = leaf_not_after;
        for (index, der) in chain.iter().enumerate().skip(1) {
            let expiry = crate::x509::expiry(der, index).map_err(PeerIdentityError::Verify)?;
            not_after = not_after.min(expiry);
        }
        Ok(Self::new(spiffe_id, chain, not_after, leaf_not_after))
    }

    /// The peer's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The peer's trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        self.spiffe_id.trust_domain()
    }

    /// The chain the peer presented, leaf first.
    pub fn chain(&self) -> &Arc<[CertificateDer<'static>]> {
        &self.chain
    }

    /// The peer's leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// When this identity stops being valid: the earliest notAfter of the
    /// verified path, the leaf and every intermediate (trust anchors aside,
    /// as rustls-webpki does when it builds the path). A leaf valid for two
    /// hours under an intermediate that expires in fifteen seconds gives an
    /// identity valid for fifteen seconds, exactly as long as a new
    /// handshake would succeed.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// When the peer's leaf certificate itself expires (never earlier than
    /// [`not_after`](Self::not_after)).
    pub fn leaf_not_after(&self) -> SystemTime {
        self.leaf_not_after
    }

    /// Whether the identity has expired at `now`: some certificate of its
    /// verified path (leaf or intermediate) has expired, so a long-lived
    /// connection must not be served any more. See
    /// [`not_after`](Self::not_after).
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now > self.not_after
    }
}

/// The peer's chain as rustls kept it: never empty.
pub(crate) fn peer_chain(
    conn: &CommonState,
) -> Result<Arc<[CertificateDer<'static>]>, PeerIdentityError> {
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
    /// The chain failed (re-)verification or authorization.
    #[error(transparent)]
    Verify(VerifyError),
}
