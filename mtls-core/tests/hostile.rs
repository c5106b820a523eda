//! Hostile input beyond fuzzing: oversized, deeply nested, truncated and
//! mis-encoded certificates, huge bundles, and files that misbehave while
//! a `FileSource` reads them. Each case is named by its defect and must
//! end in a typed error (or, for the huge-but-valid cases, work), never a
//! panic, a hang or a stack overflow. The other hostile cases live beside
//! the features they attack (spiffe_id.rs, bundle.rs, verify.rs,
//! handshake.rs, file_source.rs, svid.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fuzz targets' DER helpers: re-signing a certificate patched after
// it was signed.
#[allow(dead_code, unreachable_pub)]
#[path = "../../fuzz/targets/der.rs"]
mod der;

use std::time::{Instant, SystemTime};

use mtls_core::{
    verify, BundleError, BundleSet, CrlError, CrlSet, PeerIdentity, PeerRole, SpiffeIdError,
    SvidError, TrustDomain, VerifyError, X509Bundle, X509Svid, MAX_CERTIFICATE_BYTES,
};
use mtls_testing::{ca_params, leaf_params};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, Issuer, KeyPair, SanType, SerialNumber,
    PKCS_ED25519,
};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

const TD: &str = "example.org";
const ID: &str = "spiffe://example.org/web";

/// A URI SAN that patches replace, byte for byte, after signing.
const URI_PLACEHOLDER: &str = "spiffe://example.org/pppppppppppppppppppppppppppppppp";
/// A DNS SAN that patches replace.
const DNS_PLACEHOLDER: &str = "qqqqqqqqqqqqqqqq.example.org";

fn td() -> TrustDomain {
    TrustDomain::new(TD).unwrap()
}

/// A CA (Ed25519, so that `der::resign` can sign patched certificates
/// again) with its key at hand.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    cert: CertificateDer<'static>,
}

impl Ca {
    fn root() -> Self {
        Self::root_with(|_| {})
    }

    fn root_with(mutate: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let mut params = ca_params(TD);
        mutate(&mut params);
        let cert = params.self_signed(&key).unwrap().der().clone();
        Self { params, key, cert }
    }

    /// An intermediate CA signed by this one.
    fn intermediate_with(&self, mutate: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let mut params = ca_params(TD);
        mutate(&mut params);
        let cert = self.sign(&params, &key);
        Self { params, key, cert }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// `params` with `key`, signed by this CA.
    fn sign(&self, params: &CertificateParams, key: &KeyPair) -> CertificateDer<'static> {
        params.signed_by(key, &self.issuer()).unwrap().der().clone()
    }

    /// A leaf for `ID`, after `mutate`.
    fn leaf_with(
        &self,
        mutate: impl FnOnce(&mut CertificateParams),
    ) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = leaf_params(ID);
        mutate(&mut params);
        let cert = self.sign(&params, &key);
        (cert, key)
    }

    fn leaf(&self) -> CertificateDer<'static> {
        self.leaf_with(|_| {}).0
    }

    /// `der` with `from` replaced by `to` (of the same length), signed again
    /// by this CA so that only the patch is wrong.
    fn patch(&self, der: &[u8], from: &[u8], to: &[u8]) -> CertificateDer<'static> {
        assert_eq!(from.len(), to.len(), "a patch keeps the length");
        let at = der
            .windows(from.len())
            .position(|w| w == from)
            .expect("the placeholder is in the certificate");
        let mut patched = der.to_vec();
        patched[at..at + to.len()].copy_from_slice(to);
        CertificateDer::from(der::resign(&patched, &self.key))
    }

    fn bundles(&self) -> BundleSet {
        BundleSet::from(X509Bundle::from_authorities(td(), [self.cert.clone()]).unwrap())
    }
}

