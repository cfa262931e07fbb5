//! Cleanup: the step that ends every run (remove the artifact directory where it was
//! created, release every instance), and `bbr backup-cleanup` / `bbr restore-cleanup`, which
//! unlock and clean up after an interrupted run.

use super::RunOptions;
use super::session::{Session, bounded, one};
use super::steps::{StepResult, step_outcome};
use crate::error::{BbrError, ErrorKind, ErrorList};
use crate::lock_order::Phase;
use crate::remote::run_as_root_checked;
use crate::report::{Reporter, ReporterExt};
use crate::source::DeploymentSource;
use crate::{ARTIFACT_DIRECTORY, commands};

impl Session<'_> {
    /// Cleanup after a run: remove the artifact directory where it was created, then let the
    /// source release each instance.
    pub(super) async fn cleanup(&self, previous: bool) -> StepResult {
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
                let removed =
                    run_as_root_checked(i.remote.as_ref(), &commands::remove(ARTIFACT_DIRECTORY))
                        .await;
                if let Err(e) = removed {
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
