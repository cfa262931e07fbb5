//! Harness for `bbr deployment` tests: a BOSH director simulator with real sshd VMs, a work
//! directory, and the built `bbr` binary pointed at both.
//!
//! A test names what it acts on with typed handles: `h.instance("cf", "db", 0)` is an
//! [`InstanceRef`] (its VM, its slug), and `.job("redis-server")` a [`JobRef`] that installs
//! that job's scripts:
//!
//! ```ignore
//! let db = h.instance("cf", "db", 0);
//! db.job("redis-server").script(Script::PreBackupLock, "");
//! db.job("redis-server").metadata("backup_should_be_locked_before: ...\n");
//! assert!(!db.vm().exists("store/bbr-backup"));
//! ```

use super::{Run, Script, install_recorded};
use bbr_director_sim::{
    DeploymentSpec, DirectorSim, InstanceGroupSpec, JobSpec, SimOptions, SimSpec,
};
use bbr_testkit::Vm;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const FOOTER: &str = "It is recommended that you run `bbr backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";

pub struct Deployment {
    pub sim: DirectorSim,
    pub work: tempfile::TempDir,
}

pub fn group(name: &str, instances: usize, jobs: &[(&str, &str)]) -> InstanceGroupSpec {
    let mut g = InstanceGroupSpec::new(name, instances);
    for (job, release) in jobs {
        g = g.job(JobSpec::new(*job, *release));
    }
    g
}

impl Deployment {
    pub fn start(deployments: Vec<DeploymentSpec>, options: SimOptions) -> Self {
        let sim =
            DirectorSim::start(SimSpec { deployments }, options).expect("start director simulator");
        Deployment {
            sim,
            work: tempfile::tempdir().unwrap(),
        }
    }

    pub fn one(name: &str, groups: Vec<InstanceGroupSpec>) -> Self {
        let mut spec = DeploymentSpec::new(name);
        for g in groups {
            spec = spec.group(g);
        }
        Self::start(vec![spec], SimOptions::new())
    }

    pub fn command(&self, deployment: Option<&str>, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bbr"));
        for var in [
            "BOSH_ENVIRONMENT",
            "BOSH_CLIENT",
            "BOSH_CLIENT_SECRET",
            "BOSH_DEPLOYMENT",
            "CA_CERT",
            "BOSH_CA_CERT",
        ] {
            c.env_remove(var);
        }
        c.current_dir(self.work.path())
            .arg("deployment")
            .args([
                "--target",
                self.sim.url(),
                "--username",
                self.sim.username(),
                "--password",
                self.sim.password(),
            ])
            .arg("--ca-cert")
            .arg(self.sim.ca_path());
        match deployment {
            Some(d) => c.args(["--deployment", d]),
            None => c.arg("--all-deployments"),
        };
        c.args(args).stdin(Stdio::null());
        c
    }

    pub fn bbr(&self, deployment: &str, args: &[&str]) -> Run {
        Run(self.command(Some(deployment), args).output().unwrap())
    }

    /// Instance `index` of instance group `group` of deployment `deployment`.
    pub fn instance<'a>(
        &'a self,
        deployment: &'a str,
        group: &'a str,
        index: usize,
    ) -> InstanceRef<'a> {
        InstanceRef {
            h: self,
            deployment,
            group,
            index,
        }
    }

    /// Every VM's recorded script runs, merged in time order, as `<group>/<index> <job> <script> [ok]`.
    pub fn events(&self, d: &str) -> Vec<String> {
        let mut all: Vec<(u128, String)> = Vec::new();
        for inst in self.sim.instances(d) {
            let vm = self.sim.vm(d, &inst.group, inst.index);
            for line in vm.read("sys/events/log").unwrap_or_default().lines() {
                if let Some((t, rest)) = line.split_once(' ') {
                    all.push((
                        t.parse().unwrap(),
                        format!("{}/{} {}", inst.group, inst.index, rest.trim()),
                    ));
                }
            }
        }
        all.sort_by_key(|(t, _)| *t);
        all.into_iter().map(|(_, l)| l).collect()
    }

    pub fn artifact(&self) -> PathBuf {
        let dirs: Vec<PathBuf> = std::fs::read_dir(self.work.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs[0].clone()
    }
}

/// One instance of a deployment of the simulator: `<group>/<index>` of `<deployment>`.
#[derive(Clone, Copy)]
pub struct InstanceRef<'a> {
    h: &'a Deployment,
    deployment: &'a str,
    group: &'a str,
    index: usize,
}

impl<'a> InstanceRef<'a> {
    /// The sshd VM behind this instance.
    pub fn vm(&self) -> &'a Vm {
        self.h.sim.vm(self.deployment, self.group, self.index)
    }

    /// `<group>/<id>`, how Go bbr names the instance in messages.
    pub fn slug(&self) -> String {
        self.h
            .sim
            .instance(self.deployment, self.group, self.index)
            .slug()
    }

    /// Job `name` on this instance.
    pub fn job(&self, name: &'a str) -> JobRef<'a> {
        JobRef {
            instance: *self,
            name,
        }
    }
}

/// One job on one instance: where its bbr scripts are installed.
#[derive(Clone, Copy)]
pub struct JobRef<'a> {
    instance: InstanceRef<'a>,
    name: &'a str,
}

impl JobRef<'_> {
    /// Installs `script`: it records its run in the instance's events, then runs `body`.
    pub fn script(&self, script: Script, body: &str) {
        install_recorded(self.instance.vm(), self.name, script, body);
    }

    /// Installs a `metadata` script printing the YAML document `yaml`. It is not recorded, so
    /// that the events are lifecycle scripts only.
    pub fn metadata(&self, yaml: &str) {
        self.raw_script(
            Script::Metadata,
            &format!("#!/bin/sh\ncat <<'EOF'\n---\n{yaml}EOF\n"),
        );
    }

    /// Installs `script` as exactly `text` (a whole script, shebang included), not recorded.
    pub fn raw_script(&self, script: Script, text: &str) {
        self.instance
            .vm()
            .install_script(self.name, script.file_name(), text)
            .unwrap_or_else(|e| panic!("install {}/bin/bbr/{script}: {e}", self.name));
    }

    /// `pre-backup-lock` and `post-backup-unlock` that do nothing but record their run, and a
    /// `backup` writing `<group>-<index>` to the artifact's `data` file.
    pub fn backup_scripts(&self) {
        let InstanceRef { group, index, .. } = self.instance;
        self.script(Script::PreBackupLock, "");
        self.script(
            Script::Backup,
            &format!("echo '{group}-{index}' > \"$BBR_ARTIFACT_DIRECTORY/data\""),
        );
        self.script(Script::PostBackupUnlock, "");
    }
}
