//! The flag table: every flag of every command and subcommand, declared once. The parser
//! ([`crate::parse`]) accepts exactly the rows whose [`FlagDef::accepted_by`] names the level
//! it parses and fills them from their env vars; the help ([`crate::help`]) prints the same
//! rows in table order; the resolve step ([`crate::resolve`]) reads values by [`FlagId`],
//! never by name.
//!
//! One flag may need two rows when its help text differs between the places that accept it
//! (`--username` is an SSH user in director mode and a director user in deployment mode);
//! both rows carry the same [`FlagId`]. Keep rows of one level in that level's help order
//! (Go bbr's): the unit tests below pin the order through the help texts.

use crate::commands::{ArtifactSubcommand, CommandId, Subcommand, SubcommandId};

/// What a flag means, independent of its spelling and of which row declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagId {
    /// `--host` (director).
    Host,
    /// `--username` / `-u`.
    Username,
    /// `--private-key-path` / `--key` (director).
    PrivateKeyPath,
    /// `--target` / `-t` (deployment).
    Target,
    /// `--password` / `-p` (deployment).
    Password,
    /// `--deployment` / `-d` (deployment).
    Deployment,
    /// `--ca-cert` (deployment).
    CaCert,
    /// `--debug`.
    Debug,
    /// `--known-hosts` (director).
    KnownHosts,
    /// `--all-deployments` (deployment).
    AllDeployments,
    /// `--max-parallel`.
    MaxParallel,
    /// `--script-timeout`.
    ScriptTimeout,
    /// `--with-manifest` (deployment backup).
    WithManifest,
    /// `--artifact-path` / `-a` (backup, restore).
    ArtifactPath,
    /// `--unsafe-lock-free` (deployment backup).
    UnsafeLockFree,
    /// `--json` (artifact validate, list, prune).
    Json,
    /// `--keep-last` (artifact prune, backup).
    KeepLast,
    /// `--keep-hourly`.
    KeepHourly,
    /// `--keep-daily`.
    KeepDaily,
    /// `--keep-weekly`.
    KeepWeekly,
    /// `--keep-monthly`.
    KeepMonthly,
    /// `--keep-yearly`.
    KeepYearly,
    /// `--keep-within`.
    KeepWithin,
    /// `--keep-incomplete-for`.
    KeepIncompleteFor,
    /// `--dry-run` (artifact prune).
    DryRun,
    /// `--metrics-file` (backup, restore, artifact prune).
    MetricsFile,
}

/// The scopes of the retention flags: `bbr artifact prune`.
const KEEP_SCOPES: &[Scope] = &[
    S(ART, A(ArtifactSubcommand::Prune)),
    S(DIR, W(Subcommand::Backup)),
    S(DEP, W(Subcommand::Backup)),
];

/// The scopes of `--metrics-file`.
const METRICS_SCOPES: &[Scope] = &[
    S(ART, A(ArtifactSubcommand::Prune)),
    S(DIR, W(Subcommand::Backup)),
    S(DEP, W(Subcommand::Backup)),
    S(DIR, W(Subcommand::Restore)),
    S(DEP, W(Subcommand::Restore)),
];

/// The retention flags (`--keep-*`) in help order, with the spelling each is known by.
pub const KEEP_FLAGS: &[(FlagId, &str)] = &[
    (FlagId::KeepLast, "keep-last"),
    (FlagId::KeepHourly, "keep-hourly"),
    (FlagId::KeepDaily, "keep-daily"),
    (FlagId::KeepWeekly, "keep-weekly"),
    (FlagId::KeepMonthly, "keep-monthly"),
    (FlagId::KeepYearly, "keep-yearly"),
];

/// A level of the command line that accepts flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `bbr <command> [these flags] <subcommand>`.
    Command(CommandId),
    /// `bbr <command> ... <subcommand> [these flags]`.
    Subcommand(CommandId, SubcommandId),
}

