//! Help texts in Go bbr's (urfave/cli v1) layout, rendered from the command table
//! ([`crate::commands`]) and the flag table ([`crate::flags`]).

use crate::commands::{COMMANDS, CommandDef, SubcommandDef};
use crate::flags::{self, FlagDef, Scope};

/// Which help to print.
#[derive(Debug, Clone, Copy)]
pub enum HelpTopic {
    /// `bbr help`.
    App,
    /// `bbr <command> --help`.
    Command(&'static CommandDef),
    /// `bbr <command> <subcommand> --help`.
    Subcommand(&'static CommandDef, &'static SubcommandDef),
}

impl HelpTopic {
    /// The help text.
    pub fn render(self) -> String {
        match self {
            HelpTopic::App => app_help(crate::VERSION),
            HelpTopic::Command(c) => command_help(c),
            HelpTopic::Subcommand(c, s) => subcommand_help(c, s),
        }
    }
}

/// Aligns `(left, right)` rows like Go's tabwriter (two spaces of padding).
fn columns(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(l, r)| format!("   {l:width$}  {r}").trim_end().to_string() + "\n")
        .collect()
}

/// The help row of a flag: `--name value, -n value` and its text with default and env hint.
fn flag_row(f: &FlagDef) -> (String, String) {
    let names: Vec<String> = f
        .names
        .iter()
        .map(|n| {
            let dashes = if n.len() == 1 { "-" } else { "--" };
            let value = if f.takes_value { " value" } else { "" };
            format!("{dashes}{n}{value}")
        })
        .collect();
    let mut text = f.help.to_string();
    if let Some(d) = f.default {
        text.push_str(&format!(" (default: {d})"));
    }
    if !f.env.is_empty() {
        let vars: Vec<String> = f.env.iter().map(|v| format!("${v}")).collect();
        text.push_str(&format!(" [{}]", vars.join(", ")));
    }
    (names.join(", "), text)
}

fn flag_rows(scope: Scope) -> Vec<(String, String)> {
    flags::accepted_by(scope).map(flag_row).collect()
}

/// `bbr help`.
pub fn app_help(version: &str) -> String {
    let mut rows: Vec<(String, String)> = COMMANDS
        .iter()
        .map(|c| (c.name.to_string(), c.usage.to_string()))
        .collect();
    rows.push((
        "help, h".into(),
        "Shows a list of commands or help for one command".into(),
    ));
    rows.push(("version, v".into(), "Shows the version".into()));
    let commands = columns(&rows);
    format!(
        "NAME:\n   bbr - BOSH Backup and Restore\n\nUSAGE:\n   bbr command [command options] [subcommand] [subcommand options]\n\nVERSION:\n   {version}\n\nCOMMANDS:\n{commands}\nSUBCOMMANDS:\n   backup\n   backup-cleanup\n   restore\n   restore-cleanup\n   pre-backup-check\n{ARTIFACT_PATHS_HELP}"
    )
}

/// The end of `bbr help`: the object-store forms of `--artifact-path` and the variables
/// their credentials come from (ours; Go bbr has no such section).
const ARTIFACT_PATHS_HELP: &str = "\nARTIFACT PATHS:\n   --artifact-path (backup, restore, validate) and bbr artifact's PATH take a local\n   directory or s3://BUCKET/PREFIX, az://CONTAINER/PREFIX (also azure://), gs://BUCKET/PREFIX.\n\nENVIRONMENT:\n   S3     AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION\n          (else AWS_DEFAULT_REGION), AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (http or\n          https), AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, AWS_CA_BUNDLE (a PEM file)\n   Azure  AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY\n          or AZURE_STORAGE_SAS_TOKEN, and AZURE_STORAGE_BLOB_ENDPOINT\n   GCS    GOOGLE_APPLICATION_CREDENTIALS (a service-account key file), or\n          STORAGE_EMULATOR_HOST (an emulator; no credentials sent)\n";

