//! Backup to and restore from an object-store prefix (`s3://`, `az://`, `gs://`), run in
//! memory against `bbr_core::testing::MemoryPrefix` and the scripted VMs: the rules a
//! stored artifact obeys that a local one does not (`artifact_location`'s module docs).
//!
//! - `metadata` is written once, last, and only when the whole backup succeeded;
//! - a drained tar becomes an object only after it was verified, and every failed drain
//!   aborts its upload; the error then says what the incomplete artifact holds;
//! - a backup never writes into an existing artifact nor into a prefix it cannot use;
//! - a restore refuses an incomplete or damaged stored artifact before any VM command,
//!   and the stream to `tar -x` is hashed and gated (no unsafe header reaches the VM).
//!
//! The real store client is exercised against SeaweedFS, Azurite and fake-gcs-server by
//! bbr-cli's tests; here the workflows' side of the contract is checked in milliseconds.

mod common;

use bbr_core::artifact_location::{ArtifactOrigin, BackupDestination, StoredArtifacts};
use bbr_core::report::MemoryReporter;
use bbr_core::testing::{
    Call, FakeSource, Matcher, MemoryPrefix, Reply, ScriptedRemote, StoreOp, TarItem, tar_with,
};
use bbr_core::workflow::{self, BackupOutcome, BackupRequest};
use bbr_core::{ARTIFACT_DIRECTORY, ErrorKind, ErrorList, ScriptKind, StopSignal};
use common::{
    DEADLINE, ev, flip_content, kinds, messages, no_script_ran, options, redis_pair,
    with_backup_scripts, with_restore_scripts,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where the backups go.
const URL: &str = "s3://bucket/backups";
/// The artifact a backup started at [`started`] creates for deployment `dep`.
const DIR: &str = "dep_20231114T221320Z";
const NODE_TAR: &str = "redis-dedicated-node-0-redis.tar";
const WRITER_TAR: &str = "writer-0-redis-writer.tar";

/// 2023-11-14 22:13:20 UTC.
fn started() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn key(name: &str) -> String {
    format!("{DIR}/{name}")
}

/// Both unlocks after a good backup (the order between the two is free: no lock order).
fn unlocked_after_success(source: &FakeSource) {
    let events = source.journal().events();
    for line in [
        "redis-dedicated-node/0 redis post-backup-unlock true",
        "writer/0 redis-writer post-backup-unlock true",
    ] {
        assert!(events.contains(&line.to_string()), "{events:?}");
    }
}

async fn backup_to(
    source: &FakeSource,
    store: &MemoryPrefix,
    stop: &StopSignal,
    with_manifest: bool,
) -> BackupOutcome {
    let request = BackupRequest {
        destination: BackupDestination::Stored(Arc::new(store.clone())),
        started: started(),
        unsafe_lock_free: false,
        with_manifest,
    };
    tokio::time::timeout(
        DEADLINE,
        workflow::backup(source, options(stop), &request, &MemoryReporter::default()),
    )
    .await
    .expect("the backup ended before the deadline")
}

async fn restore_from(source: &FakeSource, artifact: MemoryPrefix) -> (ErrorList, MemoryReporter) {
    let reporter = MemoryReporter::default();
    let errors = tokio::time::timeout(
        DEADLINE,
        workflow::restore(
            source,
            options(&StopSignal::new()),
            &ArtifactOrigin::Stored(Arc::new(artifact)),
            &reporter,
        ),
    )
    .await
    .expect("the restore ended before the deadline");
    (errors, reporter)
}

/// A complete stored artifact of [`redis_pair`] at `URL/DIR`.
async fn stored_artifact() -> MemoryPrefix {
    let store = MemoryPrefix::new(URL);
    let (source, _, _) = redis_pair();
    let outcome = backup_to(&source, &store, &StopSignal::new(), false).await;
    assert!(outcome.errors.is_empty(), "{}", messages(&outcome.errors));
    store
}

/// The upload of `name` was started, aborted and never finished, and no object holds it.
fn assert_aborted(store: &MemoryPrefix, name: &str) {
    let ops = store.journal();
    let k = key(name);
    assert!(ops.contains(&StoreOp::Create(k.clone())), "{ops:?}");
    assert!(ops.contains(&StoreOp::Abort(k.clone())), "{ops:?}");
    assert!(!ops.contains(&StoreOp::Finish(k.clone())), "{ops:?}");
    assert_eq!(store.object(&k), None, "{k} became visible");
}

/// No `metadata` was written, and the error says what the incomplete artifact holds.
fn assert_incomplete(store: &MemoryPrefix, errors: &ErrorList, left: &[&str]) {
    let ops = store.journal();
    assert!(
        !ops.iter()
            .any(|op| op.key().is_some_and(|k| k.ends_with("metadata"))),
        "{ops:?}"
    );
    assert_eq!(store.object(&key("metadata")), None);
    let mut names: Vec<String> = left.iter().map(|n| n.to_string()).collect();
    names.sort();
    assert_eq!(store.at(DIR).keys(), names);
    let expected = format!(
        "The backup failed, so no metadata was written to {URL}/{DIR}. The incomplete artifact {URL}/{DIR} holds {} object(s) ({}) and no metadata",
        names.len(),
        names.join(", ")
    );
    assert!(
        messages(errors).contains(&expected),
        "{expected}\nnot in\n{}",
        messages(errors)
    );
}

// ---------------------------------------------------------------------------------------
// the double
// ---------------------------------------------------------------------------------------

/// The double keeps the real sink's promise: an upload is invisible until `finish`, and
/// neither an abort nor a drop ever makes it visible.
#[test]
fn the_memory_prefix_shows_an_upload_only_once_finished() {
    use std::io::Write;
    let store = MemoryPrefix::new(URL);
    let mut dropped = store.create(DIR, "dropped.tar").unwrap();
    dropped.write_all(b"partial").unwrap();
    drop(dropped);
    let mut aborted = store.create(DIR, "aborted.tar").unwrap();
    aborted.write_all(b"partial").unwrap();
    aborted.abort().unwrap();
    let mut finished = store.create(DIR, "finished.tar").unwrap();
    finished.write_all(b"whole").unwrap();
    assert!(store.keys().is_empty(), "nothing visible before finish");
    assert_eq!(finished.finish().unwrap(), 5);
    assert_eq!(store.keys(), vec![key("finished.tar")]);
    assert_eq!(store.object(&key("finished.tar")).unwrap(), b"whole");
    let ops = store.journal();
    assert!(
        ops.contains(&StoreOp::Abandon(key("dropped.tar"))),
        "{ops:?}"
    );
    assert!(ops.contains(&StoreOp::Abort(key("aborted.tar"))), "{ops:?}");

    store.fail_writes_after("failing.tar", 4);
    let mut failing = store.create(DIR, "failing.tar").unwrap();
    let err = failing.write_all(b"0123456789").unwrap_err();
    assert!(err.to_string().contains("after 4 bytes"), "{err}");
    assert!(failing.finish().is_err(), "a failed upload cannot complete");
    assert_eq!(store.object(&key("failing.tar")), None);
}

// ---------------------------------------------------------------------------------------
// backup
// ---------------------------------------------------------------------------------------

/// Rule 1: the layout, and `metadata` written once, after the manifest and every tar.
#[tokio::test]
async fn a_stored_backup_writes_the_tars_and_manifest_first_and_metadata_once_last() {
    let store = MemoryPrefix::new(URL);
    let (mut source, _, _) = redis_pair();
    source.set_manifest("name: dep\n");
    let outcome = backup_to(&source, &store, &StopSignal::new(), true).await;
    assert!(outcome.errors.is_empty(), "{}", messages(&outcome.errors));
    assert_eq!(outcome.location.as_deref(), Some(&*format!("{URL}/{DIR}")));
    assert_eq!(outcome.artifact, None, "no local directory");
    unlocked_after_success(&source);
    assert_eq!(
        store.keys(),
        vec![
            key("manifest.yml"),
            key("metadata"),
            key(NODE_TAR),
            key(WRITER_TAR),
        ]
    );
    // What became visible, in order: the manifest, the two tars, metadata last.
    let visible: Vec<StoreOp> = store
        .journal()
        .into_iter()
        .filter(|op| matches!(op, StoreOp::Put(_) | StoreOp::Finish(_)))
        .collect();
    assert_eq!(visible.len(), 4, "{visible:?}");
    assert_eq!(visible[0], StoreOp::Put(key("manifest.yml")));
    assert!(visible[1..3].contains(&StoreOp::Finish(key(NODE_TAR))));
    assert!(visible[1..3].contains(&StoreOp::Finish(key(WRITER_TAR))));
    assert_eq!(visible[3], StoreOp::Put(key("metadata")));
    assert!(
        !store
            .journal()
            .iter()
            .any(|op| matches!(op, StoreOp::Abort(_) | StoreOp::Abandon(_))),
        "{:?}",
        store.journal()
    );
    assert_eq!(store.object(&key("manifest.yml")).unwrap(), b"name: dep\n");
    let metadata = String::from_utf8(store.object(&key("metadata")).unwrap()).unwrap();
    for needle in [
        "name: redis-dedicated-node",
        "name: writer",
        "./dump",
        "finish_time",
    ] {
        assert!(metadata.contains(needle), "{needle} not in {metadata}");
    }
    // The deep offline check (bbr artifact validate's) accepts the stored artifact.
    let (check, _, _) = redis_pair();
    let problems = workflow::validate(
        &check,
        options(&StopSignal::new()),
        &ArtifactOrigin::Stored(Arc::new(store.at(DIR))),
        &MemoryReporter::default(),
    )
    .await;
    assert!(problems.is_empty(), "{}", messages(&problems));
}

/// Rule 2: `tar -c` exiting non-zero.
#[tokio::test]
async fn a_failed_tar_aborts_its_upload_and_no_metadata_is_written() {
    let store = MemoryPrefix::new(URL);
    let (source, node, _) = redis_pair();
    node.on(
        Matcher::ShellPrefix("tar -C ".into()),
        Reply::exit(2).stderr("tar: disk on fire"),
    );
    let outcome = backup_to(&source, &store, &StopSignal::new(), false).await;
    let errors = &outcome.errors;
    assert_eq!(kinds(errors)[0], ErrorKind::Drain, "{}", messages(errors));
    assert!(
        messages(errors).contains("tar: disk on fire - exit code 2"),
        "{}",
        messages(errors)
    );
    assert_aborted(&store, NODE_TAR);
    assert_incomplete(&store, errors, &[WRITER_TAR]);
    unlocked_after_success(&source);
}

/// Rule 2: a stream that is not a tar.
#[tokio::test]
async fn a_stream_that_is_not_a_tar_aborts_its_upload() {
    let store = MemoryPrefix::new(URL);
    let (source, node, _) = redis_pair();
    node.on(
        Matcher::ShellPrefix("tar -C ".into()),
        Reply::ok().stdout(vec![b'x'; 2048]),
    );
    let outcome = backup_to(&source, &store, &StopSignal::new(), false).await;
    let errors = &outcome.errors;
    assert!(
        messages(errors).contains("is not a valid tar"),
        "{}",
        messages(errors)
    );
    let written: usize = store
        .journal()
        .iter()
        .filter_map(|op| match op {
            StoreOp::Write(k, n) if *k == key(NODE_TAR) => Some(*n),
            _ => None,
        })
        .sum();
    assert_eq!(written, 2048, "the bytes were streamed, then abandoned");
    assert_aborted(&store, NODE_TAR);
    assert_incomplete(&store, errors, &[WRITER_TAR]);
}

/// Rule 2: a tar whose files differ from the listing taken on the VM.
#[tokio::test]
async fn a_tar_that_differs_from_the_remote_listing_aborts_its_upload() {
    let store = MemoryPrefix::new(URL);
    let (source, node, _) = redis_pair();
    node.on(
        Matcher::ShellPrefix(format!("find {ARTIFACT_DIRECTORY}/redis ")),
        Reply::ok().stdout("99 dump\0"),
    );
    let outcome = backup_to(&source, &store, &StopSignal::new(), false).await;
    let errors = &outcome.errors;
    assert!(
        messages(errors)
            .contains("transferred files don't match the files on the instance for [./dump]"),
        "{}",
        messages(errors)
    );
    assert_aborted(&store, NODE_TAR);
    assert_incomplete(&store, errors, &[WRITER_TAR]);
}

/// Rules 2 and 5: the store failing a write mid-drain.
#[tokio::test]
async fn a_store_write_failure_fails_that_drain_naming_the_object_and_aborts_it() {
    let store = MemoryPrefix::new(URL);
    store.fail_writes_after(NODE_TAR, 1024);
    let (source, _, _) = redis_pair();
    let outcome = backup_to(&source, &store, &StopSignal::new(), false).await;
    let errors = &outcome.errors;
    let drain: Vec<&str> = errors
        .0
        .iter()
        .filter(|e| e.kind == ErrorKind::Drain)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(drain.len(), 1, "{}", messages(errors));
    assert!(
        drain[0].contains(&format!("writing {URL}/{DIR}/{NODE_TAR} failed"))
            && drain[0].contains("the store failed the upload after 1024 bytes"),
        "{}",
        drain[0]
    );
    assert_aborted(&store, NODE_TAR);
    assert!(
        store.journal().contains(&StoreOp::Finish(key(WRITER_TAR))),
        "the other job's drain completed"
    );
    assert_incomplete(&store, errors, &[WRITER_TAR]);
    unlocked_after_success(&source);
    assert_eq!(
        source.released(),
        ev(&[
            "redis-dedicated-node/redis-dedicated-node-0-id",
            "writer/writer-0-id"
        ])
    );
}

/// An unlock failure after a verified drain leaves a complete stored artifact, as it
/// leaves a restorable local one: the data was all drained and verified; only the
/// service's unlock failed (exit 8).
#[tokio::test]
async fn an_unlock_failure_after_the_drain_still_completes_the_stored_artifact() {
    let store = MemoryPrefix::new(URL);
    let (source, node, _) = redis_pair();
    node.on(
        Matcher::script("redis", ScriptKind::PostBackupUnlock),
        Reply::exit(1).stderr("cannot unlock"),
    );
    let outcome = backup_to(&source, &store, &StopSignal::new(), false).await;
    assert_eq!(kinds(&outcome.errors), vec![ErrorKind::Unlock]);
    assert_eq!(outcome.errors.exit_code(), 8);
    let puts: Vec<StoreOp> = store
        .journal()
        .into_iter()
        .filter(|op| matches!(op, StoreOp::Put(_)))
        .collect();
    assert_eq!(puts, vec![StoreOp::Put(key("metadata"))]);
    assert!(store.object(&key(NODE_TAR)).is_some());
    assert!(store.object(&key(WRITER_TAR)).is_some());
}

/// Rule 2: SIGTERM while a tar streams.
#[tokio::test]
async fn a_stop_during_a_stored_drain_aborts_the_upload_and_writes_no_metadata() {
    let stop = StopSignal::new();
    let store = MemoryPrefix::new(URL);
    let mut source = FakeSource::new("dep", true);
    let vm = source.instance("bosh", 0);
    with_backup_scripts(&vm, "bosh");
    with_restore_scripts(&vm, "bosh");
    vm.on(
        Matcher::ShellPrefix("tar -C ".into()),
        Reply::ok().raising(&stop).hanging(),
    );
    let outcome = backup_to(&source, &store, &stop, false).await;
    let errors = &outcome.errors;
    assert!(
        messages(errors).contains("stopped by a termination request"),
        "{}",
        messages(errors)
    );
    assert!(
        messages(errors).contains("bbr was asked to terminate during Drain"),
        "{}",
        messages(errors)
    );
    let ops = store.journal();
    assert!(ops.contains(&StoreOp::Create(key("bosh-0-bosh.tar"))));
    assert!(
        ops.contains(&StoreOp::Abort(key("bosh-0-bosh.tar"))),
        "{ops:?}"
    );
    assert!(!ops.iter().any(|op| matches!(op, StoreOp::Finish(_))));
    let expected = format!(
        "The backup failed, so no metadata was written to {URL}/{DIR}. Nothing was left in {URL}/{DIR}: no object was written there."
    );
    assert!(messages(errors).contains(&expected), "{}", messages(errors));
    assert!(store.keys().is_empty(), "{:?}", store.keys());
    assert!(!vm.has_artifact_directory());
    assert_eq!(source.released(), ev(&["bosh/bosh-0-id"]));
}

/// Rule 3: an artifact of the same name already holds objects.
#[tokio::test]
async fn a_backup_into_an_existing_stored_artifact_is_refused_before_locking() {
    let store = MemoryPrefix::new(URL);
    store.insert(&key("metadata"), "an earlier backup");
    let (source, node, writer) = redis_pair();
    let outcome = backup_to(&source, &store, &StopSignal::new(), false).await;
    assert_eq!(
        messages(&outcome.errors),
        format!("{URL}/{DIR} already exists (1 objects); refusing to write over it")
    );
    assert_eq!(source.journal().events(), Vec::<String>::new());
    assert!(
        !store
            .journal()
            .iter()
            .any(|op| matches!(op, StoreOp::Create(_) | StoreOp::Put(_))),
        "{:?}",
        store.journal()
    );
    assert_eq!(store.keys(), vec![key("metadata")]);
    assert_eq!(
        store.object(&key("metadata")).unwrap(),
        b"an earlier backup"
    );
    assert!(!node.has_artifact_directory() && !writer.has_artifact_directory());
}

/// Rule 3: a missing bucket or refused credentials.
#[tokio::test]
async fn a_backup_to_a_prefix_that_fails_its_check_is_refused_before_locking() {
    let store = MemoryPrefix::new(URL);
    store.fail_check("the bucket does not exist");
    let (source, _, _) = redis_pair();
    let outcome = backup_to(&source, &store, &StopSignal::new(), false).await;
    assert_eq!(
        messages(&outcome.errors),
        format!("{URL}: the bucket does not exist")
    );
    assert_eq!(outcome.errors.exit_code(), 1);
    assert_eq!(source.journal().events(), Vec::<String>::new());
    assert_eq!(store.journal(), vec![StoreOp::Check]);
    assert_eq!(
        source.released(),
        ev(&[
            "redis-dedicated-node/redis-dedicated-node-0-id",
            "writer/writer-0-id"
        ])
    );
}

// ---------------------------------------------------------------------------------------
// restore
// ---------------------------------------------------------------------------------------

const RESTORED: &[&str] = &[
    "redis-dedicated-node/0 redis pre-restore-lock",
    "writer/0 redis-writer pre-restore-lock",
    "redis-dedicated-node/0 redis restore",
    "writer/0 redis-writer restore",
    "redis-dedicated-node/0 redis post-restore-unlock",
    "writer/0 redis-writer post-restore-unlock",
];

/// Keeps what was uploaded: the cleanup's removal is answered without removing.
fn keep_uploads(vm: &ScriptedRemote) {
    vm.on(
        Matcher::ShellPrefix(format!("rm -rf {ARTIFACT_DIRECTORY}")),
        Reply::ok(),
    );
}

fn uploaded(vm: &ScriptedRemote, job: &str) -> Option<Vec<u8>> {
    vm.files(&format!("{ARTIFACT_DIRECTORY}/{job}"))
        .get("dump")
        .cloned()
}

/// A restore refused while validating: nothing was sent to any VM, nothing released.
fn assert_no_vm_contacted(source: &FakeSource) {
    assert_eq!(source.journal().calls(), Vec::<Call>::new());
    assert_eq!(source.released(), Vec::<String>::new());
}

#[tokio::test]
async fn a_stored_backup_restores_what_was_backed_up() {
    let store = stored_artifact().await;
    let (source, node, writer) = redis_pair();
    keep_uploads(&node);
    keep_uploads(&writer);
    let (errors, reporter) = restore_from(&source, store.at(DIR)).await;
    assert!(errors.is_empty(), "{}", messages(&errors));
    assert_eq!(source.journal().events(), ev(RESTORED));
    assert_eq!(
        uploaded(&node, "redis").as_deref(),
        Some(&b"redis data"[..])
    );
    assert_eq!(
        uploaded(&writer, "redis-writer").as_deref(),
        Some(&b"redis-writer data"[..])
    );
    assert!(reporter.contains("Completed restore of dep"));
    // Each tar was read once, by its upload.
    let opened: Vec<StoreOp> = store
        .journal()
        .into_iter()
        .filter(|op| matches!(op, StoreOp::Open(k) if k.ends_with(".tar")))
        .collect();
    assert_eq!(opened.len(), 2, "{opened:?}");
}

#[tokio::test]
async fn a_local_artifact_copied_into_a_store_restores() {
    let work = tempfile::tempdir().unwrap();
    let (source, _, _) = redis_pair();
    let request = BackupRequest {
        destination: BackupDestination::Local(work.path().to_path_buf()),
        started: started(),
        unsafe_lock_free: false,
        with_manifest: false,
    };
    let outcome = workflow::backup(
        &source,
        options(&StopSignal::new()),
        &request,
        &MemoryReporter::default(),
    )
    .await;
    assert!(outcome.errors.is_empty(), "{}", messages(&outcome.errors));
    let local = outcome.artifact.unwrap();
    let store = MemoryPrefix::new(URL);
    for entry in std::fs::read_dir(&local).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        store.insert(
            &format!("copied/{name}"),
            std::fs::read(entry.path()).unwrap(),
        );
    }
    assert_eq!(
        store.at("copied").keys(),
        vec!["metadata", NODE_TAR, WRITER_TAR]
    );
    let (source, node, writer) = redis_pair();
    keep_uploads(&node);
    let (errors, _) = restore_from(&source, store.at("copied")).await;
    assert!(errors.is_empty(), "{}", messages(&errors));
    assert_eq!(source.journal().events(), ev(RESTORED));
    assert_eq!(
        uploaded(&node, "redis").as_deref(),
        Some(&b"redis data"[..])
    );
    assert!(!writer.has_artifact_directory(), "cleaned up");
}

