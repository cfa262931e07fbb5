//! The YAML configuration file (`backup.yml`), as the BOSH job renders it
//! (docs/service-backup.md#configuration).
//!
//! Parsing is lenient like the Go daemon's `yaml.v2`: unknown keys are ignored, but reported
//! (see [`Config::warnings`]); the keys the release still renders but the daemon never used
//! (`aws_cli_path`, `azure_cli_path`, `backup_user`, `missing_properties_message`) are accepted
//! silently. Types are strict where Go was: `destinations` must be a list and
//! `exit_if_in_progress` a YAML boolean (a quoted `"true"` is an error).
//!
//! Unlike the original, the file is validated before anything runs: [`Config::validate_source`] (a
//! `source_folder` is required when there are destinations) and [`Config::destinations`] (known
//! `type`, a `config` map and the per-type required keys of the BOSH template,
//! docs/service-backup.md#configuration) return clear errors instead of failing (or panicking) at
//! backup time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{0}")]
    Read(String),
    /// The file is not valid YAML for this schema.
    #[error("{0}")]
    Unmarshal(String),
    /// The file parsed, but a required top-level value is missing or invalid.
    #[error("{0}")]
    Invalid(String),
    /// A destination is unusable (unknown type, missing keys, wrong value types).
    #[error("{0}")]
    Destination(String),
}

/// What is wrong with one destination entry (reported as `destination <n>[ (<name>)]: ...`
/// inside [`ConfigError::Destination`]).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum DestinationConfigError {
    /// No `type`.
    #[error("Missing type for destination")]
    MissingType,
    /// A `type` this program does not know.
    #[error("unknown destination type: {0}")]
    UnknownType(String),
    /// No `config` block for the type.
    #[error("Missing config for {0}")]
    MissingConfig(String),
    /// Missing keys (`Missing values for <type>: a, b`) and invalid values, in that order.
    #[error("{}", .0.join(", "))]
    Values(Vec<String>),
}

/// The `alerts` block (service-alerts-client layout).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AlertsConfig {
    /// Used in the subject and body.
    pub product_name: String,
    /// Where and how to send the notification.
    pub config: AlertsClientConfig,
}

/// `alerts.config`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AlertsClientConfig {
    /// The Cloud Controller and the user whose token looks up the org and space.
    pub cloud_controller: CloudControllerConfig,
    /// The notifications service and its UAA client.
    pub notifications: NotificationsConfig,
    /// Bound on the whole alert (all retries); 0 means 60.
    pub timeout_seconds: u64,
    /// Disable TLS verification for all alert requests.
    #[serde(deserialize_with = "strict_bool")]
    pub skip_ssl_validation: Option<bool>,
}

/// `alerts.config.cloud_controller`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct CloudControllerConfig {
    /// Base URL of the Cloud Controller API.
    pub url: String,
    /// CF user name.
    pub user: String,
    /// CF user password.
    pub password: String,
}

/// `alerts.config.notifications`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct NotificationsConfig {
    /// Base URL of the notifications service.
    pub service_url: String,
    /// Org of the space that receives the email.
    pub cf_org: String,
    /// Space that receives the email.
    pub cf_space: String,
    /// Optional reply-to address.
    pub reply_to: String,
    /// UAA client for the notifications service.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

/// A YAML boolean as `yaml.v2` reads it into a Go `bool`: `true`/`false` and the YAML 1.1
/// spellings (`yes`, `on`, ...), but never a quoted string such as `"true"`.
fn strict_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an unquoted YAML boolean (true or false)")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            strict_bool(d)
        }
    }
    d.deserialize_any(Visitor)
}

#[derive(Debug, Deserialize)]
struct RawDestination {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    config: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawConfig {
    destinations: Option<Vec<RawDestination>>,
    source_folder: Option<String>,
    source_executable: Option<String>,
    cron_schedule: Option<String>,
    cleanup_executable: Option<String>,
    source_executable_timeout: Option<String>,
    cleanup_executable_timeout: Option<String>,
    #[serde(deserialize_with = "strict_bool")]
    exit_if_in_progress: Option<bool>,
    service_identifier_executable: Option<String>,
    deployment_name: Option<String>,
    #[serde(deserialize_with = "strict_bool")]
    add_deployment_name_to_backup_path: Option<bool>,
    alerts: Option<AlertsConfig>,
    state_dir: Option<String>,
    metrics_file: Option<String>,
    // Inert keys, accepted for compatibility with the release's rendering.
    #[allow(dead_code)]
    aws_cli_path: Option<String>,
    #[allow(dead_code)]
    azure_cli_path: Option<String>,
    #[allow(dead_code)]
    backup_user: Option<String>,
    #[allow(dead_code)]
    missing_properties_message: Option<String>,
}

const KNOWN_KEYS: &[&str] = &[
    "destinations",
    "source_folder",
    "source_executable",
    "cron_schedule",
    "cleanup_executable",
    "source_executable_timeout",
    "cleanup_executable_timeout",
    "exit_if_in_progress",
    "service_identifier_executable",
    "deployment_name",
    "add_deployment_name_to_backup_path",
    "alerts",
    "state_dir",
    "metrics_file",
    "aws_cli_path",
    "azure_cli_path",
    "backup_user",
    "missing_properties_message",
];

/// A configured time limit for a child command: Go duration syntax (`90s`, `1h30m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLimit {
    /// The limit.
    pub duration: std::time::Duration,
    /// As written in the config (for messages).
    pub text: String,
}

