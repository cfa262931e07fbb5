//! Pieces shared by the three backends: key normalisation, client and retry settings, error
//! wording and redaction, and a small "send one request" helper for the hand-made calls.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use object_store::client::{HttpClient, HttpConnector, HttpRequest, ReqwestConnector};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, Certificate, ClientOptions, RetryConfig};

use crate::StorageError;
use bbr_gocompat::error_chain;

/// Normalise an object key like Go's `filepath.Join` does for the original's keys: empty and
/// `.` segments are dropped (`"/a//b/./c/"` → `"a/b/c"`). `..` segments and control
/// control characters (which the stores' clients refuse; see [`escape_key`]) are refused, and
/// so is a key that is empty after normalisation.
pub fn normalize_key(key: &str) -> Result<String, StorageError> {
    let invalid = |reason: &str| StorageError::InvalidKey {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    if key.chars().any(|c| c.is_ascii_control()) {
        return Err(invalid("control characters are not allowed"));
    }
    let mut parts = Vec::new();
    for seg in key.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(invalid("\"..\" segments are not allowed")),
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(invalid("the key is empty"));
    }
    Ok(parts.join("/"))
}

/// Whether `%XY` (upper-case hex) in a key stands for an escaped byte (see [`escape_key`]).
fn is_escaped_byte(b: u8) -> bool {
    b < 0x20 || b == b'%' || b >= 0x7f
}

fn upper_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Spells a local relative path (raw bytes, `/`-separated) as an object key. Keys must be
/// UTF-8 without ASCII control characters, so these bytes are written as `%XY` (upper-case
/// hex): every byte of an invalid UTF-8 sequence, every control character (`\n`, `\t`, DEL,
/// …), and a `%` that is itself followed by two upper-case hex digits naming such a byte (or
/// `25`). Everything else, including `%` in any other position and valid non-ASCII UTF-8, is
/// kept, so ordinary names are unchanged. [`unescape_key`] reverses it exactly. Returns the
/// key and whether it differs from the name read as UTF-8 (the caller warns then).
pub fn escape_key(relative: &[u8]) -> (String, bool) {
    let mut out = String::with_capacity(relative.len() + 8);
    let mut changed = false;
    for chunk in relative.utf8_chunks() {
        let valid = chunk.valid();
        let bytes = valid.as_bytes();
        for (i, c) in valid.char_indices() {
            let escape = match c {
                c if c.is_ascii_control() => true,
                '%' => match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&h), Some(&l)) => match (upper_hex(h), upper_hex(l)) {
                        (Some(h), Some(l)) => is_escaped_byte(h * 16 + l),
                        _ => false,
                    },
                    _ => false,
                },
                _ => false,
            };
            if escape {
                out.push_str(&format!("%{:02X}", c as u32));
                changed = true;
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
            changed = true;
        }
    }
    (out, changed)
}

/// The local name bytes an [`escape_key`] key stands for.
pub fn unescape_key(key: &str) -> Vec<u8> {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(upper_hex),
                b.get(i + 2).copied().and_then(upper_hex),
            )
            && is_escaped_byte(h * 16 + l)
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// An `object_store` path for an already normalised key.
pub(crate) fn object_path(key: &str) -> Result<ObjectPath, StorageError> {
    ObjectPath::parse(key).map_err(|e| StorageError::InvalidKey {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// HTTP client settings shared by every store: `http://` allowed, short connect timeout, a
/// generous per-request timeout (one part), and an optional extra trusted CA.
pub(crate) fn client_options(ca_pem: Option<&str>) -> Result<ClientOptions, StorageError> {
    let mut opts = ClientOptions::new()
        .with_allow_http(true)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(300));
    if let Some(pem) = ca_pem.filter(|p| !p.trim().is_empty()) {
        let certs = Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| StorageError::Config(format!("ca_cert: not a valid PEM bundle: {e}")))?;
        if certs.is_empty() {
            return Err(StorageError::Config(
                "ca_cert: no certificate found in the PEM text".to_string(),
            ));
        }
        for c in certs {
            opts = opts.with_root_certificate(c);
        }
    }
    Ok(opts)
}

/// Modest retries: an unreachable endpoint fails within about a second or two.
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(60),
    }
}

