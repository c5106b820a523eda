//! FileSource: files swapped in only when the whole set is good; the last
//! good set keeps serving through every kind of bad update.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mtls_core::{
    authorize, BundleSource, CrlSource, FilePaths, FileSource, FileSourceError, MtlsClientConfig,
    MtlsServerConfig, VerifyError, WatchOptions, X509Svid,
};
use mtls_testing::{call_hi, serve_hi, TestCa, TestLeaf};

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

/// A server presenting `source`'s SVID, trusting its bundles and CRLs, and
/// authorizing any client.
fn serving_any_client(source: &FileSource) -> MtlsServerConfig {
    MtlsServerConfig::builder(source.clone(), source.clone())
        .crls(source.clone())
        .authorizer(authorize::any())
        .build()
        .unwrap()
}

/// A CA, a directory in the cert-manager layout holding a leaf of it and its
/// bundle, that leaf, and a source loaded from the directory.
fn loaded_set() -> (TestCa, tempfile::TempDir, TestLeaf, FileSource) {
    let ca = TestCa::root("example.org");
    let dir = tempfile::tempdir().unwrap();
    let leaf = ca.leaf(ID);
    write_set(dir.path(), &leaf, &ca.bundle().to_pem());
    let source = FileSource::load(FilePaths::cert_manager(dir.path())).unwrap();
    (ca, dir, leaf, source)
}

