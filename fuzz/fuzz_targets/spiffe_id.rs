//! SPIFFE ID parsing: never panics; whatever parses displays back to the
//! input and parses again to an equal ID.
//!
//! The body is `targets::spiffe_id` (fuzz/targets/mod.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::spiffe_id(data));
