//! End-to-end tests of the two binaries that need no object store: startup validation and
//! exit codes, zero destinations, signals and child process groups, the cross-process
//! `exit_if_in_progress` lock, and secret redaction.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

const IN_PROGRESS: &str = "Backup currently in progress, exiting. Another backup will not be able to start until this is completed.";

#[test]
fn daemon_without_destinations_runs_until_sigterm() {
    let s = Scratch::new();
    let config = s.file(
        "backup.yml",
        "destinations: []\ncron_schedule: '* * * * * *'\n",
    );
    let mut daemon = start(DAEMON, &config);
    daemon.wait_for("Backups Disabled", Duration::from_secs(10));
    daemon.assert_running();
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    let out = daemon.stdout();
    let lines = json_lines(&out);
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert_eq!(
        messages[0],
        "ServiceBackup.No destination provided - skipping backup"
    );
    assert_eq!(messages[1], "ServiceBackup.Service-backup Started");
    assert_eq!(
        messages.last().copied(),
        Some("ServiceBackup.All backup processes terminated. Exiting")
    );
    // The daemon writes lager's "pretty" format.
    let first = &lines[0];
    let keys: Vec<&String> = first.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 5);
    assert_eq!(first["level"], "info");
    assert_eq!(first["source"], "ServiceBackup");
    assert!(out.starts_with("{\"timestamp\":\""));
    assert!(
        out.lines()
            .next()
            .expect("line")
            .contains("Z\",\"level\":\"info\",\"source\":\"ServiceBackup\",\"message\":")
    );
}

#[test]
fn daemon_with_empty_config_defaults_to_monthly() {
    let s = Scratch::new();
    let config = s.file("backup.yml", "");
    let mut daemon = start(DAEMON, &config);
    daemon.wait_for("Service-backup Started", Duration::from_secs(10));
    daemon.assert_running();
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).code(), Some(1));
    assert!(!daemon.stdout().contains("Backups Disabled"));
}

#[test]
fn manual_without_destinations_exits_zero_in_legacy_format() {
    let s = Scratch::new();
    let config = s.file("backup.yml", "source_folder: /nowhere\n");
    let (status, out) = run_to_end(MANUAL, &config, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{out}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0]["message"],
        "ServiceBackup.No destination provided - skipping backup"
    );
    assert_eq!(lines[1]["message"], "ServiceBackup.Backups Disabled");
    assert_eq!(lines[1]["log_level"], 1);
    let ts = lines[1]["timestamp"].as_str().expect("string timestamp");
    let (secs, nanos) = ts.split_once('.').expect("epoch.nanos");
    assert!(secs.parse::<u64>().is_ok() && nanos.len() == 9, "{ts}");
}

#[test]
fn config_errors_exit_2_with_the_original_lines() {
    let s = Scratch::new();
    let src = s.source();
    let good_dest = unreachable_s3("irrelevant-secret");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "not-an-array",
            "destinations: not-an-array\n".to_owned(),
            vec!["error unmarshalling config file", "failed to parse config"],
        ),
        (
            "quoted-bool",
            "exit_if_in_progress: \"true\"\n".to_owned(),
            vec!["error unmarshalling config file", "failed to parse config"],
        ),
        (
            "unknown-type",
            format!(
                "source_folder: {}\ncron_schedule: '@daily'\ndestinations:\n- type: dropbox\n  config: {{}}\n",
                src.display()
            ),
            vec![
                "error parsing destinations",
                "failed to initialize uploader",
                "unknown destination type: dropbox",
            ],
        ),
        (
            "missing-key",
            format!(
                "source_folder: {}\ncron_schedule: '@daily'\ndestinations:\n- type: s3\n  config: {{bucket_name: b, access_key_id: a, secret_access_key: s}}\n",
                src.display()
            ),
            vec![
                "failed to initialize uploader",
                "Missing values for s3: bucket_path",
            ],
        ),
        (
            "missing-source",
            format!("cron_schedule: '@daily'\ndestinations:\n{good_dest}"),
            vec!["failed to parse config", "source_folder"],
        ),
    ];
    for (name, text, expected) in cases {
        let config = s.file(&format!("{name}.yml"), &text);
        for binary in [DAEMON, MANUAL] {
            let (status, out) = run_to_end(binary, &config, Duration::from_secs(10));
            assert_eq!(status.code(), Some(2), "{name} {binary}: {out}");
            for needle in &expected {
                assert!(
                    out.contains(needle),
                    "{name} {binary}: missing {needle:?} in {out}"
                );
            }
            let last = json_lines(&out).pop().expect("a line");
            assert!(
                last["data"]["error"]
                    .as_str()
                    .is_some_and(|e| !e.is_empty()),
                "{out}"
            );
        }
    }
    // A missing file.
    let (status, out) = run_to_end(DAEMON, &s.path("nope.yml"), Duration::from_secs(10));
    assert_eq!(status.code(), Some(2));
    assert!(
        out.contains("error reading config file") && out.contains("failed to parse config"),
        "{out}"
    );
}

