//! Moving artifacts between VMs and the operator's disk, each byte once.
//!
//! Drain: `tar -c` on the VM streams to the local `.tar`; every chunk is written and fed to
//! a streaming tar parser that hashes each file as it passes, so the per-file SHA-256 sums
//! for `metadata` cost no second read anywhere. The transfer is accepted only when tar
//! exited 0, the stream is a complete tar (end-of-archive present, every entry whole) and
//! its files and sizes equal a metadata-only listing taken on the VM beforehand. SSH's
//! authenticated encryption guarantees the bytes were not altered in transit. A drained tar
//! holding a device node or a FIFO fails the drain; set-uid/set-gid entries are kept as
//! drained, with a warning naming the job and entry.
//!
//! Upload: the local `.tar` is read once; the same parser hashes it while it is sent to
//! `tar -x` on the VM, and the sums are compared with `metadata` before anything is allowed
//! to lock or restore; the extracted files are then listed on the VM and compared too. The
//! headers of set-uid/set-gid entries (found by the structure check) are sent rewritten
//! without those bits, one warning per entry.
//!
//! The local tars are written and read through [`bbr_artifact::artifact_file`], which
//! keeps a drain's page cache small and reads ahead of an upload.

use crate::ARTIFACT_DIRECTORY;
use crate::artifact_location::{ArtifactTarget, TarSink, TargetError};
use crate::commands;
use crate::error::{BbrError, ErrorKind};
use crate::model::{Instance, Job};
use crate::remote::{RemoteError, run_as_root_checked};
use crate::report::{Reporter, ReporterExt, TransferProgress};
use crate::stop::StopSignal;
use bbr_artifact::artifact_file::ArtifactFileReader;
use bbr_artifact::metadata::Checksums;
use bbr_artifact::safety::check_entry_kind;
use bbr_artifact::tarstream::{
    EntryKind, HeaderPatch, TarEntryInfo, TarHasher, TarSummary, apply_patches, setid_patches,
};
use bbr_artifact::{ArtifactFiles, EntryName};
use futures::FutureExt;
use futures::channel::oneshot;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Formats a byte count like `du -sh` (4 KiB blocks; `4.0K`, `12K`, `3.0M`).
pub fn human_size(bytes: u64) -> String {
    let blocks = bytes.div_ceil(4096) * 4096;
    let units = ["K", "M", "G", "T", "P"];
    let mut value = blocks as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value == 0.0 {
        return "0".to_string();
    }
    if value < 10.0 {
        format!("{:.1}{}", (value * 10.0).ceil() / 10.0, units[unit])
    } else {
        format!("{}{}", value.ceil() as u64, units[unit])
    }
}

fn first_ten(names: &[String]) -> String {
    names.iter().take(10).cloned().collect::<Vec<_>>().join(" ")
}

/// Compares the regular files of a transferred tar with a remote listing; returns the names
/// that differ (missing, extra, or of another size).
/// Names are compared as bytes; the returned names are shown the [`EntryName`] way.
pub fn listing_mismatches(summary: &TarSummary, listing: &[(EntryName, u64)]) -> Vec<String> {
    // Regular files carry their size; hard links (size 0 in the tar) are matched by name.
    let sizes: BTreeMap<&EntryName, u64> = summary
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| (&e.name, e.size))
        .collect();
    let sent: std::collections::BTreeSet<EntryName> = summary.file_names().into_iter().collect();
    let remote: BTreeMap<&EntryName, u64> = listing.iter().map(|(n, s)| (n, *s)).collect();
    let mut names: Vec<&EntryName> = sent
        .iter()
        .filter(|n| match (remote.get(n), sizes.get(n)) {
            (None, _) => true,
            (Some(r), Some(s)) => r != s,
            (Some(_), None) => false,
        })
        .collect();
    names.extend(remote.keys().copied().filter(|n| !sent.contains(*n)));
    names.sort();
    names.iter().map(|n| n.to_string()).collect()
}

