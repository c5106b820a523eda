//! Run with: `eval "$(examples/interop/build.sh)"; cargo test -p examples --test interop_go_spiffe`
//!
//! go-spiffe v2.9.0, the reference SDK, as an independent peer of our
//! crates, both ways, over loopback, with file-based SVIDs from the
//! `mtls-ca` library: go-spiffe's client (`tlsconfig.MTLSClientConfig`,
//! `x509svid.Load`, `x509bundle.Load`) against `axum-server`, and our
//! client (`axum-client`, on `MtlsConnector`) against go-spiffe's server
//! (`tlsconfig.MTLSServerConfig`). The peer program is
//! `examples/interop/go-spiffe`; without it these tests print `skipped:`,
//! and under `MTLS_REQUIRE_INTEROP=1` they fail (see `common/interop.rs`).
//! The SPIRE-fed variants are in `interop_spire.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};

use common::interop::{peers, GO_SPIFFE_PEER};
use common::{
    args, bundle, path_str, run, s, Domain, Identity, Outcome, Pki, Server, AXUM_CLIENT,
    AXUM_SERVER, SERVER_ID,
};

const GO_SERVER_ID: &str = "spiffe://example.org/go-server";

/// example.org with our server and client and go-spiffe's, and a member of
/// partner.test, a trust domain the servers hold no bundle for.
struct Fixture {
    peer: PathBuf,
    pki: Pki,
    example: Domain,
    partner: Domain,
    server: Identity,
    client: Identity,
    go_server: Identity,
    go_client: Identity,
    stranger: Identity,
}

fn fixture(test: &str) -> Option<Fixture> {
    let [peer] = peers(test, [GO_SPIFFE_PEER])?;
    let pki = Pki::new();
    let example = pki.domain("example", "example.org");
    let partner = pki.domain("partner", "partner.test");
    Some(Fixture {
        server: pki.issue(&example, "server", SERVER_ID),
        client: pki.issue(&example, "client", "spiffe://example.org/client"),
        go_server: pki.issue(&example, "go-server", GO_SERVER_ID),
        go_client: pki.issue(&example, "go-client", "spiffe://example.org/go-client"),
        stranger: pki.issue(&partner, "stranger", "spiffe://partner.test/stranger"),
        peer,
        pki,
        example,
        partner,
    })
}

/// go-spiffe's `--bundle TD=FILE`.
fn go_bundle(td: &str, path: &Path) -> Vec<String> {
    vec!["--bundle".into(), format!("{td}={}", path_str(path))]
}

impl Fixture {
    fn peer(&self) -> &str {
        self.peer.to_str().unwrap()
    }

    /// `spiffe-peer client` as `who`, trusting `bundles`, GET `url`.
    fn go_call(&self, url: &str, who: &Identity, bundles: Vec<String>, rule: &str) -> Outcome {
        run(
            self.peer(),
            &args([
                s(&["client", "--url", url, "--authorize", rule]),
                who.args(),
                bundles,
            ]),
        )
    }

    /// `spiffe-peer server` as `who`, trusting `bundles`, authorizing `rule`.
    fn go_server(&self, who: &Identity, bundles: Vec<String>, rule: &str) -> Server {
        Server::spawn(
            self.peer(),
            &args([
                s(&["server", "--listen", "127.0.0.1:0", "--authorize", rule]),
                who.args(),
                bundles,
            ]),
        )
    }

    /// `axum-client` as `who`, trusting example.org, expecting `server_id`.
    fn our_call(&self, server: &Server, who: &Identity, server_id: &str) -> Outcome {
        let url = format!("https://localhost:{}/", server.port());
        run(
            AXUM_CLIENT,
            &args([
                s(&["--url", &url, "--server-id", server_id]),
                who.args(),
                bundle(&self.example.bundle),
            ]),
        )
    }
}

