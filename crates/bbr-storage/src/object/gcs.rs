//! Google Cloud Storage: bucket calls and uploads through the JSON API (media upload for
//! small objects, resumable upload in chunks for large ones), authorised with the
//! service-account credentials of `object_store`'s `GoogleCloudStorage`, which also serves
//! reads and listings.
//!
//! Why uploads do not go through `object_store` as reads do: its GCS multipart upload uses
//! the XML API (`POST …?uploads`, then parts and a completion document), which
//! fake-gcs-server, the only GCS this project can test against, does not implement; the
//! JSON API's resumable upload works on both, streams in bounded chunks the same way, and
//! has a session that a cancelled upload deletes, so nothing partial is ever visible. A
//! store that gains XML multipart in its emulator can drop this module's upload half.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use object_store::ObjectStore;
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::list::PaginatedListStore;
use tokio_util::sync::CancellationToken;

use super::common::{self, Ctx, Redactor, Reply};
use super::transfer::{ChunkSource, PartPlan, with_cancel};
use super::{Backend, Built, GcsSettings, StoreHandle};
use crate::StorageError;

/// The public API endpoint.
pub(crate) const DEFAULT_BASE: &str = "https://storage.googleapis.com";

/// How many times one chunk may be re-sent after the server persisted only part of it.
const MAX_CHUNK_ROUNDS: usize = 5;

pub(crate) struct Gcs {
    store: StoreHandle<GoogleCloudStorage>,
    base: url::Url,
    bucket: String,
    project: String,
}

/// `"<base>/<segments...>"` with each segment percent-encoded, plus query pairs.
fn api_url(
    base: &url::Url,
    segments: &[&str],
    query: &[(&str, &str)],
) -> Result<url::Url, StorageError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| StorageError::Config("GCS endpoint cannot be a base URL".to_string()))?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

impl Gcs {
    pub(crate) fn build(s: GcsSettings) -> Result<Built, StorageError> {
        if s.bucket.trim().is_empty() {
            return Err(StorageError::Config("GCS bucket name is empty".to_string()));
        }
        if s.anonymous {
            return Self::build_anonymous(s);
        }
        if s.service_account_json.trim().is_empty() {
            return Err(StorageError::Config(format!(
                "GCS bucket {:?}: service_account_json is required",
                s.bucket
            )));
        }
        let json: serde_json::Value =
            serde_json::from_str(&s.service_account_json).map_err(|e| {
                StorageError::Config(format!(
                    "GCS bucket {:?}: service_account_json is not valid JSON ({})",
                    s.bucket,
                    // Position only; serde_json's message never quotes the input.
                    e
                ))
            })?;
        let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let mut secrets: Vec<String> = ["private_key", "private_key_id"]
            .iter()
            .filter_map(|n| field(n))
            .collect();
        secrets.push(s.service_account_json.clone());
        let redactor = Redactor::new(secrets);
        let base_raw = s
            .endpoint
            .clone()
            .filter(|e| !e.trim().is_empty())
            .or_else(|| field("gcs_base_url"))
            .unwrap_or_else(|| DEFAULT_BASE.to_string());
        let base = common::parse_endpoint("GCS endpoint", &base_raw)?;
        let opts = common::client_options(None)?;
        let store = GoogleCloudStorageBuilder::new()
            .with_bucket_name(&s.bucket)
            .with_service_account_key(&s.service_account_json)
            .with_base_url(&common::url_base(&base))
            .with_client_options(opts.clone())
            .with_retry(common::retry_config())
            .build()
            .map_err(|e| {
                StorageError::Config(
                    redactor.redact(&format!("GCS bucket {:?}: service account: {e}", s.bucket)),
                )
            })?;
        let http = common::http_client(&opts)?;
        let label = if common::url_base(&base) == DEFAULT_BASE {
            format!("GCS bucket {:?}", s.bucket)
        } else {
            format!("GCS bucket {:?} at {}", s.bucket, common::url_base(&base))
        };
        Ok(Built {
            backend: Backend::Gcs(Gcs {
                store: Arc::new(store),
                base,
                bucket: s.bucket.clone(),
                project: s.project_id,
            }),
            bucket: s.bucket,
            label,
            http,
            redactor,
        })
    }

