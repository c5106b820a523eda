//! SPIFFE bundle (JWKS) parsing: round trip through emit; raw JSON or a
//! framed description of a document. The same bytes then go through the
//! bundle endpoint response check (`federation::bundle_response`).
//!
//! The bodies are `targets::jwks_bundle` (fuzz/targets/mod.rs) and
//! `federation::bundle_response` (fuzz/targets/federation.rs), which the
//! stable replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

#[path = "../targets/federation.rs"]
mod federation;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::jwks_bundle(data);
    federation::bundle_response(data);
});
