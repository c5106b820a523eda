//! SPIFFE federation (issue 15): our bundle endpoint server and client
//! over real HTTPS on loopback, for both profiles; every refusal of a
//! hostile endpoint (a raw TLS server written here); sequence handling;
//! a partner's CA rotation picked up live by a watching source composed
//! into a server config.
#![cfg(feature = "federation")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mtls_core::federation::{
    fetch, parse_bundle, serve, serve_with, BundleEndpoint, BundleServer, EndpointConfig,
    EndpointProfile, EndpointUrl, FederatedBundleSource, FederationError, ServeOptions,
    ServerProfile, WatchOptions,
};
use mtls_core::rustls::pki_types::CertificateDer;
use mtls_core::rustls::{CertificateError, ServerConfig};
use mtls_core::{
    authorize, default_crypto_provider, BundleError, BundleSet, BundleSource, ComposedBundles,
    JwtBundleSource, MtlsClientConfig, MtlsServerConfig, SharedBundles, SharedSvid, SpiffeBundle,
    TrustDomain, MAX_FEDERATION_REDIRECTS,
};
use mtls_testing::{bounded, call_hi, eventually, id, serve_hi, TestCa, TestLeaf};
use rcgen::SanType;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

const PARTNER: &str = "partner.example";
const ENDPOINT_ID: &str = "spiffe://partner.example/bundle-endpoint";

fn partner_td() -> TrustDomain {
    TrustDomain::new(PARTNER).unwrap()
}

fn b64(der: &CertificateDer<'_>) -> String {
    STANDARD.encode(der)
}

/// Our bundle endpoint on loopback, publishing the partner trust domain's
/// bundle from `bundles`.
async fn our_server(
    bundles: impl BundleSource + 'static,
    profile: ServerProfile,
    hint: Duration,
) -> BundleServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = BundleEndpoint::new(partner_td(), bundles).refresh_hint(hint);
    serve(listener, endpoint, profile).unwrap()
}

fn spiffe_config(addr: SocketAddr, bootstrap: &TestCa) -> EndpointConfig {
    EndpointConfig::new(
        format!("https://{addr}/bundle.json").parse().unwrap(),
        partner_td(),
        EndpointProfile::https_spiffe(id(ENDPOINT_ID), bootstrap.bundle()),
    )
    .unwrap()
}

/// A leaf holding web names (`localhost`, 127.0.0.1 or `names`), no SPIFFE ID.
fn web_leaf(ca: &TestCa, names: &[&str]) -> TestLeaf {
    ca.leaf_with("spiffe://web.example/unused", |p| {
        p.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().unwrap()),
            })
            .collect();
    })
}

// ---------------------------------------------------------------------------
// A hostile endpoint: raw HTTP over tokio-rustls, answering what it is told.

/// What the hostile endpoint writes, chunk by chunk, with a pause after each.
#[derive(Clone)]
struct Reply(Vec<(Vec<u8>, Duration)>);

fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    Reply(vec![(out, Duration::ZERO)])
}

fn ok_json(body: impl Into<Vec<u8>>) -> Reply {
    http(
        "200 OK",
        &[("content-type", "application/json")],
        &body.into(),
    )
}

