//! The shared state of one workflow run: the deployment source, the options, the reporter
//! and the deployment once found; discovery (with or without metadata scripts), releasing
//! instances, the artifact-directory check, and running lock/unlock phases and job scripts.

use super::RunOptions;
use super::steps::StepResult;
use crate::discovery::{self, DiscoveryOptions};
use crate::error::{BbrError, ErrorKind, ErrorList};
use crate::lock_order::{self, InstanceJob, Phase};
use crate::model::{Deployment, Instance, Job, ScriptKind};
use crate::report::{Reporter, ReporterExt};
use crate::script::{Capture, Script, ScriptLimits, run_script};
use crate::source::{DeploymentSource, FoundDeployment};
use crate::{ARTIFACT_DIRECTORY, commands};
use futures::stream::{self, StreamExt};
use std::sync::Arc;

/// Why an instance is not ready for a run: its artifact directory exists already, or could
/// not be checked.
#[derive(Debug, thiserror::Error)]
pub(super) enum ArtifactDirProblem {
    /// The directory is there (a previous run was not cleaned up).
    #[error(
        "Directory {} already exists on instance {instance}",
        ARTIFACT_DIRECTORY
    )]
    Exists {
        /// `<group>/<id>`.
        instance: String,
    },
    /// `sudo` refused the check.
    #[error(
        "Error checking {} on instance {instance}: {stderr}{hint}",
        ARTIFACT_DIRECTORY
    )]
    Sudo {
        /// `<group>/<id>`.
        instance: String,
        /// What sudo printed.
        stderr: String,
        /// [`discovery::sudo_hint`] for it.
        hint: &'static str,
    },
    /// The check could not be run.
    #[error(
        "Error checking {} on instance {instance}: {source}",
        ARTIFACT_DIRECTORY
    )]
    Remote {
        /// `<group>/<id>`.
        instance: String,
        /// Why.
        #[source]
        source: crate::remote::RemoteError,
    },
}

/// Every instance's [`ArtifactDirProblem`], one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub(super) struct ArtifactDirProblems(pub(super) Vec<ArtifactDirProblem>);

/// Runs `f` over `items` with at most `max` in flight, keeping input order in the results.
pub(super) async fn bounded<T, F, Fut, R>(items: Vec<T>, max: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    stream::iter(items.into_iter().map(f))
        .buffered(max.max(1))
        .collect()
        .await
}

/// Shared state of one workflow run.
pub struct Session<'a> {
    pub(super) source: &'a dyn DeploymentSource,
    pub(super) options: RunOptions,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) deployment: Option<Deployment>,
}

pub(super) fn one(e: BbrError) -> ErrorList {
    ErrorList(vec![e])
}

impl<'a> Session<'a> {
    /// A session over `source`.
    pub fn new(
        source: &'a dyn DeploymentSource,
        options: RunOptions,
        reporter: &'a dyn Reporter,
    ) -> Self {
        Self {
            source,
            options,
            reporter,
            deployment: None,
        }
    }

    pub(super) fn name(&self) -> &str {
        self.source.deployment_name()
    }

    pub(super) fn deployment(&self) -> &Deployment {
        self.deployment
            .as_ref()
            .expect("a step after FindDeployment ran without a deployment")
    }

    pub(super) async fn find(&mut self, with_metadata: bool) -> StepResult {
        self.reporter.info("Looking for scripts");
        let found = self.source.find(self.reporter).await.map_err(one)?;
        let deployment = if with_metadata {
            match self.build_with_metadata(found).await {
                Ok(deployment) => deployment,
                Err((mut errors, instances)) => {
                    // No workflow will run, so no cleanup step either: release what the
                    // source set up for every instance (deployment mode: the SSH users).
                    errors.extend(self.release(instances).await);
                    return Err(errors);
                }
            }
        } else {
            build_without_metadata(found)
        };
        self.deployment = Some(deployment);
        Ok(())
    }

    /// Lets the source release each of `instances`.
    pub(super) async fn release(&self, instances: Vec<Arc<Instance>>) -> ErrorList {
        let source = self.source;
        let results = bounded(instances, self.options.max_parallel, |i| async move {
            source.release_instance(&i).await.map_err(|e| {
                BbrError::new(
                    ErrorKind::Cleanup,
                    format!("failed to cleanup ssh on {}: {e}", i.identifier()),
                )
            })
        })
        .await;
        let mut errors = ErrorList::default();
        for r in results {
            if let Err(e) = r {
                errors.push(e);
            }
        }
        errors
    }

