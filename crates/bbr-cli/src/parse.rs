//! Command-line parsing with urfave/cli v1 semantics, as Go bbr has them, driven entirely by
//! the command table ([`crate::commands`]) and the flag table ([`crate::flags`]): command
//! flags go before the subcommand, long flags may be written with one or two dashes,
//! `--flag=value` and `--flag value` are both accepted, and `-h`/`--help` anywhere asks for
//! help.
//!
//! clap is not used because Go bbr's help layout, its `--<flag> flag is required.` errors
//! (printed after the command help) and its single-dash long flags are part of the contract
//! (docs/cli.md, "Flag syntax").

use crate::commands::{self, CommandDef, SubcommandDef};
use crate::flags::{self, FlagDef, FlagId, Scope};
use crate::help::HelpTopic;
use crate::usage::{Rejection, UsageError};

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    /// Print this help and exit with this code (0 when help was asked for, 1 when a
    /// command was given without a subcommand).
    Help(HelpTopic, i32),
    /// `bbr version`.
    Version,
    /// Run a subcommand.
    Run(CommandLine),
}

/// A parsed `bbr <command> [flags] <subcommand> [flags] [operands]`.
#[derive(Debug)]
pub struct CommandLine {
    /// The command's row.
    pub command: &'static CommandDef,
    /// The subcommand's row.
    pub sub: &'static SubcommandDef,
    /// Command-level flags, env fallbacks applied.
    pub flags: FlagValues,
    /// Subcommand-level flags, env fallbacks applied.
    pub sub_flags: FlagValues,
    /// The positional arguments: for a subcommand with [`SubcommandDef::operands`], every
    /// non-flag argument (flags may come between them); for the others, everything after
    /// the subcommand's flags.
    pub operands: Vec<String>,
}

/// The flags given at one level, by meaning.
#[derive(Debug, Default, Clone)]
pub struct FlagValues {
    values: Vec<(&'static FlagDef, String)>,
}

impl FlagValues {
    /// The value of `id`, if given (or found in its env vars) and non-empty; the last one
    /// given wins.
    pub fn get(&self, id: FlagId) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(f, _)| f.id == id)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value given for `id`, in command-line order (env values included).
    pub fn all(&self, id: FlagId) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(f, _)| f.id == id)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// True when a boolean flag was given (and not as `=false`).
    pub fn is_set(&self, id: FlagId) -> bool {
        self.get(id).is_some_and(|v| v != "false")
    }

    /// The first required row of this level that has no value, in table order.
    pub fn missing_required(&self, scope: Scope) -> Option<&'static FlagDef> {
        flags::accepted_by(scope).find(|f| f.required && self.get(f.id).is_none())
    }

    /// Fills rows of `scope` that were not given from the first set (non-empty) env var of
    /// each.
    fn with_env(mut self, scope: Scope, env: &dyn Fn(&str) -> Option<String>) -> Self {
        for f in flags::accepted_by(scope) {
            if self.get(f.id).is_none()
                && let Some(value) = f.env.iter().find_map(|v| env(v).filter(|x| !x.is_empty()))
            {
                self.values.push((f, value));
            }
        }
        self
    }
}

/// One level of flags parsed.
#[derive(Debug)]
struct Level {
    flags: FlagValues,
    /// The first non-flag argument and everything after it.
    rest: Vec<String>,
    /// `-h`/`--help` was among the flags.
    help: bool,
    /// The flags ended at `--` (so `rest` holds operands only).
    ended_by_double_dash: bool,
}

/// Parses flags of `scope` from the front of `args` until the first non-flag argument.
fn parse_level(scope: Scope, args: &[String]) -> Result<Level, UsageError> {
    let mut flags = FlagValues::default();
    let mut help = false;
    let mut ended_by_double_dash = false;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            ended_by_double_dash = true;
            break;
        }
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            break;
        };
        if stripped.is_empty() {
            break;
        }
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (stripped, None),
        };
        if name == "help" || name == "h" {
            help = true;
            i += 1;
            continue;
        }
        let Some(def) = flags::accepted_by(scope).find(|f| f.names.contains(&name)) else {
            return Err(UsageError::UnknownFlag(name.to_string()));
        };
        let value = if !def.takes_value {
            inline.unwrap_or_else(|| "true".to_string())
        } else if let Some(v) = inline {
            v
        } else {
            i += 1;
            match args.get(i) {
                Some(v) => v.clone(),
                None => return Err(UsageError::MissingValue(name.to_string())),
            }
        };
        flags.values.push((def, value));
        i += 1;
    }
    Ok(Level {
        flags,
        rest: args[i..].to_vec(),
        help,
        ended_by_double_dash,
    })
}

