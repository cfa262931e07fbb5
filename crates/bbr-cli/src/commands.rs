//! The command table: the top-level commands (modes) of `bbr`, their subcommands and the
//! one-line usage texts the help prints. The parser ([`crate::parse`]) and the help
//! ([`crate::help`]) read this table and [`crate::flags::FLAGS`]; neither names a command.
//!
//! # Adding a mode or a command
//!
//! A new top-level command (say `bbr inventory --inventory FILE <subcommand>`, or
//! `bbr artifact validate|prune ...`) is a change of tables plus one resolve function and
//! one runner, never of the parser or the help:
//!
//! 1. add a [`CommandId`] variant and a [`CommandDef`] row to [`COMMANDS`] (name, usage line
//!    for `bbr help`, its subcommand rows in help order);
//! 2. add its flags to [`crate::flags::FLAGS`], each with the [`crate::flags::Scope`]s that
//!    accept it (command level or one subcommand), its env vars, default and `required`;
//!    help order is table order;
//! 3. subcommands other than the five workflow ones get their own typed enum, wrapped in a
//!    [`SubcommandId`] variant (as [`ArtifactSubcommand`] is); the parser and the help only
//!    carry and print the row, they never match on the id. A subcommand that takes
//!    positional arguments names them in [`SubcommandDef::operands`]; flags may then be
//!    mixed with them (`validate PATH --json`);
//! 4. write the typed resolve step in [`crate::resolve`] (flags → an `…Invocation` struct,
//!    in the order its checks must be reported) and a variant of
//!    [`crate::resolve::Invocation`];
//! 5. run it from [`crate::execute`].
//!
//! Positional arguments after the subcommand's flags reach the resolve step as
//! [`crate::parse::CommandLine::operands`].

/// A top-level command (a mode of `bbr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandId {
    /// `bbr deployment`: a BOSH deployment reached through the director API.
    Deployment,
    /// `bbr director`: one VM reached over plain SSH.
    Director,
    /// `bbr artifact`: backup artifacts in a directory or an object store, no director or VM
    /// involved.
    Artifact,
}

/// The subcommands of `bbr artifact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactSubcommand {
    /// `validate PATH`: the deep offline check of one artifact.
    Validate,
    /// `list PATH`: the artifacts under a directory.
    List,
    /// `prune PATH --keep-…`: delete the artifacts a retention policy does not keep.
    Prune,
}

impl ArtifactSubcommand {
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            ArtifactSubcommand::Validate => "validate",
            ArtifactSubcommand::List => "list",
            ArtifactSubcommand::Prune => "prune",
        }
    }
}

/// Which subcommand a [`SubcommandDef`] row is, typed per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubcommandId {
    /// A workflow subcommand of `bbr director` / `bbr deployment`.
    Workflow(Subcommand),
    /// A subcommand of `bbr artifact`.
    Artifact(ArtifactSubcommand),
}

impl SubcommandId {
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            SubcommandId::Workflow(s) => s.name(),
            SubcommandId::Artifact(s) => s.name(),
        }
    }
}

/// The workflow subcommands of `bbr director` and `bbr deployment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subcommand {
    /// `pre-backup-check` / `c`.
    PreBackupCheck,
    /// `backup` / `b`.
    Backup,
    /// `restore` / `r`.
    Restore,
    /// `backup-cleanup`.
    BackupCleanup,
    /// `restore-cleanup`.
    RestoreCleanup,
    /// `validate` (ours): check an artifact against the target without restoring it.
    Validate,
}

impl Subcommand {
    /// The canonical name (used in `bbr-*.err.log` and messages).
    pub fn name(self) -> &'static str {
        match self {
            Subcommand::PreBackupCheck => "pre-backup-check",
            Subcommand::Backup => "backup",
            Subcommand::Restore => "restore",
            Subcommand::BackupCleanup => "backup-cleanup",
            Subcommand::RestoreCleanup => "restore-cleanup",
            Subcommand::Validate => "validate",
        }
    }
}

/// One subcommand of a command.
#[derive(Debug)]
pub struct SubcommandDef {
    /// Which subcommand this row is.
    pub id: SubcommandId,
    /// Canonical name first, then aliases (`backup`, `b`).
    pub names: &'static [&'static str],
    /// The usage line of the help (differs per command).
    pub usage: &'static str,
    /// Its positional arguments as the help's usage line shows them (`PATH`); empty when
    /// it takes none. A subcommand with operands accepts its flags before, between and
    /// after them (up to `--`).
    pub operands: &'static str,
    /// The help's DESCRIPTION section (lines separated by `\n`); empty for none.
    pub description: &'static str,
}

/// A workflow subcommand row (no operands, no description).
const fn workflow(
    id: Subcommand,
    names: &'static [&'static str],
    usage: &'static str,
) -> SubcommandDef {
    SubcommandDef {
        id: SubcommandId::Workflow(id),
        names,
        usage,
        operands: "",
        description: "",
    }
}

impl SubcommandDef {
    /// The canonical name.
    pub fn name(&self) -> &'static str {
        self.names[0]
    }
}

/// One top-level command.
#[derive(Debug)]
pub struct CommandDef {
    /// Which command this row is.
    pub id: CommandId,
    /// Its name on the command line.
    pub name: &'static str,
    /// Its usage line (in `bbr help` and in the command's own help).
    pub usage: &'static str,
    /// Its subcommands, in help order.
    pub subcommands: &'static [SubcommandDef],
}