/// One flag as a level accepts it.
#[derive(Debug)]
pub struct FlagDef {
    /// What the flag means.
    pub id: FlagId,
    /// Canonical name first, then aliases, without dashes. Every name may be written with
    /// one or two dashes (urfave/cli); help prints one-letter names with one dash.
    pub names: &'static [&'static str],
    /// False for booleans (`--debug`, `--debug=false`).
    pub takes_value: bool,
    /// Environment variables consulted, in order, when the flag is not given.
    pub env: &'static [&'static str],
    /// Help text (without default and env hint, which are appended).
    pub help: &'static str,
    /// The `(default: …)` shown in the help, if any.
    pub default: Option<&'static str>,
    /// Refused when absent (after the env vars); the resolve step decides when it checks.
    pub required: bool,
    /// The levels that accept this row.
    pub accepted_by: &'static [Scope],
}

impl FlagDef {
    /// The canonical name.
    pub fn name(&self) -> &'static str {
        self.names[0]
    }
}

use CommandId::{Artifact as ART, Deployment as DEP, Director as DIR};
use Scope::{Command as C, Subcommand as S};
use SubcommandId::{Artifact as A, Workflow as W};

const fn flag(id: FlagId, names: &'static [&'static str], help: &'static str) -> FlagDef {
    FlagDef {
        id,
        names,
        takes_value: true,
        env: &[],
        help,
        default: None,
        required: false,
        accepted_by: &[],
    }
}

