//! Declarative description of the deployments a [`DirectorSim`](crate::DirectorSim)
//! serves: [`SimSpec`], [`DeploymentSpec`], [`InstanceGroupSpec`], [`JobSpec`],
//! and the BOSH v2 manifest generated for a deployment that does not bring
//! its own.
//!
//! The YAML form (parsed with [`SimSpec::from_yaml`]):
//!
//! ```yaml
//! deployments:
//! - name: redis
//!   instance_groups:
//!   - name: redis-server
//!     instances: 2
//!     jobs:                      # default: one job named like the group
//!     - redis                    # release defaults to the job name
//!     - {name: redis-backup, release: redis-backup-release, backup_one_restore_all: true}
//!   - name: windows-box
//!     instances: 1
//!     os: windows
//! - name: other
//!   manifest: |                 # verbatim manifest instead of a generated one
//!     name: other
//!     instance_groups: []
//!   instance_groups: [{name: db, instances: 1}]
//! ```
//!
//! A bare list of deployments (without the `deployments:` key) is accepted
//! too. Unknown keys are rejected so that typos do not go unnoticed.

use std::fmt::Write as _;
use std::io;

use serde::Deserialize;

/// Operating system of an instance group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// A Linux stemcell (`ubuntu-jammy`): an ordinary testkit VM.
    #[default]
    Linux,
    /// A Windows stemcell (`windows2019`). The VM is still a Linux sshd, but a
    /// `ForceCommand` makes `echo %OS%` print `Windows_NT` (what bbr uses to
    /// detect and skip Windows instances); every other command runs normally.
    Windows,
}

impl Os {
    /// Stemcell operating-system name used in manifests and VM details.
    pub fn stemcell_os(self) -> &'static str {
        match self {
            Os::Linux => "ubuntu-jammy",
            Os::Windows => "windows2019",
        }
    }
}

/// One job (BOSH release job) colocated on an instance group, as listed in
/// the generated manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// Job name (`/var/vcap/jobs/<name>`).
    pub name: String,
    /// Release providing the job.
    pub release: String,
    /// Emit `properties.bbr.backup_one_restore_all: true` for this job.
    pub backup_one_restore_all: bool,
}

impl JobSpec {
    /// Job `name` from release `release`.
    pub fn new(name: impl Into<String>, release: impl Into<String>) -> Self {
        JobSpec {
            name: name.into(),
            release: release.into(),
            backup_one_restore_all: false,
        }
    }

    /// Set `properties.bbr.backup_one_restore_all: true`.
    pub fn backup_one_restore_all(mut self) -> Self {
        self.backup_one_restore_all = true;
        self
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JobYaml {
    Name(String),
    Full(JobFullYaml),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFullYaml {
    name: String,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    backup_one_restore_all: bool,
}

impl<'de> Deserialize<'de> for JobSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match JobYaml::deserialize(d)? {
            JobYaml::Name(name) => JobSpec::new(name.clone(), name),
            JobYaml::Full(f) => JobSpec {
                release: f.release.unwrap_or_else(|| f.name.clone()),
                name: f.name,
                backup_one_restore_all: f.backup_one_restore_all,
            },
        })
    }
}

/// An instance group: `instances` VMs with index `0..instances`, each a
/// real [`bbr_testkit::Vm`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceGroupSpec {
    /// Group name (`job_name` in the VM list).
    pub name: String,
    /// Number of instances (may be 0).
    pub instances: usize,
    /// Stemcell OS.
    #[serde(default)]
    pub os: Os,
    /// Jobs for the generated manifest; empty means one job named like the
    /// group from a release named like the group.
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
    /// Availability zone reported for the instances (default `z1`).
    #[serde(default)]
    pub az: Option<String>,
}

impl InstanceGroupSpec {
    /// A Linux group `name` with `instances` instances and default jobs.
    pub fn new(name: impl Into<String>, instances: usize) -> Self {
        InstanceGroupSpec {
            name: name.into(),
            instances,
            os: Os::Linux,
            jobs: Vec::new(),
            az: None,
        }
    }

    /// Set the OS.
    pub fn os(mut self, os: Os) -> Self {
        self.os = os;
        self
    }

    /// Add a job (for the generated manifest).
    pub fn job(mut self, job: JobSpec) -> Self {
        self.jobs.push(job);
        self
    }

    /// Set the availability zone.
    pub fn az(mut self, az: impl Into<String>) -> Self {
        self.az = Some(az.into());
        self
    }

