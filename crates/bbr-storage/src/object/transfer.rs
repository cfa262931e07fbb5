//! Streaming uploads with bounded memory: reading parts from a file or a reader, sizing them,
//! and driving an `object_store` multipart upload with a bounded number of parts in flight,
//! aborting it on failure or cancellation.

// Unsafe code is denied workspace-wide; this module calls libc directly. Each block
// carries its own SAFETY comment.
#![allow(unsafe_code)]

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::common::{Ctx, object_path};
use crate::StorageError;

const MIB: usize = 1024 * 1024;
/// S3's minimum part size (all parts but the last).
const MIN_PART: usize = 5 * MIB;
/// GCS resumable chunks must be multiples of this.
const GRANULE: usize = 256 * 1024;
/// Stay well below S3's 10,000-part limit for files of known size.
const TARGET_MAX_PARTS: u64 = 9_000;
/// For streams of unknown size the part size doubles every this many parts…
const GROWTH_EVERY: usize = 1_000;
/// …at most this many times (8 MiB → 512 MiB).
const MAX_DOUBLINGS: usize = 6;

/// A part size of at least 5 MiB, rounded up to a multiple of 256 KiB.
pub(crate) fn clamp_part_size(bytes: usize) -> usize {
    bytes.max(MIN_PART).div_ceil(GRANULE) * GRANULE
}

/// A bound on the bytes of parts in flight shared by every upload given it, so that
/// several uploads at once (one per VM of a backup) stay within one memory bound whatever
/// their number. Counted in whole MiB; a part larger than the whole budget waits for all
/// of it.
#[derive(Clone, Debug)]
pub struct UploadBudget {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    mib: u32,
}

impl UploadBudget {
    /// A budget of `bytes` (rounded up to whole MiB, at least one).
    pub fn new(bytes: usize) -> UploadBudget {
        let mib = u32::try_from(bytes.div_ceil(MIB).max(1)).unwrap_or(u32::MAX >> 4);
        UploadBudget {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(mib as usize)),
            mib,
        }
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> usize {
        self.mib as usize * MIB
    }

    /// Waits until a part of `bytes` fits; the budget is given back when the permit drops.
    async fn reserve(&self, bytes: usize) -> tokio::sync::OwnedSemaphorePermit {
        let want = u32::try_from(bytes.div_ceil(MIB).max(1))
            .unwrap_or(u32::MAX)
            .min(self.mib);
        self.permits
            .clone()
            .acquire_many_owned(want)
            .await
            .expect("the budget's semaphore is never closed")
    }
}

/// How big each part is and how many may be in flight.
#[derive(Clone, Debug)]
pub(crate) struct PartPlan {
    base: usize,
    in_flight_bytes: usize,
    known_size: bool,
    /// Shared with other uploads, when set.
    budget: Option<UploadBudget>,
}

impl PartPlan {
    /// A plan for an upload of `size` bytes (`None`: unknown, a stream).
    pub(crate) fn new(part_size: usize, in_flight_bytes: usize, size: Option<u64>) -> Self {
        let mut base = clamp_part_size(part_size);
        if let Some(size) = size {
            let needed = usize::try_from(size.div_ceil(TARGET_MAX_PARTS)).unwrap_or(usize::MAX);
            if needed > base {
                base = clamp_part_size(needed.div_ceil(MIB).saturating_mul(MIB));
            }
        }
        PartPlan {
            base,
            in_flight_bytes,
            known_size: size.is_some(),
            budget: None,
        }
    }

