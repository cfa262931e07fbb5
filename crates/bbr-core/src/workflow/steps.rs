//! The step graphs of backup and restore (Go bbr's `orchestrator` workflows): every step's
//! on-success and on-failure successor, the steps that still run after a stop request, and
//! how a step's outcome is recorded.

use crate::error::{BbrError, ErrorList};
use crate::stop::StopSignal;

pub(super) fn stopped_error(step: &str) -> BbrError {
    BbrError::general(format!(
        "bbr was asked to terminate during {step}; jobs were unlocked and the instances cleaned up"
    ))
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
    pub(super) fn runs_despite_stop(self) -> bool {
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

    pub(super) fn runs_despite_stop(self) -> bool {
        matches!(self, RestoreStep::PostRestoreUnlock | RestoreStep::Cleanup)
    }
}

/// A step of a workflow graph, as [`drive`] walks it.
pub(super) trait Step: Copy + std::fmt::Debug {
    /// The successor after this step succeeded (`ok`) or failed, or was preceded by a stop.
    fn next(self, ok: bool, stopped: bool) -> Option<Self>;
    /// Whether this step runs to completion even when a stop was requested.
    fn runs_despite_stop(self) -> bool;
}

impl Step for BackupStep {
    fn next(self, ok: bool, stopped: bool) -> Option<Self> {
        BackupStep::next(self, ok, stopped)
    }
    fn runs_despite_stop(self) -> bool {
        BackupStep::runs_despite_stop(self)
    }
}

impl Step for RestoreStep {
    fn next(self, ok: bool, stopped: bool) -> Option<Self> {
        RestoreStep::next(self, ok, stopped)
    }
    fn runs_despite_stop(self) -> bool {
        RestoreStep::runs_despite_stop(self)
    }
}

/// The one step driver of backup and restore: walks the graph from `first`, running each
/// step with `run`, collecting its errors and following its success or failure edge. Once
/// `stop` is raised, a step that does not run despite a stop is skipped along its stop edge;
/// the first step stopped (before it ran or while it ran) adds the one "asked to terminate"
/// error.
pub(super) async fn drive<S: Step>(
    first: S,
    stop: &StopSignal,
    mut run: impl AsyncFnMut(S) -> StepResult,
) -> ErrorList {
    let mut errors = ErrorList::default();
    let mut step = Some(first);
    let mut stop_reported = false;
    while let Some(current) = step {
        let stopped = stop.is_raised();
        if stopped && !current.runs_despite_stop() {
            if !stop_reported {
                errors.push(stopped_error(&format!("{current:?}")));
                stop_reported = true;
            }
            step = current.next(false, true);
            continue;
        }
        let result = run(current).await;
        let ok = step_outcome(&mut errors, result);
        let stopped_now = stop.is_raised();
        if stopped_now && !stop_reported && !current.runs_despite_stop() {
            errors.push(stopped_error(&format!("{current:?}")));
            stop_reported = true;
        }
        step = current.next(ok, stopped_now && !current.runs_despite_stop());
    }
    errors
}

pub(super) type StepResult = Result<(), ErrorList>;

pub(super) fn step_outcome(errors: &mut ErrorList, result: StepResult) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            errors.extend(e);
            false
        }
    }
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