    /// No credentials at all (an emulator): `object_store` skips signing, and our own
    /// requests carry no `Authorization` header (the static credential is empty).
    fn build_anonymous(s: GcsSettings) -> Result<Built, StorageError> {
        let base_raw = s
            .endpoint
            .clone()
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| {
                StorageError::Config(format!(
                    "GCS bucket {:?}: anonymous access needs an endpoint (an emulator)",
                    s.bucket
                ))
            })?;
        let base = common::parse_endpoint("GCS endpoint", &base_raw)?;
        let opts = common::client_options(None)?;
        let empty = object_store::StaticCredentialProvider::new(object_store::gcp::GcpCredential {
            bearer: String::new(),
        });
        let store = GoogleCloudStorageBuilder::new()
            .with_bucket_name(&s.bucket)
            .with_credentials(Arc::new(empty))
            .with_skip_signature(true)
            .with_base_url(&common::url_base(&base))
            .with_client_options(opts.clone())
            .with_retry(common::retry_config())
            .build()
            .map_err(|e| StorageError::Config(format!("GCS bucket {:?}: {e}", s.bucket)))?;
        let http = common::http_client(&opts)?;
        Ok(Built {
            label: format!("GCS bucket {:?} at {}", s.bucket, common::url_base(&base)),
            backend: Backend::Gcs(Gcs {
                store: Arc::new(store),
                base,
                bucket: s.bucket.clone(),
                project: s.project_id,
            }),
            bucket: s.bucket,
            http,
            redactor: Redactor::default(),
        })
    }

    pub(crate) fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }

    /// The same client, owned, for streams that outlive the borrow.
    pub(crate) fn shared_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub(crate) fn paginated(&self) -> &dyn PaginatedListStore {
        self.store.as_ref()
    }

    async fn request(
        &self,
        ctx: &Ctx<'_>,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: HttpRequestBody,
    ) -> Result<HttpRequest, StorageError> {
        let cred = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| ctx.other(format!("getting an access token: {e}")))?;
        let mut b = http::Request::builder().method(method).uri(url);
        if !cred.bearer.is_empty() {
            b = b.header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", cred.bearer),
            );
        }
        b = b.header(
            http::header::CONTENT_LENGTH,
            body.content_length().to_string(),
        );
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        b.body(body)
            .map_err(|e| ctx.other(format!("building a request: {e}")))
    }

    pub(crate) async fn bucket_exists(&self, ctx: &Ctx<'_>) -> Result<bool, StorageError> {
        let url = api_url(&self.base, &["storage", "v1", "b", &self.bucket], &[])?;
        let req = self
            .request(
                ctx,
                Method::GET,
                url.as_str(),
                &[],
                HttpRequestBody::empty(),
            )
            .await?;
        let reply = ctx.send("getting the bucket", req).await?;
        match reply.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(ctx.other(format!(
                "getting the bucket failed: {}",
                reply.describe_json()
            ))),
        }
    }

    pub(crate) async fn create_bucket(&self, ctx: &Ctx<'_>) -> Result<(), StorageError> {
        if self.project.trim().is_empty() {
            return Err(ctx.other("creating the bucket needs a project_id"));
        }
        let url = api_url(
            &self.base,
            &["storage", "v1", "b"],
            &[("project", self.project.as_str())],
        )?;
        let body = serde_json::json!({ "name": self.bucket }).to_string();
        let req = self
            .request(
                ctx,
                Method::POST,
                url.as_str(),
                &[("content-type", "application/json".to_string())],
                HttpRequestBody::from(body),
            )
            .await?;
        let reply = ctx.send("creating the bucket", req).await?;
        match reply.status {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => Ok(()),
            StatusCode::FORBIDDEN => {
                Err(StorageError::AccessDenied(ctx.redactor.redact(&format!(
                    "{}: creating the bucket in project {:?} failed: {}",
                    ctx.label,
                    self.project,
                    reply.describe_json()
                ))))
            }
            _ => Err(ctx.other(format!(
                "creating the bucket in project {:?} failed: {}",
                self.project,
                reply.describe_json()
            ))),
        }
    }

    /// Upload `source` to `key`: one media upload if it fits in a chunk, else a resumable
    /// upload (the object appears only when the last chunk is accepted; cancelled or failed
    /// sessions are deleted).
    pub(crate) async fn upload(
        &self,
        key: &str,
        source: &mut impl ChunkSource,
        plan: &PartPlan,
        cancel: &CancellationToken,
        ctx: &Ctx<'_>,
    ) -> Result<u64, StorageError> {
        let chunk = plan.part_size(0);
        let first = with_cancel(cancel, source.next_chunk(chunk)).await?;
        if first.len() < chunk {
            let n = first.len() as u64;
            with_cancel(cancel, self.media_upload(key, first, ctx)).await?;
            return Ok(n);
        }
        let session = with_cancel(cancel, self.start_session(key, ctx)).await?;
        let sent = with_cancel(
            cancel,
            self.send_chunks(&session, key, first, source, chunk, ctx),
        )
        .await;
        if sent.is_err() {
            let cancel_session = async {
                if let Ok(req) = self
                    .request(ctx, Method::DELETE, &session, &[], HttpRequestBody::empty())
                    .await
                {
                    let _ = ctx.send("cancelling the upload session", req).await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), cancel_session).await;
        }
        sent
    }

    fn upload_url(&self, key: &str, upload_type: &str) -> Result<url::Url, StorageError> {
        api_url(
            &self.base,
            &["upload", "storage", "v1", "b", &self.bucket, "o"],
            &[("uploadType", upload_type), ("name", key)],
        )
    }

    async fn media_upload(
        &self,
        key: &str,
        data: Bytes,
        ctx: &Ctx<'_>,
    ) -> Result<(), StorageError> {
        let url = self.upload_url(key, "media")?;
        let req = self
            .request(
                ctx,
                Method::POST,
                url.as_str(),
                &[("content-type", "application/octet-stream".to_string())],
                HttpRequestBody::from(data),
            )
            .await?;
        let reply = ctx.send(&format!("uploading {key:?}"), req).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(ctx.other(format!(
                "uploading {key:?} failed: {}",
                reply.describe_json()
            )))
        }
    }

    async fn start_session(&self, key: &str, ctx: &Ctx<'_>) -> Result<String, StorageError> {
        let url = self.upload_url(key, "resumable")?;
        let req = self
            .request(
                ctx,
                Method::POST,
                url.as_str(),
                &[(
                    "x-upload-content-type",
                    "application/octet-stream".to_string(),
                )],
                HttpRequestBody::empty(),
            )
            .await?;
        let reply = ctx
            .send(&format!("starting a resumable upload of {key:?}"), req)
            .await?;
        if !reply.status.is_success() {
            return Err(ctx.other(format!(
                "starting a resumable upload of {key:?} failed: {}",
                reply.describe_json()
            )));
        }
        let location = reply
            .headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ctx.other(format!(
                    "starting a resumable upload of {key:?}: no session URL in the reply"
                ))
            })?;
        let session = self
            .base
            .join(location)
            .map_err(|e| ctx.other(format!("bad resumable session URL: {e}")))?;
        Ok(session.to_string())
    }

    /// Send the chunks in order, reading the next one while the current one is sent. A chunk
    /// is sent as the last (with the total size) once the chunk after it turns out empty.
    async fn send_chunks(
        &self,
        session: &str,
        key: &str,
        first: Bytes,
        source: &mut impl ChunkSource,
        chunk: usize,
        ctx: &Ctx<'_>,
    ) -> Result<u64, StorageError> {
        let mut offset = 0u64;
        let mut current = first;
        let mut next = source.next_chunk(chunk).await?;
        loop {
            if next.is_empty() {
                let total = offset + current.len() as u64;
                self.put_chunk(session, key, current, offset, Some(total), ctx)
                    .await?;
                return Ok(total);
            }
            let len = current.len() as u64;
            let (sent, read) = tokio::join!(
                self.put_chunk(session, key, current, offset, None, ctx),
                source.next_chunk(chunk)
            );
            sent?;
            offset += len;
            current = next;
            next = read?;
        }
    }

    async fn put_chunk(
        &self,
        session: &str,
        key: &str,
        data: Bytes,
        offset: u64,
        total: Option<u64>,
        ctx: &Ctx<'_>,
    ) -> Result<(), StorageError> {
        let end = offset + data.len() as u64; // exclusive
        let mut committed = offset;
        for _ in 0..MAX_CHUNK_ROUNDS {
            let skip = usize::try_from(committed - offset).unwrap_or(data.len());
            let body = data.slice(skip..);
            let range = if body.is_empty() {
                format!(
                    "bytes */{}",
                    total.map_or("*".to_string(), |t| t.to_string())
                )
            } else {
                format!(
                    "bytes {committed}-{}/{}",
                    end - 1,
                    total.map_or("*".to_string(), |t| t.to_string())
                )
            };
            let req = self
                .request(
                    ctx,
                    Method::PUT,
                    session,
                    &[("content-range", range)],
                    HttpRequestBody::from(body),
                )
                .await?;
            let reply = ctx
                .send(&format!("uploading {key:?} at offset {committed}"), req)
                .await?;
            let incomplete = is_incomplete(&reply);
            if !incomplete && reply.status.is_success() {
                if total.is_some() {
                    return Ok(());
                }
                return Err(ctx.other(format!(
                    "uploading {key:?}: the server finished the object before its last chunk"
                )));
            }
            if !incomplete {
                return Err(ctx.other(format!(
                    "uploading {key:?} at offset {committed} failed: {}",
                    reply.describe_json()
                )));
            }
            let persisted = persisted_end(&reply);
            if total.is_none() && persisted >= end {
                return Ok(());
            }
            if persisted < committed || persisted > end {
                return Err(ctx.other(format!(
                    "uploading {key:?}: the server reports {persisted} bytes persisted, \
                     expected {end}"
                )));
            }
            committed = persisted;
        }
        Err(ctx.other(format!(
            "uploading {key:?}: the server did not accept the chunk at offset {offset}"
        )))
    }
}

