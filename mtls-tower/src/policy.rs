//! Route policies: which peer may call which method and path.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use http::Method;
use mtls_core::{Authorizer, Denied, SpiffeId};

use crate::authorize::{AuthorizeRequest, Caller, Denial, RequestHead};
use crate::path;

/// An ordered list of rules, each an [`Authorizer`] for a path prefix and
/// optionally some methods (the usual [`AuthorizeRequest`] of
/// [`AuthorizeLayer`](crate::AuthorizeLayer)): the **first** rule whose path prefix and method
/// match the request decides, by its authorizer; a request no rule matches
/// is denied (default deny).
///
/// A rule for `GET` also governs `HEAD` (routers run GET handlers for HEAD
/// requests, so HEAD must not sidestep a GET rule).
///
/// Path prefixes match on segment boundaries: `/orders` matches `/orders`,
/// `/orders/` and `/orders/7`, not `/ordersx`; `/` matches every path.
/// Matching costs one hash lookup per segment of the request path, however
/// many rules there are.
///
/// # The path decided on is the path handlers see
///
/// Routers match the raw path but path extractors percent-decode it (axum's
/// `Path` gives `name = "admin"` for `/users/%61dmin` on `/users/{name}`),
/// so a policy on raw segments could judge another resource than the one
/// served. Hence:
///
/// - **Request paths not in normal form are refused** (by
///   [`decide`](Self::decide), and with 400 / gRPC `INVALID_ARGUMENT` by
///   [`AuthorizeLayer`](crate::AuthorizeLayer) before the request reaches
///   the router): a path not starting with `/`; an empty segment (`//`; one
///   trailing `/` is allowed, and `/users/admin/` is governed by the rule
///   for `/users/admin`); a `.` or `..` segment; a `\`; malformed
///   percent-encoding (`%zz`, `%4`); a percent-encoded unreserved character
///   (`ALPHA / DIGIT / - . _ ~`, RFC 3986 §2.3, any case of hex, so also
///   encoded dot segments), `/` (`%2F`) or `\` (`%5C`); a `%25` followed
///   by two hex digits (double encoding).
/// - **Rule prefixes hold only literal path characters**: `/` and RFC 3986
///   `pchar` without percent-encoding — letters, digits, `-._~`,
///   `!$&'()*+,;=`, `:` and `@` — no dot or empty segment, and no route
///   syntax (`{id}`, `{*rest}`, `:id`, `*rest`); [`build`](RoutePolicyBuilder::build)
///   refuses anything else.
/// - **Matching is on the path with its encoded rule characters decoded**
///   (`/v1%3Abatch` is matched as `/v1:batch`); other encoded octets stay
///   encoded (`/a%20b` is matched as is). A segment holding one of those
///   can match no rule segment, raw (it holds `%`) or decoded (it holds a
///   character no rule holds), so the policy and a handler that decodes
///   agree on which rule segment, if any, a request segment is.
///
/// ```
/// use http::Method;
/// use mtls_core::{authorize, SpiffeId, TrustDomain};
/// use mtls_tower::RoutePolicy;
///
/// let frontend = SpiffeId::new("spiffe://example.org/frontend")?;
/// let policy = RoutePolicy::builder()
///     .route("/orders", authorize::exact(frontend.clone()))
///     .route_methods([Method::GET], "/health", authorize::member_of(TrustDomain::new("example.org")?))
///     .build()?;
///
/// let intruder = SpiffeId::new("spiffe://example.org/intruder")?;
/// assert!(policy.decide(&Method::POST, "/orders/7", &frontend).is_ok());
/// assert!(policy.decide(&Method::POST, "/orders/7", &intruder).is_err());
/// assert!(policy.decide(&Method::GET, "/health", &intruder).is_ok());
/// assert!(policy.decide(&Method::POST, "/health", &intruder).is_err()); // no rule: default deny
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RoutePolicy {
    inner: Arc<Inner>,
}

struct Inner {
    rules: Vec<Rule>,
    /// Rule indices by prefix, ascending; foldhash (requests only look
    /// up, so a peer cannot degrade the table). Without `/`, which every
    /// path has: see `root`.
    by_prefix: HashMap<Box<str>, Vec<usize>, foldhash::fast::RandomState>,
    /// The indices of the rules for `/`, ascending: tried for every
    /// request, so not hashed.
    root: Vec<usize>,
}

