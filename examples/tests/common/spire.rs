//! A real SPIRE deployment for the interop tests: `spire-server` (SQLite in
//! a temporary directory, `join_token` node attestation, its own trust
//! domain) and `spire-agent` (unix workload attestor with
//! `discover_workload_path`, so registration entries tell workloads apart
//! by executable path), as child processes killed on drop.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{path_str, run_with, Outcome};

/// How long SPIRE may take to come up, or to hand out an identity.
pub(crate) const SPIRE_READY: Duration = Duration::from_secs(60);

/// A port nobody listens on now (small race: fine on loopback in tests).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The settings the `server` and `agent` blocks of SPIRE's configuration
/// share: data under `DIR/data`, the API socket, the trust domain and a
/// DEBUG log.
fn common_settings(dir: &Path, socket: &Path, trust_domain: &str) -> String {
    let data = path_str(&dir.join("data"));
    let socket = path_str(socket);
    format!(
        "  data_dir = \"{data}\"\n  log_level = \"DEBUG\"\n  socket_path = \"{socket}\"\n  trust_domain = \"{trust_domain}\""
    )
}

/// A child process whose stderr and stdout go to a log file, killed on drop.
pub(crate) struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, command: &mut Command, log: PathBuf) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// Everything the process logged so far.
    pub(crate) fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Kills the process (idempotent).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `EXE healthcheck -socketPath SOCKET` every 200 ms while the
    /// process runs, until it succeeds; fails after [`SPIRE_READY`] with
    /// the last answer and the log.
    #[track_caller]
    fn wait_healthy(&mut self, exe: &Path, socket: &Path) {
        let start = Instant::now();
        let socket = path_str(socket);
        loop {
            self.assert_running();
            let out = run_with(Command::new(exe).args(["healthcheck", "-socketPath", &socket]));
            if out.status.success() {
                return;
            }
            assert!(
                start.elapsed() < SPIRE_READY,
                "{} not healthy within {SPIRE_READY:?}: {out:#?}; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited ({status}); log:\n{}", self.name, self.log());
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `ready` holds, panicking with `what` and the log past `limit`.
#[track_caller]
pub(crate) fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Server settings that tests change.
#[derive(Clone, Debug)]
pub(crate) struct ServerOptions {
    /// `default_x509_svid_ttl`.
    pub(crate) svid_ttl: String,
    /// `ca_ttl`.
    pub(crate) ca_ttl: String,
    /// Other trust domains this server federates with: (trust domain, the
    /// port of its bundle endpoint).
    pub(crate) federates_with: Vec<(String, u16)>,
    /// The port of this server's bundle endpoint (a free one if `None`).
    pub(crate) bundle_endpoint_port: Option<u16>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            svid_ttl: "1h".into(),
            ca_ttl: "24h".into(),
            federates_with: Vec::new(),
            bundle_endpoint_port: None,
        }
    }
}

/// A running `spire-server`.
pub(crate) struct SpireServer {
    exe: PathBuf,
    pub(crate) trust_domain: String,
    pub(crate) port: u16,
    /// The port of its bundle endpoint (`https_spiffe`), for federation.
    pub(crate) bundle_endpoint_port: u16,
    socket: PathBuf,
    process: Process,
}

