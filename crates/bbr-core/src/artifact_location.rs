//! Where a backup writes its artifact and where a restore reads one: a local directory, or
//! a prefix of an object store (`s3://`, `az://`, `gs://`).
//!
//! The workflows see one [`ArtifactTarget`] (backup) or [`ArtifactOrigin`] (restore) and
//! never the storage client: the object-store side is the [`StoredArtifacts`] trait, which
//! the command line implements over its store client, so this crate stays free of any
//! cloud SDK.
//!
//! The rules that differ between the two kinds of location:
//!
//! - **When an artifact is complete.** A local artifact's `metadata` is rewritten after
//!   every drained tar (as Go bbr does, so a failed backup still says what it holds). A
//!   stored artifact's `metadata` is written once, last, and only when every tar was drained
//!   and verified and no stop was requested (a failed unlock or cleanup does not undo a
//!   complete artifact): a stored artifact is complete exactly when its `metadata` exists.
//! - **A tar in flight.** A drained tar is written through a [`TarSink`]: a local file, or
//!   one multipart upload. Nothing of it becomes visible under its key until
//!   [`TarSink::finish`] (after the tar was verified); [`TarSink::abort`] removes the
//!   partial file or aborts the upload, and so does dropping the sink unfinished.
//! - **What a failed stored backup leaves.** The tars finished before the failure stay,
//!   without `metadata`; [`ArtifactTarget::leftovers`] lists them for the error.

use bbr_artifact::ArtifactFiles;
use bbr_artifact::artifact_dir::ArtifactDir;
use bbr_artifact::metadata::Metadata;
use futures::future::BoxFuture;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// A tar being written into an artifact (see the [module docs](self)).
///
/// `write` and the two endings are blocking calls: the drain makes them from a plain
/// thread of its own, never from an async task.
pub trait TarSink: Write + Send {
    /// Makes the tar visible under its name (flush and `fsync`; complete the upload) and
    /// returns the bytes stored.
    fn finish(self: Box<Self>) -> io::Result<u64>;
    /// Discards the partial tar (remove the file; abort the upload) and waits until that
    /// is done.
    fn abort(self: Box<Self>) -> io::Result<()>;
}

/// An object-store prefix, as the command line gives it to the workflows (see the
/// [module docs](self)). Names are relative to the prefix; `dir` is an artifact's
/// directory below it (`<deployment>_<timestamp>`), empty when the prefix is the artifact.
pub trait StoredArtifacts: Send + Sync {
    /// The prefix's URL, as the operator gave it (no secrets), for messages.
    fn location(&self) -> String;
    /// The bucket or container exists and the credentials may list it.
    fn check(&self) -> BoxFuture<'_, io::Result<()>>;
    /// Every object below `dir`, names relative to `dir`, with sizes.
    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, io::Result<Vec<(String, u64)>>>;
    /// Starts the upload of `dir/name`; nothing is sent until the first write.
    fn create(&self, dir: &str, name: &str) -> io::Result<Box<dyn TarSink>>;
    /// Writes the small object `dir/name` in one request.
    fn put<'a>(
        &'a self,
        dir: &'a str,
        name: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, io::Result<()>>;
    /// The artifact at `dir`, for a restore's reads (blocking calls: make them from a
    /// plain or blocking-pool thread).
    fn artifact(&self, dir: &str) -> Arc<dyn ArtifactFiles + Send + Sync>;
}

/// Where `bbr backup` creates its artifact.
#[derive(Clone)]
pub enum BackupDestination {
    /// The artifact directory is created inside this local directory.
    Local(PathBuf),
    /// The artifact is created below this object-store prefix.
    Stored(Arc<dyn StoredArtifacts>),
}

impl std::fmt::Debug for BackupDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupDestination::Local(p) => f.debug_tuple("Local").field(p).finish(),
            BackupDestination::Stored(s) => f.debug_tuple("Stored").field(&s.location()).finish(),
        }
    }
}

