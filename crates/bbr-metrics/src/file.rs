//! The file itself: read-modify-write under an advisory lock of the directory, replaced
//! atomically (temporary file in the same directory, mode 0644, fsync, rename, fsync of the
//! directory). Every failure names the metrics file.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::MetricsError;

/// The file mode of a written metrics file (node_exporter often runs as another user).
pub(crate) const MODE: u32 = 0o644;

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> MetricsError + '_ {
    move |source| MetricsError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> MetricsError + '_ {
    move |source| MetricsError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `.<name>.tmp-<pid>` beside `path`: hidden, and not `*.prom`, so the collector never
/// reads a half-written file.
pub(crate) fn temp_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy();
    Some(parent(path).join(format!(".{name}.tmp-{}", std::process::id())))
}

/// Locks the directory, hands `change` the current contents (`None`: no file yet) and
/// replaces the file with the text it returns.
pub(crate) fn update<R>(
    path: &Path,
    change: impl FnOnce(Option<&[u8]>) -> (String, R),
) -> Result<R, MetricsError> {
    let dir = parent(path);
    let dir_file = File::open(dir).map_err(read_err(path))?;
    let _lock = Flock::lock(dir_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| read_err(path)(std::io::Error::from(errno)))?;
    let existing = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(read_err(path)(e)),
    };
    let (text, result) = change(existing.as_deref());
    let tmp = temp_path(path).ok_or_else(|| {
        write_err(path)(std::io::Error::new(
            ErrorKind::InvalidInput,
            "the path has no file name",
        ))
    })?;
    let written = write_replace(path, &tmp, text.as_bytes());
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(write_err(path))?;
    Ok(result)
}

fn write_replace(path: &Path, tmp: &Path, body: &[u8]) -> std::io::Result<()> {
    match std::fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE)
        .open(tmp)?;
    // The umask may have narrowed the mode.
    file.set_permissions(std::fs::Permissions::from_mode(MODE))?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    File::open(parent(path))?.sync_all()
}
