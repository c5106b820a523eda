//! CRL loading, and the CRLs used to verify a fixed chain.
//!
//! The body is `targets::crl` (fuzz/targets/mod.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::crl(data));
