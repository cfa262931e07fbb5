//! `bbr director|deployment validate --artifact-path P`: whether a restore of the artifact
//! at `P` would be accepted, without restoring anything.
//!
//! Two halves, both always run, every problem reported:
//!
//! 1. the deep offline check of `bbr artifact validate` (metadata, every tar complete and
//!    safe, every file's SHA-256), on a local directory or a stored artifact;
//! 2. the checks a restore makes against the live target: the deployment (or director) is
//!    found by listing its scripts, the backup's instances exist in it, it has restore
//!    scripts, no instance holds a leftover artifact directory, and every job the backup
//!    holds an artifact for has a restore script on the matching instance.
//!
//! Nothing is locked, written or run on a VM: no bbr script (not even `metadata`, so a job
//! with a restore script the backup has no artifact for gets a warning: only its metadata
//! script could excuse it), no `mkdir`, no upload. The SSH access the source sets up
//! is released at the end, as after every run.

use super::RunOptions;
use super::session::Session;
use super::steps::step_outcome;
use crate::artifact_location::ArtifactOrigin;
use crate::error::{BbrError, ErrorList};
use crate::report::{Reporter, ReporterExt};
use crate::source::DeploymentSource;
use crate::transfer::on_thread;
use bbr_artifact::metadata::Metadata;
use bbr_artifact::{ArtifactFiles, LocalArtifact, ValidationReport, validate_artifact};
use std::path::PathBuf;
use std::sync::Arc;

/// `validate`: see the [module docs](self). Returns every problem found (empty: a restore
/// would be accepted).
pub async fn validate(
    source: &dyn DeploymentSource,
    options: RunOptions,
    origin: &ArtifactOrigin,
    reporter: &dyn Reporter,
) -> ErrorList {
    let mut s = Session::new(source, options, reporter);
    let mut errors = ErrorList::default();
    let name = s.name().to_string();
    reporter.info(format!("Validating backup artifact for {name}..."));

    let (location, files): (String, Arc<dyn ArtifactFiles + Send + Sync>) = match origin {
        ArtifactOrigin::Local(path) => (
            path.display().to_string(),
            Arc::new(LocalArtifact(path.clone())),
        ),
        ArtifactOrigin::Stored(store) => (
            store.location().trim_end_matches('/').to_string(),
            store.artifact(""),
        ),
    };
    let report = {
        let (origin, files, shown) = (origin.clone(), files.clone(), location.clone());
        on_thread(move || {
            Ok(match &origin {
                ArtifactOrigin::Local(path) => validate_artifact(path),
                ArtifactOrigin::Stored(_) => {
                    bbr_artifact::validate_files(files.as_ref(), &PathBuf::from(shown))
                }
            })
        })
        .await
    };
    match report {
        Ok(report) => offline_problems(&report, &mut errors),
        Err(e) => errors.push(BbrError::general(format!(
            "Could not validate backup {location}: {e}"
        ))),
    }
    let metadata = {
        let files = files.clone();
        on_thread(move || files.read_metadata()).await
    }
    .ok()
    .and_then(|bytes| String::from_utf8(bytes).ok())
    .and_then(|text| Metadata::parse(&text).ok());

    reporter.info(format!("Checking {name} against the backup..."));
    if step_outcome(&mut errors, s.find(false).await) {
        errors.extend(target_problems(&s, metadata.as_ref()).await);
        match &metadata {
            Some(m) => {
                step_outcome(&mut errors, restore_scripts_for(&s, m, reporter));
            }
            None => reporter.warn(format!(
                "{location}/metadata is unreadable, so the backup's structure could not be checked against {name}"
            )),
        }
        step_outcome(&mut errors, s.cleanup(false).await);
    }
    if errors.is_empty() {
        reporter.info(format!(
            "Backup artifact {location} is valid and can be restored to {name}"
        ));
    } else {
        reporter.info(format!(
            "Backup artifact {location} cannot be restored to {name}: {} problem(s)",
            errors.0.len()
        ));
    }
    errors
}

