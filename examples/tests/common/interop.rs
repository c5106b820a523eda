//! The real peers of the interop tests: SPIRE (`spire-server`,
//! `spire-agent`) and the go-spiffe peer program, built by
//! `examples/interop/build.sh` into a cache outside the clone and found
//! through the variables it prints:
//!
//! ```sh
//! eval "$(examples/interop/build.sh)"
//! cargo test -p examples --test interop_go_spiffe --test interop_spire
//! ```
//!
//! Without them a test prints `skipped: run examples/interop/build.sh` and
//! returns, except under `MTLS_REQUIRE_INTEROP=1` (set by `.ci/run`), where
//! a missing peer fails the test: no interop test passes without having
//! talked to the real peer.

use std::path::PathBuf;

/// The go-spiffe peer program (`spiffe-peer`).
pub(crate) const GO_SPIFFE_PEER: &str = "MTLS_INTEROP_GO_SPIFFE_PEER";
/// SPIRE's `spire-server`.
pub(crate) const SPIRE_SERVER: &str = "MTLS_INTEROP_SPIRE_SERVER";
/// SPIRE's `spire-agent`.
pub(crate) const SPIRE_AGENT: &str = "MTLS_INTEROP_SPIRE_AGENT";

/// Whether absence of a peer is a failure (`MTLS_REQUIRE_INTEROP=1`).
pub(crate) fn required() -> bool {
    std::env::var("MTLS_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// The executables named by `vars`, or `None` (after a `skipped:` line)
/// when one is missing and interop is not required.
///
/// # Panics
///
/// When a peer is missing and `MTLS_REQUIRE_INTEROP=1`, or a variable names
/// a file that is not there (a stale cache is a failure, never a skip).
#[track_caller]
pub(crate) fn peers<const N: usize>(test: &str, vars: [&str; N]) -> Option<[PathBuf; N]> {
    let mut found = Vec::with_capacity(N);
    for var in vars {
        match std::env::var_os(var) {
            Some(path) => {
                let path = PathBuf::from(path);
                assert!(
                    path.is_file(),
                    "{var}={} is not a file: run examples/interop/build.sh again",
                    path.display()
                );
                found.push(path);
            }
            None if required() => panic!(
                "{test}: {var} is not set and MTLS_REQUIRE_INTEROP=1: \
                 run `eval \"$(examples/interop/build.sh)\"` first"
            ),
            None => {
                println!("skipped: run examples/interop/build.sh ({test} needs {var})");
                eprintln!("skipped: run examples/interop/build.sh ({test} needs {var})");
                return None;
            }
        }
    }
    found.try_into().ok()
}
