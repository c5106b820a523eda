//! One error convention across the crates (Rust API guidelines): an error
//! that wraps another returns it from `source()` and does not repeat its
//! text, so anyhow/eyre chains (and [`ErrorChain`]) show each cause once.
//! (mtls-ca's errors: `mtls-ca/tests/error_chains.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::error::Error;

use mtls_core::{
    BundleSet, ErrorChain, FilePaths, FileSource, IssueError, SpiffeId, SvidIssuer, SvidSpec,
    X509Svid,
};
use mtls_testing::{client_rejection, TestCa};
use rcgen::SanType;

/// Asserts that no error of `e`'s chain repeats its source's message, and
/// that the chain has at least `depth` errors; returns the chain's text.
pub fn assert_said_once(case: &str, e: &(dyn Error + 'static), depth: usize) -> String {
    let mut count = 1;
    let mut outer = e;
    while let Some(source) = outer.source() {
        let (said, cause) = (outer.to_string(), source.to_string());
        assert!(
            !said.contains(&cause),
            "{case}: {said:?} repeats its source {cause:?}"
        );
        count += 1;
        outer = source;
    }
    assert!(
        count >= depth,
        "{case}: only {count} errors in {}",
        ErrorChain(e)
    );
    ErrorChain(e).to_string()
}

struct Down;

impl SvidIssuer for Down {
    async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
        Err(IssueError::issuer(
            &spec.spiffe_id,
            std::io::Error::other("the CA is unreachable"),
        ))
    }
}

#[tokio::test]
async fn errors_say_their_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::root("example.org");
    let svid = ca.leaf("spiffe://example.org/web").svid();
    let chain = dir.path().join("svid.pem");
    let key = dir.path().join("svid.key");
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&chain, svid.chain_pem()).unwrap();
    std::fs::write(&key, svid.private_key_pem()).unwrap();

    let load_fails_with = |case: &str, prefix: String| {
        let e = FileSource::load(FilePaths::new(&chain, &key, &bundle)).unwrap_err();
        let text = assert_said_once(case, &e, 2);
        assert!(text.starts_with(&prefix), "{case}: {text}");
    };

    // A file source whose bundle file holds the leaf, not a CA.
    std::fs::write(&bundle, svid.chain_pem()).unwrap();
    load_fails_with(
        "bundle file",
        format!(
            "file source: cannot load the bundle {}: bundle for example.org: ",
            bundle.display()
        ),
    );

    // A file source whose key file is not a key.
    std::fs::write(&bundle, ca.bundle().to_pem()).unwrap();
    std::fs::write(&key, "not a key").unwrap();
    load_fails_with(
        "key file",
        format!("file source: cannot load the SVID in {}: ", chain.display()),
    );

    // An issuer that is down.
    let spec = SvidSpec::new(SpiffeId::new("spiffe://example.org/web").unwrap());
    let e = Down.issue_svid(&spec).await.unwrap_err();
    let text = assert_said_once("issuer", &e, 2);
    assert_eq!(
        text,
        "svid issuer: cannot issue an SVID for spiffe://example.org/web: the CA is unreachable"
    );

    // A peer whose URI SAN is not a SPIFFE ID.
    let bad = ca.leaf_with("spiffe://example.org/web", |p| {
        p.subject_alt_names = vec![SanType::URI(
            "spiffe://example.org:8443/web".try_into().unwrap(),
        )];
    });
    let bundles = BundleSet::from(ca.bundle());
    let e = client_rejection(&bad.chain, &bundles);
    let text = assert_said_once("URI SAN", &e, 2);
    assert!(
        text.starts_with(
            "x509svid: the leaf's URI SAN \"spiffe://example.org:8443/web\" is not a valid SPIFFE ID: "
        ),
        "{text}"
    );
}
