//! Metrics through the `metrics` facade, read with metrics-util's
//! `DebuggingRecorder` installed as the global recorder. The listener
//! records from spawned tasks, so a thread-local recorder would miss them;
//! this binary therefore holds ONE test, which owns the global recorder.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::*;
use metrics_util::debugging::DebugValue;
use metrics_util::CompositeKey;
use mtls_core::authorize;
use mtls_testing::snapshotter;
use mtls_tower::metrics as names;
use mtls_tower::{AuthorizeLayer, ListenerConfig, RoutePolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Running totals. A snapshot of the debugging recorder resets counters
/// and gauges to zero (and drains histograms), so the totals add every
/// snapshot up; the crate only increments and decrements its gauges, so
/// their sums are their values.
#[derive(Default, Debug)]
struct Totals {
    counters: HashMap<String, u64>,
    gauges: HashMap<String, f64>,
    histograms: HashMap<String, usize>,
}

fn key(ck: &CompositeKey) -> String {
    let key = ck.key();
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Totals {
    fn update(&mut self) -> &Self {
        for (ck, _, _, value) in snapshotter().snapshot().into_vec() {
            let k = key(&ck);
            match value {
                DebugValue::Counter(n) => *self.counters.entry(k).or_default() += n,
                DebugValue::Gauge(g) => *self.gauges.entry(k).or_default() += g.into_inner(),
                DebugValue::Histogram(v) => *self.histograms.entry(k).or_default() += v.len(),
            }
        }
        self
    }

    fn counter(&self, k: &str) -> u64 {
        self.counters.get(k).copied().unwrap_or(0)
    }

    /// An unlabelled gauge.
    fn gauge(&self, name: &str) -> f64 {
        self.gauges
            .get(&format!("{name}{{}}"))
            .copied()
            .unwrap_or(0.0)
    }

    fn handshakes(&self, result: &str, reason: &str) -> u64 {
        self.counter(&format!(
            "{}{{reason={reason},result={result}}}",
            names::HANDSHAKES
        ))
    }

    fn authz(&self, result: &str) -> u64 {
        self.counter(&format!("{}{{result={result}}}", names::AUTHZ_DECISIONS))
    }

    fn handshake_errors(&self) -> u64 {
        self.counters
            .iter()
            .filter(|(k, _)| k.starts_with(names::HANDSHAKES) && k.contains("result=error"))
            .map(|(_, n)| n)
            .sum()
    }
}

async fn until(totals: &mut Totals, mut cond: impl FnMut(&Totals) -> bool) {
    for _ in 0..500 {
        if cond(totals.update()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5 s: {totals:#?}");
}

fn app() -> Router {
    let policy = RoutePolicy::builder()
        .route("/whoami", authorize::any())
        .route("/orders", authorize::exact(id(FRONTEND)))
        .build()
        .unwrap();
    whoami_router()
        .route("/orders", get(|| async { "orders\n" }))
        .layer(AuthorizeLayer::new(policy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_and_layer_metrics() {
    bounded(async {
        let mut totals = Totals::default();
        snapshotter();
        let pki = Pki::new("example.org");
        let other = Pki::new("other.org");
        let server = serve_with(
            pki.server_config(),
            ListenerConfig::default().handshake_timeout(Duration::from_millis(500)),
            app(),
        )
        .await;

        // Two good handshakes; allow, deny.
        let frontend = pki.http_client(FRONTEND, H2);
        assert_eq!(server.status(&frontend, "/whoami").await, 200);
        let intruder = pki.http_client(INTRUDER, H1);
        assert_eq!(server.status(&intruder, "/orders").await, 403);
        until(&mut totals, |t| t.gauge(names::CONNECTIONS_OPEN) == 2.0).await;
        assert_eq!(totals.handshakes("ok", "ok"), 2);
        assert_eq!(totals.authz("allow"), 1);
        assert_eq!(totals.authz("deny"), 1);

        // Refused handshakes, each with its reason.
        let stranger = http_client(client_config(
            other.svid("spiffe://other.org/frontend"),
            pki.bundles(),
            H2,
        ));
        assert!(fetch(&stranger, server.url("/whoami")).await.is_err());
        let anonymous = http_client(client_config(NoSvid, pki.bundles(), H2));
        assert!(fetch(&anonymous, server.url("/whoami")).await.is_err());
        let _silent = TcpStream::connect(server.addr).await.unwrap();
        let mut plaintext = TcpStream::connect(server.addr).await.unwrap();
        plaintext
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let _ = plaintext.read_to_end(&mut Vec::new()).await;
        until(&mut totals, |t| t.handshake_errors() == 4).await;
        assert_eq!(
            // No bundle for other.org: the verifier's precise label.
            totals.handshakes("error", "no_bundle"),
            1,
            "{totals:#?}"
        );
        assert_eq!(
            totals.handshakes("error", "no_certificate"),
            1,
            "{totals:#?}"
        );
        assert_eq!(totals.handshakes("error", "timeout"), 1, "{totals:#?}");
        assert_eq!(server.stats.failed(), 3);
        assert_eq!(server.stats.timed_out(), 1);
        // A non-TLS client fails in rustls (an invalid record), not on I/O.
        assert_eq!(totals.handshakes("error", "tls"), 1, "{totals:#?}");
        assert_eq!(totals.handshake_errors(), 4);

        // Durations: one sample per handshake, by result.
        let samples = |result: &str| {
            totals
                .histograms
                .get(&format!("{}{{result={result}}}", names::HANDSHAKE_DURATION))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(samples("ok"), 2);
        assert_eq!(samples("error"), 4);
        assert_eq!(totals.gauge(names::HANDSHAKES_IN_FLIGHT), 0.0);
        assert_eq!(totals.counter(&format!("{}{{}}", names::ACCEPT_ERRORS)), 0);

        // Without connect info, the layer counts `unauthenticated`.
        let bare = serve_without_connect_info(pki.server_config(), app()).await;
        assert_eq!(bare.status(&frontend, "/whoami").await, 401);
        totals.update();
        assert_eq!(totals.authz("unauthenticated"), 1);

        // Closing the clients closes the server's connections.
        drop((frontend, intruder, stranger, anonymous));
        until(&mut totals, |t| t.gauge(names::CONNECTIONS_OPEN) == 0.0).await;
        assert_eq!(totals.gauge(names::HANDSHAKES_IN_FLIGHT), 0.0);
    })
    .await;
}
