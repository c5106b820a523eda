//! `mtls-ca renew`, the real binary: the loop keeps PREFIX.pem/PREFIX.key
//! fresh (each new leaf verifies against the CA's bundle) while an mtls-core
//! `FileSource` watching them rotates, follows a CA replaced in its
//! directory, and stops on SIGTERM with 0; `--once` renews only when due,
//! with its exit statuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use mtls_core::{
    BundleSet, CrlSet, FilePaths, FileSource, PeerRole, SvidSource, TrustDomain, WatchOptions,
    X509Bundle, X509Svid,
};

mod common;
use common::{run, s};

const BIN: &str = env!("CARGO_BIN_EXE_mtls-ca");
const WEB: &str = "spiffe://example.org/web";
/// Long enough for several 4 s renewals and a CA replacement.
const WAIT: Duration = Duration::from_secs(30);

fn init(dir: &Path, force: bool) {
    let mut args = vec![
        "init",
        "--dir",
        s(dir),
        "--trust-domain",
        "example.org",
        "--self-signed",
    ];
    if force {
        args.push("--force");
    }
    run(args).ok();
}

/// The SVID in `prefix.pem`/`prefix.key`, and why it does not verify
/// against `ca/bundle.pem` now (`Ok` when it does).
fn read_svid(prefix: &Path, ca: &Path) -> (X509Svid, Result<(), String>) {
    let chain = std::fs::read(prefix.with_extension("pem")).unwrap();
    let key = std::fs::read(prefix.with_extension("key")).unwrap();
    let svid = X509Svid::from_pem(&chain, &key).unwrap();
    let bundle = X509Bundle::from_pem_or_jwks(
        TrustDomain::new("example.org").unwrap(),
        &std::fs::read(ca.join("bundle.pem")).unwrap(),
    )
    .unwrap();
    let verifies = svid
        .verify(
            &BundleSet::from(bundle),
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Server,
        )
        .map(drop)
        .map_err(|e| e.to_string());
    (svid, verifies)
}

/// The SVID in `prefix.pem`/`prefix.key`, verified against `ca/bundle.pem`
/// now; returns it with its serial (hex, lower case).
#[track_caller]
fn verified(prefix: &Path, ca: &Path) -> (X509Svid, String) {
    let (svid, verifies) = read_svid(prefix, ca);
    if let Err(e) = verifies {
        panic!("{}: {e}", prefix.display());
    }
    assert_eq!(svid.spiffe_id().as_str(), WEB);
    let serial = serial(&svid);
    (svid, serial)
}

fn serial(svid: &X509Svid) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(svid.leaf()).unwrap();
    cert.raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The serial on a `renewed: spiffe_id: ID serial: HEX not_after: T` line.
fn serial_of(line: &str) -> String {
    let mut words = line.split(' ');
    assert_eq!(words.next(), Some("renewed:"), "{line:?}");
    let serial = words.skip_while(|w| *w != "serial:").nth(1).unwrap();
    serial.replace(':', "").to_lowercase()
}

/// A running `renew` loop, killed when dropped; its stdout lines come
/// through a channel.
struct Renewing {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Renewing {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("renew")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("a `renewed:` line in time")
    }

    fn terminate(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap().code()
    }
}