#[test]
fn go_spiffe_client_calls_our_axum_server() {
    let Some(f) = fixture("go_spiffe_client_calls_our_axum_server") else {
        return;
    };
    let server = Server::start(
        AXUM_SERVER,
        &args([f.server.args(), bundle(&f.example.bundle)]),
    );
    let url = format!("https://127.0.0.1:{}/whoami", server.port());
    let trust = go_bundle("example.org", &f.example.bundle);

    f.go_call(
        &url,
        &f.go_client,
        trust.clone(),
        &format!("id:{SERVER_ID}"),
    )
    .assert_stdout("spiffe://example.org/go-client\n");
    // go-spiffe's trust-domain rule accepts us too.
    f.go_call(&url, &f.go_client, trust.clone(), "member-of:example.org")
        .assert_ok();

    // go-spiffe refuses us when its authorizer wants another ID.
    let out = f.go_call(
        &url,
        &f.go_client,
        trust.clone(),
        "id:spiffe://example.org/not-the-server",
    );
    out.assert_refused();
    out.assert_stderr_has(&["unexpected ID", SERVER_ID]);

    // go-spiffe refuses us when it has no bundle for our trust domain.
    let out = f.go_call(
        &url,
        &f.go_client,
        go_bundle("partner.test", &f.partner.bundle),
        &format!("id:{SERVER_ID}"),
    );
    out.assert_exit(1);
    assert!(out.stderr.contains("example.org"), "{out:#?}");
}

#[test]
fn our_axum_server_refuses_go_spiffe_clients_it_does_not_authorize() {
    let Some(f) = fixture("our_axum_server_refuses_go_spiffe_clients_it_does_not_authorize") else {
        return;
    };
    let rule = format!("id:{SERVER_ID}");
    let trust_both = args([
        go_bundle("example.org", &f.example.bundle),
        go_bundle("partner.test", &f.partner.bundle),
    ]);

    // Our authorizer wants another member of example.org.
    let mut server = Server::start(
        AXUM_SERVER,
        &args([
            f.server.args(),
            bundle(&f.example.bundle),
            s(&["--allow", "spiffe://example.org/someone-else"]),
        ]),
    );
    let url = format!("https://127.0.0.1:{}/whoami", server.port());
    f.go_call(&url, &f.go_client, trust_both.clone(), &rule)
        .assert_refused();
    server.assert_logged(&["rejected a client", "spiffe://example.org/go-client"]);

    // A member of partner.test, whose bundle our server does not hold.
    let mut server = Server::start(
        AXUM_SERVER,
        &args([f.server.args(), bundle(&f.example.bundle)]),
    );
    let url = format!("https://127.0.0.1:{}/whoami", server.port());
    f.go_call(&url, &f.stranger, trust_both, &rule)
        .assert_refused();
    server.assert_logged(&["rejected a client", "partner.test"]);
}

#[test]
fn our_client_calls_a_go_spiffe_server() {
    let Some(f) = fixture("our_client_calls_a_go_spiffe_server") else {
        return;
    };
    let trust = go_bundle("example.org", &f.example.bundle);
    let server = f.go_server(
        &f.go_server,
        trust.clone(),
        "id:spiffe://example.org/client",
    );

    f.our_call(&server, &f.client, GO_SERVER_ID)
        .assert_stdout("hello spiffe://example.org/client\n");

    // We refuse a server that is not the one we expect.
    let out = f.our_call(&server, &f.client, "spiffe://example.org/another-server");
    out.assert_refused();
    out.assert_stderr_has(&["rejected the server", GO_SERVER_ID]);

    // go-spiffe refuses a client its authorizer does not name.
    let mut server = f.go_server(&f.go_server, trust.clone(), "id:spiffe://example.org/admin");
    f.our_call(&server, &f.client, GO_SERVER_ID)
        .assert_refused();
    server.assert_logged(&["TLS handshake error", "unexpected ID"]);
}