/// Compares computed checksums with recorded ones; returns the entries that differ
/// (compared as bytes, shown the [`EntryName`] way).
pub fn checksum_mismatches(actual: &Checksums, expected: &Checksums) -> Vec<String> {
    let mut names: Vec<&EntryName> = actual
        .iter()
        .filter(|(k, v)| expected.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    names.extend(expected.keys().filter(|k| !actual.contains_key(*k)));
    names.sort();
    names.iter().map(|n| n.to_string()).collect()
}

async fn until_stopped<T>(
    stop: &StopSignal,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    let work = work.fuse();
    let stopped = stop.raised().fuse();
    futures::pin_mut!(work, stopped);
    futures::select! {
        out = work => Some(out),
        _ = stopped => None,
    }
}

/// What a verified drain produced.
#[derive(Debug, Clone)]
pub struct Drained {
    /// The per-file checksums, for `metadata`.
    pub checksums: Checksums,
    /// The bytes of the tar stored.
    pub bytes: u64,
}

/// Drains one job's artifact from `instance` into the tar `file_name` of `target` and
/// returns the per-file checksums and the tar's size. The tar is made visible (file synced, upload completed)
/// only after the drain was verified, and the remote job directory is removed only then;
/// after a failed drain the partial tar is removed or its upload aborted, so that an
/// artifact only ever holds verified tars.
pub async fn drain(
    instance: &Instance,
    job: &Job,
    target: &ArtifactTarget,
    file_name: &str,
    stop: &StopSignal,
    reporter: &dyn Reporter,
) -> Result<Drained, BbrError> {
    let fail = |m: String| BbrError::new(ErrorKind::Drain, m);
    let location = target.file_location(file_name);
    let sink = target.create_tar(file_name).map_err(|e| match e {
        TargetError::Local(e) => fail(format!("Error creating file {location}: {e}")),
        TargetError::Stored(e) => fail(format!("Error starting the upload of {location}: {e}")),
    })?;
    let (result, sink) = drain_into(instance, job, sink, &location, stop, reporter).await;
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            discard(sink, target, &location, reporter).await;
            return Err(e);
        }
    };
    let Some(sink) = sink else {
        return Err(fail(format!(
            "writing {location} failed: the artifact writer ended early"
        )));
    };
    let bytes = on_thread(move || sink.finish()).await.map_err(|e| {
        fail(format!(
            "Error streaming backup from remote instance. Error: writing {location} failed: {e}"
        ))
    })?;
    let remote = instance.remote.as_ref();
    let id = instance.identifier();
    let dir = format!("{ARTIFACT_DIRECTORY}/{}", job.backup_artifact_name());
    let removed = remote
        .run_as_root(&commands::remove(&dir))
        .await
        .map_err(|e| {
            fail(format!(
                "Unable to delete artifact directory on instance {id}: {e}"
            ))
        })?;
    if !removed.success() {
        return Err(fail(format!(
            "Unable to delete artifact directory on instance {id}: {}",
            removed.stderr_text()
        )));
    }
    reporter.info(format!(
        "Finished validity checks -- for job {} on {id}...",
        job.name
    ));
    Ok(Drained {
        checksums: summary.file_checksums(),
        bytes,
    })
}

/// Removes the partial tar or aborts its upload, saying so.
async fn discard(
    sink: Option<Box<dyn TarSink>>,
    target: &ArtifactTarget,
    location: &str,
    reporter: &dyn Reporter,
) {
    let Some(sink) = sink else { return };
    let what = if target.is_stored() {
        ("Aborted the upload of", "Could not abort the upload of")
    } else {
        ("Removed", "Could not remove")
    };
    match on_thread(move || sink.abort()).await {
        Ok(()) => reporter.info(format!(
            "{} the incomplete {location} after the failed copy",
            what.0
        )),
        Err(e) => reporter.warn(format!("{} the incomplete {location}: {e}", what.1)),
    }
}

/// Runs a blocking call on a plain thread of its own and waits for it without blocking
/// the caller's executor.
pub(crate) async fn on_thread<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.await
        .unwrap_or_else(|_| Err(std::io::Error::other("the thread ended early")))
}

/// Artifacts whose tar is at most this big are fetched as a captured root command's output
/// instead of a stream on a channel of their own.
const CAPTURED_ARCHIVE_LIMIT: u64 = 4 << 20;

