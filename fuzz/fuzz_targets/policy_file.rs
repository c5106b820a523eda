//! Policy file parsing (mtls-tower): never panics; errors carry a line
//! and column; the compiled index agrees with rule-by-rule evaluation.
//!
//! The body is `policy::policy_file` (fuzz/targets/policy.rs), which
//! mtls-tower's stable replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/policy.rs"]
mod policy;

libfuzzer_sys::fuzz_target!(|data: &[u8]| policy::policy_file(data));
