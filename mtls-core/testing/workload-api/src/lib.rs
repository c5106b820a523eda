//! A SPIFFE Workload API server for tests.
//!
//! SPIRE cannot be installed on our machines, so tests run this server
//! instead: it implements SPIFFE's public `workload.proto` (the protocol a
//! SPIRE agent speaks) with tonic, on a unix socket in a temporary
//! directory, and streams whatever X.509 material the test pushes with
//! [`WorkloadApiServer::set_x509`] to every open `FetchX509SVID` and
//! `FetchX509Bundles` stream, and whatever JWT bundles it pushes with
//! [`WorkloadApiServer::set_jwt_bundles`] to every `FetchJWTBundles`
//! stream. `FetchJWTSVID` answers with what the test's minter returns
//! ([`WorkloadApiServer::set_jwt_svids`]).
//!
//! Like a SPIRE agent it:
//! - requires the `workload.spiffe.io: true` request header and answers
//!   `InvalidArgument` without it;
//! - sends the current material when a stream opens, then every change;
//! - keys bundles by the SPIFFE ID of their trust domain
//!   (`spiffe://example.org`).
//!
//! Unlike a SPIRE agent it does not attest the caller, checks nothing in
//! what it serves (tests push broken material on purpose), keeps a stream
//! open and silent while it has no material yet (SPIRE answers
//! `PermissionDenied` "no identity issued": use
//! [`WorkloadApiServer::deny`] for that), answers `Unimplemented` to
//! `FetchJWTSVID` until a minter is set, and to `ValidateJWTSVID`.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use mtls_workload_api_testing::WorkloadApiServer;
//!
//! let agent = WorkloadApiServer::start().await?;
//! // Point the client at it: SPIFFE_ENDPOINT_SOCKET=<agent.endpoint()>
//! println!("{}", agent.endpoint());
//! // agent.set_x509(vec![(id, chain, pkcs8_key)], bundle, vec![]);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mtls_core::rustls::pki_types::CertificateDer;
use mtls_core::{SpiffeId, TrustDomain, X509Svid};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::{Request, Response};

/// The code generated from `proto/workload.proto` (messages, client and
/// server), as tonic-prost-build writes it.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

use proto::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};
use proto::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse,
    ValidateJwtsvidRequest, ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse,
    X509svid, X509svidRequest, X509svidResponse,
};

/// The status a [`JwtMinter`] fails with (tonic's).
pub use tonic::{Code, Status};

/// The request header every Workload API call must carry (SPIFFE Workload
/// Endpoint specification), with the value `true`.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// The message SPIRE answers when the security header is missing.
pub const MISSING_HEADER_MESSAGE: &str = "security header missing from request";

