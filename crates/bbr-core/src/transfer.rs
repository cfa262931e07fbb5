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
use crate::commands;
use crate::error::{BbrError, ErrorKind};
use crate::model::{Instance, Job};
use crate::remote::{RemoteError, run_as_root_checked};
use crate::report::{Reporter, ReporterExt, TransferProgress};
use crate::stop::StopSignal;
use bbr_artifact::EntryName;
use bbr_artifact::artifact_file::{ArtifactFileReader, ArtifactFileWriter};
use bbr_artifact::metadata::Checksums;
use bbr_artifact::safety::check_entry_kind;
use bbr_artifact::tarstream::{
    EntryKind, HeaderPatch, TarEntryInfo, TarHasher, TarSummary, apply_patches, setid_patches,
};
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

/// Drains one job's artifact from `instance` into `target` (a `.tar` path) and returns the
/// per-file checksums. The remote job directory is removed after a verified drain; after a
/// failed one the partial local file is removed, so that the artifact directory only holds
/// verified tars (the ones `metadata` lists).
pub async fn drain(
    instance: &Instance,
    job: &Job,
    target: &Path,
    stop: &StopSignal,
    reporter: &dyn Reporter,
) -> Result<Checksums, BbrError> {
    let result = drain_into(instance, job, target, stop, reporter).await;
    if result.is_err() && target.exists() {
        match std::fs::remove_file(target) {
            Ok(()) => reporter.info(format!(
                "Removed the incomplete {} after the failed copy",
                target.display()
            )),
            Err(e) => reporter.warn(format!(
                "Could not remove the incomplete {}: {e}",
                target.display()
            )),
        }
    }
    result
}

/// Artifacts whose tar is at most this big are fetched as a captured root command's output
/// instead of a stream on a channel of their own.
const CAPTURED_ARCHIVE_LIMIT: u64 = 4 << 20;

async fn drain_into(
    instance: &Instance,
    job: &Job,
    target: &Path,
    stop: &StopSignal,
    reporter: &dyn Reporter,
) -> Result<Checksums, BbrError> {
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
    let file = File::create(target)
        .map_err(|e| fail(format!("Error creating file {}: {e}", target.display())))?;
    let (to_writer, written) = spawn_writer(file);
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
    let written = written
        .await
        .unwrap_or_else(|_| Err(WriteFailure::Io("the artifact writer ended early".into())));
    // 100% only for a copy that really completed, never for one cut mid-way.
    progress.finish(
        matches!(&result, Some(Ok(o)) if o.success())
            && !matches!(&written, Err(WriteFailure::Io(_))),
    );
    if let Err(WriteFailure::Io(e)) = &written {
        return Err(fail(format!(
            "Error streaming backup from remote instance. Error: writing {} failed: {e}",
            target.display()
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
    Ok(summary.file_checksums())
}

/// Reads the local tar for an upload and hands every chunk both to the transport (as the
/// result of `read`) and to a hasher thread, so that hashing overlaps with sending instead
/// of delaying it (the equivalent of `tee >(openssl dgst -sha256)`).
struct TeeReader {
    /// The artifact, read ahead of the upload: an artifact made long before the restore is
    /// on disk only, and waiting for each read stalls the upload.
    file: ArtifactFileReader,
    /// Header blocks sent rewritten (set-uid/set-gid bits stripped).
    patches: Vec<HeaderPatch>,
    to_hasher: Option<SyncSender<Vec<u8>>>,
    progress: Arc<Mutex<Box<dyn TransferProgress>>>,
}

impl TeeReader {
    fn new(
        file: File,
        patches: Vec<HeaderPatch>,
        to_hasher: SyncSender<Vec<u8>>,
        progress: Arc<Mutex<Box<dyn TransferProgress>>>,
    ) -> TeeReader {
        TeeReader {
            file: ArtifactFileReader::new(file),
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
        let offset = self.file.position();
        let n = self.file.read(buf)?;
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

/// Uploads the local `source` tar for `job` to `instance`, verifying it against `expected`
/// while it streams. `setid` are the entries the structure check found with set-uid/set-gid
/// bits: their headers are sent without those bits. Marks the instance's artifact directory
/// as created.
pub async fn upload(
    instance: &Instance,
    job: &Job,
    source: &Path,
    expected: &Checksums,
    setid: &[TarEntryInfo],
    stop: &StopSignal,
    reporter: &dyn Reporter,
) -> Result<(), BbrError> {
    let remote = instance.remote.as_ref();
    let id = instance.index_identifier();
    let artifact = job.restore_artifact_name();
    let dir = format!("{ARTIFACT_DIRECTORY}/{artifact}");
    let file_name = source
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fail = BbrError::general;

    let file = File::open(source).map_err(|e| {
        fail(format!(
            "Error reading artifact file {}: {e}",
            source.display()
        ))
    })?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let patches =
        setid_patches(source, setid).map_err(|e| fail(format!("Backup is corrupted: {e}")))?;
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
    let reader = TeeReader::new(file, patches, to_hasher, progress.clone());
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
        Some(Err(e)) => return Err(fail(format!("{e}"))),
        Some(Ok(o)) => o,
    };
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
    /// Writing or syncing the local file failed.
    Io(String),
    /// The stream is not a tar.
    NotTar(String),
    /// The tar stream ended early.
    Incomplete(String),
}

type WriteResult = Result<TarSummary, WriteFailure>;

/// Starts the thread that writes a drained stream to `file` and hashes it as it goes, so
/// that neither delays the SSH session that receives it; the summary (or failure) arrives
/// once every sender is dropped and the file is synced.
fn spawn_writer(file: File) -> (SyncSender<Vec<u8>>, oneshot::Receiver<WriteResult>) {
    let (tx, rx) = sync_channel::<Vec<u8>>(HASHER_QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut writer = ArtifactFileWriter::new(file);
        let mut hasher = TarHasher::new();
        let mut not_tar = None;
        for chunk in rx.iter() {
            if let Err(e) = writer.write_all(&chunk) {
                // Dropping the receiver makes the sink fail, which stops the stream.
                let _ = done_tx.send(Err(WriteFailure::Io(e.to_string())));
                return;
            }
            if not_tar.is_none()
                && let Err(e) = hasher.feed(&chunk)
            {
                not_tar = Some(e.to_string());
            }
        }
        let synced = writer.finish().map_err(|e| e.to_string());
        let result = match (synced, not_tar) {
            (Err(e), _) => Err(WriteFailure::Io(e)),
            (Ok(()), Some(e)) => Err(WriteFailure::NotTar(e)),
            (Ok(()), None) => hasher
                .finish()
                .map_err(|e| WriteFailure::Incomplete(e.to_string())),
        };
        let _ = done_tx.send(result);
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
