//! `mtls-ca serve-bundle` and `mtls-ca fetch-bundle` end to end: the two
//! commands against each other over real HTTPS for both profiles, the
//! fetched bundle equal to `bundle --format jwks`, changes of the CA
//! directory (a JWT key rotation, a new CA) seen without a restart, usage
//! errors (exit 2) and refused endpoints (exit 1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mtls_core::{to_pem, SpiffeBundle, TrustDomain};
use mtls_testing::TestCa;
use rcgen::SanType;

mod common;
use common::{run, s, Out};

const BIN: &str = env!("CARGO_BIN_EXE_mtls-ca");
const TD: &str = "example.org";
const ENDPOINT_ID: &str = "spiffe://example.org/mtls-ca/bundle-endpoint";

/// A running `serve-bundle`, killed when dropped.
struct Server {
    child: Child,
    url: String,
    line: String,
}

impl Server {
    /// Starts `serve-bundle` with `args` and waits for its `serving` line.
    fn start(args: &[&str]) -> Self {
        let mut command = Command::new(BIN);
        // stderr is inherited, as `spawn` does by default.
        command
            .arg("serve-bundle")
            .args(args)
            .stdout(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut server = Self {
            child,
            url: String::new(),
            line: line.trim_end().to_owned(),
        };
        let mut words = server.line.split(' ');
        assert_eq!(words.next(), Some("serving"), "{:?}", server.line);
        server.url = words.next().unwrap_or_default().to_owned();
        assert!(
            server.url.starts_with("https://127.0.0.1:"),
            "{:?}",
            server.line
        );
        server
    }
}

impl Server {
    /// [`Server::start`] for the CA directory `dir` on a free loopback
    /// port, with `more` flags.
    fn on(dir: &Path, more: &[&str]) -> Self {
        let mut args = vec!["--dir", s(dir), "--listen", "127.0.0.1:0"];
        args.extend_from_slice(more);
        Self::start(&args)
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", pid.as_str()]).status();
        assert!(
            kill.as_ref().is_ok_and(|status| status.success()),
            "kill -TERM {pid}: {kill:?}"
        );
        self.child.wait().unwrap().code()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `init --self-signed` of a CA for [`TD`] in `dir`, `--force`d over an
/// existing one when `force`.
fn init(dir: &Path, force: bool) {
    let mut args = vec!["init", "--self-signed", "--dir", s(dir)];
    args.extend(["--trust-domain", TD]);
    args.extend(force.then_some("--force"));
    run(args).ok();
}

/// `bundle --format jwks` (or PEM) of the CA in `dir`, written to `file`.
fn write_bundle(dir: &Path, format: &str, file: &Path) -> String {
    let out = run(["bundle", "--dir", s(dir), "--format", format]).ok();
    std::fs::write(file, &out.stdout).unwrap();
    out.stdout
}

fn parse(json: &str) -> SpiffeBundle {
    SpiffeBundle::from_jwks(TrustDomain::new(TD).unwrap(), json.as_bytes()).unwrap()
}

/// Same X.509 and JWT authorities.
#[track_caller]
fn assert_same_content(fetched: &SpiffeBundle, expected: &SpiffeBundle) {
    assert_eq!(fetched.x509().authorities(), expected.x509().authorities());
    assert_eq!(fetched.jwt_authorities(), expected.jwt_authorities());
    assert!(!fetched.jwt_authorities().is_empty());
}

/// `fetch-bundle --url URL --trust-domain TRUST_DOMAIN --profile PROFILE`,
/// then `flags`.
fn fetch_bundle(url: &str, trust_domain: &str, profile: &str, flags: &[&str]) -> Out {
    let mut args = vec!["fetch-bundle", "--url", url, "--trust-domain", trust_domain];
    args.extend(["--profile", profile]);
    args.extend_from_slice(flags);
    run(args)
}

fn fetch_spiffe(url: &str, endpoint_id: &str, endpoint_bundle: &Path) -> Out {
    fetch_spiffe_with(url, TD, endpoint_id, endpoint_bundle, &[])
}

/// [`fetch_spiffe`] for `trust_domain`, with `more` flags.
fn fetch_spiffe_with(
    url: &str,
    trust_domain: &str,
    endpoint_id: &str,
    endpoint_bundle: &Path,
    more: &[&str],
) -> Out {
    let mut flags = vec!["--endpoint-id", endpoint_id];
    flags.extend(["--endpoint-bundle", s(endpoint_bundle)]);
    flags.extend_from_slice(more);
    fetch_bundle(url, trust_domain, "https_spiffe", &flags)
}

/// Polls `attempt` every 200 ms for up to 30 s.
#[track_caller]
fn eventually<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A new CA in a temporary directory (`TMP/ca`), served with the default
/// flags.
fn ca_served() -> (tempfile::TempDir, PathBuf, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    init(&dir, false);
    let server = Server::on(&dir, &[]);
    (tmp, dir, server)
}

#[test]
fn https_spiffe_serves_the_bundle_of_the_ca() {
    let (tmp, dir, server) = ca_served();
    assert_eq!(server.line, format!("serving {} {ENDPOINT_ID}", server.url));

    let jwks = write_bundle(&dir, "jwks", &tmp.path().join("bundle.json"));
    write_bundle(&dir, "pem", &tmp.path().join("bundle.pem"));
    let expected = parse(&jwks);
    // The endpoint bundle as SPIFFE JSON and as PEM.
    for file in ["bundle.json", "bundle.pem"] {
        let out = fetch_spiffe(&server.url, ENDPOINT_ID, &tmp.path().join(file)).ok();
        let fetched = parse(&out.stdout);
        assert_same_content(&fetched, &expected);
        assert!(fetched.sequence().is_some());
        assert_eq!(fetched.refresh_hint(), Some(Duration::from_secs(300)));
    }

    // --out writes the same document.
    let out_file = tmp.path().join("fetched.json");
    let bundle = tmp.path().join("bundle.pem");
    let more = ["--out", s(&out_file)];
    let out = fetch_spiffe_with(&server.url, TD, ENDPOINT_ID, &bundle, &more).ok();
    assert!(out.stdout.is_empty(), "{out:#?}");
    assert_same_content(
        &parse(&std::fs::read_to_string(&out_file).unwrap()),
        &expected,
    );
    // SIGTERM: a clean stop, exit 0.
    assert_eq!(server.terminate(), Some(0));
}

/// A web PKI certificate for `localhost` and 127.0.0.1 from `ca`, written
/// as `prefix.pem` and `prefix.key`.
fn web_cert(ca: &TestCa, prefix: &Path) -> (PathBuf, PathBuf) {
    let leaf = ca.leaf_with("spiffe://web.example/unused", |p| {
        p.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress("127.0.0.1".parse::<IpAddr>().unwrap()),
        ];
    });
    let cert = prefix.with_extension("pem");
    let key = prefix.with_extension("key");
    let chain: String = leaf
        .chain
        .iter()
        .map(|c| to_pem("CERTIFICATE", c))
        .collect();
    std::fs::write(&cert, chain).unwrap();
    std::fs::write(&key, to_pem("PRIVATE KEY", leaf.key.secret_der())).unwrap();
    (cert, key)
}

fn fetch_web(url: &str, ca: &Path) -> Out {
    fetch_bundle(url, TD, "https_web", &["--ca", s(ca)])
}

#[test]
fn https_web_serves_the_bundle_of_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    init(&dir, false);
    let web_ca = TestCa::root("web.example");
    let (cert, key) = web_cert(&web_ca, &tmp.path().join("web"));
    let roots = tmp.path().join("roots.pem");
    std::fs::write(&roots, to_pem("CERTIFICATE", &web_ca.root)).unwrap();

