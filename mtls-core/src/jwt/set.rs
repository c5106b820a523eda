//! A set of JWT bundles, one per trust domain.

use std::collections::HashMap;
use std::sync::Arc;

use super::JwtBundle;
use crate::bundle::BundleError;
use crate::id::TrustDomain;

/// The JWT bundles of every trust domain whose tokens a service accepts:
/// its own and any federated ones.
///
/// Cloning is cheap (a reference count; changes copy on write).
///
/// A `JwtBundleSet` never merges trust domains: a token whose subject is in
/// trust domain `B` is checked only against `B`'s keys, even if `A`'s bundle
/// holds a key of the same ID that signed it. A token whose subject's trust
/// domain has no bundle here is refused.
///
/// ```
/// use mtls_core::{JwtBundle, JwtBundleSet, TrustDomain};
///
/// let mut set = JwtBundleSet::new();
/// set.insert(JwtBundle::new(TrustDomain::from_static("example.org")));
/// assert!(set.get("example.org").is_some());
/// assert!(set.get("other.org").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JwtBundleSet {
    bundles: Arc<HashMap<TrustDomain, JwtBundle>>,
}

impl JwtBundleSet {
    /// An empty set: trusts no token.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding the given bundles; two bundles of one trust domain is
    /// an error (they are never merged).
    pub fn from_bundles<I: IntoIterator<Item = JwtBundle>>(
        bundles: I,
    ) -> Result<Self, BundleError> {
        let mut set = Self::new();
        for bundle in bundles {
            if set.contains(bundle.trust_domain().name()) {
                return Err(BundleError::DuplicateTrustDomain {
                    trust_domain: bundle.trust_domain().clone(),
                });
            }
            set.insert(bundle);
        }
        Ok(set)
    }

    /// Adds `bundle`, replacing the bundle of its trust domain if there was
    /// one (which is returned).
    pub fn insert(&mut self, bundle: JwtBundle) -> Option<JwtBundle> {
        Arc::make_mut(&mut self.bundles).insert(bundle.trust_domain().clone(), bundle)
    }

    /// Removes the bundle of `trust_domain`.
    pub fn remove(&mut self, trust_domain: &str) -> Option<JwtBundle> {
        Arc::make_mut(&mut self.bundles).remove(trust_domain)
    }

    /// The bundle of `trust_domain`, by name.
    pub fn get(&self, trust_domain: &str) -> Option<&JwtBundle> {
        self.bundles.get(trust_domain)
    }

    /// Whether a bundle of `trust_domain` is present.
    pub fn contains(&self, trust_domain: &str) -> bool {
        self.bundles.contains_key(trust_domain)
    }

    /// The bundles, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &JwtBundle> + '_ {
        self.bundles.values()
    }

    /// The trust domains that have a bundle, in no particular order.
    pub fn trust_domains(&self) -> impl Iterator<Item = &TrustDomain> + '_ {
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

impl From<JwtBundle> for JwtBundleSet {
    fn from(bundle: JwtBundle) -> Self {
        let mut set = Self::new();
        set.insert(bundle);
        set
    }
}
