//! Authorizers: which authenticated peers may connect.
//!
//! An [`Authorizer`] looks at a peer's verified SPIFFE ID and answers
//! `Ok(())` or a [`Denied`] with the reason, never a bare `bool`
//! (go-spiffe's `tlsconfig.Authorizer`). The constructors in this module
//! build the common ones; the combinators of [`AuthorizerExt`] compose them.
//!
//! ```
//! use mtls_core::{authorize, Authorizer, AuthorizerExt, SpiffeId, TrustDomain};
//!
//! let prod = TrustDomain::from_static("prod.example.org");
//! let policy = authorize::member_of(prod.clone())
//!     .and(authorize::path_prefix(SpiffeId::from_static("spiffe://prod.example.org/ns/payments")))
//!     .and(authorize::exact(SpiffeId::from_static("spiffe://prod.example.org/ns/payments/sa/debug")).not());
//!
//! let web = SpiffeId::from_static("spiffe://prod.example.org/ns/payments/sa/web");
//! let debug = SpiffeId::from_static("spiffe://prod.example.org/ns/payments/sa/debug");
//! let other = SpiffeId::from_static("spiffe://prod.example.org/ns/paymentsx/sa/web");
//! assert!(policy.authorize(&web).is_ok());
//! assert!(policy.authorize(&debug).is_err());
//! let denied = policy.authorize(&other).unwrap_err();
//! assert!(denied.reason().contains("not under"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::id::{SpiffeId, TrustDomain};
use key_set::KeySet;

mod key_set;

/// Decides whether an authenticated peer is allowed.
pub trait Authorizer: Send + Sync {
    /// `Ok(())` to allow `peer`, or [`Denied`] with the reason.
    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied>;

    /// Whether `peer` is allowed, without building a refusal's reason (the
    /// combinators use it to skip formatting reasons nobody reads). Must
    /// agree with [`authorize`](Authorizer::authorize).
    fn allows(&self, peer: &SpiffeId) -> bool {
        self.authorize(peer).is_ok()
    }
}

/// A refusal by an [`Authorizer`], with the peer and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("authorize: {peer} denied: {reason}")]
pub struct Denied {
    peer: SpiffeId,
    reason: Cow<'static, str>,
}

impl Denied {
    /// A refusal of `peer` for `reason`.
    pub fn new(peer: &SpiffeId, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            peer: peer.clone(),
            reason: reason.into(),
        }
    }

    /// The refused peer.
    pub fn peer(&self) -> &SpiffeId {
        &self.peer
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl<A: Authorizer + ?Sized> Authorizer for Arc<A> {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        (**self).authorize(peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        (**self).allows(peer)
    }
}

impl<A: Authorizer + ?Sized> Authorizer for Box<A> {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        (**self).authorize(peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        (**self).allows(peer)
    }
}

/// Combinators for every [`Authorizer`].
pub trait AuthorizerExt: Authorizer + Sized {
    /// Allows a peer only if both `self` and `other` allow it.
    fn and<B: Authorizer>(self, other: B) -> And<Self, B> {
        And(self, other)
    }

    /// Allows a peer if `self` or `other` allows it.
    fn or<B: Authorizer>(self, other: B) -> Or<Self, B> {
        Or(self, other)
    }

    /// Allows exactly the peers `self` refuses.
    fn not(self) -> Not<Self> {
        Not(self)
    }

    /// Boxes the authorizer behind an `Arc`, for configs and layers.
    fn shared(self) -> Arc<dyn Authorizer>
    where
        Self: 'static,
    {
        Arc::new(self)
    }
}

impl<A: Authorizer> AuthorizerExt for A {}

/// Allows every authenticated peer; see [`any`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Any;

/// Allows every peer whose SVID verified (against the bundle of its own
/// trust domain). Use it only when every trust domain in the bundle set is
/// fully trusted.
pub fn any() -> Any {
    Any
}

impl Authorizer for Any {
    fn authorize(&self, _peer: &SpiffeId) -> Result<(), Denied> {
        Ok(())
    }
}

/// Allows one SPIFFE ID; see [`exact`].
#[derive(Debug, Clone)]
pub struct Exact(SpiffeId);

/// Allows exactly `id`.
pub fn exact(id: SpiffeId) -> Exact {
    Exact(id)
}

impl Authorizer for Exact {
    fn allows(&self, peer: &SpiffeId) -> bool {
        *peer == self.0
    }

    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        if *peer == self.0 {
            Ok(())
        } else {
            Err(Denied::new(peer, format!("is not {}", self.0)))
        }
    }
}

/// Allows a set of SPIFFE IDs; see [`one_of`].
#[derive(Debug, Clone)]
pub struct OneOf(KeySet<SpiffeId>);

/// Allows any of `ids`: a few comparisons up to eight IDs, one hash
/// lookup above, however many there are.
pub fn one_of<I: IntoIterator<Item = SpiffeId>>(ids: I) -> OneOf {
    OneOf(ids.into_iter().collect())
}

impl Authorizer for OneOf {
    fn allows(&self, peer: &SpiffeId) -> bool {
        self.0.contains(peer)
    }

    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        if self.0.contains(peer) {
            Ok(())
        } else {
            Err(Denied::new(peer, "is not one of the allowed IDs"))
        }
    }
}

