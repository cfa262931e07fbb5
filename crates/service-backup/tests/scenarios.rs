//! Scenarios from the original service-backup's test suite and its edge cases
//! (docs/service-backup.md#exit-codes-and-signals) that the other suites do not cover with the same
//! strength. Each runs the built `service-backup` / `manual-backup` binaries against real stores
//! (SeaweedFS, Azurite, fake-gcs-server, an OpenSSH sshd "VM") and checks what arrived with the
//! test kit's independent clients; the CF alert endpoints are local HTTP stand-ins, as in
//! `alerts.rs`.
//!
//! Where README.md documents a deliberate difference from the original, the test asserts our
//! documented behaviour and says so; everywhere else it asserts the original's behaviour
//! (docs/service-backup.md).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use bbr_testkit::stores::gcs_service_account_json;
use bbr_testkit::{ClientKey, KeyType, Vm, VmOptions};
use chrono::Timelike;
use common::http::{Reply, StandIn};
use common::stores::{azurite, fake_gcs, seaweed, today, unique};
use common::{DAEMON, MANUAL, Running, Scratch, json_lines, run_to_end, start, wait_for_file};
use nix::sys::signal::Signal;
use serde_json::Value;

const IN_PROGRESS: &str = "Backup currently in progress, exiting. Another backup will not be able to start until this is completed.";

/// A script's "wait here" loop. Bounded (about a minute), so that a script orphaned by a
/// failed test, or on purpose by the SIGINT test, does not outlive it for long.
const WAIT_LOOP: &str = "i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done";

/// The executor's own actions (docs/service-backup.md#log-lines, plus our documented `... output`
/// lines), in run order.
const RUN_ACTIONS: &[&str] = &[
    "Service identifier command not found",
    "Service identifier command returned error",
    IN_PROGRESS,
    "source_executable not provided, skipping performing of backup",
    "Perform backup started",
    "Perform backup output",
    "Perform backup completed successfully",
    "Perform backup completed with error",
    "Upload backup started",
    "Upload backup completed successfully",
    "Upload backup completed with error",
    "Cleanup command not provided",
    "Cleanup started",
    "Cleanup output",
    "Cleanup completed successfully",
    "Cleanup completed with error",
    "Error running backup",
];

// ---------------------------------------------------------------------------------------------
// Config fragments

fn name_line(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("  name: {name}\n")
    }
}

/// An S3 destination on SeaweedFS, in the original's config shape.
fn s3_destination(name: &str, bucket: &str, path: &str, region: &str) -> String {
    let s = seaweed();
    format!(
        "- type: s3\n{}  config:\n    endpoint_url: '{}'\n    region: '{region}'\n    bucket_name: {bucket}\n    bucket_path: {path}\n    access_key_id: {}\n    secret_access_key: {}\n",
        name_line(name),
        s.endpoint(),
        s.access_key_id(),
        s.secret_access_key(),
    )
}

