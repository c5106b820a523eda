//! Learn mode: the distinct calls seen, bounded in memory, and the
//! minimal policy that allows exactly them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use http::Method;
use mtls_core::SpiffeId;

use super::rules::{parse_grpc, parse_path, CallerPattern, Rule, TargetKind, METHODS};
use super::Action;
use crate::authorize::{Caller, RequestHead};

/// One distinct call seen in learn mode: who called which route (or gRPC
/// method) with which HTTP method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Observation {
    caller: SpiffeId,
    method: Method,
    route: String,
    grpc: bool,
}

impl Observation {
    /// The caller.
    pub fn caller(&self) -> &SpiffeId {
        &self.caller
    }

    /// The HTTP method (POST for gRPC).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The route: axum's route template (`MatchedPath`) when the request
    /// had one, else the path; for gRPC, `/package.Service/Method`.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Whether the call was a gRPC call.
    pub fn is_grpc(&self) -> bool {
        self.grpc
    }

    /// The policy file (TOML) allowing exactly `observations` and denying
    /// everything else: what learn mode writes.
    pub fn policy_toml(observations: &[Observation]) -> String {
        let mut sorted = observations.to_vec();
        sorted.sort();
        sorted.dedup();
        policy_toml(&sorted, 0)
    }
}

/// The calls a learned policy allows: `None` unless every rule has the
/// shape learn mode writes (`allow`, exact caller IDs, one method and one
/// path, or one gRPC method).
pub(crate) fn from_rules(rules: &[Rule]) -> Option<Vec<Observation>> {
    let mut out = Vec::new();
    for rule in rules {
        let [target] = rule.targets.as_slice() else {
            return None;
        };
        let method = match (rule.methods, target.grpc) {
            (None, true) => Method::POST,
            (Some(bits), false) => METHODS
                .iter()
                .enumerate()
                .find(|(i, _)| bits == 1 << i)
                .map(|(_, m)| m.clone())?,
            _ => return None,
        };
        if rule.action != Action::Allow
            || rule.callers.is_empty()
            || !rule.not_callers.is_empty()
            || rule.authn.is_some()
            || (target.kind == TargetKind::Prefix && !target.grpc)
        {
            return None;
        }
        for (caller, _) in &rule.callers {
            let CallerPattern::Id(caller) = caller else {
                return None;
            };
            out.push(Observation {
                caller: caller.clone(),
                method: method.clone(),
                route: target.text.clone(),
                grpc: target.grpc,
            });
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

#[derive(Debug)]
pub(crate) struct Learner {
    seen: Mutex<HashSet<Observation>>,
    max: usize,
    dropped: AtomicU64,
}

impl Learner {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            seen: Mutex::new(HashSet::new()),
            max,
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, caller: Caller<'_>, request: RequestHead<'_>) {
        let Some(observation) = observe(caller, request) else {
            return;
        };
        let mut seen = match self.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.contains(&observation) {
            return;
        }
        if seen.len() >= self.max {
            drop(seen);
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    max = self.max,
                    "mtls: policy learn mode: observation limit reached; new calls are allowed but no longer recorded"
                );
            }
            ::metrics::counter!(crate::metrics::POLICY_LEARN_DROPPED).increment(1);
            return;
        }
        tracing::debug!(caller = %observation.caller, method = %observation.method, route = %observation.route, "mtls: policy learn mode: new call");
        seen.insert(observation);
    }

    pub(crate) fn observations(&self) -> Vec<Observation> {
        let seen = match self.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out: Vec<Observation> = seen.iter().cloned().collect();
        out.sort();
        out
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The observation of a request, if its route can be written in a
/// policy file.
fn observe(caller: Caller<'_>, request: RequestHead<'_>) -> Option<Observation> {
    let raw = crate::path::decode_rule_chars(request.path());
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.len() >= 16 && v[..16].eq_ignore_ascii_case(b"application/grpc")
        });
    let observation = |route: &str, grpc: bool| Observation {
        caller: caller.spiffe_id().clone(),
        method: request.method().clone(),
        route: route.to_owned(),
        grpc,
    };
    if grpc && parse_grpc(&raw).is_ok() {
        return Some(observation(&raw, true));
    }
    #[cfg(feature = "axum")]
    if let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() {
        if parse_path(matched.as_str()).is_ok() {
            return Some(observation(matched.as_str(), false));
        }
    }
    let trimmed = match raw.strip_suffix('/') {
        Some(t) if !t.is_empty() => t,
        _ => &raw,
    };
    // Literal segments only: a raw path holding `{id}` is no template.
    if parse_path(trimmed).is_ok_and(|t| t.kind == TargetKind::Exact) {
        return Some(observation(trimmed, false));
    }
    tracing::debug!(path = %request.path(), "mtls: policy learn mode: a path no rule can name literally; not recorded");
    None
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The minimal policy allowing exactly `observations`: one `allow` rule
/// per route and method (per gRPC method), listing its callers.
pub(crate) fn policy_toml(observations: &[Observation], dropped: u64) -> String {
    // (grpc, route, method) -> callers, sorted for a stable file.
    let mut rules: BTreeMap<(bool, &str, &str), BTreeSet<&str>> = BTreeMap::new();
    for o in observations {
        rules
            .entry((o.grpc, &o.route, o.method.as_str()))
            .or_default()
            .insert(o.caller.as_str());
    }
    let mut out = String::new();
    out.push_str("# Learned by mtls-tower's policy learn mode: allows exactly the calls\n");
    let _ = writeln!(
        out,
        "# observed ({} distinct), denies everything else.",
        observations.len()
    );
    if dropped > 0 {
        let _ = writeln!(
            out,
            "# WARNING: {dropped} calls were not recorded (observation limit reached)."
        );
    }
    out.push_str("version = 1\n");
    for (n, ((grpc, route, method), callers)) in rules.iter().enumerate() {
        let callers: Vec<String> = callers.iter().map(|c| quoted(c)).collect();
        let _ = write!(
            out,
            "\n[[rule]]\nname = \"learned-{}\"\naction = \"allow\"\ncallers = [{}]\n",
            n + 1,
            callers.join(", ")
        );
        if *grpc {
            let _ = writeln!(out, "grpc = [{}]", quoted(route));
        } else {
            let _ = writeln!(out, "methods = [{}]", quoted(method));
            let _ = writeln!(out, "paths = [{}]", quoted(route));
        }
    }
    out
}
