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
//! the commit may already have taken effect.
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
mod gcs;
mod s3;
mod transfer;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::client::HttpClient;
use tokio_util::sync::CancellationToken;

use crate::StorageError;
use common::Redactor;
use transfer::{FileSource, PartPlan, ReaderSource};

pub use common::{escape_key, normalize_key, unescape_key};

/// Default size of one uploaded part (S3 part, Azure block, GCS chunk).
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// Default upper bound of part bytes in flight at once (S3 and Azure upload parts concurrently).
pub const DEFAULT_IN_FLIGHT_BYTES: usize = 32 * 1024 * 1024;

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
    /// Shared access key (base64).
    pub access_key: String,
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
}

impl fmt::Debug for GcsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsSettings")
            .field("bucket", &self.bucket)
            .field("project_id", &self.project_id)
            .field("service_account_json", &"<redacted>")
            .field("endpoint", &self.endpoint)
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
        })
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
        let plan = PartPlan::new(self.part_size, self.in_flight_bytes, Some(size));
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
        let plan = PartPlan::new(self.part_size, self.in_flight_bytes, Some(opened.size));
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
        let plan = PartPlan::new(self.part_size, self.in_flight_bytes, None);
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
