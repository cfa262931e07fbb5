//! `bbr deployment backup` scenarios of Go bbr's `integration/deployment/backup_test.go`
//! that `deployment.rs` does not cover, run against the BOSH director simulator and real
//! sshd VMs: a failure at each step (exit code, footer, unlock, cleanup), then the
//! successful paths with Go's exact log lines, tars and `metadata`.
//!
//! Scripts record their runs (`support::record`), so `Deployment::events` tells which scripts
//! ran, in which order, and what `BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL` they saw. Metadata
//! scripts are installed without recording so that the events are lifecycle scripts only.
//! Helpers shared with the other `deployment_*` scenario binaries are in
//! `support::scenarios`.

mod support;

use bbr_director_sim::TaskKind;
use std::path::Path;
use support::deployment::{Deployment, FOOTER, group};
use support::scenarios::{
    FAILING, assert_temp_users_removed, dirs_in, files_in, is_timestamped, locked_before,
    redis_node, tars,
};
use support::{Run, Script, assert_in_order};

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
    let api = h.instance("cf", "api", 0);
    let db = h.instance("cf", "db", 0);
    api.job("capi").backup_scripts();
    db.job("redis-server").backup_scripts();
    api.job("capi")
        .metadata(&locked_before("backup", "redis-server", "redis-release"));
    db.job("redis-server")
        .metadata(&locked_before("backup", "capi", "capi-release"));
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
        assert!(
            !h.instance("cf", g, i).vm().exists("store/bbr-backup"),
            "{g}/{i}"
        );
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(
        Script::Backup,
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
    let node = dedicated.slug();
    let broker = h.instance(d, "redis-broker", 0).slug();
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
    assert!(!dedicated.vm().exists("store/bbr-backup"));
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    let broker_instance = h.instance(d, "redis-broker", 0);
    dedicated.job("redis").backup_scripts();
    broker_instance.job("redis").backup_scripts();
    broker_instance
        .vm()
        .install_file("store/bbr-backup/redis/leftover", "previous run", 0o644)
        .unwrap();
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let err = run.stderr();
    let broker = broker_instance.slug();
    let node = dedicated.slug();
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
        broker_instance
            .vm()
            .read("store/bbr-backup/redis/leftover")
            .unwrap(),
        "previous run",
        "the existing directory is preserved"
    );
    assert!(!dedicated.vm().exists("store/bbr-backup"));
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::PreBackupLock, "");
    dedicated.job("redis").script(Script::PostBackupUnlock, "");
    // Like Go's test (which removes `shasum`), the backup script breaks a tool the drain
    // needs: `tar` becomes unusable inside this VM's private mount namespace only.
    dedicated.job("redis").script(
        Script::Backup,
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
        !dedicated.vm().exists("store/bbr-backup"),
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::PreBackupLock, "");
    dedicated.job("redis").script(
        Script::Backup,
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    dedicated
        .job("redis")
        .script(Script::PostBackupUnlock, FAILING);
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 8, "{}", run.show());
    let node = dedicated.slug();
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
    assert!(!dedicated.vm().exists("store/bbr-backup"));
    assert_temp_users_removed(&h);
}

#[test]
fn backup_script_failure_exits_1_unlocks_with_false_and_prints_no_footer() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::PreBackupLock, "");
    dedicated.job("redis").script(Script::Backup, FAILING);
    dedicated.job("redis").script(Script::PostBackupUnlock, "");
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let node = dedicated.slug();
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
        !dedicated.vm().exists("store/bbr-backup"),
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated
        .job("redis")
        .script(Script::PreBackupLock, FAILING);
    dedicated
        .job("redis-broker")
        .script(Script::PreBackupLock, "");
    dedicated.job("redis").script(
        Script::Backup,
        "echo backupcontent1 > \"$BBR_ARTIFACT_DIRECTORY/backupdump1\"",
    );
    dedicated.job("redis").script(Script::PostBackupUnlock, "");
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 4, "{}", run.show());
    let node = dedicated.slug();
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
    assert!(!dedicated.vm().exists("store/bbr-backup"));
    assert_temp_users_removed(&h);
}

#[test]
fn backup_script_and_ssh_cleanup_failures_exit_17_with_the_footer() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated
        .job("redis")
        .script(Script::Backup, "(>&2 echo 'ultra-baz'); exit 1");
    h.sim.fail_task(TaskKind::SshCleanup);
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 17, "{}", run.show());
    let node = dedicated.slug();
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
        !dedicated.vm().exists("store/bbr-backup"),
        "the remote directory is removed although the SSH user cleanup failed"
    );
}

