//! The `bbr` command line: argument handling, the director-mode wiring, output rendering,
//! signal handling and exit codes. The workflows themselves live in `bbr-core`.

pub mod all_deployments;
pub mod args;
pub mod director;
pub mod help;
pub mod output;
pub mod signals;

use args::{
    ARTIFACT_FLAGS, DEPLOYMENT_BACKUP_FLAGS, DEPLOYMENT_ENV, DEPLOYMENT_FLAGS, DIRECTOR_FLAGS,
    Subcommand, parse_flags,
};
use bbr_core::StopSignal;
use bbr_core::error::{ErrorList, exit_code};
use bbr_core::report::ReporterExt;
use bbr_core::workflow::{self, BackupRequest, RunOptions};
use output::Logger;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// The version printed by `bbr version` and given to metadata scripts as `BBR_VERSION`.
pub const VERSION: &str = match option_env!("BBR_BUILD_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// The footer advising `backup-cleanup` after an all-deployments run.
pub const BACKUP_CLEANUP_ALL_ADVICE: &str = "It is recommended that you run `bbr deployment --all-deployments backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";

/// The footer advising `backup-cleanup`.
pub const BACKUP_CLEANUP_ADVICE: &str = "It is recommended that you run `bbr backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";

fn red(text: &str) -> String {
    format!("\x1b[31m{text}\x1b[0m")
}

/// Runs bbr with `args` (including the program name) and returns the exit code.
pub fn run(args: Vec<String>) -> i32 {
    let rest = &args[1.min(args.len())..];
    let Some(command) = rest.first() else {
        print!("{}", help::app_help(VERSION));
        return 0;
    };
    match command.as_str() {
        "help" | "h" | "--help" | "-h" => {
            print!("{}", help::app_help(VERSION));
            0
        }
        "version" | "v" | "--version" | "-v" => {
            println!("bbr version {VERSION}");
            0
        }
        "director" => director(&rest[1..]),
        "deployment" => deployment(&rest[1..]),
        other => {
            println!("Error command '{other}' not found\n");
            print!("{}", help::app_help(VERSION));
            exit_code::GENERAL
        }
    }
}

/// A command line split into its command-level and subcommand-level flags.
struct Parsed {
    level: args::ParsedLevel,
    sub: Subcommand,
    sub_level: args::ParsedLevel,
}

/// Parses `<command flags> <subcommand> <subcommand flags>` the way urfave/cli does, printing
/// help or usage errors itself; `Err` carries the exit code when there is nothing to run.
fn parse_command(
    args: &[String],
    specs: &[args::FlagSpec],
    sub_specs: fn(Subcommand) -> &'static [args::FlagSpec],
    help_text: fn() -> String,
    sub_help_text: fn(Subcommand) -> String,
) -> Result<Parsed, i32> {
    let level = parse_flags(specs, args).map_err(|e| usage_error(&e, &help_text()))?;
    let Some(sub_name) = level.rest.first() else {
        print!("{}", help_text());
        return Err(if level.help { 0 } else { 1 });
    };
    let Some(sub) = Subcommand::parse(sub_name) else {
        println!("Error command '{sub_name}' not found\n");
        print!("{}", help_text());
        return Err(1);
    };
    let sub_level = parse_flags(sub_specs(sub), &level.rest[1..])
        .map_err(|e| usage_error(&e, &sub_help_text(sub)))?;
    if sub_level.help {
        print!("{}", sub_help_text(sub));
        return Err(0);
    }
    if level.help {
        print!("{}", help_text());
        return Err(0);
    }
    Ok(Parsed {
        level,
        sub,
        sub_level,
    })
}

fn usage_error(message: &str, help_text: &str) -> i32 {
    println!("Incorrect Usage: {message}\n");
    print!("{help_text}");
    exit_code::GENERAL
}

fn required(flag: &str, help_text: &str) -> i32 {
    print!("{help_text}");
    eprintln!("{}", red(&format!("--{flag} flag is required.")));
    exit_code::GENERAL
}

/// `--max-parallel` and `--script-timeout`, shared by both commands.
fn common_options(flags: &args::Flags) -> Result<(usize, bbr_core::workflow::ScriptTimeouts), i32> {
    let max_parallel = match flags.get("max-parallel").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!(
                "{}",
                red("--max-parallel must be a whole number of at least 1.")
            );
            return Err(1);
        }
    };
    let script_timeouts = match flags.get("script-timeout").map(args::parse_script_timeouts) {
        None => Default::default(),
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            eprintln!("{}", red(&format!("--script-timeout: {e}")));
            return Err(1);
        }
    };
    Ok((max_parallel, script_timeouts))
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("could not start the runtime: {e}");
            None
        }
    }
}

