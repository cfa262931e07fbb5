//! `config.json`: parsing and validation.
//!
//! Schema (same as the original):
//!
//! ```json
//! { "username": "u", "password": "p", "host": "10.0.0.5", "port": 5432,
//!   "adapter": "postgres", "database": "app", "tables": ["people"],
//!   "tls": { "skip_host_verify": false,
//!            "cert": { "ca": "-----BEGIN ...", "certificate": "...", "private_key": "..." } } }
//! ```
//!
//! `tables` limits a backup to those tables (PostgreSQL: `name` means `public.name`, or write
//! `schema.name`; every one must exist). A restore loads whatever the artifact holds, so an
//! artifact made with `tables` restores exactly those tables and leaves the others alone.
//!
//! The original's checks run first, in its order and with its messages (`Fail reading config
//! file: ...`, `Could not parse config json: ...`, `Unsupported adapter <a>`, `Tables
//! specified but empty`, `TLS block specified without tls.cert.ca`,
//! `tls.cert.certificate specified but not tls.cert.private_key`,
//! `tls.cert.private_key specified but not tls.cert.certificate`). A value of the wrong JSON
//! type is a `Could not parse config json:` error naming the key (the original's Go decoder
//! fails there too). What the original leaves unchecked is checked afterwards, naming the
//! key: `username`, `password`, `host`, `port` and `database` must be present, `username`,
//! `host` and `database` must not be empty, `port` must be 1-65535 and table names must not
//! be empty. Unknown keys are ignored; like Go's decoder, a key matches case-insensitively
//! when there is no exact match, and `null` counts as absent.
//!
//! Two optional keys of our own (the original ignores them, as it ignores any unknown key):
//!
//! - `connect_timeout`: seconds every client may take to connect and get the server's first
//!   answer (default [`DEFAULT_CONNECT_TIMEOUT_SECS`]). A host that accepts TCP connections
//!   and never answers fails after this long with a message naming `host:port`.
//! - `lock_timeout`: seconds a restore may wait for a lock another session holds on the
//!   database (default [`DEFAULT_LOCK_TIMEOUT_SECS`]); then the restore is stopped with a
//!   message saying so.
//!
//! Both are whole numbers from 1 to 86400.

use std::path::Path;

use serde_json::{Map, Value};

/// Default of `connect_timeout`, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u32 = 30;
/// Default of `lock_timeout`, in seconds.
pub const DEFAULT_LOCK_TIMEOUT_SECS: u32 = 300;
/// Largest `connect_timeout` / `lock_timeout` accepted, in seconds (one day).
pub const MAX_TIMEOUT_SECS: u32 = 86_400;

/// Database family, from `adapter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// `postgres`
    Postgres,
    /// `mysql` (MySQL and MariaDB)
    Mysql,
}

/// `tls.cert`: PEM texts (not paths).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CertConfig {
    /// CA bundle the server certificate must chain to.
    pub ca: String,
    /// Client certificate, for mutual TLS (with `private_key`).
    pub certificate: String,
    /// Client private key, for mutual TLS (with `certificate`).
    pub private_key: String,
}

impl std::fmt::Debug for CertConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertConfig")
            .field("ca", &format_args!("<{} bytes>", self.ca.len()))
            .field(
                "certificate",
                &format_args!("<{} bytes>", self.certificate.len()),
            )
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// `tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Verify the CA chain but not the host name (`verify-ca` / `VERIFY_CA`).
    pub skip_host_verify: bool,
    /// Certificates.
    pub cert: CertConfig,
}

/// A validated `config.json`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// `username`
    pub username: String,
    /// `password` (may be empty)
    pub password: String,
    /// `host`
    pub host: String,
    /// `port`
    pub port: u16,
    /// `adapter`
    pub adapter: Adapter,
    /// `database`
    pub database: String,
    /// `tables`: `None` means the whole database.
    pub tables: Option<Vec<String>>,
    /// `tls`
    pub tls: Option<TlsConfig>,
    /// `connect_timeout` in seconds (ours; default [`DEFAULT_CONNECT_TIMEOUT_SECS`]).
    pub connect_timeout: u32,
    /// `lock_timeout` in seconds (ours; default [`DEFAULT_LOCK_TIMEOUT_SECS`]).
    pub lock_timeout: u32,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("adapter", &self.adapter)
            .field("database", &self.database)
            .field("tables", &self.tables)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .finish()
    }
}

