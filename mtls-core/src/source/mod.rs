//! Sources of the current SVID, bundles and CRLs.
//!
//! The rustls configs of this crate never copy an SVID or a bundle set:
//! they ask their sources at every handshake. A source that changes what it
//! returns (a rotated SVID, a new CA in a bundle) changes the next handshake,
//! with no new `ServerConfig` and no restart.
//!
//! # The contract
//!
//! A source that offers a [`generation`](SvidSource::generation) promises
//! that what it returns stays **the same value** until its generation
//! changes. The configs' caches rely on it: the certificate resolver keeps
//! the rustls signing key of the SVID, and the verifier remembers verified
//! chains for resumed sessions, both keyed on the generations of their
//! sources. A source without a generation (`None`, the default for
//! sources written outside this crate) is still correct: the caches then
//! compare what it returns, at some cost per handshake.
//!
//! Every source of this crate is built on [`Published`], so all of them
//! offer the same names: `generation()`, `changes()` (a
//! `tokio::sync::watch` receiver of the generation) and `status()` (a
//! [`SourceStatus`]: generation, failures, last error, state).
//!
//! Fixed values are sources too: [`X509Svid`], [`BundleSet`], [`CrlSet`]
//! and [`JwtBundleSet`] implement these traits by returning a clone of themselves (cheap: they
//! are reference-counted), at a generation that never changes. Values that
//! the application itself replaces go in the settable cells
//! [`SharedSvid`], [`SharedBundles`], [`SharedCrls`] and
//! [`SharedJwtBundles`]; an SVID issued by
//! an [`SvidIssuer`] (mtls-ca's CA, or a remote one) and renewed at about
//! half its lifetime is a [`RenewingSvid`]; bundles of several
//! trust domains from several sources are put together, never merged, by
//! [`ComposedBundles`].
//!
//! JWT-SVIDs to send are request-shaped: a [`JwtSvidSource`] returns a
//! token for the audiences asked for (a [`JwtToken`](crate::JwtToken)),
//! and a [`CachedJwtSvids`] in front of it reuses each token until half its
//! lifetime is left, one fetch at a time per audience set.
//!
//! ```
//! use mtls_core::{BundleSet, BundleSource, TrustDomain, X509Bundle};
//!
//! let set = BundleSet::from(X509Bundle::new(TrustDomain::from_static("example.org")));
//! assert!(set.current_bundles().contains("example.org"));
//! assert_eq!(set.generation(), Some(0));
//! ```

use std::sync::Arc;

use tokio::sync::watch;

use crate::bundle::BundleSet;
use crate::crl::CrlSet;
use crate::jwt::JwtBundleSet;
use crate::svid::X509Svid;

/// Implements a source trait for a type of this crate whose inherent
/// `generation()` and `changes()` track what `$method` returns:
/// `tracked_source!(Type, Trait, fn method(this) -> Output { body })`, with
/// the impl's doc comment, if any, first.
macro_rules! tracked_source {
    ($(#[$doc:meta])* $ty:ty, $trait:ident, fn $method:ident($this:ident) -> $out:ty $body:block) => {
        $(#[$doc])*
        impl $trait for $ty {
            fn $method(&self) -> $out {
                let $this = self;
                $body
            }

            fn generation(&self) -> Option<u64> {
                Some(<$ty>::generation(self))
            }

            fn changes(&self) -> Option<::tokio::sync::watch::Receiver<u64>> {
                Some(<$ty>::changes(self))
            }
        }
    };
}
#[cfg(feature = "federation")]
pub(crate) use tracked_source;

/// The two methods every source trait has beside the one that serves,
/// with their defaults for sources that track no generation:
/// `generation_methods!(serving_method, "what it serves")` in the trait.
macro_rules! generation_methods {
    ($method:ident, $what:literal) => {
        #[doc = concat!(
            "The generation of what [`", stringify!($method), "`](Self::", stringify!($method),
            ")\nreturns: while it is the same, so is ", $what, ". `None` (the default)\n",
            "when the source does not track one."
        )]
        fn generation(&self) -> Option<u64> {
            None
        }

        /// A receiver woken whenever the generation changes, if the source
        /// offers one.
        fn changes(&self) -> Option<watch::Receiver<u64>> {
            None
        }
    };
}

