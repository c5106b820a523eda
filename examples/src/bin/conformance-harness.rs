//! Run with: `SPIFFE_ENDPOINT_SOCKET=unix:///path/to/agent.sock cargo run -p examples --bin conformance-harness`
//!
//! A harness for the SPIFFE SDK conformance test suite, contract v1
//! (arndt-s/spiffe-conformance-test-suite, `docs/HARNESS_CONTRACT.md`).
//!
//! - SVIDs and bundles come only from the Workload API found through
//!   `SPIFFE_ENDPOINT_SOCKET` (mtls-core's `SpireSource`).
//! - The X.509 port (TLS on 127.0.0.1) requires a client certificate,
//!   authenticates it with mtls-core (any SPIFFE ID is authorized), writes the
//!   client's SPIFFE ID and `\n`, and closes. A rejected client gets a TLS
//!   alert and nothing written.
//! - The control port (HTTP/1.1 on 127.0.0.1): `POST /v1/x509/dial`
//!   `{"address": "ip:port"}` dials as an mTLS client and answers
//!   `{"status":"ok","spiffe_id":...}` or 422 `{"status":"rejected"}`; the JWT
//!   endpoints answer 501 `{"status":"unsupported"}`; `GET /v1/info`.
//! - Prints `SPIFFE_HARNESS_VERSION=1`, `SPIFFE_X509_PORT=<port>`,
//!   `SPIFFE_CONTROL_PORT=<port>`, then `READY` once it holds an SVID.
//!   Rotations take effect for new connections; SIGTERM ends it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use examples::BoxError;
use mtls_core::{authorize, MtlsClientConfig, MtlsServerConfig, SpireSource};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// How long a peer may take to finish a handshake on either side.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance-harness: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    // Both listeners first; READY only once the SDK holds an SVID.
    let x509 = TcpListener::bind("127.0.0.1:0").await?;
    let control = TcpListener::bind("127.0.0.1:0").await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "SPIFFE_HARNESS_VERSION=1")?;
    writeln!(out, "SPIFFE_X509_PORT={}", x509.local_addr()?.port())?;
    writeln!(out, "SPIFFE_CONTROL_PORT={}", control.local_addr()?.port())?;
    out.flush()?;
    drop(out);

    // The endpoint comes from SPIFFE_ENDPOINT_SOCKET only; wait as long as
    // it takes (the suite decides when to give up).
    let spire = tokio::select! {
        source = SpireSource::builder().initial_timeout(None).connect() => Arc::new(source?),
        () = terminated() => return Ok(()),
    };

    let server = MtlsServerConfig::builder(spire.clone(), spire.clone())
        .authorizer(authorize::any())
        .on_rejection(|e| eprintln!("conformance-harness: x509 port rejected a client: {e}"))
        .build()?;
    let client = MtlsClientConfig::builder(spire.clone(), spire.clone())
        .authorizer(authorize::any())
        .on_rejection(|e| eprintln!("conformance-harness: dial rejected a server: {e}"))
        .build()?;
    tokio::spawn(serve_x509(x509, server));
    let app = Router::new()
        .route("/v1/x509/dial", post(dial))
        .route("/v1/jwt/validate", post(unsupported))
        .route("/v1/jwt/fetch", post(unsupported))
        .route("/v1/info", get(info))
        .with_state(Arc::new(client));
    tokio::spawn(async move { axum::serve(control, app).await });

    println!("READY");
    std::io::stdout().flush()?;
    terminated().await;
    Ok(())
}

/// The X.509 port: authenticate, write the client's SPIFFE ID, close.
async fn serve_x509(listener: TcpListener, server: MtlsServerConfig) {
    let acceptor = tokio_rustls::TlsAcceptor::from(server.rustls_config());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (acceptor, server) = (acceptor.clone(), server.clone());
        tokio::spawn(async move {
            let Ok(Ok(mut tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return; // rejected: the alert was sent; nothing is written
            };
            match server.peer_identity(tls.get_ref().1) {
                Ok(peer) => {
                    let _ = tls
                        .write_all(format!("{}\n", peer.spiffe_id()).as_bytes())
                        .await;
                    let _ = tls.shutdown().await;
                }
                Err(e) => eprintln!("conformance-harness: x509 port rejected a client: {e}"),
            }
        });
    }
}

async fn dial(State(client): State<Arc<MtlsClientConfig>>, body: Bytes) -> Response {
    let address = match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("address").and_then(Value::as_str).map(str::to_owned))
    {
        Some(address) => address,
        None => {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"status": "error", "message": "expected {\"address\": \"host:port\"}"}),
            )
        }
    };
    match dial_address(&client, &address).await {
        Ok(id) => answer(StatusCode::OK, json!({"status": "ok", "spiffe_id": id})),
        Err(Dial::Rejected(message)) => answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"status": "rejected", "message": message}),
        ),
        Err(Dial::Error(message)) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"status": "error", "message": message}),
        ),
    }
}

enum Dial {
    /// The SDK refused the server.
    Rejected(String),
    /// The harness could not perform the dial.
    Error(String),
}

async fn dial_address(client: &MtlsClientConfig, address: &str) -> Result<String, Dial> {
    let addr: SocketAddr = address
        .parse()
        .map_err(|e| Dial::Error(format!("address {address:?}: {e}")))?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| Dial::Error(format!("cannot connect to {addr}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(client.rustls_config());
    let handshake = connector.connect(ServerName::from(addr.ip()), tcp);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Err(_) => return Err(Dial::Error(format!("handshake with {addr} timed out"))),
        Ok(Err(e)) => return Err(classify(e)),
        Ok(Ok(tls)) => tls,
    };
    let peer = client
        .peer_identity(tls.get_ref().1)
        .map_err(|e| Dial::Rejected(e.to_string()))?;
    Ok(peer.spiffe_id().to_string())
}

/// A handshake error is a rejection when our verifier refused the server's
/// certificate; anything else is an error of the dial.
fn classify(e: std::io::Error) -> Dial {
    let rejected = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        });
    if rejected {
        Dial::Rejected(e.to_string())
    } else {
        Dial::Error(e.to_string())
    }
}

async fn unsupported() -> Response {
    answer(
        StatusCode::NOT_IMPLEMENTED,
        json!({"status": "unsupported", "message": "mtls implements X.509-SVIDs only"}),
    )
}

async fn info() -> Response {
    answer(
        StatusCode::OK,
        json!({"sdk": "mtls", "sdk_version": env!("CARGO_PKG_VERSION"), "language": "rust"}),
    )
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
