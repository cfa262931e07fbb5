//! The typed resolve step: a parsed [`CommandLine`] becomes one [`Invocation`] per mode,
//! with typed fields (paths, durations, counts, the parsed `--host`), after the checks Go bbr
//! makes, in the order it reports them (docs/cli.md, "`bbr deployment` flags and
//! environment"). Nothing after this step reads a flag or an environment variable.

use crate::artifact::prune::PruneSettings;
use crate::artifact::{ArtifactInvocation, ArtifactLocation};
use crate::commands::{ArtifactSubcommand, CommandId, Subcommand, SubcommandId};
use crate::connect::{self, GIVE_KNOWN_HOSTS_FLAG};
use crate::flags::{FlagId, KEEP_FLAGS, Scope};
use crate::help::HelpTopic;
use crate::parse::{CommandLine, FlagValues};
use crate::usage::{Rejection, UsageError};
use crate::values::{self, HostAddr, HostError};
use bbr_artifact::naming::UnsafeName;
use bbr_artifact::retention::{CalendarDuration, Count, Policy};
use bbr_core::workflow::ScriptTimeouts;
use std::path::PathBuf;
use std::time::Duration;

/// `BBR_SUDO_EACH_COMMAND=true` runs every root command on a VM through its own `sudo`, as
/// Go bbr does (each then appears in the VM's sudo log), instead of through one root process
/// per VM started with a single `sudo`.
pub const SUDO_EACH_COMMAND_ENV: &str = "BBR_SUDO_EACH_COMMAND";

/// `BBR_DIRECTOR_TASK_TIMEOUT=<duration>` (`90s`, `10m`, `1h`) bounds how long bbr waits
/// for each director task (SSH setup, VM listing); default
/// [`bbr_director::client::DEFAULT_TASK_TIMEOUT`]. Go bbr waits forever.
pub const DIRECTOR_TASK_TIMEOUT_ENV: &str = "BBR_DIRECTOR_TASK_TIMEOUT";

/// `BOSH_ALL_PROXY`: how connections leave this machine (Go bbr reads it too).
pub const ALL_PROXY_ENV: &str = "BOSH_ALL_PROXY";

/// What to run.
pub enum Invocation {
    /// `bbr director ...`.
    Director(DirectorInvocation),
    /// `bbr deployment ...`.
    Deployment(DeploymentInvocation),
    /// `bbr artifact ...`.
    Artifact(ArtifactInvocation),
}

/// Settings both modes have.
#[derive(Clone)]
pub struct Common {
    /// The subcommand.
    pub sub: Subcommand,
    /// `--debug`.
    pub debug: bool,
    /// `--max-parallel` (default 10).
    pub max_parallel: usize,
    /// `--script-timeout`.
    pub script_timeouts: ScriptTimeouts,
    /// `--artifact-path` of backup and restore.
    pub artifact_path: Option<PathBuf>,
    /// `--keep-*` of backup: the retention applied to the backed-up deployment's artifacts
    /// after a successful backup.
    pub keep: Option<Policy>,
    /// `--metrics-file` of backup and restore.
    pub metrics_file: Option<PathBuf>,
    /// One root process per VM (false with [`SUDO_EACH_COMMAND_ENV`]).
    pub root_runner: bool,
    /// `BOSH_ALL_PROXY`, if set and non-empty.
    pub proxy: Option<String>,
}

/// The settings of one `bbr director` invocation.
pub struct DirectorInvocation {
    /// Shared settings.
    pub common: Common,
    /// `--host`, parsed.
    pub host: HostAddr,
    /// `--username`.
    pub username: String,
    /// `--private-key-path` (read when the VM is first contacted).
    pub key_path: PathBuf,
    /// `--known-hosts`, or [`connect::default_known_hosts`].
    pub known_hosts: PathBuf,
}

