//! The BOSH director API as bbr uses it (docs/director-api.md): `GET /info`, basic auth or UAA
//! client credentials (token refreshed on expiry and once on a 401), the task flow (a `302`
//! to `/tasks/<id>`, polling with event output, then the result output), VMs, manifests,
//! deployments and temporary SSH users. Passwords, client secrets and tokens never appear in
//! an error or a log line.
//!
//! Defences against a director that misbehaves (or is not the director):
//! * every path segment built from a name is percent-encoded, and `.`/`..` (which URL
//!   parsers resolve away, even encoded) are refused, so a name always reaches its route;
//! * every response body is read with a size cap chosen per endpoint (see [`limits`]);
//! * waiting for a task is bounded ([`DEFAULT_TASK_TIMEOUT`], [`DirectorClient::with_task_timeout`]);
//! * with [`DirectorClient::with_stop`], a raised stop signal cancels requests in flight and
//!   task polling at once, except SSH cleanup, which still runs within [`CLEANUP_TIMEOUT`].

use crate::target::{CaCert, Target};
use bbr_core::StopSignal;
use bbr_core::error::error_chain;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A string that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What went wrong talking to the director.
#[derive(Debug, thiserror::Error)]
pub enum DirectorError {
    /// `GET /info` failed.
    #[error("bosh director unreachable or unhealthy: {0}")]
    Unreachable(String),
    /// The client could not be built (bad CA, bad UAA URL).
    #[error("error building bosh director client: {0}")]
    Build(String),
    /// A request failed before an answer.
    #[error("sending {method} {url} failed: {reason}")]
    Transport {
        /// Method.
        method: String,
        /// URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A non-2xx answer.
    #[error("Director responded with non-successful status code '{status}' response '{body}'")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body (directors do not echo credentials).
        body: String,
    },
    /// A task ended in another state than `done`.
    #[error("Expected task '{id}' to succeed but state is '{state}'")]
    Task {
        /// Task id.
        id: u64,
        /// Its final state.
        state: String,
    },
    /// UAA refused or failed.
    #[error("getting a UAA token from {url} failed: {reason}")]
    Uaa {
        /// The token URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An answer that does not have the expected shape.
    #[error("unexpected answer from the director for {what}: {reason}")]
    Decode {
        /// What was requested.
        what: String,
        /// Why it could not be read.
        reason: String,
    },
    /// An answer larger than bbr reads for that endpoint.
    #[error("the director's answer to {what} is larger than {limit} bytes; refusing to read it")]
    TooLarge {
        /// The request.
        what: String,
        /// The cap for that endpoint.
        limit: usize,
    },
    /// A task did not finish in time.
    #[error(
        "director task {id} ({what}) did not finish within {after:?}; it may still be running on the director (set BBR_DIRECTOR_TASK_TIMEOUT to wait longer)"
    )]
    TaskTimeout {
        /// Task id.
        id: u64,
        /// What the task was for.
        what: String,
        /// How long bbr waited.
        after: Duration,
    },
    /// A request did not finish in time (cleanup after a stop, or a bounded cleanup).
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// The operation.
        what: String,
        /// How long bbr waited.
        after: Duration,
    },
    /// The run was asked to stop while waiting for the director.
    #[error("bbr was asked to stop while {what}")]
    Stopped {
        /// What was being done.
        what: String,
    },
    /// A name that cannot be a URL path segment.
    #[error("{what} '{value}' cannot be used in a director URL")]
    BadSegment {
        /// What the value names.
        what: String,
        /// The value.
        value: String,
    },
}

/// Response size caps, per endpoint. Each is far above what a real director sends and far
/// below what would hurt the machine bbr runs on (a 100 MB answer once cost 200 MB of RSS).
pub mod limits {
    /// `GET /info`, UAA tokens, task states: small JSON objects.
    pub const SMALL: usize = 1 << 20;
    /// The text of a non-2xx answer kept for the error message (longer bodies are cut).
    pub const ERROR_BODY: usize = 64 << 10;
    /// `GET /deployments`: one short entry per deployment.
    pub const DEPLOYMENTS: usize = 16 << 20;
    /// A task's event output (read and discarded while polling).
    pub const TASK_EVENTS: usize = 16 << 20;
    /// A task's result: one line per VM (`vms?format=full`), one entry per host (SSH).
    pub const TASK_RESULT: usize = 64 << 20;
    /// `GET /deployments/<d>`: the manifest, which may embed certificates and large
    /// properties.
    pub const MANIFEST: usize = 64 << 20;
}