struct Rule {
    prefix: Box<str>,
    methods: Option<Vec<Method>>,
    authorizer: Arc<dyn Authorizer>,
}

impl RoutePolicy {
    /// Starts an empty policy (which denies everything).
    pub fn builder() -> RoutePolicyBuilder {
        RoutePolicyBuilder { rules: Vec::new() }
    }

    /// A policy with one rule: every path, every method, by `authorizer`.
    pub fn allow_all_paths(authorizer: impl Authorizer + 'static) -> Self {
        Self::from_rules(vec![Rule {
            prefix: "/".into(),
            methods: None,
            authorizer: Arc::new(authorizer),
        }])
    }

    fn from_rules(rules: Vec<Rule>) -> Self {
        let mut by_prefix: HashMap<Box<str>, Vec<usize>, foldhash::fast::RandomState> =
            HashMap::default();
        let mut root = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if &*rule.prefix == "/" {
                root.push(i);
            } else {
                by_prefix.entry(rule.prefix.clone()).or_default().push(i);
            }
        }
        Self {
            inner: Arc::new(Inner {
                rules,
                by_prefix,
                root,
            }),
        }
    }

    /// Whether `peer` may call `method` on `path` (the raw request path,
    /// without query). A path not in normal form is denied whatever the
    /// rules (see the type's documentation).
    pub fn decide(&self, method: &Method, path: &str, peer: &SpiffeId) -> Result<(), Denied> {
        match path::check(path) {
            Ok(normal) => self.decide_normal(method, path, normal, peer),
            Err(invalid) => Err(Denied::new(peer, invalid.to_string())),
        }
    }

    /// [`decide`](Self::decide) on a path already known to be in normal
    /// form.
    fn decide_normal(
        &self,
        method: &Method,
        path: &str,
        normal: path::Normal,
        peer: &SpiffeId,
    ) -> Result<(), Denied> {
        match self.first_match(method, &normal.decode_rule_chars(path)) {
            Some(rule) => rule.authorizer.authorize(peer),
            None => Err(Denied::new(peer, "no route rule matches")),
        }
    }

    fn first_match(&self, method: &Method, path: &str) -> Option<&Rule> {
        let inner = &*self.inner;
        let mut best: Option<usize> = None;
        let mut consider = |indices: Option<&Vec<usize>>| {
            if let Some(indices) = indices {
                let first = indices.iter().copied().find(|&i| {
                    inner.rules[i].methods.as_ref().is_none_or(|m| {
                        // HEAD is GET without a body, and routers (axum's
                        // `get`) run the GET handler for it: a rule for GET
                        // governs HEAD too, or HEAD could sidestep it.
                        m.contains(method) || (*method == Method::HEAD && m.contains(&Method::GET))
                    })
                });
                if let Some(i) = first {
                    best = Some(best.map_or(i, |b| b.min(i)));
                }
            }
        };
        consider(Some(&inner.root));
        // Every segment-boundary prefix of the path, and the path itself
        // (`/` is ASCII: each cut is a char boundary).
        for (i, &b) in path.as_bytes().iter().enumerate().skip(1) {
            if b == b'/' {
                consider(inner.by_prefix.get(&path[..i]));
            }
        }
        if path.len() > 1 && !path.ends_with('/') {
            consider(inner.by_prefix.get(path));
        }
        best.map(|i| &inner.rules[i])
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.inner.rules.len()
    }

    /// Whether there is no rule (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.inner.rules.is_empty()
    }
}

/// The caller's SPIFFE ID, the request's method and path, by
/// [`decide`](RoutePolicy::decide).
impl AuthorizeRequest for RoutePolicy {
    #[inline]
    fn authorize_request(
        &self,
        caller: Caller<'_>,
        request: RequestHead<'_>,
    ) -> Result<(), Denial> {
        let (method, path, peer) = (request.method(), request.path(), caller.spiffe_id());
        if let Some(normal) = request.path_checked {
            self.decide_normal(method, path, normal, peer)
        } else {
            self.decide(method, path, peer)
        }
        .map_err(Denial::from)
    }
}

impl fmt::Debug for RoutePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for rule in &self.inner.rules {
            list.entry(&format_args!("{:?} {}", rule.methods, rule.prefix));
        }
        list.finish()
    }
}

