//! Harness for `bbr deployment` tests: a BOSH director simulator with real sshd VMs, a work
//! directory, and the built `bbr` binary pointed at both.

use super::{Run, record};
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

    pub fn vm(&self, d: &str, g: &str, i: usize) -> &Vm {
        self.sim.vm(d, g, i)
    }

    pub fn script(&self, d: &str, g: &str, i: usize, job: &str, script: &str, body: &str) {
        let text = format!("{}{}\n", record(job, script), body);
        self.vm(d, g, i).install_script(job, script, &text).unwrap();
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

pub fn backup_scripts(h: &Deployment, d: &str, g: &str, i: usize, job: &str) {
    h.script(d, g, i, job, "pre-backup-lock", "");
    h.script(
        d,
        g,
        i,
        job,
        "backup",
        &format!("echo '{g}-{i}' > \"$BBR_ARTIFACT_DIRECTORY/data\""),
    );
    h.script(d, g, i, job, "post-backup-unlock", "");
}
