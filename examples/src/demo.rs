//! Helpers shared by the in-process demo examples (quickstart-style
//! programs that run a server and its clients in one process).

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_core::{MtlsClientConfig, MtlsServerConfig, PeerIdentity};
use mtls_tower::{MtlsConnectInfo, MtlsConnector, MtlsListener, PeerId};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `GET /whoami` (the caller's SPIFFE ID) on a loopback port.
pub(crate) async fn serve_whoami(server: MtlsServerConfig) -> Result<SocketAddr, BoxError> {
    let app = Router::new().route(
        "/whoami",
        get(|PeerId(id): PeerId| async move { format!("{id}\n") }),
    );
    let listener = MtlsListener::bind("127.0.0.1:0", server).await?;
    let addr = listener.local_addr();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
        )
        .await
    });
    Ok(addr)
}

/// What one call returned: the status, the body and the server's identity.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) server: Option<PeerIdentity>,
}

/// `GET https://addr/whoami` on a new connection.
pub(crate) async fn whoami(
    client: &MtlsClientConfig,
    addr: SocketAddr,
) -> Result<Answer, BoxError> {
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build::<_, Empty<Bytes>>(MtlsConnector::new(client.clone()));
    let response = http.get(format!("https://{addr}/whoami").parse()?).await?;
    let status = response.status().as_u16();
    let server = response.extensions().get::<PeerIdentity>().cloned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).trim_end().to_owned(),
        server,
    })
}

/// The error and its sources on one line.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let text = source.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = source.source();
    }
    out
}

/// The leaf's serial number in hex.
pub(crate) fn serial(identity: &PeerIdentity) -> String {
    use x509_parser::prelude::FromDer;
    x509_parser::certificate::X509Certificate::from_der(identity.leaf())
        .map(|(_, c)| c.raw_serial_as_string())
        .unwrap_or_default()
}
