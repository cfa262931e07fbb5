//! The `bbr deployment` scenarios of Go bbr's deployment integration tests
//! (shared/reference/bbr.md §8.3-8.5: `integration/deployment/{backup,restore,pre_backup_check,
//! backup_cleanup,restore_cleanup}_test.go`) that `deployment.rs` does not cover, run against
//! the BOSH director simulator and real sshd VMs.
//!
//! Scripts record their runs (`support::record`), so `Deployment::events` tells which scripts
//! ran, in which order, and what `BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL` they saw. Metadata
//! scripts are installed without recording so that the events are lifecycle scripts only.

mod support;

use bbr_director_sim::{DeploymentSpec, SimOptions, TaskKind};
use std::path::{Path, PathBuf};
use support::deployment::{Deployment, FOOTER, backup_scripts, group};
use support::{Run, assert_in_order};

/// The footer of `--all-deployments` runs (bbr.md §1.4).
const ALL_FOOTER: &str = "It is recommended that you run `bbr deployment --all-deployments backup-cleanup` to ensure that any temp files are cleaned up and all jobs are unlocked.";

/// Go bbr's failing script body in the integration tests.
const FAILING: &str = "echo 'ultra-bar'; (>&2 echo 'ultra-baz'); exit 1";

/// `<group>/<id>`, how Go bbr names an instance in messages.
fn slug(h: &Deployment, d: &str, g: &str, i: usize) -> String {
    h.sim.instance(d, g, i).slug()
}

/// Installs a `metadata` script printing `yaml` (not recorded in the events).
fn metadata(h: &Deployment, d: &str, g: &str, i: usize, job: &str, yaml: &str) {
    let text = format!("#!/bin/sh\ncat <<'EOF'\n---\n{yaml}EOF\n");
    h.vm(d, g, i)
        .install_script(job, "metadata", &text)
        .unwrap();
}

/// `<kind>_should_be_locked_before: [{job_name, release}]`.
fn locked_before(kind: &str, job: &str, release: &str) -> String {
    format!("{kind}_should_be_locked_before:\n- job_name: {job}\n  release: {release}\n")
}

/// Forgets the recorded script runs of every VM of `d`.
fn clear_events(h: &Deployment, d: &str) {
    for vm in h.sim.vms(d) {
        let log = vm.vcap_path("sys/events/log");
        if log.exists() {
            std::fs::remove_file(log).unwrap();
        }
    }
}

