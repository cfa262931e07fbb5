//! The failure matrix of the backup and restore workflows (docs/cli.md "Exit codes",
//! docs/script-contract.md "When each script runs"), run in memory against
//! `bbr_core::testing` doubles: no root, sshd or network. Each scenario asserts the order of
//! the script calls and the exit bits, with the VM tests (bbr-cli/tests/deployment_*.rs,
//! director_*.rs) as the oracle; those stay as the contract tests of the real transport.

mod common;

use bbr_core::artifact_location::BackupDestination;
use bbr_core::report::MemoryReporter;
use bbr_core::testing::{Call, FakeSource, Matcher, Reply, ScriptedRemote};
use bbr_core::workflow::{self, BackupOutcome, BackupRequest};
use bbr_core::{ARTIFACT_DIRECTORY, ErrorKind, ErrorList, Remote, ScriptKind, StopSignal};
use common::{
    DEADLINE, artifact, ev, flip_content_of, kinds, messages, no_script_ran, options, restorable,
    restore, with_backup_scripts,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

const LOCK: ScriptKind = ScriptKind::PreBackupLock;
const BACKUP: ScriptKind = ScriptKind::Backup;
const UNLOCK: ScriptKind = ScriptKind::PostBackupUnlock;

fn locked_before(job: &str) -> String {
    format!("backup_should_be_locked_before:\n- job_name: {job}\n  release: r\n")
}

/// Three jobs on two VMs locked in three levels: `a` (g/0) before `b` (g/0) before `c` (h/0).
fn three_levels() -> (FakeSource, Arc<ScriptedRemote>, Arc<ScriptedRemote>) {
    let mut source = FakeSource::new("dep", true);
    let g = source.instance("g", 0);
    let h = source.instance("h", 0);
    with_backup_scripts(&g, "a");
    with_backup_scripts(&g, "b");
    with_backup_scripts(&h, "c");
    g.metadata("a", &locked_before("b"));
    g.metadata("b", &locked_before("c"));
    (source, g, h)
}

struct Ran {
    outcome: BackupOutcome,
    reporter: MemoryReporter,
    _work: tempfile::TempDir,
}

async fn backup(source: &FakeSource, stop: &StopSignal) -> Ran {
    let work = tempfile::tempdir().unwrap();
    let reporter = MemoryReporter::default();
    let request = BackupRequest {
        destination: BackupDestination::Local(work.path().to_path_buf()),
        started: SystemTime::now(),
        unsafe_lock_free: false,
        with_manifest: false,
    };
    let outcome = tokio::time::timeout(
        DEADLINE,
        workflow::backup(source, options(stop), &request, &reporter),
    )
    .await
    .expect("the backup ended before the deadline");
    Ran {
        outcome,
        reporter,
        _work: work,
    }
}

fn tars(artifact: &Option<PathBuf>) -> Vec<String> {
    let Some(dir) = artifact else {
        return Vec::new();
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar"))
        .collect();
    names.sort();
    names
}

/// The remote directory is gone from every VM and every instance was released once.
fn assert_cleaned(source: &FakeSource, vms: &[&ScriptedRemote], released: &[&str]) {
    for vm in vms {
        assert!(
            !vm.has_artifact_directory(),
            "{} still has {ARTIFACT_DIRECTORY}",
            vm.address()
        );
    }
    assert_eq!(source.released(), ev(released));
}

// ---------------------------------------------------------------------------------------
// backup
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn backup_locks_in_order_unlocks_in_reverse_and_drains() {
    let (source, g, h) = three_levels();
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(
        ran.outcome.errors.exit_code(),
        0,
        "{}",
        messages(&ran.outcome.errors)
    );
    assert_eq!(
        source.journal().events(),
        ev(&[
            "g/0 a pre-backup-lock",
            "g/0 b pre-backup-lock",
            "h/0 c pre-backup-lock",
            "g/0 a backup",
            "g/0 b backup",
            "h/0 c backup",
            "h/0 c post-backup-unlock true",
            "g/0 b post-backup-unlock true",
            "g/0 a post-backup-unlock true",
        ])
    );
    assert_eq!(
        tars(&ran.outcome.artifact),
        ev(&["g-0-a.tar", "g-0-b.tar", "h-0-c.tar"])
    );
    assert!(ran.reporter.contains("Backup created of dep on"));
    assert_cleaned(&source, &[&g, &h], &["g/g-0-id", "h/h-0-id"]);
    // What the metrics report: the bytes of the tars stored, and a lock held from the
    // first lock to the last unlock.
    let dir = ran.outcome.artifact.clone().unwrap();
    let stored: u64 = ["g-0-a.tar", "g-0-b.tar", "h-0-c.tar"]
        .iter()
        .map(|t| std::fs::metadata(dir.join(t)).unwrap().len())
        .sum();
    assert!(stored > 0);
    assert_eq!(ran.outcome.bytes_drained, stored);
    assert!(ran.outcome.lock_held.is_some());
}

#[tokio::test]
async fn a_lock_failure_at_the_first_level_locks_nothing_more_and_unlocks_everything() {
    let (source, g, h) = three_levels();
    g.on(
        Matcher::script("a", LOCK),
        Reply::exit(1).stdout("ultra-bar").stderr("ultra-baz"),
    );
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(kinds(&ran.outcome.errors), vec![ErrorKind::Lock]);
    assert_eq!(ran.outcome.errors.exit_code(), 4);
    assert_eq!(
        ran.outcome.errors.0[0].message,
        "Error attempting to run pre-backup-lock for job a on g/g-0-id: ultra-baz - exit code 1"
    );
    assert_eq!(
        source.journal().events(),
        ev(&[
            "g/0 a pre-backup-lock",
            "h/0 c post-backup-unlock false",
            "g/0 b post-backup-unlock false",
            "g/0 a post-backup-unlock false",
        ])
    );
    assert_eq!(tars(&ran.outcome.artifact), Vec::<String>::new());
    assert!(ran.reporter.contains("Error locking a on g/g-0-id."));
    assert_cleaned(&source, &[&g, &h], &["g/g-0-id", "h/h-0-id"]);
}

#[tokio::test]
async fn a_lock_failure_at_a_later_level_stops_locking_there() {
    let (source, g, h) = three_levels();
    g.on(Matcher::script("b", LOCK), Reply::exit(1).stderr("nope"));
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(kinds(&ran.outcome.errors), vec![ErrorKind::Lock]);
    assert_eq!(ran.outcome.errors.exit_code(), 4);
    assert_eq!(
        source.journal().events(),
        ev(&[
            "g/0 a pre-backup-lock",
            "g/0 b pre-backup-lock",
            "h/0 c post-backup-unlock false",
            "g/0 b post-backup-unlock false",
            "g/0 a post-backup-unlock false",
        ])
    );
    assert_cleaned(&source, &[&g, &h], &["g/g-0-id", "h/h-0-id"]);
}

#[tokio::test]
async fn a_backup_failure_exits_1_unlocks_with_false_and_drains_nothing() {
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("redis-dedicated-node", 0);
    with_backup_scripts(&vm, "redis");
    vm.on(
        Matcher::script("redis", BACKUP),
        Reply::exit(1).stderr("ultra-baz"),
    );
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(kinds(&ran.outcome.errors), vec![ErrorKind::Backup]);
    assert_eq!(ran.outcome.errors.exit_code(), 1);
    assert_eq!(
        ran.outcome.errors.0[0].message,
        "Error attempting to run backup for job redis on redis-dedicated-node/redis-dedicated-node-0-id: ultra-baz - exit code 1"
    );
    assert!(!ran.outcome.errors.needs_cleanup_advice());
    assert_eq!(
        source.journal().events(),
        ev(&[
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis backup",
            "redis-dedicated-node/0 redis post-backup-unlock false",
        ])
    );
    assert_eq!(tars(&ran.outcome.artifact), Vec::<String>::new());
    let meta = std::fs::read_to_string(ran.outcome.artifact.unwrap().join("metadata")).unwrap();
    assert!(meta.contains("finish_time"), "{meta}");
    assert_cleaned(
        &source,
        &[&vm],
        &["redis-dedicated-node/redis-dedicated-node-0-id"],
    );
}

#[tokio::test]
async fn an_unlock_failure_exits_8_after_draining() {
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("redis-dedicated-node", 0);
    with_backup_scripts(&vm, "redis");
    vm.on(
        Matcher::script("redis", UNLOCK),
        Reply::exit(1).stderr("ultra-baz"),
    );
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(kinds(&ran.outcome.errors), vec![ErrorKind::Unlock]);
    assert_eq!(ran.outcome.errors.exit_code(), 8);
    assert!(ran.outcome.errors.needs_cleanup_advice());
    assert_eq!(
        source.journal().events(),
        ev(&[
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis backup",
            "redis-dedicated-node/0 redis post-backup-unlock true",
        ])
    );
    assert_eq!(
        tars(&ran.outcome.artifact),
        ev(&["redis-dedicated-node-0-redis.tar"])
    );
    assert!(ran.reporter.contains("Backup created of dep on"));
    assert_cleaned(
        &source,
        &[&vm],
        &["redis-dedicated-node/redis-dedicated-node-0-id"],
    );
}

#[tokio::test]
async fn a_drain_failure_comes_after_the_unlock_and_still_cleans_up() {
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("redis-dedicated-node", 0);
    with_backup_scripts(&vm, "redis");
    vm.on(
        Matcher::ShellPrefix("tar -C ".into()),
        Reply::exit(2).stderr("tar: disk on fire"),
    );
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(kinds(&ran.outcome.errors), vec![ErrorKind::Drain]);
    assert_eq!(ran.outcome.errors.exit_code(), 1);
    assert!(ran.outcome.errors.needs_cleanup_advice());
    assert!(
        messages(&ran.outcome.errors).contains("tar: disk on fire - exit code 2"),
        "{}",
        messages(&ran.outcome.errors)
    );
    assert_eq!(
        source.journal().events(),
        ev(&[
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis backup",
            "redis-dedicated-node/0 redis post-backup-unlock true",
        ])
    );
    // The unlock ran before the drain's first command.
    let calls = source.journal().calls();
    let unlock = calls
        .iter()
        .position(
            |c| matches!(c, Call::Script { path, .. } if path.ends_with("post-backup-unlock")),
        )
        .unwrap();
    let du = calls
        .iter()
        .position(|c| matches!(c, Call::Root { shell, .. } if shell.starts_with("du -sh")))
        .unwrap();
    assert!(unlock < du, "{calls:?}");
    assert_eq!(
        tars(&ran.outcome.artifact),
        Vec::<String>::new(),
        "the incomplete tar is removed"
    );
    assert!(ran.reporter.contains("Failed to create backup of dep on"));
    assert_cleaned(
        &source,
        &[&vm],
        &["redis-dedicated-node/redis-dedicated-node-0-id"],
    );
}

#[tokio::test]
async fn a_cleanup_failure_exits_16() {
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("redis-dedicated-node", 0);
    with_backup_scripts(&vm, "redis");
    // Only the cleanup step's removal of the whole directory fails (not the drain's removal
    // of the job's directory).
    vm.on(
        Matcher::Shell(format!("rm -rf {ARTIFACT_DIRECTORY}")),
        Reply::exit(1).stderr("rm: read-only file system"),
    );
    let ran = backup(&source, &StopSignal::new()).await;
    let errors = &ran.outcome.errors;
    assert_eq!(
        kinds(errors),
        vec![ErrorKind::Cleanup],
        "{}",
        messages(errors)
    );
    assert_eq!(errors.exit_code(), 16);
    assert_eq!(
        messages(errors),
        "Deployment 'dep' failed while cleaning up with error: Unable to clean up backup artifact on redis-dedicated-node/redis-dedicated-node-0-id: rm: read-only file system - exit code 1"
    );
    assert!(errors.needs_cleanup_advice());
    assert!(ran.reporter.contains("Backup artifact clean up failed"));
    assert_eq!(
        tars(&ran.outcome.artifact),
        ev(&["redis-dedicated-node-0-redis.tar"]),
        "the artifact was drained before the cleanup failed"
    );
    assert_eq!(
        source.journal().events(),
        ev(&[
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis backup",
            "redis-dedicated-node/0 redis post-backup-unlock true",
        ])
    );
    assert_eq!(
        source.released(),
        ev(&["redis-dedicated-node/redis-dedicated-node-0-id"]),
        "the instance is released although its directory could not be removed"
    );
}

#[tokio::test]
async fn a_backup_failure_and_a_release_failure_exit_17() {
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("redis-dedicated-node", 0);
    with_backup_scripts(&vm, "redis");
    vm.on(Matcher::script("redis", BACKUP), Reply::exit(1).stderr("x"));
    source.fail_release(
        "redis-dedicated-node/redis-dedicated-node-0-id",
        "user bbr-tmp could not be deleted",
    );
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(
        kinds(&ran.outcome.errors),
        vec![ErrorKind::Backup, ErrorKind::Cleanup]
    );
    assert_eq!(ran.outcome.errors.exit_code(), 17);
    assert!(
        messages(&ran.outcome.errors).contains(
            "failed to cleanup ssh on redis-dedicated-node/redis-dedicated-node-0-id: user bbr-tmp could not be deleted"
        ),
        "{}",
        messages(&ran.outcome.errors)
    );
}

#[tokio::test]
async fn a_cyclic_lock_order_is_refused_before_any_lock() {
    let mut source = FakeSource::new("cf", true);
    let api = source.instance("api", 0);
    let db = source.instance("db", 0);
    with_backup_scripts(&api, "capi");
    with_backup_scripts(&db, "redis-server");
    api.metadata("capi", &locked_before("redis-server"));
    db.metadata("redis-server", &locked_before("capi"));
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(kinds(&ran.outcome.errors), vec![ErrorKind::General]);
    assert_eq!(ran.outcome.errors.exit_code(), 1);
    assert!(
        messages(&ran.outcome.errors).contains("job locking dependency graph is cyclic"),
        "{}",
        messages(&ran.outcome.errors)
    );
    assert!(!ran.outcome.errors.needs_cleanup_advice());
    assert_eq!(source.journal().events(), Vec::<String>::new());
    assert_eq!(ran.outcome.artifact, None, "no local artifact directory");
    assert_cleaned(&source, &[&api, &db], &["api/api-0-id", "db/db-0-id"]);
}

#[tokio::test]
async fn skipped_jobs_and_instances_without_scripts_run_nothing() {
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("redis", 0);
    let bare = source.instance("bare", 0);
    with_backup_scripts(&vm, "redis");
    with_backup_scripts(&vm, "skipped");
    vm.metadata("skipped", "skip_bbr_scripts: true\n");
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(
        ran.outcome.errors.exit_code(),
        0,
        "{}",
        messages(&ran.outcome.errors)
    );
    assert_eq!(
        source.journal().events(),
        ev(&[
            "redis/0 redis pre-backup-lock",
            "redis/0 redis backup",
            "redis/0 redis post-backup-unlock true",
        ])
    );
    assert_eq!(tars(&ran.outcome.artifact), ev(&["redis-0-redis.tar"]));
    // The instance without scripts was looked at, never written to, and still released.
    let on_bare = source.journal().root_commands("bare/0");
    assert!(
        on_bare
            .iter()
            .all(|c| !c.starts_with("rm ") && !c.starts_with("mkdir ")),
        "{on_bare:?}"
    );
    assert!(
        ran.reporter
            .contains("Backup directory was never created - skipping cleanup")
    );
    assert_cleaned(
        &source,
        &[&vm, &bare],
        &["redis/redis-0-id", "bare/bare-0-id"],
    );
}

#[tokio::test]
async fn an_existing_remote_artifact_directory_is_refused_before_locking() {
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("redis", 0);
    with_backup_scripts(&vm, "redis");
    vm.with_artifact_directory();
    let ran = backup(&source, &StopSignal::new()).await;
    assert_eq!(kinds(&ran.outcome.errors), vec![ErrorKind::ArtifactDir]);
    assert_eq!(ran.outcome.errors.exit_code(), 1);
    assert!(ran.outcome.errors.first_is_artifact_dir());
    assert_eq!(source.journal().events(), Vec::<String>::new());
    assert!(
        vm.has_artifact_directory(),
        "somebody else's directory is left alone"
    );
    assert_eq!(source.released(), ev(&["redis/redis-0-id"]));
}

// ---------------------------------------------------------------------------------------
// stop (SIGTERM) at each step
// ---------------------------------------------------------------------------------------

fn stopped(errors: &ErrorList, step: &str) -> bool {
    errors.0.iter().any(|e| {
        e.message
            == format!("bbr was asked to terminate during {step}; jobs were unlocked and the instances cleaned up")
    })
}

fn killed(source: &FakeSource, host: &str) -> bool {
    source
        .journal()
        .root_commands(host)
        .iter()
        .any(|c| c.starts_with("p=$(cat "))
}

#[tokio::test]
async fn a_stop_during_lock_kills_the_lock_locks_no_further_and_unlocks_everything() {
    let stop = StopSignal::new();
    let (source, g, h) = three_levels();
    g.on(
        Matcher::script("b", LOCK),
        Reply::ok().raising(&stop).hanging(),
    );
    let ran = backup(&source, &stop).await;
    let errors = &ran.outcome.errors;
    assert_eq!(
        kinds(errors),
        vec![ErrorKind::Lock, ErrorKind::General],
        "{}",
        messages(errors)
    );
    assert_eq!(errors.exit_code(), 5);
    assert!(stopped(errors, "Lock"), "{}", messages(errors));
    assert!(killed(&source, "g/0"), "the hanging lock script was killed");
    assert_eq!(
        source.journal().events(),
        ev(&[
            "g/0 a pre-backup-lock",
            "g/0 b pre-backup-lock",
            "h/0 c post-backup-unlock false",
            "g/0 b post-backup-unlock false",
            "g/0 a post-backup-unlock false",
        ])
    );
    assert_cleaned(&source, &[&g, &h], &["g/g-0-id", "h/h-0-id"]);
}

#[tokio::test]
async fn a_stop_during_backup_kills_the_script_unlocks_with_false_and_cleans_up() {
    let stop = StopSignal::new();
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("bosh", 0);
    with_backup_scripts(&vm, "bosh");
    vm.on(
        Matcher::script("bosh", BACKUP),
        Reply::ok().raising(&stop).hanging(),
    );
    let ran = backup(&source, &stop).await;
    let errors = &ran.outcome.errors;
    assert_eq!(
        kinds(errors),
        vec![ErrorKind::Backup, ErrorKind::General],
        "{}",
        messages(errors)
    );
    assert_eq!(errors.exit_code(), 1);
    assert!(stopped(errors, "Backup"), "{}", messages(errors));
    assert!(killed(&source, "bosh/0"));
    assert_eq!(
        source.journal().events(),
        ev(&[
            "bosh/0 bosh pre-backup-lock",
            "bosh/0 bosh backup",
            "bosh/0 bosh post-backup-unlock false",
        ])
    );
    assert_eq!(tars(&ran.outcome.artifact), Vec::<String>::new());
    assert_cleaned(&source, &[&vm], &["bosh/bosh-0-id"]);
}

#[tokio::test]
async fn a_stop_during_unlock_lets_the_unlock_finish_skips_the_drain_and_cleans_up() {
    let stop = StopSignal::new();
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("bosh", 0);
    with_backup_scripts(&vm, "bosh");
    vm.on(Matcher::script("bosh", UNLOCK), Reply::ok().raising(&stop));
    let ran = backup(&source, &stop).await;
    let errors = &ran.outcome.errors;
    assert_eq!(
        kinds(errors),
        vec![ErrorKind::General],
        "{}",
        messages(errors)
    );
    assert!(stopped(errors, "Drain"), "{}", messages(errors));
    assert!(
        !killed(&source, "bosh/0"),
        "an unlock script is never killed"
    );
    assert_eq!(
        source.journal().events(),
        ev(&[
            "bosh/0 bosh pre-backup-lock",
            "bosh/0 bosh backup",
            "bosh/0 bosh post-backup-unlock true",
        ])
    );
    assert_eq!(
        tars(&ran.outcome.artifact),
        Vec::<String>::new(),
        "nothing drained"
    );
    assert_cleaned(&source, &[&vm], &["bosh/bosh-0-id"]);
}

#[tokio::test]
async fn a_stop_during_drain_abandons_the_copy_and_cleans_up() {
    let stop = StopSignal::new();
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("bosh", 0);
    with_backup_scripts(&vm, "bosh");
    vm.on(
        Matcher::ShellPrefix("tar -C ".into()),
        Reply::ok().raising(&stop).hanging(),
    );
    let ran = backup(&source, &stop).await;
    let errors = &ran.outcome.errors;
    assert_eq!(
        kinds(errors),
        vec![ErrorKind::Drain, ErrorKind::General],
        "{}",
        messages(errors)
    );
    assert_eq!(errors.exit_code(), 1);
    assert!(
        messages(errors).contains("stopped by a termination request"),
        "{}",
        messages(errors)
    );
    assert!(stopped(errors, "Drain"), "{}", messages(errors));
    assert_eq!(
        source.journal().events(),
        ev(&[
            "bosh/0 bosh pre-backup-lock",
            "bosh/0 bosh backup",
            "bosh/0 bosh post-backup-unlock true",
        ])
    );
    assert_eq!(
        tars(&ran.outcome.artifact),
        Vec::<String>::new(),
        "the partial tar is removed"
    );
    assert_cleaned(&source, &[&vm], &["bosh/bosh-0-id"]);
}

// ---------------------------------------------------------------------------------------
// restore
// ---------------------------------------------------------------------------------------

const RESTORE: ScriptKind = ScriptKind::Restore;

/// The script order of a restore of [`restorable`]: the writer locked first, the node
/// restored, unlocks in reverse.
const RESTORE_ORDER: &[&str] = &[
    "writer/0 redis-writer pre-restore-lock",
    "redis-dedicated-node/0 redis pre-restore-lock",
    "redis-dedicated-node/0 redis restore",
    "redis-dedicated-node/0 redis post-restore-unlock",
    "writer/0 redis-writer post-restore-unlock",
];

/// [`assert_cleaned`] for both instances of [`restorable`].
fn assert_restorable_cleaned(source: &FakeSource, node: &ScriptedRemote, writer: &ScriptedRemote) {
    assert_cleaned(
        source,
        &[node, writer],
        &[
            "redis-dedicated-node/redis-dedicated-node-0-id",
            "writer/writer-0-id",
        ],
    );
}

#[tokio::test]
async fn a_restore_locks_in_order_restores_and_unlocks_in_reverse() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let (source, node, writer) = restorable();
    let (errors, reporter) = restore(&source, &artifact, &StopSignal::new()).await;
    assert!(errors.is_empty(), "{}", messages(&errors));
    assert_eq!(
        source.journal().events(),
        ev(&[
            "writer/0 redis-writer pre-restore-lock",
            "redis-dedicated-node/0 redis pre-restore-lock",
            "redis-dedicated-node/0 redis restore",
            "writer/0 redis-writer restore",
            "redis-dedicated-node/0 redis post-restore-unlock",
            "writer/0 redis-writer post-restore-unlock",
        ])
    );
    // Every script ran after every upload.
    let calls = source.journal().calls();
    let last_upload = calls
        .iter()
        .rposition(|c| matches!(c, Call::Plain { command, .. } if command.contains("tar -C")))
        .unwrap();
    let first_script = calls
        .iter()
        .position(|c| matches!(c, Call::Script { .. }))
        .unwrap();
    assert!(last_upload < first_script, "{calls:?}");
    assert!(reporter.contains("Completed restore of dep"));
    assert_restorable_cleaned(&source, &node, &writer);
}

#[tokio::test]
async fn a_restore_uploads_what_was_backed_up() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let (source, node, _) = restorable();
    // Keep the uploaded files: the cleanup step's removal is answered without removing.
    node.on(
        Matcher::ShellPrefix(format!("rm -rf {ARTIFACT_DIRECTORY}")),
        Reply::ok(),
    );
    let (errors, _) = restore(&source, &artifact, &StopSignal::new()).await;
    assert!(errors.is_empty(), "{}", messages(&errors));
    let files = node.files(&format!("{ARTIFACT_DIRECTORY}/redis"));
    assert_eq!(
        files.get("dump").map(Vec::as_slice),
        Some(&b"redis data"[..])
    );
}

