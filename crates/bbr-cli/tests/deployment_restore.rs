//! `bbr deployment restore` scenarios of Go bbr's `integration/deployment/restore_test.go`
//! that `deployment.rs` does not cover, run against the BOSH director simulator and real
//! sshd VMs: lock order, refusals before any script runs, script failures, skipped jobs,
//! corrupted artifacts.
//!
//! Scripts record their runs (`support::record`), so `Deployment::events` tells which scripts
//! ran, in which order, and what `BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL` they saw. Metadata
//! scripts are installed without recording so that the events are lifecycle scripts only.
//! Helpers shared with the other `deployment_*` scenario binaries are in
//! `support::scenarios`.

mod support;

use bbr_director_sim::{DeploymentSpec, SimOptions, TaskKind};
use std::path::{Path, PathBuf};
use support::deployment::{Deployment, group};
use support::scenarios::{
    assert_temp_users_removed, err_logs, files_in, locked_before, redis_node, tars,
};
use support::{Run, Script, assert_in_order};

/// Forgets the recorded script runs of every VM of `d`.
fn clear_events(h: &Deployment, d: &str) {
    for vm in h.sim.vms(d) {
        let log = vm.vcap_path("sys/events/log");
        if log.exists() {
            std::fs::remove_file(log).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// restore (integration/deployment/restore_test.go)
// ---------------------------------------------------------------------------------------

/// Backs `d` up and returns the artifact directory, with the backup's events forgotten.
fn backed_up(h: &Deployment, d: &str) -> PathBuf {
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "backup before the restore: {}", run.show());
    clear_events(h, d);
    h.sim.clear_requests();
    h.artifact()
}

fn restore(h: &Deployment, d: &str, artifact: &Path) -> Run {
    h.bbr(
        d,
        &["restore", "--artifact-path", &artifact.to_string_lossy()],
    )
}

/// `redis` on `redis-dedicated-node` backs up `backupdump1` and restores it to
/// `/var/vcap/store/redis-server/`.
fn redis_backup_and_restore_scripts(h: &Deployment, d: &str) {
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(
        Script::Backup,
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    dedicated.job("redis").script(
        Script::Restore,
        "mkdir -p /var/vcap/store/redis-server && cp -r \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/redis-server/",
    );
}

#[test]
fn restore_locks_in_restore_should_be_locked_before_order_and_unlocks_in_reverse() {
    let d = "my-new-deployment";
    let h = Deployment::one(
        d,
        vec![
            group("redis-dedicated-node", 1, &[("redis", "redis")]),
            group("redis-server", 1, &[("redis-writer", "redis")]),
        ],
    );
    redis_backup_and_restore_scripts(&h, d);
    for (g, job) in [
        ("redis-dedicated-node", "redis"),
        ("redis-server", "redis-writer"),
    ] {
        h.instance(d, g, 0)
            .job(job)
            .script(Script::PreRestoreLock, "");
        h.instance(d, g, 0)
            .job(job)
            .script(Script::PostRestoreUnlock, "");
    }
    // The VM list has redis-dedicated-node first: only the ordering puts the writer first.
    h.instance(d, "redis-server", 0)
        .job("redis-writer")
        .metadata(&locked_before("restore", "redis", "redis"));
    let artifact = backed_up(&h, d);
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains(
            "Detected order: redis-writer should be locked before redis/redis during restore"
        ),
        "{}",
        run.show()
    );
    assert_eq!(
        h.events(d),
        vec![
            "redis-server/0 redis-writer pre-restore-lock",
            "redis-dedicated-node/0 redis pre-restore-lock",
            "redis-dedicated-node/0 redis restore",
            "redis-dedicated-node/0 redis post-restore-unlock",
            "redis-server/0 redis-writer post-restore-unlock",
        ]
    );
    assert_eq!(
        h.instance(d, "redis-dedicated-node", 0)
            .vm()
            .read("store/redis-server/backupdump1")
            .unwrap(),
        "backupcontent1\n"
    );
    for g in ["redis-dedicated-node", "redis-server"] {
        assert!(!h.instance(d, g, 0).vm().exists("store/bbr-backup"), "{g}");
    }
    assert_temp_users_removed(&h);
}

#[test]
fn restore_with_cyclic_lock_order_fails_before_any_script_runs() {
    let d = "my-new-deployment";
    let h = Deployment::one(
        d,
        vec![group(
            "redis-dedicated-node",
            1,
            &[("redis", "redis"), ("redis-writer", "redis")],
        )],
    );
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    redis_backup_and_restore_scripts(&h, d);
    for job in ["redis", "redis-writer"] {
        dedicated.job(job).script(Script::PreRestoreLock, "");
        dedicated.job(job).script(Script::PostRestoreUnlock, "");
    }
    dedicated
        .job("redis-writer")
        .metadata(&locked_before("restore", "redis", "redis"));
    dedicated
        .job("redis")
        .metadata(&locked_before("restore", "redis-writer", "redis"));
    let artifact = backed_up(&h, d);
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("job locking dependency graph is cyclic"),
        "{}",
        run.show()
    );
    assert_eq!(h.events(d), Vec::<String>::new(), "no script ran");
    assert!(!dedicated.vm().exists("store/bbr-backup"));
    assert!(!dedicated.vm().exists("store/redis-server"));
    assert_temp_users_removed(&h);
}

#[test]
fn restore_refuses_when_the_remote_artifact_directory_exists() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    redis_backup_and_restore_scripts(&h, d);
    dedicated.job("redis").script(Script::PreRestoreLock, "");
    dedicated.job("redis").script(Script::PostRestoreUnlock, "");
    let artifact = backed_up(&h, d);
    let vm = dedicated.vm();
    vm.install_file("store/bbr-backup/redis/leftover", "previous run", 0o644)
        .unwrap();
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 1, "{}", run.show());
    let node = dedicated.slug();
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "Directory /var/vcap/store/bbr-backup already exists on instance {node}"
        )),
        "{}",
        run.show()
    );
    assert!(!err.contains("main.go"), "{}", run.show());
    assert!(
        !err.contains("It is recommended that you run"),
        "restore has no footer outside SIGINT: {}",
        run.show()
    );
    assert_eq!(
        err_logs(h.work.path()).len(),
        1,
        "{:?}",
        files_in(h.work.path())
    );
    assert_eq!(
        vm.read("store/bbr-backup/redis/leftover").unwrap(),
        "previous run",
        "the existing directory is preserved"
    );
    assert_eq!(h.events(d), Vec::<String>::new(), "no script ran");
    assert!(!vm.exists("store/redis-server"));
    assert_temp_users_removed(&h);
}