fn azure_destination(name: &str, container: &str, path: &str) -> String {
    let a = azurite();
    format!(
        "- type: azure\n{}  config:\n    storage_account: {}\n    storage_access_key: {}\n    container: {container}\n    path: {path}\n    endpoint: {}\n",
        name_line(name),
        a.account(),
        a.access_key(),
        a.blob_endpoint()
    )
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

fn gcs_destination(name: &str, bucket: &str) -> String {
    let json = gcs_service_account_json("sb-project").expect("service account json");
    format!(
        "- type: gcs\n{}  config:\n    project_id: sb-project\n    bucket_name: {bucket}\n    endpoint: {}\n    service_account_json: |\n{}",
        name_line(name),
        fake_gcs().endpoint(),
        indent(&json, 6)
    )
}

fn scp_destination(
    vm: &Vm,
    key: &ClientKey,
    name: &str,
    destination: &Path,
    fingerprint: &str,
) -> String {
    format!(
        "- type: scp\n{}  config:\n    server: {}\n    user: {}\n    destination: {}\n    fingerprint: '{fingerprint}'\n    key: |\n{}    port: {}\n",
        name_line(name),
        vm.addr(),
        vm.user(),
        destination.display(),
        indent(&key.private_key_pem().expect("key pem"), 6),
        vm.port()
    )
}

/// A directory on the host the VM's login user may write to (the "remote" side of SCP).
fn remote_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

/// A cron spec firing at the given offsets (in seconds, ≥ 3 from now) once a minute: runs
/// that happen a known number of times while the test lasts.
fn seconds_from_now(offsets: &[i64]) -> String {
    let now = chrono::Local::now();
    let seconds: Vec<String> = offsets
        .iter()
        .map(|o| (now + chrono::Duration::seconds(*o)).second().to_string())
        .collect();
    format!("{} * * * * *", seconds.join(","))
}

// ---------------------------------------------------------------------------------------------
// Sources and remote trees

/// Deterministic, incompressible-looking bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The scpintegration source: `1.txt`, `subdir/2.txt` and a dotfile.
fn scp_source(s: &Scratch) -> PathBuf {
    let src = s.path("source");
    std::fs::create_dir_all(src.join("subdir")).expect("mkdir");
    std::fs::write(src.join(".dotFile.txt"), "I'm a hidden file").expect("write");
    std::fs::write(src.join("1.txt"), "1").expect("write");
    std::fs::write(src.join("subdir/2.txt"), "2").expect("write");
    src
}

/// Every file under `root` as `/`-separated relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_s3_holds(bucket: &str, prefix: &str, expected: &BTreeMap<String, Vec<u8>>) {
    let listed: Vec<String> = seaweed()
        .list_objects(bucket)
        .expect("list")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let want: Vec<String> = expected.keys().map(|k| format!("{prefix}/{k}")).collect();
    assert_eq!(listed, want, "objects in {bucket}");
    for (rel, bytes) in expected {
        let got = seaweed()
            .get_object(bucket, &format!("{prefix}/{rel}"))
            .expect("get");
        assert!(
            got.as_deref() == Some(&bytes[..]),
            "s3 {bucket}: {rel} differs"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Log helpers

fn action(message: &str) -> &str {
    message
        .strip_prefix("ServiceBackup.WithIdentifier.")
        .or_else(|| message.strip_prefix("ServiceBackup."))
        .unwrap_or(message)
}

fn messages(out: &str) -> Vec<String> {
    json_lines(out)
        .iter()
        .map(|v| v["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The executor's lines, prefix stripped, in order.
fn run_actions(out: &str) -> Vec<String> {
    messages(out)
        .iter()
        .map(|m| action(m).to_owned())
        .filter(|a| RUN_ACTIONS.contains(&a.as_str()))
        .collect()
}

/// The first line whose message is exactly `message`.
fn line(out: &str, message: &str) -> Value {
    json_lines(out)
        .into_iter()
        .find(|v| v["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line in:\n{out}"))
}

/// Error level in either lager layout.
fn is_error(v: &Value) -> bool {
    v["log_level"] == 2 || v["level"] == "error"
}

fn manual(config: &Path) -> (ExitStatus, String) {
    run_to_end(MANUAL, config, Duration::from_secs(60))
}

/// `manual-backup CONFIG` with extra environment, to completion (bounded).
fn manual_with_env(config: &Path, env: &[(&str, &Path)]) -> (ExitStatus, String) {
    let mut running = common::start_with_env(MANUAL, config, env);
    let status = running.wait_exit(Duration::from_secs(60));
    (status, running.stdout())
}

use bbr_testkit::wait::until as wait_until;

/// Waits until `needle` occurs `n` times in the daemon's stdout.
fn wait_count(daemon: &Running, needle: &str, n: usize, limit: Duration) {
    wait_until(&format!("{n}x {needle:?} in the stdout"), limit, || {
        daemon.stdout().matches(needle).count() >= n
    });
}

fn stop_daemon(daemon: &mut Running) -> String {
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(20));
    let out = daemon.stdout();
    assert_eq!(status.code(), Some(1), "{out}");
    assert_eq!(
        messages(&out).last().map(String::as_str),
        Some("ServiceBackup.All backup processes terminated. Exiting"),
        "{out}"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// CF alert stand-ins

struct AlertServers {
    uaa: StandIn,
    cc: StandIn,
    notifications: StandIn,
}

fn alert_servers(rt: &tokio::runtime::Runtime) -> AlertServers {
    alert_servers_with_slow_cc(rt, Duration::ZERO)
}

/// The stand-ins, with every Cloud Controller answer delayed by `cc_delay`.
fn alert_servers_with_slow_cc(rt: &tokio::runtime::Runtime, cc_delay: Duration) -> AlertServers {
    rt.block_on(async {
        // Distinct tokens for the CF user and the notifications client.
        let uaa = StandIn::start(|req| {
            if req.body.contains("grant_type=client_credentials") {
                Reply::json(200, r#"{"access_token":"notifications-token"}"#)
            } else {
                Reply::json(200, r#"{"access_token":"cf-token"}"#)
            }
        })
        .await;
        let uaa_url = uaa.url();
        let cc = StandIn::start_delayed(cc_delay, move |req| {
            if req.path == "/v2/info" {
                Reply::json(200, &format!(r#"{{"token_endpoint":"{uaa_url}"}}"#))
            } else if req.path.ends_with("/spaces") {
                Reply::json(
                    200,
                    r#"{"total_results":1,"resources":[{"metadata":{"guid":"space_guid"}}]}"#,
                )
            } else {
                Reply::json(
                    200,
                    r#"{"total_results":1,"resources":[{"metadata":{"guid":"org_guid"}}]}"#,
                )
            }
        })
        .await;
        let notifications = StandIn::start(|_| Reply::json(200, "{}")).await;
        AlertServers {
            uaa,
            cc,
            notifications,
        }
    })
}

/// The `alerts` block of the original's integration tests, pointing at the stand-ins.
fn alerts_yaml(a: &AlertServers) -> String {
    format!(
        "alerts:\n  product_name: SomeDB\n  config:\n    cloud_controller:\n      url: {}\n      user: admin\n      password: password\n    notifications:\n      service_url: {}\n      cf_org: cf_org\n      cf_space: cf_space\n      reply_to: me@example.com\n      client_id: client_id\n      client_secret: client_secret\n    timeout_seconds: 60\n    skip_ssl_validation: false\n",
        a.cc.url(),
        a.notifications.url()
    )
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

// =============================================================================================
// Configuration and signals (docs/service-backup.md#exit-codes-and-signals)

/// config/parse_test "invalid YAML is an error" and an unreadable config, end to end: exactly the
/// two original lines (docs/service-backup.md#log-lines), both at error level, then exit 2, for
/// both binaries.
#[test]
fn invalid_yaml_or_an_unreadable_config_exits_2_with_the_two_lines() {
    let s = Scratch::new();
    let bad_yaml = s.file(
        "bad.yml",
        "destinations:\n- type: s3\n  config: {bucket_name: b\n",
    );
    let directory = s.path("a-directory.yml");
    std::fs::create_dir_all(&directory).expect("mkdir");
    for binary in [DAEMON, MANUAL] {
        for (config, first) in [
            (&bad_yaml, "error unmarshalling config file"),
            (&directory, "error reading config file"),
        ] {
            let (status, out) = run_to_end(binary, config, Duration::from_secs(10));
            assert_eq!(status.code(), Some(2), "{binary} {first}: {out}");
            assert_eq!(
                messages(&out),
                vec![
                    format!("ServiceBackup.{first}"),
                    "ServiceBackup.failed to parse config".to_owned()
                ],
                "{binary}: {out}"
            );
            for v in json_lines(&out) {
                assert!(is_error(&v), "{v}");
                assert!(
                    v["data"]["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{v}"
                );
            }
        }
    }
}

/// s3integration "when no destination is specified": the release-rendered config with nulls
/// and inert keys; the daemon logs `Backups Disabled` on every tick (root logger, no
/// backup_guid) and does not exit until terminated.
#[test]
fn rendered_config_without_destinations_keeps_logging_backups_disabled() {
    let s = Scratch::new();
    let config = s.file(
        "backup.yml",
        "---\ncleanup_executable: ''\ncron_schedule: '* * * * * *'\ndestinations: []\nexit_if_in_progress: false\naws_cli_path: \"/var/vcap/packages/aws-cli/bin/aws\"\nmissing_properties_message: Provide these missing fields in your manifest.\nservice_identifier_executable:\nsource_executable:\nsource_folder:\n",
    );
    let mut daemon = start(DAEMON, &config);
    wait_count(&daemon, "Backups Disabled", 3, Duration::from_secs(15));
    daemon.assert_running();
    let out = stop_daemon(&mut daemon);
    let lines = json_lines(&out);
    assert_eq!(
        lines[0]["message"],
        "ServiceBackup.No destination provided - skipping backup"
    );
    assert_eq!(lines[1]["message"], "ServiceBackup.Service-backup Started");
    for v in &lines[2..lines.len() - 1] {
        assert_eq!(v["message"], "ServiceBackup.Backups Disabled", "{out}");
        assert_eq!(v["data"], serde_json::json!({}), "{v}");
        assert_eq!(v["level"], "info");
    }
    assert!(!out.contains("WARNING"), "inert keys are known:\n{out}");
}

/// docs/service-backup.md#exit-codes-and-signals: the daemon traps SIGTERM only. SIGINT and SIGHUP
/// kill it by the signal, without the shutdown line, and its children are not signalled.
#[test]
fn daemon_is_killed_by_sigint_and_sighup_and_children_are_not_signalled() {
    for sig in [Signal::SIGINT, Signal::SIGHUP] {
        let s = Scratch::new();
        let src = s.source();
        let (pid_file, started, evidence) = (s.path("pid"), s.path("started"), s.path("evidence"));
        let prepare = s.script(
            "prepare",
            &format!(
                "echo $$ > {pid}\ntrap 'touch {evidence}; exit 129' TERM\ntouch {started}\n{WAIT_LOOP}",
                pid = pid_file.display(),
                evidence = evidence.display(),
                started = started.display()
            ),
        );
        let config = s.file(
            "backup.yml",
            &format!(
                "source_folder: {}\nsource_executable: {}\ncron_schedule: '* * * * * *'\nexit_if_in_progress: true\nstate_dir: {}\ndestinations:\n{}",
                src.display(),
                prepare.display(),
                s.path("state").display(),
                common::unreachable_s3("x-secret")
            ),
        );
        let mut daemon = start(DAEMON, &config);
        wait_for_file(&started, Duration::from_secs(10));
        daemon.signal(sig);
        let status = daemon.wait_exit(Duration::from_secs(10));
        let out = daemon.stdout();
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(sig as i32),
                "{sig}: {status:?}\n{out}"
            );
        }
        assert!(
            !out.contains("All backup processes terminated"),
            "{sig} is not trapped:\n{out}"
        );
        // The prepare script is still running and never got a TERM ...
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid")
            .trim()
            .parse()
            .expect("pid number");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            !stat.is_empty() && !stat.contains(") Z "),
            "{sig}: the child should survive"
        );
        assert!(!evidence.exists(), "{sig}: the child was signalled");
        // ... and still traps one (which also ends it).
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM).expect("kill");
        wait_for_file(&evidence, Duration::from_secs(10));
    }
}

/// The original's case "s3 destination but no CA bundle at the 4 paths": `failed to initialize
/// uploader` with `could not locate a known ca cert` (and no line of its own before it), exit 2,
/// for both binaries. The bundle is hidden in a private mount namespace.
#[test]
fn s3_without_a_ca_bundle_fails_initialisation() {
    let s = Scratch::new();
    let src = s.source();
    let config = s.file(
        "backup.yml",
        &format!(
            "source_folder: {}\ncron_schedule: '@daily'\ndestinations:\n- type: s3\n  config:\n    endpoint_url: 'http://127.0.0.1:9'\n    region: us-east-1\n    bucket_name: bkt\n    bucket_path: p\n    access_key_id: AKIDEXAMPLE\n    secret_access_key: not-a-real-secret\n",
            src.display()
        ),
    );
    for binary in [DAEMON, MANUAL] {
        let out = common::output_within(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(
                    "for d in /etc/ssl/certs /etc/pki; do [ -d $d ] && { mount -t tmpfs tmpfs $d || exit 97; }; done; \
                     for f in /etc/ssl/ca-bundle.pem; do [ -e $f ] && { mount --bind /dev/null $f || exit 97; }; done; \
                     [ -e /etc/ssl/certs/ca-certificates.crt ] && exit 98; exec \"$0\" \"$1\"",
                )
                .arg(binary)
                .arg(&config),
            Duration::from_secs(30),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !matches!(out.status.code(), Some(97 | 98)),
            "could not hide the CA bundle: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{binary}: {text}");
        assert_eq!(
            messages(&text),
            vec!["ServiceBackup.failed to initialize uploader"],
            "{binary}: {text}"
        );
        let v = line(&text, "ServiceBackup.failed to initialize uploader");
        assert!(is_error(&v));
        assert!(
            v["data"]["error"]
                .as_str()
                .unwrap_or_default()
                .contains("could not locate a known ca cert"),
            "{binary}: {text}"
        );
    }
}

// =============================================================================================
// The run sequence (docs/service-backup.md#a-run), end to end on S3

/// s3integration "backup creation command fails": `Perform backup completed with error`
/// (error `exit status 2`), no upload, no cleanup, nothing created; manual-backup exits 2.
/// (`Perform backup output` is ours, README: prepare output is logged.)
#[test]
fn failing_prepare_stops_before_upload_and_cleanup() {
    let s = Scratch::new();
    let src = s.source();
    let bucket = unique("prepfail");
    let evidence = s.path("cleaned");
    let cleanup = s.script("cleanup", &format!("touch {}", evidence.display()));
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {}\nsource_executable: ls /not/a/valid/directory\ncleanup_executable: {}\n",
            s3_destination("", &bucket, "p", "us-east-1"),
            src.display(),
            cleanup.display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(2), "{out}");
    assert_eq!(
        run_actions(&out),
        vec![
            "Perform backup started",
            "Perform backup output",
            "Perform backup completed with error",
            "Error running backup"
        ],
        "{out}"
    );
    let failed = line(&out, "ServiceBackup.Perform backup completed with error");
    assert!(is_error(&failed));
    assert_eq!(failed["data"]["error"], "exit status 2", "{out}");
    assert!(failed["data"]["backup_guid"].is_string());
    let output = line(&out, "ServiceBackup.Perform backup output");
    assert!(
        output["data"]["output"]
            .as_str()
            .unwrap_or_default()
            .contains("No such file or directory"),
        "{out}"
    );
    assert_eq!(
        line(&out, "ServiceBackup.Error running backup")["data"]["error"],
        "exit status 2"
    );
    assert!(!evidence.exists(), "no cleanup after a failed prepare");
    assert!(
        !seaweed().bucket_exists(&bucket).expect("head bucket"),
        "nothing uploaded"
    );
}

/// executor_test "empty source_executable still uploads and cleans up" and s3integration
/// "a valid cleanup deletes the source folder" (`rm -rf <folder>`, PATH lookup, space split);
/// config/parse_test "deployment name cleared when the flag is false" (a BOSH-rendered config
/// with the inert keys, which are not warned about); executor_test "with no identifier the
/// word never appears".
#[test]
fn empty_prepare_still_uploads_and_cleanup_removes_the_source() {
    let s = Scratch::new();
    let src = s.source();
    std::fs::write(src.join("sub/c.bin"), pattern(70_000, 5)).expect("write");
    let expected = tree(&src);
    let bucket = unique("noprep");
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {src}\nsource_executable: ''\ncleanup_executable: rm -rf {src}\ncron_schedule: '*/5 * * * * *'\ndeployment_name: service-backup\nadd_deployment_name_to_backup_path: false\naws_cli_path: /var/vcap/packages/service-backup_aws-cli/bin/aws\nazure_cli_path: /var/vcap/packages/service-backup_blobxfer/bin/blobxfer\nbackup_user: vcap\nmissing_properties_message: custom message\nexit_if_in_progress: false\nservice_identifier_executable:\nalerts:\n",
            s3_destination("", &bucket, "base/path", "us-east-1"),
            src = src.display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(
        run_actions(&out),
        vec![
            "source_executable not provided, skipping performing of backup",
            "Upload backup started",
            "Upload backup completed successfully",
            "Cleanup started",
            "Cleanup completed successfully"
        ],
        "{out}"
    );
    assert!(!src.exists(), "cleanup removed the source folder");
    // The size is taken after the upload and before the cleanup.
    let size: u64 = expected.values().map(|b| b.len() as u64).sum();
    assert_eq!(
        line(&out, "ServiceBackup.Upload backup completed successfully")["data"]["size_in_bytes"],
        size
    );
    // No deployment name in the path: the flag is false.
    assert_s3_holds(&bucket, &format!("base/path/{}", today()), &expected);
    assert!(!out.contains("identifier"), "{out}");
    assert!(!out.contains("WARNING"), "{out}");
}

/// s3integration "failing cleanup gives `Cleanup completed with error`",
/// docs/service-backup.md#a-run and #alerts: a cleanup failure is logged (error level, `exit status
/// 2`) but the run succeeds: manual-backup exits 0, and the daemon sends no alert (nor logs `Alerts
/// not configured.`).
#[test]
fn failing_cleanup_is_logged_but_the_run_succeeds_without_an_alert() {
    let s = Scratch::new();
    let src = s.source();
    let bucket = unique("cleanfail");
    let body = |alerts: &str, cron: &str| {
        format!(
            "destinations:\n{}source_folder: {}\ncleanup_executable: ls /not/a/valid/directory\ncron_schedule: '{cron}'\n{alerts}",
            s3_destination("", &bucket, "p", "us-east-1"),
            src.display()
        )
    };
    let (status, out) = manual(&s.file("manual.yml", &body("", "@daily")));
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(
        run_actions(&out),
        vec![
            "source_executable not provided, skipping performing of backup",
            "Upload backup started",
            "Upload backup completed successfully",
            "Cleanup started",
            "Cleanup output",
            "Cleanup completed with error"
        ],
        "{out}"
    );
    let failed = line(&out, "ServiceBackup.Cleanup completed with error");
    assert!(is_error(&failed));
    assert_eq!(failed["data"]["error"], "exit status 2");
    assert_s3_holds(&bucket, &format!("p/{}", today()), &tree(&src));

    // The daemon: two runs, both with a failing cleanup; no alert for either.
    let rt = tokio_runtime();
    let servers = alert_servers(&rt);
    let config = s.file(
        "daemon.yml",
        &body(&alerts_yaml(&servers), &seconds_from_now(&[3, 5])),
    );
    let mut daemon = start(DAEMON, &config);
    wait_count(
        &daemon,
        "Cleanup completed with error",
        2,
        Duration::from_secs(30),
    );
    let out = stop_daemon(&mut daemon);
    for needle in ["Sending alert.", "Sent alert.", "Alerts not configured."] {
        assert!(!out.contains(needle), "{needle}:\n{out}");
    }
    assert!(servers.cc.requests().is_empty());
    assert!(servers.uaa.requests().is_empty());
    assert!(servers.notifications.requests().is_empty());
}

/// executor_test "the identifier is run exactly once with the exact argv" (split on single spaces,
/// so a double space is an empty argument; output trimmed) and "failing or missing identifier is
/// logged, gives no error, and no `identifier` key appears"; docs/service-backup.md#a-run: the
/// first token must be a path (no PATH lookup).
#[test]
fn identifier_runs_once_with_its_exact_argv_and_problems_do_not_fail_the_run() {
    let s = Scratch::new();
    let src = s.source();
    let bucket = unique("ident");
    let calls = s.path("calls");
    let ident = s.script(
        "ident",
        &format!(
            "printf '%s|' \"$#\" \"$@\" >> {c}\necho >> {c}\necho '  FakeIdentifier  '",
            c = calls.display()
        ),
    );
    let failing = s.script("ident-fail", "echo oops\nexit 1");
    let config_with = |tag: &str, identifier: &str| {
        s.file(
            &format!("{tag}.yml"),
            &format!(
                "destinations:\n{}source_folder: {}\nsource_executable: 'true'\nservice_identifier_executable: '{identifier}'\n",
                s3_destination("", &bucket, tag, "us-east-1"),
                src.display()
            ),
        )
    };

    let (status, out) = manual(&config_with(
        "argv",
        &format!("{} first  third", ident.display()),
    ));
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(
        std::fs::read_to_string(&calls).expect("calls"),
        "3|first||third|\n",
        "run exactly once, argv split on single spaces"
    );
    for v in json_lines(&out) {
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with("ServiceBackup.WithIdentifier."), "{v}");
        assert_eq!(v["data"]["identifier"], "FakeIdentifier", "{v}");
        assert_eq!(v["data"]["session"], "1", "{v}");
    }

    for (tag, identifier, action, error) in [
        (
            "missing",
            "echo FakeIdentifier".to_owned(),
            "Service identifier command not found",
            None,
        ),
        (
            "failing",
            failing.display().to_string(),
            "Service identifier command returned error",
            Some("exit status 1"),
        ),
    ] {
        let (status, out) = manual(&config_with(tag, &identifier));
        assert_eq!(status.code(), Some(0), "{tag}: {out}");
        let lines = json_lines(&out);
        assert_eq!(
            lines[0]["message"],
            format!("ServiceBackup.{action}"),
            "{out}"
        );
        assert!(is_error(&lines[0]));
        assert!(lines[0]["data"]["backup_guid"].is_string());
        if let Some(error) = error {
            assert_eq!(lines[0]["data"]["error"], error, "{out}");
        }
        for v in &lines {
            assert!(v["data"].get("identifier").is_none(), "{v}");
            assert!(v["data"].get("session").is_none(), "{v}");
            assert!(
                !v["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("WithIdentifier"),
                "{v}"
            );
        }
        assert!(out.contains("ServiceBackup.Upload backup completed successfully"));
        assert_eq!(
            seaweed()
                .get_object(&bucket, &format!("{tag}/{}/a.txt", today()))
                .expect("get")
                .as_deref(),
            Some(&b"hello"[..])
        );
    }
}

/// s3integration "bucket auto-creation (default region)" and the S3 lines of
/// docs/service-backup.md#log-lines: with an empty region and a custom endpoint the original logs,
/// in order, `about to upload`, the region warning, then checks and creates the bucket (the
/// original's `using a custom endpoint is deprecated with the aws sdk` line is deliberately not
/// logged: custom endpoints are fully supported here, README); `s3 completed` closes the
/// destination; without a cleanup command the run ends with `Cleanup command not provided`. (The
/// endpoint is an IP address, so we address it path-style: README. That changes the addressing, not
/// the lines.)
#[test]
fn empty_region_with_a_custom_endpoint_logs_the_original_client_lines() {
    let s = Scratch::new();
    let src = s.source();
    let bucket = unique("noregion");
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {}\n",
            s3_destination("", &bucket, "p", ""),
            src.display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(0), "{out}");
    let date = today();
    assert_s3_holds(&bucket, &format!("p/{date}"), &tree(&src));
    let src_s = src.display().to_string();
    let p = "ServiceBackup.";
    let want = vec![
        format!("{p}source_executable not provided, skipping performing of backup"),
        format!("{p}Upload backup started"),
        format!("{p}about to upload {src_s} to S3 remote path {bucket}/p/{date}"),
        format!(
            "{p}CreateS3Client: ===warning=== region is empty. therefore using default region us-west-2"
        ),
        format!("{p}Checking for remote path"),
        format!("{p}Checking for remote path - remote path does not exist - making it now"),
        format!("{p}Checking for remote path - remote path created ok"),
        format!(
            "{p}S3 putting local file: {src_s}/a.txt into bucket {bucket} with remote file: p/{date}/a.txt "
        ),
        format!(
            "{p}S3 putting local file: {src_s}/sub/b.txt into bucket {bucket} with remote file: p/{date}/sub/b.txt "
        ),
        format!("{p}s3 completed"),
        format!("{p}Upload backup completed successfully"),
        format!("{p}Cleanup command not provided"),
    ];
    assert_eq!(messages(&out), want, "{out}");
}

/// s3integration "bucket auto-creation (eu-central-1 with an endpoint)": the bucket is created
/// (CreateBucket with the region as LocationConstraint, signed for that region) and the tree
/// lands in it; with a region there is no region warning.
#[test]
fn bucket_is_created_in_a_named_region() {
    let s = Scratch::new();
    let src = s.source();
    let bucket = unique("eucentral");
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {}\n",
            s3_destination("", &bucket, "p", "eu-central-1"),
            src.display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        out.contains("Checking for remote path - remote path created ok"),
        "{out}"
    );
    assert!(!out.contains("region is empty"), "{out}");
    assert_s3_holds(&bucket, &format!("p/{}", today()), &tree(&src));
}

/// s3integration "invalid creds": the daemon logs `Service-backup Started`, then
/// `ServiceBackup.Upload backup completed with error` with `api error Forbidden`, keeps running,
/// creates nothing, and (docs/service-backup.md#alerts) alerts on the failed destination; "manual
/// backup with a bad key exits non-zero within 3 s".
#[test]
fn invalid_credentials_fail_the_run_alert_and_create_nothing() {
    let s = Scratch::new();
    let src = s.source();
    let bucket = unique("badcreds");
    let wrong = s3_destination("", &bucket, "p", "us-east-1")
        .replace(seaweed().access_key_id(), "invalid-access-key-id")
        .replace(seaweed().secret_access_key(), "invalid-secret-access-key");

    let (status, out) = run_to_end(
        MANUAL,
        &s.file(
            "manual.yml",
            &format!(
                "destinations:\n{}source_folder: {}\n",
                s3_destination("", &bucket, "p", "us-east-1")
                    .replace(seaweed().access_key_id(), "wrong-access-key"),
                src.display()
            ),
        ),
        Duration::from_secs(3),
    );
    assert_eq!(status.code(), Some(2), "{out}");

    let rt = tokio_runtime();
    let servers = alert_servers(&rt);
    let config = s.file(
        "daemon.yml",
        &format!(
            "destinations:\n{wrong}source_folder: {}\nsource_executable: 'true'\ncron_schedule: '* * * * * *'\n{}",
            src.display(),
            alerts_yaml(&servers)
        ),
    );
    let mut daemon = start(DAEMON, &config);
    daemon.wait_for("ServiceBackup.Sent alert.", Duration::from_secs(30));
    daemon.assert_running();
    let out = stop_daemon(&mut daemon);
    let msgs = messages(&out);
    let started = msgs
        .iter()
        .position(|m| m == "ServiceBackup.Service-backup Started")
        .expect("started");
    let failed = msgs
        .iter()
        .position(|m| m == "ServiceBackup.Upload backup completed with error")
        .expect("failed");
    assert!(started < failed, "{out}");
    let error = json_lines(&out)[failed]["data"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.starts_with("bucketExists: api error, "), "{error}");
    assert!(error.contains("api error Forbidden"), "{error}");
    assert!(!out.contains("invalid-secret-access-key"), "{out}");
    assert!(
        !seaweed().bucket_exists(&bucket).expect("head bucket"),
        "nothing created"
    );
    let sent = servers.notifications.requests();
    assert!(!sent.is_empty());
    let body: Value = serde_json::from_str(&sent[0].body).expect("json");
    let text = body["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("Alert from SomeDB:\n\n"), "{text}");
    assert!(
        text.contains("A backup run has failed with the following error: bucketExists: api error"),
        "{text}"
    );
}

/// s3integration "invalid endpoint `http://0.0.0.0:1234/`": the run fails gracefully (error
/// `bucketExists: error listing objects, …`, `s3 completed` still logged,
/// docs/service-backup.md#log-lines) and the daemon keeps running. The original's `no such host`
/// came from virtual-hosted addressing; README: an IP endpoint is addressed path-style, so we see a
/// refused connection instead.
#[test]
fn invalid_endpoint_fails_the_run_gracefully() {
    let s = Scratch::new();
    let src = s.source();
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n- type: s3\n  config:\n    endpoint_url: 'http://0.0.0.0:1234/'\n    region: 'us-west-2'\n    bucket_name: bkt\n    bucket_path: p\n    access_key_id: AKIDEXAMPLE\n    secret_access_key: not-a-real-secret\nsource_folder: {}\nsource_executable: 'true'\ncron_schedule: '* * * * * *'\n",
            src.display()
        ),
    );
    let mut daemon = start(DAEMON, &config);
    daemon.wait_for(
        "ServiceBackup.Alerts not configured.",
        Duration::from_secs(20),
    );
    daemon.assert_running();
    let out = stop_daemon(&mut daemon);
    let failed = line(&out, "ServiceBackup.Upload backup completed with error");
    assert!(is_error(&failed));
    assert!(
        failed["data"]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("bucketExists: error listing objects, "),
        "{out}"
    );
    let msgs = messages(&out);
    let s3_completed = msgs
        .iter()
        .position(|m| m == "ServiceBackup.s3 completed")
        .expect("s3 completed even on failure");
    assert!(
        s3_completed
            < msgs
                .iter()
                .position(|m| m.ends_with("completed with error"))
                .unwrap()
    );
}

/// The original's edge case "Empty source_folder: success with 0 bytes; buckets, containers and
/// remote dirs are still created", on all four destination types.
#[test]
fn empty_source_folder_succeeds_with_zero_bytes_and_creates_every_destination() {
    let s = Scratch::new();
    let src = s.path("source");
    std::fs::create_dir_all(&src).expect("mkdir");
    let (bucket, container, gbucket) = (unique("empty"), unique("emptyc"), unique("emptyg"));
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let remote = remote_dir();
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}{}{}{}source_folder: {}\nstate_dir: {}\n",
            s3_destination("", &bucket, "p", "us-east-1"),
            azure_destination("", &container, "az"),
            gcs_destination("", &gbucket),
            scp_destination(
                &vm,
                vm.client_key(),
                "",
                remote.path(),
                &vm.known_hosts_line()
            ),
            src.display(),
            s.path("state").display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(
        line(&out, "ServiceBackup.Upload backup completed successfully")["data"]["size_in_bytes"],
        0
    );
    assert!(seaweed().bucket_exists(&bucket).expect("head"), "{out}");
    assert_eq!(seaweed().list_objects(&bucket).expect("list"), vec![]);
    assert_eq!(
        azurite().list_blobs(&container).expect("list"),
        Some(vec![]),
        "container created, empty"
    );
    assert!(fake_gcs().bucket_exists(&gbucket).expect("bucket"), "{out}");
    assert_eq!(
        fake_gcs().list_objects(&gbucket).expect("list"),
        Vec::<String>::new()
    );
    let dated = remote.path().join(today());
    assert!(dated.is_dir(), "remote dir created:\n{out}");
    assert_eq!(std::fs::read_dir(&dated).expect("read").count(), 0);
    assert!(out.contains("ServiceBackup.scp completed"), "{out}");
}

/// The original's edge case "`source_folder` does not exist": the original's S3 and Azure walks
/// panicked and took the daemon down; README (validated instead of crashing) and the `upload`
/// module docs: every destination fails the run naming the folder, and the daemon keeps running.
/// (GCS and SCP failed the run in the original too.)
#[test]
fn nonexistent_source_folder_fails_every_destination_and_the_daemon_keeps_running() {
    let s = Scratch::new();
    let missing = s.path("does-not-exist");
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let remote = remote_dir();
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}{}{}{}source_folder: {}\ncron_schedule: '* * * * * *'\nexit_if_in_progress: true\nstate_dir: {}\n",
            s3_destination("s3", &unique("nofolder"), "p", "us-east-1"),
            azure_destination("azure", &unique("nofolderc"), "p"),
            gcs_destination("gcs", &unique("nofolderg")),
            scp_destination(&vm, vm.client_key(), "scp", remote.path(), &vm.known_hosts_line()),
            missing.display(),
            s.path("state").display()
        ),
    );
    let mut daemon = start(DAEMON, &config);
    wait_count(
        &daemon,
        "ServiceBackup.Alerts not configured.",
        2,
        Duration::from_secs(30),
    );
    daemon.assert_running();
    let out = stop_daemon(&mut daemon);
    let failed = line(&out, "ServiceBackup.Upload backup completed with error");
    let error = failed["data"]["error"].as_str().unwrap_or_default();
    let parts: Vec<&str> = error.split("; ").collect();
    assert_eq!(parts.len(), 4, "one error per destination: {error}");
    for part in parts {
        assert!(part.contains(&missing.display().to_string()), "{part}");
    }
    assert!(!out.contains("panic"), "{out}");
}

// =============================================================================================
// Azure and GCS (docs/service-backup.md#remote-layout)

/// azureintegration "upload to an existing container, a large file (block path), the
/// deployment name in the path" and gcs_integration "files land at Y/M/D with an existing
/// bucket": byte for byte, existing objects untouched, and the exact Azure and GCS lines
/// (data keys included; neither logs a "completed" line).
#[test]
fn existing_container_and_bucket_receive_the_tree_under_the_deployment_path() {
    let s = Scratch::new();
    let src = s.path("source");
    std::fs::create_dir_all(src.join("d1/d2")).expect("mkdir");
    std::fs::write(src.join("a.txt"), "alpha\n").expect("write");
    std::fs::write(src.join("big.bin"), pattern(20 * 1024 * 1024 + 123, 9)).expect("write");
    std::fs::write(src.join("d1/d2/c.txt"), "charlie\n").expect("write");
    let expected = tree(&src);
    let (container, gbucket) = (unique("azexist"), unique("gcsexist"));
    azurite().create_container(&container).expect("container");
    azurite()
        .put_blob(&container, "keep/me.txt", b"keep")
        .expect("blob");
    fake_gcs().create_bucket(&gbucket).expect("bucket");
    fake_gcs()
        .put_object(&gbucket, "keep/me.txt", b"keep")
        .expect("object");
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}{}source_folder: {}\ndeployment_name: dep\nadd_deployment_name_to_backup_path: true\n",
            azure_destination("", &container, "az/base"),
            gcs_destination("", &gbucket),
            src.display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(0), "{out}");
    let date = today();
    let az_prefix = format!("az/base/dep/{date}");
    let gcs_prefix = format!("dep/{date}");
    let mut want_blobs: Vec<String> = expected
        .keys()
        .map(|k| format!("{az_prefix}/{k}"))
        .chain(["keep/me.txt".to_owned()])
        .collect();
    want_blobs.sort();
    assert_eq!(
        azurite().list_blobs(&container).expect("list"),
        Some(want_blobs)
    );
    let mut want_objects: Vec<String> = expected
        .keys()
        .map(|k| format!("{gcs_prefix}/{k}"))
        .chain(["keep/me.txt".to_owned()])
        .collect();
    want_objects.sort();
    assert_eq!(
        fake_gcs().list_objects(&gbucket).expect("list"),
        want_objects
    );
    for (rel, bytes) in &expected {
        let blob = azurite()
            .get_blob(&container, &format!("{az_prefix}/{rel}"))
            .expect("get");
        assert!(blob.as_deref() == Some(&bytes[..]), "azure {rel}");
        let obj = fake_gcs()
            .get_object(&gbucket, &format!("{gcs_prefix}/{rel}"))
            .expect("get");
        assert!(obj.as_deref() == Some(&bytes[..]), "gcs {rel}");
    }
    assert_eq!(
        azurite()
            .get_blob(&container, "keep/me.txt")
            .expect("get")
            .as_deref(),
        Some(&b"keep"[..])
    );

    let src_s = src.display().to_string();
    let p = "ServiceBackup.";
    let mut want = vec![
        format!("{p}source_executable not provided, skipping performing of backup"),
        format!("{p}Upload backup started"),
        format!("{p}Uploading azure blobs"),
        format!("{p}The container and remote path will be created if they don't already exist"),
        format!("{p}about to upload {src_s} to Azure remote path {az_prefix}"),
    ];
    for rel in expected.keys() {
        want.push(format!("{p}uploadFile: {src_s}/{rel} to {az_prefix}/{rel}"));
    }
    want.push(format!("{p}will upload {src_s} to Google Cloud Storage"));
    for rel in expected.keys() {
        want.push(format!(
            "{p}will upload {gcs_prefix}/{rel} to bucket {gbucket}"
        ));
    }
    want.extend([
        format!("{p}Upload backup completed successfully"),
        format!("{p}Cleanup command not provided"),
    ]);
    assert_eq!(messages(&out), want, "{out}");
    let lines = json_lines(&out);
    let guid = lines[0]["data"]["backup_guid"].clone();
    assert_eq!(
        lines[2]["data"],
        serde_json::json!({"backup_guid": guid, "container": container, "localPath": src_s, "remotePath": az_prefix})
    );
    assert_eq!(
        lines[3]["data"],
        serde_json::json!({"backup_guid": guid, "container": container, "remotePath": az_prefix})
    );
}

