//! CA rotation with an overlapping trust bundle.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use mtls_core::{BundleSet, BundleSource, Published, SourceStatus, X509Bundle, X509Svid};
use rustls_pki_types::CertificateDer;
use tokio::sync::watch;

use crate::authority::{CertificateAuthority, BUNDLE_REFRESH_HINT};
use crate::error::CaError;
use crate::issue::SvidRequest;

/// Where a [`RotatingCa`] is in a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationPhase {
    /// One CA issues; the bundle holds its anchors.
    Steady,
    /// The next CA is published in the bundle, the current one still issues.
    Staged,
    /// The next CA issues; the previous one stays in the bundle until its
    /// SVIDs have expired.
    Activated,
}

/// A CA of one trust domain that rotates to a new signing CA without
/// breaking a single handshake.
///
/// The procedure, one method per step:
///
/// 1. [`stage`](RotatingCa::stage) the next CA: the bundle now holds the
///    anchors of both, so peers learn to trust the new CA *before* anything
///    it signs is presented. Wait until every peer has the new bundle (the
///    bundle's refresh hint, or your distribution delay).
/// 2. [`activate`](RotatingCa::activate) it: new SVIDs come from the new CA;
///    SVIDs from the old one still verify, since its anchors stay in the
///    bundle. Wait until every SVID of the old CA has expired or been
///    renewed (the longest SVID TTL, e.g. one hour).
/// 3. [`retire`](RotatingCa::retire) the old CA: the bundle drops its
///    anchors.
///
/// The bundle's `spiffe_sequence` grows at every step. A `RotatingCa` is a
/// `BundleSource` (its own trust domain's bundle) and an
/// [`SvidIssuer`](mtls_core::SvidIssuer), so a
/// [`RenewingSvid`](mtls_core::RenewingSvid) started from it follows the
/// rotation. It is also a `JwtBundleSource` (the JWT authorities of every
/// CA of the rotation), and [`CaJwtSource::rotating`](crate::CaJwtSource::rotating)
/// mints JWT-SVIDs with its active CA.
///
/// ```
/// use mtls_ca::{CaOptions, CertificateAuthority, RotatingCa, RotationPhase, SvidRequest};
/// use mtls_core::{SpiffeId, TrustDomain};
///
/// let td = TrustDomain::new("example.org")?;
/// let ca = RotatingCa::new(CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())?);
/// let old_seq = ca.bundle()?.sequence();
///
/// ca.stage(CertificateAuthority::self_signed_for_development(td, &CaOptions::default())?)?;
/// assert_eq!(ca.bundle()?.len(), 2);          // both roots published
/// ca.activate()?;                              // the new CA issues
/// let svid = ca.issue(&SvidRequest::new(SpiffeId::new("spiffe://example.org/web")?))?;
/// ca.retire()?;                                // the old root leaves the bundle
/// assert_eq!(ca.bundle()?.len(), 1);
/// assert_eq!(ca.phase(), RotationPhase::Steady);
/// assert!(ca.bundle()?.sequence() > old_seq);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RotatingCa {
    state: Mutex<State>,
    published: Published<BundleSet, std::convert::Infallible>,
}

struct State {
    active: Arc<CertificateAuthority>,
    staged: Option<Arc<CertificateAuthority>>,
    previous: Option<Arc<CertificateAuthority>>,
    sequence: u64,
}

