//! Deployment mode: instances found through the director and reached over SSH as a
//! temporary user the director creates (docs/director-api.md).
//!
//! For each instance group, in order of first appearance in the VM list, the director
//! creates one temporary user (`bosh_<15 hex>`, one ed25519 key per run) on every instance;
//! bbr then connects to each instance directly with the host key pinned to the one the
//! director reported. Windows instances are skipped with a warning. As in Go bbr, once an
//! instance of a group has no bbr scripts the rest of the group is assumed identical and
//! skipped; unlike Go bbr, the temporary user is removed from skipped instances at once.

use crate::client::{DirectorClient, DirectorError, SshHost, VmInfo};
use crate::manifest::ManifestInfo;
use async_trait::async_trait;
use bbr_core::discovery;
use bbr_core::error::BbrError;
use bbr_core::model::Instance;
use bbr_core::remote::Remote;
use bbr_core::report::{Reporter, ReporterExt};
use bbr_core::source::{DeploymentSource, FoundDeployment, FoundInstance, SourceError};
use bbr_ssh::{ConnectOptions, Dialer, HostKeyPolicy, SshConnection};
use russh::keys::{PrivateKey, PublicKey};
use std::sync::Arc;

/// Why a temporary SSH identity could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TemporaryUserError {
    /// Generating or encoding the ed25519 key failed.
    #[error(transparent)]
    Key(#[from] russh::keys::ssh_key::Error),
}

/// Why an instance's pinned host key could not be read from the director's SSH setup result.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The line has no `<type> <base64>` fields.
    #[error("ssh.NewConnection.ParseAuthorizedKey failed: ssh: no key found in {line:?}")]
    NoKey {
        /// The line the director sent.
        line: String,
    },
    /// The base64 key does not decode.
    #[error("ssh.NewConnection.ParseAuthorizedKey failed: {0}")]
    Parse(#[source] russh::keys::Error),
}

/// A temporary SSH identity for one run.
pub struct TemporaryUser {
    /// `bosh_<15 hex>`.
    pub name: String,
    /// The private key.
    pub key: Arc<PrivateKey>,
    /// The public key as an authorized_keys line.
    pub public_key_line: String,
}

impl TemporaryUser {
    /// A fresh user name and ed25519 key.
    pub fn generate() -> Result<TemporaryUser, TemporaryUserError> {
        let name = format!("bosh_{}", &hex::encode(rand::random::<[u8; 8]>())[..15]);
        let seed: [u8; 32] = rand::random();
        let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
        let key = PrivateKey::new(pair.into(), "bbr")?;
        let public_key_line = key.public_key().to_openssh()?;
        Ok(TemporaryUser {
            name,
            key: Arc::new(key),
            public_key_line,
        })
    }
}

/// Splits an address from an SSH setup result into host and port (22 unless given), by
/// [`bbr_gocompat::hostport::host_and_port`]; text that is not an address is kept whole as
/// the host, so the connection error names it.
pub fn host_and_port(ip: &str) -> (String, u16) {
    bbr_gocompat::hostport::host_and_port(ip, 22).unwrap_or_else(|_| (ip.to_string(), 22))
}

fn parse_host_key(line: &str) -> Result<PublicKey, HostKeyError> {
    let mut fields = line.split_whitespace();
    let (Some(_kind), Some(base64)) = (fields.next(), fields.next()) else {
        return Err(HostKeyError::NoKey {
            line: line.to_string(),
        });
    };
    russh::keys::parse_public_key_base64(base64).map_err(HostKeyError::Parse)
}