/// azureintegration "`endpoint: wrong.example.com` gives `Failed to establish a new
/// connection` and `Upload backup completed with error`" (exit 2 for manual-backup).
#[test]
fn azure_with_a_wrong_endpoint_domain_fails_to_connect() {
    let s = Scratch::new();
    let src = s.source();
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n- type: azure\n  config:\n    storage_account: someaccount\n    storage_access_key: {}\n    container: c\n    path: p\n    endpoint: wrong.example.com\nsource_folder: {}\n",
            bbr_testkit::stores::AZURITE_KEY,
            src.display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(2), "{out}");
    let failed = line(&out, "ServiceBackup.Upload backup completed with error");
    assert!(is_error(&failed));
    assert!(
        failed["data"]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("error in uploadDir Failed to establish a new connection"),
        "{out}"
    );
    assert!(!out.contains(bbr_testkit::stores::AZURITE_KEY), "{out}");
    assert!(!out.contains("uploadFile:"), "{out}");
}

/// docs/service-backup.md#configuration (gcs): the service account comes from the file named by
/// `GCP_SERVICE_ACCOUNT_FILE` (the BOSH ctl and manual-backup scripts export it); gcs_integration
/// "a bad service account gives `error creating Google Cloud Storage client`".
#[test]
fn gcs_service_account_from_the_environment_and_bad_credentials() {
    let s = Scratch::new();
    let src = s.source();
    let gbucket = unique("gcsenv");
    let account = s.file(
        "gcp_service_account.json",
        &gcs_service_account_json("sb-project").expect("json"),
    );
    let without_json = s.file(
        "env.yml",
        &format!(
            "destinations:\n- type: gcs\n  config:\n    project_id: sb-project\n    bucket_name: {gbucket}\n    endpoint: {}\nsource_folder: {}\n",
            fake_gcs().endpoint(),
            src.display()
        ),
    );
    let (status, out) = manual_with_env(&without_json, &[("GCP_SERVICE_ACCOUNT_FILE", &account)]);
    assert_eq!(status.code(), Some(0), "{out}");
    for (rel, bytes) in tree(&src) {
        let obj = fake_gcs()
            .get_object(&gbucket, &format!("{}/{rel}", today()))
            .expect("get");
        assert!(obj.as_deref() == Some(&bytes[..]), "gcs {rel}");
    }

    // A service account file that does not exist: README (validated at startup, exit 2,
    // naming what is wrong) instead of failing the run; the exit code is the original's.
    let missing = s.path("no-such-account.json");
    let (status, out) = manual_with_env(&without_json, &[("GCP_SERVICE_ACCOUNT_FILE", &missing)]);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains(&missing.display().to_string()), "{out}");
    assert!(
        !out.contains("Upload backup completed successfully"),
        "{out}"
    );

    // Credentials that are not a usable service account.
    let broken = r#"{"type":"service_account","project_id":"sb-project","private_key_id":"0","private_key":"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n","client_email":"x@sb-project.iam.gserviceaccount.com","client_id":"1","token_uri":"https://oauth2.googleapis.com/token"}"#;
    let config = s.file(
        "broken.yml",
        &format!(
            "destinations:\n- type: gcs\n  config:\n    project_id: sb-project\n    bucket_name: {gbucket}-broken\n    endpoint: {}\n    service_account_json: '{broken}'\nsource_folder: {}\n",
            fake_gcs().endpoint(),
            src.display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("error creating Google Cloud Storage client"),
        "{out}"
    );
    assert!(!out.contains("bm90IGEga2V5"), "key material leaked:\n{out}");
    assert!(
        !fake_gcs()
            .bucket_exists(&format!("{gbucket}-broken"))
            .expect("bucket")
    );
}

