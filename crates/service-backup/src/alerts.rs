//! Service alerts (docs/service-backup.md#alerts): on a failed run the daemon emails the configured
//! CF space through the CF Notifications service, like the vendored Go `service-alerts-client`.
//!
//! Sequence: `GET {cc}/v2/info` (UAA URL, cached) → password grant for the CF user → org guid →
//! space guid → client-credentials grant for the notifications client → `POST
//! {notifications}/spaces/<guid>`. Each request has a 30 s timeout and is retried with
//! exponential backoff (1 s, ×2, capped at 16 s) on network errors, 5xx and CF router
//! "unknown_route" 404s; the whole alert is bounded by `timeout_seconds` (default 60). Retry
//! notes go to stderr as plain text with the `[ServiceBackup] ` prefix, as in the original.
//! Unlike the original, form bodies are URL-encoded.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::config::AlertsConfig;
use bbr_gocompat::error_chain;

/// The subject suffix of a backup alert.
pub const SERVICE_BACKUP_FAILED: &str = "Service Backup Failed";

/// Why an alert could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    /// The HTTP client could not be built.
    #[error("building the alerts HTTP client: {0}")]
    Client(String),
    /// `timeout_seconds` elapsed.
    #[error("sending service alert timed out")]
    TimedOut,
    /// A request failed for good.
    #[error("{0}")]
    Request(String),
}

enum Attempt {
    Retry(String),
    Fatal(String),
}

/// Sends alerts for one configuration.
pub struct AlertsClient {
    config: AlertsConfig,
    http: reqwest::Client,
    uaa_url: tokio::sync::Mutex<Option<String>>,
    initial_backoff: Duration,
}

impl std::fmt::Debug for AlertsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertsClient")
            .field("product_name", &self.config.product_name)
            .finish_non_exhaustive()
    }
}

/// Writes a retry note to stderr: `[ServiceBackup] 2025/01/02 03:04:05.123456 <msg>`.
fn stderr_note(message: &str) {
    let now = chrono::Utc::now().format("%Y/%m/%d %H:%M:%S%.6f");
    eprintln!("[ServiceBackup] {now} {message}");
}

#[derive(Deserialize)]
struct Info {
    token_endpoint: String,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Deserialize)]
struct Listing {
    total_results: u64,
    #[serde(default)]
    resources: Vec<Resource>,
}

#[derive(Deserialize)]
struct Resource {
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    guid: String,
}

impl AlertsClient {
    /// Builds the client (no request is made yet).
    pub fn new(config: AlertsConfig) -> Result<Self, AlertError> {
        crate::install_crypto_provider();
        let insecure = config.config.skip_ssl_validation.unwrap_or(false);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tls_danger_accept_invalid_certs(insecure)
            .build()
            .map_err(|e| AlertError::Client(e.to_string()))?;
        Ok(AlertsClient {
            config,
            http,
            uaa_url: tokio::sync::Mutex::new(None),
            initial_backoff: Duration::from_secs(1),
        })
    }

    /// Shortens the first retry delay (tests).
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    fn timeout(&self) -> Duration {
        match self.config.config.timeout_seconds {
            0 => Duration::from_secs(60),
            n => Duration::from_secs(n),
        }
    }

    /// Sends "Service Backup Failed" for the configured product with `content` as the body.
    pub async fn send_backup_failure(
        &self,
        service_instance_id: &str,
        content: &str,
    ) -> Result<(), AlertError> {
        let timeout = self.timeout();
        let deadline = Instant::now() + timeout;
        tokio::time::timeout(
            timeout,
            self.send(
                SERVICE_BACKUP_FAILED,
                service_instance_id,
                content,
                deadline,
            ),
        )
        .await
        .map_err(|_| AlertError::TimedOut)?
    }