/// Rule 4: no `metadata`, no restore.
#[tokio::test]
async fn a_stored_artifact_without_metadata_is_refused_as_incomplete() {
    let store = stored_artifact().await;
    store.remove(&key("metadata")).expect("metadata");
    let (source, _, _) = redis_pair();
    let (errors, _) = restore_from(&source, store.at(DIR)).await;
    assert_eq!(
        messages(&errors),
        format!(
            "Could not validate backup: {URL}/{DIR} is incomplete: it has no metadata object (a backup that did not finish writes none); refusing to restore it"
        )
    );
    assert_no_vm_contacted(&source);
}

/// Rule 4: a tar `metadata` lists is missing.
#[tokio::test]
async fn a_stored_artifact_missing_a_listed_tar_is_refused() {
    let store = stored_artifact().await;
    store.remove(&key(NODE_TAR)).expect("tar");
    let (source, _, _) = redis_pair();
    let (errors, _) = restore_from(&source, store.at(DIR)).await;
    let text = messages(&errors);
    assert!(
        text.starts_with(&format!(
            "Backup is corrupted: {URL}/{DIR}/{NODE_TAR} is missing"
        )),
        "{text}"
    );
    assert_no_vm_contacted(&source);
}

/// Rule 4: a tar cut short to a size no complete tar has.
#[tokio::test]
async fn a_stored_tar_of_an_impossible_size_is_refused() {
    let store = stored_artifact().await;
    store.update(&key(NODE_TAR), |t| t.truncate(1000));
    let (source, _, _) = redis_pair();
    let (errors, _) = restore_from(&source, store.at(DIR)).await;
    assert_eq!(
        messages(&errors),
        format!(
            "Backup is corrupted: {URL}/{DIR}/{NODE_TAR} is 1000 bytes, not the size of a complete tar (a multiple of 512 bytes, at least 1024)"
        )
    );
    assert_no_vm_contacted(&source);
}

