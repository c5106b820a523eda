//! The verified-intermediate cache: intermediates whose path to a trust
//! anchor already verified, against the bundles and CRLs in force now, so
//! a leaf they issued is verified with one signature check instead of the
//! whole path (DESIGN.md section 7).
//!
//! Why a hit gives the answer full verification would give:
//!
//! - the path from the leaf's issuer up to the anchor does not depend on
//!   the leaf, except through name constraints: a path with any (on the
//!   anchor or an intermediate) is never cached;
//! - an entry is used only with exactly the intermediates it was verified
//!   with (DER for DER, so another key under the same name misses), for a
//!   leaf of the same trust domain, by the same verifier (so the same role,
//!   extended key usage and algorithms), while the bundle and CRL sources
//!   are at the generation (or the very snapshot) it was verified against,
//!   and within the validity window of every intermediate of its path;
//! - a CRL that expires changes the answer under `CrlExpiry::Enforce`: the
//!   entry's window ends at the first CRL `nextUpdate` then; and while any
//!   CRL is past its `nextUpdate` (under either policy) no entry is used,
//!   so the full verification reports or refuses it;
//! - the leaf itself gets every check as usual: SPIFFE rules, validity,
//!   signature by the issuer, extended key usage, and revocation by its
//!   issuer's CRL;
//! - if the leaf does not verify under the cached issuer, the whole chain
//!   is verified as if there were no cache.
//!
//! Only chains that verified are cached, at most [`CAPACITY`] of them, the
//! oldest evicted first: a peer can neither grow it nor make a hit out of a
//! chain that never verified.
//!
//! The verifier also remembers the last whole chains it accepted
//! (`tls/verifier.rs`): the very chain presented again (a new connection
//! of the same peer, or a resumption) is not verified again while the same
//! rules hold for it: the sources at the same generation (or snapshot),
//! no CRL past its `nextUpdate`, and the time within the validity of every
//! certificate of its path. Verification is a function of the chain, the
//! bundles, the CRLs, the time and the verifier's own role and algorithms;
//! the time enters only through those validity windows (and the CRLs'
//! `nextUpdate`), so the answer is the one full verification gives. The
//! authorizer runs every time.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use rustls_pki_types::{CertificateDer, TrustAnchor};

use crate::bundle::BundleSet;
use crate::crl::CrlSet;
use crate::id::TrustDomain;

/// How many verified paths one verifier remembers.
pub(crate) const CAPACITY: usize = 32;

/// What the sources served when a path was verified: the generation, or,
/// for a source without one, the snapshot itself (compared by pointer).
pub(crate) struct SourceMark<T> {
    pub(crate) generation: Option<u64>,
    pub(crate) value: T,
}

/// Compares marks: by generation when the source has one, by snapshot
/// identity otherwise.
pub(crate) trait SameSnapshot {
    fn same_snapshot(&self, other: &Self) -> bool;
}

impl SameSnapshot for BundleSet {
    fn same_snapshot(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl SameSnapshot for CrlSet {
    fn same_snapshot(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl<T: SameSnapshot> SourceMark<T> {
    pub(crate) fn matches(&self, now: &Self) -> bool {
        match (self.generation, now.generation) {
            (Some(a), Some(b)) => a == b,
            _ => self.value.same_snapshot(&now.value),
        }
    }
}

/// [`SourceMark::matches`] for optional sources: both absent, or both
/// present and matching.
pub(crate) fn both_match<T: SameSnapshot>(
    a: Option<&SourceMark<T>>,
    b: Option<&SourceMark<T>>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.matches(b),
        _ => false,
    }
}

/// One verified path.
pub(crate) struct Entry {
    /// The intermediates the peer presented, exactly.
    intermediates: Box<[CertificateDer<'static>]>,
    pub(crate) trust_domain: TrustDomain,
    /// The leaf's issuer, as an anchor.
    pub(crate) anchor: TrustAnchor<'static>,
    /// When every certificate of the path (and, under `Enforce`, every CRL)
    /// is valid.
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    bundles: SourceMark<BundleSet>,
    crls: Option<SourceMark<CrlSet>>,
}

/// The cache of one verifier.
#[derive(Default)]
pub(crate) struct IntermediateCache {
    entries: Mutex<VecDeque<std::sync::Arc<Entry>>>,
}

impl IntermediateCache {
    /// The entry for exactly these intermediates, verified against these
    /// bundles and CRLs, if any.
    pub(crate) fn find(
        &self,
        intermediates: &[CertificateDer<'_>],
        bundles: &SourceMark<BundleSet>,
        crls: Option<&SourceMark<CrlSet>>,
    ) -> Option<std::sync::Arc<Entry>> {
        if intermediates.is_empty() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .rev()
            .find(|e| {
                e.intermediates.len() == intermediates.len()
                    && e.intermediates
                        .iter()
                        .zip(intermediates)
                        .all(|(a, b)| a == b)
                    && e.bundles.matches(bundles)
                    && both_match(e.crls.as_ref(), crls)
            })
            .cloned()
    }

    /// Remembers that the path through `intermediates[issuer]` verified
    /// against `bundles` and `crls`, for leaves of `trust_domain`, within
    /// `window`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &self,
        intermediates: &[CertificateDer<'_>],
        issuer: usize,
        trust_domain: &TrustDomain,
        window: (SystemTime, SystemTime),
        bundles: SourceMark<BundleSet>,
        crls: Option<SourceMark<CrlSet>>,
    ) {
        let Some(der) = intermediates.get(issuer) else {
            return;
        };
        let Ok(anchor) = webpki::anchor_from_trusted_cert(der) else {
            return;
        };
        let entry = Entry {
            intermediates: intermediates
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
            trust_domain: trust_domain.clone(),
            anchor: anchor.to_owned(),
            not_before: window.0,
            not_after: window.1,
            bundles,
            crls,
        };
        if let Ok(mut entries) = self.entries.lock() {
            // A newer verification of the same intermediates replaces the
            // older one (its sources moved on).
            entries.retain(|e| *e.intermediates != *entry.intermediates);
            if entries.len() >= CAPACITY {
                entries.pop_front();
            }
            entries.push_back(std::sync::Arc::new(entry));
        }
    }
}
