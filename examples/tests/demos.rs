//! Run with: `cargo test -p examples --test demos`
//!
//! The self-checking demo programs (the README's `quickstart` among them)
//! exit 0 only when everything behaved as they show; `spire-app` is run
//! against the test Workload API server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{authorize, BundleSet, MtlsClientConfig, SpiffeId, TrustDomain};
use mtls_workload_api_testing::{svid_entry, WorkloadApiServer};
use rustls::pki_types::ServerName;
use tokio::io::AsyncReadExt;

fn run_demo(exe: &str) -> String {
    let out = Command::new(exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{exe} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    stdout
}

/// The demos that count their steps: each prints `[ok]` once a step and
/// each of its lines (and, as every demo, exits 0 and prints no `FAIL`).
#[test]
fn counted_demos_print_every_step() {
    let demos: [(&str, usize, &[&str]); 3] = [
        // Scene 1: three callers; scene 2: six steps of live federation.
        (
            env!("CARGO_BIN_EXE_federation"),
            9,
            &[
                "example.org fetched its bundle with both roots",
                "example.org fetched the bundle holding the new root only",
                " 0 failed calls, no restart",
            ],
        ),
        // The README's first command must keep working.
        (
            env!("CARGO_BIN_EXE_quickstart"),
            6,
            &[
                "DEVELOPMENT root",
                "HTTP 200: orders for spiffe://example.org/frontend",
                "HTTP 403",
                "not signed by an authority of trust domain example.org",
                "CertificateRequired",
                "new serial",
                "zero-trust mTLS with SPIFFE IDs works",
            ],
        ),
        // A call through a TLS-terminating proxy is authenticated by its
        // JWT-SVID; without one, with one for another audience, or for a
        // workload the policy refuses, it is not.
        (
            env!("CARGO_BIN_EXE_jwt-proxy"),
            4,
            &[
                "HTTP 200 OK: spiffe://example.org/frontend",
                "HTTP 401 Unauthorized: JWT-SVID required",
                "HTTP 401 Unauthorized: invalid JWT-SVID",
                "HTTP 403 Forbidden",
            ],
        ),
    ];
    for (exe, oks, lines) in demos {
        let out = run_demo(exe);
        assert_eq!(out.matches("[ok]").count(), oks, "{exe}:\n{out}");
        for line in lines {
            assert!(out.contains(line), "{exe}: {line:?} missing:\n{out}");
        }
    }
}

#[test]
fn renewing_identity_demo() {
    let out = run_demo(env!("CARGO_BIN_EXE_renewing-identity"));
    assert!(out.contains("0 failed calls"), "{out}");
}

#[test]
fn cert_manager_files_demo() {
    let out = run_demo(env!("CARGO_BIN_EXE_cert-manager-files"));
    assert!(
        out.contains("ok: rotated files served without a restart"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spire_app_serves_and_follows_rotations() {
    let td = TrustDomain::new("example.org").unwrap();
    let ca = CertificateAuthority::self_signed_for_development(td, &CaOptions::default()).unwrap();
    let issue = |id: &str| {
        ca.issue(&SvidRequest::new(SpiffeId::new(id).unwrap()))
            .unwrap()
    };
    let api = WorkloadApiServer::start().await.unwrap();
    api.set_x509(
        vec![svid_entry(&issue("spiffe://example.org/app"))],
        ca.trust_anchors().to_vec(),
        vec![],
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_spire-app"))
        .args(["--listen", "127.0.0.1:0"])
        .env("SPIFFE_ENDPOINT_SOCKET", api.endpoint())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("spire-app printed its address")
            .unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.parse::<std::net::SocketAddr>().unwrap();
        }
    };
    let client = MtlsClientConfig::builder(
        issue("spiffe://example.org/caller"),
        BundleSet::from(ca.bundle().unwrap()),
    )
    .authorizer(authorize::any())
    .build()
    .unwrap();
    let call = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(client.rustls_config())
            .connect(ServerName::from(addr.ip()), tcp)
            .await
            .unwrap();
        let server = client
            .peer_identity(tls.get_ref().1)
            .unwrap()
            .spiffe_id()
            .to_string();
        use tokio::io::AsyncWriteExt;
        tls.write_all(b"GET /whoami HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        let _ = tls.read_to_string(&mut response).await;
        (server, response)
    };
    let (server, response) = call().await;
    assert_eq!(server, "spiffe://example.org/app");
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("spiffe://example.org/caller\n"),
        "{response}"
    );

    api.set_x509(
        vec![svid_entry(&issue("spiffe://example.org/app-v2"))],
        ca.trust_anchors().to_vec(),
        vec![],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while call().await.0 != "spiffe://example.org/app-v2" {
        assert!(Instant::now() < deadline, "the rotation was not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
