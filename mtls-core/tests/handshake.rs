//! Real TLS handshakes over TCP loopback with tokio-rustls: our server and
//! client configs against each other and against hostile raw rustls peers
//! presenting defective chains, resumption, and rotation through sources.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtls_core::rustls::client::ResolvesClientCert;
use mtls_core::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use mtls_core::rustls::server::{ClientHello, ResolvesServerCert};
use mtls_core::rustls::sign::CertifiedKey;
use mtls_core::rustls::{
    self, AlertDescription, CertificateError, ClientConfig, HandshakeKind, ProtocolVersion,
    ServerConfig, SignatureScheme,
};
use mtls_core::{
    authorize, BundleSet, BundleSource, CrlSet, MtlsClientConfig, MtlsServerConfig, PeerIdentity,
    PeerIdentityError, PeerRole, Rejection, ServerConfigBuilder, SpiffeId, SpiffeIdError,
    SvidSource, VerifyError, X509Bundle, X509Svid,
};
use mtls_testing::{accept_any_server, bounded, hours, id, now, TestCa, TestLeaf};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

const ID: &str = "spiffe://example.org/service/web";
const SERVER_ID: &str = "spiffe://example.org/backend";
const CLIENT_ID: &str = "spiffe://example.org/frontend";

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

// ---------------------------------------------------------------------------
// Sources that change at run time.

/// A bundle source whose contents the test replaces.
#[derive(Debug)]
struct MutableBundles(Mutex<BundleSet>);

impl BundleSource for MutableBundles {
    fn current_bundles(&self) -> BundleSet {
        self.0.lock().unwrap().clone()
    }
}

/// An SVID source whose SVID the test swaps.
#[derive(Debug)]
struct RotatingSvid(Mutex<X509Svid>);

impl SvidSource for RotatingSvid {
    fn current_svid(&self) -> Option<X509Svid> {
        Some(self.0.lock().unwrap().clone())
    }
}

/// What an `on_rejection` hook was told.
#[derive(Clone, Default)]
struct Rejections(Arc<Mutex<Vec<Rejection>>>);

impl Rejections {
    fn hook(&self) -> impl Fn(&Rejection) + Send + Sync + 'static {
        let log = self.0.clone();
        move |e: &Rejection| log.lock().unwrap().push(e.clone())
    }

    fn take(&self) -> Vec<Rejection> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

// ---------------------------------------------------------------------------
// Hostile raw rustls peers.

/// Presents a fixed chain without rustls' key/leaf match check, for leaves
/// rustls cannot even parse (the garbage-leaf case).
#[derive(Debug)]
struct Unchecked(Arc<CertifiedKey>);

impl Unchecked {
    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Arc<Self> {
        let provider = mtls_core::default_crypto_provider();
        let signer = provider.key_provider.load_private_key(key).unwrap();
        Arc::new(Self(Arc::new(CertifiedKey::new(chain, signer))))
    }
}

impl ResolvesClientCert for Unchecked {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ResolvesServerCert for Unchecked {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A hostile client presenting `bad`'s chain (or nothing with `None`).
fn raw_client(
    bad: Option<&Bad>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let provider = mtls_core::default_crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(accept_any_server(&provider));
    let config = match bad {
        None => builder.with_no_client_auth(),
        Some(bad) if bad.unchecked => builder
            .with_client_cert_resolver(Unchecked::new(bad.chain.clone(), bad.key.clone_key())),
        Some(bad) => builder
            .with_client_auth_cert(bad.chain.clone(), bad.key.clone_key())
            .unwrap(),
    };
    Arc::new(config)
}

/// A hostile server presenting `bad`'s chain and asking no client certificate.
fn raw_server(bad: &Bad) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(mtls_core::default_crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth();
    let config = if bad.unchecked {
        builder.with_cert_resolver(Unchecked::new(bad.chain.clone(), bad.key.clone_key()))
    } else {
        builder
            .with_single_cert(bad.chain.clone(), bad.key.clone_key())
            .unwrap()
    };
    Arc::new(config)
}

// ---------------------------------------------------------------------------
// Connections.

/// What the server side saw of a connection whose handshake succeeded.
#[derive(Debug)]
struct ServerSaw {
    kind: Option<HandshakeKind>,
    version: Option<ProtocolVersion>,
    alpn: Option<Vec<u8>>,
    /// `MtlsServerConfig::peer_identity` (None for a raw server).
    peer: Option<Result<PeerIdentity, PeerIdentityError>>,
    from_connection: Result<PeerIdentity, PeerIdentityError>,
    received: Vec<u8>,
}

impl ServerSaw {
    /// Asserts a resumed session whose restored client chain (of
    /// [`CLIENT_ID`]) was verified again and refused as untrusted: neither
    /// our server config nor the connection gives a peer identity.
    #[track_caller]
    fn assert_resumed_and_untrusted(&self) {
        assert_eq!(
            self.kind,
            Some(HandshakeKind::Resumed),
            "resumption did not happen"
        );
        assert!(
            matches!(
                &self.peer,
                Some(Err(PeerIdentityError::Verify(VerifyError::UntrustedIssuer { id, .. })))
                    if id.as_str() == CLIENT_ID
            ),
            "{:?}",
            self.peer
        );
        assert!(
            matches!(self.from_connection, Err(PeerIdentityError::ResumedSession)),
            "{:?}",
            self.from_connection
        );
    }
}

/// Closes a socket whose handshake failed without resetting it: shut down
/// our half (after the alert rustls already wrote) and read until the peer
/// closes, so the peer reliably receives the alert.
async fn linger_close(mut tcp: TcpStream) {
    let _ = tcp.shutdown().await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut sink)).await;
}

