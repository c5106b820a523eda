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
//! Usage errors (an unknown command or option, a bad SPIFFE ID or method)
//! exit 2.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use http::Method;
use mtls_core::SpiffeId;
use mtls_tower::{AuthenticatedBy, CompiledPolicy, PolicyQuery};

/// Checks and explains mtls-tower authorization policy files.
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
    }
}
