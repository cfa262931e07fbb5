//! The two programs: [`run_daemon`] (`service-backup CONFIG`) and [`run_manual`]
//! (`manual-backup CONFIG`). The binaries only build a runtime and a stdout sink and exit with
//! the returned code (docs/service-backup.md#exit-codes-and-signals).
//!
//! Startup (docs/service-backup.md#exit-codes-and-signals), shared by both: parse the config
//! (`error reading config file` / `error unmarshalling config file`, then `failed to parse
//! config`), report ignored keys, check `source_folder`, validate and build the destinations
//! (`error parsing destinations` and/or `failed to initialize uploader`), prepare the state
//! directory when something needs it. Every failure there exits with [`EXIT_FAILURE`] (2). The
//! daemon then parses the schedule (`Error scheduling job`, 2), builds the alerts client and runs
//! forever; manual-backup runs once.
//!
//! Shutdown: the daemon on SIGTERM, manual-backup on SIGTERM or SIGINT: stop scheduling,
//! cancel uploads, SIGTERM every child's process group (SIGKILL after the grace period), wait
//! (bounded) for the runs to wind down, log `All backup processes terminated. Exiting` and exit
//! with [`EXIT_TERMINATED`] (1).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::alerts::AlertsClient;
use crate::config::{Config, ConfigError, DestinationSettings};
use crate::cron::Schedule;
use crate::data;
use crate::destination::build_uploaders;
use crate::executor::{Executor, Job, RunSettings};
use crate::lager::{Logger, Sink};
use crate::process::{DEFAULT_GRACE, ProcessManager};
use crate::scheduler::Scheduler;
use crate::state::StateDir;
use crate::upload::MultiUploader;

/// Success.
pub const EXIT_OK: i32 = 0;
/// Stopped by SIGTERM (or SIGINT for manual-backup).
pub const EXIT_TERMINATED: i32 = 1;
/// Configuration, initialisation, scheduling or (manual-backup) backup failure.
pub const EXIT_FAILURE: i32 = 2;

/// The lager component / source of every line.
pub const COMPONENT: &str = "ServiceBackup";

/// How long runs get to wind down (uploads aborting, last log lines) after the children are
/// gone.
const RUN_WIND_DOWN: Duration = Duration::from_secs(10);

/// Everything a run needs, built from the config file.
struct Prepared {
    config: Config,
    job: Job,
    processes: Arc<ProcessManager>,
    cancel: CancellationToken,
}

fn prepare(config_path: &Path, logger: &Logger) -> Result<Prepared, i32> {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            let action = match e {
                ConfigError::Read(_) => "error reading config file",
                _ => "error unmarshalling config file",
            };
            logger.error(action, &e, data! {});
            logger.error("failed to parse config", &e, data! {});
            return Err(EXIT_FAILURE);
        }
    };
    for key in &config.warnings {
        logger.info(
            "WARNING: ignoring unknown configuration key",
            data! {"key" => key},
        );
    }
    if let Err(e) = config.validate_source() {
        logger.error("failed to parse config", &e, data! {});
        return Err(EXIT_FAILURE);
    }
    logger.sink().add_secrets(config.alert_secrets());
    let destinations = match config.destinations() {
        Ok(d) => d,
        Err(e) => {
            logger.error("error parsing destinations", &e, data! {});
            logger.error("failed to initialize uploader", &e, data! {});
            return Err(EXIT_FAILURE);
        }
    };
    for dest in &destinations {
        logger.sink().add_secrets(dest.secrets());
    }

    let needs_state = config.exit_if_in_progress
        || destinations.iter().any(|d| {
            matches!(&d.settings, DestinationSettings::Scp(s) if s.fingerprint.trim().is_empty())
        });
    let state = if needs_state {
        match StateDir::prepare(config.state_dir.as_deref(), &config.source_folder) {
            Ok(s) => Some(s),
            Err(e) => {
                logger.error("failed to initialize state directory", &e, data! {});
                return Err(EXIT_FAILURE);
            }
        }
    } else {
        None
    };

    let uploaders = match build_uploaders(&destinations, &config.deployment_name, state.as_ref()) {
        Ok(u) => u,
        Err(e) => {
            logger.error("failed to initialize uploader", &e, data! {});
            return Err(EXIT_FAILURE);
        }
    };

    let processes = Arc::new(ProcessManager::new(DEFAULT_GRACE));
    let cancel = CancellationToken::new();
    let job = if uploaders.is_empty() {
        logger.info("No destination provided - skipping backup", data! {});
        Job::Disabled(logger.clone())
    } else {
        Job::Backup(Arc::new(Executor::new(
            RunSettings::from_config(&config),
            MultiUploader::new(uploaders),
            processes.clone(),
            state,
            logger.clone(),
            cancel.clone(),
        )))
    };
    Ok(Prepared {
        config,
        job,
        processes,
        cancel,
    })
}