mod compose;
#[cfg(feature = "file-source")]
pub(crate) mod file;
mod issuer;
mod jwt;
#[cfg(feature = "file-source")]
mod load;
mod published;
mod renew;
mod shared;
#[cfg(feature = "spire")]
pub(crate) mod spire;
#[cfg(feature = "spire")]
mod spire_jwt;
mod status;

pub use compose::{ComposeError, ComposedBundles, ComposedBundlesBuilder};
pub use issuer::{IssueError, KeyAlgorithm, SvidIssuer, SvidSpec};
pub use jwt::{
    CachedJwtSvids, JwtSourceError, JwtSvidFuture, JwtSvidSource, DEFAULT_MAX_AUDIENCE_SETS,
    DEFAULT_REFRESH_REMAINING,
};
pub use published::Published;
pub use renew::{RenewingSvid, MAX_RETRY_DELAY, RENEW_AT, RENEW_JITTER};
pub use shared::{SharedBundles, SharedCrls, SharedJwtBundles, SharedSvid};
pub use status::{SourceState, SourceStatus};

/// Where the current SVID comes from.
pub trait SvidSource: Send + Sync {
    /// The SVID to present now, or `None` while there is none yet (the
    /// handshake then fails: nothing is presented).
    fn current_svid(&self) -> Option<X509Svid>;

    generation_methods!(current_svid, "the SVID");
}

/// Where the current trust bundles come from.
pub trait BundleSource: Send + Sync {
    /// The bundles to verify peers against now.
    fn current_bundles(&self) -> BundleSet;

    generation_methods!(current_bundles, "the set");
}

/// Where the current revocation lists come from.
pub trait CrlSource: Send + Sync {
    /// The CRLs to check peers against now.
    fn current_crls(&self) -> CrlSet;

    generation_methods!(current_crls, "the set");
}

/// Where the current JWT bundles come from: the JWT authorities that
/// JWT-SVIDs are validated against
/// ([`JwtSvidValidator::validate_from`](crate::JwtSvidValidator::validate_from)).
///
/// ```
/// use mtls_core::{JwtBundle, JwtBundleSet, JwtBundleSource, TrustDomain};
///
/// let set = JwtBundleSet::from(JwtBundle::new(TrustDomain::from_static("example.org")));
/// assert!(set.current_jwt_bundles().contains("example.org"));
/// assert_eq!(set.generation(), Some(0));
/// ```
pub trait JwtBundleSource: Send + Sync {
    /// The JWT bundles to validate tokens against now.
    fn current_jwt_bundles(&self) -> JwtBundleSet;

    generation_methods!(current_jwt_bundles, "the set");
}

/// A fixed value is a source of itself, at a generation that never
/// changes; an `Arc` of a source serves what the source serves.
macro_rules! value_and_arc_sources {
    ($trait:ident, fn $method:ident($this:ident: $value:ty) -> $out:ty $serve:block) => {
        impl $trait for $value {
            fn $method(&self) -> $out {
                let $this = self;
                $serve
            }

            fn generation(&self) -> Option<u64> {
                Some(0)
            }
        }

        impl<S: $trait + ?Sized> $trait for Arc<S> {
            fn $method(&self) -> $out {
                (**self).$method()
            }

            fn generation(&self) -> Option<u64> {
                $trait::generation(&**self)
            }

            fn changes(&self) -> Option<watch::Receiver<u64>> {
                $trait::changes(&**self)
            }
        }
    };
}

value_and_arc_sources!(
    SvidSource,
    fn current_svid(svid: X509Svid) -> Option<X509Svid> {
        Some(svid.clone())
    }
);
value_and_arc_sources!(
    BundleSource,
    fn current_bundles(set: BundleSet) -> BundleSet {
        set.clone()
    }
);
value_and_arc_sources!(
    JwtBundleSource,
    fn current_jwt_bundles(set: JwtBundleSet) -> JwtBundleSet {
        set.clone()
    }
);
value_and_arc_sources!(
    CrlSource,
    fn current_crls(set: CrlSet) -> CrlSet {
        set.clone()
    }
);

/// A background task of a source, aborted when the source (its last
/// clone) is dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
