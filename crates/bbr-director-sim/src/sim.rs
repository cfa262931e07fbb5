//! [`DirectorSim`], the handle tests hold, with its [`SimOptions`] and
//! [`AuthMode`].

use std::fmt;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bbr_testkit::{ClientKey, KeyType, Vm, VmOptions};
use tempfile::TempDir;

use crate::server::{self, Server};
use crate::spec::{DeploymentSpec, Os, SimSpec};
use crate::state::{Deployment, FailRule, Instance, Shared, State, TaskKind, World};
use crate::tls::{self, TlsMaterial};
use crate::users;

/// How the director authenticates API calls.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// HTTP basic auth on every endpoint except `GET /info`.
    Basic {
        /// User name (bbr's `--username`).
        user: String,
        /// Password (bbr's `--password`).
        password: String,
    },
    /// A UAA at `<sim url>/uaa` issuing client-credentials tokens; API calls
    /// need `Authorization: bearer <token>`.
    Uaa {
        /// UAA client id (bbr's `--username`).
        client: String,
        /// Client secret (bbr's `--password`).
        secret: String,
        /// Lifetime of issued tokens (`expires_in`, whole seconds).
        token_ttl: Duration,
    },
}

impl AuthMode {
    /// [`AuthMode::Basic`].
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Self {
        AuthMode::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    /// [`AuthMode::Uaa`].
    pub fn uaa(client: impl Into<String>, secret: impl Into<String>, token_ttl: Duration) -> Self {
        AuthMode::Uaa {
            client: client.into(),
            secret: secret.into(),
            token_ttl,
        }
    }

    /// The user name / client id.
    pub fn username(&self) -> &str {
        match self {
            AuthMode::Basic { user, .. } => user,
            AuthMode::Uaa { client, .. } => client,
        }
    }

    /// The password / client secret.
    pub fn password(&self) -> &str {
        match self {
            AuthMode::Basic { password, .. } => password,
            AuthMode::Uaa { secret, .. } => secret,
        }
    }
}

impl fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMode::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .finish_non_exhaustive(),
            AuthMode::Uaa {
                client, token_ttl, ..
            } => f
                .debug_struct("Uaa")
                .field("client", client)
                .field("token_ttl", token_ttl)
                .finish_non_exhaustive(),
        }
    }
}

/// Simulator options. `SimOptions::default()`: basic auth `admin`/`admin`,
/// `ip_with_port = true`, one `processing` poll per task, ed25519 host keys.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Authentication scheme.
    pub auth: AuthMode,
    /// **Test-only deviation from a real director.** A director reports a
    /// plain instance IP and bbr connects to port 22; the simulated VMs
    /// listen on random ports on `127.A.B.C`. With `true` (the default) the
    /// simulator reports `"ip":"127.A.B.C:PORT"` in the SSH-setup result and
    /// the same string in the VM list's `ips` (so that bbr's bootstrap
    /// detection, which compares the two, still works); bbr connects to
    /// `host:port` when the host already has a port. With `false` it reports
    /// the plain address, exactly like a director (then nothing listens on
    /// port 22; use [`DirectorSim::vm`] to learn the port).
    pub ip_with_port: bool,
    /// How many `GET /tasks/<id>` polls report `processing` before the task
    /// reports its final state (`done` or `error`). Default 1.
    pub processing_polls: u32,
    /// Director name in `GET /info`.
    pub director_name: String,
    /// Director version in `GET /info`.
    pub version: String,
    /// Host key type of the VMs.
    pub host_key_type: KeyType,
    /// `gateway_user` in SSH-setup results (bbr ignores it).
    pub gateway_user: String,
    /// `gateway_host` in SSH-setup results (bbr ignores it).
    pub gateway_host: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            auth: AuthMode::basic("admin", "admin"),
            ip_with_port: true,
            processing_polls: 1,
            director_name: "bbr-director-sim".to_owned(),
            version: "280.1.10 (00000000)".to_owned(),
            host_key_type: KeyType::Ed25519,
            gateway_user: "vcap".to_owned(),
            gateway_host: "127.0.0.1".to_owned(),
        }
    }
}

impl SimOptions {
    /// Same as [`SimOptions::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the authentication scheme.
    pub fn auth(mut self, auth: AuthMode) -> Self {
        self.auth = auth;
        self
    }

    /// Set [`SimOptions::ip_with_port`].
    pub fn ip_with_port(mut self, yes: bool) -> Self {
        self.ip_with_port = yes;
        self
    }

