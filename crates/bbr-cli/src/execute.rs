//! Execution: runs a resolved [`Invocation`] (backup, restore, the check and the cleanups;
//! director mode, one deployment or all of them), prints its outcome (the error block,
//! footers, `bbr-*.err.log`) and returns the exit code (docs/cli.md, "Where output goes"
//! and "Exit codes").

use crate::all_deployments;
use crate::artifact::ArtifactPath;
use crate::commands::{CommandId, Subcommand};
use crate::connect::{self, DirectorApi, KnownHosts};
use crate::director::DirectorSource;
use crate::output::Logger;
use crate::resolve::{Common, DeploymentInvocation, Deployments, DirectorInvocation, Invocation};
use crate::signals;
use bbr_core::StopSignal;
use bbr_core::error::{BbrError, ErrorList, exit_code};
use bbr_core::report::ReporterExt;
use bbr_core::workflow::{self, BackupRequest, RunOptions};
use std::io::Write;
use std::sync::Arc;

/// The footer advising `backup-cleanup` after an all-deployments run.
pub const BACKUP_CLEANUP_ALL_ADVICE: &str = "It is recommended that you run `bbr deployment --all-deployments backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";

/// The footer advising `backup-cleanup`.
pub const BACKUP_CLEANUP_ADVICE: &str = "It is recommended that you run `bbr backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";

/// Runs `invocation`; returns the exit code.
pub async fn run(invocation: Invocation) -> i32 {
    match invocation {
        Invocation::Director(inv) => run_director(inv).await,
        Invocation::Deployment(inv) => match &inv.deployments {
            Deployments::All => run_all(inv).await,
            Deployments::One(name) => run_deployment(&inv, name).await,
        },
        // Synchronous checks that block on the runtime for store reads: off its workers.
        Invocation::Artifact(inv) => {
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || crate::artifact::run(&inv, &handle))
                .await
                .unwrap_or(exit_code::GENERAL)
        }
    }
}

/// Reports a run that failed before it started: the error block, `bbr-*.err.log`, exit 1.
pub fn fail(sub: Subcommand, message: String) -> i32 {
    finish(
        &ErrorList(vec![BbrError::general(message)]),
        None,
        sub.name(),
    )
}

fn run_options(common: &Common, stop: StopSignal) -> RunOptions {
    RunOptions {
        bbr_version: crate::VERSION.to_string(),
        max_parallel: common.max_parallel,
        script_timeouts: common.script_timeouts.clone(),
        stop,
    }
}

fn director_api(inv: &DeploymentInvocation) -> DirectorApi<'_> {
    DirectorApi {
        target: &inv.target,
        ca_cert: inv.ca_cert.as_deref(),
        username: &inv.username,
        password: &inv.password,
        proxy: inv.common.proxy.as_deref(),
        task_timeout: inv.task_timeout,
    }
}

/// `bbr deployment --all-deployments ...`.
async fn run_all(inv: DeploymentInvocation) -> i32 {
    let common = &inv.common;
    let artifact = match ArtifactPath::resolve(common.artifact_path.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(common.sub, e),
    };
    let logger = Logger::new(common.debug);
    let stop = StopSignal::new();
    let connection =
        match connect::director_connection(director_api(&inv), &logger, stop.clone()).await {
            Ok(c) => c,
            Err(e) => return fail(common.sub, e),
        };
    let settings = all_deployments::Settings {
        sub: common.sub,
        artifact,
        with_manifest: inv.with_manifest,
        debug: common.debug,
        root_runner: common.root_runner,
        run_options: run_options(common, stop.clone()),
    };
    // SIGTERM stops every deployment's run; SIGINT keeps its default here, as in Go bbr.
    let _signals = signals::install(logger.clone(), stop, None);
    all_deployments::run(connection, settings).await
}

/// `bbr deployment --deployment NAME ...`.
async fn run_deployment(inv: &DeploymentInvocation, deployment_name: &str) -> i32 {
    let common = &inv.common;
    let artifact = match ArtifactPath::resolve(common.artifact_path.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(common.sub, e),
    };
    let logger = Logger::new(common.debug);
    let stop = StopSignal::new();
    let connection =
        match connect::director_connection(director_api(inv), &logger, stop.clone()).await {
            Ok(connection) => connection,
            Err(e) => return fail(common.sub, e),
        };
    let client = match (connection.connect)().await {
        Ok(c) => c,
        Err(e) => return fail(common.sub, e),
    };
    let warn_logger = logger.clone();
    let source = match bbr_director::source::DirectorDeployment::new(
        client,
        deployment_name.to_string(),
        common.max_parallel,
        Arc::new(move |m| warn_logger.warn(m)),
        connection.dialer.clone(),
    ) {
        Ok(s) => s.with_root_runner(common.root_runner),
        Err(e) => return fail(common.sub, e.to_string()),
    };
    let options = SubcommandOptions {
        artifact,
        with_manifest: inv.with_manifest,
        unsafe_lock_free: inv.unsafe_lock_free,
        keep: common.keep.clone(),
        metrics_file: common.metrics_file.clone(),
    };
    execute(
        common.sub,
        &source,
        run_options(common, stop),
        &logger,
        &options,
        CommandId::Deployment,
    )
    .await
}

