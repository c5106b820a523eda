//! Run with: `cargo run -p examples --bin federation`
//!
//! Federation between two trust domains, `example.org` and `partner.org`,
//! each with its own CA, in two scenes:
//!
//! 1. Static bundles: the example.org server holds one bundle per trust
//!    domain and admits members of both; bundles are never merged, so a
//!    `partner.org` identity signed by an authority of example.org's bundle
//!    is refused.
//! 2. Live federation (SPIFFE bundle endpoints): each trust domain runs its
//!    CA (a `RotatingCa`) and a bundle endpoint (`https_spiffe`, in
//!    process); a workload of each follows the other's bundle through a
//!    `FederatedBundleSource` composed with its own, and calls the other's
//!    workload continuously. partner.org then rotates its CA (stage,
//!    activate, retire) and the calls go on without a restart: zero failed
//!    calls.
//!
//! Exits 0 when everything behaved as shown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::demo::{self, serve_whoami, whoami};
use examples::{error_chain, BoxError};
use mtls_ca::{CaOptions, CertificateAuthority, RotatingCa, SvidRequest};
use mtls_core::federation::{
    serve, BundleEndpoint, BundleServer, EndpointConfig, EndpointProfile, FederatedBundleSource,
    ServerProfile, WatchOptions,
};
use mtls_core::{
    authorize, BundleSet, ComposedBundles, MtlsClientConfig, MtlsServerConfig, RenewingSvid,
    SpiffeId, SvidSpec, TrustDomain,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    demo::exit("federation", run().await)
}

async fn run() -> Result<bool, BoxError> {
    println!("== 1. static bundles, one per trust domain ==\n");
    let static_ok = static_bundles().await?;
    println!("\n== 2. live federation through bundle endpoints, a CA rotation ==\n");
    let live_ok = live_federation().await?;
    Ok(static_ok && live_ok)
}

async fn static_bundles() -> Result<bool, BoxError> {
    let example = TrustDomain::new("example.org")?;
    let partner = TrustDomain::new("partner.org")?;
    // Development roots, one per trust domain (never in production).
    let example_ca =
        CertificateAuthority::self_signed_for_development(example.clone(), &CaOptions::default())?;
    let partner_ca =
        CertificateAuthority::self_signed_for_development(partner.clone(), &CaOptions::default())?;
    let issue = |ca: &CertificateAuthority, id: &str| -> Result<_, BoxError> {
        Ok(ca.issue(&SvidRequest::new(SpiffeId::new(id)?))?)
    };

    // A third authority that example.org trusts (it is in example.org's
    // bundle) and that mints partner.org identities: a trust domain's
    // authorities must not vouch for another trust domain.
    let rogue =
        CertificateAuthority::self_signed_for_development(partner.clone(), &CaOptions::default())?;
    let mut example_bundle = example_ca.bundle()?;
    example_bundle.add_authority(rogue.certificate().clone())?;

    // The server holds one bundle per trust domain, never merged.
    let federated = BundleSet::from_bundles([example_bundle, partner_ca.bundle()?])?;

    let server = MtlsServerConfig::builder(
        issue(&example_ca, "spiffe://example.org/api")?,
        federated.clone(),
    )
    .authorizer(authorize::member_of_any([example.clone(), partner.clone()]))
    .build()?;
    let addr = serve_whoami(server).await?;
    println!("server spiffe://example.org/api on {addr} trusts example.org and partner.org\n");

    let mut all_ok = true;
    let callers = [
        (
            "spiffe://example.org/web",
            &example_ca,
            true,
            "a member of example.org",
        ),
        (
            "spiffe://partner.org/billing",
            &partner_ca,
            true,
            "a member of partner.org, signed by partner.org's CA",
        ),
        (
            "spiffe://partner.org/billing",
            &rogue,
            false,
            "claims partner.org, signed by an authority of example.org's bundle (bundles are never merged)",
        ),
    ];
    for (id, ca, expect_ok, what) in callers {
        let client = MtlsClientConfig::builder(issue(ca, id)?, federated.clone())
            .authorizer(authorize::exact(SpiffeId::new("spiffe://example.org/api")?))
            .build()?;
        let outcome = whoami(&client, addr).await;
        let ok = match &outcome {
            Ok(answer) => answer.status == 200 && answer.body == id,
            Err(_) => false,
        };
        let shown = match &outcome {
            Ok(answer) => format!("HTTP {}: {}", answer.status, answer.body),
            Err(e) => format!("refused: {}", error_chain(e.as_ref())),
        };
        let as_expected = ok == expect_ok;
        all_ok &= as_expected;
        println!(
            "{} {id} ({what})\n    {shown}",
            if as_expected { "[ok]  " } else { "[FAIL]" }
        );
    }
    Ok(all_ok)
}

