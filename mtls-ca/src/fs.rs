//! Writing files atomically, private keys with mode 0600.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::CaError;

/// Writes `contents` to `path` atomically: into a new temporary file in the
/// same directory, synced, then renamed over `path`. A reader (or a crash)
/// sees the old file or the new one, never half of one.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    write_with_mode(path, contents, 0o644)
}

/// As [`write_atomic`], with mode 0600 (owner read/write only) from the
/// moment the file exists: for private keys.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    write_with_mode(path, contents, 0o600)
}

fn write_with_mode(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| CaError::Io {
            action,
            path,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
    let result = (|| {
        let mut file = open_new(&tmp, mode).map_err(io("create", &tmp))?;
        file.write_all(contents).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io("rename into place", path))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn open_new(path: &Path, mode: u32) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path, _mode: u32) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (nanos << 16) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::{write_atomic, write_private};
    use crate::error::CaError;

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_atomic_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file.pem");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        write_private(&path, b"three").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert_eq!(dir_entries(dir.path()), ["file.pem"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        write_atomic(&path, b"").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");

        // Failures clean up too: the target is a directory, or its parent is
        // missing.
        let target_dir = dir.path().join("a-directory");
        std::fs::create_dir(&target_dir).unwrap();
        std::fs::write(target_dir.join("inside"), b"x").unwrap();
        assert!(matches!(
            write_atomic(&target_dir, b"x"),
            Err(CaError::Io { .. })
        ));
        assert!(matches!(
            write_atomic(&dir.path().join("missing/file"), b"x"),
            Err(CaError::Io { .. })
        ));
        assert_eq!(dir_entries(dir.path()), ["a-directory", "file.pem"]);
    }

    #[test]
    fn write_atomic_readers_see_the_old_or_the_new_file_whole() {
        const OLD_LEN: usize = 4 << 20;
        const NEW_LEN: usize = (4 << 20) + 12_345;
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("big"));
        let old = vec![b'o'; OLD_LEN];
        let new = vec![b'n'; NEW_LEN];
        write_atomic(&path, &old).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (path, stop, reads) = (path.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) || reads.load(Ordering::Relaxed) == 0 {
                    let data = std::fs::read(&*path).unwrap();
                    let whole = match data.first() {
                        Some(b'o') => data.len() == OLD_LEN && data.iter().all(|b| *b == b'o'),
                        Some(b'n') => data.len() == NEW_LEN && data.iter().all(|b| *b == b'n'),
                        _ => false,
                    };
                    assert!(whole, "torn read: {} bytes", data.len());
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        for i in 0..30 {
            write_atomic(&path, if i % 2 == 0 { &new } else { &old }).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        assert!(reads.load(Ordering::Relaxed) > 0);
        assert_eq!(dir_entries(dir.path()), ["big"]);
    }
}
