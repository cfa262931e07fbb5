//! [`ArtifactStore`]: the object-store side of a bbr artifact path (`s3://`, `az://`,
//! `gs://`): one [`ObjectDestination`] plus the URL's prefix, with the primitives a bbr
//! artifact needs, all taking keys *relative to the prefix*.
//!
//! - [`ArtifactStore::check_bucket`]: the bucket / container exists (else
//!   [`StorageError::NotFound`] naming it);
//! - [`ArtifactStore::list_dirs`]: the child "directories" of a directory (the artifact
//!   directories under `PREFIX`, for `bbr artifact list`), and
//!   [`ArtifactStore::list_objects`]: every object below one, with sizes (both follow the
//!   listing's pages to the end, whatever the count);
//! - [`ArtifactStore::open`]: read an object as a bounded-memory stream (or `AsyncRead`);
//! - [`ArtifactStore::upload`]: stream an `AsyncRead` of unknown length into one object
//!   (multipart; aborted on failure, on cancellation through the token, and, for S3 and Azure,
//!   when the future is dropped; see [`crate::object`]);
//! - [`ArtifactStore::put_small`]: write a small object such as `metadata` in one request;
//! - [`ArtifactStore::size_of`]: whether an object exists, and its size;
//! - [`ArtifactStore::delete`]: remove one object (missing is fine), and
//!   [`ArtifactStore::delete_many`]: many at once, in the store's bulk form, every `metadata`
//!   first (see [`ObjectDestination::delete_many`]).
//!
//! [`ArtifactStore::from_env`] builds one from the URL and the cloud CLI environment
//! ([`crate::artifact_url`]); nothing touches the network until the first call.

use std::fmt;

use tokio_util::sync::CancellationToken;

use crate::StorageError;
use crate::artifact_url::{ArtifactUrl, CloudEnv, StoreEnvError, store_settings};
use crate::object::{ObjectDestination, ObjectInfo, ObjectStream, UploadBudget};

/// An artifact location in an object store (see the [module docs](self)).
pub struct ArtifactStore {
    url: ArtifactUrl,
    dest: ObjectDestination,
    page_size: Option<usize>,
}

impl fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("url", &self.url.to_string())
            .field("destination", &self.dest)
            .finish()
    }
}

impl ArtifactStore {
    /// Resolve `url`'s store settings from `env` and build the client (reads the CA bundle
    /// or key file the environment names; no network I/O).
    pub fn from_env(url: ArtifactUrl, env: &CloudEnv) -> Result<ArtifactStore, StoreEnvError> {
        let settings = store_settings(&url, env)?;
        let dest = ObjectDestination::new(settings).map_err(|source| StoreEnvError::Store {
            url: url.to_string(),
            source,
        })?;
        Ok(ArtifactStore::with_destination(url, dest))
    }

    /// Use an already built destination for `url` (its bucket must be the URL's).
    pub fn with_destination(url: ArtifactUrl, dest: ObjectDestination) -> ArtifactStore {
        ArtifactStore {
            url,
            dest,
            page_size: None,
        }
    }

    /// List in pages of at most `keys` entries instead of the store's default (1,000 for
    /// S3 and GCS, 5,000 for Azure). Results are the same; only the number of requests
    /// changes.
    pub fn with_page_size(mut self, keys: usize) -> ArtifactStore {
        self.page_size = Some(keys.max(1));
        self
    }

    /// Keep the parts in flight of every upload through this store within `budget` (see
    /// [`UploadBudget`]): a backup streaming several tars at once stays within one bound.
    pub fn with_upload_budget(mut self, budget: UploadBudget) -> ArtifactStore {
        self.dest = self.dest.with_upload_budget(budget);
        self
    }

    /// The URL.
    pub fn url(&self) -> &ArtifactUrl {
        &self.url
    }

    /// The underlying destination (part sizes, `describe()`, full-key operations).
    pub fn destination(&self) -> &ObjectDestination {
        &self.dest
    }

