//! What a source reports about itself.

use crate::verify::VerifyError;

/// The state of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceState {
    /// Serving material.
    Ready,
    /// The upstream withdrew the material (a SPIRE agent that no longer
    /// holds an identity for this workload); what is served then depends
    /// on the source's withdrawal policy.
    Withdrawn,
    /// The source stopped for good (its upstream closed, or it was shut
    /// down); it keeps serving its last good material.
    Closed,
}

/// What a source is serving and how its last updates went: the same shape
/// for every source of this crate (`status()`).
///
/// ```
/// use mtls_core::{SharedBundles, BundleSet, SourceState};
///
/// let cell = SharedBundles::new(BundleSet::new());
/// cell.set(BundleSet::new());
/// let status = cell.status();
/// assert_eq!(status.generation, 1);
/// assert_eq!(status.failures, 0);
/// assert_eq!(status.state, SourceState::Ready);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SourceStatus<E> {
    /// Bumped at every change of what the source serves (0: the first
    /// material).
    pub generation: u64,
    /// How many updates were refused (the last good material kept
    /// serving each time).
    pub failures: u64,
    /// Why an update was last refused (kept after later successes:
    /// compare `failures` to see whether it is new).
    pub last_error: Option<E>,
    /// Ready, withdrawn or closed.
    pub state: SourceState,
    /// Set when the CRLs this source serves revoke the SVID it serves (or
    /// an intermediate of its chain): why. The SVID keeps serving until a
    /// replacement arrives; peers holding the same CRLs refuse it.
    pub svid_revoked: Option<VerifyError>,
}
