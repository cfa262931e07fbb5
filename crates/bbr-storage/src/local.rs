//! The local side of an upload: walking a source folder and opening its files safely.
//!
//! Rules (shared by every destination, documented in README.md):
//!
//! - Entries are classified with `lstat` before anything is opened. Directories are walked
//!   (empty ones are listed too), regular files are uploaded, and **special files** (FIFOs,
//!   sockets, character and block devices) are [skipped](Skipped), never opened: opening a FIFO
//!   for reading blocks until a writer appears.
//! - A **symbolic link** is followed only when its fully resolved target lies inside the
//!   (resolved) source folder: a link to a file is uploaded under the link's name with the
//!   target's content, a link to a directory is walked under the link's name. A link that
//!   resolves outside the source folder (say to `/etc/shadow`), a dangling link, and a link
//!   that loops back to one of its own parent directories are skipped, never followed.
//! - Files are opened with `O_NONBLOCK | O_NOCTTY` and checked on the open descriptor
//!   (`fstat`): it must still be a regular file, and the path, resolved again, must still lie
//!   inside the source folder and lead to that very inode. So a file replaced by a FIFO or by
//!   a link to elsewhere between the walk and the upload is skipped, never read or waited on.
//! - Names are kept as raw bytes ([`OsString`]); callers decide how to spell them remotely.
//! - The size of a file is taken when it is opened ([`OpenedFile::size`]); uploads send exactly
//!   that many bytes, so a file that grows meanwhile is uploaded as the consistent prefix that
//!   existed when it was opened, and one that shrinks fails naming it.
//!
//! An unreadable directory or file (permissions, I/O) is an error naming it, as before: only
//! the cases above are skipped.

// Unsafe code is denied workspace-wide; this module calls libc directly. Each block
// carries its own SAFETY comment.
#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::StorageError;

/// Why an entry of the source folder is not uploaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// A FIFO, socket or device (the kind is named).
    #[error("it is a {0}, not a regular file")]
    Special(&'static str),
    /// A symbolic link whose resolved target is outside the source folder.
    #[error("it is a symbolic link to {}, outside the source folder", .0.display())]
    LinkOutside(PathBuf),
    /// A symbolic link that cannot be resolved (dangling, or a link loop).
    #[error("it is a symbolic link that cannot be resolved ({0})")]
    LinkUnresolvable(String),
    /// A symbolic link to one of its own parent directories.
    #[error("it is a symbolic link back to one of its parent directories")]
    LinkLoop,
}

/// An entry that is left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry's path (below the source folder as given).
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Its path (below the source folder as given; a link's own path for a followed link).
    pub path: PathBuf,
    /// Its path relative to the source folder, `/`-separated, as raw bytes.
    pub relative: OsString,
    /// Its size when the folder was walked.
    pub size: u64,
}

/// A walked source folder.
#[derive(Debug, Clone, Default)]
pub struct LocalTree {
    root: PathBuf,
    resolved_root: PathBuf,
    /// Every directory below the root (parents first), relative and `/`-separated.
    pub dirs: Vec<OsString>,
    /// Every file to upload, sorted by relative path.
    pub files: Vec<LocalFile>,
    /// What is left out (special files, links that leave the folder or cannot be resolved).
    pub skipped: Vec<Skipped>,
}

/// A file opened for upload by [`LocalTree::open`] or [`open_regular`].
#[derive(Debug)]
pub struct OpenedFile {
    /// The open descriptor (`O_NONBLOCK`, which changes nothing for a regular file).
    pub file: File,
    /// The size seen on the descriptor when it was opened: exactly this much is uploaded.
    pub size: u64,
    /// The permission bits.
    pub mode: u32,
    /// The path it was opened by (for messages).
    pub path: PathBuf,
}

/// What a non-regular file type is called in messages.
fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

fn join_relative(prefix: &OsStr, name: &OsStr) -> OsString {
    if prefix.is_empty() {
        return name.to_owned();
    }
    let mut out = prefix.to_owned();
    out.push("/");
    out.push(name);
    out
}

/// Opens `path` for reading without ever blocking on a FIFO or acquiring a terminal.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

