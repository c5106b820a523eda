//! `mtls-policy graph`: the observed call graph, callers to routes, as
//! Graphviz DOT text or as an SVG picture drawn here (no Graphviz needed):
//! callers in a left column, routes in a right column, one line per
//! observed call, colored by what a policy decides.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// What happens to an observed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    /// Observed, no policy given.
    Observed,
    /// The policy given allows it.
    Allowed,
    /// The policy given denies it.
    Denied,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Observed => "observed",
            Self::Allowed => "allowed",
            Self::Denied => "denied",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Self::Observed => "#1565c0",
            Self::Allowed => "#2e7d32",
            Self::Denied => "#c62828",
        }
    }
}

/// One edge: a caller calls a route (`GET /orders/{id}`, or a gRPC
/// method).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Edge {
    pub(crate) caller: String,
    pub(crate) route: String,
    pub(crate) status: Status,
}

/// The graph: its callers and routes (sorted, distinct) and edges.
#[derive(Debug)]
pub(crate) struct Graph {
    callers: Vec<String>,
    routes: Vec<String>,
    edges: Vec<(usize, usize, Status)>,
}

impl Graph {
    pub(crate) fn new(edges: &[Edge]) -> Self {
        let callers = sorted_distinct(edges.iter().map(|e| &e.caller));
        let routes = sorted_distinct(edges.iter().map(|e| &e.route));
        let mut out: Vec<(usize, usize, Status)> = edges
            .iter()
            .filter_map(|e| {
                let c = callers.binary_search(&e.caller).ok()?;
                let r = routes.binary_search(&e.route).ok()?;
                Some((c, r, e.status))
            })
            .collect();
        out.sort();
        out.dedup();
        Self {
            callers,
            routes,
            edges: out,
        }
    }

