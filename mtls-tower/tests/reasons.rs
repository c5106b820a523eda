//! Reasons that reach the person looking: a refused handshake is logged at
//! warn with the verifier's own reason and the peer's SPIFFE ID, under one
//! metrics label whether the handshake was full or resumed; a client that
//! refuses a server, or whose own SVID expired, gets an error whose
//! `source()` chain says why.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use common::*;
use mtls_core::rustls::HandshakeKind;
use mtls_core::{authorize, BundleSet, MtlsServerConfig, SharedBundles};
use mtls_testing::{assert_mentions, counted, error_lines};
use mtls_tower::{metrics as names, ConnectError, MtlsConnector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// A tracing subscriber that keeps every event as one line:
/// `LEVEL message field=value ...`.
#[derive(Clone, Default)]
struct Captured {
    lines: Arc<Mutex<Vec<String>>>,
    next_span: Arc<AtomicU64>,
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The warn lines that contain every one of `needles`.
    fn warnings_with(&self, needles: &[&str]) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with("WARN ") && needles.iter().all(|n| l.contains(n)))
            .collect()
    }
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!("{}", event.metadata().level()));
        event.record(&mut line);
        self.lines.lock().unwrap().push(line.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(Level::TRACE.into())
    }
}

fn app() -> Router {
    whoami_router()
}

/// One HTTP/1.1 GET /whoami on a new connection: the handshake kind the
/// client saw, and whether a response came.
async fn raw_whoami(connector: &TlsConnector, addr: SocketAddr) -> (Option<HandshakeKind>, bool) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let Ok(mut tls) = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
    else {
        return (None, false);
    };
    let kind = tls.get_ref().1.handshake_kind();
    let request = b"GET /whoami HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    if tls.write_all(request).await.is_err() {
        return (kind, false);
    }
    let mut response = Vec::new();
    let served =
        tls.read_to_end(&mut response).await.is_ok() && response.starts_with(b"HTTP/1.1 200");
    (kind, served)
}

const STRANGER: &str = "spiffe://other.org/frontend";
const NO_BUNDLE: &str = "no bundle for trust domain other.org (peer spiffe://other.org/frontend)";

