//! TLS session resumption: the server restores a resumed client's chain
//! from the session without running the verifier, so the listener must
//! verify it again. A resumed handshake must never admit a peer that a full
//! handshake would reject.
//!
//! Each test: a first connection (full handshake), a resumed one that is
//! still admitted (the positive control), then the server's view of the
//! client changes (CA removed from the bundle, authorizer flipped,
//! certificate revoked, certificate expired) and a resumed connection must
//! be refused by the listener while the client really did resume.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::*;
use mtls_core::rustls::{self, HandshakeKind};
use mtls_core::{
    authorize, BundleSet, CrlSet, Denied, MtlsServerConfig, ServerConfigBuilder, SharedBundles,
    SharedCrls, SpiffeId,
};
use mtls_tower::{AuthorizeLayer, RoutePolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn app() -> Router {
    whoami_router().layer(AuthorizeLayer::new(RoutePolicy::allow_all_paths(
        authorize::any(),
    )))
}

/// One HTTP/1.1 GET /whoami on a new connection made by a raw tokio-rustls
/// client: the client's view of the handshake kind, and the response text
/// (an error if the server dropped the connection without answering).
async fn raw_whoami(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> (Option<HandshakeKind>, Result<String, String>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = match connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
    {
        Ok(tls) => tls,
        Err(e) => return (None, Err(format!("handshake: {e}"))),
    };
    let kind = tls.get_ref().1.handshake_kind();
    let request = b"GET /whoami HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    if let Err(e) = tls.write_all(request).await {
        return (kind, Err(format!("write: {e}")));
    }
    let mut buf = Vec::new();
    let read = tls.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    match read {
        // A server that closes without close_notify still answered.
        _ if !text.is_empty() => (kind, Ok(text)),
        Ok(_) => (kind, Err("closed without answering".into())),
        Err(e) => (kind, Err(format!("read: {e}"))),
    }
}

fn assert_ok(response: &Result<String, String>, who: &str) {
    let text = response.as_ref().unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with(&format!("{who}\n")), "{text}");
}

/// A connection of `connector` with a handshake of `kind` is admitted as
/// `who`.
async fn assert_served(connector: &TlsConnector, server: &Server, kind: HandshakeKind, who: &str) {
    let (got, response) = raw_whoami(connector, server.addr).await;
    assert_eq!(got, Some(kind), "the handshake of a connection as {who}");
    assert_ok(&response, who);
}

/// Connections 1 (full) and 2 (resumed) are admitted.
async fn establish(connector: &TlsConnector, server: &Server, who: &str) {
    assert_served(connector, server, HandshakeKind::Full, who).await;
    // The second connection must resume.
    assert_served(connector, server, HandshakeKind::Resumed, who).await;
    assert_eq!(server.stats.accepted(), 2);
    assert_eq!(server.stats.failed(), 0);
}

/// `builder` with HTTP/1.1 ALPN and session resumption, built.
fn resuming(builder: ServerConfigBuilder) -> MtlsServerConfig {
    builder
        .alpn_protocols(vec![b"http/1.1".to_vec()])
        .resumption(true)
        .build()
        .unwrap()
}

/// The backend's resuming server config, admitting the members of the
/// trust domain, trusting `bundles`.
fn resuming_member_server(
    pki: &Pki,
    bundles: impl mtls_core::BundleSource + 'static,
) -> MtlsServerConfig {
    resuming(
        MtlsServerConfig::builder(pki.svid(BACKEND), bundles)
            .authorizer(authorize::member_of(pki.td.clone())),
    )
}

/// [`resuming_member_server`] trusting a shared copy of `pki`'s bundles,
/// which the test then changes.
fn resuming_member_server_shared(pki: &Pki) -> (SharedBundles, MtlsServerConfig) {
    let bundles = SharedBundles::new(pki.bundles());
    (bundles.clone(), resuming_member_server(pki, bundles))
}

