//! Listener robustness over loopback: stalled, silent, half-open and
//! non-TLS clients must never block an honest client, handshakes are
//! dropped at the timeout, and the cap on concurrent handshakes holds.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use common::*;
use mtls_core::rustls;
use mtls_tower::{ListenerConfig, MtlsConnector, MtlsListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn app() -> Router {
    whoami_router()
}

/// A loopback TCP listener with a backlog large enough for the tests' bursts.
fn tcp_listener() -> tokio::net::TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(4096).unwrap()
}

async fn good_request(pki: &Pki, server: &Server) {
    let client = pki.http_client(FRONTEND, H2);
    let got = fetch(&client, server.url("/whoami")).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body, format!("{FRONTEND}\n"));
}

/// Whether the server has closed `stream` (EOF or reset), waiting up to
/// `limit`.
async fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An alert, perhaps: keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

const SILENT: usize = 1000;
const PARTIAL: usize = 50;
const WHOLE_HELLO: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_do_not_block_and_are_timed_out() {
    bounded_by(Duration::from_secs(60), async {
        let pki = Pki::new("example.org");
        let timeout = Duration::from_secs(2);
        let server = serve_on(
            tcp_listener(),
            pki.server_config(),
            ListenerConfig::default().handshake_timeout(timeout),
            app(),
        );
        let hello = client_hello_bytes(raw_client_config(
            Some(&pki.svid(FRONTEND)),
            rustls::DEFAULT_VERSIONS,
            H1,
        ));
        assert!(
            hello.len() > 100,
            "a real ClientHello: {} bytes",
            hello.len()
        );
        assert_eq!(hello[0], 0x16, "a handshake record");

        let opening = Instant::now();
        let mut silent = Vec::with_capacity(SILENT);
        for _ in 0..SILENT {
            silent.push(TcpStream::connect(server.addr).await.unwrap());
        }
        let mut partial = Vec::with_capacity(PARTIAL);
        for _ in 0..PARTIAL {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            stream.write_all(&hello[..20]).await.unwrap();
            partial.push(stream);
        }
        // Clients that send a whole ClientHello, get the server's first
        // flight, and never answer it.
        for _ in 0..WHOLE_HELLO {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            stream.write_all(&hello).await.unwrap();
            partial.push(stream);
        }
        // The server has taken every one of them into a handshake.
        let total = SILENT + PARTIAL + WHOLE_HELLO;
        assert!(
            eventually(TEST_TIMEOUT, || server.stats.handshakes_in_flight()
                >= total)
            .await
        );
        let opened = opening.elapsed();
        assert!(
            opened < timeout,
            "opening {total} connections took {opened:?}: too slow for this test to mean anything"
        );

        // While they all stall, an honest client is served promptly.
        let start = Instant::now();
        good_request(&pki, &server).await;
        let took = start.elapsed();
        eprintln!("opened {total} stalled connections in {opened:?}; honest request took {took:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(
            server.stats.handshakes_in_flight() >= total,
            "the stalled clients were all still in their handshakes meanwhile"
        );
        assert_eq!(server.stats.accepted(), 1);

        // After the timeout every one of them is dropped.
        assert!(eventually(TEST_TIMEOUT, || server.stats.handshakes_in_flight() == 0).await);
        assert!(
            opening.elapsed() >= timeout,
            "none may be dropped before the timeout"
        );
        assert!(
            server.stats.timed_out() >= total as u64,
            "timed out: {}",
            server.stats.timed_out()
        );
        assert_eq!(server.stats.failed(), 0);
        // The server really closed them (no descriptors left behind).
        for stream in silent.iter_mut().step_by(97).chain(partial.iter_mut()) {
            assert!(closed_by_server(stream, Duration::from_secs(5)).await);
        }

        // And it still serves.
        good_request(&pki, &server).await;
        assert_eq!(server.stats.accepted(), 2);
        assert_eq!(server.stats.handshakes_in_flight(), 0);
    })
    .await;
}

/// [`app`] served with `pki`'s server config and a handshake timeout.
async fn serve_timing_out(pki: &Pki, handshake_timeout: Duration) -> Server {
    let config = ListenerConfig::default().handshake_timeout(handshake_timeout);
    serve_with(pki.server_config(), config, app()).await
}

#[tokio::test]
async fn trickling_client_is_dropped_at_the_timeout() {
    bounded(async {
        let pki = Pki::new("example.org");
        let server = serve_timing_out(&pki, Duration::from_secs(1)).await;
        let hello = client_hello_bytes(raw_client_config(
            Some(&pki.svid(FRONTEND)),
            rustls::DEFAULT_VERSIONS,
            H1,
        ));
        // One byte every 50 ms: the whole hello would take many seconds,
        // and every byte is progress. The timeout bounds the whole
        // handshake, not the idle time between reads.
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let mut closed = false;
        for byte in &hello {
            if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if server.stats.timed_out() == 1 {
                closed = true;
                break;
            }
        }
        assert!(closed, "the hello ({} bytes) was sent in full", hello.len());
        assert!(closed_by_server(&mut stream, Duration::from_secs(5)).await);
        assert_eq!(server.stats.timed_out(), 1);
        assert_eq!(server.stats.handshakes_in_flight(), 0);
        good_request(&pki, &server).await;
    })
    .await;
}

