//! Page-cache-aware I/O on an artifact's tar files: [`ArtifactFileWriter`] for what a
//! drain writes, [`ArtifactFileReader`] for what a restore uploads.
//!
//! A drain writes each tar once, as a stream, and nothing reads it back soon; a restore
//! reads each tar once, often long after it was written, when it is on disk only. Both
//! tell the kernel so:
//!
//! * the writer starts writeback every [`WRITEBACK_STEP`] bytes (`sync_file_range`) and
//!   drops the previous range, by then on disk, from the page cache
//!   (`POSIX_FADV_DONTNEED`). A drain then holds a few MiB of dirty cache per artifact
//!   instead of the whole artifact, so the kernel recycles recently used pages instead of
//!   allocating cold ones, and the final `fsync` has little left to do;
//! * the reader asks for the next [`PREFETCH_AHEAD`] bytes (`POSIX_FADV_WILLNEED`),
//!   renewed when half of it has been read, so the upload does not wait on each read.
//!
//! Every hint is best effort: on a file where a call fails (a filesystem or file type
//! without `sync_file_range`, a pipe) the bytes are written and read all the same, the
//! pages just stay cached or are read on demand. Linux only, like the rest of bbr.

// Unsafe code is denied workspace-wide; this module calls libc directly. Each block
// carries its own SAFETY comment.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;

/// How much is written between writeback submissions.
pub const WRITEBACK_STEP: u64 = 8 << 20;

/// The writer's buffer: chunks from the network are gathered into writes of this size.
const WRITE_BUFFER: usize = 1 << 20;

/// How far ahead of the reader the file is asked into the page cache.
pub const PREFETCH_AHEAD: u64 = 64 << 20;

/// Writes an artifact tar as a stream (through a 1 MiB buffer), keeping little of it in
/// the page cache; see the [module documentation](self). Call [`finish`](Self::finish)
/// to flush and `fsync` it.
#[derive(Debug)]
pub struct ArtifactFileWriter {
    inner: BufWriter<WritebackFile>,
}

impl ArtifactFileWriter {
    /// Wraps a file opened for writing, positioned at its start (as `File::create` gives).
    pub fn new(file: File) -> ArtifactFileWriter {
        ArtifactFileWriter {
            inner: BufWriter::with_capacity(WRITE_BUFFER, WritebackFile::new(file)),
        }
    }

    /// Writes out the buffer and syncs the file to disk (`fsync`); the file is complete
    /// once this returns `Ok`.
    pub fn finish(self) -> io::Result<()> {
        let file = self.inner.into_inner().map_err(|e| e.into_error())?;
        file.file.sync_all()
    }
}

impl Write for ArtifactFileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The file under the writer's buffer: counts what was written and moves the writeback
/// window every [`WRITEBACK_STEP`] bytes.
#[derive(Debug)]
struct WritebackFile {
    file: File,
    written: u64,
    submitted: u64,
    dropped: u64,
}

impl WritebackFile {
    fn new(file: File) -> WritebackFile {
        WritebackFile {
            file,
            written: 0,
            submitted: 0,
            dropped: 0,
        }
    }