#[test]
fn bad_or_empty_cron_exits_2() {
    let s = Scratch::new();
    let src = s.source();
    for (cron, error) in [
        ("'* * * * * 99'", "end of range (99) above maximum (6): 99"),
        ("''", "empty spec string"),
        ("'@every 5 minutes'", "failed to parse duration"),
    ] {
        let config = s.file(
            "cron.yml",
            &format!(
                "source_folder: {}\ncron_schedule: {cron}\ndestinations:\n{}",
                src.display(),
                unreachable_s3("x-secret")
            ),
        );
        let (status, out) = run_to_end(DAEMON, &config, Duration::from_secs(10));
        assert_eq!(status.code(), Some(2), "{out}");
        assert!(out.contains("ServiceBackup.Error scheduling job"), "{out}");
        assert!(out.contains(error), "{out}");
    }
}

#[test]
fn unknown_keys_are_warned() {
    let s = Scratch::new();
    let config = s.file(
        "backup.yml",
        "sauce_folder: /x\nbackup_user: vcap\naws_cli_path: /x/aws\n",
    );
    let (status, out) = run_to_end(MANUAL, &config, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let warnings: Vec<_> = json_lines(&out)
        .into_iter()
        .filter(|l| l["message"] == "ServiceBackup.WARNING: ignoring unknown configuration key")
        .collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert_eq!(warnings[0]["data"]["key"], "sauce_folder");
}

/// A prepare script that records its start (and its background child's pid), and on SIGTERM
/// waits a moment, writes the evidence file and exits 129.
fn term_trapper(s: &Scratch) -> String {
    let started = s.path("started");
    let evidence = s.path("evidence");
    let child_pid = s.path("child.pid");
    s.script(
        "term-trapper",
        &format!(
            "trap 'sleep 1; touch {evidence}; exit 129' TERM\nsleep 1000 &\necho $! > {child_pid}\ntouch {started}\nwait\nexit 1",
            evidence = evidence.display(),
            started = started.display(),
            child_pid = child_pid.display()
        ),
    )
    .display()
    .to_string()
}

fn assert_pid_gone(pid_file: &std::path::Path) {
    wait_for_pid_gone(pid_file, Duration::from_secs(5));
}

#[test]
fn sigterm_during_prepare_terminates_the_process_group() {
    let s = Scratch::new();
    let src = s.source();
    let trapper = term_trapper(&s);
    let config = s.file(
        "backup.yml",
        &format!(
            "source_folder: {}\nsource_executable: {trapper}\ncron_schedule: '* * * * * *'\ndestinations:\n{}",
            src.display(),
            unreachable_s3("x-secret")
        ),
    );
    let mut daemon = start(DAEMON, &config);
    wait_for_file(&s.path("started"), Duration::from_secs(10));
    daemon.signal(Signal::SIGTERM);
    // No wall-clock bound beyond the deadline: what shows the stop did not wait for the next
    // run or for the group's `sleep 1000` is the evidence below.
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    assert!(
        s.path("evidence").exists(),
        "the prepare script got SIGTERM"
    );
    assert_pid_gone(&s.path("child.pid"));
    let out = daemon.stdout();
    assert!(
        out.contains("ServiceBackup.All backup processes terminated. Exiting"),
        "{out}"
    );
    assert_eq!(out.matches("Perform backup started").count(), 1, "{out}");
    assert!(out.contains("SIGTERM propagated to child process"), "{out}");
    assert!(!out.contains("Upload backup started"), "{out}");
}

#[test]
fn manual_backup_sigint_and_sigterm_exit_1() {
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let s = Scratch::new();
        let src = s.source();
        let trapper = term_trapper(&s);
        let config = s.file(
            "backup.yml",
            &format!(
                "source_folder: {}\nsource_executable: {trapper}\ndestinations:\n{}",
                src.display(),
                unreachable_s3("x-secret")
            ),
        );
        let mut manual = start(MANUAL, &config);
        wait_for_file(&s.path("started"), Duration::from_secs(10));
        manual.signal(sig);
        let status = manual.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(1), "{sig}: {}", manual.stdout());
        assert!(s.path("evidence").exists(), "{sig}");
        assert_pid_gone(&s.path("child.pid"));
        assert!(
            manual
                .stdout()
                .contains("All backup processes terminated. Exiting")
        );
    }
}