/// Why a config was rejected. `Display` is the message printed (without timestamp).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("Fail reading config file: {0}")]
    Read(String),
    /// Not JSON, or not a JSON object.
    #[error("Could not parse config json: {0}")]
    Json(String),
    /// A key holds a value of the wrong JSON type.
    #[error("Could not parse config json: config key \"{key}\" must be {expected}, not {found}")]
    WrongType {
        /// Dotted key path, e.g. `tls.cert.ca` or `tables[1]`.
        key: String,
        /// What was expected, e.g. `a number`.
        expected: &'static str,
        /// What was found, e.g. `a string ("5432")`.
        found: String,
    },
    /// `adapter` is not `postgres` or `mysql` (empty when absent).
    #[error("Unsupported adapter {0}")]
    UnsupportedAdapter(String),
    /// `tables: []`
    #[error("Tables specified but empty")]
    TablesEmpty,
    /// `tls` without `tls.cert.ca`.
    #[error("TLS block specified without tls.cert.ca")]
    TlsWithoutCa,
    /// Client certificate without key.
    #[error("tls.cert.certificate specified but not tls.cert.private_key")]
    CertificateWithoutKey,
    /// Client key without certificate.
    #[error("tls.cert.private_key specified but not tls.cert.certificate")]
    KeyWithoutCertificate,
    /// A required key is absent.
    #[error("Invalid config: missing required key \"{0}\"")]
    Missing(&'static str),
    /// A required key is empty.
    #[error("Invalid config: key \"{0}\" must not be empty")]
    Empty(String),
    /// `port` outside 1..=65535.
    #[error("Invalid config: key \"port\" must be between 1 and 65535, not {0}")]
    PortRange(String),
    /// `connect_timeout` or `lock_timeout` outside 1..=[`MAX_TIMEOUT_SECS`].
    #[error(
        "Invalid config: key \"{key}\" must be a whole number of seconds between 1 and {MAX_TIMEOUT_SECS}, not {value}"
    )]
    TimeoutRange {
        /// `connect_timeout` or `lock_timeout`.
        key: &'static str,
        /// The value given.
        value: String,
    },
}

/// Formats an I/O error the way Go's `os` package does (`open <path>: no such file or directory`).
pub fn go_style_io_error(op: &str, path: &Path, err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    let lowered = match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    };
    format!("{op} {}: {lowered}", path.display())
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<ConnectionConfig, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let op = if path.is_dir() { "read" } else { "open" };
        ConfigError::Read(go_style_io_error(op, path, &e))
    })?;
    parse(&bytes)
}

fn describe(v: &Value) -> String {
    fn short(s: String) -> String {
        if s.chars().count() > 40 {
            format!("{}...", s.chars().take(40).collect::<String>())
        } else {
            s
        }
    }
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({})", short(n.to_string())),
        Value::String(s) => format!("a string ({:?})", short(s.clone())),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Looks a key up like Go's decoder: exact match first, then case-insensitive; `null` is absent.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let v = obj.get(key).or_else(|| {
        obj.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
            .next_back()
    })?;
    (!v.is_null()).then_some(v)
}

/// Keys whose values never appear in a message.
const SECRET_KEYS: &[&str] = &["password", "tls.cert.private_key"];

fn wrong(key: &str, expected: &'static str, v: &Value) -> ConfigError {
    let mut found = describe(v);
    if SECRET_KEYS.contains(&key)
        && let Some(i) = found.find(" (")
    {
        found.truncate(i);
    }
    ConfigError::WrongType {
        key: key.to_string(),
        expected,
        found,
    }
}

fn get_str(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, ConfigError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(wrong(path, "a string", v)),
    }
}

fn get_obj<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ConfigError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v) => Err(wrong(path, "an object", v)),
    }
}

