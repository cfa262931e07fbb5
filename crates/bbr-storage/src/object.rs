//! S3, Azure Blob and GCS destinations.
//!
//! [`ObjectDestination`] wraps one bucket (S3, GCS) or container (Azure) and offers the few
//! operations service-backup and bbr need: check that the bucket exists, create it, stream a
//! file or a reader into one object, read an object back and list a prefix.
//!
//! # How each store is reached
//!
//! - **S3** through `object_store`'s `AmazonS3`, plus hand-signed (SigV4) `HeadBucket` and
//!   `CreateBucket` calls. Addressing: virtual-hosted style like the original
//!   (`https://<bucket>.s3.<region>.amazonaws.com`, or `<scheme>://<bucket>.<endpoint host>`),
//!   except that **path style** (`<endpoint>/<bucket>`) is used when `force_path_style` is
//!   set, when the endpoint host is an IP literal or `localhost` (virtual-hosted addressing
//!   cannot work there), and when the bucket name is not a valid DNS label sequence without dots
//!   (dots break TLS wildcard certificates; AWS SDKs fall back the same way). An empty region
//!   means `us-west-2`, like the original. Payloads are signed over `http://` and sent as
//!   `UNSIGNED-PAYLOAD` over `https://` (TLS already protects them), as the AWS CLI does.
//! - **Azure** through `object_store`'s `MicrosoftAzure` with the shared key; the container is
//!   checked and created with hand-signed (SharedKey) REST calls. [`AzureEndpoint::Domain`]
//!   gives `https://<account>.blob.<domain>` like the original's `endpoint` key;
//!   [`AzureEndpoint::Url`] takes a full blob service URL (Azurite:
//!   `http://127.0.0.1:10000/devstoreaccount1`).
//! - **GCS** through the JSON API: bucket GET / POST, and uploads as a single media upload
//!   (small objects) or a resumable upload in chunks (large ones), which creates the object only
//!   when the last chunk arrives. Reads and listings use `object_store`'s
//!   `GoogleCloudStorage`, whose service-account credentials (a self-signed JWT) also
//!   authorise our own calls.
//!
//! # Uploads
//!
//! Data is read in parts (8 MiB by default, larger for files that would exceed 9,000 parts, and
//! growing every 1,000 parts for streams of unknown size) and at most 32 MiB of parts are in
//! flight, so memory stays bounded whatever the object size. S3 and Azure parts go up
//! concurrently (multipart upload / block list); a file smaller than one part is sent with a
//! single PUT. An upload that fails or is cancelled through its [`CancellationToken`] is
//! aborted (S3 `AbortMultipartUpload`, GCS session `DELETE`; uncommitted Azure blocks are
//! discarded by the service), so no partial object becomes visible and an existing object at
//! that key keeps its old content. A cancellation that arrives while the final commit request
//! is in flight is still reported as [`StorageError::Cancelled`] and an abort is attempted, but
//! the commit may already have taken effect. If instead the future driving an S3 or Azure
//! upload is *dropped* (a `select!` branch that lost, an aborted task), the abort is sent from
//! a detached task on the current runtime; a dropped GCS upload leaves its resumable session
//! open until the service expires it (a week). Neither ever becomes a visible object.
//!
//! # Reads and listings
//!
//! [`ObjectDestination::get_stream`] hands an object out chunk by chunk as it arrives (no
//! read-ahead, so memory stays bounded), checking the byte count against the announced size.
//! [`ObjectDestination::list_page`] lists one page (optionally folded at `/` into
//! "directories"); [`list_all`](ObjectDestination::list_all) and
//! [`list_children`](ObjectDestination::list_children) follow the pages to the end.
//!
//! # Keys
//!
//! Keys are normalised like Go's `filepath.Join`: empty and `.` segments are dropped, so
//! `"/a//b/./c"` becomes `"a/b/c"`. A `..` segment or an ASCII control character is refused.
//! [`escape_key`] spells any local file name (raw bytes: invalid UTF-8, newlines) as a
//! storable key, reversibly ([`unescape_key`]).
//!
//! # Errors
//!
//! Every error names the store and bucket (and key or local file); secrets, signatures and the
//! parts of server replies that echo them are removed. Requests are retried at most three
//! times with short back-off, so an unreachable endpoint fails within seconds.

