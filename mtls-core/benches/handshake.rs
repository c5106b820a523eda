//! Run with: `cargo bench -p mtls-core --bench handshake`
//!
//! Full and resumed TLS 1.3 mTLS handshakes, client and server in one
//! thread over memory buffers (as rustls's own benchmark does), a P-256
//! leaf and intermediate on both sides: our configs against raw rustls
//! (`WebPkiClientVerifier` on the server,
//! `verify_server_cert_signed_by_trust_anchor` on the client) on the same
//! certificates and crypto provider. Each side's time is reported on its
//! own (`server`, `client`) and together (`both`). Then chain verification
//! alone, and the crypto floor (one P-256 sign, one verify, one key
//! exchange) with the same provider.
//!
//! `cargo run --release -p examples --bin mtls-bench` runs the same
//! comparisons interleaved, as ratios, with the rest of the benchmarks.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::TestCa;
use criterion::{criterion_group, criterion_main, Criterion};
use mtls_core::{authorize, BundleSet, CrlSet, MtlsClientConfig, MtlsServerConfig, PeerRole};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{
    NoServerSessionStorage, ParsedCertificate, ServerSessionMemoryCache, WebPkiClientVerifier,
};
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, DigitallySignedStruct, HandshakeKind,
    RootCertStore, ServerConfig, ServerConnection, SignatureScheme,
};

const TD: &str = "bench.example.org";
const SERVER_ID: &str = "spiffe://bench.example.org/ns/prod/sa/backend";
const CLIENT_ID: &str = "spiffe://bench.example.org/ns/prod/sa/frontend";

struct Pki {
    provider: Arc<CryptoProvider>,
    root: CertificateDer<'static>,
    bundles: BundleSet,
    server: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
    client: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
}

impl Pki {
    fn new() -> Self {
        let root = TestCa::root(TD);
        let ca = root.intermediate();
        let server = ca.leaf(SERVER_ID);
        let client = ca.leaf(CLIENT_ID);
        assert_eq!(server.chain.len(), 2, "leaf + intermediate");
        Self {
            provider: mtls_core::default_crypto_provider(),
            root: root.root.clone(),
            bundles: root.bundle_set(),
            server: (server.chain, server.key),
            client: (client.chain, client.key),
        }
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.root.clone()).unwrap();
        Arc::new(roots)
    }

    fn ours(&self, resumption: bool) -> Side {
        let svid = |(chain, key): &(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)| {
            mtls_core::X509Svid::new(chain.clone(), key.clone_key()).unwrap()
        };
        let server = MtlsServerConfig::builder(svid(&self.server), self.bundles.clone())
            .authorizer(authorize::member_of(
                mtls_core::TrustDomain::new(TD).unwrap(),
            ))
            .crypto_provider(self.provider.clone())
            .resumption(resumption)
            .build()
            .unwrap();
        let client = MtlsClientConfig::builder(svid(&self.client), self.bundles.clone())
            .authorizer(authorize::exact(
                mtls_core::SpiffeId::new(SERVER_ID).unwrap(),
            ))
            .crypto_provider(self.provider.clone())
            .resumption(resumption)
            .build()
            .unwrap();
        Side {
            server: server.rustls_config(),
            client: client.rustls_config(),
            ours: Some((server, client)),
        }
    }

    fn raw(&self, resumption: bool) -> Side {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots(), self.provider.clone())
                .build()
                .unwrap();
        let mut server = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.server.0.clone(), self.server.1.clone_key())
            .unwrap();
        let mut client = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RawServerVerifier {
                roots: self.roots(),
                algs: self.provider.signature_verification_algorithms,
            }))
            .with_client_auth_cert(self.client.0.clone(), self.client.1.clone_key())
            .unwrap();
        // The same session settings as our builders.
        if resumption {
            server.session_storage = ServerSessionMemoryCache::new(1024);
        } else {
            server.session_storage = Arc::new(NoServerSessionStorage {});
            server.send_tls13_tickets = 0;
            client.resumption = Resumption::disabled();
        }
        Side {
            server: Arc::new(server),
            client: Arc::new(client),
            ours: None,
        }
    }
}

/// A raw rustls client's check of a SPIFFE server: the chain, no name.
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

struct Side {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    ours: Option<(MtlsServerConfig, MtlsClientConfig)>,
}

#[derive(Default, Clone, Copy)]
struct PerSide {
    client: Duration,
    server: Duration,
}

fn pump<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
    buf: &mut Vec<u8>,
    t_from: &mut Duration,
    t_to: &mut Duration,
) -> usize {
    buf.clear();
    let start = Instant::now();
    while from.wants_write() {
        from.write_tls(buf).unwrap();
    }
    *t_from += start.elapsed();
    if buf.is_empty() {
        return 0;
    }
    let start = Instant::now();
    let mut rest: &[u8] = buf;
    while !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
        to.process_new_packets().unwrap();
    }
    *t_to += start.elapsed();
    buf.len()
}