/// Streams the job's tar into `sink` and verifies it; gives the sink back beside the
/// verdict (`None` only if the writer thread died), for [`drain`] to finish or discard.
async fn drain_into(
    instance: &Instance,
    job: &Job,
    sink: Box<dyn TarSink>,
    location: &str,
    stop: &StopSignal,
    reporter: &dyn Reporter,
) -> (Result<TarSummary, BbrError>, Option<Box<dyn TarSink>>) {
    let mut slot = Some(sink);
    let result = stream_and_verify(instance, job, &mut slot, location, stop, reporter).await;
    (result, slot)
}

async fn stream_and_verify(
    instance: &Instance,
    job: &Job,
    slot: &mut Option<Box<dyn TarSink>>,
    location: &str,
    stop: &StopSignal,
    reporter: &dyn Reporter,
) -> Result<TarSummary, BbrError> {
    let remote = instance.remote.as_ref();
    let id = instance.identifier();
    let artifact = job.backup_artifact_name();
    let dir = format!("{ARTIFACT_DIRECTORY}/{artifact}");
    let fail = |m: String| BbrError::new(ErrorKind::Drain, m);

    let size = remote
        .run_as_root(&commands::human_size(&dir))
        .await
        .map_err(|e| fail(format!("Unable to check size of {dir}: {e}")))?;
    if !size.success() {
        return Err(fail(format!(
            "Unable to check size of {dir}: {}",
            size.stderr_text()
        )));
    }
    let human = size
        .stdout_text()
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .to_string();
    let listing = remote
        .run_as_root(&commands::list_files(&dir))
        .await
        .map_err(|e| fail(format!("Unable to list files of {dir} on {id}: {e}")))?;
    if !listing.success() {
        return Err(fail(format!(
            "Unable to list files of {dir} on {id}: {}",
            listing.stderr_text()
        )));
    }
    let listing = commands::parse_file_list(&listing.stdout);
    let total: u64 = listing.iter().map(|(_, s)| s).sum();

    reporter.info(format!(
        "Copying backup -- {human} uncompressed -- for job {} on {id}...",
        job.name
    ));
    let Some(sink) = slot.take() else {
        return Err(fail(format!("{location}: the tar was already written")));
    };
    let (to_writer, written) = spawn_writer(sink);
    let mut progress = reporter.transfer(&job.name, &id, total);
    let result = {
        let mut sink = |chunk: &[u8]| -> std::io::Result<()> {
            // A closed channel means the writer stopped on an error, reported below.
            to_writer
                .send(chunk.to_vec())
                .map_err(|_| std::io::Error::other("the artifact writer stopped"))?;
            progress.advance(chunk.len() as u64);
            Ok(())
        };
        let archive = commands::archive(&dir);
        // A small artifact comes back as the captured output of a root command, which spares
        // the VM the SSH session and `sudo` of a channel of its own (see `Remote::run_as_root`).
        let tar_bytes = total.saturating_add(1024 * (listing.len() as u64 + 2));
        if tar_bytes <= CAPTURED_ARCHIVE_LIMIT {
            until_stopped(stop, async {
                let mut output = remote.run_as_root(&archive).await?;
                let tar = std::mem::take(&mut output.stdout);
                if output.success() {
                    for chunk in tar.chunks(256 * 1024) {
                        sink(chunk).map_err(|source| RemoteError::Sink {
                            host: remote.address().to_string(),
                            source,
                        })?;
                    }
                }
                Ok(output)
            })
            .await
        } else {
            until_stopped(
                stop,
                remote.run_streaming_stdout(&archive.with_sudo(), &mut sink),
            )
            .await
        }
    };
    drop(to_writer);
    // The writer's verdict first: a local write error (a full disk) explains a failed stream.
    let written = match written.await {
        Ok((sink, result)) => {
            *slot = Some(sink);
            result
        }
        Err(_) => Err(WriteFailure::Io("the artifact writer ended early".into())),
    };
    // 100% only for a copy that really completed, never for one cut mid-way.
    progress.finish(
        matches!(&result, Some(Ok(o)) if o.success())
            && !matches!(&written, Err(WriteFailure::Io(_))),
    );
    if let Err(WriteFailure::Io(e)) = &written {
        return Err(fail(format!(
            "Error streaming backup from remote instance. Error: writing {location} failed: {e}"
        )));
    }
    let output = match result {
        None => {
            return Err(fail(format!(
                "Drain of {artifact} from {id} stopped by a termination request"
            )));
        }
        Some(Err(e)) => {
            return Err(fail(format!(
                "Error streaming backup from remote instance. Error: {e}"
            )));
        }
        Some(Ok(o)) => o,
    };
    output.checked().map_err(|e| {
        fail(format!(
            "Error streaming backup from remote instance. Error: {e}"
        ))
    })?;
    reporter.info(format!(
        "Finished copying backup -- for job {} on {id}...",
        job.name
    ));
    reporter.info(format!(
        "Starting validity checks -- for job {} on {id}...",
        job.name
    ));
    let summary = match written {
        Ok(summary) => summary,
        Err(WriteFailure::NotTar(e)) => {
            return Err(fail(format!(
                "Backup is corrupted, transfer of {artifact} from {id} is not a valid tar: {e}"
            )));
        }
        Err(WriteFailure::Incomplete(e)) => {
            return Err(fail(format!(
                "Backup is corrupted, transfer of {artifact} from {id} is incomplete: {e}"
            )));
        }
        Err(WriteFailure::Io(_)) => unreachable!("returned above"),
    };
    if let Some(e) = summary
        .entries
        .iter()
        .find_map(|e| check_entry_kind(e).err())
    {
        return Err(fail(format!(
            "Backup of job {} on {id} refused: {artifact} holds {e}",
            job.name
        )));
    }
    for e in summary.entries.iter().filter(|e| e.has_setid()) {
        reporter.warn(format!(
            "Backup of job {} on {id}: {} has set-uid/set-gid bits (mode {:04o}); they are kept in the artifact and stripped on restore",
            job.name, e.name, e.mode
        ));
    }
    reporter.debug(format!(
        "Comparing transferred files with the listing on {id}"
    ));
    let differ = listing_mismatches(&summary, &listing);
    if !differ.is_empty() {
        return Err(fail(format!(
            "Backup is corrupted, checksum failed for {id} {artifact} - transferred files don't match the files on the instance for [{}]. Checksum failed for {} files in total",
            first_ten(&differ),
            differ.len()
        )));
    }
    Ok(summary)
}