/// A "308 Resume Incomplete" (also as 200 with `X-Http-Status-Code-Override: 308`).
fn is_incomplete(reply: &Reply) -> bool {
    reply.status == StatusCode::PERMANENT_REDIRECT
        || reply
            .headers
            .get("x-http-status-code-override")
            .is_some_and(|v| v.as_bytes() == b"308")
}

/// How many bytes the server has persisted, from `Range: bytes=0-N` (none: 0).
fn persisted_end(reply: &Reply) -> u64 {
    reply
        .headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .and_then(|v| v.split('-').nth(1))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .map_or(0, |last| last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_encode_names() {
        let base = url::Url::parse("http://127.0.0.1:4443").unwrap();
        let u = api_url(&base, &["storage", "v1", "b", "bkt"], &[]).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:4443/storage/v1/b/bkt");
        let u = api_url(
            &base,
            &["upload", "storage", "v1", "b", "bkt", "o"],
            &[("uploadType", "media"), ("name", "a/b c&d")],
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:4443/upload/storage/v1/b/bkt/o?uploadType=media&name=a%2Fb+c%26d"
        );
    }

    #[test]
    fn range_header_is_parsed() {
        let mut headers = http::HeaderMap::new();
        let reply = |h: &http::HeaderMap| Reply {
            status: StatusCode::PERMANENT_REDIRECT,
            headers: h.clone(),
            body: Bytes::new(),
        };
        assert_eq!(persisted_end(&reply(&headers)), 0);
        headers.insert(http::header::RANGE, "bytes=0-8388607".parse().unwrap());
        assert_eq!(persisted_end(&reply(&headers)), 8 * 1024 * 1024);
        assert!(is_incomplete(&reply(&headers)));
    }

    #[test]
    fn bad_json_is_a_config_error() {
        let s = GcsSettings {
            bucket: "bkt".into(),
            project_id: "p".into(),
            service_account_json: "{not json secretish".into(),
            endpoint: None,
            anonymous: false,
        };
        let e =
            super::super::ObjectDestination::new(super::super::StoreSettings::Gcs(s)).unwrap_err();
        assert!(matches!(e, StorageError::Config(_)), "{e}");
        assert!(!e.to_string().contains("secretish"), "{e}");
    }
}
