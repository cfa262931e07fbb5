//! A tar stream checked on its way to the VM: [`TarGate`] reads a tar from any reader (an
//! object-store download) and hands its bytes on only once the headers among them have
//! been parsed and judged safe, so that a restore straight from a stored artifact gets
//! the checks a local restore makes before sending anything (`validate_structure`), in
//! the one pass that sends the tar to `sudo tar -x`.
//!
//! **What is checked.** The stream goes through the crate's streaming parser
//! ([`crate::tarstream`], headers only, no hashing: the caller hashes what it sends), so
//! everything the parser refuses fails the stream (bad header checksums or numbers,
//! global PAX headers with records, entry types and PAX keywords it does not model, ...).
//! Each entry, as soon as its header is complete, goes through [`check_entry_safe`]
//! (no devices or FIFOs, no absolute or `..` name, no link target leaving the root) and
//! the cross-entry rules of [`check_entries_safe`], applied incrementally by
//! [`StreamSafety`]:
//!
//! * an entry whose path goes through a symlink seen earlier, or whose link target
//!   leaves an earlier symlink with `..`, is refused;
//! * the other order, the symlink coming after the entry, is caught on the symlink: a
//!   symlink is refused when an earlier entry's path went through it or an earlier link
//!   target left it with `..`.
//!
//! The batch rule does not look at order; this one refuses a tar exactly when the batch
//! rule does (only the entry named can differ), and refusing the later symlink is
//! enough: until it arrives that path is a real directory inside the extraction root, so
//! whatever `tar -x` did with the earlier entry stayed inside, and nothing after the
//! refusal reaches `tar`.
//!
//! **What is held back.** Bytes are handed out up to the parser's last *settled* point:
//! the end of an accepted entry's header (with the long-name and PAX records governing
//! it), that entry's content, the end-of-archive marker and what follows. A header, the
//! `L`/`K`/`x`/`g` records before it, and a first zero block are held until the parser
//! has judged them; so no byte of a refused header, nor of the records governing it,
//! ever leaves the gate. Entries with set-uid or set-gid bits pass with their header
//! rewritten by [`strip_setid`] (as the local restore's patches do) and are listed by
//! [`GateReport::stripped`].
//!
//! **End of stream.** When the reader ends, the tar must be complete (the parser's
//! `finish`: end-of-archive marker present, no entry cut short), else the read fails
//! before the last held bytes are released. Bytes after the end-of-archive marker pass
//! through unparsed, as in the local restore, whose structure check ignores them and
//! sends the whole file (`tar -x` stops reading archive members at the marker).
//!
//! **Errors.** A refusal is an [`io::Error`] of kind [`InvalidData`](ErrorKind::InvalidData)
//! whose text is the local restore's (`Backup is corrupted: unsafe tar entry ./x in
//! <label>: ...`, `Backup is corrupted: tar file <label> is truncated: ...`); its inner
//! error is a [`GateRefusal`] holding the typed [`ArtifactError`] ([`refusal_of`]), also
//! kept in the [`GateReport`]. Every later read returns the same refusal. Errors of the
//! inner reader are returned unchanged and leave the gate usable.
//!
//! **Memory.** The gate holds the bytes read but not yet handed out: the caller's last
//! read (at most 256 KiB are read at a time) plus the held-back headers, normally a
//! block or two. Long-name and PAX records are held with the header they govern; the
//! parser takes records of up to 1 MiB, and a run of records before one entry larger
//! than [`HOLD_LIMIT`] (room for one each of `L`, `K`, `x` and `g` of that size, while
//! GNU tar writes at most an `L`, a `K` or an `x` per entry) is refused rather than held.
//! Nothing is allocated per byte; what grows with the tar is the parser's list of
//! entries and the interned paths of [`StreamSafety`], as in the local check.

use std::fmt;
use std::io::{self, ErrorKind, Read};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::entry_name::EntryName;
use crate::error::ArtifactError;
use crate::safety::StreamSafety;
#[cfg(doc)]
use crate::safety::{check_entries_safe, check_entry_safe};
use crate::tarstream::{BLOCK, META_LIMIT, Parser, TarEntryInfo, TarSummary, strip_setid};

