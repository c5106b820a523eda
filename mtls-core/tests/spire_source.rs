//! `SpireSource` against a real Workload API server (the
//! `mtls-workload-api-testing` crate, tonic on a unix socket), speaking the
//! protocol of a SPIRE agent. Run with
//! `cargo test -p mtls-core --features spire --test spire_source`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mtls_core::rustls::pki_types::{CertificateDer, ServerName};
use mtls_core::{
    authorize, BundleSource, MtlsServerConfig, SpireSource, SpireSourceBuilder, SpireSourceError,
    SvidError, SvidSource, TrustDomain, VerifyError, WithdrawalPolicy,
};
use mtls_testing::{bounded, eventually, id, TestCa, TestLeaf};
use mtls_workload_api_testing::{SvidEntry, WorkloadApiServer};
use rcgen::SanType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const TD: &str = "example.org";
const SERVER_ID: &str = "spiffe://example.org/backend";
const CLIENT_ID: &str = "spiffe://example.org/frontend";
const OTHER_ID: &str = "spiffe://example.org/batch";

fn entry(spiffe_id: &str, leaf: &TestLeaf) -> SvidEntry {
    (
        id(spiffe_id),
        leaf.chain.clone(),
        leaf.key.secret_der().to_vec(),
    )
}

/// Serves `leaf` as the one SVID, with `roots` as the bundle of its trust
/// domain and no federation.
fn push(agent: &WorkloadApiServer, leaf: &TestLeaf, roots: &[&TestCa]) {
    agent.set_x509(
        vec![entry(SERVER_ID, leaf)],
        roots.iter().map(|ca| ca.root.clone()).collect(),
        Vec::new(),
    );
}

/// Starts an agent serving `leaf` with `roots` as its bundle (see [`push`]).
async fn agent_serving(leaf: &TestLeaf, roots: &[&TestCa]) -> WorkloadApiServer {
    let agent = WorkloadApiServer::start().await.unwrap();
    push(&agent, leaf, roots);
    agent
}

/// A CA, an SVID it issued, an agent serving that SVID with the CA as the
/// bundle, and a source connected to the agent.
async fn serving() -> (TestCa, TestLeaf, WorkloadApiServer, SpireSource) {
    let ca = TestCa::root(TD);
    let leaf = ca.leaf(SERVER_ID);
    let agent = agent_serving(&leaf, &[&ca]).await;
    let spire = connect(&agent).await;
    (ca, leaf, agent, spire)
}

/// A builder for `agent` that waits `initial_timeout` for the first SVID.
fn builder(agent: &WorkloadApiServer, initial_timeout: Duration) -> SpireSourceBuilder {
    SpireSource::builder()
        .endpoint(agent.endpoint())
        .initial_timeout(Some(initial_timeout))
}

async fn connect(agent: &WorkloadApiServer) -> SpireSource {
    builder(agent, Duration::from_secs(10))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect()
        .await
        .unwrap()
}

/// Asserts that `condition` holds within five seconds.
async fn within_5s(condition: impl FnMut() -> bool) {
    assert!(eventually(Duration::from_secs(5), condition).await);
}

/// Waits (at most a second) for the next generation.
async fn next_generation(rx: &mut tokio::sync::watch::Receiver<u64>) -> Duration {
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(1), rx.changed())
        .await
        .expect("no new SVID within one second")
        .unwrap();
    start.elapsed()
}

fn leaf_of(spire: &SpireSource) -> CertificateDer<'static> {
    spire.current_svid().unwrap().leaf().clone()
}

#[tokio::test]
async fn the_first_svid_and_bundle_are_served() {
    bounded(async {
        let (ca, leaf, agent, spire) = serving().await;
        let svid = spire.current_svid().unwrap();
        assert_eq!(svid.spiffe_id(), &id(SERVER_ID));
        assert_eq!(svid.chain(), &leaf.chain[..]);
        assert_eq!(svid.private_key().secret_der(), leaf.key.secret_der());
        let bundles = spire.current_bundles();
        assert_eq!(bundles.len(), 1);
        assert_eq!(
            bundles.get(TD).unwrap().authorities(),
            std::slice::from_ref(&ca.root)
        );
        assert_eq!(*spire.changes().borrow(), 0);
        assert_eq!(spire.status().failures, 0);
        assert!(spire.status().last_error.is_none());
        assert!(spire.withdrawal().is_none());
        assert_eq!(spire.endpoint(), agent.endpoint());
    })
    .await;
}