/// One error per problem of the offline check, naming the file.
fn offline_problems(report: &ValidationReport, errors: &mut ErrorList) {
    for problem in report.all_problems() {
        let entry = problem
            .entry
            .as_ref()
            .map(|e| format!(" (entry {e})"))
            .unwrap_or_default();
        errors.push(BbrError::general(format!(
            "Backup is not valid: {}{entry}: {} [{}]",
            report.file_path(problem).display(),
            problem.reason,
            problem.kind
        )));
    }
}

/// The checks of a restore's `Restorable` step, in its words, but every problem reported
/// (a restore stops at the first): the target has restore scripts, each instance of the
/// backup (when its metadata could be read) is in it, and no instance holds a leftover
/// artifact directory.
async fn target_problems(s: &Session<'_>, metadata: Option<&Metadata>) -> ErrorList {
    let name = s.name();
    let deployment = s.deployment();
    let mut errors = ErrorList::default();
    if !deployment.is_restorable() {
        errors.push(BbrError::general(format!(
            "Deployment '{name}' has no restore scripts"
        )));
    }
    for entry in metadata.iter().flat_map(|m| &m.instances) {
        let present = deployment
            .instances
            .iter()
            .any(|i| i.group == entry.name && i.index == entry.index);
        if !present {
            errors.push(BbrError::general(format!(
                "Deployment '{name}' does not match the structure of the provided backup: instance {}/{} of the backup is not in the deployment",
                entry.name, entry.index
            )));
        }
    }
    if let Err(problems) = s.check_artifact_dirs().await {
        errors.push(BbrError::general(format!(
            "Check artifact dir failed: {problems}"
        )));
    }
    errors
}

/// Every job the backup holds an artifact for has a restore script on the instance of
/// the same group and index; a warning for each job with a restore script the backup has
/// no artifact for; every custom artifact has a job that restores it.
fn restore_scripts_for(
    s: &Session<'_>,
    metadata: &Metadata,
    reporter: &dyn Reporter,
) -> super::steps::StepResult {
    let deployment = s.deployment();
    let mut problems = Vec::new();
    for entry in &metadata.instances {
        let instance = deployment
            .instances
            .iter()
            .find(|i| i.group == entry.name && i.index == entry.index);
        let Some(instance) = instance else {
            continue; // `target_problems` reported it
        };
        for artifact in &entry.artifacts {
            let restorable = instance
                .jobs
                .iter()
                .any(|j| j.name == artifact.name && j.has_restore());
            if !restorable {
                problems.push(BbrError::general(format!(
                    "the backup holds an artifact of job {} on {}/{}, but that job has no restore script on instance {}",
                    artifact.name,
                    entry.name,
                    entry.index,
                    instance.identifier()
                )));
            }
        }
    }
    // A restore refuses these after its upload, unless the job's metadata disables it.
    for (instance, job, file, _) in s
        .restore_transfers(metadata)
        .into_iter()
        .filter(|(_, _, _, expected)| expected.is_none())
    {
        reporter.warn(format!(
            "job {} on {} has a restore script, but the backup has no artifact {file} for it: a restore fails unless the job's metadata script disables it (skip_bbr_scripts), which validate does not run",
            job.name,
            instance.identifier()
        ));
    }
    // A custom artifact (`bbr.backup_one_restore_all` in the manifest, which discovery
    // reads) is restored by every job of that name and release marked so.
    for custom in &metadata.custom_artifacts {
        let restored = deployment.instances.iter().any(|i| {
            i.jobs.iter().any(|j| {
                j.has_restore()
                    && j.has_named_restore_artifact()
                    && j.restore_artifact_name() == custom.name
            })
        });
        if !restored {
            problems.push(BbrError::general(format!(
                "the backup holds the custom artifact {}, but no job of the deployment with a restore script restores it (bbr.backup_one_restore_all)",
                custom.name
            )));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ErrorList(problems))
    }
}
