//! CSR signing in mtls-ca: arbitrary (re-signable) CSR bytes and requests.
//!
//! The body is `targets::csr_sign` (fuzz/targets/mod.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::csr_sign(data));
