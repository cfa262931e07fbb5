//! `bbr restore`: the restore pre-checks, uploading artifacts, loading metadata after the
//! upload, lock, restore and unlock for restore, and the driver that walks
//! [`RestoreStep`](super::RestoreStep).

use super::RunOptions;
use super::session::{Session, bounded, one, run_job_script};
use super::steps::{RestoreStep, StepResult, drive};
use crate::artifact_location::ArtifactOrigin;
use crate::error::{BbrError, ErrorKind, ErrorList};
use crate::lock_order::Phase;
use crate::model::{Instance, Job, ScriptKind};
use crate::report::{Reporter, ReporterExt};
use crate::source::{DeploymentSource, FoundDeployment};
use crate::transfer::{self, TarOrigin};
use bbr_artifact::ArtifactFiles;
use bbr_artifact::artifact_dir::ArtifactDir;
use bbr_artifact::metadata::Metadata;
use bbr_artifact::naming;
use std::collections::HashMap;
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

/// The artifact a restore reads, once its structure was checked.
pub(super) enum OpenedArtifact {
    /// A local artifact directory.
    Local(ArtifactDir),
    /// A stored artifact, with the size of each of its objects.
    Stored {
        files: Arc<dyn ArtifactFiles + Send + Sync>,
        location: String,
        sizes: HashMap<String, u64>,
    },
}

/// `bbr restore` of the artifact at `origin`.
pub async fn restore(
    source: &dyn DeploymentSource,
    options: RunOptions,
    origin: &ArtifactOrigin,
    reporter: &dyn Reporter,
) -> ErrorList {
    let stop = options.stop.clone();
    let mut s = Session::new(source, options, reporter);
    let mut artifact: Option<OpenedArtifact> = None;
    let mut metadata = Metadata::default();
    // Per tar file: the set-uid/set-gid entries the structure check found (sent stripped).
    let mut setid = HashMap::new();
    drive(
        RestoreStep::ValidateArtifact,
        &stop,
        async |current| match current {
            RestoreStep::ValidateArtifact => {
                reporter.info(format!("Starting restore of {}...", s.name()));
                match origin {
                    ArtifactOrigin::Local(path) => match ArtifactDir::open(path) {
                        Err(e) => Err(one(BbrError::general(e.to_string()))),
                        Ok(dir) => {
                            reporter
                                .info(format!("Validating backup artifact for {}...", s.name()));
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
                            artifact = Some(OpenedArtifact::Local(dir));
                            checked.map(|_| ())
                        }
                    },
                    ArtifactOrigin::Stored(store) => {
                        reporter.info(format!("Validating backup artifact for {}...", s.name()));
                        let files = store.artifact("");
                        let location = store.location().trim_end_matches('/').to_string();
                        let checked = check_stored(files.clone(), location.clone()).await;
                        match checked {
                            Ok((m, sizes)) => {
                                metadata = m;
                                artifact = Some(OpenedArtifact::Stored {
                                    files,
                                    location,
                                    sizes,
                                });
                                Ok(())
                            }
                            Err(e) => Err(one(e)),
                        }
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

/// The structure check of a stored artifact, before any VM is contacted: `metadata`
/// exists (else the artifact is incomplete) and parses, and every tar it lists exists with
/// a size a complete tar can have. The content is checked while it streams.
async fn check_stored(
    files: Arc<dyn ArtifactFiles + Send + Sync>,
    location: String,
) -> Result<(Metadata, HashMap<String, u64>), BbrError> {
    let fail = BbrError::general;
    let (meta_files, meta_location) = (files.clone(), location.clone());
    let text = transfer::on_thread(move || meta_files.read_metadata())
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(format!(
                    "Could not validate backup: {location} is incomplete: it has no metadata object (a backup that did not finish writes none); refusing to restore it"
                ))
            } else {
                fail(format!(
                    "Could not validate backup: reading {meta_location}/metadata failed: {e}"
                ))
            }
        })?;
    let text = String::from_utf8(text).map_err(|_| {
        fail(format!(
            "Could not validate backup: {location}/metadata is not UTF-8 text"
        ))
    })?;
    let metadata = Metadata::parse(&text).map_err(|e| {
        fail(format!(
            "Could not validate backup: {location}/metadata: {e}"
        ))
    })?;
    let listing = transfer::on_thread(move || files.files())
        .await
        .map_err(|e| {
            fail(format!(
                "Could not validate backup: listing {location} failed: {e}"
            ))
        })?;
    let sizes: HashMap<String, u64> = listing
        .into_iter()
        .filter_map(|f| Some((f.name, f.size?)))
        .collect();
    for (kind, _) in bbr_artifact::listed_artifacts(&metadata) {
        naming::check_listed_artifact(&kind).map_err(|e| {
            fail(format!(
                "Could not validate backup: {location}/metadata: {e}"
            ))
        })?;
        let name = kind.file_name();
        match sizes.get(&name) {
            None => {
                return Err(fail(format!(
                    "Backup is corrupted: {location}/{name} is missing (metadata lists {kind})"
                )));
            }
            Some(&size) if size < 1024 || size % 512 != 0 => {
                return Err(fail(format!(
                    "Backup is corrupted: {location}/{name} is {size} bytes, not the size of a complete tar (a multiple of 512 bytes, at least 1024)"
                )));
            }
            Some(_) => {}
        }
    }
    Ok((metadata, sizes))
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
        artifact: &OpenedArtifact,
        metadata: &Metadata,
        setid: &HashMap<String, Vec<bbr_artifact::TarEntryInfo>>,
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
                let path;
                let origin = match artifact {
                    OpenedArtifact::Local(dir) => {
                        path = dir.file_path(&file);
                        TarOrigin::File {
                            path: &path,
                            setid: setid.get(&file).map_or(&[][..], Vec::as_slice),
                        }
                    }
                    OpenedArtifact::Stored {
                        files,
                        location,
                        sizes,
                    } => TarOrigin::Stored {
                        files: files.clone(),
                        location: format!("{location}/{file}"),
                        size: sizes.get(&file).copied().unwrap_or(0),
                        name: file.clone(),
                    },
                };
                transfer::upload(&instance, &job, &origin, &expected, stop, reporter).await
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
