//! The servers of the request path (ours, raw rustls, plaintext), each on
//! its own thread, and the application alone, called in process.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use http::{Method, Request};
use mtls_core::authorize;
use mtls_tower::{AuthorizeLayer, MtlsConnectInfo, MtlsListener, RoutePolicy};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::authz::rule_peer;
use crate::stats::kept;
use crate::{rotate, BoxError, Fixture};

/// The server stacks compared on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// axum + `MtlsListener` + `AuthorizeLayer`, connect info on.
    Ours,
    /// axum over raw rustls (tokio-rustls), server authentication only.
    RawTls,
    /// axum over plain TCP.
    Plain,
}

impl Stack {
    /// Every stack, in the order of the report.
    pub const ALL: [Stack; 3] = [Stack::Ours, Stack::RawTls, Stack::Plain];

    /// How the report names the stack.
    pub fn label(self) -> &'static str {
        match self {
            Stack::Ours => "axum + MtlsListener + AuthorizeLayer",
            Stack::RawTls => "axum + raw rustls (server auth only)",
            Stack::Plain => "axum, plaintext",
        }
    }
}

async fn hello() -> &'static str {
    "hello\n"
}

/// The application every stack serves.
fn router() -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/health", get(hello))
}

/// The policy of our stack: a realistic handful of rules.
fn request_policy(fx: &Fixture) -> Result<RoutePolicy, BoxError> {
    Ok(RoutePolicy::builder()
        .route_methods([Method::GET], "/health", authorize::any())
        .route("/admin", authorize::exact(rule_peer(0)?))
        .route(
            "/hello",
            authorize::one_of([fx.client.spiffe_id().clone(), rule_peer(1)?]),
        )
        .build()?)
}