/// Which deployments a `bbr deployment` run is for.
pub enum Deployments {
    /// `--deployment NAME`.
    One(String),
    /// `--all-deployments`.
    All,
}

/// The settings of one `bbr deployment` invocation.
pub struct DeploymentInvocation {
    /// Shared settings.
    pub common: Common,
    /// `--target` as given (a bad one is reported when connecting, after the proxy).
    pub target: String,
    /// `--username`.
    pub username: String,
    /// `--password`.
    pub password: bbr_director::client::Secret,
    /// `--ca-cert`: PEM text or a path to one.
    pub ca_cert: Option<String>,
    /// `--deployment` or `--all-deployments`.
    pub deployments: Deployments,
    /// `backup --with-manifest`.
    pub with_manifest: bool,
    /// `backup --unsafe-lock-free`.
    pub unsafe_lock_free: bool,
    /// [`DIRECTOR_TASK_TIMEOUT_ENV`], or the default.
    pub task_timeout: Duration,
}

/// A setting that passed the usage checks but names nothing usable; it is reported as the
/// run's error (error block, `bbr-*.err.log`), not as a usage error, as before.
#[derive(Debug, thiserror::Error)]
pub enum InvalidSetting {
    /// `--host`.
    #[error(transparent)]
    Host(#[from] HostError),
    /// `--deployment` is not one path component.
    #[error(transparent)]
    DeploymentName(#[from] UnsafeName),
}

/// Why resolving stopped.
pub enum Refusal {
    /// A usage error (shown with its help, exit 1).
    Usage(Rejection),
    /// A run error of subcommand `sub`.
    Invalid(Subcommand, InvalidSetting),
}

impl From<Rejection> for Refusal {
    fn from(r: Rejection) -> Self {
        Refusal::Usage(r)
    }
}

/// Environment look-up (`std::env::var`, or a table in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolves a parsed command line against the environment `env`.
pub fn resolve(line: CommandLine, env: Env<'_>) -> Result<Invocation, Refusal> {
    match (line.command.id, line.sub.id) {
        (CommandId::Director, SubcommandId::Workflow(sub)) => {
            director(line, sub, env).map(Invocation::Director)
        }
        (CommandId::Deployment, SubcommandId::Workflow(sub)) => {
            deployment(line, sub, env).map(Invocation::Deployment)
        }
        (CommandId::Artifact, SubcommandId::Artifact(sub)) => {
            artifact(&line, sub).map(Invocation::Artifact)
        }
        // The command table gives each command only its own kind of subcommand.
        (_, id) => Err(Rejection::with_help(
            UsageError::UnknownCommand(id.name().to_string()),
            HelpTopic::Command(line.command),
        )
        .into()),
    }
}

/// Refuses the first required flag of `scope` that has no value.
fn check_required(line: &CommandLine, scope: Scope, help: HelpTopic) -> Result<(), Rejection> {
    let values = match scope {
        Scope::Command(_) => &line.flags,
        Scope::Subcommand(..) => &line.sub_flags,
    };
    match values.missing_required(scope) {
        Some(f) => Err(Rejection::with_help(UsageError::Required(f.name()), help)),
        None => Ok(()),
    }
}

fn command_scope(line: &CommandLine) -> (Scope, HelpTopic) {
    (
        Scope::Command(line.command.id),
        HelpTopic::Command(line.command),
    )
}

fn sub_scope(line: &CommandLine) -> (Scope, HelpTopic) {
    (
        Scope::Subcommand(line.command.id, line.sub.id),
        HelpTopic::Subcommand(line.command, line.sub),
    )
}

/// `--max-parallel`, `--script-timeout` and the settings from the environment.
fn common(line: &CommandLine, sub: Subcommand, env: Env<'_>) -> Result<Common, Rejection> {
    let max_parallel = match line.flags.get(FlagId::MaxParallel).map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return Err(Rejection::alone(UsageError::MaxParallel)),
    };
    let script_timeouts = match line
        .flags
        .get(FlagId::ScriptTimeout)
        .map(values::parse_script_timeouts)
    {
        None => ScriptTimeouts::default(),
        Some(Ok(t)) => t,
        Some(Err(e)) => return Err(Rejection::alone(UsageError::ScriptTimeout(e))),
    };
    let sudo_each_command = env(SUDO_EACH_COMMAND_ENV)
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    Ok(Common {
        sub,
        debug: line.flags.is_set(FlagId::Debug),
        max_parallel,
        script_timeouts,
        artifact_path: line.sub_flags.get(FlagId::ArtifactPath).map(PathBuf::from),
        keep: retention_policy(&line.sub_flags)?,
        metrics_file: metrics_file(&line.sub_flags)?,
        root_runner: !sudo_each_command,
        proxy: env(ALL_PROXY_ENV).filter(|v| !v.is_empty()),
    })
}

fn director(
    line: CommandLine,
    sub: Subcommand,
    env: Env<'_>,
) -> Result<DirectorInvocation, Refusal> {
    let (scope, help) = command_scope(&line);
    check_required(&line, scope, help)?;
    let (scope, help) = sub_scope(&line);
    check_required(&line, scope, help)?;
    let common = common(&line, sub, env)?;
    let flags = &line.flags;
    let known_hosts = match flags.get(FlagId::KnownHosts) {
        Some(p) => PathBuf::from(p),
        None => connect::default_known_hosts(GIVE_KNOWN_HOSTS_FLAG)
            .map_err(|e| Rejection::alone(UsageError::KnownHosts(e)))?,
    };
    let host = values::parse_host(flags.get(FlagId::Host).unwrap_or_default())
        .map_err(|e| Refusal::Invalid(common.sub, e.into()))?;
    Ok(DirectorInvocation {
        host,
        username: flags.get(FlagId::Username).unwrap_or_default().to_string(),
        key_path: PathBuf::from(flags.get(FlagId::PrivateKeyPath).unwrap_or_default()),
        known_hosts,
        common,
    })
}

fn deployment(
    line: CommandLine,
    sub: Subcommand,
    env: Env<'_>,
) -> Result<DeploymentInvocation, Refusal> {
    let (scope, help) = command_scope(&line);
    check_required(&line, scope, help)?;
    let flags = &line.flags;
    let all = flags.is_set(FlagId::AllDeployments);
    if flags.get(FlagId::Deployment).is_some() == all {
        return Err(Rejection::with_help(UsageError::DeploymentChoice, help).into());
    }
    let (scope, sub_help) = sub_scope(&line);
    check_required(&line, scope, sub_help)?;
    let unsafe_lock_free = line.sub_flags.is_set(FlagId::UnsafeLockFree);
    if all && unsafe_lock_free {
        return Err(Rejection::alone(UsageError::UnsafeLockFreeWithAll).into());
    }
    if all && retention_policy(&line.sub_flags)?.is_some() {
        return Err(Rejection::alone(UsageError::KeepWithAll).into());
    }
    if all
        && matches!(
            sub,
            Subcommand::Restore | Subcommand::RestoreCleanup | Subcommand::Validate
        )
    {
        return Err(Rejection::alone(UsageError::AllDeploymentsUnsupported).into());
    }
    let common = common(&line, sub, env)?;
    let task_timeout = match env(DIRECTOR_TASK_TIMEOUT_ENV) {
        Some(v) if !v.trim().is_empty() => values::parse_duration(v.trim())
            .map_err(|source| Rejection::alone(UsageError::TaskTimeout { source }))?,
        _ => bbr_director::client::DEFAULT_TASK_TIMEOUT,
    };
    let deployments = match flags.get(FlagId::Deployment) {
        Some(name) if !all => {
            // The name becomes the artifact directory's name.
            bbr_artifact::naming::check_safe_name(
                "deployment name",
                name,
                "given with --deployment",
            )
            .map_err(|e| Refusal::Invalid(sub, e.into()))?;
            Deployments::One(name.to_string())
        }
        _ => Deployments::All,
    };
    Ok(DeploymentInvocation {
        target: flags.get(FlagId::Target).unwrap_or_default().to_string(),
        username: flags.get(FlagId::Username).unwrap_or_default().to_string(),
        password: bbr_director::client::Secret::new(
            flags.get(FlagId::Password).unwrap_or_default(),
        ),
        ca_cert: flags.get(FlagId::CaCert).map(str::to_string),
        deployments,
        with_manifest: line.sub_flags.is_set(FlagId::WithManifest),
        unsafe_lock_free,
        task_timeout,
        common,
    })
}

/// `bbr artifact <validate|list> PATH [--json]`: exactly one non-empty PATH, a local
/// directory or an `s3://`, `az://`, `azure://`, `gs://` URL (another URL is refused).
fn artifact(line: &CommandLine, sub: ArtifactSubcommand) -> Result<ArtifactInvocation, Refusal> {
    let (_, help) = sub_scope(line);
    let what = line.sub.operands;
    let location = match line.operands.as_slice() {
        [] => return Err(Rejection::with_help(UsageError::MissingOperand(what), help).into()),
        [path] if path.is_empty() => {
            return Err(Rejection::with_help(UsageError::MissingOperand(what), help).into());
        }
        [path] => {
            ArtifactLocation::parse(path).map_err(|e| Rejection::alone(UsageError::Location(e)))?
        }
        [_, extra, ..] => {
            return Err(
                Rejection::with_help(UsageError::ExtraOperand(extra.clone(), what), help).into(),
            );
        }
    };
    let prune = match sub {
        ArtifactSubcommand::Prune => {
            let flags = &line.sub_flags;
            let mut policy = retention_policy(flags)?.unwrap_or_default();
            if let Some(name) = single(flags, FlagId::Deployment, "deployment")? {
                policy.deployment = Some(name.to_string());
            }
            if policy.is_empty() {
                return Err(Rejection::alone(UsageError::EmptyPolicy(
                    bbr_artifact::retention::RetentionError::EmptyPolicy,
                ))
                .into());
            }
            Some(PruneSettings {
                policy,
                dry_run: flags.is_set(FlagId::DryRun),
                metrics_file: metrics_file(flags)?,
            })
        }
        _ => None,
    };
    Ok(ArtifactInvocation {
        sub,
        location,
        json: line.sub_flags.is_set(FlagId::Json),
        prune,
    })
}

/// The value of `id` (named `name`), refusing two different values of it.
fn single<'a>(
    flags: &'a FlagValues,
    id: FlagId,
    name: &'static str,
) -> Result<Option<&'a str>, Rejection> {
    let values = flags.all(id);
    if let Some(other) = values.iter().find(|v| **v != values[0]) {
        return Err(Rejection::alone(UsageError::Contradictory {
            flag: name,
            first: values[0].to_string(),
            second: other.to_string(),
        }));
    }
    Ok(flags.get(id))
}

