//! The bodies of the fuzz targets, one plain function per target.
//!
//! Compiled twice: by the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`,
//! nightly, libFuzzer) and by the stable replay test of the crate whose
//! code they exercise (`mtls-core/tests/fuzz_replay.rs`; the CA's own
//! target is in `ca.rs`, replayed by `mtls-ca/tests/fuzz_replay.rs`), which
//! runs every committed seed and regression input through these same
//! functions ([`replay.rs`](../replay.rs) is the shared harness). A target signals a bug
//! by panicking; every error it gets back must be a typed error.
//!
//! Inputs that plain bytes would never get past the first check of are
//! framed ([`frame`]) and may ask for re-signing ([`fixtures::Signer`]):
//! a mutated certificate, CSR or CRL is signed again by one of the fixed
//! keys, so the fuzzer reaches the checks after the signature.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod der;
pub mod fixtures;
pub mod frame;
pub mod jwt;
pub mod oracle;

use std::time::UNIX_EPOCH;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mtls_core::{
    verify, BundleError, BundleSet, CrlSet, PeerRole, SpiffeBundle, SpiffeId, TrustDomain,
    VerifyError, X509Bundle, X509Svid, MAX_CERTIFICATE_BYTES, MAX_CHAIN_LEN, MAX_SPIFFE_ID_LEN,
};
use rustls_pki_types::CertificateDer;
use serde_json::{json, Map, Value};

use fixtures::{Signer, FIXED_NOW, MAX_NOW};
use frame::Reader;
pub use jwt::jwt_svid;

/// A target: its name (also its corpus and regression directory) and its
/// body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of mtls-core's parsers and verification (the CA's is
/// `ca::CA_TARGETS`).
pub const TARGETS: &[Target] = &[
    ("spiffe_id", spiffe_id),
    ("trust_domain", trust_domain),
    ("pem_bundle", pem_bundle),
    ("jwks_bundle", jwks_bundle),
    ("x509_verify", x509_verify),
    ("crl", crl),
    ("svid_pem", svid_pem),
    ("jwt_svid", jwt_svid),
];

