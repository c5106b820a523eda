//! Requests by caller, route and decision
//! ([`REQUESTS`](crate::metrics::REQUESTS)), with bounded label sets: the
//! first `limit` distinct callers and routes get their own label value,
//! later ones are counted as `other`.
//!
//! The counter handles are registered once per (caller, route, decision)
//! and kept: counting a request of an already-seen caller and route costs
//! a read lock and three hash lookups, and allocates nothing.

use std::collections::HashMap;
use std::sync::RwLock;

use metrics::Counter;

use crate::authorize::{Caller, RequestHead};

/// The label value of the callers and routes past the limit, and of
/// routes no rule can name (not in normal form).
pub(crate) const OTHER: &str = "other";

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Verdict {
    Allow,
    Deny,
    /// Audit mode: the policy denies it; it was let through.
    AuditDeny,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::AuditDeny => "audit-deny",
        }
    }
}

/// Index of the `other` label value.
const OTHER_INDEX: u32 = u32::MAX;

/// foldhash, seeded per process: the maps hold at most `limit` peer
/// values each, so flooding them is bounded anyway.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Labels {
    callers: Map<Box<str>, u32>,
    routes: Map<Box<str>, u32>,
    caller_names: Vec<Box<str>>,
    route_names: Vec<Box<str>>,
    counters: Map<(u32, u32, Verdict), Counter>,
}

/// The request counters of one [`PolicyFile`](crate::PolicyFile).
#[derive(Debug)]
pub(crate) struct Traffic {
    limit: usize,
    labels: RwLock<Labels>,
}

impl Traffic {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            labels: RwLock::new(Labels::default()),
        }
    }

    /// Counts one request.
    pub(crate) fn count(&self, caller: Caller<'_>, request: RequestHead<'_>, verdict: Verdict) {
        let caller = caller.spiffe_id().as_str();
        let route = route_label(request);
        {
            let labels = match self.labels.read() {
                Ok(l) => l,
                Err(poisoned) => poisoned.into_inner(),
            };
            let c = index(&labels.callers, caller, self.limit);
            let r = index(&labels.routes, route, self.limit);
            if let (Some(c), Some(r)) = (c, r) {
                if let Some(counter) = labels.counters.get(&(c, r, verdict)) {
                    counter.increment(1);
                    return;
                }
            }
        }
        let mut labels = match self.labels.write() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        let labels = &mut *labels;
        let c = intern(
            &mut labels.callers,
            &mut labels.caller_names,
            caller,
            self.limit,
        );
        let r = intern(
            &mut labels.routes,
            &mut labels.route_names,
            route,
            self.limit,
        );
        let name = |names: &[Box<str>], i: u32| -> String {
            names.get(i as usize).map_or(OTHER, |n| &**n).to_owned()
        };
        let (caller_name, route_name) =
            (name(&labels.caller_names, c), name(&labels.route_names, r));
        labels
            .counters
            .entry((c, r, verdict))
            .or_insert_with(|| {
                ::metrics::counter!(
                    crate::metrics::REQUESTS,
                    "caller" => caller_name,
                    "route" => route_name,
                    "decision" => verdict.as_str()
                )
            })
            .increment(1);
    }
}

/// The index of `value`: its own, `other` past the limit, or `None` when
/// it must be added.
fn index(map: &Map<Box<str>, u32>, value: &str, limit: usize) -> Option<u32> {
    match map.get(value) {
        Some(&i) => Some(i),
        None if map.len() >= limit || value == OTHER => Some(OTHER_INDEX),
        None => None,
    }
}

fn intern(
    map: &mut Map<Box<str>, u32>,
    names: &mut Vec<Box<str>>,
    value: &str,
    limit: usize,
) -> u32 {
    if let Some(i) = index(map, value, limit) {
        return i;
    }
    let Ok(i) = u32::try_from(names.len()) else {
        return OTHER_INDEX;
    };
    names.push(value.into());
    map.insert(value.into(), i);
    i
}

/// The route of a request, as a label: for gRPC, `/package.Service/Method`;
/// axum's route template when the layer runs after routing
/// (`route_layer`); else the path (without query). `other` for a path not
/// in normal form.
pub(crate) fn route_label<'a>(request: RequestHead<'a>) -> &'a str {
    #[cfg(feature = "axum")]
    if let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() {
        return matched.as_str();
    }
    let path = request.path();
    if crate::path::check(path).is_err() {
        return OTHER;
    }
    path
}
