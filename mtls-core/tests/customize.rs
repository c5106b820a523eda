//! Customizers over real loopback handshakes: what they set takes effect,
//! and what they cannot reach (the verifiers, the resolvers, the
//! authorizers) still decides who is admitted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mtls_core::rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use mtls_core::rustls::{self, KeyLog};
use mtls_core::{
    authorize, ConfigError, Denied, MtlsClientConfig, MtlsServerConfig, PeerIdentity,
    PeerIdentityError, Rejection, SpiffeId,
};
use mtls_testing::{bounded, id, TestCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const SERVER_ID: &str = "spiffe://example.org/backend";
const CLIENT_ID: &str = "spiffe://example.org/frontend";
const INTRUDER_ID: &str = "spiffe://example.org/intruder";

/// A key log recording the labels it is given.
#[derive(Debug, Default)]
struct Labels(Mutex<Vec<String>>);

impl KeyLog for Labels {
    fn log(&self, label: &str, _client_random: &[u8], _secret: &[u8]) {
        self.0.lock().unwrap().push(label.to_owned());
    }
}

impl Labels {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Server session storage counting what rustls stores in it.
#[derive(Debug)]
struct CountingStorage {
    puts: AtomicUsize,
    inner: Arc<dyn StoresServerSessions>,
}

impl StoresServerSessions for CountingStorage {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(key, value)
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key)
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.take(key)
    }
    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

/// What one side saw of a finished handshake.
#[derive(Debug)]
struct Saw {
    alpn: Option<Vec<u8>>,
    peer: Result<SpiffeId, String>,
}

impl Saw {
    fn new(alpn: Option<&[u8]>, peer: Result<PeerIdentity, PeerIdentityError>) -> Self {
        Self {
            alpn: alpn.map(<[u8]>::to_vec),
            peer: peer
                .map(|p| p.spiffe_id().clone())
                .map_err(|e| e.to_string()),
        }
    }
}

/// Accepts one connection; writes `hi` on success.
async fn serve_once(
    server: MtlsServerConfig,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<Saw>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = TlsAcceptor::from(server.rustls_config())
            .accept(tcp)
            .await?;
        let conn = tls.get_ref().1;
        let saw = Saw::new(conn.alpn_protocol(), server.peer_identity(conn));
        tls.write_all(b"hi").await?;
        tls.shutdown().await?;
        Ok(saw)
    });
    (addr, task)
}

