//! `bbr deployment --all-deployments` for pre-backup-check, backup and backup-cleanup
//! (docs/cli.md, "`--all-deployments`"): every deployment the director lists, up to ten at a time, each with its
//! own director client and (backup, backup-cleanup) its own log file; progress and a
//! summary on stdout with `[HH:MM:SS]` UTC prefixes, the failures on stderr, exit code 1 on
//! any failure.

use crate::commands::Subcommand;
use crate::execute::{BACKUP_CLEANUP_ALL_ADVICE, write_error_log};
use crate::output::Logger;
use bbr_core::error::{ErrorList, exit_code};
use bbr_core::workflow::{self, BackupRequest, RunOptions};
use bbr_director::DirectorClient;
use bbr_director::source::DirectorDeployment;
use futures::stream::{self, StreamExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to reach the director for each deployment.
pub struct Connection {
    /// How SSH connections leave this machine (`BOSH_ALL_PROXY`).
    pub dialer: bbr_ssh::Dialer,
    /// Connects a fresh client (each deployment gets its own, as in Go bbr).
    pub connect: Arc<
        dyn Fn() -> futures::future::BoxFuture<'static, Result<Arc<DirectorClient>, String>>
            + Send
            + Sync,
    >,
}

/// What the run needs besides the connection.
pub struct Settings {
    /// The subcommand (pre-backup-check, backup or backup-cleanup).
    pub sub: Subcommand,
    /// `--artifact-path` (backup) — also where backup log files go.
    pub artifact: crate::artifact::ArtifactPath,
    /// `--with-manifest`.
    pub with_manifest: bool,
    /// `--debug`.
    pub debug: bool,
    /// One root process per VM (see [`crate::resolve::SUDO_EACH_COMMAND_ENV`]).
    pub root_runner: bool,
    /// Options for every workflow.
    pub run_options: RunOptions,
}

fn stamp(line: &str) {
    println!("[{}] {line}", chrono::Utc::now().format("%H:%M:%S"));
}

fn indent(block: &str) -> String {
    format!("  {}", block.trim_end_matches('\n').replace('\n', "\n  "))
}

/// Runs the subcommand for all deployments; returns the exit code.
pub async fn run(connection: Connection, settings: Settings) -> i32 {
    let (start, summary_ok, summary_failed) = match settings.sub {
        Subcommand::Backup => (
            Some("Starting backup..."),
            "backed up",
            "cannot be backed up",
        ),
        Subcommand::BackupCleanup => (
            Some("Starting cleanup..."),
            "cleaned up",
            "could not be cleaned up",
        ),
        _ => (None, "can be backed up", "cannot be backed up"),
    };
    if let Some(s) = start {
        println!("{s}");
    }
    let fail = |message: String| {
        let errors = ErrorList(vec![bbr_core::BbrError::general(message)]);
        write_error_log(&errors, settings.sub.name());
        eprint!("{}", errors.render());
        exit_code::GENERAL
    };
    let client = match (connection.connect)().await {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let deployments = match client.deployments().await {
        Ok(d) if d.is_empty() => return fail("Failed to find any deployments".into()),
        Ok(d) => d,
        Err(e) => return fail(e.to_string()),
    };
    stamp(&format!("Pending: {}", deployments.join(", ")));
    stamp("-------------------------");
    let settings = &settings;
    let connection = &connection;
    let results: Vec<(String, ErrorList)> = stream::iter(deployments.clone())
        .map(|name| async move {
            let errors = run_one(&name, connection, settings).await;
            (name, errors)
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let failed: Vec<&(String, ErrorList)> = results.iter().filter(|(_, e)| !e.is_empty()).collect();
    let succeeded: Vec<&str> = deployments
        .iter()
        .filter(|d| !failed.iter().any(|(f, _)| f == *d))
        .map(String::as_str)
        .collect();
    stamp("-------------------------");
    stamp(&format!(
        "Successfully {summary_ok}: {}",
        succeeded.join(", ")
    ));
    if failed.is_empty() {
        return 0;
    }
    let failed_names: Vec<&str> = failed.iter().map(|(d, _)| d.as_str()).collect();
    stamp(&format!("FAILED: {}", failed_names.join(", ")));
    let mut message = format!(
        "{} out of {} deployments {summary_failed}:\n",
        failed.len(),
        deployments.len()
    );
    for d in &failed_names {
        message.push_str(&format!("  {d}\n"));
    }
    message.push('\n');
    let mut all = ErrorList::default();
    for (d, errors) in &failed {
        message.push_str(&format!(
            "Deployment '{d}':\n{}\n",
            indent(&errors.render())
        ));
        all.extend((*errors).clone());
    }
    let advice = match settings.sub {
        Subcommand::PreBackupCheck => failed.iter().any(|(_, e)| e.first_is_artifact_dir()),
        _ => failed.iter().any(|(_, e)| e.needs_cleanup_advice()),
    };
    if advice && settings.sub != Subcommand::BackupCleanup {
        message.push('\n');
        message.push_str(BACKUP_CLEANUP_ALL_ADVICE);
        message.push('\n');
    }
    write_error_log(&all, settings.sub.name());
    eprint!("{message}");
    exit_code::GENERAL
}

async fn run_one(name: &str, connection: &Connection, settings: &Settings) -> ErrorList {
    let one = |m: String| ErrorList(vec![bbr_core::BbrError::general(m)]);
    // The name becomes a log file and an artifact directory name.
    if let Err(e) =
        bbr_artifact::naming::check_safe_name("deployment name", name, "reported by the director")
    {
        return one(e.to_string());
    }
    let started = std::time::SystemTime::now();
    let timestamp = bbr_artifact::timefmt::artifact_timestamp(started);
    let (logger, log_file) = match settings.sub {
        Subcommand::PreBackupCheck => (Logger::quiet(settings.debug), None),
        sub => {
            let file = format!("{name}_{timestamp}.log");
            // Named as Go's filepath.Join names it: no "./" in front in the current directory.
            let path = match sub {
                // A store's artifacts get their log files in the working directory.
                Subcommand::Backup => match settings.artifact.local() {
                    Some(dir) if dir != Path::new(".") => dir.join(file),
                    _ => PathBuf::from(file),
                },
                _ => PathBuf::from(file),
            };
            match Logger::to_file(&path, settings.debug) {
                Ok(l) => (l, Some(path)),
                Err(e) => return one(format!("creating log file {}: {e}", path.display())),
            }
        }
    };
    let client = match (connection.connect)().await {
        Ok(c) => c,
        Err(e) => return one(e),
    };
    let warn = logger.clone();
    let source = match DirectorDeployment::new(
        client,
        name.to_string(),
        settings.run_options.max_parallel,
        Arc::new(move |m| bbr_core::report::ReporterExt::warn(&warn, m)),
        connection.dialer.clone(),
    ) {
        Ok(s) => s.with_root_runner(settings.root_runner),
        Err(e) => return one(e.to_string()),
    };
    let options = settings.run_options.clone();
    match settings.sub {
        Subcommand::PreBackupCheck => {
            let errors = workflow::pre_backup_check(&source, options, &logger).await;
            if errors.is_empty() {
                stamp(&format!("Deployment '{name}' can be backed up."));
            } else {
                stamp(&format!("Deployment '{name}' cannot be backed up."));
                println!("{}", indent(&errors.render()));
            }
            errors
        }
        sub => {
            let path = log_file
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let (verb, noun) = if sub == Subcommand::Backup {
                ("backup", "backup")
            } else {
                ("cleanup", "cleanup")
            };
            stamp(&format!("Starting {verb} of {name}, log file: {path}"));
            let errors = if sub == Subcommand::Backup {
                let request = BackupRequest {
                    destination: settings.artifact.destination(),
                    started,
                    unsafe_lock_free: false,
                    with_manifest: settings.with_manifest,
                };
                workflow::backup(&source, options, &request, &logger)
                    .await
                    .errors
            } else {
                let errors = workflow::backup_cleanup(&source, options, &logger).await;
                if !errors.is_empty() {
                    // Straight to stdout, before the ERROR line, as Go bbr prints it.
                    println!("Failed to cleanup deployment '{name}'");
                }
                errors
            };
            if errors.is_empty() {
                stamp(&format!("Finished {noun} of {name}"));
            } else {
                stamp(&format!("ERROR: failed to {noun} {name}"));
                println!("{}", logger.written());
            }
            errors
        }
    }
}