impl TimeLimit {
    /// Parses a `*_timeout` value: absent, empty or `0` means no limit; a negative or
    /// malformed value is an error naming `key`.
    pub fn parse(key: &str, value: Option<&str>) -> Result<Option<TimeLimit>, ConfigError> {
        let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let nanos = crate::duration::parse_go_duration(text)
            .map_err(|e| ConfigError::Invalid(format!("{key}: {e}")))?;
        if nanos < 0 {
            return Err(ConfigError::Invalid(format!(
                "{key}: {text:?} is negative; give a positive duration such as \"6h\", or 0 for no limit"
            )));
        }
        if nanos == 0 {
            return Ok(None);
        }
        Ok(Some(TimeLimit {
            duration: std::time::Duration::from_nanos(nanos.unsigned_abs()),
            text: text.to_owned(),
        }))
    }
}

/// One `destinations[]` entry before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDestinationConfig {
    /// `type`.
    pub kind: String,
    /// `name` (`""` when absent).
    pub name: String,
    /// `config`, `None` when absent.
    pub config: Option<BTreeMap<String, serde_json::Value>>,
}

/// The parsed configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The destinations, unvalidated (see [`Config::destinations`]).
    pub raw_destinations: Vec<RawDestinationConfig>,
    /// The directory that is uploaded.
    pub source_folder: String,
    /// The prepare command (`""`: none).
    pub source_executable: String,
    /// The robfig/cron spec (`""`: none).
    pub cron_schedule: String,
    /// The command run after a successful upload (`""`: none).
    pub cleanup_executable: String,
    /// `source_executable_timeout` (ours): how long the prepare command may run before its
    /// process group is terminated and the run fails; `None` (the default): no limit.
    pub source_executable_timeout: Option<TimeLimit>,
    /// `cleanup_executable_timeout` (ours): the same for the cleanup command.
    pub cleanup_executable_timeout: Option<TimeLimit>,
    /// Reject a run while another holds the run lock.
    pub exit_if_in_progress: bool,
    /// Prints the service instance identifier (`""`: none).
    pub service_identifier_executable: String,
    /// Inserted into remote paths; already cleared unless `add_deployment_name_to_backup_path`.
    pub deployment_name: String,
    /// Whether `deployment_name` is part of the remote path.
    pub add_deployment_name_to_backup_path: bool,
    /// The alerts block, if present and not null.
    pub alerts: Option<AlertsConfig>,
    /// Where the run lock and the SCP trust-on-first-use record live (ours).
    pub state_dir: Option<PathBuf>,
    /// `metrics_file` (ours): the Prometheus textfile-collector file every run updates
    /// (docs/service-backup.md#metrics); `None`: no metrics.
    pub metrics_file: Option<PathBuf>,
    /// Keys that were ignored, as dotted paths (e.g. `destinations[0].config.bucket_nmae`).
    pub warnings: Vec<String>,
}

/// Which storage service a destination uploads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// Amazon S3 or an S3-compatible store.
    S3,
    /// Azure Blob Storage (or Azurite).
    Azure,
    /// Google Cloud Storage.
    Gcs,
    /// A directory on an SSH server.
    Scp,
}

impl DestinationKind {
    /// The `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::S3 => "s3",
            DestinationKind::Azure => "azure",
            DestinationKind::Gcs => "gcs",
            DestinationKind::Scp => "scp",
        }
    }
}

/// `type: s3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket.
    pub bucket_name: String,
    /// The prefix inside the bucket.
    pub bucket_path: String,
    /// Static access key id.
    pub access_key_id: String,
    /// Static secret key.
    pub secret_access_key: String,
    /// Custom endpoint (`""`: AWS).
    pub endpoint_url: String,
    /// Region (`""`: us-west-2 with a warning, as the original).
    pub region: String,
    /// Path-style addressing (ours; needed by most S3-compatible stores).
    pub force_path_style: bool,
    /// Extra CA certificate: PEM text or the path of a PEM file (ours).
    pub ca_cert: String,
}

