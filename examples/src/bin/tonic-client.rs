//! Run with: `cargo run -p examples --bin tonic-client -- --addr localhost:8443 --call whoami --cert client.pem --key client.key --bundle bundle.pem --server-id spiffe://example.org/server`
//!
//! A gRPC client (tonic, over mtls-tower's `MtlsConnector`) of
//! `mtls.examples.v1.Identity` that presents its X.509-SVID and accepts only
//! a server presenting the SPIFFE ID `--server-id`.
//!
//! Prints the reply (`WhoAmI`: the SPIFFE ID the server saw; `Admin`: its
//! message) on stdout. A call that ends in a status other than OK prints
//! the status code and message on stderr and exits 1, as does a connection
//! or handshake failure; usage errors exit 2.

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueEnum};
use http::Uri;
use mtls_tower::MtlsConnector;
use tonic::transport::Endpoint;
use tonic::{Code, Status};

use examples::cli::{self, ClientArgs};
use examples::identity_proto::identity_client::IdentityClient;
use examples::identity_proto::{AdminRequest, WhoAmIRequest};
use examples::{error_chain, BoxError};

const PROGRAM: &str = "tonic-client";

/// How long connecting (TCP and TLS) and each call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// gRPC client with mutual TLS and SPIFFE IDs: call mtls.examples.v1.Identity.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version)]
#[command(group(ArgGroup::new("server").required(true).args(["url", "addr"])))]
struct Cli {
    /// The server as a URL: https://HOST:PORT or http://HOST:PORT (TLS is
    /// used either way; without a port, 443).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    url: Option<Uri>,
    /// The server as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr)]
    addr: Option<Uri>,
    /// The method to call.
    #[arg(long, value_enum, default_value_t = Call::Whoami)]
    call: Call,
    #[command(flatten)]
    client: ClientArgs,
}

/// The methods of `Identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Call {
    /// `WhoAmI`: the caller's SPIFFE ID, as the server saw it.
    Whoami,
    /// `Admin`: allowed only to the server's admins.
    Admin,
}

/// `http(s)://HOST[:PORT][/]` as the `http://HOST:PORT` tonic dials: the
/// `http` scheme keeps tonic from trying TLS of its own, the connector
/// always speaks TLS.
fn parse_url(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|e| format!("{e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("expected an http:// or https:// URL".into());
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("the URL names the server only: no path, no query".into());
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or("no host in the URL")?;
    dial_uri(host, uri.port_u16().unwrap_or(443))
}

/// `HOST:PORT` as `http://HOST:PORT`.
fn parse_addr(s: &str) -> Result<Uri, String> {
    let uri: Uri = format!("http://{s}")
        .parse()
        .map_err(|e| format!("{e}: expected HOST:PORT"))?;
    match (uri.host(), uri.port_u16(), uri.path()) {
        (Some(host), Some(port), "/" | "") if !host.is_empty() => dial_uri(host, port),
        _ => Err("expected HOST:PORT".into()),
    }
}

fn dial_uri(host: &str, port: u16) -> Result<Uri, String> {
    format!("http://{host}:{port}")
        .parse()
        .map_err(|e| format!("{e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::exit(PROGRAM, run(cli).await)
}

async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    let config = cli.client.client_config(PROGRAM, &[b"h2"])?;
    let target = cli.url.or(cli.addr).ok_or("give --url or --addr")?;
    let channel = Endpoint::from(target.clone())
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .connect_with_connector(MtlsConnector::grpc(config))
        .await
        .map_err(|e| format!("cannot connect to {target}: {}", error_chain(&e)))?;
    let mut client = IdentityClient::new(channel);
    let (method, result) = match cli.call {
        Call::Whoami => (
            "WhoAmI",
            client
                .who_am_i(WhoAmIRequest {})
                .await
                .map(|r| r.into_inner().spiffe_id),
        ),
        Call::Admin => (
            "Admin",
            client
                .admin(AdminRequest {})
                .await
                .map(|r| r.into_inner().message),
        ),
    };
    match result {
        Ok(reply) => {
            println!("{reply}");
            Ok(ExitCode::SUCCESS)
        }
        Err(status) => {
            eprintln!("{PROGRAM}: {method}: {}", describe(&status));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `CODE_NAME (n): message[: cause]...`, with the canonical gRPC code
/// name; a cause whose text is already there is not repeated.
fn describe(status: &Status) -> String {
    let code = status.code();
    let mut text = format!(
        "{} ({}): {}",
        code_name(code),
        code as i32,
        status.message()
    );
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let part = e.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// The canonical name of a gRPC status code, as in the gRPC specification.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