/// Parses and validates config JSON.
pub fn parse(bytes: &[u8]) -> Result<ConnectionConfig, ConfigError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ConfigError::Json(e.to_string()))?;
    let obj = match &value {
        Value::Object(o) => o,
        other => {
            return Err(ConfigError::Json(format!(
                "the config must be a JSON object, not {}",
                describe(other)
            )));
        }
    };

    // Decode (type errors), in the order the keys are declared in the original.
    let username = get_str(obj, "username", "username")?;
    let password = get_str(obj, "password", "password")?;
    let port = match get(obj, "port") {
        None => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(p) => Some(p),
            None => return Err(wrong("port", "an integer", &Value::Number(n.clone()))),
        },
        Some(v) => return Err(wrong("port", "a number", v)),
    };
    let adapter = get_str(obj, "adapter", "adapter")?;
    let host = get_str(obj, "host", "host")?;
    let database = get_str(obj, "database", "database")?;
    let tables = match get(obj, "tables") {
        None => None,
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    v => return Err(wrong(&format!("tables[{i}]"), "a string", v)),
                }
            }
            Some(out)
        }
        Some(v) => return Err(wrong("tables", "an array of strings", v)),
    };
    let tls = match get_obj(obj, "tls", "tls")? {
        None => None,
        Some(t) => {
            let skip_host_verify = match get(t, "skip_host_verify") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => return Err(wrong("tls.skip_host_verify", "a boolean", v)),
            };
            let cert = match get_obj(t, "cert", "tls.cert")? {
                None => CertConfig::default(),
                Some(c) => CertConfig {
                    ca: get_str(c, "ca", "tls.cert.ca")?.unwrap_or_default(),
                    certificate: get_str(c, "certificate", "tls.cert.certificate")?
                        .unwrap_or_default(),
                    private_key: get_str(c, "private_key", "tls.cert.private_key")?
                        .unwrap_or_default(),
                },
            };
            Some(TlsConfig {
                skip_host_verify,
                cert,
            })
        }
    };

    let connect_timeout = get_timeout(obj, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_SECS)?;
    let lock_timeout = get_timeout(obj, "lock_timeout", DEFAULT_LOCK_TIMEOUT_SECS)?;

    // The original's validations, in its order.
    let adapter = match adapter.as_deref() {
        Some("postgres") => Adapter::Postgres,
        Some("mysql") => Adapter::Mysql,
        Some(other) => return Err(ConfigError::UnsupportedAdapter(other.to_string())),
        None => {
            return Err(ConfigError::UnsupportedAdapter(
                "(config key \"adapter\" is missing; use \"postgres\" or \"mysql\")".into(),
            ));
        }
    };
    if tables.as_ref().is_some_and(Vec::is_empty) {
        return Err(ConfigError::TablesEmpty);
    }
    if let Some(t) = &tls {
        if t.cert.ca.is_empty() {
            return Err(ConfigError::TlsWithoutCa);
        }
        if !t.cert.certificate.is_empty() && t.cert.private_key.is_empty() {
            return Err(ConfigError::CertificateWithoutKey);
        }
        if t.cert.certificate.is_empty() && !t.cert.private_key.is_empty() {
            return Err(ConfigError::KeyWithoutCertificate);
        }
    }

    // What the original leaves unchecked.
    let username = username.ok_or(ConfigError::Missing("username"))?;
    let password = password.ok_or(ConfigError::Missing("password"))?;
    let host = host.ok_or(ConfigError::Missing("host"))?;
    let port = port.ok_or(ConfigError::Missing("port"))?;
    let database = database.ok_or(ConfigError::Missing("database"))?;
    for (key, v) in [
        ("username", &username),
        ("host", &host),
        ("database", &database),
    ] {
        if v.is_empty() {
            return Err(ConfigError::Empty(key.into()));
        }
    }
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ConfigError::PortRange(port.to_string()))?;
    if let Some(i) = tables
        .as_ref()
        .and_then(|ts| ts.iter().position(String::is_empty))
    {
        return Err(ConfigError::Empty(format!("tables[{i}]")));
    }

    Ok(ConnectionConfig {
        username,
        password,
        host,
        port,
        adapter,
        database,
        tables,
        tls,
        connect_timeout: connect_timeout?,
        lock_timeout: lock_timeout?,
    })
}

