//! Workloads for instruction counts: `mtls-bench --instructions WHAT
//! --count N` sets up, runs one operation untimed, then runs it N times
//! inside [`measured`], so that `bench/callgrind.sh` counts only those N
//! operations under `valgrind --tool=callgrind --toggle-collect` (the same
//! on a busy machine; the setup, with its random keys and entropy
//! gathering, is left out).

use std::hint::black_box;
use std::sync::Arc;

use mtls_core::rustls::{HandshakeKind, NamedGroup};

use crate::ca::CaKit;
use crate::server::LayerKit;
use crate::{handshake, BoxError, Fixture};

/// What `--instructions` can count.
pub const WORKLOADS: [&str; 16] = [
    "handshake-ours",
    "handshake-raw",
    "handshake-ours-fleet",
    "handshake-raw-fleet",
    "handshake-ours-pq",
    "handshake-raw-pq",
    "resumed-ours",
    "resumed-raw",
    "resumed-raw-one-ticket",
    "request-ours",
    "request-ours-whole",
    "request-bare",
    "issue-ours",
    "issue-raw",
    "csr-ours",
    "csr-raw",
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
            black_box(handshake(&side, None, &mut buf)?);
            measured(count, || handshake(&side, None, &mut buf).map(drop))?;
        }
        "handshake-ours-fleet" | "handshake-raw-fleet" => {
            // A server handshaking with more distinct clients than its
            // verifier remembers (each client's own verifier remembers the
            // server's chain).
            let svids = fx.fleet_svids(crate::FLEET)?;
            let side = if what.starts_with("handshake-ours") {
                fx.ours_fleet(&svids)?
            } else {
                fx.raw_fleet(&svids)?
            };
            let mut buf = Vec::new();
            for _ in 0..crate::FLEET {
                black_box(handshake(&side, None, &mut buf)?);
            }
            measured(count, || handshake(&side, None, &mut buf).map(drop))?;
        }
        "resumed-ours" | "resumed-raw" | "resumed-raw-one-ticket" => {
            // Resumed TLS 1.3 handshakes; ours re-verifies the restored
            // chain in `peer_identity` (counted), raw rustls does not. Ours
            // sends one ticket per handshake, raw rustls two by default:
            // `resumed-raw-one-ticket` is raw rustls set to one as well.
            let side = match what.trim_end_matches("-pq") {
                "resumed-ours" => fx.ours(true, &[])?,
                "resumed-raw" => fx.raw(true, &[])?,
                _ => fx.raw_one_ticket()?,
            };
            let mut buf = Vec::new();
            black_box(handshake(&side, None, &mut buf)?);
            black_box(handshake(&side, Some(HandshakeKind::Resumed), &mut buf)?);
            measured(count, || {
                handshake(&side, Some(HandshakeKind::Resumed), &mut buf).map(drop)
            })?;
        }
        "request-ours" | "request-ours-whole" | "request-bare" => {
            let kit = LayerKit::new(fx)?;
            let one = || match match what {
                "request-ours-whole" => kit.call_whole(),
                other => kit.call(other == "request-ours"),
            } {
                true => Ok(()),
                false => Err(BoxError::from("an in-process request was refused")),
            };
            one()?;
            measured(count, one)?;
        }
        "issue-ours" | "issue-raw" | "csr-ours" | "csr-raw" => {
            let kit = CaKit::new(fx)?;
            let op = || match what {
                "issue-ours" => kit.issue_ours(),
                "issue-raw" => kit.issue_raw().map(drop),
                "csr-ours" => kit.csr_ours(),
                _ => kit.csr_raw().map(drop),
            };
            op()?;
            measured(count, op)?;
        }
        other => return Err(format!("unknown workload {other:?}; one of {WORKLOADS:?}").into()),
    }
    Ok(())
}

/// The counted part: `count` calls of `op`. Never inlined, so that
/// callgrind can collect inside it only (`--toggle-collect`).
#[inline(never)]
pub(crate) fn measured(
    count: u64,
    mut op: impl FnMut() -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    for _ in 0..count {
        black_box(op())?;
    }
    Ok(())
}
