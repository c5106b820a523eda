//! Run with: `SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/agent/public/api.sock cargo run -p examples --bin spire-app -- --listen 127.0.0.1:8443`
//!
//! An app whose identity and trust bundles come from a SPIRE agent over the
//! SPIFFE Workload API (`SPIFFE_ENDPOINT_SOCKET`), federated bundles
//! included. Members of its own trust domain and of every federated trust
//! domain the agent hands out may connect; per request, `GET /whoami`
//! answers the caller's SPIFFE ID to all of them and `GET /admin` only to
//! the `--admin` IDs (403 to the others). It prints `listening on ADDR`
//! once it holds an SVID, and logs every rotation the agent pushes and
//! every refused client; new handshakes use the new SVID with no restart.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use clap::Parser;
use examples::handlers::{admin, whoami};
use examples::BoxError;
use mtls_core::{authorize, Denied, MtlsServerConfig, SpiffeId, SpireSource};
use mtls_tower::{AuthorizeLayer, MtlsConnectInfo, MtlsListener, RoutePolicy};

/// Serve with an identity from the SPIFFE Workload API.
#[derive(Debug, Parser)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// A SPIFFE ID that may call `GET /admin` (repeatable; nobody if none).
    #[arg(long = "admin", value_name = "ID")]
    admins: Vec<SpiffeId>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spire-app: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let spire = Arc::new(SpireSource::connect().await?);
    let own = spire.svid().ok_or("no SVID")?;
    println!("identity {} from {}", own.spiffe_id(), spire.endpoint());

    // Members of any trust domain the agent gave us a bundle for.
    let bundles_of = spire.clone();
    let trusted = authorize::from_fn(move |peer: &SpiffeId| {
        if bundles_of.bundles().contains(peer.trust_domain().name()) {
            Ok(())
        } else {
            Err(Denied::new(
                peer,
                "its trust domain is not federated with ours",
            ))
        }
    });
    let server = MtlsServerConfig::builder(spire.clone(), spire.clone())
        .authorizer(trusted)
        .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        .on_rejection(|e| eprintln!("spire-app: rejected a client: {e}"))
        .build()?;

    let mut updates = spire.changes();
    let watcher = spire.clone();
    tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            if let Some(svid) = watcher.svid() {
                eprintln!(
                    "spire-app: rotated: {} until {:?}",
                    svid.spiffe_id(),
                    svid.not_after()
                );
            }
        }
    });

    let policy = RoutePolicy::builder()
        .route("/admin", authorize::one_of(args.admins))
        .route("/whoami", authorize::any())
        .build()?;
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/admin", get(admin))
        .layer(AuthorizeLayer::new(policy));
    let listener = MtlsListener::bind(args.listen.as_str(), server).await?;
    println!("listening on {}", listener.local_addr());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
    )
    .await?;
    Ok(())
}
