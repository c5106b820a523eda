//! Authorization policies as configuration: allow, deny and audit rules
//! in a TOML file, evaluated like Istio's `AuthorizationPolicy`, hot
//! reloaded, in enforce, audit or learn mode.
//!
//! The format is documented in `docs/policy.md`; in short:
//!
//! ```
//! use http::Method;
//! use mtls_core::SpiffeId;
//! use mtls_tower::{AuthenticatedBy, CompiledPolicy, PolicyQuery};
//!
//! let policy = CompiledPolicy::from_toml(r#"
//! version = 1
//!
//! [[rule]]
//! name = "shop-reads-orders"
//! action = "allow"
//! callers = ["prefix:spiffe://example.org/ns/shop", "!spiffe://example.org/ns/shop/sa/bad"]
//! methods = ["GET"]
//! paths = ["/orders", "/orders/{id}"]
//!
//! [[rule]]
//! name = "no-partner-admin"
//! action = "deny"
//! callers = ["trust-domain:partner.org"]
//! grpc = ["/shop.Admin"]
//! "#, "policy.toml")?;
//!
//! let web = SpiffeId::new("spiffe://example.org/ns/shop/sa/web")?;
//! let bad = SpiffeId::new("spiffe://example.org/ns/shop/sa/bad")?;
//! let get = |id, path| PolicyQuery::new(id, AuthenticatedBy::Mtls, &Method::GET, path);
//! assert!(policy.evaluate(&get(&web, "/orders/7")).is_allowed());
//! assert!(!policy.evaluate(&get(&bad, "/orders/7")).is_allowed());
//! // No allow rule: default deny.
//! assert!(!policy.evaluate(&get(&web, "/orders/7/items")).is_allowed());
//! println!("{}", policy.explain(&get(&web, "/orders/7")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`PolicyFile`] serves a policy from a file (hot reloaded) or any other
//! source to an [`AuthorizeLayer`](crate::AuthorizeLayer).

/// The code blocks of `docs/policy.md`, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/policy.md")]
struct PolicyGuideDoctests;

mod error;
mod index;
mod learn;
mod rules;
mod source;
mod traffic;

use std::fmt;
use std::sync::Arc;

use http::Method;
use mtls_core::SpiffeId;

pub use error::{PolicyFileError, PolicyProblem};
pub use learn::Observation;
pub use source::{PolicyFile, PolicyFileOptions, PolicyMode};

use index::Index;
use rules::Rule;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Allows the request, unless a `deny` rule matches too.
    Allow,
    /// Denies the request, whatever else matches.
    Deny,
    /// Changes nothing: the match is logged and counted.
    Audit,
}

/// How a caller authenticated: the `authenticated_by` of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AuthenticatedBy {
    /// Mutual TLS: an X.509-SVID (`mtls`).
    Mtls,
    /// A JWT-SVID (`jwt-svid`).
    JwtSvid,
}

impl AuthenticatedBy {
    pub(crate) fn bit(self) -> u8 {
        match self {
            Self::Mtls => 1,
            Self::JwtSvid => 2,
        }
    }

    /// The name in policy files: `mtls` or `jwt-svid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mtls => "mtls",
            Self::JwtSvid => "jwt-svid",
        }
    }
}

impl From<crate::Caller<'_>> for AuthenticatedBy {
    fn from(caller: crate::Caller<'_>) -> Self {
        match caller {
            crate::Caller::X509(_) => Self::Mtls,
            crate::Caller::Jwt(_) => Self::JwtSvid,
        }
    }
}

/// What a policy decides on: who calls, how authenticated, which method
/// and path (the raw request path without query; for gRPC,
/// `/package.Service/Method`).
#[derive(Debug, Clone, Copy)]
pub struct PolicyQuery<'a> {
    caller: &'a SpiffeId,
    authenticated_by: AuthenticatedBy,
    method: &'a Method,
    path: &'a str,
}

impl<'a> PolicyQuery<'a> {
    /// A query.
    pub fn new(
        caller: &'a SpiffeId,
        authenticated_by: AuthenticatedBy,
        method: &'a Method,
        path: &'a str,
    ) -> Self {
        Self {
            caller,
            authenticated_by,
            method,
            path,
        }
    }
}

/// A policy's decision on one request: allowed or not, and which rule
/// decided ([`rule`](Self::rule): an index into the policy's rules; none
/// for the default deny or a path not in normal form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    allowed: bool,
    rule: Option<usize>,
    audit: Vec<usize>,
    invalid_path: bool,
}

impl PolicyDecision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The index of the rule that decided: the first matching `deny`
    /// rule, else the first matching `allow` rule; `None` when none
    /// matched (default deny) or the path was refused.
    pub fn rule(&self) -> Option<usize> {
        self.rule
    }

    /// The indices of the `audit` rules that matched.
    pub fn audit_matches(&self) -> &[usize] {
        &self.audit
    }

    /// Whether the request was denied because its path is not in normal
    /// form (before any rule).
    pub fn path_refused(&self) -> bool {
        self.invalid_path
    }
}