/// The HTTP client for our own (non-`object_store`) requests, with the same TLS settings.
pub(crate) fn http_client(opts: &ClientOptions) -> Result<HttpClient, StorageError> {
    ReqwestConnector::default()
        .connect(opts)
        .map_err(|e| StorageError::Config(format!("building the HTTP client: {e}")))
}

/// Removes secrets (and the parts of server replies that echo signatures) from error text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Redactor {
    secrets: bbr_gocompat::redact::Secrets,
}

/// XML elements in S3 / Azure error bodies that carry signatures or what was signed.
const SENSITIVE_ELEMENTS: &[&str] = &[
    "SignatureProvided",
    "StringToSign",
    "StringToSignBytes",
    "CanonicalRequest",
    "CanonicalRequestBytes",
    "AuthenticationErrorDetail",
];

impl Redactor {
    pub(crate) fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Redactor {
            secrets: bbr_gocompat::redact::Secrets::new(secrets),
        }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = self.secrets.redact(text, "<redacted>");
        for el in SENSITIVE_ELEMENTS {
            out = strip_element(&out, el);
        }
        out = redact_after(&out, "Signature=", |c: char| c.is_ascii_hexdigit());
        out = redact_after(&out, "sig=", |c: char| {
            c.is_ascii_alphanumeric() || "%+/=".contains(c)
        });
        out = redact_after(&out, "SharedKey ", |c: char| {
            c.is_ascii_alphanumeric() || ":+/=".contains(c)
        });
        out = redact_after(&out, "Bearer ", |c: char| {
            c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
        });
        out
    }
}