    /// Set [`SimOptions::processing_polls`].
    pub fn processing_polls(mut self, polls: u32) -> Self {
        self.processing_polls = polls;
        self
    }

    /// Set the VMs' host key type.
    pub fn host_key_type(mut self, key_type: KeyType) -> Self {
        self.host_key_type = key_type;
        self
    }
}

/// A running BOSH director simulator; see the [crate docs](crate).
///
/// Dropping it stops the HTTPS server (aborting open connections), stops
/// every VM, and deletes the temporary Linux users it created.
pub struct DirectorSim {
    server: Option<Server>,
    shared: Option<Arc<Shared>>,
    addr: SocketAddr,
    url: String,
    ca_pem: String,
    server_cert_pem: String,
    dir: TempDir,
}

impl fmt::Debug for DirectorSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectorSim")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Script used as `ForceCommand` on "Windows" VMs: answers bbr's OS probe
/// like `cmd.exe` and runs everything else normally.
const WINDOWS_SHELL: &str = r#"#!/bin/sh
# bbr-director-sim: a "Windows" instance. bbr runs `echo %OS%` to detect it.
case "$SSH_ORIGINAL_COMMAND" in
  'echo %OS%') printf 'Windows_NT\r\n' ;;
  '') exec /bin/sh -l ;;
  *) exec /bin/sh -c "$SSH_ORIGINAL_COMMAND" ;;
esac
"#;

