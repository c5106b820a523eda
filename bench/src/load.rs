//! The load client of the request path: keep-alive HTTP/1.1 connections
//! and closed-loop requests in timed windows.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use mtls_core::rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::fixture::SERVER_NAME;
use crate::{BoxError, Fixture, ServerThread};

/// One timed window of keep-alive requests against one stack.
#[derive(Debug, Default, Clone)]
pub struct LoadWindow {
    /// Requests answered.
    pub requests: u64,
    /// The window's wall-clock length.
    pub elapsed: Duration,
    /// The server thread's CPU time in the window.
    pub server_cpu_ns: u64,
    /// Each request's latency.
    pub latencies_us: Vec<f64>,
}

impl LoadWindow {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Server CPU per request.
    pub fn server_ns_per_request(&self) -> f64 {
        self.server_cpu_ns as f64 / self.requests.max(1) as f64
    }
}

type Sender = SendRequest<Empty<Bytes>>;

async fn open(addr: SocketAddr, tls: Option<&TlsConnector>) -> Result<Sender, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    match tls {
        Some(connector) => {
            let stream = connector
                .connect(ServerName::try_from(SERVER_NAME)?, tcp)
                .await?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            Ok(sender)
        }
        None => {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            Ok(sender)
        }
    }
}

async fn request(sender: &mut Sender) -> Result<(), BoxError> {
    sender.ready().await?;
    let req = Request::get("/hello")
        .header(http::header::HOST, "bench")
        .body(Empty::new())?;
    let response = sender.send_request(req).await?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("GET /hello answered {}", response.status()).into());
    }
    black_box(response.into_body().collect().await?);
    Ok(())
}

/// Opens `connections` keep-alive connections to `server`, warms them up,
/// then times `window` of closed-loop requests on all of them at once.
pub fn load_window(
    runtime: &tokio::runtime::Runtime,
    server: &ServerThread,
    tls: Option<&TlsConnector>,
    connections: usize,
    warmup: usize,
    window: Duration,
) -> Result<LoadWindow, BoxError> {
    runtime.block_on(async {
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections {
            senders.push(open(server.addr, tls).await?);
        }
        for sender in &mut senders {
            for _ in 0..warmup {
                request(sender).await?;
            }
        }
        let cpu_before = server.cpu_ns()?;
        let start = Instant::now();
        let deadline = start + window;
        let mut tasks = tokio::task::JoinSet::new();
        for mut sender in senders {
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(65_536);
                loop {
                    let t = Instant::now();
                    if t >= deadline {
                        break;
                    }
                    request(&mut sender).await?;
                    latencies.push(t.elapsed().as_secs_f64() * 1e6);
                }
                Ok::<_, BoxError>(latencies)
            });
        }
        let mut out = LoadWindow::default();
        while let Some(done) = tasks.join_next().await {
            let latencies = done??;
            out.requests += latencies.len() as u64;
            out.latencies_us.extend(latencies);
        }
        out.elapsed = start.elapsed();
        out.server_cpu_ns = server.cpu_ns()?.saturating_sub(cpu_before);
        Ok(out)
    })
}

/// The client config of the request-path clients: ours (it presents the
/// client SVID when asked, and checks the server's SPIFFE ID).
pub fn request_client(fx: &Fixture) -> Result<TlsConnector, BoxError> {
    let side = fx.ours(false, &[b"http/1.1"])?;
    Ok(TlsConnector::from(side.client))
}