/// `type: azure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    /// Storage account name.
    pub storage_account: String,
    /// Shared key.
    pub storage_access_key: String,
    /// Container (created if missing).
    pub container: String,
    /// Prefix inside the container.
    pub path: String,
    /// Base domain (`core.windows.net`) or full URL (Azurite); `""`: the default domain.
    pub endpoint: String,
}

/// `type: gcs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsConfig {
    /// Service-account JSON of this destination (or the file named by
    /// `GCP_SERVICE_ACCOUNT_FILE` when the key is absent).
    pub service_account_json: String,
    /// Project for bucket creation.
    pub project_id: String,
    /// The bucket.
    pub bucket_name: String,
    /// Optional object prefix (ours; the original has none).
    pub path: String,
    /// Optional custom endpoint (emulators).
    pub endpoint: String,
}

/// `type: scp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpConfig {
    /// Host.
    pub server: String,
    /// SSH user.
    pub user: String,
    /// Remote base directory.
    pub destination: String,
    /// Private key (PEM / OpenSSH text).
    pub key: String,
    /// Port (default 22).
    pub port: u16,
    /// known_hosts line(s); `""`: trust on first use, recorded in the state directory.
    pub fingerprint: String,
}

/// A validated destination's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationSettings {
    /// S3.
    S3(S3Config),
    /// Azure.
    Azure(AzureConfig),
    /// GCS.
    Gcs(GcsConfig),
    /// SCP.
    Scp(ScpConfig),
}

/// A validated destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationConfig {
    /// `name` (`""`: unnamed, no `destination_name` on its log lines).
    pub name: String,
    /// Type-specific settings.
    pub settings: DestinationSettings,
}

impl DestinationConfig {
    /// The destination's type.
    pub fn kind(&self) -> DestinationKind {
        match self.settings {
            DestinationSettings::S3(_) => DestinationKind::S3,
            DestinationSettings::Azure(_) => DestinationKind::Azure,
            DestinationSettings::Gcs(_) => DestinationKind::Gcs,
            DestinationSettings::Scp(_) => DestinationKind::Scp,
        }
    }

    /// Values that must never be logged (keys, secrets, private keys, service accounts).
    pub fn secrets(&self) -> Vec<String> {
        match &self.settings {
            DestinationSettings::S3(c) => {
                vec![c.access_key_id.clone(), c.secret_access_key.clone()]
            }
            DestinationSettings::Azure(c) => vec![c.storage_access_key.clone()],
            DestinationSettings::Gcs(c) => {
                let mut secrets = vec![c.service_account_json.clone()];
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&c.service_account_json)
                {
                    for key in ["private_key", "private_key_id"] {
                        if let Some(v) = json.get(key).and_then(|v| v.as_str()) {
                            secrets.push(v.to_owned());
                        }
                    }
                }
                secrets
            }
            DestinationSettings::Scp(c) => vec![c.key.clone()],
        }
    }
}

/// The environment variable the original reads the GCS service account file from.
pub const GCP_SERVICE_ACCOUNT_FILE_ENV: &str = "GCP_SERVICE_ACCOUNT_FILE";

/// The parser's message without the source snippet it appends (the snippet quotes the file,
/// which may hold secrets that are not yet known to the log redactor).
fn unmarshal_error(e: serde_saphyr::Error) -> ConfigError {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    ConfigError::Unmarshal(first.trim_start_matches("error: ").to_owned())
}

/// `metrics_file`: absent or empty means none; otherwise an absolute path ending in `.prom`
/// (node_exporter's textfile collector reads only `*.prom`, so another name would be written
/// and silently never collected).
fn parse_metrics_file(value: Option<&str>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(ConfigError::Invalid(format!(
            "metrics_file: {text:?} is not an absolute path"
        )));
    }
    if path.extension().is_none_or(|e| e != "prom") {
        return Err(ConfigError::Invalid(format!(
            "metrics_file: {text:?} does not end in .prom, the only files node_exporter's textfile collector reads"
        )));
    }
    Ok(Some(path))
}

fn non_empty(value: Option<String>) -> String {
    value.unwrap_or_default()
}

