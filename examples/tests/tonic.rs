//! Run with: `cargo test -p examples --test tonic`
//!
//! `tonic-server` and `tonic-client` (service `mtls.examples.v1.Identity`)
//! as real processes over loopback, with certificates from the `mtls-ca`
//! library.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{args, bundle, run, s, Fixture, SERVER_ID, TONIC_CLIENT, TONIC_SERVER};

#[test]
fn who_am_i_answers_the_callers_spiffe_id_and_admin_is_for_admins() {
    let f = Fixture::new(TONIC_SERVER);
    let server = f.start(&s(&["--admin", &f.admin.id]));

    f.tonic_call(&server, &f.client, "whoami")
        .assert_stdout("spiffe://example.org/client\n");

    // A non-admin: PERMISSION_DENIED from the layer's route policy.
    let out = f.tonic_call(&server, &f.client, "admin");
    out.assert_refused();
    assert!(out.stderr.contains("PERMISSION_DENIED"), "{out:#?}");

    f.tonic_call(&server, &f.admin, "admin")
        .assert_stdout("welcome, admin\n");

    f.tonic_call(&server, &f.admin, "whoami")
        .assert_stdout("spiffe://example.org/admin\n");
}

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
    let out = f.tonic_call(&server, &f.admin, "admin");
    out.assert_exit(1);
    assert!(out.stderr.contains("PERMISSION_DENIED"), "{out:#?}");
}

#[test]
fn another_trust_domain_is_refused_during_the_handshake() {
    let f = Fixture::new(TONIC_SERVER);
    let stranger = f.stranger();

    let mut server = f.start(&[]);
    let target = s(&["--addr", &server.addr.to_string()]);
    let out = f.tonic_call_with(
        &target,
        &stranger.identity,
        "whoami",
        stranger.trust_both.clone(),
    );
    out.assert_refused();
    assert!(!out.stderr.contains("rejected the server"), "{out:#?}");
    server.assert_logged(&["rejected a client"]);

    // Federated and allowed: admitted.
    let server = f.start(&stranger.admitted());
    let target = s(&["--addr", &server.addr.to_string()]);
    f.tonic_call_with(&target, &stranger.identity, "whoami", stranger.trust_both)
        .assert_stdout("spiffe://other.org/stranger\n");
}

#[test]
fn the_client_refuses_a_server_with_another_spiffe_id() {
    let f = Fixture::new(TONIC_SERVER);
    let server = f.start(&[]);
    f.assert_refuses_another_server(TONIC_CLIENT, &["--addr", &server.addr.to_string()]);
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