/// Dials `addr` and reads the server's `hi` (a TLS 1.3 server's refusal of
/// the client shows on that read).
async fn dial(client: &MtlsClientConfig, addr: std::net::SocketAddr) -> std::io::Result<Saw> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(client.rustls_config())
        .connect(name, tcp)
        .await?;
    let conn = tls.get_ref().1;
    let saw = Saw::new(conn.alpn_protocol(), client.peer_identity(conn));
    let mut buf = Vec::new();
    tls.read_to_end(&mut buf).await?;
    assert_eq!(buf, b"hi");
    Ok(saw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customized_settings_take_effect() {
    bounded(async {
        let ca = TestCa::root("example.org");
        let server_log = Arc::new(Labels::default());
        let client_log = Arc::new(Labels::default());
        let storage = Arc::new(CountingStorage {
            puts: AtomicUsize::new(0),
            inner: ServerSessionMemoryCache::new(16),
        });

        let (log, store) = (server_log.clone(), storage.clone());
        let server = MtlsServerConfig::builder(ca.leaf(SERVER_ID).svid(), ca.bundle_set())
            .authorizer(authorize::exact(id(CLIENT_ID)))
            .resumption(true)
            .customize(move |t| {
                t.key_log(log)
                    .session_storage(store)
                    .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
            })
            .customize(|t| {
                t.max_fragment_size(Some(1024));
            })
            .build()
            .unwrap();
        assert_eq!(server.rustls_config().max_fragment_size, Some(1024));
        let log = client_log.clone();
        let client = MtlsClientConfig::builder(ca.leaf(CLIENT_ID).svid(), ca.bundle_set())
            .authorizer(authorize::exact(id(SERVER_ID)))
            .customize(move |t| {
                t.key_log(log).alpn_protocols(vec![b"http/1.1".to_vec()]);
            })
            .build()
            .unwrap();

        let (addr, server_task) = serve_once(server).await;
        let client_saw = dial(&client, addr).await.unwrap();
        let server_saw = server_task.await.unwrap().unwrap();

        // ALPN set by the customizers, negotiated on both sides.
        assert_eq!(client_saw.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(server_saw.alpn.as_deref(), Some(&b"http/1.1"[..]));
        // Both key logs recorded the TLS 1.3 secrets.
        for labels in [server_log.take(), client_log.take()] {
            for wanted in [
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0",
                "SERVER_TRAFFIC_SECRET_0",
            ] {
                assert!(labels.iter().any(|l| l == wanted), "{wanted} in {labels:?}");
            }
        }
        // The server stored its tickets' sessions in our storage.
        assert!(storage.puts.load(Ordering::SeqCst) > 0);
        // And the peers are who verification said.
        assert_eq!(client_saw.peer.unwrap(), id(SERVER_ID));
        assert_eq!(server_saw.peer.unwrap(), id(CLIENT_ID));
    })
    .await;
}

/// Every customization a server can make, to show none of them loosens
/// verification.
fn customize_everything_server(
    log: Arc<Labels>,
) -> impl FnOnce(&mut mtls_core::ServerTweaks<'_>) + Send + Sync {
    move |t| {
        t.key_log(log)
            .alpn_protocols(vec![b"h2".to_vec()])
            .ignore_client_order(true)
            .max_fragment_size(Some(2048))
            .enable_secret_extraction(true)
            .require_ems(true)
            .session_storage(ServerSessionMemoryCache::new(16))
            .send_tls13_tickets(4)
            .cert_compressors(Vec::new())
            .cert_decompressors(Vec::new());
    }
}

fn customize_everything_client(
    log: Arc<Labels>,
) -> impl FnOnce(&mut mtls_core::ClientTweaks<'_>) + Send + Sync {
    move |t| {
        t.key_log(log)
            .alpn_protocols(vec![b"h2".to_vec()])
            .max_fragment_size(Some(2048))
            .enable_secret_extraction(true)
            .enable_sni(false)
            .require_ems(true)
            .resumption(rustls::client::Resumption::in_memory_sessions(16))
            .cert_compressors(Vec::new())
            .cert_decompressors(Vec::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customized_server_still_verifies_and_authorizes_clients() {
    bounded(async {
        let ca = TestCa::root("example.org");
        let other_ca = TestCa::root("example.org");
        let rejections = Arc::new(Mutex::new(Vec::<String>::new()));
        let asked = Arc::new(Mutex::new(Vec::<SpiffeId>::new()));
        let (seen, hook) = (asked.clone(), rejections.clone());
        let server = MtlsServerConfig::builder(ca.leaf(SERVER_ID).svid(), ca.bundle_set())
            .authorizer(authorize::from_fn(move |peer: &SpiffeId| {
                seen.lock().unwrap().push(peer.clone());
                if peer.path() == "/frontend" {
                    Ok(())
                } else {
                    Err(Denied::new(peer, "only the frontend"))
                }
            }))
            .resumption(true)
            .on_rejection(move |e: &Rejection| hook.lock().unwrap().push(e.to_string()))
            .customize(customize_everything_server(Arc::new(Labels::default())))
            .build()
            .unwrap();
        // The frontend, from our CA: admitted, the authorizer asked.
        let good = ca.client_config(CLIENT_ID, SERVER_ID);
        let (addr, task) = serve_once(server.clone()).await;
        dial(&good, addr).await.unwrap();
        assert_eq!(task.await.unwrap().unwrap().peer.unwrap(), id(CLIENT_ID));
        assert_eq!(asked.lock().unwrap().as_slice(), &[id(CLIENT_ID)]);

        // The intruder, from our CA: the authorizer runs and denies.
        let intruder = MtlsClientConfig::builder(ca.leaf(INTRUDER_ID).svid(), ca.bundle_set())
            .authorizer(authorize::exact(id(SERVER_ID)))
            .build()
            .unwrap();
        let (addr, task) = serve_once(server.clone()).await;
        assert!(dial(&intruder, addr).await.is_err());
        assert!(task.await.unwrap().is_err());
        assert_eq!(asked.lock().unwrap().last(), Some(&id(INTRUDER_ID)));

        // The frontend's ID from another CA (trusting our server): refused
        // by chain verification, before the authorizer.
        let forged = MtlsClientConfig::builder(other_ca.leaf(CLIENT_ID).svid(), ca.bundle_set())
            .authorizer(authorize::exact(id(SERVER_ID)))
            .build()
            .unwrap();
        let asked_before = asked.lock().unwrap().len();
        let (addr, task) = serve_once(server).await;
        assert!(dial(&forged, addr).await.is_err());
        assert!(task.await.unwrap().is_err());
        assert_eq!(
            asked.lock().unwrap().len(),
            asked_before,
            "verification refused first"
        );
        let rejections = rejections.lock().unwrap();
        assert_eq!(rejections.len(), 2, "{rejections:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customized_client_still_verifies_and_authorizes_servers() {
    bounded(async {
        let (ca, other_ca) = (TestCa::root("example.org"), TestCa::root("example.org"));
        let rejections = Arc::new(Mutex::new(Vec::<String>::new()));
        let hook = rejections.clone();
        let client = MtlsClientConfig::builder(ca.leaf(CLIENT_ID).svid(), ca.bundle_set())
            .authorizer(authorize::exact(id(SERVER_ID)))
            .resumption(true)
            .on_rejection(move |e: &Rejection| hook.lock().unwrap().push(e.to_string()))
            .customize(customize_everything_client(Arc::new(Labels::default())))
            .build()
            .unwrap();
        let server_with = |ca: &TestCa, who: &str| {
            MtlsServerConfig::builder(ca.leaf(who).svid(), ca.bundle_set())
                .authorizer(authorize::any())
                .alpn_protocols(vec![b"h2".to_vec()])
                .build()
                .unwrap()
        };

        // The backend from our CA: admitted.
        let (addr, task) = serve_once(server_with(&ca, SERVER_ID)).await;
        let saw = dial(&client, addr).await.unwrap();
        assert_eq!(saw.peer.unwrap(), id(SERVER_ID));
        assert_eq!(saw.alpn.as_deref(), Some(&b"h2"[..]));
        task.await.unwrap().unwrap();

        // Another ID from our CA: the authorizer refuses it.
        let (addr, _task) = serve_once(server_with(&ca, INTRUDER_ID)).await;
        assert!(dial(&client, addr).await.is_err());
        // The backend's ID from an untrusted CA: verification refuses it.
        let (addr, _task) = serve_once(server_with(&other_ca, SERVER_ID)).await;
        assert!(dial(&client, addr).await.is_err());

        let rejections = rejections.lock().unwrap();
        assert_eq!(rejections.len(), 2, "{rejections:?}");
        assert!(rejections[0].contains("intruder"), "{rejections:?}");
    })
    .await;
}

#[test]
fn settings_that_resume_sessions_need_resumption_on() {
    let ca = TestCa::root("example.org");
    let server = || {
        MtlsServerConfig::builder(ca.leaf(SERVER_ID).svid(), ca.bundle_set())
            .authorizer(authorize::any())
    };
    let client = || {
        MtlsClientConfig::builder(ca.leaf(CLIENT_ID).svid(), ca.bundle_set())
            .authorizer(authorize::any())
    };
    let refused = [
        server()
            .customize(|t| {
                t.session_storage(ServerSessionMemoryCache::new(8));
            })
            .build()
            .err(),
        server()
            .customize(|t| {
                t.send_tls13_tickets(1);
            })
            .build()
            .err(),
        client()
            .customize(|t| {
                t.resumption(rustls::client::Resumption::in_memory_sessions(8));
            })
            .build()
            .err(),
    ];
    for (error, setting) in
        refused
            .into_iter()
            .zip(["session_storage", "send_tls13_tickets", "resumption"])
    {
        match error {
            Some(ConfigError::ResumptionOff { setting: s }) => assert_eq!(s, setting),
            other => panic!("{setting}: {other:?}"),
        }
    }
    // With resumption off, asking for no tickets is fine.
    server()
        .customize(|t| {
            t.send_tls13_tickets(0);
        })
        .build()
        .unwrap();
}

#[test]
fn a_record_size_rustls_refuses_fails_the_build() {
    let ca = TestCa::root("example.org");
    for size in [0, 31, 16_390, usize::MAX] {
        let error = MtlsServerConfig::builder(ca.leaf(SERVER_ID).svid(), ca.bundle_set())
            .authorizer(authorize::any())
            .customize(move |t| {
                t.max_fragment_size(Some(size));
            })
            .build()
            .err();
        assert!(
            matches!(
                error,
                Some(ConfigError::Rustls(rustls::Error::BadMaxFragmentSize))
            ),
            "{size}: {error:?}"
        );
    }
    for size in [None, Some(32), Some(16_389)] {
        let client = MtlsClientConfig::builder(ca.leaf(CLIENT_ID).svid(), ca.bundle_set())
            .authorizer(authorize::any())
            .customize(move |t| {
                t.max_fragment_size(size);
            })
            .build()
            .unwrap();
        assert_eq!(client.rustls_config().max_fragment_size, size);
    }
}