    /// The jobs as they appear in the manifest (the default job if none).
    pub fn effective_jobs(&self) -> Vec<JobSpec> {
        if self.jobs.is_empty() {
            vec![JobSpec::new(self.name.clone(), self.name.clone())]
        } else {
            self.jobs.clone()
        }
    }

    /// The availability zone (`z1` unless set).
    pub fn effective_az(&self) -> &str {
        self.az.as_deref().unwrap_or("z1")
    }
}

/// A deployment: a name, instance groups and a manifest (given verbatim or
/// generated by [`DeploymentSpec::effective_manifest`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// Deployment name.
    pub name: String,
    /// Manifest text returned by `GET /deployments/<name>`; generated when
    /// absent.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Instance groups, in the order the VM list reports them.
    #[serde(default)]
    pub instance_groups: Vec<InstanceGroupSpec>,
}

impl DeploymentSpec {
    /// An empty deployment called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        DeploymentSpec {
            name: name.into(),
            manifest: None,
            instance_groups: Vec::new(),
        }
    }

    /// Add an instance group.
    pub fn group(mut self, group: InstanceGroupSpec) -> Self {
        self.instance_groups.push(group);
        self
    }

    /// Serve this manifest text verbatim.
    pub fn manifest(mut self, text: impl Into<String>) -> Self {
        self.manifest = Some(text.into());
        self
    }

    /// The given manifest, or a generated BOSH v2 manifest: `name`,
    /// `releases` (every release named by a job, `version: latest`),
    /// `stemcells`, `update`, and `instance_groups` with `instances`, `azs`,
    /// `vm_type`, `stemcell`, `networks` and `jobs` (`name`, `release`, and
    /// `properties.bbr.backup_one_restore_all: true` where requested).
    pub fn effective_manifest(&self) -> String {
        if let Some(m) = &self.manifest {
            return m.clone();
        }
        let mut out = String::new();
        let _ = writeln!(out, "name: {}", yaml_scalar(&self.name));
        let mut releases: Vec<String> = Vec::new();
        for g in &self.instance_groups {
            for j in g.effective_jobs() {
                if !releases.contains(&j.release) {
                    releases.push(j.release);
                }
            }
        }
        out.push_str("releases:\n");
        if releases.is_empty() {
            out.truncate(out.len() - 1);
            out.push_str(" []\n");
        }
        for r in &releases {
            let _ = writeln!(out, "- name: {}\n  version: latest", yaml_scalar(r));
        }
        let mut oses: Vec<Os> = Vec::new();
        for g in &self.instance_groups {
            if !oses.contains(&g.os) {
                oses.push(g.os);
            }
        }
        if oses.is_empty() {
            oses.push(Os::Linux);
        }
        out.push_str("stemcells:\n");
        for os in &oses {
            let _ = writeln!(
                out,
                "- alias: {}\n  os: {}\n  version: latest",
                stemcell_alias(*os),
                os.stemcell_os()
            );
        }
        out.push_str(
            "update:\n  canaries: 1\n  max_in_flight: 1\n  canary_watch_time: 1000-30000\n  update_watch_time: 1000-30000\n",
        );
        out.push_str("instance_groups:");
        if self.instance_groups.is_empty() {
            out.push_str(" []");
        }
        out.push('\n');
        for g in &self.instance_groups {
            let _ = writeln!(out, "- name: {}", yaml_scalar(&g.name));
            let _ = writeln!(out, "  instances: {}", g.instances);
            let _ = writeln!(out, "  azs: [{}]", yaml_scalar(g.effective_az()));
            out.push_str("  vm_type: default\n");
            let _ = writeln!(out, "  stemcell: {}", stemcell_alias(g.os));
            out.push_str("  networks:\n  - name: default\n  jobs:\n");
            for j in g.effective_jobs() {
                let _ = writeln!(out, "  - name: {}", yaml_scalar(&j.name));
                let _ = writeln!(out, "    release: {}", yaml_scalar(&j.release));
                if j.backup_one_restore_all {
                    out.push_str(
                        "    properties:\n      bbr:\n        backup_one_restore_all: true\n",
                    );
                } else {
                    out.push_str("    properties: {}\n");
                }
            }
        }
        out
    }
}

fn stemcell_alias(os: Os) -> &'static str {
    match os {
        Os::Linux => "default",
        Os::Windows => "windows",
    }
}