#[test]
fn restore_script_failure_exits_1_and_still_unlocks() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    redis_backup_and_restore_scripts(&h, d);
    dedicated.job("redis").script(Script::PreRestoreLock, "");
    dedicated.job("redis").script(Script::PostRestoreUnlock, "");
    let artifact = backed_up(&h, d);
    dedicated
        .job("redis")
        .script(Script::Restore, ">&2 echo \"dear lord\"; exit 1");
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 1, "{}", run.show());
    let err = run.stderr();
    assert!(err.contains("dear lord"), "{}", run.show());
    assert!(!err.contains("main.go"), "{}", run.show());
    let logs = err_logs(h.work.path());
    assert_eq!(logs.len(), 1, "{:?}", files_in(h.work.path()));
    let log = std::fs::read_to_string(h.work.path().join(&logs[0])).unwrap();
    assert!(log.contains("dear lord"), "{log}");
    assert_eq!(
        h.events(d),
        vec![
            "redis-dedicated-node/0 redis pre-restore-lock",
            "redis-dedicated-node/0 redis restore",
            "redis-dedicated-node/0 redis post-restore-unlock",
        ]
    );
    assert!(!dedicated.vm().exists("store/bbr-backup"));
    assert_temp_users_removed(&h);
}

#[test]
fn pre_restore_lock_failure_skips_the_restore_and_still_unlocks() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    redis_backup_and_restore_scripts(&h, d);
    dedicated.job("redis").script(Script::PostRestoreUnlock, "");
    let artifact = backed_up(&h, d);
    dedicated
        .job("redis")
        .script(Script::PreRestoreLock, ">&2 echo \"dear lord\"; exit 1");
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(run.stderr().contains("dear lord"), "{}", run.show());
    assert_eq!(
        h.events(d),
        vec![
            "redis-dedicated-node/0 redis pre-restore-lock",
            "redis-dedicated-node/0 redis post-restore-unlock",
        ]
    );
    let vm = dedicated.vm();
    assert!(!vm.exists("store/redis-server"), "nothing restored");
    assert!(!vm.exists("store/bbr-backup"), "remote directory cleaned");
    assert_temp_users_removed(&h);
}