#[tokio::test]
async fn a_restore_failure_still_unlocks() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let (source, node, writer) = restorable();
    node.on(
        Matcher::script("redis", RESTORE),
        Reply::exit(1).stderr("ultra-baz"),
    );
    let (errors, _) = restore(&source, &artifact, &StopSignal::new()).await;
    assert_eq!(kinds(&errors), vec![ErrorKind::General]);
    assert_eq!(errors.exit_code(), 1);
    assert!(
        messages(&errors).starts_with("Failed to restore: "),
        "{}",
        messages(&errors)
    );
    assert_eq!(source.journal().events(), ev(RESTORE_ORDER));
    assert_restorable_cleaned(&source, &node, &writer);
}

#[tokio::test]
async fn a_stop_during_restore_kills_the_script_and_unlocks() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let stop = StopSignal::new();
    let (source, node, writer) = restorable();
    node.on(
        Matcher::script("redis", RESTORE),
        Reply::ok().raising(&stop).hanging(),
    );
    let (errors, _) = restore(&source, &artifact, &stop).await;
    assert!(stopped(&errors, "Restore"), "{}", messages(&errors));
    assert!(killed(&source, "redis-dedicated-node/0"));
    assert_eq!(source.journal().events(), ev(RESTORE_ORDER));
    assert_restorable_cleaned(&source, &node, &writer);
}

#[tokio::test]
async fn a_corrupted_artifact_runs_no_script_and_leaves_nothing_on_the_vm() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let tar = artifact.join("redis-dedicated-node-0-redis.tar");
    flip_content_of(&tar);
    let (source, node, writer) = restorable();
    let (errors, reporter) = restore(&source, &artifact, &StopSignal::new()).await;
    assert_eq!(kinds(&errors), vec![ErrorKind::General]);
    assert_eq!(errors.exit_code(), 1);
    assert!(
        messages(&errors).contains("Backup is corrupted"),
        "{}",
        messages(&errors)
    );
    assert!(
        no_script_ran(&source),
        "no script at all ran, not even metadata: {:?}",
        source.journal().calls()
    );
    assert!(reporter.contains("Validating backup artifact for dep..."));
    assert_restorable_cleaned(&source, &node, &writer);
}