/// One X.509-SVID to serve: its SPIFFE ID, its chain (leaf first, DER) and
/// its PKCS#8 private key (DER).
pub type SvidEntry = (SpiffeId, Vec<CertificateDer<'static>>, Vec<u8>);

/// `svid` as an entry to serve.
pub fn svid_entry(svid: &X509Svid) -> SvidEntry {
    (
        svid.spiffe_id().clone(),
        svid.chain().to_vec(),
        svid.private_key().secret_der().to_vec(),
    )
}

/// Answers a `FetchJWTSVID`: given the audience and the SPIFFE ID asked
/// for (empty: the default identity), the SVIDs to return as (SPIFFE ID,
/// compact token) pairs, or the status to fail with.
pub type JwtMinter =
    dyn Fn(&[String], &str) -> Result<Vec<(String, String)>, Status> + Send + Sync + 'static;

/// A Workload API server on a unix socket in a temporary directory.
///
/// Dropping it stops the server, ends every open stream and removes the
/// directory.
pub struct WorkloadApiServer {
    dir: tempfile::TempDir,
    socket: PathBuf,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    state: watch::Sender<Snapshot>,
    open_streams: AtomicUsize,
    x509_svid_calls: AtomicU64,
    jwt_svid_calls: AtomicU64,
    jwt_minter: Mutex<Option<Arc<JwtMinter>>>,
}

#[derive(Clone, Default)]
struct Snapshot {
    x509: Option<X509svidResponse>,
    bundles: Option<X509BundlesResponse>,
    jwt_bundles: Option<JwtBundlesResponse>,
    denied: Option<String>,
    /// Bumped by `close_streams`: a stream ends when it changes.
    epoch: u64,
}

impl WorkloadApiServer {
    /// Binds a fresh socket in a new temporary directory and serves on it
    /// from a task of the current tokio runtime.
    pub async fn start() -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("workload-api-").tempdir()?;
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket)?;
        let (state, _) = watch::channel(Snapshot::default());
        let shared = Arc::new(Shared {
            state,
            open_streams: AtomicUsize::new(0),
            x509_svid_calls: AtomicU64::new(0),
            jwt_svid_calls: AtomicU64::new(0),
            jwt_minter: Mutex::new(None),
        });
        let service = SpiffeWorkloadApiServer::with_interceptor(
            Agent {
                shared: shared.clone(),
            },
            require_security_header,
        );
        let server = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await;
            if let Err(e) = served {
                eprintln!("workload api test server stopped: {e}");
            }
        });
        Ok(Self {
            dir,
            socket,
            shared,
            server,
        })
    }

    /// The socket's path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The endpoint as `SPIFFE_ENDPOINT_SOCKET` spells it:
    /// `unix:///path/to/agent.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Serves `svids` (the first is the default one), each with `bundle` as
    /// the bundle of its trust domain, and `federated` bundles of other
    /// trust domains, to every open and future X.509 stream.
    ///
    /// `FetchX509Bundles` streams get the bundle of the first SVID's trust
    /// domain and the federated ones. Nothing is checked: pushing broken
    /// material is how tests check that the client refuses it.
    pub fn set_x509(
        &self,
        svids: Vec<SvidEntry>,
        bundle: Vec<CertificateDer<'static>>,
        federated: Vec<(TrustDomain, Vec<CertificateDer<'static>>)>,
    ) {
        let bundle = concat_der(&bundle);
        let federated: HashMap<String, Vec<u8>> = federated
            .iter()
            .map(|(td, certs)| (td.id().to_string(), concat_der(certs)))
            .collect();
        let mut bundles = federated.clone();
        if let Some((id, _, _)) = svids.first() {
            bundles.insert(id.trust_domain().id().to_string(), bundle.clone());
        }
        let response = X509svidResponse {
            svids: svids
                .into_iter()
                .map(|(id, chain, key)| X509svid {
                    spiffe_id: id.to_string(),
                    x509_svid: concat_der(&chain),
                    x509_svid_key: key,
                    bundle: bundle.clone(),
                    hint: String::new(),
                })
                .collect(),
            crl: Vec::new(),
            federated_bundles: federated,
        };
        self.shared.state.send_modify(|state| {
            state.x509 = Some(response);
            state.bundles = Some(X509BundlesResponse {
                crl: Vec::new(),
                bundles,
            });
        });
    }

    /// Serves `response` as it is on `FetchX509SVID` streams (for responses
    /// `set_x509` cannot make); `FetchX509Bundles` streams are unchanged.
    pub fn set_x509_response(&self, response: X509svidResponse) {
        self.shared
            .state
            .send_modify(|state| state.x509 = Some(response));
    }

    /// Serves `bundles` (each trust domain's JWKS document, as is) to every
    /// open and future `FetchJWTBundles` stream, keyed by the trust
    /// domain's SPIFFE ID as SPIRE keys them. Nothing is checked.
    pub fn set_jwt_bundles(&self, bundles: Vec<(TrustDomain, Vec<u8>)>) {
        let response = JwtBundlesResponse {
            bundles: bundles
                .into_iter()
                .map(|(td, jwks)| (td.id().to_string(), jwks))
                .collect(),
        };
        self.set_jwt_bundles_response(response);
    }

    /// Serves `response` as it is on `FetchJWTBundles` streams (for
    /// responses `set_jwt_bundles` cannot make).
    pub fn set_jwt_bundles_response(&self, response: JwtBundlesResponse) {
        self.shared
            .state
            .send_modify(|state| state.jwt_bundles = Some(response));
    }

    /// Answers `FetchJWTSVID` with `mint` (the audience and the SPIFFE ID
    /// asked for in, the (SPIFFE ID, token) pairs or a status out).
    /// Whatever it returns is sent as is: minting broken tokens is how
    /// tests check that the client refuses them. A denial
    /// ([`deny`](Self::deny)) answers `PermissionDenied` first.
    pub fn set_jwt_svids<F>(&self, mint: F)
    where
        F: Fn(&[String], &str) -> Result<Vec<(String, String)>, Status> + Send + Sync + 'static,
    {
        *self
            .shared
            .jwt_minter
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(mint));
    }

    /// How many `FetchJWTSVID` calls have been accepted since the start
    /// (past the header check).
    pub fn jwt_svid_calls(&self) -> u64 {
        self.shared.jwt_svid_calls.load(Ordering::SeqCst)
    }

    /// With `Some(message)`, answers every open and new stream with
    /// `PermissionDenied` and `message` (SPIRE says "no identity issued"
    /// when the workload has no registration entry); `None` serves again.
    pub fn deny(&self, message: Option<&str>) {
        self.shared
            .state
            .send_modify(|state| state.denied = message.map(str::to_owned));
    }

    /// Ends every open stream (as an agent restart does); clients reconnect
    /// and get the current material on their new streams.
    pub fn close_streams(&self) {
        self.shared
            .state
            .send_modify(|state| state.epoch = state.epoch.wrapping_add(1));
    }

    /// How many streams (any RPC) are open now.
    pub fn open_streams(&self) -> usize {
        self.shared.open_streams.load(Ordering::SeqCst)
    }

    /// How many `FetchX509SVID` calls have been accepted since the start
    /// (past the header check).
    pub fn x509_svid_calls(&self) -> u64 {
        self.shared.x509_svid_calls.load(Ordering::SeqCst)
    }
}