    async fn send(
        &self,
        subject: &str,
        service_instance_id: &str,
        content: &str,
        deadline: Instant,
    ) -> Result<(), AlertError> {
        let cc = self
            .config
            .config
            .cloud_controller
            .url
            .trim_end_matches('/');
        let notifications = &self.config.config.notifications;

        let uaa = {
            let mut cached = self.uaa_url.lock().await;
            match cached.as_ref() {
                Some(url) => url.clone(),
                None => {
                    let url = format!("{cc}/v2/info");
                    let info: Info = self
                        .json_with_retry("CF INFO", deadline, || self.http.get(&url))
                        .await?;
                    let uaa = info.token_endpoint.trim_end_matches('/').to_owned();
                    *cached = Some(uaa.clone());
                    uaa
                }
            }
        };
        let token_url = format!("{uaa}/oauth/token");

        let cc_user = &self.config.config.cloud_controller;
        let cf_token: Token = self
            .json_with_retry("CF UAA token", deadline, || {
                self.http
                    .post(&token_url)
                    .basic_auth("cf", Some(""))
                    .form(&[
                        ("grant_type", "password"),
                        ("username", cc_user.user.as_str()),
                        ("scope", ""),
                        ("password", cc_user.password.as_str()),
                    ])
            })
            .await?;

        let org_guid = self
            .guid_named(
                "CF org",
                &format!("{cc}/v2/organizations"),
                &notifications.cf_org,
                &cf_token.access_token,
                deadline,
            )
            .await?;
        let space_guid = self
            .guid_named(
                "CF space",
                &format!("{cc}/v2/organizations/{org_guid}/spaces"),
                &notifications.cf_space,
                &cf_token.access_token,
                deadline,
            )
            .await?;

        let client_token: Token = self
            .json_with_retry("notifications UAA token", deadline, || {
                self.http
                    .post(&token_url)
                    .basic_auth(&notifications.client_id, Some(&notifications.client_secret))
                    .form(&[("grant_type", "client_credentials")])
            })
            .await?;

        let product = &self.config.product_name;
        let instance = if service_instance_id.is_empty() {
            String::new()
        } else {
            format!(", service instance {service_instance_id}")
        };
        let generated = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut body = json!({
            "kind_id": "service-alerts",
            "subject": format!("[Service Alert][{product}] {subject}"),
            "text": format!("Alert from {product}{instance}:\n\n{content}\n\n[Alert generated at {generated}]"),
        });
        if !notifications.reply_to.is_empty() {
            body["reply_to"] = json!(notifications.reply_to);
        }
        let send_url = format!(
            "{}/spaces/{space_guid}",
            notifications.service_url.trim_end_matches('/')
        );
        self.with_retry("notifications", deadline, || {
            self.http
                .post(&send_url)
                .header("X-NOTIFICATIONS-VERSION", "1")
                .bearer_auth(&client_token.access_token)
                .json(&body)
        })
        .await?;
        Ok(())
    }

    /// The guid of the first resource named `name` in the Cloud Controller listing at `url`
    /// (`?q=name:<name>`); `<label> not found: '<name>'` when there is none.
    async fn guid_named(
        &self,
        label: &str,
        url: &str,
        name: &str,
        token: &str,
        deadline: Instant,
    ) -> Result<String, AlertError> {
        let listing: Listing = self
            .json_with_retry(label, deadline, || {
                self.http
                    .get(url)
                    .query(&[("q", format!("name:{name}"))])
                    .bearer_auth(token)
            })
            .await?;
        match (listing.total_results, listing.resources.first()) {
            (n, Some(r)) if n > 0 => Ok(r.metadata.guid.clone()),
            _ => Err(AlertError::Request(format!("{label} not found: '{name}'"))),
        }
    }

