//! The SPIFFE verifier behind both rustls configs.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::DistinguishedName;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::intermediates::{both_match, IntermediateCache, SourceMark};
use super::rejection::{to_rustls_error, Rejection, RejectionHook};
use crate::authorize::Authorizer;
use crate::bundle::BundleSet;
use crate::crl::{CrlExpiry, CrlSet};
use crate::peer::PeerIdentity;
use crate::source::{BundleSource, CrlSource};
use crate::time_fmt::{pki_from_system_time, system_time_from_pki};
use crate::verify::{verify_with_expiry, PeerRole, TrustedIssuer, VerifyError};

/// Verifies a peer's chain with [`verify_with_expiry`] against the current
/// bundles and CRLs of its sources, then applies the authorizer.
pub(crate) struct SvidVerifier {
    pub(crate) bundles: Arc<dyn BundleSource>,
    pub(crate) crls: Option<Arc<dyn CrlSource>>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) algs: WebPkiSupportedAlgorithms,
    pub(crate) role: PeerRole,
    pub(crate) on_reject: Option<RejectionHook>,
    pub(crate) crl_expiry: CrlExpiry,
    /// The identities of the last chains verified, so that reading the
    /// peer of a full handshake (`peer_identity`) need not parse its leaf
    /// again, and a chain presented again (a resumption, or a new
    /// connection of the same peer) need not be verified again while the
    /// sources serve what it was verified against.
    recent: Mutex<VecDeque<Verified>>,
    /// Intermediates already verified, for the leaves they issue.
    intermediates: IntermediateCache,
}

/// A chain this verifier accepted, and what it was accepted against.
struct Verified {
    identity: PeerIdentity,
    bundles: Snapshot<BundleSet>,
    crls: Option<Snapshot<CrlSet>>,
    /// When the last certificate of the verified path became valid.
    valid_from: SystemTime,
    /// When the first certificate of the verified path expires (or, under
    /// [`CrlExpiry::Enforce`], the first CRL).
    valid_until: SystemTime,
}

impl Verified {
    /// Whether verifying its chain again at `now` against `bundles` and
    /// `crls` would give the answer it got: the same snapshots (by
    /// generation, or by identity for a source without one), and `now`
    /// within the validity of every certificate of the path. Verification
    /// depends on nothing else but the chain, which the caller compares,
    /// and the verifier's own role and algorithms.
    fn holds(
        &self,
        now: SystemTime,
        bundles: &Snapshot<BundleSet>,
        crls: Option<&Snapshot<CrlSet>>,
    ) -> bool {
        self.valid_from <= now
            && now <= self.valid_until
            && self.bundles.matches(bundles)
            && both_match(self.crls.as_ref(), crls)
    }
}

/// What a source returned, with the generation read just before.
type Snapshot<T> = SourceMark<T>;

