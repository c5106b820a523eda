//! FileSource: files swapped in only when the whole set is good; the last
//! good set keeps serving through every kind of bad update.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{TestCa, TestLeaf};
use mtls_core::{
    authorize, BundleSource, CrlSource, FilePaths, FileSource, FileSourceError, MtlsClientConfig,
    MtlsServerConfig, VerifyError, WatchOptions, X509Svid,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ID: &str = "spiffe://example.org/web";

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes).unwrap();
}

fn pem_chain(leaf: &TestLeaf) -> String {
    leaf.svid().chain_pem()
}

fn pem_key(leaf: &TestLeaf) -> String {
    leaf.svid().private_key_pem()
}

/// Writes a leaf and a bundle in the cert-manager layout.
fn write_set(dir: &Path, leaf: &TestLeaf, bundle_pem: &str) {
    write(&dir.join("tls.crt"), pem_chain(leaf));
    write(&dir.join("tls.key"), pem_key(leaf));
    write(&dir.join("ca.crt"), bundle_pem);
}

#[test]
fn loads_presets_and_reports_unchanged_files() {
    let ca = TestCa::root("example.org");
    let dir = tempfile::tempdir().unwrap();
    let leaf = ca.leaf(ID);
    write_set(dir.path(), &leaf, &ca.bundle().to_pem());
    let source = FileSource::load(FilePaths::cert_manager(dir.path())).unwrap();
    assert_eq!(source.svid().spiffe_id().as_str(), ID);
    assert!(source.current_bundles().contains("example.org"));
    assert!(source.current_crls().is_empty());
    assert!(!source.reload().unwrap(), "nothing changed");

    // spiffe-helper's layout, with a JWKS bundle.
    let helper = tempfile::tempdir().unwrap();
    write(&helper.path().join("svid.pem"), pem_chain(&leaf));
    write(&helper.path().join("svid_key.pem"), pem_key(&leaf));
    write(
        &helper.path().join("svid_bundle.pem"),
        ca.bundle().to_jwks().unwrap(),
    );
    let source = FileSource::load(FilePaths::spiffe_helper(helper.path())).unwrap();
    assert_eq!(source.svid().leaf(), leaf.svid().leaf());
}

#[test]
fn first_load_of_missing_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileSource::load(FilePaths::cert_manager(dir.path())).unwrap_err();
    assert!(matches!(err, FileSourceError::Io { .. }), "{err}");
    assert!(err.to_string().contains("tls.crt"), "{err}");
}

