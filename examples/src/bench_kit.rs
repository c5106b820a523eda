//! Run with: `cargo run --release -p examples --bin mtls-bench` (this module holds the measurements of that program; BENCHMARKS.md gives the method).
//!
//! Fixtures, timing helpers, the memory-buffer handshake harness, the
//! request-path servers and their load client, the CA measurements and the
//! idle-connection memory probe of `mtls-bench`.
//!
//! Every comparison is paired: ours and its baseline run alternately in one
//! process (the order swapped every round), on the same certificates and
//! the same crypto provider, and the figures are medians over rounds, so a
//! noisy, shared machine moves both sides alike.

use std::error::Error;
use std::future::IntoFuture;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::authorize::{self, AuthorizerExt};
use mtls_core::rustls;
use mtls_core::{
    Authorizer, BundleSet, CrlSet, MtlsClientConfig, MtlsServerConfig, PeerIdentity, PeerRole,
    SpiffeId, TrustDomain, X509Bundle, X509Svid,
};
use mtls_tower::{AuthorizeLayer, MtlsConnectInfo, MtlsListener, RoutePolicy};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{
    NoServerSessionStorage, ParsedCertificate, ServerSessionMemoryCache, WebPkiClientVerifier,
};
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, DigitallySignedStruct, HandshakeKind,
    RootCertStore, ServerConfig, ServerConnection, SignatureScheme,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tower::ServiceExt;

/// Errors of the benchmark: any error, with a message.
pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

/// The name the clients dial (sent as SNI; SPIFFE clients do not check it).
const SERVER_NAME: &str = "backend.bench.example.org";

// ---------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------

/// The median of `values` (NaN when empty).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nanoseconds per call of `f`, over `iters` calls.
pub(crate) fn ns_per_call<F: FnMut()>(iters: u64, mut f: F) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / iters.max(1) as f64
}

/// How many calls of `f` take about `target`.
pub(crate) fn calibrate<F: FnMut()>(target: Duration, mut f: F) -> u64 {
    let mut n: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= target / 8 || n >= 1 << 30 {
            let per_call = elapsed.as_secs_f64() / n as f64;
            return ((target.as_secs_f64() / per_call.max(1e-12)) as u64).max(1);
        }
        n *= 2;
    }
}

/// `rounds` rounds; in each, every function of `fns` is timed over `iters`
/// calls, starting with a different one each round. Returns, per function,
/// its nanoseconds per call in each round.
pub(crate) fn rotate(rounds: usize, iters: u64, fns: &mut [&mut dyn FnMut()]) -> Vec<Vec<f64>> {
    let n = fns.len();
    let mut out = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            out[i].push(ns_per_call(iters, &mut *fns[i]));
        }
    }
    out
}

/// The median over rounds of `a[i] / b[i]`.
pub(crate) fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&ratios)
}

/// The median over rounds of `a[i] - b[i]`.
pub(crate) fn paired_diff(a: &[f64], b: &[f64]) -> f64 {
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    median(&diffs)
}

// ---------------------------------------------------------------------------
// Fixture: one trust domain, a development root, an intermediate, two SVIDs
// ---------------------------------------------------------------------------