/// Replace the content of every `<el>...</el>` with `<redacted>`.
fn strip_element(text: &str, el: &str) -> String {
    let open = format!("<{el}>");
    let close = format!("</{el}>");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        out.push_str(&rest[..i + open.len()]);
        rest = &rest[i + open.len()..];
        match rest.find(&close) {
            Some(j) => {
                out.push_str("<redacted>");
                rest = &rest[j..];
            }
            None => {
                out.push_str("<redacted>");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replace the run of `keep`-characters after each `marker` with `<redacted>`.
fn redact_after(text: &str, marker: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let end = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        if end > 0 {
            out.push_str("<redacted>");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Wording for an `object_store` failure of the store `label` while `doing` something to
/// `key`: [`StorageError::NotFound`] for a missing object (or bucket), redacted.
pub(crate) fn object_store_error(
    label: &str,
    redactor: &Redactor,
    doing: &str,
    key: &str,
    e: object_store::Error,
) -> StorageError {
    let not_found = matches!(e, object_store::Error::NotFound { .. });
    let text = redactor.redact(&format!("{label}: {doing} {key:?}: {e}"));
    if not_found {
        StorageError::NotFound(text)
    } else {
        StorageError::Other(text)
    }
}

/// Per-call context: how to name the destination in errors, the client, the redactor.
pub(crate) struct Ctx<'a> {
    pub(crate) label: &'a str,
    pub(crate) http: &'a HttpClient,
    pub(crate) redactor: &'a Redactor,
}

impl Ctx<'_> {
    /// Wording for an `object_store` failure while `doing` something to `key`.
    pub(crate) fn object_store_error(
        &self,
        doing: &str,
        key: &str,
        e: object_store::Error,
    ) -> StorageError {
        object_store_error(self.label, self.redactor, doing, key, e)
    }

    /// An error worded as `<label>: <message>`, redacted.
    /// The store answered with an error status (see [`StorageError::Rejected`]).
    pub(crate) fn rejected(&self, message: impl AsRef<str>) -> StorageError {
        StorageError::Rejected(self.redactor.redact(&format!(
            "{}: {}",
            self.label,
            message.as_ref()
        )))
    }

    pub(crate) fn other(&self, message: impl AsRef<str>) -> StorageError {
        StorageError::Other(
            self.redactor
                .redact(&format!("{}: {}", self.label, message.as_ref())),
        )
    }

    /// Send one request (no retries) and collect the whole (small) reply.
    pub(crate) async fn send(&self, doing: &str, req: HttpRequest) -> Result<Reply, StorageError> {
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| self.other(format!("{doing}: {}", error_chain(&e))))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .bytes()
            .await
            .map_err(|e| self.other(format!("{doing}: reading the reply: {}", error_chain(&e))))?;
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// A complete HTTP reply.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// `"403 Forbidden"`.
    pub(crate) fn status_text(&self) -> String {
        match self.status.canonical_reason() {
            Some(r) => format!("{} {r}", self.status.as_u16()),
            None => self.status.as_u16().to_string(),
        }
    }

    /// `Code` and the first line of `Message` of an S3 / Azure XML error body.
    pub(crate) fn xml_error(&self) -> (Option<String>, Option<String>) {
        let text = String::from_utf8_lossy(&self.body);
        let code = xml_text(&text, "Code");
        let message = xml_text(&text, "Message")
            .map(|m| m.lines().next().unwrap_or_default().trim().to_string());
        (code, message)
    }

    /// `"403 Forbidden (AccessDenied: Access Denied)"` from status and XML error body.
    pub(crate) fn describe_xml(&self) -> String {
        match self.xml_error() {
            (Some(c), Some(m)) if !m.is_empty() => format!("{} ({c}: {m})", self.status_text()),
            (Some(c), _) => format!("{} ({c})", self.status_text()),
            _ => self.status_text(),
        }
    }

    /// `"403 Forbidden (message)"` from a GCS JSON error body.
    pub(crate) fn describe_json(&self) -> String {
        let message = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .or_else(|| {
                let t = String::from_utf8_lossy(&self.body).trim().to_string();
                (!t.is_empty() && t.len() < 300).then_some(t)
            });
        match message {
            Some(m) => format!("{} ({m})", self.status_text()),
            None => self.status_text(),
        }
    }
}

/// The text of the first `<tag>...</tag>` in `xml`.
pub(crate) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml[start..end].trim().to_string())
}

/// [`endpoint_problem`]'s reason for a URL with user info (never quote such a URL).
pub(crate) const HAS_CREDENTIALS: &str = "must not contain credentials";

/// Why `url` cannot be a store endpoint, if it cannot: it must be `http://` or `https://`,
/// carry no credentials, name a host, and have no query or fragment. Credentials are
/// checked first, so a caller may quote the URL in the other reasons.
pub(crate) fn endpoint_problem(url: &url::Url) -> Option<&'static str> {
    if !url.username().is_empty() || url.password().is_some() {
        Some(HAS_CREDENTIALS)
    } else if !matches!(url.scheme(), "http" | "https") {
        Some("must be an http:// or https:// URL")
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("has no host")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("must not have a query string or fragment")
    } else {
        None
    }
}

/// Parse an endpoint URL; a value without a scheme is taken as `https://`.
pub(crate) fn parse_endpoint(what: &str, raw: &str) -> Result<url::Url, StorageError> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| StorageError::Config(format!("{what} {raw:?} is not a valid URL: {e}")))?;
    match endpoint_problem(&url) {
        Some(HAS_CREDENTIALS) => Err(StorageError::Config(format!("{what} {HAS_CREDENTIALS}"))),
        Some(reason) => Err(StorageError::Config(format!("{what} {raw:?} {reason}"))),
        None => Ok(url),
    }
}