/// `bbr deployment ...`.
fn deployment(args: &[String]) -> i32 {
    let Parsed {
        level,
        sub,
        sub_level,
    } = match parse_command(
        args,
        DEPLOYMENT_FLAGS,
        |sub| match sub {
            Subcommand::Backup => DEPLOYMENT_BACKUP_FLAGS,
            Subcommand::Restore => ARTIFACT_FLAGS,
            _ => &[],
        },
        help::deployment_help,
        help::deployment_subcommand_help,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let flags = level
        .flags
        .clone()
        .with_env(DEPLOYMENT_ENV, |k| std::env::var(k).ok());
    for flag in ["target", "username", "password"] {
        if flags.get(flag).is_none() {
            return required(flag, &help::deployment_help());
        }
    }
    let all = flags.is_set("all-deployments");
    if flags.get("deployment").is_some() == all {
        print!("{}", help::deployment_help());
        eprintln!(
            "{}",
            red("provide one of '--deployment' or '--all-deployments' flags.")
        );
        return exit_code::GENERAL;
    }
    if sub == Subcommand::Restore && sub_level.flags.get("artifact-path").is_none() {
        return required("artifact-path", &help::deployment_subcommand_help(sub));
    }
    if all && sub_level.flags.is_set("unsafe-lock-free") {
        eprintln!(
            "{}",
            red(
                "Cannot use the --unsafe-lock-free flag in conjunction with the --all-deployments flag"
            )
        );
        return exit_code::GENERAL;
    }
    if all && matches!(sub, Subcommand::Restore | Subcommand::RestoreCleanup) {
        eprintln!(
            "{}",
            red(
                "--all-deployments is only supported for pre-backup-check, backup and backup-cleanup."
            )
        );
        return exit_code::GENERAL;
    }
    let (max_parallel, script_timeouts) = match common_options(&flags) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let task_timeout = match director_task_timeout() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}", red(&e));
            return exit_code::GENERAL;
        }
    };
    let Some(rt) = runtime() else { return 1 };
    let sub_flags = SubcommandFlags {
        artifact_path: sub_level.flags.get("artifact-path").map(str::to_string),
        with_manifest: sub_level.flags.is_set("with-manifest"),
        unsafe_lock_free: sub_level.flags.is_set("unsafe-lock-free"),
        task_timeout,
    };
    if all {
        return rt.block_on(run_all(
            sub,
            flags,
            sub_flags,
            max_parallel,
            script_timeouts,
        ));
    }
    rt.block_on(run_deployment(
        sub,
        flags,
        sub_flags,
        max_parallel,
        script_timeouts,
    ))
}

/// The way out of this machine: direct, or through `BOSH_ALL_PROXY` (whose jump host's key
/// is checked against `known_hosts`).
async fn proxy_dialer(logger: &Logger, known_hosts: PathBuf) -> Result<bbr_ssh::Dialer, String> {
    let Some(value) = std::env::var("BOSH_ALL_PROXY")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return Ok(bbr_ssh::Dialer::Direct);
    };
    let spec = bbr_ssh::ProxySpec::parse(&value).map_err(|e| e.to_string())?;
    let warn_logger = logger.clone();
    bbr_ssh::Dialer::for_proxy(&spec, known_hosts, Arc::new(move |m| warn_logger.warn(m)))
        .await
        .map_err(|e| format!("BOSH_ALL_PROXY: {e}"))
}

/// `BBR_SUDO_EACH_COMMAND=true` runs every root command on a VM through its own `sudo`, as
/// Go bbr does (each then appears in the VM's sudo log), instead of through one root process
/// per VM started with a single `sudo`.
pub const SUDO_EACH_COMMAND_ENV: &str = "BBR_SUDO_EACH_COMMAND";

/// `BBR_DIRECTOR_TASK_TIMEOUT=<duration>` (`90s`, `10m`, `1h`) bounds how long bbr waits
/// for each director task (SSH setup, VM listing); default
/// [`bbr_director::client::DEFAULT_TASK_TIMEOUT`]. Go bbr waits forever.
pub const DIRECTOR_TASK_TIMEOUT_ENV: &str = "BBR_DIRECTOR_TASK_TIMEOUT";