/// The certificates every measurement uses: a P-256 root, a P-256
/// intermediate that signs, and a P-256 leaf for each side, so that both
/// peers present leaf + intermediate and verify up to the root.
pub(crate) struct Fixture {
    pub(crate) trust_domain: TrustDomain,
    /// The intermediate CA (it signs the SVIDs).
    pub(crate) ca: CertificateAuthority,
    pub(crate) root: CertificateDer<'static>,
    pub(crate) bundles: BundleSet,
    pub(crate) server: X509Svid,
    pub(crate) client: X509Svid,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl Fixture {
    pub(crate) fn new() -> Result<Self, BoxError> {
        let trust_domain = TrustDomain::new("bench.example.org")?;
        let root = CertificateAuthority::self_signed_for_development(
            trust_domain.clone(),
            &CaOptions::default(),
        )?;
        let ca = root.intermediate(&CaOptions::default())?;
        let server = ca.issue(&SvidRequest::new(SpiffeId::new(
            "spiffe://bench.example.org/ns/prod/sa/backend",
        )?))?;
        let client = ca.issue(&SvidRequest::new(SpiffeId::new(
            "spiffe://bench.example.org/ns/prod/sa/frontend",
        )?))?;
        if server.chain().len() != 2 || client.chain().len() != 2 {
            return Err("the SVIDs should be leaf + intermediate".into());
        }
        let bundles = BundleSet::from(ca.bundle()?);
        let root = ca
            .trust_anchors()
            .first()
            .cloned()
            .ok_or("the CA has no trust anchor")?;
        Ok(Self {
            trust_domain,
            ca,
            root,
            bundles,
            server,
            client,
            provider: mtls_core::default_crypto_provider(),
        })
    }

    fn raw_roots(&self) -> Result<Arc<RootCertStore>, BoxError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.root.clone())?;
        Ok(Arc::new(roots))
    }

    /// Our configs: the server admits the members of the trust domain, the
    /// client the server's exact SPIFFE ID.
    pub(crate) fn ours(&self, resumption: bool, alpn: &[&[u8]]) -> Result<Side, BoxError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let server = MtlsServerConfig::builder(self.server.clone(), self.bundles.clone())
            .authorizer(authorize::member_of(self.trust_domain.clone()))
            .crypto_provider(self.provider.clone())
            .alpn_protocols(alpn.clone())
            .resumption(resumption)
            .build()?;
        let client = MtlsClientConfig::builder(self.client.clone(), self.bundles.clone())
            .authorizer(authorize::exact(self.server.spiffe_id().clone()))
            .crypto_provider(self.provider.clone())
            .alpn_protocols(alpn)
            .resumption(resumption)
            .build()?;
        Ok(Side {
            server: server.rustls_config(),
            client: client.rustls_config(),
            ours: Some((server, client)),
        })
    }

    /// Raw rustls on the same certificates and provider: the server checks
    /// clients with `WebPkiClientVerifier`, the client checks the server
    /// with `verify_server_cert_signed_by_trust_anchor` (no name check: an
    /// SVID has no DNS name). Resumption as in `ours`.
    pub(crate) fn raw(&self, resumption: bool, alpn: &[&[u8]]) -> Result<Side, BoxError> {
        Ok(Side {
            server: Arc::new(self.raw_server(true, resumption, alpn)?),
            client: Arc::new(self.raw_client(resumption, alpn)?),
            ours: None,
        })
    }

    pub(crate) fn raw_server(
        &self,
        client_auth: bool,
        resumption: bool,
        alpn: &[&[u8]],
    ) -> Result<ServerConfig, BoxError> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
        let builder = if client_auth {
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(
                    self.raw_roots()?,
                    self.provider.clone(),
                )
                .build()?,
            )
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(
            self.server.chain().to_vec(),
            self.server.private_key().clone_key(),
        )?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if resumption {
            // As our builder does.
            config.session_storage = ServerSessionMemoryCache::new(1024);
        } else {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        Ok(config)
    }

    fn raw_client(&self, resumption: bool, alpn: &[&[u8]]) -> Result<ClientConfig, BoxError> {
        let verifier = Arc::new(RawServerVerifier {
            roots: self.raw_roots()?,
            algs: self.provider.signature_verification_algorithms,
        });
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(
                self.client.chain().to_vec(),
                self.client.private_key().clone_key(),
            )?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if !resumption {
            config.resumption = Resumption::disabled();
        }
        Ok(config)
    }

    /// The client's identity as our verifier sees it.
    pub(crate) fn client_identity(&self) -> Result<PeerIdentity, BoxError> {
        Ok(mtls_core::verify(
            self.client.chain(),
            &self.bundles,
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Client,
        )?)
    }
}

/// What a raw rustls client does for a SPIFFE server: the chain up to a
/// trust anchor, and no name check.
#[derive(Debug)]
struct RawServerVerifier {
    roots: Arc<RootCertStore>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for RawServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

// ---------------------------------------------------------------------------
// Handshakes over memory buffers
// ---------------------------------------------------------------------------

/// A server config and a client config that talk to each other, and, for
/// ours, the mtls-core configs whose `peer_identity` the listener and the
/// connector call after every handshake.
pub(crate) struct Side {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) client: Arc<ClientConfig>,
    pub(crate) ours: Option<(MtlsServerConfig, MtlsClientConfig)>,
}

/// Time spent by each side of a handshake.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PerSide {
    pub(crate) client: Duration,
    pub(crate) server: Duration,
}

