//! Run with: `cargo test -p examples --test rotation`
//!
//! `axum-server` and `tonic-server` watch their `--cert/--key/--bundle`
//! files: a rotated SVID and a CA added to the bundle are served by new
//! handshakes without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{args, bundle, run, s, Identity, Outcome, Pki, Server};

const OLD_ID: &str = "spiffe://example.org/server";
const NEW_ID: &str = "spiffe://example.org/server-v2";

struct Binaries {
    server: &'static str,
    client: &'static str,
    /// Client flags naming the server and the call.
    target: fn(&Server) -> Vec<String>,
}

const AXUM: Binaries = Binaries {
    server: env!("CARGO_BIN_EXE_axum-server"),
    client: env!("CARGO_BIN_EXE_axum-client"),
    target: |server| s(&["--url", &format!("https://{}/whoami", server.addr)]),
};

const TONIC: Binaries = Binaries {
    server: env!("CARGO_BIN_EXE_tonic-server"),
    client: env!("CARGO_BIN_EXE_tonic-client"),
    target: |server| s(&["--addr", &server.addr.to_string(), "--call", "whoami"]),
};

fn call(
    b: &Binaries,
    server: &Server,
    who: &Identity,
    bundle_file: &std::path::Path,
    server_id: &str,
) -> Outcome {
    run(
        b.client,
        &args([
            (b.target)(server),
            s(&["--server-id", server_id]),
            who.args(),
            bundle(bundle_file),
        ]),
    )
}

/// Retries `attempt` until it succeeds or `limit` passes.
fn eventually(limit: Duration, mut attempt: impl FnMut() -> Outcome) -> Outcome {
    let start = Instant::now();
    loop {
        let outcome = attempt();
        if outcome.status.success() || start.elapsed() > limit {
            return outcome;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rotates_without_restart(b: &Binaries) {
    let pki = Pki::new();
    let example = pki.domain("example", "example.org");
    let server_identity = pki.issue(&example, "server", OLD_ID);
    let client = pki.issue(&example, "client", "spiffe://example.org/client");
    let server = Server::start(
        b.server,
        &args([server_identity.args(), bundle(&example.bundle)]),
    );

    call(b, &server, &client, &example.bundle, OLD_ID).assert_ok();
    call(b, &server, &client, &example.bundle, NEW_ID).assert_exit(1);

    // Rotate the server's SVID in place (same files, new ID).
    let rotated = pki.issue(&example, "server", NEW_ID);
    assert_eq!(rotated.cert, server_identity.cert);
    eventually(Duration::from_secs(5), || {
        call(b, &server, &client, &example.bundle, NEW_ID)
    })
    .assert_ok();
    call(b, &server, &client, &example.bundle, OLD_ID).assert_exit(1);

    // A new CA of the same trust domain: its client is refused until the
    // server's bundle file also holds the new CA.
    let next = pki.domain("next", "example.org");
    let next_client = pki.issue(&next, "next-client", "spiffe://example.org/next-client");
    call(b, &server, &next_client, &example.bundle, NEW_ID).assert_exit(1);
    let both = format!(
        "{}{}",
        std::fs::read_to_string(&example.bundle).unwrap(),
        std::fs::read_to_string(&next.bundle).unwrap()
    );
    std::fs::write(&example.bundle, both).unwrap();
    eventually(Duration::from_secs(5), || {
        call(b, &server, &next_client, &example.bundle, NEW_ID)
    })
    .assert_ok();
    call(b, &server, &client, &example.bundle, NEW_ID).assert_ok();

    // Garbage written over the key is refused; the last good set keeps serving.
    std::fs::write(&server_identity.key, "not a key").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    call(b, &server, &client, &example.bundle, NEW_ID).assert_ok();
}

#[test]
fn axum_server_picks_up_rotated_files() {
    rotates_without_restart(&AXUM);
}

#[test]
fn tonic_server_picks_up_rotated_files() {
    rotates_without_restart(&TONIC);
}