    async fn json_with_retry<T: serde::de::DeserializeOwned>(
        &self,
        label: &str,
        deadline: Instant,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, AlertError> {
        let body = self.with_retry(label, deadline, request).await?;
        serde_json::from_str(&body)
            .map_err(|e| AlertError::Request(format!("{label} response could not be decoded: {e}")))
    }

    /// Sends a request until it succeeds, fails for good, or the next wait would pass the
    /// deadline. Returns the response body.
    async fn with_retry(
        &self,
        label: &str,
        deadline: Instant,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<String, AlertError> {
        let mut backoff = self.initial_backoff;
        loop {
            let attempt = match request().send().await {
                Err(e) => Attempt::Retry(error_chain(&e)),
                Ok(resp) => {
                    let status = resp.status();
                    let unknown_route = status == reqwest::StatusCode::NOT_FOUND
                        && resp
                            .headers()
                            .get("X-Cf-Routererror")
                            .is_some_and(|v| v.as_bytes() == b"unknown_route");
                    let body = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(body);
                    }
                    let msg = format!(
                        "{label} expected to return HTTP 200, got {}. Body: {body}",
                        status.as_u16()
                    );
                    if status.is_server_error() || unknown_route {
                        Attempt::Retry(msg)
                    } else {
                        Attempt::Fatal(msg)
                    }
                }
            };
            match attempt {
                Attempt::Fatal(msg) => return Err(AlertError::Request(msg)),
                Attempt::Retry(msg) => {
                    if Instant::now() + backoff > deadline {
                        stderr_note(&format!("Giving up, {label} request failed: {msg}"));
                        return Err(AlertError::Request(format!(
                            "{label} request failed: {msg}"
                        )));
                    }
                    stderr_note(&format!(
                        "Retrying in {} seconds, {label} request error: {msg}",
                        backoff.as_secs_f64()
                    ));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(16));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AlertsClientConfig, CloudControllerConfig, NotificationsConfig};
    use crate::test_http::{Reply, StandIn};

    fn config(cc: &str, notifications: &str, timeout: u64) -> AlertsConfig {
        AlertsConfig {
            product_name: "SomeDB".into(),
            config: AlertsClientConfig {
                cloud_controller: CloudControllerConfig {
                    url: cc.into(),
                    user: "admin".into(),
                    password: "p&ss word".into(),
                },
                notifications: NotificationsConfig {
                    service_url: notifications.into(),
                    cf_org: "my-org".into(),
                    cf_space: "my-space".into(),
                    reply_to: String::new(),
                    client_id: "notify-client".into(),
                    client_secret: "notify-secret".into(),
                },
                timeout_seconds: timeout,
                skip_ssl_validation: None,
            },
        }
    }

    async fn cc_and_uaa(fail_first_info: usize) -> (StandIn, StandIn) {
        let uaa = StandIn::start(|_req| Reply::json(200, r#"{"access_token":"tok"}"#)).await;
        let uaa_url = uaa.url();
        let failures = std::sync::atomic::AtomicUsize::new(fail_first_info);
        let cc = StandIn::start(move |req| {
            if req.path == "/v2/info" {
                if failures
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
                {
                    return Reply::json(502, "bad gateway");
                }
                return Reply::json(200, &format!(r#"{{"token_endpoint":"{uaa_url}"}}"#));
            }
            if req.path.ends_with("/spaces") {
                return Reply::json(
                    200,
                    r#"{"total_results":1,"resources":[{"metadata":{"guid":"space-guid"}}]}"#,
                );
            }
            Reply::json(
                200,
                r#"{"total_results":1,"resources":[{"metadata":{"guid":"org-guid"}}]}"#,
            )
        })
        .await;
        (cc, uaa)
    }

    #[tokio::test]
    async fn full_request_sequence() {
        let (cc, uaa) = cc_and_uaa(0).await;
        let notif = StandIn::start(|_req| Reply::json(200, "{}")).await;
        let client = AlertsClient::new(config(&cc.url(), &notif.url(), 10)).expect("client");
        client
            .send_backup_failure(
                "FakeIdentifier",
                "A backup run has failed with the following error: boom",
            )
            .await
            .expect("sent");

        let cc_reqs = cc.requests();
        let uaa_reqs = uaa.requests();
        let notif_reqs = notif.requests();
        assert_eq!(cc_reqs.len(), 3, "{cc_reqs:#?}");
        assert_eq!(uaa_reqs.len(), 2);
        assert_eq!(notif_reqs.len(), 1);

        assert_eq!(cc_reqs[0].method, "GET");
        assert_eq!(cc_reqs[0].path, "/v2/info");
        assert_eq!(cc_reqs[1].path, "/v2/organizations");
        assert_eq!(cc_reqs[1].query, "q=name%3Amy-org");
        assert_eq!(cc_reqs[1].header("authorization"), "Bearer tok");
        assert_eq!(cc_reqs[2].path, "/v2/organizations/org-guid/spaces");
        assert_eq!(cc_reqs[2].query, "q=name%3Amy-space");

        assert_eq!(uaa_reqs[0].path, "/oauth/token");
        assert_eq!(uaa_reqs[0].header("authorization"), "Basic Y2Y6"); // "cf:"
        assert_eq!(
            uaa_reqs[0].body,
            "grant_type=password&username=admin&scope=&password=p%26ss+word"
        );
        assert_eq!(uaa_reqs[1].body, "grant_type=client_credentials");
        assert_eq!(
            uaa_reqs[1].header("authorization"),
            "Basic bm90aWZ5LWNsaWVudDpub3RpZnktc2VjcmV0"
        );

        let n = &notif_reqs[0];
        assert_eq!(n.method, "POST");
        assert_eq!(n.path, "/spaces/space-guid");
        assert_eq!(n.header("x-notifications-version"), "1");
        assert_eq!(n.header("content-type"), "application/json");
        let body: serde_json::Value = serde_json::from_str(&n.body).expect("json");
        assert_eq!(body["kind_id"], "service-alerts");
        assert_eq!(
            body["subject"],
            "[Service Alert][SomeDB] Service Backup Failed"
        );
        let text = body["text"].as_str().expect("text");
        assert!(text.starts_with("Alert from SomeDB, service instance FakeIdentifier:\n\nA backup run has failed with the following error: boom\n\n[Alert generated at "), "{text}");
        assert!(body.get("reply_to").is_none());
    }

    #[tokio::test]
    async fn without_identifier_and_uaa_url_cached() {
        let (cc, uaa) = cc_and_uaa(0).await;
        let notif = StandIn::start(|_req| Reply::json(200, "{}")).await;
        let client = AlertsClient::new(config(&cc.url(), &notif.url(), 10)).expect("client");
        client.send_backup_failure("", "x").await.expect("first");
        client.send_backup_failure("", "y").await.expect("second");
        assert_eq!(cc.requests().len(), 5, "info fetched once");
        assert_eq!(uaa.requests().len(), 4);
        let body: serde_json::Value =
            serde_json::from_str(&notif.requests()[0].body).expect("json");
        assert!(
            body["text"]
                .as_str()
                .expect("text")
                .starts_with("Alert from SomeDB:\n\nx")
        );
    }

    #[tokio::test]
    async fn retries_on_5xx() {
        let (cc, uaa) = cc_and_uaa(2).await;
        let notif = StandIn::start(|_req| Reply::json(200, "{}")).await;
        let client = AlertsClient::new(config(&cc.url(), &notif.url(), 10))
            .expect("client")
            .with_initial_backoff(Duration::from_millis(10));
        client.send_backup_failure("", "x").await.expect("sent");
        assert_eq!(cc.requests().len(), 5, "two failed info requests, then 3");
        assert_eq!(uaa.requests().len(), 2);
        assert_eq!(notif.requests().len(), 1);
    }

    #[tokio::test]
    async fn non_retryable_status_fails_at_once() {
        let (cc, _uaa) = cc_and_uaa(0).await;
        let notif = StandIn::start(|_req| Reply::json(403, "nope")).await;
        let client = AlertsClient::new(config(&cc.url(), &notif.url(), 10)).expect("client");
        let err = client.send_backup_failure("", "x").await.expect_err("403");
        assert_eq!(
            err.to_string(),
            "notifications expected to return HTTP 200, got 403. Body: nope"
        );
        assert_eq!(notif.requests().len(), 1);
    }

    #[tokio::test]
    async fn org_not_found() {
        let uaa = StandIn::start(|_req| Reply::json(200, r#"{"access_token":"tok"}"#)).await;
        let uaa_url = uaa.url();
        let cc = StandIn::start(move |req| {
            if req.path == "/v2/info" {
                Reply::json(200, &format!(r#"{{"token_endpoint":"{uaa_url}"}}"#))
            } else {
                Reply::json(200, r#"{"total_results":0,"resources":[]}"#)
            }
        })
        .await;
        let client =
            AlertsClient::new(config(&cc.url(), "http://127.0.0.1:9", 10)).expect("client");
        let err = client.send_backup_failure("", "x").await.expect_err("org");
        assert_eq!(err.to_string(), "CF org not found: 'my-org'");
    }

    #[tokio::test]
    async fn times_out_when_the_service_keeps_failing() {
        let cc = StandIn::start(|_req| Reply::json(503, "down")).await;
        let client = AlertsClient::new(config(&cc.url(), "http://127.0.0.1:9", 1))
            .expect("client")
            .with_initial_backoff(Duration::from_millis(200));
        // The 1 s limit is what is under test. A generous multiple of it catches retries
        // that never stop (the service answers 503 for ever), or a limit not applied (the
        // 60 s default), without timing a loaded machine's scheduling.
        let err =
            tokio::time::timeout(Duration::from_secs(30), client.send_backup_failure("", "x"))
                .await
                .expect("the retries outlived the 1 s alert timeout")
                .expect_err("fails");
        assert!(
            matches!(err, AlertError::TimedOut)
                || err.to_string().starts_with("CF INFO request failed"),
            "{err}"
        );
        assert!(cc.requests().len() >= 2, "retried");
    }

    #[tokio::test]
    async fn slow_server_hits_the_overall_timeout() {
        let cc =
            StandIn::start_delayed(Duration::from_secs(5), |_req| Reply::json(200, "{}")).await;
        let client = AlertsClient::new(config(&cc.url(), "http://127.0.0.1:9", 1)).expect("client");
        // TimedOut is the evidence: had the client waited for the 5 s answer, it would have
        // failed otherwise ("{}" has no token endpoint). The outer limit only catches a hang.
        let err =
            tokio::time::timeout(Duration::from_secs(30), client.send_backup_failure("", "x"))
                .await
                .expect("the alert outlived its 1 s timeout")
                .expect_err("timeout");
        assert_eq!(err, AlertError::TimedOut);
        assert_eq!(err.to_string(), "sending service alert timed out");
        let asked = cc.requests().len();
        assert!(
            asked <= 1,
            "no retry while the first request waits: {asked} requests"
        );
    }
}
