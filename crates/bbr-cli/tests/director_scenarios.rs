//! The scenarios of Go bbr's integration suites (`integration/cli_test.go`,
//! `integration/deployment/cli_test.go` and `integration/director/*_test.go`; the contracts
//! they check are in docs/cli.md) that `cli.rs`, `director_backup.rs`,
//! `director_restore.rs` and `director_robustness.rs` do not cover, or cover with weaker
//! assertions. Each test names the Go `Context`/`It` it follows and asserts what that test
//! and the spec assert: exit code, the exact lines Go prints, the `bbr-*.err.log` file, which
//! scripts ran in which order, and what is left locally and on the VM.
//!
//! Director-mode tests run the built `bbr` against a real sshd "VM" (`support::Harness`).
//! Scripts record their runs (`support::record`), so `Harness::events` tells which lifecycle
//! scripts ran, in which order. The `integration/deployment/cli_test.go` tests run `bbr deployment` against the BOSH director
//! simulator with no deployments: like Go's mock director, it answers `GET /info` and a 404
//! for the deployment's VMs, and records every request.

mod support;

use bbr_director_sim::{DirectorSim, SimOptions, SimSpec};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::live::Live;
use support::*;

const BACKUP_FOOTER: &str = "It is recommended that you run `bbr backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";
const RESTORE_FOOTER: &str = "It is recommended that you run `bbr restore-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";
const BACKUP_QUESTION: &str = "Stopping a backup can leave the system in bad state. Are you sure you want to cancel? [yes/no]";
const RESTORE_QUESTION: &str = "Stopping a restore can leave the system in bad state. Are you sure you want to cancel? [yes/no]";

/// What Go's director tests accept as "the host does not resolve" (backup_test.go,
/// pre_backup_check_test.go; restore_test.go accepts the same set minus the third).
const UNRESOLVABLE: [&str; 4] = [
    "no such host",
    "server misbehaving",
    "No address associated with hostname",
    "Temporary failure in name resolution",
];

/// How long a test waits for an event (a line of output, a file on the VM) before failing.
const DEADLINE: Duration = Duration::from_secs(20);

/// Go's backup script of the director backup tests.
const TWO_DUMPS: &str = "set -u\nprintf \"backupcontent1\" > $BBR_ARTIFACT_DIRECTORY/backupdump1\nprintf \"backupcontent2\" > $BBR_ARTIFACT_DIRECTORY/backupdump2";

/// Go's restore script of the director restore tests.
const RESTORE_FILE: &str = "set -u\nmkdir -p /var/vcap/store/bosh/\ncat $BBR_ARTIFACT_DIRECTORY/backup > /var/vcap/store/bosh/restored_file";

fn arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Go's restore fixture, read in place (never copied into the project).
fn integration_fixture() -> String {
    arg(&fixture("director-backup-integration"))
}

/// The `bbr-*.err.log` files in `dir`.
fn err_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("bbr-") && n.ends_with(".err.log")
        })
        .collect();
    logs.sort();
    logs
}