    /// Graphviz DOT: `digraph calls`, callers `c0..`, routes `r0..`, each
    /// edge labelled and colored by its status.
    pub(crate) fn dot(&self) -> String {
        let mut out = String::from(
            "digraph calls {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        out.push_str("  subgraph cluster_callers {\n    label=\"callers\";\n");
        for (i, c) in self.callers.iter().enumerate() {
            let _ = writeln!(out, "    c{i} [label=\"{}\"];", dot_escape(c));
        }
        out.push_str("  }\n  subgraph cluster_routes {\n    label=\"routes\";\n");
        for (i, r) in self.routes.iter().enumerate() {
            let _ = writeln!(out, "    r{i} [label=\"{}\"];", dot_escape(r));
        }
        out.push_str("  }\n");
        for &(c, r, status) in &self.edges {
            let style = if status == Status::Denied {
                ", style=dashed"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  c{c} -> r{r} [label=\"{}\", color=\"{}\", fontcolor=\"{}\"{style}];",
                status.label(),
                status.color(),
                status.color()
            );
        }
        out.push_str("}\n");
        out
    }

    /// A standalone SVG picture.
    pub(crate) fn svg(&self) -> String {
        const ROW: usize = 30;
        const CHAR: usize = 8;
        const PAD: usize = 10;
        const GAP: usize = 220;
        const TOP: usize = 70;
        let width_of = |names: &[String]| {
            names
                .iter()
                .map(|n| n.chars().count())
                .max()
                .unwrap_or(0)
                .max(8)
                * CHAR
                + 2 * PAD
        };
        let (left_w, right_w) = (width_of(&self.callers), width_of(&self.routes));
        let left_x = 20;
        let right_x = left_x + left_w + GAP;
        let rows = self.callers.len().max(self.routes.len()).max(1);
        let width = right_x + right_w + 20;
        let height = TOP + rows * ROW + 20;
        let box_y = |i: usize| TOP + i * ROW;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="13">"#
        );
        let _ = writeln!(
            out,
            r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{left_x}" y="24" font-weight="bold">callers</text>
<text x="{right_x}" y="24" font-weight="bold">routes</text>"#
        );
        // Legend.
        let mut lx = left_x;
        for status in [Status::Observed, Status::Allowed, Status::Denied] {
            let dash = if status == Status::Denied {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<line x1="{lx}" y1="46" x2="{}" y2="46" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="50" fill="{}">{}</text>"#,
                lx + 30,
                status.color(),
                lx + 36,
                status.color(),
                status.label()
            );
            lx += 130;
        }
        // Edges first, under the boxes.
        for &(c, r, status) in &self.edges {
            let dash = if status == Status::Denied {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<line x1="{}" y1="{}" x2="{right_x}" y2="{}" stroke="{}" stroke-width="1.5"{dash}><title>{} → {}: {}</title></line>"#,
                left_x + left_w,
                box_y(c) + ROW / 2 - 2,
                box_y(r) + ROW / 2 - 2,
                status.color(),
                xml_escape(&self.callers[c]),
                xml_escape(&self.routes[r]),
                status.label()
            );
        }
        for (x, w, names) in [
            (left_x, left_w, &self.callers),
            (right_x, right_w, &self.routes),
        ] {
            for (i, name) in names.iter().enumerate() {
                let y = box_y(i);
                let _ = writeln!(
                    out,
                    r##"<rect x="{x}" y="{}" width="{w}" height="{}" rx="4" fill="#f5f5f5" stroke="#616161"/><text x="{}" y="{}">{}</text>"##,
                    y + 2,
                    ROW - 8,
                    x + PAD,
                    y + ROW / 2 + 2,
                    xml_escape(name)
                );
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

/// The distinct strings of `all`, sorted.
fn sorted_distinct<'a>(all: impl Iterator<Item = &'a String>) -> Vec<String> {
    all.cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

/// `s` with each character that `replace` maps to a string replaced by
/// that string.
fn escape(s: &str, replace: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match replace(c) {
            Some(with) => out.push_str(with),
            None => out.push(c),
        }
    }
    out
}

/// A DOT double-quoted string's content.
pub(crate) fn dot_escape(s: &str) -> String {
    escape(s, |c| match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        '\n' => Some("\\n"),
        '\r' => Some(""),
        _ => None,
    })
}

/// XML character data and attribute values; control characters (not
/// allowed in XML 1.0) become U+FFFD.
pub(crate) fn xml_escape(s: &str) -> String {
    escape(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&apos;"),
        '\t' | '\n' => Some(" "),
        c if c.is_control() => Some("\u{FFFD}"),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn hostile() -> Vec<Edge> {
        vec![
            Edge {
                caller: "spiffe://example.org/a\"<b>&c".into(),
                route: "GET /x/\"quoted\"/<tag>&amp;".into(),
                status: Status::Denied,
            },
            Edge {
                caller: "spiffe://example.org/plain".into(),
                route: "/pkg.Svc/Method".into(),
                status: Status::Allowed,
            },
        ]
    }

    #[test]
    fn svg_is_well_formed_xml_and_names_everything() {
        let graph = Graph::new(&hostile());
        let svg = graph.svg();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        for name in [
            "spiffe://example.org/a\"<b>&c",
            "GET /x/\"quoted\"/<tag>&amp;",
            "spiffe://example.org/plain",
            "/pkg.Svc/Method",
        ] {
            assert!(texts.contains(&name), "{name} in {texts:?}");
        }
        assert!(!svg.contains("<b>"), "{svg}");
        let lines = doc
            .descendants()
            .filter(|n| n.has_tag_name("line") && n.has_children())
            .count();
        assert_eq!(lines, 2);
    }

    #[test]
    fn dot_escapes_quotes_and_backslashes() {
        let mut edges = hostile();
        edges.push(Edge {
            caller: "back\\slash".into(),
            route: "r".into(),
            status: Status::Observed,
        });
        let dot = Graph::new(&edges).dot();
        assert!(
            dot.contains(r#"label="spiffe://example.org/a\"<b>&c""#),
            "{dot}"
        );
        assert!(dot.contains(r#"label="back\\slash""#), "{dot}");
    }
}
