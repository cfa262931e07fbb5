//! The state directory and the cross-process run lock (ours; the original has neither).
//!
//! `exit_if_in_progress` has to hold across the daemon **and** a concurrent `manual-backup`,
//! so the gate is an advisory `flock` on a lock file, tried without blocking and held for the
//! whole run. `flock` locks belong to the open file description, so two runs inside one
//! process exclude each other exactly like two processes do, and a crashed holder releases its
//! lock automatically.
//!
//! Layout of the state directory (config key `state_dir`; default
//! `/var/vcap/data/service-backup` when `/var/vcap/data` exists, else
//! `$TMPDIR/service-backup-<uid>`):
//!
//! - `in-progress-<hash>.lock`: one per `source_folder` (hash = first 16 hex digits of the
//!   SHA-256 of the canonical folder path), so configs with different folders never block each
//!   other. It contains the holder's pid.
//! - `scp_known_hosts`: host keys learned by SCP destinations without a `fingerprint`.
//!
//! Under BOSH the daemon runs as `vcap` while `manual-backup` runs as root: when running as
//! root, whatever we create here is handed to the owner of `source_folder` (which the job's
//! ctl script chowns to the backup user), so both can keep using it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

/// A state-directory problem, naming the path involved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory could not be created or used.
    #[error("state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The lock file could not be opened or locked.
    #[error("lock file {path}: {reason}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// The default state directory for this machine and user.
pub fn default_state_dir() -> PathBuf {
    let vcap = Path::new("/var/vcap/data");
    if vcap.is_dir() {
        return vcap.join("service-backup");
    }
    std::env::temp_dir().join(format!(
        "service-backup-{}",
        nix::unistd::geteuid().as_raw()
    ))
}

/// The state directory, created on [`StateDir::prepare`].
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
    /// Owner (uid, gid) to hand created files to when running as root.
    owner: Option<(u32, u32)>,
}

/// A held run lock; released on drop.
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl StateDir {
    /// Creates (if needed) the configured or default state directory. `source_folder` decides
    /// the owner of created files when running as root (see the module docs).
    pub fn prepare(configured: Option<&Path>, source_folder: &str) -> Result<Self, StateError> {
        let path = configured.map_or_else(default_state_dir, Path::to_path_buf);
        let owner = if nix::unistd::geteuid().is_root() && !source_folder.is_empty() {
            std::fs::metadata(source_folder)
                .ok()
                .filter(|m| m.uid() != 0)
                .map(|m| (m.uid(), m.gid()))
        } else {
            None
        };
        let dir = StateDir { path, owner };
        if !dir.path.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&dir.path)
                .map_err(|source| StateError::Dir {
                    path: dir.path.clone(),
                    source,
                })?;
            dir.adopt(&dir.path);
        }
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where SCP destinations record host keys they trusted on first use.
    pub fn scp_known_hosts(&self) -> PathBuf {
        self.path.join("scp_known_hosts")
    }

    /// Hands a file we created to the source folder's owner (only when running as root).
    pub fn adopt(&self, path: &Path) {
        if let Some((uid, gid)) = self.owner {
            let _ = nix::unistd::chown(
                path,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            );
        }
    }

    /// The lock file for runs that back up `source_folder`.
    pub fn lock_path(&self, source_folder: &str) -> PathBuf {
        let canonical = std::fs::canonicalize(source_folder)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| crate::remote_path::clean(source_folder));
        let digest = Sha256::digest(canonical.as_bytes());
        let hash = hex::encode(&digest[..8]);
        self.path.join(format!("in-progress-{hash}.lock"))
    }

    /// Tries to take the run lock for `source_folder` without waiting: `Ok(None)` means
    /// another run (in this or another process) holds it.
    pub fn try_lock(&self, source_folder: &str) -> Result<Option<RunLock>, StateError> {
        let path = self.lock_path(source_folder);
        let lock_err = |reason: String| StateError::Lock {
            path: path.clone(),
            reason,
        };
        let existed = path.exists();
        let (file, writable) = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
        {
            Ok(f) => (f, true),
            // Created by another user (root vs vcap): a read-only descriptor can still flock.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => (
                File::open(&path).map_err(|e| lock_err(e.to_string()))?,
                false,
            ),
            Err(e) => return Err(lock_err(e.to_string())),
        };
        if !existed {
            self.adopt(&path);
        }
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                if writable {
                    let _ = lock.set_len(0);
                    let _ = writeln!(lock, "{}", std::process::id());
                }
                Ok(Some(RunLock { _lock: lock, path }))
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(lock_err(errno.desc().to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::prepare(Some(&dir.path().join("state")), "").expect("prepare");
        let first = state.try_lock("/some/folder").expect("lock").expect("free");
        assert!(first.path().starts_with(state.path()));
        assert!(state.try_lock("/some/folder").expect("lock").is_none());
        assert!(
            state.try_lock("/some//folder/").expect("lock").is_none(),
            "same folder after cleaning"
        );
        let other = state.try_lock("/other/folder").expect("lock");
        assert!(other.is_some(), "different folders do not block each other");
        drop(first);
        assert!(state.try_lock("/some/folder").expect("lock").is_some());
    }

    #[test]
    fn lock_names_differ_per_folder_and_are_stable() {
        let state = StateDir {
            path: PathBuf::from("/state"),
            owner: None,
        };
        let a = state.lock_path("/nonexistent/a");
        assert_eq!(a, state.lock_path("/nonexistent/a"));
        assert_ne!(a, state.lock_path("/nonexistent/b"));
        let name = a.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name.starts_with("in-progress-") && name.ends_with(".lock"),
            "{name}"
        );
        assert_eq!(
            state.scp_known_hosts(),
            PathBuf::from("/state/scp_known_hosts")
        );
    }

    #[test]
    fn default_dir_is_per_user_outside_bosh() {
        let d = default_state_dir();
        if !Path::new("/var/vcap/data").is_dir() {
            let name = d.file_name().and_then(|n| n.to_str()).expect("name");
            assert_eq!(
                name,
                format!("service-backup-{}", nix::unistd::geteuid().as_raw())
            );
        }
    }

    #[test]
    fn uncreatable_dir_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        let err = StateDir::prepare(Some(&file.join("sub")), "").expect_err("not a dir");
        assert!(err.to_string().contains("state directory"), "{err}");
    }
}
