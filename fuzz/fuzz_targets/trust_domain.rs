//! Trust domain parsing, by name and by `spiffe://` ID.
//!
//! The body is `targets::trust_domain` (fuzz/targets/mod.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::trust_domain(data));