/// Moves every pending TLS byte of `from` into `to` and lets `to` process
/// them; the time goes to the side that did the work.
fn pump<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
    buf: &mut Vec<u8>,
    t_from: &mut Duration,
    t_to: &mut Duration,
) -> Result<usize, BoxError> {
    buf.clear();
    let start = Instant::now();
    while from.wants_write() {
        from.write_tls(buf)?;
    }
    *t_from += start.elapsed();
    if buf.is_empty() {
        return Ok(0);
    }
    let start = Instant::now();
    let mut rest: &[u8] = buf;
    while !rest.is_empty() {
        to.read_tls(&mut rest)?;
        to.process_new_packets()?;
    }
    *t_to += start.elapsed();
    Ok(buf.len())
}

/// One handshake between fresh connections of `side`, client and server in
/// this thread, over memory buffers (as rustls's own benchmark does),
/// including the post-handshake session tickets. For ours, the
/// `peer_identity` calls the listener and the connector make (which verify
/// a resumed session again) are counted too.
pub(crate) fn handshake(
    side: &Side,
    expect: Option<HandshakeKind>,
    buf: &mut Vec<u8>,
) -> Result<PerSide, BoxError> {
    let name = ServerName::try_from(SERVER_NAME)?;
    let mut t = PerSide::default();
    let start = Instant::now();
    let mut client = ClientConnection::new(side.client.clone(), name)?;
    t.client += start.elapsed();
    let start = Instant::now();
    let mut server = ServerConnection::new(side.server.clone())?;
    t.server += start.elapsed();
    loop {
        let sent = pump(&mut client, &mut server, buf, &mut t.client, &mut t.server)?;
        let back = pump(&mut server, &mut client, buf, &mut t.server, &mut t.client)?;
        if sent == 0 && back == 0 {
            break;
        }
    }
    if client.is_handshaking() || server.is_handshaking() {
        return Err("handshake stalled".into());
    }
    if let Some(expect) = expect {
        if server.handshake_kind() != Some(expect) || client.handshake_kind() != Some(expect) {
            return Err(format!(
                "expected a {expect:?} handshake, got server {:?} / client {:?}",
                server.handshake_kind(),
                client.handshake_kind()
            )
            .into());
        }
    }
    if let Some((ours_server, ours_client)) = &side.ours {
        let start = Instant::now();
        black_box(ours_server.peer_identity(&server)?);
        t.server += start.elapsed();
        let start = Instant::now();
        black_box(ours_client.peer_identity(&client)?);
        t.client += start.elapsed();
    }
    Ok(t)
}

/// The negotiated protocol and key exchange group of `side`.
pub(crate) fn negotiated(side: &Side) -> Result<(String, String), BoxError> {
    let name = ServerName::try_from(SERVER_NAME)?;
    let mut client = ClientConnection::new(side.client.clone(), name)?;
    let mut server = ServerConnection::new(side.server.clone())?;
    let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
    let mut buf = Vec::new();
    while pump(&mut client, &mut server, &mut buf, &mut a, &mut b)?
        + pump(&mut server, &mut client, &mut buf, &mut b, &mut a)?
        > 0
    {}
    let version = server
        .protocol_version()
        .map_or("?".into(), |v| format!("{v:?}"));
    let group = server
        .negotiated_key_exchange_group()
        .map_or("?".into(), |g| format!("{:?}", g.name()));
    Ok((version, group))
}

/// Per-handshake CPU time of each side, in µs, round by round.
#[derive(Debug, Default, Clone)]
pub(crate) struct HandshakeRounds {
    pub(crate) client_us: Vec<f64>,
    pub(crate) server_us: Vec<f64>,
}

impl HandshakeRounds {
    pub(crate) fn total_us(&self) -> Vec<f64> {
        self.client_us
            .iter()
            .zip(&self.server_us)
            .map(|(c, s)| c + s)
            .collect()
    }
}