impl DirectorSim {
    /// Start VMs for every instance in `spec` and serve them.
    pub fn start(spec: SimSpec, opts: SimOptions) -> io::Result<DirectorSim> {
        spec.validate()?;
        tls::install_default_provider();
        let dir = tempfile::Builder::new()
            .prefix("bbr-director-sim-")
            .tempdir()?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let windows_shell = dir.path().join("windows-shell");
        fs::write(&windows_shell, WINDOWS_SHELL)?;
        fs::set_permissions(&windows_shell, fs::Permissions::from_mode(0o755))?;

        let material = TlsMaterial::generate()?;
        fs::write(dir.path().join("ca.pem"), &material.ca_pem)?;
        let (listener, addr) = server::bind()?;
        let url = format!("https://{addr}");

        let deployments = start_vms(&spec, &opts, &windows_shell)?;
        let shared = Arc::new(Shared {
            world: World {
                deployments,
                specs: spec.deployments,
                opts,
                uuid: uuid::Uuid::new_v4().to_string(),
                url: url.clone(),
                started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
            state: Mutex::new(State::default()),
            ssh_lock: Mutex::new(()),
        });
        let server = Server::start(listener, material.server_config()?, Arc::clone(&shared))?;
        Ok(DirectorSim {
            server: Some(server),
            shared: Some(shared),
            addr,
            url,
            ca_pem: material.ca_pem,
            server_cert_pem: material.server_cert_pem,
            dir,
        })
    }

    /// [`DirectorSim::start`] with deployments built in Rust.
    pub fn with_deployments(
        deployments: Vec<DeploymentSpec>,
        opts: SimOptions,
    ) -> io::Result<DirectorSim> {
        Self::start(SimSpec { deployments }, opts)
    }

    /// [`DirectorSim::start`] with deployments declared in YAML (see
    /// [`crate::spec`]).
    pub fn from_yaml(yaml: &str, opts: SimOptions) -> io::Result<DirectorSim> {
        Self::start(SimSpec::from_yaml(yaml)?, opts)
    }

    fn shared(&self) -> &Shared {
        self.shared
            .as_deref()
            .expect("DirectorSim used after drop started")
    }

    /// `https://127.0.0.1:PORT` (bbr's `--target`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the server certificate (bbr's `--ca-cert`
    /// accepts it as a value).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A file holding [`DirectorSim::ca_pem`] (for `--ca-cert <path>`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// PEM of the server certificate (SANs `127.0.0.1`, `localhost`).
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    /// The options the simulator runs with.
    pub fn options(&self) -> &SimOptions {
        &self.shared().world.opts
    }

    /// Basic-auth user or UAA client id (bbr's `--username`).
    pub fn username(&self) -> &str {
        self.options().auth.username()
    }

    /// Basic-auth password or UAA client secret (bbr's `--password`).
    pub fn password(&self) -> &str {
        self.options().auth.password()
    }

    /// Names of the deployments, in declaration order.
    pub fn deployment_names(&self) -> Vec<&str> {
        self.shared()
            .world
            .deployments
            .iter()
            .map(|d| d.name.as_str())
            .collect()
    }

    /// The manifest text served for `deployment`.
    ///
    /// # Panics
    /// If there is no such deployment.
    pub fn manifest(&self, deployment: &str) -> &str {
        &self.deployment(deployment).manifest
    }

    fn deployment(&self, name: &str) -> &Deployment {
        self.shared()
            .world
            .deployment(name)
            .unwrap_or_else(|| panic!("no deployment {name:?} in the director simulator"))
    }

    /// All instances of `deployment` (groups in declaration order, indexes
    /// ascending).
    ///
    /// # Panics
    /// If there is no such deployment.
    pub fn instances(&self, deployment: &str) -> &[Instance] {
        &self.deployment(deployment).instances
    }

    /// Instance `group/index` of `deployment`.
    ///
    /// # Panics
    /// If there is no such instance.
    pub fn instance(&self, deployment: &str, group: &str, index: usize) -> &Instance {
        self.instances(deployment)
            .iter()
            .find(|i| i.group == group && i.index == index)
            .unwrap_or_else(|| panic!("no instance {deployment}/{group}/{index}"))
    }

    /// The VM of instance `group/index` of `deployment`.
    ///
    /// # Panics
    /// If there is no such instance.
    pub fn vm(&self, deployment: &str, group: &str, index: usize) -> &Vm {
        &self.instance(deployment, group, index).vm
    }

    /// Every VM of `deployment`, in VM-list order.
    ///
    /// # Panics
    /// If there is no such deployment.
    pub fn vms(&self, deployment: &str) -> Vec<&Vm> {
        self.instances(deployment).iter().map(|i| &i.vm).collect()
    }

    /// The `ip` string the simulator reports for `vm` (`127.A.B.C:PORT`, or
    /// the bare address without [`SimOptions::ip_with_port`]).
    pub fn reported_ip(&self, vm: &Vm) -> String {
        if self.options().ip_with_port {
            vm.host_arg()
        } else {
            vm.addr().to_string()
        }
    }

    /// Every request received so far, in order, as `METHOD path?query`
    /// (e.g. `GET /deployments/redis/vms?format=full`).
    pub fn requests(&self) -> Vec<String> {
        self.shared().state().requests.clone()
    }

    /// Forget the requests received so far.
    pub fn clear_requests(&self) {
        self.shared().state().requests.clear();
    }

    /// Answer the next request whose `path?query` starts with `path_prefix`
    /// with `status` and a director error body (before authentication).
    pub fn fail_next(&self, path_prefix: &str, status: u16) {
        self.add_failure(path_prefix, status, true);
    }

    /// Like [`DirectorSim::fail_next`], for every matching request until
    /// [`DirectorSim::clear_failures`].
    pub fn fail_always(&self, path_prefix: &str, status: u16) {
        self.add_failure(path_prefix, status, false);
    }

    fn add_failure(&self, prefix: &str, status: u16, once: bool) {
        self.shared().state().failures.push(FailRule {
            prefix: prefix.to_owned(),
            status,
            once,
        });
    }

    /// Make every future task of `kind` end in state `error` (its result
    /// output is empty, its event output carries the error). SSH tasks that
    /// fail this way do no work.
    pub fn fail_task(&self, kind: TaskKind) {
        self.shared().state().failing_tasks.insert(kind);
    }

    /// Make SSH setup report `"status":"failure"` (and create no user) for
    /// every instance of instance group `group` (in any deployment).
    pub fn fail_ssh_setup(&self, group: &str) {
        self.shared()
            .state()
            .failing_ssh_groups
            .insert(group.to_owned());
    }

    /// Make every future task of `kind` report `processing` forever (a hung director
    /// task). Its work is still done, as for any task.
    pub fn hold_tasks(&self, kind: TaskKind) {
        self.shared().state().endless_tasks.insert(kind);
    }

    /// Answer every request whose `path?query` starts with `path_prefix` (before
    /// authentication) with `200` and a JSON-looking body of `bytes` bytes
    /// (`{"manifest":"aaaa…"}`), as a hostile or broken director could.
    pub fn serve_oversized(&self, path_prefix: &str, bytes: usize) {
        self.shared()
            .state()
            .oversized
            .push((path_prefix.to_owned(), bytes));
    }

    /// Report instance group `group` as `reported` in VM lists (any string: `../../evil`
    /// too, which a spec refuses) and accept `reported` as the target of SSH requests.
    pub fn report_group_as(&self, group: &str, reported: &str) {
        self.shared()
            .state()
            .group_aliases
            .insert(group.to_owned(), reported.to_owned());
    }

    /// List deployment `deployment` as `reported` in `GET /deployments` and serve it under
    /// that name only: requests name it by `reported`, percent-decoded (`a/b` is
    /// `a%2Fb` in a URL).
    pub fn report_deployment_as(&self, deployment: &str, reported: &str) {
        self.shared()
            .state()
            .deployment_aliases
            .insert(deployment.to_owned(), reported.to_owned());
    }

    /// Remove every injected failure.
    pub fn clear_failures(&self) {
        let mut st = self.shared().state();
        st.failures.clear();
        st.failing_tasks.clear();
        st.failing_ssh_groups.clear();
        st.endless_tasks.clear();
        st.oversized.clear();
    }

    /// Temporary users whose key is currently installed on `vm` (read from
    /// the VM's `authorized_keys` directory, so it reflects what sshd will
    /// accept; the VM's own login user is left out). Sorted.
    pub fn users_on(&self, vm: &Vm) -> Vec<String> {
        vm.authorized_users()
            .into_iter()
            .filter(|u| u != vm.user())
            .collect()
    }

    /// Temporary users known to the simulator (installed on at least one
    /// VM). Sorted.
    pub fn temp_users(&self) -> Vec<String> {
        self.shared().state().temp_users.keys().cloned().collect()
    }

    /// How many UAA tokens were issued.
    pub fn tokens_issued(&self) -> usize {
        self.shared().state().tokens_issued
    }

    /// Make every UAA token issued so far expire now (instead of waiting
    /// for its TTL).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for t in self.shared().state().tokens.values_mut() {
            t.expires = now;
        }
    }

    /// How many tasks were created.
    pub fn task_count(&self) -> usize {
        self.shared().state().tasks.len()
    }

    /// The simulator's scratch directory (CA file, Windows shell script).
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for DirectorSim {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
        let Some(shared) = self.shared.take() else {
            return;
        };
        let accounts: Vec<String> = shared.state().created_accounts.iter().cloned().collect();
        // Last reference (the server thread is joined): stops every VM and
        // with it every session of the temporary users.
        drop(shared);
        for user in accounts {
            if let Err(e) = users::delete_temp_user(&user) {
                eprintln!("bbr-director-sim: deleting user {user}: {e}");
            }
        }
    }
}