/// Accepts one connection with `config` on a fresh loopback listener. On
/// success the server writes `hello`, reads what the client sends until it
/// closes, and reports what it saw; on failure, the handshake error.
async fn spawn_server(
    config: Arc<ServerConfig>,
    ours: Option<MtlsServerConfig>,
) -> (SocketAddr, JoinHandle<io::Result<ServerSaw>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = match TlsAcceptor::from(config).accept(tcp).into_fallible().await {
            Ok(tls) => tls,
            Err((e, tcp)) => {
                linger_close(tcp).await;
                return Err(e);
            }
        };
        let saw = observe_server(&tls, ours.as_ref());
        tls.write_all(b"hello").await?;
        tls.flush().await?;
        let mut received = Vec::new();
        let _ = tls.read_to_end(&mut received).await;
        let _ = tls.shutdown().await;
        Ok(ServerSaw { received, ..saw })
    });
    (addr, task)
}

fn observe_server(
    tls: &server::TlsStream<TcpStream>,
    ours: Option<&MtlsServerConfig>,
) -> ServerSaw {
    let conn = tls.get_ref().1;
    ServerSaw {
        kind: conn.handshake_kind(),
        version: conn.protocol_version(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        peer: ours.map(|s| s.peer_identity(conn)),
        from_connection: PeerIdentity::from_connection(conn),
        received: Vec::new(),
    }
}

/// Dials `addr`; on a failed handshake closes the socket gracefully.
async fn dial(
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    name: ServerName<'static>,
) -> io::Result<client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    match TlsConnector::from(config)
        .connect(name, tcp)
        .into_fallible()
        .await
    {
        Ok(tls) => Ok(tls),
        Err((e, tcp)) => {
            linger_close(tcp).await;
            Err(e)
        }
    }
}

/// The client half of the exchange: read the server's `hello` (which also
/// takes in any TLS 1.3 session tickets sent before it), send `hi`, close.
async fn client_talk(tls: &mut client::TlsStream<TcpStream>) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await?;
    tls.write_all(b"hi").await?;
    tls.shutdown().await?;
    Ok(buf.to_vec())
}

/// A server of `server` (its view checked too) on loopback, and `client`
/// connected to it as `localhost`.
async fn connect(
    server: &MtlsServerConfig,
    client: &MtlsClientConfig,
) -> (
    client::TlsStream<TcpStream>,
    JoinHandle<io::Result<ServerSaw>>,
) {
    let (addr, srv) = spawn_server(server.rustls_config(), Some(server.clone())).await;
    let tls = dial(client.rustls_config(), addr, localhost())
        .await
        .unwrap();
    (tls, srv)
}

fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// `e` is the TLS error `want`.
fn assert_tls_error(e: &io::Error, want: rustls::Error) {
    assert_eq!(tls_error(e), Some(&want), "{e:?}");
}

/// The error of a client of `config` that the server at `addr` refuses:
/// from the handshake (TLS 1.2: the server's alert ends it), or, in TLS
/// 1.3, from the first read after it.
async fn refused_client(config: Arc<ClientConfig>, addr: SocketAddr) -> io::Error {
    match dial(config, addr, localhost()).await {
        Err(e) => e,
        Ok(mut tls) => client_talk(&mut tls)
            .await
            .expect_err("the client was served"),
    }
}

/// The server refused the client on `tls`: the client reads `alert`, the
/// server fails with the certificate error `server_error`.
async fn assert_client_refused(
    mut tls: client::TlsStream<TcpStream>,
    srv: JoinHandle<io::Result<ServerSaw>>,
    alert: AlertDescription,
    server_error: CertificateError,
) {
    let client_err = client_talk(&mut tls).await.unwrap_err();
    drop(tls); // closes our end, ending the server's linger
    assert_eq!(alert_received(&client_err), Some(alert), "{client_err:?}");
    let server_err = srv.await.unwrap().unwrap_err();
    assert_tls_error(&server_err, rustls::Error::InvalidCertificate(server_error));
}

/// [`assert_client_refused`] as signed by no authority the server trusts
/// (`unknown_ca`, `UnknownIssuer`), and its hook saw one `UntrustedIssuer`
/// rejection of [`CLIENT_ID`].
async fn assert_client_refused_as_untrusted(
    tls: client::TlsStream<TcpStream>,
    srv: JoinHandle<io::Result<ServerSaw>>,
    rejections: &Rejections,
) {
    let (alert, error) = (AlertDescription::UnknownCA, CertificateError::UnknownIssuer);
    assert_client_refused(tls, srv, alert, error).await;
    let got = rejections.take();
    assert!(
        matches!(&got[..], [Rejection::Verify(VerifyError::UntrustedIssuer { id, .. })] if id.as_str() == CLIENT_ID),
        "{got:?}"
    );
}

fn alert_received(e: &io::Error) -> Option<AlertDescription> {
    match tls_error(e) {
        Some(rustls::Error::AlertReceived(alert)) => Some(*alert),
        _ => None,
    }
}

fn server_svid(ca: &TestCa) -> X509Svid {
    ca.leaf(SERVER_ID).svid()
}