/// Parses flags of `scope` anywhere among `args` (up to `--`), for subcommands that take
/// operands: `rest` is then the operands, in order.
fn parse_interspersed(scope: Scope, args: &[String]) -> Result<Level, UsageError> {
    let mut all = Level {
        flags: FlagValues::default(),
        rest: Vec::new(),
        help: false,
        ended_by_double_dash: false,
    };
    let mut args = args;
    loop {
        let level = parse_level(scope, args)?;
        all.flags.values.extend(level.flags.values);
        all.help |= level.help;
        if level.ended_by_double_dash {
            all.rest.extend(level.rest);
            return Ok(all);
        }
        let consumed = args.len() - level.rest.len();
        let Some(operand) = args.get(consumed) else {
            return Ok(all);
        };
        all.rest.push(operand.clone());
        args = &args[consumed + 1..];
    }
}

/// Parses the arguments after the program name; `env` looks up environment variables for
/// flags that have them.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Request, Rejection> {
    let Some(first) = args.first() else {
        return Ok(Request::Help(HelpTopic::App, 0));
    };
    let command = match first.as_str() {
        "help" | "h" | "--help" | "-h" => return Ok(Request::Help(HelpTopic::App, 0)),
        "version" | "v" | "--version" | "-v" => return Ok(Request::Version),
        name => commands::command(name).ok_or_else(|| {
            Rejection::with_help(UsageError::UnknownCommand(name.into()), HelpTopic::App)
        })?,
    };
    let command_help = HelpTopic::Command(command);
    let level = parse_level(Scope::Command(command.id), &args[1..])
        .map_err(|e| Rejection::with_help(e, command_help))?;
    let Some(sub_name) = level.rest.first() else {
        return Ok(Request::Help(command_help, if level.help { 0 } else { 1 }));
    };
    let sub = command.subcommand(sub_name).ok_or_else(|| {
        Rejection::with_help(UsageError::UnknownCommand(sub_name.clone()), command_help)
    })?;
    let sub_help = HelpTopic::Subcommand(command, sub);
    let sub_scope = Scope::Subcommand(command.id, sub.id);
    let sub_args = &level.rest[1..];
    let sub_level = if sub.operands.is_empty() {
        parse_level(sub_scope, sub_args)
    } else {
        parse_interspersed(sub_scope, sub_args)
    }
    .map_err(|e| Rejection::with_help(e, sub_help))?;
    if sub_level.help {
        return Ok(Request::Help(sub_help, 0));
    }
    if level.help {
        return Ok(Request::Help(command_help, 0));
    }
    Ok(Request::Run(CommandLine {
        command,
        sub,
        flags: level.flags.with_env(Scope::Command(command.id), env),
        sub_flags: sub_level.flags.with_env(sub_scope, env),
        operands: sub_level.rest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{ArtifactSubcommand, CommandId, Subcommand, SubcommandId};

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn line(args: &[&str], env: &dyn Fn(&str) -> Option<String>) -> CommandLine {
        match parse(&strings(args), env) {
            Ok(Request::Run(l)) => l,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn refused(args: &[&str]) -> UsageError {
        match parse(&strings(args), &no_env) {
            Err(r) => r.error,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn flags_in_go_styles() {
        let l = line(
            &[
                "director", "--host", "h:2222", "-u", "vcap", "-key=k", "--debug", "backup", "-a",
                "x",
            ],
            &no_env,
        );
        assert_eq!(l.command.id, CommandId::Director);
        assert_eq!(l.sub.id, SubcommandId::Workflow(Subcommand::Backup));
        assert_eq!(l.flags.get(FlagId::Host), Some("h:2222"));
        assert_eq!(l.flags.get(FlagId::Username), Some("vcap"));
        assert_eq!(l.flags.get(FlagId::PrivateKeyPath), Some("k"));
        assert!(l.flags.is_set(FlagId::Debug));
        assert_eq!(l.sub_flags.get(FlagId::ArtifactPath), Some("x"));
        assert!(matches!(
            refused(&["director", "--bogus"]),
            UsageError::UnknownFlag(n) if n == "bogus"
        ));
        assert!(matches!(
            refused(&["director", "--host"]),
            UsageError::MissingValue(n) if n == "host"
        ));
        assert!(matches!(
            parse(&strings(&["director", "--help"]), &no_env),
            Ok(Request::Help(HelpTopic::Command(_), 0))
        ));
        assert!(matches!(
            parse(&strings(&["director"]), &no_env),
            Ok(Request::Help(HelpTopic::Command(_), 1))
        ));
        assert!(matches!(
            parse(
                &strings(&["director", "--host", "h", "backup", "-h"]),
                &no_env
            ),
            Ok(Request::Help(HelpTopic::Subcommand(_, _), 0))
        ));
        assert!(matches!(
            refused(&["director", "bogus"]),
            UsageError::UnknownCommand(n) if n == "bogus"
        ));
        // A flag of the other level is unknown there.
        assert!(matches!(
            refused(&["director", "--host", "h", "backup", "--host", "x"]),
            UsageError::UnknownFlag(_)
        ));
        assert!(matches!(
            refused(&["director", "--target", "h", "backup"]),
            UsageError::UnknownFlag(_)
        ));
    }

    #[test]
    fn operands_mix_with_flags_until_double_dash() {
        for args in [
            &["artifact", "validate", "--json", "/a"][..],
            &["artifact", "validate", "/a", "--json"],
            &["artifact", "validate", "-json=true", "/a"],
        ] {
            let l = line(args, &no_env);
            assert_eq!(l.command.id, CommandId::Artifact);
            assert_eq!(
                l.sub.id,
                SubcommandId::Artifact(ArtifactSubcommand::Validate)
            );
            assert!(l.sub_flags.is_set(FlagId::Json), "{args:?}");
            assert_eq!(l.operands, ["/a"], "{args:?}");
        }
        let l = line(&["artifact", "list", "a", "--", "--json", "b"], &no_env);
        assert!(!l.sub_flags.is_set(FlagId::Json));
        assert_eq!(l.operands, ["a", "--json", "b"]);
        let l = line(&["artifact", "list", "a", "b"], &no_env);
        assert_eq!(l.operands, ["a", "b"]);
        assert!(matches!(
            refused(&["artifact", "validate", "/a", "--bogus"]),
            UsageError::UnknownFlag(n) if n == "bogus"
        ));
        assert!(matches!(
            parse(&strings(&["artifact", "list", "/a", "-h"]), &no_env),
            Ok(Request::Help(HelpTopic::Subcommand(_, _), 0))
        ));
        // Workflow subcommands keep urfave's rule: flags stop at the first operand.
        let l = line(
            &["director", "restore", "x", "--artifact-path", "p"],
            &no_env,
        );
        assert_eq!(l.sub_flags.get(FlagId::ArtifactPath), None);
        assert_eq!(l.operands, ["x", "--artifact-path", "p"]);
    }

    #[test]
    fn env_fallbacks_and_ca_cert_precedence() {
        let env = |k: &str| match k {
            "BOSH_ENVIRONMENT" => Some("10.0.0.6".to_string()),
            "BOSH_DEPLOYMENT" => Some("env-dep".to_string()),
            "CA_CERT" => Some("first".to_string()),
            "BOSH_CA_CERT" => Some("second".to_string()),
            "BOSH_CLIENT" => Some(String::new()),
            _ => None,
        };
        let f = line(&["deployment", "-d", "flag-dep", "backup"], &env).flags;
        assert_eq!(f.get(FlagId::Target), Some("10.0.0.6"));
        assert_eq!(
            f.get(FlagId::Deployment),
            Some("flag-dep"),
            "a flag beats its variable"
        );
        assert_eq!(
            f.get(FlagId::CaCert),
            Some("first"),
            "CA_CERT beats BOSH_CA_CERT"
        );
        assert_eq!(f.get(FlagId::Password), None);
        assert_eq!(f.get(FlagId::Username), None, "empty counts as unset");
        assert_eq!(
            f.missing_required(Scope::Command(CommandId::Deployment))
                .map(|f| f.name()),
            Some("username")
        );
        // Director mode has no env vars.
        let d = line(&["director", "backup"], &env).flags;
        assert_eq!(d.get(FlagId::Target), None);
    }

    #[test]
    fn last_flag_wins_and_false_is_off() {
        let l = line(
            &[
                "director",
                "--debug=false",
                "--max-parallel",
                "3",
                "-max-parallel=4",
                "c",
            ],
            &no_env,
        );
        assert!(!l.flags.is_set(FlagId::Debug));
        assert_eq!(l.flags.get(FlagId::MaxParallel), Some("4"));
    }
}
