//! The pipeline: config → private temp dir → version detection → client selection → action.

use std::path::Path;

use crate::config::{self, Adapter};
use crate::discovery::ClientSearch;
use crate::flags::{Action, Flags};
use crate::secrets::PrivateDir;
use crate::{mysql, postgres};

/// The original's first line of an action failure. Ours gives it only when a failed backup
/// leaves an artifact file that this run created; never for a restore, whose artifact file
/// was there before (and may not be a backup at all).
pub const DELETE_HINT: &str =
    "You may need to delete the artifact-file that was created before re-running.";

/// Why a run failed. `Display` is the message logged before exiting 1.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Failure {
    /// Before the action: config, TLS files, version detection, unsupported version, no client.
    #[error("{0}")]
    Fatal(String),
    /// The backup or restore itself failed.
    #[error("{0}")]
    Action(String),
    /// A backup failed after creating the artifact file: [`DELETE_HINT`] first.
    #[error("{DELETE_HINT}\n{0}")]
    ActionLeftFile(String),
}

/// Runs a backup or restore as the command line asks, finding clients with `search`.
/// The temporary directory is removed before this returns, on failure too.
pub fn run(flags: &Flags, search: &ClientSearch) -> Result<(), Failure> {
    let cfg =
        config::load(Path::new(&flags.config_path)).map_err(|e| Failure::Fatal(e.to_string()))?;
    let dir = PrivateDir::new()
        .map_err(|e| Failure::Fatal(format!("cannot create a temporary directory: {e}")))?;
    let artifact = Path::new(&flags.artifact_file);
    let existed = artifact.symlink_metadata().is_ok();
    let result = match (cfg.adapter, flags.action) {
        (Adapter::Postgres, Action::Backup) => postgres::backup(&cfg, search, &dir, artifact),
        (Adapter::Postgres, Action::Restore) => postgres::restore(&cfg, search, &dir, artifact),
        (Adapter::Mysql, Action::Backup) => mysql::backup(&cfg, search, &dir, artifact),
        (Adapter::Mysql, Action::Restore) => mysql::restore(&cfg, search, &dir, artifact),
    };
    result.map_err(|f| match f {
        Failure::Action(msg)
            if flags.action == Action::Backup
                && !existed
                && artifact.symlink_metadata().is_ok() =>
        {
            Failure::ActionLeftFile(msg)
        }
        other => other,
    })
}
