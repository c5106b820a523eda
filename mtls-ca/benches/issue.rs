//! Run with: `cargo bench -p mtls-ca --bench issue`
//!
//! SVID issuance (a fresh P-256 key + signing) and CSR signing by
//! `CertificateAuthority`, against raw rcgen doing the same with the same
//! intermediate CA key: the same leaf fields, a random serial, and (for
//! CSRs) a parsed and signature-checked request of which only the public
//! key is used. What mtls-ca adds: the issuance policy check, the
//! verification of every issued chain against the CA's own bundle (for
//! both TLS roles), and the `X509Svid` checks. Its pieces are timed too.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion};
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{BundleSet, CrlSet, PeerRole, SpiffeId, TrustDomain, X509Svid};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, Issuer, KeyPair,
    SanType, SerialNumber,
};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

const ID: &str = "spiffe://bench.example.org/ns/prod/sa/worker";

/// The leaf mtls-ca issues, with rcgen directly: the test kit's SVID leaf
/// with a random serial like mtls-ca's.
fn leaf_params() -> CertificateParams {
    let mut serial = [0u8; 16];
    mtls_core::default_crypto_provider()
        .secure_random
        .fill(&mut serial)
        .unwrap();
    serial[0] &= 0x7f;
    let mut p = mtls_testing::leaf_params(ID);
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p
}

fn issuance(c: &mut Criterion) {
    let td = TrustDomain::new("bench.example.org").unwrap();
    let root =
        CertificateAuthority::self_signed_for_development(td, &CaOptions::default()).unwrap();
    let ca = root.intermediate(&CaOptions::default()).unwrap();
    let issuer = Issuer::from_ca_cert_der(
        ca.certificate(),
        KeyPair::from_pem(&ca.private_key_pem()).unwrap(),
    )
    .unwrap();
    let request = SvidRequest::new(SpiffeId::new(ID).unwrap());
    let bundles = BundleSet::from(ca.bundle().unwrap());

    let csr_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut csr_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    csr_params.distinguished_name = DistinguishedName::new();
    csr_params.subject_alt_names = vec![SanType::URI(ID.try_into().unwrap())];
    let csr_pem = csr_params
        .serialize_request(&csr_key)
        .unwrap()
        .pem()
        .unwrap();

    let mut group = c.benchmark_group("issue_svid");
    group.bench_function("ours/CertificateAuthority::issue", |b| {
        b.iter(|| ca.issue(black_box(&request)).unwrap())
    });
    group.bench_function("raw/rcgen", |b| {
        b.iter(|| {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let cert = leaf_params().signed_by(&key, &issuer).unwrap();
            (cert, key.serialize_der())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("sign_csr");
    group.bench_function("ours/CertificateAuthority::sign_csr", |b| {
        b.iter(|| {
            ca.sign_csr(black_box(csr_pem.as_bytes()), &request)
                .unwrap()
        })
    });
    group.bench_function("raw/rcgen", |b| {
        b.iter(|| {
            let mut csr = CertificateSigningRequestParams::from_pem(black_box(&csr_pem)).unwrap();
            csr.params = leaf_params();
            csr.signed_by(&issuer).unwrap()
        })
    });
    group.finish();

    // What `issue` does beyond rcgen, piece by piece.
    let svid = ca.issue(&request).unwrap();
    let mut group = c.benchmark_group("issue_svid_pieces");
    group.bench_function("p256_key_generation", |b| {
        b.iter(|| KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap())
    });
    group.bench_function("self_check_one_role/mtls_core::verify", |b| {
        b.iter(|| {
            mtls_core::verify(
                black_box(svid.chain()),
                &bundles,
                SystemTime::now(),
                &CrlSet::new(),
                PeerRole::Client,
            )
            .unwrap()
        })
    });
    group.bench_function("bundle", |b| b.iter(|| ca.bundle().unwrap()));
    group.bench_function("X509Svid::new", |b| {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            svid.private_key().secret_der().to_vec(),
        ));
        b.iter(|| X509Svid::new(svid.chain().to_vec(), key.clone_key()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, issuance);
criterion_main!(benches);