/// Whether `identity` was verified from exactly `chain`.
fn same_chain(identity: &PeerIdentity, chain: &[CertificateDer<'_>]) -> bool {
    chain
        .split_first()
        .is_some_and(|(leaf, intermediates)| same_parts(identity, leaf, intermediates))
}

/// [`same_chain`] for a chain given as its leaf and intermediates.
fn same_parts(
    identity: &PeerIdentity,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> bool {
    identity.chain().split_first().is_some_and(|(first, rest)| {
        first == leaf
            && rest.len() == intermediates.len()
            && rest.iter().zip(intermediates).all(|(a, b)| a == b)
    })
}

/// How many verified identities [`SvidVerifier`] remembers.
const RECENT_MAX: usize = 64;

impl SvidVerifier {
    pub(crate) fn new(
        bundles: Arc<dyn BundleSource>,
        crls: Option<Arc<dyn CrlSource>>,
        authorizer: Arc<dyn Authorizer>,
        provider: &CryptoProvider,
        role: PeerRole,
        on_reject: Option<RejectionHook>,
        crl_expiry: CrlExpiry,
    ) -> Self {
        Self {
            crl_expiry,
            bundles,
            crls,
            authorizer,
            algs: provider.signature_verification_algorithms,
            role,
            on_reject,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_MAX)),
            intermediates: IntermediateCache::default(),
        }
    }

    /// The identity this verifier produced for exactly `chain`, if it is
    /// among the last few it verified.
    pub(crate) fn recent_identity(&self, chain: &[CertificateDer<'_>]) -> Option<PeerIdentity> {
        let recent = self.recent.lock().ok()?;
        recent
            .iter()
            .rev()
            .find(|v| same_chain(&v.identity, chain))
            .map(|v| v.identity.clone())
    }

    /// Chain verification, SPIFFE checks and authorization, at `now`.
    pub(crate) fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<PeerIdentity, Rejection> {
        self.verify_at(leaf, intermediates, now, true)
    }

    fn bundle_snapshot(&self) -> Snapshot<BundleSet> {
        let generation = self.bundles.generation();
        Snapshot {
            generation,
            value: self.bundles.current_bundles(),
        }
    }

    fn crl_snapshot(&self) -> Option<Snapshot<CrlSet>> {
        self.crls.as_ref().map(|source| {
            let generation = source.generation();
            Snapshot {
                generation,
                value: source.current_crls(),
            }
        })
    }

    /// [`verify`](Self::verify) against the bundles and CRLs the sources
    /// serve now: a chain remembered against them is only authorized again
    /// (counted as a repeat when `count_repeat`), any other verified in full
    /// and remembered with them.
    fn verify_at(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        count_repeat: bool,
    ) -> Result<PeerIdentity, Rejection> {
        let (bundles, crls) = (self.bundle_snapshot(), self.crl_snapshot());
        if let Some(peer) = self.remembered(
            leaf,
            intermediates,
            system_time_from_pki(now),
            &bundles,
            crls.as_ref(),
        ) {
            if count_repeat {
                ::metrics::counter!(crate::metrics::VERIFIED_INTERMEDIATES, "intermediates" => "chain")
                    .increment(1);
            }
            // The authorizer may have changed its mind since.
            let result = self
                .authorizer
                .authorize(peer.spiffe_id())
                .map(|()| peer)
                .map_err(Rejection::Denied);
            return self.report(result);
        }
        let none = CrlSet::new();
        let cached = self
            .intermediates
            .find(intermediates, &bundles, crls.as_ref());
        let trusted = cached.as_ref().map(|entry| TrustedIssuer {
            trust_domain: &entry.trust_domain,
            anchor: &entry.anchor,
            not_before: entry.not_before,
            not_after: entry.not_after,
        });
        let result = verify_with_expiry(
            leaf,
            intermediates,
            &bundles.value,
            crls.as_ref().map_or(&none, |c| &c.value),
            self.crl_expiry,
            now,
            self.role,
            self.algs.all,
            trusted.as_ref(),
        )
        .map_err(Rejection::Verify)
        .and_then(|verified| {
            let result = if verified.from_cache { "hit" } else { "miss" };
            ::metrics::counter!(crate::metrics::VERIFIED_INTERMEDIATES, "intermediates" => result)
                .increment(1);
            let mut peer = verified.identity;
            let mut valid_until = verified.valid_until;
            if let Some((issuer, not_before, mut not_after)) = verified.issuer {
                if self.crl_expiry == CrlExpiry::Enforce {
                    if let Some(first) = crls.as_ref().and_then(|c| c.value.next_update()) {
                        not_after = not_after.min(first);
                    }
                }
                self.intermediates.insert(
                    intermediates,
                    issuer,
                    peer.spiffe_id().trust_domain(),
                    (not_before, not_after),
                    Snapshot {
                        generation: bundles.generation,
                        value: bundles.value.clone(),
                    },
                    crls.as_ref().map(|c| Snapshot {
                        generation: c.generation,
                        value: c.value.clone(),
                    }),
                );
            }
            self.authorizer.authorize(peer.spiffe_id())?;
            if self.crl_expiry == CrlExpiry::Enforce {
                // A CRL that expires changes the answer: verify again then.
                if let Some(first) = crls.as_ref().and_then(|c| c.value.next_update()) {
                    valid_until = valid_until.min(first);
                }
            }
            if let Ok(mut recent) = self.recent.lock() {
                // The same peer again (a pool of connections): its chain is
                // kept once, shared by every connection's identity, and the
                // newer verification replaces the older in the list.
                if let Some(at) = recent
                    .iter()
                    .rposition(|v| same_chain(&v.identity, peer.chain()))
                {
                    if let Some(older) = recent.remove(at) {
                        peer.share_with(&older.identity);
                    }
                }
                if recent.len() >= RECENT_MAX {
                    recent.pop_front();
                }
                recent.push_back(Verified {
                    identity: peer.clone(),
                    bundles,
                    crls,
                    valid_from: verified.valid_from,
                    valid_until,
                });
            }
            Ok(peer)
        });
        self.report(result)
    }

    /// The identity of exactly this chain, if it is among the last
    /// verified and [`Verified::holds`] at `now`: verifying it again would
    /// give the same answer. It becomes the most recently used.
    ///
    /// Never while a CRL is past its `nextUpdate`: a full verification
    /// reports (or, under [`CrlExpiry::Enforce`], refuses) that.
    fn remembered(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: SystemTime,
        bundles: &Snapshot<BundleSet>,
        crls: Option<&Snapshot<CrlSet>>,
    ) -> Option<PeerIdentity> {
        if crls.is_some_and(|c| c.value.next_update().is_some_and(|first| first <= now)) {
            return None;
        }
        let mut recent = self.recent.lock().ok()?;
        let at = recent.iter().rposition(|v| {
            same_parts(&v.identity, leaf, intermediates) && v.holds(now, bundles, crls)
        })?;
        let verified = recent.remove(at)?;
        let identity = verified.identity.clone();
        recent.push_back(verified);
        Some(identity)
    }

    /// Tells the rejection hook of a refusal, and passes the result on.
    fn report(&self, result: Result<PeerIdentity, Rejection>) -> Result<PeerIdentity, Rejection> {
        if let Err(e) = &result {
            e.note();
            if let Some(hook) = &self.on_reject {
                hook(e);
            }
        }
        result
    }

    pub(crate) fn reverify(
        &self,
        chain: &[CertificateDer<'static>],
    ) -> Result<PeerIdentity, Rejection> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(Rejection::Verify(VerifyError::EmptyChain));
        };
        // A chain remembered against the bundles and CRLs in force now
        // (the usual case) is only authorized again, and that is not counted
        // as a verification.
        self.verify_at(
            leaf,
            intermediates,
            pki_from_system_time(std::time::SystemTime::now()),
            false,
        )
    }

    fn rustls_verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        self.verify(leaf, intermediates, now)
            .map(drop)
            .map_err(to_rustls_error)
    }
}