// =============================================================================================
// SCP (docs/service-backup.md#remote-layout)

/// scpintegration "invalid fingerprint `host ssh-rsa totally-invalid`": `Host key verification
/// failed` in the `ssh` error line (the original's SCP upload, `error checking if remote path
/// exists: …`), no `scp completed`, no key scan, nothing written; manual-backup exits 2.
#[test]
fn scp_with_an_invalid_fingerprint_is_refused() {
    let s = Scratch::new();
    let src = scp_source(&s);
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let remote = remote_dir();
    let fingerprint = format!("[{}]:{} ssh-rsa totally-invalid", vm.addr(), vm.port());
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {}\nstate_dir: {}\n",
            scp_destination(&vm, vm.client_key(), "foo", remote.path(), &fingerprint),
            src.display(),
            s.path("state").display()
        ),
    );
    let (status, out) = manual(&config);
    assert_eq!(status.code(), Some(2), "{out}");
    let ssh = line(&out, "ServiceBackup.ssh");
    assert!(is_error(&ssh));
    assert_eq!(ssh["data"]["destination_name"], "foo");
    let error = ssh["data"]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("error checking if remote path exists: "),
        "{error}"
    );
    assert!(error.contains("Host key verification failed"), "{error}");
    assert!(!out.contains("scp completed"), "{out}");
    assert!(!out.contains("performing key-scan"), "{out}");
    assert_eq!(
        std::fs::read_dir(remote.path()).expect("read").count(),
        0,
        "nothing written"
    );
}

