//! The compiled index of a policy's rules: a trie of path segments whose
//! nodes hold rule indices bucketed by caller (exact ID, trust domain,
//! other). A request visits one trie node per path segment (and the
//! capture branch where there is one), and in each node only the rules
//! for its caller's ID and trust domain plus the few with other caller
//! patterns: the cost depends on the path's depth, not on the number of
//! rules.

use std::collections::HashMap;

use mtls_core::SpiffeId;

use super::rules::{CallerPattern, Rule, Seg, TargetKind};

#[derive(Debug, Default)]
struct Bucket {
    by_id: HashMap<Box<str>, Vec<u32>>,
    by_td: HashMap<Box<str>, Vec<u32>>,
    other: Vec<u32>,
}

impl Bucket {
    fn insert(&mut self, index: u32, rule: &Rule) {
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
            let list = match caller {
                CallerPattern::Id(id) => self.by_id.entry(id.as_str().into()).or_default(),
                CallerPattern::TrustDomain(td) => self.by_td.entry(td.name().into()).or_default(),
                _ => continue,
            };
            // A rule naming one ID twice is visited once.
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
    }

    #[inline]
    fn visit(&self, caller: &SpiffeId, f: &mut impl FnMut(u32)) {
        for &i in &self.other {
            f(i);
        }
        if !self.by_id.is_empty() {
            if let Some(list) = self.by_id.get(caller.as_str()) {
                list.iter().copied().for_each(&mut *f);
            }
        }
        if !self.by_td.is_empty() {
            if let Some(list) = self.by_td.get(caller.trust_domain().name()) {
                list.iter().copied().for_each(&mut *f);
            }
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
}

impl Index {
    pub(crate) fn new(rules: &[Rule]) -> Self {
        let mut index = Self::default();
        for (i, rule) in rules.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if rule.targets.is_empty() {
                index.root.below.insert(i, rule);
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
                bucket.insert(i, rule);
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
        walk(&self.root, rest, trailing, caller, f);
    }
}

fn walk(
    node: &Node,
    rest: Option<&str>,
    trailing: bool,
    caller: &SpiffeId,
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