/// A prepare script that records its start and waits (polling) until `release` exists.
fn blocking_prepare(s: &Scratch, tag: &str) -> String {
    let started = s.path(&format!("started-{tag}"));
    let release = s.path("release");
    s.script(
        &format!("prepare-{tag}"),
        &format!(
            "touch {started}\nwhile [ ! -e {release} ]; do sleep 0.05; done",
            started = started.display(),
            release = release.display()
        ),
    )
    .display()
    .to_string()
}

#[test]
fn exit_if_in_progress_across_two_manual_backups() {
    let s = Scratch::new();
    let src = s.source();
    let state = s.path("state");
    let config_for = |tag: &str| {
        s.file(
            &format!("{tag}.yml"),
            &format!(
                "source_folder: {}\nsource_executable: {}\nexit_if_in_progress: true\nstate_dir: {}\ndestinations:\n{}",
                src.display(),
                blocking_prepare(&s, tag),
                state.display(),
                unreachable_s3("x-secret")
            ),
        )
    };
    let (first_cfg, second_cfg) = (config_for("first"), config_for("second"));
    let mut first = start(MANUAL, &first_cfg);
    wait_for_file(&s.path("started-first"), Duration::from_secs(10));

    let (status, out) = run_to_end(MANUAL, &second_cfg, Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        !s.path("started-second").exists(),
        "the second run must not prepare"
    );
    let lines = json_lines(&out);
    let rejection = lines
        .iter()
        .find(|l| l["message"] == format!("ServiceBackup.{IN_PROGRESS}"))
        .unwrap_or_else(|| panic!("no rejection line in {out}"));
    assert_eq!(rejection["data"]["error"], IN_PROGRESS);
    assert_eq!(rejection["log_level"], 2);
    assert!(out.contains("ServiceBackup.Error running backup"), "{out}");

    std::fs::write(s.path("release"), "").expect("release");
    // The first run goes on to upload (to an unreachable store, so it fails: exit 2).
    let status = first.wait_exit(Duration::from_secs(30));
    let first_out = first.stdout();
    assert!(first_out.contains("Upload backup started"), "{first_out}");
    assert_eq!(status.code(), Some(2));

    // The lock is free again.
    let third = s.file(
        "third.yml",
        &format!(
            "source_folder: {}\nsource_executable: 'true'\nexit_if_in_progress: true\nstate_dir: {}\ndestinations:\n{}",
            src.display(),
            state.display(),
            unreachable_s3("x-secret")
        ),
    );
    let (_, out) = run_to_end(MANUAL, &third, Duration::from_secs(30));
    assert!(out.contains("Perform backup started"), "{out}");
    assert!(!out.contains(IN_PROGRESS), "{out}");
}

