//! Authorization decisions as rules grow: mtls-core authorizers and
//! mtls-tower route policies and policy files of 1 to 10,000 rules.

use std::sync::Arc;

use http::Method;
use mtls_core::authorize::{self, AuthorizerExt};
use mtls_core::{Authorizer, SpiffeId, TrustDomain};
use mtls_tower::{AuthenticatedBy, CompiledPolicy, PolicyQuery, RoutePolicy};

use crate::BoxError;

/// The rule counts measured.
pub const AUTHZ_SIZES: [usize; 3] = [1, 100, 10_000];

/// The kinds of rules measured.
pub const AUTHZ_KINDS: [&str; 4] = ["exact IDs", "trust domains", "path prefixes", "mixed"];

fn rule_td(i: usize) -> Result<TrustDomain, BoxError> {
    Ok(TrustDomain::new(&format!("td{i}.example.org"))?)
}

fn rule_prefix(i: usize) -> Result<SpiffeId, BoxError> {
    Ok(SpiffeId::new(&format!(
        "spiffe://td{i}.example.org/ns/team{i}"
    ))?)
}

/// The peer rule `i` allows, whatever its kind.
pub(crate) fn rule_peer(i: usize) -> Result<SpiffeId, BoxError> {
    Ok(SpiffeId::new(&format!(
        "spiffe://td{i}.example.org/ns/team{i}/sa/svc{i}"
    ))?)
}

/// An mtls-core authorizer of `n` rules of `kind`, and a peer it allows
/// with the last rule. "mixed" is `one_of(n/3 IDs) or member_of_any(n/3
/// trust domains) or path_prefixes(the rest)`, the peer allowed by the
/// last: both earlier authorizers refuse it first.
pub fn core_authorizer(kind: &str, n: usize) -> Result<(Box<dyn Authorizer>, SpiffeId), BoxError> {
    let ids = |r: std::ops::Range<usize>| r.map(rule_peer).collect::<Result<Vec<_>, _>>();
    let tds = |r: std::ops::Range<usize>| r.map(rule_td).collect::<Result<Vec<_>, _>>();
    let prefixes = |r: std::ops::Range<usize>| r.map(rule_prefix).collect::<Result<Vec<_>, _>>();
    let peer = rule_peer(n - 1)?;
    let authorizer: Box<dyn Authorizer> = match kind {
        "exact IDs" => Box::new(authorize::one_of(ids(0..n)?)),
        "trust domains" => Box::new(authorize::member_of_any(tds(0..n)?)),
        "path prefixes" => Box::new(authorize::path_prefixes(prefixes(0..n)?)),
        _ => {
            let third = n / 3;
            Box::new(
                authorize::one_of(ids(0..third)?)
                    .or(authorize::member_of_any(tds(third..2 * third)?))
                    .or(authorize::path_prefixes(prefixes(2 * third..n)?)),
            )
        }
    };
    authorizer.authorize(&peer)?;
    Ok((authorizer, peer))
}

/// A route policy of `n` rules (`/svc{i}`) whose authorizers are of `kind`,
/// and a request matched by the last rule with a peer it allows. "mixed"
/// cycles through the three kinds, half of the rules restricted to
/// GET and POST.
pub fn route_policy(kind: &str, n: usize) -> Result<(RoutePolicy, String, SpiffeId), BoxError> {
    let mut builder = RoutePolicy::builder();
    for i in 0..n {
        let prefix = format!("/svc{i}");
        let rule_kind = match kind {
            "mixed" => ["exact IDs", "trust domains", "path prefixes"][i % 3],
            other => other,
        };
        let authorizer: Arc<dyn Authorizer> = match rule_kind {
            "exact IDs" => Arc::new(authorize::exact(rule_peer(i)?)),
            "trust domains" => Arc::new(authorize::member_of(rule_td(i)?)),
            _ => Arc::new(authorize::path_prefix(rule_prefix(i)?)),
        };
        let methods = (kind == "mixed" && i % 2 == 0).then(|| vec![Method::GET, Method::POST]);
        builder = builder.route_shared(methods, &prefix, authorizer);
    }
    let policy = builder.build()?;
    let path = format!("/svc{}/v1/items", n - 1);
    let peer = rule_peer(n - 1)?;
    policy.decide(&Method::GET, &path, &peer)?;
    Ok((policy, path, peer))
}

/// A policy file of `n` allow rules (`prefix:/svc{i}`) whose callers are
/// of `kind` (as [`route_policy`]), after a deny rule and an audit rule
/// that do not match, and a request allowed by the last rule.
pub fn file_policy(kind: &str, n: usize) -> Result<(CompiledPolicy, String, SpiffeId), BoxError> {
    let mut text = String::from(
        "version = 1\n[[rule]]\naction = \"deny\"\ncallers = [\"spiffe://evil.example.org/x\"]\n\
         [[rule]]\naction = \"audit\"\ncallers = [\"spiffe://audited.example.org/x\"]\n",
    );
    for i in 0..n {
        let rule_kind = match kind {
            "mixed" => ["exact IDs", "trust domains", "path prefixes"][i % 3],
            other => other,
        };
        let caller = match rule_kind {
            "exact IDs" => rule_peer(i)?.to_string(),
            "trust domains" => format!("trust-domain:{}", rule_td(i)?),
            _ => format!("prefix:{}", rule_prefix(i)?),
        };
        let methods = if kind == "mixed" && i % 2 == 0 {
            "methods = [\"GET\", \"POST\"]\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[[rule]]\naction = \"allow\"\ncallers = [\"{caller}\"]\n{methods}paths = [\"prefix:/svc{i}\"]\n"
        ));
    }
    let policy = CompiledPolicy::from_toml(&text, "bench")?;
    let path = format!("/svc{}/v1/items", n - 1);
    let peer = rule_peer(n - 1)?;
    let query = PolicyQuery::new(&peer, AuthenticatedBy::Mtls, &Method::GET, &path);
    if !policy.evaluate(&query).is_allowed() {
        return Err(format!("the policy file does not allow {peer} on {path}").into());
    }
    Ok((policy, path, peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy files measured build, and allow the request measured.
    #[test]
    fn file_policies_allow_the_measured_request() {
        for kind in AUTHZ_KINDS {
            for n in [1, 100] {
                let (policy, path, peer) = file_policy(kind, n).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(policy.len(), n + 2);
                let other = rule_peer(n + 1).unwrap_or_else(|e| panic!("{e}"));
                let query = PolicyQuery::new(&other, AuthenticatedBy::Mtls, &Method::GET, &path);
                assert!(!policy.evaluate(&query).is_allowed(), "{kind} {n}");
                let _ = peer;
            }
        }
    }
}
