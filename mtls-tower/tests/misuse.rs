//! Misuse caught early, over loopback with real mTLS handshakes: a router
//! served without `into_make_service_with_connect_info::<MtlsConnectInfo>()`
//! refuses everyone (fail closed) and logs the fix once per process;
//! `mtls_tower::serve` cannot be set up that way and shuts down gracefully.
//!
//! Its own test binary: the "once per process" flag and the global
//! subscriber are this process's alone.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::{Mutex, OnceLock};

use axum::routing::get;
use axum::Router;
use common::*;
use mtls_core::authorize;
use mtls_tower::{AuthorizeLayer, MtlsListener, PeerId, RoutePolicy};
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// A subscriber that keeps every event's level and fields as text.
#[derive(Default)]
struct Capture(Mutex<Vec<(Level, String)>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl Subscriber for &'static Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::default());
        tracing::subscriber::set_global_default(capture).unwrap();
        capture
    })
}

/// The error lines that name the fix.
fn fix_lines(capture: &Capture) -> Vec<String> {
    capture
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(level, text)| {
            *level == Level::ERROR && text.contains("mtls_tower::serve(listener, router)")
        })
        .map(|(_, text)| text.clone())
        .collect()
}

fn app() -> Router {
    let policy = RoutePolicy::builder()
        .route("/whoami", authorize::any())
        .build()
        .unwrap();
    whoami_router().layer(AuthorizeLayer::new(policy))
}

/// One test, in order: the misconfigured server logs exactly once however
/// many requests it refuses; a correctly served one never logs it.
#[tokio::test]
async fn missing_connect_info_is_refused_and_logged_once_and_serve_wires_it() {
    let capture = capture();
    bounded(async {
        let pki = Pki::new("example.org");

        // A request whose peer an `AuthorizeLayer` (or anything) put in its
        // extensions is not a misconfiguration.
        let peer = pki.peer(FRONTEND);
        let mut request = http::Request::get("/whoami")
            .body(axum::body::Body::empty())
            .unwrap();
        request.extensions_mut().insert(peer);
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);

        // `mtls_tower::serve`: the peer reaches the handler; nothing logged.
        let listener = MtlsListener::bind("127.0.0.1:0", pki.server_config())
            .await
            .unwrap();
        let addr = listener.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            mtls_tower::serve(listener, app())
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        let url: http::Uri = format!("https://{addr}/whoami").parse().unwrap();
        for alpn in [H2, H1] {
            let client = pki.http_client(FRONTEND, alpn);
            let got = fetch(&client, url.clone()).await.unwrap();
            assert_eq!(got.status, 200, "ALPN {alpn:?}");
            assert_eq!(got.body, format!("{FRONTEND}\n"));
        }
        assert!(fix_lines(capture).is_empty());
        // Graceful shutdown: the serve future completes, cleanly.
        stop.send(()).unwrap();
        served.await.unwrap().unwrap();

        // Misconfigured: every caller refused, the fix logged once.
        let server = serve_without_connect_info(pki.server_config(), app()).await;
        for round in 0..5 {
            for alpn in [H2, H1] {
                let client = pki.http_client(FRONTEND, alpn);
                let got = fetch(&client, server.url("/whoami")).await.unwrap();
                assert_eq!(got.status, 401, "round {round}, ALPN {alpn:?}");
                assert_eq!(got.body, "unauthenticated\n");
            }
        }
        // The extractor alone (no layer) refuses too; still not logged again.
        let bare = Router::new().route(
            "/whoami",
            get(|PeerId(id): PeerId| async move { id.to_string() }),
        );
        let bare = serve_without_connect_info(pki.server_config(), bare).await;
        let client = pki.http_client(FRONTEND, H2);
        assert_eq!(bare.status(&client, "/whoami").await, 401);

        let lines = fix_lines(capture);
        assert_eq!(lines.len(), 1, "logged once: {lines:?}");
        let line = &lines[0];
        assert!(
            line.contains("into_make_service_with_connect_info::<MtlsConnectInfo>()"),
            "{line}"
        );
        assert!(line.contains("401"), "{line}");
    })
    .await;
}