    /// `s3://b/p (S3 bucket "b" at http://127.0.0.1:8333)`, for logs and errors.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.url, self.dest.describe())
    }

    /// The full key of `relative` (`..` refused).
    pub fn key(&self, relative: &str) -> Result<String, StorageError> {
        self.url.key(relative)
    }

    /// The bucket / container exists; otherwise [`StorageError::NotFound`] naming it.
    /// A refusal (wrong credentials) is the store's error, without secrets.
    pub async fn check_bucket(&self) -> Result<(), StorageError> {
        if self.dest.bucket_exists().await? {
            Ok(())
        } else {
            Err(StorageError::NotFound(format!(
                "{}: {} does not exist",
                self.url,
                self.dest.describe()
            )))
        }
    }

    /// The names of the child "directories" of `relative_dir` (empty: the URL's prefix),
    /// e.g. `["dep_20240102T030405Z", …]`, sorted.
    pub async fn list_dirs(&self, relative_dir: &str) -> Result<Vec<String>, StorageError> {
        let dir = self.dir_key(relative_dir)?;
        let children = self.dest.list_children(&dir, self.page_size).await?;
        Ok(children
            .dirs
            .iter()
            .filter_map(|d| d.rsplit('/').next())
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Every object below `relative_dir` (empty: the URL's prefix), keys relative to the
    /// URL's prefix, with sizes, sorted by key.
    pub async fn list_objects(&self, relative_dir: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let dir = self.dir_key(relative_dir)?;
        let strip = if self.url.prefix().is_empty() {
            String::new()
        } else {
            format!("{}/", self.url.prefix())
        };
        Ok(self
            .dest
            .list_all(&dir, self.page_size)
            .await?
            .into_iter()
            .map(|o| ObjectInfo {
                key: o.key.strip_prefix(&strip).unwrap_or(&o.key).to_string(),
                size: o.size,
            })
            .collect())
    }

    /// Open `relative` for reading (bounded memory; see [`ObjectStream`]).
    pub async fn open(&self, relative: &str) -> Result<ObjectStream, StorageError> {
        self.dest.get_stream(&self.key(relative)?).await
    }

    /// Stream `reader` (any length) into `relative`; returns the bytes uploaded. Nothing is
    /// visible under the key unless the whole stream arrived.
    pub async fn upload(
        &self,
        relative: &str,
        reader: impl tokio::io::AsyncRead + Unpin + Send,
        cancel: &CancellationToken,
    ) -> Result<u64, StorageError> {
        self.dest
            .put_reader(&self.key(relative)?, reader, cancel)
            .await
    }

    /// Write a small object (such as `metadata`) from memory.
    pub async fn put_small(
        &self,
        relative: &str,
        data: &[u8],
        cancel: &CancellationToken,
    ) -> Result<(), StorageError> {
        self.dest
            .put_bytes(&self.key(relative)?, data, cancel)
            .await
            .map(|_| ())
    }

    /// The size of `relative`, `None` if it does not exist (an artifact is complete exactly
    /// when its `metadata` exists).
    pub async fn size_of(&self, relative: &str) -> Result<Option<u64>, StorageError> {
        self.dest.size_of(&self.key(relative)?).await
    }

    /// Delete `relative` (a missing object is not an error).
    pub async fn delete(&self, relative: &str) -> Result<(), StorageError> {
        self.dest.delete(&self.key(relative)?).await
    }

    /// Delete every key of `keys` (relative to the URL's prefix) in the store's bulk form,
    /// every `metadata` key before the others (see [`ObjectDestination::delete_many`]).
    /// Returns the keys, as given, that could not be deleted, with why, in the order given;
    /// empty when all are gone. A missing object is not a failure.
    pub async fn delete_many(&self, keys: &[String]) -> Vec<(String, StorageError)> {
        let mut failures = Vec::new();
        let mut full = Vec::with_capacity(keys.len());
        let mut index = Vec::with_capacity(keys.len());
        for (i, relative) in keys.iter().enumerate() {
            match self.key(relative) {
                Ok(k) => {
                    full.push(k);
                    index.push(i);
                }
                Err(e) => failures.push((i, e)),
            }
        }
        failures.extend(
            self.dest
                .delete_many_indexed(&full)
                .await
                .into_iter()
                .map(|(j, e)| (index[j], e)),
        );
        failures.sort_by_key(|(i, _)| *i);
        failures
            .into_iter()
            .map(|(i, e)| (keys[i].clone(), e))
            .collect()
    }

    /// The full key of a directory, `""` for the bucket's root.
    fn dir_key(&self, relative_dir: &str) -> Result<String, StorageError> {
        if format!("{}/{relative_dir}", self.url.prefix())
            .trim_matches('/')
            .is_empty()
        {
            Ok(String::new())
        } else {
            self.key(relative_dir)
        }
    }
}
