//! Run with: `eval "$(examples/interop/build.sh)"; cargo test -p examples --test interop_spire`
//!
//! Real SPIRE v1.13.3 as the identity provider of our crates: each test
//! starts its own `spire-server` (SQLite in a temporary directory,
//! `join_token` node attestation) and `spire-agent` (unix workload
//! attestor; registration entries select workloads by executable path), on
//! loopback. The backend is the `spire-app` example (axum, `SpireSource`,
//! a route policy); the client is this test process (`SpireSource`, our
//! client config); go-spiffe's peer program takes its identity from the
//! same agent. Without the binaries these tests print `skipped:`; under
//! `MTLS_REQUIRE_INTEROP=1` they fail (see `common/interop.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::interop::{peers, GO_SPIFFE_PEER, SPIRE_AGENT, SPIRE_SERVER};
use common::spire::{path_selector, ServerOptions, SpireAgent, SpireServer, SPIRE_READY};
use common::{run_with, Server};
use mtls_core::{
    authorize, Authorizer, MtlsClientConfig, MtlsServerConfig, SourceState, SpireSource,
    WithdrawalPolicy,
};
use mtls_testing::{eventually, id};
use mtls_tower::{MtlsConnectInfo, MtlsListener, PeerId};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SPIRE_APP: &str = env!("CARGO_BIN_EXE_spire-app");
const BACKEND: &str = "spiffe://example.org/backend";
const FRONTEND: &str = "spiffe://example.org/frontend";
const OPS: &str = "spiffe://example.org/ops";
/// A bound on one request, handshake included.
const REQUEST: Duration = Duration::from_secs(10);

/// One trust domain's SPIRE: a server and an agent in a temporary directory.
struct Deployment {
    go_peer: PathBuf,
    server: SpireServer,
    agent: SpireAgent,
    _dir: tempfile::TempDir,
}

fn deployment(test: &str) -> Option<Deployment> {
    let [server_exe, agent_exe, go_peer] =
        peers(test, [SPIRE_SERVER, SPIRE_AGENT, GO_SPIFFE_PEER])?;
    let dir = tempfile::tempdir().unwrap();
    let server = SpireServer::start(
        &server_exe,
        dir.path(),
        "example.org",
        &ServerOptions::default(),
    );
    let agent = SpireAgent::start(&agent_exe, dir.path(), &server);
    Some(Deployment {
        go_peer,
        server,
        agent,
        _dir: dir,
    })
}

/// This test program: the frontend workload.
fn this_exe() -> PathBuf {
    std::env::current_exe().unwrap()
}

impl Deployment {
    /// Registers the backend (`spire-app`), the frontend (this process) and
    /// ops (the go-spiffe peer), each with `extra` entry flags.
    fn register_all(&self, extra: &[&str]) -> [String; 3] {
        [
            self.server
                .register(BACKEND, &path_selector(Path::new(SPIRE_APP)), extra),
            self.server
                .register(FRONTEND, &path_selector(&this_exe()), extra),
            self.server
                .register(OPS, &path_selector(&self.go_peer), extra),
        ]
    }

    /// `spire-app --admin OPS` on this deployment's agent.
    fn backend(&self) -> Server {
        Server::spawn_within(
            Command::new(SPIRE_APP)
                .args(["--listen", "127.0.0.1:0", "--admin", OPS])
                .env("SPIFFE_ENDPOINT_SOCKET", self.agent.endpoint()),
            SPIRE_READY,
        )
    }

    /// Registers every workload with `extra` entry flags, then starts the
    /// backend and connects the frontend: the backend, the frontend's
    /// source and its client config for the backend.
    async fn frontend_to_backend(&self, extra: &[&str]) -> (Server, SpireSource, MtlsClientConfig) {
        self.register_all(extra);
        let backend = self.backend();
        let frontend = self.source(WithdrawalPolicy::default()).await;
        let config = client(&frontend, authorize::exact(id(BACKEND)));
        (backend, frontend, config)
    }

