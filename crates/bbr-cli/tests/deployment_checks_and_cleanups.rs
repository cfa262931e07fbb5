//! `bbr deployment pre-backup-check`, `backup-cleanup` and `restore-cleanup` scenarios of Go
//! bbr's `integration/deployment/{pre_backup_check,backup_cleanup,restore_cleanup}_test.go`,
//! for one deployment, run against the BOSH director simulator and real sshd VMs.
//!
//! Scripts record their runs (`support::record`), so `Deployment::events` tells which scripts
//! ran, in which order, and what `BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL` they saw. Metadata
//! scripts are installed without recording so that the events are lifecycle scripts only.
//! Helpers shared with the other `deployment_*` scenario binaries are in
//! `support::scenarios`.

mod support;

use support::deployment::{Deployment, FOOTER, group};
use support::scenarios::{
    FAILING, assert_temp_users_removed, dirs_in, err_logs, files_in, has_clock_prefix,
    locked_before, redis_node,
};
use support::{Script, assert_in_order};

// ---------------------------------------------------------------------------------------
// pre-backup-check (pre_backup_check_test.go)
// ---------------------------------------------------------------------------------------

#[test]
fn pre_backup_check_when_the_director_fails_the_vms_request() {
    let d = "my-director-is-broken";
    let h = redis_node(d);
    h.instance(d, "redis-dedicated-node", 0)
        .job("redis")
        .script(Script::Backup, "");
    h.sim.fail_next(&format!("/deployments/{d}/vms"), 500);
    let run = h.bbr(d, &["pre-backup-check"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stdout()
            .contains(&format!("Deployment '{d}' cannot be backed up.")),
        "{}",
        run.show()
    );
    assert!(
        run.stderr()
            .contains("Director responded with non-successful status code"),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains(FOOTER), "{}", run.show());
    assert!(
        !h.sim.requests().iter().any(|r| r.contains("/ssh")),
        "{:?}",
        h.sim.requests()
    );
    assert_temp_users_removed(&h);
}

#[test]
fn pre_backup_check_with_cyclic_lock_order() {
    let d = "my-little-deployment";
    let h = Deployment::one(
        d,
        vec![group(
            "redis-dedicated-node",
            1,
            &[("redis", "redis"), ("redis-writer", "redis")],
        )],
    );
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    for job in ["redis", "redis-writer"] {
        dedicated.job(job).backup_scripts();
    }
    dedicated
        .job("redis-writer")
        .metadata(&locked_before("backup", "redis", "redis"));
    dedicated
        .job("redis")
        .metadata(&locked_before("backup", "redis-writer", "redis"));
    let run = h.bbr(d, &["pre-backup-check"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stdout()
            .contains(&format!("Deployment '{d}' cannot be backed up.")),
        "{}",
        run.show()
    );
    assert!(
        run.stderr()
            .contains("job locking dependency graph is cyclic"),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains(FOOTER), "{}", run.show());
    assert_eq!(h.events(d), Vec::<String>::new());
    assert!(dirs_in(h.work.path()).is_empty());
    assert_temp_users_removed(&h);
}

// ---------------------------------------------------------------------------------------
// backup-cleanup and restore-cleanup (backup_cleanup_test.go, restore_cleanup_test.go)
// ---------------------------------------------------------------------------------------

#[test]
fn backup_cleanup_unlocks_and_removes_the_remote_artifact_directory() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").backup_scripts();
    let vm = dedicated.vm();
    vm.install_file("store/bbr-backup/redis/backupdump1", "half done", 0o644)
        .unwrap();
    let run = h.bbr(d, &["backup-cleanup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(!vm.exists("store/bbr-backup"));
    assert_eq!(
        h.events(d),
        vec!["redis-dedicated-node/0 redis post-backup-unlock false"]
    );
    assert!(
        run.stdout().contains(&format!("INFO - '{d}' cleaned up")),
        "{}",
        run.show()
    );
    assert_temp_users_removed(&h);
}

/// An instance with only lock scripts is neither backupable nor restorable; Go bbr's cleanup
/// skips it and leaks its temporary SSH user (docs/differences-from-go-bbr.md#workflow). Ours releases it.
#[test]
fn backup_cleanup_releases_the_ssh_user_of_an_instance_with_only_lock_scripts() {
    let d = "cf";
    let h = Deployment::one(
        d,
        vec![
            group("api", 1, &[("capi", "capi-release")]),
            group("db", 1, &[("redis", "redis-release")]),
        ],
    );
    let api = h.instance(d, "api", 0);
    api.job("capi").script(Script::PreBackupLock, "");
    api.job("capi").script(Script::PostBackupUnlock, "");
    h.instance(d, "db", 0).job("redis").backup_scripts();
    let run = h.bbr(d, &["backup-cleanup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let mut unlocked = h.events(d);
    unlocked.sort();
    assert_eq!(
        unlocked,
        vec![
            "api/0 capi post-backup-unlock false",
            "db/0 redis post-backup-unlock false"
        ]
    );
    assert_temp_users_removed(&h);
}

#[test]
fn restore_cleanup_unlocks_and_removes_the_remote_artifact_directory() {
    let d = "my-new-deployment";
    let h = Deployment::one(
        d,
        vec![
            group("redis-dedicated-node", 1, &[("redis", "redis")]),
            group("redis-server", 1, &[("redis", "redis")]),
        ],
    );
    let server = h.instance(d, "redis-server", 0);
    // As in Go's test, an instance with only a backup script is cleaned too ...
    h.instance(d, "redis-dedicated-node", 0)
        .job("redis")
        .script(Script::Backup, "");
    // ... and an instance with restore scripts is unlocked.
    server.job("redis").script(Script::Restore, "");
    server.job("redis").script(Script::PostRestoreUnlock, "");
    for g in ["redis-dedicated-node", "redis-server"] {
        h.instance(d, g, 0)
            .vm()
            .install_file("store/bbr-backup/redis/data", "half done", 0o644)
            .unwrap();
    }
    let run = h.bbr(d, &["restore-cleanup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    for g in ["redis-dedicated-node", "redis-server"] {
        assert!(!h.instance(d, g, 0).vm().exists("store/bbr-backup"), "{g}");
    }
    assert_eq!(
        h.events(d),
        vec!["redis-server/0 redis post-restore-unlock"]
    );
    assert_temp_users_removed(&h);
}

#[test]
fn backup_cleanup_with_a_failing_unlock_exits_8_and_still_removes_the_directory() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, "");
    dedicated
        .job("redis")
        .script(Script::PostBackupUnlock, FAILING);
    let vm = dedicated.vm();
    vm.install_file("store/bbr-backup/redis/data", "half done", 0o644)
        .unwrap();
    let run = h.bbr(d, &["backup-cleanup"]);
    assert_eq!(run.code(), 8, "{}", run.show());
    let node = dedicated.slug();
    assert_in_order(
        &run.stderr(),
        &[
            &format!("Error attempting to run post-backup-unlock for job redis on {node}"),
            "ultra-baz",
        ],
    );
    assert!(!run.stderr().contains(FOOTER), "{}", run.show());
    assert!(
        !vm.exists("store/bbr-backup"),
        "cleanup ran after the unlock"
    );
    assert_eq!(
        h.events(d),
        vec!["redis-dedicated-node/0 redis post-backup-unlock false"]
    );
    assert_temp_users_removed(&h);
    // Go logs `'<name>' cleaned up` only when the cleanup had no error at all
    // (docs/log-lines.md#pre-backup-check-backup-cleanup-restore-cleanup).
    assert!(
        !run.stdout().contains(&format!("INFO - '{d}' cleaned up")),
        "{}",
        run.show()
    );
}

// ---------------------------------------------------------------------------------------
// pre-backup-check (pre_backup_check_test.go "if there are no backup scripts")
// ---------------------------------------------------------------------------------------

#[test]
fn pre_backup_check_without_backup_scripts_cannot_be_backed_up() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    // An executable outside bin/bbr/ is not a bbr script.
    h.instance(d, "redis-dedicated-node", 0)
        .vm()
        .install_file("jobs/redis/bin/not-a-backup-script", "#!/bin/sh\n", 0o755)
        .unwrap();
    let run = h.bbr(d, &["pre-backup-check"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let out = run.stdout();
    let line = out
        .lines()
        .find(|l| l.ends_with(&format!("Deployment '{d}' cannot be backed up.")))
        .unwrap_or_else(|| panic!("{}", run.show()));
    assert!(has_clock_prefix(line), "[HH:MM:SS] prefix: {line:?}");
    assert!(
        run.stderr()
            .contains(&format!("Deployment '{d}' has no backup scripts")),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains("main.go"), "{}", run.show());
    assert!(!run.stderr().contains(FOOTER), "{}", run.show());
    assert_eq!(
        err_logs(h.work.path()).len(),
        1,
        "{:?}",
        files_in(h.work.path())
    );
    assert!(dirs_in(h.work.path()).is_empty());
    assert_temp_users_removed(&h);
}