/// Each bad update, named by its defect, and the error it must produce.
#[test]
fn bad_updates_keep_the_last_good_set() {
    let ca = TestCa::root("example.org");
    let other_ca = TestCa::root("example.org");
    let dir = tempfile::tempdir().unwrap();
    let good = ca.leaf(ID);
    write_set(dir.path(), &good, &ca.bundle().to_pem());
    let source = FileSource::load(FilePaths::cert_manager(dir.path())).unwrap();
    let serving = source.svid();

    type Apply = Box<dyn Fn(&Path)>;
    type Case = (&'static str, Apply, fn(&FileSourceError) -> bool);
    let another = ca.leaf(ID);
    let foreign = other_ca.leaf(ID);
    let good_chain = pem_chain(&good);
    let cases: Vec<Case> = vec![
        (
            "garbage-chain",
            Box::new(|d: &Path| {
                write(
                    &d.join("tls.crt"),
                    "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                )
            }),
            |e| matches!(e, FileSourceError::Svid { .. }),
        ),
        (
            "empty-chain-file",
            Box::new(|d: &Path| write(&d.join("tls.crt"), "")),
            |e| matches!(e, FileSourceError::Svid { .. }),
        ),
        (
            "half-written-chain",
            Box::new({
                let half = good_chain[..good_chain.len() / 2].to_owned();
                move |d: &Path| write(&d.join("tls.crt"), &half)
            }),
            |e| matches!(e, FileSourceError::Svid { .. }),
        ),
        (
            "key-of-another-certificate",
            Box::new({
                let chain = pem_chain(&another);
                move |d: &Path| write(&d.join("tls.crt"), &chain)
            }),
            |e| {
                matches!(
                    e,
                    FileSourceError::Svid {
                        source: mtls_core::SvidError::KeyMismatch,
                        ..
                    }
                )
            },
        ),
        (
            "svid-from-a-ca-not-in-the-bundle",
            Box::new({
                let (chain, key) = (pem_chain(&foreign), pem_key(&foreign));
                move |d: &Path| {
                    write(&d.join("tls.crt"), &chain);
                    write(&d.join("tls.key"), &key);
                }
            }),
            |e| {
                matches!(
                    e,
                    FileSourceError::Unverified {
                        source: VerifyError::UntrustedIssuer { .. },
                        ..
                    }
                )
            },
        ),
        (
            "empty-bundle-file",
            Box::new(|d: &Path| write(&d.join("ca.crt"), "")),
            |e| matches!(e, FileSourceError::Bundle { .. }),
        ),
        (
            "deleted-key",
            Box::new(|d: &Path| std::fs::remove_file(d.join("tls.key")).unwrap()),
            |e| matches!(e, FileSourceError::Io { .. }),
        ),
        (
            "dangling-symlink",
            Box::new(|d: &Path| {
                std::fs::remove_file(d.join("ca.crt")).unwrap();
                symlink(d.join("nowhere"), d.join("ca.crt")).unwrap();
            }),
            |e| matches!(e, FileSourceError::Io { .. }),
        ),
    ];
    let mut failures = Vec::new();
    for (name, apply, expect) in &cases {
        // Start each case from the good set.
        let _ = std::fs::remove_file(dir.path().join("ca.crt"));
        write_set(dir.path(), &good, &ca.bundle().to_pem());
        assert!(!source.reload().unwrap(), "{name}: good set unchanged");
        apply(dir.path());
        let before = source.failures();
        match source.reload() {
            Err(e) if expect(&e) => {}
            other => failures.push(format!(
                "{name}: got {:?}",
                other.map_err(|e| e.to_string())
            )),
        }
        if !source.svid().ptr_eq(&serving) {
            failures.push(format!("{name}: the serving SVID changed"));
        }
        // Reported once, not at every poll.
        let _ = source.reload();
        if source.failures() != before + 1 {
            failures.push(format!(
                "{name}: failures went {before} -> {}",
                source.failures()
            ));
        }
        if source.last_error().is_none() {
            failures.push(format!("{name}: no last error"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Repaired: the next good set is taken.
    let _ = std::fs::remove_file(dir.path().join("ca.crt"));
    write_set(dir.path(), &another, &ca.bundle().to_pem());
    assert!(source.reload().unwrap());
    assert_eq!(source.svid().leaf(), another.svid().leaf());
}

#[test]
fn ca_rotation_with_an_overlapping_bundle() {
    let old = TestCa::root("example.org");
    let new = TestCa::root("example.org");
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), &old.leaf(ID), &old.bundle().to_pem());
    let source = FileSource::load(FilePaths::cert_manager(dir.path())).unwrap();
    // Bundle with both CAs first, then a leaf from the new CA, then only the new CA.
    let both = format!("{}{}", old.bundle().to_pem(), new.bundle().to_pem());
    write(&dir.path().join("ca.crt"), &both);
    assert!(source.reload().unwrap());
    assert_eq!(source.bundles().get("example.org").unwrap().len(), 2);
    write_set(dir.path(), &new.leaf(ID), &both);
    assert!(source.reload().unwrap());
    write(&dir.path().join("ca.crt"), new.bundle().to_pem());
    assert!(source.reload().unwrap());
    assert_eq!(source.bundles().get("example.org").unwrap().len(), 1);
}

#[test]
fn federated_bundles_and_crls() {
    let ca = TestCa::root("example.org");
    let partner = TestCa::root("partner.org");
    let dir = tempfile::tempdir().unwrap();
    let leaf = ca.leaf(ID);
    write_set(dir.path(), &leaf, &ca.bundle().to_pem());
    write(
        &dir.path().join("partner.json"),
        partner.bundle().to_jwks().unwrap(),
    );
    let revoked = ca.leaf("spiffe://example.org/revoked");
    let crl = ca.crl(&[&revoked.serial]);
    write(&dir.path().join("crl.der"), crl.ders()[0].as_ref());
    let paths = FilePaths::cert_manager(dir.path())
        .federated(
            partner.trust_domain.clone(),
            dir.path().join("partner.json"),
        )
        .crl(dir.path().join("crl.der"));
    let source = FileSource::load(paths).unwrap();
    assert!(source.bundles().contains("partner.org"));
    assert_eq!(source.crls().len(), 1);

    // Our own SVID revoked by the new CRL: refused, the old set stays.
    let dir2 = tempfile::tempdir().unwrap();
    write_set(dir2.path(), &revoked, &ca.bundle().to_pem());
    write(&dir2.path().join("crl.der"), crl.ders()[0].as_ref());
    let err =
        FileSource::load(FilePaths::cert_manager(dir2.path()).crl(dir2.path().join("crl.der")))
            .unwrap_err();
    assert!(
        matches!(
            err,
            FileSourceError::Unverified {
                source: VerifyError::Revoked { .. },
                ..
            }
        ),
        "{err}"
    );
}

/// Writes a set the way Kubernetes does: files are symlinks through a
/// `..data` symlink that is atomically swapped to a new directory.
fn k8s_publish(dir: &Path, version: u32, leaf: &TestLeaf, bundle_pem: &str) {
    let target = dir.join(format!("..v{version}"));
    std::fs::create_dir(&target).unwrap();
    write_set(&target, leaf, bundle_pem);
    let tmp = dir.join("..data_tmp");
    symlink(format!("..v{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for name in ["tls.crt", "tls.key", "ca.crt"] {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
}

#[tokio::test]
async fn watched_files_rotate_within_a_second_and_new_handshakes_use_them() {
    let ca = TestCa::root("example.org");
    let dir = tempfile::tempdir().unwrap();
    k8s_publish(dir.path(), 1, &ca.leaf(ID), &ca.bundle().to_pem());
    let files = Arc::new(
        FileSource::watch(
            FilePaths::cert_manager(dir.path()),
            WatchOptions::default().poll_interval(Duration::from_millis(250)),
        )
        .unwrap(),
    );
    let server = MtlsServerConfig::builder(files.clone(), files.clone())
        .crls(files.clone())
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let client_svid: X509Svid = ca.leaf("spiffe://example.org/client").svid();
    let client = MtlsClientConfig::builder(client_svid, ca.bundle_set())
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server.rustls_config());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"hi").await;
                let _ = tls.shutdown().await;
            }
        }
    });
    let served_leaf = || {
        let client = client.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let connector = tokio_rustls::TlsConnector::from(client.rustls_config());
            let mut tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            let leaf = client
                .peer_identity(tls.get_ref().1)
                .unwrap()
                .leaf()
                .clone();
            let mut buf = Vec::new();
            let _ = tls.read_to_end(&mut buf).await;
            leaf
        }
    };
    assert_eq!(served_leaf().await, files.svid().leaf().clone());

    let mut updates = files.subscribe();
    let next = ca.leaf(ID);
    k8s_publish(dir.path(), 2, &next, &ca.bundle().to_pem());
    tokio::time::timeout(Duration::from_secs(1), updates.changed())
        .await
        .expect("rotated within one second of the change")
        .unwrap();
    assert_eq!(&served_leaf().await, next.svid().leaf());

    // A broken publish is refused; handshakes keep using the last good set.
    let dir_v3 = dir.path().join("..v3");
    std::fs::create_dir(&dir_v3).unwrap();
    write(&dir_v3.join("tls.crt"), "garbage");
    write(&dir_v3.join("tls.key"), "garbage");
    write(&dir_v3.join("ca.crt"), "garbage");
    symlink("..v3", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(files.failures() >= 1);
    assert_eq!(&served_leaf().await, next.svid().leaf());
}

#[test]
fn watch_outside_a_runtime_is_an_error() {
    let ca = TestCa::root("example.org");
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), &ca.leaf(ID), &ca.bundle().to_pem());
    let err = FileSource::watch(FilePaths::cert_manager(dir.path()), WatchOptions::default())
        .unwrap_err();
    assert!(matches!(err, FileSourceError::NoRuntime));
}