/// Most bytes of long-name and PAX records (headers and padding included) held back
/// before one entry: four records of the parser's maximum size, plus the entry's header.
pub const HOLD_LIMIT: u64 = 4 * (META_LIMIT + BLOCK as u64) + BLOCK as u64;
/// Most bytes asked of the inner reader at a time.
const MAX_READ: usize = 256 * 1024;

/// An entry passed with its set-uid/set-gid bits stripped from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrippedSetid {
    /// The entry name, as stored in the tar.
    pub entry: EntryName,
    /// Offset of the rewritten header block in the stream.
    pub offset: u64,
    /// The permission bits before the rewrite (`0o7777` at most).
    pub old_mode: u32,
}

/// The inner error of the [`io::Error`] a [`TarGate`] returns when it refuses the tar:
/// displays as the [`ArtifactError`] it holds.
#[derive(Debug, Clone)]
pub struct GateRefusal(Arc<ArtifactError>);

impl GateRefusal {
    /// Why the tar was refused.
    pub fn error(&self) -> &ArtifactError {
        &self.0
    }
}

impl fmt::Display for GateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for GateRefusal {}

/// The refusal carried by an [`io::Error`] returned by a [`TarGate`] (possibly passed on
/// by a wrapping reader), if it is one.
pub fn refusal_of(err: &io::Error) -> Option<&ArtifactError> {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<GateRefusal>())
        .map(GateRefusal::error)
}

#[derive(Debug, Default)]
struct Findings {
    stripped: Vec<StrippedSetid>,
    refusal: Option<Arc<ArtifactError>>,
    complete: bool,
}

/// What a [`TarGate`] found, readable after the gate was moved into a consumer (e.g. a
/// boxed reader given to an SSH session): a cheap handle, cloned from
/// [`TarGate::report`].
#[derive(Debug, Clone, Default)]
pub struct GateReport(Arc<Mutex<Findings>>);

impl GateReport {
    fn with<T>(&self, f: impl FnOnce(&mut Findings) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The entries passed so far with their set-uid/set-gid bits stripped, in stream
    /// order (one per entry: warn once for each).
    pub fn stripped(&self) -> Vec<StrippedSetid> {
        self.with(|f| f.stripped.clone())
    }

    /// Why the tar was refused, once it was.
    pub fn refusal(&self) -> Option<Arc<ArtifactError>> {
        self.with(|f| f.refusal.clone())
    }

    /// Whether the whole stream was read and found a complete, safe tar.
    pub fn is_complete(&self) -> bool {
        self.with(|f| f.complete)
    }
}

#[derive(Debug)]
enum Phase {
    /// Reading and checking.
    Streaming,
    /// The inner reader ended after a complete tar.
    Done,
    /// The tar was refused.
    Refused(Arc<ArtifactError>),
}

/// A [`Read`] adapter passing a tar stream on only as far as its headers were checked;
/// see the module docs.
#[derive(Debug)]
pub struct TarGate<R> {
    inner: R,
    label: String,
    parser: Parser,
    /// The summary, once the parser finished.
    summary: Option<TarSummary>,
    safety: StreamSafety,
    /// Entries of the parser already checked.
    checked: usize,
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Next byte of `buf` to hand out.
    start: usize,
    /// End of the checked bytes of `buf`.
    ready: usize,
    /// End of the bytes read into `buf` (all of them fed to the parser).
    end: usize,
    phase: Phase,
    report: GateReport,
}

impl<R: Read> TarGate<R> {
    /// A gate over the tar read from `inner`; `label` names the tar in errors (its file
    /// name, e.g. `redis-0-redis-server.tar`).
    pub fn new(inner: R, label: impl Into<String>) -> Self {
        Self {
            inner,
            label: label.into(),
            parser: Parser::new(false),
            summary: None,
            safety: StreamSafety::new(),
            checked: 0,
            buf: Vec::new(),
            base: 0,
            start: 0,
            ready: 0,
            end: 0,
            phase: Phase::Streaming,
            report: GateReport::default(),
        }
    }

    /// The tar's label, as given to [`new`](Self::new).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A handle on the findings (stripped entries, refusal, completion) that stays
    /// usable after the gate is moved or dropped.
    pub fn report(&self) -> GateReport {
        self.report.clone()
    }