mod azure;
mod common;
mod delete;
mod gcs;
mod s3;
mod transfer;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::client::HttpClient;
use object_store::list::PaginatedListStore;
use tokio_util::sync::CancellationToken;

use crate::StorageError;
use common::Redactor;
use transfer::{FileSource, PartPlan, ReaderSource};

pub(crate) use common::endpoint_problem;
pub use common::{escape_key, normalize_key, unescape_key};
pub use transfer::UploadBudget;

/// Default size of one uploaded part (S3 part, Azure block, GCS chunk).
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// Default upper bound of part bytes in flight at once (S3 and Azure upload parts concurrently).
pub const DEFAULT_IN_FLIGHT_BYTES: usize = 32 * 1024 * 1024;

/// Bytes per ranged GET of [`ObjectDestination::get_stream`]: small enough that one range
/// ends well inside the client's per-request timeout on a slow link (300 s allows about
/// 0.1 MiB/s), large enough that one request per range costs nothing measurable.
pub const DEFAULT_READ_RANGE: u64 = 32 * 1024 * 1024;

/// An S3 (or S3-compatible) bucket.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Region; `None` or empty means `us-west-2` (the original's default). Used for signing
    /// and as `LocationConstraint` when creating the bucket (omitted for `us-east-1`).
    pub region: Option<String>,
    /// Custom endpoint URL (`endpoint_url`), e.g. `http://127.0.0.1:9000`. `http://` is
    /// allowed; a value without a scheme is taken as `https://`.
    pub endpoint: Option<String>,
    /// Access key ID.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials (`AWS_SESSION_TOKEN`), sent as
    /// `x-amz-security-token`.
    pub session_token: Option<String>,
    /// Address the bucket as `<endpoint>/<bucket>` instead of `<bucket>.<endpoint host>`.
    pub force_path_style: bool,
    /// An extra trusted CA (PEM, one or more certificates) for a private endpoint.
    pub ca_cert_pem: Option<String>,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("force_path_style", &self.force_path_style)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// Where an Azure storage account's blob service is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AzureEndpoint {
    /// A base domain like the original's `endpoint` key (default `core.windows.net`): the blob
    /// service is `https://<account>.blob.<domain>`.
    Domain(String),
    /// A full blob service URL, e.g. `http://127.0.0.1:10000/devstoreaccount1` (Azurite).
    Url(String),
}

impl Default for AzureEndpoint {
    fn default() -> Self {
        AzureEndpoint::Domain("core.windows.net".to_string())
    }
}

/// An Azure Blob Storage container.
#[derive(Clone, Default)]
pub struct AzureSettings {
    /// Storage account name.
    pub account: String,
    /// Shared access key (base64). May be empty when [`sas_token`](Self::sas_token) is set;
    /// the key wins when both are.
    pub access_key: String,
    /// A shared access signature (`sv=…&sig=…`, with or without the leading `?`), used when
    /// there is no access key. Creating a container with one needs an account SAS that allows it.
    pub sas_token: Option<String>,
    /// Container name.
    pub container: String,
    /// Blob service location.
    pub endpoint: AzureEndpoint,
}

impl fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureSettings")
            .field("account", &self.account)
            .field("access_key", &"<redacted>")
            .field("sas_token", &self.sas_token.as_ref().map(|_| "<redacted>"))
            .field("container", &self.container)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// A Google Cloud Storage bucket.
