//! `bbr deployment --all-deployments` scenarios of Go bbr's
//! `integration/deployment/{backup,pre_backup_check,backup_cleanup}_test.go`, run against the
//! BOSH director simulator and real sshd VMs: the summary and footer, the per-deployment log
//! files, a run killed midway.
//!
//! Scripts record their runs (`support::record`), so `Deployment::events` tells which scripts
//! ran, in which order, and what `BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL` they saw. Metadata
//! scripts are installed without recording so that the events are lifecycle scripts only.
//! Helpers shared with the other `deployment_*` scenario binaries are in
//! `support::scenarios`.

mod support;

use bbr_director_sim::{DeploymentSpec, SimOptions};
use bbr_testkit::wait;
use std::path::Path;
use support::deployment::{Deployment, FOOTER, group};
use support::scenarios::{
    FAILING, assert_temp_users_removed, dirs_in, files_in, has_clock_prefix, is_timestamped,
    redis_node, tars,
};
use support::{Run, Script, assert_in_order};

/// The footer of `--all-deployments` runs (docs/cli.md#footers).
const ALL_FOOTER: &str = "It is recommended that you run `bbr deployment --all-deployments backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";

/// Runs bbr with `--all-deployments` instead of `--deployment <name>`.
fn all(h: &Deployment, args: &[&str]) -> Run {
    Run(h.command(None, args).output().unwrap())
}

/// How long a test waits for a blocking script to start, or to end once released.
const SCRIPT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// --all-deployments backup (backup_test.go "Backup --all-deployments")
// ---------------------------------------------------------------------------------------

fn one_redis_deployment(name: &str) -> DeploymentSpec {
    DeploymentSpec::new(name).group(group("redis", 1, &[("redis", "redis")]))
}

