//! Bundles of several trust domains from several sources, never merged.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::{AbortOnDrop, BundleSource};
use crate::bundle::BundleSet;
use crate::id::TrustDomain;

/// A [`BundleSource`] put together from parts, one trust domain each (or
/// every trust domain of a part): "SPIRE for my own trust domain, this
/// file for `legacy.org`, that source for `partner.org`".
///
/// Trust domains are never merged: each comes from exactly one part, so a
/// part can never add authorities to another part's trust domain. A part
/// given for one trust domain contributes only that trust domain's bundle,
/// whatever else it holds; a part given with
/// [`all_trust_domains_of`](ComposedBundlesBuilder::all_trust_domains_of)
/// contributes every trust domain no other part claims (the first such
/// part wins). A trust domain whose part has no bundle for it is absent,
/// so its peers are refused.
///
/// The set is recomputed only when a part's generation changes; between
/// changes every handshake gets the same set, with no allocation, and the
/// configs' caches keep hitting. (A part without a generation makes the
/// set be recomputed at each handshake and compared with the last one.)
/// Inside a tokio runtime, a change of any part also wakes
/// [`changes`](Self::changes) subscribers.
///
/// ```
/// use mtls_core::{BundleSet, BundleSource, ComposedBundles, SharedBundles, TrustDomain, X509Bundle};
///
/// let own = TrustDomain::from_static("example.org");
/// let partner = TrustDomain::from_static("partner.org");
/// let spire_like = SharedBundles::new(BundleSet::from(X509Bundle::new(own.clone())));
/// let partner_file = SharedBundles::new(BundleSet::new());
///
/// let bundles = ComposedBundles::builder()
///     .trust_domain(own.clone(), spire_like.clone())
///     .trust_domain(partner.clone(), partner_file.clone())
///     .build()?;
/// assert!(bundles.current_bundles().contains("example.org"));
/// assert!(!bundles.current_bundles().contains("partner.org"));
///
/// partner_file.set(BundleSet::from(X509Bundle::new(partner)));
/// assert!(bundles.current_bundles().contains("partner.org"));
/// # Ok::<(), mtls_core::ComposeError>(())
/// ```
#[derive(Clone)]
pub struct ComposedBundles {
    inner: Arc<Inner>,
}

struct Inner {
    parts: Vec<Part>,
    cached: ArcSwap<Cached>,
    /// Serializes recomputations and their notifications.
    changes: watch::Sender<u64>,
    rebuild: Mutex<()>,
    /// The watchers of the parts, aborted with the last clone.
    _tasks: Vec<AbortOnDrop>,
}

struct Part {
    /// `None`: every trust domain not claimed by a `Some` part.
    trust_domain: Option<TrustDomain>,
    source: Arc<dyn BundleSource>,
}

struct Cached {
    /// Each part's generation when `set` was computed.
    parts: Vec<Option<u64>>,
    set: BundleSet,
    generation: u64,
}

/// Builds a [`ComposedBundles`].
#[derive(Default)]
#[must_use]
pub struct ComposedBundlesBuilder {
    parts: Vec<Part>,
}

impl fmt::Debug for ComposedBundlesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComposedBundlesBuilder")
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl ComposedBundlesBuilder {
    /// The bundle of `trust_domain` comes from `source` (and nothing else
    /// does).
    pub fn trust_domain(
        mut self,
        trust_domain: TrustDomain,
        source: impl BundleSource + 'static,
    ) -> Self {
        self.parts.push(Part {
            trust_domain: Some(trust_domain),
            source: Arc::new(source),
        });
        self
    }

    /// Every trust domain of `source` that no
    /// [`trust_domain`](Self::trust_domain) part claims (a SPIRE agent's
    /// own and federated bundles, say).
    pub fn all_trust_domains_of(mut self, source: impl BundleSource + 'static) -> Self {
        self.parts.push(Part {
            trust_domain: None,
            source: Arc::new(source),
        });
        self
    }

    /// The composed source; an error when a trust domain is given twice or
    /// no part is given.
    pub fn build(self) -> Result<ComposedBundles, ComposeError> {
        if self.parts.is_empty() {
            return Err(ComposeError::NoParts);
        }
        let mut seen = BTreeSet::new();
        for part in &self.parts {
            if let Some(td) = &part.trust_domain {
                if !seen.insert(td.clone()) {
                    return Err(ComposeError::DuplicateTrustDomain {
                        trust_domain: td.clone(),
                    });
                }
            }
        }
        let parts = self.parts;
        let generations = parts.iter().map(|p| p.source.generation()).collect();
        let set = compose(&parts);
        let (changes, _) = watch::channel(0);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| Inner {
            _tasks: spawn_watchers(&parts, weak),
            cached: ArcSwap::from_pointee(Cached {
                parts: generations,
                set,
                generation: 0,
            }),
            parts,
            changes,
            rebuild: Mutex::new(()),
        });
        Ok(ComposedBundles { inner })
    }
}

