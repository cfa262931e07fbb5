//! HTTP routing and the JSON the simulator returns, endpoint by endpoint
//! (shapes follow the BOSH director and UAA; see the crate docs for the
//! full list).
//!
//! Every request is first appended to the request log (`METHOD path?query`)
//! and checked against the injected failures; then `GET /info` and
//! `POST /uaa/oauth/token` are served without director authentication, and
//! everything else requires it (a `401` comes before any `404`, as on a real
//! director).

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::sim::AuthMode;
use crate::ssh::{self, SshRequest};
use crate::state::{Deployment, Outcome, Shared, Task, TaskKind, Token, unix_now};

/// Response type of the service.
pub(crate) type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn json_resp(status: StatusCode, v: &Value) -> Resp {
    respond(status, "application/json", v.to_string())
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    respond(status, "text/plain", body)
}

/// A director error: `{"code":N,"description":"..."}`.
fn director_error(status: StatusCode, code: u32, description: &str) -> Resp {
    json_resp(status, &json!({"code": code, "description": description}))
}

fn redirect_to_task(id: u64) -> Resp {
    let mut r = text(StatusCode::FOUND, "");
    if let Ok(v) = HeaderValue::from_str(&format!("/tasks/{id}")) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Serve one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let injected = {
        let mut st = shared.state();
        st.requests.push(format!("{method} {target}"));
        st.take_failure(&target)
    };
    let oversized = shared.state().oversized_for(&target);
    if let Some(size) = oversized {
        return respond(StatusCode::OK, "application/json", oversized_body(size));
    }
    if let Some(status) = injected {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return director_error(
            status,
            100,
            &format!("Injected failure (HTTP {}) for {target}", status.as_u16()),
        );
    }
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    let path = uri.path();
    let query = uri.query();
    let decoded: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();

    match (&method, segs.as_slice()) {
        (&Method::GET, ["info"]) => return info(&shared),
        (&Method::POST, ["uaa", "oauth", "token"]) => {
            return uaa_token(&shared, &headers, query, &body);
        }
        _ => {}
    }
    if let Some(denied) = authenticate(&shared, &headers, path) {
        return denied;
    }

    match (&method, segs.as_slice()) {
        (&Method::GET, ["deployments"]) => list_deployments(&shared),
        (&Method::GET, ["deployments", d]) => with_deployment(&shared, d, |dep| {
            json_resp(StatusCode::OK, &json!({"manifest": dep.manifest}))
        }),
        (&Method::GET, ["deployments", d, "vms"]) => {
            if query_param(query, "format").as_deref() == Some("full") {
                vms_task(&shared, d)
            } else {
                with_deployment(&shared, d, |dep| vms_plain(&shared, dep))
            }
        }
        (&Method::POST, ["deployments", d, "ssh"]) => ssh_task(&shared, d, &body).await,
        (&Method::GET, ["tasks"]) => list_tasks(&shared, query),
        (&Method::GET, ["tasks", id]) => task(&shared, id),
        (&Method::GET, ["tasks", id, "output"]) => {
            task_output(&shared, id, query_param(query, "type").as_deref())
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// A path segment with its `%XX` escapes decoded (`+` stays `+`, as in paths).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON-looking body of exactly `size` bytes (at least 16).
fn oversized_body(size: usize) -> Bytes {
    let mut body = Vec::with_capacity(size.max(16));
    body.extend_from_slice(b"{\"manifest\":\"");
    body.resize(size.max(16) - 2, b'a');
    body.extend_from_slice(b"\"}");
    Bytes::from(body)
}

/// `None` if the request carries valid director credentials, else the 401.
fn authenticate(shared: &Shared, headers: &HeaderMap, path: &str) -> Option<Resp> {
    let auth = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (scheme, value) = auth.split_once(' ').unwrap_or((auth, ""));
    let value = value.trim();
    let (ok, challenge) = match &shared.world.opts.auth {
        AuthMode::Basic { user, password } => {
            let ok = scheme.eq_ignore_ascii_case("basic")
                && decode_basic(value).is_some_and(|(u, p)| &u == user && &p == password);
            (ok, "Basic realm=\"BOSH Director\"")
        }
        AuthMode::Uaa { .. } => {
            let ok = scheme.eq_ignore_ascii_case("bearer") && shared.state().token_valid(value);
            (ok, "Bearer realm=\"BOSH Director\"")
        }
    };
    if ok {
        return None;
    }
    let mut r = text(
        StatusCode::UNAUTHORIZED,
        format!("Not authorized: '{path}'\n"),
    );
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    Some(r)
}

fn decode_basic(value: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(value).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// `GET /info`.
fn info(shared: &Shared) -> Resp {
    let w = &shared.world;
    let user_authentication = match &w.opts.auth {
        AuthMode::Basic { .. } => json!({"type": "basic", "options": {}}),
        AuthMode::Uaa { .. } => {
            let uaa = format!("{}/uaa", w.url);
            json!({"type": "uaa", "options": {"url": uaa, "urls": [uaa]}})
        }
    };
    json_resp(
        StatusCode::OK,
        &json!({
            "name": w.opts.director_name,
            "uuid": w.uuid,
            "version": w.opts.version,
            "user": null,
            "cpi": "warden_cpi",
            "stemcell_os": "ubuntu-jammy",
            "stemcell_version": "1.0",
            "user_authentication": user_authentication,
            "features": {
                "local_dns": {"status": true, "extras": {"domain_name": "bosh"}},
                "power_dns": {"status": false, "extras": {"domain_name": "bosh"}},
                "snapshots": {"status": false},
                "config_server": {"status": false, "extras": {"urls": []}},
            },
        }),
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    let mut r = json_resp(
        status,
        &json!({"error": error, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = HeaderValue::from_str(&format!(
            "Basic realm=\"UAA/client\", error=\"{error}\", error_description=\"{description}\""
        ))
    {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r
}

/// `POST /uaa/oauth/token` (client-credentials grant; client authenticated
/// with HTTP basic or `client_id`/`client_secret` form fields; `grant_type`
/// in the form body or, as bosh-cli sends it, in the query string).
fn uaa_token(shared: &Shared, headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Resp {
    let AuthMode::Uaa {
        client,
        secret,
        token_ttl,
    } = &shared.world.opts.auth
    else {
        return text(StatusCode::NOT_FOUND, "Not Found");
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| query_param(query, name))
    };
    let basic = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
        .and_then(|(_, v)| decode_basic(v.trim()));
    let creds = basic.or_else(|| Some((field("client_id")?, field("client_secret")?)));
    let Some((id, pw)) = creds else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Full authentication is required to access this resource",
        );
    };
    if &id != client || &pw != secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials");
    }
    match field("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {other}"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant type",
            );
        }
    }
    let now = unix_now();
    let ttl = token_ttl.as_secs();
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"bbr-director-sim","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({
            "jti": jti,
            "sub": id,
            "client_id": id,
            "cid": id,
            "azp": id,
            "scope": ["bosh.admin"],
            "authorities": ["bosh.admin"],
            "grant_type": "client_credentials",
            "iat": now,
            "exp": now + ttl,
            "iss": format!("{}/uaa/oauth/token", shared.world.url),
            "zid": "uaa",
            "aud": ["bosh", id],
        })
        .to_string(),
    );
    let signature = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    let token = format!("{header}.{claims}.{signature}");
    {
        let mut st = shared.state();
        st.tokens.insert(
            token.clone(),
            Token {
                expires: Instant::now() + *token_ttl,
            },
        );
        st.tokens_issued += 1;
    }
    json_resp(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": ttl,
            "scope": "bosh.admin",
            "jti": jti,
        }),
    )
}

