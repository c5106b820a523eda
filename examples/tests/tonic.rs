//! Run with: `cargo test -p examples --test tonic`
//!
//! `tonic-server` and `tonic-client` (service `mtls.examples.v1.Identity`)
//! as real processes over loopback, with certificates from the `mtls-ca`
//! library: what only they do (what `axum-server` does as well is tested
//! against both in `servers.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{args, bundle, run, s, Fixture, SERVER_ID, TONIC_CLIENT, TONIC_SERVER};

#[test]
fn the_server_can_be_named_by_url() {
    let f = Fixture::new(TONIC_SERVER);
    let server = f.start(&[]);
    for url in [
        format!("https://localhost:{}", server.port()),
        format!("http://127.0.0.1:{}/", server.port()),
    ] {
        let out = f.tonic_call_with(
            &s(&["--url", &url]),
            &f.client,
            "whoami",
            bundle(&f.example.bundle),
        );
        out.assert_ok();
        assert_eq!(out.stdout, "spiffe://example.org/client\n", "{url}");
    }
    // Nobody is admin without --admin.
    f.tonic_call(&server, &f.admin, "admin")
        .assert_exit(1)
        .assert_stderr_has(&["PERMISSION_DENIED"]);
}

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::new(TONIC_SERVER);
    let id = f.client.args();
    let b = bundle(&f.example.bundle);
    let sid = s(&["--server-id", SERVER_ID]);
    // Neither --url nor --addr; both; a bad address; a bad method.
    run(TONIC_CLIENT, &args([id.clone(), b.clone(), sid.clone()])).assert_exit(2);
    run(
        TONIC_CLIENT,
        &args([
            s(&["--url", "https://a:1", "--addr", "a:1"]),
            id.clone(),
            b.clone(),
            sid.clone(),
        ]),
    )
    .assert_exit(2);
    run(
        TONIC_CLIENT,
        &args([s(&["--addr", "nohost"]), id.clone(), b.clone(), sid.clone()]),
    )
    .assert_exit(2);
    run(
        TONIC_CLIENT,
        &args([s(&["--addr", "a:1", "--call", "nope"]), id, b, sid]),
    )
    .assert_exit(2);
}
