//! Run with: `cargo test -p examples --test federate`
//!
//! `axum-server --federate`: a partner trust domain whose bundle endpoint
//! runs in this test (mtls-core's `serve`, with a `RotatingCa` of the
//! partner), followed by the server: a partner client is served, and after
//! the partner rotates its CA a client of the new CA is served and one of
//! the retired CA refused, without restarting the server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    args, bundle, federated, path_str, run, s, Identity, Pki, Server, AXUM_CLIENT, AXUM_SERVER,
    SERVER_ID,
};
use mtls_ca::{CaOptions, CertificateAuthority, RotatingCa, SvidRequest};
use mtls_core::federation::{serve, BundleEndpoint, BundleServer, ServerProfile};
use mtls_core::{to_pem, RenewingSvid, SpiffeId, SvidSpec, TrustDomain};
use mtls_testing::TestCa;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const ENDPOINT_ID: &str = "spiffe://partner.org/bundle-endpoint";

/// partner.org: its CA and its bundle endpoint, on a runtime of the test.
struct Partner {
    ca: Arc<RotatingCa>,
    endpoint_svid: Arc<RenewingSvid>,
    url: String,
    _endpoint: BundleServer,
    // Last: dropped after what runs on it.
    runtime: tokio::runtime::Runtime,
}

fn dev_ca(td: &str) -> CertificateAuthority {
    CertificateAuthority::self_signed_for_development(
        TrustDomain::new(td).unwrap(),
        &CaOptions::default(),
    )
    .unwrap()
}

