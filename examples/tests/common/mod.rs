//! Run with: `cargo test -p examples` (helpers shared by the example tests).
//!
//! Certificates from the `mtls-ca` library written into a temporary
//! directory, the example servers as real processes (killed when their
//! guard drops), clients run with a deadline, and curl.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod interop;
pub(crate) mod spire;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{SpiffeId, TrustDomain};

/// The example servers and clients.
pub(crate) const AXUM_SERVER: &str = env!("CARGO_BIN_EXE_axum-server");
pub(crate) const TONIC_SERVER: &str = env!("CARGO_BIN_EXE_tonic-server");
pub(crate) const AXUM_CLIENT: &str = env!("CARGO_BIN_EXE_axum-client");
pub(crate) const TONIC_CLIENT: &str = env!("CARGO_BIN_EXE_tonic-client");

/// The SPIFFE ID of the example server in [`Fixture`].
pub(crate) const SERVER_ID: &str = "spiffe://example.org/server";

/// How long a server may take to print `listening on ADDR`.
const STARTUP: Duration = Duration::from_secs(15);
/// How long one client run may take.
const CLIENT_DEADLINE: Duration = Duration::from_secs(15);

/// A development CA whose files go into a temporary directory.
pub(crate) struct Pki {
    pub(crate) dir: tempfile::TempDir,
}

/// One trust domain: its CA and the path of its bundle (PEM).
pub(crate) struct Domain {
    pub(crate) ca: CertificateAuthority,
    pub(crate) bundle: PathBuf,
}

/// The files of one SVID.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) id: String,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl Pki {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new self-signed development CA for `td`, its bundle written to
    /// `<name>-bundle.pem`.
    pub(crate) fn domain(&self, name: &str, td: &str) -> Domain {
        let ca = CertificateAuthority::self_signed_for_development(
            TrustDomain::new(td).unwrap(),
            &CaOptions::default(),
        )
        .unwrap();
        let bundle = self.path(&format!("{name}-bundle.pem"));
        std::fs::write(&bundle, ca.bundle().unwrap().to_pem()).unwrap();
        Domain { ca, bundle }
    }

    /// Issues `id` (with DNS SAN localhost) from `domain` into
    /// `<name>.pem` and `<name>.key`.
    pub(crate) fn issue(&self, domain: &Domain, name: &str, id: &str) -> Identity {
        let svid = domain
            .ca
            .issue(&SvidRequest::new(SpiffeId::new(id).unwrap()).dns_name("localhost"))
            .unwrap();
        let cert = self.path(&format!("{name}.pem"));
        let key = self.path(&format!("{name}.key"));
        std::fs::write(&cert, svid.chain_pem()).unwrap();
        std::fs::write(&key, svid.private_key_pem()).unwrap();
        Identity {
            id: id.to_owned(),
            cert,
            key,
        }
    }
}

impl Identity {
    /// `--cert C --key K`.
    pub(crate) fn args(&self) -> Vec<String> {
        vec![
            "--cert".into(),
            path_str(&self.cert),
            "--key".into(),
            path_str(&self.key),
        ]
    }
}

pub(crate) fn path_str(path: &Path) -> String {
    path.to_str().expect("UTF-8 temporary path").to_owned()
}

/// One trust domain, example.org, with a server, a client and an admin,
/// for the example server `exe`; each test file adds its client calls.
pub(crate) struct Fixture {
    pub(crate) pki: Pki,
    pub(crate) example: Domain,
    pub(crate) server: Identity,
    pub(crate) client: Identity,
    pub(crate) admin: Identity,
    exe: &'static str,
}

impl Fixture {
    /// Issues the three identities; the server's is [`SERVER_ID`].
    pub(crate) fn new(exe: &'static str) -> Self {
        let pki = Pki::new();
        let example = pki.domain("example", "example.org");
        let server = pki.issue(&example, "server", SERVER_ID);
        let client = pki.issue(&example, "client", "spiffe://example.org/client");
        let admin = pki.issue(&example, "admin", "spiffe://example.org/admin");
        Self {
            pki,
            example,
            server,
            client,
            admin,
            exe,
        }
    }

    /// `axum-client` GET `path` of `server` as `who`, trusting example.org,
    /// expecting our server's SPIFFE ID.
    pub(crate) fn axum_get(&self, server: &Server, who: &Identity, path: &str) -> Outcome {
        self.axum_get_with(server, who, path, bundle(&self.example.bundle))
    }