/// The retention policy of the `--keep-*` flags at one level: `None` when none of them is
/// given. Each value is checked (a count: a number, `-1` or `unlimited`; a duration:
/// `2y5m7d3h`), and a flag given twice with different values is refused, each error naming
/// the flag and the value. `--keep-incomplete-for` alone is refused (it keeps, it does not
/// remove). The deployment filter is left to the caller.
pub fn retention_policy(flags: &FlagValues) -> Result<Option<Policy>, Rejection> {
    let mut policy = Policy::default();
    let mut any = false;
    for (id, name) in KEEP_FLAGS {
        if let Some(text) = single(flags, *id, name)? {
            let count: Count = text
                .parse()
                .map_err(|source| Rejection::alone(UsageError::Keep { flag: name, source }))?;
            any = true;
            *match id {
                FlagId::KeepLast => &mut policy.keep_last,
                FlagId::KeepHourly => &mut policy.keep_hourly,
                FlagId::KeepDaily => &mut policy.keep_daily,
                FlagId::KeepWeekly => &mut policy.keep_weekly,
                FlagId::KeepMonthly => &mut policy.keep_monthly,
                _ => &mut policy.keep_yearly,
            } = count;
        }
    }
    let duration = |id, name: &'static str| -> Result<Option<CalendarDuration>, Rejection> {
        single(flags, id, name)?
            .map(|text| {
                text.parse::<CalendarDuration>()
                    .map_err(|source| Rejection::alone(UsageError::Keep { flag: name, source }))
            })
            .transpose()
    };
    if let Some(d) = duration(FlagId::KeepWithin, "keep-within")? {
        any = true;
        policy.keep_within = Some(d);
    }
    if let Some(d) = duration(FlagId::KeepIncompleteFor, "keep-incomplete-for")? {
        if !any {
            return Err(Rejection::alone(UsageError::KeepIncompleteAlone(
                d.to_string(),
            )));
        }
        policy.keep_incomplete_for = d;
    }
    Ok(any.then_some(policy))
}