impl CommandDef {
    /// The subcommand called `name` (canonical name or alias).
    pub fn subcommand(&'static self, name: &str) -> Option<&'static SubcommandDef> {
        self.subcommands.iter().find(|s| s.names.contains(&name))
    }
}

/// Every top-level command, in `bbr help` order (Go bbr's).
pub static COMMANDS: &[CommandDef] = &[
    CommandDef {
        id: CommandId::Deployment,
        name: "deployment",
        usage: "Backup BOSH deployments",
        subcommands: &[
            workflow(
                Subcommand::PreBackupCheck,
                &["pre-backup-check", "c"],
                "Check a deployment can be backed up",
            ),
            workflow(Subcommand::Backup, &["backup", "b"], "Backup a deployment"),
            workflow(
                Subcommand::Restore,
                &["restore", "r"],
                "Restore a deployment from backup",
            ),
            workflow(
                Subcommand::BackupCleanup,
                &["backup-cleanup"],
                "Cleanup a deployment after a backup was interrupted",
            ),
            workflow(
                Subcommand::RestoreCleanup,
                &["restore-cleanup"],
                "Cleanup a deployment after a restore was interrupted",
            ),
            workflow(
                Subcommand::Validate,
                &["validate"],
                "Check a backup artifact can be restored to the deployment, without restoring it",
            ),
        ],
    },
    CommandDef {
        id: CommandId::Director,
        name: "director",
        usage: "Backup BOSH director",
        subcommands: &[
            workflow(
                Subcommand::PreBackupCheck,
                &["pre-backup-check", "c"],
                "Check a BOSH Director can be backed up",
            ),
            workflow(
                Subcommand::Backup,
                &["backup", "b"],
                "Backup a BOSH Director",
            ),
            workflow(
                Subcommand::Restore,
                &["restore", "r"],
                "Restore a deployment from backup",
            ),
            workflow(
                Subcommand::BackupCleanup,
                &["backup-cleanup"],
                "Cleanup a director after a backup was interrupted",
            ),
            workflow(
                Subcommand::RestoreCleanup,
                &["restore-cleanup"],
                "Cleanup a director after a restore was interrupted",
            ),
            workflow(
                Subcommand::Validate,
                &["validate"],
                "Check a backup artifact can be restored to the director, without restoring it",
            ),
        ],
    },
    CommandDef {
        id: CommandId::Artifact,
        name: "artifact",
        usage: "Validate, list and prune backup artifacts",
        subcommands: &[
            SubcommandDef {
                id: SubcommandId::Artifact(ArtifactSubcommand::Validate),
                names: &["validate"],
                usage: "Check a backup artifact without restoring it",
                operands: "PATH",
                description: "Checks the artifact directory PATH offline: its metadata, that every tar it lists\nexists, is complete and holds only safe entries, that the files of each tar are the\nones metadata records, and every file's SHA-256. Every problem is listed.\nExits 0 when the artifact is valid, 1 when it is not.\nPATH may be s3://BUCKET/PREFIX, az://CONTAINER/PREFIX or gs://BUCKET/PREFIX, with\ncredentials from the cloud CLIs' environment variables (AWS_*, AZURE_STORAGE_*,\nGOOGLE_APPLICATION_CREDENTIALS, STORAGE_EMULATOR_HOST).",
            },
            SubcommandDef {
                id: SubcommandId::Artifact(ArtifactSubcommand::List),
                names: &["list"],
                usage: "List the backup artifacts in a directory",
                operands: "PATH",
                description: "Lists the artifact directories (<name>_<YYYYMMDDTHHMMSSZ>) directly inside PATH,\nnewest first, with deployment, time, size and whether each is complete\n(has a readable metadata). Other entries are ignored.\nPATH may be an object-store URL, as for validate.",
            },
            SubcommandDef {
                id: SubcommandId::Artifact(ArtifactSubcommand::Prune),
                names: &["prune"],
                usage: "Delete the backup artifacts a retention policy does not keep",
                operands: "PATH",
                description: "Applies the --keep-* rules (restic's forget semantics, ORed) to the artifacts directly\ninside PATH, per deployment, and deletes each artifact not kept, whole, metadata first.\nThe newest complete artifact of a deployment is never deleted; an empty policy deletes\nnothing; an incomplete artifact (no metadata) is deleted only when older than\n--keep-incomplete-for. Prints one line per artifact, newest first per deployment.\nExits 1 when any artifact could not be deleted (the others are).\nPATH may be an object-store URL, as for validate.",
            },
        ],
    },
];

/// The command called `name`.
pub fn command(name: &str) -> Option<&'static CommandDef> {
    COMMANDS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommand_aliases() {
        let director = command("director").unwrap();
        let id = |name| director.subcommand(name).map(|s| s.id);
        assert_eq!(
            id("c"),
            Some(SubcommandId::Workflow(Subcommand::PreBackupCheck))
        );
        assert_eq!(id("b"), Some(SubcommandId::Workflow(Subcommand::Backup)));
        assert_eq!(id("r"), Some(SubcommandId::Workflow(Subcommand::Restore)));
        let artifact = command("artifact").unwrap();
        assert_eq!(
            artifact.subcommand("validate").map(|s| s.id),
            Some(SubcommandId::Artifact(ArtifactSubcommand::Validate))
        );
        assert_eq!(id("x"), None);
        assert!(command("nope").is_none());
    }

    #[test]
    fn canonical_names_match_the_ids() {
        for c in COMMANDS {
            for s in c.subcommands {
                assert_eq!(s.name(), s.id.name(), "{} {}", c.name, s.name());
            }
        }
    }
}