    /// Also keep the parts in flight within `budget`, shared with other uploads.
    pub(crate) fn within(mut self, budget: Option<UploadBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Size of part number `index` (0-based).
    pub(crate) fn part_size(&self, index: usize) -> usize {
        if self.known_size {
            self.base
        } else {
            let doublings = (index / GROWTH_EVERY).min(MAX_DOUBLINGS);
            self.base.saturating_mul(1 << doublings)
        }
    }

    /// How many parts of `part_size` may be uploading at once (at least one).
    pub(crate) fn concurrency(&self, part_size: usize) -> usize {
        (self.in_flight_bytes / part_size.max(1)).max(1)
    }
}

/// One part's buffer: an anonymous private mapping, so that a finished part's memory goes
/// straight back to the kernel instead of lingering in malloc arenas (which, with parts
/// allocated on several threads, raised peak RSS by about half again).
struct PartBuf {
    ptr: std::ptr::NonNull<u8>,
    cap: usize,
    len: usize,
}

// SAFETY: the mapping is owned exclusively by this value; it is only written through
// `&mut self` and only read (immutably) once frozen into `Bytes`.
unsafe impl Send for PartBuf {}
// SAFETY: see above; shared access is read-only.
unsafe impl Sync for PartBuf {}

impl PartBuf {
    /// A zero-filled buffer of `cap` bytes, or `None` (caller falls back to the heap).
    fn new(cap: usize) -> Option<PartBuf> {
        if cap == 0 {
            return None;
        }
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                cap,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        std::ptr::NonNull::new(p.cast::<u8>()).map(|ptr| PartBuf { ptr, cap, len: 0 })
    }

    /// The unfilled rest of the buffer.
    fn spare(&mut self) -> &mut [u8] {
        // SAFETY: `len <= cap` and the mapping is `cap` bytes, readable and writable.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len), self.cap - self.len)
        }
    }

    fn is_full(&self) -> bool {
        self.len == self.cap
    }
}

impl AsRef<[u8]> for PartBuf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialised (zero-filled mapping, then written).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PartBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `new`, once.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.cap);
        }
    }
}

