//! The CA: SVID issuance and CSR signing, mtls-ca against rcgen used
//! directly for the same leaf.

use std::hint::black_box;
use std::time::SystemTime;

use mtls_ca::SvidRequest;
use mtls_core::rustls;
use mtls_core::{CrlSet, PeerRole, SpiffeId};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, Issuer, KeyPair,
    SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

use crate::stats::{kept, micros};
use crate::{rotate, BoxError, Fixture};

fn random_serial(provider: &CryptoProvider) -> Result<SerialNumber, BoxError> {
    let mut bytes = [0u8; 16];
    provider
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "no randomness")?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The leaf that mtls-ca issues, built with rcgen directly: the test
/// kit's SVID leaf with a random serial like mtls-ca's.
fn raw_leaf_params(
    id: &SpiffeId,
    provider: &CryptoProvider,
) -> Result<CertificateParams, BoxError> {
    let mut p = mtls_testing::leaf_params(id.as_str());
    p.serial_number = Some(random_serial(provider)?);
    Ok(p)
}

/// µs per SVID issued and per CSR signed, ours and raw rcgen, per round.
#[derive(Debug)]
pub struct CaRounds {
    /// `CertificateAuthority::issue`: a new key and its SVID.
    pub issue_ours_us: Vec<f64>,
    /// rcgen: a new key and the same leaf.
    pub issue_raw_us: Vec<f64>,
    /// `CertificateAuthority::sign_csr`.
    pub csr_ours_us: Vec<f64>,
    /// rcgen: the CSR parsed and the same leaf signed.
    pub csr_raw_us: Vec<f64>,
}

/// The four CA operations, ours and raw rcgen, ready to run.
pub(crate) struct CaKit<'a> {
    fx: &'a Fixture,
    request: SvidRequest,
    id: SpiffeId,
    issuer: Issuer<'static, KeyPair>,
    csr_pem: String,
}

impl<'a> CaKit<'a> {
    /// Sets up (the CSR: a workload's P-256 key and its SPIFFE ID), then
    /// runs each operation once: each must succeed, and raw output must
    /// verify like ours.
    pub(crate) fn new(fx: &'a Fixture) -> Result<Self, BoxError> {
        let id = SpiffeId::new("spiffe://bench.example.org/ns/prod/sa/worker")?;
        let issuer = Issuer::from_ca_cert_der(
            fx.ca.certificate(),
            KeyPair::from_pem(&fx.ca.private_key_pem())?,
        )?;
        let csr_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut csr_params = CertificateParams::new(Vec::<String>::new())?;
        csr_params.distinguished_name = DistinguishedName::new();
        csr_params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
        let csr_pem = csr_params.serialize_request(&csr_key)?.pem()?;
        let kit = Self {
            fx,
            request: SvidRequest::new(id.clone()),
            id,
            issuer,
            csr_pem,
        };
        kit.issue_ours()?;
        kit.csr_ours()?;
        let (raw_leaf, _) = kit.issue_raw()?;
        mtls_core::verify(
            &[raw_leaf, fx.ca.certificate().clone()],
            &fx.bundles,
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Client,
        )?;
        kit.csr_raw()?;
        Ok(kit)
    }

    /// `CertificateAuthority::issue`: a new key and its SVID.
    pub(crate) fn issue_ours(&self) -> Result<(), BoxError> {
        black_box(self.fx.ca.issue(black_box(&self.request))?);
        Ok(())
    }

    /// rcgen: a new key and the same leaf.
    pub(crate) fn issue_raw(&self) -> Result<(CertificateDer<'static>, Vec<u8>), BoxError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = raw_leaf_params(&self.id, &self.fx.provider)?.signed_by(&key, &self.issuer)?;
        Ok((cert.der().clone(), key.serialize_der()))
    }

    /// `CertificateAuthority::sign_csr`.
    pub(crate) fn csr_ours(&self) -> Result<(), BoxError> {
        black_box(
            self.fx
                .ca
                .sign_csr(black_box(self.csr_pem.as_bytes()), &self.request)?,
        );
        Ok(())
    }

    /// rcgen: the CSR parsed and the same leaf signed (only the public key
    /// is used, as mtls-ca does).
    pub(crate) fn csr_raw(&self) -> Result<CertificateDer<'static>, BoxError> {
        let mut csr = CertificateSigningRequestParams::from_pem(&self.csr_pem)?;
        csr.params = raw_leaf_params(&self.id, &self.fx.provider)?;
        Ok(csr.signed_by(&self.issuer)?.der().clone())
    }
}

/// Times issuance and CSR signing, ours and raw, over `iters` calls each,
/// in `rounds` rounds that rotate which goes first; raw output must
/// verify like ours first.
pub fn measure_ca(fx: &Fixture, rounds: usize, iters: u64) -> Result<CaRounds, BoxError> {
    let kit = CaKit::new(fx)?;
    let [issue_ours_us, issue_raw_us, csr_ours_us, csr_raw_us] = rotate(
        rounds,
        iters,
        [
            &mut kept(|| kit.issue_ours()),
            &mut kept(|| kit.issue_raw()),
            &mut kept(|| kit.csr_ours()),
            &mut kept(|| kit.csr_raw()),
        ],
    )
    .map(micros);
    Ok(CaRounds {
        issue_ours_us,
        issue_raw_us,
        csr_ours_us,
        csr_raw_us,
    })
}