    /// Best effort: a filesystem without `sync_file_range` just keeps the pages cached.
    fn advance_writeback(&mut self) {
        let fd = self.file.as_raw_fd();
        // Wait for the previous submission, then drop it from the cache.
        if self.submitted > self.dropped {
            let (off, len) = (self.dropped as i64, (self.submitted - self.dropped) as i64);
            // SAFETY: plain syscalls on a file descriptor this struct owns; no memory is
            // passed to the kernel.
            let synced = unsafe {
                libc::sync_file_range(
                    fd,
                    off,
                    len,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                )
            };
            if synced == 0 {
                // SAFETY: as above.
                unsafe { libc::posix_fadvise(fd, off, len, libc::POSIX_FADV_DONTNEED) };
            }
            self.dropped = self.submitted;
        }
        let (off, len) = (
            self.submitted as i64,
            (self.written - self.submitted) as i64,
        );
        // SAFETY: as above.
        unsafe { libc::sync_file_range(fd, off, len, libc::SYNC_FILE_RANGE_WRITE) };
        self.submitted = self.written;
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.submitted >= WRITEBACK_STEP {
            self.advance_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Reads an artifact tar from its start, asking the kernel to read ahead of it; see the
/// [module documentation](self). Unbuffered: each `read` is one `read(2)`.
#[derive(Debug)]
pub struct ArtifactFileReader {
    file: File,
    /// Bytes read so far, and how far the kernel was asked to read ahead.
    read: u64,
    prefetched: u64,
}

impl ArtifactFileReader {
    /// Wraps a file opened for reading, positioned at its start (as `File::open` gives).
    pub fn new(file: File) -> ArtifactFileReader {
        ArtifactFileReader {
            file,
            read: 0,
            prefetched: 0,
        }
    }

    /// Bytes read so far: the offset in the file of the next byte `read` returns.
    pub fn position(&self) -> u64 {
        self.read
    }

    /// Best effort `POSIX_FADV_WILLNEED` for the next [`PREFETCH_AHEAD`] bytes, renewed
    /// when half of it has been read.
    fn prefetch(&mut self) {
        if self.read + PREFETCH_AHEAD / 2 < self.prefetched {
            return;
        }
        let start = self.prefetched.max(self.read);
        // SAFETY: a plain syscall on a file descriptor this struct owns; no memory is
        // passed to the kernel.
        unsafe {
            libc::posix_fadvise(
                self.file.as_raw_fd(),
                start as i64,
                PREFETCH_AHEAD as i64,
                libc::POSIX_FADV_WILLNEED,
            )
        };
        self.prefetched = start + PREFETCH_AHEAD;
    }
}

impl Read for ArtifactFileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.prefetch();
        let n = self.file.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset within a step, so a lost, doubled or shifted
    /// range shows.
    fn pattern(len: u64) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn writeback_file_keeps_every_byte_across_several_steps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("artifact.tar");
        let data = pattern(3 * WRITEBACK_STEP + 12345);
        let mut writer = BufWriter::with_capacity(
            WRITE_BUFFER,
            WritebackFile::new(File::create(&path).expect("create")),
        );
        for chunk in data.chunks(32 * 1024 + 3) {
            writer.write_all(chunk).expect("write");
        }
        let file = writer.into_inner().expect("flush");
        assert_eq!(file.written, data.len() as u64);
        // The buffer hands over writes of about 1 MiB, so the window moves at the first
        // write that completes a step, not at exact multiples of it.
        assert!(
            file.written - file.submitted < WRITEBACK_STEP,
            "less than a step left unsubmitted: {file:?}"
        );
        assert!(
            file.dropped >= WRITEBACK_STEP && file.submitted - file.dropped >= WRITEBACK_STEP,
            "earlier ranges were handed back, the last submission was not: {file:?}"
        );
        file.file.sync_all().expect("sync");
        assert!(std::fs::read(&path).expect("read") == data);
    }

    #[test]
    fn the_writer_writes_exactly_what_it_was_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Empty, under one buffer, exactly one step, and steps plus an odd tail, in chunks
        // that straddle the buffer and step boundaries (including chunks bigger than the
        // buffer, which bypass it).
        for (len, chunk) in [
            (0, 1000),
            (1, 1000),
            (WRITE_BUFFER as u64 - 1, 4097),
            (WRITEBACK_STEP, 65536),
            (2 * WRITEBACK_STEP + 511, 3 * WRITE_BUFFER / 2 + 1),
        ] {
            let path = dir.path().join(format!("{len}.tar"));
            let data = pattern(len);
            let mut writer = ArtifactFileWriter::new(File::create(&path).expect("create"));
            for part in data.chunks(chunk) {
                writer.write_all(part).expect("write");
            }
            writer.finish().expect("finish");
            let back = std::fs::read(&path).expect("read");
            assert_eq!(back.len(), data.len(), "length of {len} bytes in {chunk}s");
            assert!(back == data, "content of {len} bytes in {chunk}s");
        }
    }

    #[test]
    fn the_writer_works_where_sync_file_range_fails() {
        // A pipe stands in for a file that refuses the hints: `sync_file_range` and
        // `posix_fadvise` fail on it (ESPIPE), so the writer must carry on without them.
        let (mut from_pipe, to_pipe) = io::pipe().expect("pipe");
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            from_pipe.read_to_end(&mut all).map(|_| all)
        });
        let file = File::from(std::os::fd::OwnedFd::from(to_pipe));
        let data = pattern(3 * WRITEBACK_STEP + 777);
        let mut writer = ArtifactFileWriter::new(file);
        for part in data.chunks(100_003) {
            writer.write_all(part).expect("write to a pipe");
        }
        writer.flush().expect("flush");
        // The window moved twice: the failing calls were made and ignored.
        assert!(writer.inner.get_ref().dropped >= WRITEBACK_STEP);
        // `fsync` on a pipe fails (EINVAL); the bytes are through by then.
        drop(writer);
        let back = reader.join().expect("reader thread").expect("read pipe");
        assert_eq!(back.len(), data.len());
        assert!(back == data);
    }

    #[test]
    fn the_reader_reads_exactly_the_file_and_renews_its_prefetch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("artifact.tar");
        let data = pattern(PREFETCH_AHEAD + PREFETCH_AHEAD / 2 + 3);
        std::fs::write(&path, &data).expect("write");
        let mut reader = ArtifactFileReader::new(File::open(&path).expect("open"));
        let mut back = Vec::new();
        let mut buf = vec![0; 256 * 1024 + 5];
        let mut windows = Vec::new();
        loop {
            let n = reader.read(&mut buf).expect("read");
            if windows.last() != Some(&reader.prefetched) {
                windows.push(reader.prefetched);
            }
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
            assert_eq!(reader.position(), back.len() as u64);
        }
        assert!(back == data);
        // The window moves on once half of it is read, and always lies ahead of the reader.
        assert_eq!(
            windows,
            vec![PREFETCH_AHEAD, 2 * PREFETCH_AHEAD, 3 * PREFETCH_AHEAD]
        );
    }

    #[test]
    fn the_reader_works_where_fadvise_fails() {
        let (from_pipe, mut to_pipe) = io::pipe().expect("pipe");
        let data = pattern(300_001);
        let sent = data.clone();
        let writer = std::thread::spawn(move || to_pipe.write_all(&sent));
        let mut reader = ArtifactFileReader::new(File::from(std::os::fd::OwnedFd::from(from_pipe)));
        let mut back = Vec::new();
        reader.read_to_end(&mut back).expect("read a pipe");
        writer.join().expect("writer thread").expect("write pipe");
        assert!(back == data);
        assert_eq!(reader.position(), data.len() as u64);
    }
}