/// Start one VM per instance (in parallel) and assign BOSH identities.
fn start_vms(
    spec: &SimSpec,
    opts: &SimOptions,
    windows_shell: &Path,
) -> io::Result<Vec<Deployment>> {
    let key = Arc::new(ClientKey::generate(KeyType::Ed25519)?);
    let mut plan = Vec::new();
    for (d, dep) in spec.deployments.iter().enumerate() {
        for g in &dep.instance_groups {
            for index in 0..g.instances {
                plan.push((d, g, index));
            }
        }
    }
    let vms: Vec<io::Result<Vm>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .iter()
            .map(|&(_, g, _)| {
                let mut vm_opts = VmOptions::default()
                    .client_key(Arc::clone(&key))
                    .host_key_type(opts.host_key_type);
                if g.os == Os::Windows {
                    vm_opts = vm_opts
                        .extra_sshd_config(format!("ForceCommand {}", windows_shell.display()));
                }
                s.spawn(move || Vm::start(vm_opts))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("VM start panicked")))
            })
            .collect()
    });
    let mut deployments: Vec<Deployment> = spec
        .deployments
        .iter()
        .map(|d| Deployment {
            name: d.name.clone(),
            manifest: d.effective_manifest(),
            instances: Vec::new(),
        })
        .collect();
    let mut first_err = None;
    for ((d, g, index), vm) in plan.into_iter().zip(vms) {
        match vm {
            Ok(vm) => deployments[d].instances.push(Instance {
                deployment: spec.deployments[d].name.clone(),
                group: g.name.clone(),
                index,
                id: uuid::Uuid::new_v4().to_string(),
                agent_id: uuid::Uuid::new_v4().to_string(),
                vm_cid: format!("vm-{}", uuid::Uuid::new_v4()),
                az: g.effective_az().to_owned(),
                os: g.os,
                bootstrap: index == 0,
                vm,
            }),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(deployments),
    }
}
