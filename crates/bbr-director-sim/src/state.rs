//! The simulator's world (deployments and their instances, fixed at start)
//! and its mutable state (request log, injected failures, tasks, UAA tokens,
//! temporary SSH users), shared between the HTTP server and the test's
//! [`DirectorSim`](crate::DirectorSim) handle.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bbr_testkit::Vm;

use crate::sim::SimOptions;
use crate::spec::Os;

/// What a task does; used by [`DirectorSim::fail_task`](crate::DirectorSim::fail_task).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// `GET /deployments/<d>/vms?format=full` ("retrieve vm-stats").
    Vms,
    /// `POST /deployments/<d>/ssh` with `command: setup`.
    SshSetup,
    /// `POST /deployments/<d>/ssh` with `command: cleanup`.
    SshCleanup,
}

/// One instance of a deployment: BOSH identity plus the VM standing in for
/// it.
#[derive(Debug)]
pub struct Instance {
    /// Deployment name.
    pub deployment: String,
    /// Instance group (`job_name`).
    pub group: String,
    /// Index within the group.
    pub index: usize,
    /// Instance UUID (`id`).
    pub id: String,
    /// Agent UUID (`agent_id`).
    pub agent_id: String,
    /// CPI VM id (`vm_cid`).
    pub vm_cid: String,
    /// Availability zone.
    pub az: String,
    /// Stemcell OS.
    pub os: Os,
    /// Whether this is the group's bootstrap instance (index 0).
    pub bootstrap: bool,
    /// The VM.
    pub vm: Vm,
}

impl Instance {
    /// `group/id`, the BOSH instance slug.
    pub fn slug(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }
}

/// A deployment as served.
#[derive(Debug)]
pub struct Deployment {
    /// Name.
    pub name: String,
    /// Manifest text.
    pub manifest: String,
    /// Instances: groups in declaration order, indexes ascending.
    pub instances: Vec<Instance>,
}

/// Immutable part of the simulator.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) deployments: Vec<Deployment>,
    /// The specs the deployments were made from (same order).
    pub(crate) specs: Vec<crate::spec::DeploymentSpec>,
    pub(crate) opts: SimOptions,
    pub(crate) uuid: String,
    /// `https://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// When the simulator started (RFC 3339, for `vm_created_at`).
    pub(crate) started: String,
}

impl World {
    pub(crate) fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.name == name)
    }
}

/// Final outcome of a task.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    Done { summary: String },
    Error { message: String },
}

/// A director task. All work is done before the `302` is sent (so tests
/// never race with it); the state reported by `GET /tasks/<id>` is then a
/// function of how often the task was polled.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) description: String,
    pub(crate) deployment: Option<String>,
    pub(crate) user: String,
    pub(crate) started_at: u64,
    pub(crate) outcome: Outcome,
    /// NDJSON result output (empty for errors).
    pub(crate) result: String,
    pub(crate) stage: String,
    pub(crate) polls: u32,
    /// Reports `processing` however often it is polled ([`crate::DirectorSim::hold_tasks`]).
    pub(crate) endless: bool,
}

/// A failure rule from `fail_next` / `fail_always`.
#[derive(Clone, Debug)]
pub(crate) struct FailRule {
    pub(crate) prefix: String,
    pub(crate) status: u16,
    pub(crate) once: bool,
}

/// A UAA access token.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) expires: Instant,
}

/// Mutable state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) requests: Vec<String>,
    pub(crate) failures: Vec<FailRule>,
    pub(crate) failing_tasks: HashSet<TaskKind>,
    pub(crate) failing_ssh_groups: HashSet<String>,
    /// Tasks of these kinds never finish.
    pub(crate) endless_tasks: HashSet<TaskKind>,
    /// `path?query` prefix → size of the oversized body served instead.
    pub(crate) oversized: Vec<(String, usize)>,
    /// Real instance group → name reported for it.
    pub(crate) group_aliases: HashMap<String, String>,
    /// Real deployment → name reported (and accepted in URLs) for it.
    pub(crate) deployment_aliases: HashMap<String, String>,
    pub(crate) tasks: BTreeMap<u64, Task>,
    pub(crate) next_task: u64,
    pub(crate) tokens: HashMap<String, Token>,
    pub(crate) tokens_issued: usize,
    /// Temporary user → (deployment, instance position) of the VMs where its
    /// key is installed.
    pub(crate) temp_users: BTreeMap<String, BTreeSet<(usize, usize)>>,
    /// Accounts this simulator created (and must delete).
    pub(crate) created_accounts: BTreeSet<String>,
}

impl State {
    /// Find and consume the failure rule for `target` (`path?query`).
    pub(crate) fn take_failure(&mut self, target: &str) -> Option<u16> {
        let pos = self
            .failures
            .iter()
            .position(|r| target.starts_with(&r.prefix))?;
        let rule = &self.failures[pos];
        let status = rule.status;
        if rule.once {
            self.failures.remove(pos);
        }
        Some(status)
    }

    /// Register a new task and return its id.
    pub(crate) fn add_task(&mut self, mut task: Task) -> u64 {
        self.next_task += 1;
        task.id = self.next_task;
        let id = task.id;
        self.tasks.insert(id, task);
        id
    }

    /// The size of the oversized body to serve for `target`, if one was asked for.
    pub(crate) fn oversized_for(&self, target: &str) -> Option<usize> {
        self.oversized
            .iter()
            .find(|(prefix, _)| target.starts_with(prefix.as_str()))
            .map(|(_, size)| *size)
    }

    /// The name a group is reported under.
    pub(crate) fn reported_group<'a>(&'a self, real: &'a str) -> &'a str {
        self.group_aliases.get(real).map_or(real, String::as_str)
    }

    /// The real group for a name used in a request (a reported alias or the real name).
    pub(crate) fn real_group(&self, requested: &str) -> String {
        self.group_aliases
            .iter()
            .find(|(_, alias)| alias.as_str() == requested)
            .map_or_else(|| requested.to_owned(), |(real, _)| real.clone())
    }

    /// The real deployment for a name used in a request (a reported alias or the real
    /// name; a real name that has an alias is no longer accepted).
    pub(crate) fn real_deployment(&self, requested: &str) -> Option<String> {
        if let Some((real, _)) = self
            .deployment_aliases
            .iter()
            .find(|(_, alias)| alias.as_str() == requested)
        {
            return Some(real.clone());
        }
        (!self.deployment_aliases.contains_key(requested)).then(|| requested.to_owned())
    }

    /// Whether `token` is known and unexpired.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|t| Instant::now() < t.expires)
    }
}

/// World + state, shared by the server tasks and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) world: World,
    pub(crate) state: Mutex<State>,
    /// Serialises SSH jobs (see [`crate::ssh::run`]).
    pub(crate) ssh_lock: Mutex<()>,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