/// The director task wait from [`DIRECTOR_TASK_TIMEOUT_ENV`], or the default.
fn director_task_timeout() -> Result<std::time::Duration, String> {
    match std::env::var(DIRECTOR_TASK_TIMEOUT_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            args::parse_duration(v.trim()).map_err(|e| format!("{DIRECTOR_TASK_TIMEOUT_ENV}: {e}"))
        }
        _ => Ok(bbr_director::client::DEFAULT_TASK_TIMEOUT),
    }
}

/// Refuses a deployment name that cannot be one path component (it names the artifact
/// directory); `origin` says where it came from.
pub(crate) fn check_deployment_name(name: &str, origin: &str) -> Result<(), String> {
    bbr_artifact::naming::check_safe_name("deployment name", name, origin)
        .map_err(|e| e.to_string())
}

/// Whether root commands go through one root process per VM (see [`SUDO_EACH_COMMAND_ENV`]).
pub(crate) fn root_runner_wanted() -> bool {
    !std::env::var(SUDO_EACH_COMMAND_ENV)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

fn default_known_hosts() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".ssh").join("known_hosts"))
        .unwrap_or_else(|| PathBuf::from("/root/.ssh/known_hosts"))
}

/// The director connection settings of a `bbr deployment` run; every client made waits at
/// most `task_timeout` for a task and gives up its requests once `stop` is raised.
async fn director_connector(
    flags: &args::Flags,
    logger: &Logger,
    stop: StopSignal,
    task_timeout: std::time::Duration,
) -> Result<all_deployments::Connection, String> {
    let dialer = proxy_dialer(logger, default_known_hosts()).await?;
    let proxy_url = dialer.http_proxy_url().await.map_err(|e| e.to_string())?;
    let target = bbr_director::Target::parse(flags.get("target").unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let ca = flags
        .get("ca-cert")
        .map(bbr_director::CaCert::load)
        .transpose()
        .map_err(|e| e.to_string())?;
    let username = flags.get("username").unwrap_or_default().to_string();
    let password = bbr_director::client::Secret::new(flags.get("password").unwrap_or_default());
    let debug_logger = logger.clone();
    Ok(all_deployments::Connection {
        dialer,
        connect: Arc::new(move || {
            let (target, ca, username, password, debug_logger, proxy_url, stop) = (
                target.clone(),
                ca.clone(),
                username.clone(),
                password.clone(),
                debug_logger.clone(),
                proxy_url.clone(),
                stop.clone(),
            );
            Box::pin(async move {
                bbr_director::DirectorClient::connect(
                    &target,
                    ca.as_ref(),
                    &username,
                    password,
                    proxy_url.as_deref(),
                    Arc::new(move |line| debug_logger.debug(line)),
                )
                .await
                .map(|c| Arc::new(c.with_stop(stop).with_task_timeout(task_timeout)))
                .map_err(|e| e.to_string())
            })
        }),
    })
}

async fn run_all(
    sub: Subcommand,
    flags: args::Flags,
    sub_flags: SubcommandFlags,
    max_parallel: usize,
    script_timeouts: bbr_core::workflow::ScriptTimeouts,
) -> i32 {
    let logger = Logger::new(flags.is_set("debug"));
    let stop = StopSignal::new();
    let connection =
        match director_connector(&flags, &logger, stop.clone(), sub_flags.task_timeout).await {
            Ok(c) => c,
            Err(e) => {
                return finish(
                    &ErrorList(vec![bbr_core::BbrError::general(e)]),
                    None,
                    sub.name(),
                );
            }
        };
    let settings = all_deployments::Settings {
        sub,
        artifact_path: PathBuf::from(
            sub_flags
                .artifact_path
                .clone()
                .unwrap_or_else(|| ".".into()),
        ),
        with_manifest: sub_flags.with_manifest,
        debug: flags.is_set("debug"),
        run_options: RunOptions {
            bbr_version: VERSION.to_string(),
            max_parallel,
            script_timeouts,
            stop: stop.clone(),
        },
    };
    // SIGTERM stops every deployment's run; SIGINT keeps its default here, as in Go bbr.
    let _signals = signals::install(logger.clone(), stop, None);
    all_deployments::run(connection, settings).await
}

async fn run_deployment(
    sub: Subcommand,
    flags: args::Flags,
    sub_flags: SubcommandFlags,
    max_parallel: usize,
    script_timeouts: bbr_core::workflow::ScriptTimeouts,
) -> i32 {
    let logger = Logger::new(flags.is_set("debug"));
    let fail = |message: String| {
        finish(
            &ErrorList(vec![bbr_core::BbrError::general(message)]),
            None,
            sub.name(),
        )
    };
    let deployment_name = flags.get("deployment").unwrap_or_default().to_string();
    if let Err(e) = check_deployment_name(&deployment_name, "given with --deployment") {
        return fail(e);
    }
    let stop = StopSignal::new();
    let connection =
        match director_connector(&flags, &logger, stop.clone(), sub_flags.task_timeout).await {
            Ok(connection) => connection,
            Err(e) => return fail(e),
        };
    let client = match (connection.connect)().await {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let warn_logger = logger.clone();
    let source = match bbr_director::source::DirectorDeployment::new(
        client,
        deployment_name,
        max_parallel,
        Arc::new(move |m| warn_logger.warn(m)),
        connection.dialer.clone(),
    ) {
        Ok(s) => s.with_root_runner(root_runner_wanted()),
        Err(e) => return fail(e.to_string()),
    };
    let run_options = RunOptions {
        bbr_version: VERSION.to_string(),
        max_parallel,
        script_timeouts,
        stop,
    };
    execute(
        sub,
        &source,
        run_options,
        &logger,
        &sub_flags,
        Mode::Deployment,
    )
    .await
}

/// The settings of one `bbr director` invocation.
struct DirectorInvocation {
    sub: Subcommand,
    host: String,
    username: String,
    key_path: PathBuf,
    known_hosts: PathBuf,
    debug: bool,
    max_parallel: usize,
    script_timeouts: bbr_core::workflow::ScriptTimeouts,
    artifact_path: Option<String>,
}

fn director(args: &[String]) -> i32 {
    let Parsed {
        level,
        sub,
        sub_level,
    } = match parse_command(
        args,
        DIRECTOR_FLAGS,
        |sub| match sub {
            Subcommand::Backup | Subcommand::Restore => ARTIFACT_FLAGS,
            _ => &[],
        },
        help::director_help,
        help::director_subcommand_help,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let flags = &level.flags;
    for flag in ["host", "username", "private-key-path"] {
        if flags.get(flag).is_none() {
            return required(flag, &help::director_help());
        }
    }
    if sub == Subcommand::Restore && sub_level.flags.get("artifact-path").is_none() {
        return required("artifact-path", &help::director_subcommand_help(sub));
    }
    let (max_parallel, script_timeouts) = match common_options(flags) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let known_hosts = match flags.get("known-hosts") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".ssh").join("known_hosts"),
            None => {
                eprintln!("{}", red("HOME is not set: give --known-hosts FILE."));
                return exit_code::GENERAL;
            }
        },
    };
    let invocation = DirectorInvocation {
        sub,
        host: flags.get("host").unwrap_or_default().to_string(),
        username: flags.get("username").unwrap_or_default().to_string(),
        key_path: PathBuf::from(flags.get("private-key-path").unwrap_or_default()),
        known_hosts,
        debug: flags.is_set("debug"),
        max_parallel,
        script_timeouts,
        artifact_path: sub_level.flags.get("artifact-path").map(str::to_string),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("could not start the runtime: {e}");
            return exit_code::GENERAL;
        }
    };
    runtime.block_on(run_director(invocation))
}