/// Serves [`app`] with `config`; a resuming client with `svid` is admitted
/// on a full and on a resumed handshake ([`establish`]).
async fn established(
    pki: &Pki,
    config: MtlsServerConfig,
    svid: mtls_core::X509Svid,
) -> (Server, TlsConnector) {
    let server = serve(config, app()).await;
    let connector = resuming_connector(pki, svid);
    establish(&connector, &server, FRONTEND).await;
    (server, connector)
}

/// A resumed connection that the listener must refuse.
async fn assert_resumed_and_refused(connector: &TlsConnector, server: &Server, failed: u64) {
    let accepted = server.stats.accepted();
    let (kind, response) = raw_whoami(connector, server.addr).await;
    assert_eq!(
        kind,
        Some(HandshakeKind::Resumed),
        "the client must have resumed (else this proves nothing)"
    );
    assert!(response.is_err(), "must not be served: {response:?}");
    assert!(eventually(TEST_TIMEOUT, || server.stats.failed() == failed).await);
    assert_eq!(server.stats.accepted(), accepted);
}

#[tokio::test]
async fn resumed_session_refused_after_client_ca_removed_from_bundle() {
    bounded(async {
        let pki = Pki::new("example.org");
        let (bundles, config) = resuming_member_server_shared(&pki);
        let (server, connector) = established(&pki, config, pki.svid(FRONTEND)).await;

        // The trust domain moves to a new CA: the client's CA is gone from
        // the server's bundle.
        let successor = Pki::new("example.org");
        bundles.set(successor.bundles());

        assert_resumed_and_refused(&connector, &server, 1).await;

        // A full handshake is refused as well (the control).
        let fresh = resuming_connector(&pki, pki.svid(FRONTEND));
        let (kind, response) = raw_whoami(&fresh, server.addr).await;
        assert_ne!(kind, Some(HandshakeKind::Resumed));
        assert!(response.is_err());
        assert!(eventually(TEST_TIMEOUT, || server.stats.failed() == 2).await);

        // Peers of the new CA are served, resumed or not.
        let newcomer = resuming_connector(&pki, successor.svid(FRONTEND));
        assert_served(&newcomer, &server, HandshakeKind::Full, FRONTEND).await;
        assert_served(&newcomer, &server, HandshakeKind::Resumed, FRONTEND).await;
        assert_eq!(server.stats.accepted(), 4);
    })
    .await;
}

#[tokio::test]
async fn resumed_session_refused_after_trust_domain_removed() {
    bounded(async {
        let pki = Pki::new("example.org");
        let (bundles, config) = resuming_member_server_shared(&pki);
        let (server, connector) = established(&pki, config, pki.svid(FRONTEND)).await;

        bundles.set(BundleSet::new());

        assert_resumed_and_refused(&connector, &server, 1).await;
    })
    .await;
}

#[tokio::test]
async fn resumed_session_refused_after_authorizer_changes() {
    bounded(async {
        let pki = Pki::new("example.org");
        let banned = Arc::new(AtomicBool::new(false));
        let flag = banned.clone();
        let builder = MtlsServerConfig::builder(pki.svid(BACKEND), pki.bundles()).authorizer(
            authorize::from_fn(move |peer: &SpiffeId| {
                if flag.load(Ordering::SeqCst) {
                    Err(Denied::new(peer, "banned"))
                } else {
                    Ok(())
                }
            }),
        );
        let config = resuming(builder);
        let (server, connector) = established(&pki, config, pki.svid(FRONTEND)).await;

        banned.store(true, Ordering::SeqCst);

        assert_resumed_and_refused(&connector, &server, 1).await;
    })
    .await;
}

/// The DER INTEGER content of a certificate's serial, for `revoke`.
fn serial_of(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial().to_vec()
}