/// The only test of this binary that reads metrics (a snapshot resets
/// every counter).
#[tokio::test]
async fn refused_handshakes_log_the_reason_and_peer_with_one_label_full_or_resumed() {
    let logs = Captured::default();
    let _default = tracing::subscriber::set_default(logs.clone());
    bounded(async {
        counted(names::HANDSHAKES, "reason", "no_bundle");
        let pki = Pki::new("example.org");
        let other = Pki::new("other.org");
        let mut both = pki.bundles();
        both.insert(other.ca.bundle().unwrap());
        let bundles = SharedBundles::new(both);
        let config = MtlsServerConfig::builder(pki.svid(BACKEND), bundles.clone())
            .authorizer(authorize::any())
            .alpn_protocols(vec![b"http/1.1".to_vec()])
            .resumption(true)
            .build()
            .unwrap();
        let server = serve(config, app()).await;
        let stranger = || resuming_connector(&pki, other.svid(STRANGER));
        let connector = stranger();
        assert_eq!(
            raw_whoami(&connector, server.addr).await,
            (Some(HandshakeKind::Full), true)
        );

        // other.org's bundle is withdrawn: a resumed session of the
        // stranger is refused by the listener's re-verification...
        bundles.set(pki.bundles());
        let (kind, served) = raw_whoami(&connector, server.addr).await;
        assert_eq!(kind, Some(HandshakeKind::Resumed), "must have resumed");
        assert!(!served);
        assert!(eventually(TEST_TIMEOUT, || server.stats.failed() == 1).await);
        assert_eq!(counted(names::HANDSHAKES, "reason", "no_bundle"), 1);
        let resumed = logs.warnings_with(&["mtls: handshake refused", NO_BUNDLE]);
        assert_eq!(resumed.len(), 1, "{:#?}", logs.lines());
        assert!(
            resumed[0].contains(&format!("peer={STRANGER}")),
            "{resumed:?}"
        );
        assert!(resumed[0].contains("reason=no_bundle"), "{resumed:?}");

        // ...and a full handshake by the verifier, under the same label and
        // with the same reason (rustls itself only says UnknownIssuer).
        let (kind, served) = raw_whoami(&stranger(), server.addr).await;
        assert_ne!(kind, Some(HandshakeKind::Resumed));
        assert!(!served);
        assert!(eventually(TEST_TIMEOUT, || server.stats.failed() == 2).await);
        assert_eq!(counted(names::HANDSHAKES, "reason", "no_bundle"), 1);
        assert_eq!(counted(names::HANDSHAKES, "reason", "untrusted_issuer"), 0);
        let all = logs.warnings_with(&["mtls: handshake refused", NO_BUNDLE]);
        assert_eq!(all.len(), 2, "{:#?}", logs.lines());
        assert!(all[1].contains(&format!("peer={STRANGER}")), "{all:?}");
        assert!(all[1].contains("reason=no_bundle"), "{all:?}");
        assert!(
            all[1].contains("UnknownIssuer"),
            "the rustls error too: {all:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_authorizer_denial_is_logged_with_the_peer_and_its_reason() {
    let logs = Captured::default();
    let _default = tracing::subscriber::set_default(logs.clone());
    bounded(async {
        let pki = Pki::new("example.org");
        let config = MtlsServerConfig::builder(pki.svid(BACKEND), pki.bundles())
            .authorizer(authorize::exact(id(FRONTEND)))
            .build()
            .unwrap();
        let server = serve(config, app()).await;
        let intruder = pki.http_client(INTRUDER, H1);
        assert!(fetch(&intruder, server.url("/whoami")).await.is_err());
        assert!(eventually(TEST_TIMEOUT, || server.stats.failed() == 1).await);
        let lines = logs.warnings_with(&[
            "mtls: handshake refused",
            "reason=denied",
            &format!("peer={INTRUDER}"),
            &format!("authorize: {INTRUDER} denied: is not {FRONTEND}"),
        ]);
        assert_eq!(lines.len(), 1, "{:#?}", logs.lines());
    })
    .await;
}

/// A server presenting `svid` on loopback.
async fn server_presenting(svid: mtls_core::X509Svid, bundles: BundleSet) -> Server {
    let config = MtlsServerConfig::builder(svid, bundles)
        .authorizer(authorize::any())
        .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        .build()
        .unwrap();
    serve(config, app()).await
}

#[tokio::test]
async fn a_client_is_told_which_server_it_refused_and_why() {
    bounded(async {
        let pki = Pki::new("example.org");
        let client = pki.client_config(pki.svid(FRONTEND), H2);
        let cases = [
            // The right CA, the wrong SPIFFE ID.
            (
                "impostor",
                server_presenting(pki.svid("spiffe://example.org/impostor"), pki.bundles()).await,
                "authorize: spiffe://example.org/impostor denied: is not spiffe://example.org/backend",
            ),
            // Another trust domain, whose bundle the client lacks.
            (
                "other trust domain",
                {
                    let other = Pki::new("other.org");
                    server_presenting(other.svid("spiffe://other.org/backend"), pki.bundles()).await
                },
                "no bundle for trust domain other.org (peer spiffe://other.org/backend)",
            ),
            // The client's trust domain, from a CA it does not trust.
            (
                "another CA",
                {
                    let rogue = Pki::new("example.org");
                    server_presenting(rogue.svid(BACKEND), pki.bundles()).await
                },
                "spiffe://example.org/backend is not signed by an authority of trust domain example.org",
            ),
        ];
        for (case, server, reason) in cases {
            // Straight from the connector.
            let e = MtlsConnector::new(client.clone())
                .connect(&server.url("/"))
                .await
                .err()
                .unwrap_or_else(|| panic!("{case}: connected"));
            let text = error_lines(&e);
            assert!(text.contains(reason), "{case}: {text}");
            assert!(
                text.contains(&format!("mtls-tower: refused the server at {}", server.addr)),
                "{case}: {text}"
            );
            let refused = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ConnectError>());
            assert!(
                matches!(refused, Some(ConnectError::ServerRefused { .. })),
                "{case}: {e:?}"
            );
            // Through hyper's client.
            let e = http_client(client.clone())
                .get(server.url("/whoami"))
                .await
                .err()
                .unwrap_or_else(|| panic!("{case}: served"));
            let text = error_lines(&e);
            assert!(text.contains(reason), "{case}: {text}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_whose_own_svid_expired_is_told_so_before_dialling() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        let svid = pki.svid_ttl(FRONTEND, Duration::from_secs(1));
        let client = pki.client_config(svid, H2);
        sleep_past(
            client.current_svid().unwrap().not_after(),
            Duration::from_millis(100),
        )
        .await;
        let e = MtlsConnector::new(client)
            .connect(&server.url("/"))
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert_mentions(
            &error_lines(&e),
            &[
                "mtls-tower: the client's own SVID has expired",
                &format!("x509svid: the chain of {FRONTEND} expired at"),
            ],
        );
        // It did not even dial.
        assert_eq!(server.stats.failed() + server.stats.accepted(), 0);
    })
    .await;
}
