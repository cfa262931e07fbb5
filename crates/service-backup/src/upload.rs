//! The upload step: the [`Uploader`] interface each destination implements, the
//! [`MultiUploader`] that runs them in config order (§3.8), and the walk of `source_folder`.
//!
//! Unlike the original, the walk is strict: a missing `source_folder`, an unreadable
//! subdirectory or file, or a dangling symlink is an error naming the path (the Go daemon
//! panicked or silently skipped them).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use tokio_util::sync::CancellationToken;

use crate::lager::Logger;

/// A boxed, sendable future (the shape of [`Uploader::upload`]).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A destination's failure, already worded for the `error` field of the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UploadError(pub String);

/// One destination.
pub trait Uploader: Send + Sync {
    /// The type, e.g. `s3` (used in [`MultiUploader::name`]).
    fn kind(&self) -> &str;
    /// The configured `name` (`""`: unnamed).
    fn name(&self) -> &str;
    /// Uploads the tree under `source` to today's remote location, logging through `logger`
    /// (which already carries `destination_name` when the destination is named). Must return
    /// promptly with an error once `cancel` fires.
    fn upload<'a>(
        &'a self,
        source: &'a Path,
        logger: &'a Logger,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), UploadError>>;
}

/// All destinations, uploaded to one after the other.
pub struct MultiUploader {
    uploaders: Vec<Box<dyn Uploader>>,
}

impl std::fmt::Debug for MultiUploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl MultiUploader {
    /// Wraps the destinations, in config order.
    pub fn new(uploaders: Vec<Box<dyn Uploader>>) -> Self {
        MultiUploader { uploaders }
    }

    /// How many destinations there are.
    pub fn len(&self) -> usize {
        self.uploaders.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.uploaders.is_empty()
    }

    /// `multi-uploader: s3, scp` (the original's `Name()`).
    pub fn name(&self) -> String {
        let kinds: Vec<&str> = self.uploaders.iter().map(|u| u.kind()).collect();
        format!("multi-uploader: {}", kinds.join(", "))
    }

    /// Uploads to every destination in turn; a failure does not stop the others. The
    /// errors of all failed destinations are joined with `"; "`.
    pub async fn upload(
        &self,
        source: &Path,
        logger: &Logger,
        cancel: &CancellationToken,
    ) -> Result<(), UploadError> {
        let mut errors = Vec::new();
        for uploader in &self.uploaders {
            let dest_logger = if uploader.name().is_empty() {
                logger.clone()
            } else {
                logger.with_data(crate::data! {"destination_name" => uploader.name()})
            };
            if let Err(e) = uploader.upload(source, &dest_logger, cancel).await {
                errors.push(e.0);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(UploadError(errors.join("; ")))
        }
    }
}

/// A regular file below the source folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its path relative to the source folder, `/`-separated.
    pub relative: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Why the source folder could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WalkError(pub String);

/// Every file below `root` (recursively, sorted by path, symlinks to files followed), or an
/// error naming the first path that cannot be read. Empty directories yield nothing.
pub fn list_files(root: &Path) -> Result<Vec<LocalFile>, WalkError> {
    let meta = std::fs::metadata(root)
        .map_err(|e| WalkError(format!("source folder {}: {e}", root.display())))?;
    if !meta.is_dir() {
        return Err(WalkError(format!(
            "source folder {} is not a directory",
            root.display()
        )));
    }
    let mut out = Vec::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<LocalFile>) -> Result<(), WalkError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| WalkError(format!("cannot read directory {}: {e}", dir.display())))?;
    let mut entries: Vec<_> = entries
        .collect::<Result<_, _>>()
        .map_err(|e| WalkError(format!("cannot read directory {}: {e}", dir.display())))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| WalkError(format!("cannot stat {}: {e}", path.display())))?;
        if meta.is_dir() {
            walk(&path, &relative, out)?;
            continue;
        }
        let meta = if meta.file_type().is_symlink() {
            let target = std::fs::metadata(&path)
                .map_err(|e| WalkError(format!("cannot follow symlink {}: {e}", path.display())))?;
            if target.is_dir() {
                return Err(WalkError(format!(
                    "symlink to a directory is not supported: {}",
                    path.display()
                )));
            }
            target
        } else {
            meta
        };
        std::fs::File::open(&path)
            .map_err(|e| WalkError(format!("cannot read file {}: {e}", path.display())))?;
        out.push(LocalFile {
            path,
            relative,
            size: meta.len(),
        });
    }
    Ok(())
}