/// scpintegration "without a fingerprint" and "with the deployment name in the path", with
/// the daemon and the original's config (`source_executable: true` unquoted, cleanup `true`,
/// `exit_if_in_progress: true`): the key-scan line, then `scp completed`, both with
/// `"destination_name":"foo"`; `1.txt`, `subdir/2.txt` and the dotfile arrive under
/// `<destination>/<deployment>/Y/M/D`. (README: without a fingerprint the host key is
/// trusted once and recorded instead of scanned on every run; the first run logs the line.)
#[test]
fn scp_daemon_without_fingerprint_copies_the_tree_under_the_deployment_name() {
    let s = Scratch::new();
    let src = scp_source(&s);
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let remote = remote_dir();
    let config = s.file(
        "backup.yml",
        &format!(
            "---\ndestinations:\n{}source_folder: {}\nsource_executable: true\nexit_if_in_progress: true\ncron_schedule: '* * * * * *'\ncleanup_executable: true\nmissing_properties_message: custom message\ndeployment_name: deployment-name\nadd_deployment_name_to_backup_path: true\nstate_dir: {}\n",
            scp_destination(&vm, vm.client_key(), "foo", remote.path(), ""),
            src.display(),
            s.path("state").display()
        ),
    );
    let mut daemon = start(DAEMON, &config);
    daemon.wait_for("ServiceBackup.scp completed", Duration::from_secs(30));
    let out = stop_daemon(&mut daemon);
    let lines = json_lines(&out);
    let scan = lines
        .iter()
        .position(|v| v["message"] == "ServiceBackup.Fingerprint not found, performing key-scan")
        .unwrap_or_else(|| panic!("no key-scan line:\n{out}"));
    let done = lines
        .iter()
        .position(|v| v["message"] == "ServiceBackup.scp completed")
        .expect("scp completed");
    assert!(scan < done, "{out}");
    for i in [scan, done] {
        assert_eq!(lines[i]["data"]["destination_name"], "foo", "{out}");
        assert_eq!(lines[i]["level"], "info");
    }
    assert!(
        lines[done]["data"]["backup_guid"] == lines[scan]["data"]["backup_guid"],
        "{out}"
    );
    let dated = remote.path().join("deployment-name").join(today());
    assert_eq!(
        std::fs::read(dated.join("1.txt")).expect("1.txt"),
        b"1".to_vec()
    );
    assert_eq!(
        std::fs::read(dated.join("subdir/2.txt")).expect("2.txt"),
        b"2".to_vec()
    );
    assert_eq!(
        std::fs::read(dated.join(".dotFile.txt")).expect("dotfile"),
        b"I'm a hidden file".to_vec()
    );
    assert!(
        out.contains("ServiceBackup.Cleanup completed successfully"),
        "{out}"
    );
}

