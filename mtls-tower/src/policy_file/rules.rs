//! The rules of a policy file: the TOML schema, and what each entry
//! compiles to (with the slow, obviously correct matching that
//! [`explain`](crate::CompiledPolicy::explain) uses; the index in
//! `index.rs` must agree with it).

use http::Method;
use mtls_core::{SpiffeId, TrustDomain};
use serde::Deserialize;
use toml::Spanned;

use super::error::{shown, PolicyFileError, PolicyProblem};
use super::{Action, AuthenticatedBy};
use crate::path;

/// The largest policy file read, in bytes.
pub(crate) const MAX_POLICY_BYTES: usize = 16 << 20;

/// The most segments a path or template may have.
pub(crate) const MAX_SEGMENTS: usize = 64;

type List = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: Spanned<i64>,
    #[serde(default)]
    rule: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: Option<Spanned<String>>,
    action: Spanned<String>,
    callers: List,
    authenticated_by: List,
    methods: List,
    paths: List,
    grpc: List,
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) name: Option<String>,
    /// The line of its `action`.
    pub(crate) line: usize,
    pub(crate) action: Action,
    /// Callers it matches (empty: any, unless excluded).
    pub(crate) callers: Vec<(CallerPattern, String)>,
    /// Callers it never matches.
    pub(crate) not_callers: Vec<(CallerPattern, String)>,
    /// Bit set of [`AuthenticatedBy`]; `None`: any.
    pub(crate) authn: Option<u8>,
    /// Bit set of methods; `None`: any.
    pub(crate) methods: Option<u16>,
    /// Paths or gRPC methods (empty: any).
    pub(crate) targets: Vec<Target>,
}

#[derive(Debug, Clone)]
pub(crate) enum CallerPattern {
    Any,
    Id(SpiffeId),
    TrustDomain(TrustDomain),
    Prefix(SpiffeId),
}

impl CallerPattern {
    pub(crate) fn matches(&self, id: &SpiffeId) -> bool {
        match self {
            Self::Any => true,
            Self::Id(x) => x == id,
            Self::TrustDomain(td) => id.trust_domain() == td,
            Self::Prefix(prefix) => id.is_under(prefix),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    /// Literal segments only, the whole path (one trailing `/` allowed).
    Exact,
    /// Literal segments, and anything below.
    Prefix,
    /// `{name}` and a final `{*name}` among literal segments.
    Template,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Lit(Box<str>),
    Param,
    Rest,
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) text: String,
    pub(crate) grpc: bool,
    pub(crate) kind: TargetKind,
    pub(crate) segments: Vec<Seg>,
}

impl Target {
    /// Whether the target matches a request path (normal form, rule
    /// characters decoded) split into `segments`, `trailing` when it
    /// ended with `/`.
    pub(crate) fn matches(&self, segments: &[&str], trailing: bool) -> bool {
        let mut request = segments.iter();
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Seg::Rest => {
                    // One segment or more, or none with a trailing slash.
                    return segments.len() > i || (segments.len() == i && trailing);
                }
                Seg::Lit(lit) => match request.next() {
                    Some(s) if **s == **lit => {}
                    _ => return false,
                },
                Seg::Param => {
                    if request.next().is_none() {
                        return false;
                    }
                }
            }
        }
        match self.kind {
            TargetKind::Prefix => true,
            TargetKind::Exact | TargetKind::Template => request.next().is_none(),
        }
    }
}

/// The standard methods, by bit.
pub(crate) const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// The bit of a standard method.
#[inline]
pub(crate) fn method_bit(method: &Method) -> Option<u16> {
    METHODS.iter().position(|m| m == method).map(|i| 1 << i)
}