impl Config {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read(format!("open {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: Option<RawConfig> = serde_saphyr::from_str(text).map_err(unmarshal_error)?;
        let raw = raw.unwrap_or_default();
        let keys: Option<BTreeMap<String, serde::de::IgnoredAny>> =
            serde_saphyr::from_str(text).map_err(unmarshal_error)?;
        let mut warnings: Vec<String> = keys
            .unwrap_or_default()
            .into_keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .collect();

        let raw_destinations: Vec<RawDestinationConfig> = raw
            .destinations
            .unwrap_or_default()
            .into_iter()
            .map(|d| RawDestinationConfig {
                kind: non_empty(d.kind),
                name: non_empty(d.name),
                config: d.config,
            })
            .collect();
        for (i, dest) in raw_destinations.iter().enumerate() {
            let known = known_destination_keys(&dest.kind);
            if let (Some(known), Some(config)) = (known, &dest.config) {
                for key in config.keys() {
                    if !known.contains(&key.as_str()) {
                        warnings.push(format!("destinations[{i}].config.{key}"));
                    }
                }
            }
        }

        let add_deployment = raw.add_deployment_name_to_backup_path.unwrap_or(false);
        let source_executable_timeout = TimeLimit::parse(
            "source_executable_timeout",
            raw.source_executable_timeout.as_deref(),
        )?;
        let cleanup_executable_timeout = TimeLimit::parse(
            "cleanup_executable_timeout",
            raw.cleanup_executable_timeout.as_deref(),
        )?;
        let metrics_file = parse_metrics_file(raw.metrics_file.as_deref())?;
        Ok(Config {
            raw_destinations,
            source_folder: non_empty(raw.source_folder),
            source_executable: non_empty(raw.source_executable),
            cron_schedule: non_empty(raw.cron_schedule),
            cleanup_executable: non_empty(raw.cleanup_executable),
            source_executable_timeout,
            cleanup_executable_timeout,
            exit_if_in_progress: raw.exit_if_in_progress.unwrap_or(false),
            service_identifier_executable: non_empty(raw.service_identifier_executable),
            deployment_name: if add_deployment {
                non_empty(raw.deployment_name)
            } else {
                String::new()
            },
            add_deployment_name_to_backup_path: add_deployment,
            alerts: raw.alerts,
            state_dir: raw.state_dir.filter(|s| !s.is_empty()).map(PathBuf::from),
            metrics_file,
            warnings,
        })
    }

    /// Checks the top-level values a backup needs: with destinations, `source_folder` must be
    /// set. (A missing `cron_schedule` is reported by the scheduler, as in the original.)
    pub fn validate_source(&self) -> Result<(), ConfigError> {
        if !self.raw_destinations.is_empty() && self.source_folder.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "Missing values for service_backup: source_folder (required when destinations are configured)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Validates every destination; all problems are reported, joined with `"; "`.
    pub fn destinations(&self) -> Result<Vec<DestinationConfig>, ConfigError> {
        let gcp_file = std::env::var_os(GCP_SERVICE_ACCOUNT_FILE_ENV).map(PathBuf::from);
        self.destinations_with_gcp_file(gcp_file.as_deref())
    }

    /// [`Config::destinations`] with an explicit `GCP_SERVICE_ACCOUNT_FILE` value.
    pub fn destinations_with_gcp_file(
        &self,
        gcp_file: Option<&Path>,
    ) -> Result<Vec<DestinationConfig>, ConfigError> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (i, raw) in self.raw_destinations.iter().enumerate() {
            match validate_destination(raw, gcp_file) {
                Ok(d) => out.push(d),
                Err(e) => {
                    let which = if raw.name.is_empty() {
                        format!("destination {}", i + 1)
                    } else {
                        format!("destination {} ({})", i + 1, raw.name)
                    };
                    errors.push(format!("{which}: {e}"));
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(ConfigError::Destination(errors.join("; ")))
        }
    }

    /// Values from the `alerts` block that must never be logged.
    pub fn alert_secrets(&self) -> Vec<String> {
        self.alerts
            .as_ref()
            .map(|a| {
                vec![
                    a.config.cloud_controller.password.clone(),
                    a.config.notifications.client_secret.clone(),
                ]
            })
            .unwrap_or_default()
    }
}

fn known_destination_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "s3" => &[
            "bucket_name",
            "bucket_path",
            "access_key_id",
            "secret_access_key",
            "endpoint_url",
            "region",
            "force_path_style",
            "ca_cert",
        ],
        "azure" => &[
            "storage_account",
            "storage_access_key",
            "container",
            "path",
            "endpoint",
            "blob_store_base_url",
        ],
        "gcs" => &[
            "service_account_json",
            "project_id",
            "bucket_name",
            "path",
            "endpoint",
        ],
        "scp" => &[
            "server",
            "user",
            "destination",
            "key",
            "port",
            "fingerprint",
        ],
        _ => return None,
    })
}