    let server = Server::on(
        &dir,
        &[
            "--profile",
            "https_web",
            "--cert",
            s(&cert),
            "--key",
            s(&key),
        ],
    );
    assert_eq!(server.line, format!("serving {}", server.url));
    let expected = parse(&write_bundle(&dir, "jwks", &tmp.path().join("b.json")));
    let localhost = server.url.replace("127.0.0.1", "localhost");
    for url in [server.url.as_str(), localhost.as_str()] {
        let out = fetch_web(url, &roots).ok();
        assert_same_content(&parse(&out.stdout), &expected);
    }

    // Another web CA does not vouch for the endpoint.
    let other = tmp.path().join("other.pem");
    std::fs::write(
        &other,
        to_pem("CERTIFICATE", &TestCa::root("web.example").root),
    )
    .unwrap();
    fetch_web(&server.url, &other)
        .status(1)
        .says(&["handshake", "certificate"]);
    // Nor does an https_spiffe client.
    fetch_spiffe(&server.url, ENDPOINT_ID, &tmp.path().join("b.json"))
        .status(1)
        .says(&["handshake"]);
}

#[test]
fn changes_of_the_ca_directory_are_served_without_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    init(&dir, false);
    let server = Server::on(&dir, &["--refresh-hint", "2s"]);
    let old = tmp.path().join("old.pem");
    write_bundle(&dir, "pem", &old);
    let first = parse(&fetch_spiffe(&server.url, ENDPOINT_ID, &old).ok().stdout);
    assert_eq!(first.refresh_hint(), Some(Duration::from_secs(2)));