#[tokio::test]
async fn a_rotated_svid_serves_within_a_second() {
    bounded(async {
        let (ca, _, agent, spire) = serving().await;
        let mut generations = spire.changes();

        for round in 1..=3 {
            let rotated = ca.leaf(SERVER_ID);
            push(&agent, &rotated, &[&ca]);
            let took = next_generation(&mut generations).await;
            assert!(took < Duration::from_secs(1), "took {took:?}");
            assert_eq!(leaf_of(&spire), rotated.chain[0]);
            assert_eq!(*generations.borrow(), round);
        }
        assert_eq!(spire.status().failures, 0);
    })
    .await;
}

#[tokio::test]
async fn a_bundle_of_two_cas_then_one_removed() {
    bounded(async {
        let old_ca = TestCa::root(TD);
        let new_ca = TestCa::root(TD);
        let agent = agent_serving(&old_ca.leaf(SERVER_ID), &[&old_ca, &new_ca]).await;
        let spire = connect(&agent).await;
        let mut generations = spire.changes();

        let bundle = spire.bundles().get(TD).unwrap().clone();
        assert_eq!(bundle.len(), 2);
        assert!(bundle.contains(&old_ca.root) && bundle.contains(&new_ca.root));

        // The SVID moves to the new CA, then the old CA leaves the bundle.
        let moved = new_ca.leaf(SERVER_ID);
        push(&agent, &moved, &[&old_ca, &new_ca]);
        next_generation(&mut generations).await;
        assert_eq!(leaf_of(&spire), moved.chain[0]);
        assert_eq!(spire.bundles().get(TD).unwrap().len(), 2);

        push(&agent, &moved, &[&new_ca]);
        next_generation(&mut generations).await;
        let bundle = spire.bundles().get(TD).unwrap().clone();
        assert_eq!(bundle.authorities(), std::slice::from_ref(&new_ca.root));
        assert!(!bundle.contains(&old_ca.root));
        assert_eq!(spire.status().failures, 0);
    })
    .await;
}