/// Every flag. Within each level, rows are in that level's help order.
pub static FLAGS: &[FlagDef] = &[
    // `bbr director` flags.
    FlagDef {
        required: true,
        accepted_by: &[C(DIR)],
        ..flag(
            FlagId::Host,
            &["host"],
            "BOSH Director hostname, with an optional port. Port defaults to 22",
        )
    },
    FlagDef {
        required: true,
        accepted_by: &[C(DIR)],
        ..flag(
            FlagId::Username,
            &["username", "u"],
            "BOSH Director SSH username",
        )
    },
    FlagDef {
        required: true,
        accepted_by: &[C(DIR)],
        ..flag(
            FlagId::PrivateKeyPath,
            &["private-key-path", "key"],
            "BOSH Director SSH private key",
        )
    },
    // `bbr deployment` flags.
    FlagDef {
        env: &["BOSH_ENVIRONMENT"],
        required: true,
        accepted_by: &[C(DEP)],
        ..flag(FlagId::Target, &["target", "t"], "BOSH Director URL")
    },
    FlagDef {
        env: &["BOSH_CLIENT"],
        required: true,
        accepted_by: &[C(DEP)],
        ..flag(
            FlagId::Username,
            &["username", "u"],
            "BOSH Director username",
        )
    },
    FlagDef {
        env: &["BOSH_CLIENT_SECRET"],
        required: true,
        accepted_by: &[C(DEP)],
        ..flag(
            FlagId::Password,
            &["password", "p"],
            "BOSH Director password",
        )
    },
    FlagDef {
        env: &["BOSH_DEPLOYMENT"],
        accepted_by: &[C(DEP)],
        ..flag(
            FlagId::Deployment,
            &["deployment", "d"],
            "Name of BOSH deployment. Omit if '--all-deployments' is provided",
        )
    },
    FlagDef {
        env: &["CA_CERT", "BOSH_CA_CERT"],
        accepted_by: &[C(DEP)],
        ..flag(
            FlagId::CaCert,
            &["ca-cert"],
            "Path or value of BOSH Director custom CA certificate",
        )
    },
    // Both modes.
    FlagDef {
        takes_value: false,
        accepted_by: &[C(DIR), C(DEP)],
        ..flag(FlagId::Debug, &["debug"], "Enable debug logs")
    },
    FlagDef {
        default: Some("~/.ssh/known_hosts"),
        accepted_by: &[C(DIR)],
        ..flag(
            FlagId::KnownHosts,
            &["known-hosts"],
            "known_hosts file used to verify the Director's host key; an unknown host is added with a warning, a changed key is refused",
        )
    },
    FlagDef {
        takes_value: false,
        accepted_by: &[C(DEP)],
        ..flag(
            FlagId::AllDeployments,
            &["all-deployments"],
            "Run command for all deployments. Omit if '--deployment' is provided. Currently only supported for: pre-backup-check, backup and backup-cleanup",
        )
    },
    FlagDef {
        default: Some("10"),
        accepted_by: &[C(DIR), C(DEP)],
        ..flag(
            FlagId::MaxParallel,
            &["max-parallel"],
            "How many scripts or transfers run at once",
        )
    },
    FlagDef {
        default: Some("none"),
        accepted_by: &[C(DIR)],
        ..flag(
            FlagId::ScriptTimeout,
            &["script-timeout"],
            "Time limit for scripts: one for all (30m) or per phase (backup=2h,lock=5m,unlock=5m; phases: all, lock, unlock or a script name). A script over its limit has its process group killed; jobs are then unlocked",
        )
    },
    FlagDef {
        default: Some("none"),
        accepted_by: &[C(DEP)],
        ..flag(
            FlagId::ScriptTimeout,
            &["script-timeout"],
            "Time limit for scripts: one for all (30m) or per phase (backup=2h,lock=5m,unlock=5m)",
        )
    },
    // Subcommand flags.
    FlagDef {
        takes_value: false,
        accepted_by: &[S(DEP, W(Subcommand::Backup))],
        ..flag(
            FlagId::WithManifest,
            &["with-manifest"],
            "Download the deployment manifest",
        )
    },
    FlagDef {
        accepted_by: &[S(DIR, W(Subcommand::Backup)), S(DEP, W(Subcommand::Backup))],
        ..flag(
            FlagId::ArtifactPath,
            &["artifact-path", "a"],
            "Specify an optional path to save the backup artifacts to",
        )
    },
    FlagDef {
        required: true,
        accepted_by: &[
            S(DIR, W(Subcommand::Restore)),
            S(DEP, W(Subcommand::Restore)),
        ],
        ..flag(
            FlagId::ArtifactPath,
            &["artifact-path", "a"],
            "Path to the artifact to restore",
        )
    },
    FlagDef {
        required: true,
        accepted_by: &[
            S(DIR, W(Subcommand::Validate)),
            S(DEP, W(Subcommand::Validate)),
        ],
        ..flag(
            FlagId::ArtifactPath,
            &["artifact-path", "a"],
            "Path or URL of the artifact to check",
        )
    },
    FlagDef {
        takes_value: false,
        accepted_by: &[S(DEP, W(Subcommand::Backup))],
        ..flag(
            FlagId::UnsafeLockFree,
            &["unsafe-lock-free"],
            "Experimental feature to skip locking steps when backing up the BOSH deployment. Cannot be used in combination with the all-deployments flag",
        )
    },
    FlagDef {
        takes_value: false,
        accepted_by: &[S(ART, A(ArtifactSubcommand::Validate))],
        ..flag(
            FlagId::Json,
            &["json"],
            "Print the report as JSON on stdout (and nothing else)",
        )
    },
    FlagDef {
        takes_value: false,
        accepted_by: &[S(ART, A(ArtifactSubcommand::List))],
        ..flag(FlagId::Json, &["json"], "Print the list as JSON on stdout")
    },
    // Retention (`artifact prune`).
    FlagDef {
        accepted_by: KEEP_SCOPES,
        ..flag(
            FlagId::KeepLast,
            &["keep-last"],
            "Keep the N newest complete artifacts of each deployment (-1 or unlimited: all)",
        )
    },
    FlagDef {
        accepted_by: KEEP_SCOPES,
        ..flag(
            FlagId::KeepHourly,
            &["keep-hourly"],
            "Keep the newest artifact of each of the last N UTC hours that have one",
        )
    },
    FlagDef {
        accepted_by: KEEP_SCOPES,
        ..flag(
            FlagId::KeepDaily,
            &["keep-daily"],
            "Keep the newest artifact of each of the last N UTC days that have one",
        )
    },
    FlagDef {
        accepted_by: KEEP_SCOPES,
        ..flag(
            FlagId::KeepWeekly,
            &["keep-weekly"],
            "Keep the newest artifact of each of the last N ISO weeks that have one",
        )
    },
    FlagDef {
        accepted_by: KEEP_SCOPES,
        ..flag(
            FlagId::KeepMonthly,
            &["keep-monthly"],
            "Keep the newest artifact of each of the last N UTC months that have one",
        )
    },
    FlagDef {
        accepted_by: KEEP_SCOPES,
        ..flag(
            FlagId::KeepYearly,
            &["keep-yearly"],
            "Keep the newest artifact of each of the last N UTC years that have one",
        )
    },
    FlagDef {
        accepted_by: KEEP_SCOPES,
        ..flag(
            FlagId::KeepWithin,
            &["keep-within"],
            "Keep every complete artifact within DURATION of the newest (2y5m7d3h: y years, m months, d days, h hours)",
        )
    },
    FlagDef {
        default: Some("24h"),
        accepted_by: KEEP_SCOPES,
        ..flag(
            FlagId::KeepIncompleteFor,
            &["keep-incomplete-for"],
            "Keep an incomplete artifact (no metadata, perhaps a backup in progress) until it is older than DURATION",
        )
    },
    FlagDef {
        accepted_by: &[S(ART, A(ArtifactSubcommand::Prune))],
        ..flag(
            FlagId::Deployment,
            &["deployment", "d"],
            "Prune only this deployment's artifacts (default: every deployment, each on its own)",
        )
    },
    FlagDef {
        takes_value: false,
        accepted_by: &[S(ART, A(ArtifactSubcommand::Prune))],
        ..flag(
            FlagId::DryRun,
            &["dry-run"],
            "List what would be deleted and why each artifact is kept, delete nothing",
        )
    },
    FlagDef {
        takes_value: false,
        accepted_by: &[S(ART, A(ArtifactSubcommand::Prune))],
        ..flag(
            FlagId::Json,
            &["json"],
            "Print the decisions and deletions as JSON on stdout",
        )
    },
    FlagDef {
        accepted_by: METRICS_SCOPES,
        ..flag(
            FlagId::MetricsFile,
            &["metrics-file"],
            "Write the run's metrics to this Prometheus text file (node_exporter textfile collector)",
        )
    },
];