#[test]
fn trust_domains_without_a_bundle_are_refused_both_ways() {
    let Some(f) = fixture("trust_domains_without_a_bundle_are_refused_both_ways") else {
        return;
    };
    // A go-spiffe server of partner.test: our client holds no bundle for it.
    let stranger_server = f.go_server(
        &f.stranger,
        go_bundle("example.org", &f.example.bundle),
        "any",
    );
    let out = f.our_call(
        &stranger_server,
        &f.client,
        "spiffe://partner.test/stranger",
    );
    out.assert_refused();
    out.assert_stderr_has(&["rejected the server", "partner.test"]);

    // A go-spiffe server that trusts only partner.test refuses our client.
    let mut server = f.go_server(
        &f.go_server,
        go_bundle("partner.test", &f.partner.bundle),
        "any",
    );
    let out = f.our_call(&server, &f.client, GO_SERVER_ID);
    out.assert_exit(1);
    server.assert_logged(&["TLS handshake error", "example.org"]);
    drop(f.pki);
}

/// go-spiffe's `jwtsvid.ParseAndValidate` on `token` against `bundle` (a
/// SPIFFE bundle file of example.org): its JSON verdict, or the failure.
fn go_validate(peer: &Path, dir: &Path, token: &str, bundle: &Path, audience: &str) -> Outcome {
    let token_file = dir.join("token.jwt");
    std::fs::write(&token_file, token).unwrap();
    run(
        path_str(peer).as_str(),
        &s(&[
            "jwt-validate",
            "--token-file",
            &path_str(&token_file),
            "--audience",
            audience,
            "--jwt-bundle",
            &format!("example.org={}", path_str(bundle)),
        ]),
    )
}

#[test]
fn go_spiffe_validates_the_jwt_svids_our_ca_mints() {
    use mtls_ca::{CaOptions, CertificateAuthority, JwtSvidRequest, KeyType};
    use mtls_core::{SpiffeId, TrustDomain};

    let Some([peer]) = peers(
        "go_spiffe_validates_the_jwt_svids_our_ca_mints",
        [GO_SPIFFE_PEER],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let td = TrustDomain::new("example.org").unwrap();
    let ca = CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())
        .unwrap();
    let bundle = dir.path().join("bundle.json");
    let publish = |ca: &CertificateAuthority| {
        std::fs::write(&bundle, ca.spiffe_bundle().unwrap().to_jwks().unwrap()).unwrap();
    };
    publish(&ca);
    let audience = "spiffe://example.org/backend";
    let mint = |ca: &CertificateAuthority, id: &str| {
        ca.mint_jwt_svid(&JwtSvidRequest::new(SpiffeId::new(id).unwrap(), audience))
            .unwrap()
    };
    let token = mint(&ca, "spiffe://example.org/web");

    let out = go_validate(&peer, dir.path(), &token, &bundle, audience);
    out.assert_ok();
    let verdict: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(verdict["spiffe_id"], "spiffe://example.org/web", "{out:?}");

    // go-spiffe refuses what it must: another audience, a token signed by
    // another CA's key, a tampered signature.
    let out = go_validate(
        &peer,
        dir.path(),
        &token,
        &bundle,
        "spiffe://example.org/other",
    );
    assert_eq!(out.code(), Some(1), "{out:?}");
    let stranger =
        CertificateAuthority::self_signed_for_development(td, &CaOptions::default()).unwrap();
    let foreign = mint(&stranger, "spiffe://example.org/web");
    assert_eq!(
        go_validate(&peer, dir.path(), &foreign, &bundle, audience).code(),
        Some(1)
    );
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    assert_eq!(
        go_validate(&peer, dir.path(), &parts.join("."), &bundle, audience).code(),
        Some(1)
    );

    // After a JWT key rotation (ES384 now), the new bundle validates tokens
    // of both keys, the old one's until they expire.
    ca.rotate_jwt_key(KeyType::P384).unwrap();
    publish(&ca);
    let new_token = mint(&ca, "spiffe://example.org/api");
    for (token, id) in [
        (&token, "spiffe://example.org/web"),
        (&new_token, "spiffe://example.org/api"),
    ] {
        let out = go_validate(&peer, dir.path(), token, &bundle, audience);
        out.assert_ok();
        assert!(out.stdout.contains(id), "{out:?}");
    }
}
