//! Usage errors: a command line `bbr` refuses before it contacts anything, and how each is
//! shown. The texts and their places are Go bbr's (urfave/cli v1): an unknown command is
//! listed before the help, a flag error follows `Incorrect Usage: ` before the help, and a
//! failed check is a red line on stderr, after the help where Go bbr prints one. Every usage
//! error exits 1.

use crate::connect::KnownHostsError;
use crate::help::HelpTopic;
use crate::values::{DurationError, ScriptTimeoutError};
use bbr_core::error::exit_code;

/// A command line `bbr` refuses.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A command or subcommand that is not in the command table.
    #[error("Error command '{0}' not found")]
    UnknownCommand(String),
    /// A flag the level does not accept (named as written, with one dash).
    #[error("flag provided but not defined: -{0}")]
    UnknownFlag(String),
    /// A value flag at the end of the line.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A required flag absent (after its env vars).
    #[error("--{0} flag is required.")]
    Required(&'static str),
    /// Both or neither of `--deployment` and `--all-deployments`.
    #[error("provide one of '--deployment' or '--all-deployments' flags.")]
    DeploymentChoice,
    /// `backup --unsafe-lock-free` with `--all-deployments`.
    #[error(
        "Cannot use the --unsafe-lock-free flag in conjunction with the --all-deployments flag"
    )]
    UnsafeLockFreeWithAll,
    /// `--keep-*` with `--all-deployments` (prune each with `bbr artifact prune`).
    #[error(
        "Cannot use the --keep-* flags in conjunction with the --all-deployments flag: prune with bbr artifact prune"
    )]
    KeepWithAll,
    /// `--all-deployments` with `restore` or `restore-cleanup`.
    #[error("--all-deployments is only supported for pre-backup-check, backup and backup-cleanup.")]
    AllDeploymentsUnsupported,
    /// `--max-parallel` not a whole number of at least 1.
    #[error("--max-parallel must be a whole number of at least 1.")]
    MaxParallel,
    /// `--script-timeout` malformed.
    #[error("--script-timeout: {0}")]
    ScriptTimeout(ScriptTimeoutError),
    /// [`crate::resolve::DIRECTOR_TASK_TIMEOUT_ENV`] malformed.
    #[error("{env}: {source}", env = crate::resolve::DIRECTOR_TASK_TIMEOUT_ENV)]
    TaskTimeout {
        /// What is wrong with it.
        source: DurationError,
    },
    /// No known_hosts file can be named.
    #[error(transparent)]
    KnownHosts(KnownHostsError),
    /// A subcommand's positional argument is absent or empty (`PATH`).
    #[error("{0} argument is required.")]
    MissingOperand(&'static str),
    /// More positional arguments than the subcommand takes.
    #[error("unexpected argument '{0}': only one {1} is accepted.")]
    ExtraOperand(String, &'static str),
    /// A retention flag whose value is not a count or a duration.
    #[error("--{flag}: {source}")]
    Keep {
        /// The flag, without dashes.
        flag: &'static str,
        /// What is wrong with its value (the message quotes it).
        source: bbr_artifact::retention::RetentionError,
    },
    /// One flag given twice with different values.
    #[error(
        "--{flag} is given twice with different values ({first:?} and {second:?}): give it once."
    )]
    Contradictory {
        /// The flag, without dashes.
        flag: &'static str,
        /// The first value.
        first: String,
        /// The other value.
        second: String,
    },
    /// `--keep-incomplete-for` without any rule to go with it (backup).
    #[error("--keep-incomplete-for {0:?} needs at least one other --keep-* flag.")]
    KeepIncompleteAlone(String),
    /// A policy without a keep rule (`bbr artifact prune`).
    #[error("{0}")]
    EmptyPolicy(bbr_artifact::retention::RetentionError),
    /// `--metrics-file` whose directory cannot take the file.
    #[error("--metrics-file {path:?}: {reason}")]
    MetricsFile {
        /// The value given.
        path: String,
        /// What is wrong with its directory.
        reason: String,
    },
    /// An artifact location bbr cannot use (a URL of another scheme, with credentials, ...).
    #[error(transparent)]
    Location(#[from] crate::artifact::LocationError),
}

impl UsageError {
    /// Shows the error with the help of `topic` (if the error is shown with one) and returns
    /// the exit code.
    pub fn report(&self, topic: Option<HelpTopic>) -> i32 {
        let help = topic.map(HelpTopic::render).unwrap_or_default();
        match self {
            UsageError::UnknownCommand(_) => print!("{self}\n\n{help}"),
            UsageError::UnknownFlag(_) | UsageError::MissingValue(_) => {
                print!("Incorrect Usage: {self}\n\n{help}")
            }
            _ => {
                print!("{help}");
                eprintln!("{}", red(&self.to_string()));
            }
        }
        exit_code::GENERAL
    }
}

/// A usage error and the help shown with it.
#[derive(Debug)]
pub struct Rejection {
    /// The error.
    pub error: UsageError,
    /// The help printed with it, if any.
    pub help: Option<HelpTopic>,
}

impl Rejection {
    /// `error` shown with the help of `topic`.
    pub fn with_help(error: UsageError, topic: HelpTopic) -> Self {
        Self {
            error,
            help: Some(topic),
        }
    }

    /// `error` shown alone.
    pub fn alone(error: UsageError) -> Self {
        Self { error, help: None }
    }

    /// Shows the rejection and returns the exit code.
    pub fn report(&self) -> i32 {
        self.error.report(self.help)
    }
}

/// `text` in red, as urfave/cli prints its errors on a terminal and off one.
pub fn red(text: &str) -> String {
    format!("\x1b[31m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_go_bbrs() {
        assert_eq!(
            UsageError::UnknownFlag("nope".into()).to_string(),
            "flag provided but not defined: -nope"
        );
        assert_eq!(
            UsageError::MissingValue("host".into()).to_string(),
            "flag needs an argument: -host"
        );
        assert_eq!(
            UsageError::Required("artifact-path").to_string(),
            "--artifact-path flag is required."
        );
        assert_eq!(
            UsageError::TaskTimeout {
                source: crate::values::parse_duration("soon").unwrap_err()
            }
            .to_string(),
            r#"BBR_DIRECTOR_TASK_TIMEOUT: time: invalid duration "soon": use e.g. 90s, 15m or 1h30m"#
        );
        assert_eq!(
            UsageError::MissingOperand("PATH").to_string(),
            "PATH argument is required."
        );
        assert_eq!(
            UsageError::ExtraOperand("b".into(), "PATH").to_string(),
            "unexpected argument 'b': only one PATH is accepted."
        );
        assert_eq!(
            UsageError::ScriptTimeout(ScriptTimeoutError::NotAPair("x".into())).to_string(),
            r#"--script-timeout: expected phase=duration, got "x""#
        );
    }
}
