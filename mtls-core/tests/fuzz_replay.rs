//! The fuzz targets of this crate's parsers and verification on stable
//! (`fuzz/targets/mod.rs`, the code the cargo-fuzz binaries run): every
//! committed seed and regression input, and deterministic mutations of
//! each seed (harness: `fuzz/targets/replay.rs`). The CA's target replays
//! in `mtls-ca/tests/fuzz_replay.rs`, which also writes the seeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/targets/mod.rs"]
mod targets;

#[macro_use]
#[path = "../../fuzz/targets/replay.rs"]
mod replay;

use targets::TARGETS;

/// Regression inputs (`target/name`) of bugs whose library fix is not in
/// yet, with the bug (see `replay::replay_inputs`).
const AWAITING_FIX: &[(&str, &str)] = &[];

replay_tests!(TARGETS, awaiting_fix: AWAITING_FIX);

#[test]
fn fuzz_binaries_match_the_targets() {
    replay::check_binaries(TARGETS);
}

/// The `jwt_svid` target gets past the signature: its good seeds are
/// accepted, and signing them any other way is not.
#[test]
fn jwt_svid_good_seeds_reach_the_claims() {
    use targets::jwt::{sign, Signing, AUDIENCE};
    let validator = mtls_core::JwtSvidValidator::new(AUDIENCE);
    let seeds = targets::jwt::seeds();
    let token = |name: &str| {
        let bytes = &seeds.iter().find(|(n, _)| n == name).unwrap().1;
        String::from_utf8(bytes.clone()).unwrap()
    };
    let now = targets::fixtures::at(targets::fixtures::FIXED_NOW);
    let bundles = targets::jwt::bundles();
    for name in ["token-good", "token-other-trust-domain"] {
        validator.validate_at(&token(name), &bundles, now).unwrap();
    }
    let header = br#"{"alg":"ES256","kid":"fuzz-p256"}"#;
    let claims =
        format!(r#"{{"sub":"spiffe://example.org/w","aud":"{AUDIENCE}","exp":4000000000}}"#);
    assert!(validator
        .validate_at(
            &sign(Signing::Good, header, claims.as_bytes()),
            &bundles,
            now
        )
        .is_ok());
    for signing in [Signing::Der, Signing::Empty, Signing::Stranger] {
        assert!(validator
            .validate_at(&sign(signing, header, claims.as_bytes()), &bundles, now)
            .is_err());
    }
}

/// Writes the seeds of `jwt_svid` (replacing its old `seed-*` files). The
/// other targets' seeds are written by mtls-ca's `generate_seeds`.
#[test]
#[ignore = "writes fuzz/corpus/jwt_svid; run by hand to regenerate the seeds"]
fn generate_jwt_svid_seeds() {
    let dir = replay::fuzz_dir().join("corpus/jwt_svid");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, _) in replay::files(&dir, "seed-") {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    for (name, bytes) in targets::jwt::seeds() {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

/// The bundle endpoint response check (feature `federation`) on the
/// `jwks_bundle` seeds, regressions and mutations.
#[cfg(feature = "federation")]
#[path = "../../fuzz/targets/federation.rs"]
mod federation;

#[cfg(feature = "federation")]
#[test]
fn bundle_responses_replay() {
    let targets: &[replay::Body] = &[("jwks_bundle", federation::bundle_response)];
    replay::replay_inputs(targets, AWAITING_FIX);
    replay::replay_mutations(targets);
}