#[derive(Clone, Default)]
pub struct GcsSettings {
    /// Bucket name.
    pub bucket: String,
    /// Project that a new bucket is created in.
    pub project_id: String,
    /// The service account key file's contents (JSON).
    pub service_account_json: String,
    /// API base URL, e.g. `http://127.0.0.1:4443` for fake-gcs-server; `None` means
    /// `https://storage.googleapis.com` (or the key file's `gcs_base_url`, if any).
    pub endpoint: Option<String>,
    /// Send no credentials at all (an emulator such as fake-gcs-server, reached through
    /// `STORAGE_EMULATOR_HOST`); `service_account_json` is then not needed and ignored.
    pub anonymous: bool,
}

impl fmt::Debug for GcsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsSettings")
            .field("bucket", &self.bucket)
            .field("project_id", &self.project_id)
            .field("service_account_json", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

/// One of the supported object stores.
#[derive(Clone, Debug)]
pub enum StoreSettings {
    /// Amazon S3 or an S3-compatible store.
    S3(S3Settings),
    /// Azure Blob Storage (or Azurite).
    Azure(AzureSettings),
    /// Google Cloud Storage (or fake-gcs-server).
    Gcs(GcsSettings),
}

/// One bucket or container that objects are uploaded to. Cheap to share by reference; all
/// methods take `&self`.
pub struct ObjectDestination {
    backend: Backend,
    bucket: String,
    label: String,
    http: HttpClient,
    redactor: Redactor,
    part_size: usize,
    in_flight_bytes: usize,
    read_range: u64,
    budget: Option<transfer::UploadBudget>,
}

enum Backend {
    S3(s3::S3),
    Azure(azure::Azure),
    Gcs(gcs::Gcs),
}

impl fmt::Debug for ObjectDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectDestination")
            .field("destination", &self.label)
            .field("part_size", &self.part_size)
            .field("in_flight_bytes", &self.in_flight_bytes)
            .finish()
    }
}

impl ObjectDestination {
    /// Check the settings and build the clients. No network I/O happens here.
    pub fn new(settings: StoreSettings) -> Result<Self, StorageError> {
        let built = match settings {
            StoreSettings::S3(s) => s3::S3::build(s)?,
            StoreSettings::Azure(s) => azure::Azure::build(s)?,
            StoreSettings::Gcs(s) => gcs::Gcs::build(s)?,
        };
        Ok(ObjectDestination {
            backend: built.backend,
            bucket: built.bucket,
            label: built.label,
            http: built.http,
            redactor: built.redactor,
            part_size: DEFAULT_PART_SIZE,
            in_flight_bytes: DEFAULT_IN_FLIGHT_BYTES,
            read_range: DEFAULT_READ_RANGE,
            budget: None,
        })
    }

    /// Keep the parts in flight of this destination's uploads within `budget`, which may
    /// be shared with other destinations: several uploads at once then stay within one
    /// memory bound (plus one part being filled per upload), however many there are.
    pub fn with_upload_budget(mut self, budget: UploadBudget) -> Self {
        self.in_flight_bytes = self.in_flight_bytes.max(budget.bytes());
        self.budget = Some(budget);
        self
    }