impl Drop for WorkloadApiServer {
    fn drop(&mut self) {
        self.close_streams();
        self.server.abort();
    }
}

impl fmt::Debug for WorkloadApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadApiServer")
            .field("dir", &self.dir.path())
            .field("socket", &self.socket)
            .field("open_streams", &self.open_streams())
            .finish_non_exhaustive()
    }
}

fn concat_der(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    certs
        .iter()
        .flat_map(|c| c.as_ref().iter().copied())
        .collect()
}

fn require_security_header(request: Request<()>) -> Result<Request<()>, Status> {
    match request.metadata().get(SECURITY_HEADER) {
        Some(value) if value == "true" => Ok(request),
        _ => Err(Status::invalid_argument(MISSING_HEADER_MESSAGE)),
    }
}

struct Agent {
    shared: Arc<Shared>,
}

/// Decrements the open stream count when a stream's task ends.
struct OpenStream(Arc<Shared>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

type Stream<T> = ReceiverStream<Result<T, Status>>;

impl Agent {
    /// A stream of `pick(state)` sent at open and at every change, until
    /// `close_streams`, a denial, the client leaving or the server stopping.
    fn stream<T>(&self, pick: fn(&Snapshot) -> Option<T>) -> Result<Stream<T>, Status>
    where
        T: Clone + PartialEq + Send + 'static,
    {
        let mut state = self.shared.state.subscribe();
        let (epoch, denied) = {
            let now = state.borrow_and_update();
            (now.epoch, now.denied.clone())
        };
        if let Some(message) = denied {
            return Err(Status::permission_denied(message));
        }
        let (tx, rx) = mpsc::channel(4);
        self.shared.open_streams.fetch_add(1, Ordering::SeqCst);
        let open = OpenStream(self.shared.clone());
        tokio::spawn(async move {
            let _open = open;
            let mut last: Option<T> = None;
            loop {
                let snapshot = state.borrow_and_update().clone();
                if snapshot.epoch != epoch {
                    return;
                }
                if let Some(message) = snapshot.denied {
                    let _ = tx.send(Err(Status::permission_denied(message))).await;
                    return;
                }
                if let Some(item) = pick(&snapshot) {
                    if last.as_ref() != Some(&item) {
                        if tx.send(Ok(item.clone())).await.is_err() {
                            return;
                        }
                        last = Some(item);
                    }
                }
                tokio::select! {
                    changed = state.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = tx.closed() => return,
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for Agent {
    type FetchX509SVIDStream = Stream<X509svidResponse>;
    type FetchX509BundlesStream = Stream<X509BundlesResponse>;
    type FetchJWTBundlesStream = Stream<JwtBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        _request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        self.shared.x509_svid_calls.fetch_add(1, Ordering::SeqCst);
        self.stream(|s| s.x509.clone()).map(Response::new)
    }

    async fn fetch_x509_bundles(
        &self,
        _request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        self.stream(|s| s.bundles.clone()).map(Response::new)
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        self.shared.jwt_svid_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(message) = self.shared.state.borrow().denied.clone() {
            return Err(Status::permission_denied(message));
        }
        let minter = self
            .shared
            .jwt_minter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(mint) = minter else {
            return Err(Status::unimplemented(
                "JWT-SVIDs are not served by this test server: no minter set",
            ));
        };
        let request = request.into_inner();
        let svids = mint(&request.audience, &request.spiffe_id)?
            .into_iter()
            .map(|(spiffe_id, svid)| Jwtsvid {
                spiffe_id,
                svid,
                hint: String::new(),
            })
            .collect();
        Ok(Response::new(JwtsvidResponse { svids }))
    }

    async fn fetch_jwt_bundles(
        &self,
        _request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        self.stream(|s| s.jwt_bundles.clone()).map(Response::new)
    }

    async fn validate_jwtsvid(
        &self,
        _request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        Err(Status::unimplemented(
            "JWT-SVIDs are not served by this test server",
        ))
    }
}
