//! Run with: `cargo run -p examples --bin axum-client -- --url https://localhost:8443/whoami --cert client.pem --key client.key --bundle bundle.pem --server-id spiffe://example.org/server`
//!
//! An HTTPS client (hyper_util's client with mtls-tower's `MtlsConnector`)
//! that presents its X.509-SVID and accepts only a server presenting the
//! SPIFFE ID `--server-id`.
//!
//! Prints the response body on stdout when the status is 2xx. Otherwise, or
//! when the handshake or the request fails, prints the status and body (or
//! the error) on stderr and exits 1; usage errors exit 2.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::Uri;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_tower::MtlsConnector;

use examples::cli::{self, ClientArgs};
use examples::{error_chain, BoxError};

const PROGRAM: &str = "axum-client";

/// How long the whole request may take, handshake included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// HTTPS client with mutual TLS and SPIFFE IDs: GET a URL, print the body.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version)]
struct Cli {
    /// The URL to GET, such as https://localhost:8443/whoami.
    #[arg(long, value_name = "URL", value_parser = parse_https_url)]
    url: Uri,
    #[command(flatten)]
    client: ClientArgs,
}

fn parse_https_url(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|e| format!("{e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err("expected an https:// URL (this client always speaks TLS)".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host in the URL".into());
    }
    Ok(uri)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::exit(PROGRAM, run(cli).await)
}

async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    let config = cli.client.client_config(PROGRAM, &[b"h2", b"http/1.1"])?;
    let client =
        Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(MtlsConnector::new(config));
    let url = cli.url;
    let exchange = async {
        let response = client.get(url.clone()).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, BoxError>((status, body))
    };
    let (status, body) = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("GET {url}: no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("GET {url}: {}", error_chain(&*e)))?;
    if status.is_success() {
        let mut out = std::io::stdout().lock();
        out.write_all(&body)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    // The status, then the body as the server sent it.
    let mut err = std::io::stderr().lock();
    writeln!(err, "{PROGRAM}: GET {url}: HTTP {status}")?;
    err.write_all(&body)?;
    if !body.ends_with(b"\n") && !body.is_empty() {
        writeln!(err)?;
    }
    Ok(ExitCode::FAILURE)
}
