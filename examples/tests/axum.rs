//! Run with: `cargo test -p examples --test axum`
//!
//! `axum-server` and `axum-client` as real processes over loopback, with
//! certificates from the `mtls-ca` library, and curl as an independent
//! client: what only they do (what `tonic-server` does as well is tested
//! against both in `servers.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{
    args, bundle, curl, run, s, Fixture, Identity, Server, AXUM_CLIENT, AXUM_SERVER, TONIC_SERVER,
};

#[test]
fn without_admin_flags_nobody_is_admin() {
    let f = Fixture::new(AXUM_SERVER);
    let server = f.start(&[]);
    f.axum_get(&server, &f.admin, "/admin").assert_exit(1);
    f.axum_get(&server, &f.admin, "/whoami").assert_ok();
}

#[test]
fn curl_is_an_independent_client() {
    let curl = curl();
    let f = Fixture::new(AXUM_SERVER);
    let server = f.start(&s(&["--admin", &f.admin.id]));
    let url = |path: &str| format!("https://localhost:{}{path}", server.port());
    let base = |who: Option<&Identity>, path: &str| {
        let mut a = s(&["--silent", "--show-error", "--fail", "--max-time", "10"]);
        if let Some(who) = who {
            a.extend(s(&["--cert", &common::path_str(&who.cert)]));
            a.extend(s(&["--key", &common::path_str(&who.key)]));
        }
        a.extend(s(&[
            "--cacert",
            &common::path_str(&f.example.bundle),
            &url(path),
        ]));
        a
    };

    run(curl, &base(Some(&f.client), "/whoami")).assert_stdout("spiffe://example.org/client\n");

    run(curl, &base(Some(&f.admin), "/admin")).assert_stdout("welcome, admin\n");

    // --fail: an HTTP error is exit 22.
    run(curl, &base(Some(&f.client), "/admin")).assert_exit(22);

    // No client certificate: the handshake fails.
    let out = run(curl, &base(None, "/whoami"));
    assert!(!out.status.success(), "{out:#?}");
    assert_eq!(out.stdout, "");

    // HTTP/1.1 works as well as h2.
    let mut http1 = base(Some(&f.client), "/whoami");
    http1.insert(0, "--http1.1".into());
    run(curl, &http1).assert_stdout("spiffe://example.org/client\n");
}

#[test]
fn an_impostor_from_another_ca_of_the_same_trust_domain_is_refused() {
    let f = Fixture::new(AXUM_SERVER);
    let rogue = f.pki.domain("rogue", "example.org");
    let impostor = f
        .pki
        .issue(&rogue, "impostor", "spiffe://example.org/client");
    let server = f.start(&[]);
    // The impostor trusts the real CA (it wants in), so only the server refuses.
    f.axum_get(&server, &impostor, "/whoami").assert_refused();
}

#[test]
fn allow_lists_ids_and_trust_domains() {
    let f = Fixture::new(AXUM_SERVER);
    let server = f.start(&s(&["--allow", &f.client.id]));
    f.axum_get(&server, &f.client, "/whoami").assert_ok();
    // example.org/admin is a member of the trust domain but not listed.
    f.axum_get(&server, &f.admin, "/whoami").assert_exit(1);

    let server = f.start(&s(&[
        "--allow",
        &f.client.id,
        "--allow-trust-domain",
        "example.org",
    ]));
    f.axum_get(&server, &f.admin, "/whoami").assert_ok();
}

#[test]
fn bundles_may_be_spiffe_jwks() {
    let f = Fixture::new(AXUM_SERVER);
    let jwks = f.pki.path("example-bundle.json");
    std::fs::write(&jwks, f.example.ca.bundle().unwrap().to_jwks().unwrap()).unwrap();
    let server = Server::start(AXUM_SERVER, &args([f.server.args(), bundle(&jwks)]));
    f.axum_get_with(&server, &f.client, "/whoami", bundle(&jwks))
        .assert_stdout("spiffe://example.org/client\n");
}

#[test]
fn a_revoked_client_is_refused_with_crl() {
    let f = Fixture::new(AXUM_SERVER);
    let pem = std::fs::read(&f.client.cert).unwrap();
    let (_, leaf) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = leaf.parse_x509().unwrap();
    assert!(f.example.ca.revoke(cert.raw_serial()));
    let crl = f
        .example
        .ca
        .crl(std::time::Duration::from_secs(3600))
        .unwrap();
    let crl_path = f.pki.path("example.crl");
    std::fs::write(&crl_path, mtls_core::to_pem("X509 CRL", &crl)).unwrap();

    let server = f.start(&s(&["--crl", &common::path_str(&crl_path)]));
    f.axum_get(&server, &f.client, "/whoami").assert_exit(1);
    f.axum_get(&server, &f.admin, "/whoami").assert_ok();
}

#[test]
fn unreadable_or_garbage_files_are_clear_errors() {
    let f = Fixture::new(AXUM_SERVER);
    let garbage = f.pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = f.pki.path("missing.pem");
    let g = common::path_str(&garbage);
    let m = common::path_str(&missing);
    let listen = s(&["--listen", "127.0.0.1:0"]);
    let cert = common::path_str(&f.server.cert);
    let key = common::path_str(&f.server.key);
    let b = common::path_str(&f.example.bundle);

    for (flags, needle) in [
        (
            s(&["--cert", &m, "--key", &key, "--bundle", &b]),
            "cannot read --cert",
        ),
        (s(&["--cert", &g, "--key", &key, "--bundle", &b]), "--cert"),
        (s(&["--cert", &cert, "--key", &g, "--bundle", &b]), "--key"),
        (
            s(&["--cert", &cert, "--key", &key, "--bundle", &g]),
            "--bundle",
        ),
        (
            s(&["--cert", &cert, "--key", &key, "--bundle", &m]),
            "cannot read --bundle",
        ),
        (
            s(&["--cert", &cert, "--key", &key, "--bundle", &b, "--crl", &g]),
            "--crl",
        ),
        (
            s(&[
                "--cert",
                &cert,
                "--key",
                &key,
                "--bundle",
                &b,
                "--bundle",
                &format!("example.org={b}"),
            ]),
            "two bundles",
        ),
    ] {
        for exe in [AXUM_SERVER, TONIC_SERVER] {
            let out = run(exe, &args([listen.clone(), flags.clone()]));
            out.assert_exit(1);
            assert_eq!(out.stdout, "", "{flags:?}");
            assert!(out.stderr.contains(needle), "{flags:?}: {out:#?}");
        }
    }

    // Usage errors are exit 2.
    run(AXUM_SERVER, &s(&["--cert", &cert])).assert_exit(2);
    run(AXUM_CLIENT, &s(&["--url", "http://localhost:1/"])).assert_exit(2);
}
