//! Unit tests of the merge, the format and the file handling.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn dir() -> (tempfile::TempDir, MetricsFile) {
    let d = tempfile::tempdir().expect("tempdir");
    let f = MetricsFile::new(d.path().join("bbr.prom"));
    (d, f)
}

fn text(f: &MetricsFile) -> String {
    std::fs::read_to_string(f.path()).expect("read metrics")
}

fn sample(f: &MetricsFile, line_start: &str) -> Option<f64> {
    text(f).lines().find_map(|l| {
        l.strip_prefix(line_start)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.parse().expect("value"))
    })
}

fn backup(secs: u64, code: i32, bytes: f64) -> RunMetrics {
    RunMetrics::new(at(secs), Duration::from_millis(2500), Outcome::Exited(code))
        .with_gauge(gauges::BYTES_DRAINED, bytes)
        .with_gauge(gauges::LOCK_HELD_SECONDS, 1.5)
}

#[test]
fn a_first_backup_writes_every_series_with_help_and_type() {
    let (_d, f) = dir();
    let r = f
        .record(
            Job::BbrBackup,
            &[("deployment", "redis")],
            &backup(1000, 0, 4096.0),
        )
        .expect("record");
    assert_eq!(r.discarded, None);
    let l = "{command=\"backup\",deployment=\"redis\"}";
    let expected = [
        "# HELP bbr_bytes_drained Bytes of backup artifacts drained from the VMs by the last run.",
        "# TYPE bbr_bytes_drained gauge",
        &format!("bbr_bytes_drained{l} 4096"),
        "# HELP bbr_exit_code The exit code of the last bbr run (0: success).",
        "# TYPE bbr_exit_code gauge",
        &format!("bbr_exit_code{l} 0"),
        "# HELP bbr_last_run_timestamp_seconds When the last bbr run finished (Unix time), successful or not.",
        "# TYPE bbr_last_run_timestamp_seconds gauge",
        &format!("bbr_last_run_timestamp_seconds{l} 1000"),
        "# HELP bbr_last_success_timestamp_seconds When the last successful bbr run finished (Unix time; 0: none recorded). A failed run leaves it as it was.",
        "# TYPE bbr_last_success_timestamp_seconds gauge",
        &format!("bbr_last_success_timestamp_seconds{l} 1000"),
        "# HELP bbr_lock_held_seconds Seconds from the first pre-backup-lock to the last post-backup-unlock of the last run.",
        "# TYPE bbr_lock_held_seconds gauge",
        &format!("bbr_lock_held_seconds{l} 1.5"),
        "# HELP bbr_run_duration_seconds How long the last bbr run took.",
        "# TYPE bbr_run_duration_seconds gauge",
        &format!("bbr_run_duration_seconds{l} 2.5"),
    ];
    assert_eq!(text(&f), expected.join("\n") + "\n");
}

#[test]
fn a_failed_run_keeps_the_last_success_and_updates_the_rest() {
    let (_d, f) = dir();
    let labels = [("deployment", "redis")];
    let _ = f
        .record(Job::BbrBackup, &labels, &backup(1000, 0, 10.0))
        .expect("ok run");
    let _ = f
        .record(Job::BbrBackup, &labels, &backup(2000, 1, 3.0))
        .expect("failed run");
    let l = "{command=\"backup\",deployment=\"redis\"}";
    assert_eq!(
        sample(&f, &format!("bbr_last_success_timestamp_seconds{l}")),
        Some(1000.0)
    );
    assert_eq!(
        sample(&f, &format!("bbr_last_run_timestamp_seconds{l}")),
        Some(2000.0)
    );
    assert_eq!(sample(&f, &format!("bbr_exit_code{l}")), Some(1.0));
    assert_eq!(sample(&f, &format!("bbr_bytes_drained{l}")), Some(3.0));
    // A later success moves it on.
    let _ = f
        .record(Job::BbrBackup, &labels, &backup(3000, 0, 3.0))
        .expect("ok run");
    assert_eq!(
        sample(&f, &format!("bbr_last_success_timestamp_seconds{l}")),
        Some(3000.0)
    );
}

