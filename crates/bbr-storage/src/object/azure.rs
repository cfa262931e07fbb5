//! Azure Blob Storage: service URL, the `object_store` client, and hand-signed (SharedKey)
//! container calls.

use std::sync::Arc;

use http::{Method, StatusCode};
use object_store::ObjectStore;
use object_store::azure::{
    AzureAccessKey, AzureAuthorizer, AzureCredential, MicrosoftAzure, MicrosoftAzureBuilder,
};
use object_store::client::{HttpRequest, HttpRequestBody};

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
        let key = AzureAccessKey::try_new(&s.access_key).map_err(|_| {
            StorageError::Config(format!(
                "Azure container {:?}: the storage access key is not valid base64",
                s.container
            ))
        })?;
        let service = service_url(&s.account, &s.endpoint)?;
        let container_url = container_url(&service, &s.container)?;
        let opts = common::client_options(None)?;
        let redactor = Redactor::new([s.access_key.clone()]);
        let store = MicrosoftAzureBuilder::new()
            .with_account(&s.account)
            .with_access_key(&s.access_key)
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
                credential: AzureCredential::AccessKey(key),
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

    fn signed(&self, method: Method) -> Result<HttpRequest, StorageError> {
        let mut url = self.container_url.clone();
        url.query_pairs_mut().append_pair("restype", "container");
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
    fn a_bad_key_is_a_config_error_without_the_key() {
        let s = AzureSettings {
            account: "a".into(),
            access_key: "not base64 !!! secretish".into(),
            container: "c".into(),
            endpoint: AzureEndpoint::default(),
        };
        let e = super::super::ObjectDestination::new(super::super::StoreSettings::Azure(s))
            .unwrap_err();
        assert!(matches!(e, StorageError::Config(_)));
        assert!(!e.to_string().contains("secretish"), "{e}");
    }
}
