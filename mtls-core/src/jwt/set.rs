//! A set of JWT bundles, one per trust domain.

use std::collections::HashMap;
use std::sync::Arc;

use super::JwtBundle;
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
}

crate::bundle::trust_domain_set!(JwtBundleSet of JwtBundle);