/// The deployment a request names (by its reported name when it has one).
fn deployment_index(shared: &Shared, name: &str) -> Option<usize> {
    let real = shared.state().real_deployment(name)?;
    shared.world.deployments.iter().position(|d| d.name == real)
}

fn find_deployment<'a>(shared: &'a Shared, name: &str) -> Option<&'a Deployment> {
    deployment_index(shared, name).map(|i| &shared.world.deployments[i])
}

fn missing_deployment(name: &str) -> Resp {
    director_error(
        StatusCode::NOT_FOUND,
        70000,
        &format!("Deployment '{name}' doesn't exist"),
    )
}

fn with_deployment(shared: &Shared, name: &str, f: impl FnOnce(&Deployment) -> Resp) -> Resp {
    match find_deployment(shared, name) {
        Some(d) => f(d),
        None => missing_deployment(name),
    }
}

/// `GET /deployments`.
fn list_deployments(shared: &Shared) -> Resp {
    let list: Vec<Value> = shared
        .world
        .deployments
        .iter()
        .zip(&shared.world.specs)
        .map(|(d, spec)| {
            let mut releases: Vec<String> = Vec::new();
            for j in spec.instance_groups.iter().flat_map(|g| g.effective_jobs()) {
                if !releases.contains(&j.release) {
                    releases.push(j.release);
                }
            }
            json!({
                "name": shared.state().deployment_aliases.get(&d.name).unwrap_or(&d.name),
                "cloud_config": "latest",
                "releases": releases
                    .iter()
                    .map(|r| json!({"name": r, "version": "1.0.0"}))
                    .collect::<Vec<_>>(),
                "stemcells": [{"name": "bosh-warden-boshlite-ubuntu-jammy-go_agent", "version": "1.0"}],
                "teams": [],
            })
        })
        .collect();
    json_resp(StatusCode::OK, &Value::Array(list))
}