/// scp/scp_test "SIGTERM propagation to the scp child", in our terms (README: SCP runs over
/// our own SSH client; SIGTERM aborts uploads in flight and removes the SCP temporary): the
/// daemon exits 1 with `All backup processes terminated. Exiting`, and nothing partial or
/// complete-looking is left on the server.
#[test]
fn sigterm_during_an_scp_upload_leaves_nothing_behind() {
    let s = Scratch::new();
    let src = s.path("source");
    std::fs::create_dir_all(&src).expect("mkdir");
    // Sparse: instant to create, long to send.
    std::fs::File::create(src.join("big.bin"))
        .expect("create")
        .set_len(1 << 30)
        .expect("set_len");
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let remote = remote_dir();
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {}\ncron_schedule: '* * * * * *'\nexit_if_in_progress: true\nstate_dir: {}\n",
            scp_destination(&vm, vm.client_key(), "", remote.path(), &vm.known_hosts_line()),
            src.display(),
            s.path("state").display()
        ),
    );
    let dated = remote.path().join(today());
    let entries = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut daemon = start(DAEMON, &config);
    wait_until("the upload to start", Duration::from_secs(30), || {
        entries(&dated)
            .iter()
            .any(|n| n.starts_with(".bbr-partial-"))
    });
    daemon.signal(Signal::SIGTERM);
    // No wall-clock bound beyond the deadline: the upload not completing (below) shows the
    // stop did not wait for it.
    let status = daemon.wait_exit(Duration::from_secs(20));
    let out = daemon.stdout();
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("ServiceBackup.All backup processes terminated. Exiting"),
        "{out}"
    );
    assert!(!out.contains("scp completed"), "{out}");
    wait_until("the temporary to go", Duration::from_secs(10), || {
        entries(&dated).is_empty()
    });
    assert!(!dated.join("big.bin").exists());
}