/// A compiled policy: rules from a policy file, indexed so that a
/// decision costs about the same with one rule or ten thousand. Cheap to
/// clone (an `Arc`).
///
/// Evaluation is Istio's: if any `deny` rule matches, the request is
/// denied; else if any `allow` rule matches, it is allowed; else it is
/// denied (default deny). `audit` rules never change the decision. A
/// path not in normal form (see [`RoutePolicy`](crate::RoutePolicy)) is
/// denied whatever the rules.
#[derive(Clone)]
pub struct CompiledPolicy {
    inner: Arc<Compiled>,
}

struct Compiled {
    origin: String,
    rules: Vec<Rule>,
    index: Index,
}

impl CompiledPolicy {
    /// Parses and validates a policy from TOML `text`; `origin` names it
    /// in errors (`origin:LINE:COLUMN: message`) and explanations.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, PolicyFileError> {
        let rules = rules::parse(text, origin)?;
        Ok(Self::from_rules(rules, origin))
    }

    /// Reads, parses and validates the policy file at `path`.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, PolicyFileError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = read(path, &origin)?;
        Self::from_toml(&text, &origin)
    }

    /// A policy without rules: it denies everything.
    pub fn deny_all() -> Self {
        Self::from_rules(Vec::new(), "(empty)")
    }

    fn from_rules(rules: Vec<Rule>, origin: &str) -> Self {
        let index = Index::new(&rules);
        Self {
            inner: Arc::new(Compiled {
                origin: origin.to_owned(),
                rules,
                index,
            }),
        }
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.inner.rules.len()
    }

    /// Whether there is no rule (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.inner.rules.is_empty()
    }

    /// Where the policy came from (a path, or the name given).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The name of rule `index` if it has one, else `#N` (from 1), with
    /// its line: `"orders-read" (policy.toml:12)`.
    pub fn describe_rule(&self, index: usize) -> String {
        match self.inner.rules.get(index) {
            Some(rule) => format!(
                "{} ({}:{})",
                rule.label(index),
                self.inner.origin,
                rule.line
            ),
            None => format!("rule #{}", index + 1),
        }
    }

    /// The calls this policy allows, when it is a learned policy (the
    /// shape learn mode writes: `allow` rules of exact caller IDs, each
    /// with one method and one path, or one gRPC method); `None`
    /// otherwise. Learned files are the observation files that
    /// `mtls-policy learn` merges and `mtls-policy diff` replays.
    pub fn learned_observations(&self) -> Option<Vec<Observation>> {
        learn::from_rules(&self.inner.rules)
    }

    /// The action of rule `index`.
    pub fn rule_action(&self, index: usize) -> Option<Action> {
        self.inner.rules.get(index).map(|r| r.action)
    }

    /// Decides on `query`.
    #[inline]
    pub fn evaluate(&self, query: &PolicyQuery<'_>) -> PolicyDecision {
        let inner = &*self.inner;
        let Ok(normal) = crate::path::check(query.path) else {
            return PolicyDecision {
                allowed: false,
                rule: None,
                audit: Vec::new(),
                invalid_path: true,
            };
        };
        let path = normal.decode_rule_chars(query.path);
        let mut deny: Option<u32> = None;
        let mut allow: Option<u32> = None;
        let mut audit: Vec<usize> = Vec::new();
        inner.index.candidates(&path, query.caller, &mut |i| {
            let Some(rule) = inner.rules.get(i as usize) else {
                return;
            };
            let slot = match rule.action {
                Action::Deny => &mut deny,
                Action::Allow => &mut allow,
                Action::Audit => {
                    if !audit.contains(&(i as usize))
                        && rule.matches_caller_and_method(
                            query.caller,
                            query.authenticated_by,
                            query.method,
                        )
                    {
                        audit.push(i as usize);
                    }
                    return;
                }
            };
            if slot.is_none_or(|s| i < s)
                && rule.matches_caller_and_method(
                    query.caller,
                    query.authenticated_by,
                    query.method,
                )
            {
                *slot = Some(i);
            }
        });
        audit.sort_unstable();
        let (allowed, rule) = match (deny, allow) {
            (Some(d), _) => (false, Some(d as usize)),
            (None, Some(a)) => (true, Some(a as usize)),
            (None, None) => (false, None),
        };
        PolicyDecision {
            allowed,
            rule,
            audit,
            invalid_path: false,
        }
    }

    /// Decides on `query` rule by rule, without the index, and says why:
    /// the decision, the rule that decided, and for each rule that
    /// matched, which entries matched. Slow (every rule is tried): for
    /// tools and logs of denials, not for every request.
    pub fn explain(&self, query: &PolicyQuery<'_>) -> Explanation {
        let inner = &*self.inner;
        let mut lines = Vec::new();
        if let Err(invalid) = crate::path::check(query.path) {
            return Explanation {
                allowed: false,
                rule: None,
                summary: format!(
                    "the request path is not in normal form ({invalid}): refused before any rule"
                ),
                lines,
            };
        }
        let decoded = crate::path::decode_rule_chars(query.path);
        let trailing = decoded.ends_with('/');
        let body = decoded.trim_start_matches('/');
        let body = body.strip_suffix('/').unwrap_or(body);
        let segments: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        let mut deny = None;
        let mut allow = None;
        for (i, rule) in inner.rules.iter().enumerate() {
            let Some(why) = rule_matches(rule, query, &segments, trailing) else {
                continue;
            };
            lines.push(format!(
                "{} {}: matches: {why}",
                rule.action,
                self.describe_rule(i)
            ));
            match rule.action {
                Action::Deny if deny.is_none() => deny = Some(i),
                Action::Allow if allow.is_none() => allow = Some(i),
                _ => {}
            }
        }
        let (allowed, rule, summary) = match (deny, allow) {
            (Some(d), _) => (
                false,
                Some(d),
                format!("denied by {}", self.describe_rule(d)),
            ),
            (None, Some(a)) => (
                true,
                Some(a),
                format!("allowed by {}", self.describe_rule(a)),
            ),
            (None, None) => (
                false,
                None,
                "no allow rule matches (default deny)".to_owned(),
            ),
        };
        Explanation {
            allowed,
            rule,
            summary,
            lines,
        }
    }
}

