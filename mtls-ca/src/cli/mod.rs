//! The `mtls-ca` command line (feature `cli`, on by default): the whole
//! program behind the `mtls-ca` binary, as one function, so that the binary
//! is one line and a distribution can embed the tool.
//!
//! Its arguments, output and exit status are a stable contract (see the
//! crate README); nothing else of the command line is public API.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     mtls_ca::cli::main()
//! }
//! ```

mod ca;
mod duration;
mod failure;
mod federation;
mod files;
mod inspect;
mod jwt;
mod renew;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::{KeyType, SvidRequest};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mtls_core::{SpiffeId, TrustDomain};

pub(crate) use failure::Failure;
#[doc(hidden)]
pub use verify::split_bundle_arg;

const AFTER_HELP: &str = "\
Exit status:
  0  success
  1  the operation failed, or the certificate was rejected; this includes
     input files that cannot be read or do not hold what they should
     (garbage PEM, a key that does not match, an invalid CSR)
  2  usage error: unknown or missing options, invalid option values

Durations are a number and a unit: s, m, h or d (90s, 10m, 1h, 30d), or a
sum of such terms (1h30m).

Errors are printed on stderr as `mtls-ca: <message>`.";

/// A certificate authority for SPIFFE X.509-SVIDs (mutual TLS identities).
///
/// A CA directory holds ca.pem (the signing CA's chain), ca.key (its private
/// key, mode 0600), bundle.pem (the roots peers trust), state.json
/// (revocations, CRL and bundle sequence numbers) and jwt.json (the JWT-SVID
/// signing key, mode 0600).
#[derive(Debug, Parser)]
#[command(name = "mtls-ca", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a signing CA in a directory: a development root
    /// (--self-signed) or an existing CA from your PKI (--from-cert/--from-key).
    Init(InitArgs),
    /// Create an intermediate CA signed by the CA in --dir (for example one
    /// per cluster) and save it in --out.
    Intermediate(IntermediateArgs),
    /// Issue an X.509-SVID with a fresh key: writes PREFIX.pem (leaf, then
    /// intermediates) and PREFIX.key (mode 0600).
    ///
    /// Prints `spiffe_id: <ID>`, `serial: <hex>` and `not_after: <RFC 3339>`
    /// on stdout, one per line.
    Issue(IssueArgs),
    /// Keep an X.509-SVID fresh in PREFIX.pem and PREFIX.key (as `issue`
    /// writes them) for a running development service, like spiffe-helper.
    ///
    /// Issues now, then renews at about half the SVID's lifetime (mtls-core's
    /// RenewingSvid: 50 % ± 10 %), each time writing the key, then the chain,
    /// atomically; the CA directory is opened at every renewal, and a change
    /// of its ca.pem (a replaced CA) renews at once. The bundle peers trust
    /// stays DIR/bundle.pem (copied to --bundle-out when given, whenever it
    /// changes). Prints one `renewed: spiffe_id: ... serial: ...
    /// not_after: ...` line per SVID written; failures are printed on stderr
    /// and retried while the current files keep serving. Runs until SIGINT or
    /// SIGTERM (exit 0).
    ///
    /// With --once: renews only if due (files missing or unreadable, another
    /// SPIFFE ID, no longer verifying against the CA's bundle, or at most
    /// half of --ttl left), prints the `issue` lines and `renewed: <reason>`,
    /// or `not due: ...`; exits 0 either way, 1 when renewal fails (for cron).
    Renew(RenewArgs),
    /// Sign a certificate signing request (PEM or DER) as an X.509-SVID.
    ///
    /// Only the CSR's public key is used; the SPIFFE ID, DNS names and
    /// lifetime come from the options. Prints the same lines as `issue`.
    SignCsr(SignCsrArgs),
    /// Print the trust bundle on stdout: the roots peers must trust (PEM),
    /// or the SPIFFE bundle with the JWT-SVID keys too (--format jwks).
    Bundle(BundleArgs),
    /// Verify an X.509-SVID chain as a server verifies a client.
    ///
    /// Prints the SPIFFE ID and exits 0 when the chain is accepted; prints
    /// the reason on stderr and exits 1 when it is rejected, or when an
    /// input file cannot be read or parsed; exits 2 on usage errors.
    Verify(VerifyArgs),
    /// Revoke a certificate by serial number (recorded in state.json; run
    /// `crl` to publish it).
    Revoke(RevokeArgs),
    /// Write a CRL (PEM "X509 CRL") signed by the CA, listing every revoked
    /// serial.
    Crl(CrlArgs),
    /// Show a certificate: SPIFFE ID, serial, validity, names, key usages,
    /// and whether it has the shape of an X.509-SVID leaf.
    Inspect(InspectArgs),
    /// JWT-SVIDs: mint one, validate one, rotate the CA's JWT signing key.
    #[command(subcommand)]
    Jwt(JwtCommand),
    /// Serve the CA's SPIFFE bundle at a bundle endpoint (SPIFFE
    /// federation), following changes of the CA directory without restart.
    ///
    /// With --profile https_spiffe (the default) the endpoint presents an
    /// X509-SVID for spiffe://<trust domain>/mtls-ca/bundle-endpoint issued
    /// by the CA in --dir and renewed before it expires. When ready, prints
    /// one line `serving https://<IP>:<PORT> <SPIFFE ID>` (`serving
    /// https://<IP>:<PORT>` with https_web), then runs until SIGINT or
    /// SIGTERM (exit 0).
    ServeBundle(ServeBundleArgs),
    /// Fetch a trust domain's SPIFFE bundle from its bundle endpoint,
    /// validate it and print it (SPIFFE JSON), or write it to --out.
    ///
    /// The profile is always explicit: https_spiffe with --endpoint-id and
    /// --endpoint-bundle, or https_web with --ca (default: the system's
    /// roots). Exits 1 when the endpoint or its bundle is refused.
    FetchBundle(FetchBundleArgs),
}