    /// Runs the metadata scripts and builds the deployment; on failure returns the errors
    /// with every instance (those that failed without jobs), for releasing.
    pub(super) async fn build_with_metadata(
        &self,
        found: FoundDeployment,
    ) -> Result<Deployment, (ErrorList, Vec<Arc<Instance>>)> {
        let options = &self.options;
        let omit = self.source.omits_releases();
        let reporter = self.reporter;
        let results = bounded(found.instances, options.max_parallel, |fi| async move {
            let discovery = DiscoveryOptions {
                bbr_version: &options.bbr_version,
                omit_releases: omit,
                limits: options.unkillable(ScriptKind::Metadata),
                releases: fi.releases.clone(),
            };
            let id = fi.identifier();
            let jobs = match discovery::load_jobs(
                fi.remote.as_ref(),
                &id,
                &fi.scripts,
                &discovery,
                reporter,
            )
            .await
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    let bare = Instance::new(fi.group, fi.index, fi.id, Vec::new(), fi.remote);
                    return Err((e, Arc::new(bare)));
                }
            };
            let jobs = jobs
                .into_iter()
                .map(|mut j| {
                    j.backup_one_restore_all = fi.backup_one_restore_all.contains(&j.name);
                    j.on_bootstrap = fi.bootstrap;
                    j
                })
                .collect();
            Ok::<_, (BbrError, Arc<Instance>)>(Arc::new(Instance::new(
                fi.group, fi.index, fi.id, jobs, fi.remote,
            )))
        })
        .await;
        let mut instances = Vec::new();
        let mut errors = ErrorList::default();
        for r in results {
            match r {
                Ok(i) => instances.push(i),
                Err((e, bare)) => {
                    errors.push(e);
                    instances.push(bare);
                }
            }
        }
        if !errors.is_empty() {
            return Err((errors, instances));
        }
        Ok(Deployment {
            name: found.name,
            instances,
        })
    }

    pub(super) async fn check_artifact_dirs(&self) -> Result<(), ArtifactDirProblems> {
        let instances = self.deployment().instances.clone();
        let results = bounded(instances, self.options.max_parallel, |i| async move {
            let out = i
                .remote
                .run_as_root(&commands::stat_artifact_directory())
                .await;
            match out {
                Ok(o) if o.success() => Some(ArtifactDirProblem::Exists {
                    instance: i.identifier(),
                }),
                Ok(o) if o.stderr_text().contains("sudo:") => Some(ArtifactDirProblem::Sudo {
                    instance: i.identifier(),
                    hint: discovery::sudo_hint(&o.stderr_text()),
                    stderr: o.stderr_text().to_string(),
                }),
                Ok(_) => None,
                Err(source) => Some(ArtifactDirProblem::Remote {
                    instance: i.identifier(),
                    source,
                }),
            }
        })
        .await;
        let problems: Vec<ArtifactDirProblem> = results.into_iter().flatten().collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ArtifactDirProblems(problems))
        }
    }

    pub(super) fn validate_order(&self, phase: Phase) -> Result<Vec<Vec<InstanceJob>>, BbrError> {
        lock_order::order(&self.deployment().jobs(), phase)
            .map_err(|e| BbrError::general(e.to_string()))
    }

    /// Runs `kind` on every job that has it, level by level (parallel within a level), and
    /// stops locking after a level that failed.
    pub(super) async fn run_levels(
        &self,
        levels: Vec<Vec<InstanceJob>>,
        kind: ScriptKind,
        env: Vec<(&'static str, String)>,
        error_kind: ErrorKind,
        serial: bool,
    ) -> ErrorList {
        let is_lock = matches!(kind, ScriptKind::PreBackupLock | ScriptKind::PreRestoreLock);
        let limits = if is_lock {
            self.options.killable(kind)
        } else {
            self.options.unkillable(kind)
        };
        let reporter = self.reporter;
        let parallel = if serial { 1 } else { self.options.max_parallel };
        let mut errors = ErrorList::default();
        for level in levels {
            let with_script: Vec<InstanceJob> = level
                .into_iter()
                .filter(|(_, j)| j.script(kind).is_some())
                .collect();
            let env = &env;
            let limits = &limits;
            let results = bounded(with_script, parallel, |(instance, job)| async move {
                run_job_script(&instance, &job, kind, env, limits, error_kind, reporter).await
            })
            .await;
            for r in results {
                if let Err(e) = r {
                    errors.push(e);
                }
            }
            if is_lock && (!errors.is_empty() || self.options.stop.is_raised()) {
                break;
            }
            if serial && kind == ScriptKind::PreRestoreLock && !errors.is_empty() {
                break;
            }
        }
        errors
    }

    /// Runs one lock or unlock phase with its banners: lock phases in lock order, unlock
    /// phases in reverse.
    pub(super) async fn run_phase(
        &self,
        kind: ScriptKind,
        phase: Phase,
        env: Vec<(&'static str, String)>,
        error_kind: ErrorKind,
        serial: bool,
    ) -> Result<ErrorList, ErrorList> {
        let name = kind.file_name();
        self.reporter.info(format!("Running {name} scripts..."));
        let mut levels = self.validate_order(phase).map_err(one)?;
        if matches!(
            kind,
            ScriptKind::PostBackupUnlock | ScriptKind::PostRestoreUnlock
        ) {
            levels.reverse();
        }
        let errors = self.run_levels(levels, kind, env, error_kind, serial).await;
        self.reporter
            .info(format!("Finished running {name} scripts."));
        Ok(errors)
    }
}

pub(super) fn build_without_metadata(found: FoundDeployment) -> Deployment {
    let instances = found
        .instances
        .into_iter()
        .map(|fi| {
            let jobs = fi
                .scripts
                .iter()
                .map(|(name, scripts)| Job {
                    name: name.clone(),
                    release: fi.releases.get(name).cloned().unwrap_or_default(),
                    scripts: scripts.clone(),
                    metadata: Default::default(),
                    backup_one_restore_all: fi.backup_one_restore_all.contains(name),
                    on_bootstrap: fi.bootstrap,
                })
                .collect();
            Arc::new(Instance::new(fi.group, fi.index, fi.id, jobs, fi.remote))
        })
        .collect();
    Deployment {
        name: found.name,
        instances,
    }
}

pub(super) async fn run_job_script(
    instance: &Instance,
    job: &Job,
    kind: ScriptKind,
    env: &[(&'static str, String)],
    limits: &ScriptLimits,
    error_kind: ErrorKind,
    reporter: &dyn Reporter,
) -> Result<(), BbrError> {
    let Some(path) = job.script(kind) else {
        return Ok(());
    };
    let id = instance.identifier();
    let (start, done, failed) = match kind {
        ScriptKind::PreBackupLock => (
            format!("Locking {} on {id} for backup...", job.name),
            format!("Finished locking {} on {id} for backup.", job.name),
            format!("Error locking {} on {id}.", job.name),
        ),
        ScriptKind::PreRestoreLock => (
            format!("Locking {} on {id} for restore...", job.name),
            format!("Finished locking {} on {id} for restore.", job.name),
            format!("Error locking {} on {id}.", job.name),
        ),
        ScriptKind::Restore => (
            format!("Restoring {} on {id}...", job.name),
            format!("Finished restoring {} on {id}.", job.name),
            format!("Error restoring {} on {id}.", job.name),
        ),
        _ => (
            format!("Unlocking {} on {id}...", job.name),
            format!("Finished unlocking {} on {id}.", job.name),
            format!("Error unlocking {} on {id}.", job.name),
        ),
    };
    reporter.debug(format!("> {path}"));
    reporter.info(start);
    let script = Script {
        job: &job.name,
        instance: &id,
        path,
        env,
        capture: Capture::Tail,
    };
    match run_script(instance.remote.as_ref(), &script, limits, reporter).await {
        Ok(_) => {
            reporter.info(done);
            Ok(())
        }
        Err(e) => {
            reporter.error(failed);
            Err(BbrError::new(
                error_kind,
                format!(
                    "Error attempting to run {} for job {} on {id}: {e}",
                    kind.file_name(),
                    job.name
                ),
            ))
        }
    }
}