    /// A `SpireSource` of this process on the agent.
    async fn source(&self, policy: WithdrawalPolicy) -> SpireSource {
        SpireSource::builder()
            .endpoint(self.agent.endpoint())
            .initial_timeout(Some(SPIRE_READY))
            .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(1))
            .on_withdrawal(policy)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("SpireSource: {e}; agent log:\n{}", self.agent.log()))
    }

    /// The go-spiffe peer with `args`, its identity from the agent.
    fn go(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.go_peer);
        command
            .args(args)
            .args(["--workload-api", &self.agent.endpoint()]);
        command
    }
}

/// Our client config on `source`, expecting a server `authorizer` allows.
fn client(source: &SpireSource, authorizer: impl Authorizer + 'static) -> MtlsClientConfig {
    MtlsClientConfig::builder(source.clone(), source.clone())
        .authorizer(authorizer)
        .build()
        .unwrap()
}

/// What one request saw: status, body, and the serial of the server's SVID.
#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
    server_serial: String,
}

/// One request on a new connection (a new handshake): `GET path` over
/// HTTP/1.1.
async fn get(config: &MtlsClientConfig, addr: SocketAddr, path: &str) -> Result<Response, String> {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(config.rustls_config());
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first().cloned())
            .ok_or("no server certificate")?;
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).map_err(|e| e.to_string())?;
        let server_serial = cert.raw_serial_as_string();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        tls.read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line in {head:?}"))?;
        Ok(Response {
            status,
            body: body.to_owned(),
            server_serial,
        })
    };
    tokio::time::timeout(REQUEST, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {REQUEST:?}")))
}

/// `GET /whoami` with `config`, every 200 ms while `more()` holds, each
/// answered 200: how many requests were made.
async fn requests_while(
    config: &MtlsClientConfig,
    addr: SocketAddr,
    mut more: impl FnMut() -> bool,
) -> u32 {
    let mut requests = 0;
    while more() {
        let r = get(config, addr, "/whoami").await.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        requests += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    requests
}

/// The serial of the SVID a source serves now.
fn serial_of(source: &SpireSource) -> String {
    let svid = source.svid().expect("an SVID");
    let (_, cert) = x509_parser::parse_x509_certificate(svid.leaf().as_ref()).unwrap();
    cert.raw_serial_as_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn spire_end_to_end_backend_and_clients_on_spire() {
    let Some(d) = deployment("spire_end_to_end_backend_and_clients_on_spire") else {
        return;
    };
    let (backend, frontend, config) = d.frontend_to_backend(&[]).await;
    assert_eq!(frontend.svid().unwrap().spiffe_id(), &id(FRONTEND));
    assert!(frontend.bundles().contains("example.org"));

    // Our client on SPIRE → our backend on SPIRE: the handler sees the
    // frontend's ID; the route policy allows /whoami and denies /admin.
    let r = get(&config, backend.addr, "/whoami").await.unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "spiffe://example.org/frontend\n")
    );
    let r = get(&config, backend.addr, "/admin").await.unwrap();
    assert_eq!(r.status, 403, "{r:?}");

    // We refuse a backend that is not the one we expect.
    let wrong = client(
        &frontend,
        authorize::exact(id("spiffe://example.org/other")),
    );
    let err = get(&wrong, backend.addr, "/whoami").await.unwrap_err();
    assert!(err.contains("handshake"), "{err}");

    // go-spiffe on the same agent (as ops) → our backend: /admin is allowed.
    let url = format!("https://127.0.0.1:{}/admin", backend.port());
    run_with(&mut d.go(&[
        "client",
        "--url",
        &url,
        "--authorize",
        &format!("id:{BACKEND}"),
    ]))
    .assert_stdout("welcome, admin\n");
    // ...and go-spiffe refuses our backend when it wants someone else.
    let out = run_with(&mut d.go(&[
        "client",
        "--url",
        &url,
        "--authorize",
        "id:spiffe://example.org/other",
    ]));
    out.assert_exit(1);
    assert!(out.stderr.contains("unexpected ID"), "{out:#?}");

    // Our client → go-spiffe's server, both on SPIRE.
    let mut go_server = Server::spawn_within(
        &mut d.go(&[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--authorize",
            &format!("id:{FRONTEND}"),
        ]),
        SPIRE_READY,
    );
    let to_go = client(&frontend, authorize::exact(id(OPS)));
    let r = get(&to_go, go_server.addr, "/").await.unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "hello spiffe://example.org/frontend\n")
    );
    // ...and we refuse it when we expect the backend instead.
    assert!(get(&config, go_server.addr, "/").await.is_err());
    // A go-spiffe server that wants someone else refuses us.
    let picky = Server::spawn_within(
        &mut d.go(&[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--authorize",
            &format!("id:{BACKEND}"),
        ]),
        SPIRE_READY,
    );
    assert!(get(&to_go, picky.addr, "/").await.is_err());
    // go-spiffe saw our refusal as the alert we sent.
    go_server.assert_logged(&["remote error: tls: access denied"]);
    drop(d);
}

