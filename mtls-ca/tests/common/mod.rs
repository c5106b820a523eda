//! The `mtls-ca` binary as tests run it: exit status, stdout, stderr.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mtls-ca");

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    /// Asserts exit status `code` and returns self.
    #[track_caller]
    pub(crate) fn status(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "unexpected exit status: {self:#?}");
        self
    }

    #[track_caller]
    pub(crate) fn ok(self) -> Self {
        self.status(0)
    }

    /// Asserts that stderr says `mtls-ca: ...` and contains every `needle`.
    #[track_caller]
    pub(crate) fn says(self, needles: &[&str]) -> Self {
        assert!(
            self.stderr.starts_with("mtls-ca: ") || self.code == Some(2),
            "stderr should start with \"mtls-ca: \": {self:#?}"
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr should contain {needle:?}: {self:#?}"
            );
        }
        self
    }

    /// The value of the `key: value` line of stdout.
    #[track_caller]
    pub(crate) fn field(&self, key: &str) -> String {
        let prefix = format!("{key}: ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key:?} line in stdout: {self:#?}"))
            .to_owned()
    }
}

/// Runs `mtls-ca` with `args`; it must never panic, whatever the input.
#[track_caller]
pub(crate) fn run<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_stdin(args, b"")
}

/// [`run`] with `input` on stdin.
#[track_caller]
pub(crate) fn run_with_stdin<I, S>(args: I, input: &[u8]) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mtls-ca");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A command that never reads stdin may exit before this is written.
    let _ = stdin.write_all(input);
    drop(stdin);
    let output = child.wait_with_output().expect("wait for mtls-ca");
    let out = Out {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
        "mtls-ca panicked: {out:#?}"
    );
    assert!(
        out.code.is_some(),
        "mtls-ca was killed by a signal: {out:#?}"
    );
    out
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

pub(crate) fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}