#[test]
fn restore_skips_an_instance_whose_jobs_are_disabled() {
    let d = "my-new-deployment";
    let h = Deployment::one(
        d,
        vec![
            group("redis-dedicated-node", 1, &[("redis", "redis")]),
            group("redis-server", 1, &[("redis", "redis")]),
        ],
    );
    let server = h.instance(d, "redis-server", 0);
    for g in ["redis-dedicated-node", "redis-server"] {
        h.instance(d, g, 0).job("redis").script(
            Script::Backup,
            "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
        );
        h.instance(d, g, 0).job("redis").script(
            Script::Restore,
            "mkdir -p /var/vcap/store/redis-server && cp -r \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/redis-server/",
        );
    }
    let artifact = backed_up(&h, d);
    assert_eq!(tars(&artifact).len(), 2, "{:?}", tars(&artifact));
    server.job("redis").metadata("skip_bbr_scripts: true\n");
    let run = h.bbr(
        d,
        &[
            "--debug",
            "restore",
            "--artifact-path",
            &artifact.to_string_lossy(),
        ],
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains(&format!(
            "Found disabled jobs on instance {} jobs: redis",
            server.slug()
        )),
        "{}",
        run.show()
    );
    assert_eq!(h.events(d), vec!["redis-dedicated-node/0 redis restore"]);
    assert!(
        h.instance(d, "redis-dedicated-node", 0)
            .vm()
            .exists("store/redis-server/backupdump1")
    );
    assert!(!server.vm().exists("store/redis-server"));
    assert_temp_users_removed(&h);
}

#[test]
fn restore_refuses_jobs_with_the_discontinued_restore_name() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    redis_backup_and_restore_scripts(&h, d);
    let artifact = backed_up(&h, d);
    dedicated.job("redis").metadata("restore_name: foo\n");
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 1, "{}", run.show());
    let message = "discontinued metadata keys backup_name/restore_name found on instance redis-dedicated-node. bbr cannot restore this backup artifact.";
    assert!(
        run.stdout().contains(&format!("ERROR - {message}")),
        "{}",
        run.show()
    );
    assert!(run.stderr().contains(message), "{}", run.show());
    assert_eq!(h.events(d), Vec::<String>::new(), "nothing restored");
    assert!(!dedicated.vm().exists("store/redis-server"));
    assert!(!dedicated.vm().exists("store/bbr-backup"));
    assert_temp_users_removed(&h);
}

#[test]
fn restore_then_ssh_cleanup_failure_exits_16() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    redis_backup_and_restore_scripts(&h, d);
    dedicated.job("redis").script(Script::PostRestoreUnlock, "");
    let artifact = backed_up(&h, d);
    h.sim.fail_task(TaskKind::SshCleanup);
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 16, "{}", run.show());
    assert!(
        run.stderr().contains(&format!(
            "Deployment '{d}' failed while cleaning up with error: "
        )),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains("main.go"), "{}", run.show());
    assert_eq!(
        h.events(d),
        vec![
            "redis-dedicated-node/0 redis restore",
            "redis-dedicated-node/0 redis post-restore-unlock",
        ]
    );
    let vm = dedicated.vm();
    assert_eq!(
        vm.read("store/redis-server/backupdump1").unwrap(),
        "backupcontent1\n"
    );
    assert!(!vm.exists("store/bbr-backup"), "remote directory cleaned");
}

#[test]
fn a_corrupted_artifact_runs_no_script_and_leaves_nothing_on_the_vm() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    redis_backup_and_restore_scripts(&h, d);
    dedicated.job("redis").script(Script::PreRestoreLock, "");
    let artifact = backed_up(&h, d);
    let tar = artifact.join("redis-dedicated-node-0-redis.tar");
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes
        .windows(b"backupcontent1".len())
        .position(|w| w == b"backupcontent1")
        .expect("file content inside the tar");
    bytes[at] = b'B';
    std::fs::write(&tar, bytes).unwrap();
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert_in_order(
        &run.stdout(),
        &[
            &format!("INFO - Starting restore of {d}"),
            &format!("INFO - Validating backup artifact for {d}"),
        ],
    );
    assert!(
        run.stderr().contains("Backup is corrupted"),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains("main.go"), "{}", run.show());
    assert_eq!(h.events(d), Vec::<String>::new(), "no script ran");
    assert!(!dedicated.vm().exists("store/redis-server"));
    assert_temp_users_removed(&h);
    // A deliberate difference (README, "Restore verifies while uploading"): Go bbr reads the
    // whole artifact once to check its checksums before looking at the deployment, then again
    // to upload it; we check the structure first and the content while it streams to the VM,
    // so the bytes are read once. What matters holds either way: no script ran (above), and
    // nothing of the upload is left on the VM.
    assert!(
        !dedicated.vm().exists("store/bbr-backup"),
        "the partial upload was removed\n{}",
        run.show()
    );
}

