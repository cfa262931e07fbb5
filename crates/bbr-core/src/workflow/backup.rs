//! `bbr backup` and `bbr pre-backup-check`: the backup pre-checks, lock and unlock for
//! backup, the backup scripts, draining artifacts into the local artifact directory, and the
//! driver that walks [`BackupStep`](super::BackupStep).

use super::session::{Session, bounded, one};
use super::steps::{BackupStep, StepResult, drive, step_outcome};
use super::{BackupOutcome, BackupRequest, RunOptions};
use crate::artifact_location::ArtifactTarget;
use crate::commands;
use crate::error::{BbrError, ErrorKind, ErrorList};
use crate::lock_order::Phase;
use crate::model::{Job, ScriptKind};
use crate::remote::run_as_root_checked;
use crate::report::{Reporter, ReporterExt};
use crate::script::{Capture, Script, run_script};
use crate::source::DeploymentSource;
use crate::transfer;
use bbr_artifact::metadata::{ArtifactMetadata, Metadata};
use bbr_artifact::naming;
use std::sync::Mutex;
use std::time::SystemTime;

impl Session<'_> {
    pub(super) async fn backupable(&mut self) -> StepResult {
        let name = self.name().to_string();
        self.reporter
            .info(format!("Running pre-checks for backup of {name}..."));
        if !self.deployment().is_backupable() {
            return Err(one(BbrError::general(format!(
                "Deployment '{name}' has no backup scripts"
            ))));
        }
        if let Err(problems) = self.check_artifact_dirs().await {
            return Err(one(BbrError::new(
                ErrorKind::ArtifactDir,
                problems.to_string(),
            )));
        }
        self.validate_order(Phase::Backup).map_err(one)?;
        Ok(())
    }

    pub(super) async fn lock_for_backup(&self) -> StepResult {
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

    pub(super) async fn unlock_after_backup(&self, successful: bool) -> StepResult {
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

    pub(super) async fn run_backup_scripts(&self) -> StepResult {
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
            let mk = run_as_root_checked(instance.remote.as_ref(), &commands::make_directory(dir.trim_end_matches('/'))).await;
            if let Err(e) = mk {
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

    pub(super) async fn drain(
        &self,
        artifact: &ArtifactTarget,
        metadata: &Mutex<Metadata>,
        bytes_drained: &std::sync::atomic::AtomicU64,
    ) -> StepResult {
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
                let drained =
                    transfer::drain(&instance, &job, artifact, &file, stop, reporter).await?;
                bytes_drained.fetch_add(drained.bytes, std::sync::atomic::Ordering::Relaxed);
                let entry = ArtifactMetadata {
                    name: job.backup_artifact_name(),
                    checksums: drained.checksums,
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
                    .record_progress(&m)
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
}

/// Writes the deployment manifest as `manifest.yml` in the artifact.
pub(super) async fn save_manifest(
    source: &dyn DeploymentSource,
    artifact: &ArtifactTarget,
) -> StepResult {
    let name = source.deployment_name();
    let manifest = source.manifest().await.map_err(|e| {
        one(BbrError::general(format!(
            "failed to get manifest for deployment {name}: {e}"
        )))
    })?;
    let Some(text) = manifest else { return Ok(()) };
    artifact
        .save_manifest(&text)
        .await
        .map_err(|e| one(BbrError::general(format!("failed to save manifest: {e}"))))
}

/// Go's `time.Now()` rendering is not reproducible; bbr prints the local time instead.
/// The time in Go bbr's `Backup created of <name> on <time>` lines: Go's default
/// `time.Time` formatting.
pub(super) fn go_now() -> String {
    bbr_artifact::timefmt::go_time_string_now()
}

/// `bbr backup`.
pub async fn backup(
    source: &dyn DeploymentSource,
    options: RunOptions,
    request: &BackupRequest,
    reporter: &dyn Reporter,
) -> BackupOutcome {
    let stop = options.stop.clone();
    let mut s = Session::new(source, options, reporter);
    let mut artifact: Option<ArtifactTarget> = None;
    let metadata = Mutex::new(Metadata::default());
    // A stored artifact gets its `metadata` only when every tar was drained and verified
    // and no stop was requested: a failed unlock or cleanup (exit 8 / 16) leaves a
    // complete, restorable artifact, as it does locally.
    let mut drained = false;
    let bytes_drained = std::sync::atomic::AtomicU64::new(0);
    // From the start of the first lock to the end of the last unlock: how long the
    // deployment's services were held (API downtime, for the metrics).
    let mut lock_started: Option<std::time::Instant> = None;
    let mut lock_held: Option<std::time::Duration> = None;
    let errors = drive(BackupStep::FindDeployment, &stop, async |current| {
        if !request.unsafe_lock_free && current == BackupStep::Lock {
            lock_started = Some(std::time::Instant::now());
        }
        let result = match current {
            BackupStep::FindDeployment => s.find(true).await,
            BackupStep::Backupable => s.backupable().await,
            BackupStep::CreateArtifact => {
                reporter.info(format!("Starting backup of {}...", s.name()));
                let ts = bbr_artifact::timefmt::artifact_timestamp(request.started);
                match ArtifactTarget::create(&request.destination, s.name(), &ts).await {
                    Ok(dir) => {
                        let written = {
                            let mut m = metadata.lock().expect("metadata lock");
                            m.backup_activity.start_time =
                                Some(bbr_artifact::timefmt::metadata_time(request.started));
                            dir.record_progress(&m)
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
                Some(a) => s.drain(a, &metadata, &bytes_drained).await,
                None => Ok(()),
            },
            BackupStep::Cleanup => s.cleanup(false).await,
            BackupStep::AddFinishTime => match &artifact {
                Some(a) if a.is_stored() && (!drained || stop.is_raised()) => {
                    let left = a.leftovers().await.unwrap_or_default();
                    Err(one(BbrError::general(format!(
                        "The backup failed, so no metadata was written to {}. {left}",
                        a.location()
                    ))))
                }
                Some(a) => {
                    let m = {
                        let mut m = metadata.lock().expect("metadata lock");
                        m.backup_activity.finish_time =
                            Some(bbr_artifact::timefmt::metadata_time(SystemTime::now()));
                        m.clone()
                    };
                    let completed = a
                        .complete(&m)
                        .await
                        .map_err(|e| one(BbrError::general(e.to_string())));
                    if completed.is_ok() && a.is_stored() {
                        reporter.info(format!(
                            "Wrote {}: the artifact is complete",
                            a.file_location(bbr_artifact::artifact_dir::METADATA_FILE)
                        ));
                    }
                    completed
                }
                None => Ok(()),
            },
        };
        drained |= current == BackupStep::Drain && result.is_ok();
        if matches!(
            current,
            BackupStep::UnlockAfterSuccess | BackupStep::UnlockAfterFailure
        ) && let Some(started) = lock_started
        {
            lock_held = Some(started.elapsed());
        }
        result
    })
    .await;
    BackupOutcome {
        errors,
        location: artifact.as_ref().map(ArtifactTarget::location),
        bytes_drained: bytes_drained.load(std::sync::atomic::Ordering::Relaxed),
        lock_held,
        artifact: match artifact {
            Some(ArtifactTarget::Local(dir)) => Some(dir.path().to_path_buf()),
            _ => None,
        },
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