    /// [`axum_get`](Self::axum_get) trusting the `--bundle` arguments
    /// `bundles`.
    pub(crate) fn axum_get_with(
        &self,
        server: &Server,
        who: &Identity,
        path: &str,
        bundles: Vec<String>,
    ) -> Outcome {
        let url = format!("https://{}{path}", server.addr);
        run(
            AXUM_CLIENT,
            &args([
                s(&["--url", &url, "--server-id", &self.server.id]),
                who.args(),
                bundles,
            ]),
        )
    }

    /// `tonic-client --addr ADDR --call CALL` to `server` as `who`, trusting
    /// example.org, expecting our server's SPIFFE ID.
    pub(crate) fn tonic_call(&self, server: &Server, who: &Identity, call: &str) -> Outcome {
        self.tonic_call_with(
            &s(&["--addr", &server.addr.to_string()]),
            who,
            call,
            bundle(&self.example.bundle),
        )
    }

    /// [`tonic_call`](Self::tonic_call) of the server that `target` names
    /// (`--url URL`, `--addr ADDR`), trusting the `--bundle` arguments
    /// `bundles`.
    pub(crate) fn tonic_call_with(
        &self,
        target: &[String],
        who: &Identity,
        call: &str,
        bundles: Vec<String>,
    ) -> Outcome {
        run(
            TONIC_CLIENT,
            &args([
                target.to_vec(),
                s(&["--call", call, "--server-id", &self.server.id]),
                who.args(),
                bundles,
            ]),
        )
    }

    /// A member of another trust domain, other.org, who trusts both
    /// other.org and example.org (so that only the server can refuse it).
    pub(crate) fn stranger(&self) -> Stranger {
        let domain = self.pki.domain("other", "other.org");
        let identity = self
            .pki
            .issue(&domain, "stranger", "spiffe://other.org/stranger");
        let trust_both = args([
            bundle(&domain.bundle),
            federated("example.org", &self.example.bundle),
        ]);
        Stranger {
            domain,
            identity,
            trust_both,
        }
    }

    /// Runs the example client `exe` as the client, trusting example.org,
    /// calling the server named by `target` (`--url URL`, `--addr ADDR`) but
    /// expecting another server's SPIFFE ID: asserts that it refuses the
    /// server.
    #[track_caller]
    pub(crate) fn assert_refuses_another_server(&self, exe: &str, target: &[String]) {
        let out = run(
            exe,
            &args([
                target.to_vec(),
                s(&["--server-id", "spiffe://example.org/someone-else"]),
                self.client.args(),
                bundle(&self.example.bundle),
            ]),
        );
        out.assert_refused();
        assert!(out.stderr.contains("rejected the server"), "{out:#?}");
    }

    /// The server with `extra` flags.
    pub(crate) fn start(&self, extra: &[String]) -> Server {
        Server::start(
            self.exe,
            &args([
                self.server.args(),
                bundle(&self.example.bundle),
                extra.to_vec(),
            ]),
        )
    }
}

/// What [`Fixture::stranger`] returns.
pub(crate) struct Stranger {
    /// other.org.
    pub(crate) domain: Domain,
    /// `spiffe://other.org/stranger`.
    pub(crate) identity: Identity,
    /// `--bundle` arguments for both trust domains.
    pub(crate) trust_both: Vec<String>,
}

impl Stranger {
    /// Server flags federating with other.org and allowing its members.
    pub(crate) fn admitted(&self) -> Vec<String> {
        args([
            federated("other.org", &self.domain.bundle),
            s(&["--allow-trust-domain", "other.org"]),
        ])
    }
}