/// One handshake, session tickets included; for ours, the `peer_identity`
/// calls of the listener and the connector (re-verification on resumption).
fn handshake(side: &Side, expect: Option<HandshakeKind>, buf: &mut Vec<u8>) -> PerSide {
    let mut t = PerSide::default();
    let start = Instant::now();
    let mut client = ClientConnection::new(
        side.client.clone(),
        ServerName::try_from("backend.bench.example.org").unwrap(),
    )
    .unwrap();
    t.client += start.elapsed();
    let start = Instant::now();
    let mut server = ServerConnection::new(side.server.clone()).unwrap();
    t.server += start.elapsed();
    while pump(&mut client, &mut server, buf, &mut t.client, &mut t.server)
        + pump(&mut server, &mut client, buf, &mut t.server, &mut t.client)
        > 0
    {}
    assert!(!client.is_handshaking() && !server.is_handshaking());
    if let Some(kind) = expect {
        assert_eq!(server.handshake_kind(), Some(kind));
    }
    if let Some((s, c)) = &side.ours {
        let start = Instant::now();
        black_box(s.peer_identity(&server).unwrap());
        t.server += start.elapsed();
        let start = Instant::now();
        black_box(c.peer_identity(&client).unwrap());
        t.client += start.elapsed();
    }
    t
}

fn handshakes(c: &mut Criterion) {
    let pki = Pki::new();
    for (label, resumption, kind) in [
        ("full", false, HandshakeKind::Full),
        ("resumed", true, HandshakeKind::Resumed),
    ] {
        let mut group = c.benchmark_group(format!("handshake/{label}"));
        group.sample_size(30);
        group.measurement_time(Duration::from_secs(3));
        for (name, side) in [("ours", pki.ours(resumption)), ("raw", pki.raw(resumption))] {
            let mut buf = Vec::with_capacity(64 * 1024);
            // The first handshake of a resuming pair is a full one.
            handshake(&side, None, &mut buf);
            for (part, pick) in [
                ("server", (|t: PerSide| t.server) as fn(PerSide) -> Duration),
                ("client", |t: PerSide| t.client),
                ("both", |t: PerSide| t.client + t.server),
            ] {
                group.bench_function(format!("{name}/{part}"), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| pick(handshake(&side, Some(kind), &mut buf)))
                            .sum()
                    })
                });
            }
        }
        group.finish();
    }
}

fn verification(c: &mut Criterion) {
    let pki = Pki::new();
    let chain = &pki.client.0;
    let (leaf, intermediates) = chain.split_first().unwrap();
    let crls = CrlSet::new();
    let roots = pki.roots();
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), pki.provider.clone())
            .build()
            .unwrap();
    let algs = pki.provider.signature_verification_algorithms.all;
    let mut group = c.benchmark_group("verify_chain");
    group.bench_function("ours/mtls_core::verify", |b| {
        b.iter(|| {
            mtls_core::verify(
                black_box(chain),
                &pki.bundles,
                SystemTime::now(),
                &crls,
                PeerRole::Client,
            )
            .unwrap()
        })
    });
    group.bench_function("raw/WebPkiClientVerifier", |b| {
        b.iter(|| {
            client_verifier
                .verify_client_cert(black_box(leaf), intermediates, UnixTime::now())
                .unwrap()
        })
    });
    group.bench_function("raw/verify_server_cert_signed_by_trust_anchor", |b| {
        b.iter(|| {
            let cert = ParsedCertificate::try_from(black_box(leaf)).unwrap();
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                &roots,
                intermediates,
                UnixTime::now(),
                algs,
            )
            .unwrap()
        })
    });
    group.finish();
}

fn crypto_floor(c: &mut Criterion) {
    let pki = Pki::new();
    let provider = &pki.provider;
    let key = provider
        .key_provider
        .load_private_key(pki.server.1.clone_key())
        .unwrap();
    let scheme = SignatureScheme::ECDSA_NISTP256_SHA256;
    let signer = key.choose_scheme(&[scheme]).unwrap();
    let mut message = vec![0x20u8; 64];
    message.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
    message.extend_from_slice(&[0x5a; 32]);
    let signature = signer.sign(&message).unwrap();
    let spki = key.public_key().unwrap();
    let point = &spki.as_ref()[spki.as_ref().len() - 65..];
    let verifier = provider
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .unwrap()
        .1[0];
    verifier
        .verify_signature(point, &message, &signature)
        .unwrap();
    // The group the handshakes negotiate: the provider's first.
    let group_kx = provider.kx_groups[0];
    let client_share = group_kx.start().unwrap().pub_key().to_vec();
    let server_share = group_kx.start_and_complete(&client_share).unwrap().pub_key;

    let mut group = c.benchmark_group("crypto_floor");
    group.bench_function("p256_sign", |b| {
        b.iter(|| signer.sign(black_box(&message)).unwrap())
    });
    group.bench_function("p256_verify", |b| {
        b.iter(|| {
            verifier
                .verify_signature(point, black_box(&message), &signature)
                .unwrap()
        })
    });
    group.bench_function(format!("kx_{:?}_client", group_kx.name()), |b| {
        b.iter(|| {
            group_kx
                .start()
                .unwrap()
                .complete(black_box(&server_share))
                .unwrap()
        })
    });
    group.bench_function(format!("kx_{:?}_server", group_kx.name()), |b| {
        b.iter(|| {
            group_kx
                .start_and_complete(black_box(&client_share))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, handshakes, verification, crypto_floor);
criterion_main!(benches);