/// Reads destination config values, collecting problems.
struct Reader<'a> {
    kind: &'a str,
    map: &'a BTreeMap<String, serde_json::Value>,
    missing: Vec<&'static str>,
    invalid: Vec<String>,
}

impl<'a> Reader<'a> {
    fn string(&mut self, key: &'static str) -> String {
        match self.map.get(key) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            // `bucket_path: y` or `path: on` are YAML 1.1 booleans: using "true" (or, as the
            // original did, "") as a path would put backups somewhere unexpected.
            Some(serde_json::Value::Bool(b)) => {
                self.invalid.push(format!(
                    "{key} must be a string, but YAML read a boolean ({b}); quote the value"
                ));
                String::new()
            }
            Some(_) => {
                self.invalid.push(format!("{key} must be a string"));
                String::new()
            }
        }
    }

    fn required(&mut self, key: &'static str) -> String {
        let value = self.string(key);
        if value.trim().is_empty() && !self.invalid.iter().any(|e| e.starts_with(key)) {
            self.missing.push(key);
        }
        value
    }

    fn boolean(&mut self, key: &'static str) -> bool {
        match self.map.get(key) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(serde_json::Value::String(s))
                if s.eq_ignore_ascii_case("false") || s.is_empty() =>
            {
                false
            }
            Some(_) => {
                self.invalid.push(format!("{key} must be a boolean"));
                false
            }
        }
    }

    fn port(&mut self, key: &'static str, default: u16) -> u16 {
        let parsed = match self.map.get(key) {
            None | Some(serde_json::Value::Null) => return default,
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => return default,
            Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match parsed
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
        {
            Some(p) => p,
            None => {
                self.invalid
                    .push(format!("{key} must be a number between 1 and 65535"));
                default
            }
        }
    }

    fn finish(self) -> Result<(), DestinationConfigError> {
        let mut problems = Vec::new();
        if !self.missing.is_empty() {
            problems.push(format!(
                "Missing values for {}: {}",
                self.kind,
                self.missing.join(", ")
            ));
        }
        problems.extend(self.invalid);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DestinationConfigError::Values(problems))
        }
    }
}

