//! The upload step: the [`Uploader`] interface each destination implements, the [`MultiUploader`]
//! that runs them in config order (docs/service-backup.md#a-run), and the walk of `source_folder`.
//!
//! Unlike the original, the walk is strict: a missing `source_folder` or an unreadable
//! subdirectory or file is an error naming the path (the Go daemon panicked or silently
//! skipped them). The walk follows `bbr_storage::local`'s rules: special files (FIFOs,
//! sockets, devices) and symbolic links that leave the source folder (or dangle, or loop) are
//! skipped with a `WARNING: skipping file` line naming them, never opened or followed, and the
//! run goes on with the rest.

use std::future::Future;
use std::path::Path;
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
    /// (which already carries `destination_name` when the destination is named), and returns
    /// the file bytes stored. Must return promptly with an error once `cancel` fires.
    fn upload<'a>(
        &'a self,
        source: &'a Path,
        logger: &'a Logger,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<u64, UploadError>>;
}

/// What one destination did in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationReport {
    /// The `destination` label of its metrics: its `name`, else its type; a label already
    /// taken by an earlier destination gets `-<position>` (1-based, config order) appended.
    pub label: String,
    /// File bytes it stored (0 when its upload failed).
    pub bytes: u64,
    /// Why its upload failed.
    pub error: Option<UploadError>,
}

/// What [`MultiUploader::upload`] did, destination by destination (config order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// One entry per destination.
    pub destinations: Vec<DestinationReport>,
}

impl UploadReport {
    /// `Ok` when every destination succeeded, else their errors joined with `"; "`.
    pub fn result(&self) -> Result<(), UploadError> {
        let errors: Vec<&str> = self
            .destinations
            .iter()
            .filter_map(|d| d.error.as_ref().map(|e| e.0.as_str()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(UploadError(errors.join("; ")))
        }
    }
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

    /// The `destination` labels, in config order (see [`DestinationReport::label`]).
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = Vec::with_capacity(self.uploaders.len());
        for (i, uploader) in self.uploaders.iter().enumerate() {
            let base = if uploader.name().is_empty() {
                uploader.kind()
            } else {
                uploader.name()
            };
            let label = if labels.iter().any(|l| l == base) {
                format!("{base}-{}", i + 1)
            } else {
                base.to_owned()
            };
            labels.push(label);
        }
        labels
    }

    /// Uploads to every destination in turn; a failure does not stop the others
    /// ([`UploadReport::result`] joins the errors of all failed destinations with `"; "`).
    pub async fn upload(
        &self,
        source: &Path,
        logger: &Logger,
        cancel: &CancellationToken,
    ) -> UploadReport {
        let mut report = UploadReport::default();
        for (uploader, label) in self.uploaders.iter().zip(self.labels()) {
            let dest_logger = if uploader.name().is_empty() {
                logger.clone()
            } else {
                logger.with_data(crate::data! {"destination_name" => uploader.name()})
            };
            let (bytes, error) = match uploader.upload(source, &dest_logger, cancel).await {
                Ok(bytes) => (bytes, None),
                Err(e) => (0, Some(e)),
            };
            report.destinations.push(DestinationReport {
                label,
                bytes,
                error,
            });
        }
        report
    }
}

pub use bbr_storage::local::{LocalFile, LocalTree, Skipped};

/// Why the source folder could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WalkError(pub String);

/// The `WARNING: skipping file` line for an entry left out by rule: `path` (shown lossily if
/// it is not UTF-8) and `reason`.
pub fn log_skipped(logger: &Logger, skipped: &Skipped) {
    logger.info(
        "WARNING: skipping file",
        crate::data! {
            "path" => skipped.path.to_string_lossy(),
            "reason" => skipped.reason.to_string(),
        },
    );
}

