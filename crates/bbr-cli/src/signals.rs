//! SIGINT and SIGTERM.
//!
//! SIGINT (Go bbr's question): output is paused and the operator is asked whether to stop;
//! anything but `yes` resumes. `yes` stops the run as SIGTERM does (unlike Go bbr, which
//! exits at once and leaves jobs locked): the caller sees [`Installed::interrupted`], prints
//! Go's cleanup advice once the run has unlocked and cleaned up, and exits 1.
//! SIGTERM (ours): the run is asked to stop; running lock, backup and restore scripts are
//! killed, director requests and task waits are cancelled, jobs are unlocked, remote
//! directories and temporary users removed, then bbr exits non-zero. A SIGTERM or SIGINT
//! after the run was asked to stop exits at once.

use crate::output::Logger;
use bbr_core::StopSignal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

/// Which wording the SIGINT question uses.
#[derive(Clone, Copy)]
pub enum Wording {
    /// backup, backup-cleanup, restore-cleanup.
    Backup,
    /// restore.
    Restore,
}

impl Wording {
    fn question(self) -> &'static str {
        match self {
            Wording::Backup => {
                "Stopping a backup can leave the system in bad state. Are you sure you want to cancel? [yes/no]"
            }
            Wording::Restore => {
                "Stopping a restore can leave the system in bad state. Are you sure you want to cancel? [yes/no]"
            }
        }
    }

    fn stdin_error(self) -> &'static str {
        match self {
            Wording::Backup => {
                "Couldn't read from Stdin, if you still want to stop the backup send SIGTERM."
            }
            Wording::Restore => {
                "Couldn't read from Stdin, if you still want to stop the restore send SIGTERM."
            }
        }
    }

    /// Go bbr's footer after a confirmed SIGINT.
    pub fn advice(self) -> &'static str {
        match self {
            Wording::Backup => crate::execute::BACKUP_CLEANUP_ADVICE,
            Wording::Restore => {
                "It is recommended that you run `bbr restore-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked."
            }
        }
    }
}

/// Handles that stop listening when dropped.
pub struct Installed {
    handles: Vec<JoinHandle<()>>,
    interrupted: Arc<AtomicBool>,
}

impl Installed {
    /// True once the operator answered `yes` to the SIGINT question.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

const EXIT_NOW: &str = "Second stop request: exiting before unlock and cleanup finished. Run `bbr backup-cleanup` (or `restore-cleanup`) to unlock jobs and remove temp files.";

/// Installs the handlers; `sigint` is `None` for commands that keep the default SIGINT.
pub fn install(logger: Logger, stop: StopSignal, sigint: Option<Wording>) -> Installed {
    let mut handles = Vec::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    if let Ok(mut term) = signal(SignalKind::terminate()) {
        let (logger, stop) = (logger.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            while term.recv().await.is_some() {
                if stop.is_raised() {
                    eprintln!("{EXIT_NOW}");
                    std::process::exit(1);
                }
                logger.resume();
                logger.print_raw("[bbr] received SIGTERM: stopping running scripts, unlocking jobs and cleaning up before exiting");
                stop.raise();
            }
        }));
    }
    if let Some(wording) = sigint
        && let Ok(mut int) = signal(SignalKind::interrupt())
    {
        let interrupted = interrupted.clone();
        handles.push(tokio::spawn(async move {
            while int.recv().await.is_some() {
                if stop.is_raised() {
                    eprintln!("{EXIT_NOW}");
                    std::process::exit(1);
                }
                logger.pause();
                println!("\n{}", wording.question());
                let answer = tokio::task::spawn_blocking(|| {
                    let mut line = String::new();
                    match std::io::stdin().read_line(&mut line) {
                        Ok(0) | Err(_) => None,
                        Ok(_) => Some(line),
                    }
                })
                .await
                .ok()
                .flatten();
                match answer {
                    None => println!("\n{}", wording.stdin_error()),
                    Some(a) if a.trim().eq_ignore_ascii_case("yes") => {
                        interrupted.store(true, Ordering::SeqCst);
                        logger.resume();
                        logger.print_raw("[bbr] stopping running scripts, unlocking jobs and cleaning up before exiting");
                        stop.raise();
                        continue;
                    }
                    Some(_) => {}
                }
                logger.resume();
            }
        }));
    }
    Installed {
        handles,
        interrupted,
    }
}
