//! reqwest (feature `reqwest`) against a real mtls-tower axum server over
//! loopback: HTTP/2 by ALPN, the server's SPIFFE ID from the response, SVID
//! rotation seen by the server, impostor servers refused by our verifier.
//!
//! `cargo test -p mtls-tower --features reqwest --test reqwest`

#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use axum::routing::get;
use axum::Router;
use common::*;
use mtls_core::{authorize, MtlsServerConfig, SharedSvid, X509Svid};
use mtls_tower::{reqwest_builder, reqwest_client, reqwest_server_id, Peer, PeerId};

fn serial(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial_as_string()
}

/// `/whoami`: the caller's ID; `/serial`: the serial of the leaf it presented.
fn app() -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|PeerId(id): PeerId| async move { id.to_string() }),
        )
        .route(
            "/serial",
            get(|Peer(p): Peer| async move { serial(p.leaf()) }),
        )
}

fn server_config(pki: &Pki, svid: X509Svid) -> MtlsServerConfig {
    MtlsServerConfig::builder(svid, pki.bundles())
        .authorizer(authorize::member_of(pki.td.clone()))
        .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn calls_a_real_server_over_h2_and_sees_its_spiffe_id() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        // No ALPN in the config: reqwest_builder offers h2 then http/1.1.
        let client = reqwest_client(&pki.client_config(pki.svid(FRONTEND), &[])).unwrap();
        let url = format!("https://{}/whoami", server.addr);
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(reqwest_server_id(&response).unwrap(), id(BACKEND));
        assert_eq!(response.text().await.unwrap(), FRONTEND);

        // An ALPN list in the config is kept: http/1.1 only.
        let client = reqwest_client(&pki.client_config(pki.svid(FRONTEND), H1)).unwrap();
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_11);
        assert_eq!(response.text().await.unwrap(), FRONTEND);

        // Never plaintext: an http:// URL is an error, nothing is sent.
        let before = server.stats.accepted();
        let client = reqwest_client(&pki.client_config(pki.svid(FRONTEND), &[])).unwrap();
        let plain = format!("http://{}/whoami", server.addr);
        assert!(client.get(&plain).send().await.is_err());
        assert_eq!(server.stats.accepted(), before);
    })
    .await;
}

#[tokio::test]
async fn a_rotated_client_svid_is_presented_on_the_next_connection() {
    bounded(async {
        let (pki, server) = backend(app()).await;
        let first = pki.svid(FRONTEND);
        let svids = SharedSvid::new(first.clone());
        let config = client_config(svids.clone(), pki.bundles(), &[]);
        // No pooling: each request opens a connection.
        let client = reqwest_builder(&config)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let url = format!("https://{}/serial", server.addr);
        let seen = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(seen, serial(first.leaf()));

        let second = pki.svid(FRONTEND);
        assert_ne!(serial(second.leaf()), serial(first.leaf()));
        svids.set(second.clone());
        let seen = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(seen, serial(second.leaf()), "the server saw the new SVID");
    })
    .await;
}

#[tokio::test]
async fn impostor_servers_are_refused_by_our_verifier() {
    bounded(async {
        let pki = Pki::new("example.org");
        // The client expects the backend (authorize::exact(BACKEND)).
        let client = reqwest_client(&pki.client_config(pki.svid(FRONTEND), &[])).unwrap();

        // Same CA, another SPIFFE ID: the authorizer refuses it (a
        // webpki or platform verifier would not know about SPIFFE IDs).
        let intruder = serve(server_config(&pki, pki.svid(INTRUDER)), app()).await;
        // The backend's ID from another CA: its chain does not verify.
        let rogue = Pki::new("example.org");
        let impostor = serve(server_config(&rogue, rogue.svid(BACKEND)), app()).await;
        for (name, server) in [("intruder", &intruder), ("impostor", &impostor)] {
            let err = client
                .get(format!("https://{}/whoami", server.addr))
                .send()
                .await
                .unwrap_err();
            assert!(err.is_connect(), "{name}: {err:?}");
            assert_eq!(server.stats.accepted(), 0, "{name}");
        }

        // The real backend is fine with the same client.
        let backend = serve(pki.server_config(), app()).await;
        let response = client
            .get(format!("https://{}/whoami", backend.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    })
    .await;
}

/// What `reqwest_builder` relies on: reqwest refuses a TLS config it cannot
/// use at `build()`, rather than fall back to a verifier of its own.
#[test]
fn reqwest_refuses_a_foreign_tls_config_loudly() {
    let err = reqwest::Client::builder()
        .use_preconfigured_tls(42_u8)
        .build()
        .unwrap_err();
    assert!(err.is_builder(), "{err:?}");
}
