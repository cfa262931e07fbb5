//! [`bbr_artifact::ArtifactFiles`] and [`bbr_artifact::ArtifactTree`] over an
//! [`ArtifactStore`], so `bbr artifact validate`/`list` run the very checks of a local
//! directory on `s3://`, `az://` and `gs://` prefixes.
//!
//! The checks are synchronous (tars are hashed on several plain threads); the store client
//! is async. Each call blocks on the command's runtime through its [`Handle`], from the
//! calling thread: the main thread or a hashing thread, never one of the runtime's workers
//! (where `block_on` would panic). An opened object is a [`SyncIoBridge`] over the store's
//! bounded-memory stream: a tar is hashed as it arrives, never held whole in memory or on
//! disk.

use std::io::{self, Read};
use std::sync::Arc;

use bbr_artifact::{ArtifactFiles, ArtifactTree, FileEntry};
use bbr_storage::StorageError;
use bbr_storage::artifact_store::ArtifactStore;
use bbr_storage::artifact_url::ArtifactUrl;
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

/// `text`, prefixed with `url` unless it already names it.
pub(super) fn naming_url(url: &ArtifactUrl, text: &str) -> String {
    bbr_core::artifact_location::naming_location(&url.to_string(), text)
}

/// A store error as an I/O error: `NotFound` stays "does not exist", the rest keeps its
/// (already redacted) text.
pub(super) fn io_error(e: StorageError) -> io::Error {
    match e {
        StorageError::NotFound(text) => io::Error::new(io::ErrorKind::NotFound, text),
        other => io::Error::other(other.to_string()),
    }
}

/// The objects of one artifact "directory": those directly below `dir` (relative to the
/// store's URL; empty for the URL itself).
pub struct StoreFiles {
    store: Arc<ArtifactStore>,
    dir: String,
    handle: Handle,
}

impl StoreFiles {
    /// The artifact at `dir` below `store`'s URL (`""`: the URL is the artifact).
    pub fn new(store: Arc<ArtifactStore>, dir: &str, handle: Handle) -> StoreFiles {
        StoreFiles {
            store,
            dir: dir.trim_matches('/').to_string(),
            handle,
        }
    }

    fn relative(&self, name: &str) -> String {
        if self.dir.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.dir)
        }
    }

    fn shown(&self) -> String {
        let url = self.store.url();
        match url.join(&self.dir) {
            Ok(u) => u.to_string(),
            Err(_) => url.to_string(),
        }
    }
}

impl ArtifactFiles for StoreFiles {
    fn files(&self) -> io::Result<Vec<FileEntry>> {
        let objects = self
            .handle
            .block_on(self.store.list_objects(&self.dir))
            .map_err(io_error)?;
        if objects.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no object exists under {}", self.shown()),
            ));
        }
        let strip = if self.dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.dir)
        };
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                let name = o.key.strip_prefix(&strip)?;
                (!name.is_empty() && !name.contains('/')).then(|| FileEntry {
                    name: name.to_string(),
                    size: Some(o.size),
                })
            })
            .collect())
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        match self
            .handle
            .block_on(self.store.size_of(&self.relative(name)))
            .map_err(io_error)?
        {
            Some(size) => Ok(size),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        let stream = self
            .handle
            .block_on(self.store.open(&self.relative(name)))
            .map_err(io_error)?;
        Ok(Box::new(SyncIoBridge::new_with_handle(
            stream.into_reader(),
            self.handle.clone(),
        )))
    }
}

/// A store prefix holding artifact "directories".
pub struct StoreTree {
    store: Arc<ArtifactStore>,
    handle: Handle,
}

impl StoreTree {
    /// The artifacts directly below `store`'s URL.
    pub fn new(store: Arc<ArtifactStore>, handle: Handle) -> StoreTree {
        StoreTree { store, handle }
    }
}

impl ArtifactTree for StoreTree {
    /// The "directories" that hold at least one object, from one listing of every object
    /// below the prefix. A delimited listing is not used: some S3-compatible stores
    /// (SeaweedFS) keep an emptied "directory" as a common prefix after its last object is
    /// deleted, which would show a pruned artifact as an incomplete one forever.
    fn children(&self) -> io::Result<Vec<String>> {
        let objects = self
            .handle
            .block_on(self.store.list_objects(""))
            .map_err(io_error)?;
        let mut dirs: Vec<String> = objects
            .iter()
            .filter_map(|o| o.key.split_once('/').map(|(dir, _)| dir.to_string()))
            .filter(|dir| !dir.is_empty())
            .collect();
        dirs.dedup();
        Ok(dirs)
    }

    fn child(&self, name: &str) -> Box<dyn ArtifactFiles + '_> {
        Box::new(StoreFiles::new(
            self.store.clone(),
            name,
            self.handle.clone(),
        ))
    }
}
