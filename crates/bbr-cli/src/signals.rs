//! SIGINT and SIGTERM.
//!
//! SIGINT (Go bbr's behaviour): output is paused and the operator is asked whether to stop;
//! `yes` prints the cleanup advice and exits 1 at once, anything else resumes.
//! SIGTERM (ours): the run is asked to stop; running lock, backup and restore scripts are
//! killed, jobs are unlocked, remote directories removed, then bbr exits non-zero. A second
//! SIGTERM exits at once.

use crate::output::Logger;
use bbr_core::StopSignal;
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

    fn advice(self) -> &'static str {
        match self {
            Wording::Backup => crate::BACKUP_CLEANUP_ADVICE,
            Wording::Restore => {
                "It is recommended that you run `bbr restore-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked."
            }
        }
    }
}

/// Handles that stop listening when dropped.
pub struct Installed(Vec<JoinHandle<()>>);

impl Drop for Installed {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Installs the handlers; `sigint` is `None` for commands that keep the default SIGINT.
pub fn install(logger: Logger, stop: StopSignal, sigint: Option<Wording>) -> Installed {
    let mut handles = Vec::new();
    if let Ok(mut term) = signal(SignalKind::terminate()) {
        let logger = logger.clone();
        handles.push(tokio::spawn(async move {
            if term.recv().await.is_some() {
                logger.resume();
                logger.print_raw("[bbr] received SIGTERM: stopping running scripts, unlocking jobs and cleaning up before exiting");
                stop.raise();
            }
            if term.recv().await.is_some() {
                eprintln!("Second SIGTERM: exiting before unlock and cleanup finished. Run `bbr backup-cleanup` (or `restore-cleanup`) to unlock jobs and remove temp files.");
                std::process::exit(1);
            }
        }));
    }
    if let Some(wording) = sigint
        && let Ok(mut int) = signal(SignalKind::interrupt())
    {
        handles.push(tokio::spawn(async move {
            while int.recv().await.is_some() {
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
                        println!("{}", wording.advice());
                        std::process::exit(1);
                    }
                    Some(_) => {}
                }
                logger.resume();
            }
        }));
    }
    Installed(handles)
}
