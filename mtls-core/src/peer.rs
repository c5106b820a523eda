//! The authenticated peer of a connection: plain data. Reading it from a
//! rustls connection is `tls/peer.rs`'s business.

use std::sync::Arc;
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;

use crate::id::{SpiffeId, TrustDomain};

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

    /// Shares `other`'s copies of the chain and the SPIFFE ID where they
    /// are equal, so that many connections from one peer keep them once.
    pub(crate) fn share_with(&mut self, other: &PeerIdentity) {
        if !Arc::ptr_eq(&self.chain, &other.chain) && self.chain[..] == other.chain[..] {
            self.chain = other.chain.clone();
        }
        if self.spiffe_id == other.spiffe_id {
            self.spiffe_id = other.spiffe_id.clone();
        }
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