/// A running server process, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts `exe --listen 127.0.0.1:0 ARGS` and waits for its
    /// `listening on ADDR` line.
    pub(crate) fn start(exe: &str, args: &[String]) -> Self {
        let mut all = s(&["--listen", "127.0.0.1:0"]);
        all.extend_from_slice(args);
        Self::spawn(exe, &all)
    }

    /// Starts `exe ARGS` and waits for its `listening on ADDR` line.
    pub(crate) fn spawn(exe: &str, args: &[String]) -> Self {
        Self::spawn_with(Command::new(exe).args(args))
    }

    /// Starts `command` and waits for its `listening on ADDR` line.
    pub(crate) fn spawn_with(command: &mut Command) -> Self {
        Self::spawn_within(command, STARTUP)
    }

    /// Starts `command` and waits up to `startup` for its `listening on
    /// ADDR` line (earlier lines are skipped).
    pub(crate) fn spawn_within(command: &mut Command, startup: Duration) -> Self {
        let (mut child, exe) = spawn_piped(command);
        let stdout = child.stdout.take().unwrap();
        let stderr = read_in_background(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.find(|line| {
                line.as_ref()
                    .map_or(true, |line| line.starts_with("listening on "))
            });
            let _ = tx.send(first);
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: Some(stderr),
        };
        let line = match rx.recv_timeout(startup) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                panic!(
                    "{exe} did not print `listening on ADDR` ({other:?}); stderr: {}",
                    server.stderr()
                );
            }
        };
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{exe}: unexpected first line {line:?}"));
        server.addr = addr
            .parse()
            .unwrap_or_else(|e| panic!("{exe}: bad address in {line:?}: {e}"));
        assert_ne!(server.addr.port(), 0, "the real port is printed");
        server
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Sends SIGTERM (`kill -TERM`), waits for the server to exit, and
    /// returns its exit status and everything it wrote on stderr.
    #[cfg(unix)]
    pub(crate) fn terminate(&mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.as_ref().is_ok_and(|s| s.success()),
            "kill -TERM {pid}: {sent:?}"
        );
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > CLIENT_DEADLINE {
                let log = self.stderr();
                panic!(
                    "the server did not exit within {CLIENT_DEADLINE:?} of SIGTERM; stderr: {log}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.stderr())
    }

    /// Kills the server and returns everything it wrote on stderr.
    pub(crate) fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Kills the server and asserts that it wrote each of `needles` on
    /// stderr.
    #[track_caller]
    pub(crate) fn assert_logged(&mut self, needles: &[&str]) {
        let log = self.stderr();
        for needle in needles {
            assert!(log.contains(needle), "{needle:?} not in the log:\n{log}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished client printed.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Outcome {
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.code()
    }

    #[track_caller]
    pub(crate) fn assert_ok(&self) -> &Self {
        assert!(self.status.success(), "expected success: {self:#?}");
        self
    }

    #[track_caller]
    pub(crate) fn assert_exit(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "expected exit {code}: {self:#?}");
        self
    }

    /// Asserts success with exactly `stdout` printed.
    #[track_caller]
    pub(crate) fn assert_stdout(&self, stdout: &str) -> &Self {
        self.assert_ok();
        assert_eq!(self.stdout, stdout, "{self:#?}");
        self
    }

    /// Asserts exit status 1 with nothing printed on stdout: refused.
    #[track_caller]
    pub(crate) fn assert_refused(&self) -> &Self {
        self.assert_exit(1);
        assert_eq!(self.stdout, "", "{self:#?}");
        self
    }

    /// Asserts that each of `needles` is on stderr.
    #[track_caller]
    pub(crate) fn assert_stderr_has(&self, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "{needle:?} not on stderr: {self:#?}"
            );
        }
        self
    }
}

/// Starts `command` with stdin closed and stdout and stderr piped; returns
/// the child and the program's name, for messages.
fn spawn_piped(command: &mut Command) -> (Child, String) {
    let exe = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
    (child, exe)
}

/// Reads `pipe` to its end on a thread of its own (so that the child never
/// blocks on a full pipe); joining the thread gives the text read.
fn read_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs a program to its end, killing it past the deadline.
pub(crate) fn run(exe: &str, args: &[String]) -> Outcome {
    run_with(Command::new(exe).args(args))
}

/// Runs `command` to its end, killing it past the deadline.
pub(crate) fn run_with(command: &mut Command) -> Outcome {
    let (mut child, exe) = spawn_piped(command);
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let out = read_in_background(child.stdout.take().unwrap());
    let err = read_in_background(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > CLIENT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{exe} {args:?} still running after {CLIENT_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The curl executable, or a loud failure: these tests need an independent
/// client (CI installs curl).
pub(crate) fn curl() -> &'static str {
    match Command::new("curl").arg("--version").output() {
        Ok(out) if out.status.success() => "curl",
        Ok(out) => panic!("`curl --version` failed: {out:?}; these tests need curl"),
        Err(e) => panic!("curl is required by these tests and was not found ({e}); install it (apt-get install curl)"),
    }
}

/// `["--bundle", path]`.
pub(crate) fn bundle(path: &Path) -> Vec<String> {
    vec!["--bundle".into(), path_str(path)]
}

/// `["--bundle", "TD=path"]`.
pub(crate) fn federated(td: &str, path: &Path) -> Vec<String> {
    vec!["--bundle".into(), format!("{td}={}", path_str(path))]
}

/// Joins argument lists.
pub(crate) fn args<const N: usize>(parts: [Vec<String>; N]) -> Vec<String> {
    parts.into_iter().flatten().collect()
}

/// Turns string slices into owned arguments.
pub(crate) fn s(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}