impl Partner {
    /// `web`: serve `https_web` with this chain and key instead.
    fn start(web: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let ca = Arc::new(RotatingCa::new(dev_ca("partner.org")));
        let (endpoint_svid, endpoint) = runtime.block_on(async {
            let svid = Arc::new(
                RenewingSvid::start(
                    ca.clone(),
                    SvidSpec::new(SpiffeId::new(ENDPOINT_ID).unwrap()),
                )
                .await
                .unwrap(),
            );
            let profile = match web {
                Some((chain, key)) => ServerProfile::https_web(chain, key),
                None => ServerProfile::https_spiffe(svid.clone()),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let endpoint = serve(
                listener,
                BundleEndpoint::new(TrustDomain::new("partner.org").unwrap(), ca.clone())
                    .refresh_hint(Duration::from_secs(1)),
                profile,
            )
            .unwrap();
            (svid, endpoint)
        });
        let url = format!("https://{}/bundle", endpoint.local_addr());
        Self {
            runtime,
            ca,
            endpoint_svid,
            url,
            _endpoint: endpoint,
        }
    }

    /// An SVID of the partner's active CA, and the partner's bundle now,
    /// written as `<name>.pem`, `<name>.key` and `<name>-bundle.pem`.
    fn issue(&self, pki: &Pki, name: &str, id: &str) -> (Identity, PathBuf) {
        let svid = self
            .ca
            .issue(&SvidRequest::new(SpiffeId::new(id).unwrap()))
            .unwrap();
        let cert = pki.path(&format!("{name}.pem"));
        let key = pki.path(&format!("{name}.key"));
        let bundle = pki.path(&format!("{name}-bundle.pem"));
        std::fs::write(&cert, svid.chain_pem()).unwrap();
        std::fs::write(&key, svid.private_key_pem()).unwrap();
        std::fs::write(&bundle, self.ca.bundle().unwrap().to_pem()).unwrap();
        (
            Identity {
                id: id.to_owned(),
                cert,
                key,
            },
            bundle,
        )
    }
}

/// `axum-client` as a partner client `who` (its own bundle `own`), calling
/// `/whoami`; whether it was served as itself.
fn served(server: &Server, example_bundle: &Path, who: &Identity, own: &Path) -> bool {
    let url = format!("https://{}/whoami", server.addr);
    let out = run(
        AXUM_CLIENT,
        &args([
            s(&["--url", &url, "--server-id", SERVER_ID]),
            who.args(),
            bundle(own),
            federated("example.org", example_bundle),
        ]),
    );
    out.status.success() && out.stdout == format!("{}\n", who.id)
}

#[track_caller]
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The example.org server, federating with `federate`.
fn start_server(pki: &Pki, example_bundle: &Path, federate: &str) -> Server {
    let server_id = Identity {
        id: SERVER_ID.into(),
        cert: pki.path("server.pem"),
        key: pki.path("server.key"),
    };
    Server::start(
        AXUM_SERVER,
        &args([
            server_id.args(),
            bundle(example_bundle),
            s(&[
                "--federate",
                federate,
                "--federation-min-refresh",
                "1s",
                "--allow-trust-domain",
                "example.org",
                "--allow-trust-domain",
                "partner.org",
            ]),
        ]),
    )
}

#[test]
fn a_federated_partner_is_followed_across_its_ca_rotation() {
    let pki = Pki::new();
    let example = pki.domain("example", "example.org");
    pki.issue(&example, "server", SERVER_ID);
    let partner = Partner::start(None);
    let bootstrap = pki.path("partner-bootstrap.pem");
    std::fs::write(&bootstrap, partner.ca.bundle().unwrap().to_pem()).unwrap();
    let server = start_server(
        &pki,
        &example.bundle,
        &format!(
            "partner.org={},https_spiffe,{ENDPOINT_ID},{}",
            partner.url,
            path_str(&bootstrap)
        ),
    );

    // Served once the server has fetched the partner's bundle.
    let (billing, billing_bundle) = partner.issue(&pki, "billing", "spiffe://partner.org/billing");
    eventually("a partner client served", || {
        served(&server, &example.bundle, &billing, &billing_bundle)
    });
    // A stranger of partner.org (another CA) is not.
    let rogue = pki.domain("rogue", "partner.org");
    let mallory = pki.issue(&rogue, "mallory", "spiffe://partner.org/mallory");
    assert!(!served(&server, &example.bundle, &mallory, &rogue.bundle));

    // The partner rotates its CA: stage (the server fetches the bundle
    // with both roots: a client of the staged CA is served), activate (its
    // SVIDs re-issued by the new CA), retire. No restart of the server.
    let next_ca = dev_ca("partner.org");
    let probe = next_ca
        .issue(&SvidRequest::new(
            SpiffeId::new("spiffe://partner.org/probe").unwrap(),
        ))
        .unwrap();
    let probe_id = Identity {
        id: "spiffe://partner.org/probe".into(),
        cert: pki.path("probe.pem"),
        key: pki.path("probe.key"),
    };
    std::fs::write(&probe_id.cert, probe.chain_pem()).unwrap();
    std::fs::write(&probe_id.key, probe.private_key_pem()).unwrap();
    partner.ca.stage(next_ca).unwrap();
    let staged_bundle = pki.path("staged-bundle.pem");
    std::fs::write(&staged_bundle, partner.ca.bundle().unwrap().to_pem()).unwrap();
    eventually("the staged bundle fetched", || {
        served(&server, &example.bundle, &probe_id, &staged_bundle)
    });
    partner.ca.activate().unwrap();
    partner
        .runtime
        .block_on(partner.endpoint_svid.renew_now())
        .unwrap();
    let (next, next_bundle) = partner.issue(&pki, "next", "spiffe://partner.org/next");
    eventually("a client of the partner's new CA served", || {
        served(&server, &example.bundle, &next, &next_bundle)
    });
    // The old CA's client still is, during the overlap.
    assert!(served(&server, &example.bundle, &billing, &next_bundle));

    partner.ca.retire().unwrap();
    eventually("the retired CA's client refused", || {
        !served(&server, &example.bundle, &billing, &next_bundle)
    });
    assert!(served(&server, &example.bundle, &next, &next_bundle));
}

#[test]
fn a_federated_partner_over_https_web() {
    let pki = Pki::new();
    let example = pki.domain("example", "example.org");
    pki.issue(&example, "server", SERVER_ID);
    let web_ca = TestCa::root("web.example");
    let leaf = web_ca.leaf_with("spiffe://web.example/unused", |p| {
        p.subject_alt_names = vec![rcgen::SanType::IpAddress(
            "127.0.0.1".parse::<IpAddr>().unwrap(),
        )];
    });
    let roots = pki.path("web-roots.pem");
    std::fs::write(&roots, to_pem("CERTIFICATE", &web_ca.root)).unwrap();
    let partner = Partner::start(Some((leaf.chain.clone(), leaf.key.clone_key())));
    let server = start_server(
        &pki,
        &example.bundle,
        &format!("partner.org={},https_web,{}", partner.url, path_str(&roots)),
    );
    let (billing, billing_bundle) = partner.issue(&pki, "billing", "spiffe://partner.org/billing");
    eventually("a partner client served", || {
        served(&server, &example.bundle, &billing, &billing_bundle)
    });
}

/// The server binary on a free loopback port as `id`, trusting `bundle_file`,
/// with `more` arguments; it is expected to exit at once.
fn run_server<const N: usize>(
    id: &Identity,
    bundle_file: &Path,
    more: [Vec<String>; N],
) -> common::Outcome {
    let listen = s(&["--listen", "127.0.0.1:0"]);
    let mut all = args([listen, id.args(), bundle(bundle_file)]);
    all.extend(more.into_iter().flatten());
    run(AXUM_SERVER, &all)
}

#[test]
fn bad_federate_flags_are_usage_errors() {
    let pki = Pki::new();
    let example = pki.domain("example", "example.org");
    let id = pki.issue(&example, "server", SERVER_ID);
    for bad in [
        "partner.org",
        "partner.org=https://127.0.0.1:1",
        "partner.org=http://127.0.0.1:1,https_web",
        "partner.org=https://127.0.0.1:1,https_spiffe",
        "partner.org=https://127.0.0.1:1,https_spiffe,spiffe://partner.org/e",
        "partner.org=https://127.0.0.1:1,https_ftp",
        "partner.org=https://127.0.0.1:1,https_web,a.pem,b.pem",
    ] {
        let out = run_server(&id, &example.bundle, [s(&["--federate", bad])]);
        out.assert_exit(2);
    }
    // A trust domain given both as a --bundle and as a --federate.
    let out = run_server(
        &id,
        &example.bundle,
        [
            federated("partner.org", &example.bundle),
            s(&["--federate", "partner.org=https://127.0.0.1:1,https_web"]),
        ],
    );
    out.assert_exit(1);
    assert!(out.stderr.contains("--federate partner.org"), "{out:#?}");
}