#[test]
fn invalid_metadata_yaml_fails_the_backup_without_a_footer() {
    let d = "my-little-deployment";
    let h = redis_node(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").backup_scripts();
    dedicated.job("redis").raw_script(
        Script::Metadata,
        "#!/bin/sh\nmkdir -p /var/vcap/sys && touch /var/vcap/sys/metadata-was-run\necho \"not valid yaml\n\"\n",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(dedicated.vm().exists("sys/metadata-was-run"));
    let node = dedicated.slug();
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
        h.instance(d, "redis-dedicated-node", 0).job(job).script(
            Script::Backup,
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
    h.instance(d, "redis-dedicated-node", 0)
        .job("redis")
        .backup_scripts();
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

/// Asserts Go's `\d\d\d?% complete` progress for one artifact (docs/log-lines.md#drain-per-artifact).
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
/// zone (docs/artifact-format.md#metadata), within `[from, now]`.
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, TWO_DUMPS);
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
    // names it (docs/artifact-format.md#layout).
    let tar = artifact.join("redis-dedicated-node-0-redis.tar");
    assert_eq!(
        tar_entries(&tar),
        vec!["./", "./backupdump1", "./backupdump2"]
    );
    let files = tar_files(&tar);
    assert_eq!(files["./backupdump1"], b"backupcontent1");
    assert_eq!(files["./backupdump2"], b"backupcontent2");

    // The metadata, byte for byte as Go's yaml.v2 writes it
    // (docs/artifact-format.md#metadata): index as a string, checksums keyed `./<file>`, no custom_artifacts, local start and finish time.
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
    let node = dedicated.slug();
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
        !dedicated.vm().exists("store/bbr-backup"),
        "the remote artifact directory is removed"
    );
    assert_temp_users_removed(&h);
}

#[test]
fn lock_order_from_metadata_is_logged_and_every_script_is_logged_with_its_path() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, TWO_DUMPS);
    for job in ["redis", "redis-writer", "redis-broker"] {
        dedicated.job(job).script(Script::PreBackupLock, "");
        dedicated.job(job).script(Script::PostBackupUnlock, "");
    }
    // As Go's "locks in the specified order": the writer is locked before the server.
    dedicated
        .job("redis-writer")
        .metadata(&locked_before("backup", "redis", "redis"));
    let run = h.bbr(d, &["--debug", "backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let out = run.stdout();
    let node = dedicated.slug();
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
    // docs/log-lines.md#scripts: DEBUG `> <script path>` before each script, INFO around each job.
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
    h.instance(d, "redis-dedicated-node", 0)
        .job("redis")
        .script(Script::Backup, TWO_DUMPS);
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
/// release cannot be found, Go warns and gives it release "", so an ordering entry
/// that names a release never matches it (docs/script-contract.md#lock-ordering).
#[test]
fn an_add_on_job_with_bbr_scripts_is_backed_up_with_an_empty_release() {
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, TWO_DUMPS);
    dedicated
        .job("an_addon_job")
        .script(Script::Backup, "echo hi");
    for job in ["redis", "an_addon_job"] {
        dedicated.job(job).script(Script::PreBackupLock, "");
    }
    // If the add-on's release were "addon-release" these two entries would be a cycle; with
    // release "" only the add-on -> redis edge exists.
    dedicated
        .job("redis")
        .metadata(&locked_before("backup", "an_addon_job", "addon-release"));
    dedicated
        .job("an_addon_job")
        .metadata(&locked_before("backup", "redis", "redis"));
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, TWO_DUMPS);
    dedicated.job("redis").raw_script(
        Script::Metadata,
        "#!/bin/sh\nmkdir -p /var/vcap/sys && touch /var/vcap/sys/metadata-script-was-run\necho \"---\nbackup_name: custom_backup_named_redis\nrestore_name: custom_backup_named_redis\n\"\n",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let vm = dedicated.vm();
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, TWO_DUMPS);
    let vm = dedicated.vm();
    dedicated.job("mysql-backup").raw_script(
        Script::Metadata,
        "#!/bin/sh\nmkdir -p /var/vcap/sys && touch /var/vcap/sys/mysql-metadata-was-run\necho \"---\nbackup_name: mysql-artifact\n\"\n",
    );
    dedicated.job("mysql-backup").script(
        Script::Backup,
        "cp -r $BBR_ARTIFACT_DIRECTORY* /var/vcap/store/mysql-backup",
    );
    dedicated
        .job("mysql-backup")
        .script(Script::PreBackupLock, "");
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
        "the job is ignored entirely, its metadata too (docs/script-contract.md#where-scripts-live)"
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, TWO_DUMPS);
    dedicated.job("redis").raw_script(
        Script::Metadata,
        "#!/bin/sh\nmkdir -p /var/vcap/sys && echo \"${BBR_VERSION}\" > /var/vcap/sys/metadata-script-was-run\necho \"---\"\n",
    );
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
        dedicated
            .vm()
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
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(
        Script::Backup,
        "set -u\ndd if=/dev/urandom of=$BBR_ARTIFACT_DIRECTORY/backupdump1 bs=1KB count=1024 2>/dev/null\ndd if=/dev/urandom of=$BBR_ARTIFACT_DIRECTORY/backupdump2 bs=1KB count=1024 2>/dev/null\nmkdir $BBR_ARTIFACT_DIRECTORY/backupdump3\ndd if=/dev/urandom of=$BBR_ARTIFACT_DIRECTORY/backupdump3/dump bs=1KB count=1024 2>/dev/null\nchmod 0700 $BBR_ARTIFACT_DIRECTORY/backupdump3",
    );
    let run = h.bbr(d, &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let node = dedicated.slug();
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
    assert!(!dedicated.vm().exists("store/bbr-backup"));
}

#[test]
fn backup_works_when_var_vcap_store_is_not_world_accessible() {
    use std::os::unix::fs::PermissionsExt;
    let d = "my-little-deployment";
    let h = redis_node_with_three_jobs(d);
    let dedicated = h.instance(d, "redis-dedicated-node", 0);
    dedicated.job("redis").script(Script::Backup, TWO_DUMPS);
    let vm = dedicated.vm();
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
        h.instance(d, g, 0).job("redis").script(
            Script::Backup,
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
        let node = h.instance(d, g, 0).slug();
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
        assert!(!h.instance(d, g, 0).vm().exists("store/bbr-backup"), "{g}");
    }
    assert_temp_users_removed(&h);
}
