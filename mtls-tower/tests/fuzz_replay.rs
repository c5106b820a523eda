//! The fuzz target of this crate's policy file parser on stable
//! (`fuzz/targets/policy.rs`, the code the cargo-fuzz binary runs): every
//! committed seed and regression input, and deterministic mutations of
//! each seed (harness: `fuzz/targets/replay.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/targets/policy.rs"]
mod policy;

#[macro_use]
#[path = "../../fuzz/targets/replay.rs"]
mod replay;

use policy::POLICY_TARGETS;

replay_tests!(POLICY_TARGETS, awaiting_fix: &[]);

#[test]
fn fuzz_binaries_match_the_targets() {
    // The body is called as `policy::policy_file(data)`.
    replay::check_binaries(POLICY_TARGETS);
    for (name, _) in POLICY_TARGETS {
        assert!(
            replay::OTHER_CRATES_TARGETS.contains(name),
            "{name} is missing from replay::OTHER_CRATES_TARGETS"
        );
    }
}