#[test]
fn a_deployment_that_never_succeeded_has_last_success_zero() {
    let (_d, f) = dir();
    let _ = f
        .record(
            Job::BbrBackup,
            &[("deployment", "new")],
            &backup(500, 1, 0.0),
        )
        .expect("record");
    assert_eq!(
        sample(
            &f,
            "bbr_last_success_timestamp_seconds{command=\"backup\",deployment=\"new\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn other_deployments_commands_and_jobs_are_kept() {
    let (_d, f) = dir();
    let _ = f
        .record(Job::BbrBackup, &[("deployment", "a")], &backup(100, 0, 1.0))
        .expect("a");
    let _ = f
        .record(Job::BbrBackup, &[("deployment", "b")], &backup(200, 0, 2.0))
        .expect("b");
    let prune = RunMetrics::new(at(300), Duration::from_secs(1), Outcome::Exited(0))
        .with_gauge(gauges::ARTIFACTS_KEPT, 7.0)
        .with_gauge(gauges::ARTIFACTS_PRUNED, 2.0);
    let _ = f
        .record(Job::BbrPrune, &[("deployment", "a")], &prune)
        .expect("prune");
    let sb = RunMetrics::new(at(400), Duration::from_secs(9), Outcome::Succeeded)
        .with_labelled_gauge(gauges::BYTES_UPLOADED, &[("destination", "s3")], 5.0);
    let _ = f
        .record(Job::ServiceBackup, &[], &sb)
        .expect("service-backup");
    // Re-record a: b, a's prune and service-backup stay as they were.
    let _ = f
        .record(Job::BbrBackup, &[("deployment", "a")], &backup(500, 0, 9.0))
        .expect("a again");
    assert_eq!(
        sample(&f, "bbr_bytes_drained{command=\"backup\",deployment=\"a\"}"),
        Some(9.0)
    );
    assert_eq!(
        sample(&f, "bbr_bytes_drained{command=\"backup\",deployment=\"b\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &f,
            "bbr_last_run_timestamp_seconds{command=\"prune\",deployment=\"a\"}"
        ),
        Some(300.0)
    );
    assert_eq!(
        sample(
            &f,
            "bbr_artifacts_pruned{command=\"prune\",deployment=\"a\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&f, "service_backup_bytes_uploaded{destination=\"s3\"}"),
        Some(5.0)
    );
    assert_eq!(sample(&f, "service_backup_success"), Some(1.0));
    // Each HELP/TYPE pair appears once however many series a family has.
    assert_eq!(
        text(&f)
            .matches("# TYPE bbr_last_run_timestamp_seconds gauge")
            .count(),
        1
    );
}

#[test]
fn a_run_replaces_all_its_labelled_series() {
    let (_d, f) = dir();
    let two = RunMetrics::new(at(1), Duration::ZERO, Outcome::Succeeded)
        .with_labelled_gauge(gauges::BYTES_UPLOADED, &[("destination", "old")], 1.0)
        .with_labelled_gauge(gauges::BYTES_UPLOADED, &[("destination", "kept")], 2.0);
    let _ = f.record(Job::ServiceBackup, &[], &two).expect("first");
    let one = RunMetrics::new(at(2), Duration::ZERO, Outcome::Failed).with_labelled_gauge(
        gauges::BYTES_UPLOADED,
        &[("destination", "kept")],
        0.0,
    );
    let _ = f.record(Job::ServiceBackup, &[], &one).expect("second");
    let t = text(&f);
    assert!(!t.contains("destination=\"old\""), "{t}");
    assert_eq!(
        sample(&f, "service_backup_bytes_uploaded{destination=\"kept\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&f, "service_backup_success"), Some(0.0));
    assert_eq!(
        sample(&f, "service_backup_last_success_timestamp_seconds"),
        Some(1.0)
    );
    assert_eq!(
        sample(&f, "service_backup_last_run_timestamp_seconds"),
        Some(2.0)
    );
}

#[test]
fn label_values_are_escaped_and_matched_after_reading_back() {
    let (_d, f) = dir();
    let name = "we\\ird \"dep\"\nloyment";
    let _ = f
        .record(Job::BbrBackup, &[("deployment", name)], &backup(10, 0, 1.0))
        .expect("ok");
    let _ = f
        .record(Job::BbrBackup, &[("deployment", name)], &backup(20, 2, 1.0))
        .expect("fail");
    let l = "{command=\"backup\",deployment=\"we\\\\ird \\\"dep\\\"\\nloyment\"}";
    assert_eq!(
        sample(&f, &format!("bbr_last_success_timestamp_seconds{l}")),
        Some(10.0)
    );
    assert_eq!(sample(&f, &format!("bbr_exit_code{l}")), Some(2.0));
    // Read back as the same series: one sample per family, not two.
    assert_eq!(text(&f).matches("bbr_exit_code{").count(), 1);
}

#[test]
fn the_file_is_replaced_atomically_with_mode_0644_and_no_temp_file() {
    let (d, f) = dir();
    std::fs::write(f.path(), "").expect("pre-create");
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let before = std::fs::metadata(f.path()).expect("stat");
    // A temp file left by a crashed writer with our pid is replaced, not appended to.
    let stale = file::temp_path(f.path()).expect("temp path");
    std::fs::write(&stale, "garbage").expect("stale");
    let _ = f
        .record(Job::BbrBackup, &[("deployment", "x")], &backup(1, 0, 1.0))
        .expect("record");
    let after = std::fs::metadata(f.path()).expect("stat");
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        before.ino(),
        after.ino(),
        "renamed into place, not rewritten"
    );
    assert_eq!(after.permissions().mode() & 0o777, 0o644);
    let names: Vec<String> = std::fs::read_dir(d.path())
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["bbr.prom".to_owned()]);
}

#[test]
fn concurrent_writers_keep_each_others_series() {
    let (_d, f) = dir();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || {
                for round in 0..5 {
                    let dep = format!("d{i}");
                    let _ = f
                        .record(
                            Job::BbrBackup,
                            &[("deployment", &dep)],
                            &backup(round, 0, 1.0),
                        )
                        .expect("record");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("join");
    }
    for i in 0..8 {
        assert_eq!(
            sample(
                &f,
                &format!(
                    "bbr_last_run_timestamp_seconds{{command=\"backup\",deployment=\"d{i}\"}}"
                )
            ),
            Some(4.0),
            "{}",
            text(&f)
        );
    }
}

#[test]
fn a_corrupt_file_is_replaced_and_reported() {
    let (_d, f) = dir();
    std::fs::write(f.path(), "other_metric{a=\"1\" 2\n").expect("write");
    let r = f
        .record(Job::BbrBackup, &[("deployment", "x")], &backup(1, 0, 1.0))
        .expect("record");
    let corrupt = r.discarded.expect("reported");
    assert_eq!(corrupt.path, f.path());
    assert_eq!(corrupt.error.line, 1);
    let message = corrupt.to_string();
    assert!(
        message.contains(&f.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("replaced"), "{message}");
    assert!(!text(&f).contains("other_metric"));
    assert!(text(&f).contains("bbr_exit_code{command=\"backup\",deployment=\"x\"} 0"));

    std::fs::write(f.path(), b"\xff\xfe").expect("write");
    let r = f
        .record(Job::BbrBackup, &[("deployment", "x")], &backup(1, 0, 1.0))
        .expect("record");
    assert!(
        r.discarded
            .expect("reported")
            .error
            .reason
            .contains("UTF-8")
    );
}

#[test]
fn unreadable_and_unwritable_paths_are_errors_naming_the_file() {
    let d = tempfile::tempdir().expect("tempdir");
    let run = backup(1, 0, 1.0);
    // Missing directory.
    let missing = MetricsFile::new(d.path().join("no/such/dir/bbr.prom"));
    let e = missing
        .record(Job::BbrBackup, &[], &run)
        .expect_err("missing dir");
    assert!(matches!(e, MetricsError::Read { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&missing.path().display().to_string()),
        "{e}"
    );
    // The path is a directory.
    let is_dir = MetricsFile::new(d.path().join("adir"));
    std::fs::create_dir(is_dir.path()).expect("mkdir");
    let e = is_dir
        .record(Job::BbrBackup, &[], &run)
        .expect_err("a directory");
    assert!(matches!(e, MetricsError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("adir"), "{e}");
    // The temporary file cannot be written (a non-empty directory holds its name): root
    // ignores permission bits, so this is how a write failure is provoked.
    let f = MetricsFile::new(d.path().join("w.prom"));
    let tmp = file::temp_path(f.path()).expect("temp");
    std::fs::create_dir(&tmp).expect("mkdir");
    std::fs::write(tmp.join("x"), "x").expect("write");
    let e = f.record(Job::BbrBackup, &[], &run).expect_err("unwritable");
    assert!(matches!(e, MetricsError::Write { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&f.path().display().to_string()),
        "{e}"
    );
    assert!(!f.path().exists());
}

#[test]
fn invalid_or_colliding_labels_are_refused() {
    let (_d, f) = dir();
    let run = backup(1, 0, 1.0);
    let e = f
        .record(Job::BbrBackup, &[("bad-name", "x")], &run)
        .expect_err("bad");
    assert!(e.to_string().contains("bad-name"), "{e}");
    let e = f
        .record(Job::BbrBackup, &[("command", "x")], &run)
        .expect_err("collides");
    assert!(e.to_string().contains("command"), "{e}");
    let run = run.with_labelled_gauge(gauges::BYTES_UPLOADED, &[("deployment", "y")], 1.0);
    let e = f
        .record(Job::BbrBackup, &[("deployment", "x")], &run)
        .expect_err("collides");
    assert!(matches!(e, MetricsError::InvalidName { .. }), "{e:?}");
    assert!(!f.path().exists(), "nothing written");
}
