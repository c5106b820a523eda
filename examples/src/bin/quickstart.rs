//! Run with: `cargo run -p examples --bin quickstart`
//!
//! Two in-process services authenticate each other with mutual TLS and
//! SPIFFE IDs over loopback, then a third, signed by an untrusted CA with
//! the same trust domain name, is turned away.
//!
//! The certificates come from a throwaway, in-memory **development** CA
//! (a self-signed root, never to be used in production).

use std::net::SocketAddr;

use mtls_core::{authorize, MtlsClientConfig, MtlsServerConfig, SpiffeId, TrustDomain};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../dev_ca.rs"]
mod dev_ca;
use dev_ca::BoxError;

const BACKEND: &str = "spiffe://example.org/backend";
const FRONTEND: &str = "spiffe://example.org/frontend";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let td = TrustDomain::new("example.org")?;
    println!("development CA for trust domain {td} (self-signed, in memory; not for production)");
    let ca = dev_ca::DevCa::new(&td)?;
    let bundles = ca.bundle_set()?;

    // The backend admits members of example.org only.
    let backend = MtlsServerConfig::builder(ca.svid(BACKEND)?, bundles.clone())
        .authorizer(authorize::member_of(td.clone()))
        .build()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(listener, backend, 2));

    // The frontend accepts only the backend's SPIFFE ID as its server.
    let frontend = MtlsClientConfig::builder(ca.svid(FRONTEND)?, bundles.clone())
        .authorizer(authorize::exact(SpiffeId::new(BACKEND)?))
        .build()?;
    let reply = call(&frontend, addr).await?;
    println!("frontend -> backend: handshake ok; backend says: {reply}");
    if reply != format!("hello {FRONTEND}") {
        return Err(format!("unexpected reply {reply:?}").into());
    }

    // An impostor: a valid-looking SVID for example.org from another CA.
    let rogue = dev_ca::DevCa::new(&td)?;
    let intruder = MtlsClientConfig::builder(rogue.svid("spiffe://example.org/intruder")?, bundles)
        .authorizer(authorize::exact(SpiffeId::new(BACKEND)?))
        .build()?;
    match call(&intruder, addr).await {
        Ok(reply) => return Err(format!("impostor was admitted: {reply}").into()),
        Err(e) => println!("impostor (untrusted CA) -> backend: refused: {e}"),
    }

    match server.await? {
        Ok(()) => {
            println!("ok: mutual TLS with SPIFFE IDs works");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Accepts `n` connections and greets each authenticated peer by SPIFFE ID.
async fn serve(listener: TcpListener, config: MtlsServerConfig, n: usize) -> Result<(), BoxError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config.rustls_config());
    for _ in 0..n {
        let (tcp, _) = listener.accept().await?;
        match acceptor.accept(tcp).await {
            Ok(mut tls) => {
                let peer = config.peer_identity(tls.get_ref().1)?;
                println!("backend: authenticated {}", peer.spiffe_id());
                tls.write_all(format!("hello {}", peer.spiffe_id()).as_bytes())
                    .await?;
                tls.shutdown().await?;
            }
            Err(e) => println!("backend: handshake rejected: {e}"),
        }
    }
    Ok(())
}

async fn call(config: &MtlsClientConfig, addr: SocketAddr) -> Result<String, BoxError> {
    let connector = tokio_rustls::TlsConnector::from(config.rustls_config());
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::from(addr.ip());
    let mut tls = connector.connect(name, tcp).await?;
    let server = config.peer_identity(tls.get_ref().1)?;
    println!("client: server authenticated as {}", server.spiffe_id());
    let mut reply = String::new();
    tls.read_to_string(&mut reply).await?;
    Ok(reply)
}
