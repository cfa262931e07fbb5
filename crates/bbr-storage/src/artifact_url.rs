//! Artifact locations in an object store, and the store settings for them taken from the
//! standard environment of each cloud's own CLI.
//!
//! # Which `--artifact-path` values are URLs
//!
//! Text is a URL exactly when it starts with a URL scheme followed by `://` (`[A-Za-z]`
//! then `[A-Za-z0-9+.-]*`). Anything else is a local path ([`ArtifactUrlError::NotAUrl`],
//! or `Ok(None)` from [`ArtifactUrl::classify`]); a local directory whose name looks like a
//! URL is written `./s3://…`. The supported schemes are `s3://BUCKET/PREFIX`,
//! `az://CONTAINER/PREFIX` (also `azure://`, shown as `az://`) and `gs://BUCKET/PREFIX`,
//! case-insensitive; any other scheme is [`ArtifactUrlError::UnsupportedScheme`].
//!
//! The prefix may be empty. It is normalised like object keys ([`crate::object::normalize_key`]):
//! repeated, leading and trailing slashes and `.` segments are dropped; `..` segments and
//! control characters are refused. Nothing is percent-decoded. A query string or fragment
//! (`?…`, `#…`: where a SAS token or signed URL would go) and user info (`user:pass@`) are
//! refused, and the URL quoted in such errors has them replaced by `<redacted>`. Bucket and
//! container names follow each store's current naming rules (S3: 3–63 of `a-z 0-9 . -`,
//! no `..`, not an IPv4 address; Azure: 3–63 of `a-z 0-9 -`, no `--`; GCS: 3–63, or up to
//! 222 with dots, of `a-z 0-9 - _ .`, no `goog` prefix), each starting and ending with a
//! letter or digit.
//!
//! # Environment
//!
//! [`store_settings`] reads a [`CloudEnv`] (the process environment through
//! [`CloudEnv::from_process`], or any map in tests); an empty variable counts as unset.
//!
//! - **S3**: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (both required),
//!   `AWS_SESSION_TOKEN` (temporary credentials), region from `AWS_REGION`, else
//!   `AWS_DEFAULT_REGION`, else `us-east-1`; endpoint from `AWS_ENDPOINT_URL_S3`, else
//!   `AWS_ENDPOINT_URL` (an `http://` or `https://` URL; both ignored when
//!   `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), addressed path-style
//!   (`<endpoint>/<bucket>`); `AWS_CA_BUNDLE`, a PEM file of extra trusted CAs. Profiles,
//!   `~/.aws` files and instance roles are not read.
//! - **Azure**: `AZURE_STORAGE_CONNECTION_STRING` when set, alone (`AccountName`,
//!   `AccountKey`, `SharedAccessSignature`, `BlobEndpoint`, `DefaultEndpointsProtocol`,
//!   `EndpointSuffix`, `UseDevelopmentStorage=true` for Azurite's well-known account;
//!   other keys ignored). Otherwise `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_KEY` (wins)
//!   or `AZURE_STORAGE_SAS_TOKEN`, and `AZURE_STORAGE_BLOB_ENDPOINT`, a full blob service
//!   URL (Azurite: `http://127.0.0.1:10000/devstoreaccount1`), else
//!   `https://<account>.blob.core.windows.net`.
//! - **GCS**: `STORAGE_EMULATOR_HOST` (`host:port`, taken as `http://`, or a URL) means an
//!   emulator such as fake-gcs-server, reached without credentials (as Google's client
//!   libraries do; `GOOGLE_APPLICATION_CREDENTIALS` is then not read). Otherwise
//!   `GOOGLE_APPLICATION_CREDENTIALS` names a service-account key file (JSON).
//!
//! Missing credentials give [`StoreEnvError::MissingCredentials`] naming the variables to
//! set. No error or `Debug` output contains a key, secret, session token, SAS token or
//! private key: values of those variables are never quoted, and [`CloudEnv`]'s `Debug`
//! shows variable names only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::StorageError;
use crate::object::{AzureEndpoint, AzureSettings, GcsSettings, S3Settings, StoreSettings};

