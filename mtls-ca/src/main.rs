//! `mtls-ca`: a small certificate authority for SPIFFE X.509-SVIDs.
//!
//! It creates or loads a signing CA (`init`, `intermediate`), issues SVIDs
//! (`issue`, `sign-csr`), publishes the trust bundle (`bundle`), revokes
//! certificates (`revoke`, `crl`), and checks SVIDs as a peer would
//! (`verify`, `inspect`). Run `mtls-ca --help` for the commands and
//! `mtls-ca <command> --help` for their options.
//!
//! Exit status: 0 on success, 1 when the operation failed or a certificate
//! was rejected, 2 on a usage error. Errors are printed on stderr as
//! `mtls-ca: <message>`.

fn main() -> std::process::ExitCode {
    mtls_ca::cli::main()
}
