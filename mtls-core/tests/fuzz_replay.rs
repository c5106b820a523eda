//! The fuzz targets of this crate's parsers and verification on stable
//! (`fuzz/targets/mod.rs`, the code the cargo-fuzz binaries run): every
//! committed seed and regression input, and deterministic mutations of
//! each seed (harness: `fuzz/targets/replay.rs`). The CA's target replays
//! in `mtls-ca/tests/fuzz_replay.rs`, which also writes the seeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/targets/mod.rs"]
mod targets;

#[path = "../../fuzz/targets/replay.rs"]
mod replay;

use targets::TARGETS;

/// Regression inputs (`target/name`) of bugs whose library fix is not in
/// yet, with the bug (see `replay::replay_inputs`).
const AWAITING_FIX: &[(&str, &str)] = &[];

#[test]
fn every_seed_and_regression_input_replays() {
    replay::replay_inputs(TARGETS, AWAITING_FIX);
}

#[test]
fn mutated_seeds_never_fail() {
    replay::replay_mutations(TARGETS);
}

#[test]
fn fuzz_binaries_match_the_targets() {
    replay::check_binaries(TARGETS);
}

/// The bundle endpoint response check (feature `federation`) on the
/// `jwks_bundle` seeds, regressions and mutations.
#[cfg(feature = "federation")]
#[path = "../../fuzz/targets/federation.rs"]
mod federation;

#[cfg(feature = "federation")]
#[test]
fn bundle_responses_replay() {
    let targets: &[replay::Body] = &[("jwks_bundle", federation::bundle_response)];
    replay::replay_inputs(targets, AWAITING_FIX);
    replay::replay_mutations(targets);
}
