//! `bbr director backup` and `pre-backup-check` end to end against a real sshd VM
//! (following Go bbr's `integration/director/*_test.go`, and the director rows of the failure
//! matrix: docs/cli.md#exit-codes).

mod support;

use support::*;

const FOOTER: &str = "It is recommended that you run `bbr backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";

fn backup_job(h: &Harness) {
    h.locked_backup_job("bosh", "printf 'this is a backup\\n' > \"$BBR_ARTIFACT_DIRECTORY/backup\"\nmkdir -p \"$ARTIFACT_DIRECTORY/nested/empty\"\nhead -c 300000 /dev/urandom > \"$ARTIFACT_DIRECTORY/nested/big file\"");
}

#[test]
fn backup_writes_go_compatible_artifact_and_cleans_up() {
    let h = Harness::new();
    backup_job(&h);
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let artifact = h.artifact_in(h.work.path());
    let dir_name = artifact.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        dir_name.starts_with(&format!("{}_", h.name())),
        "{dir_name}"
    );
    assert!(
        dir_name.ends_with('Z') && dir_name.len() == h.name().len() + 17,
        "{dir_name}"
    );
    let tar = artifact.join("bosh-0-bosh.tar");
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&tar)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("./backup"), "{listing}");
    assert!(listing.contains("./nested/big file"), "{listing}");
    let metadata = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    let expected_sum = sha256_hex(b"this is a backup\n");
    assert!(
        metadata.starts_with(&format!(
            "instances:\n- name: bosh\n  index: \"0\"\n  artifacts:\n  - name: bosh\n    checksums:\n      ./backup: {expected_sum}\n"
        )),
        "{metadata}"
    );
    assert!(
        metadata.contains("backup_activity:\n  start_time: "),
        "{metadata}"
    );
    assert!(metadata.contains("\n  finish_time: "), "{metadata}");
    assert!(
        !h.remote_marker_exists(),
        "remote artifact dir must be removed"
    );
    let out = run.stdout();
    for line in [
        "INFO - Looking for scripts",
        "INFO - bosh/0/bosh/backup",
        &format!("INFO - Running pre-checks for backup of {}...", h.name()),
        &format!("INFO - Starting backup of {}...", h.name()),
        "INFO - Locking bosh on bosh/0 for backup...",
        "INFO - Backing up bosh on bosh/0...",
        "INFO - Finished backing up bosh on bosh/0.",
        "INFO - Unlocking bosh on bosh/0...",
        "uncompressed -- for job bosh on bosh/0...",
        "INFO - Copying backup for job bosh on bosh/0 -- 100% complete",
        "INFO - Finished validity checks -- for job bosh on bosh/0...",
        &format!("INFO - Backup created of {} on", h.name()),
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert!(out.lines().all(|l| l.starts_with("[bbr] ")), "{out}");
    assert_eq!(
        h.events(),
        vec![
            "bosh pre-backup-lock",
            "bosh backup",
            "bosh post-backup-unlock true"
        ]
    );
}

#[test]
fn artifact_path_must_exist() {
    let h = Harness::new();
    backup_job(&h);
    let run = h.bbr(&["backup", "--artifact-path", "/no/such/dir"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(run.stderr().contains("/no/such/dir"), "{}", run.show());
    // locks were never taken: the failure comes before locking
    assert!(h.events().is_empty(), "{:?}", h.events());
}

#[test]
fn backup_script_failure_unlocks_and_exits_1_without_footer() {
    let h = Harness::new();
    h.locked_backup_job("bosh", "echo 'ultra-bar' >&2\nexit 1");
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains(
            "Error attempting to run backup for job bosh on bosh/0: ultra-bar - exit code 1"
        ),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains(FOOTER));
    assert_eq!(
        h.events(),
        vec![
            "bosh pre-backup-lock",
            "bosh backup",
            "bosh post-backup-unlock false"
        ]
    );
    assert!(!h.remote_marker_exists());
    let logs: Vec<_> = std::fs::read_dir(h.work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".err.log"))
        .collect();
    assert_eq!(logs.len(), 1, "an err.log is written");
}

#[test]
fn lock_failure_exits_4_and_still_unlocks() {
    let h = Harness::new();
    h.script(
        "bosh",
        Script::PreBackupLock,
        "echo 'no lock for you' >&2\nexit 1",
    );
    h.script(
        "bosh",
        Script::Backup,
        "touch \"$BBR_ARTIFACT_DIRECTORY/x\"",
    );
    h.script("bosh", Script::PostBackupUnlock, "");
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 4, "{}", run.show());
    assert!(run.stderr().contains("Error attempting to run pre-backup-lock for job bosh on bosh/0: no lock for you - exit code 1"));
    assert!(!run.stderr().contains(FOOTER));
    assert_eq!(
        h.events(),
        vec!["bosh pre-backup-lock", "bosh post-backup-unlock false"]
    );
}

