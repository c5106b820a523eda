//! Run with: `cargo run -p examples --bin quickstart`
//!
//! Zero-trust mTLS in one minute, with nothing to set up: an embedded CA
//! issues SPIFFE identities, an axum backend admits only authenticated
//! peers and lets only `frontend` call `/orders`, and every kind of caller
//! is shown what it gets. Exits 0 when everything behaved as shown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use examples::{demo, error_chain, BoxError};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{
    authorize, BundleSet, MtlsClientConfig, MtlsServerConfig, RenewingSvid, SpiffeId, SvidSpec,
    TrustDomain, X509Svid,
};
use mtls_tower::{AuthorizeLayer, MtlsConnector, MtlsListener, PeerId, RoutePolicy};
use rustls::pki_types::ServerName;

const BACKEND: &str = "spiffe://example.org/backend";
const FRONTEND: &str = "spiffe://example.org/frontend";
const INTRUDER: &str = "spiffe://example.org/intruder";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(0) => {
            println!(
                "\nall {CHECKS} checks behaved as shown: zero-trust mTLS with SPIFFE IDs works"
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(failed) => {
            println!("\n{failed} of {CHECKS} checks did NOT behave as expected");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("quickstart: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

const CHECKS: usize = 6;

/// Prints one step and whether it behaved as expected.
fn check(ok: bool, what: &str, detail: &str) -> usize {
    println!(
        "{} {what}\n    {detail}",
        if ok { "[ok]  " } else { "[FAIL]" }
    );
    usize::from(!ok)
}

async fn run() -> Result<usize, BoxError> {
    let td = TrustDomain::new("example.org")?;
    let id = |s: &str| SpiffeId::new(s);

    // 1. An embedded CA. Self-signed roots are for development only; in
    //    production, load an intermediate from your PKI, or use SPIRE.
    let ca = Arc::new(CertificateAuthority::self_signed_for_development(
        td.clone(),
        &CaOptions::default(),
    )?);
    println!("CA: DEVELOPMENT root for trust domain {td} (self-signed, in memory; never use one in production)");
    let bundles = BundleSet::from(ca.bundle()?);
    let frontend = ca.issue(&SvidRequest::new(id(FRONTEND)?))?;
    let intruder = ca.issue(&SvidRequest::new(id(INTRUDER)?))?;
    let rogue_ca =
        CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())?;
    let impostor = rogue_ca.issue(&SvidRequest::new(id(FRONTEND)?))?;
    println!("issued SVIDs: {FRONTEND}, {INTRUDER}, {BACKEND} (renewing), and an impostor {FRONTEND} from a second, untrusted CA\n");

    // 2. The backend: its own SVID renews itself from the CA; members of
    //    example.org may connect; only the frontend may call /orders.
    let backend_svid = Arc::new(
        RenewingSvid::start(
            ca.clone(),
            SvidSpec::new(id(BACKEND)?).dns_name("localhost"),
        )
        .await?,
    );
    let rejections = Arc::new(Mutex::new(Vec::new()));
    let log = rejections.clone();
    let server = MtlsServerConfig::builder(backend_svid.clone(), bundles.clone())
        .authorizer(authorize::member_of(td.clone()))
        .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        .on_rejection(move |e| {
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string())
        })
        .build()?;
    let policy = RoutePolicy::builder()
        .route("/orders", authorize::exact(id(FRONTEND)?))
        .build()?;
    let app = Router::new()
        .route(
            "/orders",
            get(|PeerId(caller): PeerId| async move { format!("orders for {caller}") }),
        )
        .layer(AuthorizeLayer::new(policy));
    let listener = MtlsListener::bind("127.0.0.1:0", server).await?;
    let addr = listener.local_addr();
    tokio::spawn(async move {
        // Puts each connection's verified peer into its requests.
        mtls_tower::serve(listener, app).await
    });
    println!("backend {BACKEND} listening on https://{addr} (policy: only {FRONTEND} may call /orders)\n");

    let mut failed = 0;

    // 3. The frontend: allowed.
    let answer = get_orders(&frontend, &bundles, addr).await;
    failed += check(
        matches!(&answer, Ok((200, body)) if body == &format!("orders for {FRONTEND}")),
        "frontend -> GET /orders: 200, the handler saw the caller's SPIFFE ID",
        &show(&answer),
    );

    // 4. The intruder: right trust domain, authenticated, but not allowed.
    let answer = get_orders(&intruder, &bundles, addr).await;
    failed += check(
        matches!(&answer, Ok((403, _))),
        "intruder (authenticated member of example.org) -> GET /orders: 403 from the authorization layer",
        &show(&answer),
    );

    // 5. An impostor: a valid-looking SVID for the frontend's ID, signed by
    //    a CA the backend does not trust.
    let answer = get_orders(&impostor, &bundles, addr).await;
    let reason = last_rejection(&rejections);
    failed += check(
        answer.is_err()
            && reason.contains("not signed by an authority of trust domain example.org"),
        "impostor (frontend's ID, untrusted CA) -> handshake refused",
        &format!("client: {}\n    backend: {reason}", show(&answer)),
    );

    // 6. A client with no certificate at all (a plain TLS client that
    //    trusts the backend's CA and checks its DNS name).
    let answer = plain_tls_client(&ca, addr).await;
    failed += check(
        answer.is_err(),
        "client without a certificate -> refused",
        &show(&answer),
    );

    // 7. Rotation: the backend renews its SVID mid-run; the next call uses
    //    the new one, with no restart and no failed request.
    let before = backend_svid.svid();
    let mut updates = backend_svid.changes();
    backend_svid.renew_now().await?;
    updates.changed().await?;
    let after = backend_svid.svid();
    let (answer, served) = get_orders_seeing_server(&frontend, &bundles, addr).await;
    failed += check(
        before.leaf() != after.leaf()
            && matches!(&answer, Ok((200, _)))
            && served.as_ref() == Some(after.leaf()),
        "backend SVID rotated mid-run -> next call still succeeds, served with the new certificate",
        &format!("{} (new serial {})", show(&answer), serial(&after)),
    );

    // 8. And the frontend's view of the backend: it insists on BACKEND.
    let wrong = MtlsClientConfig::builder(frontend.clone(), bundles.clone())
        .authorizer(authorize::exact(id("spiffe://example.org/payments")?))
        .build()?;
    let answer = request(MtlsConnector::new(wrong), addr).await;
    failed += check(
        answer.is_err(),
        "frontend expecting spiffe://example.org/payments -> refuses the backend during the handshake",
        &show(&answer),
    );
    Ok(failed)
}

async fn get_orders(
    svid: &X509Svid,
    bundles: &BundleSet,
    addr: SocketAddr,
) -> Result<(u16, String), BoxError> {
    get_orders_seeing_server(svid, bundles, addr).await.0
}

/// GET /orders as `svid`, expecting the backend's SPIFFE ID; also returns
/// the backend's leaf certificate.
async fn get_orders_seeing_server(
    svid: &X509Svid,
    bundles: &BundleSet,
    addr: SocketAddr,
) -> (
    Result<(u16, String), BoxError>,
    Option<rustls::pki_types::CertificateDer<'static>>,
) {
    let config = match MtlsClientConfig::builder(svid.clone(), bundles.clone())
        .authorizer(authorize::exact(SpiffeId::from_static(BACKEND)))
        .alpn_protocols(vec![b"h2".to_vec()])
        .build()
    {
        Ok(c) => c,
        Err(e) => return (Err(e.into()), None),
    };
    let connector = MtlsConnector::new(config);
    let leaf = match connector
        .connect(&format!("https://{addr}/").parse().unwrap_or_default())
        .await
    {
        Ok(stream) => Some(stream.peer_identity().leaf().clone()),
        Err(_) => None,
    };
    (request(connector, addr).await, leaf)
}

async fn request(connector: MtlsConnector, addr: SocketAddr) -> Result<(u16, String), BoxError> {
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let response = client
        .get(format!("https://{addr}/orders").parse()?)
        .await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn plain_tls_client(
    ca: &CertificateAuthority,
    addr: SocketAddr,
) -> Result<(u16, String), BoxError> {
    let config = demo::web_pki_client_config(ca)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut tls = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"GET /orders HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok((0, response))
}

fn show(answer: &Result<(u16, String), BoxError>) -> String {
    match answer {
        Ok((status, body)) => format!("HTTP {status}: {}", body.trim_end()),
        Err(e) => format!("refused: {}", error_chain(e.as_ref())),
    }
}

fn last_rejection(log: &Mutex<Vec<String>>) -> String {
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .last()
        .cloned()
        .unwrap_or_default()
}

fn serial(svid: &X509Svid) -> String {
    use x509_parser::prelude::FromDer;
    x509_parser::certificate::X509Certificate::from_der(svid.leaf())
        .map(|(_, c)| c.raw_serial_as_string())
        .unwrap_or_default()
}