/// `--metrics-file`: its directory must exist and be writable, and the path must not be a
/// directory, so that a run never ends with metrics that cannot be written.
pub fn metrics_file(flags: &FlagValues) -> Result<Option<PathBuf>, Rejection> {
    let Some(text) = single(flags, FlagId::MetricsFile, "metrics-file")? else {
        return Ok(None);
    };
    let path = PathBuf::from(text);
    let refuse = |reason: String| {
        Rejection::alone(UsageError::MetricsFile {
            path: text.to_string(),
            reason,
        })
    };
    if path.is_dir() {
        return Err(refuse(
            "it is a directory; name a file (e.g. bbr.prom)".into(),
        ));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(refuse(format!("{} is not a directory", dir.display()))),
        Err(e) => return Err(refuse(format!("its directory {}: {e}", dir.display()))),
    }
    if !writable(&dir) {
        return Err(refuse(format!(
            "its directory {} is not writable",
            dir.display()
        )));
    }
    Ok(Some(path))
}

/// `access(dir, W_OK|X_OK)`.
fn writable(dir: &std::path::Path) -> bool {
    use nix::unistd::{AccessFlags, access};
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Request, parse};

    fn resolved(args: &[&str], env: &[(&str, &str)]) -> Result<Invocation, Refusal> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let lookup = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        match parse(&args, &lookup) {
            Ok(Request::Run(line)) => resolve(line, &lookup),
            _ => panic!("{args:?} does not parse to a run"),
        }
    }

    fn usage(r: Result<Invocation, Refusal>) -> UsageError {
        match r {
            Err(Refusal::Usage(rejection)) => rejection.error,
            Err(Refusal::Invalid(_, e)) => panic!("a run error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    const DIRECTOR: &[&str] = &["director", "--host", "h:2200", "-u", "vcap", "--key", "k"];

    #[test]
    fn director_fields_are_typed() {
        let args = [
            DIRECTOR,
            &[
                "--known-hosts",
                "/kh",
                "--max-parallel",
                "3",
                "--script-timeout",
                "backup=2h",
                "backup",
                "-a",
                "/out",
            ],
        ]
        .concat();
        let Ok(Invocation::Director(d)) = resolved(&args, &[(SUDO_EACH_COMMAND_ENV, "Yes")]) else {
            panic!("not a director run")
        };
        assert_eq!(d.host.port, 2200);
        assert_eq!(d.host.name, "h");
        assert_eq!(d.key_path, PathBuf::from("k"));
        assert_eq!(d.known_hosts, PathBuf::from("/kh"));
        assert_eq!(d.common.max_parallel, 3);
        assert_eq!(
            d.common
                .script_timeouts
                .for_kind(bbr_core::ScriptKind::Backup),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(d.common.artifact_path, Some(PathBuf::from("/out")));
        assert!(!d.common.root_runner);
        assert_eq!(d.common.proxy, None);
    }

    #[test]
    fn director_checks_in_order() {
        assert!(matches!(
            usage(resolved(&["director", "-u", "x", "backup"], &[])),
            UsageError::Required("host")
        ));
        assert!(matches!(
            usage(resolved(&[DIRECTOR, &["restore"]].concat(), &[])),
            UsageError::Required("artifact-path")
        ));
        assert!(matches!(
            usage(resolved(
                &[DIRECTOR, &["--max-parallel", "0", "restore"]].concat(),
                &[]
            )),
            UsageError::Required("artifact-path")
        ));
        assert!(matches!(
            usage(resolved(
                &[DIRECTOR, &["--max-parallel", "0", "backup"]].concat(),
                &[]
            )),
            UsageError::MaxParallel
        ));
        match resolved(
            &["director", "--host", "h:port", "-u", "x", "--key", "k", "c"],
            &[],
        ) {
            Err(Refusal::Invalid(Subcommand::PreBackupCheck, InvalidSetting::Host(_))) => {}
            _ => panic!("a bad port is a run error of pre-backup-check"),
        }
    }

    #[test]
    fn artifact_takes_one_path() {
        let Ok(Invocation::Artifact(a)) = resolved(&["artifact", "validate", "/x", "--json"], &[])
        else {
            panic!("not an artifact run")
        };
        assert_eq!(a.sub, ArtifactSubcommand::Validate);
        assert_eq!(a.location, ArtifactLocation::Local(PathBuf::from("/x")));
        assert!(a.json);
        let Ok(Invocation::Artifact(a)) = resolved(&["artifact", "list", "rel/dir"], &[]) else {
            panic!("not an artifact run")
        };
        assert_eq!(a.sub, ArtifactSubcommand::List);
        assert!(!a.json);
        assert!(matches!(
            usage(resolved(&["artifact", "validate"], &[])),
            UsageError::MissingOperand("PATH")
        ));
        assert!(matches!(
            usage(resolved(&["artifact", "validate", ""], &[])),
            UsageError::MissingOperand("PATH")
        ));
        assert!(matches!(
            usage(resolved(&["artifact", "list", "a", "b"], &[])),
            UsageError::ExtraOperand(b, "PATH") if b == "b"
        ));
        match usage(resolved(
            &["artifact", "validate", "ftp://bucket/dep_1"],
            &[],
        )) {
            UsageError::Location(e) => assert_eq!(
                e.to_string(),
                "ftp://bucket/dep_1: unsupported artifact URL scheme \"ftp\" (use s3://, az://, azure:// or gs://)"
            ),
            other => panic!("{other}"),
        }
    }

    const DEPLOYMENT: &[&str] = &["deployment", "-t", "x", "-u", "u", "-p", "p"];

    #[test]
    fn deployment_checks_in_order() {
        assert!(matches!(
            usage(resolved(&["deployment", "-t", "x", "backup"], &[])),
            UsageError::Required("username")
        ));
        assert!(matches!(
            usage(resolved(&[DEPLOYMENT, &["restore"]].concat(), &[])),
            UsageError::DeploymentChoice
        ));
        assert!(matches!(
            usage(resolved(
                &[DEPLOYMENT, &["-d", "d", "restore"]].concat(),
                &[]
            )),
            UsageError::Required("artifact-path")
        ));
        assert!(matches!(
            usage(resolved(
                &[
                    DEPLOYMENT,
                    &["--all-deployments", "backup", "--unsafe-lock-free"]
                ]
                .concat(),
                &[]
            )),
            UsageError::UnsafeLockFreeWithAll
        ));
        assert!(matches!(
            usage(resolved(
                &[DEPLOYMENT, &["--all-deployments", "restore-cleanup"]].concat(),
                &[]
            )),
            UsageError::AllDeploymentsUnsupported
        ));
        assert!(matches!(
            usage(resolved(
                &[DEPLOYMENT, &["-d", "d", "backup"]].concat(),
                &[(DIRECTOR_TASK_TIMEOUT_ENV, "soon")]
            )),
            UsageError::TaskTimeout { .. }
        ));
        match resolved(&[DEPLOYMENT, &["-d", "..", "backup"]].concat(), &[]) {
            Err(Refusal::Invalid(Subcommand::Backup, InvalidSetting::DeploymentName(e))) => {
                assert!(e.to_string().contains("given with --deployment"), "{e}")
            }
            _ => panic!("an unsafe name is a run error"),
        }
    }

    #[test]
    fn deployment_fields_are_typed() {
        let Ok(Invocation::Deployment(d)) = resolved(
            &[
                DEPLOYMENT,
                &["--all-deployments", "backup", "--with-manifest"],
            ]
            .concat(),
            &[
                (DIRECTOR_TASK_TIMEOUT_ENV, "90s"),
                (ALL_PROXY_ENV, "socks5://127.0.0.1:1"),
                ("CA_CERT", "pem"),
            ],
        ) else {
            panic!("not a deployment run")
        };
        assert!(matches!(d.deployments, Deployments::All));
        assert!(d.with_manifest && !d.unsafe_lock_free);
        assert_eq!(d.task_timeout, Duration::from_secs(90));
        assert_eq!(d.ca_cert.as_deref(), Some("pem"));
        assert_eq!(d.common.proxy.as_deref(), Some("socks5://127.0.0.1:1"));
        assert!(d.common.root_runner);
        assert_eq!(d.common.max_parallel, 10);
    }

    fn prune_settings(args: &[&str]) -> PruneSettings {
        let args = [&["artifact", "prune", "/a"], args].concat();
        match resolved(&args, &[]) {
            Ok(Invocation::Artifact(a)) => a.prune.expect("prune settings"),
            Err(Refusal::Usage(r)) => panic!("{args:?}: {}", r.error),
            _ => panic!("{args:?}: not an artifact run"),
        }
    }

    fn prune_refusal(args: &[&str]) -> String {
        let args = [&["artifact", "prune", "/a"], args].concat();
        usage(resolved(&args, &[])).to_string()
    }

    #[test]
    fn backup_takes_keep_flags_and_a_metrics_file_restore_a_metrics_file() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("bbr.prom");
        let metrics = metrics.to_str().unwrap();
        let args = [
            DIRECTOR,
            &[
                "backup",
                "--keep-last",
                "2",
                "--keep-daily",
                "7",
                "--metrics-file",
                metrics,
            ],
        ]
        .concat();
        let Ok(Invocation::Director(d)) = resolved(&args, &[]) else {
            panic!("not a director run")
        };
        let keep = d.common.keep.expect("a policy");
        assert_eq!(keep.keep_last, Count::N(2));
        assert_eq!(keep.keep_daily, Count::N(7));
        assert_eq!(d.common.metrics_file, Some(PathBuf::from(metrics)));
        let args = [
            DIRECTOR,
            &["restore", "-a", "/a", "--metrics-file", metrics],
        ]
        .concat();
        let Ok(Invocation::Director(d)) = resolved(&args, &[]) else {
            panic!("not a director run")
        };
        assert_eq!(d.common.keep, None);
        assert_eq!(d.common.metrics_file, Some(PathBuf::from(metrics)));
        // Bad values are refused before anything runs.
        assert!(matches!(
            usage(resolved(
                &[DIRECTOR, &["backup", "--keep-last", "x"]].concat(),
                &[]
            )),
            UsageError::Keep {
                flag: "keep-last",
                ..
            }
        ));
        assert!(matches!(
            usage(resolved(
                &[
                    DEPLOYMENT,
                    &["--all-deployments", "backup", "--keep-last", "1"]
                ]
                .concat(),
                &[]
            )),
            UsageError::KeepWithAll
        ));
    }

    #[test]
    fn prune_flags_become_a_policy() {
        let s = prune_settings(&[
            "--keep-last",
            "3",
            "--keep-daily=-1",
            "--keep-monthly",
            "unlimited",
            "--keep-within",
            "1y2d",
            "--keep-incomplete-for",
            "3d",
            "-d",
            "redis",
            "--dry-run",
        ]);
        assert_eq!(s.policy.keep_last, Count::N(3));
        assert_eq!(s.policy.keep_daily, Count::Unlimited);
        assert_eq!(s.policy.keep_monthly, Count::Unlimited);
        assert_eq!(s.policy.keep_hourly, Count::N(0));
        assert_eq!(
            s.policy.keep_within.map(|d| d.to_string()),
            Some("1y2d".into())
        );
        assert_eq!(s.policy.keep_incomplete_for, CalendarDuration::days(3));
        assert_eq!(s.policy.deployment.as_deref(), Some("redis"));
        assert!(s.dry_run);
        assert_eq!(s.metrics_file, None);
        // The default grace, the same value twice is not a contradiction.
        let s = prune_settings(&["--keep-weekly", "2", "--keep-weekly", "2"]);
        assert_eq!(s.policy.keep_incomplete_for, CalendarDuration::hours(24));
        assert_eq!(s.policy.keep_weekly, Count::N(2));
    }

    #[test]
    fn bad_prune_flags_are_usage_errors_naming_flag_and_value() {
        assert_eq!(
            prune_refusal(&["--keep-last", "-2"]),
            r#"--keep-last: invalid keep count "-2": expected a number of artifacts, -1 or unlimited"#
        );
        assert_eq!(
            prune_refusal(&["--keep-hourly", "x"]),
            r#"--keep-hourly: invalid keep count "x": expected a number of artifacts, -1 or unlimited"#
        );
        assert!(
            prune_refusal(&["--keep-within", "90s"])
                .starts_with(r#"--keep-within: invalid retention duration "90s": "#)
        );
        assert!(
            prune_refusal(&["--keep-last", "1", "--keep-incomplete-for", "1.5h"])
                .starts_with(r#"--keep-incomplete-for: invalid retention duration "1.5h""#)
        );
        assert_eq!(
            prune_refusal(&["--keep-last", "1", "--keep-last", "2"]),
            r#"--keep-last is given twice with different values ("1" and "2"): give it once."#
        );
        assert_eq!(
            prune_refusal(&["--keep-incomplete-for", "2d"]),
            r#"--keep-incomplete-for "2d" needs at least one other --keep-* flag."#
        );
        assert_eq!(
            prune_refusal(&[]),
            "the policy keeps everything: give at least one --keep-* flag"
        );
        assert_eq!(
            prune_refusal(&["--keep-last", "0"]),
            "the policy keeps everything: give at least one --keep-* flag"
        );
        assert_eq!(
            prune_refusal(&[
                "--keep-last",
                "1",
                "--metrics-file",
                "/nonexistent-dir/bbr.prom"
            ]),
            r#"--metrics-file "/nonexistent-dir/bbr.prom": its directory /nonexistent-dir: No such file or directory (os error 2)"#
        );
        let dir = tempfile::tempdir().unwrap();
        let as_dir = dir.path().to_str().unwrap();
        assert!(
            prune_refusal(&["--keep-last", "1", "--metrics-file", as_dir])
                .ends_with("it is a directory; name a file (e.g. bbr.prom)")
        );
        let file = dir.path().join("m.prom");
        let s = prune_settings(&["--keep-last", "1", "--metrics-file", file.to_str().unwrap()]);
        assert_eq!(s.metrics_file, Some(file));
    }
}
