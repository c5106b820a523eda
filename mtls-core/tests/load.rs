//! `X509Svid::load` and `X509Bundle::load`: real files, the file's name in
//! every error, each refusal typed.
#![cfg(feature = "file-source")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use mtls_core::{FileSourceError, SvidError, TrustDomain, X509Bundle, X509Svid};
use mtls_testing::TestCa;

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn an_svid_and_its_bundle_load_from_files_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::root("example.org");
    let leaf = ca.leaf("spiffe://example.org/web");
    let svid = leaf.svid();
    let chain = write(dir.path(), "svid.pem", svid.chain_pem());
    let key = write(dir.path(), "svid.key", svid.private_key_pem());
    let bundle_pem = write(dir.path(), "bundle.pem", ca.bundle().to_pem());
    let bundle_json = write(dir.path(), "bundle.json", ca.bundle().to_jwks().unwrap());
    let td = TrustDomain::from_static("example.org");

    let loaded = X509Svid::load(&chain, &key).unwrap();
    assert_eq!(loaded.spiffe_id().as_str(), "spiffe://example.org/web");
    for path in [&bundle_pem, &bundle_json] {
        assert_eq!(
            X509Bundle::load(td.clone(), path).unwrap().authorities(),
            ca.bundle().authorities()
        );
    }

    // Each refusal names the file at fault.
    let missing = dir.path().join("missing.pem");
    let garbage = write(dir.path(), "garbage.pem", "not PEM at all");
    let other_key = write(
        dir.path(),
        "other.key",
        ca.leaf("spiffe://example.org/other")
            .svid()
            .private_key_pem(),
    );
    let huge = write(
        dir.path(),
        "huge.pem",
        vec![b'a'; mtls_core::MAX_SOURCE_FILE_BYTES as usize + 1],
    );
    type Case<'a> = (
        Result<X509Svid, FileSourceError>,
        &'a Path,
        fn(&FileSourceError) -> bool,
    );
    let cases: Vec<Case<'_>> = vec![
        (X509Svid::load(&missing, &key), &missing, |e| {
            matches!(e, FileSourceError::Io { .. })
        }),
        (X509Svid::load(&chain, &missing), &missing, |e| {
            matches!(e, FileSourceError::Io { .. })
        }),
        (X509Svid::load(&garbage, &key), &garbage, |e| {
            matches!(e, FileSourceError::Svid { .. })
        }),
        (X509Svid::load(&chain, &other_key), &chain, |e| {
            matches!(
                e,
                FileSourceError::Svid {
                    source: SvidError::KeyMismatch,
                    ..
                }
            )
        }),
        (X509Svid::load(&huge, &key), &huge, |e| {
            matches!(e, FileSourceError::TooLarge { .. })
        }),
        (X509Svid::load(dir.path(), &key), dir.path(), |e| {
            matches!(e, FileSourceError::NotARegularFile { .. })
        }),
    ];
    for (result, path, expected) in cases {
        let err = result.unwrap_err();
        assert!(expected(&err), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err} does not name {}",
            path.display()
        );
    }
    for (path, expected) in [
        (&garbage, "garbage.pem"),
        (&missing, "missing.pem"),
        (&chain, "svid.pem"), // a leaf is not a bundle authority
    ] {
        let err = X509Bundle::load(td.clone(), path).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}
