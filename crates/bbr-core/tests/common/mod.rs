//! Helpers shared by bbr-core's in-memory workflow tests (failure_matrix.rs,
//! stored_artifacts.rs, validate_workflow.rs): the run options and deadline, the ways an
//! `ErrorList` is read, the script sets a `ScriptedRemote` is given, the two-VM
//! `redis` / `redis-writer` deployment a restore is tested on, a local backup of it, a
//! corruption of that backup, and a restore from a local artifact.
//!
//! Each test binary compiles this module on its own and uses only part of it, hence the
//! `dead_code` allowance.

#![allow(dead_code)]

use bbr_core::artifact_location::{ArtifactOrigin, BackupDestination};
use bbr_core::report::MemoryReporter;
use bbr_core::testing::{Call, FakeSource, ScriptedRemote};
use bbr_core::workflow::{self, BackupRequest, RunOptions};
use bbr_core::{ErrorKind, ErrorList, ScriptKind, StopSignal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// No scenario may take long: a double that never answers must fail the test, not hang it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The run options of every test: ten in parallel, default script timeouts, `stop`.
pub fn options(stop: &StopSignal) -> RunOptions {
    RunOptions {
        bbr_version: "1.0.0-test".into(),
        max_parallel: 10,
        script_timeouts: Default::default(),
        stop: stop.clone(),
    }
}

/// The errors' messages, one a line.
pub fn messages(errors: &ErrorList) -> String {
    errors
        .0
        .iter()
        .map(|e| e.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The errors' kinds, in order.
pub fn kinds(errors: &ErrorList) -> Vec<ErrorKind> {
    errors.0.iter().map(|e| e.kind).collect()
}

/// `lines` as owned strings, to compare with a journal's events.
pub fn ev(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

/// Backup scripts for `job`, whose `backup` writes `dump` = `<job> data`.
pub fn with_backup_scripts(vm: &ScriptedRemote, job: &str) {
    vm.script(job, ScriptKind::PreBackupLock)
        .script(job, ScriptKind::Backup)
        .script(job, ScriptKind::PostBackupUnlock);
    vm.backup_files(job, &[("dump", format!("{job} data").as_bytes())]);
}

/// Restore scripts for `job`: lock, restore, unlock.
pub fn with_restore_scripts(vm: &ScriptedRemote, job: &str) {
    vm.script(job, ScriptKind::PreRestoreLock)
        .script(job, ScriptKind::Restore)
        .script(job, ScriptKind::PostRestoreUnlock);
}

/// `redis` on `redis-dedicated-node/0` and `redis-writer` on `writer/0`, with backup and
/// restore scripts and no lock order: the two restore side by side.
pub fn redis_pair() -> (FakeSource, Arc<ScriptedRemote>, Arc<ScriptedRemote>) {
    let mut source = FakeSource::new("dep", true);
    let node = source.instance("redis-dedicated-node", 0);
    let writer = source.instance("writer", 0);
    for (vm, job) in [(&node, "redis"), (&writer, "redis-writer")] {
        with_backup_scripts(vm, job);
        with_restore_scripts(vm, job);
    }
    (source, node, writer)
}

/// [`redis_pair`] with a lock order: the writer's metadata has it restore-locked first (a
/// restore runs that metadata script, validate must not).
pub fn restorable() -> (FakeSource, Arc<ScriptedRemote>, Arc<ScriptedRemote>) {
    let (source, node, writer) = redis_pair();
    writer.metadata(
        "redis-writer",
        "restore_should_be_locked_before:\n- job_name: redis\n  release: r\n",
    );
    (source, node, writer)
}

/// Backs `source` up into `work`, returning the artifact directory.
pub async fn backup_of(source: &FakeSource, work: &Path) -> PathBuf {
    let reporter = MemoryReporter::default();
    let request = BackupRequest {
        destination: BackupDestination::Local(work.to_path_buf()),
        started: SystemTime::now(),
        unsafe_lock_free: false,
        with_manifest: false,
    };
    let out = workflow::backup(source, options(&StopSignal::new()), &request, &reporter).await;
    assert!(out.errors.is_empty(), "{}", messages(&out.errors));
    out.artifact.expect("an artifact directory")
}

/// A backup of a fresh [`restorable`] deployment, kept in `work`.
pub async fn artifact(work: &Path) -> PathBuf {
    backup_of(&restorable().0, work).await
}

/// Restores the local `artifact` onto `source` within [`DEADLINE`].
pub async fn restore(
    source: &FakeSource,
    artifact: &Path,
    stop: &StopSignal,
) -> (ErrorList, MemoryReporter) {
    let reporter = MemoryReporter::default();
    let errors = tokio::time::timeout(
        DEADLINE,
        workflow::restore(
            source,
            options(stop),
            &ArtifactOrigin::Local(artifact.to_path_buf()),
            &reporter,
        ),
    )
    .await
    .expect("the restore ended before the deadline");
    (errors, reporter)
}

/// Flips one byte of `redis`'s `dump` content (`redis data`) inside the tar `bytes`.
pub fn flip_content(bytes: &mut [u8]) {
    let at = bytes
        .windows(b"redis data".len())
        .position(|w| w == b"redis data")
        .expect("file content inside the tar");
    bytes[at] = b'R';
}

/// [`flip_content`] on the tar file `tar`.
pub fn flip_content_of(tar: &Path) {
    let mut bytes = std::fs::read(tar).unwrap();
    flip_content(&mut bytes);
    std::fs::write(tar, bytes).unwrap();
}

/// No script at all ran on any VM of `source`, not even `metadata`.
pub fn no_script_ran(source: &FakeSource) -> bool {
    !source
        .journal()
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Script { .. }))
}
