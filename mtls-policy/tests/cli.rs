//! The `mtls-policy` command, run as a user would: exit codes, the
//! `FILE:LINE:COLUMN: message` of a bad file, and `explain`'s first word.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mtls-policy");

/// The path of a policy file of `tests/data` (the shop's policy, learned
/// policies, the policies `diff` and `graph` compare), as an argument.
fn data(name: &str) -> String {
    arg(&PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name))
}

/// `path` as a command-line argument.
fn arg(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// The text of [`data`] file `name`.
fn data_text(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

/// `text` written to a temporary file `name`; its path, as an argument.
fn file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("mtls-policy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    arg(&path)
}

fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN).args(args).output().unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn check_accepts_a_valid_file() {
    let (code, out, err) = run(&["check", &data("shop.toml")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok: 3 rules"), "{out}");
}

#[test]
fn check_refuses_a_bad_file_with_line_and_column() {
    let path = file(
        "bad.toml",
        &data_text("shop.toml").replace("\"/orders/{id}\"", "\"/orders/{id\""),
    );
    let (code, out, err) = run(&["check", &path]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.starts_with(&format!("{path}:8:10: ")), "{err}");
    let (code, _, err) = run(&["check", "/nonexistent/policy.toml"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("/nonexistent/policy.toml: "), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let path = data("shop.toml");
    let p = path.as_str();
    for args in [
        &[][..],
        &["frobnicate"],
        &["check"],
        &["explain", p, "--path", "/x"],
        &["explain", p, "--caller", "not-an-id", "--path", "/x"],
        &["explain", p, "--caller", "spiffe://example.org/a"],
        &[
            "explain",
            p,
            "--caller",
            "spiffe://example.org/a",
            "--path",
            "/x",
            "--grpc",
            "/a.B/C",
        ],
        &[
            "explain",
            p,
            "--caller",
            "spiffe://example.org/a",
            "--path",
            "/x",
            "--authenticated-by",
            "jwt",
        ],
        &[
            "explain",
            p,
            "--caller",
            "spiffe://example.org/a",
            "--method",
            "G ET",
            "--path",
            "/x",
        ],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

/// `explain` arguments: the shop's web workload reads order 7.
const WEB_GETS_AN_ORDER: &[&str] = &[
    "--caller",
    "spiffe://example.org/ns/shop/sa/web",
    "--method",
    "GET",
    "--path",
    "/orders/7",
];

#[test]
fn explain_says_allow_or_deny_first_then_the_rule() {
    let path = data("shop.toml");
    let p = path.as_str();
    let cases: &[(&[&str], &str)] = &[
        (
            WEB_GETS_AN_ORDER,
            "allow: allowed by rule \"shop-reads-orders\"",
        ),
        (
            &[
                "--caller",
                "spiffe://example.org/ns/shop/sa/bad",
                "--method",
                "GET",
                "--path",
                "/orders/7",
            ],
            "deny: denied by rule \"no-bad\"",
        ),
        (
            &[
                "--caller",
                "spiffe://example.org/ns/shop/sa/web",
                "--method",
                "POST",
                "--path",
                "/orders/7",
            ],
            "deny: no allow rule matches (default deny)",
        ),
        (
            &[
                "--caller",
                "spiffe://example.org/ns/shop/sa/web",
                "--path",
                "/orders/%37",
            ],
            "deny: the request path is not in normal form",
        ),
        (
            &[
                "--caller",
                "spiffe://partner.org/billing",
                "--grpc",
                "/shop.Orders/Get",
                "--authenticated-by",
                "jwt-svid",
            ],
            "allow: allowed by rule \"partner-grpc\"",
        ),
        (
            &[
                "--caller",
                "spiffe://partner.org/billing",
                "--grpc",
                "/shop.Orders/Get",
            ],
            "deny: no allow rule matches",
        ),
    ];
    let explain = |args: &[&str]| run(&[&["explain", p][..], args].concat());
    for (args, want) in cases {
        let (code, out, err) = explain(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.starts_with(want), "{args:?}: {out}");
    }
    let (_, out, _) = explain(WEB_GETS_AN_ORDER);
    assert!(
        out.contains("by \"prefix:spiffe://example.org/ns/shop\""),
        "{out}"
    );
    assert!(out.contains("by \"/orders/{id}\""), "{out}");
}

/// The callers and routes of `learned-a.toml` and `learned-b.toml`, as a graph
/// of them labels its nodes.
const LEARNED_LABELS: [&str; 6] = [
    "spiffe://example.org/web",
    "spiffe://example.org/batch",
    "spiffe://example.org/admin",
    "GET /orders/{id}",
    "POST /admin",
    "/shop.Orders/Get",
];

#[test]
fn learn_merges_learned_files_into_one_policy() {
    let (a, b) = (data("learned-a.toml"), data("learned-b.toml"));
    let out = file("merged.toml", "");
    let (code, stdout, err) = run(&["learn", &a, &b, "--out", &out]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("4 calls"), "{stdout}");
    let merged = std::fs::read_to_string(&out).unwrap();
    let explain = |caller: &str, extra: &[&str]| {
        let mut args = vec!["explain", &out, "--caller", caller];
        args.extend_from_slice(extra);
        run(&args).1
    };
    assert!(
        explain("spiffe://example.org/web", &["--path", "/orders/9"]).starts_with("allow"),
        "{merged}"
    );
    assert!(explain(
        "spiffe://example.org/batch",
        &["--grpc", "/shop.Orders/Get"]
    )
    .starts_with("allow"));
    assert!(explain(
        "spiffe://example.org/admin",
        &["--method", "POST", "--path", "/admin"]
    )
    .starts_with("allow"));
    assert!(explain("spiffe://example.org/admin", &["--path", "/admin"]).starts_with("deny"));
    assert!(explain("spiffe://example.org/other", &["--path", "/orders/9"]).starts_with("deny"));

    // A policy that is not a learned one is refused.
    let hand = data("shop.toml");
    let (code, _, err) = run(&["learn", &hand, "--out", &out]);
    assert_eq!(code, 1);
    assert!(err.contains("not a learned policy"), "{err}");
    assert_eq!(run(&["learn", "--out", &out]).0, 2);
}

#[test]
fn diff_lists_the_observed_calls_the_new_policy_would_deny() {
    let observed = data("learned-a.toml");
    let (old, new) = (data("diff-old.toml"), data("diff-new.toml"));
    let (code, out, err) = run(&["diff", &old, &new, "--observations", &observed]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(
            "deny spiffe://example.org/batch POST /shop.Orders/Get: no allow rule matches"
        ),
        "{out}"
    );
    assert!(lines[1].starts_with("deny spiffe://example.org/web POST /shop.Orders/Get: denied by rule \"no-grpc-for-web\""), "{out}");
    // The same policy denies nothing new.
    let (code, out, _) = run(&["diff", &old, &old, "--observations", &observed]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(run(&["diff", &old, &new]).0, 2);
}

#[test]
fn graph_draws_callers_to_routes_as_dot_and_svg() {
    let (a, b) = (data("learned-a.toml"), data("learned-b.toml"));
    // Web may read orders; nobody else is allowed anything.
    let policy = data("web-reads-orders.toml");
    let dot = std::env::temp_dir().join(format!("mtls-policy-graph-{}.dot", std::process::id()));
    let (code, out, err) = run(&["graph", &a, &b, "--out", &arg(&dot), "--policy", &policy]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 calls"), "{out}");
    let text = std::fs::read_to_string(&dot).unwrap();
    assert!(text.starts_with("digraph calls {"), "{text}");
    assert!(text.trim_end().ends_with('}'), "{text}");
    // Three callers, three routes, four edges: one allowed, three denied.
    let nodes = |prefix: &str| {
        text.lines()
            .filter(|l| l.trim_start().starts_with(prefix) && l.contains("[label="))
            .filter(|l| !l.contains("->"))
            .count()
    };
    assert_eq!(nodes("c"), 3, "{text}");
    assert_eq!(nodes("r"), 3, "{text}");
    let edges: Vec<&str> = text.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(edges.len(), 4, "{text}");
    assert_eq!(
        edges.iter().filter(|l| l.contains("\"allowed\"")).count(),
        1
    );
    assert_eq!(edges.iter().filter(|l| l.contains("\"denied\"")).count(), 3);
    for name in LEARNED_LABELS {
        assert!(
            text.contains(&format!("label=\"{name}\"")),
            "{name}: {text}"
        );
    }

    // SVG, without a policy: every call "observed".
    let svg = dot.with_extension("svg");
    let (code, _, err) = run(&["graph", &a, &b, "--out", &arg(&svg)]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert!(doc.root_element().has_tag_name("svg"));
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for name in LEARNED_LABELS {
        assert!(texts.contains(&name), "{name}: {texts:?}");
    }
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(titles.len(), 4, "{titles:?}");
    assert!(
        titles.iter().all(|t| t.ends_with(": observed")),
        "{titles:?}"
    );

    // Neither .svg nor .dot: a usage error.
    let (code, _, err) = run(&["graph", &a, "--out", "graph.png"]);
    assert_eq!(code, 2, "{err}");
}
