//! Run with: `cargo test -p examples --test policy`
//!
//! The policy flags of `axum-server` and `tonic-server` (`--policy`,
//! `--policy-mode`, `--learn-out`) against the real binaries: learn mode
//! then enforce with the learned file, audit mode, hot reload under load
//! with a bad file in between, and the flag combinations refused.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    args, bundle, path_str, run, s, Fixture, Identity, Outcome, Server, AXUM_CLIENT, AXUM_SERVER,
    SERVER_ID, TONIC_SERVER,
};

#[track_caller]
fn assert_403(out: &Outcome) {
    out.assert_exit(1);
    assert!(out.stderr.contains("403"), "{out:#?}");
}

#[track_caller]
fn assert_permission_denied(out: &Outcome) {
    out.assert_exit(1);
    assert!(out.stderr.contains("PERMISSION_DENIED"), "{out:#?}");
}

/// The example server `exe` started in learn mode, writing its policy to
/// the returned path; and a member of example.org it never sees (the
/// newcomer, second).
fn learning(exe: &'static str) -> (Fixture, Identity, String, Server) {
    let f = Fixture::new(exe);
    let newcomer = f
        .pki
        .issue(&f.example, "newcomer", "spiffe://example.org/newcomer");
    let learned = path_str(&f.pki.path("learned.toml"));
    let server = f.start(&s(&["--policy-mode", "learn", "--learn-out", &learned]));
    (f, newcomer, learned, server)
}