    /// Use parts of `bytes` (at least 5 MiB; rounded up to a multiple of 256 KiB) instead of
    /// [`DEFAULT_PART_SIZE`]. Larger files still get larger parts so that they fit in 9,000.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = transfer::clamp_part_size(bytes);
        self
    }

    /// Keep at most `bytes` of parts in flight (at least one part) instead of
    /// [`DEFAULT_IN_FLIGHT_BYTES`]. Peak memory is about this plus one part being read.
    pub fn with_in_flight_bytes(mut self, bytes: usize) -> Self {
        self.in_flight_bytes = bytes;
        self
    }

    /// Read objects in ranges of `bytes` (at least 1) instead of [`DEFAULT_READ_RANGE`].
    pub fn with_read_range(mut self, bytes: u64) -> Self {
        self.read_range = bytes.max(1);
        self
    }

    /// The bucket (S3, GCS) or container (Azure) name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A short description for logs and errors, e.g. `S3 bucket "b" at http://127.0.0.1:9000`.
    pub fn describe(&self) -> &str {
        &self.label
    }

    /// Whether the bucket / container exists. S3: `HeadBucket` (404 → `false`; 403 → an error
    /// containing `Forbidden`). Azure: container properties. GCS: bucket metadata GET (needs
    /// `storage.buckets.get`, not `buckets.list`).
    pub async fn bucket_exists(&self) -> Result<bool, StorageError> {
        let ctx = self.ctx();
        match &self.backend {
            Backend::S3(s) => s.bucket_exists(&ctx).await,
            Backend::Azure(a) => a.container_exists(&ctx).await,
            Backend::Gcs(g) => g.bucket_exists(&ctx).await,
        }
    }

    /// Create the bucket / container. Already existing and owned by us is success. A refusal
    /// for lack of permission is [`StorageError::AccessDenied`].
    pub async fn create_bucket(&self) -> Result<(), StorageError> {
        let ctx = self.ctx();
        match &self.backend {
            Backend::S3(s) => s.create_bucket(&ctx).await,
            Backend::Azure(a) => a.create_container(&ctx).await,
            Backend::Gcs(g) => g.create_bucket(&ctx).await,
        }
    }

    /// Upload the local file `local` to `key`, streaming it in parts. Returns the number of
    /// bytes uploaded. On error or cancellation nothing partial is left visible under `key`.
    /// `local` must be a regular file: it is opened without blocking and anything else (a
    /// FIFO, a device) is [`StorageError::NotUploadable`]; stream pipes with
    /// [`put_reader`](Self::put_reader). Exactly the size seen when the file is opened is
    /// uploaded (see [`put_opened`](Self::put_opened)).
    pub async fn put_file(
        &self,
        local: &Path,
        key: &str,
        cancel: &CancellationToken,
    ) -> Result<u64, StorageError> {
        let key = normalize_key(key)?;
        let (mut source, size) = FileSource::open(local).await?;
        let plan = PartPlan::new(self.part_size, self.in_flight_bytes, Some(size))
            .within(self.budget.clone());
        self.upload(&key, &mut source, &plan, cancel).await
    }

    /// Upload a file opened by [`crate::local::LocalTree::open`] (or
    /// [`crate::local::open_regular`]) to `key`: exactly `opened.size` bytes, the size when it
    /// was opened. A file that grows meanwhile is uploaded as that prefix (every part but the
    /// last keeps its full size, so S3 never sees a short middle part); one that shrinks fails
    /// with [`StorageError::LocalRead`] naming it, and nothing is left under `key`.
    pub async fn put_opened(
        &self,
        opened: crate::local::OpenedFile,
        key: &str,
        cancel: &CancellationToken,
    ) -> Result<u64, StorageError> {
        let key = normalize_key(key)?;
        let plan = PartPlan::new(self.part_size, self.in_flight_bytes, Some(opened.size))
            .within(self.budget.clone());
        let mut source = FileSource::new(opened);
        self.upload(&key, &mut source, &plan, cancel).await
    }

    /// Upload everything `reader` yields to `key`, streaming it in parts (the total size need
    /// not be known). Returns the number of bytes uploaded. Same guarantees as
    /// [`put_file`](Self::put_file).
    pub async fn put_reader(
        &self,
        key: &str,
        reader: impl tokio::io::AsyncRead + Unpin + Send,
        cancel: &CancellationToken,
    ) -> Result<u64, StorageError> {
        let key = normalize_key(key)?;
        let mut source = ReaderSource::new(reader);
        let plan =
            PartPlan::new(self.part_size, self.in_flight_bytes, None).within(self.budget.clone());
        self.upload(&key, &mut source, &plan, cancel).await
    }

    async fn upload(
        &self,
        key: &str,
        source: &mut impl transfer::ChunkSource,
        plan: &PartPlan,
        cancel: &CancellationToken,
    ) -> Result<u64, StorageError> {
        let ctx = self.ctx();
        match &self.backend {
            Backend::S3(s) => {
                transfer::upload_multipart(s.store(), key, source, plan, cancel, &ctx).await
            }
            Backend::Azure(a) => {
                transfer::upload_multipart(a.store(), key, source, plan, cancel, &ctx).await
            }
            Backend::Gcs(g) => g.upload(key, source, plan, cancel, &ctx).await,
        }
    }

    /// Read a whole object into memory (for small objects: tests, metadata files).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let key = normalize_key(key)?;
        let ctx = self.ctx();
        let path = common::object_path(&key)?;
        let store = self.store();
        let result = store
            .get(&path)
            .await
            .map_err(|e| ctx.object_store_error("downloading", &key, e))?;
        let bytes = result
            .bytes()
            .await
            .map_err(|e| ctx.object_store_error("downloading", &key, e))?;
        Ok(bytes.to_vec())
    }

    /// All objects under `prefix` (a "directory": `"a/b"` matches `a/b/...`, not `a/bc`;
    /// empty for the whole bucket) as `(key, size)`, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StorageError> {
        use futures::TryStreamExt;
        let ctx = self.ctx();
        let prefix = if prefix.trim_matches('/').is_empty() {
            None
        } else {
            Some(common::object_path(&normalize_key(prefix)?)?)
        };
        let store = self.store();
        let metas: Vec<object_store::ObjectMeta> = store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| {
                let what = prefix.as_ref().map(|p| p.to_string()).unwrap_or_default();
                ctx.object_store_error("listing", &what, e)
            })?;
        let mut out: Vec<(String, u64)> = metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Upload a small object (for example bbr's `metadata`) from memory: a single PUT (or
    /// media upload) when it fits in one part. Same guarantees as [`put_reader`](Self::put_reader).
    pub async fn put_bytes(
        &self,
        key: &str,
        data: &[u8],
        cancel: &CancellationToken,
    ) -> Result<u64, StorageError> {
        self.put_reader(key, data, cancel).await
    }

    /// Open `key` for reading as a stream of chunks: nothing is read ahead beyond what the
    /// HTTP client buffers (a few hundred KiB at most), so memory stays bounded whatever the
    /// object size. The size comes from a HEAD, then the bytes from one ranged GET per
    /// [`DEFAULT_READ_RANGE`] (see [`with_read_range`](Self::with_read_range)), in order.
    /// A missing object (or bucket) is [`StorageError::NotFound`].
    pub async fn get_stream(&self, key: &str) -> Result<ObjectStream, StorageError> {
        let key = normalize_key(key)?;
        let ctx = self.ctx();
        let path = common::object_path(&key)?;
        let size = self
            .store()
            .head(&path)
            .await
            .map_err(|e| ctx.object_store_error("downloading", &key, e))?
            .size;
        // One ranged GET per READ_RANGE bytes, one after the other: each request then ends
        // well inside the client's per-request timeout however big the object is (a single
        // GET of a large tar would be cut off by it mid-body).
        use futures::{StreamExt, TryStreamExt};
        let store = self.shared_store();
        let step = self.read_range;
        let starts = std::iter::successors(Some(0_u64), move |s| Some(s + step));
        let ranges = starts
            .take_while(move |&start| start < size)
            .map(move |start| start..(start + step).min(size));
        let inner = futures::stream::iter(ranges)
            .then(move |range| {
                let store = store.clone();
                let path = path.clone();
                async move {
                    let options = object_store::GetOptions {
                        range: Some(range.into()),
                        ..Default::default()
                    };
                    store
                        .get_opts(&path, options)
                        .await
                        .map(|r| r.into_stream())
                }
            })
            .try_flatten()
            .boxed();
        Ok(ObjectStream {
            size,
            inner,
            received: 0,
            done: false,
            key,
            label: self.label.clone(),
            redactor: self.redactor.clone(),
        })
    }

    /// The size of `key`, `None` if there is no such object.
    pub async fn size_of(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let key = normalize_key(key)?;
        let ctx = self.ctx();
        let path = common::object_path(&key)?;
        match self.store().head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ctx.object_store_error("looking up", &key, e)),
        }
    }

    /// Delete `key`. Deleting an object that does not exist is not an error (S3 cannot tell
    /// the two apart; GCS's and Azure's 404 is treated the same way, except Azure's
    /// `ContainerNotFound`).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let key = normalize_key(key)?;
        let ctx = self.ctx();
        let path = common::object_path(&key)?;
        if let Backend::Azure(a) = &self.backend {
            return a.delete_blob(&key, &ctx).await;
        }
        match self.store().delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(ctx.object_store_error("deleting", &key, e)),
        }
    }

    /// Delete every key of `keys` (full keys), in the store's bulk form where it has one
    /// (S3 `DeleteObjects`, 1,000 keys a request; Azure blob batch, 256 a request; GCS, and
    /// Azure with a SAS: up to 32 single deletes at once). Returns the keys that could not
    /// be deleted, each with its error (naming the store and the key, without secrets), in
    /// the order given; empty when everything is gone. A missing object is not a failure.
    ///
    /// Order: every `metadata` key (last segment `metadata`) is deleted before any other key
    /// of the call is sent, so a half-deleted bbr artifact reads as incomplete; a key in the
    /// directory of a `metadata` key that could not be deleted is kept and reported as a
    /// failure. Within each of the two phases, requests run concurrently.
    pub async fn delete_many(&self, keys: &[String]) -> Vec<(String, StorageError)> {
        self.delete_many_indexed(keys)
            .await
            .into_iter()
            .map(|(i, e)| (keys[i].clone(), e))
            .collect()
    }

    /// [`delete_many`](Self::delete_many), failures by index into `keys`, sorted.
    pub(crate) async fn delete_many_indexed(&self, keys: &[String]) -> Vec<(usize, StorageError)> {
        let mut failures = Vec::new();
        let mut items = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            match normalize_key(key) {
                Ok(k) => items.push((i, k)),
                Err(e) => failures.push((i, e)),
            }
        }
        let (first, rest) = delete::phases(items);
        let first_keys: Vec<(usize, String)> = first.clone();
        let failed = self.delete_phase(first).await;
        let failed_metadata: Vec<String> = first_keys
            .into_iter()
            .filter(|(i, _)| failed.iter().any(|(f, _)| f == i))
            .map(|(_, k)| k)
            .collect();
        failures.extend(failed);
        let mut go = Vec::with_capacity(rest.len());
        for (i, key) in rest {
            match delete::held_back_by(&key, &failed_metadata) {
                Some(meta) => failures.push((
                    i,
                    self.ctx().other(format!(
                        "not deleting {key:?}: its artifact's {meta:?} could not be deleted"
                    )),
                )),
                None => go.push((i, key)),
            }
        }
        failures.extend(self.delete_phase(go).await);
        failures.sort_by_key(|(i, _)| *i);
        failures
    }

    /// One phase of [`delete_many`](Self::delete_many): normalised keys by index.
    async fn delete_phase(&self, items: Vec<(usize, String)>) -> Vec<(usize, StorageError)> {
        use futures::StreamExt;
        if items.is_empty() {
            return Vec::new();
        }
        let ctx = self.ctx();
        match &self.backend {
            Backend::S3(s) => {
                delete::bulk(s.store(), delete::S3_BATCH, "DeleteObjects", items, &ctx).await
            }
            Backend::Azure(a) if !a.uses_sas() => {
                delete::bulk(a.store(), delete::AZURE_BATCH, "blob batch", items, &ctx).await
            }
            _ => {
                futures::stream::iter(items)
                    .map(|(i, key)| async move { (i, self.delete(&key).await) })
                    .buffer_unordered(delete::SINGLE_CONCURRENCY)
                    .filter_map(|(i, r)| async move { r.err().map(|e| (i, e)) })
                    .collect()
                    .await
            }
        }
    }

    /// One page of the listing under `prefix` (a "directory": `"a/b"` lists `a/b/...`; empty
    /// for the whole bucket). With `delimited`, keys below the next `/` are folded into
    /// [`ListPage::dirs`]. `page_token` continues from an earlier page's
    /// [`ListPage::next_page`]; `max_keys` caps the page (`None`: the store's default, 1,000
    /// for S3 and GCS, 5,000 for Azure).
    pub async fn list_page(
        &self,
        prefix: &str,
        delimited: bool,
        page_token: Option<&str>,
        max_keys: Option<usize>,
    ) -> Result<ListPage, StorageError> {
        let ctx = self.ctx();
        let dir = if prefix.trim_matches('/').is_empty() {
            None
        } else {
            Some(format!("{}/", normalize_key(prefix)?))
        };
        let opts = object_store::list::PaginatedListOptions {
            delimiter: delimited.then_some(std::borrow::Cow::Borrowed("/")),
            max_keys,
            page_token: page_token.map(str::to_string),
            ..Default::default()
        };
        let page = self
            .paginated()
            .list_paginated(dir.as_deref(), opts)
            .await
            .map_err(|e| ctx.object_store_error("listing", dir.as_deref().unwrap_or(""), e))?;
        let mut objects: Vec<ObjectInfo> = page
            .result
            .objects
            .into_iter()
            .map(|m| ObjectInfo {
                key: m.location.to_string(),
                size: m.size,
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        let mut dirs: Vec<String> = page
            .result
            .common_prefixes
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        dirs.sort();
        Ok(ListPage {
            objects,
            dirs,
            next_page: page.page_token.filter(|t| !t.is_empty()),
        })
    }

    /// Every object under `prefix` (see [`list_page`](Self::list_page)), following pages of
    /// `page_size` (`None`: the store's default) until the last; sorted by key.
    pub async fn list_all(
        &self,
        prefix: &str,
        page_size: Option<usize>,
    ) -> Result<Vec<ObjectInfo>, StorageError> {
        let listing = self.list_pages(prefix, false, page_size).await?;
        Ok(listing.objects)
    }

    /// The direct children of `prefix`: the "directories" (full keys without the trailing
    /// `/`, e.g. `backups/dep_20240102T030405Z`) and the objects right in it, over as many
    /// pages as it takes; both sorted.
    pub async fn list_children(
        &self,
        prefix: &str,
        page_size: Option<usize>,
    ) -> Result<ListPage, StorageError> {
        self.list_pages(prefix, true, page_size).await
    }

    async fn list_pages(
        &self,
        prefix: &str,
        delimited: bool,
        page_size: Option<usize>,
    ) -> Result<ListPage, StorageError> {
        let mut all = ListPage::default();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .list_page(prefix, delimited, token.as_deref(), page_size)
                .await?;
            all.objects.extend(page.objects);
            all.dirs.extend(page.dirs);
            match page.next_page {
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(self.ctx().other(format!(
                        "listing {prefix:?}: the store returned the same page token twice"
                    )));
                }
                Some(next) => token = Some(next),
                None => break,
            }
        }
        all.objects.sort_by(|a, b| a.key.cmp(&b.key));
        all.objects.dedup_by(|a, b| a.key == b.key);
        all.dirs.sort();
        all.dirs.dedup();
        Ok(all)
    }

    fn paginated(&self) -> &dyn PaginatedListStore {
        match &self.backend {
            Backend::S3(s) => s.paginated(),
            Backend::Azure(a) => a.paginated(),
            Backend::Gcs(g) => g.paginated(),
        }
    }

    fn shared_store(&self) -> Arc<dyn ObjectStore> {
        match &self.backend {
            Backend::S3(s) => s.shared_store(),
            Backend::Azure(a) => a.shared_store(),
            Backend::Gcs(g) => g.shared_store(),
        }
    }

    fn store(&self) -> &dyn ObjectStore {
        match &self.backend {
            Backend::S3(s) => s.store(),
            Backend::Azure(a) => a.store(),
            Backend::Gcs(g) => g.store(),
        }
    }

    fn ctx(&self) -> common::Ctx<'_> {
        common::Ctx {
            label: &self.label,
            http: &self.http,
            redactor: &self.redactor,
        }
    }
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The full key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One page of a listing, or (from [`ObjectDestination::list_children`] and
/// [`ObjectDestination::list_all`]) all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects, sorted by key.
    pub objects: Vec<ObjectInfo>,
    /// "Directories" (common prefixes, without the trailing `/`), sorted; delimited
    /// listings only.
    pub dirs: Vec<String>,
    /// The token for the next page; `None` on the last page.
    pub next_page: Option<String>,
}