/// process_manager_integration "propagates a TERM signal to child backup commands", with alerts
/// configured: the original stops cron, TERMs the children, waits for them, logs `All backup
/// processes terminated` and calls `os.Exit(1)` (docs/service-backup.md#exit-codes-and-signals), so
/// it exits promptly and the run it stopped never gets to send an alert (that takes six HTTP
/// round trips).
#[test]
fn sigterm_with_alerts_configured_exits_promptly_without_alerting() {
    let rt = tokio_runtime();
    // A Cloud Controller that takes a second per answer: an alert would take seconds.
    let servers = alert_servers_with_slow_cc(&rt, Duration::from_secs(1));
    let s = Scratch::new();
    let src = s.source();
    let (started, evidence) = (s.path("started"), s.path("evidence"));
    let prepare = s.script(
        "prepare",
        &format!(
            "trap 'touch {evidence}; exit 129' TERM\ntouch {started}\n{WAIT_LOOP}",
            evidence = evidence.display(),
            started = started.display()
        ),
    );
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {}\nsource_executable: {}\ncron_schedule: '{}'\n{}",
            common::unreachable_s3("x-secret"),
            src.display(),
            prepare.display(),
            seconds_from_now(&[3]),
            alerts_yaml(&servers)
        ),
    );
    let mut daemon = start(DAEMON, &config);
    wait_for_file(&started, Duration::from_secs(15));
    daemon.signal(Signal::SIGTERM);
    let begun = Instant::now();
    let status = daemon.wait_exit(Duration::from_secs(30));
    let took = begun.elapsed();
    let out = daemon.stdout();
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(evidence.exists(), "the prepare command got SIGTERM");
    assert!(
        out.contains("ServiceBackup.All backup processes terminated. Exiting"),
        "{out}"
    );
    // No alert was even begun: its first request goes to the Cloud Controller, whose slow
    // answers would have held the exit for seconds. (No wall-clock bound here: on a loaded
    // two-core machine a timing assertion tests the machine, not the daemon.)
    let (cc, uaa, notified) = (
        servers.cc.requests().len(),
        servers.uaa.requests().len(),
        servers.notifications.requests().len(),
    );
    assert_eq!(
        (cc, uaa, notified),
        (0, 0, 0),
        "alert requests were sent (exit took {took:?}):\n{out}"
    );
}

// =============================================================================================
// Several destinations, scheduled (docs/service-backup.md#a-run)

