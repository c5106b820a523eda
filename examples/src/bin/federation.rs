//! Run with: `cargo run -p examples --bin federation`
//!
//! Federation between two trust domains, `example.org` and `partner.org`,
//! each with its own CA. The example.org server holds one bundle per trust
//! domain and admits members of both; bundles are never merged, so a
//! `partner.org` identity signed by example.org's CA is refused. Exits 0
//! when everything behaved as shown.

use examples::demo::{self, serve_whoami, whoami};
use examples::{error_chain, BoxError};
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{authorize, BundleSet, MtlsClientConfig, MtlsServerConfig, SpiffeId, TrustDomain};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    demo::exit("federation", run().await)
}

async fn run() -> Result<bool, BoxError> {
    let example = TrustDomain::new("example.org")?;
    let partner = TrustDomain::new("partner.org")?;
    // Development roots, one per trust domain (never in production).
    let example_ca =
        CertificateAuthority::self_signed_for_development(example.clone(), &CaOptions::default())?;
    let partner_ca =
        CertificateAuthority::self_signed_for_development(partner.clone(), &CaOptions::default())?;
    let issue = |ca: &CertificateAuthority, id: &str| -> Result<_, BoxError> {
        Ok(ca.issue(&SvidRequest::new(SpiffeId::new(id)?))?)
    };

    // A third authority that example.org trusts (it is in example.org's
    // bundle) and that mints partner.org identities: a trust domain's
    // authorities must not vouch for another trust domain.
    let rogue =
        CertificateAuthority::self_signed_for_development(partner.clone(), &CaOptions::default())?;
    let mut example_bundle = example_ca.bundle()?;
    example_bundle.add_authority(rogue.certificate().clone())?;

    // The server holds one bundle per trust domain, never merged.
    let federated = BundleSet::from_bundles([example_bundle, partner_ca.bundle()?])?;

    let server = MtlsServerConfig::builder(
        issue(&example_ca, "spiffe://example.org/api")?,
        federated.clone(),
    )
    .authorizer(authorize::member_of_any([example.clone(), partner.clone()]))
    .build()?;
    let addr = serve_whoami(server).await?;
    println!("server spiffe://example.org/api on {addr} trusts example.org and partner.org\n");

    let mut all_ok = true;
    let callers = [
        (
            "spiffe://example.org/web",
            &example_ca,
            true,
            "a member of example.org",
        ),
        (
            "spiffe://partner.org/billing",
            &partner_ca,
            true,
            "a member of partner.org, signed by partner.org's CA",
        ),
        (
            "spiffe://partner.org/billing",
            &rogue,
            false,
            "claims partner.org, signed by an authority of example.org's bundle (bundles are never merged)",
        ),
    ];
    for (id, ca, expect_ok, what) in callers {
        let client = MtlsClientConfig::builder(issue(ca, id)?, federated.clone())
            .authorizer(authorize::exact(SpiffeId::new("spiffe://example.org/api")?))
            .build()?;
        let outcome = whoami(&client, addr).await;
        let ok = match &outcome {
            Ok(answer) => answer.status == 200 && answer.body == id,
            Err(_) => false,
        };
        let shown = match &outcome {
            Ok(answer) => format!("HTTP {}: {}", answer.status, answer.body),
            Err(e) => format!("refused: {}", error_chain(e.as_ref())),
        };
        let as_expected = ok == expect_ok;
        all_ok &= as_expected;
        println!(
            "{} {id} ({what})\n    {shown}",
            if as_expected { "[ok]  " } else { "[FAIL]" }
        );
    }
    Ok(all_ok)
}
