//! The benchmark kit of the mtls crates (`publish = false`) and, as its
//! binary, the `mtls-bench` program: `cargo run --release -p mtls-bench`
//! (add `-- --quick` for a short run). BENCHMARKS.md gives the method and
//! the figures.
//!
//! Every comparison is paired: ours and its baseline run alternately in one
//! process (the order swapped every round), on the same certificates and
//! the same crypto provider, and the figures are medians over rounds, so a
//! noisy, shared machine moves both sides alike.
//!
//! The parts: timing and statistics ([`median`], [`rotate`],
//! [`paired_ratio`]), the certificates and configs ([`Fixture`]: ours and
//! raw rustls, whose client check of a SPIFFE server is written once),
//! handshakes over memory buffers ([`handshake`], [`measure_handshakes`]),
//! chain verification ([`ChainVerifiers`]) and the crypto floor
//! ([`FloorKit`]), authorization decisions ([`core_authorizer`],
//! [`route_policy`]), the request-path servers ([`ServerThread`]) and their
//! load client ([`load_window`]), the CA ([`measure_ca`]) and the memory
//! of an idle connection ([`memory_per_connection`]).
//!
//! ```
//! use mtls_bench::{handshake, median, Fixture};
//! use mtls_core::rustls::HandshakeKind;
//!
//! let fx = Fixture::new()?;
//! let (ours, raw) = (fx.ours(false, &[])?, fx.raw(false, &[])?);
//! let mut buf = Vec::new();
//! let mut ratios = Vec::new();
//! for _ in 0..3 {
//!     let a = handshake(&ours, Some(HandshakeKind::Full), &mut buf)?;
//!     let b = handshake(&raw, Some(HandshakeKind::Full), &mut buf)?;
//!     ratios.push((a.client + a.server).as_secs_f64() / (b.client + b.server).as_secs_f64());
//! }
//! assert!(median(&ratios) > 0.0);
//! # Ok::<(), mtls_bench::BoxError>(())
//! ```

#![forbid(unsafe_code)]

mod authz;
mod baseline;
mod ca;
mod fixture;
mod floor;
mod handshake;
mod instructions;
mod load;
mod memory;
mod server;
mod stats;
mod verify;

/// How many clients the fleet handshakes (`handshake-*-fleet`) take in
/// turn: more than the 64 chains a verifier remembers.
pub const FLEET: usize = 100;

pub use authz::{core_authorizer, file_policy, route_policy, AUTHZ_KINDS, AUTHZ_SIZES};
pub use ca::{measure_ca, CaRounds};
pub use fixture::Fixture;
pub use floor::{Floor, FloorKit};
pub use handshake::{
    handshake, measure_handshakes, measure_peer_identity, negotiated, FleetClient, HandshakeRounds,
    PerSide, Side,
};
pub use instructions::{run_workload, WORKLOADS};
pub use load::{load_window, request_client, LoadWindow};
pub use memory::{memory_per_connection, memory_server_main, vm_rss_kib};
pub use server::{measure_layer, LayerKit, ServerThread, Stack};
pub use stats::{calibrate, median, ns_per_call, paired_diff, paired_ratio, percentile, rotate};
pub use verify::{measure_verify, ChainVerifiers, VerifyRounds};

/// Errors of the benchmark: any error, with a message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