#[test]
fn loads_presets_and_reports_unchanged_files() {
    let (ca, _dir, leaf, source) = loaded_set();
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
    let (ca, dir, good, source) = loaded_set();
    let other_ca = TestCa::root("example.org");
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
        let before = source.status().failures;
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
        if source.status().failures != before + 1 {
            failures.push(format!(
                "{name}: failures went {before} -> {}",
                source.status().failures
            ));
        }
        if source.status().last_error.is_none() {
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

    assert!(source.status().svid_revoked.is_none());

    // Our own SVID revoked by its CRL: loaded, and reported (see
    // `bug_a_crl_that_also_revokes_our_own_svid_still_applies_to_peers`).
    let dir2 = tempfile::tempdir().unwrap();
    write_set(dir2.path(), &revoked, &ca.bundle().to_pem());
    write(&dir2.path().join("crl.der"), crl.ders()[0].as_ref());
    let source =
        FileSource::load(FilePaths::cert_manager(dir2.path()).crl(dir2.path().join("crl.der")))
            .unwrap();
    assert!(
        matches!(
            source.status().svid_revoked,
            Some(VerifyError::Revoked { .. })
        ),
        "{:?}",
        source.status()
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
    let server = serving_any_client(&files);
    let client_svid: X509Svid = ca.leaf("spiffe://example.org/client").svid();
    let client = MtlsClientConfig::builder(client_svid, ca.bundle_set())
        .authorizer(authorize::any())
        .build()
        .unwrap();
    let addr = serve_hi(&server).await;
    let served_leaf = || async { call_hi(&client, addr).await.unwrap().1 };
    assert_eq!(served_leaf().await, files.svid().leaf().clone());

    let mut updates = FileSource::changes(&files);
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
    assert!(files.status().failures >= 1);
    assert_eq!(&served_leaf().await, next.svid().leaf());
}

#[test]
fn watch_needs_no_runtime_and_stops_with_its_last_clone() {
    let ca = TestCa::root("example.org");
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), &ca.leaf(ID), &ca.bundle().to_pem());
    let files = FileSource::watch(
        FilePaths::cert_manager(dir.path()),
        WatchOptions::default().poll_interval(Duration::from_millis(50)),
    )
    .unwrap();
    let updates = files.changes();
    let clone = files.clone();
    let next = ca.leaf(ID);
    write_set(dir.path(), &next, &ca.bundle().to_pem());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while files.svid().leaf() != next.svid().leaf() {
        assert!(std::time::Instant::now() < deadline, "not reloaded");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        clone.svid().leaf(),
        next.svid().leaf(),
        "clones share one source"
    );
    assert_eq!(clone.status().generation, 1);
    drop(files);
    std::thread::sleep(Duration::from_millis(200));
    assert!(updates.has_changed().is_ok(), "a clone is alive");
    // The watch thread holds the source's state too: the state (and its
    // update channel) goes only once the thread has stopped.
    drop(clone);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while updates.has_changed().is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "watch thread still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Issue 11, item 4: a named pipe at a watched path blocked `open()` on a
/// tokio worker forever; with one worker the server stopped answering.
/// Now it is refused at once, on a current-thread runtime the server keeps
/// serving, and the last good set stays.
#[test]
fn bug_a_fifo_at_a_watched_path_does_not_hang_the_server() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ca = TestCa::root("example.org");
        let dir = tempfile::tempdir().unwrap();
        let leaf = ca.leaf(ID);
        write_set(dir.path(), &leaf, &ca.bundle().to_pem());
        let crl_path = dir.path().join("ca.crl");
        write(&crl_path, ca.crl(&[]).ders()[0].as_ref());
        let paths = FilePaths::cert_manager(dir.path()).crl(&crl_path);

        // A FIFO at a path on the first read: a typed error, at once.
        let fifo_dir = tempfile::tempdir().unwrap();
        write_set(fifo_dir.path(), &leaf, &ca.bundle().to_pem());
        std::fs::remove_file(fifo_dir.path().join("ca.crt")).unwrap();
        mkfifo(&fifo_dir.path().join("ca.crt"));
        let started = std::time::Instant::now();
        let err = FileSource::watch(FilePaths::cert_manager(fifo_dir.path()), WatchOptions::default())
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            matches!(&err, FileSourceError::NotARegularFile { kind, .. } if kind.contains("FIFO")),
            "{err}"
        );
        assert!(err.to_string().contains("ca.crt"), "{err}");

        let files = FileSource::watch(
            paths,
            WatchOptions::default().poll_interval(Duration::from_millis(50)),
        )
        .unwrap();
        let server = serving_any_client(&files);
        let client = MtlsClientConfig::builder(ca.leaf("spiffe://example.org/client").svid(), ca.bundle_set())
            .authorizer(authorize::any())
            .build()
            .unwrap();
        let addr = serve_hi(&server).await;
        let call = || async { call_hi(&client, addr).await.unwrap().0 };
        assert_eq!(call().await, b"hi");

        // The CRL path becomes a FIFO (no writer ever comes), then a
        // socket, then a directory, then a device: each refused with its
        // kind, and the single worker keeps serving handshakes.
        let socket_path = dir.path().join("sock");
        let _socket = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
        type Make<'a> = Box<dyn Fn() + 'a>;
        let specials: Vec<(&str, Make<'_>)> = vec![
            ("FIFO", Box::new(|| mkfifo(&crl_path))),
            ("socket", Box::new(|| symlink(&socket_path, &crl_path).unwrap())),
            ("directory", Box::new(|| std::fs::create_dir(&crl_path).unwrap())),
            ("character device", Box::new(|| symlink("/dev/zero", &crl_path).unwrap())),
        ];
        for (kind, make) in specials {
            let failures = files.status().failures;
            if crl_path.is_dir() {
                std::fs::remove_dir(&crl_path).unwrap();
            } else {
                std::fs::remove_file(&crl_path).unwrap();
            }
            make();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while files.status().failures == failures {
                assert!(tokio::time::Instant::now() < deadline, "{kind}: not noticed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let err = files.status().last_error.unwrap();
            assert!(
                matches!(&err, FileSourceError::NotARegularFile { kind: k, .. } if k.contains(kind)),
                "{kind}: {err}"
            );
            let served = tokio::time::timeout(Duration::from_secs(5), call()).await;
            assert_eq!(served.expect("the server keeps answering"), b"hi", "{kind}");
            assert_eq!(files.svid().leaf(), leaf.svid().leaf(), "{kind}: last good set");
            assert_eq!(files.crls().len(), 1);
        }

        // A regular file again: picked up.
        std::fs::remove_file(&crl_path).unwrap();
        let revoked = ca.leaf("spiffe://example.org/revoked");
        write(&crl_path, ca.crl(&[&revoked.serial]).ders()[0].as_ref());
        let mut updates = files.changes();
        tokio::time::timeout(Duration::from_secs(5), updates.changed())
            .await
            .expect("a regular file is read again")
            .unwrap();
    });
}

/// Issue 11, item 5, for files: a leaf pasted into `ca.crt` is refused and
/// the last good bundle keeps serving.
#[test]
fn bug_a_leaf_pasted_into_the_bundle_file_is_refused() {
    let (ca, dir, leaf, source) = loaded_set();
    let bundles = source.bundles();
    // `ca.crt` pointed at the SVID file, then the chain pasted after the root.
    for bad in [pem_chain(&leaf), ca.bundle().to_pem() + &pem_chain(&leaf)] {
        write(&dir.path().join("ca.crt"), &bad);
        let err = source.reload().unwrap_err();
        assert!(
            matches!(
                &err,
                FileSourceError::Bundle {
                    source: mtls_core::BundleError::NotAnAuthority { .. },
                    ..
                }
            ),
            "{err}"
        );
        let chain = mtls_core::ErrorChain(&err).to_string();
        assert!(chain.contains(ID), "{chain}");
        assert_eq!(
            source.bundles(),
            bundles,
            "the last good bundle keeps serving"
        );
    }
}

