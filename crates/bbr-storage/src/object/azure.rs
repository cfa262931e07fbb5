//! Azure Blob Storage: service URL, the `object_store` client, and hand-signed (SharedKey)
//! container calls.

use std::sync::Arc;

use http::{Method, StatusCode};
use object_store::ObjectStore;
use object_store::azure::{
    AzureAccessKey, AzureAuthorizer, AzureCredential, MicrosoftAzure, MicrosoftAzureBuilder,
};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::list::PaginatedListStore;

use super::common::{self, Ctx, Redactor};
use super::{AzureEndpoint, AzureSettings, Backend, Built, StoreHandle};
use crate::StorageError;

pub(crate) struct Azure {
    store: StoreHandle<MicrosoftAzure>,
    container_url: url::Url,
    account: String,
    credential: AzureCredential,
}

/// The blob service URL for `account` at `endpoint`.
pub(crate) fn service_url(
    account: &str,
    endpoint: &AzureEndpoint,
) -> Result<url::Url, StorageError> {
    match endpoint {
        AzureEndpoint::Domain(d) => {
            let d = d.trim().trim_start_matches('.');
            let d = if d.is_empty() { "core.windows.net" } else { d };
            if d.contains("://") || d.contains('/') {
                return Err(StorageError::Config(format!(
                    "Azure endpoint {d:?} must be a domain such as core.windows.net \
                     (use a full URL through AzureEndpoint::Url)"
                )));
            }
            common::parse_endpoint("Azure endpoint", &format!("https://{account}.blob.{d}"))
        }
        AzureEndpoint::Url(u) => common::parse_endpoint("Azure endpoint URL", u),
    }
}

/// The query pairs of a SAS token (`sv=…&sig=…`), percent-decoded. Errors never quote it.
fn sas_pairs(sas: &str) -> Result<Vec<(String, String)>, StorageError> {
    let mut pairs = Vec::new();
    for part in sas.split('&').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            StorageError::Config("the Azure SAS token has an element without '='".to_string())
        })?;
        let decode = |x: &str| {
            percent_decode(x).ok_or_else(|| {
                StorageError::Config(format!(
                    "the Azure SAS token's {k:?} element is not valid percent-encoded UTF-8"
                ))
            })
        };
        pairs.push((decode(k.trim())?, decode(v.trim())?));
    }
    Ok(pairs)
}

/// `%XY` decoding (no `+` → space: SAS values are base64 and keep their `+`).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `<service>/<container>`.
pub(crate) fn container_url(service: &url::Url, container: &str) -> Result<url::Url, StorageError> {
    let mut url = service.clone();
    url.path_segments_mut()
        .map_err(|_| StorageError::Config("Azure endpoint cannot be a base URL".to_string()))?
        .pop_if_empty()
        .push(container);
    Ok(url)
}