// ---------------------------------------------------------------------------------------
// restore (restore_test.go)
// ---------------------------------------------------------------------------------------

#[test]
fn a_job_named_mysql_restore_is_ignored_on_restore() {
    let d = "my-new-deployment";
    let h = Deployment::one(
        d,
        vec![group(
            "mysql",
            1,
            &[
                ("redis", "redis"),
                ("mysql-restore", "cf-backup-and-restore"),
            ],
        )],
    );
    let mysql = h.instance(d, "mysql", 0);
    mysql.job("redis").script(
        Script::Backup,
        "mkdir -p \"$BBR_ARTIFACT_DIRECTORY/redis\" && printf redis-data > \"$BBR_ARTIFACT_DIRECTORY/redis/redis-backup\"",
    );
    let artifact = backed_up(&h, d);
    mysql.job("redis").script(
        Script::Restore,
        "mkdir -p /var/vcap/store/redis-server && cp -r \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/redis-server/",
    );
    let vm = mysql.vm();
    mysql.job("mysql-restore").raw_script(
        Script::Metadata,
        "#!/bin/sh\necho \"---\nrestore_name: mysql-artifact\n\"\n",
    );
    mysql.job("mysql-restore").script(
        Script::Restore,
        "cp -r $BBR_ARTIFACT_DIRECTORY* /var/vcap/store/mysql-restore",
    );
    mysql
        .job("mysql-restore")
        .script(Script::PreRestoreLock, "");
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        !run.stdout()
            .contains("discontinued metadata keys backup_name/restore_name"),
        "{}",
        run.show()
    );
    assert_eq!(h.events(d), vec!["mysql/0 redis restore"]);
    assert_eq!(
        vm.read("store/redis-server/redis/redis-backup").unwrap(),
        "redis-data"
    );
    assert!(!vm.exists("store/mysql-restore"));
    assert!(!vm.exists("store/bbr-backup"), "remote directory cleaned");
    assert_temp_users_removed(&h);
}