// ---------------------------------------------------------------------------
// 1. Good path.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_path_both_ways() {
    bounded(async {
        let root = TestCa::root("example.org");
        let inter = root.intermediate();
        let server_svid = inter.leaf(SERVER_ID).svid();
        let client_svid = root.leaf(CLIENT_ID).svid();
        assert_eq!(server_svid.chain().len(), 2);

        let server_rejections = Rejections::default();
        let server = MtlsServerConfig::builder(server_svid.clone(), root.bundle_set())
            .authorizer(authorize::exact(id(CLIENT_ID)))
            .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
            .on_rejection(server_rejections.hook())
            .build()
            .unwrap();
        let client_rejections = Rejections::default();
        let client = MtlsClientConfig::builder(client_svid.clone(), root.bundle_set())
            .authorizer(authorize::exact(id(SERVER_ID)))
            .alpn_protocols(vec![b"h2".to_vec()])
            .on_rejection(client_rejections.hook())
            .build()
            .unwrap();

        let (mut tls, srv) = connect(&server, &client).await;

        // The client's view of the server.
        let conn = tls.get_ref().1;
        assert_eq!(conn.handshake_kind(), Some(HandshakeKind::Full));
        assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
        let peer = client.peer_identity(conn).unwrap();
        assert_eq!(peer.spiffe_id().as_str(), SERVER_ID);
        assert_eq!(peer.trust_domain().name(), "example.org");
        assert_eq!(&peer.chain()[..], server_svid.chain());
        assert_eq!(peer.chain().len(), 2);
        assert_eq!(peer.leaf(), server_svid.leaf());
        assert_eq!(peer.not_after(), server_svid.not_after());
        assert_eq!(PeerIdentity::from_connection(conn).unwrap(), peer);

        assert_eq!(client_talk(&mut tls).await.unwrap(), b"hello");

        // The server's view of the client.
        let saw = srv.await.unwrap().unwrap();
        assert_eq!(saw.kind, Some(HandshakeKind::Full));
        assert_eq!(saw.version, Some(ProtocolVersion::TLSv1_3));
        assert_eq!(saw.alpn.as_deref(), Some(&b"h2"[..]));
        let peer = saw.peer.unwrap().unwrap();
        assert_eq!(peer.spiffe_id().as_str(), CLIENT_ID);
        assert_eq!(&peer.chain()[..], client_svid.chain());
        assert_eq!(peer.chain().len(), 1);
        assert_eq!(peer.not_after(), client_svid.not_after());
        assert_eq!(saw.from_connection.unwrap(), peer);
        assert_eq!(saw.received, b"hi");

        assert!(server_rejections.take().is_empty());
        assert!(client_rejections.take().is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// 2 and 3. The table of defective peers, in both directions.

/// A defective peer: the chain and key it presents, and the bundles and
/// CRLs the verifying side uses.
struct Bad {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    bundles: BundleSet,
    crls: CrlSet,
    /// Present the chain without rustls' own leaf/key match check.
    unchecked: bool,
}

impl Bad {
    fn new(leaf: TestLeaf, bundles: BundleSet) -> Self {
        Self {
            chain: leaf.chain,
            key: leaf.key,
            bundles,
            crls: CrlSet::new(),
            unchecked: false,
        }
    }
}

struct Case {
    name: &'static str,
    /// Builds the defective peer; the argument is the role the bad peer plays.
    setup: fn(PeerRole) -> Bad,
    /// The reason our verifier must give, for the bad peer's role.
    expect: fn(&VerifyError, PeerRole) -> bool,
    /// The alert the bad peer must receive.
    alert: AlertDescription,
}

/// A leaf of `ca` for [`ID`] whose only SAN is the URI `uri`.
fn uri_leaf(ca: &TestCa, uri: &str) -> TestLeaf {
    ca.leaf_with(ID, |p| {
        p.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())]
    })
}

/// Whether `e` is an invalid SPIFFE ID that `what` recognises.
fn invalid_id(e: &VerifyError, what: fn(&SpiffeIdError) -> bool) -> bool {
    matches!(e, VerifyError::InvalidSpiffeId { source, .. } if what(source))
}

fn simple(leaf: impl FnOnce(&TestCa) -> TestLeaf) -> Bad {
    let ca = TestCa::root("example.org");
    let leaf = leaf(&ca);
    Bad::new(leaf, ca.bundle_set())
}

/// [`simple`], the leaf for [`ID`] changed by `mutate`.
fn tweaked(mutate: impl FnOnce(&mut CertificateParams)) -> Bad {
    simple(|ca| ca.leaf_with(ID, mutate))
}

fn has_id(e: &VerifyError) -> bool {
    e.spiffe_id().map(SpiffeId::as_str) == Some(ID)
}

fn cases() -> Vec<Case> {
    use AlertDescription as A;
    vec![
        Case {
            name: "untrusted-ca-same-trust-domain-name",
            setup: |_| {
                let trusted = TestCa::root("example.org");
                let impostor = TestCa::root("example.org");
                Bad::new(impostor.leaf(ID), trusted.bundle_set())
            },
            expect: |e, _| matches!(e, VerifyError::UntrustedIssuer { .. }) && has_id(e),
            alert: A::UnknownCA,
        },
        Case {
            name: "expired",
            setup: |_| {
                tweaked(|p| {
                    p.not_before = now() - hours(3);
                    p.not_after = now() - hours(2);
                })
            },
            expect: |e, _| matches!(e, VerifyError::Expired { not_after, now, .. } if not_after < now),
            alert: A::CertificateExpired,
        },
        Case {
            name: "not-yet-valid",
            setup: |_| {
                tweaked(|p| {
                    p.not_before = now() + hours(2);
                    p.not_after = now() + hours(3);
                })
            },
            expect: |e, _| matches!(e, VerifyError::NotYetValid { not_before, now, .. } if not_before > now),
            alert: A::CertificateExpired,
        },
        Case {
            name: "leaf-ca-true",
            setup: |_| tweaked(|p| p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained)),
            expect: |e, _| matches!(e, VerifyError::LeafIsCa { .. }) && has_id(e),
            alert: A::BadCertificate,
        },
        Case {
            name: "leaf-key-cert-sign",
            setup: |_| tweaked(|p| p.key_usages.push(KeyUsagePurpose::KeyCertSign)),
            expect: |e, _| matches!(e, VerifyError::LeafHasKeyCertSign { .. }),
            alert: A::BadCertificate,
        },
        Case {
            name: "leaf-crl-sign",
            setup: |_| tweaked(|p| p.key_usages.push(KeyUsagePurpose::CrlSign)),
            expect: |e, _| matches!(e, VerifyError::LeafHasCrlSign { .. }),
            alert: A::BadCertificate,
        },
        Case {
            name: "leaf-no-digital-signature",
            setup: |_| tweaked(|p| p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]),
            expect: |e, _| matches!(e, VerifyError::LeafMissingDigitalSignature { .. }),
            alert: A::BadCertificate,
        },
        Case {
            name: "leaf-no-key-usage",
            setup: |_| tweaked(|p| p.key_usages = vec![]),
            expect: |e, _| matches!(e, VerifyError::LeafMissingKeyUsage { .. }),
            alert: A::BadCertificate,
        },
        Case {
            name: "two-uri-sans",
            setup: |_| {
                tweaked(|p| {
                    p.subject_alt_names.push(SanType::URI(
                        "spiffe://example.org/other".try_into().unwrap(),
                    ))
                })
            },
            expect: |e, _| matches!(e, VerifyError::MultipleUriSans { count: 2 }),
            alert: A::BadCertificate,
        },
        Case {
            name: "no-uri-san",
            setup: |_| {
                tweaked(|p| {
                    p.subject_alt_names =
                        vec![SanType::DnsName("web.example.org".try_into().unwrap())]
                })
            },
            expect: |e, _| matches!(e, VerifyError::NoUriSan),
            alert: A::BadCertificate,
        },
        Case {
            name: "no-san-at-all",
            setup: |_| {
                tweaked(|p| {
                    p.subject_alt_names = vec![];
                    p.distinguished_name.push(rcgen::DnType::CommonName, "web");
                })
            },
            expect: |e, _| matches!(e, VerifyError::NoUriSan),
            alert: A::BadCertificate,
        },
        Case {
            name: "non-spiffe-uri",
            setup: |_| simple(|ca| uri_leaf(ca, "https://example.org/web")),
            expect: |e, _| invalid_id(e, |s| matches!(s, SpiffeIdError::WrongScheme)),
            alert: A::BadCertificate,
        },
        Case {
            name: "uppercase-trust-domain",
            setup: |_| simple(|ca| uri_leaf(ca, "spiffe://Example.org/web")),
            expect: |e, _| {
                invalid_id(e, |s| {
                    matches!(s, SpiffeIdError::UppercaseTrustDomain { .. })
                })
            },
            alert: A::BadCertificate,
        },
        Case {
            name: "trust-domain-id-without-path",
            setup: |_| simple(|ca| ca.leaf("spiffe://example.org")),
            expect: |e, _| matches!(e, VerifyError::TrustDomainIdAsLeaf { .. }),
            alert: A::BadCertificate,
        },
        Case {
            name: "peer-of-b-signed-by-a-both-bundles-loaded",
            setup: |_| {
                let a = TestCa::root("a.example");
                let b = TestCa::root("b.example");
                let set = BundleSet::from_bundles([a.bundle(), b.bundle()]).unwrap();
                Bad::new(a.leaf("spiffe://b.example/web"), set)
            },
            expect: |e, _| matches!(e, VerifyError::UntrustedIssuer { trust_domain, .. } if trust_domain.name() == "b.example"),
            alert: A::UnknownCA,
        },
        Case {
            name: "trust-domain-without-bundle",
            setup: |_| {
                let a = TestCa::root("a.example");
                let c = TestCa::root("c.example");
                Bad::new(c.leaf("spiffe://c.example/web"), a.bundle_set())
            },
            expect: |e, _| matches!(e, VerifyError::NoBundle { trust_domain, .. } if trust_domain.name() == "c.example"),
            alert: A::UnknownCA,
        },
        Case {
            name: "empty-bundle",
            setup: |_| {
                let ca = TestCa::root("example.org");
                let set = BundleSet::from(X509Bundle::new(ca.trust_domain.clone()));
                Bad::new(ca.leaf(ID), set)
            },
            expect: |e, _| matches!(e, VerifyError::UntrustedIssuer { .. }),
            alert: A::UnknownCA,
        },
        Case {
            name: "intermediate-not-ca",
            setup: |_| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate_with(|p| p.is_ca = IsCa::ExplicitNoCa);
                Bad::new(inter.leaf(ID), root.bundle_set())
            },
            expect: |e, _| matches!(e, VerifyError::Chain { reason, .. } if reason.contains("CaUsedAsEndEntity") || reason.contains("EndEntityUsedAsCa")),
            alert: A::CertificateUnknown,
        },
        Case {
            name: "intermediate-no-key-cert-sign",
            setup: |_| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate_with(|p| {
                    p.key_usages = vec![KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature]
                });
                Bad::new(inter.leaf(ID), root.bundle_set())
            },
            expect: |e, _| matches!(e, VerifyError::BadSigningCertificate { index: 1, reason } if reason.contains("keyCertSign")),
            alert: A::BadCertificate,
        },
        Case {
            name: "intermediate-spiffe-id-with-path",
            setup: |_| {
                let root = TestCa::root("example.org");
                let inter = root.intermediate_with(|p| {
                    p.subject_alt_names =
                        vec![SanType::URI("spiffe://example.org/ca".try_into().unwrap())]
                });
                Bad::new(inter.leaf(ID), root.bundle_set())
            },
            expect: |e, _| matches!(e, VerifyError::BadSigningCertificate { index: 1, .. }),
            alert: A::BadCertificate,
        },
        Case {
            name: "revoked-leaf",
            setup: |_| {
                let ca = TestCa::root("example.org");
                let leaf = ca.leaf(ID);
                let crls = ca.crl(&[&leaf.serial]);
                Bad {
                    crls,
                    ..Bad::new(leaf, ca.bundle_set())
                }
            },
            expect: |e, _| matches!(e, VerifyError::Revoked { .. }) && has_id(e),
            alert: A::CertificateRevoked,
        },
        Case {
            name: "revoked-intermediate",
            setup: |_| {
                let root = TestCa::root("example.org");
                let serial = mtls_testing::next_serial();
                let inter = root.intermediate_with(|p| p.serial_number = Some(serial.clone()));
                let crls = root.crl(&[&serial]);
                Bad {
                    crls,
                    ..Bad::new(inter.leaf(ID), root.bundle_set())
                }
            },
            expect: |e, _| matches!(e, VerifyError::Revoked { .. }) && has_id(e),
            alert: A::CertificateRevoked,
        },
        Case {
            name: "eku-only-for-the-other-role",
            setup: |role| {
                // A client leaf that may only serve, a server leaf that may
                // only be a client.
                let eku = match role {
                    PeerRole::Client => ExtendedKeyUsagePurpose::ServerAuth,
                    _ => ExtendedKeyUsagePurpose::ClientAuth,
                };
                tweaked(|p| p.extended_key_usages = vec![eku])
            },
            expect: |e, role| matches!(e, VerifyError::WrongExtendedKeyUsage { role: r, .. } if *r == role),
            alert: A::UnsupportedCertificate,
        },
        Case {
            name: "garbage-leaf",
            setup: |_| {
                let ca = TestCa::root("example.org");
                let leaf = ca.leaf(ID);
                Bad {
                    chain: vec![vec![0x30, 0x03, 0x02, 0x01, 0x01].into()],
                    unchecked: true,
                    ..Bad::new(leaf, ca.bundle_set())
                }
            },
            expect: |e, _| matches!(e, VerifyError::MalformedCertificate { index: 0, .. }),
            alert: A::BadCertificate,
        },
        Case {
            name: "chain-too-long",
            setup: |_| {
                let ca = TestCa::root("example.org");
                let leaf = ca.leaf(ID);
                let chain = std::iter::repeat_n(leaf.chain[0].clone(), 17).collect();
                Bad {
                    chain,
                    ..Bad::new(leaf, ca.bundle_set())
                }
            },
            expect: |e, _| matches!(e, VerifyError::ChainTooLong { len: 17 }),
            alert: A::BadCertificate,
        },
    ]
}

