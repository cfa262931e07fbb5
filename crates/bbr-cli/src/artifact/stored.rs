//! [`bbr_core::artifact_location::StoredArtifacts`] over an [`ArtifactStore`]: what
//! `backup` and `restore` use when `--artifact-path` is an `s3://`, `az://` or `gs://` URL.
//!
//! - A drained tar is one streaming multipart upload ([`StoreTar`]): the drain's writer
//!   thread hands each chunk to an upload task on the process's runtime through a bounded
//!   channel (a few chunks), so memory stays bounded and nothing touches the disk. The
//!   upload completes only on [`TarSink::finish`]; an abort, or dropping the sink
//!   unfinished, ends the stream with an error, so the store aborts the multipart upload
//!   and the key never appears.
//! - Reads go through [`StoreFiles`], as for `bbr artifact validate`.
//!
//! Every message names the object's URL and never a credential (the store client's errors
//! are already redacted).

use super::store::{StoreFiles, io_error, naming_url};
use bbr_artifact::ArtifactFiles;
use bbr_core::artifact_location::{StoredArtifacts, TarSink};
use bbr_storage::artifact_store::ArtifactStore;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::io::{self, Write};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;
use tokio_util::sync::CancellationToken;

/// Chunks the upload may lag behind the drain (each at most the drain's chunk size).
const UPLOAD_QUEUE: usize = 4;

/// The bytes of parts in flight shared by all of a run's uploads (one per VM job being
/// drained at once), besides the one part each upload is filling: a backup's memory stays
/// bounded whatever the number of VMs (benchmarked: one VM under 64 MiB peak RSS, four
/// under 128 MiB; see bench/store.sh).
pub const UPLOAD_BUDGET: usize = 32 << 20;

/// An object-store prefix for the workflows (see the [module docs](self)).
pub struct StoredPrefix {
    store: Arc<ArtifactStore>,
    handle: Handle,
}

impl StoredPrefix {
    /// The prefix of `store`, whose calls run on `handle`'s runtime.
    pub fn new(store: ArtifactStore, handle: Handle) -> StoredPrefix {
        StoredPrefix {
            store: Arc::new(store),
            handle,
        }
    }

    /// The store's client (shared: listing and pruning reuse it).
    pub fn store(&self) -> Arc<ArtifactStore> {
        self.store.clone()
    }

    fn relative(dir: &str, name: &str) -> String {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", dir.trim_matches('/'))
        }
    }
}

impl StoredArtifacts for StoredPrefix {
    fn location(&self) -> String {
        self.store.url().to_string()
    }

    fn check(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            self.store
                .check_bucket()
                .await
                .map_err(|e| io::Error::other(naming_url(self.store.url(), &e.to_string())))
        })
    }

    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, io::Result<Vec<(String, u64)>>> {
        Box::pin(async move {
            let strip = format!("{}/", dir.trim_matches('/'));
            let objects = self.store.list_objects(dir).await.map_err(io_error)?;
            Ok(objects
                .into_iter()
                .map(|o| {
                    let name = o.key.strip_prefix(&strip).unwrap_or(&o.key).to_string();
                    (name, o.size)
                })
                .collect())
        })
    }

    fn create(&self, dir: &str, name: &str) -> io::Result<Box<dyn TarSink>> {
        let key = StoredPrefix::relative(dir, name);
        // Refuse a bad key now rather than from inside the upload task.
        self.store.key(&key).map_err(io_error)?;
        Ok(Box::new(StoreTar::start(
            self.store.clone(),
            key,
            &self.handle,
        )))
    }

    fn put<'a>(
        &'a self,
        dir: &'a str,
        name: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.store
                .put_small(
                    &StoredPrefix::relative(dir, name),
                    &data,
                    &CancellationToken::new(),
                )
                .await
                .map_err(io_error)
        })
    }

    fn artifact(&self, dir: &str) -> Arc<dyn ArtifactFiles + Send + Sync> {
        Arc::new(StoreFiles::new(
            self.store.clone(),
            dir,
            self.handle.clone(),
        ))
    }
}

/// One tar being uploaded (see the [module docs](self)).
struct StoreTar {
    key: String,
    to_upload: Option<mpsc::Sender<io::Result<Bytes>>>,
    cancel: CancellationToken,
    done: Option<tokio::task::JoinHandle<Result<u64, String>>>,
    handle: Handle,
}

impl StoreTar {
    fn start(store: Arc<ArtifactStore>, key: String, handle: &Handle) -> StoreTar {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(UPLOAD_QUEUE);
        let cancel = CancellationToken::new();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let task_cancel = cancel.clone();
        let task_key = key.clone();
        let done = handle.spawn(async move {
            let reader = StreamReader::new(Box::pin(stream));
            store
                .upload(&task_key, reader, &task_cancel)
                .await
                .map_err(|e| e.to_string())
        });
        StoreTar {
            key,
            to_upload: Some(tx),
            cancel,
            done: Some(done),
            handle: handle.clone(),
        }
    }

    /// Waits for the upload task (from a plain thread).
    fn wait(&mut self) -> Result<u64, String> {
        match self.done.take() {
            Some(task) => self
                .handle
                .block_on(task)
                .unwrap_or_else(|e| Err(format!("the upload task failed: {e}"))),
            None => Err("the upload already ended".to_string()),
        }
    }

    /// Ends the stream with an error and cancels the upload: the store aborts it.
    fn stop_upload(&mut self) {
        if let Some(tx) = self.to_upload.take() {
            let _ = tx.try_send(Err(io::Error::other("the drain was abandoned")));
        }
        self.cancel.cancel();
    }
}

impl Write for StoreTar {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tx) = &self.to_upload else {
            return Err(io::Error::other(format!(
                "uploading {}: the upload already ended",
                self.key
            )));
        };
        if tx.blocking_send(Ok(Bytes::copy_from_slice(buf))).is_err() {
            // The task stopped reading: it failed; its error says why.
            self.to_upload = None;
            let why = match self.wait() {
                Err(e) => e,
                Ok(_) => "the upload ended early".to_string(),
            };
            return Err(io::Error::other(why));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TarSink for StoreTar {
    fn finish(mut self: Box<Self>) -> io::Result<u64> {
        // End of stream: the upload completes (the object appears) or fails.
        drop(self.to_upload.take());
        self.wait().map_err(io::Error::other)
    }

    fn abort(mut self: Box<Self>) -> io::Result<()> {
        self.stop_upload();
        match self.wait() {
            // The stream's error or the cancellation: the upload was aborted.
            Err(_) => Ok(()),
            Ok(_) => Err(io::Error::other(format!(
                "{} was completed before the abort reached it",
                self.key
            ))),
        }
    }
}

impl Drop for StoreTar {
    fn drop(&mut self) {
        if self.done.is_some() {
            // Unfinished: never let the upload complete a partial tar.
            self.stop_upload();
        }
    }
}
