//! PEM bundle loading: round trip through `to_pem`; the loaded bundle
//! trusts only chains signed by one of its authorities.
//!
//! The body is `targets::pem_bundle` (fuzz/targets/mod.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::pem_bundle(data));
