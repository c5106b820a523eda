//! `mtls-policy`: checks and explains mtls-tower authorization policy files
//! (format: `docs/policy.md`).
//!
//! - `mtls-policy check FILE`: exit 0 when the file is valid; otherwise
//!   `FILE:LINE:COLUMN: message` on stderr and exit 1.
//! - `mtls-policy explain FILE --caller ID --method M --path P` (or
//!   `--grpc /package.Service/Method`; `--authenticated-by mtls|jwt-svid`,
//!   default `mtls`): prints `allow` or `deny` as the first word, then the
//!   rule that decided and why, then every rule that matched; exit 0
//!   whatever the decision, 1 when the file is not valid.
//!
//! - `mtls-policy learn OBSERVATIONS... --out FILE`: merges learned
//!   policy files (what learn mode writes: they are the observation
//!   files) into one policy allowing exactly the calls any of them
//!   allows; exit 1 when a file is invalid or not a learned policy.
//! - `mtls-policy diff OLD NEW --observations FILE...`: prints, one per
//!   line, `deny CALLER METHOD ROUTE: why` for each observed call (from
//!   learned files) that OLD allows and NEW would deny; exit 0 whatever
//!   it finds, 1 when a file is invalid. Calls are replayed as
//!   authenticated by mTLS (learned files do not record how).
//!
//! - `mtls-policy graph OBSERVATIONS... --out graph.svg|graph.dot
//!   [--policy FILE]`: the observed call graph, callers to routes (`GET
//!   /orders/{id}`, or a gRPC method), as an SVG picture (callers in a left
//!   column, routes in a right one, one line per call) or Graphviz DOT
//!   text. With `--policy`, each call is colored by what that policy
//!   decides (allowed: green; denied: red, dashed); without, every
//!   observed call is blue ("observed").
//!
//! Usage errors (an unknown command or option, a bad SPIFFE ID or method)
//! exit 2.
#![forbid(unsafe_code)]

use std::process::ExitCode;

mod graph;

use clap::{Parser, Subcommand};
use http::Method;
use mtls_core::SpiffeId;
use mtls_tower::{AuthenticatedBy, CompiledPolicy, Observation, PolicyQuery};

/// Checks, explains, learns, diffs and graphs mtls-tower authorization policy files.
#[derive(Debug, Parser)]
#[command(name = "mtls-policy", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks a policy file: exit 0 when valid, else FILE:LINE:COLUMN: message and exit 1.
    Check {
        /// The policy file.
        file: String,
    },
    /// Says whether a policy file allows a call, and which rule decides.
    Explain {
        /// The policy file.
        file: String,
        /// The caller's SPIFFE ID.
        #[arg(long, value_parser = parse_id)]
        caller: SpiffeId,
        /// The HTTP method (with --path).
        #[arg(long, value_parser = parse_method, requires = "path", conflicts_with = "grpc")]
        method: Option<Method>,
        /// The request path (raw, percent-encoded as sent, without query).
        #[arg(long, required_unless_present = "grpc", conflicts_with = "grpc")]
        path: Option<String>,
        /// A gRPC call instead: /package.Service/Method.
        #[arg(long)]
        grpc: Option<String>,
        /// How the caller authenticated: mtls or jwt-svid.
        #[arg(long, default_value = "mtls", value_parser = parse_authn)]
        authenticated_by: AuthenticatedBy,
    },
    /// Merges learned policy files into one policy allowing exactly their calls.
    Learn {
        /// Learned policy files (written by learn mode).
        #[arg(required = true)]
        observations: Vec<String>,
        /// Where to write the merged policy.
        #[arg(long)]
        out: String,
    },
    /// Draws the observed call graph (callers to routes) as SVG or DOT.
    Graph {
        /// Learned policy files (written by learn mode).
        #[arg(required = true)]
        observations: Vec<String>,
        /// Where to write it: a name ending in .svg (a picture) or .dot
        /// (Graphviz text).
        #[arg(long)]
        out: String,
        /// Colors each call by what this policy decides.
        #[arg(long)]
        policy: Option<String>,
    },
    /// Lists the observed calls that OLD allows and NEW would deny.
    Diff {
        /// The policy in force.
        old: String,
        /// The policy to roll out.
        new: String,
        /// Learned policy files: the calls to replay.
        #[arg(long, required = true, num_args = 1..)]
        observations: Vec<String>,
    },
}

fn parse_id(s: &str) -> Result<SpiffeId, String> {
    SpiffeId::new(s).map_err(|e| e.to_string())
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::from_bytes(s.as_bytes()).map_err(|e| e.to_string())
}