/// `bbr <command> --help`.
pub fn command_help(c: &CommandDef) -> String {
    let subs: Vec<(String, String)> = c
        .subcommands
        .iter()
        .map(|s| (s.names.join(", "), s.usage.to_string()))
        .collect();
    let options = flag_rows(Scope::Command(c.id));
    let mut out = format!(
        "NAME:\n   bbr {name} - {usage}\n\nUSAGE:\n   bbr {name} {opts}subcommand [subcommand options]\n\nSUBCOMMANDS:\n{subs}",
        name = c.name,
        usage = c.usage,
        opts = if options.is_empty() { "" } else { "[options] " },
        subs = columns(&subs),
    );
    if !options.is_empty() {
        out.push_str(&format!("\nOPTIONS:\n{}", columns(&options)));
    }
    out
}

/// `bbr <command> <subcommand> --help`.
pub fn subcommand_help(c: &CommandDef, s: &SubcommandDef) -> String {
    let options = flag_rows(Scope::Subcommand(c.id, s.id));
    let mut out = format!(
        "NAME:\n   bbr {command} {sub} - {usage}\n\nUSAGE:\n   bbr {command} {sub}{options}{operands}\n",
        command = c.name,
        sub = s.name(),
        usage = s.usage,
        options = if options.is_empty() { "" } else { " [options]" },
        operands = if s.operands.is_empty() {
            String::new()
        } else {
            format!(" {}", s.operands)
        },
    );
    if !s.description.is_empty() {
        out.push_str("\nDESCRIPTION:\n");
        for line in s.description.lines() {
            out.push_str(&format!("   {line}\n"));
        }
    }
    if !options.is_empty() {
        out.push_str(&format!("\nOPTIONS:\n{}", columns(&options)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::command;

    fn topic(args: &[&str]) -> String {
        let c = command(args[0]).unwrap();
        match args.get(1) {
            None => HelpTopic::Command(c).render(),
            Some(s) => HelpTopic::Subcommand(c, c.subcommand(s).unwrap()).render(),
        }
    }

    #[test]
    fn app_help_has_the_asserted_snippets() {
        let h = app_help("1.2.3");
        assert!(h.contains(
            "USAGE:\n   bbr command [command options] [subcommand] [subcommand options]"
        ));
        assert!(h.contains("SUBCOMMANDS:\n   backup\n   backup-cleanup\n   restore\n   restore-cleanup\n   pre-backup-check"));
    }

    #[test]
    fn app_help_whole() {
        assert_eq!(
            app_help("1.2.3"),
            format!(
                "NAME:\n   bbr - BOSH Backup and Restore\n\nUSAGE:\n   bbr command [command options] [subcommand] [subcommand options]\n\nVERSION:\n   1.2.3\n\nCOMMANDS:\n   deployment  Backup BOSH deployments\n   director    Backup BOSH director\n   artifact    Validate, list and prune backup artifacts\n   help, h     Shows a list of commands or help for one command\n   version, v  Shows the version\n\nSUBCOMMANDS:\n   backup\n   backup-cleanup\n   restore\n   restore-cleanup\n   pre-backup-check\n{ARTIFACT_PATHS_HELP}"
            )
        );
    }

    #[test]
    fn app_help_names_every_store_variable_bbr_reads() {
        let h = app_help("1.2.3");
        for name in bbr_storage::artifact_url::VARIABLES {
            assert!(h.contains(name), "bbr help does not name {name}");
        }
        for scheme in ["s3://", "az://", "azure://", "gs://"] {
            assert!(h.contains(scheme), "{scheme}");
        }
    }

    #[test]
    fn director_help_lists_flags_in_order() {
        let h = topic(&["director"]);
        let host = h.find("--host value").unwrap();
        let user = h.find("--username value, -u value").unwrap();
        let key = h.find("--private-key-path value, --key value").unwrap();
        let debug = h.find("--debug").unwrap();
        assert!(host < user && user < key && key < debug);
    }

    // The whole texts as the hand-written help printed them before the flag table.
    #[test]
    fn director_help_whole() {
        assert_eq!(
            topic(&["director"]),
            "NAME:\n   bbr director - Backup BOSH director\n\nUSAGE:\n   bbr director [options] subcommand [subcommand options]\n\nSUBCOMMANDS:\n   pre-backup-check, c  Check a BOSH Director can be backed up\n   backup, b            Backup a BOSH Director\n   restore, r           Restore a deployment from backup\n   backup-cleanup       Cleanup a director after a backup was interrupted\n   restore-cleanup      Cleanup a director after a restore was interrupted\n   validate             Check a backup artifact can be restored to the director, without restoring it\n\nOPTIONS:\n   --host value                           BOSH Director hostname, with an optional port. Port defaults to 22\n   --username value, -u value             BOSH Director SSH username\n   --private-key-path value, --key value  BOSH Director SSH private key\n   --debug                                Enable debug logs\n   --known-hosts value                    known_hosts file used to verify the Director's host key; an unknown host is added with a warning, a changed key is refused (default: ~/.ssh/known_hosts)\n   --max-parallel value                   How many scripts or transfers run at once (default: 10)\n   --script-timeout value                 Time limit for scripts: one for all (30m) or per phase (backup=2h,lock=5m,unlock=5m; phases: all, lock, unlock or a script name). A script over its limit has its process group killed; jobs are then unlocked (default: none)\n"
        );
        assert_eq!(
            topic(&["director", "backup"]),
            "NAME:\n   bbr director backup - Backup a BOSH Director\n\nUSAGE:\n   bbr director backup [options]\n\nOPTIONS:\n   --artifact-path value, -a value  Specify an optional path to save the backup artifacts to\n   --keep-last value                Keep the N newest complete artifacts of each deployment (-1 or unlimited: all)\n   --keep-hourly value              Keep the newest artifact of each of the last N UTC hours that have one\n   --keep-daily value               Keep the newest artifact of each of the last N UTC days that have one\n   --keep-weekly value              Keep the newest artifact of each of the last N ISO weeks that have one\n   --keep-monthly value             Keep the newest artifact of each of the last N UTC months that have one\n   --keep-yearly value              Keep the newest artifact of each of the last N UTC years that have one\n   --keep-within value              Keep every complete artifact within DURATION of the newest (2y5m7d3h: y years, m months, d days, h hours)\n   --keep-incomplete-for value      Keep an incomplete artifact (no metadata, perhaps a backup in progress) until it is older than DURATION (default: 24h)\n   --metrics-file value             Write the run's metrics to this Prometheus text file (node_exporter textfile collector)\n"
        );
        assert_eq!(
            topic(&["director", "r"]),
            "NAME:\n   bbr director restore - Restore a deployment from backup\n\nUSAGE:\n   bbr director restore [options]\n\nOPTIONS:\n   --artifact-path value, -a value  Path to the artifact to restore\n   --metrics-file value             Write the run's metrics to this Prometheus text file (node_exporter textfile collector)\n"
        );
        assert_eq!(
            topic(&["director", "c"]),
            "NAME:\n   bbr director pre-backup-check - Check a BOSH Director can be backed up\n\nUSAGE:\n   bbr director pre-backup-check\n"
        );
    }

    #[test]
    fn artifact_help_whole() {
        assert_eq!(
            topic(&["artifact"]),
            "NAME:\n   bbr artifact - Validate, list and prune backup artifacts\n\nUSAGE:\n   bbr artifact subcommand [subcommand options]\n\nSUBCOMMANDS:\n   validate  Check a backup artifact without restoring it\n   list      List the backup artifacts in a directory\n   prune     Delete the backup artifacts a retention policy does not keep\n"
        );
        assert_eq!(
            topic(&["artifact", "validate"]),
            "NAME:\n   bbr artifact validate - Check a backup artifact without restoring it\n\nUSAGE:\n   bbr artifact validate [options] PATH\n\nDESCRIPTION:\n   Checks the artifact directory PATH offline: its metadata, that every tar it lists\n   exists, is complete and holds only safe entries, that the files of each tar are the\n   ones metadata records, and every file's SHA-256. Every problem is listed.\n   Exits 0 when the artifact is valid, 1 when it is not.\n   PATH may be s3://BUCKET/PREFIX, az://CONTAINER/PREFIX or gs://BUCKET/PREFIX, with\n   credentials from the cloud CLIs' environment variables (AWS_*, AZURE_STORAGE_*,\n   GOOGLE_APPLICATION_CREDENTIALS, STORAGE_EMULATOR_HOST).\n\nOPTIONS:\n   --json  Print the report as JSON on stdout (and nothing else)\n"
        );
        let list = topic(&["artifact", "list"]);
        assert!(
            list.contains("USAGE:\n   bbr artifact list [options] PATH\n"),
            "{list}"
        );
        assert!(
            list.contains("--json  Print the list as JSON on stdout"),
            "{list}"
        );
    }

    #[test]
    fn deployment_help_whole() {
        assert_eq!(
            topic(&["deployment"]),
            "NAME:\n   bbr deployment - Backup BOSH deployments\n\nUSAGE:\n   bbr deployment [options] subcommand [subcommand options]\n\nSUBCOMMANDS:\n   pre-backup-check, c  Check a deployment can be backed up\n   backup, b            Backup a deployment\n   restore, r           Restore a deployment from backup\n   backup-cleanup       Cleanup a deployment after a backup was interrupted\n   restore-cleanup      Cleanup a deployment after a restore was interrupted\n   validate             Check a backup artifact can be restored to the deployment, without restoring it\n\nOPTIONS:\n   --target value, -t value      BOSH Director URL [$BOSH_ENVIRONMENT]\n   --username value, -u value    BOSH Director username [$BOSH_CLIENT]\n   --password value, -p value    BOSH Director password [$BOSH_CLIENT_SECRET]\n   --deployment value, -d value  Name of BOSH deployment. Omit if '--all-deployments' is provided [$BOSH_DEPLOYMENT]\n   --ca-cert value               Path or value of BOSH Director custom CA certificate [$CA_CERT, $BOSH_CA_CERT]\n   --debug                       Enable debug logs\n   --all-deployments             Run command for all deployments. Omit if '--deployment' is provided. Currently only supported for: pre-backup-check, backup and backup-cleanup\n   --max-parallel value          How many scripts or transfers run at once (default: 10)\n   --script-timeout value        Time limit for scripts: one for all (30m) or per phase (backup=2h,lock=5m,unlock=5m) (default: none)\n"
        );
        assert_eq!(
            topic(&["deployment", "b"]),
            "NAME:\n   bbr deployment backup - Backup a deployment\n\nUSAGE:\n   bbr deployment backup [options]\n\nOPTIONS:\n   --with-manifest                  Download the deployment manifest\n   --artifact-path value, -a value  Specify an optional path to save the backup artifacts to\n   --unsafe-lock-free               Experimental feature to skip locking steps when backing up the BOSH deployment. Cannot be used in combination with the all-deployments flag\n   --keep-last value                Keep the N newest complete artifacts of each deployment (-1 or unlimited: all)\n   --keep-hourly value              Keep the newest artifact of each of the last N UTC hours that have one\n   --keep-daily value               Keep the newest artifact of each of the last N UTC days that have one\n   --keep-weekly value              Keep the newest artifact of each of the last N ISO weeks that have one\n   --keep-monthly value             Keep the newest artifact of each of the last N UTC months that have one\n   --keep-yearly value              Keep the newest artifact of each of the last N UTC years that have one\n   --keep-within value              Keep every complete artifact within DURATION of the newest (2y5m7d3h: y years, m months, d days, h hours)\n   --keep-incomplete-for value      Keep an incomplete artifact (no metadata, perhaps a backup in progress) until it is older than DURATION (default: 24h)\n   --metrics-file value             Write the run's metrics to this Prometheus text file (node_exporter textfile collector)\n"
        );
        assert_eq!(
            topic(&["deployment", "restore-cleanup"]),
            "NAME:\n   bbr deployment restore-cleanup - Cleanup a deployment after a restore was interrupted\n\nUSAGE:\n   bbr deployment restore-cleanup\n"
        );
    }
}