/// Allows the members of trust domains; see [`member_of`].
#[derive(Debug, Clone)]
pub struct MemberOf(KeySet<TrustDomain>);

/// Allows every ID of `trust_domain`.
pub fn member_of(trust_domain: TrustDomain) -> MemberOf {
    MemberOf(KeySet::from_iter([trust_domain]))
}

/// Allows every ID of any of `trust_domains`.
pub fn member_of_any<I: IntoIterator<Item = TrustDomain>>(trust_domains: I) -> MemberOf {
    MemberOf(trust_domains.into_iter().collect())
}

impl Authorizer for MemberOf {
    fn allows(&self, peer: &SpiffeId) -> bool {
        self.0.contains(peer.trust_domain())
    }

    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        if self.0.contains(peer.trust_domain()) {
            Ok(())
        } else {
            Err(Denied::new(
                peer,
                format!("trust domain {} is not allowed", peer.trust_domain()),
            ))
        }
    }
}

/// Allows IDs under path prefixes; see [`path_prefix`].
#[derive(Debug, Clone)]
pub struct PathPrefix(KeySet<Box<str>>);

/// Allows `prefix` and every ID below it on a segment boundary:
/// `spiffe://td/ns/a` allows `spiffe://td/ns/a` and `spiffe://td/ns/a/x`,
/// but not `spiffe://td/ns/ab`, nor any ID of another trust domain.
pub fn path_prefix(prefix: SpiffeId) -> PathPrefix {
    path_prefixes([prefix])
}

/// Allows IDs under any of `prefixes` (see [`path_prefix`]). The cost is
/// one hash lookup per segment of the peer's path, however many prefixes.
pub fn path_prefixes<I: IntoIterator<Item = SpiffeId>>(prefixes: I) -> PathPrefix {
    // Stored as strings of valid IDs, so that lookups by `&str` of the
    // peer's ancestors need no parsing and no allocation.
    PathPrefix(
        prefixes
            .into_iter()
            .map(|id| Box::from(id.as_str()))
            .collect(),
    )
}

impl Authorizer for PathPrefix {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        let uri = peer.as_str();
        let root = uri.len() - peer.path().len();
        // Every ancestor of the peer, itself included: cut at each '/'.
        let ancestors = uri[root..]
            .match_indices('/')
            .map(|(i, _)| &uri[..root + i])
            .chain(std::iter::once(uri));
        for ancestor in ancestors {
            if self.0.contains(ancestor) {
                return Ok(());
            }
        }
        Err(Denied::new(peer, "is not under an allowed path prefix"))
    }
}

/// Allows a peer that both inner authorizers allow; see [`AuthorizerExt::and`].
#[derive(Debug, Clone)]
pub struct And<A, B>(A, B);

impl<A: Authorizer, B: Authorizer> Authorizer for And<A, B> {
    fn allows(&self, peer: &SpiffeId) -> bool {
        self.0.allows(peer) && self.1.allows(peer)
    }

    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        self.0.authorize(peer)?;
        self.1.authorize(peer)
    }
}

/// Allows a peer that either inner authorizer allows; see [`AuthorizerExt::or`].
#[derive(Debug, Clone)]
pub struct Or<A, B>(A, B);

impl<A: Authorizer, B: Authorizer> Authorizer for Or<A, B> {
    fn allows(&self, peer: &SpiffeId) -> bool {
        self.0.allows(peer) || self.1.allows(peer)
    }

    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        // Reasons are built only when both sides refuse.
        if self.allows(peer) {
            return Ok(());
        }
        match self.0.authorize(peer) {
            Ok(()) => Ok(()),
            Err(first) => self.1.authorize(peer).map_err(|second| {
                Denied::new(peer, format!("{}; and {}", first.reason, second.reason))
            }),
        }
    }
}

/// Inverts an authorizer; see [`AuthorizerExt::not`].
#[derive(Debug, Clone)]
pub struct Not<A>(A);

impl<A: Authorizer> Authorizer for Not<A> {
    fn allows(&self, peer: &SpiffeId) -> bool {
        !self.0.allows(peer)
    }

    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        if self.0.allows(peer) {
            Err(Denied::new(peer, "is explicitly excluded"))
        } else {
            Ok(())
        }
    }
}

/// An authorizer from a closure; see [`from_fn`].
#[derive(Clone)]
pub struct FromFn<F>(F);

/// An authorizer from a closure.
///
/// ```
/// use mtls_core::{authorize, Authorizer, Denied, SpiffeId};
///
/// let no_debug = authorize::from_fn(|peer: &SpiffeId| {
///     if peer.segments().any(|s| s == "debug") {
///         Err(Denied::new(peer, "debug workloads may not connect"))
///     } else {
///         Ok(())
///     }
/// });
/// assert!(no_debug.authorize(&SpiffeId::from_static("spiffe://td/debug/x")).is_err());
/// ```
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: Fn(&SpiffeId) -> Result<(), Denied> + Send + Sync,
{
    FromFn(f)
}

impl<F> Authorizer for FromFn<F>
where
    F: Fn(&SpiffeId) -> Result<(), Denied> + Send + Sync,
{
    fn authorize(&self, peer: &SpiffeId) -> Result<(), Denied> {
        (self.0)(peer)
    }
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFn(..)")
    }
}