/// `GET /deployments/<d>/vms` without `format=full`: the synchronous list.
fn vms_plain(shared: &Shared, dep: &Deployment) -> Resp {
    let list: Vec<Value> = dep
        .instances
        .iter()
        .map(|i| {
            json!({
                "agent_id": i.agent_id,
                "cid": i.vm_cid,
                "job": i.group,
                "index": i.index,
                "id": i.id,
                "az": i.az,
                "ips": [ssh::reported_ip(shared, i)],
                "vm_created_at": shared.world.started,
                "active": true,
            })
        })
        .collect();
    json_resp(StatusCode::OK, &Value::Array(list))
}

/// The `vms?format=full` result: one JSON object per line.
fn vms_result(shared: &Shared, dep: &Deployment) -> String {
    let spec = shared.world.specs.iter().find(|s| s.name == dep.name);
    let mut out = String::new();
    for i in &dep.instances {
        let processes: Vec<Value> = spec
            .and_then(|s| s.instance_groups.iter().find(|g| g.name == i.group))
            .map(|g| g.effective_jobs())
            .unwrap_or_default()
            .iter()
            .map(|j| json!({"name": j.name, "state": "running", "uptime": {"secs": 3600}}))
            .collect();
        let line = json!({
            "agent_id": i.agent_id,
            "job_name": shared.state().reported_group(&i.group),
            "index": i.index,
            "id": i.id,
            "bootstrap": i.bootstrap,
            "ips": [ssh::reported_ip(shared, i)],
            "dns": [],
            "az": i.az,
            "vm_cid": i.vm_cid,
            "vm_type": "default",
            "resource_pool": "default",
            "disk_cid": null,
            "disk_cids": [],
            "job_state": "running",
            "state": "started",
            "processes": processes,
            "resurrection_paused": false,
            "ignore": false,
            "active": true,
            "vm_created_at": shared.world.started,
            "cloud_properties": {},
            "stemcell": {
                "name": format!("bosh-warden-boshlite-{}-go_agent", i.os.stemcell_os()),
                "version": "1.0",
                "api_version": 3,
            },
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn new_task(
    shared: &Shared,
    kind: TaskKind,
    description: String,
    deployment: &str,
    stage: &str,
    outcome: Outcome,
    result: String,
) -> u64 {
    let user = match &shared.world.opts.auth {
        AuthMode::Basic { user, .. } => user.clone(),
        AuthMode::Uaa { client, .. } => client.clone(),
    };
    let mut st = shared.state();
    let endless = st.endless_tasks.contains(&kind);
    st.add_task(Task {
        id: 0,
        description,
        deployment: Some(deployment.to_owned()),
        user,
        started_at: unix_now(),
        outcome,
        result,
        stage: stage.to_owned(),
        polls: 0,
        endless,
    })
}

/// `GET /deployments/<d>/vms?format=full` → task.
fn vms_task(shared: &Shared, name: &str) -> Resp {
    let Some(dep) = find_deployment(shared, name) else {
        return missing_deployment(name);
    };
    let failing = shared.state().failing_tasks.contains(&TaskKind::Vms);
    let (outcome, result) = if failing {
        (
            Outcome::Error {
                message: "Injected failure of the vms task".to_owned(),
            },
            String::new(),
        )
    } else {
        (
            Outcome::Done {
                summary: "retrieved vm-stats".to_owned(),
            },
            vms_result(shared, dep),
        )
    };
    let id = new_task(
        shared,
        TaskKind::Vms,
        "retrieve vm-stats".to_owned(),
        name,
        "Retrieving vm-stats",
        outcome,
        result,
    );
    redirect_to_task(id)
}

/// `POST /deployments/<d>/ssh` → task (the work is done before the 302).
async fn ssh_task(shared: &Arc<Shared>, name: &str, body: &[u8]) -> Resp {
    let Some(dep) = deployment_index(shared, name) else {
        return missing_deployment(name);
    };
    let mut req = match SshRequest::parse(body) {
        Ok(r) => r,
        Err(e) => return director_error(StatusCode::BAD_REQUEST, 40000, &e),
    };
    req.job = shared.state().real_group(&req.job);
    let worker = Arc::clone(shared);
    let job = req.clone();
    let done = tokio::task::spawn_blocking(move || ssh::run(&worker, dep, &job)).await;
    let out = match done {
        Ok(o) => o,
        Err(e) => ssh::SshOutcome {
            outcome: Outcome::Error {
                message: format!("ssh task panicked: {e}"),
            },
            result: String::new(),
        },
    };
    let stage = match req.command {
        ssh::SshCommand::Setup => "Preparing ssh setup",
        ssh::SshCommand::Cleanup => "Preparing ssh cleanup",
    };
    let id = new_task(
        shared,
        req.command.kind(),
        req.description(),
        name,
        stage,
        out.outcome,
        out.result,
    );
    redirect_to_task(id)
}

fn parse_task_id(id: &str) -> Option<u64> {
    id.parse().ok()
}

/// Register a poll and return the task as it looks now.
fn poll_task(shared: &Shared, id: u64) -> Option<(Task, bool)> {
    let limit = shared.world.opts.processing_polls;
    let mut st = shared.state();
    let t = st.tasks.get_mut(&id)?;
    t.polls = t.polls.saturating_add(1);
    let finished = !t.endless && t.polls > limit;
    Some((t.clone(), finished))
}

fn peek_task(shared: &Shared, id: u64) -> Option<(Task, bool)> {
    let limit = shared.world.opts.processing_polls;
    let st = shared.state();
    let t = st.tasks.get(&id)?;
    Some((t.clone(), !t.endless && t.polls > limit))
}

fn task_json(t: &Task, finished: bool) -> Value {
    let (state, result) = match (&t.outcome, finished) {
        (_, false) => ("processing", Value::Null),
        (Outcome::Done { summary }, true) => ("done", json!(summary)),
        (Outcome::Error { message }, true) => ("error", json!(message)),
    };
    json!({
        "id": t.id,
        "state": state,
        "description": t.description,
        "timestamp": t.started_at,
        "started_at": t.started_at,
        "result": result,
        "user": t.user,
        "deployment": t.deployment,
        "context_id": "",
    })
}

fn missing_task(id: &str) -> Resp {
    director_error(
        StatusCode::NOT_FOUND,
        10001,
        &format!("Task '{id}' doesn't exist"),
    )
}

/// `GET /tasks/<id>`: `processing` for the first
/// [`SimOptions::processing_polls`](crate::SimOptions::processing_polls)
/// polls, then the final state.
fn task(shared: &Shared, id: &str) -> Resp {
    match parse_task_id(id).and_then(|n| poll_task(shared, n)) {
        Some((t, finished)) => json_resp(StatusCode::OK, &task_json(&t, finished)),
        None => missing_task(id),
    }
}

/// `GET /tasks` (most recent first; `?deployment=` filters).
fn list_tasks(shared: &Shared, query: Option<&str>) -> Resp {
    let want = query_param(query, "deployment");
    let limit = shared.world.opts.processing_polls;
    let st = shared.state();
    let list: Vec<Value> = st
        .tasks
        .values()
        .rev()
        .filter(|t| want.is_none() || t.deployment == want)
        .map(|t| task_json(t, !t.endless && t.polls > limit))
        .collect();
    json_resp(StatusCode::OK, &Value::Array(list))
}

fn event_line(t: &Task, state: &str, progress: u32, extra: Option<(&str, Value)>) -> String {
    let mut v = json!({
        "time": t.started_at,
        "stage": t.stage,
        "tags": [],
        "total": 1,
        "task": t.description,
        "index": 1,
        "state": state,
        "progress": progress,
    });
    if let Some((k, val)) = extra {
        v[k] = val;
    }
    format!("{v}\n")
}

/// `GET /tasks/<id>/output?type=event|result|debug`.
fn task_output(shared: &Shared, id: &str, kind: Option<&str>) -> Resp {
    let Some((t, finished)) = parse_task_id(id).and_then(|n| peek_task(shared, n)) else {
        return missing_task(id);
    };
    let body = match kind {
        Some("event") => {
            let mut out = event_line(&t, "started", 0, None);
            if finished {
                match &t.outcome {
                    Outcome::Done { .. } => out.push_str(&event_line(&t, "finished", 100, None)),
                    Outcome::Error { message } => {
                        out.push_str(&event_line(
                            &t,
                            "failed",
                            100,
                            Some(("data", json!({"error": message}))),
                        ));
                        out.push_str(&format!(
                            "{}\n",
                            json!({"time": t.started_at, "error": {"code": 100, "message": message}})
                        ));
                    }
                }
            }
            out
        }
        Some("result") => {
            if finished {
                t.result.clone()
            } else {
                String::new()
            }
        }
        Some("debug") => format!(
            "I, [{}] INFO -- TaskHelper: Director Version: bbr-director-sim\nI, [{}] INFO -- : {}\n",
            t.started_at, t.started_at, t.description
        ),
        _ => return text(StatusCode::BAD_REQUEST, "Unknown output type\n"),
    };
    text(StatusCode::OK, body)
}