/// Writes `text` to `path` atomically (a temporary file renamed over it).
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn axum_learn_then_enforce_allows_exactly_the_observed_calls() {
    let (f, newcomer, learned, mut server) = learning(AXUM_SERVER);

    // Learn mode allows every caller that may connect, /admin included.
    f.axum_get(&server, &f.client, "/whoami")
        .assert_stdout("spiffe://example.org/client\n");
    f.axum_get(&server, &f.client, "/items/7").assert_ok();
    f.axum_get(&server, &f.client, "/items/8").assert_ok();
    f.axum_get(&server, &f.admin, "/admin")
        .assert_stdout("welcome, admin\n");
    // Unrouted: 404, and not recorded (the layer runs after routing).
    let out = f.axum_get(&server, &f.admin, "/nowhere");
    out.assert_exit(1);
    assert!(out.stderr.contains("404"), "{out:#?}");

    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}: {log}");
    assert!(log.contains("learned policy written"), "{log}");
    let text = std::fs::read_to_string(&learned).unwrap();
    // The route template, not the paths seen; three distinct calls.
    assert!(text.contains(r#"paths = ["/items/{id}"]"#), "{text}");
    assert!(!text.contains("/items/7"), "{text}");
    assert!(!text.contains("/nowhere"), "{text}");
    let policy = mtls_tower::CompiledPolicy::from_toml(&text, "learned").unwrap();
    let calls = policy.learned_observations().unwrap();
    assert_eq!(calls.len(), 3, "{text}");

    let server = f.start(&s(&["--policy", &learned]));
    // Observed: allowed (the template covers another item).
    f.axum_get(&server, &f.client, "/whoami").assert_ok();
    f.axum_get(&server, &f.client, "/items/9")
        .assert_stdout("item 9\n");
    f.axum_get(&server, &f.admin, "/admin").assert_ok();
    // Unobserved (caller, route): refused.
    assert_403(&f.axum_get(&server, &f.client, "/admin"));
    assert_403(&f.axum_get(&server, &f.admin, "/whoami"));
    assert_403(&f.axum_get(&server, &f.admin, "/items/7"));
    assert_403(&f.axum_get(&server, &f.client, "/nowhere"));
    // A new caller (allowed to connect): refused everywhere.
    assert_403(&f.axum_get(&server, &newcomer, "/whoami"));
    assert_403(&f.axum_get(&server, &newcomer, "/items/7"));
}

const ONLY_CLIENT_WHOAMI: &str = r#"
version = 1

[[rule]]
name = "client-whoami"
action = "allow"
callers = ["spiffe://example.org/client"]
methods = ["GET"]
paths = ["/whoami"]
"#;

#[test]
fn axum_audit_mode_never_refuses() {
    let f = Fixture::new(AXUM_SERVER);
    let policy = f.pki.path("policy.toml");
    std::fs::write(&policy, ONLY_CLIENT_WHOAMI).unwrap();
    let mut server = f.start(&s(&[
        "--policy",
        &path_str(&policy),
        "--policy-mode",
        "audit",
    ]));
    f.axum_get(&server, &f.client, "/whoami").assert_ok();
    f.axum_get(&server, &f.client, "/admin").assert_ok();
    f.axum_get(&server, &f.admin, "/admin").assert_ok();
    f.axum_get(&server, &f.admin, "/items/1").assert_ok();
    // Unrouted: the policy lets it through, the router answers 404.
    let out = f.axum_get(&server, &f.admin, "/nowhere");
    assert!(out.stderr.contains("404"), "{out:#?}");
    server.assert_logged(&["would deny", "spiffe://example.org/admin"]);

    // The same file enforced refuses what audit mode let through.
    let server = f.start(&s(&["--policy", &path_str(&policy)]));
    f.axum_get(&server, &f.client, "/whoami").assert_ok();
    assert_403(&f.axum_get(&server, &f.client, "/admin"));
    assert_403(&f.axum_get(&server, &f.admin, "/items/1"));
}

#[test]
fn axum_hot_reload_under_load_fails_no_request_and_survives_a_bad_file() {
    let f = Arc::new(Fixture::new(AXUM_SERVER));
    let policy = f.pki.path("policy.toml");
    std::fs::write(&policy, ONLY_CLIENT_WHOAMI).unwrap();
    let mut server = f.start(&s(&["--policy", &path_str(&policy)]));
    assert_403(&f.axum_get(&server, &f.client, "/items/1"));

    // Load: clients calling /whoami (allowed by every good version) in a
    // loop while the file changes under them.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let addr = server.addr;
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (f, stop, done) = (f.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let url = format!("https://{addr}/whoami");
                    let out = run(
                        AXUM_CLIENT,
                        &args([
                            s(&["--url", &url, "--server-id", SERVER_ID]),
                            f.client.args(),
                            bundle(&f.example.bundle),
                        ]),
                    );
                    if !out.status.success() {
                        failures.push(out);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();

    let wait_until = |what: &str, check: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < Duration::from_secs(20), "{what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    // A good new version: the client may also read items.
    let with_items = format!(
        "{ONLY_CLIENT_WHOAMI}\n[[rule]]\nname = \"client-items\"\naction = \"allow\"\n\
         callers = [\"spiffe://example.org/client\"]\npaths = [\"/items/{{id}}\"]\n"
    );
    replace_file(&policy, &with_items);
    wait_until("the new policy is served", &|| {
        f.axum_get(&server, &f.client, "/items/1").status.success()
    });

    // A bad file: refused, the last good policy keeps serving.
    replace_file(
        &policy,
        "version = 1\n[[rule]]\naction = \"allow\"\npaths = [\"/x{\"]\n",
    );
    std::thread::sleep(Duration::from_millis(2500));
    f.axum_get(&server, &f.client, "/items/2").assert_ok();
    assert_403(&f.axum_get(&server, &f.client, "/admin"));

    // Another good version: the admin may call /admin; items are gone.
    let admin = ONLY_CLIENT_WHOAMI.to_owned()
        + "\n[[rule]]\nname = \"admin\"\naction = \"allow\"\n\
           callers = [\"spiffe://example.org/admin\"]\npaths = [\"/admin\"]\n";
    replace_file(&policy, &admin);
    wait_until("the third policy is served", &|| {
        f.axum_get(&server, &f.admin, "/admin").status.success()
    });
    assert_403(&f.axum_get(&server, &f.client, "/items/3"));

    stop.store(true, Ordering::Relaxed);
    let failures: Vec<Outcome> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "failed requests under reload: {failures:#?}"
    );
    assert!(done.load(Ordering::Relaxed) >= 4, "the load ran");

    server.assert_logged(&["policy not reloaded", "policy.toml:4:"]);
}

#[test]
fn tonic_learn_then_enforce_allows_exactly_the_observed_methods() {
    let (f, newcomer, learned, mut server) = learning(TONIC_SERVER);

    f.tonic_call(&server, &f.client, "whoami")
        .assert_stdout("spiffe://example.org/client\n");
    f.tonic_call(&server, &f.admin, "admin")
        .assert_stdout("welcome, admin\n");
    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}: {log}");
    let text = std::fs::read_to_string(&learned).unwrap();
    assert!(
        text.contains(r#"grpc = ["/mtls.examples.v1.Identity/WhoAmI"]"#),
        "{text}"
    );
    assert!(
        text.contains(r#"grpc = ["/mtls.examples.v1.Identity/Admin"]"#),
        "{text}"
    );

    let server = f.start(&s(&["--policy", &learned]));
    f.tonic_call(&server, &f.client, "whoami").assert_ok();
    f.tonic_call(&server, &f.admin, "admin").assert_ok();
    assert_permission_denied(&f.tonic_call(&server, &f.client, "admin"));
    assert_permission_denied(&f.tonic_call(&server, &f.admin, "whoami"));
    assert_permission_denied(&f.tonic_call(&server, &newcomer, "whoami"));
}

#[test]
fn learn_mode_writes_periodically() {
    let f = Fixture::new(AXUM_SERVER);
    let learned = f.pki.path("learned.toml");
    let server = f.start(&s(&[
        "--policy-mode",
        "learn",
        "--learn-out",
        &path_str(&learned),
        "--learn-interval",
        "1",
    ]));
    f.axum_get(&server, &f.client, "/whoami").assert_ok();
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&learned) {
            if text.contains("spiffe://example.org/client") {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not written");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_policy_flags_are_usage_errors() {
    let f = Fixture::new(AXUM_SERVER);
    let policy = f.pki.path("policy.toml");
    std::fs::write(&policy, ONLY_CLIENT_WHOAMI).unwrap();
    let policy = path_str(&policy);
    let base = args([
        s(&["--listen", "127.0.0.1:0"]),
        f.server.args(),
        bundle(&f.example.bundle),
    ]);
    let cases: [(&[&str], &str); 6] = [
        (
            &["--learn-out", "x.toml"],
            "--learn-out is only used with --policy-mode learn",
        ),
        (&["--policy-mode", "learn"], "needs --learn-out"),
        (
            &[
                "--policy-mode",
                "learn",
                "--learn-out",
                "x",
                "--policy",
                &policy,
            ],
            "--policy is not used in learn mode",
        ),
        (
            &["--policy-mode", "audit"],
            "--policy-mode audit needs --policy FILE",
        ),
        (
            &["--policy", &policy, "--admin", "spiffe://example.org/admin"],
            "--admin is not used with --policy",
        ),
        (&["--policy-mode", "sometimes"], "unknown policy mode"),
    ];
    for exe in [AXUM_SERVER, TONIC_SERVER] {
        for (extra, message) in cases {
            let out = run(exe, &args([base.clone(), s(extra)]));
            out.assert_exit(2);
            assert!(out.stderr.contains(message), "{extra:?}: {out:#?}");
        }
    }

    // A policy file that does not validate: FILE:LINE:COLUMN, exit 1.
    let bad = f.pki.path("bad.toml");
    std::fs::write(&bad, "version = 1\n[[rule]]\naction = \"permit\"\n").unwrap();
    for exe in [AXUM_SERVER, TONIC_SERVER] {
        let out = run(
            exe,
            &args([base.clone(), s(&["--policy", &path_str(&bad)])]),
        );
        out.assert_exit(1);
        assert!(out.stderr.contains("bad.toml:3:"), "{out:#?}");
    }
}