/// Reads the local tar for an upload and hands every chunk both to the transport (as the
/// result of `read`) and to a hasher thread, so that hashing overlaps with sending instead
/// of delaying it (the equivalent of `tee >(openssl dgst -sha256)`).
struct TeeReader {
    /// The tar: a local file read ahead of the upload (an artifact made long before the
    /// restore is on disk only, and waiting for each read stalls the upload), or an
    /// object's stream through the restore gate.
    source: Box<dyn Read + Send>,
    /// Bytes read from `source` so far.
    position: u64,
    /// Header blocks sent rewritten (set-uid/set-gid bits stripped).
    patches: Vec<HeaderPatch>,
    to_hasher: Option<SyncSender<Vec<u8>>>,
    progress: Arc<Mutex<Box<dyn TransferProgress>>>,
}

impl TeeReader {
    fn new(
        source: Box<dyn Read + Send>,
        patches: Vec<HeaderPatch>,
        to_hasher: SyncSender<Vec<u8>>,
        progress: Arc<Mutex<Box<dyn TransferProgress>>>,
    ) -> TeeReader {
        TeeReader {
            source,
            position: 0,
            patches,
            to_hasher: Some(to_hasher),
            progress,
        }
    }
}

/// Chunks the hasher thread may lag behind the network (bounds memory to a few MiB).
const HASHER_QUEUE: usize = 4;

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let offset = self.position;
        let n = self.source.read(buf)?;
        self.position += n as u64;
        apply_patches(&self.patches, offset, &mut buf[..n]);
        if n > 0 {
            if let Some(tx) = &self.to_hasher {
                tx.send(buf[..n].to_vec())
                    .map_err(|_| std::io::Error::other("the hasher thread stopped"))?;
            }
            if let Ok(mut p) = self.progress.lock() {
                p.advance(n as u64);
            }
        } else {
            // End of file: let the hasher finish.
            self.to_hasher = None;
        }
        Ok(n)
    }
}