impl RotatingCa {
    /// Starts in the steady phase with `active` issuing.
    pub fn new(active: CertificateAuthority) -> Self {
        let sequence = active.state().bundle_sequence;
        let state = State {
            active: Arc::new(active),
            staged: None,
            previous: None,
            sequence,
        };
        let set = bundle_set(&state).unwrap_or_default();
        Self {
            state: Mutex::new(state),
            published: Published::new(set),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The CA that issues now.
    pub fn active(&self) -> Arc<CertificateAuthority> {
        self.lock().active.clone()
    }

    /// Issues an SVID with the CA active now, on the calling thread (see
    /// [`CertificateAuthority::issue`]). In async code, its
    /// [`SvidIssuer`](mtls_core::SvidIssuer) implementation issues on a
    /// blocking thread instead.
    pub fn issue(&self, request: &SvidRequest) -> Result<X509Svid, CaError> {
        self.active().issue(request)
    }

    /// Every CA of the rotation: the previous one, the active one, the
    /// staged one (those present).
    pub(crate) fn cas(&self) -> Vec<Arc<CertificateAuthority>> {
        let state = self.lock();
        [
            state.previous.as_ref(),
            Some(&state.active),
            state.staged.as_ref(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }

    /// The current phase.
    pub fn phase(&self) -> RotationPhase {
        let state = self.lock();
        match (&state.staged, &state.previous) {
            (Some(_), _) => RotationPhase::Staged,
            (None, Some(_)) => RotationPhase::Activated,
            (None, None) => RotationPhase::Steady,
        }
    }

    /// Step 1: publishes `next` in the bundle beside the active CA.
    pub fn stage(&self, next: CertificateAuthority) -> Result<(), CaError> {
        let mut state = self.lock();
        if state.staged.is_some() || state.previous.is_some() {
            return Err(CaError::Rotation(
                "a rotation is already in progress; retire the previous CA first",
            ));
        }
        if next.trust_domain() != state.active.trust_domain() {
            return Err(CaError::Rotation("the next CA is for another trust domain"));
        }
        state.staged = Some(Arc::new(next));
        self.publish(&mut state)
    }

    /// Step 2: the staged CA becomes the issuer; the previous one stays in
    /// the bundle.
    pub fn activate(&self) -> Result<(), CaError> {
        let mut state = self.lock();
        let Some(next) = state.staged.take() else {
            return Err(CaError::Rotation(
                "nothing is staged; stage the next CA first",
            ));
        };
        state.previous = Some(std::mem::replace(&mut state.active, next));
        self.publish(&mut state)
    }

    /// Step 3: drops the previous CA's anchors from the bundle.
    pub fn retire(&self) -> Result<(), CaError> {
        let mut state = self.lock();
        if state.previous.take().is_none() {
            return Err(CaError::Rotation(
                "no previous CA to retire; activate the next CA first",
            ));
        }
        self.publish(&mut state)
    }

    /// The trust bundle now: the anchors of every CA still trusted.
    pub fn bundle(&self) -> Result<X509Bundle, CaError> {
        bundle(&self.lock())
    }

    /// The bundles now, as a set (the one trust domain's bundle).
    pub fn bundles(&self) -> BundleSet {
        (*self.published.load()).clone()
    }

    /// Bumped at every step of a rotation.
    pub fn generation(&self) -> u64 {
        self.published.generation()
    }

    /// A receiver of the generation, woken at every bundle change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.published.changes()
    }

    /// Generation and state (a step taken out of order is an error of
    /// that step, never a refused update).
    pub fn status(&self) -> SourceStatus<std::convert::Infallible> {
        self.published.status()
    }

    fn publish(&self, state: &mut State) -> Result<(), CaError> {
        state.sequence += 1;
        let set = bundle_set(state)?;
        self.published.publish(set);
        Ok(())
    }
}

fn bundle(state: &State) -> Result<X509Bundle, CaError> {
    let mut anchors: Vec<CertificateDer<'static>> = Vec::new();
    for ca in [
        state.previous.as_ref(),
        Some(&state.active),
        state.staged.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        anchors.extend(ca.trust_anchors().iter().cloned());
    }
    let mut bundle = X509Bundle::from_authorities(state.active.trust_domain().clone(), anchors)?;
    bundle.set_sequence(Some(state.sequence));
    bundle.set_refresh_hint(Some(BUNDLE_REFRESH_HINT));
    Ok(bundle)
}

fn bundle_set(state: &State) -> Result<BundleSet, CaError> {
    Ok(BundleSet::from(bundle(state)?))
}

impl BundleSource for RotatingCa {
    fn current_bundles(&self) -> BundleSet {
        self.bundles()
    }

    fn generation(&self) -> Option<u64> {
        Some(self.published.generation())
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.published.changes())
    }
}

impl fmt::Debug for RotatingCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatingCa")
            .field("phase", &self.phase())
            .finish_non_exhaustive()
    }
}
