//! The workflows as explicit step graphs (Go bbr's `orchestrator`): each step has an
//! on-success and an on-failure successor, every failing step adds its errors and the run
//! continues along the failure edge. A raised [`StopSignal`] (SIGTERM) sends the run down
//! the path that unlocks and cleans up.

mod backup;
mod cleanup;
mod restore;
mod session;
mod steps;
mod validate;

pub use backup::{backup, pre_backup_check};
pub use cleanup::{backup_cleanup, restore_cleanup};
pub use restore::restore;
pub use session::Session;
pub use steps::{BackupStep, RestoreStep};
pub use validate::validate;

use crate::error::ErrorList;
use crate::model::ScriptKind;
use crate::script::ScriptLimits;
use crate::stop::StopSignal;
use std::path::PathBuf;
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
    /// Where the artifact is created: inside a local directory or below an object-store
    /// prefix.
    pub destination: crate::artifact_location::BackupDestination,
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
    /// The local artifact directory, when one was created.
    pub artifact: Option<PathBuf>,
    /// The artifact's path or URL, when one was created (local or stored).
    pub location: Option<String>,
    /// The bytes of every tar drained and verified.
    pub bytes_drained: u64,
    /// From the start of the first lock script to the end of the last unlock script (what
    /// operators watch as API downtime); `None` when nothing was locked.
    pub lock_held: Option<Duration>,
}