fn gauge(snapshotter: &metrics_util::debugging::Snapshotter, name: &str) -> Option<f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(key, ..)| key.key().name() == name)
        .and_then(|(.., value)| match value {
            metrics_util::debugging::DebugValue::Gauge(g) => Some(g.into_inner()),
            _ => None,
        })
}

/// Issue 11, item 2: a new CRL that revokes a client *and* the intermediate
/// that issued our own SVID was refused whole, so the revoked client kept
/// being served. Now every revocation applies; our own revoked SVID keeps
/// serving until its replacement arrives, reported by a log, the
/// `mtls_svid_revoked` gauge and `status().svid_revoked`.
#[tokio::test]
async fn bug_a_crl_that_also_revokes_our_own_svid_still_applies_to_peers() {
    let root = TestCa::root("example.org");
    let ours = root.intermediate();
    let theirs = root.intermediate();
    let server_leaf = ours.leaf(ID);
    let bad = theirs.leaf("spiffe://example.org/bad");
    let good = theirs.leaf("spiffe://example.org/good");

    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), &server_leaf, &root.bundle().to_pem());
    let root_crl = dir.path().join("root.crl");
    let theirs_crl = dir.path().join("theirs.crl");
    write(&root_crl, root.crl(&[]).ders()[0].as_ref());
    write(&theirs_crl, theirs.crl(&[]).ders()[0].as_ref());
    let source = FileSource::load(
        FilePaths::cert_manager(dir.path())
            .crl(&root_crl)
            .crl(&theirs_crl),
    )
    .unwrap();
    let server = serving_any_client(&source);
    let addr = serve_hi(&server).await;
    let client = |leaf: &TestLeaf| {
        MtlsClientConfig::builder(leaf.svid(), root.bundle_set())
            .authorizer(authorize::any())
            .build()
            .unwrap()
    };
    let (bad_client, good_client) = (client(&bad), client(&good));
    assert_eq!(call_hi(&bad_client, addr).await.unwrap().0, b"hi");

    // The compromised intermediate is revoked, and so is the bad client.
    write(&root_crl, root.crl(&[&ours.serial]).ders()[0].as_ref());
    write(&theirs_crl, theirs.crl(&[&bad.serial]).ders()[0].as_ref());
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let reloaded = metrics::with_local_recorder(&recorder, || source.reload());
    assert!(reloaded.unwrap(), "the new CRLs are applied");
    let status = source.status();
    assert!(
        matches!(&status.svid_revoked, Some(VerifyError::Revoked { id }) if id.as_str() == ID),
        "{status:?}"
    );
    assert_eq!(status.generation, 1);
    assert_eq!(
        gauge(&snapshotter, mtls_core::metrics::SVID_REVOKED),
        Some(1.0)
    );

    // The revoked client is refused; the others are served, by our own
    // (revoked) SVID, which peers without the CRL still accept.
    assert!(
        call_hi(&bad_client, addr).await.is_err(),
        "a revoked client is refused"
    );
    let (answer, presented) = call_hi(&good_client, addr).await.unwrap();
    assert_eq!(answer, b"hi");
    assert_eq!(&presented, server_leaf.svid().leaf());

    // A peer holding the same CRLs refuses us: that is its decision.
    let strict = MtlsClientConfig::builder(good.svid(), root.bundle_set())
        .crls(source.crls())
        .authorizer(authorize::any())
        .build()
        .unwrap();
    assert!(call_hi(&strict, addr).await.is_err());

    // The replacement SVID arrives (from the good intermediate): reported
    // clear, and the strict peer accepts it.
    let replacement = theirs.leaf(ID);
    write(&dir.path().join("tls.crt"), pem_chain(&replacement));
    write(&dir.path().join("tls.key"), pem_key(&replacement));
    let reloaded = metrics::with_local_recorder(&recorder, || source.reload());
    assert!(reloaded.unwrap());
    assert!(source.status().svid_revoked.is_none());
    assert_eq!(
        gauge(&snapshotter, mtls_core::metrics::SVID_REVOKED),
        Some(0.0)
    );
    let (_, presented) = call_hi(&strict, addr).await.unwrap();
    assert_eq!(&presented, replacement.svid().leaf());

    // The SVID must still chain to the bundle: one from an unknown CA is
    // refused whatever the CRLs say, and the replacement keeps serving.
    let stranger = TestCa::root("example.org").leaf(ID);
    write(&dir.path().join("tls.crt"), pem_chain(&stranger));
    write(&dir.path().join("tls.key"), pem_key(&stranger));
    let err = source.reload().unwrap_err();
    assert!(matches!(err, FileSourceError::Unverified { .. }), "{err}");
    assert_eq!(source.svid().leaf(), replacement.svid().leaf());
}
