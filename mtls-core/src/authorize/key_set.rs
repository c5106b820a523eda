//! The authorizers' sets of keys (SPIFFE IDs, trust domains, ID prefixes).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

/// Up to this many keys, a set is a list compared in turn: a handful of
/// length checks and at most one byte comparison that succeeds, cheaper
/// than hashing the peer's ID (about 130 instructions saved per request
/// on a two-ID rule, by callgrind). Above it, a hash set.
const FEW: usize = 8;

/// A set built from configuration and only looked up afterwards: a list
/// for a few keys, foldhash above (several times faster than SipHash on
/// short keys; requests only look keys up, so a peer cannot degrade it).
#[derive(Clone)]
pub(super) enum KeySet<T> {
    /// At most [`FEW`] distinct keys.
    Few(Box<[T]>),
    /// More.
    Many(HashSet<T, foldhash::fast::RandomState>),
}

impl<T: Eq + Hash> KeySet<T> {
    /// Whether `key` is in the set.
    #[inline]
    pub(super) fn contains<Q>(&self, key: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            Self::Few(keys) => keys.iter().any(|k| k.borrow() == key),
            Self::Many(set) => set.contains(key),
        }
    }
}

impl<T: Eq + Hash> FromIterator<T> for KeySet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(keys: I) -> Self {
        let set: HashSet<T, foldhash::fast::RandomState> = keys.into_iter().collect();
        if set.len() <= FEW {
            Self::Few(set.into_iter().collect())
        } else {
            Self::Many(set)
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for KeySet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Few(keys) => f.debug_set().entries(keys.iter()).finish(),
            Self::Many(set) => f.debug_set().entries(set.iter()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_and_many_hold_exactly_their_keys() {
        for n in [0, 1, 2, FEW, FEW + 1, 100] {
            let set: KeySet<Box<str>> = (0..n)
                .chain(0..n) // duplicates count once
                .map(|i| format!("spiffe://example.org/w{i}").into_boxed_str())
                .collect();
            assert_eq!(matches!(set, KeySet::Few(_)), n <= FEW, "n = {n}");
            for i in 0..n {
                assert!(set.contains(format!("spiffe://example.org/w{i}").as_str()));
            }
            assert!(!set.contains("spiffe://example.org/w"));
            assert!(!set.contains(format!("spiffe://example.org/w{n}").as_str()));
            assert!(!set.contains(""));
        }
    }
}