/// The original's `calculateDirSize`: the sizes of all non-directory entries (symlinks count
/// their own size); 0 if anything cannot be read.
pub fn dir_size(root: &Path) -> u64 {
    fn sum(dir: &Path) -> std::io::Result<u64> {
        let mut total = 0;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            total += if meta.is_dir() {
                sum(&entry.path())?
            } else {
                meta.len()
            };
        }
        Ok(total)
    }
    sum(root).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lager::{LogFormat, Sink};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Mutex;

    struct Fake {
        name: String,
        fail: Option<String>,
        calls: std::sync::Arc<Mutex<Vec<String>>>,
    }

    impl Uploader for Fake {
        fn kind(&self) -> &str {
            "fake"
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn upload<'a>(
            &'a self,
            _source: &'a Path,
            logger: &'a Logger,
            _cancel: &'a CancellationToken,
        ) -> BoxFuture<'a, Result<(), UploadError>> {
            Box::pin(async move {
                logger.info("fake upload", crate::data! {});
                self.calls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(self.name.clone());
                match &self.fail {
                    Some(msg) => Err(UploadError(msg.clone())),
                    None => Ok(()),
                }
            })
        }
    }

    #[tokio::test]
    async fn all_uploaders_run_and_errors_are_joined() {
        let calls = std::sync::Arc::new(Mutex::new(Vec::new()));
        let fake = |name: &str, fail: Option<&str>| -> Box<dyn Uploader> {
            Box::new(Fake {
                name: name.to_owned(),
                fail: fail.map(str::to_owned),
                calls: calls.clone(),
            })
        };
        let multi = MultiUploader::new(vec![
            fake("a", Some("first failed")),
            fake("", None),
            fake("c", Some("third failed")),
        ]);
        assert_eq!(multi.name(), "multi-uploader: fake, fake, fake");
        let (sink, log) = Sink::memory(LogFormat::Pretty);
        let logger = Logger::new("ServiceBackup", sink);
        let err = multi
            .upload(Path::new("/x"), &logger, &CancellationToken::new())
            .await
            .expect_err("failures");
        assert_eq!(err.0, "first failed; third failed");
        assert_eq!(
            *calls.lock().unwrap_or_else(|e| e.into_inner()),
            vec!["a", "", "c"]
        );
        let lines = log.lines();
        assert_eq!(lines[0]["data"]["destination_name"], "a");
        assert!(lines[1]["data"].get("destination_name").is_none());
        assert_eq!(lines[2]["data"]["destination_name"], "c");
    }

    #[test]
    fn walk_lists_nested_files_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("d1/d2")).expect("mkdir");
        std::fs::create_dir_all(root.join("empty")).expect("mkdir");
        std::fs::write(root.join("a.txt"), "aa").expect("write");
        std::fs::write(root.join(".hidden"), "h").expect("write");
        std::fs::write(root.join("d1/b.txt"), "bbb").expect("write");
        std::fs::write(root.join("d1/d2/c.txt"), "c").expect("write");
        let files = list_files(root).expect("walk");
        let rel: Vec<&str> = files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(rel, vec![".hidden", "a.txt", "d1/b.txt", "d1/d2/c.txt"]);
        assert_eq!(files[2].size, 3);
        assert_eq!(dir_size(root), 7);
    }

    #[test]
    fn walk_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        let err = list_files(&missing).expect_err("missing");
        assert!(
            err.0.contains("missing") && err.0.contains("source folder"),
            "{err}"
        );
        assert_eq!(dir_size(&missing), 0);

        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(
            list_files(&file)
                .expect_err("file")
                .0
                .contains("not a directory")
        );

        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("dangling")).expect("link");
        let err = list_files(&root).expect_err("dangling");
        assert!(err.0.contains("dangling"), "{err}");
        std::fs::remove_file(root.join("dangling")).expect("rm");

        if !nix::unistd::geteuid().is_root() {
            std::fs::set_permissions(root.join("sub"), std::fs::Permissions::from_mode(0o000))
                .expect("chmod");
            let err = list_files(&root).expect_err("unreadable");
            assert!(err.0.contains("sub"), "{err}");
            std::fs::set_permissions(root.join("sub"), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
    }

    #[test]
    fn empty_dir_has_no_files_and_zero_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("e")).expect("mkdir");
        assert!(list_files(dir.path()).expect("walk").is_empty());
        assert_eq!(dir_size(dir.path()), 0);
    }
}
