//! The destination adapters: each configured destination becomes an [`Uploader`] backed by
//! `bbr-storage` ([`ObjectDestination`] for S3, Azure and GCS; [`ScpDestination`] for SCP),
//! narrating with the original's per-destination log lines (docs/service-backup.md#log-lines).
//!
//! Remote layout (docs/service-backup.md#remote-layout; date in the VM's local zone, computed once
//! per destination upload):
//!
//! - S3: bucket `bucket_name`, key `bucket_path/[deployment/]YYYY/MM/DD/<rel>`;
//! - Azure: container `container`, blob `path/[deployment/]YYYY/MM/DD/<rel>`;
//! - GCS: bucket `bucket_name`, object `[path/][deployment/]YYYY/MM/DD/<rel>`;
//! - SCP: `destination/[deployment/]YYYY/MM/DD/` receives the top-level entries.
//!
//! Object stores get files only (empty directories are not uploaded, as in the original); SCP
//! recreates the tree including empty directories. Nothing logged here contains a credential:
//! lines carry bucket names, paths and keys only, and the sink redacts registered secrets on
//! top of that.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bbr_storage::StorageError;
use bbr_storage::object::{
    AzureEndpoint, AzureSettings, GcsSettings, ObjectDestination, S3Settings, StoreSettings,
    escape_key,
};
use bbr_storage::scp::{ScpDestination, ScpHostKeys, ScpSettings};
use tokio_util::sync::CancellationToken;

use crate::config::{
    AzureConfig, DestinationConfig, DestinationSettings, GcsConfig, S3Config, ScpConfig,
};
use crate::data;
use crate::lager::Logger;
use crate::remote_path::{date_path, join, local_today, object_key, remote_path};
use crate::state::StateDir;
use crate::upload::{
    BoxFuture, LocalFile, LocalTree, UploadError, Uploader, log_skipped, walk_source,
};

/// The S3 region used when none is configured (as the original).
pub const DEFAULT_S3_REGION: &str = "us-west-2";

/// Why the uploaders could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An S3 destination is configured and none of [`KNOWN_CA_CERTS`] exists.
    #[error("could not locate a known ca cert")]
    NoKnownCaCert,
    /// One destination is unusable; `which` is `destination <n>[ (<name>)]`.
    #[error("{which}: {source}")]
    Destination {
        /// `destination <n>` and its name, if it has one.
        which: String,
        /// What is wrong with it.
        #[source]
        source: DestinationError,
    },
}