/// Walks `root` (recursively, sorted by name; see the module docs for what is skipped),
/// logging one `WARNING: skipping file` line per entry left out, or an error naming the first
/// path that cannot be read. Empty directories yield no file.
pub fn walk_source(root: &Path, logger: &Logger) -> Result<LocalTree, WalkError> {
    let tree = bbr_storage::local::walk(root).map_err(|e| WalkError(e.to_string()))?;
    for skipped in &tree.skipped {
        log_skipped(logger, skipped);
    }
    Ok(tree)
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
        ) -> BoxFuture<'a, Result<u64, UploadError>> {
            Box::pin(async move {
                logger.info("fake upload", crate::data! {});
                self.calls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(self.name.clone());
                match &self.fail {
                    Some(msg) => Err(UploadError(msg.clone())),
                    None => Ok(self.name.len() as u64 + 100),
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
        let report = multi
            .upload(Path::new("/x"), &logger, &CancellationToken::new())
            .await;
        let err = report.result().expect_err("failures");
        assert_eq!(err.0, "first failed; third failed");
        let per_destination: Vec<(&str, u64, bool)> = report
            .destinations
            .iter()
            .map(|d| (d.label.as_str(), d.bytes, d.error.is_some()))
            .collect();
        assert_eq!(
            per_destination,
            vec![("a", 0, true), ("fake", 100, false), ("c", 0, true)]
        );
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
    fn destination_labels_are_names_or_types_and_unique() {
        let fake = |name: &str| -> Box<dyn Uploader> {
            Box::new(Fake {
                name: name.to_owned(),
                fail: None,
                calls: Default::default(),
            })
        };
        let multi = MultiUploader::new(vec![fake(""), fake("primary"), fake(""), fake("primary")]);
        assert_eq!(
            multi.labels(),
            vec!["fake", "primary", "fake-3", "primary-4"]
        );
    }

    fn memory_logger() -> (Logger, crate::lager::MemoryLog) {
        let (sink, log) = Sink::memory(LogFormat::Pretty);
        (Logger::new("ServiceBackup", sink), log)
    }

    #[test]
    fn a_fifo_is_skipped_with_a_warning_instead_of_hanging_the_walk() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "a").expect("write");
        let fifo = dir.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        let (logger, log) = memory_logger();
        // The old walk opened every file to check it could be read: it blocked here forever.
        let tree = walk_source(dir.path(), &logger).expect("walk");
        assert_eq!(tree.files.len(), 1);
        let lines = log.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "ServiceBackup.WARNING: skipping file");
        assert_eq!(lines[0]["data"]["path"], fifo.display().to_string());
        assert!(
            lines[0]["data"]["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("FIFO"),
            "{lines:?}"
        );
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
        let (logger, log) = memory_logger();
        let files = walk_source(root, &logger).expect("walk").files;
        let rel: Vec<&str> = files
            .iter()
            .map(|f| f.relative.to_str().expect("utf-8"))
            .collect();
        assert_eq!(rel, vec![".hidden", "a.txt", "d1/b.txt", "d1/d2/c.txt"]);
        assert_eq!(files[2].size, 3);
        assert!(log.lines().is_empty());
        assert_eq!(dir_size(root), 7);
    }

    #[test]
    fn walk_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (logger, log) = memory_logger();
        let missing = dir.path().join("missing");
        let err = walk_source(&missing, &logger).expect_err("missing");
        assert!(
            err.0.contains("missing") && err.0.contains("source folder"),
            "{err}"
        );
        assert_eq!(dir_size(&missing), 0);

        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(
            walk_source(&file, &logger)
                .expect_err("file")
                .0
                .contains("not a directory")
        );

        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("dangling")).expect("link");
        std::fs::write(root.join("kept"), "k").expect("write");
        // A dangling link is skipped with a warning naming it (it used to fail the walk).
        let tree = walk_source(&root, &logger).expect("dangling is skipped");
        assert_eq!(tree.files.len(), 1);
        let lines = log.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "ServiceBackup.WARNING: skipping file");
        assert_eq!(
            lines[0]["data"]["path"],
            root.join("dangling").display().to_string()
        );
        std::fs::remove_file(root.join("dangling")).expect("rm");

        if !nix::unistd::geteuid().is_root() {
            std::fs::set_permissions(root.join("sub"), std::fs::Permissions::from_mode(0o000))
                .expect("chmod");
            let err = walk_source(&root, &logger).expect_err("unreadable");
            assert!(err.0.contains("sub"), "{err}");
            std::fs::set_permissions(root.join("sub"), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
    }

    #[test]
    fn empty_dir_has_no_files_and_zero_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("e")).expect("mkdir");
        let (logger, _log) = memory_logger();
        let tree = walk_source(dir.path(), &logger).expect("walk");
        assert!(tree.files.is_empty());
        assert_eq!(dir_size(dir.path()), 0);
    }
}
