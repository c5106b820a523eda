//! Run with: `cargo run -p examples --bin renewing-identity`
//!
//! An app that gets its own identity from the embedded CA and renews it in
//! the background at about half its lifetime (here a 4-second SVID, to see
//! it happen), while a client keeps calling it: every call succeeds, and
//! the server's certificate changes with no restart. Exits 0 when the
//! identity was renewed at least twice and no call failed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use examples::demo::{self, serial, serve_whoami, whoami};
use examples::{error_chain, BoxError};
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{
    authorize, BundleSet, MtlsClientConfig, MtlsServerConfig, RenewingSvid, SpiffeId, SvidSpec,
    TrustDomain,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    demo::exit("renewing-identity", run().await)
}

async fn run() -> Result<bool, BoxError> {
    let td = TrustDomain::new("example.org")?;
    let ca = Arc::new(CertificateAuthority::self_signed_for_development(
        td.clone(),
        &CaOptions::default(),
    )?);
    let bundles = BundleSet::from(ca.bundle()?);

    // The app's own identity: issued now, renewed at ~50 % ± 10 % of its life
    // (the CA generates keys and signs on tokio's blocking pool).
    let spec =
        SvidSpec::new(SpiffeId::new("spiffe://example.org/app")?).ttl(Duration::from_secs(4));
    let identity = Arc::new(RenewingSvid::start(ca.clone(), spec).await?);
    let server = MtlsServerConfig::builder(identity.clone(), bundles.clone())
        .authorizer(authorize::member_of(td))
        .build()?;
    let addr = serve_whoami(server).await?;
    println!("spiffe://example.org/app on {addr}, with a 4 s SVID renewed in the background\n");

    let client = MtlsClientConfig::builder(
        ca.issue(&SvidRequest::new(SpiffeId::new(
            "spiffe://example.org/caller",
        )?))?,
        bundles,
    )
    .authorizer(authorize::exact(SpiffeId::new("spiffe://example.org/app")?))
    .build()?;
    let mut serials = BTreeSet::new();
    let mut failures = 0;
    for second in 0..8 {
        match whoami(&client, addr).await {
            Ok(answer) if answer.status == 200 => {
                let served = answer.server.as_ref().map(serial).unwrap_or_default();
                let new = serials.insert(served.clone());
                println!(
                    "t={second}s  call ok, server certificate {served}{}",
                    if new { "  (new)" } else { "" }
                );
            }
            Ok(answer) => {
                failures += 1;
                println!("t={second}s  call FAILED: HTTP {}", answer.status);
            }
            Err(e) => {
                failures += 1;
                println!("t={second}s  call FAILED: {}", error_chain(e.as_ref()));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let renewals = serials.len().saturating_sub(1);
    println!(
        "\n{renewals} renewals seen, {failures} failed calls, {} failed renewals",
        identity.status().failures
    );
    Ok(renewals >= 2 && failures == 0)
}
