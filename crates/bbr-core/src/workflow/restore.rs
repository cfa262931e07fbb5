//! `bbr restore`: the restore pre-checks, uploading artifacts, loading metadata after the
//! upload, lock, restore and unlock for restore, and the driver that walks
//! [`RestoreStep`](super::RestoreStep).

use super::RunOptions;
use super::session::{Session, bounded, one, run_job_script};
use super::steps::{RestoreStep, StepResult, drive};
use crate::error::{BbrError, ErrorKind, ErrorList};
use crate::lock_order::Phase;
use crate::model::{Instance, Job, ScriptKind};
use crate::report::{Reporter, ReporterExt};
use crate::source::{DeploymentSource, FoundDeployment};
use crate::transfer;
use bbr_artifact::artifact_dir::ArtifactDir;
use bbr_artifact::metadata::Metadata;
use bbr_artifact::naming;
use std::sync::Arc;

/// A restorable job, the artifact file it restores from and that file's recorded checksums.
pub(super) type RestoreTransfer = (
    Arc<Instance>,
    Job,
    String,
    Option<bbr_artifact::metadata::Checksums>,
);

/// Go bbr's CopyToRemote failure.
pub(super) fn send_failure(errors: &[String]) -> BbrError {
    BbrError::general(format!(
        "Unable to send backup to remote machine. Got error: {}",
        errors.join("\n")
    ))
}

/// `bbr restore` of the artifact directory at `artifact_path`.
pub async fn restore(
    source: &dyn DeploymentSource,
    options: RunOptions,
    artifact_path: &std::path::Path,
    reporter: &dyn Reporter,
) -> ErrorList {
    let stop = options.stop.clone();
    let mut s = Session::new(source, options, reporter);
    let mut artifact: Option<ArtifactDir> = None;
    let mut metadata = Metadata::default();
    // Per tar file: the set-uid/set-gid entries the structure check found (sent stripped).
    let mut setid = std::collections::HashMap::new();
    drive(
        RestoreStep::ValidateArtifact,
        &stop,
        async |current| match current {
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
        },
    )
    .await
}

impl Session<'_> {
    pub(super) async fn restorable(&self, metadata: &Metadata) -> StepResult {
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
    pub(super) fn restore_transfers(&self, metadata: &Metadata) -> Vec<RestoreTransfer> {
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
    pub(super) async fn copy_to_remote(
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

    pub(super) async fn load_restore_metadata(&mut self, metadata: &Metadata) -> StepResult {
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

    pub(super) async fn pre_restore_lock(&self) -> StepResult {
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

    pub(super) async fn run_restore_scripts(&self) -> StepResult {
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

    pub(super) async fn post_restore_unlock(&self) -> StepResult {
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