fn install(kind: SignalKind, logger: &Logger) -> Option<Signal> {
    match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            logger.error("failed to install signal handler", &e, data! {});
            None
        }
    }
}

async fn recv(sig: &mut Option<Signal>) {
    match sig {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// `service-backup CONFIG`: schedules backups until SIGTERM. Returns the exit code.
pub async fn run_daemon(config_path: &Path, sink: Arc<Sink>) -> i32 {
    let logger = Logger::new(COMPONENT, sink);
    let mut term = install(SignalKind::terminate(), &logger);
    let prepared = match prepare(config_path, &logger) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut spec = prepared.config.cron_schedule.clone();
    if spec.is_empty() && matches!(prepared.job, Job::Disabled(_)) {
        spec = "@monthly".to_owned();
    }
    let schedule = match Schedule::parse(&spec) {
        Ok(s) => s,
        Err(e) => {
            logger.error("Error scheduling job", &e, data! {});
            return EXIT_FAILURE;
        }
    };
    let alerts = match prepared.config.alerts.clone().map(AlertsClient::new) {
        None => None,
        Some(Ok(client)) => Some(Arc::new(client)),
        Some(Err(e)) => {
            logger.error("failed to initialize alerts client", &e, data! {});
            return EXIT_FAILURE;
        }
    };
    let scheduler = Arc::new(Scheduler::new(
        schedule,
        prepared.job.clone(),
        alerts,
        logger.clone(),
    ));
    let runner = {
        let scheduler = scheduler.clone();
        tokio::spawn(async move { scheduler.run().await })
    };
    logger.info("Service-backup Started", data! {});

    recv(&mut term).await;
    scheduler.stop();
    let _ = runner.await;
    prepared.cancel.cancel();
    prepared.processes.terminate().await;
    scheduler.wait_for_runs(RUN_WIND_DOWN).await;
    logger.info("All backup processes terminated. Exiting", data! {});
    EXIT_TERMINATED
}

/// `manual-backup CONFIG`: one backup now. Returns the exit code (0 success, 2 failure, 1 when
/// stopped by SIGTERM or SIGINT). Sends no alerts.
pub async fn run_manual(config_path: &Path, sink: Arc<Sink>) -> i32 {
    let logger = Logger::new(COMPONENT, sink);
    let mut term = install(SignalKind::terminate(), &logger);
    let mut int = install(SignalKind::interrupt(), &logger);
    let prepared = match prepare(config_path, &logger) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let job = prepared.job.clone();
    let mut run = tokio::spawn(async move { job.run().await });
    tokio::select! {
        joined = &mut run => match joined {
            Ok(Ok(())) => EXIT_OK,
            Ok(Err(e)) => {
                logger.error("Error running backup", &e, data! {});
                EXIT_FAILURE
            }
            Err(e) => {
                logger.error("Error running backup", &e, data! {});
                EXIT_FAILURE
            }
        },
        () = recv(&mut term) => shutdown_manual(prepared, run, &logger).await,
        () = recv(&mut int) => shutdown_manual(prepared, run, &logger).await,
    }
}

async fn shutdown_manual(
    prepared: Prepared,
    run: tokio::task::JoinHandle<Result<(), crate::executor::ServiceInstanceError>>,
    logger: &Logger,
) -> i32 {
    prepared.cancel.cancel();
    prepared.processes.terminate().await;
    let _ = tokio::time::timeout(RUN_WIND_DOWN, run).await;
    logger.info("All backup processes terminated. Exiting", data! {});
    EXIT_TERMINATED
}