/// A bundle endpoint profile (SPIFFE_Federation.md 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProfileArg {
    /// The endpoint presents an X509-SVID of its trust domain.
    #[value(name = "https_spiffe")]
    HttpsSpiffe,
    /// The endpoint presents a web PKI certificate for its host.
    #[value(name = "https_web")]
    HttpsWeb,
}

#[derive(Debug, Args)]
struct ServeBundleArgs {
    /// The CA directory whose bundle is served (and followed).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: std::net::SocketAddr,
    /// How the endpoint authenticates itself.
    #[arg(long, value_enum, default_value_t = ProfileArg::HttpsSpiffe)]
    profile: ProfileArg,
    /// https_web: the endpoint's certificate chain (PEM, leaf first).
    #[arg(long, value_name = "CHAIN.pem")]
    cert: Option<PathBuf>,
    /// https_web: the certificate's private key (PEM).
    #[arg(long, value_name = "KEY.pem")]
    key: Option<PathBuf>,
    /// The spiffe_refresh_hint published (whole seconds, at least 1s); after
    /// a CA replacement, the endpoint keeps its SVID of the previous CA for
    /// two hints, so that partners holding the previous bundle fetch the
    /// new one first.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration::parse)]
    refresh_hint: Duration,
}

#[derive(Debug, Args)]
struct FetchBundleArgs {
    /// The bundle endpoint URL (https, no userinfo).
    #[arg(long, value_name = "URL", value_parser = federation::parse_url)]
    url: mtls_core::federation::EndpointUrl,
    /// The trust domain whose bundle the endpoint serves.
    #[arg(long, value_name = "TD", value_parser = parse_trust_domain)]
    trust_domain: TrustDomain,
    /// How the endpoint is authenticated (never inferred).
    #[arg(long, value_enum)]
    profile: ProfileArg,
    /// https_spiffe: the SPIFFE ID the endpoint must present.
    #[arg(long, value_name = "ID", value_parser = parse_spiffe_id)]
    endpoint_id: Option<SpiffeId>,
    /// https_spiffe: a bundle of the endpoint's trust domain that verifies
    /// its SVID (PEM or SPIFFE JSON, detected).
    #[arg(long, value_name = "FILE")]
    endpoint_bundle: Option<PathBuf>,
    /// https_web: the roots to trust (PEM); default: the system's.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Write the bundle to FILE (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum JwtCommand {
    /// Mint a JWT-SVID signed by the CA's JWT key and print it (one line).
    Mint(JwtMintArgs),
    /// Validate a JWT-SVID as a server validates a caller's.
    ///
    /// Prints the SPIFFE ID and exits 0 when the token is valid; prints the
    /// reason on stderr and exits 1 when it is not, or when a bundle cannot
    /// be read or parsed; exits 2 on usage errors.
    Verify(JwtVerifyArgs),
    /// Replace the CA's JWT signing key; the old key stays in the bundle
    /// until the tokens it signed have expired. Prints `kid: <ID>` and
    /// `alg: <ALG>` of the new key.
    Rotate(JwtRotateArgs),
}