/// Builds a [`RoutePolicy`]; rules are tried in the order added.
#[must_use]
pub struct RoutePolicyBuilder {
    rules: Vec<Result<Rule, PolicyError>>,
}

impl RoutePolicyBuilder {
    /// A rule for every method on `prefix`.
    pub fn route(self, prefix: &str, authorizer: impl Authorizer + 'static) -> Self {
        self.push(prefix, None, Arc::new(authorizer))
    }

    /// A rule for some methods on `prefix`.
    pub fn route_methods(
        self,
        methods: impl IntoIterator<Item = Method>,
        prefix: &str,
        authorizer: impl Authorizer + 'static,
    ) -> Self {
        self.push(
            prefix,
            Some(methods.into_iter().collect()),
            Arc::new(authorizer),
        )
    }

    /// A rule from a shared authorizer.
    pub fn route_shared(
        self,
        methods: Option<Vec<Method>>,
        prefix: &str,
        authorizer: Arc<dyn Authorizer>,
    ) -> Self {
        self.push(prefix, methods, authorizer)
    }

    fn push(
        mut self,
        prefix: &str,
        methods: Option<Vec<Method>>,
        authorizer: Arc<dyn Authorizer>,
    ) -> Self {
        let rule = check_prefix(prefix).map(|prefix| Rule {
            prefix,
            methods,
            authorizer,
        });
        self.rules.push(rule);
        self
    }

    /// The policy; fails on the first invalid path prefix.
    pub fn build(self) -> Result<RoutePolicy, PolicyError> {
        let rules = self.rules.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(RoutePolicy::from_rules(rules))
    }
}

impl fmt::Debug for RoutePolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutePolicyBuilder")
            .field("rules", &self.rules.len())
            .finish()
    }
}

fn check_prefix(prefix: &str) -> Result<Box<str>, PolicyError> {
    let shown = |s: &str| s.chars().take(128).collect::<String>();
    let bad = |reason: &'static str| PolicyError::InvalidPrefix {
        prefix: shown(prefix),
        reason,
    };
    if !prefix.starts_with('/') {
        return Err(bad("must start with '/'"));
    }
    if prefix.len() > 1 && prefix.ends_with('/') {
        return Err(bad("must not end with '/' (prefixes match whole segments)"));
    }
    if prefix.contains("//") {
        return Err(bad("must not contain an empty segment"));
    }
    if prefix.contains(['?', '#']) || prefix.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(
            "must be a path, without query, fragment, spaces or control characters",
        ));
    }
    for segment in prefix.split('/').skip(1) {
        // axum 0.8 captures and wildcards (`{id}`, `{*rest}`), and the
        // older `:id` / `*rest`, which axum 0.8 refuses as a route.
        if segment.contains(['{', '}']) || segment.starts_with([':', '*']) {
            return Err(PolicyError::RouteSyntax {
                prefix: shown(prefix),
                segment: shown(segment),
            });
        }
        if segment == "." || segment == ".." {
            return Err(bad(
                "must not contain a '.' or '..' segment (such request paths are refused)",
            ));
        }
    }
    if prefix.contains('%') {
        return Err(bad(
            "must not be percent-encoded (rules match the path with its encoded path characters decoded: write them unencoded)",
        ));
    }
    if !prefix.bytes().all(|b| b == b'/' || path::is_rule_char(b)) {
        return Err(bad(
            "may hold only '/', letters, digits and -._~!$&'()*+,;=:@ (RFC 3986 pchar, unencoded)",
        ));
    }
    Ok(prefix.into())
}

/// Why a route policy could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A path prefix is not valid.
    #[error("route policy: invalid path prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix given.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A path prefix holds router syntax: a capture (`{id}`, or `:id`) or
    /// a wildcard (`{*rest}`, or `*rest`). Rules match literal path
    /// prefixes, not route templates: write the literal part before the
    /// capture (`/users` for `/users/{id}`), which governs every path
    /// below it.
    #[error("route policy: path prefix {prefix:?} holds route syntax in segment {segment:?}; rules match literal path prefixes, not route templates (write the literal prefix before the capture, e.g. \"/users\" for \"/users/{{id}}\")")]
    RouteSyntax {
        /// The prefix given.
        prefix: String,
        /// The segment holding the syntax.
        segment: String,
    },
}
