//! The code the example programs of the mtls crates share (`publish =
//! false`): each program in `src/bin/` is one file that uses this library.
//!
//! - [`cli`]: the command-line flags of the network examples
//!   (`axum-server`, `axum-client`, `tonic-server`, `tonic-client`).
//! - [`demo`]: a `GET /whoami` server and client for the self-checking,
//!   in-process demos.
//! - [`federate`]: the `--federate` flag of `axum-server` (a partner trust
//!   domain followed through its SPIFFE bundle endpoint).
//! - [`handlers`]: the `GET /whoami` and `GET /admin` handlers of the axum
//!   servers.
//! - [`identity_proto`]: the gRPC code of `proto/identity.proto`.
//! - [`BoxError`] and [`error_chain`]: how every example reports an error.
//!
//! ```
//! use examples::{error_chain, BoxError};
//!
//! let cause = std::io::Error::other("connection reset");
//! let error: BoxError = Box::new(cause);
//! assert_eq!(error_chain(&*error), "connection reset");
//! ```

#![forbid(unsafe_code)]

use std::error::Error;
use std::fmt::Write as _;

pub mod cli;
pub mod demo;
pub mod federate;
pub mod handlers;
pub mod identity_proto;
pub mod identity_service;

/// The repository's README: its Rust code blocks are compiled as doctests
/// (`cargo test -p examples --doc`), so the first thing a user copies builds.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct RootReadme;

/// Errors of the examples: any error, with a message that says what it is
/// about (which flag and file, which call).
pub type BoxError = Box<dyn Error + Send + Sync>;

/// An error and its sources on one line, without repeating a source whose
/// text the message already holds.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !part.is_empty() && !text.contains(&part) {
            let _ = write!(text, ": {part}");
        }
        source = e.source();
    }
    text
}
