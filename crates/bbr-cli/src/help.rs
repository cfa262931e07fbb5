//! Help texts in Go bbr's (urfave/cli v1) layout.

use crate::args::Subcommand;

/// Aligns `(left, right)` rows like Go's tabwriter (two spaces of padding).
fn columns(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(l, r)| format!("   {l:width$}  {r}").trim_end().to_string() + "\n")
        .collect()
}

/// `bbr help`.
pub fn app_help(version: &str) -> String {
    let commands = columns(&[
        ("deployment".into(), "Backup BOSH deployments".into()),
        ("director".into(), "Backup BOSH director".into()),
        (
            "help, h".into(),
            "Shows a list of commands or help for one command".into(),
        ),
        ("version, v".into(), "Shows the version".into()),
    ]);
    format!(
        "NAME:\n   bbr - BOSH Backup and Restore\n\nUSAGE:\n   bbr command [command options] [subcommand] [subcommand options]\n\nVERSION:\n   {version}\n\nCOMMANDS:\n{commands}\nSUBCOMMANDS:\n   backup\n   backup-cleanup\n   restore\n   restore-cleanup\n   pre-backup-check\n"
    )
}

fn director_usage(sub: Subcommand) -> &'static str {
    match sub {
        Subcommand::PreBackupCheck => "Check a BOSH Director can be backed up",
        Subcommand::Backup => "Backup a BOSH Director",
        Subcommand::Restore => "Restore a deployment from backup",
        Subcommand::BackupCleanup => "Cleanup a director after a backup was interrupted",
        Subcommand::RestoreCleanup => "Cleanup a director after a restore was interrupted",
    }
}

/// `bbr director --help`.
pub fn director_help() -> String {
    let subs = columns(&[
        (
            "pre-backup-check, c".into(),
            director_usage(Subcommand::PreBackupCheck).into(),
        ),
        (
            "backup, b".into(),
            director_usage(Subcommand::Backup).into(),
        ),
        (
            "restore, r".into(),
            director_usage(Subcommand::Restore).into(),
        ),
        (
            "backup-cleanup".into(),
            director_usage(Subcommand::BackupCleanup).into(),
        ),
        (
            "restore-cleanup".into(),
            director_usage(Subcommand::RestoreCleanup).into(),
        ),
    ]);
    let options = columns(&[
        ("--host value".into(), "BOSH Director hostname, with an optional port. Port defaults to 22".into()),
        ("--username value, -u value".into(), "BOSH Director SSH username".into()),
        ("--private-key-path value, --key value".into(), "BOSH Director SSH private key".into()),
        ("--debug".into(), "Enable debug logs".into()),
        (
            "--known-hosts value".into(),
            "known_hosts file used to verify the Director's host key; an unknown host is added with a warning, a changed key is refused (default: ~/.ssh/known_hosts)".into(),
        ),
        ("--max-parallel value".into(), "How many scripts or transfers run at once (default: 10)".into()),
        (
            "--script-timeout value".into(),
            "Time limit for scripts: one for all (30m) or per phase (backup=2h,lock=5m,unlock=5m; phases: all, lock, unlock or a script name). A script over its limit has its process group killed; jobs are then unlocked (default: none)".into(),
        ),
    ]);
    format!(
        "NAME:\n   bbr director - Backup BOSH director\n\nUSAGE:\n   bbr director [options] subcommand [subcommand options]\n\nSUBCOMMANDS:\n{subs}\nOPTIONS:\n{options}"
    )
}

/// `bbr director <sub> --help`.
pub fn director_subcommand_help(sub: Subcommand) -> String {
    let options = match sub {
        Subcommand::Backup => Some((
            "--artifact-path value, -a value",
            "Specify an optional path to save the backup artifacts to",
        )),
        Subcommand::Restore => Some((
            "--artifact-path value, -a value",
            "Path to the artifact to restore",
        )),
        _ => None,
    };
    let mut out = format!(
        "NAME:\n   bbr director {} - {}\n\nUSAGE:\n   bbr director {}{}\n",
        sub.name(),
        director_usage(sub),
        sub.name(),
        if options.is_some() { " [options]" } else { "" }
    );
    if let Some((l, r)) = options {
        out.push_str(&format!("\nOPTIONS:\n{}", columns(&[(l.into(), r.into())])));
    }
    out
}