/// Why the hasher thread rejected the streamed tar (the text follows `Backup is corrupted:
/// <file> `).
#[derive(Debug, thiserror::Error)]
enum HashError {
    /// A block could not be parsed.
    #[error("is not a valid tar: {0}")]
    Invalid(#[source] bbr_artifact::ArtifactError),
    /// The stream ended inside an entry or without its end blocks.
    #[error("is incomplete: {0}")]
    Incomplete(#[source] bbr_artifact::ArtifactError),
}

type HashResult = Result<TarSummary, HashError>;

/// Starts a thread that hashes the tar stream it is sent; its result arrives on the
/// returned receiver once every sender is dropped.
fn spawn_hasher() -> (SyncSender<Vec<u8>>, oneshot::Receiver<HashResult>) {
    let (tx, rx) = sync_channel::<Vec<u8>>(HASHER_QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut hasher = TarHasher::new();
        let mut error = None;
        for chunk in rx {
            if error.is_none()
                && let Err(e) = hasher.feed(&chunk)
            {
                error = Some(HashError::Invalid(e));
            }
        }
        let result = match error {
            Some(e) => Err(e),
            None => hasher.finish().map_err(HashError::Incomplete),
        };
        let _ = done_tx.send(result);
    });
    (tx, done_rx)
}

/// Where a restore reads one tar from.
pub enum TarOrigin<'a> {
    /// A local tar file; `setid` are the entries the structure check found with
    /// set-uid/set-gid bits, whose headers are sent without those bits.
    File {
        /// The tar.
        path: &'a Path,
        /// Its set-uid/set-gid entries.
        setid: &'a [TarEntryInfo],
    },
    /// The object `name` of a stored artifact, `size` bytes as listed. Its headers are
    /// checked in the stream, before they reach the VM (see [`bbr_artifact::gate`]).
    Stored {
        /// The artifact.
        files: Arc<dyn ArtifactFiles + Send + Sync>,
        /// Shown in messages (the object's URL).
        location: String,
        /// The object's name in the artifact.
        name: String,
        /// Its size.
        size: u64,
    },
}

impl TarOrigin<'_> {
    fn file_name(&self) -> String {
        match self {
            TarOrigin::File { path, .. } => path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            // Named by its URL: the operator finds it with the store's own tools.
            TarOrigin::Stored { location, .. } => location.clone(),
        }
    }
}

/// A tar opened for an upload.
struct OpenedTar {
    reader: Box<dyn Read + Send>,
    bytes: u64,
    patches: Vec<HeaderPatch>,
    /// What the gate saw in the stream (stored tars): the set-uid/set-gid entries it
    /// stripped, its refusal.
    gate: Option<bbr_artifact::GateReport>,
}

async fn open_tar(origin: &TarOrigin<'_>) -> Result<OpenedTar, BbrError> {
    let fail = BbrError::general;
    match origin {
        TarOrigin::File { path, setid } => {
            let file = File::open(path).map_err(|e| {
                fail(format!(
                    "Error reading artifact file {}: {e}",
                    path.display()
                ))
            })?;
            let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            let patches = setid_patches(path, setid)
                .map_err(|e| fail(format!("Backup is corrupted: {e}")))?;
            Ok(OpenedTar {
                reader: Box::new(ArtifactFileReader::new(file)),
                bytes,
                patches,
                gate: None,
            })
        }
        TarOrigin::Stored {
            files,
            location,
            name,
            size,
        } => {
            let (files, object) = (files.clone(), name.clone());
            // The store's reads block: open it off the executor.
            let reader = on_thread(move || files.open(&object))
                .await
                .map_err(|e| fail(format!("Error reading artifact file {location}: {e}")))?;
            let gate = bbr_artifact::TarGate::new(reader, location.clone());
            let report = gate.report();
            Ok(OpenedTar {
                reader: Box::new(gate),
                bytes: *size,
                patches: Vec::new(),
                gate: Some(report),
            })
        }
    }
}

