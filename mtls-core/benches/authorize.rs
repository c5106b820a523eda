//! Run with: `cargo bench -p mtls-core --bench authorize`
//!
//! One authorization decision for an allowed peer, by the mtls-core
//! authorizers with 1, 100 and 10,000 rules: exact IDs (`one_of`), trust
//! domains (`member_of_any`), path prefixes (`path_prefixes`), and mixed
//! (`one_of(..).or(member_of_any(..)).or(path_prefixes(..))`, a third of the
//! rules each, the peer allowed by the last). The peer always matches the
//! last rule added. A refusal is timed too (`deny`): it builds a `Denied`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mtls_core::authorize::{self, AuthorizerExt};
use mtls_core::{Authorizer, SpiffeId};
use mtls_testing::rules::{peer, prefix, td};

fn authorizer(kind: &str, n: usize) -> Box<dyn Authorizer> {
    match kind {
        "exact_ids" => Box::new(authorize::one_of((0..n).map(peer))),
        "trust_domains" => Box::new(authorize::member_of_any((0..n).map(td))),
        "path_prefixes" => Box::new(authorize::path_prefixes((0..n).map(prefix))),
        _ => {
            let third = n / 3;
            Box::new(
                authorize::one_of((0..third).map(peer))
                    .or(authorize::member_of_any((third..2 * third).map(td)))
                    .or(authorize::path_prefixes((2 * third..n).map(prefix))),
            )
        }
    }
}

fn decisions(c: &mut Criterion) {
    let stranger = SpiffeId::new("spiffe://elsewhere.example.org/ns/x/sa/y").unwrap();
    for kind in ["exact_ids", "trust_domains", "path_prefixes", "mixed"] {
        let mut group = c.benchmark_group(format!("authorize/{kind}"));
        for n in [1usize, 100, 10_000] {
            let authorizer = authorizer(kind, n);
            let allowed = peer(n - 1);
            authorizer.authorize(&allowed).unwrap();
            group.bench_with_input(BenchmarkId::new("allow", n), &allowed, |b, p| {
                b.iter(|| authorizer.authorize(black_box(p)).is_ok())
            });
            authorizer.authorize(&stranger).unwrap_err();
            group.bench_with_input(BenchmarkId::new("deny", n), &stranger, |b, p| {
                b.iter(|| authorizer.authorize(black_box(p)).is_err())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, decisions);
criterion_main!(benches);