/// Why one destination could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// `ca_cert` names a file that cannot be read.
    #[error("ca_cert file {path}: {source}")]
    CaCertFile {
        /// The configured path.
        path: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The S3 or Azure client could not be made.
    #[error(transparent)]
    Store(#[from] StorageError),
    /// The Google Cloud Storage client could not be made.
    #[error("error creating Google Cloud Storage client: {0}")]
    GcsClient(#[source] StorageError),
    /// SCP without `fingerprint` needs a state directory for trust on first use.
    #[error("no fingerprint configured and no state directory to record the host key in")]
    NoStateDir,
}

/// Builds one uploader per destination, in order. `state` provides the SCP
/// trust-on-first-use record (required when an SCP destination has no `fingerprint`).
pub fn build_uploaders(
    destinations: &[DestinationConfig],
    deployment_name: &str,
    state: Option<&StateDir>,
) -> Result<Vec<Box<dyn Uploader>>, BuildError> {
    let has_s3 = destinations
        .iter()
        .any(|d| matches!(d.settings, DestinationSettings::S3(_)));
    if has_s3 && !KNOWN_CA_CERTS.iter().any(|p| Path::new(p).exists()) {
        return Err(BuildError::NoKnownCaCert);
    }
    let mut out: Vec<Box<dyn Uploader>> = Vec::with_capacity(destinations.len());
    for (i, dest) in destinations.iter().enumerate() {
        let which = if dest.name.is_empty() {
            format!("destination {}", i + 1)
        } else {
            format!("destination {} ({})", i + 1, dest.name)
        };
        let uploader: Box<dyn Uploader> = match &dest.settings {
            DestinationSettings::S3(c) => Box::new(
                S3Uploader::new(&dest.name, c, deployment_name).map_err(|source| {
                    BuildError::Destination {
                        which: which.clone(),
                        source,
                    }
                })?,
            ),
            DestinationSettings::Azure(c) => Box::new(
                AzureUploader::new(&dest.name, c, deployment_name).map_err(|source| {
                    BuildError::Destination {
                        which: which.clone(),
                        source,
                    }
                })?,
            ),
            DestinationSettings::Gcs(c) => Box::new(
                GcsUploader::new(&dest.name, c, deployment_name).map_err(|source| {
                    BuildError::Destination {
                        which: which.clone(),
                        source,
                    }
                })?,
            ),
            DestinationSettings::Scp(c) => Box::new(
                ScpUploader::new(&dest.name, c, deployment_name, state).map_err(|source| {
                    BuildError::Destination {
                        which: which.clone(),
                        source,
                    }
                })?,
            ),
        };
        out.push(uploader);
    }
    Ok(out)
}

/// The system CA bundles the original looks for when any S3 destination is configured
/// (`daemon:upload/ca_cert_locator.go`); with none of them, initialisation fails.
const KNOWN_CA_CERTS: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
];

/// `ca_cert`: PEM text as is, anything else is the path of a PEM file.
fn load_ca_cert(value: &str) -> Result<Option<String>, DestinationError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.contains("-----BEGIN") {
        return Ok(Some(value.to_owned()));
    }
    std::fs::read_to_string(value)
        .map(Some)
        .map_err(|source| DestinationError::CaCertFile {
            path: value.to_owned(),
            source,
        })
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// Uploads every file of a walk to `store`, each under `[base/][deployment/]date/<relative>`,
/// announcing it first with the destination's own per-file line and wording a failure the
/// destination's own way. Stops at the first failure, as the original does.
///
/// A name that is not valid UTF-8 or holds control characters (a newline) is stored under
/// its [`escape_key`] spelling, with a `WARNING: file name escaped in the object key` line
/// naming the file (lossily) and the key. A file that turned into something not uploaded by
/// rule since the walk is skipped with `WARNING: skipping file`. A file whose size changed
/// during its upload gets `WARNING: file changed size during upload` (exactly the size seen
/// when it was opened is uploaded).
async fn put_each(
    store: &ObjectDestination,
    tree: LocalTree,
    prefix: [&str; 3],
    logger: &Logger,
    cancel: &CancellationToken,
    announce: impl Fn(&LocalFile, &str) -> String,
    failure: impl Fn(&LocalFile, &StorageError) -> String,
) -> Result<u64, UploadError> {
    let mut total = 0;
    for file in &tree.files {
        let (relative, escaped) = escape_key(file.relative.as_bytes());
        let key = object_key(&[prefix[0], prefix[1], prefix[2], &relative]);
        if escaped {
            logger.info(
                "WARNING: file name escaped in the object key",
                data! {"path" => file.path.to_string_lossy(), "key" => key},
            );
        }
        logger.info(&announce(file, &key), data! {});
        let opened = match tree.open(file) {
            Ok(opened) => opened,
            Err(StorageError::NotUploadable(skipped)) => {
                log_skipped(logger, &skipped);
                continue;
            }
            Err(e) => return Err(UploadError(failure(file, &e))),
        };
        let uploaded = store
            .put_opened(opened, &key, cancel)
            .await
            .map_err(|e| UploadError(failure(file, &e)))?;
        total += uploaded;
        if let Ok(now) = std::fs::metadata(&file.path)
            && now.len() != uploaded
        {
            logger.info(
                "WARNING: file changed size during upload",
                data! {
                    "path" => file.path.to_string_lossy(),
                    "uploaded_bytes" => uploaded,
                    "size_now" => now.len(),
                },
            );
        }
    }
    Ok(total)
}

/// An S3 (or S3-compatible) destination.
pub struct S3Uploader {
    name: String,
    bucket_name: String,
    bucket_path: String,
    region_empty: bool,
    deployment: String,
    store: ObjectDestination,
}

impl S3Uploader {
    fn new(name: &str, c: &S3Config, deployment: &str) -> Result<Self, DestinationError> {
        let settings = S3Settings {
            bucket: c.bucket_name.clone(),
            region: non_empty(&c.region),
            endpoint: non_empty(&c.endpoint_url),
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.clone(),
            session_token: None,
            force_path_style: c.force_path_style,
            ca_cert_pem: load_ca_cert(&c.ca_cert)?,
        };
        let store = ObjectDestination::new(StoreSettings::S3(settings))?;
        Ok(S3Uploader {
            name: name.to_owned(),
            bucket_name: c.bucket_name.clone(),
            bucket_path: c.bucket_path.clone(),
            region_empty: c.region.trim().is_empty(),
            deployment: deployment.to_owned(),
            store,
        })
    }

    async fn run(
        &self,
        source: &Path,
        logger: &Logger,
        cancel: &CancellationToken,
    ) -> Result<u64, UploadError> {
        let date = date_path(local_today());
        let remote = remote_path(
            &format!("{}/{}", self.bucket_name, self.bucket_path),
            &self.deployment,
            local_today(),
        );
        logger.info(
            &format!(
                "about to upload {} to S3 remote path {remote}",
                source.display()
            ),
            data! {},
        );
        if self.region_empty {
            logger.info(
                &format!("CreateS3Client: ===warning=== region is empty. therefore using default region {DEFAULT_S3_REGION}"),
                data! {},
            );
        }
        let files = walk_source(source, logger).map_err(|e| UploadError(e.0))?;
        logger.info("Checking for remote path", data! {"remotePath" => remote});
        let exists = self.store.bucket_exists().await.map_err(|e| {
            // The original's two wordings: a reply from the store, or no reply at all.
            let text = e.to_string();
            if e.is_store_reply() {
                UploadError(format!("bucketExists: api error, {text}"))
            } else {
                UploadError(format!("bucketExists: error listing objects, {text}"))
            }
        })?;
        if !exists {
            logger.info(
                "Checking for remote path - remote path does not exist - making it now",
                data! {},
            );
            if let Err(e) = self.store.create_bucket().await {
                if e.is_access_denied() {
                    logger.error("Configured S3 user unable to create buckets", &e, data! {});
                }
                return Err(UploadError(format!("createBucket: {}", e)));
            }
            logger.info(
                "Checking for remote path - remote path created ok",
                data! {},
            );
        }
        put_each(
            &self.store,
            files,
            [&self.bucket_path, &self.deployment, &date],
            logger,
            cancel,
            |file, key| {
                format!(
                    "S3 putting local file: {} into bucket {} with remote file: {key} ",
                    file.path.display(),
                    self.bucket_name
                )
            },
            |_, e| format!("UploadFile: {}", e),
        )
        .await
    }
}

impl Uploader for S3Uploader {
    fn kind(&self) -> &str {
        "s3"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn upload<'a>(
        &'a self,
        source: &'a Path,
        logger: &'a Logger,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<u64, UploadError>> {
        Box::pin(async move {
            let result = self.run(source, logger, cancel).await;
            logger.info("s3 completed", data! {});
            result
        })
    }
}

/// An Azure Blob Storage destination.
pub struct AzureUploader {
    name: String,
    container: String,
    path: String,
    deployment: String,
    store: ObjectDestination,
}

/// The `endpoint` value as `bbr-storage` wants it: a URL (Azurite) or a base domain.
pub fn azure_endpoint(value: &str) -> AzureEndpoint {
    let v = value.trim();
    if v.is_empty() {
        AzureEndpoint::default()
    } else if v.starts_with("http://") || v.starts_with("https://") {
        AzureEndpoint::Url(v.to_owned())
    } else {
        AzureEndpoint::Domain(v.to_owned())
    }
}

impl AzureUploader {
    fn new(name: &str, c: &AzureConfig, deployment: &str) -> Result<Self, DestinationError> {
        let settings = AzureSettings {
            account: c.storage_account.clone(),
            access_key: c.storage_access_key.clone(),
            sas_token: None,
            container: c.container.clone(),
            endpoint: azure_endpoint(&c.endpoint),
        };
        let store = ObjectDestination::new(StoreSettings::Azure(settings))?;
        Ok(AzureUploader {
            name: name.to_owned(),
            container: c.container.clone(),
            path: c.path.clone(),
            deployment: deployment.to_owned(),
            store,
        })
    }

    async fn run(
        &self,
        source: &Path,
        logger: &Logger,
        cancel: &CancellationToken,
    ) -> Result<u64, UploadError> {
        let date = date_path(local_today());
        let remote = remote_path(&self.path, &self.deployment, local_today());
        logger.info(
            "Uploading azure blobs",
            data! {"container" => self.container, "localPath" => source.display().to_string(), "remotePath" => remote},
        );
        logger.info(
            "The container and remote path will be created if they don't already exist",
            data! {"container" => self.container, "remotePath" => remote},
        );
        logger.info(
            &format!(
                "about to upload {} to Azure remote path {remote}",
                source.display()
            ),
            data! {},
        );
        let files = walk_source(source, logger)
            .map_err(|e| UploadError(format!("error in uploadDir when walking dir: {}", e.0)))?;
        let ensure = async {
            if !self.store.bucket_exists().await? {
                self.store.create_bucket().await?;
            }
            Ok::<(), StorageError>(())
        };
        ensure.await.map_err(|e| {
            UploadError(format!(
                "error in uploadDir Failed to establish a new connection: {}",
                e
            ))
        })?;
        put_each(
            &self.store,
            files,
            [&self.path, &self.deployment, &date],
            logger,
            cancel,
            |file, blob| format!("uploadFile: {} to {blob}", file.path.display()),
            |file, e| {
                format!(
                    "error in uploadDir when walking dir: error in uploadFile {}: {}",
                    file.path.display(),
                    e
                )
            },
        )
        .await
    }
}

impl Uploader for AzureUploader {
    fn kind(&self) -> &str {
        "azure"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn upload<'a>(
        &'a self,
        source: &'a Path,
        logger: &'a Logger,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<u64, UploadError>> {
        Box::pin(self.run(source, logger, cancel))
    }
}

/// A Google Cloud Storage destination.
pub struct GcsUploader {
    name: String,
    bucket: String,
    path: String,
    deployment: String,
    store: ObjectDestination,
}

impl GcsUploader {
    fn new(name: &str, c: &GcsConfig, deployment: &str) -> Result<Self, DestinationError> {
        let settings = GcsSettings {
            bucket: c.bucket_name.clone(),
            project_id: c.project_id.clone(),
            service_account_json: c.service_account_json.clone(),
            endpoint: non_empty(&c.endpoint),
            anonymous: false,
        };
        let store = ObjectDestination::new(StoreSettings::Gcs(settings))
            .map_err(DestinationError::GcsClient)?;
        Ok(GcsUploader {
            name: name.to_owned(),
            bucket: c.bucket_name.clone(),
            path: c.path.clone(),
            deployment: deployment.to_owned(),
            store,
        })
    }

    async fn run(
        &self,
        source: &Path,
        logger: &Logger,
        cancel: &CancellationToken,
    ) -> Result<u64, UploadError> {
        logger.info(
            &format!("will upload {} to Google Cloud Storage", source.display()),
            data! {},
        );
        let date = date_path(local_today());
        let files = walk_source(source, logger).map_err(|e| UploadError(e.0))?;
        let exists = self
            .store
            .bucket_exists()
            .await
            .map_err(|e| UploadError(format!("error checking bucket: {}", e)))?;
        if !exists {
            self.store
                .create_bucket()
                .await
                .map_err(|e| UploadError(format!("error creating bucket: {}", e)))?;
        }
        put_each(
            &self.store,
            files,
            [&self.path, &self.deployment, &date],
            logger,
            cancel,
            |_, object| format!("will upload {object} to bucket {}", self.bucket),
            |_, e| format!("error uploading file: {}", e),
        )
        .await
    }
}

impl Uploader for GcsUploader {
    fn kind(&self) -> &str {
        "gcs"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn upload<'a>(
        &'a self,
        source: &'a Path,
        logger: &'a Logger,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<u64, UploadError>> {
        Box::pin(async move {
            let result = self.run(source, logger, cancel).await;
            if let Err(e) = &result {
                logger.error("error uploading to Google Cloud Storage", e, data! {});
            }
            result
        })
    }
}

/// An SCP destination (one SSH connection per upload).
pub struct ScpUploader {
    name: String,
    settings: ScpSettings,
    destination: String,
    deployment: String,
    state: Option<StateDir>,
    record_file: Option<PathBuf>,
}

impl ScpUploader {
    fn new(
        name: &str,
        c: &ScpConfig,
        deployment: &str,
        state: Option<&StateDir>,
    ) -> Result<Self, DestinationError> {
        let (host_keys, record_file) = if c.fingerprint.trim().is_empty() {
            let state = state.ok_or(DestinationError::NoStateDir)?;
            let record = state.scp_known_hosts();
            (
                ScpHostKeys::TrustOnFirstUse {
                    record_file: record.clone(),
                },
                Some(record),
            )
        } else {
            (ScpHostKeys::KnownHostsLines(c.fingerprint.clone()), None)
        };
        Ok(ScpUploader {
            name: name.to_owned(),
            settings: ScpSettings {
                user: c.user.clone(),
                server: c.server.clone(),
                port: c.port,
                private_key_pem: c.key.clone(),
                host_keys,
            },
            destination: c.destination.clone(),
            deployment: deployment.to_owned(),
            state: state.cloned(),
            record_file,
        })
    }

    async fn run(
        &self,
        source: &Path,
        logger: &Logger,
        cancel: &CancellationToken,
    ) -> Result<u64, UploadError> {
        let remote_dir = join(&[
            &self.destination,
            &self.deployment,
            &date_path(local_today()),
        ]);
        // Walk the local tree before connecting: a missing or unreadable folder is our error.
        let tree = walk_source(source, logger).map_err(|e| UploadError(e.0))?;
        let connect = tokio::select! {
            r = ScpDestination::connect(self.settings.clone()) => r,
            () = cancel.cancelled() => Err(StorageError::Cancelled),
        };
        let dest = match connect {
            Ok(d) => d,
            Err(e) => {
                let err = UploadError(format!("error checking if remote path exists: '{}'", e));
                logger.error("ssh", &err, data! {});
                return Err(err);
            }
        };
        if let Some(fingerprint) = dest.learned_host_key() {
            let mut d = data! {"fingerprint" => fingerprint};
            if let Some(record) = &self.record_file {
                d.insert(
                    "known_hosts".to_owned(),
                    serde_json::json!(record.display().to_string()),
                );
                if let Some(state) = &self.state {
                    state.adopt(record);
                }
            }
            logger.info("Fingerprint not found, performing key-scan", d);
        }
        let result = async {
            dest.make_dir(&remote_dir).await.map_err(|e| {
                let err = UploadError(format!("error checking if remote path exists: '{}'", e));
                logger.error("ssh", &err, data! {});
                err
            })?;
            let done = dest
                .upload_walked(&tree, &remote_dir, cancel)
                .await
                .map_err(|e| {
                    let err = UploadError(format!("error performing SCP: {}", e));
                    logger.error("scp", &err, data! {});
                    err
                })?;
            for skipped in &done.skipped {
                log_skipped(logger, skipped);
            }
            Ok(done.bytes)
        }
        .await;
        dest.disconnect().await;
        let bytes = result?;
        logger.info("scp completed", data! {});
        Ok(bytes)
    }
}

impl Uploader for ScpUploader {
    fn kind(&self) -> &str {
        "scp"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn upload<'a>(
        &'a self,
        source: &'a Path,
        logger: &'a Logger,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<u64, UploadError>> {
        Box::pin(self.run(source, logger, cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::lager::{LogFormat, Sink};

    #[test]
    fn azure_endpoint_forms() {
        assert_eq!(
            azure_endpoint(""),
            AzureEndpoint::Domain("core.windows.net".into())
        );
        assert_eq!(
            azure_endpoint("core.chinacloudapi.cn"),
            AzureEndpoint::Domain("core.chinacloudapi.cn".into())
        );
        assert_eq!(
            azure_endpoint("http://127.0.0.1:10000/devstoreaccount1"),
            AzureEndpoint::Url("http://127.0.0.1:10000/devstoreaccount1".into())
        );
    }

    #[test]
    fn ca_cert_text_or_file() {
        assert_eq!(load_ca_cert("").expect("empty"), None);
        let pem = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----";
        assert_eq!(load_ca_cert(pem).expect("pem").as_deref(), Some(pem));
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, pem).expect("write");
        assert_eq!(
            load_ca_cert(&file.display().to_string())
                .expect("file")
                .as_deref(),
            Some(pem)
        );
        let err = load_ca_cert("/no/such/ca.pem").expect_err("missing");
        assert!(
            matches!(&err, DestinationError::CaCertFile { path, .. } if path == "/no/such/ca.pem"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("ca_cert file /no/such/ca.pem: "),
            "{err}"
        );
    }

    #[test]
    fn scp_without_fingerprint_needs_a_state_dir() {
        let c = Config::parse(
            "source_folder: /x\ndestinations: [{type: scp, config: {server: h, user: u, destination: /d, key: k}}]\n",
        )
        .expect("parse");
        let dests = c.destinations().expect("valid");
        let err = build_uploaders(&dests, "", None)
            .err()
            .expect("needs state");
        assert_eq!(
            err.to_string(),
            "destination 1: no fingerprint configured and no state directory to record the host key in"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::prepare(Some(dir.path()), "").expect("state");
        let ups = build_uploaders(&dests, "", Some(&state)).expect("built");
        assert_eq!(ups[0].kind(), "scp");
    }

    #[tokio::test]
    async fn unreachable_s3_fails_without_leaking_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), "x").expect("write");
        let c = Config::parse(
            "source_folder: /x\ndestinations: [{type: s3, name: foo, config: {bucket_name: bkt, bucket_path: p, access_key_id: AKIDLEAKCHECK, secret_access_key: SECRETLEAKCHECK, endpoint_url: 'http://127.0.0.1:9', force_path_style: true}}]\n",
        )
        .expect("parse");
        let dests = c.destinations().expect("valid");
        let ups = build_uploaders(&dests, "", None).expect("built");
        let (sink, log) = Sink::memory(LogFormat::Pretty);
        let logger = Logger::new("ServiceBackup", sink);
        let result = ups[0]
            .upload(dir.path(), &logger, &CancellationToken::new())
            .await;
        let err = result.expect_err("unreachable");
        let text = log.contents();
        assert!(!err.0.contains("SECRETLEAKCHECK"), "{err}");
        assert!(!text.contains("SECRETLEAKCHECK"), "{text}");
        assert!(text.contains("about to upload"), "{text}");
        assert!(text.contains("region is empty"), "{text}");
        assert!(text.contains("ServiceBackup.s3 completed"), "{text}");
    }
}