#[tokio::test]
async fn clients_that_close_at_once_do_not_disturb_others() {
    bounded(async {
        let pki = Pki::new("example.org");
        let server = serve_timing_out(&pki, Duration::from_secs(10)).await;
        // An honest client with a long-lived HTTP/2 connection.
        let client = pki.http_client(FRONTEND, H2);
        let got = fetch(&client, server.url("/whoami")).await.unwrap();
        assert_eq!(got.status, 200);

        let hello = client_hello_bytes(raw_client_config(
            Some(&pki.svid(FRONTEND)),
            rustls::DEFAULT_VERSIONS,
            H1,
        ));
        for i in 0..100 {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            match i % 3 {
                0 => {}
                1 => stream.write_all(&hello[..20]).await.unwrap(),
                _ => stream.write_all(&hello).await.unwrap(),
            }
            drop(stream);
        }
        // Each ends as a failed handshake at once, not at the timeout.
        assert!(
            eventually(TEST_TIMEOUT, || server.stats.failed() == 100
                && server.stats.handshakes_in_flight() == 0)
            .await
        );
        assert_eq!(server.stats.timed_out(), 0);

        // The existing connection and new ones are fine.
        let got = fetch(&client, server.url("/whoami")).await.unwrap();
        assert_eq!(got.status, 200);
        good_request(&pki, &server).await;
        assert_eq!(server.stats.accepted(), 2);
    })
    .await;
}

#[tokio::test]
async fn non_tls_client_is_refused_at_once() {
    // Well under the 10 s default handshake timeout.
    bounded_by(Duration::from_secs(5), async {
        let (pki, server) = backend(app()).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /whoami HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        assert!(
            !String::from_utf8_lossy(&answer).contains("HTTP/1.1"),
            "no plaintext HTTP answer"
        );
        assert!(eventually(TEST_TIMEOUT, || server.stats.failed() == 1).await);
        assert_eq!(server.stats.timed_out(), 0);
        good_request(&pki, &server).await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_handshakes_are_capped() {
    bounded(async {
        let pki = Pki::new("example.org");
        let cap = 4;
        let server = serve_on(
            tcp_listener(),
            pki.server_config(),
            ListenerConfig::default()
                .handshake_timeout(Duration::from_millis(700))
                .max_concurrent_handshakes(cap),
            app(),
        );
        let stats = server.stats.clone();
        let max_seen = Arc::new(AtomicUsize::new(0));
        let sampler = {
            let max_seen = max_seen.clone();
            let stats = stats.clone();
            tokio::spawn(async move {
                loop {
                    max_seen.fetch_max(stats.handshakes_in_flight(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let mut silent = Vec::new();
        for _ in 0..10 {
            silent.push(TcpStream::connect(server.addr).await.unwrap());
        }
        assert!(eventually(TEST_TIMEOUT, || stats.handshakes_in_flight() == cap).await);
        // The honest client queues behind the stalled ones (in the kernel's
        // backlog) and is served once they time out: later, but served.
        good_request(&pki, &server).await;
        sampler.abort();
        assert!(
            max_seen.load(Ordering::Relaxed) <= cap,
            "in flight: {} > cap {cap}",
            max_seen.load(Ordering::Relaxed)
        );
        // The last stalled clients were accepted with the honest one and
        // time out after it is served.
        assert!(eventually(TEST_TIMEOUT, || stats.timed_out() == 10).await);
        assert_eq!(stats.accepted(), 1);
        assert_eq!(stats.failed(), 0);
        // A cap of 0 is raised to 1.
        assert_eq!(
            ListenerConfig::default()
                .max_concurrent_handshakes(0)
                .max_concurrent_handshakes,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn accept_yields_only_authenticated_connections() {
    bounded(async {
        let pki = Pki::new("example.org");
        let other = Pki::new("other.org");
        let mut listener = MtlsListener::bind("127.0.0.1:0", pki.server_config())
            .await
            .unwrap();
        let addr = listener.local_addr();
        let url: http::Uri = format!("https://{addr}/").parse().unwrap();

        // Refused peers first: they never come out of accept.
        let stranger = MtlsConnector::new(client_config(
            other.svid("spiffe://other.org/frontend"),
            pki.bundles(),
            H1,
        ));
        let anonymous = MtlsConnector::new(client_config(NoSvid, pki.bundles(), H1));
        for connector in [&stranger, &anonymous] {
            if let Ok(stream) = connector.connect(&url).await {
                // TLS 1.3: the client may finish before the server refuses;
                // reading shows the refusal.
                let mut tls = stream.into_inner();
                let mut buf = [0u8; 16];
                assert!(matches!(tls.read(&mut buf).await, Ok(0) | Err(_)));
            }
        }
        let stats = listener.stats();
        assert!(eventually(TEST_TIMEOUT, || stats.failed() == 2).await);

        let connector = MtlsConnector::new(pki.client_config(pki.svid(FRONTEND), H1));
        let client = connector.connect(&url).await.unwrap();
        assert_eq!(client.peer_identity().spiffe_id().as_str(), BACKEND);
        let client_addr = client.into_inner().get_ref().0.local_addr().unwrap();

        let stream = listener.accept().await.unwrap();
        assert_eq!(stream.peer_identity().spiffe_id().as_str(), FRONTEND);
        assert_eq!(stream.connect_info().remote_addr, client_addr);
        assert_eq!(
            stream.get_ref().get_ref().1.alpn_protocol(),
            Some(&b"http/1.1"[..])
        );
        assert_eq!(stats.accepted(), 1);

        // The listener is also a Stream of connections (for tonic).
        let second = connector.connect(&url).await.unwrap();
        let next =
            std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut listener), cx))
                .await
                .unwrap()
                .unwrap();
        let second_addr = second.into_inner().get_ref().0.local_addr().unwrap();
        assert_eq!(next.connect_info().remote_addr, second_addr);
        assert_eq!(next.peer_identity().spiffe_id().as_str(), FRONTEND);
    })
    .await;
}

#[tokio::test]
async fn a_bind_failure_names_the_address() {
    let pki = Pki::new("example.org");
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = MtlsListener::bind(addr.as_str(), pki.server_config())
        .await
        .expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr), "{err}");
}