/// Our server against a hostile client presenting the defective chain.
async fn server_rejects(case: &Case) -> Result<(), String> {
    let bad = (case.setup)(PeerRole::Client);
    let rejections = Rejections::default();
    let server_ca = TestCa::root("server.example");
    let server = MtlsServerConfig::builder(server_svid(&server_ca), bad.bundles.clone())
        .crls(bad.crls.clone())
        .authorizer(authorize::any())
        .on_rejection(rejections.hook())
        .build()
        .unwrap();
    let (addr, srv) = spawn_server(server.rustls_config(), Some(server)).await;

    // TLS 1.3: the client finishes its handshake before the server has
    // judged its certificate, and learns of the rejection on its first read.
    let client = raw_client(Some(&bad), rustls::DEFAULT_VERSIONS);
    let client_err = match dial(client, addr, localhost()).await {
        Err(e) => e,
        Ok(mut tls) => client_talk(&mut tls)
            .await
            .err()
            .ok_or("the client's exchange succeeded")?,
    };
    let server_err = match srv.await.unwrap() {
        Ok(saw) => return Err(format!("the server accepted: {saw:?}")),
        Err(e) => e,
    };
    let judge = ("server", &server_err);
    refusal_problems(
        judge,
        ("client", &client_err),
        case,
        PeerRole::Client,
        &rejections,
    )
}

