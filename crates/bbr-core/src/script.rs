//! Running one release-author script on a VM: as root, with its environment, optionally
//! under a time limit, and killable (its whole process group) when a stop is requested.

use crate::commands;
use crate::remote::{Output, Remote, RemoteError};
use crate::report::{Reporter, ReporterExt};
use crate::stop::StopSignal;
use futures::FutureExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a script run is bounded.
#[derive(Clone, Default)]
pub struct ScriptLimits {
    /// Kill the script's process group after this long (`None`: no limit).
    pub timeout: Option<Duration>,
    /// Kill the script's process group when this is raised (`None`: never; used for unlock
    /// scripts, which must always run to completion).
    pub stop: Option<StopSignal>,
}

/// Why a script did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script exited non-zero: `<stderr> - exit code <n>`.
    #[error("{stderr} - exit code {code}")]
    Failed {
        /// Trimmed stderr.
        stderr: String,
        /// Exit status.
        code: u32,
    },
    /// The time limit struck and the script's process group was killed.
    #[error("timed out after {0:?}; its process group was killed")]
    TimedOut(Duration),
    /// A stop was requested and the script's process group was killed.
    #[error("stopped by a termination request; its process group was killed")]
    Stopped,
    /// The command could not be run at all.
    #[error("{0}")]
    Remote(#[from] RemoteError),
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

fn pid_file() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "/tmp/bbr-script-{}-{}-{}.pid",
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Runs `path` on `remote` as root with `env`, logging its output at DEBUG.
pub async fn run_script(
    remote: &dyn Remote,
    path: &str,
    env: &[(&str, String)],
    limits: &ScriptLimits,
    reporter: &dyn Reporter,
) -> Result<Output, ScriptError> {
    let pid_file = pid_file();
    let secs = limits.timeout.map(|d| d.as_secs().max(1)).unwrap_or(0);
    let command = commands::run_script(path, env, secs, &pid_file);
    reporter.debug(format!("Trying to execute '{path}' on remote"));
    let run = remote.run_as_root(&command).fuse();
    futures::pin_mut!(run);
    let output = match &limits.stop {
        None => run.await?,
        Some(stop) => {
            let stopped = stop.raised().fuse();
            futures::pin_mut!(stopped);
            futures::select! {
                out = run => out?,
                _ = stopped => {
                    reporter.warn(format!("Stopping '{path}' on {}: killing its process group", remote.address()));
                    if let Err(e) = remote.run_as_root(&commands::kill_script(&pid_file)).await {
                        reporter.error(format!("Could not kill '{path}' on {}: {e}", remote.address()));
                    }
                    // The kill escalates to SIGKILL within seconds; never let a stuck channel
                    // keep bbr from unlocking.
                    let grace = futures_timer::Delay::new(Duration::from_secs(30)).fuse();
                    futures::pin_mut!(grace);
                    futures::select! {
                        _ = run => {}
                        _ = grace => reporter.error(format!(
                            "'{path}' on {} did not end after being killed; going on with unlock",
                            remote.address()
                        )),
                    }
                    return Err(ScriptError::Stopped);
                }
            }
        }
    };
    if !output.stdout.is_empty() {
        reporter.debug(format!("stdout: {}", output.stdout_text()));
    }
    if !output.stderr.is_empty() {
        reporter.debug(format!("stderr: {}", output.stderr_text()));
    }
    match output.exit_code {
        0 => Ok(output),
        124 if secs > 0 => Err(ScriptError::TimedOut(Duration::from_secs(secs))),
        137 if secs > 0 && output.stderr.is_empty() => {
            Err(ScriptError::TimedOut(Duration::from_secs(secs)))
        }
        code => Err(ScriptError::Failed {
            stderr: output.stderr_text(),
            code,
        }),
    }
}
