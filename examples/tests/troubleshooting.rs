//! Run with: `cargo test -p examples --test troubleshooting`
//!
//! The errors a user meets, produced for real in-process (tonic and axum
//! on loopback, mtls-ca certificates), and `docs/troubleshooting.md`
//! checked against their texts.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use examples::identity_proto::identity_client::IdentityClient;
use examples::identity_proto::identity_server::IdentityServer;
use examples::identity_proto::WhoAmIRequest;
use examples::identity_service::IdentityService;
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::rustls;
use mtls_core::{
    authorize, BundleSet, MtlsClientConfig, MtlsServerConfig, Rejection, SpiffeId, TrustDomain,
    X509Svid,
};
use mtls_testing::{assert_mentions, error_lines};
use mtls_tower::{MtlsConnector, MtlsListener};
use tonic::transport::Endpoint;

const BACKEND: &str = "spiffe://example.org/backend";
const FRONTEND: &str = "spiffe://example.org/frontend";

fn id(s: &str) -> SpiffeId {
    s.parse().unwrap()
}

struct Ca {
    td: TrustDomain,
    ca: CertificateAuthority,
}

impl Ca {
    fn new(td: &str) -> Self {
        let td = TrustDomain::new(td).unwrap();
        let ca =
            CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())
                .unwrap();
        Self { td, ca }
    }

    fn bundles(&self) -> BundleSet {
        BundleSet::from(self.ca.bundle().unwrap())
    }

    fn svid(&self, spiffe_id: &str, ttl: Duration) -> X509Svid {
        self.ca
            .issue(&SvidRequest::new(id(spiffe_id)).ttl(ttl))
            .unwrap()
    }
}

/// A tonic server on loopback; the task serving it.
async fn tonic_server(ca: &Ca) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let config =
        MtlsServerConfig::builder(ca.svid(BACKEND, Duration::from_secs(3600)), ca.bundles())
            .authorizer(authorize::member_of(ca.td.clone()))
            .alpn_protocols(vec![b"h2".to_vec()])
            .build()
            .unwrap();
    let listener = MtlsListener::bind("127.0.0.1:0", config).await.unwrap();
    let addr = listener.local_addr();
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(IdentityServer::new(IdentityService))
            .serve_with_incoming(listener)
            .await;
    });
    (addr, task)
}

fn client_config(ca: &Ca, svid: X509Svid) -> MtlsClientConfig {
    MtlsClientConfig::builder(svid, ca.bundles())
        .authorizer(authorize::exact(id(BACKEND)))
        .alpn_protocols(vec![b"h2".to_vec()])
        .build()
        .unwrap()
}

/// What a tonic client whose SVID has expired is told: the connect error
/// (eager channel) and the call's status (lazy channel), as chains.
async fn tonic_client_with_expired_svid() -> (String, String) {
    let ca = Ca::new("example.org");
    let (addr, _server) = tonic_server(&ca).await;
    let svid = ca.svid(FRONTEND, Duration::from_secs(1));
    let not_after = svid.not_after();
    let config = client_config(&ca, svid);
    if let Ok(wait) = (not_after + Duration::from_millis(1100)).duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let eager = endpoint
        .connect_with_connector(MtlsConnector::grpc(config.clone()))
        .await
        .err()
        .unwrap();
    let channel = endpoint.connect_with_connector_lazy(MtlsConnector::grpc(config));
    let status = IdentityClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .err()
        .unwrap();
    (
        error_lines(&eager),
        format!("{status}\n{}", error_lines(&status)),
    )
}

#[tokio::test]
async fn a_tonic_client_whose_svid_expired_is_told_why() {
    let (eager, lazy) = tonic_client_with_expired_svid().await;
    for text in [&eager, &lazy] {
        assert_mentions(
            text,
            &[
                "mtls-tower: the client's own SVID has expired",
                &format!("x509svid: the chain of {FRONTEND} expired at"),
            ],
        );
    }
}

