//! The workflows as explicit step graphs (Go bbr's `orchestrator`): each step has an
//! on-success and an on-failure successor, every failing step adds its errors and the run
//! continues along the failure edge. A raised [`StopSignal`] (SIGTERM) sends the run down
//! the path that unlocks and cleans up.

use crate::discovery::{self, DiscoveryOptions};
use crate::error::{BbrError, ErrorKind, ErrorList};
use crate::lock_order::{self, InstanceJob, Phase};
use crate::model::{Deployment, Instance, Job, ScriptKind};
use crate::report::{Reporter, ReporterExt};
use crate::script::{Capture, Script, ScriptLimits, run_script};
use crate::source::{DeploymentSource, FoundDeployment};
use crate::stop::StopSignal;
use crate::transfer;
use crate::{ARTIFACT_DIRECTORY, commands};
use bbr_artifact::artifact_dir::ArtifactDir;
use bbr_artifact::metadata::{ArtifactMetadata, Metadata};
use bbr_artifact::naming;
use futures::stream::{self, StreamExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Settings shared by every workflow.
#[derive(Clone)]
pub struct RunOptions {
    /// `BBR_VERSION` for metadata scripts.
    pub bbr_version: String,
    /// How many scripts or transfers run at once (Go bbr: 10).
    pub max_parallel: usize,
    /// Time limits for scripts, by phase.
    pub script_timeouts: ScriptTimeouts,
    /// Raised on SIGTERM.
    pub stop: StopSignal,
}

/// Time limits for release-author scripts: one for every script, overridden per script kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptTimeouts {
    /// The limit for scripts without a limit of their own.
    pub all: Option<Duration>,
    /// Limits for particular script kinds.
    pub by_kind: std::collections::BTreeMap<ScriptKind, Duration>,
}

impl ScriptTimeouts {
    /// The limit for scripts of `kind`.
    pub fn for_kind(&self, kind: ScriptKind) -> Option<Duration> {
        self.by_kind.get(&kind).copied().or(self.all)
    }
}

impl RunOptions {
    /// Limits for a lock, backup or restore script: timed, and killed on a stop request.
    fn killable(&self, kind: ScriptKind) -> ScriptLimits {
        ScriptLimits {
            timeout: self.script_timeouts.for_kind(kind),
            stop: Some(self.stop.clone()),
        }
    }

    /// Limits for unlock and metadata scripts: timed, but never killed on a stop request.
    fn unkillable(&self, kind: ScriptKind) -> ScriptLimits {
        ScriptLimits {
            timeout: self.script_timeouts.for_kind(kind),
            stop: None,
        }
    }
}

/// What a backup needs beyond the common options.
pub struct BackupRequest {
    /// Directory in which the artifact directory is created.
    pub artifact_parent: PathBuf,
    /// The command's start time (artifact name and `start_time`).
    pub started: SystemTime,
    /// Skip lock and unlock (`--unsafe-lock-free`).
    pub unsafe_lock_free: bool,
    /// Save the deployment manifest as `manifest.yml` (`--with-manifest`).
    pub with_manifest: bool,
}

/// The result of a backup.
pub struct BackupOutcome {
    /// Errors, empty on success.
    pub errors: ErrorList,
    /// The artifact directory, when one was created.
    pub artifact: Option<PathBuf>,
}

fn stopped_error(step: &str) -> BbrError {
    BbrError::general(format!(
        "bbr was asked to terminate during {step}; jobs were unlocked and the instances cleaned up"
    ))
}

/// Runs `f` over `items` with at most `max` in flight, keeping input order in the results.
async fn bounded<T, F, Fut, R>(items: Vec<T>, max: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    stream::iter(items.into_iter().map(f))
        .buffered(max.max(1))
        .collect()
        .await
}

/// The steps of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupStep {
    /// Connect and discover jobs.
    FindDeployment,
    /// Backup scripts exist, no artifact directory on any VM, ordering is acyclic.
    Backupable,
    /// Create the local artifact directory and `metadata`.
    CreateArtifact,
    /// `pre-backup-lock` in lock order.
    Lock,
    /// `backup` scripts.
    Backup,
    /// `post-backup-unlock` after a good backup.
    UnlockAfterSuccess,
    /// `post-backup-unlock` after a failed lock or backup.
    UnlockAfterFailure,
    /// Copy and verify every artifact.
    Drain,
    /// Remove remote directories, release instances.
    Cleanup,
    /// Stamp `finish_time`.
    AddFinishTime,
}

