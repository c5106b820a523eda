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
//!   caller's SPIFFE ID; `GET /items/{id}` (anyone connected) answers the
//!   item; `GET /admin` answers 200 only to the `--admin` IDs and 403 to
//!   everyone else.
//!
//! With `--policy FILE` a policy file (docs/policy.md) decides every
//! request instead, `/admin` included, reloaded when the file changes;
//! `--policy-mode audit` logs and counts what it would deny without
//! refusing anything. `--policy-mode learn --learn-out FILE` (no
//! `--policy`) allows every caller that may connect and writes the policy
//! allowing exactly the calls it saw (caller, method, route template) to
//! FILE, periodically and on SIGINT/SIGTERM: restart with `--policy FILE`
//! to enforce it.
//!
//! Logs (tracing) go to stderr, filtered by `RUST_LOG` (default `info`).
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
use mtls_tower::{AuthorizeLayer, MtlsConnectInfo, RoutePolicy};

use axum::extract::Path;
use examples::cli::{self, ServerArgs};
use examples::federate::FederationArgs;
use examples::handlers::{admin, whoami};
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
    cli::server_main(PROGRAM, |cli: &Cli| &cli.server, run).await
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

    let routes = Router::new()
        .route("/whoami", get(whoami))
        .route("/items/{id}", get(item))
        .route("/admin", get(admin));
    let served = args.policy.load()?;
    let app = match &served {
        // Learn mode: after routing, so that the layer sees the route
        // templates (`/items/{id}`, not `/items/7`).
        Some(served) if served.is_learning() => {
            routes.route_layer(AuthorizeLayer::new(served.file.clone()))
        }
        // A policy file decides every request, before routing: a path
        // without a rule is 403 (default deny), routed or not.
        Some(served) => routes.layer(AuthorizeLayer::new(served.file.clone())),
        // Per request: /admin for the admins only, /whoami and /items for
        // anyone who got through the handshake; any other path: 403
        // (default deny).
        None => routes.layer(AuthorizeLayer::new(
            RoutePolicy::builder()
                .route("/admin", args.admin_authorizer())
                .route("/whoami", authorize::any())
                .route("/items", authorize::any())
                .build()?,
        )),
    };

    let listener = args.bind(server).await?;
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
    )
    .with_graceful_shutdown(cli::shutdown_signal());
    cli::serve_policy(served.as_ref(), server).await
}

/// Item `id`.
async fn item(Path(id): Path<String>) -> String {
    format!("item {id}\n")
}
