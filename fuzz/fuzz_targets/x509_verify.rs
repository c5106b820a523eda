//! X.509-SVID verification of arbitrary (re-signable) DER chains against
//! a fixed bundle: never panics, never accepts a chain the reference
//! check refuses.
//!
//! The body is `targets::x509_verify` (fuzz/targets/mod.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::x509_verify(data));