/// Runs the handshakes of `sides` (each with the kind it must produce) in
/// `rounds` rounds of `batch` handshakes each, rotating which side goes
/// first every round, and `between` after every round (so that what it
/// times is interleaved with the handshakes).
pub(crate) fn measure_handshakes(
    sides: &[(&Side, HandshakeKind)],
    rounds: usize,
    batch: usize,
    between: &mut dyn FnMut() -> Result<(), BoxError>,
) -> Result<Vec<HandshakeRounds>, BoxError> {
    let mut buf = Vec::with_capacity(64 * 1024);
    // Warm-up, and the first session tickets of the resuming sides.
    for (side, _) in sides {
        for _ in 0..5 {
            handshake(side, None, &mut buf)?;
        }
    }
    let mut out = vec![HandshakeRounds::default(); sides.len()];
    for round in 0..rounds {
        for k in 0..sides.len() {
            let i = (round + k) % sides.len();
            let (side, kind) = sides[i];
            let mut sum = PerSide::default();
            for _ in 0..batch {
                let t = handshake(side, Some(kind), &mut buf)?;
                sum.client += t.client;
                sum.server += t.server;
            }
            out[i]
                .client_us
                .push(sum.client.as_secs_f64() * 1e6 / batch as f64);
            out[i]
                .server_us
                .push(sum.server.as_secs_f64() * 1e6 / batch as f64);
        }
        between()?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Chain verification alone, and the crypto floor
// ---------------------------------------------------------------------------

/// µs per chain verification, round by round.
pub(crate) struct VerifyRounds {
    /// `mtls_core::verify` (path validation + the SPIFFE checks + the
    /// `PeerIdentity`), as the server verifies a client.
    pub(crate) ours_us: Vec<f64>,
    /// `WebPkiClientVerifier::verify_client_cert`.
    pub(crate) raw_client_verifier_us: Vec<f64>,
    /// `ParsedCertificate` + `verify_server_cert_signed_by_trust_anchor`.
    pub(crate) raw_trust_anchor_us: Vec<f64>,
}

pub(crate) fn measure_verify(
    fx: &Fixture,
    rounds: usize,
    iters: u64,
) -> Result<VerifyRounds, BoxError> {
    let chain = fx.client.chain();
    let (leaf, intermediates) = chain.split_first().ok_or("empty chain")?;
    let crls = CrlSet::new();
    let roots = fx.raw_roots()?;
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), fx.provider.clone()).build()?;
    let algs = fx.provider.signature_verification_algorithms.all;
    let now = UnixTime::now();
    // Each must succeed before it is timed.
    mtls_core::verify(
        chain,
        &fx.bundles,
        SystemTime::now(),
        &crls,
        PeerRole::Client,
    )?;
    client_verifier.verify_client_cert(leaf, intermediates, now)?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &ParsedCertificate::try_from(leaf)?,
        &roots,
        intermediates,
        now,
        algs,
    )?;
    let mut ours = || {
        let _ = black_box(mtls_core::verify(
            black_box(chain),
            &fx.bundles,
            SystemTime::now(),
            &crls,
            PeerRole::Client,
        ));
    };
    let mut raw_cv = || {
        let _ = black_box(client_verifier.verify_client_cert(
            black_box(leaf),
            intermediates,
            UnixTime::now(),
        ));
    };
    let mut raw_ta = || {
        if let Ok(cert) = ParsedCertificate::try_from(black_box(leaf)) {
            let _ = black_box(rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                &roots,
                intermediates,
                UnixTime::now(),
                algs,
            ));
        }
    };
    let mut out = rotate(rounds, iters, &mut [&mut ours, &mut raw_cv, &mut raw_ta]).into_iter();
    let us = |v: Option<Vec<f64>>| v.unwrap_or_default().iter().map(|ns| ns / 1e3).collect();
    Ok(VerifyRounds {
        ours_us: us(out.next()),
        raw_client_verifier_us: us(out.next()),
        raw_trust_anchor_us: us(out.next()),
    })
}

/// The cryptography a full mTLS handshake cannot avoid, per side: one
/// P-256 signature (CertificateVerify), three P-256 verifications (the
/// peer's CertificateVerify, its leaf and its intermediate), one key
/// exchange in the negotiated group; timed with the same provider, in
/// rounds interleaved with the handshakes (µs per operation, per round).
pub(crate) struct Floor {
    pub(crate) group: String,
    pub(crate) sign_us: Vec<f64>,
    pub(crate) verify_us: Vec<f64>,
    pub(crate) kx_client_us: Vec<f64>,
    pub(crate) kx_server_us: Vec<f64>,
}