/// Rule 4: one content byte changed.
#[tokio::test]
async fn a_stored_tar_altered_by_one_byte_fails_the_checksum_and_runs_no_script() {
    let store = stored_artifact().await;
    store.update(&key(NODE_TAR), |t| flip_content(t));
    let (source, node, writer) = redis_pair();
    let (errors, _) = restore_from(&source, store.at(DIR)).await;
    assert_eq!(kinds(&errors), vec![ErrorKind::General]);
    assert!(
        messages(&errors).contains(&format!(
            "Backup is corrupted: checksum mismatch in {URL}/{DIR}/{NODE_TAR} for [./dump]"
        )),
        "{}",
        messages(&errors)
    );
    assert!(
        no_script_ran(&source),
        "no script ran: {:?}",
        source.journal().calls()
    );
    assert!(!node.has_artifact_directory() && !writer.has_artifact_directory());
}

/// Replaces the node's tar with `items` (metadata unchanged), restores, and returns the
/// errors and the entry names `tar -x` on the node received.
async fn restore_crafted(items: &[TarItem<'_>]) -> (ErrorList, FakeSource, Vec<String>) {
    let store = stored_artifact().await;
    let tar = tar_with(items);
    store.update(&key(NODE_TAR), |t| *t = tar);
    let (source, node, _) = redis_pair();
    let (errors, _) = restore_from(&source, store.at(DIR)).await;
    let received = node.received_entries(&format!("{ARTIFACT_DIRECTORY}/redis"));
    (errors, source, received)
}

fn assert_no_lifecycle_script(source: &FakeSource) {
    assert_eq!(source.journal().events(), Vec::<String>::new());
}

/// Rule 4: a device node is refused by the gate before its header reaches the VM.
#[tokio::test]
async fn a_device_node_in_a_stored_tar_never_reaches_the_vm() {
    let (errors, source, received) = restore_crafted(&[
        TarItem::Dir("./"),
        TarItem::File("./dump", b"redis data"),
        TarItem::CharDevice("./null"),
    ])
    .await;
    let text = messages(&errors);
    assert!(
        text.contains(&format!(
            "unsafe tar entry ./null in {URL}/{DIR}/{NODE_TAR}"
        )),
        "{text}"
    );
    let safe = ev(&["./", "./dump"]);
    assert!(
        !received.is_empty() && safe.starts_with(&received),
        "{received:?}"
    );
    assert_no_lifecycle_script(&source);
}

/// Rule 4: an entry through a symlink is refused by the gate before its header reaches
/// the VM.
#[tokio::test]
async fn an_entry_through_a_symlink_in_a_stored_tar_never_reaches_the_vm() {
    let (errors, source, received) = restore_crafted(&[
        TarItem::Dir("./"),
        TarItem::Dir("./sub"),
        TarItem::Symlink("./link", "sub"),
        TarItem::File("./link/dump", b"redis data"),
    ])
    .await;
    let text = messages(&errors);
    assert!(
        text.contains(&format!(
            "unsafe tar entry ./link/dump in {URL}/{DIR}/{NODE_TAR}"
        )),
        "{text}"
    );
    // Safe headers pass as far as the gate settled them before the refusal (how far
    // depends on how the stream was chunked); the refused one never does.
    let safe = ev(&["./", "./sub", "./link"]);
    assert!(
        !received.is_empty() && safe.starts_with(&received),
        "{received:?}"
    );
    assert_no_lifecycle_script(&source);
}