#[test]
fn unlock_failure_exits_8_with_footer_and_keeps_the_artifact() {
    let h = Harness::new();
    h.script(
        "bosh",
        Script::Backup,
        "echo data > \"$BBR_ARTIFACT_DIRECTORY/d\"",
    );
    h.script(
        "bosh",
        Script::PostBackupUnlock,
        "echo 'cannot unlock' >&2\nexit 3",
    );
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 8, "{}", run.show());
    assert!(run.stderr().contains(FOOTER), "{}", run.show());
    let artifact = h.artifact_in(h.work.path());
    assert!(artifact.join("bosh-0-bosh.tar").exists(), "drain still ran");
    assert!(
        std::fs::read_to_string(artifact.join("metadata"))
            .unwrap()
            .contains("./d: ")
    );
}

#[test]
fn existing_remote_artifact_dir_is_refused_and_preserved() {
    let h = Harness::new();
    backup_job(&h);
    h.vm.install_file("store/bbr-backup/leftover", "x", 0o644)
        .unwrap();
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("Directory /var/vcap/store/bbr-backup already exists on instance bosh/0"),
        "{}",
        run.show()
    );
    assert!(run.stderr().contains(FOOTER));
    assert!(
        h.vm.exists("store/bbr-backup/leftover"),
        "must not be removed"
    );
    assert_eq!(h.artifact_dirs(h.work.path()), 0, "no local artifact");
    assert!(h.events().is_empty());

    let check = h.bbr(&["pre-backup-check"]);
    assert_eq!(check.code(), 1);
    assert!(
        check.stdout().contains("Director cannot be backed up."),
        "{}",
        check.show()
    );
    assert!(check.stderr().contains(FOOTER));
}

#[test]
fn no_backup_scripts_is_an_error_without_footer() {
    let h = Harness::new();
    h.script("bosh", Script::Restore, "");
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains(&format!("Deployment '{}' has no backup scripts", h.name()))
    );
    assert!(!run.stderr().contains(FOOTER));
    assert_eq!(h.artifact_dirs(h.work.path()), 0);
}

#[test]
fn disabled_and_mysql_jobs_are_skipped() {
    let h = Harness::new();
    h.script(
        "bosh",
        Script::Backup,
        "touch \"$BBR_ARTIFACT_DIRECTORY/b\"",
    );
    h.script("bosh", Script::Metadata, "echo 'skip_bbr_scripts: true'");
    h.script(
        "mysql-backup",
        Script::Backup,
        "touch \"$BBR_ARTIFACT_DIRECTORY/m\"",
    );
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("has no backup scripts"),
        "{}",
        run.show()
    );
    assert!(!run.stdout().contains("mysql-backup"));
}

#[test]
fn metadata_sees_bbr_version_and_orders_locks_by_job_name() {
    let h = Harness::new();
    // "first" must be locked before "second", which must be locked before "third"
    h.script("first", Script::Metadata, "[ -n \"$BBR_VERSION\" ] || exit 9\necho 'backup_should_be_locked_before:\n- job_name: second\n  release: bosh'");
    h.script(
        "second",
        Script::Metadata,
        "echo 'backup_should_be_locked_before:\n- job_name: third\n  release: whatever'",
    );
    for job in ["first", "second", "third"] {
        h.locked_backup_job(job, "echo x > \"$BBR_ARTIFACT_DIRECTORY/x\"");
    }
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout()
            .contains("Detected order: first should be locked before second during backup"),
        "{}",
        run.show()
    );
    let events = h.events();
    let pos = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} not in {events:?}"))
    };
    assert!(pos("first pre-backup-lock") < pos("second pre-backup-lock"));
    assert!(pos("second pre-backup-lock") < pos("third pre-backup-lock"));
    assert!(pos("third post-backup-unlock true") < pos("second post-backup-unlock true"));
    assert!(pos("second post-backup-unlock true") < pos("first post-backup-unlock true"));
    let artifact = h.artifact_in(h.work.path());
    for job in ["first", "second", "third"] {
        assert!(artifact.join(format!("bosh-0-{job}.tar")).exists());
    }
}

#[test]
fn cyclic_ordering_is_refused_before_anything_is_locked() {
    let h = Harness::new();
    h.script(
        "a",
        Script::Metadata,
        "echo 'backup_should_be_locked_before:\n- job_name: b\n  release: r'",
    );
    h.script(
        "b",
        Script::Metadata,
        "echo 'backup_should_be_locked_before:\n- job_name: a\n  release: r'",
    );
    h.script("a", Script::Backup, "");
    h.script("b", Script::PreBackupLock, "");
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("job locking dependency graph is cyclic")
    );
    assert_eq!(h.artifact_dirs(h.work.path()), 0);
    assert!(!h.events().iter().any(|e| e.contains("pre-backup-lock")));
}

#[test]
fn invalid_metadata_yaml_fails() {
    let h = Harness::new();
    h.script(
        "bosh",
        Script::Metadata,
        "echo 'backup_should_be_locked_before: [: nope'",
    );
    h.script("bosh", Script::Backup, "");
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("Parsing metadata from job bosh on bosh/0 failed"),
        "{}",
        run.show()
    );
}