#[tokio::test]
async fn resumed_session_refused_after_client_revoked() {
    bounded(async {
        let pki = Pki::new("example.org");
        let crls = SharedCrls::new(CrlSet::new());
        let builder = MtlsServerConfig::builder(pki.svid(BACKEND), pki.bundles())
            .authorizer(authorize::member_of(pki.td.clone()))
            .crls(crls.clone());
        let config = resuming(builder);
        let svid = pki.svid(FRONTEND);
        let serial = serial_of(svid.leaf());
        let (server, connector) = established(&pki, config, svid).await;

        assert!(pki.ca.revoke(&serial));
        let mut revoked = CrlSet::new();
        revoked
            .add_der(pki.ca.crl(Duration::from_secs(3600)).unwrap())
            .unwrap();
        crls.set(revoked);

        assert_resumed_and_refused(&connector, &server, 1).await;

        // Another client of the same CA is still served.
        let other = resuming_connector(&pki, pki.svid(INTRUDER));
        let (_, response) = raw_whoami(&other, server.addr).await;
        assert_ok(&response, INTRUDER);
    })
    .await;
}

#[tokio::test]
async fn resumed_session_refused_after_client_svid_expired() {
    bounded(async {
        let pki = Pki::new("example.org");
        let config = resuming_member_server(&pki, pki.bundles());
        let svid = pki.svid_ttl(FRONTEND, Duration::from_secs(2));
        let not_after = svid.not_after();
        let (server, connector) = established(&pki, config, svid).await;

        sleep_past(not_after, Duration::from_millis(1100)).await;

        assert_resumed_and_refused(&connector, &server, 1).await;
    })
    .await;
}

#[tokio::test]
async fn tls12_resumed_session_is_verified_again_too() {
    bounded(async {
        let pki = Pki::new("example.org");
        let (bundles, config) = resuming_member_server_shared(&pki);
        let server = serve(config, app()).await;
        // A plain rustls TLS 1.2 client (session-ID resumption).
        let svid = pki.svid(FRONTEND);
        let connector = TlsConnector::from(raw_client_config(
            Some(&svid),
            &[&rustls::version::TLS12],
            H1,
        ));
        establish(&connector, &server, FRONTEND).await;

        bundles.set(Pki::new("example.org").bundles());

        assert_resumed_and_refused(&connector, &server, 1).await;
    })
    .await;
}

#[tokio::test]
async fn resumption_off_on_the_server_means_full_handshakes() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        let connector = resuming_connector(&pki, pki.svid(FRONTEND));
        for _ in 0..3 {
            assert_served(&connector, &server, HandshakeKind::Full, FRONTEND).await;
        }
        assert_eq!(server.stats.accepted(), 3);
    })
    .await;
}

/// The premise of the tests above: rustls alone completes the resumed
/// handshake of a client its verifier would now reject; only the
/// re-verification in `MtlsServerConfig::peer_identity` (which the listener
/// runs) refuses it.
#[tokio::test]
async fn rustls_alone_would_admit_the_resumed_session() {
    bounded(async {
        let pki = Pki::new("example.org");
        let (bundles, config) = resuming_member_server_shared(&pki);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config.rustls_config());
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (stream, _) = tcp.accept().await.unwrap();
                let mut tls = acceptor.accept(stream).await.unwrap();
                let conn = tls.get_ref().1;
                seen.push((
                    conn.handshake_kind(),
                    config.peer_identity(conn).map(|p| p.spiffe_id().clone()),
                ));
                // Answer, so the client reads its session ticket.
                let mut buf = [0u8; 1024];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
                    )
                    .await;
                let _ = tls.shutdown().await;
            }
            seen
        });

        let connector = resuming_connector(&pki, pki.svid(FRONTEND));
        let (kind, response) = raw_whoami(&connector, addr).await;
        assert_eq!(kind, Some(HandshakeKind::Full));
        assert!(response.unwrap().starts_with("HTTP/1.1 200"));
        // The server verified the first client during that handshake.
        bundles.set(BundleSet::new());
        let (kind, _) = raw_whoami(&connector, addr).await;
        assert_eq!(kind, Some(HandshakeKind::Resumed));

        let seen = server.await.unwrap();
        assert_eq!(seen[0].0, Some(HandshakeKind::Full));
        assert_eq!(seen[0].1.as_ref().unwrap().as_str(), FRONTEND);
        assert_eq!(seen[1].0, Some(HandshakeKind::Resumed), "rustls resumed");
        assert!(
            seen[1].1.is_err(),
            "peer_identity must refuse the resumed session"
        );
    })
    .await;
}