/// Go's "backup with named artifacts on disk is corrupted". Go checks every checksum before
/// it contacts the deployment; we check the content while it streams to the VMs (README,
/// "Restore verifies while uploading"): asserted here is what must hold either way: the
/// error, no script of any kind ran, nothing is left on any VM, no temporary user remains.
#[test]
fn a_corrupted_backup_one_restore_all_artifact_is_refused_before_any_script_runs() {
    let d = "my-new-deployment";
    let spec = DeploymentSpec::new(d).group(
        bbr_director_sim::InstanceGroupSpec::new("redis-dedicated-node", 2).job(
            bbr_director_sim::JobSpec::new("redis-dedicated-node", "redis")
                .backup_one_restore_all(),
        ),
    );
    let h = Deployment::start(vec![spec], SimOptions::new());
    let job = "redis-dedicated-node";
    for i in 0..2 {
        h.instance(d, job, i).job(job).script(
            Script::Backup,
            "mkdir -p \"$BBR_ARTIFACT_DIRECTORY/redis\" && printf bootstrap-backupdump-contents > \"$BBR_ARTIFACT_DIRECTORY/redis/redis-backup\"",
        );
    }
    let artifact = backed_up(&h, d);
    let custom = "redis-dedicated-node-redis-backup-one-restore-all";
    assert!(
        tars(&artifact).contains(&format!("{custom}.tar")),
        "{:?}",
        tars(&artifact)
    );
    for i in 0..2 {
        for script in [
            Script::PreRestoreLock,
            Script::Restore,
            Script::PostRestoreUnlock,
        ] {
            h.instance(d, job, i).job(job).script(script, "");
        }
        h.instance(d, job, i).job(job).raw_script(
            Script::Metadata,
            "#!/bin/sh\nmkdir -p /var/vcap/sys && touch /var/vcap/sys/metadata-was-run\necho '---'\n",
        );
    }
    let tar = artifact.join(format!("{custom}.tar"));
    let original = std::fs::read(&tar).unwrap();
    let mut bytes = original.clone();
    let at = bytes
        .windows(b"bootstrap-backupdump-contents".len())
        .position(|w| w == b"bootstrap-backupdump-contents")
        .expect("file content inside the tar");
    bytes[at] = b'B';
    std::fs::write(&tar, bytes).unwrap();

    let assert_refused = |run: &Run| {
        assert_eq!(run.code(), 1, "{}", run.show());
        assert_in_order(
            &run.stdout(),
            &[
                &format!("INFO - Starting restore of {d}"),
                &format!("INFO - Validating backup artifact for {d}"),
            ],
        );
        assert!(
            run.stderr().contains("Backup is corrupted"),
            "{}",
            run.show()
        );
        assert!(!run.stderr().contains("main.go"), "{}", run.show());
        assert_eq!(h.events(d), Vec::<String>::new(), "no script ran");
        for i in 0..2 {
            let vm = h.instance(d, job, i).vm();
            assert!(
                !vm.exists("sys/metadata-was-run"),
                "not even a metadata script (README) on {job}/{i}"
            );
            assert!(
                !vm.exists("store/bbr-backup"),
                "nothing left on {job}/{i}\n{}",
                run.show()
            );
        }
        assert_temp_users_removed(&h);
    };
    // The custom artifact's content differs from its checksum.
    let run = restore(&h, d, &artifact);
    assert_refused(&run);
    assert_eq!(err_logs(h.work.path()).len(), 1);

    // As in Go's test: the content is intact but the recorded checksum is wrong.
    std::fs::write(&tar, &original).unwrap();
    let meta_path = artifact.join("metadata");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    let sum = support::sha256_hex(b"bootstrap-backupdump-contents");
    assert!(meta.contains(&sum), "{meta}");
    std::fs::write(&meta_path, meta.replace(&sum, &"0".repeat(64))).unwrap();
    let run = restore(&h, d, &artifact);
    assert_refused(&run);
}

#[test]
fn restore_of_a_missing_deployment_fails_with_the_directors_error() {
    let h = redis_node("redis");
    let d = "my-new-deployment";
    let artifact = h.work.path().join(d);
    std::fs::create_dir(&artifact).unwrap();
    std::fs::write(artifact.join("metadata"), "---\ninstances: []").unwrap();
    let run = h.bbr(d, &["restore", "--artifact-path", d]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("Director responded with non-successful status code"),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains("main.go"), "{}", run.show());
    assert!(
        !run.stderr().contains("It is recommended that you run"),
        "{}",
        run.show()
    );
    let logs = err_logs(h.work.path());
    assert_eq!(logs.len(), 1, "{:?}", files_in(h.work.path()));
    let log = std::fs::read_to_string(h.work.path().join(&logs[0])).unwrap();
    assert!(
        log.contains("Director responded with non-successful status code"),
        "{log}"
    );
    assert!(
        !h.sim.requests().iter().any(|r| r.contains("/ssh")),
        "{:?}",
        h.sim.requests()
    );
    assert_eq!(h.events("redis"), Vec::<String>::new());
}

#[test]
fn restore_from_an_artifact_path_that_does_not_exist_fails_before_contacting_any_vm() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    h.instance(d, "redis-dedicated-node", 0)
        .job("redis")
        .script(Script::Restore, "");
    let run = h.bbr(d, &["restore", "--artifact-path", "i-am-not-here"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("i-am-not-here: no such file or directory"),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains("main.go"), "{}", run.show());
    let logs = err_logs(h.work.path());
    assert_eq!(logs.len(), 1, "{:?}", files_in(h.work.path()));
    assert!(
        std::fs::read_to_string(h.work.path().join(&logs[0]))
            .unwrap()
            .contains("i-am-not-here: no such file or directory")
    );
    // Go's mock director expects `GET /info` and nothing else.
    let requests = h.sim.requests();
    assert!(requests.iter().all(|r| r == "GET /info"), "{requests:?}");
    assert_eq!(h.events(d), Vec::<String>::new());
    assert!(!h.work.path().join("i-am-not-here").exists());
}
