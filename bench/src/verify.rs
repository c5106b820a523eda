//! Chain verification alone: ours against rustls's client verifier and its
//! trust-anchor check.

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use mtls_core::rustls;
use mtls_core::{CrlSet, PeerIdentity, PeerRole, VerifyError};
use rustls::client::danger::ServerCertVerified;
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::RootCertStore;

use crate::stats::{kept, micros};
use crate::{rotate, BoxError, Fixture};

/// The three verifications of the client's chain that are compared, set up
/// once; each call verifies the chain again, now.
#[derive(Debug)]
pub struct ChainVerifiers<'a> {
    fx: &'a Fixture,
    leaf: &'a CertificateDer<'static>,
    intermediates: &'a [CertificateDer<'static>],
    crls: CrlSet,
    roots: Arc<RootCertStore>,
    client_verifier: Arc<dyn ClientCertVerifier>,
    algs: &'static [&'static dyn SignatureVerificationAlgorithm],
}

impl<'a> ChainVerifiers<'a> {
    /// The verifiers of `fx`'s client chain; each must succeed once.
    pub fn new(fx: &'a Fixture) -> Result<Self, BoxError> {
        let (leaf, intermediates) = fx.client.chain().split_first().ok_or("empty chain")?;
        let roots = fx.raw_roots()?;
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), fx.provider.clone())
                .build()?;
        let verifiers = Self {
            fx,
            leaf,
            intermediates,
            crls: CrlSet::new(),
            roots,
            client_verifier,
            algs: fx.provider.signature_verification_algorithms.all,
        };
        // Each must succeed before it is timed.
        verifiers.ours()?;
        verifiers.raw_client_verifier()?;
        verifiers.raw_trust_anchor()?;
        Ok(verifiers)
    }

    /// `mtls_core::verify` (path validation + the SPIFFE checks + the
    /// `PeerIdentity`), as the server verifies a client.
    pub fn ours(&self) -> Result<PeerIdentity, VerifyError> {
        mtls_core::verify(
            black_box(self.fx.client.chain()),
            &self.fx.bundles,
            SystemTime::now(),
            &self.crls,
            PeerRole::Client,
        )
    }

    /// `WebPkiClientVerifier::verify_client_cert`.
    pub fn raw_client_verifier(&self) -> Result<ClientCertVerified, rustls::Error> {
        self.client_verifier.verify_client_cert(
            black_box(self.leaf),
            self.intermediates,
            UnixTime::now(),
        )
    }

    /// `ParsedCertificate` + `verify_server_cert_signed_by_trust_anchor`.
    pub fn raw_trust_anchor(&self) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(black_box(self.leaf))?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            self.intermediates,
            UnixTime::now(),
            self.algs,
        )?;
        Ok(ServerCertVerified::assertion())
    }
}

/// µs per chain verification, round by round.
#[derive(Debug)]
pub struct VerifyRounds {
    /// [`ChainVerifiers::ours`].
    pub ours_us: Vec<f64>,
    /// [`ChainVerifiers::raw_client_verifier`].
    pub raw_client_verifier_us: Vec<f64>,
    /// [`ChainVerifiers::raw_trust_anchor`].
    pub raw_trust_anchor_us: Vec<f64>,
}

/// Times the three [`ChainVerifiers`] over `iters` calls each, in `rounds`
/// rounds that rotate which goes first.
pub fn measure_verify(fx: &Fixture, rounds: usize, iters: u64) -> Result<VerifyRounds, BoxError> {
    let verifiers = ChainVerifiers::new(fx)?;
    let [ours_us, raw_client_verifier_us, raw_trust_anchor_us] = rotate(
        rounds,
        iters,
        [
            &mut kept(|| verifiers.ours()),
            &mut kept(|| verifiers.raw_client_verifier()),
            &mut kept(|| verifiers.raw_trust_anchor()),
        ],
    )
    .map(micros);
    Ok(VerifyRounds {
        ours_us,
        raw_client_verifier_us,
        raw_trust_anchor_us,
    })
}