/// The handshake-signature methods of a rustls certificate verifier, the
/// same in [`ClientCertVerifier`] and [`ServerCertVerifier`]: rustls' own
/// checks with the algorithms in the verifier's field `algs`
/// (`WebPkiSupportedAlgorithms`). Not API: exported for the workspace's
/// test verifiers (`mtls-testing`), which must check handshake signatures
/// exactly as this crate does.
#[doc(hidden)]
#[macro_export]
macro_rules! __handshake_signature_methods {
    () => {
        $crate::__handshake_signature_methods!(verify_tls12_signature, verify_tls13_signature);

        fn supported_verify_schemes(&self) -> Vec<$crate::rustls::SignatureScheme> {
            self.algs.supported_schemes()
        }
    };
    ($($method:ident),+) => {
        $(
            fn $method(
                &self,
                message: &[u8],
                cert: &$crate::rustls::pki_types::CertificateDer<'_>,
                dss: &$crate::rustls::DigitallySignedStruct,
            ) -> Result<$crate::rustls::client::danger::HandshakeSignatureValid, $crate::rustls::Error> {
                $crate::rustls::crypto::$method(message, cert, dss, &self.algs)
            }
        )+
    };
}

impl ClientCertVerifier for SvidVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Bundles change at run time; hints would be stale (DESIGN.md §3).
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.rustls_verify(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    crate::__handshake_signature_methods!();
}

impl ServerCertVerifier for SvidVerifier {
    /// Verifies the server by its SPIFFE ID. The server name the client
    /// dialled is deliberately not compared with the certificate: SVIDs
    /// identify workloads by URI SAN, and the authorizer decides which
    /// SPIFFE IDs are acceptable servers.
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.rustls_verify(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    crate::__handshake_signature_methods!();
}

impl fmt::Debug for SvidVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvidVerifier")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}