impl Floor {
    /// Per round: sign + 3 verifies + the client's key exchange.
    pub(crate) fn client_us(&self) -> Vec<f64> {
        (0..self.sign_us.len())
            .map(|i| self.sign_us[i] + 3.0 * self.verify_us[i] + self.kx_client_us[i])
            .collect()
    }

    /// Per round: sign + 3 verifies + the server's key exchange.
    pub(crate) fn server_us(&self) -> Vec<f64> {
        (0..self.sign_us.len())
            .map(|i| self.sign_us[i] + 3.0 * self.verify_us[i] + self.kx_server_us[i])
            .collect()
    }
}

/// What the floor's operations need, set up once.
pub(crate) struct FloorKit {
    signer: Box<dyn rustls::sign::Signer>,
    algorithm: &'static dyn rustls::pki_types::SignatureVerificationAlgorithm,
    group: &'static dyn rustls::crypto::SupportedKxGroup,
    message: Vec<u8>,
    signature: Vec<u8>,
    point: Vec<u8>,
    client_share: Vec<u8>,
    server_share: Vec<u8>,
    pub(crate) floor: Floor,
}

impl FloorKit {
    /// The operations of `fx`'s server key, in the group `side` negotiates.
    pub(crate) fn new(fx: &Fixture, side: &Side) -> Result<Self, BoxError> {
        let name = ServerName::try_from(SERVER_NAME)?;
        let mut client = ClientConnection::new(side.client.clone(), name)?;
        let mut server = ServerConnection::new(side.server.clone())?;
        let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
        let mut buf = Vec::new();
        while pump(&mut client, &mut server, &mut buf, &mut a, &mut b)?
            + pump(&mut server, &mut client, &mut buf, &mut b, &mut a)?
            > 0
        {}
        let group = server
            .negotiated_key_exchange_group()
            .ok_or("no key exchange group negotiated")?;
        let key = fx
            .provider
            .key_provider
            .load_private_key(fx.server.private_key().clone_key())?;
        let scheme = SignatureScheme::ECDSA_NISTP256_SHA256;
        let signer = key.choose_scheme(&[scheme]).ok_or("not a P-256 key")?;
        // A TLS 1.3 CertificateVerify input: 64 spaces, the context string,
        // a zero byte and a SHA-256 transcript hash.
        let mut message = vec![0x20u8; 64];
        message.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
        message.extend_from_slice(&[0x5a; 32]);
        let signature = signer.sign(&message)?;
        let spki = key.public_key().ok_or("no public key")?;
        // The uncompressed point ends a P-256 SubjectPublicKeyInfo.
        let point = spki
            .as_ref()
            .get(spki.as_ref().len().saturating_sub(65)..)
            .ok_or("short key")?
            .to_vec();
        let algorithm = *fx
            .provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(s, _)| *s == scheme)
            .and_then(|(_, algs)| algs.first())
            .ok_or("no P-256 verifier")?;
        algorithm
            .verify_signature(&point, &message, &signature)
            .map_err(|_| "the floor's signature does not verify")?;
        let client_share = group.start()?.pub_key().to_vec();
        let server_share = group.start_and_complete(&client_share)?.pub_key;
        Ok(Self {
            signer,
            algorithm,
            group,
            message,
            signature,
            point,
            client_share,
            server_share,
            floor: Floor {
                group: format!("{:?}", group.name()),
                sign_us: Vec::new(),
                verify_us: Vec::new(),
                kx_client_us: Vec::new(),
                kx_server_us: Vec::new(),
            },
        })
    }

    /// Times each operation over `iters` calls, once.
    pub(crate) fn round(&mut self, iters: u64) {
        let (signer, message) = (&self.signer, &self.message);
        let sign = ns_per_call(iters, || {
            let _ = black_box(signer.sign(black_box(message)));
        });
        let (algorithm, point, signature) = (self.algorithm, &self.point, &self.signature);
        let verify = ns_per_call(iters, || {
            let _ = black_box(algorithm.verify_signature(point, black_box(message), signature));
        });
        let (group, server_share, client_share) =
            (self.group, &self.server_share, &self.client_share);
        let kx_client = ns_per_call(iters, || {
            if let Ok(kx) = group.start() {
                let _ = black_box(kx.complete(black_box(server_share)));
            }
        });
        let kx_server = ns_per_call(iters, || {
            let _ = black_box(group.start_and_complete(black_box(client_share)));
        });
        self.floor.sign_us.push(sign / 1e3);
        self.floor.verify_us.push(verify / 1e3);
        self.floor.kx_client_us.push(kx_client / 1e3);
        self.floor.kx_server_us.push(kx_server / 1e3);
    }
}