/// `bbr director ...`.
async fn run_director(inv: DirectorInvocation) -> i32 {
    let common = &inv.common;
    let artifact = match ArtifactPath::resolve(common.artifact_path.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(common.sub, e),
    };
    let logger = Logger::new(common.debug);
    let stop = StopSignal::new();
    let dialer = match connect::proxy_dialer(
        &logger,
        common.proxy.as_deref(),
        KnownHosts::Path(inv.known_hosts.clone()),
    )
    .await
    {
        Ok(d) => d,
        Err(e) => return fail(common.sub, e),
    };
    let options = connect::director_ssh_options(
        &inv.host,
        &inv.username,
        &inv.known_hosts,
        dialer,
        common.root_runner,
        &logger,
    );
    let source = DirectorSource::new(
        inv.host.name.clone(),
        inv.host.connect_host.clone(),
        inv.key_path.clone(),
        options,
    );
    let sub_options = SubcommandOptions {
        artifact,
        with_manifest: false,
        unsafe_lock_free: false,
        keep: common.keep.clone(),
        metrics_file: common.metrics_file.clone(),
    };
    let code = execute(
        common.sub,
        &source,
        run_options(common, stop),
        &logger,
        &sub_options,
        CommandId::Director,
    )
    .await;
    source.disconnect().await;
    code
}

/// The subcommand flags a single run uses.
struct SubcommandOptions {
    artifact: ArtifactPath,
    with_manifest: bool,
    unsafe_lock_free: bool,
    /// `--keep-*` of backup.
    keep: Option<bbr_artifact::retention::Policy>,
    /// `--metrics-file` of backup and restore.
    metrics_file: Option<std::path::PathBuf>,
}

/// Runs one subcommand against `source`, prints its outcome and returns the exit code.
async fn execute(
    sub: Subcommand,
    source: &dyn bbr_core::source::DeploymentSource,
    run_options: RunOptions,
    logger: &Logger,
    options: &SubcommandOptions,
    mode: CommandId,
) -> i32 {
    let stop = run_options.stop.clone();
    let trap = match sub {
        Subcommand::PreBackupCheck | Subcommand::Validate => None,
        Subcommand::Restore => Some(signals::Wording::Restore),
        _ => Some(signals::Wording::Backup),
    };
    let signals = signals::install(logger.clone(), stop, trap);
    let code = run_subcommand(sub, source, run_options, logger, options, mode).await;
    match trap {
        // The operator confirmed a SIGINT: the run stopped as on SIGTERM (scripts killed,
        // jobs unlocked, cleaned up); now Go bbr's footer and exit code.
        Some(wording) if signals.interrupted() => {
            println!("{}", wording.advice());
            exit_code::GENERAL
        }
        _ => code,
    }
}

/// The workflow of `sub`, its outcome printed; returns the exit code.
async fn run_subcommand(
    sub: Subcommand,
    source: &dyn bbr_core::source::DeploymentSource,
    run_options: RunOptions,
    logger: &Logger,
    options: &SubcommandOptions,
    mode: CommandId,
) -> i32 {
    match sub {
        Subcommand::PreBackupCheck => {
            let errors = workflow::pre_backup_check(source, run_options, logger).await;
            let name = source.deployment_name();
            let verdict = if errors.is_empty() { "can" } else { "cannot" };
            // Only the two workflow modes run a workflow.
            if mode == CommandId::Director {
                logger.print_raw(&format!("Director {verdict} be backed up."))
            } else {
                logger.print_raw(&format!(
                    "[{}] Deployment '{name}' {verdict} be backed up.",
                    chrono::Utc::now().format("%H:%M:%S")
                ))
            }
            if errors.is_empty() {
                return 0;
            }
            if mode == CommandId::Deployment {
                for line in errors.render().lines() {
                    logger.print_raw(&format!("  {line}"));
                }
            }
            let footer = errors
                .first_is_artifact_dir()
                .then_some(BACKUP_CLEANUP_ADVICE);
            finish(&errors, footer, "pre-backup-check")
        }
        Subcommand::Backup => {
            let request = BackupRequest {
                destination: options.artifact.destination(),
                started: std::time::SystemTime::now(),
                unsafe_lock_free: options.unsafe_lock_free,
                with_manifest: options.with_manifest,
            };
            let started = std::time::Instant::now();
            let outcome = workflow::backup(source, run_options, &request, logger).await;
            let footer = outcome
                .errors
                .needs_cleanup_advice()
                .then_some(BACKUP_CLEANUP_ADVICE);
            let mut code = finish(&outcome.errors, footer, "backup");
            let name = source.deployment_name();
            let mut gauges = vec![(
                bbr_metrics::gauges::BYTES_DRAINED,
                outcome.bytes_drained as f64,
            )];
            if let Some(held) = outcome.lock_held {
                gauges.push((bbr_metrics::gauges::LOCK_HELD_SECONDS, held.as_secs_f64()));
            }
            if let Some(policy) = options.keep.as_ref().filter(|_| code == 0) {
                let (pruned_code, kept, pruned) =
                    prune_after_backup(&options.artifact, policy, name, logger).await;
                gauges.push((bbr_metrics::gauges::ARTIFACTS_KEPT, kept as f64));
                gauges.push((bbr_metrics::gauges::ARTIFACTS_PRUNED, pruned as f64));
                code = pruned_code;
            }
            if let Some(path) = &options.metrics_file {
                crate::metrics::record_async(
                    path,
                    bbr_metrics::Job::BbrBackup,
                    name,
                    started,
                    code,
                    gauges,
                )
                .await;
            }
            code
        }
        Subcommand::Restore => {
            let started = std::time::Instant::now();
            let errors =
                workflow::restore(source, run_options, &options.artifact.origin(), logger).await;
            if let Some(path) = &options.metrics_file {
                let code = if errors.is_empty() {
                    0
                } else {
                    errors.exit_code()
                };
                crate::metrics::record_async(
                    path,
                    bbr_metrics::Job::BbrRestore,
                    source.deployment_name(),
                    started,
                    code,
                    Vec::new(),
                )
                .await;
            }
            finish(&errors, None, "restore")
        }
        Subcommand::BackupCleanup => {
            let errors = workflow::backup_cleanup(source, run_options, logger).await;
            finish(&errors, None, "backup-cleanup")
        }
        Subcommand::Validate => {
            let errors =
                workflow::validate(source, run_options, &options.artifact.origin(), logger).await;
            finish(&errors, None, "validate")
        }
        Subcommand::RestoreCleanup => {
            let errors = workflow::restore_cleanup(source, run_options, logger).await;
            finish(&errors, None, "restore-cleanup")
        }
    }
}

