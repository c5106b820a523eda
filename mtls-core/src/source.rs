//! Sources of the current SVID, bundles and CRLs.
//!
//! The rustls configs of this crate never copy an SVID or a bundle set:
//! they ask their sources at every handshake. A source that changes what it
//! returns (a rotated SVID, a new CA in a bundle) changes the next handshake,
//! with no new `ServerConfig` and no restart.
//!
//! Fixed values are sources too: [`X509Svid`], [`BundleSet`] and [`CrlSet`]
//! implement these traits by returning a clone of themselves (cheap: they
//! are reference-counted).
//!
//! ```
//! use mtls_core::{BundleSet, BundleSource, TrustDomain, X509Bundle};
//!
//! let set = BundleSet::from(X509Bundle::new(TrustDomain::from_static("example.org")));
//! assert!(set.current_bundles().contains("example.org"));
//! ```

use std::sync::Arc;

use crate::bundle_set::BundleSet;
use crate::crl::CrlSet;
use crate::svid::X509Svid;

/// Where the current SVID comes from.
pub trait SvidSource: Send + Sync {
    /// The SVID to present now, or `None` while there is none yet (the
    /// handshake then fails: nothing is presented).
    fn current_svid(&self) -> Option<X509Svid>;
}

/// Where the current trust bundles come from.
pub trait BundleSource: Send + Sync {
    /// The bundles to verify peers against now.
    fn current_bundles(&self) -> BundleSet;
}

/// Where the current revocation lists come from.
pub trait CrlSource: Send + Sync {
    /// The CRLs to check peers against now.
    fn current_crls(&self) -> CrlSet;
}

impl SvidSource for X509Svid {
    fn current_svid(&self) -> Option<X509Svid> {
        Some(self.clone())
    }
}

impl BundleSource for BundleSet {
    fn current_bundles(&self) -> BundleSet {
        self.clone()
    }
}

impl CrlSource for CrlSet {
    fn current_crls(&self) -> CrlSet {
        self.clone()
    }
}

impl<S: SvidSource + ?Sized> SvidSource for Arc<S> {
    fn current_svid(&self) -> Option<X509Svid> {
        (**self).current_svid()
    }
}

impl<S: BundleSource + ?Sized> BundleSource for Arc<S> {
    fn current_bundles(&self) -> BundleSet {
        (**self).current_bundles()
    }
}

impl<S: CrlSource + ?Sized> CrlSource for Arc<S> {
    fn current_crls(&self) -> CrlSet {
        (**self).current_crls()
    }
}