// ---------------------------------------------------------------------------
// Authorization decisions
// ---------------------------------------------------------------------------

/// The rule counts measured.
pub(crate) const AUTHZ_SIZES: [usize; 3] = [1, 100, 10_000];

/// The kinds of rules measured.
pub(crate) const AUTHZ_KINDS: [&str; 4] = ["exact IDs", "trust domains", "path prefixes", "mixed"];

fn rule_td(i: usize) -> Result<TrustDomain, BoxError> {
    Ok(TrustDomain::new(&format!("td{i}.example.org"))?)
}

fn rule_prefix(i: usize) -> Result<SpiffeId, BoxError> {
    Ok(SpiffeId::new(&format!(
        "spiffe://td{i}.example.org/ns/team{i}"
    ))?)
}

/// The peer rule `i` allows, whatever its kind.
fn rule_peer(i: usize) -> Result<SpiffeId, BoxError> {
    Ok(SpiffeId::new(&format!(
        "spiffe://td{i}.example.org/ns/team{i}/sa/svc{i}"
    ))?)
}

/// An mtls-core authorizer of `n` rules of `kind`, and a peer it allows
/// with the last rule. "mixed" is `one_of(n/3 IDs) or member_of_any(n/3
/// trust domains) or path_prefixes(the rest)`, the peer allowed by the
/// last: both earlier authorizers refuse it first.
pub(crate) fn core_authorizer(
    kind: &str,
    n: usize,
) -> Result<(Box<dyn Authorizer>, SpiffeId), BoxError> {
    let ids = |r: std::ops::Range<usize>| r.map(rule_peer).collect::<Result<Vec<_>, _>>();
    let tds = |r: std::ops::Range<usize>| r.map(rule_td).collect::<Result<Vec<_>, _>>();
    let prefixes = |r: std::ops::Range<usize>| r.map(rule_prefix).collect::<Result<Vec<_>, _>>();
    let peer = rule_peer(n - 1)?;
    let authorizer: Box<dyn Authorizer> = match kind {
        "exact IDs" => Box::new(authorize::one_of(ids(0..n)?)),
        "trust domains" => Box::new(authorize::member_of_any(tds(0..n)?)),
        "path prefixes" => Box::new(authorize::path_prefixes(prefixes(0..n)?)),
        _ => {
            let third = n / 3;
            Box::new(
                authorize::one_of(ids(0..third)?)
                    .or(authorize::member_of_any(tds(third..2 * third)?))
                    .or(authorize::path_prefixes(prefixes(2 * third..n)?)),
            )
        }
    };
    authorizer.authorize(&peer)?;
    Ok((authorizer, peer))
}

/// A route policy of `n` rules (`/svc{i}`) whose authorizers are of `kind`,
/// and a request matched by the last rule with a peer it allows. "mixed"
/// cycles through the three kinds, half of the rules restricted to
/// GET and POST.
pub(crate) fn route_policy(
    kind: &str,
    n: usize,
) -> Result<(RoutePolicy, String, SpiffeId), BoxError> {
    let mut builder = RoutePolicy::builder();
    for i in 0..n {
        let prefix = format!("/svc{i}");
        let rule_kind = match kind {
            "mixed" => ["exact IDs", "trust domains", "path prefixes"][i % 3],
            other => other,
        };
        let authorizer: Arc<dyn Authorizer> = match rule_kind {
            "exact IDs" => Arc::new(authorize::exact(rule_peer(i)?)),
            "trust domains" => Arc::new(authorize::member_of(rule_td(i)?)),
            _ => Arc::new(authorize::path_prefix(rule_prefix(i)?)),
        };
        let methods = (kind == "mixed" && i % 2 == 0).then(|| vec![Method::GET, Method::POST]);
        builder = builder.route_shared(methods, &prefix, authorizer);
    }
    let policy = builder.build()?;
    let path = format!("/svc{}/v1/items", n - 1);
    let peer = rule_peer(n - 1)?;
    policy.decide(&Method::GET, &path, &peer)?;
    Ok((policy, path, peer))
}