/// The URL as text without a trailing slash.
pub(crate) fn url_base(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_escape_invalid_bytes_and_controls_reversibly() {
        let cases: &[(&[u8], &str, bool)] = &[
            (b"plain/name.txt", "plain/name.txt", false),
            (
                "caf\u{e9} 100%/x%41%zz%".as_bytes(),
                "caf\u{e9} 100%/x%41%zz%",
                false,
            ),
            (b"bad\xffname", "bad%FFname", true),
            (b"two\nlines\r\t\x7f", "two%0Alines%0D%09%7F", true),
            (
                b"lit%FF and %25 and %0A",
                "lit%25FF and %2525 and %250A",
                true,
            ),
            (b"lit%ff", "lit%ff", false),
        ];
        for (raw, key, changed) in cases {
            let (got, c) = escape_key(raw);
            assert_eq!(&got, key, "{raw:?}");
            assert_eq!(c, *changed, "{raw:?}");
            assert_eq!(unescape_key(&got), *raw, "{got}");
            assert_eq!(normalize_key(&got).unwrap(), got, "storable");
        }
        // A U+0085 (a Unicode, not ASCII, control) is valid in keys and kept.
        assert_eq!(
            escape_key("a\u{85}".as_bytes()),
            ("a\u{85}".to_string(), false)
        );
        assert!(normalize_key("a\u{85}").is_ok());
        assert!(normalize_key("a\nb").is_err());
    }

    #[test]
    fn keys_are_normalised_like_filepath_join() {
        assert_eq!(normalize_key("a/b/c").unwrap(), "a/b/c");
        assert_eq!(normalize_key("/a//b/./c/").unwrap(), "a/b/c");
        assert_eq!(
            normalize_key("base/path/2024/01/02/f.tgz").unwrap(),
            "base/path/2024/01/02/f.tgz"
        );
        assert_eq!(normalize_key("sp ace/ü~x#y").unwrap(), "sp ace/ü~x#y");
    }

    #[test]
    fn bad_keys_are_refused() {
        for k in ["", "/", "./.", "a/../b", "..", "a\nb", "a\0b"] {
            assert!(
                matches!(normalize_key(k), Err(StorageError::InvalidKey { .. })),
                "{k:?}"
            );
        }
    }

    #[test]
    fn redactor_removes_secrets_and_signatures() {
        let r = Redactor::new(["topsecretvalue".to_string(), "ab".to_string()]);
        let text = "failed: topsecretvalue <SignatureProvided>abcd</SignatureProvided> \
            <StringToSign>AWS4 x</StringToSign> Signature=0123abcd, next \
            ?sv=1&sig=AbC%2F%3D&x=1 <AuthenticationErrorDetail>The MAC signature found \
            'zzz'</AuthenticationErrorDetail> ab";
        let out = r.redact(text);
        assert!(!out.contains("topsecretvalue"), "{out}");
        assert!(!out.contains("abcd"), "{out}");
        assert!(!out.contains("AWS4 x"), "{out}");
        assert!(!out.contains("0123"), "{out}");
        assert!(!out.contains("AbC"), "{out}");
        assert!(!out.contains("zzz"), "{out}");
        assert!(out.contains("Signature=<redacted>, next"), "{out}");
        assert!(
            out.ends_with(" ab"),
            "short strings are not treated as secrets: {out}"
        );
    }

    #[test]
    fn endpoints_are_parsed() {
        let u = parse_endpoint("endpoint", "http://127.0.0.1:9000/").unwrap();
        assert_eq!(url_base(&u), "http://127.0.0.1:9000");
        let u = parse_endpoint("endpoint", "s3.example.com").unwrap();
        assert_eq!(url_base(&u), "https://s3.example.com");
        assert!(parse_endpoint("endpoint", "ftp://x").is_err());
        assert!(parse_endpoint("endpoint", "http://").is_err());
        assert!(parse_endpoint("endpoint", "http://u:p@h").is_err());
    }

    #[test]
    fn xml_errors_are_read() {
        let r = Reply {
            status: StatusCode::FORBIDDEN,
            headers: HeaderMap::new(),
            body: Bytes::from_static(
                b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied\nRequestId: 1</Message></Error>",
            ),
        };
        assert_eq!(
            r.describe_xml(),
            "403 Forbidden (AccessDenied: Access Denied)"
        );
    }
}
