//! Run with: `cargo run -p examples --bin axum-server -- --listen 127.0.0.1:8443 --cert server.pem --key server.key --bundle bundle.pem [--admin ID]...`
//!
//! An HTTPS server on axum where every client authenticates with its
//! X.509-SVID (mutual TLS, SPIFFE IDs):
//!
//! - who may connect at all is decided during the handshake (`--allow`,
//!   `--allow-trust-domain`; by default the members of the server's own
//!   trust domain);
//! - who may call what is decided per request by mtls-tower's
//!   `AuthorizeLayer`: `GET /whoami` (anyone connected) answers the
//!   caller's SPIFFE ID; `GET /admin` answers 200 only to the `--admin`
//!   IDs and 403 to everyone else.
//!
//! With `--federate TD=URL,https_spiffe,ENDPOINT_ID,BOOTSTRAP_FILE` (or
//! `TD=URL,https_web[,CA_FILE]`, repeatable) it also trusts a partner trust
//! domain whose bundle it fetches from the partner's SPIFFE bundle endpoint
//! and follows as it changes: a partner's CA rotation needs no restart.
//!
//! Prints `listening on ADDR` on stdout once it accepts connections. Exit
//! status 1 (and a message on stderr) when a file cannot be loaded or the
//! address cannot be bound; 2 on usage errors.

use std::process::ExitCode;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use clap::Parser;
use mtls_core::authorize;
use mtls_tower::{AuthorizeLayer, MtlsConnectInfo, MtlsListener, PeerId, RoutePolicy};

use examples::cli::{self, ServerArgs};
use examples::federate::FederationArgs;
use examples::BoxError;

const PROGRAM: &str = "axum-server";

/// HTTPS server with mutual TLS and SPIFFE IDs: GET /whoami, GET /admin.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    federation: FederationArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::exit(PROGRAM, run(cli).await)
}

async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    let args = cli.server;
    let alpn: &[&[u8]] = &[b"h2", b"http/1.1"];
    let server = if cli.federation.is_empty() {
        args.server_config(PROGRAM, alpn)?
    } else {
        let federation = &cli.federation;
        args.server_config_with(PROGRAM, alpn, |files| {
            Ok(Arc::new(federation.compose(files)?))
        })?
    };

    // Per request: /admin for the admins only, /whoami for anyone who got
    // through the handshake; any other path: 403 (default deny).
    let policy = RoutePolicy::builder()
        .route("/admin", args.admin_authorizer())
        .route("/whoami", authorize::any())
        .build()?;
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/admin", get(admin))
        .layer(AuthorizeLayer::new(policy));

    let listener = MtlsListener::bind(&args.listen, server)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    cli::announce(listener.local_addr())?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
    )
    .with_graceful_shutdown(cli::shutdown_signal())
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The caller's SPIFFE ID and a newline.
async fn whoami(PeerId(id): PeerId) -> String {
    format!("{id}\n")
}

/// Reached only by the `--admin` IDs: the layer answers 403 to the others.
async fn admin() -> &'static str {
    "welcome, admin\n"
}
