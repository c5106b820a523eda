//! The JWT half of `SpireSource` against the in-repo Workload API server:
//! JWT-SVIDs by audience (`FetchJWTSVID`), cached and refreshed before
//! expiry, malformed tokens refused with a typed error while the last good
//! one serves, errors when the agent is down or denies; JWT bundles
//! (`FetchJWTBundles`) watched, updated, refused when malformed, withdrawn.
//! Run with `cargo test -p mtls-core --features spire --test spire_jwt`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mtls_core::{
    JwtBundle, JwtBundleSource, JwtSourceError, JwtSvidError, JwtSvidSource, JwtSvidValidator,
    JwtToken, SourceState, SpiffeBundle, SpireSource, SpireSourceBuilder, SpireSourceError,
    TrustDomain, X509Bundle,
};
use mtls_testing::{bounded, eventually, id, TestCa, TestJwtIssuer};
use mtls_workload_api_testing::{Status, WorkloadApiServer};

const TD: &str = "example.org";
const WEB: &str = "spiffe://example.org/web";
const API: &str = "spiffe://example.org/api";

/// An agent serving an X.509-SVID for `WEB` (so that a source connects).
async fn serving_agent() -> WorkloadApiServer {
    let ca = TestCa::root(TD);
    let leaf = ca.leaf(WEB);
    let agent = WorkloadApiServer::start().await.unwrap();
    agent.set_x509(
        vec![(id(WEB), leaf.chain.clone(), leaf.key.secret_der().to_vec())],
        vec![ca.root.clone()],
        Vec::new(),
    );
    agent
}

/// The audiences each `FetchJWTSVID` asked for.
type Asked = Arc<Mutex<Vec<Vec<String>>>>;

/// Mints with `issuer` for `ttl`, recording what is asked.
fn mint_with(agent: &WorkloadApiServer, issuer: Arc<TestJwtIssuer>, ttl: Duration) -> Asked {
    let asked: Asked = Arc::default();
    let record = asked.clone();
    agent.set_jwt_svids(move |audience, _spiffe_id| {
        record.lock().unwrap().push(audience.to_vec());
        let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
        Ok(vec![(WEB.to_owned(), issuer.mint(WEB, &audience, ttl))])
    });
    asked
}

fn builder(agent: &WorkloadApiServer) -> SpireSourceBuilder {
    SpireSource::builder()
        .endpoint(agent.endpoint())
        .initial_timeout(Some(Duration::from_secs(10)))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

async fn connect(agent: &WorkloadApiServer) -> SpireSource {
    bounded(builder(agent).connect()).await.unwrap()
}

fn aud(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// `issuer`'s JWT bundle as a SPIRE agent sends it: a standard JWKS,
/// without `use`.
fn jwks(issuer: &TestJwtIssuer) -> Vec<u8> {
    let bundle = issuer.bundle();
    let spiffe = SpiffeBundle::from_parts(
        X509Bundle::new(bundle.trust_domain().clone()),
        bundle.authorities().to_vec(),
    )
    .unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&spiffe.to_jwks().unwrap()).unwrap();
    for key in doc["keys"].as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("use");
    }
    doc.as_object_mut().unwrap().remove("spiffe_sequence");
    serde_json::to_vec(&doc).unwrap()
}

/// `source`'s JWT-SVID for `audience`, within the test timeout.
async fn fetch(source: &SpireSource, audience: &[&str]) -> Result<JwtToken, JwtSourceError> {
    bounded(source.fetch_jwt_svid(&aud(audience))).await
}

/// Asserts that `err` is the `SpireSource`'s own error, and one that
/// `expected` accepts.
#[track_caller]
fn assert_spire_error(err: &JwtSourceError, expected: fn(&SpireSourceError) -> bool) {
    let spire = err
        .upstream_error()
        .and_then(|e| e.downcast_ref::<SpireSourceError>());
    assert!(spire.is_some_and(expected), "{err:?}");
}

fn td() -> TrustDomain {
    TrustDomain::new(TD).unwrap()
}

async fn within_5s(condition: impl FnMut() -> bool) {
    assert!(eventually(Duration::from_secs(5), condition).await);
}