impl BackupStep {
    /// The successor after this step succeeded (`ok`) or failed, or was preceded by a stop.
    pub fn next(self, ok: bool, stopped: bool) -> Option<BackupStep> {
        use BackupStep::*;
        if stopped {
            return match self {
                FindDeployment => None,
                Backupable | CreateArtifact => Some(Cleanup),
                Lock | Backup => Some(UnlockAfterFailure),
                UnlockAfterSuccess | UnlockAfterFailure | Drain => Some(Cleanup),
                Cleanup => Some(AddFinishTime),
                AddFinishTime => None,
            };
        }
        match (self, ok) {
            (FindDeployment, true) => Some(Backupable),
            (FindDeployment, false) => None,
            (Backupable, true) => Some(CreateArtifact),
            (Backupable, false) => Some(Cleanup),
            (CreateArtifact, true) => Some(Lock),
            (CreateArtifact, false) => Some(Cleanup),
            (Lock, true) => Some(Backup),
            (Lock, false) => Some(UnlockAfterFailure),
            (Backup, true) => Some(UnlockAfterSuccess),
            (Backup, false) => Some(UnlockAfterFailure),
            (UnlockAfterSuccess, _) => Some(Drain),
            (UnlockAfterFailure, _) => Some(Cleanup),
            (Drain, _) => Some(Cleanup),
            (Cleanup, _) => Some(AddFinishTime),
            (AddFinishTime, _) => None,
        }
    }

    /// Steps that always run to completion even when a stop was requested.
    fn runs_despite_stop(self) -> bool {
        matches!(
            self,
            BackupStep::UnlockAfterSuccess
                | BackupStep::UnlockAfterFailure
                | BackupStep::Cleanup
                | BackupStep::AddFinishTime
        )
    }
}

/// The steps of a restore. Unlike Go bbr, metadata scripts run only after every artifact has
/// been uploaded and verified, so that no script at all runs on a VM for a corrupted artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreStep {
    /// Structure of the local artifact: metadata, files, complete tars, safe entries.
    ValidateArtifact,
    /// Connect and find scripts (no script runs yet).
    FindDeployment,
    /// Restore scripts exist, the deployment matches the artifact, no artifact directory.
    Restorable,
    /// Upload every artifact, verifying checksums as it streams.
    CopyToRemote,
    /// Run metadata scripts; check discontinued keys, disabled jobs and ordering.
    LoadMetadata,
    /// `pre-restore-lock`.
    PreRestoreLock,
    /// `restore` scripts.
    Restore,
    /// `post-restore-unlock`.
    PostRestoreUnlock,
    /// Remove remote directories, release instances.
    Cleanup,
}

impl RestoreStep {
    /// The successor after this step succeeded (`ok`) or failed, or was preceded by a stop.
    pub fn next(self, ok: bool, stopped: bool) -> Option<RestoreStep> {
        use RestoreStep::*;
        if stopped {
            return match self {
                ValidateArtifact | FindDeployment => None,
                Restorable | CopyToRemote | LoadMetadata => Some(Cleanup),
                PreRestoreLock | Restore => Some(PostRestoreUnlock),
                PostRestoreUnlock => Some(Cleanup),
                Cleanup => None,
            };
        }
        match (self, ok) {
            (ValidateArtifact, true) => Some(FindDeployment),
            (ValidateArtifact, false) => None,
            (FindDeployment, true) => Some(Restorable),
            (FindDeployment, false) => None,
            (Restorable, true) => Some(CopyToRemote),
            (Restorable, false) => Some(Cleanup),
            (CopyToRemote, true) => Some(LoadMetadata),
            (CopyToRemote, false) => Some(Cleanup),
            (LoadMetadata, true) => Some(PreRestoreLock),
            (LoadMetadata, false) => Some(Cleanup),
            (PreRestoreLock, true) => Some(Restore),
            (PreRestoreLock, false) => Some(PostRestoreUnlock),
            (Restore, _) => Some(PostRestoreUnlock),
            (PostRestoreUnlock, _) => Some(Cleanup),
            (Cleanup, _) => None,
        }
    }

    fn runs_despite_stop(self) -> bool {
        matches!(self, RestoreStep::PostRestoreUnlock | RestoreStep::Cleanup)
    }
}

/// Shared state of one workflow run.
pub struct Session<'a> {
    source: &'a dyn DeploymentSource,
    options: RunOptions,
    reporter: &'a dyn Reporter,
    deployment: Option<Deployment>,
}

type StepResult = Result<(), ErrorList>;