impl Rule {
    /// Everything but the path: callers, authentication, methods.
    #[inline]
    pub(crate) fn matches_caller_and_method(
        &self,
        caller: &SpiffeId,
        authn: AuthenticatedBy,
        method: &Method,
    ) -> bool {
        if let Some(bits) = self.authn {
            if bits & authn.bit() == 0 {
                return false;
            }
        }
        if let Some(bits) = self.methods {
            let ok = match method_bit(method) {
                // A rule for GET governs HEAD too: routers run GET
                // handlers for HEAD requests.
                Some(bit) => bits & bit != 0 || (*method == Method::HEAD && bits & 1 != 0),
                None => false,
            };
            if !ok {
                return false;
            }
        }
        self.caller_matches(caller)
    }

    pub(crate) fn caller_matches(&self, caller: &SpiffeId) -> bool {
        (self.callers.is_empty() || self.callers.iter().any(|(c, _)| c.matches(caller)))
            && !self.not_callers.iter().any(|(c, _)| c.matches(caller))
    }

    /// The rule's name, or `#N` (its position from 1).
    pub(crate) fn label(&self, index: usize) -> String {
        match &self.name {
            Some(name) => format!("rule {:?}", name),
            None => format!("rule #{}", index + 1),
        }
    }
}

/// Parses and validates a whole policy document.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Vec<Rule>, PolicyFileError> {
    let err = |offset: usize, problem| PolicyFileError::at(origin, text, offset, problem);
    if text.len() > MAX_POLICY_BYTES {
        return Err(err(
            0,
            PolicyProblem::TooLarge {
                limit: MAX_POLICY_BYTES,
            },
        ));
    }
    let doc: Document = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        err(at, PolicyProblem::Syntax(e.message().trim().to_owned()))
    })?;
    if *doc.version.get_ref() != 1 {
        return Err(err(
            doc.version.span().start,
            PolicyProblem::UnsupportedVersion(*doc.version.get_ref()),
        ));
    }
    let mut names = std::collections::HashSet::new();
    let mut rules = Vec::with_capacity(doc.rule.len());
    for r in doc.rule {
        let line = super::error::line_column(text, r.action.span().start).0;
        let action = match r.action.get_ref().as_str() {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            "audit" => Action::Audit,
            other => {
                return Err(err(
                    r.action.span().start,
                    PolicyProblem::Action(shown(other)),
                ))
            }
        };
        let name = match r.name {
            Some(name) => {
                if !names.insert(name.get_ref().clone()) {
                    return Err(err(
                        name.span().start,
                        PolicyProblem::DuplicateName(shown(name.get_ref())),
                    ));
                }
                Some(name.into_inner())
            }
            None => None,
        };
        let mut rule = Rule {
            name,
            line,
            action,
            callers: Vec::new(),
            not_callers: Vec::new(),
            authn: None,
            methods: None,
            targets: Vec::new(),
        };
        if let Some(list) = nonempty(r.callers, "callers", &err)? {
            for entry in list {
                let (negated, pattern) =
                    parse_entry(&entry, parse_caller, &err, |entry, reason| {
                        PolicyProblem::Caller { entry, reason }
                    })?;
                let text = entry.into_inner();
                if negated {
                    rule.not_callers.push((pattern, text));
                } else {
                    rule.callers.push((pattern, text));
                }
            }
        }
        if let Some(list) = nonempty(r.authenticated_by, "authenticated_by", &err)? {
            let mut bits = 0;
            for entry in list {
                bits |= match entry.get_ref().as_str() {
                    "mtls" => AuthenticatedBy::Mtls.bit(),
                    "jwt-svid" => AuthenticatedBy::JwtSvid.bit(),
                    other => {
                        return Err(err(
                            entry.span().start,
                            PolicyProblem::Authentication(shown(other)),
                        ))
                    }
                };
            }
            rule.authn = Some(bits);
        }
        let grpc_span = r.grpc.as_ref().map(|g| g.span().start);
        if let (Some(at), Some(_)) = (grpc_span, &r.paths) {
            return Err(err(
                at,
                PolicyProblem::Conflict(
                    "a rule has either paths or grpc, not both (write two rules)",
                ),
            ));
        }
        if let (Some(at), Some(_)) = (grpc_span, &r.methods) {
            return Err(err(
                at,
                PolicyProblem::Conflict(
                    "a rule with grpc has no methods (gRPC calls are all POST)",
                ),
            ));
        }
        if let Some(list) = nonempty(r.methods, "methods", &err)? {
            let mut bits = 0;
            for entry in list {
                let bit = Method::from_bytes(entry.get_ref().as_bytes())
                    .ok()
                    .filter(|m| m.as_str() == entry.get_ref())
                    .as_ref()
                    .and_then(method_bit)
                    .ok_or_else(|| {
                        err(
                            entry.span().start,
                            PolicyProblem::Method(shown(entry.get_ref())),
                        )
                    })?;
                bits |= bit;
            }
            rule.methods = Some(bits);
        }
        for entry in nonempty(r.paths, "paths", &err)?.unwrap_or_default() {
            let target = parse_entry(&entry, parse_path, &err, |entry, reason| {
                PolicyProblem::Path { entry, reason }
            })?;
            rule.targets.push(target);
        }
        for entry in nonempty(r.grpc, "grpc", &err)?.unwrap_or_default() {
            let target = parse_entry(&entry, parse_grpc, &err, |entry, reason| {
                PolicyProblem::Grpc { entry, reason }
            })?;
            rule.targets.push(target);
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// One entry of a list, parsed by `parse`; its refusal names the entry
/// (as `problem(shown entry, reason)`) at the entry's position.
fn parse_entry<T, E>(
    entry: &Spanned<String>,
    parse: fn(&str) -> Result<T, String>,
    err: &impl Fn(usize, PolicyProblem) -> E,
    problem: fn(String, String) -> PolicyProblem,
) -> Result<T, E> {
    parse(entry.get_ref())
        .map_err(|reason| err(entry.span().start, problem(shown(entry.get_ref()), reason)))
}

fn nonempty<E>(
    list: List,
    field: &'static str,
    err: &impl Fn(usize, PolicyProblem) -> E,
) -> Result<Option<Vec<Spanned<String>>>, E> {
    match list {
        None => Ok(None),
        Some(list) if list.get_ref().is_empty() => {
            Err(err(list.span().start, PolicyProblem::EmptyList(field)))
        }
        Some(list) => Ok(Some(list.into_inner())),
    }
}

/// `(negated, pattern)` of a `callers` entry.
pub(crate) fn parse_caller(entry: &str) -> Result<(bool, CallerPattern), String> {
    let (negated, body) = match entry.strip_prefix('!') {
        Some(body) => (true, body),
        None => (false, entry),
    };
    let pattern = if body == "*" {
        if negated {
            return Err("\"!*\" excludes every caller: the rule could never match".into());
        }
        CallerPattern::Any
    } else if let Some(td) = body.strip_prefix("trust-domain:") {
        CallerPattern::TrustDomain(
            TrustDomain::from_id_or_name(td).map_err(|e| format!("bad trust domain: {e}"))?,
        )
    } else if let Some(prefix) = body.strip_prefix("prefix:") {
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        CallerPattern::Prefix(
            SpiffeId::new(prefix).map_err(|e| format!("bad SPIFFE ID prefix: {e}"))?,
        )
    } else if body.starts_with("spiffe:") {
        let id = SpiffeId::new(body).map_err(|e| format!("bad SPIFFE ID: {e}"))?;
        if id.path().is_empty() {
            return Err(format!(
                "the trust domain's own ID names no workload; for every ID of the trust domain write \"trust-domain:{}\"",
                id.trust_domain()
            ));
        }
        CallerPattern::Id(id)
    } else {
        return Err(
            "expected a SPIFFE ID (spiffe://td/path), trust-domain:NAME, prefix:SPIFFE-ID or *, optionally negated with !"
                .into(),
        );
    };
    Ok((negated, pattern))
}

/// A `paths` entry: `/exact`, `prefix:/segment/prefix`, or a template
/// with `{name}` and a final `{*name}`.
pub(crate) fn parse_path(entry: &str) -> Result<Target, String> {
    let (prefix, body) = match entry.strip_prefix("prefix:") {
        Some(body) => (
            true,
            body.strip_suffix('/')
                .filter(|b| !b.is_empty())
                .unwrap_or(body),
        ),
        None => (false, entry),
    };
    if !body.starts_with('/') {
        return Err("must start with '/' (or \"prefix:/\")".into());
    }
    if body.len() > 1 && body.ends_with('/') {
        return Err(
            "must not end with '/' (a rule on /a also governs /a/; a prefix is written prefix:/a)"
                .into(),
        );
    }
    let mut segments = Vec::new();
    let mut template = false;
    if body != "/" {
        let parts: Vec<&str> = body[1..].split('/').collect();
        if parts.len() > MAX_SEGMENTS {
            return Err(format!("more than {MAX_SEGMENTS} segments"));
        }
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if prefix {
                    return Err("a prefix holds no captures (write a template, or the literal prefix before the capture)".into());
                }
                let (rest, name) = match inner.strip_prefix('*') {
                    Some(name) => (true, name),
                    None => (false, inner),
                };
                if !is_identifier(name) {
                    return Err(format!(
                        "capture {part:?}: the name must be a letter or '_' then letters, digits or '_'"
                    ));
                }
                if rest && !last {
                    return Err(format!("the wildcard {part:?} must be the last segment"));
                }
                template = true;
                segments.push(if rest { Seg::Rest } else { Seg::Param });
            } else {
                segments.push(Seg::Lit(check_literal_segment(part)?.into()));
            }
        }
    }
    let kind = match (prefix, template) {
        (true, _) => TargetKind::Prefix,
        (false, true) => TargetKind::Template,
        (false, false) => TargetKind::Exact,
    };
    Ok(Target {
        text: entry.to_owned(),
        grpc: false,
        kind,
        segments,
    })
}

