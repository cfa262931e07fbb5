//! Helpers shared by the simulator's integration tests: an HTTPS client that
//! trusts the simulator's CA, bosh-cli-style task following, and a strict
//! system-`ssh` login as a temporary user.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bbr_director_sim::DirectorSim;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Certificate, StatusCode, redirect};
use serde_json::Value;

/// A client trusting only the simulator's CA, not following redirects.
pub fn client(sim: &DirectorSim) -> Client {
    Client::builder()
        .tls_certs_only([Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap()])
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Credentials for the simulator's basic auth.
pub fn basic(sim: &DirectorSim, rb: RequestBuilder) -> RequestBuilder {
    rb.basic_auth(sim.username(), Some(sim.password()))
}

/// Authenticated GET (basic auth).
pub fn get(sim: &DirectorSim, c: &Client, path: &str) -> Response {
    basic(sim, c.get(format!("{}{path}", sim.url())))
        .send()
        .unwrap()
}

/// Authenticated JSON POST (basic auth).
pub fn post_json(sim: &DirectorSim, c: &Client, path: &str, body: &Value) -> Response {
    basic(sim, c.post(format!("{}{path}", sim.url())))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap()
}

/// The task id from a `302 Location: /tasks/<id>` response.
pub fn task_id(resp: &Response) -> u64 {
    assert_eq!(resp.status(), StatusCode::FOUND, "expected a redirect");
    let loc = resp.headers()["location"].to_str().unwrap();
    loc.strip_prefix("/tasks/")
        .unwrap_or_else(|| panic!("Location {loc}"))
        .parse()
        .unwrap()
}

/// Poll `/tasks/<id>` like bosh-cli until the state is final; returns the
/// final task JSON and the states seen.
pub fn wait_task(sim: &DirectorSim, c: &Client, id: u64) -> (Value, Vec<String>) {
    let mut seen = Vec::new();
    for _ in 0..20 {
        let t: Value = get(sim, c, &format!("/tasks/{id}")).json().unwrap();
        let state = t["state"].as_str().unwrap().to_owned();
        seen.push(state.clone());
        if state != "queued" && state != "processing" {
            return (t, seen);
        }
        let _ = get(sim, c, &format!("/tasks/{id}/output?type=event")).text();
    }
    panic!("task {id} never finished: {seen:?}");
}

/// The result output of a task.
pub fn result(sim: &DirectorSim, c: &Client, id: u64) -> String {
    get(sim, c, &format!("/tasks/{id}/output?type=result"))
        .text()
        .unwrap()
}

/// A user name like bosh-cli's (`bosh_` + 15 hex digits).
pub fn bosh_user() -> String {
    format!("bosh_{}", &uuid::Uuid::new_v4().simple().to_string()[..15])
}

/// Whether a Linux account exists.
pub fn account_exists(user: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .any(|l| l.split(':').next() == Some(user))
}

/// `ssh -i key -p port user@addr cmd` with the host key pinned to
/// `host_public_key` (strict checking), as bbr does.
pub fn ssh_as(
    ip: &str,
    host_public_key: &str,
    user: &str,
    key: &Path,
    known_hosts_dir: &Path,
    cmd: &str,
) -> Output {
    let (addr, port) = ip.split_once(':').unwrap_or((ip, "22"));
    let mut parts = host_public_key.split_whitespace();
    let line = format!(
        "[{addr}]:{port} {} {}\n",
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    let known_hosts = known_hosts_dir.join(format!("known_hosts-{addr}-{port}"));
    std::fs::write(&known_hosts, line).unwrap();
    Command::new("ssh")
        .arg("-i")
        .arg(key)
        .arg("-p")
        .arg(port)
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=20",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg(format!("{user}@{addr}"))
        .arg(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