/// Asserts the error file (docs/log-lines.md#the-errlog-file): exactly one `bbr-<RFC3339 UTC>.err.log` in `dir`,
/// mode 0644, holding the error `message` that stderr showed. (Go's tests also look for the
/// `main.go` stack frame that pkg/errors' `%+v` adds; a Rust binary has no Go frames, so the
/// error text is what is asserted.)
fn assert_err_log(dir: &Path, message: &str) {
    let logs = err_logs(dir);
    assert_eq!(logs.len(), 1, "one bbr-*.err.log in {}", dir.display());
    let name = logs[0].file_name().unwrap().to_string_lossy().into_owned();
    let stamp = &name["bbr-".len()..name.len() - ".err.log".len()];
    assert!(
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
        "{name} is not bbr-<RFC3339 UTC>.err.log"
    );
    let mode = std::fs::metadata(&logs[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "{name} mode {mode:o} (it may hold scripts' stderr)"
    );
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(text.contains(message), "{message:?} not in {name}:\n{text}");
}

/// Runs `bbr director` against an arbitrary host and key, in `dir`.
fn director_at(dir: &Path, host: &str, key: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_bbr"))
        .current_dir(dir)
        .args([
            "director",
            "--host",
            host,
            "--username",
            "foobar",
            "--private-key-path",
            key,
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run(out)
}

/// Waits until `/var/vcap/<rel>` exists on the VM.
fn await_vm_file(h: &Harness, rel: &str) {
    bbr_testkit::wait::until(&format!("{rel} to appear on the VM"), DEADLINE, || {
        h.vm.exists(rel)
    });
}

/// The regular files of a tar as `(name without "./", content)`, sorted by name.
fn tar_files(tar: &Path) -> Vec<(String, String)> {
    let list = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    assert!(list.status.success(), "{}", tar.display());
    let mut files = Vec::new();
    for entry in String::from_utf8_lossy(&list.stdout).lines() {
        if entry.ends_with('/') {
            continue;
        }
        let content = Command::new("tar")
            .arg("-xOf")
            .arg(tar)
            .arg(entry)
            .output()
            .unwrap();
        files.push((
            entry.trim_start_matches("./").to_string(),
            String::from_utf8_lossy(&content.stdout).into_owned(),
        ));
    }
    files.sort();
    files
}

/// Asserts Go's metadata time layout `2006/01/02 15:04:05 MST` in the local time zone
/// (docs/artifact-format.md#metadata; backup_test.go's `MatchRegexp(... + currentTimezone + "$")`).
fn assert_metadata_time(value: &str) {
    let zone = Command::new("date").arg("+%Z").output().unwrap();
    let zone = String::from_utf8_lossy(&zone.stdout).trim().to_string();
    let (stamp, tz) = value.split_at(value.len().min(19));
    assert_eq!(tz, format!(" {zone}"), "time zone of {value:?}");
    assert!(
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y/%m/%d %H:%M:%S").is_ok(),
        "{value:?} is not YYYY/MM/DD HH:MM:SS TZ"
    );
}

// ---------------------------------------------------------------------------------------
// integration/cli_test.go
// ---------------------------------------------------------------------------------------

/// "bbr with an unknown command": the error, then the main help text. Exit 1 is ours: README
/// "Where we differ": "an unknown command exits 1 (Go: 0)".
#[test]
fn an_unknown_command_prints_the_error_and_the_main_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_bbr"))
        .arg("rubbish")
        .output()
        .unwrap();
    let run = Run(out);
    assert_eq!(run.code(), 1, "{}", run.show());
    let stdout = run.stdout();
    assert!(
        stdout.contains("Error command 'rubbish' not found"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SUBCOMMANDS:\n   backup\n   backup-cleanup\n   restore\n   restore-cleanup\n   pre-backup-check"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("USAGE:\n   bbr command [command options] [subcommand] [subcommand options]"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------
// integration/director/cli_test.go
// ---------------------------------------------------------------------------------------

/// "private-key-path flag": an invalid key is reported before any connection is tried (Go
/// uses the unreachable 10.0.0.5; here a closed local port, so a dial would fail at once
/// with a different message), stderr carries no stack, the error goes to the err.log.
#[test]
fn an_invalid_private_key_is_named_and_written_to_the_err_log() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("key");
    std::fs::write(&key, "this is not a valid key").unwrap();
    let run = director_at(work.path(), "127.0.0.1:1", &arg(&key), &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("ssh.NewConnection.ParsePrivateKey failed"),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains("main.go"), "{}", run.show());
    assert!(!run.stderr().contains(BACKUP_FOOTER), "{}", run.show());
    assert_err_log(work.path(), "ssh.NewConnection.ParsePrivateKey failed");
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        2,
        "only the key and the err.log: no artifact directory"
    );
}

/// "restore command with artifact-path pointing to non-existent file": Go validates the
/// artifact before it reads the key or contacts the host, so a missing artifact is what is
/// reported even with a key path that does not exist ("doesn't matter").
#[test]
fn restore_of_a_missing_artifact_is_reported_before_the_key_is_read() {
    let work = tempfile::tempdir().unwrap();
    let run = director_at(
        work.path(),
        "127.0.0.1:1",
        "doesn't matter",
        &["restore", "--artifact-path", "non-existent-file"],
    );
    assert_ne!(run.code(), 0, "{}", run.show());
    assert!(
        run.stderr()
            .contains("non-existent-file: no such file or directory"),
        "{}",
        run.show()
    );
}

// ---------------------------------------------------------------------------------------
// integration/director/backup_test.go
// ---------------------------------------------------------------------------------------

/// "successfully backs up the director" (run with `--debug` like Go): the artifact
/// `<ip>_<YYYYMMDDTHHMMSSZ>/` with `bosh-0-bosh.tar` holding exactly the two dumps, Go's
/// metadata, the INFO lines in Go's order, and no `/var/vcap/store/bbr-backup` left.
#[test]
fn director_backup_writes_the_artifact_and_logs_every_step_in_order() {
    let h = Harness::new();
    h.script("bosh", Script::Backup, TWO_DUMPS);
    let run = h.bbr(&["--debug", "backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());

    let artifact = h.artifact_in(h.work.path());
    let dir_name = artifact.file_name().unwrap().to_string_lossy().into_owned();
    let stamp = dir_name
        .strip_prefix(&format!("{}_", h.name()))
        .unwrap_or_else(|| panic!("{dir_name} does not start with {}_", h.name()));
    assert!(
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").is_ok(),
        "{dir_name} is not <ip>_YYYYMMDDTHHMMSSZ"
    );
    let mut files: Vec<String> = std::fs::read_dir(&artifact)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["bosh-0-bosh.tar", "metadata"]);

    assert_eq!(
        tar_files(&artifact.join("bosh-0-bosh.tar")),
        [
            ("backupdump1".to_string(), "backupcontent1".to_string()),
            ("backupdump2".to_string(), "backupcontent2".to_string()),
        ]
    );

    let metadata = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    let expected = format!(
        "instances:\n- name: bosh\n  index: \"0\"\n  artifacts:\n  - name: bosh\n    checksums:\n      ./backupdump1: {}\n      ./backupdump2: {}\nbackup_activity:\n  start_time: ",
        sha256_hex(b"backupcontent1"),
        sha256_hex(b"backupcontent2")
    );
    assert!(
        metadata.starts_with(&expected),
        "custom_artifacts must be absent (empty) and the instance exact:\n{metadata}"
    );
    let times: Vec<&str> = metadata
        .lines()
        .filter_map(|l| {
            l.strip_prefix("  start_time: ")
                .or_else(|| l.strip_prefix("  finish_time: "))
        })
        .collect();
    assert_eq!(times.len(), 2, "{metadata}");
    for t in times {
        assert_metadata_time(t);
    }

    let ip = h.name();
    assert_in_order(
        &run.stdout(),
        &[
            "INFO - Looking for scripts",
            "INFO - bosh/0/bosh/backup",
            &format!("INFO - Running pre-checks for backup of {ip}..."),
            &format!("INFO - Starting backup of {ip}..."),
            "INFO - Running pre-backup-lock scripts...",
            "INFO - Finished running pre-backup-lock scripts.",
            "INFO - Running backup scripts...",
            "INFO - Backing up bosh on bosh/0...",
            "INFO - Finished running backup scripts.",
            "INFO - Running post-backup-unlock scripts...",
            "INFO - Finished running post-backup-unlock scripts.",
            "INFO - Copying backup -- ",
            " uncompressed -- for job bosh on bosh/0...",
            "INFO - Finished copying backup -- for job bosh on bosh/0...",
            "INFO - Starting validity checks -- for job bosh on bosh/0...",
            "INFO - Finished validity checks -- for job bosh on bosh/0...",
        ],
    );
    assert!(
        !h.remote_marker_exists(),
        "/var/vcap/store/bbr-backup is removed"
    );
    assert_eq!(h.events(), ["bosh backup"]);
    assert!(err_logs(h.work.path()).is_empty());
}

/// The DEBUG lines of the same Go test ("printing the backup progress to the screen"). Go's
/// `--debug` shows its three checksum passes (`Calculating shasum for local file ./f`,
/// `Calculating shasum for remote files`, `Comparing shasums`). Deliberately different
/// (README, "One-pass drain"): there are no such passes here; every file is hashed as it
/// arrives, and the debug log says what the validity check compares instead.
#[test]
fn director_backup_debug_log_shows_the_validity_check() {
    let h = Harness::new();
    h.script("bosh", Script::Backup, TWO_DUMPS);
    let run = h.bbr(&["--debug", "backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let out = run.stdout();
    assert_in_order(
        &out,
        &[
            "INFO - Starting validity checks -- for job bosh on bosh/0...",
            "DEBUG - Comparing transferred files with the listing on bosh/0",
            "INFO - Finished validity checks -- for job bosh on bosh/0...",
        ],
    );
    assert!(!out.contains("Calculating shasum"), "{out}");
}

/// "but there are no backup scripts": a file in `bin/bbr/` that is not one of the seven
/// script names does not count. Exit 1, Go's message with the host, no cleanup footer, the
/// err.log, no local artifact.
#[test]
fn director_backup_with_only_an_unknown_file_in_bin_bbr_has_no_backup_scripts() {
    let h = Harness::new();
    h.vm.install_script("bosh", "not-a-backup-script", "#!/bin/sh\n")
        .unwrap();
    let run = h.bbr(&["--debug", "backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let message = format!("Deployment '{}' has no backup scripts", h.name());
    assert!(run.stderr().contains(&message), "{}", run.show());
    assert!(!run.stderr().contains(BACKUP_FOOTER), "{}", run.show());
    assert_eq!(h.artifact_dirs(h.work.path()), 0);
    assert_err_log(h.work.path(), &message);
}

/// "and the user decides to cancel the backup": after SIGINT bbr asks and waits; `yes` exits
/// 1 with the backup-cleanup advice, and the interrupted backup left no tar in the artifact.
#[test]
fn sigint_during_director_backup_answered_yes_exits_1_without_a_tar() {
    let h = Harness::new();
    h.script("bosh", Script::Backup, "touch /var/vcap/sys/backup-started\nwhile [ ! -e /var/vcap/sys/go-on ]; do sleep 0.05; done\nprintf \"backupcontent1\" > $BBR_ARTIFACT_DIRECTORY/backupdump1");
    let mut live = Live::start(h.command(&["--debug", "backup"]), DEADLINE);
    live.wait_for_line("Backing up");
    await_vm_file(&h, "sys/backup-started");
    live.interrupt();
    let question = live.wait_for_line("[yes/no]");
    assert_eq!(question, format!("{BACKUP_QUESTION}\n"));
    assert!(live.still_running(), "bbr exited without confirmation");
    live.answer("yes\n");
    let (code, out, err) = live.finish(DEADLINE);
    assert_eq!(code, 1, "{out}\n--- stderr\n{err}");
    assert!(out.contains(BACKUP_FOOTER), "{out}");
    let artifact = h.artifact_in(h.work.path());
    assert!(
        !artifact.join("bosh-0-bosh.tar").exists(),
        "no tar from the interrupted backup"
    );
    h.vm.install_file("sys/go-on", "", 0o644).unwrap();
}

/// "When the director does not resolve" (backup): exit 1, a resolver error, no footer.
#[test]
fn director_backup_of_a_host_that_does_not_resolve() {
    let h = Harness::new();
    let run = director_at(
        h.work.path(),
        "no:22",
        &arg(h.vm.client_key_path()),
        &["--debug", "backup"],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(!run.stderr().contains(BACKUP_FOOTER), "{}", run.show());
    assert!(
        UNRESOLVABLE.iter().any(|m| run.stderr().contains(m)),
        "expected one of {UNRESOLVABLE:?}:\n{}",
        run.show()
    );
}

// ---------------------------------------------------------------------------------------
// integration/director/restore_test.go (fixture director-backup-integration)
// ---------------------------------------------------------------------------------------

/// Go's restore fixture scripts: `restore` copies the artifact's `backup` file to
/// `/var/vcap/store/bosh/restored_file`; `post-restore-unlock` exists.
fn go_restore_scripts(h: &Harness) {
    h.script("bosh", Script::Restore, RESTORE_FILE);
    h.script("bosh", Script::PostRestoreUnlock, "");
}

fn restored(h: &Harness) -> Option<String> {
    h.vm.read("store/bosh/restored_file").ok()
}

/// "successfully restores to the director": Go's log lines in Go's order, the restored file,
/// the remote artifact directory removed.
#[test]
fn director_restore_of_the_go_fixture_logs_every_step_in_order() {
    let h = Harness::new();
    go_restore_scripts(&h);
    let run = h.bbr(&[
        "--debug",
        "restore",
        "--artifact-path",
        &integration_fixture(),
    ]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_in_order(
        &run.stdout(),
        &[
            "INFO - Starting restore of",
            "INFO - Validating backup artifact for",
            "INFO - Looking for scripts",
            "INFO - Copying backup -- 4.0K uncompressed -- for job bosh on bosh/0...",
            "INFO - Finished copying backup for job bosh on bosh/0.",
            "INFO - Completed restore of",
        ],
    );
    assert_eq!(restored(&h).as_deref(), Some("this is a backup\n"));
    assert!(!h.remote_marker_exists());
    assert_eq!(h.events(), ["bosh restore", "bosh post-restore-unlock"]);
    assert!(err_logs(h.work.path()).is_empty());
}

/// The restore script of the SIGINT tests: waits for `go-on` before restoring.
fn slow_restore(h: &Harness) {
    h.script("bosh", Script::Restore, &format!(
            "touch /var/vcap/sys/restore-started\nwhile [ ! -e /var/vcap/sys/go-on ]; do sleep 0.05; done\n{RESTORE_FILE}"
        ));
    h.script("bosh", Script::PostRestoreUnlock, "");
}

/// "and the user decides to cancel the restore": bbr asks with the restore wording and waits;
/// `yes` exits 1 with the restore-cleanup advice and the restore never completes.
#[test]
fn sigint_during_director_restore_answered_yes_exits_1_with_restore_cleanup_advice() {
    let h = Harness::new();
    slow_restore(&h);
    let mut live = Live::start(
        h.command(&[
            "--debug",
            "restore",
            "--artifact-path",
            &integration_fixture(),
        ]),
        DEADLINE,
    );
    await_vm_file(&h, "sys/restore-started");
    live.interrupt();
    let question = live.wait_for_line("[yes/no]");
    assert_eq!(question, format!("{RESTORE_QUESTION}\n"));
    assert!(live.still_running(), "bbr exited without confirmation");
    live.answer("yes\n");
    let (code, out, err) = live.finish(DEADLINE);
    assert_eq!(code, 1, "{out}\n--- stderr\n{err}");
    assert!(out.contains(RESTORE_FOOTER), "{out}");
    assert_eq!(restored(&h), None, "the restore did not complete");
    h.vm.install_file("sys/go-on", "", 0o644).unwrap();
}

/// "and the user decides not to to cancel the restore": `no` resumes and the restore
/// completes (exit 0, restored file).
#[test]
fn sigint_during_director_restore_answered_no_lets_it_complete() {
    let h = Harness::new();
    slow_restore(&h);
    let mut live = Live::start(
        h.command(&[
            "--debug",
            "restore",
            "--artifact-path",
            &integration_fixture(),
        ]),
        DEADLINE,
    );
    await_vm_file(&h, "sys/restore-started");
    live.interrupt();
    let question = live.wait_for_line("[yes/no]");
    assert_eq!(question, format!("{RESTORE_QUESTION}\n"));
    assert!(live.still_running(), "bbr exited without confirmation");
    live.answer("no\n");
    h.vm.install_file("sys/go-on", "", 0o644).unwrap();
    let (code, out, err) = live.finish(DEADLINE);
    assert_eq!(code, 0, "{out}\n--- stderr\n{err}");
    assert!(out.contains("INFO - Completed restore of"), "{out}");
    assert_eq!(restored(&h).as_deref(), Some("this is a backup\n"));
    assert!(!h.remote_marker_exists());
}

/// "and there is a pre-restore-lock script which fails" / "there is a post-restore-unlock
/// script which succeeds": exit 1 (a pre-restore-lock failure is a plain error, docs/cli.md#exit-codes),
/// the script's stdout shown by `--debug`, restore not run, unlock run, remote cleaned.
#[test]
fn director_restore_pre_restore_lock_failure_shows_its_output_and_unlocks() {
    let h = Harness::new();
    go_restore_scripts(&h);
    h.script(
        "bosh",
        Script::PreRestoreLock,
        "echo \"pre-restore-lock errored!\"\nexit 1",
    );
    let run = h.bbr(&[
        "--debug",
        "restore",
        "--artifact-path",
        &integration_fixture(),
    ]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stdout().contains("pre-restore-lock errored"),
        "{}",
        run.show()
    );
    assert_eq!(restored(&h), None, "restore must not run");
    assert_eq!(
        h.events(),
        ["bosh pre-restore-lock", "bosh post-restore-unlock"]
    );
    assert!(!h.remote_marker_exists());
}

/// "and there is a post-restore-unlock script which fails": the restore completed, the unlock
/// failure exits 8 (UnlockError, docs/cli.md#exit-codes), its output is shown, the remote is cleaned.
#[test]
fn director_restore_post_restore_unlock_failure_exits_8_after_restoring() {
    let h = Harness::new();
    h.script("bosh", Script::Restore, RESTORE_FILE);
    h.script(
        "bosh",
        Script::PostRestoreUnlock,
        "echo \"post-restore-unlock errored!\"\nexit 1",
    );
    let run = h.bbr(&[
        "--debug",
        "restore",
        "--artifact-path",
        &integration_fixture(),
    ]);
    assert_eq!(run.code(), 8, "{}", run.show());
    assert_eq!(restored(&h).as_deref(), Some("this is a backup\n"));
    assert!(!h.remote_marker_exists());
    assert!(
        run.stdout().contains("post-restore-unlock errored"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr()
            .contains("Error attempting to run post-restore-unlock for job bosh on bosh/0"),
        "{}",
        run.show()
    );
    assert_eq!(h.events(), ["bosh restore", "bosh post-restore-unlock"]);
}

/// "but the restore script fails" / "there is a post-restore-unlock script which succeeds":
/// exit 1, the script's output shown by `--debug`, post-restore-unlock still ran.
#[test]
fn director_restore_script_failure_exits_1_and_still_unlocks() {
    let h = Harness::new();
    h.script("bosh", Script::Restore, "echo 'NOPE!'; exit 1");
    h.script("bosh", Script::PostRestoreUnlock, "");
    let run = h.bbr(&[
        "--debug",
        "restore",
        "--artifact-path",
        &integration_fixture(),
    ]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(run.stdout().contains("NOPE!"), "{}", run.show());
    assert!(
        run.stderr()
            .contains("Failed to restore: Error attempting to run restore for job bosh on bosh/0"),
        "{}",
        run.show()
    );
    assert_eq!(h.events(), ["bosh restore", "bosh post-restore-unlock"]);
    assert!(!h.remote_marker_exists());
}

/// "with ordering on pre-restore-lock specified": `bosh` (restore_should_be_locked_before
/// `postgres` of release `bosh`, matched by job name only in director mode) locks first and
/// unlocks last; `postgres` has only lock scripts.
#[test]
fn director_restore_locks_in_metadata_order_and_unlocks_in_reverse() {
    let h = Harness::new();
    h.vm.install_script(
        "bosh",
        "metadata",
        "#!/bin/sh\necho \"---\nrestore_should_be_locked_before:\n- job_name: postgres\n  release: bosh\n\"",
    )
    .unwrap();
    h.script("bosh", Script::PreRestoreLock, "");
    h.script("bosh", Script::Restore, RESTORE_FILE);
    h.script("bosh", Script::PostRestoreUnlock, "");
    h.script("postgres", Script::PreRestoreLock, "");
    h.script("postgres", Script::PostRestoreUnlock, "");
    let run = h.bbr(&[
        "--debug",
        "restore",
        "--artifact-path",
        &integration_fixture(),
    ]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout()
            .contains("Detected order: bosh should be locked before postgres during restore"),
        "{}",
        run.show()
    );
    assert_eq!(
        h.events(),
        [
            "bosh pre-restore-lock",
            "postgres pre-restore-lock",
            "bosh restore",
            "postgres post-restore-unlock",
            "bosh post-restore-unlock",
        ]
    );
    assert_eq!(restored(&h).as_deref(), Some("this is a backup\n"));
}

/// "but the pre-restore-lock ordering is cyclic": exit 1 with Go's message; no lock, restore
/// or unlock script runs and nothing is left on the VM.
#[test]
fn director_restore_with_cyclic_lock_order_fails_before_any_script() {
    let h = Harness::new();
    h.vm.install_script(
        "bosh",
        "metadata",
        "#!/bin/sh\necho \"---\nrestore_should_be_locked_before:\n- job_name: postgres\n  release: bosh\n\"",
    )
    .unwrap();
    h.vm.install_script(
        "postgres",
        "metadata",
        "#!/bin/sh\necho \"---\nrestore_should_be_locked_before:\n- job_name: bosh\n  release: bosh\n\"",
    )
    .unwrap();
    h.script("bosh", Script::PreRestoreLock, "");
    h.script("postgres", Script::PreRestoreLock, "");
    go_restore_scripts(&h);
    let run = h.bbr(&[
        "--debug",
        "restore",
        "--artifact-path",
        &integration_fixture(),
    ]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("job locking dependency graph is cyclic"),
        "{}",
        run.show()
    );
    assert_eq!(h.events(), Vec::<String>::new());
    assert_eq!(restored(&h), None);
    assert!(!h.remote_marker_exists());
}

/// "but there are no restore scripts": a backup script and an unknown file only. Exit 1,
/// Go's message with the host, the err.log.
#[test]
fn director_restore_without_restore_scripts_fails_and_writes_the_err_log() {
    let h = Harness::new();
    h.script("bosh", Script::Backup, "");
    h.vm.install_script("bosh", "not-a-restore-script", "#!/bin/sh\n")
        .unwrap();
    let run = h.bbr(&[
        "--debug",
        "restore",
        "--artifact-path",
        &integration_fixture(),
    ]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let message = format!("Deployment '{}' has no restore scripts", h.name());
    assert!(run.stderr().contains(&message), "{}", run.show());
    assert!(!run.stderr().contains("main.go"));
    assert_err_log(h.work.path(), &message);
    assert!(!h.remote_marker_exists());
}

/// "When the director does not resolve" (restore): exit 1 and a resolver error.
#[test]
fn director_restore_to_a_host_that_does_not_resolve() {
    let h = Harness::new();
    let run = director_at(
        h.work.path(),
        "does-not-resolve",
        &arg(h.vm.client_key_path()),
        &[
            "--debug",
            "restore",
            "--artifact-path",
            &integration_fixture(),
        ],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        UNRESOLVABLE.iter().any(|m| run.stderr().contains(m)),
        "expected one of {UNRESOLVABLE:?}:\n{}",
        run.show()
    );
}

// ---------------------------------------------------------------------------------------
// integration/director/pre_backup_check_test.go
// ---------------------------------------------------------------------------------------

/// "but the backup artifact directory already exists" (an empty directory, as Go's
/// `CreateDir`): stdout, stderr message and footer, the directory kept.
#[test]
fn director_pre_backup_check_with_an_existing_artifact_directory() {
    let h = Harness::new();
    h.script("uaa", Script::Backup, TWO_DUMPS);
    std::fs::create_dir_all(h.vm.vcap_path("store/bbr-backup")).unwrap();
    let run = h.bbr(&["pre-backup-check"]);
    assert_ne!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains("Director cannot be backed up."),
        "{}",
        run.show()
    );
    assert_in_order(
        &run.stderr(),
        &[
            "Directory /var/vcap/store/bbr-backup already exists on instance bosh/0",
            BACKUP_FOOTER,
        ],
    );
    assert!(h.remote_marker_exists(), "the directory is not deleted");
    assert!(h.events().is_empty());
}

/// "and there is a metadata script": a `restore_should_be_locked_before` entry naming an
/// absent job does not stop the check.
#[test]
fn director_pre_backup_check_with_a_metadata_script_succeeds() {
    let h = Harness::new();
    h.script("uaa", Script::Backup, TWO_DUMPS);
    h.vm.install_script(
        "bosh",
        "metadata",
        "#!/bin/sh\necho \"---\nrestore_should_be_locked_before:\n- job_name: postgres\n  release: bosh\n\"",
    )
    .unwrap();
    let run = h.bbr(&["pre-backup-check"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains("Director can be backed up."),
        "{}",
        run.show()
    );
    assert!(h.events().is_empty(), "no lock or backup script runs");
    assert!(!h.remote_marker_exists());
}

/// "if there are no backup scripts" (an executable outside `bin/bbr/`): exit 1, stdout
/// verdict, stderr message without a stack, the err.log.
#[test]
fn director_pre_backup_check_without_backup_scripts_writes_the_err_log() {
    let h = Harness::new();
    h.vm.install_file("jobs/uaa/bin/not-a-backup-script", "#!/bin/sh\n", 0o755)
        .unwrap();
    let run = h.bbr(&["pre-backup-check"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stdout().contains("Director cannot be backed up."),
        "{}",
        run.show()
    );
    let message = format!("Deployment '{}' has no backup scripts", h.name());
    assert!(run.stderr().contains(&message), "{}", run.show());
    assert!(!run.stderr().contains("main.go"));
    assert_err_log(h.work.path(), &message);
}

/// "When the director does not resolve" (pre-backup-check): exit 1, a resolver error, the
/// err.log.
#[test]
fn director_pre_backup_check_of_a_host_that_does_not_resolve() {
    let h = Harness::new();
    let run = director_at(
        h.work.path(),
        "no:22",
        &arg(h.vm.client_key_path()),
        &["pre-backup-check"],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(!run.stderr().contains("main.go"));
    assert_eq!(err_logs(h.work.path()).len(), 1, "{}", run.show());
    assert!(
        UNRESOLVABLE.iter().any(|m| run.stderr().contains(m)),
        "expected one of {UNRESOLVABLE:?}:\n{}",
        run.show()
    );
}

// ---------------------------------------------------------------------------------------
// integration/director/restore_cleanup_test.go
// ---------------------------------------------------------------------------------------

/// "successfully cleans up the director after a failed restore": the VM has only a backup
/// script (backupable, not restorable: cleanup covers both,
/// docs/script-contract.md#the-marker-varvcapstorebbr-backup) and an empty
/// `/var/vcap/store/bbr-backup`.
#[test]
fn director_restore_cleanup_removes_the_directory_on_a_backup_only_instance() {
    let h = Harness::new();
    h.script("redis", Script::Backup, "");
    std::fs::create_dir_all(h.vm.vcap_path("store/bbr-backup")).unwrap();
    let run = h.bbr(&["--debug", "restore-cleanup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(!h.remote_marker_exists(), "{}", run.show());
    assert!(h.events().is_empty(), "no script runs: {:?}", h.events());
}

// ---------------------------------------------------------------------------------------
// integration/deployment/cli_test.go, for `backup` and `restore --artifact-path ...`
// ---------------------------------------------------------------------------------------

const DEPLOYMENT: &str = "my-new-deployment";

/// What Go's mock director expects for every "params" case: `/info`, then the deployment's
/// VMs answered 404. The mock is strict, so these are the only requests.
fn expected_requests() -> Vec<String> {
    vec![
        "GET /info".to_string(),
        format!("GET /deployments/{DEPLOYMENT}/vms?format=full"),
    ]
}

/// A director simulator with no deployments (basic auth `admin`/`admin`) and a workspace
/// holding Go's restore artifact `my-new-deployment/metadata` (`instances: []`).
struct DeploymentCli {
    sim: DirectorSim,
    work: tempfile::TempDir,
}

impl DeploymentCli {
    fn new() -> Self {
        let sim = DirectorSim::start(
            SimSpec {
                deployments: vec![],
            },
            SimOptions::new(),
        )
        .expect("start director simulator");
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir(work.path().join(DEPLOYMENT)).unwrap();
        std::fs::write(
            work.path().join(DEPLOYMENT).join("metadata"),
            "---\ninstances: []",
        )
        .unwrap();
        DeploymentCli { sim, work }
    }

    fn ca(&self) -> String {
        arg(&self.sim.ca_path())
    }

    /// Runs `bbr deployment <args> <cmd...>` with only `env` set of the BOSH variables.
    fn run(&self, env: &[(&str, &str)], args: &[&str], cmd: &[&str]) -> Run {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bbr"));
        for var in [
            "BOSH_ENVIRONMENT",
            "BOSH_CLIENT",
            "BOSH_CLIENT_SECRET",
            "BOSH_DEPLOYMENT",
            "CA_CERT",
            "BOSH_CA_CERT",
        ] {
            c.env_remove(var);
        }
        c.current_dir(self.work.path())
            .envs(env.iter().copied())
            .arg("deployment")
            .args(args)
            .args(cmd)
            .stdin(Stdio::null());
        Run(c.output().unwrap())
    }

    /// Asserts that the run reached the director exactly as Go's mock expects and failed on
    /// the missing deployment; forgets the requests.
    fn assert_reached_director(&self, what: &str, run: &Run) {
        assert_eq!(
            self.sim.requests(),
            expected_requests(),
            "{what}: {}",
            run.show()
        );
        assert_eq!(run.code(), 1, "{what}: {}", run.show());
        assert!(
            run.stderr()
                .contains("Director responded with non-successful status code"),
            "{what}: {}",
            run.show()
        );
        self.sim.clear_requests();
    }
}

/// Environment variables for one run.
type EnvVars<'a> = &'a [(&'a str, &'a str)];

/// The two commands Go's `AssertDeploymentCLIBehaviour` is run for.
fn commands() -> [Vec<&'static str>; 2] {
    [
        vec!["backup"],
        vec!["restore", "--artifact-path", DEPLOYMENT],
    ]
}

/// Go's `assertDeploymentHelpText`: every flag, its usage and env vars, in this order.
fn assert_deployment_help(what: &str, out: &str) {
    let needles = [
        "--target",
        "BOSH Director URL",
        "BOSH_ENVIRONMENT",
        "--username",
        "BOSH Director username",
        "BOSH_CLIENT",
        "--password",
        "BOSH Director password",
        "BOSH_CLIENT_SECRET",
        "--deployment",
        "Name of BOSH deployment. Omit if '--all-deployments' is provided",
        "BOSH_DEPLOYMENT",
        "--ca-cert",
        "Path or value of BOSH Director custom CA certificate",
        "CA_CERT",
        "BOSH_CA_CERT",
        "--debug",
        "Enable debug logs",
        "--all-deployments",
        "Run command for all deployments. Omit if '--deployment' is provided. Currently only supported for: pre-backup-check, backup and backup-cleanup",
    ];
    let mut at = 0;
    for needle in needles {
        match out[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("{what}: help lacks {needle:?} (in order) in\n{out}"),
        }
    }
}

/// "can invoke command with short names" / "with long names" / "password is supported from
/// env": the credentials reach the director (a 404 for the deployment, not a 401).
#[test]
fn deployment_flags_short_long_and_password_from_env_reach_the_director() {
    let t = DeploymentCli::new();
    let ca = t.ca();
    let url = t.sim.url().to_string();
    for cmd in commands() {
        let run = t.run(
            &[],
            &[
                "--ca-cert",
                &ca,
                "-u",
                "admin",
                "-p",
                "admin",
                "-t",
                &url,
                "-d",
                DEPLOYMENT,
            ],
            &cmd,
        );
        t.assert_reached_director(&format!("short names, {cmd:?}"), &run);

        let run = t.run(
            &[],
            &[
                "--ca-cert",
                &ca,
                "--username",
                "admin",
                "--password",
                "admin",
                "--target",
                &url,
                "--deployment",
                DEPLOYMENT,
            ],
            &cmd,
        );
        t.assert_reached_director(&format!("long names, {cmd:?}"), &run);

        let run = t.run(
            &[("BOSH_CLIENT_SECRET", "admin")],
            &[
                "--ca-cert",
                &ca,
                "--username",
                "admin",
                "--target",
                &url,
                "--deployment",
                DEPLOYMENT,
            ],
            &cmd,
        );
        t.assert_reached_director(&format!("password from env, {cmd:?}"), &run);
    }
}

/// "can invoke command with environment variables", "with the CA_CERT environment variable"
/// (the PEM text itself) and "CA_CERT takes precedence over BOSH_CA_CERT".
#[test]
fn deployment_flags_from_environment_variables_and_ca_cert_precedence() {
    let t = DeploymentCli::new();
    let ca = t.ca();
    let url = t.sim.url().to_string();
    let pem = t.sim.ca_pem().to_string();
    let long = [
        "--username",
        "admin",
        "--password",
        "admin",
        "--target",
        &url,
        "--deployment",
        DEPLOYMENT,
    ];
    for cmd in commands() {
        let run = t.run(
            &[
                ("BOSH_ENVIRONMENT", &url),
                ("BOSH_CLIENT", "admin"),
                ("BOSH_CLIENT_SECRET", "admin"),
                ("BOSH_DEPLOYMENT", DEPLOYMENT),
                ("BOSH_CA_CERT", &ca),
            ],
            &[],
            &cmd,
        );
        t.assert_reached_director(&format!("environment variables, {cmd:?}"), &run);

        let run = t.run(&[("CA_CERT", &pem)], &long, &cmd);
        t.assert_reached_director(&format!("CA_CERT as PEM text, {cmd:?}"), &run);

        let run = t.run(
            &[("CA_CERT", &ca), ("BOSH_CA_CERT", "/tmp/no-cert-here")],
            &long,
            &cmd,
        );
        t.assert_reached_director(&format!("CA_CERT over BOSH_CA_CERT, {cmd:?}"), &run);
    }
}

/// "Hostname is malformed", "Custom CA cert cannot be read", "Custom CA cert value is
/// invalid": non-zero exits with bosh-cli's messages, for backup and restore.
#[test]
fn deployment_malformed_target_and_bad_ca_certs_are_named() {
    let t = DeploymentCli::new();
    let ca = t.ca();
    let url = t.sim.url().to_string();
    for cmd in commands() {
        let cases: [(&str, &str, &str); 3] = [
            ("https://:25555", &ca, "invalid bosh URL"),
            (
                &url,
                "/tmp/whatever",
                "open /tmp/whatever: no such file or directory",
            ),
            (&url, "-----BEGIN", "Missing PEM block"),
        ];
        for (target, ca_cert, message) in cases {
            let run = t.run(
                &[("BOSH_CLIENT_SECRET", "admin")],
                &[
                    "--ca-cert",
                    ca_cert,
                    "--username",
                    "admin",
                    "--password",
                    "admin",
                    "--target",
                    target,
                    "--deployment",
                    DEPLOYMENT,
                ],
                &cmd,
            );
            assert_ne!(run.code(), 0, "{cmd:?} {message}: {}", run.show());
            assert!(
                run.stderr().contains(message),
                "{cmd:?}: expected {message:?}: {}",
                run.show()
            );
        }
    }
}

/// "Wrong global args" and "when any required flags are missing": non-zero, the message, and
/// the deployment help text with every flag.
#[test]
fn deployment_wrong_or_missing_flags_print_the_help_text() {
    let t = DeploymentCli::new();
    let url = t.sim.url().to_string();
    for cmd in commands() {
        let run = t.run(
            &[("BOSH_CLIENT_SECRET", "admin")],
            &[
                "--dave",
                "admin",
                "--password",
                "admin",
                "--target",
                &url,
                "--deployment",
                DEPLOYMENT,
            ],
            &cmd,
        );
        assert_ne!(run.code(), 0, "{}", run.show());
        assert!(run.stdout().contains("Incorrect Usage"), "{}", run.show());
        assert_deployment_help(&format!("--dave, {cmd:?}"), &run.stdout());

        let cases: [(EnvVars, Vec<&str>, &str); 3] = [
            (
                &[("BOSH_CLIENT_SECRET", "admin")],
                vec![
                    "--username",
                    "admin",
                    "--password",
                    "admin",
                    "--deployment",
                    DEPLOYMENT,
                ],
                "--target flag is required.",
            ),
            (
                &[("BOSH_CLIENT_SECRET", "admin")],
                vec![
                    "--password",
                    "admin",
                    "--target",
                    &url,
                    "--deployment",
                    DEPLOYMENT,
                ],
                "--username flag is required.",
            ),
            (
                &[],
                vec![
                    "--username",
                    "admin",
                    "--target",
                    &url,
                    "--deployment",
                    DEPLOYMENT,
                ],
                "--password flag is required.",
            ),
        ];
        for (env, args, message) in cases {
            let run = t.run(env, &args, &cmd);
            assert_ne!(run.code(), 0, "{message} {cmd:?}: {}", run.show());
            assert!(
                run.stderr().contains(message),
                "{message} {cmd:?}: {}",
                run.show()
            );
            assert_deployment_help(&format!("{message} {cmd:?}"), &run.stdout());
        }
    }
    assert!(
        t.sim.requests().is_empty(),
        "flag errors never reach the director: {:?}",
        t.sim.requests()
    );
}

/// "with debug flag set": `--debug` logs bosh-cli's HTTP lines.
#[test]
fn deployment_debug_flag_logs_the_http_requests() {
    let t = DeploymentCli::new();
    let ca = t.ca();
    let url = t.sim.url().to_string();
    for cmd in commands() {
        let run = t.run(
            &[],
            &[
                "--debug",
                "--ca-cert",
                &ca,
                "--username",
                "admin",
                "--password",
                "admin",
                "--target",
                &url,
                "--deployment",
                DEPLOYMENT,
            ],
            &cmd,
        );
        assert!(
            run.stdout().contains("Sending GET request to endpoint"),
            "{cmd:?}: {}",
            run.show()
        );
        t.assert_reached_director(&format!("--debug, {cmd:?}"), &run);
    }
}

/// "no arguments": `bbr deployment` alone shows the deployment help text.
#[test]
fn deployment_without_arguments_shows_the_help_text() {
    let t = DeploymentCli::new();
    let run = t.run(&[("BOSH_CLIENT_SECRET", "admin")], &[], &[]);
    assert_deployment_help("no arguments", &run.stdout());
}
