//! Cloud Foundry `lager` v3 JSON logging, byte-compatible with what the Go daemon writes.
//!
//! Two formats, one JSON object per line:
//!
//! - [`LogFormat::Pretty`] (the daemon since 2021):
//!   `{"timestamp":"2025-01-02T03:04:05.123456789Z","level":"info","source":"ServiceBackup","message":"ServiceBackup.<action>","data":{...}}`
//! - [`LogFormat::Legacy`] (manual-backup):
//!   `{"timestamp":"1467649696.229321241","source":"ServiceBackup","message":"ServiceBackup.<action>","log_level":1,"data":{...}}`
//!
//! `data` keys are sorted (Go map order), strings use Go's HTML-safe escaping (`<` becomes
//! `\u003c`), floats use Go's `encoding/json` number format, and error lines carry `"error"`.
//! [`Logger::session`] mirrors lager sessions: the task gains `.<name>` and the data a
//! `"session"` counter that restarts on every [`Logger::with_data`] copy.
//!
//! A [`Sink`] also redacts: every string value is scrubbed of the secrets registered with
//! [`Sink::add_secrets`] (destination keys, passwords, private keys), whatever produced it
//! (a child's output, an error message from a storage SDK, ...).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The `data` object of a log line.
pub type Data = BTreeMap<String, serde_json::Value>;

/// Builds a [`Data`] map: `data!{"key" => value, ...}`.
#[macro_export]
macro_rules! data {
    () => { $crate::lager::Data::new() };
    ($($key:expr => $value:expr),+ $(,)?) => {{
        let mut map = $crate::lager::Data::new();
        $( map.insert(($key).to_string(), ::serde_json::json!($value)); )+
        map
    }};
}

/// Which of lager's two JSON layouts a sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// RFC 3339 timestamps and a `level` string (the daemon).
    Pretty,
    /// Epoch-seconds timestamps and an integer `log_level` (manual-backup).
    Legacy,
}

/// lager's log levels (only INFO and above are ever written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `info` / 1.
    Info,
    /// `error` / 2.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Error => "error",
        }
    }

    fn number(self) -> u8 {
        match self {
            Level::Info => 1,
            Level::Error => 2,
        }
    }
}

/// The text that replaces a registered secret.
pub const REDACTED: &str = "[REDACTED]";

/// Where log lines go: a writer (stdout, or memory in tests) plus the format and redactions.
pub struct Sink {
    format: LogFormat,
    out: Mutex<Box<dyn Write + Send>>,
    secrets: RwLock<bbr_gocompat::redact::Secrets>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("format", &self.format)
            .finish()
    }
}

/// An in-memory log buffer, for tests and for callers that want to inspect lines.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog(Arc<Mutex<Vec<u8>>>);

impl MemoryLog {
    /// Everything written so far.
    pub fn contents(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The lines written so far, parsed as JSON.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.contents()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Write for MemoryLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    /// A sink writing to the given writer.
    pub fn new(format: LogFormat, out: Box<dyn Write + Send>) -> Arc<Self> {
        Arc::new(Sink {
            format,
            out: Mutex::new(out),
            secrets: RwLock::default(),
        })
    }

    /// A sink writing to standard output.
    pub fn stdout(format: LogFormat) -> Arc<Self> {
        Self::new(format, Box::new(std::io::stdout()))
    }

    /// A sink writing into memory, and the handle to read it back.
    pub fn memory(format: LogFormat) -> (Arc<Self>, MemoryLog) {
        let log = MemoryLog::default();
        (Self::new(format, Box::new(log.clone())), log)
    }

    /// Registers values that must never appear in a log line, under the rules of
    /// [`bbr_gocompat::redact::Secrets`] (values shorter than four characters ignored, the
    /// longer lines of a multi-line value registered too).
    pub fn add_secrets<I, S>(&self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.secrets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add(values);
    }

    fn redact(&self, text: &str) -> String {
        self.secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .redact(text, REDACTED)
    }

    fn write_line(&self, level: Level, source: &str, message: &str, data: &Data) {
        let now = chrono::Utc::now();
        let mut line = String::with_capacity(256);
        match self.format {
            LogFormat::Pretty => {
                line.push_str("{\"timestamp\":\"");
                line.push_str(&now.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string());
                line.push_str("\",\"level\":");
                self.push_string(&mut line, level.name());
                line.push_str(",\"source\":");
                self.push_string(&mut line, source);
                line.push_str(",\"message\":");
                self.push_string(&mut line, message);
                line.push_str(",\"data\":");
                self.push_object(&mut line, data.iter());
                line.push('}');
            }
            LogFormat::Legacy => {
                let _ = write!(
                    line,
                    "{{\"timestamp\":\"{}.{:09}\",\"source\":",
                    now.timestamp(),
                    now.timestamp_subsec_nanos()
                );
                self.push_string(&mut line, source);
                line.push_str(",\"message\":");
                self.push_string(&mut line, message);
                let _ = write!(line, ",\"log_level\":{},\"data\":", level.number());
                self.push_object(&mut line, data.iter());
                line.push('}');
            }
        }
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A log line that cannot be written has nowhere else to go.
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }

    fn push_string(&self, out: &mut String, text: &str) {
        push_go_string(out, &self.redact(text));
    }

    fn push_object<'a>(
        &self,
        out: &mut String,
        entries: impl Iterator<Item = (&'a String, &'a serde_json::Value)>,
    ) {
        let mut sorted: Vec<_> = entries.collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        out.push('{');
        for (i, (key, value)) in sorted.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            self.push_string(out, key);
            out.push(':');
            self.push_value(out, value);
        }
        out.push('}');
    }

    fn push_value(&self, out: &mut String, value: &serde_json::Value) {
        match value {
            serde_json::Value::Null => out.push_str("null"),
            serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    let _ = write!(out, "{i}");
                } else if let Some(u) = n.as_u64() {
                    let _ = write!(out, "{u}");
                } else if let Some(f) = n.as_f64() {
                    out.push_str(&go_float(f));
                }
            }
            serde_json::Value::String(s) => self.push_string(out, s),
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.push_value(out, item);
                }
                out.push(']');
            }
            serde_json::Value::Object(map) => self.push_object(out, map.iter()),
        }
    }
}