/// Our client against a hostile server presenting the defective chain.
async fn client_rejects(case: &Case) -> Result<(), String> {
    let bad = (case.setup)(PeerRole::Server);
    let rejections = Rejections::default();
    let client_ca = TestCa::root("client.example");
    let client = MtlsClientConfig::builder(client_ca.leaf(CLIENT_ID).svid(), bad.bundles.clone())
        .crls(bad.crls.clone())
        .authorizer(authorize::any())
        .on_rejection(rejections.hook())
        .build()
        .unwrap();
    let (addr, srv) = spawn_server(raw_server(&bad), None).await;
    let client_err = match dial(client.rustls_config(), addr, localhost()).await {
        Err(e) => e,
        Ok(tls) => {
            return Err(format!(
                "the client accepted the server: {:?}",
                tls.get_ref().1
            ))
        }
    };
    let server_err = match srv.await.unwrap() {
        Ok(saw) => return Err(format!("the hostile server finished: {saw:?}")),
        Err(e) => e,
    };
    let judge = ("client", &client_err);
    refusal_problems(
        judge,
        ("server", &server_err),
        case,
        PeerRole::Server,
        &rejections,
    )
}

/// What is wrong with a refusal of the chain of `case` presented in `role`:
/// the side that judged it (`judge`: its name and error) must fail with an
/// invalid certificate, the other side (`peer`) must read the alert of
/// `case`, and the judge's hook must see the one rejection `case` expects.
fn refusal_problems(
    (judge, judge_err): (&str, &io::Error),
    (peer, peer_err): (&str, &io::Error),
    case: &Case,
    role: PeerRole,
    rejections: &Rejections,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if !matches!(
        tls_error(judge_err),
        Some(rustls::Error::InvalidCertificate(_))
    ) {
        problems.push(format!("{judge} error: {judge_err}"));
    }
    if alert_received(peer_err) != Some(case.alert) {
        problems.push(format!(
            "{peer} saw {peer_err:?}, expected alert {:?}",
            case.alert
        ));
    }
    check_rejections(&rejections.take(), case, role, &mut problems);
    problems_to_result(problems)
}

fn check_rejections(got: &[Rejection], case: &Case, role: PeerRole, problems: &mut Vec<String>) {
    match got {
        [Rejection::Verify(e)] if (case.expect)(e, role) => {}
        _ => problems.push(format!("on_rejection got {got:?}")),
    }
}