/// Uploads the tar at `origin` for `job` to `instance`, verifying it against `expected`
/// while it streams: headers of set-uid/set-gid entries are sent without those bits, and
/// a stored tar's entries are checked before they reach the VM. Marks the instance's
/// artifact directory as created.
pub async fn upload(
    instance: &Instance,
    job: &Job,
    origin: &TarOrigin<'_>,
    expected: &Checksums,
    stop: &StopSignal,
    reporter: &dyn Reporter,
) -> Result<(), BbrError> {
    let remote = instance.remote.as_ref();
    let id = instance.index_identifier();
    let artifact = job.restore_artifact_name();
    let dir = format!("{ARTIFACT_DIRECTORY}/{artifact}");
    let file_name = origin.file_name();
    let fail = BbrError::general;

    let OpenedTar {
        reader: source,
        bytes,
        patches,
        gate,
    } = open_tar(origin).await?;
    reporter.info(format!(
        "Copying backup -- {} uncompressed -- for job {} on {id}...",
        human_size(bytes),
        job.name
    ));
    instance.mark_artifact_dir_created();
    run_as_root_checked(remote, &commands::make_directory(&dir))
        .await
        .map_err(|e| {
            fail(format!(
                "Creating backup directory on the remote failed: {e}"
            ))
        })?;
    for p in &patches {
        reporter.warn(format!(
            "Restoring {} of {file_name} on {id} without its set-uid/set-gid bits (mode {:04o} becomes {:04o})",
            p.entry,
            p.old_mode,
            p.old_mode & !bbr_artifact::tarstream::SETID_BITS
        ));
    }
    let progress = Arc::new(Mutex::new(reporter.transfer(&job.name, &id, bytes)));
    let (to_hasher, hashed) = spawn_hasher();
    let reader = TeeReader::new(source, patches, to_hasher, progress.clone());
    let result = until_stopped(
        stop,
        remote.run_with_stdin(&commands::extract(&dir).with_sudo(), Box::new(reader)),
    )
    .await;
    if let Ok(mut p) = progress.lock() {
        p.finish(matches!(&result, Some(Ok(o)) if o.success()));
    }
    let output = match result {
        None => {
            return Err(fail(format!(
                "Upload of {file_name} to {id} stopped by a termination request"
            )));
        }
        Some(Err(e)) => {
            // A refused entry: the gate's own words (the VM's tar saw none of it).
            if let Some(refusal) = gate.as_ref().and_then(|g| g.refusal()) {
                return Err(fail(refusal.to_string()));
            }
            return Err(fail(format!("{e}")));
        }
        Some(Ok(o)) => o,
    };
    if let Some(refusal) = gate.as_ref().and_then(|g| g.refusal()) {
        return Err(fail(refusal.to_string()));
    }
    for p in gate.iter().flat_map(|g| g.stripped()) {
        reporter.warn(format!(
            "Restoring {} of {file_name} on {id} without its set-uid/set-gid bits (mode {:04o} becomes {:04o})",
            p.entry,
            p.old_mode,
            p.old_mode & !bbr_artifact::tarstream::SETID_BITS
        ));
    }
    // Every byte sent was also given to the hasher; wait for it to catch up.
    let summary = match hashed.await {
        Ok(Ok(summary)) => summary,
        Ok(Err(e)) => return Err(fail(format!("Backup is corrupted: {file_name} {e}"))),
        Err(_) => {
            return Err(fail(format!(
                "hashing {file_name} failed: the hasher thread ended early"
            )));
        }
    };
    if let Some(e) = summary.entries.iter().find(|e| e.has_setid()) {
        return Err(fail(format!(
            "Backup is corrupted: {file_name} changed since it was checked: {} was sent with set-uid/set-gid bits",
            e.name
        )));
    }
    let differ = checksum_mismatches(&summary.file_checksums(), expected);
    if !differ.is_empty() {
        return Err(fail(format!(
            "Backup is corrupted: checksum mismatch in {file_name} for [{}] ({} files in total)",
            first_ten(&differ),
            differ.len()
        )));
    }
    output
        .checked()
        .map_err(|e| fail(format!("extracting {file_name} on {id} failed: {e}")))?;
    let listing = remote
        .run_as_root(&commands::list_files(&dir))
        .await
        .map_err(|e| fail(format!("Unable to list files of {dir} on {id}: {e}")))?;
    let differ = listing_mismatches(&summary, &commands::parse_file_list(&listing.stdout));
    if !listing.success() || !differ.is_empty() {
        return Err(fail(format!(
            "Backup couldn't be transferred, checksum failed for {id} {artifact} - checksums don't match for [{}]. Checksum failed for {} files in total",
            first_ten(&differ),
            differ.len()
        )));
    }
    reporter.info(format!(
        "Finished copying backup for job {} on {id}.",
        job.name
    ));
    Ok(())
}