/// Why `rule` matches `query`, or `None`.
fn rule_matches(
    rule: &Rule,
    query: &PolicyQuery<'_>,
    segments: &[&str],
    trailing: bool,
) -> Option<String> {
    let mut why = Vec::new();
    if !rule.matches_caller_and_method(query.caller, query.authenticated_by, query.method) {
        return None;
    }
    match rule.callers.iter().find(|(c, _)| c.matches(query.caller)) {
        Some((_, text)) => why.push(format!("caller {} by {text:?}", query.caller)),
        None => why.push(format!("caller {} (any caller)", query.caller)),
    }
    if !rule.not_callers.is_empty() {
        why.push("not excluded".to_owned());
    }
    if rule.authn.is_some() {
        why.push(format!(
            "authenticated by {}",
            query.authenticated_by.as_str()
        ));
    }
    if rule.methods.is_some() {
        why.push(format!("method {}", query.method));
    }
    if rule.targets.is_empty() {
        why.push("any path".to_owned());
    } else {
        let target = rule
            .targets
            .iter()
            .find(|t| t.matches(segments, trailing))?;
        let kind = if target.grpc { "gRPC" } else { "path" };
        why.push(format!("{kind} {} by {:?}", query.path, target.text));
    }
    Some(why.join(", "))
}

/// Why a policy decides as it does on one request: see
/// [`CompiledPolicy::explain`]. Its `Display` starts with `allow` or
/// `deny`, then the rule that decided, then one line per matching rule.
#[derive(Debug, Clone)]
pub struct Explanation {
    allowed: bool,
    rule: Option<usize>,
    summary: String,
    lines: Vec<String>,
}

impl Explanation {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The index of the rule that decided, if one did.
    pub fn rule(&self) -> Option<usize> {
        self.rule
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = if self.allowed { "allow" } else { "deny" };
        write!(f, "{word}: {}", self.summary)?;
        for line in &self.lines {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("origin", &self.inner.origin)
            .field("rules", &self.inner.rules.len())
            .finish()
    }
}

/// Reads a policy file, refusing one over the size limit.
pub(crate) fn read(path: &std::path::Path, origin: &str) -> Result<String, PolicyFileError> {
    let read_err = |e| PolicyFileError::Read {
        origin: origin.to_owned(),
        source: Arc::new(e),
    };
    let bytes = std::fs::read(path).map_err(read_err)?;
    if bytes.len() > rules::MAX_POLICY_BYTES {
        return Err(PolicyFileError::at(
            origin,
            "",
            0,
            PolicyProblem::TooLarge {
                limit: rules::MAX_POLICY_BYTES,
            },
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        not_utf8(e.as_bytes(), at, origin)
    })
}

/// The error for text that is not UTF-8 from byte `at`.
pub(crate) fn not_utf8(bytes: &[u8], at: usize, origin: &str) -> PolicyFileError {
    let before = String::from_utf8_lossy(&bytes[..at.min(bytes.len())]);
    PolicyFileError::at(
        origin,
        &before,
        at,
        PolicyProblem::Syntax("not UTF-8".to_owned()),
    )
}
