//! Run with: `cargo test -p examples --test servers`
//!
//! What `axum-server` and `tonic-server` both do, each test run against
//! both, with their clients (`axum-client`, `tonic-client`), as real
//! processes over loopback, with certificates from the `mtls-ca` library.
//! What only one of them does is tested in `axum.rs` and `tonic.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{
    bundle, s, Fixture, Identity, Outcome, Server, AXUM_CLIENT, AXUM_SERVER, TONIC_CLIENT,
    TONIC_SERVER,
};

/// An example server with its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    Axum,
    Tonic,
}

/// What a client asks the server for.
#[derive(Debug, Clone, Copy)]
enum Ask {
    /// The caller's SPIFFE ID: `GET /whoami`, `WhoAmI`.
    WhoAmI,
    /// The admin endpoint: `GET /admin`, `Admin`.
    Admin,
}

const APPS: [App; 2] = [App::Axum, App::Tonic];

impl App {
    fn server(self) -> &'static str {
        match self {
            App::Axum => AXUM_SERVER,
            App::Tonic => TONIC_SERVER,
        }
    }

    fn client(self) -> &'static str {
        match self {
            App::Axum => AXUM_CLIENT,
            App::Tonic => TONIC_CLIENT,
        }
    }

    /// The client's flags naming `server` (axum: the URL of `GET /whoami`).
    fn target(self, server: &Server) -> Vec<String> {
        match self {
            App::Axum => s(&["--url", &format!("https://{}/whoami", server.addr)]),
            App::Tonic => s(&["--addr", &server.addr.to_string()]),
        }
    }

    /// What the client prints on stderr when the server's route policy
    /// refuses the call.
    fn denied(self) -> &'static [&'static str] {
        match self {
            App::Axum => &["403", "permission denied"],
            App::Tonic => &["PERMISSION_DENIED"],
        }
    }

    /// The client asks `server` for `ask` as `who`, trusting example.org.
    fn ask(self, f: &Fixture, server: &Server, who: &Identity, ask: Ask) -> Outcome {
        self.ask_with(f, server, who, ask, bundle(&f.example.bundle))
    }

    /// [`ask`](Self::ask) trusting the `--bundle` arguments `bundles`.
    fn ask_with(
        self,
        f: &Fixture,
        server: &Server,
        who: &Identity,
        ask: Ask,
        bundles: Vec<String>,
    ) -> Outcome {
        match (self, ask) {
            (App::Axum, Ask::WhoAmI) => f.axum_get_with(server, who, "/whoami", bundles),
            (App::Axum, Ask::Admin) => f.axum_get_with(server, who, "/admin", bundles),
            (App::Tonic, Ask::WhoAmI) => {
                f.tonic_call_with(&self.target(server), who, "whoami", bundles)
            }
            (App::Tonic, Ask::Admin) => {
                f.tonic_call_with(&self.target(server), who, "admin", bundles)
            }
        }
    }
}

#[test]
fn whoami_answers_the_callers_spiffe_id_and_admin_is_for_admins() {
    for app in APPS {
        let f = Fixture::new(app.server());
        let server = f.start(&s(&["--admin", &f.admin.id]));

        app.ask(&f, &server, &f.client, Ask::WhoAmI)
            .assert_stdout("spiffe://example.org/client\n");
        app.ask(&f, &server, &f.admin, Ask::WhoAmI)
            .assert_stdout("spiffe://example.org/admin\n");

        // A non-admin: refused by the layer's route policy; the status on
        // stderr.
        app.ask(&f, &server, &f.client, Ask::Admin)
            .assert_refused()
            .assert_stderr_has(app.denied());
        app.ask(&f, &server, &f.admin, Ask::Admin)
            .assert_stdout("welcome, admin\n");

        if app == App::Axum {
            // No rule for the path: denied before routing (default deny).
            f.axum_get(&server, &f.client, "/elsewhere")
                .assert_exit(1)
                .assert_stderr_has(&["403"]);
        }
    }
}

#[test]
fn another_trust_domain_is_refused_during_the_handshake() {
    for app in APPS {
        let f = Fixture::new(app.server());
        let stranger = f.stranger();

        let mut server = f.start(&[]);
        let out = app.ask_with(
            &f,
            &server,
            &stranger.identity,
            Ask::WhoAmI,
            stranger.trust_both.clone(),
        );
        out.assert_refused();
        assert!(!out.stderr.contains("rejected the server"), "{out:#?}");
        server.assert_logged(&["rejected a client", "other.org"]);

        // Federated: with other.org's bundle and other.org allowed, it
        // gets in.
        let server = f.start(&stranger.admitted());
        app.ask_with(
            &f,
            &server,
            &stranger.identity,
            Ask::WhoAmI,
            stranger.trust_both,
        )
        .assert_stdout("spiffe://other.org/stranger\n");
        // ...and example.org members no longer do: only other.org is
        // allowed.
        app.ask(&f, &server, &f.client, Ask::WhoAmI).assert_exit(1);
    }
}

#[test]
fn the_client_refuses_a_server_with_another_spiffe_id() {
    for app in APPS {
        let f = Fixture::new(app.server());
        let server = f.start(&[]);
        f.assert_refuses_another_server(app.client(), &app.target(&server));
    }
}