/// How long bbr waits for a director task unless told otherwise (Go bbr waits forever):
/// long enough for SSH setup on a large instance group or `vms` of a large deployment.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The most a temporary-user cleanup (request and task) may take: it runs after a stop too,
/// and must not keep an operator who asked bbr to stop waiting long.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Percent-encodes `value` as one URL path segment (everything but RFC 3986 unreserved
/// characters); refuses empty, `.` and `..`, which no encoding keeps from being resolved.
pub fn path_segment(what: &str, value: &str) -> Result<String, DirectorError> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(DirectorError::BadSegment {
            what: what.to_string(),
            value: value.to_string(),
        });
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

/// Reads a body of at most `limit` bytes; `what` names the request in the error.
async fn read_capped(
    mut answer: reqwest::Response,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, DirectorError> {
    let too_large = || DirectorError::TooLarge {
        what: what.to_string(),
        limit,
    };
    if answer.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| DirectorError::Decode {
        what: what.to_string(),
        reason: error_chain(&e),
    })? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of a body, at most `limit` bytes, for an error message.
async fn read_prefix(mut answer: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = answer.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// One VM of `vms?format=full`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct VmInfo {
    /// Instance group name.
    pub job_name: String,
    /// BOSH index (may be null).
    #[serde(default)]
    pub index: Option<u64>,
    /// Instance id.
    pub id: String,
    /// IP addresses.
    #[serde(default)]
    pub ips: Vec<String>,
    /// Bootstrap instance of its group.
    #[serde(default)]
    pub bootstrap: bool,
}

/// One host of an SSH setup task's result.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SshHost {
    /// `success` or a failure status.
    pub status: String,
    /// Address (a director gives an IP; `host:port` is accepted too).
    pub ip: String,
    /// The host's public key as an authorized_keys line.
    #[serde(default)]
    pub host_public_key: String,
    /// Instance id.
    #[serde(default)]
    pub id: String,
    /// Index.
    #[serde(default)]
    pub index: Option<u64>,
}

#[derive(Deserialize)]
struct Info {
    #[serde(default)]
    user_authentication: Option<UserAuthentication>,
}

#[derive(Deserialize)]
struct UserAuthentication {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    options: serde_json::Value,
}

#[derive(Deserialize)]
struct TaskState {
    id: u64,
    state: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

enum Auth {
    Basic { user: String, password: Secret },
    Uaa(Uaa),
}

struct Uaa {
    token_url: String,
    client: String,
    secret: Secret,
    token: Mutex<Option<(Secret, Instant)>>,
}

/// Receives debug lines (`Sending GET request to endpoint ...`).
pub type DebugLog = Arc<dyn Fn(String) + Send + Sync>;

/// A director API client.
pub struct DirectorClient {
    base: String,
    http: reqwest::Client,
    auth: Auth,
    debug: DebugLog,
    stop: Option<StopSignal>,
    task_timeout: Duration,
}

fn build_http(ca: Option<&CaCert>, proxy: Option<&str>) -> Result<reqwest::Client, DirectorError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30));
    builder = match proxy {
        Some(url) => builder.proxy(
            reqwest::Proxy::all(url)
                .map_err(|e| DirectorError::Build(format!("BOSH_ALL_PROXY: {e}")))?,
        ),
        None => builder.no_proxy(),
    };
    if let Some(ca) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(ca.0.as_bytes())
            .map_err(|e| DirectorError::Build(format!("reading the CA certificate: {e}")))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| DirectorError::Build(e.to_string()))
}