/// Azurite's well-known development account (`UseDevelopmentStorage=true`).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known (public) account key.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's default blob service URL.
const AZURITE_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// The region used when neither `AWS_REGION` nor `AWS_DEFAULT_REGION` is set.
pub const DEFAULT_AWS_REGION: &str = "us-east-1";

/// Every environment variable [`store_settings`] reads.
pub const VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CA_BUNDLE",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_BLOB_ENDPOINT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_EMULATOR_HOST",
];

/// Which store a URL points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// `s3://`: Amazon S3 or an S3-compatible store.
    S3,
    /// `az://` or `azure://`: Azure Blob Storage.
    Azure,
    /// `gs://`: Google Cloud Storage.
    Gcs,
}

impl StoreKind {
    /// The scheme as displayed: `s3`, `az`, `gs`.
    pub fn scheme(self) -> &'static str {
        match self {
            StoreKind::S3 => "s3",
            StoreKind::Azure => "az",
            StoreKind::Gcs => "gs",
        }
    }

    /// `S3`, `Azure`, `GCS`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::S3 => "S3",
            StoreKind::Azure => "Azure",
            StoreKind::Gcs => "GCS",
        }
    }

    fn bucket_word(self) -> &'static str {
        match self {
            StoreKind::Azure => "container",
            _ => "bucket",
        }
    }
}

/// A parsed artifact location: store, bucket (container) and normalised prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactUrl {
    kind: StoreKind,
    bucket: String,
    prefix: String,
}

/// Why text is not a usable artifact URL. Every variant but [`NotAUrl`](Self::NotAUrl)
/// quotes the URL, with user info, query and fragment replaced by `<redacted>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactUrlError {
    /// Not a URL at all: the caller treats the text as a local path.
    #[error("{text:?} is not a URL")]
    NotAUrl {
        /// The text as given.
        text: String,
    },
    /// A URL of a scheme other than `s3`, `az`, `azure`, `gs`.
    #[error(
        "{url}: unsupported artifact URL scheme {scheme:?} (use s3://, az://, azure:// or gs://)"
    )]
    UnsupportedScheme {
        /// The URL (redacted).
        url: String,
        /// The scheme as written.
        scheme: String,
    },
    /// No bucket / container after the scheme.
    #[error("{url}: the URL names no {what}")]
    MissingBucket {
        /// The URL (redacted).
        url: String,
        /// `bucket` or `container`.
        what: &'static str,
    },
    /// A bucket / container name the store would refuse.
    #[error("{url}: {bucket:?} is not a valid {store} {what} name: {reason}")]
    InvalidBucket {
        /// The URL (redacted).
        url: String,
        /// The name as written.
        bucket: String,
        /// `S3`, `Azure`, `GCS`.
        store: &'static str,
        /// `bucket` or `container`.
        what: &'static str,
        /// Which rule it breaks.
        reason: String,
    },
    /// A prefix with `..` segments or control characters.
    #[error("{url}: invalid prefix: {reason}")]
    InvalidPrefix {
        /// The URL (redacted).
        url: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A query string or fragment (`?…`, `#…`).
    #[error("{url}: an artifact URL must not have a query string or fragment")]
    QueryOrFragment {
        /// The URL (redacted).
        url: String,
    },
    /// User info (`user:password@`) before the bucket.
    #[error("{url}: an artifact URL must not contain credentials; they come from the environment")]
    Credentials {
        /// The URL (redacted).
        url: String,
    },
}

/// Whether `text` starts with `scheme://`; returns the scheme.
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
    .then_some(scheme)
}

/// `text` with user info, query and fragment replaced by `<redacted>`, for error messages.
pub fn redact_url_text(text: &str) -> String {
    let (main, tail) = match text.find(['?', '#']) {
        Some(i) => (&text[..i], Some(&text[i..i + 1])),
        None => (text, None),
    };
    let mut out = match main.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://<redacted>@{host}{path}"),
                None => main.to_string(),
            }
        }
        None => main.to_string(),
    };
    if let Some(mark) = tail {
        out.push_str(mark);
        out.push_str("<redacted>");
    }
    out
}

