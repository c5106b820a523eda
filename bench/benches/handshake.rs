//! Run with: `cargo bench -p mtls-bench --bench handshake`
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
//! The fixtures, the handshake, the baseline and the timed operations are
//! the kit's, the very ones `cargo run --release -p mtls-bench` times
//! interleaved, as ratios, with the rest of the benchmarks.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mtls_bench::{handshake, ChainVerifiers, Fixture, FloorKit, PerSide};
use mtls_core::rustls::HandshakeKind;

fn handshakes(c: &mut Criterion) {
    let fx = Fixture::new().unwrap();
    for (label, resumption, kind) in [
        ("full", false, HandshakeKind::Full),
        ("resumed", true, HandshakeKind::Resumed),
    ] {
        let mut group = c.benchmark_group(format!("handshake/{label}"));
        group.sample_size(30);
        group.measurement_time(Duration::from_secs(3));
        for (name, side) in [
            ("ours", fx.ours(resumption, &[]).unwrap()),
            ("raw", fx.raw(resumption, &[]).unwrap()),
        ] {
            let mut buf = Vec::with_capacity(64 * 1024);
            // The first handshake of a resuming pair is a full one.
            handshake(&side, None, &mut buf).unwrap();
            for (part, pick) in [
                ("server", (|t: PerSide| t.server) as fn(PerSide) -> Duration),
                ("client", |t: PerSide| t.client),
                ("both", |t: PerSide| t.client + t.server),
            ] {
                group.bench_function(format!("{name}/{part}"), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| pick(handshake(&side, Some(kind), &mut buf).unwrap()))
                            .sum()
                    })
                });
            }
        }
        group.finish();
    }
}

fn verification(c: &mut Criterion) {
    let fx = Fixture::new().unwrap();
    let verifiers = ChainVerifiers::new(&fx).unwrap();
    let mut group = c.benchmark_group("verify_chain");
    group.bench_function("ours/mtls_core::verify", |b| {
        b.iter(|| verifiers.ours().unwrap())
    });
    group.bench_function("raw/WebPkiClientVerifier", |b| {
        b.iter(|| verifiers.raw_client_verifier().unwrap())
    });
    group.bench_function("raw/verify_server_cert_signed_by_trust_anchor", |b| {
        b.iter(|| verifiers.raw_trust_anchor().unwrap())
    });
    group.finish();
}

fn crypto_floor(c: &mut Criterion) {
    let fx = Fixture::new().unwrap();
    // The group the handshakes negotiate.
    let kit = FloorKit::new(&fx, &fx.ours(false, &[]).unwrap()).unwrap();
    let mut group = c.benchmark_group("crypto_floor");
    group.bench_function("p256_sign", |b| b.iter(|| kit.sign().unwrap()));
    group.bench_function("p256_verify", |b| b.iter(|| kit.verify().unwrap()));
    group.bench_function(format!("kx_{}_client", kit.floor.group), |b| {
        b.iter(|| kit.kx_client().unwrap())
    });
    group.bench_function(format!("kx_{}_server", kit.floor.group), |b| {
        b.iter(|| kit.kx_server().unwrap())
    });
    group.finish();
}

criterion_group!(benches, handshakes, verification, crypto_floor);
criterion_main!(benches);
