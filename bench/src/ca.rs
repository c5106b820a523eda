//! The CA: SVID issuance and CSR signing, mtls-ca against rcgen used
//! directly for the same leaf.

use std::hint::black_box;
use std::time::SystemTime;

use mtls_ca::SvidRequest;
use mtls_core::rustls;
use mtls_core::{CrlSet, PeerRole, SpiffeId};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

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

/// The leaf that mtls-ca issues, built with rcgen directly.
fn raw_leaf_params(
    id: &SpiffeId,
    provider: &CryptoProvider,
) -> Result<CertificateParams, BoxError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    p.serial_number = Some(random_serial(provider)?);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::hours(1);
    p.use_authority_key_identifier_extension = true;
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

/// Times issuance and CSR signing, ours and raw, over `iters` calls each,
/// in `rounds` rounds that rotate which goes first; raw output must
/// verify like ours first.
pub fn measure_ca(fx: &Fixture, rounds: usize, iters: u64) -> Result<CaRounds, BoxError> {
    let id = SpiffeId::new("spiffe://bench.example.org/ns/prod/sa/worker")?;
    let request = SvidRequest::new(id.clone());
    let issuer = Issuer::from_ca_cert_der(
        fx.ca.certificate(),
        KeyPair::from_pem(&fx.ca.private_key_pem())?,
    )?;
    let provider = fx.provider.clone();

    // The CSR: a workload's P-256 key and its SPIFFE ID.
    let csr_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut csr_params = CertificateParams::new(Vec::<String>::new())?;
    csr_params.distinguished_name = DistinguishedName::new();
    csr_params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    let csr_pem = csr_params.serialize_request(&csr_key)?.pem()?;

    let raw_issue = || -> Result<(CertificateDer<'static>, Vec<u8>), BoxError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = raw_leaf_params(&id, &provider)?.signed_by(&key, &issuer)?;
        Ok((cert.der().clone(), key.serialize_der()))
    };
    let raw_csr = || -> Result<CertificateDer<'static>, BoxError> {
        let mut csr = CertificateSigningRequestParams::from_pem(&csr_pem)?;
        // Only the public key is used, as mtls-ca does.
        csr.params = raw_leaf_params(&id, &provider)?;
        Ok(csr.signed_by(&issuer)?.der().clone())
    };
    // Each must succeed, and raw output must verify like ours.
    fx.ca.issue(&request)?;
    fx.ca.sign_csr(csr_pem.as_bytes(), &request)?;
    let (raw_leaf, _) = raw_issue()?;
    mtls_core::verify(
        &[raw_leaf, fx.ca.certificate().clone()],
        &fx.bundles,
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Client,
    )?;
    raw_csr()?;

    let mut issue_ours = || {
        let _ = black_box(fx.ca.issue(black_box(&request)));
    };
    let mut issue_raw = || {
        let _ = black_box(raw_issue());
    };
    let mut csr_ours = || {
        let _ = black_box(fx.ca.sign_csr(black_box(csr_pem.as_bytes()), &request));
    };
    let mut csr_raw = || {
        let _ = black_box(raw_csr());
    };
    let mut out = rotate(
        rounds,
        iters,
        &mut [&mut issue_ours, &mut issue_raw, &mut csr_ours, &mut csr_raw],
    )
    .into_iter()
    .map(|v| v.iter().map(|ns| ns / 1e3).collect::<Vec<f64>>());
    Ok(CaRounds {
        issue_ours_us: out.next().unwrap_or_default(),
        issue_raw_us: out.next().unwrap_or_default(),
        csr_ours_us: out.next().unwrap_or_default(),
        csr_raw_us: out.next().unwrap_or_default(),
    })
}