#[derive(Debug, Args)]
struct JwtMintArgs {
    /// The CA directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The token's subject (spiffe://<trust domain>/<path>).
    #[arg(long, value_name = "ID", value_parser = parse_spiffe_id)]
    spiffe_id: SpiffeId,
    /// An audience the token is for (repeatable; at least one).
    #[arg(long = "audience", value_name = "AUD", required = true)]
    audiences: Vec<String>,
    /// The token's lifetime (the default policy allows at most 1h).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration::parse)]
    ttl: Duration,
}

#[derive(Debug, Args)]
struct JwtVerifyArgs {
    /// The trust domain that bundles given without `TD=` belong to.
    /// Required unless every --bundle names its trust domain.
    #[arg(long, value_name = "TD", value_parser = parse_trust_domain)]
    trust_domain: Option<TrustDomain>,
    /// A SPIFFE bundle (JSON) holding the JWT authorities of a trust
    /// domain; `TD=FILE` for another (federated) one. Repeatable; one
    /// bundle per trust domain. A token is checked only against its
    /// subject's trust domain's bundle.
    #[arg(long = "bundle", value_name = "[TD=]FILE", required = true, value_parser = verify::parse_bundle_arg)]
    bundles: Vec<verify::BundleArg>,
    /// The audience this validator is: the token's `aud` must hold it.
    #[arg(long, value_name = "AUD")]
    audience: String,
    /// Validate at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    at: Option<SystemTime>,
    /// The token (compact JWS); `-` reads it from stdin.
    #[arg(value_name = "TOKEN")]
    token: String,
}