#[test]
fn exit_if_in_progress_between_daemon_and_manual_backup() {
    let s = Scratch::new();
    let src = s.source();
    let state = s.path("state");
    let config = s.file(
        "backup.yml",
        &format!(
            "source_folder: {}\nsource_executable: {}\ncron_schedule: '* * * * * *'\nexit_if_in_progress: true\nstate_dir: {}\ndestinations:\n{}",
            src.display(),
            blocking_prepare(&s, "daemon"),
            state.display(),
            unreachable_s3("x-secret")
        ),
    );
    let mut daemon = start(DAEMON, &config);
    wait_for_file(&s.path("started-daemon"), Duration::from_secs(10));
    let (status, out) = run_to_end(MANUAL, &config, Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains(IN_PROGRESS), "{out}");
    // The daemon's own overlapping ticks are rejected too (and, without alerts, say so).
    daemon.wait_for("Alerts not configured.", Duration::from_secs(10));
    assert!(daemon.stdout().contains(IN_PROGRESS));
    assert_eq!(daemon.stdout().matches("Perform backup started").count(), 1);
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).code(), Some(1));
}

#[test]
fn secrets_never_reach_the_log() {
    let s = Scratch::new();
    let src = s.source();
    let s3_secret = "S3SECRETdoNotLog123";
    let azure_key = "QXp1cmVLZXlEb05vdExvZzEyMzQ1Njc4OTA=";
    let scp_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQDONOTLOGTHIS\n-----END OPENSSH PRIVATE KEY-----";
    let prepare = s.script(
        "leaky-prepare",
        &format!("echo \"prepare sees {s3_secret} and {azure_key}\"; echo 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQDONOTLOGTHIS' >&2"),
    );
    let config = s.file(
        "backup.yml",
        &format!(
            r#"source_folder: {src}
source_executable: {prepare}
cleanup_executable: "false"
alerts:
  product_name: SomeDB
  config:
    cloud_controller: {{url: "http://127.0.0.1:9", user: admin, password: CCPASSWORDdoNotLog}}
    notifications: {{service_url: "http://127.0.0.1:9", cf_org: o, cf_space: s, client_id: c, client_secret: CLIENTSECRETdoNotLog}}
destinations:
{s3}- type: azure
  config:
    storage_account: devstoreaccount1
    storage_access_key: {azure_key}
    container: c
    path: p
    endpoint: http://127.0.0.1:9/devstoreaccount1
- type: scp
  name: scp-dest
  config:
    server: 127.0.0.1
    port: 9
    user: u
    destination: /backups
    fingerprint: "127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    key: |
{key}
"#,
            src = src.display(),
            prepare = prepare.display(),
            s3 = unreachable_s3(s3_secret),
            key = scp_key.lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n"),
        ),
    );
    let (status, out) = run_to_end(MANUAL, &config, Duration::from_secs(60));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("Perform backup output"), "{out}");
    assert!(out.contains("[REDACTED]"), "{out}");
    assert!(out.contains("Upload backup completed with error"), "{out}");
    for secret in [
        s3_secret,
        azure_key,
        "DONOTLOGTHIS",
        "CCPASSWORDdoNotLog",
        "CLIENTSECRETdoNotLog",
        "BEGIN OPENSSH PRIVATE KEY",
    ] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
    // Every destination was tried even though the first failed, and errors are joined.
    let err_line = json_lines(&out)
        .into_iter()
        .find(|l| l["message"] == "ServiceBackup.Upload backup completed with error")
        .expect("error line");
    assert!(
        err_line["data"]["error"]
            .as_str()
            .expect("error")
            .matches("; ")
            .count()
            >= 2,
        "{err_line}"
    );
    assert!(out.contains("\"destination_name\":\"scp-dest\""), "{out}");
    assert!(out.contains("ServiceBackup.s3 completed"), "{out}");
    assert!(
        !out.contains("Cleanup started"),
        "no cleanup after a failed upload"
    );
}

#[test]
fn missing_source_folder_is_an_error_not_a_crash() {
    let s = Scratch::new();
    let config = s.file(
        "backup.yml",
        &format!(
            "source_folder: {}\ndestinations:\n{}",
            s.path("does-not-exist").display(),
            unreachable_s3("x-secret")
        ),
    );
    let (status, out) = run_to_end(MANUAL, &config, Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("does-not-exist"), "{out}");
    assert!(out.contains("Upload backup completed with error"), "{out}");
}

#[test]
fn missing_config_argument_exits_2() {
    for binary in [DAEMON, MANUAL] {
        let out = output_within(
            &mut std::process::Command::new(binary),
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    }
}
