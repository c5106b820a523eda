//! Memory per idle connection: a fresh server process (this program run
//! again) holds connections; its resident memory is read before and after.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use mtls_core::authorize;
use mtls_core::rustls;
use mtls_core::{BundleSet, MtlsServerConfig, X509Bundle, X509Svid};
use mtls_tower::MtlsListener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::fixture::SERVER_NAME;
use crate::{BoxError, Fixture};

const ENV_CHAIN: &str = "MTLS_BENCH_SERVER_CHAIN_PEM";
const ENV_KEY: &str = "MTLS_BENCH_SERVER_KEY_PEM";
const ENV_BUNDLE: &str = "MTLS_BENCH_BUNDLE_PEM";

/// The resident memory of this process, in KiB (VmRSS of /proc/self/status).
pub fn vm_rss_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed VmRSS")?
        .parse()?)
}

/// One measurement: a fresh server process (`kind`: "ours" or "raw")
/// accepts `warm` connections, reads its VmRSS, accepts `n` more (each
/// handshaken and used for one byte each way, then left idle), and reads
/// its VmRSS again. Returns bytes per connection.
pub fn memory_per_connection(
    fx: &Fixture,
    kind: &str,
    n: usize,
    warm: usize,
) -> Result<f64, BoxError> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--memory-server", kind])
        .args(["--connections", &n.to_string(), "--warm", &warm.to_string()])
        .env(ENV_CHAIN, fx.server.chain_pem())
        .env(ENV_KEY, fx.server.private_key_pem())
        .env(ENV_BUNDLE, mtls_core::to_pem("CERTIFICATE", &fx.root))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let result = (|| -> Result<f64, BoxError> {
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().ok_or("the memory server said nothing")??;
        let port: u16 = first
            .strip_prefix("port ")
            .ok_or_else(|| format!("unexpected line from the memory server: {first}"))?
            .parse()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let connector = TlsConnector::from(fx.ours(false, &[])?.client);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let held = runtime.block_on(async {
            let mut held = Vec::with_capacity(warm + n);
            for _ in 0..warm + n {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let mut tls = connector
                    .connect(ServerName::try_from(SERVER_NAME)?, tcp)
                    .await?;
                tls.write_all(b"p").await?;
                tls.flush().await?;
                let mut pong = [0u8; 1];
                tls.read_exact(&mut pong).await?;
                held.push(tls);
            }
            Ok::<_, BoxError>(held)
        })?;
        let report = lines.next().ok_or("the memory server stopped")??;
        drop(held);
        let mut parts = report.split_whitespace();
        if parts.next() != Some("rss") {
            return Err(format!("unexpected line from the memory server: {report}").into());
        }
        let base: f64 = parts.next().ok_or("no base")?.parse()?;
        let full: f64 = parts.next().ok_or("no final")?.parse()?;
        Ok((full - base) * 1024.0 / n as f64)
    })();
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// The child side of [`memory_per_connection`]: prints `port P`, then
/// `rss BASE FINAL` (KiB), then waits for stdin to close.
pub fn memory_server_main(kind: &str, n: usize, warm: usize) -> Result<(), BoxError> {
    let chain = std::env::var(ENV_CHAIN)?;
    let key = std::env::var(ENV_KEY)?;
    let bundle = std::env::var(ENV_BUNDLE)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut stdout = std::io::stdout();
    runtime.block_on(async {
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let port = tcp.local_addr()?.port();
        enum Server {
            Ours(MtlsListener),
            Raw(TcpListener, TlsAcceptor),
        }
        let mut server = match kind {
            "ours" => {
                let svid = X509Svid::from_pem(chain.as_bytes(), key.as_bytes())?;
                let td = svid.spiffe_id().trust_domain().clone();
                let bundles = BundleSet::from(X509Bundle::from_pem(td.clone(), bundle.as_bytes())?);
                let config = MtlsServerConfig::builder(svid, bundles)
                    .authorizer(authorize::member_of(td))
                    .build()?;
                Server::Ours(MtlsListener::new(
                    tcp,
                    config,
                    mtls_tower::ListenerConfig::default(),
                )?)
            }
            "raw" => {
                let provider = mtls_core::default_crypto_provider();
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(bundle.as_bytes()) {
                    roots.add(cert?)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()?;
                let certs = CertificateDer::pem_slice_iter(chain.as_bytes())
                    .collect::<Result<Vec<_>, _>>()?;
                let mut config = ServerConfig::builder_with_provider(provider)
                    .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(certs, PrivateKeyDer::from_pem_slice(key.as_bytes())?)?;
                config.session_storage = Arc::new(NoServerSessionStorage {});
                config.send_tls13_tickets = 0;
                Server::Raw(tcp, TlsAcceptor::from(Arc::new(config)))
            }
            other => return Err(format!("unknown memory server kind {other:?}").into()),
        };
        writeln!(stdout, "port {port}")?;
        stdout.flush()?;
        let mut ours_held = Vec::new();
        let mut raw_held = Vec::new();
        match &server {
            Server::Ours(_) => ours_held.reserve_exact(warm + n),
            Server::Raw(..) => raw_held.reserve_exact(warm + n),
        }
        let mut base = 0;
        for i in 0..warm + n {
            let mut ping = [0u8; 1];
            match &mut server {
                Server::Ours(listener) => {
                    let mut stream = listener.accept().await?;
                    stream.read_exact(&mut ping).await?;
                    stream.write_all(b"q").await?;
                    stream.flush().await?;
                    ours_held.push(stream);
                }
                Server::Raw(tcp, acceptor) => {
                    let (stream, _) = tcp.accept().await?;
                    let _ = stream.set_nodelay(true);
                    let mut stream = acceptor.accept(stream).await?;
                    stream.read_exact(&mut ping).await?;
                    stream.write_all(b"q").await?;
                    stream.flush().await?;
                    raw_held.push(stream);
                }
            }
            if i + 1 == warm {
                base = vm_rss_kib()?;
            }
        }
        let full = vm_rss_kib()?;
        writeln!(stdout, "rss {base} {full}")?;
        stdout.flush()?;
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        drop((ours_held, raw_held));
        Ok(())
    })
}