/// Directories directly under `dir` (artifact directories).
fn dirs_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Names of the regular files directly under `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The `.tar` files of an artifact directory, sorted.
fn tars(artifact: &Path) -> Vec<String> {
    files_in(artifact)
        .into_iter()
        .filter(|n| n.ends_with(".tar"))
        .collect()
}

fn all(h: &Deployment, args: &[&str]) -> Run {
    Run(h.command(None, args).output().unwrap())
}

/// One instance group `redis-dedicated-node` with job `redis` of release `redis`.
fn redis_node(d: &str) -> Deployment {
    Deployment::one(
        d,
        vec![group("redis-dedicated-node", 1, &[("redis", "redis")])],
    )
}

fn assert_temp_users_removed(h: &Deployment) {
    assert!(
        h.sim.temp_users().is_empty(),
        "temporary users removed: {:?}",
        h.sim.temp_users()
    );
}

// ---------------------------------------------------------------------------------------
// backup (integration/deployment/backup_test.go)
// ---------------------------------------------------------------------------------------

#[test]
fn backup_with_cyclic_lock_order_across_instance_groups_fails_before_locking() {
    let h = Deployment::one(
        "cf",
        vec![
            group("api", 1, &[("capi", "capi-release")]),
            group("db", 1, &[("redis-server", "redis-release")]),
        ],
    );
    backup_scripts(&h, "cf", "api", 0, "capi");
    backup_scripts(&h, "cf", "db", 0, "redis-server");
    metadata(
        &h,
        "cf",
        "api",
        0,
        "capi",
        &locked_before("backup", "redis-server", "redis-release"),
    );
    metadata(
        &h,
        "cf",
        "db",
        0,
        "redis-server",
        &locked_before("backup", "capi", "capi-release"),
    );
    let run = h.bbr("cf", &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("job locking dependency graph is cyclic"),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains(FOOTER), "{}", run.show());
    assert!(
        dirs_in(h.work.path()).is_empty(),
        "no local artifact directory: {:?}",
        dirs_in(h.work.path())
    );
    assert_eq!(h.events("cf"), Vec::<String>::new(), "nothing was locked");
    for (g, i) in [("api", 0), ("db", 0)] {
        assert!(!h.vm("cf", g, i).exists("store/bbr-backup"), "{g}/{i}");
    }
    assert_temp_users_removed(&h);
}

#[test]
fn backup_of_two_instances_where_only_one_has_backup_scripts() {
    let d = "my-bigger-deployment";
    let h = Deployment::one(
        d,
        vec![
            group("redis-dedicated-node", 1, &[("redis", "redis")]),
            group("redis-broker", 1, &[("redis", "redis")]),
        ],
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "backup",
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let artifact = h.artifact();
    assert_eq!(tars(&artifact), vec!["redis-dedicated-node-0-redis.tar"]);
    let meta = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    assert!(meta.contains("- name: redis-dedicated-node\n"), "{meta}");
    assert!(!meta.contains("redis-broker"), "{meta}");
    let out = run.stdout();
    let node = slug(&h, d, "redis-dedicated-node", 0);
    let broker = slug(&h, d, "redis-broker", 0);
    assert!(
        out.contains(&format!("Backing up redis on {node}...")),
        "{out}"
    );
    assert!(
        !out.contains(&format!("Backing up redis on {broker}")),
        "{out}"
    );
    assert!(out.contains(&format!("Backup created of {d} on")), "{out}");
    assert_eq!(h.events(d), vec!["redis-dedicated-node/0 redis backup"]);
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup")
    );
    assert_temp_users_removed(&h);
}

#[test]
fn backup_refuses_when_the_remote_artifact_directory_exists_on_one_instance() {
    let d = "my-two-instance-deployment";
    let h = Deployment::one(
        d,
        vec![
            group("redis-dedicated-node", 1, &[("redis", "redis")]),
            group("redis-broker", 1, &[("redis", "redis")]),
        ],
    );
    backup_scripts(&h, d, "redis-dedicated-node", 0, "redis");
    backup_scripts(&h, d, "redis-broker", 0, "redis");
    h.vm(d, "redis-broker", 0)
        .install_file("store/bbr-backup/redis/leftover", "previous run", 0o644)
        .unwrap();
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let err = run.stderr();
    let broker = slug(&h, d, "redis-broker", 0);
    let node = slug(&h, d, "redis-dedicated-node", 0);
    assert!(
        err.contains(&format!(
            "Directory /var/vcap/store/bbr-backup already exists on instance {broker}"
        )),
        "{}",
        run.show()
    );
    assert!(
        !err.contains(&format!("already exists on instance {node}")),
        "{}",
        run.show()
    );
    assert!(err.contains(FOOTER), "{}", run.show());
    assert_eq!(
        h.vm(d, "redis-broker", 0)
            .read("store/bbr-backup/redis/leftover")
            .unwrap(),
        "previous run",
        "the existing directory is preserved"
    );
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup")
    );
    assert_eq!(h.events(d), Vec::<String>::new(), "nothing was locked");
    assert!(
        dirs_in(h.work.path()).is_empty(),
        "no local artifact directory: {:?}",
        dirs_in(h.work.path())
    );
    assert_temp_users_removed(&h);
}

#[test]
fn a_drain_failure_reports_failed_to_create_backup_with_the_footer() {
    let d = "my-bigger-deployment";
    let h = redis_node(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "pre-backup-lock", "");
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-backup-unlock",
        "",
    );
    // Like Go's test (which removes `shasum`), the backup script breaks a tool the drain
    // needs: `tar` becomes unusable inside this VM's private mount namespace only.
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "backup",
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"\nmount --bind /dev/null \"$(command -v tar)\"",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let out = run.stdout();
    assert!(!out.contains("Backup created of"), "{}", run.show());
    assert!(
        out.contains(&format!("Failed to create backup of {d} on")),
        "{}",
        run.show()
    );
    assert!(run.stderr().contains(FOOTER), "{}", run.show());
    assert_eq!(
        h.events(d),
        vec![
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis backup",
            "redis-dedicated-node/0 redis post-backup-unlock true",
        ],
        "unlock ran (after a successful backup step)"
    );
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup"),
        "the cleanup step removed the remote directory"
    );
    let meta = std::fs::read_to_string(h.artifact().join("metadata")).unwrap();
    assert!(
        meta.contains("backup_activity:\n  start_time: ") && meta.contains("\n  finish_time: "),
        "the local artifact is kept and its finish time recorded: {meta}"
    );
    assert_temp_users_removed(&h);
}

#[test]
fn post_backup_unlock_failure_exits_8_with_the_footer_after_draining() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "pre-backup-lock", "");
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "backup",
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-backup-unlock",
        FAILING,
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 8, "{}", run.show());
    let node = slug(&h, d, "redis-dedicated-node", 0);
    assert_in_order(
        &run.stderr(),
        &[
            &format!("Error attempting to run post-backup-unlock for job redis on {node}"),
            "ultra-baz",
            FOOTER,
        ],
    );
    let artifact = h.artifact();
    assert_eq!(tars(&artifact), vec!["redis-dedicated-node-0-redis.tar"]);
    assert!(
        run.stdout().contains(&format!("Backup created of {d} on")),
        "drain ran although the unlock failed: {}",
        run.show()
    );
    assert_eq!(
        h.events(d),
        vec![
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis backup",
            "redis-dedicated-node/0 redis post-backup-unlock true",
        ]
    );
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup")
    );
    assert_temp_users_removed(&h);
}

#[test]
fn backup_script_failure_exits_1_unlocks_with_false_and_prints_no_footer() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "pre-backup-lock", "");
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", FAILING);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-backup-unlock",
        "",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let node = slug(&h, d, "redis-dedicated-node", 0);
    assert!(
        run.stderr().contains(&format!(
            "Error attempting to run backup for job redis on {node}: ultra-baz - exit code 1"
        )),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains(FOOTER), "{}", run.show());
    assert_eq!(
        h.events(d),
        vec![
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis backup",
            "redis-dedicated-node/0 redis post-backup-unlock false",
        ]
    );
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup"),
        "the cleanup step removed the remote directory"
    );
    let artifact = h.artifact();
    assert_eq!(tars(&artifact), Vec::<String>::new(), "nothing was drained");
    let meta = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    assert!(
        !meta.contains("instances:") && meta.contains("\n  finish_time: "),
        "{meta}"
    );
    assert_temp_users_removed(&h);
}

#[test]
fn pre_backup_lock_failure_exits_4_skips_the_backup_and_still_unlocks() {
    let d = "my-little-deployment";
    let h = Deployment::one(
        d,
        vec![group(
            "redis-dedicated-node",
            1,
            &[("redis", "redis"), ("redis-broker", "redis")],
        )],
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "pre-backup-lock",
        FAILING,
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis-broker",
        "pre-backup-lock",
        "",
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "backup",
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-backup-unlock",
        "",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 4, "{}", run.show());
    let node = slug(&h, d, "redis-dedicated-node", 0);
    assert_in_order(
        &run.stderr(),
        &[
            &format!("Error attempting to run pre-backup-lock for job redis on {node}"),
            "ultra-baz",
        ],
    );
    assert!(!run.stderr().contains(FOOTER), "{}", run.show());
    let mut events = h.events(d);
    let unlock = events.pop();
    events.sort();
    assert_eq!(
        events,
        vec![
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis-broker pre-backup-lock",
        ],
        "both jobs were locked, the backup script did not run"
    );
    assert_eq!(
        unlock.as_deref(),
        Some("redis-dedicated-node/0 redis post-backup-unlock false")
    );
    assert_eq!(tars(&h.artifact()), Vec::<String>::new());
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup")
    );
    assert_temp_users_removed(&h);
}

#[test]
fn backup_script_and_ssh_cleanup_failures_exit_17_with_the_footer() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "backup",
        "(>&2 echo 'ultra-baz'); exit 1",
    );
    h.sim.fail_task(TaskKind::SshCleanup);
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 17, "{}", run.show());
    let node = slug(&h, d, "redis-dedicated-node", 0);
    assert_in_order(
        &run.stderr(),
        &[
            &format!("Error attempting to run backup for job redis on {node}"),
            "ultra-baz",
            &format!("Deployment '{d}' failed while cleaning up with error: "),
            FOOTER,
        ],
    );
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup"),
        "the remote directory is removed although the SSH user cleanup failed"
    );
}

#[test]
fn invalid_metadata_yaml_fails_the_backup_without_a_footer() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    backup_scripts(&h, d, "redis-dedicated-node", 0, "redis");
    h.vm(d, "redis-dedicated-node", 0)
        .install_script(
            "redis",
            "metadata",
            "#!/bin/sh\nmkdir -p /var/vcap/sys && touch /var/vcap/sys/metadata-was-run\necho \"not valid yaml\n\"\n",
        )
        .unwrap();
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        h.vm(d, "redis-dedicated-node", 0)
            .exists("sys/metadata-was-run")
    );
    let node = slug(&h, d, "redis-dedicated-node", 0);
    assert!(
        run.stderr()
            .contains(&format!("Parsing metadata from job redis on {node} failed")),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains(FOOTER), "{}", run.show());
    assert_eq!(h.events(d), Vec::<String>::new(), "nothing was locked");
    assert!(dirs_in(h.work.path()).is_empty());
    assert_temp_users_removed(&h);
}

#[test]
fn two_jobs_with_backup_scripts_on_one_instance_give_two_tars() {
    let d = "my-little-deployment";
    let h = Deployment::one(
        d,
        vec![group(
            "redis-dedicated-node",
            1,
            &[("redis", "redis"), ("redis-broker", "redis")],
        )],
    );
    for job in ["redis", "redis-broker"] {
        h.script(
            d,
            "redis-dedicated-node",
            0,
            job,
            "backup",
            "printf backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"\nprintf backupcontent2 > \"$BBR_ARTIFACT_DIRECTORY/backupdump2\"",
        );
    }
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let artifact = h.artifact();
    assert_eq!(
        tars(&artifact),
        vec![
            "redis-dedicated-node-0-redis-broker.tar",
            "redis-dedicated-node-0-redis.tar"
        ]
    );
    let meta = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    let sha1 = support::sha256_hex(b"backupcontent1");
    let sha2 = support::sha256_hex(b"backupcontent2");
    for job in ["redis", "redis-broker"] {
        assert!(
            meta.contains(&format!(
                "  - name: {job}\n    checksums:\n      ./backupdump1: {sha1}\n      ./backupdump2: {sha2}\n"
            )),
            "{meta}"
        );
    }
}

#[test]
fn backup_to_a_missing_artifact_path_fails_before_locking() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    backup_scripts(&h, d, "redis-dedicated-node", 0, "redis");
    let missing = h.work.path().join("not/a/valid/path");
    let run = h.bbr(
        d,
        &["backup", "--artifact-path", &missing.to_string_lossy()],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains(&format!("{}: no such file or directory", missing.display())),
        "{}",
        run.show()
    );
    assert_eq!(h.events(d), Vec::<String>::new(), "nothing was locked");
    assert!(!missing.exists());
    assert_temp_users_removed(&h);
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
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "backup",
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "restore",
        "mkdir -p /var/vcap/store/redis-server && cp -r \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/redis-server/",
    );
}

fn err_logs(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|n| n.starts_with("bbr-") && n.ends_with(".err.log"))
        .collect()
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
        h.script(d, g, 0, job, "pre-restore-lock", "");
        h.script(d, g, 0, job, "post-restore-unlock", "");
    }
    // The VM list has redis-dedicated-node first: only the ordering puts the writer first.
    metadata(
        &h,
        d,
        "redis-server",
        0,
        "redis-writer",
        &locked_before("restore", "redis", "redis"),
    );
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
        h.vm(d, "redis-dedicated-node", 0)
            .read("store/redis-server/backupdump1")
            .unwrap(),
        "backupcontent1\n"
    );
    for g in ["redis-dedicated-node", "redis-server"] {
        assert!(!h.vm(d, g, 0).exists("store/bbr-backup"), "{g}");
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
    redis_backup_and_restore_scripts(&h, d);
    for job in ["redis", "redis-writer"] {
        h.script(d, "redis-dedicated-node", 0, job, "pre-restore-lock", "");
        h.script(d, "redis-dedicated-node", 0, job, "post-restore-unlock", "");
    }
    metadata(
        &h,
        d,
        "redis-dedicated-node",
        0,
        "redis-writer",
        &locked_before("restore", "redis", "redis"),
    );
    metadata(
        &h,
        d,
        "redis-dedicated-node",
        0,
        "redis",
        &locked_before("restore", "redis-writer", "redis"),
    );
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
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup")
    );
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/redis-server")
    );
    assert_temp_users_removed(&h);
}

#[test]
fn restore_refuses_when_the_remote_artifact_directory_exists() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    redis_backup_and_restore_scripts(&h, d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "pre-restore-lock",
        "",
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-restore-unlock",
        "",
    );
    let artifact = backed_up(&h, d);
    let vm = h.vm(d, "redis-dedicated-node", 0);
    vm.install_file("store/bbr-backup/redis/leftover", "previous run", 0o644)
        .unwrap();
    let run = restore(&h, d, &artifact);
    assert_eq!(run.code(), 1, "{}", run.show());
    let node = slug(&h, d, "redis-dedicated-node", 0);
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
    redis_backup_and_restore_scripts(&h, d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "pre-restore-lock",
        "",
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-restore-unlock",
        "",
    );
    let artifact = backed_up(&h, d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "restore",
        ">&2 echo \"dear lord\"; exit 1",
    );
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
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup")
    );
    assert_temp_users_removed(&h);
}

#[test]
fn pre_restore_lock_failure_skips_the_restore_and_still_unlocks() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    redis_backup_and_restore_scripts(&h, d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-restore-unlock",
        "",
    );
    let artifact = backed_up(&h, d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "pre-restore-lock",
        ">&2 echo \"dear lord\"; exit 1",
    );
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
    let vm = h.vm(d, "redis-dedicated-node", 0);
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
    for g in ["redis-dedicated-node", "redis-server"] {
        h.script(
            d,
            g,
            0,
            "redis",
            "backup",
            "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
        );
        h.script(
            d,
            g,
            0,
            "redis",
            "restore",
            "mkdir -p /var/vcap/store/redis-server && cp -r \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/redis-server/",
        );
    }
    let artifact = backed_up(&h, d);
    assert_eq!(tars(&artifact).len(), 2, "{:?}", tars(&artifact));
    metadata(
        &h,
        d,
        "redis-server",
        0,
        "redis",
        "skip_bbr_scripts: true\n",
    );
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
            slug(&h, d, "redis-server", 0)
        )),
        "{}",
        run.show()
    );
    assert_eq!(h.events(d), vec!["redis-dedicated-node/0 redis restore"]);
    assert!(
        h.vm(d, "redis-dedicated-node", 0)
            .exists("store/redis-server/backupdump1")
    );
    assert!(!h.vm(d, "redis-server", 0).exists("store/redis-server"));
    assert_temp_users_removed(&h);
}

#[test]
fn restore_refuses_jobs_with_the_discontinued_restore_name() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    redis_backup_and_restore_scripts(&h, d);
    let artifact = backed_up(&h, d);
    metadata(
        &h,
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "restore_name: foo\n",
    );
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
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/redis-server")
    );
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup")
    );
    assert_temp_users_removed(&h);
}

#[test]
fn restore_then_ssh_cleanup_failure_exits_16() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    redis_backup_and_restore_scripts(&h, d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-restore-unlock",
        "",
    );
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
    let vm = h.vm(d, "redis-dedicated-node", 0);
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
    redis_backup_and_restore_scripts(&h, d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "pre-restore-lock",
        "",
    );
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
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/redis-server")
    );
    assert_temp_users_removed(&h);
    // A deliberate difference (README, "Restore verifies while uploading"): Go bbr reads the
    // whole artifact once to check its checksums before looking at the deployment, then again
    // to upload it; we check the structure first and the content while it streams to the VM,
    // so the bytes are read once. What matters holds either way: no script ran (above), and
    // nothing of the upload is left on the VM.
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup"),
        "the partial upload was removed\n{}",
        run.show()
    );
}

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
    h.script(
        d,
        "redis",
        0,
        "redis",
        "backup",
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    h.script(
        d,
        "redis",
        0,
        "redis",
        "post-backup-unlock",
        ">&2 echo 'I failed'; exit 1",
    );
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
    // bbr.md §3.12/§5.2: one client lists the deployments, then each deployment builds its
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
    h.script(d, "redis", 0, "redis", "pre-backup-lock", "");
    // Blocks until the test releases it (bounded, so that nothing outlives the test).
    h.script(
        d,
        "redis",
        0,
        "redis",
        "backup",
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
    let vm = h.vm(d, "redis", 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !vm.exists("sys/backing-up") {
        assert!(child.try_wait().unwrap().is_none(), "bbr exited early");
        assert!(
            std::time::Instant::now() < deadline,
            "the backup script never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The script outlived bbr: release it and let it end before the VM goes away.
    vm.install_file("sys/release", "", 0o644).unwrap();
    while !vm.exists("sys/backup-ended") {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup script never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let logs: Vec<String> = files_in(&artifacts)
        .into_iter()
        .filter(|n| n.starts_with(&format!("{d}_")) && n.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 1, "{:?}", files_in(&artifacts));
    let log = std::fs::read_to_string(artifacts.join(&logs[0])).unwrap();
    let node = slug(&h, d, "redis", 0);
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
    h.script(d, "redis", 0, "redis", "backup", FAILING);
    h.vm(d, "redis", 0)
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
            slug(&h, d, "redis", 0)
        )),
        "{err}"
    );
    assert!(err.contains(ALL_FOOTER), "{err}");
    assert!(
        h.vm(d, "redis", 0).exists("store/bbr-backup/x"),
        "preserved"
    );
    assert_eq!(h.events(d), Vec::<String>::new());
    assert!(dirs_in(&artifacts).is_empty(), "{:?}", dirs_in(&artifacts));
}

#[test]
fn all_deployments_backup_refuses_unsafe_lock_free_without_contacting_the_director() {
    let h = Deployment::start(vec![one_redis_deployment("d")], SimOptions::new());
    backup_scripts(&h, "d", "redis", 0, "redis");
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
    backup_scripts(&h, "d", "redis", 0, "redis");
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
// pre-backup-check (pre_backup_check_test.go)
// ---------------------------------------------------------------------------------------

#[test]
fn pre_backup_check_when_the_director_fails_the_vms_request() {
    let d = "my-director-is-broken";
    let h = redis_node(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", "");
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
    for job in ["redis", "redis-writer"] {
        backup_scripts(&h, d, "redis-dedicated-node", 0, job);
    }
    metadata(
        &h,
        d,
        "redis-dedicated-node",
        0,
        "redis-writer",
        &locked_before("backup", "redis", "redis"),
    );
    metadata(
        &h,
        d,
        "redis-dedicated-node",
        0,
        "redis",
        &locked_before("backup", "redis-writer", "redis"),
    );
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

#[test]
fn pre_backup_check_all_deployments_with_an_artifact_directory_on_one_deployment() {
    let h = Deployment::start(
        vec![
            one_redis_deployment("deployment1"),
            one_redis_deployment("deployment2"),
        ],
        SimOptions::new(),
    );
    for d in ["deployment1", "deployment2"] {
        h.script(d, "redis", 0, "redis", "backup", "");
    }
    h.vm("deployment2", "redis", 0)
        .install_file("store/bbr-backup/x", "x", 0o644)
        .unwrap();
    let run = all(&h, &["pre-backup-check"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let dir_error = format!(
        "Directory /var/vcap/store/bbr-backup already exists on instance {}",
        slug(&h, "deployment2", "redis", 0)
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
    assert!(h.vm("deployment2", "redis", 0).exists("store/bbr-backup/x"));
    assert!(
        files_in(h.work.path())
            .iter()
            .all(|n| !n.ends_with(".log") || n.ends_with(".err.log")),
        "pre-backup-check writes no per-deployment log files: {:?}",
        files_in(h.work.path())
    );
    assert_temp_users_removed(&h);
}

// ---------------------------------------------------------------------------------------
// backup-cleanup and restore-cleanup (backup_cleanup_test.go, restore_cleanup_test.go)
// ---------------------------------------------------------------------------------------

#[test]
fn backup_cleanup_unlocks_and_removes_the_remote_artifact_directory() {
    let d = "my-new-deployment";
    let h = redis_node(d);
    backup_scripts(&h, d, "redis-dedicated-node", 0, "redis");
    let vm = h.vm(d, "redis-dedicated-node", 0);
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
/// skips it and leaks its temporary SSH user (bbr.md §3.9 [quirk]). Ours releases it.
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
    h.script(d, "api", 0, "capi", "pre-backup-lock", "");
    h.script(d, "api", 0, "capi", "post-backup-unlock", "");
    backup_scripts(&h, d, "db", 0, "redis");
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
    // As in Go's test, an instance with only a backup script is cleaned too ...
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", "");
    // ... and an instance with restore scripts is unlocked.
    h.script(d, "redis-server", 0, "redis", "restore", "");
    h.script(d, "redis-server", 0, "redis", "post-restore-unlock", "");
    for g in ["redis-dedicated-node", "redis-server"] {
        h.vm(d, g, 0)
            .install_file("store/bbr-backup/redis/data", "half done", 0o644)
            .unwrap();
    }
    let run = h.bbr(d, &["restore-cleanup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    for g in ["redis-dedicated-node", "redis-server"] {
        assert!(!h.vm(d, g, 0).exists("store/bbr-backup"), "{g}");
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
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", "");
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-backup-unlock",
        FAILING,
    );
    let vm = h.vm(d, "redis-dedicated-node", 0);
    vm.install_file("store/bbr-backup/redis/data", "half done", 0o644)
        .unwrap();
    let run = h.bbr(d, &["backup-cleanup"]);
    assert_eq!(run.code(), 8, "{}", run.show());
    let node = slug(&h, d, "redis-dedicated-node", 0);
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
    // Go logs `'<name>' cleaned up` only when the cleanup had no error at all (bbr.md §3.9).
    assert!(
        !run.stdout().contains(&format!("INFO - '{d}' cleaned up")),
        "{}",
        run.show()
    );
}

#[test]
fn all_deployments_backup_cleanup_with_a_failing_unlock() {
    let d = "dep1";
    let h = redis_node(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", "");
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-backup-unlock",
        "exit 1",
    );
    let vm = h.vm(d, "redis-dedicated-node", 0);
    vm.install_file("store/bbr-backup/redis/data", "half done", 0o644)
        .unwrap();
    let run = all(&h, &["backup-cleanup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let node = slug(&h, d, "redis-dedicated-node", 0);
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

// ---------------------------------------------------------------------------------------
// backup: the successful paths (backup_test.go "When there is a deployment which has one
// instance" / "two instances, both backupable")
// ---------------------------------------------------------------------------------------

/// Go's backup script of the single-instance tests: two files of known content.
const TWO_DUMPS: &str = "set -u\ntouch /var/vcap/sys/backup-script-was-run\nprintf backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"\nprintf backupcontent2 > \"$BBR_ARTIFACT_DIRECTORY/backupdump2\"";

/// Go's manifest of backup_test.go: three jobs of release `redis` on `redis-dedicated-node`.
fn redis_node_with_three_jobs(d: &str) -> Deployment {
    Deployment::one(
        d,
        vec![group(
            "redis-dedicated-node",
            1,
            &[
                ("redis", "redis"),
                ("redis-writer", "redis"),
                ("redis-broker", "redis"),
            ],
        )],
    )
}

/// Whether a `*`-pattern occurs in `line` (each `*` stands for any run of characters).
fn glob_in(line: &str, pattern: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(start) = line.find(first) else {
        return false;
    };
    let mut rest = &line[start + first.len()..];
    for part in parts {
        match rest.find(part) {
            Some(p) => rest = &rest[p + part.len()..],
            None => return false,
        }
    }
    true
}

/// Asserts that lines matching `patterns` (see [`glob_in`]) occur in this order.
fn assert_lines_in_order(text: &str, patterns: &[String]) {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    for p in patterns {
        match lines[from..].iter().position(|l| glob_in(l, p)) {
            Some(i) => from += i + 1,
            None => panic!("no line matching {p:?} (in order) in:\n{text}"),
        }
    }
}

/// The percentages of the `Copying backup for job <job> on <slug> -- N% complete` lines.
fn progress(out: &str, job: &str, slug: &str) -> Vec<u32> {
    let prefix = format!("INFO - Copying backup for job {job} on {slug} -- ");
    out.lines()
        .filter_map(|l| {
            let rest = &l[l.find(&prefix)? + prefix.len()..];
            rest.strip_suffix("% complete")?.parse().ok()
        })
        .collect()
}

/// Asserts Go's `\d\d\d?% complete` progress for one artifact (bbr.md §6.3).
fn assert_progress_logged(out: &str, job: &str, slug: &str) {
    let p = progress(out, job, slug);
    assert!(
        p.iter().any(|&n| (10..=100).contains(&n)),
        "a `-- N% complete` line for {job} on {slug}: {p:?}\n{out}"
    );
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
}

/// The entries of a tar as `tar -t` lists them, sorted.
fn tar_entries(tar: &Path) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("-tf")
        .arg(tar)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar -tf {}", tar.display());
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// The regular files of a tar, keyed `./<path>` like the metadata's checksums.
fn tar_files(tar: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(format!("./{rel}"), std::fs::read(&p).unwrap());
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "tar -xf {}", tar.display());
    let mut files = std::collections::BTreeMap::new();
    walk(dir.path(), dir.path(), &mut files);
    files
}

/// The value of `  <key>: ` in the metadata's `backup_activity`.
fn activity_time<'a>(metadata: &'a str, key: &str) -> &'a str {
    let needle = format!("\n  {key}: ");
    let at = metadata
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key} in {metadata}"))
        + needle.len();
    metadata[at..].lines().next().unwrap()
}

/// Asserts Go's metadata time layout `2006/01/02 15:04:05 MST` in the jumpbox's local time
/// zone (bbr.md §4.2), within `[from, now]`.
fn assert_metadata_time(value: &str, from: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
    let zone = std::process::Command::new("date")
        .arg("+%Z")
        .output()
        .unwrap();
    let zone = String::from_utf8_lossy(&zone.stdout).trim().to_string();
    let (stamp, tz) = value.split_at(value.len().min(19));
    assert_eq!(tz, format!(" {zone}"), "time zone of {value:?}");
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y/%m/%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{value:?} is not YYYY/MM/DD HH:MM:SS TZ: {e}"));
    let now = chrono::Local::now().naive_local();
    assert!(
        t >= from - chrono::Duration::seconds(1) && t <= now,
        "{value:?} not within the run ({from} .. {now})"
    );
    t
}

#[test]
fn successful_single_instance_backup_logs_every_step_and_writes_go_metadata() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", TWO_DUMPS);
    let started = chrono::Local::now().naive_local();
    let run = h.bbr(d, &["--debug", "backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let artifact = h.artifact();
    let name = artifact.file_name().unwrap().to_string_lossy().into_owned();
    assert!(is_timestamped(&name, d, ""), "{name}");
    assert_eq!(
        files_in(&artifact),
        vec!["metadata", "redis-dedicated-node-0-redis.tar"]
    );

    // The tar holds what the script wrote to $BBR_ARTIFACT_DIRECTORY, as `tar -C <dir> -c .`
    // names it (bbr.md §4.1).
    let tar = artifact.join("redis-dedicated-node-0-redis.tar");
    assert_eq!(
        tar_entries(&tar),
        vec!["./", "./backupdump1", "./backupdump2"]
    );
    let files = tar_files(&tar);
    assert_eq!(files["./backupdump1"], b"backupcontent1");
    assert_eq!(files["./backupdump2"], b"backupcontent2");

    // The metadata, byte for byte as Go's yaml.v2 writes it (bbr.md §4.2): index as a
    // string, checksums keyed `./<file>`, no custom_artifacts, local start and finish time.
    let meta = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    let start = activity_time(&meta, "start_time");
    let finish = activity_time(&meta, "finish_time");
    let start_t = assert_metadata_time(start, started);
    let finish_t = assert_metadata_time(finish, started);
    assert!(start_t <= finish_t, "{meta}");
    assert_eq!(
        meta,
        format!(
            "instances:\n- name: redis-dedicated-node\n  index: \"0\"\n  artifacts:\n  - name: redis\n    checksums:\n      ./backupdump1: {}\n      ./backupdump2: {}\nbackup_activity:\n  start_time: {start}\n  finish_time: {finish}\n",
            support::sha256_hex(b"backupcontent1"),
            support::sha256_hex(b"backupcontent2"),
        )
    );

    // Go's assertions, in Go's order. The DEBUG lines of Go's separate checksum pass
    // (`Calculating shasum for local file`, `... for remote files`, `Comparing shasums`)
    // are not asserted: README, "One-pass drain", documents that there is no such pass.
    let node = slug(&h, d, "redis-dedicated-node", 0);
    let out = run.stdout();
    assert_lines_in_order(
        &out,
        &[
            "INFO - Looking for scripts".to_string(),
            format!("INFO - {node}/redis/backup"),
            format!("INFO - Running pre-checks for backup of {d}..."),
            format!("INFO - Starting backup of {d}..."),
            "INFO - Running pre-backup-lock scripts...".to_string(),
            "INFO - Finished running pre-backup-lock scripts.".to_string(),
            "INFO - Running backup scripts...".to_string(),
            format!("INFO - Backing up redis on {node}..."),
            format!("INFO - Finished backing up redis on {node}."),
            "INFO - Finished running backup scripts.".to_string(),
            "INFO - Running post-backup-unlock scripts...".to_string(),
            "INFO - Finished running post-backup-unlock scripts.".to_string(),
            format!("INFO - Copying backup -- * uncompressed -- for job redis on {node}..."),
            format!("INFO - Copying backup for job redis on {node} -- *% complete"),
            format!("INFO - Finished copying backup -- for job redis on {node}..."),
            format!("INFO - Starting validity checks -- for job redis on {node}..."),
            format!("INFO - Finished validity checks -- for job redis on {node}..."),
            format!("INFO - Backup created of {d} on"),
        ],
    );
    assert_progress_logged(&out, "redis", &node);
    assert!(!out.contains("Skipping disabled jobs:"), "{out}");
    assert!(!out.contains("Found disabled jobs"), "{out}");
    assert_eq!(
        h.events(d),
        vec!["redis-dedicated-node/0 redis backup"],
        "no lock scripts exist, none ran"
    );
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup"),
        "the remote artifact directory is removed"
    );
    assert_temp_users_removed(&h);
}

#[test]
fn lock_order_from_metadata_is_logged_and_every_script_is_logged_with_its_path() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", TWO_DUMPS);
    for job in ["redis", "redis-writer", "redis-broker"] {
        h.script(d, "redis-dedicated-node", 0, job, "pre-backup-lock", "");
        h.script(d, "redis-dedicated-node", 0, job, "post-backup-unlock", "");
    }
    // As Go's "locks in the specified order": the writer is locked before the server.
    metadata(
        &h,
        d,
        "redis-dedicated-node",
        0,
        "redis-writer",
        &locked_before("backup", "redis", "redis"),
    );
    let run = h.bbr(d, &["--debug", "backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let out = run.stdout();
    let node = slug(&h, d, "redis-dedicated-node", 0);
    assert_lines_in_order(
        &out,
        &[
            "INFO - Looking for scripts".to_string(),
            "INFO - Detected order: redis-writer should be locked before redis/redis during backup"
                .to_string(),
            format!("INFO - Running pre-checks for backup of {d}..."),
        ],
    );
    assert!(
        !out.contains("discontinued metadata keys backup_name/restore_name"),
        "{out}"
    );
    // bbr.md §2.3: DEBUG `> <script path>` before each script, INFO around each job.
    for job in ["redis", "redis-writer", "redis-broker"] {
        for script in ["pre-backup-lock", "post-backup-unlock"] {
            let line = format!("DEBUG - > /var/vcap/jobs/{job}/bin/bbr/{script}");
            assert!(out.contains(&line), "{line}\n{out}");
        }
        assert_lines_in_order(
            &out,
            &[
                format!("INFO - Locking {job} on {node} for backup..."),
                format!("INFO - Finished locking {job} on {node} for backup."),
                format!("INFO - Unlocking {job} on {node}..."),
                format!("INFO - Finished unlocking {job} on {node}."),
            ],
        );
    }
    assert!(
        out.contains("DEBUG - > /var/vcap/jobs/redis/bin/bbr/backup"),
        "{out}"
    );
    let events = h.events(d);
    let pos = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} not in {events:?}"))
    };
    assert!(
        pos("redis-dedicated-node/0 redis-writer pre-backup-lock")
            < pos("redis-dedicated-node/0 redis pre-backup-lock"),
        "{events:?}"
    );
    assert!(
        pos("redis-dedicated-node/0 redis post-backup-unlock true")
            < pos("redis-dedicated-node/0 redis-writer post-backup-unlock true"),
        "unlocked in reverse order: {events:?}"
    );
    assert_eq!(events.len(), 7, "{events:?}");
    assert_temp_users_removed(&h);
}

#[test]
fn backup_into_an_existing_artifact_path_creates_the_artifact_inside_it() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", TWO_DUMPS);
    let parent = tempfile::tempdir().unwrap();
    let run = h.bbr(
        d,
        &[
            "backup",
            "--artifact-path",
            &parent.path().to_string_lossy(),
        ],
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    let dirs = dirs_in(parent.path());
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let name = dirs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(is_timestamped(&name, d, ""), "{name}");
    assert_eq!(
        files_in(&dirs[0]),
        vec!["metadata", "redis-dedicated-node-0-redis.tar"]
    );
    assert_eq!(
        tar_files(&dirs[0].join("redis-dedicated-node-0-redis.tar"))["./backupdump1"],
        b"backupcontent1"
    );
    assert!(
        dirs_in(h.work.path()).is_empty(),
        "nothing in the working directory: {:?}",
        dirs_in(h.work.path())
    );
    assert_temp_users_removed(&h);
}

/// An add-on job is on the VM but not in the instance group's jobs in the manifest: its
/// release cannot be found, Go warns and gives it release "" (bbr.md §5.4), so an ordering
/// entry that names a release never matches it (§3.5).
#[test]
fn an_add_on_job_with_bbr_scripts_is_backed_up_with_an_empty_release() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", TWO_DUMPS);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "an_addon_job",
        "backup",
        "echo hi",
    );
    for job in ["redis", "an_addon_job"] {
        h.script(d, "redis-dedicated-node", 0, job, "pre-backup-lock", "");
    }
    // If the add-on's release were "addon-release" these two entries would be a cycle; with
    // release "" only the add-on -> redis edge exists.
    metadata(
        &h,
        d,
        "redis-dedicated-node",
        0,
        "redis",
        &locked_before("backup", "an_addon_job", "addon-release"),
    );
    metadata(
        &h,
        d,
        "redis-dedicated-node",
        0,
        "an_addon_job",
        &locked_before("backup", "redis", "redis"),
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let out = run.stdout();
    assert!(
        out.contains("WARN - could not find release name for job an_addon_job"),
        "{}",
        run.show()
    );
    assert!(
        !out.contains("could not find release name for job redis"),
        "{out}"
    );
    let artifact = h.artifact();
    assert_eq!(
        tars(&artifact),
        vec![
            "redis-dedicated-node-0-an_addon_job.tar",
            "redis-dedicated-node-0-redis.tar"
        ]
    );
    assert_eq!(
        tar_files(&artifact.join("redis-dedicated-node-0-redis.tar"))["./backupdump2"],
        b"backupcontent2"
    );
    let events = h.events(d);
    assert_eq!(
        events[..2],
        [
            "redis-dedicated-node/0 an_addon_job pre-backup-lock",
            "redis-dedicated-node/0 redis pre-backup-lock"
        ],
        "{events:?}"
    );
    assert_temp_users_removed(&h);
}

#[test]
fn discontinued_backup_name_warns_and_the_default_artifact_is_written() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", TWO_DUMPS);
    h.vm(d, "redis-dedicated-node", 0)
        .install_script(
            "redis",
            "metadata",
            "#!/bin/sh\nmkdir -p /var/vcap/sys && touch /var/vcap/sys/metadata-script-was-run\necho \"---\nbackup_name: custom_backup_named_redis\nrestore_name: custom_backup_named_redis\n\"\n",
        )
        .unwrap();
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let vm = h.vm(d, "redis-dedicated-node", 0);
    assert!(vm.exists("sys/metadata-script-was-run"));
    assert!(
        run.stdout().contains("WARN - discontinued metadata keys backup_name/restore_name found in job redis. bbr will not be able to restore this backup artifact."),
        "{}",
        run.show()
    );
    assert!(vm.exists("sys/backup-script-was-run"));
    let artifact = h.artifact();
    assert_eq!(tars(&artifact), vec!["redis-dedicated-node-0-redis.tar"]);
    let files = tar_files(&artifact.join("redis-dedicated-node-0-redis.tar"));
    assert_eq!(files.len(), 2, "{:?}", files.keys());
    assert_eq!(files["./backupdump1"], b"backupcontent1");
    let meta = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    assert!(
        meta.starts_with(&format!(
            "instances:\n- name: redis-dedicated-node\n  index: \"0\"\n  artifacts:\n  - name: redis\n    checksums:\n      ./backupdump1: {}\n      ./backupdump2: {}\nbackup_activity:\n",
            support::sha256_hex(b"backupcontent1"),
            support::sha256_hex(b"backupcontent2"),
        )),
        "no custom artifact: {meta}"
    );
    assert!(!meta.contains("custom"), "{meta}");
}

#[test]
fn a_job_named_mysql_backup_is_ignored_on_backup() {
    let d = "my-little-deployment";
    let h = Deployment::one(
        d,
        vec![group(
            "redis-dedicated-node",
            1,
            &[
                ("redis", "redis"),
                ("mysql-backup", "cf-backup-and-restore"),
            ],
        )],
    );
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", TWO_DUMPS);
    let vm = h.vm(d, "redis-dedicated-node", 0);
    vm.install_script(
        "mysql-backup",
        "metadata",
        "#!/bin/sh\nmkdir -p /var/vcap/sys && touch /var/vcap/sys/mysql-metadata-was-run\necho \"---\nbackup_name: mysql-artifact\n\"\n",
    )
    .unwrap();
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "mysql-backup",
        "backup",
        "cp -r $BBR_ARTIFACT_DIRECTORY* /var/vcap/store/mysql-backup",
    );
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "mysql-backup",
        "pre-backup-lock",
        "",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        vm.exists("sys/backup-script-was-run"),
        "redis was backed up"
    );
    assert_eq!(
        h.events(d),
        vec!["redis-dedicated-node/0 redis backup"],
        "no mysql-backup script ran"
    );
    assert!(
        !vm.exists("sys/mysql-metadata-was-run"),
        "the job is ignored entirely, its metadata too (bbr.md §2.1)"
    );
    let out = run.stdout();
    assert!(
        !out.contains("discontinued metadata keys backup_name/restore_name found"),
        "{out}"
    );
    assert!(!out.contains("/mysql-backup/"), "not listed: {out}");
    assert_eq!(
        tars(&h.artifact()),
        vec!["redis-dedicated-node-0-redis.tar"]
    );
    assert!(!vm.exists("store/mysql-backup"));
}

#[test]
fn the_metadata_script_is_given_bbr_version() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", TWO_DUMPS);
    h.vm(d, "redis-dedicated-node", 0)
        .install_script(
            "redis",
            "metadata",
            "#!/bin/sh\nmkdir -p /var/vcap/sys && echo \"${BBR_VERSION}\" > /var/vcap/sys/metadata-script-was-run\necho \"---\"\n",
        )
        .unwrap();
    let version = Run(std::process::Command::new(env!("CARGO_BIN_EXE_bbr"))
        .arg("version")
        .output()
        .unwrap());
    let version = version
        .stdout()
        .trim()
        .strip_prefix("bbr version ")
        .unwrap_or_else(|| panic!("{}", version.show()))
        .to_string();
    assert!(!version.is_empty());
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(
        h.vm(d, "redis-dedicated-node", 0)
            .read("sys/metadata-script-was-run")
            .unwrap()
            .trim(),
        version
    );
}

/// Go's "backup file has owner only permissions of different user": the temporary SSH user
/// cannot read the subdirectory, bbr drains it as root all the same, and prints the `du -sh`
/// size: 3 x 1,024,000 bytes plus two directories is 3008K on 4K blocks, `3.0M`.
#[test]
fn an_artifact_with_a_root_only_subdirectory_is_drained_and_its_size_printed() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "backup",
        "set -u\ndd if=/dev/urandom of=$BBR_ARTIFACT_DIRECTORY/backupdump1 bs=1KB count=1024 2>/dev/null\ndd if=/dev/urandom of=$BBR_ARTIFACT_DIRECTORY/backupdump2 bs=1KB count=1024 2>/dev/null\nmkdir $BBR_ARTIFACT_DIRECTORY/backupdump3\ndd if=/dev/urandom of=$BBR_ARTIFACT_DIRECTORY/backupdump3/dump bs=1KB count=1024 2>/dev/null\nchmod 0700 $BBR_ARTIFACT_DIRECTORY/backupdump3",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let node = slug(&h, d, "redis-dedicated-node", 0);
    assert!(
        run.stdout().contains(&format!(
            "INFO - Copying backup -- 3.0M uncompressed -- for job redis on {node}..."
        )),
        "{}",
        run.show()
    );
    let artifact = h.artifact();
    let files = tar_files(&artifact.join("redis-dedicated-node-0-redis.tar"));
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        vec!["./backupdump1", "./backupdump2", "./backupdump3/dump"]
    );
    assert!(files.values().all(|f| f.len() == 1_024_000));
    let meta = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    for (name, content) in &files {
        let line = format!("      {name}: {}\n", support::sha256_hex(content));
        assert!(meta.contains(&line), "{line} in {meta}");
    }
    assert!(
        !h.vm(d, "redis-dedicated-node", 0)
            .exists("store/bbr-backup")
    );
}

#[test]
fn backup_works_when_var_vcap_store_is_not_world_accessible() {
    use std::os::unix::fs::PermissionsExt;
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", TWO_DUMPS);
    let vm = h.vm(d, "redis-dedicated-node", 0);
    std::fs::set_permissions(
        vm.vcap_path("store"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(
        tar_files(&h.artifact().join("redis-dedicated-node-0-redis.tar"))["./backupdump2"],
        b"backupcontent2"
    );
    assert!(!vm.exists("store/bbr-backup"), "and cleaned up");
    assert_eq!(
        std::fs::metadata(vm.vcap_path("store"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700,
        "left as it was"
    );
}

#[test]
fn backup_of_two_backupable_instances_writes_both_tars_and_logs_each_one() {
    let d = "my-two-instance-deployment";
    let h = Deployment::one(
        d,
        vec![
            group("redis-dedicated-node", 1, &[("redis", "redis")]),
            group("redis-broker", 1, &[("redis", "redis")]),
        ],
    );
    for g in ["redis-dedicated-node", "redis-broker"] {
        h.script(
            d,
            g,
            0,
            "redis",
            "backup",
            &format!("printf '{g}' > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\""),
        );
    }
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let artifact = h.artifact();
    assert_eq!(
        tars(&artifact),
        vec![
            "redis-broker-0-redis.tar",
            "redis-dedicated-node-0-redis.tar"
        ]
    );
    for g in ["redis-dedicated-node", "redis-broker"] {
        assert_eq!(
            tar_files(&artifact.join(format!("{g}-0-redis.tar")))["./backupdump1"],
            g.as_bytes()
        );
    }
    let meta = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    for g in ["redis-dedicated-node", "redis-broker"] {
        assert!(
            meta.contains(&format!(
                "- name: {g}\n  index: \"0\"\n  artifacts:\n  - name: redis\n    checksums:\n      ./backupdump1: {}\n",
                support::sha256_hex(g.as_bytes())
            )),
            "{meta}"
        );
    }
    let out = run.stdout();
    assert!(
        out.contains(&format!("INFO - Starting backup of {d}...")),
        "{out}"
    );
    for g in ["redis-dedicated-node", "redis-broker"] {
        let node = slug(&h, d, g, 0);
        assert_lines_in_order(
            &out,
            &[
                format!("INFO - Starting backup of {d}..."),
                format!("INFO - Backing up redis on {node}..."),
                format!("INFO - Finished backing up redis on {node}."),
                format!("INFO - Copying backup -- * uncompressed -- for job redis on {node}..."),
                format!("INFO - Finished copying backup -- for job redis on {node}..."),
                format!("INFO - Finished validity checks -- for job redis on {node}..."),
                format!("INFO - Backup created of {d} on"),
            ],
        );
        assert_progress_logged(&out, "redis", &node);
    }
    assert_eq!(
        {
            let mut e = h.events(d);
            e.sort();
            e
        },
        vec![
            "redis-broker/0 redis backup",
            "redis-dedicated-node/0 redis backup"
        ]
    );
    for g in ["redis-dedicated-node", "redis-broker"] {
        assert!(!h.vm(d, g, 0).exists("store/bbr-backup"), "{g}");
    }
    assert_temp_users_removed(&h);
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
    h.script(
        d,
        "mysql",
        0,
        "redis",
        "backup",
        "mkdir -p \"$BBR_ARTIFACT_DIRECTORY/redis\" && printf redis-data > \"$BBR_ARTIFACT_DIRECTORY/redis/redis-backup\"",
    );
    let artifact = backed_up(&h, d);
    h.script(
        d,
        "mysql",
        0,
        "redis",
        "restore",
        "mkdir -p /var/vcap/store/redis-server && cp -r \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/redis-server/",
    );
    let vm = h.vm(d, "mysql", 0);
    vm.install_script(
        "mysql-restore",
        "metadata",
        "#!/bin/sh\necho \"---\nrestore_name: mysql-artifact\n\"\n",
    )
    .unwrap();
    h.script(
        d,
        "mysql",
        0,
        "mysql-restore",
        "restore",
        "cp -r $BBR_ARTIFACT_DIRECTORY* /var/vcap/store/mysql-restore",
    );
    h.script(d, "mysql", 0, "mysql-restore", "pre-restore-lock", "");
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
        h.script(
            d,
            job,
            i,
            job,
            "backup",
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
        for script in ["pre-restore-lock", "restore", "post-restore-unlock"] {
            h.script(d, job, i, job, script, "");
        }
        h.vm(d, job, i)
            .install_script(
                job,
                "metadata",
                "#!/bin/sh\nmkdir -p /var/vcap/sys && touch /var/vcap/sys/metadata-was-run\necho '---'\n",
            )
            .unwrap();
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
            let vm = h.vm(d, job, i);
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
    h.script(d, "redis-dedicated-node", 0, "redis", "restore", "");
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

// ---------------------------------------------------------------------------------------
// pre-backup-check (pre_backup_check_test.go "if there are no backup scripts")
// ---------------------------------------------------------------------------------------

#[test]
fn pre_backup_check_without_backup_scripts_cannot_be_backed_up() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    // An executable outside bin/bbr/ is not a bbr script.
    h.vm(d, "redis-dedicated-node", 0)
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

// ---------------------------------------------------------------------------------------
// --all-deployments backup-cleanup (backup_cleanup_test.go)
// ---------------------------------------------------------------------------------------

/// `<d>_YYYYMMDDTHHMMSSZ<suffix>`.
fn is_timestamped(name: &str, d: &str, suffix: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(&format!("{d}_"))
        .and_then(|r| r.strip_suffix(suffix))
    else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// Whether `line` starts with `[HH:MM:SS] ` (`printlnWithTimestamp`, bbr.md §1.4).
fn has_clock_prefix(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 11
        && b[0] == b'['
        && b[3] == b':'
        && b[6] == b':'
        && &b[9..11] == b"] "
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit())
}

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
        h.script(d, "redis-dedicated-node", 0, "redis", "backup", "");
        h.script(
            d,
            "redis-dedicated-node",
            0,
            "redis",
            "post-backup-unlock",
            "",
        );
        h.vm(d, "redis-dedicated-node", 0)
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
        let vm = h.vm(d, "redis-dedicated-node", 0);
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
        let node = slug(&h, d, "redis-dedicated-node", 0);
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
    h.script(d, "redis-dedicated-node", 0, "redis", "backup", "");
    // Blocks until the test releases it (bounded, so that nothing outlives the test).
    h.script(
        d,
        "redis-dedicated-node",
        0,
        "redis",
        "post-backup-unlock",
        "touch /var/vcap/sys/unlocking\ni=0; while [ ! -e /var/vcap/sys/release ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\ntouch /var/vcap/sys/unlock-ended",
    );
    let vm = h.vm(d, "redis-dedicated-node", 0);
    vm.install_file("store/bbr-backup/redis/data", "half done", 0o644)
        .unwrap();
    let mut child = h
        .command(None, &["--debug", "backup-cleanup"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !vm.exists("sys/unlocking") {
        assert!(child.try_wait().unwrap().is_none(), "bbr exited early");
        assert!(
            std::time::Instant::now() < deadline,
            "the unlock script never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The script outlived bbr: release it and let it end before the VM goes away.
    vm.install_file("sys/release", "", 0o644).unwrap();
    while !vm.exists("sys/unlock-ended") {
        assert!(
            std::time::Instant::now() < deadline,
            "the unlock script never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let logs = deployment_logs(h.work.path(), d);
    assert_eq!(logs.len(), 1, "{:?}", files_in(h.work.path()));
    let log = std::fs::read_to_string(h.work.path().join(&logs[0])).unwrap();
    let node = slug(&h, d, "redis-dedicated-node", 0);
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
