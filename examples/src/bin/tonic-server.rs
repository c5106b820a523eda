//! Run with: `cargo run -p examples --bin tonic-server -- --listen 127.0.0.1:8443 --cert server.pem --key server.key --bundle bundle.pem [--admin ID]...`
//!
//! A gRPC server on tonic serving `mtls.examples.v1.Identity`
//! (`proto/identity.proto`) where every client authenticates with its
//! X.509-SVID (mutual TLS, SPIFFE IDs):
//!
//! - who may connect at all is decided during the handshake (`--allow`,
//!   `--allow-trust-domain`; by default the members of the server's own
//!   trust domain);
//! - who may call which method is decided per request by mtls-tower's
//!   `AuthorizeLayer`: `WhoAmI` (anyone connected) answers the caller's
//!   SPIFFE ID; `Admin` answers only the `--admin` IDs, and
//!   `PERMISSION_DENIED` everyone else.
//!
//! With `--policy FILE` a policy file (docs/policy.md) decides every call
//! instead, `Admin` included (rules name gRPC methods:
//! `grpc = ["/mtls.examples.v1.Identity/Admin"]`), reloaded when the file
//! changes; `--policy-mode audit` logs and counts what it would deny
//! without refusing anything; `--policy-mode learn --learn-out FILE`
//! allows every caller that may connect and writes the policy allowing
//! exactly the (caller, gRPC method) calls it saw to FILE, periodically
//! and on SIGINT/SIGTERM. Logs (tracing) go to stderr, filtered by
//! `RUST_LOG` (default `info`).
//!
//! The flags are those of `axum-server`. Prints `listening on ADDR` on
//! stdout once it accepts connections. Exit status 1 (and a message on
//! stderr) when a file cannot be loaded or the address cannot be bound; 2
//! on usage errors.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use mtls_core::authorize;
use mtls_tower::{AuthorizeLayer, AuthorizeRequest, RoutePolicy};

use examples::cli::{self, ServerArgs};
use examples::identity_proto::{self, identity_server::IdentityServer};
use examples::identity_service::IdentityService;
use examples::BoxError;

const PROGRAM: &str = "tonic-server";

/// gRPC server with mutual TLS and SPIFFE IDs: mtls.examples.v1.Identity.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::server_main(PROGRAM, |cli: &Cli| &cli.server, run).await
}

async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    let args = cli.server;
    let server = args.server_config(PROGRAM, &[b"h2"])?;

    let served = args.policy.load()?;
    // Who decides each call, chosen here: a policy file, or the built-in
    // route policy.
    let decider: Arc<dyn AuthorizeRequest> = match &served {
        // A policy file (enforce, audit or learn) decides every call.
        Some(served) => Arc::new(served.file.clone()),
        // Per call: Admin for the admins only, WhoAmI for anyone who got
        // through the handshake; anything else: PERMISSION_DENIED.
        None => Arc::new(
            RoutePolicy::builder()
                .route(identity_proto::ADMIN_PATH, args.admin_authorizer())
                .route(identity_proto::WHO_AM_I_PATH, authorize::any())
                .build()?,
        ),
    };

    let listener = args.bind(server).await?;
    let server = tonic::transport::Server::builder()
        .layer(AuthorizeLayer::new(decider))
        .add_service(IdentityServer::new(IdentityService))
        .serve_with_incoming_shutdown(listener, cli::shutdown_signal());
    cli::serve_policy(served.as_ref(), server).await
}
