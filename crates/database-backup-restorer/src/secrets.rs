//! A private per-run temporary directory for TLS material and the filtered
//! `pg_restore` list.
//!
//! The directory is created `0700` under `$TMPDIR` (or `/tmp`), every file in it `0600`
//! (libpq refuses a client key readable by others), and the whole directory is removed when
//! the [`PrivateDir`] is dropped, on success and on failure alike (the original leaks it on
//! failure).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The run's private directory.
#[derive(Debug)]
pub struct PrivateDir {
    dir: tempfile::TempDir,
    counter: std::cell::Cell<u32>,
}

impl PrivateDir {
    /// Creates the directory (mode 0700).
    pub fn new() -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("database-backup-restorer-")
            .tempdir()?;
        // tempfile already uses 0700; make it explicit.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        Ok(PrivateDir {
            dir,
            counter: std::cell::Cell::new(0),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to a new `0600` file named after `name` and returns its path.
    pub fn write(&self, name: &str, contents: &[u8]) -> io::Result<PathBuf> {
        let n = self.counter.get();
        self.counter.set(n + 1);
        let path = self.dir.path().join(format!("{n}-{name}"));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(contents)?;
        f.sync_all()?;
        Ok(path)
    }
}

/// TLS material of a `tls` config block, written into a [`PrivateDir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA bundle file.
    pub ca: PathBuf,
    /// Client certificate file (mutual TLS).
    pub cert: Option<PathBuf>,
    /// Client key file (mutual TLS).
    pub key: Option<PathBuf>,
    /// Verify the chain only, not the host name.
    pub skip_host_verify: bool,
}

impl TlsFiles {
    /// Writes the PEM texts of `tls` into `dir`.
    pub fn write(dir: &PrivateDir, tls: &crate::config::TlsConfig) -> io::Result<Self> {
        let opt = |name: &str, pem: &str| -> io::Result<Option<PathBuf>> {
            if pem.is_empty() {
                Ok(None)
            } else {
                dir.write(name, pem.as_bytes()).map(Some)
            }
        };
        Ok(TlsFiles {
            ca: dir.write("ca.pem", tls.cert.ca.as_bytes())?,
            cert: opt("client-cert.pem", &tls.cert.certificate)?,
            key: opt("client-key.pem", &tls.cert.private_key)?,
            skip_host_verify: tls.skip_host_verify,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_and_removed() {
        let d = PrivateDir::new().expect("tmp");
        let root = d.path().to_path_buf();
        let meta = std::fs::metadata(&root).expect("dir");
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        let f = d.write("key.pem", b"secret").expect("write");
        assert_eq!(
            std::fs::metadata(&f).expect("file").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read(&f).expect("read"), b"secret");
        let g = d.write("key.pem", b"other").expect("write");
        assert_ne!(f, g);
        drop(d);
        assert!(!root.exists());
    }
}