/// An optional timeout key: absent means `default`; a non-number is a type error at once,
/// a number out of range an error returned after the original's checks (the inner result).
fn get_timeout(
    obj: &Map<String, Value>,
    key: &'static str,
    default: u32,
) -> Result<Result<u32, ConfigError>, ConfigError> {
    match get(obj, key) {
        None => Ok(Ok(default)),
        Some(Value::Number(n)) => Ok(n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (1..=MAX_TIMEOUT_SECS).contains(v))
            .ok_or_else(|| ConfigError::TimeoutRange {
                key,
                value: n.to_string(),
            })),
        Some(v) => Err(wrong(key, "a number of seconds", v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"username": "u", "password": "p", "host": "h", "port": 5432,
               "adapter": "postgres", "database": "d"})
    }

    fn with(f: impl FnOnce(&mut Map<String, Value>)) -> Result<ConnectionConfig, ConfigError> {
        let mut v = base();
        if let Value::Object(o) = &mut v {
            f(o);
        }
        parse(v.to_string().as_bytes())
    }

    #[test]
    fn minimal_config_parses() {
        let c = with(|_| {}).expect("valid");
        assert_eq!(c.port, 5432);
        assert_eq!(c.adapter, Adapter::Postgres);
        assert!(c.tables.is_none() && c.tls.is_none());
        assert!(!format!("{c:?}").contains("\"p\""));
    }

    #[test]
    fn original_messages_in_order() {
        assert_eq!(
            with(|o| {
                o.insert("adapter".into(), json!("oracle"));
                o.insert("tables".into(), json!([]));
            })
            .unwrap_err()
            .to_string(),
            "Unsupported adapter oracle"
        );
        assert_eq!(
            with(|o| {
                o.insert("tables".into(), json!([]));
                o.insert("tls".into(), json!({}));
            })
            .unwrap_err(),
            ConfigError::TablesEmpty
        );
        assert_eq!(
            with(|o| {
                o.insert("tls".into(), json!({}));
            })
            .unwrap_err(),
            ConfigError::TlsWithoutCa
        );
        assert_eq!(
            with(|o| {
                o.insert(
                    "tls".into(),
                    json!({"cert": {"ca": "x", "certificate": "c"}}),
                );
            })
            .unwrap_err(),
            ConfigError::CertificateWithoutKey
        );
        assert_eq!(
            with(|o| {
                o.insert(
                    "tls".into(),
                    json!({"cert": {"ca": "x", "private_key": "k"}}),
                );
            })
            .unwrap_err(),
            ConfigError::KeyWithoutCertificate
        );
        // Original checks win over the new ones.
        assert_eq!(
            with(|o| {
                o.remove("host");
                o.insert("tls".into(), json!({}));
            })
            .unwrap_err(),
            ConfigError::TlsWithoutCa
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let cases: Vec<(&str, Value)> = vec![
            ("username", json!(1)),
            ("password", json!(true)),
            ("host", json!(["h"])),
            ("port", json!("5432")),
            ("adapter", json!({})),
            ("database", json!(3)),
            ("tables", json!("people")),
            ("tls", json!("yes")),
        ];
        for (key, v) in cases {
            let err = with(|o| {
                o.insert(key.into(), v.clone());
            })
            .unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with("Could not parse config json: ")
                    && msg.contains(&format!("\"{key}\"")),
                "{key}: {msg}"
            );
        }
        let err = with(|o| {
            o.insert("password".into(), json!(123456));
        })
        .unwrap_err();
        assert!(!err.to_string().contains("123456"), "{err}");
        let err = with(|o| {
            o.insert("port".into(), json!(5432.5));
        })
        .unwrap_err();
        assert!(err.to_string().contains("\"port\" must be an integer"));
        let err = with(|o| {
            o.insert("tables".into(), json!(["a", 2]));
        })
        .unwrap_err();
        assert!(err.to_string().contains("\"tables[1]\""), "{err}");
        for (tls, key) in [
            (json!({"cert": "x"}), "tls.cert"),
            (json!({"cert": {"ca": 1}}), "tls.cert.ca"),
            (
                json!({"cert": {"ca": "x", "certificate": 1, "private_key": "k"}}),
                "tls.cert.certificate",
            ),
            (
                json!({"cert": {"ca": "x", "certificate": "c", "private_key": []}}),
                "tls.cert.private_key",
            ),
            (
                json!({"cert": {"ca": "x"}, "skip_host_verify": "true"}),
                "tls.skip_host_verify",
            ),
        ] {
            let err = with(|o| {
                o.insert("tls".into(), tls.clone());
            })
            .unwrap_err();
            assert!(err.to_string().contains(&format!("\"{key}\"")), "{err}");
        }
    }

    #[test]
    fn missing_and_empty_keys() {
        for key in ["username", "password", "host", "port", "database"] {
            let err = with(|o| {
                o.remove(key);
            })
            .unwrap_err();
            assert_eq!(err, ConfigError::Missing(key));
            let err = with(|o| {
                o.insert(key.into(), Value::Null);
            })
            .unwrap_err();
            assert_eq!(err, ConfigError::Missing(key));
        }
        assert!(
            with(|o| {
                o.remove("adapter");
            })
            .unwrap_err()
            .to_string()
            .starts_with("Unsupported adapter ")
        );
        for key in ["username", "host", "database"] {
            let err = with(|o| {
                o.insert(key.into(), json!(""));
            })
            .unwrap_err();
            assert_eq!(err, ConfigError::Empty(key.into()));
        }
        assert!(
            with(|o| {
                o.insert("password".into(), json!(""));
            })
            .is_ok()
        );
        for port in [json!(0), json!(70000), json!(-1)] {
            assert!(matches!(
                with(|o| {
                    o.insert("port".into(), port.clone());
                }),
                Err(ConfigError::PortRange(_))
            ));
        }
    }

    #[test]
    fn go_like_decoding() {
        let c = with(|o| {
            let h = o.remove("host").unwrap_or_default();
            o.insert("HOST".into(), h);
            o.insert("unknown".into(), json!(1));
            o.insert("tables".into(), Value::Null);
            o.insert("tls".into(), Value::Null);
        })
        .expect("valid");
        assert_eq!(c.host, "h");
        assert!(c.tables.is_none() && c.tls.is_none());
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT_SECS);
        assert_eq!(c.lock_timeout, DEFAULT_LOCK_TIMEOUT_SECS);
        assert!(matches!(parse(b"{"), Err(ConfigError::Json(_))));
        assert!(matches!(parse(b"[]"), Err(ConfigError::Json(_))));
    }

    #[test]
    fn timeouts_are_optional_whole_seconds() {
        let c = with(|o| {
            o.insert("connect_timeout".into(), json!(2));
            o.insert("Lock_Timeout".into(), json!(7));
        })
        .expect("valid");
        assert_eq!((c.connect_timeout, c.lock_timeout), (2, 7));
        for key in ["connect_timeout", "lock_timeout"] {
            for bad in [json!(0), json!(-3), json!(1.5), json!(86_401)] {
                let err = with(|o| {
                    o.insert(key.into(), bad.clone());
                })
                .unwrap_err();
                assert!(matches!(err, ConfigError::TimeoutRange { .. }), "{err}");
                assert!(err.to_string().contains(&format!("\"{key}\"")), "{err}");
            }
            let err = with(|o| {
                o.insert(key.into(), json!("30"));
            })
            .unwrap_err();
            assert!(
                err.to_string().starts_with(&format!(
                    "Could not parse config json: config key \"{key}\""
                )),
                "{err}"
            );
        }
        // The original's checks still come first.
        let err = with(|o| {
            o.insert("lock_timeout".into(), json!(0));
            o.insert("tables".into(), json!([]));
        })
        .unwrap_err();
        assert_eq!(err, ConfigError::TablesEmpty);
    }

    #[test]
    fn read_error_is_go_style() {
        let err = load(Path::new("/nonexistent/config.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Fail reading config file: open /nonexistent/config.json: no such file or directory"
        );
    }
}
