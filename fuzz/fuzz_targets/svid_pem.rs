//! SVID loading from a PEM chain and key.
//!
//! The body is `targets::svid_pem` (fuzz/targets/mod.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::svid_pem(data));
