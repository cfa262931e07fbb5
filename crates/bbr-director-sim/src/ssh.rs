//! The work behind `POST /deployments/<d>/ssh`: parsing the bosh-cli request
//! body, selecting the targeted instances, and really creating (`setup`) or
//! removing (`cleanup`) the temporary user on their VMs. Runs on a blocking
//! thread; the caller turns the returned [`SshOutcome`] into a task.

use regex::Regex;
use serde_json::{Value, json};

use crate::state::{Instance, Outcome, Shared, TaskKind};
use crate::users;

/// `setup` or `cleanup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SshCommand {
    Setup,
    Cleanup,
}

impl SshCommand {
    pub(crate) fn kind(self) -> TaskKind {
        match self {
            SshCommand::Setup => TaskKind::SshSetup,
            SshCommand::Cleanup => TaskKind::SshCleanup,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SshCommand::Setup => "setup",
            SshCommand::Cleanup => "cleanup",
        }
    }
}

/// The request body bosh-cli sends:
/// `{"command":..,"deployment_name":..,"target":{"job":..,"indexes":[..],"ids":[..]},"params":{..}}`.
#[derive(Clone, Debug)]
pub(crate) struct SshRequest {
    pub(crate) command: SshCommand,
    pub(crate) job: String,
    pub(crate) indexes: Vec<String>,
    pub(crate) ids: Vec<String>,
    pub(crate) params: serde_json::Map<String, Value>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl SshRequest {
    /// Parse the body; the error is the director's error description.
    pub(crate) fn parse(body: &[u8]) -> Result<SshRequest, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("Invalid JSON request body: {e}"))?;
        let command = match v.get("command").and_then(Value::as_str) {
            Some("setup") => SshCommand::Setup,
            Some("cleanup") => SshCommand::Cleanup,
            Some(other) => return Err(format!("Unknown SSH command '{other}'")),
            None => return Err("Missing SSH command".to_owned()),
        };
        let target = v.get("target").cloned().unwrap_or(Value::Null);
        let job = target
            .get("job")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let params = match v.get("params") {
            Some(Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        Ok(SshRequest {
            command,
            job,
            indexes: strings(target.get("indexes")),
            ids: strings(target.get("ids")),
            params,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// Short description in the director's style.
    pub(crate) fn description(&self) -> String {
        format!("ssh: {}:{}", self.command.name(), self.job)
    }

    fn targets<'a>(&self, instances: &'a [Instance]) -> Vec<(usize, &'a Instance)> {
        instances
            .iter()
            .enumerate()
            .filter(|(_, i)| self.job.is_empty() || i.group == self.job)
            .filter(|(_, i)| {
                (self.indexes.is_empty() && self.ids.is_empty())
                    || self.indexes.contains(&i.index.to_string())
                    || self.indexes.contains(&i.id)
                    || self.ids.contains(&i.id)
            })
            .collect()
    }
}

/// Outcome plus result output (a one-line JSON array, or empty on error).
pub(crate) struct SshOutcome {
    pub(crate) outcome: Outcome,
    pub(crate) result: String,
}

fn error(message: impl Into<String>) -> SshOutcome {
    SshOutcome {
        outcome: Outcome::Error {
            message: message.into(),
        },
        result: String::new(),
    }
}

/// `ip` as the simulator reports it (see `SimOptions::ip_with_port`).
pub(crate) fn reported_ip(shared: &Shared, inst: &Instance) -> String {
    if shared.world.opts.ip_with_port {
        inst.vm.host_arg()
    } else {
        inst.vm.addr().to_string()
    }
}

fn host_entry(shared: &Shared, cmd: SshCommand, inst: &Instance, status: &str) -> Value {
    let opts = &shared.world.opts;
    let mut v = json!({
        "command": cmd.name(),
        "status": status,
        "ip": reported_ip(shared, inst),
        "host_public_key": inst.vm.host_public_key_line(),
        "id": inst.id,
        "index": inst.index,
        "job": inst.group,
    });
    if cmd == SshCommand::Setup {
        v["gateway_user"] = json!(opts.gateway_user);
        v["gateway_host"] = json!(opts.gateway_host);
    }
    v
}

/// Run the SSH command for deployment number `dep` (blocking: `useradd`).
pub(crate) fn run(shared: &Shared, dep: usize, req: &SshRequest) -> SshOutcome {
    // One SSH job at a time: account creation and the user bookkeeping must
    // not interleave.
    let _serial = shared.ssh_lock.lock().unwrap_or_else(|e| e.into_inner());
    let deployment = &shared.world.deployments[dep];
    if shared.state().failing_tasks.contains(&req.command.kind()) {
        return error(format!(
            "Injected failure of the ssh {} task",
            req.command.name()
        ));
    }
    if !req.job.is_empty() && !deployment.instances.iter().any(|i| i.group == req.job) {
        let declared = shared.world.specs[dep]
            .instance_groups
            .iter()
            .any(|g| g.name == req.job);
        if !declared {
            return error(format!(
                "Instance group '{}' doesn't exist in deployment '{}'",
                req.job, deployment.name
            ));
        }
    }
    let targets = req.targets(&deployment.instances);
    let entries = match req.command {
        SshCommand::Setup => {
            let Some(user) = req.param("user").map(str::to_owned) else {
                return error("Missing SSH user name ('params.user')");
            };
            let Some(key) = req.param("public_key").map(str::to_owned) else {
                return error("Missing SSH public key ('params.public_key')");
            };
            if !users::valid_user_name(&user) {
                return error(format!("Invalid SSH user name '{user}'"));
            }
            if key.trim().is_empty() || key.contains('\n') {
                return error("Invalid SSH public key");
            }
            targets
                .iter()
                .map(|&(pos, inst)| setup_one(shared, dep, pos, inst, &user, &key))
                .collect::<Vec<_>>()
        }
        SshCommand::Cleanup => {
            let pattern = req.param("user_regex").unwrap_or("^bosh_");
            let re = match Regex::new(pattern) {
                Ok(r) => r,
                Err(e) => return error(format!("Invalid user_regex '{pattern}': {e}")),
            };
            targets
                .iter()
                .map(|&(pos, inst)| cleanup_one(shared, dep, pos, inst, &re))
                .collect::<Vec<_>>()
        }
    };
    SshOutcome {
        outcome: Outcome::Done {
            summary: String::new(),
        },
        result: format!("{}\n", Value::Array(entries)),
    }
}

fn setup_one(
    shared: &Shared,
    dep: usize,
    pos: usize,
    inst: &Instance,
    user: &str,
    key: &str,
) -> Value {
    if shared.state().failing_ssh_groups.contains(&inst.group) {
        let mut v = host_entry(shared, SshCommand::Setup, inst, "failure");
        v["error"] = json!("Injected SSH setup failure");
        return v;
    }
    let known = shared.state().temp_users.contains_key(user);
    let result = (|| -> std::io::Result<()> {
        if !known && users::create_temp_user(user)? {
            shared.state().created_accounts.insert(user.to_owned());
        }
        shared
            .state()
            .temp_users
            .entry(user.to_owned())
            .or_default()
            .insert((dep, pos));
        inst.vm.add_authorized_key(user, key)
    })();
    match result {
        Ok(()) => host_entry(shared, SshCommand::Setup, inst, "success"),
        Err(e) => {
            let mut v = host_entry(shared, SshCommand::Setup, inst, "failure");
            v["error"] = json!(e.to_string());
            v
        }
    }
}

fn cleanup_one(shared: &Shared, dep: usize, pos: usize, inst: &Instance, re: &Regex) -> Value {
    let matching: Vec<String> = shared
        .state()
        .temp_users
        .iter()
        .filter(|(u, vms)| re.is_match(u) && vms.contains(&(dep, pos)))
        .map(|(u, _)| u.clone())
        .collect();
    let mut failure = None;
    for user in matching {
        if let Err(e) = inst.vm.remove_authorized_keys(&user) {
            failure = Some(e.to_string());
            continue;
        }
        if let Err(e) = forget(shared, &user, dep, pos) {
            failure = Some(e.to_string());
        }
    }
    match failure {
        None => host_entry(shared, SshCommand::Cleanup, inst, "success"),
        Some(e) => {
            let mut v = host_entry(shared, SshCommand::Cleanup, inst, "failure");
            v["error"] = json!(e);
            v
        }
    }
}

/// Drop `user` from VM `(dep, pos)`; delete the account once no VM has it.
fn forget(shared: &Shared, user: &str, dep: usize, pos: usize) -> std::io::Result<()> {
    let delete = {
        let mut st = shared.state();
        let now_empty = st.temp_users.get_mut(user).is_some_and(|vms| {
            vms.remove(&(dep, pos));
            vms.is_empty()
        });
        if now_empty {
            st.temp_users.remove(user);
            st.created_accounts.contains(user)
        } else {
            false
        }
    };
    if delete {
        users::delete_temp_user(user)?;
        shared.state().created_accounts.remove(user);
    }
    Ok(())
}