/// The rows `scope` accepts, in help order.
pub fn accepted_by(scope: Scope) -> impl Iterator<Item = &'static FlagDef> {
    FLAGS.iter().filter(move |f| f.accepted_by.contains(&scope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::COMMANDS;

    fn scopes() -> Vec<Scope> {
        let mut out = Vec::new();
        for c in COMMANDS {
            out.push(Scope::Command(c.id));
            for s in c.subcommands {
                out.push(Scope::Subcommand(c.id, s.id));
            }
        }
        out
    }

    #[test]
    fn each_level_has_each_name_and_id_once() {
        for scope in scopes() {
            let rows: Vec<&FlagDef> = accepted_by(scope).collect();
            for (i, a) in rows.iter().enumerate() {
                for b in &rows[i + 1..] {
                    assert_ne!(a.id, b.id, "{scope:?}: {} twice", a.name());
                    for n in a.names {
                        assert!(!b.names.contains(n), "{scope:?}: -{n} twice");
                        assert!(*n != "h" && *n != "help", "-{n} is the help flag");
                    }
                }
            }
        }
    }

    #[test]
    fn every_row_is_accepted_somewhere() {
        for f in FLAGS {
            assert!(
                !f.accepted_by.is_empty(),
                "{} is accepted nowhere",
                f.name()
            );
            assert!(
                f.takes_value || !f.required,
                "{}: a required boolean",
                f.name()
            );
        }
    }
}