#[tokio::test(flavor = "multi_thread")]
async fn spire_rotations_cause_no_failed_request() {
    let Some(d) = deployment("spire_rotations_cause_no_failed_request") else {
        return;
    };
    // A short SVID lifetime: the agent renews at about half of it.
    let (backend, frontend, config) = d.frontend_to_backend(&["-x509SVIDTTL", "20"]).await;

    let mut server_serials = BTreeSet::new();
    let mut own_serials = BTreeSet::new();
    let mut requests = 0u32;
    let start = Instant::now();
    // At least three rotations on each side: four serials each.
    while server_serials.len() < 4 || own_serials.len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "not three rotations within 150 s: server {server_serials:?}, own {own_serials:?}; agent log:\n{}",
            d.agent.log()
        );
        own_serials.insert(serial_of(&frontend));
        let r = get(&config, backend.addr, "/whoami")
            .await
            .unwrap_or_else(|e| panic!("request {requests} failed: {e}"));
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "spiffe://example.org/frontend\n")
        );
        server_serials.insert(r.server_serial);
        requests += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(frontend.generation() >= 3, "{:?}", frontend.status());
    println!(
        "{requests} requests, none failed, across {} server and {} client SVIDs",
        server_serials.len(),
        own_serials.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_outage_keeps_the_last_good_svid_and_recovers() {
    let Some(mut d) = deployment("agent_outage_keeps_the_last_good_svid_and_recovers") else {
        return;
    };
    let (backend, frontend, config) = d.frontend_to_backend(&["-x509SVIDTTL", "30"]).await;
    get(&config, backend.addr, "/whoami").await.unwrap();
    let before = serial_of(&frontend);
    let errors_before = frontend.workload_api_errors();

    // The agent goes away: both sides keep serving their last good SVIDs.
    d.agent.stop();
    let outage = Instant::now();
    requests_while(&config, backend.addr, || {
        outage.elapsed() < Duration::from_secs(5)
    })
    .await;
    assert!(
        frontend.workload_api_errors() > errors_before,
        "the source noticed the outage"
    );
    assert_eq!(
        serial_of(&frontend),
        before,
        "the last good SVID keeps serving"
    );

    // The agent comes back: the source reconnects and takes the next SVID.
    d.agent.restart();
    assert!(
        eventually(Duration::from_secs(60), || serial_of(&frontend) != before).await,
        "no new SVID after the agent came back; agent log:\n{}",
        d.agent.log()
    );
    assert_eq!(frontend.status().state, SourceState::Ready);
    let r = get(&config, backend.addr, "/whoami").await.unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_entry_is_withdrawn_as_each_policy_says() {
    let Some(d) = deployment("a_deleted_entry_is_withdrawn_as_each_policy_says") else {
        return;
    };
    let [_, frontend_entry, _] = d.register_all(&[]);
    let backend = d.backend();
    let keep = d.source(WithdrawalPolicy::KeepServing).await;
    let closed = d.source(WithdrawalPolicy::FailClosed).await;
    let keep_config = client(&keep, authorize::exact(id(BACKEND)));
    let closed_config = client(&closed, authorize::exact(id(BACKEND)));
    get(&keep_config, backend.addr, "/whoami").await.unwrap();
    get(&closed_config, backend.addr, "/whoami").await.unwrap();

    d.server.unregister(&frontend_entry);
    let withdrawn = eventually(Duration::from_secs(60), || {
        keep.status().state == SourceState::Withdrawn
            && closed.status().state == SourceState::Withdrawn
    })
    .await;
    assert!(
        withdrawn,
        "not withdrawn within 60 s: {:?} / {:?}; agent log:\n{}",
        keep.status(),
        closed.status(),
        d.agent.log()
    );
    assert!(keep.withdrawal().is_some());
    // KeepServing: the last good SVID still serves; FailClosed: nothing does.
    assert!(keep.svid().is_some());
    let r = get(&keep_config, backend.addr, "/whoami").await.unwrap();
    assert_eq!(r.status, 200);
    assert!(closed.svid().is_none());
    let err = get(&closed_config, backend.addr, "/whoami")
        .await
        .unwrap_err();
    assert!(err.contains("handshake"), "{err}");

    // Registered again: both serve again.
    d.server
        .register(FRONTEND, &path_selector(&this_exe()), &[]);
    let back = eventually(Duration::from_secs(60), || {
        keep.status().state == SourceState::Ready && closed.svid().is_some()
    })
    .await;
    assert!(back, "not back within 60 s: {:?}", closed.status());
    get(&closed_config, backend.addr, "/whoami").await.unwrap();
    get(&keep_config, backend.addr, "/whoami").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_spire_ca_causes_no_failed_request() {
    let Some(d) = deployment("a_rotated_spire_ca_causes_no_failed_request") else {
        return;
    };
    let (backend, frontend, config) = d.frontend_to_backend(&["-x509SVIDTTL", "20"]).await;
    let issuer = |source: &SpireSource| {
        let svid = source.svid().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(svid.leaf().as_ref()).unwrap();
        // The key that signed it (SPIRE's CAs may share a subject name).
        cert.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| format!("{:x}", k))
                }
                _ => None,
            })
            .expect("an authority key identifier")
    };
    let old_issuer = issuer(&frontend);
    let authorities = |source: &SpireSource| {
        source
            .bundles()
            .get("example.org")
            .map_or(0, |b| b.authorities().len())
    };
    assert_eq!(authorities(&frontend), 1);

    // Prepare the next CA: the bundle grows to two authorities first.
    let prepared = d
        .server
        .must(&["localauthority", "x509", "prepare"], &["-output", "json"]);
    let authority_id = json_field(&prepared, "authority_id")
        .unwrap_or_else(|| panic!("no authority_id in {prepared}"));
    let start = Instant::now();
    let mut requests = requests_while(&config, backend.addr, || {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "bundle did not grow"
        );
        authorities(&frontend) < 2
    })
    .await;
    // Activate it: new SVIDs come from the new CA; no request fails.
    d.server.must(
        &["localauthority", "x509", "activate"],
        &["-authorityID", &authority_id],
    );
    let start = Instant::now();
    requests += requests_while(&config, backend.addr, || {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no SVID from the new CA within 90 s; server log:\n{}",
            d.server.log()
        );
        issuer(&frontend) == old_issuer
    })
    .await;
    // Until the backend also moved, and a little after.
    let start = Instant::now();
    requests += requests_while(&config, backend.addr, || {
        start.elapsed() < Duration::from_secs(25)
    })
    .await;
    assert!(requests > 10);
}

