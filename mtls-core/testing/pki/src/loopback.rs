//! A TLS server that says `hi` and its client, on loopback; one handshake
//! between two configs ([`loopback_handshake`]).
//!
//! ```
//! use mtls_core::{authorize, MtlsClientConfig, MtlsServerConfig};
//! use mtls_testing::{call_hi, id, serve_hi, TestCa};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let ca = TestCa::root("example.org");
//! let server = MtlsServerConfig::builder(ca.leaf("spiffe://example.org/server").svid(), ca.bundle_set())
//!     .authorizer(authorize::any())
//!     .build()
//!     .unwrap();
//! let client = MtlsClientConfig::builder(ca.leaf("spiffe://example.org/client").svid(), ca.bundle_set())
//!     .authorizer(authorize::exact(id("spiffe://example.org/server")))
//!     .build()
//!     .unwrap();
//! let addr = serve_hi(&server).await;
//! let (said, _leaf) = call_hi(&client, addr).await.unwrap();
//! assert_eq!(said, b"hi");
//! # }
//! ```

use std::io;
use std::net::SocketAddr;

use mtls_core::rustls::pki_types::{CertificateDer, ServerName};
use mtls_core::{MtlsClientConfig, MtlsServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{client, TlsAcceptor, TlsConnector};

/// Serves `hi` with `server` on loopback to every peer it accepts; returns
/// the address.
pub async fn serve_hi(server: &MtlsServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server.rustls_config());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"hi").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

/// What the server at `addr` answers `client`, and the leaf it presented;
/// an error when the handshake or the read fails (a TLS 1.3 server's
/// refusal of the client shows on the first read).
pub async fn call_hi(
    client: &MtlsClientConfig,
    addr: SocketAddr,
) -> io::Result<(Vec<u8>, CertificateDer<'static>)> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = TlsConnector::from(client.rustls_config());
    let server_name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(server_name, tcp).await?;
    let leaf = client
        .peer_identity(tls.get_ref().1)
        .map_err(io::Error::other)?
        .leaf()
        .clone();
    let mut buf = Vec::new();
    tls.read_to_end(&mut buf).await?;
    Ok((buf, leaf))
}

/// One handshake on loopback between `server` and `client` (which names
/// the server `localhost`): the client's stream, and what `inspect` reads
/// of the server's side of the connection (within ten seconds). Panics when
/// either side fails.
pub async fn loopback_handshake<T: Send + 'static>(
    server: &MtlsServerConfig,
    client: &MtlsClientConfig,
    inspect: impl FnOnce(&mtls_core::rustls::ServerConnection) -> T + Send + 'static,
) -> (client::TlsStream<TcpStream>, T) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server.rustls_config());
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        inspect(tls.get_ref().1)
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(client.rustls_config())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), accept)
        .await
        .unwrap()
        .unwrap();
    (tls, seen)
}
