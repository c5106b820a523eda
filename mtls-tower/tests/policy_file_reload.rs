//! Policy files over real loopback mutual TLS: hot reload under load with
//! not one failed request (a bad file in between keeps the last good
//! policy), and learn mode followed by enforcing the learned file.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::*;
use mtls_tower::{AuthorizeLayer, PeerId, PolicyFile, PolicyFileOptions};

/// A policy letting `callers`, and nobody else, call `/whoami`.
fn whoami_for(callers: &[&str]) -> String {
    format!(
        "version = 1\n[[rule]]\naction = \"allow\"\ncallers = {callers:?}\npaths = [\"/whoami\"]\n"
    )
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mtls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces `path` atomically, as deployment tools do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn app(policy: PolicyFile) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|PeerId(id): PeerId| async move { id.to_string() }),
        )
        .route("/orders/{id}", get(|| async { "order" }))
        .route_layer(AuthorizeLayer::new(policy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_fails_no_request_and_keeps_the_last_good_policy() {
    let dir = TempDir::new("policy-reload");
    let path = dir.0.join("policy.toml");
    let frontend_only = whoami_for(&[FRONTEND]);
    let intruder_too = whoami_for(&[FRONTEND, INTRUDER]);
    std::fs::write(&path, &frontend_only).unwrap();
    let policy = PolicyFileOptions::new()
        .poll_interval(Duration::from_millis(20))
        .open(&path)
        .unwrap();
    let pki = Pki::new("example.org");
    let server = serve(pki.server_config(), app(policy.clone())).await;
    let frontend = pki.http_client(FRONTEND, H2);
    let intruder = pki.http_client(INTRUDER, H2);

    // The frontend calls without pause all along: every call must pass.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let mut loops = Vec::new();
    for _ in 0..3 {
        let (stop, ok, client, url) = (
            stop.clone(),
            ok.clone(),
            frontend.clone(),
            server.url("/whoami"),
        );
        loops.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match fetch(&client, url.clone()).await {
                    Ok(got) if got.status == 200 && got.body == FRONTEND => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(got) => failures.push(format!("{} {}", got.status, got.body)),
                    Err(e) => failures.push(e),
                }
            }
            failures
        }));
    }
    let status = |client: &HttpClient| {
        let (client, url) = (client.clone(), server.url("/whoami"));
        async move { fetch(&client, url).await.unwrap().status }
    };
    let until = |want: u16| {
        let status = &status;
        let intruder = &intruder;
        async move {
            bounded(async {
                while status(intruder).await != want {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
        }
    };
    assert_eq!(status(&intruder).await, 403);

    for round in 0..3 {
        replace(&path, &intruder_too);
        until(200).await;
        // A bad file: reported, counted, and the last good policy serves on.
        let failures = policy.failures();
        replace(&path, "version = 1\n[[rule]]\naction = \"allow\"\ncallers = [\"spiffe://example.org/intruder/\"]\n");
        bounded(async {
            while policy.failures() == failures {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let error = policy.last_error().unwrap().to_string();
        assert!(
            error.starts_with(&format!("{}:4:12: ", path.display())),
            "{error}"
        );
        for _ in 0..5 {
            assert_eq!(status(&intruder).await, 200, "round {round}");
        }
        replace(&path, &frontend_only);
        until(403).await;
    }
    // An unreadable file is no policy either.
    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(status(&intruder).await, 403);
    assert_eq!(status(&frontend).await, 200);

    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let failures = l.await.unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
    }
    assert!(
        ok.load(Ordering::Relaxed) > 10,
        "{} requests",
        ok.load(Ordering::Relaxed)
    );
    assert_eq!(policy.generation(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learn_then_enforce_the_learned_file() {
    let dir = TempDir::new("policy-learn");
    let pki = Pki::new("example.org");
    let learning = PolicyFile::learn();
    let server = serve(pki.server_config(), app(learning.clone())).await;
    let frontend = pki.http_client(FRONTEND, H2);
    let intruder = pki.http_client(INTRUDER, H1);
    for path in ["/whoami", "/orders/1", "/orders/2"] {
        assert_eq!(server.status(&frontend, path).await, 200, "{path}");
    }
    assert_eq!(server.status(&intruder, "/orders/3").await, 200);
    let learned = dir.0.join("learned.toml");
    learning.write_learned(&learned).unwrap();
    drop(server);

    let enforce = PolicyFile::open(&learned).unwrap();
    assert_eq!(enforce.current().len(), 2, "{}", learning.learned_policy());
    let server = serve(pki.server_config(), app(enforce)).await;
    let backend = pki.http_client(BACKEND, H2);
    for (client, path, want) in [
        (&frontend, "/whoami", 200),
        (&frontend, "/orders/77", 200),
        (&intruder, "/orders/78", 200),
        (&intruder, "/whoami", 403),
        // A caller never observed.
        (&backend, "/whoami", 403),
        (&backend, "/orders/1", 403),
    ] {
        assert_eq!(server.status(client, path).await, want, "{path}");
    }
}
