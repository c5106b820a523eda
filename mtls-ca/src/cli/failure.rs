//! Why a command failed, and the exit status that says so.

use std::io::Write;
use std::process::ExitCode;

use crate::CaError;

/// Exit status when the operation failed or a certificate was rejected.
const FAILED: u8 = 1;
/// Exit status of a usage error.
const USAGE: u8 = 2;

/// A failed command: the message printed as `mtls-ca: <message>` and the
/// exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The operation failed, or a certificate was rejected (exit 1).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            code: FAILED,
            message: message.into(),
        }
    }

    /// The command line is wrong (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: USAGE,
            message: message.into(),
        }
    }

    /// Prefixes the message with context (`reading x: ...`).
    pub(crate) fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The message, without the `mtls-ca: ` prefix.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Prints the message on stderr and returns the exit status.
    pub(crate) fn report(self) -> ExitCode {
        let mut stderr = std::io::stderr().lock();
        // Nothing sensible is left to do if stderr itself is gone.
        let _ = writeln!(stderr, "mtls-ca: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl From<CaError> for Failure {
    fn from(e: CaError) -> Self {
        // Values given on the command line that the library judges invalid
        // are usage errors; everything else is a failed operation.
        let code = match e {
            CaError::InvalidSerial(_)
            | CaError::InvalidDnsName(_)
            | CaError::UnknownKeyType(_)
            | CaError::InvalidAudience => USAGE,
            _ => FAILED,
        };
        let message = mtls_core::ErrorChain(&e).to_string();
        // The library prefixes its messages with "ca: "; after "mtls-ca: "
        // that is noise.
        let message = match message.strip_prefix("ca: ") {
            Some(rest) => rest.to_owned(),
            None => message,
        };
        Self { code, message }
    }
}