fn deployment_usage(sub: Subcommand) -> &'static str {
    match sub {
        Subcommand::PreBackupCheck => "Check a deployment can be backed up",
        Subcommand::Backup => "Backup a deployment",
        Subcommand::Restore => "Restore a deployment from backup",
        Subcommand::BackupCleanup => "Cleanup a deployment after a backup was interrupted",
        Subcommand::RestoreCleanup => "Cleanup a deployment after a restore was interrupted",
    }
}

/// `bbr deployment --help`.
pub fn deployment_help() -> String {
    let subs = columns(&[
        (
            "pre-backup-check, c".into(),
            deployment_usage(Subcommand::PreBackupCheck).into(),
        ),
        (
            "backup, b".into(),
            deployment_usage(Subcommand::Backup).into(),
        ),
        (
            "restore, r".into(),
            deployment_usage(Subcommand::Restore).into(),
        ),
        (
            "backup-cleanup".into(),
            deployment_usage(Subcommand::BackupCleanup).into(),
        ),
        (
            "restore-cleanup".into(),
            deployment_usage(Subcommand::RestoreCleanup).into(),
        ),
    ]);
    let options = columns(&[
        ("--target value, -t value".into(), "BOSH Director URL [$BOSH_ENVIRONMENT]".into()),
        ("--username value, -u value".into(), "BOSH Director username [$BOSH_CLIENT]".into()),
        ("--password value, -p value".into(), "BOSH Director password [$BOSH_CLIENT_SECRET]".into()),
        ("--deployment value, -d value".into(), "Name of BOSH deployment. Omit if '--all-deployments' is provided [$BOSH_DEPLOYMENT]".into()),
        ("--ca-cert value".into(), "Path or value of BOSH Director custom CA certificate [$CA_CERT, $BOSH_CA_CERT]".into()),
        ("--debug".into(), "Enable debug logs".into()),
        ("--all-deployments".into(), "Run command for all deployments. Omit if '--deployment' is provided. Currently only supported for: pre-backup-check, backup and backup-cleanup".into()),
        ("--max-parallel value".into(), "How many scripts or transfers run at once (default: 10)".into()),
        ("--script-timeout value".into(), "Time limit for scripts: one for all (30m) or per phase (backup=2h,lock=5m,unlock=5m) (default: none)".into()),
    ]);
    format!(
        "NAME:\n   bbr deployment - Backup BOSH deployments\n\nUSAGE:\n   bbr deployment [options] subcommand [subcommand options]\n\nSUBCOMMANDS:\n{subs}\nOPTIONS:\n{options}"
    )
}

/// `bbr deployment <sub> --help`.
pub fn deployment_subcommand_help(sub: Subcommand) -> String {
    let options: Vec<(String, String)> = match sub {
        Subcommand::Backup => vec![
            ("--with-manifest".into(), "Download the deployment manifest".into()),
            ("--artifact-path value, -a value".into(), "Specify an optional path to save the backup artifacts to".into()),
            ("--unsafe-lock-free".into(), "Experimental feature to skip locking steps when backing up the BOSH deployment. Cannot be used in combination with the all-deployments flag".into()),
        ],
        Subcommand::Restore => vec![("--artifact-path value, -a value".into(), "Path to the artifact to restore".into())],
        _ => vec![],
    };
    let mut out = format!(
        "NAME:\n   bbr deployment {} - {}\n\nUSAGE:\n   bbr deployment {}{}\n",
        sub.name(),
        deployment_usage(sub),
        sub.name(),
        if options.is_empty() { "" } else { " [options]" }
    );
    if !options.is_empty() {
        out.push_str(&format!("\nOPTIONS:\n{}", columns(&options)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_help_has_the_asserted_snippets() {
        let h = app_help("1.2.3");
        assert!(h.contains(
            "USAGE:\n   bbr command [command options] [subcommand] [subcommand options]"
        ));
        assert!(h.contains("SUBCOMMANDS:\n   backup\n   backup-cleanup\n   restore\n   restore-cleanup\n   pre-backup-check"));
    }

    #[test]
    fn director_help_lists_flags_in_order() {
        let h = director_help();
        let host = h.find("--host value").unwrap();
        let user = h.find("--username value, -u value").unwrap();
        let key = h.find("--private-key-path value, --key value").unwrap();
        let debug = h.find("--debug").unwrap();
        assert!(host < user && user < key && key < debug);
    }
}
