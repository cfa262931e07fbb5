//! A BOSH director simulator for testing `bbr deployment`. Never shipped
//! (`publish = false`).
//!
//! [`DirectorSim`] serves the part of the director API bbr uses
//! (documented in `docs/director-api.md`) over HTTPS on `127.0.0.1:<free port>`, with a
//! CA and server certificate generated per simulator, and backs every
//! instance of every deployment with a real [`bbr_testkit::Vm`] (an OpenSSH
//! sshd on its own `127.A.B.C` with a private `/var/vcap`). SSH setup really
//! creates the temporary user: a Linux account with password-less sudo and
//! the posted public key in the targeted VMs' `authorized_keys` only, so
//! bbr's SSH logins, `sudo` and scripts run for real.
//!
//! ```no_run
//! use bbr_director_sim::{DirectorSim, SimOptions};
//!
//! let sim = DirectorSim::from_yaml(
//!     "deployments:\n- name: redis\n  instance_groups:\n  - {name: redis-server, instances: 2}\n",
//!     SimOptions::default(),
//! )?;
//! sim.vm("redis", "redis-server", 0)
//!     .install_script("redis-server", "backup", "#!/bin/sh\necho hi > \"$BBR_ARTIFACT_DIRECTORY/dump\"\n")?;
//! // bbr deployment --target <sim.url()> --ca-cert <sim.ca_path()> -u admin -p admin -d redis backup
//! assert_eq!(sim.requests().len(), 0);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Endpoints
//!
//! | Request | Response |
//! |---|---|
//! | `GET /info` (no auth) | `{"name","uuid","version","user":null,"cpi","stemcell_os","stemcell_version","user_authentication":{"type":"basic","options":{}}` or `{"type":"uaa","options":{"url":"<url>/uaa","urls":[..]}}`, `"features":{..}}` |
//! | `POST /uaa/oauth/token` (UAA mode; basic client auth or `client_id`/`client_secret`; `grant_type=client_credentials` in form or query) | `{"access_token":"<JWT-shaped>","token_type":"bearer","expires_in":N,"scope":"bosh.admin","jti":..}`; bad client → `401 {"error":"unauthorized","error_description":"Bad credentials"}`; other grant → `400 unsupported_grant_type` |
//! | `GET /deployments` | `[{"name","cloud_config","releases":[{"name","version"}],"stemcells":[..],"teams":[]}]` |
//! | `GET /deployments/<d>` | `{"manifest":"<yaml>"}` |
//! | `GET /deployments/<d>/vms?format=full` | `302 Location: /tasks/<id>`; result: one line per instance `{"agent_id","job_name","index","id","bootstrap","ips":[..],"dns":[],"az","vm_cid","vm_type","resource_pool","disk_cid":null,"disk_cids":[],"job_state":"running","state":"started","processes":[..],"resurrection_paused","ignore","active","vm_created_at","cloud_properties","stemcell"}` |
//! | `GET /deployments/<d>/vms` | synchronous `[{"agent_id","cid","job","index","id","az","ips","vm_created_at","active"}]` |
//! | `POST /deployments/<d>/ssh` (`setup` / `cleanup`) | `302` → task; result: one line, a JSON array with one entry per targeted instance `{"command","status":"success"\|"failure","ip","host_public_key","id","index","job"}` (+ `"gateway_user","gateway_host"` for setup, + `"error"` on failure) |
//! | `GET /tasks/<id>` | `{"id","state":"processing"\|"done"\|"error","description","timestamp","started_at","result","user","deployment","context_id"}` |
//! | `GET /tasks/<id>/output?type=event\|result\|debug` | NDJSON events (`{"time","stage","tags","total","task","index","state","progress"}`, plus `{"time","error":{"code","message"}}` for failed tasks); the result (empty until the task is finished); a debug log |
//! | `GET /tasks` | recent tasks (`?deployment=` filter) |
//!
//! Errors look like a director's: unknown deployment → `404
//! {"code":70000,"description":"Deployment 'x' doesn't exist"}`, unknown task
//! → `404 {"code":10001,..}`, missing/wrong credentials or unknown/expired
//! token → `401 Not authorized: '<path>'`. Authentication is checked before
//! routing, so unknown paths are `401` too when unauthenticated.
//!
//! # Tasks
//!
//! A task's work is done before its `302` is sent, so the effects (users
//! created or removed) are in place by the time any client sees the task and
//! tests never race with it. `GET /tasks/<id>` reports `processing` for the
//! first [`SimOptions::processing_polls`] polls (default 1, matching a
//! real director's asynchronous tasks) and then `done` or `error`.
//!
//! # Deviations from a real director (test-only)
//!
//! * [`SimOptions::ip_with_port`] (default on): `ip`/`ips` are
//!   `127.A.B.C:PORT`, because the VMs do not listen on port 22.
//! * "Windows" instances ([`Os::Windows`]) are Linux sshds with a
//!   `ForceCommand` that answers `echo %OS%` with `Windows_NT` (all bbr
//!   looks at) and runs any other command normally.
//! * Temporary users are machine-wide Linux accounts (see [`users`]); only
//!   the per-VM `authorized_keys` decides on which VMs they can log in.
//!
//! # Failure injection
//!
//! [`DirectorSim::fail_next`] / [`DirectorSim::fail_always`] (HTTP status for
//! requests whose `path?query` starts with a prefix),
//! [`DirectorSim::fail_task`] (tasks of a [`TaskKind`] end in `error`),
//! [`DirectorSim::fail_ssh_setup`] (`"status":"failure"` for one instance
//! group). [`DirectorSim::requests`] records every request as
//! `METHOD path?query` for asserting call sequences.
//!
//! Modules:
//! - [`sim`]: [`DirectorSim`], [`SimOptions`], [`AuthMode`];
//! - [`spec`]: deployment declarations (YAML or Rust) and manifests;
//! - [`state`]: [`Instance`], [`Deployment`], [`TaskKind`];
//! - [`users`]: the temporary Linux accounts;
//! - [`tls`]: CA and server certificate;
//! - `api`, `ssh`, `server` (private): routing and JSON, the SSH task work,
//!   the hyper/tokio-rustls listener.

#![warn(missing_docs)]

mod api;
mod server;
pub mod sim;
pub mod spec;
mod ssh;
pub mod state;
pub mod tls;
pub mod users;

pub use sim::{AuthMode, DirectorSim, SimOptions};
pub use spec::{DeploymentSpec, InstanceGroupSpec, JobSpec, Os, SimSpec};
pub use state::{Deployment, Instance, TaskKind};

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handle_types_are_send_and_sync() {
        assert_send_sync::<crate::DirectorSim>();
        assert_send_sync::<crate::Instance>();
    }
}