/// `s` as a YAML scalar: plain when unambiguous, otherwise double-quoted
/// (JSON string syntax is valid YAML).
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// Everything a simulator serves: a list of deployments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimSpec {
    /// The deployments, in the order `GET /deployments` lists them.
    pub deployments: Vec<DeploymentSpec>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SimYaml {
    Map(SimMapYaml),
    List(Vec<DeploymentSpec>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimMapYaml {
    deployments: Vec<DeploymentSpec>,
}

impl SimSpec {
    /// Parse the YAML form described in the [module docs](self). Deployment
    /// names must be unique, as must group names within a deployment.
    pub fn from_yaml(text: &str) -> io::Result<SimSpec> {
        let parsed: SimYaml = serde_saphyr::from_str(text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad director-sim YAML: {e}"),
            )
        })?;
        let deployments = match parsed {
            SimYaml::Map(m) => m.deployments,
            SimYaml::List(l) => l,
        };
        let spec = SimSpec { deployments };
        spec.validate()?;
        Ok(spec)
    }

    /// Check name uniqueness and that names are usable in URLs.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        let mut seen = Vec::new();
        for d in &self.deployments {
            if !url_safe(&d.name) {
                return bad(format!("deployment name {:?} is not URL-safe", d.name));
            }
            if seen.contains(&&d.name) {
                return bad(format!("duplicate deployment {:?}", d.name));
            }
            seen.push(&d.name);
            let mut groups = Vec::new();
            for g in &d.instance_groups {
                if !url_safe(&g.name) {
                    return bad(format!("instance group name {:?} is not URL-safe", g.name));
                }
                if groups.contains(&&g.name) {
                    return bad(format!(
                        "duplicate instance group {:?} in {:?}",
                        g.name, d.name
                    ));
                }
                groups.push(&g.name);
            }
        }
        Ok(())
    }
}

fn url_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_with_short_and_full_jobs() {
        let spec = SimSpec::from_yaml(
            "deployments:\n- name: redis\n  instance_groups:\n  - name: redis-server\n    instances: 2\n    jobs:\n    - redis\n    - {name: b, release: r, backup_one_restore_all: true}\n  - name: win\n    instances: 1\n    os: windows\n",
        )
        .unwrap();
        let d = &spec.deployments[0];
        assert_eq!(d.instance_groups[0].jobs[0], JobSpec::new("redis", "redis"));
        assert_eq!(
            d.instance_groups[0].jobs[1],
            JobSpec::new("b", "r").backup_one_restore_all()
        );
        assert_eq!(d.instance_groups[1].os, Os::Windows);
        assert!(SimSpec::from_yaml("- name: x\n  instance_groups: []\n").is_ok());
        assert!(SimSpec::from_yaml("- name: x\n  typo: 1\n").is_err());
        assert!(SimSpec::from_yaml("- name: x\n- name: x\n").is_err());
    }

    #[test]
    fn generated_manifest_is_valid_yaml_with_release_names() {
        let d = DeploymentSpec::new("redis")
            .group(
                InstanceGroupSpec::new("redis-server", 2)
                    .job(JobSpec::new("redis", "redis-release").backup_one_restore_all()),
            )
            .group(InstanceGroupSpec::new("true", 1).os(Os::Windows));
        let text = d.effective_manifest();
        #[derive(Deserialize)]
        struct M {
            name: String,
            releases: Vec<R>,
            instance_groups: Vec<G>,
        }
        #[derive(Deserialize)]
        struct R {
            name: String,
        }
        #[derive(Deserialize)]
        struct G {
            name: String,
            instances: usize,
            jobs: Vec<J>,
        }
        #[derive(Deserialize)]
        struct J {
            name: String,
            release: String,
            properties: serde_json::Value,
        }
        let m: M = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(m.name, "redis");
        let rel: Vec<_> = m.releases.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(rel, ["redis-release", "true"]);
        assert_eq!(m.instance_groups[0].name, "redis-server");
        assert_eq!(m.instance_groups[0].instances, 2);
        assert_eq!(m.instance_groups[0].jobs[0].name, "redis");
        assert_eq!(m.instance_groups[0].jobs[0].release, "redis-release");
        assert_eq!(
            m.instance_groups[0].jobs[0].properties,
            serde_json::json!({"bbr": {"backup_one_restore_all": true}})
        );
        assert_eq!(m.instance_groups[1].name, "true");
        assert_eq!(m.instance_groups[1].jobs[0].release, "true");
    }
}