/// The refresh hint the bundle endpoints publish, and the lowest refresh
/// interval of the watchers: short, for the demo (the default is 5 minutes).
const REFRESH: Duration = Duration::from_secs(1);

/// A trust domain: its CA and its bundle endpoint.
struct Domain {
    td: TrustDomain,
    ca: Arc<RotatingCa>,
    endpoint_id: SpiffeId,
    endpoint_svid: Arc<RenewingSvid>,
    url: String,
    _endpoint: BundleServer,
}

impl Domain {
    async fn start(name: &str) -> Result<Self, BoxError> {
        let td = TrustDomain::new(name)?;
        let ca = Arc::new(RotatingCa::new(
            CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())?,
        ));
        let endpoint_id = SpiffeId::new(&format!("spiffe://{name}/bundle-endpoint"))?;
        let endpoint_svid =
            Arc::new(RenewingSvid::start(ca.clone(), SvidSpec::new(endpoint_id.clone())).await?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = serve(
            listener,
            BundleEndpoint::new(td.clone(), ca.clone()).refresh_hint(REFRESH),
            ServerProfile::https_spiffe(endpoint_svid.clone()),
        )?;
        let url = format!("https://{}/bundle", endpoint.local_addr());
        println!("{name}: CA and bundle endpoint {url} ({endpoint_id})");
        Ok(Self {
            td,
            ca,
            endpoint_id,
            endpoint_svid,
            url,
            _endpoint: endpoint,
        })
    }
}

/// A workload of one trust domain federated with another: a whoami server,
/// and a client of the partner's workload.
struct Workload {
    name: String,
    client_id: SpiffeId,
    addr: SocketAddr,
    svids: [Arc<RenewingSvid>; 2],
    federated: FederatedBundleSource,
    client: MtlsClientConfig,
}

/// The SPIFFE ID of the whoami server of `td`.
fn server_id(td: &TrustDomain) -> Result<SpiffeId, BoxError> {
    Ok(SpiffeId::new(&format!("spiffe://{td}/api"))?)
}

impl Workload {
    async fn start(own: &Domain, partner: &Domain) -> Result<Self, BoxError> {
        // The partner's endpoint, authenticated by its SPIFFE ID and, until
        // the first fetch, by a bootstrap bundle obtained out of band.
        let config = EndpointConfig::new(
            partner.url.parse()?,
            partner.td.clone(),
            EndpointProfile::https_spiffe(partner.endpoint_id.clone(), partner.ca.bundle()?),
        )?;
        let federated =
            FederatedBundleSource::spawn(config, WatchOptions::default().min_refresh(REFRESH))?;
        // Our own bundle from our CA, the partner's from its endpoint.
        let bundles = ComposedBundles::builder()
            .trust_domain(own.td.clone(), own.ca.clone())
            .trust_domain(partner.td.clone(), federated.clone())
            .build()?;
        let client_id = SpiffeId::new(&format!("spiffe://{}/caller", own.td))?;
        let server_svid = Arc::new(
            RenewingSvid::start(own.ca.clone(), SvidSpec::new(server_id(&own.td)?)).await?,
        );
        let client_svid =
            Arc::new(RenewingSvid::start(own.ca.clone(), SvidSpec::new(client_id.clone())).await?);
        let server = MtlsServerConfig::builder(server_svid.clone(), bundles.clone())
            .authorizer(authorize::member_of_any([
                own.td.clone(),
                partner.td.clone(),
            ]))
            .build()?;
        let addr = serve_whoami(server).await?;
        let client = MtlsClientConfig::builder(client_svid.clone(), bundles)
            .authorizer(authorize::exact(server_id(&partner.td)?))
            .build()?;
        Ok(Self {
            name: own.td.to_string(),
            client_id,
            addr,
            svids: [server_svid, client_svid],
            federated,
            client,
        })
    }