impl SpireServer {
    /// Starts a server for `trust_domain` with its files under `dir` and
    /// waits until its health check passes.
    pub(crate) fn start(
        exe: &Path,
        dir: &Path,
        trust_domain: &str,
        options: &ServerOptions,
    ) -> Self {
        let dir = dir.join(format!("server-{trust_domain}"));
        std::fs::create_dir_all(dir.join("data")).expect("server data dir");
        let port = free_port();
        let bundle_endpoint_port = options.bundle_endpoint_port.unwrap_or_else(free_port);
        let socket = dir.join("api.sock");
        let mut federation = format!(
            "federation {{\n    bundle_endpoint {{\n      address = \"127.0.0.1\"\n      port = {bundle_endpoint_port}\n    }}\n"
        );
        for (td, port) in &options.federates_with {
            federation.push_str(&format!(
                "    federates_with \"{td}\" {{\n      bundle_endpoint_url = \"https://127.0.0.1:{port}\"\n      bundle_endpoint_profile \"https_spiffe\" {{\n        endpoint_spiffe_id = \"spiffe://{td}/spire/server\"\n      }}\n    }}\n"
            ));
        }
        federation.push_str("  }\n");
        let config = format!(
            r#"server {{
  bind_address = "127.0.0.1"
  bind_port = "{port}"
{common}
  ca_key_type = "ec-p256"
  ca_ttl = "{ca_ttl}"
  default_x509_svid_ttl = "{svid_ttl}"
  {federation}
}}

plugins {{
  DataStore "sql" {{
    plugin_data {{
      database_type = "sqlite3"
      connection_string = "{db}"
    }}
  }}
  NodeAttestor "join_token" {{
    plugin_data {{}}
  }}
  KeyManager "memory" {{
    plugin_data {{}}
  }}
}}
"#,
            common = common_settings(&dir, &socket, trust_domain),
            db = path_str(&dir.join("data/datastore.sqlite3")),
            ca_ttl = options.ca_ttl,
            svid_ttl = options.svid_ttl,
        );
        let conf = dir.join("server.conf");
        std::fs::write(&conf, config).expect("server.conf");
        let process = Process::spawn(
            &format!("spire-server ({trust_domain})"),
            Command::new(exe).args(["run", "-config", &path_str(&conf)]),
            dir.join("server.log"),
        );
        let mut server = Self {
            exe: exe.to_owned(),
            trust_domain: trust_domain.to_owned(),
            port,
            bundle_endpoint_port,
            socket,
            process,
        };
        server.process.wait_healthy(&server.exe, &server.socket);
        server
    }

    /// `spire-server SUBCOMMAND... -socketPath SOCKET ARGS...`: `sub` are
    /// the subcommand words (`["entry", "create"]`).
    pub(crate) fn cli_with(&self, sub: &[&str], args: &[&str]) -> Outcome {
        run_with(
            Command::new(&self.exe)
                .args(sub)
                .args(["-socketPath", &path_str(&self.socket)])
                .args(args),
        )
    }

    fn cli(&self, sub: &[&str]) -> Outcome {
        self.cli_with(sub, &[])
    }

    /// `spire-server ... ARGS`, which must succeed; its stdout.
    #[track_caller]
    pub(crate) fn must(&self, sub: &[&str], args: &[&str]) -> String {
        let out = self.cli_with(sub, args);
        assert!(
            out.status.success(),
            "spire-server {sub:?} {args:?} failed: {out:#?}"
        );
        out.stdout
    }

    /// The SPIFFE ID of the agents this server attests.
    pub(crate) fn agent_id(&self) -> String {
        format!("spiffe://{}/agent", self.trust_domain)
    }

    /// A one-time join token for an agent, which gets [`agent_id`](Self::agent_id).
    pub(crate) fn join_token(&self) -> String {
        let out = self.must(&["token", "generate"], &["-spiffeID", &self.agent_id()]);
        out.lines()
            .find_map(|l| l.strip_prefix("Token: "))
            .unwrap_or_else(|| panic!("no token in {out:?}"))
            .trim()
            .to_owned()
    }

    /// Registers `spiffe_id` for the workloads of `selector` under this
    /// server's agents; `extra` are more `entry create` flags
    /// (`-x509SVIDTTL 20`, `-federatesWith TD`). Returns the entry ID.
    pub(crate) fn register(&self, spiffe_id: &str, selector: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "-parentID",
            "",
            "-spiffeID",
            spiffe_id,
            "-selector",
            selector,
        ];
        let parent = self.agent_id();
        args[1] = &parent;
        args.extend_from_slice(extra);
        let out = self.must(&["entry", "create"], &args);
        out.lines()
            .find_map(|l| l.strip_prefix("Entry ID"))
            .map(|rest| rest.trim_start_matches([' ', ':']).trim().to_owned())
            .unwrap_or_else(|| panic!("no entry ID in {out:?}"))
    }

    /// Deletes a registration entry.
    pub(crate) fn unregister(&self, entry_id: &str) {
        self.must(&["entry", "delete"], &["-entryID", entry_id]);
    }

    /// This server's bundle in the SPIFFE format (JWKS), for federation.
    pub(crate) fn spiffe_bundle(&self) -> String {
        self.must(&["bundle", "show"], &["-format", "spiffe"])
    }

    /// A JWT-SVID for `spiffe_id` and `audience` signed by this server
    /// (`spire-server jwt mint`), compact form.
    pub(crate) fn jwt_mint(&self, spiffe_id: &str, audience: &str) -> String {
        self.must(
            &["jwt", "mint"],
            &["-spiffeID", spiffe_id, "-audience", audience, "-ttl", "5m"],
        )
        .trim()
        .to_owned()
    }

    /// Sets the bundle of a federated trust domain (SPIFFE format).
    pub(crate) fn set_federated_bundle(&self, trust_domain: &str, bundle: &str, dir: &Path) {
        let file = dir.join(format!(
            "bundle-of-{trust_domain}-for-{}.json",
            self.trust_domain
        ));
        std::fs::write(&file, bundle).expect("bundle file");
        self.must(
            &["bundle", "set"],
            &[
                "-format",
                "spiffe",
                "-id",
                &format!("spiffe://{trust_domain}"),
                "-path",
                &path_str(&file),
            ],
        );
    }

    /// Everything the server logged so far.
    pub(crate) fn log(&self) -> String {
        self.process.log()
    }
}

