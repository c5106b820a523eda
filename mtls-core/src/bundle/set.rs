//! A set of bundles, one per trust domain (SPIFFE federation).

use std::collections::HashMap;
use std::sync::Arc;

use super::X509Bundle;
use crate::id::TrustDomain;

/// The trusted bundles of every trust domain a service talks to: its own
/// and any federated ones.
///
/// Cloning is cheap (a reference count; changes copy on write).
///
/// A `BundleSet` never merges trust domains: a peer of trust domain `B` is
/// verified only against `B`'s bundle, even if `A`'s bundle is also loaded
/// and `A`'s CA signed the peer's certificate (SPIFFE federation,
/// SPIFFE_Trust_Domain_and_Bundle.md section 5). A peer whose trust domain
/// has no bundle here is rejected.
///
/// ```
/// use mtls_core::{BundleSet, TrustDomain, X509Bundle};
///
/// let mut set = BundleSet::new();
/// set.insert(X509Bundle::new(TrustDomain::from_static("example.org")));
/// assert!(set.get("example.org").is_some());
/// assert!(set.get("other.org").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BundleSet {
    // Shared, copy-on-write: a set is cloned at every handshake by sources.
    bundles: Arc<HashMap<TrustDomain, X509Bundle>>,
}

impl BundleSet {
    /// An empty set: trusts no trust domain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `self` and `other` are the same set (not merely equal).
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.bundles, &other.bundles)
    }
}

/// The methods of a set of bundles of one kind (`$bundle`, which has a
/// `trust_domain()`), one per trust domain, in a field `bundles:
/// Arc<HashMap<TrustDomain, $bundle>>`: written once for [`BundleSet`] and
/// [`JwtBundleSet`](crate::JwtBundleSet), so both keep trust domains apart
/// by the same code.
macro_rules! trust_domain_set {
    ($set:ident of $bundle:ident) => {
        impl $set {
            /// A set holding the given bundles; two bundles of one trust
            /// domain is an error (they are never merged).
            pub fn from_bundles<I: IntoIterator<Item = $bundle>>(
                bundles: I,
            ) -> Result<Self, $crate::BundleError> {
                let mut set = Self::new();
                for bundle in bundles {
                    if set.contains(bundle.trust_domain().name()) {
                        return Err($crate::BundleError::DuplicateTrustDomain {
                            trust_domain: bundle.trust_domain().clone(),
                        });
                    }
                    set.insert(bundle);
                }
                Ok(set)
            }

            /// Adds `bundle`, replacing the bundle of its trust domain if
            /// there was one (which is returned).
            pub fn insert(&mut self, bundle: $bundle) -> Option<$bundle> {
                let trust_domain = bundle.trust_domain().clone();
                std::sync::Arc::make_mut(&mut self.bundles).insert(trust_domain, bundle)
            }

            /// Removes the bundle of `trust_domain`.
            pub fn remove(&mut self, trust_domain: &str) -> Option<$bundle> {
                std::sync::Arc::make_mut(&mut self.bundles).remove(trust_domain)
            }

            /// The bundle of `trust_domain`, by name.
            pub fn get(&self, trust_domain: &str) -> Option<&$bundle> {
                self.bundles.get(trust_domain)
            }

            /// Whether a bundle of `trust_domain` is present.
            pub fn contains(&self, trust_domain: &str) -> bool {
                self.bundles.contains_key(trust_domain)
            }

            /// The bundles, in no particular order.
            pub fn iter(&self) -> impl Iterator<Item = &$bundle> + '_ {
                self.bundles.values()
            }

            /// The trust domains that have a bundle, in no particular order.
            pub fn trust_domains(&self) -> impl Iterator<Item = &$crate::TrustDomain> + '_ {
                self.bundles.keys()
            }

            /// The number of trust domains.
            pub fn len(&self) -> usize {
                self.bundles.len()
            }

            /// Whether the set is empty.
            pub fn is_empty(&self) -> bool {
                self.bundles.is_empty()
            }
        }

        impl From<$bundle> for $set {
            fn from(bundle: $bundle) -> Self {
                let mut set = Self::new();
                set.insert(bundle);
                set
            }
        }
    };
}
pub(crate) use trust_domain_set;

trust_domain_set!(BundleSet of X509Bundle);