impl Drop for Renewing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `source` presents the SVID with `serial`.
async fn follows(source: &FileSource, serial_hex: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if source
            .current_svid()
            .is_some_and(|s| serial(&s) == serial_hex)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the FileSource did not pick up serial {serial_hex}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_loop_renews_before_expiry_and_a_file_source_follows() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    init(&ca, false);
    let prefix: PathBuf = tmp.path().join("web");
    let bundle_copy = tmp.path().join("web-bundle.pem");
    let renewing = Renewing::start(&[
        "--bundle-out",
        s(&bundle_copy),
        "--dir",
        s(&ca),
        "--spiffe-id",
        WEB,
        "--out",
        s(&prefix),
        "--ttl",
        "4s",
    ]);

    // Issued at once.
    let first = serial_of(&renewing.next_line());
    let (svid, on_disk) = verified(&prefix, &ca);
    assert_eq!(on_disk, first);
    assert!(svid.not_after() <= SystemTime::now() + Duration::from_secs(5));
    let same_bundle =
        || std::fs::read(&bundle_copy).unwrap() == std::fs::read(ca.join("bundle.pem")).unwrap();
    assert!(same_bundle());
    let source =
        FileSource::watch(FilePaths::mtls_ca(&prefix, &ca), WatchOptions::default()).unwrap();

    // Renewed before expiry (at about half of 4 s), again and again: each
    // new leaf verifies, and the FileSource rotates to it.
    let mut last = first;
    let started = Instant::now();
    for _ in 0..2 {
        let next = serial_of(&renewing.next_line());
        assert_ne!(next, last);
        let (_, on_disk) = verified(&prefix, &ca);
        follows(&source, &on_disk).await;
        last = next;
    }
    // Two renewals of a 4 s SVID: well before two full lifetimes.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // The CA replaced in its directory: renewed at once by the new CA,
    // whose bundle the new leaf verifies against.
    init(&ca, true);
    let deadline = Instant::now() + WAIT;
    loop {
        let line = renewing.next_line();
        let now_serial = serial_of(&line);
        let (svid, verifies) = read_svid(&prefix, &ca);
        if verifies.is_ok() && serial(&svid) == now_serial {
            // The copy of the bundle was rewritten before the new SVID.
            assert!(same_bundle());
            follows(&source, &now_serial).await;
            break;
        }
        assert!(Instant::now() < deadline, "never renewed under the new CA");
    }

    // SIGTERM: a clean stop.
    assert_eq!(renewing.terminate(), Some(0));
}

#[test]
fn once_renews_only_when_due() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    init(&ca, false);
    let prefix = tmp.path().join("web");
    let bundle_copy = tmp.path().join("web-bundle.pem");
    let same_bundle =
        || std::fs::read(&bundle_copy).unwrap() == std::fs::read(ca.join("bundle.pem")).unwrap();
    let once = |id: &str, ttl: &str| {
        run([
            "renew",
            "--bundle-out",
            s(&bundle_copy),
            "--once",
            "--dir",
            s(&ca),
            "--spiffe-id",
            id,
            "--out",
            s(&prefix),
            "--ttl",
            ttl,
        ])
    };

    // No files yet: issued.
    let out = once(WEB, "1h").ok();
    assert!(out.field("renewed").contains("cannot read"), "{out:#?}");
    let (_, first) = verified(&prefix, &ca);
    assert_eq!(out.field("serial").replace(':', "").to_lowercase(), first);
    assert!(same_bundle());

    // Fresh: not due, nothing written.
    let out = once(WEB, "1h").ok();
    assert!(out.stdout.starts_with("not due: "), "{out:#?}");
    assert_eq!(verified(&prefix, &ca).1, first);

    // At most half of --ttl left (1 h left of a 3 h TTL): due.
    let out = once(WEB, "3h").ok();
    assert!(out.field("renewed").contains("left"), "{out:#?}");
    let (_, second) = verified(&prefix, &ca);
    assert_ne!(second, first);

    // The CA replaced: the SVID no longer verifies, due.
    init(&ca, true);
    let out = once(WEB, "3h").ok();
    assert!(
        out.field("renewed").contains("no longer verifies"),
        "{out:#?}"
    );
    assert_ne!(verified(&prefix, &ca).1, second);
    assert!(same_bundle());

    // Another SPIFFE ID asked for than the files hold: due.
    let out = once("spiffe://example.org/api", "1h").ok();
    assert!(out.field("renewed").contains("holds"), "{out:#?}");

    // Failures exit 1, usage errors 2.
    let renew_once = |dir: &Path, id: &str, out: &Path| {
        run([
            "renew",
            "--once",
            "--dir",
            s(dir),
            "--spiffe-id",
            id,
            "--out",
            s(out),
        ])
    };
    renew_once(&tmp.path().join("missing"), WEB, &prefix)
        .status(1)
        .says(&["cannot open the CA"]);
    renew_once(&ca, "spiffe://other.org/web", &prefix).status(1);
    renew_once(&ca, WEB, tmp.path()).status(2);
    run(["renew", "--dir", s(&ca), "--out", s(&prefix)]).status(2);
}