/// Which command runs, for the wording of pre-backup-check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Director,
    Deployment,
}

/// Flags of the subcommands (and the director task wait of `bbr deployment`).
struct SubcommandFlags {
    artifact_path: Option<String>,
    with_manifest: bool,
    unsafe_lock_free: bool,
    task_timeout: std::time::Duration,
}

/// Runs one subcommand against `source`, prints its outcome and returns the exit code.
async fn execute(
    sub: Subcommand,
    source: &dyn bbr_core::source::DeploymentSource,
    run_options: RunOptions,
    logger: &Logger,
    flags: &SubcommandFlags,
    mode: Mode,
) -> i32 {
    let stop = run_options.stop.clone();
    let trap = match sub {
        Subcommand::PreBackupCheck => None,
        Subcommand::Restore => Some(signals::Wording::Restore),
        _ => Some(signals::Wording::Backup),
    };
    let signals = signals::install(logger.clone(), stop, trap);
    let code = run_subcommand(sub, source, run_options, logger, flags, mode).await;
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
    flags: &SubcommandFlags,
    mode: Mode,
) -> i32 {
    match sub {
        Subcommand::PreBackupCheck => {
            let errors = workflow::pre_backup_check(source, run_options, logger).await;
            let name = source.deployment_name();
            let verdict = if errors.is_empty() { "can" } else { "cannot" };
            match mode {
                Mode::Director => logger.print_raw(&format!("Director {verdict} be backed up.")),
                Mode::Deployment => logger.print_raw(&format!(
                    "[{}] Deployment '{name}' {verdict} be backed up.",
                    chrono::Utc::now().format("%H:%M:%S")
                )),
            }
            if errors.is_empty() {
                return 0;
            }
            if mode == Mode::Deployment {
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
            let parent = PathBuf::from(flags.artifact_path.clone().unwrap_or_else(|| ".".into()));
            let request = BackupRequest {
                artifact_parent: parent,
                started: std::time::SystemTime::now(),
                unsafe_lock_free: flags.unsafe_lock_free,
                with_manifest: flags.with_manifest,
            };
            let outcome = workflow::backup(source, run_options, &request, logger).await;
            let footer = outcome
                .errors
                .needs_cleanup_advice()
                .then_some(BACKUP_CLEANUP_ADVICE);
            finish(&outcome.errors, footer, "backup")
        }
        Subcommand::Restore => {
            let path = PathBuf::from(flags.artifact_path.clone().unwrap_or_default());
            let errors = workflow::restore(source, run_options, &path, logger).await;
            finish(&errors, None, "restore")
        }
        Subcommand::BackupCleanup => {
            let errors = workflow::backup_cleanup(source, run_options, logger).await;
            finish(&errors, None, "backup-cleanup")
        }
        Subcommand::RestoreCleanup => {
            let errors = workflow::restore_cleanup(source, run_options, logger).await;
            finish(&errors, None, "restore-cleanup")
        }
    }
}

/// Writes `bbr-<RFC3339 UTC>.err.log` in the working directory; returns false on failure.
pub(crate) fn write_error_log(errors: &ErrorList, command: &str) -> bool {
    let name = format!(
        "bbr-{}.err.log",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut text = format!("bbr {VERSION}: {command}\n");
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
fn finish(errors: &ErrorList, footer: Option<&str>, command: &str) -> i32 {
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

async fn run_director(inv: DirectorInvocation) -> i32 {
    let logger = Logger::new(inv.debug);
    let stop = StopSignal::new();
    let (name, connect_host, port) = match args::parse_host(&inv.host) {
        Ok(h) => h,
        Err(e) => {
            let errors = ErrorList(vec![bbr_core::BbrError::general(e)]);
            return finish(&errors, None, inv.sub.name());
        }
    };
    let dialer = match proxy_dialer(&logger, inv.known_hosts.clone()).await {
        Ok(d) => d,
        Err(e) => {
            let errors = ErrorList(vec![bbr_core::BbrError::general(e)]);
            return finish(&errors, None, inv.sub.name());
        }
    };
    let warn_logger = logger.clone();
    let on_warning: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |m| warn_logger.warn(m));
    let (user, known_hosts, root_runner) = (
        inv.username.clone(),
        inv.known_hosts.clone(),
        root_runner_wanted(),
    );
    let host = connect_host.clone();
    let options: director::OptionsWithKey = Box::new(move |key| bbr_ssh::ConnectOptions {
        host: connect_host.clone(),
        port,
        user: user.clone(),
        key,
        host_key: bbr_ssh::HostKeyPolicy::KnownHosts(known_hosts.clone()),
        on_warning: on_warning.clone(),
        dialer: dialer.clone(),
        root_runner,
    });
    let source = director::DirectorSource::new(name.clone(), host, inv.key_path.clone(), options);
    let run_options = RunOptions {
        bbr_version: VERSION.to_string(),
        max_parallel: inv.max_parallel,
        script_timeouts: inv.script_timeouts.clone(),
        stop: stop.clone(),
    };
    let flags = SubcommandFlags {
        artifact_path: inv.artifact_path.clone(),
        with_manifest: false,
        unsafe_lock_free: false,
        task_timeout: bbr_director::client::DEFAULT_TASK_TIMEOUT,
    };
    let code = execute(
        inv.sub,
        &source,
        run_options,
        &logger,
        &flags,
        Mode::Director,
    )
    .await;
    source.disconnect().await;
    code
}