fn parse_authn(s: &str) -> Result<AuthenticatedBy, String> {
    match s {
        "mtls" => Ok(AuthenticatedBy::Mtls),
        "jwt-svid" => Ok(AuthenticatedBy::JwtSvid),
        other => Err(format!(
            "unknown authentication {other:?} (mtls or jwt-svid)"
        )),
    }
}

fn load(file: &str) -> Result<CompiledPolicy, ExitCode> {
    CompiledPolicy::from_file(file).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })
}

/// The calls of learned policy files.
fn observations(files: &[String]) -> Result<Vec<Observation>, ExitCode> {
    let mut all = Vec::new();
    for file in files {
        match load(file)?.learned_observations() {
            Some(calls) => all.extend(calls),
            None => {
                eprintln!("{file}: not a learned policy (allow rules of exact caller IDs, each with one method and one path, or one gRPC method)");
                return Err(ExitCode::from(1));
            }
        }
    }
    Ok(all)
}

fn learn(files: &[String], out: &str) -> Result<(), ExitCode> {
    let calls = observations(files)?;
    let text = Observation::policy_toml(&calls);
    let tmp = format!("{out}.tmp");
    let written = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, out));
    if let Err(e) = written {
        eprintln!("{out}: cannot write: {e}");
        return Err(ExitCode::from(1));
    }
    let calls = CompiledPolicy::from_toml(&text, out)
        .ok()
        .and_then(|p| p.learned_observations())
        .map_or(0, |c| c.len());
    println!("{out}: {calls} calls");
    Ok(())
}

fn draw(files: &[String], out: &str, policy: Option<&str>) -> Result<(), ExitCode> {
    let svg = if out.ends_with(".svg") {
        true
    } else if out.ends_with(".dot") {
        false
    } else {
        eprintln!("mtls-policy: --out {out}: the name must end in .svg or .dot");
        return Err(ExitCode::from(2));
    };
    let policy = policy.map(load).transpose()?;
    let mut calls = observations(files)?;
    calls.sort();
    calls.dedup();
    let edges: Vec<graph::Edge> = calls
        .iter()
        .map(|call| {
            let status = match &policy {
                None => graph::Status::Observed,
                Some(policy) => {
                    let query = PolicyQuery::new(
                        call.caller(),
                        AuthenticatedBy::Mtls,
                        call.method(),
                        call.route(),
                    );
                    if policy.evaluate(&query).is_allowed() {
                        graph::Status::Allowed
                    } else {
                        graph::Status::Denied
                    }
                }
            };
            let route = if call.is_grpc() {
                call.route().to_owned()
            } else {
                format!("{} {}", call.method(), call.route())
            };
            graph::Edge {
                caller: call.caller().to_string(),
                route,
                status,
            }
        })
        .collect();
    let graph = graph::Graph::new(&edges);
    let text = if svg { graph.svg() } else { graph.dot() };
    let tmp = format!("{out}.tmp");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, out)) {
        eprintln!("{out}: cannot write: {e}");
        return Err(ExitCode::from(1));
    }
    println!("{out}: {} calls", edges.len());
    Ok(())
}

fn diff(old: &str, new: &str, files: &[String]) -> Result<(), ExitCode> {
    let (old, new) = (load(old)?, load(new)?);
    for call in observations(files)? {
        let query = PolicyQuery::new(
            call.caller(),
            AuthenticatedBy::Mtls,
            call.method(),
            call.route(),
        );
        if old.evaluate(&query).is_allowed() && !new.evaluate(&query).is_allowed() {
            let why = new.explain(&query).to_string();
            let why = why.lines().next().unwrap_or_default();
            let why = why.strip_prefix("deny: ").unwrap_or(why);
            println!(
                "deny {} {} {}: {why}",
                call.caller(),
                call.method(),
                call.route()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => match load(&file) {
            Ok(policy) => {
                println!("{file}: ok: {} rules", policy.len());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Explain {
            file,
            caller,
            method,
            path,
            grpc,
            authenticated_by,
        } => {
            let policy = match load(&file) {
                Ok(policy) => policy,
                Err(code) => return code,
            };
            let (method, path) = match (grpc, path) {
                (Some(grpc), _) => (Method::POST, grpc),
                (None, Some(path)) => (method.unwrap_or(Method::GET), path),
                (None, None) => {
                    eprintln!("mtls-policy: explain needs --path or --grpc");
                    return ExitCode::from(2);
                }
            };
            let query = PolicyQuery::new(&caller, authenticated_by, &method, &path);
            println!("{}", policy.explain(&query));
            ExitCode::SUCCESS
        }
        Command::Learn { observations, out } => match learn(&observations, &out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Command::Graph {
            observations,
            out,
            policy,
        } => match draw(&observations, &out, policy.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Command::Diff {
            old,
            new,
            observations,
        } => match diff(&old, &new, &observations) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
    }
}
