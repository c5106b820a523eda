//! Run with: `cargo test -p examples --test conformance`
//!
//! The conformance harness against a Workload API server speaking SPIFFE's
//! `workload.proto` on a unix socket (SPIRE itself cannot run here): it
//! follows the harness contract v1 on its X.509 and control ports, and
//! follows SVID rotations without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{authorize, MtlsClientConfig, MtlsServerConfig, SpiffeId, TrustDomain, X509Svid};
use mtls_testing::accept_any_server;
use mtls_workload_api_testing::{svid_entry, WorkloadApiServer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HARNESS: &str = env!("CARGO_BIN_EXE_conformance-harness");

struct Harness {
    child: Child,
    x509: SocketAddr,
    control: SocketAddr,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_harness(endpoint: &str) -> Harness {
    let mut child = Command::new(HARNESS)
        .env("SPIFFE_ENDPOINT_SOCKET", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut version, mut x509, mut control) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the harness printed READY in time");
        if line == "READY" {
            break;
        }
        if let Some((key, value)) = line.split_once('=') {
            match key {
                "SPIFFE_HARNESS_VERSION" => version = Some(value.to_owned()),
                "SPIFFE_X509_PORT" => x509 = Some(value.parse::<u16>().unwrap()),
                "SPIFFE_CONTROL_PORT" => control = Some(value.parse::<u16>().unwrap()),
                _ => {}
            }
        }
    }
    assert_eq!(version.as_deref(), Some("1"));
    Harness {
        child,
        x509: SocketAddr::from(([127, 0, 0, 1], x509.expect("x509 port"))),
        control: SocketAddr::from(([127, 0, 0, 1], control.expect("control port"))),
    }
}

fn client_config(svid: &X509Svid, ca: &CertificateAuthority) -> MtlsClientConfig {
    MtlsClientConfig::builder(
        svid.clone(),
        mtls_core::BundleSet::from(ca.bundle().unwrap()),
    )
    .authorizer(authorize::any())
    .build()
    .unwrap()
}

/// Connects to the X.509 port as `client`: the server's SPIFFE ID and the
/// line the harness wrote (empty when it wrote nothing).
async fn x509_call(addr: SocketAddr, client: &MtlsClientConfig) -> (Option<String>, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client.rustls_config());
    let Ok(mut tls) = connector.connect(ServerName::from(addr.ip()), tcp).await else {
        return (None, String::new());
    };
    let server = client
        .peer_identity(tls.get_ref().1)
        .ok()
        .map(|p| p.spiffe_id().to_string());
    let mut line = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_string(&mut line)).await;
    (server, line)
}

/// A plain HTTP/1.1 request to the control port: status and JSON body.
async fn control(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: harness\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let json = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

/// `POST /v1/x509/dial`: the harness, as a client, dials `address`.
async fn dial(control_addr: SocketAddr, address: SocketAddr) -> (u16, serde_json::Value) {
    let body = format!("{{\"address\":\"{address}\"}}");
    control(control_addr, "POST", "/v1/x509/dial", &body).await
}

/// A TLS server presenting `svid` for the harness to dial; it accepts any
/// client (the dial tests the harness as a client).
async fn peer_server(svid: X509Svid, ca: &CertificateAuthority) -> SocketAddr {
    let config = MtlsServerConfig::builder(svid, mtls_core::BundleSet::from(ca.bundle().unwrap()))
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config.rustls_config());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_follows_the_contract() {
    let td = TrustDomain::new("example.org").unwrap();
    let ca = Arc::new(
        CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())
            .unwrap(),
    );
    let rogue =
        CertificateAuthority::self_signed_for_development(td, &CaOptions::default()).unwrap();
    let issue = |ca: &CertificateAuthority, id: &str| {
        ca.issue(&SvidRequest::new(SpiffeId::new(id).unwrap()))
            .unwrap()
    };

    let api = WorkloadApiServer::start().await.unwrap();
    let harness_v1 = issue(&ca, "spiffe://example.org/harness");
    api.set_x509(
        vec![svid_entry(&harness_v1)],
        ca.trust_anchors().to_vec(),
        vec![],
    );
    let harness = start_harness(&api.endpoint());

    // X.509 port: an authenticated client gets its own ID back.
    let client = client_config(&issue(&ca, "spiffe://example.org/client"), &ca);
    let (server, line) = x509_call(harness.x509, &client).await;
    assert_eq!(server.as_deref(), Some("spiffe://example.org/harness"));
    assert_eq!(line, "spiffe://example.org/client\n");

    // A client from an untrusted CA, and one without a certificate, get nothing.
    let impostor = client_config(&issue(&rogue, "spiffe://example.org/client"), &ca);
    assert_eq!(x509_call(harness.x509, &impostor).await.1, "");
    // (The harness SVID has no DNS name, so this client skips server checks:
    // it exists only to show the harness refusing a client without a
    // certificate.)
    let no_cert = rustls::ClientConfig::builder_with_provider(mtls_core::default_crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(accept_any_server(&mtls_core::default_crypto_provider()))
        .with_no_client_auth();
    let tcp = TcpStream::connect(harness.x509).await.unwrap();
    let mut line = String::new();
    if let Ok(mut tls) = tokio_rustls::TlsConnector::from(Arc::new(no_cert))
        .connect(ServerName::from(harness.x509.ip()), tcp)
        .await
    {
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_string(&mut line)).await;
    }
    assert_eq!(line, "", "a client without a certificate is refused");

    // Control port: dial a good server, a server from an untrusted CA, a closed port.
    let good = peer_server(issue(&ca, "spiffe://example.org/peer"), &ca).await;
    let (status, body) = dial(harness.control, good).await;
    assert_eq!(
        (status, body["status"].as_str(), body["spiffe_id"].as_str()),
        (200, Some("ok"), Some("spiffe://example.org/peer"))
    );
    let bad = peer_server(issue(&rogue, "spiffe://example.org/peer"), &rogue).await;
    let (status, body) = dial(harness.control, bad).await;
    assert_eq!((status, body["status"].as_str()), (422, Some("rejected")));
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (status, body) = dial(harness.control, closed).await;
    assert_eq!((status, body["status"].as_str()), (500, Some("error")));
    for path in ["/v1/jwt/validate", "/v1/jwt/fetch"] {
        let (status, body) = control(harness.control, "POST", path, "{}").await;
        assert_eq!(
            (status, body["status"].as_str()),
            (501, Some("unsupported")),
            "{path}"
        );
    }
    let (status, body) = control(harness.control, "GET", "/v1/info", "").await;
    assert_eq!((status, body["sdk"].as_str()), (200, Some("mtls")));

    // Rotation through the Workload API: new connections see the new SVID.
    let harness_v2 = issue(&ca, "spiffe://example.org/harness-v2");
    api.set_x509(
        vec![svid_entry(&harness_v2)],
        ca.trust_anchors().to_vec(),
        vec![],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (server, line) = x509_call(harness.x509, &client).await;
        if server.as_deref() == Some("spiffe://example.org/harness-v2") {
            assert_eq!(line, "spiffe://example.org/client\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rotation not served: still {server:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM ends it promptly.
    let mut harness = harness;
    let pid = harness.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while harness.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the harness ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn harness_never_prints_ready_without_an_endpoint() {
    let out = Command::new(HARNESS)
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(!stdout.contains("READY"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SPIFFE_ENDPOINT_SOCKET"));
}