fn check(
    chain: &[CertificateDer<'static>],
    bundles: &BundleSet,
) -> Result<PeerIdentity, VerifyError> {
    verify(
        chain,
        bundles,
        SystemTime::now(),
        &CrlSet::new(),
        PeerRole::Client,
    )
}

/// `s` padded with `a` to `len` bytes.
fn padded(s: &[u8], len: usize) -> Vec<u8> {
    let mut out = s.to_vec();
    out.resize(len, b'a');
    out
}

/// Runs `f` on a thread with a small stack: deep nesting must fail by a
/// limit, not by luck with the main thread's stack.
fn on_small_stack<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::Result<T> {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
}

// ---------------------------------------------------------------------------
// Certificates: SANs
// ---------------------------------------------------------------------------

/// The SPIFFE ID defect behind a verification result, if it is one.
fn invalid_id(r: &Result<PeerIdentity, VerifyError>) -> Option<&SpiffeIdError> {
    match r {
        Err(VerifyError::InvalidSpiffeId { source, .. }) => Some(source),
        _ => None,
    }
}

#[test]
fn hostile_sans_are_typed_errors() {
    use SpiffeIdError as E;
    let ca = Ca::root();
    let bundles = ca.bundles();
    let uri = |s: &str| SanType::URI(s.try_into().unwrap());
    let (placeholder_leaf, _) = ca.leaf_with(|p| p.subject_alt_names = vec![uri(URI_PLACEHOLDER)]);
    let patch_uri = |to: &[u8]| {
        ca.patch(
            &placeholder_leaf,
            URI_PLACEHOLDER.as_bytes(),
            &padded(to, URI_PLACEHOLDER.len()),
        )
    };
    let (dns_leaf, _) = ca.leaf_with(|p| {
        p.subject_alt_names = vec![
            uri(ID),
            SanType::DnsName(DNS_PLACEHOLDER.try_into().unwrap()),
        ]
    });
    let sub = ca.intermediate_with(|p| p.subject_alt_names = vec![uri(URI_PLACEHOLDER)]);
    let sub_leaf = sub.leaf();
    let sub_patched = ca.patch(
        &sub.cert,
        URI_PLACEHOLDER.as_bytes(),
        &padded(b"spiffe://example.org/\xff", URI_PLACEHOLDER.len()),
    );
    // ~26 bytes per SAN: 2,000 fit in 64 KiB, 10,000 do not.
    let many_uris = |n: usize| {
        move |p: &mut CertificateParams| {
            p.subject_alt_names = (0..n)
                .map(|i| uri(&format!("spiffe://example.org/{i}")))
                .collect()
        }
    };
    let (leaf_2000, _) = ca.leaf_with(many_uris(2_000));
    let (leaf_10000, _) = ca.leaf_with(many_uris(10_000));
    let (leaf_dns_4000, _) = ca.leaf_with(|p| {
        p.subject_alt_names = std::iter::once(uri(ID))
            .chain((0..4_000).map(|i| SanType::DnsName(format!("h{i}.x").try_into().unwrap())))
            .collect()
    });
    let long_id = format!("spiffe://example.org/{}", "a".repeat(2049 - 21));
    let (leaf_long_id, _) = ca.leaf_with(|p| p.subject_alt_names = vec![uri(&long_id)]);

    type Expect = fn(&Result<PeerIdentity, VerifyError>) -> bool;
    let cases: Vec<(&str, Vec<CertificateDer<'static>>, Expect)> = vec![
        (
            "valid-placeholder-leaf",
            vec![placeholder_leaf.clone()],
            |r| r.is_ok(),
        ),
        (
            "wrong-uri-san-invalid-utf8",
            vec![patch_uri(b"spiffe://example.org/\xff\xfe")],
            |r| matches!(r, Err(VerifyError::MalformedCertificate { index: 0, .. })),
        ),
        (
            "wrong-uri-san-nul-in-path",
            vec![patch_uri(b"spiffe://example.org/a\0b")],
            |r| matches!(invalid_id(r), Some(E::BadPathChar { byte: 0, index: 2 })),
        ),
        (
            "wrong-uri-san-trailing-nul",
            vec![ca.patch(&placeholder_leaf, URI_PLACEHOLDER.as_bytes(), &{
                let mut s = padded(b"spiffe://example.org/", URI_PLACEHOLDER.len() - 1);
                s.push(0);
                s
            })],
            |r| matches!(invalid_id(r), Some(E::BadPathChar { byte: 0, .. })),
        ),
        (
            "wrong-uri-san-nul-in-trust-domain",
            vec![patch_uri(b"spiffe://exa\0ple.org/")],
            |r| {
                matches!(
                    invalid_id(r),
                    Some(E::BadTrustDomainChar { byte: 0, index: 3 })
                )
            },
        ),
        (
            "wrong-uri-san-spiffe-id-over-2048-bytes",
            vec![leaf_long_id],
            |r| matches!(invalid_id(r), Some(E::TooLong { len: 2049 })),
        ),
        (
            "wrong-dns-san-invalid-utf8-beside-a-valid-uri",
            vec![ca.patch(
                &dns_leaf,
                DNS_PLACEHOLDER.as_bytes(),
                &padded(b"\xff\xfe.example.org", DNS_PLACEHOLDER.len()),
            )],
            |r| matches!(r, Err(VerifyError::MalformedCertificate { index: 0, .. })),
        ),
        (
            "wrong-intermediate-uri-san-invalid-utf8",
            vec![sub_leaf, sub_patched],
            |r| matches!(r, Err(VerifyError::MalformedCertificate { index: 1, .. })),
        ),
        ("wrong-2000-uri-sans", vec![leaf_2000], |r| {
            matches!(r, Err(VerifyError::MultipleUriSans { count: 2_000 }))
        }),
        (
            "wrong-10000-uri-sans-certificate-too-large",
            vec![leaf_10000.clone()],
            |r| matches!(r, Err(VerifyError::CertificateTooLarge { index: 0, len }) if *len > MAX_CERTIFICATE_BYTES),
        ),
        (
            "valid-4000-dns-sans-beside-the-uri",
            vec![leaf_dns_4000],
            |r| r.is_ok(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, chain, expect) in cases {
        let start = Instant::now();
        let result = check(&chain, &bundles);
        if !expect(&result) {
            let got = result.as_ref().map(|p| p.spiffe_id().clone());
            failures.push(format!("{name}: got {got:?}"));
        }
        if let Err(e) = &result {
            let _ = e.to_string();
        }
        eprintln!("{name}: {:?}", start.elapsed());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The same 10,000-SAN certificate elsewhere: a bundle authority, an SVID.
    assert!(matches!(
        X509Bundle::from_authorities(td(), [leaf_10000.clone()]),
        Err(BundleError::CertificateTooLarge { index: 0, len }) if len > MAX_CERTIFICATE_BYTES
    ));
    let key = KeyPair::generate().unwrap();
    let svid = X509Svid::new(
        vec![leaf_10000],
        PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    );
    assert!(
        matches!(
            &svid,
            Err(SvidError::CertificateTooLarge { index: 0, len }) if *len > MAX_CERTIFICATE_BYTES
        ),
        "{svid:?}"
    );
}

/// An authority whose own URI SAN is undecodable loads, and is harmless:
/// only an authority's subject and key are used, and a leaf it signs
/// verifies as any other.
#[test]
fn bundle_authority_with_an_invalid_utf8_uri_san() {
    let ca = Ca::root_with(|p| {
        p.subject_alt_names = vec![SanType::URI(URI_PLACEHOLDER.try_into().unwrap())]
    });
    let patched = ca.patch(
        &ca.cert,
        URI_PLACEHOLDER.as_bytes(),
        &padded(b"spiffe://example.org/\xff", URI_PLACEHOLDER.len()),
    );
    let bundle = X509Bundle::from_authorities(td(), [patched.clone()]).unwrap();
    let jwks = bundle.to_jwks().unwrap();
    assert_eq!(
        X509Bundle::from_jwks(td(), jwks.as_bytes()).unwrap(),
        bundle
    );
    let peer = check(&[ca.leaf()], &BundleSet::from(bundle)).unwrap();
    assert_eq!(peer.spiffe_id().as_str(), ID);
    // As an intermediate, the same defect is refused: see
    // wrong-intermediate-uri-san-invalid-utf8 above.
}

// ---------------------------------------------------------------------------
// Certificates: DER
// ---------------------------------------------------------------------------

/// A SEQUENCE nested `depth` times around nothing. Built from the inside
/// out: each level's content is exactly the next level's header and
/// content, so the whole is the headers, outermost first.
fn nested_der(depth: usize) -> Vec<u8> {
    let mut headers = Vec::with_capacity(depth);
    let mut len = 0usize;
    for _ in 0..depth {
        let mut header = vec![0x30];
        header.extend(length_octets(len));
        len += header.len();
        headers.push(header);
    }
    headers.into_iter().rev().flatten().collect()
}

fn length_octets(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let mut out = vec![0x80 | (bytes.len() - skip) as u8];
    out.extend_from_slice(&bytes[skip..]);
    out
}

/// Asserts that `$value` matches `$pattern`, naming the nesting depth and the value when not.
macro_rules! assert_at_depth {
    ($depth:expr, $value:ident, $pattern:pat) => {
        assert!(matches!($value, $pattern), "depth {}: {:?}", $depth, $value)
    };
}

#[test]
fn deeply_nested_der_is_an_error_not_a_stack_overflow() {
    for depth in [64, 1_000, 10_000, 200_000] {
        let nested = nested_der(depth);
        assert_eq!(der::header(&nested).map(|(h, l)| h + l), Some(nested.len()));
        let len = nested.len();
        let results = on_small_stack(move || {
            let cert = CertificateDer::from(nested.clone());
            let ca = Ca::root();
            let key =
                PrivateKeyDer::try_from(KeyPair::generate().unwrap().serialize_der()).unwrap();
            (
                check(std::slice::from_ref(&cert), &ca.bundles()).map(|_| ()),
                check(&[ca.leaf(), cert.clone()], &ca.bundles()).map(|_| ()),
                X509Bundle::from_authorities(td(), [cert.clone()]).map(|_| ()),
                CrlSet::new()
                    .add_der(CertificateRevocationListDer::from(nested))
                    .map(|_| ()),
                X509Svid::new(vec![cert], key).map(|_| ()),
            )
        })
        .unwrap_or_else(|_| panic!("depth {depth}: panicked or overflowed the stack"));
        let (leaf, intermediate, bundle, crl, svid) = results;
        if len > MAX_CERTIFICATE_BYTES {
            assert_at_depth!(
                depth,
                leaf,
                Err(VerifyError::CertificateTooLarge { index: 0, .. })
            );
            assert_at_depth!(
                depth,
                intermediate,
                Err(VerifyError::CertificateTooLarge { index: 1, .. })
            );
            assert_at_depth!(
                depth,
                bundle,
                Err(BundleError::CertificateTooLarge { index: 0, .. })
            );
        } else {
            assert_at_depth!(
                depth,
                leaf,
                Err(VerifyError::MalformedCertificate { index: 0, .. })
            );
            // An unusable intermediate the path does not need is ignored.
            assert!(intermediate.is_ok(), "depth {depth}: {intermediate:?}");
            assert_at_depth!(
                depth,
                bundle,
                Err(BundleError::InvalidCertificate { index: 0, .. })
            );
        }
        assert_at_depth!(depth, crl, Err(CrlError::Invalid { index: 0, .. }));
        assert_at_depth!(
            depth,
            svid,
            Err(SvidError::Leaf(VerifyError::MalformedCertificate {
                index: 0,
                ..
            })) | Err(SvidError::CertificateTooLarge { index: 0, .. })
        );
    }
}

#[test]
fn every_truncation_of_a_chain_is_a_typed_error() {
    let root = Ca::root();
    let sub = root.intermediate_with(|_| {});
    let (leaf, _) = sub.leaf_with(|_| {});
    let bundles = root.bundles();
    assert!(check(&[leaf.clone(), sub.cert.clone()], &bundles).is_ok());
    for cut in 0..leaf.len() {
        let short = CertificateDer::from(leaf[..cut].to_vec());
        let r = check(&[short, sub.cert.clone()], &bundles);
        assert!(
            matches!(r, Err(VerifyError::MalformedCertificate { index: 0, .. })),
            "leaf cut at {cut}: {r:?}"
        );
    }
    for cut in 0..sub.cert.len() {
        let short = CertificateDer::from(sub.cert[..cut].to_vec());
        // The intermediate the path needs is unusable: refused, as a
        // malformed chain or an unknown issuer.
        let r = check(&[leaf.clone(), short.clone()], &bundles);
        assert!(
            matches!(
                r,
                Err(VerifyError::Chain { .. } | VerifyError::UntrustedIssuer { .. })
            ),
            "intermediate cut at {cut}: {r:?}"
        );
        let b = X509Bundle::from_authorities(td(), [short]);
        assert!(
            matches!(b, Err(BundleError::InvalidCertificate { index: 0, .. })),
            "authority cut at {cut}: {b:?}"
        );
    }
}

#[test]
fn broken_der_lengths_are_typed_errors() {
    let ca = Ca::root();
    let leaf = ca.leaf();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("indefinite-length", {
            let mut v = vec![0x30, 0x80];
            v.extend_from_slice(&leaf[4..]);
            v.extend_from_slice(&[0, 0]);
            v
        }),
        (
            "length-over-4-gib",
            vec![0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "length-beyond-the-data",
            vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30, 0x00],
        ),
        ("non-minimal-length", {
            let (header, len) = der::header(&leaf).unwrap();
            let mut v = vec![0x30, 0x84];
            v.extend_from_slice(&(len as u32).to_be_bytes());
            v.extend_from_slice(&leaf[header..]);
            v
        }),
        ("trailing-garbage", {
            let mut v = leaf.to_vec();
            v.push(0);
            v
        }),
        ("wrong-outer-tag", {
            let mut v = leaf.to_vec();
            v[0] = 0x31;
            v
        }),
    ];
    let bundles = ca.bundles();
    for (name, der) in cases {
        let r = check(&[CertificateDer::from(der.clone())], &bundles);
        assert!(
            matches!(r, Err(VerifyError::MalformedCertificate { index: 0, .. })),
            "{name}: {r:?}"
        );
        let b = X509Bundle::from_authorities(td(), [CertificateDer::from(der.clone())]);
        assert!(
            matches!(b, Err(BundleError::InvalidCertificate { .. })),
            "{name}: {b:?}"
        );
        let c = CrlSet::new().add_der(CertificateRevocationListDer::from(der));
        assert!(matches!(c, Err(CrlError::Invalid { .. })), "{name}: {c:?}");
    }
}

// ---------------------------------------------------------------------------
// Huge bundles
// ---------------------------------------------------------------------------

/// 10,000 roots load (PEM and JWKS) and a leaf of the last one verifies.
/// Not a timed test: the times are printed (`--nocapture`) and recorded in
/// FUZZING.md from a release run.
#[test]
fn bundle_of_10000_roots_loads_and_verifies() {
    const N: usize = 10_000;
    let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let start = Instant::now();
    let params: Vec<CertificateParams> = (0..N)
        .map(|i| {
            let mut p = ca_params(TD);
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, format!("root {i}"));
            p.distinguished_name = dn;
            p.serial_number = Some(SerialNumber::from_slice(&(i as u64 + 1).to_be_bytes()));
            p
        })
        .collect();
    let roots: Vec<CertificateDer<'static>> = params
        .iter()
        .map(|p| p.self_signed(&key).unwrap().der().clone())
        .collect();
    eprintln!("made {N} roots in {:?}", start.elapsed());
    let pem: String = roots
        .iter()
        .map(|r| mtls_core::to_pem("CERTIFICATE", r))
        .collect();

    let start = Instant::now();
    let bundle = X509Bundle::from_pem(td(), pem.as_bytes()).unwrap();
    eprintln!(
        "from_pem of {N} roots ({} bytes): {:?}",
        pem.len(),
        start.elapsed()
    );
    assert_eq!(bundle.len(), N);

    let start = Instant::now();
    let jwks = bundle.to_jwks().unwrap();
    let from_jwks = X509Bundle::from_jwks(td(), jwks.as_bytes()).unwrap();
    eprintln!(
        "to_jwks + from_jwks ({} bytes): {:?}",
        jwks.len(),
        start.elapsed()
    );
    assert_eq!(from_jwks, bundle);

    let last = Issuer::from_params(&params[N - 1], &key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params(ID)
        .signed_by(&leaf_key, &last)
        .unwrap()
        .der()
        .clone();
    let bundles = BundleSet::from(bundle);
    let start = Instant::now();
    let peer = check(std::slice::from_ref(&leaf), &bundles).unwrap();
    eprintln!("verify against {N} roots: {:?}", start.elapsed());
    assert_eq!(peer.spiffe_id().as_str(), ID);

    // A look-alike of the last root (same subject, another key) is refused.
    let stranger = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let forged = leaf_params(ID)
        .signed_by(&leaf_key, &Issuer::from_params(&params[N - 1], &stranger))
        .unwrap()
        .der()
        .clone();
    assert!(matches!(
        check(&[forged], &bundles),
        Err(VerifyError::BadSignature { .. })
    ));
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// `FileSource` (feature `file-source`, on by default).
#[cfg(feature = "file-source")]
mod files {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use mtls_core::{FilePaths, FileSource, FileSourceError, MAX_SOURCE_FILE_BYTES};

    fn write(path: &Path, bytes: impl AsRef<[u8]>) {
        std::fs::write(path, bytes).unwrap();
    }

    struct Set {
        chain: String,
        key: String,
    }

    fn svid_set(ca: &Ca) -> Set {
        let (leaf, key) = ca.leaf_with(|_| {});
        Set {
            chain: mtls_core::to_pem("CERTIFICATE", &leaf),
            key: key.serialize_pem(),
        }
    }

    fn write_set(dir: &Path, set: &Set, bundle_pem: &str) {
        write(&dir.join("tls.crt"), &set.chain);
        write(&dir.join("tls.key"), &set.key);
        write(&dir.join("ca.crt"), bundle_pem);
    }

    /// Whether this process reads files whatever their permissions (root,
    /// CAP_DAC_OVERRIDE): then permission denied cannot be provoked.
    fn reads_anything(dir: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        let probe = dir.join("probe");
        write(&probe, "x");
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
        let readable = std::fs::read(&probe).is_ok();
        std::fs::remove_file(&probe).unwrap();
        readable
    }

    #[test]
    fn misbehaving_files_keep_the_last_good_set() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let ca = Ca::root();
        let bundle_pem = mtls_core::to_pem("CERTIFICATE", &ca.cert);
        let good = svid_set(&ca);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_set(d, &good, &bundle_pem);
        let source = FileSource::load(FilePaths::cert_manager(d)).unwrap();
        let serving = source.svid();

        type Apply = Box<dyn Fn(&Path)>;
        type Case = (&'static str, Apply, fn(&FileSourceError) -> bool);
        let mut cases: Vec<Case> = vec![
            (
                "directory-instead-of-the-key",
                Box::new(|d: &Path| {
                    std::fs::remove_file(d.join("tls.key")).unwrap();
                    std::fs::create_dir(d.join("tls.key")).unwrap();
                }),
                |e| {
                    matches!(e, FileSourceError::NotARegularFile { path, kind }
                        if path.ends_with("tls.key") && kind.contains("directory"))
                },
            ),
            (
                "symlink-loop",
                Box::new(|d: &Path| {
                    std::fs::remove_file(d.join("ca.crt")).unwrap();
                    symlink(d.join("ca.crt"), d.join("ca.crt")).unwrap();
                }),
                |e| matches!(e, FileSourceError::Io { path, .. } if path.ends_with("ca.crt")),
            ),
            (
                "chain-larger-than-the-limit",
                Box::new(|d: &Path| {
                    let f = std::fs::File::create(d.join("tls.crt")).unwrap();
                    f.set_len(MAX_SOURCE_FILE_BYTES + 1).unwrap(); // sparse
                }),
                |e| matches!(e, FileSourceError::TooLarge { path } if path.ends_with("tls.crt")),
            ),
            (
                "bundle-is-dev-null",
                Box::new(|d: &Path| {
                    std::fs::remove_file(d.join("ca.crt")).unwrap();
                    symlink("/dev/null", d.join("ca.crt")).unwrap();
                }),
                |e| {
                    matches!(e, FileSourceError::NotARegularFile { path, kind }
                        if path.ends_with("ca.crt") && kind.contains("character device"))
                },
            ),
        ];
        if reads_anything(d) {
            eprintln!("permission-denied: skipped, this process reads any file (root)");
        } else {
            cases.push((
                "permission-denied-on-the-key",
                Box::new(|d: &Path| {
                    std::fs::set_permissions(
                        d.join("tls.key"),
                        std::fs::Permissions::from_mode(0o000),
                    )
                    .unwrap()
                }),
                |e| matches!(e, FileSourceError::Io { path, .. } if path.ends_with("tls.key")),
            ));
        }
        let mut failures = Vec::new();
        for (name, apply, expect) in &cases {
            // Start each case from the good set.
            for f in ["tls.crt", "tls.key", "ca.crt"] {
                let p = d.join(f);
                if p.is_dir() {
                    std::fs::remove_dir(&p).unwrap();
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
            write_set(d, &good, &bundle_pem);
            assert!(!source.reload().unwrap(), "{name}: good set unchanged");
            apply(d);
            let before = source.status().failures;
            let result = source.reload();
            if !matches!(&result, Err(e) if expect(e)) {
                let got = result.map_err(|e| e.to_string());
                failures.push(format!("{name}: got {got:?}"));
            }
            if !source.svid().ptr_eq(&serving) {
                failures.push(format!("{name}: the serving SVID changed"));
            }
            if source.status().failures != before + 1 {
                failures.push(format!(
                    "{name}: failures went {before} -> {}",
                    source.status().failures
                ));
            }
            let key = d.join("tls.key");
            if key.is_file() {
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// A writer rewrites the files in place, in pieces, while the source
    /// reloads: every reload is a typed result, and whatever serves is always
    /// a whole, matching, verifying set.
    #[test]
    fn files_changing_while_being_read() {
        let ca = Ca::root();
        let bundle_pem = mtls_core::to_pem("CERTIFICATE", &ca.cert);
        let sets = [svid_set(&ca), svid_set(&ca)];
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        write_set(&d, &sets[0], &bundle_pem);
        let source = FileSource::load(FilePaths::cert_manager(&d)).unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            let d = d.clone();
            let sets: Vec<(String, String)> = sets
                .iter()
                .map(|s| (s.chain.clone(), s.key.clone()))
                .collect();
            std::thread::spawn(move || {
                use std::io::Write;
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let (chain, key) = &sets[i % 2];
                    for (name, text) in [("tls.crt", chain), ("tls.key", key)] {
                        // Truncate, then write in small pieces: readers see
                        // every partial state.
                        let mut f = std::fs::File::create(d.join(name)).unwrap();
                        for piece in text.as_bytes().chunks(97) {
                            f.write_all(piece).unwrap();
                            f.flush().unwrap();
                        }
                    }
                    i += 1;
                }
                i
            })
        };
        let bundles = ca.bundles();
        let (mut swaps, mut refusals) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match source.reload() {
                Ok(true) => swaps += 1,
                Ok(false) => {}
                // A torn read can also yield a certificate that parses
                // but does not verify (its halves come from two writes).
                Err(
                    FileSourceError::Svid { .. }
                    | FileSourceError::Io { .. }
                    | FileSourceError::Unverified { .. },
                ) => refusals += 1,
                Err(e) => panic!("unexpected error while files change: {e}"),
            }
            let svid = source.svid();
            svid.verify(
                &bundles,
                SystemTime::now(),
                &CrlSet::new(),
                PeerRole::Client,
            )
            .expect("the serving SVID always verifies");
        }
        stop.store(true, Ordering::Relaxed);
        let rewrites = writer.join().unwrap();
        eprintln!("{rewrites} rewrites, {swaps} swaps, {refusals} refusals");

        // Once the files settle, the settled set serves.
        write_set(&d, &sets[1], &bundle_pem);
        let _ = source.reload();
        let expected =
            X509Svid::from_pem(sets[1].chain.as_bytes(), sets[1].key.as_bytes()).unwrap();
        assert_eq!(source.svid().leaf(), expected.leaf());
    }
}