#[derive(Debug, Args)]
struct JwtRotateArgs {
    /// The CA directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The new key's type: p256 (ES256) or p384 (ES384).
    #[arg(long, value_enum, default_value_t = KeyTypeArg::P256)]
    key_type: KeyTypeArg,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// The CA directory to create.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The trust domain (example.org or spiffe://example.org). Required
    /// with --self-signed; with --from-cert, defaults to the CA
    /// certificate's spiffe:// URI SAN.
    #[arg(long, value_name = "TD", value_parser = parse_trust_domain)]
    trust_domain: Option<TrustDomain>,
    /// Create a self-signed root CA. For development only: in production,
    /// load an intermediate from your organisation's PKI with
    /// --from-cert/--from-key.
    #[arg(long, requires = "trust_domain", conflicts_with_all = ["from_cert", "from_key", "from_roots"])]
    self_signed: bool,
    /// The self-signed CA's key type.
    #[arg(long, value_enum, default_value_t = KeyTypeArg::P256, conflicts_with = "from_cert")]
    key_type: KeyTypeArg,
    /// How long the self-signed CA is valid.
    #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = duration::parse, conflicts_with = "from_cert")]
    ttl: Duration,
    /// The existing CA's certificate chain (PEM): its certificate first,
    /// then its issuers.
    #[arg(long, value_name = "CHAIN.pem", requires = "from_key")]
    from_cert: Option<PathBuf>,
    /// The existing CA's private key (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(long, value_name = "KEY.pem", requires = "from_cert")]
    from_key: Option<PathBuf>,
    /// The roots peers trust (PEM); default: the last certificate of
    /// --from-cert.
    #[arg(long, value_name = "ROOTS.pem", requires = "from_cert")]
    from_roots: Option<PathBuf>,
    /// Accept a self-signed root as --from-cert, for development: without
    /// it, `init` refuses to sign SVIDs with a root's key (keep the root
    /// offline; load an intermediate it issued).
    #[arg(long, requires = "from_cert", conflicts_with = "self_signed")]
    development: bool,
    /// Replace a CA already in DIR.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct IntermediateArgs {
    /// The parent CA's directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The directory to save the new intermediate CA in.
    #[arg(long, value_name = "NEWDIR")]
    out: PathBuf,
    /// How long the intermediate is valid (never beyond its parent).
    #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = duration::parse)]
    ttl: Duration,
    /// The intermediate's key type.
    #[arg(long, value_enum, default_value_t = KeyTypeArg::P256)]
    key_type: KeyTypeArg,
    /// Replace a CA already in NEWDIR.
    #[arg(long)]
    force: bool,
}

/// What `issue` and `sign-csr` both ask of the leaf.
#[derive(Debug, Args)]
struct LeafArgs {
    /// The SVID's SPIFFE ID (spiffe://<trust domain>/<path>).
    #[arg(long, value_name = "ID", value_parser = parse_spiffe_id)]
    spiffe_id: SpiffeId,
    /// A DNS name to add beside the SPIFFE ID (repeatable).
    #[arg(long = "dns", value_name = "NAME")]
    dns: Vec<String>,
    /// The SVID's lifetime (never beyond the CA's; the default policy allows
    /// at most 24h).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration::parse)]
    ttl: Duration,
}

impl LeafArgs {
    /// The request these arguments make (key type and subject left default).
    fn request(self) -> SvidRequest {
        self.dns
            .into_iter()
            .fold(SvidRequest::new(self.spiffe_id).ttl(self.ttl), |r, name| {
                r.dns_name(name)
            })
    }
}