// ---------------------------------------------------------------------------
// The request path over loopback
// ---------------------------------------------------------------------------

/// The server stacks compared on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stack {
    /// axum + `MtlsListener` + `AuthorizeLayer`, connect info on.
    Ours,
    /// axum over raw rustls (tokio-rustls), server authentication only.
    RawTls,
    /// axum over plain TCP.
    Plain,
}

impl Stack {
    pub(crate) const ALL: [Stack; 3] = [Stack::Ours, Stack::RawTls, Stack::Plain];

    pub(crate) fn label(self) -> &'static str {
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
pub(crate) struct ServerThread {
    pub(crate) addr: SocketAddr,
    schedstat: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    pub(crate) fn start(fx: &Fixture, stack: Stack) -> Result<Self, BoxError> {
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
    pub(crate) fn cpu_ns(&self) -> Result<u64, BoxError> {
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

/// One timed window of keep-alive requests against one stack.
#[derive(Debug, Default, Clone)]
pub(crate) struct LoadWindow {
    pub(crate) requests: u64,
    pub(crate) elapsed: Duration,
    pub(crate) server_cpu_ns: u64,
    pub(crate) latencies_us: Vec<f64>,
}

impl LoadWindow {
    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn server_ns_per_request(&self) -> f64 {
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
pub(crate) fn load_window(
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
pub(crate) fn request_client(fx: &Fixture) -> Result<TlsConnector, BoxError> {
    let side = fx.ours(false, &[b"http/1.1"])?;
    Ok(TlsConnector::from(side.client))
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

/// ns per request through the application alone, in process, with no
/// network: ours (the connect-info extension axum adds per request, then
/// `AuthorizeLayer`) and bare (the same router without either). Returns
/// the per-round figures of each.
pub(crate) fn measure_layer(
    fx: &Fixture,
    rounds: usize,
    iters: u64,
) -> Result<(Vec<f64>, Vec<f64>), BoxError> {
    let info = MtlsConnectInfo::new(
        fx.client_identity()?,
        SocketAddr::from(([127, 0, 0, 1], 40000)),
    );
    let ours = router().layer(AuthorizeLayer::new(request_policy(fx)?));
    let bare = router();
    let call = |app: &Router, with_peer: bool| {
        let mut req = Request::get("/hello")
            .body(axum::body::Body::empty())
            .unwrap_or_default();
        if with_peer {
            req.extensions_mut().insert(ConnectInfo(info.clone()));
        }
        match now_or_never(app.clone().oneshot(req)) {
            Some(Ok(response)) => response.status() == http::StatusCode::OK,
            Some(Err(never)) => match never {},
            None => false,
        }
    };
    if !call(&ours, true) || !call(&bare, false) {
        return Err("the in-process request was not answered 200 at once".into());
    }
    let mut a = || {
        black_box(call(&ours, true));
    };
    let mut b = || {
        black_box(call(&bare, false));
    };
    let mut out = rotate(rounds, iters, &mut [&mut a, &mut b]).into_iter();
    Ok((
        out.next().unwrap_or_default(),
        out.next().unwrap_or_default(),
    ))
}

/// ns per `MtlsServerConfig::peer_identity` on a finished full handshake
/// (what the listener does for every connection), median of `rounds`.
pub(crate) fn measure_peer_identity(
    side: &Side,
    rounds: usize,
    iters: u64,
) -> Result<f64, BoxError> {
    let Some((ours, _)) = &side.ours else {
        return Err("not our configs".into());
    };
    let name = ServerName::try_from(SERVER_NAME)?;
    let mut client = ClientConnection::new(side.client.clone(), name)?;
    let mut server = ServerConnection::new(side.server.clone())?;
    let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
    let mut buf = Vec::new();
    while pump(&mut client, &mut server, &mut buf, &mut a, &mut b)?
        + pump(&mut server, &mut client, &mut buf, &mut b, &mut a)?
        > 0
    {}
    ours.peer_identity(&server)?;
    let per_round: Vec<f64> = (0..rounds)
        .map(|_| {
            ns_per_call(iters, || {
                let _ = black_box(ours.peer_identity(black_box(&server)));
            })
        })
        .collect();
    Ok(median(&per_round))
}

// ---------------------------------------------------------------------------
// The CA
// ---------------------------------------------------------------------------

fn random_serial(provider: &CryptoProvider) -> Result<SerialNumber, BoxError> {
    let mut bytes = [0u8; 16];
    provider
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "no randomness")?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The leaf that mtls-ca issues, built with rcgen directly.
fn raw_leaf_params(
    id: &SpiffeId,
    provider: &CryptoProvider,
) -> Result<CertificateParams, BoxError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    p.serial_number = Some(random_serial(provider)?);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::hours(1);
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// µs per SVID issued and per CSR signed, ours and raw rcgen, per round.
pub(crate) struct CaRounds {
    pub(crate) issue_ours_us: Vec<f64>,
    pub(crate) issue_raw_us: Vec<f64>,
    pub(crate) csr_ours_us: Vec<f64>,
    pub(crate) csr_raw_us: Vec<f64>,
}

pub(crate) fn measure_ca(fx: &Fixture, rounds: usize, iters: u64) -> Result<CaRounds, BoxError> {
    let id = SpiffeId::new("spiffe://bench.example.org/ns/prod/sa/worker")?;
    let request = SvidRequest::new(id.clone());
    let issuer = Issuer::from_ca_cert_der(
        fx.ca.certificate(),
        KeyPair::from_pem(&fx.ca.private_key_pem())?,
    )?;
    let provider = fx.provider.clone();

    // The CSR: a workload's P-256 key and its SPIFFE ID.
    let csr_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut csr_params = CertificateParams::new(Vec::<String>::new())?;
    csr_params.distinguished_name = DistinguishedName::new();
    csr_params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    let csr_pem = csr_params.serialize_request(&csr_key)?.pem()?;

    let raw_issue = || -> Result<(CertificateDer<'static>, Vec<u8>), BoxError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = raw_leaf_params(&id, &provider)?.signed_by(&key, &issuer)?;
        Ok((cert.der().clone(), key.serialize_der()))
    };
    let raw_csr = || -> Result<CertificateDer<'static>, BoxError> {
        let mut csr = CertificateSigningRequestParams::from_pem(&csr_pem)?;
        // Only the public key is used, as mtls-ca does.
        csr.params = raw_leaf_params(&id, &provider)?;
        Ok(csr.signed_by(&issuer)?.der().clone())
    };
    // Each must succeed, and raw output must verify like ours.
    fx.ca.issue(&request)?;
    fx.ca.sign_csr(csr_pem.as_bytes(), &request)?;
    let (raw_leaf, _) = raw_issue()?;
    mtls_core::verify(
        &[raw_leaf, fx.ca.certificate().clone()],
        &fx.bundles,
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Client,
    )?;
    raw_csr()?;

    let mut issue_ours = || {
        let _ = black_box(fx.ca.issue(black_box(&request)));
    };
    let mut issue_raw = || {
        let _ = black_box(raw_issue());
    };
    let mut csr_ours = || {
        let _ = black_box(fx.ca.sign_csr(black_box(csr_pem.as_bytes()), &request));
    };
    let mut csr_raw = || {
        let _ = black_box(raw_csr());
    };
    let mut out = rotate(
        rounds,
        iters,
        &mut [&mut issue_ours, &mut issue_raw, &mut csr_ours, &mut csr_raw],
    )
    .into_iter()
    .map(|v| v.iter().map(|ns| ns / 1e3).collect::<Vec<f64>>());
    Ok(CaRounds {
        issue_ours_us: out.next().unwrap_or_default(),
        issue_raw_us: out.next().unwrap_or_default(),
        csr_ours_us: out.next().unwrap_or_default(),
        csr_raw_us: out.next().unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------
// Memory per idle connection
// ---------------------------------------------------------------------------

const ENV_CHAIN: &str = "MTLS_BENCH_SERVER_CHAIN_PEM";
const ENV_KEY: &str = "MTLS_BENCH_SERVER_KEY_PEM";
const ENV_BUNDLE: &str = "MTLS_BENCH_BUNDLE_PEM";

/// The resident memory of this process, in KiB (VmRSS of /proc/self/status).
pub(crate) fn vm_rss_kib() -> Result<u64, BoxError> {
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
pub(crate) fn memory_per_connection(
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
pub(crate) fn memory_server_main(kind: &str, n: usize, warm: usize) -> Result<(), BoxError> {
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