fn validate_destination(
    raw: &RawDestinationConfig,
    gcp_file: Option<&Path>,
) -> Result<DestinationConfig, DestinationConfigError> {
    if raw.kind.is_empty() {
        return Err(DestinationConfigError::MissingType);
    }
    if known_destination_keys(&raw.kind).is_none() {
        return Err(DestinationConfigError::UnknownType(raw.kind.clone()));
    }
    let Some(map) = raw.config.as_ref() else {
        return Err(DestinationConfigError::MissingConfig(raw.kind.clone()));
    };
    let mut r = Reader {
        kind: &raw.kind,
        map,
        missing: Vec::new(),
        invalid: Vec::new(),
    };
    let settings = match raw.kind.as_str() {
        "s3" => {
            let c = S3Config {
                access_key_id: r.required("access_key_id"),
                secret_access_key: r.required("secret_access_key"),
                bucket_name: r.required("bucket_name"),
                bucket_path: r.required("bucket_path"),
                endpoint_url: r.string("endpoint_url"),
                region: r.string("region"),
                force_path_style: r.boolean("force_path_style"),
                ca_cert: r.string("ca_cert"),
            };
            DestinationSettings::S3(c)
        }
        "azure" => {
            let storage_account = r.required("storage_account");
            let storage_access_key = r.required("storage_access_key");
            let container = r.required("container");
            let path = r.required("path");
            let mut endpoint = r.string("endpoint");
            if endpoint.is_empty() {
                endpoint = r.string("blob_store_base_url");
            }
            DestinationSettings::Azure(AzureConfig {
                storage_account,
                storage_access_key,
                container,
                path,
                endpoint,
            })
        }
        "gcs" => {
            let mut service_account_json = r.string("service_account_json");
            if service_account_json.trim().is_empty() {
                match gcp_file {
                    Some(file) if !file.as_os_str().is_empty() => {
                        match std::fs::read_to_string(file) {
                            Ok(text) => service_account_json = text,
                            Err(e) => r.invalid.push(format!(
                                "service_account_json is empty and {GCP_SERVICE_ACCOUNT_FILE_ENV} ({}) cannot be read: {e}",
                                file.display()
                            )),
                        }
                    }
                    _ => r.missing.push("service_account_json"),
                }
            }
            let project_id = r.required("project_id");
            let bucket_name = r.required("bucket_name");
            if !service_account_json.trim().is_empty()
                && serde_json::from_str::<serde_json::Value>(&service_account_json).is_err()
            {
                r.invalid
                    .push("service_account_json is not valid JSON".to_owned());
            }
            DestinationSettings::Gcs(GcsConfig {
                service_account_json,
                project_id,
                bucket_name,
                path: r.string("path"),
                endpoint: r.string("endpoint"),
            })
        }
        _ => {
            let server = r.required("server");
            let user = r.required("user");
            let destination = r.required("destination");
            let key = r.required("key");
            DestinationSettings::Scp(ScpConfig {
                server,
                user,
                destination,
                key,
                port: r.port("port", 22),
                fingerprint: r.string("fingerprint"),
            })
        }
    };
    r.finish()?;
    Ok(DestinationConfig {
        name: raw.name.clone(),
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED_S3: &str = r#"---
destinations:
- type: s3
  config:
    endpoint_url: ''
    region: ''
    bucket_name: test
    bucket_path: foo/bar
    access_key_id: AKIAEXAMPLE
    secret_access_key: s3cr3t-value
add_deployment_name_to_backup_path: false
deployment_name: service-backup
alerts:
aws_cli_path: "/var/vcap/packages/service-backup_aws-cli/bin/aws"
azure_cli_path: "/var/vcap/packages/service-backup_blobxfer/bin/blobxfer"
source_folder: "/foo"
source_executable: whoami
cron_schedule: "*/5 * * * * *"
backup_user: vcap
cleanup_executable: somecleanup
missing_properties_message: custom message
exit_if_in_progress: false
service_identifier_executable:
"#;

    #[test]
    fn executable_timeouts_are_known_keys_in_go_duration_syntax() {
        let c = Config::parse(
            "source_folder: /x\nsource_executable_timeout: 1h30m\ncleanup_executable_timeout: '0'\n",
        )
        .expect("parse");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let limit = c.source_executable_timeout.expect("limit");
        assert_eq!(limit.duration, std::time::Duration::from_secs(5400));
        assert_eq!(limit.text, "1h30m");
        assert_eq!(c.cleanup_executable_timeout, None, "0 means no limit");
        let none = Config::parse("source_folder: /x\n").expect("parse");
        assert_eq!(none.source_executable_timeout, None, "no limit by default");
        for bad in ["ten minutes", "-5s"] {
            let err = Config::parse(&format!("source_executable_timeout: {bad}\n"))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("source_executable_timeout"), "{err}");
        }
    }

    #[test]
    fn rendered_bosh_config() {
        let c = Config::parse(RENDERED_S3).expect("parse");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.source_folder, "/foo");
        assert_eq!(c.source_executable, "whoami");
        assert_eq!(c.cron_schedule, "*/5 * * * * *");
        assert_eq!(c.cleanup_executable, "somecleanup");
        assert_eq!(c.service_identifier_executable, "");
        assert_eq!(c.deployment_name, "", "cleared without the flag");
        assert!(c.alerts.is_none());
        assert!(!c.exit_if_in_progress);
        c.validate_source().expect("source");
        let d = c.destinations().expect("destinations");
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].settings,
            DestinationSettings::S3(S3Config {
                bucket_name: "test".into(),
                bucket_path: "foo/bar".into(),
                access_key_id: "AKIAEXAMPLE".into(),
                secret_access_key: "s3cr3t-value".into(),
                endpoint_url: String::new(),
                region: String::new(),
                force_path_style: false,
                ca_cert: String::new(),
            })
        );
        assert!(d[0].secrets().contains(&"s3cr3t-value".to_owned()));
    }

    #[test]
    fn deployment_name_kept_with_flag() {
        let c =
            Config::parse("deployment_name: my-dep\nadd_deployment_name_to_backup_path: true\n")
                .expect("parse");
        assert_eq!(c.deployment_name, "my-dep");
    }

    #[test]
    fn minimal_and_empty_configs() {
        for text in ["", "---\n", "destinations: []\n", "{}"] {
            let c = Config::parse(text).expect(text);
            assert!(c.raw_destinations.is_empty());
            assert!(c.alerts.is_none());
            assert_eq!(c.source_folder, "");
            c.validate_source()
                .expect("no destinations, no folder needed");
            assert!(c.destinations().expect("none").is_empty());
        }
    }

    #[test]
    fn gcs_with_multiline_service_account() {
        let text = r#"
destinations:
- type: gcs
  name: google
  config:
    project_id: proj
    bucket_name: bkt
    service_account_json: |
      {
        "type": "service_account",
        "private_key": "-----BEGIN PRIVATE KEY-----\nABCDEFGHIJKLMNOPQRSTUV\n-----END PRIVATE KEY-----\n"
      }
source_folder: /data
cron_schedule: "@daily"
"#;
        let c = Config::parse(text).expect("parse");
        let d = c.destinations_with_gcp_file(None).expect("valid");
        assert_eq!(d[0].name, "google");
        let DestinationSettings::Gcs(g) = &d[0].settings else {
            panic!("gcs expected")
        };
        assert!(
            g.service_account_json
                .contains("\"type\": \"service_account\"")
        );
        assert!(
            d[0].secrets()
                .iter()
                .any(|s| s.contains("ABCDEFGHIJKLMNOPQRSTUV") && !s.contains('{'))
        );
    }

    #[test]
    fn gcs_falls_back_to_env_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sa.json");
        std::fs::write(&file, r#"{"type":"service_account"}"#).expect("write");
        let c = Config::parse(
            "destinations: [{type: gcs, config: {project_id: p, bucket_name: b}}]\nsource_folder: /x\n",
        )
        .expect("parse");
        let d = c.destinations_with_gcp_file(Some(&file)).expect("valid");
        let DestinationSettings::Gcs(g) = &d[0].settings else {
            panic!("gcs expected")
        };
        assert_eq!(g.service_account_json, r#"{"type":"service_account"}"#);
        let err = c.destinations_with_gcp_file(None).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "destination 1: Missing values for gcs: service_account_json"
        );
    }

    #[test]
    fn full_alerts_block() {
        let text = r#"
alerts:
  product_name: SomeDB
  config:
    cloud_controller: {url: "https://api.example.com", user: admin, password: pw}
    notifications:
      service_url: "https://notifications.example.com"
      cf_org: org
      cf_space: space
      reply_to: me@example.com
      client_id: cid
      client_secret: csecret
    timeout_seconds: 42
    skip_ssl_validation: true
"#;
        let c = Config::parse(text).expect("parse");
        let a = c.alerts.as_ref().expect("alerts");
        assert_eq!(a.product_name, "SomeDB");
        assert_eq!(a.config.timeout_seconds, 42);
        assert_eq!(a.config.skip_ssl_validation, Some(true));
        assert_eq!(a.config.cloud_controller.user, "admin");
        assert_eq!(a.config.notifications.client_secret, "csecret");
        assert!(c.alert_secrets().contains(&"pw".to_owned()));
    }

    #[test]
    fn scp_defaults_and_types() {
        let c = Config::parse(
            "destinations:\n- type: scp\n  name: foo\n  config: {server: h, user: u, destination: /d, key: k}\nsource_folder: /s\n",
        )
        .expect("parse");
        let d = c.destinations().expect("valid");
        let DestinationSettings::Scp(s) = &d[0].settings else {
            panic!("scp expected")
        };
        assert_eq!(s.port, 22);
        assert_eq!(s.fingerprint, "");
        let bad = Config::parse(
            "destinations:\n- type: scp\n  config: {server: h, user: u, destination: /d, key: k, port: 70000}\nsource_folder: /s\n",
        )
        .expect("parse");
        assert_eq!(
            bad.destinations().expect_err("port").to_string(),
            "destination 1: port must be a number between 1 and 65535"
        );
    }

    #[test]
    fn a_yaml_boolean_where_a_path_belongs_is_refused() {
        let c = Config::parse(
            "destinations:\n- type: s3\n  config: {bucket_name: b, bucket_path: y, access_key_id: a, secret_access_key: s}\nsource_folder: /s\n",
        )
        .expect("parse");
        assert_eq!(
            c.destinations().expect_err("boolean path").to_string(),
            "destination 1: bucket_path must be a string, but YAML read a boolean (true); quote the value"
        );
    }

    #[test]
    fn destination_validation_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "[{type: s3, config: {access_key_id: a, secret_access_key: b}}]",
                "destination 1: Missing values for s3: bucket_name, bucket_path",
            ),
            (
                "[{type: azure, config: {}}]",
                "destination 1: Missing values for azure: storage_account, storage_access_key, container, path",
            ),
            (
                "[{type: scp, name: backup-host, config: {server: '', user: u}}]",
                "destination 1 (backup-host): Missing values for scp: server, destination, key",
            ),
            (
                "[{type: unknown-type, config: {}}]",
                "destination 1: unknown destination type: unknown-type",
            ),
            (
                "[{config: {}}]",
                "destination 1: Missing type for destination",
            ),
            ("[{type: s3}]", "destination 1: Missing config for s3"),
            (
                "[{type: s3}, {type: nope, config: {}}]",
                "destination 1: Missing config for s3; destination 2: unknown destination type: nope",
            ),
        ];
        for (dests, want) in cases {
            let text = format!("destinations: {dests}\nsource_folder: /x\n");
            let c = Config::parse(&text).expect(&text);
            let err = c.destinations_with_gcp_file(None).expect_err(&text);
            assert_eq!(err.to_string(), *want, "{text}");
        }
    }

    #[test]
    fn missing_source_folder_with_destinations() {
        let c = Config::parse(
            "destinations: [{type: s3, config: {bucket_name: b}}]\ncron_schedule: '@daily'\n",
        )
        .expect("parse");
        let err = c.validate_source().expect_err("source");
        assert!(err.to_string().contains("source_folder"), "{err}");
    }

    #[test]
    fn type_errors_are_rejected() {
        for text in [
            "destinations: not-an-array\n",
            "exit_if_in_progress: \"true\"\n",
            "exit_if_in_progress: [1]\n",
            "add_deployment_name_to_backup_path: 'yes'\n",
            "source_folder: [a, b]\n",
            "alerts: 5\n",
            "destinations: [\n",
            "- just\n- a list\n",
        ] {
            let err = Config::parse(text).expect_err(text);
            assert!(matches!(err, ConfigError::Unmarshal(_)), "{text}: {err:?}");
            assert!(!err.to_string().contains('\n'), "no source snippet: {err}");
        }
    }

    #[test]
    fn yaml_errors_do_not_quote_the_file() {
        let text = "destinations:\n- type: s3\n  config: {secret_access_key: TOPSECRET, bad\n";
        let err = Config::parse(text).expect_err("invalid");
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn yaml11_booleans_accepted() {
        for (text, want) in [
            ("exit_if_in_progress: true", true),
            ("exit_if_in_progress: yes", true),
            ("exit_if_in_progress: on", true),
            ("exit_if_in_progress: false", false),
            ("exit_if_in_progress: no", false),
            ("exit_if_in_progress: off", false),
        ] {
            let c = Config::parse(text).expect(text);
            assert_eq!(c.exit_if_in_progress, want, "{text}");
        }
    }

    #[test]
    fn unknown_keys_are_warned_not_fatal() {
        let text = "source_folder: /x\nsource_folderr: /y\nstate_dir: /tmp/sd\ndestinations:\n- type: s3\n  config: {bucket_name: b, bucket_path: p, access_key_id: a, secret_access_key: s, bucket_nmae: oops}\n";
        let c = Config::parse(text).expect("parse");
        assert_eq!(
            c.warnings,
            vec![
                "source_folderr".to_owned(),
                "destinations[0].config.bucket_nmae".to_owned()
            ]
        );
        assert_eq!(c.state_dir, Some(PathBuf::from("/tmp/sd")));
        c.destinations().expect("still valid");
    }

    #[test]
    fn azure_endpoint_old_name_and_s3_extras() {
        let text = "source_folder: /x\ndestinations:\n- type: azure\n  config: {storage_account: a, storage_access_key: k, container: c, path: p, blob_store_base_url: example.net}\n- type: s3\n  config: {bucket_name: b, bucket_path: p, access_key_id: a, secret_access_key: s, force_path_style: true, ca_cert: /etc/ca.pem}\n";
        let d = Config::parse(text)
            .expect("parse")
            .destinations()
            .expect("valid");
        let DestinationSettings::Azure(a) = &d[0].settings else {
            panic!("azure")
        };
        assert_eq!(a.endpoint, "example.net");
        let DestinationSettings::S3(s) = &d[1].settings else {
            panic!("s3")
        };
        assert!(s.force_path_style);
        assert_eq!(s.ca_cert, "/etc/ca.pem");
    }

    #[test]
    fn metrics_file_is_an_absolute_prom_path() {
        let c = Config::parse("metrics_file: /var/lib/node_exporter/textfile/sb.prom\n")
            .expect("parse");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(
            c.metrics_file,
            Some(PathBuf::from("/var/lib/node_exporter/textfile/sb.prom"))
        );
        assert_eq!(
            Config::parse("metrics_file: ''\n")
                .expect("parse")
                .metrics_file,
            None
        );
        assert_eq!(
            Config::parse("source_folder: /x\n")
                .expect("parse")
                .metrics_file,
            None
        );
        for (text, needle) in [
            ("metrics_file: sb.prom\n", "not an absolute path"),
            ("metrics_file: /tmp/sb.txt\n", "does not end in .prom"),
        ] {
            let e = Config::parse(text).expect_err(text).to_string();
            assert!(e.starts_with("metrics_file: "), "{e}");
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = Config::load(Path::new("/nonexistent/backup.yml")).expect_err("missing");
        assert!(matches!(err, ConfigError::Read(_)));
        assert!(err.to_string().contains("/nonexistent/backup.yml"));
    }
}
