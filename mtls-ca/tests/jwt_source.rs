//! The CA as a `JwtSvidSource` (`CaJwtSource`) and as a `JwtBundleSource`:
//! minted tokens validate against the CA's own JWT bundle, the policy's
//! refusals come back typed, the bundle's generation moves on rotation and
//! a token of the retired key keeps validating during the overlap; a
//! `RotatingCa` mints with its active CA and publishes every CA's keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mtls_ca::{CaError, CaJwtSource, CaOptions, CertificateAuthority, KeyType, RotatingCa};
use mtls_core::{
    CachedJwtSvids, JwtBundleSource, JwtSourceError, JwtSvidSource, JwtSvidValidator, SpiffeId,
    TrustDomain,
};

const API: &str = "spiffe://example.org/api";

fn dev_ca() -> CertificateAuthority {
    CertificateAuthority::self_signed_for_development(
        TrustDomain::new("example.org").unwrap(),
        &CaOptions::default(),
    )
    .unwrap()
}

fn ca() -> Arc<CertificateAuthority> {
    Arc::new(dev_ca())
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::new(s).unwrap()
}

fn aud(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn a_minted_token_validates_against_the_cas_jwt_bundle() {
    let ca = ca();
    let source =
        CaJwtSource::new(ca.clone(), id("spiffe://example.org/web")).ttl(Duration::from_secs(120));
    let token = source
        .fetch_jwt_svid(&aud(&[API, "spiffe://example.org/other"]))
        .await
        .unwrap();
    assert_eq!(token.spiffe_id().as_str(), "spiffe://example.org/web");
    assert_eq!(token.audience(), aud(&[API, "spiffe://example.org/other"]));
    let left = token.expiry().duration_since(SystemTime::now()).unwrap();
    assert!(left <= Duration::from_secs(120) && left > Duration::from_secs(100));

    let svid = JwtSvidValidator::new(API)
        .validate_from(token.token(), &ca)
        .unwrap();
    assert_eq!(svid.spiffe_id(), token.spiffe_id());
    assert_eq!(svid.expiry(), token.expiry());
}

/// The CA's own error behind a source's refusal.
fn ca_error(err: &JwtSourceError) -> Option<&CaError> {
    err.upstream_error()
        .and_then(|e| e.downcast_ref::<CaError>())
}

#[tokio::test]
async fn the_policy_refusals_come_back_typed() {
    let ca = ca();
    // Another trust domain than the CA's.
    let foreign = CaJwtSource::new(ca.clone(), id("spiffe://other.org/web"));
    let err = foreign.fetch_jwt_svid(&aud(&[API])).await.unwrap_err();
    assert!(
        matches!(ca_error(&err), Some(CaError::WrongTrustDomain { .. })),
        "{err}"
    );
    // A lifetime past the policy's.
    let long = CaJwtSource::new(ca.clone(), id("spiffe://example.org/web"))
        .ttl(Duration::from_secs(365 * 86400));
    let err = long.fetch_jwt_svid(&aud(&[API])).await.unwrap_err();
    assert!(matches!(err, JwtSourceError::Upstream { .. }), "{err}");
    // No audience.
    let web = CaJwtSource::new(ca, id("spiffe://example.org/web"));
    let err = web.fetch_jwt_svid(&[]).await.unwrap_err();
    assert!(matches!(err, JwtSourceError::NoAudience), "{err}");
    let err = web.fetch_jwt_svid(&aud(&[""])).await.unwrap_err();
    assert!(
        matches!(ca_error(&err), Some(CaError::InvalidAudience)),
        "{err}"
    );
}

#[tokio::test]
async fn cached_tokens_are_reused() {
    let ca = ca();
    let cache = CachedJwtSvids::new(CaJwtSource::new(ca, id("spiffe://example.org/web")));
    let first = cache.fetch_jwt_svid(&aud(&[API])).await.unwrap();
    let again = cache.fetch_jwt_svid(&aud(&[API])).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(cache.generation(), 1);
    assert_eq!(cache.status().failures, 0);
}

#[tokio::test]
async fn the_bundle_generation_moves_on_rotation_and_old_tokens_still_validate() {
    let ca = ca();
    let source = CaJwtSource::new(ca.clone(), id("spiffe://example.org/web"));
    let old = source.fetch_jwt_svid(&aud(&[API])).await.unwrap();
    let before = JwtBundleSource::generation(&*ca);
    assert_eq!(before, JwtBundleSource::generation(&*ca), "stable");

    ca.rotate_jwt_key(KeyType::P256).unwrap();
    assert_ne!(JwtBundleSource::generation(&*ca), before);
    let bundles = ca.current_jwt_bundles();
    assert_eq!(bundles.get("example.org").map(|b| b.len()), Some(2));

    let new = source.fetch_jwt_svid(&aud(&[API])).await.unwrap();
    let validator = JwtSvidValidator::new(API);
    let old_svid = validator.validate(old.token(), &bundles).unwrap();
    let new_svid = validator.validate(new.token(), &bundles).unwrap();
    assert_ne!(old_svid.key_id(), new_svid.key_id());
    // Only the CA's own trust domain.
    assert_eq!(bundles.len(), 1);
}

#[tokio::test]
async fn a_rotating_ca_mints_with_its_active_ca_and_publishes_every_cas_keys() {
    let rotating = Arc::new(RotatingCa::new(dev_ca()));
    let source = CaJwtSource::rotating(rotating.clone(), id("spiffe://example.org/web"));
    let validator = JwtSvidValidator::new(API);
    let old = source.fetch_jwt_svid(&aud(&[API])).await.unwrap();

    // Staged: the next CA's key is published before it signs anything.
    rotating.stage(dev_ca()).unwrap();
    assert_eq!(
        rotating
            .current_jwt_bundles()
            .get("example.org")
            .map(|b| b.len()),
        Some(2)
    );
    // Activated: the new CA mints; both tokens validate.
    rotating.activate().unwrap();
    let new = source.fetch_jwt_svid(&aud(&[API])).await.unwrap();
    let old_svid = validator.validate_from(old.token(), &*rotating).unwrap();
    let new_svid = validator.validate_from(new.token(), &*rotating).unwrap();
    assert_ne!(old_svid.key_id(), new_svid.key_id());
    assert_eq!(
        source.ca().jwt_signing_key().map(|k| k.key_id().to_owned()),
        Some(new_svid.key_id().to_owned())
    );
    // Retired: the old CA's tokens no longer validate.
    rotating.retire().unwrap();
    let err = validator
        .validate_from(old.token(), &*rotating)
        .unwrap_err();
    assert!(
        matches!(err, mtls_core::JwtSvidError::UnknownKeyId { .. }),
        "{err}"
    );
    validator.validate_from(new.token(), &*rotating).unwrap();
}