#[tokio::test]
async fn removing_the_ca_of_the_serving_svid_is_refused() {
    bounded(async {
        let old_ca = TestCa::root(TD);
        let new_ca = TestCa::root(TD);
        let leaf = old_ca.leaf(SERVER_ID);
        let agent = agent_serving(&leaf, &[&old_ca, &new_ca]).await;
        let spire = connect(&agent).await;

        // An SVID that its own bundle no longer trusts: refused whole.
        push(&agent, &leaf, &[&new_ca]);
        within_5s(|| spire.status().failures == 1).await;
        assert!(
            matches!(
                spire.status().last_error,
                Some(SpireSourceError::Unverified {
                    source: VerifyError::UntrustedIssuer { .. },
                    ..
                })
            ),
            "{:?}",
            spire.status().last_error
        );
        assert_eq!(leaf_of(&spire), leaf.chain[0]);
        assert_eq!(spire.bundles().get(TD).unwrap().len(), 2);
        assert_eq!(*spire.changes().borrow(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_federated_bundle_is_added_then_removed() {
    bounded(async {
        let (ca, leaf, agent, spire) = serving().await;
        let partner = TestCa::root("partner.org");
        let mut generations = spire.changes();
        assert!(!spire.bundles().contains("partner.org"));

        agent.set_x509(
            vec![entry(SERVER_ID, &leaf)],
            vec![ca.root.clone()],
            vec![(partner.trust_domain.clone(), vec![partner.root.clone()])],
        );
        next_generation(&mut generations).await;
        let bundles = spire.bundles();
        assert_eq!(bundles.len(), 2);
        // One bundle per trust domain, never merged.
        assert_eq!(
            bundles.get(TD).unwrap().authorities(),
            std::slice::from_ref(&ca.root)
        );
        assert_eq!(
            bundles.get("partner.org").unwrap().authorities(),
            std::slice::from_ref(&partner.root)
        );

        push(&agent, &leaf, &[&ca]);
        next_generation(&mut generations).await;
        let bundles = spire.bundles();
        assert_eq!(bundles.len(), 1);
        assert!(!bundles.contains("partner.org"));
        assert_eq!(
            bundles.trust_domains().cloned().collect::<Vec<_>>(),
            [TrustDomain::new(TD).unwrap()]
        );
    })
    .await;
}

#[tokio::test]
async fn an_svid_whose_key_does_not_match_is_refused() {
    bounded(async {
        let (ca, good, agent, spire) = serving().await;
        let mut generations = spire.changes();

        // A new certificate with the private key of another one: the
        // `spiffe` crate passes it on, our check refuses it.
        let new = ca.leaf(SERVER_ID);
        let other = ca.leaf(SERVER_ID);
        agent.set_x509(
            vec![(
                id(SERVER_ID),
                new.chain.clone(),
                other.key.secret_der().to_vec(),
            )],
            vec![ca.root.clone()],
            Vec::new(),
        );
        within_5s(|| spire.status().failures == 1).await;
        assert!(matches!(
            spire.status().last_error,
            Some(SpireSourceError::Svid {
                source: SvidError::KeyMismatch,
                ..
            })
        ));
        assert_eq!(leaf_of(&spire), good.chain[0]);
        assert!(!generations.has_changed().unwrap());

        // The next good update serves.
        push(&agent, &new, &[&ca]);
        next_generation(&mut generations).await;
        assert_eq!(leaf_of(&spire), new.chain[0]);
        assert_eq!(spire.status().failures, 1);
    })
    .await;
}

#[tokio::test]
async fn an_svid_with_two_uri_sans_is_refused() {
    bounded(async {
        let (ca, good, agent, spire) = serving().await;
        let mut generations = spire.changes();
        let errors_before = spire.workload_api_errors();

        let two_ids = ca.leaf_with(SERVER_ID, |p| {
            p.subject_alt_names
                .push(SanType::URI(OTHER_ID.try_into().unwrap()));
        });
        push(&agent, &two_ids, &[&ca]);
        // The `spiffe` crate refuses it first (a stream error, then a
        // reconnection that gets the same bad response...); were it to pass
        // it on, our own check would refuse it.
        assert!(
            eventually(Duration::from_secs(5), || {
                spire.workload_api_errors() > errors_before || spire.status().failures > 0
            })
            .await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(leaf_of(&spire), good.chain[0]);
        assert!(!generations.has_changed().unwrap());

        // ...and a good update after it serves once the client reconnects.
        let next = ca.leaf(SERVER_ID);
        push(&agent, &next, &[&ca]);
        tokio::time::timeout(Duration::from_secs(5), generations.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(leaf_of(&spire), next.chain[0]);
    })
    .await;
}

#[tokio::test]
async fn an_svid_from_a_ca_outside_the_bundle_is_refused() {
    bounded(async {
        let (ca, good, agent, spire) = serving().await;
        let rogue = TestCa::root(TD);

        push(&agent, &rogue.leaf(SERVER_ID), &[&ca]);
        within_5s(|| spire.status().failures == 1).await;
        assert!(matches!(
            spire.status().last_error,
            Some(SpireSourceError::Unverified { .. })
        ));
        assert_eq!(leaf_of(&spire), good.chain[0]);
    })
    .await;
}

#[tokio::test]
async fn a_bad_first_svid_is_a_typed_error() {
    bounded(async {
        let ca = TestCa::root(TD);
        let rogue = TestCa::root(TD);
        let agent = agent_serving(&rogue.leaf(SERVER_ID), &[&ca]).await;

        let start = Instant::now();
        let err = builder(&agent, Duration::from_millis(500))
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(err, SpireSourceError::Unverified { ref spiffe_id, .. } if spiffe_id == &id(SERVER_ID)),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(3));
    })
    .await;
}

#[tokio::test]
async fn the_default_svid_is_the_first_and_another_can_be_picked() {
    bounded(async {
        let ca = TestCa::root(TD);
        let first = ca.leaf(SERVER_ID);
        let second = ca.leaf(OTHER_ID);
        let agent = WorkloadApiServer::start().await.unwrap();
        agent.set_x509(
            vec![entry(SERVER_ID, &first), entry(OTHER_ID, &second)],
            vec![ca.root.clone()],
            Vec::new(),
        );

        let default = connect(&agent).await;
        assert_eq!(default.svid().unwrap().spiffe_id(), &id(SERVER_ID));

        let picked = builder(&agent, Duration::from_secs(10))
            .spiffe_id(id(OTHER_ID))
            .connect()
            .await
            .unwrap();
        assert_eq!(picked.svid().unwrap().spiffe_id(), &id(OTHER_ID));
        assert_eq!(leaf_of(&picked), second.chain[0]);

        // An ID the agent does not serve: no SVID within the timeout.
        let err = builder(&agent, Duration::from_millis(300))
            .spiffe_id(id("spiffe://example.org/nobody"))
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(err, SpireSourceError::Timeout { .. }), "{err}");
    })
    .await;
}

#[tokio::test]
async fn an_agent_restart_is_survived() {
    bounded(async {
        let (ca, leaf, agent, spire) = serving().await;
        let mut generations = spire.changes();
        let calls = agent.x509_svid_calls();

        agent.close_streams();
        within_5s(|| agent.x509_svid_calls() > calls).await;
        // The same material again is no update.
        assert_eq!(leaf_of(&spire), leaf.chain[0]);
        assert!(!generations.has_changed().unwrap());

        let rotated = ca.leaf(SERVER_ID);
        push(&agent, &rotated, &[&ca]);
        next_generation(&mut generations).await;
        assert_eq!(leaf_of(&spire), rotated.chain[0]);
    })
    .await;
}

#[tokio::test]
async fn a_withdrawal_keeps_serving_by_default() {
    bounded(async {
        let (_, leaf, agent, spire) = serving().await;

        agent.deny(Some("no identity issued"));
        within_5s(|| spire.withdrawal().is_some()).await;
        assert_eq!(leaf_of(&spire), leaf.chain[0]);
        assert_eq!(spire.bundles().len(), 1);

        agent.deny(None);
        within_5s(|| spire.withdrawal().is_none()).await;
        assert_eq!(leaf_of(&spire), leaf.chain[0]);
    })
    .await;
}

#[tokio::test]
async fn a_withdrawal_fails_closed_when_asked() {
    bounded(async {
        let ca = TestCa::root(TD);
        let leaf = ca.leaf(SERVER_ID);
        let agent = agent_serving(&leaf, &[&ca]).await;
        let spire = SpireSource::builder()
            .endpoint(agent.endpoint())
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .on_withdrawal(WithdrawalPolicy::FailClosed)
            .connect()
            .await
            .unwrap();

        agent.deny(Some("permission denied by test"));
        within_5s(|| spire.current_svid().is_none()).await;
        assert!(spire.current_bundles().is_empty());
        assert!(spire
            .withdrawal()
            .unwrap()
            .contains("permission denied by test"));

        agent.deny(None);
        within_5s(|| spire.current_svid().is_some()).await;
        assert_eq!(leaf_of(&spire), leaf.chain[0]);
        assert!(spire.current_bundles().contains(TD));
        assert!(spire.withdrawal().is_none());
    })
    .await;
}

#[tokio::test]
async fn bad_endpoints_are_typed_errors() {
    bounded(async {
        assert!(matches!(
            SpireSource::connect_to("").await.unwrap_err(),
            SpireSourceError::NoEndpoint
        ));
        let err = SpireSource::connect_to("http://example.org/api.sock")
            .await
            .unwrap_err();
        assert!(
            matches!(err, SpireSourceError::InvalidEndpoint { .. }),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn no_server_is_a_typed_error_within_the_timeout() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = format!("unix://{}", dir.path().join("nobody.sock").display());
        let start = Instant::now();
        let err = SpireSource::builder()
            .endpoint(&endpoint)
            .initial_timeout(Some(Duration::from_millis(500)))
            .connect()
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(&err, SpireSourceError::Timeout { endpoint: e, timeout }
                if e == &endpoint && *timeout == Duration::from_millis(500)),
            "{err}"
        );
        assert!(took >= Duration::from_millis(450), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    })
    .await;
}

/// A real mTLS handshake where the server presents the SPIRE SVID through
/// configs built once: a push changes what the next client sees.
#[tokio::test]
async fn handshakes_present_the_rotated_svid_without_a_new_config() {
    bounded(async {
        let (ca, first, agent, spire) = serving().await;
        let mut generations = spire.changes();

        let server = MtlsServerConfig::builder(spire.clone(), spire.clone())
            .authorizer(authorize::exact(id(CLIENT_ID)))
            .build()
            .unwrap();
        let client = ca.client_config(CLIENT_ID, SERVER_ID);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(server.rustls_config());
        let server_task = tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                let peer = server.peer_identity(tls.get_ref().1).unwrap();
                assert_eq!(peer.spiffe_id(), &id(CLIENT_ID));
                tls.write_all(b"ok").await.unwrap();
                tls.shutdown().await.unwrap();
            }
        });

        let handshake = || {
            let client = client.clone();
            async move {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let connector = TlsConnector::from(client.rustls_config());
                let mut tls = connector
                    .connect(ServerName::try_from("backend").unwrap(), tcp)
                    .await
                    .unwrap();
                let peer = client.peer_identity(tls.get_ref().1).unwrap();
                let mut reply = Vec::new();
                tls.read_to_end(&mut reply).await.unwrap();
                assert_eq!(reply, b"ok");
                peer
            }
        };

        let peer = handshake().await;
        assert_eq!(peer.spiffe_id(), &id(SERVER_ID));
        assert_eq!(peer.leaf(), &first.chain[0]);

        let rotated = ca.leaf(SERVER_ID);
        push(&agent, &rotated, &[&ca]);
        next_generation(&mut generations).await;
        let peer = handshake().await;
        assert_eq!(peer.leaf(), &rotated.chain[0]);
        assert_ne!(peer.leaf(), &first.chain[0]);

        server_task.abort();
    })
    .await;
}

#[tokio::test]
async fn dropping_the_last_clone_closes_the_stream() {
    bounded(async {
        let (_, _, agent, spire) = serving().await;
        let clone = spire.clone();
        within_5s(|| agent.open_streams() == 1).await;

        drop(spire);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(agent.open_streams(), 1, "a clone still uses the stream");
        assert!(clone.current_svid().is_some());

        drop(clone);
        within_5s(|| agent.open_streams() == 0).await;
    })
    .await;
}

const CHILD: &str = "child_connects_through_the_environment";
const CHILD_MARKER: &str = "MTLS_SPIRE_SOURCE_TEST_CHILD";

/// Runs [`child_connects_through_the_environment`] in a child process (this
/// test binary) with `SPIFFE_ENDPOINT_SOCKET` set or unset: environment
/// variables are process-wide, so no test of this process touches them.
async fn run_child(endpoint: Option<String>) {
    let exe = std::env::current_exe().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(exe);
        command
            .args(["--exact", CHILD, "--ignored", "--test-threads", "1"])
            .env(CHILD_MARKER, "1");
        match endpoint {
            Some(endpoint) => command.env(mtls_core::SPIFFE_ENDPOINT_SOCKET, endpoint),
            None => command.env_remove(mtls_core::SPIFFE_ENDPOINT_SOCKET),
        };
        command.output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn connect_reads_spiffe_endpoint_socket() {
    bounded(async {
        let ca = TestCa::root(TD);
        let agent = agent_serving(&ca.leaf(SERVER_ID), &[&ca]).await;
        run_child(Some(agent.endpoint())).await;
        assert!(agent.x509_svid_calls() >= 1);
        run_child(None).await;
    })
    .await;
}

#[tokio::test]
#[ignore = "run in a child process by connect_reads_spiffe_endpoint_socket"]
async fn child_connects_through_the_environment() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    bounded(async {
        match std::env::var(mtls_core::SPIFFE_ENDPOINT_SOCKET) {
            Ok(endpoint) => {
                let spire = SpireSource::connect().await.unwrap();
                assert_eq!(spire.endpoint(), endpoint);
                assert_eq!(spire.svid().unwrap().spiffe_id(), &id(SERVER_ID));
            }
            Err(_) => {
                let err = SpireSource::connect().await.unwrap_err();
                assert!(matches!(err, SpireSourceError::NoEndpoint), "{err}");
            }
        }
    })
    .await;
}