/// Appends `text` as a JSON string the way Go's `encoding/json` does (HTML-safe).
pub fn push_go_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats a float as Go's `encoding/json` does (ES6 number-to-string): plain decimal for
/// `1e-6 <= |f| < 1e21`, else exponent form with at least one exponent digit (`1e-7`,
/// `1e+21`), always the shortest representation that round-trips.
pub fn go_float(f: f64) -> String {
    if !f.is_finite() {
        // Go refuses to encode these; lager would log a marshalling error instead.
        return "null".to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else {
        format!("{f}")
    }
}

/// A lager logger: a component (`ServiceBackup`), a task prefix for messages, and data
/// merged into every line.
#[derive(Debug, Clone)]
pub struct Logger {
    sink: Arc<Sink>,
    component: String,
    task: String,
    session_id: String,
    data: Data,
    next_session: Arc<AtomicU64>,
}

impl Logger {
    /// A root logger for `component` (used both as `source` and as the message prefix).
    pub fn new(component: &str, sink: Arc<Sink>) -> Self {
        Logger {
            sink,
            component: component.to_owned(),
            task: component.to_owned(),
            session_id: String::new(),
            data: Data::new(),
            next_session: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The sink this logger writes to.
    pub fn sink(&self) -> &Arc<Sink> {
        &self.sink
    }

    /// A copy with extra data on every line (lager `WithData`); its session counter restarts
    /// from this logger's current value.
    pub fn with_data(&self, data: Data) -> Self {
        let mut merged = self.data.clone();
        merged.extend(data);
        Logger {
            data: merged,
            next_session: Arc::new(AtomicU64::new(self.next_session.load(Ordering::SeqCst))),
            ..self.clone()
        }
    }

    /// A sub-session (lager `Session`): messages become `<task>.<name>.<action>` and the data
    /// gains `"session": "<n>"`.
    pub fn session(&self, name: &str, data: Data) -> Self {
        let n = self.next_session.fetch_add(1, Ordering::SeqCst) + 1;
        let session_id = if self.session_id.is_empty() {
            n.to_string()
        } else {
            format!("{}.{n}", self.session_id)
        };
        let mut merged = self.data.clone();
        merged.extend(data);
        merged.insert(
            "session".to_owned(),
            serde_json::Value::String(session_id.clone()),
        );
        Logger {
            sink: self.sink.clone(),
            component: self.component.clone(),
            task: format!("{}.{name}", self.task),
            session_id,
            data: merged,
            next_session: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The message prefix, e.g. `ServiceBackup.WithIdentifier`.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// An INFO line.
    pub fn info(&self, action: &str, data: Data) {
        self.log(Level::Info, action, None, data);
    }

    /// An ERROR line with `"error": <err>`.
    pub fn error(&self, action: &str, err: &dyn std::fmt::Display, data: Data) {
        self.log(Level::Error, action, Some(err.to_string()), data);
    }

    fn log(&self, level: Level, action: &str, err: Option<String>, data: Data) {
        let mut merged = self.data.clone();
        merged.extend(data);
        if let Some(err) = err {
            merged.insert("error".to_owned(), serde_json::Value::String(err));
        }
        let message = format!("{}.{action}", self.task);
        self.sink
            .write_line(level, &self.component, &message, &merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger(format: LogFormat) -> (Logger, MemoryLog) {
        let (sink, log) = Sink::memory(format);
        (Logger::new("ServiceBackup", sink), log)
    }

    #[test]
    fn pretty_format_layout() {
        let (logger, log) = logger(LogFormat::Pretty);
        logger.info(
            "Upload backup started",
            crate::data! {"backup_guid" => "abc"},
        );
        let text = log.contents();
        let line = text.trim_end();
        let (ts, rest) = line
            .strip_prefix("{\"timestamp\":\"")
            .and_then(|l| l.split_once('"'))
            .expect("timestamp first");
        assert_eq!(ts.len(), "2025-01-02T03:04:05.123456789Z".len(), "{ts}");
        assert!(ts.ends_with('Z'));
        assert_eq!(&ts[19..20], ".");
        chrono::DateTime::parse_from_rfc3339(ts).expect("rfc3339");
        assert_eq!(
            rest,
            ",\"level\":\"info\",\"source\":\"ServiceBackup\",\"message\":\"ServiceBackup.Upload backup started\",\"data\":{\"backup_guid\":\"abc\"}}"
        );
    }

    #[test]
    fn legacy_format_layout() {
        let (logger, log) = logger(LogFormat::Legacy);
        logger.error(
            "Perform backup completed with error",
            &"exit status 1",
            Data::new(),
        );
        let text = log.contents();
        let line = text.trim_end();
        let (ts, rest) = line
            .strip_prefix("{\"timestamp\":\"")
            .and_then(|l| l.split_once('"'))
            .expect("timestamp first");
        let (secs, nanos) = ts.split_once('.').expect("dot");
        assert!(secs.parse::<u64>().expect("secs") > 1_600_000_000);
        assert_eq!(nanos.len(), 9);
        assert_eq!(
            rest,
            ",\"source\":\"ServiceBackup\",\"message\":\"ServiceBackup.Perform backup completed with error\",\"log_level\":2,\"data\":{\"error\":\"exit status 1\"}}"
        );
    }

    #[test]
    fn empty_data_is_an_empty_object() {
        let (logger, log) = logger(LogFormat::Pretty);
        logger.info("Service-backup Started", Data::new());
        assert!(log.contents().ends_with(",\"data\":{}}\n"));
    }

    #[test]
    fn data_keys_sorted_and_go_escaped() {
        let (logger, log) = logger(LogFormat::Legacy);
        logger.info(
            "x <y> & z",
            crate::data! {
                "zeta" => "a<b>&c\"d\\e\nf\tg\u{1}h\u{2028}",
                "alpha" => 1,
                "mid" => true,
            },
        );
        let text = log.contents();
        assert!(
            text.contains(r#""message":"ServiceBackup.x \u003cy\u003e \u0026 z""#),
            "{text}"
        );
        assert!(
            text.contains(
                r#""data":{"alpha":1,"mid":true,"zeta":"a\u003cb\u003e\u0026c\"d\\e\nf\tg\u0001h\u2028"}"#
            ),
            "{text}"
        );
    }

    #[test]
    fn floats_use_go_json_format() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (3.5, "3.5"),
            (0.000008081, "0.000008081"),
            (8.081e-7, "8.081e-7"),
            (1.5e-10, "1.5e-10"),
            (123456.789, "123456.789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.2345e25, "1.2345e+25"),
            (-2.5e-8, "-2.5e-8"),
            (0.1, "0.1"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(*f), *want, "{f}");
        }
    }

    #[test]
    fn sessions_and_identifier() {
        let (root, log) = logger(LogFormat::Pretty);
        for _ in 0..2 {
            let run = root.with_data(crate::data! {"backup_guid" => "g"});
            let ident = run.session("WithIdentifier", crate::data! {"identifier" => "id-1"});
            ident.info("Perform backup started", Data::new());
        }
        let lines = log.lines();
        assert_eq!(lines.len(), 2);
        for line in lines {
            assert_eq!(
                line["message"],
                "ServiceBackup.WithIdentifier.Perform backup started"
            );
            assert_eq!(line["data"]["session"], "1");
            assert_eq!(line["data"]["identifier"], "id-1");
            assert_eq!(line["data"]["backup_guid"], "g");
            assert_eq!(line["source"], "ServiceBackup");
        }
        let nested = root.session("a", Data::new()).session("b", Data::new());
        nested.info("x", Data::new());
        let last = log.lines().pop().expect("line");
        assert_eq!(last["message"], "ServiceBackup.a.b.x");
        // The root logger's own counter: its first session is "1" (with_data copies count apart).
        assert_eq!(last["data"]["session"], "1.1");
    }

    #[test]
    fn secrets_are_redacted_everywhere() {
        let (logger, log) = logger(LogFormat::Pretty);
        let pem = "-----BEGIN KEY-----\nMIIEowIBAAKCAQEAx1y2z3abcdefghij\n-----END KEY-----";
        logger.sink().add_secrets(["SECRETKEY123", pem, "ab"]);
        logger.error(
            "upload SECRETKEY123",
            &"denied for SECRETKEY123",
            crate::data! {"output" => "line MIIEowIBAAKCAQEAx1y2z3abcdefghij end", "ab" => "ab"},
        );
        let text = log.contents();
        assert!(!text.contains("SECRETKEY123"), "{text}");
        assert!(!text.contains("MIIEowIBAAKCAQEAx1y2z3abcdefghij"), "{text}");
        assert!(text.contains("[REDACTED]"));
        assert!(
            text.contains(r#""ab":"ab""#),
            "short values are not secrets: {text}"
        );
    }
}
