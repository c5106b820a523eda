//! JWT-SVID validation against a fixed JWT bundle: a token as text, or a
//! framed header and claims that the target signs with the fixed key.
//!
//! The body is `targets::jwt_svid` (fuzz/targets/jwt.rs), which the stable
//! replay test runs on every seed and regression input.
#![no_main]

#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::jwt_svid(data));