fn one(e: BbrError) -> ErrorList {
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

    fn name(&self) -> &str {
        self.source.deployment_name()
    }

    fn deployment(&self) -> &Deployment {
        self.deployment
            .as_ref()
            .expect("a step after FindDeployment ran without a deployment")
    }

    async fn find(&mut self, with_metadata: bool) -> StepResult {
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
    async fn release(&self, instances: Vec<Arc<Instance>>) -> ErrorList {
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
    async fn build_with_metadata(
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

    async fn check_artifact_dirs(&self) -> Result<(), String> {
        let instances = self.deployment().instances.clone();
        let results = bounded(instances, self.options.max_parallel, |i| async move {
            let out = i
                .remote
                .run_as_root(&commands::stat_artifact_directory())
                .await;
            match out {
                Ok(o) if o.success() => Some(format!(
                    "Directory {ARTIFACT_DIRECTORY} already exists on instance {}",
                    i.identifier()
                )),
                Ok(o) if o.stderr_text().contains("sudo:") => Some(format!(
                    "Error checking {ARTIFACT_DIRECTORY} on instance {}: {}{}",
                    i.identifier(),
                    o.stderr_text(),
                    discovery::sudo_hint(&o.stderr_text())
                )),
                Ok(_) => None,
                Err(e) => Some(format!(
                    "Error checking {ARTIFACT_DIRECTORY} on instance {}: {e}",
                    i.identifier()
                )),
            }
        })
        .await;
        let problems: Vec<String> = results.into_iter().flatten().collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    fn validate_order(&self, phase: Phase) -> Result<Vec<Vec<InstanceJob>>, BbrError> {
        lock_order::order(&self.deployment().jobs(), phase).map_err(BbrError::general)
    }

    async fn backupable(&mut self) -> StepResult {
        let name = self.name().to_string();
        self.reporter
            .info(format!("Running pre-checks for backup of {name}..."));
        if !self.deployment().is_backupable() {
            return Err(one(BbrError::general(format!(
                "Deployment '{name}' has no backup scripts"
            ))));
        }
        if let Err(problems) = self.check_artifact_dirs().await {
            return Err(one(BbrError::new(ErrorKind::ArtifactDir, problems)));
        }
        self.validate_order(Phase::Backup).map_err(one)?;
        Ok(())
    }

    /// Runs `kind` on every job that has it, level by level (parallel within a level), and
    /// stops locking after a level that failed.
    async fn run_levels(
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
    async fn run_phase(
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

    async fn lock_for_backup(&self) -> StepResult {
        let errors = self
            .run_phase(
                ScriptKind::PreBackupLock,
                Phase::Backup,
                vec![],
                ErrorKind::Lock,
                false,
            )
            .await?;
        errors.into_result()
    }

    async fn unlock_after_backup(&self, successful: bool) -> StepResult {
        let env = vec![(
            "BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL",
            successful.to_string(),
        )];
        let errors = self
            .run_phase(
                ScriptKind::PostBackupUnlock,
                Phase::Backup,
                env,
                ErrorKind::Unlock,
                false,
            )
            .await?;
        errors.into_result()
    }

    async fn run_backup_scripts(&self) -> StepResult {
        self.reporter.info("Running backup scripts...");
        let mut work = Vec::new();
        for i in self
            .deployment()
            .instances
            .iter()
            .filter(|i| i.is_backupable())
        {
            i.mark_artifact_dir_created();
            for j in i.jobs.iter().filter(|j| j.has_backup()) {
                work.push((i.clone(), j.clone()));
            }
        }
        let limits = self.options.killable(ScriptKind::Backup);
        let reporter = self.reporter;
        let limits = &limits;
        let results = bounded(work, self.options.max_parallel, |(instance, job)| async move {
            let dir = Job::remote_directory(&job.backup_artifact_name());
            let id = instance.identifier();
            if let Some(path) = job.script(ScriptKind::Backup) {
                reporter.debug(format!("> {path}"));
            }
            reporter.info(format!("Backing up {} on {id}...", job.name));
            let mk = instance.remote.run_as_root(&commands::make_directory(dir.trim_end_matches('/'))).await;
            let mk_err = match mk {
                Ok(o) if o.success() => None,
                Ok(o) => Some(format!("{} - exit code {}", o.stderr_text(), o.exit_code)),
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = mk_err {
                reporter.error(format!("Error backing up {} on {id}.", job.name));
                return Err(BbrError::new(
                    ErrorKind::Backup,
                    format!("Error attempting to run backup for job {} on {id}: Creating backup directory on the remote failed: {e}", job.name),
                ));
            }
            let env = vec![("BBR_ARTIFACT_DIRECTORY", dir.clone()), ("ARTIFACT_DIRECTORY", dir)];
            let path = job.script(ScriptKind::Backup).unwrap_or_default().to_string();
            let script = Script { job: &job.name, instance: &id, path: &path, env: &env, capture: Capture::Tail };
            match run_script(instance.remote.as_ref(), &script, limits, reporter).await {
                Ok(_) => {
                    reporter.info(format!("Finished backing up {} on {id}.", job.name));
                    Ok(())
                }
                Err(e) => {
                    reporter.error(format!("Error backing up {} on {id}.", job.name));
                    Err(BbrError::new(
                        ErrorKind::Backup,
                        format!("Error attempting to run backup for job {} on {id}: {e}", job.name),
                    ))
                }
            }
        })
        .await;
        self.reporter.info("Finished running backup scripts.");
        let errors = ErrorList(results.into_iter().filter_map(Result::err).collect());
        errors.into_result()
    }

    async fn drain(&self, artifact: &ArtifactDir, metadata: &Mutex<Metadata>) -> StepResult {
        let mut work = Vec::new();
        for i in self
            .deployment()
            .instances
            .iter()
            .filter(|i| i.is_backupable())
        {
            for j in i.jobs.iter().filter(|j| j.has_backup()) {
                work.push((i.clone(), j.clone()));
            }
        }
        let reporter = self.reporter;
        let stop = &self.options.stop;
        let results = bounded(
            work,
            self.options.max_parallel,
            |(instance, job)| async move {
                let file = if job.has_named_backup_artifact() {
                    naming::custom_artifact_file(&job.backup_artifact_name())
                } else {
                    naming::default_artifact_file(&instance.group, &instance.index, &job.name)
                };
                let target = artifact.file_path(&file);
                let checksums = transfer::drain(&instance, &job, &target, stop, reporter).await?;
                let entry = ArtifactMetadata {
                    name: job.backup_artifact_name(),
                    checksums,
                };
                let mut m = metadata
                    .lock()
                    .map_err(|_| BbrError::general("metadata lock poisoned"))?;
                if job.has_named_backup_artifact() {
                    m.add_custom_artifact(entry);
                } else {
                    m.add_instance_artifact(&instance.group, &instance.index, entry);
                }
                artifact
                    .write_metadata(&m)
                    .map_err(|e| BbrError::new(ErrorKind::Drain, e.to_string()))
            },
        )
        .await;
        let errors = ErrorList(results.into_iter().filter_map(Result::err).collect());
        let now = go_now();
        if errors.is_empty() {
            self.reporter
                .info(format!("Backup created of {} on {now}", self.name()));
            Ok(())
        } else {
            self.reporter.info(format!(
                "Failed to create backup of {} on {now}, failed during drain step",
                self.name()
            ));
            Err(errors)
        }
    }

    /// Cleanup after a run: remove the artifact directory where it was created, then let the
    /// source release each instance.
    async fn cleanup(&self, previous: bool) -> StepResult {
        let Some(deployment) = self.deployment.as_ref() else {
            return Ok(());
        };
        // Every instance is released (Go bbr's backup-cleanup skips those with only lock
        // scripts, leaking their SSH users); the directory is removed where it was created,
        // or, cleaning up a previous run, wherever a backup or restore could have made it.
        let instances = deployment.instances.clone();
        let reporter = self.reporter;
        let source = self.source;
        let results = bounded(instances, self.options.max_parallel, |i| async move {
            let mut errs = Vec::new();
            let remove = if previous {
                i.is_backupable() || i.is_restorable()
            } else {
                i.artifact_dir_created()
            };
            if remove {
                reporter.info("Cleaning up...");
                let out = i
                    .remote
                    .run_as_root(&commands::remove(ARTIFACT_DIRECTORY))
                    .await;
                let err = match out {
                    Ok(o) if o.success() => None,
                    Ok(o) => Some(format!("{} - exit code {}", o.stderr_text(), o.exit_code)),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(e) = err {
                    reporter.error("Backup artifact clean up failed");
                    errs.push(format!(
                        "Unable to clean up backup artifact on {}: {e}",
                        i.identifier()
                    ));
                }
            } else if !previous {
                reporter.debug("Backup directory was never created - skipping cleanup");
            }
            if let Err(e) = source.release_instance(&i).await {
                errs.push(format!("failed to cleanup ssh on {}: {e}", i.identifier()));
            }
            errs
        })
        .await;
        let errs: Vec<String> = results.into_iter().flatten().collect();
        if errs.is_empty() {
            return Ok(());
        }
        let message = errs.join("\n");
        Err(one(if previous {
            BbrError::general(message)
        } else {
            BbrError::new(
                ErrorKind::Cleanup,
                format!(
                    "Deployment '{}' failed while cleaning up with error: {message}",
                    self.name()
                ),
            )
        }))
    }
}

/// A restorable job, the artifact file it restores from and that file's recorded checksums.
type RestoreTransfer = (
    Arc<Instance>,
    Job,
    String,
    Option<bbr_artifact::metadata::Checksums>,
);

/// Go bbr's CopyToRemote failure.
fn send_failure(errors: &[String]) -> BbrError {
    BbrError::general(format!(
        "Unable to send backup to remote machine. Got error: {}",
        errors.join("\n")
    ))
}

/// Writes the deployment manifest as `manifest.yml` in the artifact directory.
async fn save_manifest(source: &dyn DeploymentSource, dir: &ArtifactDir) -> StepResult {
    let name = source.deployment_name();
    let manifest = source.manifest().await.map_err(|e| {
        one(BbrError::general(format!(
            "failed to get manifest for deployment {name}: {e}"
        )))
    })?;
    let Some(text) = manifest else { return Ok(()) };
    std::fs::write(dir.file_path("manifest.yml"), text).map_err(|e| {
        one(BbrError::general(format!(
            "failed to save manifest: {}: {e}",
            dir.file_path("manifest.yml").display()
        )))
    })
}

/// Go's `time.Now()` rendering is not reproducible; bbr prints the local time instead.
/// The time in Go bbr's `Backup created of <name> on <time>` lines: Go's default
/// `time.Time` formatting.
fn go_now() -> String {
    bbr_artifact::timefmt::go_time_string_now()
}

fn build_without_metadata(found: FoundDeployment) -> Deployment {
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

async fn run_job_script(
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

fn step_outcome(errors: &mut ErrorList, result: StepResult) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            errors.extend(e);
            false
        }
    }
}

/// `bbr backup`.
pub async fn backup(
    source: &dyn DeploymentSource,
    options: RunOptions,
    request: &BackupRequest,
    reporter: &dyn Reporter,
) -> BackupOutcome {
    let mut s = Session::new(source, options, reporter);
    let mut errors = ErrorList::default();
    let mut artifact: Option<ArtifactDir> = None;
    let metadata = Mutex::new(Metadata::default());
    let mut step = Some(BackupStep::FindDeployment);
    let mut stop_reported = false;
    while let Some(current) = step {
        let stopped = s.options.stop.is_raised();
        if stopped && !current.runs_despite_stop() {
            if !stop_reported {
                errors.push(stopped_error(&format!("{current:?}")));
                stop_reported = true;
            }
            step = current.next(false, true);
            continue;
        }
        let result = match current {
            BackupStep::FindDeployment => s.find(true).await,
            BackupStep::Backupable => s.backupable().await,
            BackupStep::CreateArtifact => {
                reporter.info(format!("Starting backup of {}...", s.name()));
                let ts = bbr_artifact::timefmt::artifact_timestamp(request.started);
                match ArtifactDir::create(&request.artifact_parent, s.name(), &ts) {
                    Ok(dir) => {
                        let written = {
                            let mut m = metadata.lock().expect("metadata lock");
                            m.backup_activity.start_time =
                                Some(bbr_artifact::timefmt::metadata_time(request.started));
                            dir.write_metadata(&m)
                                .map_err(|e| one(BbrError::general(e.to_string())))
                        };
                        let saved = match (written, request.with_manifest) {
                            (Ok(()), true) => save_manifest(source, &dir).await,
                            (result, _) => result,
                        };
                        artifact = Some(dir);
                        saved
                    }
                    Err(e) => Err(one(BbrError::general(e.to_string()))),
                }
            }
            BackupStep::Lock if request.unsafe_lock_free => {
                reporter.info("Skipping lock for deployment");
                Ok(())
            }
            BackupStep::Lock => s.lock_for_backup().await,
            BackupStep::Backup => s.run_backup_scripts().await,
            BackupStep::UnlockAfterSuccess if request.unsafe_lock_free => {
                reporter.info("Skipping unlock after successful backup for deployment");
                Ok(())
            }
            BackupStep::UnlockAfterFailure if request.unsafe_lock_free => {
                reporter.info("Skipping unlock after unsuccessful backup for deployment");
                Ok(())
            }
            BackupStep::UnlockAfterSuccess => s.unlock_after_backup(true).await,
            BackupStep::UnlockAfterFailure => s.unlock_after_backup(false).await,
            BackupStep::Drain => match &artifact {
                Some(a) => s.drain(a, &metadata).await,
                None => Ok(()),
            },
            BackupStep::Cleanup => s.cleanup(false).await,
            BackupStep::AddFinishTime => match &artifact {
                Some(a) => {
                    let mut m = metadata.lock().expect("metadata lock");
                    m.backup_activity.finish_time =
                        Some(bbr_artifact::timefmt::metadata_time(SystemTime::now()));
                    a.write_metadata(&m)
                        .map_err(|e| one(BbrError::general(e.to_string())))
                }
                None => Ok(()),
            },
        };
        let ok = step_outcome(&mut errors, result);
        let stopped_now = s.options.stop.is_raised();
        if stopped_now && !stop_reported && !current.runs_despite_stop() {
            errors.push(stopped_error(&format!("{current:?}")));
            stop_reported = true;
        }
        step = current.next(ok, stopped_now && !current.runs_despite_stop());
    }
    BackupOutcome {
        errors,
        artifact: artifact.map(|a| a.path().to_path_buf()),
    }
}

/// `bbr restore` of the artifact directory at `artifact_path`.
pub async fn restore(
    source: &dyn DeploymentSource,
    options: RunOptions,
    artifact_path: &std::path::Path,
    reporter: &dyn Reporter,
) -> ErrorList {
    let mut s = Session::new(source, options, reporter);
    let mut errors = ErrorList::default();
    let mut artifact: Option<ArtifactDir> = None;
    let mut metadata = Metadata::default();
    // Per tar file: the set-uid/set-gid entries the structure check found (sent stripped).
    let mut setid = std::collections::HashMap::new();
    let mut step = Some(RestoreStep::ValidateArtifact);
    let mut stop_reported = false;
    while let Some(current) = step {
        let stopped = s.options.stop.is_raised();
        if stopped && !current.runs_despite_stop() {
            if !stop_reported {
                errors.push(stopped_error(&format!("{current:?}")));
                stop_reported = true;
            }
            step = current.next(false, true);
            continue;
        }
        let result = match current {
            RestoreStep::ValidateArtifact => {
                reporter.info(format!("Starting restore of {}...", s.name()));
                match ArtifactDir::open(artifact_path) {
                    Err(e) => Err(one(BbrError::general(e.to_string()))),
                    Ok(dir) => {
                        reporter.info(format!("Validating backup artifact for {}...", s.name()));
                        let checked = dir
                            .validate_structure()
                            .and_then(|checks| {
                                setid = checks
                                    .into_iter()
                                    .map(|c| (c.file_name, c.setid_entries))
                                    .collect();
                                dir.read_metadata()
                            })
                            .map_err(|e| one(BbrError::general(e.to_string())));
                        if let Ok(m) = &checked {
                            metadata = m.clone();
                        }
                        artifact = Some(dir);
                        checked.map(|_| ())
                    }
                }
            }
            RestoreStep::FindDeployment => s.find(false).await,
            RestoreStep::Restorable => s.restorable(&metadata).await,
            RestoreStep::CopyToRemote => match &artifact {
                Some(a) => s.copy_to_remote(a, &metadata, &setid).await,
                None => Ok(()),
            },
            RestoreStep::LoadMetadata => s.load_restore_metadata(&metadata).await,
            RestoreStep::PreRestoreLock => s.pre_restore_lock().await,
            RestoreStep::Restore => s.run_restore_scripts().await,
            RestoreStep::PostRestoreUnlock => s.post_restore_unlock().await,
            RestoreStep::Cleanup => s.cleanup(false).await,
        };
        let ok = step_outcome(&mut errors, result);
        let stopped_now = s.options.stop.is_raised();
        if stopped_now && !stop_reported && !current.runs_despite_stop() {
            errors.push(stopped_error(&format!("{current:?}")));
            stop_reported = true;
        }
        step = current.next(ok, stopped_now && !current.runs_despite_stop());
    }
    errors
}

impl Session<'_> {
    async fn restorable(&self, metadata: &Metadata) -> StepResult {
        let name = self.name().to_string();
        let d = self.deployment();
        if !d.is_restorable() {
            return Err(one(BbrError::general(format!(
                "Deployment '{name}' has no restore scripts"
            ))));
        }
        for entry in &metadata.instances {
            let present = d
                .instances
                .iter()
                .any(|i| i.group == entry.name && i.index == entry.index);
            if !present {
                return Err(one(BbrError::general(format!(
                    "Deployment '{name}' does not match the structure of the provided backup: instance {}/{} of the backup is not in the deployment",
                    entry.name, entry.index
                ))));
            }
        }
        if let Err(problems) = self.check_artifact_dirs().await {
            return Err(one(BbrError::general(format!(
                "Check artifact dir failed: {problems}"
            ))));
        }
        Ok(())
    }

    /// Every restorable job of the deployment with the artifact file it restores from and that
    /// file's recorded checksums (`None`: the backup has no such artifact).
    fn restore_transfers(&self, metadata: &Metadata) -> Vec<RestoreTransfer> {
        let mut work = Vec::new();
        for i in self
            .deployment()
            .instances
            .iter()
            .filter(|i| i.is_restorable())
        {
            for j in i.jobs.iter().filter(|j| j.has_restore()) {
                let (file, expected) = if j.has_named_restore_artifact() {
                    let name = j.restore_artifact_name();
                    (
                        naming::custom_artifact_file(&name),
                        metadata
                            .find_custom_artifact(&name)
                            .map(|a| a.checksums.clone()),
                    )
                } else {
                    (
                        naming::default_artifact_file(&i.group, &i.index, &j.name),
                        metadata
                            .find_instance_artifact(&i.group, &i.index, &j.name)
                            .map(|a| a.checksums.clone()),
                    )
                };
                work.push((i.clone(), j.clone(), file, expected));
            }
        }
        work
    }

    /// Uploads every artifact the restore needs. A job whose artifact the backup lacks is
    /// passed over here: its metadata, read only after the upload, may disable it (Go bbr,
    /// reading metadata first, never lists it); [`Session::load_restore_metadata`] refuses it
    /// if it is still to be restored.
    async fn copy_to_remote(
        &self,
        artifact: &ArtifactDir,
        metadata: &Metadata,
        setid: &std::collections::HashMap<String, Vec<bbr_artifact::TarEntryInfo>>,
    ) -> StepResult {
        let work: Vec<_> = self
            .restore_transfers(metadata)
            .into_iter()
            .filter_map(|(i, j, file, expected)| Some((i, j, file, expected?)))
            .collect();
        let reporter = self.reporter;
        let stop = &self.options.stop;
        let results = bounded(
            work,
            self.options.max_parallel,
            |(instance, job, file, expected)| async move {
                transfer::upload(
                    &instance,
                    &job,
                    &artifact.file_path(&file),
                    &expected,
                    setid.get(&file).map_or(&[][..], Vec::as_slice),
                    stop,
                    reporter,
                )
                .await
            },
        )
        .await;
        let errs: Vec<String> = results
            .into_iter()
            .filter_map(Result::err)
            .map(|e| e.message)
            .collect();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(one(send_failure(&errs)))
        }
    }

    async fn load_restore_metadata(&mut self, metadata: &Metadata) -> StepResult {
        let old = self.deployment.take().expect("deployment");
        let found = FoundDeployment {
            name: old.name.clone(),
            instances: old
                .instances
                .iter()
                .map(|i| crate::source::FoundInstance {
                    group: i.group.clone(),
                    index: i.index.clone(),
                    id: i.id.clone(),
                    remote: i.remote.clone(),
                    scripts: i
                        .jobs
                        .iter()
                        .map(|j| (j.name.clone(), j.scripts.clone()))
                        .collect(),
                    releases: i
                        .jobs
                        .iter()
                        .map(|j| (j.name.clone(), j.release.clone()))
                        .collect(),
                    backup_one_restore_all: i
                        .jobs
                        .iter()
                        .filter(|j| j.backup_one_restore_all)
                        .map(|j| j.name.clone())
                        .collect(),
                    bootstrap: i.jobs.iter().any(|j| j.on_bootstrap),
                })
                .collect(),
        };
        let built = self.build_with_metadata(found).await;
        let new = match built {
            Ok(d) => d,
            // The cleanup step that follows releases the instances of `old`.
            Err((e, _)) => {
                self.deployment = Some(old);
                return Err(e);
            }
        };
        for (n, o) in new.instances.iter().zip(old.instances.iter()) {
            if o.artifact_dir_created() {
                n.mark_artifact_dir_created();
            }
        }
        // Cleanup must still see every instance, including ones whose jobs were all disabled.
        self.deployment = Some(new);
        let name = self.name().to_string();
        let d = self.deployment();
        for i in d.instances.iter().filter(|i| i.is_restorable()) {
            if i.jobs.iter().any(|j| j.metadata.restore_name.is_some()) {
                let msg = format!(
                    "discontinued metadata keys backup_name/restore_name found on instance {}. bbr cannot restore this backup artifact.",
                    i.group
                );
                self.reporter.error(&msg);
                return Err(one(BbrError::general(msg)));
            }
        }
        if !d.is_restorable() {
            return Err(one(BbrError::general(format!(
                "Deployment '{name}' has no restore scripts"
            ))));
        }
        let missing: Vec<String> = self
            .restore_transfers(metadata)
            .into_iter()
            .filter(|(_, _, _, expected)| expected.is_none())
            .map(|(instance, job, file, _)| {
                format!(
                    "the backup has no artifact {file} for job {} on {}",
                    job.name,
                    instance.identifier()
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(one(send_failure(&missing)));
        }
        self.validate_order(Phase::Restore).map_err(one)?;
        Ok(())
    }

    async fn pre_restore_lock(&self) -> StepResult {
        let errors = self
            .run_phase(
                ScriptKind::PreRestoreLock,
                Phase::Restore,
                vec![],
                ErrorKind::General,
                true,
            )
            .await?;
        if errors.is_empty() {
            return Ok(());
        }
        let msgs: Vec<String> = errors.0.into_iter().map(|e| e.message).collect();
        Err(one(BbrError::general(format!(
            "pre-restore-lock failed: {}",
            msgs.join("\n")
        ))))
    }

    async fn run_restore_scripts(&self) -> StepResult {
        self.reporter.info("Running restore scripts...");
        let limits = self.options.killable(ScriptKind::Restore);
        let mut msgs = Vec::new();
        for i in self
            .deployment()
            .instances
            .iter()
            .filter(|i| i.is_restorable())
        {
            for j in i.jobs.iter().filter(|j| j.has_restore()) {
                let dir = Job::remote_directory(&j.restore_artifact_name());
                let env = vec![
                    ("BBR_ARTIFACT_DIRECTORY", dir.clone()),
                    ("ARTIFACT_DIRECTORY", dir),
                ];
                if let Err(e) = run_job_script(
                    i,
                    j,
                    ScriptKind::Restore,
                    &env,
                    &limits,
                    ErrorKind::General,
                    self.reporter,
                )
                .await
                {
                    msgs.push(e.message);
                }
                if self.options.stop.is_raised() {
                    break;
                }
            }
            if !msgs.is_empty() || self.options.stop.is_raised() {
                break;
            }
        }
        self.reporter.info("Finished running restore scripts.");
        if msgs.is_empty() {
            self.reporter
                .info(format!("Completed restore of {}", self.name()));
            Ok(())
        } else {
            Err(one(BbrError::general(format!(
                "Failed to restore: {}",
                msgs.join("\n")
            ))))
        }
    }

    async fn post_restore_unlock(&self) -> StepResult {
        let errors = self
            .run_phase(
                ScriptKind::PostRestoreUnlock,
                Phase::Restore,
                vec![],
                ErrorKind::Unlock,
                true,
            )
            .await?;
        errors.into_result()
    }
}

/// `bbr pre-backup-check`: discovery, the backup pre-checks, cleanup.
pub async fn pre_backup_check(
    source: &dyn DeploymentSource,
    options: RunOptions,
    reporter: &dyn Reporter,
) -> ErrorList {
    let mut s = Session::new(source, options, reporter);
    let mut errors = ErrorList::default();
    if step_outcome(&mut errors, s.find(true).await) {
        step_outcome(&mut errors, s.backupable().await);
        step_outcome(&mut errors, s.cleanup(false).await);
    }
    errors
}

/// `bbr backup-cleanup`: unlock every job (`BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL=false`) and
/// remove the artifact directory from every instance with backup or restore scripts.
pub async fn backup_cleanup(
    source: &dyn DeploymentSource,
    options: RunOptions,
    reporter: &dyn Reporter,
) -> ErrorList {
    cleanup_previous(source, options, reporter, Phase::Backup).await
}

/// `bbr restore-cleanup`: unlock every job after a restore and remove the artifact directory.
pub async fn restore_cleanup(
    source: &dyn DeploymentSource,
    options: RunOptions,
    reporter: &dyn Reporter,
) -> ErrorList {
    cleanup_previous(source, options, reporter, Phase::Restore).await
}

async fn cleanup_previous(
    source: &dyn DeploymentSource,
    options: RunOptions,
    reporter: &dyn Reporter,
    phase: Phase,
) -> ErrorList {
    let mut s = Session::new(source, options, reporter);
    let mut errors = ErrorList::default();
    if !step_outcome(&mut errors, s.find(true).await) {
        return errors;
    }
    let unlocked = match phase {
        Phase::Backup => s.unlock_after_backup(false).await,
        Phase::Restore => s.post_restore_unlock().await,
    };
    step_outcome(&mut errors, unlocked);
    step_outcome(&mut errors, s.cleanup(true).await);
    // Only a cleanup without any error says so (an unlock failure is one).
    if errors.is_empty() {
        reporter.info(format!("'{}' cleaned up", s.name()));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(mut step: BackupStep, outcomes: &[bool]) -> Vec<BackupStep> {
        let mut seen = vec![step];
        for ok in outcomes {
            match step.next(*ok, false) {
                Some(n) => {
                    seen.push(n);
                    step = n;
                }
                None => break,
            }
        }
        seen
    }

    #[test]
    fn backup_graph_matches_go_bbr() {
        use BackupStep::*;
        assert_eq!(
            path(FindDeployment, &[true; 9]),
            vec![
                FindDeployment,
                Backupable,
                CreateArtifact,
                Lock,
                Backup,
                UnlockAfterSuccess,
                Drain,
                Cleanup,
                AddFinishTime
            ]
        );
        assert_eq!(path(FindDeployment, &[false]), vec![FindDeployment]);
        assert_eq!(
            path(FindDeployment, &[true, false, true]),
            vec![FindDeployment, Backupable, Cleanup, AddFinishTime]
        );
        assert_eq!(
            path(Lock, &[false, true, true]),
            vec![Lock, UnlockAfterFailure, Cleanup, AddFinishTime]
        );
        assert_eq!(
            path(Backup, &[false, false]),
            vec![Backup, UnlockAfterFailure, Cleanup]
        );
        // drain runs even when unlock failed after a good backup
        assert_eq!(
            path(UnlockAfterSuccess, &[false]),
            vec![UnlockAfterSuccess, Drain]
        );
    }

    #[test]
    fn a_stop_unlocks_what_was_locked() {
        use BackupStep::*;
        assert_eq!(Lock.next(true, true), Some(UnlockAfterFailure));
        assert_eq!(Backup.next(true, true), Some(UnlockAfterFailure));
        assert_eq!(Drain.next(true, true), Some(Cleanup));
        assert_eq!(Backupable.next(true, true), Some(Cleanup));
        use RestoreStep as R;
        assert_eq!(R::Restore.next(true, true), Some(R::PostRestoreUnlock));
        assert_eq!(R::CopyToRemote.next(true, true), Some(R::Cleanup));
    }

    #[test]
    fn restore_graph() {
        use RestoreStep::*;
        assert_eq!(ValidateArtifact.next(false, false), None);
        assert_eq!(Restorable.next(false, false), Some(Cleanup));
        assert_eq!(CopyToRemote.next(false, false), Some(Cleanup));
        assert_eq!(PreRestoreLock.next(false, false), Some(PostRestoreUnlock));
        assert_eq!(Restore.next(false, false), Some(PostRestoreUnlock));
        assert_eq!(PostRestoreUnlock.next(false, false), Some(Cleanup));
        assert_eq!(Cleanup.next(true, false), None);
    }
}