/// An object being read (from [`ObjectDestination::get_stream`]): a
/// [`Stream`](futures::Stream) of chunks in order, as the HTTP client receives them, so at
/// most one chunk plus the client's socket buffers is held at a time. Ends with an error
/// naming the object if the connection drops, or if fewer or more bytes arrive than the
/// size the store announced. [`into_reader`](Self::into_reader) gives an `AsyncRead`.
pub struct ObjectStream {
    key: String,
    size: u64,
    received: u64,
    done: bool,
    inner: futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    label: String,
    redactor: Redactor,
}

impl fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStream")
            .field("destination", &self.label)
            .field("key", &self.key)
            .field("size", &self.size)
            .field("received", &self.received)
            .finish()
    }
}

impl ObjectStream {
    /// The object's size as announced by the store.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Bytes handed out so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The same bytes as an [`AsyncRead`](tokio::io::AsyncRead); errors are
    /// `std::io::Error`s wrapping the [`StorageError`] (its message names the object).
    pub fn into_reader(self) -> ObjectReader {
        ObjectReader {
            stream: self,
            chunk: bytes::Bytes::new(),
        }
    }

    fn error(&self, message: String) -> StorageError {
        StorageError::Other(self.redactor.redact(&format!(
            "{}: downloading {:?}: {message}",
            self.label, self.key
        )))
    }
}

