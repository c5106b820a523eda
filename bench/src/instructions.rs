//! Workloads for instruction counts: `mtls-bench --instructions WHAT
//! --count N` runs one operation N times and nothing else, so that
//! `bench/callgrind.sh` can count the instructions of N operations under
//! `valgrind --tool=callgrind` (the same on a busy machine) and subtract a
//! run of N/2: what remains is N/2 operations, setup excluded.

use std::hint::black_box;
use std::sync::Arc;

use mtls_core::rustls::NamedGroup;

use crate::server::LayerKit;
use crate::{handshake, BoxError, Fixture};

/// What `--instructions` can count.
pub const WORKLOADS: [&str; 6] = [
    "handshake-ours",
    "handshake-raw",
    "handshake-ours-pq",
    "handshake-raw-pq",
    "request-ours",
    "request-bare",
];

/// Runs `count` operations of `what` (one of [`WORKLOADS`]) after one
/// untimed warm-up.
pub fn run_workload(fx: &mut Fixture, what: &str, count: u64) -> Result<(), BoxError> {
    let group = if what.ends_with("-pq") {
        NamedGroup::X25519MLKEM768
    } else {
        NamedGroup::X25519
    };
    let mut provider = (*fx.provider).clone();
    provider.kx_groups.retain(|g| g.name() == group);
    if provider.kx_groups.is_empty() {
        return Err(format!("the crypto provider has no {group:?}").into());
    }
    fx.provider = Arc::new(provider);
    match what.trim_end_matches("-pq") {
        "handshake-ours" | "handshake-raw" => {
            let side = if what.starts_with("handshake-ours") {
                fx.ours(false, &[])?
            } else {
                fx.raw(false, &[])?
            };
            let mut buf = Vec::new();
            for _ in 0..=count {
                black_box(handshake(&side, None, &mut buf)?);
            }
        }
        "request-ours" | "request-bare" => {
            let kit = LayerKit::new(fx)?;
            let ours = what == "request-ours";
            for _ in 0..=count {
                if !black_box(kit.call(ours)) {
                    return Err("an in-process request was refused".into());
                }
            }
        }
        other => {
            return Err(format!("unknown workload {other:?}; one of {WORKLOADS:?}").into())
        }
    }
    Ok(())
}