    // A new JWT key: published with a higher sequence.
    run(["jwt", "rotate", "--dir", s(&dir)]).ok();
    let expected = parse(&write_bundle(&dir, "jwks", &tmp.path().join("b.json")));
    assert_eq!(expected.jwt_authorities().len(), 2);
    let rotated = eventually("the new JWT key", || {
        let fetched = parse(&fetch_spiffe(&server.url, ENDPOINT_ID, &old).ok().stdout);
        (fetched.jwt_authorities() == expected.jwt_authorities()).then_some(fetched)
    });
    assert_same_content(&rotated, &expected);
    assert!(rotated.sequence() > first.sequence());

    // A new CA replaces the old one: its bundle is published at once (the
    // endpoint keeps its SVID of the old CA for two refresh hints, so a
    // client holding the old bundle still authenticates it), then the
    // endpoint presents an SVID of the new CA.
    init(&dir, true);
    let new = tmp.path().join("new.pem");
    let expected = parse(&write_bundle(&dir, "jwks", &tmp.path().join("b2.json")));
    write_bundle(&dir, "pem", &new);
    let replaced = eventually("the new CA's bundle", || {
        [&old, &new].into_iter().find_map(|bootstrap| {
            let out = fetch_spiffe(&server.url, ENDPOINT_ID, bootstrap);
            if out.code != Some(0) {
                return None;
            }
            let fetched = parse(&out.stdout);
            (fetched.x509().authorities() == expected.x509().authorities()).then_some(fetched)
        })
    });
    assert_same_content(&replaced, &expected);
    assert!(replaced.sequence() > rotated.sequence());
    // The SVID of the new CA: the new bundle authenticates the endpoint,
    // the old one no longer does.
    eventually("the endpoint's SVID from the new CA", || {
        (fetch_spiffe(&server.url, ENDPOINT_ID, &new).code == Some(0)).then_some(())
    });
    fetch_spiffe(&server.url, ENDPOINT_ID, &old)
        .status(1)
        .says(&["not signed by an authority"]);

    // A directory that cannot be opened keeps the last good bundle.
    std::fs::write(dir.join("ca.pem"), "garbage").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let kept = parse(&fetch_spiffe(&server.url, ENDPOINT_ID, &new).ok().stdout);
    assert_same_content(&kept, &expected);
}

#[test]
fn an_overlapping_rotation_switches_the_endpoint_svid_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let next = tmp.path().join("next");
    init(&dir, false);
    init(&next, false);
    // A long hint: the SVID switch below must not wait for it.
    let server = Server::on(&dir, &["--refresh-hint", "1h"]);
    let old = dir.join("bundle.pem");
    let old_copy = tmp.path().join("old.pem");
    std::fs::copy(&old, &old_copy).unwrap();

    // 1. The next CA's root joins bundle.pem: published, same signing CA.
    let both = tmp.path().join("both.pem");
    let mut pem = std::fs::read_to_string(&old).unwrap();
    pem.push_str(&std::fs::read_to_string(next.join("bundle.pem")).unwrap());
    std::fs::write(&both, &pem).unwrap();
    std::fs::copy(&both, &old).unwrap();
    eventually("both roots published", || {
        let fetched = parse(
            &fetch_spiffe(&server.url, ENDPOINT_ID, &old_copy)
                .ok()
                .stdout,
        );
        (fetched.x509().len() == 2).then_some(())
    });

    // 2. The next CA signs, its roots both: the previous bundle already
    // holds its root, so the endpoint's SVID comes from it at once.
    run([
        "init",
        "--dir",
        s(&dir),
        "--from-cert",
        s(&next.join("ca.pem")),
        "--from-key",
        s(&next.join("ca.key")),
        "--from-roots",
        s(&both),
        "--force",
        "--development",
    ])
    .ok();
    eventually("the endpoint's SVID from the next CA", || {
        let out = fetch_spiffe(&server.url, ENDPOINT_ID, &next.join("bundle.pem"));
        (out.code == Some(0)).then_some(())
    });
}

