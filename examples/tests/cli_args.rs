//! Run with: `cargo test -p examples --test cli_args`
//!
//! The flag parsing and authorizers shared by the four network examples
//! (`examples::cli`), tested once here rather than in every binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;

use examples::cli::{parse_bundle_arg, ServerArgs};
use examples::BoxError;
use mtls_core::{Authorizer, SpiffeId, TrustDomain};

#[test]
fn bundle_args() -> Result<(), String> {
    let a = parse_bundle_arg("b.pem")?;
    assert!(a.trust_domain.is_none());
    assert_eq!(a.path, PathBuf::from("b.pem"));

    let a = parse_bundle_arg("other.org=dir/b.json")?;
    assert_eq!(
        a.trust_domain.map(|t| t.to_string()).as_deref(),
        Some("other.org")
    );
    assert_eq!(a.path, PathBuf::from("dir/b.json"));

    let a = parse_bundle_arg("spiffe://other.org=b.pem")?;
    assert_eq!(
        a.trust_domain.map(|t| t.to_string()).as_deref(),
        Some("other.org")
    );

    // Not a trust domain before '=': the whole value is a path.
    let a = parse_bundle_arg("./x=y.pem")?;
    assert!(a.trust_domain.is_none());
    assert_eq!(a.path, PathBuf::from("./x=y.pem"));

    assert!(parse_bundle_arg("other.org=").is_err());
    assert!(parse_bundle_arg("").is_err());
    Ok(())
}

#[test]
fn default_authorizer_is_own_trust_domain() -> Result<(), BoxError> {
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }
    let own = TrustDomain::new("example.org")?;
    let member = SpiffeId::new("spiffe://example.org/a")?;
    let stranger = SpiffeId::new("spiffe://other.org/a")?;
    let base = ["x", "--listen", "127.0.0.1:0", "--cert", "c", "--key", "k"];

    let cli = Cli::try_parse_from(base.iter().chain(&["--bundle", "b"]))?;
    let authz = cli.server.connection_authorizer(&own);
    assert!(authz.authorize(&member).is_ok());
    assert!(authz.authorize(&stranger).is_err());
    assert!(cli.server.admin_authorizer().authorize(&member).is_err());

    let cli = Cli::try_parse_from(base.iter().chain(&[
        "--bundle",
        "b",
        "--allow",
        "spiffe://example.org/b",
        "--allow-trust-domain",
        "other.org",
        "--admin",
        "spiffe://example.org/a",
    ]))?;
    let authz = cli.server.connection_authorizer(&own);
    assert!(authz.authorize(&member).is_err());
    assert!(authz
        .authorize(&SpiffeId::new("spiffe://example.org/b")?)
        .is_ok());
    assert!(authz.authorize(&stranger).is_ok());
    assert!(cli.server.admin_authorizer().authorize(&member).is_ok());
    Ok(())
}