    /// The entries whose set-uid/set-gid bits were stripped so far.
    pub fn stripped(&self) -> Vec<StrippedSetid> {
        self.report.stripped()
    }

    /// Why the tar was refused, once it was.
    pub fn refusal(&self) -> Option<Arc<ArtifactError>> {
        self.report.refusal()
    }

    /// The entries parsed so far, in stream order (those not yet checked included).
    pub fn entries(&self) -> &[TarEntryInfo] {
        match &self.summary {
            Some(summary) => &summary.entries,
            None => self.parser.entries(),
        }
    }

    /// Bytes handed out so far.
    pub fn bytes_passed(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The entries of the tar (no checksums) and its size, once the stream was read to
    /// its end and accepted; `None` before, or when it was refused.
    pub fn into_summary(self) -> Option<TarSummary> {
        self.summary
    }

    fn refuse(&mut self, err: ArtifactError) -> io::Error {
        let err = Arc::new(err.with_file(Path::new(&self.label)).corrupted());
        self.report.with(|f| f.refusal = Some(err.clone()));
        self.phase = Phase::Refused(err.clone());
        refusal_error(&err)
    }

    /// Reads once from the inner reader and checks what came in.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.start == self.end {
            self.base += self.start as u64;
            (self.start, self.ready, self.end) = (0, 0, 0);
        }
        let want = want.clamp(BLOCK, MAX_READ);
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                // Only what is held or not yet handed out moves.
                self.buf.copy_within(self.start..self.end, 0);
                self.base += self.start as u64;
                self.ready -= self.start;
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
            }
        }
        let n = self.inner.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return self.at_end();
        }
        let from = self.end;
        self.end += n;
        self.check(from)
    }

    /// Feeds `buf[from..end]` to the parser, at most one header at a time, checking
    /// each new entry and moving `ready` to every settled point.
    fn check(&mut self, from: usize) -> io::Result<()> {
        let mut pos = from;
        while pos < self.end {
            let step = usize::try_from(self.parser.step_len())
                .unwrap_or(usize::MAX)
                .min(self.end - pos);
            if let Err(e) = self.parser.feed(&self.buf[pos..pos + step]) {
                return Err(self.refuse(e));
            }
            pos += step;
            while let Some(entry) = self.parser.entries().get(self.checked) {
                self.checked += 1;
                if let Err(e) = self.safety.check(entry) {
                    return Err(self.refuse(e));
                }
                if entry.has_setid() {
                    let (entry, offset, old_mode) =
                        (entry.name.clone(), entry.header_offset, entry.mode);
                    self.strip(entry, offset, old_mode)?;
                }
            }
            if self.parser.is_settled() {
                self.ready = pos;
            } else {
                let held = (pos - self.ready) as u64;
                if held > HOLD_LIMIT {
                    let detail = format!(
                        "{held} bytes of long-name and PAX records after byte {} without their entry exceed the {HOLD_LIMIT} bytes a restore holds back (GNU tar writes at most one record of each kind per entry)",
                        self.base + self.ready as u64
                    );
                    return Err(self.refuse(ArtifactError::Unsupported {
                        file: None,
                        entry: None,
                        detail,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Rewrites the (held) header block at stream offset `offset` without its set-id bits.
    fn strip(&mut self, entry: EntryName, offset: u64, old_mode: u32) -> io::Result<()> {
        let at = offset
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i >= self.ready && i + BLOCK <= self.end);
        let stripped = at.and_then(|i| {
            let block: &[u8; BLOCK] = self.buf[i..i + BLOCK].try_into().ok()?;
            Some((i, strip_setid(block)?))
        });
        let Some((i, block)) = stripped else {
            // The parser verified this header, and it is held: unreachable in practice.
            return Err(self.refuse(ArtifactError::Corrupt {
                file: None,
                entry: Some(entry.to_string()),
                detail: format!("the header at offset {offset} cannot be rewritten"),
            }));
        };
        self.buf[i..i + BLOCK].copy_from_slice(&block);
        self.report.with(|f| {
            f.stripped.push(StrippedSetid {
                entry,
                offset,
                old_mode,
            });
        });
        Ok(())
    }

    /// The inner reader ended: the tar must be complete.
    fn at_end(&mut self) -> io::Result<()> {
        let parser = std::mem::replace(&mut self.parser, Parser::new(false));
        match parser.finish() {
            Ok(summary) => {
                // Complete means settled: everything read is checked.
                self.ready = self.end;
                self.summary = Some(summary);
                self.phase = Phase::Done;
                self.report.with(|f| f.complete = true);
                Ok(())
            }
            Err(e) => Err(self.refuse(e)),
        }
    }
}

fn refusal_error(err: &Arc<ArtifactError>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, GateRefusal(err.clone()))
}

impl<R: Read> Read for TarGate<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match &self.phase {
                Phase::Refused(err) => return Err(refusal_error(err)),
                _ if self.ready > self.start => {
                    let n = (self.ready - self.start).min(out.len());
                    out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
                    self.start += n;
                    return Ok(n);
                }
                Phase::Done => return Ok(0),
                Phase::Streaming => self.fill(out.len())?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::check_entries_safe;
    use crate::tarstream::{EntryKind, TarHasher, scan_tar_file};
    use crate::testutil::{RawTar, fix_checksum, octal, raw_header};
    use proptest::prelude::*;

    const SIZES: [usize; 5] = [1, 7, 511, 513, 64 * 1024];
    const LABEL: &str = "redis-0-redis-server.tar";

    /// Hands out at most `chunk` bytes per read, so that headers straddle reads.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.chunk).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    struct Run {
        out: Vec<u8>,
        result: io::Result<()>,
        report: GateReport,
        summary: Option<TarSummary>,
        /// Largest buffer the gate held.
        max_buf: usize,
    }

    /// Reads `data` through a gate, the inner reader giving `inner` bytes at a time and
    /// the caller asking for `outer`.
    fn run(data: &[u8], inner: usize, outer: usize) -> Run {
        let mut gate = TarGate::new(Chunked { data, chunk: inner }, LABEL);
        let report = gate.report();
        let mut out = Vec::new();
        let mut buf = vec![0u8; outer];
        let mut max_buf = 0;
        let result = loop {
            let r = gate.read(&mut buf);
            max_buf = max_buf.max(gate.buf.len());
            match r {
                Ok(0) => break Ok(()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => {
                    // The refusal sticks.
                    let again = gate.read(&mut buf).expect_err("refused again");
                    assert_eq!(again.to_string(), e.to_string());
                    break Err(e);
                }
            }
        };
        Run {
            out,
            result,
            report,
            summary: gate.into_summary(),
            max_buf,
        }
    }

    /// Every combination of inner and outer read sizes.
    fn runs(data: &[u8]) -> impl Iterator<Item = (usize, usize, Run)> + '_ {
        SIZES
            .iter()
            .flat_map(|&i| SIZES.iter().map(move |&o| (i, o)))
            .map(move |(i, o)| (i, o, run(data, i, o)))
    }

    fn normal_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        b.append_data(&mut dir, "./data/", io::empty())
            .expect("dir");
        for (i, size) in [0usize, 1, 511, 512, 513, 70_000].into_iter().enumerate() {
            let content: Vec<u8> = (0..size).map(|j| (j * 7 + i) as u8).collect();
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(size as u64);
            b.append_data(&mut h, format!("./data/file{i}"), content.as_slice())
                .expect("file");
        }
        // A GNU long name.
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o600);
        h.set_size(3);
        b.append_data(&mut h, format!("./data/{}", "long".repeat(40)), &b"abc"[..])
            .expect("long name");
        // A PAX path.
        b.append_pax_extensions([("path", format!("./data/pax-{}", "p".repeat(120)).as_bytes())])
            .expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(2);
        h.set_path("short").expect("path");
        h.set_cksum();
        b.append(&h, &b"hi"[..]).expect("pax entry");
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "./data/link", "file1")
            .expect("symlink");
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Link);
        l.set_size(0);
        b.append_link(&mut l, "./data/hard", "./data/file2")
            .expect("hardlink");
        b.into_inner().expect("tar")
    }

    #[test]
    fn gate_passes_a_normal_tar_byte_identical() {
        let mut data = normal_tar();
        let scanned = {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(LABEL);
            std::fs::write(&path, &data).expect("write");
            scan_tar_file(&path).expect("the local check accepts it")
        };
        for (i, o, r) in runs(&data) {
            r.result
                .unwrap_or_else(|e| panic!("inner {i}, outer {o}: {e}"));
            assert!(r.out == data, "inner {i}, outer {o}: output differs");
            assert!(r.report.is_complete());
            assert!(r.report.stripped().is_empty() && r.report.refusal().is_none());
            let summary = r.summary.expect("summary");
            assert_eq!(summary.entries, scanned.entries);
            assert_eq!(summary.total_bytes, data.len() as u64);
            // Held back: the caller's read, a few blocks, never the whole tar.
            assert!(
                r.max_buf <= o.clamp(BLOCK, MAX_READ) + 4 * BLOCK,
                "inner {i}, outer {o}: buffer of {} bytes",
                r.max_buf
            );
        }

        // Bytes after the end-of-archive marker pass through unparsed, as the local
        // structure check ignores them.
        data.extend_from_slice(b"trailing bytes that are not a tar header at all");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LABEL);
        std::fs::write(&path, &data).expect("write");
        scan_tar_file(&path).expect("the local check ignores trailing bytes");
        for (i, o, r) in runs(&data) {
            r.result
                .unwrap_or_else(|e| panic!("inner {i}, outer {o}: {e}"));
            assert!(r.out == data, "inner {i}, outer {o}: output differs");
        }
    }

    /// A tar built up to the offending part: its offset, then the rest.
    fn at(t: &RawTar) -> usize {
        t.data.len()
    }

    fn global_pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut v = RawTar::new().pax(records).unfinished();
        let mut h: [u8; BLOCK] = v[..BLOCK].try_into().expect("block");
        h[156] = b'g';
        fix_checksum(&mut h);
        v[..BLOCK].copy_from_slice(&h);
        v
    }

    /// What, the tar, offset of the first byte that must not be handed out, entry named,
    /// words of the reason.
    type Hostile = (
        &'static str,
        Vec<u8>,
        usize,
        Option<&'static str>,
        &'static str,
    );

    fn hostile() -> Vec<Hostile> {
        let mut cases = Vec::new();
        let base = || RawTar::new().dir("./").file("./ok", &[5u8; 700]);

        let t = base();
        let off = at(&t);
        cases.push((
            "char device",
            t.entry("./mem", b'3', b"", "").finish(),
            off,
            Some("./mem"),
            "character device 0,0: device nodes and FIFOs are refused",
        ));
        let t = base();
        let off = at(&t);
        cases.push((
            "fifo",
            t.entry("./pipe", b'6', b"", "").finish(),
            off,
            Some("./pipe"),
            "FIFO: device nodes and FIFOs are refused",
        ));
        let t = base();
        let off = at(&t);
        cases.push((
            "absolute name",
            t.file("/etc/cron.d/evil", b"* * * * * root sh").finish(),
            off,
            Some("/etc/cron.d/evil"),
            "absolute path",
        ));
        let t = base();
        let off = at(&t);
        cases.push((
            "dotdot name",
            t.file("./../../etc/passwd", b"root::0:0").finish(),
            off,
            Some("./../../etc/passwd"),
            "path contains a '..' component",
        ));
        let t = base();
        let off = at(&t);
        cases.push((
            "escaping symlink",
            t.symlink("./etc", "../../etc").finish(),
            off,
            Some("./etc"),
            "symlink target ../../etc escapes the extraction root",
        ));
        let t = base().symlink("./dir", "sub");
        let off = at(&t);
        cases.push((
            "through an earlier symlink",
            t.file("./dir/x", b"x").finish(),
            off,
            Some("./dir/x"),
            "path goes through the symlink ./dir of the archive",
        ));
        let t = base().dir("./d/").file("./d/x", b"x");
        let off = at(&t);
        cases.push((
            "symlink over an earlier entry's directory",
            t.symlink("./d", "sub").finish(),
            off,
            Some("./d"),
            "the path of the earlier entry ./d/x goes through this symlink",
        ));
        let t = base().dir("./a/").symlink("./a/b", "..");
        let off = at(&t);
        cases.push((
            "link target leaving an earlier symlink",
            t.symlink("./c", "a/b/..").finish(),
            off,
            Some("./c"),
            "link target leaves the symlink ./a/b of the archive with '..'",
        ));
        let t = base().dir("./a/").symlink("./c", "a/b/..");
        let off = at(&t);
        cases.push((
            "symlink left by an earlier link target",
            t.symlink("./a/b", "..").finish(),
            off,
            Some("./a/b"),
            "the target of the earlier link ./c leaves this symlink with '..'",
        ));
        let t = base().dir("./sub/");
        let off = at(&t);
        let mut data = t.unfinished();
        data.extend_from_slice(&global_pax(&[("linkpath", "/etc/shadow")]));
        let data = RawTar { data }.symlink("./config", "sub").finish();
        cases.push((
            "global PAX linkpath (issue 10)",
            data,
            off,
            None,
            "global PAX header (type 'g') after entry ./sub/ sets linkpath",
        ));
        // Records governing a refused entry are held with it.
        let t = base();
        let off = at(&t);
        cases.push((
            "PAX path making an entry unsafe",
            t.pax(&[("path", "../evil")])
                .file("./innocent", b"x")
                .finish(),
            off,
            Some("../evil"),
            "path contains a '..' component",
        ));
        let t = base();
        let off = at(&t);
        let long = format!("/{}", "x".repeat(150));
        cases.push((
            "GNU long name, absolute",
            t.file(&long, b"x").finish(),
            off,
            None,
            "absolute path",
        ));
        // Structure.
        let t = base().file("./second", b"abc");
        let whole = t.finish();
        let second = 512 + 512 + 1024;
        let mut flipped = whole.clone();
        flipped[second + 3] ^= 1;
        cases.push((
            "flipped header byte",
            flipped,
            second,
            Some("./sdcond"), // 'e' ^ 1 == 'd': the name as read
            "header checksum mismatch",
        ));
        cases.push((
            "cut inside a header",
            whole[..second + 100].to_vec(),
            second,
            None,
            "truncated: stream ends inside a header (100 of 512 bytes) after entry ./ok",
        ));
        cases.push((
            "cut inside content",
            whole[..512 + 512 + 300].to_vec(),
            512 + 512 + 300,
            Some("./ok"),
            "truncated in entry ./ok: stream ends inside the content, 300 of 700 bytes present",
        ));
        let end = whole.len() - 1024;
        cases.push((
            "one end block",
            whole[..end + 512].to_vec(),
            end,
            None,
            "stream ends after one of the two end-of-archive zero blocks",
        ));
        cases.push((
            "no end marker",
            whole[..end].to_vec(),
            end,
            None,
            "stream ends without the end-of-archive marker",
        ));
        cases
    }

    #[test]
    fn gate_refuses_hostile_tars_before_handing_out_their_headers() {
        for (what, data, offset, entry, words) in hostile() {
            for (i, o, r) in runs(&data) {
                let ctx = format!("{what} (inner {i}, outer {o})");
                let err = r.result.expect_err(&ctx);
                assert_eq!(err.kind(), ErrorKind::InvalidData, "{ctx}");
                assert!(
                    r.out.len() <= offset,
                    "{ctx}: {} bytes handed out, the offending part starts at {offset}",
                    r.out.len()
                );
                assert!(r.out == data[..r.out.len()], "{ctx}: output differs");
                let msg = err.to_string();
                assert!(
                    msg.starts_with("Backup is corrupted: ") && msg.contains(LABEL),
                    "{ctx}: {msg}"
                );
                assert!(msg.contains(words), "{ctx}: {msg}");
                let typed = refusal_of(&err).expect("typed refusal");
                assert!(typed.is_corruption(), "{ctx}");
                assert_eq!(typed.to_string(), msg);
                if let Some(entry) = entry {
                    assert_eq!(typed.entry(), Some(entry), "{ctx}");
                }
                let kept = r.report.refusal().expect("refusal in the report");
                assert_eq!(kept.to_string(), msg);
                assert!(!r.report.is_complete() && r.summary.is_none(), "{ctx}");
            }
        }
    }

    /// Same words as the local restore's structure check, for a refused entry.
    #[test]
    fn gate_words_match_the_local_structure_check() {
        let data = RawTar::new().file("./../evil", b"x").finish();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = std::path::PathBuf::from(LABEL);
        std::fs::write(dir.path().join(&path), &data).expect("write");
        let summary = scan_tar_file(&dir.path().join(&path)).expect("parses");
        let local = check_entries_safe(&summary.entries)
            .map_err(|e| e.with_file(&path).corrupted())
            .expect_err("unsafe");
        let r = run(&data, 512, 512);
        assert_eq!(r.result.expect_err("unsafe").to_string(), local.to_string());
        assert_eq!(
            local.to_string(),
            "Backup is corrupted: unsafe tar entry ./../evil in redis-0-redis-server.tar: path contains a '..' component"
        );
    }

    fn with_mode(name: &str, typeflag: u8, content: &[u8], mode: &[u8; 7]) -> Vec<u8> {
        let mut h = raw_header(name.as_bytes(), typeflag, &octal(content.len() as u64), b"");
        h[100..107].copy_from_slice(mode);
        fix_checksum(&mut h);
        let mut v = h.to_vec();
        v.extend_from_slice(content);
        v.resize(v.len().div_ceil(BLOCK) * BLOCK, 0);
        v
    }

    #[test]
    fn gate_strips_setid_bits_from_the_headers_it_passes() {
        let t = RawTar::new().dir("./").file("./plain", b"abc");
        let suid_at = at(&t);
        let t = t.raw(&with_mode("./bin/su", b'0', b"#!/bin/sh\n", b"0004755"));
        let sgid_at = at(&t);
        let data = t
            .raw(&with_mode("./shared/", b'5', b"", b"0002775"))
            .file("./after", &[1u8; 1000])
            .finish();
        let mut expected = data.clone();
        for off in [suid_at, sgid_at] {
            let block: [u8; BLOCK] = data[off..off + BLOCK].try_into().expect("block");
            let stripped = strip_setid(&block).expect("valid header");
            assert_ne!(stripped, block);
            expected[off..off + BLOCK].copy_from_slice(&stripped);
        }
        for (i, o, r) in runs(&data) {
            r.result
                .unwrap_or_else(|e| panic!("inner {i}, outer {o}: {e}"));
            assert!(r.out == expected, "inner {i}, outer {o}: output differs");
            assert_eq!(
                r.report.stripped(),
                [
                    StrippedSetid {
                        entry: "./bin/su".into(),
                        offset: suid_at as u64,
                        old_mode: 0o4755,
                    },
                    StrippedSetid {
                        entry: "./shared/".into(),
                        offset: sgid_at as u64,
                        old_mode: 0o2775,
                    },
                ]
            );
            // What was sent parses, without the bits.
            let mut h = TarHasher::new();
            h.feed(&r.out).expect("valid tar");
            let sent = h.finish().expect("complete");
            assert!(sent.entries.iter().all(|e| !e.has_setid()));
            assert_eq!(sent.entries[2].mode, 0o755);
            assert_eq!(sent.entries[3].mode, 0o775);
        }
    }

    /// A reader failing now and then: its errors pass through unchanged and the gate
    /// goes on where it was.
    struct Flaky<'a> {
        data: &'a [u8],
        calls: usize,
    }

    impl Read for Flaky<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            match self.calls % 3 {
                0 => Err(io::Error::new(ErrorKind::Interrupted, "interrupted")),
                1 => Err(io::Error::new(ErrorKind::TimedOut, "store timed out")),
                _ => {
                    let n = self.data.len().min(300).min(out.len());
                    out[..n].copy_from_slice(&self.data[..n]);
                    self.data = &self.data[n..];
                    Ok(n)
                }
            }
        }
    }

    /// The restore boxes the gate as a `dyn Read + Send` and reads the report elsewhere.
    #[test]
    fn gate_is_send_and_its_report_is_shared() {
        fn send<T: Send>() {}
        fn shared<T: Send + Sync + Clone>() {}
        send::<TarGate<std::fs::File>>();
        shared::<GateReport>();
        let data = RawTar::new().file("./a", b"x").finish();
        let gate = TarGate::new(&data[..], LABEL);
        let report = gate.report();
        let mut boxed: Box<dyn Read + Send> = Box::new(gate);
        let mut out = Vec::new();
        boxed.read_to_end(&mut out).expect("passes");
        drop(boxed);
        assert!(report.is_complete() && out == data);
    }

    #[test]
    fn gate_passes_inner_errors_through_and_stays_usable() {
        let data = normal_tar();
        let mut gate = TarGate::new(
            Flaky {
                data: &data,
                calls: 0,
            },
            LABEL,
        );
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        let mut timeouts = 0;
        loop {
            match gate.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::TimedOut);
                    assert!(refusal_of(&e).is_none());
                    timeouts += 1;
                }
            }
        }
        assert!(timeouts > 0);
        assert!(out == data);
        assert!(gate.report().is_complete());
    }

    /// Records piled up before one entry are held, up to [`HOLD_LIMIT`], then refused.
    #[test]
    fn gate_refuses_a_pile_of_records_instead_of_holding_it() {
        let big = "p".repeat(1 << 19);
        let mut t = RawTar::new().file("./a", b"x");
        let off = at(&t);
        for _ in 0..10 {
            t = t.pax(&[("comment", &big)]);
        }
        let data = t.file("./b", b"y").finish();
        let r = run(&data, 64 * 1024, 64 * 1024);
        let err = r.result.expect_err("too much held");
        assert!(err.to_string().contains("holds back"), "{err}");
        assert!(r.out.len() <= off);
        assert!(r.max_buf as u64 <= HOLD_LIMIT + MAX_READ as u64 + BLOCK as u64);
        // Three such records before an entry are held and pass.
        let mut t = RawTar::new().file("./a", b"x");
        for _ in 0..3 {
            t = t.pax(&[("comment", &big)]);
        }
        let data = t.file("./b", b"y").finish();
        let r = run(&data, 7, 64 * 1024);
        r.result.expect("held and passed");
        assert!(r.out == data);
    }

    /// Not a timed assertion: prints the gate's throughput on a 64 MiB tar read in
    /// 64 KiB pieces, and checks its buffer stays at one read plus a few blocks.
    #[test]
    fn gate_throughput_64_mib() {
        let mut t = RawTar::new().dir("./");
        let content = vec![0x5au8; 4 << 20];
        for i in 0..16 {
            t = t.file(&format!("./f{i}"), &content);
        }
        let data = t.finish();
        let started = std::time::Instant::now();
        let r = run(&data, 64 * 1024, 64 * 1024);
        let took = started.elapsed();
        r.result.expect("passes");
        assert_eq!(r.out.len(), data.len());
        assert!(r.max_buf <= 64 * 1024 + BLOCK, "{}", r.max_buf);
        println!(
            "TarGate: 64 MiB in {took:?} ({:.0} MiB/s)",
            64.0 / took.as_secs_f64()
        );
    }

    fn entry(name: String, kind: EntryKind, target: Option<String>) -> TarEntryInfo {
        TarEntryInfo {
            name: name.into(),
            kind,
            size: 0,
            link_name: target.map(EntryName::from),
            mode: 0o644,
            header_offset: 0,
        }
    }

    fn path(parts: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(parts), 1..=max).prop_map(|p| p.join("/"))
    }

    /// Names mostly without `..` (those are refused alone), link targets with it.
    fn entries() -> impl Strategy<Value = Vec<TarEntryInfo>> {
        let names: &[&str] = &["a", "b", "c", ".", "a", "b"];
        let targets: &[&str] = &["a", "b", "c", "..", "."];
        let one = (0u8..5, path(names, 3), path(targets, 4)).prop_map(|(k, name, target)| {
            let name = format!("./{name}");
            match k {
                0 => entry(name, EntryKind::File, None),
                1 => entry(format!("{name}/"), EntryKind::Dir, None),
                2 | 3 => entry(name, EntryKind::Symlink, Some(target)),
                _ => entry(name, EntryKind::Hardlink, Some(format!("./{target}"))),
            }
        });
        prop::collection::vec(one, 1..10)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// The gate's order-aware rule refuses a tar exactly when the batch rule does.
        #[test]
        fn gate_stream_rule_refuses_exactly_what_the_batch_rule_refuses(list in entries()) {
            let mut stream = StreamSafety::new();
            let streamed = list.iter().try_for_each(|e| stream.check(e));
            let batch = check_entries_safe(&list);
            prop_assert_eq!(streamed.is_ok(), batch.is_ok(), "{:?} / {:?}", streamed, batch);
        }
    }
}
