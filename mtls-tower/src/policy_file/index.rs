//! The compiled index of a policy's rules: a trie of path segments whose
//! nodes hold rule indices bucketed by caller (exact ID, trust domain,
//! other). A request looks its caller's ID and trust domain up once (to
//! the small numbers the rules' IDs and trust domains were given), then
//! visits one trie node per path segment (and the capture branch where
//! there is one), and in each node only the rules for its caller's ID and
//! trust domain (a binary search) plus the few with other caller
//! patterns: the cost depends on the path's depth, not on the number of
//! rules.

use std::collections::HashMap;

use mtls_core::SpiffeId;

use super::rules::{CallerPattern, Rule, Seg, TargetKind};

/// Small numbers for the caller IDs and trust domains the rules name, so
/// that a request hashes its caller's ID and trust domain once, not once
/// per trie node.
#[derive(Debug, Default)]
struct Keys {
    ids: HashMap<Box<str>, u32>,
    tds: HashMap<Box<str>, u32>,
}

impl Keys {
    fn key(map: &mut HashMap<Box<str>, u32>, name: &str) -> u32 {
        let next = u32::try_from(map.len()).unwrap_or(u32::MAX);
        *map.entry(name.into()).or_insert(next)
    }
}

/// The caller's keys (none when the policy names neither its ID nor its
/// trust domain).
#[derive(Debug, Clone, Copy)]
struct CallerKeys {
    id: Option<u32>,
    td: Option<u32>,
}

/// Rule indices by caller key, sorted by key.
type Keyed = Vec<(u32, Vec<u32>)>;

#[derive(Debug, Default)]
struct Bucket {
    by_id: Keyed,
    by_td: Keyed,
    other: Vec<u32>,
}

fn keyed_insert(list: &mut Keyed, key: u32, index: u32) {
    let rules = match list.binary_search_by_key(&key, |(k, _)| *k) {
        Ok(at) => &mut list[at].1,
        Err(at) => {
            list.insert(at, (key, Vec::new()));
            &mut list[at].1
        }
    };
    // A rule naming one ID twice is visited once.
    if rules.last() != Some(&index) {
        rules.push(index);
    }
}

#[inline]
fn keyed_get(list: &Keyed, key: Option<u32>) -> &[u32] {
    match key {
        Some(key) if !list.is_empty() => match list.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(at) => &list[at].1,
            Err(_) => &[],
        },
        _ => &[],
    }
}

impl Bucket {
    fn insert(&mut self, index: u32, rule: &Rule, keys: &mut Keys) {
        let keyed = !rule.callers.is_empty()
            && rule
                .callers
                .iter()
                .all(|(c, _)| matches!(c, CallerPattern::Id(_) | CallerPattern::TrustDomain(_)));
        if !keyed {
            self.other.push(index);
            return;
        }
        for (caller, _) in &rule.callers {
            match caller {
                CallerPattern::Id(id) => {
                    let key = Keys::key(&mut keys.ids, id.as_str());
                    keyed_insert(&mut self.by_id, key, index);
                }
                CallerPattern::TrustDomain(td) => {
                    let key = Keys::key(&mut keys.tds, td.name());
                    keyed_insert(&mut self.by_td, key, index);
                }
                _ => {}
            }
        }
    }

    #[inline]
    fn visit(&self, caller: CallerKeys, f: &mut impl FnMut(u32)) {
        for &i in &self.other {
            f(i);
        }
        for &i in keyed_get(&self.by_id, caller.id) {
            f(i);
        }
        for &i in keyed_get(&self.by_td, caller.td) {
            f(i);
        }
    }
}

#[derive(Debug, Default)]
struct Node {
    /// Rules for exactly this path (and it with a trailing `/`).
    here: Bucket,
    /// Prefix rules: this path and everything below.
    below: Bucket,
    /// `{*rest}` rules: everything below, and this path with a trailing `/`.
    rest: Bucket,
    literal: HashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
}

/// Rule indices by path, then caller.
#[derive(Debug, Default)]
pub(crate) struct Index {
    root: Node,
    keys: Keys,
}

impl Index {
    pub(crate) fn new(rules: &[Rule]) -> Self {
        let mut index = Self::default();
        let keys = &mut index.keys;
        for (i, rule) in rules.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if rule.targets.is_empty() {
                index.root.below.insert(i, rule, keys);
            }
            for target in &rule.targets {
                let mut node = &mut index.root;
                let mut rest = false;
                for seg in &target.segments {
                    match seg {
                        Seg::Lit(lit) => node = node.literal.entry(lit.clone()).or_default(),
                        Seg::Param => node = node.param.get_or_insert_with(Default::default),
                        Seg::Rest => rest = true,
                    }
                }
                let bucket = match (rest, target.kind) {
                    (true, _) => &mut node.rest,
                    (false, TargetKind::Prefix) => &mut node.below,
                    (false, _) => &mut node.here,
                };
                bucket.insert(i, rule, keys);
            }
        }
        index
    }

    /// Calls `f` with every rule whose path matches `path` (in normal
    /// form, rule characters decoded) and that may match `caller` (some
    /// are candidates only: the caller's full match is the rule's to
    /// check); a rule may come more than once.
    #[inline]
    pub(crate) fn candidates(&self, path: &str, caller: &SpiffeId, f: &mut impl FnMut(u32)) {
        let trailing = path.ends_with('/');
        let end = path.len() - usize::from(trailing && path.len() > 1);
        let body = path.get(1..end).unwrap_or("");
        let rest = (!body.is_empty()).then_some(body);
        let keys = CallerKeys {
            id: match self.keys.ids.is_empty() {
                true => None,
                false => self.keys.ids.get(caller.as_str()).copied(),
            },
            td: match self.keys.tds.is_empty() {
                true => None,
                false => self.keys.tds.get(caller.trust_domain().name()).copied(),
            },
        };
        walk(&self.root, rest, trailing, keys, f);
    }
}

fn walk(
    node: &Node,
    rest: Option<&str>,
    trailing: bool,
    caller: CallerKeys,
    f: &mut impl FnMut(u32),
) {
    node.below.visit(caller, f);
    let Some(rest) = rest else {
        node.here.visit(caller, f);
        if trailing {
            node.rest.visit(caller, f);
        }
        return;
    };
    node.rest.visit(caller, f);
    let (segment, tail) = match rest.split_once('/') {
        Some((segment, tail)) => (segment, Some(tail)),
        None => (rest, None),
    };
    // Checked first: a lookup in an empty map still hashes the key.
    if !node.literal.is_empty() {
        if let Some(child) = node.literal.get(segment) {
            walk(child, tail, trailing, caller, f);
        }
    }
    if let Some(child) = &node.param {
        walk(child, tail, trailing, caller, f);
    }
}