/// Why the instances of one group could not be found (the text follows `failed to find
/// instances for deployment <name>: `).
#[derive(Debug, thiserror::Error)]
enum DiscoveryError {
    /// The pinned host key is unreadable.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// SSH to the instance failed.
    #[error("failed to connect using ssh: {0}")]
    Connect(#[source] bbr_ssh::SshError),
    /// `echo %OS%` failed.
    #[error("failed to check os: {0}")]
    CheckOs(#[source] bbr_core::remote::RemoteError),
    /// Listing the instance's scripts failed.
    #[error("couldn't find jobs: {0}")]
    FindJobs(#[source] BbrError),
    /// The VM list has no entry for the instance id.
    #[error("couldn't find instance index: vmInfo does not contain given vmID {0}")]
    NoVmInfo(String),
    /// The VM list entry has no index.
    #[error("couldn't find instance index: vmInfo index is nil, given vmID {0}")]
    NoIndex(String),
    /// A backup-one-restore-all job's release name cannot name an artifact.
    #[error(transparent)]
    UnsafeReleaseName(#[from] bbr_artifact::naming::UnsafeName),
}

/// What probing one instance found.
enum Probe {
    /// `echo %OS%` said Windows_NT.
    Windows,
    /// A Linux instance and its scripts.
    Linux {
        connection: Arc<SshConnection>,
        scripts: discovery::FoundScripts,
    },
}

/// A deployment reached through a BOSH director.
pub struct DirectorDeployment {
    client: Arc<DirectorClient>,
    deployment: String,
    user: TemporaryUser,
    max_parallel: usize,
    on_warning: Arc<dyn Fn(String) + Send + Sync>,
    dialer: Dialer,
    root_runner: bool,
}

impl DirectorDeployment {
    /// A source for `deployment` through `client`.
    pub fn new(
        client: Arc<DirectorClient>,
        deployment: String,
        max_parallel: usize,
        on_warning: Arc<dyn Fn(String) + Send + Sync>,
        dialer: Dialer,
    ) -> Result<Self, TemporaryUserError> {
        Ok(Self {
            client,
            deployment,
            user: TemporaryUser::generate()?,
            max_parallel,
            on_warning,
            dialer,
            root_runner: true,
        })
    }

    /// Whether root commands go through one root process per VM (the default) or each
    /// through its own `sudo`, as Go bbr runs them (see `bbr_ssh::ConnectOptions`).
    pub fn with_root_runner(mut self, on: bool) -> Self {
        self.root_runner = on;
        self
    }

    /// The director client.
    pub fn client(&self) -> &Arc<DirectorClient> {
        &self.client
    }

    async fn release(&self, group: &str, id: &str) -> Result<(), DirectorError> {
        self.client
            .ssh_cleanup(&self.deployment, group, id, &self.user.name)
            .await
    }

    async fn connect(&self, host: &SshHost) -> Result<Arc<SshConnection>, DiscoveryError> {
        let (addr, port) = host_and_port(&host.ip);
        let pinned = parse_host_key(&host.host_public_key)?;
        let options = ConnectOptions {
            host: addr,
            port,
            user: self.user.name.clone(),
            key: self.user.key.clone(),
            host_key: HostKeyPolicy::Pinned(pinned),
            on_warning: self.on_warning.clone(),
            dialer: self.dialer.clone(),
            root_runner: self.root_runner,
        };
        SshConnection::connect(options)
            .await
            .map_err(DiscoveryError::Connect)
    }

    async fn discover_group(
        &self,
        group: &str,
        hosts: Vec<SshHost>,
        vms: &[VmInfo],
        manifest: &ManifestInfo,
        reporter: &dyn Reporter,
    ) -> Result<Vec<FoundInstance>, DiscoveryError> {
        use futures::stream::{self, StreamExt};
        for h in &hosts {
            reporter.debug(format!("Attempting to SSH onto {}, {}", h.ip, h.id));
        }
        let connected: Vec<Result<Arc<SshConnection>, DiscoveryError>> =
            stream::iter(hosts.clone())
                .map(|h| async move { self.connect(&h).await })
                .buffered(self.max_parallel.max(1))
                .collect()
                .await;
        // Probe every connected host at once: its OS, then its scripts.
        let probes: Vec<Result<Probe, DiscoveryError>> =
            stream::iter(hosts.iter().cloned().zip(connected))
                .map(|(host, connection)| async move {
                    let connection = connection?;
                    let identifier = format!("{group}/{}", host.id);
                    let os = connection
                        .run("echo %OS%")
                        .await
                        .map_err(DiscoveryError::CheckOs)?;
                    if os.stdout_text().trim() == "Windows_NT" {
                        return Ok(Probe::Windows);
                    }
                    let scripts =
                        discovery::find_scripts(connection.as_ref(), &identifier, reporter)
                            .await
                            .map_err(DiscoveryError::FindJobs)?;
                    Ok(Probe::Linux {
                        connection,
                        scripts,
                    })
                })
                .buffered(self.max_parallel.max(1))
                .collect()
                .await;
        let mut found = Vec::new();
        let mut skip_rest = false;
        for (host, probe) in hosts.iter().zip(probes) {
            let identifier = format!("{group}/{}", host.id);
            if skip_rest {
                if let Err(e) = self.release(group, &host.id).await {
                    reporter.warn(format!(
                        "could not remove the temporary user from skipped instance {identifier}: {e}"
                    ));
                }
                continue;
            }
            let (connection, scripts) = match probe? {
                Probe::Windows => {
                    reporter.warn(format!("skipping Windows instance {identifier}"));
                    if let Err(e) = self.release(group, &host.id).await {
                        reporter.warn(format!(
                            "could not remove the temporary user from {identifier}: {e}"
                        ));
                    }
                    continue;
                }
                Probe::Linux {
                    connection,
                    scripts,
                } => (connection, scripts),
            };
            let vm = vms
                .iter()
                .find(|v| v.id == host.id)
                .ok_or_else(|| DiscoveryError::NoVmInfo(host.id.clone()))?;
            let index = vm
                .index
                .ok_or_else(|| DiscoveryError::NoIndex(host.id.clone()))?;
            let (addr, _) = host_and_port(&host.ip);
            let bootstrap = vm.bootstrap && vm.ips.iter().any(|ip| host_and_port(ip).0 == addr);
            let releases = scripts
                .keys()
                .map(|job| match manifest.release(group, job) {
                    Some(r) => (job.clone(), r.to_string()),
                    None => {
                        reporter.warn(format!("could not find release name for job {job}"));
                        (job.clone(), String::new())
                    }
                })
                .collect();
            let backup_one_restore_all: std::collections::BTreeSet<String> = scripts
                .keys()
                .filter(|job| manifest.backup_one_restore_all(group, job))
                .cloned()
                .collect();
            // A backup-one-restore-all artifact is named after the job's release.
            for job in &backup_one_restore_all {
                let release = manifest.release(group, job).unwrap_or_default();
                bbr_artifact::naming::check_safe_name(
                    "release name",
                    release,
                    &format!(
                        "of job {job} in the manifest of deployment {}",
                        self.deployment
                    ),
                )?;
            }
            if scripts.is_empty() {
                reporter.debug(format!(
                    "no scripts found on instance {identifier}, skipping rest of the instances for {group}"
                ));
                skip_rest = true;
            }
            found.push(FoundInstance {
                group: group.to_string(),
                index: index.to_string(),
                id: host.id.clone(),
                remote: connection,
                scripts,
                releases,
                backup_one_restore_all,
                bootstrap,
            });
        }
        Ok(found)
    }
}

#[async_trait]
impl DeploymentSource for DirectorDeployment {
    fn deployment_name(&self) -> &str {
        &self.deployment
    }

    fn omits_releases(&self) -> bool {
        false
    }

    async fn find(&self, reporter: &dyn Reporter) -> Result<FoundDeployment, BbrError> {
        let d = &self.deployment;
        let fail = |m: String| {
            BbrError::general(format!("failed to find instances for deployment {d}: {m}"))
        };
        reporter.debug("Finding VMs...");
        let vms = self
            .client
            .vms(d)
            .await
            .map_err(|e| fail(format!("couldn't get vm infos: {e}")))?;
        let manifest_text = self
            .client
            .manifest(d)
            .await
            .map_err(|e| fail(format!("couldn't find manifest for deployment {d}: {e}")))?;
        let manifest = ManifestInfo::parse(&manifest_text).map_err(|e| {
            fail(format!(
                "couldn't generate manifest querier for deployment {d}: {e}"
            ))
        })?;
        // Group names become artifact file names: refuse unsafe ones before any SSH user
        // exists or any job is locked.
        for vm in &vms {
            bbr_artifact::naming::check_safe_name(
                "instance group name",
                &vm.job_name,
                "reported by the director",
            )
            .map_err(|e| fail(e.to_string()))?;
        }
        let mut groups: Vec<&str> = Vec::new();
        for vm in &vms {
            if !groups.contains(&vm.job_name.as_str()) {
                groups.push(&vm.job_name);
            }
        }
        reporter.debug(format!("SSH user generated: {}", self.user.name));
        let mut instances = Vec::new();
        let mut set_up: Vec<(String, Vec<String>)> = Vec::new();
        let mut failure = None;
        for group in groups {
            reporter.debug(format!("Setting up SSH for job {group}"));
            let hosts = match self
                .client
                .ssh_setup(d, group, &self.user.name, &self.user.public_key_line)
                .await
            {
                Ok(h) => h,
                Err(e) => {
                    // A setup that timed out, was stopped or whose answer was lost may
                    // still have created the user on the group's VMs: release them all.
                    set_up.push((
                        group.to_string(),
                        vms.iter()
                            .filter(|vm| vm.job_name == group)
                            .map(|vm| vm.id.clone())
                            .collect(),
                    ));
                    failure = Some(format!("failed to set up ssh: {e}"));
                    break;
                }
            };
            set_up.push((
                group.to_string(),
                hosts.iter().map(|h| h.id.clone()).collect(),
            ));
            if let Some(bad) = hosts.iter().find(|h| h.status != "success") {
                failure = Some(format!(
                    "failed to set up ssh: status '{}' for instance {group}/{}",
                    bad.status, bad.id
                ));
                break;
            }
            match self
                .discover_group(group, hosts, &vms, &manifest, reporter)
                .await
            {
                Ok(found) => instances.extend(found),
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(message) = failure {
            // Remove every temporary user created so far before giving up.
            for (group, ids) in &set_up {
                for id in ids {
                    reporter.debug(format!(
                        "Cleaning up SSH connection on instance {group} {id}"
                    ));
                    if let Err(e) = self.release(group, id).await {
                        reporter.warn(format!(
                            "could not remove the temporary user from {group}/{id}: {e}"
                        ));
                    }
                }
            }
            return Err(fail(message));
        }
        Ok(FoundDeployment {
            name: d.clone(),
            instances,
        })
    }

    async fn manifest(&self) -> Result<Option<String>, SourceError> {
        self.client
            .manifest(&self.deployment)
            .await
            .map(Some)
            .map_err(SourceError::backend)
    }

    async fn release_instance(&self, instance: &Instance) -> Result<(), SourceError> {
        self.release(&instance.group, &instance.id)
            .await
            .map_err(SourceError::backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_users_look_like_bosh_cli_ones() {
        let u = TemporaryUser::generate().unwrap();
        assert!(
            u.name.starts_with("bosh_") && u.name.len() == 20,
            "{}",
            u.name
        );
        assert!(u.public_key_line.starts_with("ssh-ed25519 "));
        assert_ne!(TemporaryUser::generate().unwrap().name, u.name);
    }

    #[test]
    fn addresses_with_and_without_port() {
        assert_eq!(host_and_port("10.0.0.5"), ("10.0.0.5".into(), 22));
        assert_eq!(host_and_port("127.1.2.3:2222"), ("127.1.2.3".into(), 2222));
        assert_eq!(host_and_port("[::1]:2200"), ("::1".into(), 2200));
        assert_eq!(host_and_port("fe80::1"), ("fe80::1".into(), 22));
    }

    #[test]
    fn host_keys_parse_from_authorized_keys_lines() {
        let err = parse_host_key("garbage").unwrap_err();
        assert!(matches!(err, HostKeyError::NoKey { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            r#"ssh.NewConnection.ParseAuthorizedKey failed: ssh: no key found in "garbage""#
        );
        let err = parse_host_key("ssh-ed25519 !!!notbase64").unwrap_err();
        assert!(matches!(err, HostKeyError::Parse(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("ssh.NewConnection.ParseAuthorizedKey failed: "),
            "{err}"
        );
        let u = TemporaryUser::generate().unwrap();
        assert!(parse_host_key(&u.public_key_line).is_ok());
    }
}