/// The string value of `"field"` anywhere in a JSON document.
fn json_field(text: &str, field: &str) -> Option<String> {
    fn find(value: &serde_json::Value, field: &str) -> Option<String> {
        match value {
            serde_json::Value::Object(map) => map
                .get(field)
                .and_then(|v| v.as_str().map(str::to_owned))
                .or_else(|| map.values().find_map(|v| find(v, field))),
            serde_json::Value::Array(items) => items.iter().find_map(|v| find(v, field)),
            _ => None,
        }
    }
    find(&serde_json::from_str(text).ok()?, field)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_federated_spire_servers_call_each_other_through_our_crates() {
    let test = "two_federated_spire_servers_call_each_other_through_our_crates";
    let Some([server_exe, agent_exe]) = peers(test, [SPIRE_SERVER, SPIRE_AGENT]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Each server exposes its bundle endpoint (https_spiffe) and federates
    // with the other's.
    let (example_port, partner_port) = (common::spire::free_port(), common::spire::free_port());
    let options = |own: u16, td: &str, theirs: u16| ServerOptions {
        bundle_endpoint_port: Some(own),
        federates_with: vec![(td.to_owned(), theirs)],
        ..ServerOptions::default()
    };
    let example = SpireServer::start(
        &server_exe,
        dir.path(),
        "example.org",
        &options(example_port, "partner.test", partner_port),
    );
    let partner = SpireServer::start(
        &server_exe,
        dir.path(),
        "partner.test",
        &options(partner_port, "example.org", example_port),
    );
    // https_spiffe needs each side's bundle once, to authenticate the
    // other's endpoint; SPIRE refreshes it from the endpoint afterwards.
    example.set_federated_bundle("partner.test", &partner.spiffe_bundle(), dir.path());
    partner.set_federated_bundle("example.org", &example.spiffe_bundle(), dir.path());
    let example_agent = SpireAgent::start(&agent_exe, dir.path(), &example);
    let partner_agent = SpireAgent::start(&agent_exe, dir.path(), &partner);

    // example.org: the backend (spire-app) and a caller (this process);
    // partner.test: a frontend (this process, on the other agent).
    let federated = |td: &'static str| ["-federatesWith", td];
    example.register(
        BACKEND,
        &path_selector(Path::new(SPIRE_APP)),
        &federated("spiffe://partner.test"),
    );
    example.register(
        "spiffe://example.org/caller",
        &path_selector(&this_exe()),
        &federated("spiffe://partner.test"),
    );
    partner.register(
        "spiffe://partner.test/frontend",
        &path_selector(&this_exe()),
        &federated("spiffe://example.org"),
    );
    let connect = |agent: &SpireAgent| {
        SpireSource::builder()
            .endpoint(agent.endpoint())
            .initial_timeout(Some(SPIRE_READY))
            .connect()
    };
    let partner_source = connect(&partner_agent).await.unwrap();
    let example_source = connect(&example_agent).await.unwrap();
    assert_eq!(
        partner_source.svid().unwrap().spiffe_id(),
        &id("spiffe://partner.test/frontend")
    );
    assert_eq!(
        example_source.svid().unwrap().spiffe_id(),
        &id("spiffe://example.org/caller")
    );
    // Federated bundles from the agents, never merged into one trust domain.
    let wait_for_bundle = |source: &SpireSource, td: &str| {
        let start = Instant::now();
        while !source.bundles().contains(td) {
            assert!(start.elapsed() < SPIRE_READY, "no bundle of {td}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for_bundle(&partner_source, "example.org");
    wait_for_bundle(&example_source, "partner.test");
    assert_eq!(partner_source.bundles().len(), 2);

    // partner.test → example.org's backend, authorized by trust domain.
    let backend = Server::spawn_within(
        Command::new(SPIRE_APP)
            .args(["--listen", "127.0.0.1:0"])
            .env("SPIFFE_ENDPOINT_SOCKET", example_agent.endpoint()),
        SPIRE_READY,
    );
    let to_example = client(
        &partner_source,
        authorize::member_of("example.org".parse().unwrap()),
    );
    let r = get(&to_example, backend.addr, "/whoami").await.unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "spiffe://partner.test/frontend\n")
    );
    // The same client refuses example.org when it only trusts its own members.
    let own_only = client(
        &partner_source,
        authorize::member_of("partner.test".parse().unwrap()),
    );
    assert!(get(&own_only, backend.addr, "/whoami").await.is_err());

    // example.org → a partner.test server in this process.
    let server = MtlsServerConfig::builder(partner_source.clone(), partner_source.clone())
        .authorizer(authorize::member_of("example.org".parse().unwrap()))
        .build()
        .unwrap();
    let listener = MtlsListener::bind("127.0.0.1:0", server).await.unwrap();
    let addr = listener.local_addr();
    let app = axum::Router::new().route(
        "/whoami",
        axum::routing::get(|PeerId(id): PeerId| async move { format!("{id}\n") }),
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
        )
        .await
    });
    let to_partner = client(
        &example_source,
        authorize::member_of("partner.test".parse().unwrap()),
    );
    let r = get(&to_partner, addr, "/whoami").await.unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "spiffe://example.org/caller\n")
    );
    // A member of partner.test is not allowed in by that server.
    assert!(get(&to_example, addr, "/whoami").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_svids_minted_by_spire_are_validated_by_ours() {
    use mtls_core::{JwtBundle, JwtBundleSet, JwtSvidError, JwtSvidValidator, TrustDomain};

    let Some(spire) = deployment("jwt_svids_minted_by_spire_are_validated_by_ours") else {
        return;
    };
    let audience = "spiffe://example.org/backend";
    let token = spire.server.jwt_mint(FRONTEND, audience);
    // SPIRE's bundle in the SPIFFE format: X.509 and JWT authorities.
    let td = TrustDomain::new("example.org").unwrap();
    let bundle = JwtBundle::from_jwks(td, spire.server.spiffe_bundle().as_bytes()).unwrap();
    assert!(!bundle.is_empty(), "SPIRE publishes its JWT keys");
    let bundles = JwtBundleSet::from(bundle);

    let svid = JwtSvidValidator::new(audience)
        .validate(&token, &bundles)
        .unwrap_or_else(|e| panic!("SPIRE's token refused: {e}\n{token}"));
    assert_eq!(svid.spiffe_id().as_str(), FRONTEND);
    assert!(svid.audience().iter().any(|a| a == audience));

    // And what must be refused is.
    assert!(matches!(
        JwtSvidValidator::new("spiffe://example.org/other").validate(&token, &bundles),
        Err(JwtSvidError::AudienceMismatch { .. })
    ));
    assert!(JwtSvidValidator::new(audience)
        .validate(&token, &JwtBundleSet::new())
        .is_err());
    // go-spiffe, with the JWT bundles the SPIRE agent serves it, agrees.
    spire
        .server
        .register(OPS, &path_selector(&spire.go_peer), &[]);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token.jwt");
    std::fs::write(&token_file, &token).unwrap();
    let started = Instant::now();
    loop {
        let out = run_with(&mut spire.go(&[
            "jwt-validate",
            "--token-file",
            token_file.to_str().unwrap(),
            "--audience",
            audience,
        ]));
        if out.status.success() {
            assert!(out.stdout.contains(FRONTEND), "{out:?}");
            break;
        }
        assert!(
            started.elapsed() < SPIRE_READY,
            "go-spiffe refused: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spire_and_our_bundle_endpoints_federate_both_ways() {
    use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
    use mtls_core::federation::{
        fetch, serve, BundleEndpoint, EndpointConfig, EndpointProfile, EndpointUrl, ServerProfile,
    };
    use mtls_core::{BundleSet, SharedBundles, SpiffeBundle, SpiffeId, TrustDomain, X509Bundle};

    let test = "spire_and_our_bundle_endpoints_federate_both_ways";
    let Some([server_exe]) = peers(test, [SPIRE_SERVER]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let partner = TrustDomain::new("partner.test").unwrap();
    let example = TrustDomain::new("example.org").unwrap();

    // partner.test: our CA and our bundle endpoint (https_spiffe), with the
    // SPIFFE ID SPIRE expects of a federated server's endpoint.
    let ca =
        CertificateAuthority::self_signed_for_development(partner.clone(), &CaOptions::default())
            .unwrap();
    let bundles = SharedBundles::new(BundleSet::from(ca.bundle().unwrap()));
    let endpoint_svid = ca
        .issue(&SvidRequest::new(
            SpiffeId::new("spiffe://partner.test/spire/server").unwrap(),
        ))
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let our_port = listener.local_addr().unwrap().port();
    let jwt_keys = ca.jwt_authorities().unwrap();
    let _ours = serve(
        listener,
        BundleEndpoint::new(partner.clone(), bundles.clone())
            .refresh_hint(Duration::from_secs(1))
            .jwt_authorities(move || jwt_keys.clone()),
        ServerProfile::https_spiffe(endpoint_svid),
    )
    .unwrap();

    // example.org: SPIRE, with its own endpoint, federating with ours.
    let spire = SpireServer::start(
        &server_exe,
        dir.path(),
        "example.org",
        &ServerOptions {
            federates_with: vec![("partner.test".into(), our_port)],
            ..ServerOptions::default()
        },
    );

    // Our client fetches SPIRE's bundle from SPIRE's endpoint, which
    // presents spiffe://example.org/spire/server, bootstrapped with the
    // bundle an operator copied once.
    let spire_bundle =
        SpiffeBundle::from_jwks(example.clone(), spire.spiffe_bundle().as_bytes()).unwrap();
    let config = EndpointConfig::new(
        EndpointUrl::new(&format!("https://127.0.0.1:{}", spire.bundle_endpoint_port)).unwrap(),
        example.clone(),
        EndpointProfile::https_spiffe(
            SpiffeId::new("spiffe://example.org/spire/server").unwrap(),
            spire_bundle.x509().clone(),
        ),
    )
    .unwrap();
    let started = Instant::now();
    let fetched = loop {
        match fetch(&config).await {
            Ok(bundle) => break bundle,
            Err(e) => {
                assert!(
                    started.elapsed() < SPIRE_READY,
                    "fetching SPIRE's bundle: {e}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };
    assert_eq!(
        fetched.x509().authorities(),
        spire_bundle.x509().authorities()
    );
    assert_eq!(fetched.jwt_authorities(), spire_bundle.jwt_authorities());
    assert!(!fetched.jwt_authorities().is_empty());

    // SPIRE fetches ours: bootstrapped once, then from our endpoint; a new
    // root we publish reaches it without touching SPIRE's configuration.
    let ours_json = SpiffeBundle::from_parts(ca.bundle().unwrap(), ca.jwt_authorities().unwrap())
        .unwrap()
        .to_jwks()
        .unwrap();
    spire.set_federated_bundle("partner.test", &ours_json, dir.path());
    let next =
        CertificateAuthority::self_signed_for_development(partner.clone(), &CaOptions::default())
            .unwrap();
    let mut rotated =
        X509Bundle::from_authorities(partner.clone(), ca.trust_anchors().iter().cloned()).unwrap();
    rotated.add_authority(next.certificate().clone()).unwrap();
    bundles.set(BundleSet::from(rotated));
    let next_root = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(next.certificate())
    };
    let started = Instant::now();
    loop {
        // Ask SPIRE to refresh now rather than wait for the next poll.
        let _ = spire.cli_with(
            &["federation", "refresh"],
            &["-id", "spiffe://partner.test"],
        );
        let shown = spire.cli_with(
            &["bundle", "list"],
            &["-id", "spiffe://partner.test", "-format", "spiffe"],
        );
        if shown.stdout.contains(&next_root) {
            break;
        }
        assert!(
            started.elapsed() < SPIRE_READY,
            "SPIRE never took our new root: {shown:?}\nserver log:\n{}",
            spire.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_svids_from_the_agent_validate_with_ours_and_with_go_spiffe() {
    use mtls_core::{JwtBundleSource, JwtSvidSource, JwtSvidValidator};

    let Some(spire) = deployment("jwt_svids_from_the_agent_validate_with_ours_and_with_go_spiffe")
    else {
        return;
    };
    spire.register_all(&[]);
    // This process is the frontend: its JWT-SVIDs (FetchJWTSVID) and the
    // JWT bundles (FetchJWTBundles) from the agent, through SpireSource.
    let source = SpireSource::builder()
        .endpoint(spire.agent.endpoint())
        .initial_timeout(Some(SPIRE_READY))
        .jwt_bundles(true)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("SpireSource: {e}; agent log:\n{}", spire.agent.log()));
    let audience = vec!["spiffe://example.org/backend".to_owned()];
    let token = source
        .fetch_jwt_svid(&audience)
        .await
        .unwrap_or_else(|e| panic!("FetchJWTSVID: {e}; agent log:\n{}", spire.agent.log()));
    assert_eq!(token.spiffe_id().as_str(), FRONTEND);

    // Ours validates it against the agent's JWT bundles...
    let bundles = source.current_jwt_bundles();
    let svid = JwtSvidValidator::new(&audience[0])
        .validate(token.token(), &bundles)
        .unwrap_or_else(|e| panic!("the agent's token refused: {e}"));
    assert_eq!(svid.spiffe_id().as_str(), FRONTEND);
    assert!(JwtSvidValidator::new("spiffe://example.org/other")
        .validate(token.token(), &bundles)
        .is_err());

    // ...and go-spiffe (jwtsvid.ParseAndValidate, its bundles from the same
    // agent) agrees.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token.jwt");
    std::fs::write(&token_file, token.token()).unwrap();
    let out = run_with(&mut spire.go(&[
        "jwt-validate",
        "--token-file",
        token_file.to_str().unwrap(),
        "--audience",
        &audience[0],
    ]));
    assert!(
        out.status.success(),
        "go-spiffe refused the agent's token: {out:?}"
    );
    assert!(out.stdout.contains(FRONTEND), "{out:?}");
}
