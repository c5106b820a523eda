//! CSR signing in mtls-ca: arbitrary (re-signable) CSR bytes and requests.
//!
//! The body is `ca::csr_sign` (fuzz/targets/ca.rs), which the stable replay
//! test of mtls-ca runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

#[path = "../targets/ca.rs"]
mod ca;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ca::csr_sign(data));