/// A running `spire-agent`, attested by a join token.
pub(crate) struct SpireAgent {
    exe: PathBuf,
    conf: PathBuf,
    socket: PathBuf,
    token: String,
    log: PathBuf,
    process: Process,
}

impl SpireAgent {
    /// Starts an agent of `server` with its files under `dir` and waits for
    /// its health check.
    pub(crate) fn start(exe: &Path, dir: &Path, server: &SpireServer) -> Self {
        let dir = dir.join(format!("agent-{}", server.trust_domain));
        std::fs::create_dir_all(dir.join("data")).expect("agent data dir");
        let socket = dir.join("api.sock");
        let config = format!(
            r#"agent {{
{common}
  server_address = "127.0.0.1"
  server_port = "{port}"
  insecure_bootstrap = true
}}

plugins {{
  NodeAttestor "join_token" {{
    plugin_data {{}}
  }}
  KeyManager "disk" {{
    plugin_data {{
      directory = "{data}"
    }}
  }}
  WorkloadAttestor "unix" {{
    plugin_data {{
      discover_workload_path = true
    }}
  }}
}}
"#,
            common = common_settings(&dir, &socket, &server.trust_domain),
            data = path_str(&dir.join("data")),
            port = server.port,
        );
        let conf = dir.join("agent.conf");
        std::fs::write(&conf, config).expect("agent.conf");
        let token = server.join_token();
        let log = dir.join("agent.log");
        let process = Self::spawn(exe, &conf, &token, &log);
        let mut agent = Self {
            exe: exe.to_owned(),
            conf,
            socket,
            token,
            log,
            process,
        };
        agent.wait_healthy();
        agent
    }

    fn spawn(exe: &Path, conf: &Path, token: &str, log: &Path) -> Process {
        Process::spawn(
            "spire-agent",
            Command::new(exe).args(["run", "-config", &path_str(conf), "-joinToken", token]),
            log.to_owned(),
        )
    }

    fn wait_healthy(&mut self) {
        self.process.wait_healthy(&self.exe, &self.socket);
    }

    /// The Workload API endpoint (`unix:///.../api.sock`).
    pub(crate) fn endpoint(&self) -> String {
        format!("unix://{}", path_str(&self.socket))
    }

    /// Stops the agent (the Workload API goes away).
    pub(crate) fn stop(&mut self) {
        self.process.kill();
    }

    /// Starts the agent again with the same data directory: it comes back
    /// with the node SVID it already holds (the join token was used up).
    pub(crate) fn restart(&mut self) {
        self.process.kill();
        self.process = Self::spawn(&self.exe, &self.conf, &self.token, &self.log);
        self.wait_healthy();
    }

    /// Everything the agent logged so far.
    pub(crate) fn log(&self) -> String {
        self.process.log()
    }
}

/// `unix:path:EXE`: the selector of the workloads running `exe`.
pub(crate) fn path_selector(exe: &Path) -> String {
    let exe = exe.canonicalize().unwrap_or_else(|_| exe.to_owned());
    format!("unix:path:{}", path_str(&exe))
}