#[tokio::test]
async fn jwt_svids_are_fetched_by_audience_and_cached() {
    let agent = serving_agent().await;
    let issuer = Arc::new(TestJwtIssuer::new(TD, "k1"));
    let asked = mint_with(&agent, issuer.clone(), Duration::from_secs(300));
    let spire = connect(&agent).await;

    let token = fetch(&spire, &[API]).await.unwrap();
    assert_eq!(token.spiffe_id().as_str(), WEB);
    assert_eq!(token.audience(), aud(&[API]));
    let again = fetch(&spire, &[API]).await.unwrap();
    assert_eq!(again, token, "cached");
    assert_eq!(agent.jwt_svid_calls(), 1);

    // Another audience set: another fetch, with that audience.
    let both = fetch(&spire, &[API, "other"]).await.unwrap();
    assert_eq!(both.audience(), aud(&[API, "other"]));
    assert_eq!(*asked.lock().unwrap(), [aud(&[API]), aud(&[API, "other"])]);

    // A validator with the issuer's bundle accepts it.
    let bundles = mtls_core::JwtBundleSet::from(issuer.bundle());
    let svid = JwtSvidValidator::new(API)
        .validate(token.token(), &bundles)
        .unwrap();
    assert_eq!(svid.spiffe_id().as_str(), WEB);
    assert_eq!(spire.jwt_svid_status().generation, 2);
    assert_eq!(spire.jwt_svid_status().failures, 0);
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires() {
    let agent = serving_agent().await;
    let issuer = Arc::new(TestJwtIssuer::new(TD, "k1"));
    mint_with(&agent, issuer, Duration::from_secs(4));
    let spire = connect(&agent).await;

    let first = fetch(&spire, &[API]).await.unwrap();
    // At least 3 s left at receipt (`exp` is in whole seconds): due for a
    // refresh after at most 2 s, while still valid.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(SystemTime::now() < first.expiry());
    let second = fetch(&spire, &[API]).await.unwrap();
    assert_ne!(second, first);
    assert!(second.expiry() > first.expiry());
    assert_eq!(agent.jwt_svid_calls(), 2);
}

#[tokio::test]
async fn malformed_tokens_are_refused_with_a_typed_error_and_the_last_good_one_kept() {
    let agent = serving_agent().await;
    let issuer = Arc::new(TestJwtIssuer::new(TD, "k1"));
    mint_with(&agent, issuer.clone(), Duration::from_secs(4));
    let spire = connect(&agent).await;
    let good = fetch(&spire, &[API]).await.unwrap();

    // From now on the agent hands out `alg: none` tokens.
    agent.set_jwt_svids(|_, _| {
        // {"alg":"none"}.{"sub":"spiffe://example.org/web","aud":"api","exp":4102444800}.
        Ok(vec![(
            WEB.to_owned(),
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy93ZWIiLCJhdWQiOiJhcGkiLCJleHAiOjQxMDI0NDQ4MDB9."
                .to_owned(),
        )])
    });
    // A new audience set: nothing to fall back on.
    let err = fetch(&spire, &["api"]).await.unwrap_err();
    let JwtSourceError::Malformed { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(source, JwtSvidError::UnsupportedAlgorithm { .. }),
        "{source:?}"
    );

    // The first audience set, due for a refresh: the last good token.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let kept = fetch(&spire, &[API]).await.unwrap();
    assert_eq!(kept, good);
    let status = spire.jwt_svid_status();
    assert_eq!(status.failures, 2);
    assert!(matches!(
        status.last_error,
        Some(JwtSourceError::Malformed { .. })
    ));

    // Garbage and a token of another subject are refused too.
    agent.set_jwt_svids(|_, _| Ok(vec![(WEB.to_owned(), "not a token".to_owned())]));
    let err = fetch(&spire, &["x"]).await.unwrap_err();
    assert!(matches!(err, JwtSourceError::Malformed { .. }), "{err:?}");
    let other = Arc::new(TestJwtIssuer::new(TD, "k1"));
    agent.set_jwt_svids(move |audience, _| {
        let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
        Ok(vec![(
            WEB.to_owned(),
            other.mint(
                "spiffe://example.org/intruder",
                &audience,
                Duration::from_secs(60),
            ),
        )])
    });
    let pinned = bounded(builder(&agent).spiffe_id(id(WEB)).connect())
        .await
        .unwrap();
    let err = fetch(&pinned, &["y"]).await.unwrap_err();
    assert_spire_error(&err, |e| {
        matches!(e, SpireSourceError::WrongJwtSubject { .. })
    });
}

#[tokio::test]
async fn errors_of_the_workload_api_come_back_typed() {
    let agent = serving_agent().await;
    let spire = connect(&agent).await;

    // No minter: the server answers Unimplemented.
    let err = fetch(&spire, &[API]).await.unwrap_err();
    assert_spire_error(&err, |e| matches!(e, SpireSourceError::WorkloadApi { .. }));

    // A minter that fails, then a denial.
    agent.set_jwt_svids(|_, _| Err(Status::unavailable("signer down")));
    let err = fetch(&spire, &[API]).await.unwrap_err();
    let chain = mtls_core::ErrorChain(&err).to_string();
    assert!(chain.contains("signer down"), "{chain}");
    agent.deny(Some("no identity issued"));
    let err = fetch(&spire, &[API]).await.unwrap_err();
    assert_spire_error(&err, |e| matches!(e, SpireSourceError::Withdrawn { .. }));
    agent.deny(None);

    // The agent gone: refused, typed.
    drop(agent);
    let err = fetch(&spire, &["z"]).await.unwrap_err();
    assert_spire_error(&err, |e| matches!(e, SpireSourceError::WorkloadApi { .. }));
    assert_eq!(spire.jwt_svid_status().failures, 4);
}

#[tokio::test]
async fn jwt_bundles_are_watched_updated_and_refused_when_malformed() {
    let agent = serving_agent().await;
    let k1 = TestJwtIssuer::new(TD, "k1");
    agent.set_jwt_bundles(vec![(td(), jwks(&k1))]);
    let spire = bounded(builder(&agent).jwt_bundles(true).connect())
        .await
        .unwrap();

    let bundles = spire.current_jwt_bundles();
    let bundle: &JwtBundle = bundles.get(TD).unwrap();
    assert_eq!(bundle.len(), 1);
    assert!(bundle.authority("k1").is_some());
    let token = k1.mint(WEB, &[API], Duration::from_secs(60));
    JwtSvidValidator::new(API)
        .validate_from(&token, &spire)
        .unwrap();

    // A rotation: both keys, then the new one alone.
    let k2 = TestJwtIssuer::new(TD, "k2");
    let generation = JwtBundleSource::generation(&spire).unwrap();
    let mut both = k1.bundle();
    both.add_authority(k2.bundle().authority("k2").unwrap().clone())
        .unwrap();
    let both_jwks = {
        let issuer_view =
            SpiffeBundle::from_parts(X509Bundle::new(td()), both.authorities().to_vec()).unwrap();
        issuer_view.to_jwks().unwrap().into_bytes()
    };
    agent.set_jwt_bundles(vec![(td(), both_jwks)]);
    within_5s(|| spire.jwt_bundles().get(TD).map(JwtBundle::len) == Some(2)).await;
    assert!(JwtBundleSource::generation(&spire).unwrap() > generation);

    // Malformed: a key that is not a key. Refused, the last good set kept.
    let failures = spire.jwt_bundles_status().unwrap().failures;
    agent.set_jwt_bundles(vec![(
        td(),
        br#"{"keys":[{"kty":"EC","kid":"k3","crv":"P-256","x":"AAAA","y":"AAAA"}]}"#.to_vec(),
    )]);
    within_5s(|| spire.jwt_bundles_status().unwrap().failures > failures).await;
    assert_eq!(spire.jwt_bundles().get(TD).map(JwtBundle::len), Some(2));
    assert!(spire.jwt_bundles_status().unwrap().last_error.is_some());

    // Back to good material: served again.
    agent.set_jwt_bundles(vec![(td(), jwks(&k2))]);
    within_5s(|| {
        spire
            .jwt_bundles()
            .get(TD)
            .is_some_and(|b| b.len() == 1 && b.authority("k2").is_some())
    })
    .await;

    // Withdrawn: the state says so; the last good set keeps serving
    // (the default policy).
    agent.deny(Some("no identity issued"));
    within_5s(|| spire.jwt_bundles_status().unwrap().state == SourceState::Withdrawn).await;
    assert!(spire.jwt_bundles().contains(TD));
}

#[tokio::test]
async fn without_the_option_no_jwt_bundle_is_served_and_no_stream_opened() {
    let agent = serving_agent().await;
    agent.set_jwt_bundles(vec![(td(), jwks(&TestJwtIssuer::new(TD, "k1")))]);
    let spire = connect(&agent).await;
    assert!(spire.current_jwt_bundles().is_empty());
    assert!(spire.jwt_bundles_status().is_none());
    within_5s(|| agent.open_streams() == 1).await;

    // Asked for, but the agent serves none: connect gives up in time.
    let silent = serving_agent().await;
    let err = bounded(
        builder(&silent)
            .initial_timeout(Some(Duration::from_millis(500)))
            .jwt_bundles(true)
            .connect(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SpireSourceError::Timeout { .. }), "{err:?}");
}
