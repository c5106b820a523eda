//! SPIFFE bundle (JWKS) parsing: round trip through emit; raw JSON or a
//! framed description of a document.
//!
//! The body is `targets::jwks_bundle` (fuzz/targets/mod.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::jwks_bundle(data));