/// A literal path segment of a rule, as [`RoutePolicy`](crate::RoutePolicy)
/// prefixes have them.
fn check_literal_segment(segment: &str) -> Result<&str, String> {
    if segment.is_empty() {
        return Err("must not contain an empty segment".into());
    }
    if segment.contains(['{', '}']) {
        return Err(format!(
            "segment {:?}: a capture is a whole segment, {{name}} or {{*name}}",
            shown(segment)
        ));
    }
    if segment.starts_with([':', '*']) {
        return Err(format!(
            "segment {:?}: axum 0.8 captures are written {{name}} and {{*name}}",
            shown(segment)
        ));
    }
    if segment == "." || segment == ".." {
        return Err(
            "must not contain a '.' or '..' segment (such request paths are refused)".into(),
        );
    }
    if segment.contains('%') {
        return Err("must not be percent-encoded (rules match the path with its encoded path characters decoded: write them unencoded)".into());
    }
    if !segment.bytes().all(path::is_rule_char) {
        return Err(
            "may hold only '/', letters, digits and -._~!$&'()*+,;=:@ (RFC 3986 pchar, unencoded)"
                .into(),
        );
    }
    Ok(segment)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A `grpc` entry: `/package.Service/Method` or `/package.Service`.
pub(crate) fn parse_grpc(entry: &str) -> Result<Target, String> {
    let Some(body) = entry.strip_prefix('/') else {
        return Err("must start with '/': /package.Service or /package.Service/Method".into());
    };
    let (service, method) = match body.split_once('/') {
        Some((s, m)) => (s, Some(m)),
        None => (body, None),
    };
    if service.is_empty() || !service.split('.').all(is_identifier) {
        return Err("the service must be dot-separated identifiers (package.Service)".into());
    }
    let mut segments = vec![Seg::Lit(service.into())];
    if let Some(method) = method {
        if !is_identifier(method) {
            return Err("the method must be an identifier (letters, digits, '_')".into());
        }
        segments.push(Seg::Lit(method.into()));
    }
    Ok(Target {
        text: entry.to_owned(),
        grpc: true,
        kind: if method.is_some() {
            TargetKind::Exact
        } else {
            TargetKind::Prefix
        },
        segments,
    })
}