impl Azure {
    pub(crate) fn build(s: AzureSettings) -> Result<Built, StorageError> {
        if s.account.trim().is_empty() || s.container.trim().is_empty() {
            return Err(StorageError::Config(
                "Azure storage_account and container are required".to_string(),
            ));
        }
        let sas = s
            .sas_token
            .as_deref()
            .map(|t| t.trim().trim_start_matches('?'))
            .filter(|t| !t.is_empty());
        let mut secrets = vec![s.access_key.clone()];
        secrets.extend(sas.map(str::to_string));
        let redactor = Redactor::new(secrets);
        let credential = if !s.access_key.is_empty() || sas.is_none() {
            let key = AzureAccessKey::try_new(&s.access_key).map_err(|_| {
                StorageError::Config(format!(
                    "Azure container {:?}: the storage access key is not valid base64",
                    s.container
                ))
            })?;
            AzureCredential::AccessKey(key)
        } else {
            let pairs = sas.map(sas_pairs).transpose()?.unwrap_or_default();
            if pairs.is_empty() || !pairs.iter().any(|(k, _)| k == "sig") {
                return Err(StorageError::Config(format!(
                    "Azure container {:?}: the SAS token has no signature (sig=…)",
                    s.container
                )));
            }
            AzureCredential::SASToken(pairs)
        };
        let service = service_url(&s.account, &s.endpoint)?;
        let container_url = container_url(&service, &s.container)?;
        let opts = common::client_options(None)?;
        let mut builder = MicrosoftAzureBuilder::new().with_account(&s.account);
        builder = match &credential {
            AzureCredential::SASToken(pairs) => builder.with_sas_authorization(pairs.clone()),
            _ => builder.with_access_key(&s.access_key),
        };
        let store = builder
            .with_container_name(&s.container)
            .with_endpoint(common::url_base(&service))
            .with_allow_http(true)
            .with_client_options(opts.clone())
            .with_retry(common::retry_config())
            .build()
            .map_err(|e| {
                StorageError::Config(
                    redactor.redact(&format!("Azure container {:?}: {e}", s.container)),
                )
            })?;
        let http = common::http_client(&opts)?;
        Ok(Built {
            backend: Backend::Azure(Azure {
                store: Arc::new(store),
                container_url,
                account: s.account,
                credential,
            }),
            label: format!(
                "Azure container {:?} at {}",
                s.container,
                common::url_base(&service)
            ),
            bucket: s.container,
            http,
            redactor,
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

    /// Whether requests are authorised with a SAS (no shared key): Azurite refuses a blob
    /// batch signed that way, so bulk deletes fall back to single ones.
    pub(crate) fn uses_sas(&self) -> bool {
        matches!(self.credential, AzureCredential::SASToken(_))
    }

    fn signed(&self, method: Method) -> Result<HttpRequest, StorageError> {
        let mut url = self.container_url.clone();
        url.query_pairs_mut().append_pair("restype", "container");
        self.signed_url(method, &url)
    }

    fn signed_url(&self, method: Method, url: &url::Url) -> Result<HttpRequest, StorageError> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(http::header::CONTENT_LENGTH, "0")
            .body(HttpRequestBody::empty())
            .map_err(|e| StorageError::Other(format!("building a request: {e}")))?;
        AzureAuthorizer::new(&self.credential, &self.account)
            .try_authorize(&mut req)
            .map_err(|e| StorageError::Other(format!("signing a request: {e}")))?;
        Ok(req)
    }

    /// Delete Blob, one request. `object_store`'s delete goes through the Blob Batch API,
    /// which Azurite refuses (500) with a SAS; a plain DELETE works with a key or a SAS
    /// everywhere. A missing blob is success; a missing container is
    /// [`StorageError::NotFound`].
    pub(crate) async fn delete_blob(&self, key: &str, ctx: &Ctx<'_>) -> Result<(), StorageError> {
        let mut url = self.container_url.clone();
        url.path_segments_mut()
            .map_err(|_| StorageError::Config("Azure endpoint cannot be a base URL".to_string()))?
            .extend(key.split('/'));
        let doing = format!("deleting {key:?}");
        let reply = ctx
            .send(&doing, self.signed_url(Method::DELETE, &url)?)
            .await?;
        if reply.status.is_success() {
            return Ok(());
        }
        let (code, _) = reply.xml_error();
        let text = format!("{doing} failed: {}", reply.describe_xml());
        match (reply.status, code.as_deref()) {
            (StatusCode::NOT_FOUND, Some("ContainerNotFound")) => Err(StorageError::NotFound(
                ctx.redactor.redact(&format!("{}: {text}", ctx.label)),
            )),
            (StatusCode::NOT_FOUND, _) => Ok(()),
            (StatusCode::FORBIDDEN, _) => Err(StorageError::AccessDenied(
                ctx.redactor.redact(&format!("{}: {text}", ctx.label)),
            )),
            _ => Err(ctx.rejected(text)),
        }
    }

    pub(crate) async fn container_exists(&self, ctx: &Ctx<'_>) -> Result<bool, StorageError> {
        let reply = ctx
            .send("Get Container Properties", self.signed(Method::GET)?)
            .await?;
        match reply.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(ctx.other(format!(
                "Get Container Properties failed: {}",
                reply.describe_xml()
            ))),
        }
    }

    pub(crate) async fn create_container(&self, ctx: &Ctx<'_>) -> Result<(), StorageError> {
        let reply = ctx
            .send("Create Container", self.signed(Method::PUT)?)
            .await?;
        if reply.status.is_success() || reply.status == StatusCode::CONFLICT {
            // 409 ContainerAlreadyExists (the original's CreateIfNotExists treats it as OK).
            let (code, _) = reply.xml_error();
            if reply.status.is_success() || code.as_deref() == Some("ContainerAlreadyExists") {
                return Ok(());
            }
        }
        let (code, _) = reply.xml_error();
        let text = format!("Create Container failed: {}", reply.describe_xml());
        match code.as_deref() {
            Some(
                "AuthorizationFailure"
                | "AuthorizationPermissionMismatch"
                | "AuthorizationResourceTypeMismatch"
                | "InsufficientAccountPermissions",
            ) => Err(StorageError::AccessDenied(
                ctx.redactor.redact(&format!("{}: {text}", ctx.label)),
            )),
            _ => Err(ctx.other(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls() {
        let d = AzureEndpoint::default();
        assert_eq!(
            service_url("acct", &d).unwrap().as_str(),
            "https://acct.blob.core.windows.net/"
        );
        let d = AzureEndpoint::Domain("core.chinacloudapi.cn".into());
        assert_eq!(
            service_url("acct", &d).unwrap().as_str(),
            "https://acct.blob.core.chinacloudapi.cn/"
        );
        assert!(service_url("acct", &AzureEndpoint::Domain("http://x".into())).is_err());
        let u = AzureEndpoint::Url("http://127.0.0.1:10000/devstoreaccount1/".into());
        let svc = service_url("devstoreaccount1", &u).unwrap();
        assert_eq!(
            container_url(&svc, "backups").unwrap().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/backups"
        );
    }

    #[test]
    fn sas_tokens_are_split_and_decoded() {
        let pairs = sas_pairs("sv=2022-11-02&ss=b&sig=ab%2Bc%3D%3D").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("sv".to_string(), "2022-11-02".to_string()),
                ("ss".to_string(), "b".to_string()),
                ("sig".to_string(), "ab+c==".to_string()),
            ]
        );
        let e = sas_pairs("sv=1&secretish").unwrap_err().to_string();
        assert!(!e.contains("secretish"), "{e}");
    }

    #[test]
    fn a_sas_without_signature_is_refused_without_echoing_it() {
        let s = AzureSettings {
            account: "a".into(),
            access_key: String::new(),
            container: "c".into(),
            endpoint: AzureEndpoint::default(),
            sas_token: Some("?sv=2022-11-02&se=secretish".into()),
        };
        let e = super::super::ObjectDestination::new(super::super::StoreSettings::Azure(s.clone()))
            .unwrap_err();
        assert!(e.to_string().contains("no signature"), "{e}");
        assert!(!e.to_string().contains("secretish"), "{e}");
        assert!(!format!("{s:?}").contains("secretish"));
        let ok = AzureSettings {
            sas_token: Some("?sv=2022-11-02&sig=secretish".into()),
            ..s
        };
        let d =
            super::super::ObjectDestination::new(super::super::StoreSettings::Azure(ok)).unwrap();
        assert!(!format!("{d:?}").contains("secretish"));
    }

    #[test]
    fn a_bad_key_is_a_config_error_without_the_key() {
        let s = AzureSettings {
            account: "a".into(),
            access_key: "not base64 !!! secretish".into(),
            container: "c".into(),
            endpoint: AzureEndpoint::default(),
            sas_token: None,
        };
        let e = super::super::ObjectDestination::new(super::super::StoreSettings::Azure(s))
            .unwrap_err();
        assert!(matches!(e, StorageError::Config(_)));
        assert!(!e.to_string().contains("secretish"), "{e}");
    }
}