type Responder = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A TLS server presenting `chain`/`key`, answering each request for a path
/// with `respond(path)`.
async fn hostile(
    leaf: &TestLeaf,
    respond: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> SocketAddr {
    let config = ServerConfig::builder_with_provider(default_crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond: Responder = Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let respond = respond.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16384 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                for (chunk, pause) in respond(&path).0 {
                    if tls.write_all(&chunk).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// A partner CA, its endpoint leaf, and a hostile endpoint presenting it.
struct Partner {
    ca: TestCa,
    endpoint: TestLeaf,
}

impl Partner {
    fn new() -> Self {
        let ca = TestCa::root(PARTNER);
        let endpoint = ca.leaf(ENDPOINT_ID);
        Self { ca, endpoint }
    }

    /// A good bundle document of this partner, with `sequence`.
    fn document(&self, sequence: u64) -> Vec<u8> {
        let mut bundle = SpiffeBundle::from_parts(self.ca.bundle(), []).unwrap();
        bundle.set_sequence(Some(sequence));
        bundle.set_refresh_hint(Some(Duration::from_secs(1)));
        bundle.to_jwks().unwrap().into_bytes()
    }

    async fn hostile(
        &self,
        respond: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> EndpointConfig {
        let addr = hostile(&self.endpoint, respond).await;
        spiffe_config(addr, &self.ca)
    }
}

// ---------------------------------------------------------------------------
// Both profiles, our server and our client.

#[tokio::test]
async fn https_spiffe_fetch_from_our_endpoint() {
    bounded(async {
        let partner = Partner::new();
        let server = our_server(
            partner.ca.bundle_set(),
            ServerProfile::https_spiffe(partner.endpoint.svid()),
            Duration::from_secs(60),
        )
        .await;
        let config = spiffe_config(server.local_addr(), &partner.ca);
        let bundle = fetch(&config).await.unwrap();
        assert_eq!(bundle.trust_domain(), &partner_td());
        assert_eq!(
            bundle.x509().authorities(),
            std::slice::from_ref(&partner.ca.root)
        );
        assert_eq!(bundle.refresh_hint(), Some(Duration::from_secs(60)));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let sequence = bundle.sequence().unwrap();
        assert!(
            sequence + 60 >= now && sequence <= now + 1,
            "sequence {sequence}, now {now}"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn https_web_fetch_from_our_endpoint() {
    bounded(async {
        let partner = Partner::new();
        let web_ca = TestCa::root("web.example");
        let leaf = web_leaf(&web_ca, &["localhost", "127.0.0.1"]);
        let server = our_server(
            partner.ca.bundle_set(),
            ServerProfile::https_web(leaf.chain.clone(), leaf.key.clone_key()),
            Duration::from_secs(300),
        )
        .await;
        let port = server.local_addr().port();
        for host in ["127.0.0.1", "localhost"] {
            let config = web_config(&format!("{host}:{port}"), &web_ca);
            let bundle = fetch(&config).await.unwrap();
            assert_eq!(
                bundle.x509().authorities(),
                std::slice::from_ref(&partner.ca.root),
                "{host}"
            );
        }
        // The same server is no https_spiffe endpoint: no fallback between profiles.
        let spiffe = spiffe_config(server.local_addr(), &partner.ca);
        assert!(matches!(
            fetch(&spiffe).await,
            Err(FederationError::Handshake { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn endpoint_service_answers_get_and_head_and_refuses_other_methods() {
    let ca = TestCa::root(PARTNER);
    let source = SharedBundles::new(ca.bundle_set());
    let mut endpoint = BundleEndpoint::new(partner_td(), source.clone());
    let request = |method: &str| {
        http::Request::builder()
            .method(method)
            .uri("/any/path")
            .body(())
            .unwrap()
    };

    let get = endpoint.call(request("GET")).await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["content-type"], "application/json");
    let body = get.into_body().collect().await.unwrap().to_bytes();
    let bundle = SpiffeBundle::from_jwks(partner_td(), &body).unwrap();
    assert_eq!(bundle.x509().authorities(), std::slice::from_ref(&ca.root));
    assert_eq!(
        bundle.refresh_hint(),
        Some(Duration::from_secs(300)),
        "default hint"
    );

    let head = endpoint.call(request("HEAD")).await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert!(head
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());

    for method in ["POST", "PUT", "DELETE"] {
        let refused = endpoint.call(request(method)).await.unwrap();
        assert_eq!(refused.status(), 405, "{method}");
        assert_eq!(refused.headers()["allow"], "GET, HEAD");
    }
}

#[tokio::test]
async fn endpoint_sequence_increases_on_change_only() {
    let ca = TestCa::root(PARTNER);
    let source = SharedBundles::new(ca.bundle_set());
    let endpoint = BundleEndpoint::new(partner_td(), source.clone());
    let first = endpoint.current_sequence().unwrap();
    let document = endpoint.current_document();
    // Rendered once per generation: the very same bytes.
    assert_eq!(endpoint.current_document().as_ptr(), document.as_ptr());

    // A new generation with the same content: same sequence, same document.
    source.set(ca.bundle_set());
    assert_eq!(endpoint.current_sequence(), Some(first));
    assert_eq!(endpoint.current_document(), document);

    // A new authority: a higher sequence, at every change.
    let next = TestCa::root(PARTNER);
    let mut both = ca.bundle();
    both.add_authority(next.root.clone()).unwrap();
    source.set(BundleSet::from(both));
    let second = endpoint.current_sequence().unwrap();
    assert!(second > first);
    source.set(next.bundle_set());
    let third = endpoint.current_sequence().unwrap();
    assert!(third > second);

    // A source bundle's own, higher sequence is taken.
    let mut own = ca.bundle();
    own.set_sequence(Some(u64::MAX / 2));
    source.set(BundleSet::from(own));
    assert_eq!(endpoint.current_sequence(), Some(u64::MAX / 2));

    // A source without the trust domain: an empty bundle (trust nothing).
    source.set(BundleSet::new());
    let empty = SpiffeBundle::from_jwks(partner_td(), &endpoint.current_document()).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.sequence(), Some(u64::MAX / 2 + 1));
}

#[tokio::test]
async fn endpoint_publishes_jwt_authorities_from_its_hook() {
    let key = partner_jwt_key();
    let keys = Arc::new(Mutex::new(Vec::new()));
    let hook = keys.clone();
    let ca = TestCa::root(PARTNER);
    let endpoint = BundleEndpoint::new(partner_td(), ca.bundle_set())
        .jwt_authorities(move || hook.lock().unwrap().clone());
    let before = endpoint.current_sequence().unwrap();
    keys.lock().unwrap().push(key.clone());
    let bundle = SpiffeBundle::from_jwks(partner_td(), &endpoint.current_document()).unwrap();
    assert_eq!(bundle.jwt_authority("k1"), Some(&key));
    assert_eq!(bundle.x509().authorities(), std::slice::from_ref(&ca.root));
    assert!(
        bundle.sequence().unwrap() > before,
        "a new JWT key is a change"
    );
}

#[tokio::test]
async fn endpoint_mounts_in_hyper_service_fn_like_any_tower_service() {
    // `route_service` in axum needs Service<Request<B>, Response = Response<impl Body>,
    // Error = Infallible> + Clone: check the bounds compile.
    fn assert_tower<S>(_: &S)
    where
        S: Service<http::Request<Full<Bytes>>, Error = Infallible> + Clone + Send + Sync + 'static,
    {
    }
    let ca = TestCa::root(PARTNER);
    assert_tower(&BundleEndpoint::new(partner_td(), ca.bundle_set()));
}

#[tokio::test]
async fn server_bounds_stalled_clients_and_stops_gracefully() {
    bounded(async {
        let partner = Partner::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = serve_with(
            listener,
            BundleEndpoint::new(partner_td(), partner.ca.bundle_set()),
            ServerProfile::https_spiffe(partner.endpoint.svid()),
            ServeOptions::default()
                .max_connections(2)
                .handshake_timeout(Duration::from_millis(300)),
        )
        .unwrap();
        let addr = server.local_addr();
        // More stalled clients than the server serves at once: they are cut
        // off at the handshake timeout, and a real client gets through.
        let mut stalled = Vec::new();
        for _ in 0..4 {
            stalled.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let bundle = fetch(&spiffe_config(addr, &partner.ca)).await.unwrap();
        assert_eq!(bundle.x509().len(), 1);
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), stalled[0].read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a stalled client is closed: {read:?}"
        );

        server.shutdown().await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Refusals.

#[test]
fn urls_other_than_https_without_userinfo_are_refused() {
    for (url, why) in [
        ("http://127.0.0.1/bundle", "scheme"),
        ("ftp://127.0.0.1/bundle", "scheme"),
        ("https://user@127.0.0.1/bundle", "userinfo"),
        ("https://user:pass@127.0.0.1/bundle", "userinfo"),
        ("https:///bundle", "host"),
        ("/bundle", "scheme"),
        ("https://127.0.0.1/bundle#frag", "fragment"),
    ] {
        match url.parse::<EndpointUrl>() {
            Err(FederationError::InvalidUrl { reason, .. }) => {
                assert!(
                    reason.contains(why) || reason.contains("valid"),
                    "{url}: {reason}"
                )
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    assert!("https://[::1]:8443/b?x=1".parse::<EndpointUrl>().is_ok());
}

#[test]
fn bootstrap_bundle_of_another_trust_domain_is_refused() {
    let other = TestCa::root("other.example");
    let refused = EndpointConfig::new(
        "https://127.0.0.1/".parse().unwrap(),
        partner_td(),
        EndpointProfile::https_spiffe(id(ENDPOINT_ID), other.bundle()),
    );
    assert!(matches!(refused, Err(FederationError::Config { .. })));
}

#[tokio::test]
async fn wrong_endpoint_spiffe_id_is_refused() {
    bounded(async {
        let partner = Partner::new();
        let impostor = partner.ca.leaf("spiffe://partner.example/not-the-endpoint");
        let addr = hostile(&impostor, |_| ok_json(Partner::new().document(1))).await;
        let err = fetch(&spiffe_config(addr, &partner.ca)).await.unwrap_err();
        let FederationError::Handshake { rejection, .. } = &err else {
            panic!("{err:?}")
        };
        let denied = rejection.as_ref().and_then(|r| r.denied()).expect("denied");
        assert_eq!(
            denied.peer(),
            &id("spiffe://partner.example/not-the-endpoint")
        );
    })
    .await;
}

#[tokio::test]
async fn endpoint_certificate_from_another_ca_is_refused() {
    bounded(async {
        let partner = Partner::new();
        let rogue_ca = TestCa::root(PARTNER);
        let rogue = rogue_ca.leaf(ENDPOINT_ID);
        let addr = hostile(&rogue, |_| ok_json(b"{\"keys\": []}".to_vec())).await;
        let err = fetch(&spiffe_config(addr, &partner.ca)).await.unwrap_err();
        let FederationError::Handshake { rejection, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            rejection.as_ref().and_then(|r| r.verify_error()).is_some(),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn web_certificate_for_another_host_is_refused() {
    bounded(async {
        let web_ca = TestCa::root("web.example");
        let leaf = web_leaf(&web_ca, &["bundles.example.com"]);
        let addr = hostile(&leaf, |_| ok_json(b"{\"keys\": []}".to_vec())).await;
        let config = web_config(&addr.to_string(), &web_ca);
        let err = fetch(&config).await.unwrap_err();
        let FederationError::Handshake { tls_error, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            matches!(
                tls_error.as_deref(),
                Some(mtls_core::rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext { .. }
                        | CertificateError::NotValidForName
                ))
            ),
            "{err}"
        );
        // And a web certificate from an untrusted CA.
        let other_roots = EndpointConfig::new(
            format!("https://{addr}/").parse().unwrap(),
            partner_td(),
            EndpointProfile::https_web(vec![TestCa::root("web.example").root]),
        )
        .unwrap();
        assert!(matches!(
            fetch(&other_roots).await,
            Err(FederationError::Handshake { .. })
        ));
    })
    .await;
}

/// One hostile answer and the error it must produce.
struct Case {
    name: &'static str,
    respond: fn(&Partner, &str) -> Reply,
    config: fn(EndpointConfig) -> EndpointConfig,
    expect: fn(&FederationError) -> bool,
}

/// Whether `e` is a bundle document that does not parse as JSON.
fn bundle_json_error(e: &FederationError) -> bool {
    bundle_error(e, |b| matches!(b, BundleError::Json { .. }))
}

/// Whether `e` is a bundle error that `what` recognises.
fn bundle_error(e: &FederationError, what: fn(&BundleError) -> bool) -> bool {
    match e {
        FederationError::Bundle { source, .. } => what(source),
        _ => false,
    }
}

/// A fixed P-256 JWT authority (`kid` k1) of the partner's trust domain.
fn partner_jwt_key() -> mtls_core::JwtKey {
    let jwks = br#"{"keys": [{
        "use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": "k1",
        "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
        "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
    }]}"#;
    SpiffeBundle::from_jwks(partner_td(), jwks)
        .unwrap()
        .jwt_authorities()[0]
        .clone()
}

/// An `https_web` endpoint of the partner at `https://AUTHORITY/`, whose
/// certificate `web_ca` signs.
fn web_config(authority: &str, web_ca: &TestCa) -> EndpointConfig {
    let url = format!("https://{authority}/").parse().unwrap();
    let profile = EndpointProfile::https_web(vec![web_ca.root.clone()]);
    EndpointConfig::new(url, partner_td(), profile).unwrap()
}

fn same(config: EndpointConfig) -> EndpointConfig {
    config
}

fn doc(value: serde_json::Value) -> Reply {
    ok_json(value.to_string())
}

#[tokio::test]
async fn hostile_endpoints_are_refused_with_typed_errors() {
    let cases = [
        Case {
            name: "redirect-loop",
            respond: |_, path| http("302 Found", &[("location", path)], b""),
            config: same,
            expect: |e| matches!(e, FederationError::TooManyRedirects { limit, .. } if *limit == MAX_FEDERATION_REDIRECTS),
        },
        Case {
            name: "redirect-chain-too-long",
            respond: |_, path| {
                let n: usize = path.trim_start_matches('/').parse().unwrap_or(0);
                http(
                    "307 Temporary Redirect",
                    &[("location", &format!("/{}", n + 1))],
                    b"",
                )
            },
            config: same,
            expect: |e| matches!(e, FederationError::TooManyRedirects { .. }),
        },
        Case {
            name: "permanent-redirect-301",
            respond: |_, _| http("301 Moved Permanently", &[("location", "/moved")], b""),
            config: same,
            expect: |e| matches!(e, FederationError::PermanentRedirect { status: 301, .. }),
        },
        Case {
            name: "permanent-redirect-308",
            respond: |_, _| http("308 Permanent Redirect", &[("location", "/moved")], b""),
            config: same,
            expect: |e| matches!(e, FederationError::PermanentRedirect { status: 308, .. }),
        },
        Case {
            name: "redirects-not-followed-when-disabled",
            respond: |p, path| {
                if path == "/real" {
                    ok_json(p.document(1))
                } else {
                    http("302 Found", &[("location", "/real")], b"")
                }
            },
            config: |c| c.max_redirects(0),
            expect: |e| matches!(e, FederationError::TooManyRedirects { limit: 0, .. }),
        },
        Case {
            name: "status-500",
            respond: |_, _| http("500 Internal Server Error", &[], b"oops"),
            config: same,
            expect: |e| matches!(e, FederationError::Status { status: 500, .. }),
        },
        Case {
            name: "status-404",
            respond: |_, _| http("404 Not Found", &[], b""),
            config: same,
            expect: |e| matches!(e, FederationError::Status { status: 404, .. }),
        },
        Case {
            name: "oversize-body-declared",
            respond: |_, _| ok_json(vec![b' '; 4096]),
            config: |c| c.max_body(1024),
            expect: |e| matches!(e, FederationError::TooLarge { limit: 1024, .. }),
        },
        Case {
            name: "oversize-body-chunked",
            respond: |_, _| {
                let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for _ in 0..8 {
                    out.extend_from_slice(b"200\r\n");
                    out.extend_from_slice(&[b' '; 0x200]);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                Reply(vec![(out, Duration::ZERO)])
            },
            config: |c| c.max_body(1024),
            expect: |e| matches!(e, FederationError::TooLarge { .. }),
        },
        Case {
            name: "slow-body",
            respond: |_, _| {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"keys\"".to_vec();
                Reply(vec![(head, Duration::from_secs(20))])
            },
            config: |c| c.total_timeout(Duration::from_millis(800)),
            expect: |e| matches!(e, FederationError::Timeout { stage: "fetch", .. }),
        },
        Case {
            name: "bad-json",
            respond: |_, _| ok_json(b"{\"keys\": [".to_vec()),
            config: same,
            expect: bundle_json_error,
        },
        Case {
            name: "not-utf8",
            respond: |_, _| ok_json(b"{\"keys\": [], \"x\": \"\xff\"}".to_vec()),
            config: same,
            expect: bundle_json_error,
        },
        Case {
            name: "missing-keys",
            respond: |_, _| doc(json!({ "spiffe_sequence": 1 })),
            config: same,
            expect: bundle_json_error,
        },
        Case {
            name: "x5c-with-two-certificates",
            respond: |p, _| {
                let other = TestCa::root(PARTNER);
                doc(json!({ "keys": [
                    { "use": "x509-svid", "kty": "EC", "x5c": [b64(&p.ca.root), b64(&other.root)] }
                ] }))
            },
            config: same,
            expect: |e| {
                matches!(
                    e,
                    FederationError::MultipleCertificates {
                        index: 0,
                        count: 2,
                        ..
                    }
                )
            },
        },
        Case {
            name: "x5c-non-ca-certificate",
            respond: |p, _| {
                doc(json!({ "keys": [
                    { "use": "x509-svid", "kty": "EC", "x5c": [b64(&p.endpoint.chain[0])] }
                ] }))
            },
            config: same,
            expect: |e| bundle_error(e, |b| matches!(b, BundleError::NotAnAuthority { .. })),
        },
        Case {
            name: "bundle-of-another-trust-domain",
            respond: |p, _| {
                let other = TestCa::root("other.example");
                doc(json!({ "keys": [
                    { "use": "x509-svid", "kty": "EC", "x5c": [b64(&p.ca.root)] },
                    { "use": "x509-svid", "kty": "EC", "x5c": [b64(&other.root)] }
                ] }))
            },
            config: same,
            expect: |e| {
                matches!(e, FederationError::ForeignTrustDomain { index: 1, spiffe_id, .. }
                    if spiffe_id.as_str() == "spiffe://other.example")
            },
        },
    ];
    // Redirects refused before they are followed: (name, status line,
    // location; none when empty).
    let userinfo = "https://u@127.0.0.1:1/b";
    let bad_redirects = [
        ("redirect-to-http", "302 Found", "http://127.0.0.1:1/b"),
        ("redirect-with-userinfo", "302 Found", userinfo),
        ("redirect-to-a-relative-path", "302 Found", "bundle.json"),
        ("redirect-without-location", "307 Temporary Redirect", ""),
    ];
    bounded(async {
        for case in cases {
            let partner = Arc::new(Partner::new());
            let p = partner.clone();
            let respond = case.respond;
            let config = partner.hostile(move |path| respond(&p, path)).await;
            let config = (case.config)(config);
            assert_refused(case.name, fetch(&config).await, case.expect);
        }
        for (name, status, location) in bad_redirects {
            let partner = Partner::new();
            let config = partner
                .hostile(move |_| match location {
                    "" => http(status, &[], b""),
                    _ => http(status, &[("location", location)], b""),
                })
                .await;
            let bad_redirect =
                |e: &FederationError| matches!(e, FederationError::BadRedirect { .. });
            assert_refused(name, fetch(&config).await, bad_redirect);
        }
    })
    .await;
}

/// Asserts that `fetched` failed with an error `expect` recognises; a
/// failure names the case.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    case: &str,
    fetched: Result<T, FederationError>,
    expect: impl Fn(&FederationError) -> bool,
) {
    match fetched {
        Err(e) => assert!(expect(&e), "{case}: unexpected error {e:?}"),
        Ok(b) => panic!("{case}: accepted {b:?}"),
    }
}

#[tokio::test]
async fn temporary_redirects_are_followed_with_the_same_tls_rules() {
    bounded(async {
        let partner = Arc::new(Partner::new());
        // A redirect within the endpoint, then one to another endpoint
        // presenting the same SPIFFE ID.
        let p = partner.clone();
        let target = hostile(&partner.endpoint, move |_| ok_json(p.document(7))).await;
        let config = partner
            .hostile(move |path| match path {
                "/bundle.json" => http("302 Found", &[("location", "/cdn")], b""),
                _ => http(
                    "307 Temporary Redirect",
                    &[("location", &format!("https://{target}/b"))],
                    b"",
                ),
            })
            .await;
        let bundle = fetch(&config).await.unwrap();
        assert_eq!(bundle.sequence(), Some(7));

        // A redirect to a server presenting another SPIFFE ID is refused.
        let impostor = partner.ca.leaf("spiffe://partner.example/cdn");
        let p = partner.clone();
        let elsewhere = hostile(&impostor, move |_| ok_json(p.document(8))).await;
        let config = partner
            .hostile(move |_| {
                http(
                    "302 Found",
                    &[("location", &format!("https://{elsewhere}/"))],
                    b"",
                )
            })
            .await;
        let err = fetch(&config).await.unwrap_err();
        assert!(matches!(err, FederationError::Handshake { .. }), "{err:?}");
    })
    .await;
}

#[test]
fn parse_bundle_is_from_jwks_plus_the_fetched_document_rules() {
    let partner = Partner::new();
    let bundle = parse_bundle(&partner_td(), &partner.document(3)).unwrap();
    assert_eq!(bundle.sequence(), Some(3));
    // An authority without a SPIFFE ID (a corporate root) is fine.
    let plain = TestCa::root_with(PARTNER, |p| p.subject_alt_names.clear());
    let body = json!({ "keys": [{ "use": "x509-svid", "kty": "EC", "x5c": [b64(&plain.root)] }] });
    assert!(parse_bundle(&partner_td(), body.to_string().as_bytes()).is_ok());
}

// ---------------------------------------------------------------------------
// Watching.

fn fast() -> WatchOptions {
    WatchOptions::default().min_refresh(Duration::from_secs(1))
}

#[tokio::test]
async fn sequence_handling_keeps_the_last_good_bundle() {
    bounded(async {
        let partner = Partner::new();
        let next = TestCa::root(PARTNER);
        let body = Arc::new(Mutex::new(http("500 Internal Server Error", &[], b"")));
        let served = body.clone();
        let config = partner.hostile(move |_| served.lock().unwrap().clone()).await;
        let document = |sequence: u64, cas: &[&TestCa]| {
            let keys: Vec<_> = cas
                .iter()
                .map(|ca| json!({ "use": "x509-svid", "kty": "EC", "x5c": [b64(&ca.root)] }))
                .collect();
            ok_json(json!({ "keys": keys, "spiffe_sequence": sequence, "spiffe_refresh_hint": 3600 }).to_string())
        };
        let source = FederatedBundleSource::spawn(config, fast()).unwrap();
        let set = |reply: Reply| *body.lock().unwrap() = reply;

        // Failures before the first success: empty, counted.
        assert!(eventually(Duration::from_secs(5), || source.status().failures >= 1).await);
        assert!(source.current_bundle().is_none());
        assert!(!source.current_bundles().contains(PARTNER));
        assert!(matches!(source.status().last_error, Some(FederationError::Status { status: 500, .. })));

        set(document(10, &[&partner.ca]));
        source.refresh_now();
        assert!(eventually(Duration::from_secs(5), || source.current_bundle().is_some()).await);
        let generation = source.generation();
        let failures = source.status().failures;
        assert_eq!(source.current_bundle().unwrap().sequence(), Some(10));
        assert!(source.current_bundles().contains(PARTNER));

        // The same sequence and content: no new generation, no failure.
        source.refresh_now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(source.generation(), generation);
        assert_eq!(source.status().failures, failures);

        // Other content with an older or equal sequence: refused, reported.
        for (i, sequence) in [9u64, 10].into_iter().enumerate() {
            set(document(sequence, &[&partner.ca, &next]));
            source.refresh_now();
            let want = failures + 1 + i as u64;
            assert!(eventually(Duration::from_secs(5), || source.status().failures >= want).await);
            let status = source.status();
            assert!(
                matches!(status.last_error, Some(FederationError::StaleSequence { current: 10, received, .. }) if received == sequence),
                "{:?}",
                status.last_error
            );
            assert_eq!(source.generation(), generation);
            assert_eq!(source.current_bundle().unwrap().x509().len(), 1, "keeps the last good");
        }

        // A failing endpoint: the last good bundle keeps serving.
        set(http("503 Service Unavailable", &[], b""));
        source.refresh_now();
        assert!(eventually(Duration::from_secs(5), || source.status().failures >= failures + 3).await);
        assert_eq!(source.current_bundle().unwrap().sequence(), Some(10));

        // A higher sequence: taken.
        set(document(11, &[&partner.ca, &next]));
        source.refresh_now();
        assert!(eventually(Duration::from_secs(5), || source.generation() > generation).await);
        let held = source.current_bundle().unwrap();
        assert_eq!(held.sequence(), Some(11));
        assert_eq!(held.x509().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn watcher_needs_a_runtime_and_stops_when_dropped() {
    let partner = Partner::new();
    let config = spiffe_config("127.0.0.1:1".parse().unwrap(), &partner.ca);
    let outside =
        std::thread::spawn(move || FederatedBundleSource::spawn(config, fast()).map(|_| ()))
            .join()
            .unwrap();
    assert!(matches!(outside, Err(FederationError::NoRuntime { .. })));

    bounded(async {
        let hits = Arc::new(Mutex::new(0usize));
        let counted = hits.clone();
        let p = Partner::new();
        let doc = p.document(1);
        let config = Partner::new()
            .hostile(move |_| {
                *counted.lock().unwrap() += 1;
                ok_json(doc.clone())
            })
            .await;
        let source = FederatedBundleSource::spawn(config, fast()).unwrap();
        assert!(eventually(Duration::from_secs(5), || *hits.lock().unwrap() >= 1).await);
        drop(source);
        let after = *hits.lock().unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(*hits.lock().unwrap() <= after + 1, "polling stopped");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_ca_rotation_is_picked_up_live_with_zero_failures() {
    bounded(async {
        // The partner trust domain: CA 1, its bundle endpoint (self-serving).
        let ca1 = TestCa::root(PARTNER);
        let ca2 = TestCa::root(PARTNER);
        let partner_bundles = SharedBundles::new(ca1.bundle_set());
        let endpoint_svid = SharedSvid::new(ca1.leaf(ENDPOINT_ID).svid());
        let server = our_server(
            partner_bundles.clone(),
            ServerProfile::HttpsSpiffe(Arc::new(endpoint_svid.clone())),
            Duration::from_secs(1),
        )
        .await;

        // Our trust domain watches the partner's endpoint, bootstrapped with CA 1.
        let ours = TestCa::root("example.org");
        let federated =
            FederatedBundleSource::spawn(spiffe_config(server.local_addr(), &ca1), fast()).unwrap();
        let bundles = ComposedBundles::builder()
            .trust_domain(TrustDomain::new("example.org").unwrap(), ours.bundle_set())
            .trust_domain(partner_td(), federated.clone())
            .build()
            .unwrap();
        let our_server_config =
            MtlsServerConfig::builder(ours.leaf("spiffe://example.org/api").svid(), bundles)
                .authorizer(authorize::member_of(partner_td()))
                .build()
                .unwrap();
        let addr = serve_hi(&our_server_config).await;
        let partner_client = |ca: &TestCa| {
            MtlsClientConfig::builder(
                ca.leaf("spiffe://partner.example/client").svid(),
                ours.bundle_set(),
            )
            .authorizer(authorize::exact(id("spiffe://example.org/api")))
            .build()
            .unwrap()
        };
        let authorities =
            |f: &FederatedBundleSource| f.current_bundle().map(|b| b.x509().authorities().to_vec());

        // First fetch: CA 1 trusted.
        assert!(
            eventually(Duration::from_secs(10), || authorities(&federated)
                == Some(vec![ca1.root.clone()]))
            .await
        );
        assert_eq!(call_hi(&partner_client(&ca1), addr).await.unwrap().0, b"hi");
        let client_with_ca2 = partner_client(&ca2);
        assert!(
            call_hi(&client_with_ca2, addr).await.is_err(),
            "CA 2 not yet trusted"
        );
        let generation = federated.generation();

        // The partner publishes CA 2 ahead of using it.
        let mut both = ca1.bundle();
        both.add_authority(ca2.root.clone()).unwrap();
        partner_bundles.set(BundleSet::from(both));
        assert!(
            eventually(Duration::from_secs(10), || authorities(&federated)
                .map(|a| a.len())
                == Some(2))
            .await
        );
        assert!(federated.generation() > generation);
        assert_eq!(call_hi(&partner_client(&ca1), addr).await.unwrap().0, b"hi");
        assert_eq!(call_hi(&client_with_ca2, addr).await.unwrap().0, b"hi");

        // It switches its endpoint to CA 2 and drops CA 1: the endpoint is now
        // authenticated with the latest fetched bundle, not the bootstrap one.
        endpoint_svid.set(ca2.leaf(ENDPOINT_ID).svid());
        partner_bundles.set(ca2.bundle_set());
        assert!(
            eventually(Duration::from_secs(10), || authorities(&federated)
                == Some(vec![ca2.root.clone()]))
            .await
        );
        assert_eq!(call_hi(&client_with_ca2, addr).await.unwrap().0, b"hi");
        assert!(
            call_hi(&partner_client(&ca1), addr).await.is_err(),
            "CA 1 no longer trusted"
        );

        // Still polling fine with the new CA: no fetch failed at any point.
        let before = federated.generation();
        partner_bundles.set(BundleSet::from({
            let mut b = ca2.bundle();
            b.add_authority(ca1.root.clone()).unwrap();
            b
        }));
        assert!(eventually(Duration::from_secs(10), || federated.generation() > before).await);
        assert_eq!(
            federated.status().failures,
            0,
            "{:?}",
            federated.status().last_error
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn non_self_serving_endpoint_is_verified_against_the_given_source() {
    bounded(async {
        // The bundle of partner.example is served by an endpoint of hub.example.
        let hub = TestCa::root("hub.example");
        let partner = TestCa::root(PARTNER);
        let hub_id = "spiffe://hub.example/bundles";
        let server = our_server(
            partner.bundle_set(),
            ServerProfile::https_spiffe(hub.leaf(hub_id).svid()),
            Duration::from_secs(60),
        )
        .await;
        let url: EndpointUrl = format!("https://{}/", server.local_addr()).parse().unwrap();
        let hub_bundles = SharedBundles::new(BundleSet::new());
        let config = EndpointConfig::new(
            url.clone(),
            partner_td(),
            EndpointProfile::HttpsSpiffeVia {
                endpoint_id: id(hub_id),
                bundles: Arc::new(hub_bundles.clone()),
            },
        )
        .unwrap();
        assert!(matches!(
            fetch(&config).await,
            Err(FederationError::Handshake { .. })
        ));
        hub_bundles.set(hub.bundle_set());
        assert_eq!(
            fetch(&config).await.unwrap().x509().authorities(),
            std::slice::from_ref(&partner.root)
        );

        // With a static bundle of the hub's trust domain.
        let config = EndpointConfig::new(
            url,
            partner_td(),
            EndpointProfile::https_spiffe(id(hub_id), hub.bundle()),
        )
        .unwrap();
        assert!(fetch(&config).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn the_watcher_serves_the_partners_jwt_authorities() {
    bounded(async {
        let partner = Partner::new();
        let key = partner_jwt_key();
        let mut bundle = SpiffeBundle::from_parts(partner.ca.bundle(), [key.clone()]).unwrap();
        bundle.set_sequence(Some(1));
        let doc = bundle.to_jwks().unwrap().into_bytes();
        let config = partner.hostile(move |_| ok_json(doc.clone())).await;
        let source = FederatedBundleSource::spawn(config, fast()).unwrap();
        let jwt = |s: &FederatedBundleSource| JwtBundleSource::current_jwt_bundles(s);
        // Nothing before the first fetch: tokens of the partner are refused.
        if source.generation() == 0 {
            assert!(jwt(&source).get(PARTNER).is_none());
        }
        assert!(eventually(Duration::from_secs(5), || source.generation() > 0).await);
        let set = jwt(&source);
        let partner_keys = set.get(PARTNER).unwrap();
        assert_eq!(partner_keys.authority("k1"), Some(&key));
        assert_eq!(
            JwtBundleSource::generation(&source),
            Some(source.generation())
        );
        assert!(
            set.get("example.org").is_none(),
            "only the partner's trust domain"
        );
    })
    .await;
}