/// What a tonic client with its own rustls connector (no check of its own
/// SVID) is told when the server refuses its expired SVID after the TLS
/// 1.3 handshake: the call's status, as a chain.
async fn tonic_refused_after_handshake() -> String {
    let ca = Ca::new("example.org");
    let (addr, _server) = tonic_server(&ca).await;
    let svid = ca.svid(FRONTEND, Duration::from_secs(1));
    let not_after = svid.not_after();
    let rustls = client_config(&ca, svid).rustls_config();
    if let Ok(wait) = (not_after + Duration::from_millis(1100)).duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let connector = tower::service_fn(move |uri: http::Uri| {
        let rustls = rustls.clone();
        async move {
            let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
            let tcp = tokio::net::TcpStream::connect(authority).await?;
            let tls = tokio_rustls::TlsConnector::from(rustls)
                .connect("localhost".try_into().unwrap(), tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector_lazy(connector);
    let status = IdentityClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .err()
        .unwrap();
    format!("{status}\n{}", error_lines(&status))
}

#[tokio::test]
async fn a_refusal_after_the_handshake_names_the_alert() {
    let text = tonic_refused_after_handshake().await;
    assert!(
        text.starts_with("code: 'Unknown error', message: \"transport error\""),
        "{text}"
    );
    assert!(
        text.contains("received fatal alert: CertificateExpired"),
        "{text}"
    );
}

// ---------------------------------------------------------------------
// docs/troubleshooting.md, checked against the real messages.

const PAGE: &str = include_str!("../../docs/troubleshooting.md");
const INTRUDER: &str = "spiffe://example.org/intruder";

/// Asserts the page quotes `snippet` (a real message, or a prefix of one).
fn quoted(snippet: &str) {
    assert!(
        PAGE.contains(snippet),
        "docs/troubleshooting.md does not quote {snippet:?}"
    );
}

/// The part of `text` before `marker`, marker included.
fn up_to<'a>(text: &'a str, marker: &str) -> &'a str {
    let end = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in {text:?}"))
        + marker.len();
    &text[..end]
}

/// A server with `config`'s verifier, on a bare tokio-rustls acceptor; the
/// refusals its verifier reported, and the server's handshake error.
struct Refusals {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<(&'static str, String)>>>,
    errors: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn refusing_server(svid: X509Svid, bundles: BundleSet) -> Refusals {
    let seen: Arc<Mutex<Vec<(&'static str, String)>>> = Arc::default();
    let hook = seen.clone();
    let config = MtlsServerConfig::builder(svid, bundles)
        .authorizer(authorize::exact(id(FRONTEND)))
        .on_rejection(move |r: &Rejection| {
            hook.lock().unwrap().push((r.kind(), r.to_string()));
        })
        .build()
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config.rustls_config());
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = errors.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            if let Err(e) = acceptor.accept(stream).await {
                log.lock().unwrap().push(e.to_string());
            }
        }
    });
    Refusals {
        addr,
        seen,
        errors,
        _task: task,
    }
}

/// A raw TLS handshake with `config` to `addr`, then one read (TLS 1.3:
/// the server's verdict on the client's certificate comes after the
/// client's side of the handshake): the client's error, if any.
async fn raw_handshake(config: Arc<rustls::ClientConfig>, addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    match tokio_rustls::TlsConnector::from(config)
        .connect("localhost".try_into().unwrap(), tcp)
        .await
    {
        Err(e) => e.to_string(),
        Ok(mut tls) => {
            let _ = tls.write_all(b"x").await;
            let mut buf = [0u8; 16];
            match tls.read(&mut buf).await {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            }
        }
    }
}

#[tokio::test]
async fn handshake_refusals_are_on_the_page() {
    use mtls_testing::{hours, now, TestCa};

    let ca = TestCa::root("example.org");
    let server = refusing_server(ca.leaf(BACKEND).svid(), ca.bundle_set()).await;
    let client = |svid: X509Svid, bundles: BundleSet| {
        MtlsClientConfig::builder(svid, bundles)
            .authorizer(authorize::any())
            .build()
            .unwrap()
            .rustls_config()
    };
    let other = TestCa::root("other.org");
    let rogue = TestCa::root("example.org");
    let cases: Vec<(&str, X509Svid)> = vec![
        (
            "no_bundle",
            other.leaf("spiffe://other.org/frontend").svid(),
        ),
        ("untrusted_issuer", rogue.leaf(FRONTEND).svid()),
        (
            "expired",
            ca.leaf_with(FRONTEND, |p| p.not_after = now() - hours(1))
                .svid(),
        ),
        (
            "not_yet_valid",
            ca.leaf_with(FRONTEND, |p| p.not_before = now() + hours(1))
                .svid(),
        ),
        ("denied", ca.leaf(INTRUDER).svid()),
    ];
    for (label, svid) in cases {
        raw_handshake(client(svid, ca.bundle_set()), server.addr).await;
        let (kind, message) = server.seen.lock().unwrap().pop().expect(label);
        assert_eq!(kind, label, "{message}");
        quoted(&format!("| `{label}` |"));
        let snippet = match label {
            "expired" => up_to(&message, " expired at"),
            "not_yet_valid" => up_to(&message, " is not valid before"),
            "untrusted_issuer" => message.trim_start_matches("x509svid: "),
            _ => &message,
        };
        quoted(snippet);
    }

    // No certificate at all.
    let anonymous = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(mtls_testing::accept_any_server(
            &rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_no_client_auth();
    let client_error = raw_handshake(Arc::new(anonymous), server.addr).await;
    quoted(&client_error);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server_error = server.errors.lock().unwrap().last().cloned().unwrap();
    quoted(&format!("(rustls: `{server_error}`)"));

    // Every label of the vocabulary has its line.
    for label in [
        "no_bundle",
        "untrusted_issuer",
        "expired",
        "not_yet_valid",
        "denied",
        "revoked",
        "crl_expired",
        "bad_signature",
        "wrong_extended_key_usage",
        "bad_signing_certificate",
        "chain",
        "empty_chain",
        "chain_too_long",
        "certificate_too_large",
        "malformed_certificate",
        "no_uri_san",
        "multiple_uri_sans",
        "invalid_spiffe_id",
        "trust_domain_id_as_leaf",
        "unacceptable_key",
        "leaf_is_ca",
        "leaf_missing_key_usage",
        "leaf_missing_digital_signature",
        "leaf_has_key_cert_sign",
        "leaf_has_crl_sign",
        "no_certificate",
        "timeout",
        "alert_received",
        "incompatible",
        "tls",
        "io",
    ] {
        quoted(&format!("`{label}`"));
    }
}

#[tokio::test]
async fn client_errors_are_on_the_page() {
    let ca = Ca::new("example.org");
    let config = client_config(&ca, ca.svid(FRONTEND, Duration::from_secs(3600)));
    let server = |svid: X509Svid, bundles: BundleSet| async move {
        let config = MtlsServerConfig::builder(svid, bundles)
            .authorizer(authorize::any())
            .alpn_protocols(vec![b"h2".to_vec()])
            .build()
            .unwrap();
        MtlsListener::bind("127.0.0.1:0", config).await.unwrap()
    };
    let hour = Duration::from_secs(3600);
    let other = Ca::new("other.org");
    let rogue = Ca::new("example.org");
    let cases = [
        (
            server(ca.svid("spiffe://example.org/impostor", hour), ca.bundles()).await,
            "authorize: spiffe://example.org/impostor denied: is not spiffe://example.org/backend",
        ),
        (
            server(other.svid("spiffe://other.org/backend", hour), ca.bundles()).await,
            "no bundle for trust domain other.org (peer spiffe://other.org/backend)",
        ),
        (
            server(rogue.svid(BACKEND, hour), ca.bundles()).await,
            "spiffe://example.org/backend is not signed by an authority of trust domain example.org",
        ),
    ];
    for (listener, reason) in cases {
        let addr = listener.local_addr();
        let uri: http::Uri = format!("https://{addr}/").parse().unwrap();
        let e = MtlsConnector::new(config.clone())
            .connect(&uri)
            .await
            .err()
            .unwrap();
        let text = mtls_core::ErrorChain(&e).to_string();
        let refused = format!("mtls-tower: refused the server at {addr}: ");
        assert!(text.contains(reason), "{text}");
        assert!(text.starts_with(&refused), "{text}");
        quoted(reason);
        quoted("mtls-tower: refused the server at 127.0.0.1:8443: ");
        drop(listener);
    }

    // The client's own SVID expired: the connector, then tonic.
    let (eager, lazy) = tonic_client_with_expired_svid().await;
    let mut lines = eager.lines().skip_while(|l| !l.starts_with("mtls-tower"));
    quoted(lines.next().unwrap());
    quoted(up_to(lines.last().unwrap(), " expired at"));
    quoted(up_to(&lazy, "(the server would refuse it)\""));
    let lazy = tonic_refused_after_handshake().await;
    quoted(up_to(&lazy, "message: \"transport error\""));
    quoted(lazy.lines().last().unwrap());
}

#[tokio::test]
async fn unauthenticated_and_denied_requests_are_on_the_page() {
    use axum::routing::get;
    use http_body_util::{BodyExt, Empty};
    use mtls_tower::{AuthorizeLayer, MtlsConnectInfo, RoutePolicy};

    let ca = Ca::new("example.org");
    let app = || {
        axum::Router::new()
            .route("/whoami", get(|| async { "hello\n" }))
            .route("/admin", get(|| async { "admin\n" }))
            .layer(AuthorizeLayer::new(
                RoutePolicy::builder()
                    .route("/whoami", authorize::any())
                    .route("/admin", authorize::exact(id("spiffe://example.org/admin")))
                    .build()
                    .unwrap(),
            ))
    };
    let listener = |ca: &Ca| {
        let config =
            MtlsServerConfig::builder(ca.svid(BACKEND, Duration::from_secs(3600)), ca.bundles())
                .authorizer(authorize::any())
                .alpn_protocols(vec![b"http/1.1".to_vec()])
                .build()
                .unwrap();
        MtlsListener::bind("127.0.0.1:0", config)
    };
    // The normal set-up, and one that forgot the connect info.
    let good = listener(&ca).await.unwrap();
    let good_addr = good.local_addr();
    let _good = tokio::spawn(async move {
        let _ = axum::serve(
            good,
            app().into_make_service_with_connect_info::<MtlsConnectInfo>(),
        )
        .await;
    });
    // What the server logs: captured on this thread (the test's runtime
    // runs the servers' tasks here too).
    let logs = Logs::default();
    let _capture = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    let forgot = listener(&ca).await.unwrap();
    let forgot_addr = forgot.local_addr();
    let _forgot = tokio::spawn(async move {
        let _ = axum::serve(forgot, app()).await;
    });

    let config =
        MtlsClientConfig::builder(ca.svid(FRONTEND, Duration::from_secs(3600)), ca.bundles())
            .authorizer(authorize::exact(id(BACKEND)))
            .alpn_protocols(vec![b"http/1.1".to_vec()])
            .build()
            .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(MtlsConnector::new(config));
    let get = |addr: std::net::SocketAddr, path: &'static str| {
        let client = client.clone();
        async move {
            let uri: http::Uri = format!("https://{addr}{path}").parse().unwrap();
            let response = client.get(uri).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            format!("{status} {}", String::from_utf8_lossy(&body).trim())
        }
    };
    assert_eq!(get(good_addr, "/whoami").await, "200 hello");
    let denied = get(good_addr, "/admin").await;
    assert!(denied.starts_with("403 "), "{denied}");
    quoted(&format!("**`{denied}`**"));
    let unauthenticated = get(forgot_addr, "/whoami").await;
    assert!(unauthenticated.starts_with("401 "), "{unauthenticated}");
    quoted(&format!("**`{unauthenticated}`**"));
    quoted(&format!("silent `{unauthenticated}`"));
    quoted("into_make_service_with_connect_info::<MtlsConnectInfo>()");
    // The one-time log line that names the fix.
    let logged = logs.text();
    let start = logged
        .find("mtls: a request carries no connection information")
        .unwrap_or_else(|| panic!("no missing-connect-info log in {logged:?}"));
    let line = &logged[start..];
    let end = line.find("(401 / UNAUTHENTICATED).").expect("the symptom") + 24;
    quoted(&line[..end]);
    assert!(
        line.contains("mtls_tower::serve(listener, router)"),
        "{line}"
    );
    quoted("mtls_tower::serve(listener, router)");
}

/// A `tracing` writer that keeps what it is given.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn trust_domain_and_bundle_mistakes_are_on_the_page() {
    let e = TrustDomain::new("spiffe://example.org").unwrap_err();
    quoted(&e.to_string());

    let ca = Ca::new("example.org");
    let leaf = ca.svid(FRONTEND, Duration::from_secs(3600)).chain_pem();
    let e = mtls_core::X509Bundle::from_pem(ca.td.clone(), leaf.as_bytes()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("may not be a trust anchor"), "{text}");
    quoted("`may not be a trust anchor`");
}
