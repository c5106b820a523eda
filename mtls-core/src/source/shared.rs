//! Settable cells: sources whose material the application pushes itself.

use std::convert::Infallible;

use tokio::sync::watch;

use super::published::Published;
use super::status::SourceStatus;
use super::{BundleSource, CrlSource, JwtBundleSource, SvidSource};
use crate::bundle::BundleSet;
use crate::crl::CrlSet;
use crate::jwt::JwtBundleSet;
use crate::svid::X509Svid;

/// Declares a cell over `Published<$value>`: the struct, what it reads
/// (`get`, `generation`, `changes`, `status`) and its source trait.
macro_rules! shared_cell {
    ($(#[$doc:meta])* $name:ident, $value:ty, $trait:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            published: Published<$value, Infallible>,
        }

        impl $name {
            /// The value set now.
            pub fn get(&self) -> $value {
                (*self.published.load()).clone()
            }

            /// Bumped at every change of the value.
            pub fn generation(&self) -> u64 {
                self.published.generation()
            }

            /// A receiver woken at every change.
            pub fn changes(&self) -> watch::Receiver<u64> {
                self.published.changes()
            }

            /// Generation and state (a cell never refuses anything).
            pub fn status(&self) -> SourceStatus<Infallible> {
                self.published.status()
            }
        }

        tracked_source!($name, $trait, fn $method(this) -> $value { this.get() });
    };
}

shared_cell!(
    /// An SVID the application sets (from its own issuer, a secret store...):
    /// an [`SvidSource`] whose every [`set`](Self::set) takes effect at the
    /// next handshake. Clones share the cell.
    ///
    /// ```
    /// use mtls_core::{SharedSvid, SvidSource};
    ///
    /// let cell = SharedSvid::empty();
    /// assert!(cell.current_svid().is_none(), "handshakes fail until an SVID is set");
    /// assert_eq!(SvidSource::generation(&cell), Some(0));
    /// ```
    SharedSvid,
    Option<X509Svid>,
    SvidSource,
    current_svid
);

impl SharedSvid {
    /// A cell holding `svid`.
    pub fn new(svid: X509Svid) -> Self {
        Self {
            published: Published::new(Some(svid)),
        }
    }

    /// A cell holding no SVID yet.
    pub fn empty() -> Self {
        Self {
            published: Published::new(None),
        }
    }

    /// Presents `svid` from the next handshake on.
    pub fn set(&self, svid: X509Svid) {
        self.published.publish(Some(svid));
    }

    /// Presents nothing from the next handshake on.
    pub fn clear(&self) {
        self.published.publish(None);
    }
}

/// A [`shared_cell!`] whose value is set as it is served.
macro_rules! shared_set {
    ($(#[$doc:meta])* $name:ident, $value:ty, $trait:ident, $method:ident) => {
        shared_cell!($(#[$doc])* $name, $value, $trait, $method);

        impl $name {
            /// A cell holding `value`.
            pub fn new(value: $value) -> Self {
                Self {
                    published: Published::new(value),
                }
            }

            /// Serves `value` from the next handshake on.
            pub fn set(&self, value: $value) {
                self.published.publish(value);
            }
        }
    };
}

shared_set!(
    /// Bundles the application sets: a [`BundleSource`] whose every
    /// [`set`](Self::set) takes effect at the next handshake. Clones share
    /// the cell.
    ///
    /// ```
    /// use mtls_core::{BundleSet, BundleSource, SharedBundles, TrustDomain, X509Bundle};
    ///
    /// let cell = SharedBundles::new(BundleSet::new());
    /// cell.set(BundleSet::from(X509Bundle::new(TrustDomain::from_static("example.org"))));
    /// assert!(cell.current_bundles().contains("example.org"));
    /// assert_eq!(cell.generation(), 1);
    /// ```
    SharedBundles,
    BundleSet,
    BundleSource,
    current_bundles
);

shared_set!(
    /// CRLs the application sets: a [`CrlSource`] whose every
    /// [`set`](Self::set) takes effect at the next handshake. Clones share
    /// the cell.
    ///
    /// ```
    /// use mtls_core::{CrlSet, CrlSource, SharedCrls};
    ///
    /// let cell = SharedCrls::new(CrlSet::new());
    /// assert!(cell.current_crls().is_empty());
    /// ```
    SharedCrls,
    CrlSet,
    CrlSource,
    current_crls
);

shared_set!(
    /// JWT bundles the application sets: a [`JwtBundleSource`] whose every
    /// [`set`](Self::set) takes effect at the next validation. Clones share
    /// the cell.
    ///
    /// ```
    /// use mtls_core::{JwtBundle, JwtBundleSet, JwtBundleSource, SharedJwtBundles, TrustDomain};
    ///
    /// let cell = SharedJwtBundles::new(JwtBundleSet::new());
    /// cell.set(JwtBundleSet::from(JwtBundle::new(TrustDomain::from_static("example.org"))));
    /// assert!(cell.current_jwt_bundles().contains("example.org"));
    /// assert_eq!(cell.generation(), 1);
    /// ```
    SharedJwtBundles,
    JwtBundleSet,
    JwtBundleSource,
    current_jwt_bundles
);