    /// The number of authorities of the partner's bundle held now.
    fn partner_authorities(&self) -> usize {
        self.federated
            .current_bundle()
            .map_or(0, |b| b.x509().len())
    }
}

/// Waits until `done` (checked every 50 ms), at most 20 s.
async fn until(what: &str, done: impl Fn() -> bool) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Calls of both workloads to each other, counted.
#[derive(Default)]
struct Traffic {
    ok: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
}

/// Calls `to` from `from` every 20 ms until told to stop.
async fn call_loop(from: Arc<Workload>, to: SocketAddr, traffic: Arc<Traffic>) {
    while !traffic.stop.load(Ordering::Relaxed) {
        match whoami(&from.client, to).await {
            Ok(answer) if answer.status == 200 && answer.body == from.client_id.as_str() => {
                traffic.ok.fetch_add(1, Ordering::Relaxed);
            }
            outcome => {
                traffic.failed.fetch_add(1, Ordering::Relaxed);
                let shown = match outcome {
                    Ok(answer) => format!("HTTP {}: {}", answer.status, answer.body),
                    Err(e) => error_chain(e.as_ref()),
                };
                println!("[FAIL] {} -> {to}: {shown}", from.name);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn step(ok: bool, text: &str) -> bool {
    println!("{} {text}", if ok { "[ok]  " } else { "[FAIL]" });
    ok
}

async fn live_federation() -> Result<bool, BoxError> {
    let example = Domain::start("example.org").await?;
    let partner = Domain::start("partner.org").await?;
    let a = Arc::new(Workload::start(&example, &partner).await?);
    let b = Arc::new(Workload::start(&partner, &example).await?);
    until("the first fetches", || {
        a.partner_authorities() == 1 && b.partner_authorities() == 1
    })
    .await?;
    let mut all_ok = step(
        true,
        "each workload fetched the other trust domain's bundle from its endpoint",
    );

    let traffic = Arc::new(Traffic::default());
    let calls = [
        tokio::spawn(call_loop(a.clone(), b.addr, traffic.clone())),
        tokio::spawn(call_loop(b.clone(), a.addr, traffic.clone())),
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = traffic.ok.load(Ordering::Relaxed);
    all_ok &= step(
        before > 0 && traffic.failed.load(Ordering::Relaxed) == 0,
        &format!("{} calls example.org <-> partner.org so far", before),
    );

    // partner.org rotates its CA, one step at a time, while the calls go on.
    let old_root = partner.ca.active().certificate().clone();
    partner
        .ca
        .stage(CertificateAuthority::self_signed_for_development(
            partner.td.clone(),
            &CaOptions::default(),
        )?)?;
    until("example.org to fetch the staged bundle", || {
        a.partner_authorities() == 2
    })
    .await?;
    all_ok &= step(
        true,
        "partner.org staged a new CA; example.org fetched its bundle with both roots",
    );

    partner.ca.activate()?;
    for svid in b.svids.iter().chain([&partner.endpoint_svid]) {
        svid.renew_now().await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new_root = partner.ca.active().certificate().clone();
    let renewed = b
        .svids
        .iter()
        .chain([&partner.endpoint_svid])
        .all(|s| s.generation() >= 1 && s.status().failures == 0);
    all_ok &= step(
        renewed && new_root != old_root,
        "partner.org activated the new CA; its workload and endpoint SVIDs are re-issued by it",
    );

    partner.ca.retire()?;
    until(
        "example.org to fetch the bundle without the old root",
        || {
            a.federated
                .current_bundle()
                .is_some_and(|b| b.x509().authorities() == [new_root.clone()])
        },
    )
    .await?;
    all_ok &= step(
        true,
        "partner.org retired the old CA; example.org fetched the bundle holding the new root only",
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    traffic.stop.store(true, Ordering::Relaxed);
    for call in calls {
        call.await?;
    }
    let ok = traffic.ok.load(Ordering::Relaxed);
    let failed = traffic.failed.load(Ordering::Relaxed);
    all_ok &= step(
        failed == 0 && ok > before,
        &format!(
            "{ok} calls in both directions during the rotation, {failed} failed calls, no restart"
        ),
    );
    Ok(all_ok)
}
