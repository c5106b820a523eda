//! Reading input files, writing output, with errors that name the file.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::Failure;

/// Largest input file read, in bytes (the largest bundle or CRL accepted).
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a whole input file, refusing anything larger than 16 MiB.
pub(crate) fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    let fail =
        |e: std::io::Error| Failure::failed(format!("cannot read {what} {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(fail)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Failure::failed(format!(
            "{what} {} is larger than the {MAX_INPUT_BYTES} bytes allowed",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Reads certificates from a file: PEM `CERTIFICATE` blocks (other blocks
/// are skipped), or a single DER certificate. At least one is required.
pub(crate) fn read_certificates(
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let bytes = read(path, what)?;
    if bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(bytes)]);
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::failed(format!("{what} {}: malformed PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Failure::failed(format!(
            "{what} {}: no CERTIFICATE block found (expected PEM, or one DER certificate)",
            path.display()
        )));
    }
    Ok(certs)
}

/// `prefix` with `suffix` appended to its last component (`web` + `.pem`).
pub(crate) fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `text` to stdout; a closed stdout is an error, never a panic.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::failed(format!("cannot write to stdout: {e}")))
}

/// Writes a line to stderr (notes and warnings; failures to write them are
/// ignored, as there is nowhere else to say so).
pub(crate) fn note(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "mtls-ca: {text}");
}