fn local_read(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::LocalRead {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens `path` as a regular file (any path; no containment check): `O_NONBLOCK`, then
/// `fstat`. Anything else is [`StorageError::NotUploadable`] naming it, found without
/// blocking.
pub fn open_regular(path: &Path) -> Result<OpenedFile, StorageError> {
    let file = open_nonblocking(path).map_err(|e| local_read(path, e))?;
    let meta = file.metadata().map_err(|e| local_read(path, e))?;
    if !meta.is_file() {
        return Err(StorageError::NotUploadable(Skipped {
            path: path.to_path_buf(),
            reason: SkipReason::Special(kind_of(&meta)),
        }));
    }
    Ok(OpenedFile {
        file,
        size: meta.len(),
        mode: meta.mode(),
        path: path.to_path_buf(),
    })
}

/// Walks `root` (see the module rules). Errors name the directory or file that cannot be
/// read; a missing root is `source folder <path>: ...`.
pub fn walk(root: &Path) -> Result<LocalTree, StorageError> {
    let folder_error =
        |e: std::io::Error| StorageError::Other(format!("source folder {}: {e}", root.display()));
    let meta = std::fs::metadata(root).map_err(folder_error)?;
    if !meta.is_dir() {
        return Err(StorageError::Other(format!(
            "source folder {} is not a directory",
            root.display()
        )));
    }
    let resolved_root = std::fs::canonicalize(root).map_err(folder_error)?;
    let mut tree = LocalTree {
        root: root.to_path_buf(),
        resolved_root,
        ..LocalTree::default()
    };
    let mut ancestors = vec![(meta.dev(), meta.ino())];
    walk_dir(&mut tree, root, OsStr::new(""), &mut ancestors)?;
    Ok(tree)
}

fn walk_dir(
    tree: &mut LocalTree,
    dir: &Path,
    prefix: &OsStr,
    ancestors: &mut Vec<(u64, u64)>,
) -> Result<(), StorageError> {
    let unreadable = |e: std::io::Error| {
        StorageError::Other(format!("cannot read directory {}: {e}", dir.display()))
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        names.push(entry.map_err(unreadable)?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let path = dir.join(&name);
        let relative = join_relative(prefix, &name);
        let lmeta = std::fs::symlink_metadata(&path)
            .map_err(|e| StorageError::Other(format!("cannot stat {}: {e}", path.display())))?;
        let meta = if lmeta.file_type().is_symlink() {
            let skip = |tree: &mut LocalTree, reason| {
                tree.skipped.push(Skipped {
                    path: path.clone(),
                    reason,
                })
            };
            let target = match std::fs::canonicalize(&path) {
                Ok(t) => t,
                Err(e) => {
                    skip(tree, SkipReason::LinkUnresolvable(e.to_string()));
                    continue;
                }
            };
            if !target.starts_with(&tree.resolved_root) {
                skip(tree, SkipReason::LinkOutside(target));
                continue;
            }
            match std::fs::metadata(&target) {
                Ok(m) => m,
                Err(e) => {
                    skip(tree, SkipReason::LinkUnresolvable(e.to_string()));
                    continue;
                }
            }
        } else {
            lmeta
        };
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if ancestors.contains(&id) {
                tree.skipped.push(Skipped {
                    path,
                    reason: SkipReason::LinkLoop,
                });
                continue;
            }
            tree.dirs.push(relative.clone());
            ancestors.push(id);
            walk_dir(tree, &path, &relative, ancestors)?;
            ancestors.pop();
        } else if meta.is_file() {
            let file = LocalFile {
                path,
                relative,
                size: meta.len(),
            };
            // Found before anything is sent: a file we may not read fails the run here.
            match tree.open(&file) {
                Ok(_) => tree.files.push(file),
                Err(StorageError::NotUploadable(skipped)) => tree.skipped.push(skipped),
                Err(e) => return Err(e),
            }
        } else {
            tree.skipped.push(Skipped {
                path,
                reason: SkipReason::Special(kind_of(&meta)),
            });
        }
    }
    Ok(())
}

impl LocalTree {
    /// The source folder as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens `file` for upload: `O_NONBLOCK`, then on the descriptor: still a regular file,
    /// and the path (resolved now) still inside the source folder and leading to this inode.
    /// A violation is [`StorageError::NotUploadable`] (skip it); an I/O error is
    /// [`StorageError::LocalRead`].
    pub fn open(&self, file: &LocalFile) -> Result<OpenedFile, StorageError> {
        let path = &file.path;
        let opened = open_regular(path)?;
        let resolved = std::fs::canonicalize(path).map_err(|e| local_read(path, e))?;
        if !resolved.starts_with(&self.resolved_root) {
            return Err(StorageError::NotUploadable(Skipped {
                path: path.clone(),
                reason: SkipReason::LinkOutside(resolved),
            }));
        }
        let now = std::fs::metadata(&resolved).map_err(|e| local_read(path, e))?;
        let fd = opened.file.metadata().map_err(|e| local_read(path, e))?;
        if (now.dev(), now.ino()) != (fd.dev(), fd.ino()) {
            return Err(local_read(
                path,
                std::io::Error::other("the file was replaced while it was being opened"),
            ));
        }
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
        assert_eq!(rc, 0, "mkfifo {}", path.display());
    }

    fn rels(tree: &LocalTree) -> Vec<String> {
        tree.files
            .iter()
            .map(|f| f.relative.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn special_files_and_escaping_links_are_skipped_without_opening_them() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.txt"), "aa").unwrap();
        std::fs::write(root.join("sub/b.txt"), "bbb").unwrap();
        mkfifo(&root.join("pipe"));
        let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        symlink(outside.path().join("secret"), root.join("escape")).unwrap();
        symlink("../..", root.join("sub/up")).unwrap();
        symlink("nowhere", root.join("dangling")).unwrap();
        symlink("a.txt", root.join("inside-link")).unwrap();
        symlink("sub", root.join("linked-dir")).unwrap();
        symlink("..", root.join("sub/loop")).unwrap();

        // A blocking open of the FIFO would hang this test forever.
        let tree = walk(root).unwrap();
        assert_eq!(
            rels(&tree),
            vec!["a.txt", "inside-link", "linked-dir/b.txt", "sub/b.txt"]
        );
        assert_eq!(tree.dirs, vec![OsString::from("linked-dir"), "sub".into()]);
        let skipped: Vec<(String, String)> = tree
            .skipped
            .iter()
            .map(|s| {
                (
                    s.path.strip_prefix(root).unwrap().display().to_string(),
                    s.reason.to_string(),
                )
            })
            .collect();
        let find = |name: &str| {
            skipped
                .iter()
                .find(|(p, _)| p == name)
                .unwrap_or_else(|| panic!("{name} not skipped: {skipped:?}"))
                .1
                .clone()
        };
        assert!(find("pipe").contains("FIFO"), "{skipped:?}");
        assert!(find("sock").contains("socket"), "{skipped:?}");
        assert!(find("escape").contains("outside"), "{skipped:?}");
        assert!(find("sub/up").contains("outside"), "{skipped:?}");
        assert!(
            find("dangling").contains("cannot be resolved"),
            "{skipped:?}"
        );
        assert!(find("sub/loop").contains("parent"), "{skipped:?}");
        assert!(find("linked-dir/loop").contains("parent"), "{skipped:?}");
    }

    #[test]
    fn a_file_replaced_after_the_walk_is_not_opened_blocking_or_followed_out() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("f"), "data").unwrap();
        std::fs::write(root.join("g"), "data").unwrap();
        let tree = walk(root).unwrap();
        assert_eq!(tree.files.len(), 2);

        std::fs::remove_file(root.join("f")).unwrap();
        mkfifo(&root.join("f"));
        match tree.open(&tree.files[0]) {
            Err(StorageError::NotUploadable(s)) => {
                assert_eq!(s.path, root.join("f"));
                assert_eq!(s.reason, SkipReason::Special("FIFO"));
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(root.join("g")).unwrap();
        symlink(outside.path().join("secret"), root.join("g")).unwrap();
        match tree.open(&tree.files[1]) {
            Err(StorageError::NotUploadable(s)) => {
                assert!(matches!(s.reason, SkipReason::LinkOutside(_)), "{s}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_utf8_and_newline_names_are_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let odd = OsStr::from_bytes(b"caf\xff\nname");
        std::fs::create_dir(dir.path().join(odd)).unwrap();
        std::fs::write(dir.path().join(odd).join(odd), "x").unwrap();
        let tree = walk(dir.path()).unwrap();
        assert_eq!(
            tree.files[0].relative.as_bytes(),
            b"caf\xff\nname/caf\xff\nname"
        );
        assert_eq!(tree.dirs[0].as_bytes(), b"caf\xff\nname");
    }

    #[test]
    fn open_regular_refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        mkfifo(&fifo);
        let err = open_regular(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        assert!(err.to_string().contains(&*fifo.to_string_lossy()), "{err}");
    }
}