impl ArtifactUrl {
    /// Parse `s3://BUCKET/PREFIX`, `az://CONTAINER/PREFIX`, `azure://CONTAINER/PREFIX` or
    /// `gs://BUCKET/PREFIX` (see the [module docs](self) for the rules). Text that is not a
    /// URL at all is [`ArtifactUrlError::NotAUrl`].
    pub fn parse(text: &str) -> Result<ArtifactUrl, ArtifactUrlError> {
        let Some(scheme) = url_scheme(text) else {
            return Err(ArtifactUrlError::NotAUrl {
                text: text.to_string(),
            });
        };
        let url = redact_url_text(text);
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "s3" => StoreKind::S3,
            "az" | "azure" => StoreKind::Azure,
            "gs" => StoreKind::Gcs,
            _ => {
                return Err(ArtifactUrlError::UnsupportedScheme {
                    url,
                    scheme: scheme.to_string(),
                });
            }
        };
        let rest = &text[scheme.len() + 3..];
        if rest.contains(['?', '#']) {
            return Err(ArtifactUrlError::QueryOrFragment { url });
        }
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains('@') {
            return Err(ArtifactUrlError::Credentials { url });
        }
        if bucket.is_empty() {
            return Err(ArtifactUrlError::MissingBucket {
                url,
                what: kind.bucket_word(),
            });
        }
        let valid = match kind {
            StoreKind::S3 => s3_bucket_rule(bucket),
            StoreKind::Azure => azure_container_rule(bucket),
            StoreKind::Gcs => gcs_bucket_rule(bucket),
        };
        if let Err(reason) = valid {
            return Err(ArtifactUrlError::InvalidBucket {
                url,
                bucket: bucket.to_string(),
                store: kind.name(),
                what: kind.bucket_word(),
                reason: reason.to_string(),
            });
        }
        let prefix = normalize_prefix(path).map_err(|reason| ArtifactUrlError::InvalidPrefix {
            url: url.clone(),
            reason: reason.to_string(),
        })?;
        Ok(ArtifactUrl {
            kind,
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// `Ok(None)` for a local path, `Ok(Some(url))` for a valid artifact URL, an error for
    /// an invalid or unsupported URL.
    pub fn classify(text: &str) -> Result<Option<ArtifactUrl>, ArtifactUrlError> {
        match ArtifactUrl::parse(text) {
            Ok(u) => Ok(Some(u)),
            Err(ArtifactUrlError::NotAUrl { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Which store.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The bucket (S3, GCS) or container (Azure).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The normalised prefix, without leading or trailing `/`; empty for the bucket's root.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full object key of `relative` under the prefix (normalised like every key:
    /// `..` refused). An empty `relative` is the prefix itself (refused if that is empty too).
    pub fn key(&self, relative: &str) -> Result<String, StorageError> {
        crate::object::normalize_key(&format!("{}/{relative}", self.prefix))
    }

    /// This URL with `relative` appended to the prefix, e.g. the URL of one artifact
    /// directory below the URL given on the command line.
    pub fn join(&self, relative: &str) -> Result<ArtifactUrl, StorageError> {
        let prefix = if format!("{}/{relative}", self.prefix)
            .trim_matches('/')
            .is_empty()
        {
            String::new()
        } else {
            self.key(relative)?
        };
        Ok(ArtifactUrl {
            prefix,
            ..self.clone()
        })
    }
}

impl fmt::Display for ArtifactUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.kind.scheme(), self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ArtifactUrl {
    type Err = ArtifactUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ArtifactUrl::parse(s)
    }
}

fn normalize_prefix(path: &str) -> Result<String, &'static str> {
    if path.chars().any(|c| c.is_control()) {
        return Err("control characters are not allowed");
    }
    let mut parts = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err("\"..\" segments are not allowed"),
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

fn starts_and_ends_alnum(name: &str) -> bool {
    let ok = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    ok(name.bytes().next()) && ok(name.bytes().last())
}

fn s3_bucket_rule(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("it must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("only lower-case letters, digits, '.' and '-' are allowed");
    }
    if !starts_and_ends_alnum(name) {
        return Err("it must start and end with a letter or digit");
    }
    if name.contains("..") {
        return Err("it must not contain \"..\"");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("it must not be an IP address");
    }
    Ok(())
}

fn azure_container_rule(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("it must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("only lower-case letters, digits and '-' are allowed");
    }
    if !starts_and_ends_alnum(name) {
        return Err("it must start and end with a letter or digit");
    }
    if name.contains("--") {
        return Err("it must not contain \"--\"");
    }
    Ok(())
}

fn gcs_bucket_rule(name: &str) -> Result<(), &'static str> {
    let max = if name.contains('.') { 222 } else { 63 };
    if name.len() < 3 || name.len() > max {
        return Err("it must be 3 to 63 characters long (222 with dots)");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("only lower-case letters, digits, '-', '_' and '.' are allowed");
    }
    if !starts_and_ends_alnum(name) {
        return Err("it must start and end with a letter or digit");
    }
    if name.split('.').any(|c| c.is_empty() || c.len() > 63) {
        return Err("each dot-separated part must be 1 to 63 characters long");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("it must not be an IP address");
    }
    if name.starts_with("goog") {
        return Err("it must not start with \"goog\"");
    }
    Ok(())
}

/// The environment the store settings are resolved from: variable name → value. Values are
/// never shown by `Debug` (only the names of the variables that are set).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloudEnv {
    vars: BTreeMap<String, String>,
}

impl fmt::Debug for CloudEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudEnv")
            .field("set", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CloudEnv {
    /// The [`VARIABLES`] of the process environment (non-UTF-8 values count as unset).
    pub fn from_process() -> CloudEnv {
        CloudEnv::from_pairs(
            VARIABLES
                .iter()
                .filter_map(|name| std::env::var(name).ok().map(|v| (*name, v))),
        )
    }

    /// An environment of exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> CloudEnv {
        CloudEnv {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Set (or replace) one variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// The value of `name`, `None` when unset or empty (blank).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// Why no store settings could be made from the environment. Names the URL and the
/// variables involved; never quotes a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreEnvError {
    /// None of the credential variables is set.
    #[error("{url}: no {store} credentials in the environment: set {set}")]
    MissingCredentials {
        /// The artifact URL.
        url: String,
        /// `S3`, `Azure`, `GCS`.
        store: &'static str,
        /// What to set.
        set: &'static str,
    },
    /// One half of a pair is set, the other not.
    #[error("{url}: {present} is set but {missing} is not")]
    Incomplete {
        /// The artifact URL.
        url: String,
        /// The variable that is set.
        present: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// A variable's value cannot work.
    #[error("{url}: {var}: {reason}")]
    InvalidVariable {
        /// The artifact URL.
        url: String,
        /// The variable.
        var: &'static str,
        /// Why (quotes the value only for non-secret variables).
        reason: String,
    },
    /// A file named by a variable cannot be read.
    #[error("{url}: {var}: reading {}: {source}", path.display())]
    ReadFile {
        /// The artifact URL.
        url: String,
        /// The variable.
        var: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The settings were refused by the store client (malformed key, bad PEM, …).
    #[error("{url}: {source}")]
    Store {
        /// The artifact URL.
        url: String,
        /// The underlying error.
        #[source]
        source: StorageError,
    },
}

/// The store settings for `url` from `env` (see the [module docs](self)). Reads the files
/// that `AWS_CA_BUNDLE` and `GOOGLE_APPLICATION_CREDENTIALS` name; no network I/O.
pub fn store_settings(url: &ArtifactUrl, env: &CloudEnv) -> Result<StoreSettings, StoreEnvError> {
    let shown = url.to_string();
    match url.kind {
        StoreKind::S3 => s3_settings(&shown, &url.bucket, env).map(StoreSettings::S3),
        StoreKind::Azure => azure_settings(&shown, &url.bucket, env).map(StoreSettings::Azure),
        StoreKind::Gcs => gcs_settings(&shown, &url.bucket, env).map(StoreSettings::Gcs),
    }
}

/// An `http://` or `https://` URL with a host and nothing secret in it. The value is never
/// quoted (it might carry user info).
fn http_url(url: &str, var: &'static str, value: &str) -> Result<String, StoreEnvError> {
    let invalid = |reason: &str| StoreEnvError::InvalidVariable {
        url: url.to_string(),
        var,
        reason: reason.to_string(),
    };
    let value = value.trim();
    let parsed = url::Url::parse(value).map_err(|e| invalid(&format!("not a valid URL ({e})")))?;
    match crate::object::endpoint_problem(&parsed) {
        Some(reason) => Err(invalid(reason)),
        None => Ok(value.trim_end_matches('/').to_string()),
    }
}

fn read_file(url: &str, var: &'static str, path: &str) -> Result<String, StoreEnvError> {
    std::fs::read_to_string(path).map_err(|source| StoreEnvError::ReadFile {
        url: url.to_string(),
        var,
        path: PathBuf::from(path),
        source,
    })
}

fn s3_settings(url: &str, bucket: &str, env: &CloudEnv) -> Result<S3Settings, StoreEnvError> {
    let (id, secret) = match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => (id, secret),
        (None, None) => {
            return Err(StoreEnvError::MissingCredentials {
                url: url.to_string(),
                store: "S3",
                set: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for \
                      temporary credentials); AWS profiles, ~/.aws files and instance roles \
                      are not read",
            });
        }
        (Some(_), None) => {
            return Err(StoreEnvError::Incomplete {
                url: url.to_string(),
                present: "AWS_ACCESS_KEY_ID",
                missing: "AWS_SECRET_ACCESS_KEY",
            });
        }
        (None, Some(_)) => {
            return Err(StoreEnvError::Incomplete {
                url: url.to_string(),
                present: "AWS_SECRET_ACCESS_KEY",
                missing: "AWS_ACCESS_KEY_ID",
            });
        }
    };
    let (region_var, region) = match (env.get("AWS_REGION"), env.get("AWS_DEFAULT_REGION")) {
        (Some(r), _) => ("AWS_REGION", r.trim()),
        (None, Some(r)) => ("AWS_DEFAULT_REGION", r.trim()),
        (None, None) => ("", DEFAULT_AWS_REGION),
    };
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(StoreEnvError::InvalidVariable {
            url: url.to_string(),
            var: region_var,
            reason: format!("{region:?} is not a region name (like us-east-1)"),
        });
    }
    let ignore_endpoints = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let endpoint_var = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find(|v| env.get(v).is_some())
        .filter(|_| !ignore_endpoints);
    let endpoint = endpoint_var
        .map(|var| http_url(url, var, env.get(var).unwrap_or_default()))
        .transpose()?;
    let ca_cert_pem = match env.get("AWS_CA_BUNDLE") {
        Some(path) => {
            let pem = read_file(url, "AWS_CA_BUNDLE", path)?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(StoreEnvError::InvalidVariable {
                    url: url.to_string(),
                    var: "AWS_CA_BUNDLE",
                    reason: format!("{path} holds no PEM certificate"),
                });
            }
            Some(pem)
        }
        None => None,
    };
    Ok(S3Settings {
        bucket: bucket.to_string(),
        region: Some(region.to_string()),
        force_path_style: endpoint.is_some(),
        endpoint,
        access_key_id: id.trim().to_string(),
        secret_access_key: secret.trim().to_string(),
        session_token: env.get("AWS_SESSION_TOKEN").map(|t| t.trim().to_string()),
        ca_cert_pem,
    })
}

/// What an Azure connection string holds (secrets never printed).
#[derive(Default)]
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    blob_endpoint: Option<String>,
    protocol: Option<String>,
    suffix: Option<String>,
    development: bool,
}

const CONN_VAR: &str = "AZURE_STORAGE_CONNECTION_STRING";

fn parse_connection_string(url: &str, text: &str) -> Result<ConnectionString, StoreEnvError> {
    let invalid = |reason: String| StoreEnvError::InvalidVariable {
        url: url.to_string(),
        var: CONN_VAR,
        reason,
    };
    let mut cs = ConnectionString::default();
    for (i, part) in text.split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(invalid(format!("element {} is not Key=Value", i + 1)));
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "accountname" => cs.account = Some(v),
            "accountkey" => cs.key = Some(v),
            "sharedaccesssignature" => cs.sas = Some(v),
            "blobendpoint" => cs.blob_endpoint = Some(v),
            "defaultendpointsprotocol" => cs.protocol = Some(v.to_ascii_lowercase()),
            "endpointsuffix" => cs.suffix = Some(v),
            "usedevelopmentstorage" => cs.development = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    if cs.development {
        if cs.account.is_none() {
            cs.account = Some(AZURITE_ACCOUNT.to_string());
        }
        if cs.key.is_none() && cs.sas.is_none() {
            cs.key = Some(AZURITE_KEY.to_string());
        }
        if cs.blob_endpoint.is_none() {
            cs.blob_endpoint = Some(AZURITE_BLOB_ENDPOINT.to_string());
        }
    }
    Ok(cs)
}

/// The account named by a blob endpoint: `https://ACCOUNT.blob.…` or `http://host/ACCOUNT`.
fn account_from_endpoint(endpoint: &str) -> Option<String> {
    let u = url::Url::parse(endpoint).ok()?;
    let host = u.host_str()?;
    if let Some((first, rest)) = host.split_once('.')
        && rest.starts_with("blob.")
    {
        return Some(first.to_string());
    }
    u.path_segments()?
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

fn check_account(url: &str, var: &'static str, account: &str) -> Result<(), StoreEnvError> {
    let ok = (3..=24).contains(&account.len())
        && account
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreEnvError::InvalidVariable {
            url: url.to_string(),
            var,
            reason: format!(
                "{account:?} is not a storage account name (3 to 24 lower-case letters and digits)"
            ),
        })
    }
}

fn azure_settings(
    url: &str,
    container: &str,
    env: &CloudEnv,
) -> Result<AzureSettings, StoreEnvError> {
    if let Some(text) = env.get(CONN_VAR) {
        let cs = parse_connection_string(url, text)?;
        let endpoint = match &cs.blob_endpoint {
            Some(e) => Some(http_url(url, CONN_VAR, e)?),
            None => None,
        };
        let account = cs
            .account
            .clone()
            .or_else(|| endpoint.as_deref().and_then(account_from_endpoint))
            .ok_or_else(|| StoreEnvError::InvalidVariable {
                url: url.to_string(),
                var: CONN_VAR,
                reason: "it names no AccountName".to_string(),
            })?;
        check_account(url, CONN_VAR, &account)?;
        if cs.key.is_none() && cs.sas.is_none() {
            return Err(StoreEnvError::InvalidVariable {
                url: url.to_string(),
                var: CONN_VAR,
                reason: "it has neither AccountKey nor SharedAccessSignature".to_string(),
            });
        }
        let endpoint = match endpoint {
            Some(e) => e,
            None => {
                let protocol = cs.protocol.as_deref().unwrap_or("https");
                if !matches!(protocol, "http" | "https") {
                    return Err(StoreEnvError::InvalidVariable {
                        url: url.to_string(),
                        var: CONN_VAR,
                        reason: format!(
                            "DefaultEndpointsProtocol {protocol:?} is neither http nor https"
                        ),
                    });
                }
                let suffix = cs
                    .suffix
                    .as_deref()
                    .unwrap_or("core.windows.net")
                    .trim_matches(|c| c == '.' || c == '/');
                http_url(
                    url,
                    CONN_VAR,
                    &format!("{protocol}://{account}.blob.{suffix}"),
                )?
            }
        };
        return Ok(AzureSettings {
            account,
            access_key: cs.key.unwrap_or_default(),
            sas_token: cs.sas,
            container: container.to_string(),
            endpoint: AzureEndpoint::Url(endpoint),
        });
    }
    let key = env.get("AZURE_STORAGE_KEY");
    let sas = env.get("AZURE_STORAGE_SAS_TOKEN");
    let Some(account) = env.get("AZURE_STORAGE_ACCOUNT").map(str::trim) else {
        return Err(match (key, sas) {
            (None, None) => StoreEnvError::MissingCredentials {
                url: url.to_string(),
                store: "Azure",
                set: "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, \
                      or AZURE_STORAGE_CONNECTION_STRING",
            },
            (Some(_), _) => StoreEnvError::Incomplete {
                url: url.to_string(),
                present: "AZURE_STORAGE_KEY",
                missing: "AZURE_STORAGE_ACCOUNT",
            },
            (None, Some(_)) => StoreEnvError::Incomplete {
                url: url.to_string(),
                present: "AZURE_STORAGE_SAS_TOKEN",
                missing: "AZURE_STORAGE_ACCOUNT",
            },
        });
    };
    check_account(url, "AZURE_STORAGE_ACCOUNT", account)?;
    if key.is_none() && sas.is_none() {
        return Err(StoreEnvError::Incomplete {
            url: url.to_string(),
            present: "AZURE_STORAGE_ACCOUNT",
            missing: "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN",
        });
    }
    let endpoint = match env.get("AZURE_STORAGE_BLOB_ENDPOINT") {
        Some(e) => AzureEndpoint::Url(http_url(url, "AZURE_STORAGE_BLOB_ENDPOINT", e)?),
        None => AzureEndpoint::default(),
    };
    Ok(AzureSettings {
        account: account.to_string(),
        access_key: key.map(|k| k.trim().to_string()).unwrap_or_default(),
        sas_token: if key.is_none() {
            sas.map(|s| s.trim().to_string())
        } else {
            None
        },
        container: container.to_string(),
        endpoint,
    })
}

fn gcs_settings(url: &str, bucket: &str, env: &CloudEnv) -> Result<GcsSettings, StoreEnvError> {
    if let Some(host) = env.get("STORAGE_EMULATOR_HOST") {
        let host = host.trim();
        let with_scheme = if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        };
        let endpoint = http_url(url, "STORAGE_EMULATOR_HOST", &with_scheme)?;
        return Ok(GcsSettings {
            bucket: bucket.to_string(),
            project_id: String::new(),
            service_account_json: String::new(),
            endpoint: Some(endpoint),
            anonymous: true,
        });
    }
    let Some(path) = env.get("GOOGLE_APPLICATION_CREDENTIALS") else {
        return Err(StoreEnvError::MissingCredentials {
            url: url.to_string(),
            store: "GCS",
            set: "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or \
                  STORAGE_EMULATOR_HOST for an emulator such as fake-gcs-server)",
        });
    };
    const VAR: &str = "GOOGLE_APPLICATION_CREDENTIALS";
    let json = read_file(url, VAR, path)?;
    let invalid = |reason: String| StoreEnvError::InvalidVariable {
        url: url.to_string(),
        var: VAR,
        reason,
    };
    // serde_json's messages give a position, never the input.
    let value: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| invalid(format!("{path} is not valid JSON ({e})")))?;
    match value.get("type").and_then(|t| t.as_str()) {
        Some("service_account") => {}
        Some(other) => {
            return Err(invalid(format!(
                "{path} holds {other:?} credentials; only service-account key files \
                 (\"type\": \"service_account\") are supported"
            )));
        }
        None => {
            return Err(invalid(format!(
                "{path} is not a service-account key file (no \"type\")"
            )));
        }
    }
    Ok(GcsSettings {
        bucket: bucket.to_string(),
        project_id: value
            .get("project_id")
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_string(),
        service_account_json: json,
        endpoint: None,
        anonymous: false,
    })
}

#[cfg(test)]
mod tests;