impl futures::Stream for ObjectStream {
    type Item = Result<bytes::Bytes, StorageError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if self.received > self.size {
                    self.done = true;
                    let e = self.error(format!(
                        "received more than the announced {} bytes",
                        self.size
                    ));
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                let e = common::object_store_error(
                    &self.label,
                    &self.redactor,
                    "downloading",
                    &self.key,
                    e,
                );
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.received < self.size {
                    let e = self.error(format!(
                        "the stream ended after {} of {} bytes",
                        self.received, self.size
                    ));
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None)
            }
        }
    }
}

/// An [`ObjectStream`] as an [`AsyncRead`](tokio::io::AsyncRead) (holds at most one chunk).
#[derive(Debug)]
pub struct ObjectReader {
    stream: ObjectStream,
    chunk: bytes::Bytes,
}

impl ObjectReader {
    /// The object's size as announced by the store.
    pub fn size(&self) -> u64 {
        self.stream.size
    }
}

impl tokio::io::AsyncRead for ObjectReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use futures::Stream;
        use std::task::Poll;
        loop {
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(buf.remaining());
                let part = self.chunk.split_to(n);
                buf.put_slice(&part);
                return Poll::Ready(Ok(()));
            }
            match std::pin::Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(std::io::Error::other(e))),
                Poll::Ready(Some(Ok(chunk))) => self.chunk = chunk,
            }
        }
    }
}

/// What each backend's `build` returns.
struct Built {
    backend: Backend,
    bucket: String,
    label: String,
    http: HttpClient,
    redactor: Redactor,
}

/// Shared handle type used by the backends.
type StoreHandle<T> = Arc<T>;