/// multiintegration (scp + s3, two scp with different keys, two s3 one with an empty region)
/// and release_tests "automatic" backups, all through the daemon's schedule with the
/// original's config (`true` commands unquoted, `exit_if_in_progress: true`), plus GCS and
/// Azure: destinations run one after the other in config order, each completes, and every
/// tree arrives byte for byte.
#[test]
fn scheduled_run_uploads_to_every_destination_in_config_order() {
    let s = Scratch::new();
    let src = scp_source(&s);
    std::fs::write(src.join("subdir/blob.bin"), pattern(250_000, 3)).expect("write");
    let expected = tree(&src);
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let second_key = ClientKey::generate(KeyType::Ecdsa).expect("key");
    vm.add_authorized_key(vm.user(), second_key.public_key_line())
        .expect("authorize");
    let (remote1, remote2) = (remote_dir(), remote_dir());
    let (bucket_a, bucket_b) = (unique("multia"), unique("multib"));
    let (gbucket, container) = (unique("multig"), unique("multic"));
    let config = s.file(
        "backup.yml",
        &format!(
            "---\ndestinations:\n{}{}{}{}{}{}source_folder: {}\nsource_executable: true\naws_cli_path: aws\nexit_if_in_progress: true\ncron_schedule: '* * * * * *'\ncleanup_executable: true\nmissing_properties_message: custom message\nstate_dir: {}\n",
            scp_destination(&vm, vm.client_key(), "", remote1.path(), ""),
            s3_destination("", &bucket_a, "path-a", "us-east-1"),
            scp_destination(&vm, &second_key, "", remote2.path(), ""),
            s3_destination("", &bucket_b, "path-b", ""),
            gcs_destination("", &gbucket),
            azure_destination("", &container, "az"),
            src.display(),
            s.path("state").display()
        ),
    );
    let mut daemon = start(DAEMON, &config);
    daemon.wait_for(
        "ServiceBackup.Upload backup completed successfully",
        Duration::from_secs(60),
    );
    let out = stop_daemon(&mut daemon);
    let lines = json_lines(&out);
    let done = lines
        .iter()
        .find(|v| v["message"] == "ServiceBackup.Upload backup completed successfully")
        .expect("done");
    let guid = done["data"]["backup_guid"].clone();
    let gcs_start = format!(
        "ServiceBackup.will upload {} to Google Cloud Storage",
        src.display()
    );
    let markers: Vec<&str> = lines
        .iter()
        .filter(|v| v["data"]["backup_guid"] == guid)
        .filter_map(|v| v["message"].as_str())
        .filter(|m| {
            [
                "ServiceBackup.scp completed",
                "ServiceBackup.s3 completed",
                "ServiceBackup.Uploading azure blobs",
                gcs_start.as_str(),
            ]
            .contains(m)
        })
        .collect();
    assert_eq!(
        markers,
        vec![
            "ServiceBackup.scp completed",
            "ServiceBackup.s3 completed",
            "ServiceBackup.scp completed",
            "ServiceBackup.s3 completed",
            gcs_start.as_str(),
            "ServiceBackup.Uploading azure blobs",
        ],
        "{out}"
    );
    let date = today();
    assert_eq!(tree(&remote1.path().join(&date)), expected);
    assert_eq!(tree(&remote2.path().join(&date)), expected);
    assert_s3_holds(&bucket_a, &format!("path-a/{date}"), &expected);
    assert_s3_holds(&bucket_b, &format!("path-b/{date}"), &expected);
    for (rel, bytes) in &expected {
        let obj = fake_gcs()
            .get_object(&gbucket, &format!("{date}/{rel}"))
            .expect("get");
        assert!(obj.as_deref() == Some(&bytes[..]), "gcs {rel}");
        let blob = azurite()
            .get_blob(&container, &format!("az/{date}/{rel}"))
            .expect("get");
        assert!(blob.as_deref() == Some(&bytes[..]), "azure {rel}");
    }
}

// =============================================================================================
// The in-progress alert (docs/service-backup.md#alerts)

/// s3integration "exit_if_in_progress … alerts are configured", without and with a service
/// identifier: the second run is rejected with the exact message, one alert is sent (CC 3
/// requests, UAA 2, notifications 1), and its subject and text are the original's (the
/// identifier runs before the gate, so the rejected run names the instance).
#[test]
fn rejected_overlapping_run_sends_exactly_one_alert() {
    let rt = tokio_runtime();
    let cases = [("plain", false), ("identified", true)];
    let mut running = Vec::new();
    for (tag, with_identifier) in cases {
        let s = Scratch::new();
        let src = s.source();
        let release = s.path("release");
        let started = s.path("started");
        let prepare = s.script(
            "prepare",
            &format!(
                "touch {}\ni=0; while [ ! -e {} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
                started.display(),
                release.display()
            ),
        );
        let ident = s.script("ident", "echo FakeIdentifier");
        let servers = alert_servers(&rt);
        let identifier_line = if with_identifier {
            format!("service_identifier_executable: {}\n", ident.display())
        } else {
            String::new()
        };
        // Two ticks, one second apart: the first run blocks in prepare, the second is
        // rejected; nothing else fires while the test runs.
        let config = s.file(
            "backup.yml",
            &format!(
                "destinations:\n{}source_folder: {}\nsource_executable: {}\nexit_if_in_progress: true\ncron_schedule: '{}'\nstate_dir: {}\n{identifier_line}{}",
                common::unreachable_s3("x-secret"),
                src.display(),
                prepare.display(),
                seconds_from_now(&[3, 4]),
                s.path("state").display(),
                alerts_yaml(&servers)
            ),
        );
        let daemon = start(DAEMON, &config);
        running.push((tag, with_identifier, s, servers, daemon));
    }
    for (tag, with_identifier, s, servers, mut daemon) in running {
        daemon.wait_for("ServiceBackup.Sent alert.", Duration::from_secs(30));
        // The first run is still blocked in prepare and no tick is left: what the stand-ins
        // saw so far is the whole alert of the rejected run. (How the blocked run ends on
        // SIGTERM is not this test's business.)
        let (cc, uaa, sent) = (
            servers.cc.requests(),
            servers.uaa.requests(),
            servers.notifications.requests(),
        );
        let out = daemon.stdout();
        assert!(!s.path("release").exists());
        let all = stop_daemon(&mut daemon);
        assert_eq!(
            all.matches("Perform backup started").count(),
            1,
            "{tag}: {all}"
        );
        let prefix = if with_identifier {
            "ServiceBackup.WithIdentifier."
        } else {
            "ServiceBackup."
        };
        let rejected = line(&out, &format!("{prefix}{IN_PROGRESS}"));
        assert!(is_error(&rejected));
        assert_eq!(rejected["data"]["error"], IN_PROGRESS);
        let msgs = messages(&out);
        let at = |m: &str| msgs.iter().position(|x| x == m);
        assert!(at("ServiceBackup.Sending alert.") < at("ServiceBackup.Sent alert."));
        assert_eq!(
            msgs.iter().filter(|m| m.ends_with("Sent alert.")).count(),
            1
        );

        assert_eq!(cc.len(), 3, "{tag}: {cc:#?}");
        assert_eq!(cc[0].path, "/v2/info");
        assert_eq!(cc[1].path, "/v2/organizations");
        assert_eq!(cc[1].header("authorization"), "Bearer cf-token");
        assert_eq!(cc[2].path, "/v2/organizations/org_guid/spaces");
        assert_eq!(uaa.len(), 2, "{tag}");
        // The two UAA grants of docs/service-backup.md#alerts (these credentials need no form
        // encoding either way).
        assert_eq!(uaa[0].path, "/oauth/token");
        assert_eq!(uaa[0].header("authorization"), "Basic Y2Y6"); // "cf:"
        assert_eq!(
            uaa[0].body,
            "grant_type=password&username=admin&scope=&password=password"
        );
        assert_eq!(
            uaa[1].header("authorization"),
            "Basic Y2xpZW50X2lkOmNsaWVudF9zZWNyZXQ=" // "client_id:client_secret"
        );
        assert_eq!(uaa[1].body, "grant_type=client_credentials");
        assert_eq!(sent.len(), 1, "{tag}");
        assert_eq!(sent[0].method, "POST");
        assert_eq!(sent[0].path, "/spaces/space_guid");
        assert_eq!(sent[0].header("x-notifications-version"), "1");
        assert_eq!(
            sent[0].header("authorization"),
            "Bearer notifications-token"
        );
        let body: Value = serde_json::from_str(&sent[0].body).expect("json");
        assert_eq!(body["kind_id"], "service-alerts");
        assert_eq!(
            body["subject"],
            "[Service Alert][SomeDB] Service Backup Failed"
        );
        assert_eq!(body["reply_to"], "me@example.com");
        let who = if with_identifier {
            "Alert from SomeDB, service instance FakeIdentifier:"
        } else {
            "Alert from SomeDB:"
        };
        let text = body["text"].as_str().unwrap_or_default();
        let head = format!(
            "{who}\n\nA backup run has failed with the following error: {IN_PROGRESS}\n\n[Alert generated at "
        );
        assert!(text.starts_with(&head), "{tag}: {text:?}");
        assert!(text.ends_with(']'), "{text:?}");
    }
}