/// SPIFFE ID parsing. Whatever parses displays back to exactly the input
/// and parses again to an equal ID; every way to build an ID agrees.
pub fn spiffe_id(data: &[u8]) {
    let parsed = SpiffeId::from_bytes(data);
    if let Ok(s) = std::str::from_utf8(data) {
        assert_eq!(SpiffeId::new(s), parsed, "new and from_bytes disagree");
        let quoted = serde_json::to_string(s).expect("a string serializes");
        let via_serde = serde_json::from_str::<SpiffeId>(&quoted).ok();
        assert_eq!(via_serde, parsed.clone().ok(), "serde and new disagree");
    }
    let id = match parsed {
        Ok(id) => id,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(data.len() <= MAX_SPIFFE_ID_LEN);
    let shown = id.to_string();
    assert_eq!(shown.as_bytes(), data, "display is not the input");
    let again = SpiffeId::new(&shown).expect("a displayed ID parses");
    assert_eq!(again, id);
    let td = id.trust_domain();
    assert_eq!(TrustDomain::new(td.name()).as_ref(), Ok(td));
    assert_eq!(format!("spiffe://{td}{}", id.path()), shown);
    assert_eq!(SpiffeId::from_path(td, id.path()).as_ref(), Ok(&id));
    assert_eq!(SpiffeId::from_segments(td, id.segments()).as_ref(), Ok(&id));
    assert_eq!(id.is_trust_domain_id(), id.path().is_empty());
    assert!(id.is_member_of(td));
    assert!(id.is_under(&td.id()));
    assert!(id.is_under(&id));
    let json = serde_json::to_string(&id).expect("an ID serializes");
    let back: SpiffeId = serde_json::from_str(&json).expect("a serialized ID parses");
    assert_eq!(back, id);
}

/// Trust domain parsing, by name and by ID.
pub fn trust_domain(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(td) = TrustDomain::new(s) {
        let shown = td.to_string();
        assert_eq!(shown, s);
        assert_eq!(TrustDomain::new(&shown).as_ref(), Ok(&td));
        assert_eq!(td.id().trust_domain(), &td);
        assert!(td.id().is_trust_domain_id());
        assert_eq!(SpiffeId::new(&format!("spiffe://{s}")), Ok(td.id()));
        assert_eq!(
            TrustDomain::from_id_or_name(td.id().as_str()).as_ref(),
            Ok(&td)
        );
        assert_eq!(TrustDomain::from_id_or_name(s).as_ref(), Ok(&td));
    }
    match TrustDomain::from_id_or_name(s) {
        Ok(td) => {
            assert!(
                s == td.name() || s == td.id().as_str(),
                "{s:?} parsed as {td:?}"
            );
            assert_eq!(TrustDomain::new(td.name()).as_ref(), Ok(&td));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// PEM bundle loading: what loads writes back to PEM that loads to the
/// same authorities, and trusts only chains signed by one of them.
pub fn pem_bundle(data: &[u8]) {
    let td = fixtures::get().trust_domain.clone();
    let pem = X509Bundle::from_pem(td.clone(), data);
    let either = X509Bundle::from_pem_or_jwks(td.clone(), data);
    let start = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    if start.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        assert_eq!(
            pem.as_ref().ok(),
            either.as_ref().ok(),
            "from_pem_or_jwks is not from_pem on PEM"
        );
    }
    match pem {
        Ok(bundle) => {
            assert!(!bundle.is_empty(), "a PEM bundle without authorities");
            check_authority_sizes(&bundle);
            let again = X509Bundle::from_pem(td, bundle.to_pem().as_bytes())
                .expect("a bundle's own PEM loads");
            assert_eq!(again.authorities(), bundle.authorities());
            check_trust(&bundle);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// SPIFFE bundle (JWKS) parsing: what loads emits a document that loads to
/// an equal bundle (or, when an authority's key has no JWK form, a typed
/// error), and trusts only chains signed by one of its authorities; the
/// typed [`SpiffeBundle`] reading of the same document likewise, and never
/// reads what the X.509 view refuses.
///
/// Input: JSON as is, or, after a leading 0x00, a framed description of
/// a document whose certificates are raw DER (see [`jwks_document`]).
pub fn jwks_bundle(data: &[u8]) {
    let built;
    let json = match data.split_first() {
        Some((0, rest)) => {
            built = jwks_document(rest);
            &built[..]
        }
        _ => data,
    };
    let td = fixtures::get().trust_domain.clone();
    let x509 = X509Bundle::from_jwks(td.clone(), json);
    check_spiffe_bundle(&td, json, x509.as_ref().ok());
    let bundle = match x509 {
        Ok(bundle) => bundle,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    check_authority_sizes(&bundle);
    match bundle.to_jwks() {
        Ok(emitted) => {
            let again = X509Bundle::from_jwks(td.clone(), emitted.as_bytes())
                .unwrap_or_else(|e| panic!("emitted JWKS does not load: {e}\n{emitted}"));
            assert_eq!(again, bundle, "JWKS round trip changed the bundle");
            assert_eq!(again.to_jwks().ok(), Some(emitted), "emit is not stable");
        }
        Err(BundleError::InvalidCertificate { .. }) => {}
        Err(e) => panic!("emit failed with an unexpected error: {e}"),
    }
    if !bundle.is_empty() {
        let pem = X509Bundle::from_pem(td, bundle.to_pem().as_bytes())
            .expect("a JWKS bundle's PEM loads");
        assert_eq!(pem.authorities(), bundle.authorities());
    }
    check_trust(&bundle);
}

/// The typed reading of the same document: stricter than the X.509 view
/// (what it reads, the X.509 view reads, with the same authorities,
/// sequence and hint), and its emission reads back to an equal bundle.
fn check_spiffe_bundle(td: &TrustDomain, json: &[u8], x509: Option<&X509Bundle>) {
    let bundle = match SpiffeBundle::from_jwks(td.clone(), json) {
        Ok(bundle) => bundle,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let x509 = x509.expect("a document SpiffeBundle reads, X509Bundle reads");
    assert_eq!(bundle.x509().authorities(), x509.authorities());
    assert_eq!(bundle.sequence(), x509.sequence());
    assert_eq!(bundle.refresh_hint(), x509.refresh_hint());
    let mut kids: Vec<&str> = bundle
        .jwt_authorities()
        .iter()
        .map(|k| k.key_id())
        .collect();
    assert!(kids.iter().all(|k| !k.is_empty()), "an empty kid was read");
    kids.sort_unstable();
    kids.dedup();
    assert_eq!(
        kids.len(),
        bundle.jwt_authorities().len(),
        "duplicate kid read"
    );
    match bundle.to_jwks() {
        Ok(emitted) => {
            let again = SpiffeBundle::from_jwks(td.clone(), emitted.as_bytes())
                .unwrap_or_else(|e| panic!("emitted SPIFFE bundle does not load: {e}\n{emitted}"));
            assert_eq!(again, bundle, "SPIFFE bundle round trip changed the bundle");
        }
        Err(BundleError::InvalidCertificate { .. }) => {}
        Err(e) => panic!("emit failed with an unexpected error: {e}"),
    }
}

/// A JWKS document built from framed fields: flags (bit 0: a
/// `spiffe_sequence`, bit 1: a `spiffe_refresh_hint`, bit 2: a byte
/// order mark), the two numbers, then per key a kind byte and a DER
/// certificate (chunk16). The kind picks `use` (bits 0-1), `kty` (bits
/// 2-4), the shape of `x5c` (bits 5-6) and an extra member (bit 7).
pub fn jwks_document(data: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let sequence = r.u64();
    let hint = r.u64();
    let mut keys = Vec::new();
    while !r.is_empty() && keys.len() < 64 {
        let kind = r.u8();
        let der = STANDARD.encode(r.chunk16());
        let mut key = Map::new();
        match kind & 3 {
            0 => key.insert("use".into(), "x509-svid".into()),
            1 => key.insert("use".into(), "jwt-svid".into()),
            2 => key.insert("use".into(), "other".into()),
            _ => None,
        };
        match (kind >> 2) & 7 {
            0 => key.insert("kty".into(), "EC".into()),
            1 => key.insert("kty".into(), "RSA".into()),
            2 => key.insert("kty".into(), "OKP".into()),
            3 => key.insert("kty".into(), "oct".into()),
            4 => key.insert("kty".into(), 7.into()),
            _ => None,
        };
        match (kind >> 5) & 3 {
            0 => key.insert("x5c".into(), json!([der])),
            1 => key.insert("x5c".into(), json!([der.clone(), der])),
            2 => key.insert("x5c".into(), json!([])),
            _ => None,
        };
        if kind & 0x80 != 0 {
            key.insert("kid".into(), json!({ "nested": [sequence, null, true] }));
        }
        keys.push(Value::Object(key));
    }
    let mut doc = Map::new();
    doc.insert("keys".into(), Value::Array(keys));
    if flags & 1 != 0 {
        doc.insert("spiffe_sequence".into(), sequence.into());
    }
    if flags & 2 != 0 {
        doc.insert("spiffe_refresh_hint".into(), hint.into());
    }
    let mut out = if flags & 4 != 0 {
        b"\xEF\xBB\xBF".to_vec()
    } else {
        Vec::new()
    };
    out.extend(serde_json::to_vec(&Value::Object(doc)).expect("JSON serializes"));
    out
}

fn check_authority_sizes(bundle: &X509Bundle) {
    for (i, a) in bundle.authorities().iter().enumerate() {
        assert!(
            a.len() <= MAX_CERTIFICATE_BYTES,
            "authority #{i} is {} bytes",
            a.len()
        );
    }
}

/// The fixed chain (leaf, intermediate) verified against `bundle`: it may
/// be trusted only if an authority has the key of the root or of the
/// intermediate, and must be when the bundle holds the root itself.
fn check_trust(bundle: &X509Bundle) {
    let f = fixtures::get();
    let set = BundleSet::from(bundle.clone());
    let chain = [f.leaf.clone(), f.intermediate.clone()];
    let result = verify(
        &chain,
        &set,
        fixtures::at(FIXED_NOW),
        &CrlSet::new(),
        PeerRole::Client,
    );
    let signer_keys = [&f.root, &f.intermediate].map(|c| {
        oracle::parse(c)
            .expect("fixed certificates parse")
            .tbs_certificate
            .subject_pki
            .raw
    });
    let has_signer_key = bundle
        .authorities()
        .iter()
        .any(|a| oracle::parse(a).is_some_and(|c| signer_keys.contains(&c.public_key().raw)));
    match &result {
        Ok(_) if !has_signer_key => {
            panic!("a bundle without the signers' keys trusted the fixed chain")
        }
        Err(VerifyError::Chain { reason, .. }) if reason.contains("Maximum") => {}
        Err(e) if bundle.contains(&f.root) => {
            panic!("a bundle holding the root refused the fixed chain: {e}")
        }
        _ => {}
    }
}

/// X.509-SVID verification of arbitrary chains against the fixed bundle
/// (the fixed root only). Never panics; never accepts a chain that the
/// reference check ([`oracle::accepted_chain_violation`]) refuses, such
/// as one not signed by the bundle.
///
/// Input: the verification time (u64, Unix seconds), flags (bit 0: the
/// peer is a server), then per certificate a [`Signer`] byte and its DER
/// (chunk16).
pub fn x509_verify(data: &[u8]) {
    let f = fixtures::get();
    let mut r = Reader::new(data);
    let now = r.u64() % (MAX_NOW + 1);
    let role = if r.u8() & 1 == 0 {
        PeerRole::Client
    } else {
        PeerRole::Server
    };
    let mut chain = Vec::new();
    while !r.is_empty() && chain.len() <= MAX_CHAIN_LEN + 1 {
        let signer = Signer::from_byte(r.u8());
        chain.push(CertificateDer::from(signer.apply(r.chunk16())));
    }
    let result = verify(&chain, &f.bundle, fixtures::at(now), &CrlSet::new(), role);
    match result {
        Ok(peer) => {
            let ders: Vec<&[u8]> = chain.iter().map(|c| c.as_ref()).collect();
            if let Some(why) = oracle::accepted_chain_violation(&ders, now, role, peer.spiffe_id())
            {
                panic!("verify accepted a chain it must refuse: {why}");
            }
            assert_eq!(&peer.chain()[..], &chain[..]);
            assert!(!peer.is_expired_at(fixtures::at(now)));
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind(), e.spiffe_id());
        }
    }
}

/// CRL loading, and the loaded CRLs used to verify the fixed chain: a
/// chain revoked by a CRL of its issuer is never accepted, and nothing is
/// revoked by a CRL that does not list it.
///
/// Input: a [`Signer`] byte, then the CRL document (PEM, or DER which
/// the signer re-signs).
pub fn crl(data: &[u8]) {
    let f = fixtures::get();
    let mut r = Reader::new(data);
    let signer = Signer::from_byte(r.u8());
    let doc = signer.apply(r.rest());
    let set = match CrlSet::from_pem_or_der(&doc) {
        Ok(set) => set,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(!set.is_empty());
    let pem: String = set
        .ders()
        .iter()
        .map(|d| mtls_core::to_pem("X509 CRL", d))
        .collect();
    let again = CrlSet::from_pem(pem.as_bytes()).expect("a CRL set's own PEM loads");
    assert_eq!(again.ders(), set.ders());

    let chain = [f.leaf.clone(), f.intermediate.clone()];
    let result = verify(
        &chain,
        &f.bundle,
        fixtures::at(FIXED_NOW),
        &set,
        PeerRole::Client,
    );
    let ders: Vec<&[u8]> = set.ders().iter().map(|d| d.as_ref()).collect();
    let root = oracle::parse(&f.root).expect("fixed root");
    let intermediate = oracle::parse(&f.intermediate).expect("fixed intermediate");
    match result {
        Ok(_) => {
            assert!(
                !oracle::revokes(&ders, &intermediate, &fixtures::LEAF_SERIAL),
                "a leaf revoked by its issuer's CRL was accepted"
            );
            assert!(
                !oracle::revokes(&ders, &root, &fixtures::INTERMEDIATE_SERIAL),
                "an intermediate revoked by the root's CRL was accepted"
            );
        }
        Err(VerifyError::Revoked { .. }) => assert!(
            !oracle::surely_lists_none(
                &ders,
                &[&fixtures::LEAF_SERIAL, &fixtures::INTERMEDIATE_SERIAL]
            ),
            "revoked by CRLs that list neither serial"
        ),
        Err(VerifyError::BadSignature { .. } | VerifyError::Chain { .. }) => {}
        Err(e) => panic!("a CRL made the fixed chain fail with an unrelated error: {e}"),
    }
}

/// SVID loading from PEM: what loads writes back to PEM that loads to the
/// same SVID, and verifies against the fixed bundle only if the reference
/// check agrees.
///
/// Input: the chain PEM (chunk16), then the key PEM to the end.
pub fn svid_pem(data: &[u8]) {
    let f = fixtures::get();
    let mut r = Reader::new(data);
    let chain = r.chunk16();
    let key = r.rest();
    let svid = match X509Svid::from_pem(chain, key) {
        Ok(svid) => svid,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(!svid.chain().is_empty() && svid.chain().len() <= MAX_CHAIN_LEN);
    let again = X509Svid::from_pem(
        svid.chain_pem().as_bytes(),
        svid.private_key_pem().as_bytes(),
    )
    .unwrap_or_else(|e| panic!("an SVID's own PEM does not load: {e}"));
    assert_eq!(again.chain(), svid.chain());
    assert_eq!(again.spiffe_id(), svid.spiffe_id());
    assert_eq!(
        again.private_key().secret_der(),
        svid.private_key().secret_der()
    );
    let Ok(since_epoch) = svid.not_before().duration_since(UNIX_EPOCH) else {
        return;
    };
    let now = since_epoch.as_secs().min(MAX_NOW);
    if let Ok(peer) = svid.verify(
        &f.bundle,
        fixtures::at(now),
        &CrlSet::new(),
        PeerRole::Client,
    ) {
        let ders: Vec<&[u8]> = svid.chain().iter().map(|c| c.as_ref()).collect();
        if let Some(why) =
            oracle::accepted_chain_violation(&ders, now, PeerRole::Client, peer.spiffe_id())
        {
            panic!("verify accepted an SVID it must refuse: {why}");
        }
    }
}
