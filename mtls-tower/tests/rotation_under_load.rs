//! Under continuous load from several clients, 20 leaf rotations and one CA
//! rotation with an overlapping bundle: not one request fails.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtls_ca::{CaOptions, CertificateAuthority, RotatingCa};
use mtls_core::{
    authorize, MtlsClientConfig, MtlsServerConfig, RenewingSvid, SvidSpec, TrustDomain,
};
use mtls_tower::{AuthorizeLayer, MtlsConnector, PeerId, RoutePolicy};

const CLIENTS: usize = 4;
const LEAF_ROTATIONS: usize = 20;

fn dev_ca(td: &TrustDomain) -> CertificateAuthority {
    CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_across_leaf_and_ca_rotations() {
    let td = TrustDomain::new("example.org").unwrap();
    let ca = Arc::new(RotatingCa::new(dev_ca(&td)));
    let request = |name: &str| SvidSpec::new(common::id(&format!("spiffe://example.org/{name}")));

    // Every SVID is issued and renewed by the rotating CA; every party
    // trusts the rotating CA's bundle.
    let server_svid = Arc::new(
        RenewingSvid::start(ca.clone(), request("server"))
            .await
            .unwrap(),
    );
    let server = MtlsServerConfig::builder(server_svid.clone(), ca.clone())
        .authorizer(authorize::member_of(td.clone()))
        .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        .build()
        .unwrap();
    // Any member may ask `/whoami`, answered with its SPIFFE ID.
    let whoami = get(|PeerId(id): PeerId| async move { id.to_string() });
    let only_whoami = RoutePolicy::builder().route("/whoami", authorize::any());
    let app = Router::new()
        .route("/whoami", whoami)
        .layer(AuthorizeLayer::new(only_whoami.build().unwrap()));
    let server_handle = common::serve(server, app).await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut client_svids = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let svid = Arc::new(
            RenewingSvid::start(ca.clone(), request(&format!("client-{i}")))
                .await
                .unwrap(),
        );
        client_svids.push(svid.clone());
        let config = MtlsClientConfig::builder(svid, ca.clone())
            .authorizer(authorize::exact(common::id("spiffe://example.org/server")))
            .alpn_protocols(vec![b"h2".to_vec()])
            .build()
            .unwrap();
        // No pooling: every request is a new handshake with whatever the
        // sources serve at that moment.
        let client: Client<MtlsConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(MtlsConnector::new(config));
        let (uri, stop, ok, failures) = (
            server_handle.url("/whoami"),
            stop.clone(),
            ok.clone(),
            failures.clone(),
        );
        let expected = format!("spiffe://example.org/client-{i}");
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.get(uri.clone()).await {
                    Ok(res) if res.status() == 200 => {
                        let body = res.into_body().collect().await.map(|b| b.to_bytes());
                        match body {
                            Ok(b) if b == expected.as_bytes() => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => failures.lock().unwrap().push(format!("body {other:?}")),
                        }
                    }
                    Ok(res) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", res.status())),
                    Err(e) => failures.lock().unwrap().push(format!("{e:?}")),
                }
            }
        }));
    }

    async fn renew_all(svids: &[Arc<RenewingSvid>]) {
        for svid in svids {
            svid.renew_now().await.unwrap();
        }
    }
    let everyone: Vec<Arc<RenewingSvid>> = std::iter::once(server_svid.clone())
        .chain(client_svids.iter().cloned())
        .collect();
    let pause = || tokio::time::sleep(Duration::from_millis(150));

    // 20 leaf rotations of every party.
    let first_leaf = server_svid.svid().leaf().clone();
    for _ in 0..LEAF_ROTATIONS {
        renew_all(&everyone).await;
        pause().await;
    }
    assert_ne!(server_svid.svid().leaf(), &first_leaf);

    // One CA rotation with an overlapping bundle: stage, wait for the
    // bundle to reach everyone (here: at once, sources are shared), activate,
    // renew every SVID from the new CA, wait out in-flight handshakes, retire.
    let old_root = ca.active().trust_anchors()[0].clone();
    ca.stage(dev_ca(&td)).unwrap();
    pause().await;
    ca.activate().unwrap();
    renew_all(&everyone).await;
    pause().await;
    ca.retire().unwrap();
    assert!(!ca.bundle().unwrap().contains(&old_root));
    // Keep the load going on the new CA alone for a while.
    for _ in 0..5 {
        pause().await;
    }

    // Until a few thousand requests went through.
    common::bounded_by(Duration::from_secs(60), async {
        while ok.load(Ordering::Relaxed) < 2000 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        ok.load(Ordering::Relaxed) as usize + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok.load(Ordering::Relaxed) >= 2000);
    assert_eq!(server_handle.stats.failed(), 0);
}