/// What `issue` and `renew` both ask: the CA, the leaf, its fresh key and
/// the files to write.
#[derive(Debug, Args)]
struct NewSvidArgs {
    /// The CA directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    #[command(flatten)]
    leaf: LeafArgs,
    /// The key type of the generated key (a fresh key for every SVID).
    #[arg(long, value_enum, default_value_t = KeyTypeArg::P256)]
    key_type: KeyTypeArg,
    /// Where to write: PREFIX.pem (chain) and PREFIX.key (private key).
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct IssueArgs {
    #[command(flatten)]
    svid: NewSvidArgs,
    /// A subject common name (default: an empty subject).
    #[arg(long, value_name = "CN")]
    common_name: Option<String>,
}

#[derive(Debug, Args)]
struct RenewArgs {
    #[command(flatten)]
    svid: NewSvidArgs,
    /// Also keep a copy of the CA's bundle (DIR/bundle.pem) in FILE,
    /// rewritten (atomically, before the SVID) whenever it changes: for a
    /// service that cannot read the CA directory.
    #[arg(long, value_name = "FILE")]
    bundle_out: Option<PathBuf>,
    /// Renew only if due, then exit (for cron).
    #[arg(long)]
    once: bool,
}

#[derive(Debug, Args)]
struct SignCsrArgs {
    /// The CA directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The certificate signing request (PEM or DER).
    #[arg(long, value_name = "REQ.pem")]
    csr: PathBuf,
    #[command(flatten)]
    leaf: LeafArgs,
    /// Where to write the chain (leaf, then intermediates), PEM.
    #[arg(long, value_name = "CERT.pem")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct BundleArgs {
    /// The CA directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// PEM certificates, or the SPIFFE bundle format (JWKS).
    #[arg(long, value_enum, default_value_t = BundleFormat::Pem)]
    format: BundleFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BundleFormat {
    /// PEM CERTIFICATE blocks.
    Pem,
    /// The SPIFFE bundle format (a JWKS document).
    Jwks,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The trust domain that bundles given without `TD=` belong to.
    /// Required unless every --bundle names its trust domain.
    #[arg(long, value_name = "TD", value_parser = parse_trust_domain)]
    trust_domain: Option<TrustDomain>,
    /// A trust bundle file, PEM or SPIFFE JWKS (detected). `TD=FILE` gives
    /// the bundle of another (federated) trust domain. A path that itself
    /// contains `=` can be written `./path`. Repeatable; one bundle per
    /// trust domain.
    #[arg(long = "bundle", value_name = "[TD=]FILE", required = true, value_parser = verify::parse_bundle_arg)]
    bundles: Vec<verify::BundleArg>,
    /// A CRL file, PEM or DER (repeatable).
    #[arg(long = "crl", value_name = "FILE")]
    crls: Vec<PathBuf>,
    /// Verify at this time (RFC 3339, e.g. 2030-01-01T00:00:00Z) instead of
    /// now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    at: Option<SystemTime>,
    /// The chain to verify (PEM, leaf first; or one DER certificate).
    #[arg(value_name = "CHAIN.pem")]
    chain: PathBuf,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    /// The CA directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The serial number, hex (`0x` prefix and `:` separators allowed), as
    /// printed by `issue` and `inspect`.
    #[arg(long, value_name = "HEX")]
    serial: String,
}

#[derive(Debug, Args)]
struct CrlArgs {
    /// The CA directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Where to write the CRL (PEM).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// How long the CRL is valid (its nextUpdate).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = duration::parse)]
    validity: Duration,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The certificate (PEM or DER); of a chain, the first certificate is
    /// shown.
    #[arg(value_name = "CERT.pem")]
    cert: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Key types, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KeyTypeArg {
    /// ECDSA P-256 with SHA-256.
    P256,
    /// ECDSA P-384 with SHA-384.
    P384,
    /// Ed25519.
    Ed25519,
}

impl From<KeyTypeArg> for KeyType {
    fn from(k: KeyTypeArg) -> Self {
        match k {
            KeyTypeArg::P256 => KeyType::P256,
            KeyTypeArg::P384 => KeyType::P384,
            KeyTypeArg::Ed25519 => KeyType::Ed25519,
        }
    }
}

fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    TrustDomain::from_id_or_name(s).map_err(|e| e.to_string())
}

fn parse_spiffe_id(s: &str) -> Result<SpiffeId, String> {
    SpiffeId::new(s).map_err(|e| e.to_string())
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

/// Runs the `mtls-ca` command: parses the process's arguments, runs the
/// command and turns its result into the exit status (0 success, 1 the
/// operation failed or the certificate was rejected, 2 usage error; clap
/// itself exits 2 on usage errors and 0 on `--help`). Errors are printed on
/// stderr as `mtls-ca: <message>`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Init(a) => ca::init(a),
        Command::Intermediate(a) => ca::intermediate(a),
        Command::Issue(a) => ca::issue(a),
        Command::Renew(a) => renew::renew(a),
        Command::SignCsr(a) => ca::sign_csr(a),
        Command::Bundle(a) => ca::bundle(a),
        Command::Verify(a) => verify::run(a),
        Command::Revoke(a) => ca::revoke(a),
        Command::Crl(a) => ca::crl(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Jwt(JwtCommand::Mint(a)) => jwt::mint(a),
        Command::Jwt(JwtCommand::Rotate(a)) => jwt::rotate(a),
        Command::Jwt(JwtCommand::Verify(a)) => jwt::verify(a),
        Command::ServeBundle(a) => federation::serve_bundle(a),
        Command::FetchBundle(a) => federation::fetch_bundle(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