#[test]
fn a_refused_endpoint_exits_1_with_the_reason() {
    let (tmp, dir, server) = ca_served();
    let bundle = tmp.path().join("bundle.pem");
    write_bundle(&dir, "pem", &bundle);

    // Another SPIFFE ID than the endpoint's.
    fetch_spiffe(&server.url, "spiffe://example.org/other", &bundle)
        .status(1)
        .says(&["handshake", "spiffe://example.org/other"]);
    // A bundle of another CA of the same trust domain.
    let other = tmp.path().join("other");
    init(&other, false);
    let other_bundle = tmp.path().join("other.pem");
    write_bundle(&other, "pem", &other_bundle);
    fetch_spiffe(&server.url, ENDPOINT_ID, &other_bundle)
        .status(1)
        .says(&["handshake", "not signed by an authority"]);
    // The bundle fetched for another trust domain than the endpoint's: the
    // endpoint is not self-serving, its ID of example.org, so the bundle
    // is accepted as served only if valid; here the document is refused
    // because its authorities are example.org's.
    fetch_spiffe_with(&server.url, "other.org", ENDPOINT_ID, &bundle, &[])
        .status(1)
        .says(&["other.org"]);
    // Nothing listening.
    drop(server);
    fetch_spiffe("https://127.0.0.1:1", ENDPOINT_ID, &bundle)
        .status(1)
        .says(&["connect"]);
    // An unreadable endpoint bundle.
    fetch_spiffe(
        "https://127.0.0.1:1",
        ENDPOINT_ID,
        &tmp.path().join("missing.pem"),
    )
    .status(1)
    .says(&["missing.pem"]);
}

#[test]
fn serve_bundle_failures_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    // No CA in the directory.
    run([
        "serve-bundle",
        "--dir",
        s(&tmp.path().join("none")),
        "--listen",
        "127.0.0.1:0",
    ])
    .status(1)
    .says(&["none"]);
    // The address is taken.
    let dir = tmp.path().join("ca");
    init(&dir, false);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    run(["serve-bundle", "--dir", s(&dir), "--listen", &addr])
        .status(1)
        .says(&["cannot listen", &addr]);
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    init(&dir, false);
    let d = s(&dir);
    let bundle = dir.join("bundle.pem");
    let f = s(&bundle);
    // Each case: a command line, `D` standing for the CA directory and `F`
    // for a file that exists.
    let cases = [
        // serve-bundle
        "serve-bundle --dir D",
        "serve-bundle --dir D --listen localhost:x",
        "serve-bundle --dir D --listen 127.0.0.1:0 --profile https",
        "serve-bundle --dir D --listen 127.0.0.1:0 --profile https_web",
        "serve-bundle --dir D --listen 127.0.0.1:0 --profile https_web --cert F",
        "serve-bundle --dir D --listen 127.0.0.1:0 --cert F --key F",
        // fetch-bundle
        "fetch-bundle --url https://127.0.0.1:1 --trust-domain TD",
        "fetch-bundle --url http://127.0.0.1:1 --trust-domain TD --profile https_web",
        "fetch-bundle --url https://u@127.0.0.1:1 --trust-domain TD --profile https_web",
        "fetch-bundle --url https://127.0.0.1:1 --profile https_web",
        "fetch-bundle --url https://127.0.0.1:1 --trust-domain TD --profile https_spiffe",
        "fetch-bundle --url https://127.0.0.1:1 --trust-domain TD --profile https_spiffe --endpoint-bundle F",
        "fetch-bundle --url https://127.0.0.1:1 --trust-domain TD --profile https_spiffe --endpoint-id ID",
        "fetch-bundle --url https://127.0.0.1:1 --trust-domain TD --profile https_spiffe --endpoint-id ID --endpoint-bundle F --ca F",
        "fetch-bundle --url https://127.0.0.1:1 --trust-domain TD --profile https_web --endpoint-id ID",
        "fetch-bundle --url https://127.0.0.1:1 --trust-domain TD --profile https_web --endpoint-bundle F",
        "fetch-bundle --url https://127.0.0.1:1 --trust-domain TD --profile https_spiffe --endpoint-id not-an-id --endpoint-bundle F",
    ];
    let cases = cases.map(|line| {
        line.split_whitespace()
            .map(|word| match word {
                "D" => d,
                "F" => f,
                "TD" => TD,
                "ID" => ENDPOINT_ID,
                word => word,
            })
            .collect::<Vec<&str>>()
    });
    for args in cases {
        let out = run(&args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:#?}");
        assert!(!out.stderr.is_empty(), "{args:?}: {out:#?}");
    }
}