/// Where `bbr restore` reads its artifact.
#[derive(Clone)]
pub enum ArtifactOrigin {
    /// A local artifact directory.
    Local(PathBuf),
    /// An artifact in an object store: the prefix is the artifact directory.
    Stored(Arc<dyn StoredArtifacts>),
}

impl std::fmt::Debug for ArtifactOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArtifactOrigin::Local(p) => f.debug_tuple("Local").field(p).finish(),
            ArtifactOrigin::Stored(s) => f.debug_tuple("Stored").field(&s.location()).finish(),
        }
    }
}

/// The artifact a backup is writing.
pub enum ArtifactTarget {
    /// A local artifact directory.
    Local(ArtifactDir),
    /// `dir` below an object-store prefix.
    Stored {
        /// The prefix.
        store: Arc<dyn StoredArtifacts>,
        /// `<deployment>_<timestamp>`.
        dir: String,
    },
}

/// Why an artifact could not be created or written.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The local artifact directory or one of its files.
    #[error(transparent)]
    Local(#[from] bbr_artifact::ArtifactError),
    /// The object store (already names the URL, without secrets).
    #[error("{0}")]
    Stored(String),
}

impl ArtifactTarget {
    /// Creates `<deployment>_<timestamp>` in `destination`. A stored one is refused when
    /// its bucket is missing or objects already exist under that name.
    pub async fn create(
        destination: &BackupDestination,
        deployment: &str,
        timestamp: &str,
    ) -> Result<ArtifactTarget, TargetError> {
        match destination {
            BackupDestination::Local(parent) => Ok(ArtifactTarget::Local(ArtifactDir::create(
                parent, deployment, timestamp,
            )?)),
            BackupDestination::Stored(store) => {
                let dir = bbr_artifact::naming::artifact_dir_name(deployment, timestamp);
                store.check().await.map_err(stored_error)?;
                let existing = store.list(&dir).await.map_err(stored_error)?;
                if !existing.is_empty() {
                    return Err(TargetError::Stored(format!(
                        "{}/{dir} already exists ({} objects); refusing to write over it",
                        store.location().trim_end_matches('/'),
                        existing.len()
                    )));
                }
                Ok(ArtifactTarget::Stored {
                    store: store.clone(),
                    dir,
                })
            }
        }
    }

    /// The artifact's path or URL, for messages.
    pub fn location(&self) -> String {
        match self {
            ArtifactTarget::Local(d) => d.path().display().to_string(),
            ArtifactTarget::Stored { store, dir } => {
                format!("{}/{dir}", store.location().trim_end_matches('/'))
            }
        }
    }

    /// The location of the file `name` inside the artifact, for messages.
    pub fn file_location(&self, name: &str) -> String {
        match self {
            ArtifactTarget::Local(d) => d.file_path(name).display().to_string(),
            ArtifactTarget::Stored { .. } => format!("{}/{name}", self.location()),
        }
    }

    /// Whether the artifact lives in an object store.
    pub fn is_stored(&self) -> bool {
        matches!(self, ArtifactTarget::Stored { .. })
    }

    /// Starts writing the tar `name`.
    pub fn create_tar(&self, name: &str) -> Result<Box<dyn TarSink>, TargetError> {
        match self {
            ArtifactTarget::Local(d) => Ok(Box::new(LocalTar::create(d, name)?)),
            ArtifactTarget::Stored { store, dir } => store
                .create(dir, name)
                .map_err(|e| TargetError::Stored(naming(&self.file_location(name), e))),
        }
    }

    /// Records `metadata` as the backup goes: a local artifact's `metadata` is rewritten,
    /// a stored one's waits for [`complete`](Self::complete).
    pub fn record_progress(&self, metadata: &Metadata) -> Result<(), TargetError> {
        match self {
            ArtifactTarget::Local(d) => Ok(d.write_metadata(metadata)?),
            ArtifactTarget::Stored { .. } => Ok(()),
        }
    }

