//! The fuzz target of mtls-ca's own code: CSR signing by an authority.
//!
//! Apart from the other targets (`mod.rs`, mtls-core's parsers) because it
//! needs mtls-ca: `fuzz/fuzz_targets/csr_sign.rs` and
//! `mtls-ca/tests/fuzz_replay.rs` include it next to `mod.rs`, which they
//! name `targets`.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use mtls_ca::SvidRequest;
use mtls_core::{verify, CrlSet, PeerRole, SpiffeId};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateSigningRequestDer;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension};

use crate::targets::fixtures::{self, Signer};
use crate::targets::frame::Reader;
use crate::targets::{oracle, Target};

/// The CA's targets.
pub const CA_TARGETS: &[Target] = &[("csr_sign", csr_sign)];

/// CSR signing by an mtls-ca authority (the fixed intermediate). What is
/// signed verifies, carries exactly the request's SPIFFE ID, only DNS
/// names the request grants, and the CSR's own public key.
///
/// Input: a [`Signer`] byte for the CSR, the request's SPIFFE ID (chunk8;
/// `spiffe://example.org/web` if it does not parse), TTL (u32 seconds),
/// a DNS name count (u8, mod 4) and the names (chunk8 each), a common
/// name (chunk8, none if empty), then the CSR (PEM or DER) to the end.
pub fn csr_sign(data: &[u8]) {
    let f = fixtures::get();
    let ca = intermediate_ca();
    let mut r = Reader::new(data);
    let signer = Signer::from_byte(r.u8());
    let id = SpiffeId::from_bytes(r.chunk8())
        .unwrap_or_else(|_| SpiffeId::from_static("spiffe://example.org/web"));
    let mut request = SvidRequest::new(id.clone()).ttl(Duration::from_secs(r.u32().into()));
    let mut dns = Vec::new();
    for _ in 0..r.u8() % 4 {
        let name = String::from_utf8_lossy(r.chunk8()).into_owned();
        dns.push(name.clone());
        request = request.dns_name(name);
    }
    let cn = r.chunk8();
    if !cn.is_empty() {
        request = request.common_name(String::from_utf8_lossy(cn));
    }
    let csr = signer.apply(r.rest());
    let chain = match ca.sign_csr(&csr, &request) {
        Ok(chain) => chain,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // What was signed: the CSR's key, the request's names, verifiable.
    assert_eq!(chain.len(), 2, "leaf and intermediate");
    assert_eq!(chain[1], f.intermediate);
    let peer = verify(
        &chain,
        &f.bundle,
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Client,
    )
    .unwrap_or_else(|e| panic!("a signed CSR does not verify: {e}"));
    assert_eq!(peer.spiffe_id(), &id);
    let leaf = oracle::parse(&chain[0]).expect("the issued leaf parses");
    assert_eq!(oracle::uris(&leaf), [id.as_str()]);
    for name in oracle::dns_names(&leaf) {
        assert!(
            dns.iter().any(|d| d == name),
            "DNS name {name:?} not asked for"
        );
    }
    let der = match csr.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'-') => CertificateSigningRequestDer::from_pem_slice(&csr)
            .expect("a signed PEM CSR decodes")
            .as_ref()
            .to_vec(),
        _ => csr.clone(),
    };
    let (_, parsed) = X509CertificationRequest::from_der(&der).expect("a signed CSR parses");
    parsed
        .verify_signature()
        .expect("a signed CSR's signature verifies");
    assert_eq!(
        leaf.public_key().raw,
        parsed.certification_request_info.subject_pki.raw,
        "the leaf does not carry the CSR's key"
    );
    for ext in parsed.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::BasicConstraints(bc) => assert!(!bc.ca, "signed a CA request"),
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::URI(u) => assert_eq!(*u, id.as_str()),
                        GeneralName::DNSName(d) => assert!(
                            dns.iter().any(|g| g.eq_ignore_ascii_case(d)),
                            "signed a CSR asking for DNS name {d:?}"
                        ),
                        other => panic!("signed a CSR asking for {other:?}"),
                    }
                }
            }
            _ => {}
        }
    }
}

/// The fixed root loaded as a new mtls-ca authority (it issues directly).
pub fn load_root_ca() -> mtls_ca::CertificateAuthority {
    let f = fixtures::get();
    mtls_ca::CertificateAuthority::from_pem(
        fixtures::chain_pem(&[&f.root]).as_bytes(),
        f.root_key.serialize_pem().as_bytes(),
        &mtls_ca::LoadOptions::default(),
    )
    .expect("the fixed root loads as a CA")
}

/// The fixed intermediate loaded as a new mtls-ca authority: it issues
/// chains of a leaf and the intermediate, trusted by the fixed bundle.
pub fn load_intermediate_ca() -> mtls_ca::CertificateAuthority {
    let f = fixtures::get();
    mtls_ca::CertificateAuthority::from_pem(
        fixtures::chain_pem(&[&f.intermediate, &f.root]).as_bytes(),
        f.intermediate_key.serialize_pem().as_bytes(),
        &mtls_ca::LoadOptions::default(),
    )
    .expect("the fixed intermediate loads as a CA")
}

/// One shared [`load_intermediate_ca`], for the CSR target.
pub fn intermediate_ca() -> &'static mtls_ca::CertificateAuthority {
    static CA: OnceLock<mtls_ca::CertificateAuthority> = OnceLock::new();
    CA.get_or_init(load_intermediate_ca)
}