/// Inside a tokio runtime, one task per part that offers change
/// notifications, recomputing the set when the part changes.
fn spawn_watchers(parts: &[Part], weak: &Weak<Inner>) -> Vec<AbortOnDrop> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Vec::new();
    };
    parts
        .iter()
        .filter_map(|part| part.source.changes())
        .map(|mut changes| {
            let weak = weak.clone();
            let task = runtime.spawn(async move {
                while changes.changed().await.is_ok() {
                    let Some(inner) = weak.upgrade() else { return };
                    inner.current();
                }
            });
            AbortOnDrop(task.abort_handle())
        })
        .collect()
}

fn compose(parts: &[Part]) -> BundleSet {
    let claimed: BTreeSet<&TrustDomain> = parts
        .iter()
        .filter_map(|p| p.trust_domain.as_ref())
        .collect();
    let mut set = BundleSet::new();
    for part in parts {
        let bundles = part.source.current_bundles();
        match &part.trust_domain {
            Some(td) => {
                if let Some(bundle) = bundles.get(td.name()) {
                    set.insert(bundle.clone());
                }
            }
            None => {
                for bundle in bundles.iter() {
                    let td = bundle.trust_domain();
                    if !claimed.contains(td) && !set.contains(td.name()) {
                        set.insert(bundle.clone());
                    }
                }
            }
        }
    }
    set
}

impl Inner {
    /// Whether `cached` was computed from the parts' current generations.
    fn fresh(&self, cached: &Cached) -> bool {
        cached
            .parts
            .iter()
            .zip(&self.parts)
            .all(|(then, part)| then.is_some() && *then == part.source.generation())
    }

    /// The current set and its generation, recomputed if a part changed.
    fn current(&self) -> (BundleSet, u64) {
        {
            let cached = self.cached.load();
            if self.fresh(&cached) {
                return (cached.set.clone(), cached.generation);
            }
        }
        let _rebuilding = self.rebuild.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = self.cached.load_full();
        if self.fresh(&cached) {
            return (cached.set.clone(), cached.generation);
        }
        // Generations first, then the bundles: a part that changes in
        // between is seen as changed again next time, never as stale.
        let generations: Vec<Option<u64>> =
            self.parts.iter().map(|p| p.source.generation()).collect();
        let set = compose(&self.parts);
        let (set, generation) = if set == cached.set {
            // The same content (a part without a generation, or a change
            // elsewhere in a part): keep the very same set.
            (cached.set.clone(), cached.generation)
        } else {
            (set, cached.generation + 1)
        };
        self.cached.store(Arc::new(Cached {
            parts: generations,
            set: set.clone(),
            generation,
        }));
        if generation != cached.generation {
            self.changes.send_replace(generation);
        }
        (set, generation)
    }
}

impl ComposedBundles {
    /// Starts a composition.
    pub fn builder() -> ComposedBundlesBuilder {
        ComposedBundlesBuilder::default()
    }

    /// The set serving now.
    pub fn bundles(&self) -> BundleSet {
        self.inner.current().0
    }

    /// Bumped whenever the composed set changes.
    pub fn generation(&self) -> u64 {
        self.inner.current().1
    }

    /// A receiver of the generation, woken when the composed set changes
    /// (inside a tokio runtime, as soon as a part changes; otherwise when
    /// the change is noticed at the next handshake).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }
}

impl BundleSource for ComposedBundles {
    fn current_bundles(&self) -> BundleSet {
        self.bundles()
    }

    fn generation(&self) -> Option<u64> {
        let all_tracked = self
            .inner
            .parts
            .iter()
            .all(|p| p.source.generation().is_some());
        all_tracked.then(|| self.inner.current().1)
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.inner.changes.subscribe())
    }
}

impl fmt::Debug for ComposedBundles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .inner
            .parts
            .iter()
            .map(|p| match &p.trust_domain {
                Some(td) => td.to_string(),
                None => "*".to_string(),
            })
            .collect();
        f.debug_struct("ComposedBundles")
            .field("parts", &parts)
            .field("generation", &self.inner.cached.load().generation)
            .finish()
    }
}

/// Why a composition could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// Two parts were given for one trust domain; bundles are never merged.
    #[error("composed bundles: two parts given for trust domain {trust_domain}; bundles are never merged")]
    DuplicateTrustDomain {
        /// The repeated trust domain.
        trust_domain: TrustDomain,
    },
    /// No part was given.
    #[error("composed bundles: no part given")]
    NoParts,
}