    /// Writes the final `metadata`: the artifact is complete once this returns `Ok`.
    pub async fn complete(&self, metadata: &Metadata) -> Result<(), TargetError> {
        match self {
            ArtifactTarget::Local(d) => Ok(d.write_metadata(metadata)?),
            ArtifactTarget::Stored { store, dir } => store
                .put(
                    dir,
                    bbr_artifact::artifact_dir::METADATA_FILE,
                    metadata.to_yaml().into_bytes(),
                )
                .await
                .map_err(|e| {
                    TargetError::Stored(naming(
                        &self.file_location(bbr_artifact::artifact_dir::METADATA_FILE),
                        e,
                    ))
                }),
        }
    }

    /// Writes the deployment manifest as `manifest.yml`.
    pub async fn save_manifest(&self, text: &str) -> Result<(), TargetError> {
        match self {
            ArtifactTarget::Local(d) => {
                let path = d.file_path(MANIFEST_FILE);
                std::fs::write(&path, text)
                    .map_err(|cause| TargetError::Stored(format!("{}: {cause}", path.display())))
            }
            ArtifactTarget::Stored { store, dir } => store
                .put(dir, MANIFEST_FILE, text.as_bytes().to_vec())
                .await
                .map_err(|e| TargetError::Stored(naming(&self.file_location(MANIFEST_FILE), e))),
        }
    }

    /// What a failed backup left in a stored artifact, for its error: `None` for a local
    /// artifact (Go bbr's rules apply: the directory and its `metadata` stay).
    pub async fn leftovers(&self) -> Option<String> {
        let ArtifactTarget::Stored { store, dir } = self else {
            return None;
        };
        let location = self.location();
        Some(match store.list(dir).await {
            Ok(objects) if objects.is_empty() => {
                format!("Nothing was left in {location}: no object was written there.")
            }
            Ok(objects) => {
                let names: Vec<&str> = objects.iter().map(|(n, _)| n.as_str()).collect();
                format!(
                    "The incomplete artifact {location} holds {} object(s) ({}) and no metadata, so no restore will accept it; `bbr artifact list` shows it as incomplete. Delete it once it is no longer needed.",
                    objects.len(),
                    names.join(", ")
                )
            }
            Err(e) => format!(
                "The incomplete artifact {location} has no metadata, so no restore will accept it; listing what it holds failed: {e}"
            ),
        })
    }
}

/// The deployment manifest's file name inside an artifact.
pub const MANIFEST_FILE: &str = "manifest.yml";

fn stored_error(e: io::Error) -> TargetError {
    TargetError::Stored(e.to_string())
}

/// `text` prefixed with `location` (a path or URL) unless it already names it: the one
/// rule for naming the artifact in a store's or file system's error.
pub fn naming_location(location: &str, text: &str) -> String {
    if text.contains(location) {
        text.to_string()
    } else {
        format!("{location}: {text}")
    }
}

fn naming(location: &str, e: io::Error) -> String {
    naming_location(location, &e.to_string())
}

/// A tar written into a local artifact directory.
struct LocalTar {
    path: PathBuf,
    writer: Option<bbr_artifact::artifact_file::ArtifactFileWriter>,
    written: u64,
}

impl LocalTar {
    fn create(dir: &ArtifactDir, name: &str) -> Result<LocalTar, bbr_artifact::ArtifactError> {
        let path = dir.file_path(name);
        let file = std::fs::File::create(&path).map_err(|cause| {
            bbr_artifact::ArtifactError::CreateFile {
                path: path.clone(),
                cause,
            }
        })?;
        Ok(LocalTar {
            path,
            writer: Some(bbr_artifact::artifact_file::ArtifactFileWriter::new(file)),
            written: 0,
        })
    }

    fn remove(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Write for LocalTar {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("the tar was already finished"))?;
        let n = writer.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl TarSink for LocalTar {
    fn finish(mut self: Box<Self>) -> io::Result<u64> {
        match self.writer.take() {
            Some(w) => w.finish().map(|()| self.written),
            None => Ok(self.written),
        }
    }

    fn abort(mut self: Box<Self>) -> io::Result<()> {
        drop(self.writer.take());
        self.remove()
    }
}

impl Drop for LocalTar {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = self.remove();
        }
    }
}