impl DirectorClient {
    /// Connects: `GET /info` (no credentials), then sets up basic or UAA authentication.
    /// `proxy` is a SOCKS5 URL every request goes through (`BOSH_ALL_PROXY`).
    pub async fn connect(
        target: &Target,
        ca: Option<&CaCert>,
        username: &str,
        password: Secret,
        proxy: Option<&str>,
        debug: DebugLog,
    ) -> Result<DirectorClient, DirectorError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = build_http(ca, proxy)?;
        let base = target.url();
        let url = format!("{base}/info");
        debug(format!("Sending GET request to endpoint '{url}'"));
        let answer = http
            .get(&url)
            .send()
            .await
            .map_err(|e| DirectorError::Unreachable(error_chain(&e)))?;
        if !answer.status().is_success() {
            let status = answer.status().as_u16();
            let body = read_prefix(answer, limits::ERROR_BODY).await;
            return Err(DirectorError::Unreachable(
                DirectorError::Status { status, body }.to_string(),
            ));
        }
        let body = read_capped(answer, limits::SMALL, "GET /info")
            .await
            .map_err(|e| DirectorError::Unreachable(e.to_string()))?;
        let info: Info = serde_json::from_slice(&body)
            .map_err(|e| DirectorError::Unreachable(format!("reading /info: {e}")))?;
        let auth = match info.user_authentication {
            Some(ua) if ua.kind == "uaa" => {
                let url = match ua.options.get("url") {
                    Some(serde_json::Value::String(u)) => u.clone(),
                    Some(other) => {
                        return Err(DirectorError::Build(format!(
                            "Expected URL '{other}' to be a string"
                        )));
                    }
                    None => return Err(DirectorError::Build("invalid UAA URL: none given".into())),
                };
                let parsed = reqwest::Url::parse(&url)
                    .map_err(|e| DirectorError::Build(format!("invalid UAA URL '{url}': {e}")))?;
                Auth::Uaa(Uaa {
                    token_url: format!("{}/oauth/token", parsed.as_str().trim_end_matches('/')),
                    client: username.to_string(),
                    secret: password,
                    token: Mutex::new(None),
                })
            }
            _ => Auth::Basic {
                user: username.to_string(),
                password,
            },
        };
        Ok(DirectorClient {
            base,
            http,
            auth,
            debug,
            stop: None,
            task_timeout: DEFAULT_TASK_TIMEOUT,
        })
    }

    /// Cancels requests and task waits once `stop` is raised (SSH cleanup excepted).
    pub fn with_stop(mut self, stop: StopSignal) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Waits at most `timeout` for each director task (default [`DEFAULT_TASK_TIMEOUT`]).
    pub fn with_task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = timeout;
        self
    }

    /// Runs `work` unless, or until, the stop signal is raised; `what` says what was
    /// being done, for the error.
    async fn stoppable<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, DirectorError>>,
    ) -> Result<T, DirectorError> {
        let Some(stop) = &self.stop else {
            return work.await;
        };
        let stopped = || DirectorError::Stopped {
            what: what.to_string(),
        };
        if stop.is_raised() {
            return Err(stopped());
        }
        tokio::select! {
            result = work => result,
            () = stop.raised() => Err(stopped()),
        }
    }

    async fn token(&self, uaa: &Uaa, refresh: bool) -> Result<Secret, DirectorError> {
        let mut slot = uaa.token.lock().await;
        if !refresh
            && let Some((token, expires)) = slot.as_ref()
            && Instant::now() + Duration::from_secs(10) < *expires
        {
            return Ok(token.clone());
        }
        (self.debug)(format!(
            "Sending POST request to endpoint '{}'",
            uaa.token_url
        ));
        let answer = self
            .http
            .post(&uaa.token_url)
            .basic_auth(&uaa.client, Some(uaa.secret.expose()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| DirectorError::Uaa {
                url: uaa.token_url.clone(),
                reason: error_chain(&e),
            })?;
        let status = answer.status();
        if !status.is_success() {
            return Err(DirectorError::Uaa {
                url: uaa.token_url.clone(),
                reason: format!(
                    "status {} (check --username and --password)",
                    status.as_u16()
                ),
            });
        }
        let uaa_error = |reason: String| DirectorError::Uaa {
            url: uaa.token_url.clone(),
            reason,
        };
        let body = read_capped(answer, limits::SMALL, "the UAA token request")
            .await
            .map_err(|e| uaa_error(e.to_string()))?;
        let token: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| uaa_error(e.to_string()))?;
        let expires = Instant::now() + Duration::from_secs(token.expires_in.unwrap_or(3600));
        let secret = Secret::new(token.access_token);
        *slot = Some((secret.clone(), expires));
        Ok(secret)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, DirectorError> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        for attempt in 0..2 {
            (self.debug)(format!("Sending {method} request to endpoint '{url}'"));
            let mut request = self.http.request(method.clone(), &url);
            request = match &self.auth {
                Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
                Auth::Uaa(uaa) => {
                    let token = self.token(uaa, attempt > 0).await?;
                    request.header("Authorization", format!("bearer {}", token.expose()))
                }
            };
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = request.send().await.map_err(|e| DirectorError::Transport {
                method: method.to_string(),
                url: url.clone(),
                reason: error_chain(&e),
            })?;
            if answer.status() == reqwest::StatusCode::UNAUTHORIZED
                && matches!(self.auth, Auth::Uaa(_))
                && attempt == 0
            {
                continue;
            }
            return Ok(answer);
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn checked(answer: reqwest::Response) -> Result<reqwest::Response, DirectorError> {
        let status = answer.status();
        if status.is_success() || status.is_redirection() {
            return Ok(answer);
        }
        let body = read_prefix(answer, limits::ERROR_BODY).await;
        Err(DirectorError::Status {
            status: status.as_u16(),
            body,
        })
    }

    /// `GET path`, reading at most `limit` bytes of the answer.
    async fn get_text(&self, path: &str, limit: usize) -> Result<String, DirectorError> {
        let answer = Self::checked(self.send(reqwest::Method::GET, path, None).await?).await?;
        let body = read_capped(answer, limit, &format!("GET {path}")).await?;
        String::from_utf8(body).map_err(|e| DirectorError::Decode {
            what: path.into(),
            reason: e.to_string(),
        })
    }

    /// Follows a task redirect, waits for the task (at most `timeout`) and returns its result
    /// output; `what` says what the task is for, in errors.
    async fn task_result(
        &self,
        answer: reqwest::Response,
        what: &str,
        timeout: Duration,
    ) -> Result<String, DirectorError> {
        let answer = Self::checked(answer).await?;
        let location = answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| DirectorError::Decode {
                what: "a task request".into(),
                reason: format!(
                    "expected a redirect to /tasks/<id>, got status {}",
                    answer.status()
                ),
            })?;
        // Only the numeric id is taken from the redirect: bbr builds the task URLs itself.
        let id: u64 = location
            .find("/tasks/")
            .map(|i| &location[i + "/tasks/".len()..])
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""))
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| DirectorError::Decode {
                what: what.to_string(),
                reason: format!("expected a redirect to /tasks/<id>, got {location:?}"),
            })?;
        let wait = async {
            let mut task: TaskState = self.task_state(id).await?;
            let mut delay = Duration::from_millis(20);
            while matches!(task.state.as_str(), "queued" | "processing" | "cancelling") {
                let _ = self
                    .get_text(
                        &format!("/tasks/{id}/output?type=event"),
                        limits::TASK_EVENTS,
                    )
                    .await?;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
                task = self.task_state(id).await?;
            }
            Ok(task)
        };
        let task = tokio::time::timeout(timeout, wait).await.map_err(|_| {
            DirectorError::TaskTimeout {
                id,
                what: what.to_string(),
                after: timeout,
            }
        })??;
        if task.state != "done" {
            return Err(DirectorError::Task {
                id: task.id,
                state: task.state,
            });
        }
        self.get_text(
            &format!("/tasks/{id}/output?type=result"),
            limits::TASK_RESULT,
        )
        .await
    }

    async fn task_state(&self, id: u64) -> Result<TaskState, DirectorError> {
        let path = format!("/tasks/{id}");
        let text = self.get_text(&path, limits::SMALL).await?;
        serde_json::from_str(&text).map_err(|e| DirectorError::Decode {
            what: path,
            reason: e.to_string(),
        })
    }

    /// Names of all deployments.
    pub async fn deployments(&self) -> Result<Vec<String>, DirectorError> {
        #[derive(Deserialize)]
        struct D {
            name: String,
        }
        let text = self
            .stoppable(
                "listing deployments",
                self.get_text("/deployments", limits::DEPLOYMENTS),
            )
            .await?;
        let list: Vec<D> = serde_json::from_str(&text).map_err(|e| DirectorError::Decode {
            what: "/deployments".into(),
            reason: e.to_string(),
        })?;
        Ok(list.into_iter().map(|d| d.name).collect())
    }

    /// The VMs of a deployment (`vms?format=full`, a task).
    pub async fn vms(&self, deployment: &str) -> Result<Vec<VmInfo>, DirectorError> {
        let d = path_segment("deployment name", deployment)?;
        let path = format!("/deployments/{d}/vms?format=full");
        let what = format!("listing the VMs of deployment '{deployment}'");
        let text = self
            .stoppable(&what, async {
                let answer = self.send(reqwest::Method::GET, &path, None).await?;
                self.task_result(answer, &what, self.task_timeout).await
            })
            .await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| DirectorError::Decode {
                    what: path.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The deployment's manifest text.
    pub async fn manifest(&self, deployment: &str) -> Result<String, DirectorError> {
        #[derive(Deserialize)]
        struct M {
            #[serde(default)]
            manifest: String,
        }
        let path = format!(
            "/deployments/{}",
            path_segment("deployment name", deployment)?
        );
        let text = self
            .stoppable(
                &format!("getting the manifest of deployment '{deployment}'"),
                self.get_text(&path, limits::MANIFEST),
            )
            .await?;
        let m: M = serde_json::from_str(&text).map_err(|e| DirectorError::Decode {
            what: path,
            reason: e.to_string(),
        })?;
        Ok(m.manifest)
    }

    /// Creates `user` with `public_key` on every instance of `group`.
    pub async fn ssh_setup(
        &self,
        deployment: &str,
        group: &str,
        user: &str,
        public_key: &str,
    ) -> Result<Vec<SshHost>, DirectorError> {
        let body = serde_json::json!({
            "command": "setup",
            "deployment_name": deployment,
            "target": {"job": group, "indexes": [], "ids": []},
            "params": {"user": user, "public_key": public_key},
        });
        let path = format!(
            "/deployments/{}/ssh",
            path_segment("deployment name", deployment)?
        );
        let what =
            format!("setting up SSH for instance group '{group}' of deployment '{deployment}'");
        let text = self
            .stoppable(&what, async {
                let answer = self.send(reqwest::Method::POST, &path, Some(&body)).await?;
                self.task_result(answer, &what, self.task_timeout).await
            })
            .await?;
        serde_json::from_str(text.trim()).map_err(|e| DirectorError::Decode {
            what: format!("{path} (setup)"),
            reason: e.to_string(),
        })
    }

    /// Removes users matching `^<user>` from instance `id` of `group`.
    pub async fn ssh_cleanup(
        &self,
        deployment: &str,
        group: &str,
        id: &str,
        user: &str,
    ) -> Result<(), DirectorError> {
        let body = serde_json::json!({
            "command": "cleanup",
            "deployment_name": deployment,
            "target": {"job": group, "indexes": [id], "ids": [id]},
            "params": {"user_regex": format!("^{user}")},
        });
        let path = format!(
            "/deployments/{}/ssh",
            path_segment("deployment name", deployment)?
        );
        // Not stoppable: after a stop the temporary users must still go, within a bound.
        let what = format!("cleaning up SSH on instance {group}/{id} of deployment '{deployment}'");
        let bound = CLEANUP_TIMEOUT.min(self.task_timeout);
        let work = async {
            let answer = self.send(reqwest::Method::POST, &path, Some(&body)).await?;
            self.task_result(answer, &what, bound).await.map(|_| ())
        };
        tokio::time::timeout(bound, work)
            .await
            .map_err(|_| DirectorError::Timeout {
                what: what.clone(),
                after: bound,
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_and_dot_segments_refused() {
        assert_eq!(path_segment("d", "redis-1.x_y~").unwrap(), "redis-1.x_y~");
        assert_eq!(path_segment("d", "a/b").unwrap(), "a%2Fb");
        assert_eq!(path_segment("d", "a b?c#%").unwrap(), "a%20b%3Fc%23%25");
        assert_eq!(path_segment("d", "é").unwrap(), "%C3%A9");
        for bad in ["", ".", ".."] {
            let e = path_segment("deployment name", bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("deployment name '{bad}' cannot be used in a director URL")
            );
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
    }

    #[test]
    fn vm_and_ssh_shapes_parse() {
        let vm: VmInfo = serde_json::from_str(r#"{"job_name":"redis","index":null,"id":"abc","ips":["10.0.0.1"],"bootstrap":true,"vm_cid":"x"}"#).unwrap();
        assert_eq!(vm.index, None);
        assert!(vm.bootstrap);
        let hosts: Vec<SshHost> = serde_json::from_str(r#"[{"status":"success","ip":"10.0.0.1","host_public_key":"ssh-ed25519 AAAA","id":"abc","index":0,"job":"redis","command":"setup"}]"#).unwrap();
        assert_eq!(hosts[0].ip, "10.0.0.1");
    }
}
