//! Run with: `cargo test -p examples --test dashboard`
//!
//! `docs/grafana/mtls-dashboard.json` is valid JSON, a Grafana dashboard,
//! and its PromQL references only metrics mtls-tower exports
//! (`mtls_tower::metrics::ALL`; histograms as `_bucket`/`_sum`/`_count`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use mtls_tower::metrics;
use serde_json::Value;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// Every `expr` string in the dashboard (panels' targets, annotations).
fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The identifiers of a PromQL expression that name our metrics
/// (`mtls_...`), outside string literals.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = expr.char_indices().peekable();
    let mut in_string: Option<char> = None;
    let mut current = String::new();
    while let Some((_, c)) = chars.next() {
        if let Some(quote) = in_string {
            if c == '\\' {
                chars.next();
            } else if c == quote {
                in_string = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            current.push(c);
            continue;
        }
        if current.starts_with("mtls_") {
            names.push(current.clone());
        }
        current.clear();
        if c == '"' || c == '\'' || c == '`' {
            in_string = Some(c);
        }
    }
    if current.starts_with("mtls_") {
        names.push(current);
    }
    names
}

fn exported(name: &str) -> bool {
    if metrics::ALL.contains(&name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|base| metrics::HISTOGRAMS.contains(&base))
    })
}

#[test]
fn the_dashboard_references_only_exported_metrics() {
    let path = docs().join("grafana/mtls-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    assert!(dashboard["title"].is_string());
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{} panels", panels.len());
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(panel["type"].is_string(), "{panel}");
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "duplicate id");
        let grid = &panel["gridPos"];
        for k in ["x", "y", "w", "h"] {
            assert!(grid[k].is_u64(), "{panel}");
        }
    }

    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(!all.is_empty());
    let mut used = BTreeSet::new();
    for expr in &all {
        assert_eq!(
            expr.matches('(').count(),
            expr.matches(')').count(),
            "unbalanced: {expr}"
        );
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no mtls metric in {expr}");
        for name in names {
            assert!(exported(&name), "{name} (in {expr}) is not exported");
            used.insert(name);
        }
    }
    // What the dashboard is for: who calls whom, denials, handshake
    // refusals, reloads.
    for name in [
        metrics::REQUESTS,
        metrics::HANDSHAKES,
        metrics::POLICY_RELOADS,
    ] {
        assert!(used.contains(name), "{name} unused");
    }
}

#[test]
fn all_lists_every_metric_constant() {
    // The constants of mtls-tower/src/metrics.rs, read from the source.
    let source = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mtls-tower/src/metrics.rs"),
    )
    .unwrap();
    let mut histograms = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut doc = String::new();
    for line in source.lines() {
        let line = line.trim();
        if let Some(d) = line.strip_prefix("///") {
            doc.push_str(d);
        } else if let Some(rest) = line.strip_prefix("pub const ") {
            if let Some((_, value)) = rest.split_once(": &str = \"") {
                let name = value.trim_end_matches("\";").to_owned();
                if doc.trim_start().starts_with("Histogram:") {
                    histograms.insert(name.clone());
                }
                names.insert(name);
            }
            doc.clear();
        } else {
            doc.clear();
        }
    }
    let all: BTreeSet<String> = metrics::ALL.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(all, names);
    let hist: BTreeSet<String> = metrics::HISTOGRAMS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(hist, histograms);
}

#[test]
fn promql_names_are_found_outside_strings() {
    assert_eq!(
        metric_names(r#"sum by (le) (rate(mtls_a_bucket{x="mtls_not"}[5m])) / mtls_b"#),
        ["mtls_a_bucket", "mtls_b"]
    );
}