/// Why the drain's writer thread did not produce a verified summary.
enum WriteFailure {
    /// Writing to the artifact (a local file, an upload) failed.
    Io(String),
    /// The stream is not a tar.
    NotTar(String),
    /// The tar stream ended early.
    Incomplete(String),
}

type WriteResult = Result<TarSummary, WriteFailure>;

/// What the drain's writer thread hands back: the sink, to finish or discard, and its
/// verdict on the stream.
type Written = (Box<dyn TarSink>, WriteResult);

/// Starts the thread that writes a drained stream into `sink` and hashes it as it goes,
/// so that neither delays the SSH session that receives it. Once every sender is dropped it
/// flushes the sink and hands it back with the summary (or the failure): whether the tar
/// is kept is decided by the caller, after the remote side reported success.
fn spawn_writer(mut sink: Box<dyn TarSink>) -> (SyncSender<Vec<u8>>, oneshot::Receiver<Written>) {
    let (tx, rx) = sync_channel::<Vec<u8>>(HASHER_QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut hasher = TarHasher::new();
        let mut not_tar = None;
        let mut write_error = None;
        while let Ok(chunk) = rx.recv() {
            if let Err(e) = sink.write_all(&chunk) {
                write_error = Some(e.to_string());
                break;
            }
            if not_tar.is_none()
                && let Err(e) = hasher.feed(&chunk)
            {
                not_tar = Some(e.to_string());
            }
        }
        // Dropping the receiver makes the sender fail, which stops a stream cut short by
        // a write error.
        drop(rx);
        if let Some(e) = write_error {
            let _ = done_tx.send((sink, Err(WriteFailure::Io(e))));
            return;
        }
        let flushed = sink.flush().map_err(|e| e.to_string());
        let result = match (flushed, not_tar) {
            (Err(e), _) => Err(WriteFailure::Io(e)),
            (Ok(()), Some(e)) => Err(WriteFailure::NotTar(e)),
            (Ok(()), None) => hasher
                .finish()
                .map_err(|e| WriteFailure::Incomplete(e.to_string())),
        };
        let _ = done_tx.send((sink, result));
    });
    (tx, done_rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_like_du() {
        assert_eq!(human_size(0), "0");
        assert_eq!(human_size(17), "4.0K");
        assert_eq!(human_size(12 * 1024), "12K");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0M");
        assert_eq!(human_size(3 * 1024 * 1024 + 1), "3.1M");
        assert_eq!(human_size(1 << 30), "1.0G");
    }

    #[test]
    fn checksum_comparison_names_entries() {
        let a: Checksums = [("./a".into(), "1".to_string()), ("./b".into(), "2".into())].into();
        let e: Checksums = [("./a".into(), "1".to_string()), ("./c".into(), "3".into())].into();
        assert_eq!(checksum_mismatches(&a, &e), vec!["./b", "./c"]);
        assert!(checksum_mismatches(&a, &a).is_empty());
    }

    #[test]
    fn non_utf8_names_are_compared_as_bytes_and_shown_escaped() {
        let latin1 = EntryName::from(b"./caf\xe9".to_vec());
        let a: Checksums = [(latin1.clone(), "1".to_string())].into();
        let e: Checksums = [(EntryName::from("./caf\u{e9}"), "1".to_string())].into();
        // The UTF-8 spelling of the same text is another name; byte order (0xc3 < 0xe9).
        assert_eq!(
            checksum_mismatches(&a, &e),
            vec!["./caf\u{e9}", "./caf\\xe9"]
        );
        assert!(checksum_mismatches(&a, &a).is_empty());
    }
}