fn problems_to_result(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rejects_every_defective_client() {
    bounded(async {
        let mut failures = Vec::new();
        let cases = cases();
        for case in &cases {
            if let Err(why) = server_rejects(case).await {
                failures.push(format!("{}: {why}", case.name));
            }
        }
        assert!(
            failures.is_empty(),
            "cases failed:\n{}",
            failures.join("\n")
        );
        assert!(cases.len() >= 25);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rejects_every_defective_server() {
    bounded(async {
        let mut failures = Vec::new();
        for case in &cases() {
            if let Err(why) = client_rejects(case).await {
                failures.push(format!("{}: {why}", case.name));
            }
        }
        assert!(
            failures.is_empty(),
            "cases failed:\n{}",
            failures.join("\n")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rejects_client_without_certificate() {
    bounded(async {
        let ca = TestCa::root("example.org");
        let rejections = Rejections::default();
        let server = MtlsServerConfig::builder(server_svid(&ca), ca.bundle_set())
            .authorizer(authorize::any())
            .on_rejection(rejections.hook())
            .build()
            .unwrap();
        for versions in [
            &[&rustls::version::TLS13][..],
            &[&rustls::version::TLS12][..],
        ] {
            let (addr, srv) = spawn_server(server.rustls_config(), Some(server.clone())).await;
            let client_err = refused_client(raw_client(None, versions), addr).await;
            assert_eq!(
                alert_received(&client_err),
                Some(AlertDescription::CertificateRequired),
                "{client_err:?}"
            );
            let server_err = srv.await.unwrap().unwrap_err();
            assert_tls_error(&server_err, rustls::Error::NoCertificatesPresented);
        }
        // rustls refuses an empty certificate message before it asks the
        // verifier, so the hook is not told.
        assert!(rejections.take().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_authorizer_denial_sends_access_denied() {
    bounded(async {
        let ca = TestCa::root("example.org");
        let rejections = Rejections::default();
        let server = MtlsServerConfig::builder(server_svid(&ca), ca.bundle_set())
            .authorizer(authorize::exact(id("spiffe://example.org/someone-else")))
            .on_rejection(rejections.hook())
            .build()
            .unwrap();
        let client = ca.client_config(CLIENT_ID, SERVER_ID);
        let (tls, srv) = connect(&server, &client).await;
        let alert = AlertDescription::AccessDenied;
        let error = CertificateError::ApplicationVerificationFailure;
        assert_client_refused(tls, srv, alert, error).await;
        let got = rejections.take();
        assert!(
            matches!(&got[..], [Rejection::Denied(d)] if d.peer().as_str() == CLIENT_ID),
            "{got:?}"
        );
    })
    .await;
}

/// A chain the server's verifier remembers (and so does not verify again)
/// still has to be proven in each handshake: presented with another key,
/// the handshake signature fails and the peer is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_chain_still_needs_its_key() {
    bounded(async {
        let ca = TestCa::root("example.org");
        let server = MtlsServerConfig::builder(server_svid(&ca), ca.bundle_set())
            .authorizer(authorize::any())
            .build()
            .unwrap();
        let client = ca.leaf(CLIENT_ID);
        let genuine = MtlsClientConfig::builder(client.svid(), ca.bundle_set())
            .authorizer(authorize::any())
            .build()
            .unwrap();
        for _ in 0..2 {
            let (mut tls, srv) = connect(&server, &genuine).await;
            assert_eq!(client_talk(&mut tls).await.unwrap(), b"hello");
            assert!(srv.await.unwrap().unwrap().peer.unwrap().is_ok());
        }
        // The remembered chain with a key of another leaf.
        let stolen = Bad {
            unchecked: true,
            ..Bad::new(
                TestLeaf {
                    key: ca.leaf(CLIENT_ID).key,
                    ..client
                },
                ca.bundle_set(),
            )
        };
        let (addr, srv) = spawn_server(server.rustls_config(), Some(server.clone())).await;
        refused_client(raw_client(Some(&stolen), &[&rustls::version::TLS13]), addr).await;
        let server_err = srv.await.unwrap().unwrap_err();
        assert_tls_error(
            &server_err,
            rustls::Error::InvalidCertificate(CertificateError::BadSignature),
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_ca_client_gets_unknown_ca() {
    bounded(async {
        let trusted = TestCa::root("example.org");
        let impostor = TestCa::root("example.org");
        let rejections = Rejections::default();
        let server = MtlsServerConfig::builder(server_svid(&trusted), trusted.bundle_set())
            .authorizer(authorize::any())
            .on_rejection(rejections.hook())
            .build()
            .unwrap();
        // A well-formed SVID of the right trust domain name, from another CA.
        let client =
            MtlsClientConfig::builder(impostor.leaf(CLIENT_ID).svid(), trusted.bundle_set())
                .authorizer(authorize::any())
                .build()
                .unwrap();
        let (tls, srv) = connect(&server, &client).await;
        assert_client_refused_as_untrusted(tls, srv, &rejections).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_authorizes_server_by_spiffe_id_not_by_name() {
    bounded(async {
        let ca = TestCa::root("example.org");
        let client_svid = ca.leaf(CLIENT_ID).svid();
        let rejections = Rejections::default();
        let client = MtlsClientConfig::builder(client_svid, ca.bundle_set())
            .authorizer(authorize::exact(id(SERVER_ID)))
            .on_rejection(rejections.hook())
            .build()
            .unwrap();

        // A valid server with another SPIFFE ID: Denied, access_denied.
        let impostor = MtlsServerConfig::builder(
            ca.leaf("spiffe://example.org/impostor").svid(),
            ca.bundle_set(),
        )
        .authorizer(authorize::any())
        .build()
        .unwrap();
        let (addr, srv) = spawn_server(impostor.rustls_config(), Some(impostor)).await;
        let client_err = dial(client.rustls_config(), addr, localhost()).await.unwrap_err();
        assert_tls_error(
            &client_err,
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure),
        );
        let server_err = srv.await.unwrap().unwrap_err();
        assert_eq!(alert_received(&server_err), Some(AlertDescription::AccessDenied), "{server_err:?}");
        let got = rejections.take();
        assert!(
            matches!(&got[..], [Rejection::Denied(d)] if d.peer().as_str() == "spiffe://example.org/impostor"),
            "{got:?}"
        );

        // The right server, dialled by names that are not in its certificate
        // (it has a URI SAN only): accepted.
        let server_svid = server_svid(&ca);
        let server = MtlsServerConfig::builder(server_svid.clone(), ca.bundle_set())
            .authorizer(authorize::exact(id(CLIENT_ID)))
            .build()
            .unwrap();
        for name in [localhost(), ServerName::from(IpAddr::V4(Ipv4Addr::LOCALHOST))] {
            let (addr, srv) = spawn_server(server.rustls_config(), Some(server.clone())).await;
            let mut tls = dial(client.rustls_config(), addr, name.clone()).await.unwrap();
            let peer = client.peer_identity(tls.get_ref().1).unwrap();
            assert_eq!(peer.spiffe_id().as_str(), SERVER_ID, "dialled {name:?}");
            assert_eq!(peer.leaf(), server_svid.leaf());
            assert_eq!(client_talk(&mut tls).await.unwrap(), b"hello");
            let saw = srv.await.unwrap().unwrap();
            assert_eq!(saw.peer.unwrap().unwrap().spiffe_id().as_str(), CLIENT_ID);
        }
        assert!(rejections.take().is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// 4. Resumption.

/// A client CA and a server CA sharing the trust domain `example.org`; the
/// server trusts both roots through a bundle source the test can change.
struct ResumptionSetup {
    server_ca: TestCa,
    client_svid: X509Svid,
    server_bundles: Arc<MutableBundles>,
}

impl ResumptionSetup {
    fn new() -> Self {
        let server_ca = TestCa::root("example.org");
        let client_ca = TestCa::root("example.org");
        let both = X509Bundle::from_authorities(
            server_ca.trust_domain.clone(),
            [server_ca.root.clone(), client_ca.root.clone()],
        )
        .unwrap();
        Self {
            client_svid: client_ca.leaf(CLIENT_ID).svid(),
            server_bundles: Arc::new(MutableBundles(Mutex::new(BundleSet::from(both)))),
            server_ca,
        }
    }

    /// The server's config builder: its SVID from the server CA, the
    /// bundles the test can change.
    fn server(&self) -> ServerConfigBuilder {
        MtlsServerConfig::builder(server_svid(&self.server_ca), self.server_bundles.clone())
    }

    /// The client's config, with resumption on, expecting [`SERVER_ID`].
    fn resuming_client(&self) -> MtlsClientConfig {
        MtlsClientConfig::builder(self.client_svid.clone(), self.server_ca.bundle_set())
            .authorizer(authorize::exact(id(SERVER_ID)))
            .resumption(true)
            .build()
            .unwrap()
    }

    /// Removes the client's CA from the server's bundle for `example.org`.
    fn remove_client_ca(&self) {
        *self.server_bundles.0.lock().unwrap() = self.server_ca.bundle_set();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_session_is_verified_again() {
    bounded(async {
        let setup = ResumptionSetup::new();
        let rejections = Rejections::default();
        let server = setup
            .server()
            .authorizer(authorize::member_of(setup.server_ca.trust_domain.clone()))
            .resumption(true)
            .on_rejection(rejections.hook())
            .build()
            .unwrap();
        let client = setup.resuming_client();

        // First connection: a full handshake; reading the server's data
        // takes in the session tickets sent before it.
        let (mut tls, srv) = connect(&server, &client).await;
        assert_eq!(tls.get_ref().1.handshake_kind(), Some(HandshakeKind::Full));
        assert_eq!(client_talk(&mut tls).await.unwrap(), b"hello");
        let saw = srv.await.unwrap().unwrap();
        assert_eq!(saw.kind, Some(HandshakeKind::Full));
        assert_eq!(saw.version, Some(ProtocolVersion::TLSv1_3));
        assert_eq!(saw.peer.unwrap().unwrap().spiffe_id().as_str(), CLIENT_ID);

        setup.remove_client_ca();

        // Second connection: resumed, so rustls does not call the verifier;
        // peer_identity must verify the restored chain again and refuse it.
        let (mut tls, srv) = connect(&server, &client).await;
        let conn = tls.get_ref().1;
        assert_eq!(conn.handshake_kind(), Some(HandshakeKind::Resumed));
        // The client's side of a resumed session is verified again too (its
        // bundle did not change: still fine).
        assert_eq!(
            client.peer_identity(conn).unwrap().spiffe_id().as_str(),
            SERVER_ID
        );
        assert!(matches!(
            PeerIdentity::from_connection(conn),
            Err(PeerIdentityError::ResumedSession)
        ));
        assert_eq!(client_talk(&mut tls).await.unwrap(), b"hello");
        srv.await.unwrap().unwrap().assert_resumed_and_untrusted();
        let got = rejections.take();
        assert!(
            matches!(
                &got[..],
                [Rejection::Verify(VerifyError::UntrustedIssuer { .. })]
            ),
            "{got:?}"
        );
    })
    .await;
}

/// One TLS 1.3 ticket per handshake (as Go's crypto/tls; rustls sends two
/// by default) is enough for a client that replaces its connections: each
/// resumption uses its ticket up and brings a fresh one, so every later
/// connection resumes, each verified again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ticket_per_handshake_keeps_every_reconnection_resumed() {
    bounded(async {
        let setup = ResumptionSetup::new();
        let server = setup
            .server()
            .authorizer(authorize::member_of(setup.server_ca.trust_domain.clone()))
            .resumption(true)
            .build()
            .unwrap();
        assert_eq!(server.rustls_config().send_tls13_tickets, 1);
        let client = setup.resuming_client();
        for round in 0..4 {
            let (mut tls, srv) = connect(&server, &client).await;
            let want = if round == 0 {
                HandshakeKind::Full
            } else {
                HandshakeKind::Resumed
            };
            assert_eq!(
                tls.get_ref().1.handshake_kind(),
                Some(want),
                "round {round}"
            );
            assert_eq!(
                client
                    .peer_identity(tls.get_ref().1)
                    .unwrap()
                    .spiffe_id()
                    .as_str(),
                SERVER_ID
            );
            // Reading the server's data takes in the ticket sent before it.
            assert_eq!(client_talk(&mut tls).await.unwrap(), b"hello");
            let saw = srv.await.unwrap().unwrap();
            assert_eq!(saw.kind, Some(want), "round {round}");
            assert_eq!(saw.peer.unwrap().unwrap().spiffe_id().as_str(), CLIENT_ID);
        }
        // Without resumption, no ticket at all.
        let plain = setup.server().authorizer(authorize::any()).build().unwrap();
        assert_eq!(plain.rustls_config().send_tls13_tickets, 0);
    })
    .await;
}

/// The same over TLS 1.2 (session-ID resumption), with a raw TLS 1.2 client:
/// the restored chain must be verified again as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_tls12_session_is_verified_again() {
    bounded(async {
        let setup = ResumptionSetup::new();
        let server = setup
            .server()
            .authorizer(authorize::any())
            .resumption(true)
            .build()
            .unwrap();
        let bad = Bad {
            chain: setup.client_svid.chain().to_vec(),
            key: setup.client_svid.private_key().clone_key(),
            bundles: BundleSet::new(),
            crls: CrlSet::new(),
            unchecked: false,
        };
        let client = raw_client(Some(&bad), &[&rustls::version::TLS12]);

        let (addr, srv) = spawn_server(server.rustls_config(), Some(server.clone())).await;
        let mut tls = dial(client.clone(), addr, localhost()).await.unwrap();
        client_talk(&mut tls).await.unwrap();
        let saw = srv.await.unwrap().unwrap();
        assert_eq!(saw.version, Some(ProtocolVersion::TLSv1_2));
        assert_eq!(saw.kind, Some(HandshakeKind::Full));
        assert_eq!(saw.peer.unwrap().unwrap().spiffe_id().as_str(), CLIENT_ID);

        setup.remove_client_ca();

        let (addr, srv) = spawn_server(server.rustls_config(), Some(server.clone())).await;
        let mut tls = dial(client, addr, localhost()).await.unwrap();
        client_talk(&mut tls).await.unwrap();
        let saw = srv.await.unwrap().unwrap();
        assert_eq!(saw.version, Some(ProtocolVersion::TLSv1_2));
        saw.assert_resumed_and_untrusted();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_resumption_every_handshake_is_full_and_verified() {
    bounded(async {
        let setup = ResumptionSetup::new();
        let rejections = Rejections::default();
        // Resumption off on the server (the default); the client would
        // resume if it could.
        let server = setup
            .server()
            .authorizer(authorize::any())
            .on_rejection(rejections.hook())
            .build()
            .unwrap();
        let client = setup.resuming_client();

        let (mut tls, srv) = connect(&server, &client).await;
        assert_eq!(client_talk(&mut tls).await.unwrap(), b"hello");
        let saw = srv.await.unwrap().unwrap();
        assert_eq!(saw.kind, Some(HandshakeKind::Full));
        assert_eq!(saw.peer.unwrap().unwrap().spiffe_id().as_str(), CLIENT_ID);

        // Once more with the same bundle: still a full handshake.
        let (mut tls, srv) = connect(&server, &client).await;
        assert_eq!(tls.get_ref().1.handshake_kind(), Some(HandshakeKind::Full));
        client_talk(&mut tls).await.unwrap();
        assert_eq!(srv.await.unwrap().unwrap().kind, Some(HandshakeKind::Full));
        assert!(rejections.take().is_empty());

        setup.remove_client_ca();

        let (tls, srv) = connect(&server, &client).await;
        // TLS 1.3: the client is done before the server judges it.
        assert_eq!(tls.get_ref().1.handshake_kind(), Some(HandshakeKind::Full));
        assert_client_refused_as_untrusted(tls, srv, &rejections).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// 5. Rotation through sources.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_svids_are_presented_by_the_same_configs() {
    bounded(async {
        let ca = TestCa::root("example.org");
        let old_server = server_svid(&ca);
        let old_client = ca.leaf(CLIENT_ID).svid();
        let server_source = Arc::new(RotatingSvid(Mutex::new(old_server.clone())));
        let client_source = Arc::new(RotatingSvid(Mutex::new(old_client.clone())));
        let server = MtlsServerConfig::builder(server_source.clone(), ca.bundle_set())
            .authorizer(authorize::exact(id(CLIENT_ID)))
            .build()
            .unwrap();
        let client = MtlsClientConfig::builder(client_source.clone(), ca.bundle_set())
            .authorizer(authorize::exact(id(SERVER_ID)))
            .build()
            .unwrap();
        let server_rustls = server.rustls_config();
        let client_rustls = client.rustls_config();

        let exchange = |expect_server: X509Svid, expect_client: X509Svid| {
            let (server, client) = (server.clone(), client.clone());
            let (server_rustls, client_rustls) = (server_rustls.clone(), client_rustls.clone());
            async move {
                let (addr, srv) = spawn_server(server_rustls, Some(server)).await;
                let mut tls = dial(client_rustls, addr, localhost()).await.unwrap();
                let peer = client.peer_identity(tls.get_ref().1).unwrap();
                assert_eq!(peer.leaf(), expect_server.leaf());
                assert_eq!(peer.not_after(), expect_server.not_after());
                client_talk(&mut tls).await.unwrap();
                let peer = srv.await.unwrap().unwrap().peer.unwrap().unwrap();
                assert_eq!(peer.leaf(), expect_client.leaf());
            }
        };

        exchange(old_server.clone(), old_client.clone()).await;

        // Rotate both SVIDs (same IDs, new keys and certificates).
        let new_server = ca
            .leaf_with(SERVER_ID, |p| p.not_after = now() + hours(2))
            .svid();
        let new_client = ca
            .leaf_with(CLIENT_ID, |p| p.not_after = now() + hours(2))
            .svid();
        assert_ne!(new_server.leaf(), old_server.leaf());
        *server_source.0.lock().unwrap() = new_server.clone();
        *client_source.0.lock().unwrap() = new_client.clone();
        exchange(new_server.clone(), new_client.clone()).await;
        // Cached keys are not stuck on the new SVID either: rotate back.
        *server_source.0.lock().unwrap() = old_server.clone();
        exchange(old_server, new_client).await;
    })
    .await;
}