/// Fill a buffer of `max` bytes with `read` until full or end of data.
fn fill_blocking(
    max: usize,
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
) -> std::io::Result<Bytes> {
    let Some(mut buf) = PartBuf::new(max) else {
        let mut v = vec![0u8; max];
        let mut filled = 0;
        while filled < max {
            match read(&mut v[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        v.truncate(filled);
        return Ok(Bytes::from(v));
    };
    while !buf.is_full() {
        match read(buf.spare()) {
            Ok(0) => break,
            Ok(n) => buf.len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Bytes::from_owner(buf))
}

/// Something that yields the data to upload in chunks.
pub(crate) trait ChunkSource: Send {
    /// The next chunk of exactly `max` bytes, or fewer at the end of the data (empty: done).
    fn next_chunk(
        &mut self,
        max: usize,
    ) -> impl Future<Output = Result<Bytes, StorageError>> + Send;
}

/// A local file, read with large blocking reads straight into the part buffers: exactly the
/// size seen when it was opened. A file that grows meanwhile is uploaded as that prefix (as
/// `aws s3 cp` does: it sizes the parts once, from the size at the start), so every part but
/// the last keeps its full size; one that shrinks fails, naming it, rather than upload less.
#[derive(Debug)]
pub(crate) struct FileSource {
    file: Option<std::fs::File>,
    path: PathBuf,
    size: u64,
    remaining: u64,
}

impl FileSource {
    /// Upload `opened`, exactly `opened.size` bytes of it.
    pub(crate) fn new(opened: crate::local::OpenedFile) -> Self {
        FileSource {
            file: Some(opened.file),
            path: opened.path,
            size: opened.size,
            remaining: opened.size,
        }
    }

    /// Open `path` (a regular file, opened without blocking; see
    /// [`crate::local::open_regular`]) and return it with its size.
    pub(crate) async fn open(path: &Path) -> Result<(Self, u64), StorageError> {
        let owned = path.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || crate::local::open_regular(&owned))
            .await
            .map_err(|e| StorageError::LocalRead {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let size = opened.size;
        Ok((FileSource::new(opened), size))
    }
}

impl ChunkSource for FileSource {
    async fn next_chunk(&mut self, max: usize) -> Result<Bytes, StorageError> {
        let path = self.path.clone();
        let want = usize::try_from(self.remaining).map_or(max, |r| r.min(max));
        if want == 0 {
            return Ok(Bytes::new());
        }
        let Some(file) = self.file.take() else {
            return Err(StorageError::LocalRead {
                path,
                source: std::io::Error::other("an earlier read failed"),
            });
        };
        let joined = tokio::task::spawn_blocking(move || {
            let mut limited = file.take(want as u64);
            let r = fill_blocking(want, |b| limited.read(b));
            (limited.into_inner(), r)
        })
        .await;
        match joined {
            Ok((file, Ok(buf))) => {
                if buf.len() < want {
                    let read = self.size - self.remaining + buf.len() as u64;
                    return Err(StorageError::LocalRead {
                        path,
                        source: std::io::Error::other(format!(
                            "the file shrank while it was read ({read} of {} bytes)",
                            self.size
                        )),
                    });
                }
                self.remaining -= buf.len() as u64;
                self.file = Some(file);
                Ok(buf)
            }
            Ok((_, Err(source))) => Err(StorageError::LocalRead { path, source }),
            Err(e) => Err(StorageError::LocalRead {
                path,
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

/// Any async reader.
pub(crate) struct ReaderSource<R> {
    reader: R,
}

impl<R> ReaderSource<R> {
    pub(crate) fn new(reader: R) -> Self {
        ReaderSource { reader }
    }
}

impl<R: AsyncRead + Unpin + Send> ChunkSource for ReaderSource<R> {
    async fn next_chunk(&mut self, max: usize) -> Result<Bytes, StorageError> {
        let failed = |source| StorageError::LocalRead {
            path: PathBuf::from("<stream>"),
            source,
        };
        let Some(mut buf) = PartBuf::new(max) else {
            let mut buf = BytesMut::with_capacity(max);
            while buf.len() < max {
                let mut limited = (&mut self.reader).take((max - buf.len()) as u64);
                match limited.read_buf(&mut buf).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(failed(e)),
                }
            }
            return Ok(buf.freeze());
        };
        while !buf.is_full() {
            match self.reader.read(buf.spare()).await {
                Ok(0) => break,
                Ok(n) => buf.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(e)),
            }
        }
        Ok(Bytes::from_owner(buf))
    }
}

/// Run `fut` unless `cancel` fires first (checked first, so a token cancelled beforehand wins).
pub(crate) async fn with_cancel<T>(
    cancel: &CancellationToken,
    fut: impl Future<Output = Result<T, StorageError>>,
) -> Result<T, StorageError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(StorageError::Cancelled),
        r = fut => r,
    }
}

/// Upload `source` to `key` through an `object_store` store: a single PUT when the data fits
/// in one part, otherwise a multipart upload with a bounded number of parts in flight that is
/// aborted on any failure or on cancellation.
pub(crate) async fn upload_multipart(
    store: &dyn ObjectStore,
    key: &str,
    source: &mut impl ChunkSource,
    plan: &PartPlan,
    cancel: &CancellationToken,
    ctx: &Ctx<'_>,
) -> Result<u64, StorageError> {
    let path = object_path(key)?;
    let first_size = plan.part_size(0);
    let first = with_cancel(cancel, source.next_chunk(first_size)).await?;
    if first.len() < first_size {
        let n = first.len() as u64;
        with_cancel(cancel, async {
            store
                .put(&path, PutPayload::from(first))
                .await
                .map_err(|e| ctx.object_store_error("uploading", key, e))
        })
        .await?;
        return Ok(n);
    }

    // Not cancellable midway: a cancelled request could still create the upload on the
    // server, and without its id it could never be aborted. It is one short request.
    let mut guard =
        AbortOnDrop(Some(store.put_multipart(&path).await.map_err(|e| {
            ctx.object_store_error("starting a multipart upload of", key, e)
        })?));
    let Some(upload) = guard.0.as_mut() else {
        return Err(ctx.other(format!("uploading {key:?}: the multipart upload vanished")));
    };
    if cancel.is_cancelled() {
        let _ = tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await;
        guard.0 = None;
        return Err(StorageError::Cancelled);
    }
    let mut tasks: JoinSet<object_store::Result<()>> = JoinSet::new();
    let mut total = 0u64;
    let pumped = with_cancel(
        cancel,
        pump_parts(
            upload.as_mut(),
            &mut tasks,
            first,
            source,
            plan,
            &mut total,
            key,
            ctx,
        ),
    )
    .await;
    let finished = match pumped {
        Ok(()) => {
            with_cancel(cancel, async {
                upload
                    .complete()
                    .await
                    .map(|_| ())
                    .map_err(|e| ctx.object_store_error("completing the upload of", key, e))
            })
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = finished {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        // Best effort: the error that made us abort is the one worth reporting.
        let _ = tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await;
        guard.0 = None;
        return Err(e);
    }
    guard.0 = None;
    Ok(total)
}

/// How long an abort request may take before it is given up.
const ABORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Owns a started multipart upload until it is completed or aborted (then emptied). If the
/// future that drives the upload is dropped instead (a `select!` branch that lost, an
/// aborted task), the abort is sent from a detached task on the current tokio runtime, so
/// the parts already sent do not linger as a pending upload. Best effort: with no runtime
/// left (the process is exiting) nothing is sent; the store's own expiry (or a bucket
/// lifecycle rule) then removes the pending upload, which is never visible as an object.
struct AbortOnDrop(Option<Box<dyn MultipartUpload>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(mut upload) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await;
            });
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn pump_parts(
    upload: &mut dyn MultipartUpload,
    tasks: &mut JoinSet<object_store::Result<()>>,
    first: Bytes,
    source: &mut impl ChunkSource,
    plan: &PartPlan,
    total: &mut u64,
    key: &str,
    ctx: &Ctx<'_>,
) -> Result<(), StorageError> {
    let check = |joined: Result<object_store::Result<()>, tokio::task::JoinError>| match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ctx.object_store_error("uploading a part of", key, e)),
        Err(e) => Err(ctx.other(format!("uploading a part of {key:?}: {e}"))),
    };
    let mut index = 0usize;
    let mut chunk = first;
    loop {
        *total += chunk.len() as u64;
        let limit = plan.concurrency(plan.part_size(index));
        while let Some(done) = tasks.try_join_next() {
            check(done)?;
        }
        while tasks.len() >= limit {
            if let Some(done) = tasks.join_next().await {
                check(done)?;
            }
        }
        let reserved = match &plan.budget {
            Some(budget) => Some(budget.reserve(chunk.len()).await),
            None => None,
        };
        let part = upload.put_part(PutPayload::from(chunk));
        tasks.spawn(async move {
            let sent = part.await;
            // The part's memory is freed once sent: give its share of the budget back.
            drop(reserved);
            sent
        });
        index += 1;
        chunk = source.next_chunk(plan.part_size(index)).await?;
        if chunk.is_empty() {
            break;
        }
    }
    while let Some(done) = tasks.join_next().await {
        check(done)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shared_budget_holds_back_parts_until_others_are_sent() {
        let budget = UploadBudget::new(16 * MIB);
        assert_eq!(budget.bytes(), 16 * MIB);
        let first = budget.reserve(8 * MIB).await;
        let _second = budget.reserve(8 * MIB).await;
        // Full: a third part waits until one of the others is given back.
        let mut third = Box::pin(budget.reserve(8 * MIB));
        assert!(futures::poll!(&mut third).is_pending());
        drop(first);
        let _third = third.await;
        // A part bigger than the whole budget waits for all of it, then goes alone.
        let other = UploadBudget::new(4 * MIB);
        let big = other.reserve(64 * MIB).await;
        assert_eq!(other.permits.available_permits(), 0);
        drop(big);
        assert_eq!(other.permits.available_permits(), 4);
    }

    #[test]
    fn part_sizes_are_clamped_and_aligned() {
        assert_eq!(clamp_part_size(1), 5 * MIB);
        assert_eq!(clamp_part_size(8 * MIB), 8 * MIB);
        assert_eq!(clamp_part_size(8 * MIB + 1), 8 * MIB + GRANULE);
    }

    #[test]
    fn known_sizes_fit_in_9000_parts() {
        let p = PartPlan::new(8 * MIB, 32 * MIB, Some(1 << 30));
        assert_eq!(p.part_size(0), 8 * MIB);
        assert_eq!(p.part_size(5000), 8 * MIB);
        assert_eq!(p.concurrency(p.part_size(0)), 4);
        let huge: u64 = 200 * (1 << 30);
        let p = PartPlan::new(8 * MIB, 32 * MIB, Some(huge));
        assert!(p.part_size(0) as u64 * TARGET_MAX_PARTS >= huge);
        assert_eq!(p.part_size(0) % MIB, 0);
        assert_eq!(p.concurrency(p.part_size(0)), 1);
    }

    #[test]
    fn unknown_sizes_grow_to_reach_terabytes_in_10000_parts() {
        let p = PartPlan::new(8 * MIB, 32 * MIB, None);
        assert_eq!(p.part_size(999), 8 * MIB);
        assert_eq!(p.part_size(1000), 16 * MIB);
        assert_eq!(p.part_size(9999), 512 * MIB);
        let total: u64 = (0..10_000).map(|i| p.part_size(i) as u64).sum();
        assert!(total > (1u64 << 40), "{total}");
    }

    #[tokio::test]
    async fn reader_source_yields_full_chunks() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut src = ReaderSource::new(&data[..]);
        assert_eq!(src.next_chunk(40).await.unwrap().len(), 40);
        assert_eq!(src.next_chunk(40).await.unwrap().len(), 40);
        assert_eq!(&src.next_chunk(40).await.unwrap()[..], &data[80..]);
        assert!(src.next_chunk(40).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn file_source_reads_everything_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, vec![7u8; 1000]).unwrap();
        let (mut src, size) = FileSource::open(&f).await.unwrap();
        assert_eq!(size, 1000);
        assert_eq!(src.next_chunk(600).await.unwrap().len(), 600);
        assert_eq!(src.next_chunk(600).await.unwrap().len(), 400);
        assert!(src.next_chunk(600).await.unwrap().is_empty());
        let missing = dir.path().join("missing");
        let err = FileSource::open(&missing).await.unwrap_err();
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn file_source_reads_the_size_seen_at_open_and_fails_on_shrinking() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("grows");
        std::fs::write(&f, vec![1u8; 1000]).unwrap();
        let (mut src, size) = FileSource::open(&f).await.unwrap();
        assert_eq!(size, 1000);
        assert_eq!(src.next_chunk(600).await.unwrap().len(), 600);
        let mut w = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
        w.write_all(&[2u8; 5000]).unwrap();
        let rest = src.next_chunk(600).await.unwrap();
        assert_eq!(rest.len(), 400);
        assert!(rest.iter().all(|b| *b == 1));
        assert!(src.next_chunk(600).await.unwrap().is_empty());

        let g = dir.path().join("shrinks");
        std::fs::write(&g, vec![1u8; 1000]).unwrap();
        let (mut src, _) = FileSource::open(&g).await.unwrap();
        assert_eq!(src.next_chunk(600).await.unwrap().len(), 600);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&g)
            .unwrap()
            .set_len(700)
            .unwrap();
        let err = src.next_chunk(600).await.unwrap_err().to_string();
        assert!(
            err.contains("shrank") && err.contains("700 of 1000"),
            "{err}"
        );
        assert!(err.contains(&*g.to_string_lossy()), "{err}");
    }
}