/// `backup --keep-*`: after a successful backup, prunes the backed-up deployment's
/// artifacts in the same artifact path with `policy`, printing one line per artifact.
/// Returns the exit code (1 when an artifact could not be removed or the path could not be
/// listed; the backup itself succeeded and says so) and the counts kept and removed.
async fn prune_after_backup(
    artifact: &ArtifactPath,
    policy: &bbr_artifact::retention::Policy,
    deployment: &str,
    logger: &Logger,
) -> (i32, usize, usize) {
    use crate::artifact::prune::{self, PruneSettings};
    let mut policy = policy.clone();
    policy.deployment = Some(deployment.to_string());
    logger.info(format!("Pruning the artifacts of {deployment}: {policy}"));
    let settings = PruneSettings {
        policy,
        dry_run: false,
        metrics_file: None,
    };
    let handle = tokio::runtime::Handle::current();
    let artifact = artifact.clone();
    // The store's client the backup used, not a second one built from the environment.
    let pruned = tokio::task::spawn_blocking(move || match &artifact {
        ArtifactPath::Local(dir) => prune::prune(
            &crate::artifact::ArtifactLocation::Local(dir.clone()),
            &settings,
            &handle,
        ),
        ArtifactPath::Stored(prefix) => prune::prune_store(prefix.store(), &settings, &handle),
    })
    .await
    .unwrap_or_else(|e| Err(format!("the prune task failed: {e}")));
    match pruned {
        Ok(report) => {
            for line in prune::lines(&report, false) {
                logger.info(line);
            }
            let failed = report.failed();
            if failed > 0 {
                logger.error(format!(
                    "The backup succeeded, but {failed} old artifact(s) could not be removed"
                ));
                (1, report.kept(), report.removed())
            } else {
                (0, report.kept(), report.removed())
            }
        }
        Err(e) => {
            logger.error(format!("The backup succeeded, but pruning failed: {e}"));
            (1, 0, 0)
        }
    }
}

/// Writes `bbr-<RFC3339 UTC>.err.log` in the working directory; returns false on failure.
pub(crate) fn write_error_log(errors: &ErrorList, command: &str) -> bool {
    let name = format!(
        "bbr-{}.err.log",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut text = format!("bbr {}: {command}\n", crate::VERSION);
    for (i, e) in errors.0.iter().enumerate() {
        text.push_str(&format!("error {} ({:?}):\n{}\n", i + 1, e.kind, e.message));
    }
    // Scripts' stderr may hold secrets: created 0600, and an older file of the same name
    // (same second) is narrowed through the open handle before anything is written.
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&name)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(text.as_bytes())
        })
        .is_ok()
}

/// Prints the error block (stderr) and footer; returns the exit code.
pub fn finish(errors: &ErrorList, footer: Option<&str>, command: &str) -> i32 {
    if errors.is_empty() {
        return 0;
    }
    let logged = write_error_log(errors, command);
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{}", errors.render());
    if !logged {
        let _ = writeln!(
            err,
            "(could not write the bbr-*.err.log file in the working directory)"
        );
    }
    if let Some(f) = footer {
        let _ = writeln!(err, "{f}");
    }
    errors.exit_code()
}