#[test]
fn all_deployments_backup_with_an_unlock_failure_prints_the_all_deployments_footer() {
    let d = "little-deployment-1";
    let h = Deployment::start(vec![one_redis_deployment(d)], SimOptions::new());
    let redis0 = h.instance(d, "redis", 0);
    redis0.job("redis").script(
        Script::Backup,
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    redis0
        .job("redis")
        .script(Script::PostBackupUnlock, ">&2 echo 'I failed'; exit 1");
    let artifacts = h.work.path().join("artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    let run = all(
        &h,
        &["backup", "--artifact-path", &artifacts.to_string_lossy()],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    let err = run.stderr();
    assert!(
        err.starts_with(&format!(
            "1 out of 1 deployments cannot be backed up:\n  {d}\n"
        )),
        "{err}"
    );
    assert!(err.contains("I failed"), "{err}");
    assert!(err.contains(ALL_FOOTER), "{err}");
    assert!(
        !err.contains(FOOTER),
        "not the single-deployment footer: {err}"
    );
    assert_in_order(
        &run.stdout(),
        &[
            &format!("ERROR: failed to backup {d}"),
            "Successfully backed up: ",
            &format!("FAILED: {d}"),
        ],
    );
    let dirs = dirs_in(&artifacts);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(tars(&dirs[0]), vec!["redis-0-redis.tar"], "drained anyway");
    assert_eq!(
        h.events(d),
        vec![
            "redis/0 redis backup",
            "redis/0 redis post-backup-unlock true"
        ]
    );
    assert_temp_users_removed(&h);
    // docs/cli.md#--all-deployments, docs/director-api.md#the-call-sequence: one client lists
    // the deployments, then each deployment builds its
    // own client (a second `GET /info`, the request Go's "second /info fails" test breaks).
    let requests = h.sim.requests();
    assert_eq!(
        requests.get(..4),
        Some(
            &[
                "GET /info".to_string(),
                "GET /deployments".to_string(),
                "GET /info".to_string(),
                format!("GET /deployments/{d}/vms?format=full"),
            ][..]
        ),
        "{requests:?}"
    );
}

#[test]
fn all_deployments_backup_killed_mid_backup_leaves_the_progress_in_the_log_file() {
    let d = "little-deployment-1";
    let h = Deployment::start(vec![one_redis_deployment(d)], SimOptions::new());
    let redis0 = h.instance(d, "redis", 0);
    redis0.job("redis").script(Script::PreBackupLock, "");
    // Blocks until the test releases it (bounded, so that nothing outlives the test).
    redis0.job("redis").script(
        Script::Backup,
        "touch /var/vcap/sys/backing-up\ni=0; while [ ! -e /var/vcap/sys/release ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\ntouch /var/vcap/sys/backup-ended",
    );
    let artifacts = h.work.path().join("artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    let mut child = h
        .command(
            None,
            &["backup", "--artifact-path", &artifacts.to_string_lossy()],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let vm = redis0.vm();
    wait::until("the backup script to start", SCRIPT_WAIT, || {
        assert!(child.try_wait().unwrap().is_none(), "bbr exited early");
        vm.exists("sys/backing-up")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // The script outlived bbr: release it and let it end before the VM goes away.
    vm.install_file("sys/release", "", 0o644).unwrap();
    wait::until("the backup script to end", SCRIPT_WAIT, || {
        vm.exists("sys/backup-ended")
    });
    let logs: Vec<String> = files_in(&artifacts)
        .into_iter()
        .filter(|n| n.starts_with(&format!("{d}_")) && n.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 1, "{:?}", files_in(&artifacts));
    let log = std::fs::read_to_string(artifacts.join(&logs[0])).unwrap();
    let node = redis0.slug();
    assert_in_order(
        &log,
        &[
            "INFO - Looking for scripts",
            &format!("INFO - {node}/redis/backup"),
            &format!("INFO - Running pre-checks for backup of {d}..."),
            &format!("INFO - Starting backup of {d}..."),
            "INFO - Running pre-backup-lock scripts...",
            "INFO - Finished running pre-backup-lock scripts.",
            "INFO - Running backup scripts...",
            &format!("INFO - Backing up redis on {node}..."),
        ],
    );
    assert!(!log.contains("Finished running backup scripts."), "{log}");
}

#[test]
fn all_deployments_backup_with_an_artifact_directory_prints_the_all_deployments_footer() {
    let d = "little-deployment-1";
    let h = Deployment::start(vec![one_redis_deployment(d)], SimOptions::new());
    let redis0 = h.instance(d, "redis", 0);
    redis0.job("redis").script(Script::Backup, FAILING);
    redis0
        .vm()
        .install_file("store/bbr-backup/x", "x", 0o644)
        .unwrap();
    let artifacts = h.work.path().join("artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    let run = all(
        &h,
        &["backup", "--artifact-path", &artifacts.to_string_lossy()],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "Directory /var/vcap/store/bbr-backup already exists on instance {}",
            redis0.slug()
        )),
        "{err}"
    );
    assert!(err.contains(ALL_FOOTER), "{err}");
    assert!(redis0.vm().exists("store/bbr-backup/x"), "preserved");
    assert_eq!(h.events(d), Vec::<String>::new());
    assert!(dirs_in(&artifacts).is_empty(), "{:?}", dirs_in(&artifacts));
}

#[test]
fn all_deployments_backup_refuses_unsafe_lock_free_without_contacting_the_director() {
    let h = Deployment::start(vec![one_redis_deployment("d")], SimOptions::new());
    h.instance("d", "redis", 0).job("redis").backup_scripts();
    let run = all(&h, &["backup", "--unsafe-lock-free"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains(
            "Cannot use the --unsafe-lock-free flag in conjunction with the --all-deployments flag"
        ),
        "{}",
        run.show()
    );
    assert_eq!(h.sim.requests(), Vec::<String>::new());
    assert_eq!(h.events("d"), Vec::<String>::new());
    assert!(dirs_in(h.work.path()).is_empty());
}

#[test]
fn all_deployments_backup_when_the_first_info_request_fails() {
    let h = Deployment::start(vec![one_redis_deployment("d")], SimOptions::new());
    h.instance("d", "redis", 0).job("redis").backup_scripts();
    h.sim.fail_next("/info", 500);
    let run = all(&h, &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("bosh director unreachable or unhealthy"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr()
            .contains("Director responded with non-successful status code '500'"),
        "{}",
        run.show()
    );
    assert_eq!(h.sim.requests(), vec!["GET /info"]);
    assert_eq!(h.events("d"), Vec::<String>::new());
    assert!(
        !run.stdout().contains("Pending:"),
        "no deployment was started: {}",
        run.show()
    );
}

// ---------------------------------------------------------------------------------------
// --all-deployments backup-cleanup (backup_cleanup_test.go)
// ---------------------------------------------------------------------------------------

/// The per-deployment log files of `d` in `dir`.
fn deployment_logs(dir: &Path, d: &str) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|n| is_timestamped(n, d, ".log"))
        .collect()
}

#[test]
fn all_deployments_backup_cleanup_writes_a_log_file_per_deployment_and_a_summary() {
    let deployments = ["dep1", "dep2"];
    let h = Deployment::start(
        deployments
            .iter()
            .map(|d| {
                DeploymentSpec::new(*d).group(group(
                    "redis-dedicated-node",
                    1,
                    &[("redis", "redis")],
                ))
            })
            .collect(),
        SimOptions::new(),
    );
    for d in deployments {
        h.instance(d, "redis-dedicated-node", 0)
            .job("redis")
            .script(Script::Backup, "");
        h.instance(d, "redis-dedicated-node", 0)
            .job("redis")
            .script(Script::PostBackupUnlock, "");
        h.instance(d, "redis-dedicated-node", 0)
            .vm()
            .install_file("store/bbr-backup/redis/data", "half done", 0o644)
            .unwrap();
    }
    let run = all(&h, &["--debug", "backup-cleanup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let out = run.stdout();
    let stamped = |text: &str| {
        out.lines()
            .find(|l| l.get(11..) == Some(text))
            .unwrap_or_else(|| panic!("no `[HH:MM:SS] {text}` line in:\n{out}"))
            .to_string()
    };
    assert!(out.starts_with("Starting cleanup...\n"), "{out}");
    assert!(has_clock_prefix(&stamped("Pending: dep1, dep2")));
    for d in deployments {
        let vm = h.instance(d, "redis-dedicated-node", 0).vm();
        assert!(!vm.exists("store/bbr-backup"), "{d} cleaned");
        assert_eq!(
            h.events(d),
            vec!["redis-dedicated-node/0 redis post-backup-unlock false"]
        );
        let logs = deployment_logs(h.work.path(), d);
        assert_eq!(logs.len(), 1, "{d}: {:?}", files_in(h.work.path()));
        // Go joins the empty artifact path with the file name: the path is relative.
        assert!(has_clock_prefix(&stamped(&format!(
            "Starting cleanup of {d}, log file: {}",
            logs[0]
        ))));
        assert!(has_clock_prefix(&stamped(&format!(
            "Finished cleanup of {d}"
        ))));
        let log = std::fs::read_to_string(h.work.path().join(&logs[0])).unwrap();
        let node = h.instance(d, "redis-dedicated-node", 0).slug();
        assert_in_order(
            &log,
            &[
                "INFO - Looking for scripts",
                &format!("INFO - {node}/redis/backup"),
                "INFO - Running post-backup-unlock scripts...",
                &format!("INFO - Unlocking redis on {node}..."),
                "INFO - Finished running post-backup-unlock scripts.",
                &format!("INFO - '{d}' cleaned up"),
            ],
        );
        let other = deployments.iter().find(|o| **o != d).unwrap();
        assert!(
            !log.contains(&format!("'{other}'")),
            "{d}'s log is its own: {log}"
        );
    }
    assert!(has_clock_prefix(&stamped(
        "Successfully cleaned up: dep1, dep2"
    )));
    assert_eq!(run.stderr(), "", "{}", run.show());
    assert_temp_users_removed(&h);
}

#[test]
fn all_deployments_backup_cleanup_killed_mid_cleanup_leaves_the_progress_in_the_log_file() {
    let d = "dep1";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, "");
    // Blocks until the test releases it (bounded, so that nothing outlives the test).
    dedicated.job("redis").script(
        Script::PostBackupUnlock,
        "touch /var/vcap/sys/unlocking\ni=0; while [ ! -e /var/vcap/sys/release ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\ntouch /var/vcap/sys/unlock-ended",
    );
    let vm = dedicated.vm();
    vm.install_file("store/bbr-backup/redis/data", "half done", 0o644)
        .unwrap();
    let mut child = h
        .command(None, &["--debug", "backup-cleanup"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait::until("the unlock script to start", SCRIPT_WAIT, || {
        assert!(child.try_wait().unwrap().is_none(), "bbr exited early");
        vm.exists("sys/unlocking")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // The script outlived bbr: release it and let it end before the VM goes away.
    vm.install_file("sys/release", "", 0o644).unwrap();
    wait::until("the unlock script to end", SCRIPT_WAIT, || {
        vm.exists("sys/unlock-ended")
    });
    let logs = deployment_logs(h.work.path(), d);
    assert_eq!(logs.len(), 1, "{:?}", files_in(h.work.path()));
    let log = std::fs::read_to_string(h.work.path().join(&logs[0])).unwrap();
    let node = dedicated.slug();
    assert_in_order(
        &log,
        &[
            "INFO - Looking for scripts",
            &format!("INFO - {node}/redis/backup"),
            "INFO - Running post-backup-unlock scripts...",
        ],
    );
    assert!(
        !log.contains("INFO - Finished running post-backup-unlock scripts."),
        "{log}"
    );
    assert!(!log.contains(&format!("INFO - '{d}' cleaned up")), "{log}");
    assert!(
        vm.exists("store/bbr-backup/redis/data"),
        "killed before the cleanup step"
    );
}

// ---------------------------------------------------------------------------------------
// pre-backup-check and backup-cleanup --all-deployments (pre_backup_check_test.go,
// backup_cleanup_test.go)
// ---------------------------------------------------------------------------------------

#[test]
fn pre_backup_check_all_deployments_with_an_artifact_directory_on_one_deployment() {
    let h = Deployment::start(
        vec![
            one_redis_deployment("deployment1"),
            one_redis_deployment("deployment2"),
        ],
        SimOptions::new(),
    );
    let deployment2_redis0 = h.instance("deployment2", "redis", 0);
    for d in ["deployment1", "deployment2"] {
        h.instance(d, "redis", 0)
            .job("redis")
            .script(Script::Backup, "");
    }
    deployment2_redis0
        .vm()
        .install_file("store/bbr-backup/x", "x", 0o644)
        .unwrap();
    let run = all(&h, &["pre-backup-check"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let dir_error = format!(
        "Directory /var/vcap/store/bbr-backup already exists on instance {}",
        deployment2_redis0.slug()
    );
    let out = run.stdout();
    assert!(
        out.contains("] Pending: deployment1, deployment2\n"),
        "{out}"
    );
    assert!(
        out.contains("] Deployment 'deployment1' can be backed up.\n"),
        "{out}"
    );
    assert_in_order(
        &out,
        &[
            "] Deployment 'deployment2' cannot be backed up.\n",
            &dir_error,
        ],
    );
    assert!(
        out.contains("] Successfully can be backed up: deployment1\n"),
        "{out}"
    );
    let err = run.stderr();
    assert!(
        err.starts_with("1 out of 2 deployments cannot be backed up:\n  deployment2\n"),
        "{err}"
    );
    assert_in_order(&err, &[&dir_error, ALL_FOOTER]);
    assert!(deployment2_redis0.vm().exists("store/bbr-backup/x"));
    assert!(
        files_in(h.work.path())
            .iter()
            .all(|n| !n.ends_with(".log") || n.ends_with(".err.log")),
        "pre-backup-check writes no per-deployment log files: {:?}",
        files_in(h.work.path())
    );
    assert_temp_users_removed(&h);
}

#[test]
fn all_deployments_backup_cleanup_with_a_failing_unlock() {
    let d = "dep1";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, "");
    dedicated
        .job("redis")
        .script(Script::PostBackupUnlock, "exit 1");
    let vm = dedicated.vm();
    vm.install_file("store/bbr-backup/redis/data", "half done", 0o644)
        .unwrap();
    let run = all(&h, &["backup-cleanup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let node = dedicated.slug();
    let unlock_log = [
        "INFO - Looking for scripts".to_string(),
        format!("INFO - {node}/redis/post-backup-unlock"),
        "INFO - Running post-backup-unlock scripts...".to_string(),
        format!("INFO - Unlocking redis on {node}..."),
        format!("ERROR - Error unlocking redis on {node}."),
        "INFO - Finished running post-backup-unlock scripts.".to_string(),
    ];
    let mut expected = vec![
        format!("Failed to cleanup deployment '{d}'"),
        format!("ERROR: failed to cleanup {d}"),
    ];
    expected.extend(unlock_log.iter().cloned());
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_in_order(
        &run.stderr(),
        &[
            &format!("1 out of 1 deployments could not be cleaned up:\n  {d}"),
            &format!("Deployment '{d}':"),
            "exit code 1",
        ],
    );
    let logs: Vec<String> = files_in(h.work.path())
        .into_iter()
        .filter(|n| n.starts_with(&format!("{d}_")) && n.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 1, "{:?}", files_in(h.work.path()));
    let log = std::fs::read_to_string(h.work.path().join(&logs[0])).unwrap();
    let unlock_log: Vec<&str> = unlock_log.iter().map(String::as_str).collect();
    assert_in_order(&log, &unlock_log);
    assert!(
        !vm.exists("store/bbr-backup"),
        "cleanup ran after the unlock"
    );
    assert_eq!(
        h.events(d),
        vec!["redis-dedicated-node/0 redis post-backup-unlock false"]
    );
    assert_temp_users_removed(&h);
    // Go prints `Failed to cleanup deployment '<d>'` straight to stdout before the
    // `ERROR: failed to cleanup <d>` line, which is followed by the deployment's log
    // (backup_cleanup_test.go), and logs no `'<d>' cleaned up` for a failed cleanup.
    let out = run.stdout();
    assert!(
        !out.contains(&format!("INFO - '{d}' cleaned up")),
        "{}",
        run.show()
    );
    assert_in_order(&out, &expected);
}