/// A listener that handshakes raw rustls in `accept` (good enough here:
/// connections are opened before anything is timed).
struct RawTlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for RawTlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A server on its own thread and single-threaded runtime, so that its CPU
/// time is that thread's.
#[derive(Debug)]
pub struct ServerThread {
    /// Where it listens.
    pub addr: SocketAddr,
    schedstat: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Starts `stack` on `fx`'s certificates; returns once it listens.
    pub fn start(fx: &Fixture, stack: Stack) -> Result<Self, BoxError> {
        let alpn: &[&[u8]] = &[b"http/1.1"];
        let ours = match stack {
            Stack::Ours => Some((fx.ours(false, alpn)?, request_policy(fx)?)),
            _ => None,
        };
        let raw = match stack {
            Stack::RawTls => Some(Arc::new(fx.raw_server(false, false, alpn)?)),
            _ => None,
        };
        let (ready_tx, ready_rx) =
            std::sync::mpsc::channel::<Result<(SocketAddr, PathBuf), String>>();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("bench-server-{stack:?}"))
            .spawn(move || {
                let fail = |ready_tx: &std::sync::mpsc::Sender<_>, e: String| {
                    let _ = ready_tx.send(Err(e));
                };
                let tid = match std::fs::read_link("/proc/thread-self") {
                    Ok(link) => PathBuf::from("/proc").join(link).join("schedstat"),
                    Err(e) => return fail(&ready_tx, format!("/proc/thread-self: {e}")),
                };
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return fail(&ready_tx, e.to_string()),
                };
                runtime.block_on(async move {
                    let tcp = match TcpListener::bind("127.0.0.1:0").await {
                        Ok(tcp) => tcp,
                        Err(e) => return fail(&ready_tx, e.to_string()),
                    };
                    let addr = match tcp.local_addr() {
                        Ok(addr) => addr,
                        Err(e) => return fail(&ready_tx, e.to_string()),
                    };
                    let serve = async move {
                        match (ours, raw) {
                            (Some((side, policy)), _) => {
                                let Some((server, _)) = side.ours else {
                                    return;
                                };
                                let Ok(listener) = MtlsListener::new(
                                    tcp,
                                    server,
                                    mtls_tower::ListenerConfig::default(),
                                ) else {
                                    return;
                                };
                                let app = router().layer(AuthorizeLayer::new(policy));
                                let _ = axum::serve(
                                    listener,
                                    app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
                                )
                                .into_future()
                                .await;
                            }
                            (None, Some(config)) => {
                                let listener = RawTlsListener {
                                    tcp,
                                    acceptor: TlsAcceptor::from(config),
                                };
                                let _ = axum::serve(listener, router().into_make_service())
                                    .into_future()
                                    .await;
                            }
                            (None, None) => {
                                let _ = axum::serve(tcp, router().into_make_service())
                                    .into_future()
                                    .await;
                            }
                        }
                    };
                    let _ = ready_tx.send(Ok((addr, tid)));
                    tokio::select! {
                        _ = serve => {}
                        _ = shutdown_rx => {}
                    }
                });
            })?;
        let (addr, schedstat) = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| format!("the {stack:?} server did not start: {e}"))??;
        Ok(Self {
            addr,
            schedstat,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// CPU time of the server thread so far, in ns.
    pub fn cpu_ns(&self) -> Result<u64, BoxError> {
        let text = std::fs::read_to_string(&self.schedstat)?;
        Ok(text
            .split_whitespace()
            .next()
            .ok_or("empty schedstat")?
            .parse()?)
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls a future that completes without waiting (the in-process router
/// calls here never wait).
fn now_or_never<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// The application alone, in process, with no network: ours (the
/// connect-info extension axum adds per request, then `AuthorizeLayer`) and
/// bare (the same router without either).
#[allow(missing_debug_implementations)] // holds routers, which are not Debug
type IntoAxumResponse =
    fn(http::Response<mtls_tower::ResponseBody<axum::body::Body>>) -> axum::response::Response;

/// The whole router behind one layer, with the response body axum's
/// `serve` wants (`ResponseBody::into_axum_body`: no second boxing).
type WholeApp = tower::util::MapResponse<mtls_tower::Authorize<Router>, IntoAxumResponse>;

fn into_axum_response(
    response: http::Response<mtls_tower::ResponseBody<axum::body::Body>>,
) -> axum::response::Response {
    response.map(mtls_tower::ResponseBody::into_axum_body)
}

/// The in-process request path: the same router bare, with an
/// `AuthorizeLayer` on every route, and with one around it.
pub struct LayerKit {
    info: MtlsConnectInfo,
    ours: Router,
    /// The layer around the whole router (one layer, before routing),
    /// instead of `Router::layer` (a layer on every route).
    whole: WholeApp,
    bare: Router,
}

impl LayerKit {
    /// Both routers, each checked to answer 200 at once.
    pub fn new(fx: &Fixture) -> Result<Self, BoxError> {
        let kit = Self {
            info: MtlsConnectInfo::new(
                fx.client_identity()?,
                SocketAddr::from(([127, 0, 0, 1], 40000)),
            ),
            ours: router().layer(AuthorizeLayer::new(request_policy(fx)?)),
            whole: tower::ServiceExt::<Request<axum::body::Body>>::map_response(
                tower::Layer::layer(&AuthorizeLayer::new(request_policy(fx)?), router()),
                into_axum_response as IntoAxumResponse,
            ),
            bare: router(),
        };
        if !kit.call(true) || !kit.call(false) || !kit.call_whole() {
            return Err("the in-process request was not answered 200 at once".into());
        }
        Ok(kit)
    }

    /// One request through ours (`true`) or bare; whether it got 200.
    pub fn call(&self, ours: bool) -> bool {
        let mut req = Request::get("/hello")
            .body(axum::body::Body::empty())
            .unwrap_or_default();
        let app = if ours {
            req.extensions_mut().insert(ConnectInfo(self.info.clone()));
            &self.ours
        } else {
            &self.bare
        };
        match now_or_never(app.clone().oneshot(req)) {
            Some(Ok(response)) => response.status() == http::StatusCode::OK,
            Some(Err(never)) => match never {},
            None => false,
        }
    }
}

impl std::fmt::Debug for LayerKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerKit").finish_non_exhaustive()
    }
}

impl LayerKit {
    /// One request through the layer wrapped around the whole router;
    /// whether it got 200.
    pub fn call_whole(&self) -> bool {
        let mut req = Request::get("/hello")
            .body(axum::body::Body::empty())
            .unwrap_or_default();
        req.extensions_mut().insert(ConnectInfo(self.info.clone()));
        match now_or_never(self.whole.clone().oneshot(req)) {
            Some(Ok(response)) => response.status() == http::StatusCode::OK,
            Some(Err(never)) => match never {},
            None => false,
        }
    }
}

/// ns per request through the application alone ([`LayerKit`]): ours
/// with `Router::layer` (a layer on every route), ours around the whole
/// router, and bare; the per-round figures of each.
pub fn measure_layer(fx: &Fixture, rounds: usize, iters: u64) -> Result<[Vec<f64>; 3], BoxError> {
    let kit = LayerKit::new(fx)?;
    let per_round = rotate(
        rounds,
        iters,
        [
            &mut kept(|| kit.call(true)),
            &mut kept(|| kit.call_whole()),
            &mut kept(|| kit.call(false)),
        ],
    );
    Ok(per_round)
}