#[test]
fn discontinued_backup_name_warns_and_uses_default_artifact() {
    let h = Harness::new();
    h.script("bosh", Script::Metadata, "echo 'backup_name: custom'");
    h.script(
        "bosh",
        Script::Backup,
        "echo x > \"$BBR_ARTIFACT_DIRECTORY/x\"",
    );
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains(
            "WARN - discontinued metadata keys backup_name/restore_name found in job bosh"
        )
    );
    assert!(
        h.artifact_in(h.work.path())
            .join("bosh-0-bosh.tar")
            .exists()
    );
}

#[test]
fn pre_backup_check_reports_success_and_runs_no_lock() {
    let h = Harness::new();
    backup_job(&h);
    let run = h.bbr(&["pre-backup-check"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(run.stdout().contains("Director can be backed up."));
    assert!(h.events().is_empty());
    let none = Harness::new();
    let run = none.bbr(&["c"]);
    assert_eq!(run.code(), 1);
    assert!(run.stdout().contains("Director cannot be backed up."));
    assert!(run.stderr().contains("has no backup scripts"));
}

#[test]
fn backup_cleanup_unlocks_and_removes_the_marker() {
    let h = Harness::new();
    backup_job(&h);
    h.vm.install_file("store/bbr-backup/bosh/partial", "x", 0o644)
        .unwrap();
    let run = h.bbr(&["backup-cleanup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(!h.remote_marker_exists());
    assert_eq!(h.events(), vec!["bosh post-backup-unlock false"]);
    assert!(run.stdout().contains(&format!("'{}' cleaned up", h.name())));
    // and the next backup works
    assert_eq!(h.bbr(&["backup"]).code(), 0);
}

#[test]
fn restore_cleanup_removes_the_marker() {
    let h = Harness::new();
    h.script("bosh", Script::Restore, "");
    h.script("bosh", Script::PostRestoreUnlock, "");
    h.vm.install_file("store/bbr-backup/bosh/partial", "x", 0o644)
        .unwrap();
    let run = h.bbr(&["restore-cleanup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(!h.remote_marker_exists());
    assert_eq!(h.events(), vec!["bosh post-restore-unlock"]);
}

#[test]
fn keep_last_prunes_the_older_artifacts_after_a_good_backup_and_metrics_are_written() {
    let h = Harness::new();
    backup_job(&h);
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    // Make that artifact an old one, so the next backup cannot share its second.
    let first = h.artifact_in(h.work.path());
    let old = h.work.path().join(format!("{}_20200101T000000Z", h.name()));
    std::fs::rename(&first, &old).unwrap();
    // An unrelated directory is left alone.
    std::fs::create_dir(h.work.path().join("not-an-artifact")).unwrap();
    let metrics = h.work.path().join("bbr.prom");
    let run = h.bbr(&[
        "backup",
        "--keep-last",
        "1",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        !old.exists(),
        "the older artifact was pruned: {}",
        run.show()
    );
    let artifacts: Vec<_> = std::fs::read_dir(h.work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{}_", h.name())))
        })
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let newest = &artifacts[0];
    assert!(newest.join("metadata").exists());
    assert!(h.work.path().join("not-an-artifact").exists());
    let out = run.stdout();
    assert!(
        out.contains(&format!("Pruning the artifacts of {}", h.name())),
        "{out}"
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    let series = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("command=\"backup\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let tar = std::fs::metadata(newest.join("bosh-0-bosh.tar"))
        .unwrap()
        .len();
    assert_eq!(series("bbr_bytes_drained"), tar as f64, "{text}");
    assert_eq!(series("bbr_artifacts_pruned"), 1.0, "{text}");
    assert_eq!(series("bbr_artifacts_kept"), 1.0, "{text}");
    assert_eq!(series("bbr_exit_code"), 0.0, "{text}");
    assert!(series("bbr_lock_held_seconds") > 0.0, "{text}");
    assert!(series("bbr_last_success_timestamp_seconds") > 0.0, "{text}");
}

#[test]
fn a_failed_backup_keeps_the_last_success_in_the_metrics_file() {
    let h = Harness::new();
    backup_job(&h);
    let metrics = h.work.path().join("bbr.prom");
    let path = metrics.to_str().unwrap();
    let labels = serde_json::json!({"deployment": h.name(), "command": "backup"});
    let value = |name: &str| support::metrics::metric(&metrics, name, labels.clone());
    let run = h.bbr(&["backup", "--metrics-file", path]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let success = value("bbr_last_success_timestamp_seconds").expect("a last success");
    assert!(success > 0.0);
    assert_eq!(value("bbr_exit_code"), Some(0.0));
    assert!(value("bbr_bytes_drained").is_some_and(|b| b > 0.0));

    // The same job now fails: the run is recorded, the last success is not moved.
    h.locked_backup_job("bosh", "echo 'ultra-bar' >&2\nexit 1");
    let run = h.bbr(&["backup", "--metrics-file", path]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert_eq!(value("bbr_exit_code"), Some(1.0));
    assert_eq!(value("bbr_last_success_timestamp_seconds"), Some(success));
    assert!(value("bbr_last_run_timestamp_seconds").is_some_and(|t| t >= success));
    assert_eq!(value("bbr_bytes_drained"), Some(0.0));
}
